//! SOCK_RAW for ICMP (AF_INET, IPPROTO_ICMP) and ICMPv6 (AF_INET6,
//! IPPROTO_ICMPV6), for a task with CAP_NET_RAW (others: EPERM, as
//! Linux). A child of `inet`: a raw socket is an [`InetSocket`] of type
//! SOCK_RAW whose datagram queue holds what it receives.
//!
//! What programs see, as on Linux: a send is an ICMP message (no IP
//! header; IPv4's checksum is the sender's, ICMPv6's is filled in by the
//! kernel); every ICMP packet this machine receives is copied to every raw
//! socket of its family that takes it (bound address, connected peer,
//! ICMP_FILTER / ICMPV6_FILTER), IPv4 ones with their IP header, IPv6 ones
//! without. The machine answers an echo request to one of its own
//! addresses (one with a good checksum, for IPv4) with an echo reply that
//! raw sockets receive too; so do the requests and replies of ping
//! sockets. To an eth0=switch neighbour the message goes on the wire
//! (IPv4) and echo replies from the wire come back; eth0=user carries no
//! ICMP (the message is dropped, as a packet the NAT does not pass).
//!
//! Not built: other protocols (EPROTONOSUPPORT even when privileged),
//! IP_HDRINCL, IPV6_CHECKSUM, ICMP errors for other traffic.
//!
//! Locking: the per-namespace list of raw sockets ([`raws`]) is taken
//! without any socket lock held, then each socket's lock in turn.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::{
    canonical, csum, eth, iface, in_family, route, Fill, InetSocket, Meta, AF_INET, AF_INET6,
    IPPROTO_ICMP, IPPROTO_ICMPV6, LO_INDEX, MSG_OOB,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::syscalls::{SyscallContext, UserAddr};

pub const SOL_RAW: i32 = 255;
const ICMP_FILTER: i32 = 1;
const ICMPV6_FILTER: i32 = 1;

fn tables() -> &'static Mutex<HashMap<u64, Vec<Weak<InetSocket>>>> {
    static T: OnceLock<Mutex<HashMap<u64, Vec<Weak<InetSocket>>>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// The current network namespace's raw sockets.
fn raws() -> crate::task::ns::PerNet<Vec<Weak<InetSocket>>> {
    crate::task::ns::PerNet::lock(tables(), |_| Vec::new())
}

/// A network namespace is gone: its list goes too.
pub fn netns_gone(net: u64) {
    tables()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&net);
}

/// Whether `ctx`'s task may open a raw socket of `protocol` in `family`:
/// protocol 0 is EPROTONOSUPPORT (before the privilege check, as Linux's
/// inet_create), then CAP_NET_RAW or EPERM, then only ICMP / ICMPv6.
pub fn check(ctx: &SyscallContext<'_>, family: i32, protocol: i32) -> KResult<()> {
    if protocol == 0 {
        return error!(EPROTONOSUPPORT);
    }
    let privileged = ctx
        .task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .capable(crate::task::caps::Cap::NetRaw);
    if !privileged {
        return error!(EPERM);
    }
    match (family, protocol) {
        (AF_INET, IPPROTO_ICMP) | (AF_INET6, IPPROTO_ICMPV6) => Ok(()),
        _ => error!(EPROTONOSUPPORT),
    }
}

/// Registers a new raw socket for delivery.
pub fn register(sock: &Arc<InetSocket>) {
    let mut t = raws();
    t.retain(|w| w.strong_count() > 0);
    t.push(Arc::downgrade(sock));
}

/// bind: a local address (the port is ignored).
pub fn bind(sock: &Arc<InetSocket>, a: SocketAddr) -> KResult<u64> {
    let ip = canonical(a.ip());
    if !iface::bindable(ip) && !ip.is_multicast() {
        return error!(EADDRNOTAVAIL);
    }
    sock.lock().local = Some(in_family(sock.family, ip, 0));
    Ok(0)
}

/// connect: the peer whose packets this socket takes (AF_UNSPEC: none).
pub fn connect(sock: &Arc<InetSocket>, dst: Option<SocketAddr>) -> KResult<u64> {
    let Some(dst) = dst else {
        sock.lock().remote = None;
        return Ok(0);
    };
    let v6only = sock.lock().opts.v6only;
    let ip = route(sock, dst, v6only)?;
    sock.lock().remote = Some(in_family(sock.family, ip, 0));
    Ok(0)
}

/// The ICMPv6 checksum of `msg` from `src` to `dst` (its own checksum
/// field taken as zero).
fn icmp6_sum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&(IPPROTO_ICMPV6 as u32).to_be_bytes());
    let mut sum = 0u32;
    for c in pseudo.chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    let mut m = msg.to_vec();
    m[2..4].copy_from_slice(&[0, 0]);
    csum(sum, &m)
}

/// A send on a raw socket.
pub fn send(
    sock: &Arc<InetSocket>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    to: Option<SocketAddr>,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return error!(EOPNOTSUPP);
    }
    let (remote, local, v6only, err, ttl, tos) = {
        let mut s = sock.lock();
        let ttl = if s.opts.ttl == -1 { 64 } else { s.opts.ttl };
        let tos = if sock.family == AF_INET {
            s.opts.tos
        } else {
            s.opts.tclass
        };
        (
            s.remote,
            s.local,
            s.opts.v6only,
            s.error.take(),
            ttl as u8,
            tos as u8,
        )
    };
    if let Some(e) = err {
        return Err(e);
    }
    let Some(dst) = to.or(remote) else {
        return error!(EDESTADDRREQ);
    };
    let max = if sock.family == AF_INET {
        65535 - 20
    } else {
        65535 - 40
    };
    if total > max {
        return error!(EMSGSIZE);
    }
    // ICMPv6's checksum lives at offset 2: the message must hold it.
    if sock.family == AF_INET6 && total < 4 {
        return error!(EINVAL);
    }
    let ip = route(sock, dst, v6only)?;
    let mut msg = vec![0u8; total];
    fill(0, &mut msg)?;
    let src = match local.map(|l| canonical(l.ip())) {
        Some(l) if !l.is_unspecified() => l,
        _ => iface::source_for(ip).ok_or(Errno::ENETUNREACH)?,
    };
    if let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, ip) {
        let sum = icmp6_sum(s6, d6, &msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    if !iface::is_local(ip) {
        if eth::routes(ip) {
            eth::send_echo(src, ip, &msg)?;
        }
        // eth0=user's NAT passes no ICMP.
        return Ok(total);
    }
    iface::count_lo(total);
    deliver(src, ip, &msg, ttl, tos);
    answer(src, ip, &msg);
    Ok(total)
}

/// This machine's answer to an ICMP message from `src` to its own `dst`:
/// an echo reply to an echo request (IPv4: one whose checksum holds),
/// delivered to the raw sockets.
fn answer(src: IpAddr, dst: IpAddr, msg: &[u8]) {
    if msg.len() < 8 || msg[1] != 0 {
        return;
    }
    let mut reply = msg.to_vec();
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            if msg[0] != 8 || csum(0, msg) != 0 {
                return;
            }
            reply[0] = 0;
            reply[2..4].copy_from_slice(&[0, 0]);
            let sum = csum(0, &reply);
            reply[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s6), IpAddr::V6(d6)) => {
            if msg[0] != 128 {
                return;
            }
            reply[0] = 129;
            let sum = icmp6_sum(d6, s6, &reply);
            reply[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        _ => return,
    }
    iface::count_lo(reply.len());
    deliver(dst, src, &reply, 64, 0);
}

/// A ping socket's echo request `req` (identifier set) from this machine
/// to its own `ip`: its checksum filled in, and seen by raw sockets.
pub fn seen_request(ip: IpAddr, req: &mut [u8]) {
    if req.len() < 8 {
        return;
    }
    req[2..4].copy_from_slice(&[0, 0]);
    let sum = match canonical(ip) {
        IpAddr::V4(_) => csum(0, req),
        IpAddr::V6(v6) => icmp6_sum(v6, v6, req),
    };
    req[2..4].copy_from_slice(&sum.to_be_bytes());
    deliver(ip, ip, req, 64, 0);
}

/// The IPv4 header Linux hands a raw socket before the ICMP message.
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, len: usize, ttl: u8, tos: u8) -> [u8; 20] {
    static ID: AtomicU16 = AtomicU16::new(1);
    let total = (20 + len).min(65535) as u16;
    let id = ID.fetch_add(1, Ordering::Relaxed);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = ttl;
    h[9] = IPPROTO_ICMP as u8;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = csum(0, &h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Whether a socket's filter lets ICMP type `t` through.
fn passes(sock: &InetSocket, s: &super::State, t: u8) -> bool {
    if sock.family == AF_INET {
        t >= 32 || s.opts.icmp_filter & (1 << t) == 0
    } else {
        s.opts.icmp6_filter[(t >> 5) as usize] & (1 << (t & 31)) == 0
    }
}

/// Copies an ICMP packet this machine received (from `src` to `dst`) to
/// every raw socket of its family that takes it.
pub fn deliver(src: IpAddr, dst: IpAddr, msg: &[u8], ttl: u8, tos: u8) {
    let (src, dst) = (canonical(src), canonical(dst));
    let family = if dst.is_ipv4() { AF_INET } else { AF_INET6 };
    let Some(&t) = msg.first() else {
        return;
    };
    let socks: Vec<Arc<InetSocket>> = raws().iter().filter_map(|w| w.upgrade()).collect();
    let data = match (src, dst) {
        (IpAddr::V4(s4), IpAddr::V4(d4)) => {
            let mut v = ipv4_header(s4, d4, msg.len(), ttl, tos).to_vec();
            v.extend_from_slice(msg);
            v
        }
        _ => msg.to_vec(),
    };
    for r in socks.iter().filter(|r| r.family == family) {
        let delivered = {
            let mut s = r.lock();
            let local_ok = s
                .local
                .is_none_or(|l| l.ip().is_unspecified() || canonical(l.ip()) == dst);
            let peer_ok = s.remote.is_none_or(|p| canonical(p.ip()) == src);
            let len = data.len();
            if s.closed
                || s.shut_rd
                || !local_ok
                || !peer_ok
                || !passes(r, &s, t)
                || s.dgram_bytes + len > s.opts.rcvbuf
            {
                false
            } else {
                s.dgram_bytes += len;
                s.dgrams.push_back((
                    in_family(family, src, 0),
                    data.clone(),
                    Meta::new(dst, LO_INDEX, ttl, tos),
                ));
                true
            }
        };
        if delivered {
            r.waiters.wake_all();
        }
    }
}

/// setsockopt(SOL_RAW, ICMP_FILTER) and setsockopt(SOL_ICMPV6,
/// ICMPV6_FILTER): as much of the mask as given (at most its size).
pub fn setsockopt(
    ctx: &SyscallContext<'_>,
    sock: &Arc<InetSocket>,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> KResult<u64> {
    let want_level = if sock.family == AF_INET {
        SOL_RAW
    } else {
        IPPROTO_ICMPV6
    };
    if level != want_level {
        return error!(ENOPROTOOPT);
    }
    if name != ICMP_FILTER && name != ICMPV6_FILTER {
        return error!(ENOPROTOOPT);
    }
    let size = if sock.family == AF_INET { 4 } else { 32 };
    let n = (len as usize).min(size);
    let mut b = vec![0u8; n];
    // A fault leaves the copied part zero-filled, as copy_from_user does.
    let r = ctx.mm().read_bytes(val.0, &mut b);
    if r.is_err() {
        b.fill(0);
    }
    let mut s = sock.lock();
    if sock.family == AF_INET {
        let mut cur = s.opts.icmp_filter.to_le_bytes();
        cur[..n].copy_from_slice(&b);
        s.opts.icmp_filter = u32::from_le_bytes(cur);
    } else {
        let mut cur = [0u8; 32];
        for (i, w) in s.opts.icmp6_filter.iter().enumerate() {
            cur[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        cur[..n].copy_from_slice(&b);
        for (i, w) in s.opts.icmp6_filter.iter_mut().enumerate() {
            *w = u32::from_le_bytes([cur[i * 4], cur[i * 4 + 1], cur[i * 4 + 2], cur[i * 4 + 3]]);
        }
    }
    drop(s);
    r.map(|_| 0)
}

/// getsockopt of the filters; None when (level, name) is not one.
pub fn getsockopt(sock: &InetSocket, level: i32, name: i32) -> Option<KResult<Vec<u8>>> {
    let s = sock.lock();
    match (sock.family, level, name) {
        (AF_INET, SOL_RAW, ICMP_FILTER) => Some(Ok(s.opts.icmp_filter.to_le_bytes().to_vec())),
        (AF_INET6, IPPROTO_ICMPV6, ICMPV6_FILTER) => Some(Ok(s
            .opts
            .icmp6_filter
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect())),
        (_, SOL_RAW | IPPROTO_ICMPV6, _) => Some(error!(ENOPROTOOPT)),
        _ => None,
    }
}
