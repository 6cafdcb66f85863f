//! /dev/console (and, for now, /dev/tty): the host's stdin/stdout.
//!
//! Reads come from host fd 0 (blocking the calling host thread), writes go
//! to host fd 1 — or fd 2 for init's standard error. Terminal ioctls are
//! forwarded to the host terminal behind the descriptor when it is one, and
//! give ENOTTY otherwise, so the guest's isatty() agrees with the host's.
//! TODO(tty): raw host mode + the guest's own line discipline, job control.

use std::sync::Arc;

use ruml_host::console as host;

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::vfs::FileOps;
use crate::mm::Mm;

pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;

/// An open console.
pub struct Console {
    /// Host descriptor written to (1 or 2).
    out_fd: i32,
    /// Host descriptor whose terminal the ioctls address, if it is one.
    tty_fd: Option<i32>,
}

impl Console {
    /// The console behind init's descriptor `fd` (0, 1, 2): reads host fd
    /// 0, writes host fd 1 (2 for fd 2), terminal = host fd `fd`.
    pub fn for_std_fd(fd: i32) -> Arc<Console> {
        let out_fd = if fd == 2 { 2 } else { 1 };
        Arc::new(Console { out_fd, tty_fd: host::isatty(fd).then_some(fd) })
    }

    /// The console opened by name: the first of host fds 0, 1, 2 that is a
    /// terminal.
    pub fn opened() -> Arc<Console> {
        Arc::new(Console { out_fd: 1, tty_fd: (0..=2).find(|&fd| host::isatty(fd)) })
    }

    fn tty(&self) -> KResult<i32> {
        self.tty_fd.ok_or(crate::errno!(ENOTTY))
    }
}

impl FileOps for Console {
    fn read(&self, _f: &OpenFile, _off: u64, buf: &mut [u8]) -> KResult<usize> {
        // TODO(signals): a blocked read cannot be interrupted yet.
        host::read(0, buf).map_err(Errno::from_host)
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        host::write(self.out_fd, buf).map_err(Errno::from_host)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        Some(host::bytes_available(0).map(|n| n.max(0) as usize).map_err(Errno::from_host))
    }
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, mm: &Mm) -> KResult<u64> {
        match cmd {
            TCGETS => {
                let t = host::tcgets(self.tty()?).map_err(Errno::from_host)?;
                mm.write_bytes(arg, &t)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                let fd = self.tty()?;
                let mut t: host::Termios = [0; 36];
                mm.read_bytes(arg, &mut t)?;
                let when = match cmd {
                    TCSETS => host::SetWhen::Now,
                    TCSETSW => host::SetWhen::Drain,
                    _ => host::SetWhen::Flush,
                };
                host::tcsets(fd, when, &t).map_err(Errno::from_host)?;
                Ok(0)
            }
            TIOCGWINSZ => {
                let w = host::get_winsize(self.tty()?).map_err(Errno::from_host)?;
                let mut b = [0u8; 8];
                for (i, v) in w.iter().enumerate() {
                    b[i * 2..i * 2 + 2].copy_from_slice(&v.to_ne_bytes());
                }
                mm.write_bytes(arg, &b)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let fd = self.tty()?;
                let mut b = [0u8; 8];
                mm.read_bytes(arg, &mut b)?;
                let mut w: host::WinSize = [0; 4];
                for (i, v) in w.iter_mut().enumerate() {
                    *v = u16::from_ne_bytes([b[i * 2], b[i * 2 + 1]]);
                }
                host::set_winsize(fd, &w).map_err(Errno::from_host)?;
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }
}
