//! ruml-host: the only crate that talks to the host's process and memory
//! machinery (UML's `os-Linux/`). Everything above it — the kernel — is
//! host-agnostic and sees only this API:
//!
//! - [`physmem::PhysMem`]: guest RAM, one memfd mapped once into ruml, with
//!   a reference-counted frame allocator.
//! - [`AddressSpace`]: a stub process holding one guest address space, with
//!   queued map/unmap/protect operations flushed in one batch before the
//!   guest next runs (the heir of skas3's /proc/mm), and
//!   [`Context::run`], which runs one guest thread until it traps.
//! - [`hostfile`]: host file access for hostfs, confined beneath a root.
//! - [`console`], [`clock`]: the host's terminal and time.
//! - [`net`]: host TCP connections for the kernel's user-mode NAT.
//!
//! Two execution backends sit behind [`AddressSpace`], [`Context`] and
//! [`NewThread`]: [`ptrace`] (skas0-style, PTRACE_SYSEMU) and [`seccomp`]
//! (a seccomp filter and a signal handler in the stub, registers exchanged
//! through shared memory). [`set_mode`] picks one at boot; the kernel never
//! knows which runs it.

pub mod checks;
pub mod clock;
pub mod conchan;
pub mod console;
pub mod cputime;
mod error;
pub mod handoff;
pub mod hostfile;
pub mod mconsole;
pub mod net;
mod ops;
pub mod passed;
pub mod patch;
pub mod physmem;
pub mod ptrace;
pub mod regs;
pub mod seccomp;
mod spawn;
pub mod sstub;
pub mod stats;
pub mod stub;
pub mod stubpool;
pub mod switch;
mod sys;
pub mod threads;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

pub use error::HostError;
pub use ops::Op;
pub use physmem::{Pfn, PhysMem, PAGE_SIZE};
pub use regs::{FpuState, Registers};

/// Protection bits for [`AddressSpace::map`], as PROT_* in Linux.
pub mod prot {
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    pub const EXEC: u32 = 4;
}

/// Why the guest stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// The guest executed `syscall`; the number is in `orig_rax`, the
    /// arguments in rdi, rsi, rdx, r10, r8, r9. Writing rax sets the result.
    Syscall,
    /// The guest raised a synchronous signal: a fault (SIGSEGV, SIGBUS), an
    /// illegal or trapping instruction (SIGILL, SIGTRAP, SIGFPE).
    Signal(SignalInfo),
    /// [`Interrupter::interrupt`] stopped it: the kernel has work for it.
    Interrupted,
}

/// What the host said about a synchronous signal of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    /// si_addr for faults: the faulting address.
    pub addr: u64,
}

/// The execution backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// skas0-style: PTRACE_SYSEMU, faults as signal stops.
    Ptrace,
    /// A seccomp filter traps every guest system call into the stub's
    /// signal handler; registers travel through shared memory.
    Seccomp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ptrace => "ptrace",
            Mode::Seccomp => "seccomp",
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Chooses the backend for every address space made from now on (at boot,
/// after [`checks::run`]).
pub fn set_mode(m: Mode) {
    MODE.store(
        match m {
            Mode::Ptrace => 0,
            Mode::Seccomp => 1,
        },
        Ordering::SeqCst,
    );
}

/// The backend in use.
pub fn mode() -> Mode {
    match MODE.load(Ordering::SeqCst) {
        1 => Mode::Seccomp,
        _ => Mode::Ptrace,
    }
}

/// A guest address space: a stub process of the backend in use. Cheap to
/// clone; shared by all threads of the space.
#[derive(Clone)]
pub enum AddressSpace {
    Ptrace(ptrace::AddressSpace),
    Seccomp(seccomp::AddressSpace),
}

/// One guest thread's host context, served by the calling host thread.
/// Not Send: the ptrace backend requires the tracing thread.
pub enum Context {
    Ptrace(ptrace::Context),
    Seccomp(seccomp::Context),
}

/// A stub thread made by [`Context::new_thread`], waiting for the host
/// thread that will serve it ([`Context::adopt`]).
pub enum NewThread {
    Ptrace(ptrace::NewThread),
    Seccomp(seccomp::NewThread),
}

impl AddressSpace {
    /// Starts a clean stub process with the backend chosen by
    /// [`set_mode`], and the context of its first thread. (Under ptrace
    /// the stub is cleared out — the host's stack and vDSO removed, its
    /// data page mapped — in the same stub run as its first batch of
    /// changes, before any guest code runs: [`Context::flush`] or
    /// [`Context::run`].)
    pub fn new(phys: &Arc<PhysMem>) -> Result<(AddressSpace, Context), HostError> {
        match mode() {
            Mode::Ptrace => {
                let (a, c) = ptrace::AddressSpace::new(phys)?;
                Ok((AddressSpace::Ptrace(a), Context::Ptrace(c)))
            }
            Mode::Seccomp => {
                let (a, c) = seccomp::AddressSpace::new_pooled(phys)?;
                Ok((AddressSpace::Seccomp(a), Context::Seccomp(c)))
            }
        }
    }

    /// The host pid of the stub process (for tests and diagnostics).
    pub fn host_pid(&self) -> i32 {
        match self {
            AddressSpace::Ptrace(a) => a.host_pid(),
            AddressSpace::Seccomp(a) => a.host_pid(),
        }
    }

    /// Queues mapping `len` bytes at `addr` to the physmem frames starting
    /// at `pfn`, with `prot` ([`prot`]).
    pub fn map(&self, addr: u64, len: u64, prot: u32, pfn: Pfn) {
        match self {
            AddressSpace::Ptrace(a) => a.map(addr, len, prot, pfn),
            AddressSpace::Seccomp(a) => a.map(addr, len, prot, pfn),
        }
    }

    /// Queues removing any mapping in `[addr, addr+len)`.
    pub fn unmap(&self, addr: u64, len: u64) {
        match self {
            AddressSpace::Ptrace(a) => a.unmap(addr, len),
            AddressSpace::Seccomp(a) => a.unmap(addr, len),
        }
    }

    /// Queues changing the protection of `[addr, addr+len)`.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) {
        match self {
            AddressSpace::Ptrace(a) => a.protect(addr, len, prot),
            AddressSpace::Seccomp(a) => a.protect(addr, len, prot),
        }
    }

    /// Queues one change, whichever kind it is.
    pub fn queue(&self, op: Op) {
        match op {
            Op::Map {
                addr,
                len,
                prot,
                pfn,
            } => self.map(addr, len, prot, pfn),
            Op::Unmap { addr, len } => self.unmap(addr, len),
            Op::Protect { addr, len, prot } => self.protect(addr, len, prot),
        }
    }
}

impl Context {
    /// The address space this thread runs in.
    pub fn address_space(&self) -> AddressSpace {
        match self {
            Context::Ptrace(c) => AddressSpace::Ptrace(c.address_space().clone()),
            Context::Seccomp(c) => AddressSpace::Seccomp(c.address_space().clone()),
        }
    }

    /// The host tid of the stub thread.
    pub fn host_tid(&self) -> i32 {
        match self {
            Context::Ptrace(c) => c.host_tid(),
            Context::Seccomp(c) => c.host_tid(),
        }
    }

    /// A handle for other threads to interrupt the running guest.
    pub fn interrupter(&self) -> Interrupter {
        match self {
            Context::Ptrace(c) => c.interrupter(),
            Context::Seccomp(c) => c.interrupter(),
        }
    }

    /// Carries out the address space's queued changes.
    pub fn flush(&mut self) -> Result<(), HostError> {
        match self {
            Context::Ptrace(c) => c.flush(),
            Context::Seccomp(c) => c.flush(),
        }
    }

    /// Runs the guest with `regs` until it traps; on return `regs` holds
    /// the guest's registers at the trap. Queued changes are flushed first.
    pub fn run(&mut self, regs: &mut Registers) -> Result<Trap, HostError> {
        match self {
            Context::Ptrace(c) => c.run(regs),
            Context::Seccomp(c) => c.run(regs),
        }
    }

    /// Makes a new stub thread in this address space; it waits until a
    /// host thread adopts it.
    pub fn new_thread(&mut self) -> Result<NewThread, HostError> {
        match self {
            Context::Ptrace(c) => c.new_thread().map(NewThread::Ptrace),
            Context::Seccomp(c) => c.new_thread().map(NewThread::Seccomp),
        }
    }

    /// Takes over a stub thread made by [`Context::new_thread`] on the
    /// calling host thread.
    pub fn adopt(aspace: &AddressSpace, t: NewThread) -> Result<Context, HostError> {
        match (aspace, t) {
            (AddressSpace::Ptrace(a), NewThread::Ptrace(t)) => {
                ptrace::Context::adopt(a, t).map(Context::Ptrace)
            }
            (AddressSpace::Seccomp(a), NewThread::Seccomp(t)) => {
                seccomp::Context::adopt(a, t).map(Context::Seccomp)
            }
            _ => Err(HostError::new("a stub thread of the other backend", 0)),
        }
    }

    /// The guest thread's x87/SSE/AVX state (XSAVE layout).
    pub fn get_fpu(&self) -> Result<FpuState, HostError> {
        match self {
            Context::Ptrace(c) => c.get_fpu(),
            Context::Seccomp(c) => c.get_fpu(),
        }
    }

    /// Replaces the guest thread's x87/SSE/AVX state; an invalid state is
    /// an error and changes nothing.
    pub fn set_fpu(&self, fpu: &FpuState) -> Result<(), HostError> {
        match self {
            Context::Ptrace(c) => c.set_fpu(fpu),
            Context::Seccomp(c) => c.set_fpu(fpu),
        }
    }
}

/// A handle that other host threads use to stop a running guest thread,
/// so its task can notice a signal or other work: a flag its context
/// checks before each run, and a kick signal (SIGUSR2) to the stub thread
/// that makes a running guest trap at once.
///
/// The kick is sent only while the context is running guest code (its
/// `running` flag): a guest that sits in the kernel sees the flag at its
/// next run, and a signal sent then would only cost it a spurious trap
/// (a round trip to the stub and back). The context sets `running`
/// before it checks the flag, the interrupter the flag before it checks
/// `running` (both sequentially consistent), so at least one of them sees
/// the other: a kick is never lost.
#[derive(Clone)]
pub struct Interrupter {
    pid: libc::pid_t,
    tid: libc::pid_t,
    kicked: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
}

impl Interrupter {
    pub(crate) fn new(
        pid: libc::pid_t,
        tid: libc::pid_t,
        kicked: Arc<AtomicBool>,
        running: Arc<AtomicBool>,
    ) -> Interrupter {
        Interrupter {
            pid,
            tid,
            kicked,
            running,
        }
    }

    /// Makes the guest trap with [`Trap::Interrupted`] soon: at once if it
    /// is running guest code, else at its next run.
    pub fn interrupt(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        if !self.running.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: a signal to one thread of our own stub; a thread that is
        // gone gives ESRCH.
        unsafe {
            libc::syscall(libc::SYS_tgkill, self.pid, self.tid, ptrace::KICK_SIGNAL);
        }
    }
}
