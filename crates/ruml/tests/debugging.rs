//! Debugging inside ruml: guest ptrace(2), process_vm_readv/writev and
//! /proc/PID/mem (tests/guest/ptrace_basic.c, differential), the host's
//! strace run as a guest (`strace -ff -e trace=process,signal sh -c ...`,
//! `strace -c`) and gdb (batch mode on tests/guest/gdb_target.c, and
//! attaching to a running process by pid), each compared with the same
//! run natively after normalising pids and addresses.

mod common;

use common::{
    assert_same, assert_same_with, build_guest, differential, run_native, run_ruml,
    run_ruml_raw_budget, test_env, Flavour,
};
use std::ffi::OsStr;
use std::time::Duration;

#[test]
fn ptrace_basic_dynamic() {
    differential("ptrace_basic", Flavour::Dynamic, &[]);
}

#[test]
fn ptrace_basic_static() {
    differential("ptrace_basic", Flavour::Static, &[]);
}

/// PTRACE_ARCH_PRCTL: a tracer sets and reads its tracee's %fs base (as
/// UML does for its processes' TLS) (`tests/guest/ptrace_arch_prctl.c`).
#[test]
fn ptrace_arch_prctl_static() {
    let (native, _) = differential("ptrace_arch_prctl", Flavour::Static, &[]);
    assert!(
        native.stdout.contains("child: %fs:0 is slot's value\n"),
        "{native}"
    );
}

/// Runs tests/guest/ptrace_detach_race.c in `mode` for `rounds` rounds
/// natively and under ruml (budget generous: a few hundred rounds are a
/// few seconds on an idle machine): the same output, and no bad round.
fn detach_race(mode: &str, rounds: u32) {
    let guest = build_guest("ptrace_detach_race", Flavour::Static);
    let env = test_env();
    let n = rounds.to_string();
    let args = [mode, n.as_str()];
    let native = run_native(&guest.path, &args, &env);
    assert_eq!(native.code(), 0, "{native}");
    let mut full: Vec<&OsStr> = vec![
        OsStr::new("quiet"),
        OsStr::new("--"),
        guest.path.as_os_str(),
    ];
    full.extend(args.iter().map(OsStr::new));
    let ruml = run_ruml_raw_budget(&full, &env, Duration::from_secs(400));
    assert_same(&native, &ruml);
    assert_eq!(ruml.stdout, format!("{rounds} rounds, 0 bad\n"), "{ruml}");
}

/// PTRACE_DETACH racing SIGKILL of a tracee in a ptrace stop, many times
/// over (TRACEME and SEIZE tracees, detach with and without a signal, and
/// detach-then-kill of a group-stopped tracee): every tracee dies of the
/// SIGKILL, never runs on to its own exit. Natively too, as an oracle.
#[test]
fn ptrace_detach_kill_race() {
    detach_race("kill", 250);
}

fn mask_after(line: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let n = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            out.push_str("PID");
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every hexadecimal number (`0x...`) with `0xADDR`.
fn mask_hex(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let n = tail.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        out.push_str("0xADDR");
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// strace's output without what legitimately differs between two runs:
/// pids (returned by fork/vfork/clone/wait4, and in kill, si_pid and
/// `[pid N]`), addresses, the child's CPU times in SIGCHLD's siginfo, and
/// the column padding that depends on how long those were.
fn normalize_strace(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = mask_hex(line);
        for m in [
            "si_pid=",
            "si_utime=",
            "si_stime=",
            "kill(",
            "wait4(",
            "[pid ",
            "Process ",
        ] {
            l = mask_after(&l, m);
        }
        // rt_sigreturn returns the interrupted call's result: wait4's pid.
        let returns_pid = [
            "vfork(",
            "fork(",
            "clone(",
            "clone3(",
            "wait4(",
            "rt_sigreturn(",
        ]
        .iter()
        .any(|p| l.starts_with(p) || l.contains(&format!("] {p}")));
        if returns_pid {
            if let Some(i) = l.rfind("= ") {
                let tail = &l[i + 2..];
                if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                    l = format!("{}= PID", &l[..i]);
                }
            }
        }
        let collapsed: Vec<&str> = l.split_whitespace().collect();
        out.push_str(&collapsed.join(" "));
        out.push('\n');
    }
    canonical_sigchld(&out)
}

/// Whether SIGCHLD is delivered just before a blocking wait4 returns the
/// child or just after it is the schedulers' business (natively too): a
/// SIGCHLD and its rt_sigreturn right before such a wait4 are moved after
/// it.
fn canonical_sigchld(s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    let mut i = 0;
    while i + 2 < lines.len() {
        if lines[i].starts_with("--- SIGCHLD")
            && lines[i + 1].starts_with("rt_sigreturn(")
            && lines[i + 2].starts_with("wait4(-1, [")
        {
            lines[i..i + 3].rotate_left(2);
            i += 3;
        } else {
            i += 1;
        }
    }
    lines.join("\n") + "\n"
}

/// `strace -c`'s table as (syscall, calls, errors) rows sorted by name:
/// the time columns are the host's business.
fn normalize_strace_count(s: &str) -> String {
    let mut rows: Vec<String> = s
        .lines()
        .filter(|l| !l.starts_with('%') && !l.starts_with('-'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // time, seconds, usecs/call, calls, [errors], syscall
            match f.len() {
                5 => Some(format!("{} calls {} errors 0", f[4], f[3])),
                6 => Some(format!("{} calls {} errors {}", f[5], f[3], f[4])),
                _ => None,
            }
        })
        .collect();
    rows.sort();
    rows.join("\n") + "\n"
}

/// PTRACE_DETACH racing the tracee's own exit (tests/guest/ptrace_detach_race.c
/// `exit`): detach from a PTRACE_EVENT_EXIT stop, detach right after
/// resuming a tracee on its way to _exit (ESRCH), and detach of a seized
/// thread while another thread of its process calls exit_group. Every
/// process ends with its own exit status, no tracer hangs; natively too,
/// as an oracle.
#[test]
fn ptrace_detach_exit_race() {
    detach_race("exit", 150);
}

/// Runs the shell script `script` natively and under ruml (sh -c).
fn both(script: &str) -> (common::Output, common::Output) {
    let env = test_env();
    let native = run_native("/bin/sh", &["-c", script], &env);
    let ruml = run_ruml("/bin/sh", &["-c", script], &env);
    (native, ruml)
}

fn have(prog: &str) -> bool {
    std::path::Path::new(prog).exists()
}

#[test]
fn strace_follows_processes_and_signals() {
    assert!(
        have("/usr/bin/strace"),
        "strace is missing (apt-get install strace)"
    );
    // One trace file per process (-ff): no interleaving, so the order of
    // lines within each process is the kernel's, and processes are listed
    // in the order they were created.
    let script = r#"d=$(mktemp -d) || exit 1
strace -ff -q -e trace=process,signal -o "$d/t" sh -c '/bin/true; /bin/echo hi; sh -c "exit 3"; echo "status $?"; sh -c "kill -USR1 \$\$"; echo "killed $?"' >/dev/null 2>&1
echo "strace status $?"
for f in $(ls "$d" | sort -t. -k2 -n); do echo "== process"; cat "$d/$f"; done
rm -rf "$d""#;
    let (native, ruml) = both(script);
    assert!(
        native.stdout.contains("+++ killed by SIGUSR1 +++"),
        "native strace did not run as expected:\n{native}"
    );
    assert_same_with(&native, &ruml, normalize_strace);
}

#[test]
fn strace_counts_calls() {
    assert!(
        have("/usr/bin/strace"),
        "strace is missing (apt-get install strace)"
    );
    // rseq is left out: ruml does not implement it (ENOSYS, glibc copes),
    // so its error count differs; docs/syscalls.md says so.
    let (native, ruml) = both("strace -c -S name -e 'trace=!rseq' /bin/true 2>&1");
    assert!(
        native.stdout.contains("execve"),
        "native strace -c did not run as expected:\n{native}"
    );
    assert_same_with(&native, &ruml, normalize_strace_count);
}

/// gdb's transcript without what differs legitimately: the inferior's pid
/// and stack and TLS addresses (ruml's address space ends lower than the
/// host's).
fn normalize_gdb(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = mask_after(line, "(process ");
        // Stack addresses: 0x7f... (the program and its libraries are at
        // the same addresses: gdb turns randomization off both times).
        let mut masked = String::new();
        let mut rest = l.as_str();
        while let Some(i) = rest.find("0x7f") {
            masked.push_str(&rest[..i]);
            let tail = &rest[i + 2..];
            let n = tail.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
            masked.push_str("0xSTACK");
            rest = &tail[n..];
        }
        masked.push_str(rest);
        l = masked;
        // `info registers fs_base`: the TLS address again, in decimal.
        if l.starts_with("fs_base") {
            if let Some(i) = l.rfind(char::is_whitespace) {
                l = format!("{} DEC", &l[..i]);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn gdb_batch_session() {
    assert!(have("/usr/bin/gdb"), "gdb is missing (apt-get install gdb)");
    let guest = build_guest("gdb_target", Flavour::Dynamic);
    let prog = guest.path.to_str().expect("utf-8 path");
    let cmds = [
        "set can-use-hw-watchpoints 0",
        "break compute",
        "run",
        "bt",
        "print local",
        "next",
        "step",
        "info registers rip eflags cs ss ds es fs gs fs_base gs_base",
        "print $rsp == $sp",
        "finish",
        "watch counter",
        "continue",
        "delete",
        "catch syscall getppid",
        "continue",
        "continue",
        "delete",
        "continue",
    ];
    let mut args: Vec<String> = vec!["-batch".into(), "-nx".into()];
    for c in cmds {
        args.push("-ex".into());
        args.push(c.into());
    }
    args.push(prog.into());
    let env = test_env();
    let native = run_native("/usr/bin/gdb", &args, &env);
    assert!(
        native.stdout.contains("Breakpoint 1, compute ("),
        "native gdb did not run as expected:\n{native}"
    );
    let ruml = run_ruml("/usr/bin/gdb", &args, &env);
    assert_same_with(&native, &ruml, normalize_gdb);
}

#[test]
fn gdb_attaches_by_pid() {
    assert!(have("/usr/bin/gdb"), "gdb is missing (apt-get install gdb)");
    let guest = build_guest("gdb_target", Flavour::Dynamic);
    let prog = guest.path.to_str().expect("utf-8 path");
    // The target prints its line and then pauses; gdb attaches, looks,
    // and kills it. The wait for the line is bounded by steps, not time.
    let script = format!(
        r#"d=$(mktemp -d) || exit 1
{prog} wait > "$d/out" &
pid=$!
i=0
while ! grep -q total "$d/out"; do i=$((i+1)); [ $i -gt 600 ] && exit 2; sleep 0.1; done
gdb -p $pid -batch -nx -ex 'print counter' -ex 'bt' -ex 'kill' 2>&1
wait $pid
echo "target status $?"
rm -rf "$d""#
    );
    let (native, ruml) = both(&script);
    assert_eq!(ruml.code(), 0, "{ruml}");
    for want in ["$1 = 3", " in main (", "target status 137"] {
        assert!(
            ruml.stdout.contains(want),
            "gdb -p output lacks {want:?}:\n{ruml}"
        );
    }
    // Natively too (where the host lets a process trace a non-child:
    // Yama's ptrace_scope 0, or root), the transcript is the same but for
    // addresses (randomized) and the pid.
    if native.stdout.contains("$1 = 3") {
        assert_same_with(&native, &ruml, |s| {
            s.lines()
                .map(|l| mask_after(&mask_hex(l), "(process ") + "\n")
                .collect()
        });
    }
}

#[test]
fn sigchld_before_or_after_wait4_is_the_same() {
    let before = "vfork() = PID\n--- SIGCHLD {x} ---\nrt_sigreturn({mask=[]}) = PID\nwait4(-1, [{s}], 0, NULL) = PID\n";
    let after = "vfork() = PID\nwait4(-1, [{s}], 0, NULL) = PID\n--- SIGCHLD {x} ---\nrt_sigreturn({mask=[]}) = PID\n";
    assert_eq!(canonical_sigchld(before), canonical_sigchld(after));
}

#[test]
fn normalizers() {
    let a = "vfork()                                 = 16724\n[pid 12] kill(16727, SIGUSR1) = 0\n--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=16724, si_uid=0, si_status=3, si_utime=1, si_stime=0} ---\nwait4(-1, 0x7ffcda698cec, WNOHANG, NULL) = -1 ECHILD (No child processes)\nrt_sigaction(SIGINT, NULL, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0\n";
    let b = "vfork() = 7\n[pid 8] kill(10, SIGUSR1)    = 0\n--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=7, si_uid=0, si_status=3, si_utime=0, si_stime=0} ---\nwait4(-1, 0x7fef5881224c, WNOHANG, NULL) = -1 ECHILD (No child processes)\nrt_sigaction(SIGINT, NULL, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0\n";
    assert_eq!(normalize_strace(a), normalize_strace(b));
    // What must still differ: exit statuses, signal numbers, sizes.
    assert_ne!(
        normalize_strace("wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 3}], 0, NULL) = 5"),
        normalize_strace("wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 4}], 0, NULL) = 5")
    );
    assert_ne!(
        normalize_strace("rt_sigaction(SIGINT, NULL, NULL, 8) = 0"),
        normalize_strace("rt_sigaction(SIGINT, NULL, NULL, 7) = 0")
    );
    let c = "% time     seconds  usecs/call     calls    errors syscall\n------ ---\n  1.00    0.000003           1         2           close\n  0.00    0.000000           0         1         1 access\n";
    let d = "% time     seconds  usecs/call     calls    errors syscall\n------ ---\n  0.00    0.000000           0         1         1 access\n 99.00    0.000100          50         2           close\n";
    assert_eq!(normalize_strace_count(c), normalize_strace_count(d));
    assert_ne!(
        normalize_strace_count(c),
        normalize_strace_count(&c.replace("2           close", "3           close"))
    );
    assert_eq!(
        normalize_gdb("[Inferior 1 (process 17726) exited with code 030]\nmain (argc=1, argv=0x7fffffffe808) at x.c:3"),
        normalize_gdb("[Inferior 1 (process 5) exited with code 030]\nmain (argc=1, argv=0x7feffefff828) at x.c:3")
    );
}

/// Tracing init (ruml only: there the test program is pid 1): an
/// unprivileged process may not attach to it, read its memory or open its
/// /proc/1/mem; root may (Linux has no special case for pid 1), and init
/// goes on after the detach.
#[test]
fn ptrace_rules_for_init() {
    let guest = build_guest("ptrace_basic", Flavour::Dynamic);
    let ruml = run_ruml(&guest.path, &["init"], &test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert_eq!(
        ruml.stdout,
        "unprivileged attach to init: -1 EPERM
unprivileged seize of init: -1 EPERM
unprivileged readv of init: -1 EPERM
unprivileged open of init's mem: -1 EACCES
unprivileged child: exited 0
root seize of init: 0
init stopped: 1 event 128
detach init: 0
root child: exited 0
",
        "{ruml}"
    );
}
