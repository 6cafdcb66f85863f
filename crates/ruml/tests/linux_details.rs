//! Small details of Linux's observable behaviour, differential: the order in
//! which system calls check their arguments (a program passing several
//! wrong things at once gets the errno Linux gives), rounding, which
//! /proc files a thread has.

mod common;

use common::{differential, Flavour};

/// epoll_ctl copies the event in first (EFAULT), then looks at both
/// descriptors (EBADF), then at whether the target can be polled (EPERM),
/// then EINVAL (tests/guest/epoll_errnos.c).
#[test]
fn epoll_ctl_checks_in_linux_order() {
    let (native, ruml) = differential("epoll_errnos", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    let line = |what: &str| {
        native
            .stdout
            .lines()
            .find(|l| l.starts_with(what))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(
        line("epfd a regular file, target regular").as_deref(),
        Some("EPERM"),
        "{native}"
    );
    assert_eq!(
        line("ADD bad event, bad fd").as_deref(),
        Some("EFAULT"),
        "{native}"
    );
    assert_eq!(ruml.code(), 0, "{ruml}");
}

/// sysinfo's uptime rounds a started second up, as Linux; a thread's
/// /proc/PID/task/TID has no timens_offsets and no task/
/// (tests/guest/details_misc.c).
#[test]
fn sysinfo_uptime_and_thread_proc_files() {
    let (native, ruml) = differential("details_misc", Flavour::Static, &[]);
    assert!(
        native.stdout.contains("task timens_offsets: ENOENT\n"),
        "{native}"
    );
    assert!(ruml.stdout.contains("ceil(/proc/uptime): yes\n"), "{ruml}");
}

/// A timerfd read counts every expiry whose time has passed, from the
/// clock, as Linux: a late timer thread on a busy machine does not make
/// it report fewer (tests/guest/timerfd_count.c).
#[test]
fn timerfd_counts_expiries_from_the_clock() {
    let (native, _) = differential("timerfd_count", Flavour::Static, &[]);
    assert!(native.stdout.contains("timer: at least 50\n"), "{native}");
}
