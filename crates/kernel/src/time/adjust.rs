//! The instance's own wall clock: clock_settime, settimeofday, adjtimex and
//! clock_adjtime change CLOCK_REALTIME (and CLOCK_TAI) *of this instance*
//! — never the host's. The instance's REALTIME is the host's plus an
//! adjustment that is a function of the host's CLOCK_MONOTONIC:
//!
//! `adjust(m) = step + (m - epoch) * freq + slew(m)`
//!
//! - `step`: what clock_settime/settimeofday/ADJ_SETOFFSET set (a jump);
//! - `freq` (adjtimex ADJ_FREQUENCY, ±500 ppm as Linux clamps it): the
//!   wall clock runs that much faster or slower than the host's from
//!   `epoch` on;
//! - `slew` (adjtime(3), ADJ_OFFSET_SINGLESHOT): an offset worked off at
//!   500 µs per second, as Linux does, the rest reported by ADJ_OFFSET_SS_READ.
//!
//! Every change first folds the adjustment reached so far into `step` at
//! a new `epoch`, so the function stays continuous except where a step is
//! asked for. The vDSO's data page takes `adjust` at each
//! re-synchronisation (every millisecond while the guest is busy, and at
//! once after a change), so the vDSO, the system calls and file times
//! agree. The frequency applies to REALTIME only: MONOTONIC and BOOTTIME
//! stay the host's (they time the instance's sleeps and timers).
//!
//! The rest of `struct timex` (status, maxerror, esterror, time constant,
//! tick, TAI offset) is kept as Linux's NTP code keeps it and reported
//! back; no PLL runs, so ADJ_OFFSET outside adjtime mode is stored and
//! reported, like a kernel whose STA_PLL is off.
//!
//! Locking: one mutex over [`Adjust`]; never held while the vDSO's writer
//! lock is taken (the vDSO reads [`offset_at`] under its own lock, so the
//! order is vDSO writer → this).

use std::sync::Mutex;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::Timespec;

syscall_table! { pub fn adjust_table;
    CLOCK_SETTIME => sys_clock_settime(clock: i32, tp: UserAddr),
    SETTIMEOFDAY => sys_settimeofday(tv: UserAddr, tz: UserAddr),
    ADJTIMEX => sys_adjtimex(buf: UserAddr),
    CLOCK_ADJTIME => sys_clock_adjtime(clock: i32, buf: UserAddr),
}

const NSEC: i64 = 1_000_000_000;
/// Linux's MAXFREQ_SCALED: 500 ppm in timex's 16.16 ppm units.
const MAXFREQ_SCALED: i64 = 500 << 16;
/// NTP_PHASE_LIMIT in µs: where maxerror and esterror saturate.
const PHASE_LIMIT: i64 = 16_000_000;
/// adjtime's slew rate: 500 µs per second, i.e. 500 ppm.
const SLEW_PPM: i64 = 500;
/// USER_HZ's tick in µs, and the range ADJ_TICK accepts (±10%).
const TICK_USEC: i64 = 10_000;
const MAXTC: i64 = 10;
const MAX_TAI: i64 = 100_000;

const STA_PLL: i32 = 0x0001;
const STA_UNSYNC: i32 = 0x0040;
const STA_NANO: i32 = 0x2000;
const STA_CLOCKERR: i32 = 0x1000;
/// Status bits only the kernel sets (PPS state, NANO, MODE, CLK).
const STA_RONLY: i32 = 0x0100 | 0x0200 | 0x0400 | 0x0800 | 0x1000 | 0x2000 | 0x4000 | 0x8000;
const TIME_OK: u64 = 0;
const TIME_ERROR: u64 = 5;

const ADJ_OFFSET: u32 = 0x0001;
const ADJ_FREQUENCY: u32 = 0x0002;
const ADJ_MAXERROR: u32 = 0x0004;
const ADJ_ESTERROR: u32 = 0x0008;
const ADJ_STATUS: u32 = 0x0010;
const ADJ_TIMECONST: u32 = 0x0020;
const ADJ_TAI: u32 = 0x0080;
const ADJ_SETOFFSET: u32 = 0x0100;
const ADJ_MICRO: u32 = 0x1000;
const ADJ_NANO: u32 = 0x2000;
const ADJ_TICK: u32 = 0x4000;
const ADJ_ADJTIME: u32 = 0x8000;
const ADJ_OFFSET_READONLY: u32 = 0x2000;

/// The instance's clock state. See the module documentation.
struct Adjust {
    /// ns added to the host's REALTIME at `epoch`.
    step: i64,
    /// Host CLOCK_MONOTONIC (ns) where `step` holds.
    epoch: u64,
    /// timex units: ppm << 16.
    freq: i64,
    /// adjtime: ns still to slew at `epoch` (signed).
    slew: i64,
    status: i32,
    /// µs; they grow by 500 µs per second since `err_at` (as Linux's
    /// second_overflow does) up to the phase limit.
    maxerror: i64,
    esterror: i64,
    err_at: u64,
    constant: i64,
    /// ADJ_OFFSET outside adjtime mode (ns): kept and reported.
    offset: i64,
    tick: i64,
    tai: i64,
    /// settimeofday's struct timezone (minutes west, DST type).
    tz: (i32, i32),
}

static ADJUST: Mutex<Adjust> = Mutex::new(Adjust {
    step: 0,
    epoch: 0,
    freq: 0,
    slew: 0,
    status: STA_UNSYNC,
    maxerror: PHASE_LIMIT,
    esterror: PHASE_LIMIT,
    err_at: 0,
    constant: 2,
    offset: 0,
    tick: TICK_USEC,
    tai: 0,
    tz: (0, 0),
});

fn lock() -> std::sync::MutexGuard<'static, Adjust> {
    ADJUST.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host's CLOCK_MONOTONIC in ns (0 if it cannot be read).
fn host_mono() -> u64 {
    ruml_host::clock::gettime(1)
        .ok()
        .and_then(|(s, n)| {
            u64::try_from(s)
                .ok()?
                .checked_mul(NSEC as u64)?
                .checked_add(n as u64)
        })
        .unwrap_or(0)
}

impl Adjust {
    /// The slew worked off `dt` ns after the epoch.
    fn slewed(&self, dt: u64) -> i64 {
        let max = (dt as i128 * SLEW_PPM as i128 / 1_000_000) as i64;
        self.slew.signum() * self.slew.abs().min(max)
    }

    fn at(&self, mono: u64) -> i64 {
        let dt = mono.saturating_sub(self.epoch);
        let drift = (dt as i128 * self.freq as i128 / (1_000_000i128 << 16)) as i64;
        self.step
            .saturating_add(drift)
            .saturating_add(self.slewed(dt))
    }

    /// Folds what has accrued into `step` at a new epoch `mono`.
    fn rebase(&mut self, mono: u64) {
        let dt = mono.saturating_sub(self.epoch);
        let done = self.slewed(dt);
        self.step = self.at(mono);
        self.slew -= done;
        self.epoch = mono;
    }

    fn errors(&self, mono: u64) -> (i64, i64) {
        let secs = (mono.saturating_sub(self.err_at) / NSEC as u64) as i64;
        let grow = |e: i64| e.saturating_add(secs.saturating_mul(500)).min(PHASE_LIMIT);
        (grow(self.maxerror), self.esterror)
    }

    /// What setting the clock does to the NTP state (Linux's ntp_clear):
    /// unsynchronised, errors at the limit, no slew pending.
    fn clear_ntp(&mut self, mono: u64) {
        self.status |= STA_UNSYNC;
        self.maxerror = PHASE_LIMIT;
        self.esterror = PHASE_LIMIT;
        self.err_at = mono;
        self.slew = 0;
        self.offset = 0;
    }
}

/// ns to add to the host's CLOCK_REALTIME when its CLOCK_MONOTONIC reads
/// `mono` ns: the instance's wall clock.
pub fn offset_at(mono: u64) -> i64 {
    lock().at(mono)
}

/// The TAI offset in seconds (CLOCK_TAI = REALTIME + this).
pub fn tai() -> i64 {
    lock().tai
}

/// settimeofday's timezone, for gettimeofday.
pub fn timezone() -> (i32, i32) {
    lock().tz
}

/// Sets the instance's REALTIME to `to` (ns since the epoch).
fn set_realtime(to: i64) -> KResult<()> {
    let mono = host_mono();
    let host_real = ruml_host::clock::gettime(0).map_err(|_| crate::errno!(EINVAL))?;
    let host_real = host_real.0 as i128 * NSEC as i128 + host_real.1 as i128;
    {
        let mut a = lock();
        a.rebase(mono);
        a.step = i64::try_from(to as i128 - host_real).map_err(|_| crate::errno!(EINVAL))?;
        a.clear_ntp(mono);
    }
    crate::vdso::resync();
    Ok(())
}

fn may_set_time(ctx: &SyscallContext<'_>) -> KResult<()> {
    if ctx.task.privileged(crate::task::caps::Cap::SysTime) {
        Ok(())
    } else {
        error!(EPERM)
    }
}

fn sys_clock_settime(ctx: &mut SyscallContext<'_>, clock: i32, tp: UserAddr) -> KResult<u64> {
    // Only CLOCK_REALTIME can be set; the CPU-time clocks of other ids
    // (clock_getcpuclockid) are EPERM once the time is read, every other
    // id EINVAL before it is.
    if clock < 0 && super::cpuclock::is_cpu_clock(clock) {
        let _: Timespec = ctx.mm().read_val(tp.0)?;
        super::cpuclock::CpuClock::resolve(ctx.task, clock, false)?;
        return error!(EPERM);
    }
    if clock != 0 {
        return error!(EINVAL);
    }
    let t: Timespec = ctx.mm().read_val(tp.0)?;
    if t.sec < 0 || !(0..NSEC).contains(&t.nsec) {
        return error!(EINVAL);
    }
    may_set_time(ctx)?;
    // Linux refuses times so late that the clock would overflow soon.
    let to = t.sec.checked_mul(NSEC).ok_or(crate::errno!(EINVAL))? + t.nsec;
    set_realtime(to).map(|_| 0)
}

fn sys_settimeofday(ctx: &mut SyscallContext<'_>, tv: UserAddr, tz: UserAddr) -> KResult<u64> {
    let tv: Option<[i64; 2]> = if tv.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(tv.0)?)
    };
    let tz: Option<[i32; 2]> = if tz.is_null() {
        None
    } else {
        Some(ctx.mm().read_val(tz.0)?)
    };
    if let Some([sec, usec]) = tv {
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return error!(EINVAL);
        }
    }
    may_set_time(ctx)?;
    if let Some([west, dst]) = tz {
        if !(-15 * 60..=15 * 60).contains(&west) {
            return error!(EINVAL);
        }
        lock().tz = (west, dst);
    }
    if let Some([sec, usec]) = tv {
        let to = sec.checked_mul(NSEC).ok_or(crate::errno!(EINVAL))? + usec * 1000;
        set_realtime(to)?;
    }
    Ok(0)
}

/// `struct timex` (x86_64, 208 bytes), by field offset.
struct Timex([u8; 208]);

impl Timex {
    fn i64_at(&self, off: usize) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[off..off + 8]);
        i64::from_ne_bytes(b)
    }
    fn i32_at(&self, off: usize) -> i32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        i32::from_ne_bytes(b)
    }
    fn set_i64(&mut self, off: usize, v: i64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_i32(&mut self, off: usize, v: i32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
}

const TX_MODES: usize = 0;
const TX_OFFSET: usize = 8;
const TX_FREQ: usize = 16;
const TX_MAXERROR: usize = 24;
const TX_ESTERROR: usize = 32;
const TX_STATUS: usize = 40;
const TX_CONSTANT: usize = 48;
const TX_PRECISION: usize = 56;
const TX_TOLERANCE: usize = 64;
const TX_TIME: usize = 72;
const TX_TICK: usize = 88;
const TX_TAI: usize = 160;

fn sys_adjtimex(ctx: &mut SyscallContext<'_>, buf: UserAddr) -> KResult<u64> {
    adjtime(ctx, buf)
}

fn sys_clock_adjtime(ctx: &mut SyscallContext<'_>, clock: i32, buf: UserAddr) -> KResult<u64> {
    match clock {
        0 => adjtime(ctx, buf),
        // Linux: clocks without an adjtime method.
        1..=11 => {
            ctx.mm().read_val::<[u8; 208]>(buf.0)?;
            error!(EOPNOTSUPP)
        }
        _ => error!(EINVAL),
    }
}

/// adjtimex(2) on the instance's clock (Linux's do_adjtimex).
fn adjtime(ctx: &mut SyscallContext<'_>, buf: UserAddr) -> KResult<u64> {
    let mut tx = Timex(ctx.mm().read_val::<[u8; 208]>(buf.0)?);
    let modes = tx.i32_at(TX_MODES) as u32;
    // Validation first, as timekeeping_validate_timex.
    if modes & ADJ_ADJTIME != 0 {
        if modes & ADJ_OFFSET == 0 || modes & !(ADJ_ADJTIME | ADJ_OFFSET | ADJ_OFFSET_READONLY) != 0
        {
            return error!(EINVAL);
        }
        if modes & ADJ_OFFSET_READONLY == 0 {
            may_set_time(ctx)?;
        }
    } else {
        if modes != 0 {
            may_set_time(ctx)?;
        }
        if modes & ADJ_TICK != 0 {
            let t = tx.i64_at(TX_TICK);
            if !(TICK_USEC * 9 / 10..=TICK_USEC * 11 / 10).contains(&t) {
                return error!(EINVAL);
            }
        }
    }
    let nano_in = |a: &Adjust| {
        if modes & ADJ_NANO != 0 {
            true
        } else if modes & ADJ_MICRO != 0 {
            false
        } else {
            a.status & STA_NANO != 0
        }
    };
    let set_off = if modes & ADJ_SETOFFSET != 0 {
        let (sec, frac) = (tx.i64_at(TX_TIME), tx.i64_at(TX_TIME + 8));
        let nano = modes & ADJ_NANO != 0;
        let lim = if nano { NSEC } else { 1_000_000 };
        if !(0..lim).contains(&frac) {
            return error!(EINVAL);
        }
        let ns = sec
            .checked_mul(NSEC)
            .and_then(|s| s.checked_add(if nano { frac } else { frac * 1000 }))
            .ok_or(crate::errno!(EINVAL))?;
        Some(ns)
    } else {
        None
    };
    if modes & ADJ_FREQUENCY != 0 {
        let f = tx.i64_at(TX_FREQ);
        if f.checked_mul(1000).is_none() {
            return error!(EINVAL);
        }
    }
    let mono = host_mono();
    let (result, old_slew) = {
        let mut a = lock();
        a.rebase(mono);
        let old_slew = a.slew;
        if let Some(ns) = set_off {
            a.step = a.step.saturating_add(ns);
            a.clear_ntp(mono);
        }
        if modes & ADJ_ADJTIME != 0 {
            if modes & ADJ_OFFSET_READONLY == 0 {
                // adjtime(3): µs to slew, within ±0.5 s as Linux clamps.
                let us = tx.i64_at(TX_OFFSET).clamp(-512_000, 512_000);
                a.slew = us * 1000;
            }
        } else {
            if modes & ADJ_STATUS != 0 {
                let s = tx.i32_at(TX_STATUS);
                a.status = (a.status & STA_RONLY) | (s & !STA_RONLY);
            }
            if modes & ADJ_NANO != 0 {
                a.status |= STA_NANO;
            }
            if modes & ADJ_MICRO != 0 {
                a.status &= !STA_NANO;
            }
            if modes & ADJ_FREQUENCY != 0 {
                a.freq = tx.i64_at(TX_FREQ).clamp(-MAXFREQ_SCALED, MAXFREQ_SCALED);
            }
            if modes & ADJ_MAXERROR != 0 {
                a.maxerror = tx.i64_at(TX_MAXERROR).clamp(0, PHASE_LIMIT);
                a.err_at = mono;
            }
            if modes & ADJ_ESTERROR != 0 {
                a.esterror = tx.i64_at(TX_ESTERROR).clamp(0, PHASE_LIMIT);
            }
            if modes & ADJ_TIMECONST != 0 {
                a.constant = tx.i64_at(TX_CONSTANT).clamp(0, MAXTC);
            }
            if modes & ADJ_TAI != 0 {
                let t = tx.i64_at(TX_CONSTANT);
                if (0..=MAX_TAI).contains(&t) {
                    a.tai = t;
                }
            }
            if modes & ADJ_OFFSET != 0 && a.status & STA_PLL != 0 {
                let o = tx.i64_at(TX_OFFSET);
                a.offset = if nano_in(&a) {
                    o
                } else {
                    o.saturating_mul(1000)
                };
            }
            if modes & ADJ_TICK != 0 {
                a.tick = tx.i64_at(TX_TICK);
            }
        }
        // Report the state back.
        let nano = a.status & STA_NANO != 0;
        let offset = if modes & ADJ_ADJTIME != 0 {
            old_slew / 1000
        } else if nano {
            a.offset
        } else {
            a.offset / 1000
        };
        let (maxerror, esterror) = a.errors(mono);
        tx.set_i64(TX_OFFSET, offset);
        tx.set_i64(TX_FREQ, a.freq);
        tx.set_i64(TX_MAXERROR, maxerror);
        tx.set_i64(TX_ESTERROR, esterror);
        tx.set_i32(TX_STATUS, a.status);
        tx.set_i64(TX_CONSTANT, a.constant);
        tx.set_i64(TX_PRECISION, 1);
        tx.set_i64(TX_TOLERANCE, MAXFREQ_SCALED);
        tx.set_i64(TX_TICK, a.tick);
        tx.set_i32(TX_TAI, a.tai as i32);
        let r = if a.status & (STA_UNSYNC | STA_CLOCKERR) != 0 {
            TIME_ERROR
        } else {
            TIME_OK
        };
        (r, old_slew)
    };
    let _ = old_slew;
    crate::vdso::resync();
    let now = super::now(0)?;
    let nano = lock().status & STA_NANO != 0;
    tx.set_i64(TX_TIME, now.sec);
    tx.set_i64(TX_TIME + 8, if nano { now.nsec } else { now.nsec / 1000 });
    ctx.mm().write_val(buf.0, &tx.0)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Adjust {
        Adjust {
            step: 0,
            epoch: 0,
            freq: 0,
            slew: 0,
            status: STA_UNSYNC,
            maxerror: PHASE_LIMIT,
            esterror: PHASE_LIMIT,
            err_at: 0,
            constant: 2,
            offset: 0,
            tick: TICK_USEC,
            tai: 0,
            tz: (0, 0),
        }
    }

    #[test]
    fn frequency_and_slew_accrue_and_rebase_is_continuous() {
        let mut a = fresh();
        a.freq = 100 << 16; // +100 ppm
        assert_eq!(a.at(NSEC as u64), 100_000); // 100 µs after 1 s
        a.slew = -300_000; // adjtime(-300 µs)
                           // 500 ppm: 300 µs are worked off after 0.6 s, then no more.
        assert_eq!(a.at(NSEC as u64) - 100_000, -300_000);
        let before = a.at(400_000_000);
        a.rebase(400_000_000);
        assert_eq!(a.at(400_000_000), before);
        assert_eq!(a.slew, -300_000 + 200_000);
    }
}
