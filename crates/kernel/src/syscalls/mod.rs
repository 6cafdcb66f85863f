//! System-call dispatch. Each subsystem keeps its handlers beside it
//! (`fs/syscalls.rs`, `mm/syscalls.rs`, `task/syscalls.rs`, ...) and
//! declares its part of the table with [`syscall_table!`]; [`dispatch`]
//! consults them in turn. Handlers take typed arguments and return
//! `KResult<u64>`; `Err(e)` becomes `-e` in rax.

pub mod docs;
pub mod names;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;

use ruml_host::Registers;

use crate::errno::{Errno, KResult};
use crate::task::Task;

/// A guest virtual address, as passed in a register. Not checked: the
/// memory manager checks it on every access (EFAULT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UserAddr(pub u64);

impl UserAddr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
    pub fn offset(self, n: u64) -> UserAddr {
        UserAddr(self.0.wrapping_add(n))
    }
}

/// A file-descriptor number as the guest passed it (may be negative,
/// e.g. AT_FDCWD = -100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fd(pub i32);

/// Converts a raw register into a typed argument.
pub trait FromArg {
    fn from_arg(raw: u64) -> Self;
}

macro_rules! from_arg_int {
    ($($t:ty),*) => {$(
        impl FromArg for $t {
            fn from_arg(raw: u64) -> Self { raw as $t }
        }
    )*};
}
from_arg_int!(u64, i64, u32, i32, usize, u16);

impl FromArg for UserAddr {
    fn from_arg(raw: u64) -> Self {
        UserAddr(raw)
    }
}

impl FromArg for Fd {
    fn from_arg(raw: u64) -> Self {
        Fd(raw as i32)
    }
}

/// What a handler works with: the calling task and its registers.
pub struct SyscallContext<'a> {
    pub task: &'a Arc<Task>,
    pub regs: &'a mut Registers,
    /// Work for the task loop once the handler returns (exec, exit,
    /// a new task to start): things that need the host context.
    pub after: Option<crate::task::After>,
    /// The calling thread's host context, when a handler must apply its
    /// address space's queued changes before going on (fork, mm/fork.rs).
    pub host: Option<&'a mut ruml_host::Context>,
}

impl SyscallContext<'_> {
    /// The caller's memory manager (address space).
    pub fn mm(&self) -> Arc<crate::mm::Mm> {
        self.task.mm()
    }
    /// The caller's descriptor table.
    pub fn files(&self) -> Arc<crate::fs::FdTable> {
        self.task.files()
    }
    /// The caller's root, cwd and umask.
    pub fn fs(&self) -> Arc<crate::fs::FsContext> {
        self.task.fs()
    }
}

/// A handler's signature once its arguments are decoded.
pub type RawHandler = fn(&mut SyscallContext<'_>, [u64; 6]) -> KResult<u64>;

/// Declares a subsystem's part of the system-call table:
///
/// ```ignore
/// syscall_table! { pub fn fs_table;
///     READ => sys_read(fd: Fd, buf: UserAddr, count: usize),
///     CLOSE => sys_close(fd: Fd),
/// }
/// ```
///
/// generates `pub fn fs_table(nr) -> Option<(RawHandler, &'static str)>`
/// that decodes the registers into the typed arguments and calls the
/// handler `sys_read(ctx, fd, buf, count) -> KResult<u64>`.
#[macro_export]
macro_rules! syscall_table {
    ($vis:vis fn $table:ident; $($nr:ident => $handler:ident($($arg:ident : $ty:ty),* $(,)?)),* $(,)?) => {
        $vis fn $table(nr: u64) -> Option<($crate::syscalls::RawHandler, &'static str)> {
            #[allow(unused_imports)]
            use $crate::syscalls::FromArg;
            match nr {
                $(
                    $crate::syscalls::names::nr::$nr => Some((
                        {
                            #[allow(unused_variables, unused_mut, unused_assignments)]
                            fn decode(ctx: &mut $crate::syscalls::SyscallContext<'_>, a: [u64; 6]) -> $crate::errno::KResult<u64> {
                                let mut _i = 0usize;
                                $(
                                    let $arg = <$ty as FromArg>::from_arg(a[_i]);
                                    _i += 1;
                                )*
                                $handler(ctx, $($arg),*)
                            }
                            decode as $crate::syscalls::RawHandler
                        },
                        stringify!($handler),
                    )),
                )*
                _ => None,
            }
        }
    };
}

/// The subsystem tables, consulted in order.
/// A subsystem's table: the handler and its name for a number.
type Table = fn(u64) -> Option<(RawHandler, &'static str)>;

const TABLES: &[Table] = &[
    crate::task::syscalls::task_table,
    crate::mm::syscalls::mm_table,
    crate::mm::pmadvise::pmadvise_table,
    crate::mm::cachestat::cachestat_table,
    crate::fs::syscalls::fs_table,
    crate::fs::xattr::xattr_table,
    crate::fs::fhandle::fhandle_table,
    crate::fs::advise::advise_table,
    crate::fs::anon::anon_table,
    crate::fs::epoll::epoll_table,
    crate::net::socket_table,
    crate::fs::locks::locks_table,
    crate::fs::copy::copy_table,
    crate::fs::memfd::memfd_table,
    crate::fs::inotify::inotify_table,
    crate::fs::fanotify::fanotify_table,
    crate::fs::io_uring::io_uring_table,
    crate::fs::aio::aio_table,
    crate::fs::openat2::openat2_table,
    crate::exec::exec_table,
    crate::time::time_table,
    crate::time::adjust::adjust_table,
    crate::kmsg::kmsg_table,
    crate::time::sysinfo_table,
    crate::signal::signal_table,
    crate::task::futex::futex_table,
    crate::task::usage::usage_table,
    crate::task::sched::sched_table,
    crate::task::creds::creds_table,
    crate::task::caps::caps_table,
    crate::task::seccomp::seccomp_table,
    crate::task::ptrace::ptrace_table,
    crate::task::persona::persona_table,
    crate::task::kcmp::kcmp_table,
    crate::task::reboot::reboot_table,
    crate::time::timers::timers_table,
    crate::ipc::msg::msg_table,
    crate::ipc::sem::sem_table,
    crate::ipc::shm::shm_table,
    crate::ipc::mqueue::mqueue_table,
    crate::vdso::vdso_table,
    crate::task::ns::ns_table,
    crate::fs::mntns::mntns_table,
    crate::fs::mountapi::mountapi_table,
    crate::keys::keys_table,
];

/// The handler for a system-call number, if ruml implements it.
pub fn lookup(nr: u64) -> Option<(RawHandler, &'static str)> {
    TABLES.iter().find_map(|t| t(nr))
}

/// Every implemented system-call number (for docs/syscalls.md's check).
pub fn implemented() -> Vec<u64> {
    names::SYSCALL_NAMES
        .iter()
        .map(|&(n, _)| n as u64)
        .filter(|&n| lookup(n).is_some())
        .collect()
}

/// Runs the system call in the registers and writes its result to rax.
/// An unknown number gives ENOSYS, logged once per number. The task loop
/// has run the guest's seccomp filters first (task::seccomp::intercept).
pub fn dispatch(ctx: &mut SyscallContext<'_>) {
    let nr = ctx.regs.orig_rax;
    let args = ctx.regs.syscall_args();
    // O_ASYNC signals the call caused go out as it ends (fs/fasync.rs).
    let result = crate::fs::fasync::in_syscall(|| match lookup(nr) {
        Some((handler, _name)) => handler(ctx, args),
        None => {
            warn_unknown(nr);
            Err(Errno::ENOSYS)
        }
    });
    if crate::log::strace_enabled() {
        let name = names::syscall_name(nr).unwrap_or("?");
        let t = crate::log::since_boot();
        eprintln!(
            "{}.{:06} [{}] {}({:#x}, {:#x}, {:#x}) = {:?}",
            t.as_secs(),
            t.subsec_micros(),
            ctx.task.tid(),
            name,
            args[0],
            args[1],
            args[2],
            result.map(|v| v as i64)
        );
    }
    ctx.regs.rax = match result {
        Ok(v) => v,
        Err(e) => e.as_return(),
    };
    // Keeps the vDSO's clock page current while the guest is busy.
    crate::vdso::sync_if_stale();
}

/// Calls every glibc program makes at start and copes without: their
/// ENOSYS goes to the kernel log at debug level, not to the console at
/// every boot. rseq (334): restartable sequences need the kernel to
/// rewrite the thread's cpu_id and abort critical sections on every
/// preemption, which ruml cannot see; glibc falls back to getcpu.
const EXPECTED_ENOSYS: &[u64] = &[334];

fn warn_unknown(nr: u64) {
    static SEEN: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(nr) {
        let name = names::syscall_name(nr).unwrap_or("unknown");
        let msg = format!("unimplemented system call {nr} ({name}): ENOSYS");
        if EXPECTED_ENOSYS.contains(&nr) {
            crate::log::debug(&msg);
        } else {
            crate::log::kprint(&msg);
        }
    }
}
