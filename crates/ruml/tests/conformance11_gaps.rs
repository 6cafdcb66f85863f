//! Linux conformance II, the gaps the audit of issue #11 found
//! (docs/conformance.md), differential: mremap(MREMAP_DONTUNMAP)
//! (tests/guest/mremap_dontunmap.c); inotify's close and deletion events
//! (tests/guest/inotify_gone.c); fs.suid_dumpable (tests/guest/
//! suid_dumpable.c, ruml only).

mod common;

use common::{differential, Flavour};

/// MREMAP_DONTUNMAP: the pages move, the old range stays mapped and
/// empty (zeros for private anonymous memory, the file's pages for a
/// private file mapping, the same object for shared ones), the new
/// address is a hint, the lock moves; the errors in Linux's order.
#[test]
fn mremap_dontunmap() {
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let (native, _ruml) = differential("mremap_dontunmap", flavour, &[]);
        assert_eq!(native.code(), 0, "{native}");
        for line in [
            "resize                                   EINVAL",
            "unmapped                                 EFAULT",
            "  contents                               new abcd old ....",
            "  contents                               new bc old a..d",
            "  contents                               new Xg old fg",
            "  smaps Locked                           new 8 kB old 0 kB",
        ] {
            assert!(native.stdout.contains(line), "{line:?} in {native}");
        }
    }
}

/// inotify: IN_CLOSE_* when the last reference goes (a dup, a fork's
/// copy, a mapping hold the file), IN_DELETE_SELF and IN_IGNORED when
/// the inode is gone (last link and last reference), a rename over a
/// watched file, rmdir; a file renamed within its directory while open
/// still reports to IN_EXCL_UNLINK watches, by its new name
/// (tests/guest/inotify_gone.c).
#[test]
fn inotify_delete_self_when_gone() {
    let (native, _ruml) = differential("inotify_gone", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "close one:                        \n",
        "close the other:                   [wd 2 0x10] [wd 2 0x400] [wd 2 0x8000]\n",
        "munmap:                            [wd 3 0x8] [wd 3 0x400] [wd 3 0x8000]\n",
        "child exited:                      [wd 4 0x10] [wd 4 0x400] [wd 4 0x8000]\n",
        "write after rename k->l:           [wd 9 0x2 l]\n",
        "write after unlink:               \n",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

/// fs.suid_dumpable 0, 1 and 2 with the core dump code
/// (tests/guest/suid_dumpable.c). Ruml only: natively it would change
/// the host's global sysctl. The expected lines are Linux's rules
/// (commit_creds, do_coredump): 1 keeps a process whose credentials
/// changed dumpable as itself; 2 makes PR_GET_DUMPABLE 2, /proc/self
/// root's, and writes its core as root only to an absolute core_pattern,
/// never over an existing file; fork copies dumpability.
#[test]
fn suid_dumpable_modes() {
    let guest = common::build_guest("suid_dumpable", Flavour::Static);
    let out = common::run_ruml(&guest.path, &["/tmp"], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let want = "\
/proc/sys/fs/suid_dumpable: 0
write 3: EINVAL
write -1: EINVAL
write x: EINVAL
PR_SET_DUMPABLE 2: EINVAL
mode 0: dumpable 0, fork child 0, /proc/self/status owner 0
mode 0: signal 11, core dumped 0, file 0
write 1: ok
/proc/sys/fs/suid_dumpable: 1
mode 1: dumpable 1, fork child 1, /proc/self/status owner 1000
mode 1: signal 11, core dumped 1, file 1, owner 1000, mode 600
write 2: ok
mode 2, relative pattern: dumpable 2, fork child 2, /proc/self/status owner 0
mode 2, relative pattern: signal 11, core dumped 0, file 0
/proc/sys/kernel/core_pattern: /tmp/abs-core
mode 2, absolute pattern: dumpable 2, fork child 2, /proc/self/status owner 0
mode 2, absolute pattern: signal 11, core dumped 1, file 1, owner 0, mode 600
mode 2, existing file: core dumped 0, size 0
mode 2, unchanged credentials: dumpable 1
write 0: ok
";
    assert_eq!(out.stdout, want, "{out}");
}

/// times(2) and getrusage(RUSAGE_CHILDREN) count children when a wait
/// reaps them (with what they reaped), not zombies nor children reaped
/// automatically (tests/guest/rusage_children.c).
#[test]
fn rusage_of_reaped_children() {
    let (native, _ruml) = differential("rusage_children", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "zombie, not reaped: rusage zero\n",
        "reaped: rusage >= 0.15 s yes, times >= 0.15 s yes\n",
        "added >= 0.15 s yes\n",
        "SIGCHLD ignored: waitpid ECHILD, added nothing\n",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}
