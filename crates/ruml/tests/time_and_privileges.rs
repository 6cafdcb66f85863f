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

/// Whether the host's root may raise hard resource limits
/// (CAP_SYS_RESOURCE, which a container's root may lack).
fn host_has_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// nice and scheduling policies with Linux's privilege rules, as root and
/// as an unprivileged user with and without RLIMIT_NICE/RLIMIT_RTPRIO
/// (tests/guest/sched_privs.c); sched_setattr/sched_getattr errors.
#[test]
fn sched_and_nice_privileges() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("sched_and_nice_privileges: needs root natively; skipped");
        return;
    }
    let args: &[&str] = if host_has_sys_resource() {
        &["limits"]
    } else {
        &[]
    };
    let (native, _) = differential("sched_privs", Flavour::Static, args);
    assert_ok(&native);
}

/// The part the host may not be able to run (raised hard limits), under
/// ruml alone: the values Linux's rules give.
#[test]
fn sched_with_raised_limits_inside() {
    let guest = common::build_guest("sched_privs", Flavour::Static);
    let out = common::run_ruml(&guest.path, &["limits"], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    for want in [
        "setpriority -10: 0\n",
        "setpriority -11: EACCES\n",
        "getpriority: nice -10\n",
        "SCHED_FIFO 21: EPERM\n",
        "SCHED_FIFO 20: 0\n",
        "sched_setparam 25: EPERM\n",
        "rr: policy=0x2 prio=5 nice=-10\n",
        "IDLE -> OTHER with RLIMIT_NICE: 0\n",
    ] {
        assert!(out.stdout.contains(want), "missing {want:?}:\n{out}");
    }
}
