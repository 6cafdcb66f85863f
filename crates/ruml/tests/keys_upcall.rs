//! request_key's upcall (crates/kernel/src/keys/upcall.rs): the kernel
//! runs the guest's /sbin/request-key (Debian's keyutils, whose
//! /etc/request-key.conf has rules for "debug:*" descriptions) to
//! construct keys; natively the host kernel runs the host's.
//! tests/guest/keys_upcall.c: constructed, negated and rejected keys, a
//! description no rule matches, concurrent requesters, and the authority
//! calls without an authorisation. Native runs need root (the host
//! kernel's helper instantiates keys only a root requester's session
//! keyring lets it link) and a host whose init namespace has keyutils.

mod common;

use common::{build_guest, host_is_root, run_native, run_ruml, test_env, Flavour};

const WANT: &str = "\
join: ok
constructed: ok
payload: Debug callout-data
describe: ok user;0;0;3
found again: same
again with callout: same
loop: ok, payload: through cat
negate: ENOKEY, again ENOKEY, without callout ENOKEY
rejected: EKEYREJECTED, again EKEYREJECTED, without callout EKEYREJECTED
expired: EKEYEXPIRED, again EKEYEXPIRED, without callout EKEYEXPIRED
revoked: EKEYREVOKED, again EKEYREVOKED, without callout EKEYREVOKED
neg: ENOKEY, again ENOKEY, without callout ENOKEY
no rule: ENOKEY, again ENOKEY, the same negative key: yes
concurrent: 4 of 4 requesters got the one key
instantiate: EPERM
instantiate_iov: EPERM
instantiate too big: EINVAL
instantiate null, too big: EPERM
negate: EPERM
reject: EPERM
reject bad error: EINVAL
assume -1: EINVAL
assume 0: 0
assume key: ENOKEY
read auth key: ENOKEY
requestor keyring: ENOKEY
";

fn have_keyutils() -> bool {
    std::path::Path::new("/sbin/request-key").exists()
        && std::path::Path::new("/usr/share/keyutils/request-key-debug.sh").exists()
}

#[test]
fn request_key_upcall() {
    if !have_keyutils() {
        eprintln!("request_key_upcall: no /sbin/request-key (Debian's keyutils); skipped");
        return;
    }
    let guest = build_guest("keys_upcall", Flavour::Dynamic);
    let env = test_env();
    let ruml = run_ruml(&guest.path, &[] as &[&str], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert_eq!(
        ruml.stdout,
        WANT,
        "{}",
        common::line_diff(WANT, &ruml.stdout)
    );
    if !host_is_root() {
        eprintln!("request_key_upcall: native run needs root; compared with the expected output");
        return;
    }
    let native = run_native(&guest.path, &[] as &[&str], &env);
    if !native.stdout.contains("\npayload: Debug callout-data\n") {
        // The host kernel runs the helper of its init namespace (a
        // container's host may have no keyutils, or other rules).
        eprintln!("request_key_upcall: the host kernel's helper did not construct; native not compared:\n{native}");
        return;
    }
    common::assert_same(&native, &ruml);
}

/// Debian's `keyctl request2` through the helper, natively and under
/// ruml: the key request-key-debug.sh made, printed.
#[test]
fn keyctl_request2_through_the_helper() {
    if !have_keyutils() || !std::path::Path::new("/usr/bin/keyctl").exists() {
        eprintln!("keyctl_request2_through_the_helper: no keyutils; skipped");
        return;
    }
    let script = common::workspace_root().join("tests/scripts/keys_upcall.sh");
    let env = test_env();
    let ruml = run_ruml("/bin/sh", &[script.as_os_str()], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert!(
        ruml.stdout.contains("\nDebug callout\nprint: 0\n"),
        "{ruml}"
    );
    if !host_is_root() {
        return;
    }
    let native = run_native("/bin/sh", &[script.as_os_str()], &env);
    if !native.stdout.contains("\nDebug callout\n") {
        eprintln!("keyctl_request2_through_the_helper: the host kernel's helper did not construct; native not compared:\n{native}");
        return;
    }
    common::assert_same(&native, &ruml);
}

/// The helper's authority, ruml only (tests/guest/keys_upcall_auth.c
/// installs itself as the handler in /etc/request-key.d, which ruml's
/// private overlay root allows and a test may not do to the host): what
/// needs an assumed authorisation (EPERM, ENOKEY without), reading the
/// callout through KEY_SPEC_REQKEY_AUTH_KEY, KEY_SPEC_REQUESTOR_KEYRING,
/// INSTANTIATE, INSTANTIATE_IOV, REJECT, a helper that constructs
/// nothing (ENOKEY), the authorisation used up (ENOKEY after); REJECT
/// with the numbers Linux refuses (EINVAL) and with ones it keeps though
/// they have no name (515, ENOIOCTLCMD; 4094 given with high bits set),
/// which request_key, KEYCTL_SEARCH, READ and UPDATE then give back; the
/// /proc/keys lines of the authorisation key ("key:<target> pid:<requester>
/// ci:<callout length>"), of a key under construction, constructed and
/// negative. The expected text is the output of a root run on a Linux
/// 6.18 host, but for "assume after", where Linux says ENOKEY or
/// EKEYREVOKED depending on whether its garbage collector has unlinked
/// the used authorisation yet (ruml unlinks it at once: ENOKEY).
#[test]
fn helper_authority() {
    if !have_keyutils() {
        eprintln!("helper_authority: no /sbin/request-key (Debian's keyutils); skipped");
        return;
    }
    let guest = build_guest("keys_upcall_auth", Flavour::Static);
    let ruml = run_ruml(&guest.path, &[] as &[&str], &test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    let want = AUTH_WANT;
    assert_eq!(
        ruml.stdout,
        want,
        "{}",
        common::line_diff(want, &ruml.stdout)
    );
}

/// No /sbin/request-key (removed in ruml's private overlay root): the
/// construction fails with ENOENT and leaves a negative key (ENOKEY).
#[test]
fn no_helper_enoent_then_negative() {
    if !have_keyutils() {
        eprintln!("no_helper_enoent_then_negative: no /sbin/request-key to remove; skipped");
        return;
    }
    let guest = build_guest("keys_upcall_auth", Flavour::Static);
    let ruml = run_ruml(&guest.path, &["nohelper"], &test_env());
    assert_eq!(ruml.code(), 0, "{ruml}");
    let want = "\
unlink helper: ok
join: ok
request: ENOENT
again: ENOKEY
without callout: ENOKEY
";
    assert_eq!(
        ruml.stdout,
        want,
        "{}",
        common::line_diff(want, &ruml.stdout)
    );
}

const AUTH_WANT: &str = "\
join: ok
request inst: ok, payload: made by the helper
request iov: ok, payload: two pieces
request reject: EKEYREJECTED
request nothing: ENOKEY
request rawerr: errno 515
 again: errno 515
 without callout: errno 515
 search: errno 515
 read: errno 515
 update: errno 515
 negative key: I--Q-N- 30s 3f010000 0 0 [user     ] [authtest:rawerr]
request higherr: errno 4094
 again: errno 4094
 without callout: errno 4094
 search: errno 4094
 read: errno 4094
 update: errno 4094
 negative key: I--Q-N- 30s 3f010000 0 0 [user     ] [authtest:higherr]
helper for inst
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: inst
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 auth key: I------ perm 1b010000 0 0 [.request_] [key:TARGET pid:REQUESTER ci:4]
 target: ---QU-- perm 3f010000 0 0 [user     ] [authtest:inst]
 construct: ok
 target after: I--Q--- perm 3f010000 0 0 [user     ] [authtest:inst: 18]
 again: EPERM
 assume after: ENOKEY
helper for iov
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: iov
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 construct: ok
 again: EPERM
 assume after: ENOKEY
helper for reject
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: reject
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 construct: ok
 again: EPERM
 assume after: ENOKEY
helper for nothing
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: nothing
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 left alone
helper for rawerr
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: rawerr
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 reject 0: EINVAL
 reject 512: EINVAL
 reject 513: EINVAL
 reject 514: EINVAL
 reject 516: EINVAL
 reject 4095: EINVAL
 reject 4096: EINVAL
 reject 4294967295: EINVAL
 reject -1: EINVAL
 construct: ok
 again: EPERM
 assume after: ENOKEY
helper for higherr
 drop authority: 0
 instantiate without: EPERM
 read auth key without: ENOKEY
 requestor keyring without: ENOKEY
 assume other key: ENOKEY
 assume: ok, the auth key: yes
 auth describe: .request_key_auth, names the key: yes
 callout: higherr
 requestor keyring is the session: yes
 instantiate another key: EPERM
 instantiate into the auth key: EINVAL
 empty payload: EINVAL
 construct: ok
 again: EPERM
 assume after: ENOKEY
";
