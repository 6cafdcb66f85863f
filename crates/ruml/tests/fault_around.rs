//! Fault-around in large anonymous areas (tests/guest/fault_around.c),
//! natively and under ruml with the outputs compared: sequential and random
//! first touches, mprotect, munmap and MADV_DONTNEED over parts of a
//! window, PROT_NONE guard pages, a stack growing down (and Linux's stack
//! guard gap), fork after a partial touch; mincore where Linux's answer is
//! deterministic (the areas are MADV_NOHUGEPAGE): pages mapped ahead but
//! never touched do not show as resident.

mod common;

use common::{differential, Flavour};

fn fault_around(flavour: Flavour) {
    let (native, _ruml) = differential("fault_around", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    // The facts the program prints hold natively, so the comparison
    // means something.
    for fact in [
        "sequential: 16384 resident",
        "partial: 40 resident",
        "write ro untouched: sig 11",
        "read none: sig 11",
        "read hole: sig 11",
        "after dontneed 9 0 0",
        "guarded: 64 resident",
        "roomy growsdown below: sig 0",
        "growsdown into the gap: sig 11",
        "done",
    ] {
        assert!(native.stdout.contains(fact), "{fact}: {native}");
    }
}

#[test]
fn fault_around_static() {
    fault_around(Flavour::Static);
}

#[test]
fn fault_around_dynamic() {
    fault_around(Flavour::Dynamic);
}
