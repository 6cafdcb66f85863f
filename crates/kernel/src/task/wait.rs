//! Blocking: a task sleeps on its own [`Waker`]; whoever changes what it
//! waits for (a futex wake, a signal, a child's exit) pokes that waker.
//! No polling, so an instance whose guests all sleep uses no CPU.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::errno::{Errno, KResult};

/// A task's wake-up flag and condition variable.
#[derive(Default)]
pub struct Waker {
    poked: Mutex<bool>,
    cv: Condvar,
}

impl Waker {
    /// Wakes the task if it sleeps, or makes its next sleep return at once.
    pub fn poke(&self) {
        *self.poked.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

impl super::Task {
    /// Sleeps until `ready()` says yes (Ok), a signal is deliverable
    /// (EINTR) or the deadline passes (ETIMEDOUT). `ready` is rechecked
    /// after every poke of the task's waker.
    pub fn wait_until(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> KResult<()> {
        loop {
            {
                let mut p = self.waker.poked.lock().unwrap_or_else(|p| p.into_inner());
                *p = false;
            }
            if ready() {
                return Ok(());
            }
            if self.signals.has_deliverable() {
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
                            return if ready() { Ok(()) } else { Err(Errno::ETIMEDOUT) };
                        }
                        p = self.waker.cv.wait_timeout(p, d - now).unwrap_or_else(|e| e.into_inner()).0;
                    }
                }
            }
        }
    }
}
