//! io_uring: io_uring_setup, io_uring_enter, io_uring_register.
//!
//! The rings live in memory the guest and the kernel share: at setup the
//! kernel allocates physmem frames for the ring region (SQ and CQ heads
//! and tails, masks, flags, the CQE array and the SQ index array) and for
//! the SQE array, and the ring's file hands those frames to mmap through
//! [`FileOps::page_frame`] at Linux's offsets (`IORING_OFF_SQ_RING` and
//! `IORING_OFF_CQ_RING` both map the one ring region, as with
//! IORING_FEAT_SINGLE_MMAP; `IORING_OFF_SQES` the SQEs), as tmpfs and SysV
//! shm hand theirs. The kernel reads and writes the same frames through its
//! own mapping of physmem, with atomic loads and stores on the indices.
//!
//! The kernel keeps its own copies of the indices it owns (the SQ head and
//! the CQ tail) and only ever stores them into shared memory: whatever the
//! guest writes there cannot steer it. Every SQE is copied out once and
//! validated from the copy (IORING_FEAT_SUBMIT_STABLE).
//!
//! Execution. A request runs at submission, in the submitter's context,
//! when nothing holds it back (a link predecessor, a drain, IOSQE_ASYNC)
//! and it cannot block: operations on streams (pipes, sockets, terminals)
//! run non-blocking and, on EAGAIN, are armed on the file's readiness, as
//! Linux's internal poll does (IORING_FEAT_FAST_POLL). What is left — armed
//! requests, timeouts, links behind them, IOSQE_ASYNC — is finished by one
//! kernel worker thread per ring, started when needed and ended when
//! nothing is pending, which sleeps on the files' [`Waiters`] and the
//! earliest timeout. Completions are posted to the CQ ring (or, when it is
//! full, kept on a bounded overflow list: IORING_FEAT_NODROP) and wake
//! io_uring_enter's waiters, pollers of the ring fd and a registered
//! eventfd.
//!
//! Limits: at most [`MAX_RINGS`] rings in the instance, and at most
//! `cq_entries` (and [`MAX_INFLIGHT`]) requests in flight (pending plus
//! overflowed completions) per ring: io_uring_enter gives EBUSY beyond, so the memory a guest can
//! make the kernel hold is bounded.
//!
//! Locking: one mutex over a ring's [`State`]; it is never held while an
//! operation runs (operations may block on a host file) nor while
//! sleeping. Readiness checks (`FileOps::poll`) run under it; the ring's
//! own `poll` reads only the shared indices, so polling a ring from its
//! own request cannot deadlock (POLL_ADD on an io_uring fd is refused
//! anyway, as it would make a reference cycle).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use ruml_host::{Pfn, PhysMem};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, POLLERR, POLLHUP, READABLE, WRITABLE};
use crate::fs::types::oflags::{O_NONBLOCK, O_RDWR};
use crate::fs::vfs::FileOps;
use crate::syscall_table;
use crate::syscalls::names::nr;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::wait::Waker;
use crate::task::Task;

const PAGE: u64 = 4096;

pub const IORING_OFF_SQ_RING: u64 = 0;
pub const IORING_OFF_CQ_RING: u64 = 0x800_0000;
pub const IORING_OFF_SQES: u64 = 0x1000_0000;

/// Largest SQ ring (Linux's IORING_MAX_ENTRIES) and CQ ring.
const MAX_ENTRIES: u32 = 32768;
const MAX_CQ_ENTRIES: u32 = 2 * MAX_ENTRIES;
/// Rings one instance may hold at once (each may own a worker thread).
pub const MAX_RINGS: usize = 1024;
/// Requests one ring holds in flight at most (pending plus overflowed
/// completions; also bounded by its CQ size).
const MAX_INFLIGHT: usize = 4096;
static RINGS: AtomicUsize = AtomicUsize::new(0);

// Setup flags.
const SETUP_IOPOLL: u32 = 1;
const SETUP_SQPOLL: u32 = 2;
const SETUP_SQ_AFF: u32 = 4;
const SETUP_CQSIZE: u32 = 8;
const SETUP_CLAMP: u32 = 16;
const SETUP_ATTACH_WQ: u32 = 32;
const SETUP_R_DISABLED: u32 = 64;
const SETUP_SUBMIT_ALL: u32 = 128;
const SETUP_COOP_TASKRUN: u32 = 256;
const SETUP_TASKRUN_FLAG: u32 = 512;
const SETUP_SINGLE_ISSUER: u32 = 4096;
const SETUP_DEFER_TASKRUN: u32 = 8192;
const SETUP_NO_SQARRAY: u32 = 0x10000;
const SETUP_SUPPORTED: u32 = SETUP_CQSIZE
    | SETUP_CLAMP
    | SETUP_ATTACH_WQ
    | SETUP_R_DISABLED
    | SETUP_SUBMIT_ALL
    | SETUP_COOP_TASKRUN
    | SETUP_TASKRUN_FLAG
    | SETUP_SINGLE_ISSUER
    | SETUP_DEFER_TASKRUN
    | SETUP_NO_SQARRAY;

// Features, as reported: only what this implementation does.
const FEAT_SINGLE_MMAP: u32 = 1;
const FEAT_NODROP: u32 = 2;
const FEAT_SUBMIT_STABLE: u32 = 4;
const FEAT_RW_CUR_POS: u32 = 8;
const FEAT_FAST_POLL: u32 = 32;
const FEAT_POLL_32BITS: u32 = 64;
const FEAT_EXT_ARG: u32 = 256;
const FEATURES: u32 = FEAT_SINGLE_MMAP
    | FEAT_NODROP
    | FEAT_SUBMIT_STABLE
    | FEAT_RW_CUR_POS
    | FEAT_FAST_POLL
    | FEAT_POLL_32BITS
    | FEAT_EXT_ARG;

// Enter flags.
const ENTER_GETEVENTS: u32 = 1;
const ENTER_SQ_WAKEUP: u32 = 2;
const ENTER_SQ_WAIT: u32 = 4;
const ENTER_EXT_ARG: u32 = 8;

// SQE flags.
const IOSQE_FIXED_FILE: u8 = 1;
const IOSQE_IO_DRAIN: u8 = 2;
const IOSQE_IO_LINK: u8 = 4;
const IOSQE_IO_HARDLINK: u8 = 8;
const IOSQE_ASYNC: u8 = 16;
const IOSQE_CQE_SKIP_SUCCESS: u8 = 64;
const IOSQE_SUPPORTED: u8 = IOSQE_FIXED_FILE
    | IOSQE_IO_DRAIN
    | IOSQE_IO_LINK
    | IOSQE_IO_HARDLINK
    | IOSQE_ASYNC
    | IOSQE_CQE_SKIP_SUCCESS;

// SQ ring flags.
const SQ_CQ_OVERFLOW: u32 = 2;

// Opcodes.
const OP_NOP: u8 = 0;
const OP_READV: u8 = 1;
const OP_WRITEV: u8 = 2;
const OP_FSYNC: u8 = 3;
const OP_READ_FIXED: u8 = 4;
const OP_WRITE_FIXED: u8 = 5;
const OP_POLL_ADD: u8 = 6;
const OP_POLL_REMOVE: u8 = 7;
const OP_SENDMSG: u8 = 9;
const OP_RECVMSG: u8 = 10;
const OP_TIMEOUT: u8 = 11;
const OP_TIMEOUT_REMOVE: u8 = 12;
const OP_ACCEPT: u8 = 13;
const OP_ASYNC_CANCEL: u8 = 14;
const OP_CONNECT: u8 = 16;
const OP_OPENAT: u8 = 18;
const OP_CLOSE: u8 = 19;
const OP_STATX: u8 = 21;
const OP_READ: u8 = 22;
const OP_WRITE: u8 = 23;
const OP_SEND: u8 = 26;
const OP_RECV: u8 = 27;
const OP_SPLICE: u8 = 30;
const OP_TEE: u8 = 33;
/// SPLICE/TEE: splice_fd_in is a registered file's index.
const SPLICE_F_FD_IN_FIXED: u32 = 1 << 31;
const SPLICE_F_NONBLOCK: u32 = 2;
/// Opcodes this implementation serves (IORING_REGISTER_PROBE says so).
const SUPPORTED_OPS: &[u8] = &[
    OP_NOP,
    OP_READV,
    OP_WRITEV,
    OP_FSYNC,
    OP_READ_FIXED,
    OP_WRITE_FIXED,
    OP_POLL_ADD,
    OP_POLL_REMOVE,
    OP_SENDMSG,
    OP_RECVMSG,
    OP_TIMEOUT,
    OP_TIMEOUT_REMOVE,
    OP_ACCEPT,
    OP_ASYNC_CANCEL,
    OP_CONNECT,
    OP_OPENAT,
    OP_CLOSE,
    OP_STATX,
    OP_READ,
    OP_WRITE,
    OP_SEND,
    OP_RECV,
    OP_SPLICE,
    OP_TEE,
];
/// IORING_OP_LAST as the probe reports it (the kernel ruml models).
const OP_LAST: u8 = 58;

// Timeout flags.
const TIMEOUT_ABS: u32 = 1;
const TIMEOUT_BOOTTIME: u32 = 4;
const TIMEOUT_REALTIME: u32 = 8;
const TIMEOUT_ETIME_SUCCESS: u32 = 32;

// Cancel flags.
const CANCEL_ALL: u32 = 1;
const CANCEL_FD: u32 = 2;
const CANCEL_ANY: u32 = 4;

const FSYNC_DATASYNC: u32 = 1;

// Register opcodes.
const REGISTER_BUFFERS: u32 = 0;
const UNREGISTER_BUFFERS: u32 = 1;
const REGISTER_FILES: u32 = 2;
const UNREGISTER_FILES: u32 = 3;
const REGISTER_EVENTFD: u32 = 4;
const UNREGISTER_EVENTFD: u32 = 5;
const REGISTER_FILES_UPDATE: u32 = 6;
const REGISTER_EVENTFD_ASYNC: u32 = 7;
const REGISTER_PROBE: u32 = 8;
const REGISTER_ENABLE_RINGS: u32 = 12;

/// Registered buffers: Linux's IORING_MAX_REG_BUFFERS and 1 GiB each.
const MAX_REG_BUFFERS: u32 = 1 << 14;
const MAX_REG_BUFFER_LEN: u64 = 1 << 30;

// The layout of the ring region (offsets reported in io_uring_params).
const SQ_HEAD: usize = 0;
const SQ_TAIL: usize = 4;
const CQ_HEAD: usize = 64;
const CQ_TAIL: usize = 68;
const SQ_MASK: usize = 128;
const CQ_MASK: usize = 132;
const SQ_ENTRIES: usize = 136;
const CQ_ENTRIES: usize = 140;
const SQ_DROPPED: usize = 144;
const SQ_FLAGS: usize = 148;
const CQ_FLAGS: usize = 152;
const CQ_OVERFLOW: usize = 156;
const CQES: usize = 192;
const SQE_SIZE: usize = 64;
const CQE_SIZE: usize = 16;

/// Frames the kernel allocated for a ring, zeroed, freed on drop.
pub(crate) struct Region {
    pub(crate) phys: Arc<PhysMem>,
    pub(crate) pfns: Vec<Pfn>,
}

impl Region {
    pub(crate) fn new(phys: &Arc<PhysMem>, bytes: usize) -> KResult<Region> {
        let n = bytes.div_ceil(PAGE as usize);
        let mut r = Region {
            phys: phys.clone(),
            pfns: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let Some(pfn) = phys.alloc() else {
                return error!(ENOMEM);
            };
            phys.zero(pfn, 0, PAGE as usize);
            r.pfns.push(pfn);
        }
        Ok(r)
    }

    pub(crate) fn pages(&self) -> u64 {
        self.pfns.len() as u64
    }

    /// The u32 at byte `off` (4-aligned, inside the region).
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        let pfn = self.pfns[off / PAGE as usize];
        // SAFETY: the frame is ours for the region's lifetime, physmem's
        // mapping is valid for the kernel's lifetime, and `off` is
        // 4-aligned, so the u32 lies inside one page.
        unsafe { &*(self.phys.page_ptr(pfn).add(off % PAGE as usize) as *const AtomicU32) }
    }

    pub(crate) fn load(&self, off: usize) -> u32 {
        self.word(off).load(Ordering::Acquire)
    }

    pub(crate) fn store(&self, off: usize, v: u32) {
        self.word(off).store(v, Ordering::Release)
    }

    /// Bytes at `off` that never cross a page (an SQE or a CQE).
    pub(crate) fn read(&self, off: usize, buf: &mut [u8]) {
        self.phys
            .read(self.pfns[off / PAGE as usize], off % PAGE as usize, buf);
    }

    pub(crate) fn write(&self, off: usize, data: &[u8]) {
        self.phys
            .write(self.pfns[off / PAGE as usize], off % PAGE as usize, data);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.phys.put_many(&self.pfns);
    }
}

/// One submission queue entry, copied out of the ring.
#[derive(Clone, Copy)]
struct Sqe([u8; SQE_SIZE]);

impl Sqe {
    fn u8(&self, o: usize) -> u8 {
        self.0[o]
    }
    fn u16(&self, o: usize) -> u16 {
        u16::from_le_bytes([self.0[o], self.0[o + 1]])
    }
    fn u32(&self, o: usize) -> u32 {
        u32::from_le_bytes(self.0[o..o + 4].try_into().unwrap_or([0; 4]))
    }
    fn u64(&self, o: usize) -> u64 {
        u64::from_le_bytes(self.0[o..o + 8].try_into().unwrap_or([0; 8]))
    }
    fn opcode(&self) -> u8 {
        self.u8(0)
    }
    fn flags(&self) -> u8 {
        self.u8(1)
    }
    fn ioprio(&self) -> u16 {
        self.u16(2)
    }
    fn fd(&self) -> i32 {
        self.u32(4) as i32
    }
    fn off(&self) -> u64 {
        self.u64(8)
    }
    fn addr(&self) -> u64 {
        self.u64(16)
    }
    fn len(&self) -> u32 {
        self.u32(24)
    }
    fn op_flags(&self) -> u32 {
        self.u32(28)
    }
    fn user_data(&self) -> u64 {
        self.u64(32)
    }
    fn buf_index(&self) -> u16 {
        self.u16(40)
    }
    fn personality(&self) -> u16 {
        self.u16(42)
    }
    fn file_index(&self) -> u32 {
        self.u32(44)
    }
}

/// What holds a pending request back besides its links.
enum Wait {
    /// Nothing: it runs when its turn comes.
    None,
    /// Until the file reports one of the events (POLL_ADD, or an
    /// operation that got EAGAIN).
    Ready(FileRef, PollEvents),
    /// TIMEOUT: until the deadline, or until `target` completions.
    Timer(Instant, Option<u64>),
}

/// A submitted request not yet completed.
struct Req {
    id: u64,
    sqe: Sqe,
    /// Who submitted it: operations run with its descriptors, memory and
    /// credentials.
    task: Weak<Task>,
    /// The link predecessor that must complete first.
    link_prev: Option<u64>,
    wait: Wait,
    /// Being executed outside the lock.
    running: bool,
}

/// A ring's mutable state; see the module doc for the locking.
struct State {
    pending: Vec<Req>,
    overflow: VecDeque<[u8; CQE_SIZE]>,
    /// The kernel's own SQ head and CQ tail.
    sq_head: u32,
    cq_tail: u32,
    files: Vec<Option<FileRef>>,
    buffers: Vec<(u64, u64)>,
    eventfd: Option<FileRef>,
    /// CQEs posted for anything but timeouts (TIMEOUT's count).
    completions: u64,
    next_id: u64,
    /// The open link chain of the current submission and how its last
    /// member ended if it already did (`Some(failed)`).
    link_tail: Option<u64>,
    link_tail_done: Option<bool>,
    enabled: bool,
    worker: bool,
}

/// An io_uring instance: the open file's object.
pub struct IoUring {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    rings: Region,
    sqes: Region,
    sq_array: usize,
    state: Mutex<State>,
    cq_waiters: Waiters,
    worker_waker: Arc<Waker>,
    dead: AtomicBool,
    me: Weak<IoUring>,
}

/// How an operation ended.
enum Outcome {
    Done(i64),
    /// Would block: arm on the file for these events.
    Again(FileRef, PollEvents),
}

fn errno_res(e: Errno) -> i64 {
    // Restart codes never reach a CQE.
    let n = e.as_i32();
    -(if n >= 512 { Errno::EINTR.as_i32() } else { n } as i64)
}

fn res_of(r: KResult<u64>) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => errno_res(e),
    }
}

fn is_ring(f: &OpenFile) -> bool {
    f.ops()
        .is_ok_and(|o| o.as_any_ops().downcast_ref::<IoUring>().is_some())
}

impl IoUring {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cq_ready(&self) -> u32 {
        let st = self.lock();
        st.cq_tail.wrapping_sub(self.rings.load(CQ_HEAD))
    }

    /// Moves overflowed CQEs into the ring while it has room.
    fn flush_overflow(&self, st: &mut State) {
        while let Some(c) = st.overflow.front() {
            let head = self.rings.load(CQ_HEAD);
            if st.cq_tail.wrapping_sub(head) >= self.cq_entries {
                return;
            }
            let slot = (st.cq_tail & (self.cq_entries - 1)) as usize;
            self.rings.write(CQES + slot * CQE_SIZE, c);
            st.cq_tail = st.cq_tail.wrapping_add(1);
            self.rings.store(CQ_TAIL, st.cq_tail);
            st.overflow.pop_front();
        }
        let f = self.rings.load(SQ_FLAGS) & !SQ_CQ_OVERFLOW;
        self.rings.store(SQ_FLAGS, f);
    }

    /// Posts one CQE (to the overflow list when the ring is full).
    fn post(&self, st: &mut State, user_data: u64, res: i64, cflags: u32) {
        let mut c = [0u8; CQE_SIZE];
        c[..8].copy_from_slice(&user_data.to_le_bytes());
        c[8..12].copy_from_slice(&(res as i32).to_le_bytes());
        c[12..].copy_from_slice(&cflags.to_le_bytes());
        st.overflow.push_back(c);
        self.flush_overflow(st);
        if !st.overflow.is_empty() {
            let f = self.rings.load(SQ_FLAGS) | SQ_CQ_OVERFLOW;
            self.rings.store(SQ_FLAGS, f);
        }
        if let Some(e) = &st.eventfd {
            let _ = e.write(&1u64.to_le_bytes());
        }
        self.cq_waiters.wake_all();
    }

    /// Completes pending request `idx` with `res`: posts its CQE and
    /// releases (or, on failure, cancels) its link successor, and so on
    /// down a failed chain (iteratively: chains may be long).
    fn complete(&self, st: &mut State, idx: usize, res: i64) {
        let (mut idx, mut res) = (idx, res);
        loop {
            let req = st.pending.remove(idx);
            let sqe = req.sqe;
            let op = sqe.opcode();
            let mut failed = res < 0;
            if op == OP_TIMEOUT && res == -(Errno::ETIME.as_i32() as i64) {
                failed = sqe.op_flags() & TIMEOUT_ETIME_SUCCESS == 0;
            }
            if matches!(op, OP_READ | OP_WRITE | OP_READ_FIXED | OP_WRITE_FIXED)
                && res >= 0
                && res < sqe.len() as i64
            {
                failed = true; // a short transfer breaks a link
            }
            if !(sqe.flags() & IOSQE_CQE_SKIP_SUCCESS != 0 && res >= 0) {
                self.post(st, sqe.user_data(), res, 0);
            }
            if op != OP_TIMEOUT {
                st.completions += 1;
            }
            let hard = sqe.flags() & IOSQE_IO_HARDLINK != 0;
            if st.link_tail == Some(req.id) {
                st.link_tail_done = Some(failed && !hard);
            }
            let Some(n) = st.pending.iter().position(|r| r.link_prev == Some(req.id)) else {
                return;
            };
            if failed && !hard {
                idx = n;
                res = -(Errno::ECANCELED.as_i32() as i64);
            } else {
                st.pending[n].link_prev = None;
                return;
            }
        }
    }

    /// The index of the next request that can make progress now, with
    /// whether it only needs completing under the lock (timers, polls).
    fn next_runnable(&self, st: &mut State, inline: bool) -> Option<(usize, Option<i64>)> {
        for i in 0..st.pending.len() {
            let r = &st.pending[i];
            let drain = r.sqe.flags() & IOSQE_IO_DRAIN != 0;
            if drain && i > 0 {
                return None;
            }
            if r.running || r.link_prev.is_some() {
                if drain {
                    return None;
                }
                continue;
            }
            let found = match &r.wait {
                Wait::Timer(deadline, target) => {
                    if target.is_some_and(|t| st.completions >= t) {
                        Some((i, Some(0)))
                    } else if Instant::now() >= *deadline {
                        Some((i, Some(-(Errno::ETIME.as_i32() as i64))))
                    } else {
                        None
                    }
                }
                Wait::Ready(f, ev) => {
                    let rev =
                        f.ops().map(|o| o.poll(f)).unwrap_or(POLLERR) & (ev | POLLERR | POLLHUP);
                    if rev == 0 {
                        None
                    } else if r.sqe.opcode() == OP_POLL_ADD {
                        Some((i, Some(rev as i64)))
                    } else {
                        Some((i, None))
                    }
                }
                Wait::None => {
                    if inline && r.sqe.flags() & IOSQE_ASYNC != 0 {
                        None
                    } else {
                        Some((i, None))
                    }
                }
            };
            if found.is_some() {
                return found;
            }
            if drain {
                return None;
            }
        }
        None
    }

    /// Runs whatever can run. `ctx` is the submitter's (inline) or None
    /// (the worker: each request runs as the task that submitted it).
    fn progress(&self, mut ctx: Option<&mut SyscallContext<'_>>) -> bool {
        let mut any = false;
        loop {
            let mut st = self.lock();
            let Some((i, done)) = self.next_runnable(&mut st, ctx.is_some()) else {
                return any;
            };
            any = true;
            if let Some(res) = done {
                self.complete(&mut st, i, res);
                continue;
            }
            st.pending[i].running = true;
            let (id, sqe, task) = {
                let r = &st.pending[i];
                (r.id, r.sqe, r.task.clone())
            };
            drop(st);
            let outcome = match &mut ctx {
                Some(c) => self.execute(c, &sqe),
                None => match task.upgrade() {
                    Some(t) => {
                        let mut regs = ruml_host::Registers::default();
                        let mut c = SyscallContext {
                            task: &t,
                            regs: &mut regs,
                            after: None,
                            host: None,
                        };
                        self.execute(&mut c, &sqe)
                    }
                    None => Outcome::Done(-(Errno::ECANCELED.as_i32() as i64)),
                },
            };
            let mut st = self.lock();
            let Some(i) = st.pending.iter().position(|r| r.id == id) else {
                continue;
            };
            match outcome {
                Outcome::Done(res) => self.complete(&mut st, i, res),
                Outcome::Again(f, ev) => {
                    let r = &mut st.pending[i];
                    r.running = false;
                    r.wait = Wait::Ready(f, ev);
                }
            }
        }
    }

    /// Starts (or wakes) the worker when requests are left pending.
    fn ensure_worker(&self) {
        let mut st = self.lock();
        if st.pending.is_empty() {
            return;
        }
        if st.worker {
            drop(st);
            self.worker_waker.poke();
            return;
        }
        let weak = self.me.clone();
        let waker = self.worker_waker.clone();
        let spawned = std::thread::Builder::new()
            .name("io_uring-wq".into())
            .stack_size(256 << 10)
            .spawn(move || worker(weak, waker));
        st.worker = spawned.is_ok();
    }

    /// What the worker sleeps on: the armed files and the earliest timer.
    fn wait_set(&self) -> (Vec<FileRef>, Option<Instant>) {
        let st = self.lock();
        let mut files = Vec::new();
        let mut deadline: Option<Instant> = None;
        for r in &st.pending {
            match &r.wait {
                Wait::Ready(f, _) => files.push(f.clone()),
                Wait::Timer(d, _) => deadline = Some(deadline.map_or(*d, |x| x.min(*d))),
                Wait::None => {}
            }
        }
        (files, deadline)
    }

    /// The file a request names: a registered one with IOSQE_FIXED_FILE.
    fn file(&self, ctx: &SyscallContext<'_>, sqe: &Sqe) -> KResult<FileRef> {
        let fd = sqe.fd();
        let f = if sqe.flags() & IOSQE_FIXED_FILE != 0 {
            let st = self.lock();
            usize::try_from(fd)
                .ok()
                .and_then(|i| st.files.get(i).cloned().flatten())
                .ok_or(Errno::EBADF)?
        } else {
            ctx.files().get(fd)?
        };
        if f.is_path_only() {
            return error!(EBADF);
        }
        Ok(f)
    }

    /// Runs one operation.
    fn execute(&self, ctx: &mut SyscallContext<'_>, sqe: &Sqe) -> Outcome {
        match self.execute_inner(ctx, sqe) {
            Ok(o) => o,
            Err(e) => Outcome::Done(errno_res(e)),
        }
    }

    /// A handler by number, for operations that work on descriptors
    /// (OPENAT, CLOSE, STATX and the socket calls): registered files are
    /// not descriptors, so IOSQE_FIXED_FILE gives EBADF for these.
    fn call(ctx: &mut SyscallContext<'_>, sqe: &Sqe, n: u64, args: [u64; 6]) -> KResult<u64> {
        if sqe.flags() & IOSQE_FIXED_FILE != 0 {
            return error!(EBADF);
        }
        let (h, _) = crate::syscalls::lookup(n).ok_or(Errno::ENOSYS)?;
        h(ctx, args)
    }

    /// IORING_OP_SPLICE and IORING_OP_TEE: splice_fd_in (a registered
    /// file with SPLICE_F_FD_IN_FIXED) to the SQE's fd, offsets as values
    /// (-1: the file position). A pipe with nothing to give, or no room,
    /// makes the request wait for it, as Linux's worker thread would block.
    fn splice(&self, ctx: &mut SyscallContext<'_>, sqe: &Sqe) -> KResult<Outcome> {
        let flags = sqe.op_flags();
        if flags & !(0xf | SPLICE_F_FD_IN_FIXED) != 0 {
            return error!(EINVAL);
        }
        let tee = sqe.opcode() == OP_TEE;
        if tee && (sqe.addr() != 0 || sqe.off() != 0) {
            return error!(EINVAL);
        }
        let fd_in = sqe.file_index() as i32;
        let inf = if flags & SPLICE_F_FD_IN_FIXED != 0 {
            let st = self.lock();
            usize::try_from(fd_in)
                .ok()
                .and_then(|i| st.files.get(i).cloned().flatten())
                .ok_or(Errno::EBADF)?
        } else {
            ctx.files().get(fd_in)?
        };
        let outf = self.file(ctx, sqe)?;
        let offset = |v: u64| (v != u64::MAX).then_some(v);
        let (pin, pout) = if tee {
            (None, None)
        } else {
            (offset(sqe.addr()), offset(sqe.off()))
        };
        if tee {
            if !inf.can_read() || !outf.can_write() {
                return error!(EBADF);
            }
        } else {
            crate::fs::copy::splice_check(&inf, pin.is_some(), &outf, pout.is_some())?;
        }
        let len = sqe.len() as usize;
        if flags & SPLICE_F_NONBLOCK == 0 && len > 0 {
            let is_pipe = |f: &FileRef| f.file_type() == crate::fs::types::FileType::Fifo;
            if is_pipe(&inf) && inf.ops()?.poll(&inf) & (READABLE | POLLHUP | POLLERR) == 0 {
                return Ok(Outcome::Again(inf, READABLE));
            }
            if is_pipe(&outf) && outf.ops()?.poll(&outf) & (WRITABLE | POLLERR) == 0 {
                return Ok(Outcome::Again(outf, WRITABLE));
            }
        }
        let r = if tee {
            if len == 0 {
                Ok(0)
            } else {
                crate::fs::pipe::tee(&inf, &outf, len, true, Some(ctx.task)).map(|n| n as u64)
            }
        } else {
            crate::fs::copy::splice_files(
                ctx,
                &inf,
                pin,
                &outf,
                pout,
                len,
                flags | SPLICE_F_NONBLOCK,
            )
            .map(|(n, _, _)| n)
        };
        Ok(Outcome::Done(res_of(r)))
    }

    fn execute_inner(&self, ctx: &mut SyscallContext<'_>, sqe: &Sqe) -> KResult<Outcome> {
        let op = sqe.opcode();
        let done = |r: KResult<u64>| Ok(Outcome::Done(res_of(r)));
        match op {
            OP_NOP => done(Ok(0)),
            OP_READ | OP_WRITE | OP_READV | OP_WRITEV | OP_READ_FIXED | OP_WRITE_FIXED => {
                self.rw(ctx, sqe)
            }
            OP_FSYNC => {
                if sqe.op_flags() & !FSYNC_DATASYNC != 0 {
                    return error!(EINVAL);
                }
                let f = self.file(ctx, sqe)?;
                done(
                    f.ops()?
                        .sync(sqe.op_flags() & FSYNC_DATASYNC != 0)
                        .map(|_| 0),
                )
            }
            OP_OPENAT => {
                if sqe.file_index() != 0 {
                    return error!(EINVAL);
                }
                let a = [
                    sqe.fd() as i64 as u64,
                    sqe.addr(),
                    sqe.op_flags() as u64,
                    sqe.len() as u64,
                    0,
                    0,
                ];
                let mut s = *sqe;
                s.0[1] &= !IOSQE_FIXED_FILE;
                done(Self::call(ctx, &s, nr::OPENAT, a))
            }
            OP_CLOSE => {
                if sqe.file_index() != 0 {
                    return error!(EINVAL);
                }
                done(Self::call(
                    ctx,
                    sqe,
                    nr::CLOSE,
                    [sqe.fd() as u64, 0, 0, 0, 0, 0],
                ))
            }
            OP_STATX => {
                let a = [
                    sqe.fd() as i64 as u64,
                    sqe.addr(),
                    sqe.op_flags() as u64,
                    sqe.len() as u64,
                    sqe.off(),
                    0,
                ];
                let mut s = *sqe;
                s.0[1] &= !IOSQE_FIXED_FILE;
                done(Self::call(ctx, &s, nr::STATX, a))
            }
            OP_CONNECT => done(Self::call(
                ctx,
                sqe,
                nr::CONNECT,
                [sqe.fd() as u64, sqe.addr(), sqe.off(), 0, 0, 0],
            )),
            OP_ACCEPT => {
                let f = self.file(ctx, sqe)?;
                if f.ops()?.poll(&f) & (READABLE | POLLERR | POLLHUP) == 0 {
                    if f.nonblocking() {
                        return error!(EAGAIN);
                    }
                    return Ok(Outcome::Again(f, READABLE));
                }
                done(Self::call(
                    ctx,
                    sqe,
                    nr::ACCEPT4,
                    [
                        sqe.fd() as u64,
                        sqe.addr(),
                        sqe.off(),
                        sqe.op_flags() as u64,
                        0,
                        0,
                    ],
                ))
            }
            OP_SPLICE | OP_TEE => self.splice(ctx, sqe),
            OP_SEND | OP_RECV | OP_SENDMSG | OP_RECVMSG => {
                let f = self.file(ctx, sqe)?;
                let user_flags = sqe.op_flags() as i32;
                let flags = (user_flags | crate::net::MSG_DONTWAIT) as u64;
                let fd = sqe.fd() as u64;
                let (n, args, ev) = match op {
                    OP_SEND => (
                        nr::SENDTO,
                        [fd, sqe.addr(), sqe.len() as u64, flags, 0, 0],
                        WRITABLE,
                    ),
                    OP_RECV => (
                        nr::RECVFROM,
                        [fd, sqe.addr(), sqe.len() as u64, flags, 0, 0],
                        READABLE,
                    ),
                    OP_SENDMSG => (nr::SENDMSG, [fd, sqe.addr(), flags, 0, 0, 0], WRITABLE),
                    _ => (nr::RECVMSG, [fd, sqe.addr(), flags, 0, 0, 0], READABLE),
                };
                match Self::call(ctx, sqe, n, args) {
                    Err(Errno::EAGAIN)
                        if user_flags & crate::net::MSG_DONTWAIT == 0 && !f.nonblocking() =>
                    {
                        Ok(Outcome::Again(f, ev))
                    }
                    r => done(r),
                }
            }
            OP_POLL_ADD => {
                let f = self.file(ctx, sqe)?;
                if is_ring(&f) {
                    return error!(EINVAL);
                }
                let ev = sqe.op_flags();
                let rev = f.ops()?.poll(&f) & (ev | POLLERR | POLLHUP);
                if rev != 0 {
                    return done(Ok(rev as u64));
                }
                Ok(Outcome::Again(f, ev))
            }
            OP_POLL_REMOVE | OP_TIMEOUT_REMOVE | OP_ASYNC_CANCEL => {
                done(self.cancel(ctx, sqe).map(|n| n as u64))
            }
            _ => error!(EINVAL),
        }
    }

    /// The segments of a read/write request.
    fn rw_segs(&self, ctx: &SyscallContext<'_>, sqe: &Sqe) -> KResult<Vec<(u64, usize)>> {
        match sqe.opcode() {
            OP_READV | OP_WRITEV => {
                crate::fs::syscalls::read_iovecs(ctx, UserAddr(sqe.addr()), sqe.len() as i32)
            }
            OP_READ_FIXED | OP_WRITE_FIXED => {
                let st = self.lock();
                let (base, blen) = *st
                    .buffers
                    .get(sqe.buf_index() as usize)
                    .ok_or(Errno::EFAULT)?;
                let (a, l) = (sqe.addr(), sqe.len() as u64);
                if a < base || a.checked_add(l).is_none_or(|e| e > base + blen) {
                    return error!(EFAULT);
                }
                Ok(vec![(a, l as usize)])
            }
            _ => Ok(vec![(sqe.addr(), sqe.len() as usize)]),
        }
    }

    fn rw(&self, ctx: &mut SyscallContext<'_>, sqe: &Sqe) -> KResult<Outcome> {
        let op = sqe.opcode();
        let read = matches!(op, OP_READ | OP_READV | OP_READ_FIXED);
        let rw_flags = sqe.op_flags();
        if rw_flags & !0x7 != 0 {
            return error!(EOPNOTSUPP);
        }
        let f = self.file(ctx, sqe)?;
        let segs = self.rw_segs(ctx, sqe)?;
        let ops = f.ops()?.clone();
        let stream = !ops.seekable();
        let off = match sqe.off() as i64 {
            _ if stream => None,
            -1 => None,
            o if o < 0 => return error!(EINVAL),
            o => Some(o as u64),
        };
        if stream {
            // Non-blocking on a description of its own; EAGAIN arms it,
            // unless the file is non-blocking itself (as Linux).
            let nb = OpenFile::new(f.path.clone(), Some(ops), f.flags() | O_NONBLOCK);
            let r = if read {
                crate::fs::syscalls::do_read(ctx, &nb, &segs, None)
            } else {
                crate::fs::syscalls::do_write(ctx, &nb, &segs, None)
            };
            return Ok(match r {
                Err(Errno::EAGAIN) if !f.nonblocking() => {
                    Outcome::Again(f, if read { READABLE } else { WRITABLE })
                }
                r => Outcome::Done(res_of(r)),
            });
        }
        let r = if read {
            crate::fs::syscalls::do_read(ctx, &f, &segs, off)
        } else {
            crate::fs::syscalls::do_write(ctx, &f, &segs, off)
        };
        Ok(Outcome::Done(res_of(r)))
    }

    /// POLL_REMOVE, TIMEOUT_REMOVE, ASYNC_CANCEL: completes the matching
    /// pending requests with ECANCELED.
    fn cancel(&self, ctx: &SyscallContext<'_>, sqe: &Sqe) -> KResult<i64> {
        let op = sqe.opcode();
        let flags = sqe.op_flags();
        let target = sqe.addr();
        let (all, by_fd, any) = match op {
            OP_ASYNC_CANCEL => {
                if flags & !(CANCEL_ALL | CANCEL_FD | CANCEL_ANY) != 0 {
                    return error!(EINVAL);
                }
                (
                    flags & (CANCEL_ALL | CANCEL_ANY) != 0,
                    flags & CANCEL_FD != 0,
                    flags & CANCEL_ANY != 0,
                )
            }
            _ => {
                if flags != 0 || sqe.len() != 0 {
                    return error!(EINVAL);
                }
                (false, false, false)
            }
        };
        let fd_file = if by_fd {
            Some(ctx.files().get(sqe.fd())?)
        } else {
            None
        };
        let me = sqe.user_data();
        let matches = |r: &Req| -> bool {
            if r.sqe.opcode() == OP_ASYNC_CANCEL && r.sqe.user_data() == me {
                return false;
            }
            match op {
                OP_POLL_REMOVE => r.sqe.opcode() == OP_POLL_ADD && r.sqe.user_data() == target,
                OP_TIMEOUT_REMOVE => r.sqe.opcode() == OP_TIMEOUT && r.sqe.user_data() == target,
                _ => {
                    if any {
                        true
                    } else if let Some(ff) = &fd_file {
                        r.sqe.flags() & IOSQE_FIXED_FILE == 0
                            && ctx
                                .files()
                                .get(r.sqe.fd())
                                .is_ok_and(|g| Arc::ptr_eq(&g, ff))
                    } else {
                        r.sqe.user_data() == target
                    }
                }
            }
        };
        // A matching request the worker is attempting right now (a
        // non-blocking try, outside the lock) is waited for, briefly: it
        // either completes or goes back to waiting, and then it can be
        // cancelled. Only one still running after that is EALREADY.
        let mut st = self.lock();
        for _ in 0..10_000 {
            if !st.pending.iter().any(|r| r.running && matches(r)) {
                break;
            }
            drop(st);
            std::thread::yield_now();
            st = self.lock();
        }
        let mut count = 0i64;
        while let Some(i) = st.pending.iter().position(|r| !r.running && matches(r)) {
            self.complete(&mut st, i, -(Errno::ECANCELED.as_i32() as i64));
            count += 1;
            if !all {
                break;
            }
        }
        if count == 0 {
            return if st.pending.iter().any(|r| r.running && matches(r)) {
                error!(EALREADY)
            } else {
                error!(ENOENT)
            };
        }
        Ok(if all { count } else { 0 })
    }

    /// Checks an SQE and queues it. Errors become its CQE.
    fn prepare(&self, ctx: &SyscallContext<'_>, sqe: &Sqe) -> KResult<Wait> {
        let op = sqe.opcode();
        if sqe.flags() & !IOSQE_SUPPORTED != 0 || !SUPPORTED_OPS.contains(&op) {
            return error!(EINVAL);
        }
        if sqe.personality() != 0 {
            return error!(EINVAL);
        }
        match op {
            OP_POLL_ADD
                if sqe.len() != 0 || sqe.addr() != 0 || sqe.off() != 0 || sqe.ioprio() != 0 =>
            {
                return error!(EINVAL);
            }
            OP_TIMEOUT => {
                let fl = sqe.op_flags();
                if sqe.len() != 1 || sqe.buf_index() != 0 || sqe.file_index() != 0 {
                    return error!(EINVAL);
                }
                if fl & !(TIMEOUT_ABS | TIMEOUT_BOOTTIME | TIMEOUT_REALTIME | TIMEOUT_ETIME_SUCCESS)
                    != 0
                    || fl & TIMEOUT_BOOTTIME != 0 && fl & TIMEOUT_REALTIME != 0
                {
                    return error!(EINVAL);
                }
                let ts: crate::time::Timespec = ctx.mm().read_val(sqe.addr())?;
                if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
                    return error!(EINVAL);
                }
                let mut d = Duration::new(ts.sec as u64, ts.nsec as u32);
                if fl & TIMEOUT_ABS != 0 {
                    let clock = if fl & TIMEOUT_REALTIME != 0 {
                        0
                    } else if fl & TIMEOUT_BOOTTIME != 0 {
                        7
                    } else {
                        1
                    };
                    let now = crate::time::now(clock)?;
                    let now =
                        Duration::new(now.sec.max(0) as u64, now.nsec.clamp(0, 999_999_999) as u32);
                    d = d.saturating_sub(now);
                }
                let deadline = Instant::now()
                    .checked_add(d)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40));
                let count = sqe.off();
                let target = (count != 0).then(|| self.lock().completions.saturating_add(count));
                return Ok(Wait::Timer(deadline, target));
            }
            _ => {}
        }
        Ok(Wait::None)
    }

    /// Reads and queues up to `to_submit` SQEs; the number consumed.
    fn submit(&self, ctx: &SyscallContext<'_>, to_submit: u32) -> KResult<u32> {
        let task = Arc::downgrade(ctx.task);
        let mut st = self.lock();
        let tail = self.rings.load(SQ_TAIL);
        let avail = tail.wrapping_sub(st.sq_head).min(self.sq_entries);
        let n = to_submit.min(avail);
        let mask = self.sq_entries - 1;
        let mut done = 0u32;
        let mut full = false;
        st.link_tail = None;
        st.link_tail_done = None;
        // The previous request failed while opening or continuing a chain:
        // the next one is cancelled.
        let mut chain_failed = false;
        for _ in 0..n {
            if st.pending.len() + st.overflow.len() >= (self.cq_entries as usize).min(MAX_INFLIGHT)
            {
                full = true;
                break;
            }
            let pos = st.sq_head & mask;
            st.sq_head = st.sq_head.wrapping_add(1);
            let idx = if self.flags & SETUP_NO_SQARRAY != 0 {
                pos
            } else {
                self.rings.load(self.sq_array + pos as usize * 4)
            };
            if idx >= self.sq_entries {
                let d = self.rings.load(SQ_DROPPED).wrapping_add(1);
                self.rings.store(SQ_DROPPED, d);
                continue;
            }
            let mut sqe = Sqe([0; SQE_SIZE]);
            self.sqes.read(idx as usize * SQE_SIZE, &mut sqe.0);
            done += 1;
            let linked = sqe.flags() & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK) != 0;
            let id = st.next_id;
            st.next_id += 1;
            // The predecessor in an open chain (it may have completed
            // already, in the worker).
            let mut prev = st.link_tail;
            let mut prev_failed = chain_failed;
            if let Some(p) = prev {
                if !st.pending.iter().any(|r| r.id == p) {
                    prev = None;
                    prev_failed |= st.link_tail_done == Some(true);
                }
            }
            drop(st);
            let prepared = if prev_failed {
                Err(Errno::ECANCELED)
            } else {
                self.prepare(ctx, &sqe)
            };
            st = self.lock();
            match prepared {
                Ok(wait) => {
                    st.pending.push(Req {
                        id,
                        sqe,
                        task: task.clone(),
                        link_prev: prev,
                        wait,
                        running: false,
                    });
                    st.link_tail = if linked { Some(id) } else { None };
                    st.link_tail_done = None;
                    chain_failed = false;
                }
                Err(e) => {
                    self.post(&mut st, sqe.user_data(), errno_res(e), 0);
                    st.completions += 1;
                    st.link_tail = None;
                    chain_failed = linked;
                    if e != Errno::ECANCELED && self.flags & SETUP_SUBMIT_ALL == 0 {
                        break;
                    }
                }
            }
        }
        self.rings.store(SQ_HEAD, st.sq_head);
        st.link_tail = None;
        if done == 0 && full {
            return error!(EBUSY);
        }
        Ok(done)
    }
}

impl Drop for IoUring {
    fn drop(&mut self) {
        self.dead.store(true, Ordering::Release);
        self.worker_waker.poke();
        RINGS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The worker: finishes armed and timed requests, sleeping on their
/// files and the earliest deadline; ends when nothing is pending or the
/// ring is gone.
fn worker(weak: Weak<IoUring>, waker: Arc<Waker>) {
    loop {
        let Some(ring) = weak.upgrade() else { return };
        if ring.dead.load(Ordering::Acquire) {
            return;
        }
        if ring.progress(None) {
            continue;
        }
        {
            let mut st = ring.lock();
            if st.pending.is_empty() {
                st.worker = false;
                return;
            }
        }
        let (files, deadline) = ring.wait_set();
        for f in &files {
            if let Some(w) = f.ops().ok().and_then(|o| o.waiters()) {
                w.add_waker(&waker);
            }
        }
        // No reference is kept while asleep, and the registrations are not
        // undone (that would need the files again): the pending requests
        // own the files, so a request completed or cancelled meanwhile
        // releases its file at once (a cancelled read must not keep a
        // pipe's read end open after the guest closes it: the writer gets
        // EPIPE). A registration left on a file the ring no longer waits
        // for costs a spurious wake-up; it goes when the file or this
        // worker does.
        drop(files);
        // A change between the scan and the registration is not lost:
        // look once more before sleeping.
        let moved = ring.progress(None);
        drop(ring);
        if !moved {
            waker.sleep(deadline);
        }
    }
}

impl FileOps for IoUring {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        // Lock-free: the shared indices only.
        let mut ev = 0;
        if self.rings.load(CQ_TAIL) != self.rings.load(CQ_HEAD) {
            ev |= READABLE;
        }
        if self
            .rings
            .load(SQ_TAIL)
            .wrapping_sub(self.rings.load(SQ_HEAD))
            < self.sq_entries
        {
            ev |= WRITABLE;
        }
        ev
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.cq_waiters)
    }
    fn size(&self) -> KResult<u64> {
        Ok(IORING_OFF_SQES + self.sqes.pages() * PAGE)
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        Ok((u64::MAX - 1, self as *const IoUring as u64))
    }
    /// As Linux's io_uring_validate_mmap_request: the offset names a
    /// region (the rings or the SQEs) and the mapping is no longer than it.
    fn mmap_check(&self, off: u64, len: u64) -> KResult<()> {
        let region = match off {
            IORING_OFF_SQ_RING | IORING_OFF_CQ_RING => &self.rings,
            IORING_OFF_SQES => &self.sqes,
            _ => return error!(EINVAL),
        };
        if len > region.pages() * PAGE {
            return error!(EINVAL);
        }
        Ok(())
    }
    fn page_frame(&self, index: u64, _create: bool) -> Option<KResult<Pfn>> {
        let (region, i) = if index >= IORING_OFF_SQES / PAGE {
            (&self.sqes, index - IORING_OFF_SQES / PAGE)
        } else if index >= IORING_OFF_CQ_RING / PAGE {
            (&self.rings, index - IORING_OFF_CQ_RING / PAGE)
        } else {
            (&self.rings, index)
        };
        if i >= region.pages() {
            return Some(error!(EINVAL));
        }
        let pfn = region.pfns[i as usize];
        region.phys.get(pfn);
        Some(Ok(pfn))
    }
}

syscall_table! { pub fn io_uring_table;
    IO_URING_SETUP => sys_io_uring_setup(entries: u32, params: UserAddr),
    IO_URING_ENTER => sys_io_uring_enter(fd: Fd, to_submit: u32, min_complete: u32, flags: u32, arg: UserAddr, argsz: usize),
    IO_URING_REGISTER => sys_io_uring_register(fd: Fd, opcode: u32, arg: UserAddr, nr_args: u32),
}

crate::abi_struct! {
    /// `struct io_uring_params` (with the two offset structs inline).
    pub struct Params {
        pub sq_entries: u32, pub cq_entries: u32, pub flags: u32, pub sq_thread_cpu: u32,
        pub sq_thread_idle: u32, pub features: u32, pub wq_fd: u32, pub resv: [u32; 3],
        pub sq_off: [u32; 10], pub cq_off: [u32; 10]
    }
}

fn sys_io_uring_setup(
    ctx: &mut SyscallContext<'_>,
    entries: u32,
    params: UserAddr,
) -> KResult<u64> {
    let mut p: Params = ctx.mm().read_val(params.0)?;
    if p.resv.iter().any(|&r| r != 0) {
        return error!(EINVAL);
    }
    let flags = p.flags;
    if flags & (SETUP_SQPOLL | SETUP_SQ_AFF | SETUP_IOPOLL) != 0 {
        // No kernel submission thread and no polled block I/O.
        return error!(EINVAL);
    }
    if flags & !SETUP_SUPPORTED != 0 {
        return error!(EINVAL);
    }
    if flags & SETUP_DEFER_TASKRUN != 0 && flags & SETUP_SINGLE_ISSUER == 0 {
        return error!(EINVAL);
    }
    if flags & SETUP_TASKRUN_FLAG != 0 && flags & (SETUP_COOP_TASKRUN | SETUP_DEFER_TASKRUN) == 0 {
        return error!(EINVAL);
    }
    if entries == 0 {
        return error!(EINVAL);
    }
    let clamp = flags & SETUP_CLAMP != 0;
    let sq = if entries > MAX_ENTRIES {
        if !clamp {
            return error!(EINVAL);
        }
        MAX_ENTRIES
    } else {
        entries.next_power_of_two()
    };
    let cq = if flags & SETUP_CQSIZE != 0 {
        if p.cq_entries == 0 {
            return error!(EINVAL);
        }
        let c = if p.cq_entries > MAX_CQ_ENTRIES {
            if !clamp {
                return error!(EINVAL);
            }
            MAX_CQ_ENTRIES
        } else {
            p.cq_entries.next_power_of_two()
        };
        if c < sq {
            return error!(EINVAL);
        }
        c
    } else {
        2 * sq
    };
    if flags & SETUP_ATTACH_WQ != 0 {
        let f = ctx.files().get(p.wq_fd as i32)?;
        if !is_ring(&f) {
            return error!(EINVAL);
        }
    }
    if RINGS.fetch_add(1, Ordering::AcqRel) >= MAX_RINGS {
        RINGS.fetch_sub(1, Ordering::AcqRel);
        return error!(ENOMEM);
    }
    let sq_array = CQES + cq as usize * CQE_SIZE;
    let ring_bytes = if flags & SETUP_NO_SQARRAY != 0 {
        sq_array
    } else {
        sq_array + sq as usize * 4
    };
    let phys = crate::fs::tmpfs::physmem();
    let regions = Region::new(&phys, ring_bytes)
        .and_then(|r| Region::new(&phys, sq as usize * SQE_SIZE).map(|s| (r, s)));
    let (rings, sqes) = match regions {
        Ok(x) => x,
        Err(e) => {
            RINGS.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
    };
    rings.store(SQ_MASK, sq - 1);
    rings.store(CQ_MASK, cq - 1);
    rings.store(SQ_ENTRIES, sq);
    rings.store(CQ_ENTRIES, cq);
    let ring = Arc::new_cyclic(|me| IoUring {
        sq_entries: sq,
        cq_entries: cq,
        flags,
        rings,
        sqes,
        sq_array,
        state: Mutex::new(State {
            pending: Vec::new(),
            overflow: VecDeque::new(),
            sq_head: 0,
            cq_tail: 0,
            files: Vec::new(),
            buffers: Vec::new(),
            eventfd: None,
            completions: 0,
            next_id: 1,
            link_tail: None,
            link_tail_done: None,
            enabled: flags & SETUP_R_DISABLED == 0,
            worker: false,
        }),
        cq_waiters: Waiters::new(),
        worker_waker: Arc::new(Waker::default()),
        dead: AtomicBool::new(false),
        me: me.clone(),
    });
    p.sq_entries = sq;
    p.cq_entries = cq;
    p.features = FEATURES;
    let array = if flags & SETUP_NO_SQARRAY != 0 {
        0
    } else {
        sq_array as u32
    };
    p.sq_off = [
        SQ_HEAD as u32,
        SQ_TAIL as u32,
        SQ_MASK as u32,
        SQ_ENTRIES as u32,
        SQ_FLAGS as u32,
        SQ_DROPPED as u32,
        array,
        0,
        0,
        0,
    ];
    p.cq_off = [
        CQ_HEAD as u32,
        CQ_TAIL as u32,
        CQ_MASK as u32,
        CQ_ENTRIES as u32,
        CQ_OVERFLOW as u32,
        CQES as u32,
        CQ_FLAGS as u32,
        0,
        0,
        0,
    ];
    ctx.mm().write_val(params.0, &p)?;
    let file = anon_file("io_uring", ring, O_RDWR);
    ctx.files().alloc(file, true).map(|fd| fd as u64)
}

fn ring_of(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<(FileRef, Arc<IoUring>)> {
    let f = ctx.files().get(fd.0)?;
    let ops = f.ops().map_err(|_| Errno::EOPNOTSUPP)?.clone();
    if ops.as_any_ops().downcast_ref::<IoUring>().is_none() {
        return error!(EOPNOTSUPP);
    }
    // The Arc<dyn FileOps> is an Arc<IoUring>: get it back typed.
    let ring = ops
        .as_any_ops()
        .downcast_ref::<IoUring>()
        .and_then(|r| r.me.upgrade())
        .ok_or(Errno::EBADF)?;
    Ok((f, ring))
}

crate::abi_struct! {
    /// `struct io_uring_getevents_arg`.
    pub struct GeteventsArg { pub sigmask: u64, pub sigmask_sz: u32, pub min_wait_usec: u32, pub ts: u64 }
}

fn sys_io_uring_enter(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    arg: UserAddr,
    argsz: usize,
) -> KResult<u64> {
    if flags & !(ENTER_GETEVENTS | ENTER_SQ_WAKEUP | ENTER_SQ_WAIT | ENTER_EXT_ARG) != 0 {
        return error!(EINVAL);
    }
    let (_f, ring) = ring_of(ctx, fd)?;
    if !ring.lock().enabled {
        return error!(EBADFD);
    }
    // The wait's arguments are checked before anything is submitted.
    let (mask, mask_size, deadline) = if flags & ENTER_GETEVENTS == 0 {
        (UserAddr(0), 0usize, None)
    } else if flags & ENTER_EXT_ARG != 0 {
        if argsz != std::mem::size_of::<GeteventsArg>() {
            return error!(EINVAL);
        }
        if arg.is_null() {
            return error!(EFAULT);
        }
        let a: GeteventsArg = ctx.mm().read_val(arg.0)?;
        let deadline = if a.ts == 0 {
            None
        } else {
            let ts: crate::time::Timespec = ctx.mm().read_val(a.ts)?;
            if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
                return error!(EINVAL);
            }
            let d = Duration::new(ts.sec as u64, ts.nsec as u32);
            Some(
                Instant::now()
                    .checked_add(d)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40)),
            )
        };
        (UserAddr(a.sigmask), a.sigmask_sz as usize, deadline)
    } else {
        (arg, argsz, None)
    };
    let submitted = if to_submit > 0 {
        ring.submit(ctx, to_submit)?
    } else {
        0
    };
    ring.progress(Some(ctx));
    ring.ensure_worker();
    if flags & ENTER_GETEVENTS == 0 || min_complete == 0 {
        return Ok(submitted as u64);
    }
    let want = min_complete.min(ring.cq_entries);
    let guard = crate::fs::poll::MaskGuard::new(ctx, mask, mask_size)?;
    let r = ring.cq_waiters.wait(Some(ctx.task), deadline, || {
        {
            let mut st = ring.lock();
            ring.flush_overflow(&mut st);
        }
        ring.cq_ready() >= want
    });
    let r: KResult<u64> = match r {
        Ok(()) => Ok(submitted as u64),
        Err(_) if submitted > 0 => Ok(submitted as u64),
        Err(Errno::ETIMEDOUT) => Err(Errno::ETIME),
        Err(Errno::ERESTARTSYS) | Err(Errno::EINTR) => Err(Errno::EINTR),
        Err(e) => Err(e),
    };
    guard.finish(&r);
    r
}

fn sys_io_uring_register(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    opcode: u32,
    arg: UserAddr,
    nr_args: u32,
) -> KResult<u64> {
    let (_f, ring) = ring_of(ctx, fd)?;
    let mm = ctx.mm();
    match opcode {
        REGISTER_BUFFERS => {
            if nr_args == 0 || nr_args > MAX_REG_BUFFERS {
                return error!(EINVAL);
            }
            if !ring.lock().buffers.is_empty() {
                return error!(EBUSY);
            }
            let mut bufs = Vec::with_capacity(nr_args as usize);
            for i in 0..nr_args as u64 {
                let v: [u64; 2] = mm.read_val(arg.0.wrapping_add(i * 16))?;
                let (base, len) = (v[0], v[1]);
                if len > MAX_REG_BUFFER_LEN || (base == 0 && len != 0) {
                    return error!(EFAULT);
                }
                if len == 0 && base != 0 {
                    return error!(EFAULT);
                }
                if len > 0 && mm.accessible_len(base, len as usize, true) < len as usize {
                    return error!(EFAULT);
                }
                bufs.push((base, len));
            }
            ring.lock().buffers = bufs;
            Ok(0)
        }
        UNREGISTER_BUFFERS => {
            if !arg.is_null() || nr_args != 0 {
                return error!(EINVAL);
            }
            let mut st = ring.lock();
            if st.buffers.is_empty() {
                return error!(ENXIO);
            }
            st.buffers.clear();
            Ok(0)
        }
        REGISTER_FILES => {
            if nr_args == 0 || nr_args as usize > ctx.files().limit() {
                return error!(EINVAL);
            }
            if !ring.lock().files.is_empty() {
                return error!(EBUSY);
            }
            let mut files = Vec::with_capacity(nr_args as usize);
            for i in 0..nr_args as u64 {
                let fd: i32 = mm.read_val(arg.0.wrapping_add(i * 4))?;
                files.push(file_for_slot(ctx, fd)?);
            }
            ring.lock().files = files;
            Ok(0)
        }
        UNREGISTER_FILES => {
            if !arg.is_null() || nr_args != 0 {
                return error!(EINVAL);
            }
            let mut st = ring.lock();
            if st.files.is_empty() {
                return error!(ENXIO);
            }
            st.files.clear();
            Ok(0)
        }
        REGISTER_FILES_UPDATE => {
            // struct io_uring_files_update { u32 offset; u32 resv; u64 fds; }
            let u: [u64; 2] = mm.read_val(arg.0)?;
            let (offset, resv, fds) = (u[0] as u32, (u[0] >> 32) as u32, u[1]);
            if resv != 0 || nr_args == 0 {
                return error!(EINVAL);
            }
            if ring.lock().files.is_empty() {
                return error!(ENXIO);
            }
            let mut done = 0u64;
            for i in 0..nr_args as u64 {
                let fd: i32 = match mm.read_val(fds.wrapping_add(i * 4)) {
                    Ok(v) => v,
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                };
                let slot = offset as u64 + i;
                let new = if fd == -2 {
                    None // IORING_REGISTER_FILES_SKIP
                } else {
                    match file_for_slot(ctx, fd) {
                        Ok(f) => Some(f),
                        Err(e) if done == 0 => return Err(e),
                        Err(_) => break,
                    }
                };
                let mut st = ring.lock();
                let Some(s) = st.files.get_mut(slot as usize) else {
                    if done == 0 {
                        return error!(EINVAL);
                    }
                    break;
                };
                if let Some(n) = new {
                    *s = n;
                }
                done += 1;
            }
            Ok(done)
        }
        REGISTER_EVENTFD | REGISTER_EVENTFD_ASYNC => {
            if nr_args != 1 {
                return error!(EINVAL);
            }
            let efd: i32 = mm.read_val(arg.0)?;
            let f = ctx.files().get(efd)?;
            if f.path.dentry.name != b"anon_inode:[eventfd]" {
                return error!(EINVAL);
            }
            let mut st = ring.lock();
            if st.eventfd.is_some() {
                return error!(EBUSY);
            }
            st.eventfd = Some(f);
            Ok(0)
        }
        UNREGISTER_EVENTFD => {
            let mut st = ring.lock();
            if st.eventfd.take().is_none() {
                return error!(ENXIO);
            }
            Ok(0)
        }
        REGISTER_PROBE => {
            // struct io_uring_probe { u8 last_op; u8 ops_len; u16 resv;
            // u32 resv2[3]; struct io_uring_probe_op ops[]; } with
            // io_uring_probe_op { u8 op; u8 resv; u16 flags; u32 resv2; }
            let n = nr_args.min(256) as usize;
            let mut hdr = [0u8; 16];
            mm.read_bytes(arg.0, &mut hdr)?;
            let mut ops = vec![0u8; n * 8];
            mm.read_bytes(arg.0 + 16, &mut ops)?;
            if hdr.iter().any(|&b| b != 0) || ops.iter().any(|&b| b != 0) {
                return error!(EINVAL);
            }
            hdr[0] = OP_LAST - 1;
            hdr[1] = n.min(OP_LAST as usize) as u8;
            for (i, o) in ops.chunks_mut(8).enumerate().take(OP_LAST as usize) {
                o[0] = i as u8;
                if SUPPORTED_OPS.contains(&(i as u8)) {
                    o[2] = 1; // IO_URING_OP_SUPPORTED
                }
            }
            mm.write_bytes(arg.0, &hdr)?;
            mm.write_bytes(arg.0 + 16, &ops)?;
            Ok(0)
        }
        REGISTER_ENABLE_RINGS => {
            let mut st = ring.lock();
            if st.enabled {
                return error!(EBADFD);
            }
            st.enabled = true;
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// A descriptor for a registered-file slot: -1 leaves it empty; an
/// io_uring itself is refused (a ring holding itself would never go).
fn file_for_slot(ctx: &SyscallContext<'_>, fd: i32) -> KResult<Option<FileRef>> {
    if fd == -1 {
        return Ok(None);
    }
    let f = ctx.files().get(fd)?;
    if is_ring(&f) {
        return error!(EBADF);
    }
    Ok(Some(f))
}
