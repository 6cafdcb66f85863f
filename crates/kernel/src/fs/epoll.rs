//! epoll: an interest list of (descriptor, file, events, data), waited on
//! by scanning each file's readiness ([`FileOps::poll`]) and sleeping on
//! every file's [`Waiters`] until one changes. Level-triggered by
//! default; EPOLLET reports a file again only after it changed (its
//! Waiters' generation moved); EPOLLONESHOT disables an entry once
//! reported until EPOLL_CTL_MOD.
//!
//! Locking: one mutex over the interest list, never held while sleeping.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, POLLERR, POLLHUP, READABLE};
use crate::fs::types::oflags::{O_CLOEXEC, O_RDWR};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::wait::WaitQueue;

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLWAKEUP: u32 = 1 << 29;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;

struct Interest {
    fd: i32,
    file: Weak<OpenFile>,
    events: u32,
    data: u64,
    /// EPOLLONESHOT entry already reported.
    disabled: bool,
    /// EPOLLET: the file's Waiters generation at the last report.
    seen: Option<u64>,
}

/// An epoll instance.
pub struct Epoll {
    items: Mutex<Vec<Interest>>,
    /// The epoll files this one is in (for the nesting limit); dead ones
    /// are skipped. Its own mutex, never held with `items`.
    parents: Mutex<Vec<Weak<OpenFile>>>,
    /// Woken by every watched object's Waiters (see
    /// [`Waiters::add_parent`]): epoll_wait sleeps here as a poller, and
    /// so does poll or an outer epoll on this one. Registered on an
    /// object at EPOLL_CTL_ADD and again at each wait (an object's
    /// Waiters may change), removed at EPOLL_CTL_DEL.
    waiters: Arc<Waiters>,
}

/// Linux's EP_MAX_NESTS: levels of epoll below and above one link.
const EP_MAX_NESTS: usize = 4;
/// What may come with EPOLLEXCLUSIVE (Linux's EPOLLEXCLUSIVE_OK_BITS).
const EPOLLEXCLUSIVE_OK: u32 =
    0x1 | 0x4 | POLLERR | POLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

fn as_epoll(f: &OpenFile) -> Option<&Epoll> {
    f.ops().ok()?.as_any_ops().downcast_ref::<Epoll>()
}

/// kcmp(KCMP_EPOLL_TFD): the file epoll instance `ep` watches as its
/// `toff`-th watch of descriptor number `tfd` (in the order they were
/// added; Linux's is its tree's order of (file, fd), the same for the
/// usual single watch). EINVAL if `ep` is not an epoll file, ENOENT if
/// there is no such watch.
pub fn watched_file(ep: &OpenFile, tfd: u32, toff: u32) -> KResult<Arc<OpenFile>> {
    let Some(ep) = as_epoll(ep) else {
        return error!(EINVAL);
    };
    let items = ep.items.lock().unwrap_or_else(|p| p.into_inner());
    items
        .iter()
        .filter(|i| i64::from(i.fd) == i64::from(tfd))
        .filter_map(|i| i.file.upgrade())
        .nth(toff as usize)
        .ok_or(crate::errno!(ENOENT))
}

/// Levels of epoll inside `f` (0: none), or None if `ep` is among them
/// (a cycle) or they are deeper than any link may make.
fn depth_below(f: &OpenFile, ep: &OpenFile, level: usize) -> Option<usize> {
    if std::ptr::eq(f, ep) {
        return None;
    }
    let e = as_epoll(f)?;
    if level > EP_MAX_NESTS + 1 {
        return None;
    }
    let mut d = 0;
    for c in e.files() {
        if as_epoll(&c).is_some() {
            d = d.max(1 + depth_below(&c, ep, level + 1)?);
        }
    }
    Some(d)
}

/// Levels of epoll that `f` is in (0: none).
fn depth_above(f: &OpenFile, level: usize) -> usize {
    let Some(e) = as_epoll(f) else { return 0 };
    if level > EP_MAX_NESTS + 1 {
        return level;
    }
    let ps: Vec<FileRef> = e
        .parents
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|w| w.upgrade())
        .collect();
    ps.iter()
        .map(|p| 1 + depth_above(p, level + 1))
        .max()
        .unwrap_or(0)
}

impl Epoll {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Interest>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ready entries (up to `max`), updating ET/ONESHOT state if
    /// `consume`.
    fn scan(&self, max: usize, consume: bool) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut items = self.lock();
        items.retain(|i| i.file.strong_count() > 0);
        for it in items.iter_mut() {
            if out.len() >= max {
                break;
            }
            if it.disabled {
                continue;
            }
            let Some(f) = it.file.upgrade() else { continue };
            let Ok(ops) = f.ops() else { continue };
            let rev = ops.poll(&f) & (it.events | POLLERR | POLLHUP);
            if rev == 0 {
                continue;
            }
            if it.events & EPOLLET != 0 {
                // A file without Waiters never changes its readiness (and
                // never wakes anyone, as a Linux file whose wait queue is
                // never woken): reported once after ADD/MOD, then not again.
                let generation = Some(ops.waiters().map_or(0, |w| w.generation()));
                if it.seen == generation {
                    continue;
                }
                if consume {
                    it.seen = generation;
                }
            }
            if consume && it.events & EPOLLONESHOT != 0 {
                it.disabled = true;
            }
            out.push((rev, it.data));
        }
        out
    }

    /// Makes every watched object wake this epoll (idempotent).
    fn register(&self) {
        let items: Vec<(FileRef, bool)> = self
            .lock()
            .iter()
            .filter_map(|i| {
                i.file
                    .upgrade()
                    .map(|f| (f, i.events & EPOLLEXCLUSIVE != 0))
            })
            .collect();
        for (f, exclusive) in items {
            if let Ok(o) = f.ops() {
                if let Some(w) = o.waiters() {
                    w.add_parent(&self.waiters, exclusive);
                }
            }
        }
    }

    fn files(&self) -> Vec<FileRef> {
        self.lock()
            .iter()
            .filter_map(|i| i.file.upgrade())
            .collect()
    }
}

impl crate::fs::vfs::FileOps for Epoll {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EINVAL)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        if self.scan(1, false).is_empty() {
            0
        } else {
            READABLE
        }
    }
    fn seekable(&self) -> bool {
        false
    }
    fn waiters(&self) -> Option<&Waiters> {
        // Whoever polls this epoll sleeps until something under it changes.
        self.register();
        Some(&self.waiters)
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    /// One line per watch, as Linux's ep_show_fdinfo: the events as
    /// epoll_ctl stored them (EPOLLERR and EPOLLHUP added; a fired
    /// EPOLLONESHOT entry keeps only its private bits), the target's
    /// position, inode number and kernel-internal device.
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<crate::task::ns::PidNs>, out: &mut String) {
        const PRIVATE: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
        let items: Vec<(i32, u32, u64, FileRef)> = self
            .lock()
            .iter()
            .filter_map(|i| {
                let ev = if i.disabled {
                    i.events & PRIVATE
                } else {
                    i.events | POLLERR | POLLHUP
                };
                i.file.upgrade().map(|f| (i.fd, ev, i.data, f))
            })
            .collect();
        for (fd, ev, data, f) in items {
            let (ino, sdev) = crate::fs::inotify::ino_sdev(f.path.inode().as_ref());
            out.push_str(&format!(
                "tfd: {fd:8} events: {ev:8x} data: {data:16x}  pos:{} ino:{ino:x} sdev:{sdev:x}\n",
                f.pos() as i64
            ));
        }
    }
}

syscall_table! { pub fn epoll_table;
    EPOLL_CREATE => sys_epoll_create(size: i32),
    EPOLL_CREATE1 => sys_epoll_create1(flags: u32),
    EPOLL_CTL => sys_epoll_ctl(epfd: Fd, op: i32, fd: Fd, event: UserAddr),
    EPOLL_WAIT => sys_epoll_wait(epfd: Fd, events: UserAddr, max: i32, timeout: i32),
    EPOLL_PWAIT => sys_epoll_pwait(epfd: Fd, events: UserAddr, max: i32, timeout: i32, mask: UserAddr, size: usize),
    EPOLL_PWAIT2 => sys_epoll_pwait2(epfd: Fd, events: UserAddr, max: i32, timeout: UserAddr, mask: UserAddr, size: usize),
}

fn sys_epoll_create(ctx: &mut SyscallContext<'_>, size: i32) -> KResult<u64> {
    if size <= 0 {
        return error!(EINVAL);
    }
    sys_epoll_create1(ctx, 0)
}

fn sys_epoll_create1(ctx: &mut SyscallContext<'_>, flags: u32) -> KResult<u64> {
    if flags & !O_CLOEXEC != 0 {
        return error!(EINVAL);
    }
    let f = anon_file(
        "eventpoll",
        Arc::new(Epoll {
            items: Mutex::new(Vec::new()),
            parents: Mutex::new(Vec::new()),
            waiters: Arc::new(Waiters::new()),
        }),
        O_RDWR,
    );
    ctx.files()
        .alloc(f, flags & O_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

fn epoll_of(
    ctx: &SyscallContext<'_>,
    epfd: Fd,
) -> KResult<(FileRef, Arc<dyn crate::fs::vfs::FileOps>)> {
    let f = ctx.files().get(epfd.0)?;
    let ops = f.ops().map_err(|_| crate::errno!(EINVAL))?.clone();
    if ops.as_any_ops().downcast_ref::<Epoll>().is_none() {
        return error!(EINVAL);
    }
    Ok((f, ops))
}

fn sys_epoll_ctl(
    ctx: &mut SyscallContext<'_>,
    epfd: Fd,
    op: i32,
    fd: Fd,
    event: UserAddr,
) -> KResult<u64> {
    // Linux's order: the event is copied in first (EFAULT, for every op
    // but DEL, even an unknown one), then both descriptors (EBADF), then
    // whether the target can be polled (EPERM), then EINVAL.
    let (events, data) = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let raw: [u8; 12] = ctx.mm().read_val(event.0)?;
        (
            u32::from_le_bytes(raw[0..4].try_into().unwrap_or([0; 4])),
            u64::from_le_bytes(raw[4..12].try_into().unwrap_or([0; 8])),
        )
    };
    let ef = ctx.files().get(epfd.0)?;
    let target = ctx.files().get(fd.0)?;
    if ef.is_path_only() || target.is_path_only() {
        return error!(EBADF);
    }
    // Regular files and directories are always ready: Linux refuses them.
    let t = target.path.inode().file_type();
    if matches!(
        t,
        crate::fs::types::FileType::Regular | crate::fs::types::FileType::Directory
    ) && target
        .ops()
        .is_ok_and(|o| o.waiters().is_none() && o.as_any_ops().downcast_ref::<Epoll>().is_none())
        && !target.path.mnt.internal
    {
        return error!(EPERM);
    }
    // The pass-through console on a host file or /dev/null (console.rs).
    if target.ops().is_ok_and(|o| {
        o.as_any_ops()
            .downcast_ref::<crate::fs::console::Console>()
            .is_some_and(|c| c.epoll_refused)
    }) {
        return error!(EPERM);
    }
    if Arc::ptr_eq(&target, &ef) {
        return error!(EINVAL);
    }
    let (_, ops) = epoll_of(ctx, epfd)?;
    let Some(ep) = ops.as_any_ops().downcast_ref::<Epoll>() else {
        return error!(EINVAL);
    };
    // EPOLLEXCLUSIVE, then loops and depth, before EEXIST/ENOENT (Linux).
    let target_is_epoll = as_epoll(&target).is_some();
    if op != EPOLL_CTL_DEL
        && events & EPOLLEXCLUSIVE != 0
        && (op == EPOLL_CTL_MOD
            || (op == EPOLL_CTL_ADD && (target_is_epoll || events & !EPOLLEXCLUSIVE_OK != 0)))
    {
        return error!(EINVAL);
    }
    if op == EPOLL_CTL_ADD && target_is_epoll {
        let below = depth_below(&target, &ef, 0).ok_or(Errno::ELOOP)?;
        if below + 1 + depth_above(&ef, 0) > EP_MAX_NESTS {
            return error!(ELOOP);
        }
    }
    let mut items = ep.lock();
    let pos = items
        .iter()
        .position(|i| i.fd == fd.0 && i.file.upgrade().is_some_and(|f| Arc::ptr_eq(&f, &target)));
    match op {
        EPOLL_CTL_ADD => {
            if pos.is_some() {
                return error!(EEXIST);
            }
            items.push(Interest {
                fd: fd.0,
                file: Arc::downgrade(&target),
                events: events & !EPOLLWAKEUP,
                data,
                disabled: false,
                seen: None,
            });
            drop(items);
            if let Ok(o) = target.ops() {
                if let Some(w) = o.waiters() {
                    w.add_parent(&ep.waiters, events & EPOLLEXCLUSIVE != 0);
                }
            }
            if let Some(t) = as_epoll(&target) {
                let mut ps = t.parents.lock().unwrap_or_else(|p| p.into_inner());
                ps.retain(|w| w.strong_count() > 0);
                ps.push(Arc::downgrade(&ef));
            }
        }
        EPOLL_CTL_MOD => {
            let i = pos.ok_or(crate::errno!(ENOENT))?;
            if items[i].events & EPOLLEXCLUSIVE != 0 {
                return error!(EINVAL);
            }
            items[i].events = events & !EPOLLWAKEUP;
            items[i].data = data;
            items[i].disabled = false;
            items[i].seen = None;
        }
        EPOLL_CTL_DEL => {
            let i = pos.ok_or(crate::errno!(ENOENT))?;
            items.remove(i);
            let still = items
                .iter()
                .any(|i| i.file.upgrade().is_some_and(|f| Arc::ptr_eq(&f, &target)));
            drop(items);
            if !still {
                if let Ok(o) = target.ops() {
                    if let Some(w) = o.waiters() {
                        w.remove_parent(&ep.waiters);
                    }
                }
            }
            if let Some(t) = as_epoll(&target) {
                let mut ps = t.parents.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(j) = ps
                    .iter()
                    .position(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&ef)))
                {
                    ps.swap_remove(j);
                }
            }
        }
        _ => return error!(EINVAL),
    }
    Ok(0)
}

fn do_wait(
    ctx: &SyscallContext<'_>,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    deadline: Option<Instant>,
) -> KResult<u64> {
    if max <= 0 || max as usize > (i32::MAX as usize) / 12 {
        return error!(EINVAL);
    }
    let (_f, ops) = epoll_of(ctx, epfd)?;
    let Some(ep) = ops.as_any_ops().downcast_ref::<Epoll>() else {
        return error!(EINVAL);
    };
    // The buffer must be writable before anything is consumed.
    if ctx.mm().accessible_len(events.0, 12, true) < 12 {
        return error!(EFAULT);
    }
    let mut ready = ep.scan(max as usize, true);
    if ready.is_empty() && deadline.is_none_or(|d| d > Instant::now()) {
        // Sleep on this epoll's own Waiters, which every watched object
        // wakes (EPOLLEXCLUSIVE ones only one epoll at a time).
        ep.register();
        ep.waiters.add_poller(ctx.task);
        let local = WaitQueue::new();
        let r = local.wait(ctx.task, deadline, || {
            ready = ep.scan(max as usize, true);
            !ready.is_empty()
        });
        ep.waiters.remove_poller(ctx.task);
        match r {
            Ok(()) | Err(Errno::ETIMEDOUT) => {}
            Err(_) => return error!(EINTR),
        }
    }
    let mut buf = Vec::with_capacity(ready.len() * 12);
    for (ev, data) in &ready {
        buf.extend_from_slice(&ev.to_le_bytes());
        buf.extend_from_slice(&data.to_le_bytes());
    }
    ctx.mm().write_bytes(events.0, &buf)?;
    Ok(ready.len() as u64)
}

fn deadline_ms(timeout: i32) -> Option<Instant> {
    (timeout >= 0).then(|| Instant::now() + Duration::from_millis(timeout as u64))
}

fn sys_epoll_wait(
    ctx: &mut SyscallContext<'_>,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout: i32,
) -> KResult<u64> {
    do_wait(ctx, epfd, events, max, deadline_ms(timeout))
}

/// Runs `f` with the signal mask at `mask` (if given), as epoll_pwait:
/// an interrupting signal is delivered under the temporary mask and the
/// old one comes back after its handler.
fn with_mask(
    ctx: &mut SyscallContext<'_>,
    mask: UserAddr,
    size: usize,
    f: impl FnOnce(&mut SyscallContext<'_>) -> KResult<u64>,
) -> KResult<u64> {
    if mask.is_null() {
        return f(ctx);
    }
    if size != 8 {
        return error!(EINVAL);
    }
    let m: u64 = ctx.mm().read_val(mask.0)?;
    let old = {
        let mut s = ctx.task.signals.lock();
        let old = s.blocked;
        s.blocked = m & !((1 << 8) | (1 << 18));
        old
    };
    let r = f(ctx);
    let mut s = ctx.task.signals.lock();
    if r == Err(Errno::EINTR) {
        s.saved_mask = Some(old);
    } else {
        s.blocked = old;
    }
    r
}

fn sys_epoll_pwait(
    ctx: &mut SyscallContext<'_>,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout: i32,
    mask: UserAddr,
    size: usize,
) -> KResult<u64> {
    with_mask(ctx, mask, size, |ctx| {
        do_wait(ctx, epfd, events, max, deadline_ms(timeout))
    })
}

fn sys_epoll_pwait2(
    ctx: &mut SyscallContext<'_>,
    epfd: Fd,
    events: UserAddr,
    max: i32,
    timeout: UserAddr,
    mask: UserAddr,
    size: usize,
) -> KResult<u64> {
    let deadline = if timeout.is_null() {
        None
    } else {
        let t: [i64; 2] = ctx.mm().read_val(timeout.0)?;
        if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
            return error!(EINVAL);
        }
        Some(Instant::now() + Duration::new(t[0] as u64, t[1] as u32))
    };
    with_mask(ctx, mask, size, |ctx| {
        do_wait(ctx, epfd, events, max, deadline)
    })
}
