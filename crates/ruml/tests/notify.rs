//! File notification and signal-driven I/O, differential against the
//! host: O_ASYNC with F_SETOWN/F_SETOWN_EX/F_SETSIG (`tests/guest/sigio.c`),
//! dnotify (`dnotify.c`), leases (`lease.c`), epoll limits (`epoll_nest.c`),
//! fanotify (`fanotify.c`).

mod common;

use common::{differential, Flavour};

#[test]
fn sigio_static() {
    let (native, _) = differential("sigio", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native
            .stdout
            .contains("pipe write: sig+2 code POLL_IN band 0x41 fd right"),
        "{native}"
    );
}

#[test]
fn sigio_dynamic() {
    differential("sigio", Flavour::Dynamic, &[]);
}

/// dnotify (F_NOTIFY): one-shot and multishot marks, every DN_* event,
/// si_fd, removal by F_NOTIFY 0 and by close (`tests/guest/dnotify.c`).
#[test]
fn dnotify_static() {
    let (native, _) = differential("dnotify", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("two writes (multishot): 2"),
        "{native}"
    );
}

/// Leases: grant rules and errors, breaks by non-blocking and blocking
/// openers and truncate, downgrade and unlock by the holder, its signal
/// (`tests/guest/lease.c`).
#[test]
fn lease_static() {
    let (native, _) = differential("lease", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(native.stdout.contains("blocking writer: ok"), "{native}");
}

/// An ignored break ends after /proc/sys/fs/lease-break-time (set to 1 s
/// by the guest; ruml only, since natively it would change the host's).
#[test]
fn lease_break_time() {
    let guest = common::build_guest("lease", Flavour::Static);
    let out = common::run_ruml(&guest.path, &["timeout"], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let want = "lease-break-time: 45\nwrite 1: ok\nnow: 1\nF_WRLCK: ok\n\
                holder (ignores it): sig+4 code POLL_MSG band 0x441 fd right\n\
                reader after timeout: ok\nlease after timeout: F_RDLCK\n\
                holder again: sig+4 code POLL_MSG band 0x441 fd right\n\
                writer after timeout: ok\nlease at the end: F_UNLCK\n";
    assert_eq!(out.stdout, want, "{out}");
}

/// epoll: nesting depth and cycles (ELOOP), EPOLLEXCLUSIVE's EINVAL
/// cases, regular files (EPERM) (`tests/guest/epoll_nest.c`).
#[test]
fn epoll_nest_static() {
    let (native, _) = differential("epoll_nest", Flavour::Static, &[]);
    assert!(native.stdout.contains("c<-a ELOOP"), "{native}");
}

/// fanotify as root on a tmpfs mount: mount and inode marks, merged
/// event masks, descriptors for the reader, errors
/// (`tests/guest/fanotify.c`; natively it needs root).
#[test]
fn fanotify_static() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP fanotify_static: needs root natively");
        return;
    }
    let (native, _) = differential("fanotify", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(native.stdout.contains("mask 0x2a vers 3"), "{native}");
}

/// epoll: edge-triggered interest in a file that never changes readiness
/// (/dev/random, watched so by UML's random driver) is reported once after
/// ADD and MOD, not on every wait (`tests/guest/epoll_et_quiet.c`).
#[test]
fn epoll_et_quiet_static() {
    let (native, _) = differential("epoll_et_quiet", Flavour::Static, &[]);
    assert!(native.stdout.contains("ET wait 2: 0\n"), "{native}");
}

/// RLIMIT_FSIZE and SIGXFSZ: write, pwrite, writev, O_APPEND,
/// copy_file_range, sendfile and splice cut at the limit, then EFBIG with
/// SIGXFSZ (SI_USER); truncate/fallocate past it; ignored SIGXFSZ; a
/// limit of 0; pipes and /dev/null unlimited; the default action kills
/// (`tests/guest/fsize.c`).
#[test]
fn fsize_static() {
    let (native, _) = differential("fsize", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native
            .stdout
            .contains("write again                  -1 EFBIG sig 1 SI_USER"),
        "{native}"
    );
    assert!(native.stdout.contains("child: signal 25"), "{native}");
}

/// inotify masks as Linux: IN_OPEN/ACCESS/MODIFY, IN_CLOSE_WRITE vs
/// IN_CLOSE_NOWRITE, IN_ATTRIB for chmod, utimes and link count changes,
/// IN_MODIFY for truncate, mask replace and IN_MASK_ADD, IN_ONESHOT's
/// IN_IGNORED, rm_watch, IN_ONLYDIR/IN_MASK_CREATE errors, IN_MOVE_SELF,
/// IN_DELETE_SELF, IN_EXCL_UNLINK (`tests/guest/inotify_masks.c`).
#[test]
fn inotify_masks_static() {
    let (native, _) = differential("inotify_masks", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native
            .stdout
            .contains("two writes oneshot: [wd 1 mask 0x2] [wd 1 mask 0x8000]"),
        "{native}"
    );
}
