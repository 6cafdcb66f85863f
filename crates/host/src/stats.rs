//! Counters of the host work ruml does, for profiling by counting rather
//! than timing (see bench/opcount and docs/benchmarks.md). Off unless
//! ruml's environment has `RUML_HOST_STATS=FILE`: then every counter is a
//! relaxed atomic add, and [`report`] (called as ruml exits) writes
//! `name value` lines to FILE. When off, a count is one load of a flag.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// ptrace(2) calls made by ruml.
    PtraceCalls,
    /// Stops of a traced stub thread that ruml waited for (each one a
    /// round trip: resume, stop, wake the tracer).
    PtraceStops,
    /// Runs of the stub's batch code (ptrace) or batches handed to the
    /// seccomp helper thread: one handoff each.
    StubBatches,
    /// Host system calls the stub carried out for the kernel, by kind.
    StubMmap,
    StubMunmap,
    StubMprotect,
    StubOther,
    /// Stub processes started (forked, exec'd and set up).
    StubsBuilt,
    /// Address spaces served from the pool of ready stubs.
    PoolHits,
    /// Stubs of ended processes cleared and kept for reuse.
    StubsRecycled,
    /// Stub threads made for new guest threads.
    ThreadsMade,
    /// New guest threads served by the spare stub thread of their
    /// address space (no helper batch on the creator's path).
    SpareThreadHits,
    /// Guest traps by kind.
    TrapSyscall,
    TrapSignal,
    TrapInterrupted,
    /// sched_setaffinity calls that pinned or freed a stub thread.
    Affinity,
    /// Futex wakes and waits of the seccomp handoff.
    FutexWake,
    FutexWait,
    /// Host threads started for guest tasks, and tasks served by a
    /// host thread reused from an earlier task.
    HostThreads,
    HostThreadReuse,
    /// Seccomp system-call traps by the shape of the instructions before
    /// the `syscall` (see [`crate::patch`]): what syscall-site patching
    /// could reach.
    SiteMovNr,
    SiteMovNr64,
    SiteSyscallFn,
    SiteMovEdi,
    SiteOther,
    /// Calls that came through the seccomp stub's signal-less entry from
    /// a rewritten site (no host signal, no census: the bytes before the
    /// return address are the rewrite's).
    SitePatched,
    /// Host file I/O (disk images, hostfs files): pread/preadv,
    /// pwrite/pwritev, fsync and fdatasync calls.
    FileRead,
    FileWrite,
    FileFsync,
    FileFdatasync,
}

const ALL: [(Counter, &str); N] = [
    (Counter::PtraceCalls, "ptrace_calls"),
    (Counter::PtraceStops, "ptrace_stops"),
    (Counter::StubBatches, "stub_batches"),
    (Counter::StubMmap, "stub_mmap"),
    (Counter::StubMunmap, "stub_munmap"),
    (Counter::StubMprotect, "stub_mprotect"),
    (Counter::StubOther, "stub_other"),
    (Counter::StubsBuilt, "stubs_built"),
    (Counter::PoolHits, "pool_hits"),
    (Counter::StubsRecycled, "stubs_recycled"),
    (Counter::ThreadsMade, "stub_threads"),
    (Counter::SpareThreadHits, "spare_thread_hits"),
    (Counter::TrapSyscall, "trap_syscall"),
    (Counter::TrapSignal, "trap_signal"),
    (Counter::TrapInterrupted, "trap_interrupted"),
    (Counter::Affinity, "affinity"),
    (Counter::FutexWake, "futex_wake"),
    (Counter::FutexWait, "futex_wait"),
    (Counter::HostThreads, "host_threads"),
    (Counter::HostThreadReuse, "host_thread_reuse"),
    (Counter::SiteMovNr, "site_mov_nr"),
    (Counter::SiteMovNr64, "site_mov_nr64"),
    (Counter::SiteSyscallFn, "site_syscall_fn"),
    (Counter::SiteMovEdi, "site_mov_edi"),
    (Counter::SiteOther, "site_other"),
    (Counter::SitePatched, "site_patched"),
    (Counter::FileRead, "file_read"),
    (Counter::FileWrite, "file_write"),
    (Counter::FileFsync, "file_fsync"),
    (Counter::FileFdatasync, "file_fdatasync"),
];

const N: usize = 30;
static COUNTS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
static ON: AtomicBool = AtomicBool::new(false);

fn path() -> &'static Option<std::ffi::OsString> {
    static P: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
    P.get_or_init(|| {
        let p = std::env::var_os("RUML_HOST_STATS").filter(|p| !p.is_empty());
        if p.is_some() {
            ON.store(true, Ordering::Relaxed);
        }
        p
    })
}

/// Reads `RUML_HOST_STATS` (at boot; counting starts here).
pub fn init() {
    let _ = path();
}

/// Whether counting is on.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Adds `n` to a counter (nothing when counting is off).
#[inline]
pub fn add(c: Counter, n: u64) {
    if ON.load(Ordering::Relaxed) {
        COUNTS[c as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// Adds one to a counter.
#[inline]
pub fn bump(c: Counter) {
    add(c, 1);
}

/// Counts one host system call run by the stub for the kernel.
pub(crate) fn stub_call(nr: u64) {
    let c = match nr as libc::c_long {
        libc::SYS_mmap => Counter::StubMmap,
        libc::SYS_munmap => Counter::StubMunmap,
        libc::SYS_mprotect => Counter::StubMprotect,
        _ => Counter::StubOther,
    };
    bump(c);
}

/// The current value of every counter, by name.
pub fn snapshot() -> Vec<(&'static str, u64)> {
    ALL.iter()
        .map(|&(c, name)| (name, COUNTS[c as usize].load(Ordering::Relaxed)))
        .collect()
}

/// Writes the counters to the `RUML_HOST_STATS` file, if counting is on.
pub fn report() {
    let Some(p) = path() else { return };
    let mut s = String::new();
    for (name, v) in snapshot() {
        s.push_str(&format!("{name} {v}\n"));
    }
    if let Err(e) = std::fs::write(p, s) {
        eprintln!("ruml: writing RUML_HOST_STATS: {e}");
    }
}
