//! Smaller system calls checked against the host: the older file-time
//! calls, futex_waitv, the instance's own clock, the kernel log (guest
//! programs in tests/guest, natively and under ruml where that is safe).

mod common;

use common::{differential, Flavour};

#[test]
fn file_times_static() {
    let (native, _) = differential("file_times", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("utimes usec 1e6: EINVAL"),
        "{native}"
    );
}

#[test]
fn file_times_dynamic() {
    differential("file_times", Flavour::Dynamic, &[]);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Setting the clock without the privilege, and the argument errors: the
/// same natively and under ruml (the program drops to nobody first, so
/// natively it cannot touch the host's clock either).
#[test]
fn time_set_errors_match_linux() {
    if !is_root() {
        eprintln!("SKIP time_set_errors_match_linux: needs root to become nobody");
        return;
    }
    let (native, _) = differential("time_set", Flavour::Static, &["nobody"]);
    assert!(native.stdout.contains("clock_settime: EPERM"), "{native}");
}

/// The instance's own wall clock (root inside the guest): set, stepped,
/// slewed, run faster; the vDSO, the system calls and file times agree,
/// MONOTONIC does not move, and the host's clock is untouched.
#[test]
fn time_set_is_the_instances_own() {
    let guest = common::build_guest("time_set", Flavour::Static);
    let host_before = std::time::SystemTime::now();
    let out = common::run_ruml(&guest.path, &[] as &[&str], &common::test_env());
    assert!(out.stdout.ends_with("result: OK\n"), "{out}");
    let drift = std::time::SystemTime::now()
        .duration_since(host_before)
        .expect("the host's clock went backwards");
    assert!(
        drift.as_secs() < 3600,
        "the host's clock moved by {drift:?}"
    );
    // date -s from the host's coreutils, inside.
    let out = common::run_ruml_raw(
        &[
            "quiet",
            "--",
            "/bin/sh",
            "-c",
            "date -s '2031-02-03 04:05:06' >/dev/null && date +%Y-%m-%d && touch /tmp/ruml-date-s.$$ && \
             ls -l --time-style=+%Y /tmp/ruml-date-s.$$ | awk '{print $6}'; rm -f /tmp/ruml-date-s.$$",
        ],
        &common::test_env(),
    );
    assert_eq!(out.stdout, "2031-02-03\n2031\n", "{out}");
    let year = std::process::Command::new("date")
        .arg("+%Y")
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&year.stdout).trim(), "2031");
}

/// The kernel's message ring: the guest's `dmesg` (util-linux, through
/// syslog(2)) shows the boot log even under `quiet` (the pattern is
/// anchored: the kernel command line, logged too, holds this script); clearing, sizes,
/// argument errors and dmesg_restrict's EPERM for other users.
#[test]
fn dmesg_reads_the_kernel_log() {
    let script = r#"
dmesg | grep -c '^\[[ 0-9.]*\] Run .* as init process'
dmesg -C; dmesg | grep -c 'Linux version'
python3 -c "
import ctypes, os
l = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(4096)
print('size', l.klogctl(10, None, 0))
print('bad action', l.klogctl(11, None, 0), os.strerror(ctypes.get_errno()))
print('null buf', l.klogctl(3, None, 10), os.strerror(ctypes.get_errno()))
print('bad buf', l.klogctl(3, ctypes.c_void_p(8), 10), os.strerror(ctypes.get_errno()))
print('level 9', l.klogctl(8, None, 9), os.strerror(ctypes.get_errno()))
os.setgid(65534); os.setuid(65534)
print('nobody', l.klogctl(3, buf, 4096), os.strerror(ctypes.get_errno()))
"
"#;
    let out = common::run_ruml_raw(
        &["quiet", "--", "/bin/sh", "-c", script],
        &common::test_env(),
    );
    assert_eq!(
        out.stdout,
        "1\n0\nsize 131072\nbad action -1 Invalid argument\nnull buf -1 Invalid argument\n\
         bad buf -1 Bad address\nlevel 9 -1 Invalid argument\nnobody -1 Operation not permitted\n",
        "{out}"
    );
}

#[test]
fn futex_waitv_static() {
    let (native, _) = differential("futex_waitv", Flavour::Static, &[]);
    assert!(native.stdout.starts_with("woken index: 2\n"), "{native}");
}

#[test]
fn futex_waitv_dynamic() {
    differential("futex_waitv", Flavour::Dynamic, &[]);
}

/// A vfork parent whose child never execs nor exits still dies of SIGKILL.
#[test]
fn vfork_parent_is_killable() {
    let (native, _) = differential("vfork_kill", Flavour::Static, &[]);
    assert!(native.stdout.contains("signaled=1 sig=9"), "{native}");
}
