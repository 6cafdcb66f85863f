//! AF_UNIX sockets in full (stream, datagram, seqpacket; socketpair;
//! filesystem and abstract addresses; SCM_RIGHTS and SCM_CREDENTIALS;
//! SO_PEERCRED; shutdown). The socket system calls reach these handlers
//! through [`crate::net`]'s dispatch.
//!
//! A [`UnixSocket`] keeps its own receive queue; a sender appends to its
//! peer's. Each socket's state is behind one mutex; two sockets' locks are
//! never held at once (the sender locks only the receiver). Every change
//! wakes the socket's [`Waiters`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{
    PollEvents, Waiters, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, READABLE, WRITABLE,
};
use crate::fs::types::oflags::{O_NONBLOCK, O_RDWR};
use crate::fs::types::{FileType, S_IFSOCK};
use crate::fs::vfs::FileOps;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::Task;

const AF_UNIX: i32 = 1;
const SOCK_STREAM: i32 = 1;
const SOCK_DGRAM: i32 = 2;
const SOCK_SEQPACKET: i32 = 5;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
const MSG_PEEK: i32 = 2;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_EOR: i32 = 0x80;
const MSG_WAITALL: i32 = 0x100;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;
const MSG_CTRUNC: i32 = 0x8;
/// The default socket buffer (net.core.wmem_default).
const BUF_SIZE: usize = 212_992;
const SUN_PATH_MAX: usize = 108;

/// A socket's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Addr {
    /// Linux's abstract namespace: sun_path[0] == 0.
    Abstract(Vec<u8>),
    /// A filesystem socket: its path as bound, and its inode's key.
    Path(Vec<u8>, (u64, u64)),
}

impl Addr {
    /// The registry key of this name for a socket of network namespace
    /// `net`: abstract names are per namespace, filesystem names are not
    /// (an inode is reachable from any namespace that sees the file).
    fn key(&self, net: u64) -> AddrKey {
        match self {
            Addr::Abstract(n) => AddrKey::Abstract(net, n.clone()),
            Addr::Path(_, k) => AddrKey::Inode(*k),
        }
    }

    /// `struct sockaddr_un` bytes, as getsockname returns them.
    fn to_sockaddr(a: Option<&Addr>) -> Vec<u8> {
        let mut v = (AF_UNIX as u16).to_le_bytes().to_vec();
        match a {
            None => {}
            Some(Addr::Abstract(n)) => {
                v.push(0);
                v.extend_from_slice(n);
            }
            Some(Addr::Path(p, _)) => {
                v.extend_from_slice(p);
                v.push(0);
            }
        }
        v
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AddrKey {
    Abstract(u64, Vec<u8>),
    Inode((u64, u64)),
}

/// Bound sockets by address.
fn names() -> &'static Mutex<HashMap<AddrKey, Weak<UnixSocket>>> {
    static N: OnceLock<Mutex<HashMap<AddrKey, Weak<UnixSocket>>>> = OnceLock::new();
    N.get_or_init(|| Mutex::new(HashMap::new()))
}

/// One message or stream segment in a receive queue.
struct Msg {
    data: Vec<u8>,
    fds: Vec<FileRef>,
    creds: (i32, u32, u32),
    from: Option<Addr>,
}

#[derive(Default)]
struct State {
    bound: Option<Addr>,
    peer: Option<Weak<UnixSocket>>,
    /// The peer's name at connect time (getpeername after it closes).
    peer_addr: Option<Addr>,
    connected: bool,
    recv: VecDeque<Msg>,
    recv_bytes: usize,
    listening: Option<(usize, VecDeque<Arc<UnixSocket>>)>,
    shut_rd: bool,
    shut_wr: bool,
    /// The peer shut its writing side or went away.
    peer_gone: bool,
    passcred: bool,
    peercred: Option<(i32, u32, u32)>,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    error: Option<Errno>,
}

/// An AF_UNIX socket.
pub struct UnixSocket {
    typ: i32,
    /// The network namespace it was made in (its creator's): the one
    /// whose /proc/net/unix lists it.
    net: u64,
    state: Mutex<State>,
    waiters: Waiters,
}

impl UnixSocket {
    fn new(typ: i32) -> Arc<UnixSocket> {
        Arc::new(UnixSocket {
            typ,
            net: crate::task::ns::current_net(),
            state: Mutex::new(State::default()),
            waiters: Waiters::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stream(&self) -> bool {
        self.typ == SOCK_STREAM
    }

    fn peer(&self) -> Option<Arc<UnixSocket>> {
        self.lock().peer.as_ref().and_then(|w| w.upgrade())
    }

    /// Appends a message to this socket's queue (the sender's side).
    fn deliver(&self, msg: Msg) {
        {
            let mut s = self.lock();
            s.recv_bytes += msg.data.len();
            s.recv.push_back(msg);
        }
        self.waiters.wake_all();
    }

    fn room(&self, n: usize) -> bool {
        let s = self.lock();
        s.recv_bytes == 0 || s.recv_bytes + n <= BUF_SIZE
    }
}

fn creds_of(task: &Task) -> (i32, u32, u32) {
    (task.tgid(), 0, 0)
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let (bound, peer) = {
            let s = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
            (s.bound.take(), s.peer.take())
        };
        if let Some(a) = bound {
            let mut n = names().lock().unwrap_or_else(|p| p.into_inner());
            if n.get(&a.key(self.net))
                .is_some_and(|w| w.strong_count() == 0)
            {
                n.remove(&a.key(self.net));
            }
        }
        if let Some(p) = peer.and_then(|w| w.upgrade()) {
            p.lock().peer_gone = true;
            p.waiters.wake_all();
        }
    }
}

/// The open-file face of a socket.
struct SocketFile(Arc<UnixSocket>);

impl FileOps for SocketFile {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let (n, _, _) = recv(
            &self.0,
            task,
            buf,
            if f.nonblocking() { MSG_DONTWAIT } else { 0 },
        )?;
        Ok(n)
    }
    fn write(&self, f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.write_as(f, off, buf, None)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        send(
            &self.0,
            task,
            buf,
            Vec::new(),
            None,
            if f.nonblocking() { MSG_DONTWAIT } else { 0 },
        )
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let sock = &self.0;
        let (readable, listening, shut_rd, shut_wr, gone, connected) = {
            let s = sock.lock();
            (
                !s.recv.is_empty() || s.listening.as_ref().is_some_and(|l| !l.1.is_empty()),
                s.listening.is_some(),
                s.shut_rd,
                s.shut_wr,
                s.peer_gone,
                s.connected,
            )
        };
        let mut ev = 0;
        if readable {
            ev |= READABLE;
        }
        if listening {
            return ev;
        }
        if shut_rd || gone {
            ev |= READABLE | POLLRDHUP;
        }
        if (shut_wr && (shut_rd || gone)) || (gone && sock.typ != SOCK_DGRAM) {
            ev |= POLLHUP;
        }
        let writable = match sock.peer() {
            Some(p) => p.room(1),
            None => !connected && sock.typ == SOCK_DGRAM,
        };
        if writable && !shut_wr {
            ev |= WRITABLE;
        }
        ev
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.0.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        &self.0
    }
    /// `scm_fds:` descriptors in flight to this socket (datagram or
    /// connected; for a listener, to the connections it has yet to
    /// accept), as Linux's unix_show_fdinfo.
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<crate::task::ns::PidNs>, out: &mut String) {
        let queued = |s: &State| s.recv.iter().map(|m| m.fds.len()).sum::<usize>();
        let s = self.0.lock();
        let n = if let Some((_, pending)) = &s.listening {
            let pending: Vec<Arc<UnixSocket>> = pending.iter().cloned().collect();
            drop(s);
            pending.iter().map(|p| queued(&p.lock())).sum()
        } else if self.0.typ == SOCK_DGRAM || s.connected {
            queued(&s)
        } else {
            0
        };
        out.push_str(&format!("scm_fds: {n}\n"));
    }
    fn ioctl(
        &self,
        _f: &OpenFile,
        cmd: u32,
        arg: u64,
        ctx: &crate::syscalls::SyscallContext<'_>,
    ) -> KResult<u64> {
        if super::iface::is_if_ioctl(cmd) {
            return super::iface::ioctl(ctx, cmd, arg);
        }
        error!(ENOTTY)
    }
}

fn new_file(sock: Arc<UnixSocket>, nonblock: bool) -> FileRef {
    anon_file(
        "socket",
        Arc::new(SocketFile(sock)),
        O_RDWR | if nonblock { O_NONBLOCK } else { 0 },
    )
}

fn socket_of(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<(FileRef, Arc<UnixSocket>)> {
    let f = ctx.files().get(fd.0)?;
    let ops = f.ops().map_err(|_| crate::errno!(ENOTSOCK))?.clone();
    match ops.as_any_ops().downcast_ref::<Arc<UnixSocket>>() {
        Some(s) => Ok((f.clone(), s.clone())),
        None => error!(ENOTSOCK),
    }
}

/// Waits on `sock` until `ready()`; honours nonblocking and timeouts.
fn block(
    sock: &UnixSocket,
    task: Option<&Arc<Task>>,
    nonblock: bool,
    timeout: Option<Duration>,
    mut ready: impl FnMut() -> bool,
) -> KResult<()> {
    if ready() {
        return Ok(());
    }
    if nonblock {
        return error!(EAGAIN);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    match sock.waiters.wait(task, deadline, ready) {
        Err(Errno::ETIMEDOUT) => error!(EAGAIN),
        r => r,
    }
}

/// Sends `data` (with `fds`) from `sock`, to its peer or to `to`.
fn send(
    sock: &Arc<UnixSocket>,
    task: Option<&Arc<Task>>,
    data: &[u8],
    fds: Vec<FileRef>,
    to: Option<Arc<UnixSocket>>,
    flags: i32,
) -> KResult<usize> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let (shut_wr, timeout, bound, connected) = {
        let s = sock.lock();
        (s.shut_wr, s.sndtimeo, s.bound.clone(), s.connected)
    };
    let epipe = |task: Option<&Arc<Task>>| {
        if flags & MSG_NOSIGNAL == 0 {
            if let Some(t) = task {
                crate::signal::send_sigpipe(t);
            }
        }
        crate::errno!(EPIPE)
    };
    if shut_wr {
        return Err(epipe(task));
    }
    let dest = match to {
        Some(d) => d,
        None => match sock.peer() {
            Some(p) => p,
            None if sock.typ == SOCK_DGRAM && !connected => return error!(EDESTADDRREQ),
            None if connected => {
                return Err(if sock.typ == SOCK_DGRAM {
                    crate::errno!(ECONNREFUSED)
                } else {
                    epipe(task)
                })
            }
            None => return error!(ENOTCONN),
        },
    };
    if dest.lock().shut_rd && sock.typ != SOCK_DGRAM {
        return Err(epipe(task));
    }
    let creds = task.map(|t| creds_of(t)).unwrap_or((0, 0, 0));
    if sock.stream() {
        // A stream: as much as fits, blocking for room; fds go with the
        // first segment.
        let mut done = 0;
        let mut fds = Some(fds);
        while done < data.len() {
            let r = block(sock, task, nonblock, timeout, || {
                dest.room(1) || dest.lock().shut_rd
            });
            if let Err(e) = r {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
            if dest.lock().shut_rd {
                return if done > 0 { Ok(done) } else { Err(epipe(task)) };
            }
            let space = {
                let s = dest.lock();
                BUF_SIZE
                    .saturating_sub(s.recv_bytes)
                    .max(if s.recv_bytes == 0 { 1 } else { 0 })
            };
            let n = space.min(data.len() - done).min(65536);
            dest.deliver(Msg {
                data: data[done..done + n].to_vec(),
                fds: fds.take().unwrap_or_default(),
                creds,
                from: None,
            });
            done += n;
        }
        if data.is_empty() {
            if let Some(f) = fds.take().filter(|f| !f.is_empty()) {
                dest.deliver(Msg {
                    data: Vec::new(),
                    fds: f,
                    creds,
                    from: None,
                });
            }
        }
        return Ok(done);
    }
    // Datagrams and seqpackets: whole messages.
    if data.len() > BUF_SIZE {
        return error!(EMSGSIZE);
    }
    block(sock, task, nonblock, timeout, || dest.room(data.len()))?;
    dest.deliver(Msg {
        data: data.to_vec(),
        fds,
        creds,
        from: bound,
    });
    Ok(data.len())
}

/// What a receive took: bytes, the file descriptors and credentials that
/// came with them, the sender's address, and MSG_* flags.
struct Received {
    fds: Vec<FileRef>,
    creds: Option<(i32, u32, u32)>,
    from: Option<Addr>,
    flags: i32,
}

fn recv(
    sock: &Arc<UnixSocket>,
    task: Option<&Arc<Task>>,
    buf: &mut [u8],
    flags: i32,
) -> KResult<(usize, Received, usize)> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeout = sock.lock().rcvtimeo;
    let eof = |s: &State| s.shut_rd || s.peer_gone;
    if sock.lock().listening.is_some() {
        return error!(EINVAL);
    }
    if sock.typ != SOCK_DGRAM && !sock.lock().connected {
        return error!(ENOTCONN);
    }
    block(sock, task, nonblock, timeout, || {
        let s = sock.lock();
        !s.recv.is_empty() || (sock.typ != SOCK_DGRAM && eof(&s))
    })?;
    let peek = flags & MSG_PEEK != 0;
    let mut s = sock.lock();
    let passcred = s.passcred;
    let mut out = Received {
        fds: Vec::new(),
        creds: None,
        from: None,
        flags: 0,
    };
    if sock.stream() {
        let mut n = 0;
        let mut i = 0;
        while n < buf.len() && i < s.recv.len() {
            // Stop before a segment that carries descriptors, once
            // something has been read.
            if n > 0 && !s.recv[i].fds.is_empty() {
                break;
            }
            let take = (buf.len() - n).min(s.recv[i].data.len());
            buf[n..n + take].copy_from_slice(&s.recv[i].data[..take]);
            n += take;
            if !peek {
                let m = &mut s.recv[i];
                if out.fds.is_empty() {
                    out.fds = std::mem::take(&mut m.fds);
                }
                out.creds = Some(m.creds);
                m.data.drain(..take);
                if m.data.is_empty() {
                    s.recv.remove(i);
                } else {
                    i += 1;
                }
            } else {
                out.creds = Some(s.recv[i].creds);
                i += 1;
            }
        }
        if !peek {
            s.recv_bytes -= n;
        }
        drop(s);
        if !peek {
            if let Some(p) = sock.peer() {
                p.waiters.wake_all();
            }
            sock.waiters.wake_all();
        }
        if !passcred {
            out.creds = None;
        }
        return Ok((n, out, n));
    }
    let Some(m) = (if peek {
        s.recv.front().map(|m| Msg {
            data: m.data.clone(),
            fds: Vec::new(),
            creds: m.creds,
            from: m.from.clone(),
        })
    } else {
        s.recv.pop_front()
    }) else {
        // EOF on a seqpacket socket.
        return Ok((0, out, 0));
    };
    if !peek {
        s.recv_bytes -= m.data.len();
    }
    drop(s);
    let n = buf.len().min(m.data.len());
    buf[..n].copy_from_slice(&m.data[..n]);
    if m.data.len() > n {
        out.flags |= MSG_TRUNC;
    }
    out.fds = m.fds;
    out.creds = passcred.then_some(m.creds);
    out.from = m.from;
    sock.waiters.wake_all();
    Ok((n, out, m.data.len()))
}

fn check_type(domain: i32, typ: i32, protocol: i32) -> KResult<(i32, bool, bool)> {
    if typ & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    if domain != AF_UNIX {
        // Only local sockets exist in ruml so far.
        return error!(EAFNOSUPPORT);
    }
    let t = typ & 0xf;
    if !matches!(t, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
        return error!(ESOCKTNOSUPPORT);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return error!(EPROTONOSUPPORT);
    }
    Ok((t, typ & SOCK_NONBLOCK != 0, typ & SOCK_CLOEXEC != 0))
}

pub(super) fn sys_socket(
    ctx: &mut SyscallContext<'_>,
    domain: i32,
    typ: i32,
    protocol: i32,
) -> KResult<u64> {
    let (t, nb, ce) = check_type(domain, typ, protocol)?;
    let f = new_file(UnixSocket::new(t), nb);
    ctx.files().alloc(f, ce).map(|fd| fd as u64)
}

fn pair(a: &Arc<UnixSocket>, b: &Arc<UnixSocket>, ca: (i32, u32, u32), cb: (i32, u32, u32)) {
    {
        let mut s = a.lock();
        s.peer = Some(Arc::downgrade(b));
        s.connected = true;
        s.peercred = Some(cb);
    }
    let mut s = b.lock();
    s.peer = Some(Arc::downgrade(a));
    s.connected = true;
    s.peercred = Some(ca);
}

pub(super) fn sys_socketpair(
    ctx: &mut SyscallContext<'_>,
    domain: i32,
    typ: i32,
    protocol: i32,
    sv: UserAddr,
) -> KResult<u64> {
    let (t, nb, ce) = check_type(domain, typ, protocol)?;
    let (a, b) = (UnixSocket::new(t), UnixSocket::new(t));
    let c = creds_of(ctx.task);
    pair(&a, &b, c, c);
    if ctx.mm().accessible_len(sv.0, 8, true) < 8 {
        return error!(EFAULT);
    }
    let (fa, fb) = ctx
        .files()
        .alloc_pair(new_file(a, nb), new_file(b, nb), ce)?;
    ctx.mm().write_val(sv.0, &[fa, fb])?;
    Ok(0)
}

/// Reads a `sockaddr_un`: (abstract?, name bytes).
fn read_addr(ctx: &SyscallContext<'_>, addr: UserAddr, len: u32) -> KResult<(bool, Vec<u8>)> {
    let len = len as usize;
    if !(2..=2 + SUN_PATH_MAX).contains(&len) {
        return error!(EINVAL);
    }
    let mut b = vec![0u8; len];
    ctx.mm().read_bytes(addr.0, &mut b)?;
    if u16::from_le_bytes([b[0], b[1]]) as i32 != AF_UNIX {
        return error!(EINVAL);
    }
    let path = &b[2..];
    if path.first() == Some(&0) {
        return Ok((true, path[1..].to_vec()));
    }
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    if end == 0 {
        return error!(EINVAL);
    }
    Ok((false, path[..end].to_vec()))
}

fn path_key(ctx: &SyscallContext<'_>, path: &[u8]) -> KResult<(u64, u64)> {
    let fs = ctx.fs();
    let w = crate::fs::walker_for(&fs, ctx.task);
    let p = w.walk(&fs.cwd(), path, true)?;
    if p.inode().file_type() != FileType::Socket {
        return error!(ECONNREFUSED);
    }
    Ok(p.inode().key())
}

pub(super) fn sys_bind(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    let (abs, name) = read_addr(ctx, addr, len)?;
    if sock.lock().bound.is_some() {
        return error!(EINVAL);
    }
    let a = if abs {
        Addr::Abstract(name)
    } else {
        // A socket inode in the filesystem names it (EADDRINUSE if the path exists).
        let fs = ctx.fs();
        let w = crate::fs::walker_for(&fs, ctx.task);
        let (dir, last, _) = w.walk_parent(&fs.cwd(), &name)?;
        if w.lookup_one(&dir, &last).is_ok() {
            return error!(EADDRINUSE);
        }
        if dir.mnt.read_only() {
            return error!(EROFS);
        }
        dir.inode()
            .mknod(&last, S_IFSOCK | (0o777 & !fs.umask()), (0, 0))?;
        crate::fs::namei::dcache::changed();
        let key = w.lookup_one(&dir, &last)?.inode().key();
        Addr::Path(name, key)
    };
    let mut n = names().lock().unwrap_or_else(|p| p.into_inner());
    if n.get(&a.key(sock.net))
        .is_some_and(|w| w.strong_count() > 0)
    {
        return error!(EADDRINUSE);
    }
    n.insert(a.key(sock.net), Arc::downgrade(&sock));
    sock.lock().bound = Some(a);
    Ok(0)
}

pub(super) fn sys_listen(ctx: &mut SyscallContext<'_>, fd: Fd, backlog: i32) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    if sock.typ == SOCK_DGRAM {
        return error!(EOPNOTSUPP);
    }
    let mut s = sock.lock();
    if s.connected {
        return error!(EINVAL);
    }
    if s.bound.is_none() {
        // Linux autobinds an unbound listener to an abstract name.
        drop(s);
        autobind(&sock);
        s = sock.lock();
    }
    let b = backlog.clamp(0, crate::fs::procsys::somaxconn()) as usize;
    match &mut s.listening {
        Some(l) => l.0 = b,
        None => s.listening = Some((b, VecDeque::new())),
    }
    Ok(0)
}

fn autobind(sock: &Arc<UnixSocket>) {
    let mut n = names().lock().unwrap_or_else(|p| p.into_inner());
    let mut i = 0u32;
    loop {
        let name = format!("{i:05x}").into_bytes();
        let a = Addr::Abstract(name);
        if n.get(&a.key(sock.net))
            .is_none_or(|w| w.strong_count() == 0)
        {
            n.insert(a.key(sock.net), Arc::downgrade(sock));
            sock.lock().bound = Some(a);
            return;
        }
        i += 1;
    }
}

/// The socket bound to the name at `addr`, as seen from a socket of
/// network namespace `net` (Linux looks abstract names up in the
/// connecting socket's namespace, not the caller's current one).
fn lookup(
    ctx: &SyscallContext<'_>,
    net: u64,
    addr: UserAddr,
    len: u32,
) -> KResult<(Arc<UnixSocket>, Addr)> {
    let (abs, name) = read_addr(ctx, addr, len)?;
    let key = if abs {
        AddrKey::Abstract(net, name.clone())
    } else {
        AddrKey::Inode(path_key(ctx, &name)?)
    };
    let n = names().lock().unwrap_or_else(|p| p.into_inner());
    let target = n
        .get(&key)
        .and_then(|w| w.upgrade())
        .ok_or(crate::errno!(ECONNREFUSED))?;
    let a = target
        .lock()
        .bound
        .clone()
        .ok_or(crate::errno!(ECONNREFUSED))?;
    Ok((target, a))
}

pub(super) fn sys_connect(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let (f, sock) = socket_of(ctx, fd)?;
    let (target, taddr) = lookup(ctx, sock.net, addr, len)?;
    if target.typ != sock.typ {
        return error!(EPROTOTYPE);
    }
    if sock.typ == SOCK_DGRAM {
        let mut s = sock.lock();
        s.peer = Some(Arc::downgrade(&target));
        s.peer_addr = Some(taddr);
        s.connected = true;
        return Ok(0);
    }
    if sock.lock().connected {
        return error!(EISCONN);
    }
    // A new server-side socket, paired with us, queued for accept.
    let server = UnixSocket::new(sock.typ);
    loop {
        let mut ts = target.lock();
        let bound = ts.bound.clone();
        let Some((backlog, q)) = ts.listening.as_mut() else {
            return error!(ECONNREFUSED);
        };
        if q.len() > *backlog {
            // A full backlog: EAGAIN for nonblocking sockets; a blocking
            // connector waits for an accept (or a signal), as on Linux.
            drop(ts);
            if f.nonblocking() {
                return error!(EAGAIN);
            }
            let timeout = sock.lock().sndtimeo;
            let deadline = timeout.map(|t| Instant::now() + t);
            match target.waiters.wait(Some(ctx.task), deadline, || {
                target
                    .lock()
                    .listening
                    .as_ref()
                    .is_none_or(|(b, q)| q.len() <= *b)
            }) {
                Err(Errno::ETIMEDOUT) => return error!(EAGAIN),
                r => r?,
            }
            continue;
        }
        server.lock().bound = bound;
        let me = creds_of(ctx.task);
        pair(&sock, &server, me, me);
        q.push_back(server);
        break;
    }
    sock.lock().peer_addr = Some(taddr);
    target.waiters.wake_all();
    Ok(0)
}

fn write_addr(
    ctx: &SyscallContext<'_>,
    addr: UserAddr,
    len: UserAddr,
    a: Option<&Addr>,
) -> KResult<()> {
    if addr.is_null() {
        return Ok(());
    }
    let have: u32 = ctx.mm().read_val(len.0)?;
    if (have as i32) < 0 {
        return error!(EINVAL);
    }
    let bytes = Addr::to_sockaddr(a);
    let n = (have as usize).min(bytes.len());
    ctx.mm().write_bytes(addr.0, &bytes[..n])?;
    ctx.mm().write_val(len.0, &(bytes.len() as u32))?;
    Ok(())
}

pub(super) fn sys_accept4(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
    flags: i32,
) -> KResult<u64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    let (f, sock) = socket_of(ctx, fd)?;
    if sock.typ == SOCK_DGRAM {
        return error!(EOPNOTSUPP);
    }
    if sock.lock().listening.is_none() {
        return error!(EINVAL);
    }
    let mut got = None;
    let r = block(&sock, Some(ctx.task), f.nonblocking(), None, || {
        let mut s = sock.lock();
        got = s.listening.as_mut().and_then(|l| l.1.pop_front());
        got.is_some()
    });
    r?;
    let Some(conn) = got else {
        return error!(EAGAIN);
    };
    // Room in the queue: a connector waiting for it may go on.
    sock.waiters.wake_all();
    let nf = new_file(conn.clone(), flags & SOCK_NONBLOCK != 0);
    let nfd = ctx.files().alloc(nf, flags & SOCK_CLOEXEC != 0)?;
    let peer_name = conn.peer().and_then(|p| p.lock().bound.clone());
    write_addr(ctx, addr, len, peer_name.as_ref())?;
    Ok(nfd as u64)
}

pub(super) fn sys_getsockname(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    let a = sock.lock().bound.clone();
    write_addr(ctx, addr, len, a.as_ref())?;
    Ok(0)
}

pub(super) fn sys_getpeername(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    let (connected, a) = {
        let s = sock.lock();
        (s.connected, s.peer_addr.clone())
    };
    if !connected {
        return error!(ENOTCONN);
    }
    let a = a.or_else(|| sock.peer().and_then(|p| p.lock().bound.clone()));
    write_addr(ctx, addr, len, a.as_ref())?;
    Ok(0)
}

pub(super) fn sys_sendto(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    alen: u32,
) -> KResult<u64> {
    let (f, sock) = socket_of(ctx, fd)?;
    let mut data = vec![0u8; len.min(BUF_SIZE + 1)];
    ctx.mm().read_bytes(buf.0, &mut data)?;
    let to = if addr.is_null() || sock.typ != SOCK_DGRAM {
        if !addr.is_null() && sock.lock().connected {
            return error!(EISCONN);
        }
        None
    } else {
        Some(lookup(ctx, sock.net, addr, alen)?.0)
    };
    let fl = flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    send(&sock, Some(ctx.task), &data, Vec::new(), to, fl).map(|n| n as u64)
}

pub(super) fn sys_recvfrom(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    alen: UserAddr,
) -> KResult<u64> {
    let (f, sock) = socket_of(ctx, fd)?;
    let len = len.min(ctx.mm().accessible_len(buf.0, len, true));
    if len == 0 && ctx.mm().accessible_len(buf.0, 1, true) == 0 && !buf.is_null() {
        return error!(EFAULT);
    }
    let mut data = vec![0u8; len.min(1 << 20)];
    let fl = flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    let (n, rcv, full) = recv(&sock, Some(ctx.task), &mut data, fl)?;
    ctx.mm().write_bytes(buf.0, &data[..n])?;
    write_addr(ctx, addr, alen, rcv.from.as_ref())?;
    Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
}

crate::abi_struct! {
    /// `struct msghdr`.
    pub struct MsgHdr { pub name: u64, pub namelen: u32, pub pad: u32, pub iov: u64, pub iovlen: u64, pub control: u64, pub controllen: u64, pub flags: i32, pub pad2: u32 }
}

pub(super) fn sys_sendmsg(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    msg: UserAddr,
    flags: i32,
) -> KResult<u64> {
    let (f, sock) = socket_of(ctx, fd)?;
    let h: MsgHdr = ctx.mm().read_val(msg.0)?;
    if h.iovlen > 1024 {
        return error!(EMSGSIZE);
    }
    let segs = crate::fs::syscalls::read_iovecs(ctx, UserAddr(h.iov), h.iovlen as i32)?;
    let total: usize = segs.iter().map(|s| s.1).sum();
    let mut data = vec![0u8; total.min(BUF_SIZE + 1)];
    crate::fs::syscalls::gather(&ctx.mm(), &segs, 0, &mut data)?;
    // Ancillary data: SCM_RIGHTS (descriptors to pass), SCM_CREDENTIALS.
    let mut fds = Vec::new();
    if h.controllen > 0 {
        if h.controllen > 65536 {
            return error!(ENOBUFS);
        }
        let mut c = vec![0u8; h.controllen as usize];
        ctx.mm().read_bytes(h.control, &mut c)?;
        let mut off = 0usize;
        while off + 16 <= c.len() {
            let clen = u64::from_le_bytes(c[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
            let level = i32::from_le_bytes(c[off + 8..off + 12].try_into().unwrap_or([0; 4]));
            let typ = i32::from_le_bytes(c[off + 12..off + 16].try_into().unwrap_or([0; 4]));
            if clen < 16 || off + clen > c.len() {
                return error!(EINVAL);
            }
            if level == SOL_SOCKET && typ == SCM_RIGHTS {
                for chunk in c[off + 16..off + clen].chunks_exact(4) {
                    let n = i32::from_le_bytes(chunk.try_into().unwrap_or([0; 4]));
                    fds.push(ctx.files().get(n)?);
                }
                if fds.len() > 253 {
                    return error!(EINVAL);
                }
            } else if level == SOL_SOCKET && typ == SCM_CREDENTIALS {
                // The guest is root: any credentials are allowed; ruml
                // records the sender's real ones.
            } else {
                return error!(EINVAL);
            }
            off += (clen + 7) & !7;
        }
    }
    let to = if h.name != 0 && sock.typ == SOCK_DGRAM {
        Some(lookup(ctx, sock.net, UserAddr(h.name), h.namelen)?.0)
    } else {
        None
    };
    let fl = flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    let _ = MSG_EOR;
    send(&sock, Some(ctx.task), &data, fds, to, fl).map(|n| n as u64)
}

pub(super) fn sys_recvmsg(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    msg: UserAddr,
    flags: i32,
) -> KResult<u64> {
    let (f, sock) = socket_of(ctx, fd)?;
    let h: MsgHdr = ctx.mm().read_val(msg.0)?;
    if h.iovlen > 1024 {
        return error!(EMSGSIZE);
    }
    let segs = crate::fs::syscalls::read_iovecs(ctx, UserAddr(h.iov), h.iovlen as i32)?;
    let total: usize = segs.iter().map(|s| s.1).sum();
    let mut data = vec![0u8; total.min(1 << 20)];
    let fl = flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    let _ = MSG_WAITALL;
    let (n, rcv, full) = recv(&sock, Some(ctx.task), &mut data, fl)?;
    crate::fs::syscalls::scatter(&ctx.mm(), &segs, 0, &data[..n])?;
    let mut out_flags = rcv.flags;
    // Control messages: credentials first, then descriptors.
    let mut control = Vec::new();
    if let Some((pid, uid, gid)) = rcv.creds {
        control.extend_from_slice(&(16u64 + 12).to_le_bytes());
        control.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        control.extend_from_slice(&SCM_CREDENTIALS.to_le_bytes());
        control.extend_from_slice(&pid.to_le_bytes());
        control.extend_from_slice(&uid.to_le_bytes());
        control.extend_from_slice(&gid.to_le_bytes());
        control.resize((control.len() + 7) & !7, 0);
    }
    if !rcv.fds.is_empty() {
        let room = (h.controllen as usize).saturating_sub(control.len() + 16) / 4;
        let take = rcv.fds.len().min(room);
        if take < rcv.fds.len() {
            out_flags |= MSG_CTRUNC;
        }
        if take > 0 {
            let mut nums = Vec::new();
            for file in rcv.fds.into_iter().take(take) {
                nums.push(ctx.files().alloc(file, flags & MSG_CMSG_CLOEXEC != 0)?);
            }
            control.extend_from_slice(&(16u64 + 4 * nums.len() as u64).to_le_bytes());
            control.extend_from_slice(&SOL_SOCKET.to_le_bytes());
            control.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
            for n in nums {
                control.extend_from_slice(&n.to_le_bytes());
            }
        }
    }
    let clen = control.len().min(h.controllen as usize);
    if clen > 0 {
        ctx.mm().write_bytes(h.control, &control[..clen])?;
    }
    if clen < control.len() {
        out_flags |= MSG_CTRUNC;
    }
    let mut nh = h;
    nh.controllen = clen as u64;
    nh.flags = out_flags;
    if h.name != 0 {
        let bytes = Addr::to_sockaddr(rcv.from.as_ref());
        let k = (h.namelen as usize).min(bytes.len());
        ctx.mm().write_bytes(h.name, &bytes[..k])?;
        nh.namelen = if rcv.from.is_some() {
            bytes.len() as u32
        } else {
            0
        };
    }
    ctx.mm().write_val(msg.0, &nh)?;
    Ok(if flags & MSG_TRUNC != 0 { full } else { n } as u64)
}

pub(super) fn sys_shutdown(ctx: &mut SyscallContext<'_>, fd: Fd, how: i32) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    if !(0..=2).contains(&how) {
        return error!(EINVAL);
    }
    if !sock.lock().connected {
        return error!(ENOTCONN);
    }
    let peer = sock.peer();
    {
        let mut s = sock.lock();
        if how != 1 {
            s.shut_rd = true;
        }
        if how != 0 {
            s.shut_wr = true;
        }
    }
    if let Some(p) = peer {
        {
            let mut ps = p.lock();
            if how != 0 {
                ps.peer_gone = true;
            }
        }
        p.waiters.wake_all();
    }
    sock.waiters.wake_all();
    Ok(0)
}

const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_RCVTIMEO: i32 = 20;
const SO_SNDTIMEO: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

pub(super) fn sys_setsockopt(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    if level != SOL_SOCKET {
        return error!(ENOPROTOOPT);
    }
    let int = || -> KResult<i32> {
        if len < 4 {
            return error!(EINVAL);
        }
        ctx.mm().read_val::<i32>(val.0)
    };
    match name {
        SO_PASSCRED => {
            let v = int()?;
            sock.lock().passcred = v != 0;
        }
        SO_RCVTIMEO | SO_SNDTIMEO => {
            if len < 16 {
                return error!(EINVAL);
            }
            let tv: [i64; 2] = ctx.mm().read_val(val.0)?;
            if tv[0] < 0 || !(0..1_000_000).contains(&tv[1]) {
                return error!(EDOM);
            }
            let d = (tv[0] != 0 || tv[1] != 0)
                .then(|| Duration::new(tv[0] as u64, tv[1] as u32 * 1000));
            let mut s = sock.lock();
            if name == SO_RCVTIMEO {
                s.rcvtimeo = d;
            } else {
                s.sndtimeo = d;
            }
        }
        SO_REUSEADDR | SO_SNDBUF | SO_RCVBUF | SO_KEEPALIVE => {
            // Accepted: unix sockets buffer by ruml's fixed size.
            int()?;
        }
        _ => return error!(ENOPROTOOPT),
    }
    Ok(0)
}

pub(super) fn sys_getsockopt(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let (_f, sock) = socket_of(ctx, fd)?;
    if level != SOL_SOCKET {
        return error!(ENOPROTOOPT);
    }
    let have: i32 = ctx.mm().read_val(len.0)?;
    if have < 0 {
        return error!(EINVAL);
    }
    let bytes: Vec<u8> = match name {
        SO_TYPE => sock.typ.to_le_bytes().to_vec(),
        SO_DOMAIN => AF_UNIX.to_le_bytes().to_vec(),
        SO_PROTOCOL => 0i32.to_le_bytes().to_vec(),
        SO_ERROR => sock
            .lock()
            .error
            .take()
            .map(|e| e.as_i32())
            .unwrap_or(0)
            .to_le_bytes()
            .to_vec(),
        SO_SNDBUF | SO_RCVBUF => (BUF_SIZE as i32).to_le_bytes().to_vec(),
        SO_PASSCRED => (sock.lock().passcred as i32).to_le_bytes().to_vec(),
        SO_ACCEPTCONN => (sock.lock().listening.is_some() as i32)
            .to_le_bytes()
            .to_vec(),
        SO_REUSEADDR | SO_KEEPALIVE => 0i32.to_le_bytes().to_vec(),
        SO_PEERCRED => {
            let (pid, uid, gid) = sock.lock().peercred.unwrap_or((0, u32::MAX, u32::MAX));
            let mut v = pid.to_le_bytes().to_vec();
            v.extend_from_slice(&uid.to_le_bytes());
            v.extend_from_slice(&gid.to_le_bytes());
            v
        }
        SO_RCVTIMEO | SO_SNDTIMEO => {
            let d = if name == SO_RCVTIMEO {
                sock.lock().rcvtimeo
            } else {
                sock.lock().sndtimeo
            }
            .unwrap_or_default();
            let mut v = (d.as_secs() as i64).to_le_bytes().to_vec();
            v.extend_from_slice(&(d.subsec_micros() as i64).to_le_bytes());
            v
        }
        _ => return error!(ENOPROTOOPT),
    };
    let n = (have as usize).min(bytes.len());
    ctx.mm().write_bytes(val.0, &bytes[..n])?;
    ctx.mm().write_val(len.0, &(n as i32))?;
    Ok(0)
}

#[allow(dead_code)]
const _: u32 = POLLIN | POLLOUT;

/// One bound unix socket as /proc/net/unix lists it: type, listening,
/// connected, and its name (an abstract one starts with '@').
pub(super) struct UnixInfo {
    pub typ: i32,
    pub listening: bool,
    pub connected: bool,
    pub name: Vec<u8>,
}

/// The bound unix sockets of the reader's network namespace.
pub(super) fn bound_sockets() -> Vec<UnixInfo> {
    let net = crate::task::ns::current_net();
    let socks: Vec<Arc<UnixSocket>> = names()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .filter_map(|w| w.upgrade())
        .filter(|s| s.net == net)
        .collect();
    let mut out = Vec::new();
    for s in socks {
        let st = s.lock();
        let name = match &st.bound {
            Some(Addr::Abstract(n)) => {
                let mut v = b"@".to_vec();
                v.extend_from_slice(n);
                v
            }
            Some(Addr::Path(p, _)) => p.clone(),
            None => continue,
        };
        out.push(UnixInfo {
            typ: s.typ,
            listening: st.listening.is_some(),
            connected: st.connected,
            name,
        });
    }
    out
}
