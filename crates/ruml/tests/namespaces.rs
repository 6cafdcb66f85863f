//! Namespaces (issue 10, item 2): tests/guest/namespaces.c natively and
//! under ruml (unshare/setns of each type, /proc/PID/ns and its ioctls,
//! uid_map/gid_map/setgroups rules, PID namespaces, mount namespaces,
//! propagation, pivot_root, hostile input), and the host's util-linux
//! `unshare` and bubblewrap run as guests with the native output.
//!
//! Natively these need root (the guest is root inside ruml, and the
//! outputs must agree) and a host that allows namespaces: where either is
//! missing the tests say so and pass without comparing.

mod common;

use common::{
    assert_same_with, build_guest, host_allows_namespaces, run_native, run_ruml, test_env, Flavour,
    Output,
};

fn differential_ns(flavour: Flavour) {
    if !host_allows_namespaces() {
        return;
    }
    let guest = build_guest("namespaces", flavour);
    let env = test_env();
    let native = run_native(&guest.path, &[] as &[&str], &env);
    if native.stdout.starts_with("SKIP") {
        eprintln!("skipped: the native run could not make namespaces");
        return;
    }
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_same_with(&native, &ruml, |s| s.to_string());
    for want in [
        "uid before map: 65534 gid 65534",
        "uid_map 341 lines: EINVAL",
        "uid_map overlap: EINVAL",
        "gid_map before setgroups deny: EPERM",
        "child getpid: 1 getppid: 0",
        "/proc/self -> 1",
        "b/y is a mount (slave receives): 1",
        "a/z is a mount (slave does not send): 0",
        "marker at /: 1, old dir gone: 1",
        "setns(pipe): EINVAL",
    ] {
        assert!(
            ruml.stdout.contains(want),
            "ruml output lacks {want:?}:\n{ruml}"
        );
    }
}

#[test]
fn namespaces_static() {
    differential_ns(Flavour::Static);
}

#[test]
fn namespaces_dynamic() {
    differential_ns(Flavour::Dynamic);
}

/// A shell command line natively and under ruml; ps's TIME column (CPU
/// time, which a loaded machine may push past a second) is normalized.
fn sh_same(script: &str) -> (Output, Output) {
    let env = test_env();
    let native = run_native("/bin/sh", &["-c", script], &env);
    let ruml = run_ruml("/bin/sh", &["-c", script], &env);
    let norm = |s: &str| {
        s.lines()
            .map(|l| {
                l.split(' ')
                    .map(|w| {
                        let b = w.as_bytes();
                        if b.len() == 8 && b[2] == b':' && b[5] == b':' {
                            "TT:TT:TT"
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_same_with(&native, &ruml, norm);
    (native, ruml)
}

/// util-linux: a new user (root mapped), mount and PID namespace with a
/// private /proc: the shell is pid 1 and ps sees only it and itself.
#[test]
fn unshare_command() {
    if !host_allows_namespaces() {
        return;
    }
    let (_, ruml) = sh_same("unshare -Urmpf --mount-proc sh -c 'id; echo $$; ps'; echo rc=$?");
    assert!(ruml.stdout.contains("\n1\n"), "{ruml}");
    assert!(ruml.stdout.contains(" sh\n"), "{ruml}");
    assert!(ruml.stdout.ends_with("rc=0\n"), "{ruml}");
}

/// util-linux: each namespace type on its own, and nsenter into them.
#[test]
fn unshare_each_type() {
    if !host_allows_namespaces() {
        return;
    }
    sh_same(
        "unshare -u sh -c 'hostname inner; hostname'; \
         unshare -i true && echo ipc; unshare -C true && echo cgroup; \
         unshare -T true && echo time; unshare -n ip -brief link; \
         unshare -U sh -c 'id -u; cat /proc/self/uid_map | wc -l'; \
         unshare -pf --mount-proc -m sh -c 'echo $$; readlink /proc/self; ls /proc/1/ns | wc -l'",
    );
}

fn have_bwrap() -> bool {
    let ok = std::path::Path::new("/usr/bin/bwrap").exists();
    if !ok {
        eprintln!("skipped: bubblewrap is not installed (.ci/run installs it)");
    }
    ok
}

/// bubblewrap as root: mount namespace with a read-only bind of /, its own
/// /proc, /dev and /tmp, pivot_root, PID and UTS namespaces.
#[test]
fn bwrap_basic() {
    if !host_allows_namespaces() || !have_bwrap() {
        return;
    }
    let (_, ruml) = sh_same(
        "bwrap --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp --unshare-pid \
         --unshare-uts --hostname box sh -c 'echo $$; hostname; readlink /proc/self; \
         ls /tmp | wc -l; cat /proc/self/uid_map; touch /etc/x 2>/dev/null || echo ro; \
         ls /dev | sort | tr \"\\n\" \" \"; echo'; echo rc=$?",
    );
    assert!(ruml.stdout.starts_with("2\nbox\n"), "{ruml}");
}

/// bubblewrap with a user namespace mapping uid/gid 1000, and with every
/// namespace (network: a fresh stack with only lo).
#[test]
fn bwrap_userns_and_all() {
    if !host_allows_namespaces() || !have_bwrap() {
        return;
    }
    sh_same(
        "bwrap --unshare-user --uid 1000 --gid 1000 --ro-bind / / --proc /proc --dev /dev \
         --unshare-pid --unshare-ipc --unshare-cgroup sh -c 'id -u; id -g; echo $$; \
         cat /proc/self/uid_map /proc/self/gid_map'; echo rc=$?; \
         bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev sh -c 'ip -brief link; \
         ip -4 -brief addr'; echo rc=$?",
    );
}

/// ptrace's access rule in user namespaces (tests/guest/ptrace_userns.c):
/// CAP_SYS_PTRACE counts in the target's namespace for other ids and in
/// its address space's namespace for a non-dumpable target.
#[test]
fn ptrace_access_follows_user_namespaces() {
    if !host_allows_namespaces() {
        return;
    }
    let guest = build_guest("ptrace_userns", Flavour::Static);
    let env = test_env();
    let native = run_native(&guest.path, &[] as &[&str], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
    assert!(
        native
            .stdout
            .contains("another uid there\n  target dumpable 1\n  attach: attached\n"),
        "{native}"
    );
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_same_with(&native, &ruml, |s| s.to_string());
}
