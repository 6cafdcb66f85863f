//! io_uring's IORING_OP_SPLICE and IORING_OP_TEE (tests/guest/io_uring_splice.c,
//! differential: file to pipe at an offset and at the file position, tee,
//! pipe to file, a splice waiting on an empty pipe, the errors), and ring
//! mmaps past a region or at an offset naming none (EINVAL as Linux up to
//! 6.4, which newer hosts no longer check: ruml only).

mod common;

use common::{build_guest, differential, run_ruml, test_env, Flavour};

#[test]
fn io_uring_splice_and_tee() {
    let (native, ruml) = differential("io_uring_splice", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(ruml.stdout.contains("late data 'late'"), "{ruml}");
    assert!(ruml.stdout.ends_with("done\n"), "{ruml}");
}

#[test]
fn io_uring_mmap_past_the_ring_is_einval() {
    let guest = build_guest("io_uring_splice", Flavour::Static);
    let ruml = run_ruml(&guest.path, &["mmap"], &test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert_eq!(
        ruml.stdout,
        "mmap cq ring 1 MiB: -1 EINVAL\n\
         mmap sqes 1 MiB: -1 EINVAL\n\
         mmap bogus offset: -1 EINVAL\n\
         mmap sqes one page: 0 -\n",
        "{ruml}"
    );
}
