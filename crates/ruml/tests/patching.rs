//! System-call sites: the census of site shapes (`crates/host/src/
//! patch.rs`, counted under `RUML_HOST_STATS` in both backends) that
//! syscall-site patching rewrites on the seccomp backend; the rewriting
//! itself is tested in `patch_sites.rs`. This checks that each shape is
//! recognised at its real sites and that the calls behave as natively,
//! trapping and (`patch=on`) rewritten.

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
        // The same calls through rewritten sites (seccomp; elsewhere
        // patch=on changes nothing): results and registers as natively.
        let mut args: Vec<String> = vec!["quiet".into(), "patch=on".into(), "--".into()];
        args.push(guest.path.to_string_lossy().into_owned());
        args.push(n.clone());
        let ruml = run_ruml_raw(&args, &test_env());
        assert_same(&native, &ruml);
    }
}
