//! Linux AIO: io_setup, io_submit, io_getevents, io_pgetevents,
//! io_cancel, io_destroy.
//!
//! As on Linux, a context's completion ring lives in the process's memory:
//! io_setup maps it (`/[aio]`, shared, read-write) and the context id *is*
//! its address, so libaio and glibc may reap events from the ring header
//! (`struct aio_ring`: id, nr, head, tail, magic 0xa10a10a1, ...) without a
//! system call. The frames are the kernel's ([`Region`]); the kernel keeps
//! its own tail and reads the guest-written head modulo the ring size.
//!
//! Reads, writes and syncs run at submission, as Linux's AIO does for
//! buffered files (it blocks on pipes and sockets the same way);
//! IOCB_CMD_POLL waits asynchronously: a kernel worker per context, started
//! when a poll is pending, sleeps on the polled files' [`Waiters`].
//!
//! Limits: /proc/sys/fs/aio-max-nr (65536) bounds the events of all
//! contexts together (EAGAIN beyond); a context holds at most its ring's
//! size of requests and unreaped events (EAGAIN from io_submit beyond).
//! Contexts of an address space that went (exit, exec) are reclaimed at
//! the next io_setup. Locking: one mutex per context, never held while a
//! request runs or a task sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::FileRef;
use crate::fs::io_uring::Region;
use crate::fs::poll::{
    PollEvents, Waiters, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM,
};
use crate::fs::types::oflags::O_RDWR;
use crate::fs::vfs::FileOps;
use crate::mm::Mm;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::wait::Waker;

const PAGE: usize = 4096;
const AIO_RING_MAGIC: u32 = 0xa10a_10a1;
const HDR: usize = 32;
const EVENT: usize = 32;
const R_ID: usize = 0;
const R_NR: usize = 4;
const R_HEAD: usize = 8;
const R_TAIL: usize = 12;
const R_MAGIC: usize = 16;
const R_COMPAT: usize = 20;
const R_HDRLEN: usize = 28;

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_CMD_POLL: u16 = 5;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;
const IOCB_FLAG_RESFD: u32 = 1;
const IOCB_FLAG_IOPRIO: u32 = 2;

/// /proc/sys/fs/aio-max-nr.
pub const AIO_MAX_NR: u64 = 65536;
/// Events of all live contexts (/proc/sys/fs/aio-nr).
static AIO_NR: AtomicU64 = AtomicU64::new(0);

/// aio-nr, as /proc/sys/fs/aio-nr shows it.
pub fn aio_nr() -> u64 {
    reap_dead();
    AIO_NR.load(Ordering::Relaxed)
}

/// The ring's frames, handed to the guest's mapping.
struct RingFile {
    region: Region,
}

impl FileOps for RingFile {
    fn seekable(&self) -> bool {
        false
    }
    fn size(&self) -> KResult<u64> {
        Ok(self.region.pages() * PAGE as u64)
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        Ok((u64::MAX - 2, self as *const RingFile as u64))
    }
    fn page_frame(&self, index: u64, _create: bool) -> Option<KResult<ruml_host::Pfn>> {
        let pfn = *self.region.pfns.get(index as usize)?;
        self.region.phys.get(pfn);
        Some(Ok(pfn))
    }
}

/// A pending IOCB_CMD_POLL.
struct PollReq {
    file: FileRef,
    events: PollEvents,
    iocb: u64,
    data: u64,
    resfd: Option<FileRef>,
}

struct CtxState {
    tail: u32,
    polls: Vec<PollReq>,
    worker: bool,
    dead: bool,
}

/// One AIO context; see the module doc.
pub struct AioCtx {
    id: u64,
    mm: Weak<Mm>,
    ring: Arc<RingFile>,
    nr: u32,
    max_reqs: u64,
    state: Mutex<CtxState>,
    waiters: Waiters,
    waker: Arc<Waker>,
}

fn contexts() -> MutexGuard<'static, Vec<Arc<AioCtx>>> {
    static C: Mutex<Vec<Arc<AioCtx>>> = Mutex::new(Vec::new());
    C.lock().unwrap_or_else(|p| p.into_inner())
}

/// Forgets the contexts of address spaces that are gone.
fn reap_dead() {
    let mut c = contexts();
    c.retain(|x| {
        let alive = x.mm.strong_count() > 0;
        if !alive {
            x.kill();
        }
        alive
    });
}

fn lookup(ctx: &SyscallContext<'_>, id: u64) -> KResult<Arc<AioCtx>> {
    let mm = ctx.mm();
    contexts()
        .iter()
        .find(|c| c.id == id && c.mm.upgrade().is_some_and(|m| Arc::ptr_eq(&m, &mm)))
        .cloned()
        .ok_or(Errno::EINVAL)
}

impl AioCtx {
    fn lock(&self) -> MutexGuard<'_, CtxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn region(&self) -> &Region {
        &self.ring.region
    }

    /// Marks the context gone: its count leaves aio-nr, its worker ends.
    fn kill(&self) {
        let mut st = self.lock();
        if !st.dead {
            st.dead = true;
            st.polls.clear();
            AIO_NR.fetch_sub(self.max_reqs, Ordering::Relaxed);
        }
        drop(st);
        self.waker.poke();
        self.waiters.wake_all();
    }

    fn head(&self) -> u32 {
        self.region().load(R_HEAD) % self.nr
    }

    fn available(&self, st: &CtxState) -> u32 {
        (st.tail + self.nr - self.head()) % self.nr
    }

    /// Requests in flight plus events not reaped: io_submit's bound.
    fn busy(&self, st: &CtxState) -> u64 {
        self.available(st) as u64 + st.polls.len() as u64
    }

    fn post(&self, st: &mut CtxState, iocb: u64, data: u64, res: i64, resfd: Option<&FileRef>) {
        let mut ev = [0u8; EVENT];
        ev[..8].copy_from_slice(&data.to_le_bytes());
        ev[8..16].copy_from_slice(&iocb.to_le_bytes());
        ev[16..24].copy_from_slice(&res.to_le_bytes());
        self.region().write(HDR + st.tail as usize * EVENT, &ev);
        st.tail = (st.tail + 1) % self.nr;
        self.region().store(R_TAIL, st.tail);
        if let Some(e) = resfd {
            let _ = e.write(&1u64.to_le_bytes());
        }
        self.waiters.wake_all();
    }

    /// Completes the polls whose files are ready; whether any was. A
    /// poll that had to wait (`woken`) reports what the wake-up reports on
    /// Linux (the file's mask, with the RDNORM/WRNORM bits that come with
    /// IN/OUT), one ready at once only the bits asked for.
    fn check_polls(&self, woken: bool) -> bool {
        let mut st = self.lock();
        let mut any = false;
        let mut i = 0;
        while i < st.polls.len() {
            let p = &st.polls[i];
            let mut want = p.events | POLLERR | POLLHUP;
            if woken {
                if want & POLLIN != 0 {
                    want |= POLLRDNORM;
                }
                if want & POLLOUT != 0 {
                    want |= POLLWRNORM;
                }
            }
            let rev = p.file.ops().map(|o| o.poll(&p.file)).unwrap_or(POLLERR) & want;
            if rev == 0 {
                i += 1;
                continue;
            }
            let p = st.polls.remove(i);
            self.post(&mut st, p.iocb, p.data, rev as i64, p.resfd.as_ref());
            any = true;
        }
        any
    }

    fn ensure_worker(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.polls.is_empty() || st.dead {
            return;
        }
        if st.worker {
            drop(st);
            self.waker.poke();
            return;
        }
        let weak = Arc::downgrade(self);
        let waker = self.waker.clone();
        st.worker = std::thread::Builder::new()
            .name("aio-poll".into())
            .stack_size(256 << 10)
            .spawn(move || poll_worker(weak, waker))
            .is_ok();
    }
}

fn poll_worker(weak: Weak<AioCtx>, waker: Arc<Waker>) {
    loop {
        let Some(ctx) = weak.upgrade() else { return };
        if ctx.check_polls(true) {
            continue;
        }
        let files: Vec<FileRef> = {
            let mut st = ctx.lock();
            if st.polls.is_empty() || st.dead {
                st.worker = false;
                return;
            }
            st.polls.iter().map(|p| p.file.clone()).collect()
        };
        for f in &files {
            if let Some(w) = f.ops().ok().and_then(|o| o.waiters()) {
                w.add_waker(&waker);
            }
        }
        let moved = ctx.check_polls(true);
        drop(ctx);
        if !moved {
            waker.sleep(None);
        }
        for f in &files {
            if let Some(w) = f.ops().ok().and_then(|o| o.waiters()) {
                w.remove_waker(&waker);
            }
        }
    }
}

syscall_table! { pub fn aio_table;
    IO_SETUP => sys_io_setup(nr_events: u32, ctxp: UserAddr),
    IO_DESTROY => sys_io_destroy(id: u64),
    IO_SUBMIT => sys_io_submit(id: u64, nr: i64, iocbpp: UserAddr),
    IO_CANCEL => sys_io_cancel(id: u64, iocb: UserAddr, result: UserAddr),
    IO_GETEVENTS => sys_io_getevents(id: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserAddr),
    IO_PGETEVENTS => sys_io_pgetevents(id: u64, min_nr: i64, nr: i64, events: UserAddr, timeout: UserAddr, usig: UserAddr),
}

fn sys_io_setup(ctx: &mut SyscallContext<'_>, nr_events: u32, ctxp: UserAddr) -> KResult<u64> {
    let cur: u64 = ctx.mm().read_val(ctxp.0)?;
    if cur != 0 || nr_events == 0 {
        return error!(EINVAL);
    }
    reap_dead();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let max_reqs = nr_events as u64;
    let n = max_reqs.max(cpus * 4) * 2;
    if n > 0x1000_0000 / EVENT as u64 {
        return error!(EINVAL);
    }
    if max_reqs > AIO_MAX_NR {
        return error!(EAGAIN);
    }
    let bytes = HDR + n as usize * EVENT;
    let pages = bytes.div_ceil(PAGE);
    let nr = ((pages * PAGE - HDR) / EVENT) as u32;
    // Count the context in aio-nr first (EAGAIN when it would pass the max).
    if AIO_NR
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
            (v + max_reqs <= AIO_MAX_NR).then_some(v + max_reqs)
        })
        .is_err()
    {
        return error!(EAGAIN);
    }
    let undo = |e| {
        AIO_NR.fetch_sub(max_reqs, Ordering::Relaxed);
        Err(e)
    };
    let region = match Region::new(&crate::fs::tmpfs::physmem(), pages * PAGE) {
        Ok(r) => r,
        Err(e) => return undo(e),
    };
    region.store(R_ID, u32::MAX);
    region.store(R_NR, nr);
    region.store(R_MAGIC, AIO_RING_MAGIC);
    region.store(R_COMPAT, 1);
    region.store(R_HDRLEN, HDR as u32);
    let ring = Arc::new(RingFile { region });
    let file = anon_file("aio", ring.clone(), O_RDWR);
    let mm = ctx.mm();
    let addr = match mm.mmap(0, (pages * PAGE) as u64, 3, 1, Some((file, 0))) {
        Ok(a) => a,
        Err(e) => return undo(e),
    };
    let aio = Arc::new(AioCtx {
        id: addr,
        mm: Arc::downgrade(&mm),
        ring,
        nr,
        max_reqs,
        state: Mutex::new(CtxState {
            tail: 0,
            polls: Vec::new(),
            worker: false,
            dead: false,
        }),
        waiters: Waiters::new(),
        waker: Arc::new(Waker::default()),
    });
    if let Err(e) = ctx.mm().write_val(ctxp.0, &addr) {
        aio.kill();
        let _ = mm.munmap(addr, (pages * PAGE) as u64);
        return Err(e);
    }
    contexts().push(aio);
    Ok(0)
}

fn sys_io_destroy(ctx: &mut SyscallContext<'_>, id: u64) -> KResult<u64> {
    let aio = lookup(ctx, id)?;
    contexts().retain(|c| !Arc::ptr_eq(c, &aio));
    aio.kill();
    let _ = ctx.mm().munmap(aio.id, aio.region().pages() * PAGE as u64);
    Ok(0)
}

crate::abi_struct! {
    /// `struct iocb`.
    pub struct Iocb {
        pub data: u64, pub key: u32, pub rw_flags: i32, pub opcode: u16, pub reqprio: i16,
        pub fildes: u32, pub buf: u64, pub nbytes: u64, pub offset: i64, pub reserved2: u64,
        pub flags: u32, pub resfd: u32
    }
}

/// Submits one iocb: Ok(()) once its event is posted or it is queued.
fn submit_one(ctx: &mut SyscallContext<'_>, aio: &Arc<AioCtx>, at: u64) -> KResult<()> {
    let mm = ctx.mm();
    let cb: Iocb = mm.read_val(at)?;
    if cb.reserved2 != 0 || cb.flags & !(IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO) != 0 {
        return error!(EINVAL);
    }
    if (cb.nbytes as i64) < 0 {
        return error!(EINVAL);
    }
    let resfd = if cb.flags & IOCB_FLAG_RESFD != 0 {
        let f = ctx.files().get(cb.resfd as i32)?;
        if f.path.dentry.name != b"anon_inode:[eventfd]" {
            return error!(EINVAL);
        }
        Some(f)
    } else {
        None
    };
    let file = ctx.files().get(cb.fildes as i32)?;
    if file.is_path_only() {
        return error!(EBADF);
    }
    // Linux writes the key (0) back into the iocb.
    mm.write_val(at + 8, &0u32)?;
    let segs = match cb.opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PWRITE => vec![(cb.buf, cb.nbytes as usize)],
        IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
            if cb.nbytes > 1024 {
                return error!(EINVAL);
            }
            crate::fs::syscalls::read_iovecs(ctx, UserAddr(cb.buf), cb.nbytes as i32)?
        }
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
            if cb.buf != 0 || cb.nbytes != 0 || cb.offset != 0 || cb.rw_flags != 0 {
                return error!(EINVAL);
            }
            Vec::new()
        }
        IOCB_CMD_POLL => {
            if cb.offset != 0 || cb.nbytes != 0 || cb.rw_flags != 0 || (cb.buf >> 16) != 0 {
                return error!(EINVAL);
            }
            Vec::new()
        }
        _ => return error!(EINVAL),
    };
    let res: i64 = match cb.opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PREADV | IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV => {
            let read = matches!(cb.opcode, IOCB_CMD_PREAD | IOCB_CMD_PREADV);
            if read && !file.can_read() || !read && !file.can_write() {
                return error!(EBADF);
            }
            if cb.rw_flags as u32 & !0x7 != 0 {
                return error!(EOPNOTSUPP);
            }
            let seekable = file.ops()?.seekable();
            if seekable && cb.offset < 0 {
                return error!(EINVAL);
            }
            let off = seekable.then_some(cb.offset as u64);
            let r = if read {
                crate::fs::syscalls::do_read(ctx, &file, &segs, off)
            } else {
                crate::fs::syscalls::do_write(ctx, &file, &segs, off)
            };
            match r {
                Ok(n) => n as i64,
                // Restart codes never reach an event.
                Err(e) if e.as_i32() >= 512 => -(Errno::EINTR.as_i32() as i64),
                Err(e) => -(e.as_i32() as i64),
            }
        }
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
            let ops = file.ops()?.clone();
            match ops.sync(cb.opcode == IOCB_CMD_FDSYNC) {
                Ok(()) => 0,
                Err(Errno::EINVAL) => return error!(EINVAL),
                Err(e) => -(e.as_i32() as i64),
            }
        }
        _ => {
            let events = (cb.buf as u32) & 0xffff;
            let mut st = aio.lock();
            st.polls.push(PollReq {
                file,
                events,
                iocb: at,
                data: cb.data,
                resfd,
            });
            drop(st);
            aio.check_polls(false);
            aio.ensure_worker();
            return Ok(());
        }
    };
    let mut st = aio.lock();
    aio.post(&mut st, at, cb.data, res, resfd.as_ref());
    Ok(())
}

fn sys_io_submit(ctx: &mut SyscallContext<'_>, id: u64, nr: i64, iocbpp: UserAddr) -> KResult<u64> {
    if nr < 0 {
        return error!(EINVAL);
    }
    let aio = lookup(ctx, id)?;
    let nr = (nr as u64).min(aio.max_reqs);
    let mut done = 0u64;
    for i in 0..nr {
        let r = (|| -> KResult<()> {
            if aio.busy(&aio.lock()) + 1 >= aio.nr as u64 {
                return error!(EAGAIN);
            }
            let at: u64 = ctx.mm().read_val(iocbpp.0.wrapping_add(i * 8))?;
            submit_one(ctx, &aio, at)
        })();
        match r {
            Ok(()) => done += 1,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

fn sys_io_cancel(
    ctx: &mut SyscallContext<'_>,
    id: u64,
    iocb: UserAddr,
    _result: UserAddr,
) -> KResult<u64> {
    let aio = lookup(ctx, id)?;
    let key: u32 = ctx.mm().read_val(iocb.0 + 8)?;
    if key != 0 {
        return error!(EINVAL);
    }
    let mut st = aio.lock();
    let Some(i) = st.polls.iter().position(|p| p.iocb == iocb.0) else {
        return error!(EINVAL);
    };
    // The event still comes through the ring, with what the file reports
    // now (Linux's aio_poll_cancel); io_cancel says EINPROGRESS.
    let p = st.polls.remove(i);
    let rev = p.file.ops().map(|o| o.poll(&p.file)).unwrap_or(0) & p.events;
    aio.post(&mut st, p.iocb, p.data, rev as i64, p.resfd.as_ref());
    error!(EINPROGRESS)
}

fn getevents(
    ctx: &mut SyscallContext<'_>,
    id: u64,
    min_nr: i64,
    nr: i64,
    events: UserAddr,
    timeout: UserAddr,
) -> KResult<u64> {
    if min_nr < 0 || nr < 0 || min_nr > nr {
        return error!(EINVAL);
    }
    let aio = lookup(ctx, id)?;
    let deadline = if timeout.is_null() {
        None
    } else {
        let ts: crate::time::Timespec = ctx.mm().read_val(timeout.0)?;
        if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
            return error!(EINVAL);
        }
        Some(
            Instant::now()
                .checked_add(Duration::new(ts.sec as u64, ts.nsec as u32))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40)),
        )
    };
    let nr = nr.min(aio.nr as i64) as u32;
    let mm = ctx.mm();
    let mut got: u32 = 0;
    let mut fault = None;
    // Copies out what is there; true once min_nr events were returned.
    let mut take = || -> bool {
        let st = aio.lock();
        if st.dead {
            return true;
        }
        let mut head = aio.head();
        while got < nr && head != st.tail {
            let mut ev = [0u8; EVENT];
            aio.region().read(HDR + head as usize * EVENT, &mut ev);
            if let Err(e) = mm.write_bytes(events.0.wrapping_add(got as u64 * EVENT as u64), &ev) {
                fault = Some(e);
                return true;
            }
            head = (head + 1) % aio.nr;
            aio.region().store(R_HEAD, head);
            got += 1;
        }
        got as i64 >= min_nr
    };
    let r = aio.waiters.wait(Some(ctx.task), deadline, &mut take);
    if got > 0 {
        return Ok(got as u64);
    }
    if let Some(e) = fault {
        return Err(e);
    }
    match r {
        Ok(()) | Err(Errno::ETIMEDOUT) => Ok(0),
        Err(Errno::ERESTARTSYS) | Err(Errno::EINTR) => error!(EINTR),
        Err(e) => Err(e),
    }
}

fn sys_io_getevents(
    ctx: &mut SyscallContext<'_>,
    id: u64,
    min_nr: i64,
    nr: i64,
    events: UserAddr,
    timeout: UserAddr,
) -> KResult<u64> {
    getevents(ctx, id, min_nr, nr, events, timeout)
}

fn sys_io_pgetevents(
    ctx: &mut SyscallContext<'_>,
    id: u64,
    min_nr: i64,
    nr: i64,
    events: UserAddr,
    timeout: UserAddr,
    usig: UserAddr,
) -> KResult<u64> {
    let (mask, size) = if usig.is_null() {
        (UserAddr(0), 0usize)
    } else {
        let pair: [u64; 2] = ctx.mm().read_val(usig.0)?;
        (UserAddr(pair[0]), pair[1] as usize)
    };
    let guard = crate::fs::poll::MaskGuard::new(ctx, mask, size)?;
    let r = getevents(ctx, id, min_nr, nr, events, timeout);
    guard.finish(&r);
    r
}
