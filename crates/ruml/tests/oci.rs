//! `ruml oci` / `ruml-oci` as an OCI runtime, driven the way runc's users
//! (conmon, containerd's shim) drive a runtime: bundles written by the
//! test with a busybox root, create → state → start → state → kill →
//! state → delete, each JSON state checked, and nothing left behind.
//! The test process is a child subreaper, as conmon and the shim are, so
//! it reaps the container's process and sees its exit status.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{children, proc_stat, ruml_bin, still_running, ProcStat, TempDir};

/// Generous budget for anything to happen on a busy machine.
const BUDGET: Duration = Duration::from_secs(120);

/// A runtime root, a bundle with a busybox root, and the `ruml-oci` link.
struct Oci {
    dir: TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Oci {
    fn new(tag: &str) -> Oci {
        let dir = TempDir::new(tag);
        std::os::unix::fs::symlink(ruml_bin(), dir.path().join("ruml-oci")).expect("link ruml-oci");
        std::fs::create_dir(dir.path().join("root")).expect("runtime root");
        // SAFETY: plain prctl; the test process becomes a subreaper so the
        // container process (orphaned when `create` exits) is our child.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
        Oci {
            dir,
            ids: Default::default(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Writes a bundle `name` with a busybox root and `config` as its
    /// config.json (unless None); returns its path.
    fn bundle(&self, name: &str, config: Option<&str>) -> PathBuf {
        let b = self.dir.path().join(name);
        let rootfs = b.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "shared"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        let bb = Path::new("/bin/busybox");
        assert!(
            bb.exists(),
            "/bin/busybox is missing: install busybox-static (Debian's package, in .ci/run)"
        );
        std::fs::copy(bb, rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "echo", "cat", "sleep", "id", "pwd", "hostname", "ls", "test", "touch", "wget",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("applet link");
        }
        if let Some(c) = config {
            std::fs::write(b.join("config.json"), c).expect("config.json");
        }
        b
    }

    /// Runs `ruml-oci --root ROOT ARGS` with stdout/stderr in files (a
    /// container's process inherits them and may outlive the command).
    fn run(&self, args: &[&str], tag: &str) -> Run {
        let out = self.dir.path().join(format!("{tag}.out"));
        let err = self.dir.path().join(format!("{tag}.err"));
        let mut child = Command::new(self.dir.path().join("ruml-oci"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(&err).expect("err file"))
            .spawn()
            .expect("start ruml-oci");
        let deadline = Instant::now() + BUDGET;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("TIMEOUT: ruml-oci {args:?} did not finish");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Run {
            status,
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args, "cmd");
        assert!(
            r.status.success(),
            "ruml-oci {args:?} failed: {}\nstderr:\n{}",
            r.status,
            r.stderr
        );
        r
    }

    fn create(&self, id: &str, bundle: &Path) -> i32 {
        self.ids.borrow_mut().push(id.to_string());
        let pid_file = self.dir.path().join(format!("{id}.pid"));
        let r = self.run(
            &[
                "create",
                "--bundle",
                bundle.to_str().unwrap(),
                "--pid-file",
                pid_file.to_str().unwrap(),
                id,
            ],
            id,
        );
        assert!(r.status.success(), "create {id} failed: {}", r.stderr);
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid in pid file");
        pid
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let r = self.ok(&["state", id]);
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", r.stdout))
    }

    /// What the container's process wrote to stdout (create's stdout).
    fn output(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{id}.out"))).unwrap_or_default()
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id], "cleanup");
        }
    }
}

/// Reaps the container process `pid` (we are its subreaper), as conmon does.
fn reap(pid: i32) -> i32 {
    let deadline = Instant::now() + BUDGET;
    loop {
        let mut st = 0;
        // SAFETY: waitpid on one pid, WNOHANG.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                128 + libc::WTERMSIG(st)
            };
        }
        assert!(
            r == 0,
            "waitpid({pid}): {}",
            std::io::Error::last_os_error()
        );
        assert!(
            Instant::now() < deadline,
            "container process {pid} did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + BUDGET;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config.json running `args`; `mounts` and `extra` are added to the
/// mounts array and the top-level object (each starting with a comma).
fn config(args: &[&str], mounts: &str, extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"{{"ociVersion":"1.0.2",
  "process":{{"terminal":false,"user":{{"uid":0,"gid":0}},"args":[{}],
    "env":["PATH=/bin","FOO=bar"],"cwd":"/"}},
  "root":{{"path":"rootfs","readonly":false}},
  "hostname":"oci-test",
  "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},
    {{"destination":"/dev","type":"tmpfs","source":"tmpfs"}},
    {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue"}}{mounts}],
  "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}},{{"type":"network"}}]}},
  "x-unknown-field":{{"ignored":true}}{extra}}}"#,
        args.join(",")
    )
}

/// A config whose process announces itself in /shared/started (the host
/// directory `shared` bound in), waits for /shared/go, then runs `then`.
fn waiting_config(shared: &Path, then: &str) -> String {
    let script = format!(
        "echo started > /shared/started; while ! test -e /shared/go; do sleep 0.05; done; {then}"
    );
    config(
        &["sh", "-c", &script],
        &format!(
            r#",{{"destination":"/shared","type":"bind","source":"{}","options":["rbind","rw"]}}"#,
            shared.display()
        ),
        r#","annotations":{"ruml.mem":"256M","org.example":"x"}"#,
    )
}

fn assert_gone(oci: &Oci, id: &str, stubs: &[ProcStat]) {
    assert!(
        !oci.root().join(id).exists(),
        "state directory of {id} left behind"
    );
    for s in stubs {
        wait_for(&format!("host process {} of {id} to end", s.pid), || {
            !still_running(s)
        });
    }
    let r = oci.run(&["state", id], "gone");
    assert!(
        !r.status.success(),
        "state of a deleted container succeeded"
    );
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn lifecycle_create_start_state_exit_delete() {
    let oci = Oci::new("oci-life");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle(
        "b",
        Some(&waiting_config(
            &shared,
            "echo out $FOO $(hostname) $(pwd) $(id -u); exit 7",
        )),
    );
    let pid = oci.create("life", &b);
    let st = oci.state("life");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    assert_eq!(st["id"], "life");
    assert_eq!(st["bundle"], b.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(st["annotations"]["org.example"], "x");
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    let inst = proc_stat(pid).expect("the container's host process exists after create");
    // Held until start: the container's process has not run.
    assert!(
        !shared.join("started").exists(),
        "the process ran before start"
    );
    let list: serde_json::Value =
        serde_json::from_str(&oci.ok(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(list[0]["id"], "life", "{list}");
    assert_eq!(list[0]["status"], "created", "{list}");

    oci.ok(&["start", "life"]);
    wait_for("the container to start", || shared.join("started").exists());
    let st = oci.state("life");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    let stubs = children(pid);
    assert!(!stubs.is_empty(), "a running container has stub processes");
    let ps: Vec<i32> =
        serde_json::from_str(&oci.ok(&["ps", "--format", "json", "life"]).stdout).unwrap();
    assert!(ps.contains(&pid), "ps {ps:?} lacks {pid}");
    let again = oci.run(&["start", "life"], "again");
    assert!(!again.status.success(), "a second start succeeded");
    let del = oci.run(&["delete", "life"], "del");
    assert!(
        !del.status.success(),
        "delete of a running container succeeded"
    );
    assert!(del.stderr.contains("running"), "{}", del.stderr);

    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(reap(pid), 7, "the container's exit status");
    let st = oci.state("life");
    assert_eq!(st["status"], "stopped", "{st}");
    assert!(
        st.get("pid").is_none(),
        "a stopped container has no pid: {st}"
    );
    assert_eq!(oci.output("life"), "out bar oci-test / 0\n");
    oci.ok(&["delete", "life"]);
    assert_gone(&oci, "life", &stubs);
    assert!(!still_running(&inst));
}

/// Checks the whole runtime-spec state of `id`: its status, the host pid
/// while the container's process lives (none once stopped), the id, the
/// bundle and the version.
fn assert_state(oci: &Oci, id: &str, bundle: &Path, status: &str, pid: Option<i32>) {
    let st = oci.state(id);
    assert_eq!(st["status"], status, "{st}");
    assert_eq!(st["id"], id, "{st}");
    assert_eq!(
        st["bundle"],
        bundle.canonicalize().unwrap().to_str().unwrap(),
        "{st}"
    );
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st}"
    );
    match pid {
        Some(p) => assert_eq!(st["pid"], p, "{st}"),
        None => assert!(
            st.get("pid").is_none(),
            "a stopped container has no pid: {st}"
        ),
    }
}

/// The runc user's sequence with kill: create → state → start → state →
/// kill → state → delete, each state checked whole, and nothing left
/// behind (no instance, no stub process, no state directory).
#[test]
fn kill_forwards_the_signal_to_the_guest() {
    let oci = Oci::new("oci-kill");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("go"), "").unwrap();
    let b = oci.bundle(
        "b",
        Some(&waiting_config(
            &shared,
            "trap 'echo got TERM; exit 5' TERM; echo > /shared/trapped; while :; do sleep 0.05; done",
        )),
    );
    let pid = oci.create("trap", &b);
    let inst = proc_stat(pid).expect("the container's host process after create");
    assert_state(&oci, "trap", &b, "created", Some(pid));
    oci.ok(&["start", "trap"]);
    wait_for("the trap to be set", || shared.join("trapped").exists());
    assert_state(&oci, "trap", &b, "running", Some(pid));
    let stubs = children(pid);
    assert!(!stubs.is_empty(), "a running container has stub processes");
    oci.ok(&["kill", "trap", "TERM"]);
    assert_eq!(reap(pid), 5, "the guest's TERM handler ran and exited 5");
    assert_eq!(oci.output("trap"), "got TERM\n");
    assert_state(&oci, "trap", &b, "stopped", None);
    let r = oci.run(&["kill", "trap", "TERM"], "again");
    assert!(
        !r.status.success() && r.stderr.contains("not running"),
        "kill of a stopped container: {}",
        r.stderr
    );
    oci.ok(&["delete", "trap"]);
    assert_gone(&oci, "trap", &stubs);
    assert!(!still_running(&inst), "the instance outlived delete");
    assert_eq!(oci.ok(&["list", "--quiet"]).stdout, "", "list after delete");
}

#[test]
fn kill_sigkill_running_and_created() {
    let oci = Oci::new("oci-kill9");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle("b", Some(&waiting_config(&shared, "sleep 1000")));
    // Running: SIGKILL ends the whole instance.
    let pid = oci.create("run9", &b);
    oci.ok(&["start", "run9"]);
    wait_for("the container to start", || shared.join("started").exists());
    let stubs = children(pid);
    oci.ok(&["kill", "run9", "9"]);
    assert_eq!(reap(pid), 128 + 9);
    assert_eq!(oci.state("run9")["status"], "stopped");
    oci.ok(&["delete", "run9"]);
    assert_gone(&oci, "run9", &stubs);
    // Created, never started: the held process ends, nothing ran.
    std::fs::remove_file(shared.join("started")).unwrap();
    let pid = oci.create("new9", &b);
    oci.ok(&["kill", "new9", "SIGKILL"]);
    assert_eq!(reap(pid), 128 + 9);
    assert_eq!(oci.state("new9")["status"], "stopped");
    let r = oci.run(&["kill", "new9", "KILL"], "k2");
    assert!(
        !r.status.success() && r.stderr.contains("not running"),
        "{}",
        r.stderr
    );
    assert!(
        !shared.join("started").exists(),
        "a killed created container ran"
    );
    oci.ok(&["delete", "new9"]);
    assert_gone(&oci, "new9", &[]);
}

#[test]
fn delete_force_ends_a_running_container() {
    let oci = Oci::new("oci-force");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle("b", Some(&waiting_config(&shared, "sleep 1000")));
    let pid = oci.create("force", &b);
    oci.ok(&["start", "force"]);
    wait_for("the container to start", || shared.join("started").exists());
    let stubs = children(pid);
    assert!(!stubs.is_empty());
    oci.ok(&["delete", "--force", "force"]);
    assert_eq!(reap(pid), 128 + 9);
    assert_gone(&oci, "force", &stubs);
}

#[test]
fn bad_bundles_are_refused_with_nothing_left() {
    let oci = Oci::new("oci-bad");
    let good = config(&["sh", "-c", "exit 0"], "", "");
    let missing = oci.dir.path().join("no-such-dir");
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("noconfig", None, "cannot read"),
        ("notjson", Some("{ not json".into()), "bad"),
        (
            "argsstring",
            Some(good.replace(r#""args":["sh","-c","exit 0"]"#, r#""args":"sh""#)),
            "invalid type",
        ),
        (
            "uidstring",
            Some(good.replace(r#""uid":0"#, r#""uid":"root""#)),
            "invalid type",
        ),
        (
            "noprocess",
            Some(good.replace(r#""process""#, r#""processes""#)),
            "no \"process\"",
        ),
        (
            "emptyargs",
            Some(good.replace(r#""args":["sh","-c","exit 0"]"#, r#""args":[]"#)),
            "nothing to run",
        ),
        (
            "oldversion",
            Some(good.replace(r#""ociVersion":"1.0.2""#, r#""ociVersion":"0.9""#)),
            "not supported",
        ),
        (
            "softabovehard",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":2048,"hard":1024}]"#,
            )),
            "above its hard limit",
        ),
        (
            "hugenofile",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":1024,"hard":1099511627776}]"#,
            )),
            "RLIMIT_NOFILE",
        ),
        (
            "negativerlimit",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_CPU","soft":-1,"hard":10}]"#,
            )),
            "invalid value",
        ),
        (
            "unknownrlimit",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_BOGUS","soft":1,"hard":1}]"#,
            )),
            "unknown type",
        ),
        (
            "duprlimit",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":10},{"type":"RLIMIT_NOFILE","soft":20,"hard":20}]"#,
            )),
            "given twice",
        ),
        (
            "rlimitstring",
            Some(good.replace(
                r#""cwd":"/""#,
                r#""cwd":"/","rlimits":[{"type":"RLIMIT_CORE","soft":"lots","hard":1}]"#,
            )),
            "invalid type",
        ),
        (
            "mountsnotarray",
            Some(config(&["sh"], "", "").replace(r#""mounts":["#, r#""mounts":{"x":["#).replace(r#"}],"#, r#"}]},"#)),
            "invalid type",
        ),
        (
            "relativehook",
            Some(config(&["sh"], "", r#","hooks":{"prestart":[{"path":"true"}]}"#)),
            "must be absolute",
        ),
        (
            "zerotimeout",
            Some(config(&["sh"], "", r#","hooks":{"poststop":[{"path":"/bin/true","timeout":0}]}"#)),
            "greater than zero",
        ),
        (
            "bindmissing",
            Some(config(
                &["sh"],
                &format!(
                    r#",{{"destination":"/x","type":"bind","source":"{}","options":["rbind"]}}"#,
                    missing.display()
                ),
                "",
            )),
            "No such file",
        ),
        (
            "dotdot",
            Some(config(
                &["sh"],
                r#",{"destination":"/../../etc","type":"tmpfs","source":"tmpfs"}"#,
                "",
            )),
            "must not contain",
        ),
        (
            "relativedest",
            Some(config(&["sh"], r#",{"destination":"etc","type":"tmpfs"}"#, "")),
            "absolute",
        ),
        (
            "nfs",
            Some(config(
                &["sh"],
                r#",{"destination":"/mnt","type":"nfs","source":"server:/x"}"#,
                "",
            )),
            "is not supported",
        ),
        (
            "norootfs",
            Some(good.replace(r#""path":"rootfs""#, r#""path":"nowhere""#)),
            "not a directory",
        ),
        (
            "badmem",
            Some(config(&["sh"], "", r#","annotations":{"ruml.mem":"1K"}"#)),
            "ruml.mem",
        ),
        (
            "unknownruml",
            Some(config(&["sh"], "", r#","annotations":{"ruml.bogus":"1"}"#)),
            "unknown ruml parameter",
        ),
        (
            "joinns",
            Some(good.replace(
                r#"{"type":"network"}"#,
                r#"{"type":"network"},{"type":"ipc","path":"/proc/1/ns/ipc"}"#,
            )),
            "not supported",
        ),
    ];
    // With ruml.ignore-namespace-paths=true the same bundle is accepted.
    // (A network namespace by path is joined: see the network tests.)
    let joins = good
        .replace(
            r#"{"type":"network"}"#,
            r#"{"type":"network"},{"type":"ipc","path":"/proc/1/ns/ipc"}"#,
        )
        .replace(
            r#""hostname""#,
            r#""annotations":{"ruml.ignore-namespace-paths":"true"},"hostname""#,
        );
    let jb = oci.bundle("joins-ok", Some(&joins));
    let jpid = oci.create("joins-ok", &jb);
    oci.ok(&["delete", "--force", "joins-ok"]);
    assert_eq!(reap(jpid), 128 + 9);
    for (name, cfg, want) in cases {
        let b = oci.bundle(name, cfg.as_deref());
        let r = oci.run(&["create", "--bundle", b.to_str().unwrap(), name], name);
        assert!(!r.status.success(), "{name}: create succeeded");
        assert_eq!(r.status.code(), Some(1), "{name}: {}", r.status);
        assert!(
            r.stderr.contains(want),
            "{name}: stderr lacks {want:?}:\n{}",
            r.stderr
        );
        assert!(
            !oci.root().join(name).exists(),
            "{name}: state left on disk"
        );
    }
    let list = oci.ok(&["list", "--quiet"]);
    assert_eq!(list.stdout, "", "containers left after bad bundles");
    // Unknown commands and ids are clear errors too.
    let r = oci.run(&["state", "nothere"], "st");
    assert!(
        !r.status.success() && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    let r = oci.run(&["state", "../etc"], "st2");
    assert!(
        !r.status.success() && r.stderr.contains("bad container ID"),
        "{}",
        r.stderr
    );
    let r = oci.run(&["frobnicate"], "fr");
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn duplicate_id_is_refused_and_features_is_json() {
    let oci = Oci::new("oci-dup");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle("b", Some(&waiting_config(&shared, "exit 0")));
    let pid = oci.create("dup", &b);
    let r = oci.run(&["create", "--bundle", b.to_str().unwrap(), "dup"], "dup2");
    assert!(
        !r.status.success() && r.stderr.contains("already exists"),
        "{}",
        r.stderr
    );
    assert_eq!(
        oci.state("dup")["pid"],
        pid,
        "the first container is untouched"
    );
    oci.ok(&["delete", "--force", "dup"]);
    assert_eq!(reap(pid), 128 + 9);
    assert_gone(&oci, "dup", &[]);
    let f: serde_json::Value = serde_json::from_str(&oci.ok(&["features"]).stdout).unwrap();
    assert!(
        f["ociVersionMax"].as_str().unwrap().starts_with("1."),
        "{f}"
    );
}

/// Runs `podman ARGS` with a budget, output in files; None if podman
/// cannot be started at all.
fn podman(dir: &Path, args: &[&str], tag: &str) -> Option<Run> {
    let out = dir.join(format!("podman-{tag}.out"));
    let err = dir.join(format!("podman-{tag}.err"));
    let mut child = Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).ok()?)
        .stderr(std::fs::File::create(&err).ok()?)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + BUDGET;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("TIMEOUT: podman {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some(Run {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    })
}

#[test]
fn podman_runs_containers_in_ruml() {
    let oci = Oci::new("oci-podman");
    let dir = oci.dir.path();
    match podman(
        dir,
        &["info", "--format", "{{.Host.OCIRuntime.Name}}"],
        "info",
    ) {
        None => {
            eprintln!("SKIP podman_runs_containers_in_ruml: podman is not installed (Debian's package podman)");
            return;
        }
        Some(r) if !r.status.success() => {
            eprintln!(
                "SKIP podman_runs_containers_in_ruml: podman cannot run here: {}",
                r.stderr.trim()
            );
            return;
        }
        Some(_) => {}
    }
    let b = oci.bundle("b", None);
    let rootfs = b.join("rootfs");
    let runtime = dir.join("ruml-oci");
    let (rt, rf) = (runtime.to_str().unwrap(), rootfs.to_str().unwrap());
    let name = format!("ruml-oci-test-{}", std::process::id());
    /// Removes the named container however the test ends.
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = Command::new("podman")
                .args(["rm", "-f", "-t", "0", &self.0])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let _rm = Rm(name.clone());
    let base = ["--runtime", rt, "--network", "none", "--rootfs", rf];
    // Output and exit status, as with crun.
    let mut args = vec!["run", "--rm"];
    args.extend(base);
    args.extend([
        "/bin/sh",
        "-c",
        "echo hi from ruml; cat /etc/hostname > /dev/null; exit 3",
    ]);
    let r = podman(dir, &args, "run").unwrap();
    assert_eq!(
        r.status.code(),
        Some(3),
        "podman run: {}\n{}",
        r.status,
        r.stderr
    );
    assert_eq!(r.stdout, "hi from ruml\n", "stderr:\n{}", r.stderr);
    // Detached, shown by ps, stopped (SIGTERM reaches the guest's trap), removed.
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend(base);
    args.extend([
        "/bin/sh",
        "-c",
        "trap 'echo got TERM; exit 5' TERM; echo up; while :; do sleep 0.05; done",
    ]);
    let r = podman(dir, &args, "rund").unwrap();
    assert!(r.status.success(), "podman run -d: {}", r.stderr);
    wait_for("the container's first line", || {
        podman(dir, &["logs", &name], "logs").is_some_and(|r| r.stdout.contains("up"))
    });
    let r = podman(dir, &["ps", "--format", "{{.Names}} {{.Status}}"], "ps").unwrap();
    assert!(
        r.stdout.contains(&format!("{name} Up")),
        "podman ps: {}",
        r.stdout
    );
    // podman exec into the running container.
    let r = podman(
        dir,
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "echo exec in $(hostname); exit 6",
        ],
        "exec",
    )
    .unwrap();
    assert_eq!(r.status.code(), Some(6), "podman exec: {}", r.stderr);
    assert!(
        r.stdout.starts_with("exec in "),
        "podman exec: {}",
        r.stdout
    );
    // The runtime's state: podman runs runtimes with their default root,
    // /run/ruml-oci here, the ruml-oci name's.
    let r = podman(dir, &["inspect", "--format", "{{.Id}}", &name], "id").unwrap();
    let state_dir = Path::new("/run/ruml-oci").join(r.stdout.trim());
    assert!(
        state_dir.join("state.json").exists(),
        "no state at {}",
        state_dir.display()
    );
    let r = podman(dir, &["stop", "-t", "60", &name], "stop").unwrap();
    assert!(r.status.success(), "podman stop: {}", r.stderr);
    let filter = format!("name=^{name}$");
    let ps_a = |tag: &str| {
        podman(
            dir,
            &[
                "ps",
                "-a",
                "--filter",
                &filter,
                "--format",
                "{{.Names}} {{.Status}}",
            ],
            tag,
        )
        .unwrap()
        .stdout
    };
    let shown = ps_a("ps-stopped");
    assert!(
        shown.starts_with(&format!("{name} Exited (5)")),
        "podman ps -a after stop: {shown}"
    );
    let r = podman(
        dir,
        &["inspect", "--format", "{{.State.ExitCode}}", &name],
        "inspect",
    )
    .unwrap();
    assert_eq!(r.stdout.trim(), "5", "exit code after stop: {}", r.stderr);
    let r = podman(dir, &["logs", &name], "logs2").unwrap();
    assert_eq!(r.stdout, "up\ngot TERM\n");
    let r = podman(dir, &["rm", &name], "rm").unwrap();
    assert!(r.status.success(), "podman rm: {}", r.stderr);
    assert_eq!(ps_a("ps-removed"), "", "podman ps -a after rm");
    assert!(
        !state_dir.exists(),
        "the runtime's state {} is left after podman rm",
        state_dir.display()
    );
}

/// Receives one descriptor sent with SCM_RIGHTS on a connection to `l`.
fn receive_fd(l: &std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = l.accept().expect("accept on the console socket");
    let mut name = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr points at our buffers, within their sizes.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, 0);
        assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS,
            "no descriptor sent"
        );
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

#[test]
fn terminal_goes_over_the_console_socket() {
    use std::io::{Read, Write};
    let oci = Oci::new("oci-tty");
    let cfg = config(
        &[
            "sh",
            "-c",
            "test -t 0 && echo tty yes; read line; echo got $line; exit 6",
        ],
        "",
        "",
    )
    .replace(
        r#""terminal":false"#,
        r#""terminal":true,"consoleSize":{"height":30,"width":100}"#,
    );
    let b = oci.bundle("b", Some(&cfg));
    // Without a console socket a terminal container is refused.
    let r = oci.run(
        &["create", "--bundle", b.to_str().unwrap(), "nosock"],
        "nosock",
    );
    assert!(
        !r.status.success() && r.stderr.contains("--console-socket"),
        "{}",
        r.stderr
    );
    let sock = oci.dir.path().join("console.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind console socket");
    let t = std::thread::spawn(move || receive_fd(&l));
    oci.ids.borrow_mut().push("tty".into());
    let pid_file = oci.dir.path().join("tty.pid");
    let r = oci.run(
        &[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "tty",
        ],
        "tty",
    );
    assert!(r.status.success(), "create: {}", r.stderr);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let master = std::fs::File::from(t.join().expect("console socket thread"));
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ into a winsize.
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&master),
            libc::TIOCGWINSZ,
            &mut ws,
        )
    };
    assert_eq!((ws.ws_row, ws.ws_col), (30, 100), "consoleSize");
    oci.ok(&["start", "tty"]);
    let mut w = master.try_clone().unwrap();
    w.write_all(b"hello\n").unwrap();
    // Read the terminal until the process ends (EIO once the slave closes).
    let reader = std::thread::spawn(move || {
        let mut m = master;
        let mut all = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    assert_eq!(reap(pid), 6);
    let text = reader.join().unwrap();
    assert!(text.contains("tty yes"), "{text:?}");
    assert!(text.contains("got hello"), "{text:?}");
    oci.ok(&["delete", "tty"]);
    assert_gone(&oci, "tty", &[]);
}

#[test]
fn hooks_run_on_the_host_with_the_state() {
    let oci = Oci::new("oci-hooks");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("go"), "").unwrap();
    let out = oci.dir.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let hook = |name: &str| {
        format!(
            r#"[{{"path":"/bin/sh","args":["sh","-c","cat > {}/{name}.json; echo >> {}/{name}.json; echo $HOOKVAR >> {}/{name}.json"],"env":["HOOKVAR=v{name}"],"timeout":60}}]"#,
            out.display(),
            out.display(),
            out.display()
        )
    };
    let cfg = waiting_config(&shared, "exit 0").replace(
        r#""annotations""#,
        &format!(
            r#""hooks":{{"prestart":{},"createRuntime":{},"poststart":{},"poststop":{}}},"annotations""#,
            hook("prestart"),
            hook("createRuntime"),
            hook("poststart"),
            hook("poststop")
        ),
    );
    let b = oci.bundle("b", Some(&cfg));
    let pid = oci.create("hooks", &b);
    let read = |name: &str| -> (serde_json::Value, String) {
        let text = std::fs::read_to_string(out.join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("hook {name} did not run: {e}"));
        let (json, var) = text.split_once('\n').unwrap_or((&text, ""));
        (
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}: {json}")),
            var.trim().to_string(),
        )
    };
    let (st, var) = read("createRuntime");
    assert_eq!(
        (st["id"].as_str(), st["status"].as_str(), st["pid"].as_i64()),
        (Some("hooks"), Some("created"), Some(pid as i64))
    );
    assert_eq!(var, "vcreateRuntime");
    let (st, var) = read("prestart");
    assert_eq!(
        (st["id"].as_str(), st["status"].as_str(), st["pid"].as_i64()),
        (Some("hooks"), Some("created"), Some(pid as i64))
    );
    assert_eq!(var, "vprestart");
    assert!(!out.join("poststart.json").exists());
    oci.ok(&["start", "hooks"]);
    let (st, _) = read("poststart");
    assert_eq!(st["status"], "running");
    assert_eq!(reap(pid), 0);
    assert!(!out.join("poststop.json").exists());
    oci.ok(&["delete", "hooks"]);
    let (st, _) = read("poststop");
    assert_eq!(st["status"], "stopped");
    assert_gone(&oci, "hooks", &[]);
    // A failing createRuntime hook fails create, with nothing left.
    let cfg = waiting_config(&shared, "exit 0").replace(
        r#""annotations""#,
        r#""hooks":{"createRuntime":[{"path":"/bin/false"}]},"annotations""#,
    );
    let b = oci.bundle("bad", Some(&cfg));
    let r = oci.run(
        &["create", "--bundle", b.to_str().unwrap(), "badhook"],
        "badhook",
    );
    assert!(
        !r.status.success() && r.stderr.contains("/bin/false"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("badhook").exists());
    // A hook past its timeout is killed and fails create the same way;
    // the held container process goes too.
    let cfg = waiting_config(&shared, "exit 0").replace(
        r#""annotations""#,
        r#""hooks":{"prestart":[{"path":"/bin/sleep","args":["sleep","1000"],"timeout":1}]},"annotations""#,
    );
    let b = oci.bundle("slow", Some(&cfg));
    let r = oci.run(
        &["create", "--bundle", b.to_str().unwrap(), "slowhook"],
        "slowhook",
    );
    assert!(
        !r.status.success() && r.stderr.contains("timed out"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("slowhook").exists());
    // No process of that create is left (the instance is a fork of it,
    // with its command line, which names this test's own --root: another
    // suite running at the same time has a "slowhook" of its own).
    let root = oci.root().to_string_lossy().into_owned();
    for pid in common::all_pids() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        let live = proc_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X' | 'x'));
        assert!(
            !(live && cmd.contains("slowhook") && cmd.contains(&root)),
            "process {pid} of the failed create is left"
        );
    }
}

#[test]
fn exec_runs_a_process_in_a_running_container() {
    let oci = Oci::new("oci-exec");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle(
        "b",
        Some(&waiting_config(&shared, "echo init done; exit 3")),
    );
    let pid = oci.create("ex", &b);
    // Not running yet: exec is refused.
    let r = oci.run(&["exec", "ex", "sh", "-c", "exit 0"], "early");
    assert!(
        !r.status.success() && r.stderr.contains("not running"),
        "{}",
        r.stderr
    );
    oci.ok(&["start", "ex"]);
    wait_for("the container to start", || shared.join("started").exists());
    // Output, exit status, environment, hostname, pid inside.
    let r = oci.run(
        &[
            "exec",
            "ex",
            "sh",
            "-c",
            "echo in $FOO $(hostname) $$; exit 9",
        ],
        "ex1",
    );
    assert_eq!(r.status.code(), Some(9), "{}", r.stderr);
    let words: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(words[..3], ["in", "bar", "oci-test"], "{}", r.stdout);
    let guest_pid: i32 = words[3].parse().expect("a guest pid");
    assert!(guest_pid > 1, "the exec'd process is not init: {guest_pid}");
    // Options: cwd, env, user; stdin is the caller's.
    let input = oci.dir.path().join("input");
    std::fs::write(&input, "typed line\n").unwrap();
    let out = oci.dir.path().join("ex2.out");
    let st = Command::new(oci.dir.path().join("ruml-oci"))
        .arg("--root")
        .arg(oci.root())
        .args([
            "exec",
            "--cwd",
            "/bin",
            "-e",
            "X=1",
            "--user",
            "5:6",
            "ex",
            "sh",
            "-c",
            "read l; echo got $l $X $(pwd) $(id -u) $(id -g)",
        ])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&out).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "got typed line 1 /bin 5 6\n"
    );
    // --process, as conmon and the shim use it.
    let proc_json = oci.dir.path().join("process.json");
    std::fs::write(
        &proc_json,
        r#"{"terminal":false,"user":{"uid":0,"gid":0},"args":["sh","-c","echo from process $Y; exit 4"],"env":["PATH=/bin","Y=y"],"cwd":"/"}"#,
    )
    .unwrap();
    let r = oci.run(
        &["exec", "--process", proc_json.to_str().unwrap(), "ex"],
        "ex3",
    );
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert_eq!(r.stdout, "from process y\n");
    // --process rlimits are the new process's (runc applies them too);
    // bad ones are refused.
    std::fs::write(
        &proc_json,
        r#"{"user":{"uid":0,"gid":0},"args":["sh","-c","ulimit -Sn; ulimit -Hn"],"env":["PATH=/bin"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":111,"hard":222}]}"#,
    )
    .unwrap();
    let r = oci.run(
        &["exec", "--process", proc_json.to_str().unwrap(), "ex"],
        "exlim",
    );
    assert_eq!(
        (r.status.code(), r.stdout.as_str()),
        (Some(0), "111\n222\n"),
        "{}",
        r.stderr
    );
    std::fs::write(
        &proc_json,
        r#"{"user":{"uid":0,"gid":0},"args":["true"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":9,"hard":8}]}"#,
    )
    .unwrap();
    let r = oci.run(
        &["exec", "--process", proc_json.to_str().unwrap(), "ex"],
        "exbadlim",
    );
    assert!(
        r.status.code() == Some(1) && r.stderr.contains("above its hard limit"),
        "{}",
        r.stderr
    );
    // --detach: the pid file names a host process that ends with the status.
    let pid_file = oci.dir.path().join("exec.pid");
    oci.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "ex",
        "sh",
        "-c",
        "exit 5",
    ]);
    let epid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(reap(epid), 5, "the detached exec's status");
    // A missing program is a clear error.
    let r = oci.run(&["exec", "ex", "/no/such/program"], "ex4");
    assert!(
        !r.status.success() && r.stderr.contains("ENOENT"),
        "{}",
        r.stderr
    );
    // init is untouched by all this.
    assert_eq!(oci.state("ex")["status"], "running");
    let stubs = children(pid);
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(reap(pid), 3);
    assert_eq!(oci.output("ex"), "init done\n");
    oci.ok(&["delete", "ex"]);
    assert_gone(&oci, "ex", &stubs);
}

/// Runs `prog ARGS` with a budget, output in files in `dir`; None if it
/// cannot be started at all.
fn run_tool(dir: &Path, prog: &str, args: &[&str], tag: &str) -> Option<Run> {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}.err"));
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).ok()?)
        .stderr(std::fs::File::create(&err).ok()?)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + BUDGET;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("TIMEOUT: {prog} {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some(Run {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    })
}

/// An OCI image layout tarball of `rootfs` named `name`, built with tar
/// and sha256sum.
fn image_tarball(dir: &Path, rootfs: &Path, name: &str) -> PathBuf {
    let img = dir.join("image");
    let blobs = img.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let sha = |p: &Path| -> (String, u64) {
        let r = run_tool(dir, "sha256sum", &[p.to_str().unwrap()], "sha").expect("sha256sum");
        let d = r
            .stdout
            .split_whitespace()
            .next()
            .expect("a digest")
            .to_string();
        std::fs::copy(p, blobs.join(&d)).unwrap();
        (d, std::fs::metadata(p).unwrap().len())
    };
    let layer = dir.join("layer.tar");
    let r = run_tool(
        dir,
        "tar",
        &[
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            layer.to_str().unwrap(),
            ".",
        ],
        "tar1",
    )
    .expect("tar");
    assert!(r.status.success(), "tar: {}", r.stderr);
    let (l, ls) = sha(&layer);
    let cfg = dir.join("imgconfig.json");
    std::fs::write(&cfg, format!(r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{l}"]}}}}"#)).unwrap();
    let (c, cs) = sha(&cfg);
    let man = dir.join("manifest.json");
    std::fs::write(&man, format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{c}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{l}","size":{ls}}}]}}"#)).unwrap();
    let (m, ms) = sha(&man);
    std::fs::write(img.join("index.json"), format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{m}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}]}}"#)).unwrap();
    std::fs::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let tarball = dir.join("image.tar");
    let r = run_tool(
        dir,
        "tar",
        &[
            "-C",
            img.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
        "tar2",
    )
    .expect("tar");
    assert!(r.status.success(), "tar: {}", r.stderr);
    tarball
}

/// A private containerd (own root, state and socket). On drop (a failed
/// test too) its containers are force-deleted through ruml-oci, the shims
/// serving this daemon's socket are killed, the daemon is stopped, and
/// any snapshot mount it left under its own directory is detached (a
/// daemon killed mid-test does not unmount its containers' rootfs).
struct Containerd {
    child: std::process::Child,
    dir: PathBuf,
    runtime: PathBuf,
    ns: String,
    ids: Vec<String>,
    sock: String,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let root = Path::new("/run/containerd/runc").join(&self.ns);
        for id in &self.ids {
            let _ = Command::new(&self.runtime)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for pid in common::all_pids() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("containerd-shim") && cmd.contains(&self.sock) {
                // SAFETY: kill(2) on a shim of our own daemon.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&root);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        // Deepest first, so nested mounts come off before their parents.
        let mut left: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&self.dir))
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: umount2 of a mount under this test's own directory.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

#[test]
fn containerd_runs_containers_in_ruml() {
    let oci = Oci::new("oci-ctr");
    let dir = oci.dir.path();
    if run_tool(dir, "containerd", &["--version"], "cv").is_none()
        || run_tool(dir, "ctr", &["--version"], "ctrv").is_none()
    {
        eprintln!("SKIP containerd_runs_containers_in_ruml: containerd/ctr are not installed (Debian's package containerd)");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP containerd_runs_containers_in_ruml: containerd needs root");
        return;
    }
    let sock = dir.join("sock");
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n",
            dir.join("croot").display(),
            dir.join("cstate").display(),
            sock.display()
        ),
    )
    .unwrap();
    let ns = format!("ruml-test-{}", std::process::id());
    let (c1, c2) = (
        format!("c1-{}", std::process::id()),
        format!("c2-{}", std::process::id()),
    );
    let _daemon = Containerd {
        child: Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("containerd.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("containerd.err")).unwrap())
            .spawn()
            .expect("start containerd"),
        dir: dir.to_path_buf(),
        runtime: dir.join("ruml-oci"),
        ns: ns.clone(),
        ids: vec![c1.clone(), c2.clone()],
        sock: sock.to_str().unwrap().to_string(),
    };
    let a = sock.to_str().unwrap().to_string();
    // containerd's runc shim keeps runtime state under
    // /run/containerd/runc/NAMESPACE whatever the daemon's own root: a
    // namespace and ids of our own keep concurrent runs apart.
    let ctr = |args: &[&str], tag: &str| {
        let mut v = vec!["-a", a.as_str(), "-n", ns.as_str()];
        v.extend(args);
        run_tool(dir, "ctr", &v, tag).expect("ctr")
    };
    let deadline = Instant::now() + BUDGET;
    while !ctr(&["version"], "ver").status.success() {
        if Instant::now() > deadline {
            eprintln!(
                "SKIP containerd_runs_containers_in_ruml: containerd did not come up here: {}",
                std::fs::read_to_string(dir.join("containerd.err")).unwrap_or_default()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let b = oci.bundle("b", None);
    let image = "docker.io/library/ruml-test:latest";
    let tarball = image_tarball(dir, &b.join("rootfs"), image);
    let r = ctr(&["images", "import", tarball.to_str().unwrap()], "import");
    assert!(r.status.success(), "ctr images import: {}", r.stderr);
    let runtime = dir.join("ruml-oci");
    let rt = runtime.to_str().unwrap();
    let base = [
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        rt,
        image,
    ];
    // Output and exit status.
    let mut args = vec!["run", "--rm"];
    args.extend(base);
    args.extend([c1.as_str(), "/bin/sh", "-c", "echo hi from ctr; exit 3"]);
    let r = ctr(&args, "run");
    assert_eq!(r.stdout, "hi from ctr\n", "ctr run: {}", r.stderr);
    assert_eq!(r.status.code(), Some(3), "ctr run: {}", r.stderr);
    // Detached: task ls, exec, kill (the guest's trap runs), delete.
    let mut args = vec!["run", "-d"];
    args.extend(base);
    args.extend([
        c2.as_str(),
        "/bin/sh",
        "-c",
        "trap 'exit 5' TERM; while :; do sleep 0.05; done",
    ]);
    let r = ctr(&args, "rund");
    assert!(r.status.success(), "ctr run -d: {}", r.stderr);
    let r = ctr(&["task", "ls"], "ls");
    assert!(r.stdout.contains("RUNNING"), "ctr task ls: {}", r.stdout);
    let r = ctr(
        &[
            "task",
            "exec",
            "--exec-id",
            "e1",
            &c2,
            "sh",
            "-c",
            "echo exec ok; exit 2",
        ],
        "exec",
    );
    assert_eq!(
        (r.status.code(), r.stdout.as_str()),
        (Some(2), "exec ok\n"),
        "ctr task exec: {}",
        r.stderr
    );
    let r = ctr(&["task", "kill", &c2], "kill");
    assert!(r.status.success(), "ctr task kill: {}", r.stderr);
    wait_for("the task to stop", || {
        ctr(&["task", "ls"], "ls2").stdout.contains("STOPPED")
    });
    let r = ctr(&["task", "delete", &c2], "delete");
    assert!(r.status.success(), "ctr task delete: {}", r.stderr);
    assert!(
        r.stderr.contains("exit code 5"),
        "exit status of the killed task: {}",
        r.stderr
    );
    let r = ctr(&["container", "delete", &c2], "cdel");
    assert!(r.status.success(), "ctr container delete: {}", r.stderr);
    let r = ctr(&["task", "ls", "-q"], "ls3");
    assert_eq!(r.stdout.trim(), "", "tasks left: {}", r.stdout);
}

#[test]
fn podman_run_it_gives_an_interactive_shell_under_tmux() {
    let oci = Oci::new("oci-podman-it");
    let dir = oci.dir.path();
    match podman(
        dir,
        &["info", "--format", "{{.Host.OCIRuntime.Name}}"],
        "info",
    ) {
        Some(r) if r.status.success() => {}
        _ => {
            eprintln!("SKIP podman_run_it_gives_an_interactive_shell_under_tmux: podman is not installed or cannot run here");
            return;
        }
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!(
            "SKIP podman_run_it_gives_an_interactive_shell_under_tmux: tmux is not installed"
        );
        return;
    }
    let b = oci.bundle("b", None);
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             podman run -it --rm --runtime {rt} --network none -e 'PS1=RUML> ' --rootfs {rf} /bin/sh\n\
             echo \"podman exited $?\"\n\
             exec sleep 600\n",
            rt = dir.join("ruml-oci").display(),
            rf = b.join("rootfs").display()
        ),
    )
    .unwrap();
    let t = Tmux::start(
        "ruml-oci-test",
        100,
        30,
        &format!("sh {}", script.display()),
    );
    t.wait("the shell's prompt", BUDGET.as_secs(), |p| {
        p.contains("RUML>")
    });
    t.keys(&["echo hi$((40+2)); stty size", "Enter"]);
    t.wait(
        "echo's output and the terminal size",
        BUDGET.as_secs(),
        |p| {
            p.lines().any(|l| l.trim_end() == "hi42") && p.lines().any(|l| l.trim_end() == "30 100")
        },
    );
    // ^C reaches the foreground job through the guest's line discipline.
    t.keys(&["sleep 100; echo not-interrupted", "Enter"]);
    t.wait("sleep's command line", BUDGET.as_secs(), |p| {
        p.contains("RUML> sleep 100")
    });
    let deadline = Instant::now() + BUDGET;
    loop {
        t.keys(&["C-c"]);
        std::thread::sleep(Duration::from_millis(500));
        let p = t.pane();
        let after = p.split("RUML> sleep 100").nth(1).unwrap_or("");
        if after.contains("RUML>") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "^C did not interrupt sleep:\n{p}"
        );
    }
    t.keys(&["exit 4", "Enter"]);
    let p = t.wait("podman to exit", BUDGET.as_secs(), |p| {
        p.contains("podman exited")
    });
    assert!(p.contains("podman exited 4"), "{p}");
}

#[test]
fn masked_and_readonly_paths_apply_inside() {
    let oci = Oci::new("oci-mask");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("go"), "").unwrap();
    let b = oci.bundle("b", None);
    let rootfs = b.join("rootfs");
    std::fs::create_dir_all(rootfs.join("secret/dir")).unwrap();
    std::fs::write(rootfs.join("secret/dir/key"), "hidden").unwrap();
    std::fs::write(rootfs.join("secret/file"), "hidden too").unwrap();
    std::fs::create_dir_all(rootfs.join("ro")).unwrap();
    std::fs::write(rootfs.join("ro/f"), "ro").unwrap();
    let cfg = waiting_config(
        &shared,
        "ls -A /secret/dir; cat /secret/file; echo; touch /secret/dir/x 2>/dev/null || echo masked-ro; \
         cat /ro/f; echo; echo w > /ro/f 2>/dev/null || echo ro-ro; touch /tmp/w && echo tmp-rw; exit 0",
    )
    .replace(
        r#""linux":{"#,
        r#""linux":{"maskedPaths":["/secret/dir","/secret/file","/proc/kcore"],"readonlyPaths":["/ro","/proc/nothing"],"#,
    );
    std::fs::write(b.join("config.json"), cfg).unwrap();
    let pid = oci.create("mask", &b);
    oci.ok(&["start", "mask"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(oci.output("mask"), "\nmasked-ro\nro\nro-ro\ntmp-rw\n");
    oci.ok(&["delete", "mask"]);
    assert_gone(&oci, "mask", &[]);
}

#[test]
fn pause_freezes_the_guest_and_resume_thaws_it() {
    let oci = Oci::new("oci-pause");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("go"), "").unwrap();
    let b = oci.bundle(
        "b",
        Some(&waiting_config(
            &shared,
            "i=0; while :; do i=$((i+1)); echo $i > /shared/count.new; mv /shared/count.new /shared/count; sleep 0.02; done",
        )),
    );
    let count = || -> u64 {
        std::fs::read_to_string(shared.join("count"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let pid = oci.create("p", &b);
    let r = oci.run(&["pause", "p"], "early");
    assert!(
        !r.status.success() && r.stderr.contains("not running"),
        "{}",
        r.stderr
    );
    oci.ok(&["start", "p"]);
    wait_for("the counter to run", || count() >= 3);
    oci.ok(&["pause", "p"]);
    assert_eq!(oci.state("p")["status"], "paused");
    // Frozen: at most a step already under way completes; then nothing.
    let c0 = count();
    let mut seen = vec![c0];
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        let c = count();
        if seen.last() != Some(&c) {
            seen.push(c);
        }
    }
    assert!(
        seen.len() == 1 || (seen.len() == 2 && seen[1] == c0 + 1),
        "the guest ran while paused: {seen:?}"
    );
    let r = oci.run(&["exec", "p", "true"], "exec");
    assert!(
        !r.status.success(),
        "exec into a paused container succeeded"
    );
    let r = oci.run(&["delete", "p"], "del");
    assert!(
        !r.status.success(),
        "delete of a paused container succeeded"
    );
    oci.ok(&["resume", "p"]);
    assert_eq!(oci.state("p")["status"], "running");
    let last = *seen.last().unwrap();
    wait_for("the counter to go on", || count() > last + 2);
    // A signal queued while paused is delivered after resume.
    oci.ok(&["pause", "p"]);
    oci.ok(&["kill", "p", "TERM"]);
    assert_eq!(oci.state("p")["status"], "paused");
    oci.ok(&["resume", "p"]);
    assert_eq!(reap(pid), 128 + 15);
    oci.ok(&["delete", "p"]);
    assert_gone(&oci, "p", &[]);
}

/// A one-shot HTTP server on `listener`'s thread: every request gets
/// `body`. Returns its port.
fn http_server(listener: std::net::TcpListener, body: &'static str) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut c, &mut buf);
            let _ = std::io::Write::write_all(
                &mut c,
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

/// Runs a container whose process is `sh -c script` with `namespaces` as
/// its linux.namespaces and `extra` top-level fields; returns its exit
/// status and output.
fn run_container(
    oci: &Oci,
    id: &str,
    script: &str,
    namespaces: &str,
    extra: &str,
) -> (i32, String) {
    let cfg = config(&["sh", "-c", script], "", extra).replace(
        r#"[{"type":"pid"},{"type":"mount"},{"type":"network"}]"#,
        namespaces,
    );
    let b = oci.bundle(id, Some(&cfg));
    let pid = oci.create(id, &b);
    oci.ok(&["start", id]);
    let code = reap(pid);
    (code, oci.output(id))
}

#[test]
fn the_network_namespace_decides_what_eth0_reaches() {
    let oci = Oci::new("oci-net");
    let port = http_server(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        "hello-from-host",
    );
    let fetch =
        format!("wget -q -O - http://10.0.2.2:{port}/ 2>&1 || echo unreachable; echo; exit 0");
    // No network namespace: the host's network, through eth0=user.
    let (code, out) = run_container(&oci, "hostnet", &fetch, r#"[{"type":"pid"}]"#, "");
    assert_eq!((code, out.trim()), (0, "hello-from-host"), "host network");
    // A new network namespace: loopback only.
    let (code, out) = run_container(
        &oci,
        "nonet",
        &fetch,
        r#"[{"type":"pid"},{"type":"network"}]"#,
        "",
    );
    assert_eq!(code, 0);
    assert!(out.contains("unreachable"), "no network, yet: {out}");
    // A port forward from the host into the guest (the ruml.hostfwd
    // annotation): a server in the container answers a host client.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hport = probe.local_addr().unwrap().port();
    drop(probe);
    let shared = oci.dir.path().join("fwd");
    std::fs::create_dir(&shared).unwrap();
    let cfg = config(
        &[
            "sh",
            "-c",
            "echo guest-served > /tmp/index.html; echo up > /shared/up; \
             exec busybox httpd -f -p 8080 -h /tmp",
        ],
        &format!(
            r#",{{"destination":"/shared","type":"bind","source":"{}","options":["rbind","rw"]}}"#,
            shared.display()
        ),
        &format!(r#","annotations":{{"ruml.hostfwd":"tcp:127.0.0.1:{hport}:8080"}}"#),
    )
    .replace(
        r#"[{"type":"pid"},{"type":"mount"},{"type":"network"}]"#,
        r#"[{"type":"pid"}]"#,
    );
    let b = oci.bundle("fwd", Some(&cfg));
    let pid = oci.create("fwd", &b);
    oci.ok(&["start", "fwd"]);
    wait_for("the guest's server", || shared.join("up").exists());
    let deadline = Instant::now() + BUDGET;
    let body = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", hport)).and_then(|mut c| {
            std::io::Write::write_all(&mut c, b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut s = String::new();
            std::io::Read::read_to_string(&mut c, &mut s)?;
            Ok(s)
        });
        match got {
            Ok(s) if s.contains("guest-served") => break s,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no answer through the port forward: {other:?}"),
        }
    };
    assert!(body.starts_with("HTTP/1."), "{body}");
    oci.ok(&["kill", "fwd", "KILL"]);
    reap(pid);
    // A bad forward is refused at create, with nothing left behind.
    let bad = config(&["true"], "", r#","annotations":{"ruml.hostfwd":"tcp:x"}"#);
    let b = oci.bundle("badfwd", Some(&bad));
    let r = oci.run(
        &["create", "--bundle", b.to_str().unwrap(), "badfwd"],
        "badfwd",
    );
    assert!(
        !r.status.success() && r.stderr.contains("hostfwd"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("badfwd").exists());
}

#[test]
fn a_network_namespace_given_by_path_is_joined() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP a_network_namespace_given_by_path_is_joined: making a network namespace needs root");
        return;
    }
    let oci = Oci::new("oci-netns");
    // A network namespace held open by a sleeping process, its lo up.
    let mut holder = match Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIP a_network_namespace_given_by_path_is_joined: unshare: {e}");
            return;
        }
    };
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let holder = Kill(&mut holder);
    let ns = format!("/proc/{}/ns/net", holder.0.id());
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    wait_for("unshare to make its namespace", || {
        std::fs::read_link(&ns).is_ok_and(|l| l != own)
    });
    let up = Command::new("nsenter")
        .args([
            "--net=".to_string() + &ns,
            "ip".into(),
            "link".into(),
            "set".into(),
            "lo".into(),
            "up".into(),
        ])
        .status();
    if !up.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIP a_network_namespace_given_by_path_is_joined: nsenter/ip cannot bring lo up"
        );
        return;
    }
    // A server on that namespace's loopback (bound by a thread that joined
    // it), and one on ours that the container must not reach.
    let ns_file = std::fs::File::open(&ns).unwrap();
    let inside = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns of this thread only, on a namespace file we hold.
        let r = unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    let in_port = http_server(inside, "hello-from-the-pod");
    let out_port = http_server(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        "hello-from-the-host",
    );
    let script = format!(
        "wget -q -O - http://10.0.2.2:{in_port}/ 2>&1 || echo unreachable; echo; \
         wget -q -O - http://10.0.2.2:{out_port}/ >/dev/null 2>&1 && echo host-reached || echo host-not-reached; exit 0"
    );
    let (code, out) = run_container(
        &oci,
        "pod",
        &script,
        &format!(r#"[{{"type":"pid"}},{{"type":"network","path":"{ns}"}}]"#),
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello-from-the-pod"), "{out}");
    // The same port number may be free in both namespaces only by chance;
    // what matters is that ours is not the one answering.
    assert!(
        out.contains("host-not-reached") || in_port == out_port,
        "the container reached a server outside its namespace: {out}"
    );
    // A missing namespace is a clear error at create.
    let cfg = config(&["true"], "", "").replace(
        r#"[{"type":"pid"},{"type":"mount"},{"type":"network"}]"#,
        r#"[{"type":"network","path":"/proc/0/ns/net"}]"#,
    );
    let b = oci.bundle("gone", Some(&cfg));
    let r = oci.run(&["create", "--bundle", b.to_str().unwrap(), "gone"], "gone");
    assert!(
        !r.status.success() && r.stderr.contains("network namespace"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("gone").exists());
}

#[test]
fn podman_bridge_network_reaches_the_host() {
    let oci = Oci::new("oci-podnet");
    let dir = oci.dir.path();
    match podman(
        dir,
        &["info", "--format", "{{.Host.NetworkBackend}}"],
        "info",
    ) {
        None => {
            eprintln!("SKIP podman_bridge_network_reaches_the_host: podman is not installed (Debian's package podman)");
            return;
        }
        Some(r) if !r.status.success() => {
            eprintln!(
                "SKIP podman_bridge_network_reaches_the_host: podman cannot run here: {}",
                r.stderr.trim()
            );
            return;
        }
        Some(_) => {}
    }
    // A server on every host address: the container reaches it at its
    // bridge's gateway address.
    let port = http_server(
        std::net::TcpListener::bind("0.0.0.0:0").unwrap(),
        "hello-over-the-bridge",
    );
    let b = oci.bundle("b", None);
    let rootfs = b.join("rootfs");
    let runtime = dir.join("ruml-oci");
    let script = format!("echo started; wget -q -O - http://$GW:{port}/ || echo failed");
    // The gateway podman gives its default network ("podman"), read from
    // podman itself.
    let gw = podman(
        dir,
        &[
            "network",
            "inspect",
            "podman",
            "--format",
            "{{range .Subnets}}{{.Gateway}}{{end}}",
        ],
        "net",
    )
    .filter(|r| r.status.success())
    .map(|r| r.stdout.trim().to_string())
    .unwrap_or_default();
    if gw.parse::<std::net::Ipv4Addr>().is_err() {
        eprintln!("SKIP podman_bridge_network_reaches_the_host: podman has no default bridge network here ({gw:?})");
        return;
    }
    let args = [
        "run",
        "--rm",
        "--runtime",
        runtime.to_str().unwrap(),
        "--env",
        &format!("GW={gw}"),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "/bin/sh",
        "-c",
        &script,
    ];
    let r = podman(dir, &args, "run").unwrap();
    let err = r.stderr.to_lowercase();
    if !r.status.success()
        && r.stdout.is_empty()
        && ["netavark", "cni", "network"]
            .iter()
            .any(|w| err.contains(w))
    {
        // podman's own network set-up (netavark or CNI plugins) failed
        // before our runtime ran the container.
        eprintln!(
            "SKIP podman_bridge_network_reaches_the_host: podman could not set up its network: {}",
            r.stderr.trim()
        );
        return;
    }
    assert_eq!(
        r.stdout, "started\nhello-over-the-bridge",
        "podman run: {}\n{}",
        r.status, r.stderr
    );
}

#[test]
fn process_capabilities_apply_inside() {
    let oci = Oci::new("oci-caps");
    let show = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status";
    // Root with a small bounding set: after the exec of its program it
    // holds what the bounding set allows, as under runc.
    let caps = r#""capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN","CAP_KILL"],"permitted":["CAP_CHOWN","CAP_KILL"],"inheritable":[],"ambient":[]},"#;
    let cfg =
        config(&["sh", "-c", show], "", "").replace(r#""args":"#, &format!("{caps}\"args\":"));
    let b = oci.bundle("root", Some(&cfg));
    let pid = oci.create("root", &b);
    oci.ok(&["start", "root"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(
        oci.output("root"),
        "CapInh:\t0000000000000000\nCapPrm:\t0000000000000021\nCapEff:\t0000000000000021\n\
         CapBnd:\t0000000000000021\nCapAmb:\t0000000000000000\n"
    );
    // A non-root user keeps only its ambient capabilities across exec.
    let caps = r#""capabilities":{"bounding":["CAP_NET_BIND_SERVICE","CAP_KILL"],"effective":["CAP_NET_BIND_SERVICE"],"permitted":["CAP_NET_BIND_SERVICE"],"inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]},"#;
    let cfg = config(&["sh", "-c", show], "", "")
        .replace(r#""args":"#, &format!("{caps}\"args\":"))
        .replace(r#""uid":0,"gid":0"#, r#""uid":1000,"gid":1000"#);
    let b = oci.bundle("user", Some(&cfg));
    let pid = oci.create("user", &b);
    oci.ok(&["start", "user"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(
        oci.output("user"),
        "CapInh:\t0000000000000400\nCapPrm:\t0000000000000400\nCapEff:\t0000000000000400\n\
         CapBnd:\t0000000000000420\nCapAmb:\t0000000000000400\n"
    );
    // An unknown name is refused at create, with nothing left behind.
    let bad = config(&["true"], "", "").replace(
        r#""args":"#,
        r#""capabilities":{"bounding":["CAP_BOGUS"]},"args":"#,
    );
    let b = oci.bundle("bad", Some(&bad));
    let r = oci.run(&["create", "--bundle", b.to_str().unwrap(), "bad"], "bad");
    assert!(
        !r.status.success() && r.stderr.contains("CAP_BOGUS"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("bad").exists());
    let f: serde_json::Value = serde_json::from_str(&oci.ok(&["features"]).stdout).unwrap();
    assert_eq!(f["linux"]["capabilities"][0], "CAP_CHOWN", "{f}");
}

/// Runs `ruml-oci --root ROOT ARGS` with host files as its descriptors
/// 3, 4, ... (as conmon passes sockets with --preserve-fds).
fn run_with_fds(oci: &Oci, args: &[&str], extra: &[&std::fs::File], tag: &str) -> Run {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let out = oci.dir.path().join(format!("{tag}.out"));
    let err = oci.dir.path().join(format!("{tag}.err"));
    let raw: Vec<i32> = extra.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(oci.dir.path().join("ruml-oci"));
    cmd.arg("--root")
        .arg(oci.root())
        .args(args)
        .current_dir(oci.dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out file"))
        .stderr(std::fs::File::create(&err).expect("err file"));
    // SAFETY: dup/dup2 only, between fork and exec. The descriptors are
    // first moved above the targets so no target overwrites a source.
    unsafe {
        cmd.pre_exec(move || {
            let high: Vec<i32> = raw
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100))
                .collect();
            for (k, &fd) in high.iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + k as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start ruml-oci");
    let deadline = Instant::now() + BUDGET;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("TIMEOUT: ruml-oci {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// `create --preserve-fds N` and `exec --preserve-fds N`: the caller's
/// descriptors 3..3+N are the container process's 3..3+N (as runc), and
/// no more; a count naming a closed descriptor is a clear error.
#[test]
fn preserve_fds_pass_descriptors_to_the_container() {
    let oci = Oci::new("oci-fds");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle(
        "b",
        Some(&waiting_config(
            &shared,
            "echo to-three >&3; read l <&4; echo got $l; \
             (echo x >&5) 2>/dev/null && echo five-open || echo no-five",
        )),
    );
    let three = oci.dir.path().join("three");
    let four = oci.dir.path().join("four");
    std::fs::write(&four, "from-four\n").unwrap();
    let f3 = std::fs::File::create(&three).unwrap();
    let f4 = std::fs::File::open(&four).unwrap();
    // A closed descriptor in the range: refused, nothing left.
    let r = run_with_fds(
        &oci,
        &[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--preserve-fds",
            "3",
            "bad",
        ],
        &[&f3, &f4],
        "bad",
    );
    assert!(
        !r.status.success(),
        "create with a closed preserved fd succeeded"
    );
    assert!(
        r.stderr.contains("descriptor 5 is not open"),
        "{}",
        r.stderr
    );
    assert!(!oci.root().join("bad").exists(), "state left behind");
    let r = run_with_fds(
        &oci,
        &[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--preserve-fds",
            "x",
            "bad",
        ],
        &[],
        "bad2",
    );
    assert!(
        !r.status.success() && r.stderr.contains("--preserve-fds"),
        "{}",
        r.stderr
    );

    oci.ids.borrow_mut().push("fds".into());
    let pid_file = oci.dir.path().join("fds.pid");
    let r = run_with_fds(
        &oci,
        &[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--preserve-fds",
            "2",
            "fds",
        ],
        &[&f3, &f4],
        "fds",
    );
    assert!(r.status.success(), "create: {}", r.stderr);
    drop((f3, f4));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    oci.ok(&["start", "fds"]);
    wait_for("the container to start", || shared.join("started").exists());
    // exec: its own descriptor 3.
    let exec3 = oci.dir.path().join("exec3");
    let e3 = std::fs::File::create(&exec3).unwrap();
    let r = run_with_fds(
        &oci,
        &[
            "exec",
            "--preserve-fds",
            "1",
            "fds",
            "sh",
            "-c",
            "echo exec-three >&3",
        ],
        &[&e3],
        "ex",
    );
    assert!(r.status.success(), "exec: {}", r.stderr);
    drop(e3);
    assert_eq!(std::fs::read_to_string(&exec3).unwrap(), "exec-three\n");
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(reap(pid), 0);
    assert_eq!(std::fs::read_to_string(&three).unwrap(), "to-three\n");
    assert_eq!(
        std::fs::read_to_string(oci.dir.path().join("fds.out")).unwrap(),
        "got from-four\nno-five\n"
    );
    oci.ok(&["delete", "fds"]);
}

/// A uts namespace given by path is joined: the guest's hostname is that
/// namespace's (a pod's containers share the sandbox's); a hostname in
/// config.json with it is refused, as runc does. Other namespace types by
/// path stay a clear error (see bad_bundles_are_refused_with_nothing_left).
#[test]
fn a_uts_namespace_given_by_path_is_joined() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIP a_uts_namespace_given_by_path_is_joined: making a uts namespace needs root"
        );
        return;
    }
    let oci = Oci::new("oci-utsns");
    let mut holder = match Command::new("unshare")
        .args(["--uts", "sh", "-c", "hostname pod-host && exec sleep 600"])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIP a_uts_namespace_given_by_path_is_joined: unshare: {e}");
            return;
        }
    };
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let holder = Kill(&mut holder);
    let ns = format!("/proc/{}/ns/uts", holder.0.id());
    wait_for("unshare to set the namespace's hostname", || {
        Command::new("nsenter")
            .arg(format!("--uts={ns}"))
            .arg("hostname")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "pod-host")
    });
    let namespaces = format!(r#"[{{"type":"pid"}},{{"type":"uts","path":"{ns}"}}]"#);
    let cfg = config(&["sh", "-c", "hostname"], "", "")
        .replace(r#""hostname":"oci-test","#, "")
        .replace(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network"}]"#,
            &namespaces,
        );
    let b = oci.bundle("uts", Some(&cfg));
    let pid = oci.create("uts", &b);
    oci.ok(&["start", "uts"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(oci.output("uts"), "pod-host\n");
    oci.ok(&["delete", "uts"]);
    // With a hostname of its own: refused, nothing left.
    let cfg = config(&["sh", "-c", "hostname"], "", "").replace(
        r#"[{"type":"pid"},{"type":"mount"},{"type":"network"}]"#,
        &namespaces,
    );
    let b = oci.bundle("utsh", Some(&cfg));
    let r = oci.run(&["create", "--bundle", b.to_str().unwrap(), "utsh"], "utsh");
    assert!(
        !r.status.success(),
        "create with hostname and a uts path succeeded"
    );
    assert!(r.stderr.contains("hostname cannot be set"), "{}", r.stderr);
    assert!(!oci.root().join("utsh").exists());
    drop(holder);
}

/// `run` (create + start + wait + delete, as runc's): the container's
/// output and exit status are run's, preserved descriptors reach it,
/// nothing is left; `run --detach` returns with the container running.
#[test]
fn run_creates_starts_waits_and_deletes() {
    let oci = Oci::new("oci-run");
    let b = oci.bundle(
        "b",
        Some(&config(
            &[
                "sh",
                "-c",
                "echo ran $(hostname); echo via-three >&3; exit 6",
            ],
            "",
            "",
        )),
    );
    let three = oci.dir.path().join("three");
    let f3 = std::fs::File::create(&three).unwrap();
    let r = run_with_fds(
        &oci,
        &[
            "run",
            "--bundle",
            b.to_str().unwrap(),
            "--preserve-fds",
            "1",
            "r1",
        ],
        &[&f3],
        "r1",
    );
    drop(f3);
    assert_eq!(r.status.code(), Some(6), "{}", r.stderr);
    assert_eq!(r.stdout, "ran oci-test\n");
    assert_eq!(std::fs::read_to_string(&three).unwrap(), "via-three\n");
    assert!(!oci.root().join("r1").exists(), "run left its state behind");
    // --keep: the stopped container stays until deleted.
    let r = oci.run(
        &["run", "--keep", "--bundle", b.to_str().unwrap(), "r2"],
        "r2",
    );
    assert_eq!(r.status.code(), Some(6), "{}", r.stderr);
    assert_eq!(oci.state("r2")["status"], "stopped");
    oci.ok(&["delete", "r2"]);
    // --detach: back at once, the container runs on.
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let bd = oci.bundle("bd", Some(&waiting_config(&shared, "exit 2")));
    oci.ids.borrow_mut().push("r3".into());
    oci.ok(&["run", "-d", "--bundle", bd.to_str().unwrap(), "r3"]);
    wait_for("the container to start", || shared.join("started").exists());
    let st = oci.state("r3");
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(reap(pid), 2);
    oci.ok(&["delete", "r3"]);
    assert!(!oci.root().join("r3").exists());
}

/// process.user (uid, gid, additionalGids), rlimits and noNewPrivileges
/// are init's inside the guest, and what it runs inherits them.
#[test]
fn process_user_rlimits_and_no_new_privileges_apply_inside() {
    let oci = Oci::new("oci-creds");
    let script =
        "echo $(id -u) $(id -g) $(id -G); ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc; \
                  grep NoNewPrivs /proc/self/status; sh -c 'ulimit -Sn'";
    let cfg = config(&["sh", "-c", script], "", "")
        .replace(
            r#""uid":0,"gid":0"#,
            r#""uid":1000,"gid":1001,"additionalGids":[5,100]"#,
        )
        .replace(
            r#""cwd":"/""#,
            r#""cwd":"/","noNewPrivileges":true,"rlimits":[{"type":"RLIMIT_NOFILE","soft":321,"hard":654},{"type":"RLIMIT_CORE","soft":0,"hard":4096}]"#,
        );
    let b = oci.bundle("b", Some(&cfg));
    let pid = oci.create("creds", &b);
    oci.ok(&["start", "creds"]);
    assert_eq!(reap(pid), 0, "{}", oci.output("creds"));
    assert_eq!(
        oci.output("creds"),
        // busybox's ulimit -c counts 512-byte blocks.
        "1000 1001 1001 5 100\n321\n654\n0\n8\nNoNewPrivs:\t1\n321\n"
    );
    oci.ok(&["delete", "creds"]);
    assert_gone(&oci, "creds", &[]);
    // Without them: root, the instance's default limits, no_new_privs 0.
    let b = oci.bundle(
        "plain",
        Some(&config(
            &["sh", "-c", "id -u; grep NoNewPrivs /proc/self/status"],
            "",
            "",
        )),
    );
    let pid = oci.create("plain", &b);
    oci.ok(&["start", "plain"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(oci.output("plain"), "0\nNoNewPrivs:\t0\n");
}

/// `--log FILE --log-format json` writes each error as a JSON object with
/// level, msg and time (what conmon and the shim parse); `text` writes
/// plain lines; another format is refused.
#[test]
fn log_format_json_writes_json_lines() {
    let oci = Oci::new("oci-log");
    let b = oci.bundle("b", None);
    let log = oci.dir.path().join("log.json");
    let r = oci.run(
        &[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "nocfg",
        ],
        "json",
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    let text = std::fs::read_to_string(&log).expect("the log file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {}", lines[0]));
    assert_eq!(v["level"], "error", "{v}");
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("cannot read")),
        "{v}"
    );
    let t = v["time"].as_str().expect("a time");
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "not RFC 3339: {t}"
    );
    assert!(!oci.root().join("nocfg").exists());
    // --log-format=text (the = form too): plain lines.
    let tlog = oci.dir.path().join("log.txt");
    let r = oci.run(
        &[
            &format!("--log={}", tlog.display()),
            "--log-format=text",
            "state",
            "nothere",
        ],
        "text",
    );
    assert_eq!(r.status.code(), Some(1));
    let text = std::fs::read_to_string(&tlog).expect("the text log");
    assert_eq!(text, "ruml oci: container nothere does not exist\n");
    let r = oci.run(&["--log-format", "yaml", "list"], "yaml");
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("give text or json"), "{}", r.stderr);
}

/// `features` describes the runtime as runtime-spec's features.md asks.
#[test]
fn features_describes_the_runtime() {
    let oci = Oci::new("oci-features");
    let f: serde_json::Value = serde_json::from_str(&oci.ok(&["features"]).stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0", "{f}");
    assert!(
        f["ociVersionMax"].as_str().unwrap().starts_with("1."),
        "{f}"
    );
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    };
    assert_eq!(
        strings(&f["hooks"]),
        ["prestart", "createRuntime", "poststart", "poststop"]
    );
    let opts = strings(&f["mountOptions"]);
    for o in ["bind", "rbind", "ro", "rw"] {
        assert!(opts.iter().any(|x| x == o), "mountOptions lacks {o}: {f}");
    }
    let ns = strings(&f["linux"]["namespaces"]);
    for n in ["ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.iter().any(|x| x == n), "namespaces lacks {n}: {f}");
    }
    let caps = strings(&f["linux"]["capabilities"]);
    assert!(
        caps.len() >= 38 && caps.iter().all(|c| c.starts_with("CAP_")),
        "{f}"
    );
    assert_eq!(f["linux"]["seccomp"]["enabled"], false, "{f}");
    assert_eq!(f["linux"]["cgroup"]["v2"], false, "{f}");
    assert!(f["annotations"].is_object(), "{f}");
}

/// A mount whose destination goes through a symlink in the root that
/// points outside it lands inside the guest (the guest's kernel resolves
/// it within its root); nothing is made or written outside on the host.
#[test]
fn mount_destinations_through_symlinks_stay_inside() {
    let oci = Oci::new("oci-escape");
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let b = oci.bundle("b", None);
    // On the host, rootfs/escape points at DIR/outside (beside the
    // bundle), rootfs/abs at the host's /outside-abs; in the guest they
    // are the root's own /outside and /outside-abs.
    std::fs::create_dir(b.join("rootfs/outside")).unwrap();
    std::fs::create_dir(b.join("rootfs/outside-abs")).unwrap();
    std::os::unix::fs::symlink("../../outside", b.join("rootfs/escape")).unwrap();
    std::os::unix::fs::symlink("/../../../../outside-abs", b.join("rootfs/abs")).unwrap();
    let cfg = config(
        &[
            "sh",
            "-c",
            "echo hi > /escape/bound/f && ls /outside/bound && ls -d /outside/tmp /outside-abs/tmp",
        ],
        &format!(
            r#",{{"destination":"/escape/bound","type":"bind","source":"{}","options":["rbind","rw"]}},
               {{"destination":"/escape/tmp","type":"tmpfs","source":"tmpfs"}},
               {{"destination":"/abs/tmp","type":"tmpfs","source":"tmpfs"}}"#,
            shared.display()
        ),
        "",
    );
    std::fs::write(b.join("config.json"), cfg).unwrap();
    let pid = oci.create("escape", &b);
    oci.ok(&["start", "escape"]);
    assert_eq!(
        reap(pid),
        0,
        "{}{}",
        oci.output("escape"),
        std::fs::read_to_string(oci.dir.path().join("escape.err")).unwrap_or_default()
    );
    assert_eq!(oci.output("escape"), "f\n/outside-abs/tmp\n/outside/tmp\n");
    assert_eq!(std::fs::read_to_string(shared.join("f")).unwrap(), "hi\n");
    assert!(
        !oci.dir.path().join("outside").exists(),
        "a mount point was made outside the root"
    );
    assert!(!Path::new("/outside-abs").exists());
    // The bundle is untouched too (the guest's changes are in memory).
    assert_eq!(
        std::fs::read_dir(b.join("rootfs/outside")).unwrap().count(),
        0
    );
    oci.ok(&["delete", "escape"]);
    assert_gone(&oci, "escape", &[]);
}
