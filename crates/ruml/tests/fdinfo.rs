//! /proc/PID/fdinfo/N as Linux: the common lines and each object's own
//! (inotify and fanotify marks with their file handles, eventfd, timerfd,
//! signalfd, epoll, pidfd, unix sockets' scm_fds), and IN_EXCL_UNLINK
//! judged by the name a file was opened by, differential against the
//! host (tests/guest/fdinfo.c).

mod common;

use common::{differential, Flavour};

fn fdinfo(flavour: Flavour) {
    // fanotify_init and unshare(CLONE_NEWPID) need CAP_SYS_ADMIN natively.
    let args: &[&str] = if common::host_is_root() {
        &[]
    } else {
        &["nofan"]
    };
    let (native, _) = differential("fdinfo", flavour, args);
    assert_eq!(native.code(), 0, "{native}");
    let out = &native.stdout;
    for want in [
        "inotify wd:2 ino = path 1 sdev = mask:300 ignored_mask:0 fhandle = name_to_handle_at\n\
         inotify wd:1 ino = path 0 sdev = mask:8400000e ignored_mask:0 fhandle = name_to_handle_at\n",
        "eventfd-count:       1234567895\neventfd-id: number\neventfd-semaphore: 0\n",
        "clockid: 7\nticks: 0\nsettime flags: 01\nit_value: about 1000 s\n",
        "sigmask:\t8000000800000202\n",
        "tfd:        4 events: 40000000 data:                1  pos:0 ino = sdev =\n",
        "Pid: -1\nNSpid: -1\n",
        "Pid: child\nNSpid: child\n",
        "scm_fds: 4\n",
        "write via unlinked name, excl:\nwrite via unlinked name, plain: [wd 1 mask 0x2 a]\n",
        "task fdinfo same\n",
        // /proc has no handles of its own: FILEID_INO64_GEN.
        "inotify wd:3 ino = path 2 sdev = mask:1 ignored_mask:0 fhandle = name_to_handle_at\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{native}");
    }
    // Every value checked against the program's own findings matched.
    assert!(!out.contains("!="), "{native}");
    if common::host_is_root() {
        assert!(
            out.contains("fanotify flags:13 event-flags:48000\n"),
            "{native}"
        );
        assert!(out.contains("Pid: child\nNSpid: child 1\n"), "{native}");
    }
}

#[test]
fn fdinfo_static() {
    fdinfo(Flavour::Static);
}

#[test]
fn fdinfo_dynamic() {
    fdinfo(Flavour::Dynamic);
}
