//! System V IPC and POSIX message queues (issue 10, item 1): the guest
//! programs in tests/guest run natively and under ruml with the same
//! output (differential), util-linux's ipcs/ipcrm inside ruml, and the
//! IPC limits in /proc/sys writable by root only inside the instance.

mod common;

use common::{differential, Flavour, Output};

fn assert_native_ok(native: &Output) {
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.ends_with("result: OK\n"),
        "native run did not end with `result: OK`:\n{native}"
    );
}

fn assert_has(out: &Output, want: &str) {
    assert!(out.stdout.contains(want), "output lacks {want:?}:\n{out}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// msgget/msgsnd/msgrcv/msgctl, semget/semop/semtimedop/semctl,
/// shmget/shmat/shmdt/shmctl: success paths, errors, blocking calls woken
/// by another process, SEM_UNDO at exit, shm across fork and exec.
#[test]
fn sysv_ipc_static() {
    let (native, _) = differential("sysv_ipc", Flavour::Static, &[]);
    assert_native_ok(&native);
    assert_has(&native, "child msgrcv: -1 EINTR");
    assert_has(&native, "child semop after removal: EIDRM");
    assert_has(&native, "nattch after child exit 1");
    assert_has(&native, "after exec: nattch 1");
}

#[test]
fn sysv_ipc_dynamic() {
    let (native, _) = differential("sysv_ipc", Flavour::Dynamic, &[]);
    assert_native_ok(&native);
}

/// The permission rules for a process that dropped root (EACCES, EPERM).
#[test]
fn sysv_ipc_permissions() {
    if !is_root() {
        eprintln!("sysv_ipc_permissions: needs root natively (setuid); skipped");
        return;
    }
    let (native, _) = differential("sysv_ipc", Flavour::Static, &["perm"]);
    assert_native_ok(&native);
}

/// util-linux's ipcs lists what a guest created, ipcrm removes it.
#[test]
fn ipcs_and_ipcrm_inside() {
    if !std::path::Path::new("/usr/bin/ipcs").exists() {
        eprintln!("ipcs_and_ipcrm_inside: util-linux's ipcs is not installed; skipped");
        return;
    }
    let env = common::test_env();
    let script = "ipcmk -Q >/dev/null && ipcmk -M 8192 >/dev/null && ipcmk -S 3 >/dev/null && \
                  ipcs -q | awk 'NR>3 && NF {print \"queue\", $4, $5, $6}' && \
                  ipcs -m | awk 'NR>3 && NF {print \"segment\", $4, $5, $6}' && \
                  ipcs -s | awk 'NR>3 && NF {print \"array\", $4, $5}' && \
                  ipcs -l | grep 'max' | sed 's/=.*//' && ipcrm -a && ipcs | grep -c '^0x' ; true";
    let out = common::run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(out.code(), 0, "{out}");
    // The names of the limits ipcs -l shows are the host's own (values
    // may differ from the host's settings).
    let native = common::run_native(
        "/bin/sh",
        &["-c", "ipcs -l | grep 'max' | sed 's/=.*//'"],
        &env,
    );
    let want = format!(
        "queue 644 0 0\nsegment 644 8192 0\narray 644 3\n{}0\n",
        native.stdout
    );
    assert_eq!(out.stdout, want, "{out}");
}

/// The limits under /proc/sys are Linux's defaults, writable by root
/// (with Linux's ranges) and take effect.
#[test]
fn ipc_sysctls() {
    let env = common::test_env();
    let script = "cd /proc/sys/kernel && cat msgmax msgmnb msgmni sem shmmax shmall shmmni && \
                  cat /proc/sys/fs/mqueue/msg_max /proc/sys/fs/mqueue/msgsize_max /proc/sys/fs/mqueue/queues_max && \
                  echo 100 > msgmax && cat msgmax && \
                  (echo -5 > msgmax) 2>/dev/null || echo rejected && \
                  (echo 40000 > msgmni) 2>/dev/null || echo rejected && \
                  echo '250 32000 32 128' > sem && cat sem && cat /proc/sysvipc/msg | head -1";
    let out = common::run_ruml("/bin/sh", &["-c", script], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout,
        "8192\n16384\n32000\n32000\t1024000000\t500\t32000\n18446744073692774399\n\
         18446744073692774399\n4096\n10\n8192\n256\n100\nrejected\nrejected\n250\t32000\t32\t128\n\
         \x20      key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
        "{out}"
    );
}

/// mq_open/mq_unlink/mq_timedsend/mq_timedreceive/mq_notify/
/// mq_getsetattr: rules, errors, priorities, a blocked receiver woken by
/// another process, notification by signal.
#[test]
fn posix_mqueue_static() {
    let (native, _) = differential("posix_mq", Flavour::Static, &[]);
    assert_native_ok(&native);
    assert_has(&native, "notification: code SI_MESGQ value 42 pid-is-me 1");
}

#[test]
fn posix_mqueue_dynamic() {
    let (native, _) = differential("posix_mq", Flavour::Dynamic, &[]);
    assert_native_ok(&native);
}

/// The mqueue filesystem: mounted inside ruml, its files are the queues
/// (QSIZE and the notification in the file's text), open(2) creates one
/// and unlink(2) removes one. (Not differential: mounting on the host
/// would change the host.)
#[test]
fn mqueue_filesystem() {
    let guest = common::build_guest("posix_mq", Flavour::Static);
    let env = common::test_env();
    let script = format!(
        "mkdir -p /tmp/mq && mount -t mqueue none /tmp/mq && {} fs /tmp/mq && grep -c ' /tmp/mq mqueue ' /proc/mounts",
        guest.path.display()
    );
    let out = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    assert_eq!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains("FAIL"), "{out}");
    assert_has(&out, "QSIZE 5 NOTIFY 1 SIGNO 0 NOTIFY_PID-is-me 1\n");
    assert_has(&out, "default attrs: maxmsg 10 msgsize 8192\n");
    assert!(out.stdout.ends_with("result: OK\n1\n"), "{out}");
}
