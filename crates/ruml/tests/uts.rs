//! The UTS names and /proc/sys/kernel (issue 10): sethostname/setdomainname with Linux's errors
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

/// /proc/sys/kernel's fixed values and the random directory: boot_id is
/// one UUID for the whole boot, uuid a new one on every read.
#[test]
fn proc_sys_kernel_random() {
    let env = common::test_env();
    let script = "cd /proc/sys/kernel && cat cap_last_cap overflowuid overflowgid random/poolsize && \
                  a=$(cat random/boot_id) && b=$(cat random/boot_id) && [ \"$a\" = \"$b\" ] && echo same-boot-id && \
                  u=$(cat random/uuid) && v=$(cat random/uuid) && [ \"$u\" != \"$v\" ] && echo fresh-uuid && \
                  echo \"$a\" | grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' && \
                  ls random | tr '\\n' ' '";
    let out = common::run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout,
        "40\n65534\n65534\n256\nsame-boot-id\nfresh-uuid\n1\nboot_id entropy_avail poolsize uuid ",
        "{out}"
    );
}
