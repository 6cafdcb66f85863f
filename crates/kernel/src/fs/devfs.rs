//! devfs, mounted at /dev: null, zero, full, random, urandom, tty (the
//! caller's controlling terminal), console, ptmx (a new pseudo-terminal
//! each open), the stdin/stdout/stderr/fd symlinks into /proc/self/fd,
//! /dev/ptmx, and pts/ (where boot mounts devpts).
//!
//! Devices are global objects: every devfs instance shares them. Nodes are
//! immutable; /dev is writable only in the sense that devices accept
//! writes (creating files in /dev gives EPERM).

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{now, Meta, StaticDir, StaticLink};
use crate::fs::types::{FileType, Stat, StatFs, S_IFCHR};
use crate::fs::vfs::{anon_dev, Caller, FileOps, Inode, InodeKey};

/// devtmpfs reports TMPFS_MAGIC.
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    Tty,
    Console,
    /// /dev/ttyN: N = 0 is the console's terminal, 1.. the virtual
    /// consoles con1=... (fs/vcons.rs).
    Vc(u32),
}

impl Dev {
    /// (major, minor) as on Linux.
    fn rdev(self) -> (u32, u32) {
        match self {
            Dev::Null => (1, 3),
            Dev::Zero => (1, 5),
            Dev::Full => (1, 7),
            Dev::Random => (1, 8),
            Dev::Urandom => (1, 9),
            Dev::Tty => (5, 0),
            Dev::Console => (5, 1),
            Dev::Vc(n) => (4, n),
        }
    }
    fn perm(self) -> u32 {
        match self {
            Dev::Console => 0o600,
            Dev::Vc(_) => 0o620,
            _ => 0o666,
        }
    }
    /// The group owning the node (tty's 5 for terminals).
    fn gid(self) -> u32 {
        match self {
            Dev::Tty | Dev::Vc(_) => 5,
            _ => 0,
        }
    }
}

struct DevNode {
    meta: Meta,
    dev: Dev,
    attrs: DevAttrs,
}

/// The owner, permission bits and times of a device node, which chown,
/// chmod and utimensat change (devtmpfs keeps them in its inode: a getty
/// chowns and chmods its terminal, as agetty and login do). Locking: one
/// mutex per node, held only to copy or update the fields.
pub struct DevAttrs(std::sync::Mutex<DevAttrState>);

#[derive(Clone, Copy)]
struct DevAttrState {
    perm: u32,
    uid: u32,
    gid: u32,
    atime: (i64, u32),
    mtime: (i64, u32),
    ctime: (i64, u32),
}

impl DevAttrs {
    pub fn new(perm: u32, uid: u32, gid: u32, time: (i64, u32)) -> DevAttrs {
        DevAttrs(std::sync::Mutex::new(DevAttrState {
            perm,
            uid,
            gid,
            atime: time,
            mtime: time,
            ctime: time,
        }))
    }

    fn get(&self) -> DevAttrState {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stat of the node with these attributes.
    pub fn apply(&self, st: &mut Stat) {
        let a = self.get();
        st.mode = (st.mode & !0o7777) | a.perm;
        st.uid = a.uid;
        st.gid = a.gid;
        st.atime = a.atime;
        st.mtime = a.mtime;
        st.ctime = a.ctime;
    }

    /// setattr of a device node: mode, owner and times; a size is EINVAL
    /// (truncate(2) of a character device).
    pub fn setattr(&self, a: &crate::fs::vfs::SetAttr) -> KResult<()> {
        if a.size.is_some() {
            return error!(EINVAL);
        }
        let t = now();
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = a.mode {
            st.perm = m & 0o7777;
        }
        if let Some(u) = a.uid {
            st.uid = u;
        }
        if let Some(g) = a.gid {
            st.gid = g;
        }
        if a.kill_suid {
            st.perm &= !0o4000;
            if st.perm & 0o010 != 0 {
                st.perm &= !0o2000;
            }
        }
        if let Some(at) = a.atime {
            st.atime = at.resolve(t);
        }
        if let Some(mt) = a.mtime {
            st.mtime = mt.resolve(t);
        }
        st.ctime = t;
        Ok(())
    }
}

impl Inode for DevNode {
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.meta.stat(S_IFCHR | self.dev.perm(), 1, 0);
        st.rdev = self.dev.rdev();
        self.attrs.apply(&mut st);
        Ok(st)
    }
    fn setattr(&self, a: &crate::fs::vfs::SetAttr) -> KResult<()> {
        self.attrs.setattr(a)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        open_dev(self.dev, flags, caller)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Opens the character device `rdev` for a node made with mknod on any
/// filesystem (tmpfs, the overlay, ext2): the same device as devfs's node
/// of that number, so a mknod'ed (1, 3) is /dev/null. Numbers ruml has no
/// driver for give ENXIO, as Linux's chrdev_open for an unregistered
/// major.
pub fn open_chrdev(rdev: (u32, u32), flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
    let dev = match rdev {
        (1, 3) => Dev::Null,
        (1, 5) => Dev::Zero,
        (1, 7) => Dev::Full,
        (1, 8) => Dev::Random,
        (1, 9) => Dev::Urandom,
        (5, 0) => Dev::Tty,
        (5, 1) => Dev::Console,
        (5, 2) => return crate::fs::pty::open_ptmx(caller.fsuid()),
        (4, n) if n < 64 => Dev::Vc(n),
        (136..=143, n) => {
            let index = (rdev.0 - 136) * 256 + n;
            let tty = crate::fs::pty::slave_tty(index).ok_or(crate::errno!(ENXIO))?;
            return crate::fs::pty::open_slave(&tty, flags, caller.tgid);
        }
        _ => return error!(ENXIO),
    };
    open_dev(dev, flags, caller)
}

fn open_dev(dev: Dev, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
    Ok(match dev {
        Dev::Tty => crate::fs::console::open_ctty(caller.tgid, flags)?,
        Dev::Console | Dev::Vc(0) => crate::fs::console::opened(),
        Dev::Vc(n) => crate::fs::vcons::open(n, flags, caller.tgid)?,
        d => Arc::new(MemDev(d)),
    })
}

/// null, zero, full, random, urandom.
struct MemDev(Dev);

impl FileOps for MemDev {
    fn read(&self, _f: &OpenFile, _off: u64, buf: &mut [u8]) -> KResult<usize> {
        match self.0 {
            Dev::Null => Ok(0),
            Dev::Random | Dev::Urandom => {
                ruml_host::clock::random_bytes(buf);
                Ok(buf.len())
            }
            _ => {
                buf.fill(0);
                Ok(buf.len())
            }
        }
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        match self.0 {
            Dev::Full => error!(ENOSPC),
            _ => Ok(buf.len()),
        }
    }
    /// lseek on these always succeeds and reports 0 (Linux's noop_llseek
    /// for null/zero/full, and random's too).
    fn llseek(&self, _pos: u64, _off: i64, _whence: u32) -> Option<KResult<u64>> {
        Some(Ok(0))
    }
}

/// Builds a devfs root directory.
pub fn new_devfs() -> Arc<dyn Inode> {
    let meta = Meta {
        dev: anon_dev(),
        ino: 1,
        magic: TMPFS_MAGIC,
        time: now(),
        read_only: false,
    };
    let mut ino = 1;
    let mut next = || {
        ino += 1;
        meta.with_ino(ino)
    };
    let mut children: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
    for (name, dev) in [
        ("console", Dev::Console),
        ("full", Dev::Full),
        ("null", Dev::Null),
        ("random", Dev::Random),
        ("tty", Dev::Tty),
        ("urandom", Dev::Urandom),
        ("zero", Dev::Zero),
    ] {
        let meta = next();
        let attrs = DevAttrs::new(dev.perm(), 0, dev.gid(), meta.time);
        children.push((
            name.as_bytes().to_vec(),
            Arc::new(DevNode { meta, dev, attrs }),
        ));
    }
    for n in 0..crate::fs::vcons::MAX_CONSOLES {
        let (meta, dev) = (next(), Dev::Vc(n));
        let attrs = DevAttrs::new(dev.perm(), 0, dev.gid(), meta.time);
        children.push((
            format!("tty{n}").into_bytes(),
            Arc::new(DevNode { meta, dev, attrs }),
        ));
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stderr", "/proc/self/fd/2"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
    ] {
        children.push((
            name.as_bytes().to_vec(),
            Arc::new(StaticLink {
                meta: next(),
                target: target.as_bytes().to_vec(),
            }),
        ));
    }
    children.push((
        b"ptmx".to_vec(),
        Arc::new(crate::fs::pty::PtmxNode {
            meta: next(),
            perm: 0o666,
        }),
    ));
    children.push((
        b"pts".to_vec(),
        Arc::new(StaticDir {
            meta: next(),
            perm: 0o755,
            children: Vec::new(),
        }),
    ));
    // Where boot mounts a tmpfs for POSIX shared memory (shm_open, sem_open).
    children.push((
        b"shm".to_vec(),
        Arc::new(StaticDir {
            meta: next(),
            perm: 0o1777,
            children: Vec::new(),
        }),
    ));
    children.push((
        b"loop-control".to_vec(),
        Arc::new(crate::block::loopdev::LoopControlNode { meta: next() }),
    ));
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Arc::new(DevRoot {
        dir: StaticDir {
            meta,
            perm: 0o755,
            children,
        },
    })
}

/// /dev itself: the fixed nodes plus one block device node per
/// registered disk (ubda, loop0, ...), which come and go with
/// LOOP_CTL_ADD/REMOVE. Block nodes' inode numbers are derived from the
/// device number, so they are stable.
struct DevRoot {
    dir: StaticDir,
}

impl DevRoot {
    fn block_node(&self, d: &crate::block::Disk) -> Arc<dyn Inode> {
        let ino = 0x1_0000_0000 | (d.rdev.0 as u64) << 20 | d.rdev.1 as u64;
        Arc::new(crate::block::BlockNode {
            meta: self.dir.meta.with_ino(ino),
            rdev: d.rdev,
        })
    }
}

impl Inode for DevRoot {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.dir.key()
    }
    fn stat(&self) -> KResult<Stat> {
        self.dir.stat()
    }
    fn statfs(&self) -> KResult<StatFs> {
        self.dir.statfs()
    }
    fn lookup(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        match self.dir.lookup(name, caller) {
            Err(e) if e == crate::errno::Errno::ENOENT => match crate::block::by_name(name) {
                Some(d) => Ok(self.block_node(&d)),
                None => Err(e),
            },
            r => r,
        }
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let mut entries = vec![
            (
                self.dir.meta.ino,
                FileType::Directory.dirent_type(),
                b".".to_vec(),
            ),
            (
                self.dir.meta.ino,
                FileType::Directory.dirent_type(),
                b"..".to_vec(),
            ),
        ];
        let _ = (flags, caller);
        for (name, i) in &self.dir.children {
            entries.push((i.key().1, i.file_type().dirent_type(), name.clone()));
        }
        for d in crate::block::all() {
            let n = self.block_node(&d);
            entries.push((
                n.key().1,
                FileType::BlockDevice.dirent_type(),
                d.name.clone().into_bytes(),
            ));
        }
        Ok(Arc::new(crate::fs::simple::SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A read-only empty directory: /sys for now.
pub fn new_empty_fs(magic: i64) -> Arc<dyn Inode> {
    let meta = Meta {
        dev: anon_dev(),
        ino: 1,
        magic,
        time: now(),
        read_only: true,
    };
    Arc::new(StaticDir {
        meta,
        perm: 0o555,
        children: Vec::new(),
    })
}
