//! The host side of skas: each guest address space is a stub process, a
//! host child of ruml, that holds nothing of the kernel — and none survives
//! the kernel.

mod common;

use common::{still_running, Background, ProcStat};
use std::time::{Duration, Instant};

fn show(procs: &[ProcStat]) -> String {
    procs
        .iter()
        .map(|p| {
            format!(
                "  pid {} ({}) state {} ppid {}\n",
                p.pid, p.comm, p.state, p.ppid
            )
        })
        .collect()
}

#[test]
fn stub_holds_no_kernel_memory_or_files() {
    let mut ruml = Background::start(&["quiet", "--", "/bin/sleep", "30"]);
    let first = ruml.wait_for_descendants(Duration::from_secs(20), |d| !d.is_empty());
    assert!(
        !first.is_empty(),
        "no stub process (no host child of ruml pid {}) appeared within 20 s; ruml stderr:\n{}",
        ruml.pid(),
        ruml.stderr()
    );
    // Let the guest get through exec and into its sleep.
    std::thread::sleep(Duration::from_millis(1000));
    let stubs = ruml.wait_for_descendants(Duration::from_secs(5), |d| !d.is_empty());
    assert!(
        !stubs.is_empty(),
        "the stub processes went away while the guest sleeps"
    );

    let exe = common::ruml_bin();
    let exe_canon = exe.canonicalize().unwrap_or(exe.clone());
    let exe_names = [exe.display().to_string(), exe_canon.display().to_string()];
    let mut failures = Vec::new();
    for stub in &stubs {
        let maps = match std::fs::read_to_string(format!("/proc/{}/maps", stub.pid)) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!(
                    "stub {}: cannot read /proc/{}/maps: {e}",
                    stub.pid, stub.pid
                ));
                continue;
            }
        };
        let bad: Vec<&str> = maps
            .lines()
            .filter(|l| {
                l.contains("[heap]")
                    || l.contains("[stack]")
                    || exe_names.iter().any(|n| l.contains(n.as_str()))
            })
            .collect();
        if !bad.is_empty() {
            failures.push(format!(
                "stub {} ({}) maps kernel memory (ruml's binary, [heap] or [stack]):\n{}\nfull maps:\n{}",
                stub.pid,
                stub.comm,
                bad.join("\n"),
                maps
            ));
        }
        let fd_dir = format!("/proc/{}/fd", stub.pid);
        match std::fs::read_dir(&fd_dir) {
            Err(e) => failures.push(format!("stub {}: cannot read {fd_dir}: {e}", stub.pid)),
            Ok(rd) => {
                let fds: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        let target = std::fs::read_link(e.path())
                            .map(|t| t.display().to_string())
                            .unwrap_or_else(|err| format!("<{err}>"));
                        format!("{} -> {}", e.file_name().to_string_lossy(), target)
                    })
                    .collect();
                if fds.len() > 1 {
                    failures.push(format!(
                        "stub {} ({}) holds {} host fds; at most 1 (physmem) allowed:\n  {}",
                        stub.pid,
                        stub.comm,
                        fds.len(),
                        fds.join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "stub isolation violated ({} stubs checked):\n{}\n\n{}",
        stubs.len(),
        show(&stubs),
        failures.join("\n\n")
    );
}

#[test]
fn sigkill_of_ruml_leaves_no_stub_alive() {
    let mut ruml = Background::start(&["quiet", "--", "/bin/sh", "-c", "sleep 30 & sleep 30"]);
    // sh and two sleeps: wait for at least two address spaces.
    let mut stubs = ruml.wait_for_descendants(Duration::from_secs(20), |d| d.len() >= 2);
    assert!(
        !stubs.is_empty(),
        "no stub process appeared within 20 s; ruml stderr:\n{}",
        ruml.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    for p in common::descendants(ruml.pid()) {
        if !stubs.iter().any(|s| s.pid == p.pid) {
            stubs.push(p);
        }
    }

    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(ruml.pid(), libc::SIGKILL) }, 0);
    let _ = ruml.child.wait();

    let deadline = Instant::now() + Duration::from_secs(5);
    let survivors = loop {
        let alive: Vec<ProcStat> = stubs.iter().filter(|s| still_running(s)).cloned().collect();
        if alive.is_empty() || Instant::now() >= deadline {
            break alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let states: Vec<ProcStat> = survivors
        .iter()
        .filter_map(|s| common::proc_stat(s.pid))
        .collect();
    for s in &survivors {
        // SAFETY: kill(2) of a process we checked is the same stub (start time).
        unsafe {
            libc::kill(s.pid, libc::SIGKILL);
        }
    }
    assert!(
        survivors.is_empty(),
        "{} of {} stub processes still running 5 s after ruml was SIGKILLed:\n{}\nall stubs seen:\n{}",
        survivors.len(),
        stubs.len(),
        show(&states),
        show(&stubs)
    );
}
