//! The cheaper I/O paths of issue 9 item 5 keep Linux's semantics:
//! tmpfs reads and writes that copy straight between the file's frames
//! and the guest's, hostfs ones the host serves straight into and out of
//! the guest's frames (`tests/guest/tmpfs_direct.c`, differential), and the
//! overlay root's cached view of the host layer (names and attributes
//! follow changes made through ruml at once).

mod common;

use common::{
    assert_same, build_guest, differential, run_native, run_ruml_raw, test_env, Flavour, Output,
    TempDir,
};

fn assert_ok(out: &Output) {
    assert_eq!(out.code(), 0, "run failed:\n{out}");
    assert!(out.stdout.ends_with("result: OK\n"), "not OK:\n{out}");
    assert!(!out.stdout.contains("FAIL"), "a check failed:\n{out}");
}

#[test]
fn tmpfs_direct_static() {
    let (native, ruml) = differential("tmpfs_direct", Flavour::Static, &[]);
    assert_ok(&native);
    assert_ok(&ruml);
}

#[test]
fn tmpfs_direct_dynamic() {
    let (native, ruml) = differential("tmpfs_direct", Flavour::Dynamic, &[]);
    assert_ok(&native);
    assert_ok(&ruml);
}

/// The same on a read-write hostfs mount: natively in a host directory,
/// under ruml in that directory mounted with `mount=`.
#[test]
fn hostfs_direct() {
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let g = build_guest("tmpfs_direct", flavour);
        let dir = TempDir::new("hostfs-direct");
        let d = dir.path().to_string_lossy().into_owned();
        let native = run_native(&g.path, &[d.as_str()], &test_env());
        let mount = format!("mount={d}:/mnt/hd");
        let prog = g.path.to_string_lossy().into_owned();
        let ruml = run_ruml_raw(&["quiet", &mount, "--", &prog, "/mnt/hd"], &test_env());
        assert_ok(&native);
        assert_same(&native, &ruml);
    }
}

/// Changes through ruml to objects of the host layer show at once, cache
/// or not: a copied-up file's new size and mode, a removed file, a new
/// one where a name was missing (a cached negative lookup of the lower
/// layer must not hide an upper object).
#[test]
fn overlay_cache_follows_changes_through_ruml() {
    let script = "stat -c %s /etc/passwd >/dev/null; \
                  test -e /etc/ruml-none || echo absent; \
                  echo x > /etc/ruml-none && cat /etc/ruml-none; \
                  cp /etc/passwd /tmp/o && s=$(stat -c %s /etc/passwd); \
                  echo more >> /etc/passwd; \
                  test $(stat -c %s /etc/passwd) -eq $((s + 5)) && echo grew; \
                  chmod 600 /etc/passwd && stat -c %a /etc/passwd; \
                  rm /etc/ruml-none && test ! -e /etc/ruml-none && echo removed";
    let out = run_ruml_raw(&["quiet", "--", "/bin/sh", "-c", script], &test_env());
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec!["absent", "x", "grew", "600", "removed"],
        "{out}"
    );
}
