//! Making processes and threads: stubs are made by a clone that shares
//! ruml's memory until the stub's exec, host threads are reused, and
//! MADV_DONTNEED zeroes private frames in place. Guests must see exactly
//! Linux's behaviour under concurrent fork, exec, vfork and thread
//! creation, and no stub ever holds anything of ruml.

mod common;

use common::{differential, Background, Flavour};
use std::time::{Duration, Instant};

#[test]
fn concurrent_fork_exec_threads_and_dontneed_as_linux() {
    differential("spawn_churn", Flavour::Static, &["4", "10"]);
    differential("spawn_churn", Flavour::Dynamic, &["3", "6"]);
}

/// A guest thread's stub thread may be made ahead of time (the spare of
/// its address space): threads made in a stream while signals arrive must
/// still start with their creator's signal mask and rounding mode of the
/// moment, a fork from the multi-threaded process must work alone, and
/// an exec'd image sees no mapping of the previous one.
#[test]
fn threads_from_spare_stub_threads_start_as_linux() {
    differential("thread_spare", Flavour::Static, &["60"]);
    differential("thread_spare", Flavour::Dynamic, &["30"]);
}

/// In seccomp mode an ended process's stub is cleared and reused by a
/// later fork or exec (recycled), also after the process had a thread or
/// a vfork child: a fresh image must still start with Linux's registers
/// and FPU modes, see no page of an ended process, and count only its
/// own CPU time.
#[test]
fn processes_on_recycled_stubs_inherit_nothing_as_linux() {
    differential("stub_recycle", Flavour::Static, &["3"]);
}

/// Whether `/proc/PID/exe` is ruml's binary (a child before its exec
/// shares ruml's memory: that is ruml itself, not a stub yet).
fn exe_is(pid: i32, names: &[String]) -> Option<bool> {
    let t = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let t = t.display().to_string();
    Some(names.contains(&t))
}

#[test]
fn stubs_made_under_churn_hold_nothing_of_ruml() {
    let guest = common::build_guest("spawn_churn", Flavour::Static);
    let path = guest.path.display().to_string();
    // Long enough to outlast the sampling below; dropping ruml kills it.
    let mut ruml = Background::start(&["quiet", "--", path.as_str(), "3", "3000"]);
    let first = ruml.wait_for_descendants(Duration::from_secs(30), |d| d.len() >= 2);
    assert!(
        !first.is_empty(),
        "no stub appeared within 30 s; ruml stderr:\n{}",
        ruml.stderr()
    );
    let exe = common::ruml_bin();
    let canon = exe.canonicalize().unwrap_or(exe.clone());
    let names = [exe.display().to_string(), canon.display().to_string()];
    let mut checked = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    // At least 8 s of churn, and until 3 stubs were seen (a liveness
    // budget of 60 s on a loaded machine).
    let start = Instant::now();
    while failures.is_empty()
        && start.elapsed() < Duration::from_secs(60)
        && (start.elapsed() < Duration::from_secs(8) || checked.len() < 3)
    {
        if ruml.child.try_wait().ok().flatten().is_some() {
            break;
        }
        for p in common::descendants(ruml.pid()) {
            // Only stubs past their exec, and the same process throughout
            // (pids are reused quickly under churn).
            if exe_is(p.pid, &names) != Some(false) {
                continue;
            }
            let Ok(maps) = std::fs::read_to_string(format!("/proc/{}/maps", p.pid)) else {
                continue;
            };
            let fds = std::fs::read_dir(format!("/proc/{}/fd", p.pid))
                .map(|d| d.count())
                .ok();
            let same = common::proc_stat(p.pid).is_some_and(|q| q.starttime == p.starttime)
                && exe_is(p.pid, &names) == Some(false);
            if !same {
                continue;
            }
            checked.insert((p.pid, p.starttime));
            let bad: Vec<&str> = maps
                .lines()
                .filter(|l| l.contains("[heap]") || names.iter().any(|n| l.contains(n.as_str())))
                .collect();
            if !bad.is_empty() {
                failures.push(format!(
                    "stub {} maps ruml's memory:\n{}\nfull maps:\n{maps}",
                    p.pid,
                    bad.join("\n")
                ));
            }
            if fds.is_some_and(|n| n > 1) {
                failures.push(format!("stub {} holds {fds:?} host fds (at most 1)", p.pid));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked.len() >= 3,
        "only {} stubs seen in 60 s of churn; ruml stderr:\n{}",
        checked.len(),
        ruml.stderr()
    );
}
