//! Keyrings (crates/kernel/src/keys/): add_key, request_key and keyctl
//! through raw system calls (tests/guest/keys.c) natively and under
//! ruml, on a fresh anonymous session keyring so nothing the host holds
//! shows; where the host refuses keyrings (a container's seccomp profile),
//! ruml's output is held against the host run recorded in
//! tests/guest/keys.expected. Quotas and their sysctls
//! (tests/guest/keys_quota.c) run in ruml only: they change the instance's
//! limits, which a test may not do to the host. keyctl on keys in every
//! state and the configuration-dependent operations: tests/guest/keys_sweep.c.

mod common;

use common::{build_guest, run_native, run_ruml, test_env, workspace_root, Flavour};

fn keys(flavour: Flavour) {
    let guest = build_guest("keys", flavour);
    let env = test_env();
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_eq!(ruml.code(), 0, "ruml run failed:\n{ruml}");
    let native = run_native(&guest.path, &[] as &[&str], &env);
    let expected = if native.code() == 0 && native.stdout.starts_with("join anon: ok\n") {
        native.stdout.clone()
    } else {
        eprintln!("the host refuses keyrings here; comparing with keys.expected");
        std::fs::read_to_string(workspace_root().join("tests/guest/keys.expected"))
            .expect("tests/guest/keys.expected")
    };
    assert_eq!(
        expected,
        ruml.stdout,
        "keys differ:\n{}",
        common::line_diff(&expected, &ruml.stdout)
    );
}

#[test]
fn keys_static() {
    keys(Flavour::Static);
}

#[test]
fn keys_dynamic() {
    keys(Flavour::Dynamic);
}

#[test]
fn key_quotas_and_sysctls() {
    let guest = build_guest("keys_quota", Flavour::Static);
    let ruml = run_ruml(&guest.path, &[] as &[&str], &test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    let want = "\
write /proc/sys/kernel/keys/maxbytes: EINVAL
joined: 1
92 bytes: 0
key-users 0: 2/5 97/100
5 more bytes: EDQUOT
update grows past: EDQUOT
r: 3 added, then EDQUOT
key-users 0: 5/5 109/100000
rejoined: 1
key-users 0: 1/100 5/100000
user joined: 1
u: 2 added, then EDQUOT
key-users 1000: 3/3 13/20000
describe: 32 keyring;1000;1000;3f030000;_ses
child status 0
";
    assert_eq!(
        ruml.stdout,
        want,
        "{}",
        common::line_diff(want, &ruml.stdout)
    );
}

/// keyctl on keys in every state (live, revoked, expired, negative) and
/// the operations a kernel's configuration decides (persistent keyrings,
/// Diffie-Hellman, public keys, notifications: EOPNOTSUPP exactly when
/// KEYCTL_CAPABILITIES says so; the capability buffer cleared past its
/// two bytes), tests/guest/keys_sweep.c natively and under ruml. The
/// negative key comes from /sbin/request-key; where the host refuses
/// keyrings or its helper, only ruml's run is checked.
#[test]
fn keyctl_states_and_configuration() {
    let guest = build_guest("keys_sweep", Flavour::Static);
    let env = test_env();
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_eq!(ruml.code(), 0, "ruml run failed:\n{ruml}");
    assert!(
        ruml.stdout
            .contains("\nnegative:\n describe ok\n read ENOKEY\n")
            && ruml.stdout.contains("\n dh_compute: as the bit says\n"),
        "{ruml}"
    );
    let native = run_native(&guest.path, &[] as &[&str], &env);
    if native.code() != 0 || !native.stdout.contains("\nnegative:\n") {
        eprintln!("the host refuses keyrings or has no request-key helper here; native not compared:\n{native}");
        return;
    }
    common::assert_same(&native, &ruml);
}
