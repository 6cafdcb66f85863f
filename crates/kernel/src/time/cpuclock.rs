//! CPU-time clocks: CLOCK_PROCESS_CPUTIME_ID (2), CLOCK_THREAD_CPUTIME_ID
//! (3) and the ids clock_getcpuclockid/pthread_getcpuclockid make for
//! another process or thread, encoded as Linux does:
//! `(~pid << 3) | perthread << 2 | which`, where `which` is 0 (PROF:
//! user + system), 1 (VIRT: user) or 2 (SCHED: all CPU time, as precisely
//! as the host tells) and pid 0 means the caller.
//!
//! A guest's CPU time is the host's accounting of its stub process and
//! threads (task::usage), so nothing tells the kernel when a CPU-time
//! deadline passes: POSIX timers and clock_nanosleep on these clocks look
//! at the clock every [`TICK`] while they are armed or sleeping (and not at
//! all otherwise, so an idle instance stays idle).

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::errno::KResult;
use crate::error;
use crate::task::{Task, ThreadGroup};

/// How often an armed CPU-time timer or sleep looks at its clock.
pub const TICK: Duration = Duration::from_millis(10);

const PROF: i32 = 0;
const VIRT: i32 = 1;
const SCHED: i32 = 2;

/// Whose CPU time a clock measures. Weak: a timer on another process's
/// clock does not keep it alive (its clock then stops and the timer
/// never fires again, as Linux's).
#[derive(Clone)]
enum Target {
    Group(Weak<ThreadGroup>),
    Thread(Weak<Task>),
}

/// A resolved CPU-time clock.
#[derive(Clone)]
pub struct CpuClock {
    target: Target,
    which: i32,
}

/// Whether `clock` names a CPU-time clock (valid or not).
pub fn is_cpu_clock(clock: i32) -> bool {
    clock < 0 || clock == 2 || clock == 3
}

/// Whether `clock` is a dynamic clock (a PTP clock device's fd, encoded
/// with low bits 3): ruml has no such devices, so these read as invalid
/// clocks, and timers and sleeps on them are EOPNOTSUPP as on Linux.
pub fn is_fd_clock(clock: i32) -> bool {
    clock < 0 && clock & 7 == 3
}

impl CpuClock {
    /// Resolves `clock` for `task` (Linux's pid_for_clock): EINVAL when
    /// the encoding is bad, the process is gone, or a thread clock names a
    /// thread of another process. `gettime`: clock_gettime/getres may name
    /// a process by any of its threads' ids.
    pub fn resolve(task: &Arc<Task>, clock: i32, gettime: bool) -> KResult<CpuClock> {
        let (pid, thread, which) = match clock {
            2 => (0, false, SCHED),
            3 => (0, true, SCHED),
            c if c < 0 => (!(c >> 3), c & 4 != 0, c & 3),
            _ => return error!(EINVAL),
        };
        if which > SCHED {
            return error!(EINVAL);
        }
        let target = if pid == 0 {
            if thread {
                Target::Thread(Arc::downgrade(task))
            } else {
                Target::Group(Arc::downgrade(&task.group))
            }
        } else {
            let global = task.pid_lookup(pid).ok_or(crate::errno!(EINVAL))?;
            let k = crate::kernel();
            if thread {
                let t = k
                    .tasks
                    .thread(global)
                    .filter(|t| Arc::ptr_eq(&t.group, &task.group))
                    .ok_or(crate::errno!(EINVAL))?;
                Target::Thread(Arc::downgrade(&t))
            } else if let Some(g) = k.tasks.group(global) {
                Target::Group(Arc::downgrade(&g))
            } else if gettime && global == task.tid() {
                Target::Group(Arc::downgrade(&task.group))
            } else {
                return error!(EINVAL);
            }
        };
        Ok(CpuClock { target, which })
    }

    /// The clock's value now (None once its process or thread is gone).
    pub fn now(&self) -> Option<Duration> {
        match &self.target {
            Target::Group(g) => {
                let g = g.upgrade()?;
                if g.threads().is_empty() {
                    return None;
                }
                Some(match self.which {
                    SCHED => crate::task::usage::group_cpu(&g),
                    VIRT => crate::task::usage::group_times(&g).user,
                    _ => {
                        let t = crate::task::usage::group_times(&g);
                        t.user + t.sys
                    }
                })
            }
            Target::Thread(t) => {
                let t = t.upgrade()?;
                let times = crate::task::usage::thread_times(&t);
                Some(if self.which == VIRT {
                    times.user
                } else {
                    times.user + times.sys
                })
            }
        }
    }

    /// The clock's resolution: the scheduler clock is read to the
    /// nanosecond; user/system splits come in the host's clock ticks.
    pub fn resolution(&self) -> Duration {
        match self.which {
            PROF | VIRT => Duration::from_millis(10),
            _ => Duration::from_nanos(1),
        }
    }
}

/// clock_nanosleep on a CPU-time clock: sleeps until the clock reads
/// `deadline` (absolute) or has advanced by it (relative), looking every
/// [`TICK`]. A signal ends the sleep: the time left is the CPU time still
/// to pass.
pub fn nanosleep(task: &Arc<Task>, clock: &CpuClock, d: Duration, absolute: bool) -> CpuSleep {
    let Some(start) = clock.now() else {
        return CpuSleep::Done;
    };
    let deadline = if absolute { d } else { start.saturating_add(d) };
    loop {
        let Some(now) = clock.now() else {
            return CpuSleep::Done;
        };
        if now >= deadline {
            return CpuSleep::Done;
        }
        let wake = std::time::Instant::now() + TICK;
        match task.wait_until(Some(wake), || false) {
            Err(crate::errno::Errno::ETIMEDOUT) | Ok(()) => {}
            Err(_) => {
                let left = clock
                    .now()
                    .map(|n| deadline.saturating_sub(n))
                    .unwrap_or_default();
                return CpuSleep::Interrupted(left);
            }
        }
    }
}

/// How a CPU-time sleep ended.
pub enum CpuSleep {
    Done,
    /// A signal, with the CPU time still to pass.
    Interrupted(Duration),
}
