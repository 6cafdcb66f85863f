//! Process system calls: identity, fork/clone, exit, wait, sessions,
//! limits, uname, prctl, arch_prctl.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::signal::SIGCHLD;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::exit::exit_thread;
use super::{After, ExitStatus, Next, ProcNode, Start, Task, TaskRunner, ThreadGroup};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

syscall_table! { pub fn task_table;
    GETPID => sys_getpid(),
    GETPPID => sys_getppid(),
    GETTID => sys_gettid(),
    FORK => sys_fork(),
    VFORK => sys_vfork(),
    CLONE => sys_clone(flags: u64, stack: u64, ptid: UserAddr, ctid: UserAddr, tls: u64),
    CLONE3 => sys_clone3(args: UserAddr, size: usize),
    EXIT => sys_exit(code: i32),
    EXIT_GROUP => sys_exit_group(code: i32),
    WAIT4 => sys_wait4(pid: i32, status: UserAddr, options: i32, rusage: UserAddr),
    WAITID => sys_waitid(idtype: i32, id: i32, info: UserAddr, options: i32, rusage: UserAddr),
    SET_TID_ADDRESS => sys_set_tid_address(addr: UserAddr),
    SET_ROBUST_LIST => sys_set_robust_list(head: UserAddr, len: usize),
    GET_ROBUST_LIST => sys_get_robust_list(tid: i32, head: UserAddr, len: UserAddr),
    SETPGID => sys_setpgid(pid: i32, pgid: i32),
    GETPGID => sys_getpgid(pid: i32),
    GETPGRP => sys_getpgrp(),
    SETSID => sys_setsid(),
    GETSID => sys_getsid(pid: i32),
    UNAME => sys_uname(buf: UserAddr),
    SETHOSTNAME => sys_sethostname(name: UserAddr, len: i32),
    SETDOMAINNAME => sys_setdomainname(name: UserAddr, len: i32),
    PRLIMIT64 => sys_prlimit64(pid: i32, res: u32, new: UserAddr, old: UserAddr),
    GETRLIMIT => sys_getrlimit(res: u32, old: UserAddr),
    SETRLIMIT => sys_setrlimit(res: u32, new: UserAddr),
    ARCH_PRCTL => sys_arch_prctl(code: i32, addr: u64),
    PRCTL => sys_prctl(option: i32, a2: u64, a3: u64, a4: u64, a5: u64),
    SCHED_YIELD => sys_sched_yield(),
    SCHED_GETAFFINITY => sys_sched_getaffinity(pid: i32, len: usize, mask: UserAddr),
    SCHED_SETAFFINITY => sys_sched_setaffinity(pid: i32, len: usize, mask: UserAddr),
    GETRANDOM => sys_getrandom(buf: UserAddr, len: usize, flags: u32),
}

// Pids cross the system-call boundary through the caller's PID namespace
// (ns.rs): `pid_view` global -> as the caller sees it (0 outside its
// namespace), `pid_lookup` the other way.

fn sys_getpid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    Ok(ctx.task.pid_view(ctx.task.tgid()) as u64)
}

fn sys_gettid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    Ok(ctx.task.pid_view(ctx.task.tid()) as u64)
}

fn sys_getppid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let ppid = {
        let tree = crate::kernel().tasks.lock();
        tree.get(&ctx.task.tgid()).map(|n| n.ppid).unwrap_or(0)
    };
    Ok(ctx.task.pid_view(ppid) as u64)
}

/// A pid argument (> 0) as the caller names it -> global; a pid outside
/// the caller's namespace is one that does not exist (`none` is the
/// caller's stand-in: a pid no process has).
fn pid_arg(ctx: &SyscallContext<'_>, pid: i32) -> i32 {
    if pid <= 0 {
        return pid;
    }
    ctx.task.pid_lookup(pid).unwrap_or(i32::MAX)
}

fn sys_fork(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    do_clone(ctx, SIGCHLD as u64, 0, UserAddr(0), UserAddr(0), 0)
}

fn sys_vfork(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    do_clone(
        ctx,
        CLONE_VM | CLONE_VFORK | SIGCHLD as u64,
        0,
        UserAddr(0),
        UserAddr(0),
        0,
    )
}

fn sys_clone(
    ctx: &mut SyscallContext<'_>,
    flags: u64,
    stack: u64,
    ptid: UserAddr,
    ctid: UserAddr,
    tls: u64,
) -> KResult<u64> {
    do_clone(ctx, flags, stack, ptid, ctid, tls)
}

/// clone3: the same as clone, with its arguments in a struct.
fn sys_clone3(ctx: &mut SyscallContext<'_>, args: UserAddr, size: usize) -> KResult<u64> {
    const CLONE_ARGS_SIZE_VER0: usize = 64;
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return error!(EINVAL);
    }
    let mut raw = vec![0u8; size];
    ctx.mm().read_bytes(args.0, &mut raw)?;
    // Unknown trailing fields must be zero (E2BIG otherwise).
    if size > 88 && raw[88..].iter().any(|&b| b != 0) {
        return error!(E2BIG);
    }
    let f = |i: usize| {
        raw.get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7));
    let (set_tid, set_tid_size) = (f(8), f(9));
    if exit_signal > 64 || flags & 0x7f != 0 || set_tid != 0 || set_tid_size != 0 {
        return error!(EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return error!(EINVAL);
    }
    let sp = if stack == 0 {
        0
    } else {
        stack.checked_add(stack_size).ok_or(crate::errno!(EINVAL))?
    };
    do_clone_full(
        ctx,
        flags | exit_signal,
        sp,
        UserAddr(parent_tid),
        UserAddr(child_tid),
        tls,
        UserAddr(pidfd),
    )
}

/// fork, vfork, clone: new processes and new threads. CLONE_VM shares
/// the address space (the new task gets a stub thread in the same stub
/// process); without it the child gets a copy-on-write copy.
fn do_clone(
    ctx: &mut SyscallContext<'_>,
    flags: u64,
    stack: u64,
    ptid: UserAddr,
    ctid: UserAddr,
    tls: u64,
) -> KResult<u64> {
    // clone(2) returns a CLONE_PIDFD descriptor where the parent tid would go.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return error!(EINVAL);
    }
    do_clone_full(ctx, flags, stack, ptid, ctid, tls, ptid)
}

/// fork of an address space other threads may be running in: the
/// parent's pages are write-protected in the host, through this thread's
/// context, before the child shares them (mm/fork.rs).
fn fork_shared_mm(ctx: &mut SyscallContext<'_>, mm: &Arc<crate::mm::Mm>) -> Arc<crate::mm::Mm> {
    match ctx.host.as_deref_mut() {
        Some(host) => mm.fork_synced(&[], |m| crate::task::apply_host_ops(m, host)),
        None => mm.fork(),
    }
}

fn do_clone_full(
    ctx: &mut SyscallContext<'_>,
    flags: u64,
    stack: u64,
    ptid: UserAddr,
    ctid: UserAddr,
    tls: u64,
    pidfd_at: UserAddr,
) -> KResult<u64> {
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
        || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
    {
        return error!(EINVAL);
    }
    if flags & (super::ns::CLONE_NEWNS | super::ns::CLONE_NEWUSER) != 0 && flags & CLONE_FS != 0 {
        return error!(EINVAL);
    }
    if flags & super::ns::CLONE_NEWPID != 0 && flags & CLONE_THREAD != 0 {
        return error!(EINVAL);
    }
    // New namespaces (ns.rs): made before anything else is copied.
    let nsc = super::ns::clone_namespaces(ctx.task, flags, flags & CLONE_THREAD != 0)?;
    if flags & CLONE_PIDFD != 0
        && (flags & CLONE_THREAD != 0 || ctx.mm().accessible_len(pidfd_at.0, 4, true) < 4)
    {
        return if flags & CLONE_THREAD != 0 {
            error!(EINVAL)
        } else {
            error!(EFAULT)
        };
    }
    /// Guest threads per instance, at most (the host's resources are not
    /// the guest's to exhaust).
    const MAX_TASKS: usize = 8192;
    if crate::kernel().tasks.thread_count() >= MAX_TASKS.min(crate::fs::procsys::threads_max()) {
        return error!(EAGAIN);
    }
    // The CLONE_PIDFD descriptor is reserved and its number stored before
    // the child exists (a pidfd of the parent holds the slot until the
    // child's replaces it), so that no error can come once the child is
    // in the process tree: a child made and then abandoned by a failing
    // clone would be waited for forever.
    let pidfd = if flags & CLONE_PIDFD != 0 {
        let fd = ctx
            .files()
            .alloc(crate::fs::anon::new_pidfd(&ctx.task.group), true)?;
        if let Err(e) = ctx.mm().write_val(pidfd_at.0, &fd) {
            let _ = ctx.files().close(fd);
            return Err(e);
        }
        Some(fd)
    } else {
        None
    };
    let undo_pidfd = |ctx: &SyscallContext<'_>| {
        if let Some(fd) = pidfd {
            let _ = ctx.files().close(fd);
        }
    };
    let thread = flags & CLONE_THREAD != 0;
    let parent = ctx.task;
    let mm = if flags & CLONE_VM != 0 {
        ctx.mm()
    } else if stack == 0 {
        // Both sides return from fork through the stack: copy its top
        // pages now instead of taking a write fault in each; only when no
        // other task of this address space runs meanwhile (the task's own
        // reference and ours are the only ones).
        let mm = ctx.mm();
        let sp = ctx.regs.rsp;
        if Arc::strong_count(&mm) <= 2 && parent.group.threads().len() == 1 {
            mm.fork_hot(&[sp.wrapping_sub(crate::mm::FORK_HOT_BELOW_SP), sp])
        } else {
            fork_shared_mm(ctx, &mm)
        }
    } else {
        let mm = ctx.mm();
        if Arc::strong_count(&mm) <= 2 && parent.group.threads().len() == 1 {
            mm.fork()
        } else {
            fork_shared_mm(ctx, &mm)
        }
    };
    let files = if flags & CLONE_FILES != 0 {
        ctx.files()
    } else {
        let f = ctx.files().fork_copy();
        // The reserved slot is the parent's alone (Linux installs the
        // pidfd after copying the table).
        if let Some(fd) = pidfd {
            let _ = f.close(fd);
        }
        f
    };
    let fs = if let Some(ns) = nsc.mnt.clone() {
        crate::fs::mntns::fs_in(&ctx.fs(), ns)
    } else if flags & CLONE_FS != 0 {
        ctx.fs()
    } else {
        ctx.fs().fork_copy()
    };
    let k = crate::kernel();
    let child = {
        let mut tree = k.tasks.lock();
        let pid = k.tasks.alloc_pid(&tree).ok_or(crate::errno!(EAGAIN))?;
        // Its number in each PID namespace it is in (ENOMEM once the
        // namespace's init has died).
        if let Err(e) = nsc.pid_ns.attach(pid, !thread) {
            undo_pidfd(ctx);
            return Err(e);
        }
        let me = parent.tgid();
        let group = if thread {
            let g = parent.group.clone();
            if g.sig().exit.is_some() {
                undo_pidfd(ctx);
                return error!(EINTR);
            }
            g
        } else {
            let sig = parent.group.sig().fork_copy();
            let limits = *parent
                .group
                .limits
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let g = ThreadGroup::new(pid, sig, limits);
            g.set_pid_ns(nsc.pid_ns.clone());
            // Dumpability and the user namespace are the address
            // space's, which fork copies.
            g.set_dumpable_mode(parent.group.dumpable_mode());
            g.set_mm_user_ns(parent.group.mm_user_ns());
            {
                let mut c = parent
                    .group
                    .creds
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some((u, caps)) = nsc.user.clone() {
                    c.user_ns = u.into();
                    c.ns_caps = caps;
                    if caps {
                        // Linux (set_cred_user_ns): a full set there.
                        c.caps = super::caps::CapSets::root();
                    }
                }
                *g.creds.lock().unwrap_or_else(|p| p.into_inner()) = c;
            }
            let (ppid, pgid, sid) = match tree.get(&me) {
                Some(n) => (
                    if flags & CLONE_PARENT != 0 {
                        n.ppid
                    } else {
                        me
                    },
                    n.pgid,
                    n.sid,
                ),
                None => (me, me, me),
            };
            tree.insert(pid, ProcNode::new(ppid, pgid, sid, g.clone()));
            if let Some(p) = tree.get_mut(&ppid) {
                p.children.push(pid);
            }
            g
        };
        let child = Task::new(pid, group, mm, files, fs, parent.signals.fork_copy(thread));
        child.set_nsproxy(nsc.proxy.clone());
        if !Arc::ptr_eq(&nsc.proxy.time, &parent.nsproxy().time) {
            crate::time::ns::entered(&child, &nsc.proxy.time);
        }
        *child.comm.lock().unwrap_or_else(|p| p.into_inner()) = parent
            .comm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        *child.exe.lock().unwrap_or_else(|p| p.into_inner()) =
            parent.exe.lock().unwrap_or_else(|p| p.into_inner()).clone();
        child.seccomp.inherit(&parent.seccomp);
        // Scheduling parameters and the CPU mask are inherited (sched.rs).
        let sched = parent
            .sched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .for_child();
        *child.sched.lock().unwrap_or_else(|p| p.into_inner()) = sched;
        let mask = *parent.affinity.lock().unwrap_or_else(|p| p.into_inner());
        *child.affinity.lock().unwrap_or_else(|p| p.into_inner()) = mask;
        child
    };
    let gpid = child.tid();
    // The child's pid as the parent sees it, and as the child does.
    let pid = parent.pid_view(gpid);
    let child_pid = child.pid_view(gpid);
    let mut regs = *ctx.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    // As Linux, a bad address here is ignored: the child exists by now.
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = ctx.mm().write_val(ptid.0, &pid);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = child.mm().write_val(ctid.0, &child_pid);
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        *child
            .clear_child_tid
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = ctid.0;
    }
    if let Some(fd) = pidfd {
        let f = crate::fs::anon::new_pidfd(&child.group);
        let _ = ctx.files().install_at(fd, f, true);
    }
    child.personality.store(
        parent
            .personality
            .load(std::sync::atomic::Ordering::Relaxed),
        std::sync::atomic::Ordering::Relaxed,
    );
    // A traced parent's tracer may take the child too (before it runs).
    super::ptrace::on_clone(ctx.task, &child, flags);
    let vfork = if flags & CLONE_VFORK != 0 {
        let (tx, rx) = std::sync::mpsc::channel();
        *child.vfork_done.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        Some(rx)
    } else {
        None
    };
    ctx.after = Some(After::Spawn {
        child,
        regs: Box::new(regs),
        vfork,
    });
    Ok(pid as u64)
}

/// Carries out what a system call left for the task loop.
pub fn after_syscall(r: &mut TaskRunner, after: After) -> Next {
    match after {
        After::Exec => {
            if let Some(c) = r.ctx.as_ref() {
                super::usage::retire_stub(&r.task.group, c.address_space().host_pid());
            }
            crate::time::timers::exec_reset(&r.task.group);
            Next::NewAddressSpace
        }
        After::Exit => Next::Exit,
        After::Sigreturn { fpu } => {
            r.in_syscall = false;
            if let (Some(f), Some(a)) = (fpu, r.ctx.as_ref()) {
                // A corrupt saved state from the guest: Linux sends SIGSEGV.
                if a.set_fpu(&f).is_err() {
                    crate::signal::force_fault(&r.task, crate::signal::SIGSEGV, 0x80, 0);
                }
            }
            Next::Continue
        }
        After::Spawn { child, regs, vfork } => {
            let fpu = r.ctx.as_ref().and_then(|a| a.get_fpu().ok());
            let shares_mm = Arc::ptr_eq(&child.mm(), &r.task.mm());
            // A fork's copy-on-write protections are in place before the
            // child can run; a thread needs a stub thread of our process.
            let start = if shares_mm {
                match r.ctx.as_mut().map(|c| c.new_thread()) {
                    Some(Ok(nt)) => Start::Thread(nt),
                    Some(Err(e)) => {
                        crate::log::warn(&format!(
                            "cannot create a stub thread for task {}: {e}",
                            child.tid()
                        ));
                        fail_child(&child);
                        r.regs.rax = crate::errno::Errno::EAGAIN.as_return();
                        return Next::Continue;
                    }
                    None => Start::NewProcess,
                }
            } else {
                if let Err(e) = r.sync_host() {
                    crate::log::warn(&format!(
                        "pid {}: cannot protect memory for fork: {e}",
                        r.task.tid()
                    ));
                }
                Start::NewProcess
            };
            let name = format!("task-{}", child.tid());
            let c2 = child.clone();
            // A host thread an earlier task left waiting, if there is one.
            let spawned =
                ruml_host::threads::spawn(name, move || super::run(c2, *regs, fpu, start));
            if let Err(e) = spawned {
                crate::log::warn(&format!(
                    "cannot start a host thread for task {}: {e}",
                    child.tid()
                ));
                fail_child(&child);
                r.regs.rax = crate::errno::Errno::EAGAIN.as_return();
                return Next::Continue;
            }
            super::ptrace::fork_event(r);
            if let Some(rx) = vfork {
                // As Linux's wait_for_vfork_done: killable. A child that
                // never execs nor exits must not pin its parent against
                // SIGKILL (or a group exit).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(std::time::Duration::from_millis(20))
                {
                    if r.task.group.sig().exit.is_some() {
                        break;
                    }
                }
                super::ptrace::vfork_done_event(r, child.tid());
            }
            Next::Continue
        }
    }
}

/// A child that could not be started leaves no trace but a reaped exit.
fn fail_child(child: &Arc<Task>) {
    if child.tid() == child.tgid() {
        crate::signal::group_exit(
            &child.group,
            ExitStatus::Killed {
                signo: 9,
                core: false,
            },
        );
    }
    exit_thread(child);
}

fn sys_exit(ctx: &mut SyscallContext<'_>, code: i32) -> KResult<u64> {
    {
        // The last thread's exit code is the process's.
        let mut g = ctx.task.group.sig();
        if g.exit.is_none() && ctx.task.group.threads().len() == 1 {
            g.exit = Some(ExitStatus::Exited(code & 0xff));
        }
    }
    exit_thread(ctx.task);
    ctx.after = Some(After::Exit);
    Ok(0)
}

fn sys_exit_group(ctx: &mut SyscallContext<'_>, code: i32) -> KResult<u64> {
    crate::signal::group_exit(&ctx.task.group, ExitStatus::Exited(code & 0xff));
    exit_thread(ctx.task);
    ctx.after = Some(After::Exit);
    Ok(0)
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WEXITED: i32 = 4;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = i32::MIN;

/// Which children a wait is for.
#[derive(Clone, Copy)]
enum WaitFor {
    Any,
    Pid(i32),
    Group(i32),
}

/// What a wait found.
#[derive(Clone, Copy)]
enum Found {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
    /// A ptrace stop of a tracee: the whole status word.
    Traced(i32),
}

impl Found {
    fn wait_status(self) -> i32 {
        match self {
            Found::Exited(st) => st.wait_status(),
            Found::Stopped(sig) => (sig << 8) | 0x7f,
            Found::Continued => 0xffff,
            Found::Traced(st) => st,
        }
    }
}

/// Waits for a child to change state; returns (pid as the caller sees it, what) or None for
/// WNOHANG. `exited`/`stopped`/`continued` select the changes wanted.
fn wait_child(
    ctx: &SyscallContext<'_>,
    which: WaitFor,
    options: i32,
    exited: bool,
    reaped_usage: &mut super::usage::Times,
) -> KResult<Option<(i32, Found)>> {
    let k = crate::kernel();
    let me = ctx.task.tgid();
    let consume = options & WNOWAIT == 0;
    let mut result: KResult<Option<(i32, Found)>> = Ok(None);
    let mut release = None;
    let mut scan = || -> bool {
        let mut tree = k.tasks.lock();
        let my_pgid = tree.get(&me).map(|n| n.pgid).unwrap_or(0);
        // Tracees first (ptrace stops, and exits the tracer sees first).
        let for_tracee = |tid: i32, pgid: i32| match which {
            WaitFor::Any => true,
            WaitFor::Pid(p) => tid == p,
            WaitFor::Group(0) => pgid == my_pgid,
            WaitFor::Group(g) => pgid == g,
        };
        let (any_traced, found, rel) =
            super::ptrace::wait_scan(&mut tree, me, &for_tracee, options, exited, consume);
        if let Some((pid, rep)) = found {
            release = rel;
            result = Ok(Some((
                pid,
                match rep {
                    super::ptrace::WaitReport::Stopped(st) => Found::Traced(st),
                    super::ptrace::WaitReport::Exited(st) => Found::Exited(st),
                },
            )));
            return true;
        }
        let kids: Vec<i32> = tree
            .get(&me)
            .map(|n| n.children.clone())
            .unwrap_or_default();
        let matching: Vec<i32> = kids
            .into_iter()
            .filter(|c| match which {
                WaitFor::Any => true,
                WaitFor::Pid(p) => *c == p,
                WaitFor::Group(0) => tree.get(c).is_some_and(|n| n.pgid == my_pgid),
                WaitFor::Group(g) => tree.get(c).is_some_and(|n| n.pgid == g),
            })
            .collect();
        if matching.is_empty() {
            if any_traced {
                return options & WNOHANG != 0;
            }
            result = error!(ECHILD);
            return true;
        }
        for c in &matching {
            let traced_by_me = super::ptrace::traced_by(*c, me);
            let Some(n) = tree.get_mut(c) else { continue };
            if let (true, Some(z)) = (exited, n.zombie) {
                if super::ptrace::holds_zombie(*c, me) {
                    // Its tracer has not seen it end yet.
                    continue;
                }
                let usage = n.usage;
                // As the caller sees it, before the reap frees the numbers.
                let view = ctx.task.pid_view(*c);
                if consume {
                    super::ptrace::forget(*c);
                    tree.remove(c);
                    super::ns::release_pid(*c);
                    if let Some(me_n) = tree.get_mut(&me) {
                        me_n.children.retain(|x| x != c);
                    }
                    let mut u = ctx
                        .task
                        .group
                        .usage
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    u.children = u.children + usage;
                }
                *reaped_usage = usage;
                result = Ok(Some((view, Found::Exited(z))));
                return true;
            }
            if traced_by_me {
                // Our tracee: its stops reach us through ptrace.
                continue;
            }
            if options & WUNTRACED != 0 {
                if let Some(sig) = n.stop_report {
                    if consume {
                        n.stop_report = None;
                    }
                    result = Ok(Some((ctx.task.pid_view(*c), Found::Stopped(sig))));
                    return true;
                }
            }
            if options & WCONTINUED != 0 && n.cont_report {
                if consume {
                    n.cont_report = false;
                }
                result = Ok(Some((ctx.task.pid_view(*c), Found::Continued)));
                return true;
            }
        }
        options & WNOHANG != 0
    };
    let r = ctx.task.wait_until(None, &mut scan);
    if let Some(pid) = release {
        // The tracer saw a traced process end: now its real parent may.
        super::exit::release_traced_zombie(pid);
    }
    match r {
        Ok(()) => result,
        Err(_) => error!(ERESTARTSYS),
    }
}

fn sys_wait4(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    status: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> KResult<u64> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return error!(EINVAL);
    }
    let which = match pid {
        -1 => WaitFor::Any,
        0 => WaitFor::Group(0),
        p if p > 0 => WaitFor::Pid(pid_arg(ctx, p)),
        i32::MIN => return error!(ESRCH),
        p => WaitFor::Group(pid_arg(ctx, -p)),
    };
    let mut usage = Default::default();
    match wait_child(ctx, which, options, true, &mut usage)? {
        None => Ok(0),
        Some((p, found)) => {
            if !status.is_null() {
                ctx.mm().write_val(status.0, &found.wait_status())?;
            }
            if !rusage.is_null() {
                ctx.mm()
                    .write_bytes(rusage.0, &super::usage::rusage_bytes(usage))?;
            }
            Ok(p as u64)
        }
    }
}

fn sys_waitid(
    ctx: &mut SyscallContext<'_>,
    idtype: i32,
    id: i32,
    info: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> KResult<u64> {
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return error!(EINVAL);
    }
    let mut nonblock = false;
    let which = match idtype {
        0 => WaitFor::Any,
        1 if id > 0 => WaitFor::Pid(pid_arg(ctx, id)),
        2 if id >= 0 => WaitFor::Group(pid_arg(ctx, id)),
        // P_PIDFD: the process a pidfd refers to; a PIDFD_NONBLOCK pidfd
        // waits as with WNOHANG and says EAGAIN when nothing is ready.
        3 if id >= 0 => {
            let f = ctx.files().get(id)?;
            nonblock = f.nonblocking();
            WaitFor::Pid(crate::fs::anon::pidfd_pid(&f)?)
        }
        _ => return error!(EINVAL),
    };
    let eagain = nonblock && options & WNOHANG == 0;
    let options = if nonblock { options | WNOHANG } else { options };
    let mut usage = Default::default();
    let got = wait_child(ctx, which, options, options & WEXITED != 0, &mut usage)?;
    if eagain && got.is_none() {
        return error!(EAGAIN);
    }
    if !info.is_null() {
        let mut si = [0u8; 128];
        if let Some((pid, found)) = got {
            let (code, val): (i32, i32) = match found {
                Found::Exited(ExitStatus::Exited(c)) => (1, c),
                Found::Exited(ExitStatus::Killed { signo, core: true }) => (3, signo),
                Found::Exited(ExitStatus::Killed { signo, .. }) => (2, signo),
                Found::Stopped(sig) => (5, sig),
                Found::Continued => (6, crate::signal::SIGCONT),
                Found::Traced(st) => (4, (st >> 8) & 0xffff),
            };
            si[0..4].copy_from_slice(&SIGCHLD.to_le_bytes());
            si[8..12].copy_from_slice(&code.to_le_bytes());
            si[16..20].copy_from_slice(&pid.to_le_bytes());
            si[24..28].copy_from_slice(&val.to_le_bytes());
        }
        ctx.mm().write_bytes(info.0, &si)?;
    }
    if !rusage.is_null() {
        ctx.mm()
            .write_bytes(rusage.0, &super::usage::rusage_bytes(usage))?;
    }
    Ok(0)
}

fn sys_set_tid_address(ctx: &mut SyscallContext<'_>, addr: UserAddr) -> KResult<u64> {
    *ctx.task
        .clear_child_tid
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = addr.0;
    Ok(ctx.task.tid() as u64)
}

fn sys_set_robust_list(ctx: &mut SyscallContext<'_>, head: UserAddr, len: usize) -> KResult<u64> {
    if len != 24 {
        return error!(EINVAL);
    }
    *ctx.task
        .robust_list
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = (head.0, len as u64);
    Ok(0)
}

fn sys_get_robust_list(
    ctx: &mut SyscallContext<'_>,
    tid: i32,
    head: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let t = if tid == 0 {
        ctx.task.clone()
    } else {
        crate::kernel()
            .tasks
            .thread(tid)
            .ok_or(crate::errno!(ESRCH))?
    };
    let (h, l) = *t.robust_list.lock().unwrap_or_else(|p| p.into_inner());
    ctx.mm().write_val(head.0, &h)?;
    ctx.mm().write_val(len.0, &l)?;
    Ok(0)
}

fn sys_setpgid(ctx: &mut SyscallContext<'_>, pid: i32, pgid: i32) -> KResult<u64> {
    if pgid < 0 {
        return error!(EINVAL);
    }
    let me = ctx.task.tgid();
    let pid = if pid == 0 { me } else { pid_arg(ctx, pid) };
    let pgid = if pgid == 0 { pid } else { pid_arg(ctx, pgid) };
    let mut tree = crate::kernel().tasks.lock();
    let my_sid = tree.get(&me).map(|n| n.sid).unwrap_or(0);
    let Some(n) = tree.get(&pid) else {
        return error!(ESRCH);
    };
    if pid != me && n.ppid != me {
        return error!(ESRCH);
    }
    if n.sid != my_sid || n.sid == pid {
        return error!(EPERM);
    }
    if pgid != pid && !tree.values().any(|o| o.pgid == pgid && o.sid == my_sid) {
        return error!(EPERM);
    }
    if let Some(n) = tree.get_mut(&pid) {
        n.pgid = pgid;
    }
    Ok(0)
}

fn sys_getpgid(ctx: &mut SyscallContext<'_>, pid: i32) -> KResult<u64> {
    let pid = if pid == 0 {
        ctx.task.tgid()
    } else {
        pid_arg(ctx, pid)
    };
    let pgid = {
        let tree = crate::kernel().tasks.lock();
        tree.get(&pid)
            .filter(|n| n.zombie.is_none())
            .map(|n| n.pgid)
            .ok_or(crate::errno!(ESRCH))?
    };
    Ok(ctx.task.pid_view(pgid) as u64)
}

fn sys_getpgrp(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    sys_getpgid(ctx, 0)
}

fn sys_setsid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let me = ctx.task.tgid();
    let mut tree = crate::kernel().tasks.lock();
    if tree.values().any(|n| n.pgid == me) && tree.get(&me).is_some_and(|n| n.pgid == me)
        || tree.iter().any(|(&p, n)| p != me && n.pgid == me)
    {
        return error!(EPERM);
    }
    if let Some(n) = tree.get_mut(&me) {
        n.pgid = me;
        n.sid = me;
    }
    drop(tree);
    Ok(ctx.task.pid_view(me) as u64)
}

fn sys_getsid(ctx: &mut SyscallContext<'_>, pid: i32) -> KResult<u64> {
    let pid = if pid == 0 {
        ctx.task.tgid()
    } else {
        pid_arg(ctx, pid)
    };
    let sid = {
        let tree = crate::kernel().tasks.lock();
        tree.get(&pid).map(|n| n.sid).ok_or(crate::errno!(ESRCH))?
    };
    Ok(ctx.task.pid_view(sid) as u64)
}

pub const UTS_RELEASE: &str = "6.1.0-ruml";
pub const UTS_VERSION: &str = "#1 SMP PREEMPT_DYNAMIC ruml";

fn sys_uname(ctx: &mut SyscallContext<'_>, buf: UserAddr) -> KResult<u64> {
    let mut u = [0u8; 65 * 6];
    let uts = ctx.task.nsproxy().uts.clone();
    let (host, domain) = (uts.get(false), uts.get(true));
    let release = super::persona::uname_release(ctx.task);
    let fields: [&[u8]; 6] = [
        b"Linux",
        &host,
        release.as_bytes(),
        UTS_VERSION.as_bytes(),
        b"x86_64",
        &domain,
    ];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        u[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    ctx.mm().write_bytes(buf.0, &u)?;
    Ok(0)
}

/// sethostname/setdomainname: EPERM without CAP_SYS_ADMIN (root), then
/// EINVAL outside 0..=64 bytes, EFAULT.
fn set_uts_name(
    ctx: &SyscallContext<'_>,
    name: UserAddr,
    len: i32,
    slot: &std::sync::Mutex<Vec<u8>>,
    owner: &Arc<super::ns::UserNs>,
) -> KResult<u64> {
    // CAP_SYS_ADMIN over the UTS namespace's owner.
    if !ctx
        .task
        .privileged_in(owner, crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    if !(0..=64).contains(&len) {
        return error!(EINVAL);
    }
    let mut b = vec![0u8; len as usize];
    ctx.mm().read_bytes(name.0, &mut b)?;
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = b;
    Ok(0)
}

fn sys_sethostname(ctx: &mut SyscallContext<'_>, name: UserAddr, len: i32) -> KResult<u64> {
    let uts = ctx.task.nsproxy().uts.clone();
    set_uts_name(ctx, name, len, uts.slot(false), &uts.user_ns)
}

fn sys_setdomainname(ctx: &mut SyscallContext<'_>, name: UserAddr, len: i32) -> KResult<u64> {
    let uts = ctx.task.nsproxy().uts.clone();
    set_uts_name(ctx, name, len, uts.slot(true), &uts.user_ns)
}

const RLIM_INFINITY: u64 = u64::MAX;
const RLIMIT_NLIMITS: u32 = 16;
const RLIMIT_NOFILE: u32 = 7;
/// fs.nr_open's default.
pub const NR_OPEN: u64 = 1_048_576;

/// Every limit at its default.
pub fn default_limits() -> [[u64; 2]; 16] {
    let mut l = [[0u64; 2]; 16];
    for (i, v) in l.iter_mut().enumerate() {
        let (c, m) = default_rlimit(i as u32);
        *v = [c, m];
    }
    l
}

/// Default limits, as a stock Linux gives a login shell.
fn default_rlimit(res: u32) -> (u64, u64) {
    match res {
        3 => (crate::mm::STACK_LIMIT, RLIM_INFINITY), // RLIMIT_STACK
        4 => (0, RLIM_INFINITY),                      // RLIMIT_CORE
        6 => (63_432, 63_432),                        // RLIMIT_NPROC
        7 => (1024, 1024 * 1024),                     // RLIMIT_NOFILE
        8 => (8 << 20, 8 << 20),                      // RLIMIT_MEMLOCK
        11 => (63_432, 63_432),                       // RLIMIT_SIGPENDING
        12 => (819_200, 819_200),                     // RLIMIT_MSGQUEUE
        13 | 14 => (0, 0),                            // NICE, RTPRIO
        _ => (RLIM_INFINITY, RLIM_INFINITY),
    }
}

fn sys_prlimit64(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    res: u32,
    new: UserAddr,
    old: UserAddr,
) -> KResult<u64> {
    if res >= RLIMIT_NLIMITS {
        return error!(EINVAL);
    }
    let group = if pid == 0 || pid == ctx.task.tgid() {
        ctx.task.group.clone()
    } else {
        crate::kernel()
            .tasks
            .group(pid)
            .ok_or(crate::errno!(ESRCH))?
    };
    let newv: Option<[u64; 2]> = if new.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(new.0)?)
    };
    if let Some(v) = newv {
        if v[0] > v[1] {
            return error!(EINVAL);
        }
        // RLIMIT_NOFILE can't exceed fs.nr_open.
        if res == RLIMIT_NOFILE && v[1] > NR_OPEN && v[1] != RLIM_INFINITY {
            return error!(EPERM);
        }
    }
    let prev = {
        let mut l = group.limits.lock().unwrap_or_else(|p| p.into_inner());
        let prev = l[res as usize];
        if let Some(v) = newv {
            // The guest is root (CAP_SYS_RESOURCE): raising the hard limit is allowed.
            l[res as usize] = v;
        }
        prev
    };
    if newv.is_some() && (res == 9 || res == 3) {
        let (as_l, st) = (
            group.limit(9)[0],
            group.limit(3)[0].min(crate::mm::task_size() / 4),
        );
        for t in group.threads() {
            t.mm().set_limits(as_l, st);
        }
    }
    if let Some(v) = newv {
        if res == RLIMIT_NOFILE {
            let n = v[0].min(NR_OPEN) as usize;
            for t in group.threads() {
                t.files().set_limit(n);
            }
        }
    }
    if !old.is_null() {
        ctx.mm().write_val(old.0, &prev)?;
    }
    Ok(0)
}

fn sys_getrlimit(ctx: &mut SyscallContext<'_>, res: u32, old: UserAddr) -> KResult<u64> {
    sys_prlimit64(ctx, 0, res, UserAddr(0), old)
}

fn sys_setrlimit(ctx: &mut SyscallContext<'_>, res: u32, new: UserAddr) -> KResult<u64> {
    sys_prlimit64(ctx, 0, res, new, UserAddr(0))
}

fn sys_arch_prctl(ctx: &mut SyscallContext<'_>, code: i32, addr: u64) -> KResult<u64> {
    const ARCH_SET_GS: i32 = 0x1001;
    const ARCH_SET_FS: i32 = 0x1002;
    const ARCH_GET_FS: i32 = 0x1003;
    const ARCH_GET_GS: i32 = 0x1004;
    const ARCH_GET_CPUID: i32 = 0x1011;
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= crate::mm::task_size() {
                return error!(EPERM);
            }
            if code == ARCH_SET_FS {
                ctx.regs.fs_base = addr;
            } else {
                // Patched sites reach the kernel through the GS base
                // (mm::patch): a guest with its own runs its own code.
                if addr != 0 {
                    ctx.mm().patch_disable();
                }
                ctx.regs.gs_base = addr;
            }
            Ok(0)
        }
        ARCH_GET_FS => ctx.mm().write_val(addr, &ctx.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => ctx.mm().write_val(addr, &ctx.regs.gs_base).map(|_| 0),
        ARCH_GET_CPUID => Ok(1),
        _ => error!(EINVAL),
    }
}

fn sys_prctl(
    ctx: &mut SyscallContext<'_>,
    option: i32,
    a2: u64,
    _a3: u64,
    _a4: u64,
    _a5: u64,
) -> KResult<u64> {
    const PR_SET_NAME: i32 = 15;
    const PR_GET_NAME: i32 = 16;
    const PR_SET_PDEATHSIG: i32 = 1;
    const PR_GET_PDEATHSIG: i32 = 2;
    const PR_GET_DUMPABLE: i32 = 3;
    const PR_SET_DUMPABLE: i32 = 4;
    const PR_SET_CHILD_SUBREAPER: i32 = 36;
    const PR_GET_CHILD_SUBREAPER: i32 = 37;
    const PR_SET_NO_NEW_PRIVS: i32 = 38;
    const PR_GET_NO_NEW_PRIVS: i32 = 39;
    match option {
        PR_SET_NAME => {
            let mut b = vec![0u8; 16];
            ctx.mm().read_bytes(a2, &mut b)?;
            let n = b.iter().position(|&c| c == 0).unwrap_or(15).min(15);
            b.truncate(n);
            *ctx.task.comm.lock().unwrap_or_else(|p| p.into_inner()) = b;
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b = ctx
                .task
                .comm
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            b.resize(16, 0);
            ctx.mm().write_bytes(a2, &b)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(ctx.task.group.dumpable_mode() as u64),
        PR_SET_DUMPABLE if a2 <= 1 => {
            ctx.task.group.set_dumpable(a2 == 1);
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            if a2 > 64 {
                return error!(EINVAL);
            }
            ctx.task
                .pdeathsig
                .store(a2 as i32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let v = ctx
                .task
                .pdeathsig
                .load(std::sync::atomic::Ordering::Relaxed);
            ctx.mm().write_val(a2, &v)?;
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            let mut tree = crate::kernel().tasks.lock();
            if let Some(n) = tree.get_mut(&ctx.task.tgid()) {
                n.subreaper = a2 != 0;
            }
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = crate::kernel()
                .tasks
                .lock()
                .get(&ctx.task.tgid())
                .is_some_and(|n| n.subreaper) as i32;
            ctx.mm().write_val(a2, &v)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a2 != 1 || _a3 != 0 || _a4 != 0 || _a5 != 0 {
                return error!(EINVAL);
            }
            ctx.task.group.sig().no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(ctx.task.group.sig().no_new_privs as u64),
        _ => crate::task::caps::prctl(ctx, option, [a2, _a3, _a4, _a5])
            .or_else(|| crate::task::seccomp::prctl(ctx, option, [a2, _a3, _a4, _a5]))
            .unwrap_or(Err(crate::errno!(EINVAL))),
    }
}

fn sys_sched_yield(_ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    std::thread::yield_now();
    Ok(0)
}

fn sys_getrandom(
    ctx: &mut SyscallContext<'_>,
    buf: UserAddr,
    len: usize,
    flags: u32,
) -> KResult<u64> {
    if flags & !7 != 0 {
        return error!(EINVAL);
    }
    let len = len.min(33_554_431);
    let mut b = vec![0u8; len.min(1 << 20)];
    ruml_host::clock::random_bytes(&mut b);
    ctx.mm().write_bytes(buf.0, &b)?;
    Ok(b.len() as u64)
}

/// Registers init's process node (no parent).
pub fn register_init(task: &Arc<Task>) {
    let mut tree = crate::kernel().tasks.lock();
    let pid = task.tgid();
    tree.insert(pid, ProcNode::new(0, pid, pid, task.group.clone()));
}

fn target_thread(ctx: &SyscallContext<'_>, pid: i32) -> KResult<Arc<Task>> {
    if pid < 0 {
        return error!(EINVAL);
    }
    if pid == 0 {
        return Ok(ctx.task.clone());
    }
    crate::kernel()
        .tasks
        .thread(pid)
        .ok_or(crate::errno!(ESRCH))
}

fn host_cpus() -> usize {
    super::host_cpus().min(1024)
}

fn sys_sched_getaffinity(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    len: usize,
    mask: UserAddr,
) -> KResult<u64> {
    let t = target_thread(ctx, pid)?;
    let ncpu = host_cpus();
    let need = ncpu.div_ceil(64) * 8;
    if len < need || !len.is_multiple_of(8) {
        return error!(EINVAL);
    }
    let m = *t.affinity.lock().unwrap_or_else(|p| p.into_inner());
    let mut b = vec![0u8; need];
    for cpu in 0..ncpu.min(64) {
        if m & (1 << cpu) != 0 {
            b[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    ctx.mm().write_bytes(mask.0, &b)?;
    Ok(need as u64)
}

fn sys_sched_setaffinity(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    len: usize,
    mask: UserAddr,
) -> KResult<u64> {
    let t = target_thread(ctx, pid)?;
    let mut b = vec![0u8; len.min(128)];
    ctx.mm().read_bytes(mask.0, &mut b)?;
    let ncpu = host_cpus().min(64);
    let mut m = 0u64;
    for cpu in 0..ncpu {
        if b.get(cpu / 8).is_some_and(|x| x & (1 << (cpu % 8)) != 0) {
            m |= 1 << cpu;
        }
    }
    if m == 0 {
        return error!(EINVAL);
    }
    *t.affinity.lock().unwrap_or_else(|p| p.into_inner()) = m;
    Ok(0)
}
