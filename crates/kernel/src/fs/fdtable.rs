//! Descriptor tables.
//!
//! An [`FdTable`] maps descriptor numbers to shared [`OpenFile`]s plus a
//! per-descriptor FD_CLOEXEC bit. One Mutex guards the table; it is never
//! held while a file is used or dropped (closing the last reference to a
//! pipe end wakes other tasks, which may take their own tables' locks).
//! Threads share a table (`Arc`); fork copies it ([`FdTable::fork_copy`]).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::FileRef;

/// RLIMIT_NOFILE's default soft limit.
pub const DEFAULT_NOFILE: usize = 1024;

#[derive(Clone)]
struct Slot {
    file: FileRef,
    cloexec: bool,
}

struct Inner {
    slots: Vec<Option<Slot>>,
    limit: usize,
}

/// A descriptor table; see the module doc.
pub struct FdTable {
    inner: Mutex<Inner>,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable {
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                limit: DEFAULT_NOFILE,
            }),
        }
    }
}

impl FdTable {
    pub fn new() -> Arc<FdTable> {
        Arc::new(FdTable::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// fork: the same open files under the same numbers, in a new table.
    pub fn fork_copy(&self) -> Arc<FdTable> {
        let inner = self.lock();
        Arc::new(FdTable {
            inner: Mutex::new(Inner {
                slots: inner.slots.clone(),
                limit: inner.limit,
            }),
        })
    }

    /// execve: closes every FD_CLOEXEC descriptor.
    pub fn close_on_exec(&self) {
        let dropped: Vec<Slot> = {
            let mut inner = self.lock();
            inner
                .slots
                .iter_mut()
                .filter(|s| s.as_ref().is_some_and(|s| s.cloexec))
                .filter_map(Option::take)
                .collect()
        };
        drop(dropped);
    }

    /// Task exit: closes everything.
    pub fn close_all(&self) {
        let dropped = std::mem::take(&mut self.lock().slots);
        drop(dropped);
    }

    /// The file under `fd`; EBADF.
    pub fn get(&self, fd: i32) -> KResult<FileRef> {
        if fd < 0 {
            return error!(EBADF);
        }
        match self.lock().slots.get(fd as usize) {
            Some(Some(s)) => Ok(s.file.clone()),
            _ => error!(EBADF),
        }
    }

    /// The FD_CLOEXEC bit of `fd`.
    pub fn get_cloexec(&self, fd: i32) -> KResult<bool> {
        if fd < 0 {
            return error!(EBADF);
        }
        match self.lock().slots.get(fd as usize) {
            Some(Some(s)) => Ok(s.cloexec),
            _ => error!(EBADF),
        }
    }

    /// Sets the FD_CLOEXEC bit of `fd`.
    pub fn set_cloexec(&self, fd: i32, on: bool) -> KResult<()> {
        if fd < 0 {
            return error!(EBADF);
        }
        match self.lock().slots.get_mut(fd as usize) {
            Some(Some(s)) => {
                s.cloexec = on;
                Ok(())
            }
            _ => error!(EBADF),
        }
    }

    /// Installs `file` under the lowest free number >= `min`; EMFILE when
    /// none is below the limit (EINVAL if `min` itself is beyond it, as
    /// F_DUPFD says).
    pub fn alloc_from(&self, min: usize, file: FileRef, cloexec: bool) -> KResult<i32> {
        let mut inner = self.lock();
        if min >= inner.limit {
            return error!(EINVAL);
        }
        let start = min.min(inner.slots.len());
        let free = (start..inner.slots.len()).find(|&i| i >= min && inner.slots[i].is_none());
        let fd = match free {
            Some(i) => i,
            None => inner.slots.len().max(min),
        };
        if fd >= inner.limit {
            return error!(EMFILE);
        }
        if fd >= inner.slots.len() {
            inner.slots.resize(fd + 1, None);
        }
        inner.slots[fd] = Some(Slot { file, cloexec });
        Ok(fd as i32)
    }

    /// Installs `file` under the lowest free number.
    pub fn alloc(&self, file: FileRef, cloexec: bool) -> KResult<i32> {
        self.alloc_from(0, file, cloexec).map_err(|e| {
            if e == crate::errno::Errno::EINVAL {
                crate::errno!(EMFILE)
            } else {
                e
            }
        })
    }

    /// Installs two files (pipe): both or neither.
    pub fn alloc_pair(&self, a: FileRef, b: FileRef, cloexec: bool) -> KResult<(i32, i32)> {
        let fa = self.alloc(a, cloexec)?;
        match self.alloc(b, cloexec) {
            Ok(fb) => Ok((fa, fb)),
            Err(e) => {
                let _ = self.close(fa);
                Err(e)
            }
        }
    }

    /// dup2/dup3: puts `file` under `fd`, closing what was there.
    /// EBADF if `fd` is beyond the limit.
    pub fn install_at(&self, fd: i32, file: FileRef, cloexec: bool) -> KResult<()> {
        let old = {
            let mut inner = self.lock();
            if fd < 0 || fd as usize >= inner.limit {
                return error!(EBADF);
            }
            let i = fd as usize;
            if i >= inner.slots.len() {
                inner.slots.resize(i + 1, None);
            }
            inner.slots[i].replace(Slot { file, cloexec })
        };
        drop(old);
        Ok(())
    }

    /// close(2).
    pub fn close(&self, fd: i32) -> KResult<()> {
        if fd < 0 {
            return error!(EBADF);
        }
        let old = self
            .lock()
            .slots
            .get_mut(fd as usize)
            .and_then(Option::take);
        match old {
            Some(s) => {
                drop(s);
                Ok(())
            }
            None => error!(EBADF),
        }
    }

    /// close_range: closes (or, with `cloexec_only`, marks FD_CLOEXEC)
    /// descriptors first..=last.
    pub fn close_range(&self, first: u32, last: u32, cloexec_only: bool) {
        let dropped: Vec<Slot> = {
            let mut inner = self.lock();
            let end = (last as usize).saturating_add(1).min(inner.slots.len());
            let begin = (first as usize).min(end);
            if cloexec_only {
                for s in inner.slots[begin..end].iter_mut().flatten() {
                    s.cloexec = true;
                }
                Vec::new()
            } else {
                inner.slots[begin..end]
                    .iter_mut()
                    .filter_map(Option::take)
                    .collect()
            }
        };
        drop(dropped);
    }

    /// Open descriptor numbers, ascending (for /proc/self/fd).
    pub fn fds(&self) -> Vec<i32> {
        self.lock()
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as i32)
            .collect()
    }

    /// RLIMIT_NOFILE soft limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// setrlimit(RLIMIT_NOFILE).
    pub fn set_limit(&self, n: usize) {
        self.lock().limit = n.max(1);
    }
}

/// Root, cwd and umask of a task (Linux's fs_struct); shared by CLONE_FS
/// threads, copied by fork. One Mutex; held only to copy a path out.
pub struct FsContext {
    pub ns: Arc<crate::fs::vfs::Namespace>,
    inner: Mutex<FsState>,
}

#[derive(Clone)]
struct FsState {
    root: crate::fs::vfs::Path,
    cwd: crate::fs::vfs::Path,
    umask: u32,
}

impl FsContext {
    /// A context at the namespace root, umask 022.
    pub fn new(ns: Arc<crate::fs::vfs::Namespace>) -> Arc<FsContext> {
        let root = ns.root();
        Arc::new(FsContext {
            ns,
            inner: Mutex::new(FsState {
                cwd: root.clone(),
                root,
                umask: 0o022,
            }),
        })
    }

    /// A context in mount namespace `ns` with the given root and cwd
    /// (unshare(CLONE_NEWNS), setns: fs/mntns.rs).
    pub fn with(
        ns: Arc<crate::fs::vfs::Namespace>,
        root: crate::fs::vfs::Path,
        cwd: crate::fs::vfs::Path,
        umask: u32,
    ) -> Arc<FsContext> {
        Arc::new(FsContext {
            ns,
            inner: Mutex::new(FsState { root, cwd, umask }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FsState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// fork without CLONE_FS.
    pub fn fork_copy(&self) -> Arc<FsContext> {
        let st = self.lock().clone();
        Arc::new(FsContext {
            ns: self.ns.clone(),
            inner: Mutex::new(st),
        })
    }

    pub fn root(&self) -> crate::fs::vfs::Path {
        self.lock().root.clone()
    }
    pub fn cwd(&self) -> crate::fs::vfs::Path {
        self.lock().cwd.clone()
    }
    pub fn set_cwd(&self, p: crate::fs::vfs::Path) {
        self.lock().cwd = p;
    }
    pub fn set_root(&self, p: crate::fs::vfs::Path) {
        self.lock().root = p;
    }
    pub fn umask(&self) -> u32 {
        self.lock().umask
    }
    /// umask(2): sets, returns the old one.
    pub fn swap_umask(&self, new: u32) -> u32 {
        std::mem::replace(&mut self.lock().umask, new & 0o777)
    }
}
