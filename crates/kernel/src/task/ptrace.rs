//! ptrace(2) for guest tasks, process_vm_readv/writev and /proc/PID/mem.
//!
//! The kernel implements ptrace on its own task state: a tracee never runs
//! under the host's ptrace on the guest's behalf. A stopped tracee's host
//! thread publishes its registers (and FPU state) in its [`PtraceState`]
//! and sleeps on its waker; the tracer's requests read and change that
//! copy, and a resume hands it back to the tracee's thread, which loads it
//! into its host context. Memory is read and written through the tracee's
//! `Mm` with FOLL_FORCE semantics: a write into read-only private text
//! copies the page (copy-on-write), so breakpoints never reach a file's
//! pages or another process.
//!
//! Stops, where the tracee's loop makes them (as Linux reports them
//! through wait):
//! - signal-delivery-stop: `signal::deliver_pending`, after a signal is
//!   dequeued ([`signal_stop`]); the tracer's signal replaces it;
//! - group-stop and PTRACE_EVENT_STOP (INTERRUPT, a seized child's first
//!   stop, LISTEN's re-trap): [`jobctl_trap`], at the top of the delivery
//!   loop;
//! - syscall-enter/exit-stop: [`syscall_enter`] and [`syscall_exit`]
//!   around `syscalls::dispatch` in the task loop. Order at system-call
//!   entry is Linux's: the ptrace syscall-enter stop first, then seccomp;
//!   seccomp's SECCOMP_RET_TRACE calls [`ptrace_event_seccomp`];
//! - event stops: fork/vfork/clone ([`fork_event`]), vfork-done, exec
//!   ([`exec_event`]), exit ([`exit_event`]).
//!
//! Wait: a tracer's wait4/waitid sees its tracees' stops and exits
//! ([`wait_scan`]); a traced process that exits is reported to its tracer
//! first, and only then to its real parent (SIGCHLD and the zombie), as
//! Linux does.
//!
//! Locking: the registry [`TRACEES`] and each task's [`Ptrace`] mutex.
//! Lock order: task tree → `TRACEES` → a task's `Ptrace` → group signals →
//! task signals. None is held while sleeping, touching guest memory or
//! sending a signal. A tracer is a process (its tgid): any thread of it may
//! wait and make requests (Linux ties requests to the one tracer thread).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ruml_host::{FpuState, Registers};

use super::{ExitStatus, ProcNode, Task, TaskRunner, ThreadGroup};
use crate::errno::KResult;
use crate::error;
use crate::signal::{self, KSigAction, Queued, SIGCHLD, SIGKILL, SIGSTOP, SIGTRAP};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

const PTRACE_TRACEME: i64 = 0;
const PTRACE_PEEKTEXT: i64 = 1;
const PTRACE_PEEKDATA: i64 = 2;
const PTRACE_PEEKUSR: i64 = 3;
const PTRACE_POKETEXT: i64 = 4;
const PTRACE_POKEDATA: i64 = 5;
const PTRACE_POKEUSR: i64 = 6;
const PTRACE_CONT: i64 = 7;
const PTRACE_KILL: i64 = 8;
const PTRACE_SINGLESTEP: i64 = 9;
const PTRACE_GETREGS: i64 = 12;
const PTRACE_SETREGS: i64 = 13;
const PTRACE_ARCH_PRCTL: i64 = 30;
const PTRACE_GETFPREGS: i64 = 14;
const PTRACE_SETFPREGS: i64 = 15;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_DETACH: i64 = 17;
const PTRACE_SYSCALL: i64 = 24;
const PTRACE_SYSEMU: i64 = 31;
const PTRACE_SYSEMU_SINGLESTEP: i64 = 32;
const PTRACE_SETOPTIONS: i64 = 0x4200;
/// The old number of PTRACE_SETOPTIONS, still accepted by Linux on x86
/// (UML 6.1's boot checks use it).
const PTRACE_OLDSETOPTIONS: i64 = 21;
const PTRACE_GETEVENTMSG: i64 = 0x4201;
const PTRACE_GETSIGINFO: i64 = 0x4202;
const PTRACE_SETSIGINFO: i64 = 0x4203;
const PTRACE_GETREGSET: i64 = 0x4204;
const PTRACE_SETREGSET: i64 = 0x4205;
const PTRACE_SEIZE: i64 = 0x4206;
const PTRACE_INTERRUPT: i64 = 0x4207;
const PTRACE_LISTEN: i64 = 0x4208;
const PTRACE_PEEKSIGINFO: i64 = 0x4209;
const PTRACE_GET_SYSCALL_INFO: i64 = 0x420e;

pub const PTRACE_O_TRACESYSGOOD: u32 = 1;
pub const PTRACE_O_TRACEFORK: u32 = 2;
pub const PTRACE_O_TRACEVFORK: u32 = 4;
pub const PTRACE_O_TRACECLONE: u32 = 8;
pub const PTRACE_O_TRACEEXEC: u32 = 0x10;
pub const PTRACE_O_TRACEVFORKDONE: u32 = 0x20;
pub const PTRACE_O_TRACEEXIT: u32 = 0x40;
pub const PTRACE_O_TRACESECCOMP: u32 = 0x80;
pub const PTRACE_O_EXITKILL: u32 = 0x10_0000;
pub const PTRACE_O_SUSPEND_SECCOMP: u32 = 0x20_0000;
const PTRACE_O_MASK: u32 = 0xff | PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;

pub const PTRACE_EVENT_FORK: u32 = 1;
pub const PTRACE_EVENT_VFORK: u32 = 2;
pub const PTRACE_EVENT_CLONE: u32 = 3;
pub const PTRACE_EVENT_EXEC: u32 = 4;
pub const PTRACE_EVENT_VFORK_DONE: u32 = 5;
pub const PTRACE_EVENT_EXIT: u32 = 6;
pub const PTRACE_EVENT_SECCOMP: u32 = 7;
pub const PTRACE_EVENT_STOP: u32 = 128;

const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;
const NT_X86_XSTATE: u64 = 0x202;

const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;
const CLD_TRAPPED: i32 = 4;
const SI_USER: i32 = 0;
const TRAP_BRKPT: i32 = 1;

const TF: u64 = 0x100;
/// EFLAGS bits a tracer may change (Linux's FLAG_MASK): CF PF AF ZF SF TF
/// DF OF NT RF AC.
const FLAG_MASK: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4000 | 0x1_0000 | 0x4_0000;
/// fs_base and gs_base must lie below this (TASK_SIZE_MAX).
const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
/// sizeof(struct user_regs_struct).
const USER_REGS_SIZE: usize = 27 * 8;
/// offsetof(struct user, u_debugreg) and sizeof(struct user).
const USER_DEBUGREG: u64 = 848;
const USER_SIZE: u64 = 912;
const FXSAVE_SIZE: usize = 512;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Why a tracee sits in a ptrace stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    Signal,
    Group,
    SyscallEnter,
    SyscallExit,
    Event(u32),
}

/// How the tracer resumed the tracee (the last CONT/SYSCALL/... request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SysMode {
    #[default]
    None,
    /// PTRACE_SYSCALL: stops at entry and exit.
    Trace,
    /// PTRACE_SYSEMU: a stop at entry; the call is not run.
    Emu,
}

/// What a system-call stop reports through PTRACE_GET_SYSCALL_INFO.
#[derive(Clone, Copy, Debug, Default)]
struct SysInfo {
    /// 1 entry, 2 exit, 3 seccomp.
    op: u8,
    nr: u64,
    args: [u64; 6],
    rval: i64,
    ret_data: u32,
}

/// A task's ptrace state, as tracee. Behind [`Ptrace`]'s mutex (see the
/// module's lock order); the tracee's own host thread writes the stop
/// fields and sleeps; the tracer's requests read and write the rest while
/// the tracee is stopped.
#[derive(Default)]
pub struct PtraceState {
    /// The tracer process (tgid), 0 if none.
    tracer: i32,
    options: u32,
    seized: bool,
    /// The stop the tracee sits in, if it does.
    stopped: Option<StopKind>,
    /// Stopped by PTRACE_LISTEN: not runnable, not reportable, not
    /// available for requests until it traps again.
    listening: bool,
    /// The status word wait has not reported yet.
    report: Option<i32>,
    /// The tracee ended (thread exit, or the process for the leader) and
    /// wait has not reported it yet.
    exited: Option<ExitStatus>,
    /// The code of the thread's own exit(2), for its exit report.
    exit_code: Option<i32>,
    /// Set by the tracer's resume: the signal to deliver (or 0).
    resume: Option<i32>,
    sysmode: SysMode,
    step: bool,
    /// TF was set by the kernel for PTRACE_SINGLESTEP (not by the guest).
    forced_tf: bool,
    /// PTRACE_INTERRUPT (or a seized child's first stop) is pending.
    interrupt: bool,
    /// The current group stop was reported.
    group_stop_done: bool,
    /// The tracee's registers while stopped.
    regs: Registers,
    regs_dirty: bool,
    fpu: Option<FpuState>,
    fpu_dirty: bool,
    /// The stop's siginfo (None: a non-seized group-stop has none).
    siginfo: Option<[u8; 128]>,
    eventmsg: u64,
    sysinfo: SysInfo,
    /// The tid at the last system-call entry (exec's PTRACE_EVENT_EXEC
    /// message: the former tid).
    entry_tid: i32,
    /// A fork/vfork/clone event for the parent to report: (event, child).
    fork_event: Option<(u32, i32)>,
}

/// The ptrace slot of a [`Task`]: its state, plus lock-free flags the hot
/// paths (signal delivery, blocking waits) read.
#[derive(Default)]
pub struct Ptrace {
    state: Mutex<PtraceState>,
    traced: AtomicBool,
    /// A trap (PTRACE_INTERRUPT) is pending: blocking calls return.
    trap: AtomicBool,
    /// SIGKILL arrived: no ptrace stop holds the task any more.
    killed: AtomicBool,
}

impl Ptrace {
    fn lock(&self) -> MutexGuard<'_, PtraceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the task has a tracer.
    pub fn is_traced(&self) -> bool {
        self.traced.load(Ordering::Acquire)
    }

    /// Whether a ptrace trap waits for the task (interrupts blocking calls).
    pub fn trap_pending(&self) -> bool {
        self.trap.load(Ordering::Acquire)
    }

    /// The tracer's pid, or 0 (/proc/PID/status TracerPid).
    pub fn tracer(&self) -> i32 {
        if !self.is_traced() {
            return 0;
        }
        self.lock().tracer
    }
}

/// Every task that is traced or whose exit its tracer has not yet seen.
static TRACEES: Mutex<Vec<Arc<Task>>> = Mutex::new(Vec::new());

fn tracees() -> MutexGuard<'static, Vec<Arc<Task>>> {
    TRACEES.lock().unwrap_or_else(|p| p.into_inner())
}

fn regs_to_words(r: &Registers) -> [u64; 27] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ]
}

/// Sets word `i` of user_regs_struct as Linux's putreg does: segment
/// selectors stay ruml's (a guest runs 64-bit code only), fs/gs bases must
/// be user addresses (EIO), eflags only in its user-changeable bits.
fn set_reg(r: &mut Registers, i: usize, v: u64) -> KResult<()> {
    let slot: &mut u64 = match i {
        0 => &mut r.r15,
        1 => &mut r.r14,
        2 => &mut r.r13,
        3 => &mut r.r12,
        4 => &mut r.rbp,
        5 => &mut r.rbx,
        6 => &mut r.r11,
        7 => &mut r.r10,
        8 => &mut r.r9,
        9 => &mut r.r8,
        10 => &mut r.rax,
        11 => &mut r.rcx,
        12 => &mut r.rdx,
        13 => &mut r.rsi,
        14 => &mut r.rdi,
        15 => &mut r.orig_rax,
        16 => &mut r.rip,
        18 => {
            r.eflags = (r.eflags & !FLAG_MASK) | (v & FLAG_MASK);
            return Ok(());
        }
        19 => &mut r.rsp,
        21 | 22 => {
            if v >= TASK_SIZE_MAX {
                return error!(EIO);
            }
            if i == 21 {
                &mut r.fs_base
            } else {
                &mut r.gs_base
            }
        }
        17 | 20 | 23..=26 => return Ok(()),
        _ => return error!(EIO),
    };
    *slot = v;
    Ok(())
}

fn siginfo_of(signo: i32, code: i32, pid: i32) -> [u8; 128] {
    let mut si = [0u8; 128];
    si[0..4].copy_from_slice(&signo.to_le_bytes());
    si[8..12].copy_from_slice(&code.to_le_bytes());
    si[16..20].copy_from_slice(&pid.to_le_bytes());
    si
}

fn rd_i32(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}

fn rd_u64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// SIGCHLD to the tracer and a wake-up of its waiters.
fn notify_tracer(tracer: i32, tid: i32, code: i32, status: i32) {
    let Some(g) = crate::kernel().tasks.group(tracer) else {
        return;
    };
    signal::send_group(
        &g,
        Queued {
            signo: SIGCHLD,
            code,
            a: tid as u64,
            b: status as u64,
            forced: false,
        },
    );
    for t in g.threads() {
        t.waker.poke();
    }
}

fn exit_code_of(st: ExitStatus) -> (i32, i32) {
    match st {
        ExitStatus::Exited(c) => (CLD_EXITED, c),
        ExitStatus::Killed { signo, core: true } => (CLD_DUMPED, signo),
        ExitStatus::Killed { signo, .. } => (CLD_KILLED, signo),
    }
}

/// Whether the task must leave (or not enter) a ptrace stop: SIGKILL, or
/// (unless `exiting_ok`) its process is exiting or exec'ing.
fn dying(task: &Task, exiting_ok: bool) -> bool {
    if task.ptrace.killed.load(Ordering::Acquire) {
        return true;
    }
    if exiting_ok {
        return false;
    }
    let g = task.group.sig();
    g.exit.is_some() || g.exec_leader.is_some_and(|t| t != task.tid())
}

/// Puts the tracee into a ptrace stop reporting `code` (wait's status is
/// `code << 8 | 0x7f`) and sleeps until the tracer resumes it. Returns the
/// signal the tracer resumed with, or None when the task is not traced or
/// must die (SIGKILL, a group exit).
fn stop(
    r: &mut TaskRunner,
    kind: StopKind,
    code: i32,
    siginfo: Option<[u8; 128]>,
    exiting_ok: bool,
) -> Option<i32> {
    let task = r.task.clone();
    if !task.ptrace.is_traced() || dying(&task, exiting_ok) {
        return None;
    }
    let fpu = r.ctx.as_ref().and_then(|c| c.get_fpu().ok());
    let tracer = {
        let mut ps = task.ptrace.lock();
        if ps.tracer == 0 {
            return None;
        }
        if ps.forced_tf {
            r.regs.eflags &= !TF;
            ps.forced_tf = false;
        }
        ps.regs = r.regs;
        ps.regs_dirty = false;
        ps.fpu = fpu;
        ps.fpu_dirty = false;
        ps.siginfo = siginfo;
        ps.stopped = Some(kind);
        ps.listening = false;
        ps.report = Some((code << 8) | 0x7f);
        ps.resume = None;
        ps.tracer
    };
    notify_tracer(tracer, task.tid(), CLD_TRAPPED, code);
    let group = task.group.clone();
    let group_stopped = || group.sig().stopped.is_some();
    let resumed = loop {
        task.sleep_until_poked(|| {
            if dying(&task, exiting_ok) {
                return true;
            }
            let ps = task.ptrace.lock();
            ps.resume.is_some()
                || ps.tracer == 0
                || (ps.listening && (ps.interrupt || !group_stopped()))
        });
        let mut ps = task.ptrace.lock();
        if dying(&task, exiting_ok) {
            break None;
        }
        if let Some(sig) = ps.resume.take() {
            break Some(sig);
        }
        if ps.tracer == 0 {
            break Some(0);
        }
        if ps.listening {
            // LISTEN ends: SIGCONT ended the group stop, or an INTERRUPT.
            ps.listening = false;
            ps.interrupt = false;
            task.ptrace.trap.store(false, Ordering::Release);
            let sig = group.sig().stopped.unwrap_or(SIGTRAP);
            let c = sig | ((PTRACE_EVENT_STOP as i32) << 8);
            ps.stopped = Some(StopKind::Event(PTRACE_EVENT_STOP));
            ps.siginfo = Some(siginfo_of(SIGTRAP, c, 0));
            ps.report = Some((c << 8) | 0x7f);
            let tr = ps.tracer;
            drop(ps);
            notify_tracer(tr, task.tid(), CLD_TRAPPED, c);
        }
    };
    let fpu = {
        let mut ps = task.ptrace.lock();
        ps.stopped = None;
        ps.listening = false;
        ps.report = None;
        let regs = ps.regs_dirty.then_some(ps.regs);
        let fpu = if ps.fpu_dirty { ps.fpu.take() } else { None };
        ps.fpu = None;
        if ps.step && resumed.is_some() && ps.tracer != 0 {
            let mut r2 = regs.unwrap_or(r.regs);
            if r2.eflags & TF == 0 {
                r2.eflags |= TF;
                ps.forced_tf = true;
            }
            r.regs = r2;
        } else if let Some(nr) = regs {
            r.regs = nr;
        }
        fpu
    };
    if let (Some(f), Some(c)) = (fpu, r.ctx.as_ref()) {
        let _ = c.set_fpu(&f);
    }
    resumed
}

/// An event stop (PTRACE_EVENT_*), if the tracer asked for it.
fn event(r: &mut TaskRunner, ev: u32, msg: u64, exiting_ok: bool) {
    let code = SIGTRAP | ((ev as i32) << 8);
    {
        let mut ps = r.task.ptrace.lock();
        ps.eventmsg = msg;
    }
    let _ = stop(
        r,
        StopKind::Event(ev),
        code,
        Some(siginfo_of(SIGTRAP, code, 0)),
        exiting_ok,
    );
}

fn option_set(task: &Task, opt: u32) -> bool {
    task.ptrace.is_traced() && {
        let ps = task.ptrace.lock();
        ps.tracer != 0 && ps.options & opt != 0
    }
}

/// Group-stop and PTRACE_EVENT_STOP traps of a traced task, at the top of
/// the signal-delivery loop. Returns true if the task stopped (the loop
/// checks again).
pub fn jobctl_trap(r: &mut TaskRunner) -> bool {
    let task = r.task.clone();
    if !task.ptrace.is_traced() {
        return false;
    }
    let group_stop = task.group.sig().stopped;
    let (code, kind, si) = {
        let mut ps = task.ptrace.lock();
        if ps.tracer == 0 {
            return false;
        }
        match group_stop {
            None => ps.group_stop_done = false,
            Some(sig) if !ps.group_stop_done => {
                ps.group_stop_done = true;
                ps.interrupt = false;
                task.ptrace.trap.store(false, Ordering::Release);
                if ps.seized {
                    let c = sig | ((PTRACE_EVENT_STOP as i32) << 8);
                    let si = siginfo_of(SIGTRAP, c, 0);
                    drop(ps);
                    let _ = stop(r, StopKind::Event(PTRACE_EVENT_STOP), c, Some(si), false);
                } else {
                    drop(ps);
                    let _ = stop(r, StopKind::Group, sig, None, false);
                }
                return true;
            }
            Some(_) => {}
        }
        if !ps.interrupt {
            return false;
        }
        ps.interrupt = false;
        task.ptrace.trap.store(false, Ordering::Release);
        let sig = group_stop.unwrap_or(SIGTRAP);
        let c = sig | ((PTRACE_EVENT_STOP as i32) << 8);
        (
            c,
            StopKind::Event(PTRACE_EVENT_STOP),
            siginfo_of(SIGTRAP, c, 0),
        )
    };
    let _ = stop(r, kind, code, Some(si), false);
    true
}

/// Signal-delivery-stop: the tracer sees `q` first and resumes with the
/// signal to deliver instead (0: none). Returns what to deliver, with its
/// action, or None.
pub fn signal_stop(r: &mut TaskRunner, q: Queued, act: KSigAction) -> Option<(Queued, KSigAction)> {
    if q.signo == SIGKILL || !r.task.ptrace.is_traced() {
        return Some((q, act));
    }
    let si = q.siginfo();
    let Some(sig) = stop(r, StopKind::Signal, q.signo, Some(si), false) else {
        // Not stopped after all (detached meanwhile, or dying).
        return Some((q, act));
    };
    if sig == 0 {
        return None;
    }
    let task = r.task.clone();
    let info = task.ptrace.lock().siginfo.unwrap_or(si);
    let nq = if sig == q.signo {
        Queued {
            signo: sig,
            code: rd_i32(&info, 8),
            a: rd_u64(&info, 16),
            b: rd_u64(&info, 24),
            forced: q.forced,
        }
    } else {
        let tracer = task.ptrace.tracer();
        Queued {
            signo: sig,
            code: SI_USER,
            a: tracer as u32 as u64,
            b: 0,
            forced: false,
        }
    };
    if !nq.forced && task.signals.blocked() & signal::bit(sig) != 0 {
        signal::send_thread(&task, nq);
        return None;
    }
    let act = task.group.sig().actions[(sig - 1) as usize];
    Some((nq, act))
}

/// A signal handler's frame is set up: a single-stepping tracee stops
/// at the handler's first instruction (Linux's user_single_step_report).
pub fn handler_entered(r: &mut TaskRunner) {
    if !r.task.ptrace.is_traced() {
        return;
    }
    let step = {
        let mut ps = r.task.ptrace.lock();
        ps.forced_tf = false;
        ps.step
    };
    if step {
        signal::force_fault(&r.task, SIGTRAP, TRAP_BRKPT, 0);
    }
}

/// What the task loop does with a system call after the entry stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Run it.
    Run,
    /// Skip it (orig_rax set to -1 by the tracer, or the task dies); rax
    /// is the result; the exit stop still follows.
    Skip,
    /// PTRACE_SYSEMU: not run, no exit stop.
    Emulated,
}

/// The syscall-enter stop (PTRACE_SYSCALL, PTRACE_SYSEMU). Runs before
/// seccomp filters, as on Linux.
pub fn syscall_enter(r: &mut TaskRunner) -> Entry {
    let task = r.task.clone();
    let (mode, sysgood) = {
        let mut ps = task.ptrace.lock();
        ps.entry_tid = task.tid();
        (ps.sysmode, ps.options & PTRACE_O_TRACESYSGOOD != 0)
    };
    if mode == SysMode::None {
        exit_check(r);
        return Entry::Run;
    }
    let code = if sysgood { SIGTRAP | 0x80 } else { SIGTRAP };
    {
        let mut ps = task.ptrace.lock();
        ps.eventmsg = 1;
        ps.sysinfo = SysInfo {
            op: 1,
            nr: r.regs.orig_rax,
            args: r.regs.syscall_args(),
            ..Default::default()
        };
    }
    let sig = stop(
        r,
        StopKind::SyscallEnter,
        code,
        Some(siginfo_of(SIGTRAP, code, 0)),
        false,
    );
    if let Some(s) = sig.filter(|&s| s > 0) {
        signal::send_thread(&task, sig_user(s, task.ptrace.tracer()));
    }
    if mode == SysMode::Emu {
        return Entry::Emulated;
    }
    if dying(&task, false) || r.regs.orig_rax == u64::MAX {
        return Entry::Skip;
    }
    exit_check(r);
    Entry::Run
}

/// exit(2) and exit_group(2) about to run: PTRACE_EVENT_EXIT first.
fn exit_check(r: &mut TaskRunner) {
    use crate::syscalls::names::nr;
    let n = r.regs.orig_rax;
    if n == nr::EXIT || n == nr::EXIT_GROUP {
        let code = (r.regs.rdi & 0xff) as i32;
        exit_event(r, ExitStatus::Exited(code), (n == nr::EXIT).then_some(code));
    }
}

fn sig_user(signo: i32, pid: i32) -> Queued {
    Queued {
        signo,
        code: SI_USER,
        a: pid as u32 as u64,
        b: 0,
        forced: false,
    }
}

/// The syscall-exit stop, or (single-stepping) the step's SIGTRAP.
pub fn syscall_exit(r: &mut TaskRunner, nr: u64) {
    let task = r.task.clone();
    if !task.ptrace.is_traced() {
        return;
    }
    let (mode, step, sysgood) = {
        let ps = task.ptrace.lock();
        (ps.sysmode, ps.step, ps.options & PTRACE_O_TRACESYSGOOD != 0)
    };
    if step {
        // Linux reports a stepped system call with SIGTRAP at its end.
        signal::force_fault(&task, SIGTRAP, TRAP_BRKPT, 0);
        return;
    }
    if mode != SysMode::Trace {
        return;
    }
    let code = if sysgood { SIGTRAP | 0x80 } else { SIGTRAP };
    {
        let mut ps = task.ptrace.lock();
        ps.eventmsg = 2;
        ps.sysinfo = SysInfo {
            op: 2,
            nr,
            rval: r.regs.rax as i64,
            ..Default::default()
        };
    }
    // The stop shows the call's number, as after Linux's syscall.
    r.regs.orig_rax = nr;
    let sig = stop(
        r,
        StopKind::SyscallExit,
        code,
        Some(siginfo_of(SIGTRAP, code, 0)),
        false,
    );
    if let Some(s) = sig.filter(|&s| s > 0) {
        signal::send_thread(&task, sig_user(s, task.ptrace.tracer()));
    }
}

/// How a SECCOMP_RET_TRACE result goes on (for task/seccomp.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeccompTrace {
    /// No tracer asked for it: the call fails with ENOSYS (Linux).
    NoTracer,
    /// The tracer skipped the call (orig_rax -1) or the task dies.
    Skip,
    /// Run the (possibly changed) call; seccomp filters are not run again.
    Run,
}

/// The PTRACE_EVENT_SECCOMP stop for SECCOMP_RET_TRACE with `data` (the
/// filter's 16 bits), to be called by the seccomp filter code at system
/// call entry, which itself runs after [`syscall_enter`]'s stop.
pub fn ptrace_event_seccomp(r: &mut TaskRunner, data: u32) -> SeccompTrace {
    let task = r.task.clone();
    if !option_set(&task, PTRACE_O_TRACESECCOMP) {
        return SeccompTrace::NoTracer;
    }
    {
        let mut ps = task.ptrace.lock();
        ps.sysinfo = SysInfo {
            op: 3,
            nr: r.regs.orig_rax,
            args: r.regs.syscall_args(),
            ret_data: data,
            ..Default::default()
        };
    }
    event(r, PTRACE_EVENT_SECCOMP, data as u64, false);
    if dying(&task, false) || r.regs.orig_rax == u64::MAX {
        SeccompTrace::Skip
    } else {
        SeccompTrace::Run
    }
}

/// After a successful execve: PTRACE_EVENT_EXEC, or the legacy SIGTRAP.
pub fn exec_event(r: &mut TaskRunner) {
    let task = r.task.clone();
    if !task.ptrace.is_traced() {
        return;
    }
    let (opt, seized, old) = {
        let ps = task.ptrace.lock();
        (
            ps.options & PTRACE_O_TRACEEXEC != 0,
            ps.seized,
            ps.entry_tid,
        )
    };
    if opt {
        event(r, PTRACE_EVENT_EXEC, old as u64, false);
    } else if !seized {
        signal::send_thread(&task, sig_user(SIGTRAP, 0));
    }
}

/// Before the thread ends: PTRACE_EVENT_EXIT (not after SIGKILL), with
/// the wait status to come as the message. `code` is exit(2)'s code when
/// only this thread exits.
pub fn exit_event(r: &mut TaskRunner, status: ExitStatus, code: Option<i32>) {
    let task = r.task.clone();
    if !task.ptrace.is_traced() {
        return;
    }
    task.ptrace.lock().exit_code = code;
    if option_set(&task, PTRACE_O_TRACEEXIT) {
        event(r, PTRACE_EVENT_EXIT, status.wait_status() as u64, true);
    }
}

/// fork/clone: auto-attaches the child when the parent's tracer asked for
/// this kind of event (or CLONE_PTRACE), and records the parent's event.
/// Called before the child first runs.
pub fn on_clone(parent: &Task, child: &Arc<Task>, flags: u64) {
    const CLONE_PTRACE: u64 = 0x2000;
    const CLONE_VFORK: u64 = 0x4000;
    const CLONE_UNTRACED: u64 = 0x80_0000;
    if !parent.ptrace.is_traced() || flags & CLONE_UNTRACED != 0 {
        return;
    }
    let (ev, opt) = if flags & CLONE_VFORK != 0 {
        (PTRACE_EVENT_VFORK, PTRACE_O_TRACEVFORK)
    } else if flags & 0xff != SIGCHLD as u64 {
        (PTRACE_EVENT_CLONE, PTRACE_O_TRACECLONE)
    } else {
        (PTRACE_EVENT_FORK, PTRACE_O_TRACEFORK)
    };
    let (tracer, options, seized) = {
        let mut ps = parent.ptrace.lock();
        if ps.tracer == 0 {
            return;
        }
        let report = ps.options & opt != 0;
        if !report && flags & CLONE_PTRACE == 0 {
            return;
        }
        if report {
            ps.fork_event = Some((ev, child.tid()));
        }
        (ps.tracer, ps.options, ps.seized)
    };
    {
        let mut cs = child.ptrace.lock();
        cs.tracer = tracer;
        cs.options = options;
        cs.seized = seized;
        if seized {
            cs.interrupt = true;
            child.ptrace.trap.store(true, Ordering::Release);
        }
    }
    child.ptrace.traced.store(true, Ordering::Release);
    if !seized {
        // A thread-private SIGSTOP: the child's first stop.
        child.signals.lock().pending.push(Queued {
            signo: SIGSTOP,
            code: SI_USER,
            a: 0,
            b: 0,
            forced: false,
        });
    }
    tracees().push(child.clone());
}

/// The parent's PTRACE_EVENT_FORK/VFORK/CLONE stop, once the child exists.
pub fn fork_event(r: &mut TaskRunner) {
    if !r.task.ptrace.is_traced() {
        return;
    }
    let ev = r.task.ptrace.lock().fork_event.take();
    if let Some((ev, pid)) = ev {
        event(r, ev, pid as u64, false);
    }
}

/// PTRACE_EVENT_VFORK_DONE, when the vfork child has exec'd or exited.
pub fn vfork_done_event(r: &mut TaskRunner, pid: i32) {
    if option_set(&r.task, PTRACE_O_TRACEVFORKDONE) {
        event(r, PTRACE_EVENT_VFORK_DONE, pid as u64, false);
    }
}

/// SIGKILL for `group`: no ptrace stop holds its threads any more.
pub fn on_sigkill(group: &ThreadGroup) {
    for t in group.threads() {
        if t.ptrace.is_traced() {
            t.ptrace.killed.store(true, Ordering::Release);
            t.waker.poke();
        }
    }
}

/// Whether some thread of `group` is traced (ignored signals are then
/// still queued, so the tracer sees them).
pub fn group_traced(group: &ThreadGroup) -> bool {
    group.threads().iter().any(|t| t.ptrace.is_traced())
}

/// A thread ends (`exit_thread`). A traced non-leader thread's exit is
/// reported to its tracer now; the leader's with its process
/// ([`on_process_exit`]).
pub fn on_thread_exit(task: &Arc<Task>) {
    if !task.ptrace.is_traced() || task.tid() == task.tgid() {
        return;
    }
    let (tracer, status) = {
        let mut ps = task.ptrace.lock();
        if ps.tracer == 0 {
            return;
        }
        let status = match task.group.sig().exit {
            Some(s) => s,
            None => ExitStatus::Exited(ps.exit_code.unwrap_or(0)),
        };
        ps.exited = Some(status);
        ps.stopped = None;
        ps.report = None;
        (ps.tracer, status)
    };
    let (code, val) = exit_code_of(status);
    notify_tracer(tracer, task.tid(), code, val);
}

/// Process `pid` (its last thread gone) ends with `status`: its traced
/// leader's exit is reported to the tracer; its own tracees are released
/// (PTRACE_O_EXITKILL kills them).
pub fn on_process_exit(pid: i32, status: ExitStatus) {
    tracer_gone(pid);
    let leader = tracees()
        .iter()
        .find(|t| t.tgid() == pid && t.tid() == pid)
        .cloned();
    let Some(leader) = leader else { return };
    let tracer = {
        let mut ps = leader.ptrace.lock();
        if ps.tracer == 0 {
            return;
        }
        ps.exited = Some(status);
        ps.stopped = None;
        ps.report = None;
        ps.tracer
    };
    let (code, val) = exit_code_of(status);
    notify_tracer(tracer, pid, code, val);
}

/// Whether the zombie `pid` waits for its tracer's wait before its real
/// parent `ppid` may see it. Called with the task tree locked.
pub fn holds_zombie(pid: i32, ppid: i32) -> bool {
    if releasing().contains(&pid) {
        return true;
    }
    tracees().iter().any(|t| {
        t.tgid() == pid && t.tid() == pid && {
            let ps = t.ptrace.lock();
            ps.exited.is_some() && ps.tracer != 0 && ps.tracer != ppid
        }
    })
}

/// Traced processes whose exit their tracer has just taken, until
/// [`end_release`]: their real parent may not reap them before it has been
/// sent SIGCHLD (Linux does both under tasklist_lock; here the tracer's
/// wait marks the zombie under the task tree's lock and
/// `exit::release_traced_zombie` tells the parent after it). A leaf lock.
static RELEASING: Mutex<std::collections::BTreeSet<i32>> =
    Mutex::new(std::collections::BTreeSet::new());

fn releasing() -> MutexGuard<'static, std::collections::BTreeSet<i32>> {
    RELEASING.lock().unwrap_or_else(|p| p.into_inner())
}

/// `pid`'s real parent has been told of its end (or it is gone): it may
/// be reaped.
pub fn end_release(pid: i32) {
    releasing().remove(&pid);
}

/// The real parent reaped `pid`: drop what ptrace kept of it.
pub fn forget(pid: i32) {
    tracees().retain(|t| {
        let gone = t.tgid() == pid && t.ptrace.lock().exited.is_some();
        if gone {
            t.ptrace.traced.store(false, Ordering::Release);
        }
        !gone
    });
}

/// The tracer process `tracer` is gone: detach its tracees (SIGKILL those
/// with PTRACE_O_EXITKILL); exits it never saw go to the real parents.
fn tracer_gone(tracer: i32) {
    let mine: Vec<Arc<Task>> = tracees()
        .iter()
        .filter(|t| t.ptrace.lock().tracer == tracer)
        .cloned()
        .collect();
    for t in mine {
        let exited = t.ptrace.lock().exited;
        let kill = detach_locked(&t, 0);
        if exited.is_some() && t.tid() == t.tgid() {
            super::exit::release_traced_zombie(t.tgid());
        }
        if kill {
            signal::send_group(&t.group, sig_user(SIGKILL, 0));
        }
    }
}

/// Unlinks `t` from its tracer; a stopped tracee resumes with `sig`.
/// Returns whether PTRACE_O_EXITKILL was set.
fn detach_locked(t: &Arc<Task>, sig: i32) -> bool {
    let kill = {
        let mut ps = t.ptrace.lock();
        let kill = ps.options & PTRACE_O_EXITKILL != 0;
        ps.tracer = 0;
        ps.options = 0;
        ps.seized = false;
        ps.sysmode = SysMode::None;
        ps.step = false;
        ps.interrupt = false;
        ps.listening = false;
        ps.report = None;
        ps.exited = None;
        ps.fork_event = None;
        if ps.stopped.is_some() {
            ps.resume = Some(sig);
        }
        kill
    };
    t.ptrace.traced.store(false, Ordering::Release);
    t.ptrace.trap.store(false, Ordering::Release);
    tracees().retain(|x| !Arc::ptr_eq(x, t));
    t.waker.poke();
    kill
}

/// What a tracer's wait found among its tracees.
pub enum WaitReport {
    /// A ptrace stop: the status word.
    Stopped(i32),
    Exited(ExitStatus),
}

/// Looks for a tracee of process `me` with something to report (called
/// by wait with the task tree locked). `which(tid, pgid)` says whether the
/// wait is for that tracee; `exited` whether exits are wanted. Returns
/// whether `me` has any matching tracee, the report, and the usage of a
/// reaped process.
pub fn wait_scan(
    tree: &mut BTreeMap<i32, ProcNode>,
    me: i32,
    which: &dyn Fn(i32, i32) -> bool,
    options: i32,
    exited: bool,
    consume: bool,
) -> (bool, Option<(i32, WaitReport)>, Option<i32>) {
    const WALL: i32 = 0x4000_0000;
    const WCLONE: i32 = i32::MIN;
    let list: Vec<Arc<Task>> = tracees().clone();
    let mut any = false;
    for t in list {
        let (tid, tgid) = (t.tid(), t.tgid());
        let mut ps = t.ptrace.lock();
        if ps.tracer != me {
            continue;
        }
        let pgid = tree.get(&tgid).map(|n| n.pgid).unwrap_or(0);
        if !which(tid, pgid) {
            continue;
        }
        let thread = tid != tgid;
        if options & WALL == 0 && thread != (options & WCLONE != 0) {
            continue;
        }
        any = true;
        if let Some(st) = ps.exited {
            if !exited {
                continue;
            }
            let parent = tree.get(&tgid).map(|n| n.ppid).unwrap_or(0);
            if !thread && parent == me {
                // Our own child: the ordinary wait reaps it.
                continue;
            }
            if consume {
                ps.exited = None;
                ps.tracer = 0;
                drop(ps);
                t.ptrace.traced.store(false, Ordering::Release);
                tracees().retain(|x| !Arc::ptr_eq(x, &t));
                let release = (!thread).then_some(tgid);
                if let Some(pid) = release {
                    releasing().insert(pid);
                }
                return (true, Some((tid, WaitReport::Exited(st))), release);
            }
            return (true, Some((tid, WaitReport::Exited(st))), None);
        }
        if let Some(st) = ps.report {
            if consume {
                ps.report = None;
            }
            return (true, Some((tid, WaitReport::Stopped(st))), None);
        }
    }
    (any, None, None)
}

/// Whether `pid` is traced by process `me` (its ordinary stop and
/// continue reports then go through ptrace only).
pub fn traced_by(pid: i32, me: i32) -> bool {
    tracees()
        .iter()
        .any(|t| t.tgid() == pid && t.ptrace.lock().tracer == me)
}

/// __ptrace_may_access: same process; or the caller's ids match the
/// target's (real, effective and saved; `fs` uses the caller's filesystem
/// ids, as /proc does) or it holds CAP_SYS_PTRACE in the target's user
/// namespace; and then the target is dumpable or the caller holds
/// CAP_SYS_PTRACE in the namespace of the target's address space (which
/// stays the one of its last exec when it makes a user namespace).
pub fn may_access(caller: &Task, target: &Task, fs: bool) -> bool {
    use crate::task::caps::Cap;
    if Arc::ptr_eq(&caller.group, &target.group) {
        return true;
    }
    let c = caller
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let t = target
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (uid, gid) = if fs {
        (c.fsuid, c.fsgid)
    } else {
        (c.ruid, c.rgid)
    };
    let ids_match = uid == t.euid
        && uid == t.suid
        && uid == t.ruid
        && gid == t.egid
        && gid == t.sgid
        && gid == t.rgid;
    if !ids_match && !c.privileged_in(&t.user_ns.0, Cap::SysPtrace) {
        return false;
    }
    target.group.dumpable() || c.privileged_in(&target.group.mm_user_ns(), Cap::SysPtrace)
}

syscall_table! { pub fn ptrace_table;
    PTRACE => sys_ptrace(req: i64, pid: i32, addr: u64, data: u64),
    PROCESS_VM_READV => sys_process_vm_readv(pid: i32, liov: UserAddr, lcnt: u64, riov: UserAddr, rcnt: u64, flags: u64),
    PROCESS_VM_WRITEV => sys_process_vm_writev(pid: i32, liov: UserAddr, lcnt: u64, riov: UserAddr, rcnt: u64, flags: u64),
}

fn sys_ptrace(
    ctx: &mut SyscallContext<'_>,
    req: i64,
    pid: i32,
    addr: u64,
    data: u64,
) -> KResult<u64> {
    let req = if req == PTRACE_OLDSETOPTIONS {
        PTRACE_SETOPTIONS
    } else {
        req
    };
    match req {
        PTRACE_TRACEME => return traceme(ctx),
        PTRACE_ATTACH | PTRACE_SEIZE => return attach(ctx, req == PTRACE_SEIZE, pid, addr, data),
        _ => {}
    }
    let me = ctx.task.tgid();
    let t = crate::kernel()
        .tasks
        .thread(pid)
        .filter(|t| t.ptrace.is_traced() && t.ptrace.lock().tracer == me)
        .ok_or(crate::errno!(ESRCH))?;
    match req {
        PTRACE_KILL => {
            signal::send_group(&t.group, sig_user(SIGKILL, me));
            return Ok(0);
        }
        PTRACE_INTERRUPT => {
            let mut ps = t.ptrace.lock();
            if !ps.seized {
                return error!(EIO);
            }
            ps.interrupt = true;
            drop(ps);
            t.ptrace.trap.store(true, Ordering::Release);
            t.interrupt();
            t.waker.poke();
            return Ok(0);
        }
        _ => {}
    }
    // Everything else needs the tracee in a ptrace stop.
    let mut ps = t.ptrace.lock();
    if ps.stopped.is_none() || ps.listening || ps.resume.is_some() {
        return error!(ESRCH);
    }
    let mm = ctx.mm();
    match req {
        PTRACE_PEEKTEXT | PTRACE_PEEKDATA => {
            drop(ps);
            let mut b = [0u8; 8];
            if t.mm().access_remote(addr, &mut b, None) != 8 {
                return error!(EIO);
            }
            mm.write_bytes(data, &b)?;
            Ok(0)
        }
        PTRACE_POKETEXT | PTRACE_POKEDATA => {
            drop(ps);
            let b = data.to_le_bytes();
            let mut scratch = [0u8; 8];
            if t.mm().access_remote(addr, &mut scratch, Some(&b)) != 8 {
                return error!(EIO);
            }
            Ok(0)
        }
        PTRACE_PEEKUSR => {
            if addr & 7 != 0 || addr >= USER_SIZE {
                return error!(EIO);
            }
            let v = if (addr as usize) < USER_REGS_SIZE {
                regs_to_words(&ps.regs)[addr as usize / 8]
            } else {
                // Debug registers (USER_DEBUGREG..) and the rest of
                // struct user read as 0.
                0
            };
            drop(ps);
            mm.write_val(data, &v)?;
            Ok(0)
        }
        PTRACE_POKEUSR => {
            if addr & 7 != 0 || addr >= USER_SIZE {
                return error!(EIO);
            }
            if (addr as usize) < USER_REGS_SIZE {
                let mut r = ps.regs;
                set_reg(&mut r, addr as usize / 8, data)?;
                ps.regs = r;
                ps.regs_dirty = true;
            } else if (USER_DEBUGREG..USER_SIZE).contains(&addr) && data != 0 {
                // No hardware breakpoints or watchpoints.
                return error!(EIO);
            }
            Ok(0)
        }
        PTRACE_GETREGS => {
            let words = regs_to_words(&ps.regs);
            drop(ps);
            mm.write_val(data, &words)?;
            Ok(0)
        }
        PTRACE_SETREGS => {
            drop(ps);
            let words: [u64; 27] = mm.read_val(data)?;
            let mut ps = t.ptrace.lock();
            if ps.stopped.is_none() {
                return error!(ESRCH);
            }
            let r = regs_from_words(&ps.regs, &words)?;
            ps.regs = r;
            ps.regs_dirty = true;
            Ok(0)
        }
        // arch_prctl on the tracee's behalf (as UML sets its processes'
        // %fs): `data` is the code, `addr` the argument; ARCH_GET_* store
        // into the tracer's memory.
        PTRACE_ARCH_PRCTL => {
            const ARCH_SET_GS: u64 = 0x1001;
            const ARCH_SET_FS: u64 = 0x1002;
            const ARCH_GET_FS: u64 = 0x1003;
            const ARCH_GET_GS: u64 = 0x1004;
            match data {
                ARCH_SET_FS | ARCH_SET_GS => {
                    if addr >= TASK_SIZE_MAX {
                        return error!(EPERM);
                    }
                    if data == ARCH_SET_FS {
                        ps.regs.fs_base = addr;
                    } else {
                        ps.regs.gs_base = addr;
                    }
                    ps.regs_dirty = true;
                    Ok(0)
                }
                ARCH_GET_FS | ARCH_GET_GS => {
                    let v = if data == ARCH_GET_FS {
                        ps.regs.fs_base
                    } else {
                        ps.regs.gs_base
                    };
                    drop(ps);
                    mm.write_val(addr, &v)?;
                    Ok(0)
                }
                _ => error!(EINVAL),
            }
        }
        PTRACE_GETFPREGS => {
            let f = fxsave_of(&ps)?;
            drop(ps);
            mm.write_bytes(data, &f)?;
            Ok(0)
        }
        PTRACE_SETFPREGS => {
            drop(ps);
            let mut f = [0u8; FXSAVE_SIZE];
            mm.read_bytes(data, &mut f)?;
            let mut ps = t.ptrace.lock();
            set_fxsave(&mut ps, &f)?;
            Ok(0)
        }
        PTRACE_GETREGSET => {
            drop(ps);
            getregset(ctx, &t, addr, data)
        }
        PTRACE_SETREGSET => {
            drop(ps);
            setregset(ctx, &t, addr, data)
        }
        PTRACE_GETSIGINFO => {
            let si = ps.siginfo.ok_or(crate::errno!(EINVAL))?;
            drop(ps);
            mm.write_bytes(data, &si)?;
            Ok(0)
        }
        PTRACE_SETSIGINFO => {
            if ps.siginfo.is_none() {
                return error!(EINVAL);
            }
            drop(ps);
            let mut si = [0u8; 128];
            mm.read_bytes(data, &mut si)?;
            let mut ps = t.ptrace.lock();
            if ps.siginfo.is_some() {
                ps.siginfo = Some(si);
            }
            Ok(0)
        }
        PTRACE_PEEKSIGINFO => {
            drop(ps);
            peeksiginfo(ctx, &t, addr, data)
        }
        PTRACE_GETEVENTMSG => {
            let m = ps.eventmsg;
            drop(ps);
            mm.write_val(data, &m)?;
            Ok(0)
        }
        PTRACE_GET_SYSCALL_INFO => {
            let info = syscall_info(&ps);
            drop(ps);
            let n = (addr as usize).min(info.len());
            mm.write_bytes(data, &info[..n])?;
            Ok(info.len() as u64)
        }
        PTRACE_SETOPTIONS => {
            if data as u32 as u64 != data || data as u32 & !PTRACE_O_MASK != 0 {
                return error!(EINVAL);
            }
            ps.options = data as u32;
            Ok(0)
        }
        PTRACE_LISTEN => {
            let event_stop = ps
                .siginfo
                .is_some_and(|si| rd_i32(&si, 8) >> 8 == PTRACE_EVENT_STOP as i32);
            if !ps.seized || !event_stop {
                return error!(EIO);
            }
            ps.listening = true;
            ps.report = None;
            drop(ps);
            t.waker.poke();
            Ok(0)
        }
        PTRACE_DETACH => {
            if !(0..=signal::NSIG as u64).contains(&data) {
                return error!(EIO);
            }
            drop(ps);
            detach_locked(&t, data as i32);
            Ok(0)
        }
        PTRACE_CONT
        | PTRACE_SYSCALL
        | PTRACE_SYSEMU
        | PTRACE_SYSEMU_SINGLESTEP
        | PTRACE_SINGLESTEP => {
            if !(0..=signal::NSIG as u64).contains(&data) {
                return error!(EIO);
            }
            ps.sysmode = match req {
                PTRACE_SYSCALL => SysMode::Trace,
                PTRACE_SYSEMU | PTRACE_SYSEMU_SINGLESTEP => SysMode::Emu,
                _ => SysMode::None,
            };
            ps.step = matches!(req, PTRACE_SINGLESTEP | PTRACE_SYSEMU_SINGLESTEP);
            ps.resume = Some(data as i32);
            drop(ps);
            t.waker.poke();
            Ok(0)
        }
        _ => error!(EIO),
    }
}

fn regs_from_words(old: &Registers, w: &[u64; 27]) -> KResult<Registers> {
    let mut r = *old;
    for (i, v) in w.iter().enumerate() {
        set_reg(&mut r, i, *v)?;
    }
    Ok(r)
}

/// The legacy FXSAVE area of the stopped tracee's FPU state.
fn fxsave_of(ps: &PtraceState) -> KResult<[u8; FXSAVE_SIZE]> {
    let f = ps.fpu.as_ref().ok_or(crate::errno!(EIO))?;
    let mut out = [0u8; FXSAVE_SIZE];
    let n = f.0.len().min(FXSAVE_SIZE);
    out[..n].copy_from_slice(&f.0[..n]);
    // The software-reserved bytes are the kernel's, not the tracee's.
    out[464..].fill(0);
    Ok(out)
}

/// MXCSR bits a program may set (the host's MXCSR_MASK is at least this).
const MXCSR_MASK: u32 = 0xffff;

fn set_fxsave(ps: &mut PtraceState, f: &[u8; FXSAVE_SIZE]) -> KResult<()> {
    if ps.stopped.is_none() {
        return error!(ESRCH);
    }
    if rd_i32(f, 24) as u32 & !MXCSR_MASK != 0 {
        return error!(EINVAL);
    }
    let cur = ps.fpu.as_mut().ok_or(crate::errno!(EIO))?;
    if cur.0.len() < 520 {
        return error!(EIO);
    }
    cur.0[..464].copy_from_slice(&f[..464]);
    // XSTATE_BV: x87 and SSE now hold what was written.
    let bv = rd_u64(&cur.0, 512) | 3;
    cur.0[512..520].copy_from_slice(&bv.to_le_bytes());
    ps.fpu_dirty = true;
    Ok(())
}

/// The NT_X86_XSTATE image a debugger expects: the XSAVE area with XCR0
/// in the first software-reserved word.
fn xstate_of(ps: &PtraceState) -> KResult<Vec<u8>> {
    let f = ps.fpu.as_ref().ok_or(crate::errno!(EIO))?;
    let mut out = f.0.clone();
    if out.len() >= FXSAVE_SIZE {
        out[464..FXSAVE_SIZE].fill(0);
        out[464..472].copy_from_slice(&ruml_host::regs::xcr0().to_le_bytes());
    }
    Ok(out)
}

fn read_iov(ctx: &SyscallContext<'_>, at: u64) -> KResult<(u64, u64)> {
    let v: [u64; 2] = ctx.mm().read_val(at)?;
    Ok((v[0], v[1]))
}

fn getregset(ctx: &SyscallContext<'_>, t: &Arc<Task>, kind: u64, iov: u64) -> KResult<u64> {
    let (base, len) = read_iov(ctx, iov)?;
    let bytes: Vec<u8> = {
        let ps = t.ptrace.lock();
        match kind {
            NT_PRSTATUS => regs_to_words(&ps.regs)
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
            NT_PRFPREG => fxsave_of(&ps)?.to_vec(),
            NT_X86_XSTATE => xstate_of(&ps)?,
            _ => return error!(EINVAL),
        }
    };
    if len % 8 != 0 {
        return error!(EINVAL);
    }
    let n = (len as usize).min(bytes.len());
    ctx.mm().write_bytes(base, &bytes[..n])?;
    ctx.mm().write_val(iov + 8, &(n as u64))?;
    Ok(0)
}

fn setregset(ctx: &SyscallContext<'_>, t: &Arc<Task>, kind: u64, iov: u64) -> KResult<u64> {
    let (base, len) = read_iov(ctx, iov)?;
    if len % 8 != 0 {
        return error!(EINVAL);
    }
    let len = (len as usize).min(16384);
    let mut buf = vec![0u8; len];
    ctx.mm().read_bytes(base, &mut buf)?;
    let mut ps = t.ptrace.lock();
    if ps.stopped.is_none() || ps.listening {
        return error!(ESRCH);
    }
    match kind {
        NT_PRSTATUS => {
            let mut words = regs_to_words(&ps.regs);
            let n = len.min(USER_REGS_SIZE) / 8;
            for (i, w) in words.iter_mut().enumerate().take(n) {
                *w = rd_u64(&buf, i * 8);
            }
            let r = regs_from_words(&ps.regs, &words)?;
            ps.regs = r;
            ps.regs_dirty = true;
        }
        NT_PRFPREG => {
            if len < FXSAVE_SIZE {
                return error!(EINVAL);
            }
            let mut f = [0u8; FXSAVE_SIZE];
            f.copy_from_slice(&buf[..FXSAVE_SIZE]);
            set_fxsave(&mut ps, &f)?;
        }
        NT_X86_XSTATE => {
            let cur = ps.fpu.as_ref().ok_or(crate::errno!(EIO))?;
            if len < 576 || cur.0.len() < 576 {
                return error!(EINVAL);
            }
            let xcr0 = ruml_host::regs::xcr0();
            let bv = rd_u64(&buf, 512);
            let comp = rd_u64(&buf, 520);
            if bv & !xcr0 != 0 || comp != 0 || rd_i32(&buf, 24) as u32 & !MXCSR_MASK != 0 {
                return error!(EINVAL);
            }
            let mut next = cur.0.clone();
            let n = len.min(next.len());
            next[..464].copy_from_slice(&buf[..464]);
            next[FXSAVE_SIZE..n].copy_from_slice(&buf[FXSAVE_SIZE..n]);
            ps.fpu = Some(FpuState(next));
            ps.fpu_dirty = true;
        }
        _ => return error!(EINVAL),
    }
    Ok(0)
}

/// struct ptrace_syscall_info for the current stop.
fn syscall_info(ps: &PtraceState) -> Vec<u8> {
    let mut v = Vec::with_capacity(88);
    let code = ps.siginfo.map(|si| rd_i32(&si, 8)).unwrap_or(0);
    let op = match (code, ps.sysinfo.op) {
        (c, 1) if c == SIGTRAP | 0x80 && ps.stopped == Some(StopKind::SyscallEnter) => 1u8,
        (c, 2) if c == SIGTRAP | 0x80 && ps.stopped == Some(StopKind::SyscallExit) => 2,
        (c, 3) if c == SIGTRAP | ((PTRACE_EVENT_SECCOMP as i32) << 8) => 3,
        _ => 0,
    };
    v.push(op);
    v.extend_from_slice(&[0u8; 3]);
    v.extend_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    v.extend_from_slice(&ps.regs.rip.to_le_bytes());
    v.extend_from_slice(&ps.regs.rsp.to_le_bytes());
    let s = &ps.sysinfo;
    match op {
        1 | 3 => {
            v.extend_from_slice(&s.nr.to_le_bytes());
            for a in s.args {
                v.extend_from_slice(&a.to_le_bytes());
            }
            if op == 3 {
                v.extend_from_slice(&s.ret_data.to_le_bytes());
            }
        }
        2 => {
            v.extend_from_slice(&s.rval.to_le_bytes());
            v.push((-4095..0).contains(&s.rval) as u8);
        }
        _ => {}
    }
    v
}

fn peeksiginfo(ctx: &SyscallContext<'_>, t: &Arc<Task>, args: u64, data: u64) -> KResult<u64> {
    const SHARED: u32 = 1;
    let a: [u64; 2] = ctx.mm().read_val(args)?;
    let (off, flags, nr) = (a[0], a[1] as u32, (a[1] >> 32) as i32);
    if flags & !SHARED != 0 || nr < 0 || off > i64::MAX as u64 {
        return error!(EINVAL);
    }
    let queue: Vec<Queued> = if flags & SHARED != 0 {
        t.group.sig().shared.clone()
    } else {
        t.signals.lock().pending.clone()
    };
    let mut done = 0u64;
    for q in queue
        .iter()
        .skip(off.min(usize::MAX as u64) as usize)
        .take(nr as usize)
    {
        if ctx
            .mm()
            .write_bytes(data + done * 128, &q.siginfo())
            .is_err()
        {
            return if done > 0 { Ok(done) } else { error!(EFAULT) };
        }
        done += 1;
    }
    Ok(done)
}

fn traceme(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let task = ctx.task;
    let ppid = super::process_ids(task.tgid()).map(|i| i.ppid).unwrap_or(0);
    // The parent must still be alive to become the tracer.
    if crate::kernel().tasks.get(ppid).is_none() {
        return error!(EPERM);
    }
    {
        let mut ps = task.ptrace.lock();
        if ps.tracer != 0 {
            return error!(EPERM);
        }
        *ps = PtraceState {
            tracer: ppid,
            ..Default::default()
        };
    }
    // A traced address space runs its original code (mm::patch).
    task.mm().patch_disable();
    task.ptrace.killed.store(false, Ordering::Release);
    task.ptrace.traced.store(true, Ordering::Release);
    tracees().push(task.clone());
    Ok(0)
}

fn attach(
    ctx: &mut SyscallContext<'_>,
    seize: bool,
    pid: i32,
    addr: u64,
    data: u64,
) -> KResult<u64> {
    if seize && (addr != 0 || data & !(PTRACE_O_MASK as u64) != 0) {
        return error!(EIO);
    }
    let t = crate::kernel()
        .tasks
        .thread(pid)
        .ok_or(crate::errno!(ESRCH))?;
    if Arc::ptr_eq(&t.group, &ctx.task.group) || !may_access(ctx.task, &t, false) {
        return error!(EPERM);
    }
    {
        let g = t.group.sig();
        if g.exit.is_some() {
            return error!(EPERM);
        }
    }
    {
        let mut ps = t.ptrace.lock();
        if ps.tracer != 0 || ps.exited.is_some() {
            return error!(EPERM);
        }
        *ps = PtraceState {
            tracer: ctx.task.tgid(),
            options: if seize { data as u32 } else { 0 },
            seized: seize,
            ..Default::default()
        };
    }
    // A traced address space runs its original code (mm::patch).
    t.mm().patch_disable();
    t.ptrace.killed.store(false, Ordering::Release);
    t.ptrace.traced.store(true, Ordering::Release);
    tracees().push(t.clone());
    if !seize {
        signal::send_thread(&t, sig_user(SIGSTOP, ctx.task.tgid()));
    }
    // A stopped tracee reports its group stop to us.
    t.waker.poke();
    Ok(0)
}

/// Copies between memory of this task and of `target`'s address space
/// for process_vm_readv/writev (no FOLL_FORCE: the target's protections
/// hold). Returns bytes moved.
fn process_vm(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    (liov, lcnt): (UserAddr, u64),
    (riov, rcnt): (UserAddr, u64),
    flags: u64,
    write: bool,
) -> KResult<u64> {
    const UIO_MAXIOV: u64 = 1024;
    if flags != 0 || lcnt > UIO_MAXIOV || rcnt > UIO_MAXIOV {
        return error!(EINVAL);
    }
    let mm = ctx.mm();
    let read_vec = |at: UserAddr, n: u64| -> KResult<Vec<(u64, u64)>> {
        let mut v = Vec::with_capacity(n as usize);
        let mut total: u64 = 0;
        for i in 0..n {
            let e: [u64; 2] = mm.read_val(at.0.wrapping_add(i * 16))?;
            total = total.checked_add(e[1]).ok_or(crate::errno!(EINVAL))?;
            if total > isize::MAX as u64 {
                return error!(EINVAL);
            }
            if e[1] > 0 {
                v.push((e[0], e[1]));
            }
        }
        Ok(v)
    };
    let local = read_vec(liov, lcnt)?;
    let remote = read_vec(riov, rcnt)?;
    if local.is_empty() || remote.is_empty() {
        return Ok(0);
    }
    let t = crate::kernel()
        .tasks
        .thread(pid)
        .ok_or(crate::errno!(ESRCH))?;
    if !may_access(ctx.task, &t, false) {
        return error!(EPERM);
    }
    let rmm = t.mm();
    rmm.patch_disable();
    let mut done: u64 = 0;
    let (mut li, mut loff) = (0usize, 0u64);
    let mut buf = vec![0u8; 4096];
    'outer: for &(raddr, rlen) in &remote {
        let mut roff = 0u64;
        while roff < rlen {
            let Some(&(laddr, llen)) = local.get(li) else {
                break 'outer;
            };
            let ra = raddr.wrapping_add(roff);
            let la = laddr.wrapping_add(loff);
            let page_left = 4096 - (ra % 4096);
            let n = (rlen - roff).min(llen - loff).min(page_left) as usize;
            let chunk = &mut buf[..n];
            if write {
                if mm.read_bytes(la, chunk).is_err() {
                    return if done > 0 { Ok(done) } else { error!(EFAULT) };
                }
                if rmm.write_bytes(ra, chunk).is_err() {
                    // This remote element ends here; Linux goes no further.
                    break 'outer;
                }
            } else {
                if rmm.read_bytes(ra, chunk).is_err() {
                    break 'outer;
                }
                if mm.write_bytes(la, chunk).is_err() {
                    return if done > 0 { Ok(done) } else { error!(EFAULT) };
                }
            }
            done += n as u64;
            roff += n as u64;
            loff += n as u64;
            if loff == llen {
                li += 1;
                loff = 0;
            }
        }
    }
    if done == 0 {
        return error!(EFAULT);
    }
    Ok(done)
}

fn sys_process_vm_readv(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    liov: UserAddr,
    lcnt: u64,
    riov: UserAddr,
    rcnt: u64,
    flags: u64,
) -> KResult<u64> {
    process_vm(ctx, pid, (liov, lcnt), (riov, rcnt), flags, false)
}

fn sys_process_vm_writev(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    liov: UserAddr,
    lcnt: u64,
    riov: UserAddr,
    rcnt: u64,
    flags: u64,
) -> KResult<u64> {
    process_vm(ctx, pid, (liov, lcnt), (riov, rcnt), flags, true)
}

/// An open /proc/PID/mem: the address space it was opened on.
pub struct MemFile {
    mm: std::sync::Weak<crate::mm::Mm>,
}

/// Opens /proc/PID/mem of thread `tid` for `caller` (the ptrace access
/// check with filesystem ids, as Linux's mem_open).
pub fn open_mem(caller: Option<&Task>, tid: i32) -> KResult<Arc<dyn crate::fs::vfs::FileOps>> {
    let t = crate::kernel()
        .tasks
        .thread(tid)
        .or_else(|| crate::kernel().tasks.get(tid))
        .ok_or(crate::errno!(ESRCH))?;
    if let Some(c) = caller {
        if !may_access(c, &t, true) {
            return error!(EACCES);
        }
    }
    Ok(Arc::new(MemFile {
        mm: Arc::downgrade(&t.mm()),
    }))
}

impl MemFile {
    fn rw(&self, off: u64, buf: &mut [u8], data: Option<&[u8]>) -> KResult<usize> {
        let Some(mm) = self.mm.upgrade() else {
            return Ok(0);
        };
        let n = mm.access_remote(off, buf, data);
        if n == 0 && !buf.is_empty() {
            return error!(EIO);
        }
        Ok(n)
    }
}

impl crate::fs::vfs::FileOps for MemFile {
    fn read(&self, _f: &crate::fs::file::OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.rw(off, buf, None)
    }
    fn write(&self, _f: &crate::fs::file::OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        let mut scratch = vec![0u8; buf.len().min(1 << 20)];
        let n = scratch.len();
        self.rw(off, &mut scratch, Some(&buf[..n]))
    }
}
