//! madvise's discarding advice: MADV_DONTNEED, MADV_DONTNEED_LOCKED and
//! MADV_FREE, walked over the areas of the range as Linux's
//! `madvise_walk_vmas` does: each area in turn is checked and discarded,
//! the first area that refuses stops the walk with its error (what came
//! before it stays discarded), and a hole anywhere in the range is ENOMEM
//! at the end, once every mapped part was discarded.
//!
//! Which areas refuse (Linux's `madvise_dontneed_free_valid_vma` and
//! `madvise_free_single_vma`): a locked area (mlock) is EINVAL for
//! MADV_DONTNEED and MADV_FREE, and discarded by MADV_DONTNEED_LOCKED;
//! MADV_FREE takes private anonymous memory only (EINVAL for any other
//! area). MADV_FREE's pages go at once here, which Linux may do lazily.

use crate::errno::{Errno, KResult};

use super::vma::{vm_flags, Backing, Vma};
use super::{Mm, MmInner, Pte, PAGE};

/// Which discarding advice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Discard {
    DontNeed,
    DontNeedLocked,
    Free,
}

impl Discard {
    /// Whether an area accepts this advice (else EINVAL).
    fn accepts(self, v: &Vma) -> bool {
        if v.flags & vm_flags::LOCKED != 0 && self != Discard::DontNeedLocked {
            return false;
        }
        if self == Discard::Free {
            return !v.shared && matches!(v.backing, Backing::Anon);
        }
        true
    }
}

impl Mm {
    /// madvise(`how`) of `[addr, end)` (page aligned): private anonymous
    /// memory gets fresh zero pages; file areas (shared anonymous memory's
    /// shmem object too) drop their pages, which come back from the file.
    pub fn discard(&self, addr: u64, end: u64, how: Discard) -> KResult<()> {
        // An empty range does nothing (Linux's madvise returns 0 for a
        // zero length before looking at the areas).
        if end <= addr {
            return Ok(());
        }
        let mut m = self.lock();
        self.patch_invalidate(&mut m, addr, end, false);
        let ptes: Vec<(u64, Pte)> = m
            .ptes
            .range(addr / PAGE..end / PAGE)
            .map(|(&k, p)| (k, *p))
            .collect();
        let areas: Vec<Vma> = m
            .vmas
            .iter()
            .filter(|v| v.start < end && v.end > addr)
            .cloned()
            .collect();
        let mut frames = Vec::new();
        let mut zero = Vec::new();
        let mut at = addr;
        let mut result: KResult<()> = Ok(());
        for v in &areas {
            if v.start > at {
                result = Err(Errno::ENOMEM);
            }
            if !how.accepts(v) {
                result = Err(Errno::EINVAL);
                break;
            }
            let (a, e) = (v.start.max(addr), v.end.min(end));
            if let Err(err) = self.discard_area(&mut m, v, a, e, &ptes, &mut frames, &mut zero) {
                result = Err(err);
                break;
            }
            at = e;
        }
        if result.is_ok() && at < end {
            result = Err(Errno::ENOMEM);
        }
        zero.sort_unstable();
        self.phys().zero_frames(&zero);
        m.frees.extend(frames);
        result
    }

    /// Discards `[at, e)` of area `v`: `ptes` are the range's entries as
    /// they were; frames to release go to `frames`, frames to zero in
    /// place to `zero`.
    #[allow(clippy::too_many_arguments)]
    fn discard_area(
        &self,
        m: &mut MmInner,
        v: &Vma,
        at: u64,
        e: u64,
        ptes: &[(u64, Pte)],
        frames: &mut Vec<ruml_host::Pfn>,
        zero: &mut Vec<ruml_host::Pfn>,
    ) -> KResult<()> {
        if v.shared && matches!(v.backing, Backing::Anon) {
            return Ok(());
        }
        let here = ptes
            .iter()
            .filter(|(vpn, _)| *vpn >= at / PAGE && *vpn < e / PAGE);
        if matches!(v.backing, Backing::Anon) {
            // Private anonymous memory: a frame this address space holds
            // alone stays, mapped as it is, and is zeroed (a thread's exit
            // discards most of its 8 MiB stack: no page-table churn, no
            // host unmap and map). Shared (copy-on-write) frames go, as
            // below, page by page.
            let mut gone: Option<(u64, u64)> = None;
            for &(vpn, p) in here {
                if !p.cow && self.phys().refcount(p.pfn) == 1 {
                    zero.push(p.pfn);
                    continue;
                }
                m.ptes.remove(&vpn);
                frames.push(p.pfn);
                gone = match gone {
                    Some((s, n)) if s + n == vpn => Some((s, n + 1)),
                    g => {
                        if let Some((s, n)) = g {
                            m.ops.push(super::HostOp::Unmap {
                                addr: s * PAGE,
                                len: n * PAGE,
                            });
                        }
                        Some((vpn, 1))
                    }
                };
            }
            if let Some((s, n)) = gone {
                m.ops.push(super::HostOp::Unmap {
                    addr: s * PAGE,
                    len: n * PAGE,
                });
            }
        } else {
            for &(vpn, p) in here {
                m.ptes.remove(&vpn);
                frames.push(p.pfn);
            }
            if e > at {
                m.ops.push(super::HostOp::Unmap {
                    addr: at,
                    len: e - at,
                });
            }
        }
        if matches!(v.backing, Backing::Anon) && v.prot != 0 && e - at <= super::MAP_AHEAD_MAX {
            self.populate(m, at, e)?;
        }
        Ok(())
    }
}
