//! Virtual memory areas: the guest's view of its address space, a range
//! map keyed by start address. /proc/PID/maps is drawn from these, so the
//! stub's pages never appear.

use std::collections::BTreeMap;

use crate::fs::FileRef;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// Frames the kernel owns and maps into address spaces as they are (the
/// vDSO and its data page): every mapping takes a reference per page; the
/// kernel keeps its own for ever. Pages are mapped copy-on-write, so a
/// write (where `max_prot` allows one) makes a private copy.
pub struct SpecialMapping {
    pub pfns: Vec<ruml_host::Pfn>,
    /// The protections mprotect may grant (Linux's VM_MAY*).
    pub max_prot: u32,
}

/// What fills a VMA's pages.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled memory.
    Anon,
    /// A file: page `i` of the VMA is page `pgoff + i` of the file.
    File {
        file: FileRef,
        pgoff: u64,
        key: (u64, u64),
        size: u64,
    },
    /// Page `i` of the VMA is frame `pgoff + i` of a special mapping.
    Special {
        map: &'static SpecialMapping,
        pgoff: u64,
    },
}

/// The file an anonymous area was made from: a private mapping of
/// /dev/zero, whose memory is anonymous but which Linux still names by
/// its file (`vm_file`) in /proc/PID/maps, with that file's device and
/// inode and the offset given to mmap. It holds the open file for the
/// area's lifetime, as Linux's `vm_file` does.
#[derive(Clone)]
pub struct AnonFile {
    pub file: FileRef,
    /// Page offset of the area's start.
    pub pgoff: u64,
    /// The file's (encoded device, inode).
    pub key: (u64, u64),
}

/// One area: `[start, end)`, page aligned.
#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    /// MAP_SHARED: writes are seen by every mapper (and, for files, reach
    /// the file). Private areas are copy-on-write after fork.
    pub shared: bool,
    /// A stack that grows down on faults below it.
    pub growsdown: bool,
    pub backing: Backing,
    /// A name for /proc/PID/maps: "[heap]", "[stack]".
    pub name: Option<&'static str>,
    /// [`vm_flags`]: mlock and madvise state.
    pub flags: u32,
    /// For anonymous memory made from a file (private /dev/zero): that
    /// file, for /proc/PID/maps.
    pub anon_file: Option<AnonFile>,
}

/// Per-area flags set by mlock(2) and madvise(2).
pub mod vm_flags {
    /// mlock: pages stay resident (VmLck).
    pub const LOCKED: u32 = 1;
    /// mlock2 MLOCK_ONFAULT: locked as they are touched.
    pub const LOCKONFAULT: u32 = 2;
    /// MADV_DONTFORK: a fork's child does not get the area.
    pub const DONTFORK: u32 = 4;
    /// MADV_WIPEONFORK: a fork's child gets the area zero-filled.
    pub const WIPEONFORK: u32 = 8;
    /// MADV_DONTDUMP: left out of core dumps.
    pub const DONTDUMP: u32 = 16;
    /// mseal(2): the area can no longer be unmapped, moved, resized,
    /// reprotected, mapped over, or (read-only private anonymous memory)
    /// discarded; EPERM for each. Never cleared; not inherited by exec.
    pub const SEALED: u32 = 32;
    /// A shared file mapping that may never become writable (Linux's
    /// VM_MAYWRITE clear): made of a memfd sealed against writes
    /// (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE); mprotect(PROT_WRITE) is EACCES.
    pub const NO_MAY_WRITE: u32 = 64;
    /// A file mapping that may never become executable (Linux's
    /// VM_MAYEXEC clear): the file lies on a noexec mount;
    /// mprotect(PROT_EXEC) is EACCES.
    pub const NO_MAY_EXEC: u32 = 128;
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The part of this VMA from `at` on (for splitting).
    fn tail_from(&self, at: u64) -> Vma {
        let mut t = self.clone();
        t.start = at;
        t.shift_pgoff((at - self.start) / 4096);
        t
    }

    /// Moves the file offsets of this area `pages` pages on: the area now
    /// starts that far into what it mapped.
    pub fn shift_pgoff(&mut self, pages: u64) {
        if let Backing::File { pgoff, .. } | Backing::Special { pgoff, .. } = &mut self.backing {
            *pgoff += pages;
        }
        if let Some(a) = &mut self.anon_file {
            a.pgoff += pages;
        }
    }

    /// Whether `next`, starting at our end, could be one area with us.
    fn mergeable(&self, next: &Vma) -> bool {
        if self.end != next.start
            || self.prot != next.prot
            || self.shared != next.shared
            || self.growsdown != next.growsdown
            || self.name != next.name
            || self.flags != next.flags
        {
            return false;
        }
        match (&self.anon_file, &next.anon_file) {
            (None, None) => {}
            (Some(a), Some(b)) if a.key == b.key && a.pgoff + self.len() / 4096 == b.pgoff => {}
            _ => return false,
        }
        match (&self.backing, &next.backing) {
            (Backing::Anon, Backing::Anon) => true,
            (
                Backing::File {
                    key: k1, pgoff: p1, ..
                },
                Backing::File {
                    key: k2, pgoff: p2, ..
                },
            ) => k1 == k2 && p1 + self.len() / 4096 == *p2,
            (
                Backing::Special {
                    map: m1, pgoff: p1, ..
                },
                Backing::Special {
                    map: m2, pgoff: p2, ..
                },
            ) => std::ptr::eq(*m1, *m2) && p1 + self.len() / 4096 == *p2,
            _ => false,
        }
    }
}

/// The set of VMAs of one address space.
#[derive(Clone, Default)]
pub struct VmaMap {
    map: BTreeMap<u64, Vma>,
}

impl VmaMap {
    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    pub fn find_mut(&mut self, addr: u64) -> Option<&mut Vma> {
        self.map
            .range_mut(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// The first VMA that ends after `addr`.
    pub fn next_after(&self, addr: u64) -> Option<&Vma> {
        if let Some(v) = self.find(addr) {
            return Some(v);
        }
        self.map.range(addr..).next().map(|(_, v)| v)
    }

    /// The last VMA that ends at or below `addr`.
    pub fn prev_before(&self, addr: u64) -> Option<&Vma> {
        self.map
            .range(..addr)
            .rev()
            .map(|(_, v)| v)
            .find(|v| v.end <= addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.map.values()
    }

    /// Whether any VMA overlaps `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.next_after(start).is_some_and(|v| v.start < end)
    }

    /// Where the run of VMAs from `start` first leaves a hole (at most
    /// `end`): `start` itself if nothing is mapped there.
    pub fn covered_until(&self, start: u64, end: u64) -> u64 {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) => at = v.end,
                None => return at,
            }
        }
        end
    }

    /// Whether `[start, end)` is covered by VMAs without holes.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// Splits the VMA containing `at` (if any, and not at its start) in two.
    pub fn split_at(&mut self, at: u64) {
        let Some(v) = self.find_mut(at) else { return };
        if v.start == at {
            return;
        }
        let tail = v.tail_from(at);
        v.end = at;
        self.map.insert(at, tail);
    }

    /// Removes and returns the VMAs within `[start, end)`, splitting the
    /// ones that straddle its edges.
    pub fn remove_range(&mut self, start: u64, end: u64) -> Vec<Vma> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| self.map.remove(&k))
            .collect()
    }

    /// Inserts a VMA (the range must be free) and merges it with equal
    /// neighbours.
    pub fn insert(&mut self, vma: Vma) {
        let start = vma.start;
        self.map.insert(start, vma);
        self.merge_around(start);
    }

    /// Applies `f` to every VMA within `[start, end)`, splitting at the edges.
    pub fn update_range(&mut self, start: u64, end: u64, mut f: impl FnMut(&mut Vma)) {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        for k in &keys {
            if let Some(v) = self.map.get_mut(k) {
                f(v);
            }
        }
        for k in keys {
            self.merge_around(k);
        }
    }

    fn merge_around(&mut self, start: u64) {
        // Merge with the next.
        let Some(cur) = self.map.get(&start).cloned() else {
            return;
        };
        if let Some(next) = self.map.get(&cur.end).cloned() {
            if cur.mergeable(&next) {
                self.map.remove(&next.start);
                if let Some(c) = self.map.get_mut(&start) {
                    c.end = next.end;
                }
            }
        }
        // Merge with the previous.
        let Some(cur) = self.map.get(&start).cloned() else {
            return;
        };
        if let Some((&pk, prev)) = self.map.range(..start).next_back() {
            if prev.mergeable(&cur) {
                let end = cur.end;
                self.map.remove(&start);
                if let Some(p) = self.map.get_mut(&pk) {
                    p.end = end;
                }
            }
        }
    }

    /// Finds a free range of `len` bytes, highest first, below `top` and
    /// at or above `bottom`.
    pub fn find_free_top_down(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        let mut hi = top;
        for v in self.map.values().rev() {
            if v.start >= hi {
                continue;
            }
            let gap_lo = v.end.max(bottom);
            if v.end <= hi && hi >= gap_lo + len {
                return Some(hi - len);
            }
            hi = hi.min(v.start);
            if hi < bottom + len {
                return None;
            }
        }
        (hi >= bottom + len).then(|| hi - len)
    }
}
