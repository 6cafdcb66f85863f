//! The network subsystem: sockets as kernel objects and the stack behind
//! them. Guest sockets are never host sockets.
//!
//! Layout:
//! - this module: the socket layer — the socket system calls
//!   (`socket_table`), dispatched by the socket's family; sendmmsg and
//!   recvmmsg on top of sendmsg/recvmsg for every family.
//! - [`unix`]: AF_UNIX (stream, datagram, seqpacket; SCM_RIGHTS...).
//! - [`inet`]: AF_INET and AF_INET6 — TCP and UDP, the port table;
//!   [`eth`] (inside it): eth0=switch's packet stack (smoltcp).
//! - [`netlink`]: AF_NETLINK, NETLINK_ROUTE (links, addresses, routes).
//! - [`procnet`]: the files of /proc/net.
//! - [`iface`]: the network interfaces (`lo`), their addresses and the
//!   interface ioctls (SIOCGIF*).

pub mod cmsg;
pub mod diag;
pub mod iface;
pub mod inet;
pub use inet::eth;
pub mod mcast;
pub mod netlink;
pub mod procnet;
pub mod snmp;
pub mod unix;

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::FileRef;
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_NETLINK: i32 = 16;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_SEQPACKET: i32 = 5;
pub const SOCK_NONBLOCK: i32 = 0o4000;
pub const SOCK_CLOEXEC: i32 = 0o2000000;
pub const MSG_OOB: i32 = 1;
pub const MSG_PEEK: i32 = 2;
pub const MSG_CTRUNC: i32 = 0x8;
pub const MSG_TRUNC: i32 = 0x20;
pub const MSG_DONTWAIT: i32 = 0x40;
pub const MSG_WAITALL: i32 = 0x100;
pub const MSG_NOSIGNAL: i32 = 0x4000;
pub const MSG_WAITFORONE: i32 = 0x10000;

/// Which family's socket an open file is.
enum Kind {
    Unix,
    Inet(Arc<inet::InetSocket>),
    Netlink(Arc<netlink::NetlinkSocket>),
}

fn kind(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<(FileRef, Kind)> {
    let f = ctx.files().get(fd.0)?;
    let ops = f.ops().map_err(|_| crate::errno!(ENOTSOCK))?.clone();
    let any = ops.as_any_ops();
    let k = if any.downcast_ref::<Arc<unix::UnixSocket>>().is_some() {
        Kind::Unix
    } else if let Some(s) = any.downcast_ref::<Arc<inet::InetSocket>>() {
        Kind::Inet(s.clone())
    } else if let Some(s) = any.downcast_ref::<Arc<netlink::NetlinkSocket>>() {
        Kind::Netlink(s.clone())
    } else {
        return error!(ENOTSOCK);
    };
    Ok((f, k))
}

syscall_table! { pub fn socket_table;
    SOCKET => sys_socket(domain: i32, typ: i32, protocol: i32),
    SOCKETPAIR => sys_socketpair(domain: i32, typ: i32, protocol: i32, sv: UserAddr),
    BIND => sys_bind(fd: Fd, addr: UserAddr, len: u32),
    LISTEN => sys_listen(fd: Fd, backlog: i32),
    ACCEPT => sys_accept(fd: Fd, addr: UserAddr, len: UserAddr),
    ACCEPT4 => sys_accept4(fd: Fd, addr: UserAddr, len: UserAddr, flags: i32),
    CONNECT => sys_connect(fd: Fd, addr: UserAddr, len: u32),
    GETSOCKNAME => sys_getsockname(fd: Fd, addr: UserAddr, len: UserAddr),
    GETPEERNAME => sys_getpeername(fd: Fd, addr: UserAddr, len: UserAddr),
    SENDTO => sys_sendto(fd: Fd, buf: UserAddr, len: usize, flags: i32, addr: UserAddr, alen: u32),
    RECVFROM => sys_recvfrom(fd: Fd, buf: UserAddr, len: usize, flags: i32, addr: UserAddr, alen: UserAddr),
    SENDMSG => sys_sendmsg(fd: Fd, msg: UserAddr, flags: i32),
    RECVMSG => sys_recvmsg(fd: Fd, msg: UserAddr, flags: i32),
    SENDMMSG => sys_sendmmsg(fd: Fd, vec: UserAddr, vlen: u32, flags: i32),
    RECVMMSG => sys_recvmmsg(fd: Fd, vec: UserAddr, vlen: u32, flags: i32, timeout: UserAddr),
    SHUTDOWN => sys_shutdown(fd: Fd, how: i32),
    SETSOCKOPT => sys_setsockopt(fd: Fd, level: i32, name: i32, val: UserAddr, len: u32),
    GETSOCKOPT => sys_getsockopt(fd: Fd, level: i32, name: i32, val: UserAddr, len: UserAddr),
}

fn sys_socket(ctx: &mut SyscallContext<'_>, domain: i32, typ: i32, protocol: i32) -> KResult<u64> {
    if typ & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    match domain {
        AF_UNIX => unix::sys_socket(ctx, domain, typ, protocol),
        AF_INET | AF_INET6 => inet::socket(ctx, domain, typ, protocol),
        AF_NETLINK => netlink::socket(ctx, typ, protocol),
        _ => error!(EAFNOSUPPORT),
    }
}

fn sys_socketpair(
    ctx: &mut SyscallContext<'_>,
    domain: i32,
    typ: i32,
    protocol: i32,
    sv: UserAddr,
) -> KResult<u64> {
    match domain {
        AF_UNIX => unix::sys_socketpair(ctx, domain, typ, protocol, sv),
        AF_INET | AF_INET6 => {
            if typ & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
                return error!(EINVAL);
            }
            error!(EOPNOTSUPP)
        }
        AF_NETLINK => error!(EOPNOTSUPP),
        _ => error!(EAFNOSUPPORT),
    }
}

fn sys_bind(ctx: &mut SyscallContext<'_>, fd: Fd, addr: UserAddr, len: u32) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_bind(ctx, fd, addr, len),
        (_, Kind::Inet(s)) => inet::bind(ctx, &s, addr, len),
        (_, Kind::Netlink(s)) => netlink::bind(ctx, &s, addr, len),
    }
}

fn sys_listen(ctx: &mut SyscallContext<'_>, fd: Fd, backlog: i32) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_listen(ctx, fd, backlog),
        (_, Kind::Inet(s)) => inet::listen(&s, backlog),
        (_, Kind::Netlink(_)) => error!(EOPNOTSUPP),
    }
}

fn sys_accept(ctx: &mut SyscallContext<'_>, fd: Fd, addr: UserAddr, len: UserAddr) -> KResult<u64> {
    sys_accept4(ctx, fd, addr, len, 0)
}

fn sys_accept4(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
    flags: i32,
) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_accept4(ctx, fd, addr, len, flags),
        (f, Kind::Inet(s)) => inet::accept(ctx, &f, &s, addr, len, flags),
        (_, Kind::Netlink(_)) => error!(EOPNOTSUPP),
    }
}

fn sys_connect(ctx: &mut SyscallContext<'_>, fd: Fd, addr: UserAddr, len: u32) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_connect(ctx, fd, addr, len),
        (f, Kind::Inet(s)) => inet::connect(ctx, &f, &s, addr, len),
        (_, Kind::Netlink(s)) => netlink::connect(ctx, &s, addr, len),
    }
}

fn sys_getsockname(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_getsockname(ctx, fd, addr, len),
        (_, Kind::Inet(s)) => inet::getname(ctx, &s, addr, len, false),
        (_, Kind::Netlink(s)) => netlink::getsockname(ctx, &s, addr, len),
    }
}

fn sys_getpeername(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_getpeername(ctx, fd, addr, len),
        (_, Kind::Inet(s)) => inet::getname(ctx, &s, addr, len, true),
        (_, Kind::Netlink(s)) => netlink::getpeername(ctx, &s, addr, len),
    }
}

/// One send, however it was asked for: the data segments, the
/// destination (sockaddr bytes) and the MSG_* flags.
pub struct SendReq<'a> {
    pub segs: &'a [(u64, usize)],
    pub name: Option<(UserAddr, u32)>,
    pub flags: i32,
}

/// One receive: where the data goes, the MSG_* flags.
pub struct RecvReq<'a> {
    pub segs: &'a [(u64, usize)],
    pub flags: i32,
    /// Room for control messages (recvmsg's msg_controllen; 0 without a
    /// buffer).
    pub control: usize,
}

/// What a receive produced: bytes copied, the full length (for
/// MSG_TRUNC), the sender's sockaddr bytes and flags for msg_flags.
pub struct RecvOut {
    pub copied: usize,
    pub full: usize,
    pub from: Option<Vec<u8>>,
    pub flags: i32,
    /// Control messages, already cut to the room given.
    pub control: Vec<u8>,
}

fn sys_sendto(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    alen: u32,
) -> KResult<u64> {
    let (f, k) = kind(ctx, fd)?;
    let segs = [(buf.0, len)];
    let req = SendReq {
        segs: &segs,
        name: (!addr.is_null()).then_some((addr, alen)),
        flags,
    };
    match k {
        Kind::Unix => unix::sys_sendto(ctx, fd, buf, len, flags, addr, alen),
        Kind::Inet(s) => inet::send(ctx, &f, &s, &req),
        Kind::Netlink(s) => netlink::send(ctx, &s, &req),
    }
}

fn sys_recvfrom(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    alen: UserAddr,
) -> KResult<u64> {
    let (f, k) = kind(ctx, fd)?;
    let segs = [(buf.0, len)];
    let req = RecvReq {
        segs: &segs,
        flags,
        control: 0,
    };
    let out = match k {
        Kind::Unix => return unix::sys_recvfrom(ctx, fd, buf, len, flags, addr, alen),
        Kind::Inet(s) => inet::recv(ctx, &f, &s, &req)?,
        Kind::Netlink(s) => netlink::recv(ctx, &f, &s, &req)?,
    };
    if !addr.is_null() {
        if let Some(a) = &out.from {
            write_sockaddr(ctx, addr, alen, a)?;
        }
    }
    Ok(if flags & MSG_TRUNC != 0 {
        out.full
    } else {
        out.copied
    } as u64)
}

crate::abi_struct! {
    /// `struct msghdr`.
    pub struct MsgHdr { pub name: u64, pub namelen: u32, pub pad: u32, pub iov: u64, pub iovlen: u64, pub control: u64, pub controllen: u64, pub flags: i32, pub pad2: u32 }
}

/// The iovecs of a msghdr (at most UIO_MAXIOV, else EMSGSIZE).
fn msg_segs(ctx: &SyscallContext<'_>, h: &MsgHdr) -> KResult<Vec<(u64, usize)>> {
    if h.iovlen > 1024 {
        return error!(EMSGSIZE);
    }
    crate::fs::syscalls::read_iovecs(ctx, UserAddr(h.iov), h.iovlen as i32)
}

fn sys_sendmsg(ctx: &mut SyscallContext<'_>, fd: Fd, msg: UserAddr, flags: i32) -> KResult<u64> {
    let (f, k) = kind(ctx, fd)?;
    if let Kind::Unix = k {
        return unix::sys_sendmsg(ctx, fd, msg, flags);
    }
    let h: MsgHdr = ctx.mm().read_val(msg.0)?;
    let segs = msg_segs(ctx, &h)?;
    if h.controllen > 0 && h.control == 0 {
        return error!(EFAULT);
    }
    let req = SendReq {
        segs: &segs,
        name: (h.name != 0).then_some((UserAddr(h.name), h.namelen)),
        flags,
    };
    match k {
        Kind::Unix => unreachable!(),
        Kind::Inet(s) => inet::send(ctx, &f, &s, &req),
        Kind::Netlink(s) => netlink::send(ctx, &s, &req),
    }
}

fn sys_recvmsg(ctx: &mut SyscallContext<'_>, fd: Fd, msg: UserAddr, flags: i32) -> KResult<u64> {
    let (f, k) = kind(ctx, fd)?;
    if let Kind::Unix = k {
        return unix::sys_recvmsg(ctx, fd, msg, flags);
    }
    let h: MsgHdr = ctx.mm().read_val(msg.0)?;
    if (h.namelen as i32) < 0 {
        return error!(EINVAL);
    }
    let segs = msg_segs(ctx, &h)?;
    let req = RecvReq {
        segs: &segs,
        flags,
        control: if h.control == 0 {
            0
        } else {
            h.controllen.min(i32::MAX as u64) as usize
        },
    };
    let out = match k {
        Kind::Unix => unreachable!(),
        Kind::Inet(s) => inet::recv(ctx, &f, &s, &req)?,
        Kind::Netlink(s) => netlink::recv(ctx, &f, &s, &req)?,
    };
    // As Linux's put_cmsg: a control buffer that cannot be written
    // loses the control messages, not the datagram.
    let clen = if !out.control.is_empty() && ctx.mm().write_bytes(h.control, &out.control).is_ok() {
        out.control.len()
    } else {
        0
    };
    let mut nh = h;
    nh.controllen = clen as u64;
    nh.flags = out.flags;
    if h.name != 0 {
        match &out.from {
            Some(a) => {
                let k = (h.namelen as usize).min(a.len());
                ctx.mm().write_bytes(h.name, &a[..k])?;
                nh.namelen = a.len() as u32;
            }
            None => nh.namelen = 0,
        }
    }
    ctx.mm().write_val(msg.0, &nh)?;
    Ok(if flags & MSG_TRUNC != 0 {
        out.full
    } else {
        out.copied
    } as u64)
}

/// `struct mmsghdr`: a msghdr and the byte count of its transfer.
const MMSG_SIZE: u64 = 64;
const MMSG_LEN_OFF: u64 = 56;

fn sys_sendmmsg(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    vec: UserAddr,
    vlen: u32,
    flags: i32,
) -> KResult<u64> {
    kind(ctx, fd)?;
    let vlen = vlen.min(1024) as u64;
    let mut done = 0u64;
    while done < vlen {
        let at = vec.0.wrapping_add(done * MMSG_SIZE);
        match sys_sendmsg(ctx, fd, UserAddr(at), flags) {
            Ok(n) => ctx.mm().write_val(at + MMSG_LEN_OFF, &(n as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}

fn sys_recvmmsg(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    vec: UserAddr,
    vlen: u32,
    flags: i32,
    timeout: UserAddr,
) -> KResult<u64> {
    kind(ctx, fd)?;
    let deadline = if timeout.is_null() {
        None
    } else {
        let ts: [i64; 2] = ctx.mm().read_val(timeout.0)?;
        if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
            return error!(EINVAL);
        }
        Some(std::time::Instant::now() + std::time::Duration::new(ts[0] as u64, ts[1] as u32))
    };
    let vlen = vlen.min(1024) as u64;
    let mut done = 0u64;
    let mut fl = flags & !MSG_WAITFORONE;
    while done < vlen {
        let at = vec.0.wrapping_add(done * MMSG_SIZE);
        match sys_recvmsg(ctx, fd, UserAddr(at), fl) {
            Ok(n) => ctx.mm().write_val(at + MMSG_LEN_OFF, &(n as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
        if flags & MSG_WAITFORONE != 0 {
            fl |= MSG_DONTWAIT;
        }
        // Linux checks the timeout only after each datagram.
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
    }
    Ok(done)
}

fn sys_shutdown(ctx: &mut SyscallContext<'_>, fd: Fd, how: i32) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_shutdown(ctx, fd, how),
        (_, Kind::Inet(s)) => inet::shutdown(&s, how),
        (_, Kind::Netlink(_)) => {
            if !(0..=2).contains(&how) {
                return error!(EINVAL);
            }
            Ok(0)
        }
    }
}

fn sys_setsockopt(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> KResult<u64> {
    match kind(ctx, fd)? {
        (_, Kind::Unix) => unix::sys_setsockopt(ctx, fd, level, name, val, len),
        (_, Kind::Inet(s)) => inet::setsockopt(ctx, &s, level, name, val, len),
        (_, Kind::Netlink(s)) => netlink::setsockopt(ctx, &s, level, name, val, len),
    }
}

fn sys_getsockopt(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let (_f, k) = kind(ctx, fd)?;
    let have: i32 = ctx.mm().read_val(len.0)?;
    if have < 0 {
        return error!(EINVAL);
    }
    let bytes = match k {
        Kind::Unix => return unix::sys_getsockopt(ctx, fd, level, name, val, len),
        Kind::Inet(s) => inet::getsockopt(&s, level, name)?,
        Kind::Netlink(s) => netlink::getsockopt(&s, level, name)?,
    };
    let n = (have as usize).min(bytes.len());
    ctx.mm().write_bytes(val.0, &bytes[..n])?;
    ctx.mm().write_val(len.0, &(n as i32))?;
    Ok(0)
}

/// A network namespace was freed (task/ns.rs): its interfaces and port
/// table go.
pub fn netns_gone(net: u64) {
    iface::netns_gone(net);
    inet::netns_gone(net);
}

/// Writes sockaddr bytes to (addr, *len) as accept/getsockname do:
/// truncated to the room given, the full length stored back.
pub fn write_sockaddr(
    ctx: &SyscallContext<'_>,
    addr: UserAddr,
    len: UserAddr,
    bytes: &[u8],
) -> KResult<()> {
    if addr.is_null() {
        return Ok(());
    }
    let have: u32 = ctx.mm().read_val(len.0)?;
    if (have as i32) < 0 {
        return error!(EINVAL);
    }
    let n = (have as usize).min(bytes.len());
    ctx.mm().write_bytes(addr.0, &bytes[..n])?;
    ctx.mm().write_val(len.0, &(bytes.len() as u32))?;
    Ok(())
}

/// Reads an int option value (optlen at least 4).
pub fn opt_int(ctx: &SyscallContext<'_>, val: UserAddr, len: u32) -> KResult<i32> {
    if (len as i32) < 4 {
        return error!(EINVAL);
    }
    ctx.mm().read_val::<i32>(val.0)
}

/// Gathers the bytes of a send request, at most `max` of them.
pub fn gather_send(
    ctx: &SyscallContext<'_>,
    segs: &[(u64, usize)],
    max: usize,
) -> KResult<Vec<u8>> {
    let total: usize = segs.iter().map(|s| s.1).sum();
    let mut data = vec![0u8; total.min(max)];
    crate::fs::syscalls::gather(&ctx.mm(), segs, 0, &mut data)?;
    Ok(data)
}
