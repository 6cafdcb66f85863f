//! Signal-driven I/O: a file's *owner* (F_SETOWN, F_SETOWN_EX: a process,
//! a process group or a thread), its signal (F_SETSIG) and O_ASYNC
//! (F_SETFL), as Linux's fown_struct and fasync lists.
//!
//! **Owners** live in one table keyed by the open file description (its
//! address, with a Weak to tell a reused address from the same file);
//! entries of files that are gone are pruned when the table changes.
//! Leases (fs/lease.rs) and dnotify (fs/dnotify.rs) signal the same owner
//! through [`send_sigio`].
//!
//! **O_ASYNC** registers the file on its object's [`Waiters`]
//! ([`FasyncList`], one field of every Waiters), so every object that
//! already wakes pollers — pipes and FIFOs, sockets, terminals, inotify,
//! eventfd… — needs no code of its own. A wake-up does not signal at
//! once: the wake can come with the object's own lock held, and deciding
//! what changed means polling the file. The registration is queued and
//! evaluated with no lock held: at the end of the current system call
//! when the wake-up comes from a task's system call (so a process that
//! makes its own pipe readable has its SIGIO before write returns, as on
//! Linux), otherwise by one kernel worker thread (wake-ups from the
//! network stack's or the console's threads).
//!
//! **What is signalled** is the edge Linux signals: POLL_IN when the file
//! became readable or has more bytes ready than at the last signal (or
//! its peer hung up), POLL_OUT when it became writable, POLL_ERR and
//! POLL_PRI likewise. Linux signals each producer's action (a second
//! write to a pipe nobody read yet signals again; ruml does too, through
//! the byte count), but where a file keeps no byte count a repeated
//! event on an already readable file is not signalled again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM};
use crate::fs::types::oflags::O_ASYNC;
use crate::signal::{self, Queued};
use crate::syscalls::SyscallContext;

pub const F_SETOWN: i32 = 8;
pub const F_GETOWN: i32 = 9;
pub const F_SETSIG: i32 = 10;
pub const F_GETSIG: i32 = 11;
pub const F_SETOWN_EX: i32 = 15;
pub const F_GETOWN_EX: i32 = 16;
pub const F_GETOWNER_UIDS: i32 = 17;

const F_OWNER_TID: i32 = 0;
const F_OWNER_PID: i32 = 1;
const F_OWNER_PGRP: i32 = 2;

/// si_code reasons of SIGPOLL.
pub const POLL_IN: i32 = 1;
pub const POLL_OUT: i32 = 2;
pub const POLL_MSG: i32 = 3;
pub const POLL_ERR: i32 = 4;
pub const POLL_PRI: i32 = 5;
pub const POLL_HUP: i32 = 6;
const SI_SIGIO: i32 = -5;
const SIGIO: i32 = 29;
const POLLMSG: u32 = 0x400;
const POLLWRNORM: u32 = 0x100;
const POLLWRBAND: u32 = 0x200;
const POLLRDBAND: u32 = 0x80;

/// Linux's band_table: si_band for each reason.
fn band(reason: i32) -> u64 {
    (match reason {
        POLL_IN => POLLIN | POLLRDNORM,
        POLL_OUT => POLLOUT | POLLWRNORM | POLLWRBAND,
        POLL_MSG => POLLIN | POLLRDNORM | POLLMSG,
        POLL_ERR => POLLERR,
        POLL_PRI => POLLPRI | POLLRDBAND,
        POLL_HUP => POLLHUP | POLLERR,
        _ => 0,
    }) as u64
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Tid,
    Pid,
    Pgrp,
}

/// One file's owner, as F_SETOWN set it. `id` is a global pid (0: none).
#[derive(Clone)]
struct Fown {
    file: Weak<OpenFile>,
    kind: Kind,
    id: i32,
    signum: i32,
    /// The setter's real and effective uid (Linux's sigio_perm).
    uid: u32,
    euid: u32,
}

fn owners() -> std::sync::MutexGuard<'static, HashMap<usize, Fown>> {
    static T: OnceLock<Mutex<HashMap<usize, Fown>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn key(f: &OpenFile) -> usize {
    f as *const OpenFile as usize
}

fn fown_of(f: &OpenFile) -> Option<Fown> {
    let t = owners();
    let o = t.get(&key(f))?;
    (std::ptr::eq(o.file.as_ptr(), f) && o.file.strong_count() > 0).then(|| o.clone())
}

/// Updates `f`'s owner record through `edit` (a fresh record if none).
fn update(f: &FileRef, edit: impl FnOnce(&mut Fown)) {
    let mut t = owners();
    if t.len() > 64 {
        t.retain(|_, o| o.file.strong_count() > 0);
    }
    let e = t.entry(key(f)).or_insert_with(|| Fown {
        file: Arc::downgrade(f),
        kind: Kind::Pid,
        id: 0,
        signum: 0,
        uid: 0,
        euid: 0,
    });
    if !std::ptr::eq(e.file.as_ptr(), Arc::as_ptr(f)) || e.file.strong_count() == 0 {
        *e = Fown {
            file: Arc::downgrade(f),
            kind: Kind::Pid,
            id: 0,
            signum: 0,
            uid: 0,
            euid: 0,
        };
    }
    edit(e);
}

/// Makes the caller's process `f`'s owner (what F_SETLEASE and F_NOTIFY
/// do on Linux); the F_SETSIG signal stays.
pub fn set_owner(ctx: &SyscallContext<'_>, f: &FileRef) {
    let (uid, euid) = uids(ctx);
    let tgid = ctx.task.tgid();
    update(f, |o| {
        o.kind = Kind::Pid;
        o.id = tgid;
        o.uid = uid;
        o.euid = euid;
    });
}

/// Forgets `f`'s owner and signal (a lease's end does this on Linux).
pub fn clear_owner(f: &FileRef) {
    update(f, |o| {
        o.id = 0;
        o.signum = 0;
    });
}

fn uids(ctx: &SyscallContext<'_>) -> (u32, u32) {
    let c = ctx
        .task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    (c.ruid, c.euid)
}

fn may_signal(o: &Fown, g: &crate::task::ThreadGroup) -> bool {
    let c = g.creds.lock().unwrap_or_else(|p| p.into_inner());
    o.euid == 0 || [c.suid, c.ruid].contains(&o.euid) || [c.suid, c.ruid].contains(&o.uid)
}

/// Signals `f`'s owner that `reason` (POLL_*) happened on descriptor
/// `fd`: the F_SETSIG signal with si_code, si_band and si_fd, or a plain
/// SIGIO when none was set. Nothing without an owner.
pub fn send_sigio(f: &OpenFile, fd: i32, reason: i32) {
    let Some(o) = fown_of(f) else { return };
    if o.id == 0 {
        return;
    }
    let q = if o.signum == 0 {
        Queued {
            signo: SIGIO,
            code: signal::SI_KERNEL,
            a: 0,
            b: 0,
            forced: false,
        }
    } else {
        // Signals with si_codes of their own get SI_SIGIO (Linux).
        let specific = matches!(o.signum, 4 | 5 | 7 | 8 | 11 | 17 | 31);
        Queued {
            signo: o.signum,
            code: if specific { SI_SIGIO } else { reason },
            a: band(reason),
            b: fd as u32 as u64,
            forced: false,
        }
    };
    let tasks = &crate::kernel().tasks;
    match o.kind {
        Kind::Tid => {
            if let Some(t) = tasks.thread(o.id) {
                if may_signal(&o, &t.group) {
                    signal::send_thread(&t, q);
                }
            }
        }
        Kind::Pid => {
            if let Some(g) = tasks.group(o.id) {
                if may_signal(&o, &g) {
                    signal::send_group(&g, q);
                }
            }
        }
        Kind::Pgrp => {
            let groups: Vec<_> = {
                let tree = tasks.lock();
                tree.values()
                    .filter(|n| n.pgid == o.id && n.zombie.is_none())
                    .filter_map(|n| n.group.clone())
                    .collect()
            };
            for g in groups {
                if may_signal(&o, &g) {
                    signal::send_group(&g, q);
                }
            }
        }
    }
}

crate::abi_struct! {
    /// `struct f_owner_ex`.
    pub struct FOwnerEx { pub kind: i32, pub pid: i32 }
}

/// fcntl's owner and signal commands.
pub fn fcntl_owner(ctx: &SyscallContext<'_>, f: &FileRef, cmd: i32, arg: u64) -> KResult<u64> {
    let ns = ctx.task.pid_ns();
    let local = |g: i32| if g == 0 { 0 } else { ns.local(g) };
    match cmd {
        F_GETOWN => Ok(match fown_of(f) {
            Some(o) if o.kind == Kind::Pgrp => (-local(o.id)) as i64 as u64,
            Some(o) => local(o.id) as i64 as u64,
            None => 0,
        }),
        F_GETOWN_EX => {
            let (kind, pid) = match fown_of(f) {
                Some(o) => (
                    match o.kind {
                        Kind::Tid => F_OWNER_TID,
                        Kind::Pid => F_OWNER_PID,
                        Kind::Pgrp => F_OWNER_PGRP,
                    },
                    local(o.id),
                ),
                None => (F_OWNER_PID, 0),
            };
            ctx.mm().write_val(arg, &FOwnerEx { kind, pid })?;
            Ok(0)
        }
        F_SETOWN => {
            let who = arg as i32;
            if who == i32::MIN {
                return error!(EINVAL);
            }
            let (kind, who) = if who < 0 {
                (Kind::Pgrp, -who)
            } else {
                (Kind::Pid, who)
            };
            set(ctx, f, kind, who)
        }
        F_SETOWN_EX => {
            let o: FOwnerEx = ctx.mm().read_val(arg)?;
            let kind = match o.kind {
                F_OWNER_TID => Kind::Tid,
                F_OWNER_PID => Kind::Pid,
                F_OWNER_PGRP => Kind::Pgrp,
                _ => return error!(EINVAL),
            };
            if o.pid < 0 {
                return error!(EINVAL);
            }
            set(ctx, f, kind, o.pid)
        }
        F_GETSIG => Ok(fown_of(f).map(|o| o.signum).unwrap_or(0) as u64),
        F_SETSIG => {
            if arg > 64 {
                return error!(EINVAL);
            }
            update(f, |o| o.signum = arg as i32);
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// F_SETOWN(_EX): `who` as the caller's PID namespace names it (0: none).
fn set(ctx: &SyscallContext<'_>, f: &FileRef, kind: Kind, who: i32) -> KResult<u64> {
    let id = if who == 0 {
        0
    } else {
        let g = ctx.task.pid_ns().global(who).ok_or(crate::errno!(ESRCH))?;
        let tasks = &crate::kernel().tasks;
        let exists = match kind {
            Kind::Tid => tasks.thread(g).is_some(),
            Kind::Pid => tasks.group(g).is_some(),
            Kind::Pgrp => tasks.lock().values().any(|n| n.pgid == g),
        };
        if !exists {
            return error!(ESRCH);
        }
        g
    };
    let (uid, euid) = uids(ctx);
    update(f, |o| {
        o.kind = kind;
        o.id = id;
        o.uid = uid;
        o.euid = euid;
    });
    Ok(0)
}

// ---------------------------------------------------------------------------
// O_ASYNC

/// One O_ASYNC file on an object's wait queue: the descriptor it was
/// enabled through (si_fd) and what its last evaluation saw.
struct Reg {
    file: Weak<OpenFile>,
    fd: AtomicI32,
    /// (poll mask, bytes ready) at the last evaluation.
    last: Mutex<(u32, usize)>,
}

/// The O_ASYNC files of one object (a field of [`Waiters`]); an atomic
/// says whether there are any, so objects without pay one load per wake.
#[derive(Default)]
pub struct FasyncList {
    any: AtomicBool,
    regs: Mutex<Vec<Arc<Reg>>>,
}

/// The largest number of O_ASYNC registrations on one object (each open
/// file description registers at most once).
const MAX_REGS: usize = 4096;

impl FasyncList {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Reg>>> {
        self.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object changed: queue its O_ASYNC files for evaluation.
    pub fn wake(&self) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let regs: Vec<Arc<Reg>> = self.lock().clone();
        defer(regs);
    }

    fn add(&self, f: &FileRef, fd: i32) -> KResult<()> {
        let mut rs = self.lock();
        rs.retain(|r| r.file.strong_count() > 0);
        if let Some(r) = rs.iter().find(|r| r.file.as_ptr() == Arc::as_ptr(f)) {
            r.fd.store(fd, Ordering::Relaxed);
            return Ok(());
        }
        if rs.len() >= MAX_REGS {
            return error!(ENOMEM);
        }
        let now = snapshot(f);
        rs.push(Arc::new(Reg {
            file: Arc::downgrade(f),
            fd: AtomicI32::new(fd),
            last: Mutex::new(now),
        }));
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    fn remove(&self, f: &FileRef) {
        let mut rs = self.lock();
        rs.retain(|r| r.file.strong_count() > 0 && r.file.as_ptr() != Arc::as_ptr(f));
        self.any.store(!rs.is_empty(), Ordering::Release);
    }
}

fn snapshot(f: &OpenFile) -> (u32, usize) {
    match f.ops() {
        Ok(ops) => (
            ops.poll(f),
            ops.bytes_available().and_then(|r| r.ok()).unwrap_or(0),
        ),
        Err(_) => (0, 0),
    }
}

/// F_SETFL changing O_ASYNC on `f` (descriptor `fd`). Files whose object
/// never changes readiness (regular files) just keep the flag, as Linux.
pub fn set_async(f: &FileRef, fd: i32, on: bool) -> KResult<()> {
    let Ok(ops) = f.ops() else { return Ok(()) };
    let Some(w) = ops.waiters() else {
        return Ok(());
    };
    if on {
        w.fasync().add(f, fd)
    } else {
        w.fasync().remove(f);
        Ok(())
    }
}

fn evaluate(r: &Reg) {
    let Some(f) = r.file.upgrade() else { return };
    if f.flags() & O_ASYNC == 0 {
        return;
    }
    let (mask, avail) = snapshot(&f);
    let (pm, pa) = {
        let mut l = r.last.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *l, (mask, avail))
    };
    let fd = r.fd.load(Ordering::Relaxed);
    let rising = mask & !pm;
    let readable = mask & (POLLIN | POLLRDNORM) != 0;
    if f.can_read()
        && ((readable && (pm & (POLLIN | POLLRDNORM) == 0 || avail > pa)) || rising & POLLHUP != 0)
    {
        send_sigio(&f, fd, POLL_IN);
    }
    if f.can_write() && rising & POLLOUT != 0 {
        send_sigio(&f, fd, POLL_OUT);
    }
    if rising & POLLERR != 0 {
        send_sigio(&f, fd, POLL_ERR);
    }
    if rising & POLLPRI != 0 {
        send_sigio(&f, fd, POLL_PRI);
    }
}

thread_local! {
    /// Registrations woken during the current system call (None: this
    /// thread is not in one).
    static DEFERRED: RefCell<Option<Vec<Arc<Reg>>>> = const { RefCell::new(None) };
}

fn push_unique(v: &mut Vec<Arc<Reg>>, regs: Vec<Arc<Reg>>) {
    for r in regs {
        if !v.iter().any(|x| Arc::ptr_eq(x, &r)) {
            v.push(r);
        }
    }
}

fn defer(regs: Vec<Arc<Reg>>) {
    let took = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(v) => {
            push_unique(v, regs.clone());
            true
        }
        None => false,
    });
    if !took {
        worker_queue(regs);
    }
}

/// Runs one system call's handler, then the O_ASYNC signals its wake-ups
/// caused (no lock held by then).
pub fn in_syscall<R>(f: impl FnOnce() -> R) -> R {
    let outer = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_some() {
            return true;
        }
        *d = Some(Vec::new());
        false
    });
    let r = f();
    if outer {
        return r;
    }
    // Signals sent here may wake further objects (signalfd): a few rounds.
    for _ in 0..4 {
        let regs = DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take));
        match regs {
            Some(v) if !v.is_empty() => v.iter().for_each(|r| evaluate(r)),
            _ => break,
        }
    }
    let rest = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    if !rest.is_empty() {
        worker_queue(rest);
    }
    r
}

struct Worker {
    queue: Mutex<Vec<Arc<Reg>>>,
    cv: Condvar,
}

fn worker_queue(regs: Vec<Arc<Reg>>) {
    static W: OnceLock<Arc<Worker>> = OnceLock::new();
    let w = W.get_or_init(|| {
        let w = Arc::new(Worker {
            queue: Mutex::new(Vec::new()),
            cv: Condvar::new(),
        });
        let w2 = w.clone();
        let _ = std::thread::Builder::new()
            .name("ruml-fasync".into())
            .spawn(move || loop {
                let batch = {
                    let mut q = w2.queue.lock().unwrap_or_else(|p| p.into_inner());
                    while q.is_empty() {
                        q = w2.cv.wait(q).unwrap_or_else(|p| p.into_inner());
                    }
                    std::mem::take(&mut *q)
                };
                DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
                batch.iter().for_each(|r| evaluate(r));
                let more = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
                if !more.is_empty() {
                    let mut q = w2.queue.lock().unwrap_or_else(|p| p.into_inner());
                    push_unique(&mut q, more);
                }
            });
        w
    });
    let mut q = w.queue.lock().unwrap_or_else(|p| p.into_inner());
    push_unique(&mut q, regs);
    drop(q);
    w.cv.notify_one();
}
