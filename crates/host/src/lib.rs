//! ruml-host: the only crate that talks to the host's process and memory
//! machinery (UML's `os-Linux/`). Everything above it — the kernel — is
//! host-agnostic and sees only this API:
//!
//! - [`physmem::PhysMem`]: guest RAM, one memfd mapped once into ruml, with
//!   a reference-counted frame allocator.
//! - [`AddressSpace`]: a stub process holding one guest address space, with
//!   queued map/unmap/protect operations flushed in one batch before the
//!   guest next runs (the heir of skas3's /proc/mm), and
//!   [`AddressSpace::run`], which runs the guest until it traps.
//! - [`hostfile`]: host file access for hostfs, confined beneath a root.
//! - [`console`], [`clock`]: the host's terminal and time.
//! - [`net`]: host TCP connections for the kernel's user-mode NAT.
//!
//! The ptrace backend (skas0-style, PTRACE_SYSEMU) lives in [`ptrace`].

pub mod checks;
pub mod clock;
pub mod console;
pub mod cputime;
mod error;
pub mod hostfile;
pub mod net;
pub mod passed;
pub mod physmem;
pub mod ptrace;
pub mod regs;
mod spawn;
pub mod stub;
mod sys;

pub use error::HostError;
pub use physmem::{Pfn, PhysMem, PAGE_SIZE};
pub use ptrace::{AddressSpace, Context, Interrupter, NewThread};
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
