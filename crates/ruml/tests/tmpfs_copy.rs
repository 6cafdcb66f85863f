//! The copies between guest buffers and tmpfs files' frames (issue 9 item
//! 5: one copy per stretch contiguous in physmem on both sides, no kernel
//! buffer) keep Linux's semantics: reads and writes of every size around
//! page edges at unaligned offsets against a model, odd vectors, buffers
//! that run into unmapped or read-only pages (short counts and EFAULT as
//! Linux, 0 at end of file whatever the buffer), buffers that are a shared
//! mapping of the same file, sendfile and splice out of the file, and reads
//! racing a truncate (`tests/guest/tmpfs_copy.c`, differential).

mod common;

use common::{differential, Flavour, Output};

fn assert_ok(out: &Output) {
    assert_eq!(out.code(), 0, "run failed:\n{out}");
    assert!(out.stdout.ends_with("result: OK\n"), "not OK:\n{out}");
    assert!(!out.stdout.contains("FAIL"), "a check failed:\n{out}");
}

/// In /dev/shm (devfs's tmpfs under ruml).
#[test]
fn tmpfs_copy_static() {
    let (native, ruml) = differential("tmpfs_copy", Flavour::Static, &[]);
    assert_ok(&native);
    assert_ok(&ruml);
}

/// In /tmp: under ruml the overlay root's tmpfs upper layer.
#[test]
fn tmpfs_copy_dynamic_overlay_upper() {
    let (native, ruml) = differential("tmpfs_copy", Flavour::Dynamic, &["/tmp"]);
    assert_ok(&native);
    assert_ok(&ruml);
}
