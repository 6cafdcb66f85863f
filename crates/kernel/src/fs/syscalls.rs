//! The file system calls. Every guest pointer goes through the memory
//! manager (EFAULT), every flag word is validated as Linux does, and no
//! guest input can panic the kernel.

use std::sync::Arc;

use crate::errno::{Errno, KResult};
use crate::fs::file::{FileRef, MAX_RW_COUNT};
use crate::fs::namei::{Walker, PATH_MAX};
use crate::fs::poll::{sys_poll, sys_ppoll, sys_pselect6, sys_select};
use crate::fs::types::{atflags::*, oflags::*, *};
use crate::fs::vfs::{d_path, Path, SetAttr, SetTime};
use crate::fs::{open_at, walker_for, FsContext};
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::{errno, error, syscall_table};

syscall_table! { pub fn fs_table;
    READ => sys_read(fd: Fd, buf: UserAddr, count: usize),
    WRITE => sys_write(fd: Fd, buf: UserAddr, count: usize),
    PREAD64 => sys_pread64(fd: Fd, buf: UserAddr, count: usize, off: i64),
    PWRITE64 => sys_pwrite64(fd: Fd, buf: UserAddr, count: usize, off: i64),
    READV => sys_readv(fd: Fd, iov: UserAddr, iovcnt: i32),
    WRITEV => sys_writev(fd: Fd, iov: UserAddr, iovcnt: i32),
    PREADV => sys_preadv(fd: Fd, iov: UserAddr, iovcnt: i32, pos_l: u64, pos_h: u64),
    PWRITEV => sys_pwritev(fd: Fd, iov: UserAddr, iovcnt: i32, pos_l: u64, pos_h: u64),
    PREADV2 => sys_preadv2(fd: Fd, iov: UserAddr, iovcnt: i32, pos_l: u64, pos_h: u64, flags: u32),
    PWRITEV2 => sys_pwritev2(fd: Fd, iov: UserAddr, iovcnt: i32, pos_l: u64, pos_h: u64, flags: u32),
    LSEEK => sys_lseek(fd: Fd, off: i64, whence: u32),
    OPEN => sys_open(path: UserAddr, flags: u32, mode: u32),
    OPENAT => sys_openat(dirfd: Fd, path: UserAddr, flags: u32, mode: u32),
    CREAT => sys_creat(path: UserAddr, mode: u32),
    CLOSE => sys_close(fd: Fd),
    CLOSE_RANGE => sys_close_range(first: u32, last: u32, flags: u32),
    DUP => sys_dup(fd: Fd),
    DUP2 => sys_dup2(old: Fd, new: Fd),
    DUP3 => sys_dup3(old: Fd, new: Fd, flags: u32),
    FCNTL => sys_fcntl(fd: Fd, cmd: i32, arg: u64),
    IOCTL => sys_ioctl(fd: Fd, cmd: u32, arg: u64),
    STAT => sys_stat(path: UserAddr, buf: UserAddr),
    LSTAT => sys_lstat(path: UserAddr, buf: UserAddr),
    FSTAT => sys_fstat(fd: Fd, buf: UserAddr),
    NEWFSTATAT => sys_newfstatat(dirfd: Fd, path: UserAddr, buf: UserAddr, flags: u32),
    STATX => sys_statx(dirfd: Fd, path: UserAddr, flags: u32, mask: u32, buf: UserAddr),
    GETDENTS64 => sys_getdents64(fd: Fd, buf: UserAddr, count: u32),
    GETDENTS => sys_getdents(fd: Fd, buf: UserAddr, count: u32),
    READLINK => sys_readlink(path: UserAddr, buf: UserAddr, size: i32),
    READLINKAT => sys_readlinkat(dirfd: Fd, path: UserAddr, buf: UserAddr, size: i32),
    ACCESS => sys_access(path: UserAddr, mode: u32),
    FACCESSAT => sys_faccessat(dirfd: Fd, path: UserAddr, mode: u32),
    FACCESSAT2 => sys_faccessat2(dirfd: Fd, path: UserAddr, mode: u32, flags: u32),
    GETCWD => sys_getcwd(buf: UserAddr, size: usize),
    CHDIR => sys_chdir(path: UserAddr),
    FCHDIR => sys_fchdir(fd: Fd),
    CHROOT => sys_chroot(path: UserAddr),
    PIPE => sys_pipe(fds: UserAddr),
    PIPE2 => sys_pipe2(fds: UserAddr, flags: u32),
    STATFS => sys_statfs(path: UserAddr, buf: UserAddr),
    FSTATFS => sys_fstatfs(fd: Fd, buf: UserAddr),
    UMASK => sys_umask(mask: u32),
    FSYNC => sys_fsync(fd: Fd),
    FDATASYNC => sys_fdatasync(fd: Fd),
    SYNC => sys_sync(),
    SYNCFS => sys_syncfs(fd: Fd),
    FTRUNCATE => sys_ftruncate(fd: Fd, len: i64),
    TRUNCATE => sys_truncate(path: UserAddr, len: i64),
    MKDIR => sys_mkdir(path: UserAddr, mode: u32),
    MKDIRAT => sys_mkdirat(dirfd: Fd, path: UserAddr, mode: u32),
    RMDIR => sys_rmdir(path: UserAddr),
    UNLINK => sys_unlink(path: UserAddr),
    UNLINKAT => sys_unlinkat(dirfd: Fd, path: UserAddr, flags: u32),
    SYMLINK => sys_symlink(target: UserAddr, path: UserAddr),
    SYMLINKAT => sys_symlinkat(target: UserAddr, dirfd: Fd, path: UserAddr),
    RENAME => sys_rename(old: UserAddr, new: UserAddr),
    RENAMEAT => sys_renameat(olddir: Fd, old: UserAddr, newdir: Fd, new: UserAddr),
    RENAMEAT2 => sys_renameat2(olddir: Fd, old: UserAddr, newdir: Fd, new: UserAddr, flags: u32),
    LINK => sys_link(old: UserAddr, new: UserAddr),
    LINKAT => sys_linkat(olddir: Fd, old: UserAddr, newdir: Fd, new: UserAddr, flags: u32),
    MKNOD => sys_mknod(path: UserAddr, mode: u32, dev: u64),
    MKNODAT => sys_mknodat(dirfd: Fd, path: UserAddr, mode: u32, dev: u64),
    CHMOD => sys_chmod(path: UserAddr, mode: u32),
    FCHMOD => sys_fchmod(fd: Fd, mode: u32),
    FCHMODAT => sys_fchmodat(dirfd: Fd, path: UserAddr, mode: u32),
    CHOWN => sys_chown(path: UserAddr, uid: u32, gid: u32),
    LCHOWN => sys_lchown(path: UserAddr, uid: u32, gid: u32),
    FCHOWN => sys_fchown(fd: Fd, uid: u32, gid: u32),
    FCHOWNAT => sys_fchownat(dirfd: Fd, path: UserAddr, uid: u32, gid: u32, flags: u32),
    UTIMENSAT => sys_utimensat(dirfd: Fd, path: UserAddr, times: UserAddr, flags: u32),
    UTIME => sys_utime(path: UserAddr, times: UserAddr),
    UTIMES => sys_utimes(path: UserAddr, times: UserAddr),
    FUTIMESAT => sys_futimesat(dirfd: Fd, path: UserAddr, times: UserAddr),
    FALLOCATE => sys_fallocate(fd: Fd, mode: u32, off: i64, len: i64),
    MOUNT => sys_mount(source: UserAddr, target: UserAddr, fstype: UserAddr, flags: u64, data: UserAddr),
    UMOUNT2 => sys_umount2(target: UserAddr, flags: u32),
    POLL => sys_poll(ufds: UserAddr, nfds: u32, timeout: i32),
    PPOLL => sys_ppoll(ufds: UserAddr, nfds: u32, tsp: UserAddr, mask: UserAddr, masksize: usize),
    SELECT => sys_select(nfds: i32, inp: UserAddr, outp: UserAddr, exp: UserAddr, tvp: UserAddr),
    PSELECT6 => sys_pselect6(nfds: i32, inp: UserAddr, outp: UserAddr, exp: UserAddr, tsp: UserAddr, sig: UserAddr),
}

// ---------------------------------------------------------------------------
// Helpers

/// Bytes moved per step of a large read or write.
const CHUNK: usize = 256 * 1024;
/// UIO_MAXIOV.
const IOV_MAX: i32 = 1024;

pub(crate) fn read_path(ctx: &SyscallContext<'_>, addr: UserAddr) -> KResult<Vec<u8>> {
    ctx.mm().read_cstring(addr.0, PATH_MAX)
}

/// Where a relative path starts for `dirfd`: cwd or the directory it names.
pub(crate) fn start_dir(
    ctx: &SyscallContext<'_>,
    fs: &FsContext,
    dirfd: Fd,
    path: &[u8],
) -> KResult<Path> {
    if path.first() == Some(&b'/') || dirfd.0 == AT_FDCWD {
        return Ok(fs.cwd());
    }
    let f = ctx.files().get(dirfd.0)?;
    if !path.is_empty() && f.file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    Ok(f.path.clone())
}

/// Resolves (dirfd, path); `empty_ok` is AT_EMPTY_PATH.
pub(crate) fn resolve(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    follow: bool,
    empty_ok: bool,
) -> KResult<Path> {
    let fs = ctx.fs();
    if empty_ok && path.is_null() {
        return start_dir(ctx, &fs, dirfd, b"");
    }
    let p = read_path(ctx, path)?;
    if p.is_empty() {
        if empty_ok {
            return start_dir(ctx, &fs, dirfd, b"");
        }
        return error!(ENOENT);
    }
    let start = start_dir(ctx, &fs, dirfd, &p)?;
    let w = walker_for(&fs, ctx.task);
    w.walk(&start, &p, follow)
}

/// Resolves the parent of (dirfd, path): (dir, last name, trailing slash).
fn resolve_parent(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
) -> KResult<(Path, Vec<u8>, bool)> {
    let fs = ctx.fs();
    let p = read_path(ctx, path)?;
    if p.is_empty() {
        return error!(ENOENT);
    }
    let start = start_dir(ctx, &fs, dirfd, &p)?;
    let w = walker_for(&fs, ctx.task);
    w.walk_parent(&start, &p)
}

fn get_file(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<FileRef> {
    ctx.files().get(fd.0)
}

/// A file usable for I/O (not O_PATH).
fn get_io_file(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<FileRef> {
    let f = get_file(ctx, fd)?;
    if f.is_path_only() {
        return error!(EBADF);
    }
    Ok(f)
}

/// What a write's EPIPE means for the caller.
fn write_result(ctx: &SyscallContext<'_>, r: KResult<usize>) -> KResult<u64> {
    match r {
        Err(Errno::EPIPE) => {
            crate::signal::send_sigpipe(ctx.task);
            Err(Errno::EPIPE)
        }
        other => other.map(|n| n as u64),
    }
}

/// Guest segments of a read or write.
type Segs = Vec<(u64, usize)>;

/// The `n` entries (base, length) of a guest `struct iovec` array at
/// `iov`, as they are (EFAULT if the array is not readable); callers
/// check the count and the lengths as their call does.
pub(crate) fn iovec_entries(mm: &crate::mm::Mm, iov: u64, n: usize) -> KResult<Vec<(u64, u64)>> {
    let mut raw = vec![0u8; n * 16];
    mm.read_bytes(iov, &mut raw)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or_default());
            (word(&c[0..8]), word(&c[8..16]))
        })
        .collect())
}

pub(crate) fn read_iovecs(ctx: &SyscallContext<'_>, iov: UserAddr, iovcnt: i32) -> KResult<Segs> {
    if !(0..=IOV_MAX).contains(&iovcnt) {
        return error!(EINVAL);
    }
    let entries = iovec_entries(&ctx.mm(), iov.0, iovcnt as usize)?;
    let mut segs = Vec::with_capacity(entries.len());
    let mut total: u64 = 0;
    for (base, len) in entries {
        if len > isize::MAX as u64 {
            return error!(EINVAL);
        }
        total = total
            .checked_add(len)
            .filter(|&t| t <= isize::MAX as u64)
            .ok_or(errno!(EINVAL))?;
        // Linux truncates the total to MAX_RW_COUNT.
        let room = (MAX_RW_COUNT as u64).saturating_sub(total - len);
        let len = len.min(room) as usize;
        if len > 0 {
            segs.push((base, len));
        }
    }
    Ok(segs)
}

/// Copies `data` into the segments starting `skip` bytes in.
pub(crate) fn scatter(
    mm: &crate::mm::Mm,
    segs: &[(u64, usize)],
    mut skip: usize,
    mut data: &[u8],
) -> KResult<()> {
    for &(base, len) in segs {
        if data.is_empty() {
            break;
        }
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = (len - skip).min(data.len());
        mm.write_bytes(base + skip as u64, &data[..n])?;
        data = &data[n..];
        skip = 0;
    }
    Ok(())
}

/// Copies up to `buf.len()` bytes from the segments starting `skip` in.
pub(crate) fn gather(
    mm: &crate::mm::Mm,
    segs: &[(u64, usize)],
    mut skip: usize,
    buf: &mut [u8],
) -> KResult<()> {
    let mut out = 0usize;
    for &(base, len) in segs {
        if out == buf.len() {
            break;
        }
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = (len - skip).min(buf.len() - out);
        mm.read_bytes(base + skip as u64, &mut buf[out..out + n])?;
        out += n;
        skip = 0;
    }
    Ok(())
}

/// A descriptor fanotify opened for its reader: its accesses make no
/// events (fs/fanotify.rs).
fn no_notify(f: &FileRef) -> bool {
    f.flags() & crate::fs::fanotify::FMODE_NONOTIFY != 0
}

/// The body of read/pread/readv/preadv: `off` None = the file position.
pub(crate) fn do_read(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    segs: &[(u64, usize)],
    off: Option<u64>,
) -> KResult<u64> {
    let r = read_body(ctx, f, segs, off);
    if matches!(r, Ok(n) if n > 0) && !f.path.mnt.internal && !no_notify(f) {
        crate::fs::inotify::notify(&f.path, crate::fs::inotify::IN_ACCESS);
    }
    r
}

fn read_body(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    segs: &[(u64, usize)],
    off: Option<u64>,
) -> KResult<u64> {
    if !f.can_read() {
        return error!(EBADF);
    }
    if f.file_type() == FileType::Directory {
        return error!(EISDIR);
    }
    let mut total: usize = segs.iter().map(|s| s.1).sum::<usize>().min(MAX_RW_COUNT);
    let stream = !f.ops()?.seekable();
    if off.is_some() && stream {
        return error!(ESPIPE);
    }
    let mm = ctx.mm();
    // Read no more than the buffers can take, so that a bad buffer
    // neither consumes data nor moves the file position.
    let mut ok = 0usize;
    for &(a, l) in segs {
        let n = mm.accessible_len(a, l, true);
        ok += n;
        if n < l {
            break;
        }
    }
    if ok == 0 && total > 0 {
        // As Linux, a regular file read at or past its end returns 0
        // before it looks at the buffer.
        if !stream && f.file_type() == FileType::Regular {
            let at = off.unwrap_or_else(|| f.pos());
            if f.size().is_ok_and(|size| at >= size) {
                return Ok(0);
            }
        }
        return error!(EFAULT);
    }
    total = total.min(ok);
    if f.ops()?.direct_io() {
        return read_direct(&mm, f, segs, off, total);
    }
    let mut done = 0usize;
    loop {
        let want = (total - done).min(CHUNK);
        if want == 0 && done > 0 {
            break;
        }
        let mut buf = vec![0u8; want];
        let r = match off {
            Some(o) => f.read_at(o + done as u64, &mut buf),
            None => f.read_as(&mut buf, Some(ctx.task)),
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if let Err(e) = scatter(&mm, segs, done, &buf[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n;
        if n < want || stream || want == 0 {
            break;
        }
    }
    Ok(done as u64)
}

/// do_read for files that copy straight into guest frames (tmpfs): no
/// kernel buffer, one copy.
fn read_direct(
    mm: &crate::mm::Mm,
    f: &FileRef,
    segs: &[(u64, usize)],
    off: Option<u64>,
    total: usize,
) -> KResult<u64> {
    let mut done = 0usize;
    loop {
        let want = (total - done).min(CHUNK);
        if want == 0 && done > 0 {
            break;
        }
        let dst = match mm.pin_user(segs, done, want, true) {
            Ok(d) => d,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let n = match f.read_frames(&dst, off.map(|o| o + done as u64)) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if n < want || want == 0 {
            break;
        }
    }
    Ok(done as u64)
}

/// The body of write/pwrite/writev/pwritev.
pub(crate) fn do_write(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    segs: &[(u64, usize)],
    off: Option<u64>,
) -> KResult<u64> {
    if !f.can_write() {
        return error!(EBADF);
    }
    let total: usize = segs.iter().map(|s| s.1).sum::<usize>().min(MAX_RW_COUNT);
    if off.is_some() && !f.ops()?.seekable() {
        return error!(ESPIPE);
    }
    let mm = ctx.mm();
    // As Linux, a buffer that runs into an inaccessible page gives a
    // regular file a short write of what precedes it (EFAULT if nothing
    // does); streams (a pipe's atomic writes) take all or nothing.
    let mut total = total;
    if f.ops()?.seekable() && f.file_type() == FileType::Regular {
        let mut ok = 0usize;
        for &(a, l) in segs {
            let n = mm.accessible_len(a, l, false);
            ok += n;
            if n < l {
                break;
            }
        }
        if ok == 0 && total > 0 {
            return error!(EFAULT);
        }
        if total > 0 {
            crate::fs::perm::remove_privs(ctx.task, f.path.inode());
        }
        total = total.min(ok);
    }
    if f.file_type() == FileType::Regular {
        let at = crate::fs::fsize::write_pos(f, off);
        total = crate::fs::fsize::clamp_write(ctx.task, f, at, total)?;
    }
    // tmpfs copies straight from the guest's frames.
    let direct = f.ops()?.direct_io();
    let mut done = 0usize;
    loop {
        let want = (total - done).min(CHUNK);
        if want == 0 && done > 0 {
            break;
        }
        let r = if direct {
            match mm.pin_user(segs, done, want, false) {
                Ok(src) => f.write_frames(&src, off.map(|o| o + done as u64)),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        } else {
            let mut buf = vec![0u8; want];
            if let Err(e) = gather(&mm, segs, done, &mut buf) {
                if done == 0 {
                    return Err(e);
                }
                break;
            }
            match off {
                Some(o) => f.write_at(o + done as u64, &buf),
                None => f.write_as(&buf, Some(ctx.task)),
            }
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done == 0 => return write_result(ctx, Err(e)),
            Err(_) => break,
        };
        done += n;
        if n < want || want == 0 {
            break;
        }
    }
    if done > 0 && !f.path.mnt.internal && !no_notify(f) {
        crate::fs::inotify::notify(&f.path, crate::fs::inotify::IN_MODIFY);
    }
    Ok(done as u64)
}

fn pos_from(pos_l: u64, pos_h: u64) -> i64 {
    // x86_64 passes the whole offset in pos_l; pos_h is ignored, as Linux.
    let _ = pos_h;
    pos_l as i64
}

// ---------------------------------------------------------------------------
// read / write

fn sys_read(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr, count: usize) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    do_read(ctx, &f, &[(buf.0, count.min(MAX_RW_COUNT))], None)
}

fn sys_write(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr, count: usize) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    do_write(ctx, &f, &[(buf.0, count.min(MAX_RW_COUNT))], None)
}

fn sys_pread64(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    count: usize,
    off: i64,
) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    if off < 0 {
        return error!(EINVAL);
    }
    do_read(
        ctx,
        &f,
        &[(buf.0, count.min(MAX_RW_COUNT))],
        Some(off as u64),
    )
}

fn sys_pwrite64(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    count: usize,
    off: i64,
) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    if off < 0 {
        return error!(EINVAL);
    }
    do_write(
        ctx,
        &f,
        &[(buf.0, count.min(MAX_RW_COUNT))],
        Some(off as u64),
    )
}

fn sys_readv(ctx: &mut SyscallContext<'_>, fd: Fd, iov: UserAddr, iovcnt: i32) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    do_read(ctx, &f, &segs, None)
}

fn sys_writev(ctx: &mut SyscallContext<'_>, fd: Fd, iov: UserAddr, iovcnt: i32) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    do_write(ctx, &f, &segs, None)
}

fn sys_preadv(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    iov: UserAddr,
    iovcnt: i32,
    pos_l: u64,
    pos_h: u64,
) -> KResult<u64> {
    let off = pos_from(pos_l, pos_h);
    let f = get_io_file(ctx, fd)?;
    if off < 0 {
        return error!(EINVAL);
    }
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    do_read(ctx, &f, &segs, Some(off as u64))
}

fn sys_pwritev(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    iov: UserAddr,
    iovcnt: i32,
    pos_l: u64,
    pos_h: u64,
) -> KResult<u64> {
    let off = pos_from(pos_l, pos_h);
    let f = get_io_file(ctx, fd)?;
    if off < 0 {
        return error!(EINVAL);
    }
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    do_write(ctx, &f, &segs, Some(off as u64))
}

/// RWF_* flags preadv2/pwritev2 accept: HIPRI, DSYNC, SYNC, NOWAIT, APPEND,
/// NOAPPEND, ATOMIC, DONTCACHE. Only HIPRI/DSYNC/SYNC are meaningful here
/// (no-ops on our files); the rest give EOPNOTSUPP.
const RWF_SUPPORTED: u32 = 0x1 | 0x2 | 0x4;

fn sys_preadv2(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    iov: UserAddr,
    iovcnt: i32,
    pos_l: u64,
    pos_h: u64,
    flags: u32,
) -> KResult<u64> {
    if flags & !RWF_SUPPORTED != 0 {
        return error!(EOPNOTSUPP);
    }
    let off = pos_from(pos_l, pos_h);
    let f = get_io_file(ctx, fd)?;
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    match off {
        -1 => do_read(ctx, &f, &segs, None),
        o if o < 0 => error!(EINVAL),
        o => do_read(ctx, &f, &segs, Some(o as u64)),
    }
}

fn sys_pwritev2(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    iov: UserAddr,
    iovcnt: i32,
    pos_l: u64,
    pos_h: u64,
    flags: u32,
) -> KResult<u64> {
    if flags & !RWF_SUPPORTED != 0 {
        return error!(EOPNOTSUPP);
    }
    let off = pos_from(pos_l, pos_h);
    let f = get_io_file(ctx, fd)?;
    let segs = read_iovecs(ctx, iov, iovcnt)?;
    match off {
        -1 => do_write(ctx, &f, &segs, None),
        o if o < 0 => error!(EINVAL),
        o => do_write(ctx, &f, &segs, Some(o as u64)),
    }
}

fn sys_lseek(ctx: &mut SyscallContext<'_>, fd: Fd, off: i64, whence: u32) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    f.seek(off, whence)
}

// ---------------------------------------------------------------------------
// open / close / dup

fn do_openat(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    flags: u32,
    mode: u32,
) -> KResult<u64> {
    let p = read_path(ctx, path)?;
    let fs = ctx.fs();
    if p.is_empty() {
        return error!(ENOENT);
    }
    let start = start_dir(ctx, &fs, dirfd, &p)?;
    let w = walker_for(&fs, ctx.task);
    let file = open_at(&w, &fs, &start, &p, flags, mode)?;
    crate::fs::inotify::notify(&file.path, crate::fs::inotify::IN_OPEN);
    let fd = ctx.files().alloc(file, flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

fn sys_open(ctx: &mut SyscallContext<'_>, path: UserAddr, flags: u32, mode: u32) -> KResult<u64> {
    do_openat(ctx, Fd(AT_FDCWD), path, flags, mode)
}

fn sys_openat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    flags: u32,
    mode: u32,
) -> KResult<u64> {
    do_openat(ctx, dirfd, path, flags, mode)
}

fn sys_creat(ctx: &mut SyscallContext<'_>, path: UserAddr, mode: u32) -> KResult<u64> {
    do_openat(ctx, Fd(AT_FDCWD), path, O_CREAT | O_WRONLY | O_TRUNC, mode)
}

fn sys_close(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    let f = ctx.files().get(fd.0)?;
    ctx.files().close(fd.0)?;
    crate::fs::locks::on_close(ctx.task.tgid(), &f);
    // A message queue's notification goes with its process's close (ipc/).
    crate::ipc::mqueue::on_close(ctx.task.tgid(), &f);
    // IN_CLOSE_* come when the last reference goes (OpenFile's drop).
    Ok(0)
}

const CLOSE_RANGE_UNSHARE: u32 = 2;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

fn sys_close_range(
    ctx: &mut SyscallContext<'_>,
    first: u32,
    last: u32,
    flags: u32,
) -> KResult<u64> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return error!(EINVAL);
    }
    // TODO(task): CLOSE_RANGE_UNSHARE should unshare a table shared with
    // other threads first; until the task module can swap tables, the
    // shared table is changed.
    ctx.files()
        .close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

fn sys_dup(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    let files = ctx.files();
    let f = files.get(fd.0)?;
    Ok(files.alloc(f, false)? as u64)
}

fn sys_dup2(ctx: &mut SyscallContext<'_>, old: Fd, new: Fd) -> KResult<u64> {
    let files = ctx.files();
    let f = files.get(old.0)?;
    if old.0 == new.0 {
        return Ok(new.0 as u64);
    }
    files.install_at(new.0, f, false)?;
    Ok(new.0 as u64)
}

fn sys_dup3(ctx: &mut SyscallContext<'_>, old: Fd, new: Fd, flags: u32) -> KResult<u64> {
    if flags & !O_CLOEXEC != 0 {
        return error!(EINVAL);
    }
    if old.0 == new.0 {
        return error!(EINVAL);
    }
    let files = ctx.files();
    let f = files.get(old.0)?;
    files.install_at(new.0, f, flags & O_CLOEXEC != 0)?;
    Ok(new.0 as u64)
}

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_DUPFD_CLOEXEC: i32 = 1030;
const F_GETPIPE_SZ: i32 = 1032;
const FD_CLOEXEC: u64 = 1;

const F_SETPIPE_SZ: i32 = 1031;

fn sys_fcntl(ctx: &mut SyscallContext<'_>, fd: Fd, cmd: i32, arg: u64) -> KResult<u64> {
    let files = ctx.files();
    let f = files.get(fd.0)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = arg as i32;
            if min < 0 {
                return error!(EINVAL);
            }
            Ok(files.alloc_from(min as usize, f, cmd == F_DUPFD_CLOEXEC)? as u64)
        }
        F_GETFD => Ok(if files.get_cloexec(fd.0)? {
            FD_CLOEXEC
        } else {
            0
        }),
        F_SETFD => {
            files.set_cloexec(fd.0, arg & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok((f.flags() & !crate::fs::fanotify::FMODE_NONOTIFY) as u64),
        F_SETFL => {
            if f.is_path_only() {
                return error!(EBADF);
            }
            let new = arg as u32;
            // Setting O_NOATIME: the owner or CAP_FOWNER only (clearing
            // it is anybody's, as Linux's setfl).
            if new & O_NOATIME != 0 && f.flags() & O_NOATIME == 0 {
                crate::fs::perm::must_own(&crate::fs::vfs::Caller::of(ctx.task), &f.path)?;
            }
            // O_APPEND cannot be cleared on an append-only file (none yet).
            if (new ^ f.flags()) & O_ASYNC != 0 {
                crate::fs::fasync::set_async(&f, fd.0, new & O_ASYNC != 0)?;
            }
            f.set_status_flags(new);
            Ok(0)
        }
        crate::fs::fasync::F_SETOWN
        | crate::fs::fasync::F_GETOWN
        | crate::fs::fasync::F_SETOWN_EX
        | crate::fs::fasync::F_GETOWN_EX
        | crate::fs::fasync::F_SETSIG
        | crate::fs::fasync::F_GETSIG => crate::fs::fasync::fcntl_owner(ctx, &f, cmd, arg),
        crate::fs::dnotify::F_NOTIFY => crate::fs::dnotify::fcntl_notify(ctx, &f, fd.0, arg),
        crate::fs::lease::F_SETLEASE | crate::fs::lease::F_GETLEASE => {
            if f.is_path_only() {
                return error!(EBADF);
            }
            crate::fs::lease::fcntl_lease(ctx, &f, fd.0, cmd, arg)
        }
        F_GETPIPE_SZ => crate::fs::pipe::get_size(&f).map(|n| n as u64),
        F_SETPIPE_SZ => {
            let privileged = ctx.task.privileged(crate::task::caps::Cap::SysResource);
            crate::fs::pipe::set_size(&f, arg, privileged).map(|n| n as u64)
        }
        crate::fs::locks::F_GETLK
        | crate::fs::locks::F_SETLK
        | crate::fs::locks::F_SETLKW
        | crate::fs::locks::F_OFD_GETLK
        | crate::fs::locks::F_OFD_SETLK
        | crate::fs::locks::F_OFD_SETLKW => {
            if f.is_path_only() {
                return error!(EBADF);
            }
            crate::fs::locks::fcntl_lock(ctx, &f, cmd, arg)
        }
        crate::fs::memfd::F_ADD_SEALS | crate::fs::memfd::F_GET_SEALS => {
            crate::fs::memfd::fcntl_seals(&f, cmd, arg)
        }
        _ => error!(EINVAL),
    }
}

const FIONREAD: u32 = 0x541B;
const FIONBIO: u32 = 0x5421;
const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;

fn sys_ioctl(ctx: &mut SyscallContext<'_>, fd: Fd, cmd: u32, arg: u64) -> KResult<u64> {
    let files = ctx.files();
    let f = files.get(fd.0)?;
    if f.is_path_only() {
        return error!(EBADF);
    }
    match cmd {
        FIOCLEX | FIONCLEX => {
            files.set_cloexec(fd.0, cmd == FIOCLEX)?;
            Ok(0)
        }
        FIONBIO => {
            let on: i32 = ctx.mm().read_val(arg)?;
            f.set_nonblocking(on != 0);
            Ok(0)
        }
        FIONREAD => {
            let n = match f.ops()?.bytes_available() {
                Some(r) => r?,
                None if f.file_type() == FileType::Regular => {
                    f.size()?.saturating_sub(f.pos()) as usize
                }
                None => return error!(ENOTTY),
            };
            let n = n.min(i32::MAX as usize) as i32;
            ctx.mm().write_val(arg, &n)?;
            Ok(0)
        }
        _ => f.ops()?.ioctl(&f, cmd, arg, ctx),
    }
}

// ---------------------------------------------------------------------------
// stat

fn write_stat(ctx: &SyscallContext<'_>, buf: UserAddr, st: &Stat) -> KResult<u64> {
    ctx.mm().write_val(buf.0, &StatAbi::from_stat(st))?;
    Ok(0)
}

/// The attributes at a path (for an O_PATH descriptor or a walk result).
fn path_stat(p: &Path) -> KResult<Stat> {
    p.inode().stat()
}

fn sys_stat(ctx: &mut SyscallContext<'_>, path: UserAddr, buf: UserAddr) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    write_stat(ctx, buf, &path_stat(&p)?)
}

fn sys_lstat(ctx: &mut SyscallContext<'_>, path: UserAddr, buf: UserAddr) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, false, false)?;
    write_stat(ctx, buf, &path_stat(&p)?)
}

fn sys_fstat(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr) -> KResult<u64> {
    let f = get_file(ctx, fd)?;
    write_stat(ctx, buf, &f.stat()?)
}

/// Stat for (dirfd, path, flags) with AT_EMPTY_PATH meaning "the fd".
fn stat_at(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    flags: u32,
) -> KResult<(Stat, u64)> {
    let empty_ok = flags & AT_EMPTY_PATH != 0;
    let is_empty = empty_ok && (path.is_null() || read_path(ctx, path)?.is_empty());
    if is_empty {
        if dirfd.0 == AT_FDCWD {
            let cwd = ctx.fs().cwd();
            return Ok((path_stat(&cwd)?, cwd.mnt.id));
        }
        let f = get_file(ctx, dirfd)?;
        return Ok((f.stat()?, f.path.mnt.id));
    }
    let p = resolve(ctx, dirfd, path, flags & AT_SYMLINK_NOFOLLOW == 0, false)?;
    Ok((path_stat(&p)?, p.mnt.id))
}

fn sys_newfstatat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    buf: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let (st, _) = stat_at(ctx, dirfd, path, flags)?;
    write_stat(ctx, buf, &st)
}

fn sys_statx(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    flags: u32,
    mask: u32,
    buf: UserAddr,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX_RESERVED != 0
    {
        return error!(EINVAL);
    }
    let (st, mnt_id) = stat_at(ctx, dirfd, path, flags)?;
    ctx.mm()
        .write_val(buf.0, &StatxAbi::from_stat(&st, mnt_id))?;
    Ok(0)
}

fn do_getdents(
    ctx: &SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    count: u32,
    old: bool,
) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    if f.file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    let cap = (count as usize).min(1 << 20);
    let mut sink = DirSink::new(cap, old);
    f.getdents(&mut sink)?;
    ctx.mm().write_bytes(buf.0, &sink.buf)?;
    Ok(sink.buf.len() as u64)
}

fn sys_getdents64(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr, count: u32) -> KResult<u64> {
    do_getdents(ctx, fd, buf, count, false)
}

fn sys_getdents(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr, count: u32) -> KResult<u64> {
    do_getdents(ctx, fd, buf, count, true)
}

fn do_readlink(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    buf: UserAddr,
    size: i32,
) -> KResult<u64> {
    if size <= 0 {
        return error!(EINVAL);
    }
    let p = read_path(ctx, path)?;
    let target = if p.is_empty() {
        // readlinkat(fd, "") reads the symlink an O_PATH fd refers to.
        if dirfd.0 == AT_FDCWD {
            return error!(ENOENT);
        }
        get_file(ctx, dirfd)?.path.clone()
    } else {
        let fs = ctx.fs();
        let start = start_dir(ctx, &fs, dirfd, &p)?;
        walker_for(&fs, ctx.task).walk(&start, &p, false)?
    };
    if target.inode().file_type() != FileType::Symlink {
        return if p.is_empty() {
            error!(ENOENT)
        } else {
            error!(EINVAL)
        };
    }
    let caller = crate::fs::vfs::Caller::of(ctx.task);
    let text = target.inode().readlink(&caller)?;
    let n = text.len().min(size as usize);
    ctx.mm().write_bytes(buf.0, &text[..n])?;
    Ok(n as u64)
}

fn sys_readlink(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    buf: UserAddr,
    size: i32,
) -> KResult<u64> {
    do_readlink(ctx, Fd(AT_FDCWD), path, buf, size)
}

fn sys_readlinkat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    buf: UserAddr,
    size: i32,
) -> KResult<u64> {
    do_readlink(ctx, dirfd, path, buf, size)
}

const R_OK: u32 = 4;
const W_OK: u32 = 2;
const X_OK: u32 = 1;

fn do_access(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
    flags: u32,
) -> KResult<u64> {
    if mode & !(R_OK | W_OK | X_OK) != 0 {
        return error!(EINVAL);
    }
    if flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let p = resolve(
        ctx,
        dirfd,
        path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    // Writes to read-only mounts give EROFS; otherwise the file's mode
    // against the real (or, with AT_EACCESS, effective) ids.
    let t = p.inode().file_type();
    crate::fs::perm::access_check(
        &crate::fs::vfs::Caller::of(ctx.task),
        &p,
        mode & 7,
        flags & AT_EACCESS != 0,
    )?;
    if mode & W_OK != 0
        && p.mnt.read_only()
        && matches!(
            t,
            FileType::Regular | FileType::Directory | FileType::Symlink
        )
    {
        return error!(EROFS);
    }
    if mode & X_OK != 0 && t != FileType::Directory && p.inode().stat()?.mode & 0o111 == 0 {
        return error!(EACCES);
    }
    // A regular file of a noexec mount is not executable (do_faccessat).
    if mode & X_OK != 0 && t == FileType::Regular && p.mnt.noexec() {
        return error!(EACCES);
    }
    Ok(0)
}

fn sys_access(ctx: &mut SyscallContext<'_>, path: UserAddr, mode: u32) -> KResult<u64> {
    do_access(ctx, Fd(AT_FDCWD), path, mode, 0)
}

fn sys_faccessat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
) -> KResult<u64> {
    do_access(ctx, dirfd, path, mode, 0)
}

fn sys_faccessat2(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
    flags: u32,
) -> KResult<u64> {
    do_access(ctx, dirfd, path, mode, flags)
}

// ---------------------------------------------------------------------------
// cwd, root, umask

/// getcwd's text for `fs`: the cwd from the root, or "(unreachable)/..."
/// when the cwd is outside it.
pub fn cwd_string(fs: &FsContext) -> Vec<u8> {
    let root = fs.root();
    let cwd = fs.cwd();
    let mut s = d_path(&cwd, &root);
    if !reaches(&cwd, &root) {
        let mut u = b"(unreachable)".to_vec();
        u.append(&mut s);
        s = u;
    }
    s
}

/// Whether `root` is an ancestor of (or is) `p`.
fn reaches(p: &Path, root: &Path) -> bool {
    let mut cur = p.clone();
    loop {
        if cur.same_object(root) {
            return true;
        }
        if cur.is_mount_root() {
            match cur.mnt.mountpoint() {
                Some(mp) => cur = mp,
                None => return false,
            }
            continue;
        }
        match &cur.dentry.parent {
            Some(parent) => {
                cur = Path {
                    mnt: cur.mnt.clone(),
                    dentry: parent.clone(),
                }
            }
            None => return false,
        }
    }
}

fn sys_getcwd(ctx: &mut SyscallContext<'_>, buf: UserAddr, size: usize) -> KResult<u64> {
    let mut s = cwd_string(&ctx.fs());
    s.push(0);
    if s.len() > size {
        return error!(ERANGE);
    }
    ctx.mm().write_bytes(buf.0, &s)?;
    Ok(s.len() as u64)
}

fn sys_chdir(ctx: &mut SyscallContext<'_>, path: UserAddr) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    if p.inode().file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    crate::fs::perm::may_enter(ctx.task, &p, false)?;
    ctx.fs().set_cwd(p);
    Ok(0)
}

fn sys_fchdir(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    let f = get_file(ctx, fd)?;
    if f.file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    crate::fs::perm::may_enter(ctx.task, &f.path, false)?;
    ctx.fs().set_cwd(f.path.clone());
    Ok(0)
}

fn sys_chroot(ctx: &mut SyscallContext<'_>, path: UserAddr) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    if p.inode().file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    crate::fs::perm::may_enter(ctx.task, &p, true)?;
    ctx.fs().set_root(p);
    Ok(0)
}

fn sys_umask(ctx: &mut SyscallContext<'_>, mask: u32) -> KResult<u64> {
    Ok(ctx.fs().swap_umask(mask) as u64)
}

// ---------------------------------------------------------------------------
// pipes

fn sys_pipe(ctx: &mut SyscallContext<'_>, fds: UserAddr) -> KResult<u64> {
    sys_pipe2(ctx, fds, 0)
}

fn sys_pipe2(ctx: &mut SyscallContext<'_>, fds: UserAddr, flags: u32) -> KResult<u64> {
    // O_DIRECT (packet mode) and O_NOTIFICATION_PIPE are not supported.
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return error!(EINVAL);
    }
    let (r, w) = crate::fs::pipe::new_pipe(flags);
    let files = ctx.files();
    let (rfd, wfd) = files.alloc_pair(r, w, flags & O_CLOEXEC != 0)?;
    if let Err(e) = ctx.mm().write_val(fds.0, &[rfd, wfd]) {
        let _ = files.close(rfd);
        let _ = files.close(wfd);
        return Err(e);
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// statfs, sync, truncate

fn sys_statfs(ctx: &mut SyscallContext<'_>, path: UserAddr, buf: UserAddr) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    let s = p.inode().statfs()?;
    ctx.mm()
        .write_val(buf.0, &StatFsAbi::from_statfs(&mount_flags(&p, s)))?;
    Ok(0)
}

fn sys_fstatfs(ctx: &mut SyscallContext<'_>, fd: Fd, buf: UserAddr) -> KResult<u64> {
    let f = get_file(ctx, fd)?;
    let s = f.path.inode().statfs()?;
    ctx.mm()
        .write_val(buf.0, &StatFsAbi::from_statfs(&mount_flags(&f.path, s)))?;
    Ok(0)
}

fn mount_flags(p: &Path, mut s: StatFs) -> StatFs {
    s.flags |= ST_VALID;
    if p.mnt.read_only() {
        s.flags |= ST_RDONLY;
    }
    // MNT_NOSUID/NODEV/NOEXEC (1, 2, 4) are ST_NOSUID/NODEV/NOEXEC (2, 4, 8).
    s.flags |= (p.mnt.flags() as i64) << 1;
    s
}

fn sys_fsync(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    get_io_file(ctx, fd)?.ops()?.sync(false)?;
    Ok(0)
}

fn sys_fdatasync(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    get_io_file(ctx, fd)?.ops()?.sync(true)?;
    Ok(0)
}

/// sync(2): hostfs writes go straight to the host and nothing is cached
/// in the kernel; disk filesystems commit their journals and the disks
/// (ubd, loop) are flushed to the host's disk.
fn sys_sync(_ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    crate::block::sync_all();
    Ok(0)
}

/// syncfs(2): as sync(2), for the file's filesystem (disk filesystems'
/// journals are committed and disks flushed all together).
fn sys_syncfs(ctx: &mut SyscallContext<'_>, fd: Fd) -> KResult<u64> {
    get_file(ctx, fd)?;
    crate::block::sync_all();
    Ok(0)
}

fn sys_ftruncate(ctx: &mut SyscallContext<'_>, fd: Fd, len: i64) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    if len < 0 {
        return error!(EINVAL);
    }
    if f.file_type() != FileType::Regular || !f.can_write() {
        return error!(EINVAL);
    }
    crate::fs::memfd::check_resize(&f, len as u64)?;
    crate::fs::fsize::check_grow(ctx.task, len as u64, f.size()?)?;
    crate::fs::perm::remove_privs(ctx.task, f.path.inode());
    f.ops()?.truncate(len as u64)?;
    crate::kernel()
        .page_cache
        .truncate(f.path.inode().key(), len as u64);
    if !f.path.mnt.internal && !no_notify(&f) {
        crate::fs::inotify::notify_attr(&f.path, crate::fs::inotify::IN_MODIFY);
    }
    Ok(0)
}

fn sys_truncate(ctx: &mut SyscallContext<'_>, path: UserAddr, len: i64) -> KResult<u64> {
    if len < 0 {
        return error!(EINVAL);
    }
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    match p.inode().file_type() {
        FileType::Directory => return error!(EISDIR),
        FileType::Regular => {}
        _ => return error!(EINVAL),
    }
    crate::fs::fsize::check_grow(ctx.task, len as u64, p.inode().stat()?.size)?;
    crate::fs::lease::break_on_truncate(&p)?;
    let r = attr_change(
        &p,
        &SetAttr {
            size: Some(len as u64),
            ..Default::default()
        },
    )?;
    crate::kernel()
        .page_cache
        .truncate(p.inode().key(), len as u64);
    crate::fs::perm::remove_privs(ctx.task, p.inode());
    Ok(r)
}

// ---------------------------------------------------------------------------
// Namespace changes: mkdir, unlink, rename, symlink, ...

/// The directory and name for a call that creates `path`; EEXIST if it
/// exists (checked before EROFS, as Linux), EROFS on read-only mounts.
fn create_target(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
) -> KResult<(Path, Vec<u8>, bool)> {
    let (dir, name, trailing) = resolve_parent(ctx, dirfd, path)?;
    let fs = ctx.fs();
    let w: Walker<'_> = walker_for(&fs, ctx.task);
    if name == b"." || name == b".." {
        return error!(EEXIST);
    }
    match w.lookup_one(&dir, &name) {
        Ok(_) => return error!(EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if dir.mnt.read_only() {
        return error!(EROFS);
    }
    crate::fs::perm::may_change_dir(&crate::fs::vfs::Caller::of(ctx.task), &dir, None)?;
    Ok((dir, name, trailing))
}

fn do_mkdir(ctx: &SyscallContext<'_>, dirfd: Fd, path: UserAddr, mode: u32) -> KResult<u64> {
    let (dir, name, _) = create_target(ctx, dirfd, path)?;
    let perm = mode & 0o7777 & !ctx.fs().umask();
    dir.inode().mkdir(&name, perm)?;
    crate::fs::namei::dcache::changed();
    crate::fs::perm::own_new_entry(&crate::fs::vfs::Caller::of(ctx.task), &dir, &name);
    crate::fs::inotify::notify_dir(&dir, crate::fs::inotify::IN_CREATE, &name, true, 0);
    Ok(0)
}

fn sys_mkdir(ctx: &mut SyscallContext<'_>, path: UserAddr, mode: u32) -> KResult<u64> {
    do_mkdir(ctx, Fd(AT_FDCWD), path, mode)
}

fn sys_mkdirat(ctx: &mut SyscallContext<'_>, dirfd: Fd, path: UserAddr, mode: u32) -> KResult<u64> {
    do_mkdir(ctx, dirfd, path, mode)
}

pub(crate) fn do_mknod(
    ctx: &SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
    dev: u64,
) -> KResult<u64> {
    let ft = match mode & S_IFMT {
        0 | S_IFREG => S_IFREG,
        t @ (S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK) => t,
        S_IFDIR => return error!(EPERM),
        _ => return error!(EINVAL),
    };
    let (dir, name, _) = create_target(ctx, dirfd, path)?;
    let perm = mode & 0o7777 & !ctx.fs().umask();
    if ft == S_IFREG {
        dir.inode().create(&name, perm, O_RDONLY)?;
        crate::fs::namei::dcache::changed();
        crate::fs::perm::own_new_entry(&crate::fs::vfs::Caller::of(ctx.task), &dir, &name);
        return Ok(0);
    }
    // The ABI's dev is an unsigned int in Linux's new encoding.
    let dev = dev as u32;
    let rdev = ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    dir.inode().mknod(&name, ft | perm, rdev)?;
    crate::fs::namei::dcache::changed();
    crate::fs::perm::own_new_entry(&crate::fs::vfs::Caller::of(ctx.task), &dir, &name);
    Ok(0)
}

fn sys_mknod(ctx: &mut SyscallContext<'_>, path: UserAddr, mode: u32, dev: u64) -> KResult<u64> {
    do_mknod(ctx, Fd(AT_FDCWD), path, mode, dev)
}

fn sys_mknodat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
    dev: u64,
) -> KResult<u64> {
    do_mknod(ctx, dirfd, path, mode, dev)
}

/// unlink / rmdir.
fn do_remove(ctx: &SyscallContext<'_>, dirfd: Fd, path: UserAddr, rmdir: bool) -> KResult<u64> {
    let (dir, name, trailing) = resolve_parent(ctx, dirfd, path)?;
    if rmdir {
        match name.as_slice() {
            b"." => return error!(EINVAL),
            b".." => return error!(ENOTEMPTY),
            _ => {}
        }
    } else if name == b"." || name == b".." {
        return error!(EISDIR);
    }
    if dir.mnt.read_only() {
        return error!(EROFS);
    }
    let fs = ctx.fs();
    let w = walker_for(&fs, ctx.task);
    let victim = w.lookup_one(&dir, &name)?;
    if !Arc::ptr_eq(&victim.mnt, &dir.mnt) {
        return error!(EBUSY);
    }
    crate::fs::perm::may_change_dir(&w.caller, &dir, Some(&victim))?;
    let t = victim.inode().file_type();
    if rmdir {
        if t != FileType::Directory {
            return error!(ENOTDIR);
        }
        dir.inode().rmdir(&name)?;
        crate::fs::namei::dcache::changed();
        crate::fs::inotify::notify_dir(&dir, crate::fs::inotify::IN_DELETE, &name, true, 0);
        crate::fs::inotify::unlinked(victim.inode().key());
    } else {
        if t == FileType::Directory {
            return error!(EISDIR);
        }
        if trailing {
            return error!(ENOTDIR);
        }
        dir.inode().unlink(&name)?;
        crate::fs::namei::dcache::changed();
        // The link count changed (IN_ATTRIB), then the name went.
        crate::fs::inotify::notify_inode(
            victim.inode().key(),
            crate::fs::inotify::IN_ATTRIB,
            false,
        );
        crate::fs::inotify::notify_dir(&dir, crate::fs::inotify::IN_DELETE, &name, false, 0);
        if victim
            .inode()
            .stat()
            .map(|st| st.nlink == 0)
            .unwrap_or(true)
        {
            crate::fs::inotify::unlinked(victim.inode().key());
        }
    }
    Ok(0)
}

fn sys_rmdir(ctx: &mut SyscallContext<'_>, path: UserAddr) -> KResult<u64> {
    do_remove(ctx, Fd(AT_FDCWD), path, true)
}

fn sys_unlink(ctx: &mut SyscallContext<'_>, path: UserAddr) -> KResult<u64> {
    do_remove(ctx, Fd(AT_FDCWD), path, false)
}

fn sys_unlinkat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if flags & !AT_REMOVEDIR != 0 {
        return error!(EINVAL);
    }
    do_remove(ctx, dirfd, path, flags & AT_REMOVEDIR != 0)
}

fn do_symlink(
    ctx: &SyscallContext<'_>,
    target: UserAddr,
    dirfd: Fd,
    path: UserAddr,
) -> KResult<u64> {
    let t = read_path(ctx, target)?;
    if t.is_empty() {
        return error!(ENOENT);
    }
    let (dir, name, _) = create_target(ctx, dirfd, path)?;
    dir.inode().symlink(&name, &t)?;
    crate::fs::namei::dcache::changed();
    crate::fs::perm::own_new_entry(&crate::fs::vfs::Caller::of(ctx.task), &dir, &name);
    crate::fs::inotify::notify_dir(&dir, crate::fs::inotify::IN_CREATE, &name, false, 0);
    Ok(0)
}

fn sys_symlink(ctx: &mut SyscallContext<'_>, target: UserAddr, path: UserAddr) -> KResult<u64> {
    do_symlink(ctx, target, Fd(AT_FDCWD), path)
}

fn sys_symlinkat(
    ctx: &mut SyscallContext<'_>,
    target: UserAddr,
    dirfd: Fd,
    path: UserAddr,
) -> KResult<u64> {
    do_symlink(ctx, target, dirfd, path)
}

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

fn do_rename(
    ctx: &SyscallContext<'_>,
    olddir: Fd,
    old: UserAddr,
    newdir: Fd,
    new: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
        return error!(EINVAL);
    }
    if flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0 {
        return error!(EINVAL);
    }
    let (od, oname, _) = resolve_parent(ctx, olddir, old)?;
    let (nd, nname, _) = resolve_parent(ctx, newdir, new)?;
    for n in [&oname, &nname] {
        if n.as_slice() == b"." || n.as_slice() == b".." {
            return error!(EBUSY);
        }
    }
    if !Arc::ptr_eq(&od.mnt, &nd.mnt) {
        return error!(EXDEV);
    }
    if od.mnt.read_only() {
        return error!(EROFS);
    }
    let fs = ctx.fs();
    let w = walker_for(&fs, ctx.task);
    let src = w.lookup_one(&od, &oname)?;
    crate::fs::perm::may_change_dir(&w.caller, &od, Some(&src))?;
    let dst = w.lookup_one(&nd, &nname).ok();
    crate::fs::perm::may_change_dir(&w.caller, &nd, dst.as_ref())?;
    od.inode()
        .rename(&oname, nd.inode().as_ref(), &nname, flags)?;
    crate::fs::namei::dcache::changed();
    let cookie = crate::fs::inotify::next_cookie();
    let is_dir = src.inode().file_type() == FileType::Directory;
    crate::fs::inotify::notify_dir(
        &od,
        crate::fs::inotify::IN_MOVED_FROM,
        &oname,
        is_dir,
        cookie,
    );
    crate::fs::inotify::notify_dir(&nd, crate::fs::inotify::IN_MOVED_TO, &nname, is_dir, cookie);
    // A replaced target lost a link (IN_ATTRIB, as fsnotify_move), and
    // with its last one it goes once released (after IN_MOVE_SELF).
    let replaced = dst
        .as_ref()
        .filter(|d| flags & RENAME_EXCHANGE == 0 && d.inode().key() != src.inode().key());
    if let Some(d) = replaced {
        let d_dir = d.inode().file_type() == FileType::Directory;
        crate::fs::inotify::notify_inode(d.inode().key(), crate::fs::inotify::IN_ATTRIB, d_dir);
    }
    crate::fs::inotify::notify_inode(src.inode().key(), crate::fs::inotify::IN_MOVE_SELF, is_dir);
    if let Some(d) = replaced {
        // A replaced directory was empty: gone whatever its count says.
        let d_dir = d.inode().file_type() == FileType::Directory;
        if d_dir || d.inode().stat().map(|st| st.nlink == 0).unwrap_or(true) {
            crate::fs::inotify::unlinked(d.inode().key());
        }
    }
    if flags & RENAME_EXCHANGE == 0 {
        crate::fs::inotify::renamed(
            src.inode().key(),
            od.inode().key(),
            &oname,
            nd.inode(),
            &nname,
        );
    }
    Ok(0)
}

fn sys_rename(ctx: &mut SyscallContext<'_>, old: UserAddr, new: UserAddr) -> KResult<u64> {
    do_rename(ctx, Fd(AT_FDCWD), old, Fd(AT_FDCWD), new, 0)
}

fn sys_renameat(
    ctx: &mut SyscallContext<'_>,
    olddir: Fd,
    old: UserAddr,
    newdir: Fd,
    new: UserAddr,
) -> KResult<u64> {
    do_rename(ctx, olddir, old, newdir, new, 0)
}

fn sys_renameat2(
    ctx: &mut SyscallContext<'_>,
    olddir: Fd,
    old: UserAddr,
    newdir: Fd,
    new: UserAddr,
    flags: u32,
) -> KResult<u64> {
    do_rename(ctx, olddir, old, newdir, new, flags)
}

fn do_link(
    ctx: &SyscallContext<'_>,
    olddir: Fd,
    old: UserAddr,
    newdir: Fd,
    new: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let src = resolve(
        ctx,
        olddir,
        old,
        flags & AT_SYMLINK_FOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    if src.inode().file_type() == FileType::Directory {
        return error!(EPERM);
    }
    let (dir, name, trailing) = create_target(ctx, newdir, new)?;
    if trailing {
        return error!(ENOENT);
    }
    if !Arc::ptr_eq(&src.mnt, &dir.mnt) {
        return error!(EXDEV);
    }
    dir.inode().link(&name, src.inode().as_ref())?;
    crate::fs::namei::dcache::changed();
    // The link count changed (IN_ATTRIB), then the name appeared.
    crate::fs::inotify::notify_inode(src.inode().key(), crate::fs::inotify::IN_ATTRIB, false);
    crate::fs::inotify::notify_dir(&dir, crate::fs::inotify::IN_CREATE, &name, false, 0);
    Ok(0)
}

fn sys_link(ctx: &mut SyscallContext<'_>, old: UserAddr, new: UserAddr) -> KResult<u64> {
    do_link(ctx, Fd(AT_FDCWD), old, Fd(AT_FDCWD), new, 0)
}

fn sys_linkat(
    ctx: &mut SyscallContext<'_>,
    olddir: Fd,
    old: UserAddr,
    newdir: Fd,
    new: UserAddr,
    flags: u32,
) -> KResult<u64> {
    do_link(ctx, olddir, old, newdir, new, flags)
}

/// chmod/chown/utimensat/truncate: EROFS on read-only mounts, else the
/// filesystem's setattr (EPERM where it has none).
fn attr_change(p: &Path, attr: &SetAttr) -> KResult<u64> {
    if p.mnt.read_only() {
        return error!(EROFS);
    }
    p.inode().setattr(attr)?;
    // A size change is IN_MODIFY, as Linux's fsnotify_change.
    let ev = if attr.size.is_some() {
        crate::fs::inotify::IN_MODIFY
    } else {
        crate::fs::inotify::IN_ATTRIB
    };
    crate::fs::inotify::notify(p, ev);
    Ok(0)
}

fn chmod_attr(mode: u32) -> SetAttr {
    SetAttr {
        mode: Some(mode & 0o7777),
        ..Default::default()
    }
}

/// chown's ids: -1 leaves one alone.
fn chown_attr(uid: u32, gid: u32) -> SetAttr {
    SetAttr {
        uid: (uid != u32::MAX).then_some(uid),
        gid: (gid != u32::MAX).then_some(gid),
        kill_suid: true,
        ..Default::default()
    }
}

fn owned<'p>(ctx: &SyscallContext<'_>, p: &'p Path) -> KResult<&'p Path> {
    crate::fs::perm::must_own(&crate::fs::vfs::Caller::of(ctx.task), p)?;
    Ok(p)
}

fn chownable<'p>(ctx: &SyscallContext<'_>, p: &'p Path, uid: u32, gid: u32) -> KResult<&'p Path> {
    let opt = |v: u32| (v != u32::MAX).then_some(v);
    crate::fs::perm::may_chown(&crate::fs::vfs::Caller::of(ctx.task), p, opt(uid), opt(gid))?;
    Ok(p)
}

/// chmod of `p` by the caller (perm::chmod_mode drops S_ISGID as Linux).
fn chmod_path(ctx: &SyscallContext<'_>, p: &Path, mode: u32) -> KResult<u64> {
    let p = owned(ctx, p)?;
    let mode = crate::fs::perm::chmod_mode(&crate::fs::vfs::Caller::of(ctx.task), p, mode);
    attr_change(p, &chmod_attr(mode))
}

fn sys_chmod(ctx: &mut SyscallContext<'_>, path: UserAddr, mode: u32) -> KResult<u64> {
    let p = resolve(ctx, Fd(AT_FDCWD), path, true, false)?;
    chmod_path(ctx, &p, mode)
}

fn sys_fchmod(ctx: &mut SyscallContext<'_>, fd: Fd, mode: u32) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    chmod_path(ctx, &f.path, mode)
}

fn sys_fchmodat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    mode: u32,
) -> KResult<u64> {
    let p = resolve(ctx, dirfd, path, true, false)?;
    chmod_path(ctx, &p, mode)
}

fn sys_chown(ctx: &mut SyscallContext<'_>, path: UserAddr, uid: u32, gid: u32) -> KResult<u64> {
    attr_change(
        chownable(
            ctx,
            &resolve(ctx, Fd(AT_FDCWD), path, true, false)?,
            uid,
            gid,
        )?,
        &chown_attr(uid, gid),
    )
}

fn sys_lchown(ctx: &mut SyscallContext<'_>, path: UserAddr, uid: u32, gid: u32) -> KResult<u64> {
    attr_change(
        chownable(
            ctx,
            &resolve(ctx, Fd(AT_FDCWD), path, false, false)?,
            uid,
            gid,
        )?,
        &chown_attr(uid, gid),
    )
}

fn sys_fchown(ctx: &mut SyscallContext<'_>, fd: Fd, uid: u32, gid: u32) -> KResult<u64> {
    let f = get_io_file(ctx, fd)?;
    attr_change(chownable(ctx, &f.path, uid, gid)?, &chown_attr(uid, gid))
}

fn sys_fchownat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    uid: u32,
    gid: u32,
    flags: u32,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    let p = resolve(
        ctx,
        dirfd,
        path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    attr_change(chownable(ctx, &p, uid, gid)?, &chown_attr(uid, gid))
}

fn sys_utimensat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    times: UserAddr,
    flags: u32,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return error!(EINVAL);
    }
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let mut attr = SetAttr::default();
    if times.is_null() {
        attr.atime = Some(SetTime::Now);
        attr.mtime = Some(SetTime::Now);
    } else {
        let ts: [i64; 4] = ctx.mm().read_val(times.0)?;
        let conv = |sec: i64, nsec: i64| -> KResult<Option<SetTime>> {
            match nsec {
                UTIME_NOW => Ok(Some(SetTime::Now)),
                UTIME_OMIT => Ok(None),
                n if (0..1_000_000_000).contains(&n) => Ok(Some(SetTime::At(sec, n as u32))),
                _ => error!(EINVAL),
            }
        };
        attr.atime = conv(ts[0], ts[1])?;
        attr.mtime = conv(ts[2], ts[3])?;
        if attr.atime.is_none() && attr.mtime.is_none() {
            return Ok(0);
        }
    }
    set_times(ctx, dirfd, path, &attr, flags)
}

/// The common end of the utime family: `attr` applied to the file that
/// `dirfd`+`path` names (`path` NULL: `dirfd` itself, as futimens).
fn set_times(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    attr: &SetAttr,
    flags: u32,
) -> KResult<u64> {
    // utimensat(fd, NULL, ...) is futimens.
    let p = if path.is_null() {
        if dirfd.0 == AT_FDCWD {
            return error!(EFAULT);
        }
        get_file(ctx, dirfd)?.path.clone()
    } else {
        resolve(
            ctx,
            dirfd,
            path,
            flags & AT_SYMLINK_NOFOLLOW == 0,
            flags & AT_EMPTY_PATH != 0,
        )?
    };
    attr_change(&p, attr)
}

/// utime(2): whole seconds from a struct utimbuf {actime, modtime}, or
/// now for both when `times` is NULL.
fn sys_utime(ctx: &mut SyscallContext<'_>, path: UserAddr, times: UserAddr) -> KResult<u64> {
    let mut attr = SetAttr::default();
    if times.is_null() {
        attr.atime = Some(SetTime::Now);
        attr.mtime = Some(SetTime::Now);
    } else {
        let t: [i64; 2] = ctx.mm().read_val(times.0)?;
        attr.atime = Some(SetTime::At(t[0], 0));
        attr.mtime = Some(SetTime::At(t[1], 0));
    }
    if path.is_null() {
        return error!(EFAULT);
    }
    set_times(ctx, Fd(AT_FDCWD), path, &attr, 0)
}

/// The struct timeval[2] of utimes/futimesat (NULL: now): microseconds
/// outside [0, 1e6) are EINVAL.
fn timeval_times(ctx: &SyscallContext<'_>, times: UserAddr) -> KResult<SetAttr> {
    let mut attr = SetAttr::default();
    if times.is_null() {
        attr.atime = Some(SetTime::Now);
        attr.mtime = Some(SetTime::Now);
        return Ok(attr);
    }
    let tv: [i64; 4] = ctx.mm().read_val(times.0)?;
    let conv = |sec: i64, usec: i64| -> KResult<SetTime> {
        if !(0..1_000_000).contains(&usec) {
            return error!(EINVAL);
        }
        Ok(SetTime::At(sec, usec as u32 * 1000))
    };
    attr.atime = Some(conv(tv[0], tv[1])?);
    attr.mtime = Some(conv(tv[2], tv[3])?);
    Ok(attr)
}

fn sys_utimes(ctx: &mut SyscallContext<'_>, path: UserAddr, times: UserAddr) -> KResult<u64> {
    let attr = timeval_times(ctx, times)?;
    if path.is_null() {
        return error!(EFAULT);
    }
    set_times(ctx, Fd(AT_FDCWD), path, &attr, 0)
}

fn sys_futimesat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    times: UserAddr,
) -> KResult<u64> {
    let attr = timeval_times(ctx, times)?;
    set_times(ctx, dirfd, path, &attr, 0)
}

const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
/// Every mode bit Linux knows (KEEP_SIZE, PUNCH_HOLE, NO_HIDE_STALE,
/// COLLAPSE_RANGE, ZERO_RANGE, INSERT_RANGE, UNSHARE_RANGE).
const FALLOC_FL_KNOWN: u32 = 0x7f;

fn sys_fallocate(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    mode: u32,
    off: i64,
    len: i64,
) -> KResult<u64> {
    if off < 0 || len <= 0 {
        return error!(EINVAL);
    }
    if mode & !FALLOC_FL_KNOWN != 0 {
        return error!(EOPNOTSUPP);
    }
    if mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0 {
        return error!(EOPNOTSUPP);
    }
    let f = get_io_file(ctx, fd)?;
    if crate::fs::memfd::seals_of(&f)
        & (crate::fs::memfd::F_SEAL_WRITE
            | crate::fs::memfd::F_SEAL_FUTURE_WRITE
            | crate::fs::memfd::F_SEAL_GROW)
        != 0
    {
        return error!(EPERM);
    }
    if !f.can_write() {
        return error!(EBADF);
    }
    match f.file_type() {
        FileType::Regular => {}
        FileType::Directory => return error!(EISDIR),
        FileType::Fifo => return error!(ESPIPE),
        _ => return error!(ENODEV),
    }
    if off.checked_add(len).is_none() {
        return error!(EFBIG);
    }
    if mode & FALLOC_FL_KEEP_SIZE == 0 {
        crate::fs::fsize::check_grow(ctx.task, (off + len) as u64, f.size()?)?;
    }
    f.ops()?.fallocate(mode, off as u64, len as u64)?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// mount, umount2

const MS_RDONLY: u64 = 1;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

fn sys_mount(
    ctx: &mut SyscallContext<'_>,
    source: UserAddr,
    target: UserAddr,
    fstype: UserAddr,
    flags: u64,
    data: UserAddr,
) -> KResult<u64> {
    crate::fs::namei::dcache::changed();
    let mut flags = flags;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    let t = resolve(ctx, Fd(AT_FDCWD), target, true, false)?;
    let fs = ctx.fs();
    if flags & MS_PROPAGATION != 0 {
        // Propagation types: one type, with MS_REC / MS_SILENT at most.
        let ty = flags & MS_PROPAGATION;
        if !ty.is_power_of_two() || flags & !(MS_PROPAGATION | MS_REC | MS_SILENT) != 0 {
            return error!(EINVAL);
        }
        if !t.is_mount_root() || !fs.ns.contains(&t.mnt) {
            return error!(EINVAL);
        }
        if !ctx
            .task
            .privileged_in(&fs.ns.user_ns, crate::task::caps::Cap::SysAdmin)
        {
            return error!(EPERM);
        }
        crate::fs::mntns::set_propagation(&fs.ns, &t.mnt, ty, flags & MS_REC != 0);
        return Ok(0);
    }
    // Every other mount(2) needs CAP_SYS_ADMIN over the mount namespace's
    // owner (a user namespace's root may mount in its own mount namespace).
    if !ctx
        .task
        .privileged_in(&fs.ns.user_ns, crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    if flags & MS_REMOUNT != 0 {
        if !t.is_mount_root() || !fs.ns.contains(&t.mnt) {
            return error!(EINVAL);
        }
        if flags & MS_BIND == 0 {
            // The filesystem itself (a disk filesystem writes or not).
            t.inode().remount(flags & MS_RDONLY != 0)?;
        }
        t.mnt.set_read_only(flags & MS_RDONLY != 0);
        t.mnt.set_flags(crate::fs::vfs::mnt_flags_of_ms(flags));
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        let src = resolve(ctx, Fd(AT_FDCWD), source, true, false)?;
        if !src.is_mount_root()
            || !fs.ns.contains(&src.mnt)
            || src.mnt.mountpoint().is_none()
            || crate::fs::mntns::parent_shared(&src.mnt)
        {
            return error!(EINVAL);
        }
        crate::fs::mntns::move_under(&fs.ns, &src, t)?;
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        let src = resolve(ctx, Fd(AT_FDCWD), source, true, false)?;
        let (sd, td) = (
            src.inode().file_type() == FileType::Directory,
            t.inode().file_type() == FileType::Directory,
        );
        if sd != td {
            return error!(ENOTDIR);
        }
        if src.mnt.internal {
            return error!(EINVAL);
        }
        crate::fs::mntns::bind(&fs.ns, &src, &t, flags & MS_REC != 0)?;
        return Ok(0);
    }
    if fstype.is_null() {
        return error!(EINVAL);
    }
    let ty = ctx.mm().read_cstring(fstype.0, 255).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            errno!(ENODEV)
        } else {
            e
        }
    })?;
    let opts = if data.is_null() {
        Vec::new()
    } else {
        ctx.mm().read_cstring(data.0, 4095).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                errno!(EINVAL)
            } else {
                e
            }
        })?
    };
    let ro = flags & MS_RDONLY != 0;
    let src = if source.is_null() {
        None
    } else {
        Some(read_path(ctx, source)?)
    };
    let (name, inode, dev_source) = make_filesystem(ctx, &ty, &opts, src.as_deref(), ro)?;
    if t.inode().file_type() != FileType::Directory {
        return error!(ENOTDIR);
    }
    let m = fs.ns.mount(name, inode, &t, ro);
    m.set_flags(crate::fs::vfs::mnt_flags_of_ms(flags));
    if let Some(src) = dev_source {
        m.set_source(&src);
    }
    crate::fs::mntns::propagate_new(&fs.ns, &m, &t);
    Ok(0)
}

/// What [`make_filesystem`] makes: (type name, root inode, device source).
pub(crate) type NewFs = (
    &'static str,
    Arc<dyn crate::fs::vfs::Inode>,
    Option<Vec<u8>>,
);

/// A new filesystem instance of type `ty` with mount options `opts`
/// (mount(2) and fsconfig(FSCONFIG_CMD_CREATE)): (type name, root inode,
/// the device source to record). ENODEV for an unknown type.
pub(crate) fn make_filesystem(
    ctx: &SyscallContext<'_>,
    ty: &[u8],
    opts: &[u8],
    source: Option<&[u8]>,
    ro: bool,
) -> KResult<NewFs> {
    let mut dev_source: Option<Vec<u8>> = None;
    let (name, inode): (&'static str, Arc<dyn crate::fs::vfs::Inode>) = match ty {
        b"tmpfs" => {
            let phys = crate::fs::tmpfs::physmem();
            (
                "tmpfs",
                crate::fs::tmpfs::TmpFs::new_root(crate::fs::tmpfs::TmpfsOptions::parse(
                    opts, &phys,
                )?),
            )
        }
        b"proc" => ("proc", crate::fs::procfs::new_procfs_in(&ctx.task.pid_ns())),
        b"mqueue" => ("mqueue", crate::ipc::mqueue::fs_root()),
        b"sysfs" => ("sysfs", crate::fs::sysfs::new_sysfs()),
        b"devpts" => ("devpts", crate::fs::pty::new_devpts()),
        b"devtmpfs" => ("devtmpfs", crate::fs::devfs::new_devfs()),
        b"ext2" | b"ext3" | b"ext4" => {
            // A disk filesystem: the source is a block device node.
            let Some(source) = source else {
                return error!(EINVAL);
            };
            let fs = ctx.fs();
            let w = walker_for(&fs, ctx.task);
            let src = w.walk(&start_dir(ctx, &fs, Fd(AT_FDCWD), source)?, source, true)?;
            let disk = crate::block::from_inode(src.inode())?;
            dev_source = Some(crate::fs::vfs::d_path(&src, &fs.root()));
            let name = match ty {
                b"ext2" => "ext2",
                b"ext3" => "ext3",
                _ => "ext4",
            };
            (name, crate::fs::ext2::mount(&disk, ro)?)
        }
        b"hostfs" => {
            // UML: `mount none DIR -t hostfs -o HOSTDIR`, HOSTDIR beneath
            // the root's host directory; options after a comma are ignored.
            let dir = opts.split(|&b| b == b',').next().unwrap_or_default();
            (
                "hostfs",
                crate::fs::hostfs::HostFs::open_sub_root(&crate::fs::hostfs_prefix(), dir, ro)?,
            )
        }
        _ => return error!(ENODEV),
    };
    Ok((name, inode, dev_source))
}

const MNT_FORCE: u32 = 1;
const MNT_DETACH: u32 = 2;
const MNT_EXPIRE: u32 = 4;
const UMOUNT_NOFOLLOW: u32 = 8;

fn sys_umount2(ctx: &mut SyscallContext<'_>, target: UserAddr, flags: u32) -> KResult<u64> {
    crate::fs::namei::dcache::changed();
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return error!(EINVAL);
    }
    if flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0 {
        return error!(EINVAL);
    }
    let p = resolve(
        ctx,
        Fd(AT_FDCWD),
        target,
        flags & UMOUNT_NOFOLLOW == 0,
        false,
    )?;
    let fs = ctx.fs();
    // The last component's mounts are followed (Linux's LOOKUP_MOUNTPOINT:
    // umount2(".") after pivot_root(".", ".") finds the old root on top).
    let p = if p.is_mount_root() || fs.ns.mounted_on(&p).is_some() {
        fs.ns.traverse_mounts(p)
    } else {
        p
    };
    if !p.is_mount_root() {
        return error!(EINVAL);
    }
    if !fs.ns.contains(&p.mnt) {
        return error!(EINVAL);
    }
    if !ctx
        .task
        .privileged_in(&fs.ns.user_ns, crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    if flags & MNT_EXPIRE != 0 {
        // The first MNT_EXPIRE only marks the mount.
        return error!(EAGAIN);
    }
    let mnt = p.mnt.clone();
    drop(p);
    // The caller holds `mnt`.
    fs.ns.umount(&mnt, flags & MNT_DETACH != 0, 1)?;
    Ok(0)
}
