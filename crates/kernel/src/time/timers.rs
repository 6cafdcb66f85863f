//! Interval timers: alarm, setitimer/getitimer (ITIMER_REAL), and POSIX
//! timers (timer_create and friends with SIGEV_SIGNAL, SIGEV_THREAD_ID,
//! SIGEV_NONE), also on the CPU-time clocks (time::cpuclock). One host
//! thread sleeps until the earliest deadline of all timers of the
//! instance, so idle timers cost nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::errno::KResult;
use crate::error;
use crate::signal::{self, Queued};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::ThreadGroup;

const SIGALRM: i32 = 14;
const SI_TIMER: i32 = -2;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
const TIMER_ABSTIME: i32 = 1;

/// One timer of a process.
pub struct Timer {
    id: i32,
    group: Weak<ThreadGroup>,
    /// SIGEV_THREAD_ID: the thread to signal.
    thread: Option<i32>,
    signo: i32,
    notify: i32,
    sigval: u64,
    /// ITIMER_REAL reports as the kernel (SI_KERNEL), POSIX timers as SI_TIMER.
    code: i32,
    /// The clock absolute times are read on.
    clock: i32,
    /// A timer on a CPU-time clock (time::cpuclock): its deadline is
    /// `TimerState::cpu_deadline`, looked at every cpuclock::TICK.
    cpu: Option<super::cpuclock::CpuClock>,
    state: Mutex<TimerState>,
}

#[derive(Default)]
struct TimerState {
    deadline: Option<Instant>,
    /// For a CPU-time timer: the clock value at which it fires.
    cpu_deadline: Option<Duration>,
    interval: Duration,
    overrun: i32,
    last_overrun: i32,
    /// Bumped at every (re)arm: stale heap entries are skipped.
    generation: u64,
}

/// A process's timers.
#[derive(Default)]
pub struct ProcessTimers {
    next_id: i32,
    posix: HashMap<i32, Arc<Timer>>,
    real: Option<Arc<Timer>>,
    /// ITIMER_VIRTUAL and ITIMER_PROF.
    cpu: [Option<Arc<CpuTimer>>; 2],
}

/// ITIMER_VIRTUAL (user CPU time) or ITIMER_PROF (user + system): the
/// guest's CPU time is the host's accounting of its stub, so the timer
/// thread looks at it every 10 ms while the timer is armed (and not at
/// all otherwise).
pub struct CpuTimer {
    group: Weak<ThreadGroup>,
    prof: bool,
    state: Mutex<CpuTimerState>,
}

#[derive(Default)]
struct CpuTimerState {
    /// CPU time at which it fires.
    deadline: Option<Duration>,
    interval: Duration,
    generation: u64,
}

const CPU_TIMER_TICK: Duration = Duration::from_millis(10);

impl CpuTimer {
    fn used(&self) -> Duration {
        let Some(g) = self.group.upgrade() else {
            return Duration::ZERO;
        };
        let t = crate::task::usage::group_times(&g);
        if self.prof {
            t.user + t.sys
        } else {
            t.user
        }
    }

    fn get(&self) -> (Duration, Duration) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let left = s
            .deadline
            .map(|d| d.saturating_sub(self.used()).max(Duration::from_micros(1)))
            .unwrap_or_default();
        (left, s.interval)
    }

    fn set(self: &Arc<Self>, value: Duration, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        let generation = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.generation += 1;
            s.deadline = (!value.is_zero()).then(|| self.used() + value);
            s.interval = interval;
            s.generation
        };
        if !value.is_zero() {
            schedule(self, Instant::now() + CPU_TIMER_TICK, generation);
        }
        old
    }
}

impl Expiry for CpuTimer {
    fn fire(self: Arc<Self>, generation: u64) {
        let used = self.used();
        let send = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if s.generation != generation {
                return;
            }
            let Some(d) = s.deadline else { return };
            if used >= d {
                s.deadline = (!s.interval.is_zero()).then(|| d + s.interval);
                true
            } else {
                false
            }
        };
        let Some(g) = self.group.upgrade() else {
            return;
        };
        if send {
            let signo = if self.prof { 27 } else { 26 };
            signal::send_group(
                &g,
                Queued {
                    signo,
                    code: signal::SI_KERNEL,
                    a: 0,
                    b: 0,
                    forced: false,
                },
            );
        }
        if self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .deadline
            .is_some()
            && !g.threads().is_empty()
        {
            schedule(&self, Instant::now() + CPU_TIMER_TICK, generation);
        }
    }
}

fn cpu_timer(group: &Arc<ThreadGroup>, which: i32) -> Arc<CpuTimer> {
    let mut t = group.timers.lock().unwrap_or_else(|p| p.into_inner());
    let i = (which - 1) as usize;
    t.cpu[i]
        .get_or_insert_with(|| {
            Arc::new(CpuTimer {
                group: Arc::downgrade(group),
                prof: which == 2,
                state: Mutex::new(CpuTimerState::default()),
            })
        })
        .clone()
}

type Entry = Reverse<(Instant, u64, usize)>;

/// Something the timer thread calls at a deadline (a timer, a timerfd).
pub trait Expiry: Send + Sync {
    /// Called at the deadline it was scheduled for, with that schedule's
    /// generation (stale ones are the expiry's to ignore).
    fn fire(self: Arc<Self>, generation: u64);
}

/// Deadlines in order, and what they belong to.
type Schedule = (BinaryHeap<Entry>, HashMap<usize, Weak<dyn Expiry>>);

struct Wheel {
    heap: Mutex<Schedule>,
    cv: Condvar,
}

fn wheel() -> &'static Wheel {
    static W: OnceLock<&'static Wheel> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Wheel = Box::leak(Box::new(Wheel {
            heap: Mutex::new((BinaryHeap::new(), HashMap::new())),
            cv: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || run_wheel(w));
        if let Err(e) = spawned {
            crate::log::warn(&format!("cannot start the timer thread: {e}"));
        }
        w
    })
}

fn run_wheel(w: &'static Wheel) {
    let mut g = w.heap.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, generation, key))) = g.0.peek().copied() {
            if at > now {
                break;
            }
            g.0.pop();
            if let Some(t) = g.1.get(&key).and_then(|w| w.upgrade()) {
                due.push((t, generation));
            }
        }
        if !due.is_empty() {
            drop(g);
            for (t, generation) in due {
                t.fire(generation);
            }
            g = w.heap.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        g = match g.0.peek().copied() {
            Some(Reverse((at, _, _))) => {
                w.cv.wait_timeout(g, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => w.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// Asks the timer thread to call `t.fire(generation)` at `at`.
pub fn schedule<E: Expiry + 'static>(t: &Arc<E>, at: Instant, generation: u64) {
    let w = wheel();
    let mut g = w.heap.lock().unwrap_or_else(|p| p.into_inner());
    let key = Arc::as_ptr(t) as *const () as usize;
    g.1.retain(|_, w| w.strong_count() > 0);
    let weak: Weak<dyn Expiry> = Arc::downgrade(t) as Weak<dyn Expiry>;
    g.1.insert(key, weak);
    g.0.push(Reverse((at, generation, key)));
    w.cv.notify_all();
}

impl Expiry for Timer {
    fn fire(self: Arc<Self>, generation: u64) {
        fire(&self, generation);
    }
}

fn fire(t: &Arc<Timer>, generation: u64) {
    if t.cpu.is_some() {
        return fire_cpu(t, generation);
    }
    let send = {
        let mut s = t.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.generation != generation {
            return;
        }
        // Not due: an entry whose deadline a dequeue moved on (see
        // on_dequeue), or a second entry for the same one.
        match s.deadline {
            Some(d) if d <= Instant::now() => {}
            _ => return,
        }
        if s.interval.is_zero() {
            s.deadline = None;
        } else {
            let next = s.deadline.unwrap_or_else(Instant::now) + s.interval;
            s.deadline = Some(next);
            schedule(t, next, generation);
        }
        expire(t, &mut s)
    };
    if send {
        send_expiry(t);
    }
}

/// A CPU-time timer's tick: fires if its clock has passed the deadline
/// (counting the whole intervals passed beyond it as overruns), and looks
/// again a tick later while armed. A clock whose process is gone stops.
fn fire_cpu(t: &Arc<Timer>, generation: u64) {
    let Some(clock) = &t.cpu else { return };
    let used = clock.now();
    let (send, again) = {
        let mut s = t.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.generation != generation {
            return;
        }
        let (Some(d), Some(used)) = (s.cpu_deadline, used) else {
            return;
        };
        let mut send = false;
        if used >= d {
            if s.interval.is_zero() {
                s.cpu_deadline = None;
            } else {
                advance_cpu_deadline(&mut s, d, used);
            }
            send = expire(t, &mut s);
        }
        (send, s.cpu_deadline.is_some())
    };
    if send {
        send_expiry(t);
    }
    if again && t.group.strong_count() > 0 {
        schedule(t, Instant::now() + super::cpuclock::TICK, generation);
    }
}

/// Moves a periodic CPU-time timer's deadline `d` (passed at `used`) to the
/// first period boundary after `used`, counting the whole periods skipped
/// as overruns.
fn advance_cpu_deadline(s: &mut TimerState, d: Duration, used: Duration) {
    let iv = s.interval.as_nanos().max(1);
    let missed = (used - d).as_nanos() / iv;
    let next = d.as_nanos() + (missed + 1) * iv;
    s.cpu_deadline = Some(Duration::from_nanos(next.min(u64::MAX as u128) as u64));
    s.overrun = s
        .overrun
        .saturating_add(missed.min(i32::MAX as u128) as i32);
}

/// An expiry: whether to send the timer's signal now, or (its last one
/// still queued) count an overrun instead, reported when the signal is
/// taken (see on_dequeue).
fn expire(t: &Timer, s: &mut TimerState) -> bool {
    let Some(g) = t.group.upgrade() else {
        return false;
    };
    let pending = g
        .sig()
        .shared
        .iter()
        .any(|q| q.code == t.code && q.signo == t.signo && (q.a as i32) == t.id)
        || g.threads().iter().any(|th| {
            th.signals
                .lock()
                .pending
                .iter()
                .any(|q| q.code == t.code && q.signo == t.signo && (q.a as i32) == t.id)
        });
    if pending {
        s.overrun = s.overrun.saturating_add(1);
        false
    } else {
        t.notify != SIGEV_NONE
    }
}

fn send_expiry(t: &Arc<Timer>) {
    let Some(g) = t.group.upgrade() else { return };
    let q = Queued {
        signo: t.signo,
        code: t.code,
        // The overrun count is filled in when the signal is taken.
        a: if t.code == SI_TIMER {
            t.id as u32 as u64
        } else {
            0
        },
        b: t.sigval,
        forced: false,
    };
    match t
        .thread
        .and_then(|tid| crate::kernel().tasks.thread(tid))
        .filter(|th| Arc::ptr_eq(&th.group, &g))
    {
        Some(th) => signal::send_thread(&th, q),
        None => signal::send_group(&g, q),
    }
}

impl Timer {
    /// Arms (value > 0) or disarms the timer; returns the old (remaining,
    /// interval).
    fn set(self: &Arc<Timer>, value: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let old = (
            s.deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or_default(),
            s.interval,
        );
        s.generation += 1;
        s.deadline = value;
        s.interval = interval;
        s.overrun = 0;
        if let Some(at) = value {
            schedule(self, at, s.generation);
        }
        old
    }

    /// Arms a CPU-time timer to fire when its clock reads `value` (None:
    /// disarm); returns the old (remaining, interval).
    fn set_cpu(
        self: &Arc<Timer>,
        value: Option<Duration>,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.generation += 1;
        s.cpu_deadline = value;
        s.interval = interval;
        s.overrun = 0;
        if value.is_some() {
            // The first look is at once: a deadline already passed fires now.
            schedule(self, Instant::now(), s.generation);
        }
        old
    }

    fn get(&self) -> (Duration, Duration) {
        if let Some(clock) = &self.cpu {
            let (d, interval) = {
                let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                (s.cpu_deadline, s.interval)
            };
            let left = match (d, clock.now()) {
                (Some(d), Some(now)) => d.saturating_sub(now).max(Duration::from_nanos(1)),
                (Some(_), None) => Duration::from_nanos(1),
                _ => Duration::ZERO,
            };
            return (left, interval);
        }
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (
            s.deadline
                .map(|d| {
                    d.saturating_duration_since(Instant::now())
                        .max(Duration::from_nanos(1))
                })
                .unwrap_or_default(),
            s.interval,
        )
    }
}

/// A timer signal is being taken: it carries the expiries missed while
/// it was queued (si_overrun), which timer_getoverrun then reports.
pub fn on_dequeue(group: &ThreadGroup, mut q: Queued) -> Queued {
    if q.code != SI_TIMER {
        return q;
    }
    let id = q.a as u32 as i32;
    let timer = group
        .timers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .posix
        .get(&id)
        .cloned();
    if let Some(t) = timer {
        // A periodic CPU-time timer is re-armed from the clock's value now,
        // as Linux's posix_cpu_timer_rearm at dequeue: the deadline the
        // last tick computed may already be behind the clock (the tick
        // runs every TICK of wall time), and the next signal must not
        // follow this one at once.
        let used = t.cpu.as_ref().and_then(|c| c.now());
        let mut s = t.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(d), Some(used)) = (s.cpu_deadline, used) {
            if used >= d && !s.interval.is_zero() {
                s.overrun = s.overrun.saturating_add(1);
                advance_cpu_deadline(&mut s, d, used);
            }
        }
        // A periodic clock timer is forwarded past now, as Linux's
        // hrtimer_forward at dequeue: the periods the timer thread has not
        // got to yet (a loaded host runs it late) count as overruns now,
        // not after the signal was taken.
        let now = Instant::now();
        if let (Some(d), false) = (s.deadline, s.interval.is_zero()) {
            if d <= now {
                let iv = s.interval.as_nanos().max(1);
                let missed = (now - d).as_nanos() / iv + 1;
                let next = u32::try_from(missed)
                    .ok()
                    .and_then(|m| s.interval.checked_mul(m))
                    .and_then(|step| d.checked_add(step));
                if let Some(next) = next {
                    s.deadline = Some(next);
                    s.overrun = s
                        .overrun
                        .saturating_add(missed.min(i32::MAX as u128) as i32);
                    schedule(&t, next, s.generation);
                }
            }
        }
        let o = s.overrun;
        s.last_overrun = o;
        s.overrun = 0;
        q.a = (id as u32 as u64) | ((o as u32 as u64) << 32);
    }
    q
}

fn real_timer(group: &Arc<ThreadGroup>) -> Arc<Timer> {
    let mut t = group.timers.lock().unwrap_or_else(|p| p.into_inner());
    t.real
        .get_or_insert_with(|| {
            Arc::new(Timer {
                id: 0,
                group: Arc::downgrade(group),
                thread: None,
                signo: SIGALRM,
                notify: SIGEV_SIGNAL,
                sigval: 0,
                code: signal::SI_KERNEL,
                clock: 1,
                cpu: None,
                state: Mutex::new(TimerState::default()),
            })
        })
        .clone()
}

/// fork: timers are not inherited; exec keeps them (Linux keeps
/// ITIMER_REAL and deletes POSIX timers).
pub fn exec_reset(group: &ThreadGroup) {
    let mut t = group.timers.lock().unwrap_or_else(|p| p.into_inner());
    for timer in t.posix.values() {
        timer
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation += 1;
    }
    t.posix.clear();
}

syscall_table! { pub fn timers_table;
    ALARM => sys_alarm(secs: u32),
    SETITIMER => sys_setitimer(which: i32, new: UserAddr, old: UserAddr),
    GETITIMER => sys_getitimer(which: i32, cur: UserAddr),
    TIMER_CREATE => sys_timer_create(clock: i32, sev: UserAddr, id: UserAddr),
    TIMER_SETTIME => sys_timer_settime(id: i32, flags: i32, new: UserAddr, old: UserAddr),
    TIMER_GETTIME => sys_timer_gettime(id: i32, cur: UserAddr),
    TIMER_GETOVERRUN => sys_timer_getoverrun(id: i32),
    TIMER_DELETE => sys_timer_delete(id: i32),
}

fn sys_alarm(ctx: &mut SyscallContext<'_>, secs: u32) -> KResult<u64> {
    let t = real_timer(&ctx.task.group);
    let value = (secs > 0).then(|| Instant::now() + Duration::from_secs(secs as u64));
    let (left, _) = t.set(value, Duration::ZERO);
    // Rounded, and never 0 for a pending alarm.
    let s = left.as_secs() + u64::from(left.subsec_micros() >= 500_000);
    Ok(if left.is_zero() { 0 } else { s.max(1) })
}

fn read_timeval_pair(ctx: &SyscallContext<'_>, a: UserAddr) -> KResult<(Duration, Duration)> {
    let v: [i64; 4] = ctx.mm().read_val(a.0)?;
    let d = |s: i64, us: i64| -> KResult<Duration> {
        if s < 0 || !(0..1_000_000).contains(&us) {
            return error!(EINVAL);
        }
        Ok(Duration::new(s as u64, us as u32 * 1000))
    };
    Ok((d(v[0], v[1])?, d(v[2], v[3])?))
}

fn timeval_pair(interval: Duration, value: Duration) -> [i64; 4] {
    let tv = |d: Duration| {
        // A value still running never reads as zero.
        let us = d.subsec_nanos().div_ceil(1000) as i64;
        if us == 1_000_000 {
            [d.as_secs() as i64 + 1, 0]
        } else {
            [d.as_secs() as i64, us]
        }
    };
    let i = tv(interval);
    let v = tv(value);
    [i[0], i[1], v[0], v[1]]
}

fn sys_setitimer(
    ctx: &mut SyscallContext<'_>,
    which: i32,
    new: UserAddr,
    old: UserAddr,
) -> KResult<u64> {
    if which == 1 || which == 2 {
        let t = cpu_timer(&ctx.task.group, which);
        let prev = if new.is_null() {
            t.get()
        } else {
            let (interval, value) = read_timeval_pair(ctx, new)?;
            t.set(value, interval)
        };
        if !old.is_null() {
            ctx.mm().write_val(old.0, &timeval_pair(prev.1, prev.0))?;
        }
        return Ok(0);
    }
    if which != 0 {
        return error!(EINVAL);
    }
    let t = real_timer(&ctx.task.group);
    let prev = if new.is_null() {
        t.get()
    } else {
        let (interval, value) = read_timeval_pair(ctx, new)?;
        t.set((!value.is_zero()).then(|| Instant::now() + value), interval)
    };
    if !old.is_null() {
        ctx.mm().write_val(old.0, &timeval_pair(prev.1, prev.0))?;
    }
    Ok(0)
}

fn sys_getitimer(ctx: &mut SyscallContext<'_>, which: i32, cur: UserAddr) -> KResult<u64> {
    if which == 1 || which == 2 {
        let (left, interval) = cpu_timer(&ctx.task.group, which).get();
        ctx.mm().write_val(cur.0, &timeval_pair(interval, left))?;
        return Ok(0);
    }
    if which != 0 {
        return error!(EINVAL);
    }
    let (left, interval) = real_timer(&ctx.task.group).get();
    ctx.mm().write_val(cur.0, &timeval_pair(interval, left))?;
    Ok(0)
}

fn sys_timer_create(
    ctx: &mut SyscallContext<'_>,
    clock: i32,
    sev: UserAddr,
    id: UserAddr,
) -> KResult<u64> {
    let cpu = if super::cpuclock::is_fd_clock(clock) {
        return error!(EOPNOTSUPP);
    } else if super::cpuclock::is_cpu_clock(clock) {
        Some(super::cpuclock::CpuClock::resolve(ctx.task, clock, false)?)
    } else {
        match clock {
            0 | 1 | 7 => None,
            8 | 9 => {
                super::check_wake_alarm(ctx.task, clock)?;
                None
            }
            // MONOTONIC_RAW and the COARSE clocks have no timers.
            4..=6 => return error!(EOPNOTSUPP),
            _ => return error!(EINVAL),
        }
    };
    let (sigval, signo, notify, tid) = if sev.is_null() {
        (None, SIGALRM, SIGEV_SIGNAL, 0)
    } else {
        let raw: [u8; 20] = ctx.mm().read_val(sev.0)?;
        let sigval = u64::from_le_bytes(raw[0..8].try_into().unwrap_or([0; 8]));
        let signo = i32::from_le_bytes(raw[8..12].try_into().unwrap_or([0; 4]));
        let notify = i32::from_le_bytes(raw[12..16].try_into().unwrap_or([0; 4]));
        let tid = i32::from_le_bytes(raw[16..20].try_into().unwrap_or([0; 4]));
        (Some(sigval), signo, notify, tid)
    };
    match notify {
        SIGEV_NONE => {}
        SIGEV_SIGNAL | SIGEV_THREAD_ID => {
            if !(1..=signal::NSIG).contains(&signo) {
                return error!(EINVAL);
            }
        }
        _ => return error!(EINVAL),
    }
    let thread = if notify == SIGEV_THREAD_ID {
        let t = crate::kernel()
            .tasks
            .thread(tid)
            .filter(|t| Arc::ptr_eq(&t.group, &ctx.task.group));
        Some(t.ok_or(crate::errno!(EINVAL))?.tid())
    } else {
        None
    };
    let group = ctx.task.group.clone();
    let new_id = {
        let mut ts = group.timers.lock().unwrap_or_else(|p| p.into_inner());
        if ts.posix.len() >= 4096 {
            return error!(EAGAIN);
        }
        let mut n = ts.next_id;
        while ts.posix.contains_key(&n) {
            n = n.wrapping_add(1).max(0);
        }
        ts.next_id = n.wrapping_add(1).max(0);
        let timer = Arc::new(Timer {
            id: n,
            group: Arc::downgrade(&group),
            thread,
            signo,
            notify,
            sigval: sigval.unwrap_or(n as u64),
            code: SI_TIMER,
            clock: if clock == 0 || clock == 8 { 0 } else { 1 },
            cpu,
            state: Mutex::new(TimerState::default()),
        });
        ts.posix.insert(n, timer);
        n
    };
    if let Err(e) = ctx.mm().write_val(id.0, &new_id) {
        group
            .timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .posix
            .remove(&new_id);
        return Err(e);
    }
    Ok(0)
}

/// Reads a `struct itimerspec` for timer_settime/timerfd_settime: the
/// interval, and the deadline (None: disarm), absolute on `clock` if
/// `absolute`.
pub fn read_itimerspec(
    ctx: &SyscallContext<'_>,
    at: UserAddr,
    absolute: bool,
    clock: i32,
) -> KResult<(Duration, Option<Instant>)> {
    let (interval, value) = read_itimerspec_raw(ctx, at)?;
    let deadline = if value.is_zero() {
        None
    } else if absolute {
        // The clock as guests read it (the vDSO's formula where it serves).
        let now = match crate::vdso::clock_ns(clock) {
            Some(ns) => Duration::from_nanos(ns),
            None => {
                let (s, n) = ruml_host::clock::gettime(clock).map_err(|_| crate::errno!(EINVAL))?;
                Duration::new(s.max(0) as u64, n as u32)
            }
        };
        // The namespace's view of the clock (time/ns.rs).
        let off = crate::time::ns::offset(ctx.task, clock) as i128;
        let now =
            Duration::from_nanos((now.as_nanos() as i128 + off).clamp(0, u64::MAX as i128) as u64);
        Some(Instant::now() + value.saturating_sub(now))
    } else {
        Some(Instant::now() + value)
    };
    Ok((interval, deadline))
}

/// A `struct itimerspec` as (interval, value), checked.
fn read_itimerspec_raw(ctx: &SyscallContext<'_>, at: UserAddr) -> KResult<(Duration, Duration)> {
    let v: [i64; 4] = ctx.mm().read_val(at.0)?;
    for (s, ns) in [(v[0], v[1]), (v[2], v[3])] {
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return error!(EINVAL);
        }
    }
    Ok((
        Duration::new(v[0] as u64, v[1] as u32),
        Duration::new(v[2] as u64, v[3] as u32),
    ))
}

fn timer_of(ctx: &SyscallContext<'_>, id: i32) -> KResult<Arc<Timer>> {
    ctx.task
        .group
        .timers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .posix
        .get(&id)
        .cloned()
        .ok_or(crate::errno!(EINVAL))
}

fn write_itimerspec(
    ctx: &SyscallContext<'_>,
    at: UserAddr,
    v: (Duration, Duration),
) -> KResult<()> {
    let (left, interval) = v;
    ctx.mm().write_val(
        at.0,
        &[
            interval.as_secs() as i64,
            interval.subsec_nanos() as i64,
            left.as_secs() as i64,
            left.subsec_nanos() as i64,
        ],
    )
}

fn sys_timer_settime(
    ctx: &mut SyscallContext<'_>,
    id: i32,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> KResult<u64> {
    let t = timer_of(ctx, id)?;
    let prev = if let Some(clock) = &t.cpu {
        let (interval, value) = read_itimerspec_raw(ctx, new)?;
        let at = if value.is_zero() {
            None
        } else if flags & TIMER_ABSTIME != 0 {
            Some(value)
        } else {
            Some(clock.now().unwrap_or_default().saturating_add(value))
        };
        t.set_cpu(at, interval)
    } else {
        let (interval, at) = read_itimerspec(ctx, new, flags & TIMER_ABSTIME != 0, t.clock)?;
        t.set(at, interval)
    };
    if !old.is_null() {
        write_itimerspec(ctx, old, prev)?;
    }
    Ok(0)
}

fn sys_timer_gettime(ctx: &mut SyscallContext<'_>, id: i32, cur: UserAddr) -> KResult<u64> {
    let t = timer_of(ctx, id)?;
    write_itimerspec(ctx, cur, t.get())?;
    Ok(0)
}

fn sys_timer_getoverrun(ctx: &mut SyscallContext<'_>, id: i32) -> KResult<u64> {
    let t = timer_of(ctx, id)?;
    let o = t
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last_overrun;
    Ok(o.max(0) as u64)
}

fn sys_timer_delete(ctx: &mut SyscallContext<'_>, id: i32) -> KResult<u64> {
    let t = ctx
        .task
        .group
        .timers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .posix
        .remove(&id)
        .ok_or(crate::errno!(EINVAL))?;
    t.state.lock().unwrap_or_else(|p| p.into_inner()).generation += 1;
    Ok(0)
}
