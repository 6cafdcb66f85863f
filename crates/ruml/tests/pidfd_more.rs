//! pidfds beyond the basics (issue 11): tests/guest/pidfd_more.c natively
//! and under ruml — pidfd_open's lookup in the caller's PID namespace,
//! thread pidfds (PIDFD_THREAD) and their poll, pidfd_send_signal's scope
//! flags (PIDFD_SIGNAL_THREAD, _THREAD_GROUP, _PROCESS_GROUP), waitid on
//! thread pidfds, pidfd_getfd, and setns(pidfd, flags).
//!
//! The guest is root inside ruml, so the native side must be root too (and
//! allow namespaces); where it is not, the test says so and passes without
//! comparing.

mod common;

use common::{assert_same, build_guest, run_native, run_ruml, test_env, Flavour};

fn pidfd_more(flavour: Flavour) {
    if !common::host_allows_namespaces() {
        return;
    }
    let guest = build_guest("pidfd_more", flavour);
    let env = test_env();
    let native = run_native(&guest.path, &[] as &[&str], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
    // What the oracle must have said for the comparison to mean anything
    // (a host before Linux 6.15 answers some of these differently).
    for want in [
        "pidfd_open(outer pid) in child ns: -1 ESRCH",
        "pidfd_open(tid, 0): -1 ENOENT",
        "pidfd_open(tid, PIDFD_THREAD): 1",
        "thread pidfd, flags 0: 0 in worker 1 code -6",
        "poll leader thread pidfd: 0",
        "PGRP on non-leader self: -1 ESRCH",
        "getfd: 1 cloexec 1",
        "unprivileged getfd from root: -1 EPERM",
        "getfd at RLIMIT_NOFILE: -1 EMFILE",
        "join UTS|IPC|NS|CGROUP: 0",
        "child in joined namespace: pid 2 ppid 0",
    ] {
        assert!(
            native.stdout.contains(want),
            "native lacks {want:?}:\n{native}"
        );
    }
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_same(&native, &ruml);
}

#[test]
fn pidfd_more_static() {
    pidfd_more(Flavour::Static);
}

#[test]
fn pidfd_more_dynamic() {
    pidfd_more(Flavour::Dynamic);
}

/// Random arguments to every pidfd call (tests/guest/pidfd_fuzz.c): each
/// gets a result or an errno; the kernel neither panics nor hangs.
#[test]
fn pidfd_fuzz() {
    let guest = build_guest("pidfd_fuzz", Flavour::Static);
    let env = test_env();
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert!(ruml.stdout.starts_with("fuzz done: 20000 calls"), "{ruml}");
}
