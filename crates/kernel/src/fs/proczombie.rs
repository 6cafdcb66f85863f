//! What /proc/PID shows of a zombie. At exit a process's thread group
//! leaves the process tree (task/exit.rs: `node.group = None`), but Linux
//! keeps /proc/PID until the zombie is reaped, with state Z, its name,
//! ids and times; its memory, files and fs context are gone (cmdline,
//! environ and maps are empty, cwd/root/exe and fd give ENOENT).
//!
//! [`note_exit`] keeps that much of each process as it exits, keyed by
//! pid. An entry speaks only while the process tree still holds the pid
//! as a zombie ([`remains`]); entries of reaped processes are pruned as
//! the table grows (amortized: a prune when it has doubled since the
//! last), so it stays bounded by the number of zombies. Lock order: the
//! process-tree lock and this table's lock are never held together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::task::creds::Creds;
use crate::task::usage::Times;
use crate::task::Task;

/// The part of an exited process /proc/PID still shows.
pub struct Remains {
    /// The name of the process's last thread.
    pub comm: Vec<u8>,
    pub creds: Creds,
    /// When the process started (since boot).
    pub started: Duration,
}

struct Table {
    by_pid: HashMap<i32, Arc<Remains>>,
    /// The table's size after its last prune.
    pruned_at: usize,
}

fn table() -> MutexGuard<'static, Table> {
    static T: OnceLock<Mutex<Table>> = OnceLock::new();
    T.get_or_init(|| {
        Mutex::new(Table {
            by_pid: HashMap::new(),
            pruned_at: 0,
        })
    })
    .lock()
    .unwrap_or_else(|p| p.into_inner())
}

/// Keeps what /proc/PID shows of `last`'s process, which is exiting
/// (`last` is its last thread). Called before the process becomes a
/// zombie, without the process-tree lock.
pub fn note_exit(last: &Task) {
    let g = &last.group;
    let r = Arc::new(Remains {
        comm: last.comm.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        creds: g.creds.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        started: g.started,
    });
    let grown = {
        let mut t = table();
        t.by_pid.insert(g.tgid(), r);
        t.by_pid.len() > 2 * t.pruned_at + 64
    };
    if grown {
        prune();
    }
}

/// Drops the entries of reaped processes. (A process noted but not yet
/// a zombie is still in the tree, so it keeps its entry; one whose pid
/// a live process took again is harmless: [`remains`] asks for a
/// zombie, and the new process's exit replaces it.)
fn prune() {
    let pids: std::collections::HashSet<i32> =
        crate::kernel().tasks.lock().keys().copied().collect();
    let mut t = table();
    t.by_pid.retain(|p, _| pids.contains(p));
    t.pruned_at = t.by_pid.len();
}

/// A zombie as /proc shows it.
pub struct Zombie {
    pub remains: Arc<Remains>,
    /// Its CPU time, with its reaped children's.
    pub usage: Times,
    pub ids: crate::task::ProcIds,
    pub status: crate::task::ExitStatus,
}

/// Process `pid` as a zombie; None unless it is a zombie now.
pub fn remains(pid: i32) -> Option<Zombie> {
    if !crate::kernel_booted() {
        return None;
    }
    let (usage, ids, status) = {
        let tree = crate::kernel().tasks.lock();
        let n = tree.get(&pid)?;
        let ids = crate::task::ProcIds {
            ppid: n.ppid,
            pgid: n.pgid,
            sid: n.sid,
        };
        (n.usage, ids, n.zombie?)
    };
    let remains = table().by_pid.get(&pid).cloned()?;
    Some(Zombie {
        remains,
        usage,
        ids,
        status,
    })
}
