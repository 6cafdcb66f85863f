//! Issue 10 (Linux conformance I), the parts the other suites leave out:
//! per-thread nice (differential), the ALARM clocks and CAP_WAKE_ALARM,
//! hostile input to System V IPC and POSIX message queues (differential),
//! chrt and taskset from the host's util-linux inside, and the /proc/sys
//! limits root may write with their effect (inside only: a native run
//! would change the host).

mod common;

use common::{differential, host_has_sys_resource, Flavour, Output};

fn assert_ok(native: &Output) {
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.ends_with("result: OK\n") && !native.stdout.contains("FAIL"),
        "native run reports a failed check:\n{native}"
    );
}

fn assert_has(out: &Output, wants: &[&str]) {
    for want in wants {
        assert!(out.stdout.contains(want), "missing {want:?}:\n{out}");
    }
}

/// setpriority(PRIO_PROCESS, tid) changes that thread alone; threads and
/// children start with their creator's nice; PRIO_PGRP reaches every
/// thread; /proc/PID/task/TID/stat shows each (tests/guest/thread_nice.c).
#[test]
fn nice_is_per_thread() {
    let (native, _) = differential("thread_nice", Flavour::Static, &[]);
    assert_ok(&native);
    assert_has(&native, &["getpriority(tid): 7\n", "main 5 worker 7\n"]);
}

#[test]
fn nice_is_per_thread_dynamic() {
    let (native, _) = differential("thread_nice", Flavour::Dynamic, &[]);
    assert_ok(&native);
}

/// ruml's instance has an RTC, so the ALARM clocks read; arming them needs
/// CAP_WAKE_ALARM (tests/guest/alarm_clocks.c). Under ruml only: whether
/// the host has an RTC decides its answers.
#[test]
fn alarm_clocks_need_cap_wake_alarm() {
    let guest = common::build_guest("alarm_clocks", Flavour::Static);
    let out = common::run_ruml(&guest.path, &[] as &[&str], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    assert_has(
        &out,
        &[
            "REALTIME_ALARM tracks REALTIME: 1\n",
            "BOOTTIME_ALARM tracks BOOTTIME: 1\n",
            "getres: ok\n",
            "settime: EINVAL\n",
            "nanosleep MONOTONIC_RAW: EOPNOTSUPP\n",
            "nanosleep REALTIME_COARSE: EOPNOTSUPP\n",
            "root timer_create: ok\n",
            "root timer_settime: ok\n",
            "fired: SIGUSR1\n",
            "root timerfd_create: ok\n",
            "root clock_nanosleep: ok\n",
            "user gettime: ok ok\n",
            "user timer_create: EPERM EPERM\n",
            "user timerfd_create: EPERM EPERM\n",
            "user clock_nanosleep: EPERM\n",
            "user clock_nanosleep bad pointer: EFAULT\n",
            "user part: 0\n",
            "result: OK\n",
        ],
    );
}

/// Absurd sizes and counts, bad pointers, one key created by eight
/// processes at once, IPC_RMID waking blocked waiters and racing with use
/// by four processes, POSIX queue limits (tests/guest/ipc_hostile.c).
#[test]
fn ipc_hostile_input() {
    let (native, _) = differential("ipc_hostile", Flavour::Static, &[]);
    assert_ok(&native);
    assert_has(
        &native,
        &[
            "msgget winners: 1\n",
            "semget winners: 1\n",
            "shmget winners: 1\n",
            "waiters woken with EIDRM: 6 of 6\n",
            "users that saw only Linux's errors: 4 of 4\n",
        ],
    );
}

/// util-linux's chrt and taskset inside: policies and priorities set and
/// reported, SCHED_RESET_ON_FORK, the priority ranges, errors; affinity
/// masks and lists, nproc following the mask.
#[test]
fn chrt_and_taskset_inside() {
    let script = r#"
chrt -m
chrt -f 10 sh -c 'chrt -p $$' | sed 's/pid [0-9]*/pid P/'
chrt -r -R 5 sh -c 'chrt -p $$' | sed 's/pid [0-9]*/pid P/'
chrt -b 0 sh -c 'chrt -p $$' | sed 's/pid [0-9]*/pid P/'
chrt -i 0 sh -c 'chrt -p $$' | sed 's/pid [0-9]*/pid P/'
sleep 30 & p=$!
chrt -f -p 20 $p && chrt -p $p | sed 's/pid [0-9]*/pid P/'
chrt -o -p 0 $p && chrt -p $p | sed 's/pid [0-9]*/pid P/'
kill $p
chrt -f 100 true 2>/dev/null || echo "chrt -f 100: refused"
su nobody -s /bin/sh -c 'chrt -f 1 true' 2>/dev/null || echo "nobody chrt -f 1: refused"
taskset -c 0 sh -c 'taskset -p $$; taskset -cp $$; nproc' | sed 's/pid [0-9]*/pid P/'
taskset 0x1 nproc
taskset -c 0-1 sh -c 'taskset -cp $$' | sed 's/pid [0-9]*/pid P/'
taskset -c 4000 true 2>/dev/null || echo "taskset -c 4000: refused"
echo done
"#;
    let out = common::run_ruml("/bin/sh", &["-c", script], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    assert_has(
        &out,
        &[
            "SCHED_FIFO min/max priority\t: 1/99\n",
            "SCHED_OTHER min/max priority\t: 0/0\n",
            "pid P's current scheduling policy: SCHED_FIFO\npid P's current scheduling priority: 10\n",
            "pid P's current scheduling policy: SCHED_RR|SCHED_RESET_ON_FORK\npid P's current scheduling priority: 5\n",
            "pid P's current scheduling policy: SCHED_BATCH\n",
            "pid P's current scheduling policy: SCHED_IDLE\n",
            "pid P's current scheduling priority: 20\n",
            "pid P's current scheduling policy: SCHED_OTHER\npid P's current scheduling priority: 0\n",
            "chrt -f 100: refused\n",
            "nobody chrt -f 1: refused\n",
            "pid P's current affinity mask: 1\npid P's current affinity list: 0\n1\n",
            "taskset -c 4000: refused\n",
            "done\n",
        ],
    );
}

/// kernel.pid_max bounds the pids fork hands out; kernel.threads-max
/// bounds the instance's threads (fork: EAGAIN); net.core.somaxconn caps
/// listen()'s backlog (a unix listener queues as many connections as with
/// that backlog); Linux's ranges (EINVAL); the read-only ones refuse root.
#[test]
fn proc_sys_limits_have_effect_inside() {
    let script = r#"
import errno, os, socket
def rd(p): return open('/proc/sys/' + p).read().strip()
def wr(p, v):
    try:
        with open('/proc/sys/' + p, 'w') as f: f.write(v)
        return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print('pid_max 300:', wr('kernel/pid_max', '300'))
print('pid_max 4194305:', wr('kernel/pid_max', '4194305'))
print('pid_max 400:', wr('kernel/pid_max', '400'), rd('kernel/pid_max'))
top = 0
for i in range(450):
    p = os.fork()
    if p == 0: os._exit(0)
    os.waitpid(p, 0)
    top = max(top, p)
print('pids below 400 after 450 forks:', top < 400)
print('pid_max back:', wr('kernel/pid_max', '4194304'))
print('threads-max 19:', wr('kernel/threads-max', '19'))
print('threads-max 20:', wr('kernel/threads-max', '20'), rd('kernel/threads-max'))
r, w = os.pipe()
kids, err = [], None
for i in range(40):
    try:
        p = os.fork()
    except OSError as e:
        err = errno.errorcode[e.errno]; break
    if p == 0:
        os.close(w); os.read(r, 1); os._exit(0)
    kids.append(p)
os.close(w)
for p in kids: os.waitpid(p, 0)
print('fork past threads-max:', err, len(kids) < 20)
print('threads-max back:', wr('kernel/threads-max', '8192'))
def queued(backlog):
    path = '/tmp/somax-%d' % os.getpid()
    s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(backlog)
    cs, n = [], 0
    for i in range(200):
        c = socket.socket(socket.AF_UNIX); c.setblocking(False)
        try: c.connect(path)
        except OSError: break
        cs.append(c); n += 1
    s.close(); os.unlink(path)
    for c in cs: c.close()
    return n
print('somaxconn -1:', wr('net/core/somaxconn', '-1'))
base = queued(3)
print('somaxconn 3:', wr('net/core/somaxconn', '3'), rd('net/core/somaxconn'))
print('listen(100) queues as listen(3):', queued(100) == base, base < 100)
print('somaxconn back:', wr('net/core/somaxconn', '4096'))
print('overcommit_memory:', wr('vm/overcommit_memory', '1'), rd('vm/overcommit_memory'))
print('max_map_count:', wr('vm/max_map_count', '1'))
print('file-max:', wr('fs/file-max', '1'))
pid = os.fork()
if pid == 0:
    os.setgid(65534); os.setuid(65534)
    print('user pid_max:', wr('kernel/pid_max', '1000'))
    os._exit(0)
os.waitpid(pid, 0)
"#;
    let out = common::run_ruml(
        "/usr/bin/python3",
        &["-u", "-c", script],
        &common::test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_has(
        &out,
        &[
            "pid_max 300: EINVAL\n",
            "pid_max 4194305: EINVAL\n",
            "pid_max 400: ok 400\n",
            "pids below 400 after 450 forks: True\n",
            "pid_max back: ok\n",
            "threads-max 19: EINVAL\n",
            "threads-max 20: ok 20\n",
            "fork past threads-max: EAGAIN True\n",
            "threads-max back: ok\n",
            "somaxconn -1: EINVAL\n",
            "somaxconn 3: ok 3\n",
            "listen(100) queues as listen(3): True True\n",
            "somaxconn back: ok\n",
            "overcommit_memory: EACCES 0\n",
            "max_map_count: EACCES\n",
            "file-max: EACCES\n",
            "user pid_max: EACCES\n",
        ],
    );
}

/// /proc/PID/oom_score_adj readable and writable as Linux: the range,
/// inheritance at fork, root lowering it (CAP_SYS_RESOURCE) and the floor
/// that sets for the unprivileged, other users' files refused;
/// /proc/PID/oom_score in 0..2000. Under ruml as root; natively too, and
/// compared, when the host's root holds CAP_SYS_RESOURCE.
#[test]
fn oom_score_adj_as_linux() {
    let script = r#"
import ctypes, errno, os
def rd(p='/proc/self/oom_score_adj'): return open(p).read().strip()
def wr(v, p='/proc/self/oom_score_adj'):
    try:
        with open(p, 'w') as f: f.write(v)
        return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print('reset 0:', wr('0'), rd())
print('500:', wr('500'), rd())
p = os.fork()
if p == 0:
    print('child inherits:', rd()); os._exit(0)
os.waitpid(p, 0)
print('1001:', wr('1001'), '-1001:', wr('-1001'), 'abc:', wr('abc'), 'empty:', wr(''))
print('with newline:', wr('300\n'), rd())
print('root -500:', wr('-500'), rd())
s = int(rd('/proc/self/oom_score'))
print('oom_score in range:', 0 <= s <= 2000)
parent = os.getpid()
p = os.fork()
if p == 0:
    os.setgid(65534); os.setuid(65534)
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
    print('user -600 (below the floor):', wr('-600'))
    print('user 100:', wr('100'), rd())
    print('user -400 (above the floor):', wr('-400'), rd())
    print("user writes root's:", wr('1', '/proc/%d/oom_score_adj' % parent))
    os._exit(0)
os.waitpid(p, 0)
print('-1000 score:', wr('-1000'), rd('/proc/self/oom_score'))
print('back to 0:', wr('0'), rd())
"#;
    let env = common::test_env();
    let ruml = common::run_ruml("/usr/bin/python3", &["-u", "-c", script], &env);
    assert_eq!(ruml.code(), 0, "{ruml}");
    assert_has(
        &ruml,
        &[
            "reset 0: ok 0\n500: ok 500\nchild inherits: 500\n",
            "1001: EINVAL -1001: EINVAL abc: EINVAL empty: ok\n",
            "with newline: ok 300\n",
            "root -500: ok -500\n",
            "oom_score in range: True\n",
            "user -600 (below the floor): EACCES\n",
            "user 100: ok 100\n",
            "user -400 (above the floor): ok -400\n",
            "user writes root's: EACCES\n",
            "-1000 score: ok 0\n",
            "back to 0: ok 0\n",
        ],
    );
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 && host_has_sys_resource() {
        let native = common::run_native("/usr/bin/python3", &["-u", "-c", script], &env);
        common::assert_same(&native, &ruml);
    } else {
        eprintln!(
            "oom_score_adj_as_linux: the native half needs root with CAP_SYS_RESOURCE; skipped"
        );
    }
}

/// chdir, fchdir and chroot check search permission on the directory
/// (EACCES), chroot then CAP_SYS_CHROOT (EPERM); root may. Natively and
/// under ruml as root dropping to uid 65534, outputs compared.
#[test]
fn chdir_fchdir_chroot_permissions() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("chdir_fchdir_chroot_permissions: needs root natively; skipped");
        return;
    }
    let script = r#"
import errno, os, shutil
def r(f, *a):
    try:
        f(*a); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
d = '/tmp/ruml-chroot-%d' % os.getpid()
os.mkdir(d, 0o755)
os.mkdir(d + '/private', 0o700)
os.mkdir(d + '/open', 0o755)
os.mkdir(d + '/noexec', 0o644)
fd = os.open(d + '/private', os.O_RDONLY | os.O_DIRECTORY)
fdn = os.open(d + '/noexec', os.O_RDONLY | os.O_DIRECTORY)
p = os.fork()
if p == 0:
    os.setgid(65534); os.setuid(65534)
    print('user chdir private:', r(os.chdir, d + '/private'))
    print('user chdir noexec:', r(os.chdir, d + '/noexec'))
    print('user chdir open:', r(os.chdir, d + '/open'))
    print('user fchdir private:', r(os.fchdir, fd))
    print('user fchdir noexec:', r(os.fchdir, fdn))
    print('user chroot private:', r(os.chroot, d + '/private'))
    print('user chroot open:', r(os.chroot, d + '/open'))
    print('user chroot file:', r(os.chroot, '/etc/passwd'))
    os._exit(0)
os.waitpid(p, 0)
p = os.fork()
if p == 0:
    print('root fchdir noexec:', r(os.fchdir, fdn))
    print('root chroot private:', r(os.chroot, d + '/private'), os.listdir('/'))
    os._exit(0)
os.waitpid(p, 0)
shutil.rmtree(d)
"#;
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &["-u", "-c", script], &env);
    let ruml = common::run_ruml("/usr/bin/python3", &["-u", "-c", script], &env);
    common::assert_same(&native, &ruml);
    assert_has(
        &native,
        &[
            "user chdir private: EACCES\n",
            "user fchdir private: EACCES\n",
            "user chroot private: EACCES\n",
            "user chroot open: EPERM\n",
        ],
    );
}
