//! eventfd, timerfd, signalfd, pidfd and epoll: the same program natively
//! and under ruml (tests/guest/fd_objects.c).

mod common;

use common::{differential, Flavour};

fn fd_objects(flavour: Flavour) {
    let (native, ruml) = differential("fd_objects", flavour, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
    assert!(
        ruml.stdout
            .contains("ok: epoll_wait(ep, out, 4, 5000) == 1"),
        "{ruml}"
    );
}

#[test]
fn fd_objects_static() {
    fd_objects(Flavour::Static);
}

#[test]
fn fd_objects_dynamic() {
    fd_objects(Flavour::Dynamic);
}

/// Unix sockets from the host's python3 (tests/scripts/unix_sockets.py).
#[test]
fn unix_sockets_python() {
    let script = common::workspace_root().join("tests/scripts/unix_sockets.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.contains("b'via passed fd'"), "{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// memfd_create from the host's python3 (tests/scripts/memfd.py).
#[test]
fn memfd_python() {
    let script = common::workspace_root().join("tests/scripts/memfd.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// Named pipes on the overlay's tmpfs (mkfifo, blocking opens, O_RDWR).
#[test]
fn fifo_on_tmpfs() {
    let env = common::test_env();
    let out = common::run_ruml("/bin/sh", &["-c", "cd /tmp && mkfifo f && (echo through-fifo > f &) && cat f && exec 3<>f && echo rw >&3 && read x <&3 && echo $x"], &env);
    assert_eq!(out.stdout, "through-fifo\nrw\n", "{out}");
}

/// inotify events from the host's python3 (tests/scripts/inotify.py).
#[test]
fn inotify_python() {
    let script = common::workspace_root().join("tests/scripts/inotify.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.contains("'0x80', 'a.txt.2'"), "{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

#[test]
fn clone_pidfd_static() {
    let (native, _ruml) = differential("clone_pidfd", Flavour::Static, &[]);
    assert!(
        native.stdout.contains("pidfd valid: 1, poll: 1"),
        "{native}"
    );
}

/// Pipe sizes, tee and O_TMPFILE from the host's python3.
#[test]
fn pipes_and_tmpfile_python() {
    let script = common::workspace_root().join("tests/scripts/pipes_tmpfile.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// memfd seals from the host's python3.
#[test]
fn memfd_seals_python() {
    let script = common::workspace_root().join("tests/scripts/memfd_seals.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// pidfd_send_signal and waitid(P_PIDFD) on pidfds from pidfd_open (blocking
/// and PIDFD_NONBLOCK), clone(CLONE_PIDFD) and clone3(CLONE_PIDFD).
#[test]
fn pidfd_kinds_static() {
    let (native, _ruml) = differential("pidfd_kinds", Flavour::Static, &[]);
    assert!(native.stdout.contains("sig 0 reaped: -1 ESRCH"), "{native}");
    assert!(
        native.stdout.contains("waitid NONBLOCK running: -1 EAGAIN"),
        "{native}"
    );
}
