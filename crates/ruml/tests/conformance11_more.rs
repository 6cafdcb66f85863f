//! Small fixes from "Linux conformance II" (tests/guest/conf11_more.c,
//! differential): epoll_ctl refuses descriptor 0 when it is /dev/null
//! (EPERM, for ruml's pass-through console too), and
//! rt_sigqueueinfo/rt_tgsigqueueinfo take pids in the caller's PID
//! namespace.

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
