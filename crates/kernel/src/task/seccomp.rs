//! Guest seccomp: seccomp(2), prctl(PR_SET_SECCOMP/PR_GET_SECCOMP), strict
//! mode, and classic-BPF filters that the kernel runs on every guest system
//! call before it is dispatched.
//!
//! This is the guest's own seccomp, evaluated by ruml on its own task
//! state; it has nothing to do with the host seccomp filter of the
//! `mode=seccomp` backend (crates/host), which only decides how a guest
//! system call reaches the kernel.
//!
//! Each task (thread) has a [`TaskSeccomp`]: a mode (an atomic, so that the
//! hook in the task loop (before `crate::syscalls::dispatch`) costs one load when no filter is
//! installed) and the newest filter of its stack. Filters are immutable and
//! shared: a [`Filter`] points at the one installed before it, fork/clone
//! copy the pointer, execve keeps it, and the stack is dropped with the
//! last task that uses it. All filters run on each call; the most
//! restrictive action wins with Linux's precedence (KILL_PROCESS >
//! KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW), the
//! newest filter winning a tie.
//!
//! Programs are checked as Linux's bpf_check_classic + seccomp_check_filter
//! (length 1..=4096, only seccomp's opcodes, forward jumps in range,
//! scratch memory written before read on every path, loads of struct
//! seccomp_data at aligned offsets, a RET at the end), so the interpreter
//! always terminates and never indexes out of range. A stack is bounded
//! at 32768 instructions (MAX_INSNS_PER_PATH; ENOMEM beyond).
//!
//! SECCOMP_RET_USER_NOTIF hands the call to a supervisor through a
//! listener fd ([`Notifier`]); the caller sleeps interruptibly until the
//! supervisor answers, the listener closes (ENOSYS), or a signal comes
//! (ERESTARTSYS, so the call is notified again after a restarting
//! handler). Locking: a notifier's one mutex guards its notifications;
//! tasks sleep on their own wakers, the supervisor on the notifier's
//! [`Waiters`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::poll::{PollEvents, Waiters, POLLHUP, READABLE, WRITABLE};
use crate::fs::vfs::FileOps;
use crate::signal::{bit, KSigAction, Queued, SIGKILL, SIGSYS};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::{ExitStatus, Task};

pub const SECCOMP_MODE_DISABLED: u8 = 0;
pub const SECCOMP_MODE_STRICT: u8 = 1;
pub const SECCOMP_MODE_FILTER: u8 = 2;

const SECCOMP_SET_MODE_STRICT: u32 = 0;
const SECCOMP_SET_MODE_FILTER: u32 = 1;
const SECCOMP_GET_ACTION_AVAIL: u32 = 2;
const SECCOMP_GET_NOTIF_SIZES: u32 = 3;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;
const FLAGS_ALL: u32 = FLAG_TSYNC
    | FLAG_LOG
    | FLAG_SPEC_ALLOW
    | FLAG_NEW_LISTENER
    | FLAG_TSYNC_ESRCH
    | FLAG_WAIT_KILLABLE_RECV;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

/// x86_64's audit architecture (seccomp_data.arch).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// si_code of a SIGSYS from seccomp.
pub const SYS_SECCOMP: i32 = 1;

/// BPF_MAXINSNS: the longest program.
const MAX_INSNS: usize = 4096;
/// MAX_INSNS_PER_PATH: the longest stack (each filter counting 4 more).
const MAX_INSNS_PER_PATH: usize = 32768;
/// Instructions of all filters of the instance together, at most: each
/// stack is bounded by MAX_INSNS_PER_PATH, and this bounds the kernel
/// memory all of them can take (32 MiB) whatever the number of tasks.
const MAX_INSNS_TOTAL: usize = 1 << 22;
/// Instructions of the filters alive now.
static TOTAL_INSNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// sizeof(struct seccomp_data).
const DATA_LEN: u32 = 64;

/// One classic BPF instruction (struct sock_filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    fn from_bytes(b: &[u8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_W_LEN: u16 = 0x80;
const LDX_W_LEN: u16 = 0x81;
const LD_IMM: u16 = 0x00;
const LDX_IMM: u16 = 0x01;
const LD_MEM: u16 = 0x60;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const JA: u16 = 0x05;
const SRC_X: u16 = 0x08;
const ALU_ADD: u16 = 0x00;
const ALU_SUB: u16 = 0x10;
const ALU_MUL: u16 = 0x20;
const ALU_DIV: u16 = 0x30;
const ALU_OR: u16 = 0x40;
const ALU_AND: u16 = 0x50;
const ALU_LSH: u16 = 0x60;
const ALU_RSH: u16 = 0x70;
const ALU_NEG: u16 = 0x80;
const ALU_XOR: u16 = 0xa0;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;

fn is_cond_jump(code: u16) -> bool {
    code >> 8 == 0 && code & 0x07 == JMP && matches!(code & 0xf0, JEQ | JGT | JGE | JSET)
}

/// Whether `code` is one of the opcodes a seccomp program may use
/// (bpf_check_classic's list narrowed by seccomp_check_filter).
fn allowed_code(code: u16) -> bool {
    match code {
        LD_W_ABS | LD_W_LEN | LDX_W_LEN | LD_IMM | LDX_IMM | LD_MEM | LDX_MEM | ST | STX
        | RET_K | RET_A | TAX | TXA => true,
        c if c == ALU | ALU_NEG || c == JMP | JA => true,
        c if c >> 8 == 0 && c & 0x07 == ALU => matches!(
            c & 0xf0,
            ALU_ADD | ALU_SUB | ALU_MUL | ALU_DIV | ALU_OR | ALU_AND | ALU_LSH | ALU_RSH | ALU_XOR
        ),
        c => is_cond_jump(c),
    }
}

/// Checks a program as Linux does before accepting it (EINVAL if bad).
pub fn check_filter(prog: &[Insn]) -> KResult<()> {
    let flen = prog.len();
    if flen == 0 || flen > MAX_INSNS {
        return error!(EINVAL);
    }
    for (pc, i) in prog.iter().enumerate() {
        if !allowed_code(i.code) {
            return error!(EINVAL);
        }
        let left = (flen - pc - 1) as u64;
        match i.code {
            LD_W_ABS if i.k >= DATA_LEN || i.k & 3 != 0 => return error!(EINVAL),
            LD_MEM | LDX_MEM | ST | STX if i.k >= 16 => return error!(EINVAL),
            c if c == ALU | ALU_DIV && i.k == 0 => return error!(EINVAL),
            c if (c == ALU | ALU_LSH || c == ALU | ALU_RSH) && i.k >= 32 => return error!(EINVAL),
            c if c == JMP | JA && i.k as u64 >= left => return error!(EINVAL),
            c if is_cond_jump(c) && (i.jt as u64 >= left || i.jf as u64 >= left) => {
                return error!(EINVAL)
            }
            _ => {}
        }
    }
    if !matches!(prog[flen - 1].code, RET_K | RET_A) {
        return error!(EINVAL);
    }
    check_load_and_stores(prog)
}

/// Scratch memory must be stored before it is loaded, on every path.
fn check_load_and_stores(prog: &[Insn]) -> KResult<()> {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            ST | STX => valid |= 1 << i.k,
            LD_MEM | LDX_MEM if valid & (1 << i.k) == 0 => return error!(EINVAL),
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if is_cond_jump(c) => {
                masks[pc + 1 + i.jt as usize] &= valid;
                masks[pc + 1 + i.jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs a checked program over a struct seccomp_data.
pub fn run_filter(prog: &[Insn], data: &[u8; 64]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    // A checked program only jumps forward and ends in RET: this loop
    // ends within prog.len() steps; the bound is a second guard.
    for _ in 0..=prog.len() {
        let Some(i) = prog.get(pc) else {
            return RET_KILL_THREAD;
        };
        pc += 1;
        let src = if i.code & SRC_X != 0 { x } else { i.k };
        match i.code {
            LD_W_ABS => {
                let k = i.k as usize;
                a = match data.get(k..k + 4) {
                    Some(w) => u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
                    None => return RET_KILL_THREAD,
                };
            }
            LD_W_LEN => a = DATA_LEN,
            LDX_W_LEN => x = DATA_LEN,
            LD_IMM => a = i.k,
            LDX_IMM => x = i.k,
            LD_MEM => a = mem[i.k as usize & 15],
            LDX_MEM => x = mem[i.k as usize & 15],
            ST => mem[i.k as usize & 15] = a,
            STX => mem[i.k as usize & 15] = x,
            RET_K => return i.k,
            RET_A => return a,
            TAX => x = a,
            TXA => a = x,
            c if c & 0x07 == ALU => match c & 0xf0 {
                ALU_ADD => a = a.wrapping_add(src),
                ALU_SUB => a = a.wrapping_sub(src),
                ALU_MUL => a = a.wrapping_mul(src),
                ALU_DIV => {
                    // Classic BPF: division by a zero X ends the program
                    // with 0.
                    if src == 0 {
                        return 0;
                    }
                    a /= src;
                }
                ALU_OR => a |= src,
                ALU_AND => a &= src,
                ALU_LSH => a = a.wrapping_shl(src),
                ALU_RSH => a = a.wrapping_shr(src),
                ALU_NEG => a = a.wrapping_neg(),
                ALU_XOR => a ^= src,
                _ => return RET_KILL_THREAD,
            },
            c if c == JMP | JA => pc += i.k as usize,
            c if is_cond_jump(c) => {
                let taken = match c & 0xf0 {
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    _ => a & src != 0,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            _ => return RET_KILL_THREAD,
        }
    }
    RET_KILL_THREAD
}

/// One installed filter; `prev` is the filter installed before it.
pub struct Filter {
    prog: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_LOG: log every action but ALLOW.
    log: bool,
    prev: Option<Arc<Filter>>,
    /// The listener of SECCOMP_FILTER_FLAG_NEW_LISTENER.
    notif: Option<Arc<Notifier>>,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
    wait_killable_recv: bool,
}

impl Filter {
    fn chain(self: &Arc<Filter>) -> impl Iterator<Item = &Arc<Filter>> {
        std::iter::successors(Some(self), |f| f.prev.as_ref())
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        TOTAL_INSNS.fetch_sub(self.prog.len(), Ordering::Relaxed);
        // No task uses the filter any more: a supervisor's poll sees HUP.
        if let Some(n) = &self.notif {
            n.waiters.wake_all();
        }
    }
}

/// A task's seccomp state: its mode and its newest filter. The mode is
/// read without a lock on every system call; the filter is changed only by
/// the task itself, or by a thread of its process under [`INSTALL`]
/// (TSYNC).
#[derive(Default)]
pub struct TaskSeccomp {
    mode: AtomicU8,
    filter: Mutex<Option<Arc<Filter>>>,
}

/// Serializes filter installation (TSYNC looks at every thread).
static INSTALL: Mutex<()> = Mutex::new(());

impl TaskSeccomp {
    pub fn mode(&self) -> u8 {
        self.mode.load(Ordering::Acquire)
    }

    fn filter(&self) -> Option<Arc<Filter>> {
        self.filter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// fork/clone: the child runs under the parent's mode and filters.
    pub fn inherit(&self, parent: &TaskSeccomp) {
        let _g = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
        *self.filter.lock().unwrap_or_else(|p| p.into_inner()) = parent.filter();
        self.mode.store(parent.mode(), Ordering::Release);
    }

    /// The task is gone: its filters go with it (a supervisor's poll
    /// then sees HUP once no task uses the filter).
    pub fn release(&self) {
        self.filter.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The Seccomp lines of /proc/PID/status.
pub fn status_lines(t: &Task) -> String {
    let n = t.seccomp.filter().map_or(0, |f| f.chain().count());
    format!("Seccomp:\t{}\nSeccomp_filters:\t{}\n", t.seccomp.mode(), n)
}

/// What the filters decided for a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intercept {
    /// Run the call.
    Run,
    /// The call must not run; its result (if any) is in rax.
    Done,
    /// SECCOMP_RET_TRACE with the filter's 16 data bits: the task loop
    /// stops the task for its tracer (PTRACE_EVENT_SECCOMP, which needs
    /// the task runner), then calls [`after_trace`].
    Trace(u32),
}

/// The system-call hook. One atomic load when the task has no seccomp.
/// Runs after a ptrace syscall-enter stop, as in Linux. `recheck`: the
/// filters run again after a tracer's PTRACE_EVENT_SECCOMP stop, when a
/// second TRACE result means "run" (Linux's recheck_after_trace).
#[inline]
pub fn intercept(ctx: &mut SyscallContext<'_>, recheck: bool) -> Intercept {
    match ctx.task.seccomp.mode() {
        SECCOMP_MODE_DISABLED => Intercept::Run,
        mode => intercept_slow(ctx, mode, recheck),
    }
}

/// After the PTRACE_EVENT_SECCOMP stop (`stopped`: a tracer with
/// PTRACE_O_TRACESECCOMP took it; `skip`: it skipped the call or the task
/// is dying): as Linux, no tracer means ENOSYS, a skipped call keeps the
/// rax the tracer left, and a call the tracer let through (possibly
/// changed) is checked by the filters once more.
pub fn after_trace(ctx: &mut SyscallContext<'_>, stopped: bool, skip: bool) -> Intercept {
    if !stopped {
        ctx.regs.rax = Errno::ENOSYS.as_return();
        return Intercept::Done;
    }
    if skip {
        return Intercept::Done;
    }
    intercept(ctx, true)
}

fn seccomp_data(ctx: &SyscallContext<'_>) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&(ctx.regs.orig_rax as u32).to_le_bytes());
    d[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    d[8..16].copy_from_slice(&ctx.regs.rip.to_le_bytes());
    for (i, a) in ctx.regs.syscall_args().iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    d
}

/// Every filter of the stack: the winning return value and the filter
/// that gave it.
fn run_filters(top: &Arc<Filter>, data: &[u8; 64]) -> (u32, Arc<Filter>) {
    let mut ret = RET_ALLOW;
    let mut matched = top.clone();
    for f in top.chain() {
        let cur = run_filter(&f.prog, data);
        if ((cur & RET_ACTION_FULL) as i32) < ((ret & RET_ACTION_FULL) as i32) {
            ret = cur;
            matched = f.clone();
        }
    }
    (ret, matched)
}

fn intercept_slow(ctx: &mut SyscallContext<'_>, mode: u8, recheck: bool) -> Intercept {
    let nr = ctx.regs.orig_rax;
    if mode == SECCOMP_MODE_STRICT {
        use crate::syscalls::names::nr as n;
        if [n::READ, n::WRITE, n::EXIT, n::RT_SIGRETURN].contains(&nr) {
            return Intercept::Run;
        }
        log(ctx, "strict mode", SIGKILL as u32);
        kill_thread(ctx, SIGKILL);
        return Intercept::Done;
    }
    let Some(top) = ctx.task.seccomp.filter() else {
        return Intercept::Run;
    };
    let data = seccomp_data(ctx);
    let (ret, matched) = run_filters(&top, &data);
    let action = ret & RET_ACTION_FULL;
    let value = ret & RET_DATA;
    if matched.log && action != RET_ALLOW {
        log(ctx, "filter", ret);
    }
    match action {
        RET_ALLOW => Intercept::Run,
        RET_LOG => {
            log(ctx, "log", ret);
            Intercept::Run
        }
        RET_ERRNO => {
            ctx.regs.rax = (-(value.min(4095) as i64)) as u64;
            Intercept::Done
        }
        RET_TRAP => {
            ctx.regs.rax = nr;
            force_sigsys(ctx, value, false);
            Intercept::Done
        }
        // A second TRACE after the tracer's stop lets the call run.
        RET_TRACE if recheck => Intercept::Run,
        RET_TRACE => Intercept::Trace(value),
        RET_USER_NOTIF => {
            if user_notif(ctx, &matched, data) {
                Intercept::Done
            } else {
                Intercept::Run
            }
        }
        _ => {
            // KILL_THREAD, KILL_PROCESS and unknown actions.
            log(ctx, "kill", ret);
            let last = ctx.task.group.threads().len() <= 1;
            if action == RET_KILL_THREAD && !last {
                kill_thread(ctx, SIGSYS);
            } else {
                // A fatal SIGSYS with a core dump, showing the call's
                // registers as they were.
                ctx.regs.rax = nr;
                force_sigsys(ctx, value, true);
            }
            Intercept::Done
        }
    }
}

fn log(ctx: &SyscallContext<'_>, what: &str, ret: u32) {
    crate::log::info(&format!(
        "audit: type=1326 seccomp {what}: pid={} comm=\"{}\" syscall={} ip={:#x} code={ret:#x}",
        ctx.task.tid(),
        String::from_utf8_lossy(&ctx.task.comm.lock().unwrap_or_else(|p| p.into_inner())),
        ctx.regs.orig_rax,
        ctx.regs.rip
    ));
}

/// Ends the calling thread as Linux's do_exit(signo): the process too if
/// it was the last thread.
fn kill_thread(ctx: &mut SyscallContext<'_>, signo: i32) {
    if ctx.task.group.threads().len() <= 1 {
        crate::signal::group_exit(&ctx.task.group, ExitStatus::Killed { signo, core: false });
    }
    super::exit::exit_thread(ctx.task);
    ctx.after = Some(super::After::Exit);
}

/// force_sig_seccomp: SIGSYS with si_code SYS_SECCOMP, si_call_addr,
/// si_syscall, si_arch and si_errno = the filter's data. With `fatal` (or
/// when blocked or ignored) the default action is restored first, so the
/// process dies with a core dump.
fn force_sigsys(ctx: &SyscallContext<'_>, data: u32, fatal: bool) {
    let task = ctx.task;
    let mut g = task.group.sig();
    let mut s = task.signals.lock();
    let i = (SIGSYS - 1) as usize;
    // handler 1: SIG_IGN.
    if fatal || s.blocked & bit(SIGSYS) != 0 || g.actions[i].handler == 1 {
        g.actions[i] = KSigAction::default();
        s.blocked &= !bit(SIGSYS);
    }
    s.pending.insert(
        0,
        Queued {
            signo: SIGSYS,
            code: SYS_SECCOMP,
            a: ctx.regs.rip,
            // si_syscall in the low half, si_errno in the high half (see
            // signal.rs's siginfo layout for SIGSYS).
            b: (ctx.regs.orig_rax & 0xffff_ffff) | ((data as u64) << 32),
            forced: true,
        },
    );
}

// --- USER_NOTIF ----------------------------------------------------------

const NOTIF_SIZE: usize = 80;
const NOTIF_RESP_SIZE: usize = 24;
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;
const IOCTL_NOTIF_RECV: u32 = 0xc050_2100;
const IOCTL_NOTIF_SEND: u32 = 0xc018_2101;
const IOCTL_NOTIF_ID_VALID: u32 = 0x4008_2102;
const IOCTL_NOTIF_ID_VALID_WRONG_DIR: u32 = 0x8008_2102;
const IOCTL_NOTIF_ADDFD: u32 = 0x4018_2103;
const ADDFD_FLAG_SETFD: u32 = 1;
const ADDFD_FLAG_SEND: u32 = 2;
const O_CLOEXEC: u32 = 0o2000000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum NState {
    Init,
    Sent,
    Replied { val: i64, error: i32, flags: u32 },
}

struct Notif {
    id: u64,
    pid: i32,
    data: [u8; 64],
    state: NState,
    task: Weak<Task>,
}

#[derive(Default)]
struct NotifInner {
    next_id: u64,
    list: Vec<Notif>,
    /// The listener fd is closed: no supervisor any more.
    detached: bool,
}

/// The supervisor side of a filter (SECCOMP_FILTER_FLAG_NEW_LISTENER).
/// One notification per waiting task, so the list is bounded by the
/// number of tasks.
pub struct Notifier {
    inner: Mutex<NotifInner>,
    /// The supervisor (RECV, poll) sleeps here.
    waiters: Waiters,
    /// The filter, for poll's HUP once no task uses it.
    filter: Mutex<Weak<Filter>>,
}

impl Notifier {
    fn lock(&self) -> std::sync::MutexGuard<'_, NotifInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The listener fd's last reference is gone: every waiting call fails
    /// with ENOSYS, later ones too.
    fn detach(&self) {
        let mut n = self.lock();
        n.detached = true;
        for x in n.list.iter_mut() {
            x.state = NState::Replied {
                val: 0,
                error: Errno::ENOSYS.as_return() as i64 as i32,
                flags: 0,
            };
            if let Some(t) = x.task.upgrade() {
                t.waker.poke();
            }
        }
    }
}

fn user_notif(ctx: &mut SyscallContext<'_>, f: &Arc<Filter>, data: [u8; 64]) -> bool {
    let enosys = |ctx: &mut SyscallContext<'_>| {
        ctx.regs.rax = Errno::ENOSYS.as_return();
        true
    };
    let Some(n) = f.notif.clone() else {
        return enosys(ctx);
    };
    let id = {
        let mut g = n.lock();
        if g.detached {
            return enosys(ctx);
        }
        let id = g.next_id;
        g.next_id = g.next_id.wrapping_add(1);
        g.list.push(Notif {
            id,
            pid: ctx.task.tid(),
            data,
            state: NState::Init,
            task: Arc::downgrade(ctx.task),
        });
        id
    };
    n.waiters.wake_all();
    let mut answer = None;
    let mut done = || {
        let g = n.lock();
        match g.list.iter().find(|x| x.id == id).map(|x| x.state) {
            Some(NState::Replied { val, error, flags }) => {
                answer = Some((val, error, flags));
                true
            }
            Some(_) => false,
            None => true,
        }
    };
    let mut r = ctx.task.wait_until(None, &mut done);
    let received = || {
        n.lock()
            .list
            .iter()
            .any(|x| x.id == id && x.state == NState::Sent)
    };
    if r.is_err() && f.wait_killable_recv && received() {
        // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the supervisor has
        // the call, only a fatal signal (a group exit) ends the wait.
        let group = ctx.task.group.clone();
        let mut fatal = false;
        ctx.task.sleep_until_poked(|| {
            fatal = group.sig().exit.is_some();
            fatal || done()
        });
        if !fatal {
            r = Ok(());
        }
    }
    n.lock().list.retain(|x| x.id != id);
    n.waiters.wake_all();
    match (r, answer) {
        (Ok(()), Some((_, _, flags))) if flags & USER_NOTIF_FLAG_CONTINUE != 0 => false,
        (Ok(()), Some((val, error, _))) => {
            ctx.regs.rax = if error != 0 {
                error as i64 as u64
            } else {
                val as u64
            };
            true
        }
        (Ok(()), None) => enosys(ctx),
        (Err(_), _) => {
            ctx.regs.rax = Errno::ERESTARTSYS.as_return();
            true
        }
    }
}

/// The listener fd.
struct Listener(Arc<Notifier>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.detach();
    }
}

impl FileOps for Listener {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EINVAL)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let n = &self.0;
        let mut ev = 0;
        {
            let g = n.lock();
            if g.list.iter().any(|x| x.state == NState::Init) {
                ev |= READABLE;
            }
            if g.list.iter().any(|x| x.state == NState::Sent) {
                ev |= WRITABLE;
            }
        }
        if n.filter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .strong_count()
            == 0
        {
            ev |= POLLHUP;
        }
        ev
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.0.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        match cmd {
            IOCTL_NOTIF_RECV => self.recv(ctx, arg),
            IOCTL_NOTIF_SEND => self.send(ctx, arg),
            IOCTL_NOTIF_ID_VALID | IOCTL_NOTIF_ID_VALID_WRONG_DIR => {
                let id: u64 = ctx.mm().read_val(arg)?;
                let g = self.0.lock();
                match g.list.iter().find(|x| x.id == id) {
                    Some(x) if x.state == NState::Sent => Ok(0),
                    _ => error!(ENOENT),
                }
            }
            IOCTL_NOTIF_ADDFD => self.addfd(ctx, arg),
            _ => error!(EINVAL),
        }
    }
}

impl Listener {
    fn recv(&self, ctx: &SyscallContext<'_>, arg: u64) -> KResult<u64> {
        let mut b = [0u8; NOTIF_SIZE];
        ctx.mm().read_bytes(arg, &mut b)?;
        if b.iter().any(|&c| c != 0) {
            return error!(EINVAL);
        }
        let n = &self.0;
        let mut got = None;
        n.waiters
            .wait(Some(ctx.task), None, || {
                let mut g = n.lock();
                match g.list.iter_mut().find(|x| x.state == NState::Init) {
                    Some(x) => {
                        x.state = NState::Sent;
                        got = Some((x.id, x.pid, x.data));
                        true
                    }
                    None => false,
                }
            })
            .map_err(|e| {
                if e == Errno::ERESTARTSYS {
                    Errno::EINTR
                } else {
                    e
                }
            })?;
        let Some((id, pid, data)) = got else {
            return error!(ENOENT);
        };
        b[0..8].copy_from_slice(&id.to_le_bytes());
        b[8..12].copy_from_slice(&pid.to_le_bytes());
        b[16..80].copy_from_slice(&data);
        if let Err(e) = ctx.mm().write_bytes(arg, &b) {
            // Back in the queue for another RECV.
            if let Some(x) = n.lock().list.iter_mut().find(|x| x.id == id) {
                x.state = NState::Init;
            }
            return Err(e);
        }
        n.waiters.wake_all();
        Ok(0)
    }

    /// Answers notification `id` (which must have been received).
    fn reply(&self, id: u64, val: i64, error: i32, flags: u32) -> KResult<()> {
        let mut g = self.0.lock();
        let x = g
            .list
            .iter_mut()
            .find(|x| x.id == id)
            .ok_or(crate::errno!(ENOENT))?;
        if x.state != NState::Sent {
            return error!(EINPROGRESS);
        }
        x.state = NState::Replied { val, error, flags };
        if let Some(t) = x.task.upgrade() {
            t.waker.poke();
        }
        Ok(())
    }

    fn send(&self, ctx: &SyscallContext<'_>, arg: u64) -> KResult<u64> {
        let mut b = [0u8; NOTIF_RESP_SIZE];
        ctx.mm().read_bytes(arg, &mut b)?;
        let id = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
        let val = i64::from_le_bytes(b[8..16].try_into().unwrap_or([0; 8]));
        let error = i32::from_le_bytes(b[16..20].try_into().unwrap_or([0; 4]));
        let flags = u32::from_le_bytes(b[20..24].try_into().unwrap_or([0; 4]));
        if flags & !USER_NOTIF_FLAG_CONTINUE != 0
            || (flags & USER_NOTIF_FLAG_CONTINUE != 0 && (error != 0 || val != 0))
        {
            return error!(EINVAL);
        }
        self.reply(id, val, error, flags)?;
        self.0.waiters.wake_all();
        Ok(0)
    }

    fn addfd(&self, ctx: &SyscallContext<'_>, arg: u64) -> KResult<u64> {
        let mut b = [0u8; 24];
        ctx.mm().read_bytes(arg, &mut b)?;
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let id = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
        let (flags, srcfd, newfd, newfd_flags) = (w(8), w(12), w(16), w(20));
        if flags & !(ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND) != 0
            || newfd_flags & !O_CLOEXEC != 0
            || (newfd != 0 && flags & ADDFD_FLAG_SETFD == 0)
        {
            return error!(EINVAL);
        }
        let file = ctx.files().get(srcfd as i32)?;
        let target = {
            let g = self.0.lock();
            let x = g
                .list
                .iter()
                .find(|x| x.id == id)
                .ok_or(crate::errno!(ENOENT))?;
            if x.state != NState::Sent {
                return error!(EINPROGRESS);
            }
            x.task.upgrade().ok_or(crate::errno!(ENOENT))?
        };
        // The supervisor installs into the target's table directly: the
        // target sleeps in the notified call, and its table is shared
        // state behind its own lock.
        let cloexec = newfd_flags & O_CLOEXEC != 0;
        let fd = if flags & ADDFD_FLAG_SETFD != 0 {
            target.files().install_at(newfd as i32, file, cloexec)?;
            newfd as i32
        } else {
            target.files().alloc(file, cloexec)?
        };
        if flags & ADDFD_FLAG_SEND != 0 {
            self.reply(id, fd as i64, 0, 0)?;
            self.0.waiters.wake_all();
        }
        Ok(fd as u64)
    }
}

// --- seccomp(2) and prctl ------------------------------------------------

syscall_table! { pub fn seccomp_table;
    SECCOMP => sys_seccomp(op: u32, flags: u32, uargs: UserAddr),
}

fn sys_seccomp(ctx: &mut SyscallContext<'_>, op: u32, flags: u32, uargs: UserAddr) -> KResult<u64> {
    match op {
        SECCOMP_SET_MODE_STRICT => {
            if flags != 0 || !uargs.is_null() {
                return error!(EINVAL);
            }
            set_strict(ctx)
        }
        SECCOMP_SET_MODE_FILTER => set_filter(ctx, flags, uargs),
        SECCOMP_GET_ACTION_AVAIL => {
            if flags != 0 {
                return error!(EINVAL);
            }
            let action: u32 = ctx.mm().read_val(uargs.0)?;
            match action {
                RET_KILL_PROCESS | RET_KILL_THREAD | RET_TRAP | RET_ERRNO | RET_USER_NOTIF
                | RET_TRACE | RET_LOG | RET_ALLOW => Ok(0),
                _ => error!(EOPNOTSUPP),
            }
        }
        SECCOMP_GET_NOTIF_SIZES => {
            if flags != 0 {
                return error!(EINVAL);
            }
            let sizes: [u16; 3] = [NOTIF_SIZE as u16, NOTIF_RESP_SIZE as u16, DATA_LEN as u16];
            ctx.mm().write_val(uargs.0, &sizes)?;
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

const PR_GET_SECCOMP: i32 = 21;
const PR_SET_SECCOMP: i32 = 22;

/// prctl's seccomp options; None for any other option.
pub fn prctl(ctx: &mut SyscallContext<'_>, option: i32, a: [u64; 4]) -> Option<KResult<u64>> {
    match option {
        PR_GET_SECCOMP => Some(Ok(ctx.task.seccomp.mode() as u64)),
        PR_SET_SECCOMP => Some(match a[0] {
            1 => set_strict(ctx),
            2 => set_filter(ctx, 0, UserAddr(a[1])),
            _ => error!(EINVAL),
        }),
        _ => None,
    }
}

fn set_strict(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let _g = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let s = &ctx.task.seccomp;
    if s.mode() != SECCOMP_MODE_DISABLED && s.mode() != SECCOMP_MODE_STRICT {
        return error!(EINVAL);
    }
    s.mode.store(SECCOMP_MODE_STRICT, Ordering::Release);
    Ok(0)
}

/// Reads and checks a struct sock_fprog from the guest.
fn read_prog(ctx: &SyscallContext<'_>, uargs: UserAddr) -> KResult<Vec<Insn>> {
    let mm = ctx.mm();
    let hdr: [u64; 2] = mm.read_val(uargs.0)?;
    let len = (hdr[0] & 0xffff) as usize;
    if len == 0 || len > MAX_INSNS {
        return error!(EINVAL);
    }
    let nnp = ctx.task.group.sig().no_new_privs;
    if !nnp && !ctx.task.privileged(super::caps::Cap::SysAdmin) {
        return error!(EACCES);
    }
    let mut raw = vec![0u8; len * 8];
    mm.read_bytes(hdr[1], &mut raw)?;
    let prog: Vec<Insn> = raw.chunks_exact(8).map(Insn::from_bytes).collect();
    check_filter(&prog)?;
    Ok(prog)
}

fn set_filter(ctx: &mut SyscallContext<'_>, flags: u32, uargs: UserAddr) -> KResult<u64> {
    if flags & !FLAGS_ALL != 0 {
        return error!(EINVAL);
    }
    if flags & FLAG_TSYNC != 0 && flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC_ESRCH == 0 {
        return error!(EINVAL);
    }
    if flags & FLAG_WAIT_KILLABLE_RECV != 0 && flags & FLAG_NEW_LISTENER == 0 {
        return error!(EINVAL);
    }
    let prog = read_prog(ctx, uargs)?;
    let _g = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let me = &ctx.task.seccomp;
    if me.mode() == SECCOMP_MODE_STRICT {
        return error!(EINVAL);
    }
    let prev = me.filter();
    let mut total = prog.len();
    for f in prev.iter().flat_map(|p| p.chain()) {
        total += f.prog.len() + 4;
    }
    if total > MAX_INSNS_PER_PATH {
        return error!(ENOMEM);
    }
    // Charged now, released by Filter's drop (or below on failure).
    let n = prog.len();
    if TOTAL_INSNS.fetch_add(n, Ordering::Relaxed) + n > MAX_INSNS_TOTAL {
        TOTAL_INSNS.fetch_sub(n, Ordering::Relaxed);
        return error!(ENOMEM);
    }
    let uncharge = |e| {
        TOTAL_INSNS.fetch_sub(n, Ordering::Relaxed);
        e
    };
    let listener = if flags & FLAG_NEW_LISTENER != 0 {
        let has_listener = |f: &Arc<Filter>| f.notif.as_ref().is_some_and(|n| !n.lock().detached);
        if prev.iter().flat_map(|p| p.chain()).any(has_listener) {
            return Err(uncharge(crate::errno!(EBUSY)));
        }
        let mut start = [0u8; 8];
        ruml_host::clock::random_bytes(&mut start);
        Some(Arc::new(Notifier {
            inner: Mutex::new(NotifInner {
                next_id: u64::from_le_bytes(start),
                ..Default::default()
            }),
            waiters: Waiters::new(),
            filter: Mutex::new(Weak::new()),
        }))
    } else {
        None
    };
    let others: Vec<Arc<Task>> = if flags & FLAG_TSYNC != 0 {
        let threads = ctx.task.group.threads();
        let others: Vec<Arc<Task>> = threads
            .into_iter()
            .filter(|t| !Arc::ptr_eq(t, ctx.task))
            .collect();
        // Every other thread must run under our stack or an ancestor of it.
        for t in &others {
            let theirs = t.seccomp.filter();
            let ok = t.seccomp.mode() != SECCOMP_MODE_STRICT
                && theirs.as_ref().is_none_or(|tf| {
                    prev.iter()
                        .flat_map(|p| p.chain())
                        .any(|f| Arc::ptr_eq(f, tf))
                });
            if !ok {
                let _ = uncharge(Errno::ESRCH);
                return if flags & FLAG_TSYNC_ESRCH != 0 {
                    error!(ESRCH)
                } else {
                    Ok(t.tid() as u64)
                };
            }
        }
        others
    } else {
        Vec::new()
    };
    let fd = match &listener {
        Some(n) => {
            let file = crate::fs::anon::anon_file(
                "seccomp notify",
                Arc::new(Listener(n.clone())),
                2, // O_RDWR
            );
            Some(ctx.files().alloc(file, true).map_err(uncharge)?)
        }
        None => None,
    };
    let filter = Arc::new(Filter {
        prog,
        log: flags & FLAG_LOG != 0,
        prev,
        notif: listener.clone(),
        wait_killable_recv: flags & FLAG_WAIT_KILLABLE_RECV != 0,
    });
    if let Some(n) = &listener {
        *n.filter.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&filter);
    }
    for t in others.iter().map(|t| &t.seccomp).chain([me]) {
        *t.filter.lock().unwrap_or_else(|p| p.into_inner()) = Some(filter.clone());
        t.mode.store(SECCOMP_MODE_FILTER, Ordering::Release);
    }
    Ok(fd.map_or(0, |fd| fd as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn getpid_errno_program() {
        let prog = [
            i(LD_W_ABS, 0, 0, 4),
            i(JMP | JEQ, 1, 0, AUDIT_ARCH_X86_64),
            i(RET_K, 0, 0, RET_KILL_PROCESS),
            i(LD_W_ABS, 0, 0, 0),
            i(JMP | JEQ, 0, 1, 39),
            i(RET_K, 0, 0, RET_ERRNO | 1),
            i(RET_K, 0, 0, RET_ALLOW),
        ];
        check_filter(&prog).unwrap();
        let mut d = [0u8; 64];
        d[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
        d[0] = 39;
        assert_eq!(run_filter(&prog, &d), RET_ERRNO | 1);
        d[0] = 1;
        assert_eq!(run_filter(&prog, &d), RET_ALLOW);
    }

    #[test]
    fn bad_programs_rejected() {
        let ret = i(RET_K, 0, 0, RET_ALLOW);
        assert!(check_filter(&[]).is_err());
        assert!(check_filter(&[i(LD_W_ABS, 0, 0, 2), ret]).is_err());
        assert!(check_filter(&[i(LD_W_ABS, 0, 0, 64), ret]).is_err());
        assert!(check_filter(&[i(JMP | JA, 0, 0, 1), ret]).is_err());
        assert!(check_filter(&[i(JMP | JEQ, 1, 0, 0), ret]).is_err());
        assert!(check_filter(&[i(LD_MEM, 0, 0, 0), ret]).is_err());
        assert!(check_filter(&[i(ALU | ALU_DIV, 0, 0, 0), ret]).is_err());
        assert!(check_filter(&[i(0x30, 0, 0, 0), ret]).is_err()); // LD B ABS
        assert!(check_filter(&[i(ALU | 0x90, 0, 0, 3), ret]).is_err()); // MOD
        assert!(check_filter(&[i(LD_IMM, 0, 0, 0)]).is_err());
        assert!(check_filter(&vec![ret; 4097]).is_err());
        assert!(check_filter(&[i(ST, 0, 0, 3), i(LD_MEM, 0, 0, 3), i(RET_A, 0, 0, 0)]).is_ok());
    }

    #[test]
    fn random_programs_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let codes = [
            LD_W_ABS,
            LD_W_LEN,
            LDX_W_LEN,
            LD_IMM,
            LDX_IMM,
            LD_MEM,
            LDX_MEM,
            ST,
            STX,
            RET_K,
            RET_A,
            TAX,
            TXA,
            ALU | ALU_ADD,
            ALU | ALU_DIV | SRC_X,
            ALU | ALU_LSH | SRC_X,
            ALU | ALU_NEG,
            JMP | JA,
            JMP | JEQ,
            JMP | JGT | SRC_X,
            JMP | JSET,
        ];
        let mut accepted = 0;
        for _ in 0..20000 {
            let n = (next() % 12 + 1) as usize;
            let prog: Vec<Insn> = (0..n)
                .map(|_| {
                    let r = next();
                    let code = if r & 1 == 0 {
                        codes[(r >> 8) as usize % codes.len()]
                    } else {
                        (r >> 8) as u16
                    };
                    i(
                        code,
                        (r >> 24) as u8 % 4,
                        (r >> 32) as u8 % 4,
                        (r >> 40) as u32 % 70,
                    )
                })
                .collect();
            if check_filter(&prog).is_ok() {
                accepted += 1;
                let mut d = [0u8; 64];
                for b in d.iter_mut() {
                    *b = next() as u8;
                }
                run_filter(&prog, &d);
            }
        }
        assert!(accepted > 0);
    }
}
