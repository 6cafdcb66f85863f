//! More of the memory manager against Linux, each natively and under ruml
//! with the outputs compared: mremap with an old size of 0 (a second
//! mapping of shared pages) and /dev/zero's names in /proc/self/maps
//! (tests/guest/mremap_dup.c); madvise's discarding advice over ranges
//! with holes and locked areas, MADV_DONTNEED_LOCKED
//! (tests/guest/madvise_walk.c); RssAnon/RssFile/RssShmem, statm and
//! smaps's Rss/Pss/Shared/Private rows as pages are touched
//! (tests/guest/rss_shmem.c); process_madvise on its own and other
//! processes, with its errors and permissions (tests/guest/pmadvise.c);
//! cachestat of a memfd and its errors (tests/guest/cachestat.c).

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

fn madvise_walk(flavour: Flavour) {
    let (native, _ruml) = differential("madvise_walk", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "private, hole, DONTNEED              ENOMEM ..-..",
        "private, hole, DONTNEED_LOCKED       ENOMEM ..-..",
        "shared, hole, DONTNEED               ENOMEM aa-aa",
        "shared, hole, REMOVE                 ENOMEM ..-..",
        "unlocked+locked, DONTNEED            EINVAL ..aa",
        "locked, FREE                         EINVAL bbbb",
        "unlocked+locked, DONTNEED_LOCKED     ok     ....",
        "VmLck after DONTNEED_LOCKED          8 kB",
        "locked+unlocked, DONTNEED            EINVAL aaaa",
        "mlockall, DONTNEED                   EINVAL a",
        "zero length, advice 4: anon 0, file 0",
        "zero length: anon page kept 7",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn madvise_walk_static() {
    madvise_walk(Flavour::Static);
}

#[test]
fn madvise_walk_dynamic() {
    madvise_walk(Flavour::Dynamic);
}

fn rss_shmem(flavour: Flavour) {
    let (native, _ruml) = differential("rss_shmem", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    // Every fact printed holds natively: each line says yes.
    assert!(!native.stdout.contains(": no"), "{native}");
    assert!(native.stdout.lines().count() >= 16, "{native}");
}

#[test]
fn rss_shmem_static() {
    rss_shmem(Flavour::Static);
}

#[test]
fn rss_shmem_dynamic() {
    rss_shmem(Flavour::Dynamic);
}

fn pmadvise(flavour: Flavour) {
    let (native, _ruml) = differential("pmadvise", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "self DONTNEED two ranges                 8292    .a..aa",
        "self, second range unaligned             4096    .bbbbb",
        "self, hole in the first range            ENOMEM  ...-..",
        "self, locked, DONTNEED_LOCKED            8192    ..g",
        "DONTFORK page in child                   SEGV",
        "vec unreadable                           EFAULT",
        "not a pidfd                              EBADF",
        "child COLD                               8192",
        "child WILLNEED over a hole               ENOMEM",
        "child DONTNEED                           EINVAL",
        "nobody: nobody's COLD                    EPERM",
        "nobody: root's COLD                      EACCES",
        "zombie child COLD                        ESRCH",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn pmadvise_static() {
    pmadvise(Flavour::Static);
}

#[test]
fn pmadvise_dynamic() {
    pmadvise(Flavour::Dynamic);
}

fn cachestat(flavour: Flavour) {
    let (native, _ruml) = differential("cachestat", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "pages 0, 2, 3 written              cache 3 dirty 0",
        "range pages 1-2                    cache 1 dirty 0",
        "page 7 written through a mapping   cache 4 dirty 0",
        "page 2 punched                     cache 3 dirty 0",
        "truncated to one page              cache 1 dirty 0",
        "bad range and flags 1              EFAULT",
        "nobody, /etc/passwd read-only      EPERM",
        "nobody, own memfd read-only        ok",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn cachestat_static() {
    cachestat(Flavour::Static);
}

#[test]
fn cachestat_dynamic() {
    cachestat(Flavour::Dynamic);
}
