//! Resident memory as /proc reports it: VmRSS split into RssAnon, RssFile
//! and RssShmem (status, statm, stat), and each area's rows of
//! /proc/PID/smaps (Rss, Pss, Shared/Private Clean/Dirty, Anonymous,
//! Locked).
//!
//! What counts, as Linux's MM_ANONPAGES, MM_FILEPAGES and MM_SHMEMPAGES:
//! a page this address space maps whose frame holds data (the host has
//! it resident: a frame mapped ahead but never touched, or zeroed by
//! MADV_DONTNEED, is not). Its kind: private anonymous memory and the
//! private copies a write made in a private file area are anonymous; a
//! page of a memory-backed file (shared anonymous memory's shmem object,
//! tmpfs, memfd, System V shared memory), mapped shared or still shared
//! copy-on-write, is shmem; any other file's page (the page cache, the
//! vDSO) is file.
//!
//! smaps's sharing follows Linux's `smaps_account`: a page mapped by two
//! or more address spaces (its frame's references, less the one a file
//! keeps for its own page) is Shared, else Private, and adds PAGE /
//! mappers to Pss. ruml keeps no dirty bits: anonymous and shmem pages
//! count as dirty (they hold data only once written, except a shmem page
//! only read, which Linux would call clean), page-cache pages as clean.

use ruml_host::Pfn;

use super::vma::{vm_flags, Backing, Vma};
use super::{Mm, MmInner, PAGE};

/// Resident pages of an address space by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
}

impl Rss {
    /// VmRSS, in pages.
    pub fn total(&self) -> u64 {
        self.anon + self.file + self.shmem
    }
}

/// One area's smaps rows, in bytes (Pss in bytes << [`PSS_SHIFT`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct AreaUsage {
    pub start: u64,
    pub rss: u64,
    pub pss: u64,
    pub pss_dirty: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub anonymous: u64,
    pub locked: u64,
}

/// Pss's fixed-point shift, as Linux's PSS_SHIFT.
pub const PSS_SHIFT: u32 = 12;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anon,
    File,
    Shmem,
}

impl Mm {
    /// The mapped pages of `v` with their kind and whether the frame is
    /// also the file's own page (one reference the file holds).
    fn area_pages(m: &MmInner, v: &Vma) -> Vec<(Pfn, Kind, bool)> {
        let memory_backed = match &v.backing {
            Backing::File { file, .. } => file
                .ops()
                .ok()
                .is_some_and(|o| crate::fs::vfs::memory_backed(o.as_ref())),
            _ => false,
        };
        m.ptes
            .range(v.start / PAGE..v.end / PAGE)
            .map(|(_, p)| match &v.backing {
                Backing::Anon if v.shared => (p.pfn, Kind::Shmem, false),
                Backing::Anon => (p.pfn, Kind::Anon, false),
                Backing::Special { .. } => (p.pfn, Kind::File, true),
                Backing::File { .. } if !v.shared && !p.cow => (p.pfn, Kind::Anon, false),
                Backing::File { .. } if memory_backed => (p.pfn, Kind::Shmem, true),
                Backing::File { .. } => (p.pfn, Kind::File, true),
            })
            .collect()
    }

    /// Resident pages by kind (VmRSS, RssAnon, RssFile, RssShmem).
    pub fn rss(&self) -> Rss {
        let m = self.lock();
        let pages: Vec<(Pfn, Kind, bool)> = m
            .vmas
            .iter()
            .flat_map(|v| Self::area_pages(&m, v))
            .collect();
        drop(m);
        let pfns: Vec<Pfn> = pages.iter().map(|p| p.0).collect();
        let resident = self.phys().resident(&pfns);
        let mut r = Rss::default();
        for (&(_, kind, _), res) in pages.iter().zip(resident) {
            if !res {
                continue;
            }
            match kind {
                Kind::Anon => r.anon += 1,
                Kind::File => r.file += 1,
                Kind::Shmem => r.shmem += 1,
            }
        }
        r
    }

    /// Each area's smaps rows, by start address.
    pub fn area_usage(&self) -> Vec<AreaUsage> {
        let m = self.lock();
        let mut out = Vec::new();
        for v in m.vmas.iter() {
            let pages = Self::area_pages(&m, v);
            let pfns: Vec<Pfn> = pages.iter().map(|p| p.0).collect();
            let resident = self.phys().resident(&pfns);
            let mut u = AreaUsage {
                start: v.start,
                ..Default::default()
            };
            for (&(pfn, kind, file_ref), res) in pages.iter().zip(resident) {
                if !res {
                    continue;
                }
                let refs = u64::from(self.phys().refcount(pfn));
                let mappers = refs.saturating_sub(u64::from(file_ref)).max(1);
                let dirty = kind != Kind::File;
                let pss = (PAGE << PSS_SHIFT) / mappers;
                u.rss += PAGE;
                u.pss += pss;
                if dirty {
                    u.pss_dirty += pss;
                }
                match (mappers >= 2, dirty) {
                    (true, true) => u.shared_dirty += PAGE,
                    (true, false) => u.shared_clean += PAGE,
                    (false, true) => u.private_dirty += PAGE,
                    (false, false) => u.private_clean += PAGE,
                }
                if kind == Kind::Anon {
                    u.anonymous += PAGE;
                }
            }
            if v.flags & vm_flags::LOCKED != 0 {
                u.locked = u.pss;
            }
            out.push(u);
        }
        out
    }
}
