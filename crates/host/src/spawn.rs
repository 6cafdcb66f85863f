//! Starting stub processes. A stub is forked by one long-lived spawner
//! thread, so that its PR_SET_PDEATHSIG (which fires when the *thread*
//! that forked it exits) means "ruml died", not "some task ended". The
//! task that asked then seizes it with ptrace and lets it exec the stub
//! image.

use std::os::fd::RawFd;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::stub::STUB_PHYSMEM_FD;
use crate::HostError;

/// A freshly forked child blocked before exec, and the pipe end that lets
/// it go on.
pub struct Forked {
    pub pid: libc::pid_t,
    pub go: RawFd,
}

type Request = (RawFd, RawFd, Sender<Result<Forked, HostError>>);

fn spawner() -> &'static Mutex<Sender<Request>> {
    static S: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        let spawned = std::thread::Builder::new()
            .name("stub-spawner".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for (phys_fd, elf_fd, reply) in rx {
                    let _ = reply.send(fork_stub(phys_fd, elf_fd));
                }
            });
        if let Err(e) = spawned {
            eprintln!("ruml: cannot start the stub spawner thread: {e}");
        }
        Mutex::new(tx)
    })
}

/// Forks a stub child (through the spawner thread).
pub fn fork_child(phys_fd: RawFd, elf_fd: RawFd) -> Result<Forked, HostError> {
    let (tx, rx) = channel();
    spawner()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((phys_fd, elf_fd, tx))
        .map_err(|_| HostError::new("the stub spawner thread is gone", 0))?;
    rx.recv()
        .map_err(|_| HostError::new("the stub spawner thread is gone", 0))?
}

fn fork_stub(phys_fd: RawFd, elf_fd: RawFd) -> Result<Forked, HostError> {
    let mut p = [0i32; 2];
    // SAFETY: p is a valid array of two ints.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(HostError::last("pipe for a stub process"));
    }
    // SAFETY: getpid never fails.
    let parent = unsafe { libc::getpid() };
    let argv: [*const libc::c_char; 2] = [c"ruml-stub".as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the child calls only async-signal-safe system calls on
    // memory prepared before the fork, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = HostError::last("fork for a stub process");
        // SAFETY: closing our own pipe.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
        return Err(e);
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { stub_child(parent, phys_fd, elf_fd, p[0], &argv, &envp) }
    }
    // SAFETY: the child has its own copy of the read end.
    unsafe { libc::close(p[0]) };
    Ok(Forked { pid, go: p[1] })
}

/// The child side: drop everything of ruml, wait until the tracer has
/// seized us, then exec the stub image.
///
/// # Safety
/// Only in a freshly forked child; async-signal-safe calls only; never
/// returns.
unsafe fn stub_child(
    parent: libc::pid_t,
    phys_fd: RawFd,
    elf_fd: RawFd,
    go: RawFd,
    argv: &[*const libc::c_char; 2],
    envp: &[*const libc::c_char; 1],
) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    if libc::getppid() != parent {
        libc::_exit(1);
    }
    // Out of ruml's session: terminal signals never reach a stub.
    libc::setsid();
    // A fixed layout: the host's stack and vDSO stay clear of the stub.
    libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
    // Kicks reach only traced stub threads (the tracer sees even ignored
    // signals); a thread waiting for its tracer must not die of one.
    libc::signal(libc::SIGUSR2, libc::SIG_IGN);
    let p = libc::fcntl(phys_fd, libc::F_DUPFD_CLOEXEC, 100);
    let e = libc::fcntl(elf_fd, libc::F_DUPFD_CLOEXEC, 100);
    let g = libc::fcntl(go, libc::F_DUPFD_CLOEXEC, 100);
    if p < 0
        || e < 0
        || g < 0
        || libc::dup2(p, STUB_PHYSMEM_FD) < 0
        || libc::dup3(e, STUB_PHYSMEM_FD + 1, libc::O_CLOEXEC) < 0
        || libc::dup3(g, STUB_PHYSMEM_FD + 2, libc::O_CLOEXEC) < 0
    {
        libc::_exit(2);
    }
    libc::close(0);
    libc::close(1);
    libc::close(2);
    libc::syscall(libc::SYS_close_range, STUB_PHYSMEM_FD + 3, u32::MAX, 0);
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
    libc::syscall(
        libc::SYS_execveat,
        STUB_PHYSMEM_FD + 1,
        c"".as_ptr(),
        argv.as_ptr(),
        envp.as_ptr(),
        libc::AT_EMPTY_PATH,
    );
    libc::_exit(4)
}
