//! The Linux process model (issue 3): threads, futexes, robust mutexes,
//! signals and threads, alternate signal stacks, SA_RESTART, FPU state
//! across signal handlers, zombies and subreapers, vfork/posix_spawn,
//! execve from a thread, job control, timers, CPU-time accounting and exit
//! statuses. Every program in tests/guest prints a deterministic report and
//! exits 0 natively; the differential oracle requires ruml to agree.

mod common;

use common::{differential, Flavour, Output};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `cpu_time` needs both host cores to itself for its second of spinning;
/// the other tests in this binary hold this lock shared, it holds it
/// exclusively.
static CPU: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs `name` natively and under ruml, requires the same output, and that
/// the native run itself succeeded with every check "ok" (so the oracle
/// compares something meaningful).
fn check(name: &str, flavour: Flavour, args: &[&str]) -> (Output, Output) {
    let _g = shared();
    let (native, ruml) = differential(name, flavour, args);
    assert_native_ok(&native);
    (native, ruml)
}

fn assert_native_ok(native: &Output) {
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(
        native.stdout.ends_with("result: OK\n"),
        "native run did not end with `result: OK`:\n{native}"
    );
    assert!(
        !native.stdout.contains("FAIL"),
        "native run reports a failed check:\n{native}"
    );
}

fn assert_has(out: &Output, want: &str) {
    assert!(out.stdout.contains(want), "output lacks {want:?}:\n{out}");
}

// --- 1. pthread stress ------------------------------------------------------

#[test]
fn pthread_stress_static() {
    let (native, _) = check("pthread_stress", Flavour::Static, &[]);
    assert_has(&native, "mutex counter total: 80000");
    assert_has(
        &native,
        "barrier rounds: 200, serial threads: 200, errors: 0",
    );
}

#[test]
fn pthread_stress_dynamic() {
    check("pthread_stress", Flavour::Dynamic, &[]);
}

// --- 2. robust mutexes ------------------------------------------------------

#[test]
fn robust_mutex_static() {
    let (native, _) = check("robust_mutex", Flavour::Static, &[]);
    assert_has(&native, "lock after owner thread died: EOWNERDEAD");
    assert_has(&native, "parent blocked in lock woke with: EOWNERDEAD");
}

#[test]
fn robust_mutex_dynamic() {
    check("robust_mutex", Flavour::Dynamic, &[]);
}

// --- 3. signals and threads -------------------------------------------------

#[test]
fn signal_threads_static() {
    let (native, _) = check("signal_threads", Flavour::Static, &[]);
    assert_has(&native, "kill() handled by the only unblocking thread: ok");
    assert_has(&native, "sigwait in a thread got SIGHUP: ok");
}

#[test]
fn signal_threads_dynamic() {
    check("signal_threads", Flavour::Dynamic, &[]);
}

// --- 4. nested handlers on an alternate stack -------------------------------

#[test]
fn sigaltstack_nested_static() {
    let (native, _) = check("sigaltstack_nested", Flavour::Static, &[]);
    assert_has(&native, "SIGUSR1 handler runs on the altstack: ok");
    assert_has(&native, "SA_NODEFER recursion depth: 3");
}

// --- 5. SA_RESTART vs EINTR -------------------------------------------------

#[test]
fn sa_restart_static() {
    let (native, _) = check("sa_restart", Flavour::Static, &[]);
    assert_has(&native, "read without SA_RESTART: -1 errno=EINTR alarms=1");
    assert_has(
        &native,
        "read with SA_RESTART (child writes): 5 \"hello\" alarms=1",
    );
}

// --- 6. sigreturn restores the FPU state -------------------------------------

#[test]
fn fpu_sigreturn_static() {
    let (native, _) = check("fpu_sigreturn", Flavour::Static, &[]);
    assert_has(&native, "xmm0-14 intact after sigreturn: ok");
    assert_has(&native, "rounding mode (FE_UPWARD) survives: ok");
}

#[test]
fn fpu_sigreturn_dynamic() {
    check("fpu_sigreturn", Flavour::Dynamic, &[]);
}

// --- 7. zombies and subreapers ----------------------------------------------

#[test]
fn zombie_subreaper_static() {
    let (native, _) = check("zombie_subreaper", Flavour::Static, &[]);
    assert_has(&native, "reparented to subreaper: yes");
    assert_has(
        &native,
        "waitpid(WNOHANG) reaps the zombie with status 7: ok",
    );
}

// --- 8. vfork + exec, posix_spawn --------------------------------------------

#[test]
fn vfork_spawn_static() {
    let (native, _) = check("vfork_spawn", Flavour::Static, &[]);
    assert_has(&native, "vfork+exec missing path: exit 127: ok");
    assert_has(&native, "posix_spawn missing file: ENOENT");
}

#[test]
fn vfork_spawn_dynamic() {
    check("vfork_spawn", Flavour::Dynamic, &[]);
}

// --- 9. execve from a second thread -----------------------------------------

#[test]
fn exec_thread_static() {
    let (native, _) = check("exec_thread", Flavour::Static, &[]);
    assert_has(&native, "pid kept: yes");
    assert_has(&native, "runs as the thread-group leader: yes");
}

#[test]
fn exec_thread_dynamic() {
    check("exec_thread", Flavour::Dynamic, &[]);
}

// --- 10. stop / continue ----------------------------------------------------

#[test]
fn stop_cont_static() {
    let (native, _) = check("stop_cont", Flavour::Static, &[]);
    assert_has(&native, "SIGCHLD #0: CLD_STOPPED status=19 from child: yes");
    assert_has(
        &native,
        "SIGCHLD #1: CLD_CONTINUED status=18 from child: yes",
    );
    assert_has(&native, "SIGCHLD #4: CLD_KILLED status=15 from child: yes");
}

/// A wait with a temporary mask (sigsuspend, ppoll, pselect6,
/// epoll_pwait) stopped and continued with nothing left to deliver, as
/// killall5 does at shutdown, restarts with its mask (epoll_pwait
/// returns EINTR); a handled signal
/// then ends it and the old mask is back (this deadlocked ruml's signal
/// delivery once: Debian's shutdown hung about one boot in twelve).
#[test]
fn stop_cont_during_masked_waits() {
    let (native, _) = check("stop_cont_masks", Flavour::Static, &[]);
    for call in ["sigsuspend", "ppoll", "pselect6", "epoll_pwait"] {
        assert_has(&native, &format!("{call}: stopped 1"));
        assert_has(&native, &format!("{call}: continued 1"));
        // epoll_pwait is never restarted after a stop (signal(7)): it
        // returns EINTR at SIGCONT, before SIGUSR1 is sent.
        let ran = if call == "epoll_pwait" { 0 } else { 1 };
        assert_has(
            &native,
            &format!(
                "{call}: -1 Interrupted system call, handler ran {ran}, after: usr1 blocked usr2 blocked"
            ),
        );
        assert_has(&native, &format!("{call}: exit 0"));
    }
}

// --- 11. timers -------------------------------------------------------------

#[test]
fn timers_static() {
    let (native, _) = check("timers", Flavour::Static, &[]);
    assert_has(&native, "SIGEV_SIGNAL: count=1 code=SI_TIMER value=42");
    assert_has(&native, "nanosleep interrupted: EINTR, rem>0: yes");
}

// --- 12. futex operations ---------------------------------------------------

#[test]
fn futex_ops_static() {
    let (native, _) = check("futex_ops", Flavour::Static, &[]);
    assert_has(&native, "WAKE all of the rest: 3");
    assert_has(&native, "WAIT_BITSET absolute REALTIME: ETIMEDOUT");
}

// --- 13. CPU time of parallel threads ---------------------------------------

/// Guest threads run in parallel on the host's cores and both are
/// accounted. The cpu/wall ratio depends on what else the host runs, so it
/// is compared with the host's own ratio for the same program measured
/// right before, in the same test: ruml passes a round when it reaches 1.3
/// (clearly parallel) or three quarters of the native ratio (as parallel as
/// this host allows just now). A busy machine needs more rounds, not luck.
/// The clocks must agree in every ruml run, busy or not.
#[test]
fn cpu_time_static() {
    let _g = exclusive();
    let guest = common::build_guest("cpu_time", Flavour::Static);
    let env = common::test_env();
    let none: &[&str] = &[];
    let ratio = |out: &Output| -> f64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("cpu/wall: "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no cpu/wall line:\n{out}"))
    };
    let mut seen = Vec::new();
    // A round that passes ends the test. Six rounds all failed once with
    // two full suites and two release builds sharing two cores; twelve
    // give such a host more chances (a quiet one passes the first).
    for _ in 0..12 {
        let native = common::run_native(&guest.path, none, &env);
        assert_eq!(native.code(), 0, "{native}");
        let ruml = common::run_ruml(&guest.path, none, &env);
        assert_eq!(ruml.code(), 0, "{ruml}");
        assert_has(&ruml, "rusage and process clock agree: yes");
        assert_has(&ruml, "thread clocks and RUSAGE_THREAD agree: yes");
        let (n, r) = (ratio(&native), ratio(&ruml));
        if r >= 1.3 || r >= 0.75 * n {
            return;
        }
        seen.push((n, r));
    }
    panic!("ruml's cpu/wall stayed below the host's in every round (native, ruml): {seen:?}");
}

// --- 14. exit statuses ------------------------------------------------------

#[test]
fn exit_status_static() {
    let (native, _) = check("exit_status", Flavour::Static, &[]);
    assert_has(
        &native,
        "SIGKILL                      raw=0009 WIFSIGNALED sig=9",
    );
    assert_has(
        &native,
        "exit(255)                    raw=ff00 WIFEXITED status=255",
    );
}

#[test]
fn exit_status_dynamic() {
    check("exit_status", Flavour::Dynamic, &[]);
}

// --- PI mutexes and resource limits ---------------------------------------

#[test]
fn limits_pi_static() {
    let (_native, ruml) = check("limits_pi", Flavour::Static, &[]);
    assert_has(&ruml, "ok: counter == 80000");
}

#[test]
fn limits_pi_dynamic() {
    check("limits_pi", Flavour::Dynamic, &[]);
}

#[test]
fn itimer_cpu_static() {
    let (_native, ruml) = check("itimer_cpu", Flavour::Static, &[]);
    assert_has(&ruml, "SIGPROF delivered: yes");
}

// --- page-fault context in the SIGSEGV frame ---------------------------------

/// REG_ERR/REG_TRAPNO/REG_CR2 of a fault's ucontext as Linux fills them
/// (UML's userspace reads them to tell write faults from read faults).
#[test]
fn fault_context_static() {
    let (native, _) = check("fault_context", Flavour::Static, &[]);
    assert_has(&native, "write to read-only page: err=0x7 trapno=14");
}

#[test]
fn fault_context_dynamic() {
    check("fault_context", Flavour::Dynamic, &[]);
}

/// readlink and stat of /proc/PID/{cwd,root,exe} of a zombie and of a
/// process whose leader thread exited give ENOENT; the running thread's
/// own links still resolve.
#[test]
fn proc_links_of_exited_processes() {
    let _g = shared();
    differential("proc_zombie", Flavour::Static, &[]);
}

/// /proc/PID and its entries belong to the process's euid/egid (root for
/// a non-dumpable process's files, but not its plain directories), and
/// no two entries of /proc/self share an inode number (mem and uid_map
/// once did); tests/guest/proc_owner.c, differential.
#[test]
fn proc_pid_owners_and_inode_numbers() {
    let _g = shared();
    let (native, _) = differential("proc_owner", Flavour::Static, &[]);
    assert!(native.stdout.contains("child: 0\n"), "{native}");
}
