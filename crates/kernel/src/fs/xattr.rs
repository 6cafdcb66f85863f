//! Extended attributes. No filesystem of ruml stores them yet: reads find
//! none (EOPNOTSUPP for a name, an empty list), writes give EROFS on
//! read-only mounts and EOPNOTSUPP elsewhere — after the path, the fd and
//! the name are checked as Linux checks them.

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

use super::syscalls::resolve;
use super::vfs::Path;

const AT_FDCWD: Fd = Fd(-100);
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;

syscall_table! { pub fn xattr_table;
    GETXATTR => sys_getxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize),
    LGETXATTR => sys_lgetxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize),
    FGETXATTR => sys_fgetxattr(fd: Fd, name: UserAddr, value: UserAddr, size: usize),
    LISTXATTR => sys_listxattr(path: UserAddr, list: UserAddr, size: usize),
    LLISTXATTR => sys_llistxattr(path: UserAddr, list: UserAddr, size: usize),
    FLISTXATTR => sys_flistxattr(fd: Fd, list: UserAddr, size: usize),
    SETXATTR => sys_setxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    LSETXATTR => sys_lsetxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    FSETXATTR => sys_fsetxattr(fd: Fd, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    REMOVEXATTR => sys_removexattr(path: UserAddr, name: UserAddr),
    LREMOVEXATTR => sys_lremovexattr(path: UserAddr, name: UserAddr),
    FREMOVEXATTR => sys_fremovexattr(fd: Fd, name: UserAddr),
}

fn check_name(ctx: &SyscallContext<'_>, name: UserAddr) -> KResult<()> {
    let n = ctx.mm().read_cstring(name.0, XATTR_NAME_MAX).map_err(|e| {
        if e == crate::errno!(ENAMETOOLONG) {
            crate::errno!(ERANGE)
        } else {
            e
        }
    })?;
    if n.is_empty() {
        return error!(ERANGE);
    }
    Ok(())
}

fn by_fd(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<Path> {
    let f = super::fd_get(ctx.task, fd.0)?;
    if f.is_path_only() {
        return error!(EBADF);
    }
    Ok(f.path.clone())
}

fn get(ctx: &SyscallContext<'_>, p: KResult<Path>, name: UserAddr) -> KResult<u64> {
    p?;
    check_name(ctx, name)?;
    error!(EOPNOTSUPP)
}

fn list(p: KResult<Path>) -> KResult<u64> {
    p?;
    Ok(0)
}

fn set(
    ctx: &SyscallContext<'_>,
    p: KResult<Path>,
    name: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    let p = p?;
    if flags & !3 != 0 {
        return error!(EINVAL);
    }
    check_name(ctx, name)?;
    if size > XATTR_SIZE_MAX {
        return error!(E2BIG);
    }
    if p.mnt.read_only() {
        return error!(EROFS);
    }
    error!(EOPNOTSUPP)
}

fn sys_getxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> KResult<u64> {
    get(ctx, resolve(ctx, AT_FDCWD, path, true, false), name)
}
fn sys_lgetxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> KResult<u64> {
    get(ctx, resolve(ctx, AT_FDCWD, path, false, false), name)
}
fn sys_fgetxattr(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> KResult<u64> {
    get(ctx, by_fd(ctx, fd), name)
}
fn sys_listxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    _l: UserAddr,
    _s: usize,
) -> KResult<u64> {
    list(resolve(ctx, AT_FDCWD, path, true, false))
}
fn sys_llistxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    _l: UserAddr,
    _s: usize,
) -> KResult<u64> {
    list(resolve(ctx, AT_FDCWD, path, false, false))
}
fn sys_flistxattr(ctx: &mut SyscallContext<'_>, fd: Fd, _l: UserAddr, _s: usize) -> KResult<u64> {
    list(by_fd(ctx, fd))
}
fn sys_setxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    set(
        ctx,
        resolve(ctx, AT_FDCWD, path, true, false),
        name,
        size,
        flags,
    )
}
fn sys_lsetxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    set(
        ctx,
        resolve(ctx, AT_FDCWD, path, false, false),
        name,
        size,
        flags,
    )
}
fn sys_fsetxattr(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    name: UserAddr,
    _v: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    set(ctx, by_fd(ctx, fd), name, size, flags)
}
fn sys_removexattr(ctx: &mut SyscallContext<'_>, path: UserAddr, name: UserAddr) -> KResult<u64> {
    set(ctx, resolve(ctx, AT_FDCWD, path, true, false), name, 0, 0)
}
fn sys_lremovexattr(ctx: &mut SyscallContext<'_>, path: UserAddr, name: UserAddr) -> KResult<u64> {
    set(ctx, resolve(ctx, AT_FDCWD, path, false, false), name, 0, 0)
}
fn sys_fremovexattr(ctx: &mut SyscallContext<'_>, fd: Fd, name: UserAddr) -> KResult<u64> {
    set(ctx, by_fd(ctx, fd), name, 0, 0)
}
