//! A minimal procfs at /proc: `self` (-> the caller's pid) and the caller's
//! own `/proc/<pid>/` with `fd/` (magic links to its open files), `cwd` and
//! `root`. Other pids and the system files (/proc/mounts, meminfo, ...)
//! are later work (issue 4). Inodes are made per lookup and answer for the
//! calling task; a /proc/<pid> of another process gives ENOENT for now.
//! Immutable; no locking of its own.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::simple::{now, Meta, SynthDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFDIR, S_IFLNK};
use crate::fs::vfs::{anon_dev, d_path, Caller, FileOps, Inode, InodeKey, Link};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

fn meta_for(base: &Meta, ino: u64) -> Meta {
    base.with_ino(ino)
}

fn pid_ino(tgid: i32, sub: u64) -> u64 {
    ((tgid as u32 as u64) << 16) | sub
}

/// Builds a procfs root.
pub fn new_procfs() -> Arc<dyn Inode> {
    Arc::new(ProcRoot { meta: Meta { dev: anon_dev(), ino: 1, magic: PROC_SUPER_MAGIC, time: now(), read_only: false } })
}

struct ProcRoot {
    meta: Meta,
}

fn parse_pid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || name[0] == b'0' || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

impl Inode for ProcRoot {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o555, 3, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if name == b"self" {
            return Ok(Arc::new(ProcSelf { meta: meta_for(&self.meta, 2) }));
        }
        match parse_pid(name) {
            Some(pid) if pid == caller.tgid && caller.task.is_some() => {
                Ok(Arc::new(PidDir { meta: meta_for(&self.meta, pid_ino(pid, 1)), tgid: pid }))
            }
            _ => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![(1, d, b".".to_vec()), (1, d, b"..".to_vec())];
        if caller.task.is_some() {
            entries.push((pid_ino(caller.tgid, 1), d, caller.tgid.to_string().into_bytes()));
        }
        entries.push((2, FileType::Symlink.dirent_type(), b"self".to_vec()));
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/self.
struct ProcSelf {
    meta: Meta,
}

impl Inode for ProcSelf {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFLNK | 0o777, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, caller: &Caller<'_>) -> KResult<Vec<u8>> {
        if caller.task.is_none() {
            return error!(ENOENT);
        }
        Ok(caller.tgid.to_string().into_bytes())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/<pid>.
struct PidDir {
    meta: Meta,
    tgid: i32,
}

impl Inode for PidDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o555, 3, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if caller.tgid != self.tgid {
            return error!(ENOENT);
        }
        match name {
            b"fd" => Ok(Arc::new(FdDir { meta: meta_for(&self.meta, pid_ino(self.tgid, 2)), tgid: self.tgid })),
            b"cwd" => Ok(Arc::new(TaskLink { meta: meta_for(&self.meta, pid_ino(self.tgid, 3)), tgid: self.tgid, what: What::Cwd })),
            b"root" => Ok(Arc::new(TaskLink { meta: meta_for(&self.meta, pid_ino(self.tgid, 4)), tgid: self.tgid, what: What::Root })),
            b"exe" => Ok(Arc::new(TaskLink { meta: meta_for(&self.meta, pid_ino(self.tgid, 5)), tgid: self.tgid, what: What::Exe })),
            _ => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let l = FileType::Symlink.dirent_type();
        let entries = vec![
            (self.meta.ino, d, b".".to_vec()),
            (1, d, b"..".to_vec()),
            (pid_ino(self.tgid, 3), l, b"cwd".to_vec()),
            (pid_ino(self.tgid, 5), l, b"exe".to_vec()),
            (pid_ino(self.tgid, 2), d, b"fd".to_vec()),
            (pid_ino(self.tgid, 4), l, b"root".to_vec()),
        ];
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/<pid>/fd.
struct FdDir {
    meta: Meta,
    tgid: i32,
}

impl Inode for FdDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o500, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let Some(task) = caller.task.filter(|_| caller.tgid == self.tgid) else {
            return error!(ENOENT);
        };
        let fd = match name {
            b"0" => 0,
            _ => parse_pid(name).ok_or(crate::errno!(ENOENT))?,
        };
        task.files().get(fd).map_err(|_| crate::errno!(ENOENT))?;
        Ok(Arc::new(TaskLink { meta: meta_for(&self.meta, pid_ino(self.tgid, 0x100) + fd as u64), tgid: self.tgid, what: What::Fd(fd) }))
    }
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![(self.meta.ino, d, b".".to_vec()), (pid_ino(self.tgid, 1), d, b"..".to_vec())];
        if let Some(task) = caller.task.filter(|_| caller.tgid == self.tgid) {
            for fd in task.files().fds() {
                entries.push((pid_ino(self.tgid, 0x100) + fd as u64, FileType::Symlink.dirent_type(), fd.to_string().into_bytes()));
            }
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

enum What {
    Fd(i32),
    Cwd,
    Root,
    Exe,
}

/// A magic link: /proc/<pid>/fd/N, cwd, root.
struct TaskLink {
    meta: Meta,
    tgid: i32,
    what: What,
}

impl TaskLink {
    fn target(&self, caller: &Caller<'_>) -> KResult<(crate::fs::vfs::Path, crate::fs::vfs::Path)> {
        let Some(task) = caller.task.filter(|_| caller.tgid == self.tgid) else {
            return error!(ENOENT);
        };
        let fs = task.fs();
        let root = fs.root();
        let p = match self.what {
            What::Fd(fd) => task.files().get(fd).map_err(|_| crate::errno!(ENOENT))?.path.clone(),
            What::Cwd => fs.cwd(),
            What::Root => root.clone(),
            What::Exe => task.exe.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or(crate::errno!(ENOENT))?,
        };
        Ok((p, root))
    }
}

impl Inode for TaskLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let perm = if matches!(self.what, What::Fd(_)) { 0o700 } else { 0o777 };
        Ok(self.meta.stat(S_IFLNK | perm, 1, 64))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, caller: &Caller<'_>) -> KResult<Vec<u8>> {
        let (p, root) = self.target(caller)?;
        Ok(d_path(&p, &root))
    }
    fn get_link(&self, caller: &Caller<'_>) -> KResult<Link> {
        Ok(Link::Jump(self.target(caller)?.0))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
