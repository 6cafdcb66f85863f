//! madvise(MADV_REMOVE) and remap_file_pages(2): two calls that act on
//! the file behind a shared mapping.
//!
//! - MADV_REMOVE punches a hole in the file behind each area of the range
//!   (Linux's `madvise_remove`: a locked area or one with no file is
//!   EINVAL, one that may not write its file — private, or a descriptor
//!   opened read-only — EACCES; areas are done in order up to the first
//!   error, a hole in the range is ENOMEM at the end). The punch goes
//!   through the file's fallocate, which unmaps the hole from every
//!   mapping of the file (mm::rmap), so the next access sees zeros. Only
//!   memory-backed files (tmpfs, memfd, the overlay's upper) can be
//!   punched: others EOPNOTSUPP. Shared anonymous memory is a file of
//!   the internal shmem tmpfs (mm::shmem), punched as any; an anonymous
//!   shared area without one (none is made so) would have its pages
//!   zeroed in place.
//! - remap_file_pages is emulated as Linux has done since 4.0: the range
//!   becomes a new shared mapping of the same file at `pgoff`, with the
//!   area's protection, populated (MAP_SHARED|MAP_FIXED|MAP_POPULATE).
//!   Shared anonymous areas remap their shmem object the same way.

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::FileRef;

use super::vma::{vm_flags, Backing};
use super::{page_down, Mm, PAGE};

const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;

/// One area's part of MADV_REMOVE.
enum Step {
    /// Punch `[off, off+len)` of the file.
    Punch(FileRef, u64, u64),
    /// Zero the present pages of shared anonymous memory in `[start, end)`.
    Zero(u64, u64),
    /// The area refuses: stop here with this error.
    Fail(Errno),
}

impl Mm {
    /// madvise(MADV_REMOVE) of `[start, end)` (page aligned).
    pub fn remove_range(&self, start: u64, end: u64) -> KResult<()> {
        if start >= end {
            return Ok(());
        }
        // Decided under the lock; done without it, as the punch takes this
        // space's lock again to unmap the hole (mm::rmap).
        let (steps, covered) = {
            let m = self.lock();
            let mut steps = Vec::new();
            for v in m.vmas.iter().filter(|v| v.start < end && v.end > start) {
                let (a, b) = (v.start.max(start), v.end.min(end));
                let step = if v.flags & vm_flags::LOCKED != 0 {
                    Step::Fail(Errno::EINVAL)
                } else {
                    match &v.backing {
                        Backing::File { file, pgoff, .. } => {
                            if !v.shared || !file.can_write() {
                                Step::Fail(Errno::EACCES)
                            } else {
                                let off = (pgoff + (a - v.start) / PAGE) * PAGE;
                                Step::Punch(file.clone(), off, b - a)
                            }
                        }
                        Backing::Anon if v.shared => Step::Zero(a, b),
                        Backing::Anon | Backing::Special { .. } => Step::Fail(Errno::EINVAL),
                    }
                };
                let stop = matches!(step, Step::Fail(_));
                steps.push(step);
                if stop {
                    break;
                }
            }
            (steps, m.vmas.covers(start, end))
        };
        for step in steps {
            match step {
                Step::Fail(e) => return Err(e),
                Step::Zero(a, b) => {
                    let m = self.lock();
                    for p in m.ptes.range(a / PAGE..b / PAGE).map(|(_, p)| p) {
                        self.phys.zero(p.pfn, 0, PAGE as usize);
                    }
                }
                Step::Punch(file, off, len) => {
                    let ops = file.ops()?;
                    if !crate::fs::vfs::memory_backed(ops.as_ref()) {
                        return error!(EOPNOTSUPP);
                    }
                    if crate::fs::memfd::seals_of(&file)
                        & (crate::fs::memfd::F_SEAL_WRITE | crate::fs::memfd::F_SEAL_FUTURE_WRITE)
                        != 0
                    {
                        return error!(EPERM);
                    }
                    ops.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len)?;
                }
            }
        }
        if !covered {
            return error!(ENOMEM);
        }
        Ok(())
    }

    /// remap_file_pages(2) once `prot` was found 0 (see the module
    /// documentation). Its flags are ignored, as Linux's are (only
    /// MAP_NONBLOCK is kept there, a hint).
    pub fn remap_file_pages(&self, start: u64, size: u64, pgoff: u64) -> KResult<()> {
        const MAP_SHARED: u32 = 0x01;
        const MAP_FIXED: u32 = 0x10;
        const MAP_POPULATE: u32 = 0x8000;
        let start = page_down(start);
        let size = page_down(size);
        let end = start.checked_add(size).filter(|&e| e > start);
        let Some(end) = end else {
            return error!(EINVAL);
        };
        if pgoff.checked_add(size / PAGE).is_none() {
            return error!(EINVAL);
        }
        let (file, prot, locked) = {
            let m = self.lock();
            let Some(v) = m.vmas.find(start).cloned() else {
                return error!(EINVAL);
            };
            let Backing::File { file, key, .. } = &v.backing else {
                return error!(EINVAL);
            };
            if !v.shared {
                return error!(EINVAL);
            }
            // The range may span areas only if they lie side by side and
            // are alike: same file, same flags.
            let mut at = v.end;
            while at < end {
                let Some(n) = m.vmas.find(at) else {
                    return error!(EINVAL);
                };
                let same_file = matches!(&n.backing, Backing::File { key: k, .. } if k == key);
                if n.start != at
                    || !same_file
                    || n.prot != v.prot
                    || !n.shared
                    || n.flags != v.flags
                    || n.growsdown != v.growsdown
                {
                    return error!(EINVAL);
                }
                at = n.end;
            }
            (
                file.clone(),
                v.prot,
                v.flags & (vm_flags::LOCKED | vm_flags::LOCKONFAULT),
            )
        };
        let off = pgoff.checked_mul(PAGE).ok_or(crate::errno!(EOVERFLOW))?;
        if off.checked_add(size).is_none() {
            return error!(EOVERFLOW);
        }
        self.mmap(
            start,
            size,
            prot,
            MAP_SHARED | MAP_FIXED | MAP_POPULATE,
            Some((file, off)),
        )?;
        if locked != 0 {
            self.set_locked(start, end, locked, u64::MAX)?;
        }
        Ok(())
    }
}
