//! memfd_create: an anonymous file on an internal tmpfs (pages in
//! physmem, so it can be mapped shared and passed between processes),
//! with file seals (F_ADD_SEALS, F_GET_SEALS): SEAL, SHRINK, GROW, WRITE,
//! FUTURE_WRITE, enforced on write, truncate, fallocate and shared
//! writable mappings.

use std::sync::{Arc, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::tmpfs::{TmpFs, TmpInode, TmpfsOptions};
use crate::fs::types::oflags::O_RDWR;
use crate::fs::vfs::{Dentry, Inode, Mount, Path};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

pub const F_ADD_SEALS: i32 = 1033;
pub const F_GET_SEALS: i32 = 1034;
const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 16;
const F_SEAL_EXEC: u32 = 32;
const ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// Seals by memfd inode.
fn seals() -> &'static std::sync::Mutex<std::collections::HashMap<(u64, u64), u32>> {
    static S: OnceLock<std::sync::Mutex<std::collections::HashMap<(u64, u64), u32>>> =
        OnceLock::new();
    S.get_or_init(Default::default)
}

/// The seals on a file (0 for anything but a memfd).
pub fn seals_of(f: &OpenFile) -> u32 {
    if !Arc::ptr_eq(&f.path.mnt, &memfs().0) {
        return 0;
    }
    seals()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&f.path.inode().key())
        .copied()
        .unwrap_or(0)
}

/// EPERM if the seals forbid a write at all / growing to `new_end` /
/// shrinking below the current size.
pub fn check_write(f: &OpenFile, new_end: Option<u64>) -> KResult<()> {
    let s = seals_of(f);
    if s == 0 {
        return Ok(());
    }
    if s & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 && new_end.is_some() {
        return error!(EPERM);
    }
    Ok(())
}

/// Size changes under F_SEAL_SHRINK / F_SEAL_GROW.
pub fn check_resize(f: &OpenFile, new_size: u64) -> KResult<()> {
    let s = seals_of(f);
    if s == 0 {
        return Ok(());
    }
    let cur = f.size()?;
    if (new_size < cur && s & F_SEAL_SHRINK != 0) || (new_size > cur && s & F_SEAL_GROW != 0) {
        return error!(EPERM);
    }
    Ok(())
}

/// fcntl F_ADD_SEALS / F_GET_SEALS.
pub fn fcntl_seals(f: &OpenFile, cmd: i32, arg: u64) -> KResult<u64> {
    if !Arc::ptr_eq(&f.path.mnt, &memfs().0) {
        return error!(EINVAL);
    }
    let key = f.path.inode().key();
    let mut m = seals().lock().unwrap_or_else(|p| p.into_inner());
    let cur = m.get(&key).copied().unwrap_or(F_SEAL_SEAL);
    if cmd == F_GET_SEALS {
        return Ok(cur as u64);
    }
    let add = arg as u32;
    if add & !ALL_SEALS != 0 {
        return error!(EINVAL);
    }
    if !f.can_write() {
        return error!(EPERM);
    }
    if cur & F_SEAL_SEAL != 0 {
        return error!(EPERM);
    }
    // A write seal cannot be added while a shared mapping may write
    // (Linux's mapping_deny_writable).
    if add & F_SEAL_WRITE != 0 && cur & F_SEAL_WRITE == 0 && crate::mm::rmap::writably_mapped(key) {
        return error!(EBUSY);
    }
    m.insert(key, cur | add);
    Ok(0)
}

const MFD_CLOEXEC: u32 = 1;
const MFD_ALLOW_SEALING: u32 = 2;
const MFD_HUGETLB: u32 = 4;
const MFD_NOEXEC_SEAL: u32 = 8;
const MFD_EXEC: u32 = 0x10;

syscall_table! { pub fn memfd_table;
    MEMFD_CREATE => sys_memfd_create(name: UserAddr, flags: u32),
}

fn memfs() -> &'static (Arc<Mount>, Arc<TmpInode>) {
    static M: OnceLock<(Arc<Mount>, Arc<TmpInode>)> = OnceLock::new();
    M.get_or_init(|| {
        let root = TmpFs::new_root(TmpfsOptions::defaults(&crate::fs::tmpfs::physmem()));
        (Mount::new("tmpfs", root.clone(), None, false, true), root)
    })
}

fn sys_memfd_create(ctx: &mut SyscallContext<'_>, name: UserAddr, flags: u32) -> KResult<u64> {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC) != 0
        || flags & MFD_HUGETLB != 0
    {
        return error!(EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return error!(EINVAL);
    }
    // The name is at most 249 bytes (NAME_MAX minus "memfd:").
    let n = ctx.mm().read_cstring(name.0, 249).map_err(|e| {
        if e == crate::errno!(ENAMETOOLONG) {
            crate::errno!(EINVAL)
        } else {
            e
        }
    })?;
    if n.contains(&b'/') {
        return error!(EINVAL);
    }
    let (mnt, root) = memfs();
    // A unique entry, created and at once unlinked: only the open file
    // keeps the inode.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let tmp = format!(
        ".memfd.{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
    .into_bytes();
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o666
    } else {
        0o777
    };
    let (inode, ops) = root.create(&tmp, mode, O_RDWR)?;
    root.unlink(&tmp)?;
    // As Linux shows it in /proc/PID/fd and maps.
    let mut shown = b"/memfd:".to_vec();
    shown.extend_from_slice(&n);
    shown.extend_from_slice(b" (deleted)");
    let path = Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, &shown, inode),
    };
    let key = path.inode().key();
    seals().lock().unwrap_or_else(|p| p.into_inner()).insert(
        key,
        if flags & MFD_ALLOW_SEALING != 0 {
            0
        } else {
            F_SEAL_SEAL
        },
    );
    let file = OpenFile::new(path, Some(ops), O_RDWR);
    ctx.files()
        .alloc(file, flags & MFD_CLOEXEC != 0)
        .map(|fd| fd as u64)
}
