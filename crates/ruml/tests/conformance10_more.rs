//! Issue 10, the remaining items, differential against the host where the
//! host can run them (tests/guest/conf10_more.c): O_NOATIME for owners
//! only, personality(2), time namespaces and /proc/PID/timens_offsets;
//! /proc/config.gz; fspick and open_tree(OPEN_TREE_CLONE|AT_RECURSIVE).

mod common;

use common::{Flavour, Output};

use common::host_is_root as is_root;

fn assert_ok(out: &Output) {
    assert_eq!(out.code(), 0, "run failed:\n{out}");
    assert!(
        out.stdout.ends_with("result: OK\n") && !out.stdout.contains("FAIL"),
        "a check failed:\n{out}"
    );
}

/// open(O_NOATIME) and fcntl(F_SETFL, O_NOATIME) by a user who does not
/// own the file: EPERM (after the permission check's EACCES); the owner
/// and root may; clearing the flag is anybody's.
#[test]
fn noatime_only_for_owners() {
    if !is_root() {
        eprintln!("noatime_only_for_owners: needs root natively (setuid); skipped");
        return;
    }
    let guest = common::build_guest("conf10_more", Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("noatime");
    let native = common::run_native(
        &guest.path,
        &["noatime".as_ref(), dir.path().as_os_str()],
        &env,
    );
    assert_ok(&native);
    assert!(
        native.stdout.contains("user open roots O_NOATIME: EPERM\n"),
        "{native}"
    );
    let script = format!(
        "d=/tmp/ruml-noatime-{}; mkdir $d && exec {} noatime $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}

/// personality(2): queries, any 32-bit value kept, UNAME26's release,
/// READ_IMPLIES_EXEC on mmap/mprotect, ADDR_NO_RANDOMIZE kept by exec
/// and giving the same layout twice.
#[test]
fn personality_flags() {
    let (native, _) = common::differential("conf10_more", Flavour::Static, &["personality"]);
    assert_ok(&native);
}

#[test]
fn personality_flags_dynamic() {
    let (native, _) = common::differential("conf10_more", Flavour::Dynamic, &["personality"]);
    assert_ok(&native);
}

/// Time namespaces: /proc/PID/timens_offsets parsing and errors (EINVAL,
/// ERANGE, EACCES once entered, EPERM unprivileged), clocks shifted in
/// children, after exec, through the vDSO and the system call; absolute
/// clock_nanosleep and timerfd in the namespace's clock; vfork children
/// stay behind.
#[test]
fn time_namespace_offsets() {
    if !is_root() {
        eprintln!("time_namespace_offsets: needs root natively; skipped");
        return;
    }
    let (native, _) = common::differential("conf10_more", Flavour::Static, &["timens"]);
    assert_ok(&native);
}

#[test]
fn time_namespace_offsets_dynamic() {
    if !is_root() {
        eprintln!("time_namespace_offsets_dynamic: needs root natively; skipped");
        return;
    }
    let (native, _) = common::differential("conf10_more", Flavour::Dynamic, &["timens"]);
    assert_ok(&native);
}

/// util-linux's unshare -T with --monotonic/--boottime (it writes
/// /proc/self/timens_offsets, then execs into the namespace).
#[test]
fn unshare_time_namespace() {
    let script = "unshare -T --monotonic 1000 --boottime 2000 cat /proc/self/timens_offsets; \
                  unshare -T --monotonic 1000 sh -c 'test $(cut -d. -f1 /proc/uptime) -ge 2000 || echo uptime-below'; \
                  echo rc=$?";
    let env = common::test_env();
    let ruml = common::run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    let want = "monotonic        1000         0\nboottime         2000         0\n";
    assert!(ruml.stdout.starts_with(want), "{ruml}");
    if is_root() {
        let native = common::run_native(
            "/bin/sh",
            &[
                "-c",
                "unshare -T --monotonic 1000 --boottime 2000 cat /proc/self/timens_offsets",
            ],
            &env,
        );
        assert_eq!(native.stdout, want, "{native}");
    }
}

/// /proc/config.gz: a gzip stream zcat reads, describing ruml (not the
/// host): what ruml implements is =y, what it lacks is not set.
#[test]
fn proc_config_gz() {
    let script = "zcat /proc/config.gz > /tmp/cfg && \
                  grep -E '^CONFIG_(SYSVIPC|POSIX_MQUEUE|NAMESPACES|TIME_NS|IKCONFIG_PROC|EPOLL)=y$' /tmp/cfg; \
                  grep -E '^# CONFIG_(MODULES|BPF_SYSCALL) is not set$' /tmp/cfg; \
                  gzip -t /proc/config.gz && echo gzip-ok; ls -l /proc/config.gz | cut -c1-10";
    let ruml = common::run_ruml("/bin/sh", &["-c", script], &common::test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    for want in [
        "CONFIG_SYSVIPC=y\n",
        "CONFIG_POSIX_MQUEUE=y\n",
        "CONFIG_NAMESPACES=y\n",
        "CONFIG_TIME_NS=y\n",
        "CONFIG_IKCONFIG_PROC=y\n",
        "CONFIG_EPOLL=y\n",
        "# CONFIG_MODULES is not set\n",
        "# CONFIG_BPF_SYSCALL is not set\n",
        "gzip-ok\n",
        "-r--r--r--\n",
    ] {
        assert!(ruml.stdout.contains(want), "missing {want:?}:\n{ruml}");
    }
}

/// fspick + fsconfig(FSCONFIG_CMD_RECONFIGURE) remounts a filesystem
/// read-only and back (its clones too, not its submounts); a picked
/// context cannot create or be mounted (EBUSY), an fsopen one cannot
/// reconfigure; open_tree(OPEN_TREE_CLONE|AT_RECURSIVE) copies the
/// submounts, without AT_RECURSIVE only the top.
#[test]
fn fspick_and_recursive_open_tree() {
    if !is_root() {
        eprintln!("fspick_and_recursive_open_tree: needs root natively (mounts); skipped");
        return;
    }
    let guest = common::build_guest("conf10_more", Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("mountapi");
    let native = common::run_native(
        &guest.path,
        &["mountapi".as_ref(), dir.path().as_os_str()],
        &env,
    );
    assert_ok(&native);
    let script = format!(
        "d=/tmp/ruml-mountapi-{}; mkdir $d && exec {} mountapi $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}
