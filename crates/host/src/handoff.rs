//! How the seccomp backend hands a guest thread back and forth between
//! its stub thread and the task's host thread in ruml, and the adaptive
//! choice between two ways of doing it.
//!
//! Measured on a 2-core VM (see docs/benchmarks.md), per round trip of a
//! bare futex handoff between two host threads:
//!
//! - both threads on **one CPU**, sleeping on the futex: ~4.5 µs (two
//!   local context switches); spinning first only adds the spin, since the
//!   partner cannot run while we spin;
//! - on **two CPUs**, sleeping: ~47 µs (a cross-CPU wakeup is an
//!   inter-processor interrupt and, in a VM, a halted vCPU to wake);
//! - on **two CPUs**, spinning: ~0.45 µs (a cache line moving), but both
//!   CPUs are busy while either side waits.
//!
//! So there are two good modes and a terrible one between them:
//!
//! - [`Mode::Local`]: the stub thread is pinned to the CPU of the host
//!   thread that serves it and neither side spins: each handoff is a futex
//!   wake and a local switch. Costs no CPU beyond the work.
//! - [`Mode::Split`]: the stub thread is pinned to another CPU and both
//!   sides spin, bounded (the host thread [`KERNEL_SPIN_NS`] for the next
//!   trap, the stub [`STUB_SPIN_NS`] for the resume), before falling back
//!   to the futex. Fast when a CPU is spare; wasteful when none is (the
//!   spin then only delays the partner, and the wait ends in the slow
//!   cross-CPU wakeup).
//!
//! Which one wins depends on the load of the host, so each guest thread
//! measures instead of guessing: it times every trap-to-trap interval
//! (the kernel's work, both handoffs and the guest's own run; samples are capped so that one long
//! computation does not dominate), in windows of [`WINDOW`] traps, and now
//! and then runs one window in the other mode; it keeps the mode whose
//! window was faster. A losing trial doubles the time to the next one (up
//! to [`MAX_PROBE_GAP`] windows), so a loaded host pays a trial's spinning
//! rarely. A thread that traps rarely never reaches a trial, and the
//! spins are bounded to microseconds, so an idle instance stays idle.
//! Only a thread that traps densely ever tries Split, and one that stops
//! doing so returns to Local at once: a thread whose system calls block
//! (pipes, futexes, sleeps) gains little from spinning and would cost the
//! host a CPU. Dense means a mean interval under [`DENSE_NS`], or a
//! thread whose system calls do work without blocking (the kernel's mean
//! share of the interval under [`WORK_NS`], within the stub's spin) and
//! whose time away from the kernel (its own run and both handoffs, which
//! in Local may take 25 µs on a loaded host) is under [`AWAY_NS`] and
//! under four times the work (not a guest that computes between calls):
//! 64 KiB reads of a tmpfs file take the kernel some
//! 13 µs each, and in Local each pays a sleeping handoff on top (measured:
//! 38 µs per read Local, 14 µs Split, 13 µs native). New threads start
//! in Local.
//!
//! `RUML_SECCOMP_HANDOFF=local|split|adaptive` (environment of ruml)
//! forces a mode, for measurements; adaptive is the default.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the host thread spins for the next trap in Split mode: long
/// enough for the guest's own work between two system calls of a
/// system-call-heavy loop.
pub const KERNEL_SPIN_NS: u64 = 15_000;
/// How long the stub thread spins for the resume in Split mode: long
/// enough for the kernel to serve a common system call.
pub const STUB_SPIN_NS: u64 = 25_000;
/// Traps per measurement window.
pub const WINDOW: u32 = 128;
/// The densest trapping worth a trial of Split: a mean trap-to-trap
/// interval (in Local mode) below this.
pub const DENSE_NS: u64 = 15_000;
/// The most kernel work per trap (mean) that still counts as dense when
/// the whole interval does not: well within [`STUB_SPIN_NS`], so that in
/// Split the stub's spin sees the resume.
pub const WORK_NS: u64 = STUB_SPIN_NS * 3 / 4;
/// The most time away from the kernel per trap (mean: the guest's run and
/// both handoffs) of a thread dense by its work.
pub const AWAY_NS: u64 = 40_000;
/// Traps not counted after a change of mode.
const WARMUP: u32 = 16;
/// Windows between two trials, at first and at most.
const MIN_PROBE_GAP: u32 = 2;
pub const MAX_PROBE_GAP: u32 = 512;
/// Cap of one sample: a longer interval is the guest computing, and
/// counts as this much for both modes alike.
const SAMPLE_CAP_NS: u64 = 200_000;

/// The two ways of handing off; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Local,
    Split,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Adaptive,
    Forced(Mode),
}

fn policy() -> Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    *P.get_or_init(|| {
        let split_possible = cpus().len() > 1;
        match std::env::var("RUML_SECCOMP_HANDOFF").as_deref() {
            Ok("local") => Policy::Forced(Mode::Local),
            Ok("split") if split_possible => Policy::Forced(Mode::Split),
            _ if !split_possible => Policy::Forced(Mode::Local),
            _ => Policy::Adaptive,
        }
    })
}

/// The CPUs ruml may run on (at first use).
pub fn cpus() -> &'static [i32] {
    static C: OnceLock<Vec<i32>> = OnceLock::new();
    C.get_or_init(|| {
        // SAFETY: cpu_set_t is plain data, filled in by the call.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .map(|c| c as i32)
                .collect()
        }
    })
}

/// A CPU ruml may run on other than `cpu`: the next one in the set.
pub fn other_cpu(cpu: i32) -> Option<i32> {
    let c = cpus();
    let i = c.iter().position(|&x| x == cpu)?;
    let o = c[(i + 1) % c.len()];
    (o != cpu).then_some(o)
}

/// Nanoseconds one `pause` takes on this host (measured once).
fn pause_ns() -> f64 {
    static P: OnceLock<f64> = OnceLock::new();
    *P.get_or_init(|| {
        let n = 2000u32;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::spin_loop();
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        ns.clamp(1.0, 1000.0)
    })
}

/// The stub's spin, in iterations, for a spin of `ns`.
pub fn stub_iterations(ns: u64) -> u32 {
    ((ns as f64 / pause_ns()) as u32).min(crate::sstub::STUB_SPIN_MAX)
}

/// One guest thread's handoff mode and its measurements. Owned by the
/// host thread serving the guest thread; no locking.
#[derive(Debug)]
pub struct Handoff {
    mode: Mode,
    /// The current window: traps and their summed (capped) intervals,
    /// and the kernel's share of them (trap to resume).
    n: u32,
    sum_ns: u64,
    work_ns: u64,
    /// The mean of the last full window in each mode.
    last: [Option<u64>; 2],
    /// Whether the current window is a trial of the other mode.
    trial: bool,
    /// Windows since the last trial, and the gap before the next one.
    since: u32,
    gap: u32,
    /// Samples still to skip after a change of mode.
    warmup: u32,
}

impl Default for Handoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Handoff {
    pub fn new() -> Handoff {
        let mode = match policy() {
            Policy::Forced(m) => m,
            Policy::Adaptive => Mode::Local,
        };
        Handoff {
            mode,
            n: 0,
            sum_ns: 0,
            work_ns: 0,
            last: [None, None],
            trial: false,
            since: 0,
            gap: MIN_PROBE_GAP,
            warmup: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How long the host thread spins for the next trap.
    pub fn kernel_spin(&self) -> Duration {
        match self.mode {
            Mode::Local => Duration::ZERO,
            Mode::Split => Duration::from_nanos(KERNEL_SPIN_NS),
        }
    }

    /// The stub's spin for the next resume, in iterations.
    pub fn stub_spin(&self) -> u32 {
        match self.mode {
            Mode::Local => 0,
            Mode::Split => stub_iterations(STUB_SPIN_NS),
        }
    }

    /// Records one trap-to-trap interval, of which `work` the kernel spent
    /// between the trap and the resume; may change the mode.
    pub fn record(&mut self, interval: Duration, work: Duration) {
        if matches!(policy(), Policy::Forced(_)) {
            return;
        }
        if self.warmup > 0 {
            // The first traps after a change pay for the move.
            self.warmup -= 1;
            return;
        }
        let ns = (interval.as_nanos() as u64).min(SAMPLE_CAP_NS);
        self.n += 1;
        self.sum_ns += ns;
        self.work_ns += (work.as_nanos() as u64).min(ns);
        if self.n < WINDOW {
            return;
        }
        let mean = self.sum_ns / self.n as u64;
        let work = self.work_ns / self.n as u64;
        self.n = 0;
        self.sum_ns = 0;
        self.work_ns = 0;
        let dense = mean <= DENSE_NS
            || (work <= WORK_NS && mean - work <= AWAY_NS && work * 4 >= mean - work);
        let idx = |m: Mode| match m {
            Mode::Local => 0,
            Mode::Split => 1,
        };
        self.last[idx(self.mode)] = Some(mean);
        if self.trial {
            self.trial = false;
            let tried = self.mode;
            let (local, split) = (self.last[0], self.last[1]);
            // Split must beat Local clearly (it costs a second CPU).
            let split_wins = match (local, split) {
                (Some(l), Some(s)) => s * 4 < l * 3,
                _ => false,
            };
            let keep = if split_wins { Mode::Split } else { Mode::Local };
            if keep == tried {
                self.gap = MIN_PROBE_GAP;
            } else {
                self.gap = (self.gap * 2).min(MAX_PROBE_GAP);
            }
            if keep != self.mode {
                self.warmup = WARMUP;
            }
            self.mode = keep;
            self.since = 0;
            return;
        }
        if self.mode == Mode::Split && !dense {
            // No longer dense: spinning only costs. (On a loaded host the
            // kernel's work stretches past the stub's spin: counts as a
            // lost trial, so such a thread tries Split ever more rarely.)
            self.gap = (self.gap * 2).min(MAX_PROBE_GAP);
            self.mode = Mode::Local;
            self.warmup = WARMUP;
            self.since = 0;
            return;
        }
        self.since += 1;
        if self.mode == Mode::Local && !dense {
            return;
        }
        if self.since >= self.gap {
            self.trial = true;
            self.warmup = WARMUP;
            self.mode = match self.mode {
                Mode::Local => Mode::Split,
                Mode::Split => Mode::Local,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(h: &mut Handoff, local_ns: u64, split_ns: u64, traps: u32) {
        for _ in 0..traps {
            let ns = match h.mode() {
                Mode::Local => local_ns,
                Mode::Split => split_ns,
            };
            h.record(Duration::from_nanos(ns), Duration::ZERO);
        }
    }

    #[test]
    fn chooses_the_faster_mode_and_backs_off() {
        if matches!(policy(), Policy::Forced(_)) {
            return;
        }
        let mut h = Handoff::new();
        h.mode = Mode::Local;
        // Split much faster: after a trial the thread stays split.
        feed(&mut h, 10_000, 3_000, WINDOW * 8);
        assert_eq!(h.mode(), Mode::Split);
        // Split slower (a loaded host): back to local, trials get rarer.
        feed(&mut h, 10_000, 14_000, WINDOW * 64);
        assert_eq!(h.mode(), Mode::Local);
        assert!(h.gap > MIN_PROBE_GAP);
        // A trial spends one window in the other mode, then returns.
        let mut split_windows = 0;
        for _ in 0..(MAX_PROBE_GAP * 4) {
            feed(&mut h, 10_000, 14_000, WINDOW);
            if h.mode() == Mode::Split {
                split_windows += 1;
            }
        }
        assert!(split_windows < 16, "{split_windows} trial windows");
    }

    #[test]
    fn sparse_traps_never_spin() {
        if matches!(policy(), Policy::Forced(_)) {
            return;
        }
        let mut h = Handoff::new();
        assert_eq!(h.mode(), Mode::Local);
        // A thread that blocks between traps: Split is never tried.
        for _ in 0..(WINDOW * 64) {
            h.record(Duration::from_nanos(DENSE_NS * 3), Duration::ZERO);
            assert_eq!(h.mode(), Mode::Local);
        }
        // Dense, Split wins; then sparse again: straight back to Local.
        feed(&mut h, 10_000, 2_000, WINDOW * 8);
        assert_eq!(h.mode(), Mode::Split);
        feed(&mut h, DENSE_NS * 3, DENSE_NS * 3, WINDOW + WARMUP);
        assert_eq!(h.mode(), Mode::Local);
    }

    #[test]
    fn busy_system_calls_count_as_dense() {
        if matches!(policy(), Policy::Forced(_)) {
            return;
        }
        // 64 KiB reads: 13 µs of kernel work, 25 µs of Local handoff;
        // Split (1 µs away) wins its trial.
        let mut h = Handoff::new();
        for _ in 0..(WINDOW * 8) {
            let away = if h.mode() == Mode::Local {
                25_000
            } else {
                1_000
            };
            h.record(
                Duration::from_nanos(13_000 + away),
                Duration::from_nanos(13_000),
            );
        }
        assert_eq!(h.mode(), Mode::Split);
        // Work past the stub's spin (a blocking call): never dense.
        let mut h = Handoff::new();
        for _ in 0..(WINDOW * 64) {
            h.record(Duration::from_nanos(40_000), Duration::from_nanos(35_000));
            assert_eq!(h.mode(), Mode::Local);
        }
    }

    #[test]
    fn spins_are_bounded() {
        assert!(stub_iterations(u64::MAX) <= crate::sstub::STUB_SPIN_MAX);
        let mut h = Handoff::new();
        h.mode = Mode::Split;
        assert!(h.kernel_spin() <= Duration::from_micros(100));
        h.mode = Mode::Local;
        assert_eq!(h.stub_spin(), 0);
        assert_eq!(h.kernel_spin(), Duration::ZERO);
    }
}
