//! More of the memory manager against Linux, each natively and under ruml
//! with the outputs compared: mremap with an old size of 0 (a second
//! mapping of shared pages) and /dev/zero's names in /proc/self/maps
//! (tests/guest/mremap_dup.c).

mod common;

use common::{differential, Flavour};

fn mremap_dup(flavour: Flavour) {
    let (native, _ruml) = differential("mremap_dup", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    // What the program prints holds natively, so the comparison means
    // something.
    for line in [
        "private, old 0, MAYMOVE       EINVAL",
        "shared, old 0, no MAYMOVE     ENOMEM",
        "unmapped, old 0, MAYMOVE      EFAULT",
        "anon dup                      ok, moved 1",
        "original sees dup's write     via-dup",
        "maps: dup at offset off 2000, same inode 1",
        "  page 5 of it                signal BUS",
        "dup FIXED                     ok, at dst 1, reads page0",
        "child's write via dup         child",
        "memfd file sees dup's write   memfd-dup, original memfd-dup",
        "sysv nattch after dup         2",
        "private /dev/zero: rw-p off 3000 name \"/dev/zero\" dev,ino of /dev/zero 1",
        "shared /dev/zero: rw-s off 0 name \"/dev/zero (deleted)\" ino of /dev/zero 0",
        "anon + /dev/zero side by side ok, areas 2",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn mremap_dup_static() {
    mremap_dup(Flavour::Static);
}

#[test]
fn mremap_dup_dynamic() {
    mremap_dup(Flavour::Dynamic);
}
