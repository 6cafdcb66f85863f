//! The seccomp stub's signal-less system-call entry, the groundwork of
//! syscall-site patching (`patch=on`; `crates/host/src/patch.rs`,
//! docs/architecture.md). `tests/guest/patch_entry.c` drives the entry
//! exactly as a patched site would (GS base = its control page, a site
//! block in r11) and, where there is no entry (natively, the ptrace
//! backend, `patch=off`), makes the same calls with `syscall`: the two
//! runs must print the same. It checks results, every register the ABI
//! keeps across `syscall` (general, flags, SSE/AVX), EINTR and
//! SA_RESTART, four threads hammering the entry while signals hit them,
//! and fork. Hostile jumps into every byte of the entry are in
//! `security.rs` (`guest_attacks_on_the_stub_fail_with_patch_entry`).

mod common;

use common::{assert_same, build_guest, run_native, run_ruml_raw, test_env, Flavour};

/// Whether this run's ruml has the seccomp backend (the entry's home).
fn seccomp_run() -> bool {
    common::test_mode().as_deref() != Some("ptrace")
}

fn entry_same_as_native(flavour: Flavour) {
    let guest = build_guest("patch_entry", flavour);
    let env = test_env();
    let native = run_native(&guest.path, &[] as &[&str], &env);
    assert_eq!(native.code(), 0, "native run: {}", native.stderr);
    // Under seccomp, "require" makes the program fail unless it found
    // the entry: the comparison is then about the entry's calls.
    let path = guest.path.display().to_string();
    let mut args = vec!["quiet", "patch=on", "--", path.as_str()];
    if seccomp_run() {
        args.push("require");
    }
    let ruml = run_ruml_raw(&args, &env);
    assert_same(&native, &ruml);
}

#[test]
fn entry_static_same_as_native() {
    entry_same_as_native(Flavour::Static);
}

#[test]
fn entry_dynamic_same_as_native() {
    entry_same_as_native(Flavour::Dynamic);
}

/// `patch=off` leaves a guest's GS base zero, as natively: the program
/// finds no entry and behaves as it does on the host. Without `patch=`
/// (on by default) the seccomp backend gives it the entry.
#[test]
fn patch_off_is_native() {
    let guest = build_guest("patch_entry", Flavour::Static);
    let env = test_env();
    let path = guest.path.display().to_string();
    let params = ["quiet", "patch=off", "--"];
    let mut args = params.to_vec();
    args.extend([path.as_str(), "require"]);
    let ruml = run_ruml_raw(&args, &env);
    assert_eq!(
        ruml.code(),
        3,
        "{params:?}: the guest saw a GS base: {}",
        ruml.stderr
    );
    let native = run_native(&guest.path, &[] as &[&str], &env);
    let mut args = params.to_vec();
    args.push(path.as_str());
    let ruml = run_ruml_raw(&args, &env);
    assert_same(&native, &ruml);
    // The default is patch=on: under seccomp the entry is there.
    if seccomp_run() {
        let ruml = run_ruml_raw(&["quiet", "--", path.as_str(), "require"], &env);
        assert_same(&native, &ruml);
    }
}
