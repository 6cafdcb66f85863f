//! ruml inside ruml: the inner ruml is an ordinary guest program of the
//! outer one (memfd physmem, ptrace of its own stub processes through the
//! outer's guest ptrace, PTRACE_SYSEMU, regsets, seccomp-free fallback),
//! its stubs and guests placed 64 GiB lower in the address space per
//! level. Both outer backends (RUML_TEST_MODE); generous budgets, since
//! ptrace inside ptrace is slow on a busy machine.

mod common;

use common::{
    assert_same, build_guest, differential, ruml_bin, run_native, run_ruml, run_ruml_raw_budget,
    test_env, Flavour,
};
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(300);

fn ruml_path() -> String {
    ruml_bin().to_string_lossy().into_owned()
}

/// What a plain (one-level) `uname -r` says: the nested ones must agree.
fn release() -> String {
    let out = run_ruml_raw_budget(&["quiet", "--", "/bin/uname", "-r"], &test_env(), BUDGET);
    assert_eq!(out.code(), 0, "{out}");
    out.stdout
}

#[test]
fn ruml_inside_ruml() {
    let r = ruml_path();
    let out = run_ruml_raw_budget(
        &[
            "quiet",
            "--",
            &r,
            "quiet",
            "--",
            "/bin/sh",
            "-c",
            "echo nested; uname -r",
        ],
        &test_env(),
        BUDGET,
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, format!("nested\n{}", release()), "{out}");
}

#[test]
fn inner_exit_status_and_pipes() {
    // The inner ruml exits with its init's status, and the outer with the
    // inner's; a pipeline and a fork-heavy command run inside.
    let r = ruml_path();
    let out = run_ruml_raw_budget(
        &[
            "quiet",
            "--",
            &r,
            "quiet",
            "--",
            "/bin/sh",
            "-c",
            "seq 1 200 | sort -rn | head -3; for i in 1 2 3; do /bin/true; done; exit 7",
        ],
        &test_env(),
        BUDGET,
    );
    assert_eq!(out.code(), 7, "{out}");
    assert_eq!(out.stdout, "200\n199\n198\n", "{out}");
}

#[test]
fn inner_falls_back_to_ptrace_with_a_clear_line() {
    let r = ruml_path();
    // Not quiet: the inner's boot log says which backend and why.
    let out = run_ruml_raw_budget(&["quiet", "--", &r, "--", "/bin/true"], &test_env(), BUDGET);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        out.stderr
            .contains("Nesting: running nested inside ruml (level 1")
            && out.stderr.contains("falling back to ptrace")
            && out.stderr.contains("Execution backend: ptrace"),
        "{out}"
    );
    // Forcing the seccomp backend nested is refused, clearly.
    let out = run_ruml_raw_budget(
        &[
            "quiet",
            "--",
            &r,
            "quiet",
            "mode=seccomp",
            "--",
            "/bin/true",
        ],
        &test_env(),
        BUDGET,
    );
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .contains("mode=seccomp cannot be used running nested inside ruml"),
        "{out}"
    );
}

/// Three levels: the middle ruml serves the innermost one's physmem (a
/// memfd of the middle's tmpfs) to many stub processes at once, read-only
/// mappings of holes included (docs/debugging.md, "Three levels").
#[test]
fn three_levels_deep() {
    let r = ruml_path();
    let out = run_ruml_raw_budget(
        &[
            "quiet",
            "--",
            &r,
            "quiet",
            "--",
            &r,
            "quiet",
            "--",
            "/bin/sh",
            "-c",
            "echo nested3; uname -r; seq 1 50 | sort -rn | head -2",
        ],
        &test_env(),
        BUDGET,
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout,
        format!("nested3\n{}50\n49\n", release()),
        "{out}"
    );
}

/// Debian's UML 6.1 (`/usr/bin/linux.uml` from user-mode-linux) boots as a
/// guest of ruml with a hostfs root (ruml's root, seen through UML's
/// hostfs), runs an init script that echoes a line and halts, and ruml
/// exits cleanly. UML is itself a ptrace-based kernel: this exercises
/// guest ptrace (SYSEMU, GETREGS/SETREGS, ARCH_PRCTL), SIGSEGV frames with
/// the page-fault error code, POSIX timers, O_ASYNC/SIGIO and edge-triggered
/// epoll. Both outer backends (RUML_TEST_MODE).
///
/// UML runs under a shell, not as ruml's pid 1. UML has a race of its own
/// at halt: a timer tick landing between its halt (signals masked, the
/// kernel torn down) and `os_timer_disable()` in main is run on the dead
/// kernel, which faults and calls `uml_abort()`, a loop of
/// `kill(getpid(), SIGABRT)` (UML's main.c says such late timer signals
/// happen when halting takes long). Natively the window is microseconds;
/// inside ruml, where its last system calls and page faults are slower, a
/// run in ten or so meets it (natively, a 30 ms sleep put into that window
/// with LD_PRELOAD makes every run abort the same way). As pid 1, UML's
/// SIGABRTs to itself are dropped, as Linux drops them for any init
/// (`init_self_signal` below), and UML spun for ever: that was the hang.
/// Not init, it dies of its SIGABRT after `reboot: System halted`, which
/// is accepted here as UML's race; anything else fails.
///
/// UML's console gets no input channel (`con0=null,fd:1`): with the
/// default `con0=fd:0,fd:1` and standard input at end of file UML loses
/// its console output after boot natively as well (/dev/null: epoll_ctl
/// refuses it and UML drops the channel; a pipe: it polls hung up, UML
/// reads end of file, takes it for a hang-up and closes the output too).
/// ruml's console polls at end of file as Linux polls that descriptor
/// (`console_at_eof_polls_as_linux`).
#[test]
fn uml_inside_ruml() {
    let uml = "/usr/bin/linux.uml";
    if !std::path::Path::new(uml).exists() {
        eprintln!("SKIP uml_inside_ruml: {uml} is absent (Debian's user-mode-linux package)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ruml-uml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let init = dir.join("init.sh");
    std::fs::write(
        &init,
        "#!/bin/sh\necho hello-from-uml\nexec /sbin/halt -f\n",
    )
    .expect("init");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = format!(
        "/usr/bin/env TMPDIR=/dev/shm {uml} root=/dev/root rootfstype=hostfs rootflags=/ rw \
         mem=64M con0=null,fd:1 con=null init={}; echo \"uml status $?\"",
        init.display()
    );
    let out = run_ruml_raw_budget(
        &["quiet", "--", "/bin/sh", "-c", &script],
        &test_env(),
        BUDGET,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code(), 0, "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |want: &str| lines.iter().position(|l| *l == want);
    let hello = at("hello-from-uml").unwrap_or_else(|| panic!("UML's init did not run:\n{out}"));
    let halted = at("reboot: System halted").unwrap_or_else(|| panic!("no halt:\n{out}"));
    assert!(hello < halted, "{out}");
    // 134: UML's post-halt abort (see above); only after the halt.
    let status = lines.last().copied().unwrap_or_default();
    assert!(
        status == "uml status 0" || status == "uml status 134",
        "UML did not exit as after a halt:\n{out}"
    );
}

/// The regression test of what hung `uml_inside_ruml`: an init that
/// signals itself with SIGABRT (and SIGKILL) lives on, as on Linux, in
/// ruml's own pid 1 and in the init of a child PID namespace (which ruml
/// did not protect: it died), while from the parent namespace SIGTERM is
/// dropped and SIGKILL kills (tests/guest/init_self_signal.c; natively it
/// needs root for the new PID namespace).
#[test]
fn init_self_signal() {
    // SAFETY: plain call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("init_self_signal: needs root natively; skipped");
        return;
    }
    let (native, _) = differential("init_self_signal", Flavour::Static, &[]);
    assert!(
        native
            .stdout
            .contains("init: 1000 more kill(self, SIGABRT), 0 failed, alive\n"),
        "{native}"
    );
}

/// The console (ruml's fd 0 passed through to the guest) at end of file
/// polls as Linux polls that descriptor: /dev/null readable, a pipe whose
/// writer is gone hung up (POLLHUP without POLLIN); both read 0
/// (tests/guest/console_eof_poll.c, natively and inside ruml, standard
/// input an exhausted pipe and /dev/null).
#[test]
fn console_at_eof_polls_as_linux() {
    let guest = build_guest("console_eof_poll", Flavour::Static);
    let prog = guest.path.to_str().expect("utf-8 path");
    let env = test_env();
    let null = run_native(prog, &[] as &[&str], &env);
    assert_eq!(
        null.stdout,
        "poll 1 in=1 hup=0\nread 0\n".repeat(2),
        "{null}"
    );
    let ruml = run_ruml(prog, &[] as &[&str], &env);
    assert_same(&null, &ruml);
    let pipe = run_native("/bin/sh", &["-c", &format!("true | {prog}")], &env);
    assert_eq!(
        pipe.stdout,
        "poll 1 in=0 hup=1\nread 0\n".repeat(2),
        "{pipe}"
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    let mode = common::mode_prefix();
    cmd.args([
        "-c",
        &format!("true | \"$0\" {mode}eth0=none quiet -- {prog}"),
        &ruml_path(),
    ]);
    let ruml = common::run_command(cmd, &env, "true | ruml -- console_eof_poll".into(), BUDGET);
    assert_same(&pipe, &ruml);
}

/// What nesting relies on, against the host: a read-only MAP_SHARED
/// mapping of a memfd hole shows the file's later writes and, made
/// writable with mprotect, writes the file (the middle ruml had given
/// such a mapping a private zero page: three levels crashed); a thread
/// that keeps writing a page while another forks and a third has the
/// kernel write into it loses nothing, and the child's copy stays as it
/// was at fork.
#[test]
fn shm_holes_and_fork_while_writing() {
    let (_, out) = differential("shm_hole_fork", Flavour::Dynamic, &[]);
    assert!(!out.stdout.contains("FAILED"), "{out}");
}
