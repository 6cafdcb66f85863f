//! Building blocks for in-memory filesystems (devfs, sysfs, procfs):
//! fixed directories, fixed symlinks, and a directory listing helper.
//! All are immutable after construction: no locking.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::types::{encode_dev, DirSink, FileType, Stat, StatFs, S_IFDIR, S_IFLNK};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

/// CLOCK_REALTIME now as guests read it, for inode times.
pub fn now() -> (i64, u32) {
    crate::vdso::realtime()
}

/// What every synthetic inode knows about itself.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub dev: (u32, u32),
    pub ino: u64,
    pub magic: i64,
    pub time: (i64, u32),
    pub read_only: bool,
}

impl Meta {
    pub fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), self.ino)
    }
    pub fn stat(&self, mode: u32, nlink: u64, size: u64) -> Stat {
        Stat {
            dev: self.dev,
            ino: self.ino,
            mode,
            nlink,
            size,
            blksize: 4096,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            ..Default::default()
        }
    }
    pub fn statfs(&self) -> StatFs {
        let mut s = StatFs::pseudo(self.magic);
        if self.read_only {
            s.flags |= crate::fs::types::ST_RDONLY;
        }
        s
    }
    /// The same filesystem, another inode number.
    pub fn with_ino(&self, ino: u64) -> Meta {
        Meta { ino, ..*self }
    }
}

/// A directory with a fixed list of children.
pub struct StaticDir {
    pub meta: Meta,
    pub perm: u32,
    pub children: Vec<(Vec<u8>, Arc<dyn Inode>)>,
}

impl Inode for StaticDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let subdirs = self
            .children
            .iter()
            .filter(|(_, i)| i.file_type() == FileType::Directory)
            .count() as u64;
        Ok(self.meta.stat(S_IFDIR | self.perm, 2 + subdirs, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        match self.children.iter().find(|(n, _)| n == name) {
            Some((_, i)) => Ok(i.clone()),
            None => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let mut entries = vec![
            (
                self.meta.ino,
                FileType::Directory.dirent_type(),
                b".".to_vec(),
            ),
            (
                self.meta.ino,
                FileType::Directory.dirent_type(),
                b"..".to_vec(),
            ),
        ];
        for (name, i) in &self.children {
            entries.push((i.key().1, i.file_type().dirent_type(), name.clone()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Makes a [`TableDir`]'s child called `name`, its inode number taken
/// from the table; `meta` is the directory's.
pub type MakeChild = Box<dyn Fn(&[u8], &Meta) -> Option<Arc<dyn Inode>> + Send + Sync>;

/// A read-only (0555) directory listing a fixed table of entries — name,
/// inode number, type — whose children are made on lookup (procfs's
/// sysctl directories, /proc/sys/fs/mqueue, /proc/sysvipc). Built per
/// lookup of it; holds no lock.
pub struct TableDir {
    pub meta: Meta,
    /// What ".." lists.
    pub parent_ino: u64,
    pub entries: Vec<(&'static str, u64, FileType)>,
    pub make: MakeChild,
}

impl Inode for TableDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o555, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        (self.make)(name, &self.meta).ok_or(crate::errno!(ENOENT))
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![
            (self.meta.ino, d, b".".to_vec()),
            (self.parent_ino, d, b"..".to_vec()),
        ];
        for &(n, ino, t) in &self.entries {
            entries.push((ino, t.dirent_type(), n.as_bytes().to_vec()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A symlink with fixed text.
pub struct StaticLink {
    pub meta: Meta,
    pub target: Vec<u8>,
}

impl Inode for StaticLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFLNK | 0o777, 1, self.target.len() as u64))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        Ok(self.target.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open directory listing a snapshot of entries: (ino, d_type, name).
/// Positions are entry indices.
pub struct SynthDir {
    pub entries: Vec<(u64, u8, Vec<u8>)>,
}

impl FileOps for SynthDir {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EISDIR)
    }
    fn getdents(&self, _f: &OpenFile, pos: &mut u64, sink: &mut DirSink) -> KResult<()> {
        while let Some((ino, t, name)) = self.entries.get(*pos as usize) {
            if !sink.push(*ino, *pos as i64 + 1, *t, name) {
                if sink.is_empty() {
                    return error!(EINVAL);
                }
                break;
            }
            *pos += 1;
        }
        Ok(())
    }
}
