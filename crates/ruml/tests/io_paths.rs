//! The cheaper I/O paths of issue 9 item 5 keep Linux's semantics:
//! tmpfs reads and writes that copy straight between the file's frames
//! and the guest's (`tests/guest/tmpfs_direct.c`, differential), and the
//! overlay root's cached view of the host layer (names and attributes
//! follow changes made through ruml at once).

mod common;

use common::{differential, run_ruml_raw, test_env, Flavour, Output};

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
