//! Smaller system calls checked against the host: the older file-time
//! calls (tests/guest/file_times.c), natively and under ruml.

mod common;

use common::{differential, Flavour};

#[test]
fn file_times_static() {
    let (native, _) = differential("file_times", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("utimes usec 1e6: EINVAL"),
        "{native}"
    );
}

#[test]
fn file_times_dynamic() {
    differential("file_times", Flavour::Dynamic, &[]);
}
