//! The command line: the boot log, `quiet`, and ruml's exit status.

mod common;

use common::{run_ruml_raw, test_env};

/// `[    0.000123] ` as dmesg prints it.
fn is_dmesg_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some(close) = rest.find(']') else {
        return false;
    };
    let stamp = rest[..close].trim_start();
    let after = &rest[close + 1..];
    let Some((secs, micros)) = stamp.split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && micros.len() == 6
        && micros.bytes().all(|b| b.is_ascii_digit())
        && after.starts_with(' ')
}

#[test]
fn dmesg_format_helper() {
    assert!(is_dmesg_line("[    0.000123] Linux version"));
    assert!(is_dmesg_line("[12345.123456] x"));
    assert!(!is_dmesg_line("[ 0.12] x"));
    assert!(!is_dmesg_line("hello"));
}

#[test]
fn boot_log_checks_host_features() {
    let out = run_ruml_raw(&["--", "/bin/true"], &test_env());
    assert!(out.stdout.is_empty(), "nothing should reach stdout:\n{out}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        !lines.is_empty(),
        "no boot log on stderr without `quiet`:\n{out}"
    );
    let bad: Vec<&&str> = lines.iter().filter(|l| !is_dmesg_line(l)).collect();
    assert!(
        bad.is_empty(),
        "boot log lines not in dmesg format `[    0.000123] ...`:\n{bad:#?}\n{out}"
    );
    for want in [
        "Checking that ptrace can change system call numbers...OK",
        "Checking syscall emulation for ptrace...OK",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "boot log lacks {want:?}:\n{out}"
        );
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "ruml -- /bin/true should exit 0:\n{out}"
    );
}

#[test]
fn quiet_hides_the_boot_log() {
    let out = run_ruml_raw(&["quiet", "--", "/bin/true"], &test_env());
    assert_eq!(out.status.code(), Some(0), "{out}");
    assert!(
        out.stderr.is_empty(),
        "`quiet` should leave stderr empty:\n{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn echo_hi() {
    let out = run_ruml_raw(&["quiet", "--", "/bin/echo", "hi"], &test_env());
    assert_eq!(out.stdout, "hi\n", "{out}");
    assert_eq!(out.status.code(), Some(0), "{out}");
}

#[test]
fn exit_status_of_init_is_ruml_exit_status() {
    let out = run_ruml_raw(&["quiet", "--", "/bin/sh", "-c", "exit 7"], &test_env());
    assert_eq!(
        out.status.code(),
        Some(7),
        "ruml should exit with init's status 7:\n{out}"
    );
    let out = run_ruml_raw(&["quiet", "--", "/bin/false"], &test_env());
    assert_eq!(
        out.status.code(),
        Some(1),
        "ruml -- /bin/false should exit 1:\n{out}"
    );
}

#[test]
fn init_is_pid_1() {
    let out = run_ruml_raw(&["quiet", "--", "/bin/sh", "-c", "echo $$"], &test_env());
    assert_eq!(out.stdout, "1\n", "init should be pid 1:\n{out}");
    assert_eq!(out.status.code(), Some(0), "{out}");
}

/// reboot(2) (tests/guest/reboot.c; never run natively): argument errors,
/// EPERM without CAP_SYS_BOOT, RESTART boots the instance afresh in the
/// same host process (a host mount carries a note across), POWER_OFF ends
/// it with status 0.
#[test]
fn reboot_restarts_and_powers_off() {
    let guest = common::build_guest("reboot", common::Flavour::Static);
    let dir = common::TempDir::new("reboot");
    let mount = format!("mount={}:/rb", dir.path().display());
    let out = common::run_ruml_raw(
        &["quiet", &mount, "--", guest.path.to_str().unwrap(), "/rb"],
        &common::test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout,
        "bad magic1: EINVAL\nbad magic2: EINVAL\nbad command: EINVAL\nCAD_OFF: ok\n\
         as nobody: EPERM\nfirst boot: restarting\nsecond boot: pid 1\n",
        "{out}"
    );
}

/// `ruml -- CMD` starts init in the host's current directory when the
/// root holds it (so `ruml -- ./prog` works), `cwd=` overrides it, and a
/// `cwd=` that is no directory in the guest leaves init in `/` with a
/// warning.
#[test]
fn init_starts_in_the_current_directory() {
    let dir = common::TempDir::new("cwd");
    std::fs::copy("/bin/pwd", dir.path().join("mypwd")).unwrap();
    let run = |params: &[&str], prog: &str| {
        let mut cmd = std::process::Command::new(common::ruml_bin());
        cmd.arg("quiet")
            .args(params)
            .args(["--", prog])
            .current_dir(dir.path());
        common::run_command(
            cmd,
            &test_env(),
            format!("ruml {params:?} -- {prog}"),
            common::TIMEOUT,
        )
    };
    let here = std::fs::canonicalize(dir.path()).unwrap();
    let out = run(&[], "./mypwd");
    assert_eq!(out.stdout.trim_end(), here.to_str().unwrap(), "{out}");
    let out = run(&["cwd=/etc"], "/bin/pwd");
    assert_eq!(out.stdout, "/etc\n", "{out}");
    let out = run(&["cwd=/no/such/dir"], "/bin/pwd");
    assert_eq!(out.stdout, "/\n", "{out}");
    assert!(out.stderr.contains("cwd /no/such/dir"), "{out}");
}
