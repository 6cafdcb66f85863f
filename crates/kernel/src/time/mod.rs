//! Time: clocks, sleeps, gettimeofday, time; interval timers in `timers`.

pub mod adjust;
pub mod cpuclock;
pub mod ns;
pub mod timers;

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
    RESTART_SYSCALL => sys_restart_syscall(),
}

/// Clocks a guest may read: REALTIME, MONOTONIC, MONOTONIC_RAW,
/// REALTIME_COARSE, MONOTONIC_COARSE, BOOTTIME from the host (all but
/// MONOTONIC_RAW through the vDSO's TSC formula when the CPU allows), the
/// wall clocks adjusted by the instance's own setting ([`adjust`]);
/// TAI (REALTIME plus the TAI offset); PROCESS_CPUTIME_ID and
/// THREAD_CPUTIME_ID from the stubs' accounting; the ALARM clocks read
/// as REALTIME and BOOTTIME, as on a Linux machine with an RTC (arming
/// one needs CAP_WAKE_ALARM: [`check_wake_alarm`]; nothing wakes the host).
fn check_clock(clock: i32) -> KResult<i32> {
    match clock {
        0..=7 | CLOCK_TAI => Ok(clock),
        CLOCK_REALTIME_ALARM => Ok(0),
        CLOCK_BOOTTIME_ALARM => Ok(7),
        _ => error!(EINVAL),
    }
}

const CLOCK_TAI: i32 = 11;
pub const CLOCK_REALTIME_ALARM: i32 = 8;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;

/// Arming a timer or a sleep on an ALARM clock (timer_create,
/// timerfd_create, clock_nanosleep) needs CAP_WAKE_ALARM: EPERM without.
pub fn check_wake_alarm(task: &crate::task::Task, clock: i32) -> KResult<()> {
    if (clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM)
        && !task.privileged(crate::task::caps::Cap::WakeAlarm)
    {
        return error!(EPERM);
    }
    Ok(())
}

fn now_for(ctx: &SyscallContext<'_>, clock: i32) -> KResult<Timespec> {
    if cpuclock::is_cpu_clock(clock) {
        let c = cpuclock::CpuClock::resolve(ctx.task, clock, true)?;
        let d = c.now().ok_or(crate::errno!(EINVAL))?;
        return Ok(Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos() as i64,
        });
    }
    // MONOTONIC and BOOTTIME as the caller's time namespace shows them.
    let t = now(clock)?;
    let (sec, nsec) = ns::from_host(ctx.task, check_clock(clock)?, t.sec, t.nsec);
    Ok(Timespec { sec, nsec })
}

pub(crate) fn now(clock: i32) -> KResult<Timespec> {
    let c = check_clock(clock)?;
    if c == 2 || c == 3 {
        return error!(EINVAL);
    }
    if c == CLOCK_TAI {
        let r = now(0)?;
        return Ok(Timespec {
            sec: r.sec.saturating_add(adjust::tai()),
            nsec: r.nsec,
        });
    }
    // The clocks the vDSO serves come from its formula, so that the vDSO
    // and the system call agree (see crate::vdso).
    if let Some(ns) = crate::vdso::clock_ns(c) {
        return Ok(Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as i64,
        });
    }
    let (sec, nsec) = ruml_host::clock::gettime(c).map_err(|_| crate::errno!(EINVAL))?;
    if c == 0 || c == 5 {
        // No vDSO clock: the host's wall clock plus the instance's setting.
        let mono = ruml_host::clock::gettime(1).map_err(|_| crate::errno!(EINVAL))?;
        let mono = (mono.0.max(0) as u64).saturating_mul(1_000_000_000) + mono.1 as u64;
        let ns = (sec as i128 * 1_000_000_000 + nsec as i128) + adjust::offset_at(mono) as i128;
        return Ok(Timespec {
            sec: ns.div_euclid(1_000_000_000) as i64,
            nsec: ns.rem_euclid(1_000_000_000) as i64,
        });
    }
    Ok(Timespec { sec, nsec })
}

/// A clock's current value for absolute timeouts elsewhere in the kernel.
pub fn clock_now(clock: i32) -> KResult<Timespec> {
    now(clock)
}

/// CLOCK_REALTIME as (seconds, nanoseconds), for the vDSO's fallback.
pub fn now_realtime() -> (i64, u32) {
    now(0).map(|t| (t.sec, t.nsec as u32)).unwrap_or((0, 0))
}

fn sys_clock_gettime(ctx: &mut SyscallContext<'_>, clock: i32, tp: UserAddr) -> KResult<u64> {
    let t = now_for(ctx, clock)?;
    ctx.mm().write_val(tp.0, &t)?;
    Ok(0)
}

fn sys_clock_getres(ctx: &mut SyscallContext<'_>, clock: i32, tp: UserAddr) -> KResult<u64> {
    if cpuclock::is_cpu_clock(clock) {
        let r = cpuclock::CpuClock::resolve(ctx.task, clock, true)?.resolution();
        if !tp.is_null() {
            let t = Timespec {
                sec: r.as_secs() as i64,
                nsec: r.subsec_nanos() as i64,
            };
            ctx.mm().write_val(tp.0, &t)?;
        }
        return Ok(0);
    }
    let (sec, nsec) = match check_clock(clock)? {
        CLOCK_TAI => ruml_host::clock::getres(0).map_err(|_| crate::errno!(EINVAL))?,
        c => ruml_host::clock::getres(c).map_err(|_| crate::errno!(EINVAL))?,
    };
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
        let (west, dst) = adjust::timezone();
        ctx.mm().write_val(tz.0, &[west, dst])?;
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

/// Sleeps until `deadline`, waking early for a signal: returns the time
/// left if interrupted.
fn sleep_until(ctx: &SyscallContext<'_>, deadline: std::time::Instant) -> Option<Duration> {
    match ctx.task.wait_until(Some(deadline), || false) {
        Err(crate::errno::Errno::ETIMEDOUT) | Ok(()) => None,
        Err(_) => Some(deadline.saturating_duration_since(std::time::Instant::now())),
    }
}

fn write_rem(ctx: &SyscallContext<'_>, rem: UserAddr, left: Duration) -> KResult<()> {
    if rem.is_null() {
        return Ok(());
    }
    ctx.mm().write_val(
        rem.0,
        &Timespec {
            sec: left.as_secs() as i64,
            nsec: left.subsec_nanos() as i64,
        },
    )
}

/// An interrupted relative sleep: EINTR (with the time left) if a handler
/// runs, else it resumes through restart_syscall for the time left.
fn interrupted(
    ctx: &SyscallContext<'_>,
    deadline: std::time::Instant,
    rem: UserAddr,
) -> KResult<u64> {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    write_rem(ctx, rem, left)?;
    *ctx.task
        .restart_deadline
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some((deadline, rem.0));
    error!(ERESTART_RESTARTBLOCK)
}

fn sys_nanosleep(ctx: &mut SyscallContext<'_>, req: UserAddr, rem: UserAddr) -> KResult<u64> {
    let d = read_timespec(ctx, req)?;
    let deadline = std::time::Instant::now() + d;
    match sleep_until(ctx, deadline) {
        None => Ok(0),
        Some(_) => interrupted(ctx, deadline, rem),
    }
}

fn sys_restart_syscall(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let Some((deadline, rem)) = ctx
        .task
        .restart_deadline
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return error!(EINTR);
    };
    match sleep_until(ctx, deadline) {
        None => Ok(0),
        Some(_) => interrupted(ctx, deadline, UserAddr(rem)),
    }
}

fn sys_clock_nanosleep(
    ctx: &mut SyscallContext<'_>,
    clock: i32,
    flags: i32,
    req: UserAddr,
    rem: UserAddr,
) -> KResult<u64> {
    const TIMER_ABSTIME: i32 = 1;
    if flags & !TIMER_ABSTIME != 0 {
        return error!(EINVAL);
    }
    if cpuclock::is_cpu_clock(clock) {
        return cpu_nanosleep(ctx, clock, flags & TIMER_ABSTIME != 0, req, rem);
    }
    // MONOTONIC_RAW and the COARSE clocks have no sleep.
    if matches!(check_clock(clock)?, 4..=6) {
        return error!(EOPNOTSUPP);
    }
    let d = read_timespec(ctx, req)?;
    check_wake_alarm(ctx.task, clock)?;
    if flags & TIMER_ABSTIME != 0 {
        let n = now(clock)?;
        let (sec, nsec) = ns::from_host(ctx.task, check_clock(clock)?, n.sec, n.nsec);
        let n = Timespec { sec, nsec };
        let now_d = Duration::new(n.sec.max(0) as u64, n.nsec as u32);
        let deadline = std::time::Instant::now() + d.saturating_sub(now_d);
        // Absolute sleeps simply restart with the same arguments.
        return match sleep_until(ctx, deadline) {
            None => Ok(0),
            Some(_) => error!(ERESTARTNOHAND),
        };
    }
    let deadline = std::time::Instant::now() + d;
    match sleep_until(ctx, deadline) {
        None => Ok(0),
        Some(_) => interrupted(ctx, deadline, rem),
    }
}

/// clock_nanosleep on a CPU-time clock: the caller's own thread clock is
/// EINVAL (it could not advance while the caller sleeps) and
/// CLOCK_THREAD_CPUTIME_ID EOPNOTSUPP, as Linux. An
/// interrupted sleep reports EINTR with the CPU time left when a handler
/// runs, and otherwise restarts with the same arguments.
fn cpu_nanosleep(
    ctx: &SyscallContext<'_>,
    clock: i32,
    absolute: bool,
    req: UserAddr,
    rem: UserAddr,
) -> KResult<u64> {
    if clock == 3 || cpuclock::is_fd_clock(clock) {
        // CLOCK_THREAD_CPUTIME_ID has no sleep (glibc says EINVAL itself).
        return error!(EOPNOTSUPP);
    }
    let d = read_timespec(ctx, req)?;
    let self_thread = clock & 4 != 0 && {
        let pid = !(clock >> 3);
        pid == 0 || ctx.task.pid_lookup(pid) == Some(ctx.task.tid())
    };
    if self_thread {
        return error!(EINVAL);
    }
    let c = cpuclock::CpuClock::resolve(ctx.task, clock, false)?;
    match cpuclock::nanosleep(ctx.task, &c, d, absolute) {
        cpuclock::CpuSleep::Done => Ok(0),
        cpuclock::CpuSleep::Interrupted(left) => {
            if !absolute {
                write_rem(ctx, rem, left)?;
            }
            error!(ERESTARTNOHAND)
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
    let procs = k
        .tasks
        .lock()
        .values()
        .filter(|n| n.zombie.is_none())
        .count();
    // Shifted by the caller's time namespace's BOOTTIME offset.
    let boot_ns = uptime().as_nanos() as i64 + ctx.task.nsproxy().time.offsets.boottime();
    let si = SysInfo {
        // A started second counts whole (Linux rounds up).
        uptime: boot_ns.div_euclid(1_000_000_000)
            + i64::from(boot_ns.rem_euclid(1_000_000_000) != 0),
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
