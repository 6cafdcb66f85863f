//! A guest descriptor on a host descriptor handed to the kernel from
//! outside: the stdin/stdout/stderr of a process started by `ruml oci
//! exec` (conmon's or the shim's pipes, or an exec terminal). Like the
//! console's pass-through mode: bytes pass unchanged both ways, reads are
//! served by a reader thread that reads the host descriptor only when a
//! guest asks (so a blocked read stays interruptible by signals), writes
//! go straight to the host descriptor, and terminal ioctls are forwarded
//! to it when it is a terminal (so the guest's isatty() agrees).
//!
//! Lifetime: the host descriptor is owned here (an `Arc<PassedFd>` shared
//! with the reader thread). When the last guest file on it is closed the
//! reader thread is told to stop; it ends at once if idle, or after the
//! host read it is blocked in returns.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ruml_host::console as host;
use ruml_host::passed::PassedFd;

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{self, PollEvents, Waiters};
use crate::fs::tty::{TCGETS, TCSETS, TCSETSF, TCSETSW, TIOCGWINSZ, TIOCSWINSZ};
use crate::fs::vfs::FileOps;
use crate::syscalls::SyscallContext;
use crate::task::Task;

#[derive(Default)]
struct PumpState {
    buf: VecDeque<u8>,
    eof: bool,
    err: Option<i32>,
    /// Bytes a guest wants (0: nobody waits).
    demand: usize,
    started: bool,
    /// The guest file is gone: the reader thread ends.
    closed: bool,
}

/// The reader side of one host descriptor.
struct Pump {
    fd: Arc<PassedFd>,
    st: Mutex<PumpState>,
    cv: Condvar,
    waiters: Waiters,
}

impl Pump {
    fn lock(&self) -> MutexGuard<'_, PumpState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ready(st: &PumpState) -> bool {
        !st.buf.is_empty() || st.eof || st.err.is_some()
    }

    /// Asks the reader thread for up to `n` bytes (starting it first).
    fn demand(self: &Arc<Self>, st: &mut PumpState, n: usize) {
        st.demand = st.demand.max(n.clamp(1, 65536));
        if !st.started {
            st.started = true;
            let me = self.clone();
            if std::thread::Builder::new()
                .name("hostfd-pump".into())
                .spawn(move || me.run())
                .is_err()
            {
                st.started = false;
                st.err = Some(Errno::EIO.as_i32());
            }
        }
        self.cv.notify_all();
    }

    fn run(&self) {
        loop {
            let want = {
                let mut st = self.lock();
                while st.demand == 0 && !st.closed {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.closed {
                    return;
                }
                st.demand
            };
            let mut buf = vec![0u8; want];
            let r = self.fd.read(&mut buf);
            {
                let mut st = self.lock();
                match r {
                    Ok(0) => st.eof = true,
                    Ok(n) => st.buf.extend(&buf[..n]),
                    Err(e) => st.err = Some(e),
                }
                st.demand = 0;
            }
            self.waiters.wake_all();
        }
    }

    fn read(
        self: &Arc<Self>,
        buf: &mut [u8],
        nonblock: bool,
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut st = self.lock();
                if !st.buf.is_empty() {
                    let n = st.buf.len().min(buf.len());
                    for (d, s) in buf.iter_mut().zip(st.buf.drain(..n)) {
                        *d = s;
                    }
                    return Ok(n);
                }
                if st.eof {
                    st.eof = false;
                    return Ok(0);
                }
                if let Some(e) = st.err.take() {
                    return Err(Errno::from_host(e));
                }
                self.demand(&mut st, buf.len());
                if nonblock {
                    return error!(EAGAIN);
                }
            }
            self.waiters
                .wait(task, None, || Self::ready(&self.lock()))?;
        }
    }
}

/// An open host descriptor (see the module doc).
pub struct HostFdFile {
    pump: Arc<Pump>,
    tty: bool,
}

impl Drop for HostFdFile {
    fn drop(&mut self) {
        self.pump.lock().closed = true;
        self.pump.cv.notify_all();
    }
}

impl HostFdFile {
    fn fd(&self) -> &PassedFd {
        &self.pump.fd
    }

    fn tty_fd(&self) -> KResult<&PassedFd> {
        if self.tty {
            Ok(self.fd())
        } else {
            error!(ENOTTY)
        }
    }
}

/// A guest file on host descriptor `fd` (owned from now on).
pub fn open(fd: OwnedFd) -> FileRef {
    let fd = PassedFd::new(fd);
    let tty = fd.isatty();
    let ops = HostFdFile {
        pump: Arc::new(Pump {
            fd: Arc::new(fd),
            st: Mutex::new(PumpState::default()),
            cv: Condvar::new(),
            waiters: Waiters::new(),
        }),
        tty,
    };
    crate::fs::anon::anon_file("hostfd", Arc::new(ops), crate::fs::types::oflags::O_RDWR)
}

impl FileOps for HostFdFile {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.pump.read(buf, f.nonblocking(), task)
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        self.fd().write(buf).map_err(Errno::from_host)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let mut st = self.pump.lock();
        if Pump::ready(&st) {
            poll::READABLE | poll::WRITABLE
        } else {
            self.pump.demand(&mut st, 4096);
            poll::WRITABLE
        }
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.pump.waiters)
    }
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        let mm = ctx.mm();
        match cmd {
            TCGETS => {
                let t = self.tty_fd()?.tcgets().map_err(Errno::from_host)?;
                mm.write_bytes(arg, &t)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                let fd = self.tty_fd()?;
                let mut t: host::Termios = [0; 36];
                mm.read_bytes(arg, &mut t)?;
                let when = match cmd {
                    TCSETS => host::SetWhen::Now,
                    TCSETSW => host::SetWhen::Drain,
                    _ => host::SetWhen::Flush,
                };
                fd.tcsets(when, &t).map_err(Errno::from_host)?;
                Ok(0)
            }
            TIOCGWINSZ => {
                let w = self.tty_fd()?.get_winsize().map_err(Errno::from_host)?;
                mm.write_val(arg, &w)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let fd = self.tty_fd()?;
                let w: [u16; 4] = mm.read_val(arg)?;
                fd.set_winsize(&w).map_err(Errno::from_host)?;
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }
}
