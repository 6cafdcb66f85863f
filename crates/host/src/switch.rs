//! UML's daemon transport: Ethernet frames between an instance and a
//! switch (Debian's `uml_switch`, or `ruml switch`) over unix sockets.
//!
//! The wire format, as Linux's `arch/um/drivers/daemon_user.c` and
//! uml_switch speak it: the client connects a unix STREAM socket to the
//! switch's control socket (a path) and writes a `struct request_v3`
//! `{ u32 magic = 0xfeedface; u32 version = 3; u32 type = REQ_NEW_CONTROL
//! (0); struct sockaddr_un sock; }` (122 bytes) naming its own unix
//! DATAGRAM socket; the switch answers on the stream with the
//! `struct sockaddr_un` (110 bytes) of its data socket. From then on whole
//! Ethernet frames travel as datagrams between the two data sockets; the
//! control connection stays open for the life of the port, and its close
//! ends the port.
//!
//! Data sockets are bound to abstract names (a NUL, then a few bytes) of
//! the full `sizeof(struct sockaddr_un)` length, as UML binds them, and
//! datagrams are sent to addresses of that length, so that names compare
//! equal byte for byte on both sides.
//!
//! [`SwitchLink`] is the instance's end (`eth0=switch,PATH`); [`run_switch`]
//! is a learning switch (`ruml switch PATH`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SWITCH_MAGIC: u32 = 0xfeed_face;
const SWITCH_VERSION: u32 = 3;
const REQ_NEW_CONTROL: u32 = 0;
/// sizeof(struct sockaddr_un).
pub const SUN_LEN: usize = 110;
const REQUEST_LEN: usize = 12 + SUN_LEN;
/// The largest frame carried: 1500 bytes of payload, the Ethernet header
/// and a VLAN tag. Larger datagrams are dropped.
pub const MAX_FRAME: usize = 1518;
/// The smallest: an Ethernet header.
pub const MIN_FRAME: usize = 14;

/// A `struct sockaddr_un` as bytes (family first).
type SunBytes = [u8; SUN_LEN];

fn sun_raw(b: &SunBytes) -> libc::sockaddr_un {
    // SAFETY: sockaddr_un is plain data of exactly SUN_LEN bytes.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // SAFETY: same size, both plain bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            b.as_ptr(),
            &mut sun as *mut libc::sockaddr_un as *mut u8,
            SUN_LEN,
        )
    };
    sun
}

/// A fresh abstract name: NUL, then "ruml" and a unique number.
fn abstract_name(tag: &str) -> SunBytes {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; SUN_LEN];
    b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let name = format!(
        "ruml-{tag}-{}-{}-{now}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let n = name.len().min(SUN_LEN - 3);
    b[3..3 + n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// A unix datagram socket bound to `name` (full length), close-on-exec.
fn bound_dgram(name: &SunBytes) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sun = sun_raw(name);
    // SAFETY: a valid sockaddr_un of its full size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sun as *const libc::sockaddr_un as *const libc::sockaddr,
            SUN_LEN as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // Room for bursts (a TCP window of frames); the host may cap it.
    let sz: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: an int option.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &sz as *const libc::c_int as *const libc::c_void,
                4,
            )
        };
    }
    Ok(fd)
}

/// How long a sender waits for room in the receiver's queue before the
/// frame is lost.
const SEND_WAIT: Duration = Duration::from_millis(100);

/// Sends one datagram to `to` (full-length address; None: the connected
/// peer), waiting up to [`SEND_WAIT`] for room; false if it was not taken
/// (a full queue, a vanished peer): like a wire, it is lost.
fn send_to(fd: RawFd, frame: &[u8], to: Option<&SunBytes>) -> bool {
    let sun = to.map(sun_raw);
    let (addr, alen) = match &sun {
        Some(s) => (
            s as *const libc::sockaddr_un as *const libc::sockaddr,
            SUN_LEN as libc::socklen_t,
        ),
        None => (std::ptr::null(), 0),
    };
    for attempt in 0..2 {
        // SAFETY: frame and the address are valid for the call.
        let r = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                addr,
                alen,
            )
        };
        if r >= 0 {
            return r as usize == frame.len();
        }
        if attempt == 1 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
            return false;
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, SEND_WAIT.as_millis() as i32) };
    }
    false
}

/// Receives one datagram without blocking: its length and sender (padded
/// with zeros to the full size), or None when there is none.
fn recv_from(fd: RawFd, buf: &mut [u8]) -> Option<(usize, SunBytes)> {
    // SAFETY: zeroed plain data.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = SUN_LEN as libc::socklen_t;
    // SAFETY: buf and sun are valid for the call.
    let r = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            &mut sun as *mut libc::sockaddr_un as *mut libc::sockaddr,
            &mut len,
        )
    };
    if r < 0 {
        return None;
    }
    let mut from = [0u8; SUN_LEN];
    let n = (len as usize).min(SUN_LEN);
    // SAFETY: sun is SUN_LEN bytes of plain data.
    let raw = unsafe {
        std::slice::from_raw_parts(&sun as *const libc::sockaddr_un as *const u8, SUN_LEN)
    };
    from[..n].copy_from_slice(&raw[..n]);
    Some((r as usize, from))
}

/// Polls `fds` for input for at most `timeout` (None: forever); the
/// revents of each.
fn poll_in(fds: &[RawFd], timeout: Option<Duration>) -> Vec<i16> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
    };
    // SAFETY: p is a valid array of pollfd.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r <= 0 {
        return vec![0; fds.len()];
    }
    p.iter().map(|q| q.revents).collect()
}

/// Wakes a thread waiting in [`SwitchLink::wait`] (an eventfd).
#[derive(Clone)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    fn new() -> io::Result<Waker> {
        // SAFETY: plain eventfd(2).
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is ours.
        Ok(Waker(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), &one as *const u64 as *const _, 8) };
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes from our eventfd.
        unsafe { libc::read(self.0.as_raw_fd(), &mut v as *mut u64 as *mut _, 8) };
    }
}

/// What [`SwitchLink::wait`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// Frames may be waiting, the waker was woken, or time ran out.
    Ready,
    /// The switch closed the control connection: the link is gone.
    Hangup,
}

/// An instance's port on a switch.
pub struct SwitchLink {
    ctl: UnixStream,
    data: OwnedFd,
    /// The switch's data socket.
    peer: SunBytes,
    waker: Waker,
}

impl SwitchLink {
    /// Connects to the switch whose control socket is `path`.
    pub fn connect(path: &Path) -> io::Result<SwitchLink> {
        let mut ctl = UnixStream::connect(path)?;
        let me = abstract_name("eth");
        let data = bound_dgram(&me)?;
        let mut req = [0u8; REQUEST_LEN];
        req[0..4].copy_from_slice(&SWITCH_MAGIC.to_ne_bytes());
        req[4..8].copy_from_slice(&SWITCH_VERSION.to_ne_bytes());
        req[8..12].copy_from_slice(&REQ_NEW_CONTROL.to_ne_bytes());
        req[12..].copy_from_slice(&me);
        ctl.write_all(&req)?;
        ctl.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut peer = [0u8; SUN_LEN];
        ctl.read_exact(&mut peer)
            .map_err(|e| io::Error::new(e.kind(), format!("no answer from the switch: {e}")))?;
        if u16::from_ne_bytes([peer[0], peer[1]]) != libc::AF_UNIX as u16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the switch answered with a non-unix address",
            ));
        }
        ctl.set_read_timeout(None)?;
        ctl.set_nonblocking(true)?;
        // Connected to the switch's data socket: only the switch can send
        // to it, and a send waits for room in the switch's queue.
        let sun = sun_raw(&peer);
        // SAFETY: a valid sockaddr_un of its full size.
        let r = unsafe {
            libc::connect(
                data.as_raw_fd(),
                &sun as *const libc::sockaddr_un as *const libc::sockaddr,
                SUN_LEN as libc::socklen_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot reach the switch's data socket: {e}"),
            ));
        }
        Ok(SwitchLink {
            ctl,
            data,
            peer,
            waker: Waker::new()?,
        })
    }

    /// Sends one frame; a frame the switch's queue cannot take is lost.
    pub fn send(&self, frame: &[u8]) -> bool {
        send_to(self.data.as_raw_fd(), frame, None)
    }

    /// The next frame from the switch, without blocking: its length in
    /// `buf`. Datagrams from anyone but the switch, shorter than an
    /// Ethernet header or longer than [`MAX_FRAME`] are dropped.
    pub fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let (n, from) = recv_from(self.data.as_raw_fd(), buf)?;
            if from == self.peer && (MIN_FRAME..=MAX_FRAME.min(buf.len())).contains(&n) {
                return Some(n);
            }
        }
    }

    /// A handle that wakes [`wait`](Self::wait).
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Sleeps until a frame arrives, the waker is woken, `timeout` passes
    /// (None: no limit) or the switch goes away.
    pub fn wait(&self, timeout: Option<Duration>) -> Wait {
        let fds = [
            self.data.as_raw_fd(),
            self.waker.0.as_raw_fd(),
            self.ctl.as_raw_fd(),
        ];
        let r = poll_in(&fds, timeout);
        if r[1] != 0 {
            self.waker.drain();
        }
        if r[2] != 0 {
            let mut b = [0u8; 64];
            match (&self.ctl).read(&mut b) {
                Ok(0) => return Wait::Hangup,
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Wait::Hangup,
                _ => {}
            }
        }
        Wait::Ready
    }
}

/// One port of the switch: a client's control connection and data socket.
struct Port {
    ctl: UnixStream,
    /// The client's data socket (from its request).
    sock: SunBytes,
    /// Bytes of the request read so far.
    req: Vec<u8>,
    ready: bool,
}

/// How long a learned MAC address stays bound to its port without being
/// seen again.
const MAC_EXPIRE: Duration = Duration::from_secs(300);
/// At most this many ports and learned addresses (host memory is bounded
/// whatever the clients do).
const MAX_PORTS: usize = 1024;
const MAX_MACS: usize = 65536;

/// Runs a learning Ethernet switch on the control socket `path` (created;
/// removed first if a stale socket is there) until the process is killed.
/// `hub`: flood every frame to every other port (uml_switch's `-hub`).
/// `log` receives one line per port change.
pub fn run_switch(path: &Path, hub: bool, log: &dyn Fn(&str)) -> io::Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if m.file_type().is_socket() && UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
    }
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    let me = abstract_name("switch");
    let data = bound_dgram(&me)?;
    let mut ports: HashMap<u64, Port> = HashMap::new();
    let mut next_id = 1u64;
    let mut macs: HashMap<[u8; 6], (u64, Instant)> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let mut fds = vec![listener.as_raw_fd(), data.as_raw_fd()];
        let ids: Vec<u64> = ports.keys().copied().collect();
        fds.extend(ids.iter().map(|id| ports[id].ctl.as_raw_fd()));
        let rev = poll_in(&fds, None);
        if rev[0] != 0 {
            while let Ok((s, _)) = listener.accept() {
                if ports.len() >= MAX_PORTS || s.set_nonblocking(true).is_err() {
                    continue;
                }
                ports.insert(
                    next_id,
                    Port {
                        ctl: s,
                        sock: [0; SUN_LEN],
                        req: Vec::new(),
                        ready: false,
                    },
                );
                next_id += 1;
            }
        }
        for (k, id) in ids.iter().enumerate() {
            if rev[2 + k] == 0 {
                continue;
            }
            let Some(p) = ports.get_mut(id) else {
                continue;
            };
            let mut b = [0u8; REQUEST_LEN];
            let want = if p.ready {
                b.len()
            } else {
                REQUEST_LEN - p.req.len()
            };
            let gone = match (&p.ctl).read(&mut b[..want]) {
                Ok(0) => true,
                Ok(n) if !p.ready => {
                    p.req.extend_from_slice(&b[..n]);
                    if p.req.len() == REQUEST_LEN {
                        let word = |i: usize| {
                            u32::from_ne_bytes([p.req[i], p.req[i + 1], p.req[i + 2], p.req[i + 3]])
                        };
                        if word(0) != SWITCH_MAGIC
                            || word(4) != SWITCH_VERSION
                            || word(8) != REQ_NEW_CONTROL
                            || u16::from_ne_bytes([p.req[12], p.req[13]]) != libc::AF_UNIX as u16
                        {
                            log(&format!("port {id}: bad request, closed"));
                            true
                        } else {
                            p.sock.copy_from_slice(&p.req[12..]);
                            p.ready = true;
                            p.ctl.set_nonblocking(false).ok();
                            let ok = (&p.ctl).write_all(&me).is_ok();
                            p.ctl.set_nonblocking(true).ok();
                            if ok {
                                log(&format!("New connection: port {id}"));
                            }
                            !ok
                        }
                    } else {
                        false
                    }
                }
                // Anything more on the control connection is ignored.
                Ok(_) => false,
                Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            };
            if gone {
                ports.remove(id);
                macs.retain(|_, (pid, _)| pid != id);
                log(&format!("Closed port {id}"));
            }
        }
        if rev[1] == 0 {
            continue;
        }
        // A bounded batch, so that control sockets are served too.
        for _ in 0..256 {
            let Some((n, from)) = recv_from(data.as_raw_fd(), &mut buf) else {
                break;
            };
            if !(MIN_FRAME..=MAX_FRAME).contains(&n) {
                continue;
            }
            let Some((&src_port, _)) = ports.iter().find(|(_, p)| p.ready && p.sock == from) else {
                continue;
            };
            let frame = &buf[..n];
            let mut dst = [0u8; 6];
            dst.copy_from_slice(&frame[0..6]);
            let mut src = [0u8; 6];
            src.copy_from_slice(&frame[6..12]);
            let now = Instant::now();
            if src[0] & 1 == 0 && (macs.len() < MAX_MACS || macs.contains_key(&src)) {
                macs.insert(src, (src_port, now));
            }
            if macs.len() >= MAX_MACS {
                macs.retain(|_, (_, t)| now.duration_since(*t) < MAC_EXPIRE);
            }
            let known = if hub || dst[0] & 1 != 0 {
                None
            } else {
                macs.get(&dst)
                    .filter(|(_, t)| now.duration_since(*t) < MAC_EXPIRE)
                    .map(|(p, _)| *p)
            };
            match known {
                Some(p) if p == src_port => {}
                Some(p) => {
                    if let Some(port) = ports.get(&p) {
                        send_to(data.as_raw_fd(), frame, Some(&port.sock));
                    }
                }
                None => {
                    for (id, port) in ports.iter() {
                        if *id != src_port && port.ready {
                            send_to(data.as_raw_fd(), frame, Some(&port.sock));
                        }
                    }
                }
            }
        }
    }
}
