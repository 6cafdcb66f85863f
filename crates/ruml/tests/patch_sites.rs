//! Patched system-call sites (`patch=on`, seccomp backend;
//! `crates/kernel/src/mm/patch.rs`, docs/architecture.md "Patched
//! system-call sites"). `tests/guest/patch_sites.c` is a differential
//! program: many getppid/write/clock_getres/getuid calls from four threads
//! at once, fork after patching, code of its own that is patched and then
//! rewritten, moved, unmapped, discarded and mapped over (the low area
//! included), a ptrace tracer that attaches to a child whose sites
//! are patched, reads its code three ways and counts its system calls,
//! and the other shapes (`mov $nr,%rax`, glibc's `syscall(3)`, `mov
//! $imm,%edi`, as exact bytes): threads racing through them while they
//! are patched, branches onto their `syscall`, a fault of the displaced
//! load, restarts through each; sites across a page boundary.
//! Every run must print what the program prints natively; on the seccomp
//! backend with `patch=on`, the program also checks (argument
//! `patched`) that its own site was rewritten.

mod common;

use common::{assert_same, build_guest, run_native, run_ruml_raw, test_env, Flavour};

/// Whether this run's ruml has the seccomp backend (patching's home).
fn seccomp_run() -> bool {
    common::test_mode().as_deref() != Some("ptrace")
}

fn same_as_native(flavour: Flavour, part: &str, params: &[&str], require: bool) {
    let guest = build_guest("patch_sites", flavour);
    let env = test_env();
    let native = run_native(&guest.path, &[part], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let path = guest.path.display().to_string();
    let mut args = vec!["quiet"];
    args.extend(params);
    args.extend(["--", path.as_str(), part]);
    if require && seccomp_run() {
        args.push("patched");
    }
    let ruml = run_ruml_raw(&args, &env);
    assert_same(&native, &ruml);
}

#[test]
fn threads_calling_patched_sites() {
    same_as_native(Flavour::Static, "calls", &["patch=on"], false);
    same_as_native(Flavour::Dynamic, "calls", &["patch=on"], false);
}

#[test]
fn fork_after_patching() {
    same_as_native(Flavour::Static, "fork", &["patch=on"], false);
    same_as_native(Flavour::Dynamic, "fork", &["patch=on"], false);
}

#[test]
fn code_rewritten_moved_and_mapped_over() {
    same_as_native(Flavour::Static, "code", &["patch=on"], true);
    same_as_native(Flavour::Dynamic, "code", &["patch=on"], true);
}

#[test]
fn tracer_sees_original_code_and_every_call() {
    same_as_native(Flavour::Static, "trace", &["patch=on"], false);
    same_as_native(Flavour::Dynamic, "trace", &["patch=on"], false);
}

#[test]
fn restart_through_a_patched_site() {
    same_as_native(Flavour::Static, "restart", &["patch=on"], true);
}

/// `mov $nr,%rax`, glibc's `syscall(3)` (its 7th argument, loaded by
/// the displaced instruction, is mmap's offset) and `mov $imm,%edi`
/// sites, reached by four threads at once while they are rewritten, by
/// branches onto their `syscall` with the number in rax, and a fault of
/// the displaced load reported at the site.
#[test]
fn other_shapes_threads_branches_and_faults() {
    same_as_native(Flavour::Static, "shapes", &["patch=on"], true);
    same_as_native(Flavour::Dynamic, "shapes", &["patch=on"], true);
}

/// A blocking read through each of the other shapes, interrupted by a
/// signal: restarted (to the `ud2` where the `syscall` was) or EINTR.
#[test]
fn restart_through_other_shapes() {
    same_as_native(Flavour::Static, "shapes-restart", &["patch=on"], true);
}

#[test]
fn own_gs_base_after_patching() {
    same_as_native(Flavour::Static, "gs", &["patch=on"], false);
    same_as_native(Flavour::Static, "wrgs", &["patch=on"], false);
}

/// Sites across a page boundary (glibc 2.36's `open64_nocancel` in
/// Debian's libc.so.6 is one): rewritten, by the default `patch=on`,
/// exactly when the displaced instruction lies wholly on the first page,
/// with five threads racing through each while it is; restored on both
/// pages when either changes.
#[test]
fn sites_across_two_pages() {
    same_as_native(Flavour::Static, "cross", &[], true);
    same_as_native(Flavour::Dynamic, "cross", &[], true);
}

/// `patch=off` rewrites nothing: the program finds its code as written
/// ("patched" then fails with 3), and everything else as natively.
#[test]
fn patch_off_rewrites_nothing() {
    same_as_native(Flavour::Static, "all", &["patch=off"], false);
    let guest = build_guest("patch_sites", Flavour::Static);
    let env = test_env();
    let path = guest.path.display().to_string();
    for part in ["code", "shapes", "cross"] {
        let ruml = run_ruml_raw(
            &["quiet", "patch=off", "--", path.as_str(), part, "patched"],
            &env,
        );
        assert_eq!(ruml.code(), 3, "{part}: {}\n{}", ruml.stdout, ruml.stderr);
    }
}

/// strace from the start (PTRACE_TRACEME by its child, then attaching
/// to the threads): a traced program is never patched and strace counts
/// the same system calls as natively.
#[test]
fn strace_counts_every_call() {
    if !std::path::Path::new("/usr/bin/strace").exists() {
        eprintln!("no strace on this host (Debian's strace package): skipped");
        return;
    }
    let guest = build_guest("patch_sites", Flavour::Static);
    let env = test_env();
    let path = guest.path.display().to_string();
    let script = format!(
        "f=$(mktemp) && /usr/bin/strace -f -qq -e trace=getppid,getuid -e signal=none \
         -c -U name,calls,errors -S name -o $f {path} calls && cat $f && rm -f $f"
    );
    let cmd = ["/bin/sh", "-c", script.as_str()];
    let native = run_native(cmd[0], &cmd[1..], &env);
    assert_eq!(native.code(), 0, "native strace: {}", native.stderr);
    let mut args = vec!["quiet", "patch=on", "--"];
    args.extend(cmd);
    let ruml = run_ruml_raw(&args, &env);
    assert_same(&native, &ruml);
}
