//! The IPC parts of procfs: the limits under /proc/sys/kernel
//! (msgmax, msgmnb, msgmni, sem, shmmax, shmall, shmmni; with them the
//! other root-writable files there of the same kind, hostname and
//! domainname) and
//! /proc/sys/fs/mqueue (msg_max, msgsize_max, queues_max, msg_default,
//! msgsize_default), readable by all and writable by root with Linux's
//! ranges, and /proc/sysvipc/{msg,sem,shm} as ipcs(1) reads them.
//! procfs.rs asks [`sys_kernel_lookup`] and friends for these names.
//! Inodes hold only which file they are; no locking of their own.

use std::sync::Arc;

use super::{IPCMNI, LIMITS};
use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{Meta, TableDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFREG};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

/// A settable limit file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    MsgMax,
    MsgMnb,
    MsgMni,
    Sem,
    ShmMax,
    ShmAll,
    ShmMni,
    MqMsgMax,
    MqMsgsizeMax,
    MqQueuesMax,
    MqMsgDefault,
    MqMsgsizeDefault,
    /// Not IPC, but writable /proc/sys/kernel files of the same kind: the
    /// UTS names (uname's nodename and domainname).
    Hostname,
    Domainname,
    /// Where core dumps go (task/coredump.rs).
    CorePattern,
}

/// /proc/sys/kernel's IPC files: (name, inode number, knob).
const KERNEL: &[(&str, u64, Knob)] = &[
    ("core_pattern", 66, Knob::CorePattern),
    ("domainname", 56, Knob::Domainname),
    ("hostname", 50, Knob::Hostname),
    ("msgmax", 70, Knob::MsgMax),
    ("msgmnb", 71, Knob::MsgMnb),
    ("msgmni", 72, Knob::MsgMni),
    ("sem", 73, Knob::Sem),
    ("shmall", 74, Knob::ShmAll),
    ("shmmax", 75, Knob::ShmMax),
    ("shmmni", 76, Knob::ShmMni),
];

/// /proc/sys/fs/mqueue's files.
const MQUEUE: &[(&str, u64, Knob)] = &[
    ("msg_default", 80, Knob::MqMsgDefault),
    ("msg_max", 81, Knob::MqMsgMax),
    ("msgsize_default", 82, Knob::MqMsgsizeDefault),
    ("msgsize_max", 83, Knob::MqMsgsizeMax),
    ("queues_max", 84, Knob::MqQueuesMax),
];

const MQUEUE_DIR_INO: u64 = 79;
const SYSVIPC_INO: u64 = 85;
const SYSVIPC: &[(&str, u64)] = &[("msg", 86), ("sem", 87), ("shm", 88)];

/// Linux's HARD_MSGMAX and HARD_MSGSIZEMAX.
pub const HARD_MSGMAX: i64 = 65536;
pub const HARD_MSGSIZEMAX: i64 = 16 << 20;

fn render(k: Knob) -> Vec<u8> {
    let l = &LIMITS;
    match k {
        Knob::MsgMax => format!("{}\n", l.msgmax.get()),
        Knob::MsgMnb => format!("{}\n", l.msgmnb.get()),
        Knob::MsgMni => format!("{}\n", l.msgmni.get()),
        Knob::Sem => format!(
            "{}\t{}\t{}\t{}\n",
            l.semmsl.get(),
            l.semmns.get(),
            l.semopm.get(),
            l.semmni.get()
        ),
        Knob::ShmMax => format!("{}\n", l.shmmax.get() as u64),
        Knob::ShmAll => format!("{}\n", l.shmall.get() as u64),
        Knob::ShmMni => format!("{}\n", l.shmmni.get()),
        Knob::MqMsgMax => format!("{}\n", l.mq_msg_max.get()),
        Knob::MqMsgsizeMax => format!("{}\n", l.mq_msgsize_max.get()),
        Knob::MqQueuesMax => format!("{}\n", l.mq_queues_max.get()),
        Knob::MqMsgDefault => format!("{}\n", l.mq_msg_default.get()),
        Knob::MqMsgsizeDefault => format!("{}\n", l.mq_msgsize_default.get()),
        Knob::CorePattern => {
            let mut v = crate::task::coredump::core_pattern();
            v.push(b'\n');
            return v;
        }
        Knob::Hostname | Knob::Domainname => {
            let mut v = uts_slot(k)
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            v.push(b'\n');
            return v;
        }
    }
    .into_bytes()
}

/// The kernel's hostname or domainname.
fn uts_slot(k: Knob) -> &'static std::sync::Mutex<Vec<u8>> {
    let kernel = crate::kernel();
    if k == Knob::Hostname {
        &kernel.hostname
    } else {
        &kernel.domainname
    }
}

/// Parses a write: whitespace-separated integers, each within its range
/// (EINVAL otherwise, as proc_dointvec_minmax).
fn store(k: Knob, buf: &[u8]) -> KResult<()> {
    let text = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
    let mut words = text.split_whitespace();
    let int = |w: Option<&str>, lo: i64, hi: i64| -> KResult<i64> {
        let v: i64 = w
            .ok_or(crate::errno!(EINVAL))?
            .parse()
            .map_err(|_| crate::errno!(EINVAL))?;
        if v < lo || v > hi {
            return error!(EINVAL);
        }
        Ok(v)
    };
    let l = &LIMITS;
    let imax = i32::MAX as i64;
    if k == Knob::CorePattern {
        // proc_dostring: up to the first newline.
        let end = buf
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .unwrap_or(buf.len());
        return crate::task::coredump::set_core_pattern(&buf[..end]);
    }
    if matches!(k, Knob::Hostname | Knob::Domainname) {
        // proc_dostring: up to the first newline, at most 64 bytes kept.
        let end = buf
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .unwrap_or(buf.len());
        *uts_slot(k).lock().unwrap_or_else(|p| p.into_inner()) = buf[..end.min(64)].to_vec();
        return Ok(());
    }
    match k {
        Knob::MsgMax => l.msgmax.set(int(words.next(), 0, imax)?),
        Knob::MsgMnb => l.msgmnb.set(int(words.next(), 0, imax)?),
        Knob::MsgMni => l.msgmni.set(int(words.next(), 0, IPCMNI as i64)?),
        Knob::ShmMni => l.shmmni.set(int(words.next(), 0, IPCMNI as i64)?),
        Knob::ShmMax | Knob::ShmAll => {
            let v: u64 = words
                .next()
                .ok_or(crate::errno!(EINVAL))?
                .parse()
                .map_err(|_| crate::errno!(EINVAL))?;
            if k == Knob::ShmMax {
                l.shmmax.set(v as i64)
            } else {
                l.shmall.set(v as i64)
            }
        }
        Knob::Sem => {
            let msl = int(words.next(), 0, imax)?;
            let mns = int(words.next(), 0, imax)?;
            let opm = int(words.next(), 0, imax)?;
            let mni = int(words.next(), 0, IPCMNI as i64)?;
            l.semmsl.set(msl);
            l.semmns.set(mns);
            l.semopm.set(opm);
            l.semmni.set(mni);
        }
        Knob::MqMsgMax => l.mq_msg_max.set(int(words.next(), 1, HARD_MSGMAX)?),
        Knob::MqMsgsizeMax => l
            .mq_msgsize_max
            .set(int(words.next(), 128, HARD_MSGSIZEMAX)?),
        Knob::MqQueuesMax => l.mq_queues_max.set(int(words.next(), 0, imax)?),
        Knob::MqMsgDefault => l.mq_msg_default.set(int(words.next(), 1, HARD_MSGMAX)?),
        Knob::MqMsgsizeDefault => {
            l.mq_msgsize_default
                .set(int(words.next(), 128, HARD_MSGSIZEMAX)?)
        }
        Knob::Hostname | Knob::Domainname | Knob::CorePattern => {}
    }
    Ok(())
}

/// A limit file: 0644, root may write.
struct KnobFile {
    meta: Meta,
    knob: Knob,
}

impl Inode for KnobFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFREG | 0o644, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 {
            let root = caller
                .task
                .is_none_or(|t| super::Cred::of(t).privileged(crate::task::caps::Cap::SysAdmin));
            if !root {
                return error!(EACCES);
            }
        }
        Ok(Arc::new(KnobOpen {
            knob: Some(self.knob),
            data: render(self.knob),
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct KnobOpen {
    /// None: a read-only snapshot (/proc/sysvipc).
    knob: Option<Knob>,
    data: Vec<u8>,
}

impl FileOps for KnobOpen {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.data.len() as u64) as usize;
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        let Some(knob) = self.knob else {
            return error!(EINVAL);
        };
        // Linux reads at most a page of a sysctl write.
        store(knob, &buf[..buf.len().min(4096)])?;
        Ok(buf.len())
    }
    fn truncate(&self, _len: u64) -> KResult<()> {
        Ok(())
    }
}

/// The IPC files of /proc/sys/kernel: (name, inode number).
pub fn sys_kernel_entries() -> Vec<(&'static str, u64)> {
    KERNEL.iter().map(|(n, i, _)| (*n, *i)).collect()
}

/// Looks `name` up among /proc/sys/kernel's IPC files.
pub fn sys_kernel_lookup(name: &[u8], meta: &Meta) -> Option<Arc<dyn Inode>> {
    KERNEL
        .iter()
        .find(|(n, _, _)| n.as_bytes() == name)
        .map(|&(_, ino, knob)| {
            Arc::new(KnobFile {
                meta: meta.with_ino(ino),
                knob,
            }) as Arc<dyn Inode>
        })
}

/// /proc/sys/fs's IPC entries: the mqueue directory.
pub fn sys_fs_entries() -> Vec<(&'static str, u64)> {
    vec![("mqueue", MQUEUE_DIR_INO)]
}

/// Looks `name` up among /proc/sys/fs's IPC entries.
pub fn sys_fs_lookup(name: &[u8], meta: &Meta) -> Option<Arc<dyn Inode>> {
    (name == b"mqueue").then(|| {
        // A directory of limit files.
        Arc::new(TableDir {
            meta: meta.with_ino(MQUEUE_DIR_INO),
            parent_ino: meta.ino,
            entries: MQUEUE
                .iter()
                .map(|&(n, ino, _)| (n, ino, FileType::Regular))
                .collect(),
            make: Box::new(|name, meta| {
                let &(_, ino, knob) = MQUEUE.iter().find(|(n, _, _)| n.as_bytes() == name)?;
                Some(Arc::new(KnobFile {
                    meta: meta.with_ino(ino),
                    knob,
                }) as Arc<dyn Inode>)
            }),
        }) as Arc<dyn Inode>
    })
}

/// /proc/sysvipc's inode number, for the root's listing.
pub const SYSVIPC_DIR_INO: u64 = SYSVIPC_INO;

/// /proc/sysvipc.
pub fn sysvipc_dir(meta: &Meta) -> Arc<dyn Inode> {
    Arc::new(TableDir {
        meta: meta.with_ino(SYSVIPC_INO),
        parent_ino: 1,
        entries: SYSVIPC
            .iter()
            .map(|&(n, ino)| (n, ino, FileType::Regular))
            .collect(),
        make: Box::new(|name, meta| {
            let &(which, ino) = SYSVIPC.iter().find(|(n, _)| n.as_bytes() == name)?;
            Some(Arc::new(SysvipcFile {
                meta: meta.with_ino(ino),
                which,
            }) as Arc<dyn Inode>)
        }),
    })
}

/// /proc/sysvipc/{msg,sem,shm}: a snapshot of the table when opened.
struct SysvipcFile {
    meta: Meta,
    which: &'static str,
}

impl Inode for SysvipcFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFREG | 0o444, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 {
            return error!(EACCES);
        }
        let text = match self.which {
            "msg" => super::msg::proc_text(),
            "sem" => super::sem::proc_text(),
            _ => super::shm::proc_text(),
        };
        Ok(Arc::new(KnobOpen {
            knob: None,
            data: text.into_bytes(),
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
