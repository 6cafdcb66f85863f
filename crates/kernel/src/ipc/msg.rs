//! System V message queues: msgget, msgsnd, msgrcv, msgctl.
//!
//! All queues live in [`TABLE`] under one mutex. A queue holds at most
//! `msg_qbytes` bytes and as many messages (Linux's msg_fits_inqueue), and
//! a message at most msgmax bytes, so a guest makes the kernel keep at most
//! msgmni × msgmnb bytes. Senders and receivers that must wait sleep on
//! the queue's [`WaitQueue`] (see the module doc of `ipc`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{
    check_owner, ipcget, ipcperms, new_perm, now, Cred, Ids, Ipc64Perm, IpcObject, Perm, IPC_64,
    IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, LIMITS, S_IRUGO, S_IWUGO,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::wait::WaitQueue;

const MSG_NOERROR: i32 = 0o10000;
const MSG_EXCEPT: i32 = 0o20000;
const MSG_COPY: i32 = 0o40000;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;

/// Linux's MSGSSZ, MSGSEG.
const MSGSSZ: i32 = 16;
const MSGSEG: u16 = 0xffff;

crate::abi_struct! {
    /// struct msqid64_ds (x86_64).
    pub struct MsqidDs {
        pub perm: Ipc64Perm,
        pub stime: i64,
        pub rtime: i64,
        pub ctime: i64,
        pub cbytes: u64,
        pub qnum: u64,
        pub qbytes: u64,
        pub lspid: i32,
        pub lrpid: i32,
        pub unused4: u64,
        pub unused5: u64,
    }
}

crate::abi_struct! {
    /// struct msginfo.
    pub struct MsgInfo {
        pub msgpool: i32,
        pub msgmap: i32,
        pub msgmax: i32,
        pub msgmnb: i32,
        pub msgmni: i32,
        pub msgssz: i32,
        pub msgtql: i32,
        pub msgseg: u16,
        pub pad: u16,
    }
}

struct Msg {
    mtype: i64,
    text: Vec<u8>,
}

/// One queue. Locking: [`TABLE`]'s mutex.
pub struct MsgQueue {
    perm: Perm,
    id: i32,
    serial: u64,
    msgs: VecDeque<Msg>,
    cbytes: u64,
    qbytes: u64,
    lspid: i32,
    lrpid: i32,
    stime: i64,
    rtime: i64,
    ctime: i64,
    /// Tasks waiting to send or receive; shared so that a waiter can sleep
    /// on it without holding the table.
    wq: Arc<WaitQueue>,
}

impl IpcObject for MsgQueue {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
    fn id(&self) -> i32 {
        self.id
    }
}

impl MsgQueue {
    fn ds(&self) -> MsqidDs {
        MsqidDs {
            perm: self.perm.to_abi(),
            stime: self.stime,
            rtime: self.rtime,
            ctime: self.ctime,
            cbytes: self.cbytes,
            qnum: self.msgs.len() as u64,
            qbytes: self.qbytes,
            lspid: self.lspid,
            lrpid: self.lrpid,
            ..Default::default()
        }
    }
}

/// One table per IPC namespace (task/ns.rs), keyed by its number.
static TABLE: std::sync::LazyLock<Mutex<std::collections::HashMap<u64, Option<Ids<MsgQueue>>>>> =
    std::sync::LazyLock::new(Default::default);

/// The current task's IPC namespace's table, locked.
fn table() -> crate::task::ns::PerNet<Option<Ids<MsgQueue>>> {
    crate::task::ns::PerNet::lock_at(&TABLE, crate::task::ns::current_ipc(), |_| None)
}

/// An IPC namespace is gone: its objects go.
pub(crate) fn ns_gone(ns: u64) {
    let gone = TABLE.lock().unwrap_or_else(|p| p.into_inner()).remove(&ns);
    drop(gone);
}

/// Runs `f` on the table.
fn with<R>(f: impl FnOnce(&mut Ids<MsgQueue>) -> R) -> R {
    let mut t = table();
    f(t.get_or_insert_with(Ids::default))
}

syscall_table! { pub fn msg_table;
    MSGGET => sys_msgget(key: i32, flg: i32),
    MSGSND => sys_msgsnd(id: i32, msgp: UserAddr, size: i64, flg: i32),
    MSGRCV => sys_msgrcv(id: i32, msgp: UserAddr, size: i64, typ: i64, flg: i32),
    MSGCTL => sys_msgctl(id: i32, cmd: i32, buf: UserAddr),
}

fn sys_msgget(ctx: &mut SyscallContext<'_>, key: i32, flg: i32) -> KResult<u64> {
    let cred = Cred::of(ctx.task);
    with(|ids| {
        ipcget(
            ids,
            &cred,
            key,
            flg,
            |_| Ok(()),
            |ids| {
                let (idx, id, seq, serial) = ids.alloc(LIMITS.msgmni.get().max(0) as u32)?;
                ids.map.insert(
                    idx,
                    MsgQueue {
                        perm: new_perm(&cred, key, flg, seq),
                        id,
                        serial,
                        msgs: VecDeque::new(),
                        cbytes: 0,
                        qbytes: LIMITS.msgmnb.get().max(0) as u64,
                        lspid: 0,
                        lrpid: 0,
                        stime: 0,
                        rtime: 0,
                        ctime: now(),
                        wq: Arc::new(WaitQueue::new()),
                    },
                );
                Ok(id)
            },
        )
    })
    .map(|id| id as u64)
}

/// The queue's wait queue and serial, after the permission check.
fn open_queue(id: i32, cred: &Cred, flag: u32) -> KResult<(Arc<WaitQueue>, u64)> {
    with(|ids| {
        let q = ids.get(id)?;
        if !ipcperms(cred, &q.perm, flag) {
            return error!(EACCES);
        }
        Ok((q.wq.clone(), q.serial))
    })
}

/// The queue `id` if it is still the one with `serial`; EIDRM if removed.
fn live(ids: &mut Ids<MsgQueue>, id: i32, serial: u64) -> KResult<&mut MsgQueue> {
    match ids.get_mut(id) {
        Ok(q) if q.serial == serial => Ok(q),
        _ => error!(EIDRM),
    }
}

/// Sleeps on `wq` until `attempt` gives a result (Some). `attempt` runs
/// once before any sleep and after every wake; the waiter is queued
/// before each check. A signal gives ERESTARTNOHAND (EINTR to a handler,
/// as Linux: SA_RESTART does not restart these calls).
fn wait_for<R>(
    ctx: &SyscallContext<'_>,
    wq: &WaitQueue,
    nowait: Errno,
    block: bool,
    mut attempt: impl FnMut() -> Option<KResult<R>>,
) -> KResult<R> {
    if let Some(r) = attempt() {
        return r;
    }
    if !block {
        return Err(nowait);
    }
    let mut out = None;
    let r = wq.wait(ctx.task, None, || {
        out = attempt();
        out.is_some()
    });
    match (r, out) {
        (_, Some(r)) => r,
        (Err(Errno::ERESTARTSYS) | Err(Errno::EINTR), None) => error!(ERESTARTNOHAND),
        (Err(e), None) => Err(e),
        (Ok(()), None) => error!(EINTR),
    }
}

fn sys_msgsnd(
    ctx: &mut SyscallContext<'_>,
    id: i32,
    msgp: UserAddr,
    size: i64,
    flg: i32,
) -> KResult<u64> {
    // As Linux: mtype is fetched (EFAULT) before the arguments are checked.
    let mm = ctx.mm();
    let mtype: i64 = mm.read_val(msgp.0)?;
    if size < 0 || size > LIMITS.msgmax.get() || id < 0 {
        return error!(EINVAL);
    }
    if mtype < 1 {
        return error!(EINVAL);
    }
    let mut text = super::guest_buf(size as usize)?;
    mm.read_bytes(msgp.0.wrapping_add(8), &mut text)?;
    let cred = Cred::of(ctx.task);
    let (wq, serial) = open_queue(id, &cred, S_IWUGO)?;
    let tgid = ctx.task.tgid();
    let mut msg = Some(Msg { mtype, text });
    let size = size as u64;
    wait_for(ctx, &wq, Errno::EAGAIN, flg & IPC_NOWAIT == 0, || {
        with(|ids| {
            let q = match live(ids, id, serial) {
                Ok(q) => q,
                Err(e) => return Some(Err(e)),
            };
            // Linux's msg_fits_inqueue: bytes and count both bounded by
            // msg_qbytes.
            if q.cbytes + size > q.qbytes || q.msgs.len() as u64 + 1 > q.qbytes {
                return None;
            }
            // All queues together stay within the instance's IPC budget.
            let total: u64 = ids.map.values().map(|q| q.cbytes).sum();
            if total + size > super::heap_budget() {
                return Some(error!(ENOMEM));
            }
            let q = match live(ids, id, serial) {
                Ok(q) => q,
                Err(e) => return Some(Err(e)),
            };
            let m = msg.take()?;
            q.cbytes += size;
            q.msgs.push_back(m);
            q.lspid = tgid;
            q.stime = now();
            q.wq.wake_all();
            Some(Ok(0))
        })
    })
}

#[derive(Clone, Copy)]
enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    LessEqual(i64),
    Number(i64),
}

fn find(q: &MsgQueue, s: Search) -> Option<usize> {
    match s {
        Search::Any => (!q.msgs.is_empty()).then_some(0),
        Search::Equal(t) => q.msgs.iter().position(|m| m.mtype == t),
        Search::NotEqual(t) => q.msgs.iter().position(|m| m.mtype != t),
        Search::LessEqual(t) => {
            let mut best: Option<(usize, i64)> = None;
            for (i, m) in q.msgs.iter().enumerate() {
                if m.mtype <= t && best.is_none_or(|(_, bt)| m.mtype < bt) {
                    best = Some((i, m.mtype));
                }
            }
            best.map(|(i, _)| i)
        }
        Search::Number(n) => (n >= 0 && (n as u64) < q.msgs.len() as u64).then_some(n as usize),
    }
}

fn sys_msgrcv(
    ctx: &mut SyscallContext<'_>,
    id: i32,
    msgp: UserAddr,
    size: i64,
    typ: i64,
    flg: i32,
) -> KResult<u64> {
    if id < 0 || size < 0 {
        return error!(EINVAL);
    }
    let copy = flg & MSG_COPY != 0;
    if copy && (flg & MSG_EXCEPT != 0 || flg & IPC_NOWAIT == 0) {
        return error!(EINVAL);
    }
    let search = if copy {
        Search::Number(typ)
    } else if typ == 0 {
        Search::Any
    } else if typ < 0 {
        Search::LessEqual(if typ == i64::MIN { i64::MAX } else { -typ })
    } else if flg & MSG_EXCEPT != 0 {
        Search::NotEqual(typ)
    } else {
        Search::Equal(typ)
    };
    let cred = Cred::of(ctx.task);
    let (wq, serial) = open_queue(id, &cred, S_IRUGO)?;
    let tgid = ctx.task.tgid();
    let size = size as u64;
    let msg = wait_for(ctx, &wq, Errno::ENOMSG, flg & IPC_NOWAIT == 0, || {
        with(|ids| {
            let q = match live(ids, id, serial) {
                Ok(q) => q,
                Err(e) => return Some(Err(e)),
            };
            let i = find(q, search)?;
            let len = q.msgs[i].text.len() as u64;
            if len > size && flg & MSG_NOERROR == 0 {
                return Some(error!(E2BIG));
            }
            if copy {
                let m = &q.msgs[i];
                return Some(Ok(Msg {
                    mtype: m.mtype,
                    text: m.text.clone(),
                }));
            }
            let m = q.msgs.remove(i)?;
            q.cbytes -= len;
            q.lrpid = tgid;
            q.rtime = now();
            q.wq.wake_all();
            Some(Ok(m))
        })
    })?;
    let n = (msg.text.len() as u64).min(size) as usize;
    let mm = ctx.mm();
    mm.write_val(msgp.0, &msg.mtype)?;
    mm.write_bytes(msgp.0.wrapping_add(8), &msg.text[..n])?;
    Ok(n as u64)
}

fn sys_msgctl(ctx: &mut SyscallContext<'_>, id: i32, cmd: i32, buf: UserAddr) -> KResult<u64> {
    if id < 0 || cmd < 0 || cmd & IPC_64 != 0 {
        return error!(EINVAL);
    }
    let cred = Cred::of(ctx.task);
    match cmd {
        IPC_INFO | MSG_INFO => {
            let (info, max) = with(|ids| {
                let mut i = MsgInfo {
                    msgmni: LIMITS.msgmni.get() as i32,
                    msgmax: LIMITS.msgmax.get() as i32,
                    msgmnb: LIMITS.msgmnb.get() as i32,
                    msgssz: MSGSSZ,
                    msgseg: MSGSEG,
                    ..Default::default()
                };
                if cmd == MSG_INFO {
                    i.msgpool = ids.map.len() as i32;
                    i.msgmap = ids.map.values().map(|q| q.msgs.len()).sum::<usize>() as i32;
                    i.msgtql = ids.map.values().map(|q| q.cbytes).sum::<u64>() as i32;
                } else {
                    // MSGPOOL (in KiB), MSGMAP, MSGTQL.
                    i.msgpool = 32000 * 16384 / 1024;
                    i.msgmap = 16384;
                    i.msgtql = 16384;
                }
                (i, ids.max_idx())
            });
            ctx.mm().write_val(buf.0, &info)?;
            Ok(max)
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let (ds, ret) = with(|ids| -> KResult<_> {
                let q = if cmd == IPC_STAT {
                    ids.get(id)?
                } else {
                    ids.at_index(id)?
                };
                if cmd != MSG_STAT_ANY && !ipcperms(&cred, &q.perm, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok((q.ds(), if cmd == IPC_STAT { 0 } else { q.id as u64 }))
            })?;
            ctx.mm().write_val(buf.0, &ds)?;
            Ok(ret)
        }
        IPC_SET => {
            let new: MsqidDs = ctx.mm().read_val(buf.0)?;
            with(|ids| {
                let q = ids.get_mut(id)?;
                check_owner(&cred, &q.perm)?;
                if new.qbytes > LIMITS.msgmnb.get() as u64
                    && !cred.privileged(crate::task::caps::Cap::SysResource)
                {
                    return error!(EPERM);
                }
                q.qbytes = new.qbytes;
                super::set_perm(&mut q.perm, &new.perm);
                q.ctime = now();
                // Senders may fit now.
                q.wq.wake_all();
                Ok(0)
            })
        }
        IPC_RMID => with(|ids| {
            let q = ids.get(id)?;
            check_owner(&cred, &q.perm)?;
            if let Some(q) = ids.remove(id) {
                q.wq.wake_all();
            }
            Ok(0)
        }),
        _ => error!(EINVAL),
    }
}

/// Lines of /proc/sysvipc/msg.
pub fn proc_text() -> String {
    let mut s = String::from(
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
    );
    with(|ids| {
        for q in ids.map.values() {
            s.push_str(&format!(
                "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}\n",
                q.perm.key,
                q.id,
                q.perm.mode,
                q.cbytes,
                q.msgs.len(),
                q.lspid,
                q.lrpid,
                q.perm.uid,
                q.perm.gid,
                q.perm.cuid,
                q.perm.cgid,
                q.stime,
                q.rtime,
                q.ctime
            ));
        }
    });
    s
}
