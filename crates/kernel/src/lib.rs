//! ruml-kernel: the Linux ABI, host-agnostic. It reaches the host only
//! through `ruml_host` (physmem, stub address spaces, host files).
//!
//! Subsystems keep their system calls beside them (`task/syscalls.rs`,
//! `mm/syscalls.rs`, `fs/syscalls.rs`, ...); `syscalls` holds the table.

pub mod abi;
pub mod block;
pub mod boot;
pub mod container;
pub mod errno;
pub mod exec;
pub mod fs;
pub mod ipc;
pub mod keys;
pub mod kmsg;
pub mod log;
pub mod mconsole;
pub mod mm;
pub mod net;
pub mod power;
pub mod signal;
pub mod syscalls;
pub mod task;
pub mod time;
pub mod vdso;

use std::sync::{Arc, OnceLock};

use ruml_host::PhysMem;

/// The state of the one kernel instance in this process.
pub struct Kernel {
    pub phys: Arc<PhysMem>,
    pub page_cache: mm::pagecache::PageCache,
    pub tasks: task::TaskTable,
    pub hostname: std::sync::Mutex<Vec<u8>>,
    /// The NIS domain name (setdomainname, uname's domainname).
    pub domainname: std::sync::Mutex<Vec<u8>>,
}

static KERNEL: OnceLock<Kernel> = OnceLock::new();

/// Whether boot created the kernel instance (unit tests run without one).
/// (Added for the tty work: job-control lookups are no-ops before boot.)
pub fn kernel_booted() -> bool {
    KERNEL.get().is_some()
}

/// The kernel instance; boot creates it before any task runs.
pub fn kernel() -> &'static Kernel {
    KERNEL.get().expect("kernel used before boot")
}

pub(crate) fn init_kernel(k: Kernel) -> &'static Kernel {
    let _ = KERNEL.set(k);
    kernel()
}
