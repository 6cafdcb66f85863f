//! Blocking: a task sleeps on its own [`Waker`]; whoever changes what it
//! waits for (a futex wake, a signal, a child's exit) pokes that waker.
//! No polling, so an instance whose guests all sleep uses no CPU.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, LockResult, Mutex, MutexGuard, PoisonError, WaitTimeoutResult};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};

/// A task's wake-up flag and condition variable.
#[derive(Default)]
pub struct Waker {
    poked: Mutex<bool>,
    cv: SleepCv,
}

/// A condition variable that counts its sleepers (under the waker's
/// mutex), so that a poke of a task that is not asleep — most pokes: a
/// futex wake of a running thread, a signal, a child's exit while the
/// parent runs — costs no host call (std's notify is a futex call even
/// with nobody waiting).
#[derive(Default)]
struct SleepCv {
    cv: Condvar,
    sleepers: AtomicU32,
}

type PokeGuard<'a> = MutexGuard<'a, bool>;

impl SleepCv {
    fn wait<'a>(&self, g: PokeGuard<'a>) -> LockResult<PokeGuard<'a>> {
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        let r = self.cv.wait(g);
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        r
    }

    #[allow(clippy::type_complexity)]
    fn wait_timeout<'a>(
        &self,
        g: PokeGuard<'a>,
        d: Duration,
    ) -> Result<(PokeGuard<'a>, WaitTimeoutResult), PoisonError<(PokeGuard<'a>, WaitTimeoutResult)>>
    {
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        let r = self.cv.wait_timeout(g, d);
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        r
    }
}

impl Waker {
    /// Wakes the task if it sleeps, or makes its next sleep return at once.
    pub fn poke(&self) {
        let sleepers = {
            let mut p = self.poked.lock().unwrap_or_else(|p| p.into_inner());
            *p = true;
            // Read under the mutex: a sleeper counts itself under it
            // before it waits, and one that takes it after us sees the
            // flag and does not wait.
            self.cv.sleepers.load(Ordering::Relaxed)
        };
        if sleepers > 0 {
            self.cv.cv.notify_all();
        }
    }

    /// For a kernel worker that owns this waker (no task): sleeps until
    /// poked since the last call, or until the deadline.
    pub fn sleep(&self, deadline: Option<Instant>) {
        let mut p = self.poked.lock().unwrap_or_else(|p| p.into_inner());
        while !*p {
            match deadline {
                None => p = self.cv.wait(p).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    p = self
                        .cv
                        .wait_timeout(p, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *p = false;
    }
}

impl super::Task {
    /// Sleeps until `ready()` says yes (Ok), a signal is deliverable
    /// (EINTR) or the deadline passes (ETIMEDOUT). `ready` is rechecked
    /// after every poke of the task's waker.
    pub fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> KResult<()> {
        loop {
            {
                let mut p = self.waker.poked.lock().unwrap_or_else(|p| p.into_inner());
                *p = false;
            }
            if ready() {
                return Ok(());
            }
            if self.signal_pending() {
                return Err(Errno::EINTR);
            }
            let mut p = self.waker.poked.lock().unwrap_or_else(|p| p.into_inner());
            while !*p {
                match deadline {
                    None => p = self.waker.cv.wait(p).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            drop(p);
                            return if ready() {
                                Ok(())
                            } else {
                                Err(Errno::ETIMEDOUT)
                            };
                        }
                        p = self
                            .waker
                            .cv
                            .wait_timeout(p, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        }
    }
}

impl super::Task {
    /// Sleeps until `ready()` says yes, ignoring signals (a stopped task
    /// waiting for SIGCONT). `ready` is rechecked after every poke.
    pub fn sleep_until_poked(&self, mut ready: impl FnMut() -> bool) {
        loop {
            {
                let mut p = self.waker.poked.lock().unwrap_or_else(|p| p.into_inner());
                *p = false;
            }
            if ready() {
                return;
            }
            let mut p = self.waker.poked.lock().unwrap_or_else(|p| p.into_inner());
            while !*p {
                p = self.waker.cv.wait(p).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// A queue of tasks sleeping until something changes (a pipe gets data, a
/// tty gets input). Wakers are weak: a task that died is skipped.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<std::sync::Weak<super::Task>>>,
}

impl WaitQueue {
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// Sleeps until `cond()` is true (Ok), a signal is pending
    /// (ERESTARTSYS: the signal code makes it EINTR or a restart), or the
    /// deadline passes (ETIMEDOUT). `cond` is rechecked after every wake.
    pub fn wait(
        &self,
        task: &std::sync::Arc<super::Task>,
        deadline: Option<Instant>,
        cond: impl FnMut() -> bool,
    ) -> KResult<()> {
        let me = std::sync::Arc::downgrade(task);
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(me.clone());
        let r = task.wait_until(deadline, cond);
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|w| !w.ptr_eq(&me) && w.strong_count() > 0);
        r.map_err(|e| {
            if e == Errno::EINTR {
                Errno::ERESTARTSYS
            } else {
                e
            }
        })
    }

    /// Wakes every sleeper to recheck its condition.
    pub fn wake_all(&self) {
        let ws = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for w in ws.iter() {
            if let Some(t) = w.upgrade() {
                t.waker.poke();
            }
        }
    }
}
