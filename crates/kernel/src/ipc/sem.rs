//! System V semaphores: semget, semop, semtimedop, semctl, and SEM_UNDO
//! adjustments applied when a process exits.
//!
//! Sets and the per-process undo lists live in one [`State`] under one
//! mutex. semop applies all its operations or none (Linux's
//! perform_atomic_semop); a caller that would block sleeps on the set's
//! wait queue, registered while it sleeps (with the semaphore and the kind
//! of operation that blocked it) so GETNCNT/GETZCNT can count it. Every
//! change of a set's values wakes its sleepers to retry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{
    check_owner, ipcget, ipcperms, new_perm, now, Cred, Ids, Ipc64Perm, IpcObject, Perm, IPC_64,
    IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, LIMITS, S_IRUGO, S_IWUGO,
};
use crate::abi::Pod;
use crate::errno::{Errno, KResult};
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::wait::WaitQueue;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

const SEM_UNDO: i16 = 0x1000;
/// Linux's SEMVMX and SEMAEM.
pub const SEMVMX: i32 = 32767;
const SEMAEM: i32 = SEMVMX;
const SEMUSZ: i32 = 20;

crate::abi_struct! {
    /// struct semid64_ds (x86_64).
    pub struct SemidDs {
        pub perm: Ipc64Perm,
        pub otime: i64,
        pub unused1: u64,
        pub ctime: i64,
        pub unused2: u64,
        pub nsems: u64,
        pub unused3: u64,
        pub unused4: u64,
    }
}

crate::abi_struct! {
    /// struct seminfo.
    pub struct SemInfo {
        pub semmap: i32,
        pub semmni: i32,
        pub semmns: i32,
        pub semmnu: i32,
        pub semmsl: i32,
        pub semopm: i32,
        pub semume: i32,
        pub semusz: i32,
        pub semvmx: i32,
        pub semaem: i32,
    }
}

crate::abi_struct! {
    /// struct sembuf.
    pub struct SemBuf {
        pub num: u16,
        pub op: i16,
        pub flg: i16,
    }
}

#[derive(Clone, Copy, Default)]
struct Sem {
    val: i32,
    pid: i32,
}

/// One semaphore set. Locking: the [`State`] mutex.
pub struct SemSet {
    perm: Perm,
    id: i32,
    serial: u64,
    sems: Vec<Sem>,
    otime: i64,
    ctime: i64,
    /// Sleepers in semop: token → (semaphore, waits for zero).
    waiting: HashMap<u64, (u16, bool)>,
    wq: Arc<WaitQueue>,
}

impl IpcObject for SemSet {
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

impl SemSet {
    fn ds(&self) -> SemidDs {
        SemidDs {
            perm: self.perm.to_abi(),
            otime: self.otime,
            ctime: self.ctime,
            nsems: self.sems.len() as u64,
            ..Default::default()
        }
    }
}

/// A process's adjustments for one set (struct sem_undo).
struct Undo {
    id: i32,
    serial: u64,
    adj: Vec<i32>,
}

#[derive(Default)]
struct State {
    ids: Ids<SemSet>,
    /// SEM_UNDO adjustments by process (tgid); not inherited by fork,
    /// kept across exec, applied at exit.
    undo: HashMap<i32, Vec<Undo>>,
}

impl State {
    fn used_sems(&self) -> u64 {
        self.ids.map.values().map(|s| s.sems.len() as u64).sum()
    }
    /// Forgets every adjustment for semaphore `num` (all if None) of set
    /// `serial`: SETVAL and SETALL.
    fn clear_undo(&mut self, serial: u64, num: Option<usize>) {
        for list in self.undo.values_mut() {
            for u in list.iter_mut().filter(|u| u.serial == serial) {
                match num {
                    Some(n) => {
                        if let Some(a) = u.adj.get_mut(n) {
                            *a = 0;
                        }
                    }
                    None => u.adj.iter_mut().for_each(|a| *a = 0),
                }
            }
        }
    }
}

/// One table per IPC namespace (task/ns.rs), keyed by its number.
static STATE: std::sync::LazyLock<Mutex<std::collections::HashMap<u64, Option<State>>>> =
    std::sync::LazyLock::new(Default::default);

/// The current task's IPC namespace's table, locked.
fn state() -> crate::task::ns::PerNet<Option<State>> {
    crate::task::ns::PerNet::lock_at(&STATE, crate::task::ns::current_ipc(), |_| None)
}

/// An IPC namespace is gone: its objects go.
pub(crate) fn ns_gone(ns: u64) {
    let gone = STATE.lock().unwrap_or_else(|p| p.into_inner()).remove(&ns);
    drop(gone);
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut s = state();
    f(s.get_or_insert_with(State::default))
}

syscall_table! { pub fn sem_table;
    SEMGET => sys_semget(key: i32, nsems: i32, flg: i32),
    SEMOP => sys_semop(id: i32, sops: UserAddr, nsops: u64),
    SEMTIMEDOP => sys_semtimedop(id: i32, sops: UserAddr, nsops: u64, timeout: UserAddr),
    SEMCTL => sys_semctl(id: i32, num: i32, cmd: i32, arg: u64),
}

fn sys_semget(ctx: &mut SyscallContext<'_>, key: i32, nsems: i32, flg: i32) -> KResult<u64> {
    if nsems < 0 || nsems as i64 > LIMITS.semmsl.get() {
        return error!(EINVAL);
    }
    let cred = Cred::of(ctx.task);
    with(|st| {
        let used = st.used_sems();
        ipcget(
            &mut st.ids,
            &cred,
            key,
            flg,
            |s| {
                if nsems as usize > s.sems.len() {
                    error!(EINVAL)
                } else {
                    Ok(())
                }
            },
            |ids| {
                if nsems == 0 {
                    return error!(EINVAL);
                }
                if used + nsems as u64 > LIMITS.semmns.get().max(0) as u64 {
                    return error!(ENOSPC);
                }
                // Beyond Linux's limits, the instance's IPC budget.
                if (used + nsems as u64) * std::mem::size_of::<Sem>() as u64 > super::heap_budget()
                {
                    return error!(ENOMEM);
                }
                let (idx, id, seq, serial) = ids.alloc(LIMITS.semmni.get().max(0) as u32)?;
                ids.map.insert(
                    idx,
                    SemSet {
                        perm: new_perm(&cred, key, flg, seq),
                        id,
                        serial,
                        sems: vec![Sem::default(); nsems as usize],
                        otime: 0,
                        ctime: now(),
                        waiting: HashMap::new(),
                        wq: Arc::new(WaitQueue::new()),
                    },
                );
                Ok(id)
            },
        )
    })
    .map(|id| id as u64)
}

fn sys_semop(ctx: &mut SyscallContext<'_>, id: i32, sops: UserAddr, nsops: u64) -> KResult<u64> {
    semtimedop(ctx, id, sops, nsops, None)
}

fn sys_semtimedop(
    ctx: &mut SyscallContext<'_>,
    id: i32,
    sops: UserAddr,
    nsops: u64,
    timeout: UserAddr,
) -> KResult<u64> {
    semtimedop(ctx, id, sops, nsops, Some(timeout).filter(|t| !t.is_null()))
}

/// What one attempt at the operations gives.
enum Try {
    Done,
    Block(u16, bool),
}

/// Linux's perform_atomic_semop: all operations or none. EAGAIN for a
/// blocking operation with IPC_NOWAIT, ERANGE past SEMVMX or SEMAEM.
fn perform(set: &mut SemSet, undo: Option<&mut Undo>, ops: &[SemBuf], tgid: i32) -> KResult<Try> {
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    let mut adj: Option<Vec<i32>> = undo.as_ref().map(|u| u.adj.clone());
    for op in ops {
        let n = op.num as usize;
        let cur = vals[n];
        let result = cur + op.op as i32;
        let blocks = if op.op == 0 { cur != 0 } else { result < 0 };
        if blocks {
            if op.flg & IPC_NOWAIT as i16 != 0 {
                return error!(EAGAIN);
            }
            return Ok(Try::Block(op.num, op.op == 0));
        }
        if result > SEMVMX {
            return error!(ERANGE);
        }
        if op.flg & SEM_UNDO != 0 {
            if let Some(a) = adj.as_mut() {
                let u = a[n] - op.op as i32;
                if !(-SEMAEM - 1..=SEMAEM).contains(&u) {
                    return error!(ERANGE);
                }
                a[n] = u;
            }
        }
        vals[n] = result;
    }
    for (s, v) in set.sems.iter_mut().zip(&vals) {
        s.val = *v;
    }
    for op in ops {
        set.sems[op.num as usize].pid = tgid;
    }
    if let (Some(u), Some(a)) = (undo, adj) {
        u.adj = a;
    }
    set.otime = now();
    Ok(Try::Done)
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn semtimedop(
    ctx: &SyscallContext<'_>,
    id: i32,
    sops: UserAddr,
    nsops: u64,
    timeout: Option<UserAddr>,
) -> KResult<u64> {
    if nsops < 1 || id < 0 {
        return error!(EINVAL);
    }
    if nsops > LIMITS.semopm.get().max(0) as u64 {
        return error!(E2BIG);
    }
    let mm = ctx.mm();
    let mut raw = super::guest_buf((nsops as usize).saturating_mul(6))?;
    mm.read_bytes(sops.0, &mut raw)?;
    let ops: Vec<SemBuf> = raw.chunks(6).map(SemBuf::from_bytes).collect();
    let deadline = match timeout {
        Some(t) => Some(Instant::now() + super::read_timeout(ctx.task, t.0)?),
        None => None,
    };
    let max = ops.iter().map(|o| o.num).max().unwrap_or(0);
    let undos = ops.iter().any(|o| o.flg & SEM_UNDO != 0);
    let alter = ops.iter().any(|o| o.op != 0);
    let cred = Cred::of(ctx.task);
    let tgid = ctx.task.tgid();
    let (wq, serial) = with(|st| -> KResult<_> {
        let set = st.ids.get(id)?;
        if max as usize >= set.sems.len() {
            return error!(EFBIG);
        }
        if !ipcperms(&cred, &set.perm, if alter { S_IWUGO } else { S_IRUGO }) {
            return error!(EACCES);
        }
        Ok((set.wq.clone(), set.serial))
    })?;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let attempt = || -> Option<KResult<u64>> {
        with(|st| {
            let State { ids, undo } = st;
            let set = match ids.get_mut(id) {
                Ok(s) if s.serial == serial => s,
                _ => return Some(error!(EIDRM)),
            };
            let u = if undos {
                let list = undo.entry(tgid).or_default();
                let i = match list.iter().position(|u| u.serial == serial) {
                    Some(i) => i,
                    None => {
                        list.push(Undo {
                            id,
                            serial,
                            adj: vec![0; set.sems.len()],
                        });
                        list.len() - 1
                    }
                };
                Some(&mut list[i])
            } else {
                None
            };
            match perform(set, u, &ops, tgid) {
                Err(e) => {
                    set.waiting.remove(&token);
                    Some(Err(e))
                }
                Ok(Try::Done) => {
                    set.waiting.remove(&token);
                    if alter {
                        set.wq.wake_all();
                    }
                    Some(Ok(0))
                }
                Ok(Try::Block(num, zero)) => {
                    set.waiting.insert(token, (num, zero));
                    None
                }
            }
        })
    };
    if let Some(r) = attempt() {
        return r;
    }
    let mut out = None;
    let r = wq.wait(ctx.task, deadline, || {
        out = attempt();
        out.is_some()
    });
    if out.is_none() {
        with(|st| {
            if let Ok(s) = st.ids.get_mut(id) {
                s.waiting.remove(&token);
            }
        });
    }
    match (r, out) {
        (_, Some(r)) => r,
        (Err(Errno::ETIMEDOUT), None) => error!(EAGAIN),
        (Err(Errno::ERESTARTSYS) | Err(Errno::EINTR), None) => error!(EINTR),
        (Err(e), None) => Err(e),
        (Ok(()), None) => error!(EINTR),
    }
}

fn sys_semctl(ctx: &mut SyscallContext<'_>, id: i32, num: i32, cmd: i32, arg: u64) -> KResult<u64> {
    if id < 0 || cmd < 0 || cmd & IPC_64 != 0 {
        return error!(EINVAL);
    }
    let cred = Cred::of(ctx.task);
    let tgid = ctx.task.tgid();
    let mm = ctx.mm();
    match cmd {
        IPC_INFO | SEM_INFO => {
            let (info, max) = with(|st| {
                let mut i = SemInfo {
                    semmni: LIMITS.semmni.get() as i32,
                    semmns: LIMITS.semmns.get() as i32,
                    semmsl: LIMITS.semmsl.get() as i32,
                    semopm: LIMITS.semopm.get() as i32,
                    semvmx: SEMVMX,
                    semmnu: 1_024_000_000,
                    semmap: 1_024_000_000,
                    semume: 500,
                    semusz: SEMUSZ,
                    semaem: SEMAEM,
                };
                if cmd == SEM_INFO {
                    i.semusz = st.ids.map.len() as i32;
                    i.semaem = st.used_sems() as i32;
                }
                (i, st.ids.max_idx())
            });
            mm.write_val(arg, &info)?;
            Ok(max)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (ds, ret) = with(|st| -> KResult<_> {
                let s = if cmd == IPC_STAT {
                    st.ids.get(id)?
                } else {
                    st.ids.at_index(id)?
                };
                if cmd != SEM_STAT_ANY && !ipcperms(&cred, &s.perm, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok((s.ds(), if cmd == IPC_STAT { 0 } else { s.id as u64 }))
            })?;
            mm.write_val(arg, &ds)?;
            Ok(ret)
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => with(|st| {
            let s = st.ids.get(id)?;
            if !ipcperms(&cred, &s.perm, S_IRUGO) {
                return error!(EACCES);
            }
            if num < 0 || num as usize >= s.sems.len() {
                return error!(EINVAL);
            }
            let sem = s.sems[num as usize];
            Ok(match cmd {
                GETVAL => sem.val as u64,
                GETPID => sem.pid as u64,
                _ => s
                    .waiting
                    .values()
                    .filter(|&&(n, zero)| n as i32 == num && zero == (cmd == GETZCNT))
                    .count() as u64,
            })
        }),
        GETALL => {
            let vals: Vec<u16> = with(|st| -> KResult<_> {
                let s = st.ids.get(id)?;
                if !ipcperms(&cred, &s.perm, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok(s.sems.iter().map(|x| x.val as u16).collect())
            })?;
            let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            mm.write_bytes(arg, &bytes)?;
            Ok(0)
        }
        SETVAL => {
            let val = arg as i32;
            if !(0..=SEMVMX).contains(&val) {
                return error!(ERANGE);
            }
            with(|st| {
                let s = st.ids.get_mut(id)?;
                if num < 0 || num as usize >= s.sems.len() {
                    return error!(EINVAL);
                }
                if !ipcperms(&cred, &s.perm, S_IWUGO) {
                    return error!(EACCES);
                }
                s.sems[num as usize] = Sem { val, pid: tgid };
                s.ctime = now();
                s.wq.wake_all();
                let serial = s.serial;
                st.clear_undo(serial, Some(num as usize));
                Ok(0)
            })
        }
        SETALL => {
            let (n, serial) = with(|st| -> KResult<_> {
                let s = st.ids.get(id)?;
                if !ipcperms(&cred, &s.perm, S_IWUGO) {
                    return error!(EACCES);
                }
                Ok((s.sems.len(), s.serial))
            })?;
            let mut raw = vec![0u8; n * 2];
            mm.read_bytes(arg, &mut raw)?;
            let vals: Vec<i32> = raw
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect();
            if vals.iter().any(|&v| v > SEMVMX) {
                return error!(ERANGE);
            }
            with(|st| {
                let s = match st.ids.get_mut(id) {
                    Ok(s) if s.serial == serial => s,
                    _ => return error!(EIDRM),
                };
                for (sem, &v) in s.sems.iter_mut().zip(&vals) {
                    *sem = Sem { val: v, pid: tgid };
                }
                s.ctime = now();
                s.wq.wake_all();
                st.clear_undo(serial, None);
                Ok(0)
            })
        }
        IPC_SET => {
            let new: SemidDs = mm.read_val(arg)?;
            with(|st| {
                let s = st.ids.get_mut(id)?;
                check_owner(&cred, &s.perm)?;
                super::set_perm(&mut s.perm, &new.perm);
                s.ctime = now();
                Ok(0)
            })
        }
        IPC_RMID => with(|st| {
            let s = st.ids.get(id)?;
            check_owner(&cred, &s.perm)?;
            if let Some(s) = st.ids.remove(id) {
                s.wq.wake_all();
                for list in st.undo.values_mut() {
                    list.retain(|u| u.serial != s.serial);
                }
            }
            Ok(0)
        }),
        _ => error!(EINVAL),
    }
}

/// SEM_UNDO at exit: the adjustments process `tgid` holds are applied
/// (clamped to 0..=SEMVMX, as Linux's exit_sem) and its sleepers retried.
pub fn exit_undo(tgid: i32) {
    with(|st| {
        let Some(list) = st.undo.remove(&tgid) else {
            return;
        };
        for u in list {
            let Ok(set) = st.ids.get_mut(u.id) else {
                continue;
            };
            if set.serial != u.serial {
                continue;
            }
            for (sem, &a) in set.sems.iter_mut().zip(&u.adj) {
                if a != 0 {
                    sem.val = (sem.val + a).clamp(0, SEMVMX);
                    sem.pid = tgid;
                }
            }
            set.otime = now();
            set.wq.wake_all();
        }
    });
}

/// Lines of /proc/sysvipc/sem.
pub fn proc_text() -> String {
    let mut s = String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    with(|st| {
        for set in st.ids.map.values() {
            s.push_str(&format!(
                "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}\n",
                set.perm.key,
                set.id,
                set.perm.mode,
                set.sems.len(),
                set.perm.uid,
                set.perm.gid,
                set.perm.cuid,
                set.perm.cgid,
                set.otime,
                set.ctime
            ));
        }
    });
    s
}
