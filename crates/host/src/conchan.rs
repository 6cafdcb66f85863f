//! Where the guest's consoles are on the host (`con0=`, `conN=`, `con=`),
//! as UML's channels: `fd:N` (a host descriptor ruml inherited), `null`
//! (no input, output discarded) and `pts` (a new host pseudo-terminal
//! whose name is logged, for `screen`, `tmux` or any program that opens
//! it).
//!
//! con0 on `fd:` or `null` is wired by [`attach`]: the console code talks
//! to host descriptors 0 (input) and 1 (output), so everything downstream
//! (raw mode when the input is a terminal, the line discipline, restoring
//! the terminal) works the same on every such channel. Every other console
//! (con0 on `pts`, /dev/tty1...) is an open [`Channel`]: its output goes
//! through a bounded queue that a writer thread of its own drains to the
//! host, so a host pty nobody reads (or a slow descriptor) never blocks the
//! kernel. Once the queue is full, [`Channel::room`] is 0 and only that
//! console's writers wait (echo is dropped, as Linux drops it); its input
//! is read by a reader thread of its own.

/// One direction of a console channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chan {
    /// A host descriptor.
    Fd(i32),
    /// /dev/null.
    Null,
    /// A new host pseudo-terminal (both directions).
    Pts,
}

impl Chan {
    /// The channel as a parameter names it (`fd:N`, `null`, `pts`).
    pub fn describe(&self) -> String {
        match self {
            Chan::Fd(n) => format!("fd:{n}"),
            Chan::Null => "null".into(),
            Chan::Pts => "pts".into(),
        }
    }

    fn parse(s: &str) -> Option<Chan> {
        match s {
            "null" => Some(Chan::Null),
            "pts" => Some(Chan::Pts),
            _ => s
                .strip_prefix("fd:")?
                .parse()
                .ok()
                .filter(|&n: &i32| n >= 0)
                .map(Chan::Fd),
        }
    }
}

/// Parses `IN[,OUT]` (one channel for both directions when OUT is
/// missing), as UML's `con0=` value. `pts` serves both directions or
/// none.
pub fn parse(v: &str) -> Option<(Chan, Chan)> {
    let (i, o) = match v.split_once(',') {
        Some((i, o)) => (Chan::parse(i)?, Chan::parse(o)?),
        None => {
            let c = Chan::parse(v)?;
            (c, c)
        }
    };
    if (i == Chan::Pts) != (o == Chan::Pts) {
        return None;
    }
    Some((i, o))
}

/// A channel pair as [`parse`] reads it: `IN` when both directions are
/// the same channel, `IN,OUT` otherwise.
pub fn describe(input: Chan, output: Chan) -> String {
    if input == output {
        input.describe()
    } else {
        format!("{},{}", input.describe(), output.describe())
    }
}

fn dup_onto(from: i32, to: i32) -> Result<(), String> {
    if from == to {
        return Ok(());
    }
    // SAFETY: dup2 of descriptors we own or inherited.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(format!(
            "cannot use host fd {from} for the console: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn check_open(fd: i32) -> Result<(), String> {
    // SAFETY: F_GETFD only asks about the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("con0=fd:{fd}: host fd {fd} is not open"));
    }
    Ok(())
}

/// Puts the console's channels on host fds 0 and 1.
pub fn attach(input: Chan, output: Chan) -> Result<(), String> {
    let open_null = || -> Result<i32, String> {
        // SAFETY: open of a constant path.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "cannot open /dev/null: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(fd)
    };
    // Resolve both before moving anything (fd:1,fd:0 swaps them).
    let src = |c: Chan| -> Result<i32, String> {
        match c {
            Chan::Fd(n) => {
                check_open(n)?;
                // SAFETY: F_DUPFD_CLOEXEC of an open descriptor.
                let d = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
                if d < 0 {
                    return Err(format!("con0=fd:{n}: {}", std::io::Error::last_os_error()));
                }
                Ok(d)
            }
            Chan::Null => open_null(),
            Chan::Pts => Err("con0=pts is an open Channel, not host fds 0 and 1".into()),
        }
    };
    let (i, o) = (src(input)?, src(output)?);
    dup_onto(i, 0)?;
    dup_onto(o, 1)?;
    // SAFETY: closing the spare copies.
    unsafe {
        libc::close(i);
        libc::close(o);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Open channels: every console but con0 on fd:/null.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes of output a channel queues before its writers wait.
pub const OUTPUT_QUEUE: usize = 65536;

/// What a channel's reader thread reports.
pub enum Input<'a> {
    /// Bytes typed.
    Data(&'a [u8]),
    /// The host side's window size changed (pts).
    WinSize([u16; 4]),
    /// End of input (an `fd:` channel's descriptor reached end of file or
    /// failed): the terminal hangs up.
    Eof,
}

/// Called when queued output drained (room for the console's writers).
type SpaceFn = Box<dyn Fn() + Send + Sync>;

/// The output side of a channel: the bounded queue and its writer thread.
/// Locking: `st` guards the queue; the writer thread copies a chunk out,
/// writes it with the lock dropped, then removes what was written, so
/// guest writers never wait on the host.
struct Output {
    /// None: `null`, output is discarded.
    fd: Option<OwnedFd>,
    st: Mutex<OutState>,
    /// Signalled when output is queued (the writer thread waits on it).
    cv: Condvar,
    /// Signalled when the writer thread wrote some (flush waits on it).
    progress: Condvar,
    on_space: Mutex<Option<SpaceFn>>,
}

#[derive(Default)]
struct OutState {
    queue: VecDeque<u8>,
    /// The writer thread is running.
    started: bool,
    /// The host side failed for good (output is discarded from then on).
    broken: bool,
}

/// A console's host channel, open; see the module doc. Lifetime: held by
/// the guest terminal it serves (for as long as the instance runs) and by
/// its two threads.
pub struct Channel {
    input: Option<OwnedFd>,
    out: Arc<Output>,
    /// The host pty's name (`pts`).
    pts_name: Option<String>,
    /// `pts`: a descriptor of the slave side kept open, so the master
    /// never sees a hangup while no program has it open and output simply
    /// waits in the host pty until one reads it.
    _slave: Option<OwnedFd>,
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: fd was just returned to us by the host and is ours alone.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn winsize_of(fd: i32) -> Option<[u16; 4]> {
    let mut w = [0u16; 4];
    // SAFETY: TIOCGWINSZ writes a struct winsize (4 u16) into w.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, w.as_mut_ptr()) };
    (r == 0).then_some(w)
}

impl Channel {
    /// Opens the channel `(input, output)`.
    pub fn open(input: Chan, output: Chan) -> Result<Arc<Channel>, String> {
        if input == Chan::Pts || output == Chan::Pts {
            return Self::open_pts();
        }
        let dup = |c: Chan| -> Result<Option<OwnedFd>, String> {
            match c {
                Chan::Fd(n) => {
                    check_open(n)?;
                    // SAFETY: F_DUPFD_CLOEXEC of an open descriptor.
                    let d = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
                    if d < 0 {
                        return Err(os_err(&format!("fd:{n}")));
                    }
                    Ok(Some(owned(d)))
                }
                _ => Ok(None),
            }
        };
        Ok(Arc::new(Channel {
            input: dup(input)?,
            out: Output::new(dup(output)?),
            pts_name: None,
            _slave: None,
        }))
    }

    /// A new host pty in raw mode (the guest's line discipline does the
    /// terminal's work), its master non-blocking.
    fn open_pts() -> Result<Arc<Channel>, String> {
        // SAFETY: plain calls on a descriptor we own; ptsname_r writes at
        // most buf.len() bytes.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            if m < 0 {
                return Err(os_err("cannot open a host pty (/dev/ptmx)"));
            }
            let master = owned(m);
            if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
                return Err(os_err("cannot unlock the host pty"));
            }
            let mut buf = [0u8; 128];
            if libc::ptsname_r(m, buf.as_mut_ptr().cast(), buf.len()) != 0 {
                return Err(os_err("ptsname"));
            }
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..len]).into_owned();
            let s = libc::open(
                buf.as_ptr().cast(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if s < 0 {
                return Err(os_err(&format!("cannot open {name}")));
            }
            let slave = owned(s);
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(s, &mut t) == 0 {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(s, libc::TCSANOW, &t);
            }
            let fl = libc::fcntl(m, libc::F_GETFL);
            libc::fcntl(m, libc::F_SETFL, fl | libc::O_NONBLOCK);
            let out_fd = libc::fcntl(m, libc::F_DUPFD_CLOEXEC, 3);
            if out_fd < 0 {
                return Err(os_err("dup of the host pty"));
            }
            Ok(Arc::new(Channel {
                input: Some(master),
                out: Output::new(Some(owned(out_fd))),
                pts_name: Some(name),
                _slave: Some(slave),
            }))
        }
    }

    /// The host pty's name (`/dev/pts/N`), for a `pts` channel.
    pub fn pts_name(&self) -> Option<&str> {
        self.pts_name.as_deref()
    }

    /// The host side's window size, if it is a terminal.
    pub fn winsize(&self) -> Option<[u16; 4]> {
        self.input.as_ref().and_then(|f| winsize_of(f.as_raw_fd()))
    }

    /// Queues up to [`Channel::room`] bytes of `data` for the host;
    /// returns how many were taken. Never blocks.
    pub fn write(&self, data: &[u8]) -> usize {
        self.out.write(data)
    }

    /// Bytes [`Channel::write`] would take now.
    pub fn room(&self) -> usize {
        let st = self.out.lock();
        if self.out.fd.is_none() || st.broken {
            usize::MAX
        } else {
            OUTPUT_QUEUE.saturating_sub(st.queue.len())
        }
    }

    /// Gives the writer thread a chance to hand what is queued to the host
    /// (at halt): returns once the queue is empty, or when the host has
    /// taken nothing for `patience` (a pty nobody reads).
    pub fn flush(&self, patience: std::time::Duration) {
        let mut st = self.out.lock();
        loop {
            if st.queue.is_empty() || st.broken || !st.started {
                return;
            }
            let before = st.queue.len();
            let (g, _) = self
                .out
                .progress
                .wait_timeout(st, patience)
                .unwrap_or_else(|p| p.into_inner());
            st = g;
            if st.queue.len() >= before {
                return;
            }
        }
    }

    /// Registers what to call when queued output drains.
    pub fn on_space(&self, f: SpaceFn) {
        *self.out.on_space.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Starts the reader thread, which hands every event to `on_input`
    /// until end of input. A `null` input never delivers anything.
    pub fn start_input(self: &Arc<Self>, on_input: Box<dyn Fn(Input<'_>) + Send>) -> bool {
        if self.input.is_none() {
            return true;
        }
        let me = self.clone();
        std::thread::Builder::new()
            .name("con-in".into())
            .spawn(move || me.read_loop(on_input))
            .is_ok()
    }

    fn read_loop(&self, on_input: Box<dyn Fn(Input<'_>) + Send>) {
        let Some(fd) = self.input.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut ws = self.winsize();
        let mut buf = [0u8; 1024];
        loop {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, -1) };
            if r < 0 {
                if crate::sys::errno() == libc::EINTR {
                    continue;
                }
                on_input(Input::Eof);
                return;
            }
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = crate::sys::errno();
                if e == libc::EINTR || e == libc::EAGAIN {
                    continue;
                }
            }
            if n <= 0 {
                on_input(Input::Eof);
                return;
            }
            if self.pts_name.is_some() {
                let now = winsize_of(fd);
                if now.is_some() && now != ws {
                    ws = now;
                    if let Some(w) = now {
                        on_input(Input::WinSize(w));
                    }
                }
            }
            on_input(Input::Data(&buf[..n as usize]));
        }
    }
}

impl Output {
    fn new(fd: Option<OwnedFd>) -> Arc<Output> {
        Arc::new(Output {
            fd,
            st: Mutex::new(OutState::default()),
            cv: Condvar::new(),
            progress: Condvar::new(),
            on_space: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(self: &Arc<Self>, data: &[u8]) -> usize {
        if self.fd.is_none() {
            return data.len();
        }
        let mut st = self.lock();
        if st.broken {
            return data.len();
        }
        let n = OUTPUT_QUEUE.saturating_sub(st.queue.len()).min(data.len());
        st.queue.extend(&data[..n]);
        if !st.started {
            let me = self.clone();
            st.started = std::thread::Builder::new()
                .name("con-out".into())
                .spawn(move || me.write_loop())
                .is_ok();
            if !st.started {
                st.broken = true;
            }
        }
        self.cv.notify_one();
        n
    }

    /// The writer thread: waits for the host side to take output (poll),
    /// so a pty nobody reads holds it here, not the guest.
    fn write_loop(&self) {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut chunk: Vec<u8> = Vec::with_capacity(4096);
        loop {
            chunk.clear();
            {
                let mut st = self.lock();
                while st.queue.is_empty() {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                let n = st.queue.len().min(4096);
                chunk.extend(st.queue.range(..n));
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
                continue;
            }
            // SAFETY: chunk is readable for its length.
            let w = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
            let drained = {
                let mut st = self.lock();
                if w > 0 {
                    st.queue.drain(..w as usize);
                    true
                } else {
                    let e = crate::sys::errno();
                    if w < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
                        false
                    } else {
                        // The host side is gone: discard from now on.
                        st.broken = true;
                        st.queue.clear();
                        true
                    }
                }
            };
            if drained {
                self.progress.notify_all();
                if let Some(f) = self
                    .on_space
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                {
                    f();
                }
            }
            if self.lock().broken {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_specs() {
        assert_eq!(parse("fd:0,fd:1"), Some((Chan::Fd(0), Chan::Fd(1))));
        assert_eq!(parse("null"), Some((Chan::Null, Chan::Null)));
        assert_eq!(parse("fd:3"), Some((Chan::Fd(3), Chan::Fd(3))));
        assert_eq!(parse("pts"), Some((Chan::Pts, Chan::Pts)));
        assert_eq!(parse("pts,fd:1"), None);
        assert_eq!(parse("fd:-1"), None);
        assert_eq!(parse("xterm"), None);
        assert_eq!(parse("port:9000"), None);
        for v in ["fd:0,fd:1", "null", "pts", "fd:3", "null,fd:1"] {
            let (i, o) = parse(v).unwrap();
            assert_eq!(describe(i, o), v);
        }
    }

    /// Output to a pipe nobody reads: writes take what fits in the bounded
    /// queue and then nothing, never blocking; once a reader drains the
    /// pipe, everything taken arrives.
    #[test]
    fn output_is_bounded_and_never_blocks() {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills fds.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let ch = Channel::open(Chan::Null, Chan::Fd(fds[1])).unwrap();
        // SAFETY: the channel holds its own copy.
        unsafe { libc::close(fds[1]) };
        let mut taken = 0usize;
        let mut i = 0u8;
        loop {
            let chunk = [i; 4096];
            let n = ch.write(&chunk);
            taken += n;
            if n < chunk.len() {
                break;
            }
            i = i.wrapping_add(1);
        }
        assert!(taken >= OUTPUT_QUEUE, "took only {taken}");
        assert!(taken <= OUTPUT_QUEUE + (4 << 20), "took {taken}");
        let mut got = 0usize;
        let mut buf = [0u8; 65536];
        while got < taken {
            // SAFETY: buf is writable for its length.
            let r = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
            assert!(r > 0, "the pipe ended after {got} of {taken} bytes");
            got += r as usize;
        }
        assert_eq!(got, taken);
        assert!(ch.room() > 0);
        // SAFETY: our read end.
        unsafe { libc::close(fds[0]) };
    }
}
