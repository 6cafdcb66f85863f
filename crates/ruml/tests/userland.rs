//! The host's Debian userland inside ruml (issue 4): a shell script using
//! shell features, coreutils, archives, text tools, python3 and perl, run
//! natively and under ruml (in the overlay root's /tmp); and a real C
//! project of 12 translation units built with `make -j2` inside ruml.

mod common;

use std::fmt::Write as _;

#[test]
fn userland_script_matches_native() {
    let script = common::workspace_root().join("tests/scripts/userland.sh");
    let env = common::test_env();
    let dir = common::TempDir::new("userland");
    let native = common::run_native(
        "/bin/sh",
        &[script.as_os_str(), dir.path().as_os_str()],
        &env,
    );
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.contains("== perl"), "{native}");
    // Under ruml the scratch directory is in the guest's /tmp (the overlay's
    // writable upper layer): nothing of it reaches the host.
    let ruml = common::run_ruml(
        "/bin/sh",
        &[script.to_str().unwrap_or_default(), "/tmp/userland-scratch"],
        &env,
    );
    common::assert_same_with(&native, &ruml, |s| {
        s.replace("/tmp/userland-scratch", "SCRATCH")
            .replace(dir.path().to_str().unwrap_or("-"), "SCRATCH")
    });
    assert!(
        !std::path::Path::new("/tmp/userland-scratch").exists(),
        "the guest's /tmp leaked to the host"
    );
}

#[test]
fn make_j2_builds_a_multi_file_project() {
    let dir = common::TempDir::new("cbuild");
    let n = 12;
    let mut main = String::from("#include <stdio.h>\n");
    let mut objs = String::new();
    for i in 0..n {
        std::fs::write(
            dir.path().join(format!("f{i}.c")),
            format!("int f{i}(int x) {{ return x * {} + {i}; }}\n", i + 1),
        )
        .unwrap();
        let _ = writeln!(main, "int f{i}(int);");
        let _ = write!(objs, " f{i}.o");
    }
    main.push_str("int main(void) {\n    long s = 0;\n");
    for i in 0..n {
        let _ = writeln!(main, "    s += f{i}({});", i + 3);
    }
    main.push_str("    printf(\"sum %ld\\n\", s);\n    return 0;\n}\n");
    std::fs::write(dir.path().join("main.c"), main).unwrap();
    let makefile = format!("prog: main.o{objs}\n\tgcc -o $@ $^\n%.o: %.c\n\tgcc -O1 -c $< -o $@\nclean:\n\trm -f *.o prog\n");
    std::fs::write(dir.path().join("Makefile"), makefile).unwrap();
    let expected: i64 = (0..n)
        .map(|i| (i as i64 + 3) * (i as i64 + 1) + i as i64)
        .sum();
    let env = common::test_env();
    let mount = format!("mount={}:/src", dir.path().display());
    let out = common::run_ruml_raw(
        &[
            "quiet",
            &mount,
            "--",
            "/bin/sh",
            "-c",
            "cd /src && make -j2 >/dev/null && ./prog",
        ],
        &env,
    );
    assert_eq!(out.code(), 0, "build under ruml failed:\n{out}");
    assert_eq!(out.stdout.trim(), format!("sum {expected}"), "{out}");
    // The build wrote through the read-write mount: the binary is on the host.
    assert!(dir.path().join("prog").exists(), "prog not on the host");
    let native = common::run_native(dir.path().join("prog"), &[] as &[&str], &env);
    assert_eq!(
        native.stdout, out.stdout,
        "the ruml-built binary runs the same on the host"
    );
}

/// procps tools read ruml's own /proc: `ps aux` lists the guest's
/// processes (and only those), `top`, `free`, `uptime`, `pgrep` work.
#[test]
fn procps_tools_work() {
    let env = common::test_env();
    let out = common::run_ruml("/bin/sh", &["-c", "ps aux; echo ==; top -b -n1 | head -1; free | head -1; uptime >/dev/null && echo uptime ok; pgrep -x sh"], &env);
    assert_eq!(out.code(), 0, "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("USER") && lines[0].contains("COMMAND"),
        "{out}"
    );
    let procs: Vec<&&str> = lines.iter().skip(1).take_while(|l| **l != "==").collect();
    assert_eq!(procs.len(), 2, "only the guest's sh and ps:\n{out}");
    assert!(
        procs[0].contains(" 1 ") && procs[0].contains("sh -c"),
        "init is pid 1:\n{out}"
    );
    assert!(procs[1].contains("ps aux"), "{out}");
    assert!(
        out.stdout.contains("top - ")
            && out.stdout.contains("total")
            && out.stdout.contains("uptime ok"),
        "{out}"
    );
    assert!(
        out.stdout.trim_end().ends_with("\n1") || out.stdout.trim_end().ends_with("1"),
        "pgrep finds init:\n{out}"
    );
}
