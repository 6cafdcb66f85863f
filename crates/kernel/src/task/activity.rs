//! What each task is doing, for the magic SysRq keys `w` (tasks blocked in
//! the kernel) and `l` (every task's guest registers): the system call it
//! is serving, since when, and the guest registers at its entry.
//!
//! Written only by the task's own host thread, with relaxed atomic stores
//! at each system call's entry and exit (a few nanoseconds against a trap
//! of microseconds); read by the management console's thread. A reader may
//! see a record half updated (registers of two consecutive calls): the
//! keys are diagnostics and say so.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

use ruml_host::Registers;

/// Register names in [`Activity`]'s order, as Linux's show_regs prints
/// them.
pub const REG_NAMES: [&str; 19] = [
    "RIP", "RSP", "EFLAGS", "ORIG_RAX", "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R08",
    "R09", "R10", "R11", "R12", "R13", "R14", "R15",
];

/// A task's current activity; see the module doc.
#[derive(Default)]
pub struct Activity {
    /// The system call being served, plus one (0: none: the task runs
    /// guest code, or the kernel works for it outside a call).
    nr: AtomicU64,
    /// When that call began: nanoseconds since [`epoch`], plus one.
    since: AtomicU64,
    /// Whether `regs` holds anything yet.
    seen: AtomicU64,
    regs: [AtomicU64; 19],
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// A copy of a task's activity.
pub struct Snapshot {
    /// The system call being served, and for how many milliseconds.
    pub syscall: Option<(u64, u64)>,
    /// The guest registers at the last system call's entry (in
    /// [`REG_NAMES`] order), if it made one.
    pub regs: Option<[u64; 19]>,
}

impl Activity {
    /// The task enters system call `regs.orig_rax`.
    pub fn enter(&self, regs: &Registers) {
        let vals = [
            regs.rip,
            regs.rsp,
            regs.eflags,
            regs.orig_rax,
            regs.rax,
            regs.rbx,
            regs.rcx,
            regs.rdx,
            regs.rsi,
            regs.rdi,
            regs.rbp,
            regs.r8,
            regs.r9,
            regs.r10,
            regs.r11,
            regs.r12,
            regs.r13,
            regs.r14,
            regs.r15,
        ];
        for (a, v) in self.regs.iter().zip(vals) {
            a.store(v, Relaxed);
        }
        self.seen.store(1, Relaxed);
        let now = epoch().elapsed().as_nanos() as u64;
        self.since.store(now.saturating_add(1), Relaxed);
        self.nr.store(regs.orig_rax.saturating_add(1), Relaxed);
    }

    /// The system call is done (or the task is back in guest code).
    pub fn leave(&self) {
        self.nr.store(0, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let nr = self.nr.load(Relaxed);
        let since = self.since.load(Relaxed);
        let syscall = (nr != 0).then(|| {
            let now = epoch().elapsed().as_nanos() as u64;
            (
                nr - 1,
                now.saturating_sub(since.saturating_sub(1)) / 1_000_000,
            )
        });
        let regs = (self.seen.load(Relaxed) != 0).then(|| {
            let mut r = [0u64; 19];
            for (d, a) in r.iter_mut().zip(self.regs.iter()) {
                *d = a.load(Relaxed);
            }
            r
        });
        Snapshot { syscall, regs }
    }
}
