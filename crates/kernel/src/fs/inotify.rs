//! inotify: watches on inodes; events for changes made inside the
//! instance (create, delete, modify, attribute changes, moves, opens and
//! closes). Changes the host makes behind ruml's back are not seen.
//!
//! One registry of watches (inode → watchers) behind one mutex; an
//! atomic says whether any watch exists, so unwatched files pay nothing.
//! A second table ([`Lives`]) counts the open files of each inode (every
//! open and last release pays one lock of it): closes are reported at the
//! last release, deletion once the last link and last open file are gone.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::OpenFile;
use crate::fs::poll::{PollEvents, Waiters, READABLE};
use crate::fs::types::oflags::{O_CLOEXEC, O_NONBLOCK, O_RDONLY};
use crate::fs::types::FileType;
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::Task;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
const IN_Q_OVERFLOW: u32 = 0x4000;
const IN_IGNORED: u32 = 0x8000;
const IN_ONLYDIR: u32 = 0x0100_0000;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
const IN_EXCL_UNLINK: u32 = 0x0400_0000;
const IN_MASK_CREATE: u32 = 0x1000_0000;
const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
const IN_ONESHOT: u32 = 0x8000_0000;
const ALL_EVENTS: u32 = 0xfff;
/// Events a queue holds before IN_Q_OVERFLOW (fs.inotify.max_queued_events).
pub const MAX_QUEUED: usize = 16384;

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

/// An inotify instance (the open file).
pub struct Inotify {
    queue: Mutex<VecDeque<Event>>,
    waiters: Waiters,
    next_wd: AtomicU32,
}

/// A watch: on the inode it holds (pinned while the watch lives, as
/// Linux's mark pins its inode), for /proc/PID/fdinfo. Watches go with
/// rm_watch, IN_ONESHOT, the inode's deletion, or the instance's file
/// ([`InotifyFile`]'s drop).
struct Watch {
    inst: Weak<Inotify>,
    wd: i32,
    mask: u32,
    inode: Arc<dyn Inode>,
}

static ANY: AtomicBool = AtomicBool::new(false);

fn registry() -> &'static Mutex<HashMap<InodeKey, Vec<Watch>>> {
    static R: OnceLock<Mutex<HashMap<InodeKey, Vec<Watch>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Inotify {
    fn push(&self, e: Event) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= MAX_QUEUED {
                if q.back().is_none_or(|l| l.mask != IN_Q_OVERFLOW) {
                    q.push_back(Event {
                        wd: -1,
                        mask: IN_Q_OVERFLOW,
                        cookie: 0,
                        name: Vec::new(),
                    });
                }
            } else if q.back().is_some_and(|l| {
                l.wd == e.wd && l.mask == e.mask && l.cookie == e.cookie && l.name == e.name
            }) {
                // Identical to the last unread event: coalesced, as Linux.
            } else {
                q.push_back(e);
            }
        }
        self.waiters.wake_all();
    }
}

/// Reports `mask` on the inode `key` (its own watches) with `name` empty,
/// or on directory `key` for its child `name`.
fn emit(key: InodeKey, mask: u32, cookie: u32, name: &[u8]) {
    emit_to(key, mask, cookie, name, false)
}

/// [`emit`]; `unlinked`: the event is on an open file whose name was
/// removed from its directory, which watches with IN_EXCL_UNLINK (on the
/// directory or the file itself) do not hear.
fn emit_to(key: InodeKey, mask: u32, cookie: u32, name: &[u8], unlinked: bool) {
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    let Some(ws) = reg.get_mut(&key) else { return };
    let mut fired_oneshot = Vec::new();
    for w in ws.iter() {
        // IN_IGNORED reaches every watch; IN_DELETE_SELF only those that
        // asked for it, as Linux.
        if w.mask & mask & ALL_EVENTS == 0 && mask & IN_IGNORED == 0 {
            continue;
        }
        if unlinked && w.mask & IN_EXCL_UNLINK != 0 {
            continue;
        }
        if let Some(i) = w.inst.upgrade() {
            i.push(Event {
                wd: w.wd,
                mask,
                cookie,
                name: name.to_vec(),
            });
            if w.mask & IN_ONESHOT != 0 && mask & IN_IGNORED == 0 {
                // A one-shot watch goes after its event: IN_IGNORED.
                i.push(Event {
                    wd: w.wd,
                    mask: IN_IGNORED,
                    cookie: 0,
                    name: Vec::new(),
                });
                fired_oneshot.push(w.wd);
            }
        }
    }
    let gone: Vec<Watch> = ws
        .extract_if(.., |w| {
            w.inst.strong_count() == 0 || fired_oneshot.contains(&w.wd)
        })
        .collect();
    // Inodes are released with the registry unlocked.
    drop(reg);
    drop(gone);
}

/// Something happened to the object at `path` through an open file or a
/// path (open, access, modify, close: Linux's path events): its own
/// watchers and its parent's hear of it, except watches with
/// IN_EXCL_UNLINK once the name `path` was reached by is gone from its
/// directory.
pub fn notify(path: &Path, mask: u32) {
    notify_event(path, mask, true)
}

/// [`notify`] for a change of attributes or size (chmod, utimes,
/// truncate: Linux's dentry events, which IN_EXCL_UNLINK does not stop).
pub fn notify_attr(path: &Path, mask: u32) {
    notify_event(path, mask, false)
}

/// Whether a watch on `own` or `parent` asks for IN_EXCL_UNLINK.
fn excl_unlink_watched(own: InodeKey, parent: Option<InodeKey>) -> bool {
    let reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    [Some(own), parent].into_iter().flatten().any(|k| {
        reg.get(&k)
            .is_some_and(|ws| ws.iter().any(|w| w.mask & IN_EXCL_UNLINK != 0))
    })
}

/// Whether the name `path` was reached by no longer names its object in
/// its directory (Linux's d_unlinked: unlinked, or replaced since).
fn name_gone(path: &Path) -> bool {
    let Some(parent) = &path.dentry.parent else {
        return false;
    };
    match parent.inode.lookup(&path.dentry.name, &Caller::kernel()) {
        Ok(i) => i.key() != path.inode().key(),
        Err(_) => true,
    }
}

fn notify_event(path: &Path, mask: u32, path_event: bool) {
    crate::fs::fanotify::event(path, mask);
    if let Some(parent) = &path.dentry.parent {
        crate::fs::dnotify::child_event(parent.inode.key(), mask);
    }
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    let dir_bit = if path.inode().file_type() == FileType::Directory {
        IN_ISDIR
    } else {
        0
    };
    let own = path.inode().key();
    let mut parent_key = path.dentry.parent.as_ref().map(|p| p.inode.key());
    let mut name = path.dentry.name.clone();
    // A name renamed while the file was open: Linux's dentry moved with
    // it, so the events go to where it is now, by its new name, and it
    // is not unlinked (IN_EXCL_UNLINK does not stop them).
    // It keeps its last name when unlinked since.
    let moved = parent_key.and_then(|pk| moved_to(own, pk, &name));
    let unlinked = match moved {
        Some((dir, new_name, linked)) => {
            parent_key = Some(dir);
            name = new_name;
            path_event && !linked && excl_unlink_watched(own, parent_key)
        }
        // The lookup only when some watch here cares.
        None => path_event && excl_unlink_watched(own, parent_key) && name_gone(path),
    };
    // The parent's watches first, as Linux's fsnotify_handle_event (it
    // matters when one instance watches both).
    if let Some(pk) = parent_key {
        emit_to(pk, mask | dir_bit, 0, &name, unlinked);
    }
    emit_to(own, mask | dir_bit, 0, b"", unlinked);
}

/// What the kernel knows of regular files' and directories' lives beyond
/// their names: how many open files (descriptors, mappings, anything
/// holding an [`OpenFile`]) each inode has, which inodes lost their last
/// link while open (IN_DELETE_SELF waits for the last release, as Linux
/// sends it when the last dentry reference goes), and where names of open
/// files went by rename.
struct Lives {
    open: HashMap<InodeKey, usize>,
    /// Unlinked while open.
    doomed: std::collections::HashSet<InodeKey>,
    /// (inode, old directory, old name) -> (its directory now, its name).
    moved: HashMap<MovedFrom, (Arc<dyn Inode>, Vec<u8>)>,
}

/// A name an open file was reached by: (its inode, the directory, the
/// name).
type MovedFrom = (InodeKey, InodeKey, Vec<u8>);

/// At most this many remembered renames (kernel memory a guest renaming
/// open files in a loop controls); past it, events of files renamed
/// while open keep their old names.
const MAX_MOVED: usize = 4096;

fn lives() -> std::sync::MutexGuard<'static, Lives> {
    static L: OnceLock<Mutex<Lives>> = OnceLock::new();
    L.get_or_init(|| {
        Mutex::new(Lives {
            open: HashMap::new(),
            doomed: std::collections::HashSet::new(),
            moved: HashMap::new(),
        })
    })
    .lock()
    .unwrap_or_else(|p| p.into_inner())
}

/// An open file of inode `key` was made ([`OpenFile::new`]).
pub fn file_opened(key: InodeKey) {
    *lives().open.entry(key).or_insert(0) += 1;
}

/// An open file of inode `key` is gone (its last reference dropped): the
/// last one of an inode without links sends IN_DELETE_SELF.
pub fn file_released(key: InodeKey) {
    let doomed = {
        let mut l = lives();
        let Some(n) = l.open.get_mut(&key) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        l.open.remove(&key);
        let moved: Vec<_> = l.moved.extract_if(|k, _| k.0 == key).collect();
        let doomed = l.doomed.remove(&key);
        // Inodes are released with the table unlocked.
        drop(l);
        drop(moved);
        doomed
    };
    if doomed {
        notify_deleted(key);
    }
}

/// The inode `key` lost its last link (unlink, rmdir, a rename over
/// it): IN_DELETE_SELF and IN_IGNORED now, or when its last open file
/// goes.
pub fn unlinked(key: InodeKey) {
    {
        let mut l = lives();
        if l.open.contains_key(&key) {
            l.doomed.insert(key);
            return;
        }
    }
    notify_deleted(key);
}

/// The entry `old_name` of `old_dir` naming inode `key` is now `new_name`
/// in `new_dir`: remembered while the inode is open, for the events of
/// files opened by the old name.
pub fn renamed(
    key: InodeKey,
    old_dir: InodeKey,
    old_name: &[u8],
    new_dir: &Arc<dyn Inode>,
    new_name: &[u8],
) {
    let mut l = lives();
    if !l.open.contains_key(&key) {
        return;
    }
    let to = (new_dir.clone(), new_name.to_vec());
    // Names that led to the old one lead to the new one.
    for (k, v) in l.moved.iter_mut() {
        if k.0 == key && v.1 == old_name && v.0.key() == old_dir {
            *v = to.clone();
        }
    }
    let k = (key, old_dir, old_name.to_vec());
    let gone = if l.moved.contains_key(&k) || l.moved.len() < MAX_MOVED {
        l.moved.insert(k, to)
    } else {
        None
    };
    // Inodes are released with the table unlocked.
    drop(l);
    drop(gone);
}

/// Where the name `name` of directory `dir`, naming inode `key` when it
/// was opened, went by rename, if it did: the directory, the name, and
/// whether that name still names the inode.
fn moved_to(key: InodeKey, dir: InodeKey, name: &[u8]) -> Option<(InodeKey, Vec<u8>, bool)> {
    let (to_dir, to_name) = {
        let l = lives();
        if l.moved.is_empty() {
            return None;
        }
        let (d, n) = l.moved.get(&(key, dir, name.to_vec()))?;
        (d.clone(), n.clone())
    };
    let linked = matches!(to_dir.lookup(&to_name, &Caller::kernel()), Ok(i) if i.key() == key);
    Some((to_dir.key(), to_name, linked))
}

/// A directory gained or lost the entry `name` (create, delete, moves).
pub fn notify_dir(dir: &Path, mask: u32, name: &[u8], is_dir: bool, cookie: u32) {
    crate::fs::dnotify::child_event(dir.inode().key(), mask);
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    emit(
        dir.inode().key(),
        mask | if is_dir { IN_ISDIR } else { 0 },
        cookie,
        name,
    );
}

/// Reports `mask` to the watches of inode `key` alone, not its parent's
/// (Linux's fsnotify_inode: IN_ATTRIB for a link count change,
/// IN_MOVE_SELF).
pub fn notify_inode(key: InodeKey, mask: u32, is_dir: bool) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    emit(key, mask | if is_dir { IN_ISDIR } else { 0 }, 0, b"");
}

/// The object `key` is gone: IN_DELETE_SELF (without IN_ISDIR, for a
/// directory too, as Linux reports it), then its watches go with
/// IN_IGNORED.
fn notify_deleted(key: InodeKey) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    emit(key, IN_DELETE_SELF, 0, b"");
    let gone = registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key)
        .unwrap_or_default();
    for w in gone {
        if let Some(i) = w.inst.upgrade() {
            i.push(Event {
                wd: w.wd,
                mask: IN_IGNORED,
                cookie: 0,
                name: Vec::new(),
            });
        }
    }
}

/// Readiness of a notification queue (inotify's and fanotify's): readable
/// while it holds an event.
pub(crate) fn queue_poll<T>(queue: &Mutex<VecDeque<T>>) -> PollEvents {
    if queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        0
    } else {
        READABLE
    }
}

/// Waits until a notification queue holds an event: EAGAIN at once for a
/// nonblocking file; interruptible by signals (`task`'s).
pub(crate) fn wait_for_event<T>(
    queue: &Mutex<VecDeque<T>>,
    waiters: &Waiters,
    f: &OpenFile,
    task: Option<&Arc<Task>>,
) -> KResult<()> {
    let ready = || !queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
    if !ready() {
        if f.nonblocking() {
            return error!(EAGAIN);
        }
        waiters.wait(task, None, ready)?;
    }
    Ok(())
}

/// A fresh cookie pairing IN_MOVED_FROM with IN_MOVED_TO.
pub fn next_cookie() -> u32 {
    static C: AtomicU32 = AtomicU32::new(1);
    C.fetch_add(1, Ordering::Relaxed)
}

impl FileOps for Inotify {
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
        wait_for_event(&self.queue, &self.waiters, f, task)?;
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while let Some(e) = q.front() {
            // The name is NUL-padded to a multiple of 16 bytes.
            let len = if e.name.is_empty() {
                0
            } else {
                (e.name.len() + 1).div_ceil(16) * 16
            };
            if out.len() + 16 + len > buf.len() {
                if out.is_empty() {
                    return error!(EINVAL);
                }
                break;
            }
            out.extend_from_slice(&e.wd.to_le_bytes());
            out.extend_from_slice(&e.mask.to_le_bytes());
            out.extend_from_slice(&e.cookie.to_le_bytes());
            out.extend_from_slice(&(len as u32).to_le_bytes());
            let mut name = e.name.clone();
            name.resize(len, 0);
            out.extend_from_slice(&name);
            q.pop_front();
        }
        buf[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        queue_poll(&self.queue)
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        Some(Ok(q
            .iter()
            .map(|e| {
                16 + if e.name.is_empty() {
                    0
                } else {
                    (e.name.len() + 1).div_ceil(16) * 16
                }
            })
            .sum()))
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
}

syscall_table! { pub fn inotify_table;
    INOTIFY_INIT => sys_inotify_init(),
    INOTIFY_INIT1 => sys_inotify_init1(flags: u32),
    INOTIFY_ADD_WATCH => sys_inotify_add_watch(fd: Fd, path: UserAddr, mask: u32),
    INOTIFY_RM_WATCH => sys_inotify_rm_watch(fd: Fd, wd: i32),
}

fn sys_inotify_init(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    sys_inotify_init1(ctx, 0)
}

fn sys_inotify_init1(ctx: &mut SyscallContext<'_>, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return error!(EINVAL);
    }
    let inst = Arc::new(Inotify {
        queue: Mutex::new(VecDeque::new()),
        waiters: Waiters::new(),
        next_wd: AtomicU32::new(1),
    });
    let f = anon_file(
        "inotify",
        Arc::new(InotifyFile(inst)),
        O_RDONLY | (flags & O_NONBLOCK),
    );
    ctx.files()
        .alloc(f, flags & O_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

/// The open file face (the registry holds only weak references).
struct InotifyFile(Arc<Inotify>);

impl FileOps for InotifyFile {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.0.read(f, off, buf)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.0.read_as(f, off, buf, task)
    }
    fn poll(&self, f: &OpenFile) -> PollEvents {
        self.0.poll(f)
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.0.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        self.0.bytes_available()
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        &self.0
    }
    /// One line per watch, the newest first (Linux lists a group's marks
    /// so): wd, the inode's number and kernel-internal device, the mask
    /// with IN_EXCL_UNLINK and IN_ONESHOT, and the inode's file handle
    /// (as name_to_handle_at with AT_HANDLE_FID gives it).
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<crate::task::ns::PidNs>, out: &mut String) {
        let mut mine: Vec<(i32, u32, Arc<dyn Inode>)> = {
            let reg = registry().lock().unwrap_or_else(|p| p.into_inner());
            reg.values()
                .flatten()
                .filter(|w| std::ptr::eq(w.inst.as_ptr(), Arc::as_ptr(&self.0)))
                .map(|w| (w.wd, w.mask, w.inode.clone()))
                .collect()
        };
        mine.sort_by_key(|w| std::cmp::Reverse(w.0));
        for (wd, mask, inode) in mine {
            let (ino, sdev) = ino_sdev(&*inode);
            out.push_str(&format!(
                "inotify wd:{wd:x} ino:{ino:x} sdev:{sdev:x} mask:{mask:x} ignored_mask:0 {}\n",
                fhandle_text(&*inode)
            ));
        }
    }
}

impl Drop for InotifyFile {
    /// The instance's watches go with its file (releasing their inodes).
    fn drop(&mut self) {
        let me = Arc::as_ptr(&self.0);
        let mut gone: Vec<Watch> = Vec::new();
        let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
        for ws in reg.values_mut() {
            gone.extend(ws.extract_if(.., |w| {
                std::ptr::eq(w.inst.as_ptr(), me) || w.inst.strong_count() == 0
            }));
        }
        reg.retain(|_, ws| !ws.is_empty());
        // Inodes are released with the registry unlocked.
        drop(reg);
        drop(gone);
    }
}

/// An inode's number and its filesystem's device as Linux's kernel-internal
/// dev_t (major << 20 | minor), as fdinfo lines print `ino:` and `sdev:`.
pub(crate) fn ino_sdev(inode: &dyn Inode) -> (u64, u32) {
    match inode.stat() {
        Ok(st) => (st.ino, (st.dev.0 << 20) | (st.dev.1 & 0xfffff)),
        Err(_) => {
            let (dev, ino) = inode.key();
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
            let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
            (ino, ((major as u32) << 20) | (minor as u32 & 0xfffff))
        }
    }
}

/// `fhandle-bytes:%x fhandle-type:%x f_handle:HEX`: the handle
/// name_to_handle_at gives with AT_HANDLE_FID, nothing if there is none,
/// as Linux's show_mark_fhandle.
pub(crate) fn fhandle_text(inode: &dyn Inode) -> String {
    match crate::fs::fhandle::encode_fid(inode) {
        Ok((ty, fh)) if fh.len() <= crate::fs::fhandle::MAX_HANDLE_SZ && ty >= 0 => {
            let hex: String = fh.iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "fhandle-bytes:{:x} fhandle-type:{ty:x} f_handle:{hex}",
                fh.len()
            )
        }
        _ => String::new(),
    }
}

fn instance(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<Arc<Inotify>> {
    let f = ctx.files().get(fd.0)?;
    let ops = f.ops().map_err(|_| crate::errno!(EINVAL))?.clone();
    ops.as_any_ops()
        .downcast_ref::<Arc<Inotify>>()
        .cloned()
        .ok_or(crate::errno!(EINVAL))
}

fn sys_inotify_add_watch(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    path: UserAddr,
    mask: u32,
) -> KResult<u64> {
    let inst = instance(ctx, fd)?;
    if mask & ALL_EVENTS == 0 || mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return error!(EINVAL);
    }
    let p = crate::fs::syscalls::resolve(ctx, Fd(-100), path, mask & IN_DONT_FOLLOW == 0, false)?;
    if mask & IN_ONLYDIR != 0 && p.inode().file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    let key = p.inode().key();
    let keep = mask & (ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
    ANY.store(true, Ordering::Relaxed);
    // Declared before the lock, so dropped (releasing inodes) after it.
    let mut stale: Vec<Watch> = Vec::new();
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    let ws = reg.entry(key).or_default();
    stale.extend(ws.extract_if(.., |w| w.inst.strong_count() == 0));
    if let Some(w) = ws
        .iter_mut()
        .find(|w| w.inst.upgrade().is_some_and(|i| Arc::ptr_eq(&i, &inst)))
    {
        if mask & IN_MASK_CREATE != 0 {
            return error!(EEXIST);
        }
        w.mask = if mask & IN_MASK_ADD != 0 {
            w.mask | keep
        } else {
            keep
        };
        return Ok(w.wd as u64);
    }
    let wd = inst.next_wd.fetch_add(1, Ordering::Relaxed) as i32;
    ws.push(Watch {
        inst: Arc::downgrade(&inst),
        wd,
        mask: keep,
        inode: p.inode().clone(),
    });
    Ok(wd as u64)
}

fn sys_inotify_rm_watch(ctx: &mut SyscallContext<'_>, fd: Fd, wd: i32) -> KResult<u64> {
    let inst = instance(ctx, fd)?;
    let mut gone: Vec<Watch> = Vec::new();
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    for ws in reg.values_mut() {
        gone.extend(ws.extract_if(.., |w| {
            w.wd == wd && std::ptr::eq(w.inst.as_ptr(), Arc::as_ptr(&inst))
        }));
    }
    drop(reg);
    let found = !gone.is_empty();
    drop(gone);
    if !found {
        return error!(EINVAL);
    }
    inst.push(Event {
        wd,
        mask: IN_IGNORED,
        cookie: 0,
        name: Vec::new(),
    });
    Ok(0)
}
