//! Process exit: release resources, become a zombie, reparent children to
//! init, tell the parent (SIGCHLD, wake waiters). When init exits, the
//! instance halts with init's status.

use std::sync::{Condvar, Mutex};

use super::{ExitStatus, Task};
use crate::signal::{self, Queued, SIGCHLD};

/// Init's status once it has exited; `boot` waits on it.
pub static HALT: Mutex<Option<ExitStatus>> = Mutex::new(None);
pub static HALTED: Condvar = Condvar::new();

const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;

/// Ends the task's process with `status`. Idempotent.
pub fn exit_process(task: &Task, status: ExitStatus) {
    let pid = task.tgid();
    // CLONE_CHILD_CLEARTID: zero the word and wake a futex waiter.
    let ctid = std::mem::take(&mut *task.clear_child_tid.lock().unwrap_or_else(|p| p.into_inner()));
    if ctid != 0 {
        let _ = task.mm().write_val(ctid, &0u32);
    }
    task.files().close_all();
    if let Some(tx) = task.vfork_done.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = tx.send(());
    }
    let k = crate::kernel();
    let parent = {
        let mut tree = k.tasks.lock();
        let Some(node) = tree.get_mut(&pid) else { return };
        if node.zombie.is_some() {
            return;
        }
        node.zombie = Some(status);
        node.task = None;
        let children = std::mem::take(&mut node.children);
        let ppid = node.ppid;
        // Orphans go to init; zombies among them are reaped by init's wait.
        for c in &children {
            if let Some(cn) = tree.get_mut(c) {
                cn.ppid = 1;
            }
        }
        if pid != 1 {
            if let Some(init) = tree.get_mut(&1) {
                init.children.extend(children);
            }
        }
        tree.get(&ppid).and_then(|n| n.task.clone())
    };
    if pid == 1 {
        *HALT.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        HALTED.notify_all();
    }
    if let Some(p) = parent {
        let (code, val) = match status {
            ExitStatus::Exited(c) => (CLD_EXITED, c),
            ExitStatus::Killed { signo, core: true } => (CLD_DUMPED, signo),
            ExitStatus::Killed { signo, .. } => (CLD_KILLED, signo),
        };
        signal::send(&p, Queued { signo: SIGCHLD, code, a: pid as u64, b: val as u64, forced: false });
    }
    k.tasks.changed.notify_all();
}
