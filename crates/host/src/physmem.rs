//! Physical memory: guest RAM is one host memfd, sized by `mem=`, backed
//! lazily by the host (untouched pages cost nothing), mapped once into
//! ruml's own address space. The kernel reads and writes guest memory
//! through that mapping; stub processes map frames of the same file with
//! MAP_SHARED|MAP_FIXED, so both see the same bytes.
//!
//! Frames are allocated in runs (so a whole VMA range can be mapped with one
//! host mmap) and reference counted (copy-on-write sharing, page cache).
//! A frame whose count drops to zero has its backing punched out of the
//! memfd: the host gets the memory back and the next owner reads zeros.
//!
//! Locking: the free-run map is behind one mutex taken only to allocate or
//! free; reference counts are atomics.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::sys::check;
use crate::HostError;

pub const PAGE_SIZE: u64 = 4096;

/// A page frame number: the frame's byte offset in physmem is `pfn * 4096`.
pub type Pfn = u64;

/// Guest RAM. See the module documentation.
pub struct PhysMem {
    fd: RawFd,
    base: *mut u8,
    pages: u64,
    refs: Box<[AtomicU32]>,
    /// Free runs: start pfn → length in pages.
    free: Mutex<BTreeMap<Pfn, u64>>,
}

// SAFETY: `base` points at a MAP_SHARED mapping that lives as long as the
// PhysMem; all access goes through raw-pointer copies.
unsafe impl Send for PhysMem {}
// SAFETY: see above; the allocator state is behind a Mutex and atomics.
unsafe impl Sync for PhysMem {}

impl PhysMem {
    /// Creates guest RAM of `bytes` (rounded up to pages).
    pub fn new(bytes: u64) -> Result<PhysMem, HostError> {
        let pages = bytes.div_ceil(PAGE_SIZE).max(16);
        let name = c"ruml-physmem";
        // SAFETY: a valid C string and flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(HostError::last(
                "memfd_create for guest memory (ruml needs Linux >= 3.17 with memfd)",
            ));
        }
        // SAFETY: fd is ours.
        check(
            unsafe { libc::ftruncate(fd, (pages * PAGE_SIZE) as i64) } as i64,
            "sizing physmem",
        )?;
        // SAFETY: mapping a file we own, whole, shared; no fixed address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (pages * PAGE_SIZE) as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(HostError::last("mapping physmem into ruml"));
        }
        let refs = (0..pages).map(|_| AtomicU32::new(0)).collect();
        let mut free = BTreeMap::new();
        free.insert(0, pages);
        Ok(PhysMem {
            fd,
            base: base.cast(),
            pages,
            refs,
            free: Mutex::new(free),
        })
    }

    /// The memfd, for stub processes to map frames from.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub fn total_pages(&self) -> u64 {
        self.pages
    }

    /// Pages not allocated to anyone.
    pub fn free_pages(&self) -> u64 {
        self.lock_free().values().sum()
    }

    fn lock_free(&self) -> std::sync::MutexGuard<'_, BTreeMap<Pfn, u64>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allocates a run of between 1 and `want` zeroed frames, each with a
    /// reference count of 1: the first free run that holds all of `want`,
    /// else the largest there is. None when physmem is full.
    pub fn alloc_run(&self, want: u64) -> Option<(Pfn, u64)> {
        let want = want.max(1);
        let mut free = self.lock_free();
        let pick = free
            .iter()
            .find(|(_, &len)| len >= want)
            .or_else(|| free.iter().max_by_key(|(_, &len)| len))
            .map(|(&s, &l)| (s, l))?;
        let (start, len) = pick;
        free.remove(&start);
        let got = len.min(want);
        if len > got {
            free.insert(start + got, len - got);
        }
        drop(free);
        for pfn in start..start + got {
            self.refs[pfn as usize].store(1, Ordering::Relaxed);
        }
        if check_freed() {
            self.check_poison(start, got);
        }
        Some((start, got))
    }

    /// Allocates one zeroed frame with a reference count of 1.
    pub fn alloc(&self) -> Option<Pfn> {
        self.alloc_run(1).map(|(p, _)| p)
    }

    /// Takes another reference to an allocated frame.
    pub fn get(&self, pfn: Pfn) {
        self.refs[pfn as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The number of references to a frame.
    pub fn refcount(&self, pfn: Pfn) -> u32 {
        self.refs[pfn as usize].load(Ordering::Acquire)
    }

    /// Drops a reference; the last one frees the frame.
    pub fn put(&self, pfn: Pfn) {
        self.put_many(&[pfn]);
    }

    /// Drops one reference to each frame; frees those that reach zero,
    /// punching their backing out of the memfd in runs.
    pub fn put_many(&self, pfns: &[Pfn]) {
        let mut dead: Vec<Pfn> = Vec::new();
        for &pfn in pfns {
            let Some(r) = self.refs.get(pfn as usize) else {
                continue;
            };
            if r.fetch_sub(1, Ordering::AcqRel) == 1 {
                dead.push(pfn);
            }
        }
        if dead.is_empty() {
            return;
        }
        dead.sort_unstable();
        let mut runs: Vec<(Pfn, u64)> = Vec::new();
        for pfn in dead {
            match runs.last_mut() {
                Some((s, l)) if *s + *l == pfn => *l += 1,
                _ => runs.push((pfn, 1)),
            }
        }
        let poison = check_freed();
        for &(start, len) in &runs {
            if poison {
                // SAFETY: the run lies inside physmem and nobody holds it.
                unsafe {
                    std::ptr::write_bytes(self.page_ptr(start), POISON, (len * PAGE_SIZE) as usize)
                };
            } else {
                self.clear_run(start, len);
            }
        }
        let mut free = self.lock_free();
        for (start, len) in runs {
            let (mut s, mut l) = (start, len);
            if let Some((&ps, &pl)) = free.range(..s).next_back() {
                if ps + pl == s {
                    free.remove(&ps);
                    s = ps;
                    l += pl;
                }
            }
            if let Some(&nl) = free.get(&(s + l)) {
                free.remove(&(s + l));
                l += nl;
            }
            free.insert(s, l);
        }
    }

    /// The debugging check of `RUML_PHYSMEM_CHECK=1`: frames freed were
    /// filled with [`POISON`]; a byte that changed since means something
    /// (a stub's stale mapping, a kernel write through a stale frame
    /// number) wrote to the frame while nobody owned it. Reports it on
    /// stderr, then zeroes the frames as allocation promises.
    fn check_poison(&self, start: Pfn, len: u64) {
        for pfn in start..start + len {
            let p = self.page_ptr(pfn);
            let mut page = [0u8; PAGE_SIZE as usize];
            // SAFETY: one frame inside the mapping; we own it now.
            unsafe { std::ptr::copy_nonoverlapping(p, page.as_mut_ptr(), page.len()) };
            // A frame never freed since boot reads as zeros.
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            if let Some(off) = page.iter().position(|&b| b != POISON) {
                let end = (off + 32).min(page.len());
                let changed = page.iter().filter(|&&b| b != POISON).count();
                eprintln!(
                    "ruml: physmem check (level {}): frame {pfn:#x} written while free: \
                     {changed} bytes changed, first at {off:#x}: {:02x?}",
                    crate::stub::nesting_level(),
                    &page[off..end]
                );
            }
            // SAFETY: as above.
            unsafe { std::ptr::write_bytes(p, 0, PAGE_SIZE as usize) };
        }
    }

    /// Whether each frame holds a page of its own in the host's memory:
    /// written since it was allocated (by a guest through its stub's
    /// mapping, or by the kernel). Freed frames are punched out of the
    /// memfd and fresh ones read as zeros without a page behind them, so
    /// the host's mincore(2) on our mapping tells touched from untouched
    /// frames — a guest's mincore sees what Linux would show although
    /// anonymous areas are mapped ahead. One host call per run of
    /// consecutive frames.
    pub fn resident(&self, pfns: &[Pfn]) -> Vec<bool> {
        let mut out = vec![false; pfns.len()];
        let mut i = 0;
        while i < pfns.len() {
            let mut j = i + 1;
            while j < pfns.len() && pfns[j] == pfns[j - 1] + 1 && j - i < 4096 {
                j += 1;
            }
            if pfns[i] + (j - i) as u64 <= self.pages {
                let mut vec = vec![0u8; j - i];
                // SAFETY: the run lies inside our physmem mapping (checked
                // above); vec has one byte per page.
                let r = unsafe {
                    libc::mincore(
                        self.page_ptr(pfns[i]).cast(),
                        (j - i) * PAGE_SIZE as usize,
                        vec.as_mut_ptr(),
                    )
                };
                for (k, v) in vec.iter().enumerate() {
                    // A host without mincore on shared memory: everything
                    // mapped counts as resident, as before.
                    out[i + k] = r != 0 || v & 1 == 1;
                }
            }
            i = j;
        }
        out
    }

    /// The kernel's pointer to a frame. Guest threads may write the same
    /// memory concurrently; callers copy with raw pointer operations only.
    pub fn page_ptr(&self, pfn: Pfn) -> *mut u8 {
        assert!(pfn < self.pages, "pfn {pfn} outside physmem");
        // SAFETY: inside the mapping, checked above.
        unsafe { self.base.add((pfn * PAGE_SIZE) as usize) }
    }

    /// Copies bytes out of a frame, starting at `off` within it.
    pub fn read(&self, pfn: Pfn, off: usize, buf: &mut [u8]) {
        assert!(off + buf.len() <= PAGE_SIZE as usize);
        // SAFETY: the range lies in one frame of the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(self.page_ptr(pfn).add(off), buf.as_mut_ptr(), buf.len())
        }
    }

    /// Copies bytes into a frame, starting at `off` within it.
    pub fn write(&self, pfn: Pfn, off: usize, data: &[u8]) {
        assert!(off + data.len() <= PAGE_SIZE as usize);
        // SAFETY: the range lies in one frame of the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.page_ptr(pfn).add(off), data.len())
        }
    }

    /// Copies one whole frame into another (copy-on-write).
    pub fn copy_page(&self, from: Pfn, to: Pfn) {
        // SAFETY: two distinct frames inside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.page_ptr(from),
                self.page_ptr(to),
                PAGE_SIZE as usize,
            )
        }
    }

    /// Copies the buffers `iov` (memory the caller may read: the kernel's
    /// own, or frames of this mapping) into physmem from byte `pos`, with
    /// the host's pwritev on the memfd: a frame the host has not backed yet
    /// gets its page without zeroing it first and without a fault in ruml's
    /// mapping, and a whole run of frames moves in one host call (tmpfs
    /// writes). False if the host refused (nested inside another ruml, or
    /// an error): part may have been copied, and the caller copies the
    /// whole range by hand instead.
    pub fn write_iov(&self, pos: u64, iov: &[(*const u8, usize)]) -> bool {
        self.host_iov(
            pos,
            iov.iter().map(|&(p, n)| (p as *mut u8, n)).collect(),
            true,
        )
    }

    fn host_iov(&self, pos: u64, bufs: Vec<(*mut u8, usize)>, write: bool) -> bool {
        let total: usize = bufs.iter().map(|b| b.1).sum();
        if total == 0 {
            return true;
        }
        if crate::stub::nesting_level() > 0
            || pos
                .checked_add(total as u64)
                .is_none_or(|e| e > self.pages * PAGE_SIZE)
        {
            return false;
        }
        let mut iov: Vec<libc::iovec> = bufs
            .iter()
            .filter(|b| b.1 > 0)
            .map(|&(p, n)| libc::iovec {
                iov_base: p.cast(),
                iov_len: n,
            })
            .collect();
        let (mut first, mut at) = (0usize, pos);
        while first < iov.len() {
            let cnt = (iov.len() - first).min(1024) as i32;
            // SAFETY: every iovec names memory the caller vouches for
            // (readable for a write, writable for a read); the file range
            // lies inside physmem (checked above).
            let r = unsafe {
                if write {
                    libc::pwritev(self.fd, iov.as_ptr().add(first), cnt, at as i64)
                } else {
                    libc::preadv(self.fd, iov.as_ptr().add(first), cnt, at as i64)
                }
            };
            if r < 0 && crate::sys::errno() == libc::EINTR {
                continue;
            }
            if r <= 0 {
                return false;
            }
            let mut r = r as usize;
            at += r as u64;
            while r > 0 && first < iov.len() {
                let v = &mut iov[first];
                if r >= v.iov_len {
                    r -= v.iov_len;
                    first += 1;
                } else {
                    // SAFETY: advancing within the same buffer.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(r).cast() };
                    v.iov_len -= r;
                    r = 0;
                }
            }
        }
        true
    }

    /// Zeroes whole frames its caller holds alone, without touching them:
    /// their backing is punched out of the memfd (every mapping of them,
    /// in stubs too, then reads zeros), in runs of consecutive frames. A
    /// frame never written costs nothing. For MADV_DONTNEED on private
    /// anonymous memory, which so keeps its frames and host mappings.
    pub fn zero_frames(&self, pfns: &[Pfn]) {
        let mut i = 0;
        while i < pfns.len() {
            let mut j = i + 1;
            while j < pfns.len() && pfns[j] == pfns[j - 1] + 1 {
                j += 1;
            }
            let (start, len) = (pfns[i], (j - i) as u64);
            i = j;
            if start + len <= self.pages {
                self.clear_run(start, len);
            }
        }
    }

    /// Makes the run of `len` frames from `start` (inside physmem, held by
    /// nobody else) read as zeros: its backing is punched out of the memfd,
    /// so the host gets the memory back and every mapping of the frames,
    /// in stubs too, reads zeros. Nested inside another ruml, whose memfd
    /// hole punching does not yet drop pages other mappings of the file
    /// still hold (the stubs' mappings and ours would part ways), and on a
    /// host that cannot punch, the run is zeroed by hand instead
    /// (docs/debugging.md, Nesting).
    fn clear_run(&self, start: Pfn, len: u64) {
        let punched = crate::stub::nesting_level() == 0 && {
            // SAFETY: punching a range of our own memfd.
            let r = unsafe {
                libc::fallocate(
                    self.fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    (start * PAGE_SIZE) as i64,
                    (len * PAGE_SIZE) as i64,
                )
            };
            r == 0
        };
        if !punched {
            // SAFETY: the run lies inside physmem (callers check) and
            // nobody else holds it.
            unsafe { std::ptr::write_bytes(self.page_ptr(start), 0, (len * PAGE_SIZE) as usize) };
        }
    }

    /// Zeroes part of a frame.
    pub fn zero(&self, pfn: Pfn, off: usize, len: usize) {
        assert!(off + len <= PAGE_SIZE as usize);
        // SAFETY: the range lies in one frame of the mapping.
        unsafe { std::ptr::write_bytes(self.page_ptr(pfn).add(off), 0, len) }
    }
}

/// What `RUML_PHYSMEM_CHECK=1` fills freed frames with.
const POISON: u8 = 0x6b;

/// Whether `RUML_PHYSMEM_CHECK=1` is set: freed frames are filled with
/// [`POISON`] and checked when allocated again (docs/debugging.md).
fn check_freed() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RUML_PHYSMEM_CHECK").is_some_and(|v| v == "1"))
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        // SAFETY: unmapping and closing what new() made.
        unsafe {
            libc::munmap(self.base.cast(), (self.pages * PAGE_SIZE) as usize);
            libc::close(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_coalesce_and_zero() {
        let pm = PhysMem::new(64 * PAGE_SIZE).unwrap();
        let (a, n) = pm.alloc_run(8).unwrap();
        assert_eq!(n, 8);
        pm.write(a, 0, b"dirty");
        pm.get(a);
        pm.put(a);
        assert_eq!(pm.refcount(a), 1);
        let all: Vec<Pfn> = (a..a + 8).collect();
        pm.put_many(&all);
        assert_eq!(pm.free_pages(), 64);
        let (b, n) = pm.alloc_run(64).unwrap();
        assert_eq!((b, n), (0, 64));
        let mut buf = [1u8; 5];
        pm.read(a, 0, &mut buf);
        assert_eq!(buf, [0; 5], "a freed frame comes back zeroed");
    }
}
