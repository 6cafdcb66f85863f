//! The host side of instance management, as UML's `umid.c` and
//! `mconsole_user.c`: the instance directory `UML_DIR/UMID` with its `pid`
//! file and the management console's unix datagram socket `mconsole`, the
//! wire format of UML's mconsole protocol (version 2), a client for it
//! (`ruml ctl`), and the host signals that ask the instance to shut down.
//!
//! The command logic lives in the kernel (`ruml_kernel::mconsole`); this
//! module only moves datagrams.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

/// `MCONSOLE_MAGIC`: the first word of every version 1+ request.
pub const MAGIC: u32 = 0xcafe_babe;
/// `MCONSOLE_VERSION`.
pub const VERSION: u32 = 2;
/// `MCONSOLE_MAX_DATA`: the data field of a request or reply.
pub const MAX_DATA: usize = 512;
/// magic, version, len.
const REQ_HEADER: usize = 12;
/// err, more, len.
const REPLY_HEADER: usize = 12;

/// One request as it came off the socket (not yet validated).
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
}

/// What a request datagram holds, after the checks UML's
/// `mconsole_get_request` makes.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A well-formed version-2 request: its command text.
    Command(Vec<u8>),
    /// No magic: an unversioned (version 0) client, answered in plain text.
    Version0,
    /// Magic present but the request is not acceptable; the reply's text.
    Bad(&'static str),
}

/// Decodes a request datagram. Anything that is not exactly a header plus
/// `len` bytes of data (at most `MAX_DATA - 1`) is refused.
pub fn parse_request(b: &[u8]) -> Request {
    if b.len() < 4 || u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) != MAGIC {
        return Request::Version0;
    }
    if b.len() < REQ_HEADER {
        return Request::Bad("Short request");
    }
    let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (version, len) = (word(4), word(8) as usize);
    if b.len() > REQ_HEADER + MAX_DATA || len >= MAX_DATA {
        return Request::Bad("Request too large");
    }
    if version != VERSION {
        return Request::Bad("This driver only supports version 2 clients");
    }
    if REQ_HEADER + len > b.len() {
        return Request::Bad("Request shorter than its length field");
    }
    let data = &b[REQ_HEADER..REQ_HEADER + len];
    // The C side treats the data as a NUL-terminated string.
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    Request::Command(data[..end].to_vec())
}

/// Encodes a request (what `uml_mconsole` sends).
pub fn encode_request(cmd: &[u8]) -> Option<Vec<u8>> {
    if cmd.len() >= MAX_DATA {
        return None;
    }
    let mut v = Vec::with_capacity(REQ_HEADER + cmd.len());
    v.extend_from_slice(&MAGIC.to_ne_bytes());
    v.extend_from_slice(&VERSION.to_ne_bytes());
    v.extend_from_slice(&(cmd.len() as u32).to_ne_bytes());
    v.extend_from_slice(cmd);
    Some(v)
}

/// Splits a reply text into reply datagrams as UML does: at most
/// `MAX_DATA - 1` bytes each plus a NUL, `err` on the first only, `more`
/// set on all but the last (whose `more` is the caller's).
pub fn encode_reply(text: &[u8], err: bool, more: bool) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = if text.is_empty() {
        vec![&[][..]]
    } else {
        text.chunks(MAX_DATA - 1).collect()
    };
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = Vec::with_capacity(REPLY_HEADER + c.len() + 1);
            v.extend_from_slice(&u32::from(err && i == 0).to_ne_bytes());
            v.extend_from_slice(&u32::from(i + 1 < n || more).to_ne_bytes());
            v.extend_from_slice(&(c.len() as u32 + 1).to_ne_bytes());
            v.extend_from_slice(c);
            v.push(0);
            v
        })
        .collect()
}

/// One decoded reply datagram: (err, more, text).
pub fn parse_reply(b: &[u8]) -> Option<(bool, bool, Vec<u8>)> {
    if b.len() < REPLY_HEADER {
        return None;
    }
    let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    // A reply is exactly its header plus `len` bytes (anything else is a
    // version 0 server's plain text).
    let len = word(8) as usize;
    if REPLY_HEADER + len != b.len() || word(0) > 1 || word(4) > 1 {
        return None;
    }
    let data = &b[REPLY_HEADER..];
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    Some((word(0) != 0, word(4) != 0, data[..end].to_vec()))
}

/// `~/.uml`, UML's default `uml_dir`.
pub fn default_uml_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h).join(".uml"),
        _ => PathBuf::from("/tmp/uml"),
    }
}

/// A fresh random umid: six letters and digits, as UML's mkdtemp names.
pub fn random_umid() -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 6];
    // SAFETY: getrandom into a local buffer of its stated length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        b = (t as u64).to_le_bytes()[..6].try_into().unwrap_or([0; 6]);
    }
    b.iter()
        .map(|&x| SET[x as usize % SET.len()] as char)
        .collect()
}

/// Whether `umid` is a usable instance name (one path component).
pub fn valid_umid(umid: &str) -> bool {
    !umid.is_empty()
        && umid.len() <= 64
        && umid != "."
        && umid != ".."
        && umid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+@:".contains(&c))
}

/// The pid recorded in an instance directory, if any.
pub fn read_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p: &i32| p > 0)
}

/// Whether host process `pid` exists and has not exited (a zombie, dead
/// but not yet reaped, counts as gone).
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for the process.
    let exists = unsafe { libc::kill(pid, 0) == 0 || crate::sys::errno() == libc::EPERM };
    if !exists {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name's closing parenthesis.
        Ok(st) => !st
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

/// A live instance's directory: `UML_DIR/UMID` holding `pid` and the
/// `mconsole` socket. Created at boot; [`InstanceDir::remove`] (at halt)
/// takes it away. A directory left by a killed instance is replaced.
pub struct InstanceDir {
    pub dir: PathBuf,
    pub umid: String,
    socket: UnixDatagram,
}

impl InstanceDir {
    /// Creates `uml_dir/umid`. Returns the directory and, if a stale one
    /// (its pid dead) was replaced, a note saying so. A directory whose
    /// process is alive is refused.
    pub fn create(uml_dir: &Path, umid: &str) -> Result<(InstanceDir, Option<String>), String> {
        if !valid_umid(umid) {
            return Err(format!(
                "bad umid={umid}: use letters, digits and ._-+@: (at most 64)"
            ));
        }
        std::fs::create_dir_all(uml_dir)
            .map_err(|e| format!("cannot create uml_dir {}: {e}", uml_dir.display()))?;
        let dir = uml_dir.join(umid);
        let mut note = None;
        if std::fs::symlink_metadata(&dir).is_ok() {
            match read_pid(&dir) {
                Some(pid) if pid_alive(pid) && pid != std::process::id() as i32 => {
                    return Err(format!(
                        "umid {umid} is in use by the running instance with host pid {pid} ({}); \
                         choose another umid= or stop it with `ruml ctl {umid} halt`",
                        dir.display()
                    ))
                }
                pid => {
                    let what = match pid {
                        Some(p) => format!("its process {p} is gone"),
                        None => "it has no pid file".to_string(),
                    };
                    remove_any(&dir)
                        .map_err(|e| format!("cannot remove stale {}: {e}", dir.display()))?;
                    note = Some(format!(
                        "umid {umid}: replaced the stale directory {} ({what})",
                        dir.display()
                    ));
                }
            }
        }
        std::fs::DirBuilder::new()
            .mode_0700()
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        std::fs::write(dir.join("pid"), format!("{}\n", std::process::id())).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("cannot write {}/pid: {e}", dir.display())
        })?;
        let sock_path = dir.join("mconsole");
        if sock_path.as_os_str().len() >= 108 {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "{} is too long for a unix socket path; give a shorter uml_dir=",
                sock_path.display()
            ));
        }
        let socket = UnixDatagram::bind(&sock_path).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("cannot bind {}: {e}", sock_path.display())
        })?;
        Ok((
            InstanceDir {
                dir,
                umid: umid.to_string(),
                socket,
            },
            note,
        ))
    }

    /// The management socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("mconsole")
    }

    /// A second handle on the socket (for the server thread).
    pub fn server(&self) -> io::Result<Server> {
        Ok(Server {
            socket: self.socket.try_clone()?,
        })
    }

    /// Removes the directory (halt).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.dir.join("mconsole"));
        let _ = std::fs::remove_file(self.dir.join("pid"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

trait Mode0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl Mode0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The receiving end of the management socket.
pub struct Server {
    socket: UnixDatagram,
}

impl Server {
    /// Waits for the next datagram. Datagrams longer than a request are
    /// received truncated, with one byte more than a request holds, so
    /// that they can be refused as too large.
    pub fn recv(&self) -> io::Result<Datagram> {
        let mut buf = vec![0u8; REQ_HEADER + MAX_DATA + 1];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    buf.truncate(n);
                    return Ok(Datagram { bytes: buf, from });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends reply datagrams to a request's sender (an unbound sender
    /// cannot be answered; that is its problem, not ours).
    pub fn reply(&self, to: &SocketAddr, packets: &[Vec<u8>]) {
        for p in packets {
            let r = if let Some(path) = to.as_pathname() {
                self.socket.send_to(p, path)
            } else if to.as_abstract_name().is_some() {
                self.socket.send_to_addr(p, to)
            } else {
                return;
            };
            if r.is_err() {
                return;
            }
        }
    }

    /// A raw text reply for version 0 clients.
    pub fn reply_raw(&self, to: &SocketAddr, text: &[u8]) {
        self.reply(to, &[text.to_vec()]);
    }
}

/// Sends `cmd` to the mconsole socket at `path` and collects the reply:
/// (err, text). The client binds an abstract address of its own, as
/// `uml_mconsole` does, so that the instance can answer.
pub fn client_request(
    path: &Path,
    cmd: &[u8],
    timeout: Duration,
) -> Result<(bool, Vec<u8>), String> {
    let req = encode_request(cmd)
        .ok_or_else(|| format!("command too long (at most {} bytes)", MAX_DATA - 1))?;
    send_raw(path, &req, timeout)
}

/// Sends one raw datagram and collects the reply (for `ruml ctl` and
/// tests of malformed requests).
pub fn send_raw(
    path: &Path,
    datagram: &[u8],
    timeout: Duration,
) -> Result<(bool, Vec<u8>), String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "ruml-ctl-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())?;
    let sock = UnixDatagram::bind_addr(&addr).map_err(|e| format!("cannot bind a socket: {e}"))?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    sock.send_to(datagram, path)
        .map_err(|e| format!("cannot reach {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut err = false;
    let mut first = true;
    let mut buf = vec![0u8; REPLY_HEADER + MAX_DATA];
    loop {
        let n = sock
            .recv(&mut buf)
            .map_err(|e| format!("no reply from {}: {e}", path.display()))?;
        let Some((e, more, text)) = parse_reply(&buf[..n]) else {
            // A version 0 (plain text) reply.
            return Ok((true, buf[..n].to_vec()));
        };
        if first {
            err = e;
            first = false;
        }
        out.extend_from_slice(&text);
        if !more {
            return Ok((err, out));
        }
    }
}

// --- host signals that ask for a shutdown ---------------------------------

static SIG_PIPE_R: AtomicI32 = AtomicI32::new(-1);
static SIG_PIPE_W: AtomicI32 = AtomicI32::new(-1);
static SIG_COUNT: AtomicU32 = AtomicU32::new(0);

extern "C" fn shutdown_handler(sig: i32) {
    let n = SIG_COUNT.fetch_add(1, Ordering::SeqCst);
    if n >= 2 {
        // A third one: the kernel did not manage to halt. Leave now, with
        // the terminal as it was.
        crate::console::restore();
        // SAFETY: async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
    let w = SIG_PIPE_W.load(Ordering::SeqCst);
    if w >= 0 {
        let b = sig as u8;
        // SAFETY: a one-byte write to our own non-blocking pipe.
        unsafe {
            libc::write(w, (&b as *const u8).cast(), 1);
        }
    }
}

/// Catches SIGTERM and SIGINT to ruml; [`wait_shutdown_signal`] reports
/// them. Call before the console enters raw mode (whose own handlers then
/// leave these two alone).
pub fn catch_shutdown_signals() -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setting O_NONBLOCK on our own fd.
    unsafe {
        let fl = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    SIG_PIPE_R.store(fds[0], Ordering::SeqCst);
    SIG_PIPE_W.store(fds[1], Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installing an async-signal-safe handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = shutdown_handler as extern "C" fn(i32) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Blocks until SIGTERM or SIGINT reaches ruml; returns the signal and
/// how many have arrived so far (1 for the first).
pub fn wait_shutdown_signal() -> Option<(i32, u32)> {
    let r = SIG_PIPE_R.load(Ordering::SeqCst);
    if r < 0 {
        return None;
    }
    let mut b = 0u8;
    loop {
        // SAFETY: a one-byte read into a local.
        let n = unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            return Some((i32::from(b), SIG_COUNT.load(Ordering::SeqCst).min(2)));
        }
        if n < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_refusals() {
        let r = encode_request(b"version").unwrap();
        assert_eq!(parse_request(&r), Request::Command(b"version".to_vec()));
        assert_eq!(parse_request(b"version"), Request::Version0);
        assert_eq!(parse_request(&r[..8]), Request::Bad("Short request"));
        let mut long = r.clone();
        long.resize(REQ_HEADER + MAX_DATA + 1, b'x');
        assert_eq!(parse_request(&long), Request::Bad("Request too large"));
        let mut lie = r.clone();
        lie[8..12].copy_from_slice(&100u32.to_ne_bytes());
        assert!(matches!(parse_request(&lie), Request::Bad(_)));
        let mut big = r.clone();
        big[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_request(&big), Request::Bad("Request too large"));
        let mut v1 = r;
        v1[4..8].copy_from_slice(&1u32.to_ne_bytes());
        assert!(matches!(parse_request(&v1), Request::Bad(_)));
        assert!(encode_request(&[b'a'; MAX_DATA]).is_none());
    }

    #[test]
    fn replies_split_as_uml() {
        let text = vec![b'x'; 1200];
        let p = encode_reply(&text, true, false);
        assert_eq!(p.len(), 3);
        let d: Vec<_> = p.iter().map(|b| parse_reply(b).unwrap()).collect();
        assert!(d[0].0 && !d[1].0 && !d[2].0);
        assert!(d[0].1 && d[1].1 && !d[2].1);
        assert_eq!(d.iter().map(|x| x.2.len()).sum::<usize>(), 1200);
        assert_eq!(
            parse_reply(&encode_reply(b"", false, false)[0]).unwrap().2,
            b""
        );
    }

    #[test]
    fn umid_names() {
        assert!(valid_umid("abc-1.2"));
        assert!(!valid_umid("../x"));
        assert!(!valid_umid(""));
        assert!(!valid_umid(".."));
        let r = random_umid();
        assert_eq!(r.len(), 6);
        assert!(valid_umid(&r));
    }
}
