//! Instances and the management console: `umid=`/`uml_dir=`, UMID/pid and
//! UMID/mconsole, Debian's `uml_mconsole` and `ruml ctl` against a running
//! instance (version, proc, sysrq, stop/go, cad, reboot, halt), malformed
//! datagrams, SIGTERM to ruml, stale and live instance directories.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ruml_bin, test_env, TempDir};

/// A ruml instance started in the background with its own uml_dir; its
/// stdout and stderr go to files. SIGKILLed with its process group on drop.
struct Instance {
    child: Child,
    /// The guest's console input, for [`start_home_piped`]'s instances.
    stdin: Option<std::process::ChildStdin>,
    dir: TempDir,
    umid: String,
}

impl Instance {
    fn start(tag: &str, args: &[&str]) -> Instance {
        let dir = TempDir::new(tag);
        let umid = format!("t{}-{tag}", std::process::id());
        Instance::start_in(dir, &umid, args)
    }

    /// [`Instance::start`], then waits until its management socket
    /// answers.
    fn ready(tag: &str, args: &[&str]) -> Instance {
        let mut i = Instance::start(tag, args);
        i.wait_ready();
        i
    }

    fn start_in(dir: TempDir, umid: &str, args: &[&str]) -> Instance {
        Instance::start_with(dir, umid, args, false)
    }

    fn start_with(dir: TempDir, umid: &str, args: &[&str], piped: bool) -> Instance {
        let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut a: Vec<String> = Vec::new();
        if let Some(m) = common::test_mode() {
            a.push(format!("mode={m}"));
        }
        a.push(format!("umid={umid}"));
        a.push(format!("uml_dir={}", dir.path().join("uml").display()));
        a.extend(args.iter().map(|s| s.to_string()));
        let child = Command::new(ruml_bin())
            .args(&a)
            .env_clear()
            .envs(test_env())
            .env("HOME", dir.path())
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("start ruml");
        let mut child = child;
        Instance {
            stdin: child.stdin.take(),
            child,
            dir,
            umid: umid.to_string(),
        }
    }

    fn uml_dir(&self) -> PathBuf {
        self.dir.path().join("uml")
    }

    fn socket(&self) -> PathBuf {
        self.uml_dir().join(&self.umid).join("mconsole")
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Polls every `every` (up to `secs`) until `ok` holds; panics,
    /// saying `what` and showing ruml's output, if ruml exits first or
    /// time runs out.
    fn poll(&mut self, what: &str, secs: u64, every: Duration, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if ok(self) {
                return;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "ruml exited ({st}) before {what}; stdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(every);
        }
    }

    /// Waits (up to `secs`) until stdout satisfies `ok`.
    fn wait_stdout(&mut self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) {
        self.poll(what, secs, Duration::from_millis(50), |i| ok(&i.stdout()));
    }

    /// Waits until the management socket answers (the instance is up).
    fn wait_ready(&mut self) {
        self.poll(
            "the management socket to answer",
            30,
            Duration::from_millis(100),
            |i| i.socket().exists() && ctl(i, &["proc", "1/stat"]).0 == 0,
        );
    }

    /// Waits for ruml to exit (budget 60 s); returns its exit code.
    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "ruml did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the process group we created.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `ruml ctl uml_dir=... UMID ARGS...`: (status, stdout, stderr).
fn ctl(i: &Instance, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ruml_bin())
        .arg("ctl")
        .arg(format!("uml_dir={}", i.uml_dir().display()))
        .arg(&i.umid)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ruml ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const UML_MCONSOLE: &str = "/usr/bin/uml_mconsole";

/// Debian's `uml_mconsole UMID ARGS...` with HOME pointing at the test's
/// directory, so that it finds `~/.uml/UMID/mconsole` itself.
fn uml_mconsole(i: &Instance, args: &[&str]) -> String {
    uml_mconsole_at(i.dir.path(), &i.umid, args)
}

/// `uml_mconsole UMID ARGS...` with HOME set to `home`.
fn uml_mconsole_at(home: &Path, umid: &str, args: &[&str]) -> String {
    let out = Command::new(UML_MCONSOLE)
        .arg(umid)
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run uml_mconsole");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// An instance started with uml_dir = HOME/.uml (uml_mconsole's default).
fn start_home(tag: &str, args: &[&str]) -> Instance {
    let dir = TempDir::new(tag);
    let umid = format!("t{}-{tag}", std::process::id());
    let mut a = vec![format!("uml_dir={}", dir.path().join(".uml").display())];
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    // start_in adds its own uml_dir= first; ours comes later and wins.
    Instance::start_in(dir, &umid, &a)
}

/// As [`start_home`], with the guest's console input a pipe the test
/// writes ([`Instance::stdin`]).
fn start_home_piped(tag: &str, args: &[&str]) -> Instance {
    let dir = TempDir::new(tag);
    let umid = format!("t{}-{tag}", std::process::id());
    let mut a = vec![format!("uml_dir={}", dir.path().join(".uml").display())];
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    Instance::start_with(dir, &umid, &a, true)
}

fn home_socket(i: &Instance) -> PathBuf {
    i.dir.path().join(".uml").join(&i.umid).join("mconsole")
}

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done";

fn ticks(s: &str) -> usize {
    s.lines().filter(|l| l.starts_with("tick ")).count()
}

#[test]
fn uml_mconsole_version_proc_sysrq_and_halt() {
    if !Path::new(UML_MCONSOLE).exists() {
        eprintln!("skipped: {UML_MCONSOLE} is not installed (uml-utilities)");
        return;
    }
    let mut i = start_home("umlmc", &["--", "/bin/sh", "-c", "sleep 1000"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The socket answers from the start; wait until init runs.
    while !home_socket(&i).exists() || !uml_mconsole(&i, &["proc", "1/stat"]).starts_with("OK") {
        assert!(
            Instant::now() < deadline,
            "no socket or no init; stderr:\n{}",
            i.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid_file = i.dir.path().join(".uml").join(&i.umid).join("pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        i.child.id().to_string(),
        "UMID/pid holds ruml's pid"
    );
    let v = uml_mconsole(&i, &["version"]);
    assert!(v.contains("OK Linux") && v.contains("x86_64"), "{v}");
    let m = uml_mconsole(&i, &["proc", "meminfo"]);
    assert!(m.contains("OK") && m.contains("MemTotal:"), "{m}");
    let s = uml_mconsole(&i, &["proc", "1/status"]);
    assert!(s.contains("Pid:\t1"), "{s}");
    let m = uml_mconsole(&i, &["sysrq", "m"]);
    assert!(m.contains("OK") && m.contains("pages RAM"), "{m}");
    let t = uml_mconsole(&i, &["sysrq", "t"]);
    assert!(t.contains("sleep") || t.contains("sh"), "{t}");
    let h = uml_mconsole(&i, &["help"]);
    assert!(h.contains("sysrq"), "{h}");
    let u = uml_mconsole(&i, &["frobnicate"]);
    assert!(u.contains("ERR"), "{u}");
    // A path works as well as a umid.
    let out = Command::new(UML_MCONSOLE)
        .arg(home_socket(&i))
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK Linux"));
    let h = uml_mconsole(&i, &["halt"]);
    assert!(h.contains("OK"), "{h}");
    assert_eq!(i.wait_exit(), 0, "halt ends ruml with 0:\n{}", i.stderr());
    assert!(
        !i.dir.path().join(".uml").join(&i.umid).exists(),
        "UMID directory left after halt"
    );
}

#[test]
fn stop_freezes_the_guest_and_go_resumes_it() {
    let mut i = Instance::ready("stopgo", &["quiet", "--", "/bin/sh", "-c", COUNTER]);
    i.wait_stdout("the counter to run", 30, |s| ticks(s) >= 3);
    let (st, out, err) = ctl(&i, &["stop"]);
    assert_eq!(st, 0, "stop: {out}{err}");
    assert!(out.contains("stopped"), "{out}");
    // A write already under way may still land: take the baseline later.
    std::thread::sleep(Duration::from_millis(500));
    let before = ticks(&i.stdout());
    std::thread::sleep(Duration::from_secs(3));
    let after = ticks(&i.stdout());
    assert_eq!(before, after, "the guest made progress while stopped");
    // Other commands still work while stopped.
    let (st, out, _) = ctl(&i, &["proc", "uptime"]);
    assert_eq!(st, 0, "{out}");
    let (st, _, err) = ctl(&i, &["stop"]);
    assert_ne!(st, 0);
    assert!(err.contains("Already stopped"), "{err}");
    let (st, out, err) = ctl(&i, &["go"]);
    assert_eq!(st, 0, "go: {out}{err}");
    i.wait_stdout("the counter to advance after go", 30, |s| {
        ticks(s) > after + 2
    });
    let (st, _, err) = ctl(&i, &["go"]);
    assert_ne!(st, 0);
    assert!(err.contains("Not stopped"), "{err}");
    let (st, _, _) = ctl(&i, &["halt"]);
    assert_eq!(st, 0);
    assert_eq!(i.wait_exit(), 0);
}

#[test]
fn ruml_ctl_list_sysrq_cad_and_log() {
    // init traps SIGINT: ctrl-alt-delete reaches it.
    let script = "trap 'echo got-cad; exit 5' INT; echo ready; while :; do sleep 0.2; done";
    let mut i = Instance::ready("ctl", &["--", "/bin/sh", "-c", script]);
    i.wait_stdout("init to start", 30, |s| s.contains("ready"));
    let out = Command::new(ruml_bin())
        .arg("ctl")
        .arg(format!("uml_dir={}", i.uml_dir().display()))
        .arg("list")
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&i.umid) && l.contains(&i.child.id().to_string())),
        "{list}"
    );
    let (st, out, _) = ctl(&i, &["version"]);
    assert_eq!(st, 0);
    assert!(out.starts_with("Linux "), "{out}");
    let (st, out, _) = ctl(&i, &["proc", "cmdline"]);
    assert_eq!(st, 0);
    assert!(out.contains(&format!("umid={}", i.umid)), "{out}");
    let (st, out, _) = ctl(&i, &["sysrq", "t"]);
    assert_eq!(st, 0);
    assert!(out.contains(" sh"), "{out}");
    let (st, _, _) = ctl(&i, &["sysrq", "s"]);
    assert_eq!(st, 0);
    let (st, _, err) = ctl(&i, &["sysrq", "Q"]);
    assert_ne!(st, 0, "an unknown key is an error");
    assert!(!err.is_empty());
    let (st, _, _) = ctl(&i, &["log", "hello-from-the-host"]);
    assert_eq!(st, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !i.stderr().contains("hello-from-the-host") {
        assert!(Instant::now() < deadline, "log text not in the kernel log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, _, _) = ctl(&i, &["cad"]);
    assert_eq!(st, 0);
    assert_eq!(
        i.wait_exit(),
        5,
        "init's SIGINT handler exits 5:\n{}",
        i.stderr()
    );
    assert!(i.stdout().contains("got-cad"));
}

#[test]
fn sysrq_e_terminates_everything_but_init() {
    let script = "sleep 1000 & sleep 1000 & echo started; wait; echo all-gone; sleep 1000";
    let mut i = Instance::ready("sysrq-e", &["quiet", "--", "/bin/sh", "-c", script]);
    i.wait_stdout("the children", 30, |s| s.contains("started"));
    let (st, out, _) = ctl(&i, &["sysrq", "e"]);
    assert_eq!(st, 0, "{out}");
    i.wait_stdout("init to see its children end", 30, |s| {
        s.contains("all-gone")
    });
    assert!(i.child.try_wait().unwrap().is_none(), "init was killed too");
    ctl(&i, &["halt"]);
    assert_eq!(i.wait_exit(), 0);
}

/// SysRq w lists the threads sleeping in a system call (init waiting,
/// its child in clock_nanosleep); SysRq l shows each thread's guest
/// registers at its system call's entry (ORIG_RAX is the call's number)
/// and the top of its guest stack. Both go to the kernel log too.
#[test]
fn sysrq_w_and_l_show_blocked_tasks_and_registers() {
    let script = "sleep 1000 & echo started; wait";
    let mut i = Instance::ready("sysrq-wl", &["--", "/bin/sh", "-c", script]);
    i.wait_stdout("the child", 30, |s| s.contains("started"));
    // The child may still be starting: ask until it sleeps.
    let deadline = Instant::now() + Duration::from_secs(30);
    let w = loop {
        let (st, out, err) = ctl(&i, &["sysrq", "w"]);
        assert_eq!(st, 0, "{out}{err}");
        if out
            .lines()
            .any(|l| l.contains(" sleep ") && l.contains("clock_nanosleep"))
        {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "sleep never shown blocked:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(w.starts_with("Show Blocked State"), "{w}");
    assert!(
        w.lines().any(|l| l.split_whitespace().next() == Some("1")),
        "init sleeps in the kernel too (dash's wait: rt_sigsuspend):\n{w}"
    );
    let (st, l, _) = ctl(&i, &["sysrq", "l"]);
    assert_eq!(st, 0, "{l}");
    let sleep_part = l
        .split("pid ")
        .find(|p| p.contains("comm sleep"))
        .unwrap_or_else(|| panic!("no sleep thread in:\n{l}"));
    assert!(sleep_part.contains("in clock_nanosleep"), "{l}");
    assert!(
        sleep_part.contains(&format!("ORIG_RAX: {:016x}", 230)),
        "clock_nanosleep is system call 230:\n{l}"
    );
    assert!(
        sleep_part.contains("RIP: ") && sleep_part.contains("Stack: "),
        "{l}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !i.stderr().contains("sysrq: Show Blocked State") {
        assert!(Instant::now() < deadline, "sysrq w not in the kernel log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, _, _) = ctl(&i, &["halt"]);
    assert_eq!(st, 0);
    assert_eq!(i.wait_exit(), 0);
}

#[test]
fn reboot_boots_again_with_the_same_umid() {
    let mut i = Instance::ready(
        "reboot",
        &["quiet", "--", "/bin/sh", "-c", "echo booted; sleep 1000"],
    );
    i.wait_stdout("the first boot", 30, |s| s.contains("booted"));
    let (st, _, _) = ctl(&i, &["reboot"]);
    assert_eq!(st, 0);
    i.wait_stdout("the second boot", 60, |s| s.matches("booted").count() >= 2);
    i.wait_ready();
    let (st, _, _) = ctl(&i, &["halt"]);
    assert_eq!(st, 0);
    assert_eq!(i.wait_exit(), 0);
}

#[test]
fn malformed_datagrams_get_an_error_and_change_nothing() {
    use ruml_host::mconsole::{encode_request, send_raw};
    let mut i = Instance::ready("malformed", &["quiet", "--", "/bin/sh", "-c", "sleep 1000"]);
    let sock = i.socket();
    let t = Duration::from_secs(30);
    let good = encode_request(b"halt").unwrap();
    let mut bad: Vec<(&str, Vec<u8>)> = Vec::new();
    bad.push(("no magic (version 0)", b"halt".to_vec()));
    bad.push(("header cut short", good[..8].to_vec()));
    let mut v = good.clone();
    v[4..8].copy_from_slice(&1u32.to_ne_bytes());
    bad.push(("version 1", v));
    let mut v = good.clone();
    v[8..12].copy_from_slice(&400u32.to_ne_bytes());
    bad.push(("length beyond the datagram", v));
    let mut v = good.clone();
    v[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
    bad.push(("length beyond MAX_DATA", v));
    let mut v = good.clone();
    v.resize(4096, b' ');
    bad.push(("oversized datagram", v));
    for (what, d) in &bad {
        let (err, text) = send_raw(&sock, d, t).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            err,
            "{what}: no error reply: {}",
            String::from_utf8_lossy(&text)
        );
        assert!(!text.is_empty(), "{what}: empty error text");
    }
    // Still running, still answering.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        i.child.try_wait().unwrap().is_none(),
        "a malformed request halted ruml"
    );
    let (st, out, _) = ctl(&i, &["version"]);
    assert_eq!(st, 0, "{out}");
    let (err, _) = send_raw(&sock, &good, t).unwrap();
    assert!(!err);
    assert_eq!(i.wait_exit(), 0);
}

#[test]
fn sigterm_to_ruml_interrupts_init_and_a_second_halts() {
    // A plain program as init: SIGTERM to ruml becomes SIGINT to init.
    let mut i = Instance::ready("sigterm1", &["quiet", "--", "/bin/sleep", "1000"]);
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(i.child.id() as i32, libc::SIGTERM) };
    assert_eq!(i.wait_exit(), 128 + libc::SIGINT, "{}", i.stderr());
    // An init that ignores SIGINT: the second SIGTERM halts.
    let mut i = Instance::ready(
        "sigterm2",
        &[
            "--",
            "/bin/sh",
            "-c",
            "trap '' INT; echo ready; while :; do sleep 0.2; done",
        ],
    );
    i.wait_stdout("init", 30, |s| s.contains("ready"));
    unsafe { libc::kill(i.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !i.stderr().contains("orderly shutdown") {
        assert!(Instant::now() < deadline, "{}", i.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(i.child.try_wait().unwrap().is_none());
    unsafe { libc::kill(i.child.id() as i32, libc::SIGTERM) };
    assert_eq!(i.wait_exit(), 128 + libc::SIGTERM, "{}", i.stderr());
}

#[test]
fn sigkill_leaves_a_stale_dir_that_the_next_boot_replaces() {
    let dir = TempDir::new("stale");
    let umid = format!("t{}-stale", std::process::id());
    let mut a = Instance::start_in(
        dir,
        &umid,
        &["quiet", "--", "/bin/sh", "-c", "sleep 1000 & sleep 1000"],
    );
    a.wait_ready();
    let stubs = common::descendants(a.child.id() as i32);
    // A second instance with the same umid is refused while the first lives.
    let other = TempDir::new("stale-b");
    let out = Command::new(ruml_bin())
        .arg(format!("uml_dir={}", a.uml_dir().display()))
        .arg(format!("umid={umid}"))
        .args(["quiet", "--", "/bin/true"])
        .env_clear()
        .envs(test_env())
        .stdin(Stdio::null())
        .current_dir(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("in use"), "{msg}");
    // SIGKILL: the directory stays behind, no stub survives.
    unsafe { libc::kill(a.child.id() as i32, libc::SIGKILL) };
    let _ = a.child.wait();
    let stale = a.uml_dir().join(&umid);
    assert!(stale.join("pid").exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while stubs.iter().any(common::still_running) {
        assert!(Instant::now() < deadline, "a stub outlived ruml's SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(ruml_bin())
        .arg(format!("uml_dir={}", a.uml_dir().display()))
        .arg(format!("umid={umid}"))
        .args(["--", "/bin/true"])
        .env_clear()
        .envs(test_env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("replaced the stale directory"), "{log}");
    assert!(
        !stale.exists(),
        "the new boot's directory is removed at halt"
    );
}

fn host_has(prog: &str) -> bool {
    Command::new(prog)
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `ruml ctl SOCKET ARGS...`: (status, stdout, stderr).
fn ctl_socket(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ruml_bin())
        .arg("ctl")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ruml ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reply's text after uml_mconsole's "OK "/"ERR " (its other lines are
/// warnings about where it looked for the socket).
fn reply_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("OK") || l.starts_with("ERR"))
        .unwrap_or("")
        .trim_end()
}

/// `config ubdN=FILE` hot-plugs a disk the guest then mounts; `config
/// ubdN` tells what a disk is; `remove ubdN` is refused while the disk is
/// mounted and unplugs it once it is not (the guest's writes are on the
/// host file); malformed configurations change nothing; consoles' channels
/// are queried and set (before the guest opens them) — through Debian's
/// `uml_mconsole`, and `ruml ctl` with the same verbs.
#[test]
fn config_and_remove_hot_plug_disks_and_set_consoles() {
    if !Path::new(UML_MCONSOLE).exists() {
        eprintln!("skipped: {UML_MCONSOLE} is not installed (uml-utilities)");
        return;
    }
    if !host_has("mke2fs") {
        eprintln!("skipped: mke2fs is not installed (e2fsprogs)");
        return;
    }
    let work = TempDir::new("hotplug-img");
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("hello"), "hello-from-the-plugged-disk\n").unwrap();
    let root_img = work.path().join("a.img");
    let img = work.path().join("b.img");
    std::fs::File::create(&root_img)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("4M")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "mke2fs failed");
    let img_s = img.to_str().unwrap();
    // The guest waits for the disk, mounts it and writes to it; on a line
    // of input it unmounts it; once the disk is gone, on the next line it
    // writes to /dev/tty3.
    let script = "M=$(mktemp -d); echo ready; \
        while [ ! -b /dev/ubdb ]; do sleep 0.1; done; \
        mount /dev/ubdb $M && cat $M/hello && echo written-in-ruml > $M/new && echo mounted; \
        read x; umount $M && echo unmounted; \
        while [ -b /dev/ubdb ]; do sleep 0.1; done; echo ubdb-gone; \
        read y; echo on-tty3 > /dev/tty3 && echo wrote-tty3; \
        exec sleep 1000";
    let ubd0 = format!("ubd0={}", root_img.display());
    let mut i = start_home_piped("hotplug", &[&ubd0, "--", "/bin/sh", "-c", script]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !home_socket(&i).exists() || !uml_mconsole(&i, &["proc", "1/stat"]).starts_with("OK") {
        assert!(
            Instant::now() < deadline,
            "no socket or no init; stderr:\n{}",
            i.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    i.wait_stdout("the guest to start", 30, |s| s.contains("ready"));
    let (home, umid) = (i.dir.path().to_path_buf(), i.umid.clone());
    let mc = |args: &[&str]| uml_mconsole_at(&home, &umid, args);

    // Queries.
    let r = mc(&["config", "ubd0"]);
    assert_eq!(reply_line(&r), format!("OK {}", root_img.display()), "{r}");
    let r = mc(&["config", "ubd1"]);
    assert_eq!(reply_line(&r), "OK", "an unconfigured disk is empty: {r}");

    // Malformed or impossible configurations: an error, nothing changes.
    for bad in [
        "ubd1=/nonexistent/disk.img",
        "ubd99=/x",
        &format!("ubd1q={img_s}"),
        &format!("ubd={img_s}"),
        "frob1=x",
        "con3=bogus",
        "con0=pts",
        "con99=pts",
    ] {
        let r = mc(&["config", bad]);
        assert!(reply_line(&r).starts_with("ERR"), "config {bad}: {r}");
    }
    for bad in ["ubd1", "ubd99", "ubdzz", "frob1"] {
        let r = mc(&["remove", bad]);
        assert!(reply_line(&r).starts_with("ERR"), "remove {bad}: {r}");
    }
    assert_eq!(reply_line(&mc(&["config", "ubd1"])), "OK");
    let parts = mc(&["proc", "partitions"]);
    assert!(parts.contains("ubda") && !parts.contains("ubdb"), "{parts}");
    assert!(!i.stdout().contains("mounted"));

    // Hot-plug: /dev/ubdb appears in the running guest, which mounts it.
    let r = mc(&["config", &format!("ubd1={img_s}")]);
    assert_eq!(reply_line(&r), "OK", "{r}");
    i.wait_stdout("the guest to mount the new disk", 30, |s| {
        s.contains("hello-from-the-plugged-disk") && s.contains("mounted")
    });
    let r = mc(&["config", "ubd1"]);
    assert_eq!(reply_line(&r), format!("OK {img_s}"), "{r}");
    let r = mc(&["config", &format!("ubd1={img_s}")]);
    assert!(reply_line(&r).contains("already configured"), "{r}");

    // Mounted: remove is refused and the disk stays.
    let r = mc(&["remove", "ubd1"]);
    assert!(
        reply_line(&r).starts_with("ERR Device is currently open"),
        "{r}"
    );
    assert!(mc(&["proc", "1/mounts"]).contains("/dev/ubdb"));

    // Unmounted: remove unplugs it; the guest's write is in the host file.
    use std::io::Write;
    i.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    i.wait_stdout("the guest to unmount", 30, |s| s.contains("unmounted"));
    let r = mc(&["remove", "ubd1"]);
    assert_eq!(reply_line(&r), "OK", "{r}");
    i.wait_stdout("/dev/ubdb to go away", 30, |s| s.contains("ubdb-gone"));
    assert!(!mc(&["proc", "partitions"]).contains("ubdb"));
    let r = mc(&["remove", "ubd1"]);
    assert_eq!(reply_line(&r), "ERR Device doesn't exist", "{r}");
    assert_eq!(reply_line(&mc(&["config", "ubd1"])), "OK");
    if host_has("debugfs") {
        let out = Command::new("debugfs")
            .args(["-R", "cat /new"])
            .arg(&img)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("written-in-ruml"), "debugfs: {text}");
    }

    // ruml ctl, the same verbs (exit status 1 and the text on errors).
    let sock = home_socket(&i);
    let (st, out, err) = ctl_socket(&sock, &["config", &format!("ubd2={img_s}")]);
    assert_eq!(st, 0, "{out}{err}");
    let (st, out, _) = ctl_socket(&sock, &["config", "ubd2"]);
    assert_eq!((st, out.trim_end()), (0, img_s));
    assert!(mc(&["proc", "partitions"]).contains("ubdc"));
    let (st, _, err) = ctl_socket(&sock, &["config", "ubd2=/nonexistent/x"]);
    assert_eq!(st, 1);
    assert!(err.contains("already configured"), "{err}");
    let (st, _, err) = ctl_socket(&sock, &["config", "ubd3=/nonexistent/x"]);
    assert_eq!(st, 1);
    assert!(err.contains("cannot open"), "{err}");
    let (st, out, err) = ctl_socket(&sock, &["remove", "ubd2"]);
    assert_eq!(st, 0, "{out}{err}");
    let (st, _, err) = ctl_socket(&sock, &["remove", "ubd2"]);
    assert_eq!(st, 1);
    assert!(err.contains("Device doesn't exist"), "{err}");

    // Consoles: con0 is the host's descriptors; con3 has no channel
    // (opening /dev/tty3 would give ENODEV) until `config con3=pts`.
    assert_eq!(reply_line(&mc(&["config", "con0"])), "OK fd:0,fd:1");
    assert_eq!(reply_line(&mc(&["config", "con3"])), "OK none");
    assert_eq!(reply_line(&mc(&["config", "con3=pts"])), "OK");
    let (st, out, _) = ctl_socket(&sock, &["config", "con3"]);
    assert_eq!((st, out.trim_end()), (0, "pts"));
    i.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    i.wait_stdout("the guest to write to /dev/tty3", 30, |s| {
        s.contains("wrote-tty3")
    });
    let r = mc(&["config", "con3"]);
    let pts = reply_line(&r)
        .strip_prefix("OK pts:")
        .unwrap_or_else(|| panic!("an open host pty is named: {r}"))
        .to_string();
    assert!(pts.starts_with("/dev/pts/"), "{r}");
    // What the guest wrote waits in the host pty.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&pts)
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&got).contains("on-tty3") {
        assert!(
            Instant::now() < deadline,
            "{pts} gave {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut b = [0u8; 256];
        match std::io::Read::read(&mut &f, &mut b) {
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    // Open: its channel can no longer change.
    let r = mc(&["config", "con3=null"]);
    assert!(
        reply_line(&r).starts_with("ERR Device is already open"),
        "{r}"
    );
    let r = mc(&["remove", "con3"]);
    assert!(reply_line(&r).starts_with("ERR"), "{r}");
    assert!(reply_line(&mc(&["config", "con3"])).starts_with("OK pts:"));
    // A console the guest never opened can be set and taken away.
    assert_eq!(reply_line(&mc(&["config", "con4=null"])), "OK");
    assert_eq!(reply_line(&mc(&["config", "con4"])), "OK null");
    assert_eq!(reply_line(&mc(&["remove", "con4"])), "OK");
    assert_eq!(reply_line(&mc(&["config", "con4"])), "OK none");

    let h = mc(&["halt"]);
    assert!(h.contains("OK"), "{h}");
    assert_eq!(i.wait_exit(), 0, "{}", i.stderr());
}
