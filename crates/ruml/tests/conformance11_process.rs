//! Linux conformance II, processes: kcmp(2), reboot(2)'s order of checks
//! and the kernel features ruml is built without (tests/guest/
//! priv_errnos.c); RLIMIT_SIGPENDING (tests/guest/sigpending_limit.c).

mod common;

use common::{differential, host_is_root, Flavour};

/// kcmp as Linux: files shared by dup and fork, address space, descriptor
/// table, filesystem context and handlers shared by threads and not by
/// fork, epoll watches (KCMP_EPOLL_TFD), and the errors (EBADF, EINVAL,
/// ESRCH, ENOENT, EFAULT, EPERM without ptrace access); an unprivileged
/// reboot gets EPERM before its magic numbers are looked at.
#[test]
fn kcmp_and_unprivileged_reboot_as_linux() {
    let args: &[&str] = if host_is_root() { &["root"] } else { &[] };
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let (native, ruml) = differential("priv_errnos", flavour, args);
        assert_eq!(native.code(), 0, "{native}");
        assert!(native.stdout.contains("epoll target: equal\n"), "{native}");
        assert!(ruml.stdout.contains("thread vm: equal\n"), "{ruml}");
    }
}

/// Module loading, process accounting, port I/O, BPF, perf events,
/// userfaultfd, kexec, swap and quotas are features ruml's kernel does not
/// have: as a Linux built without them, their calls give ENOSYS, and
/// /proc/config.gz says they are not set (and that kcmp is).
#[test]
fn configured_out_features_give_enosys_and_config_says_so() {
    let guest = common::build_guest("priv_errnos", Flavour::Static);
    let env = common::test_env();
    let ruml = common::run_ruml(&guest.path, &["nosys"], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    let lines: Vec<&str> = ruml.stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{ruml}");
    for line in lines {
        assert!(line.ends_with(": -1 ENOSYS"), "{line}\n{ruml}");
    }
    let cfg = common::run_ruml("/bin/sh", &["-c", "zcat /proc/config.gz"], &env);
    assert_eq!(cfg.code(), 0, "{cfg}");
    for opt in [
        "MODULES",
        "BSD_PROCESS_ACCT",
        "X86_IOPL_IOPERM",
        "BPF_SYSCALL",
        "PERF_EVENTS",
        "USERFAULTFD",
        "KEXEC",
        "SWAP",
        "QUOTACTL",
    ] {
        let want = format!("# CONFIG_{opt} is not set\n");
        assert!(cfg.stdout.contains(&want), "missing {want:?}:\n{cfg}");
    }
    assert!(cfg.stdout.contains("CONFIG_KCMP=y\n"), "{cfg}");
}

/// RLIMIT_SIGPENDING: sigqueue and tgkill of real-time signals past the
/// limit fail with EAGAIN, kill() merges into the pending instance, a
/// classic signal still arrives.
#[test]
fn sigpending_limit_as_linux() {
    if !host_is_root() {
        eprintln!("sigpending_limit_as_linux: needs root natively (a user of its own); skipped");
        return;
    }
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let (native, ruml) = differential("sigpending_limit", flavour, &[]);
        assert_eq!(native.code(), 0, "{native}");
        assert!(ruml.stdout.contains("tgkill: EAGAIN\n"), "{ruml}");
    }
}
