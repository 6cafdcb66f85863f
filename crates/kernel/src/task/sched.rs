//! Scheduling parameters and nice values: sched_setscheduler,
//! sched_setparam, sched_setattr and their getters, getpriority and
//! setpriority, with Linux's privilege rules (CAP_SYS_NICE, RLIMIT_NICE,
//! RLIMIT_RTPRIO, other users' processes). The host schedules ruml's
//! threads: the values are kept and reported, not applied.
//!
//! A thread's parameters, its nice value among them, live in
//! `Task::sched` (locked alone, briefly): as on Linux, nice is per thread,
//! so setpriority(PRIO_PROCESS, tid) changes that thread alone, and a new
//! thread or child starts with its creator's.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::caps::Cap;
use super::ns::MapKind;
use super::{Task, ThreadGroup};

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
pub const SCHED_DEADLINE: u32 = 6;
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;
const SCHED_FLAG_ALL: u64 = 0x7f;
const SCHED_FLAG_SUGOV: u64 = 0x1000_0000;

const RLIMIT_NICE: usize = 13;
const RLIMIT_RTPRIO: usize = 14;

/// A thread's scheduling policy and parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedParams {
    pub policy: u32,
    /// SCHED_FIFO/RR priority (1..99), else 0.
    pub priority: u32,
    /// SCHED_RESET_ON_FORK.
    pub reset_on_fork: bool,
    /// SCHED_DEADLINE's runtime, deadline and period (ns).
    pub dl: [u64; 3],
    /// The thread's nice value (-20..19), kept whatever the policy.
    pub nice: i32,
}

impl SchedParams {
    /// What a child inherits at fork: the same, or with SCHED_RESET_ON_FORK
    /// a normal policy and a negative nice back to 0 (the flag itself is
    /// not inherited).
    pub fn for_child(&self) -> SchedParams {
        if !self.reset_on_fork {
            return *self;
        }
        let policy = match self.policy {
            SCHED_FIFO | SCHED_RR | SCHED_DEADLINE => SCHED_OTHER,
            p => p,
        };
        SchedParams {
            policy,
            nice: self.nice.max(0),
            ..SchedParams::default()
        }
    }
}

syscall_table! { pub fn sched_table;
    SCHED_GETSCHEDULER => sys_sched_getscheduler(pid: i32),
    SCHED_SETSCHEDULER => sys_sched_setscheduler(pid: i32, policy: i32, param: UserAddr),
    SCHED_GETPARAM => sys_sched_getparam(pid: i32, param: UserAddr),
    SCHED_SETPARAM => sys_sched_setparam(pid: i32, param: UserAddr),
    SCHED_SETATTR => sys_sched_setattr(pid: i32, attr: UserAddr, flags: u32),
    SCHED_GETATTR => sys_sched_getattr(pid: i32, attr: UserAddr, size: u32, flags: u32),
    SCHED_GET_PRIORITY_MAX => sys_sched_get_priority_max(policy: i32),
    SCHED_GET_PRIORITY_MIN => sys_sched_get_priority_min(policy: i32),
    SCHED_RR_GET_INTERVAL => sys_sched_rr_get_interval(pid: i32, ts: UserAddr),
    GETPRIORITY => sys_getpriority(which: i32, who: i32),
    SETPRIORITY => sys_setpriority(which: i32, who: i32, prio: i32),
}

/// The thread `pid` names (0: the caller): EINVAL for a negative pid,
/// ESRCH when there is none.
fn thread_of(ctx: &SyscallContext<'_>, pid: i32) -> KResult<Arc<Task>> {
    if pid < 0 {
        return error!(EINVAL);
    }
    if pid == 0 {
        return Ok(ctx.task.clone());
    }
    ctx.task
        .pid_lookup(pid)
        .and_then(|g| crate::kernel().tasks.thread(g))
        .ok_or(crate::errno!(ESRCH))
}

fn params(t: &Task) -> SchedParams {
    *t.sched.lock().unwrap_or_else(|p| p.into_inner())
}

fn valid_policy(p: u32) -> bool {
    matches!(
        p,
        SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
    )
}

fn rt(p: u32) -> bool {
    p == SCHED_FIFO || p == SCHED_RR
}

fn fair(p: u32) -> bool {
    p == SCHED_OTHER || p == SCHED_BATCH
}

fn limit(g: &ThreadGroup, res: usize) -> u64 {
    g.limits.lock().unwrap_or_else(|p| p.into_inner())[res][0]
}

/// can_nice: lowering `g`'s nice to `nice` needs RLIMIT_NICE >= 20 - nice
/// (of the target) or CAP_SYS_NICE.
fn can_nice(caller: &Task, g: &ThreadGroup, nice: i32) -> bool {
    (20 - nice) as u64 <= limit(g, RLIMIT_NICE) || caller.privileged(Cap::SysNice)
}

/// Whether the caller's effective uid owns `g` (its real or effective uid).
fn same_owner(caller: &Task, g: &ThreadGroup) -> bool {
    let euid = caller
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .euid;
    let c = g.creds.lock().unwrap_or_else(|p| p.into_inner());
    c.ruid == euid || c.euid == euid
}

/// The kernel's new-parameter request (sched_attr, already clamped).
struct Request {
    /// None: keep the policy (sched_setparam, SCHED_FLAG_KEEP_POLICY).
    policy: Option<u32>,
    flags: u64,
    nice: i32,
    priority: u32,
    dl: [u64; 3],
}

/// __checkparam_dl: a deadline task's runtime <= deadline <= period, at
/// least 1 us of runtime, a period between 100 us and ~4 s.
fn dl_params_ok(dl: [u64; 3]) -> bool {
    let [runtime, deadline, period] = dl;
    if deadline == 0 || runtime < 1024 {
        return false;
    }
    if deadline & (1 << 63) != 0 || period & (1 << 63) != 0 {
        return false;
    }
    if (period != 0 && period < deadline) || deadline < runtime {
        return false;
    }
    let p = if period == 0 { deadline } else { period };
    (100_000..=(1u64 << 22) * 1000).contains(&p)
}

/// __sched_setscheduler with user = true.
fn set_params(ctx: &SyscallContext<'_>, t: &Arc<Task>, r: Request) -> KResult<()> {
    let old = params(t);
    let (policy, reset) = match r.policy {
        None => (old.policy, old.reset_on_fork),
        Some(p) => {
            if !valid_policy(p) {
                return error!(EINVAL);
            }
            (p, r.flags & SCHED_FLAG_RESET_ON_FORK != 0)
        }
    };
    if r.flags & !(SCHED_FLAG_ALL | SCHED_FLAG_SUGOV) != 0 {
        return error!(EINVAL);
    }
    if r.priority > 99 {
        return error!(EINVAL);
    }
    if (policy == SCHED_DEADLINE && !dl_params_ok(r.dl)) || rt(policy) != (r.priority != 0) {
        return error!(EINVAL);
    }
    let g = &t.group;
    let cur_nice = old.nice;
    if !ctx.task.privileged(Cap::SysNice) {
        if fair(policy) && r.nice < cur_nice && !can_nice(ctx.task, g, r.nice) {
            return error!(EPERM);
        }
        if rt(policy) {
            let rlim = limit(g, RLIMIT_RTPRIO);
            if policy != old.policy && rlim == 0 {
                return error!(EPERM);
            }
            if r.priority > old.priority && r.priority as u64 > rlim {
                return error!(EPERM);
            }
        }
        if policy == SCHED_DEADLINE {
            return error!(EPERM);
        }
        if old.policy == SCHED_IDLE && policy != SCHED_IDLE && !can_nice(ctx.task, g, cur_nice) {
            return error!(EPERM);
        }
        if !same_owner(ctx.task, g) {
            return error!(EPERM);
        }
        if old.reset_on_fork && !reset {
            return error!(EPERM);
        }
        if r.flags & SCHED_FLAG_SUGOV != 0 {
            return error!(EINVAL);
        }
    }
    if r.flags & SCHED_FLAG_UTIL_CLAMP != 0 {
        // No utilization clamping (a kernel without CONFIG_UCLAMP_TASK).
        return error!(EOPNOTSUPP);
    }
    *t.sched.lock().unwrap_or_else(|p| p.into_inner()) = SchedParams {
        policy,
        priority: r.priority,
        reset_on_fork: reset,
        dl: if policy == SCHED_DEADLINE {
            r.dl
        } else {
            [0; 3]
        },
        nice: if fair(policy) { r.nice } else { old.nice },
    };
    Ok(())
}

fn sys_sched_getscheduler(ctx: &mut SyscallContext<'_>, pid: i32) -> KResult<u64> {
    let p = params(&*thread_of(ctx, pid)?);
    let flag = if p.reset_on_fork {
        SCHED_RESET_ON_FORK as u32
    } else {
        0
    };
    Ok((p.policy | flag) as u64)
}

/// sched_setscheduler/sched_setparam's `struct sched_param`: EINVAL for a
/// NULL pointer or negative pid before EFAULT, then ESRCH.
fn read_param(ctx: &SyscallContext<'_>, pid: i32, param: UserAddr) -> KResult<(Arc<Task>, u32)> {
    if param.is_null() || pid < 0 {
        return error!(EINVAL);
    }
    let prio: i32 = ctx.mm().read_val(param.0)?;
    let t = thread_of(ctx, pid)?;
    // A negative priority is above 99 as Linux compares it (unsigned).
    Ok((t, prio as u32))
}

fn sys_sched_setscheduler(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    policy: i32,
    param: UserAddr,
) -> KResult<u64> {
    if policy < 0 {
        return error!(EINVAL);
    }
    let (t, priority) = read_param(ctx, pid, param)?;
    let reset = policy & SCHED_RESET_ON_FORK != 0;
    let nice = params(&t).nice;
    set_params(
        ctx,
        &t,
        Request {
            policy: Some((policy & !SCHED_RESET_ON_FORK) as u32),
            flags: if reset { SCHED_FLAG_RESET_ON_FORK } else { 0 },
            nice,
            priority,
            dl: [0; 3],
        },
    )?;
    Ok(0)
}

fn sys_sched_setparam(ctx: &mut SyscallContext<'_>, pid: i32, param: UserAddr) -> KResult<u64> {
    let (t, priority) = read_param(ctx, pid, param)?;
    let nice = params(&t).nice;
    let dl = params(&t).dl;
    set_params(
        ctx,
        &t,
        Request {
            policy: None,
            flags: 0,
            nice,
            priority,
            dl,
        },
    )?;
    Ok(0)
}

fn sys_sched_getparam(ctx: &mut SyscallContext<'_>, pid: i32, param: UserAddr) -> KResult<u64> {
    if param.is_null() || pid < 0 {
        return error!(EINVAL);
    }
    let p = params(&*thread_of(ctx, pid)?);
    ctx.mm().write_val(param.0, &(p.priority as i32))?;
    Ok(0)
}

/// `struct sched_attr` as far as Linux defines it (SCHED_ATTR_SIZE_VER1).
const ATTR_VER0: u32 = 48;
const ATTR_SIZE: u32 = 56;
const PAGE_SIZE: u32 = 4096;

fn sys_sched_setattr(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    attr: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if attr.is_null() || pid < 0 || flags != 0 {
        return error!(EINVAL);
    }
    let mut size: u32 = ctx.mm().read_val(attr.0)?;
    if size == 0 {
        size = ATTR_VER0;
    }
    if !(ATTR_VER0..=PAGE_SIZE).contains(&size) {
        ctx.mm().write_val(attr.0, &ATTR_SIZE)?;
        return error!(E2BIG);
    }
    let mut buf = vec![0u8; size as usize];
    ctx.mm().read_bytes(attr.0, &mut buf)?;
    if buf[ATTR_SIZE.min(size) as usize..].iter().any(|&b| b != 0) {
        ctx.mm().write_val(attr.0, &ATTR_SIZE)?;
        return error!(E2BIG);
    }
    let u32_at = |o: usize| u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
    let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
    let policy = u32_at(4);
    let sflags = u64_at(8);
    let nice = (u32_at(16) as i32).clamp(-20, 19);
    let priority = u32_at(20);
    let dl = [u64_at(24), u64_at(32), u64_at(40)];
    if sflags & SCHED_FLAG_UTIL_CLAMP != 0 && size < ATTR_SIZE {
        return error!(EINVAL);
    }
    if (policy as i32) < 0 {
        return error!(EINVAL);
    }
    let t = thread_of(ctx, pid)?;
    let mut r = Request {
        policy: (sflags & SCHED_FLAG_KEEP_POLICY == 0).then_some(policy),
        flags: sflags,
        nice,
        priority,
        dl,
    };
    if sflags & SCHED_FLAG_KEEP_PARAMS != 0 {
        let old = params(&t);
        r.priority = old.priority;
        r.dl = old.dl;
        r.nice = old.nice;
    }
    set_params(ctx, &t, r)?;
    Ok(0)
}

fn sys_sched_getattr(
    ctx: &mut SyscallContext<'_>,
    pid: i32,
    attr: UserAddr,
    size: u32,
    flags: u32,
) -> KResult<u64> {
    if attr.is_null() || pid < 0 || !(ATTR_VER0..=PAGE_SIZE).contains(&size) || flags != 0 {
        return error!(EINVAL);
    }
    let t = thread_of(ctx, pid)?;
    let p = params(&t);
    let n = size.min(ATTR_SIZE);
    let mut b = Vec::with_capacity(ATTR_SIZE as usize);
    b.extend_from_slice(&n.to_le_bytes());
    b.extend_from_slice(&p.policy.to_le_bytes());
    let f = if p.reset_on_fork {
        SCHED_FLAG_RESET_ON_FORK
    } else {
        0
    };
    b.extend_from_slice(&f.to_le_bytes());
    let nice = if fair(p.policy) { p.nice } else { 0 };
    b.extend_from_slice(&nice.to_le_bytes());
    b.extend_from_slice(&p.priority.to_le_bytes());
    for v in p.dl {
        b.extend_from_slice(&v.to_le_bytes());
    }
    // util_min, util_max: 0 without utilization clamping.
    b.extend_from_slice(&[0u8; 8]);
    ctx.mm().write_bytes(attr.0, &b[..n as usize])?;
    Ok(0)
}

fn sys_sched_get_priority_max(_ctx: &mut SyscallContext<'_>, policy: i32) -> KResult<u64> {
    match policy as u32 {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => error!(EINVAL),
    }
}

fn sys_sched_get_priority_min(_ctx: &mut SyscallContext<'_>, policy: i32) -> KResult<u64> {
    match policy as u32 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => error!(EINVAL),
    }
}

fn sys_sched_rr_get_interval(ctx: &mut SyscallContext<'_>, pid: i32, ts: UserAddr) -> KResult<u64> {
    let p = params(&*thread_of(ctx, pid)?);
    // FIFO and DEADLINE have no time slice; others report 100 ms.
    let v: [i64; 2] = if p.policy == SCHED_FIFO || p.policy == SCHED_DEADLINE {
        [0, 0]
    } else {
        [0, 100_000_000]
    };
    ctx.mm().write_val(ts.0, &v)?;
    Ok(0)
}

/// The threads a getpriority/setpriority `which`/`who` names: one thread
/// (PRIO_PROCESS takes any thread id, 0 the caller, as Linux's
/// find_task_by_vpid), every thread of a process group, or every thread of
/// the processes whose real uid is `who` (0: the caller's). ESRCH when none.
fn prio_targets(ctx: &SyscallContext<'_>, which: i32, who: i32) -> KResult<Vec<Arc<Task>>> {
    if which == 0 {
        if who == 0 {
            return Ok(vec![ctx.task.clone()]);
        }
        let t = ctx
            .task
            .pid_lookup(who)
            .and_then(|tid| crate::kernel().tasks.thread(tid))
            .filter(|t| {
                let tree = crate::kernel().tasks.lock();
                tree.get(&t.tgid()).is_some_and(|n| n.zombie.is_none())
            });
        return t.map(|t| vec![t]).ok_or(crate::errno!(ESRCH));
    }
    let me = ctx.task.tgid();
    let lookup = |n: i32| ctx.task.pid_lookup(n).unwrap_or(0);
    let tree = crate::kernel().tasks.lock();
    let live = |n: &super::ProcNode| n.zombie.is_none();
    let v: Vec<Arc<ThreadGroup>> = match which {
        1 => {
            let pg = if who == 0 {
                tree.get(&me).map(|n| n.pgid).unwrap_or(me)
            } else {
                lookup(who)
            };
            tree.values()
                .filter(|n| n.pgid == pg && live(n))
                .filter_map(|n| n.group.clone())
                .collect()
        }
        2 => {
            let c = ctx
                .task
                .group
                .creds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let uid = if who == 0 {
                Some(c.ruid)
            } else {
                c.user_ns.to_kernel(MapKind::Uid, who as u32)
            };
            match uid {
                None => Vec::new(),
                Some(uid) => tree
                    .values()
                    .filter(|n| live(n))
                    .filter_map(|n| n.group.clone())
                    .filter(|g| g.creds.lock().unwrap_or_else(|p| p.into_inner()).ruid == uid)
                    .collect(),
            }
        }
        _ => return error!(EINVAL),
    };
    drop(tree);
    let v: Vec<Arc<Task>> = v.iter().flat_map(|g| g.threads()).collect();
    if v.is_empty() {
        return error!(ESRCH);
    }
    Ok(v)
}

fn sys_getpriority(ctx: &mut SyscallContext<'_>, which: i32, who: i32) -> KResult<u64> {
    let best = prio_targets(ctx, which, who)?
        .iter()
        .map(|t| params(t).nice)
        .min()
        .unwrap_or(0);
    // The raw system call returns 20 - nice (1..40).
    Ok((20 - best) as u64)
}

/// setpriority: per target, EPERM unless the caller's effective uid is
/// the target's real or effective uid or it holds CAP_SYS_NICE over the
/// target's user namespace; EACCES to lower the nice value without
/// RLIMIT_NICE room or CAP_SYS_NICE. The result is the last target's error
/// (as Linux: one failure among many is reported).
fn sys_setpriority(ctx: &mut SyscallContext<'_>, which: i32, who: i32, prio: i32) -> KResult<u64> {
    let nice = prio.clamp(-20, 19);
    let mut result = Ok(0);
    for t in prio_targets(ctx, which, who)? {
        let g = t.group.clone();
        let ns = g
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .user_ns
            .0
            .clone();
        if !same_owner(ctx.task, &g) && !ctx.task.privileged_in(&ns, Cap::SysNice) {
            result = error!(EPERM);
            continue;
        }
        let mut p = t.sched.lock().unwrap_or_else(|p| p.into_inner());
        if nice < p.nice && !can_nice(ctx.task, &g, nice) {
            result = error!(EACCES);
            continue;
        }
        p.nice = nice;
    }
    result
}
