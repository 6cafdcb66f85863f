//! Memory-management calls with effects a program sees: mlock and friends
//! (VmLck, RLIMIT_MEMLOCK, locks not inherited) and madvise's fork flags
//! (tests/guest/mlock_madvise.c, natively and under ruml).

mod common;

use common::{differential, Flavour};

fn mlock_madvise(flavour: Flavour) {
    let (native, _ruml) = differential("mlock_madvise", flavour, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("wiped page in child: child exit 0"),
        "{native}"
    );
    assert!(
        native
            .stdout
            .contains("DONTFORK page in child: child killed by signal 11"),
        "{native}"
    );
}

#[test]
fn mlock_madvise_static() {
    mlock_madvise(Flavour::Static);
}

#[test]
fn mlock_madvise_dynamic() {
    mlock_madvise(Flavour::Dynamic);
}
