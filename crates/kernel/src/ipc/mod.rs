//! System V IPC (message queues, semaphore sets, shared memory segments)
//! and POSIX message queues, as Linux's ipc/ does them.
//!
//! Each SysV kind keeps its objects in an [`Ids`] table (index → object,
//! ids `seq * 32768 + index` as Linux without ipcmni_extend) behind one
//! mutex per kind (`msg::TABLE`, `sem::TABLE`, `shm::TABLE`); nothing
//! blocks while holding it. A task that must wait (msgsnd on a full
//! queue, msgrcv on an empty one, semop) sleeps on the object's
//! [`WaitQueue`], which registers it before the condition is checked, so
//! a change made between the check and the sleep still wakes it. The
//! condition re-looks the object up by id and serial: a removed object
//! (IPC_RMID) wakes its sleepers, who find it gone and fail with EIDRM.
//!
//! The limits (/proc/sys/kernel/{msgmax,msgmnb,msgmni,sem,shmmax,shmall,
//! shmmni}, /proc/sys/fs/mqueue/*) are [`Limits`], Linux's defaults,
//! writable by root through procfs ([`proc`]). Every size a guest gives is
//! checked against them before the kernel allocates for it.

pub mod mqueue;
pub mod msg;
pub mod proc;
pub mod sem;
pub mod shm;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::task::caps::Cap;
use crate::task::Task;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;

pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;
/// The "new ABI" flag old callers or in cmd; x86_64 has only that ABI and
/// Linux rejects the bit there (EINVAL through the default case).
pub const IPC_64: i32 = 0x100;

/// Linux's IPCMNI: at most this many objects of each kind.
pub const IPCMNI: u32 = 32768;
const SEQ_MULTIPLIER: u32 = IPCMNI;
const IPCID_SEQ_MAX: u32 = (i32::MAX as u32) / SEQ_MULTIPLIER;

const S_IRUGO: u32 = 0o444;
const S_IWUGO: u32 = 0o222;

crate::abi_struct! {
    /// struct ipc64_perm (x86_64).
    pub struct Ipc64Perm {
        pub key: i32,
        pub uid: u32,
        pub gid: u32,
        pub cuid: u32,
        pub cgid: u32,
        pub mode: u32,
        pub seq: u16,
        pub pad2: u16,
        pub pad3: u32,
        pub unused1: u64,
        pub unused2: u64,
    }
}

/// An object's owner, creator and mode (struct kern_ipc_perm).
#[derive(Clone, Debug, Default)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits and the kind's state bits (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: u16,
}

impl Perm {
    pub fn to_abi(&self) -> Ipc64Perm {
        Ipc64Perm {
            key: self.key,
            uid: self.uid,
            gid: self.gid,
            cuid: self.cuid,
            cgid: self.cgid,
            mode: self.mode,
            seq: self.seq,
            ..Default::default()
        }
    }
}

/// The caller's credentials as IPC checks need them.
#[derive(Clone, Debug)]
pub struct Cred {
    pub euid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
    /// The effective capability set.
    pub caps: u64,
}

impl Cred {
    pub fn of(task: &Task) -> Cred {
        let c = task.group.creds.lock().unwrap_or_else(|p| p.into_inner());
        Cred {
            euid: c.euid,
            egid: c.egid,
            groups: c.groups.clone(),
            caps: c.caps.effective,
        }
    }
    /// Whether the effective set holds `cap` (CAP_IPC_OWNER,
    /// CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_IPC_LOCK).
    pub fn privileged(&self, cap: crate::task::caps::Cap) -> bool {
        self.caps & cap.bit() != 0
    }
    fn in_group(&self, g: u32) -> bool {
        self.egid == g || self.groups.contains(&g)
    }
}

/// Linux's ipcperms: whether `flag`'s rwx bits (any of the three
/// triplets) are granted by `perm` to `cred`.
pub fn ipcperms(cred: &Cred, perm: &Perm, flag: u32) -> bool {
    let requested = (flag >> 6) | (flag >> 3) | flag;
    let mut granted = perm.mode;
    if cred.euid == perm.cuid || cred.euid == perm.uid {
        granted >>= 6;
    } else if cred.in_group(perm.cgid) || cred.in_group(perm.gid) {
        granted >>= 3;
    }
    requested & !granted & 0o7 == 0 || cred.privileged(Cap::IpcOwner)
}

/// May `cred` change or remove the object (IPC_SET, IPC_RMID)? EPERM if not.
pub fn check_owner(cred: &Cred, perm: &Perm) -> KResult<()> {
    if cred.euid == perm.uid || cred.euid == perm.cuid || cred.privileged(Cap::SysAdmin) {
        Ok(())
    } else {
        error!(EPERM)
    }
}

/// IPC_SET's change to uid, gid and the permission bits.
pub fn set_perm(perm: &mut Perm, from: &Ipc64Perm) {
    perm.uid = from.uid;
    perm.gid = from.gid;
    perm.mode = (perm.mode & !0o777) | (from.mode & 0o777);
}

/// The realtime clock in seconds, for the *_time fields.
pub fn now() -> i64 {
    crate::fs::simple::now().0
}

/// One kind's objects by index. Ids are `seq * IPCMNI + index`.
pub struct Ids<T> {
    pub map: BTreeMap<u32, T>,
    seq: u32,
    /// A serial per object, never reused: a waiter holding one knows its
    /// object is gone even if the id were reused.
    serial: u64,
}

impl<T> Default for Ids<T> {
    fn default() -> Self {
        Ids {
            map: BTreeMap::new(),
            seq: 0,
            serial: 0,
        }
    }
}

/// What an Ids table needs of its objects.
pub trait IpcObject {
    fn perm(&self) -> &Perm;
    fn perm_mut(&mut self) -> &mut Perm;
    /// The object's id.
    fn id(&self) -> i32;
}

impl<T: IpcObject> Ids<T> {
    /// The lowest free index (below `mni`), a fresh id and serial; ENOSPC
    /// if the kind is full.
    pub fn alloc(&mut self, mni: u32) -> KResult<(u32, i32, u16, u64)> {
        if self.map.len() as u32 >= mni.min(IPCMNI) {
            return error!(ENOSPC);
        }
        let mut idx = 0u32;
        for &k in self.map.keys() {
            if k != idx {
                break;
            }
            idx += 1;
        }
        if idx >= IPCMNI {
            return error!(ENOSPC);
        }
        let seq = self.seq;
        self.seq = if self.seq >= IPCID_SEQ_MAX {
            0
        } else {
            self.seq + 1
        };
        self.serial += 1;
        Ok((
            idx,
            (seq * SEQ_MULTIPLIER + idx) as i32,
            seq as u16,
            self.serial,
        ))
    }

    /// The object with this id: EINVAL if none (a stale id included).
    pub fn get(&self, id: i32) -> KResult<&T> {
        if id < 0 {
            return error!(EINVAL);
        }
        match self.map.get(&(id as u32 % SEQ_MULTIPLIER)) {
            Some(o) if o.id() == id => Ok(o),
            _ => error!(EINVAL),
        }
    }

    pub fn get_mut(&mut self, id: i32) -> KResult<&mut T> {
        if id < 0 {
            return error!(EINVAL);
        }
        match self.map.get_mut(&(id as u32 % SEQ_MULTIPLIER)) {
            Some(o) if o.id() == id => Ok(o),
            _ => error!(EINVAL),
        }
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        let idx = id as u32 % SEQ_MULTIPLIER;
        if self.map.get(&idx).is_some_and(|o| o.id() == id) {
            self.map.remove(&idx)
        } else {
            None
        }
    }

    /// The object with a (non-private) key.
    pub fn find_key(&self, key: i32) -> Option<&T> {
        self.map.values().find(|o| o.perm().key == key)
    }

    /// The highest index in use, as IPC_INFO/*_INFO return it (0 if none).
    pub fn max_idx(&self) -> u64 {
        self.map.keys().next_back().copied().unwrap_or(0) as u64
    }

    /// The object at index `idx` (the *_STAT commands).
    pub fn at_index(&self, idx: i32) -> KResult<&T> {
        if idx < 0 {
            return error!(EINVAL);
        }
        self.map.get(&(idx as u32)).ok_or(crate::errno!(EINVAL))
    }
}

/// The common part of msgget/semget/shmget (Linux's ipcget): an existing
/// object for `key` is checked (EEXIST, `more_checks`, EACCES); a missing
/// one is made by `create` if IPC_CREAT (else ENOENT).
pub fn ipcget<T: IpcObject>(
    ids: &mut Ids<T>,
    cred: &Cred,
    key: i32,
    flg: i32,
    more_checks: impl FnOnce(&T) -> KResult<()>,
    create: impl FnOnce(&mut Ids<T>) -> KResult<i32>,
) -> KResult<i32> {
    if key == IPC_PRIVATE {
        return create(ids);
    }
    match ids.find_key(key) {
        None if flg & IPC_CREAT == 0 => error!(ENOENT),
        None => create(ids),
        Some(_) if flg & IPC_CREAT != 0 && flg & IPC_EXCL != 0 => error!(EEXIST),
        Some(o) => {
            more_checks(o)?;
            if !ipcperms(cred, o.perm(), (flg & 0o777) as u32) {
                return error!(EACCES);
            }
            Ok(o.id())
        }
    }
}

/// A new object's Perm for the caller.
pub fn new_perm(cred: &Cred, key: i32, flg: i32, seq: u16) -> Perm {
    Perm {
        key,
        uid: cred.euid,
        gid: cred.egid,
        cuid: cred.euid,
        cgid: cred.egid,
        mode: (flg & 0o777) as u32,
        seq,
    }
}

/// A settable limit (a /proc/sys knob).
pub struct Limit {
    v: AtomicI64,
}

impl Limit {
    pub const fn new(v: i64) -> Limit {
        Limit {
            v: AtomicI64::new(v),
        }
    }
    pub fn get(&self) -> i64 {
        self.v.load(Ordering::Relaxed)
    }
    pub fn set(&self, v: i64) {
        self.v.store(v, Ordering::Relaxed)
    }
}

/// Linux's IPC limits (include/uapi/linux/{msg,sem,shm}.h, mqueue).
pub struct Limits {
    pub msgmax: Limit,
    pub msgmnb: Limit,
    pub msgmni: Limit,
    pub semmsl: Limit,
    pub semmns: Limit,
    pub semopm: Limit,
    pub semmni: Limit,
    /// shmmax and shmall are unsigned longs; kept as their bit patterns.
    pub shmmax: Limit,
    pub shmall: Limit,
    pub shmmni: Limit,
    pub mq_msg_max: Limit,
    pub mq_msgsize_max: Limit,
    pub mq_queues_max: Limit,
    pub mq_msg_default: Limit,
    pub mq_msgsize_default: Limit,
}

/// ULONG_MAX - 2^24, Linux's SHMMAX and SHMALL.
pub const SHM_DEFAULT_MAX: u64 = u64::MAX - (1 << 24);

pub static LIMITS: Limits = Limits {
    msgmax: Limit::new(8192),
    msgmnb: Limit::new(16384),
    msgmni: Limit::new(32000),
    semmsl: Limit::new(32000),
    semmns: Limit::new(1_024_000_000),
    semopm: Limit::new(500),
    semmni: Limit::new(32000),
    shmmax: Limit::new(SHM_DEFAULT_MAX as i64),
    shmall: Limit::new(SHM_DEFAULT_MAX as i64),
    shmmni: Limit::new(4096),
    mq_msg_max: Limit::new(10),
    mq_msgsize_max: Limit::new(8192),
    mq_queues_max: Limit::new(256),
    mq_msg_default: Limit::new(10),
    mq_msgsize_default: Limit::new(8192),
};

/// The kernel heap System V IPC may hold for guests in all (message
/// texts, semaphores): a quarter of guest memory (mem=). Linux charges
/// this memory to the caller's memory cgroup; past it, ENOMEM.
pub fn heap_budget() -> u64 {
    crate::fs::tmpfs::physmem().total_pages() * 4096 / 4
}

/// A zeroed buffer of `len` bytes for data a guest passes in: ENOMEM
/// rather than an abort when the size is absurd.
pub fn guest_buf(len: usize) -> KResult<Vec<u8>> {
    if len as u64 > heap_budget() {
        return error!(ENOMEM);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| crate::errno!(ENOMEM))?;
    v.resize(len, 0);
    Ok(v)
}

/// Reads a `struct timespec` timeout: EFAULT, or EINVAL when malformed.
pub fn read_timeout(task: &Arc<Task>, addr: u64) -> KResult<std::time::Duration> {
    let t: [i64; 2] = task.mm().read_val(addr)?;
    if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
        return error!(EINVAL);
    }
    Ok(std::time::Duration::new(t[0] as u64, t[1] as u32))
}

/// The process `tgid` ends (its last thread): its semaphore undo
/// adjustments are applied (SEM_UNDO).
pub fn exit_process(tgid: i32) {
    sem::exit_undo(tgid);
}

/// `mm` lost a user (its last thread exited, or exec replaced it): if no
/// live task still runs in it, its shared memory attachments are detached
/// now, as Linux's exit_mm does, rather than whenever the last reference
/// to the address space goes away.
pub fn mm_released(mm: &Arc<crate::mm::Mm>, tgid: i32) {
    shm::detach_all(mm, tgid);
}

/// An IPC namespace was freed (task/ns.rs): its message queues,
/// semaphores and shared memory segments go.
pub fn ipcns_gone(ns: u64) {
    msg::ns_gone(ns);
    sem::ns_gone(ns);
    shm::ns_gone(ns);
}
