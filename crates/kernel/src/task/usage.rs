//! CPU accounting. Guest code runs in stub processes, so a process's CPU
//! time is its stub's (read from the host) plus that of stubs it had
//! before an exec; children's time is added when they are reaped.

use std::time::Duration;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::{Task, ThreadGroup};

/// User and system time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Times {
    pub user: Duration,
    pub sys: Duration,
}

impl std::ops::Add for Times {
    type Output = Times;
    fn add(self, o: Times) -> Times {
        Times {
            user: self.user + o.user,
            sys: self.sys + o.sys,
        }
    }
}

/// What a process has used beyond its current stub.
#[derive(Clone, Copy, Debug, Default)]
pub struct UsageAcc {
    /// Stubs replaced by exec.
    pub gone: Times,
    /// Reaped children (and their reaped children).
    pub children: Times,
}

fn stub_pid(group: &ThreadGroup) -> Option<i32> {
    group.threads().iter().find_map(|t| {
        t.host_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(p, _)| p)
    })
}

fn stub_times(pid: Option<i32>) -> Times {
    match pid.and_then(ruml_host::cputime::process_times) {
        Some((user, sys)) => Times { user, sys },
        None => Times::default(),
    }
}

/// The process's own CPU time so far.
pub fn group_times(group: &ThreadGroup) -> Times {
    let gone = group.usage.lock().unwrap_or_else(|p| p.into_inner()).gone;
    gone + stub_times(stub_pid(group))
}

/// The process's own CPU time, as precisely as the host can tell.
pub fn group_cpu(group: &ThreadGroup) -> Duration {
    let gone = group.usage.lock().unwrap_or_else(|p| p.into_inner()).gone;
    let now = stub_pid(group)
        .and_then(ruml_host::cputime::process_cpu)
        .unwrap_or_default();
    gone.user + gone.sys + now
}

/// A thread's CPU time.
pub fn thread_times(task: &Task) -> Times {
    match *task.host_ids.lock().unwrap_or_else(|p| p.into_inner()) {
        Some((pid, tid)) => match ruml_host::cputime::thread_times(pid, tid) {
            Some((user, sys)) => Times { user, sys },
            None => Times::default(),
        },
        None => Times::default(),
    }
}

/// exec is about to replace the stub `pid`: keep what it used.
pub fn retire_stub(group: &ThreadGroup, pid: i32) {
    let t = stub_times(Some(pid));
    let mut u = group.usage.lock().unwrap_or_else(|p| p.into_inner());
    u.gone = u.gone + t;
}

/// The total a zombie reports to its parent: itself and its children.
/// `task` is the process's last thread, already gone from its thread
/// list: its stub is the one to read.
pub fn final_times(task: &Task) -> Times {
    let group = &task.group;
    let u = *group.usage.lock().unwrap_or_else(|p| p.into_inner());
    let pid = stub_pid(group).or_else(|| {
        task.host_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(p, _)| p)
    });
    u.gone + stub_times(pid) + u.children
}

syscall_table! { pub fn usage_table;
    GETRUSAGE => sys_getrusage(who: i32, ru: UserAddr),
    TIMES => sys_times(buf: UserAddr),
}

/// `struct rusage`: two timevals and fourteen longs.
pub fn rusage_bytes(t: Times) -> [u8; 144] {
    let mut b = [0u8; 144];
    let tv = |d: Duration| [d.as_secs() as i64, d.subsec_micros() as i64];
    let u = tv(t.user);
    let s = tv(t.sys);
    for (i, v) in [u[0], u[1], s[0], s[1]].iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

fn sys_getrusage(ctx: &mut SyscallContext<'_>, who: i32, ru: UserAddr) -> KResult<u64> {
    let t = match who {
        0 => group_times(&ctx.task.group),
        -1 => {
            ctx.task
                .group
                .usage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .children
        }
        1 => thread_times(ctx.task),
        _ => return error!(EINVAL),
    };
    ctx.mm().write_bytes(ru.0, &rusage_bytes(t))?;
    Ok(0)
}

fn sys_times(ctx: &mut SyscallContext<'_>, buf: UserAddr) -> KResult<u64> {
    let ticks = |d: Duration| (d.as_millis() / 10) as u64;
    if !buf.is_null() {
        let me = group_times(&ctx.task.group);
        let ch = ctx
            .task
            .group
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .children;
        ctx.mm().write_val(
            buf.0,
            &[ticks(me.user), ticks(me.sys), ticks(ch.user), ticks(ch.sys)],
        )?;
    }
    // Clock ticks since an arbitrary point: boot, as Linux (offset).
    Ok(ticks(crate::log::since_boot()) + 4_294_937_296)
}
