//! Tasks and processes. A [`Task`] is a guest thread, run by one host
//! thread ([`run`]) that loops: resume the guest → trap → handle → deliver
//! signals. A [`Process`] is a thread group (for now one task each).
//!
//! The process tree (parents, children, zombies) lives in one
//! [`TaskTable`] behind one mutex with one condition variable: exits and
//! waits are rare next to system calls, and one lock keeps them simple and
//! free of lock-order problems.

pub mod exit;
pub mod futex;
pub mod syscalls;
pub mod wait;

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ruml_host::{AddressSpace, HostError, Interrupter, Registers, Trap};

use crate::fs::{FdTable, FsContext};
use crate::mm::{HostOp, Mm};
use crate::signal::SignalState;
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

/// One node of the process tree.
pub struct ProcNode {
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub children: Vec<i32>,
    /// Set when the process has exited and waits to be reaped.
    pub zombie: Option<ExitStatus>,
    pub task: Option<Arc<Task>>,
}

/// All processes, by pid.
pub struct TaskTable {
    pub tree: Mutex<BTreeMap<i32, ProcNode>>,
    /// Signalled whenever a process exits (waiters recheck).
    pub changed: Condvar,
    next_pid: Mutex<i32>,
}

impl TaskTable {
    pub fn new() -> TaskTable {
        TaskTable { tree: Mutex::new(BTreeMap::new()), changed: Condvar::new(), next_pid: Mutex::new(1) }
    }

    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, ProcNode>> {
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh pid (cycling below pid_max, skipping live ones).
    pub fn alloc_pid(&self, tree: &BTreeMap<i32, ProcNode>) -> i32 {
        let mut n = self.next_pid.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let pid = *n;
            *n = if *n >= 4_194_303 { 2 } else { *n + 1 };
            if !tree.contains_key(&pid) {
                return pid;
            }
        }
    }

    pub fn get(&self, pid: i32) -> Option<Arc<Task>> {
        self.lock().get(&pid).and_then(|n| n.task.clone())
    }
}

impl Default for TaskTable {
    fn default() -> Self {
        Self::new()
    }
}

/// A guest thread. Fields that a system call of the task itself replaces
/// (mm at exec, files and fs at unshare) sit behind their own mutexes,
/// held only to clone the Arc.
pub struct Task {
    pub tid: i32,
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
    /// vfork: told when this child execs or exits.
    pub vfork_done: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Poked when something this task may sleep on changes.
    pub waker: wait::Waker,
}

impl Task {
    pub fn new(tid: i32, mm: Arc<Mm>, files: Arc<FdTable>, fs: Arc<FsContext>, signals: SignalState) -> Arc<Task> {
        Arc::new(Task {
            tid,
            mm: Mutex::new(mm),
            files: Mutex::new(files),
            fs: Mutex::new(fs),
            signals,
            interrupter: Mutex::new(None),
            comm: Mutex::new(Vec::new()),
            exe: Mutex::new(None),
            clear_child_tid: Mutex::new(0),
            vfork_done: Mutex::new(None),
            waker: wait::Waker::default(),
        })
    }

    /// The thread-group id (the process's pid); one task per process for now.
    pub fn tgid(&self) -> i32 {
        self.tid
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
    pub fn fs(&self) -> Arc<FsContext> {
        self.fs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Kicks the guest out of its code so it sees new work.
    pub fn interrupt(&self) {
        if let Some(i) = self.interrupter.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
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
    Spawn { child: Arc<Task>, regs: Box<Registers>, vfork: Option<std::sync::mpsc::Receiver<()>> },
    /// rt_sigreturn restored registers (and maybe FPU state).
    Sigreturn { fpu: Option<ruml_host::FpuState> },
}

/// Per-task state that only the task's own host thread touches.
pub struct TaskRunner {
    pub task: Arc<Task>,
    pub regs: Registers,
    pub aspace: Option<AddressSpace>,
    /// Set by a handler (exec, exit) for the loop.
    pub next: Next,
    /// FPU state to load into a new stub (fork copies the parent's).
    pub fpu: Option<ruml_host::FpuState>,
}

impl TaskRunner {
    fn apply_ops(&mut self, ops: Vec<HostOp>) {
        let Some(a) = self.aspace.as_mut() else { return };
        for op in ops {
            match op {
                HostOp::Map { addr, len, prot, pfn } => a.map(addr, len, prot, pfn),
                HostOp::Unmap { addr, len } => a.unmap(addr, len),
                HostOp::Protect { addr, len, prot } => a.protect(addr, len, prot),
            }
        }
    }

    /// Starts the stub for the task's current mm.
    fn new_address_space(&mut self) -> Result<(), HostError> {
        self.aspace = None;
        let a = AddressSpace::new(&crate::kernel().phys)?;
        if let Some(f) = self.fpu.take() {
            a.set_fpu(&f)?;
        }
        *self.task.interrupter.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.interrupter());
        self.aspace = Some(a);
        Ok(())
    }
}

/// The task loop: runs the task until it exits. Returns when the task is
/// gone (its process reaped or left a zombie for its parent).
pub fn run(task: Arc<Task>, regs: Registers, fpu: Option<ruml_host::FpuState>) {
    let t = task.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_task(task, regs, fpu)));
    if result.is_err() {
        // A kernel bug hit while serving this task: it dies, nothing else.
        crate::log::warn(&format!("pid {}: kernel bug while serving it (panic above); killing it", t.tid));
        exit::exit_process(&t, ExitStatus::Killed { signo: 9, core: false });
    }
}

fn run_task(task: Arc<Task>, regs: Registers, fpu: Option<ruml_host::FpuState>) {
    let mut r = TaskRunner { task, regs, aspace: None, next: Next::Continue, fpu };
    if let Err(e) = r.new_address_space() {
        crate::log::warn(&format!("pid {}: cannot start its address space: {e}", r.task.tid));
        exit::exit_process(&r.task, ExitStatus::Killed { signo: 9, core: false });
        return;
    }
    let mut last_fault = (0u64, 0u32);
    let _ = &mut last_fault;
    loop {
        if crate::signal::deliver_pending(&mut r) {
            break;
        }
        let mm = r.task.mm();
        let ops = mm.take_host_ops();
        r.apply_ops(ops);
        let Some(aspace) = r.aspace.as_mut() else { break };
        let trap = match aspace.run(&mut r.regs) {
            Ok(t) => t,
            Err(e) => {
                crate::log::warn(&format!("pid {}: its stub process failed: {e}; killing it", r.task.tid));
                exit::exit_process(&r.task, ExitStatus::Killed { signo: 9, core: false });
                break;
            }
        };
        match trap {
            Trap::Syscall => {
                last_fault = (0, 0);
                let task = r.task.clone();
                let mut regs = r.regs;
                let mut ctx = SyscallContext { task: &task, regs: &mut regs, after: None };
                crate::syscalls::dispatch(&mut ctx);
                let after = ctx.after.take();
                r.regs = regs;
                if let Some(after) = after {
                    r.next = syscalls::after_syscall(&mut r, after);
                }
                match std::mem::replace(&mut r.next, Next::Continue) {
                    Next::Continue => {}
                    Next::Exit => break,
                    Next::NewAddressSpace => {
                        if let Err(e) = r.new_address_space() {
                            crate::log::warn(&format!("pid {}: cannot start its address space: {e}", r.task.tid));
                            exit::exit_process(&r.task, ExitStatus::Killed { signo: 9, core: false });
                            break;
                        }
                    }
                }
            }
            Trap::Signal(info) => {
                if crate::log::strace_enabled() {
                    eprintln!("[{}] --- host signal {} code {} addr {:#x} at rip {:#x}", r.task.tid, info.signo, info.code, info.addr, r.regs.rip);
                }
                if info.signo == 11 {
                    // The same address faulting again and again means the
                    // kernel could not fix it: the guest gets SIGSEGV.
                    last_fault = if last_fault.0 == info.addr { (info.addr, last_fault.1 + 1) } else { (info.addr, 1) };
                    let result = if last_fault.1 > 4 {
                        Err(crate::mm::FaultSignal { signo: 11, code: crate::mm::SEGV_ACCERR, addr: info.addr })
                    } else {
                        mm.handle_fault(info.addr, info.code)
                    };
                    if let Err(sig) = result {
                        if crate::log::strace_enabled() {
                            eprintln!("[{}] unresolved fault; maps:\n{}", r.task.tid, mm.maps_text());
                        }
                        last_fault = (0, 0);
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
    r.aspace = None;
}
