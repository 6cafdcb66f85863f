//! Time: clocks, sleeps, gettimeofday, time, times.

use std::time::Duration;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

crate::abi_struct! {
    pub struct Timespec { pub sec: i64, pub nsec: i64 }
}

syscall_table! { pub fn time_table;
    CLOCK_GETTIME => sys_clock_gettime(clock: i32, tp: UserAddr),
    CLOCK_GETRES => sys_clock_getres(clock: i32, tp: UserAddr),
    GETTIMEOFDAY => sys_gettimeofday(tv: UserAddr, tz: UserAddr),
    TIME => sys_time(t: UserAddr),
    NANOSLEEP => sys_nanosleep(req: UserAddr, rem: UserAddr),
    CLOCK_NANOSLEEP => sys_clock_nanosleep(clock: i32, flags: i32, req: UserAddr, rem: UserAddr),
}

/// Clocks a guest may read: REALTIME, MONOTONIC, PROCESS/THREAD_CPUTIME
/// (of ruml for now), MONOTONIC_RAW, REALTIME_COARSE, MONOTONIC_COARSE,
/// BOOTTIME; per-process CPU clocks (negative ids) are not supported.
fn check_clock(clock: i32) -> KResult<i32> {
    match clock {
        0 | 1 | 4 | 5 | 6 | 7 => Ok(clock),
        2 | 3 => Ok(1), // CPU-time clocks: accounting comes with the process-model issue
        _ => error!(EINVAL),
    }
}

fn now(clock: i32) -> KResult<Timespec> {
    let (sec, nsec) = ruml_host::clock::gettime(check_clock(clock)?).map_err(|_| crate::errno!(EINVAL))?;
    Ok(Timespec { sec, nsec })
}

fn sys_clock_gettime(ctx: &mut SyscallContext<'_>, clock: i32, tp: UserAddr) -> KResult<u64> {
    let t = now(clock)?;
    ctx.mm().write_val(tp.0, &t)?;
    Ok(0)
}

fn sys_clock_getres(ctx: &mut SyscallContext<'_>, clock: i32, tp: UserAddr) -> KResult<u64> {
    let (sec, nsec) = ruml_host::clock::getres(check_clock(clock)?).map_err(|_| crate::errno!(EINVAL))?;
    if !tp.is_null() {
        ctx.mm().write_val(tp.0, &Timespec { sec, nsec })?;
    }
    Ok(0)
}

fn sys_gettimeofday(ctx: &mut SyscallContext<'_>, tv: UserAddr, tz: UserAddr) -> KResult<u64> {
    if !tv.is_null() {
        let t = now(0)?;
        ctx.mm().write_val(tv.0, &[t.sec, t.nsec / 1000])?;
    }
    if !tz.is_null() {
        ctx.mm().write_val(tz.0, &[0i32, 0i32])?;
    }
    Ok(0)
}

fn sys_time(ctx: &mut SyscallContext<'_>, t: UserAddr) -> KResult<u64> {
    let n = now(0)?;
    if !t.is_null() {
        ctx.mm().write_val(t.0, &n.sec)?;
    }
    Ok(n.sec as u64)
}

fn read_timespec(ctx: &SyscallContext<'_>, a: UserAddr) -> KResult<Duration> {
    let t: Timespec = ctx.mm().read_val(a.0)?;
    if t.sec < 0 || !(0..1_000_000_000).contains(&t.nsec) {
        return error!(EINVAL);
    }
    Ok(Duration::new(t.sec as u64, t.nsec as u32))
}

/// Sleeps until `deadline` on the monotonic clock, waking early for a
/// signal: returns the time left if interrupted.
fn sleep_until(ctx: &SyscallContext<'_>, deadline: std::time::Instant) -> Option<Duration> {
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return None;
        }
        if ctx.task.signal_pending() {
            return Some(deadline - now);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

fn sys_nanosleep(ctx: &mut SyscallContext<'_>, req: UserAddr, rem: UserAddr) -> KResult<u64> {
    let d = read_timespec(ctx, req)?;
    match sleep_until(ctx, std::time::Instant::now() + d) {
        None => Ok(0),
        Some(left) => {
            if !rem.is_null() {
                ctx.mm().write_val(rem.0, &Timespec { sec: left.as_secs() as i64, nsec: left.subsec_nanos() as i64 })?;
            }
            error!(EINTR)
        }
    }
}

fn sys_clock_nanosleep(ctx: &mut SyscallContext<'_>, clock: i32, flags: i32, req: UserAddr, rem: UserAddr) -> KResult<u64> {
    const TIMER_ABSTIME: i32 = 1;
    if flags & !TIMER_ABSTIME != 0 {
        return error!(EINVAL);
    }
    if matches!(clock, 2 | 3) {
        return error!(EOPNOTSUPP);
    }
    check_clock(clock)?;
    let d = read_timespec(ctx, req)?;
    let wait = if flags & TIMER_ABSTIME != 0 {
        let n = now(clock)?;
        let now_d = Duration::new(n.sec.max(0) as u64, n.nsec as u32);
        d.saturating_sub(now_d)
    } else {
        d
    };
    match sleep_until(ctx, std::time::Instant::now() + wait) {
        None => Ok(0),
        Some(left) => {
            if !rem.is_null() && flags & TIMER_ABSTIME == 0 {
                ctx.mm().write_val(rem.0, &Timespec { sec: left.as_secs() as i64, nsec: left.subsec_nanos() as i64 })?;
            }
            error!(EINTR)
        }
    }
}

crate::abi_struct! {
    /// `struct sysinfo` (x86_64: 112 bytes).
    pub struct SysInfo {
        pub uptime: i64, pub loads: [u64; 3], pub totalram: u64, pub freeram: u64, pub sharedram: u64,
        pub bufferram: u64, pub totalswap: u64, pub freeswap: u64, pub procs: u16, pub pad: u16,
        pub pad2: u32, pub totalhigh: u64, pub freehigh: u64, pub mem_unit: u32, pub pad3: u32,
    }
}

syscall_table! { pub fn sysinfo_table;
    SYSINFO => sys_sysinfo(info: UserAddr),
}

/// The instance's uptime: time since boot.
pub fn uptime() -> Duration {
    crate::log::since_boot()
}

fn sys_sysinfo(ctx: &mut SyscallContext<'_>, info: UserAddr) -> KResult<u64> {
    let k = crate::kernel();
    let procs = k.tasks.lock().values().filter(|n| n.zombie.is_none()).count();
    let si = SysInfo {
        uptime: uptime().as_secs() as i64,
        // Load averages need run-queue accounting (the process-model issue).
        loads: [0; 3],
        totalram: k.phys.total_pages() * 4096,
        freeram: k.phys.free_pages() * 4096,
        procs: procs.min(u16::MAX as usize) as u16,
        mem_unit: 1,
        ..Default::default()
    };
    ctx.mm().write_val(info.0, &si)?;
    Ok(0)
}
