//! Terminals: the console's line discipline and job control under a real
//! terminal (tmux), pseudo-terminals (/dev/ptmx, devpts, the line
//! discipline between master and slave, controlling terminals, ^C to the
//! foreground group), and poll/select readiness — differential where the
//! host can be the oracle.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::{
    assert_same, differential, ruml_bin, run_native, run_ruml, test_env, Flavour, TempDir,
};

// --- differential: ptys and poll ---------------------------------------------

#[test]
fn pty_line_discipline_static() {
    differential("pty_ldisc", Flavour::Static, &[]);
}

#[test]
fn pty_line_discipline_dynamic() {
    differential("pty_ldisc", Flavour::Dynamic, &[]);
}

/// Three processes' large writes to one pty slave come out whole, one
/// after another (Linux's tty write lock), not interleaved.
#[test]
fn pty_writes_do_not_interleave() {
    differential("pty_atomic_write", Flavour::Static, &[]);
}

#[test]
fn poll_select_pipes_static() {
    differential("poll_pipes", Flavour::Static, &[]);
}

#[test]
fn poll_select_pipes_dynamic() {
    differential("poll_pipes", Flavour::Dynamic, &[]);
}

/// Python's pty.fork (forkpty: openpty, login_tty's setsid + TIOCSCTTY),
/// then the parent talks to the child through the master.
const PY_PTY: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    print("child", os.isatty(0), os.isatty(1), os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpid(), os.ttyname(0).startswith("/dev/pts/"))
    sys.stdout.flush()
    line = sys.stdin.readline()
    print("read", repr(line))
    sys.stdout.flush()
    os._exit(3)
data = b""
while b"\r\n" not in data:
    data += os.read(fd, 1024)
os.write(fd, b"hello\n")
while True:
    try:
        d = os.read(fd, 1024)
    except OSError as e:
        print("EIO" if e.errno == 5 else e)
        break
    if not d:
        break
    data += d
print(repr(data))
_, st = os.waitpid(pid, 0)
print("status", os.waitstatus_to_exitcode(st))
"#;

#[test]
fn python_pty_fork() {
    let py = Path::new("/usr/bin/python3");
    if !py.exists() {
        eprintln!("skipped: /usr/bin/python3 is not installed");
        return;
    }
    let env = test_env();
    let native = run_native(py, &["-c", PY_PTY], &env);
    let ruml = run_ruml(py, &["-c", PY_PTY], &env);
    assert_same(&native, &ruml);
    assert!(native.stdout.contains("status 3"), "{native}");
}

// --- the console under a real terminal (tmux) ----------------------------------

const PROMPT: &str = "RUML> ";

/// Prompts shown (capture-pane drops the trailing space of the last).
fn prompts(p: &str) -> usize {
    p.matches(PROMPT.trim_end()).count()
}

#[test]
fn interactive_bash_job_control_under_tmux() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    if !Path::new("/bin/bash").exists() {
        eprintln!("skipped: /bin/bash is not installed");
        return;
    }
    let dir = TempDir::new("tty-tmux");
    let d = dir.path();
    let script = d.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             stty -g > {d}/before\n\
             PS1='{PROMPT}' TERM=xterm {ruml} {mode}quiet -- /bin/bash --norc --noprofile -i\n\
             echo \"ruml exited $?\"\n\
             stty -g > {d}/after\n\
             echo TEST-DONE\n\
             exec sleep 600\n",
            d = d.display(),
            ruml = ruml_bin().display(),
            mode = common::mode_prefix()
        ),
    )
    .unwrap();
    let t = Tmux::start("ruml-test", 120, 40, &format!("sh {}", script.display()));

    // A prompt, and a command runs.
    t.wait("bash's prompt", 15, |p| prompts(p) >= 1);
    t.keys(&["echo hi$((40+2))", "Enter"]);
    t.wait("echo's output", 10, |p| {
        p.lines().any(|l| l.trim_end() == "hi42") && prompts(p) >= 2
    });

    // ^C interrupts a foreground sleep; a new prompt appears.
    t.keys(&["sleep 100", "Enter"]);
    t.wait("sleep's command line", 10, |p| {
        p.contains(&format!("{PROMPT}sleep 100"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let n = prompts(&t.pane());
    let p = t.press_until("C-c", "a prompt after ^C", 10, |p| prompts(p) > n);
    assert!(p.contains("^C"), "^C is not echoed:\n{p}");

    // ^Z stops it; jobs lists it; bg continues it; fg brings it back; ^C ends it.
    t.keys(&["sleep 100", "Enter"]);
    t.wait("sleep's command line", 10, |p| {
        p.matches(&format!("{PROMPT}sleep 100")).count() >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    t.press_until("C-z", "the job to stop", 10, |p| p.contains("Stopped"));
    let n = prompts(&t.pane());
    t.wait("a prompt after the stop", 10, |p| {
        prompts(p) > n - 1 && p.trim_end().ends_with(PROMPT.trim_end())
    });
    t.keys(&["jobs", "Enter"]);
    t.wait("jobs' listing", 10, |p| {
        p.lines()
            .filter(|l| l.contains("Stopped") && l.contains("sleep 100"))
            .count()
            >= 2
    });
    t.keys(&["bg", "Enter"]);
    t.wait("bg", 10, |p| p.contains("sleep 100 &"));
    t.keys(&["jobs", "Enter"]);
    t.wait("the job running", 10, |p| {
        p.lines()
            .any(|l| l.contains("Running") && l.contains("sleep 100"))
    });
    t.keys(&["fg", "Enter"]);
    t.wait("fg", 10, |p| p.lines().any(|l| l.trim_end() == "sleep 100"));
    std::thread::sleep(Duration::from_millis(300));
    let n = prompts(&t.pane());
    t.press_until("C-c", "a prompt after ^C of the fg job", 10, |p| {
        prompts(p) > n
    });
    t.keys(&["jobs; echo jobs-done", "Enter"]);
    let p = t.wait("an empty job list", 10, |p| {
        p.lines().any(|l| l.trim_end() == "jobs-done")
    });
    let tail: Vec<&str> = p
        .lines()
        .skip_while(|l| !l.contains("jobs; echo jobs-done"))
        .collect();
    assert!(
        !tail.iter().any(|l| l.contains("sleep 100")),
        "the job is still listed:\n{p}"
    );

    // The window size is the terminal's; resizing the host terminal
    // resizes the guest's (SIGWINCH on the host → TIOCSWINSZ → SIGWINCH,
    // which bash handles by re-reading the size into $COLUMNS).
    t.keys(&["stty size", "Enter"]);
    t.wait("stty size", 10, |p| {
        p.lines().any(|l| l.trim_end() == "40 120")
    });
    t.resize(100, 30);
    t.keys(&["stty size; echo cols=$COLUMNS", "Enter"]);
    t.wait("the new size", 10, |p| {
        p.lines().any(|l| l.trim_end() == "30 100") && p.lines().any(|l| l.trim_end() == "cols=100")
    });

    // A background job reading the terminal stops (SIGTTIN).
    t.keys(&["cat &", "Enter"]);
    t.keys(&["sleep 0.5; jobs", "Enter"]);
    t.wait("the background reader to stop", 10, |p| {
        p.lines()
            .any(|l| l.contains("Stopped") && l.contains("cat"))
    });
    t.keys(&["kill -9 %1; wait; echo killed-cat", "Enter"]);
    t.wait("the reader killed", 10, |p| {
        p.lines().any(|l| l.trim_end() == "killed-cat")
    });

    // exit ends ruml; the host terminal's settings are as before.
    t.keys(&["exit", "Enter"]);
    let p = t.wait("ruml to exit", 15, |p| p.contains("TEST-DONE"));
    assert!(p.contains("ruml exited 0"), "{p}");
    let before = std::fs::read_to_string(d.join("before")).unwrap();
    let after = std::fs::read_to_string(d.join("after")).unwrap();
    assert_eq!(before, after, "stty -g differs after ruml exited");
}

/// ruml killed by SIGTERM (or SIGHUP) restores the host terminal too.
#[test]
fn terminal_restored_when_ruml_is_killed() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = TempDir::new("tty-kill");
    let d = dir.path();
    let script = d.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             stty -g > {d}/before\n\
             {ruml} {mode}quiet -- /bin/sh -c 'echo started; exec sleep 100'\n\
             stty -g > {d}/after\n\
             echo TEST-DONE\n\
             exec sleep 600\n",
            d = d.display(),
            ruml = ruml_bin().display(),
            mode = common::mode_prefix()
        ),
    )
    .unwrap();
    let t = Tmux::start(
        "ruml-test-kill",
        80,
        20,
        &format!("sh {}", script.display()),
    );
    t.wait("the guest to start", 15, |p| p.contains("started"));
    // ruml's pid: the child of the script's shell named ruml.
    let pids = Command::new("pgrep")
        .args([
            "-f",
            &format!(
                "{} {}quiet -- /bin/sh -c",
                ruml_bin().display(),
                common::mode_prefix()
            ),
        ])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout);
    let pid: i32 = pids
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("ruml's pid");
    // SAFETY: plain kill of the ruml we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    t.wait("the script to go on", 15, |p| p.contains("TEST-DONE"));
    let before = std::fs::read_to_string(d.join("before")).unwrap();
    let after = std::fs::read_to_string(d.join("after")).unwrap();
    assert_eq!(before, after, "stty -g differs after ruml was killed");
}

/// A change of the host terminal's size reaches the guest at once, with
/// no input typed: ruml's SIGWINCH sets the console's size
/// (TIOCGWINSZ) and the console's foreground process group gets SIGWINCH.
#[test]
fn window_size_change_reaches_the_guest_without_input() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = TempDir::new("tty-winch");
    let d = dir.path();
    let script = d.join("run.sh");
    // init (sh, the console's foreground group) reports every SIGWINCH
    // with the size it then reads from the terminal.
    // (`\$`: the host's sh runs this line inside double quotes.)
    let guest = "trap 'echo WINCH \\$(stty size)' WINCH; echo waiting-for-winch; \
                 while :; do sleep 0.2; done";
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             {ruml} {mode}quiet -- /bin/sh -c \"{guest}\"\n\
             echo TEST-DONE\n\
             exec sleep 600\n",
            ruml = ruml_bin().display(),
            mode = common::mode_prefix()
        ),
    )
    .unwrap();
    let t = Tmux::start(
        "ruml-test-winch",
        120,
        40,
        &format!("sh {}", script.display()),
    );
    t.wait("the guest to start", 15, |p| {
        p.contains("waiting-for-winch")
    });
    for (x, y) in [(100, 30), (90, 25)] {
        t.resize(x, y);
        let want = format!("WINCH {y} {x}");
        t.wait(&want, 15, |p| p.lines().any(|l| l.trim_end() == want));
    }
    assert!(!t.pane().contains("TEST-DONE"), "ruml ended early");
}

/// /dev/pts/N belongs to the fsuid that opened /dev/ptmx (root, uid 1000,
/// and euid 2000 with real uid 0), group tty or the opener's, mode 0620
/// or 0600. Needs root natively (setresuid).
#[test]
fn pty_slave_belongs_to_its_opener() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("pty_slave_belongs_to_its_opener: needs root natively; skipped");
        return;
    }
    differential("pty_owner", Flavour::Static, &[]);
}
