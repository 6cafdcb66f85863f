//! Readiness: poll(2), ppoll(2), select(2), pselect6(2), and [`Waiters`],
//! the wait queue every blocking file object (pipe, terminal) sleeps on.
//!
//! A file reports its readiness through [`FileOps::poll`] and names the
//! [`Waiters`] it wakes on every change through [`FileOps::waiters`]. A
//! task in poll registers itself as a *poller* on each file's Waiters,
//! then sleeps on a private wait queue until one of them pokes it (or a
//! signal, or the deadline), and re-polls everything: no busy waiting.
//!
//! The signal mask argument of ppoll/pselect6 is applied atomically for
//! the wait, as Linux does: a signal it lets through is delivered with it
//! in force, and the old mask comes back after the handler.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::FileRef;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::wait::WaitQueue;
use crate::task::Task;

/// A poll event mask (`POLL*`).
pub type PollEvents = u32;
pub const POLLIN: u32 = 0x1;
pub const POLLPRI: u32 = 0x2;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLRDBAND: u32 = 0x80;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLWRBAND: u32 = 0x200;
pub const POLLRDHUP: u32 = 0x2000;
/// What a file that never blocks reports (Linux's DEFAULT_POLLMASK).
pub const DEFAULT_POLLMASK: u32 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
/// Readable, as poll reports it.
pub const READABLE: u32 = POLLIN | POLLRDNORM;
/// Writable, as poll reports it.
pub const WRITABLE: u32 = POLLOUT | POLLWRNORM;

/// Where tasks sleep until a file object changes: blocked readers and
/// writers (through [`Waiters::wait`]) and tasks in poll/select (as
/// pollers). [`Waiters::wake_all`] wakes all of them to recheck.
#[derive(Default)]
pub struct Waiters {
    wq: WaitQueue,
    pollers: Mutex<Vec<Weak<Task>>>,
    /// Kernel workers (io_uring's) sleeping until the object changes.
    wakers: Mutex<Vec<Weak<crate::task::wait::Waker>>>,
    /// Counts wake-ups: edge-triggered epoll reports a file again only
    /// after something happened to it.
    events: std::sync::atomic::AtomicU64,
    /// Open files with O_ASYNC on this object (fs/fasync.rs).
    fasync: crate::fs::fasync::FasyncList,
    /// The Waiters of epoll instances watching this object, woken with
    /// it (so that nested epolls, and poll on an epoll, see changes
    /// below them). An exclusive one (EPOLLEXCLUSIVE) is woken only if no
    /// exclusive one before it had a sleeper: Linux's wake-one. Dead
    /// entries are pruned on add; an epoll's own entries form no cycle
    /// (epoll_ctl refuses loops), so wake_all recursion is bounded by the
    /// nesting limit.
    parents: Mutex<Vec<(Weak<Waiters>, bool)>>,
}

impl Waiters {
    pub fn new() -> Waiters {
        Waiters::default()
    }

    /// Sleeps until `cond()` holds (Ok), a signal is pending
    /// (ERESTARTSYS) or the deadline passes (ETIMEDOUT). Without a task
    /// (kernel-internal callers, unit tests) the wait cannot be
    /// interrupted and rechecks every millisecond.
    pub fn wait(
        &self,
        task: Option<&Arc<Task>>,
        deadline: Option<Instant>,
        mut cond: impl FnMut() -> bool,
    ) -> KResult<()> {
        match task {
            Some(t) => self.wq.wait(t, deadline, cond),
            None => loop {
                if cond() {
                    return Ok(());
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Errno::ETIMEDOUT);
                }
                std::thread::sleep(Duration::from_millis(1));
            },
        }
    }

    /// How many times the object has changed (wake_all calls).
    pub fn generation(&self) -> u64 {
        self.events.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The O_ASYNC files signalled on this object's changes.
    pub(crate) fn fasync(&self) -> &crate::fs::fasync::FasyncList {
        &self.fasync
    }

    /// Wakes every sleeper and poller to recheck its condition.
    pub fn wake_all(&self) {
        self.events
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.wq.wake_all();
        let ps = self.pollers.lock().unwrap_or_else(|p| p.into_inner());
        for p in ps.iter() {
            if let Some(t) = p.upgrade() {
                t.waker.poke();
            }
        }
        drop(ps);
        let ws = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        for w in ws.iter() {
            if let Some(w) = w.upgrade() {
                w.poke();
            }
        }
        drop(ws);
        self.fasync.wake();
        let parents: Vec<(Arc<Waiters>, bool)> = self
            .parents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(w, x)| w.upgrade().map(|w| (w, *x)))
            .collect();
        let mut exclusive_done = false;
        for (w, exclusive) in parents {
            if !exclusive {
                w.wake_all();
            } else if !exclusive_done && w.has_sleepers() {
                exclusive_done = true;
                w.wake_all();
            }
        }
    }

    /// Whether a task polls or a worker waits on this object now.
    fn has_sleepers(&self) -> bool {
        !self
            .pollers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
            || !self
                .wakers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// Wakes `parent` (an epoll's Waiters) with this object from now on;
    /// `exclusive` for EPOLLEXCLUSIVE. Adding it again updates the flag.
    pub(crate) fn add_parent(&self, parent: &Arc<Waiters>, exclusive: bool) {
        let me = Arc::downgrade(parent);
        let mut ps = self.parents.lock().unwrap_or_else(|p| p.into_inner());
        ps.retain(|(w, _)| w.strong_count() > 0);
        match ps.iter_mut().find(|(w, _)| w.ptr_eq(&me)) {
            Some(e) => e.1 = exclusive,
            None => ps.push((me, exclusive)),
        }
    }

    /// Undoes [`Waiters::add_parent`].
    pub(crate) fn remove_parent(&self, parent: &Arc<Waiters>) {
        let me = Arc::downgrade(parent);
        let mut ps = self.parents.lock().unwrap_or_else(|p| p.into_inner());
        ps.retain(|(w, _)| w.strong_count() > 0 && !w.ptr_eq(&me));
    }

    /// Registers a kernel worker's waker, poked on every change.
    pub(crate) fn add_waker(&self, w: &Arc<crate::task::wait::Waker>) {
        let mut ws = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        ws.retain(|x| x.strong_count() > 0);
        let me = Arc::downgrade(w);
        if !ws.iter().any(|x| x.ptr_eq(&me)) {
            ws.push(me);
        }
    }

    /// Undoes [`Waiters::add_waker`].
    pub(crate) fn remove_waker(&self, w: &Arc<crate::task::wait::Waker>) {
        let me = Arc::downgrade(w);
        let mut ws = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = ws.iter().position(|x| x.ptr_eq(&me)) {
            ws.swap_remove(i);
        }
    }

    pub(crate) fn add_poller(&self, task: &Arc<Task>) {
        self.pollers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(task));
    }

    pub(crate) fn remove_poller(&self, task: &Arc<Task>) {
        let me = Arc::downgrade(task);
        let mut ps = self.pollers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = ps.iter().position(|w| w.ptr_eq(&me)) {
            ps.swap_remove(i);
        }
        ps.retain(|w| w.strong_count() > 0);
    }
}

/// One entry being polled: the file (None: a negative fd, ignored) or
/// POLLNVAL for a bad descriptor.
enum Entry {
    Ignore,
    Bad,
    File(FileRef),
}

fn revents(e: &Entry, events: u32) -> u32 {
    match e {
        Entry::Ignore => 0,
        Entry::Bad => POLLNVAL,
        Entry::File(f) => match f.ops() {
            Ok(ops) => ops.poll(f) & (events | POLLERR | POLLHUP),
            Err(_) => POLLNVAL,
        },
    }
}

/// The core of poll and select: waits until some entry is ready, the
/// deadline passes (`Some(now)` = do not wait), or a signal arrives
/// (ERESTARTNOHAND). Returns each entry's revents.
fn wait_ready(
    task: &Arc<Task>,
    entries: &[(Entry, u32)],
    deadline: Option<Instant>,
) -> KResult<Vec<u32>> {
    let scan = || {
        entries
            .iter()
            .map(|(e, ev)| revents(e, *ev))
            .collect::<Vec<u32>>()
    };
    let first = scan();
    if first.iter().any(|&r| r != 0) || deadline.is_some_and(|d| Instant::now() >= d) {
        return Ok(first);
    }
    // Register on every distinct object's waiters, then sleep.
    let mut regs: Vec<&Waiters> = Vec::new();
    for (e, _) in entries {
        if let Entry::File(f) = e {
            if let Ok(ops) = f.ops() {
                if let Some(w) = ops.waiters() {
                    if !regs.iter().any(|r| std::ptr::eq(*r, w)) {
                        w.add_poller(task);
                        regs.push(w);
                    }
                }
            }
        }
    }
    let local = WaitQueue::new();
    let mut result = Vec::new();
    let r = local.wait(task, deadline, || {
        result = scan();
        result.iter().any(|&r| r != 0)
    });
    for w in regs {
        w.remove_poller(task);
    }
    match r {
        Ok(()) => Ok(result),
        Err(Errno::ETIMEDOUT) => Ok(vec![0; entries.len()]),
        Err(Errno::ERESTARTSYS) | Err(Errno::EINTR) => Err(Errno::ERESTARTNOHAND),
        Err(e) => Err(e),
    }
}

fn lookup_entry(ctx: &SyscallContext<'_>, fd: i32) -> Entry {
    if fd < 0 {
        return Entry::Ignore;
    }
    match ctx.files().get(fd) {
        Ok(f) if !f.is_path_only() => Entry::File(f),
        _ => Entry::Bad,
    }
}

/// Largest number of pollfds (Linux: RLIMIT_NOFILE; ruml's table limit).
fn nfds_limit(ctx: &SyscallContext<'_>) -> usize {
    ctx.files().limit()
}

/// A deadline from a relative timespec; EINVAL for a bad one.
fn deadline_from_timespec(sec: i64, nsec: i64) -> KResult<Instant> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return error!(EINVAL);
    }
    let d = Duration::new(sec.min(i64::MAX / 2) as u64, nsec as u32);
    Ok(Instant::now()
        .checked_add(d)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40)))
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The temporary signal mask of ppoll/pselect6, as Linux's
/// set_user_sigmask / restore_saved_sigmask_unless: the old mask is kept
/// as the task's saved mask; when the call was interrupted, the signal
/// code delivers the signal with the temporary mask and restores the old
/// one afterwards (or at sigreturn); otherwise it is restored at once.
pub(crate) struct MaskGuard<'a> {
    task: &'a Arc<Task>,
    active: bool,
}

impl<'a> MaskGuard<'a> {
    pub(crate) fn new(
        ctx: &SyscallContext<'a>,
        mask: UserAddr,
        size: usize,
    ) -> KResult<MaskGuard<'a>> {
        let task: &'a Arc<Task> = ctx.task;
        if mask.is_null() {
            return Ok(MaskGuard {
                task,
                active: false,
            });
        }
        if size != 8 {
            return error!(EINVAL);
        }
        let m: u64 = ctx.mm().read_val(mask.0)?;
        let unblockable =
            crate::signal::bit(crate::signal::SIGKILL) | crate::signal::bit(crate::signal::SIGSTOP);
        let mut s = task.signals.lock();
        let old = s.blocked;
        s.saved_mask = Some(old);
        s.blocked = m & !unblockable;
        Ok(MaskGuard { task, active: true })
    }

    /// Ends the call with `r`: unless interrupted, the old mask is back.
    pub(crate) fn finish(self, r: &KResult<u64>) {
        if self.active && !matches!(r, Err(Errno::ERESTARTNOHAND) | Err(Errno::EINTR)) {
            let mut s = self.task.signals.lock();
            if let Some(m) = s.saved_mask.take() {
                s.blocked = m;
            }
        }
    }
}

crate::abi_struct! {
    /// `struct pollfd`.
    pub struct PollFd { pub fd: i32, pub events: i16, pub revents: i16 }
}

crate::abi_struct! {
    /// `struct timespec`.
    pub struct Timespec { pub sec: i64, pub nsec: i64 }
}

crate::abi_struct! {
    /// `struct timeval`.
    pub struct Timeval { pub sec: i64, pub usec: i64 }
}

fn do_poll(
    ctx: &SyscallContext<'_>,
    ufds: UserAddr,
    nfds: u32,
    deadline: Option<Instant>,
) -> KResult<u64> {
    let n = nfds as usize;
    if n > nfds_limit(ctx) {
        return error!(EINVAL);
    }
    let mm = ctx.mm();
    let mut pfds: Vec<PollFd> = Vec::with_capacity(n);
    for i in 0..n {
        pfds.push(mm.read_val(ufds.0.wrapping_add(i as u64 * 8))?);
    }
    let entries: Vec<(Entry, u32)> = pfds
        .iter()
        .map(|p| (lookup_entry(ctx, p.fd), p.events as u16 as u32))
        .collect();
    // Linux writes every revents back, zeros when interrupted.
    let (rev, err) = match wait_ready(ctx.task, &entries, deadline) {
        Ok(r) => (r, None),
        Err(e) => (vec![0; n], Some(e)),
    };
    let mut count = 0u64;
    for (i, p) in pfds.iter_mut().enumerate() {
        p.revents = rev[i] as u16 as i16;
        if rev[i] != 0 {
            count += 1;
        }
        mm.write_val(ufds.0.wrapping_add(i as u64 * 8 + 6), &p.revents)?;
    }
    match err {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// poll(2). `timeout` in ms; negative = forever.
pub fn sys_poll(
    ctx: &mut SyscallContext<'_>,
    ufds: UserAddr,
    nfds: u32,
    timeout: i32,
) -> KResult<u64> {
    let deadline = if timeout < 0 {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(timeout as u64))
    };
    do_poll(ctx, ufds, nfds, deadline)
}

/// ppoll(2): a timespec timeout (updated with the time left) and a
/// temporary signal mask.
pub fn sys_ppoll(
    ctx: &mut SyscallContext<'_>,
    ufds: UserAddr,
    nfds: u32,
    tsp: UserAddr,
    mask: UserAddr,
    masksize: usize,
) -> KResult<u64> {
    let deadline = if tsp.is_null() {
        None
    } else {
        let ts: Timespec = ctx.mm().read_val(tsp.0)?;
        Some(deadline_from_timespec(ts.sec, ts.nsec)?)
    };
    let guard = MaskGuard::new(ctx, mask, masksize)?;
    let r = do_poll(ctx, ufds, nfds, deadline);
    guard.finish(&r);
    if let Some(d) = deadline {
        let left = remaining(d);
        let _ = ctx.mm().write_val(
            tsp.0,
            &Timespec {
                sec: left.as_secs() as i64,
                nsec: left.subsec_nanos() as i64,
            },
        );
    }
    r
}

const POLLIN_SET: u32 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const POLLOUT_SET: u32 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const POLLEX_SET: u32 = POLLPRI;

fn read_fdset(ctx: &SyscallContext<'_>, addr: UserAddr, n: usize) -> KResult<Option<Vec<u64>>> {
    if addr.is_null() {
        return Ok(None);
    }
    let words = n.div_ceil(64);
    let mut bytes = vec![0u8; words * 8];
    // Linux copies only the bytes that hold bits below n.
    let len = n.div_ceil(8);
    ctx.mm().read_bytes(addr.0, &mut bytes[..len])?;
    let mut v: Vec<u64> = bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if !n.is_multiple_of(64) {
        if let Some(last) = v.last_mut() {
            *last &= (1u64 << (n % 64)) - 1;
        }
    }
    Ok(Some(v))
}

fn write_fdset(ctx: &SyscallContext<'_>, addr: UserAddr, n: usize, set: &[u64]) -> KResult<()> {
    if addr.is_null() {
        return Ok(());
    }
    let bytes: Vec<u8> = set.iter().flat_map(|w| w.to_le_bytes()).collect();
    ctx.mm().write_bytes(addr.0, &bytes[..n.div_ceil(8)])
}

fn bit(set: &Option<Vec<u64>>, fd: usize) -> bool {
    set.as_ref()
        .is_some_and(|s| s[fd / 64] & (1 << (fd % 64)) != 0)
}

fn do_select(
    ctx: &SyscallContext<'_>,
    nfds: i32,
    inp: UserAddr,
    outp: UserAddr,
    exp: UserAddr,
    deadline: Option<Instant>,
) -> KResult<u64> {
    if nfds < 0 {
        return error!(EINVAL);
    }
    // Linux clamps n to the descriptor table's size.
    let n = (nfds as usize).min(nfds_limit(ctx));
    let sets = [
        read_fdset(ctx, inp, n)?,
        read_fdset(ctx, outp, n)?,
        read_fdset(ctx, exp, n)?,
    ];
    let mut entries: Vec<(Entry, u32)> = Vec::new();
    let mut fds: Vec<usize> = Vec::new();
    for fd in 0..n {
        let (r, w, x) = (bit(&sets[0], fd), bit(&sets[1], fd), bit(&sets[2], fd));
        if !(r || w || x) {
            continue;
        }
        let e = lookup_entry(ctx, fd as i32);
        if matches!(e, Entry::Bad) {
            return error!(EBADF);
        }
        let mut ev = 0;
        if r {
            ev |= POLLIN_SET;
        }
        if w {
            ev |= POLLOUT_SET;
        }
        if x {
            ev |= POLLEX_SET;
        }
        entries.push((e, ev));
        fds.push(fd);
    }
    let rev = wait_ready(ctx.task, &entries, deadline)?;
    let words = n.div_ceil(64);
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0u64;
    for (i, &fd) in fds.iter().enumerate() {
        let r = rev[i];
        let (wi, b) = (fd / 64, 1u64 << (fd % 64));
        for (k, mask) in [POLLIN_SET, POLLOUT_SET, POLLEX_SET]
            .into_iter()
            .enumerate()
        {
            if bit(&sets[k], fd) && r & mask != 0 {
                out[k][wi] |= b;
                count += 1;
            }
        }
    }
    write_fdset(ctx, inp, n, &out[0])?;
    write_fdset(ctx, outp, n, &out[1])?;
    write_fdset(ctx, exp, n, &out[2])?;
    Ok(count)
}

/// select(2): the timeval is updated with the time left, as Linux does.
pub fn sys_select(
    ctx: &mut SyscallContext<'_>,
    nfds: i32,
    inp: UserAddr,
    outp: UserAddr,
    exp: UserAddr,
    tvp: UserAddr,
) -> KResult<u64> {
    let deadline = if tvp.is_null() {
        None
    } else {
        let tv: Timeval = ctx.mm().read_val(tvp.0)?;
        if tv.sec < 0 || tv.usec < 0 {
            return error!(EINVAL);
        }
        // Linux normalises a large usec into seconds.
        let ns = (tv.usec as i128 * 1000) % 1_000_000_000;
        let s = tv.sec as i128 + (tv.usec as i128 * 1000) / 1_000_000_000;
        Some(deadline_from_timespec(
            s.min(i64::MAX as i128) as i64,
            ns as i64,
        )?)
    };
    let r = do_select(ctx, nfds, inp, outp, exp, deadline);
    if let Some(d) = deadline {
        let left = remaining(d);
        let _ = ctx.mm().write_val(
            tvp.0,
            &Timeval {
                sec: left.as_secs() as i64,
                usec: left.subsec_micros() as i64,
            },
        );
    }
    r
}

/// pselect6(2): a timespec (updated) and `{sigset_t *ss; size_t len}`.
pub fn sys_pselect6(
    ctx: &mut SyscallContext<'_>,
    nfds: i32,
    inp: UserAddr,
    outp: UserAddr,
    exp: UserAddr,
    tsp: UserAddr,
    sig: UserAddr,
) -> KResult<u64> {
    let deadline = if tsp.is_null() {
        None
    } else {
        let ts: Timespec = ctx.mm().read_val(tsp.0)?;
        Some(deadline_from_timespec(ts.sec, ts.nsec)?)
    };
    let (mask, size) = if sig.is_null() {
        (UserAddr(0), 0usize)
    } else {
        let pair: [u64; 2] = ctx.mm().read_val(sig.0)?;
        (UserAddr(pair[0]), pair[1] as usize)
    };
    let guard = MaskGuard::new(ctx, mask, size)?;
    let r = do_select(ctx, nfds, inp, outp, exp, deadline);
    guard.finish(&r);
    if let Some(d) = deadline {
        let left = remaining(d);
        let _ = ctx.mm().write_val(
            tsp.0,
            &Timespec {
                sec: left.as_secs() as i64,
                nsec: left.subsec_nanos() as i64,
            },
        );
    }
    r
}
