//! Core dumps (tests/guest/coredump.c): a process killed by a core signal
//! with RLIMIT_CORE set leaves an ELF core file and the core bit in its
//! wait status; the host's gdb reads the file and shows the backtrace.

mod common;

use common::{build_guest, run_native, run_ruml_raw, test_env, Flavour, TempDir};

const EXPECTED: &str = "\
dumpable: 1
abort: signaled 1, signal 6, core dumped 1
abort: core file: regular 1, mode 600, ELF 1, ET_CORE 1, x86_64 1, program headers 1
RLIMIT_CORE 0: signaled 1, signal 11, core dumped 0
RLIMIT_CORE 0: no core file
dumpable after PR_SET_DUMPABLE 0: 0
undumpable: signaled 1, signal 11, core dumped 0
undumpable: no core file
SIGTERM: signaled 1, signal 15, core dumped 0
SIGTERM: no core file
segv: signaled 1, signal 11, core dumped 1
segv: core file: regular 1, mode 600, ELF 1, ET_CORE 1, x86_64 1, program headers 1
";

fn gdb_backtrace(prog: &std::path::Path, core: &std::path::Path) -> String {
    let out = std::process::Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "bt"])
        .arg(prog)
        .arg(core)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gdb (apt-get install gdb): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn coredump(flavour: Flavour) {
    let guest = build_guest("coredump", flavour);
    let env = test_env();
    let dir = TempDir::new("coredump");
    let mount = format!("mount={}:/cd", dir.path().display());
    let ruml = run_ruml_raw(
        &["quiet", &mount, "--", guest.path.to_str().unwrap(), "/cd"],
        &env,
    );
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert_eq!(ruml.stdout, EXPECTED, "{ruml}");
    // Where the host writes plain "core" files too, the native run is the
    // oracle (elsewhere core_pattern may pipe to a collector).
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim() == "core" {
        let ndir = TempDir::new("coredump-native");
        let native = run_native(&guest.path, &[ndir.path().as_os_str()], &env);
        common::assert_same(&native, &ruml);
    }
    let bt = gdb_backtrace(&guest.path, &dir.path().join("core"));
    for f in ["crash_here", "level2", "level1", "segv_child", "main"] {
        assert!(
            bt.contains(&format!(" {f} (")),
            "gdb's backtrace lacks {f}:\n{bt}"
        );
    }
    assert!(
        bt.contains("x=x@entry=41"),
        "gdb read no arguments from the core:\n{bt}"
    );
}

#[test]
fn coredump_static() {
    coredump(Flavour::Static);
}

#[test]
fn coredump_dynamic() {
    coredump(Flavour::Dynamic);
}

/// /proc/sys/kernel/core_pattern is read and honoured (%e, %s), and a
/// piped pattern writes no core.
#[test]
fn core_pattern_is_honoured() {
    let dir = TempDir::new("core-pattern");
    let mount = format!("mount={}:/cd", dir.path().display());
    let script = "cat /proc/sys/kernel/core_pattern; \
                  echo 'dump-%e-%s' > /proc/sys/kernel/core_pattern && cat /proc/sys/kernel/core_pattern; \
                  cd /cd && ulimit -c unlimited && sh -c 'kill -SEGV $$'; echo status $?; ls /cd; \
                  echo '|/bin/false' > /proc/sys/kernel/core_pattern; sh -c 'kill -ABRT $$'; echo status $?; ls /cd";
    let out = run_ruml_raw(
        &["quiet", &mount, "--", "/bin/sh", "-c", script],
        &test_env(),
    );
    assert_eq!(
        out.stdout, "core\ndump-%e-%s\nstatus 139\ndump-sh-11\nstatus 134\ndump-sh-11\n",
        "{out}"
    );
}
