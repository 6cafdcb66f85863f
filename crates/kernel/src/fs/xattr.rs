//! Extended attributes (xattr(7)): the twelve system calls and the checks
//! Linux's VFS makes before a filesystem sees a request, plus
//! [`XattrMap`], the in-memory store tmpfs (and so the overlay's upper
//! layer) keeps them in.
//!
//! Namespaces, as Linux (fs/xattr.c `xattr_permission` and commoncap):
//! - `user.*`: only on regular files and directories (elsewhere a read
//!   finds nothing, ENODATA, and a write gives EPERM); reading needs read
//!   permission on the file, writing write permission; in a sticky
//!   directory only the owner (or CAP_FOWNER) writes them.
//! - `trusted.*`: CAP_SYS_ADMIN, else reads give ENODATA, writes EPERM,
//!   and listings leave them out.
//! - `security.*`: anyone reads; writing needs CAP_SYS_ADMIN
//!   (`security.capability`: CAP_SETFCAP and a valid v2/v3 header).
//! - `system.*`: the POSIX ACL names (`system.posix_acl_access`,
//!   `system.posix_acl_default`) are not supported by any filesystem of
//!   ruml: EOPNOTSUPP, as on a filesystem mounted without ACLs. Any other
//!   `system.*` name, and any other prefix, is EOPNOTSUPP.
//!
//! Limits: names 1..=255 bytes (else ERANGE), values at most 64 KiB
//! (E2BIG), listings at most 64 KiB. Which filesystems store what, and
//! how much, is in docs/filesystems.md.

use std::collections::BTreeMap;

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::caps::Cap;

use super::perm::{MAY_READ, MAY_WRITE};
use super::syscalls::resolve;
use super::types::FileType;
use super::vfs::{Caller, Path};

const AT_FDCWD: Fd = Fd(-100);
/// Longest attribute name (without the NUL).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest attribute value.
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest listing listxattr returns.
pub const XATTR_LIST_MAX: usize = 65536;
/// setxattr flags.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

const S_ISVTX: u32 = 0o1000;

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

/// The namespace of a full attribute name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    User,
    Trusted,
    Security,
    System,
}

/// The namespace of `name` and the part after its prefix; EOPNOTSUPP for
/// an unknown prefix.
pub fn namespace_of(name: &[u8]) -> KResult<(Namespace, &[u8])> {
    for (p, ns) in [
        (&b"user."[..], Namespace::User),
        (b"trusted.", Namespace::Trusted),
        (b"security.", Namespace::Security),
        (b"system.", Namespace::System),
    ] {
        if let Some(rest) = name.strip_prefix(p) {
            return Ok((ns, rest));
        }
    }
    error!(EOPNOTSUPP)
}

/// Reads the attribute name argument: ERANGE when empty or longer than
/// XATTR_NAME_MAX (as Linux's import_xattr_name), EFAULT when unreadable.
fn read_name(ctx: &SyscallContext<'_>, name: UserAddr) -> KResult<Vec<u8>> {
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
    Ok(n)
}

fn by_fd(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<Path> {
    let f = super::fd_get(ctx.task, fd.0)?;
    if f.is_path_only() {
        return error!(EBADF);
    }
    Ok(f.path.clone())
}

/// Linux's xattr_permission plus the capability module's rules, for a
/// read (`write` false) or a write of `name` on `p`.
fn permission(ctx: &SyscallContext<'_>, p: &Path, name: &[u8], write: bool) -> KResult<()> {
    let (ns, rest) = namespace_of(name)?;
    let task = ctx.task;
    match ns {
        Namespace::System => return error!(EOPNOTSUPP),
        Namespace::Security => {
            if write {
                let cap = if rest == b"capability" {
                    Cap::Setfcap
                } else {
                    Cap::SysAdmin
                };
                if !task.privileged(cap) {
                    return error!(EPERM);
                }
            }
            if rest.is_empty() {
                return error!(EINVAL);
            }
            return Ok(());
        }
        Namespace::Trusted => {
            if !task.privileged(Cap::SysAdmin) {
                return if write {
                    error!(EPERM)
                } else {
                    error!(ENODATA)
                };
            }
            if rest.is_empty() {
                return error!(EINVAL);
            }
            return Ok(());
        }
        Namespace::User => {}
    }
    let st = p.inode().stat()?;
    let ft = p.inode().file_type();
    if ft != FileType::Regular && ft != FileType::Directory {
        return if write {
            error!(EPERM)
        } else {
            error!(ENODATA)
        };
    }
    let caller = Caller::of(task);
    if write && ft == FileType::Directory && st.mode & S_ISVTX != 0 {
        let fsuid = task
            .group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fsuid;
        if st.uid != fsuid && !task.privileged(Cap::Fowner) {
            return error!(EPERM);
        }
    }
    super::perm::check(&caller, p, if write { MAY_WRITE } else { MAY_READ })?;
    if rest.is_empty() {
        return error!(EINVAL);
    }
    Ok(())
}

/// security.capability values: a v2 (20 bytes) or v3 (24 bytes) header.
fn valid_fcaps(v: &[u8]) -> bool {
    if v.len() < 4 {
        return false;
    }
    let magic = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) & 0xff00_0000;
    matches!((magic, v.len()), (0x0200_0000, 20) | (0x0300_0000, 24))
}

fn get(
    ctx: &SyscallContext<'_>,
    p: KResult<Path>,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> KResult<u64> {
    let name = read_name(ctx, name)?;
    let p = p?;
    permission(ctx, &p, &name, false)?;
    let v = p.inode().getxattr(&name)?;
    if size == 0 {
        return Ok(v.len() as u64);
    }
    if v.len() > size {
        return if size >= XATTR_SIZE_MAX {
            error!(E2BIG)
        } else {
            error!(ERANGE)
        };
    }
    ctx.mm().write_bytes(value.0, &v)?;
    Ok(v.len() as u64)
}

fn list(ctx: &SyscallContext<'_>, p: KResult<Path>, out: UserAddr, size: usize) -> KResult<u64> {
    let p = p?;
    let trusted = ctx.task.privileged(Cap::SysAdmin);
    let mut buf = Vec::new();
    for n in p.inode().listxattr()? {
        if !trusted && n.starts_with(b"trusted.") {
            continue;
        }
        buf.extend_from_slice(&n);
        buf.push(0);
    }
    if size == 0 {
        return Ok(buf.len() as u64);
    }
    if buf.len() > size.min(XATTR_LIST_MAX) {
        return if size >= XATTR_LIST_MAX {
            error!(E2BIG)
        } else {
            error!(ERANGE)
        };
    }
    ctx.mm().write_bytes(out.0, &buf)?;
    Ok(buf.len() as u64)
}

/// setxattr (`value` Some((addr, size))) and removexattr (None).
fn set(
    ctx: &SyscallContext<'_>,
    p: impl FnOnce() -> KResult<Path>,
    name: UserAddr,
    value: Option<(UserAddr, usize)>,
    flags: i32,
) -> KResult<u64> {
    if flags & !((XATTR_CREATE | XATTR_REPLACE) as i32) != 0 {
        return error!(EINVAL);
    }
    let name = read_name(ctx, name)?;
    let v = match value {
        Some((addr, size)) => {
            if size > XATTR_SIZE_MAX {
                return error!(E2BIG);
            }
            let mut v = vec![0u8; size];
            if size > 0 {
                ctx.mm().read_bytes(addr.0, &mut v)?;
            }
            Some(v)
        }
        None => None,
    };
    let p = p()?;
    if p.mnt.read_only() {
        return error!(EROFS);
    }
    permission(ctx, &p, &name, true)?;
    if let Some(v) = &v {
        if name == b"security.capability" && !valid_fcaps(v) {
            return error!(EINVAL);
        }
    }
    p.inode().setxattr(&name, v.as_deref(), flags as u32)?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// The in-memory store

/// What one attribute costs against a filesystem's budget: its name, its
/// value and a fixed overhead (as Linux's simple_xattr_space).
pub fn entry_space(name: &[u8], value_len: usize) -> u64 {
    (48 + name.len() + value_len) as u64
}

/// Extended attributes held in memory (tmpfs): name → value, listed in
/// name order as Linux's simple_xattrs. The owner keeps it under its own
/// lock and charges [`XattrMap::set`]'s growth to its filesystem's budget.
#[derive(Default)]
pub struct XattrMap {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl XattrMap {
    /// The value of `name`; ENODATA when absent.
    pub fn get(&self, name: &[u8]) -> KResult<Vec<u8>> {
        self.map.get(name).cloned().ok_or(crate::errno!(ENODATA))
    }

    /// Every name, in order.
    pub fn names(&self) -> Vec<Vec<u8>> {
        self.map.keys().cloned().collect()
    }

    /// Total space held (see [`entry_space`]).
    pub fn space(&self) -> u64 {
        self.map.iter().map(|(n, v)| entry_space(n, v.len())).sum()
    }

    /// Sets (`value` Some) or removes `name` with XATTR_CREATE/REPLACE
    /// semantics. `charge(delta)` is called with the change in space
    /// before anything changes; an error from it (ENOSPC) leaves the map
    /// as it was.
    pub fn set(
        &mut self,
        name: &[u8],
        value: Option<&[u8]>,
        flags: u32,
        charge: impl FnOnce(i64) -> KResult<()>,
    ) -> KResult<()> {
        let old = self.map.get(name).map(|v| entry_space(name, v.len()));
        match value {
            None => {
                let Some(old) = old else {
                    return error!(ENODATA);
                };
                charge(-(old as i64))?;
                self.map.remove(name);
            }
            Some(v) => {
                if old.is_some() && flags & XATTR_CREATE != 0 {
                    return error!(EEXIST);
                }
                if old.is_none() && flags & XATTR_REPLACE != 0 {
                    return error!(ENODATA);
                }
                let new = entry_space(name, v.len());
                charge(new as i64 - old.unwrap_or(0) as i64)?;
                self.map.insert(name.to_vec(), v.to_vec());
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The system calls

fn sys_getxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> KResult<u64> {
    let p = resolve(ctx, AT_FDCWD, path, true, false);
    get(ctx, p, name, value, size)
}
fn sys_lgetxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> KResult<u64> {
    let p = resolve(ctx, AT_FDCWD, path, false, false);
    get(ctx, p, name, value, size)
}
fn sys_fgetxattr(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> KResult<u64> {
    let p = by_fd(ctx, fd);
    get(ctx, p, name, value, size)
}
fn sys_listxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    l: UserAddr,
    s: usize,
) -> KResult<u64> {
    let p = resolve(ctx, AT_FDCWD, path, true, false);
    list(ctx, p, l, s)
}
fn sys_llistxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    l: UserAddr,
    s: usize,
) -> KResult<u64> {
    let p = resolve(ctx, AT_FDCWD, path, false, false);
    list(ctx, p, l, s)
}
fn sys_flistxattr(ctx: &mut SyscallContext<'_>, fd: Fd, l: UserAddr, s: usize) -> KResult<u64> {
    let p = by_fd(ctx, fd);
    list(ctx, p, l, s)
}
fn sys_setxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    let c = &*ctx;
    set(
        c,
        || resolve(c, AT_FDCWD, path, true, false),
        name,
        Some((value, size)),
        flags,
    )
}
fn sys_lsetxattr(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    let c = &*ctx;
    set(
        c,
        || resolve(c, AT_FDCWD, path, false, false),
        name,
        Some((value, size)),
        flags,
    )
}
fn sys_fsetxattr(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> KResult<u64> {
    let c = &*ctx;
    let p = by_fd(c, fd)?;
    set(c, || Ok(p), name, Some((value, size)), flags)
}
fn sys_removexattr(ctx: &mut SyscallContext<'_>, path: UserAddr, name: UserAddr) -> KResult<u64> {
    let c = &*ctx;
    set(c, || resolve(c, AT_FDCWD, path, true, false), name, None, 0)
}
fn sys_lremovexattr(ctx: &mut SyscallContext<'_>, path: UserAddr, name: UserAddr) -> KResult<u64> {
    let c = &*ctx;
    set(
        c,
        || resolve(c, AT_FDCWD, path, false, false),
        name,
        None,
        0,
    )
}
fn sys_fremovexattr(ctx: &mut SyscallContext<'_>, fd: Fd, name: UserAddr) -> KResult<u64> {
    let c = &*ctx;
    let p = by_fd(c, fd)?;
    set(c, || Ok(p), name, None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_create_replace_remove_and_charge() {
        let mut m = XattrMap::default();
        let mut used = 0i64;
        let mut ch = |d: i64| {
            used += d;
            Ok(())
        };
        assert_eq!(
            m.set(b"user.a", Some(b"1"), XATTR_REPLACE, &mut ch),
            error!(ENODATA)
        );
        m.set(b"user.b", Some(b"22"), XATTR_CREATE, &mut ch)
            .unwrap();
        m.set(b"user.a", Some(b"1"), 0, &mut ch).unwrap();
        assert_eq!(
            m.set(b"user.a", Some(b"x"), XATTR_CREATE, &mut ch),
            error!(EEXIST)
        );
        assert_eq!(m.names(), vec![b"user.a".to_vec(), b"user.b".to_vec()]);
        assert_eq!(m.get(b"user.b").unwrap(), b"22");
        m.set(b"user.b", None, 0, &mut ch).unwrap();
        assert_eq!(m.set(b"user.b", None, 0, &mut ch), error!(ENODATA));
        assert_eq!(m.get(b"user.b"), error!(ENODATA));
        assert_eq!(used as u64, m.space());
        // A refused charge changes nothing.
        assert_eq!(
            m.set(b"user.c", Some(b"3"), 0, |_| error!(ENOSPC)),
            error!(ENOSPC)
        );
        assert_eq!(m.names().len(), 1);
    }

    #[test]
    fn namespaces_and_fcaps() {
        assert_eq!(
            namespace_of(b"user.x").unwrap(),
            (Namespace::User, &b"x"[..])
        );
        assert_eq!(namespace_of(b"trusted.").unwrap().0, Namespace::Trusted);
        assert!(namespace_of(b"foo.x").is_err());
        assert!(namespace_of(b"user").is_err());
        let mut v2 = [0u8; 20];
        v2[3] = 2;
        assert!(valid_fcaps(&v2));
        assert!(!valid_fcaps(&v2[..12]));
        let mut v3 = [0u8; 24];
        v3[3] = 3;
        assert!(valid_fcaps(&v3));
    }
}
