//! Signals: dispositions (per process), masks and pending sets (per
//! thread and per process), delivery with real x86_64 rt_sigframes
//! (siginfo, ucontext, XSAVE state), rt_sigreturn, alternate stacks,
//! job-control stops, system-call restart.
//!
//! Locking: a thread group's [`GroupSignals`] mutex, then a task's
//! [`SignalState`] mutex; neither is held while blocking or while touching
//! guest memory.

use std::sync::{Arc, Mutex, MutexGuard};

use ruml_host::Registers;

use crate::abi::Pod;
use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::{exit, After, ExitStatus, Task, TaskRunner, ThreadGroup};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;
pub const NSIG: i32 = 64;

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_NOCLDSTOP: u64 = 1;
const SA_NOCLDWAIT: u64 = 2;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const MINSIGSTKSZ: u64 = 2048;

pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
const STOP_SIGNALS: u64 =
    (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

crate::abi_struct! {
    /// `struct sigaction` as the kernel ABI has it (rt_sigaction).
    pub struct KSigAction { pub handler: u64, pub flags: u64, pub restorer: u64, pub mask: u64 }
}

crate::abi_struct! {
    /// The first 48 bytes of `siginfo_t` that ruml fills (the rest zero).
    pub struct SigInfoHead { pub signo: i32, pub errno: i32, pub code: i32, pub pad: i32, pub a: u64, pub b: u64, pub c: u64, pub d: u64 }
}

crate::abi_struct! {
    /// `stack_t`.
    pub struct StackT { pub sp: u64, pub flags: i32, pub pad: i32, pub size: u64 }
}

/// A queued signal with its siginfo.
#[derive(Clone, Copy, Debug, Default)]
pub struct Queued {
    pub signo: i32,
    pub code: i32,
    /// si_pid | si_uid << 32 for user signals, si_addr for faults,
    /// si_pid for SIGCHLD.
    pub a: u64,
    /// si_status for SIGCHLD, si_value for sigqueue.
    pub b: u64,
    /// A fault: must be delivered even if blocked or ignored.
    pub forced: bool,
}

impl Queued {
    pub(crate) fn siginfo(&self) -> [u8; 128] {
        let mut si = [0u8; 128];
        let head = SigInfoHead {
            signo: self.signo,
            errno: 0,
            code: self.code,
            pad: 0,
            a: self.a,
            b: self.b,
            c: 0,
            d: 0,
        };
        si[..48].copy_from_slice(head.as_bytes());
        if self.signo == SIGCHLD && self.code > 0 {
            // si_pid, si_uid, si_status: pid at 16, uid 20, status at 24.
            si[16..20].copy_from_slice(&(self.a as i32).to_le_bytes());
            si[20..24].copy_from_slice(&0i32.to_le_bytes());
            si[24..28].copy_from_slice(&(self.b as i32).to_le_bytes());
            si[28..48].fill(0);
        }
        if self.signo == SIGSYS && self.code == crate::task::seccomp::SYS_SECCOMP {
            // _sigsys: si_errno, si_call_addr at 16, si_syscall at 24,
            // si_arch at 28 (b holds the syscall and errno: seccomp.rs).
            si[4..8].copy_from_slice(&((self.b >> 32) as i32).to_le_bytes());
            si[24..28].copy_from_slice(&(self.b as u32).to_le_bytes());
            si[28..32].copy_from_slice(&crate::task::seccomp::AUDIT_ARCH_X86_64.to_le_bytes());
        }
        si
    }
}

/// Process-wide signal state.
pub struct GroupSignals {
    pub actions: [KSigAction; 64],
    /// Signals sent to the process (any thread may take them).
    pub shared: Vec<Queued>,
    /// A group exit in progress: every thread leaves with this status.
    pub exit: Option<ExitStatus>,
    /// Stopped by this signal (job control) until SIGCONT.
    pub stopped: Option<i32>,
    /// An execve in this thread is ending all the others.
    pub exec_leader: Option<i32>,
    /// PR_SET_NO_NEW_PRIVS (inherited, never cleared).
    pub no_new_privs: bool,
    /// /proc/PID/oom_score_adj (-1000..1000) and the least value it may
    /// be lowered to without CAP_SYS_RESOURCE; inherited at fork.
    pub oom_score_adj: i16,
    pub oom_score_adj_min: i16,
}

impl Default for GroupSignals {
    fn default() -> Self {
        GroupSignals {
            actions: [KSigAction::default(); 64],
            shared: Vec::new(),
            exit: None,
            stopped: None,
            exec_leader: None,
            no_new_privs: false,
            oom_score_adj: 0,
            oom_score_adj_min: 0,
        }
    }
}

impl GroupSignals {
    /// exec: handled signals go back to default; ignored stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = KSigAction::default();
            }
        }
    }

    /// fork: the same dispositions, nothing pending.
    pub fn fork_copy(&self) -> GroupSignals {
        GroupSignals {
            actions: self.actions,
            no_new_privs: self.no_new_privs,
            oom_score_adj: self.oom_score_adj,
            oom_score_adj_min: self.oom_score_adj_min,
            ..Default::default()
        }
    }

    fn is_ignored(&self, sig: i32) -> bool {
        let h = self.actions[(sig - 1) as usize].handler;
        h == SIG_IGN || (h == SIG_DFL && matches!(sig, SIGCHLD | SIGURG | SIGWINCH | SIGCONT))
    }
}

/// A thread's signal state.
#[derive(Default)]
pub struct SigInner {
    pub blocked: u64,
    pub pending: Vec<Queued>,
    /// sigsuspend/pselect: the mask to restore after the handler.
    pub saved_mask: Option<u64>,
    /// The page-fault error code of this thread's last unresolved fault
    /// (Linux's `thread.error_code`): `sigcontext.err` of a SIGSEGV frame.
    pub fault_err: u64,
    pub altstack: StackT,
    /// The signals a sigtimedwait is waiting for (unblocked meanwhile;
    /// Linux's real_blocked): still "blocked" for init's protection.
    pub sigwait: u64,
}

/// A task's (thread's) signal state.
#[derive(Default)]
pub struct SignalState {
    inner: Mutex<SigInner>,
}

impl SignalState {
    pub fn lock(&self) -> MutexGuard<'_, SigInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new thread or process inherits the mask (and the alternate
    /// stack, for fork), nothing pending.
    pub fn fork_copy(&self, thread: bool) -> SignalState {
        let s = self.lock();
        let altstack = if thread {
            StackT {
                flags: SS_DISABLE,
                ..Default::default()
            }
        } else {
            s.altstack
        };
        SignalState {
            inner: Mutex::new(SigInner {
                blocked: s.blocked,
                altstack,
                ..Default::default()
            }),
        }
    }

    pub fn blocked(&self) -> u64 {
        self.lock().blocked
    }
}

impl Task {
    /// Whether something would interrupt a blocking call now: a signal
    /// that is not blocked, or the process exiting.
    pub fn signal_pending(&self) -> bool {
        let (group_has, exiting) = {
            let g = self.group.sig();
            let dying = g.exit.is_some() || g.exec_leader.is_some_and(|t| t != self.tid());
            (g.shared.iter().map(|q| q.signo).collect::<Vec<_>>(), dying)
        };
        if exiting || self.ptrace.trap_pending() {
            return true;
        }
        let s = self.signals.lock();
        s.pending
            .iter()
            .any(|q| q.forced || s.blocked & bit(q.signo) == 0)
            || group_has.iter().any(|&n| s.blocked & bit(n) == 0)
    }
}

/// RLIMIT_SIGPENDING: whether a real-time signal sent by sigqueue, tkill
/// or tgkill to `target` must fail with EAGAIN because the signals queued
/// for `target`'s real user already reach `target`'s limit (Linux's
/// __sigqueue_alloc: kill()'s SI_USER and the kernel's own signals are
/// never refused, and a classic signal only loses its information; see
/// [`send_kill`] for kill()'s real-time signals).
pub fn sigpending_full(target: &ThreadGroup, signo: i32, code: i32) -> bool {
    signo >= SIGRTMIN && code < 0 && over_sigpending_limit(target)
}

/// kill() of a real-time signal past RLIMIT_SIGPENDING: Linux does not
/// fail, but queues no information; the signal merges into a pending
/// instance of itself, or is delivered once as from nobody (si_pid and
/// si_uid 0).
pub(crate) fn send_kill(g: &Arc<ThreadGroup>, mut q: Queued) {
    if q.signo >= SIGRTMIN && over_sigpending_limit(g) {
        let pending = g.sig().shared.iter().any(|p| p.signo == q.signo)
            || g.threads()
                .iter()
                .any(|t| t.signals.lock().pending.iter().any(|p| p.signo == q.signo));
        if pending {
            return;
        }
        q.a = 0;
    }
    send_group(g, q);
}

/// Whether the signals queued for `target`'s real user reach `target`'s
/// RLIMIT_SIGPENDING.
fn over_sigpending_limit(target: &ThreadGroup) -> bool {
    let limit = target.limit(RLIMIT_SIGPENDING)[0];
    let uid = target.creds.lock().unwrap_or_else(|p| p.into_inner()).ruid;
    let groups: Vec<Arc<ThreadGroup>> = crate::kernel()
        .tasks
        .lock()
        .values()
        .filter_map(|n| n.group.clone())
        .collect();
    let mut queued = 0u64;
    for g in groups {
        if g.creds.lock().unwrap_or_else(|p| p.into_inner()).ruid != uid {
            continue;
        }
        queued += g.sig().shared.len() as u64;
        for t in g.threads() {
            queued += t.signals.lock().pending.len() as u64;
        }
    }
    queued >= limit
}

/// The kernel's first real-time signal (glibc reserves 32 and 33).
const SIGRTMIN: i32 = 32;

/// RLIMIT_SIGPENDING's index.
const RLIMIT_SIGPENDING: usize = 11;

/// Queues a signal for one thread and kicks it. Ignored signals are
/// dropped at once (as Linux does), unless blocked.
pub fn send_thread(task: &Task, q: Queued) {
    if init_protected(&task.group, &q) {
        return;
    }
    if q.signo == SIGKILL || q.signo == SIGCONT || bit(q.signo) & STOP_SIGNALS != 0 {
        // These act on the whole process.
        return send_group(&task.group, q);
    }
    {
        let g = task.group.sig();
        let mut s = task.signals.lock();
        // A tracee gets even ignored signals: its tracer sees them.
        if !q.forced
            && g.is_ignored(q.signo)
            && s.blocked & bit(q.signo) == 0
            && !task.ptrace.is_traced()
        {
            return;
        }
        if q.signo < 32 && s.pending.iter().any(|p| p.signo == q.signo) {
            return;
        }
        s.pending.push(q);
    }
    task.interrupt();
    task.waker.poke();
}

/// Queues a signal for a process and kicks its threads.
pub fn send_group(group: &Arc<ThreadGroup>, q: Queued) {
    if q.signo == 0 || init_protected(group, &q) {
        return;
    }
    if q.signo == SIGKILL {
        // The group's exit is recorded before any ptrace stop is released:
        // a tracee woken by the kill must find its process exiting, or it
        // could run on (to its own exit) before the exit is set.
        group_exit(
            group,
            ExitStatus::Killed {
                signo: SIGKILL,
                core: false,
            },
        );
        crate::task::ptrace::on_sigkill(group);
        return;
    }
    let mut continued = false;
    {
        let mut g = group.sig();
        if g.exit.is_some() {
            return;
        }
        if q.signo == SIGCONT {
            // SIGCONT continues at once, whatever its disposition, and
            // discards pending stops.
            g.shared.retain(|p| bit(p.signo) & STOP_SIGNALS == 0);
            for t in group.threads() {
                t.signals
                    .lock()
                    .pending
                    .retain(|p| bit(p.signo) & STOP_SIGNALS == 0);
            }
            if g.stopped.take().is_some() {
                continued = true;
            }
        } else if bit(q.signo) & STOP_SIGNALS != 0 {
            g.shared.retain(|p| p.signo != SIGCONT);
        }
        let blocked_everywhere = group
            .threads()
            .iter()
            .all(|t| t.signals.blocked() & bit(q.signo) != 0);
        let drop_it = g.is_ignored(q.signo)
            && !blocked_everywhere
            && !crate::task::ptrace::group_traced(group);
        let dup = q.signo < 32 && g.shared.iter().any(|p| p.signo == q.signo);
        if !drop_it && !dup {
            g.shared.push(q);
        }
    }
    if continued {
        notify_parent_of_stop(group, None);
    }
    group.kick_all();
}

/// As Linux's SIGNAL_UNKILLABLE: a signal a guest process sends to init
/// (kill, tkill, sigqueue, pidfd, SIGPIPE, a parent-death signal, a
/// POSIX timer: every si_code <= 0, which a guest can give) is
/// dropped when init has no handler for it and does not block it, SIGKILL
/// and SIGSTOP included.
/// Signals the kernel raises itself (SI_KERNEL: the terminal's ^C, the
/// host's requests through the management console or the OCI runtime)
/// and faults are not filtered, so `ruml -- CMD` ends on ^C as CMD would.
///
/// The init of a child PID namespace is protected the same way, but for
/// SIGKILL and SIGSTOP sent by kill/tkill from outside its namespace
/// (Linux's SIGNAL_UNKILLABLE with `force` for a sender in an ancestor
/// namespace). A signal queued with another code counts as sent from
/// inside: its si_pid is the sender's to choose.
fn init_protected(group: &ThreadGroup, q: &Queued) -> bool {
    if group.tgid() != 1 {
        let ns = group.pid_ns();
        if ns.is_root() || ns.init() != Some(group.tgid()) {
            return false;
        }
        let from_outside = (q.code == SI_USER || q.code == SI_TKILL) && !ns.sees(q.a as u32 as i32);
        if from_outside && (q.signo == SIGKILL || q.signo == SIGSTOP) {
            return false;
        }
    }
    !q.forced
        && q.code <= 0
        && (1..=64).contains(&q.signo)
        && group.sig().actions[(q.signo - 1) as usize].handler == SIG_DFL
        // A blocked signal is kept: init may take it with sigtimedwait
        // (busybox init does).
        && group.threads().iter().all(|t| {
            let s = t.signals.lock();
            (s.blocked | s.sigwait) & bit(q.signo) == 0
        })
}

/// Starts a group exit: every thread of the process leaves with `status`.
pub fn group_exit(group: &Arc<ThreadGroup>, status: ExitStatus) {
    {
        let mut g = group.sig();
        if g.exit.is_none() {
            g.exit = Some(status);
        }
        g.stopped = None;
    }
    group.kick_all();
}

/// Sends `signo` from the kernel to process `tgid`.
pub fn send_to_process(tgid: i32, signo: i32) {
    if let Some(g) = crate::kernel().tasks.group(tgid) {
        send_group(
            &g,
            Queued {
                signo,
                code: SI_KERNEL,
                a: 0,
                b: 0,
                forced: false,
            },
        );
    }
}

/// Sends `signo` from the kernel to every process of group `pgid`.
pub fn send_to_pgrp(pgid: i32, signo: i32) {
    let groups: Vec<Arc<ThreadGroup>> = {
        let tree = crate::kernel().tasks.lock();
        tree.values()
            .filter(|n| n.pgid == pgid)
            .filter_map(|n| n.group.clone())
            .collect()
    };
    for g in groups {
        send_group(
            &g,
            Queued {
                signo,
                code: SI_KERNEL,
                a: 0,
                b: 0,
                forced: false,
            },
        );
    }
}

/// Whether the task ignores or blocks `signo` (SIGTTIN/SIGTTOU rules).
pub fn ignores_or_blocks(task: &Task, signo: i32) -> bool {
    task.signals.blocked() & bit(signo) != 0
        || task.group.sig().actions[(signo - 1) as usize].handler == SIG_IGN
}

/// Whether a parent process reaps its children at once (SIGCHLD ignored
/// or SA_NOCLDWAIT).
pub fn ignores_children(group: &ThreadGroup) -> bool {
    let g = group.sig();
    let a = g.actions[(SIGCHLD - 1) as usize];
    a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0
}

/// A synchronous signal from a fault: delivered even if blocked or
/// ignored (then with the default action, as Linux's force_sig).
pub fn force_fault(task: &Task, signo: i32, code: i32, addr: u64) {
    let mut g = task.group.sig();
    let mut s = task.signals.lock();
    let i = (signo - 1) as usize;
    if s.blocked & bit(signo) != 0 || g.actions[i].handler == SIG_IGN {
        g.actions[i] = KSigAction::default();
        s.blocked &= !bit(signo);
    }
    s.pending.insert(
        0,
        Queued {
            signo,
            code,
            a: addr,
            b: 0,
            forced: true,
        },
    );
}

/// Tells the parent that the process stopped (`Some(sig)`) or continued.
fn notify_parent_of_stop(group: &Arc<ThreadGroup>, stopped: Option<i32>) {
    let pid = group.tgid();
    let parent = {
        let mut tree = crate::kernel().tasks.lock();
        let Some(n) = tree.get_mut(&pid) else { return };
        match stopped {
            Some(s) => {
                n.stop_report = Some(s);
                n.cont_report = false;
            }
            None => {
                n.stop_report = None;
                n.cont_report = true;
            }
        }
        let ppid = n.ppid;
        tree.get(&ppid).and_then(|p| p.group.clone())
    };
    let Some(p) = parent else { return };
    let nocldstop = p.sig().actions[(SIGCHLD - 1) as usize].flags & SA_NOCLDSTOP != 0;
    if !nocldstop {
        let (code, b) = match stopped {
            Some(s) => (CLD_STOPPED, s as u64),
            None => (CLD_CONTINUED, SIGCONT as u64),
        };
        send_group(
            &p,
            Queued {
                signo: SIGCHLD,
                code,
                a: pid as u64,
                b,
                forced: false,
            },
        );
    }
    for t in p.threads() {
        t.waker.poke();
    }
}

/// Turns an interrupted call's ERESTART* result into EINTR or a restart,
/// given the handler about to run (None: no handler runs).
fn fixup_restart(r: &mut TaskRunner, act: Option<&KSigAction>) {
    if !r.in_syscall {
        return;
    }
    r.in_syscall = false;
    // As Linux (syscall_get_nr < 0): a tracer that set orig_rax to -1 in
    // a stop took the task out of its system call; nothing restarts.
    if (r.regs.orig_rax as i64) < 0 {
        return;
    }
    let e = -(r.regs.rax as i64);
    let restart = match e {
        512 => act.is_none_or(|a| a.flags & SA_RESTART != 0),
        513 => true,
        514 | 516 => act.is_none(),
        _ => return,
    };
    if restart {
        r.regs.rax = if e == 516 {
            crate::syscalls::names::nr::RESTART_SYSCALL
        } else {
            r.regs.orig_rax
        };
        r.regs.rip = r.regs.rip.wrapping_sub(2);
    } else {
        r.regs.rax = crate::errno::Errno::EINTR.as_return();
    }
}

/// Takes the next signal to deliver: the thread's own first (faults
/// first of all), then the process's.
fn dequeue(task: &Task) -> Option<(Queued, KSigAction)> {
    let mut g = task.group.sig();
    let mut s = task.signals.lock();
    let blocked = s.blocked;
    let q = if let Some(i) = s
        .pending
        .iter()
        .position(|q| q.forced || blocked & bit(q.signo) == 0)
    {
        s.pending.remove(i)
    } else if let Some(i) = g.shared.iter().position(|q| blocked & bit(q.signo) == 0) {
        g.shared.remove(i)
    } else {
        return None;
    };
    let action = g.actions[(q.signo - 1) as usize];
    drop(s);
    drop(g);
    Some((crate::time::timers::on_dequeue(&task.group, q), action))
}

/// Delivers what is pending and unblocked: exits, stops, default actions,
/// or handler frames on the guest stack. Returns true once the task has
/// exited (the loop must end).
pub fn deliver_pending(r: &mut TaskRunner) -> bool {
    let task = r.task.clone();
    let group = task.group.clone();
    loop {
        let (exiting, stopped, exec_leader) = {
            let g = group.sig();
            (g.exit, g.stopped, g.exec_leader)
        };
        if exiting.is_some() || exec_leader.is_some_and(|t| t != task.tid()) {
            exit::exit_thread(&task);
            return true;
        }
        if crate::container::frozen() {
            // `ruml oci pause`: held here until resume (see container.rs).
            crate::container::hold_while_frozen(&task);
            continue;
        }
        // A tracee reports group stops and PTRACE_INTERRUPT to its tracer
        // (and runs again when the tracer says so).
        if crate::task::ptrace::jobctl_trap(r) {
            continue;
        }
        if stopped.is_some() && !task.ptrace.is_traced() {
            // Stopped: only SIGCONT or SIGKILL (a group exit) goes on, or
            // a tracer attaching.
            task.sleep_until_poked(|| {
                let g = group.sig();
                g.stopped.is_none() || g.exit.is_some() || task.ptrace.is_traced()
            });
            continue;
        }
        let Some((q, act)) = dequeue(&task) else {
            fixup_restart(r, None);
            // One guard: a second lock() inside `if let` on the first's
            // temporary would wait for itself.
            let mut s = task.signals.lock();
            if let Some(m) = s.saved_mask.take() {
                s.blocked = m;
            }
            return false;
        };
        // Signal-delivery-stop: the tracer may change or cancel it.
        let Some((q, act)) = crate::task::ptrace::signal_stop(r, q, act) else {
            continue;
        };
        if crate::log::strace_enabled() {
            let t = crate::log::since_boot();
            eprintln!(
                "{}.{:06} [{}] --- signal {} code {} handler {:#x}",
                t.as_secs(),
                t.subsec_micros(),
                task.tid(),
                q.signo,
                q.code,
                act.handler
            );
        }
        match act.handler {
            _ if q.signo == SIGKILL => group_exit(
                &group,
                ExitStatus::Killed {
                    signo: SIGKILL,
                    core: false,
                },
            ),
            SIG_IGN => {}
            SIG_DFL => match q.signo {
                SIGCHLD | SIGURG | SIGWINCH | SIGCONT => {}
                SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => {
                    // Terminal stops don't stick in an orphaned process group.
                    let orphan = q.signo != SIGSTOP
                        && crate::task::process_ids(group.tgid())
                            .is_some_and(|ids| crate::task::is_orphaned_pgrp(ids.pgid));
                    if !orphan {
                        let newly = {
                            let mut g = group.sig();
                            g.exit.is_none() && g.stopped.replace(q.signo).is_none()
                        };
                        if newly {
                            notify_parent_of_stop(&group, Some(q.signo));
                            group.kick_all();
                        }
                    }
                }
                sig => {
                    let core = crate::task::coredump::is_core_signal(sig)
                        && crate::task::coredump::dump(r, &q);
                    crate::task::ptrace::exit_event(
                        r,
                        ExitStatus::Killed { signo: sig, core },
                        None,
                    );
                    group_exit(&group, ExitStatus::Killed { signo: sig, core });
                }
            },
            _ => {
                fixup_restart(r, Some(&act));
                if let Err(e) = setup_frame(r, &q, &act) {
                    // No room for the frame: Linux kills with SIGSEGV.
                    crate::log::kprint(&format!(
                        "pid {}: cannot deliver signal {} ({e:?}): killed",
                        task.tid(),
                        q.signo
                    ));
                    let segv = Queued {
                        signo: SIGSEGV,
                        code: 128, // SI_KERNEL
                        a: 0,
                        b: 0,
                        forced: true,
                    };
                    let core = crate::task::coredump::dump(r, &segv);
                    group_exit(
                        &group,
                        ExitStatus::Killed {
                            signo: SIGSEGV,
                            core,
                        },
                    );
                }
            }
        }
    }
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// The XSAVE image of a freshly initialized FPU, shaped like `cur`.
fn init_fpu_state(cur: &ruml_host::FpuState) -> ruml_host::FpuState {
    let mut b = vec![0u8; cur.0.len()];
    if b.len() >= 576 {
        b[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        b[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        b[28..32].copy_from_slice(&cur.0[28..32]); // MXCSR_MASK
        b[464..512].copy_from_slice(&cur.0[464..512]); // software-reserved
                                                       // XSTATE_BV: x87 and SSE hold the values above; the rest is init.
        b[512..520].copy_from_slice(&3u64.to_le_bytes());
    }
    ruml_host::FpuState(b)
}

fn on_altstack(ss: &StackT, sp: u64) -> bool {
    ss.flags & SS_DISABLE == 0 && ss.size > 0 && sp > ss.sp && sp - ss.sp <= ss.size
}

/// Builds an rt_sigframe: return address (sa_restorer), ucontext, siginfo
/// and the XSAVE area, and points the registers at the handler.
fn setup_frame(r: &mut TaskRunner, q: &Queued, act: &KSigAction) -> KResult<()> {
    if act.flags & SA_RESTORER == 0 {
        // x86_64 has no kernel-provided trampoline: like Linux, the
        // program must supply one; without it the handler can't return.
        return error!(EFAULT);
    }
    let mm = r.task.mm();
    let regs = r.regs;
    let (altstack, mask_to_save) = {
        let mut s = r.task.signals.lock();
        let m = s.saved_mask.take().unwrap_or(s.blocked);
        (s.altstack, m)
    };
    let mut sp = regs.rsp;
    let use_alt = act.flags & SA_ONSTACK != 0
        && altstack.flags & SS_DISABLE == 0
        && altstack.size > 0
        && !on_altstack(&altstack, sp);
    if use_alt {
        sp = altstack.sp + altstack.size;
        if altstack.flags & SS_AUTODISARM != 0 {
            r.task.signals.lock().altstack = StackT {
                flags: SS_DISABLE,
                ..Default::default()
            };
        }
    } else {
        sp = sp.wrapping_sub(128); // the red zone
    }
    let fpu = r.ctx.as_ref().and_then(|a| a.get_fpu().ok());
    let mut fp_addr = 0u64;
    if let Some(f) = &fpu {
        let len = f.0.len() as u64 + 4;
        sp = (sp - len) & !63;
        fp_addr = sp;
        let mut blob = f.0.clone();
        if blob.len() >= 512 {
            // The software-reserved bytes tell sigreturn (and debuggers)
            // that an XSAVE area follows the legacy one.
            blob[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            blob[468..472].copy_from_slice(&((f.0.len() + 4) as u32).to_le_bytes());
            blob[480..484].copy_from_slice(&(f.0.len() as u32).to_le_bytes());
        }
        blob.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        mm.write_bytes(fp_addr, &blob)?;
    }
    const FRAME: u64 = 8 + 304 + 128;
    sp = ((sp - FRAME) & !15) - 8;
    let uc = sp + 8;
    let info = uc + 304;
    let mut f = Vec::with_capacity(FRAME as usize);
    let p = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());
    p(&mut f, act.restorer);
    // ucontext: flags (UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS), link, stack.
    p(&mut f, if fpu.is_some() { 1 | 2 | 4 } else { 2 | 4 });
    p(&mut f, 0);
    p(&mut f, altstack.sp);
    let ss_flags = if altstack.flags & SS_DISABLE != 0 || altstack.size == 0 {
        SS_DISABLE
    } else if on_altstack(&altstack, regs.rsp) {
        SS_ONSTACK
    } else {
        altstack.flags & SS_AUTODISARM
    };
    p(&mut f, ss_flags as u32 as u64);
    p(&mut f, altstack.size);
    for v in [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ] {
        p(&mut f, v);
    }
    p(&mut f, 0x33 | (0x2b << 48)); // cs, gs, fs, ss
    let (trapno, err) = match q.signo {
        SIGSEGV => (14, r.task.signals.lock().fault_err),
        _ => (0, 0),
    };
    p(&mut f, err);
    p(&mut f, trapno);
    p(&mut f, mask_to_save);
    p(
        &mut f,
        if q.signo == SIGSEGV || q.signo == SIGBUS {
            q.a
        } else {
            0
        },
    );
    p(&mut f, fp_addr);
    for _ in 0..8 {
        p(&mut f, 0);
    }
    p(&mut f, mask_to_save);
    f.extend_from_slice(&q.siginfo());
    f.resize(FRAME as usize, 0);
    mm.write_bytes(sp, &f)?;
    {
        let mut s = r.task.signals.lock();
        let mut mask = act.mask;
        if act.flags & SA_NODEFER == 0 {
            mask |= bit(q.signo);
        }
        s.blocked = (mask_to_save | mask) & !UNBLOCKABLE;
    }
    if act.flags & SA_RESETHAND != 0 {
        // Only the handler resets (SIG_DFL); the flags stay, as Linux's.
        r.task.group.sig().actions[(q.signo - 1) as usize].handler = 0;
    }
    // The handler starts with a clean FPU/SSE state (Linux's
    // fpu__clear_user_states): the interrupted state is in the frame.
    if let (Some(f), Some(c)) = (&fpu, r.ctx.as_ref()) {
        let _ = c.set_fpu(&init_fpu_state(f));
    }
    r.regs.rsp = sp;
    r.regs.rip = act.handler;
    r.regs.rdi = q.signo as u64;
    r.regs.rsi = info;
    r.regs.rdx = uc;
    r.regs.rax = 0;
    // The direction flag is clear on entry to a handler (ABI); so are the
    // trap and resume flags (Linux), and a debugger stepping into the
    // handler sees it stop there.
    r.regs.eflags &= !(0x400 | 0x100 | 0x1_0000);
    crate::task::ptrace::handler_entered(r);
    Ok(())
}

syscall_table! { pub fn signal_table;
    RT_SIGACTION => sys_rt_sigaction(sig: i32, act: UserAddr, old: UserAddr, size: usize),
    RT_SIGPROCMASK => sys_rt_sigprocmask(how: i32, set: UserAddr, old: UserAddr, size: usize),
    RT_SIGPENDING => sys_rt_sigpending(set: UserAddr, size: usize),
    RT_SIGRETURN => sys_rt_sigreturn(),
    RT_SIGSUSPEND => sys_rt_sigsuspend(set: UserAddr, size: usize),
    RT_SIGTIMEDWAIT => sys_rt_sigtimedwait(set: UserAddr, info: UserAddr, timeout: UserAddr, size: usize),
    RT_SIGQUEUEINFO => sys_rt_sigqueueinfo(pid: i32, sig: i32, info: UserAddr),
    RT_TGSIGQUEUEINFO => sys_rt_tgsigqueueinfo(tgid: i32, tid: i32, sig: i32, info: UserAddr),
    SIGALTSTACK => sys_sigaltstack(ss: UserAddr, old: UserAddr),
    PAUSE => sys_pause(),
    KILL => sys_kill(pid: i32, sig: i32),
    TKILL => sys_tkill(tid: i32, sig: i32),
    TGKILL => sys_tgkill(tgid: i32, tid: i32, sig: i32),
}

fn sys_rt_sigaction(
    ctx: &mut SyscallContext<'_>,
    sig: i32,
    act: UserAddr,
    old: UserAddr,
    size: usize,
) -> KResult<u64> {
    if size != 8 || !(1..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let new: Option<KSigAction> = if act.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(act.0)?)
    };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return error!(EINVAL);
    }
    let prev = {
        let mut g = ctx.task.group.sig();
        let prev = g.actions[(sig - 1) as usize];
        if let Some(mut n) = new {
            n.mask &= !UNBLOCKABLE;
            g.actions[(sig - 1) as usize] = n;
            // Setting SIG_IGN discards what is pending.
            if g.is_ignored(sig) {
                g.shared.retain(|q| q.signo != sig);
                for t in ctx.task.group.threads() {
                    t.signals
                        .lock()
                        .pending
                        .retain(|q| q.signo != sig || q.forced);
                }
            }
        }
        prev
    };
    if !old.is_null() {
        ctx.mm().write_val(old.0, &prev)?;
    }
    Ok(0)
}

fn sys_rt_sigprocmask(
    ctx: &mut SyscallContext<'_>,
    how: i32,
    set: UserAddr,
    old: UserAddr,
    size: usize,
) -> KResult<u64> {
    if size != 8 {
        return error!(EINVAL);
    }
    let new: Option<u64> = if set.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(set.0)?)
    };
    if new.is_some() && !(0..=2).contains(&how) {
        return error!(EINVAL);
    }
    let prev = {
        let mut s = ctx.task.signals.lock();
        let prev = s.blocked;
        if let Some(n) = new {
            s.blocked = match how {
                0 => s.blocked | n,
                1 => s.blocked & !n,
                _ => n,
            } & !UNBLOCKABLE;
        }
        prev
    };
    if !old.is_null() {
        ctx.mm().write_val(old.0, &prev)?;
    }
    Ok(0)
}

fn sys_rt_sigpending(ctx: &mut SyscallContext<'_>, set: UserAddr, size: usize) -> KResult<u64> {
    if size > 8 {
        return error!(EINVAL);
    }
    let shared = ctx
        .task
        .group
        .sig()
        .shared
        .iter()
        .fold(0u64, |m, q| m | bit(q.signo));
    let v = {
        let s = ctx.task.signals.lock();
        (s.pending.iter().fold(0u64, |m, q| m | bit(q.signo)) | shared) & s.blocked
    };
    ctx.mm().write_bytes(set.0, &v.to_le_bytes()[..size])?;
    Ok(0)
}

fn sys_rt_sigreturn(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let mm = ctx.mm();
    let uc = ctx.regs.rsp; // the handler's `ret` popped pretcode
    let mut raw = [0u8; 304];
    if mm.read_bytes(uc, &mut raw).is_err() {
        force_fault(ctx.task, SIGSEGV, SI_KERNEL, 0);
        return Ok(ctx.regs.rax);
    }
    let word = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
    let g = |i: usize| word(40 + i * 8);
    let r: &mut Registers = ctx.regs;
    (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) =
        (g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
    (
        r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip,
    ) = (g(8), g(9), g(10), g(11), g(12), g(13), g(14), g(15), g(16));
    // Only the user-changeable flags (CF PF AF ZF SF TF DF OF AC).
    r.eflags = (r.eflags & !0x40dd5) | (g(17) & 0x40dd5);
    r.orig_rax = u64::MAX;
    let fp_addr = g(23);
    let mask = word(296);
    {
        let mut s = ctx.task.signals.lock();
        s.blocked = mask & !UNBLOCKABLE;
        // restore_altstack: the frame's stack_t, if valid.
        let ss = StackT {
            sp: word(16),
            flags: word(24) as i32,
            pad: 0,
            size: word(32),
        };
        if !on_altstack(&s.altstack, r.rsp)
            && (ss.flags & SS_DISABLE != 0 || ss.size >= MINSIGSTKSZ)
        {
            s.altstack = StackT {
                flags: ss.flags & (SS_DISABLE | SS_AUTODISARM),
                ..ss
            };
        }
    }
    let mut fpu = None;
    if fp_addr != 0 {
        let mut legacy = [0u8; 512];
        if mm.read_bytes(fp_addr, &mut legacy).is_ok() {
            let magic = u32::from_le_bytes(legacy[464..468].try_into().unwrap_or([0; 4]));
            let size = u32::from_le_bytes(legacy[480..484].try_into().unwrap_or([0; 4])) as usize;
            if magic == FP_XSTATE_MAGIC1 && (512..=16384).contains(&size) {
                let mut blob = vec![0u8; size];
                if mm.read_bytes(fp_addr, &mut blob).is_ok() {
                    fpu = Some(ruml_host::FpuState(blob));
                }
            }
        }
    }
    let rax = ctx.regs.rax;
    ctx.after = Some(After::Sigreturn { fpu });
    Ok(rax)
}

fn read_sigset(ctx: &SyscallContext<'_>, set: UserAddr, size: usize) -> KResult<u64> {
    if size != 8 {
        return error!(EINVAL);
    }
    ctx.mm().read_val(set.0)
}

fn sys_rt_sigsuspend(ctx: &mut SyscallContext<'_>, set: UserAddr, size: usize) -> KResult<u64> {
    let mask = read_sigset(ctx, set, size)?;
    {
        let mut s = ctx.task.signals.lock();
        let old = s.blocked;
        s.saved_mask = Some(old);
        s.blocked = mask & !UNBLOCKABLE;
    }
    let _ = ctx.task.wait_until(None, || false);
    error!(ERESTARTNOHAND)
}

fn sys_pause(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let _ = ctx.task.wait_until(None, || false);
    error!(ERESTARTNOHAND)
}

fn sys_rt_sigtimedwait(
    ctx: &mut SyscallContext<'_>,
    set: UserAddr,
    info: UserAddr,
    timeout: UserAddr,
    size: usize,
) -> KResult<u64> {
    let want = read_sigset(ctx, set, size)? & !UNBLOCKABLE;
    let deadline = if timeout.is_null() {
        None
    } else {
        let t: [i64; 2] = ctx.mm().read_val(timeout.0)?;
        if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
            return error!(EINVAL);
        }
        Some(std::time::Instant::now() + std::time::Duration::new(t[0] as u64, t[1] as u32))
    };
    let take = |task: &Task| -> Option<Queued> {
        let mut g = task.group.sig();
        let mut s = task.signals.lock();
        if let Some(i) = s.pending.iter().position(|q| want & bit(q.signo) != 0) {
            return Some(s.pending.remove(i));
        }
        g.shared
            .iter()
            .position(|q| want & bit(q.signo) != 0)
            .map(|i| g.shared.remove(i))
    };
    let mut got = take(ctx.task);
    if got.is_none() {
        // Sleep with the awaited signals unblocked for the wake check.
        let saved = {
            let mut s = ctx.task.signals.lock();
            let b = s.blocked;
            s.blocked &= !want;
            s.sigwait = want;
            b
        };
        let r = ctx.task.wait_until(deadline, || false);
        {
            let mut s = ctx.task.signals.lock();
            s.blocked = saved;
            s.sigwait = 0;
        }
        got = take(ctx.task);
        if got.is_none() {
            return match r {
                Err(crate::errno::Errno::ETIMEDOUT) => error!(EAGAIN),
                _ => error!(EINTR),
            };
        }
    }
    let Some(q) = got else { return error!(EAGAIN) };
    let q = crate::time::timers::on_dequeue(&ctx.task.group, q);
    if !info.is_null() {
        ctx.mm().write_bytes(info.0, &q.siginfo())?;
    }
    Ok(q.signo as u64)
}

pub(crate) fn user_signal(ctx: &SyscallContext<'_>, sig: i32, code: i32) -> Queued {
    let uid = ctx
        .task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ruid;
    Queued {
        signo: sig,
        code,
        a: ctx.task.tgid() as u32 as u64 | (uid as u64) << 32,
        b: 0,
        forced: false,
    }
}

fn sys_rt_sigqueueinfo(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    sig: i32,
    info: UserAddr,
) -> KResult<u64> {
    if !(1..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let head: SigInfoHead = ctx.mm().read_val(info.0)?;
    // Only the kernel may claim to be the kernel or the user's kill().
    // Pids are the caller's PID namespace's.
    if (head.code >= 0 || head.code == SI_TKILL) && pid != ctx.task.pid_view(ctx.task.tgid()) {
        return error!(EPERM);
    }
    let g = ctx
        .task
        .pid_lookup(pid)
        .filter(|_| pid > 0)
        .and_then(|p| crate::kernel().tasks.group(p))
        .ok_or(crate::errno!(ESRCH))?;
    if !crate::task::caps::may_signal(ctx.task, &g, sig) {
        return error!(EPERM);
    }
    if sigpending_full(&g, sig, head.code) {
        return error!(EAGAIN);
    }
    send_group(
        &g,
        Queued {
            signo: sig,
            code: head.code,
            a: head.a,
            b: head.b,
            forced: false,
        },
    );
    Ok(0)
}

fn sys_rt_tgsigqueueinfo(
    ctx: &mut SyscallContext<'_>,
    tgid: i32,
    tid: i32,
    sig: i32,
    info: UserAddr,
) -> KResult<u64> {
    if !(1..=NSIG).contains(&sig) || tgid <= 0 || tid <= 0 {
        return error!(EINVAL);
    }
    let head: SigInfoHead = ctx.mm().read_val(info.0)?;
    if (head.code >= 0 || head.code == SI_TKILL) && tgid != ctx.task.pid_view(ctx.task.tgid()) {
        return error!(EPERM);
    }
    let (tgid, tid) = (
        ctx.task.pid_lookup(tgid).unwrap_or(0),
        ctx.task.pid_lookup(tid).unwrap_or(0),
    );
    let t = crate::kernel()
        .tasks
        .thread(tid)
        .filter(|t| t.tgid() == tgid)
        .ok_or(crate::errno!(ESRCH))?;
    if !crate::task::caps::may_signal(ctx.task, &t.group, sig) {
        return error!(EPERM);
    }
    if sigpending_full(&t.group, sig, head.code) {
        return error!(EAGAIN);
    }
    send_thread(
        &t,
        Queued {
            signo: sig,
            code: head.code,
            a: head.a,
            b: head.b,
            forced: false,
        },
    );
    Ok(0)
}

fn sys_sigaltstack(ctx: &mut SyscallContext<'_>, ss: UserAddr, old: UserAddr) -> KResult<u64> {
    let new: Option<StackT> = if ss.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(ss.0)?)
    };
    let sp = ctx.regs.rsp;
    let prev = {
        let mut s = ctx.task.signals.lock();
        let cur = s.altstack;
        let on = on_altstack(&cur, sp);
        let mut prev = cur;
        if cur.size == 0 || cur.flags & SS_DISABLE != 0 {
            prev = StackT {
                flags: SS_DISABLE,
                ..Default::default()
            };
        } else if on {
            prev.flags |= SS_ONSTACK;
        }
        if let Some(n) = new {
            if on {
                return error!(EPERM);
            }
            let mode = n.flags & !SS_AUTODISARM;
            if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
                return error!(EINVAL);
            }
            if mode == SS_DISABLE {
                s.altstack = StackT {
                    flags: SS_DISABLE,
                    ..Default::default()
                };
            } else {
                if n.size < MINSIGSTKSZ {
                    return error!(ENOMEM);
                }
                s.altstack = StackT {
                    sp: n.sp,
                    flags: n.flags & SS_AUTODISARM,
                    pad: 0,
                    size: n.size,
                };
            }
        }
        prev
    };
    if !old.is_null() {
        ctx.mm().write_val(old.0, &prev)?;
    }
    Ok(0)
}

fn sys_kill(ctx: &mut SyscallContext<'_>, pid: i32, sig: i32) -> KResult<u64> {
    if !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let q = user_signal(ctx, sig, SI_USER);
    // Pids as the caller's PID namespace names them (task/ns.rs).
    let ns = ctx.task.pid_ns();
    if pid > 0 {
        let g = ns
            .global(pid)
            .and_then(|p| crate::kernel().tasks.group(p))
            .ok_or(crate::errno!(ESRCH))?;
        if !crate::task::caps::may_signal(ctx.task, &g, sig) {
            return error!(EPERM);
        }
        send_kill(&g, q);
        return Ok(0);
    }
    if pid == i32::MIN {
        return error!(ESRCH);
    }
    // A process group (0: the caller's; -1: everyone but init and us).
    let me = ctx.task.tgid();
    let targets: Vec<Arc<ThreadGroup>> = {
        let tree = crate::kernel().tasks.lock();
        let my_pgid = tree.get(&me).map(|n| n.pgid).unwrap_or(0);
        let pgid = if pid < -1 {
            ns.global(-pid).unwrap_or(0)
        } else {
            0
        };
        let init = ns.init().unwrap_or(1);
        tree.iter()
            .filter(|(&p, _)| ns.sees(p))
            .filter(|(&p, n)| match pid {
                0 => n.pgid == my_pgid,
                -1 => p != init && p != me,
                _ => pgid != 0 && n.pgid == pgid,
            })
            .filter_map(|(_, n)| n.group.clone())
            .collect()
    };
    if targets.is_empty() {
        return error!(ESRCH);
    }
    // Success if any member may be signalled; EPERM if none may.
    let mut sent = false;
    for g in targets {
        if crate::task::caps::may_signal(ctx.task, &g, sig) {
            send_kill(&g, q);
            sent = true;
        }
    }
    if !sent {
        return error!(EPERM);
    }
    Ok(0)
}

fn sys_tkill(ctx: &mut SyscallContext<'_>, tid: i32, sig: i32) -> KResult<u64> {
    if tid <= 0 || !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let t = ctx
        .task
        .pid_lookup(tid)
        .and_then(|g| crate::kernel().tasks.thread(g))
        .ok_or(crate::errno!(ESRCH))?;
    if !crate::task::caps::may_signal(ctx.task, &t.group, sig) {
        return error!(EPERM);
    }
    if sig != 0 {
        if sigpending_full(&t.group, sig, SI_TKILL) {
            return error!(EAGAIN);
        }
        send_thread(&t, user_signal(ctx, sig, SI_TKILL));
    }
    Ok(0)
}

fn sys_tgkill(ctx: &mut SyscallContext<'_>, tgid: i32, tid: i32, sig: i32) -> KResult<u64> {
    if tgid <= 0 || tid <= 0 || !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let (tgid, tid) = (
        ctx.task.pid_lookup(tgid).unwrap_or(0),
        ctx.task.pid_lookup(tid).unwrap_or(0),
    );
    let t = crate::kernel()
        .tasks
        .thread(tid)
        .filter(|t| t.tgid() == tgid)
        .ok_or(crate::errno!(ESRCH))?;
    if !crate::task::caps::may_signal(ctx.task, &t.group, sig) {
        return error!(EPERM);
    }
    if sig != 0 {
        if sigpending_full(&t.group, sig, SI_TKILL) {
            return error!(EAGAIN);
        }
        send_thread(&t, user_signal(ctx, sig, SI_TKILL));
    }
    Ok(0)
}

/// SIGPIPE for a writer to a broken pipe (called by the fs layer).
pub fn send_sigpipe(task: &Task) {
    send_thread(
        task,
        Queued {
            signo: SIGPIPE,
            code: SI_USER,
            a: task.tgid() as u64,
            b: 0,
            forced: false,
        },
    );
}

/// Used by sigqueue-style senders that only know a pid.
pub fn queue_value(pid: i32, sig: i32, value: u64) -> KResult<()> {
    let g = crate::kernel()
        .tasks
        .group(pid)
        .ok_or(crate::errno!(ESRCH))?;
    send_group(
        &g,
        Queued {
            signo: sig,
            code: SI_QUEUE,
            a: 0,
            b: value,
            forced: false,
        },
    );
    Ok(())
}
