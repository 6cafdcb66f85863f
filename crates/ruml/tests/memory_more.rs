//! Memory calls and files beyond the basics, each natively and under ruml
//! with the outputs compared: /proc/PID/pagemap (tests/guest/pagemap.c);
//! shared mappings of a tmpfs file truncated or punched by another process,
//! MADV_REMOVE and remap_file_pages (tests/guest/shmem_unmap.c);
//! remap_file_pages in shared anonymous memory, its shmem object seen in
//! fork children and /proc/self/maps (tests/guest/remap_shmem.c); the
//! errors of mmap, mprotect, msync and munmap and their order, with memfd
//! seals (tests/guest/mmap_errors.c); madvise's FREE, COLD, PAGEOUT,
//! WILLNEED and HWPOISON with their errors, and mincore of file and shared
//! anonymous pages after MADV_DONTNEED (tests/guest/madvise_more.c).

mod common;

use common::{differential, Flavour};

fn pagemap(flavour: Flavour) {
    let (native, _ruml) = differential("pagemap", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    // The facts the program prints hold natively (so the comparison means
    // something): a written private page is present and exclusive, the
    // parent's pagemap is closed to an unprivileged child.
    assert!(
        native
            .stdout
            .contains("anon written                 present=1 swap=0 file=0 excl=1"),
        "{native}"
    );
    assert!(
        native
            .stdout
            .contains("shared anon untouched        present=0"),
        "{native}"
    );
    assert!(
        native
            .stdout
            .contains("child as nobody: parent's pagemap EACCES"),
        "{native}"
    );
    assert!(native.stdout.contains("pread off+4: EINVAL"), "{native}");
}

#[test]
fn pagemap_static() {
    pagemap(Flavour::Static);
}

#[test]
fn pagemap_dynamic() {
    pagemap(Flavour::Dynamic);
}

fn shmem_unmap(flavour: Flavour) {
    let (native, _ruml) = differential("shmem_unmap", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "child: page 1 after punch                0",
        "child: page 1 after refill               77",
        "child: page 3 after truncate             signal BUS",
        "private: written page after punch        99",
        "MADV_REMOVE page 1: ok",
        "remap_file_pages: ok",
        "page 0 after remap                       43",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn shmem_unmap_static() {
    shmem_unmap(Flavour::Static);
}

#[test]
fn shmem_unmap_dynamic() {
    shmem_unmap(Flavour::Dynamic);
}

fn remap_shmem(flavour: Flavour) {
    let (native, _ruml) = differential("remap_shmem", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "   1- 2 rw-s off=5 ino>0=1 /dev/zero (deleted)",
        "early child: page 5 (written via parent p1)  55",
        "parent: page 1 byte 1 (written by child p5)  66",
        "parent: page 0 byte 2 (child wrote p6)       77",
        "page 1 back at its own page                  10",
        "page 5 after DONTNEED                        55",
        "page 6 (object page 0) after REMOVE          0",
        "page 3 after remap past the end              signal BUS",
        "remap with prot: EINVAL",
        "remap across two objects: EINVAL",
        "dev/zero page 0                              30",
        "grown: page 3                                signal BUS",
        "MAP_GROWSDOWN shared anon: EINVAL",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn remap_shmem_static() {
    remap_shmem(Flavour::Static);
}

#[test]
fn remap_shmem_dynamic() {
    remap_shmem(Flavour::Dynamic);
}

fn mmap_errors(flavour: Flavour) {
    let (native, _ruml) = differential("mmap_errors", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "mmap len 0 bad fd                                 EBADF",
        "mmap SHARED RW of O_WRONLY                        EACCES",
        "F_SEAL_WRITE with a read-only mapping: EBUSY",
        "mprotect W of SHARED after FUTURE_WRITE: EACCES",
        "msync INVALIDATE of locked: EBUSY",
        "mprotect GROWSDOWN on plain area: EINVAL",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}

#[test]
fn mmap_errors_static() {
    mmap_errors(Flavour::Static);
}

#[test]
fn mmap_errors_dynamic() {
    mmap_errors(Flavour::Dynamic);
}

fn madvise_more(flavour: Flavour) {
    // MADV_HWPOISON is compared only where the host kernel has no
    // memory-failure handling (as ruml): with it, the native run as root
    // would poison a host page.
    let no_memory_failure =
        !std::path::Path::new("/proc/sys/vm/memory_failure_early_kill").exists();
    let args: &[&str] = if no_memory_failure {
        &["hwpoison"]
    } else {
        &[]
    };
    let (native, _ruml) = differential("madvise_more", flavour, args);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "shared anon after DONTNEED              1100",
        "shared file after DONTNEED              0100",
        "FREE  written after FREE  z",
        "FREE  shared anon   EINVAL   data bb",
        "FREE  private file  EINVAL   data cc",
        "COLD  shared file   ok       data dd",
        "PAGEOUT private anon  locked   EINVAL data a",
        "WILLN shared file   locked   ok data d",
        "FREE  unaligned EINVAL, hole ENOMEM, unmapped ENOMEM, len 0 ok, wrap EINVAL",
        "bad   unaligned EINVAL, hole EINVAL, unmapped EINVAL, len 0 EINVAL, wrap EINVAL",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
    if no_memory_failure {
        assert!(native.stdout.contains("child: HWPOISON EINVAL"), "{native}");
    }
}

#[test]
fn madvise_more_static() {
    madvise_more(Flavour::Static);
}

#[test]
fn madvise_more_dynamic() {
    madvise_more(Flavour::Dynamic);
}
