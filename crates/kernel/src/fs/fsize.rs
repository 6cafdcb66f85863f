//! RLIMIT_FSIZE: the largest file a process may write (Linux's
//! generic_write_check_limits and inode_newsize_ok).
//!
//! A write to a regular file is cut at the limit; one that starts at or
//! past it fails with EFBIG and raises SIGXFSZ in the writer. Growing a
//! file past the limit by truncate or fallocate does the same. Pipes,
//! sockets and devices are not limited.

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::types::FileType;
use crate::task::Task;

const RLIMIT_FSIZE: usize = 1;
const O_APPEND: u32 = 0o2000;

/// The writer's soft limit, None for RLIM_INFINITY.
fn limit(task: &Task) -> Option<u64> {
    let l = task.group.limit(RLIMIT_FSIZE)[0];
    (l != u64::MAX).then_some(l)
}

/// EFBIG, after raising SIGXFSZ in `task` (as Linux's send_sig without
/// info: SI_USER from the writer itself).
pub fn efbig<T>(task: &Task) -> KResult<T> {
    crate::signal::send_thread(
        task,
        crate::signal::Queued {
            signo: crate::signal::SIGXFSZ,
            code: crate::signal::SI_USER,
            a: task.tgid() as u64,
            b: 0,
            forced: false,
        },
    );
    error!(EFBIG)
}

/// Where a write to `f` lands: `off` (None: the file position), the end
/// of the file with O_APPEND.
pub fn write_pos(f: &OpenFile, off: Option<u64>) -> u64 {
    if f.flags() & O_APPEND != 0 {
        return f.size().unwrap_or(0);
    }
    off.unwrap_or_else(|| f.pos())
}

/// How many bytes `task` may write at `pos` of `f`: None when unlimited
/// (not a regular file, or no limit), else the room below the limit.
pub fn room(task: &Task, f: &OpenFile, pos: u64) -> Option<u64> {
    if f.file_type() != FileType::Regular {
        return None;
    }
    limit(task).map(|l| l.saturating_sub(pos))
}

/// A write of `len` bytes at `pos` of `f`, cut at the limit: the bytes
/// to write, or EFBIG (and SIGXFSZ) when none may be. An empty write is
/// never refused.
pub fn clamp_write(task: &Task, f: &OpenFile, pos: u64, len: usize) -> KResult<usize> {
    match room(task, f, pos) {
        _ if len == 0 => Ok(0),
        None => Ok(len),
        Some(0) => efbig(task),
        Some(r) => Ok((len as u64).min(r) as usize),
    }
}

/// Growing a regular file to `size` (truncate, fallocate): EFBIG and
/// SIGXFSZ past the limit. `cur` is the file's size now; shrinking is
/// always allowed.
pub fn check_grow(task: &Task, size: u64, cur: u64) -> KResult<()> {
    match limit(task) {
        Some(l) if size > cur && size > l => efbig(task),
        _ => Ok(()),
    }
}
