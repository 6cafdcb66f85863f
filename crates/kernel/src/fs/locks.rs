//! File locks: flock(2) (per open file description), POSIX record locks
//! (fcntl F_GETLK/F_SETLK/F_SETLKW, per process, released when the process
//! closes any descriptor of the file or exits) and open-file-description
//! locks (F_OFD_*). One table for the instance behind one mutex; waiters
//! sleep on one queue woken by every unlock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::vfs::InodeKey;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::wait::WaitQueue;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Read,
    Write,
}

/// Who holds a lock.
#[derive(Clone, Debug)]
enum Owner {
    /// A POSIX record lock: the process.
    Process(i32),
    /// An OFD lock or a flock: the open file description.
    File(usize, Weak<OpenFile>),
}

impl Owner {
    fn same(&self, o: &Owner) -> bool {
        match (self, o) {
            (Owner::Process(a), Owner::Process(b)) => a == b,
            (Owner::File(a, _), Owner::File(b, _)) => a == b,
            _ => false,
        }
    }
    fn alive(&self) -> bool {
        match self {
            Owner::Process(_) => true,
            Owner::File(_, w) => w.strong_count() > 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Lock {
    owner: Owner,
    kind: Kind,
    start: u64,
    /// Exclusive end; u64::MAX means "to the end of the file, forever".
    end: u64,
    pid: i32,
}

#[derive(Default)]
struct Tables {
    /// Record locks (POSIX and OFD) by file.
    records: HashMap<InodeKey, Vec<Lock>>,
    /// flock locks by file.
    flocks: HashMap<InodeKey, Vec<Lock>>,
}

fn tables() -> &'static (Mutex<Tables>, WaitQueue) {
    static T: OnceLock<(Mutex<Tables>, WaitQueue)> = OnceLock::new();
    T.get_or_init(|| (Mutex::new(Tables::default()), WaitQueue::new()))
}

fn lock_tables() -> std::sync::MutexGuard<'static, Tables> {
    tables().0.lock().unwrap_or_else(|p| p.into_inner())
}

fn conflicts(a: &Lock, b: &Lock) -> bool {
    !a.owner.same(&b.owner)
        && a.start < b.end
        && b.start < a.end
        && (a.kind == Kind::Write || b.kind == Kind::Write)
}

/// Replaces the owner's locks over [start, end) with `new` (None: unlock),
/// splitting the owner's locks at the edges.
fn apply(list: &mut Vec<Lock>, owner: &Owner, start: u64, end: u64, new: Option<Kind>, pid: i32) {
    let mut out = Vec::with_capacity(list.len() + 2);
    for l in list.drain(..) {
        if !l.owner.same(owner) || l.end <= start || l.start >= end {
            out.push(l);
            continue;
        }
        if l.start < start {
            out.push(Lock {
                end: start,
                ..l.clone()
            });
        }
        if l.end > end {
            out.push(Lock {
                start: end,
                ..l.clone()
            });
        }
    }
    if let Some(kind) = new {
        out.push(Lock {
            owner: owner.clone(),
            kind,
            start,
            end,
            pid,
        });
    }
    // Merge the owner's adjacent locks of the same kind.
    out.sort_by_key(|l| l.start);
    let mut merged: Vec<Lock> = Vec::with_capacity(out.len());
    for l in out {
        if let Some(m) = merged.iter_mut().rev().find(|m| {
            m.owner.same(&l.owner) && m.kind == l.kind && m.end >= l.start && m.start <= l.end
        }) {
            m.start = m.start.min(l.start);
            m.end = m.end.max(l.end);
            continue;
        }
        merged.push(l);
    }
    *list = merged;
}

fn wake() {
    tables().1.wake_all();
}

/// The process closed a descriptor of `file`: its POSIX locks on the file
/// go (POSIX's famous rule).
pub fn on_close(tgid: i32, file: &FileRef) {
    // dnotify marks go with any close of their file (fs/dnotify.rs).
    crate::fs::dnotify::on_close(file);
    crate::fs::lease::on_close();
    let key = file.path.inode().key();
    let mut t = lock_tables();
    if let Some(list) = t.records.get_mut(&key) {
        let before = list.len();
        list.retain(|l| !matches!(l.owner, Owner::Process(p) if p == tgid));
        if list.len() != before {
            drop(t);
            wake();
        }
    }
}

/// The process exited: all its POSIX locks go.
pub fn on_exit(tgid: i32) {
    let mut t = lock_tables();
    for list in t.records.values_mut() {
        list.retain(|l| !matches!(l.owner, Owner::Process(p) if p == tgid));
    }
    drop(t);
    wake();
}

crate::abi_struct! {
    /// `struct flock` (x86_64).
    pub struct Flock { pub l_type: i16, pub l_whence: i16, pub pad: i32, pub l_start: i64, pub l_len: i64, pub l_pid: i32, pub pad2: i32 }
}

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
pub const F_GETLK: i32 = 5;
pub const F_SETLK: i32 = 6;
pub const F_SETLKW: i32 = 7;
pub const F_OFD_GETLK: i32 = 36;
pub const F_OFD_SETLK: i32 = 37;
pub const F_OFD_SETLKW: i32 = 38;

/// The byte range a `struct flock` names.
fn range(f: &OpenFile, fl: &Flock) -> KResult<(u64, u64)> {
    let base: i64 = match fl.l_whence {
        0 => 0,
        1 => f.pos() as i64,
        2 => f.size()? as i64,
        _ => return error!(EINVAL),
    };
    let start = base
        .checked_add(fl.l_start)
        .ok_or(crate::errno!(EOVERFLOW))?;
    let (s, e) = match fl.l_len {
        0 => (start, i64::MAX),
        l if l > 0 => (start, start.checked_add(l).ok_or(crate::errno!(EOVERFLOW))?),
        l => (start.checked_add(l).ok_or(crate::errno!(EINVAL))?, start),
    };
    if s < 0 {
        return error!(EINVAL);
    }
    let e = if e == i64::MAX { u64::MAX } else { e as u64 };
    Ok((s as u64, e))
}

/// fcntl's lock commands.
pub fn fcntl_lock(ctx: &SyscallContext<'_>, file: &FileRef, cmd: i32, arg: u64) -> KResult<u64> {
    let mut fl: Flock = ctx.mm().read_val(arg)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return error!(EINVAL);
    }
    let owner = if ofd {
        Owner::File(Arc::as_ptr(file) as usize, Arc::downgrade(file))
    } else {
        Owner::Process(ctx.task.tgid())
    };
    let pid = if ofd { -1 } else { ctx.task.tgid() };
    let (start, end) = range(file, &fl)?;
    let key = file.path.inode().key();
    let kind = match fl.l_type {
        F_RDLCK => Some(Kind::Read),
        F_WRLCK => Some(Kind::Write),
        F_UNLCK => None,
        _ => return error!(EINVAL),
    };
    if cmd == F_GETLK || cmd == F_OFD_GETLK {
        let Some(k) = kind else { return error!(EINVAL) };
        let probe = Lock {
            owner,
            kind: k,
            start,
            end,
            pid,
        };
        let mut t = lock_tables();
        let list = t.records.entry(key).or_default();
        list.retain(|l| l.owner.alive());
        match list.iter().find(|l| conflicts(l, &probe)) {
            Some(l) => {
                fl.l_type = if l.kind == Kind::Write {
                    F_WRLCK
                } else {
                    F_RDLCK
                };
                fl.l_whence = 0;
                fl.l_start = l.start as i64;
                fl.l_len = if l.end == u64::MAX {
                    0
                } else {
                    (l.end - l.start) as i64
                };
                fl.l_pid = l.pid;
            }
            None => fl.l_type = F_UNLCK,
        }
        drop(t);
        ctx.mm().write_val(arg, &fl)?;
        return Ok(0);
    }
    if let Some(k) = kind {
        // The file must be open for the kind of lock.
        if (k == Kind::Read && !file.can_read()) || (k == Kind::Write && !file.can_write()) {
            return error!(EBADF);
        }
    }
    let wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
    let try_set = || -> bool {
        let mut t = lock_tables();
        let list = t.records.entry(key).or_default();
        list.retain(|l| l.owner.alive());
        if let Some(k) = kind {
            let probe = Lock {
                owner: owner.clone(),
                kind: k,
                start,
                end,
                pid,
            };
            if list.iter().any(|l| conflicts(l, &probe)) {
                return false;
            }
        }
        apply(list, &owner, start, end, kind, pid);
        true
    };
    if try_set() {
        if kind.is_none() {
            wake();
        }
        return Ok(0);
    }
    if !wait {
        return error!(EAGAIN);
    }
    tables().1.wait(ctx.task, None, try_set)?;
    Ok(0)
}

syscall_table! { pub fn locks_table;
    FLOCK => sys_flock(fd: Fd, op: i32),
}

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;

fn sys_flock(ctx: &mut SyscallContext<'_>, fd: Fd, op: i32) -> KResult<u64> {
    let file = ctx.files().get(fd.0)?;
    if file.is_path_only() {
        return error!(EBADF);
    }
    let kind = match op & !LOCK_NB {
        LOCK_SH => Some(Kind::Read),
        LOCK_EX => Some(Kind::Write),
        LOCK_UN => None,
        _ => return error!(EINVAL),
    };
    let key = file.path.inode().key();
    let owner = Owner::File(Arc::as_ptr(&file) as usize, Arc::downgrade(&file));
    let try_set = || -> bool {
        let mut t = lock_tables();
        let list = t.flocks.entry(key).or_default();
        list.retain(|l| l.owner.alive());
        if let Some(k) = kind {
            let probe = Lock {
                owner: owner.clone(),
                kind: k,
                start: 0,
                end: u64::MAX,
                pid: 0,
            };
            if list.iter().any(|l| conflicts(l, &probe)) {
                return false;
            }
        }
        list.retain(|l| !l.owner.same(&owner));
        if let Some(k) = kind {
            list.push(Lock {
                owner: owner.clone(),
                kind: k,
                start: 0,
                end: u64::MAX,
                pid: 0,
            });
        }
        true
    };
    if try_set() {
        wake();
        return Ok(0);
    }
    if op & LOCK_NB != 0 {
        return error!(EWOULDBLOCK);
    }
    tables().1.wait(ctx.task, None, try_set)?;
    Ok(0)
}

#[allow(dead_code)]
const _: Option<UserAddr> = None;
