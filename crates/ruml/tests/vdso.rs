//! The vDSO (issue 9 item 3): glibc's clock reads through it agree with the
//! system calls (differential: `tests/guest/vdso_clock.c` natively and
//! under ruml); the image's shape as a program sees it
//! (`tests/guest/vdso_shape.c`: AT_SYSINFO_EHDR, [vvar]/[vdso] in maps,
//! versioned symbols, protections, fork, mremap, munmap), its address
//! randomized per exec, and that clock_gettime in a loop makes no system
//! calls (RUML_STRACE=1 logs every one).

mod common;

use common::{build_guest, differential, run_ruml, test_env, Flavour, Output};

fn assert_ok(out: &Output) {
    assert_eq!(out.code(), 0, "run failed:\n{out}");
    assert!(out.stdout.ends_with("result: OK\n"), "not OK:\n{out}");
    assert!(!out.stdout.contains("FAIL"), "a check failed:\n{out}");
}

fn clocks(flavour: Flavour) {
    let (native, ruml) = differential("vdso_clock", flavour, &[]);
    assert_ok(&native);
    assert_ok(&ruml);
}

#[test]
fn clocks_agree_static() {
    clocks(Flavour::Static);
}

#[test]
fn clocks_agree_static_pie() {
    clocks(Flavour::StaticPie);
}

#[test]
fn clocks_agree_dynamic() {
    clocks(Flavour::Dynamic);
}

fn shape(flavour: Flavour) {
    let g = build_guest("vdso_shape", flavour);
    let out = run_ruml(&g.path, &[] as &[&str], &test_env());
    assert_ok(&out);
}

#[test]
fn shape_static() {
    shape(Flavour::Static);
}

#[test]
fn shape_dynamic() {
    shape(Flavour::Dynamic);
}

#[test]
fn address_randomized_per_exec() {
    let g = build_guest("vdso_shape", Flavour::Static);
    let addrs: std::collections::BTreeSet<String> = (0..3)
        .map(|_| {
            let out = run_ruml(&g.path, &["addr"], &test_env());
            assert_eq!(out.code(), 0, "{out}");
            let a = out.stdout.trim().to_string();
            assert!(
                u64::from_str_radix(&a, 16).is_ok_and(|v| v != 0),
                "no vDSO address:\n{out}"
            );
            a
        })
        .collect();
    assert!(addrs.len() > 1, "the vDSO sat at one address: {addrs:?}");
}

/// Whether the CPU has an invariant TSC (Linux's `nonstop_tsc` flag, from
/// the CPUID bit ruml checks): without one the vDSO falls back to the
/// system call by design.
fn invariant_tsc() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.split_whitespace().any(|w| w == "nonstop_tsc"))
        .unwrap_or(false)
}

#[test]
fn clock_loop_makes_no_system_calls() {
    if !invariant_tsc() {
        eprintln!("no invariant TSC on this CPU: the vDSO uses the system call; not checked");
        return;
    }
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let g = build_guest("vdso_shape", flavour);
        let mut env = test_env();
        env.push(("RUML_STRACE".into(), "1".into()));
        let out = run_ruml(&g.path, &["loop"], &env);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "loop: ok\n", "{out}");
        // The log works (the output's write is there) but has no clock
        // reads.
        assert!(out.stderr.contains("] write(0x1,"), "no strace log:\n{out}");
        let reads = out
            .stderr
            .lines()
            .filter(|l| l.contains("] clock_gettime("))
            .count();
        assert_eq!(reads, 0, "clock_gettime trapped {reads} times:\n{out}");
    }
}
