//! Dumpability follows credential changes as Linux's commit_creds makes it
//! (fs.suid_dumpable 0): tests/guest/dumpable.c, differential against the
//! host.

mod common;

use common::{differential, Flavour};

/// PR_GET_DUMPABLE after set*id, setfsuid, setgroups and capset, the owner
/// of /proc/self/status, same-uid PTRACE_ATTACH before and after
/// PR_SET_DUMPABLE 1, unshare(CLONE_NEWUSER), and exec with the effective gid unlike the real one.
#[test]
fn credential_changes_clear_dumpable() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("credential_changes_clear_dumpable: needs root natively; skipped");
        return;
    }
    // The host must behave as ruml does (fs.suid_dumpable 0, the default).
    let suid_dumpable = std::fs::read_to_string("/proc/sys/fs/suid_dumpable").unwrap_or_default();
    if suid_dumpable.trim() != "0" {
        eprintln!("credential_changes_clear_dumpable: host fs.suid_dumpable is not 0; skipped");
        return;
    }
    let (native, _) = differential("dumpable", Flavour::Static, &[]);
    for line in [
        "after setresuid(-1, 1000, -1): dumpable 0, /proc/self/status owner 0:0\n",
        "after PR_SET_DUMPABLE 1: dumpable 1, /proc/self/status owner 1000:0\n",
        "after setresuid back to 0: dumpable 0,",
        "after setresuid to the same ids: dumpable 1,",
        "after setegid(1000): dumpable 0,",
        "after setfsuid(1000): dumpable 0,",
        "after setgroups: dumpable 1,",
        "after capset dropping CAP_NET_RAW: dumpable 1,",
        "target after setresuid(1000): dumpable 0\nsame-uid attach to it: EPERM\n",
        "target after PR_SET_DUMPABLE 1: dumpable 1\nsame-uid attach to it: attached\n",
        "after unshare(CLONE_NEWUSER) as root: dumpable 1\n",
        "after unshare(CLONE_NEWUSER) as user: dumpable 1\n",
        "exec with egid 1000, rgid 0: dumpable 0,",
        "exec child: exit 0\n",
    ] {
        assert!(
            native.stdout.contains(line),
            "native lacks {line:?}:\n{native}"
        );
    }
}
