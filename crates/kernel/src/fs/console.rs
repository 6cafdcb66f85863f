//! /dev/console on the host's terminal (`con0=fd:0,fd:1`).
//!
//! Two modes, chosen at boot ([`setup`]):
//!
//! - **Line discipline** — host fd 0 is a terminal. ruml puts it in raw
//!   mode (ruml_host::console::enter_raw_mode, restored on every exit
//!   path) and the console is a [`Tty`] with the guest's own line
//!   discipline: a host reader thread feeds it every byte typed (so ^C
//!   signals the foreground group even while nobody reads), host SIGWINCH
//!   becomes TIOCSWINSZ on it (and SIGWINCH in the guest), guest output
//!   gets OPOST/ONLCR and goes to host fd 1 (init's fd 2: host fd 2). The
//!   console is init's controlling terminal (session 1, group 1). A guest
//!   descriptor whose host descriptor is not a terminal (`ruml > file`)
//!   stays a plain pass-through, so the guest's isatty() agrees.
//! - **Pass-through** — host fd 0 is not a terminal: bytes pass unchanged
//!   both ways, no echo, no signals. Reads are served by a reader thread
//!   that reads host fd 0 only when a guest asks (so a blocked read can be
//!   interrupted by a signal without losing data), writes go to host fd 1
//!   (init's fd 2: host fd 2), and terminal ioctls are forwarded to the
//!   host descriptor when it is a terminal (ENOTTY otherwise).
//!
//! With `con0=pts` the console is neither: it is a host pty's terminal
//! made by [`crate::fs::vcons`] (line discipline, output through a bounded
//! queue), and init's descriptors 0, 1 and 2 all point at it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use ruml_host::console as host;

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::poll::{self, PollEvents, Waiters};
use crate::fs::pty::TtyFile;
use crate::fs::tty::{
    Kind, Termios, Tty, TCGETS, TCSETS, TCSETSF, TCSETSW, TIOCGWINSZ, TIOCSWINSZ,
};
use crate::fs::vfs::FileOps;
use crate::syscalls::SyscallContext;
use crate::task::Task;

/// The console's terminal in line-discipline mode (None: pass-through).
static CONSOLE_TTY: OnceLock<Option<Arc<Tty>>> = OnceLock::new();

/// Chooses the console's mode (once): with host fd 0 a terminal, enters
/// raw mode, makes the console tty (controlling init's session 1) and
/// starts the host reader thread. Unit tests never touch the host
/// terminal. Returns the console tty, if any.
pub fn setup() -> Option<Arc<Tty>> {
    CONSOLE_TTY
        .get_or_init(|| {
            if cfg!(test) {
                return None;
            }
            if crate::fs::vcons::con0_on_channel() {
                let tty = crate::fs::vcons::terminal(0).ok()?;
                tty.set_controlling(1, 1);
                return Some(tty);
            }
            if !host::enter_raw_mode() {
                return None;
            }
            let ws = host::get_winsize(0).unwrap_or([24, 80, 0, 0]);
            let echo_fd = (0..=2).find(|&fd| fd != 0 && host::isatty(fd)).unwrap_or(0);
            let tty = Tty::new(Kind::Console, Termios::standard(), ws, echo_fd);
            tty.set_controlling(1, 1);
            let t = tty.clone();
            let spawned = std::thread::Builder::new()
                .name("console-in".into())
                .spawn(move || keyboard(t));
            if spawned.is_err() {
                crate::log::warn("cannot start the console reader thread: no console input");
            }
            Some(tty)
        })
        .clone()
}

/// The console tty, when the console has a line discipline.
pub fn console_tty() -> Option<Arc<Tty>> {
    CONSOLE_TTY.get().cloned().flatten()
}

/// The host reader thread of line-discipline mode.
fn keyboard(tty: Arc<Tty>) {
    let mut buf = [0u8; 1024];
    loop {
        match host::wait_event() {
            host::Event::WindowChanged => {
                if let Ok(ws) = host::get_winsize(0) {
                    tty.set_winsize(ws);
                }
            }
            host::Event::Input => match host::read(0, &mut buf) {
                Ok(0) | Err(_) => {
                    tty.hangup();
                    return;
                }
                Ok(n) => tty.receive(&buf[..n]),
            },
        }
    }
}

/// The descriptor `fd` (0, 1, 2) of init.
pub fn for_std_fd(fd: i32) -> Arc<dyn FileOps> {
    let out_fd = if fd == 2 { 2 } else { 1 };
    match setup() {
        Some(tty) if crate::fs::vcons::con0_on_channel() => Arc::new(TtyFile {
            tty,
            out_fd,
            counted: false,
        }),
        Some(tty) if host::isatty(fd) => {
            let out_fd = if fd == 0 { tty_echo_fd() } else { out_fd };
            Arc::new(TtyFile {
                tty,
                out_fd,
                counted: false,
            })
        }
        _ => Arc::new(Console {
            out_fd,
            tty_fd: host::isatty(fd).then_some(fd),
            epoll_refused: host::epoll_refuses(fd),
        }),
    }
}

fn tty_echo_fd() -> i32 {
    (0..=2).find(|&fd| fd != 0 && host::isatty(fd)).unwrap_or(0)
}

/// /dev/console opened by name.
pub fn opened() -> Arc<dyn FileOps> {
    match setup() {
        Some(tty) => Arc::new(TtyFile {
            tty,
            out_fd: tty_echo_fd(),
            counted: false,
        }),
        None => Arc::new(Console {
            out_fd: 1,
            tty_fd: (0..=2).find(|&fd| host::isatty(fd)),
            epoll_refused: false,
        }),
    }
}

/// /dev/tty: the caller's controlling terminal; ENXIO without one.
pub fn open_ctty(tgid: i32, flags: u32) -> KResult<Arc<dyn FileOps>> {
    let tty = crate::fs::tty::ctty_of(tgid).ok_or(crate::errno!(ENXIO))?;
    match tty.kind {
        Kind::Console | Kind::Vc(_) => Ok(Arc::new(TtyFile {
            tty,
            out_fd: tty_echo_fd(),
            counted: false,
        })),
        Kind::PtySlave(_) => {
            crate::fs::pty::open_slave(&tty, flags | crate::fs::types::oflags::O_NOCTTY, tgid)
        }
    }
}

// ---------------------------------------------------------------------------
// Pass-through mode

/// Host fd 0 read on demand by a reader thread.
struct Pump {
    st: Mutex<PumpState>,
    cv: Condvar,
    waiters: Waiters,
}

#[derive(Default)]
struct PumpState {
    buf: VecDeque<u8>,
    /// A read returned end of file (consumed by one guest read).
    eof: bool,
    err: Option<i32>,
    /// Bytes a guest wants (0: nobody waits).
    demand: usize,
    started: bool,
}

fn pump() -> &'static Pump {
    static PUMP: OnceLock<Pump> = OnceLock::new();
    PUMP.get_or_init(|| Pump {
        st: Mutex::new(PumpState::default()),
        cv: Condvar::new(),
        waiters: Waiters::new(),
    })
}

impl Pump {
    fn lock(&self) -> MutexGuard<'_, PumpState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the thread for up to `n` bytes (starting it on first use).
    fn demand(&'static self, st: &mut PumpState, n: usize) {
        st.demand = st.demand.max(n.clamp(1, 65536));
        if !st.started {
            st.started = true;
            let ok = std::thread::Builder::new()
                .name("console-pump".into())
                .spawn(move || self.run())
                .is_ok();
            if !ok {
                st.started = false;
                st.err = Some(libc_eio());
            }
        }
        self.cv.notify_all();
    }

    fn run(&self) {
        loop {
            let want = {
                let mut st = self.lock();
                while st.demand == 0 {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                st.demand
            };
            let mut buf = vec![0u8; want];
            let r = host::read(0, &mut buf);
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

    fn ready(st: &PumpState) -> bool {
        !st.buf.is_empty() || st.eof || st.err.is_some()
    }

    fn read(
        &'static self,
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

fn libc_eio() -> i32 {
    crate::errno::Errno::EIO.as_i32()
}

/// An open console in pass-through mode.
pub struct Console {
    /// Host descriptor written to (1 or 2).
    out_fd: i32,
    /// Host descriptor whose terminal the ioctls address, if it is one.
    tty_fd: Option<i32>,
    /// The host descriptor init's descriptor stands for is one Linux's
    /// epoll refuses (a regular file, /dev/null): epoll_ctl gives EPERM
    /// for it as the same program run natively gets.
    pub epoll_refused: bool,
}

impl Console {
    fn tty(&self) -> KResult<i32> {
        self.tty_fd.ok_or(crate::errno!(ENOTTY))
    }
}

impl FileOps for Console {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        pump().read(buf, f.nonblocking(), task)
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        host::write(self.out_fd, buf).map_err(Errno::from_host)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        let buffered = pump().lock().buf.len();
        Some(
            host::bytes_available(0)
                .map(|n| n.max(0) as usize + buffered)
                .map_err(Errno::from_host),
        )
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let p = pump();
        let mut st = p.lock();
        if Pump::ready(&st) {
            // End of file polls as Linux's poll of host fd 0 would: a
            // pipe hung up (POLLHUP alone), a socket readable and hung
            // up, /dev/null or a file readable.
            let input = if st.eof && st.buf.is_empty() {
                match host::eof_kind(0) {
                    host::EofKind::Fifo => poll::POLLHUP,
                    host::EofKind::Socket => poll::READABLE | poll::POLLRDHUP | poll::POLLHUP,
                    host::EofKind::Plain => poll::READABLE,
                }
            } else {
                poll::READABLE
            };
            input | poll::WRITABLE
        } else {
            p.demand(&mut st, 4096);
            poll::WRITABLE
        }
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&pump().waiters)
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        let mm = ctx.mm();
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
                mm.write_val(arg, &w)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let fd = self.tty()?;
                let w: [u16; 4] = mm.read_val(arg)?;
                host::set_winsize(fd, &w).map_err(Errno::from_host)?;
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }
}
