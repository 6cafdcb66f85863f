//! Issue 10's time, privilege and /proc/sys rules, differential against the
//! host: CPU-time clocks and POSIX timers on them (tests/guest/cpu_clocks.c).

mod common;

use common::{differential, Flavour, Output};

fn assert_ok(native: &Output) {
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.ends_with("result: OK\n") && !native.stdout.contains("FAIL"),
        "native run reports a failed check:\n{native}"
    );
}

/// clock_getcpuclockid/pthread_getcpuclockid clocks, their errors, timers
/// that fire as CPU time passes, clock_nanosleep on a process clock.
#[test]
fn cpu_clocks_and_timers() {
    let (native, _) = differential("cpu_clocks", Flavour::Static, &[]);
    assert_ok(&native);
}

#[test]
fn cpu_clocks_and_timers_dynamic() {
    let (native, _) = differential("cpu_clocks", Flavour::Dynamic, &[]);
    assert_ok(&native);
}
