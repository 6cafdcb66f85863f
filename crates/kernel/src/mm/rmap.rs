//! The reverse map of file mappings: for each file (by its page-cache key,
//! `(dev, ino)`), the address spaces that map it. Linux keeps the same
//! thing per inode (`address_space::i_mmap`) for `unmap_mapping_range`:
//! when a memory-backed file (tmpfs, memfd) is truncated or has a hole
//! punched, the file's pages in that range are unmapped from every address
//! space that maps them, so a later access faults again and sees what the
//! file now holds — SIGBUS past the end of the file, zeros in a hole —
//! rather than the old frame, which the file no longer owns.
//!
//! Entries are added when an area of a file is mapped (and for a fork's
//! child) and taken out when the address space is dropped; an address
//! space that unmapped the file stays listed until then (a walk finds no
//! area of the file in it and does nothing). Memory: one entry per (file,
//! address space) pair that exists, so it is bounded by the areas guests
//! have.
//!
//! Locking: one mutex over the map, never held while an address space's
//! lock is taken: [`unmap_file_pages`] copies the list out first. The
//! order elsewhere is the Mm's lock, then the file's (a fault asks the
//! file for its frame with the Mm locked), so a file calls in here only
//! after dropping its own lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use ruml_host::Pfn;

use super::Mm;

type Key = (u64, u64);

/// file key → (address of the Mm, the Mm).
type Map = HashMap<Key, HashMap<usize, Weak<Mm>>>;

fn map() -> std::sync::MutexGuard<'static, Map> {
    static MAP: OnceLock<Mutex<Map>> = OnceLock::new();
    MAP.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Records that `mm` maps (part of) the file `key`.
pub fn register(key: Key, mm: &Weak<Mm>) {
    let id = mm.as_ptr() as usize;
    if id == 0 || mm.strong_count() == 0 {
        return;
    }
    map().entry(key).or_default().insert(id, mm.clone());
}

/// An address space is going away: it maps none of `keys` any more.
pub fn unregister(id: usize, keys: &[Key]) {
    let mut m = map();
    for k in keys {
        if let Some(set) = m.get_mut(k) {
            set.remove(&id);
            if set.is_empty() {
                m.remove(k);
            }
        }
    }
}

/// Whether some address space maps the file `key` shared with the right
/// to write (Linux's `mapping_writably_mapped`: VM_SHARED and
/// VM_MAYWRITE, whatever the current protection): F_SEAL_WRITE is then
/// EBUSY.
pub fn writably_mapped(key: Key) -> bool {
    let users: Vec<Arc<Mm>> = match map().get(&key) {
        Some(set) => set.values().filter_map(Weak::upgrade).collect(),
        None => return false,
    };
    users.iter().any(|mm| {
        mm.lock().vmas.iter().any(|v| {
            matches!(&v.backing, super::vma::Backing::File { key: k, file, .. }
                if *k == key && file.can_write())
                && v.shared
                && v.flags & super::vma::vm_flags::NO_MAY_WRITE == 0
        })
    })
}

/// What of the file's pages in a range an address space must drop.
pub enum Zap<'a> {
    /// Truncation: every page of the range, private copies too (they lie
    /// past the end of the file now: SIGBUS, as Linux's `even_cows`).
    All,
    /// A punched hole: only the pages that still map the file's old frames
    /// (index → frame); private copies a process made by writing stay.
    Frames(&'a HashMap<u64, Pfn>),
}

/// Unmaps pages `[first, end)` of the file `key` from every address space
/// that maps them (Linux's `unmap_mapping_range`). Each space queues the
/// host changes and releases the frames once they are applied; its threads
/// (but the caller) are kicked out of guest code so that they apply them
/// before touching the pages again (Linux's TLB shootdown).
pub fn unmap_file_pages(key: Key, first: u64, end: u64, zap: Zap<'_>) {
    if first >= end {
        return;
    }
    // Rounds until no new space shows up: a fork's child is listed while
    // its parent's lock is held, so once the parent has been zapped (under
    // that lock) a child forked before is listed and is zapped next round.
    let mut done: std::collections::HashSet<usize> = Default::default();
    for _ in 0..64 {
        let users: Vec<Arc<Mm>> = {
            let mut m = map();
            let Some(set) = m.get_mut(&key) else {
                return;
            };
            set.retain(|_, w| w.strong_count() > 0);
            let v: Vec<Arc<Mm>> = set
                .iter()
                .filter(|(id, _)| !done.contains(id))
                .filter_map(|(_, w)| w.upgrade())
                .collect();
            if set.is_empty() {
                m.remove(&key);
            }
            v
        };
        if users.is_empty() {
            return;
        }
        for mm in users {
            done.insert(Arc::as_ptr(&mm) as usize);
            if mm.zap_file_pages(key, first, end, &zap) && crate::kernel_booted() {
                crate::kernel().tasks.interrupt_users_of(&mm);
            }
        }
    }
}

impl Mm {
    /// This space's part of [`unmap_file_pages`]: drops the pages of its
    /// areas of file `key` that hold file pages `[first, end)` (as `zap`
    /// says), queueing the host unmaps and the frames' release. Returns
    /// whether anything was dropped. Under the Mm's lock, so a fault that
    /// took the file's old frame before the file let it go has mapped it
    /// already and is undone here.
    pub(super) fn zap_file_pages(&self, key: Key, first: u64, end: u64, zap: &Zap<'_>) -> bool {
        use super::{vma::Backing, HostOp, PAGE};
        let mut m = self.lock();
        let areas: Vec<(u64, u64, u64)> = m
            .vmas
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::File { key: k, pgoff, .. } if *k == key => Some((v.start, v.end, *pgoff)),
                _ => None,
            })
            .collect();
        let mut any = false;
        for (start, vend, pgoff) in areas {
            let lo_pg = first.max(pgoff);
            let hi_pg = end.min(pgoff.saturating_add((vend - start) / PAGE));
            if lo_pg >= hi_pg {
                continue;
            }
            let lo = start + (lo_pg - pgoff) * PAGE;
            let hi = start + (hi_pg - pgoff) * PAGE;
            let present: Vec<(u64, Pfn)> = m
                .ptes
                .range(lo / PAGE..hi / PAGE)
                .map(|(&vpn, p)| (vpn, p.pfn))
                .collect();
            for (vpn, pfn) in present {
                let index = pgoff + (vpn - start / PAGE);
                let hit = match zap {
                    Zap::All => true,
                    Zap::Frames(old) => old.get(&index) == Some(&pfn),
                };
                if !hit {
                    continue;
                }
                m.ptes.remove(&vpn);
                m.frees.push(pfn);
                // Runs of pages leave in one host request.
                let addr = vpn * PAGE;
                match m.ops.last_mut() {
                    Some(HostOp::Unmap { addr: a, len }) if *a + *len == addr => *len += PAGE,
                    _ => m.ops.push(HostOp::Unmap { addr, len: PAGE }),
                }
                any = true;
            }
        }
        any
    }
}
