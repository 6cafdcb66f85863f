//! fork of an address space other threads are running in.
//!
//! A fork shares the parent's private pages with the child copy-on-write:
//! both page tables mark them, and the parent's host mappings are made
//! read-only by a change queued in the parent's `Mm`. Linux makes that
//! change take effect on every CPU before fork returns (a TLB shootdown).
//! Here it takes effect when some thread of the parent next flushes the
//! queue, and until then the parent's *other* threads, running guest code
//! in the stub, still write the shared frame. If, in that window, the
//! kernel breaks the copy-on-write for the parent (a system call writing
//! into a buffer there, another thread's write fault), it copies the frame
//! and maps the copy — and what the running threads write into the old
//! frame between the copy and the flush is lost for the parent (and seen
//! by the child, after its fork). Inside a nested ruml, whose flushes are
//! slow, a multi-threaded guest that forks (ruml's own stub spawner does)
//! lost writes that way: three levels of ruml crashed on corrupted
//! memory (docs/debugging.md).
//!
//! [`Mm::fork_synced`] closes the window as Linux does: under the flush
//! lock (no thread of the space resumes meanwhile), it marks the parent's
//! private writable pages copy-on-write and applies the read-only change
//! to the host through the forking thread's own context, and only then
//! shares the frames with the child. A page whose copy-on-write was broken
//! in between (its frame still the parent's alone: nothing shared it yet)
//! is copied for the child at once instead.

use std::sync::Arc;

use super::vma::{self, Backing, PROT_WRITE};
use super::{host_prot, HostOp, Mm, PAGE};

impl Mm {
    /// fork for a parent whose other threads may run meanwhile (see the
    /// module documentation). `apply` applies the parent's queued host
    /// changes through the forking thread's context and releases the
    /// frames they unmapped; it is called with the flush lock held. If it
    /// fails (the stub is gone), the fork goes on as [`Mm::fork_hot`]:
    /// nothing of the parent runs again anyway.
    pub fn fork_synced<E>(&self, hot: &[u64], apply: impl FnOnce(&Mm) -> Result<(), E>) -> Arc<Mm> {
        let _g = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.protect_for_fork();
        let synced = apply(self).is_ok();
        self.fork_copy(hot, synced)
    }

    /// Marks every present private writable page that a fork's child would
    /// share copy-on-write, and queues making it read-only in the host.
    fn protect_for_fork(&self) {
        let mut m = self.lock();
        let m = &mut *m;
        let skip = vma::vm_flags::DONTFORK | vma::vm_flags::WIPEONFORK;
        for v in m.vmas.iter() {
            if v.shared
                || v.prot & PROT_WRITE == 0
                || v.flags & skip != 0
                || matches!(v.backing, Backing::Special { .. })
            {
                continue;
            }
            let mut run: Option<(u64, u64)> = None;
            for (&vpn, pte) in m.ptes.range_mut(v.start / PAGE..v.end / PAGE) {
                if pte.cow {
                    continue;
                }
                pte.cow = true;
                run = match run {
                    Some((s, e)) if e == vpn => Some((s, vpn + 1)),
                    Some((s, e)) => {
                        m.ops.push(HostOp::Protect {
                            addr: s * PAGE,
                            len: (e - s) * PAGE,
                            prot: host_prot(v.prot, true),
                        });
                        Some((vpn, vpn + 1))
                    }
                    None => Some((vpn, vpn + 1)),
                };
            }
            if let Some((s, e)) = run {
                m.ops.push(HostOp::Protect {
                    addr: s * PAGE,
                    len: (e - s) * PAGE,
                    prot: host_prot(v.prot, true),
                });
            }
        }
    }
}
