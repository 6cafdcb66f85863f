//! hostfs: a host directory as a filesystem, confined beneath its root.
//!
//! Each inode stores its path *relative to the hostfs root*, made only of
//! names the kernel's own walk looked up (so no symlink and no `..` in it),
//! plus the host stat from when it was looked up. Every host operation goes
//! through [`ruml_host::hostfile::HostRoot`], which opens beneath the root
//! with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: a component swapped for a
//! symlink on the host fails instead of escaping. Symlinks are read, never
//! followed, by the host: the kernel walk resolves their targets against
//! the guest's root.
//!
//! The overlay root's lower layer (read-only from the guest's side) keeps
//! an attribute and lookup cache ([`AttrCache`]): what a host lookup of a
//! path answered — its stat, or that it does not exist — is reused for
//! [`ATTR_TTL_NS`] (one second, FUSE's default entry and attribute
//! timeout), so a stat of an unchanged host file costs no host system call
//! each time. A change made on the host shows within that second; fstat of
//! an open file and directory listings always ask the host. Other hostfs
//! mounts (read-write, `mount=`) are not cached.
//!
//! Directories on host pseudo filesystems (procfs, sysfs, ...) look empty.
//! Host device nodes, FIFOs and sockets show in listings and stat but can
//! not be opened (EACCES / ENXIO). No host descriptor is kept per inode;
//! an open file holds one.

use std::collections::HashMap;
use std::path::Path as HostPath;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ruml_host::hostfile::{HostFile, HostRoot, HostStat, OpenMode};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::types::{encode_dev, oflags::*, DirSink, FileType, Stat, StatFs, ST_RDONLY};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey, SetAttr, SetTime};
use crate::mm::userframes::UserFrames;

fn host_err(e: i32) -> Errno {
    let e = Errno::from_host(e);
    if crate::errno::trace_enabled() {
        eprintln!("ruml: hostfs: host errno {e:?}");
    }
    e
}

/// The host's IOV_MAX: more pieces than this go through a buffer.
const MAX_HOST_IOV: usize = 1024;

/// How long a cached host lookup stays valid.
pub const ATTR_TTL_NS: u64 = 1_000_000_000;
/// Entries an attribute cache holds before it starts afresh.
const ATTR_CACHE_MAX: usize = 16 * 1024;

/// Host lookups of a read-only hostfs, by path relative to its root: the
/// host's answer (a stat, or the errno) and when it expires (monotonic
/// ns). Bounded: when full it is emptied. The mutex is held only to read
/// or insert one entry, never across a host call.
struct AttrCache {
    map: Mutex<HashMap<Vec<u8>, CachedLookup>>,
    /// Host descriptors of recently opened files, shared by every guest
    /// open for reading of the same host inode within [`ATTR_TTL_NS`]:
    /// an open of a file already open costs no host call. Only positional
    /// I/O and fstat go through a regular file's descriptor, so sharing
    /// one is invisible to the guest. At most [`OPEN_CACHE_MAX`].
    files: Mutex<HashMap<Vec<u8>, CachedOpen>>,
}

/// A shared read-only host descriptor: the file, the host inode it was
/// checked to be (dev major, minor, ino) and when the entry expires.
type CachedOpen = (Arc<HostFile>, (u32, u32, u64), u64);

/// Host descriptors the open cache holds before it starts afresh.
const OPEN_CACHE_MAX: usize = 64;

/// A host lookup's answer and when it expires.
type CachedLookup = (Result<HostStat, i32>, u64);

/// A cheap monotonic clock for expiry: the vDSO's TSC clock when there is
/// one (no host system call), else the host's.
fn now_ns() -> u64 {
    crate::vdso::clock_ns(1).unwrap_or_else(|| {
        ruml_host::clock::gettime(1)
            .map(|(s, ns)| s as u64 * 1_000_000_000 + ns as u64)
            .unwrap_or(0)
    })
}

/// One hostfs instance.
pub struct HostFs {
    root: HostRoot,
    read_only: bool,
    /// Some for the overlay's lower layer: see the module documentation.
    cache: Option<AttrCache>,
    /// Host lookups made (for tests of the cache).
    host_lookups: AtomicU64,
}

impl HostFs {
    /// A host lookup of `rel`, through the cache if this instance has one.
    fn lookup_rel(&self, rel: &[u8]) -> Result<HostStat, i32> {
        let Some(cache) = &self.cache else {
            self.host_lookups.fetch_add(1, Ordering::Relaxed);
            return self.root.lookup(rel);
        };
        let now = now_ns();
        if let Some((r, expiry)) = cache.map.lock().unwrap_or_else(|p| p.into_inner()).get(rel) {
            if now < *expiry {
                return *r;
            }
        }
        self.host_lookups.fetch_add(1, Ordering::Relaxed);
        let r = self.root.lookup(rel);
        // Only answers about the object itself: not, say, EMFILE.
        let cacheable = match r {
            Ok(_) => true,
            Err(e) => e == Errno::ENOENT.as_i32() || e == Errno::ENOTDIR.as_i32(),
        };
        if cacheable {
            let mut m = cache.map.lock().unwrap_or_else(|p| p.into_inner());
            if m.len() >= ATTR_CACHE_MAX {
                m.clear();
            }
            m.insert(rel.to_vec(), (r, now.saturating_add(ATTR_TTL_NS)));
        }
        r
    }

    /// Opens `rel` (host inode `expect`) for reading, through the open
    /// cache if this instance has one.
    fn open_read(&self, rel: &[u8], expect: (u32, u32, u64)) -> Result<Arc<HostFile>, i32> {
        let Some(cache) = &self.cache else {
            return self
                .root
                .open(rel, OpenMode::Read, false, expect)
                .map(Arc::new);
        };
        let now = now_ns();
        if let Some((f, ino, expiry)) = cache
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel)
        {
            if *ino == expect && now < *expiry {
                return Ok(f.clone());
            }
        }
        let f = Arc::new(self.root.open(rel, OpenMode::Read, false, expect)?);
        let mut m = cache.files.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= OPEN_CACHE_MAX {
            m.retain(|_, e| now < e.2);
            if m.len() >= OPEN_CACHE_MAX {
                m.clear();
            }
        }
        m.insert(
            rel.to_vec(),
            (f.clone(), expect, now.saturating_add(ATTR_TTL_NS)),
        );
        Ok(f)
    }

    /// How many host lookups this instance has made.
    pub fn host_lookups(&self) -> u64 {
        self.host_lookups.load(Ordering::Relaxed)
    }

    /// Opens host directory `dir` as a hostfs; returns its root inode.
    pub fn open_root(dir: &HostPath, read_only: bool) -> KResult<Arc<HostInode>> {
        Self::open_root_with(dir, read_only, false)
    }

    /// The overlay root's lower layer: `dir` read-only, with the attribute
    /// and lookup cache.
    pub fn open_root_cached(dir: &HostPath) -> KResult<Arc<HostInode>> {
        Self::open_root_with(dir, true, true)
    }

    fn open_root_with(dir: &HostPath, read_only: bool, cached: bool) -> KResult<Arc<HostInode>> {
        let root = HostRoot::new(dir).map_err(host_err)?;
        let fs = Arc::new(HostFs {
            root,
            read_only,
            cache: cached.then(|| AttrCache {
                map: Mutex::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
            }),
            host_lookups: AtomicU64::new(0),
        });
        let st = fs.root.lookup(b"").map_err(host_err)?;
        if !st.is_dir() {
            return error!(ENOTDIR);
        }
        Ok(Arc::new(HostInode {
            fs,
            rel: Vec::new(),
            st,
        }))
    }

    /// A host file bind-mounted on a guest file (`ruml oci` bind mounts
    /// of files such as /etc/hosts): a hostfs confined beneath the file's
    /// directory whose only reachable inode is the file itself (a mount
    /// root that is not a directory has no lookups, and `..` from it
    /// climbs the guest's tree, not the host's).
    pub fn open_file_root(file: &HostPath, read_only: bool) -> KResult<Arc<HostInode>> {
        use std::os::unix::ffi::OsStrExt;
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return error!(EINVAL);
        };
        let root = HostRoot::new(dir).map_err(host_err)?;
        let fs = Arc::new(HostFs {
            root,
            read_only,
            cache: None,
            host_lookups: AtomicU64::new(0),
        });
        let rel = name.as_bytes().to_vec();
        let st = fs.root.lookup(&rel).map_err(host_err)?;
        if st.is_dir() {
            return error!(EISDIR);
        }
        Ok(Arc::new(HostInode { fs, rel, st }))
    }

    /// A guest `mount -t hostfs -o DIR`: the host directory `dir`,
    /// resolved beneath `prefix` (the root's host directory, as UML's
    /// `hostfs=`), confined beneath itself from then on.
    pub fn open_sub_root(
        prefix: &HostPath,
        dir: &[u8],
        read_only: bool,
    ) -> KResult<Arc<HostInode>> {
        let base = HostRoot::new(prefix).map_err(host_err)?;
        let root = base.sub_root(dir).map_err(host_err)?;
        let fs = Arc::new(HostFs {
            root,
            read_only,
            cache: None,
            host_lookups: AtomicU64::new(0),
        });
        let st = fs.root.lookup(b"").map_err(host_err)?;
        if !st.is_dir() {
            return error!(ENOTDIR);
        }
        if st.pseudo {
            return error!(EACCES);
        }
        Ok(Arc::new(HostInode {
            fs,
            rel: Vec::new(),
            st,
        }))
    }
}

/// A hostfs inode; see the module doc.
pub struct HostInode {
    fs: Arc<HostFs>,
    /// Relative to the hostfs root; empty for the root.
    rel: Vec<u8>,
    /// The host's stat at lookup time (type and identity never change).
    st: HostStat,
}

fn to_stat(st: &HostStat) -> Stat {
    Stat {
        dev: (st.dev_major, st.dev_minor),
        ino: st.ino,
        mode: st.mode,
        nlink: st.nlink as u64,
        uid: st.uid,
        gid: st.gid,
        rdev: (st.rdev_major, st.rdev_minor),
        size: st.size,
        blksize: st.blksize,
        blocks: st.blocks,
        atime: st.atime,
        mtime: st.mtime,
        ctime: st.ctime,
        btime: st.btime,
        attributes: st.attributes,
        attributes_mask: st.attributes_mask,
    }
}

impl HostInode {
    fn child_rel(&self, name: &[u8]) -> Vec<u8> {
        let mut rel = self.rel.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name);
        rel
    }

    fn expect(&self) -> (u32, u32, u64) {
        (self.st.dev_major, self.st.dev_minor, self.st.ino)
    }

    fn check_name(name: &[u8]) -> KResult<()> {
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return error!(EINVAL);
        }
        Ok(())
    }

    /// Whether `name` is an attribute hostfs passes to the host: user.*
    /// on a regular file or directory of a real host filesystem.
    fn xattr_ok(&self, name: &[u8]) -> KResult<()> {
        let ft = self.file_type();
        if !name.starts_with(b"user.")
            || self.st.pseudo
            || (ft != FileType::Regular && ft != FileType::Directory)
        {
            return error!(EOPNOTSUPP);
        }
        Ok(())
    }

    fn writable(&self) -> KResult<()> {
        if self.fs.read_only {
            return error!(EROFS);
        }
        if self.st.pseudo {
            return error!(EACCES);
        }
        Ok(())
    }
}

impl Inode for HostInode {
    fn file_type(&self) -> FileType {
        FileType::from_mode(self.st.mode)
    }

    fn key(&self) -> InodeKey {
        (
            encode_dev(self.st.dev_major, self.st.dev_minor),
            self.st.ino,
        )
    }

    fn stat(&self) -> KResult<Stat> {
        // From the host (or its recent answer, for a cached layer): sizes
        // and times change under us.
        match self.fs.lookup_rel(&self.rel) {
            Ok(st) if (st.dev_major, st.dev_minor, st.ino) == self.expect() => Ok(to_stat(&st)),
            // Replaced or removed on the host since: what we knew.
            _ => Ok(to_stat(&self.st)),
        }
    }

    fn statfs(&self) -> KResult<StatFs> {
        let s = self.fs.root.statfs(&self.rel).map_err(host_err)?;
        let mut flags = s.flags;
        if self.fs.read_only {
            flags |= ST_RDONLY;
        }
        Ok(StatFs {
            f_type: s.f_type,
            bsize: s.bsize,
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            fsid: s.fsid,
            namelen: s.namelen,
            frsize: s.frsize,
            flags,
        })
    }

    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if !self.st.is_dir() {
            return error!(ENOTDIR);
        }
        Self::check_name(name).map_err(|_| crate::errno!(ENOENT))?;
        if self.st.pseudo {
            return error!(ENOENT);
        }
        let rel = self.child_rel(name);
        let st = self.fs.lookup_rel(&rel).map_err(host_err)?;
        Ok(Arc::new(HostInode {
            fs: self.fs.clone(),
            rel,
            st,
        }))
    }

    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        if self.file_type() != FileType::Symlink {
            return error!(EINVAL);
        }
        self.fs.root.readlink(&self.rel).map_err(host_err)
    }

    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        match self.file_type() {
            FileType::Regular => {
                let mode = match flags & O_ACCMODE {
                    O_WRONLY => OpenMode::Write,
                    O_RDWR => OpenMode::ReadWrite,
                    _ => OpenMode::Read,
                };
                if mode != OpenMode::Read || flags & O_TRUNC != 0 {
                    self.writable()?;
                }
                let trunc = flags & O_TRUNC != 0 && mode != OpenMode::Read;
                let file = if mode == OpenMode::Read {
                    self.fs.open_read(&self.rel, self.expect())
                } else {
                    self.fs
                        .root
                        .open(&self.rel, mode, trunc, self.expect())
                        .map(Arc::new)
                }
                .map_err(host_err)?;
                Ok(Arc::new(HostRegFile {
                    file,
                    key: self.key(),
                }))
            }
            FileType::Directory => {
                if self.st.pseudo {
                    return Ok(Arc::new(HostDirFile {
                        file: None,
                        st: self.st,
                    }));
                }
                let file = self
                    .fs
                    .root
                    .open(&self.rel, OpenMode::Read, false, self.expect())
                    .map_err(host_err)?;
                Ok(Arc::new(HostDirFile {
                    file: Some(file),
                    st: self.st,
                }))
            }
            FileType::Symlink => error!(ELOOP),
            // Host device nodes are never opened.
            FileType::CharDevice | FileType::BlockDevice => error!(EACCES),
            FileType::Fifo | FileType::Socket => error!(ENXIO),
        }
    }

    fn create(
        &self,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        Self::check_name(name)?;
        self.writable()?;
        let om = match flags & O_ACCMODE {
            O_WRONLY => OpenMode::Write,
            O_RDWR => OpenMode::ReadWrite,
            _ => OpenMode::Read,
        };
        let file = self
            .fs
            .root
            .create(&self.rel, name, mode, om)
            .map_err(host_err)?;
        let mut st = file.stat().map_err(host_err)?;
        st.pseudo = false;
        let inode = Arc::new(HostInode {
            fs: self.fs.clone(),
            rel: self.child_rel(name),
            st,
        });
        let key = inode.key();
        Ok((
            inode,
            Arc::new(HostRegFile {
                file: Arc::new(file),
                key,
            }),
        ))
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        self.fs.root.mkdir(&self.rel, name, mode).map_err(host_err)
    }

    fn unlink(&self, name: &[u8]) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        self.fs
            .root
            .unlink(&self.rel, name, false)
            .map_err(host_err)
    }

    fn rmdir(&self, name: &[u8]) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        self.fs.root.unlink(&self.rel, name, true).map_err(host_err)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        self.fs
            .root
            .symlink(&self.rel, name, target)
            .map_err(host_err)
    }

    fn rename(&self, name: &[u8], new_dir: &dyn Inode, new_name: &[u8], flags: u32) -> KResult<()> {
        Self::check_name(name)?;
        Self::check_name(new_name)?;
        self.writable()?;
        let Some(nd) = new_dir.as_any().downcast_ref::<HostInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &nd.fs) {
            return error!(EXDEV);
        }
        nd.writable()?;
        self.fs
            .root
            .rename(&self.rel, name, &nd.rel, new_name, flags)
            .map_err(host_err)
    }

    fn link(&self, name: &[u8], target: &dyn Inode) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        let Some(t) = target.as_any().downcast_ref::<HostInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return error!(EXDEV);
        }
        if t.st.is_dir() || t.rel.is_empty() {
            return error!(EPERM);
        }
        let (tdir, tname) = match t.rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&t.rel[..i], &t.rel[i + 1..]),
            None => (&b""[..], &t.rel[..]),
        };
        self.fs
            .root
            .link(tdir, tname, &self.rel, name)
            .map_err(host_err)
    }

    /// Device nodes, FIFOs and sockets are never made on the host.
    fn mknod(&self, name: &[u8], _mode: u32, _rdev: (u32, u32)) -> KResult<()> {
        Self::check_name(name)?;
        self.writable()?;
        error!(EPERM)
    }

    fn setattr(&self, a: &SetAttr) -> KResult<()> {
        if self.fs.read_only {
            return error!(EROFS);
        }
        if self.st.pseudo {
            return error!(EACCES);
        }
        let root = &self.fs.root;
        if let Some(len) = a.size {
            match self.file_type() {
                FileType::Regular => {}
                FileType::Directory => return error!(EISDIR),
                _ => return error!(EINVAL),
            }
            let f = root
                .open(&self.rel, OpenMode::Write, false, self.expect())
                .map_err(host_err)?;
            f.truncate(len).map_err(host_err)?;
        }
        if a.uid.is_some() || a.gid.is_some() || a.kill_suid {
            root.chown(&self.rel, a.uid, a.gid).map_err(host_err)?;
        }
        if let Some(m) = a.mode {
            root.chmod(&self.rel, m).map_err(host_err)?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            const UTIME_NOW: i64 = (1 << 30) - 1;
            const UTIME_OMIT: i64 = (1 << 30) - 2;
            let conv = |t: Option<SetTime>| match t {
                None => (0, UTIME_OMIT),
                Some(SetTime::Now) => (0, UTIME_NOW),
                Some(SetTime::At(s, n)) => (s, n as i64),
            };
            root.utimens(&self.rel, [conv(a.atime), conv(a.mtime)])
                .map_err(host_err)?;
        }
        Ok(())
    }

    // Extended attributes: only the user.* namespace is passed to the
    // host file's own attributes (ruml is an ordinary process there, and
    // the host's trusted.*/security.* mean something to the host, not the
    // guest); every other name is EOPNOTSUPP and never listed. Only
    // regular files and directories (the VFS refuses user.* elsewhere).
    fn getxattr(&self, name: &[u8]) -> KResult<Vec<u8>> {
        self.xattr_ok(name)?;
        self.fs
            .root
            .getxattr(&self.rel, name, self.expect())
            .map_err(host_err)
    }

    fn setxattr(&self, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        self.xattr_ok(name)?;
        self.writable()?;
        self.fs
            .root
            .setxattr(&self.rel, name, value, flags as i32, self.expect())
            .map_err(host_err)
    }

    fn listxattr(&self) -> KResult<Vec<Vec<u8>>> {
        let ft = self.file_type();
        if self.st.pseudo || (ft != FileType::Regular && ft != FileType::Directory) {
            return Ok(Vec::new());
        }
        let raw = match self.fs.root.listxattr(&self.rel, self.expect()) {
            Ok(r) => r,
            Err(e) => {
                let e = host_err(e);
                if e == crate::errno!(EOPNOTSUPP) {
                    return Ok(Vec::new());
                }
                return Err(e);
            }
        };
        Ok(raw
            .split(|&b| b == 0)
            .filter(|n| n.starts_with(b"user.") && n.len() > 5)
            .map(|n| n.to_vec())
            .collect())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open hostfs regular file.
struct HostRegFile {
    /// Shared with other opens of the same file on the overlay's lower
    /// layer (see [`AttrCache`]).
    file: Arc<HostFile>,
    key: InodeKey,
}

impl FileOps for HostRegFile {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.file.pread(off, buf).map_err(host_err)
    }
    fn write(&self, _f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.file.pwrite(off, buf).map_err(host_err)
    }
    fn size(&self) -> KResult<u64> {
        Ok(self.file.stat().map_err(host_err)?.size)
    }
    fn stat(&self) -> Option<KResult<Stat>> {
        Some(self.file.stat().map(|s| to_stat(&s)).map_err(host_err))
    }
    // The host reads into and writes from the guest's frames itself
    // (preadv/pwritev over physmem): one copy.
    fn direct_io(&self) -> bool {
        true
    }
    fn read_frames(&self, _f: &OpenFile, off: u64, dst: &UserFrames) -> KResult<usize> {
        if dst.pieces().len() <= MAX_HOST_IOV {
            return self
                .file
                .pread_frames(off, dst.phys(), dst.pieces())
                .map_err(host_err);
        }
        let mut buf = vec![0u8; dst.len()];
        let n = self.file.pread(off, &mut buf).map_err(host_err)?;
        dst.copy_in(&buf[..n]);
        Ok(n)
    }
    fn write_frames(&self, _f: &OpenFile, off: u64, src: &UserFrames) -> KResult<usize> {
        if src.pieces().len() <= MAX_HOST_IOV {
            return self
                .file
                .pwrite_frames(off, src.phys(), src.pieces())
                .map_err(host_err);
        }
        let mut buf = vec![0u8; src.len()];
        src.copy_out(&mut buf);
        self.file.pwrite(off, &buf).map_err(host_err)
    }
    fn truncate(&self, len: u64) -> KResult<()> {
        self.file.truncate(len).map_err(host_err)
    }
    fn sync(&self, data_only: bool) -> KResult<()> {
        self.file.sync(data_only).map_err(host_err)
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        Ok(self.key)
    }
    fn fallocate(&self, mode: u32, off: u64, len: u64) -> KResult<()> {
        self.file.fallocate(mode, off, len).map_err(host_err)
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        None
    }
}

/// An open hostfs directory: positions are the host's cookies.
/// `file` is None for directories on host pseudo filesystems, which list
/// only "." and "..".
struct HostDirFile {
    file: Option<HostFile>,
    st: HostStat,
}

impl FileOps for HostDirFile {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EISDIR)
    }
    fn llseek(&self, pos: u64, off: i64, whence: u32) -> Option<KResult<u64>> {
        match &self.file {
            Some(f) => Some(f.lseek(off, whence as i32).map_err(host_err)),
            None => Some(match whence {
                0 if off >= 0 => Ok(off as u64),
                1 => (pos as i64)
                    .checked_add(off)
                    .filter(|&n| n >= 0)
                    .map(|n| n as u64)
                    .ok_or(crate::errno!(EINVAL)),
                _ => error!(EINVAL),
            }),
        }
    }
    fn stat(&self) -> Option<KResult<Stat>> {
        self.file
            .as_ref()
            .map(|f| f.stat().map(|s| to_stat(&s)).map_err(host_err))
    }
    fn getdents(&self, _f: &OpenFile, pos: &mut u64, sink: &mut DirSink) -> KResult<()> {
        let Some(file) = &self.file else {
            // A host pseudo filesystem: "." and ".." only.
            let names: [&[u8]; 2] = [b".", b".."];
            while (*pos as usize) < names.len() {
                if !sink.push(
                    self.st.ino,
                    *pos as i64 + 1,
                    FileType::Directory.dirent_type(),
                    names[*pos as usize],
                ) {
                    break;
                }
                *pos += 1;
            }
            if sink.is_empty() && (*pos as usize) < names.len() {
                return error!(EINVAL);
            }
            return Ok(());
        };
        // The host's records have the same size as ours: ask for exactly
        // what fits and copy them in order.
        let mut hbuf = vec![0u8; sink.remaining()];
        let n = file.getdents64(&mut hbuf).map_err(host_err)?;
        let mut at = 0usize;
        let mut last_off: Option<i64> = None;
        while at + 19 <= n {
            let rec = &hbuf[at..n];
            let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap_or_default());
            let off = i64::from_ne_bytes(rec[8..16].try_into().unwrap_or_default());
            let reclen = u16::from_ne_bytes(rec[16..18].try_into().unwrap_or_default()) as usize;
            if reclen < 20 || reclen > rec.len() {
                break;
            }
            let d_type = rec[18];
            let name_area = &rec[19..reclen];
            let nlen = name_area
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(name_area.len());
            if !sink.push(ino, off, d_type, &name_area[..nlen]) {
                // Cannot happen (same sizes); rewind the host to the entry.
                if let Some(o) = last_off {
                    let _ = file.lseek(o, 0);
                } else {
                    return error!(EINVAL);
                }
                break;
            }
            last_off = Some(off);
            at += reclen;
        }
        if let Some(o) = last_off {
            *pos = o as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ruml-hostfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The overlay's lower layer answers repeated stats and lookups
    /// (positive and negative) from its cache; a change on the host shows
    /// once the entry expires. Other hostfs instances ask the host each
    /// time.
    #[test]
    fn attr_cache_spares_host_lookups() {
        let dir = temp_dir("cache");
        std::fs::write(dir.join("f"), b"abc").unwrap();
        let caller = Caller::kernel();

        let root = HostFs::open_root_cached(&dir).unwrap();
        let f = root.lookup(b"f", &caller).unwrap();
        let n0 = root.fs.host_lookups();
        for _ in 0..10 {
            assert_eq!(f.stat().unwrap().size, 3);
            assert!(root.lookup(b"f", &caller).is_ok());
        }
        for _ in 0..10 {
            assert_eq!(root.lookup(b"missing", &caller).err(), Some(Errno::ENOENT));
        }
        // At most one more host lookup (the negative one), or two if the
        // first entry expired on a very slow machine.
        let extra = root.fs.host_lookups() - n0;
        assert!((1..=3).contains(&extra), "{extra} host lookups");

        std::fs::write(dir.join("f"), b"abcdef").unwrap();
        std::fs::write(dir.join("missing"), b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_nanos(ATTR_TTL_NS + 100_000_000));
        assert_eq!(f.stat().unwrap().size, 6);
        assert!(root.lookup(b"missing", &caller).is_ok());

        let plain = HostFs::open_root(&dir, true).unwrap();
        let g = plain.lookup(b"f", &caller).unwrap();
        let n1 = plain.fs.host_lookups();
        for _ in 0..5 {
            g.stat().unwrap();
        }
        assert_eq!(plain.fs.host_lookups() - n1, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Opens for reading on the overlay's lower layer share one host
    /// descriptor per host inode: a change of the file's data on the host
    /// shows at once (same inode), a file replaced on the host (a new
    /// inode) is opened afresh once the lookup expires, and a descriptor
    /// already handed out keeps reading the file it opened.
    #[test]
    fn open_cache_shares_descriptor() {
        let dir = temp_dir("opens");
        std::fs::write(dir.join("f"), b"one").unwrap();
        let caller = Caller::kernel();
        let root = HostFs::open_root_cached(&dir).unwrap();
        let f = root.lookup(b"f", &caller).unwrap();
        let hf = HostInode {
            fs: root.fs.clone(),
            rel: b"f".to_vec(),
            st: root.fs.lookup_rel(b"f").unwrap(),
        };
        let a = root.fs.open_read(&hf.rel, hf.expect()).unwrap();
        let b = root.fs.open_read(&hf.rel, hf.expect()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(f.open(O_RDONLY, &caller).is_ok());
        let mut buf = [0u8; 8];
        std::fs::write(dir.join("f"), b"two").unwrap();
        assert_eq!(b.pread(0, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");

        std::fs::write(dir.join("g"), b"three").unwrap();
        std::fs::rename(dir.join("g"), dir.join("f")).unwrap();
        std::thread::sleep(std::time::Duration::from_nanos(ATTR_TTL_NS + 100_000_000));
        let st = root.fs.lookup_rel(b"f").unwrap();
        assert_ne!(st.ino, hf.st.ino);
        let c = root
            .fs
            .open_read(b"f", (st.dev_major, st.dev_minor, st.ino))
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.pread(0, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"three");
        assert_eq!(a.pread(0, &mut buf).unwrap(), 3);
        // The old inode is gone from the cache's view: ESTALE, not its data.
        assert!(root.fs.open_read(b"f", hf.expect()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
