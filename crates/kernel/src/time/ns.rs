//! Time namespaces (time_namespaces(7)): per-namespace offsets of
//! CLOCK_MONOTONIC and CLOCK_BOOTTIME.
//!
//! A namespace's [`Offsets`] live in its `PlainNs` (task/ns.rs). A new
//! namespace starts with its creator's offsets and may be changed through
//! /proc/PID/timens_offsets (which shows and sets the namespace of the
//! process's *children*, `time_for_children`) until a process enters it
//! (clone without CLONE_VM, exec after unshare(CLONE_NEWTIME), setns):
//! then its offsets are frozen and writes give EACCES. The root namespace
//! is frozen from the start.
//!
//! What the offsets change, as Linux: clock_gettime of MONOTONIC (and its
//! RAW and COARSE variants), BOOTTIME (and BOOTTIME_ALARM); absolute
//! deadlines given in those clocks (clock_nanosleep TIMER_ABSTIME,
//! timer_settime and timerfd_settime with TIMER_ABSTIME) are converted
//! back to the instance's clock; /proc/uptime and sysinfo's uptime.
//!
//! The vDSO: its data page (vvar) is one page shared by every address
//! space and holds the root namespace's clock. An address space whose
//! process is in another time namespace maps a second page instead, whose
//! flags say "no TSC clock", so every vDSO clock function there makes the
//! real system call, which applies the offsets (vdso/mod.rs,
//! [`crate::vdso::Vdso::join_timens`]). Correct at the price of a trap per
//! clock read inside such namespaces.
//!
//! Locking: the offsets are atomics; writers (the proc file) serialise on
//! the `write` mutex, under which `frozen` is checked and the values set,
//! and entering the namespace sets `frozen` under the same mutex.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::KResult;
use crate::error;
use crate::task::ns::{PlainNs, UserNs};

const NSEC: i64 = 1_000_000_000;
/// Linux's KTIME_SEC_MAX: the largest second count a ktime_t holds.
const KTIME_SEC_MAX: i64 = i64::MAX / NSEC;

/// One time namespace's offsets, in nanoseconds.
#[derive(Default)]
pub struct Offsets {
    mono: AtomicI64,
    boot: AtomicI64,
    frozen: AtomicBool,
    write: Mutex<()>,
}

impl Offsets {
    /// The root namespace's: zero, frozen.
    pub fn root() -> Offsets {
        let o = Offsets::default();
        o.frozen.store(true, Ordering::Relaxed);
        o
    }
    /// A new namespace's: its creator's values, not frozen.
    pub fn copy_of(other: &Offsets) -> Offsets {
        let o = Offsets::default();
        o.mono
            .store(other.mono.load(Ordering::Relaxed), Ordering::Relaxed);
        o.boot
            .store(other.boot.load(Ordering::Relaxed), Ordering::Relaxed);
        o
    }
    /// A process enters the namespace: no more changes.
    pub fn freeze(&self) {
        let _g = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.frozen.store(true, Ordering::Relaxed);
    }
    /// The offset of `clock` (after check_clock's mapping: 1, 4, 6
    /// monotonic; 7 boottime), 0 for the others.
    pub fn of_clock(&self, clock: i32) -> i64 {
        match clock {
            1 | 4 | 6 => self.mono.load(Ordering::Relaxed),
            7 | crate::time::CLOCK_BOOTTIME_ALARM => self.boot.load(Ordering::Relaxed),
            _ => 0,
        }
    }
    pub fn boottime(&self) -> i64 {
        self.boot.load(Ordering::Relaxed)
    }
    /// Whether both offsets are zero (the vDSO may serve the namespace).
    pub fn is_zero(&self) -> bool {
        self.mono.load(Ordering::Relaxed) == 0 && self.boot.load(Ordering::Relaxed) == 0
    }
}

/// The offset `task`'s time namespace adds to `clock`, in ns.
pub fn offset(task: &crate::task::Task, clock: i32) -> i64 {
    task.nsproxy().time.offsets.of_clock(clock)
}

/// `ts` (in `task`'s namespace's view of `clock`) in the instance's own
/// clock: what an absolute deadline means to the kernel.
pub fn to_host(task: &crate::task::Task, clock: i32, sec: i64, nsec: i64) -> (i64, i64) {
    let off = offset(task, clock);
    if off == 0 {
        return (sec, nsec);
    }
    let ns = (sec as i128 * NSEC as i128 + nsec as i128 - off as i128).max(0);
    (
        (ns / NSEC as i128).min(i64::MAX as i128) as i64,
        (ns % NSEC as i128) as i64,
    )
}

/// `ts` of `clock` (the instance's) as `task`'s namespace shows it.
pub fn from_host(task: &crate::task::Task, clock: i32, sec: i64, nsec: i64) -> (i64, i64) {
    let off = offset(task, clock);
    if off == 0 {
        return (sec, nsec);
    }
    let ns = sec as i128 * NSEC as i128 + nsec as i128 + off as i128;
    (
        ns.div_euclid(NSEC as i128) as i64,
        ns.rem_euclid(NSEC as i128) as i64,
    )
}

/// `task` has just entered the time namespace `ns` (fork, exec, setns):
/// freeze its offsets and give its address space the vDSO data page the
/// namespace needs.
pub fn entered(task: &crate::task::Task, ns: &PlainNs) {
    ns.offsets.freeze();
    if let Some(v) = crate::vdso::get() {
        v.join_timens(&task.mm(), !ns.offsets.is_zero());
    }
}

/// exec (after the new address space is installed): the task enters its
/// time_for_children (Linux's exec_task_namespaces), and the new address
/// space gets the vDSO data page its namespace needs.
pub fn exec_commit(task: &crate::task::Task) {
    let p = task.nsproxy();
    let ns = p.time_for_children.clone();
    let moved = !Arc::ptr_eq(&p.time, &ns);
    if moved {
        let mut np = (*p).clone();
        np.time = ns.clone();
        task.set_nsproxy(Arc::new(np));
    }
    if moved || !ns.offsets.is_zero() {
        entered(task, &ns);
    }
}

/// The text of /proc/PID/timens_offsets: the offsets of the namespace
/// the process's children get.
pub fn show(pid: i32) -> KResult<String> {
    let t = crate::kernel()
        .tasks
        .thread(pid)
        .ok_or(crate::errno!(ESRCH))?;
    let ns = t.nsproxy().time_for_children.clone();
    let line = |name: &str, v: i64| {
        format!(
            "{:<10} {:>10} {:>9}\n",
            name,
            v.div_euclid(NSEC),
            v.rem_euclid(NSEC)
        )
    };
    Ok(line("monotonic", ns.offsets.mono.load(Ordering::Relaxed))
        + &line("boottime", ns.offsets.boot.load(Ordering::Relaxed)))
}

/// Opens /proc/PID/timens_offsets for writing (reading is a generated
/// file). CAP_SYS_TIME over the namespace's owner is judged at open, as
/// Linux judges it by the opener's credentials (file_ns_capable).
pub fn open_offsets(
    pid: i32,
    flags: u32,
    caller: &crate::fs::vfs::Caller<'_>,
) -> KResult<Arc<dyn crate::fs::vfs::FileOps>> {
    let t = crate::kernel()
        .tasks
        .thread(pid)
        .ok_or(crate::errno!(ESRCH))?;
    let owner = t.nsproxy().time_for_children.user_ns.clone();
    let privileged = caller
        .task
        .is_none_or(|c| c.privileged_in(&owner, crate::task::caps::Cap::SysTime));
    let data = if flags & 3 == 2 {
        Vec::new()
    } else {
        show(pid)?.into_bytes()
    };
    Ok(Arc::new(OffsetsFile {
        task: Arc::downgrade(&t),
        checked_for: owner,
        privileged,
        data,
    }))
}

/// An open /proc/PID/timens_offsets (write access).
struct OffsetsFile {
    task: std::sync::Weak<crate::task::Task>,
    /// The user namespace CAP_SYS_TIME was judged over at open.
    checked_for: Arc<UserNs>,
    privileged: bool,
    /// The text at open, for reads of an O_RDWR open.
    data: Vec<u8>,
}

/// Parses one "clock sec nsec" line as Linux's timens_offsets_write:
/// the clock by name or number (monotonic/1, boottime/7), seconds
/// signed, nanoseconds below one second.
fn parse_line(line: &[u8]) -> KResult<(i32, i64, i64)> {
    let s = std::str::from_utf8(line).map_err(|_| crate::errno!(EINVAL))?;
    let mut w = s.split_ascii_whitespace();
    let (Some(c), Some(sec), Some(nsec)) = (w.next(), w.next(), w.next()) else {
        return error!(EINVAL);
    };
    // sscanf's %9s takes at most nine characters of the name.
    let c = &c[..c.len().min(9)];
    let sec: i64 = sec.parse().map_err(|_| crate::errno!(EINVAL))?;
    let nsec: u64 = nsec.parse().map_err(|_| crate::errno!(EINVAL))?;
    if nsec >= NSEC as u64 {
        return error!(EINVAL);
    }
    let clock = match c {
        "monotonic" | "1" => 1,
        "boottime" | "7" => 7,
        _ => return error!(EINVAL),
    };
    Ok((clock, sec, nsec as i64))
}

impl crate::fs::vfs::FileOps for OffsetsFile {
    fn read(&self, _f: &crate::fs::file::OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.data.len() as u64) as usize;
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
    fn write(&self, _f: &crate::fs::file::OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        if off != 0 || buf.len() >= crate::mm::PAGE as usize {
            return error!(EINVAL);
        }
        let mut offsets = Vec::with_capacity(2);
        let mut count = buf.len();
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], Some(pos + i + 1).filter(|&n| n < buf.len())),
                None => (rest, None),
            };
            offsets.push(parse_line(line)?);
            match next {
                Some(n) if offsets.len() == 2 => {
                    count = n;
                    break;
                }
                Some(n) => pos = n,
                None => break,
            }
        }
        let task = self.task.upgrade().ok_or(crate::errno!(ESRCH))?;
        let ns = task.nsproxy().time_for_children.clone();
        if !self.privileged || !Arc::ptr_eq(&ns.user_ns, &self.checked_for) {
            return error!(EPERM);
        }
        // The clock the namespace would show must stay within 0 and
        // KTIME_SEC_MAX / 2 seconds: ERANGE beyond.
        let mut vals = Vec::with_capacity(2);
        for &(clock, sec, nsec) in &offsets {
            if !(-KTIME_SEC_MAX..=KTIME_SEC_MAX).contains(&sec) {
                return error!(ERANGE);
            }
            let now = crate::time::clock_now(clock)?;
            let ts = now.sec as i128 * NSEC as i128
                + now.nsec as i128
                + sec as i128 * NSEC as i128
                + nsec as i128;
            if ts < 0 || ts / NSEC as i128 > (KTIME_SEC_MAX / 2) as i128 {
                return error!(ERANGE);
            }
            vals.push((clock, sec * NSEC + nsec));
        }
        let _g = ns.offsets.write.lock().unwrap_or_else(|p| p.into_inner());
        if ns.offsets.frozen.load(Ordering::Relaxed) {
            return error!(EACCES);
        }
        for (clock, v) in vals {
            let slot = if clock == 1 {
                &ns.offsets.mono
            } else {
                &ns.offsets.boot
            };
            slot.store(v, Ordering::Relaxed);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn lines_as_linux_parses_them() {
        assert_eq!(parse_line(b"monotonic 5 0"), Ok((1, 5, 0)));
        assert_eq!(parse_line(b"7 -3 999999999"), Ok((7, -3, 999_999_999)));
        assert!(parse_line(b"boottime 1 1000000000").is_err());
        assert!(parse_line(b"realtime 1 0").is_err());
        assert!(parse_line(b"2 1 0").is_err());
        assert!(parse_line(b"monotonic 1").is_err());
        assert!(parse_line(b"monotonic 1 -1").is_err());
    }
}
