//! File handles: name_to_handle_at(2) and open_by_handle_at(2).
//!
//! A handle is `struct file_handle { u32 handle_bytes; i32 handle_type;
//! u8 f_handle[]; }` with at most MAX_HANDLE_SZ (128) bytes of
//! filesystem-specific data, made by [`Inode::encode_fh`] and turned back
//! into an inode by [`Inode::decode_fh`] on the filesystem of the mount
//! that `mount_fd` names:
//! - tmpfs: (generation 0, 64-bit inode number), type 1 as Linux's shmem;
//!   valid while the inode lives and has a name (ESTALE after deletion).
//! - ext2/3/4: (32-bit inode number, generation), FILEID_INO32_GEN (1) as
//!   Linux's; valid across remounts and reboots until the inode is freed.
//! - the overlay root: a handle names an entry of the overlay's own table
//!   (the object's identity and its names from the overlay's root; at most
//!   16384 entries, the oldest forgotten first); decoding walks those
//!   names again, so a handle goes stale when its object is removed or
//!   renamed (Linux's overlayfs with nfs_export follows renames).
//! - other filesystems (procfs, devfs, hostfs, ...): EOPNOTSUPP.
//!
//! open_by_handle_at needs CAP_DAC_READ_SEARCH (EPERM) and opens the
//! object with open(2)'s checks; the file it gives has no name of its own
//! (/proc/self/fd shows "/" for it).
//! AT_HANDLE_FID and AT_HANDLE_MNT_ID_UNIQUE are accepted as Linux 6.12;
//! with AT_HANDLE_FID a filesystem without handles of its own gives
//! Linux's generic FILEID_INO64_GEN (0x81: 64-bit inode number and a
//! 32-bit generation, 0 here), a handle that identifies but cannot be
//! opened ([`encode_fid`]; inotify and fanotify fdinfo show the same).

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::types::oflags::*;
use crate::fs::vfs::{Dentry, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::caps::Cap;

/// The largest handle.
pub const MAX_HANDLE_SZ: usize = 128;
/// handle_type of a handle that did not fit.
const FILEID_INVALID: i32 = 255;

const AT_FDCWD: i32 = -100;
const AT_HANDLE_MNT_ID_UNIQUE: i32 = 0x001;
const AT_HANDLE_FID: i32 = 0x200;
const AT_SYMLINK_FOLLOW: i32 = 0x400;
const AT_EMPTY_PATH: i32 = 0x1000;

syscall_table! { pub fn fhandle_table;
    NAME_TO_HANDLE_AT => sys_name_to_handle_at(dirfd: Fd, path: UserAddr, handle: UserAddr, mount_id: UserAddr, flags: i32),
    OPEN_BY_HANDLE_AT => sys_open_by_handle_at(mount_fd: Fd, handle: UserAddr, flags: u32),
}

fn sys_name_to_handle_at(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    handle: UserAddr,
    mount_id: UserAddr,
    flags: i32,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE) != 0 {
        return error!(EINVAL);
    }
    let p = super::syscalls::resolve(
        ctx,
        dirfd,
        path,
        flags & AT_SYMLINK_FOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    let (ty, fh) = if flags & AT_HANDLE_FID != 0 {
        encode_fid(p.inode().as_ref())?
    } else {
        p.inode().encode_fh()?
    };
    let mm = ctx.mm();
    let want: u32 = mm.read_val(handle.0)?;
    if want as usize > MAX_HANDLE_SZ {
        return error!(EINVAL);
    }
    let fits = fh.len() <= want as usize;
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&(fh.len() as u32).to_ne_bytes());
    hdr[4..].copy_from_slice(&(if fits { ty } else { FILEID_INVALID }).to_ne_bytes());
    if flags & AT_HANDLE_MNT_ID_UNIQUE != 0 {
        mm.write_val(mount_id.0, &p.mnt.id)?;
    } else {
        mm.write_val(mount_id.0, &(p.mnt.id as i32))?;
    }
    mm.write_bytes(handle.0, &hdr)?;
    if !fits {
        return error!(EOVERFLOW);
    }
    mm.write_bytes(handle.0 + 8, &fh)?;
    Ok(0)
}

/// Linux's FILEID_INO64_GEN.
const FILEID_INO64_GEN: i32 = 0x81;

/// A handle that identifies `inode` (Linux's exportfs_encode_fid): the
/// filesystem's own, else FILEID_INO64_GEN of its inode number.
pub fn encode_fid(inode: &dyn crate::fs::vfs::Inode) -> KResult<(i32, Vec<u8>)> {
    match inode.encode_fh() {
        Err(crate::errno::Errno::EOPNOTSUPP) => {
            let ino = inode.stat().map(|st| st.ino).unwrap_or(inode.key().1);
            let mut fh = ino.to_le_bytes().to_vec();
            fh.extend_from_slice(&0u32.to_le_bytes());
            Ok((FILEID_INO64_GEN, fh))
        }
        r => r,
    }
}

fn sys_open_by_handle_at(
    ctx: &mut SyscallContext<'_>,
    mount_fd: Fd,
    handle: UserAddr,
    flags: u32,
) -> KResult<u64> {
    let fs = ctx.fs();
    let anchor = if mount_fd.0 == AT_FDCWD {
        fs.cwd()
    } else {
        super::fd_get(ctx.task, mount_fd.0)?.path.clone()
    };
    if !ctx.task.privileged(Cap::DacReadSearch) {
        return error!(EPERM);
    }
    let mm = ctx.mm();
    let mut hdr = [0u8; 8];
    mm.read_bytes(handle.0, &mut hdr)?;
    let bytes = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
    let ty = i32::from_ne_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    if bytes == 0 || bytes > MAX_HANDLE_SZ || ty < 0 {
        return error!(EINVAL);
    }
    let mut fh = vec![0u8; bytes];
    mm.read_bytes(handle.0 + 8, &mut fh)?;
    let inode = anchor.inode().decode_fh(ty, &fh)?;
    let p = Path {
        mnt: anchor.mnt.clone(),
        dentry: Arc::new(Dentry {
            name: b"/".to_vec(),
            parent: None,
            inode,
        }),
    };
    let flags = flags & !(O_CREAT | O_EXCL);
    let file = if flags & O_PATH != 0 {
        if flags & O_DIRECTORY != 0
            && p.inode().file_type() != crate::fs::types::FileType::Directory
        {
            return error!(ENOTDIR);
        }
        crate::fs::file::OpenFile::new(p, None, O_PATH | (flags & O_CLOEXEC))
    } else {
        let w = super::walker_for(&fs, ctx.task);
        super::open_resolved(&w, p, flags)?
    };
    let fd = ctx.files().alloc(file, flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}
