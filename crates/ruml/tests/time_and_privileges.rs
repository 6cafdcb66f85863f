//! Issue 10's time, privilege and /proc/sys rules, differential against the
//! host: CPU-time clocks and POSIX timers on them (tests/guest/cpu_clocks.c).

mod common;

use common::{differential, host_has_sys_resource, Flavour, Output};

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

/// /proc/sys files exist and read as their kind (integers, text) as on
/// the host; none opens for writing by an unprivileged user
/// (tests/guest/proc_sys.c). Values are the machine's: not compared.
#[test]
fn proc_sys_files() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("proc_sys_files: needs root natively (drops to another uid); skipped");
        return;
    }
    let (native, _) = differential("proc_sys", Flavour::Static, &[]);
    assert_ok(&native);
}

/// Writable sysctls have their effect, inside ruml only (a native run
/// would change the host): fs.pipe-max-size bounds F_SETPIPE_SZ for the
/// unprivileged and rounds to a power of two; kernel.printk sets the
/// console level; kernel.dmesg_restrict; read-only files refuse root too;
/// malformed values are EINVAL.
#[test]
fn proc_sys_writes_inside() {
    let script = r#"
import fcntl, os
def rd(p): return open('/proc/sys/' + p).read()
def wr(p, v):
    try:
        with open('/proc/sys/' + p, 'w') as f: f.write(v)
        return 'ok'
    except OSError as e: return e.strerror
print('pipe-max-size 5000:', wr('fs/pipe-max-size', '5000\n'), rd('fs/pipe-max-size').strip())
print('pipe-max-size abc:', wr('fs/pipe-max-size', 'abc'))
print('pipe-max-size huge:', wr('fs/pipe-max-size', '4294967296'))
r, w = os.pipe()
try:
    print('root F_SETPIPE_SZ 65536:', fcntl.fcntl(w, 1031, 65536))
except OSError as e: print('root F_SETPIPE_SZ 65536:', e.strerror)
print('printk:', wr('kernel/printk', '3 4 1 7'), rd('kernel/printk').split())
print('dmesg_restrict 0:', wr('kernel/dmesg_restrict', '0'), rd('kernel/dmesg_restrict').strip())
print('dmesg_restrict 2:', wr('kernel/dmesg_restrict', '2'))
print('max_map_count (read-only):', wr('vm/max_map_count', '1'))
pid = os.fork()
if pid == 0:
    os.setgid(12345); os.setuid(12345)
    try:
        print('user F_SETPIPE_SZ 8192:', fcntl.fcntl(w, 1031, 8192))
    except OSError as e: print('user F_SETPIPE_SZ 8192:', e.strerror)
    try:
        print('user F_SETPIPE_SZ 16384:', fcntl.fcntl(w, 1031, 16384))
    except OSError as e: print('user F_SETPIPE_SZ 16384:', e.strerror)
    print('user write:', wr('fs/pipe-max-size', '65536'))
    os._exit(0)
os.waitpid(pid, 0)
"#;
    let out = common::run_ruml(
        "/usr/bin/python3",
        &["-u", "-c", script],
        &common::test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    for want in [
        "pipe-max-size 5000: ok 8192\n",
        "pipe-max-size abc: Invalid argument\n",
        "pipe-max-size huge: Invalid argument\n",
        "root F_SETPIPE_SZ 65536: 65536\n",
        "printk: ok ['3', '4', '1', '7']\n",
        "dmesg_restrict 0: ok 0\n",
        "dmesg_restrict 2: Invalid argument\n",
        "max_map_count (read-only): Permission denied\n",
        "user F_SETPIPE_SZ 8192: 8192\n",
        "user F_SETPIPE_SZ 16384: Operation not permitted\n",
        "user write: Permission denied\n",
    ] {
        assert!(out.stdout.contains(want), "missing {want:?}:\n{out}");
    }
}

/// setgid directories pass their group (and to subdirectories the bit)
/// on, chmod by a non-member drops S_ISGID, writes and truncates by a
/// caller without CAP_FSETID and chown clear the set-id bits
/// (tests/guest/setgid_dirs.c), natively in a scratch directory and under
/// ruml in the guest's /tmp (tmpfs).
#[test]
fn setgid_directories_and_setid_bits() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("setgid_directories_and_setid_bits: needs root natively; skipped");
        return;
    }
    let guest = common::build_guest("setgid_dirs", Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("setgid");
    let native = common::run_native(&guest.path, &[dir.path().as_os_str()], &env);
    assert_ok(&native);
    let script = format!(
        "d=/tmp/ruml-setgid-{}; mkdir $d && exec {} $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}
