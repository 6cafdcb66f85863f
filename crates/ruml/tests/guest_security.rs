//! The guest's own security state: seccomp filters evaluated by ruml's
//! kernel on guest system calls (tests/guest/seccomp_filter.c,
//! tests/guest/seccomp_fuzz.c) and capabilities with Linux's rules
//! (tests/guest/capabilities.c, the host's capsh and ping). The C
//! programs run natively and under ruml and must print the same; they
//! need root natively (setuid, filters without no_new_privs).

mod common;

use common::{assert_same, run_native, run_ruml, test_env, Flavour};

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn differential_as_root(name: &str, flavour: Flavour) {
    if !is_root() {
        eprintln!("{name}: needs root natively; skipped");
        return;
    }
    common::differential(name, flavour, &[]);
}

/// getpid → EPERM, kill → SIGSYS trap (siginfo printed by the handler),
/// ERRNO capping, TRACE and USER_NOTIF without a tracer or listener, LOG,
/// stacking and precedence, KILL_PROCESS / KILL_THREAD, inheritance across
/// fork and exec, no_new_privs rules, strict mode, bad filters (EINVAL,
/// EFAULT, ENOMEM), and a USER_NOTIF supervisor (RECV, SEND, CONTINUE,
/// ID_VALID, ADDFD, an interrupted and a killed notified call, ENOSYS
/// once the listener is closed).
#[test]
fn seccomp_filters_static() {
    differential_as_root("seccomp_filter", Flavour::Static);
}

#[test]
fn seccomp_filters_dynamic() {
    differential_as_root("seccomp_filter", Flavour::Dynamic);
}

/// Hostile input: 300 random BPF programs (fixed seed) fed to seccomp(),
/// each followed by a system call in the filtered child: the same errnos,
/// exits and signals as Linux, and no harm to the kernel.
#[test]
fn seccomp_random_filters() {
    differential_as_root("seccomp_fuzz", Flavour::Static);
}

/// capget/capset, bounding set, keepcaps and securebits, setuid/seteuid/
/// setfsuid transitions, ambient capabilities and the execve
/// transformation, as root and as uid 1000.
#[test]
fn capabilities_static() {
    differential_as_root("capabilities", Flavour::Static);
}

#[test]
fn capabilities_dynamic() {
    differential_as_root("capabilities", Flavour::Dynamic);
}

/// The capabilities missing from this process's bounding set (a container
/// may lack some), for capsh --drop so that the guest matches the host.
fn missing_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    (0..=40)
        .filter(|c| bnd & (1u64 << c) == 0)
        .map(|c| c.to_string())
        .collect()
}

/// The host's capsh (libcap2-bin): --print after capsh itself changed the
/// sets, kept them across setuid to nobody and raised an ambient
/// capability, then exec'd capsh again.
#[test]
fn capsh_print() {
    if !is_root() {
        eprintln!("capsh_print: needs root natively; skipped");
        return;
    }
    let capsh = "/usr/sbin/capsh";
    assert!(
        std::path::Path::new(capsh).exists(),
        "{capsh} is missing (Debian's libcap2-bin)"
    );
    let missing = missing_caps();
    let env = test_env();
    let mut scripts: Vec<Vec<String>> = vec![
        vec![],
        vec![
            "--caps=cap_net_raw,cap_setuid,cap_setgid,cap_setpcap+eip".into(),
            "--keep=1".into(),
            "--user=nobody".into(),
            "--addamb=cap_net_raw".into(),
        ],
        vec!["--secbits=0x2f".into()],
    ];
    for s in scripts.iter_mut() {
        if !missing.is_empty() {
            s.insert(0, format!("--drop={}", missing.join(",")));
        }
        s.extend(["--".into(), "-c".into(), "exec capsh --print".into()]);
    }
    for args in scripts {
        let native = run_native(capsh, &args, &env);
        assert_eq!(native.code(), 0, "native capsh failed:\n{native}");
        let ruml = run_ruml(capsh, &args, &env);
        assert_same(&native, &ruml);
    }
}

/// iputils ping (which drops to CAP_NET_RAW with PR_SET_KEEPCAPS and
/// capset) answers on loopback inside ruml.
#[test]
fn ping_loopback() {
    let env = test_env();
    let ping = "/bin/ping";
    assert!(
        std::path::Path::new(ping).exists(),
        "{ping} is missing (iputils-ping)"
    );
    let ruml = run_ruml(ping, &["-c1", "127.0.0.1"], &env);
    assert_eq!(ruml.code(), 0, "ping failed in ruml:\n{ruml}");
    assert!(
        ruml.stdout.contains("1 packets transmitted, 1 received"),
        "ping did not get its answer:\n{ruml}"
    );
}

/// /proc/PID/status shows the real sets, ids and seccomp state.
#[test]
fn proc_status_security_lines() {
    let env = test_env();
    let script = "grep -E '^(Uid|Gid|Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
                  exec setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all \
                  grep -E '^(Uid|Gid|CapPrm|CapEff)' /proc/self/status";
    let ruml = run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    let want = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
                CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n\
                CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n\
                Seccomp_filters:\t0\n\
                Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\
                CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
    assert_eq!(ruml.stdout, want, "{ruml}");
}

/// SECCOMP_RET_TRACE with and without a guest tracer: ENOSYS untraced; a
/// PTRACE_EVENT_SECCOMP stop with the filter's data for a tracer that
/// asked, which lets the call run or skips it with its own result.
#[test]
fn seccomp_trace_stops_for_the_tracer() {
    let (native, _) = common::differential("seccomp_trace", common::Flavour::Static, &[]);
    assert!(
        native
            .stdout
            .contains("getuid skipped by the tracer: -1 EPERM"),
        "{native}"
    );
}
