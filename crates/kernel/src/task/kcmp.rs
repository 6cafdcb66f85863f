//! kcmp(2): whether two tasks share a kernel object (an open file, the
//! address space, the descriptor table, the filesystem context, the
//! signal handlers, the System V undo list, the I/O context, or a file
//! watched by an epoll instance). As Linux: both tasks are found in the
//! caller's PID namespace (ESRCH), the caller needs ptrace read access to
//! both (EPERM, PTRACE_MODE_READ_REALCREDS), then the type decides
//! (EINVAL for an unknown one). Equal objects give 0; different ones 1 or
//! 2 by an order of their addresses obfuscated with per-boot cookies
//! (Linux's kptr_obfuscate), so that user space can sort objects without
//! learning kernel addresses.
//!
//! ruml's objects: the address space is the task's `Mm`, descriptors its
//! `FdTable`, the filesystem context its `FsContext` (each shared by the
//! clone flags that share them); signal handlers and the System V undo
//! list belong to the process (ruml shares handlers only between threads
//! and has no CLONE_SYSVSEM), and each task has an I/O context of its own
//! (no CLONE_IO).

use std::sync::{Arc, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::SyscallContext;

use super::Task;

const KCMP_FILE: u32 = 0;
const KCMP_VM: u32 = 1;
const KCMP_FILES: u32 = 2;
const KCMP_FS: u32 = 3;
const KCMP_SIGHAND: u32 = 4;
const KCMP_IO: u32 = 5;
const KCMP_SYSVSEM: u32 = 6;
const KCMP_EPOLL_TFD: u32 = 7;
const KCMP_TYPES: usize = 8;

syscall_table! { pub fn kcmp_table;
    KCMP => sys_kcmp(pid1: i32, pid2: i32, kind: u32, idx1: u64, idx2: u64),
}

crate::abi_struct! {
    /// struct kcmp_epoll_slot: an epoll descriptor of the second task, a
    /// descriptor number watched by it, and which of the watches of that
    /// number (0 for the first).
    pub struct EpollSlot { pub efd: u32, pub tfd: u32, pub toff: u32 }
}

/// Per-boot cookies, two per type: an address is xor'ed with the first
/// and multiplied by the second (odd), as Linux's kcmp_cookies.
fn cookies() -> &'static [[u64; 2]; KCMP_TYPES] {
    static COOKIES: OnceLock<[[u64; 2]; KCMP_TYPES]> = OnceLock::new();
    COOKIES.get_or_init(|| {
        let mut b = [0u8; KCMP_TYPES * 16];
        ruml_host::clock::random_bytes(&mut b);
        let mut c = [[0u64; 2]; KCMP_TYPES];
        for (i, pair) in c.iter_mut().enumerate() {
            let at = i * 16;
            let word = |o: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[at + o..at + o + 8]);
                u64::from_ne_bytes(w)
            };
            *pair = [word(0), word(8) | 1];
        }
        c
    })
}

/// 0 if `a` and `b` are the same object, else 1 or 2 by their obfuscated
/// order.
fn order(a: usize, b: usize, kind: u32) -> u64 {
    let [x, m] = cookies()[kind as usize];
    let ob = |p: usize| (p as u64 ^ x).wrapping_mul(m);
    let (a, b) = (ob(a), ob(b));
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 2,
    }
}

fn addr<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const u8 as usize
}

/// The open file under descriptor `fd` of `task` (EBADF).
fn file_of(task: &Task, fd: u64) -> KResult<crate::fs::file::FileRef> {
    let fd = i32::try_from(fd).map_err(|_| crate::errno!(EBADF))?;
    task.files().get(fd)
}

fn sys_kcmp(
    ctx: &mut SyscallContext<'_>,
    pid1: i32,
    pid2: i32,
    kind: u32,
    idx1: u64,
    idx2: u64,
) -> KResult<u64> {
    let find = |pid: i32| {
        ctx.task
            .pid_lookup(pid)
            .filter(|_| pid > 0)
            .and_then(|p| crate::kernel().tasks.thread(p))
            .ok_or(crate::errno!(ESRCH))
    };
    let (t1, t2) = (find(pid1)?, find(pid2)?);
    if !super::ptrace::may_access(ctx.task, &t1, false)
        || !super::ptrace::may_access(ctx.task, &t2, false)
    {
        return error!(EPERM);
    }
    let (a, b) = match kind {
        KCMP_FILE => {
            let (f1, f2) = (file_of(&t1, idx1), file_of(&t2, idx2));
            match (f1, f2) {
                (Ok(f1), Ok(f2)) => (addr(&f1), addr(&f2)),
                _ => return error!(EBADF),
            }
        }
        KCMP_VM => (addr(&t1.mm()), addr(&t2.mm())),
        KCMP_FILES => (addr(&t1.files()), addr(&t2.files())),
        KCMP_FS => (addr(&t1.fs()), addr(&t2.fs())),
        KCMP_SIGHAND | KCMP_SYSVSEM => (addr(&t1.group), addr(&t2.group)),
        KCMP_IO => (&*t1 as *const Task as usize, &*t2 as *const Task as usize),
        KCMP_EPOLL_TFD => {
            let slot: EpollSlot = ctx.mm().read_val(idx2)?;
            let f1 = file_of(&t1, idx1)?;
            let ep = file_of(&t2, u64::from(slot.efd))?;
            let target = crate::fs::epoll::watched_file(&ep, slot.tfd, slot.toff)?;
            (addr(&f1), addr(&target))
        }
        _ => return error!(EINVAL),
    };
    Ok(order(a, b, kind))
}
