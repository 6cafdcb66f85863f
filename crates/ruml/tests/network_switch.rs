//! Two instances on one Ethernet switch (`eth0=switch,PATH`): `ruml
//! switch` and Debian's `uml_switch` as the switch; the instances take
//! addresses with the host's iproute2, ping each other through ICMP ping
//! sockets, exchange UDP datagrams and move 100 MiB over TCP with the
//! checksum compared (tests/scripts/netswitch.py on both ends). A hostile
//! peer on the switch (tests/scripts/switch_junk.py) sends malformed and
//! oversized frames: the instance keeps serving.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ruml_bin, test_env, test_mode, workspace_root, TempDir};

/// Budget for one instance of a two-instance run (liveness, not speed:
/// 100 MiB through a switch on a busy 2-core machine).
const RUN_BUDGET: Duration = Duration::from_secs(300);

/// A switch process, killed (by its pid) on drop.
struct Switch {
    child: Child,
    log: PathBuf,
}

impl Switch {
    fn start(mut cmd: Command, ctl: &Path, log: PathBuf) -> Switch {
        let f = std::fs::File::create(&log).expect("switch log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("start the switch");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(ctl).is_err() {
            assert!(Instant::now() < deadline, "the switch never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Switch { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (liveness budget) until the switch has seen `n` ports.
    fn wait_ports(&self, n: usize, ruml_switch: bool) {
        if !ruml_switch {
            // uml_switch logs to stdout with buffering: give it time
            // instead of reading its log.
            std::thread::sleep(Duration::from_secs(2));
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log().matches("New connection").count() < n {
            assert!(
                Instant::now() < deadline,
                "ports never joined:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ruml_switch(dir: &TempDir) -> (Switch, PathBuf) {
    let ctl = dir.path().join("switch.ctl");
    let mut cmd = Command::new(ruml_bin());
    cmd.arg("switch").arg(&ctl);
    (Switch::start(cmd, &ctl, dir.path().join("switch.log")), ctl)
}

/// Boots an instance on the switch: eth0 gets `addr`/24 with `ip`, then
/// netswitch.py runs with `args`.
fn instance(ctl: &Path, mac: &str, addr: &str, args: &str) -> common::Output {
    let script = workspace_root().join("tests/scripts/netswitch.py");
    let mut cmd = Command::new(ruml_bin());
    if let Some(m) = test_mode() {
        cmd.arg(format!("mode={m}"));
    }
    cmd.arg("quiet")
        .arg(format!("eth0=switch,{}", ctl.display()))
        .arg(format!("mac={mac}"))
        .arg("--")
        .arg("/bin/sh")
        .arg("-c")
        .arg(format!(
            "ip addr add {addr}/24 dev eth0 && ip link set dev eth0 up && \
             exec python3 {} {args}",
            script.display()
        ));
    let what = format!("ruml eth0=switch mac={mac} ({addr}: {args})");
    common::run_command(cmd, &test_env(), what, RUN_BUDGET)
}

fn check(out: &common::Output, want: &[&str]) {
    assert_eq!(
        out.code(),
        0,
        "{} failed\nstdout:\n{}\nstderr:\n{}",
        out.what,
        out.stdout,
        out.stderr
    );
    for w in want {
        assert!(
            out.stdout.contains(w),
            "{}: no `{w}` in\n{}\nstderr:\n{}",
            out.what,
            out.stdout,
            out.stderr
        );
    }
}

/// A server instance and a client instance: ping, UDP, `mib` MiB of TCP.
fn pair(ctl: &Path, mib: u32) {
    let c1 = ctl.to_path_buf();
    let server =
        std::thread::spawn(move || instance(&c1, "02:00:00:00:09:01", "10.9.0.1", "serve"));
    let client = instance(
        ctl,
        "02:00:00:00:09:02",
        "10.9.0.2",
        &format!("client 10.9.0.1 {mib} quit"),
    );
    let server = server.join().expect("server thread");
    check(
        &client,
        &[
            "ping 10.9.0.1 replies 3",
            "udp 5",
            &format!("tcp {mib} MiB checksum same"),
        ],
    );
    check(&server, &["served 2"]);
}

#[test]
fn two_instances_on_ruml_switch() {
    let dir = TempDir::new("netswitch");
    let (_sw, ctl) = ruml_switch(&dir);
    pair(&ctl, 100);
}

#[test]
fn two_instances_on_uml_switch() {
    if !Path::new("/usr/bin/uml_switch").exists() {
        eprintln!("skipped: /usr/bin/uml_switch (Debian's uml-utilities) is not installed");
        return;
    }
    let dir = TempDir::new("netswitch-uml");
    let ctl = dir.path().join("uml.ctl");
    let mut cmd = Command::new("/usr/bin/uml_switch");
    cmd.arg("-unix").arg(&ctl);
    let _sw = Switch::start(cmd, &ctl, dir.path().join("uml_switch.log"));
    pair(&ctl, 100);
}

#[test]
fn hostile_peer_on_the_switch() {
    let dir = TempDir::new("netswitch-junk");
    let (sw, ctl) = ruml_switch(&dir);
    let c1 = ctl.clone();
    let server =
        std::thread::spawn(move || instance(&c1, "02:00:00:00:09:01", "10.9.0.1", "serve"));
    sw.wait_ports(1, true);
    // Give the server's `ip addr add` a moment to land (liveness only:
    // junk arriving earlier is dropped all the same).
    std::thread::sleep(Duration::from_secs(2));
    let junk = common::run_command(
        {
            let mut c = Command::new("python3");
            c.arg(workspace_root().join("tests/scripts/switch_junk.py"))
                .arg(&ctl)
                .arg("02:00:00:00:09:01")
                .arg("10.9.0.1");
            c
        },
        &test_env(),
        "switch_junk.py".into(),
        common::TIMEOUT,
    );
    assert_eq!(
        junk.code(),
        0,
        "injector failed: {}\n{}",
        junk.stdout,
        junk.stderr
    );
    assert!(junk.stdout.contains("sent "), "{}", junk.stdout);
    // The server still answers a client.
    let client = instance(
        &ctl,
        "02:00:00:00:09:02",
        "10.9.0.2",
        "client 10.9.0.1 4 quit",
    );
    let server = server.join().expect("server thread");
    check(
        &client,
        &[
            "ping 10.9.0.1 replies 3",
            "udp 5",
            "tcp 4 MiB checksum same",
        ],
    );
    check(&server, &["served 2"]);
    assert!(!server.stderr.contains("panicked"), "{}", server.stderr);
}

#[test]
fn switch_needs_a_reachable_switch() {
    let dir = TempDir::new("netswitch-none");
    let out = common::run_ruml_raw(
        &[
            format!("eth0=switch,{}", dir.path().join("nobody.ctl").display()),
            "--".into(),
            "/bin/true".into(),
        ],
        &test_env(),
    );
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr.contains("cannot connect to the switch"),
        "{}",
        out.stderr
    );
    let bad = common::run_ruml_raw(&["mac=01:00:00:00:00:01", "--", "/bin/true"], &test_env());
    assert_ne!(bad.code(), 0);
}

#[test]
fn mac_and_link_state_show_inside() {
    let dir = TempDir::new("netswitch-mac");
    let (_sw, ctl) = ruml_switch(&dir);
    let out = common::run_ruml_raw(
        &[
            format!("eth0=switch,{}", ctl.display()),
            "mac=02:12:34:56:78:9a".into(),
            "--".into(),
            "/bin/sh".into(),
            "-c".into(),
            "cat /sys/class/net/eth0/address; ip addr add 10.9.0.7/24 dev eth0; \
             ip -o -4 addr show dev eth0 | tr -s ' ' | cut -d' ' -f2,4; \
             ip link set dev eth0 down; \
             python3 -c \"import socket\ntry:\n socket.create_connection(('10.9.0.8', 80))\n\
             except OSError as e: print('down:', e.strerror)\""
                .into(),
        ],
        &test_env(),
    );
    assert_eq!(out.code(), 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout_lines(),
        vec![
            "02:12:34:56:78:9a",
            "eth0 10.9.0.7/24",
            "down: Network is unreachable"
        ],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("MAC 02:12:34:56:78:9a"),
        "{}",
        out.stderr
    );
}
