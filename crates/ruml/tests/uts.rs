//! The UTS names (issue 10): sethostname/setdomainname with Linux's errors
//! (differential: every call that would succeed natively is made only
//! inside ruml), and the names set through the calls, `hostname`,
//! `domainname` and /proc/sys/kernel/{hostname,domainname} all agreeing
//! inside the instance.

mod common;

use common::{differential, Flavour};

#[test]
fn uts_name_errors() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("uts_name_errors: needs root natively (EPERM after setuid); skipped");
        return;
    }
    let (native, _) = differential("uts_names", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(native.stdout.ends_with("result: OK\n"), "{native}");
}

#[test]
fn hostname_and_domainname_inside() {
    let env = common::test_env();
    let script = "hostname; domainname; hostname guest1 && uname -n && cat /proc/sys/kernel/hostname && \
                  domainname example.org && domainname && cat /proc/sys/kernel/domainname && \
                  echo fromproc > /proc/sys/kernel/hostname && hostname && \
                  printf 'dom2\\nignored' > /proc/sys/kernel/domainname && domainname && \
                  python3 -c \"import os; os.setuid(65534); open('/proc/sys/kernel/hostname', 'w')\" 2>&1 | grep -o PermissionError; hostname";
    let out = common::run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout,
        "ruml\n(none)\nguest1\nguest1\nexample.org\nexample.org\nfromproc\ndom2\nPermissionError\nfromproc\n",
        "{out}"
    );
}
