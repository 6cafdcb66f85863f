//! Terminals: the [`Tty`] object and its line discipline (Linux's n_tty),
//! shared by the console and the pseudo-terminal slaves, plus controlling
//! terminals and job control.
//!
//! A `Tty` holds the termios, the window size, the input side (the
//! canonical line being edited, completed lines, or the raw queue), the
//! session it controls and its foreground process group. Input arrives
//! through [`Tty::receive`] (the host reader thread of the console, or a
//! write to a pty master) and is processed as n_tty does: ICRNL/INLCR/
//! IGNCR/ISTRIP, IXON flow control, ISIG (VINTR, VQUIT, VSUSP signal the
//! foreground process group, flushing unless NOFLSH), canonical editing
//! (VERASE, VKILL, VWERASE, VEOF, VLNEXT, VREPRINT, VEOL/VEOL2) and echo
//! (ECHO, ECHOE, ECHOK, ECHOKE, ECHONL, ECHOCTL). Output (guest writes and
//! echo) goes through OPOST/ONLCR/OCRNL/ONOCR/ONLRET and then to the
//! tty's sink: a host descriptor for the console, the master's queue for
//! a pty.
//!
//! Controlling terminals: a process's controlling terminal is the tty
//! whose session is the process's session (a session has at most one, a
//! tty at most one session), so fork, setsid and exit need no tty
//! bookkeeping here; [`session_leader_exited`] hangs the session up.
//! Partial: TIOCNOTTY by a non-leader does not detach only that process.
//!
//! Locking: one mutex per tty (`st`); host writes of the console happen
//! under it (so echo and output keep their order). Signals are sent after
//! the lock is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::poll::{self, PollEvents, Waiters};
use crate::mm::Mm;
use crate::signal::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH};
use crate::task::Task;

// ---------------------------------------------------------------------------
// termios

pub mod flags {
    // c_iflag
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IUCLC: u32 = 0o1000;
    pub const IXON: u32 = 0o2000;
    pub const IXANY: u32 = 0o4000;
    pub const IMAXBEL: u32 = 0o20000;
    pub const IUTF8: u32 = 0o40000;
    // c_oflag
    pub const OPOST: u32 = 0o1;
    pub const OLCUC: u32 = 0o2;
    pub const ONLCR: u32 = 0o4;
    pub const OCRNL: u32 = 0o10;
    pub const ONOCR: u32 = 0o20;
    pub const ONLRET: u32 = 0o40;
    // c_cflag
    pub const B38400: u32 = 0o17;
    pub const CS8: u32 = 0o60;
    pub const CREAD: u32 = 0o200;
    pub const HUPCL: u32 = 0o2000;
    // c_lflag
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const TOSTOP: u32 = 0o400;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOPRT: u32 = 0o2000;
    pub const ECHOKE: u32 = 0o4000;
    pub const FLUSHO: u32 = 0o10000;
    pub const PENDIN: u32 = 0o40000;
    pub const IEXTEN: u32 = 0o100000;
    // c_cc indices
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VDISCARD: usize = 13;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
    pub const VEOL2: usize = 16;
    pub const NCCS: usize = 19;
}
use flags::*;

/// The kernel's `struct termios` (TCGETS/TCSETS: 36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

/// Linux's INIT_C_CC.
const INIT_CC: [u8; NCCS] = [
    3, 0o34, 0o177, 0o25, 4, 0, 1, 0, 0o21, 0o23, 0o32, 0, 0o22, 0o17, 0o27, 0o26, 0, 0, 0,
];

impl Termios {
    /// tty_std_termios.
    pub fn standard() -> Termios {
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD | HUPCL,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: INIT_CC,
        }
    }
    /// A pty slave's initial termios (no HUPCL, as Linux's pts driver).
    pub fn pty_slave() -> Termios {
        Termios {
            cflag: B38400 | CS8 | CREAD,
            ..Termios::standard()
        }
    }
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&self.iflag.to_ne_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_ne_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_ne_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_ne_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }
    pub fn from_bytes(b: &[u8; 36]) -> Termios {
        let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..36]);
        Termios {
            iflag: w(0),
            oflag: w(4),
            cflag: w(8),
            lflag: w(12),
            line: b[16],
            cc,
        }
    }
    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }
    fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }
    /// Whether `c` is the (enabled: non-zero) special character `idx`.
    fn is(&self, c: u8, idx: usize) -> bool {
        let v = self.cc[idx];
        v != 0 && c == v
    }
}

// ioctl numbers
pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TCSBRK: u32 = 0x5409;
pub const TCXONC: u32 = 0x540A;
pub const TCFLSH: u32 = 0x540B;
pub const TIOCEXCL: u32 = 0x540C;
pub const TIOCNXCL: u32 = 0x540D;
pub const TIOCSCTTY: u32 = 0x540E;
pub const TIOCGPGRP: u32 = 0x540F;
pub const TIOCSPGRP: u32 = 0x5410;
pub const TIOCOUTQ: u32 = 0x5411;
pub const TIOCSTI: u32 = 0x5412;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;
pub const TIOCNOTTY: u32 = 0x5422;
pub const TIOCSETD: u32 = 0x5423;
pub const TIOCGETD: u32 = 0x5424;
pub const TCSBRKP: u32 = 0x5425;
pub const TIOCGSID: u32 = 0x5429;
pub const TCGETS2: u32 = 0x802C_542A;
pub const TCSETS2: u32 = 0x402C_542B;
pub const TCSETSW2: u32 = 0x402C_542C;
pub const TCSETSF2: u32 = 0x402C_542D;
pub const TIOCGDEV: u32 = 0x8004_5432;
pub const TIOCGEXCL: u32 = 0x8004_5440;

/// Bytes of input a tty holds (N_TTY_BUF_SIZE).
pub const INPUT_MAX: usize = 4096;
/// Bytes of output a pty slave queues for its master before writers block.
pub const OUTPUT_MAX: usize = 65536;

// ---------------------------------------------------------------------------
// The terminal object

/// Which terminal this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The console: output to host descriptors, or to its channel.
    Console,
    /// Virtual console N (/dev/ttyN, N >= 1): output to its channel.
    Vc(u32),
    /// The slave of pty N: output to the master's queue.
    PtySlave(u32),
}

/// Mutable state of a tty; see the module doc.
struct State {
    t: Termios,
    ws: [u16; 4],
    /// ICANON: the line being edited.
    edit: Vec<u8>,
    /// ICANON: completed lines (with their terminator; an empty line is
    /// an end of file).
    lines: VecDeque<Vec<u8>>,
    /// Bytes of the front line already read.
    line_pos: usize,
    /// Non-canonical input.
    raw: VecDeque<u8>,
    /// The next character is literal (VLNEXT).
    lnext: bool,
    /// Output column (for tab erasure).
    column: usize,
    /// Column where the line being edited began.
    canon_column: usize,
    /// Output stopped by VSTOP (IXON) or TCOOFF.
    stopped: bool,
    /// Session controlled (0: none) and foreground process group.
    session: i32,
    pgrp: i32,
    /// Hung up: reads give end of file, writes EIO.
    hung_up: bool,
    /// pty: output waiting for the master.
    to_master: VecDeque<u8>,
    /// pty: the master is open.
    master_open: bool,
    /// pty: slave descriptions open.
    slave_opens: usize,
    /// pty: the slave side was closed (master reads EIO once drained).
    other_closed: bool,
    /// pty: locked (TIOCSPTLCK); the slave cannot be opened.
    locked: bool,
    /// The console's host descriptor for echo.
    echo_fd: i32,
    /// A write(2) is in progress: it owns the output until it returns,
    /// as Linux's tty atomic_write_lock, so that the bytes of two
    /// callers' writes never interleave (a write that waits for room
    /// part-way keeps the output).
    writing: bool,
    /// Writers waiting for `writing` to clear (woken when it does).
    writers_waiting: usize,
}

/// The output of a terminal owned by one write(2) until dropped.
struct OutputOwner<'a>(&'a Tty);

impl Drop for OutputOwner<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.writing = false;
        let wake = st.writers_waiting > 0;
        drop(st);
        if wake {
            self.0.waiters.wake_all();
        }
    }
}

/// A terminal; see the module doc.
pub struct Tty {
    pub kind: Kind,
    /// Where a console's output goes when it is not a host descriptor
    /// (`pts`, /dev/ttyN): a bounded queue that never blocks the caller.
    sink: Option<Arc<ruml_host::conchan::Channel>>,
    st: Mutex<State>,
    /// Woken on input, hangup, output space, pgrp or termios changes.
    pub waiters: Waiters,
    /// pty: woken when output for the master appears or input space frees.
    pub master_waiters: Waiters,
}

/// Signals to send once the tty lock is released.
#[derive(Default)]
struct Pending {
    sigs: Vec<(i32, i32)>,
}

impl Pending {
    fn send(self) {
        for (pgrp, sig) in self.sigs {
            if pgrp > 0 {
                jobs::send_to_pgrp(pgrp, sig);
            }
        }
    }
}

fn registry() -> MutexGuard<'static, Vec<Weak<Tty>>> {
    static TTYS: Mutex<Vec<Weak<Tty>>> = Mutex::new(Vec::new());
    TTYS.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl Tty {
    /// A new terminal, registered for controlling-terminal lookups.
    pub fn new(kind: Kind, t: Termios, ws: [u16; 4], echo_fd: i32) -> Arc<Tty> {
        Self::with_sink(kind, t, ws, echo_fd, None)
    }

    /// A console terminal whose output goes to host channel `chan`
    /// (drained by the channel's writer thread, which wakes this tty's
    /// writers as room appears).
    pub fn on_channel(
        kind: Kind,
        t: Termios,
        ws: [u16; 4],
        chan: Arc<ruml_host::conchan::Channel>,
    ) -> Arc<Tty> {
        let tty = Self::with_sink(kind, t, ws, -1, Some(chan.clone()));
        let weak = Arc::downgrade(&tty);
        chan.on_space(Box::new(move || {
            if let Some(t) = weak.upgrade() {
                t.waiters.wake_all();
            }
        }));
        tty
    }

    fn with_sink(
        kind: Kind,
        t: Termios,
        ws: [u16; 4],
        echo_fd: i32,
        sink: Option<Arc<ruml_host::conchan::Channel>>,
    ) -> Arc<Tty> {
        let tty = Arc::new(Tty {
            kind,
            sink,
            st: Mutex::new(State {
                t,
                ws,
                edit: Vec::new(),
                lines: VecDeque::new(),
                line_pos: 0,
                raw: VecDeque::new(),
                lnext: false,
                column: 0,
                canon_column: 0,
                stopped: false,
                session: 0,
                pgrp: 0,
                hung_up: false,
                to_master: VecDeque::new(),
                master_open: matches!(kind, Kind::PtySlave(_)),
                slave_opens: 0,
                other_closed: false,
                locked: matches!(kind, Kind::PtySlave(_)),
                echo_fd,
                writing: false,
                writers_waiting: 0,
            }),
            waiters: Waiters::new(),
            master_waiters: Waiters::new(),
        });
        let mut reg = registry();
        reg.retain(|w| w.strong_count() > 0);
        reg.push(Arc::downgrade(&tty));
        tty
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        self.waiters.wake_all();
        self.master_waiters.wake_all();
    }

    /// The device number (5:1 for the console, 136:N for pts N).
    pub fn rdev(&self) -> (u32, u32) {
        match self.kind {
            Kind::Console => (5, 1),
            Kind::Vc(n) => (4, n),
            Kind::PtySlave(n) => (136 + n / 256, n % 256),
        }
    }

    /// (session, foreground pgrp).
    pub fn session_pgrp(&self) -> (i32, i32) {
        let st = self.lock();
        (st.session, st.pgrp)
    }

    /// Makes this tty control `sid` with foreground group `pgrp` (boot:
    /// the console for init).
    pub fn set_controlling(&self, sid: i32, pgrp: i32) {
        let mut st = self.lock();
        st.session = sid;
        st.pgrp = pgrp;
    }

    // -- output ------------------------------------------------------------

    /// Output processing (OPOST) of `data` into `out`, tracking the column.
    fn process_output(st: &mut State, data: &[u8], out: &mut Vec<u8>) {
        let t = st.t;
        if !t.o(OPOST) {
            out.extend_from_slice(data);
            return;
        }
        for &c in data {
            let mut c = c;
            if t.o(OLCUC) && c.is_ascii_lowercase() {
                c = c.to_ascii_uppercase();
            }
            match c {
                b'\n' => {
                    if t.o(ONLRET) {
                        st.column = 0;
                    }
                    if t.o(ONLCR) {
                        st.column = 0;
                        st.canon_column = 0;
                        out.extend_from_slice(b"\r\n");
                        continue;
                    }
                    st.canon_column = st.column;
                }
                b'\r' => {
                    if t.o(ONOCR) && st.column == 0 {
                        continue;
                    }
                    if t.o(OCRNL) {
                        c = b'\n';
                        if t.o(ONLRET) {
                            st.column = 0;
                            st.canon_column = 0;
                        }
                    } else {
                        st.column = 0;
                        st.canon_column = 0;
                    }
                }
                b'\t' => st.column = (st.column | 7) + 1,
                8 => st.column = st.column.saturating_sub(1),
                c if !is_ctl(c) && (c & 0xc0) != 0x80 => st.column += 1,
                _ => {}
            }
            out.push(c);
        }
    }

    /// Hands processed bytes to the sink. Console: a host write to `fd`
    /// (under the lock); pty: the master's queue (the caller checked room;
    /// echo beyond the limit is dropped as Linux drops it).
    fn emit(&self, st: &mut State, bytes: &[u8], fd: i32) {
        if bytes.is_empty() {
            return;
        }
        if let Some(chan) = &self.sink {
            // Beyond the queue's room (echo only: writers checked), dropped.
            chan.write(bytes);
            return;
        }
        match self.kind {
            Kind::Console | Kind::Vc(_) => {
                let mut done = 0;
                while done < bytes.len() {
                    match ruml_host::console::write(fd, &bytes[done..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => done += n,
                    }
                }
            }
            Kind::PtySlave(_) => {
                let room = OUTPUT_MAX.saturating_sub(st.to_master.len()) + 1024;
                st.to_master.extend(&bytes[..bytes.len().min(room)]);
                self.master_waiters.wake_all();
            }
        }
    }

    /// Echoes bytes (already in echo form) with output processing.
    fn echo_bytes(&self, st: &mut State, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + 4);
        Self::process_output(st, bytes, &mut out);
        let fd = st.echo_fd;
        self.emit(st, &out, fd);
    }

    /// Echoes one input character as n_tty's echo_char: control
    /// characters as ^X with ECHOCTL (except TAB and NL).
    fn echo_char(&self, st: &mut State, c: u8) {
        if st.t.l(ECHOCTL) && is_ctl(c) && c != b'\t' && c != b'\n' {
            self.echo_bytes(st, &[b'^', c ^ 0o100]);
        } else {
            self.echo_bytes(st, &[c]);
        }
    }

    // -- input -------------------------------------------------------------

    fn input_len(st: &State) -> usize {
        st.raw.len() + st.edit.len() + st.lines.iter().map(|l| l.len()).sum::<usize>() - st.line_pos
    }

    /// Whether a reader would find something (or end of file).
    fn readable(st: &State) -> bool {
        if st.hung_up {
            return true;
        }
        if st.t.l(ICANON) {
            !st.lines.is_empty()
        } else {
            !st.raw.is_empty()
        }
    }

    fn flush_input(st: &mut State) {
        st.edit.clear();
        st.lines.clear();
        st.line_pos = 0;
        st.raw.clear();
        st.lnext = false;
    }

    /// Input from the device side (the console's keyboard, TIOCSTI):
    /// what does not fit is dropped, as Linux drops it.
    pub fn receive(&self, data: &[u8]) {
        let mut pend = Pending::default();
        {
            let mut st = self.lock();
            for &c in data {
                self.receive_char(&mut st, c, &mut pend);
            }
        }
        self.wake();
        pend.send();
    }

    /// Room for more input (pty master writes wait for it).
    fn input_room(st: &State) -> bool {
        Self::input_len(st) < INPUT_MAX || (st.t.l(ICANON) && st.lines.is_empty())
    }

    fn put_input(st: &mut State, c: u8) {
        if st.t.l(ICANON) {
            if st.edit.len() < INPUT_MAX - 1 {
                if st.edit.is_empty() {
                    st.canon_column = st.column;
                }
                st.edit.push(c);
            }
        } else if Self::input_len(st) < INPUT_MAX {
            st.raw.push_back(c);
        }
    }

    fn complete_line(st: &mut State, term: Option<u8>) {
        let mut line = std::mem::take(&mut st.edit);
        if let Some(c) = term {
            line.push(c);
        }
        st.lines.push_back(line);
    }

    fn receive_char(&self, st: &mut State, c: u8, pend: &mut Pending) {
        let t = st.t;
        let mut c = c;
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if t.i(IUCLC) && t.l(IEXTEN) && c.is_ascii_uppercase() {
            c = c.to_ascii_lowercase();
        }
        if st.lnext {
            st.lnext = false;
            if t.l(ECHO) {
                self.echo_char(st, c);
            }
            Self::put_input(st, c);
            return;
        }
        if t.i(IXON) {
            if t.is(c, VSTART) {
                st.stopped = false;
                self.waiters.wake_all();
                return;
            }
            if t.is(c, VSTOP) {
                st.stopped = true;
                return;
            }
        }
        if t.l(ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(SIGINT)
            } else if t.is(c, VQUIT) {
                Some(SIGQUIT)
            } else if t.is(c, VSUSP) {
                Some(SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                pend.sigs.push((st.pgrp, sig));
                if !t.l(NOFLSH) {
                    Self::flush_input(st);
                    st.to_master.clear();
                }
                if t.i(IXON) {
                    st.stopped = false;
                }
                if t.l(ECHO) {
                    self.echo_char(st, c);
                }
                return;
            }
        }
        if st.stopped && t.i(IXON) && t.i(IXANY) {
            st.stopped = false;
        }
        if c == b'\r' {
            if t.i(IGNCR) {
                return;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        if t.l(ICANON) {
            if t.is(c, VERASE) || t.is(c, VKILL) || (t.is(c, VWERASE) && t.l(IEXTEN)) {
                self.eraser(st, c);
                return;
            }
            if t.is(c, VLNEXT) && t.l(IEXTEN) {
                st.lnext = true;
                if t.l(ECHO) && t.l(ECHOCTL) {
                    self.echo_bytes(st, b"^\x08");
                }
                return;
            }
            if t.is(c, VREPRINT) && t.l(ECHO) && t.l(IEXTEN) {
                self.echo_char(st, c);
                self.echo_bytes(st, b"\n");
                let line = st.edit.clone();
                for ch in line {
                    self.echo_char(st, ch);
                }
                return;
            }
            if c == b'\n' {
                if t.l(ECHO) || t.l(ECHONL) {
                    self.echo_bytes(st, b"\n");
                }
                Self::complete_line(st, Some(c));
                return;
            }
            if t.is(c, VEOF) {
                Self::complete_line(st, None);
                return;
            }
            if t.is(c, VEOL) || (t.is(c, VEOL2) && t.l(IEXTEN)) {
                if t.l(ECHO) {
                    self.echo_char(st, c);
                }
                Self::complete_line(st, Some(c));
                return;
            }
        }
        if t.l(ECHO) {
            if c == b'\n' {
                self.echo_bytes(st, b"\n");
            } else {
                self.echo_char(st, c);
            }
        } else if c == b'\n' && t.l(ECHONL) {
            self.echo_bytes(st, b"\n");
        }
        Self::put_input(st, c);
    }

    /// The width the echo of `edit[..]` takes from canon_column.
    fn edit_column(st: &State) -> usize {
        let mut col = st.canon_column;
        for &c in &st.edit {
            if c == b'\t' {
                col = (col | 7) + 1;
            } else if is_ctl(c) {
                if st.t.l(ECHOCTL) {
                    col += 2;
                }
            } else if !(st.t.i(IUTF8) && (c & 0xc0) == 0x80) {
                col += 1;
            }
        }
        col
    }

    /// VERASE / VKILL / VWERASE in canonical mode (n_tty's eraser).
    fn eraser(&self, st: &mut State, c: u8) {
        let t = st.t;
        if st.edit.is_empty() {
            return;
        }
        let kill = t.is(c, VKILL);
        let werase = !kill && t.is(c, VWERASE);
        if kill {
            if !t.l(ECHO) {
                st.edit.clear();
                return;
            }
            if !t.l(ECHOK) || !t.l(ECHOKE) || !t.l(ECHOE) {
                st.edit.clear();
                self.echo_char(st, c);
                if t.l(ECHOK) {
                    self.echo_bytes(st, b"\n");
                }
                return;
            }
        }
        let mut seen_word = false;
        while let Some(&last) = st.edit.last() {
            if werase {
                let word = last.is_ascii_alphanumeric() || last == b'_';
                if word {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            let before = Self::edit_column(st);
            st.edit.pop();
            // A UTF-8 character goes whole.
            if t.i(IUTF8) && (last & 0xc0) == 0x80 {
                while let Some(&b) = st.edit.last() {
                    st.edit.pop();
                    if (b & 0xc0) != 0x80 {
                        break;
                    }
                }
            }
            if t.l(ECHO) {
                if !t.l(ECHOE) && !kill && !werase {
                    self.echo_char(st, c);
                } else {
                    let after = Self::edit_column(st);
                    if last == b'\t' {
                        let n = before.saturating_sub(after);
                        self.echo_bytes(st, &vec![8u8; n]);
                    } else {
                        let n = before.saturating_sub(after).max(1);
                        for _ in 0..n {
                            self.echo_bytes(st, b"\x08 \x08");
                        }
                    }
                }
            }
            if !kill && !werase {
                break;
            }
        }
    }

    // -- the slave side: read and write ----------------------------------------

    /// read(2) on the terminal (console or pty slave) by `task`.
    pub fn read(&self, buf: &mut [u8], nonblock: bool, task: Option<&Arc<Task>>) -> KResult<usize> {
        if let Some(t) = task {
            self.job_check(t, SIGTTIN)?;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let start = Instant::now();
        let mut last_len = 0usize;
        let mut inter_deadline: Option<Instant> = None;
        loop {
            let deadline;
            {
                let mut st = self.lock();
                if st.t.l(ICANON) {
                    if let Some(n) = self.take_line(&mut st, buf) {
                        drop(st);
                        self.wake();
                        return Ok(n);
                    }
                    if st.hung_up {
                        return Ok(0);
                    }
                    deadline = None;
                } else {
                    let min = st.t.cc[VMIN] as usize;
                    let time = st.t.cc[VTIME] as u64;
                    let avail = st.raw.len();
                    let want = min.min(buf.len());
                    let timed_out = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
                    let take = if min == 0 && time == 0 {
                        true
                    } else if min == 0 {
                        avail > 0 || timed_out(Some(start + Duration::from_millis(time * 100)))
                    } else if avail >= want.max(1) {
                        true
                    } else {
                        time > 0 && avail > 0 && timed_out(inter_deadline)
                    };
                    if take || st.hung_up {
                        let n = avail.min(buf.len());
                        for (d, s) in buf.iter_mut().zip(st.raw.drain(..n)) {
                            *d = s;
                        }
                        drop(st);
                        self.wake();
                        return Ok(n);
                    }
                    if min > 0 && time > 0 && avail > 0 && avail != last_len {
                        inter_deadline = Some(Instant::now() + Duration::from_millis(time * 100));
                    }
                    last_len = avail;
                    deadline = if min == 0 {
                        Some(start + Duration::from_millis(time * 100))
                    } else {
                        inter_deadline
                    };
                }
                if nonblock {
                    return error!(EAGAIN);
                }
            }
            let was_canon = self.lock().t.l(ICANON);
            let r = self.waiters.wait(task, deadline, || {
                let st = self.lock();
                st.hung_up
                    || st.t.l(ICANON) != was_canon
                    || if was_canon {
                        !st.lines.is_empty()
                    } else {
                        st.raw.len() != last_len
                    }
            });
            match r {
                Ok(()) | Err(Errno::ETIMEDOUT) => {}
                Err(e) => {
                    // Give what is there rather than lose it (VMIN partial).
                    let mut st = self.lock();
                    if !st.t.l(ICANON) && !st.raw.is_empty() {
                        let n = st.raw.len().min(buf.len());
                        for (d, s) in buf.iter_mut().zip(st.raw.drain(..n)) {
                            *d = s;
                        }
                        return Ok(n);
                    }
                    return Err(e);
                }
            }
            if let Some(t) = task {
                self.job_check(t, SIGTTIN)?;
            }
        }
    }

    /// Canonical read: up to the end of the front line. None: no line.
    fn take_line(&self, st: &mut State, buf: &mut [u8]) -> Option<usize> {
        let line = st.lines.front()?;
        let rest = &line[st.line_pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        st.line_pos += n;
        if st.line_pos >= line.len() {
            st.lines.pop_front();
            st.line_pos = 0;
        }
        Some(n)
    }

    /// write(2) on the terminal; `fd` is the console's host descriptor.
    pub fn write(
        &self,
        data: &[u8],
        nonblock: bool,
        task: Option<&Arc<Task>>,
        fd: i32,
    ) -> KResult<usize> {
        if let Some(t) = task {
            let tostop = self.lock().t.l(TOSTOP);
            if tostop {
                self.job_check(t, SIGTTOU)?;
            }
        }
        let _output = self.own_output(nonblock, task)?;
        let mut done = 0usize;
        while done < data.len() {
            {
                let mut st = self.lock();
                if st.hung_up {
                    return if done > 0 { Ok(done) } else { error!(EIO) };
                }
                let room = self.out_room(&st);
                if !st.stopped && room > 0 {
                    let n = room.min(data.len() - done).min(4096);
                    let mut out = Vec::with_capacity(n + n / 8);
                    Self::process_output(&mut st, &data[done..done + n], &mut out);
                    self.emit(&mut st, &out, fd);
                    done += n;
                    continue;
                }
                if nonblock {
                    return if done > 0 { Ok(done) } else { error!(EAGAIN) };
                }
            }
            let r = self.waiters.wait(task, None, || {
                let st = self.lock();
                st.hung_up || (!st.stopped && self.out_room(&st) > 0)
            });
            if let Err(e) = r {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
        Ok(done)
    }

    /// Takes the output for one write(2) (see `State::writing`): waits
    /// for another writer to finish (interruptible; EAGAIN without
    /// waiting for a non-blocking writer, as Linux's tty_write_lock).
    fn own_output(&self, nonblock: bool, task: Option<&Arc<Task>>) -> KResult<OutputOwner<'_>> {
        {
            let mut st = self.lock();
            if !st.writing {
                st.writing = true;
                return Ok(OutputOwner(self));
            }
            if nonblock {
                return error!(EAGAIN);
            }
            st.writers_waiting += 1;
        }
        let r = self.waiters.wait(task, None, || !self.lock().writing);
        let mut st = self.lock();
        st.writers_waiting -= 1;
        r?;
        // Another waiter may have taken it between the wake and now.
        if st.writing {
            drop(st);
            return self.own_output(nonblock, task);
        }
        st.writing = true;
        Ok(OutputOwner(self))
    }

    /// Waits (bounded by `patience` without progress) for a channel
    /// console's queued output to reach the host.
    pub fn flush_output(&self, patience: Duration) {
        if let Some(chan) = &self.sink {
            chan.flush(patience);
        }
    }

    /// Bytes a writer may hand to output processing now. A channel's
    /// room is halved: processing at most doubles them (ONLCR).
    fn out_room(&self, st: &State) -> usize {
        if let Some(chan) = &self.sink {
            return chan.room() / 2;
        }
        match self.kind {
            Kind::Console | Kind::Vc(_) => usize::MAX,
            Kind::PtySlave(_) => OUTPUT_MAX.saturating_sub(st.to_master.len()),
        }
    }

    /// Readiness of the slave side.
    pub fn poll(&self) -> PollEvents {
        let st = self.lock();
        if st.hung_up {
            return poll::POLLIN
                | poll::POLLRDNORM
                | poll::POLLOUT
                | poll::POLLWRNORM
                | poll::POLLHUP
                | poll::POLLERR;
        }
        let mut ev = 0;
        if Self::readable(&st) {
            ev |= poll::READABLE;
        }
        let out_ok = !st.stopped && self.out_room(&st) > 0;
        if out_ok {
            ev |= poll::WRITABLE;
        }
        ev
    }

    /// FIONREAD on the slave side.
    pub fn bytes_available(&self) -> usize {
        let st = self.lock();
        if st.t.l(ICANON) {
            st.lines.iter().map(|l| l.len()).sum::<usize>() - st.line_pos
        } else {
            st.raw.len()
        }
    }

    /// The window size changed (TIOCSWINSZ, or the host terminal's):
    /// SIGWINCH to the foreground group if it differs.
    pub fn set_winsize(&self, ws: [u16; 4]) {
        let pgrp = {
            let mut st = self.lock();
            if st.ws == ws {
                return;
            }
            st.ws = ws;
            st.pgrp
        };
        if pgrp > 0 {
            jobs::send_to_pgrp(pgrp, SIGWINCH);
        }
    }

    pub fn winsize(&self) -> [u16; 4] {
        self.lock().ws
    }

    /// Hangs the terminal up: readers see end of file, writers EIO.
    pub fn hangup(&self) {
        self.lock().hung_up = true;
        self.wake();
    }

    // -- job control ---------------------------------------------------------

    /// __tty_check_change: a background process of the session this tty
    /// controls gets `sig` (SIGTTIN for reads, SIGTTOU for writes and
    /// settings) and ERESTARTSYS; EIO if it cannot be stopped.
    fn job_check(&self, task: &Arc<Task>, sig: i32) -> KResult<()> {
        let (session, pgrp) = self.session_pgrp();
        if session == 0 {
            return Ok(());
        }
        let Some(ids) = jobs::process_ids(task.tgid()) else {
            return Ok(());
        };
        if ids.sid != session || pgrp == 0 || ids.pgid == pgrp {
            return Ok(());
        }
        if jobs::ignores_or_blocks(task, sig) {
            return if sig == SIGTTIN { error!(EIO) } else { Ok(()) };
        }
        if jobs::is_orphaned_pgrp(ids.pgid) {
            return error!(EIO);
        }
        jobs::send_to_pgrp(ids.pgid, sig);
        Err(Errno::ERESTARTSYS)
    }

    /// Whether `tgid`'s controlling terminal is this tty.
    fn is_ctty_of(&self, tgid: i32) -> bool {
        let (session, _) = self.session_pgrp();
        session != 0 && jobs::process_ids(tgid).is_some_and(|i| i.sid == session)
    }

    // -- ioctls ----------------------------------------------------------------

    /// The terminal ioctls shared by the console, pty slaves and (for the
    /// slave's settings) pty masters. `via_master`: issued on the master.
    pub fn ioctl(
        &self,
        cmd: u32,
        arg: u64,
        mm: &Mm,
        task: Option<&Arc<Task>>,
        readable: bool,
        via_master: bool,
    ) -> KResult<u64> {
        let tgid = task.map(|t| t.tgid()).unwrap_or(0);
        match cmd {
            TCGETS => {
                let t = self.lock().t;
                mm.write_bytes(arg, &t.to_bytes())?;
                Ok(0)
            }
            TCGETS2 => {
                let t = self.lock().t;
                let mut b = [0u8; 44];
                b[..36].copy_from_slice(&t.to_bytes());
                b[36..40].copy_from_slice(&38400u32.to_ne_bytes());
                b[40..44].copy_from_slice(&38400u32.to_ne_bytes());
                mm.write_bytes(arg, &b)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
                let mut b = [0u8; 36];
                mm.read_bytes(arg, &mut b)?;
                if let Some(t) = task {
                    self.job_check(t, SIGTTOU)?;
                }
                let flush = cmd == TCSETSF || cmd == TCSETSF2;
                self.set_termios(Termios::from_bytes(&b), flush);
                Ok(0)
            }
            TCSBRK | TCSBRKP => Ok(0),
            TCXONC => {
                match arg {
                    0 => self.lock().stopped = true,
                    1 => self.lock().stopped = false,
                    2 | 3 => {}
                    _ => return error!(EINVAL),
                }
                self.wake();
                Ok(0)
            }
            TCFLSH => {
                {
                    let mut st = self.lock();
                    match arg {
                        0 => Self::flush_input(&mut st),
                        1 => st.to_master.clear(),
                        2 => {
                            Self::flush_input(&mut st);
                            st.to_master.clear();
                        }
                        _ => return error!(EINVAL),
                    }
                }
                self.wake();
                Ok(0)
            }
            TIOCEXCL | TIOCNXCL => Ok(0),
            TIOCGEXCL => {
                mm.write_val(arg, &0i32)?;
                Ok(0)
            }
            TIOCGWINSZ => {
                let ws = self.winsize();
                mm.write_val(arg, &ws)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let ws: [u16; 4] = mm.read_val(arg)?;
                self.set_winsize(ws);
                Ok(0)
            }
            TIOCOUTQ => {
                let n = self.lock().to_master.len().min(i32::MAX as usize) as i32;
                mm.write_val(arg, &n)?;
                Ok(0)
            }
            TIOCSTI => {
                let c: u8 = mm.read_val(arg)?;
                if !via_master && !self.is_ctty_of(tgid) {
                    return error!(EPERM);
                }
                self.receive(&[c]);
                Ok(0)
            }
            TIOCGETD => {
                mm.write_val(arg, &0i32)?;
                Ok(0)
            }
            TIOCSETD => {
                let d: i32 = mm.read_val(arg)?;
                if d != 0 {
                    return error!(EINVAL);
                }
                Ok(0)
            }
            TIOCGDEV => {
                let (ma, mi) = self.rdev();
                let dev = crate::fs::types::encode_dev(ma, mi) as u32;
                mm.write_val(arg, &dev)?;
                Ok(0)
            }
            TIOCGPGRP => {
                if !via_master && !self.is_ctty_of(tgid) {
                    return error!(ENOTTY);
                }
                let pgrp = self.lock().pgrp;
                mm.write_val(arg, &pgrp)?;
                Ok(0)
            }
            TIOCGSID => {
                if !via_master && !self.is_ctty_of(tgid) {
                    return error!(ENOTTY);
                }
                let sid = self.lock().session;
                if sid == 0 {
                    return error!(ENOTTY);
                }
                mm.write_val(arg, &sid)?;
                Ok(0)
            }
            TIOCSPGRP => {
                if let Some(t) = task {
                    match self.job_check(t, SIGTTOU) {
                        Err(Errno::EIO) => return error!(ENOTTY),
                        Err(e) => return Err(e),
                        Ok(()) => {}
                    }
                }
                let pgrp: i32 = mm.read_val(arg)?;
                if pgrp < 0 {
                    return error!(EINVAL);
                }
                let Some(me) = jobs::process_ids(tgid) else {
                    return error!(ENOTTY);
                };
                let session = self.session_pgrp().0;
                if session == 0 || session != me.sid {
                    return error!(ENOTTY);
                }
                // (No tty lock held while asking the task table.)
                if !jobs::pgrp_exists(pgrp) {
                    return error!(ESRCH);
                }
                if !jobs::pgrp_in_session(pgrp, me.sid) {
                    return error!(EPERM);
                }
                {
                    let mut st = self.lock();
                    if st.session != me.sid {
                        return error!(ENOTTY);
                    }
                    st.pgrp = pgrp;
                }
                self.wake();
                Ok(0)
            }
            TIOCSCTTY => {
                let Some(me) = jobs::process_ids(tgid) else {
                    return error!(EPERM);
                };
                let leader = me.sid == tgid;
                let current = ctty_of_session(me.sid);
                if leader
                    && current
                        .as_ref()
                        .is_some_and(|t| std::ptr::eq(Arc::as_ptr(t), self))
                {
                    return Ok(0);
                }
                if !leader || current.is_some() {
                    return error!(EPERM);
                }
                let mut st = self.lock();
                // Stealing: arg 1 with CAP_SYS_ADMIN takes the terminal
                // from the session that has it (a getty on the console
                // init was started on).
                if st.session != 0
                    && !(arg == 1
                        && task.is_some_and(|t| t.privileged(crate::task::caps::Cap::SysAdmin)))
                {
                    return error!(EPERM);
                }
                if !readable {
                    return error!(EPERM);
                }
                st.session = me.sid;
                st.pgrp = me.pgid;
                Ok(0)
            }
            TIOCNOTTY => {
                if via_master || !self.is_ctty_of(tgid) {
                    return error!(ENOTTY);
                }
                let Some(me) = jobs::process_ids(tgid) else {
                    return error!(ENOTTY);
                };
                if me.sid == tgid {
                    self.disassociate(false);
                }
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }

    fn set_termios(&self, new: Termios, flush: bool) {
        {
            let mut st = self.lock();
            let was_canon = st.t.l(ICANON);
            st.t = new;
            if flush {
                Self::flush_input(&mut st);
            }
            let canon = st.t.l(ICANON);
            if was_canon && !canon {
                // Everything typed becomes readable.
                let mut data: Vec<u8> = Vec::new();
                if let Some(front) = st.lines.front() {
                    data.extend_from_slice(&front[st.line_pos..]);
                    st.lines.pop_front();
                }
                while let Some(l) = st.lines.pop_front() {
                    data.extend(l);
                }
                data.append(&mut st.edit);
                st.line_pos = 0;
                st.raw.extend(data);
            } else if !was_canon && canon {
                let data: Vec<u8> = st.raw.drain(..).collect();
                st.canon_column = st.column;
                st.edit = data;
            }
            if !st.t.i(IXON) {
                st.stopped = false;
            }
        }
        self.wake();
    }

    /// The session leader gives up its terminal (exit, TIOCNOTTY):
    /// SIGHUP (and SIGCONT, for TIOCNOTTY or the console) to the
    /// foreground group; the tty no longer controls a session.
    fn disassociate(&self, on_exit: bool) {
        let pgrp = {
            let mut st = self.lock();
            let p = st.pgrp;
            st.session = 0;
            st.pgrp = 0;
            p
        };
        if pgrp > 0 {
            jobs::send_to_pgrp(pgrp, SIGHUP);
            if !on_exit || matches!(self.kind, Kind::Console | Kind::Vc(_)) {
                jobs::send_to_pgrp(pgrp, SIGCONT);
            }
        }
        self.wake();
    }

    // -- the pty master side ---------------------------------------------------

    /// A slave description opened (`noctty`: O_NOCTTY) by process `tgid`
    /// (0: the kernel). EIO if
    /// the pty is locked or its master gone.
    pub fn slave_open(&self, tgid: i32, noctty: bool, readable: bool) -> KResult<()> {
        {
            let mut st = self.lock();
            if st.locked || !st.master_open {
                return error!(EIO);
            }
            st.slave_opens += 1;
            st.other_closed = false;
        }
        if tgid > 0 && !noctty && readable {
            self.maybe_acquire(tgid);
        }
        Ok(())
    }

    /// tty_open_proc_set_tty: a session leader without a controlling
    /// terminal that opens one nobody controls acquires it.
    pub fn maybe_acquire(&self, tgid: i32) {
        let Some(me) = jobs::process_ids(tgid) else {
            return;
        };
        if me.sid != tgid || ctty_of_session(me.sid).is_some() {
            return;
        }
        let mut st = self.lock();
        if st.session == 0 {
            st.session = me.sid;
            st.pgrp = me.pgid;
        }
    }

    pub fn slave_close(&self) {
        {
            let mut st = self.lock();
            st.slave_opens = st.slave_opens.saturating_sub(1);
            if st.slave_opens == 0 {
                st.other_closed = true;
            }
        }
        self.wake();
    }

    /// The master closed: the slave hangs up; SIGHUP to its session's
    /// foreground group as Linux's tty_vhangup does.
    pub fn master_close(&self) {
        let pgrp = {
            let mut st = self.lock();
            st.master_open = false;
            st.hung_up = true;
            let p = st.pgrp;
            st.session = 0;
            st.pgrp = 0;
            p
        };
        if pgrp > 0 {
            jobs::send_to_pgrp(pgrp, SIGHUP);
            jobs::send_to_pgrp(pgrp, SIGCONT);
        }
        self.wake();
    }

    pub fn set_locked(&self, locked: bool) {
        self.lock().locked = locked;
    }

    pub fn is_locked(&self) -> bool {
        self.lock().locked
    }

    /// read(2) on the master: what the slave side output.
    pub fn master_read(
        &self,
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
                if !st.to_master.is_empty() {
                    let n = st.to_master.len().min(buf.len());
                    for (d, s) in buf.iter_mut().zip(st.to_master.drain(..n)) {
                        *d = s;
                    }
                    drop(st);
                    self.waiters.wake_all();
                    return Ok(n);
                }
                if st.other_closed {
                    return error!(EIO);
                }
                if nonblock {
                    return error!(EAGAIN);
                }
            }
            self.master_waiters.wait(task, None, || {
                let st = self.lock();
                !st.to_master.is_empty() || st.other_closed
            })?;
        }
    }

    /// write(2) on the master: input for the slave, waiting for room.
    pub fn master_write(
        &self,
        data: &[u8],
        nonblock: bool,
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let mut done = 0usize;
        while done < data.len() {
            let mut pend = Pending::default();
            let progressed = {
                let mut st = self.lock();
                let before = done;
                while done < data.len() && Self::input_room(&st) {
                    self.receive_char(&mut st, data[done], &mut pend);
                    done += 1;
                }
                done > before
            };
            if progressed {
                self.wake();
            }
            pend.send();
            if done == data.len() {
                break;
            }
            if nonblock {
                return if done > 0 { Ok(done) } else { error!(EAGAIN) };
            }
            let r = self
                .master_waiters
                .wait(task, None, || Self::input_room(&self.lock()));
            if let Err(e) = r {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
        Ok(done)
    }

    /// Readiness of the master side.
    pub fn master_poll(&self) -> PollEvents {
        let st = self.lock();
        let mut ev = 0;
        if !st.to_master.is_empty() {
            ev |= poll::READABLE;
        }
        if st.other_closed {
            ev |= poll::POLLHUP;
        }
        if Self::input_room(&st) {
            ev |= poll::WRITABLE;
        }
        ev
    }

    pub fn master_bytes_available(&self) -> usize {
        self.lock().to_master.len()
    }
}

// ---------------------------------------------------------------------------
// Controlling terminals

/// The tty controlling session `sid`, if any.
pub fn ctty_of_session(sid: i32) -> Option<Arc<Tty>> {
    if sid <= 0 {
        return None;
    }
    let ttys: Vec<Arc<Tty>> = registry().iter().filter_map(|w| w.upgrade()).collect();
    ttys.into_iter().find(|t| t.session_pgrp().0 == sid)
}

/// The controlling terminal of process `tgid` (for /dev/tty).
pub fn ctty_of(tgid: i32) -> Option<Arc<Tty>> {
    jobs::process_ids(tgid).and_then(|i| ctty_of_session(i.sid))
}

/// Called when session leader `sid` exits: its controlling terminal's
/// foreground group gets SIGHUP (and SIGCONT for the console) and the
/// terminal controls no session any more.
pub fn session_leader_exited(sid: i32) {
    if let Some(tty) = ctty_of_session(sid) {
        tty.disassociate(true);
    }
}

// ---------------------------------------------------------------------------
// Process groups, sessions and signals: the task and signal code's
// queries, made no-ops before boot (unit tests have no kernel instance).

pub mod jobs {
    use crate::task::Task;

    /// A process's ids.
    pub use crate::task::ProcIds as Ids;

    fn booted() -> bool {
        crate::kernel_booted()
    }

    pub fn process_ids(tgid: i32) -> Option<Ids> {
        if !booted() || tgid <= 0 {
            return None;
        }
        crate::task::process_ids(tgid)
    }

    /// Sends `sig` to every process of group `pgid` (from the kernel).
    pub fn send_to_pgrp(pgid: i32, sig: i32) {
        if booted() && pgid > 0 {
            crate::signal::send_to_pgrp(pgid, sig);
        }
    }

    /// Whether a live process is in group `pgid`.
    pub fn pgrp_exists(pgid: i32) -> bool {
        booted()
            && crate::kernel()
                .tasks
                .lock()
                .values()
                .any(|n| n.pgid == pgid && n.zombie.is_none())
    }

    pub fn pgrp_in_session(pgid: i32, sid: i32) -> bool {
        booted() && crate::task::pgrp_in_session(pgid, sid)
    }

    pub fn is_orphaned_pgrp(pgid: i32) -> bool {
        !booted() || crate::task::is_orphaned_pgrp(pgid)
    }

    pub fn ignores_or_blocks(task: &Task, sig: i32) -> bool {
        crate::signal::ignores_or_blocks(task, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pty() -> Arc<Tty> {
        let t = Tty::new(Kind::PtySlave(4000), Termios::pty_slave(), [0; 4], 1);
        t.set_locked(false);
        t.slave_open(0, true, true).unwrap();
        t
    }

    fn master_all(t: &Tty) -> Vec<u8> {
        let mut b = [0u8; 4096];
        match t.master_read(&mut b, true, None) {
            Ok(n) => b[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn canonical_editing_and_echo() {
        let t = pty();
        assert_eq!(t.master_write(b"abc\x7f\x7fd\n", false, None).unwrap(), 7);
        let mut b = [0u8; 64];
        assert_eq!(t.read(&mut b, true, None).unwrap(), 3);
        assert_eq!(&b[..3], b"ad\n");
        assert_eq!(master_all(&t), b"abc\x08 \x08\x08 \x08d\r\n");
        // Nothing more: EAGAIN; a partial line is not readable.
        t.master_write(b"xy", false, None).unwrap();
        assert_eq!(t.read(&mut b, true, None).err(), Some(Errno::EAGAIN));
        // ^U kills it, ^W erases a word, ^D ends the line without itself.
        t.master_write(b"\x15one two\x17\x04", false, None).unwrap();
        assert_eq!(t.read(&mut b, true, None).unwrap(), 4);
        assert_eq!(&b[..4], b"one ");
        // An empty line ended by ^D is end of file.
        t.master_write(b"\x04", false, None).unwrap();
        assert_eq!(t.read(&mut b, true, None).unwrap(), 0);
        // A short buffer takes the line in pieces.
        t.master_write(b"hello\n", false, None).unwrap();
        assert_eq!(t.read(&mut b[..2], true, None).unwrap(), 2);
        assert_eq!(t.read(&mut b, true, None).unwrap(), 4);
        assert_eq!(&b[..4], b"llo\n");
    }

    #[test]
    fn signal_chars_flush_and_echo() {
        let t = pty();
        master_all(&t);
        t.master_write(b"xy\x03", false, None).unwrap();
        let mut b = [0u8; 16];
        t.master_write(b"\n", false, None).unwrap();
        assert_eq!(
            t.read(&mut b, true, None).unwrap(),
            1,
            "input before ^C was flushed"
        );
        assert_eq!(master_all(&t), b"^C\r\n");
    }

    #[test]
    fn output_processing_and_raw_mode() {
        let t = pty();
        assert_eq!(t.write(b"a\nb", false, None, 1).unwrap(), 3);
        assert_eq!(master_all(&t), b"a\r\nb");
        let mut raw = t.lock().t;
        raw.lflag &= !(ICANON | ECHO);
        raw.oflag &= !OPOST;
        raw.cc[VMIN] = 0;
        raw.cc[VTIME] = 1;
        t.set_termios(raw, false);
        t.write(b"c\n", false, None, 1).unwrap();
        assert_eq!(master_all(&t), b"c\n");
        let start = Instant::now();
        let mut b = [0u8; 8];
        assert_eq!(t.read(&mut b, false, None).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(90));
        t.master_write(b"\r", false, None).unwrap();
        assert_eq!(t.read(&mut b, false, None).unwrap(), 1);
        assert_eq!(b[0], b'\n', "ICRNL");
        assert!(master_all(&t).is_empty(), "no echo");
    }

    #[test]
    fn hangups() {
        let t = pty();
        t.slave_close();
        let mut b = [0u8; 8];
        assert_eq!(t.master_read(&mut b, true, None).err(), Some(Errno::EIO));
        assert_ne!(t.master_poll() & poll::POLLHUP, 0);
        t.master_close();
        assert_eq!(t.read(&mut b, false, None).unwrap(), 0);
        assert_eq!(t.write(b"x", false, None, 1).err(), Some(Errno::EIO));
        assert_eq!(t.slave_open(0, true, true).err(), Some(Errno::EIO));
    }

    #[test]
    fn termios_bytes_round_trip() {
        let t = Termios::standard();
        assert_eq!(Termios::from_bytes(&t.to_bytes()), t);
        assert_eq!(t.to_bytes()[17], 3, "VINTR is ^C");
    }
}
