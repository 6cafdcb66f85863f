//! dnotify: fcntl(F_NOTIFY) on a directory descriptor asks for a signal
//! (SIGIO, or the file's F_SETSIG signal with si_fd) when an entry of the
//! directory is read, written, created, deleted, renamed or has its
//! attributes changed. Without DN_MULTISHOT a mark fires once.
//!
//! Marks live in one table (directory inode → marks) behind one mutex,
//! fed by inotify's event points (fs/inotify.rs calls [`child_event`]);
//! an atomic says whether any mark exists, so directories nobody watches
//! pay one load. A mark belongs to an open file description and goes when
//! a descriptor of it is closed or it is freed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::inotify::{
    IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO,
};
use crate::fs::types::FileType;
use crate::fs::vfs::InodeKey;
use crate::syscalls::SyscallContext;

pub const F_NOTIFY: i32 = 1026;
const DN_ACCESS: u32 = 0x1;
const DN_MODIFY: u32 = 0x2;
const DN_CREATE: u32 = 0x4;
const DN_DELETE: u32 = 0x8;
const DN_RENAME: u32 = 0x10;
const DN_ATTRIB: u32 = 0x20;
const DN_MULTISHOT: u32 = 0x8000_0000;
const DN_ALL: u32 = DN_ACCESS | DN_MODIFY | DN_CREATE | DN_DELETE | DN_RENAME | DN_ATTRIB;

/// Marks on one instance at most (each is an open file description).
const MAX_MARKS: usize = 65536;

struct Mark {
    file: Weak<OpenFile>,
    fd: i32,
    mask: u32,
}

static ANY: AtomicBool = AtomicBool::new(false);

fn marks() -> std::sync::MutexGuard<'static, HashMap<InodeKey, Vec<Mark>>> {
    static T: OnceLock<Mutex<HashMap<InodeKey, Vec<Mark>>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// fcntl(fd, F_NOTIFY, arg).
pub fn fcntl_notify(ctx: &SyscallContext<'_>, f: &FileRef, fd: i32, arg: u64) -> KResult<u64> {
    let arg = arg as u32;
    if arg & !DN_MULTISHOT == 0 {
        remove(f);
        return Ok(0);
    }
    if f.file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    let key = f.path.inode().key();
    {
        let mut t = marks();
        let total: usize = t.values().map(|v| v.len()).sum();
        let list = t.entry(key).or_default();
        list.retain(|m| m.file.strong_count() > 0);
        if let Some(m) = list.iter_mut().find(|m| m.file.as_ptr() == Arc::as_ptr(f)) {
            m.fd = fd;
            m.mask |= arg;
        } else {
            if total >= MAX_MARKS {
                return error!(ENOMEM);
            }
            list.push(Mark {
                file: Arc::downgrade(f),
                fd,
                mask: arg,
            });
        }
        ANY.store(true, Ordering::Release);
    }
    crate::fs::fasync::set_owner(ctx, f);
    Ok(0)
}

fn remove(f: &OpenFile) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let key = f.path.inode().key();
    let mut t = marks();
    if let Some(list) = t.get_mut(&key) {
        list.retain(|m| m.file.strong_count() > 0 && !std::ptr::eq(m.file.as_ptr(), f));
        if list.is_empty() {
            t.remove(&key);
        }
    }
}

/// A descriptor of `f` was closed: its marks go (Linux's dnotify_flush).
pub fn on_close(f: &OpenFile) {
    if f.file_type() == FileType::Directory {
        remove(f);
    }
}

/// Something happened (inotify bits `mask`) to an entry of directory `dir`.
pub fn child_event(dir: InodeKey, mask: u32) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let mut dn = 0;
    if mask & IN_ACCESS != 0 {
        dn |= DN_ACCESS;
    }
    if mask & IN_MODIFY != 0 {
        dn |= DN_MODIFY;
    }
    if mask & IN_ATTRIB != 0 {
        dn |= DN_ATTRIB;
    }
    if mask & (IN_CREATE | IN_MOVED_TO) != 0 {
        dn |= DN_CREATE;
    }
    if mask & (IN_DELETE | IN_MOVED_FROM) != 0 {
        dn |= DN_DELETE;
    }
    // Linux reports a rename once, to the old directory (FS_RENAME).
    if mask & IN_MOVED_FROM != 0 {
        dn |= DN_RENAME;
    }
    if dn == 0 {
        return;
    }
    let mut fire: Vec<(FileRef, i32)> = Vec::new();
    {
        let mut t = marks();
        let Some(list) = t.get_mut(&dir) else { return };
        list.retain(|m| {
            let Some(f) = m.file.upgrade() else {
                return false;
            };
            if m.mask & dn & DN_ALL == 0 {
                return true;
            }
            fire.push((f, m.fd));
            m.mask & DN_MULTISHOT != 0
        });
        if list.is_empty() {
            t.remove(&dir);
        }
    }
    for (f, fd) in fire {
        crate::fs::fasync::send_sigio(&f, fd, crate::fs::fasync::POLL_MSG);
    }
}
