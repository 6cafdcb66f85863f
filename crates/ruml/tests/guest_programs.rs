//! Guest programs from tests/guest, built with the host's gcc in three
//! flavours (static, static-pie, dynamic), run natively and under ruml:
//! the outputs and exit statuses must match (the differential oracle).

mod common;

use common::{build_guest, differential, run_native, run_ruml, test_env, Flavour};
use std::os::unix::process::ExitStatusExt;

/// One #[test] per flavour, so each shows up (and fails) on its own.
macro_rules! per_flavour {
    ($check:ident: $static:ident, $static_pie:ident, $dynamic:ident) => {
        #[test]
        fn $static() {
            $check(Flavour::Static);
        }
        #[test]
        fn $static_pie() {
            $check(Flavour::StaticPie);
        }
        #[test]
        fn $dynamic() {
            $check(Flavour::Dynamic);
        }
    };
}

// --- argv, environment, auxiliary vector -----------------------------------

fn hello_auxv(flavour: Flavour) {
    let (native, _ruml) = differential(
        "hello_auxv",
        flavour,
        &["first", "two words", "", "tab\there", "ünïcödé"],
    );
    // The oracle only means something if the native run says what we expect.
    let out = &native.stdout;
    assert_eq!(native.code(), 0, "native hello_auxv failed:\n{native}");
    for want in [
        "argc=6",
        "argv[2]=\"two words\"",
        "argv[3]=\"\"",
        "env: RUML_TEST=1",
        "AT_PAGESZ=4096",
        "AT_PHENT=56",
        "AT_PLATFORM=x86_64",
        "AT_EXECFN==argv[0]: yes",
        "AT_RANDOM: non-null, 16 bytes readable",
        "AT_PHDR: phdr[0] is PT_PHDR or PT_LOAD: yes",
        "AT_PHDR table matches the file's: yes",
    ] {
        assert!(
            out.contains(want),
            "native output lacks {want:?}:\n{native}"
        );
    }
    let static_build = flavour != Flavour::Dynamic;
    assert!(
        out.contains(&format!(
            "AT_BASE nonzero: {}",
            if static_build { "no" } else { "yes" }
        )),
        "unexpected AT_BASE natively:\n{native}"
    );
    assert_eq!(
        out.contains("AT_ENTRY==e_entry: yes"),
        flavour == Flavour::Static,
        "AT_ENTRY is printed (and must equal e_entry) only for the non-PIE static build:\n{native}"
    );
}
per_flavour!(hello_auxv: hello_auxv_static, hello_auxv_static_pie, hello_auxv_dynamic);

// --- fork is copy-on-write --------------------------------------------------

fn cow_fork(flavour: Flavour) {
    let (native, _ruml) = differential("cow_fork", flavour, &[]);
    assert_eq!(native.code(), 0, "native cow_fork failed:\n{native}");
    assert!(
        native.stdout.contains("child exited with status 42"),
        "{native}"
    );
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
}
per_flavour!(cow_fork: cow_fork_static, cow_fork_static_pie, cow_fork_dynamic);

// --- a wild pointer kills the process with SIGSEGV ---------------------------

fn segv(flavour: Flavour) {
    let guest = build_guest("segv", flavour);
    let env = test_env();
    let native = run_native(&guest.path, &[] as &[&str], &env);
    assert_eq!(
        native.status.signal(),
        Some(libc::SIGSEGV),
        "natively, segv should die of SIGSEGV:\n{native}"
    );
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_eq!(
        ruml.status.code(),
        Some(139),
        "ruml should exit 139 (128 + SIGSEGV) when init dies of SIGSEGV:\n{ruml}"
    );
    assert_eq!(
        ruml.stdout, "before the fault\n",
        "ruml's stdout should hold exactly what was printed before the fault:\n{ruml}"
    );
    common::assert_same(&native, &ruml);
}
per_flavour!(segv: segv_static, segv_static_pie, segv_dynamic);

// --- bad user pointers give EFAULT, not a crash ------------------------------

fn efault(flavour: Flavour) {
    let (native, _ruml) = differential("efault", flavour, &[]);
    assert_eq!(native.code(), 0, "native efault failed:\n{native}");
    assert!(native.stdout.contains("survived"), "{native}");
    assert!(
        native.stdout.matches("errno=EFAULT").count() >= 30,
        "natively most calls should give EFAULT:\n{native}"
    );
}
per_flavour!(efault: efault_static, efault_static_pie, efault_dynamic);
