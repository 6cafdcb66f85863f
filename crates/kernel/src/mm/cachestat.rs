//! cachestat(2) (Linux 6.5): how many pages of a file range are in the
//! page cache, as ruml's memory knows them. A memory-backed file (tmpfs,
//! memfd, the overlay's upper) counts the pages it holds that hold data
//! (a frame allocated when a shared mapping's fault filled the pages
//! around it, never written, does not count, as for mincore); another
//! mmappable file (hostfs, ext4) the pages of its mapped page cache, which
//! read(2) and write(2) do not fill in ruml (they go to the file), so a
//! file only read or written counts none. ruml writes through and never
//! evicts: nr_dirty, nr_writeback, nr_evicted and nr_recently_evicted are
//! 0 (tmpfs's are on Linux too, which keeps no dirty tag for shmem).
//! Files with no pages (pipes, devices, sockets) give zeros.
//!
//! Order of checks, as Linux: the descriptor (EBADF), the range (EFAULT),
//! the right to ask (EPERM unless the file is open for writing, the
//! caller owns it or has CAP_FOWNER, or could open it for writing), flags
//! (EINVAL), then the result (EFAULT).

use crate::abi::Pod;
use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

use super::PAGE;

syscall_table! { pub fn cachestat_table;
    CACHESTAT => sys_cachestat(fd: Fd, range: UserAddr, cstat: UserAddr, flags: u32),
}

/// struct cachestat_range.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CachestatRange {
    off: u64,
    len: u64,
}
// SAFETY: plain integers, no padding.
unsafe impl Pod for CachestatRange {}

/// struct cachestat.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}
// SAFETY: plain integers, no padding.
unsafe impl Pod for Cachestat {}

fn sys_cachestat(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    range: UserAddr,
    cstat: UserAddr,
    flags: u32,
) -> KResult<u64> {
    let f = ctx.files().get(fd.0)?;
    let r: CachestatRange = ctx.mm().read_val(range.0)?;
    if !f.can_write() {
        let caller = crate::fs::vfs::Caller::of(ctx.task);
        if crate::fs::perm::must_own(&caller, &f.path).is_err()
            && crate::fs::perm::check(&caller, &f.path, crate::fs::perm::MAY_WRITE).is_err()
        {
            return error!(EPERM);
        }
    }
    if flags != 0 {
        return error!(EINVAL);
    }
    let first = r.off / PAGE;
    let last = if r.len == 0 {
        u64::MAX
    } else {
        r.off.saturating_add(r.len - 1) / PAGE
    };
    let nr_cache = match f.ops() {
        // A frame allocated for the file (a shared mapping's fault fills
        // the pages around it) but never written holds no data: it does
        // not count, as for mincore.
        Ok(ops) => match ops.frames_in(first, last) {
            Some(frames) => crate::kernel()
                .phys
                .resident(&frames)
                .into_iter()
                .filter(|&r| r)
                .count() as u64,
            None => match ops.mmap_key() {
                Ok(key) => crate::kernel().page_cache.count(key, first, last),
                Err(_) => 0,
            },
        },
        Err(_) => 0,
    };
    let cs = Cachestat {
        nr_cache,
        ..Default::default()
    };
    ctx.mm().write_val(cstat.0, &cs)?;
    Ok(0)
}
