//! Asynchronous I/O: io_uring through raw system calls
//! (tests/guest/io_uring.c), the same program natively and under ruml,
//! and random SQEs that the kernel must survive.

mod common;

use common::{differential, Flavour};

fn io_uring(flavour: Flavour) {
    let (native, ruml) = differential("io_uring", flavour, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("done\n"), "{native}");
    assert!(ruml.stdout.contains("tcp data: 'tcp!!'"), "{ruml}");
}

#[test]
fn io_uring_static() {
    io_uring(Flavour::Static);
}

#[test]
fn io_uring_dynamic() {
    io_uring(Flavour::Dynamic);
}

/// Random SQEs (opcodes, flags, descriptors, addresses, lengths) and
/// scribbles on the shared ring words: ruml answers each with a CQE or
/// an errno and keeps running.
#[test]
fn io_uring_fuzz() {
    let guest = common::build_guest("io_uring", Flavour::Static);
    let env = common::test_env();
    let out = common::run_ruml(&guest.path, &["fuzz", "20000"], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("survived"), "{out}");
    assert!(
        out.stdout
            .contains("long chain: submitted 4096, cancelled 4095"),
        "{out}"
    );
}

fn linux_aio(flavour: Flavour) {
    let (native, ruml) = differential("linux_aio", flavour, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("done\n"), "{native}");
    assert!(ruml.stdout.contains("user-space reaped: 2"), "{ruml}");
}

/// Linux AIO (tests/guest/linux_aio.c): the ring read from user space,
/// reads, writes, syncs, polls, cancel, eventfd, the errors.
#[test]
fn linux_aio_static() {
    linux_aio(Flavour::Static);
}

#[test]
fn linux_aio_dynamic() {
    linux_aio(Flavour::Dynamic);
}

/// Random iocbs, garbage iocb pointers and ring heads, contexts made and
/// destroyed: ruml answers each and keeps running.
#[test]
fn linux_aio_fuzz() {
    let guest = common::build_guest("linux_aio", Flavour::Static);
    let env = common::test_env();
    let out = common::run_ruml(&guest.path, &["fuzz", "20000"], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("survived"), "{out}");
}

/// A python asyncio program (subprocesses, TCP and unix sockets, timers,
/// queues): the same output natively and under ruml.
#[test]
fn python_asyncio() {
    let script = common::workspace_root().join("tests/scripts/asyncio_mix.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(native.stdout.ends_with("done\n"), "{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// /proc/sys/fs/aio-max-nr and aio-nr (none in use at boot).
#[test]
fn aio_limits_in_proc() {
    let env = common::test_env();
    let out = common::run_ruml(
        "/bin/sh",
        &["-c", "cat /proc/sys/fs/aio-max-nr /proc/sys/fs/aio-nr"],
        &env,
    );
    assert_eq!(out.stdout, "65536\n0\n", "{out}");
}
