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
//! The punch is left to a background thread, the *reclaimer* (as gVisor's
//! memory file decommits freed memory): a freed run goes into a queue and
//! reaches the free map only once punched, so no frame is handed out
//! before it reads as zeros and shows as not resident. An allocation that
//! finds no run large enough punches the queue itself; the queue is
//! bounded ([`MAX_UNPUNCHED`]), beyond which the freeing thread punches.
//! The same thread *backs ahead* runs the kernel is about to see touched
//! one after another (a sequential first touch of anonymous memory):
//! `fallocate` gives each frame its host page in one call, so the guest's
//! first write finds it and the host's fault only maps it. A frame backed
//! ahead but not yet touched is not up to date in the host's page cache:
//! it reads as zeros and the host's mincore calls it not resident, so
//! [`PhysMem::resident`] (mincore, pagemap, VmRSS in the guest) still
//! counts only frames written or read.
//!
//! Locking: the free-run map, the reclaim queue and the back-ahead queue
//! are behind one mutex taken only to allocate, free or take work;
//! reference counts are atomics.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    /// The allocator's state, shared with the reclaimer thread.
    shared: Arc<Shared>,
}

/// Most freed pages waiting for the reclaimer to punch them; past it the
/// freeing thread punches its own (so freed guest memory goes back to the
/// host promptly however fast a guest frees).
const MAX_UNPUNCHED: u64 = 64 << 8; // 64 MiB
/// Most runs queued to be backed ahead; older requests are dropped.
const MAX_BACK_AHEAD: usize = 8;

/// What the allocator and the reclaimer share.
struct Shared {
    /// Our own descriptor of the memfd (a dup), closed when the last of
    /// PhysMem and the reclaimer lets go: the reclaimer never calls the
    /// host on a descriptor number that may have been reused.
    fd: RawFd,
    state: Mutex<FreeState>,
    /// Wakes the reclaimer: work queued, or shutdown.
    work: Condvar,
    /// Wakes allocators waiting for the reclaimer's runs.
    punched: Condvar,
}

#[derive(Default)]
struct FreeState {
    /// Free runs, punched: start pfn → length in pages.
    runs: BTreeMap<Pfn, u64>,
    /// Runs freed but not punched yet, for the reclaimer.
    reclaim: Vec<(Pfn, u64)>,
    /// Pages in `reclaim` plus those the reclaimer is punching now.
    unpunched: u64,
    /// Runs to back ahead, oldest first.
    back_ahead: Vec<(Pfn, u64)>,
    /// Whether the reclaimer thread runs (started at first use).
    started: bool,
    /// PhysMem is gone: the reclaimer ends.
    shutdown: bool,
    /// The reclaimer sleeps on `work` (so queuing work must wake it; while
    /// it runs it finds the work itself, and a wake would be a wasted
    /// host call).
    sleeping: bool,
    /// Allocators waiting on `punched`.
    waiting: u32,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: our own dup of the memfd.
        unsafe { libc::close(self.fd) };
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FreeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Punches runs out of the memfd (or zeroes them by hand where the
    /// host cannot punch); see [`PhysMem::clear_run`].
    fn punch(&self, start: Pfn, len: u64) -> bool {
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
    }

    /// Returns punched runs to the free map, merging neighbours.
    fn insert_free(st: &mut FreeState, runs: &[(Pfn, u64)]) {
        for &(start, len) in runs {
            let (mut s, mut l) = (start, len);
            if let Some((&ps, &pl)) = st.runs.range(..s).next_back() {
                if ps + pl == s {
                    st.runs.remove(&ps);
                    s = ps;
                    l += pl;
                }
            }
            if let Some(&nl) = st.runs.get(&(s + l)) {
                st.runs.remove(&(s + l));
                l += nl;
            }
            st.runs.insert(s, l);
        }
    }

    /// The reclaimer: punches freed runs and backs runs ahead until
    /// PhysMem is dropped. Sleeps (no CPU) while there is nothing to do.
    fn reclaimer(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            if st.shutdown {
                return;
            }
            if let Some((start, len)) = st.back_ahead.pop() {
                drop(st);
                // SAFETY: allocating backing for a range of our own memfd;
                // existing pages keep their data (mode 0 never zeroes).
                // Failure (host memory short) only leaves the frames to be
                // backed at their first touch, as without this.
                unsafe {
                    libc::fallocate(
                        self.fd,
                        0,
                        (start * PAGE_SIZE) as i64,
                        (len * PAGE_SIZE) as i64,
                    )
                };
                st = self.lock();
                continue;
            }
            if !st.reclaim.is_empty() {
                let runs = std::mem::take(&mut st.reclaim);
                drop(st);
                for &(start, len) in &runs {
                    // Only made when punching works (not nested).
                    self.punch(start, len);
                }
                st = self.lock();
                st.unpunched -= runs.iter().map(|r| r.1).sum::<u64>();
                Shared::insert_free(&mut st, &runs);
                if st.waiting > 0 {
                    self.punched.notify_all();
                }
                continue;
            }
            st.sleeping = true;
            st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
            st.sleeping = false;
        }
    }

    /// Wakes the reclaimer for work just queued (the caller holds the
    /// lock, which it drops after).
    fn wake(&self, st: &mut FreeState) {
        if st.sleeping {
            st.sleeping = false;
            self.work.notify_one();
        }
    }

    /// Starts the reclaimer if it does not run yet (the caller holds the
    /// lock); false if no thread could be started.
    fn ensure_started(self: &Arc<Self>, st: &mut FreeState) -> bool {
        if !st.started {
            let me = self.clone();
            st.started = std::thread::Builder::new()
                .name("physmem-reclaim".into())
                .spawn(move || me.reclaimer())
                .is_ok();
        }
        st.started
    }
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
        // SAFETY: duplicating our own descriptor.
        let fd2 = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if fd2 < 0 {
            return Err(HostError::last("duplicating physmem's descriptor"));
        }
        let mut st = FreeState::default();
        // Frame 0 is never handed out: pagemap shows a PFN of 0 as "no
        // frame" (a privileged guest sees frame numbers), as Linux never
        // gives user memory page 0.
        st.runs.insert(1, pages - 1);
        Ok(PhysMem {
            fd,
            base: base.cast(),
            pages,
            refs,
            shared: Arc::new(Shared {
                fd: fd2,
                state: Mutex::new(st),
                work: Condvar::new(),
                punched: Condvar::new(),
            }),
        })
    }

    /// The memfd, for stub processes to map frames from.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub fn total_pages(&self) -> u64 {
        self.pages
    }

    /// Pages not allocated to anyone (those the reclaimer has yet to
    /// punch included).
    pub fn free_pages(&self) -> u64 {
        let st = self.shared.lock();
        st.runs.values().sum::<u64>() + st.unpunched
    }

    /// Allocates a run of between 1 and `want` zeroed frames, each with a
    /// reference count of 1: the first free run that holds all of `want`,
    /// else the largest there is. None when physmem is full. Freed runs
    /// still waiting for the reclaimer count: with no run large enough,
    /// the caller punches the queue itself, or waits for the runs the
    /// reclaimer is punching.
    pub fn alloc_run(&self, want: u64) -> Option<(Pfn, u64)> {
        let want = want.max(1);
        let mut st = self.shared.lock();
        loop {
            if st.runs.values().any(|&len| len >= want) || st.unpunched == 0 {
                break;
            }
            if !st.reclaim.is_empty() {
                let runs = std::mem::take(&mut st.reclaim);
                drop(st);
                for &(start, len) in &runs {
                    self.shared.punch(start, len);
                }
                st = self.shared.lock();
                st.unpunched -= runs.iter().map(|r| r.1).sum::<u64>();
                Shared::insert_free(&mut st, &runs);
                if st.waiting > 0 {
                    self.shared.punched.notify_all();
                }
            } else {
                st.waiting += 1;
                st = self
                    .shared
                    .punched
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
                st.waiting -= 1;
            }
        }
        let pick = st
            .runs
            .iter()
            .find(|(_, &len)| len >= want)
            .or_else(|| st.runs.iter().max_by_key(|(_, &len)| len))
            .map(|(&s, &l)| (s, l))?;
        let (start, len) = pick;
        st.runs.remove(&start);
        let got = len.min(want);
        if len > got {
            st.runs.insert(start + got, len - got);
        }
        drop(st);
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
        if !poison && crate::stub::nesting_level() == 0 && !reclaim_off() {
            // Leave the punch to the reclaimer, within its bound.
            let n: u64 = runs.iter().map(|r| r.1).sum();
            let mut st = self.shared.lock();
            if st.unpunched + n <= MAX_UNPUNCHED && self.shared.ensure_started(&mut st) {
                st.unpunched += n;
                st.reclaim.extend_from_slice(&runs);
                self.shared.wake(&mut st);
                return;
            }
        }
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
        let mut st = self.shared.lock();
        Shared::insert_free(&mut st, &runs);
    }

    /// Asks the reclaimer to give the frames of `runs` (allocated, about
    /// to be touched one after another by a guest) their host pages now,
    /// so the guest's first touch of each only maps it. Nothing the guest
    /// or the kernel can observe changes: a frame backed ahead reads as
    /// zeros and counts as not resident until touched (see the module
    /// documentation). Not nested (the outer ruml's memfd), and not with
    /// `RUML_BACK_AHEAD=off`.
    pub fn back_ahead(&self, runs: &[(Pfn, u64)]) {
        if runs.is_empty() || crate::stub::nesting_level() > 0 || back_ahead_off() {
            return;
        }
        let mut st = self.shared.lock();
        if !self.shared.ensure_started(&mut st) {
            return;
        }
        // Newest last: the reclaimer takes from the end. Old requests the
        // guest has long passed are worth the least.
        st.back_ahead.extend_from_slice(runs);
        let n = st.back_ahead.len();
        if n > MAX_BACK_AHEAD {
            st.back_ahead.drain(..n - MAX_BACK_AHEAD);
        }
        self.shared.wake(&mut st);
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
        let punched = crate::stub::nesting_level() == 0 && self.shared.punch(start, len);
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

/// `RUML_PHYSMEM_RECLAIM=off` (environment of ruml): freed frames are
/// punched by the thread that frees them, as before (to measure).
fn reclaim_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RUML_PHYSMEM_RECLAIM").is_some_and(|v| v == "off"))
}

/// `RUML_BACK_AHEAD=off` (environment of ruml): no frames backed ahead
/// (to measure).
fn back_ahead_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RUML_BACK_AHEAD").is_some_and(|v| v == "off"))
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
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
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
        assert_eq!(pm.free_pages(), 63);
        let (b, n) = pm.alloc_run(63).unwrap();
        assert_eq!((b, n), (1, 63));
        let mut buf = [1u8; 5];
        pm.read(a, 0, &mut buf);
        assert_eq!(buf, [0; 5], "a freed frame comes back zeroed");
    }
}
