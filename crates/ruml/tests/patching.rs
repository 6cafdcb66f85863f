//! System-call sites: the census of site shapes (`crates/host/src/
//! patch.rs`, counted under `RUML_HOST_STATS` in both backends) that
//! syscall-site patching rewrites on the seccomp backend; the rewriting
//! itself is tested in `patch_sites.rs`. This checks that each shape is
//! recognised at its real sites and that the calls behave as natively,
//! trapping (`patch=off`) and rewritten (the default on seccomp), and
//! that calls through rewritten sites are counted as `site_patched`.

mod common;

use common::{assert_same, build_guest, run_native, run_ruml_raw, test_env, Flavour, TempDir};

const N: u64 = 200;

fn counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in:\n{stats}"))
}

#[test]
fn syscall_site_shapes_are_counted() {
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let guest = build_guest("syscall_sites", flavour);
        let n = N.to_string();
        let native = run_native(&guest.path, &[n.as_str()], &test_env());
        let dir = TempDir::new("sites");
        let stats = dir.path().join("stats");
        let mut env = test_env();
        env.push((
            "RUML_HOST_STATS".to_string(),
            stats.to_string_lossy().into_owned(),
        ));
        // patch=off: a patched site stops trapping as itself (its traps
        // come through the entry, from rewritten bytes).
        let mut args: Vec<String> = vec!["quiet".into(), "patch=off".into(), "--".into()];
        args.push(guest.path.to_string_lossy().into_owned());
        args.push(n.clone());
        let ruml = run_ruml_raw(&args, &env);
        assert_same(&native, &ruml);
        assert_eq!(ruml.code(), 0, "{}", ruml.stderr);
        let s = std::fs::read_to_string(&stats).expect("RUML_HOST_STATS file");
        // Each site ran N times; the program's own start-up adds more.
        assert!(counter(&s, "site_mov_nr") >= N, "{}:\n{s}", flavour.name());
        assert!(
            counter(&s, "site_mov_nr64") >= N,
            "{}:\n{s}",
            flavour.name()
        );
        assert!(
            counter(&s, "site_syscall_fn") >= N,
            "{}:\n{s}",
            flavour.name()
        );
        assert!(counter(&s, "site_mov_edi") >= N, "{}:\n{s}", flavour.name());
        let sites = [
            "site_mov_nr",
            "site_mov_nr64",
            "site_syscall_fn",
            "site_mov_edi",
            "site_other",
        ];
        let total: u64 = sites.iter().map(|c| counter(&s, c)).sum();
        // Every system-call trap is classified (and the first trap of each
        // stub thread, which parks it, without being a guest's call).
        assert!(
            total >= counter(&s, "trap_syscall"),
            "{}:\n{s}",
            flavour.name()
        );
        // patch=off: every call trapped, none came through a rewrite.
        assert_eq!(counter(&s, "site_patched"), 0, "{}:\n{s}", flavour.name());
        // The same calls through rewritten sites (seccomp, the default;
        // elsewhere patching changes nothing): results and registers as
        // natively, and counted as patched calls, not as their shapes.
        let _ = std::fs::remove_file(&stats);
        let mut args: Vec<String> = vec!["quiet".into(), "--".into()];
        args.push(guest.path.to_string_lossy().into_owned());
        args.push(n.clone());
        let ruml = run_ruml_raw(&args, &env);
        assert_same(&native, &ruml);
        let s = std::fs::read_to_string(&stats).expect("RUML_HOST_STATS file");
        let patched = counter(&s, "site_patched");
        if seccomp_run() {
            // Each of the four sites traps once, is rewritten, and makes
            // its other N - 1 calls through the entry.
            assert!(patched >= 4 * (N - 1), "{}:\n{s}", flavour.name());
            assert!(counter(&s, "site_mov_nr64") < N, "{}:\n{s}", flavour.name());
            assert!(
                counter(&s, "site_syscall_fn") < N,
                "{}:\n{s}",
                flavour.name()
            );
        } else {
            assert_eq!(patched, 0, "{}:\n{s}", flavour.name());
        }
    }
}

/// Whether this run's ruml has the seccomp backend (patching's home).
fn seccomp_run() -> bool {
    common::test_mode().as_deref() != Some("ptrace")
}
