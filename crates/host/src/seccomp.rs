//! The seccomp backend. Each guest address space is a stub process, as
//! with ptrace, but its guest threads are not traced: they run under a
//! seccomp filter that turns every system call into SIGSYS, caught (with
//! SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE and the kick signal) by the
//! stub's handler ([`crate::sstub`]). The host kernel saves the thread's
//! registers and XSAVE area in the signal frame on the thread's signal
//! stack, a physmem region the kernel reads directly; the handler hands off
//! to the task's host thread through a state word (bounded spinning, then
//! futex) and, told to resume, rt_sigreturns into what the kernel wrote.
//!
//! Address-space changes are carried out by the stub's first thread, the
//! *helper*, which never runs guest code: it reads batches from a page
//! that is read-only in the stub (the kernel writes it through physmem)
//! and reports completion by pwrite on physmem into a frame that is not
//! mapped in the stub at all, so no guest thread can forge a completion.
//! Its own filter allows only those calls: mmap of physmem with
//! MAP_SHARED|MAP_FIXED, munmap, mprotect, pwrite of 8 bytes from the
//! requests page to the completion frame, clone with the stub-thread
//! flags, and what a new guest thread needs before its own filter.
//!
//! The stub process is started and set up with ptrace (the same clean
//! stub as the ptrace backend); its first thread is then detached to
//! become the helper, and nothing traces the process any more.
//!
//! Threading: a [`Context`] is used by the one host thread serving its
//! task (it is not Send, for symmetry with ptrace); [`AddressSpace`] is
//! shared, its queue and helper guarded by a mutex held across a batch.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::handoff::{self, Handoff};
use crate::ops::{push_map, push_protect, push_unmap, Op};
use crate::physmem::{Pfn, PhysMem, PAGE_SIZE};
use crate::regs::{FpuState, Registers};
use crate::sstub::{self, FilterParams};
use crate::stats::{self, Counter};
use crate::stub::STUB_PHYSMEM_FD;
use crate::{ptrace, HostError, Interrupter, SignalInfo, Trap};

/// Guest threads per address space (the kernel's own cap is lower).
const MAX_THREADS: u64 = 8192;

/// Flags of the helper's clone that makes a guest thread: a thread of the
/// stub whose tid the host writes into its control page, and which clears
/// its state word (and wakes its kernel thread) when it ends.
const CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// The window the stub's base is chosen in: above the guest's TASK_SIZE
/// and below the ptrace stub image the process starts from.
fn window_start() -> u64 {
    crate::stub::guest_top()
}
fn window_blocks() -> u64 {
    (crate::stub::stub_code() - window_start()) >> 32
}

/// Iterations the kernel spins on the helper's completion before
/// sleeping: short, since the helper usually shares this host thread's CPU.
const KERNEL_SPIN: u32 = 64;
/// How long a futex sleep lasts before the kernel checks that the stub is
/// still alive.
const LIVENESS_NS: i64 = 500_000_000;
/// Liveness periods a thread may ignore a kick before it counts as hostile.
const KICK_PATIENCE: u32 = 20;

/// Offsets in the rt_sigframe's ucontext (x86_64), and of the siginfo
/// that follows it.
mod uc {
    pub const STACK_SP: usize = 16;
    pub const STACK_FLAGS: usize = 24;
    pub const STACK_SIZE: usize = 32;
    pub const GREGS: usize = 40;
    pub const CSGSFS: usize = 184;
    pub const FPSTATE: usize = 224;
    pub const SIGMASK: usize = 296;
    pub const LEN: usize = 304;
    pub const SI_SIGNO: usize = 304;
    pub const SI_ERRNO: usize = 308;
    pub const SI_CODE: usize = 312;
    pub const SI_ADDR: usize = 320;
    pub const FRAME: usize = 304 + 128;
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const SYS_SECCOMP: i32 = 1;
const SA_RESTORER: i32 = 0x0400_0000;

/// The per-host shape of a thread region.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Control page plus signal stack, a power of two.
    region: u64,
}

fn layout() -> Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    *L.get_or_init(|| {
        // The XSAVE area of a signal frame (CPUID 0xD: size for the
        // features the host enabled), the frame itself, and room.
        let xsize = std::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64;
        let stack = (xsize.max(1024) + 4096).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        Layout {
            region: (PAGE_SIZE + stack).next_power_of_two(),
        }
    })
}

/// Whether the host lets user code read and write its FS/GS base
/// (FSGSBASE, Linux 5.9+): the handler depends on it.
pub fn host_has_fsgsbase() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & 2 != 0 }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: b is a valid 8-byte buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ (std::process::id() as u64).rotate_left(32);
    }
    u64::from_le_bytes(b)
}

/// A random base for the stub: 64 KiB aligned, its whole area (code,
/// pages and every thread region) inside one 4 GiB-aligned block of the
/// window, so the filters can compare the low halves of addresses.
fn random_base(l: Layout) -> u64 {
    let span = sstub::OFF_THREADS + MAX_THREADS * l.region;
    let r = random_u64();
    let block = (r >> 48) % window_blocks().max(1);
    let slots = ((1u64 << 32) - span) >> 16;
    let slot = (r & 0xffff_ffff) % slots;
    window_start() + (block << 32) + (slot << 16)
}

fn futex_wait(word: &AtomicU32, val: u32, timeout_ns: Option<i64>) -> i32 {
    let ts = timeout_ns.map(|ns| libc::timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    });
    stats::bump(Counter::FutexWait);
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a futex wait on a word of physmem (a shared mapping, so the
    // key matches the stub's mapping of the same frame).
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            tsp,
            0usize,
            0u32,
        )
    };
    if r < 0 {
        crate::sys::errno()
    } else {
        0
    }
}

fn futex_wake(word: *const u32) {
    stats::bump(Counter::FutexWake);
    // SAFETY: a futex wake on a word of physmem.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAKE,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        );
    }
}

/// The helper's queue: changes not yet carried out, and the sequence
/// number of the last batch.
struct Helper {
    ops: Vec<Op>,
    seq: u64,
}

/// Thread regions of one stub: frames of each region ever used (kept
/// mapped until the process dies), the slots free for reuse, and the
/// spare: a stub thread made ahead of the next guest thread of this
/// address space (parked asleep in its first trap, adopted by nobody
/// yet; see [`AddressSpace::spawn_thread`]).
struct Slots {
    regions: Vec<Vec<Pfn>>,
    free: Vec<usize>,
    spare: Option<usize>,
    /// The last guest thread, kept in its handler when its context
    /// ended, for recycling (see [`Stub::recycle`]).
    parked: Option<Parked>,
    /// A recycled thread could not be reset (its frame was not where a
    /// frame may be): the stub is not recycled again.
    broken: bool,
}

/// A stub thread left in its handler by the last context of its stub.
#[derive(Clone, Copy)]
struct Parked {
    slot: usize,
    tid: libc::pid_t,
}

impl Slots {
    /// Slots whose thread lives or is about to (neither free nor the
    /// spare).
    fn in_use(&self) -> usize {
        self.regions.len() - self.free.len() - usize::from(self.spare.is_some())
    }
}

/// What the host wrote for a stub's first thread at its first trap: its
/// signal frame (ucontext and siginfo) and XSAVE area, as they are before
/// any guest code ran. A recycled thread is reset to these.
struct Pristine {
    frame: Box<[u8; uc::FRAME]>,
    xsave: Vec<u8>,
}

/// One stub process of the seccomp backend, shared (Arc) by its
/// [`AddressSpace`] handles and [`Context`]s; the last reference kills the
/// process and only then frees its frames.
///
/// Locking: `helper` is held for a whole batch (queueing, writing the
/// requests page, waiting for completion), so batches of one stub never
/// overlap and a flusher waits until earlier changes are in place; `slots`
/// is taken inside it (thread creation) or alone (a thread's end), never
/// the other way round.
struct Stub {
    /// The process, as the ptrace backend started it; dropping it kills
    /// and reaps the process.
    boot: ptrace::AddressSpace,
    phys: Arc<PhysMem>,
    base: u64,
    layout: Layout,
    code: Pfn,
    req: Pfn,
    filter: Pfn,
    doorbell: Pfn,
    comp: Pfn,
    helper: Mutex<Helper>,
    slots: Mutex<Slots>,
    pristine: Mutex<Option<Arc<Pristine>>>,
    /// Moved into a new [`Stub`] by [`Stub::recycle`]: nothing to kill
    /// or free here.
    moved: bool,
}

impl Drop for Stub {
    fn drop(&mut self) {
        if self.moved {
            return;
        }
        if self.recycle() {
            return;
        }
        // The process must be gone before its frames can be reused.
        let pidfd = self.boot.pidfd();
        // SAFETY: signalling and polling our own child's pidfd.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd,
                libc::SIGKILL,
                0usize,
                0u32,
            );
            let mut p = libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            };
            while libc::poll(&mut p, 1, -1) < 0 && crate::sys::errno() == libc::EINTR {}
        }
        crate::cputime::forget(self.boot.host_pid());
        let mut frames = vec![self.code, self.req, self.filter, self.doorbell, self.comp];
        let slots = self.slots.get_mut().unwrap_or_else(|p| p.into_inner());
        for r in &slots.regions {
            frames.extend_from_slice(r);
        }
        self.phys.put_many(&frames);
    }
}

impl Stub {
    /// The last reference to a stub whose last guest thread was parked
    /// (all other threads confirmed gone): instead of killing the
    /// process, ends its spare thread, checks that the host counts no
    /// thread but the helper and the parked one, clears the other thread
    /// regions, removes every guest mapping in one helper batch and gives
    /// the stub, with the parked thread as its first, to the pool of
    /// clean stubs. The parked thread's registers, FPU state and signal
    /// stack are reset when it is adopted ([`Context::adopt`]). False if
    /// the stub cannot be recycled (then it is killed as before).
    fn recycle(&mut self) -> bool {
        let slots = self.slots.get_mut().unwrap_or_else(|p| p.into_inner());
        let Some(parked) = slots.parked.take() else {
            return false;
        };
        let ctl = slots.regions[parked.slot][0];
        let spare_slot = slots.spare;
        let spare = spare_slot.map(|i| slots.regions[i][0]);
        if slots.in_use() != 1
            || slots.free.contains(&parked.slot)
            || !recycling()
            || !crate::stubpool::has_room(&self.phys)
            || !self.alive()
        {
            return false;
        }
        let st = self.word32(ctl, sstub::CTL_STATE).load(Ordering::Acquire);
        if st != sstub::ST_TRAPPED && st != sstub::ST_SWAIT {
            return false;
        }
        // The spare goes (a guest may have woken it into code of its own:
        // then it does not, and the stub is not recycled). Then the host
        // must count exactly the helper and the parked thread: no thread
        // the kernel does not serve is left to run in the next process.
        if let Some(f) = spare {
            let w = self.word32(f, sstub::CTL_STATE);
            if w.swap(sstub::ST_EXIT, Ordering::SeqCst) == sstub::ST_SWAIT {
                futex_wake(w.as_ptr());
            }
        }
        if !self.threads_are(2) {
            return false;
        }
        if let Some(i) = spare_slot {
            let s = self.slots.get_mut().unwrap_or_else(|p| p.into_inner());
            s.spare = None;
            s.free.push(i);
        }
        // Regions of the old process's other threads held their frames.
        let s = self.slots.get_mut().unwrap_or_else(|p| p.into_inner());
        for &i in &s.free {
            for &f in &s.regions[i] {
                self.phys.zero(f, 0, PAGE_SIZE as usize);
            }
        }
        // Everything below the stub's pages: all guest mappings (and the
        // patch area). Queued changes of the old address space go too.
        let seq = self.helper.get_mut().unwrap_or_else(|p| p.into_inner()).seq;
        let mut helper = Helper {
            ops: Vec::new(),
            seq,
        };
        let reqs = [(libc::SYS_munmap as u64, [0, self.base, 0, 0, 0, 0])];
        if self.run_batches(&mut helper, &reqs).is_err() {
            return false;
        }
        crate::cputime::rebase(self.boot.host_pid(), parked.tid);
        stats::bump(Counter::StubsRecycled);
        let slots = std::mem::replace(
            self.slots.get_mut().unwrap_or_else(|p| p.into_inner()),
            Slots {
                regions: Vec::new(),
                free: Vec::new(),
                spare: None,
                parked: None,
                broken: false,
            },
        );
        let pristine = self
            .pristine
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.moved = true;
        let stub = Arc::new(Stub {
            boot: self.boot.clone(),
            phys: self.phys.clone(),
            base: self.base,
            layout: self.layout,
            code: self.code,
            req: self.req,
            filter: self.filter,
            doorbell: self.doorbell,
            comp: self.comp,
            helper: Mutex::new(helper),
            slots: Mutex::new(slots),
            pristine: Mutex::new(pristine),
            moved: false,
        });
        crate::stubpool::give(
            AddressSpace { proc: stub },
            NewThread {
                slot: parked.slot,
                recycled: Some(parked.tid),
            },
        );
        true
    }

    /// Whether the stub process has exactly `n` threads, as the host
    /// counts them; waits up to 20 ms for ending threads to go.
    fn threads_are(&self, n: u32) -> bool {
        let path = format!("/proc/{}/status", self.boot.host_pid());
        for _ in 0..40 {
            let Ok(s) = std::fs::read_to_string(&path) else {
                return false;
            };
            let got = s
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u32>().ok());
            match got {
                Some(t) if t == n => return true,
                Some(t) if t > n => {}
                _ => return false,
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        false
    }

    fn word32(&self, pfn: Pfn, off: usize) -> &AtomicU32 {
        // SAFETY: an aligned word inside a physmem frame this stub owns,
        // which lives as long as `self`.
        unsafe { &*(self.phys.page_ptr(pfn).add(off) as *const AtomicU32) }
    }

    fn word64(&self, pfn: Pfn, off: usize) -> &AtomicU64 {
        // SAFETY: as for word32.
        unsafe { &*(self.phys.page_ptr(pfn).add(off) as *const AtomicU64) }
    }

    fn alive(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.boot.pidfd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling our own pidfd without blocking.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        !(r > 0 && p.revents != 0)
    }

    /// Has the helper carry out `reqs` (system call number and arguments)
    /// in batches; waits for each batch's unforgeable completion.
    fn run_batches(&self, h: &mut Helper, reqs: &[(u64, [u64; 6])]) -> Result<(), HostError> {
        for chunk in reqs.chunks(sstub::REQ_MAX) {
            let mut page = Vec::with_capacity((chunk.len() + 1) * 64);
            for (i, (nr, args)) in chunk.iter().enumerate() {
                page.extend_from_slice(&nr.to_le_bytes());
                for a in args {
                    page.extend_from_slice(&a.to_le_bytes());
                }
                page.extend_from_slice(&(i as u64).to_le_bytes());
            }
            page.extend_from_slice(&u64::MAX.to_le_bytes());
            stats::bump(Counter::StubBatches);
            for &(nr, _) in chunk {
                stats::stub_call(nr);
            }
            self.phys.write(self.req, sstub::REQ_FIRST, &page);
            h.seq += 1;
            let seq = h.seq;
            let done = self.word64(self.comp, 0);
            let status = self.word64(self.comp, 8);
            status.store(0, Ordering::SeqCst);
            let seqw = self.word64(self.req, sstub::REQ_SEQ);
            seqw.store(seq, Ordering::SeqCst);
            futex_wake(seqw.as_ptr() as *const u32);
            let bell = self.word32(self.doorbell, 0);
            let mut spins = 0u32;
            while done.load(Ordering::Acquire) != seq {
                if spins < KERNEL_SPIN {
                    spins += 1;
                    std::hint::spin_loop();
                    continue;
                }
                let b = bell.load(Ordering::Acquire);
                if done.load(Ordering::Acquire) == seq {
                    break;
                }
                if futex_wait(bell, b, Some(LIVENESS_NS)) == libc::ETIMEDOUT && !self.alive() {
                    return Err(HostError::new("the stub's helper thread is gone", 0));
                }
            }
            let st = status.load(Ordering::Acquire);
            if st != u64::MAX {
                let what = chunk
                    .get(st as usize)
                    .map_or_else(|| format!("#{st}"), |r| format!("{r:?}"));
                return Err(HostError::new(
                    format!("stub request {what} failed"),
                    libc::ENOMEM,
                ));
            }
        }
        Ok(())
    }

    fn flush_locked(&self, h: &mut Helper) -> Result<(), HostError> {
        if h.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut h.ops);
        let reqs: Vec<(u64, [u64; 6])> = ops.iter().map(|op| op.syscall(STUB_PHYSMEM_FD)).collect();
        self.run_batches(h, &reqs)
    }
}

/// A guest address space of the seccomp backend. Cheap to clone.
#[derive(Clone)]
pub struct AddressSpace {
    proc: Arc<Stub>,
}

/// `RUML_SPARE_THREAD=off` in ruml's environment: no spare stub threads
/// (see [`AddressSpace::spawn_thread`]), for measurements.
fn spare_threads() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("RUML_SPARE_THREAD").map_or(true, |v| v != "off"))
}

/// A guest thread made by the helper, parked in its first trap; or
/// (`recycled`: its host tid) the last thread of a recycled stub, parked
/// in its last trap.
pub struct NewThread {
    slot: usize,
    recycled: Option<libc::pid_t>,
}

/// `RUML_STUB_RECYCLE=off` in ruml's environment: stubs of ended
/// processes are killed, never recycled (see [`Stub::recycle`]), for
/// measurements.
fn recycling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("RUML_STUB_RECYCLE").map_or(true, |v| v != "off"))
}

/// One guest thread, served by the calling host thread. It exists only
/// while its stub thread sits in the handler (between traps, the frame
/// copy here is the thread's state); dropping it tells the stub thread to
/// exit and frees its slot once the host says the thread is gone.
pub struct Context {
    aspace: AddressSpace,
    slot: usize,
    /// The stub address of the thread's control page, and its frames.
    ctl: u64,
    pfns: Vec<Pfn>,
    tid: libc::pid_t,
    kicked: Arc<AtomicBool>,
    /// Set while the guest runs: an [`Interrupter`] kicks only then.
    running: Arc<AtomicBool>,
    /// The last trap's frame, copied once out of shared memory and
    /// validated: ucontext and siginfo, where they were, and where the
    /// XSAVE area is.
    frame: Box<[u8; uc::FRAME]>,
    uc_addr: u64,
    fp_addr: u64,
    /// The host CPU the stub thread is pinned to (this host thread's, or
    /// another one, by the handoff mode; see [`Context::place`]), and runs
    /// since it was last free.
    pinned: Option<i32>,
    runs: u32,
    /// How the two threads hand off, and its measurements: the time of
    /// the last trap (none after an interruption).
    handoff: Handoff,
    last_trap: Option<Instant>,
    _not_send: std::marker::PhantomData<*const ()>,
}

fn rd64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn wr64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn rd32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

impl AddressSpace {
    /// Starts a clean stub process, sets it up for the seccomp backend,
    /// and returns it with the context of its first guest thread.
    pub fn new(phys: &Arc<PhysMem>) -> Result<(AddressSpace, Context), HostError> {
        let (aspace, nt) = AddressSpace::build(phys)?;
        let ctx = Context::adopt(&aspace, nt)?;
        Ok((aspace, ctx))
    }

    /// As [`AddressSpace::new`], but takes a clean stub made ahead of time
    /// when there is one (see [`crate::stubpool`]).
    pub fn new_pooled(phys: &Arc<PhysMem>) -> Result<(AddressSpace, Context), HostError> {
        if let Some((aspace, nt)) = crate::stubpool::take(phys) {
            // A pooled stub that died meanwhile is replaced by a new one.
            if let Ok(ctx) = Context::adopt(&aspace, nt) {
                stats::bump(Counter::PoolHits);
                return Ok((aspace, ctx));
            }
        }
        AddressSpace::new(phys)
    }

    /// Starts a clean stub process with its first guest thread parked in
    /// its first trap, not yet adopted by any host thread.
    pub(crate) fn build(phys: &Arc<PhysMem>) -> Result<(AddressSpace, NewThread), HostError> {
        let (boot, mut pctx) = ptrace::AddressSpace::new(phys)?;
        let layout = layout();
        let base = random_base(layout);
        let mut frames = Vec::with_capacity(5);
        for _ in 0..5 {
            match phys.alloc() {
                Some(p) => frames.push(p),
                None => {
                    phys.put_many(&frames);
                    return Err(HostError::new(
                        "out of guest memory for the stub's pages",
                        libc::ENOMEM,
                    ));
                }
            }
        }
        let stub = Arc::new(Stub {
            boot,
            phys: phys.clone(),
            base,
            layout,
            code: frames[0],
            req: frames[1],
            filter: frames[2],
            doorbell: frames[3],
            comp: frames[4],
            helper: Mutex::new(Helper {
                ops: Vec::new(),
                seq: 0,
            }),
            slots: Mutex::new(Slots {
                regions: Vec::new(),
                free: Vec::new(),
                spare: None,
                parked: None,
                broken: false,
            }),
            pristine: Mutex::new(None),
            moved: false,
        });
        let sites = sstub::sites();
        phys.write(stub.code, 0, sstub::code());
        // The requests page header.
        let mut hdr = [0u8; 32];
        wr64(&mut hdr, sstub::REQ_COMP_OFF, stub.comp * PAGE_SIZE);
        wr64(&mut hdr, sstub::REQ_OK_TOKEN, u64::MAX);
        wr64(&mut hdr, sstub::REQ_REGION_MASK, !(layout.region - 1));
        phys.write(stub.req, 0, &hdr);
        phys.write(stub.req, sstub::REQ_FIRST, &u64::MAX.to_le_bytes());
        // The filters, and the sigaction of the bootstrap.
        let params = FilterParams {
            base,
            comp_off: stub.comp * PAGE_SIZE,
            region: layout.region,
            max_threads: MAX_THREADS,
            clone_flags: CLONE_FLAGS,
        };
        let hf = sstub::helper_filter(&params);
        let gf = sstub::guest_filter(&params);
        let fbase = base + sstub::OFF_FILTER;
        let h_at = sstub::FLT_INSNS;
        let g_at = h_at + hf.len();
        if g_at + gf.len() > sstub::FLT_PATCH {
            return Err(HostError::new("the stub's filters do not fit a page", 0));
        }
        let mut fp = vec![0u8; g_at + gf.len()];
        fp[sstub::FLT_HELPER_PROG..sstub::FLT_HELPER_PROG + 2]
            .copy_from_slice(&((hf.len() / 8) as u16).to_le_bytes());
        wr64(&mut fp, sstub::FLT_HELPER_PROG + 8, fbase + h_at as u64);
        fp[sstub::FLT_GUEST_PROG..sstub::FLT_GUEST_PROG + 2]
            .copy_from_slice(&((gf.len() / 8) as u16).to_le_bytes());
        wr64(&mut fp, sstub::FLT_GUEST_PROG + 8, fbase + g_at as u64);
        let sa = sstub::FLT_SIGACTION;
        wr64(&mut fp, sa, base + sites.handler);
        wr64(
            &mut fp,
            sa + 8,
            (libc::SA_SIGINFO | libc::SA_ONSTACK | SA_RESTORER) as u64,
        );
        wr64(&mut fp, sa + 16, base + sites.sigreturn - 2);
        wr64(&mut fp, sa + 24, u64::MAX);
        fp[h_at..g_at].copy_from_slice(&hf);
        fp[g_at..].copy_from_slice(&gf);
        phys.write(stub.filter, 0, &fp);

        // Bootstrap, under ptrace, in one batch of the ptrace stub: map
        // the stub's pages, install the handler and the helper's filter
        // (last: the batch makes no call after it), and let the helper go.
        let mut calls: Vec<(u64, [u64; 6], &str)> = Vec::with_capacity(16);
        let shared = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let fd = STUB_PHYSMEM_FD as u64;
        let r = libc::PROT_READ as u64;
        for (off, pfn, prot) in [
            (0, stub.code, r | libc::PROT_EXEC as u64),
            (sstub::OFF_REQ, stub.req, r),
            (sstub::OFF_FILTER, stub.filter, r),
            (
                sstub::OFF_DOORBELL,
                stub.doorbell,
                r | libc::PROT_WRITE as u64,
            ),
        ] {
            calls.push((
                libc::SYS_mmap as u64,
                [base + off, PAGE_SIZE, prot, shared, fd, pfn * PAGE_SIZE],
                "mmap",
            ));
        }
        for sig in [
            libc::SIGSYS,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGFPE,
            ptrace::KICK_SIGNAL,
        ] {
            calls.push((
                libc::SYS_rt_sigaction as u64,
                [sig as u64, fbase + sa as u64, 0, 8, 0, 0],
                "rt_sigaction",
            ));
        }
        // The helper blocks every signal itself, first thing (see sstub).
        calls.push((
            libc::SYS_prctl as u64,
            [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0],
            "no_new_privs",
        ));
        calls.push((
            libc::SYS_seccomp as u64,
            [1, 0, fbase + sstub::FLT_HELPER_PROG as u64, 0, 0, 0],
            "seccomp filter",
        ));
        let batch: Vec<(u64, [u64; 6])> = calls.iter().map(|&(nr, a, _)| (nr, a)).collect();
        if let Some((i, e)) = pctx.run_batch(&batch)? {
            let what = calls.get(i).map_or("?", |c| c.2);
            return Err(HostError::new(format!("stub setup: {what}"), e));
        }
        pctx.detach(base + sites.helper)?;
        let aspace = AddressSpace { proc: stub };
        // The ptrace stub's own pages go with the first batch.
        aspace.unmap(crate::stub::stub_code(), 2 * PAGE_SIZE);
        let nt = aspace.spawn_thread(false)?;
        Ok((aspace, nt))
    }

    /// Whether this stub's frames are in `phys`.
    pub(crate) fn uses(&self, phys: &Arc<PhysMem>) -> bool {
        Arc::ptr_eq(&self.proc.phys, phys)
    }

    /// The host pid of the stub process.
    pub fn host_pid(&self) -> i32 {
        self.proc.boot.host_pid()
    }

    fn helper(&self) -> std::sync::MutexGuard<'_, Helper> {
        self.proc.helper.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues mapping `len` bytes at `addr` to the physmem frames starting
    /// at `pfn`, with `prot`.
    pub fn map(&self, addr: u64, len: u64, prot: u32, pfn: Pfn) {
        push_map(&mut self.helper().ops, addr, len, prot, pfn);
    }

    /// Queues removing any mapping in `[addr, addr+len)`.
    pub fn unmap(&self, addr: u64, len: u64) {
        push_unmap(&mut self.helper().ops, addr, len);
    }

    /// Queues changing the protection of `[addr, addr+len)`.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) {
        push_protect(&mut self.helper().ops, addr, len, prot);
    }

    /// The stub's base address (for the boot checks).
    pub(crate) fn base(&self) -> u64 {
        self.proc.base
    }

    fn ctl_addr(&self, slot: usize) -> u64 {
        self.proc.base + sstub::OFF_THREADS + slot as u64 * self.proc.layout.region
    }

    /// Makes a guest thread: a thread region (new, or one a finished
    /// thread left), then a clone by the helper; the thread installs the
    /// guest filter and traps once.
    ///
    /// With `spare` (a guest thread made by another: the address space
    /// is multi-threaded), the spare stub thread made with the previous
    /// one is taken if there is one, with no helper batch at all, and
    /// otherwise the batch clones two: the one asked for and the next
    /// one's spare. A thread create therefore costs a helper round trip
    /// every other time, and the new thread's own start (its filter's
    /// compilation, its first trap) happens before it is asked for. At
    /// most one spare per address space; it sleeps (no CPU) and dies
    /// with the process.
    fn spawn_thread(&self, spare: bool) -> Result<NewThread, HostError> {
        let spare = spare && spare_threads();
        let mut h = self.helper();
        if spare {
            let mut s = self.proc.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = s.spare.take() {
                stats::bump(Counter::SpareThreadHits);
                return Ok(NewThread {
                    slot,
                    recycled: None,
                });
            }
        }
        let (slot, ctl) = self.prepare_slot(&mut h)?;
        // The spare is best effort: no slot or no memory makes none.
        let extra = if spare {
            self.prepare_slot(&mut h).ok()
        } else {
            None
        };
        let mut reqs: Vec<(u64, [u64; 6])> =
            h.ops.iter().map(|op| op.syscall(STUB_PHYSMEM_FD)).collect();
        h.ops.clear();
        for c in std::iter::once(ctl).chain(extra.map(|e| e.1)) {
            reqs.push((
                libc::SYS_clone as u64,
                [CLONE_FLAGS, 0, c + sstub::CTL_TID as u64, c, 0, c],
            ));
        }
        // On failure the slots' state is unknown: they are never reused.
        self.proc.run_batches(&mut h, &reqs)?;
        if let Some((e, _)) = extra {
            let mut s = self.proc.slots.lock().unwrap_or_else(|e| e.into_inner());
            s.spare = Some(e);
        }
        Ok(NewThread {
            slot,
            recycled: None,
        })
    }

    /// Takes a thread region (a free one, or a new one whose mappings are
    /// queued on `h`) and writes its control page for a thread about to
    /// be cloned there. Returns the slot and its control page's address.
    fn prepare_slot(&self, h: &mut Helper) -> Result<(usize, u64), HostError> {
        let p = &self.proc;
        let region = p.layout.region;
        let (slot, pfns, fresh) = {
            let mut s = p.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = s.free.pop() {
                (i, s.regions[i].clone(), false)
            } else {
                if s.regions.len() as u64 >= MAX_THREADS {
                    return Err(HostError::new("too many stub threads", libc::EAGAIN));
                }
                let n = (region / PAGE_SIZE) as usize;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    match p.phys.alloc() {
                        Some(f) => v.push(f),
                        None => {
                            p.phys.put_many(&v);
                            return Err(HostError::new(
                                "out of guest memory for a stub thread",
                                libc::ENOMEM,
                            ));
                        }
                    }
                }
                s.regions.push(v.clone());
                (s.regions.len() - 1, v, true)
            }
        };
        let ctl = self.ctl_addr(slot);
        if fresh {
            for (i, &f) in pfns.iter().enumerate() {
                push_map(
                    &mut h.ops,
                    ctl + i as u64 * PAGE_SIZE,
                    PAGE_SIZE,
                    crate::prot::READ | crate::prot::WRITE,
                    f,
                );
            }
        }
        // The control page, before the thread exists.
        p.phys.zero(pfns[0], 0, PAGE_SIZE as usize);
        let mut c = [0u8; sstub::CTL_LEN];
        c[sstub::CTL_STATE..sstub::CTL_STATE + 4].copy_from_slice(&sstub::ST_RESUME.to_le_bytes());
        wr64(&mut c, sstub::CTL_SIGSTACK, ctl + PAGE_SIZE);
        wr64(&mut c, sstub::CTL_SIGSTACK + 16, region - PAGE_SIZE);
        wr64(
            &mut c,
            sstub::CTL_ENTRY,
            p.base + sstub::sites().patch_entry,
        );
        p.phys.write(pfns[0], 0, &c);
        Ok((slot, ctl))
    }
}

impl Context {
    /// Takes over a guest thread made by the helper: waits for its first
    /// trap (the getpid after it installed its filter) and checks it.
    pub fn adopt(aspace: &AddressSpace, t: NewThread) -> Result<Context, HostError> {
        let p = &aspace.proc;
        let pfns = {
            let s = p.slots.lock().unwrap_or_else(|e| e.into_inner());
            s.regions
                .get(t.slot)
                .cloned()
                .ok_or_else(|| HostError::new("no such stub thread", 0))?
        };
        let mut ctx = Context {
            aspace: aspace.clone(),
            slot: t.slot,
            ctl: aspace.ctl_addr(t.slot),
            pfns,
            tid: 0,
            kicked: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicBool::new(false)),
            frame: Box::new([0u8; uc::FRAME]),
            uc_addr: 0,
            fp_addr: 0,
            pinned: None,
            runs: 0,
            handoff: Handoff::new(),
            last_trap: None,
            _not_send: std::marker::PhantomData,
        };
        ctx.wait_trap(Duration::ZERO)?;
        if let Some(tid) = t.recycled {
            ctx.tid = tid;
            if let Err(e) = ctx.reset_recycled() {
                p.slots.lock().unwrap_or_else(|e| e.into_inner()).broken = true;
                return Err(e);
            }
            return Ok(ctx);
        }
        ctx.tid = p
            .word32(ctx.pfns[0], sstub::CTL_TID)
            .load(Ordering::Acquire) as i32;
        let mut regs = Registers::default();
        let trap = ctx.load_frame(&mut regs)?;
        let first = p.base + sstub::sites().first;
        if trap != Trap::Syscall || regs.orig_rax != libc::SYS_getpid as u64 || regs.rip != first {
            return Err(HostError::new(
                format!(
                    "a new stub thread did not trap under its filter ({trap:?}, nr {}, rip {:#x})",
                    regs.orig_rax as i64, regs.rip
                ),
                0,
            ));
        }
        ctx.set_patch_params();
        let mut pr = p.pristine.lock().unwrap_or_else(|e| e.into_inner());
        if pr.is_none() {
            if let Ok(xsave) = ctx.fpu_area() {
                *pr = Some(Arc::new(Pristine {
                    frame: ctx.frame.clone(),
                    xsave,
                }));
            }
        }
        drop(pr);
        Ok(ctx)
    }

    /// Readies the parked last thread of a recycled stub for a new
    /// process: its frame (where it is now, checked as any trap's) and
    /// XSAVE area become the pristine ones of the stub's first trap (so
    /// no register, FPU state, segment or flag of the old process is
    /// left), and the rest of its signal stack and control page, which
    /// held the old process's registers, is cleared.
    fn reset_recycled(&mut self) -> Result<(), HostError> {
        let p = self.aspace.proc.clone();
        let pristine = p
            .pristine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| HostError::new("a recycled stub without its first frame", 0))?;
        let mut regs = Registers::default();
        self.load_frame(&mut regs)?;
        if self.fp_addr == 0
            || self
                .fp_addr
                .checked_add(pristine.xsave.len() as u64 + 4)
                .is_none_or(|e| e > self.stack_range().1)
        {
            return Err(HostError::new("a recycled stub thread's frame moved", 0));
        }
        for &f in &self.pfns[1..] {
            p.phys.zero(f, 0, PAGE_SIZE as usize);
        }
        p.phys.zero(
            self.pfns[0],
            sstub::CTL_LEN,
            PAGE_SIZE as usize - sstub::CTL_LEN,
        );
        let (lo, hi) = self.stack_range();
        let mut c = [0u8; 32];
        wr64(&mut c, 0, lo);
        wr64(&mut c, 16, hi - lo);
        self.region_write(self.ctl + sstub::CTL_SIGSTACK as u64, &c[..24]);
        self.region_write(
            self.ctl + sstub::CTL_ENTRY as u64,
            &(p.base + sstub::sites().patch_entry).to_le_bytes(),
        );
        *self.frame = *pristine.frame;
        self.region_write(self.uc_addr, &self.frame[..]);
        self.region_write(self.fp_addr, &pristine.xsave);
        // The end marker the host puts after an XSAVE area.
        self.region_write(
            self.fp_addr + pristine.xsave.len() as u64,
            &FP_XSTATE_MAGIC2.to_le_bytes(),
        );
        Ok(())
    }

    /// Writes the patch entry's parameters into the stub's filters page
    /// (read-only in the stub), from the XSAVE area of the host's frame of
    /// this thread's first trap: the entry's frames must look exactly like
    /// the host's. Patching stays off in this stub if the host's frame has
    /// no XSAVE area or the region has no room.
    fn set_patch_params(&self) {
        let mut p = [0u8; 32];
        let on = crate::patch::enabled() && self.fp_addr != 0;
        let mut sw = [0u8; 24];
        if on {
            self.region_read(self.fp_addr + 464, &mut sw);
        }
        let xsize = rd32(&sw, 16) as u64;
        let region = self.aspace.proc.layout.region;
        if on && rd32(&sw, 0) == FP_XSTATE_MAGIC1 && (576..region / 2).contains(&xsize) {
            let fp_off = (region - xsize - 4 - 64) & !63;
            let uc_off = (fp_off - uc::FRAME as u64 - 64) & !15;
            if uc_off >= 2 * PAGE_SIZE {
                wr64(&mut p, sstub::P_UC, uc_off);
                wr64(&mut p, sstub::P_FP, fp_off);
                p[sstub::P_XSIZE..sstub::P_XSIZE + 4]
                    .copy_from_slice(&(xsize as u32).to_le_bytes());
                p[sstub::P_ON..sstub::P_ON + 4].copy_from_slice(&1u32.to_le_bytes());
                p[sstub::P_XFEAT..sstub::P_XFEAT + 8].copy_from_slice(&sw[8..16]);
            }
        }
        self.aspace
            .proc
            .phys
            .write(self.aspace.proc.filter, sstub::FLT_PATCH, &p);
    }

    /// The address space this thread runs in.
    pub fn address_space(&self) -> &AddressSpace {
        &self.aspace
    }

    /// The host tid of the stub thread.
    pub fn host_tid(&self) -> i32 {
        self.tid
    }

    /// A handle for other threads to interrupt the running guest.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter::new(
            self.aspace.host_pid(),
            self.tid,
            self.kicked.clone(),
            self.running.clone(),
        )
    }

    fn state(&self) -> &AtomicU32 {
        self.aspace.proc.word32(self.pfns[0], sstub::CTL_STATE)
    }

    fn thread_alive(&self) -> bool {
        if self.tid <= 0 {
            return self.aspace.proc.alive();
        }
        // SAFETY: signal 0 only checks that the thread exists.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, self.aspace.host_pid(), self.tid, 0) };
        r == 0 && self.aspace.proc.alive()
    }

    fn kick(&self) {
        // SAFETY: a signal to one thread of our own stub.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                self.aspace.host_pid(),
                self.tid,
                ptrace::KICK_SIGNAL,
            );
        }
    }

    /// Waits until the thread has trapped into its handler: spins for
    /// up to `spin` (bounded: see [`handoff`]), then sleeps on the futex.
    fn wait_trap(&self, spin: Duration) -> Result<(), HostError> {
        // The stub is in its handler: spinning (TRAPPED) or asleep (SWAIT).
        let trapped = |v: u32| v == sstub::ST_TRAPPED || v == sstub::ST_SWAIT;
        let st = self.state();
        let mut deaf = 0;
        if !spin.is_zero() {
            let start = Instant::now();
            'spin: loop {
                for _ in 0..32 {
                    if trapped(st.load(Ordering::Acquire)) {
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
                if start.elapsed() >= spin {
                    break 'spin;
                }
            }
        }
        loop {
            let cur = st.load(Ordering::Acquire);
            if trapped(cur) {
                return Ok(());
            }
            // The host clears the word when the thread ends.
            if cur == 0 && !self.thread_alive() {
                return Err(HostError::new("the stub thread is gone", 0));
            }
            if cur != sstub::ST_KWAIT
                && st
                    .compare_exchange(cur, sstub::ST_KWAIT, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                continue;
            }
            if futex_wait(st, sstub::ST_KWAIT, Some(LIVENESS_NS)) == libc::ETIMEDOUT {
                if !self.thread_alive() {
                    return Err(HostError::new("the stub thread is gone", 0));
                }
                // A guest thread runs with the kick unblocked unless it
                // forged a signal mask with rt_sigreturn: one that stays
                // deaf to kicks this long is stopped for good.
                if self.kicked.load(Ordering::SeqCst) {
                    deaf += 1;
                    if deaf >= KICK_PATIENCE {
                        return Err(HostError::new(
                            "the stub thread ignores interruptions (forged signal mask)",
                            0,
                        ));
                    }
                    self.kick();
                } else {
                    deaf = 0;
                }
            }
        }
    }

    /// Reads a range of the thread's region at stub address `addr`.
    fn region_read(&self, addr: u64, buf: &mut [u8]) {
        let mut off = (addr - self.ctl) as usize;
        let mut done = 0;
        while done < buf.len() {
            let page = off / PAGE_SIZE as usize;
            let in_page = off % PAGE_SIZE as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            self.aspace
                .proc
                .phys
                .read(self.pfns[page], in_page, &mut buf[done..done + n]);
            done += n;
            off += n;
        }
    }

    fn region_write(&self, addr: u64, data: &[u8]) {
        let mut off = (addr - self.ctl) as usize;
        let mut done = 0;
        while done < data.len() {
            let page = off / PAGE_SIZE as usize;
            let in_page = off % PAGE_SIZE as usize;
            let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
            self.aspace
                .proc
                .phys
                .write(self.pfns[page], in_page, &data[done..done + n]);
            done += n;
            off += n;
        }
    }

    fn stack_range(&self) -> (u64, u64) {
        (
            self.ctl + PAGE_SIZE,
            self.ctl + self.aspace.proc.layout.region,
        )
    }

    /// Copies the trap's frame out of shared memory once, checks where it
    /// claims to be, and decodes registers and the trap from the copy.
    fn load_frame(&mut self, regs: &mut Registers) -> Result<Trap, HostError> {
        let p = self.aspace.proc.clone();
        let (lo, hi) = self.stack_range();
        let uc_addr = p
            .word64(self.pfns[0], sstub::CTL_UC)
            .load(Ordering::Acquire);
        if uc_addr < lo
            || !uc_addr.is_multiple_of(8)
            || uc_addr.checked_add(uc::FRAME as u64).is_none_or(|e| e > hi)
        {
            return Err(HostError::new(
                format!("bad signal frame address {uc_addr:#x} from the stub"),
                0,
            ));
        }
        let mut f = [0u8; uc::FRAME];
        self.region_read(uc_addr, &mut f);
        let fp = rd64(&f, uc::FPSTATE);
        // The host puts the XSAVE area above the frame, on the same stack.
        if fp != 0
            && (fp < uc_addr + uc::FRAME as u64
                || !fp.is_multiple_of(64)
                || fp.saturating_add(512) > hi)
        {
            return Err(HostError::new(
                format!("bad XSAVE area address {fp:#x} from the stub"),
                0,
            ));
        }
        *self.frame = f;
        self.uc_addr = uc_addr;
        self.fp_addr = fp;
        let g = |i: usize| rd64(&f, uc::GREGS + 8 * i);
        regs.r8 = g(0);
        regs.r9 = g(1);
        regs.r10 = g(2);
        regs.r11 = g(3);
        regs.r12 = g(4);
        regs.r13 = g(5);
        regs.r14 = g(6);
        regs.r15 = g(7);
        regs.rdi = g(8);
        regs.rsi = g(9);
        regs.rbp = g(10);
        regs.rbx = g(11);
        regs.rdx = g(12);
        regs.rax = g(13);
        regs.rcx = g(14);
        regs.rsp = g(15);
        regs.rip = g(16);
        regs.eflags = g(17);
        let csgsfs = rd64(&f, uc::CSGSFS);
        regs.cs = csgsfs & 0xffff;
        regs.ss = (csgsfs >> 48) & 0xffff;
        regs.ds = 0;
        regs.es = 0;
        regs.fs = 0;
        regs.gs = 0;
        regs.fs_base = p
            .word64(self.pfns[0], sstub::CTL_FS)
            .load(Ordering::Acquire);
        regs.gs_base = p
            .word64(self.pfns[0], sstub::CTL_GS)
            .load(Ordering::Acquire);
        regs.orig_rax = u64::MAX;
        let signo = rd32(&f, uc::SI_SIGNO) as i32;
        let code = rd32(&f, uc::SI_CODE) as i32;
        if signo == libc::SIGSYS && code == SYS_SECCOMP {
            // The host rolled rax back to the system call number.
            regs.orig_rax = regs.rax;
            regs.rax = (-(libc::ENOSYS as i64)) as u64;
            return Ok(Trap::Syscall);
        }
        if code > 0
            && matches!(
                signo,
                libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGTRAP | libc::SIGFPE
            )
        {
            return Ok(Trap::Signal(SignalInfo {
                signo,
                code,
                addr: rd64(&f, uc::SI_ADDR),
            }));
        }
        // The kick, or anything else sent to the stub: never delivered.
        self.kicked.store(false, Ordering::SeqCst);
        Ok(Trap::Interrupted)
    }

    /// Carries out the address space's queued changes.
    pub fn flush(&mut self) -> Result<(), HostError> {
        let p = &self.aspace.proc;
        let mut h = p.helper.lock().unwrap_or_else(|e| e.into_inner());
        p.flush_locked(&mut h)
    }

    /// Places the stub thread for the handoff mode (see [`handoff`]): in
    /// Local mode on the CPU this host thread runs on, as the ptrace
    /// backend does (a handoff on one CPU is a cheap local switch, a
    /// sleeping partner on another CPU an inter-processor interrupt); in
    /// Split mode on another CPU, where both sides spin. Now and then the
    /// stub is left free for one run, so the host can spread busy threads.
    fn place(&mut self) {
        const REBALANCE_EVERY: u32 = 256;
        if self.tid <= 0 {
            return;
        }
        self.runs = self.runs.wrapping_add(1);
        if self.runs.is_multiple_of(REBALANCE_EVERY) {
            if self.pinned.take().is_some() {
                ptrace::set_affinity(self.tid, None);
            }
            return;
        }
        // SAFETY: sched_getcpu has no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return;
        }
        let want = match self.handoff.mode() {
            handoff::Mode::Local => Some(cpu),
            // Anywhere but here; keep a pin that already is elsewhere.
            handoff::Mode::Split => match self.pinned {
                Some(p) if p != cpu => return,
                _ => handoff::other_cpu(cpu),
            },
        };
        let Some(want) = want else { return };
        if self.pinned != Some(want) && ptrace::set_affinity(self.tid, Some(want)) {
            self.pinned = Some(want);
        }
    }

    /// Runs the guest with `regs` until it traps.
    pub fn run(&mut self, regs: &mut Registers) -> Result<Trap, HostError> {
        self.flush()?;
        self.place();
        // Running first, then the flag: see [`Interrupter`].
        self.running.store(true, Ordering::SeqCst);
        if self.kicked.swap(false, Ordering::SeqCst) {
            self.running.store(false, Ordering::SeqCst);
            return Ok(Trap::Interrupted);
        }
        let (lo, hi) = self.stack_range();
        let f = &mut self.frame[..];
        let gp = [
            regs.r8,
            regs.r9,
            regs.r10,
            regs.r11,
            regs.r12,
            regs.r13,
            regs.r14,
            regs.r15,
            regs.rdi,
            regs.rsi,
            regs.rbp,
            regs.rbx,
            regs.rdx,
            regs.rax,
            regs.rcx,
            regs.rsp,
            regs.rip,
            regs.eflags,
        ];
        for (i, v) in gp.iter().enumerate() {
            wr64(f, uc::GREGS + 8 * i, *v);
        }
        // The host's signal stack and an empty signal mask, whatever the
        // shared copy says now.
        wr64(f, uc::STACK_SP, lo);
        f[uc::STACK_FLAGS..uc::STACK_FLAGS + 8].fill(0);
        wr64(f, uc::STACK_SIZE, hi - lo);
        wr64(f, uc::SIGMASK, 0);
        wr64(f, uc::FPSTATE, self.fp_addr);
        self.region_write(self.uc_addr, &self.frame[..uc::LEN]);
        let p = self.aspace.proc.clone();
        p.word64(self.pfns[0], sstub::CTL_UC)
            .store(self.uc_addr, Ordering::Relaxed);
        p.word64(self.pfns[0], sstub::CTL_FS)
            .store(regs.fs_base, Ordering::Relaxed);
        p.word64(self.pfns[0], sstub::CTL_GS)
            .store(regs.gs_base, Ordering::Relaxed);
        p.word32(self.pfns[0], sstub::CTL_SPIN)
            .store(self.handoff.stub_spin(), Ordering::Relaxed);
        let st = self.state();
        let resumed = Instant::now();
        if st.swap(sstub::ST_RESUME, Ordering::SeqCst) == sstub::ST_SWAIT {
            futex_wake(st.as_ptr());
        }
        let waited = self.wait_trap(self.handoff.kernel_spin());
        self.running.store(false, Ordering::SeqCst);
        waited?;
        let trap = self.load_frame(regs)?;
        if trap == Trap::Syscall {
            if rd32(&self.frame[..], uc::SI_ERRNO) == crate::patch::ENTRY_ERRNO {
                // Through the signal-less entry: a patched site's call.
                stats::bump(Counter::SitePatched);
            } else {
                crate::patch::census(self.aspace.host_pid(), regs.rip);
            }
        }
        stats::bump(match trap {
            Trap::Syscall => Counter::TrapSyscall,
            Trap::Signal(_) => Counter::TrapSignal,
            Trap::Interrupted => Counter::TrapInterrupted,
        });
        // Trap to trap: the kernel's work (up to the resume), both
        // handoffs and the guest's.
        let now = Instant::now();
        if let Some(prev) = self.last_trap.take() {
            if trap != Trap::Interrupted {
                self.handoff
                    .record(now - prev, resumed.saturating_duration_since(prev));
            }
        }
        if trap != Trap::Interrupted {
            self.last_trap = Some(now);
        }
        Ok(trap)
    }

    /// Makes a new guest thread in this address space (by the helper).
    pub fn new_thread(&mut self) -> Result<NewThread, HostError> {
        stats::bump(Counter::ThreadsMade);
        self.aspace.spawn_thread(true)
    }

    /// The XSAVE area of the last trap's frame, and its size.
    fn fpu_area(&self) -> Result<Vec<u8>, HostError> {
        if self.fp_addr == 0 {
            return Err(HostError::new("no FPU state in the signal frame", 0));
        }
        let mut legacy = vec![0u8; 512];
        self.region_read(self.fp_addr, &mut legacy);
        let mut len = 512usize;
        if rd32(&legacy, 464) == FP_XSTATE_MAGIC1 {
            let size = rd32(&legacy, 480) as u64;
            if size < 576 || self.fp_addr + size + 4 > self.stack_range().1 {
                return Err(HostError::new("bad XSAVE size in the signal frame", 0));
            }
            len = size as usize;
        }
        let mut buf = vec![0u8; len];
        self.region_read(self.fp_addr, &mut buf);
        Ok(buf)
    }

    /// The guest thread's x87/SSE/AVX state.
    pub fn get_fpu(&self) -> Result<FpuState, HostError> {
        self.fpu_area().map(FpuState)
    }

    /// Replaces the guest thread's x87/SSE/AVX state, after checking it
    /// as the host's XRSTOR would (an invalid state is an error).
    pub fn set_fpu(&self, fpu: &FpuState) -> Result<(), HostError> {
        let cur = self.fpu_area()?;
        let new = &fpu.0;
        let bad = |what: &str| {
            Err(HostError::new(
                format!("invalid FPU state: {what}"),
                libc::EINVAL,
            ))
        };
        if new.len() != cur.len() {
            return bad("size");
        }
        let mut mask = rd32(&cur, 28);
        if mask == 0 {
            mask = 0xffbf;
        }
        if rd32(new, 24) & !mask != 0 {
            return bad("MXCSR");
        }
        if cur.len() > 512 {
            let features = rd64(&cur, 472);
            if rd64(new, 512) & !features != 0 || rd64(new, 520) != 0 {
                return bad("XSTATE header");
            }
            if new[528..576].iter().any(|&b| b != 0) {
                return bad("XSTATE header reserved bytes");
            }
        }
        // The software-reserved bytes stay the host's.
        self.region_write(self.fp_addr, &new[..464]);
        if new.len() > 512 {
            self.region_write(self.fp_addr + 512, &new[512..]);
        }
        Ok(())
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let st = self.state();
        // The last thread of a stub that may be recycled stays in its
        // handler (see [`Stub::recycle`]); the stub's last reference
        // decides.
        if recycling() && self.tid > 0 {
            let cur = st.load(Ordering::Acquire);
            let mut s = self
                .aspace
                .proc
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !s.broken && s.in_use() == 1 && (cur == sstub::ST_TRAPPED || cur == sstub::ST_SWAIT)
            {
                s.parked = Some(Parked {
                    slot: self.slot,
                    tid: self.tid,
                });
                return;
            }
        }
        if st.swap(sstub::ST_EXIT, Ordering::SeqCst) == sstub::ST_SWAIT {
            futex_wake(st.as_ptr());
        }
        if Arc::strong_count(&self.aspace.proc) == 1 {
            // The process dies with this reference.
            return;
        }
        // The slot may be reused once the thread is gone: the host clears
        // the state word after its last access to the region.
        for _ in 0..200 {
            let v = st.load(Ordering::Acquire);
            // SAFETY: signal 0 only checks that the thread exists.
            let gone =
                unsafe { libc::syscall(libc::SYS_tgkill, self.aspace.host_pid(), self.tid, 0) } < 0;
            if gone {
                let mut s = self
                    .aspace
                    .proc
                    .slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                s.free.push(self.slot);
                return;
            }
            futex_wait(st, v, Some(5_000_000));
        }
    }
}
