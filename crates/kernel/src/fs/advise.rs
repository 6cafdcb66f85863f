//! Advice about file access: fadvise64 and readahead. The page cache is
//! filled on demand, so the advice changes no result; the calls check
//! their arguments as Linux does.

use crate::errno::KResult;
use crate::error;
use crate::fs::types::FileType;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext};

syscall_table! { pub fn advise_table;
    FADVISE64 => sys_fadvise64(fd: Fd, offset: i64, len: i64, advice: i32),
    READAHEAD => sys_readahead(fd: Fd, offset: i64, count: usize),
}

fn sys_fadvise64(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    _offset: i64,
    len: i64,
    advice: i32,
) -> KResult<u64> {
    let f = crate::fs::fd_get(ctx.task, fd.0)?;
    if f.is_path_only() {
        return error!(EBADF);
    }
    if f.path.inode().file_type() == FileType::Fifo {
        return error!(ESPIPE);
    }
    if !(0..=5).contains(&advice) || len < 0 {
        return error!(EINVAL);
    }
    Ok(0)
}

fn sys_readahead(ctx: &mut SyscallContext<'_>, fd: Fd, offset: i64, _count: usize) -> KResult<u64> {
    let f = crate::fs::fd_get(ctx.task, fd.0)?;
    if f.is_path_only() || !f.can_read() {
        return error!(EBADF);
    }
    if f.path.inode().file_type() != FileType::Regular || offset < 0 {
        return error!(EINVAL);
    }
    Ok(0)
}
