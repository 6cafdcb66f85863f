//! Memory system calls: brk, mmap, munmap, mprotect, mremap, madvise,
//! msync, mincore, mlock family.

use ruml_host::Pfn;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

use super::discard::Discard;
use super::vma::{vm_flags, Backing, Vma, PROT_EXEC, PROT_READ, PROT_WRITE};
use super::{page_down, page_up, task_size, Mm, MmInner, MMAP_MIN, PAGE};

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_TYPE: u32 = 0x0f;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_GROWSDOWN: u32 = 0x100;
const MAP_DENYWRITE: u32 = 0x800;
const MAP_EXECUTABLE: u32 = 0x1000;
const MAP_LOCKED: u32 = 0x2000;
const MAP_NORESERVE: u32 = 0x4000;
const MAP_POPULATE: u32 = 0x8000;
const MAP_NONBLOCK: u32 = 0x10000;
const MAP_STACK: u32 = 0x20000;
const MAP_HUGETLB: u32 = 0x40000;
const MAP_SYNC: u32 = 0x80000;
const MAP_FIXED_NOREPLACE: u32 = 0x100000;
const MAP_UNINITIALIZED: u32 = 0x4000000;

const MREMAP_MAYMOVE: u32 = 1;
const MREMAP_FIXED: u32 = 2;
const MREMAP_DONTUNMAP: u32 = 4;

syscall_table! { pub fn mm_table;
    BRK => sys_brk(addr: u64),
    MMAP => sys_mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: Fd, off: u64),
    MUNMAP => sys_munmap(addr: u64, len: u64),
    MPROTECT => sys_mprotect(addr: u64, len: u64, prot: u32),
    MREMAP => sys_mremap(old: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64),
    MADVISE => sys_madvise(addr: u64, len: u64, advice: i32),
    MSYNC => sys_msync(addr: u64, len: u64, flags: i32),
    MINCORE => sys_mincore(addr: u64, len: u64, vec: UserAddr),
    MLOCK => sys_mlock(addr: u64, len: u64),
    MLOCK2 => sys_mlock2(addr: u64, len: u64, flags: u32),
    MUNLOCK => sys_munlock(addr: u64, len: u64),
    MLOCKALL => sys_mlockall(flags: i32),
    MUNLOCKALL => sys_munlockall(),
    MSEAL => sys_mseal(addr: u64, len: u64, flags: u64),
    REMAP_FILE_PAGES => sys_remap_file_pages(start: u64, size: u64, prot: u64, pgoff: u64, flags: u64),
}

impl Mm {
    /// brk(2): moves the end of the heap; returns the new (or old) end.
    pub fn brk(&self, addr: u64) -> u64 {
        let mut m = self.lock();
        let (start, cur) = (m.brk_start, m.brk);
        if addr < start || addr >= task_size() {
            return cur;
        }
        let (Some(old_top), Some(new_top)) = (page_up(cur), page_up(addr)) else {
            return cur;
        };
        if new_top > old_top {
            if m.vmas.overlaps(old_top, new_top) {
                return cur;
            }
            let vma = Vma {
                start: old_top,
                end: new_top,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                growsdown: false,
                backing: Backing::Anon,
                name: Some("[heap]"),
                flags: 0,
                anon_file: None,
            };
            if self.map_area_locked(&mut m, vma).is_err() {
                self.unmap_locked(&mut m, old_top, new_top);
                return cur;
            }
        } else if new_top < old_top {
            if Self::sealed_in(&m, new_top, old_top) {
                return cur;
            }
            self.unmap_locked(&mut m, new_top, old_top);
        }
        m.brk = addr;
        addr
    }

    /// Picks where a new area of `len` bytes goes: the hint if free, else
    /// the highest free range below mmap_base.
    fn choose_addr(m: &MmInner, hint: u64, len: u64) -> KResult<u64> {
        if hint != 0 {
            let h = page_down(hint).max(MMAP_MIN);
            if h.checked_add(len).is_some_and(|e| e <= task_size()) && !m.vmas.overlaps(h, h + len)
            {
                return Ok(h);
            }
        }
        m.vmas
            .find_free_top_down(len, MMAP_MIN, m.mmap_base)
            .or_else(|| m.vmas.find_free_top_down(len, MMAP_MIN, task_size()))
            .ok_or(crate::errno!(ENOMEM))
    }

    /// mmap(2) once the file (if any) is resolved.
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(crate::fs::FileRef, u64)>,
    ) -> KResult<u64> {
        let len = page_up(len).ok_or(crate::errno!(ENOMEM))?;
        let shared = flags & MAP_TYPE != MAP_PRIVATE;
        // Shared anonymous memory is a file of its own (mm::shmem), which
        // cannot grow down (Linux's do_mmap).
        let file = match file {
            None if shared && flags & MAP_GROWSDOWN != 0 => return error!(EINVAL),
            None if shared => Some((super::shmem::new_object(len)?, 0)),
            f => f,
        };
        let backing = match file {
            None => Backing::Anon,
            Some((f, off)) => {
                let key = f.mmap_key()?;
                f.mmap_check(off, len)?;
                let size = f.size()?;
                Backing::File {
                    file: f,
                    pgoff: off / PAGE,
                    key,
                    size,
                }
            }
        };
        let mut m = self.lock();
        let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
            if !addr.is_multiple_of(PAGE) {
                return error!(EINVAL);
            }
            // As Linux: beyond TASK_SIZE is ENOMEM (get_unmapped_area),
            // below mmap_min_addr EPERM (security_mmap_addr).
            if addr.checked_add(len).is_none_or(|e| e > task_size()) {
                return error!(ENOMEM);
            }
            if addr < MMAP_MIN {
                return error!(EPERM);
            }
            if m.vmas.overlaps(addr, addr + len) {
                if flags & MAP_FIXED_NOREPLACE != 0 {
                    return error!(EEXIST);
                }
                if Self::sealed_in(&m, addr, addr + len) {
                    return error!(EPERM);
                }
                self.unmap_locked(&mut m, addr, addr + len);
            }
            addr
        } else {
            Self::choose_addr(&m, addr, len)?
        };
        let vma = Vma {
            start,
            end: start + len,
            prot,
            shared,
            growsdown: flags & MAP_GROWSDOWN != 0,
            backing,
            name: None,
            flags: 0,
            anon_file: None,
        };
        if let Err(e) = self.map_area_locked(&mut m, vma) {
            self.unmap_locked(&mut m, start, start + len);
            return Err(e);
        }
        if flags & MAP_POPULATE != 0 && prot != 0 {
            let _ = self.populate(&mut m, start, start + len);
        }
        Ok(start)
    }

    pub fn munmap(&self, addr: u64, len: u64) -> KResult<()> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return error!(EINVAL);
        }
        let len = page_up(len).ok_or(crate::errno!(EINVAL))?;
        let end = addr.checked_add(len).ok_or(crate::errno!(EINVAL))?;
        if end > task_size() {
            return error!(EINVAL);
        }
        let mut m = self.lock();
        if Self::sealed_in(&m, addr, end) {
            return error!(EPERM);
        }
        self.unmap_locked(&mut m, addr, end);
        Ok(())
    }

    /// Whether any area overlapping `[start, end)` is sealed (mseal).
    fn sealed_in(m: &MmInner, start: u64, end: u64) -> bool {
        m.vmas
            .iter()
            .any(|v| v.start < end && v.end > start && v.flags & vm_flags::SEALED != 0)
    }

    /// mseal(2): seals every area of `[start, end)`; a hole anywhere is
    /// ENOMEM and seals nothing.
    pub fn seal(&self, start: u64, end: u64) -> KResult<()> {
        let mut m = self.lock();
        if !m.vmas.covers(start, end) {
            return error!(ENOMEM);
        }
        m.vmas
            .update_range(start, end, |v| v.flags |= vm_flags::SEALED);
        Ok(())
    }

    /// Whether madvise's discarding advice must be refused on
    /// `[start, end)`: sealed private anonymous memory that is not
    /// writable (Linux's mseal: discarding it would change read-only data).
    pub fn discard_sealed(&self, start: u64, end: u64) -> bool {
        let m = self.lock();
        let refused = m.vmas.iter().any(|v| {
            v.start < end
                && v.end > start
                && v.flags & vm_flags::SEALED != 0
                && !v.shared
                && matches!(v.backing, Backing::Anon)
                && v.prot & PROT_WRITE == 0
        });
        refused
    }

    pub fn mprotect(&self, addr: u64, len: u64, prot: u32) -> KResult<()> {
        const PROT_GROWSDOWN: u32 = 0x0100_0000;
        const PROT_GROWSUP: u32 = 0x0200_0000;
        // Linux's order (do_mprotect_pkey): both grow flags, alignment,
        // length 0 (success), wrap-around, unknown bits, then the areas.
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        if grows == PROT_GROWSDOWN | PROT_GROWSUP || !addr.is_multiple_of(PAGE) {
            return error!(EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let len = page_up(len).ok_or(crate::errno!(ENOMEM))?;
        let end = addr
            .checked_add(len)
            .filter(|&e| e > addr)
            .ok_or(crate::errno!(ENOMEM))?;
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | grows) != 0 {
            return error!(EINVAL);
        }
        let prot = prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
        let mut m = self.lock();
        self.patch_invalidate(&mut m, addr, end, true);
        let mut addr = addr;
        if grows != 0 {
            // The first area ending above `addr`: PROT_GROWSDOWN extends
            // the change down to its start, if it is a stack; no area
            // grows up on x86 (EINVAL).
            let Some(v) = m.vmas.next_after(addr) else {
                return error!(ENOMEM);
            };
            if grows == PROT_GROWSDOWN {
                if v.start >= end {
                    return error!(ENOMEM);
                }
                if !v.growsdown {
                    return error!(EINVAL);
                }
                addr = v.start;
            } else {
                if v.start > addr {
                    return error!(ENOMEM);
                }
                return error!(EINVAL);
            }
        }
        if !m.vmas.covers(addr, end) {
            return error!(ENOMEM);
        }
        if Self::sealed_in(&m, addr, end) {
            return error!(EPERM);
        }
        // Special mappings allow only their own protections (the vvar
        // page is never writable or executable).
        for v in m.vmas.iter().filter(|v| v.start < end && v.end > addr) {
            if let Backing::Special { map, .. } = &v.backing {
                if prot & !map.max_prot != 0 {
                    return error!(EACCES);
                }
            }
        }
        // Files of a noexec mount never become executable.
        if prot & PROT_EXEC != 0
            && m.vmas
                .iter()
                .any(|v| v.start < end && v.end > addr && v.flags & vm_flags::NO_MAY_EXEC != 0)
        {
            return error!(EACCES);
        }
        // Writable shared file mappings need a file opened for writing.
        if prot & PROT_WRITE != 0 {
            for v in m.vmas.iter().filter(|v| v.start < end && v.end > addr) {
                if let (true, Backing::File { file, .. }) = (v.shared, &v.backing) {
                    if !file.can_write() || v.flags & vm_flags::NO_MAY_WRITE != 0 {
                        return error!(EACCES);
                    }
                }
            }
        }
        m.vmas.update_range(addr, end, |v| v.prot = prot);
        let ptes: Vec<(u64, bool)> = m
            .ptes
            .range(addr / PAGE..end / PAGE)
            .map(|(&k, p)| (k, p.cow))
            .collect();
        let mut populate_from: Option<u64> = None;
        for (vpn, cow) in ptes {
            m.ops.push(super::HostOp::Protect {
                addr: vpn * PAGE,
                len: PAGE,
                prot: super::host_prot(prot, cow),
            });
        }
        // Anonymous areas that just became accessible are mapped ahead.
        if prot != 0 && len <= super::MAP_AHEAD_MAX {
            if let Some(v) = m.vmas.find(addr) {
                if matches!(v.backing, Backing::Anon) {
                    populate_from = Some(addr);
                }
            }
        }
        if let Some(a) = populate_from {
            let mut at = a;
            while at < end {
                let Some(v) = m.vmas.find(at).cloned() else {
                    break;
                };
                if matches!(v.backing, Backing::Anon) {
                    self.populate(&mut m, at, v.end.min(end))?;
                }
                at = v.end;
            }
        }
        Ok(())
    }

    /// mremap(2), by copy of the page-table entries (no data is copied).
    pub fn mremap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> KResult<u64> {
        if !old.is_multiple_of(PAGE)
            || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        {
            return error!(EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
            return error!(EINVAL);
        }
        // MREMAP_DONTUNMAP is always a move, never a resize (compared
        // before the lengths are rounded, as Linux).
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if dontunmap && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
            return error!(EINVAL);
        }
        let old_len = page_up(old_len).ok_or(crate::errno!(EINVAL))?;
        let new_len = page_up(new_len).ok_or(crate::errno!(EINVAL))?;
        // An old length of 0 asks for a second mapping of the same pages
        // (shared areas only, below); a new length of 0 is nonsense.
        if new_len == 0 {
            return error!(EINVAL);
        }
        // Linux's mremap_to, for MREMAP_DONTUNMAP's new address (a hint
        // unless MREMAP_FIXED): aligned, inside the address space, not
        // overlapping the old range, checked before the old area is.
        if dontunmap
            && (!new_addr.is_multiple_of(PAGE)
                || new_len > task_size()
                || new_addr > task_size() - new_len
                || (old.saturating_add(old_len) > new_addr
                    && new_addr.saturating_add(new_len) > old))
        {
            return error!(EINVAL);
        }
        let mut m = self.lock();
        let grown = old.saturating_add(old_len.max(new_len));
        self.patch_invalidate(&mut m, old, grown, true);
        if flags & MREMAP_FIXED != 0 {
            self.patch_invalidate(&mut m, new_addr, new_addr.saturating_add(new_len), true);
        }
        let Some(vma) = m.vmas.find(old).cloned() else {
            return error!(EFAULT);
        };
        // Duplicating a private area would make an unrelated one: Linux
        // refuses it (vma_to_resize).
        if old_len == 0 && !vma.shared {
            return error!(EINVAL);
        }
        // Special mappings (vDSO, vvar) are VM_DONTEXPAND on Linux: they
        // cannot leave an empty copy behind.
        if dontunmap && matches!(vma.backing, Backing::Special { .. }) {
            return error!(EINVAL);
        }
        if old + old_len > vma.end {
            return error!(EFAULT);
        }
        if Self::sealed_in(&m, old, old + old_len) {
            return error!(EPERM);
        }
        // Special mappings (vDSO, vvar) move whole or not at all, as
        // Linux's special mappings: they never grow (VM_DONTEXPAND) nor
        // split.
        if matches!(vma.backing, Backing::Special { .. }) {
            if new_len > old_len {
                return error!(EFAULT);
            }
            if old != vma.start || old_len != vma.len() || new_len != old_len {
                return error!(EINVAL);
            }
        }
        if flags & MREMAP_FIXED == 0 && !dontunmap {
            if new_len <= old_len {
                self.unmap_locked(&mut m, old + new_len, old + old_len);
                return Ok(old);
            }
            // Grow in place if the space after is free.
            let grow_end = old.checked_add(new_len).ok_or(crate::errno!(ENOMEM))?;
            if old + old_len == vma.end
                && grow_end <= task_size()
                && !m.vmas.overlaps(old + old_len, grow_end)
            {
                let mut ext = vma.clone();
                ext.start = old + old_len;
                ext.end = grow_end;
                ext.shift_pgoff((ext.start - vma.start) / PAGE);
                ext.name = vma.name;
                self.map_area_locked(&mut m, ext)?;
                return Ok(old);
            }
            if flags & MREMAP_MAYMOVE == 0 {
                return error!(ENOMEM);
            }
        }
        // Move: a new area, the old pages transferred, the old area gone.
        let dest = if flags & MREMAP_FIXED != 0 {
            if !new_addr.is_multiple_of(PAGE)
                || new_addr < MMAP_MIN
                || new_addr
                    .checked_add(new_len)
                    .is_none_or(|e| e > task_size())
            {
                return error!(EINVAL);
            }
            if new_addr < old + old_len && old < new_addr + new_len {
                return error!(EINVAL);
            }
            if Self::sealed_in(&m, new_addr, new_addr + new_len) {
                return error!(EPERM);
            }
            self.unmap_locked(&mut m, new_addr, new_addr + new_len);
            // As Linux, which unmaps the destination before it looks the
            // source up: a duplicate of a page just unmapped is EFAULT.
            if old_len == 0 && m.vmas.find(old).is_none() {
                return error!(EFAULT);
            }
            new_addr
        } else {
            // MREMAP_DONTUNMAP's new address is a hint, as mmap's.
            let hint = if dontunmap { new_addr } else { 0 };
            Self::choose_addr(&m, hint, new_len)?
        };
        let mut nv = vma.clone();
        nv.start = dest;
        nv.end = dest + new_len;
        nv.shift_pgoff((old - vma.start) / PAGE);
        let keep = old_len.min(new_len);
        let moved: Vec<(u64, super::Pte)> = m
            .ptes
            .range(old / PAGE..(old + keep) / PAGE)
            .map(|(&k, &p)| (k, p))
            .collect();
        for (vpn, p) in &moved {
            self.phys.get(p.pfn);
            let nvpn = vpn - old / PAGE + dest / PAGE;
            m.ptes.insert(nvpn, *p);
        }
        m.vmas.insert(nv.clone());
        for (vpn, p) in &moved {
            let nvpn = vpn - old / PAGE + dest / PAGE;
            m.ops.push(super::HostOp::Map {
                addr: nvpn * PAGE,
                len: PAGE,
                prot: super::host_prot(nv.prot, p.cow),
                pfn: p.pfn,
            });
        }
        if dontunmap {
            // The old range stays mapped, emptied: its pages went with
            // the move (private anonymous memory faults in zeros, file
            // and shared areas their object's pages again). Its area is
            // no longer locked, as Linux clears VM_LOCKED on the old
            // area whole (the new one keeps the lock).
            let mut frames = Vec::new();
            for (vpn, _) in &moved {
                if let Some(p) = m.ptes.remove(vpn) {
                    frames.push(p.pfn);
                }
            }
            m.ops.push(super::HostOp::Unmap {
                addr: old,
                len: old_len,
            });
            m.frees.extend(frames);
            let unlock = !(vm_flags::LOCKED | vm_flags::LOCKONFAULT);
            m.vmas
                .update_range(vma.start, vma.end, |v| v.flags &= unlock);
        } else if old_len != 0 {
            self.unmap_locked(&mut m, old, old + old_len);
        }
        if matches!(nv.backing, Backing::Anon)
            && new_len > keep
            && new_len - keep <= super::MAP_AHEAD_MAX
        {
            self.populate(&mut m, dest + keep, dest + new_len)?;
        }
        Ok(dest)
    }

    /// Whether each page of `[addr, addr+len)` is resident, for mincore.
    pub fn residency(&self, addr: u64, len: u64) -> KResult<Vec<u8>> {
        let m = self.lock();
        let end = addr + len;
        if !m.vmas.covers(addr, end) {
            return error!(ENOMEM);
        }
        // Mapped pages count when their frame has really been written:
        // anonymous areas are mapped ahead, untouched pages are not
        // resident on Linux.
        let vpns = addr / PAGE..end / PAGE;
        let mapped: Vec<(u64, Pfn)> = vpns
            .clone()
            .filter_map(|vpn| m.ptes.get(&vpn).map(|p| (vpn, p.pfn)))
            .collect();
        let pfns: Vec<Pfn> = mapped.iter().map(|&(_, pfn)| pfn).collect();
        let touched = self.phys().resident(&pfns);
        let mut v = vec![0u8; (end / PAGE - addr / PAGE) as usize];
        for (&(vpn, _), t) in mapped.iter().zip(touched) {
            v[(vpn - addr / PAGE) as usize] = t as u8;
        }
        // Pages of file areas (shared anonymous memory's shmem object too)
        // that this address space does not map count when the file holds
        // them, as Linux's mincore asks the page cache: a page dropped by
        // MADV_DONTNEED stays in the file.
        let mut held: Vec<(u64, Pfn)> = Vec::new();
        for vma in m.vmas.iter().filter(|v| v.start < end && v.end > addr) {
            let Backing::File {
                file, pgoff, key, ..
            } = &vma.backing
            else {
                continue;
            };
            let ops = file.ops().ok().cloned();
            let memory_backed = ops
                .as_ref()
                .is_some_and(|o| crate::fs::vfs::memory_backed(o.as_ref()));
            let cache = &crate::kernel().page_cache;
            for vpn in vma.start.max(addr) / PAGE..vma.end.min(end) / PAGE {
                if m.ptes.contains_key(&vpn) {
                    continue;
                }
                let index = pgoff + (vpn - vma.start / PAGE);
                let pfn = if memory_backed {
                    ops.as_ref()
                        .and_then(|o| o.page_frame(index, false))
                        .and_then(|r| r.ok())
                } else {
                    cache.lookup(*key, index)
                };
                if let Some(pfn) = pfn {
                    held.push((vpn, pfn));
                }
            }
        }
        // A frame the object allocated ahead but nobody wrote is not
        // resident, as for anonymous memory above.
        let pfns: Vec<Pfn> = held.iter().map(|&(_, pfn)| pfn).collect();
        let touched = self.phys().resident(&pfns);
        for (&(vpn, _), t) in held.iter().zip(touched) {
            v[(vpn - addr / PAGE) as usize] = t as u8;
        }
        self.phys().put_many(&pfns);
        Ok(v)
    }

    /// msync's walk over the areas of `[start, end)` (Linux's order): a
    /// hole is ENOMEM at once for MS_ASYNC alone, else at the end;
    /// MS_INVALIDATE of a locked area is EBUSY.
    pub fn msync_check(
        &self,
        start: u64,
        end: u64,
        invalidate: bool,
        async_only: bool,
    ) -> KResult<()> {
        let m = self.lock();
        let mut at = start;
        let mut hole = false;
        for v in m.vmas.iter().filter(|v| v.end > start && v.start < end) {
            if v.start > at {
                if async_only {
                    return error!(ENOMEM);
                }
                hole = true;
            }
            if invalidate && v.flags & vm_flags::LOCKED != 0 {
                return error!(EBUSY);
            }
            at = v.end;
        }
        if hole || at < end {
            return error!(ENOMEM);
        }
        Ok(())
    }

    pub fn is_mapped(&self, addr: u64, end: u64) -> bool {
        self.lock().vmas.covers(addr, end)
    }

    /// Bytes of locked areas (VmLck).
    pub fn locked_bytes(&self) -> u64 {
        let m = self.lock();
        Self::locked_in(&m, 0, task_size())
    }

    fn locked_in(m: &MmInner, start: u64, end: u64) -> u64 {
        m.vmas
            .iter()
            .filter(|v| v.flags & vm_flags::LOCKED != 0 && v.start < end && v.end > start)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum()
    }

    /// mlock/munlock of `[start, end)`: sets `flags` (LOCKED, with
    /// LOCKONFAULT for MLOCK_ONFAULT) or clears both (`flags` 0). A lock
    /// beyond `limit` bytes in all gives ENOMEM; locking faults the pages
    /// in unless on fault.
    pub fn set_locked(&self, start: u64, end: u64, flags: u32, limit: u64) -> KResult<()> {
        let mut m = self.lock();
        if flags != 0 {
            let total = Self::locked_in(&m, 0, task_size());
            let already = Self::locked_in(&m, start, end);
            if total - already + (end - start) > limit {
                return error!(ENOMEM);
            }
        }
        // As Linux: the areas up to the first hole change, then ENOMEM.
        let (start, end, hole) = match m.vmas.covered_until(start, end) {
            e if e == start && start < end => return error!(ENOMEM),
            e => (start, e, e < end),
        };
        // Special mappings (vvar, vDSO) are never locked, as Linux's
        // VM_SPECIAL areas.
        let all = vm_flags::LOCKED | vm_flags::LOCKONFAULT;
        m.vmas.update_range(start, end, |v| {
            if !matches!(v.backing, Backing::Special { .. }) {
                v.flags = (v.flags & !all) | flags
            }
        });
        if flags & vm_flags::LOCKONFAULT == 0 && flags != 0 {
            let areas: Vec<(u64, u64)> = m
                .vmas
                .iter()
                .filter(|v| v.start < end && v.end > start && v.prot != 0)
                .filter(|v| !matches!(v.backing, Backing::Special { .. }))
                .map(|v| (v.start.max(start), v.end.min(end)))
                .collect();
            for (a, b) in areas {
                self.populate(&mut m, a, b)?;
            }
        }
        if hole {
            return error!(ENOMEM);
        }
        Ok(())
    }

    /// mlockall/munlockall: every area and, with `future`, every later one.
    pub fn set_locked_all(
        &self,
        current: Option<u32>,
        future: Option<u32>,
        limit: u64,
    ) -> KResult<()> {
        if let Some(flags) = current {
            let total: u64 = self.lock().vmas.iter().map(|v| v.len()).sum();
            if flags != 0 && total > limit {
                return error!(ENOMEM);
            }
            let areas: Vec<(u64, u64)> =
                self.lock().vmas.iter().map(|v| (v.start, v.end)).collect();
            for (a, b) in areas {
                self.set_locked(a, b, flags, u64::MAX)?;
            }
        }
        if let Some(flags) = future {
            self.lock().def_flags = flags;
        }
        Ok(())
    }

    /// madvise's per-area flags: sets `set` and clears `clear` on every
    /// area of `[start, end)`; `check` may refuse an area (EINVAL).
    pub fn advise_flags(
        &self,
        start: u64,
        end: u64,
        set: u32,
        clear: u32,
        check: impl Fn(&Vma) -> bool,
    ) -> KResult<()> {
        let mut m = self.lock();
        if m.vmas
            .iter()
            .any(|v| v.start < end && v.end > start && !check(v))
        {
            return error!(EINVAL);
        }
        // As Linux: every mapped part changes; a hole anywhere is ENOMEM.
        m.vmas
            .update_range(start, end, |v| v.flags = (v.flags & !clear) | set);
        if !m.vmas.covers(start, end) {
            return error!(ENOMEM);
        }
        Ok(())
    }
}

fn sys_brk(ctx: &mut SyscallContext<'_>, addr: u64) -> KResult<u64> {
    Ok(ctx.mm().brk(addr))
}

fn sys_mmap(
    ctx: &mut SyscallContext<'_>,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    fd: Fd,
    off: u64,
) -> KResult<u64> {
    const KNOWN: u32 = MAP_TYPE
        | MAP_FIXED
        | MAP_ANONYMOUS
        | MAP_GROWSDOWN
        | MAP_DENYWRITE
        | MAP_EXECUTABLE
        | MAP_LOCKED
        | MAP_NORESERVE
        | MAP_POPULATE
        | MAP_NONBLOCK
        | MAP_STACK
        | MAP_HUGETLB
        | MAP_SYNC
        | MAP_FIXED_NOREPLACE
        | MAP_UNINITIALIZED
        | 0xfc00_0000; // huge page size bits
                       // Linux's order: the offset's alignment (sys_mmap), then the
                       // descriptor (EBADF, ksys_mmap_pgoff), then do_mmap's checks.
    if !off.is_multiple_of(PAGE) {
        return error!(EINVAL);
    }
    let f = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        Some(crate::fs::fd_get(ctx.task, fd.0)?)
    };
    if len == 0 {
        return error!(EINVAL);
    }
    let typ = flags & MAP_TYPE;
    if typ != MAP_SHARED && typ != MAP_PRIVATE && typ != MAP_SHARED_VALIDATE {
        return error!(EINVAL);
    }
    if typ == MAP_SHARED_VALIDATE && flags & !KNOWN != 0 {
        return error!(EOPNOTSUPP);
    }
    if flags & MAP_HUGETLB != 0 {
        return error!(EINVAL);
    }
    // Unknown protection bits are ignored, as Linux's calc_vm_prot_bits.
    let prot = prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
    if page_up(len).is_none_or(|l| l > task_size()) {
        return error!(ENOMEM);
    }
    // A file of a noexec mount: READ_IMPLIES_EXEC does not apply, and the
    // mapping may never become executable (Linux's VM_MAYEXEC clear).
    let noexec = f.as_ref().is_some_and(|f| f.path.mnt.noexec());
    let prot = if noexec {
        prot
    } else {
        crate::task::persona::implied_prot(ctx.task, prot)
    };
    // A shared mapping of a memfd sealed against writes may never write
    // (mprotect's EACCES), as Linux clears its VM_MAYWRITE.
    let mut no_may_write = false;
    let file = match f {
        None => None,
        Some(f) => {
            no_may_write = typ != MAP_PRIVATE
                && crate::fs::memfd::seals_of(&f)
                    & (crate::fs::memfd::F_SEAL_WRITE | crate::fs::memfd::F_SEAL_FUTURE_WRITE)
                    != 0;
            if !f.can_read() {
                return error!(EACCES);
            }
            if noexec && prot & PROT_EXEC != 0 {
                return error!(EPERM);
            }
            if f.is_dev_zero() {
                // /dev/zero maps as anonymous memory: private, or shared as
                // its own shmem object (mm::shmem), as Linux. A private
                // area keeps the file for /proc/PID/maps (Linux's vm_file).
                let at = ctx
                    .mm()
                    .mmap(addr, len, prot, flags | MAP_ANONYMOUS, None)?;
                if typ == MAP_PRIVATE {
                    let st = f.path.inode().stat()?;
                    let key = (crate::fs::types::encode_dev(st.dev.0, st.dev.1), st.ino);
                    let end = at + page_up(len).unwrap_or(len);
                    ctx.mm().set_anon_file(at, end, f, off / PAGE, key);
                }
                return Ok(at);
            }
            if typ != MAP_PRIVATE && prot & PROT_WRITE != 0 && !f.can_write() {
                return error!(EACCES);
            }
            if typ != MAP_PRIVATE
                && prot & PROT_WRITE != 0
                && crate::fs::memfd::seals_of(&f)
                    & (crate::fs::memfd::F_SEAL_WRITE | crate::fs::memfd::F_SEAL_FUTURE_WRITE)
                    != 0
            {
                return error!(EPERM);
            }
            if off.checked_add(len).is_none() {
                return error!(EOVERFLOW);
            }
            Some((f, off))
        }
    };
    let at = ctx.mm().mmap(addr, len, prot, flags, file)?;
    let set = if no_may_write {
        vm_flags::NO_MAY_WRITE
    } else {
        0
    } | if noexec { vm_flags::NO_MAY_EXEC } else { 0 };
    if set != 0 {
        let end = at + page_up(len).unwrap_or(len);
        ctx.mm().advise_flags(at, end, set, 0, |_| true)?;
    }
    Ok(at)
}

fn sys_munmap(ctx: &mut SyscallContext<'_>, addr: u64, len: u64) -> KResult<u64> {
    ctx.mm().munmap(addr, len).map(|_| 0)
}

fn sys_mprotect(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, prot: u32) -> KResult<u64> {
    let prot = crate::task::persona::implied_prot(ctx.task, prot);
    ctx.mm().mprotect(addr, len, prot).map(|_| 0)
}

fn sys_mremap(
    ctx: &mut SyscallContext<'_>,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new_addr: u64,
) -> KResult<u64> {
    ctx.mm().mremap(old, old_len, new_len, flags, new_addr)
}

fn sys_madvise(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, advice: i32) -> KResult<u64> {
    advise(&ctx.mm(), addr, len, advice)
}

/// madvise(2) of `[addr, addr+len)` in `mm` with `advice` (also
/// process_madvise's, once per iovec).
pub(super) fn advise(mm: &Mm, addr: u64, len: u64, advice: i32) -> KResult<u64> {
    const MADV_DONTNEED: i32 = 4;
    const MADV_FREE: i32 = 8;
    const MADV_REMOVE: i32 = 9;
    const MADV_DONTFORK: i32 = 10;
    const MADV_DOFORK: i32 = 11;
    const MADV_DONTDUMP: i32 = 16;
    const MADV_DODUMP: i32 = 17;
    const MADV_WIPEONFORK: i32 = 18;
    const MADV_KEEPONFORK: i32 = 19;
    const MADV_COLD: i32 = 20;
    const MADV_PAGEOUT: i32 = 21;
    const MADV_DONTNEED_LOCKED: i32 = 24;
    if !addr.is_multiple_of(PAGE) {
        return error!(EINVAL);
    }
    let len = page_up(len).ok_or(crate::errno!(EINVAL))?;
    let end = addr.checked_add(len).ok_or(crate::errno!(EINVAL))?;
    if matches!(
        advice,
        MADV_DONTNEED
            | MADV_FREE
            | MADV_REMOVE
            | MADV_DONTFORK
            | MADV_WIPEONFORK
            | MADV_DONTNEED_LOCKED
    ) && mm.discard_sealed(addr, end)
    {
        return error!(EPERM);
    }
    let any = |_: &Vma| true;
    let flags = |set, clear| mm.advise_flags(addr, end, set, clear, any).map(|_| 0);
    match advice {
        // Discarding advice, walked area by area (mm::discard).
        MADV_FREE => mm.discard(addr, end, Discard::Free).map(|_| 0),
        MADV_DONTNEED => mm.discard(addr, end, Discard::DontNeed).map(|_| 0),
        MADV_DONTNEED_LOCKED => mm.discard(addr, end, Discard::DontNeedLocked).map(|_| 0),
        // Deactivating or paging out: nothing of it is observable here
        // (ruml keeps no LRU, memory is never swapped), but locked areas
        // refuse it as Linux's can_madv_lru_vma.
        MADV_COLD | MADV_PAGEOUT => mm
            .advise_flags(addr, end, 0, 0, |v| v.flags & vm_flags::LOCKED == 0)
            .map(|_| 0),
        MADV_REMOVE => mm.remove_range(addr, end).map(|_| 0),
        MADV_DONTFORK => flags(vm_flags::DONTFORK, 0),
        MADV_DOFORK => flags(0, vm_flags::DONTFORK),
        MADV_DONTDUMP => flags(vm_flags::DONTDUMP, 0),
        MADV_DODUMP => flags(0, vm_flags::DONTDUMP),
        // Only private anonymous memory can be wiped for a child.
        MADV_WIPEONFORK => mm
            .advise_flags(addr, end, vm_flags::WIPEONFORK, 0, |v| {
                !v.shared && matches!(v.backing, Backing::Anon)
            })
            .map(|_| 0),
        MADV_KEEPONFORK => flags(0, vm_flags::WIPEONFORK),
        // Hints about access patterns, hugepages, merging, collapsing:
        // accepted; they change no result a program can observe here.
        // MADV_HWPOISON and MADV_SOFT_OFFLINE (100, 101) are EINVAL, as
        // on a kernel without CONFIG_MEMORY_FAILURE: ruml has no memory
        // failure handling.
        0..=3 | 12..=15 | 22..=23 | 25 => {
            if !mm.is_mapped(addr, end) && len != 0 {
                return error!(ENOMEM);
            }
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// remap_file_pages(2): emulated by a new mapping (see mm::remove).
fn sys_remap_file_pages(
    ctx: &mut SyscallContext<'_>,
    start: u64,
    size: u64,
    prot: u64,
    pgoff: u64,
    _flags: u64,
) -> KResult<u64> {
    if prot != 0 {
        return error!(EINVAL);
    }
    ctx.mm().remap_file_pages(start, size, pgoff).map(|_| 0)
}

/// mseal(2) (Linux 6.10): seals the areas of a range against change.
fn sys_mseal(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, flags: u64) -> KResult<u64> {
    if flags != 0 || !addr.is_multiple_of(PAGE) {
        return error!(EINVAL);
    }
    let len = page_up(len).ok_or(crate::errno!(EINVAL))?;
    let end = addr.checked_add(len).ok_or(crate::errno!(EINVAL))?;
    if end == addr {
        return Ok(0);
    }
    if end > task_size() {
        return error!(ENOMEM);
    }
    ctx.mm().seal(addr, end).map(|_| 0)
}

fn sys_msync(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, flags: i32) -> KResult<u64> {
    const MS_ASYNC: i32 = 1;
    const MS_INVALIDATE: i32 = 2;
    const MS_SYNC: i32 = 4;
    if !addr.is_multiple_of(PAGE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & MS_ASYNC != 0 && flags & MS_SYNC != 0
    {
        return error!(EINVAL);
    }
    let end = addr
        .checked_add(page_up(len).ok_or(crate::errno!(ENOMEM))?)
        .ok_or(crate::errno!(ENOMEM))?;
    if end == addr {
        return Ok(0);
    }
    ctx.mm()
        .msync_check(addr, end, flags & MS_INVALIDATE != 0, flags == MS_ASYNC)?;
    // Shared mappings of memory-backed files (tmpfs) are the file's pages
    // already; those of host files are written back.
    ctx.mm().sync_range(addr, end);
    Ok(0)
}

fn sys_mincore(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, vec: UserAddr) -> KResult<u64> {
    if !addr.is_multiple_of(PAGE) {
        return error!(EINVAL);
    }
    let len = page_up(len).ok_or(crate::errno!(ENOMEM))?;
    let end = addr.checked_add(len).ok_or(crate::errno!(ENOMEM))?;
    if end > task_size() {
        return error!(ENOMEM);
    }
    if !ctx.mm().is_mapped(addr, end) {
        return error!(ENOMEM);
    }
    // In chunks, as Linux does, so a huge range costs no huge buffer.
    const CHUNK: u64 = 64 * 1024 * PAGE;
    let mut at = addr;
    while at < end {
        let n = (end - at).min(CHUNK);
        let v = ctx.mm().residency(at, n)?;
        let dst = vec
            .0
            .checked_add((at - addr) / PAGE)
            .ok_or(crate::errno!(EFAULT))?;
        ctx.mm().write_bytes(dst, &v)?;
        at += n;
    }
    Ok(0)
}

/// RLIMIT_MEMLOCK for the caller: unlimited with CAP_IPC_LOCK (root);
/// EPERM if it is 0 without.
fn memlock_limit(ctx: &SyscallContext<'_>) -> KResult<u64> {
    const RLIMIT_MEMLOCK: usize = 8;
    if ctx.task.privileged(crate::task::caps::Cap::IpcLock) {
        return Ok(u64::MAX);
    }
    match ctx.task.group.limit(RLIMIT_MEMLOCK)[0] {
        0 => error!(EPERM),
        l => Ok(l),
    }
}

/// The page range of an mlock-family call.
fn lock_range(addr: u64, len: u64) -> KResult<(u64, u64)> {
    let start = page_down(addr);
    let end = page_up(addr.checked_add(len).ok_or(crate::errno!(EINVAL))?)
        .ok_or(crate::errno!(ENOMEM))?;
    if end > task_size() {
        return error!(ENOMEM);
    }
    Ok((start, end))
}

fn sys_mlock(ctx: &mut SyscallContext<'_>, addr: u64, len: u64) -> KResult<u64> {
    sys_mlock2(ctx, addr, len, 0)
}

fn sys_mlock2(ctx: &mut SyscallContext<'_>, addr: u64, len: u64, flags: u32) -> KResult<u64> {
    const MLOCK_ONFAULT: u32 = 1;
    if flags & !MLOCK_ONFAULT != 0 {
        return error!(EINVAL);
    }
    let (start, end) = lock_range(addr, len)?;
    let limit = memlock_limit(ctx)?;
    let mut f = vm_flags::LOCKED;
    if flags & MLOCK_ONFAULT != 0 {
        f |= vm_flags::LOCKONFAULT;
    }
    ctx.mm().set_locked(start, end, f, limit)?;
    Ok(0)
}

fn sys_munlock(ctx: &mut SyscallContext<'_>, addr: u64, len: u64) -> KResult<u64> {
    let (start, end) = lock_range(addr, len)?;
    ctx.mm().set_locked(start, end, 0, u64::MAX)?;
    Ok(0)
}

fn sys_mlockall(ctx: &mut SyscallContext<'_>, flags: i32) -> KResult<u64> {
    const MCL_CURRENT: i32 = 1;
    const MCL_FUTURE: i32 = 2;
    const MCL_ONFAULT: i32 = 4;
    if flags & !7 != 0 || flags & (MCL_CURRENT | MCL_FUTURE) == 0 {
        return error!(EINVAL);
    }
    let limit = memlock_limit(ctx)?;
    let mut f = vm_flags::LOCKED;
    if flags & MCL_ONFAULT != 0 {
        f |= vm_flags::LOCKONFAULT;
    }
    let current = (flags & MCL_CURRENT != 0).then_some(f);
    let future = (flags & MCL_FUTURE != 0).then_some(f);
    ctx.mm().set_locked_all(current, future, limit)?;
    Ok(0)
}

fn sys_munlockall(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    ctx.mm().set_locked_all(Some(0), Some(0), u64::MAX)?;
    Ok(0)
}
