//! /proc/PID/pagemap: one little-endian 64-bit entry per virtual page of
//! the process, at file offset `address / 4096 * 8`, as Linux's
//! `pagemap_read` (Documentation/admin-guide/mm/pagemap.rst):
//!
//! - bit 63 present, 62 swapped (never: ruml does not swap), 61 a file page
//!   or shared anonymous (shmem) page, 56 mapped by this process only
//!   (Linux's page_mapcount() == 1), 55 soft-dirty (never: ruml has no
//!   soft-dirty tracking, as a kernel built without CONFIG_MEM_SOFT_DIRTY),
//!   bits 0-54 the page frame number — ruml's physical-memory frame —
//!   only for an opener with CAP_SYS_ADMIN (zero otherwise, as Linux since
//!   4.2).
//! - Reads and offsets in whole entries (EINVAL otherwise); offsets past
//!   TASK_SIZE read nothing; lseek takes SEEK_SET and SEEK_CUR only.
//! - Opening needs ptrace read access to the process (as /proc/PID/mem);
//!   the open file keeps the address space it was opened on, and reads 0
//!   bytes once that is gone.
//!
//! A page counts as present when the process has touched it: anonymous
//! areas are mapped ahead into frames the host has not backed yet
//! (untouched pages Linux would not have), so an anonymous frame the host
//! holds no page for shows as absent, as mincore does.

use std::sync::{Arc, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::Meta;
use crate::fs::types::{FileType, Stat, StatFs, S_IFREG};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

use super::vma::Backing;
use super::{task_size, Mm, PAGE};

const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;
const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
const PM_PFRAME_MASK: u64 = (1 << 55) - 1;
const ENTRY: u64 = 8;

impl Mm {
    /// The pagemap entries of `count` pages from virtual page `vpn` on.
    pub fn pagemap_entries(&self, vpn: u64, count: u64, show_pfn: bool) -> Vec<u64> {
        let m = self.lock();
        let mut out = Vec::with_capacity(count as usize);
        let mut anon = Vec::new(); // (index in out, pfn): present if touched
        for i in 0..count {
            let addr = (vpn + i) * PAGE;
            let (Some(v), Some(pte)) = (m.vmas.find(addr), m.ptes.get(&(vpn + i))) else {
                out.push(0);
                continue;
            };
            let refs = self.phys.refcount(pte.pfn) as u64;
            let (file, owners) = match &v.backing {
                // A private area's page still shared with the file (not
                // yet copied by a write) is the file's page; the file (or
                // the page cache) holds a reference of its own.
                Backing::File { .. } if v.shared || pte.cow && refs > 1 => (true, 1),
                Backing::File { .. } => (false, 0),
                Backing::Anon => (v.shared, 0),
                // The vDSO and vvar pages, shared with every process.
                Backing::Special { .. } => (true, u64::MAX),
            };
            let mut e = PM_PRESENT;
            if file {
                e |= PM_FILE;
            }
            if owners != u64::MAX && refs.saturating_sub(owners) == 1 {
                e |= PM_MMAP_EXCLUSIVE;
            }
            if show_pfn {
                e |= pte.pfn & PM_PFRAME_MASK;
            }
            // Memory mapped ahead (anonymous, and shared anonymous
            // objects: mm::shmem) is present once touched.
            let ahead = match &v.backing {
                Backing::Anon => true,
                Backing::File { file, .. } => super::shmem::is_object(file),
                Backing::Special { .. } => false,
            };
            if ahead {
                anon.push((out.len(), pte.pfn));
            }
            out.push(e);
        }
        let pfns: Vec<_> = anon.iter().map(|&(_, p)| p).collect();
        for (&(at, _), touched) in anon.iter().zip(self.phys.resident(&pfns)) {
            if !touched {
                out[at] = 0;
            }
        }
        out
    }
}

/// The /proc/PID/pagemap inode of thread `tid`.
pub struct PagemapInode {
    pub meta: Meta,
    pub tid: i32,
}

impl Inode for PagemapInode {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFREG | 0o400, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    /// Linux's `pagemap_open`: ptrace read access with the opener's
    /// filesystem ids; whether PFNs show is decided here, by the opener's
    /// CAP_SYS_ADMIN, and stays with the open file.
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let k = crate::kernel();
        let t = k
            .tasks
            .thread(self.tid)
            .or_else(|| k.tasks.get(self.tid))
            .ok_or(crate::errno!(ESRCH))?;
        let mut show_pfn = true;
        if let Some(c) = caller.task {
            if !crate::task::ptrace::may_access(c, &t, true) {
                return error!(EACCES);
            }
            show_pfn = c.privileged(crate::task::caps::Cap::SysAdmin);
        }
        Ok(Arc::new(PagemapFile {
            mm: Arc::downgrade(&t.mm()),
            show_pfn,
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open /proc/PID/pagemap.
struct PagemapFile {
    mm: Weak<Mm>,
    show_pfn: bool,
}

/// Entries one read produces at most (a 2 MiB buffer): a larger read
/// returns less, as a short read.
const MAX_ENTRIES: u64 = 1 << 18;

impl FileOps for PagemapFile {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let Some(mm) = self.mm.upgrade() else {
            return Ok(0);
        };
        if !off.is_multiple_of(ENTRY) || !(buf.len() as u64).is_multiple_of(ENTRY) {
            return error!(EINVAL);
        }
        let top = task_size() / PAGE;
        let vpn = off / ENTRY;
        if buf.is_empty() || vpn >= top {
            return Ok(0);
        }
        let count = (buf.len() as u64 / ENTRY).min(top - vpn).min(MAX_ENTRIES);
        let entries = mm.pagemap_entries(vpn, count, self.show_pfn);
        for (i, e) in entries.iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
        }
        Ok(entries.len() * 8)
    }
    /// Linux's `mem_lseek`: SEEK_SET and SEEK_CUR, nothing else.
    fn llseek(&self, pos: u64, off: i64, whence: u32) -> Option<KResult<u64>> {
        let to = match whence {
            0 => u64::try_from(off).ok(),
            1 => pos.checked_add_signed(off),
            _ => None,
        };
        Some(to.ok_or(crate::errno!(EINVAL)))
    }
}
