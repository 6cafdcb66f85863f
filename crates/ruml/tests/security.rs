//! Attacks on the stub from inside a guest (`tests/guest/stub_attack.c`),
//! under the backend the run selects (`RUML_TEST_MODE`, see
//! `common::test_mode`): jumps into every byte of the stub's code with
//! crafted registers, rewriting the shared pages while requests are in
//! flight, rt_sigreturn with a forged frame, int 0x80, sysenter, 32-bit
//! code, x32 numbers, the vsyscall page, and map/unmap/protect over the
//! stub. Each attack must end with the attacking process killed or an
//! errno, the instance must survive it, and the victim's secret (in
//! another guest process's memory and in a tmpfs file's pages) must never
//! show up anywhere the attacker can read.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Flavour;

/// The start of every executable mapping above the guest's TASK_SIZE
/// (0x7ff0_0000_0000) in every child process of `ruml` (its stub
/// processes): the stubs' code. Also raises `most_fds` to the largest
/// number of host descriptors a stub holds.
fn stub_code_addresses(ruml: u32, most_fds: &mut usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut kids: Vec<String> = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{ruml}/task")) {
        for t in tasks.flatten() {
            let f = t.path().join("children");
            if let Ok(c) = std::fs::read_to_string(f) {
                kids.extend(c.split_whitespace().map(String::from));
            }
        }
    }
    for pid in kids {
        // A child the spawner thread just forked runs ruml's own code
        // and holds ruml's descriptors until it closes them and execs
        // the stub (the stub pool makes such children at any time).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "stub-spawner" {
            continue;
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            *most_fds = (*most_fds).max(fds.count());
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        for l in maps.lines() {
            let mut f = l.split_whitespace();
            let (Some(range), Some(perm)) = (f.next(), f.next()) else {
                continue;
            };
            let Some(start) = range
                .split_once('-')
                .and_then(|(s, _)| u64::from_str_radix(s, 16).ok())
            else {
                continue;
            };
            if perm.contains('x') && (0x7ff0_0000_0000..0x8000_0000_0000).contains(&start) {
                out.push(format!("{start:#x}"));
            }
        }
    }
    out
}

#[test]
fn guest_attacks_on_the_stub_fail() {
    attack_run(&[]);
}

/// The same attacks with the seccomp stub's signal-less entry on
/// (`patch=on`): the sweep jumps into every byte of it too, with the GS
/// base at the attacker's own control page.
#[test]
fn guest_attacks_on_the_stub_fail_with_patch_entry() {
    attack_run(&["patch=on"]);
}

fn attack_run(params: &[&str]) {
    let guest = common::build_guest("stub_attack", Flavour::Static);
    let mut args: Vec<String> = Vec::new();
    if let Some(m) = common::test_mode() {
        args.push(format!("mode={m}"));
    }
    args.extend(params.iter().map(|p| p.to_string()));
    args.push("--".into());
    args.push(guest.path.display().to_string());
    args.push("attack".into());
    let mut child = Command::new(common::ruml_bin())
        .args(&args)
        .env_clear()
        .envs(common::test_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start ruml");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // A watchdog: the whole run gets a generous budget, then is killed.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let deadline = Duration::from_secs(400);
        if done_rx.recv_timeout(deadline).is_err() {
            let report = common::hang_report(pid as i32);
            // SAFETY: killing the process group we started.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            return Some(report);
        }
        None
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut most_fds = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line == "base?" {
            let mut reply = stub_code_addresses(pid, &mut most_fds).join("\n");
            reply.push_str("\nend\n");
            if stdin.write_all(reply.as_bytes()).is_err() {
                break;
            }
            continue;
        }
        lines.push(line);
    }
    drop(stdin);
    let status = child.wait().expect("wait for ruml");
    let _ = done_tx.send(());
    let hang = watchdog
        .join()
        .unwrap_or_else(|_| Some("(the watchdog panicked)".into()));
    let stderr = err_thread.join().unwrap_or_default();
    let out = lines.join("\n");
    let ctx = format!(
        "after {:?}, status {status:?}\n--- stdout:\n{out}\n--- stderr:\n{stderr}",
        start.elapsed()
    );
    if let Some(report) = &hang {
        panic!("the attack run timed out; {ctx}\n{report}");
    }
    assert!(
        !out.contains("SECRET FOUND"),
        "the attacker read the victim's memory; {ctx}"
    );
    assert!(out.contains("secret not found"), "no final scan; {ctx}");
    assert!(
        out.contains("done") && status.code() == Some(0),
        "the attacker did not finish; {ctx}"
    );
    assert!(
        out.contains("stub found"),
        "the attacker did not find its stub; {ctx}"
    );
    // Maps over the stub are refused and leave it in place.
    for what in [
        "mmap MAP_FIXED over the stub",
        "mmap hint at the stub",
        "munmap of the stub",
        "mprotect of the stub",
        "mremap onto the stub",
    ] {
        assert!(out.contains(&format!("{what}: refused")), "{what}; {ctx}");
    }
    assert!(out.contains("stub still mapped: yes"), "{ctx}");
    assert!(
        most_fds <= 1,
        "a stub held {most_fds} host descriptors (only physmem's is allowed); {ctx}"
    );
    // Each attack in a child: it was killed, or its system call failed
    // (exit 0 from the x32 check means ENOSYS; the vsyscall page may
    // work as on the host: it is only the time).
    let outcome = |name: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no result for {name}; {ctx}"))
            .to_string()
    };
    // Under seccomp, what the filter refuses kills the attacker; under
    // ptrace every system call, whatever its entry, is emulated.
    let seccomp = stderr.contains("Execution backend: seccomp");
    assert!(
        seccomp || stderr.contains("Execution backend: ptrace"),
        "no backend line in the boot log; {ctx}"
    );
    for name in [
        "int80",
        "int80 exit",
        "sysenter",
        "far jump to cs 0x23",
        "forged rt_sigreturn 0",
        "forged rt_sigreturn 1",
        "forged rt_sigreturn 2",
        "forged rt_sigreturn 3",
    ] {
        let o = outcome(name);
        let killed = o.starts_with("killed by signal");
        if seccomp {
            assert!(killed, "{name}: {o}; {ctx}");
        } else {
            assert!(killed || o.starts_with("exit "), "{name}: {o}; {ctx}");
        }
    }
    assert_eq!(
        outcome("x32 getpid"),
        "exit 0",
        "x32 must give ENOSYS; {ctx}"
    );
    let v = outcome("vsyscall gettimeofday");
    assert!(
        v == "exit 0" || v.starts_with("killed by signal"),
        "vsyscall: {v}; {ctx}"
    );
    let r = outcome("rewrite shared pages");
    assert!(
        r == "exit 0" || r.starts_with("killed by signal"),
        "rewriting shared pages: {r} (3 means a read-only page was writable); {ctx}"
    );
    assert!(
        out.contains("jump: ") && out.contains(", 0 could not start"),
        "{ctx}"
    );
}
