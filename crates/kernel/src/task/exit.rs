//! Thread and process exit: release resources, wake a CLONE_CHILD_CLEARTID
//! joiner, mark robust futexes of a dead owner; the last thread makes the
//! process a zombie, reparents its children, and tells the parent
//! (SIGCHLD, wake its waiters). When init exits, the instance halts.

use std::sync::{Arc, Condvar, Mutex};

use super::{ExitStatus, Task, ThreadGroup};
use crate::signal::{self, Queued, SIGCHLD};

/// Init's status once it has exited; `boot` waits on it.
pub static HALT: Mutex<Option<ExitStatus>> = Mutex::new(None);
pub static HALTED: Condvar = Condvar::new();

const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// Ends the instance: `boot` returns with `status` (the first one given
/// wins) and the `ruml` process exits, taking every stub with it.
pub fn halt_instance(status: ExitStatus) {
    let mut h = HALT.lock().unwrap_or_else(|p| p.into_inner());
    if h.is_none() {
        *h = Some(status);
    }
    HALTED.notify_all();
}

/// Marks the robust futexes the dying thread holds (set_robust_list).
pub(crate) fn release_robust_list(task: &Arc<Task>) {
    let (head, len) = *task.robust_list.lock().unwrap_or_else(|p| p.into_inner());
    if head == 0 || len != 24 {
        return;
    }
    let mm = task.mm();
    let Ok(h) = mm.read_val::<[u64; 3]>(head) else {
        return;
    };
    let (mut entry, offset, pending) = (h[0], h[1] as i64, h[2]);
    let tid = task.tid() as u32;
    let handle = |e: u64| {
        let word = e.wrapping_add(offset as u64);
        if let Ok(v) = mm.read_val::<u32>(word) {
            if v & FUTEX_TID_MASK == tid {
                let _ = mm.write_val(word, &((v & FUTEX_WAITERS) | FUTEX_OWNER_DIED));
                if v & FUTEX_WAITERS != 0 {
                    super::futex::wake_address(&mm, word, 1);
                }
            }
        }
    };
    // Linux walks at most ROBUST_LIST_LIMIT entries.
    for _ in 0..2048 {
        if entry == head || entry == 0 {
            break;
        }
        let next = mm.read_val::<u64>(entry & !1).unwrap_or(0);
        if entry != pending {
            handle(entry & !1);
        }
        entry = next;
    }
    if pending != 0 {
        handle(pending & !1);
    }
}

/// Ends one thread. The last thread of its process ends the process with
/// the group's exit status (or `Exited(0)`).
pub fn exit_thread(task: &Arc<Task>) {
    // Idempotent: a thread leaves its group once.
    let last = {
        let mut threads = task.group.threads.lock().unwrap_or_else(|p| p.into_inner());
        let before = threads.len();
        threads.retain(|t| !Arc::ptr_eq(t, task));
        if threads.len() == before {
            return;
        }
        // An exec waiting for the others to go is told.
        for t in threads.iter() {
            t.waker.poke();
        }
        threads.is_empty()
    };
    release_robust_list(task);
    task.seccomp.release();
    // The tid is gone before a joiner can see the thread as exited (the
    // CLONE_CHILD_CLEARTID wake below): tgkill then gives ESRCH, as Linux.
    crate::kernel().tasks.unregister_thread(task.tid());
    if task.tid() != task.tgid() {
        super::ns::release_pid(task.tid());
        // Its thread pidfds (PIDFD_THREAD) are readable now.
        crate::fs::anon::pidfd_waiters().wake_all();
    }
    let ctid = std::mem::take(
        &mut *task
            .clear_child_tid
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    if ctid != 0 {
        let mm = task.mm();
        if mm.write_val(ctid, &0u32).is_ok() {
            super::futex::wake_address(&mm, ctid, 1);
        }
    }
    if let Some(tx) = task
        .vfork_done
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = tx.send(());
    }
    // Drop this thread's hold on the descriptor table: the last holder
    // closes the files (pipe ends see EOF, and so on).
    task.set_files(crate::fs::FdTable::new());
    // And on its working directory and root (Linux's exit_fs, before the
    // parent can be told): a mount the exited process was in must not
    // stay busy while its Task is still referenced (umount right after
    // wait gave EBUSY).
    let ns = task.fs().ns.clone();
    task.set_fs(crate::fs::FsContext::new(ns));
    // A traced thread's end is its tracer's to see (the leader's comes
    // with its process's).
    super::ptrace::on_thread_exit(task);
    if last {
        // System V IPC (ipc/): SEM_UNDO adjustments are applied, and shared
        // memory is detached from an address space no one runs in any more.
        crate::ipc::exit_process(task.group.tgid());
        crate::ipc::mm_released(&task.mm(), task.group.tgid());
        let status = task.group.sig().exit.unwrap_or(ExitStatus::Exited(0));
        // Read while the stub still exists (this thread's context holds it).
        let usage = super::usage::final_times(task);
        // What /proc/PID shows of the zombie (fs/proczombie.rs).
        crate::fs::proczombie::note_exit(task);
        exit_process(&task.group, status, usage);
    }
}

/// The process `group` has no threads left: make it a zombie.
fn exit_process(group: &Arc<ThreadGroup>, status: ExitStatus, usage: super::usage::Times) {
    let pid = group.tgid();
    let k = crate::kernel();
    // Its tracer hears first; its own tracees are let go.
    super::ptrace::on_process_exit(pid, status);
    // A PID namespace's init takes its namespace with it (ns.rs); orphans
    // go to their namespace's init.
    let ns_reaper = super::ns::process_exited(group);
    let (parent, reaped, was_leader, deathsig, held) = {
        let mut tree = k.tasks.lock();
        let Some(node) = tree.get_mut(&pid) else {
            return;
        };
        if node.zombie.is_some() {
            return;
        }
        node.zombie = Some(status);
        node.group = None;
        node.usage = usage;
        let children = std::mem::take(&mut node.children);
        let ppid = node.ppid;
        let was_leader = node.sid == pid;
        // Orphans go to the nearest subreaper ancestor, else init.
        let mut reaper = ns_reaper;
        let mut a = ppid;
        while let Some(n) = tree.get(&a) {
            if n.subreaper && n.zombie.is_none() {
                reaper = a;
                break;
            }
            a = n.ppid;
        }
        if pid == 1 {
            reaper = 0;
        }
        let mut deathsig = Vec::new();
        for c in &children {
            if let Some(cn) = tree.get_mut(c) {
                cn.ppid = reaper;
                if let Some(g) = cn.group.clone() {
                    deathsig.push(g);
                }
            }
        }
        if let Some(r) = tree.get_mut(&reaper) {
            r.children.extend(children);
        }
        let parent = tree.get(&ppid).and_then(|n| n.group.clone());
        // A traced process's real parent hears of its end only after the
        // tracer has seen it (release_traced_zombie).
        let held = super::ptrace::holds_zombie(pid, ppid);
        // A parent that ignores SIGCHLD (or set SA_NOCLDWAIT) never sees
        // zombies: the child is reaped at once.
        let autoreap = !held && parent.as_ref().is_some_and(|p| signal::ignores_children(p));
        if autoreap {
            tree.remove(&pid);
            super::ns::release_pid(pid);
            if let Some(pn) = tree.get_mut(&ppid) {
                pn.children.retain(|c| *c != pid);
            }
            // Not counted in the parent's children's usage: Linux adds
            // it only when a wait reaps the child.
        }
        (parent, autoreap, was_leader, deathsig, held)
    };
    // PR_SET_PDEATHSIG: children that asked are told their parent died.
    for g in deathsig {
        for t in g.threads() {
            let sig = t.pdeathsig.load(std::sync::atomic::Ordering::Relaxed);
            if sig > 0 {
                signal::send_thread(
                    &t,
                    Queued {
                        signo: sig,
                        code: signal::SI_USER,
                        a: pid as u64,
                        b: 0,
                        forced: false,
                    },
                );
            }
        }
    }
    crate::fs::anon::pidfd_waiters().wake_all();
    crate::fs::locks::on_exit(pid);
    if pid == 1 {
        halt_instance(status);
    }
    if was_leader {
        crate::fs::tty::session_leader_exited(pid);
    }
    if let Some(p) = parent {
        if !reaped && !held {
            let (code, val) = match status {
                ExitStatus::Exited(c) => (CLD_EXITED, c),
                ExitStatus::Killed { signo, core: true } => (CLD_DUMPED, signo),
                ExitStatus::Killed { signo, .. } => (CLD_KILLED, signo),
            };
            signal::send_group(
                &p,
                Queued {
                    signo: SIGCHLD,
                    code,
                    a: pid as u64,
                    b: val as u64,
                    forced: false,
                },
            );
        }
        // Its waiters recheck (wait4 may now find a zombie, or ECHILD).
        p.kick_all();
    }
}

/// The tracer has seen traced process `pid`'s exit (or let it go): now
/// its real parent is told, as for any child (SIGCHLD, or reaped at once
/// if the parent ignores SIGCHLD).
pub(crate) fn release_traced_zombie(pid: i32) {
    let k = crate::kernel();
    let parent = {
        let mut tree = k.tasks.lock();
        // Under the tree's lock, as Linux under tasklist_lock: the parent
        // finds SIGCHLD queued by the time it can reap the zombie, so its
        // wait returns the child and the signal follows, never the reverse
        // nor a reap without the signal (ptrace::end_release).
        let found = tree
            .get(&pid)
            .and_then(|node| node.zombie.map(|z| (z, node.ppid)));
        let Some((status, ppid)) = found else {
            super::ptrace::end_release(pid);
            return;
        };
        let parent = tree.get(&ppid).and_then(|n| n.group.clone());
        let autoreap = parent.as_ref().is_some_and(|p| signal::ignores_children(p));
        if autoreap {
            tree.remove(&pid);
            super::ns::release_pid(pid);
            if let Some(pn) = tree.get_mut(&ppid) {
                pn.children.retain(|c| *c != pid);
            }
            // Not counted in the parent's children's usage: Linux adds
            // it only when a wait reaps the child.
        } else if let Some(p) = &parent {
            let (code, val) = match status {
                ExitStatus::Exited(c) => (CLD_EXITED, c),
                ExitStatus::Killed { signo, core: true } => (CLD_DUMPED, signo),
                ExitStatus::Killed { signo, .. } => (CLD_KILLED, signo),
            };
            // Lock order: the tree before group signals (send_group takes
            // no tree lock for SIGCHLD).
            signal::send_group(
                p,
                Queued {
                    signo: SIGCHLD,
                    code,
                    a: pid as u64,
                    b: val as u64,
                    forced: false,
                },
            );
        }
        super::ptrace::end_release(pid);
        parent
    };
    if let Some(p) = parent {
        p.kick_all();
    }
}
