//! POSIX message queues: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify, mq_getsetattr, and the mqueue filesystem
//! (`mount -t mqueue none /dev/mqueue`), whose files are the queues:
//! reading one gives `QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:...`.
//!
//! One instance-wide directory of queues ([`MqDir`], one IPC namespace);
//! every mount of the filesystem and mq_open see it. A queue ([`Queue`])
//! is a Mutex over its messages (highest priority first, FIFO within a
//! priority) plus a [`Waiters`] queue that blocked senders, receivers and
//! poll sleep on; every change wakes it. A queue's size is bounded by
//! msg_max × msgsize_max (or Linux's hard limits for root) and each user's
//! queues by RLIMIT_MSGQUEUE, as Linux accounts them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::proc::{HARD_MSGMAX, HARD_MSGSIZEMAX};
use super::{Cred, LIMITS};
use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, READABLE, WRITABLE};
use crate::fs::simple::{Meta, SynthDir};
use crate::fs::types::oflags::*;
use crate::fs::types::{FileType, Stat, StatFs, S_IFDIR, S_IFREG};
use crate::fs::vfs::{anon_dev, Caller, Dentry, FileOps, Inode, InodeKey, Mount, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::Task;

const MQUEUE_MAGIC: i64 = 0x1980_0202;
const MQ_PRIO_MAX: u32 = 32768;
const NAME_MAX: usize = 255;
/// RLIMIT_MSGQUEUE's index.
const RLIMIT_MSGQUEUE: usize = 12;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
/// si_code of a message-queue notification.
const SI_MESGQ: i32 = -3;

crate::abi_struct! {
    /// struct mq_attr.
    pub struct MqAttr {
        pub flags: i64,
        pub maxmsg: i64,
        pub msgsize: i64,
        pub curmsgs: i64,
        pub reserved: [i64; 4],
    }
}

crate::abi_struct! {
    /// The head of struct sigevent (64 bytes in all).
    pub struct SigEvent {
        pub value: u64,
        pub signo: i32,
        pub notify: i32,
        pub tid: i32,
        pub pad: i32,
    }
}

/// A registered notification (mq_notify).
#[derive(Clone, Copy)]
struct Notify {
    tgid: i32,
    notify: i32,
    signo: i32,
    value: u64,
}

struct QState {
    /// Messages by priority (highest last in the map), FIFO within one.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    count: i64,
    bytes: u64,
    notify: Option<Notify>,
    /// Receivers sleeping in mq_timedreceive (a notification is sent only
    /// when none is).
    receivers: usize,
}

/// One queue. Locking: `st`; sleepers on `waiters`.
pub struct Queue {
    meta: Meta,
    uid: u32,
    gid: u32,
    mode: u32,
    maxmsg: i64,
    msgsize: i64,
    /// Bytes charged to the owner's RLIMIT_MSGQUEUE.
    charge: u64,
    st: Mutex<QState>,
    waiters: Waiters,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn status_text(&self) -> Vec<u8> {
        let mut st = self.lock();
        reap_notify(&mut st);
        let (notify, signo, pid) = match st.notify {
            Some(n) => (
                n.notify,
                if n.notify == SIGEV_SIGNAL { n.signo } else { 0 },
                n.tgid,
            ),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            st.bytes, notify, signo, pid
        )
        .into_bytes()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let mut u = charges();
        if let Some(c) = u.get_mut(&self.uid) {
            *c = c.saturating_sub(self.charge);
        }
    }
}

/// Bytes of queues per user (RLIMIT_MSGQUEUE accounting).
fn charges() -> MutexGuard<'static, HashMap<u32, u64>> {
    static C: OnceLock<Mutex<HashMap<u32, u64>>> = OnceLock::new();
    C.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The directory of queues (the filesystem's root).
pub struct MqDir {
    meta: Meta,
    queues: Mutex<BTreeMap<Vec<u8>, Arc<Queue>>>,
    next_ino: Mutex<u64>,
}

fn dir() -> &'static Arc<MqDir> {
    static D: OnceLock<Arc<MqDir>> = OnceLock::new();
    D.get_or_init(|| {
        Arc::new(MqDir {
            meta: Meta {
                dev: anon_dev(),
                ino: 1,
                magic: MQUEUE_MAGIC,
                time: crate::fs::simple::now(),
                read_only: false,
            },
            queues: Mutex::new(BTreeMap::new()),
            next_ino: Mutex::new(2),
        })
    })
}

/// The internal mount mq_open's descriptors live on.
fn mnt() -> &'static Arc<Mount> {
    static M: OnceLock<Arc<Mount>> = OnceLock::new();
    M.get_or_init(|| Mount::new("mqueue", dir().clone(), None, false, true))
}

/// The root inode for `mount -t mqueue`.
pub fn fs_root() -> Arc<dyn Inode> {
    dir().clone()
}

/// Attributes a new queue gets: from `attr`, or the defaults.
fn check_attr(attr: Option<MqAttr>, cred: &Cred) -> KResult<(i64, i64)> {
    let Some(a) = attr else {
        let maxmsg = LIMITS.mq_msg_default.get().min(LIMITS.mq_msg_max.get());
        let msgsize = LIMITS
            .mq_msgsize_default
            .get()
            .min(LIMITS.mq_msgsize_max.get());
        return Ok((maxmsg, msgsize));
    };
    if a.maxmsg <= 0 || a.msgsize <= 0 {
        return error!(EINVAL);
    }
    let (mm, ms) = if cred.privileged(crate::task::caps::Cap::SysResource) {
        (HARD_MSGMAX, HARD_MSGSIZEMAX)
    } else {
        (LIMITS.mq_msg_max.get(), LIMITS.mq_msgsize_max.get())
    };
    if a.maxmsg > mm || a.msgsize > ms {
        return error!(EINVAL);
    }
    Ok((a.maxmsg, a.msgsize))
}

impl MqDir {
    fn queues(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Arc<Queue>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes queue `name` (the caller holds `queues`).
    fn make(
        &self,
        queues: &mut BTreeMap<Vec<u8>, Arc<Queue>>,
        name: &[u8],
        mode: u32,
        attr: Option<MqAttr>,
        cred: &Cred,
        memlimit: u64,
    ) -> KResult<Arc<Queue>> {
        if queues.len() as i64 >= LIMITS.mq_queues_max.get()
            && !cred.privileged(crate::task::caps::Cap::SysResource)
        {
            return error!(ENOSPC);
        }
        let (maxmsg, msgsize) = check_attr(attr, cred)?;
        // Linux's accounting: the texts plus a message header (48 bytes)
        // and a tree node (48) per message.
        let charge = (maxmsg as u64).saturating_mul(msgsize as u64 + 96);
        {
            let mut c = charges();
            let used = c.entry(cred.euid).or_insert(0);
            if used.saturating_add(charge) > memlimit {
                return error!(EMFILE);
            }
            *used += charge;
        }
        let ino = {
            let mut n = self.next_ino.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let q = Arc::new(Queue {
            meta: self.meta.with_ino(ino),
            uid: cred.euid,
            gid: cred.egid,
            mode: mode & 0o777,
            maxmsg,
            msgsize,
            charge,
            st: Mutex::new(QState {
                msgs: BTreeMap::new(),
                count: 0,
                bytes: 0,
                notify: None,
                receivers: 0,
            }),
            waiters: Waiters::new(),
        });
        queues.insert(name.to_vec(), q.clone());
        Ok(q)
    }
}

fn cred_of(caller: &Caller<'_>) -> Cred {
    match caller.task {
        Some(t) => Cred::of(t),
        None => Cred {
            euid: 0,
            egid: 0,
            groups: Vec::new(),
            caps: crate::task::caps::CAP_FULL,
        },
    }
}

fn memlimit_of(caller: &Caller<'_>) -> u64 {
    caller
        .task
        .map(|t| t.group.limit(RLIMIT_MSGQUEUE)[0])
        .unwrap_or(u64::MAX)
}

/// May `cred` open `q` with access mode `acc`? (EACCES if not.)
fn may_open(q: &Queue, cred: &Cred, acc: u32) -> KResult<()> {
    let need = match acc {
        O_RDONLY => 0o4,
        O_WRONLY => 0o2,
        _ => 0o6,
    };
    let perm = super::Perm {
        uid: q.uid,
        gid: q.gid,
        cuid: q.uid,
        cgid: q.gid,
        mode: q.mode,
        ..Default::default()
    };
    if super::ipcperms(cred, &perm, need) {
        Ok(())
    } else {
        error!(EACCES)
    }
}

impl Inode for MqDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o1777, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        self.queues()
            .get(name)
            .cloned()
            .map(|q| q as Arc<dyn Inode>)
            .ok_or(crate::errno!(ENOENT))
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let r = FileType::Regular.dirent_type();
        let mut entries = vec![(1, d, b".".to_vec()), (1, d, b"..".to_vec())];
        for (n, q) in self.queues().iter() {
            entries.push((q.meta.ino, r, n.clone()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn create(
        &self,
        name: &[u8],
        mode: u32,
        _flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        let caller = Caller::kernel();
        let mut qs = self.queues();
        if qs.contains_key(name) {
            return error!(EEXIST);
        }
        let q = self.make(
            &mut qs,
            name,
            mode,
            None,
            &cred_of(&caller),
            memlimit_of(&caller),
        )?;
        Ok((q.clone(), Arc::new(MqFile { q })))
    }
    fn unlink(&self, name: &[u8]) -> KResult<()> {
        self.queues()
            .remove(name)
            .map(|_| ())
            .ok_or(crate::errno!(ENOENT))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Inode for Queue {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut s = self.meta.stat(S_IFREG | self.mode, 1, 80);
        s.uid = self.uid;
        s.gid = self.gid;
        Ok(s)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        may_open(self, &cred_of(caller), flags & O_ACCMODE)?;
        let me = dir()
            .queues()
            .values()
            .find(|q| q.meta.ino == self.meta.ino)
            .cloned()
            .ok_or(crate::errno!(ENOENT))?;
        Ok(Arc::new(MqFile { q: me }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open queue: read() gives its status line; the mq_* calls work on it.
pub struct MqFile {
    q: Arc<Queue>,
}

impl FileOps for MqFile {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let data = self.q.status_text();
        let off = off.min(data.len() as u64) as usize;
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        Ok(n)
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let st = self.q.lock();
        let mut ev = 0;
        if st.count > 0 {
            ev |= READABLE;
        }
        if st.count < self.q.maxmsg {
            ev |= WRITABLE;
        }
        ev
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.q.waiters)
    }
    fn size(&self) -> KResult<u64> {
        Ok(80)
    }
}

syscall_table! { pub fn mqueue_table;
    MQ_OPEN => sys_mq_open(name: UserAddr, oflag: i32, mode: u32, attr: UserAddr),
    MQ_UNLINK => sys_mq_unlink(name: UserAddr),
    MQ_TIMEDSEND => sys_mq_timedsend(fd: Fd, msg: UserAddr, len: u64, prio: u32, timeout: UserAddr),
    MQ_TIMEDRECEIVE => sys_mq_timedreceive(fd: Fd, msg: UserAddr, len: u64, prio: UserAddr, timeout: UserAddr),
    MQ_NOTIFY => sys_mq_notify(fd: Fd, sev: UserAddr),
    MQ_GETSETATTR => sys_mq_getsetattr(fd: Fd, new: UserAddr, old: UserAddr),
}

/// A queue name as the kernel takes it (glibc strips the leading '/'):
/// ENOENT for an empty name, EACCES for one with '/' inside, as Linux.
fn read_name(ctx: &SyscallContext<'_>, name: UserAddr) -> KResult<Vec<u8>> {
    let n = ctx.mm().read_cstring(name.0, NAME_MAX)?;
    if n.is_empty() {
        return error!(ENOENT);
    }
    if n.contains(&b'/') || n == b"." || n == b".." {
        return error!(EACCES);
    }
    Ok(n)
}

fn sys_mq_open(
    ctx: &mut SyscallContext<'_>,
    name: UserAddr,
    oflag: i32,
    mode: u32,
    attr: UserAddr,
) -> KResult<u64> {
    let oflag = oflag as u32;
    let n = read_name(ctx, name)?;
    let acc = oflag & O_ACCMODE;
    if acc == O_ACCMODE {
        return error!(EINVAL);
    }
    let attr = if oflag & O_CREAT != 0 && !attr.is_null() {
        Some(ctx.mm().read_val::<MqAttr>(attr.0)?)
    } else {
        None
    };
    let caller = Caller::of(ctx.task);
    let cred = cred_of(&caller);
    let umask = ctx.fs().umask();
    let q = {
        let d = dir();
        let mut qs = d.queues();
        match qs.get(&n).cloned() {
            Some(_) if oflag & O_CREAT != 0 && oflag & O_EXCL != 0 => return error!(EEXIST),
            Some(q) => {
                may_open(&q, &cred, acc)?;
                q
            }
            None if oflag & O_CREAT == 0 => return error!(ENOENT),
            None => d.make(
                &mut qs,
                &n,
                mode & !umask,
                attr,
                &cred,
                memlimit_of(&caller),
            )?,
        }
    };
    let path = Path {
        mnt: mnt().clone(),
        dentry: Dentry::child(&mnt().root, &n, q.clone()),
    };
    let file = OpenFile::new(
        path,
        Some(Arc::new(MqFile { q })),
        acc | (oflag & O_NONBLOCK),
    );
    ctx.files()
        .alloc(file, oflag & O_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

fn sys_mq_unlink(ctx: &mut SyscallContext<'_>, name: UserAddr) -> KResult<u64> {
    let n = read_name(ctx, name)?;
    let cred = Cred::of(ctx.task);
    let mut qs = dir().queues();
    let q = qs.get(&n).ok_or(crate::errno!(ENOENT))?;
    // The directory is sticky (01777): only the owner or root.
    if q.uid != cred.euid && !cred.privileged(crate::task::caps::Cap::Fowner) {
        return error!(EPERM);
    }
    qs.remove(&n);
    Ok(0)
}

/// The queue behind a descriptor: EBADF if it is not one.
fn queue_of(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<(FileRef, Arc<Queue>)> {
    let f = crate::fs::fd_get(ctx.task, fd.0)?;
    let q = f
        .ops()?
        .as_any_ops()
        .downcast_ref::<MqFile>()
        .map(|m| m.q.clone())
        .ok_or(crate::errno!(EBADF))?;
    Ok((f, q))
}

/// An absolute CLOCK_REALTIME timeout as an Instant.
fn deadline(task: &Arc<Task>, t: UserAddr) -> KResult<Option<Instant>> {
    if t.is_null() {
        return Ok(None);
    }
    let abs = super::read_timeout(task, t.0)?;
    let (s, ns) = crate::fs::simple::now();
    let now = Duration::new(s.max(0) as u64, ns);
    Ok(Some(Instant::now() + abs.saturating_sub(now)))
}

/// close(2) of a queue descriptor: the closing process's notification
/// registration on it ends (Linux's mqueue_flush_file).
pub fn on_close(tgid: i32, f: &FileRef) {
    let Some(q) = f
        .ops()
        .ok()
        .and_then(|o| o.as_any_ops().downcast_ref::<MqFile>())
        .map(|m| m.q.clone())
    else {
        return;
    };
    let mut st = q.lock();
    if st.notify.is_some_and(|n| n.tgid == tgid) {
        st.notify = None;
    }
}

/// Drops a registration whose process is gone (it exited without
/// closing through close(2)).
fn reap_notify(st: &mut QState) {
    if st
        .notify
        .is_some_and(|n| crate::kernel().tasks.group(n.tgid).is_none())
    {
        st.notify = None;
    }
}

/// Sends the registered notification (the queue became non-empty with no
/// receiver waiting) and drops the registration.
fn notify(st: &mut QState, sender: &Arc<Task>) {
    if st.receivers > 0 {
        return;
    }
    let Some(n) = st.notify.take() else {
        return;
    };
    if n.notify != SIGEV_SIGNAL {
        return;
    }
    let Some(g) = crate::kernel().tasks.group(n.tgid) else {
        return;
    };
    let uid = Cred::of(sender).euid as u64;
    crate::signal::send_group(
        &g,
        crate::signal::Queued {
            signo: n.signo,
            code: SI_MESGQ,
            a: sender.tgid() as u32 as u64 | (uid << 32),
            b: n.value,
            forced: false,
        },
    );
}

fn sys_mq_timedsend(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    msg: UserAddr,
    len: u64,
    prio: u32,
    timeout: UserAddr,
) -> KResult<u64> {
    let dl = deadline(ctx.task, timeout)?;
    if prio >= MQ_PRIO_MAX {
        return error!(EINVAL);
    }
    let (f, q) = queue_of(ctx, fd)?;
    if !f.can_write() {
        return error!(EBADF);
    }
    if len > q.msgsize as u64 {
        return error!(EMSGSIZE);
    }
    let mut data = vec![0u8; len as usize];
    ctx.mm().read_bytes(msg.0, &mut data)?;
    let mut data = Some(data);
    let task = ctx.task.clone();
    let mut attempt = || -> bool {
        let mut st = q.lock();
        if st.count >= q.maxmsg {
            return false;
        }
        let Some(d) = data.take() else {
            return true;
        };
        st.bytes += d.len() as u64;
        st.count += 1;
        st.msgs.entry(prio).or_default().push_back(d);
        if st.count == 1 {
            notify(&mut st, &task);
        }
        true
    };
    if !attempt() {
        if f.nonblocking() {
            return error!(EAGAIN);
        }
        q.waiters.wait(Some(ctx.task), dl, &mut attempt)?;
    }
    q.waiters.wake_all();
    Ok(0)
}

fn sys_mq_timedreceive(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    msg: UserAddr,
    len: u64,
    prio: UserAddr,
    timeout: UserAddr,
) -> KResult<u64> {
    let dl = deadline(ctx.task, timeout)?;
    let (f, q) = queue_of(ctx, fd)?;
    if !f.can_read() {
        return error!(EBADF);
    }
    if len < q.msgsize as u64 {
        return error!(EMSGSIZE);
    }
    let mut got: Option<(u32, Vec<u8>)> = None;
    let mut attempt = || -> bool {
        let mut st = q.lock();
        let Some((&p, list)) = st.msgs.iter_mut().next_back() else {
            return false;
        };
        let Some(m) = list.pop_front() else {
            return false;
        };
        if list.is_empty() {
            st.msgs.remove(&p);
        }
        st.count -= 1;
        st.bytes -= m.len() as u64;
        got = Some((p, m));
        true
    };
    if !attempt() {
        if f.nonblocking() {
            return error!(EAGAIN);
        }
        q.lock().receivers += 1;
        let r = q.waiters.wait(Some(ctx.task), dl, &mut attempt);
        q.lock().receivers -= 1;
        r?;
    }
    q.waiters.wake_all();
    let Some((p, m)) = got else {
        return error!(EINTR);
    };
    let mm = ctx.mm();
    mm.write_bytes(msg.0, &m)?;
    if !prio.is_null() {
        mm.write_val(prio.0, &p)?;
    }
    Ok(m.len() as u64)
}

fn sys_mq_notify(ctx: &mut SyscallContext<'_>, fd: Fd, sev: UserAddr) -> KResult<u64> {
    let ev = if sev.is_null() {
        None
    } else {
        Some(ctx.mm().read_val::<SigEvent>(sev.0)?)
    };
    if let Some(e) = &ev {
        match e.notify {
            SIGEV_NONE => {}
            SIGEV_SIGNAL => {
                if !(0..=64).contains(&e.signo) {
                    return error!(EINVAL);
                }
            }
            SIGEV_THREAD => {
                // glibc's SIGEV_THREAD passes a netlink socket; ruml has
                // none, so the descriptor is never one (Linux: EBADF for a
                // bad descriptor, ECONNREFUSED for a socket of another kind).
                crate::fs::fd_get(ctx.task, e.signo)?;
                return error!(ECONNREFUSED);
            }
            _ => return error!(EINVAL),
        }
    }
    let (_, q) = queue_of(ctx, fd)?;
    let tgid = ctx.task.tgid();
    let mut st = q.lock();
    reap_notify(&mut st);
    match ev {
        None => {
            if st.notify.is_some_and(|n| n.tgid == tgid) {
                st.notify = None;
            }
        }
        Some(e) => {
            if st.notify.is_some() {
                return error!(EBUSY);
            }
            st.notify = Some(Notify {
                tgid,
                notify: e.notify,
                signo: e.signo,
                value: e.value,
            });
        }
    }
    Ok(0)
}

fn sys_mq_getsetattr(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    new: UserAddr,
    old: UserAddr,
) -> KResult<u64> {
    let newattr = if new.is_null() {
        None
    } else {
        let a: MqAttr = ctx.mm().read_val(new.0)?;
        if a.flags & !(O_NONBLOCK as i64) != 0 {
            return error!(EINVAL);
        }
        Some(a)
    };
    let (f, q) = queue_of(ctx, fd)?;
    if !old.is_null() {
        let cur = q.lock().count;
        let a = MqAttr {
            flags: (f.flags() & O_NONBLOCK) as i64,
            maxmsg: q.maxmsg,
            msgsize: q.msgsize,
            curmsgs: cur,
            reserved: [0; 4],
        };
        ctx.mm().write_val(old.0, &a)?;
    }
    if let Some(a) = newattr {
        f.set_nonblocking(a.flags & O_NONBLOCK as i64 != 0);
    }
    Ok(0)
}
