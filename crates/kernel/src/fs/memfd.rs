//! memfd_create: an anonymous file on an internal tmpfs (pages in
//! physmem, so it can be mapped shared and passed between processes).
//! Sealing (F_ADD_SEALS) is not supported: such files report F_SEAL_SEAL.

use std::sync::{Arc, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::tmpfs::{TmpFs, TmpInode, TmpfsOptions};
use crate::fs::types::oflags::O_RDWR;
use crate::fs::vfs::{Dentry, Inode, Mount, Path};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

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
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 || flags & MFD_HUGETLB != 0 {
        return error!(EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return error!(EINVAL);
    }
    // The name is at most 249 bytes (NAME_MAX minus "memfd:").
    let n = ctx.mm().read_cstring(name.0, 249).map_err(|e| if e == crate::errno!(ENAMETOOLONG) { crate::errno!(EINVAL) } else { e })?;
    if n.contains(&b'/') {
        return error!(EINVAL);
    }
    let (mnt, root) = memfs();
    // A unique entry, created and at once unlinked: only the open file
    // keeps the inode.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let tmp = format!(".memfd.{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).into_bytes();
    let mode = if flags & MFD_NOEXEC_SEAL != 0 { 0o666 } else { 0o777 };
    let (inode, ops) = root.create(&tmp, mode, O_RDWR)?;
    root.unlink(&tmp)?;
    // As Linux shows it in /proc/PID/fd and maps.
    let mut shown = b"/memfd:".to_vec();
    shown.extend_from_slice(&n);
    shown.extend_from_slice(b" (deleted)");
    let path = Path { mnt: mnt.clone(), dentry: Dentry::child(&mnt.root, &shown, inode) };
    let file = OpenFile::new(path, Some(ops), O_RDWR);
    ctx.files().alloc(file, flags & MFD_CLOEXEC != 0).map(|fd| fd as u64)
}
