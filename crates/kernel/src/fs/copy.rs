//! In-kernel copies: sendfile, copy_file_range, splice. Data moves
//! through a kernel buffer in chunks, with each side's own read and write
//! (so pipes block and signal as usual).

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::FileRef;
use crate::fs::types::FileType;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

const CHUNK: usize = 64 * 1024;
/// Linux's MAX_RW_COUNT.
const MAX_RW: usize = 0x7fff_f000;
/// splice(2)'s flags: MOVE, NONBLOCK, MORE, GIFT; any other bit is EINVAL
/// for splice, tee and vmsplice.
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_ALL: u32 = 0xf;

syscall_table! { pub fn copy_table;
    SENDFILE => sys_sendfile(out_fd: Fd, in_fd: Fd, offset: UserAddr, count: usize),
    COPY_FILE_RANGE => sys_copy_file_range(fd_in: Fd, off_in: UserAddr, fd_out: Fd, off_out: UserAddr, len: usize, flags: u32),
    SPLICE => sys_splice(fd_in: Fd, off_in: UserAddr, fd_out: Fd, off_out: UserAddr, len: usize, flags: u32),
    TEE => sys_tee(fd_in: Fd, fd_out: Fd, len: usize, flags: u32),
    VMSPLICE => sys_vmsplice(fd: Fd, iov: UserAddr, nr_segs: u64, flags: u32),
}

fn sys_tee(
    ctx: &mut SyscallContext<'_>,
    fd_in: Fd,
    fd_out: Fd,
    len: usize,
    flags: u32,
) -> KResult<u64> {
    if flags & !SPLICE_F_ALL != 0 {
        return error!(EINVAL);
    }
    let inf = ctx.files().get(fd_in.0)?;
    let outf = ctx.files().get(fd_out.0)?;
    if !inf.can_read() || !outf.can_write() {
        return error!(EBADF);
    }
    if len == 0 {
        return Ok(0);
    }
    crate::fs::pipe::tee(
        &inf,
        &outf,
        len,
        flags & SPLICE_F_NONBLOCK != 0,
        Some(ctx.task),
    )
    .map(|n| n as u64)
}

fn is_pipe(f: &FileRef) -> bool {
    f.file_type() == FileType::Fifo
}

/// Copies up to `len` bytes; `inp`/`outp` are explicit offsets (None:
/// the file position). Stops early at EOF or a short write; an error after
/// some bytes moved ends the copy with the count.
fn pump(
    ctx: &SyscallContext<'_>,
    inf: &FileRef,
    mut inp: Option<u64>,
    outf: &FileRef,
    mut outp: Option<u64>,
    len: usize,
    stop_short: bool,
) -> KResult<(usize, Option<u64>, Option<u64>)> {
    let mut done = 0usize;
    let mut buf = vec![0u8; CHUNK.min(len.max(1))];
    while done < len {
        let mut want = (len - done).min(buf.len());
        // RLIMIT_FSIZE: cut at the limit before reading (what a pipe
        // holds past it stays there). At the limit with some bytes moved,
        // Linux's sendfile and splice loops try one more write only if
        // the source has more to give, and that write's EFBIG raises
        // SIGXFSZ; the count is returned (copy_file_range cut its length
        // at the limit beforehand).
        let at = crate::fs::fsize::write_pos(outf, outp);
        match crate::fs::fsize::room(ctx.task, outf, at) {
            // Linux reads before the write that fails: a source with
            // nothing more to give ends the copy with 0 and no signal (a
            // pipe is waited for as a read would).
            Some(0) if done == 0 => {
                let more = if is_pipe(inf) {
                    crate::fs::pipe::wait_readable(inf, inf.nonblocking(), Some(ctx.task))?
                } else {
                    has_more(inf, inp)
                };
                if !more {
                    return Ok((0, inp, outp));
                }
                return crate::fs::fsize::efbig(ctx.task);
            }
            Some(0) => {
                if has_more(inf, inp) {
                    let _ = crate::fs::fsize::efbig::<()>(ctx.task);
                }
                break;
            }
            Some(r) => want = want.min(r.min(usize::MAX as u64) as usize),
            None => {}
        }
        let r = match inp {
            Some(o) => inf.read_at(o, &mut buf[..want]),
            None => inf.read_as(&mut buf[..want], Some(ctx.task)),
        };
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let mut w = 0;
        while w < n {
            let r = match outp {
                Some(o) => outf.write_at(o + w as u64, &buf[w..n]),
                None => outf.write_as(&buf[w..n], Some(ctx.task)),
            };
            match r {
                Ok(0) => break,
                Ok(k) => w += k,
                Err(e) if done + w == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if let Some(o) = inp.as_mut() {
            *o += w as u64;
        }
        if let Some(o) = outp.as_mut() {
            *o += w as u64;
        }
        done += w;
        if w < n || (stop_short && n < want) {
            break;
        }
    }
    Ok((done, inp, outp))
}

/// Whether `inf` has more to give at `inp` (None: its position): a
/// regular file short of its end, a pipe (or another object that says
/// how much it holds) not empty; any other source is assumed to have
/// more, as a read of it would be tried.
fn has_more(inf: &FileRef, inp: Option<u64>) -> bool {
    if inf.file_type() == FileType::Regular {
        let at = inp.unwrap_or_else(|| inf.pos());
        return inf.size().is_ok_and(|s| s > at);
    }
    inf.ops()
        .ok()
        .and_then(|o| o.bytes_available())
        .is_none_or(|r| r.is_ok_and(|n| n > 0))
}

fn read_off(ctx: &SyscallContext<'_>, p: UserAddr) -> KResult<Option<u64>> {
    if p.is_null() {
        return Ok(None);
    }
    let v: i64 = ctx.mm().read_val(p.0)?;
    if v < 0 {
        return error!(EINVAL);
    }
    Ok(Some(v as u64))
}

fn sys_sendfile(
    ctx: &mut SyscallContext<'_>,
    out_fd: Fd,
    in_fd: Fd,
    offset: UserAddr,
    count: usize,
) -> KResult<u64> {
    let inf = ctx.files().get(in_fd.0)?;
    let outf = ctx.files().get(out_fd.0)?;
    if !inf.can_read() || !outf.can_write() || inf.is_path_only() || outf.is_path_only() {
        return error!(EBADF);
    }
    let off = read_off(ctx, offset)?;
    if off.is_some() && is_pipe(&inf) {
        return error!(ESPIPE);
    }
    if outf.flags() & crate::fs::types::oflags::O_APPEND != 0 {
        return error!(EINVAL);
    }
    let (n, inp, _) = pump(ctx, &inf, off, &outf, None, count.min(MAX_RW), true)?;
    if let Some(p) = inp {
        ctx.mm().write_val(offset.0, &(p as i64))?;
    }
    Ok(n as u64)
}

fn sys_copy_file_range(
    ctx: &mut SyscallContext<'_>,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> KResult<u64> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let inf = ctx.files().get(fd_in.0)?;
    let outf = ctx.files().get(fd_out.0)?;
    if !inf.can_read() || !outf.can_write() {
        return error!(EBADF);
    }
    if inf.file_type() == FileType::Directory || outf.file_type() == FileType::Directory {
        return error!(EISDIR);
    }
    if inf.file_type() != FileType::Regular || outf.file_type() != FileType::Regular {
        return error!(EINVAL);
    }
    if outf.flags() & crate::fs::types::oflags::O_APPEND != 0 {
        return error!(EBADF);
    }
    let pin = read_off(ctx, off_in)?;
    let pout = read_off(ctx, off_out)?;
    // The same file with overlapping ranges is refused, as Linux does.
    if Arc::ptr_eq(&inf, &outf) || inf.path.inode().key() == outf.path.inode().key() {
        let a = pin.unwrap_or(inf.pos());
        let b = pout.unwrap_or(outf.pos());
        if a < b + len as u64 && b < a + len as u64 {
            return error!(EINVAL);
        }
    }
    let inp = Some(pin.unwrap_or(inf.pos()));
    let outp = Some(pout.unwrap_or(outf.pos()));
    // generic_copy_file_checks: cut at the limit, EFBIG (and SIGXFSZ)
    // from the limit on whatever the length, even 0.
    let len = match (
        outp,
        outp.and_then(|o| crate::fs::fsize::room(ctx.task, &outf, o)),
    ) {
        (_, Some(0)) => return crate::fs::fsize::efbig(ctx.task),
        (Some(o), _) => crate::fs::fsize::clamp_write(ctx.task, &outf, o, len.min(MAX_RW))?,
        (None, _) => len.min(MAX_RW),
    };
    let (n, ni, no) = pump(ctx, &inf, inp, &outf, outp, len, true)?;
    match pin {
        Some(_) => ctx.mm().write_val(off_in.0, &(ni.unwrap_or(0) as i64))?,
        None => {
            inf.seek(ni.unwrap_or(0) as i64, 0)?;
        }
    }
    match pout {
        Some(_) => ctx.mm().write_val(off_out.0, &(no.unwrap_or(0) as i64))?,
        None => {
            outf.seek(no.unwrap_or(0) as i64, 0)?;
        }
    }
    Ok(n as u64)
}

fn sys_splice(
    ctx: &mut SyscallContext<'_>,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> KResult<u64> {
    if flags & !SPLICE_F_ALL != 0 {
        return error!(EINVAL);
    }
    let inf = ctx.files().get(fd_in.0)?;
    let outf = ctx.files().get(fd_out.0)?;
    splice_check(&inf, !off_in.is_null(), &outf, !off_out.is_null())?;
    let pin = read_off(ctx, off_in)?;
    let pout = read_off(ctx, off_out)?;
    let (n, ni, no) = splice_files(ctx, &inf, pin, &outf, pout, len, flags)?;
    if let Some(p) = ni {
        ctx.mm().write_val(off_in.0, &(p as i64))?;
    }
    if let Some(p) = no {
        ctx.mm().write_val(off_out.0, &(p as i64))?;
    }
    Ok(n)
}

/// splice's checks on its files, in Linux's order: EBADF for a side not
/// open that way, EINVAL unless one side is a pipe, ESPIPE for an offset
/// on a pipe, EINVAL for the same pipe on both sides or a pipe spliced
/// into an O_APPEND file.
pub fn splice_check(inf: &FileRef, has_in: bool, outf: &FileRef, has_out: bool) -> KResult<()> {
    if !inf.can_read() || !outf.can_write() {
        return error!(EBADF);
    }
    if !is_pipe(inf) && !is_pipe(outf) {
        return error!(EINVAL);
    }
    if (is_pipe(inf) && has_in) || (is_pipe(outf) && has_out) {
        return error!(ESPIPE);
    }
    // The two ends of one pipe ("splicing to self would be fun, but...").
    if Arc::ptr_eq(inf, outf) || crate::fs::pipe::same_pipe(inf, outf) {
        return error!(EINVAL);
    }
    // A pipe into an append-only file: Linux refuses, as the offset would
    // not be the file's end.
    if is_pipe(inf) && !is_pipe(outf) && outf.flags() & crate::fs::types::oflags::O_APPEND != 0 {
        return error!(EINVAL);
    }
    Ok(())
}

/// vmsplice(2): user memory into a pipe (a descriptor open for writing)
/// or a pipe's contents into user memory (one open for reading only). The
/// bytes are copied (SPLICE_F_GIFT is a hint Linux may ignore too); in
/// Linux's order: flags (EINVAL), the descriptor (EBADF), the vector
/// (EINVAL, EFAULT), nothing to move (0), then EBADF unless a pipe.
/// SPLICE_F_NONBLOCK makes an empty pipe's read EAGAIN; a full pipe's
/// write follows the descriptor's own O_NONBLOCK.
fn sys_vmsplice(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    iov: UserAddr,
    nr_segs: u64,
    flags: u32,
) -> KResult<u64> {
    if flags & !SPLICE_F_ALL != 0 {
        return error!(EINVAL);
    }
    let f = ctx.files().get(fd.0)?;
    let to_pipe = f.can_write();
    if !to_pipe && !f.can_read() {
        return error!(EBADF);
    }
    let count = i32::try_from(nr_segs).map_err(|_| crate::errno!(EINVAL))?;
    let segs = crate::fs::syscalls::read_iovecs(ctx, iov, count)?;
    if segs.iter().all(|s| s.1 == 0) {
        return Ok(0);
    }
    if !is_pipe(&f) {
        return error!(EBADF);
    }
    if to_pipe {
        crate::fs::syscalls::do_write(ctx, &f, &segs, None)
    } else {
        if flags & SPLICE_F_NONBLOCK != 0
            && f.ops()?
                .bytes_available()
                .is_some_and(|r| r.is_ok_and(|n| n == 0))
        {
            return error!(EAGAIN);
        }
        crate::fs::syscalls::do_read(ctx, &f, &segs, None)
    }
}

/// splice's work once [`splice_check`] passed (also io_uring's
/// IORING_OP_SPLICE): at most one pipe buffer's worth; returns the count
/// and the new explicit offsets.
pub fn splice_files(
    ctx: &mut SyscallContext<'_>,
    inf: &FileRef,
    pin: Option<u64>,
    outf: &FileRef,
    pout: Option<u64>,
    len: usize,
    flags: u32,
) -> KResult<(u64, Option<u64>, Option<u64>)> {
    if flags & SPLICE_F_NONBLOCK != 0
        && is_pipe(inf)
        && inf
            .ops()?
            .bytes_available()
            .is_some_and(|r| r.is_ok_and(|n| n == 0))
    {
        return error!(EAGAIN);
    }
    // One pipe buffer's worth at a time, as a splice moves pipe pages.
    let (n, ni, no) = pump(
        ctx,
        inf,
        pin,
        outf,
        pout,
        len.min(crate::fs::pipe::PIPE_SIZE),
        true,
    )?;
    Ok((n as u64, ni, no))
}
