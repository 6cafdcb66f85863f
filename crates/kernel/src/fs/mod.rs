//! The filesystem subsystem: a VFS with a kernel-side path walk, the
//! filesystems (hostfs, devfs, procfs, an empty sysfs, pipefs), descriptor
//! tables, the console, and the file system calls.
//!
//! Layout:
//! - [`vfs`]: inode and file-operation traits, dentries, mounts, paths.
//! - [`namei`]: the path walk.
//! - [`file`], [`fdtable`]: open file descriptions, descriptor tables,
//!   and [`FsContext`] (root, cwd, umask).
//! - [`hostfs`], [`devfs`], [`procfs`], [`pipe`], [`console`], [`simple`].
//! - [`tty`] (terminals and their line discipline), [`pty`] (/dev/ptmx,
//!   devpts), [`poll`] (poll/select and the wait queues files sleep on).
//! - [`syscalls`]: the handlers (`fs_table`).
//! - [`types`]: ABI structs and flag values.

pub mod advise;
pub mod aio;
pub mod anon;
pub mod console;
pub mod copy;
pub mod devfs;
pub mod dnotify;
pub mod epoll;
pub mod ext2;
pub mod fanotify;
pub mod fasync;
pub mod fdtable;
pub mod fhandle;
pub mod file;
pub mod fsize;
pub mod hostfd;
pub mod hostfs;
pub mod inotify;
pub mod io_uring;
pub mod lease;
pub mod locks;
pub mod memfd;
pub mod mntns;
pub mod mountapi;
pub mod namei;
pub mod openat2;
pub mod overlay;
pub mod perm;
pub mod pipe;
pub mod poll;
pub mod procconfig;
pub mod procfs;
pub mod procns;
pub mod procsmaps;
pub mod procsys;
pub mod proczombie;
pub mod pty;
pub mod simple;
pub mod syscalls;
pub mod sysfs;
pub mod tmpfs;
pub mod tty;
pub mod types;
pub mod vcons;
pub mod vfs;
pub mod xattr;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use fdtable::{FdTable, FsContext};
pub use file::{FileRef, OpenFile};

use crate::errno::KResult;
use crate::error;
use crate::fs::types::{oflags::*, FileType};
use crate::fs::vfs::{Caller, Mount, Namespace, Path};
use crate::task::Task;

/// What the root filesystem is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootMode {
    /// The host directory read-only under a private tmpfs upper layer
    /// (the default: a writable sandbox; the host never changes).
    #[default]
    Overlay,
    /// The host directory itself through hostfs (`rootfstype=hostfs`),
    /// read-only unless `read_only` is false.
    HostFs,
    /// A disk filesystem (ext2/3/4) on the block device named by
    /// `FsConfig::root` (`root=/dev/ubda`).
    Disk { read_only: bool },
}

/// How to build the root filesystem.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Host directory of the root (the overlay's lower layer, or the
    /// hostfs root). Guest `mount -t hostfs` directories resolve beneath
    /// it, as under UML's `hostfs=`.
    pub root: PathBuf,
    /// For [`RootMode::HostFs`]: mount it read-only (writes give EROFS).
    pub read_only: bool,
    pub mode: RootMode,
    /// `mount=HOSTDIR:GUESTDIR`: host directories mounted read-write
    /// (hostfs, confined beneath HOSTDIR) at boot.
    pub host_mounts: Vec<(PathBuf, Vec<u8>)>,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            root: PathBuf::from("/"),
            read_only: true,
            mode: RootMode::Overlay,
            host_mounts: Vec::new(),
        }
    }
}

/// The host directory guest hostfs mounts resolve beneath.
static HOSTFS_PREFIX: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The host directory a guest `mount -t hostfs -o DIR` resolves DIR
/// beneath (the root's host directory).
pub fn hostfs_prefix() -> PathBuf {
    HOSTFS_PREFIX
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Where init's console descriptors point: /dev/console of the last
/// booted namespace.
static CONSOLE_PATH: Mutex<Option<Path>> = Mutex::new(None);

/// Builds the mount table: the root hostfs, devfs on /dev, procfs on
/// /proc, an empty read-only /sys. Returns init's root/cwd context.
pub fn boot(cfg: &FsConfig) -> KResult<Arc<FsContext>> {
    *HOSTFS_PREFIX.lock().unwrap_or_else(|p| p.into_inner()) = Some(cfg.root.clone());
    let overlay = cfg.mode == RootMode::Overlay;
    let root_mnt = if let RootMode::Disk { read_only } = cfg.mode {
        use std::os::unix::ffi::OsStrExt;
        let dev = cfg.root.as_os_str().as_bytes();
        let name = dev.strip_prefix(b"/dev/").unwrap_or(dev);
        let disk = crate::block::by_name(name).ok_or(crate::errno!(ENODEV))?;
        let (fstype, inode) = ext2::mount_root(&disk, read_only)?;
        let m = Mount::new(fstype, inode, None, read_only, false);
        m.set_source(cfg.root.as_os_str().as_bytes());
        m
    } else if overlay {
        let lower = hostfs::HostFs::open_root_cached(&cfg.root)?;
        Mount::new("overlay", overlay::new_overlay(lower), None, false, false)
    } else {
        let lower = hostfs::HostFs::open_root(&cfg.root, cfg.read_only)?;
        Mount::new("hostfs", lower, None, cfg.read_only, false)
    };
    let ns = Namespace::new(root_mnt);
    let walker = namei::Walker {
        ns: &ns,
        root: ns.root(),
        caller: Caller::kernel(),
    };
    let root = ns.root();
    let mounts: [(&str, &'static str, Arc<dyn vfs::Inode>, bool); 3] = [
        ("dev", "devtmpfs", devfs::new_devfs(), false),
        ("proc", "proc", procfs::new_procfs(), false),
        ("sys", "sysfs", sysfs::new_sysfs(), true),
    ];
    for (dir, fstype, inode, ro) in mounts {
        match walker.walk(&root, dir.as_bytes(), false) {
            Ok(p) if p.inode().file_type() == FileType::Directory => {
                ns.mount(fstype, inode, &p, ro);
            }
            _ => crate::log::warn(&format!(
                "root filesystem has no /{dir} directory: {fstype} not mounted"
            )),
        }
    }
    if let Ok(p) = walker.walk(&root, b"/dev/pts", false) {
        if p.inode().file_type() == FileType::Directory {
            ns.mount("devpts", pty::new_devpts(), &p, false);
        }
    }
    // tmpfs on /dev/shm when the tree has it. (Not on /run: the guest
    // shares the host's /etc, whose symlinks point into the host's /run,
    // e.g. /etc/resolv.conf; the overlay makes /run writable anyway.)
    if overlay {
        if let Ok(p) = walker.walk(&root, b"/dev/shm", false) {
            if p.inode().file_type() == FileType::Directory {
                let opts = tmpfs::TmpfsOptions::defaults(&tmpfs::physmem());
                ns.mount("tmpfs", tmpfs::TmpFs::new_root(opts), &p, false);
            }
        }
    }
    for (host, guest) in &cfg.host_mounts {
        let inode = hostfs::HostFs::open_root(host, false)?;
        let p = match walker.walk(&root, guest, true) {
            Ok(p) => p,
            Err(crate::errno::Errno::ENOENT) => {
                mkdir_p(&walker, &root, guest).inspect_err(|e| {
                    crate::log::warn(&format!(
                        "cannot make the mount point {}: {e:?}",
                        String::from_utf8_lossy(guest)
                    ))
                })?
            }
            Err(e) => return Err(e),
        };
        if p.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        ns.mount("hostfs", inode, &p, false);
    }
    if let Ok(p) = walker.walk(&root, b"/dev/console", false) {
        *CONSOLE_PATH.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
    }
    Ok(FsContext::new(ns))
}

/// Makes the directory `path` and any missing parents (boot-time mount
/// points); returns it. Symlinks on the way are followed; one that leads
/// nowhere (dangling) is refused with ENOENT, as mount(2) refuses it,
/// rather than shadowed by a new directory of its name.
pub(crate) fn mkdir_p(w: &namei::Walker<'_>, root: &Path, path: &[u8]) -> KResult<Path> {
    let mut cur = root.clone();
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        cur = match w.walk(&cur, comp, true) {
            Ok(p) => p,
            Err(crate::errno::Errno::ENOENT) => {
                if w.walk(&cur, comp, false).is_ok() {
                    // The name is there: a symlink whose target is not.
                    return error!(ENOENT);
                }
                if cur.mnt.read_only() {
                    return error!(EROFS);
                }
                cur.inode().mkdir(comp, 0o755)?;
                crate::fs::namei::dcache::changed();
                w.walk(&cur, comp, true)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// init's descriptors 0, 1, 2 on /dev/console: 0 reads host fd 0, 1 writes
/// host fd 1, 2 writes host fd 2; each is a terminal for the guest exactly
/// when the host descriptor is one. The first call chooses the console's
/// mode: with host fd 0 a terminal, ruml puts it in raw mode (restored on
/// exit) and the guest's line discipline takes over (see [`console`]).
pub fn console_fdtable() -> KResult<Arc<FdTable>> {
    let path = match CONSOLE_PATH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        Some(p) => p,
        None => {
            // Not booted (or no /dev): a private devfs, named as usual.
            let mnt = Mount::new("devtmpfs", devfs::new_devfs(), None, false, true);
            let inode = mnt.root.inode.lookup(b"console", &Caller::kernel())?;
            Path {
                mnt: mnt.clone(),
                dentry: vfs::Dentry::child(&mnt.root, b"/dev/console", inode),
            }
        }
    };
    let table = FdTable::new();
    for fd in 0..3 {
        let file = OpenFile::new(path.clone(), Some(console::for_std_fd(fd)), O_RDWR);
        table.install_at(fd, file, false)?;
    }
    Ok(table)
}

/// A walker for `task`.
pub fn walker_for<'a>(fs: &'a FsContext, task: &'a Task) -> namei::Walker<'a> {
    namei::Walker {
        ns: &fs.ns,
        root: fs.root(),
        caller: Caller::of(task),
    }
}

/// Opens `path` (relative to the task's cwd, symlinks followed) for
/// execve: a regular file with an execute bit, opened read-only.
pub fn open_exec(task: &Task, path: &[u8]) -> KResult<FileRef> {
    let fs = task.fs();
    let w = walker_for(&fs, task);
    let p = w.walk(&fs.cwd(), path, true)?;
    exec_check(&p)?;
    perm::check(&w.caller, &p, perm::MAY_EXEC)?;
    let ops = p.inode().open(O_RDONLY, &w.caller)?;
    Ok(OpenFile::new(p, Some(ops), O_RDONLY))
}

/// Opens a program for execveat(2): `path` relative to `dirfd` (AT_FDCWD
/// = the cwd); an empty path with `empty_path` means the file `dirfd`
/// itself (fexecve).
pub fn open_exec_at(
    task: &Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
    empty_path: bool,
) -> KResult<FileRef> {
    let fs = task.fs();
    let w = walker_for(&fs, task);
    let p = if path.is_empty() {
        if !empty_path {
            return error!(ENOENT);
        }
        fd_get(task, dirfd)?.path.clone()
    } else {
        let start = if path.starts_with(b"/") || dirfd == -100 {
            fs.cwd()
        } else {
            let f = fd_get(task, dirfd)?;
            if f.path.inode().file_type() != FileType::Directory {
                return error!(ENOTDIR);
            }
            f.path.clone()
        };
        w.walk(&start, path, follow)?
    };
    // AT_SYMLINK_NOFOLLOW and a symlink: ELOOP (do_open_execat's O_NOFOLLOW).
    if !follow && p.inode().file_type() == FileType::Symlink {
        return error!(ELOOP);
    }
    exec_check(&p)?;
    perm::check(&w.caller, &p, perm::MAY_EXEC)?;
    let ops = p.inode().open(O_RDONLY, &w.caller)?;
    Ok(OpenFile::new(p, Some(ops), O_RDONLY))
}

/// execve's permission check: a regular file with some x bit, not on a
/// noexec mount.
pub fn exec_check(p: &Path) -> KResult<()> {
    if p.inode().file_type() != FileType::Regular || p.mnt.noexec() {
        return error!(EACCES);
    }
    if p.inode().stat()?.mode & 0o111 == 0 {
        return error!(EACCES);
    }
    Ok(())
}

/// The open file under `fd` of `task`; EBADF.
pub fn fd_get(task: &Task, fd: i32) -> KResult<FileRef> {
    task.files().get(fd)
}

/// Opens `path` from `start` as open(2) does, for `fs`'s caller.
/// `mode` is the creation mode before the umask.
pub fn open_at(
    w: &namei::Walker<'_>,
    fs: &FsContext,
    start: &Path,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> KResult<FileRef> {
    let acc = flags & O_ACCMODE;
    if flags & O_PATH != 0 {
        let keep = flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        let p = w.walk(start, path, keep & O_NOFOLLOW == 0)?;
        if keep & O_DIRECTORY != 0 && p.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        return Ok(OpenFile::new(p, None, O_PATH));
    }
    if flags & O_TMPFILE == O_TMPFILE {
        let p = w.walk(start, path, true)?;
        if p.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        if acc == O_RDONLY {
            return error!(EINVAL);
        }
        if p.mnt.read_only() {
            return error!(EROFS);
        }
        perm::may_change_dir(&w.caller, &p, None)?;
        // An unnamed file: made under a unique name and unlinked at once;
        // the open file keeps it alive (linkat of it is not supported).
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let tmp = format!(
            ".ruml-tmpfile.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
        .into_bytes();
        let perm = mode & 0o7777 & !fs.umask();
        let (inode, ops) = p.inode().create(&tmp, perm, flags & !O_TMPFILE | O_CREAT)?;
        crate::fs::namei::dcache::changed();
        p.inode().unlink(&tmp)?;
        crate::fs::namei::dcache::changed();
        perm::own_new(&w.caller, &p, &inode);
        let name = format!("#{} (deleted)", inode.key().1).into_bytes();
        let path = Path {
            mnt: p.mnt.clone(),
            dentry: vfs::Dentry::child(&p.dentry, &name, inode),
        };
        return Ok(OpenFile::new(
            path,
            Some(ops),
            (flags & !O_TMPFILE) | O_RDWR & acc.max(O_WRONLY),
        ));
    }
    let follow = flags & O_NOFOLLOW == 0;
    let p = if flags & O_CREAT != 0 {
        let (dir, name, trailing) = w.walk_parent(start, path)?;
        if trailing || name == b"." || name == b".." {
            return error!(EISDIR);
        }
        match w.lookup_one(&dir, &name) {
            Ok(p) => {
                if flags & O_EXCL != 0 {
                    return error!(EEXIST);
                }
                if p.inode().file_type() == FileType::Symlink {
                    if !follow {
                        return error!(ELOOP);
                    }
                    w.walk(&dir, &name, true)?
                } else {
                    p
                }
            }
            Err(crate::errno::Errno::ENOENT) => {
                if dir.mnt.read_only() {
                    return error!(EROFS);
                }
                crate::fs::perm::may_change_dir(&w.caller, &dir, None)?;
                let perm = mode & 0o7777 & !fs.umask();
                let (inode, ops) = dir.inode().create(&name, perm, flags)?;
                crate::fs::namei::dcache::changed();
                perm::own_new(&w.caller, &dir, &inode);
                crate::fs::inotify::notify_dir(
                    &dir,
                    crate::fs::inotify::IN_CREATE,
                    &name,
                    false,
                    0,
                );
                let p = Path {
                    mnt: dir.mnt.clone(),
                    dentry: vfs::Dentry::child(&dir.dentry, &name, inode),
                };
                return Ok(OpenFile::new(p, Some(ops), flags));
            }
            Err(e) => return Err(e),
        }
    } else {
        w.walk(start, path, follow)?
    };
    open_resolved(w, p, flags)
}

/// The rest of open(2) once the path is resolved: type and access checks,
/// then the filesystem's open.
pub fn open_resolved(w: &namei::Walker<'_>, p: Path, flags: u32) -> KResult<FileRef> {
    let acc = flags & O_ACCMODE;
    let t = p.inode().file_type();
    if t == FileType::Symlink {
        return error!(ELOOP);
    }
    if flags & O_DIRECTORY != 0 && t != FileType::Directory {
        return error!(ENOTDIR);
    }
    let wants_write = acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0;
    if t == FileType::Directory && (acc == O_WRONLY || acc == O_RDWR || flags & O_CREAT != 0) {
        return error!(EISDIR);
    }
    // Device nodes of a nodev mount cannot be opened (Linux's may_open).
    if matches!(t, FileType::CharDevice | FileType::BlockDevice) && p.mnt.nodev() {
        return error!(EACCES);
    }
    if wants_write && matches!(t, FileType::Regular | FileType::Directory) && p.mnt.read_only() {
        return error!(EROFS);
    }
    let want = (if acc == O_RDONLY || acc == O_RDWR {
        perm::MAY_READ
    } else {
        0
    }) | if wants_write { perm::MAY_WRITE } else { 0 };
    perm::check(&w.caller, &p, want)?;
    // O_NOATIME only for the owner or CAP_FOWNER (Linux's may_open).
    if flags & O_NOATIME != 0 {
        perm::must_own(&w.caller, &p)?;
    }
    lease::break_on_open(&p, flags)?;
    let ops = p.inode().open(flags, &w.caller)?;
    Ok(OpenFile::new(p, Some(ops), flags))
}
