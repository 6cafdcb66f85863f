//! CPU time of stub processes and threads: guest code runs there, so the
//! guest's CPU accounting reads the host's.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// CPU time a recycled stub (see [`crate::stubpool`]) had used for the
/// processes it served before its current one: subtracted from what the
/// host reports, so a process's times are its own. Keyed by (stub pid,
/// thread id), thread id 0 for the whole process.
#[derive(Clone, Copy, Default)]
struct Base {
    user: Duration,
    sys: Duration,
    cpu: Duration,
}

fn bases() -> &'static Mutex<HashMap<(i32, i32), Base>> {
    static B: OnceLock<Mutex<HashMap<(i32, i32), Base>>> = OnceLock::new();
    B.get_or_init(|| Mutex::new(HashMap::new()))
}

fn base(pid: i32, tid: i32) -> Base {
    bases()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(pid, tid))
        .copied()
        .unwrap_or_default()
}

/// A stub process `pid` is about to serve a new guest process with its
/// thread `tid`: from now on their times count from zero.
pub(crate) fn rebase(pid: i32, tid: i32) {
    let read = |tid: i32| {
        let (user, sys) = if tid == 0 {
            raw_process_times(pid)
        } else {
            raw_thread_times(pid, tid)
        }
        .unwrap_or_default();
        let cpu = if tid == 0 {
            raw_process_cpu(pid).unwrap_or_default()
        } else {
            user + sys
        };
        Base { user, sys, cpu }
    };
    let (p, t) = (read(0), read(tid));
    let mut b = bases().lock().unwrap_or_else(|e| e.into_inner());
    b.insert((pid, 0), p);
    b.insert((pid, tid), t);
}

/// The stub process `pid` is gone: its baselines with it.
pub(crate) fn forget(pid: i32) {
    let mut b = bases().lock().unwrap_or_else(|e| e.into_inner());
    if !b.is_empty() {
        b.retain(|k, _| k.0 != pid);
    }
}

fn minus(t: (Duration, Duration), b: Base) -> (Duration, Duration) {
    (t.0.saturating_sub(b.user), t.1.saturating_sub(b.sys))
}

fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory arguments.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// (user, system) time from a /proc stat line.
fn parse_stat(s: &str) -> Option<(Duration, Duration)> {
    // Fields after the parenthesized comm; utime and stime are the 12th
    // and 13th of those (fields 14 and 15 overall).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let hz = ticks_per_sec();
    let u: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    let d = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000 / hz));
    Some((d(u), d(st)))
}

/// (user, system) CPU time of a whole stub process, living threads and
/// dead ones.
pub fn process_times(pid: i32) -> Option<(Duration, Duration)> {
    raw_process_times(pid).map(|t| minus(t, base(pid, 0)))
}

fn raw_process_times(pid: i32) -> Option<(Duration, Duration)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// (user, system) CPU time of one stub thread.
pub fn thread_times(pid: i32, tid: i32) -> Option<(Duration, Duration)> {
    raw_thread_times(pid, tid).map(|t| minus(t, base(pid, tid)))
}

fn raw_thread_times(pid: i32, tid: i32) -> Option<(Duration, Duration)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?)
}

/// The precise CPU time of a stub process (its process CPU clock).
pub fn process_cpu(pid: i32) -> Option<Duration> {
    raw_process_cpu(pid).map(|c| c.saturating_sub(base(pid, 0).cpu))
}

fn raw_process_cpu(pid: i32) -> Option<Duration> {
    // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    let clock = ((!pid) << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The CPU time of the calling host thread (kernel work done for a task).
pub fn current_thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let s = "12 (a b) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0";
        let (u, st) = super::parse_stat(s).unwrap();
        let hz = super::ticks_per_sec();
        assert_eq!(u.as_millis() as u64, 250 * 1000 / hz);
        assert_eq!(st.as_millis() as u64, 150 * 1000 / hz);
    }
}
