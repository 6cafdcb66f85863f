//! Signals: dispositions, masks, pending sets, delivery with real x86_64
//! rt_sigframes (siginfo, ucontext, XSAVE state) and rt_sigreturn.
//!
//! Locking: each task's [`SignalState`] is one mutex, never held while
//! blocking or while touching guest memory.

use std::sync::{Mutex, MutexGuard};

use ruml_host::Registers;

use crate::abi::Pod;
use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::{exit, After, ExitStatus, TaskRunner};

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
const SA_SIGINFO: u64 = 4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

crate::abi_struct! {
    /// `struct sigaction` as the kernel ABI has it (rt_sigaction).
    pub struct KSigAction { pub handler: u64, pub flags: u64, pub restorer: u64, pub mask: u64 }
}

crate::abi_struct! {
    /// The first 48 bytes of `siginfo_t` that ruml fills (the rest zero).
    pub struct SigInfoHead { pub signo: i32, pub errno: i32, pub code: i32, pub pad: i32, pub a: u64, pub b: u64, pub c: u64, pub d: u64 }
}

/// A queued signal with its siginfo.
#[derive(Clone, Copy, Debug, Default)]
pub struct Queued {
    pub signo: i32,
    pub code: i32,
    /// si_pid/si_uid for user signals, si_addr for faults.
    pub a: u64,
    pub b: u64,
    /// A fault: must be delivered even if blocked or ignored.
    pub forced: bool,
}

pub struct SigInner {
    pub actions: [KSigAction; 64],
    pub blocked: u64,
    pub pending: Vec<Queued>,
}

impl Default for SigInner {
    fn default() -> Self {
        SigInner { actions: [KSigAction::default(); 64], blocked: 0, pending: Vec::new() }
    }
}

/// A task's signal state.
#[derive(Default)]
pub struct SignalState {
    inner: Mutex<SigInner>,
}

impl SignalState {
    pub fn lock(&self) -> MutexGuard<'_, SigInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies dispositions and mask for fork.
    pub fn fork_copy(&self) -> SignalState {
        let s = self.lock();
        SignalState { inner: Mutex::new(SigInner { actions: s.actions, blocked: s.blocked, pending: Vec::new() }) }
    }

    /// exec: handled signals go back to default; ignored stay ignored.
    pub fn reset_for_exec(&self) {
        let mut s = self.lock();
        for a in s.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = KSigAction::default();
            }
        }
    }

    /// Whether a signal is waiting that would interrupt a blocking call.
    pub fn has_deliverable(&self) -> bool {
        let s = self.lock();
        s.pending.iter().any(|q| q.forced || s.blocked & bit(q.signo) == 0)
    }

    fn is_ignored(s: &SigInner, sig: i32) -> bool {
        let h = s.actions[(sig - 1) as usize].handler;
        h == SIG_IGN || (h == SIG_DFL && matches!(sig, SIGCHLD | SIGURG | SIGWINCH | SIGCONT))
    }
}

/// Queues a signal for a task and kicks it. Ignored signals are dropped
/// at once (as Linux does), except when blocked.
pub fn send(task: &crate::task::Task, q: Queued) {
    {
        let mut s = task.signals.lock();
        if !q.forced && SignalState::is_ignored(&s, q.signo) && s.blocked & bit(q.signo) == 0 {
            return;
        }
        // Standard signals queue once.
        if q.signo < 32 && s.pending.iter().any(|p| p.signo == q.signo) {
            return;
        }
        s.pending.push(q);
    }
    task.interrupt();
    task.waker.poke();
    crate::kernel().tasks.changed.notify_all();
}

/// A synchronous signal from a fault: delivered even if blocked or
/// ignored (then with the default action, as Linux's force_sig).
pub fn force_fault(task: &crate::task::Task, signo: i32, code: i32, addr: u64) {
    {
        let mut s = task.signals.lock();
        let i = (signo - 1) as usize;
        if s.blocked & bit(signo) != 0 || s.actions[i].handler == SIG_IGN {
            s.actions[i] = KSigAction::default();
            s.blocked &= !bit(signo);
        }
        s.pending.insert(0, Queued { signo, code, a: addr, b: 0, forced: true });
    }
}

fn default_is_core(sig: i32) -> bool {
    matches!(sig, SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS)
}

/// Delivers what is pending and unblocked: default actions, or a handler
/// frame on the guest stack. Returns true if the task must stop running.
pub fn deliver_pending(r: &mut TaskRunner) -> bool {
    loop {
        let (q, act) = {
            let mut s = r.task.signals.lock();
            let blocked = s.blocked;
            let Some(i) = s.pending.iter().position(|q| q.forced || blocked & bit(q.signo) == 0) else { return false };
            let q = s.pending.remove(i);
            (q, s.actions[(q.signo - 1) as usize])
        };
        match act.handler {
            SIG_IGN if q.signo != SIGKILL => continue,
            SIG_DFL => match q.signo {
                SIGCHLD | SIGURG | SIGWINCH | SIGCONT => continue,
                // Job-control stops come with the process-model issue.
                SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => continue,
                sig => {
                    exit::exit_process(&r.task, ExitStatus::Killed { signo: sig, core: default_is_core(sig) });
                    return true;
                }
            },
            _ if q.signo == SIGKILL => {
                exit::exit_process(&r.task, ExitStatus::Killed { signo: SIGKILL, core: false });
                return true;
            }
            _ => {
                if let Err(e) = setup_frame(r, &q, &act) {
                    // No room for the frame: Linux kills with SIGSEGV.
                    crate::log::kprint(&format!("pid {}: cannot deliver signal {} ({e:?}): killed", r.task.tid, q.signo));
                    exit::exit_process(&r.task, ExitStatus::Killed { signo: SIGSEGV, core: true });
                    return true;
                }
            }
        }
    }
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// Builds an rt_sigframe: return address (sa_restorer), ucontext, siginfo
/// and the XSAVE area, and points the registers at the handler.
fn setup_frame(r: &mut TaskRunner, q: &Queued, act: &KSigAction) -> KResult<()> {
    if act.flags & SA_RESTORER == 0 {
        // x86_64 has no kernel-provided trampoline: like Linux, the
        // program must supply one; without it the handler can't return.
        return error!(EFAULT);
    }
    let _ = SA_ONSTACK; // alternate stacks come with the process-model issue
    let mm = r.task.mm();
    let regs = r.regs;
    let fpu = r.aspace.as_ref().and_then(|a| a.get_fpu().ok());
    let mut sp = regs.rsp.wrapping_sub(128); // the red zone
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
    let blocked = r.task.signals.lock().blocked;
    let mut f = Vec::with_capacity(FRAME as usize);
    let p = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());
    p(&mut f, act.restorer);
    // ucontext: flags (UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS), link, stack.
    p(&mut f, if fpu.is_some() { 1 | 2 | 4 } else { 2 | 4 });
    p(&mut f, 0);
    p(&mut f, 0);
    p(&mut f, 2); // SS_DISABLE
    p(&mut f, 0);
    for v in [
        regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15, regs.rdi, regs.rsi, regs.rbp,
        regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp, regs.rip, regs.eflags,
    ] {
        p(&mut f, v);
    }
    p(&mut f, 0x33 | (0x2b << 48)); // cs, gs, fs, ss
    let (trapno, err) = match q.signo {
        SIGSEGV => (14, 4),
        _ => (0, 0),
    };
    p(&mut f, err);
    p(&mut f, trapno);
    p(&mut f, blocked);
    p(&mut f, if q.signo == SIGSEGV || q.signo == SIGBUS { q.a } else { 0 });
    p(&mut f, fp_addr);
    for _ in 0..8 {
        p(&mut f, 0);
    }
    p(&mut f, blocked);
    // siginfo
    let head = SigInfoHead { signo: q.signo, errno: 0, code: q.code, pad: 0, a: q.a, b: q.b, c: 0, d: 0 };
    f.extend_from_slice(head.as_bytes());
    f.resize(FRAME as usize, 0);
    mm.write_bytes(sp, &f)?;
    let mut s = r.task.signals.lock();
    let mut mask = act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= bit(q.signo);
    }
    s.blocked = (s.blocked | mask) & !UNBLOCKABLE;
    if act.flags & SA_RESETHAND != 0 {
        s.actions[(q.signo - 1) as usize] = KSigAction::default();
    }
    drop(s);
    r.regs.rsp = sp;
    r.regs.rip = act.handler;
    r.regs.rdi = q.signo as u64;
    r.regs.rsi = info;
    r.regs.rdx = uc;
    r.regs.rax = 0;
    let _ = SA_SIGINFO;
    Ok(())
}

syscall_table! { pub fn signal_table;
    RT_SIGACTION => sys_rt_sigaction(sig: i32, act: UserAddr, old: UserAddr, size: usize),
    RT_SIGPROCMASK => sys_rt_sigprocmask(how: i32, set: UserAddr, old: UserAddr, size: usize),
    RT_SIGPENDING => sys_rt_sigpending(set: UserAddr, size: usize),
    RT_SIGRETURN => sys_rt_sigreturn(),
    KILL => sys_kill(pid: i32, sig: i32),
    TKILL => sys_tkill(tid: i32, sig: i32),
    TGKILL => sys_tgkill(tgid: i32, tid: i32, sig: i32),
}

fn sys_rt_sigaction(ctx: &mut SyscallContext<'_>, sig: i32, act: UserAddr, old: UserAddr, size: usize) -> KResult<u64> {
    if size != 8 || !(1..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let new: Option<KSigAction> = if act.is_null() { None } else { Some(ctx.mm().read_val(act.0)?) };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return error!(EINVAL);
    }
    let prev = {
        let mut s = ctx.task.signals.lock();
        let prev = s.actions[(sig - 1) as usize];
        if let Some(mut n) = new {
            n.mask &= !UNBLOCKABLE;
            s.actions[(sig - 1) as usize] = n;
            // Setting SIG_IGN discards what is pending.
            if SignalState::is_ignored(&s, sig) {
                s.pending.retain(|q| q.signo != sig);
            }
        }
        prev
    };
    if !old.is_null() {
        ctx.mm().write_val(old.0, &prev)?;
    }
    Ok(0)
}

fn sys_rt_sigprocmask(ctx: &mut SyscallContext<'_>, how: i32, set: UserAddr, old: UserAddr, size: usize) -> KResult<u64> {
    if size != 8 {
        return error!(EINVAL);
    }
    let new: Option<u64> = if set.is_null() { None } else { Some(ctx.mm().read_val(set.0)?) };
    let prev = {
        let mut s = ctx.task.signals.lock();
        let prev = s.blocked;
        if let Some(n) = new {
            s.blocked = match how {
                0 => s.blocked | n,
                1 => s.blocked & !n,
                2 => n,
                _ => return error!(EINVAL),
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
    let v = {
        let s = ctx.task.signals.lock();
        s.pending.iter().fold(0u64, |m, q| m | bit(q.signo)) & s.blocked
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
    let g = |i: usize| u64::from_le_bytes(raw[40 + i * 8..48 + i * 8].try_into().unwrap_or([0; 8]));
    let r: &mut Registers = ctx.regs;
    (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
    (r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip) = (g(8), g(9), g(10), g(11), g(12), g(13), g(14), g(15), g(16));
    // Only the user-changeable flags (CF PF AF ZF SF TF DF OF AC).
    r.eflags = (r.eflags & !0x40dd5) | (g(17) & 0x40dd5);
    r.orig_rax = u64::MAX;
    let fp_addr = g(23);
    let mask = u64::from_le_bytes(raw[296..304].try_into().unwrap_or([0; 8]));
    ctx.task.signals.lock().blocked = mask & !UNBLOCKABLE;
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

/// Sends `sig` (0: just check) from the caller to process `pid`.
fn signal_one(ctx: &SyscallContext<'_>, pid: i32, sig: i32) -> KResult<()> {
    let Some(t) = crate::kernel().tasks.get(pid) else { return error!(ESRCH) };
    if sig != 0 {
        send(&t, Queued { signo: sig, code: SI_USER, a: ctx.task.tgid() as u64, b: 0, forced: false });
    }
    Ok(())
}

fn sys_kill(ctx: &mut SyscallContext<'_>, pid: i32, sig: i32) -> KResult<u64> {
    if !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    if pid > 0 {
        signal_one(ctx, pid, sig)?;
        return Ok(0);
    }
    if pid == i32::MIN {
        return error!(ESRCH);
    }
    // A process group (0: the caller's; -1: everyone but init and us).
    let targets: Vec<i32> = {
        let tree = crate::kernel().tasks.lock();
        let my_pgid = tree.get(&ctx.task.tgid()).map(|n| n.pgid).unwrap_or(0);
        tree.iter()
            .filter(|(_, n)| n.zombie.is_none() && n.task.is_some())
            .filter(|(&p, n)| match pid {
                0 => n.pgid == my_pgid,
                -1 => p != 1 && p != ctx.task.tgid(),
                g => n.pgid == -g,
            })
            .map(|(&p, _)| p)
            .collect()
    };
    if targets.is_empty() {
        return error!(ESRCH);
    }
    for p in targets {
        let _ = signal_one(ctx, p, sig);
    }
    Ok(0)
}

fn sys_tkill(ctx: &mut SyscallContext<'_>, tid: i32, sig: i32) -> KResult<u64> {
    if tid <= 0 || !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    signal_one(ctx, tid, sig).map(|_| 0)
}

fn sys_tgkill(ctx: &mut SyscallContext<'_>, tgid: i32, tid: i32, sig: i32) -> KResult<u64> {
    if tgid <= 0 || tid <= 0 || !(0..=NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    if tgid != tid {
        return error!(ESRCH);
    }
    signal_one(ctx, tid, sig).map(|_| 0)
}

/// SIGPIPE for a writer to a broken pipe (called by the fs layer).
pub fn send_sigpipe(task: &crate::task::Task) {
    send(task, Queued { signo: SIGPIPE, code: SI_USER, a: task.tgid() as u64, b: 0, forced: false });
}
