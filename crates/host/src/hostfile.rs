//! Host file access for hostfs, confined beneath a root directory.
//!
//! This module and [`crate::console`] are the only places in ruml that
//! touch host files on the guest's behalf. The contract with the kernel's
//! hostfs:
//!
//! - Every path handed in here is *relative to a [`HostRoot`]* and contains
//!   no symbolic links the kernel knows of: the kernel walks paths itself,
//!   component by component, reading symlinks with [`HostRoot::readlink`]
//!   and resolving them against the *guest's* root.
//! - Every host lookup goes through `openat2(root_fd, rel, ...,
//!   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, so a
//!   `..`, an absolute path, or a component that a racing host process
//!   swapped for a symlink fails (EXDEV / ELOOP) instead of escaping the
//!   root. Where the host lacks openat2 (ENOSYS), the fallback walks with
//!   `openat(dirfd, component, O_PATH | O_NOFOLLOW)` one component at a
//!   time, refusing `..` — the same guarantee.
//! - Device nodes, FIFOs and sockets are never opened for I/O: only regular
//!   files and directories ([`HostRoot::open`] checks the type and identity
//!   of what it opened, and opens with O_NONBLOCK | O_NOCTTY so that even a
//!   racing swap cannot block or acquire a terminal).
//! - Directories on host pseudo filesystems (procfs, sysfs, ...) are
//!   reported as such ([`HostStat::pseudo`]); the kernel shows them empty.
//!
//! Errors are the host's errno (`Err(i32)`); the kernel converts them.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::sys::errno;

/// `stat` as the host reports it, from statx.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStat {
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
    /// File type and permission bits (S_IFMT | 07777).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    /// Birth time, when the host filesystem knows it.
    pub btime: Option<(i64, u32)>,
    /// statx's stx_attributes and stx_attributes_mask.
    pub attributes: u64,
    pub attributes_mask: u64,
    /// For a directory: it lies on a host pseudo filesystem (procfs, sysfs,
    /// ...) that must never be shown to the guest. False for other types.
    pub pseudo: bool,
}

impl HostStat {
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
}

/// `statfs` as the host reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostStatFs {
    pub f_type: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: [i32; 2],
    pub namelen: i64,
    pub frsize: i64,
    pub flags: i64,
}

/// Host filesystems that must never be shown through hostfs: their
/// contents describe the host (and ruml itself), not files.
pub fn is_pseudo_fs(f_type: i64) -> bool {
    const PSEUDO: &[i64] = &[
        0x9fa0,                // PROC_SUPER_MAGIC
        0x6265_6572,           // SYSFS_MAGIC
        0x1cd1,                // DEVPTS_SUPER_MAGIC
        0x0027_e0eb,           // CGROUP_SUPER_MAGIC
        0x6367_7270,           // CGROUP2_SUPER_MAGIC
        0x6462_6720,           // DEBUGFS_MAGIC
        0x7472_6163,           // TRACEFS_MAGIC
        0x7363_6673,           // SECURITYFS_MAGIC
        0xcafe_4a11,           // BPF_FS_MAGIC
        0x6165_676c,           // PSTOREFS_MAGIC
        0xde5e_81e4u32 as i64, // EFIVARFS_MAGIC
        0x6265_6570,           // CONFIGFS_MAGIC
        0x6573_5543,           // FUSECTL_SUPER_MAGIC
        0x4249_4e4d,           // BINFMTFS_MAGIC
        0xf97c_ff8cu32 as i64, // SELINUX_MAGIC
        0x4341_5d53,           // SMACK_MAGIC
        0x6e73_6673,           // NSFS_MAGIC
        0x1980_0202,           // MQUEUE_MAGIC
        0x0765_5821,           // RDTGROUP_SUPER_MAGIC
        0x6c6f_6f70,           // BINDERFS_SUPER_MAGIC
        0x6759_6969,           // RPCAUTH_GSSMAGIC (rpc_pipefs)
        0x6e66_7364,           // NFSD_MAGIC
        0x9fa2,                // USBDEVICE_SUPER_MAGIC
        0x0187,                // AUTOFS_SUPER_MAGIC
    ];
    // f_type is a signed long; magic numbers above 2^31 may come back
    // sign-extended or not.
    let t = f_type & 0xffff_ffff;
    PSEUDO.contains(&t)
}

const SYS_OPENAT2: libc::c_long = 437;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
static RLIMIT_ONCE: Once = Once::new();

/// Raises ruml's RLIMIT_NOFILE soft limit to the hard limit (once): every
/// open guest file on hostfs holds a host descriptor.
pub fn raise_fd_limit() {
    RLIMIT_ONCE.call_once(|| {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0
            && rl.rlim_cur < rl.rlim_max
        {
            rl.rlim_cur = rl.rlim_max;
            // SAFETY: rl is a valid rlimit.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
        }
    });
}

fn cstr(b: &[u8]) -> Result<CString, i32> {
    CString::new(b).map_err(|_| libc::EINVAL)
}

fn owned(fd: libc::c_long) -> Result<OwnedFd, i32> {
    if fd < 0 {
        Err(errno())
    } else {
        // SAFETY: fd is a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

fn statx_fd(fd: i32) -> Result<HostStat, i32> {
    // SAFETY: statx is plain data.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = b"\0";
    let r = crate::sys::retry(|| {
        // SAFETY: empty is NUL-terminated, sx is writable.
        unsafe {
            libc::statx(
                fd,
                empty.as_ptr().cast(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
                libc::STATX_BASIC_STATS | libc::STATX_BTIME,
                &mut sx,
            ) as libc::c_long
        }
    });
    if r < 0 {
        return Err(errno());
    }
    let ts = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
    Ok(HostStat {
        dev_major: sx.stx_dev_major,
        dev_minor: sx.stx_dev_minor,
        ino: sx.stx_ino,
        mode: sx.stx_mode as u32,
        nlink: sx.stx_nlink,
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        rdev_major: sx.stx_rdev_major,
        rdev_minor: sx.stx_rdev_minor,
        size: sx.stx_size,
        blksize: sx.stx_blksize,
        blocks: sx.stx_blocks,
        atime: ts(sx.stx_atime),
        mtime: ts(sx.stx_mtime),
        ctime: ts(sx.stx_ctime),
        btime: if sx.stx_mask & libc::STATX_BTIME != 0 {
            Some(ts(sx.stx_btime))
        } else {
            None
        },
        attributes: sx.stx_attributes,
        attributes_mask: sx.stx_attributes_mask,
        pseudo: false,
    })
}

fn fstatfs_fd(fd: i32) -> Result<HostStatFs, i32> {
    // SAFETY: statfs is plain data.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: s is writable.
    let r = crate::sys::retry(|| unsafe { libc::fstatfs(fd, &mut s) as libc::c_long });
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: fsid_t is two ints.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(s.f_fsid) };
    Ok(HostStatFs {
        f_type: s.f_type,
        bsize: s.f_bsize,
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
        files: s.f_files,
        ffree: s.f_ffree,
        fsid,
        namelen: s.f_namelen,
        frsize: s.f_frsize,
        flags: 0, // libc's statfs lacks f_flags; mount flags come from the mount table
    })
}

/// The root directory of one hostfs mount. Holds one O_PATH descriptor;
/// everything else is opened beneath it on demand and closed again, so
/// ruml keeps no descriptor per inode.
#[derive(Debug)]
pub struct HostRoot {
    fd: OwnedFd,
}

/// How [`HostRoot::open`] should open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    Read,
    Write,
    ReadWrite,
}

impl HostRoot {
    /// Opens `path` (a host directory) as a hostfs root.
    pub fn new(path: &Path) -> Result<HostRoot, i32> {
        raise_fd_limit();
        use std::os::unix::ffi::OsStrExt;
        let c = cstr(path.as_os_str().as_bytes())?;
        // SAFETY: c is NUL-terminated.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let fd = owned(fd as libc::c_long)?;
        Ok(HostRoot { fd })
    }

    /// Opens `rel` beneath the root with `flags` (O_NOFOLLOW is always
    /// added: the final component is never followed either).
    fn open_beneath(&self, rel: &[u8], flags: i32) -> Result<OwnedFd, i32> {
        if rel.contains(&0) {
            return Err(libc::EINVAL);
        }
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let c = cstr(rel)?;
            let how = OpenHow {
                flags: flags as u32 as u64,
                mode: 0,
                resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
            };
            let r = crate::sys::retry(|| {
                // SAFETY: c and how are valid for the call.
                unsafe {
                    libc::syscall(
                        SYS_OPENAT2,
                        self.fd.as_raw_fd(),
                        c.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                }
            });
            match owned(r) {
                Err(libc::ENOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // openat2 reports RESOLVE_NO_SYMLINKS refusals as ELOOP and
                // RESOLVE_BENEATH ones as EXDEV; the guest sees ELOOP/ENOENT
                // semantics from the kernel walk long before this, so an
                // error here means a host-side race or a confinement attempt.
                other => return other,
            }
        }
        self.open_walk(rel, flags)
    }

    /// The openat2 fallback: one component at a time, never following a
    /// symlink, refusing `..`.
    fn open_walk(&self, rel: &[u8], flags: i32) -> Result<OwnedFd, i32> {
        let comps: Vec<&[u8]> = rel
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        if comps.iter().any(|c| *c == b"..") {
            return Err(libc::EXDEV);
        }
        let Some((last, dirs)) = comps.split_last() else {
            // The root itself.
            let c = cstr(b".")?;
            // SAFETY: c is NUL-terminated.
            let r = unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags) };
            return owned(r as libc::c_long);
        };
        let mut cur: Option<OwnedFd> = None;
        for d in dirs {
            let c = cstr(d)?;
            let dirfd = cur.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
            // SAFETY: c is NUL-terminated.
            let r = unsafe {
                libc::openat(
                    dirfd,
                    c.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            cur = Some(owned(r as libc::c_long)?);
        }
        let c = cstr(last)?;
        let dirfd = cur.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
        let r = crate::sys::retry(|| {
            // SAFETY: c is NUL-terminated.
            unsafe { libc::openat(dirfd, c.as_ptr(), flags) as libc::c_long }
        });
        owned(r)
    }

    /// Looks up `rel` without following a final symlink: its stat, and for
    /// a directory whether it lies on a host pseudo filesystem.
    pub fn lookup(&self, rel: &[u8]) -> Result<HostStat, i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let mut st = statx_fd(fd.as_raw_fd())?;
        if st.is_dir() {
            st.pseudo = is_pseudo_fs(fstatfs_fd(fd.as_raw_fd())?.f_type);
        }
        Ok(st)
    }

    /// The target of the symlink `rel`.
    pub fn readlink(&self, rel: &[u8]) -> Result<Vec<u8>, i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let mut buf = vec![0u8; 4096];
        let empty = b"\0";
        // SAFETY: buf is writable for its length; empty is NUL-terminated.
        let r = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                empty.as_ptr().cast(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if r < 0 {
            let e = errno();
            // readlinkat on a non-symlink O_PATH fd gives ENOENT; Linux's
            // readlink(2) says EINVAL.
            return Err(if e == libc::ENOENT { libc::EINVAL } else { e });
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    /// statfs of the filesystem holding `rel`.
    pub fn statfs(&self, rel: &[u8]) -> Result<HostStatFs, i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        fstatfs_fd(fd.as_raw_fd())
    }

    /// Opens the regular file or directory `rel` for I/O. `expect` is the
    /// (dev_major, dev_minor, ino) the kernel looked up: if the host swapped
    /// the file since, the open fails with ESTALE. Anything but a regular
    /// file or directory gives EACCES (FIFOs, sockets, devices are never
    /// used). `trunc` truncates a regular file opened for writing.
    pub fn open(
        &self,
        rel: &[u8],
        mode: OpenMode,
        trunc: bool,
        expect: (u32, u32, u64),
    ) -> Result<HostFile, i32> {
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        flags |= match mode {
            OpenMode::Read => libc::O_RDONLY,
            OpenMode::Write => libc::O_WRONLY,
            OpenMode::ReadWrite => libc::O_RDWR,
        };
        let fd = self.open_beneath(rel, flags)?;
        let st = statx_fd(fd.as_raw_fd())?;
        if !st.is_reg() && !st.is_dir() {
            return Err(libc::EACCES);
        }
        if (st.dev_major, st.dev_minor, st.ino) != expect {
            return Err(libc::ESTALE);
        }
        // Regular files and directories ignore O_NONBLOCK, but clear it so
        // the host descriptor is exactly an ordinary one.
        // F_SETFL changes only O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME and
        // O_NONBLOCK, of which this open set O_NONBLOCK alone: one call
        // clears it.
        // SAFETY: fd is ours.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, 0) };
        let f = HostFile { fd };
        if trunc && st.is_reg() && mode != OpenMode::Read {
            f.truncate(0)?;
        }
        Ok(f)
    }

    /// Creates (exclusively) the regular file `name` in directory `dir_rel`
    /// with permission bits `perm`, opened as `mode`.
    pub fn create(
        &self,
        dir_rel: &[u8],
        name: &[u8],
        perm: u32,
        mode: OpenMode,
    ) -> Result<HostFile, i32> {
        check_name(name)?;
        let dir = self.open_beneath(dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
        let c = cstr(name)?;
        let acc = match mode {
            OpenMode::Read => libc::O_RDONLY,
            OpenMode::Write => libc::O_WRONLY,
            OpenMode::ReadWrite => libc::O_RDWR,
        };
        let flags = acc
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | libc::O_NOCTTY;
        // SAFETY: c is NUL-terminated.
        let r = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                flags,
                (perm & 0o7777) as libc::c_uint,
            )
        };
        Ok(HostFile {
            fd: owned(r as libc::c_long)?,
        })
    }

    /// mkdir `name` in `dir_rel`.
    pub fn mkdir(&self, dir_rel: &[u8], name: &[u8], perm: u32) -> Result<(), i32> {
        check_name(name)?;
        let dir = self.open_beneath(dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
        let c = cstr(name)?;
        // SAFETY: c is NUL-terminated.
        let r =
            unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), (perm & 0o7777) as libc::mode_t) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// unlink (or rmdir, with `dir`) `name` in `dir_rel`.
    pub fn unlink(&self, dir_rel: &[u8], name: &[u8], dir: bool) -> Result<(), i32> {
        check_name(name)?;
        let d = self.open_beneath(dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
        let c = cstr(name)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: c is NUL-terminated.
        let r = unsafe { libc::unlinkat(d.as_raw_fd(), c.as_ptr(), flags) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// symlink: creates `name` in `dir_rel` pointing at `target` (stored
    /// verbatim; the kernel resolves it against the guest root).
    pub fn symlink(&self, dir_rel: &[u8], name: &[u8], target: &[u8]) -> Result<(), i32> {
        check_name(name)?;
        let d = self.open_beneath(dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
        let c = cstr(name)?;
        let t = cstr(target)?;
        // SAFETY: both are NUL-terminated.
        let r = unsafe { libc::symlinkat(t.as_ptr(), d.as_raw_fd(), c.as_ptr()) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// rename `old_dir/old_name` to `new_dir/new_name` (renameat2 flags).
    pub fn rename(
        &self,
        old_dir: &[u8],
        old_name: &[u8],
        new_dir: &[u8],
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), i32> {
        check_name(old_name)?;
        check_name(new_name)?;
        let od = self.open_beneath(old_dir, libc::O_PATH | libc::O_DIRECTORY)?;
        let nd = self.open_beneath(new_dir, libc::O_PATH | libc::O_DIRECTORY)?;
        let oc = cstr(old_name)?;
        let nc = cstr(new_name)?;
        // SAFETY: names are NUL-terminated.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                od.as_raw_fd(),
                oc.as_ptr(),
                nd.as_raw_fd(),
                nc.as_ptr(),
                flags as libc::c_uint,
            )
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// A hostfs root for the directory `rel` beneath this one: symlinks on
    /// the way resolve as if this root were `/` (RESOLVE_IN_ROOT), so the
    /// new root is never outside this one. (A guest `mount -t hostfs`.)
    pub fn sub_root(&self, rel: &[u8]) -> Result<HostRoot, i32> {
        if rel.contains(&0) {
            return Err(libc::EINVAL);
        }
        let trimmed: Vec<u8> = {
            let t: &[u8] = rel;
            let start = t.iter().position(|&b| b != b'/').unwrap_or(t.len());
            t[start..].to_vec()
        };
        let rel: &[u8] = if trimmed.is_empty() { b"." } else { &trimmed };
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            const RESOLVE_IN_ROOT: u64 = 0x10;
            let c = cstr(rel)?;
            let how = OpenHow {
                flags: flags as u32 as u64,
                mode: 0,
                resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            };
            let r = crate::sys::retry(|| {
                // SAFETY: c and how are valid for the call.
                unsafe {
                    libc::syscall(
                        SYS_OPENAT2,
                        self.fd.as_raw_fd(),
                        c.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                }
            });
            match owned(r) {
                Err(libc::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                other => return other.map(|fd| HostRoot { fd }),
            }
        }
        // Without openat2: no symlinks at all on the way.
        self.open_walk(rel, flags | libc::O_NOFOLLOW)
            .map(|fd| HostRoot { fd })
    }

    /// chmod of `rel` (not a symlink: EOPNOTSUPP, as Linux for lchmod).
    pub fn chmod(&self, rel: &[u8], perm: u32) -> Result<(), i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let st = statx_fd(fd.as_raw_fd())?;
        if st.file_type() == libc::S_IFLNK {
            return Err(libc::EOPNOTSUPP);
        }
        let p = fd_path(&fd)?;
        // SAFETY: p is NUL-terminated; it names exactly the inode we opened.
        let r = unsafe { libc::chmod(p.as_ptr(), (perm & 0o7777) as libc::mode_t) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// chown of `rel` (None leaves an id alone). When the host refuses
    /// (ruml is not root there), a change to the ids the file already has
    /// succeeds and any other gives EPERM: see docs/filesystems.md.
    pub fn chown(&self, rel: &[u8], uid: Option<u32>, gid: Option<u32>) -> Result<(), i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let empty = b"\0";
        let u = uid.unwrap_or(u32::MAX);
        let g = gid.unwrap_or(u32::MAX);
        // SAFETY: empty is NUL-terminated; AT_EMPTY_PATH acts on fd itself.
        let r = unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                empty.as_ptr().cast(),
                u,
                g,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EPERM {
            return Err(e);
        }
        let st = statx_fd(fd.as_raw_fd())?;
        if uid.is_none_or(|u| u == st.uid) && gid.is_none_or(|g| g == st.gid) {
            Ok(())
        } else {
            Err(libc::EPERM)
        }
    }

    /// utimensat of `rel`: `times` are (atime, mtime) as (sec, nsec) with
    /// nsec possibly UTIME_NOW / UTIME_OMIT.
    pub fn utimens(&self, rel: &[u8], times: [(i64, i64); 2]) -> Result<(), i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let ts = [
            libc::timespec {
                tv_sec: times[0].0,
                tv_nsec: times[0].1,
            },
            libc::timespec {
                tv_sec: times[1].0,
                tv_nsec: times[1].1,
            },
        ];
        let empty = b"\0";
        // SAFETY: empty is NUL-terminated, ts holds two timespecs.
        let r = unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                empty.as_ptr().cast(),
                ts.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINVAL && e != libc::ENOENT {
            return Err(e);
        }
        // Older hosts lack AT_EMPTY_PATH here: go through /proc/self/fd
        // (never for a symlink, which that would follow).
        let st = statx_fd(fd.as_raw_fd())?;
        if st.file_type() == libc::S_IFLNK {
            return Err(libc::EOPNOTSUPP);
        }
        let p = fd_path(&fd)?;
        // SAFETY: p is NUL-terminated, ts holds two timespecs.
        let r = unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), ts.as_ptr(), 0) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// link: a new name `new_dir/new_name` for `old_dir/old_name` (never
    /// following a symlink).
    pub fn link(
        &self,
        old_dir: &[u8],
        old_name: &[u8],
        new_dir: &[u8],
        new_name: &[u8],
    ) -> Result<(), i32> {
        check_name(old_name)?;
        check_name(new_name)?;
        let od = self.open_beneath(old_dir, libc::O_PATH | libc::O_DIRECTORY)?;
        let nd = self.open_beneath(new_dir, libc::O_PATH | libc::O_DIRECTORY)?;
        let oc = cstr(old_name)?;
        let nc = cstr(new_name)?;
        // SAFETY: names are NUL-terminated.
        let r =
            unsafe { libc::linkat(od.as_raw_fd(), oc.as_ptr(), nd.as_raw_fd(), nc.as_ptr(), 0) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// syncfs of the filesystem holding the root.
    pub fn syncfs(&self) -> Result<(), i32> {
        let fd = self.open_beneath(b"", libc::O_RDONLY | libc::O_DIRECTORY)?;
        // SAFETY: plain call on our descriptor.
        let r = unsafe { libc::syncfs(fd.as_raw_fd()) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }
}

/// "/proc/self/fd/N" for one of our descriptors.
impl HostRoot {
    /// An O_PATH descriptor of `rel` and its /proc/self/fd path, checked to
    /// be the object the kernel looked up (`expect`: dev major, minor, ino;
    /// ESTALE if the host swapped it).
    fn xattr_target(&self, rel: &[u8], expect: (u32, u32, u64)) -> Result<(OwnedFd, CString), i32> {
        let fd = self.open_beneath(rel, libc::O_PATH)?;
        let st = statx_fd(fd.as_raw_fd())?;
        if (st.dev_major, st.dev_minor, st.ino) != expect {
            return Err(libc::ESTALE);
        }
        let p = fd_path(&fd)?;
        Ok((fd, p))
    }

    /// getxattr(2) of `name` on `rel` (at most 64 KiB).
    pub fn getxattr(
        &self,
        rel: &[u8],
        name: &[u8],
        expect: (u32, u32, u64),
    ) -> Result<Vec<u8>, i32> {
        let (_fd, p) = self.xattr_target(rel, expect)?;
        let n = cstr(name)?;
        let mut buf = vec![0u8; 65536];
        // SAFETY: p and n are NUL-terminated; buf is writable for its length.
        let r =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            return Err(errno());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    /// setxattr(2) (`value` Some, with XATTR_CREATE/REPLACE `flags`) or
    /// removexattr(2) (None) of `name` on `rel`.
    pub fn setxattr(
        &self,
        rel: &[u8],
        name: &[u8],
        value: Option<&[u8]>,
        flags: i32,
        expect: (u32, u32, u64),
    ) -> Result<(), i32> {
        let (_fd, p) = self.xattr_target(rel, expect)?;
        let n = cstr(name)?;
        // SAFETY: p and n are NUL-terminated; v is readable for its length.
        let r = unsafe {
            match value {
                Some(v) => {
                    libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), flags)
                }
                None => libc::removexattr(p.as_ptr(), n.as_ptr()),
            }
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// listxattr(2) of `rel`: the names, NUL-terminated one after another
    /// (at most 64 KiB).
    pub fn listxattr(&self, rel: &[u8], expect: (u32, u32, u64)) -> Result<Vec<u8>, i32> {
        let (_fd, p) = self.xattr_target(rel, expect)?;
        let mut buf = vec![0u8; 65536];
        // SAFETY: p is NUL-terminated; buf is writable for its length.
        let r = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            return Err(errno());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }
}

fn fd_path(fd: &OwnedFd) -> Result<CString, i32> {
    cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())
}

fn check_name(name: &[u8]) -> Result<(), i32> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// An open host regular file or directory (one host descriptor).
#[derive(Debug)]
pub struct HostFile {
    fd: OwnedFd,
}

impl HostFile {
    /// pread(2).
    pub fn pread(&self, off: u64, buf: &mut [u8]) -> Result<usize, i32> {
        crate::stats::bump(crate::stats::Counter::FileRead);
        if off > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        let r = crate::sys::retry(|| {
            // SAFETY: buf is writable for its length.
            unsafe {
                libc::pread(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    off as i64,
                ) as libc::c_long
            }
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    /// The iovecs of physmem pieces (frame, offset in it, bytes).
    fn frame_iovecs(
        phys: &crate::PhysMem,
        pieces: &[(crate::Pfn, usize, usize)],
    ) -> Vec<libc::iovec> {
        pieces
            .iter()
            .map(|&(pfn, off, len)| {
                assert!(off + len <= crate::physmem::PAGE_SIZE as usize);
                libc::iovec {
                    // page_ptr checks the frame lies inside physmem.
                    iov_base: phys.page_ptr(pfn).wrapping_add(off).cast(),
                    iov_len: len,
                }
            })
            .collect()
    }

    /// preadv(2) straight into physmem frames: `pieces` are (frame,
    /// offset in it, bytes), filled in order (at most IOV_MAX of them).
    pub fn pread_frames(
        &self,
        off: u64,
        phys: &crate::PhysMem,
        pieces: &[(crate::Pfn, usize, usize)],
    ) -> Result<usize, i32> {
        crate::stats::bump(crate::stats::Counter::FileRead);
        if off > i64::MAX as u64 || pieces.len() > 1024 {
            return Err(libc::EINVAL);
        }
        let iov = Self::frame_iovecs(phys, pieces);
        let r = crate::sys::retry(|| {
            // SAFETY: every iovec lies inside one physmem frame (checked
            // above); the kernel's mapping of physmem is writable.
            unsafe {
                libc::preadv(
                    self.fd.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as i32,
                    off as i64,
                ) as libc::c_long
            }
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    /// pwritev(2) straight from physmem frames; see [`HostFile::pread_frames`].
    pub fn pwrite_frames(
        &self,
        off: u64,
        phys: &crate::PhysMem,
        pieces: &[(crate::Pfn, usize, usize)],
    ) -> Result<usize, i32> {
        crate::stats::bump(crate::stats::Counter::FileWrite);
        if off > i64::MAX as u64 || pieces.len() > 1024 {
            return Err(libc::EINVAL);
        }
        let iov = Self::frame_iovecs(phys, pieces);
        let r = crate::sys::retry(|| {
            // SAFETY: every iovec lies inside one physmem frame.
            unsafe {
                libc::pwritev(
                    self.fd.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as i32,
                    off as i64,
                ) as libc::c_long
            }
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    /// pwrite(2).
    pub fn pwrite(&self, off: u64, buf: &[u8]) -> Result<usize, i32> {
        crate::stats::bump(crate::stats::Counter::FileWrite);
        if off > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        let r = crate::sys::retry(|| {
            // SAFETY: buf is readable for its length.
            unsafe {
                libc::pwrite(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    off as i64,
                ) as libc::c_long
            }
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    /// ftruncate(2).
    pub fn truncate(&self, len: u64) -> Result<(), i32> {
        if len > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        // SAFETY: plain call on our descriptor.
        let r = crate::sys::retry(|| unsafe {
            libc::ftruncate(self.fd.as_raw_fd(), len as i64) as libc::c_long
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// fsync(2) (or fdatasync with `data_only`).
    pub fn sync(&self, data_only: bool) -> Result<(), i32> {
        crate::stats::bump(if data_only {
            crate::stats::Counter::FileFdatasync
        } else {
            crate::stats::Counter::FileFsync
        });
        // SAFETY: plain call on our descriptor.
        let r = unsafe {
            if data_only {
                libc::fdatasync(self.fd.as_raw_fd())
            } else {
                libc::fsync(self.fd.as_raw_fd())
            }
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// fallocate(2).
    pub fn fallocate(&self, mode: u32, off: u64, len: u64) -> Result<(), i32> {
        if off > i64::MAX as u64 || len > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        // SAFETY: plain call on our descriptor.
        let r = crate::sys::retry(|| unsafe {
            libc::fallocate(self.fd.as_raw_fd(), mode as i32, off as i64, len as i64)
                as libc::c_long
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    /// statx of the open file.
    pub fn stat(&self) -> Result<HostStat, i32> {
        statx_fd(self.fd.as_raw_fd())
    }

    /// fstatfs of the open file.
    pub fn statfs(&self) -> Result<HostStatFs, i32> {
        fstatfs_fd(self.fd.as_raw_fd())
    }

    /// getdents64(2) into `buf`: linux_dirent64 records exactly as the host
    /// produced them, in the host's order. 0 at the end.
    pub fn getdents64(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let r = crate::sys::retry(|| {
            // SAFETY: buf is writable for its length.
            unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            }
        });
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as usize)
        }
    }

    /// lseek(2) — for directories, whose offsets are the host's cookies.
    pub fn lseek(&self, off: i64, whence: i32) -> Result<u64, i32> {
        // SAFETY: plain call on our descriptor.
        let r = unsafe { libc::lseek(self.fd.as_raw_fd(), off, whence) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as u64)
        }
    }
}

/// How [`HostFile::open_disk`] opens a disk image.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskOpen {
    /// Read and write (else read-only).
    pub write: bool,
    /// Create the file if it does not exist (with O_EXCL: never an
    /// existing file replaced).
    pub create: bool,
    /// O_SYNC: every write reaches the host's disk before it returns.
    pub sync: bool,
}

/// How long `open_disk` waits for a conflicting lock to go away (see there).
const DISK_LOCK_WAIT_MS: u32 = 3000;

impl HostFile {
    /// Opens a disk image named on ruml's own command line (ubd): the
    /// user's file, not guest input, so the path is not confined. Only
    /// regular files and block devices are accepted (a FIFO or a terminal
    /// never blocks or becomes a controlling terminal: O_NONBLOCK |
    /// O_NOCTTY, then checked).
    pub fn open_disk(path: &Path, how: DiskOpen) -> Result<HostFile, i32> {
        use std::os::unix::ffi::OsStrExt;
        let c = cstr(path.as_os_str().as_bytes())?;
        let mut flags = libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
        flags |= if how.write {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        if how.create {
            flags |= libc::O_CREAT | libc::O_EXCL;
        }
        if how.sync {
            flags |= libc::O_SYNC;
        }
        // SAFETY: c is NUL-terminated.
        let fd = owned(unsafe { libc::open(c.as_ptr(), flags, 0o644 as libc::c_uint) } as _)?;
        let st = statx_fd(fd.as_raw_fd())?;
        let t = st.file_type();
        if t != libc::S_IFREG && t != libc::S_IFBLK {
            return Err(libc::EINVAL);
        }
        // Blocking I/O from here on.
        // SAFETY: plain fcntl on our descriptor.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) };
        // As UML does: a disk opened for writing is locked exclusively, a
        // read-only one shared, so two instances never write one image
        // (or write a backing file another reads). An open file
        // description lock: it lives as long as this descriptor.
        // SAFETY: flock is plain data.
        let mut lk: libc::flock = unsafe { std::mem::zeroed() };
        lk.l_type = if how.write {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        } as i16;
        lk.l_whence = libc::SEEK_SET as i16;
        // A conflict is retried for a short while: an instance killed with
        // SIGKILL can leave a just-forked stub child (between its fork and
        // its close_range, when the machine is busy) holding a copy of the
        // descriptor until its PR_SET_PDEATHSIG kill is delivered, so a
        // restart right after `kill -9` would otherwise find the image
        // "in use" by a dead instance. A live instance keeps the lock and
        // the open still fails, after the wait.
        let mut waited_ms = 0;
        loop {
            // SAFETY: lk is a valid flock for F_OFD_SETLK.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lk) } == 0 {
                return Ok(HostFile { fd });
            }
            let e = errno();
            if e != libc::EACCES && e != libc::EAGAIN {
                return Err(e);
            }
            if waited_ms >= DISK_LOCK_WAIT_MS {
                return Err(libc::EAGAIN);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited_ms += 20;
        }
    }

    /// The size in bytes (for a block device, its capacity).
    pub fn disk_size(&self) -> Result<u64, i32> {
        // SAFETY: plain call on our descriptor.
        let r = unsafe { libc::lseek(self.fd.as_raw_fd(), 0, libc::SEEK_END) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as u64)
        }
    }
}

/// A zeroed buffer of host memory whose pages are all present from the
/// start (an anonymous private mapping with MAP_POPULATE): filling it
/// costs no page fault per page. The disk filesystems' data cache takes
/// its memory in these (a page fault in the kernel process, with its
/// many threads, costs more than the copy that fills the page).
/// Unmapped on drop.
pub struct PrefaultedBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by the value (no aliasing pointer
// escapes except through &self / &mut self borrows).
unsafe impl Send for PrefaultedBuf {}
unsafe impl Sync for PrefaultedBuf {}

impl PrefaultedBuf {
    /// `len` zero bytes (rounded up to pages); None if the host refuses.
    pub fn new(len: usize) -> Option<PrefaultedBuf> {
        let len = len.div_ceil(4096).max(1) * 4096;
        // SAFETY: a fresh anonymous mapping, no address given.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(PrefaultedBuf {
            ptr: p as *mut u8,
            len,
        })
    }
}

impl std::ops::Deref for PrefaultedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the value's life.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for PrefaultedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, writable, and borrowed mutably once.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PrefaultedBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), unmapped once.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod prefaulted_tests {
    use super::PrefaultedBuf;

    #[test]
    fn prefaulted_buffer_is_zeroed_writable_and_page_rounded() {
        let mut b = PrefaultedBuf::new(5000).expect("mmap");
        assert_eq!(b.len(), 8192);
        assert!(b.iter().all(|&x| x == 0));
        b[8191] = 7;
        b[0] = 1;
        assert_eq!((b[0], b[8191]), (1, 7));
    }
}
