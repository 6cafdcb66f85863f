//! AF_NETLINK sockets, protocol NETLINK_ROUTE: enough of rtnetlink for
//! glibc's getifaddrs and iproute2 — RTM_GETLINK, RTM_GETADDR and
//! RTM_GETROUTE (dumps, and single links by index or name), RTM_NEWADDR /
//! RTM_DELADDR, RTM_NEWLINK / RTM_SETLINK (up/down, MTU). Replies queue on
//! the requesting socket; every request is answered at once.
//!
//! Each socket's state is behind one mutex; the interface table's lock is
//! taken only while no socket lock is held.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use super::iface::{self, IfAddr, Iface, IFF_LOOPBACK, IFF_UP};
use super::{
    RecvOut, RecvReq, SendReq, AF_INET, AF_INET6, AF_NETLINK, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::anon::anon_file;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, READABLE, WRITABLE};
use crate::fs::types::oflags::{O_NONBLOCK, O_RDWR};
use crate::fs::vfs::FileOps;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::Task;

const NETLINK_ROUTE: i32 = 0;
const SOL_SOCKET: i32 = 1;
const SOL_NETLINK: i32 = 270;
/// Replies a socket may hold unread (guest-controlled memory).
const RX_MAX: usize = 1 << 20;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_GROUP: u16 = 27;
const IFLA_PROMISCUITY: u16 = 30;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_CARRIER: u16 = 33;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_GATEWAY: u16 = 5;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const RTPROT_KERNEL: u8 = 2;

struct State {
    /// The port id (0 until bound).
    pid: u32,
    groups: u32,
    rx: VecDeque<Vec<u8>>,
    rx_bytes: usize,
    rcvbuf: usize,
    sndbuf: usize,
    error: Option<Errno>,
}

/// A NETLINK_ROUTE socket.
pub struct NetlinkSocket {
    typ: i32,
    /// NETLINK_ROUTE or NETLINK_SOCK_DIAG ([`super::diag`]).
    protocol: i32,
    state: Mutex<State>,
    waiters: Waiters,
}

impl NetlinkSocket {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Port ids in use.
fn pids() -> MutexGuard<'static, HashSet<u32>> {
    static P: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

pub fn socket(ctx: &mut SyscallContext<'_>, typ: i32, protocol: i32) -> KResult<u64> {
    let t = typ & 0xf;
    if t != super::SOCK_RAW && t != super::SOCK_DGRAM {
        return error!(ESOCKTNOSUPPORT);
    }
    if protocol != NETLINK_ROUTE && protocol != super::diag::NETLINK_SOCK_DIAG {
        return error!(EPROTONOSUPPORT);
    }
    let sock = Arc::new(NetlinkSocket {
        typ: t,
        protocol,
        state: Mutex::new(State {
            pid: 0,
            groups: 0,
            rx: VecDeque::new(),
            rx_bytes: 0,
            rcvbuf: 212_992,
            sndbuf: 212_992,
            error: None,
        }),
        waiters: Waiters::new(),
    });
    let f = anon_file(
        "socket",
        Arc::new(NetlinkFile(sock)),
        O_RDWR
            | if typ & super::SOCK_NONBLOCK != 0 {
                O_NONBLOCK
            } else {
                0
            },
    );
    ctx.files()
        .alloc(f, typ & super::SOCK_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

/// Reads a sockaddr_nl: (pid, groups).
fn read_nl(ctx: &SyscallContext<'_>, addr: UserAddr, len: u32) -> KResult<(u32, u32)> {
    if (len as i32) < 12 {
        return error!(EINVAL);
    }
    let b: [u32; 3] = ctx.mm().read_val(addr.0)?;
    if (b[0] & 0xffff) as i32 != AF_NETLINK {
        return error!(EINVAL);
    }
    Ok((b[1], b[2]))
}

fn autobind(sock: &NetlinkSocket, want: u32, tgid: i32) -> KResult<u32> {
    let mut p = pids();
    let mut s = sock.lock();
    if s.pid != 0 {
        if want != 0 && want != s.pid {
            return error!(EINVAL);
        }
        return Ok(s.pid);
    }
    let pid = if want != 0 {
        if p.contains(&want) {
            return error!(EADDRINUSE);
        }
        want
    } else if tgid > 0 && !p.contains(&(tgid as u32)) {
        tgid as u32
    } else {
        let mut c = 0xffff_f000u32;
        while p.contains(&c) {
            c = c.wrapping_sub(1);
        }
        c
    };
    p.insert(pid);
    s.pid = pid;
    Ok(pid)
}

pub fn bind(
    ctx: &SyscallContext<'_>,
    sock: &Arc<NetlinkSocket>,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let (pid, groups) = read_nl(ctx, addr, len)?;
    autobind(sock, pid, ctx.task.tgid())?;
    sock.lock().groups = groups;
    Ok(0)
}

pub fn connect(
    ctx: &SyscallContext<'_>,
    sock: &Arc<NetlinkSocket>,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let (pid, _) = read_nl(ctx, addr, len)?;
    if pid != 0 {
        // Only the kernel answers here.
        return error!(ECONNREFUSED);
    }
    autobind(sock, 0, ctx.task.tgid())?;
    Ok(0)
}

fn nl_addr(pid: u32, groups: u32) -> Vec<u8> {
    let mut v = (AF_NETLINK as u16).to_le_bytes().to_vec();
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&pid.to_le_bytes());
    v.extend_from_slice(&groups.to_le_bytes());
    v
}

pub fn getsockname(
    ctx: &SyscallContext<'_>,
    sock: &Arc<NetlinkSocket>,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    let (pid, groups) = {
        let s = sock.lock();
        (s.pid, s.groups)
    };
    super::write_sockaddr(ctx, addr, len, &nl_addr(pid, groups))?;
    Ok(0)
}

pub fn getpeername(
    ctx: &SyscallContext<'_>,
    _sock: &Arc<NetlinkSocket>,
    addr: UserAddr,
    len: UserAddr,
) -> KResult<u64> {
    super::write_sockaddr(ctx, addr, len, &nl_addr(0, 0))?;
    Ok(0)
}

pub fn setsockopt(
    ctx: &SyscallContext<'_>,
    sock: &Arc<NetlinkSocket>,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> KResult<u64> {
    let v = super::opt_int(ctx, val, len)?;
    match (level, name) {
        // SO_SNDBUF, SO_RCVBUF and their FORCE forms.
        (SOL_SOCKET, 7 | 32) => {
            sock.lock().sndbuf = (v.max(0) as usize).clamp(2048, RX_MAX / 2) * 2
        }
        (SOL_SOCKET, 8 | 33) => {
            sock.lock().rcvbuf = (v.max(0) as usize).clamp(2048, RX_MAX / 2) * 2
        }
        // NETLINK_ADD/DROP_MEMBERSHIP, PKTINFO, NO_ENOBUFS, LISTEN_ALL_NSID,
        // CAP_ACK, EXT_ACK, GET_STRICT_CHK: accepted; ruml sends no
        // notifications and its replies are the same either way.
        (SOL_NETLINK, 1 | 2 | 3 | 5 | 8 | 10 | 11 | 12) => {}
        _ => return error!(ENOPROTOOPT),
    }
    Ok(0)
}

pub fn getsockopt(sock: &Arc<NetlinkSocket>, level: i32, name: i32) -> KResult<Vec<u8>> {
    let mut s = sock.lock();
    let v: i32 = match (level, name) {
        (SOL_SOCKET, 3) => sock.typ,
        (SOL_SOCKET, 39) => AF_NETLINK,
        (SOL_SOCKET, 38) => sock.protocol,
        (SOL_SOCKET, 4) => s.error.take().map(|e| e.as_i32()).unwrap_or(0),
        (SOL_SOCKET, 7) => s.sndbuf as i32,
        (SOL_SOCKET, 8) => s.rcvbuf as i32,
        (SOL_NETLINK, 10..=12) => 0,
        _ => return error!(ENOPROTOOPT),
    };
    Ok(v.to_le_bytes().to_vec())
}

// ---------------------------------------------------------------------------
// messages

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message.
struct Msg {
    b: Vec<u8>,
}

impl Msg {
    fn new(typ: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let mut b = vec![0u8; 16];
        b[4..6].copy_from_slice(&typ.to_le_bytes());
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        b[8..12].copy_from_slice(&seq.to_le_bytes());
        b[12..16].copy_from_slice(&pid.to_le_bytes());
        Msg { b }
    }
    fn raw(&mut self, d: &[u8]) -> &mut Msg {
        self.b.extend_from_slice(d);
        self.b.resize(align4(self.b.len()), 0);
        self
    }
    fn attr(&mut self, typ: u16, d: &[u8]) -> &mut Msg {
        self.b
            .extend_from_slice(&((4 + d.len()) as u16).to_le_bytes());
        self.b.extend_from_slice(&typ.to_le_bytes());
        self.raw(d)
    }
    fn u32(&mut self, typ: u16, v: u32) -> &mut Msg {
        self.attr(typ, &v.to_le_bytes())
    }
    fn finish(mut self) -> Vec<u8> {
        let n = self.b.len() as u32;
        self.b[0..4].copy_from_slice(&n.to_le_bytes());
        self.b
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        AF_INET as u8
    } else {
        AF_INET6 as u8
    }
}

fn link_msg(i: &Iface, typ: u16, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(typ, flags, seq, pid);
    let mut h = [0u8; 16];
    h[2..4].copy_from_slice(&i.hwtype.to_le_bytes());
    h[4..8].copy_from_slice(&i.index.to_le_bytes());
    h[8..12].copy_from_slice(&i.report_flags().to_le_bytes());
    m.raw(&h);
    let mut name = i.name.as_bytes().to_vec();
    name.push(0);
    m.attr(IFLA_IFNAME, &name)
        .u32(IFLA_TXQLEN, 1000)
        // IF_OPER_UNKNOWN for lo, as Linux reports it.
        // IF_OPER_UNKNOWN for an up lo, as Linux reports it; UP or DOWN.
        .attr(
            IFLA_OPERSTATE,
            &[match (i.up(), i.flags & IFF_LOOPBACK != 0) {
                (true, true) => 0,
                (true, false) => 6,
                (false, _) => 2,
            }],
        )
        .attr(IFLA_LINKMODE, &[0])
        .u32(IFLA_MTU, i.mtu)
        .u32(IFLA_GROUP, 0)
        .u32(IFLA_PROMISCUITY, 0)
        .u32(IFLA_NUM_TX_QUEUES, 1)
        .u32(IFLA_NUM_RX_QUEUES, 1)
        .attr(IFLA_CARRIER, &[1])
        // A link never brought up has no queueing discipline yet.
        .attr(
            IFLA_QDISC,
            if i.up() || !i.addrs.is_empty() {
                b"noqueue\0".as_slice()
            } else {
                b"noop\0".as_slice()
            },
        )
        .attr(IFLA_ADDRESS, &i.hwaddr)
        .attr(
            IFLA_BROADCAST,
            &if i.flags & IFF_LOOPBACK != 0 {
                [0; 6]
            } else {
                [0xff; 6]
            },
        );
    // struct rtnl_link_stats: rx/tx packets, rx/tx bytes, then errors...
    let mut st = [0u32; 24];
    st[0] = i.stats.0 as u32;
    st[1] = i.stats.0 as u32;
    st[2] = i.stats.1 as u32;
    st[3] = i.stats.1 as u32;
    let sb: Vec<u8> = st.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.attr(IFLA_STATS, &sb);
    m.finish()
}

fn addr_msg(i: &Iface, a: &IfAddr, typ: u16, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(typ, flags, seq, pid);
    let scope = if a.addr.is_loopback() {
        RT_SCOPE_HOST
    } else {
        RT_SCOPE_UNIVERSE
    };
    let mut h = [0u8; 8];
    h[0] = family_of(a.addr);
    h[1] = a.prefix;
    h[2] = IFA_F_PERMANENT as u8;
    h[3] = scope;
    h[4..8].copy_from_slice(&(i.index as u32).to_le_bytes());
    m.raw(&h);
    let ab = ip_bytes(a.addr);
    m.attr(IFA_ADDRESS, &ab);
    if a.addr.is_ipv4() {
        m.attr(IFA_LOCAL, &ab);
        let mut l = a.label.as_bytes().to_vec();
        l.push(0);
        m.attr(IFA_LABEL, &l);
    }
    m.u32(IFA_FLAGS, IFA_F_PERMANENT);
    let mut ci = Vec::new();
    for v in [u32::MAX, u32::MAX, 0, 0] {
        ci.extend_from_slice(&v.to_le_bytes());
    }
    m.attr(IFA_CACHEINFO, &ci);
    m.finish()
}

/// A route as RTM_GETROUTE reports it.
struct Route {
    dst: IpAddr,
    dst_len: u8,
    table: u8,
    typ: u8,
    scope: u8,
    prefsrc: Option<IpAddr>,
    oif: i32,
    priority: Option<u32>,
}

fn network(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32) as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
        IpAddr::V6(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128) as u32)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

/// The routes the interfaces' addresses imply (the kernel routes Linux
/// adds with each address).
fn routes(t: &[Iface]) -> Vec<Route> {
    let mut out = Vec::new();
    for i in t.iter().filter(|i| i.up()) {
        let lo = i.flags & IFF_LOOPBACK != 0;
        for a in &i.addrs {
            let full = if a.addr.is_ipv4() { 32 } else { 128 };
            let net = network(a.addr, a.prefix);
            if a.addr.is_ipv4() && lo {
                out.push(Route {
                    dst: net,
                    dst_len: a.prefix,
                    table: RT_TABLE_LOCAL,
                    typ: RTN_LOCAL,
                    scope: RT_SCOPE_HOST,
                    prefsrc: Some(a.addr),
                    oif: i.index,
                    priority: None,
                });
            } else if a.addr.is_ipv4() {
                out.push(Route {
                    dst: net,
                    dst_len: a.prefix,
                    table: RT_TABLE_MAIN,
                    typ: RTN_UNICAST,
                    scope: RT_SCOPE_LINK,
                    prefsrc: Some(a.addr),
                    oif: i.index,
                    priority: None,
                });
            } else {
                out.push(Route {
                    dst: net,
                    dst_len: a.prefix,
                    table: RT_TABLE_MAIN,
                    typ: RTN_UNICAST,
                    scope: RT_SCOPE_UNIVERSE,
                    prefsrc: None,
                    oif: i.index,
                    priority: Some(256),
                });
            }
            if !(a.addr.is_ipv4() && lo && a.prefix == full) {
                out.push(Route {
                    dst: a.addr,
                    dst_len: full,
                    table: RT_TABLE_LOCAL,
                    typ: RTN_LOCAL,
                    scope: RT_SCOPE_HOST,
                    prefsrc: a.addr.is_ipv4().then_some(a.addr),
                    oif: i.index,
                    priority: if a.addr.is_ipv4() { None } else { Some(0) },
                });
            }
        }
    }
    out
}

fn gateway_msg(gw: Ipv4Addr, oif: i32, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWROUTE, flags, seq, pid);
    // RTPROT_BOOT, as a route configured at boot.
    let h = [
        AF_INET as u8,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        3,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    m.raw(&h);
    m.u32(RTA_TABLE, RT_TABLE_MAIN as u32);
    m.attr(RTA_GATEWAY, &gw.octets());
    m.u32(RTA_OIF, oif as u32);
    m.finish()
}

fn route_msg(r: &Route, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(RTM_NEWROUTE, flags, seq, pid);
    let h = [
        family_of(r.dst),
        r.dst_len,
        0,
        0,
        r.table,
        RTPROT_KERNEL,
        r.scope,
        r.typ,
        0,
        0,
        0,
        0,
    ];
    m.raw(&h);
    m.u32(RTA_TABLE, r.table as u32);
    if r.dst_len > 0 {
        m.attr(RTA_DST, &ip_bytes(r.dst));
    }
    if let Some(p) = r.priority {
        m.u32(RTA_PRIORITY, p);
    }
    if let Some(s) = r.prefsrc {
        m.attr(RTA_PREFSRC, &ip_bytes(s));
    }
    m.u32(RTA_OIF, r.oif as u32);
    m.finish()
}

/// The attributes after a fixed header of `hdr` bytes: (type, payload).
fn attrs(body: &[u8], hdr: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = align4(hdr);
    while off + 4 <= body.len() {
        let len = u16::from_le_bytes([body[off], body[off + 1]]) as usize;
        let typ = u16::from_le_bytes([body[off + 2], body[off + 3]]) & 0x3fff;
        if len < 4 || off + len > body.len() {
            break;
        }
        out.push((typ, &body[off + 4..off + len]));
        off += align4(len);
    }
    out
}

fn err_msg(errno: i32, req: &[u8], seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(NLMSG_ERROR, 0, seq, pid);
    m.raw(&(-errno).to_le_bytes());
    m.raw(&req[..16.min(req.len())]);
    m.finish()
}

fn find_iface<'a>(t: &'a mut [Iface], index: i32, name: Option<&[u8]>) -> Option<&'a mut Iface> {
    t.iter_mut().find(|i| {
        (index > 0 && i.index == index)
            || (index <= 0
                && name.is_some_and(|n| {
                    let n = n.split(|&c| c == 0).next().unwrap_or(n);
                    i.name.as_bytes() == n
                }))
    })
}

fn parse_ip(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (family as i32, b.len()) {
        (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        (AF_INET6, 16) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => None,
    }
}

/// Handles one request; returns the reply datagrams.
fn handle(req: &[u8], pid: u32) -> Vec<Vec<u8>> {
    let typ = u16::from_le_bytes([req[4], req[5]]);
    let flags = u16::from_le_bytes([req[6], req[7]]);
    let seq = u32::from_le_bytes([req[8], req[9], req[10], req[11]]);
    let body = &req[16..];
    if flags & NLM_F_REQUEST == 0 {
        return Vec::new();
    }
    let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
    let fam = body.first().copied().unwrap_or(0) as i32;
    let want = |f: u8| fam == 0 || fam == f as i32;
    let r: Result<Vec<u8>, Errno> = match typ {
        RTM_GETLINK if dump => {
            let mut out = Vec::new();
            for i in iface::ifaces().iter() {
                out.extend(link_msg(i, RTM_NEWLINK, NLM_F_MULTI, seq, pid));
            }
            return done(out, seq, pid);
        }
        RTM_GETLINK => {
            if body.len() < 16 {
                Err(Errno::EINVAL)
            } else {
                let index = i32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let a = attrs(body, 16);
                let name = a.iter().find(|x| x.0 == IFLA_IFNAME).map(|x| x.1);
                let mut t = iface::ifaces();
                match find_iface(&mut t, index, name) {
                    Some(i) => Ok(link_msg(i, RTM_NEWLINK, 0, seq, pid)),
                    None => Err(Errno::ENODEV),
                }
            }
        }
        RTM_GETADDR if dump => {
            let mut out = Vec::new();
            // IPv4 first, then IPv6, as Linux dumps them.
            for v4 in [true, false] {
                for i in iface::ifaces().iter() {
                    for a in i.addrs.iter().filter(|a| a.addr.is_ipv4() == v4) {
                        if want(family_of(a.addr)) {
                            out.extend(addr_msg(i, a, RTM_NEWADDR, NLM_F_MULTI, seq, pid));
                        }
                    }
                }
            }
            return done(out, seq, pid);
        }
        RTM_GETROUTE if dump => {
            let mut out = Vec::new();
            if let Some((gw, oif)) = iface::default_gateway().filter(|_| want(AF_INET as u8)) {
                out.extend(gateway_msg(gw, oif, NLM_F_MULTI, seq, pid));
            }
            for r in routes(&iface::ifaces())
                .iter()
                .filter(|r| want(family_of(r.dst)))
            {
                out.extend(route_msg(r, NLM_F_MULTI, seq, pid));
            }
            return done(out, seq, pid);
        }
        RTM_NEWLINK | RTM_SETLINK => {
            if body.len() < 16 {
                Err(Errno::EINVAL)
            } else {
                let index = i32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let fl = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
                let mut change = u32::from_le_bytes([body[12], body[13], body[14], body[15]]);
                if change == 0 {
                    change = u32::MAX;
                }
                let a = attrs(body, 16);
                let name = a.iter().find(|x| x.0 == IFLA_IFNAME).map(|x| x.1);
                let mtu = a.iter().find(|x| x.0 == IFLA_MTU).map(|x| x.1);
                let mut t = iface::ifaces();
                match find_iface(&mut t, index, name) {
                    None => Err(if index <= 0 && name.is_none() {
                        Errno::EINVAL
                    } else {
                        Errno::ENODEV
                    }),
                    Some(i) => {
                        let mut r = Ok(Vec::new());
                        if let Some(m) = mtu {
                            match m.try_into().map(u32::from_le_bytes) {
                                Ok(v) if (68..=65536).contains(&v) => i.mtu = v,
                                _ => r = Err(Errno::EINVAL),
                            }
                        }
                        if r.is_ok() && change & IFF_UP != 0 {
                            iface::set_up(i, fl & IFF_UP != 0);
                        }
                        r
                    }
                }
            }
        }
        RTM_NEWADDR | RTM_DELADDR => addr_change(typ, flags, body),
        _ => Err(Errno::EOPNOTSUPP),
    };
    match r {
        Ok(reply) if !reply.is_empty() => vec![reply],
        Ok(_) if flags & NLM_F_ACK != 0 => vec![err_msg(0, req, seq, pid)],
        Ok(_) => Vec::new(),
        Err(e) => vec![err_msg(e.as_i32(), req, seq, pid)],
    }
}

fn done(mut out: Vec<u8>, seq: u32, pid: u32) -> Vec<Vec<u8>> {
    let mut m = Msg::new(NLMSG_DONE, NLM_F_MULTI, seq, pid);
    m.raw(&0i32.to_le_bytes());
    out.extend(m.finish());
    vec![out]
}

fn addr_change(typ: u16, flags: u16, body: &[u8]) -> Result<Vec<u8>, Errno> {
    if body.len() < 8 {
        return Err(Errno::EINVAL);
    }
    let family = body[0];
    let prefix = body[1];
    let index = u32::from_le_bytes([body[4], body[5], body[6], body[7]]) as i32;
    let a = attrs(body, 8);
    let get = |t: u16| a.iter().find(|x| x.0 == t).map(|x| x.1);
    let Some(ip) = get(IFA_LOCAL)
        .or(get(IFA_ADDRESS))
        .and_then(|b| parse_ip(family, b))
    else {
        return Err(Errno::EINVAL);
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(Errno::EINVAL);
    }
    let mut t = iface::ifaces();
    let Some(i) = find_iface(&mut t, index, None) else {
        return Err(Errno::ENODEV);
    };
    let pos = i.addrs.iter().position(|x| x.addr == ip);
    if typ == RTM_DELADDR {
        return match pos {
            Some(p) => {
                i.addrs.remove(p);
                Ok(Vec::new())
            }
            None => Err(Errno::EADDRNOTAVAIL),
        };
    }
    if pos.is_some() {
        return if flags & NLM_F_EXCL != 0 {
            Err(Errno::EEXIST)
        } else {
            Ok(Vec::new())
        };
    }
    if i.addrs.len() >= iface::MAX_ADDRS {
        return Err(Errno::ENOSPC);
    }
    let label = get(IFA_LABEL)
        .map(|l| String::from_utf8_lossy(l.split(|&c| c == 0).next().unwrap_or(l)).into_owned())
        .filter(|l| !l.is_empty() && l.len() < 16)
        .unwrap_or_else(|| i.name.clone());
    i.addrs.push(IfAddr {
        addr: ip,
        prefix,
        label,
    });
    Ok(Vec::new())
}

pub fn send(
    ctx: &SyscallContext<'_>,
    sock: &Arc<NetlinkSocket>,
    req: &SendReq<'_>,
) -> KResult<u64> {
    if let Some((a, l)) = req.name {
        let (pid, _) = read_nl(ctx, a, l)?;
        if pid != 0 {
            return error!(ECONNREFUSED);
        }
    }
    let total: usize = req
        .segs
        .iter()
        .map(|s| s.1)
        .fold(0usize, usize::saturating_add);
    // Linux: a message must fit the send buffer (which bounds what the
    // kernel copies in).
    if total > sock.lock().sndbuf.saturating_sub(32) {
        return error!(EMSGSIZE);
    }
    let data = super::gather_send(ctx, req.segs, total)?;
    let pid = autobind(sock, 0, ctx.task.tgid())?;
    let mut replies = Vec::new();
    let mut off = 0;
    while off + 16 <= data.len() {
        let len =
            u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        if len < 16 || off + len > data.len() {
            break;
        }
        let one = &data[off..off + len];
        if sock.protocol == super::diag::NETLINK_SOCK_DIAG {
            replies.extend(super::diag::handle(one, pid));
        } else {
            replies.extend(handle(one, pid));
        }
        off += align4(len);
    }
    let mut s = sock.lock();
    for r in replies {
        if s.rx_bytes + r.len() > RX_MAX.min(s.rcvbuf.max(32768)) {
            s.error = Some(Errno::ENOBUFS);
            break;
        }
        s.rx_bytes += r.len();
        s.rx.push_back(r);
    }
    drop(s);
    sock.waiters.wake_all();
    Ok(total as u64)
}

pub fn recv(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    sock: &Arc<NetlinkSocket>,
    req: &RecvReq<'_>,
) -> KResult<RecvOut> {
    let room: usize = req
        .segs
        .iter()
        .map(|s| s.1)
        .fold(0usize, usize::saturating_add);
    let nonblock = f.nonblocking() || req.flags & MSG_DONTWAIT != 0;
    let peek = req.flags & MSG_PEEK != 0;
    let ready = || {
        let s = sock.lock();
        !s.rx.is_empty() || s.error.is_some()
    };
    if !ready() {
        if nonblock {
            return error!(EAGAIN);
        }
        let _ = Instant::now();
        sock.waiters.wait(Some(ctx.task), None, ready)?;
    }
    let m = {
        let mut s = sock.lock();
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let m = if peek {
            s.rx.front().cloned()
        } else {
            s.rx.pop_front()
        };
        let Some(m) = m else {
            return error!(EAGAIN);
        };
        if !peek {
            s.rx_bytes -= m.len();
        }
        m
    };
    let n = room.min(m.len());
    crate::fs::syscalls::scatter(&ctx.mm(), req.segs, 0, &m[..n])?;
    Ok(RecvOut {
        copied: n,
        full: m.len(),
        from: Some(nl_addr(0, 0)),
        flags: if n < m.len() { MSG_TRUNC } else { 0 },
        control: Vec::new(),
    })
}

/// The open-file face of a netlink socket.
struct NetlinkFile(Arc<NetlinkSocket>);

impl Drop for NetlinkFile {
    fn drop(&mut self) {
        let pid = self.0.lock().pid;
        if pid != 0 {
            pids().remove(&pid);
        }
    }
}

impl FileOps for NetlinkFile {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let sock = &self.0;
        let ready = || !sock.lock().rx.is_empty();
        if !ready() {
            if f.nonblocking() {
                return error!(EAGAIN);
            }
            sock.waiters.wait(task, None, ready)?;
        }
        let mut s = sock.lock();
        let Some(m) = s.rx.pop_front() else {
            return error!(EAGAIN);
        };
        s.rx_bytes -= m.len();
        let n = buf.len().min(m.len());
        buf[..n].copy_from_slice(&m[..n]);
        Ok(n)
    }
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let s = self.0.lock();
        let mut ev = WRITABLE;
        if !s.rx.is_empty() {
            ev |= READABLE;
        }
        if s.error.is_some() {
            ev |= crate::fs::poll::POLLERR;
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
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        if iface::is_if_ioctl(cmd) {
            return iface::ioctl(ctx, cmd, arg);
        }
        error!(ENOTTY)
    }
}

/// The IPv4 routes of the main table: (interface, destination, prefix),
/// for /proc/net/route.
pub(super) fn main_v4_routes() -> Vec<(String, Ipv4Addr, u8)> {
    let t = iface::ifaces();
    routes(&t)
        .into_iter()
        .filter(|r| r.table == RT_TABLE_MAIN)
        .filter_map(|r| match r.dst {
            IpAddr::V4(d) => {
                let name = t
                    .iter()
                    .find(|i| i.index == r.oif)
                    .map(|i| i.name.clone())?;
                Some((name, d, r.dst_len))
            }
            IpAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Garbage requests never panic and always get an answer or nothing.
    #[test]
    fn hostile_requests() {
        let mut x = 0x1234_5678u32;
        for len in 16..400usize {
            let mut req: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            req[0..4].copy_from_slice(&(len as u32).to_le_bytes());
            // Only read-only types: the interface table is shared.
            let typ = [RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, 99][len % 4];
            req[4..6].copy_from_slice(&typ.to_le_bytes());
            for r in handle(&req, 7) {
                assert!(r.len() >= 16);
            }
        }
    }

    #[test]
    fn attrs_bounded() {
        // A length past the end, a zero length: parsing stops.
        let body = [0u8, 0, 0, 0, 200, 0, 3, 0, 1, 2];
        assert!(attrs(&body, 4).is_empty());
        let body = [0u8, 0, 0, 0, 0, 0, 3, 0];
        assert!(attrs(&body, 4).is_empty());
        let body = [0u8, 0, 0, 0, 8, 0, 3, 0, b'l', b'o', 0, 0];
        assert_eq!(attrs(&body, 4), vec![(3u16, &b"lo\0\0"[..])]);
    }
}
