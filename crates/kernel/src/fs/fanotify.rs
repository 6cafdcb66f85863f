//! fanotify, notification class: fanotify_init (CAP_SYS_ADMIN) and
//! fanotify_mark on inodes, directories (FAN_EVENT_ON_CHILD), mounts and
//! filesystems; FAN_ACCESS, FAN_MODIFY, FAN_OPEN, FAN_CLOSE_WRITE and
//! FAN_CLOSE_NOWRITE (with FAN_ONDIR). Each event read carries a new
//! descriptor of the object, opened for the reader with the group's
//! event flags; such descriptors make no events themselves (Linux's
//! FMODE_NONOTIFY, a flag bit of the open file here). Permission classes
//! and permission events, FAN_REPORT_FID/DFID/NAME and directory entry
//! events give EINVAL.
//!
//! Marks live in one table behind one mutex, fed by inotify's event
//! points (fs/inotify.rs calls [`event`]); an atomic says whether any mark
//! exists. A group's queue is bounded (16384 events, then one
//! FAN_Q_OVERFLOW); identical unread events of the same object and
//! process merge, as Linux merges them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::OpenFile;
use crate::fs::inotify::{IN_ACCESS, IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_MODIFY, IN_OPEN};
use crate::fs::poll::{PollEvents, Waiters};
use crate::fs::types::oflags::{O_CLOEXEC, O_LARGEFILE, O_NONBLOCK, O_RDWR};
use crate::fs::types::FileType;
use crate::fs::vfs::{FileOps, Inode, InodeKey, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::Task;

/// A flag bit of open files fanotify made for its readers: their own
/// accesses make no events (Linux's FMODE_NONOTIFY).
pub const FMODE_NONOTIFY: u32 = 0x0400_0000;

const FAN_ACCESS: u64 = 0x1;
const FAN_MODIFY: u64 = 0x2;
const FAN_CLOSE_WRITE: u64 = 0x8;
const FAN_CLOSE_NOWRITE: u64 = 0x10;
const FAN_OPEN: u64 = 0x20;
const FAN_Q_OVERFLOW: u64 = 0x4000;
const FAN_EVENT_ON_CHILD: u64 = 0x0800_0000;
const FAN_ONDIR: u64 = 0x4000_0000;
const EVENTS: u64 = FAN_ACCESS | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE | FAN_OPEN;

const FAN_CLOEXEC: u32 = 0x1;
const FAN_NONBLOCK: u32 = 0x2;
const FAN_UNLIMITED_QUEUE: u32 = 0x10;
const FAN_UNLIMITED_MARKS: u32 = 0x20;
const FAN_REPORT_TID: u32 = 0x100;

const FAN_MARK_ADD: u32 = 0x1;
const FAN_MARK_REMOVE: u32 = 0x2;
const FAN_MARK_DONT_FOLLOW: u32 = 0x4;
const FAN_MARK_ONLYDIR: u32 = 0x8;
const FAN_MARK_MOUNT: u32 = 0x10;
const FAN_MARK_FLUSH: u32 = 0x80;
const FAN_MARK_FILESYSTEM: u32 = 0x100;

const MAX_QUEUED: usize = 16384;
const MAX_MARKS: usize = 8192;
const METADATA_LEN: usize = 24;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Inode(InodeKey),
    Mount(u64),
    /// A filesystem, by its device number.
    Fs(u64),
}

/// A mark; an inode mark holds its inode (pinned while the mark lives,
/// as Linux's) for /proc/PID/fdinfo. Marks go with FAN_MARK_REMOVE or
/// FLUSH, or with their group's file ([`GroupFile`]'s drop).
struct Mark {
    group: Weak<Group>,
    target: Target,
    mask: u64,
    inode: Option<Arc<dyn Inode>>,
}

struct Event {
    path: Option<Path>,
    mask: u64,
    pid: i32,
}

/// One fanotify group (the open file).
pub struct Group {
    queue: Mutex<VecDeque<Event>>,
    waiters: Waiters,
    /// open(2) flags for the descriptors events carry.
    event_flags: u32,
    report_tid: bool,
    limited: bool,
    /// fanotify_init's flags, as fdinfo shows them.
    init_flags: u32,
}

static ANY: AtomicBool = AtomicBool::new(false);

fn marks() -> std::sync::MutexGuard<'static, Vec<Mark>> {
    static M: OnceLock<Mutex<Vec<Mark>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn same_object(a: &Path, b: &Path) -> bool {
    a.mnt.id == b.mnt.id && a.inode().key() == b.inode().key()
}

impl Group {
    fn push(&self, path: &Path, mask: u64, pid: i32) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let dir = mask & FAN_ONDIR;
            if let Some(e) = q.iter_mut().rev().take(128).find(|e| {
                e.pid == pid
                    && e.mask & FAN_ONDIR == dir
                    && e.path.as_ref().is_some_and(|p| same_object(p, path))
            }) {
                e.mask |= mask;
            } else if self.limited && q.len() >= MAX_QUEUED {
                if q.back().is_none_or(|l| l.mask != FAN_Q_OVERFLOW) {
                    q.push_back(Event {
                        path: None,
                        mask: FAN_Q_OVERFLOW,
                        pid: 0,
                    });
                }
            } else {
                q.push_back(Event {
                    path: Some(path.clone()),
                    mask,
                    pid,
                });
            }
        }
        self.waiters.wake_all();
    }
}

/// Something (inotify bits `in_mask`) happened to the object at `path`.
pub fn event(path: &Path, in_mask: u32) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let mut fan = 0;
    for (i, f) in [
        (IN_ACCESS, FAN_ACCESS),
        (IN_MODIFY, FAN_MODIFY),
        (IN_CLOSE_WRITE, FAN_CLOSE_WRITE),
        (IN_CLOSE_NOWRITE, FAN_CLOSE_NOWRITE),
        (IN_OPEN, FAN_OPEN),
    ] {
        if in_mask & i != 0 {
            fan |= f;
        }
    }
    if fan == 0 {
        return;
    }
    let is_dir = path.inode().file_type() == FileType::Directory;
    let key = path.inode().key();
    let parent = path.dentry.parent.as_ref().map(|p| p.inode.key());
    let task = crate::fs::anon::current_task();
    let mut hits: Vec<(Arc<Group>, u64)> = Vec::new();
    // Declared before the lock, so dropped (releasing inodes) after it.
    let mut stale: Vec<Mark> = Vec::new();
    {
        let mut ms = marks();
        stale.extend(ms.extract_if(.., |m| m.group.strong_count() == 0));
        for m in ms.iter() {
            let on = match m.target {
                Target::Inode(k) if k == key => true,
                Target::Inode(k) => Some(k) == parent && m.mask & FAN_EVENT_ON_CHILD != 0,
                Target::Mount(id) => id == path.mnt.id,
                Target::Fs(dev) => dev == key.0,
            };
            if !on || (is_dir && m.mask & FAN_ONDIR == 0) {
                continue;
            }
            let Some(g) = m.group.upgrade() else { continue };
            match hits.iter_mut().find(|(h, _)| Arc::ptr_eq(h, &g)) {
                Some((_, mask)) => *mask |= m.mask & fan,
                None => hits.push((g, m.mask & fan)),
            }
        }
    }
    for (g, mask) in hits {
        if mask == 0 {
            continue;
        }
        let pid = match &task {
            Some(t) if g.report_tid => t.tid(),
            Some(t) => t.tgid(),
            None => 0,
        };
        g.push(path, mask | if is_dir { FAN_ONDIR } else { 0 }, pid);
    }
}

struct GroupFile(Arc<Group>);

impl FileOps for GroupFile {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let g = &self.0;
        crate::fs::inotify::wait_for_event(&g.queue, &g.waiters, f, task)?;
        if buf.len() < METADATA_LEN {
            return error!(EINVAL);
        }
        let mut out = Vec::new();
        loop {
            if out.len() + METADATA_LEN > buf.len() {
                break;
            }
            let Some(e) = g
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            else {
                break;
            };
            let fd = match (&e.path, task) {
                (Some(p), Some(t)) => match open_for(t, p, g.event_flags) {
                    Ok(fd) => fd,
                    Err(err) => {
                        if out.is_empty() {
                            return Err(err);
                        }
                        break;
                    }
                },
                _ => -1,
            };
            let pid = match task {
                Some(t) if e.pid != 0 => t.pid_ns().local(e.pid),
                _ => 0,
            };
            out.extend_from_slice(&(METADATA_LEN as u32).to_le_bytes());
            out.push(3); // FANOTIFY_METADATA_VERSION
            out.push(0);
            out.extend_from_slice(&(METADATA_LEN as u16).to_le_bytes());
            // FAN_ONDIR marks a directory's event only with FID reports.
            out.extend_from_slice(&(e.mask & !FAN_ONDIR).to_le_bytes());
            out.extend_from_slice(&fd.to_le_bytes());
            out.extend_from_slice(&pid.to_le_bytes());
        }
        buf[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        crate::fs::inotify::queue_poll(&self.0.queue)
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.0.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        let q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        Some(Ok(q.len() * METADATA_LEN))
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    /// The group's flags and event flags, then one line per mark, the
    /// newest first, as Linux's fanotify_show_fdinfo (no mark flags or
    /// ignore masks here: ruml has neither).
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<crate::task::ns::PidNs>, out: &mut String) {
        let g = &self.0;
        out.push_str(&format!(
            "fanotify flags:{:x} event-flags:{:x}\n",
            g.init_flags,
            g.event_flags | O_LARGEFILE
        ));
        type Shown = (Target, u64, Option<Arc<dyn Inode>>);
        let mine: Vec<Shown> = marks()
            .iter()
            .filter(|m| std::ptr::eq(m.group.as_ptr(), Arc::as_ptr(g)))
            .map(|m| (m.target, m.mask, m.inode.clone()))
            .collect();
        for (target, mask, inode) in mine.into_iter().rev() {
            let mask = mask as u32;
            match (target, inode) {
                (Target::Inode(_), Some(inode)) => {
                    let (ino, sdev) = crate::fs::inotify::ino_sdev(&*inode);
                    out.push_str(&format!(
                        "fanotify ino:{ino:x} sdev:{sdev:x} mflags:0 mask:{mask:x} ignored_mask:0 {}\n",
                        crate::fs::inotify::fhandle_text(&*inode)
                    ));
                }
                (Target::Inode(_), None) => {}
                (Target::Mount(id), _) => out.push_str(&format!(
                    "fanotify mnt_id:{id:x} mflags:0 mask:{mask:x} ignored_mask:0\n"
                )),
                (Target::Fs(dev), _) => {
                    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
                    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
                    let sdev = (major << 20) | (minor & 0xfffff);
                    out.push_str(&format!(
                        "fanotify sdev:{sdev:x} mflags:0 mask:{mask:x} ignored_mask:0\n"
                    ));
                }
            }
        }
    }
}

impl Drop for GroupFile {
    /// The group's marks go with its file (releasing their inodes).
    fn drop(&mut self) {
        let me = Arc::as_ptr(&self.0);
        // Collected under the lock, dropped (releasing inodes) after it.
        let gone: Vec<Mark> = marks()
            .extract_if(.., |m| {
                std::ptr::eq(m.group.as_ptr(), me) || m.group.strong_count() == 0
            })
            .collect();
        drop(gone);
    }
}

/// Opens the event's object for the reader: a descriptor that makes no
/// events itself.
fn open_for(t: &Arc<Task>, p: &Path, flags: u32) -> KResult<i32> {
    let caller = crate::fs::vfs::Caller::of(t);
    let ops = p.inode().open(flags & !O_CLOEXEC, &caller)?;
    let f = OpenFile::new(p.clone(), Some(ops), (flags & !O_CLOEXEC) | FMODE_NONOTIFY);
    t.files().alloc(f, flags & O_CLOEXEC != 0)
}

syscall_table! { pub fn fanotify_table;
    FANOTIFY_INIT => sys_fanotify_init(flags: u32, event_f_flags: u32),
    FANOTIFY_MARK => sys_fanotify_mark(fd: Fd, flags: u32, mask: u64, dirfd: Fd, path: UserAddr),
}

fn sys_fanotify_init(ctx: &mut SyscallContext<'_>, flags: u32, event_f_flags: u32) -> KResult<u64> {
    if !ctx.task.privileged(crate::task::caps::Cap::SysAdmin) {
        return error!(EPERM);
    }
    // Only the notification class, optionally FAN_REPORT_TID.
    let known =
        FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS | FAN_REPORT_TID;
    if flags & !known != 0 {
        return error!(EINVAL);
    }
    let acc = event_f_flags & 3;
    let allowed = 3 | O_NONBLOCK | O_CLOEXEC | 0o100000 /* O_LARGEFILE */ | 0o4010000 /* O_SYNC */
        | 0o10000 /* O_DSYNC */ | 0o1000000 /* O_NOATIME */ | 0o2000 /* O_APPEND */;
    if acc == 3 || event_f_flags & !allowed != 0 {
        return error!(EINVAL);
    }
    let g = Arc::new(Group {
        queue: Mutex::new(VecDeque::new()),
        waiters: Waiters::new(),
        event_flags: event_f_flags,
        report_tid: flags & FAN_REPORT_TID != 0,
        limited: flags & FAN_UNLIMITED_QUEUE == 0,
        init_flags: flags,
    });
    let f = anon_file(
        "[fanotify]",
        Arc::new(GroupFile(g)),
        O_RDWR
            | if flags & FAN_NONBLOCK != 0 {
                O_NONBLOCK
            } else {
                0
            },
    );
    ctx.files()
        .alloc(f, flags & FAN_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

fn sys_fanotify_mark(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    flags: u32,
    mask: u64,
    dirfd: Fd,
    path: UserAddr,
) -> KResult<u64> {
    let action = flags & (FAN_MARK_ADD | FAN_MARK_REMOVE | FAN_MARK_FLUSH);
    let known = FAN_MARK_ADD
        | FAN_MARK_REMOVE
        | FAN_MARK_FLUSH
        | FAN_MARK_DONT_FOLLOW
        | FAN_MARK_ONLYDIR
        | FAN_MARK_MOUNT
        | FAN_MARK_FILESYSTEM;
    if flags & !known != 0
        || !matches!(action, FAN_MARK_ADD | FAN_MARK_REMOVE | FAN_MARK_FLUSH)
        || flags & (FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM) == FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM
    {
        return error!(EINVAL);
    }
    // Events this class cannot report (permission events, directory
    // entry events without FID reporting) give EINVAL.
    if mask & !(EVENTS | FAN_ONDIR | FAN_EVENT_ON_CHILD) != 0
        || (action != FAN_MARK_FLUSH && mask & EVENTS == 0 && action == FAN_MARK_ADD)
    {
        return error!(EINVAL);
    }
    let f = ctx.files().get(fd.0)?;
    let Some(g) = f
        .ops()
        .ok()
        .and_then(|o| o.as_any_ops().downcast_ref::<GroupFile>())
        .map(|gf| gf.0.clone())
    else {
        return error!(EINVAL);
    };
    if action == FAN_MARK_FLUSH {
        let kind_mount = flags & FAN_MARK_MOUNT != 0;
        let kind_fs = flags & FAN_MARK_FILESYSTEM != 0;
        let gone: Vec<Mark> = marks()
            .extract_if(.., |m| {
                let mine = std::ptr::eq(m.group.as_ptr(), Arc::as_ptr(&g));
                let kind = match m.target {
                    Target::Mount(_) => kind_mount,
                    Target::Fs(_) => kind_fs,
                    Target::Inode(_) => !kind_mount && !kind_fs,
                };
                mine && kind
            })
            .collect();
        drop(gone);
        return Ok(0);
    }
    let p = if path.is_null() {
        if dirfd.0 == -100 {
            ctx.fs().cwd()
        } else {
            ctx.files().get(dirfd.0)?.path.clone()
        }
    } else {
        crate::fs::syscalls::resolve(ctx, dirfd, path, flags & FAN_MARK_DONT_FOLLOW == 0, false)?
    };
    if flags & FAN_MARK_ONLYDIR != 0 && p.inode().file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    let target = if flags & FAN_MARK_MOUNT != 0 {
        Target::Mount(p.mnt.id)
    } else if flags & FAN_MARK_FILESYSTEM != 0 {
        Target::Fs(p.inode().key().0)
    } else {
        Target::Inode(p.inode().key())
    };
    // Declared before the lock, so dropped (releasing inodes) after it.
    let mut stale: Vec<Mark> = Vec::new();
    let mut ms = marks();
    stale.extend(ms.extract_if(.., |m| m.group.strong_count() == 0));
    let pos = ms
        .iter()
        .position(|m| m.target == target && std::ptr::eq(m.group.as_ptr(), Arc::as_ptr(&g)));
    if action == FAN_MARK_ADD {
        match pos {
            Some(i) => ms[i].mask |= mask,
            None => {
                let mine = ms
                    .iter()
                    .filter(|m| std::ptr::eq(m.group.as_ptr(), Arc::as_ptr(&g)))
                    .count();
                if ms.len() >= MAX_MARKS * 8 || (g.limited && mine >= MAX_MARKS) {
                    return error!(ENOSPC);
                }
                ms.push(Mark {
                    group: Arc::downgrade(&g),
                    target,
                    mask,
                    inode: match target {
                        Target::Inode(_) => Some(p.inode().clone()),
                        _ => None,
                    },
                });
                ANY.store(true, Ordering::Release);
            }
        }
    } else {
        let i = pos.ok_or(crate::errno!(ENOENT))?;
        ms[i].mask &= !mask;
        if ms[i].mask & EVENTS == 0 {
            stale.push(ms.remove(i));
        }
    }
    Ok(0)
}
