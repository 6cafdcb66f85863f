//! The host's own programs (dynamic, from Debian's userland) give the same
//! output under ruml as natively: the guest's root is the host's `/`.

mod common;

use common::{assert_same, assert_same_with, run_native, run_ruml, run_ruml_raw, test_env};

fn same(prog: &str, args: &[&str]) {
    let env = test_env();
    let native = run_native(prog, args, &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let ruml = run_ruml(prog, args, &env);
    assert_same(&native, &ruml);
}

/// `ls -la /` without the `total` line and the lines of the mount points
/// ruml mounts its own filesystems on (dev, proc, sys), with runs of
/// spaces collapsed: those lines' link counts and sizes set ls's column
/// widths for every line.
fn without_mount_points(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("total "))
        .filter(|l| {
            let name = l.split_whitespace().nth(8).unwrap_or("");
            !matches!(name, "dev" | "proc" | "sys")
        })
        .map(|l| format!("{}\n", l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

/// `ruml quiet rootfstype=hostfs -- ls -la /`: the plain read-only hostfs
/// root shows the host's directories byte for byte (the default overlay
/// root reports its merged directories' own sizes and link counts).
fn ruml_ls_la_root(env: &[(String, String)]) -> common::Output {
    run_ruml_raw(
        &["quiet", "rootfstype=hostfs", "--", "/bin/ls", "-la", "/"],
        env,
    )
}

#[test]
fn ls_la_root() {
    let env = test_env();
    let native = run_native("/bin/ls", &["-la", "/"], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.contains(" usr"),
        "native ls -la / lacks usr:\n{native}"
    );
    // The host's / is live (other processes touch /tmp and friends):
    // retry a few times before calling a difference a failure.
    for _ in 0..3 {
        let ruml = ruml_ls_la_root(&env);
        let again = run_native("/bin/ls", &["-la", "/"], &env);
        if without_mount_points(&ruml.stdout) == without_mount_points(&again.stdout)
            && ruml.code() == 0
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let ruml = ruml_ls_la_root(&env);
    assert_same_with(&native, &ruml, without_mount_points);
}

#[test]
fn cat_os_release() {
    same("/bin/cat", &["/etc/os-release"]);
}

#[test]
fn env_passes_environment_through() {
    let mut env = test_env();
    env.push(("X_SPACES".into(), "a b  c".into()));
    env.push(("X_EMPTY".into(), String::new()));
    env.push(("X_EQUALS".into(), "k=v=w".into()));
    let native = run_native("/usr/bin/env", &[] as &[&str], &env);
    assert!(native.stdout.contains("X_SPACES=a b  c\n"), "{native}");
    let ruml = run_ruml("/usr/bin/env", &[] as &[&str], &env);
    assert_same(&native, &ruml);
}

#[test]
fn sh_pipeline() {
    let env = test_env();
    let args = ["-c", "for i in 1 2 3; do echo $i; done | wc -l"];
    let native = run_native("/bin/sh", &args, &env);
    assert_eq!(native.stdout.trim(), "3", "{native}");
    let ruml = run_ruml("/bin/sh", &args, &env);
    assert_same(&native, &ruml);
}

/// /proc/self/auxv holds the auxiliary vector exec gave the process: the
/// host's python3 reads it and compares entries with what it knows.
#[test]
fn proc_self_auxv() {
    let script = "import os, struct\n\
        b = open('/proc/self/auxv', 'rb').read()\n\
        v = dict(struct.iter_unpack('QQ', b))\n\
        print(len(b) % 16 == 0, b[-16:] == bytes(16))\n\
        print(v[6] == os.sysconf('SC_PAGE_SIZE'), v[4], v[11] == os.getuid(), v[23])\n";
    let env = test_env();
    let native = run_native("/usr/bin/python3", &["-c", script], &env);
    assert_eq!(native.stdout, "True True\nTrue 56 True 0\n", "{native}");
    let ruml = run_ruml("/usr/bin/python3", &["-c", script], &env);
    assert_same(&native, &ruml);
}
