//! File notification and signal-driven I/O, differential against the
//! host: O_ASYNC with F_SETOWN/F_SETOWN_EX/F_SETSIG (`tests/guest/sigio.c`),
//! dnotify (`dnotify.c`).

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

/// dnotify (F_NOTIFY): one-shot and multishot marks, every DN_* event,
/// si_fd, removal by F_NOTIFY 0 and by close (`tests/guest/dnotify.c`).
#[test]
fn dnotify_static() {
    let (native, _) = differential("dnotify", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("two writes (multishot): 2"),
        "{native}"
    );
}
