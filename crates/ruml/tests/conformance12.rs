//! Linux conformance II, the rest of #11 (differential): noexec, nodev
//! and nosuid mounts (tests/guest/conf12_noexec.c) and the keyrings seen
//! through Debian's `keyctl` client.

mod common;

use common::{host_is_root, Flavour};

/// Per-mount flags recorded by mount(2), a remount, a bind mount and
/// mount_setattr, shown by mountinfo, /proc/mounts and statvfs; execve,
/// execveat and access(X_OK) of a file of a noexec mount give EACCES,
/// mmap(PROT_EXEC) EPERM, mprotect(+PROT_EXEC) EACCES; a device node of a
/// nodev mount opens with EACCES. Natively the program needs root.
#[test]
fn noexec_nodev_mounts_as_linux() {
    if !host_is_root() {
        eprintln!("noexec_nodev_mounts_as_linux: needs root natively (mount); skipped");
        return;
    }
    let guest = common::build_guest("conf12_noexec", Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("noexec");
    let native = common::run_native(&guest.path, &[dir.path().as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.contains("  mmap PROT_EXEC private: EPERM\n"),
        "{native}"
    );
    let script = format!(
        "d=/tmp/ruml-noexec-{}; mkdir $d && exec {} $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}

/// Negative keys (a failed request_key construction: ENOENT or ENOKEY as
/// the helper is missing or fails, then ENOKEY; /proc/keys flag N; read
/// ENOKEY; describe works), EKEYREVOKED and EKEYEXPIRED (request_key skips
/// expired keys: ENOKEY), the garbage collector unlinking dead keys after
/// kernel.keys.gc_delay, and user keyrings per user namespace.
#[test]
fn negative_keys_gc_and_user_namespaces() {
    if !host_is_root() {
        eprintln!("negative_keys_gc_and_user_namespaces: sets gc_delay natively (root); skipped");
        return;
    }
    let (native, ruml) = common::differential("conf12_keys", Flavour::Dynamic, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(ruml.stdout.contains("again without: ENOKEY\n"), "{ruml}");
    assert!(
        ruml.stdout.contains("session links after gc: 1\n"),
        "{ruml}"
    );
}

/// Debian's `keyctl` (keyutils) as a guest, against the host, in a fresh
/// session keyring: add, print, rdescribe, newring, link, show, unlink,
/// timeout, revoke, request, request2 (tests/scripts/conf12_keyctl.sh).
#[test]
fn keyctl_client_as_on_the_host() {
    if !std::path::Path::new("/usr/bin/keyctl").exists() {
        eprintln!("keyctl_client_as_on_the_host: no keyctl (Debian's keyutils); skipped");
        return;
    }
    let script = common::workspace_root().join("tests/scripts/conf12_keyctl.sh");
    let env = common::test_env();
    let native = common::run_native("/bin/sh", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "{native}");
    assert!(native.stdout.contains("\nhello\n"), "{native}");
    let ruml = common::run_ruml("/bin/sh", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
}

/// SA_RESETHAND resets only the handler (the flags stay), close_range's
/// flags and errors, get_robust_list of self / a missing pid / a bad
/// pointer, execve with argc 0 (one empty argument), execveat of a
/// symlink with AT_SYMLINK_NOFOLLOW (ELOOP).
#[test]
fn process_items_as_linux() {
    let (native, ruml) = common::differential("conf12_proc", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        ruml.stdout.contains("child: argc 1, argv[0] empty\n"),
        "{ruml}"
    );
}
