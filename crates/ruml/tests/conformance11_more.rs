//! Small fixes from "Linux conformance II" (tests/guest/conf11_more.c,
//! differential): epoll_ctl refuses descriptor 0 when it is /dev/null
//! (EPERM, for ruml's pass-through console too), and
//! rt_sigqueueinfo/rt_tgsigqueueinfo take pids in the caller's PID
//! namespace; splice, vmsplice, tee, readahead, pwritev2 and accept
//! errors in Linux's order and statx's mount ids (tests/guest/
//! io_errnos.c).

mod common;

use common::{differential, Flavour};

#[test]
fn console_epoll_and_sigqueue_in_pid_namespace() {
    let (native, ruml) = differential("conf11_more", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        ruml.stdout.contains("rt_sigqueueinfo self: 0 - got 42"),
        "{ruml}"
    );
}

/// splice/vmsplice/tee/readahead/pwritev2/accept error cases in Linux's
/// order (the same pipe on both sides and a pipe into an O_APPEND file
/// are EINVAL; vmsplice both ways), and STATX_MNT_ID naming the mount
/// /proc/self/mountinfo lists.
#[test]
fn io_error_order_and_statx_mount_ids() {
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let (native, ruml) = differential("io_errnos", flavour, &[]);
        assert_eq!(native.code(), 0, "{native}");
        assert!(ruml.stdout.contains("vmsplice read: pq\n"), "{ruml}");
        assert!(
            ruml.stdout
                .contains("statx /: mask has MNT_ID yes, matches mountinfo yes\n"),
            "{ruml}"
        );
    }
}
