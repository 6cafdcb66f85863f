//! Shared anonymous memory as Linux keeps it: each MAP_SHARED|MAP_ANONYMOUS
//! area (and each MAP_SHARED mapping of /dev/zero) is a mapping of its own
//! unlinked file on an internal tmpfs, Linux's `shmem_zero_setup`. The
//! file is as large as the area was at mmap; its pages are frames of
//! physmem allocated on first touch and freed with the file.
//!
//! So every address space that shares the area (fork's children) maps
//! the same file's pages, whichever touches a page first; remap_file_pages
//! maps the file again at another offset (mm::remove); MADV_REMOVE
//! punches a hole in it; a page dropped by MADV_DONTNEED comes back with
//! its data; an area grown by mremap past the file's end gives SIGBUS
//! there; /proc/PID/maps names it "/dev/zero (deleted)" with its offset.
//! Its areas are filled as anonymous ones are (mapped ahead up to 16 MiB,
//! fault windows of 64 KiB to 2 MiB beyond), each page the object's own.
//!
//! Lifetime: the open file is held by the areas that map it (their
//! `Backing::File`); when the last goes, the file and its pages go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::errno::KResult;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::tmpfs::{TmpFs, TmpInode, TmpfsOptions};
use crate::fs::types::oflags::O_RDWR;
use crate::fs::vfs::{Dentry, Inode, Mount, Path};

/// The name /proc/PID/maps shows, as Linux's.
const NAME: &[u8] = b"/dev/zero (deleted)";

/// The internal tmpfs of shared anonymous memory. Unlimited, as Linux's
/// shm_mnt: the guest's memory (mem=) bounds it.
fn shmem_fs() -> &'static (Arc<Mount>, Arc<TmpInode>) {
    static M: OnceLock<(Arc<Mount>, Arc<TmpInode>)> = OnceLock::new();
    M.get_or_init(|| {
        let mut opts = TmpfsOptions::defaults(&crate::fs::tmpfs::physmem());
        opts.max_pages = u64::MAX;
        opts.max_inodes = u64::MAX;
        let root = TmpFs::new_root(opts);
        (Mount::new("tmpfs", root.clone(), None, false, true), root)
    })
}

/// A new shared anonymous object of `len` bytes (page aligned), opened
/// read-write: the file a MAP_SHARED|MAP_ANONYMOUS area maps at offset 0.
pub fn new_object(len: u64) -> KResult<FileRef> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let (mnt, root) = shmem_fs();
    let name = format!(".zero.{}", SERIAL.fetch_add(1, Ordering::Relaxed)).into_bytes();
    let (inode, ops) = root.create(&name, 0o600, O_RDWR)?;
    root.unlink(&name)?;
    ops.truncate(len).map_err(|_| crate::errno!(ENOMEM))?;
    let path = Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, NAME, inode),
    };
    Ok(OpenFile::new(path, Some(ops), O_RDWR))
}

/// Whether `file` is a shared anonymous object made by [`new_object`]:
/// its areas are mapped ahead and filled around faults as anonymous
/// memory is (mm's `fault_window`), not a file chunk at a time.
pub fn is_object(file: &FileRef) -> bool {
    Arc::ptr_eq(&file.path.mnt, &shmem_fs().0)
}
