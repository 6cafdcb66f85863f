//! The VFS core: inodes and their operations, dentries, mounts, paths.
//!
//! Lifetimes and locking:
//! - An [`Inode`] is a filesystem's object, shared by `Arc`. Filesystems
//!   keep whatever interior locking they need; the VFS holds no lock while
//!   calling into one.
//! - A [`Dentry`] names an inode inside its filesystem: a name and a strong
//!   reference to its parent dentry. Dentries are immutable and made fresh
//!   by each lookup (there is no dentry cache yet); a chain of them is the
//!   physical path of a directory, so `..` is the parent pointer, never a
//!   string operation.
//! - A [`Mount`] is an instance of a filesystem attached at a [`Path`]
//!   (mount + dentry) of its parent mount. A mount's filesystem and root
//!   never change; where it is attached changes only by pivot_root and
//!   MS_MOVE (an `RwLock`, held only to clone the path), and its
//!   propagation state (shared peer group, master) by mount(2)'s
//!   propagation flags (`fs/mntns.rs`). A [`Namespace`] (a mount
//!   namespace's table) holds its mounts in an `RwLock<Vec<_>>`, read on
//!   every mount-point crossing; each mount belongs to one namespace (a new
//!   namespace copies them all: `fs/mntns.rs`).
//! - A [`Path`] (mount, dentry) is what the walk produces, what cwd and root
//!   are, and what every open file remembers (for /proc/self/fd, getcwd).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::types::{DirSink, FileType, Stat, StatFs};
use crate::task::creds::Creds;
use crate::task::Task;

/// An inode's identity for mount points and the page cache:
/// (st_dev as encoded, st_ino).
pub type InodeKey = (u64, u64);

/// Who is asking: procfs answers differ per caller (`/proc/self`).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The caller's thread-group id (its pid).
    pub tgid: i32,
    /// The calling task, when there is one (not in unit tests or at boot).
    pub task: Option<&'a Task>,
}

impl<'a> Caller<'a> {
    /// Runs `f` on the calling task's credentials (locked for the call;
    /// `f` must not take that lock again); None for the kernel itself.
    pub fn with_creds<R>(&self, f: impl FnOnce(&Creds) -> R) -> Option<R> {
        self.task
            .map(|t| f(&t.group.creds.lock().unwrap_or_else(|p| p.into_inner())))
    }
    /// A copy of the caller's credentials (None for the kernel itself).
    pub fn creds(&self) -> Option<Creds> {
        self.with_creds(Creds::clone)
    }
    /// The caller's filesystem uid (0 without a task: boot and unit tests).
    pub fn fsuid(&self) -> u32 {
        self.with_creds(|c| c.fsuid).unwrap_or(0)
    }
    pub fn of(task: &'a Task) -> Caller<'a> {
        Caller {
            tgid: task.tgid(),
            task: Some(task),
        }
    }
    /// The kernel itself (boot, tests): pid 0, no task.
    pub fn kernel() -> Caller<'static> {
        Caller {
            tgid: 0,
            task: None,
        }
    }
}

/// What following a symlink gives.
pub enum Link {
    /// An ordinary symlink: text to walk, relative to the link's directory.
    Text(Vec<u8>),
    /// A "magic" link (/proc/self/fd/N, /proc/self/cwd): jumps straight to
    /// an object, whatever its name.
    Jump(Path),
}

/// Inode operations. Every default returns what Linux returns when a
/// filesystem lacks the operation, so each filesystem implements only what
/// it supports.
pub trait Inode: Send + Sync + 'static {
    /// The inode's type (cheap; fixed for the inode's life).
    fn file_type(&self) -> FileType;
    /// (encoded dev, ino).
    fn key(&self) -> InodeKey;
    /// Current attributes.
    fn stat(&self) -> KResult<Stat>;
    /// statfs of the filesystem holding this inode.
    fn statfs(&self) -> KResult<StatFs>;

    /// Looks up `name` (never empty, ".", ".." or containing '/') in this
    /// directory.
    fn lookup(&self, _name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        error!(ENOTDIR)
    }
    /// readlink(2): the link text (for magic links, the object's path).
    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        error!(EINVAL)
    }
    /// Whether `caller` may access this inode whatever its mode says
    /// (checked before the mode by fs/perm.rs: Linux's
    /// proc_fd_permission lets a process into its own /proc/PID/fd).
    fn grants(&self, _caller: &Caller<'_>) -> bool {
        false
    }
    /// What the path walk follows.
    fn get_link(&self, caller: &Caller<'_>) -> KResult<Link> {
        self.readlink(caller).map(Link::Text)
    }
    /// Opens the inode (`flags` are the open(2) flags). Called only after
    /// the VFS checked type, access mode and read-only mounts. `path` is
    /// where it was reached (for files that want to know their name).
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        error!(ENXIO)
    }

    /// Creates a regular file `name` in this directory and opens it.
    fn create(
        &self,
        _name: &[u8],
        _mode: u32,
        _flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        error!(EACCES)
    }
    /// mkdir `name`.
    fn mkdir(&self, _name: &[u8], _mode: u32) -> KResult<()> {
        error!(EPERM)
    }
    /// unlink `name` (a non-directory).
    fn unlink(&self, _name: &[u8]) -> KResult<()> {
        error!(EPERM)
    }
    /// rmdir `name`.
    fn rmdir(&self, _name: &[u8]) -> KResult<()> {
        error!(EPERM)
    }
    /// symlink `name` -> `target`.
    fn symlink(&self, _name: &[u8], _target: &[u8]) -> KResult<()> {
        error!(EPERM)
    }
    /// rename `name` in this directory to `new_name` in `new_dir` (same
    /// filesystem: the VFS checked the mounts).
    fn rename(
        &self,
        _name: &[u8],
        _new_dir: &dyn Inode,
        _new_name: &[u8],
        _flags: u32,
    ) -> KResult<()> {
        error!(EPERM)
    }
    /// link(2): a new name `name` in this directory for `target` (same
    /// mount: the VFS checked; another filesystem's inode gives EXDEV).
    fn link(&self, _name: &[u8], _target: &dyn Inode) -> KResult<()> {
        error!(EPERM)
    }
    /// mknod(2): a device node, FIFO or socket `name` (`mode` holds the
    /// type and permission bits; `rdev` is (major, minor)).
    fn mknod(&self, _name: &[u8], _mode: u32, _rdev: (u32, u32)) -> KResult<()> {
        error!(EPERM)
    }
    /// chmod, chown, utimensat, truncate: applies what `attr` sets (the
    /// ctime is updated as Linux does).
    fn setattr(&self, _attr: &SetAttr) -> KResult<()> {
        error!(EPERM)
    }
    /// mount -o remount (on a mount's root): the filesystem's own
    /// read-only state follows MS_RDONLY. Memory filesystems have none
    /// (the mount's flag is enough).
    fn remount(&self, _read_only: bool) -> KResult<()> {
        Ok(())
    }
    /// getxattr: the value of the extended attribute `name` (the full
    /// name, "user.foo"). The VFS (fs/xattr.rs) checked the name, the
    /// namespace and the caller's permissions. ENODATA when absent;
    /// EOPNOTSUPP when the filesystem stores no attributes of that
    /// namespace.
    fn getxattr(&self, _name: &[u8]) -> KResult<Vec<u8>> {
        error!(EOPNOTSUPP)
    }
    /// setxattr (`value` Some) or removexattr (None; ENODATA when absent).
    /// `flags` are XATTR_CREATE (EEXIST if present) and XATTR_REPLACE
    /// (ENODATA if absent). Checked by the VFS as for getxattr.
    fn setxattr(&self, _name: &[u8], _value: Option<&[u8]>, _flags: u32) -> KResult<()> {
        error!(EOPNOTSUPP)
    }
    /// listxattr: the full names of every attribute the inode holds (the
    /// VFS hides what the caller may not see). The default: none.
    fn listxattr(&self) -> KResult<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }
    /// name_to_handle_at: this inode's file handle (handle type, at most
    /// 128 bytes) within its filesystem. EOPNOTSUPP: not exportable.
    fn encode_fh(&self) -> KResult<(i32, Vec<u8>)> {
        error!(EOPNOTSUPP)
    }
    /// open_by_handle_at, called on an inode of the filesystem the handle
    /// is decoded against: the inode `fh` names; ESTALE when it is gone
    /// (or the handle is not one of this filesystem's).
    fn decode_fh(&self, _ty: i32, _fh: &[u8]) -> KResult<Arc<dyn Inode>> {
        error!(ESTALE)
    }
    /// For rename: downcasting support.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A time in a [`SetAttr`]: the current time or a given one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    Now,
    At(i64, u32),
}

impl SetTime {
    /// The time this means, with `now` the current time.
    pub fn resolve(self, now: (i64, u32)) -> (i64, u32) {
        match self {
            SetTime::Now => now,
            SetTime::At(s, n) => (s, n),
        }
    }
}

/// What [`Inode::setattr`] changes; None leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (07777).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// truncate(2) to this size (regular files).
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
    /// chown(2) of a non-directory: clear S_ISUID, and S_ISGID when the
    /// group may execute (Linux does this even for root).
    pub kill_suid: bool,
}

/// Operations of an open file description. Defaults are Linux's answers
/// for a file that does not support the operation.
pub trait FileOps: Send + Sync + 'static {
    /// Reads at `off` (ignored by streams). Ok(0) is end of file.
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EINVAL)
    }
    /// Writes at `off` (ignored by streams).
    fn write(&self, _f: &OpenFile, _off: u64, _buf: &[u8]) -> KResult<usize> {
        error!(EINVAL)
    }
    /// read on behalf of `task` (None: the kernel). Files that block
    /// (pipes, terminals) implement this and sleep on their
    /// [`Waiters`](crate::fs::poll::Waiters) as the task, so that a signal
    /// interrupts them (ERESTARTSYS); the default is [`FileOps::read`].
    fn read_as(
        &self,
        f: &OpenFile,
        off: u64,
        buf: &mut [u8],
        _task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.read(f, off, buf)
    }
    /// write on behalf of `task`; see [`FileOps::read_as`].
    fn write_as(
        &self,
        f: &OpenFile,
        off: u64,
        buf: &[u8],
        _task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.write(f, off, buf)
    }
    /// The object behind the file, for calls that only work on one kind
    /// (timerfd_settime, signalfd, pidfd_send_signal, epoll_ctl). The
    /// default is nothing any of them accepts.
    fn as_any_ops(&self) -> &dyn std::any::Any {
        &()
    }
    /// Linux's show_fdinfo: the lines /proc/PID/fdinfo/N shows after the
    /// common ones (pos, flags, mnt_id, ino), appended to `out` in the
    /// object's own format. `ns` is the PID namespace of the /proc
    /// instance read (pidfds print pids in it). The default, as most
    /// Linux files: nothing.
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<crate::task::ns::PidNs>, _out: &mut String) {}
    /// Readiness for poll/select (`POLL*` bits). The default is a file
    /// that never blocks.
    fn poll(&self, _f: &OpenFile) -> crate::fs::poll::PollEvents {
        crate::fs::poll::DEFAULT_POLLMASK
    }
    /// The queue woken whenever [`FileOps::poll`]'s answer may change
    /// (None: it never does).
    fn waiters(&self) -> Option<&crate::fs::poll::Waiters> {
        None
    }
    /// Whether the file has a position (regular files, directories,
    /// /dev/null); streams (pipes, terminals) give ESPIPE for lseek and
    /// pread.
    fn seekable(&self) -> bool {
        true
    }
    /// The size, for SEEK_END.
    fn size(&self) -> KResult<u64> {
        Ok(0)
    }
    /// lseek for files whose positions are not plain byte offsets
    /// (directories on hostfs); `None` lets the VFS do the usual arithmetic.
    fn llseek(&self, _pos: u64, _off: i64, _whence: u32) -> Option<KResult<u64>> {
        None
    }
    /// Attributes of the open file, if fresher than the inode's.
    fn stat(&self) -> Option<KResult<Stat>> {
        None
    }
    /// Appends directory entries from position `*pos`, advancing it.
    fn getdents(&self, _f: &OpenFile, _pos: &mut u64, _sink: &mut DirSink) -> KResult<()> {
        error!(ENOTDIR)
    }
    /// A device- or file-specific ioctl; the VFS handled the generic ones.
    fn ioctl(
        &self,
        _f: &OpenFile,
        _cmd: u32,
        _arg: u64,
        _ctx: &crate::syscalls::SyscallContext<'_>,
    ) -> KResult<u64> {
        error!(ENOTTY)
    }
    /// Bytes ready to read (FIONREAD), for files that know.
    fn bytes_available(&self) -> Option<KResult<usize>> {
        None
    }
    /// ftruncate.
    fn truncate(&self, _len: u64) -> KResult<()> {
        error!(EINVAL)
    }
    /// fsync / fdatasync.
    fn sync(&self, _data_only: bool) -> KResult<()> {
        error!(EINVAL)
    }
    /// (dev, ino) for the page cache; ENODEV if it cannot be mmapped.
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        error!(ENODEV)
    }
    /// Checks an mmap of `len` bytes (page-rounded) at byte offset `off`
    /// before it is made: files with fixed regions (io_uring) refuse
    /// other offsets and lengths past the region (EINVAL).
    fn mmap_check(&self, _off: u64, _len: u64) -> KResult<()> {
        Ok(())
    }
    /// fallocate(2) (`mode` is FALLOC_FL_*; the VFS checked `off`/`len`).
    fn fallocate(&self, _mode: u32, _off: u64, _len: u64) -> KResult<()> {
        error!(EOPNOTSUPP)
    }
    /// For memory-backed files (tmpfs): the physmem frame holding page
    /// `index` of the file, with one reference taken for the caller (drop
    /// it with `phys.put`). `None`: the file is not memory-backed (use the
    /// page cache). A hole gives a newly allocated zeroed frame (counted
    /// against the filesystem; ENOSPC when full) if `create`, else ENOENT;
    /// a page wholly past the end of the file gives ENXIO (SIGBUS for a
    /// fault). Writes through the frame are the file's data.
    fn page_frame(&self, _index: u64, _create: bool) -> Option<KResult<ruml_host::Pfn>> {
        None
    }
    /// For memory-backed files: the frames of the pages of `[first, last]`
    /// (page indices, inclusive) the file holds, no reference taken
    /// (cachestat counts them). `None` for others.
    fn frames_in(&self, _first: u64, _last: u64) -> Option<Vec<ruml_host::Pfn>> {
        None
    }
    /// Whether [`FileOps::read_frames`] and [`FileOps::write_frames`]
    /// work: files whose data lives in physmem (tmpfs) copy straight
    /// between their frames and the guest's.
    fn direct_io(&self) -> bool {
        false
    }
    /// As [`FileOps::read`], into guest frames.
    fn read_frames(
        &self,
        _f: &OpenFile,
        _off: u64,
        _dst: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        error!(EINVAL)
    }
    /// As [`FileOps::write`], from guest frames.
    fn write_frames(
        &self,
        _f: &OpenFile,
        _off: u64,
        _src: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        error!(EINVAL)
    }
}

/// Whether a file's data lives in physmem frames it hands out through
/// [`FileOps::page_frame`] (tmpfs, shm, io_uring rings). The probe's
/// frame reference is dropped again.
pub fn memory_backed(ops: &dyn FileOps) -> bool {
    match ops.page_frame(0, false) {
        None => false,
        Some(Ok(pfn)) => {
            crate::fs::tmpfs::physmem().put(pfn);
            true
        }
        Some(Err(_)) => true,
    }
}

/// A name for an inode within its filesystem; see the module doc.
pub struct Dentry {
    pub name: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub inode: Arc<dyn Inode>,
}

impl Dentry {
    pub fn root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            name: b"/".to_vec(),
            parent: None,
            inode,
        })
    }
    pub fn child(parent: &Arc<Dentry>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(parent.clone()),
            inode,
        })
    }
}

static NEXT_MOUNT_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_ANON_DEV: AtomicU32 = AtomicU32::new(0x100);

/// An anonymous device number (major 0) for a memory filesystem, as
/// Linux's get_anon_bdev gives.
pub fn anon_dev() -> (u32, u32) {
    (0, NEXT_ANON_DEV.fetch_add(1, Ordering::Relaxed))
}

/// A mounted filesystem instance; see the module doc.
pub struct Mount {
    pub id: u64,
    /// Filesystem type name ("hostfs", "devtmpfs", "proc", ...).
    pub fstype: &'static str,
    pub root: Arc<Dentry>,
    /// Where it is attached; None for the namespace root and for internal
    /// mounts (pipefs). Read with [`Mount::mountpoint`].
    mountpoint: RwLock<Option<Path>>,
    /// Mount propagation (shared:N, master:N, unbindable); see fs/mntns.rs.
    pub prop: std::sync::Mutex<crate::fs::mntns::Propagation>,
    /// MS_RDONLY; changed by a remount (read it with [`Mount::read_only`]).
    ro: AtomicBool,
    /// The per-mount flags besides MS_RDONLY: [`MNT_NOSUID`],
    /// [`MNT_NODEV`], [`MNT_NOEXEC`]; set by mount(2), a remount,
    /// fsmount and mount_setattr, copied by bind mounts and namespace
    /// copies (read with [`Mount::flags`]).
    flags: AtomicU32,
    /// Not attached anywhere: paths on it print as their dentry name
    /// ("pipe:[1234]").
    pub internal: bool,
    /// The mount's source as /proc/mounts shows it ("/dev/ubda"), for
    /// filesystems mounted from a device; set once after mounting.
    source: std::sync::OnceLock<Vec<u8>>,
}

impl Mount {
    pub fn new(
        fstype: &'static str,
        root: Arc<dyn Inode>,
        mountpoint: Option<Path>,
        read_only: bool,
        internal: bool,
    ) -> Arc<Mount> {
        Arc::new(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            fstype,
            root: Dentry::root(root),
            mountpoint: RwLock::new(mountpoint),
            prop: Default::default(),
            ro: AtomicBool::new(read_only),
            flags: AtomicU32::new(0),
            internal,
            source: std::sync::OnceLock::new(),
        })
    }

    /// A copy of this mount (same filesystem and root dentry, same flags
    /// and source) attached at `mountpoint`: a new namespace's copy, or a
    /// bind mount's propagated copy.
    pub fn duplicate(&self, mountpoint: Option<Path>) -> Arc<Mount> {
        let source = std::sync::OnceLock::new();
        if let Some(s) = self.source.get() {
            let _ = source.set(s.clone());
        }
        Arc::new(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            fstype: self.fstype,
            root: self.root.clone(),
            mountpoint: RwLock::new(mountpoint),
            prop: Default::default(),
            ro: AtomicBool::new(self.read_only()),
            flags: AtomicU32::new(self.flags()),
            internal: self.internal,
            source,
        })
    }

    /// A bind mount of this mount's `root` (a dentry below its root: bind
    /// mounts of a subdirectory keep their place in the tree, so `..` at
    /// the bind's root stops there as Linux's does), with this mount's
    /// flags and source, as Linux's clone_mnt.
    pub fn bind_of(&self, root: Arc<Dentry>, mountpoint: Option<Path>) -> Arc<Mount> {
        let source = std::sync::OnceLock::new();
        if let Some(s) = self.source.get() {
            let _ = source.set(s.clone());
        }
        Arc::new(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            fstype: self.fstype,
            root,
            mountpoint: RwLock::new(mountpoint),
            prop: Default::default(),
            ro: AtomicBool::new(self.read_only()),
            flags: AtomicU32::new(self.flags()),
            internal: false,
            source,
        })
    }

    /// Where the mount is attached (None: a namespace root or internal).
    pub fn mountpoint(&self) -> Option<Path> {
        self.mountpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// pivot_root and MS_MOVE: attaches the mount elsewhere.
    pub fn set_mountpoint(&self, at: Option<Path>) {
        *self.mountpoint.write().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Whether the mount is attached on mount `parent`.
    pub fn is_child_of(&self, parent: &Arc<Mount>) -> bool {
        self.mountpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|mp| Arc::ptr_eq(&mp.mnt, parent))
    }

    /// Records the device the filesystem was mounted from.
    pub fn set_source(&self, source: &[u8]) {
        let _ = self.source.set(source.to_vec());
    }

    /// The recorded source, if any.
    pub fn source(&self) -> Option<&[u8]> {
        self.source.get().map(|v| v.as_slice())
    }

    /// Whether the mount is read-only (writes give EROFS).
    pub fn read_only(&self) -> bool {
        self.ro.load(Ordering::Relaxed)
    }

    /// A remount's MS_RDONLY change.
    pub fn set_read_only(&self, ro: bool) {
        self.ro.store(ro, Ordering::Relaxed);
    }

    /// The per-mount flags ([`MNT_NOSUID`] | [`MNT_NODEV`] | [`MNT_NOEXEC`]).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the per-mount flags (a remount, mount_setattr).
    pub fn set_flags(&self, f: u32) {
        self.flags.store(f & MNT_FLAGS, Ordering::Relaxed);
    }

    /// Executing files of this mount is refused (MS_NOEXEC).
    pub fn noexec(&self) -> bool {
        self.flags() & MNT_NOEXEC != 0
    }

    /// Opening device nodes of this mount is refused (MS_NODEV).
    pub fn nodev(&self) -> bool {
        self.flags() & MNT_NODEV != 0
    }

    /// The options /proc/mounts and mountinfo show for this mount
    /// ("rw,nosuid,nodev,noexec"), without the atime option.
    pub fn options(&self) -> String {
        let mut s = String::from(if self.read_only() { "ro" } else { "rw" });
        for (bit, name) in [
            (MNT_NOSUID, ",nosuid"),
            (MNT_NODEV, ",nodev"),
            (MNT_NOEXEC, ",noexec"),
        ] {
            if self.flags() & bit != 0 {
                s.push_str(name);
            }
        }
        s
    }
}

/// Set-user-ID and file capabilities are ignored on exec (MS_NOSUID).
pub const MNT_NOSUID: u32 = 1;
/// Device nodes cannot be opened (MS_NODEV).
pub const MNT_NODEV: u32 = 2;
/// Files cannot be executed or mapped executable (MS_NOEXEC).
pub const MNT_NOEXEC: u32 = 4;
/// Every per-mount flag.
pub const MNT_FLAGS: u32 = MNT_NOSUID | MNT_NODEV | MNT_NOEXEC;

/// The per-mount flags that mount(2)'s `flags` ask for (MS_NOSUID 2,
/// MS_NODEV 4, MS_NOEXEC 8).
pub fn mnt_flags_of_ms(ms: u64) -> u32 {
    let mut f = 0;
    if ms & 2 != 0 {
        f |= MNT_NOSUID;
    }
    if ms & 4 != 0 {
        f |= MNT_NODEV;
    }
    if ms & 8 != 0 {
        f |= MNT_NOEXEC;
    }
    f
}

/// A location: a dentry within a mount.
#[derive(Clone)]
pub struct Path {
    pub mnt: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Path {
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.dentry.inode
    }
    pub fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mnt.root)
    }
    /// Same mount and same dentry object.
    pub fn same(&self, other: &Path) -> bool {
        Arc::ptr_eq(&self.mnt, &other.mnt) && Arc::ptr_eq(&self.dentry, &other.dentry)
    }
    /// Same mount and same inode (dentries differ between lookups).
    pub fn same_object(&self, other: &Path) -> bool {
        Arc::ptr_eq(&self.mnt, &other.mnt) && self.dentry.inode.key() == other.dentry.inode.key()
    }
    /// The root of this path's mount.
    pub fn mount_root(mnt: &Arc<Mount>) -> Path {
        Path {
            mnt: mnt.clone(),
            dentry: mnt.root.clone(),
        }
    }
}

/// A mount namespace: its mount table and root mount.
pub struct Namespace {
    mounts: RwLock<Vec<Arc<Mount>>>,
    /// Changed only by pivot_root.
    root: RwLock<Arc<Mount>>,
    /// Its inode number (/proc/PID/ns/mnt).
    pub inum: u64,
    /// The user namespace that owns it.
    pub user_ns: Arc<crate::task::ns::UserNs>,
}

impl Namespace {
    pub fn new(root: Arc<Mount>) -> Arc<Namespace> {
        Self::with_mounts(
            vec![root],
            crate::task::ns::INIT_MNT,
            crate::task::ns::root_user(),
        )
    }

    /// A namespace of `mounts` (the first is the root).
    pub fn with_mounts(
        mounts: Vec<Arc<Mount>>,
        inum: u64,
        user_ns: Arc<crate::task::ns::UserNs>,
    ) -> Arc<Namespace> {
        let root = mounts[0].clone();
        Arc::new(Namespace {
            mounts: RwLock::new(mounts),
            root: RwLock::new(root),
            inum,
            user_ns,
        })
    }

    fn root_mount(&self) -> Arc<Mount> {
        self.root.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The root mount.
    pub fn root(&self) -> Path {
        Path::mount_root(&self.root_mount())
    }

    /// pivot_root: `m` becomes the root mount.
    pub fn set_root(&self, m: Arc<Mount>) {
        *self.root.write().unwrap_or_else(|p| p.into_inner()) = m;
    }

    /// Mounts `root` (a filesystem's root inode) on `at`.
    pub fn mount(
        &self,
        fstype: &'static str,
        root: Arc<dyn Inode>,
        at: &Path,
        read_only: bool,
    ) -> Arc<Mount> {
        let m = Mount::new(fstype, root, Some(at.clone()), read_only, false);
        self.mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(m.clone());
        m
    }

    /// The mount attached on `p`, if any (the most recent one).
    pub fn mounted_on(&self, p: &Path) -> Option<Arc<Mount>> {
        let key = p.dentry.inode.key();
        let mounts = self.mounts.read().unwrap_or_else(|p| p.into_inner());
        mounts
            .iter()
            .rev()
            .find(|m| {
                m.mountpoint
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_some_and(|mp| Arc::ptr_eq(&mp.mnt, &p.mnt) && mp.dentry.inode.key() == key)
            })
            .cloned()
    }

    /// Follows mounts stacked on `p` down to the topmost one's root.
    pub fn traverse_mounts(&self, mut p: Path) -> Path {
        while let Some(m) = self.mounted_on(&p) {
            p = Path::mount_root(&m);
        }
        p
    }

    /// Attaches an existing mount object (a bind mount made with
    /// [`Mount::new`] and `at` as its mountpoint).
    pub fn attach(&self, m: Arc<Mount>) {
        self.mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(m);
    }

    /// umount: detaches `m`. EINVAL for the root; EBUSY if something is
    /// mounted on it or (unless `detach`) it is in use: open files, cwds
    /// and roots hold references to it beyond the table's, the mounts on
    /// it, and the caller's own (`held` references).
    pub fn umount(&self, m: &Arc<Mount>, detach: bool, held: usize) -> KResult<()> {
        if Arc::ptr_eq(m, &self.root_mount()) || m.mountpoint().is_none() {
            return error!(EINVAL);
        }
        let mut mounts = self.mounts.write().unwrap_or_else(|p| p.into_inner());
        let Some(idx) = mounts.iter().position(|x| Arc::ptr_eq(x, m)) else {
            return error!(EINVAL);
        };
        let children: Vec<usize> = mounts
            .iter()
            .enumerate()
            .filter(|(_, x)| x.is_child_of(m))
            .map(|(i, _)| i)
            .collect();
        if !detach {
            if !children.is_empty() {
                return error!(EBUSY);
            }
            // The table's reference plus the caller's.
            if Arc::strong_count(m) > 1 + held {
                return error!(EBUSY);
            }
            mounts.remove(idx);
            drop(mounts);
            crate::fs::mntns::forget(m);
            return Ok(());
        }
        // MNT_DETACH: the mount and everything below it leave the tree;
        // users keep what they hold.
        let mut gone: Vec<Arc<Mount>> = vec![m.clone()];
        let mut i = 0;
        while i < gone.len() {
            let cur = gone[i].clone();
            for x in mounts.iter() {
                if x.is_child_of(&cur) && !gone.iter().any(|g| Arc::ptr_eq(g, x)) {
                    gone.push(x.clone());
                }
            }
            i += 1;
        }
        mounts.retain(|x| !gone.iter().any(|g| Arc::ptr_eq(g, x)));
        drop(mounts);
        for g in &gone {
            crate::fs::mntns::forget(g);
        }
        Ok(())
    }

    /// Removes `m` from the table with no checks (pivot_root's and
    /// MS_MOVE's callers re-attach it).
    pub fn remove(&self, m: &Arc<Mount>) {
        self.mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|x| !Arc::ptr_eq(x, m));
    }

    /// Whether `m` is in this namespace's table.
    pub fn contains(&self, m: &Arc<Mount>) -> bool {
        self.mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|x| Arc::ptr_eq(x, m))
    }

    /// All mounts, in mount order (for /proc/mounts).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The path of `p` as seen from `root` (getcwd, /proc/self/fd). A path
/// not below `root` is printed from its namespace root; paths on internal
/// mounts print as their dentry name.
pub fn d_path(p: &Path, root: &Path) -> Vec<u8> {
    if p.mnt.internal {
        return p.dentry.name.clone();
    }
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut cur = p.clone();
    loop {
        if cur.same_object(root) {
            break;
        }
        if cur.is_mount_root() {
            match cur.mnt.mountpoint() {
                Some(mp) => {
                    cur = mp;
                    continue;
                }
                None => break,
            }
        }
        match &cur.dentry.parent {
            Some(parent) => {
                parts.push(cur.dentry.name.clone());
                cur = Path {
                    mnt: cur.mnt.clone(),
                    dentry: parent.clone(),
                };
            }
            None => break,
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for part in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}
