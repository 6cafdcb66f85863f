//! process_madvise(2): madvise over a list of ranges (an iovec) in the
//! address space of the process a pidfd refers to, as Linux's
//! `process_madvise` and `vector_madvise`.
//!
//! Order of checks, as Linux: flags (EINVAL), the iovec (more than 1024
//! entries EINVAL, unreadable EFAULT), the pidfd (EBADF, ESRCH once the
//! process is gone or a zombie), PTRACE_MODE_READ on it with the
//! filesystem ids (EACCES). Another address space than the caller's takes
//! only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and MADV_COLLAPSE (else
//! EINVAL) and needs CAP_SYS_NICE (EPERM); the caller's own (or one it
//! shares, CLONE_VM) takes any advice madvise does. The ranges are advised
//! in order; the first that fails stops the walk. The result is the bytes
//! of the ranges fully advised, or that failure if there were none.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::MAX_RW_COUNT;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

syscall_table! { pub fn pmadvise_table;
    PROCESS_MADVISE => sys_process_madvise(pidfd: Fd, vec: UserAddr, vlen: u64, advice: i32, flags: u32),
}

/// UIO_MAXIOV.
const IOV_MAX: u64 = 1024;

const MADV_WILLNEED: i32 = 3;
const MADV_COLD: i32 = 20;
const MADV_PAGEOUT: i32 = 21;
const MADV_COLLAPSE: i32 = 25;

fn sys_process_madvise(
    ctx: &mut SyscallContext<'_>,
    pidfd: Fd,
    vec: UserAddr,
    vlen: u64,
    advice: i32,
    flags: u32,
) -> KResult<u64> {
    if flags != 0 || vlen > IOV_MAX {
        return error!(EINVAL);
    }
    // The iovec as import_iovec takes it: every entry kept (an empty
    // one still has its address checked), lengths past SSIZE_MAX EINVAL,
    // the total cut at MAX_RW_COUNT.
    let entries = crate::fs::syscalls::iovec_entries(&ctx.mm(), vec.0, vlen as usize)?;
    let mut ranges = Vec::with_capacity(entries.len());
    let mut total: u64 = 0;
    for (base, len) in entries {
        if len > isize::MAX as u64 {
            return error!(EINVAL);
        }
        let len = len.min((MAX_RW_COUNT as u64).saturating_sub(total));
        total += len;
        ranges.push((base, len));
    }
    let f = ctx.files().get(pidfd.0)?;
    let target = crate::fs::anon::pidfd_process_task(&f)?;
    if !crate::task::ptrace::may_access(ctx.task, &target, true) {
        return error!(EACCES);
    }
    let mm = target.mm();
    if !Arc::ptr_eq(&mm, &ctx.mm()) {
        if !matches!(
            advice,
            MADV_COLD | MADV_PAGEOUT | MADV_WILLNEED | MADV_COLLAPSE
        ) {
            return error!(EINVAL);
        }
        if !ctx.task.privileged(crate::task::caps::Cap::SysNice) {
            return error!(EPERM);
        }
    }
    let mut done: u64 = 0;
    let mut result = Ok(());
    for (base, len) in ranges {
        if let Err(e) = super::syscalls::advise(&mm, base, len, advice) {
            result = Err(e);
            break;
        }
        done += len;
    }
    match (done, result) {
        (0, Err(e)) => Err(e),
        (n, _) => Ok(n),
    }
}
