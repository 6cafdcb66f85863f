//! Flushes that are skipped when nothing was written since the last one,
//! and shared when several callers flush at once (group commit).
//!
//! A device counts its completed writes ([`FlushGate::wrote`], called
//! after the host write returns) and remembers how many of them the
//! last completed host flush covered. A flush whose caller's writes a
//! completed flush already covers returns at once; flushes are
//! serialized, so a caller that arrives while another's host flush is
//! in flight waits for it, and then needs none of its own if that one
//! covered its writes (the count is read before the host call, so a
//! write counted after it is never taken as covered).
//!
//! Locking: `flushed` is held across the host flush (the wait of a
//! second flusher); `written` is a relaxed-free atomic (SeqCst).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::errno::KResult;

/// See the module doc.
pub struct FlushGate {
    /// Writes completed since the device was opened (starts at 1: the
    /// first flush always reaches the host).
    written: AtomicU64,
    /// The `written` count the last completed host flush covered.
    flushed: Mutex<u64>,
}

impl Default for FlushGate {
    fn default() -> Self {
        FlushGate {
            written: AtomicU64::new(1),
            flushed: Mutex::new(0),
        }
    }
}

impl FlushGate {
    /// Counts a completed write (call after the host write returned,
    /// whether or not it succeeded).
    pub fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Makes every write completed before this call durable with
    /// `host_flush`, unless a completed flush already covered them.
    pub fn flush(&self, host_flush: impl FnOnce() -> KResult<()>) -> KResult<()> {
        let want = self.written.load(Ordering::SeqCst);
        let mut done = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        if *done >= want {
            return Ok(());
        }
        let upto = self.written.load(Ordering::SeqCst);
        host_flush()?;
        *done = (*done).max(upto);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn flush_skipped_when_clean_and_shared() {
        let g = FlushGate::default();
        let n = AtomicU32::new(0);
        let f = || {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        g.flush(f).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        g.flush(f).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 1, "nothing written since");
        g.wrote();
        g.flush(f).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 2);
        // A failed host flush covers nothing.
        g.wrote();
        assert!(g.flush(|| crate::error!(EIO)).is_err());
        g.flush(f).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 3);
        // Concurrent flushers after one write: the host flush is shared.
        g.wrote();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| g.flush(f).unwrap());
            }
        });
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }
}
