//! The namespace parts of procfs: which PID namespace a procfs instance
//! shows (the mounter's, fixed at mount time, as Linux), /proc/PID/ns/*
//! (magic links to nsfs: readlink gives `uts:[4026531838]`, open gives a
//! file setns and the NS_GET_* ioctls take), and /proc/PID/uid_map,
//! gid_map and setgroups with Linux's write rules (task/ns.rs).
//!
//! Each procfs instance's PID namespace is kept in one registry keyed by
//! the instance's device number (weakly: the registry never keeps a
//! namespace alive); a mutex held only for the lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{Meta, SynthDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFDIR, S_IFLNK, S_IFREG};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey, Link};
use crate::task::ns::{self, MapKind, NsKind, PidNs};
use crate::task::Task;

type Registry = HashMap<(u32, u32), Weak<PidNs>>;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A procfs instance (device `dev`) shows PID namespace `ns`.
pub fn register(dev: (u32, u32), ns: &Arc<PidNs>) {
    if ns.is_root() {
        return;
    }
    let mut r = registry();
    r.retain(|_, w| w.strong_count() > 0);
    r.insert(dev, Arc::downgrade(ns));
}

/// The PID namespace the procfs instance with device `dev` shows.
pub fn view(dev: (u32, u32)) -> Arc<PidNs> {
    registry()
        .get(&dev)
        .and_then(|w| w.upgrade())
        .unwrap_or_else(ns::root_pid)
}

/// /proc/PID/ns.
pub struct NsDir {
    pub meta: Meta,
    pub task: Arc<Task>,
}

impl Inode for NsDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let st = self.meta.stat(S_IFDIR | 0o511, 2, 0);
        Ok(crate::fs::procfs::pid_owned(st, self.task.tgid()))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let (i, kind) = NsKind::ALL
            .iter()
            .enumerate()
            .find(|(_, k)| k.file_name().as_bytes() == name)
            .ok_or(crate::errno!(ENOENT))?;
        Ok(Arc::new(NsLink {
            meta: self.meta.with_ino(self.meta.ino + 1 + i as u64),
            task: self.task.clone(),
            kind: *kind,
        }))
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let mut entries = vec![
            (
                self.meta.ino,
                FileType::Directory.dirent_type(),
                b".".to_vec(),
            ),
            (1, FileType::Directory.dirent_type(), b"..".to_vec()),
        ];
        for (i, k) in NsKind::ALL.iter().enumerate() {
            entries.push((
                self.meta.ino + 1 + i as u64,
                FileType::Symlink.dirent_type(),
                k.file_name().as_bytes().to_vec(),
            ));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/PID/ns/X: a magic link to the namespace.
struct NsLink {
    meta: Meta,
    task: Arc<Task>,
    kind: NsKind,
}

impl NsLink {
    /// The namespace it names. pid_for_children is ENOENT until that PID
    /// namespace has its init (Linux's pidns_for_children_get).
    fn target(&self) -> KResult<ns::NsRef> {
        let r = ns::task_ns(&self.task, self.kind);
        if let (NsKind::PidForChildren, ns::NsRef::Pid(p)) = (self.kind, &r) {
            if p.init().is_none() {
                return crate::error!(ENOENT);
            }
        }
        Ok(r)
    }
}

impl Inode for NsLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let st = self.meta.stat(S_IFLNK | 0o777, 1, 0);
        Ok(crate::fs::procfs::pid_owned(st, self.task.tgid()))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        Ok(self.target()?.link_text(self.kind).into_bytes())
    }
    fn get_link(&self, _caller: &Caller<'_>) -> KResult<Link> {
        Ok(Link::Jump(ns::ns_path(self.target()?, self.kind)))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Which id file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IdFile {
    Map(MapKind),
    Setgroups,
}

/// /proc/PID/uid_map, gid_map, setgroups.
pub struct IdMapFile {
    pub meta: Meta,
    pub task: Arc<Task>,
    pub which: IdFile,
}

impl Inode for IdMapFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let st = self.meta.stat(S_IFREG | 0o644, 1, 0);
        Ok(crate::fs::procfs::pid_owned(st, self.task.tgid()))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let target = self.task.user_ns();
        let viewer = caller
            .task
            .map(|t| t.user_ns())
            .unwrap_or_else(ns::root_user);
        let text = match self.which {
            IdFile::Map(k) => {
                // Ids are shown from the opener's namespace, or the
                // target's parent when the opener is in the target.
                let from = if Arc::ptr_eq(&viewer, &target) {
                    target.parent.clone().unwrap_or_else(ns::root_user)
                } else {
                    viewer
                };
                target.map_text(k, &from)
            }
            IdFile::Setgroups => target.setgroups_text().to_string(),
        };
        Ok(Arc::new(IdMapOps {
            target,
            which: self.which,
            text: text.into_bytes(),
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct IdMapOps {
    target: Arc<ns::UserNs>,
    which: IdFile,
    text: Vec<u8>,
}

impl FileOps for IdMapOps {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.text.len() as u64) as usize;
        let n = buf.len().min(self.text.len() - off);
        buf[..n].copy_from_slice(&self.text[off..off + n]);
        Ok(n)
    }
    fn write_as(
        &self,
        _f: &OpenFile,
        off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        // One write, from the start (Linux: EINVAL otherwise).
        if off != 0 {
            return error!(EINVAL);
        }
        let Some(task) = task else {
            return error!(EPERM);
        };
        match self.which {
            IdFile::Map(k) => self.target.write_map(k, buf, task)?,
            IdFile::Setgroups => {
                if buf.len() >= 8 {
                    return error!(EINVAL);
                }
                // CAP_SYS_ADMIN over the namespace.
                if !task.privileged_in(&self.target, crate::task::caps::Cap::SysAdmin) {
                    return error!(EPERM);
                }
                self.target.write_setgroups(buf)?
            }
        }
        Ok(buf.len())
    }
}
