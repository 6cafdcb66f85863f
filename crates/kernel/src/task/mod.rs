//! Tasks, thread groups and the process tree.
//!
//! A [`Task`] is a guest thread, run by one host thread ([`run`]) that
//! loops: resume the guest → trap → handle → deliver signals. Tasks of one
//! process share a [`ThreadGroup`] (dispositions, process-wide pending
//! signals, job-control stop, group exit). Guest threads run in parallel
//! on all host cores: nothing global is taken on the system-call path.
//!
//! The process tree (parents, children, zombies, process groups and
//! sessions) lives in one [`TaskTable`] behind one mutex: exits and waits
//! are rare next to system calls, and one lock keeps them free of
//! lock-order problems. Lock order: tree → group signals → task signals
//! (ptrace's registry and a task's ptrace state sit between the tree and
//! group signals: see [`ptrace`]).

pub mod activity;
pub mod caps;
pub mod coredump;
pub mod creds;
pub mod exit;
pub mod futex;
pub mod kcmp;
pub mod ns;
pub mod persona;
pub mod ptrace;
pub mod reboot;
pub mod sched;
pub mod seccomp;
pub mod syscalls;
pub mod usage;
pub mod wait;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ruml_host::{AddressSpace, Context, HostError, Interrupter, NewThread, Registers, Trap};

use crate::fs::{FdTable, FsContext};
use crate::mm::Mm;
use crate::signal::{GroupSignals, SignalState};
use crate::syscalls::SyscallContext;

/// How a process ended, as wait reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Killed { signo: i32, core: bool },
}

impl ExitStatus {
    /// The status word of wait4.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Killed { signo, core } => signo | if core { 0x80 } else { 0 },
        }
    }
}

/// A process: the threads that share a pid, their signal dispositions
/// and process-wide signal state.
pub struct ThreadGroup {
    tgid: i32,
    /// Live threads. Locked after the tree, before any task's signals.
    pub threads: Mutex<Vec<Arc<Task>>>,
    pub sig: Mutex<GroupSignals>,
    /// CPU time of stubs that are gone, and of reaped children.
    pub usage: Mutex<usage::UsageAcc>,
    /// Resource limits: [soft, hard] per RLIMIT_*.
    pub limits: Mutex<[[u64; 2]; 16]>,
    /// POSIX timers and ITIMER_REAL (see time::timers).
    pub timers: Mutex<crate::time::timers::ProcessTimers>,
    /// When the process started, as time since boot (/proc/PID/stat).
    pub started: std::time::Duration,
    /// User and group ids.
    pub creds: Mutex<creds::Creds>,
    /// PR_SET_DUMPABLE: whether a fatal signal may write a core file (and
    /// who may ptrace the process, who owns its /proc files): 0, 1
    /// (SUID_DUMP_USER) or 2 (SUID_DUMP_ROOT: cores as root, to an
    /// absolute core_pattern only). Credential changes set it to
    /// fs.suid_dumpable (creds::commit_dumpable); exec to 1 again (or
    /// fs.suid_dumpable for set-id programs); fork copies it.
    dumpable: std::sync::atomic::AtomicU8,
    /// The PID namespace its pid was allocated in (ns.rs): set once by
    /// clone before the process runs, fixed for its life.
    pid_ns: Mutex<Arc<ns::PidNs>>,
    /// The user namespace of the address space (Linux's mm->user_ns): the
    /// credentials' namespace at the last exec, inherited by fork (even a
    /// fork into a new user namespace). ptrace's dumpability rule asks for
    /// CAP_SYS_PTRACE there.
    mm_user_ns: Mutex<Arc<ns::UserNs>>,
}

impl ThreadGroup {
    pub fn new(tgid: i32, sig: GroupSignals, limits: [[u64; 2]; 16]) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            threads: Mutex::new(Vec::new()),
            sig: Mutex::new(sig),
            usage: Mutex::new(Default::default()),
            limits: Mutex::new(limits),
            timers: Mutex::new(Default::default()),
            started: crate::log::since_boot(),
            creds: Mutex::new(Default::default()),
            dumpable: std::sync::atomic::AtomicU8::new(1),
            pid_ns: Mutex::new(ns::root_pid()),
            mm_user_ns: Mutex::new(ns::root_user()),
        })
    }

    /// The process's PID namespace.
    pub fn pid_ns(&self) -> Arc<ns::PidNs> {
        self.pid_ns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The address space's user namespace (see the field).
    pub fn mm_user_ns(&self) -> Arc<ns::UserNs> {
        self.mm_user_ns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// exec (the credentials' namespace) and fork (the parent's).
    pub fn set_mm_user_ns(&self, ns: Arc<ns::UserNs>) {
        *self.mm_user_ns.lock().unwrap_or_else(|p| p.into_inner()) = ns;
    }

    /// clone: the new process's PID namespace (before it runs).
    pub fn set_pid_ns(&self, ns: Arc<ns::PidNs>) {
        *self.pid_ns.lock().unwrap_or_else(|p| p.into_inner()) = ns;
    }

    /// Dumpable as the owner (SUID_DUMP_USER): what same-uid ptrace and
    /// the owner of /proc/PID files ask (2 counts as not dumpable there,
    /// as Linux).
    pub fn dumpable(&self) -> bool {
        self.dumpable_mode() == 1
    }

    /// 0, 1 or 2, as PR_GET_DUMPABLE says.
    pub fn dumpable_mode(&self) -> u8 {
        self.dumpable.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_dumpable(&self, on: bool) {
        self.set_dumpable_mode(on as u8);
    }

    pub fn set_dumpable_mode(&self, mode: u8) {
        self.dumpable
            .store(mode.min(2), std::sync::atomic::Ordering::Relaxed);
    }

    /// A resource limit: [soft, hard].
    pub fn limit(&self, res: usize) -> [u64; 2] {
        self.limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(res)
            .copied()
            .unwrap_or([u64::MAX; 2])
    }

    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    pub fn threads(&self) -> Vec<Arc<Task>> {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn sig(&self) -> MutexGuard<'_, GroupSignals> {
        self.sig.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every thread: out of guest code, out of sleeps.
    pub fn kick_all(&self) {
        for t in self.threads() {
            t.interrupt();
            t.waker.poke();
        }
    }
}

/// One node of the process tree.
pub struct ProcNode {
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub children: Vec<i32>,
    /// Set when the process has exited and waits to be reaped.
    pub zombie: Option<ExitStatus>,
    pub group: Option<Arc<ThreadGroup>>,
    /// A stop not yet reported to wait (WUNTRACED): the stop signal.
    pub stop_report: Option<i32>,
    /// A continue not yet reported to wait (WCONTINUED).
    pub cont_report: bool,
    /// PR_SET_CHILD_SUBREAPER.
    pub subreaper: bool,
    /// CPU time of the process and its reaped children, once a zombie.
    pub usage: usage::Times,
}

impl ProcNode {
    /// A live process's node, with no children and nothing to report yet.
    pub fn new(ppid: i32, pgid: i32, sid: i32, group: Arc<ThreadGroup>) -> ProcNode {
        ProcNode {
            ppid,
            pgid,
            sid,
            children: Vec::new(),
            zombie: None,
            group: Some(group),
            stop_report: None,
            cont_report: false,
            subreaper: false,
            usage: Default::default(),
        }
    }
}

/// A process's ids, for the terminal layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcIds {
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
}

/// All processes by pid, and all threads by tid.
pub struct TaskTable {
    pub tree: Mutex<BTreeMap<i32, ProcNode>>,
    threads: Mutex<HashMap<i32, Weak<Task>>>,
    next_pid: Mutex<i32>,
}

impl TaskTable {
    pub fn new() -> TaskTable {
        TaskTable {
            tree: Mutex::new(BTreeMap::new()),
            threads: Mutex::new(HashMap::new()),
            next_pid: Mutex::new(1),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, ProcNode>> {
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh id for a process or thread (cycling below
    /// kernel.pid_max, skipping ids in use by a process, a zombie or a
    /// thread); None when every id is taken (fork's EAGAIN).
    pub fn alloc_pid(&self, tree: &BTreeMap<i32, ProcNode>) -> Option<i32> {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = self.next_pid.lock().unwrap_or_else(|p| p.into_inner());
        let top = crate::fs::procsys::pid_max() - 1;
        for _ in 0..=top {
            let pid = if *n > top { 2 } else { *n };
            *n = if pid >= top { 2 } else { pid + 1 };
            if !tree.contains_key(&pid) && !threads.contains_key(&pid) {
                return Some(pid);
            }
        }
        None
    }

    /// How many guest threads exist (each is a host thread and a stub
    /// thread: the instance caps them so a guest fork bomb cannot exhaust
    /// the host).
    pub fn thread_count(&self) -> usize {
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn register_thread(&self, t: &Arc<Task>) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.tid(), Arc::downgrade(t));
    }

    pub fn unregister_thread(&self, tid: i32) {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&tid);
    }

    /// The live thread with this tid.
    pub fn thread(&self, tid: i32) -> Option<Arc<Task>> {
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tid)
            .and_then(|w| w.upgrade())
    }

    /// Whether some live thread runs in address space `mm` (System V shared
    /// memory detaches when none does: ipc::mm_released).
    pub fn mm_in_use(&self, mm: &Arc<Mm>) -> bool {
        let threads: Vec<Arc<Task>> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|w| w.upgrade())
            .collect();
        threads.iter().any(|t| Arc::ptr_eq(&t.mm(), mm))
    }

    /// Kicks every thread running in address space `mm` out of guest code
    /// (but the calling one), so that each applies the mm's queued host
    /// changes before it runs on: another process truncated or punched a
    /// file this space maps (mm::rmap).
    pub fn interrupt_users_of(&self, mm: &Arc<Mm>) {
        let me = crate::fs::anon::current_task();
        let threads: Vec<Arc<Task>> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|w| w.upgrade())
            .collect();
        for t in threads {
            if Arc::ptr_eq(&t.mm(), mm) && !me.as_ref().is_some_and(|m| Arc::ptr_eq(m, &t)) {
                t.interrupt();
            }
        }
    }

    /// The live process with this pid.
    pub fn group(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        self.lock()
            .get(&pid)
            .filter(|n| n.zombie.is_none())
            .and_then(|n| n.group.clone())
    }

    /// Whether process `pid` (whose group is `g`, perhaps already dropped)
    /// is still in the tree: alive, or a zombie not yet reaped. `g` keeps its
    /// allocation, so a reused pid's new group never compares equal.
    pub fn unreaped(&self, pid: i32, g: &std::sync::Weak<ThreadGroup>) -> bool {
        self.lock().get(&pid).is_some_and(|n| {
            n.group
                .as_ref()
                .is_none_or(|x| std::sync::Weak::ptr_eq(&Arc::downgrade(x), g))
        })
    }

    /// Some live thread of process `pid` (for /proc and kill checks).
    pub fn get(&self, pid: i32) -> Option<Arc<Task>> {
        self.group(pid).and_then(|g| g.threads().into_iter().next())
    }
}

impl Default for TaskTable {
    fn default() -> Self {
        Self::new()
    }
}

/// The ids of process `tgid`.
pub fn process_ids(tgid: i32) -> Option<ProcIds> {
    let tree = crate::kernel().tasks.lock();
    tree.get(&tgid).map(|n| ProcIds {
        ppid: n.ppid,
        pgid: n.pgid,
        sid: n.sid,
    })
}

/// Whether a live process of session `sid` is in process group `pgid`.
pub fn pgrp_in_session(pgid: i32, sid: i32) -> bool {
    let tree = crate::kernel().tasks.lock();
    tree.values()
        .any(|n| n.zombie.is_none() && n.pgid == pgid && n.sid == sid)
}

/// Whether process group `pgid` is orphaned: no member has a parent in
/// another group of the same session (POSIX; job control stops are then
/// not allowed to stick).
pub fn is_orphaned_pgrp(pgid: i32) -> bool {
    let tree = crate::kernel().tasks.lock();
    !tree
        .values()
        .filter(|n| n.zombie.is_none() && n.pgid == pgid)
        .any(|n| {
            tree.get(&n.ppid)
                .is_some_and(|p| p.zombie.is_none() && p.pgid != pgid && p.sid == n.sid)
        })
}

/// A guest thread. Fields that a system call of the task itself replaces
/// (mm at exec, files and fs at unshare) sit behind their own mutexes,
/// held only to clone the Arc.
pub struct Task {
    tid: AtomicI32,
    pub group: Arc<ThreadGroup>,
    mm: Mutex<Arc<Mm>>,
    files: Mutex<Arc<FdTable>>,
    fs: Mutex<Arc<FsContext>>,
    pub signals: SignalState,
    /// Stops the guest when another task posts work (a signal).
    pub interrupter: Mutex<Option<Interrupter>>,
    pub comm: Mutex<Vec<u8>>,
    /// The program, for /proc/PID/exe.
    pub exe: Mutex<Option<crate::fs::vfs::Path>>,
    pub clear_child_tid: Mutex<u64>,
    /// set_robust_list: (head, len).
    pub robust_list: Mutex<(u64, u64)>,
    /// vfork: told when this child execs or exits.
    pub vfork_done: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Poked when something this task may sleep on changes.
    pub waker: wait::Waker,
    /// Where an interrupted nanosleep resumes (restart_syscall).
    pub restart_deadline: Mutex<Option<(std::time::Instant, u64)>>,
    /// The stub (process, thread) this task runs in, for CPU accounting.
    pub host_ids: Mutex<Option<(i32, i32)>>,
    /// PR_SET_PDEATHSIG: the signal to get when the parent dies.
    pub pdeathsig: AtomicI32,
    /// sched_setaffinity's mask (CPUs 0..63), as the guest set it.
    pub affinity: Mutex<u64>,
    /// The scheduling policy and parameters (task/sched.rs).
    pub sched: Mutex<sched::SchedParams>,
    /// Guest seccomp: mode and filters (task/seccomp.rs).
    pub seccomp: seccomp::TaskSeccomp,
    /// The task as a tracee (see [`ptrace`]).
    pub ptrace: ptrace::Ptrace,
    /// personality(2)'s value (inherited by fork and clone).
    pub personality: std::sync::atomic::AtomicU32,
    /// The task's namespaces but mount, PID and user (ns.rs): replaced
    /// whole by unshare/setns; the mutex is held only to clone the Arc.
    nsproxy: Mutex<Arc<ns::NsProxy>>,
    /// The system call being served and the last one's registers, for
    /// SysRq w and l (see [`activity`]).
    pub activity: activity::Activity,
}

impl Task {
    pub fn new(
        tid: i32,
        group: Arc<ThreadGroup>,
        mm: Arc<Mm>,
        files: Arc<FdTable>,
        fs: Arc<FsContext>,
        signals: SignalState,
    ) -> Arc<Task> {
        let t = Arc::new(Task {
            tid: AtomicI32::new(tid),
            group,
            mm: Mutex::new(mm),
            files: Mutex::new(files),
            fs: Mutex::new(fs),
            signals,
            interrupter: Mutex::new(None),
            comm: Mutex::new(Vec::new()),
            exe: Mutex::new(None),
            clear_child_tid: Mutex::new(0),
            robust_list: Mutex::new((0, 0)),
            vfork_done: Mutex::new(None),
            waker: wait::Waker::default(),
            restart_deadline: Mutex::new(None),
            host_ids: Mutex::new(None),
            pdeathsig: AtomicI32::new(0),
            affinity: Mutex::new(u64::MAX >> (64 - host_cpus().clamp(1, 64))),
            sched: Mutex::new(Default::default()),
            seccomp: Default::default(),
            ptrace: Default::default(),
            personality: Default::default(),
            nsproxy: Mutex::new(ns::root_proxy()),
            activity: Default::default(),
        });
        t.group
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t.clone());
        crate::kernel().tasks.register_thread(&t);
        t
    }

    /// The thread id.
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// exec from a non-leader thread takes over the process's pid.
    pub(crate) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// The thread-group id (the process's pid).
    pub fn tgid(&self) -> i32 {
        self.group.tgid()
    }

    pub fn mm(&self) -> Arc<Mm> {
        self.mm.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn set_mm(&self, mm: Arc<Mm>) {
        *self.mm.lock().unwrap_or_else(|p| p.into_inner()) = mm;
    }
    pub fn files(&self) -> Arc<FdTable> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn set_files(&self, f: Arc<FdTable>) {
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
    pub fn fs(&self) -> Arc<FsContext> {
        self.fs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// unshare(CLONE_FS/CLONE_NEWNS), setns(mnt): a new fs context.
    pub fn set_fs(&self, f: Arc<FsContext>) {
        *self.fs.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// Kicks the guest out of its code so it sees new work.
    pub fn interrupt(&self) {
        if let Some(i) = self
            .interrupter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            i.interrupt();
        }
    }
}

/// What the task loop must do after a system call.
pub enum Next {
    Continue,
    /// exec replaced the address space: start a new stub.
    NewAddressSpace,
    /// The task is done.
    Exit,
}

/// Work a system call leaves for the task loop (see `SyscallContext::after`).
pub enum After {
    /// execve succeeded: the task has a new mm; start its stub.
    Exec,
    /// The task has exited.
    Exit,
    /// fork/clone made a child: copy our FPU state to it and start it;
    /// with `vfork`, wait until it execs or exits.
    Spawn {
        child: Arc<Task>,
        regs: Box<Registers>,
        vfork: Option<std::sync::mpsc::Receiver<()>>,
    },
    /// rt_sigreturn restored registers (and maybe FPU state).
    Sigreturn { fpu: Option<ruml_host::FpuState> },
}

/// Why [`start_parentless`] could not start its process.
pub enum StartError {
    /// The program could not be executed.
    Exec(crate::errno::Errno),
    /// The host refused a thread for the task.
    Thread(std::io::Error),
}

/// Starts `task`, a new process the kernel made itself (in the process
/// tree already, with no parent: a container's process, the request-key
/// helper), running `path` in a host thread named `thread`. On failure
/// the process is taken out of the tables again. Returns its pid.
pub fn start_parentless(
    task: Arc<Task>,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    thread: &str,
) -> Result<i32, StartError> {
    let k = crate::kernel();
    let pid = task.tgid();
    let forget = |task: &Arc<Task>| {
        k.tasks.lock().remove(&pid);
        k.tasks.unregister_thread(task.tid());
    };
    let regs = match crate::exec::exec(&task, path, argv, envp) {
        Ok(r) => r,
        Err(e) => {
            forget(&task);
            return Err(StartError::Exec(e));
        }
    };
    let t = task.clone();
    if let Err(e) = std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || run(t, regs, None, Start::NewProcess))
    {
        forget(&task);
        return Err(StartError::Thread(e));
    }
    Ok(pid)
}

/// How a new task's host context comes to be.
pub enum Start {
    /// A stub process of its own (init, fork, after exec).
    NewProcess,
    /// A thread in its mm's stub process, made by the parent's context.
    Thread(NewThread),
}

/// Per-task state that only the task's own host thread touches.
pub struct TaskRunner {
    pub task: Arc<Task>,
    pub regs: Registers,
    pub ctx: Option<Context>,
    /// Set by a handler (exec, exit) for the loop.
    pub next: Next,
    /// FPU state to load into a new stub (fork copies the parent's).
    pub fpu: Option<ruml_host::FpuState>,
    /// The last trap was a system call whose result may ask for a restart.
    pub in_syscall: bool,
}

/// The host CPUs ruml may use (at least 1), asked once: std's
/// `available_parallelism` reads the cgroup's quota files and the
/// affinity mask each time (some 17 host calls), which made every fork
/// and thread creation pay for it (Task::new).
pub fn host_cpus() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

impl TaskRunner {
    /// Applies the mm's queued changes to the stub and releases the frames
    /// they unmapped. Under the mm's flush lock: no thread of the space
    /// runs until the changes it may depend on are in place.
    pub fn sync_host(&mut self) -> Result<(), HostError> {
        let mm = self.task.mm();
        let Some(ctx) = self.ctx.as_mut() else {
            return Ok(());
        };
        let _g = mm.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        apply_host_ops(&mm, ctx)
    }

    /// Starts the host context for the task's current mm.
    fn start_context(&mut self, start: Start) -> Result<(), HostError> {
        self.ctx = None;
        let mm = self.task.mm();
        let ctx = match start {
            Start::Thread(nt) => {
                let Some(a) = mm.host() else {
                    return Err(HostError::new("thread of an address space with no stub", 0));
                };
                Context::adopt(&a, nt)?
            }
            Start::NewProcess => {
                let (a, ctx) = AddressSpace::new(&crate::kernel().phys)?;
                mm.set_host(a);
                ctx
            }
        };
        if let Some(f) = self.fpu.take() {
            ctx.set_fpu(&f)?;
        }
        *self
            .task
            .interrupter
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(ctx.interrupter());
        *self.task.host_ids.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((ctx.address_space().host_pid(), ctx.host_tid()));
        self.ctx = Some(ctx);
        Ok(())
    }
}

/// Applies `mm`'s queued changes to its stub through `ctx` (a thread of
/// that stub) and releases the frames they unmapped. The caller holds
/// `mm.flush_lock`.
pub fn apply_host_ops(mm: &Mm, ctx: &mut Context) -> Result<(), HostError> {
    let (ops, frees) = mm.take_host_ops();
    let a = ctx.address_space();
    for op in ops {
        a.queue(op);
    }
    let r = ctx.flush();
    mm.phys().put_many(&frees);
    mm.note_flushed();
    r
}

/// Faults at one address that the kernel found nothing to change for,
/// in a row, before the guest gets SIGSEGV. The first retries at once
/// (the change it needed may have reached the host between the fault and
/// its handling); each later one first waits for the next flush of the
/// address space, up to [`UNCHANGED_FAULT_WAIT`]: the bound is on changes
/// seen, not on how often the host scheduler ran the other thread.
const UNCHANGED_FAULTS: u32 = 16;

/// How long one unchanged fault waits for another thread's flush.
const UNCHANGED_FAULT_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The task loop: runs the task until it exits. A kernel bug (panic) while
/// serving it kills this task's process only.
pub fn run(task: Arc<Task>, regs: Registers, fpu: Option<ruml_host::FpuState>, start: Start) {
    let t = task.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_task(task, regs, fpu, start)
    }));
    if result.is_err() {
        crate::log::warn(&format!(
            "pid {}: kernel bug while serving it (panic above); killing it",
            t.tid()
        ));
        crate::signal::group_exit(
            &t.group,
            ExitStatus::Killed {
                signo: 9,
                core: false,
            },
        );
        exit::exit_thread(&t);
    }
}

fn fatal_host_error(r: &TaskRunner, e: &HostError) {
    crate::log::warn(&format!(
        "pid {}: its stub failed: {e}; killing the process",
        r.task.tid()
    ));
    crate::signal::group_exit(
        &r.task.group,
        ExitStatus::Killed {
            signo: 9,
            core: false,
        },
    );
}

fn run_task(task: Arc<Task>, regs: Registers, fpu: Option<ruml_host::FpuState>, start: Start) {
    crate::fs::anon::set_current_task(&task);
    let mut r = TaskRunner {
        task,
        regs,
        ctx: None,
        next: Next::Continue,
        fpu,
        in_syscall: false,
    };
    if let Err(e) = r.start_context(start) {
        fatal_host_error(&r, &e);
    }
    let mut last_fault = (0u64, 0u32);
    loop {
        if crate::signal::deliver_pending(&mut r) {
            break;
        }
        if let Err(e) = r.sync_host() {
            fatal_host_error(&r, &e);
            continue;
        }
        let Some(ctx) = r.ctx.as_mut() else {
            // No context (it failed to start): only a group exit is left.
            crate::signal::group_exit(
                &r.task.group,
                ExitStatus::Killed {
                    signo: 9,
                    core: false,
                },
            );
            continue;
        };
        let trap = match ctx.run(&mut r.regs) {
            Ok(t) => t,
            Err(e) => {
                fatal_host_error(&r, &e);
                continue;
            }
        };
        r.in_syscall = false;
        let trap = crate::mm::patch::fixup_trap(&r.task, &mut r.regs, trap);
        match trap {
            Trap::Syscall => {
                last_fault = (0, 0);
                let task = r.task.clone();
                // ptrace's syscall-enter stop comes first, then (seccomp)
                // filters, then the call; see ptrace::syscall_enter.
                let traced = task.ptrace.is_traced();
                let nr = r.regs.orig_rax;
                let entry = if traced {
                    ptrace::syscall_enter(&mut r)
                } else {
                    crate::mm::patch::after_trap(&task, &r.regs);
                    ptrace::Entry::Run
                };
                if entry == ptrace::Entry::Run {
                    task.activity.enter(&r.regs);
                    let mut regs = r.regs;
                    let mut sctx = SyscallContext {
                        task: &task,
                        regs: &mut regs,
                        after: None,
                        host: r.ctx.as_mut(),
                    };
                    // Guest seccomp filters (one atomic load when there
                    // are none); a TRACE result stops the task for its
                    // tracer here, where the runner is.
                    let mut verdict = seccomp::intercept(&mut sctx, false);
                    if let seccomp::Intercept::Trace(data) = verdict {
                        r.regs = regs;
                        let stopped = ptrace::ptrace_event_seccomp(&mut r, data);
                        regs = r.regs;
                        sctx = SyscallContext {
                            task: &task,
                            regs: &mut regs,
                            after: None,
                            host: r.ctx.as_mut(),
                        };
                        verdict = seccomp::after_trace(
                            &mut sctx,
                            stopped != ptrace::SeccompTrace::NoTracer,
                            stopped == ptrace::SeccompTrace::Skip,
                        );
                    }
                    if verdict == seccomp::Intercept::Run {
                        crate::syscalls::dispatch(&mut sctx);
                    }
                    task.activity.leave();
                    let after = sctx.after.take();
                    r.regs = regs;
                    r.in_syscall = true;
                    if let Some(after) = after {
                        r.next = syscalls::after_syscall(&mut r, after);
                    }
                    match std::mem::replace(&mut r.next, Next::Continue) {
                        Next::Continue => {}
                        Next::Exit => break,
                        Next::NewAddressSpace => {
                            if let Err(e) = r.start_context(Start::NewProcess) {
                                fatal_host_error(&r, &e);
                            }
                            if traced {
                                ptrace::exec_event(&mut r);
                            }
                        }
                    }
                }
                if traced && entry != ptrace::Entry::Emulated {
                    ptrace::syscall_exit(&mut r, nr);
                }
            }
            Trap::Signal(info) => {
                if crate::log::strace_enabled() {
                    eprintln!(
                        "[{}] --- host signal {} code {} addr {:#x} at rip {:#x}",
                        r.task.tid(),
                        info.signo,
                        info.code,
                        info.addr,
                        r.regs.rip
                    );
                }
                if info.signo == 11 {
                    // The same address faulting again and again means the
                    // kernel could not fix it: the guest gets SIGSEGV.
                    last_fault = if last_fault.0 == info.addr {
                        (info.addr, last_fault.1 + 1)
                    } else {
                        (info.addr, 1)
                    };
                    let mm = r.task.mm();
                    // Only faults the kernel had nothing to change for
                    // count: one resolved by a copy-on-write copy may come
                    // back after another thread's fork shared the page again.
                    let result = if last_fault.1 > UNCHANGED_FAULTS {
                        Err(crate::mm::FaultSignal {
                            signo: 11,
                            code: crate::mm::SEGV_ACCERR,
                            addr: info.addr,
                        })
                    } else {
                        let seen = mm.flush_count();
                        mm.handle_fault(info.addr, info.code).map(|changed| {
                            if changed {
                                last_fault.1 = 0;
                            } else if last_fault.1 > 1 {
                                // Another thread's change to the host
                                // mapping is on its way (a fork's
                                // write-protection, a copy-on-write copy):
                                // wait for it to land before the retry.
                                mm.wait_host_change(seen, UNCHANGED_FAULT_WAIT);
                            }
                        })
                    };
                    if let Err(sig) = result {
                        if crate::log::strace_enabled() {
                            eprintln!(
                                "[{}] unresolved fault; maps:\n{}",
                                r.task.tid(),
                                mm.maps_text()
                            );
                        }
                        last_fault = (0, 0);
                        r.task.signals.lock().fault_err = mm.fault_error_code(sig.addr, r.regs.rip);
                        crate::signal::force_fault(&r.task, sig.signo, sig.code, sig.addr);
                    }
                } else {
                    last_fault = (0, 0);
                    crate::signal::force_fault(&r.task, info.signo, info.code, info.addr);
                }
            }
            Trap::Interrupted => {}
        }
    }
    // The stub thread ends before this host thread (its tracer) does.
    r.ctx = None;
}
