//! The host's terminal: ruml's own fds 0, 1 and 2, which back the guest's
//! /dev/console (`con0=fd:0,fd:1`). Only these three descriptors are ever
//! touched here; anything else gives EBADF.
//!
//! Terminal ioctls use the kernel's `struct termios` (36 bytes: four u32
//! flags, c_line, c_cc[19]) — the layout TCGETS/TCSETS use on x86_64, which
//! is the guest's ABI too, so the bytes pass through unchanged.

/// The kernel `struct termios` as raw bytes.
pub type Termios = [u8; 36];
/// `struct winsize`: ws_row, ws_col, ws_xpixel, ws_ypixel.
pub type WinSize = [u16; 4];

fn check_fd(fd: i32) -> Result<(), i32> {
    if (0..=2).contains(&fd) {
        Ok(())
    } else {
        Err(libc::EBADF)
    }
}

/// read(2) from a console descriptor. Blocks the calling host thread.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, i32> {
    check_fd(fd)?;
    let r = crate::sys::retry(|| {
        // SAFETY: buf is writable for its length.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_long }
    });
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok(r as usize)
    }
}

/// write(2) to a console descriptor.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, i32> {
    check_fd(fd)?;
    let r = crate::sys::retry(|| {
        // SAFETY: buf is readable for its length.
        unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) as libc::c_long }
    });
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok(r as usize)
    }
}

/// Whether the console descriptor is a terminal.
pub fn isatty(fd: i32) -> bool {
    // SAFETY: plain call.
    check_fd(fd).is_ok() && unsafe { libc::isatty(fd) } == 1
}

fn ioctl_ptr(fd: i32, req: libc::c_ulong, p: *mut libc::c_void) -> Result<(), i32> {
    check_fd(fd)?;
    // SAFETY: p points to a buffer of the size the request uses (callers).
    let r = crate::sys::retry(|| unsafe { libc::ioctl(fd, req, p) as libc::c_long });
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok(())
    }
}

/// TCGETS.
pub fn tcgets(fd: i32) -> Result<Termios, i32> {
    let mut t: Termios = [0; 36];
    ioctl_ptr(fd, libc::TCGETS, t.as_mut_ptr().cast())?;
    Ok(t)
}

/// When a TCSETS* takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetWhen {
    /// TCSETS: now.
    Now,
    /// TCSETSW: after output drains.
    Drain,
    /// TCSETSF: after output drains, discarding pending input.
    Flush,
}

/// TCSETS / TCSETSW / TCSETSF.
pub fn tcsets(fd: i32, when: SetWhen, t: &Termios) -> Result<(), i32> {
    let req = match when {
        SetWhen::Now => libc::TCSETS,
        SetWhen::Drain => libc::TCSETSW,
        SetWhen::Flush => libc::TCSETSF,
    };
    let mut copy = *t;
    ioctl_ptr(fd, req, copy.as_mut_ptr().cast())
}

/// TIOCGWINSZ.
pub fn get_winsize(fd: i32) -> Result<WinSize, i32> {
    let mut w: WinSize = [0; 4];
    ioctl_ptr(fd, libc::TIOCGWINSZ, w.as_mut_ptr().cast())?;
    Ok(w)
}

/// TIOCSWINSZ.
pub fn set_winsize(fd: i32, w: &WinSize) -> Result<(), i32> {
    let mut copy = *w;
    ioctl_ptr(fd, libc::TIOCSWINSZ, copy.as_mut_ptr().cast())
}

/// FIONREAD: bytes waiting to be read.
pub fn bytes_available(fd: i32) -> Result<i32, i32> {
    let mut n: libc::c_int = 0;
    ioctl_ptr(fd, libc::FIONREAD, (&mut n as *mut libc::c_int).cast())?;
    Ok(n)
}
