//! Starting stub processes. A stub is made by one long-lived spawner
//! thread, so that its PR_SET_PDEATHSIG (which fires when the *thread*
//! that made it exits) means "ruml died", not "some task ended". The task
//! that asked then seizes it with ptrace and lets it exec the stub image.
//!
//! The child is not a fork of ruml: the spawner makes it with
//! `clone(CLONE_VM | CLONE_VFORK)` on a small stack of its own, as
//! posix_spawn does, so the host copies none of ruml's page tables for it
//! and tears none down at its exec (a fork of the whole kernel process
//! was a quarter of the CPU a guest fork+exec cost). Until it execs, the
//! child runs in ruml's own memory, so it does only this:
//!
//! - every signal stays blocked (the spawner blocks them all, and the
//!   child inherits its mask) until every handler ruml installed is reset
//!   to its default in the child's own copy of the handler table; no code
//!   of ruml's ever runs in the child but the few calls below;
//! - it touches no memory but its own stack and the arguments the spawner
//!   prepared, which stay put because the spawner is suspended until the
//!   child has exec'd or died (CLONE_VFORK);
//! - the requester learns the child's pid through a pipe the child writes
//!   (the spawner cannot answer while suspended), seizes it, and releases
//!   it through a second pipe to exec the stub image. The exec gives the
//!   child an address space of its own holding nothing of ruml's.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::stub::STUB_PHYSMEM_FD;
use crate::HostError;

/// A freshly made child blocked before exec, and the pipe end that lets
/// it go on.
pub struct Forked {
    pub pid: libc::pid_t,
    pub go: RawFd,
}

/// What the spawner needs for one child: physmem's and the stub image's
/// descriptors, the read end of the go pipe and the write end of the pid
/// pipe (both given to the spawner, which closes them once the child has
/// exec'd or died), and where to report a failure to make the child.
struct Request {
    phys_fd: RawFd,
    elf_fd: RawFd,
    go: OwnedFd,
    pid_out: OwnedFd,
    reply: Sender<Result<(), HostError>>,
}

fn spawner() -> &'static Mutex<Sender<Request>> {
    static S: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        let spawned = std::thread::Builder::new()
            .name("stub-spawner".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // The spawner runs with every signal blocked, so that its
                // children start so (see the module's comment); it keeps
                // the mask it had to give each child before its exec.
                let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
                // SAFETY: plain signal-mask calls on valid sets.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
                }
                let mut stack = vec![0u8; CHILD_STACK];
                for req in rx {
                    let r = clone_stub(&req, &old, &mut stack);
                    drop(req.go);
                    drop(req.pid_out);
                    let _ = req.reply.send(r);
                }
            });
        if let Err(e) = spawned {
            eprintln!("ruml: cannot start the stub spawner thread: {e}");
        }
        Mutex::new(tx)
    })
}

/// The child's stack before its exec.
const CHILD_STACK: usize = 32 * 1024;

fn pipe() -> Result<(OwnedFd, OwnedFd), HostError> {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid array of two ints.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(HostError::last("pipe for a stub process"));
    }
    // SAFETY: two fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// Makes a stub child (through the spawner thread), blocked before its
/// exec until the caller writes to `go`.
pub fn fork_child(phys_fd: RawFd, elf_fd: RawFd) -> Result<Forked, HostError> {
    let (go_r, go_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let (tx, rx) = channel();
    spawner()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(Request {
            phys_fd,
            elf_fd,
            go: go_r,
            pid_out: pid_w,
            reply: tx,
        })
        .map_err(|_| HostError::new("the stub spawner thread is gone", 0))?;
    // The child writes its pid when it is ready (or gives up), then waits
    // for `go`; a child that could not be made leaves the pipe empty,
    // closed by the spawner.
    let mut pid: libc::pid_t = 0;
    let got = loop {
        // SAFETY: reading at most 4 bytes into pid.
        let r = unsafe {
            libc::read(
                pid_r.as_raw_fd(),
                (&mut pid as *mut libc::pid_t).cast(),
                std::mem::size_of::<libc::pid_t>(),
            )
        };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break r;
    };
    if got == std::mem::size_of::<libc::pid_t>() as isize && pid > 0 {
        // The spawner's answer comes once the child has exec'd, which
        // needs `go`: the caller does not wait for it.
        return Ok(Forked {
            pid,
            go: std::os::fd::IntoRawFd::into_raw_fd(go_w),
        });
    }
    match rx.recv() {
        Ok(Err(e)) => Err(e),
        _ => Err(HostError::new("a stub process died before its exec", 0)),
    }
}

/// What the child reads, on the spawner's stack (suspended meanwhile).
struct ChildArgs {
    parent: libc::pid_t,
    phys_fd: RawFd,
    elf_fd: RawFd,
    go: RawFd,
    pid_out: RawFd,
    mask: libc::sigset_t,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

fn clone_stub(req: &Request, mask: &libc::sigset_t, stack: &mut [u8]) -> Result<(), HostError> {
    let args = ChildArgs {
        // SAFETY: getpid never fails.
        parent: unsafe { libc::getpid() },
        phys_fd: req.phys_fd,
        elf_fd: req.elf_fd,
        go: req.go.as_raw_fd(),
        pid_out: req.pid_out.as_raw_fd(),
        mask: *mask,
        argv: [c"ruml-stub".as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
    };
    // The stack grows down from the end, 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: the child runs stub_child on its own stack with `args`,
    // both alive until it has exec'd or died: CLONE_VFORK suspends this
    // thread until then.
    let pid = unsafe {
        libc::clone(
            stub_child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const ChildArgs as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(HostError::last("clone for a stub process"));
    }
    Ok(())
}

/// The child side: reset every signal handler, report our pid, drop
/// every descriptor of ruml's, wait until the tracer has seized us, then
/// exec the stub image.
///
/// # Safety
/// Only as the entry of a CLONE_VM|CLONE_VFORK child of the spawner, with
/// a `ChildArgs`; system calls only; never returns.
extern "C" fn stub_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: see above: `arg` is the spawner's ChildArgs, alive and
    // unchanged while this child runs.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        // Every handler ruml installed goes back to its default in this
        // child's own table (not shared: no CLONE_SIGHAND), while every
        // signal is still blocked.
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        // The requester learns our pid once we are ready to wait for it
        // (one wake-up of ours on its path), or as we give up, so that
        // it always knows whom to seize or reap.
        let pid = libc::getpid();
        let report = |fd: RawFd| {
            libc::write(
                fd,
                (&pid as *const libc::pid_t).cast(),
                std::mem::size_of::<libc::pid_t>(),
            ) == std::mem::size_of::<libc::pid_t>() as isize
        };
        // Kicks reach only traced stub threads (the tracer sees even
        // ignored signals); a thread waiting for its tracer must not die
        // of one.
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != a.parent {
            report(a.pid_out);
            libc::_exit(1);
        }
        // Out of ruml's session: terminal signals never reach a stub.
        libc::setsid();
        // A fixed layout: the host's stack and vDSO stay clear of the stub.
        libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        let p = libc::fcntl(a.phys_fd, libc::F_DUPFD_CLOEXEC, 100);
        let e = libc::fcntl(a.elf_fd, libc::F_DUPFD_CLOEXEC, 100);
        let g = libc::fcntl(a.go, libc::F_DUPFD_CLOEXEC, 100);
        let o = libc::fcntl(a.pid_out, libc::F_DUPFD_CLOEXEC, 100);
        if p < 0
            || e < 0
            || g < 0
            || o < 0
            || libc::dup2(p, STUB_PHYSMEM_FD) < 0
            || libc::dup3(e, STUB_PHYSMEM_FD + 1, libc::O_CLOEXEC) < 0
            || libc::dup3(g, STUB_PHYSMEM_FD + 2, libc::O_CLOEXEC) < 0
            || libc::dup3(o, STUB_PHYSMEM_FD + 3, libc::O_CLOEXEC) < 0
        {
            report(a.pid_out);
            libc::_exit(2);
        }
        libc::close(0);
        libc::close(1);
        libc::close(2);
        libc::syscall(libc::SYS_close_range, STUB_PHYSMEM_FD + 4, u32::MAX, 0);
        if !report(STUB_PHYSMEM_FD + 3) {
            libc::_exit(1);
        }
        libc::close(STUB_PHYSMEM_FD + 3);
        let mut b = 0u8;
        loop {
            let r = libc::read(STUB_PHYSMEM_FD + 2, (&mut b as *mut u8).cast(), 1);
            if r == 1 {
                break;
            }
            if r == 0 || *libc::__errno_location() != libc::EINTR {
                libc::_exit(3);
            }
        }
        libc::close(STUB_PHYSMEM_FD + 2);
        // The stub starts with the mask ruml's threads have.
        libc::pthread_sigmask(libc::SIG_SETMASK, &a.mask, std::ptr::null_mut());
        libc::syscall(
            libc::SYS_execveat,
            STUB_PHYSMEM_FD + 1,
            c"".as_ptr(),
            a.argv.as_ptr(),
            a.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::_exit(4)
    }
}
