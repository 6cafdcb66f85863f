//! File leases: fcntl F_SETLEASE/F_GETLEASE, beside the locks of
//! fs/locks.rs. A read lease is broken by an open for writing (or a
//! truncate), a write lease by any open: the holder is signalled (SIGIO,
//! or its F_SETSIG signal with si_fd, through fs/fasync.rs) and the
//! opener waits until the holder downgrades or unlocks, or until
//! /proc/sys/fs/lease-break-time seconds have passed, when the kernel
//! downgrades or removes the lease itself. An O_NONBLOCK opener gets
//! EWOULDBLOCK at once (the break still starts).
//!
//! One table (inode → leases) behind one mutex, with one wait queue for
//! breakers, woken by every change; an atomic says whether any lease
//! exists, so opens of unleased files pay one load. A lease belongs to an
//! open file description and ends with it (a Weak here). Breakers recheck
//! a few times a second as well, since a holder's exit frees its files
//! without passing here.
//!
//! Linux's rules for granting: F_RDLCK fails (EAGAIN) while anyone has
//! the file open for writing; F_WRLCK while any other open file
//! description of it exists. ruml counts the descriptions in every
//! descriptor table; one held only by a mapping is not counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::types::oflags::{O_ACCMODE, O_NONBLOCK, O_RDONLY, O_TRUNC};
use crate::fs::types::FileType;
use crate::fs::vfs::{InodeKey, Path};
use crate::syscalls::SyscallContext;
use crate::task::wait::WaitQueue;

pub const F_SETLEASE: i32 = 1024;
pub const F_GETLEASE: i32 = 1025;
const F_RDLCK: i32 = 0;
const F_WRLCK: i32 = 1;
const F_UNLCK: i32 = 2;

/// Leases on one instance at most (each is an open file description).
const MAX_LEASES: usize = 65536;

/// /proc/sys/fs/lease-break-time, in seconds (0: breaks never time out,
/// as on Linux).
static BREAK_TIME: AtomicI64 = AtomicI64::new(45);

struct Lease {
    file: Weak<OpenFile>,
    /// The descriptor F_SETLEASE came through (si_fd).
    fd: i32,
    kind: i32,
    /// A break in progress: the type it ends in (F_RDLCK or F_UNLCK)
    /// and when the kernel imposes it (None: never).
    breaking: Option<(i32, Option<Instant>)>,
}

impl Lease {
    /// F_GETLEASE's answer: the target type while breaking.
    fn visible(&self) -> i32 {
        self.breaking.map(|b| b.0).unwrap_or(self.kind)
    }
}

static ANY: AtomicBool = AtomicBool::new(false);

type Table = (Mutex<HashMap<InodeKey, Vec<Lease>>>, WaitQueue);

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| (Mutex::new(HashMap::new()), WaitQueue::new()))
}

fn leases() -> std::sync::MutexGuard<'static, HashMap<InodeKey, Vec<Lease>>> {
    table().0.lock().unwrap_or_else(|p| p.into_inner())
}

fn wake() {
    table().1.wake_all();
}

/// Drops dead leases and applies breaks whose time is up.
fn time_out(list: &mut Vec<Lease>, now: Instant) {
    list.retain(|l| l.file.strong_count() > 0);
    for l in list.iter_mut() {
        if let Some((target, Some(when))) = l.breaking {
            if now >= when {
                l.kind = target;
                l.breaking = None;
            }
        }
    }
    list.retain(|l| {
        if l.kind == F_UNLCK {
            if let Some(f) = l.file.upgrade() {
                crate::fs::fasync::clear_owner(&f);
            }
        }
        l.kind != F_UNLCK
    });
}

fn is_same(l: &Lease, f: &OpenFile) -> bool {
    std::ptr::eq(l.file.as_ptr(), f)
}

/// The open file descriptions of inode `key` in every descriptor table
/// but `me`: (writers, read-only ones).
fn other_opens(key: InodeKey, me: &OpenFile) -> (usize, usize) {
    let tables: Vec<Arc<crate::fs::fdtable::FdTable>> = {
        let tree = crate::kernel().tasks.lock();
        let mut v: Vec<Arc<crate::fs::fdtable::FdTable>> = Vec::new();
        for g in tree.values().filter_map(|n| n.group.clone()) {
            for t in g.threads() {
                let ft = t.files();
                if !v.iter().any(|x| Arc::ptr_eq(x, &ft)) {
                    v.push(ft);
                }
            }
        }
        v
    };
    let mut seen: Vec<*const OpenFile> = vec![me as *const OpenFile];
    let (mut w, mut r) = (0, 0);
    for ft in tables {
        for fd in ft.fds() {
            let Ok(f) = ft.get(fd) else { continue };
            if f.is_path_only() || seen.contains(&Arc::as_ptr(&f)) {
                continue;
            }
            if f.path.inode().key() != key {
                continue;
            }
            seen.push(Arc::as_ptr(&f));
            if f.can_write() {
                w += 1;
            } else if f.can_read() {
                r += 1;
            }
        }
    }
    (w, r)
}

/// fcntl(fd, F_SETLEASE / F_GETLEASE, arg).
pub fn fcntl_lease(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    fd: i32,
    cmd: i32,
    arg: u64,
) -> KResult<u64> {
    let key = f.path.inode().key();
    if cmd == F_GETLEASE {
        if !ANY.load(Ordering::Acquire) {
            return Ok(F_UNLCK as u64);
        }
        let mut t = leases();
        let Some(list) = t.get_mut(&key) else {
            return Ok(F_UNLCK as u64);
        };
        time_out(list, Instant::now());
        let v = list
            .iter()
            .find(|l| is_same(l, f))
            .map(|l| l.visible())
            .unwrap_or(F_UNLCK);
        return Ok(v as u64);
    }
    // vfs_setlease: the owner or CAP_LEASE, then a regular file.
    let st = f.stat()?;
    let fsuid = ctx
        .task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .fsuid;
    if st.uid != fsuid && !ctx.task.privileged(crate::task::caps::Cap::Lease) {
        return error!(EACCES);
    }
    if f.file_type() != FileType::Regular {
        return error!(EINVAL);
    }
    let arg = arg as i32;
    let r = match arg {
        F_UNLCK => unlock(key, f),
        F_RDLCK | F_WRLCK => add(key, f, fd, arg),
        _ => error!(EINVAL),
    };
    if r.is_ok() && arg != F_UNLCK {
        crate::fs::fasync::set_owner(ctx, f);
    }
    wake();
    r.map(|_| 0)
}

fn unlock(key: InodeKey, f: &FileRef) -> KResult<()> {
    let mut t = leases();
    let list = t.get_mut(&key).ok_or(Errno::EAGAIN)?;
    let before = list.len();
    list.retain(|l| !is_same(l, f) && l.file.strong_count() > 0);
    let found = list.len() < before;
    if found {
        // Linux's lease_modify(F_UNLCK): the file loses its owner and
        // F_SETSIG signal.
        crate::fs::fasync::clear_owner(f);
    }
    if list.is_empty() {
        t.remove(&key);
    }
    if found {
        Ok(())
    } else {
        error!(EAGAIN)
    }
}

fn add(key: InodeKey, f: &FileRef, fd: i32, kind: i32) -> KResult<()> {
    let (w, r) = other_opens(key, f);
    let (self_w, self_r) = if f.can_write() { (1, 0) } else { (0, 1) };
    // check_conflicting_open.
    if kind == F_RDLCK && (w > 0 || self_w > 0) {
        return error!(EAGAIN);
    }
    if kind == F_WRLCK && (w + self_w != self_w || r + self_r != self_r) {
        return error!(EAGAIN);
    }
    let mut t = leases();
    let total: usize = t.values().map(|v| v.len()).sum();
    let list = t.entry(key).or_default();
    time_out(list, Instant::now());
    let mut mine = None;
    for (i, l) in list.iter().enumerate() {
        if is_same(l, f) {
            mine = Some(i);
            continue;
        }
        // No write lease beside anyone else's; no new lease while a
        // break for a writer is on.
        if kind == F_WRLCK || l.breaking.is_some_and(|b| b.0 == F_UNLCK) {
            return error!(EAGAIN);
        }
    }
    match mine {
        Some(i) => {
            let l = &mut list[i];
            l.kind = kind;
            l.fd = fd;
            l.breaking = None;
        }
        None => {
            if total >= MAX_LEASES {
                return error!(ENOMEM);
            }
            list.push(Lease {
                file: Arc::downgrade(f),
                fd,
                kind,
                breaking: None,
            });
            ANY.store(true, Ordering::Release);
        }
    }
    Ok(())
}

/// A descriptor of `f` was closed (a lease may have gone with it).
pub fn on_close() {
    if ANY.load(Ordering::Acquire) {
        wake();
    }
}

/// Starts breaking the leases on `key` that conflict with an opener
/// (`write`: for writing); returns whether any conflicting lease is left.
fn start_break(key: InodeKey, write: bool) -> bool {
    let secs = BREAK_TIME.load(Ordering::Relaxed);
    let now = Instant::now();
    let deadline = (secs > 0).then(|| now + Duration::from_secs(secs as u64));
    let mut signal: Vec<(FileRef, i32)> = Vec::new();
    let left = {
        let mut t = leases();
        let Some(list) = t.get_mut(&key) else {
            return false;
        };
        time_out(list, now);
        for l in list.iter_mut() {
            if !(write || l.kind == F_WRLCK) {
                continue;
            }
            let target = if write { F_UNLCK } else { F_RDLCK };
            match l.breaking {
                Some((F_UNLCK, _)) => continue,
                Some(_) if !write => continue,
                _ => {}
            }
            l.breaking = Some((target, deadline));
            if let Some(f) = l.file.upgrade() {
                signal.push((f, l.fd));
            }
        }
        let left = list.iter().any(|l| write || l.kind == F_WRLCK);
        if list.is_empty() {
            t.remove(&key);
        }
        left
    };
    for (f, fd) in signal {
        crate::fs::fasync::send_sigio(&f, fd, crate::fs::fasync::POLL_MSG);
    }
    left
}

/// Breaks the leases an open of `p` with `flags` conflicts with (Linux's
/// break_lease), waiting as the opener may.
pub fn break_on_open(p: &Path, flags: u32) -> KResult<()> {
    if !ANY.load(Ordering::Acquire) || p.inode().file_type() != FileType::Regular {
        return Ok(());
    }
    let write = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
    break_lease(p.inode().key(), write, flags & O_NONBLOCK != 0)
}

/// truncate(2) of `p`: breaks every lease, waiting.
pub fn break_on_truncate(p: &Path) -> KResult<()> {
    if !ANY.load(Ordering::Acquire) {
        return Ok(());
    }
    break_lease(p.inode().key(), true, false)
}

fn break_lease(key: InodeKey, write: bool, nonblock: bool) -> KResult<()> {
    if !start_break(key, write) {
        return Ok(());
    }
    if nonblock {
        return error!(EWOULDBLOCK);
    }
    let Some(task) = crate::fs::anon::current_task() else {
        return error!(EWOULDBLOCK);
    };
    loop {
        // Sleep until a change, the earliest forced end, or a recheck.
        let until = {
            let t = leases();
            let next = t
                .get(&key)
                .and_then(|l| l.iter().filter_map(|l| l.breaking.and_then(|b| b.1)).min());
            let poll = Instant::now() + Duration::from_millis(250);
            next.map_or(poll, |n| n.min(poll))
        };
        let gen_before = conflict_state(key, write);
        if !gen_before {
            return Ok(());
        }
        match table()
            .1
            .wait(&task, Some(until), || !conflict_state(key, write))
        {
            Ok(()) => return Ok(()),
            Err(Errno::ETIMEDOUT) => {}
            Err(e) => return Err(e),
        }
        // Leases set up since (or re-upgraded) are broken in turn.
        if !start_break(key, write) {
            return Ok(());
        }
    }
}

/// Whether a lease on `key` still conflicts with the opener (after
/// applying timed-out breaks).
fn conflict_state(key: InodeKey, write: bool) -> bool {
    let mut t = leases();
    let Some(list) = t.get_mut(&key) else {
        return false;
    };
    let before = list.len();
    time_out(list, Instant::now());
    let changed = list.len() != before;
    let left = list.iter().any(|l| write || l.kind == F_WRLCK);
    if list.is_empty() {
        t.remove(&key);
    }
    drop(t);
    if changed {
        wake();
    }
    left
}

/// fs.lease-break-time as /proc/sys shows it (fs/procsys.rs).
pub fn break_time_text() -> String {
    format!("{}\n", BREAK_TIME.load(Ordering::Relaxed))
}

/// Sets fs.lease-break-time (fs/procsys.rs's setter): proc_dointvec's
/// first int; zero or less means breaks never end by themselves (Linux's
/// > 0 test). CAP_SYS_ADMIN too, as before it moved to the table (EPERM).
pub fn set_break_time(admin: bool, buf: &[u8]) -> KResult<()> {
    if !admin {
        return error!(EPERM);
    }
    let text = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
    let v: i64 = text
        .split_whitespace()
        .next()
        .ok_or(crate::errno!(EINVAL))?
        .parse()
        .map_err(|_| crate::errno!(EINVAL))?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return error!(EINVAL);
    }
    BREAK_TIME.store(v, Ordering::Relaxed);
    Ok(())
}
