//! The instance's power and emergency keys: ctrl-alt-delete, the host's
//! SIGTERM/SIGINT to ruml, and the magic SysRq keys the management console
//! (`sysrq X`) presses.
//!
//! Ctrl-alt-delete is Linux's: with CAD on (`reboot(LINUX_REBOOT_CMD_
//! CAD_ON)`) the instance restarts at once; with CAD off (the default) init
//! gets SIGINT and decides (busybox init runs its `ctrlaltdel` inittab
//! action, sysvinit its `ctrlaltdel` line, systemd starts
//! ctrl-alt-del.target).
//!
//! A SIGTERM or SIGINT to the ruml process asks for an orderly shutdown:
//! the first presses ctrl-alt-delete (so a plain program run as init, with
//! no handler for SIGINT, ends as it would on ^C), and from then on a
//! restart the guest asks for ends the instance instead, since the host
//! wants it gone. The second halts at once (disks are still synced).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::signal::{SIGINT, SIGKILL};
use crate::task::{ExitStatus, ThreadGroup};

const SIGTERM: i32 = 15;

static HOST_SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Whether the host asked the instance to shut down (SIGTERM/SIGINT to
/// ruml): a guest's reboot then ends ruml rather than booting again.
pub fn host_shutdown_requested() -> bool {
    HOST_SHUTDOWN.load(Ordering::SeqCst)
}

/// Ctrl-alt-delete: restart at once with CAD on, else SIGINT to init.
/// Returns what happened, for the log and the management console.
pub fn ctrl_alt_del() -> &'static str {
    if !crate::kernel_booted() {
        return "the instance is still booting";
    }
    if crate::task::reboot::cad_reboots() {
        crate::log::info("Ctrl-Alt-Del: restarting system.");
        crate::task::reboot::request_restart();
        crate::task::exit::halt_instance(ExitStatus::Exited(0));
        "restarting"
    } else {
        crate::signal::send_to_process(1, SIGINT);
        "SIGINT sent to init"
    }
}

/// A SIGTERM or SIGINT reached the ruml process (`count`: 1 for the
/// first).
pub fn host_signal(sig: i32, count: u32) {
    HOST_SHUTDOWN.store(true, Ordering::SeqCst);
    let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
    if count <= 1 && crate::kernel_booted() && crate::kernel().tasks.group(1).is_some() {
        crate::log::info(&format!(
            "{name} from the host: asking init for an orderly shutdown (ctrl-alt-del); \
             a second one halts at once"
        ));
        // With CAD on, ctrl-alt-delete would restart: the host wants a halt.
        if crate::task::reboot::cad_reboots() {
            crate::log::info("System halted.");
            crate::task::exit::halt_instance(ExitStatus::Exited(0));
        } else {
            crate::signal::send_to_process(1, SIGINT);
        }
    } else {
        crate::log::info(&format!("{name} from the host again: halting now."));
        crate::task::exit::halt_instance(ExitStatus::Killed {
            signo: sig,
            core: false,
        });
    }
}

/// Every live process but init.
fn all_but_init() -> Vec<Arc<ThreadGroup>> {
    let tree = crate::kernel().tasks.lock();
    tree.iter()
        .filter(|(&p, n)| p != 1 && n.zombie.is_none())
        .filter_map(|(_, n)| n.group.clone())
        .collect()
}

/// The task list (SysRq t).
pub fn task_list() -> String {
    let mut s = String::from("  PID   TID S COMM\n");
    let groups: Vec<Arc<ThreadGroup>> = {
        let tree = crate::kernel().tasks.lock();
        tree.values()
            .filter(|n| n.zombie.is_none())
            .filter_map(|n| n.group.clone())
            .collect()
    };
    for g in groups {
        let state = if g.sig().stopped.is_some() { 'T' } else { 'S' };
        for t in g.threads() {
            let comm = t.comm.lock().unwrap_or_else(|p| p.into_inner()).clone();
            s.push_str(&format!(
                "{:5} {:5} {} {}\n",
                g.tgid(),
                t.tid(),
                state,
                String::from_utf8_lossy(&comm)
            ));
        }
    }
    s
}

/// Every live thread, with its process.
fn all_threads() -> Vec<(Arc<ThreadGroup>, Arc<crate::task::Task>)> {
    let groups: Vec<Arc<ThreadGroup>> = {
        let tree = crate::kernel().tasks.lock();
        tree.values()
            .filter(|n| n.zombie.is_none())
            .filter_map(|n| n.group.clone())
            .collect()
    };
    groups
        .into_iter()
        .flat_map(|g| g.threads().into_iter().map(move |t| (g.clone(), t)))
        .collect()
}

fn comm_of(t: &crate::task::Task) -> String {
    String::from_utf8_lossy(&t.comm.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

fn syscall_label(nr: u64) -> String {
    crate::syscalls::names::syscall_name(nr)
        .map(str::to_string)
        .unwrap_or_else(|| format!("syscall {nr}"))
}

/// Blocked tasks (SysRq w). Linux lists the tasks in uninterruptible
/// sleep; every sleep in ruml can be interrupted, so this lists what is
/// closest: every thread inside a system call (sleeping in the kernel),
/// with the call and how long it has been there.
pub fn blocked_tasks() -> String {
    let mut s = String::from("  PID   TID COMM             SYSCALL              FOR\n");
    let mut n = 0;
    for (g, t) in all_threads() {
        let Some((nr, ms)) = t.activity.snapshot().syscall else {
            continue;
        };
        n += 1;
        s.push_str(&format!(
            "{:5} {:5} {:16} {:20} {}.{:03}s\n",
            g.tgid(),
            t.tid(),
            comm_of(&t),
            syscall_label(nr),
            ms / 1000,
            ms % 1000
        ));
    }
    s.push_str(&format!("{n} tasks in the kernel\n"));
    s
}

/// Every thread's guest state (SysRq l): Linux prints the backtrace of
/// each CPU; ruml's guests run on host threads, so for each guest thread
/// it prints where it is (in a system call, or running guest code) and
/// the guest registers at its last system call, as show_regs lays them
/// out, plus the top of its guest stack.
pub fn task_registers() -> String {
    let mut s = String::new();
    for (g, t) in all_threads() {
        let snap = t.activity.snapshot();
        let state = match snap.syscall {
            Some((nr, ms)) => format!(
                "in {} for {}.{:03}s",
                syscall_label(nr),
                ms / 1000,
                ms % 1000
            ),
            None => "running guest code (registers of its last system call)".into(),
        };
        s.push_str(&format!(
            "pid {} tid {} comm {}: {state}\n",
            g.tgid(),
            t.tid(),
            comm_of(&t)
        ));
        let Some(regs) = snap.regs else {
            s.push_str("  (no system call yet)\n");
            continue;
        };
        let named: Vec<_> = crate::task::activity::REG_NAMES
            .iter()
            .zip(regs.iter())
            .collect();
        for chunk in named.chunks(3) {
            let line: Vec<String> = chunk
                .iter()
                .map(|(name, v)| format!("{name:>8}: {v:016x}"))
                .collect();
            s.push_str(&format!("{}\n", line.join(" ")));
        }
        // The top of the guest stack, as far as it is mapped.
        let mut words = Vec::new();
        let mm = t.mm();
        for i in 0..8u64 {
            match mm.read_val::<u64>(regs[1].wrapping_add(i * 8)) {
                Ok(w) => words.push(format!("{w:016x}")),
                Err(_) => break,
            }
        }
        if !words.is_empty() {
            s.push_str(&format!("   Stack: {}\n", words.join(" ")));
        }
    }
    s
}

/// Memory information (SysRq m): physical memory's frames.
pub fn mem_info() -> String {
    let phys = &crate::kernel().phys;
    let (total, free) = (phys.total_pages(), phys.free_pages());
    let procs = crate::kernel()
        .tasks
        .lock()
        .values()
        .filter(|n| n.group.is_some() && n.zombie.is_none())
        .count();
    format!(
        "Mem-Info:\n{} pages RAM\n{} pages free\n{} pages in use\nMemTotal: {} kB\nMemFree: {} kB\n{} processes\n",
        total,
        free,
        total.saturating_sub(free),
        total * 4,
        free * 4,
        procs
    )
}

/// Emergency remount read-only (SysRq u): every filesystem of init's
/// namespace after a sync.
fn remount_all_ro() -> String {
    crate::block::sync_all();
    let Some(init) = crate::kernel()
        .tasks
        .group(1)
        .and_then(|g| g.threads().first().cloned())
    else {
        return "Emergency Remount R/O: no init\n".into();
    };
    let mut failed = 0;
    for m in init.fs().ns.mounts() {
        if m.read_only() {
            continue;
        }
        match m.root.inode.remount(true) {
            Ok(()) => m.set_read_only(true),
            Err(_) => failed += 1,
        }
    }
    crate::block::sync_all();
    if failed == 0 {
        "Emergency Remount complete\n".into()
    } else {
        format!("Emergency Remount complete ({failed} filesystems refused)\n")
    }
}

/// Presses SysRq `key`: does it, logs what it printed and returns that
/// text, or Err for a key ruml does not have.
pub fn sysrq(key: u8) -> Result<String, String> {
    if !crate::kernel_booted() {
        return Err("the instance is still booting".into());
    }
    let text = match key {
        b's' => {
            crate::block::sync_all();
            "Emergency Sync complete\n".to_string()
        }
        b'u' => remount_all_ro(),
        b'b' => {
            crate::log::info("sysrq: Resetting");
            crate::task::reboot::request_restart();
            crate::task::exit::halt_instance(ExitStatus::Exited(0));
            "Resetting\n".to_string()
        }
        b'o' => {
            crate::log::info("sysrq: Power Off");
            crate::task::exit::halt_instance(ExitStatus::Exited(0));
            "Power Off\n".to_string()
        }
        b'e' | b'i' => {
            let (sig, what) = if key == b'e' {
                (SIGTERM, "Terminate All Tasks")
            } else {
                (SIGKILL, "Kill All Tasks")
            };
            let targets = all_but_init();
            for g in &targets {
                crate::signal::send_to_process(g.tgid(), sig);
            }
            format!("{what}: {} processes signalled\n", targets.len())
        }
        b't' => format!("Show State\n{}", task_list()),
        b'm' => format!("Show Memory\n{}", mem_info()),
        b'w' => format!("Show Blocked State\n{}", blocked_tasks()),
        b'l' => format!("Show backtrace of all active tasks\n{}", task_registers()),
        b'h' => "HELP : reboot(b) emergency-remount-ro(u) help(h) kill-all-tasks(i) \
                 show-backtrace-all-active-cpus(l) show-memory-usage(m) poweroff(o) \
                 sync(s) show-task-states(t) terminate-all-tasks(e) \
                 show-blocked-tasks(w)\n"
            .to_string(),
        _ => {
            return Err(format!(
                "sysrq {}: no such key (sysrq h lists them)",
                key.escape_ascii()
            ))
        }
    };
    for line in text.lines() {
        crate::log::info(&format!("sysrq: {line}"));
    }
    Ok(text)
}
