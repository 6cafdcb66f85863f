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
        }
    }
    fn perm(self) -> u32 {
        match self {
            Dev::Console => 0o600,
            _ => 0o666,
        }
    }
}

struct DevNode {
    meta: Meta,
    dev: Dev,
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
        if self.dev == Dev::Tty {
            st.gid = 5;
        }
        Ok(st)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        Ok(match self.dev {
            Dev::Tty => crate::fs::console::open_ctty(caller.tgid, flags)?,
            Dev::Console => crate::fs::console::opened(),
            d => Arc::new(MemDev(d)),
        })
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
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
        children.push((
            name.as_bytes().to_vec(),
            Arc::new(DevNode { meta: next(), dev }),
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
