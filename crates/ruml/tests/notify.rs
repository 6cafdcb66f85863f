//! File notification and signal-driven I/O, differential against the
//! host: O_ASYNC with F_SETOWN/F_SETOWN_EX/F_SETSIG (`tests/guest/sigio.c`).

mod common;

use common::{differential, Flavour};

#[test]
fn sigio_static() {
    let (native, _) = differential("sigio", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native
            .stdout
            .contains("pipe write: sig+2 code POLL_IN band 0x41 fd right"),
        "{native}"
    );
}

#[test]
fn sigio_dynamic() {
    differential("sigio", Flavour::Dynamic, &[]);
}
