//! Host descriptors handed to the kernel from outside (the stdio of a
//! process `ruml oci exec` starts: conmon's pipes, a terminal). Unlike
//! [`crate::console`], which touches only ruml's own fds 0-2, a
//! [`PassedFd`] owns its descriptor, so only descriptors given to ruml for
//! a guest can be read, written or asked terminal ioctls through it.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::console::{SetWhen, Termios, WinSize};

/// An owned host descriptor a guest file reads and writes.
pub struct PassedFd(OwnedFd);

impl PassedFd {
    pub fn new(fd: OwnedFd) -> PassedFd {
        PassedFd(fd)
    }

    fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// read(2). Blocks the calling host thread.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let r = crate::sys::retry(|| {
            // SAFETY: buf is writable for its length; the fd is ours.
            unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) as libc::c_long }
        });
        if r < 0 {
            Err(crate::sys::errno())
        } else {
            Ok(r as usize)
        }
    }

    /// write(2).
    pub fn write(&self, buf: &[u8]) -> Result<usize, i32> {
        let r = crate::sys::retry(|| {
            // SAFETY: buf is readable for its length; the fd is ours.
            unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) as libc::c_long }
        });
        if r < 0 {
            Err(crate::sys::errno())
        } else {
            Ok(r as usize)
        }
    }

    pub fn isatty(&self) -> bool {
        // SAFETY: plain call on our fd.
        unsafe { libc::isatty(self.raw()) == 1 }
    }

    fn ioctl_ptr(&self, req: libc::c_ulong, p: *mut libc::c_void) -> Result<(), i32> {
        // SAFETY: p points to a buffer of the size the request uses.
        let r = crate::sys::retry(|| unsafe { libc::ioctl(self.raw(), req, p) as libc::c_long });
        if r < 0 {
            Err(crate::sys::errno())
        } else {
            Ok(())
        }
    }

    pub fn tcgets(&self) -> Result<Termios, i32> {
        let mut t: Termios = [0; 36];
        self.ioctl_ptr(libc::TCGETS, t.as_mut_ptr().cast())?;
        Ok(t)
    }

    pub fn tcsets(&self, when: SetWhen, t: &Termios) -> Result<(), i32> {
        let req = match when {
            SetWhen::Now => libc::TCSETS,
            SetWhen::Drain => libc::TCSETSW,
            SetWhen::Flush => libc::TCSETSF,
        };
        let mut copy = *t;
        self.ioctl_ptr(req, copy.as_mut_ptr().cast())
    }

    pub fn get_winsize(&self) -> Result<WinSize, i32> {
        let mut w: WinSize = [0; 4];
        self.ioctl_ptr(libc::TIOCGWINSZ, w.as_mut_ptr().cast())?;
        Ok(w)
    }

    pub fn set_winsize(&self, w: &WinSize) -> Result<(), i32> {
        let mut copy = *w;
        self.ioctl_ptr(libc::TIOCSWINSZ, copy.as_mut_ptr().cast())
    }
}
