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

/// What end of file on a console descriptor is, for poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EofKind {
    /// A terminal, /dev/null, a regular file: readable, never hung up.
    Plain,
    /// A pipe whose writers went away: hung up (POLLHUP, not POLLIN).
    Fifo,
    /// A socket whose peer closed: readable and hung up both ways.
    Socket,
}

/// Whether the host's epoll refuses console descriptor `fd` (a regular
/// file, /dev/null or another device without poll support: EPERM from
/// epoll_ctl), so that the guest's console gives the same answer.
pub fn epoll_refuses(fd: i32) -> bool {
    if check_fd(fd).is_err() {
        return false;
    }
    // SAFETY: plain system calls on a fresh epoll descriptor of our own,
    // closed before returning; `fd` is one of ruml's console descriptors.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if ep < 0 {
            return false;
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        let r = libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
        let e = crate::sys::errno();
        libc::close(ep);
        r < 0 && e == libc::EPERM
    }
}

/// What kind of end of file `fd` has (Plain when fstat fails).
pub fn eof_kind(fd: i32) -> EofKind {
    if check_fd(fd).is_err() {
        return EofKind::Plain;
    }
    // SAFETY: st is a plain out-parameter of the right size.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is one of ruml's own console descriptors; st is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return EofKind::Plain;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => EofKind::Fifo,
        libc::S_IFSOCK => EofKind::Socket,
        _ => EofKind::Plain,
    }
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

// ---------------------------------------------------------------------------
// Raw mode: the guest's line discipline does the terminal's work.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

/// Whether host fd 0 is in raw mode (and ORIG holds what to restore).
static RAW: AtomicBool = AtomicBool::new(false);
/// The termios of host fd 0 before raw mode, and the raw one (for SIGCONT).
static mut ORIG: libc::termios = unsafe { std::mem::zeroed() };
static mut RAW_TERMIOS: libc::termios = unsafe { std::mem::zeroed() };
static SETUP: Once = Once::new();
/// Self-pipe written by the SIGWINCH handler: [read end, write end].
static WAKE_R: AtomicI32 = AtomicI32::new(-1);
static WAKE_W: AtomicI32 = AtomicI32::new(-1);

/// Puts host fd 0 in raw mode (cfmakeraw: no host echo, no host signals
/// from ^C/^Z, no output processing) if it is a terminal, and arranges
/// that the original settings come back on every exit path of ruml:
/// normal exit and `std::process::exit` (atexit), a panic that ends
/// ruml (it exits through the same path), and SIGTERM, SIGHUP, SIGINT,
/// SIGQUIT, SIGABRT, SIGSEGV, SIGBUS to ruml (handlers that restore and
/// re-raise). SIGCONT re-applies raw mode; SIGWINCH is reported by
/// [`wait_event`]. Idempotent; false if fd 0 is not a terminal.
pub fn enter_raw_mode() -> bool {
    if !isatty(0) {
        return false;
    }
    let mut ok = RAW.load(Ordering::SeqCst);
    SETUP.call_once(|| {
        // SAFETY: single-threaded setup under Once; the statics are written
        // before RAW is set and only read after.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return;
            }
            ORIG = t;
            let mut r = t;
            libc::cfmakeraw(&mut r);
            r.c_cc[libc::VMIN] = 1;
            r.c_cc[libc::VTIME] = 0;
            RAW_TERMIOS = r;
            let mut fds = [0i32; 2];
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) == 0 {
                WAKE_R.store(fds[0], Ordering::SeqCst);
                WAKE_W.store(fds[1], Ordering::SeqCst);
            }
            libc::atexit(restore_at_exit);
            for sig in [
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGQUIT,
                libc::SIGABRT,
                libc::SIGSEGV,
                libc::SIGBUS,
            ] {
                install(sig, fatal_handler as extern "C" fn(i32) as usize);
            }
            install(libc::SIGCONT, cont_handler as extern "C" fn(i32) as usize);
            install(libc::SIGWINCH, winch_handler as extern "C" fn(i32) as usize);
            if libc::tcsetattr(0, libc::TCSADRAIN, std::ptr::addr_of!(RAW_TERMIOS)) == 0 {
                RAW.store(true, Ordering::SeqCst);
                ok = true;
            }
        }
    });
    ok || RAW.load(Ordering::SeqCst)
}

/// Installs `handler` for `sig` unless something else already handles it.
unsafe fn install(sig: i32, handler: usize) {
    let mut old: libc::sigaction = std::mem::zeroed();
    if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
        return;
    }
    let mut sa: libc::sigaction = std::mem::zeroed();
    sa.sa_sigaction = handler;
    sa.sa_flags = libc::SA_RESTART;
    libc::sigemptyset(&mut sa.sa_mask);
    libc::sigaction(sig, &sa, std::ptr::null_mut());
}

/// Whether ruml put the host terminal in raw mode.
pub fn is_raw() -> bool {
    RAW.load(Ordering::SeqCst)
}

/// Gives host fd 0 its original settings back (async-signal-safe).
pub fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        // SAFETY: ORIG was written before RAW was set.
        unsafe {
            libc::tcsetattr(0, libc::TCSADRAIN, std::ptr::addr_of!(ORIG));
        }
    }
}

extern "C" fn restore_at_exit() {
    restore();
}

extern "C" fn fatal_handler(sig: i32) {
    restore();
    // SAFETY: async-signal-safe calls; the default action ends ruml once
    // the handler returns (the signal is blocked until then).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

extern "C" fn cont_handler(_sig: i32) {
    // Back from a host stop: the host shell may have reset the terminal.
    if RAW.load(Ordering::SeqCst) {
        // SAFETY: RAW_TERMIOS was written before RAW was set.
        unsafe {
            libc::tcsetattr(0, libc::TCSADRAIN, std::ptr::addr_of!(RAW_TERMIOS));
        }
    }
}

extern "C" fn winch_handler(_sig: i32) {
    let w = WAKE_W.load(Ordering::SeqCst);
    if w >= 0 {
        // SAFETY: a one-byte write to our own non-blocking pipe.
        unsafe {
            libc::write(w, b"w".as_ptr().cast(), 1);
        }
    }
}

/// What [`wait_event`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Host fd 0 has input (or end of file / an error: read to find out).
    Input,
    /// The host terminal's window size changed.
    WindowChanged,
}

/// Blocks until host fd 0 is readable or the host window size changed.
pub fn wait_event() -> Event {
    let wr = WAKE_R.load(Ordering::SeqCst);
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wr,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let n = if wr >= 0 { 2 } else { 1 };
        // SAFETY: fds is valid for n entries.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), n, -1) };
        if r < 0 {
            if crate::sys::errno() == libc::EINTR {
                continue;
            }
            return Event::Input;
        }
        if n == 2 && fds[1].revents != 0 {
            let mut b = [0u8; 64];
            // SAFETY: draining our own non-blocking pipe.
            while unsafe { libc::read(wr, b.as_mut_ptr().cast(), b.len()) } > 0 {}
            return Event::WindowChanged;
        }
        if fds[0].revents != 0 {
            return Event::Input;
        }
    }
}
