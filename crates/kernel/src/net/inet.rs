//! AF_INET and AF_INET6: TCP and UDP over the machine's own addresses
//! (lo: 127.0.0.0/8 and ::1, plus any address added with netlink).
//!
//! Local destinations (and eth0=user's NAT, at the socket level) need no
//! packets: the transport delivers in the kernel without framing
//! packets: a TCP connection is a pair of [`InetSocket`]s each holding its
//! receive queue, the sender appends to its peer's queue within the
//! receiver's buffer size (flow control) and wakes it; a UDP datagram goes
//! straight to the queue of the socket bound to its destination. What
//! programs observe is TCP's and UDP's: a port table with bind conflicts,
//! SO_REUSEADDR/SO_REUSEPORT, ephemeral ports, listen backlogs and accept
//! queues (connectors beyond the backlog wait, as unanswered SYNs do),
//! IPv4-mapped IPv6, FIN (half-close) and RST (close with unread data,
//! SO_LINGER 0, a write after the peer closed), ICMP port unreachable
//! (ECONNREFUSED) and readiness for poll/select/epoll. Nothing here
//! needs timers, so nothing runs while the guest is idle. Destinations on
//! eth0=switch's link go through [`eth`]'s packet stack instead.
//!
//! Locking: each socket's state is behind its own mutex. The port table's
//! lock may be held while a socket's lock is taken (table → socket), never
//! the reverse; two sockets' locks are never held at once. Every state
//! change wakes the socket's [`Waiters`], after its lock is released.
//!
//! Lifetime: the open file holds the socket ([`InetFile`]); its release
//! closes the connection (FIN or RST to the peer). Peers, the port table
//! and /proc/net's list hold weak references; a listener's accept queue
//! holds its not-yet-accepted connections.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use ruml_host::net::{HostListener, HostTcp, HostUdp};
use std::time::{Duration, Instant};

use super::iface::{self, canonical};
use super::{
    RecvOut, RecvReq, SendReq, AF_INET, AF_INET6, AF_UNSPEC, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB,
    MSG_PEEK, MSG_TRUNC, MSG_WAITALL, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, POLLERR, POLLHUP, POLLRDHUP, READABLE, WRITABLE};
use crate::fs::types::oflags::{O_NONBLOCK, O_RDWR};
use crate::fs::vfs::FileOps;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::Task;

/// eth0=switch: the packet stack behind eth0 (a child of this module: it
/// works on the sockets' state).
#[path = "eth.rs"]
pub mod eth;

/// SOCK_RAW for ICMP and ICMPv6 (a child of this module: its sockets are
/// inet sockets).
#[path = "raw.rs"]
pub mod raw;

pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_ICMPV6: i32 = 58;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
const SOL_SOCKET: i32 = 1;
const MSG_ERRQUEUE: i32 = 0x2000;
/// UDP's buffers default to net.core.{r,w}mem_default.
const UDP_BUF_DEFAULT: usize = 212_992;

/// Default and bounds of the receive buffer (net.core.rmem_*).
const RCVBUF_DEFAULT: usize = 131_072;
const SNDBUF_DEFAULT: usize = 16_384;
const BUF_MIN: usize = 2304;
const BUF_MAX: usize = 4 << 20;
/// The receive window a TCP socket grows to unless SO_RCVBUF fixes it
/// (Linux's autotuning goes to tcp_rmem[2]).
const WINDOW_MAX: usize = 4 << 20;
/// Beyond this many bytes queued in all TCP sockets together, windows
/// shrink back to their SO_RCVBUF (Linux's tcp_mem pressure).
const QUEUED_LIMIT: usize = 256 << 20;
/// Bytes in every TCP receive queue.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// How many bytes a TCP socket with these options takes into its queue.
fn window(o: &Opts) -> usize {
    if o.rcvbuf_locked || QUEUED.load(Ordering::Relaxed) > QUEUED_LIMIT {
        o.rcvbuf
    } else {
        WINDOW_MAX
    }
}

/// The stack of a NAT thread (they only copy between a host socket and a
/// queue).
const NAT_STACK: usize = 256 << 10;

/// Connectors waiting for room in one accept queue (half-open connections).
const MAX_PENDING: usize = 4096;
/// The largest UDP payload over IPv4 and IPv6.
const UDP_MAX_V4: usize = 65_507;
const UDP_MAX_V6: usize = 65_527;
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;
/// Interface indexes: lo's, and eth0's when there is one.
pub(super) const LO_INDEX: i32 = 1;
pub(super) const ETH0_INDEX: i32 = 2;

/// Socket options ruml keeps (and, where they matter here, honours).
#[derive(Clone)]
struct Opts {
    reuseaddr: bool,
    reuseport: bool,
    keepalive: bool,
    broadcast: bool,
    oobinline: bool,
    nodelay: bool,
    cork: bool,
    /// SO_LINGER: Some(secs) when on; Some(0) closes with RST.
    linger: Option<i32>,
    rcvbuf: usize,
    /// SO_RCVBUF was set: the window is exactly rcvbuf (no autotuning).
    rcvbuf_locked: bool,
    sndbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    ttl: i32,
    tos: i32,
    v6only: bool,
    keepidle: i32,
    keepintvl: i32,
    keepcnt: i32,
    maxseg: i32,
    priority: i32,
    rcvlowat: i32,
    /// Control messages asked for on receive (IP_PKTINFO, IP_RECVTTL,
    /// IP_RECVTOS, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS).
    pktinfo: bool,
    recvttl: bool,
    recvtos: bool,
    recvpktinfo6: bool,
    recvhoplimit: bool,
    recvtclass: bool,
    /// IP_RECVERR / IPV6_RECVERR (kept and reported; see recv_core).
    recverr: bool,
    recverr6: bool,
    /// IPV6_TCLASS: the traffic class of what this socket sends.
    tclass: i32,
    /// SO_TIMESTAMP (1: timeval) or SO_TIMESTAMPNS (2: timespec).
    timestamp: u8,
    /// Multicast: see [`super::mcast`].
    mc: super::mcast::McOpts,
    /// Raw sockets: ICMP types to drop (ICMP_FILTER: bit t for type t <
    /// 32; ICMPV6_FILTER: 256 bits, set = blocked).
    icmp_filter: u32,
    icmp6_filter: [u32; 8],
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            broadcast: false,
            oobinline: false,
            nodelay: false,
            cork: false,
            linger: None,
            rcvbuf: RCVBUF_DEFAULT,
            rcvbuf_locked: false,
            sndbuf: SNDBUF_DEFAULT,
            rcvtimeo: None,
            sndtimeo: None,
            ttl: -1,
            tos: 0,
            v6only: false,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            maxseg: 536,
            priority: 0,
            rcvlowat: 1,
            pktinfo: false,
            recvttl: false,
            recvtos: false,
            recvpktinfo6: false,
            recvhoplimit: false,
            recvtclass: false,
            recverr: false,
            recverr6: false,
            tclass: 0,
            timestamp: 0,
            mc: super::mcast::McOpts::default(),
            icmp_filter: 0,
            icmp6_filter: [0; 8],
        }
    }
}

/// A TCP socket's connection state.
enum Tcp {
    /// Never connected, refused, or closed.
    Closed,
    Listen {
        backlog: usize,
        queue: VecDeque<Arc<InetSocket>>,
        /// Connectors waiting for room in `queue`.
        pending: VecDeque<Arc<InetSocket>>,
    },
    /// Waiting in a listener's pending list.
    Connecting,
    Connected,
}

struct State {
    /// The bound address (port != 0 once bound), in the socket's family.
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    opts: Opts,
    /// sk_err: reported once by the next call or SO_ERROR.
    error: Option<Errno>,
    tcp: Tcp,
    peer: Option<Weak<InetSocket>>,
    rx: VecDeque<u8>,
    shut_rd: bool,
    shut_wr: bool,
    /// The peer will send no more (FIN, or a reset).
    fin: bool,
    /// The connection was reset or broke: no more sending.
    broken: bool,
    /// Ever connected (a closed TCP socket reads EOF, not ENOTCONN).
    was_connected: bool,
    /// A nonblocking connect said EINPROGRESS: the next connect reports
    /// its outcome (0 once established), as Linux's SS_CONNECTING does.
    in_progress: bool,
    dgrams: VecDeque<(SocketAddr, Vec<u8>, Meta)>,
    dgram_bytes: usize,
    /// The last descriptor went away.
    closed: bool,
    /// eth0=user: the host connection this TCP socket's flow goes over
    /// (instead of a peer socket).
    host: Option<Arc<HostTcp>>,
    /// eth0=user: the host socket this UDP socket's outbound datagrams
    /// leave by (made at the first one).
    host_udp: Option<Arc<HostUdp>>,
    /// eth0=switch: the smoltcp TCP socket carrying this connection.
    eth: Option<smoltcp::iface::SocketHandle>,
    /// eth0=switch: free room in that socket's send buffer (kept by the
    /// poll thread and by senders).
    eth_room: usize,
    /// TCP_INFO's counters: payload bytes taken into `rx` and handed to
    /// the peer (or the wire), and when each last happened.
    bytes_received: u64,
    bytes_sent: u64,
    last_recv: Option<Instant>,
    last_sent: Option<Instant>,
}

/// What a datagram carried besides its payload and source, for the
/// receiver's control messages.
#[derive(Clone, Copy)]
pub(super) struct Meta {
    /// The destination address of its IP header (canonical).
    pub dst: IpAddr,
    /// The interface it arrived on.
    pub ifindex: i32,
    /// IPv4 TTL or IPv6 hop limit, and TOS or traffic class, as sent.
    pub ttl: u8,
    pub tos: u8,
    /// CLOCK_REALTIME when it was queued (SO_TIMESTAMP).
    pub stamp: (i64, u32),
}

impl Meta {
    pub fn new(dst: IpAddr, ifindex: i32, ttl: u8, tos: u8) -> Meta {
        Meta {
            dst: canonical(dst),
            ifindex,
            ttl,
            tos,
            stamp: crate::time::now_realtime(),
        }
    }
}

impl State {
    /// A new, unbound, unconnected socket's state.
    fn new() -> State {
        State {
            local: None,
            remote: None,
            opts: Opts::default(),
            error: None,
            tcp: Tcp::Closed,
            peer: None,
            rx: VecDeque::new(),
            shut_rd: false,
            shut_wr: false,
            fin: false,
            broken: false,
            was_connected: false,
            in_progress: false,
            dgrams: VecDeque::new(),
            dgram_bytes: 0,
            closed: false,
            host: None,
            host_udp: None,
            eth: None,
            eth_room: 0,
            bytes_received: 0,
            bytes_sent: 0,
            last_recv: None,
            last_sent: None,
        }
    }
}

/// An AF_INET or AF_INET6 socket (TCP or UDP).
pub struct InetSocket {
    family: i32,
    typ: i32,
    /// A ping socket (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6).
    icmp: bool,
    /// A number naming the socket in /proc/net.
    pub id: u64,
    /// The network namespace it was made in (its /proc/net and sock_diag
    /// show it only there) and its owner (sk_uid: the creator's fsuid;
    /// an accepted connection's is its listener's).
    net: u64,
    uid: u32,
    state: Mutex<State>,
    waiters: Waiters,
    /// Signalled (with `state`) when the receive queue drains: the NAT
    /// reader thread, which has no task to wait as, sleeps on it.
    room: Condvar,
}

impl InetSocket {
    fn new(family: i32, typ: i32, icmp: bool) -> Arc<InetSocket> {
        let uid = crate::fs::anon::current_task().map_or(0, |t| {
            t.group
                .creds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fsuid
        });
        Self::new_in(family, typ, icmp, crate::task::ns::current_net(), uid)
    }

    /// The server side of a connection to `listener`: its namespace and
    /// owner (sk_clone_lock copies them).
    fn accepted(listener: &InetSocket) -> Arc<InetSocket> {
        Self::new_in(
            listener.family,
            SOCK_STREAM,
            false,
            listener.net,
            listener.uid,
        )
    }

    fn new_in(family: i32, typ: i32, icmp: bool, net: u64, uid: u32) -> Arc<InetSocket> {
        static NEXT: AtomicU64 = AtomicU64::new(20000);
        let s = Arc::new(InetSocket {
            family,
            typ,
            icmp,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            net,
            uid,
            state: Mutex::new(State::new()),
            waiters: Waiters::new(),
            room: Condvar::new(),
        });
        let mut all = registry();
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&s));
        s
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tcp(&self) -> bool {
        self.typ == SOCK_STREAM
    }

    fn proto(&self) -> i32 {
        match (self.tcp(), self.icmp, self.family) {
            (true, _, _) => IPPROTO_TCP,
            (false, false, _) => IPPROTO_UDP,
            (false, true, AF_INET) => IPPROTO_ICMP,
            (false, true, _) => IPPROTO_ICMPV6,
        }
    }

    fn peer(&self) -> Option<Arc<InetSocket>> {
        self.lock().peer.as_ref().and_then(|w| w.upgrade())
    }

    /// Expresses a (canonical) address in this socket's family.
    fn in_family(&self, ip: IpAddr, port: u16) -> SocketAddr {
        in_family(self.family, ip, port)
    }
}

fn in_family(family: i32, ip: IpAddr, port: u16) -> SocketAddr {
    match (family, canonical(ip)) {
        (AF_INET6, IpAddr::V4(v4)) => {
            SocketAddr::V6(SocketAddrV6::new(v4.to_ipv6_mapped(), port, 0, 0))
        }
        (_, ip) => SocketAddr::new(ip, port),
    }
}

/// The live inet sockets of the caller's network namespace (what its
/// /proc/net and sock_diag show).
fn in_current_net() -> Vec<Arc<InetSocket>> {
    let net = crate::task::ns::current_net();
    registry()
        .iter()
        .filter_map(|w| w.upgrade())
        .filter(|s| s.net == net)
        .collect()
}

/// Every inet socket, for /proc/net.
fn registry() -> MutexGuard<'static, Vec<Weak<InetSocket>>> {
    static R: OnceLock<Mutex<Vec<Weak<InetSocket>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The port table: bound sockets by (protocol, port).
type Ports = HashMap<(i32, u16), Vec<Weak<InetSocket>>>;

fn port_tables() -> &'static Mutex<HashMap<u64, Ports>> {
    static P: OnceLock<Mutex<HashMap<u64, Ports>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// The current network namespace's port table (task/ns.rs `PerNet`): a
/// socket bound in one namespace is not reachable from another.
fn ports() -> crate::task::ns::PerNet<Ports> {
    crate::task::ns::PerNet::lock(port_tables(), |_| HashMap::new())
}

/// A network namespace is gone: its port table goes too.
pub fn netns_gone(net: u64) {
    port_tables()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&net);
    raw::netns_gone(net);
    super::snmp::netns_gone(net);
}

/// A bound socket as the port table sees it.
struct Binding {
    ip: IpAddr,
    family: i32,
    v6only: bool,
    reuseaddr: bool,
    reuseport: bool,
    listening: bool,
    connected_to: Option<SocketAddr>,
}

impl Binding {
    fn of(sock: &InetSocket, s: &State) -> Option<Binding> {
        let local = s.local?;
        Some(Binding {
            ip: canonical(local.ip()),
            family: sock.family,
            v6only: s.opts.v6only,
            reuseaddr: s.opts.reuseaddr,
            reuseport: s.opts.reuseport,
            listening: matches!(s.tcp, Tcp::Listen { .. }),
            connected_to: s.remote,
        })
    }
    fn covers_v4(&self) -> bool {
        match self.ip {
            IpAddr::V4(a) => a.is_unspecified(),
            IpAddr::V6(a) => a.is_unspecified() && !self.v6only,
        }
    }
    fn covers_v6(&self) -> bool {
        matches!(self.ip, IpAddr::V6(a) if a.is_unspecified())
    }
    fn wildcard(&self) -> bool {
        self.ip.is_unspecified()
    }
    /// Whether a packet to `dst` (canonical) is for this binding.
    fn accepts(&self, dst: IpAddr) -> bool {
        if self.wildcard() {
            if dst.is_ipv4() {
                self.covers_v4()
            } else {
                self.covers_v6()
            }
        } else {
            self.ip == dst
        }
    }
    fn overlaps(&self, o: &Binding) -> bool {
        match (self.wildcard(), o.wildcard()) {
            (false, false) => self.ip == o.ip,
            (true, false) => self.accepts(o.ip),
            (false, true) => o.accepts(self.ip),
            (true, true) => {
                (self.covers_v4() && o.covers_v4()) || (self.covers_v6() && o.covers_v6())
            }
        }
    }
}

/// Whether binding `me` beside `other` on one port is refused.
fn conflicts(me: &Binding, other: &Binding, tcp: bool) -> bool {
    if !me.overlaps(other) {
        return false;
    }
    if me.reuseport && other.reuseport {
        return false;
    }
    if me.reuseaddr && other.reuseaddr && (!tcp || !other.listening) {
        return false;
    }
    true
}

/// The live bindings on (proto, port) other than `me`.
fn bindings_on(
    t: &mut Ports,
    proto: i32,
    port: u16,
    me: &InetSocket,
) -> Vec<(Arc<InetSocket>, Binding)> {
    let Some(list) = t.get_mut(&(proto, port)) else {
        return Vec::new();
    };
    list.retain(|w| w.strong_count() > 0);
    list.iter()
        .filter_map(|w| w.upgrade())
        .filter(|s| !std::ptr::eq(&**s, me))
        .filter_map(|s| {
            let b = {
                let st = s.lock();
                if st.closed {
                    None
                } else {
                    Binding::of(&s, &st)
                }
            };
            b.map(|b| (s, b))
        })
        .collect()
}

/// Binds `sock` to `addr` (port 0: an ephemeral port) in the port table.
fn bind_port(sock: &Arc<InetSocket>, addr: SocketAddr) -> KResult<()> {
    let proto = sock.proto();
    let mut t = ports();
    let (v6only, reuseaddr, reuseport) = {
        let s = sock.lock();
        if s.local.is_some() {
            return error!(EINVAL);
        }
        (s.opts.v6only, s.opts.reuseaddr, s.opts.reuseport)
    };
    let me = Binding {
        ip: canonical(addr.ip()),
        family: sock.family,
        v6only,
        reuseaddr,
        reuseport,
        listening: false,
        connected_to: None,
    };
    let _ = me.family;
    let port = if addr.port() != 0 {
        let others = bindings_on(&mut t, proto, addr.port(), sock);
        if others.iter().any(|(_, o)| conflicts(&me, o, sock.tcp())) {
            return error!(EADDRINUSE);
        }
        addr.port()
    } else {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u64 + 1;
        let start = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut found = None;
        for k in 0..span {
            let p = EPHEMERAL.start() + ((start.wrapping_mul(7919) + k) % span) as u16;
            if bindings_on(&mut t, proto, p, sock).is_empty() {
                found = Some(p);
                break;
            }
        }
        match found {
            Some(p) => p,
            None => return error!(EADDRINUSE),
        }
    };
    t.entry((proto, port))
        .or_default()
        .push(Arc::downgrade(sock));
    sock.lock().local = Some(SocketAddr::new(addr.ip(), port));
    Ok(())
}

fn unbind(sock: &InetSocket) {
    let Some(local) = sock.lock().local else {
        return;
    };
    let mut t = ports();
    if let Some(list) = t.get_mut(&(sock.proto(), local.port())) {
        list.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), sock));
        if list.is_empty() {
            t.remove(&(sock.proto(), local.port()));
        }
    }
}

// ---------------------------------------------------------------------------
// sockaddrs

/// Reads a sockaddr_in / sockaddr_in6 for a socket of `family`. AF_UNSPEC
/// gives None (connect's "disconnect").
fn read_sockaddr(
    ctx: &SyscallContext<'_>,
    family: i32,
    addr: UserAddr,
    len: u32,
) -> KResult<Option<SocketAddr>> {
    let len = len as i32;
    // Linux: at most a sockaddr_storage.
    if !(2..=128).contains(&len) {
        return error!(EINVAL);
    }
    let mut b = vec![0u8; (len as usize).min(128)];
    ctx.mm().read_bytes(addr.0, &mut b)?;
    let fam = u16::from_le_bytes([b[0], b[1]]) as i32;
    if fam == AF_UNSPEC {
        return Ok(None);
    }
    match family {
        AF_INET => {
            if len < 16 {
                return error!(EINVAL);
            }
            if fam != AF_INET {
                return error!(EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Ok(Some(SocketAddr::V4(SocketAddrV4::new(ip, port))))
        }
        _ => {
            if len < 24 {
                return error!(EINVAL);
            }
            if fam != AF_INET6 {
                return error!(EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = if len >= 28 {
                u32::from_le_bytes([b[24], b[25], b[26], b[27]])
            } else {
                0
            };
            Ok(Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(o),
                port,
                flow,
                scope,
            ))))
        }
    }
}

/// The sockaddr bytes of `a` (or of the unspecified address of `family`).
pub fn sockaddr_bytes(family: i32, a: Option<SocketAddr>) -> Vec<u8> {
    let a = a.unwrap_or(if family == AF_INET {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    });
    match in_family(family, a.ip(), a.port()) {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; 16];
            b[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; 28];
            b[0..2].copy_from_slice(&(AF_INET6 as u16).to_le_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b
        }
    }
}

/// Where a packet to `dst` goes: the canonical destination (the
/// unspecified address means this machine), or ENETUNREACH.
fn route(sock: &InetSocket, dst: SocketAddr, v6only: bool) -> KResult<IpAddr> {
    let mut ip = canonical(dst.ip());
    if ip.is_unspecified() {
        ip = match (sock.family, dst.ip()) {
            (AF_INET6, IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
    }
    if sock.family == AF_INET6 && v6only && ip.is_ipv4() {
        return error!(ENETUNREACH);
    }
    if !iface::is_local(ip) && !iface::nat_route(ip) && !eth::routes(ip) {
        return error!(ENETUNREACH);
    }
    Ok(ip)
}

// ---------------------------------------------------------------------------
// system calls

pub fn socket(ctx: &mut SyscallContext<'_>, domain: i32, typ: i32, protocol: i32) -> KResult<u64> {
    let t = typ & 0xf;
    let icmp = match (t, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) | (SOCK_DGRAM, 0 | IPPROTO_UDP) => false,
        // Ping sockets: ICMP echo over datagrams.
        (SOCK_DGRAM, IPPROTO_ICMP) if domain == AF_INET => true,
        (SOCK_DGRAM, IPPROTO_ICMPV6) if domain == AF_INET6 => true,
        (SOCK_STREAM | SOCK_DGRAM, _) => return error!(EPROTONOSUPPORT),
        (super::SOCK_RAW, _) => {
            raw::check(ctx, domain, protocol)?;
            true
        }
        _ => return error!(ESOCKTNOSUPPORT),
    };
    let sock = InetSocket::new(domain, t, icmp);
    if t == super::SOCK_RAW {
        raw::register(&sock);
    }
    if t != SOCK_STREAM {
        let mut s = sock.lock();
        s.opts.rcvbuf = UDP_BUF_DEFAULT;
        s.opts.sndbuf = UDP_BUF_DEFAULT;
    }
    let f = new_file(sock, typ & SOCK_NONBLOCK != 0);
    ctx.files()
        .alloc(f, typ & SOCK_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

fn new_file(sock: Arc<InetSocket>, nonblock: bool) -> FileRef {
    crate::fs::anon::socket_file(
        sock.id,
        Arc::new(InetFile(sock)),
        O_RDWR | if nonblock { O_NONBLOCK } else { 0 },
    )
}

pub fn bind(
    ctx: &SyscallContext<'_>,
    sock: &Arc<InetSocket>,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let a = match read_sockaddr(ctx, sock.family, addr, len)? {
        Some(a) => a,
        // AF_UNSPEC with INADDR_ANY binds an IPv4 socket (Linux's
        // compatibility); anything else is the wrong family.
        None => {
            if sock.family != AF_INET || (len as usize) < 16 {
                return error!(EAFNOSUPPORT);
            }
            let mut b = [0u8; 8];
            ctx.mm().read_bytes(addr.0, &mut b)?;
            if b[4..8] != [0; 4] {
                return error!(EAFNOSUPPORT);
            }
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                u16::from_be_bytes([b[2], b[3]]),
            )
        }
    };
    let ip = canonical(a.ip());
    if sock.family == AF_INET6 && ip.is_ipv4() && sock.lock().opts.v6only {
        return error!(EADDRNOTAVAIL);
    }
    if sock.typ == super::SOCK_RAW {
        return raw::bind(sock, a);
    }
    // A datagram socket may bind a group address (to take only that
    // group's datagrams), as Linux allows.
    let group = !sock.tcp() && ip.is_multicast();
    if !iface::bindable(ip) && !group {
        return error!(EADDRNOTAVAIL);
    }
    bind_port(sock, a)?;
    Ok(0)
}

/// Binds an unbound socket to an ephemeral port of the wildcard address
/// (what listen, connect-less sends and pings do first, as Linux's
/// inet_autobind).
fn autobind(sock: &Arc<InetSocket>) -> KResult<()> {
    if sock.lock().local.is_none() {
        let any = if sock.family == AF_INET {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        bind_port(sock, SocketAddr::new(any, 0))?;
    }
    Ok(())
}

pub fn listen(sock: &Arc<InetSocket>, backlog: i32) -> KResult<u64> {
    if !sock.tcp() {
        return error!(EOPNOTSUPP);
    }
    autobind(sock)?;
    let b = backlog.clamp(0, crate::fs::procsys::somaxconn()) as usize;
    // Two listeners on one port only with SO_REUSEPORT on both.
    let mut table = ports();
    let t = &mut table;
    let me = {
        let s = sock.lock();
        match s.tcp {
            Tcp::Closed => {}
            Tcp::Listen { .. } => {}
            _ => return error!(EINVAL),
        }
        Binding::of(sock, &s)
    };
    let Some(mut me) = me else {
        return error!(EINVAL);
    };
    me.listening = true;
    let port = sock.lock().local.map(|l| l.port()).unwrap_or(0);
    for (_, o) in bindings_on(t, IPPROTO_TCP, port, sock) {
        if o.listening && me.overlaps(&o) && !(me.reuseport && o.reuseport) {
            return error!(EADDRINUSE);
        }
    }
    let mut s = sock.lock();
    match &mut s.tcp {
        Tcp::Listen { backlog, .. } => *backlog = b,
        st => {
            *st = Tcp::Listen {
                backlog: b,
                queue: VecDeque::new(),
                pending: VecDeque::new(),
            }
        }
    }
    // Connections from eth0's wire, when the binding covers IPv4.
    let covers_v4 = Binding::of(sock, &s).is_some_and(|b| b.covers_v4() || b.ip.is_ipv4());
    let local = s.local;
    drop(s);
    drop(table);
    if let Some(l) = local.filter(|_| covers_v4) {
        eth::listen(sock, canonical(l.ip()), l.port());
    }
    Ok(0)
}

/// The listener for a connection to `dst`: a listening socket on its port
/// whose address accepts it, an exact address before a wildcard; among
/// SO_REUSEPORT siblings the one with the shortest queue.
fn find_listener(port: u16, dst: IpAddr, me: &InetSocket) -> Option<Arc<InetSocket>> {
    let mut t = ports();
    let mut best: Option<(bool, usize, Arc<InetSocket>)> = None;
    for (s, b) in bindings_on(&mut t, IPPROTO_TCP, port, me) {
        if !b.listening || !b.accepts(dst) {
            continue;
        }
        let qlen = match &s.lock().tcp {
            Tcp::Listen { queue, .. } => queue.len(),
            _ => continue,
        };
        let exact = !b.wildcard();
        let better = match &best {
            None => true,
            Some((be, bq, _)) => (exact && !be) || (exact == *be && qlen < *bq),
        };
        if better {
            best = Some((exact, qlen, s));
        }
    }
    best.map(|b| b.2)
}

/// Completes a connection from `client` (whose remote is set) accepted by
/// `listener`: the server end, paired, pushed on the accept queue.
/// Returns false if the listener stopped listening.
fn establish(listener: &Arc<InetSocket>, client: &Arc<InetSocket>) -> bool {
    let (c_local, c_remote) = {
        let s = client.lock();
        (s.local, s.remote)
    };
    let (Some(c_local), Some(c_remote)) = (c_local, c_remote) else {
        return false;
    };
    let server = InetSocket::accepted(listener);
    {
        let opts = listener.lock().opts.clone();
        let mut s = server.lock();
        s.opts = opts;
        s.local = Some(in_family(listener.family, c_remote.ip(), c_remote.port()));
        s.remote = Some(in_family(listener.family, c_local.ip(), c_local.port()));
        s.peer = Some(Arc::downgrade(client));
        s.tcp = Tcp::Connected;
        s.was_connected = true;
    }
    {
        let mut c = client.lock();
        c.peer = Some(Arc::downgrade(&server));
        c.tcp = Tcp::Connected;
        c.was_connected = true;
    }
    let ok = {
        let mut l = listener.lock();
        match &mut l.tcp {
            Tcp::Listen { queue, .. } => {
                queue.push_back(server.clone());
                true
            }
            _ => false,
        }
    };
    if ok {
        iface::count_lo(0);
        super::snmp::bump(listener.net, |c| c.tcp_passive_opens += 1);
        listener.waiters.wake_all();
    } else {
        // The listener went away: the connection is reset.
        server.lock().closed = true;
        reset(client, Errno::ECONNREFUSED);
    }
    client.waiters.wake_all();
    ok
}

/// Moves waiting connectors into a listener's accept queue while there is
/// room.
fn admit_pending(listener: &Arc<InetSocket>) {
    loop {
        let next = {
            let mut l = listener.lock();
            match &mut l.tcp {
                Tcp::Listen {
                    backlog,
                    queue,
                    pending,
                } if queue.len() <= *backlog => pending.pop_front(),
                _ => None,
            }
        };
        let Some(c) = next else {
            return;
        };
        let waiting = {
            let cs = c.lock();
            !cs.closed && matches!(cs.tcp, Tcp::Connecting)
        };
        if !waiting {
            continue;
        }
        establish(listener, &c);
    }
}

/// Breaks a connection from the far side: `err` for the next call, no
/// more data either way.
fn reset(sock: &InetSocket, err: Errno) {
    {
        let mut s = sock.lock();
        if !s.closed {
            s.error = Some(err);
        }
        s.fin = true;
        s.broken = true;
        s.peer = None;
        if matches!(s.tcp, Tcp::Connecting | Tcp::Connected) {
            s.tcp = Tcp::Closed;
        }
    }
    sock.waiters.wake_all();
}

pub fn connect(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    sock: &Arc<InetSocket>,
    addr: UserAddr,
    len: u32,
) -> KResult<u64> {
    let dst = read_sockaddr(ctx, sock.family, addr, len)?;
    if sock.typ == super::SOCK_RAW {
        return raw::connect(sock, dst);
    }
    if !sock.tcp() {
        return connect_udp(sock, dst);
    }
    let Some(dst) = dst else {
        // AF_UNSPEC on TCP: Linux disconnects; ruml does for unconnected
        // sockets only.
        return match sock.lock().tcp {
            Tcp::Closed => Ok(0),
            _ => error!(EOPNOTSUPP),
        };
    };
    {
        let mut s = sock.lock();
        if std::mem::take(&mut s.in_progress) {
            match s.tcp {
                Tcp::Connected => return Ok(0),
                Tcp::Connecting => {
                    s.in_progress = true;
                    return error!(EALREADY);
                }
                _ => {
                    if let Some(e) = s.error.take() {
                        return Err(e);
                    }
                }
            }
        }
        match s.tcp {
            Tcp::Listen { .. } | Tcp::Connected => return error!(EISCONN),
            Tcp::Connecting => return error!(EALREADY),
            Tcp::Closed if s.was_connected => return error!(EISCONN),
            Tcp::Closed => {}
        }
    }
    let v6only = sock.lock().opts.v6only;
    let ip = route(sock, dst, v6only)?;
    let src = iface::source_for(ip).ok_or(Errno::ENETUNREACH)?;
    // Bind an ephemeral port (or take the source address for a wildcard).
    let local = sock.lock().local;
    match local {
        None => bind_port(sock, sock.in_family(src, 0))?,
        Some(l) if l.ip().is_unspecified() => {
            sock.lock().local = Some(sock.in_family(src, l.port()));
        }
        Some(_) => {}
    }
    let remote = sock.in_family(ip, dst.port());
    sock.lock().remote = Some(remote);
    let nonblock = f.nonblocking();
    super::snmp::bump(sock.net, |c| c.tcp_active_opens += 1);
    if !iface::is_local(ip) && eth::routes(ip) {
        let local = sock.lock().local.ok_or(Errno::EINVAL)?;
        return eth::connect(ctx.task, sock, local, remote, nonblock);
    }
    if !iface::is_local(ip) {
        return connect_nat(ctx, sock, ip, dst.port(), nonblock);
    }
    let Some(listener) = find_listener(dst.port(), ip, sock) else {
        sock.lock().remote = None;
        super::snmp::bump(sock.net, |c| c.tcp_attempt_fails += 1);
        if nonblock {
            {
                let mut s = sock.lock();
                s.error = Some(Errno::ECONNREFUSED);
                s.in_progress = true;
            }
            sock.waiters.wake_all();
            return error!(EINPROGRESS);
        }
        return error!(ECONNREFUSED);
    };
    // Room in the accept queue: connected now. Otherwise wait in the
    // listener's pending list, as a connector whose SYN is unanswered.
    // Connecting until established (set before the listener can see us:
    // two sockets' locks are never held at once).
    sock.lock().tcp = Tcp::Connecting;
    let room = {
        let mut l = listener.lock();
        match &mut l.tcp {
            Tcp::Listen {
                backlog,
                queue,
                pending,
            } => {
                if queue.len() <= *backlog && pending.is_empty() {
                    Some(true)
                } else if pending.len() < MAX_PENDING {
                    pending.push_back(sock.clone());
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    };
    match room {
        None => {
            let mut s = sock.lock();
            s.remote = None;
            s.tcp = Tcp::Closed;
            drop(s);
            return if nonblock {
                error!(EAGAIN)
            } else {
                error!(ECONNREFUSED)
            };
        }
        Some(true) => {
            if !establish(&listener, sock) {
                sock.lock().error = None;
                return error!(ECONNREFUSED);
            }
            if nonblock {
                sock.lock().in_progress = true;
                return error!(EINPROGRESS);
            }
            return Ok(0);
        }
        Some(false) => {}
    }
    // The queue may have drained meanwhile.
    admit_pending(&listener);
    if nonblock {
        sock.lock().in_progress = true;
        return error!(EINPROGRESS);
    }
    let timeout = sock.lock().opts.sndtimeo;
    let deadline = timeout.map(|t| Instant::now() + t);
    match sock.waiters.wait(Some(ctx.task), deadline, || {
        !matches!(sock.lock().tcp, Tcp::Connecting)
    }) {
        Ok(()) => {}
        Err(Errno::ETIMEDOUT) => return error!(EINPROGRESS),
        Err(e) => return Err(e),
    }
    let mut s = sock.lock();
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    Ok(0)
}

/// eth0=user: a TCP connection leaving the machine becomes a host
/// connection the kernel makes (to the host's loopback for the gateway
/// 10.0.2.2), with a reader thread moving what the host sends into the
/// socket's queue. The connect is made at once, also for nonblocking
/// sockets (which then report EINPROGRESS and are writable).
fn connect_nat(
    ctx: &SyscallContext<'_>,
    sock: &Arc<InetSocket>,
    ip: IpAddr,
    port: u16,
    nonblock: bool,
) -> KResult<u64> {
    let IpAddr::V4(v4) = canonical(ip) else {
        return error!(ENETUNREACH);
    };
    let host_ip = if v4 == iface::NAT_GATEWAY {
        Ipv4Addr::LOCALHOST
    } else {
        v4
    };
    let to = SocketAddr::new(IpAddr::V4(host_ip), port);
    // The host connect runs in the connection's thread, so the guest's
    // wait is an ordinary socket wait (nonblocking, interruptible).
    sock.lock().tcp = Tcp::Connecting;
    let weak = Arc::downgrade(sock);
    let spawned = std::thread::Builder::new()
        .name("ruml-nat".into())
        .stack_size(NAT_STACK)
        .spawn(move || nat_connection(weak, to));
    if spawned.is_err() {
        let mut s = sock.lock();
        s.tcp = Tcp::Closed;
        s.remote = None;
        return error!(EAGAIN);
    }
    if nonblock {
        sock.lock().in_progress = true;
        return error!(EINPROGRESS);
    }
    let timeout = sock.lock().opts.sndtimeo;
    let deadline = timeout.map(|t| Instant::now() + t);
    match sock.waiters.wait(Some(ctx.task), deadline, || {
        !matches!(sock.lock().tcp, Tcp::Connecting)
    }) {
        Ok(()) => {}
        Err(Errno::ETIMEDOUT) => {
            sock.lock().in_progress = true;
            return error!(EINPROGRESS);
        }
        Err(e) => {
            // Restarted or not, the connect goes on (EALREADY next).
            sock.lock().in_progress = true;
            return Err(e);
        }
    }
    let mut s = sock.lock();
    if let Some(e) = s.error.take() {
        s.remote = None;
        return Err(e);
    }
    Ok(0)
}

/// One NAT connection's thread: the host connect (at most 20 s), then
/// the reader.
fn nat_connection(weak: Weak<InetSocket>, to: SocketAddr) {
    let r = HostTcp::connect(to, Duration::from_secs(20));
    let Some(sock) = weak.upgrade() else {
        return;
    };
    let conn = match r {
        Ok(c) => c,
        Err(e) => {
            let err = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Errno::ECONNREFUSED,
                std::io::ErrorKind::TimedOut => Errno::ETIMEDOUT,
                _ => Errno::EHOSTUNREACH,
            };
            {
                let mut s = sock.lock();
                if !s.closed {
                    s.error = Some(err);
                }
                s.tcp = Tcp::Closed;
            }
            sock.waiters.wake_all();
            return;
        }
    };
    let Ok(reader) = conn.try_clone() else {
        reset(&sock, Errno::ECONNRESET);
        return;
    };
    {
        let mut s = sock.lock();
        if s.closed {
            conn.shutdown_both();
            return;
        }
        s.host = Some(Arc::new(conn));
        s.tcp = Tcp::Connected;
        s.was_connected = true;
    }
    sock.waiters.wake_all();
    drop(sock);
    nat_reader(weak, reader);
}

/// Moves what the host sends into the socket's receive queue, within its
/// window, until the host or the guest ends the connection.
fn nat_reader(weak: Weak<InetSocket>, conn: HostTcp) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let r = conn.read(&mut buf);
        let Some(sock) = weak.upgrade() else {
            return;
        };
        let n = match r {
            Ok(0) => {
                sock.lock().fin = true;
                sock.waiters.wake_all();
                return;
            }
            Ok(n) => n,
            Err(_) => {
                reset(&sock, Errno::ECONNRESET);
                return;
            }
        };
        {
            let s = sock.lock();
            let mut s = sock
                .room
                .wait_while(s, |s| !s.closed && s.rx.len() >= window(&s.opts))
                .unwrap_or_else(|p| p.into_inner());
            if s.closed {
                return;
            }
            s.rx.extend(&buf[..n]);
            s.bytes_received += n as u64;
            s.last_recv = Some(Instant::now());
            QUEUED.fetch_add(n, Ordering::Relaxed);
        }
        iface::count_lo(0);
        sock.waiters.wake_all();
    }
}

/// Sends over a NAT connection: blocking writes to the host.
fn send_host(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    host: &HostTcp,
) -> KResult<usize> {
    {
        let mut s = sock.lock();
        if let Some(e) = s.error.take() {
            return Err(if e == Errno::EPIPE {
                sigpipe(task, flags)
            } else {
                e
            });
        }
        if s.shut_wr || s.broken {
            drop(s);
            return Err(sigpipe(task, flags));
        }
    }
    let mut done = 0;
    let mut chunk = vec![0u8; total.min(1 << 16)];
    while done < total {
        let n = (total - done).min(chunk.len());
        if let Err(e) = fill(done, &mut chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let r = host.write_all(&chunk[..n]);
        if r.is_err() {
            sock.lock().broken = true;
            return if done > 0 {
                Ok(done)
            } else {
                Err(sigpipe(task, flags))
            };
        }
        note_sent(sock, n);
        done += n;
    }
    Ok(done)
}

/// TCP_INFO's send counters: `n` more bytes left this socket.
fn note_sent(sock: &InetSocket, n: usize) {
    let mut s = sock.lock();
    s.bytes_sent += n as u64;
    s.last_sent = Some(Instant::now());
}

/// One `hostfwd=` parameter: `tcp:` or `udp:`, the host address and the
/// guest's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFwd {
    pub udp: bool,
    pub host: SocketAddr,
    pub guest_port: u16,
}

/// Parses `tcp:[HOSTADDR:]HOSTPORT:GUESTPORT` or `udp:...` (HOSTADDR
/// defaults to 127.0.0.1; an IPv6 one in brackets).
pub fn parse_hostfwd(v: &str) -> Option<HostFwd> {
    let (udp, rest) = if let Some(r) = v.strip_prefix("tcp:") {
        (false, r)
    } else {
        (true, v.strip_prefix("udp:")?)
    };
    let (host, guest) = rest.rsplit_once(':')?;
    let guest_port: u16 = guest.parse().ok().filter(|&p| p != 0)?;
    let host = match host.rsplit_once(':') {
        Some((a, p)) => {
            let a = a.trim_start_matches('[').trim_end_matches(']');
            SocketAddr::new(a.parse().ok()?, p.parse().ok()?)
        }
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host.parse().ok()?),
    };
    Some(HostFwd {
        udp,
        host,
        guest_port,
    })
}

/// Starts a port forward (see [`add_hostfwd_tcp`] and
/// [`add_hostfwd_udp`]); returns the host address it listens on.
pub fn add_hostfwd(f: &HostFwd) -> Result<SocketAddr, String> {
    if f.udp {
        add_hostfwd_udp(f.host, f.guest_port)
    } else {
        add_hostfwd_tcp(f.host, f.guest_port)
    }
}

/// A UDP port forward: its host socket, the guest port it feeds, and the
/// host peers heard from lately (the guest's replies to them leave by
/// this socket, so that they come from the port the peer sent to).
struct UdpFwd {
    guest_port: u16,
    host: Arc<HostUdp>,
    peers: Mutex<std::collections::VecDeque<SocketAddr>>,
}

/// Peers remembered per UDP forward (the oldest is forgotten first).
const UDP_FWD_PEERS: usize = 256;

static UDP_FWDS: Mutex<Vec<Arc<UdpFwd>>> = Mutex::new(Vec::new());

/// `hostfwd=udp:[HOSTADDR:]HOSTPORT:GUESTPORT`: each datagram the host
/// socket receives goes to the guest socket bound on GUESTPORT (at
/// 10.0.2.15 or a wildcard), from 10.0.2.2 and the sender's port for a
/// sender on the host's loopback, else from the sender itself; nobody
/// bound, or a full queue: dropped, as a packet would be. Returns the host
/// address bound.
pub fn add_hostfwd_udp(host: SocketAddr, guest_port: u16) -> Result<SocketAddr, String> {
    let h = HostUdp::bind(host).map_err(|e| format!("hostfwd: cannot bind {host}/udp: {e}"))?;
    let at = h.local_addr().map_err(|e| e.to_string())?;
    let reader = h.try_clone().map_err(|e| format!("hostfwd: {e}"))?;
    let fwd = Arc::new(UdpFwd {
        guest_port,
        host: Arc::new(h),
        peers: Mutex::new(std::collections::VecDeque::new()),
    });
    let f2 = fwd.clone();
    std::thread::Builder::new()
        .name("ruml-hostfwd-udp".into())
        .stack_size(NAT_STACK)
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = reader.recv_from(&mut buf) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                {
                    let mut p = f2.peers.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(i) = p.iter().position(|&x| x == from) {
                        p.remove(i);
                    }
                    if p.len() >= UDP_FWD_PEERS {
                        p.pop_back();
                    }
                    p.push_front(from);
                }
                let src = nat_view(from);
                let dst = SocketAddr::new(IpAddr::V4(iface::NAT_GUEST), f2.guest_port);
                deliver_udp(src, dst, buf[..n].to_vec());
            }
        })
        .map_err(|e| format!("hostfwd: {e}"))?;
    UDP_FWDS.lock().unwrap_or_else(|p| p.into_inner()).push(fwd);
    Ok(at)
}

/// The forward a guest socket bound on `local_port` answers `to` through:
/// one on that port that heard from `to` (a loopback peer matches by port,
/// whichever loopback address it used); the address to send to.
fn udp_fwd_reply(local_port: u16, to: SocketAddr) -> Option<(Arc<HostUdp>, SocketAddr)> {
    let fwds = UDP_FWDS.lock().unwrap_or_else(|p| p.into_inner());
    for f in fwds.iter().filter(|f| f.guest_port == local_port) {
        let peers = f.peers.lock().unwrap_or_else(|p| p.into_inner());
        let hit = peers.iter().find(|&&p| {
            p == to || (p.ip().is_loopback() && to.ip().is_loopback() && p.port() == to.port())
        });
        if let Some(&p) = hit {
            return Some((f.host.clone(), p));
        }
    }
    None
}

/// `hostfwd=tcp:[HOSTADDR:]HOSTPORT:GUESTPORT`: listens on the host and
/// hands each connection to the guest's listener on GUESTPORT (at
/// 10.0.2.15 or a wildcard), coming from 10.0.2.2 as slirp's do. A
/// connection nobody listens for is closed. Returns the host address
/// listened on.
pub fn add_hostfwd_tcp(host: SocketAddr, guest_port: u16) -> Result<SocketAddr, String> {
    let l =
        HostListener::bind(host).map_err(|e| format!("hostfwd: cannot listen on {host}: {e}"))?;
    let at = l.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("ruml-hostfwd".into())
        .stack_size(NAT_STACK)
        .spawn(move || loop {
            let Ok((conn, _)) = l.accept() else {
                // Out of descriptors, say: try again a little later.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            forward_in(conn, guest_port);
        })
        .map_err(|e| format!("hostfwd: {e}"))?;
    Ok(at)
}

/// One forwarded connection: a connected socket carrying the host
/// connection, queued on the guest's listener.
fn forward_in(conn: HostTcp, guest_port: u16) {
    static NEXT_PORT: AtomicU64 = AtomicU64::new(0);
    let guest = IpAddr::V4(iface::NAT_GUEST);
    let Some(listener) = find_listener(guest_port, guest, &DUMMY) else {
        conn.shutdown_both();
        return;
    };
    let Ok(reader) = conn.try_clone() else {
        return;
    };
    let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u64 + 1;
    let from_port = EPHEMERAL.start() + (NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span) as u16;
    let server = InetSocket::accepted(&listener);
    {
        let opts = listener.lock().opts.clone();
        let mut s = server.lock();
        s.opts = opts;
        s.local = Some(in_family(listener.family, guest, guest_port));
        s.remote = Some(in_family(
            listener.family,
            IpAddr::V4(iface::NAT_GATEWAY),
            from_port,
        ));
        s.tcp = Tcp::Connected;
        s.was_connected = true;
        s.host = Some(Arc::new(conn));
    }
    let queued = {
        let mut l = listener.lock();
        match &mut l.tcp {
            Tcp::Listen { backlog, queue, .. } if queue.len() <= *backlog => {
                queue.push_back(server.clone());
                true
            }
            _ => false,
        }
    };
    if !queued {
        close(&server, true);
        return;
    }
    let weak = Arc::downgrade(&server);
    if std::thread::Builder::new()
        .name("ruml-nat".into())
        .stack_size(NAT_STACK)
        .spawn(move || nat_reader(weak, reader))
        .is_err()
    {
        reset(&server, Errno::ECONNRESET);
    }
    listener.waiters.wake_all();
}

/// A socket that is never bound: find_listener's "not me" for callers
/// that are not a socket.
static DUMMY: std::sync::LazyLock<InetSocket> = std::sync::LazyLock::new(|| InetSocket {
    family: AF_INET,
    typ: SOCK_STREAM,
    icmp: false,
    id: 0,
    net: 0,
    uid: 0,
    state: Mutex::new(State {
        closed: true,
        ..State::new()
    }),
    waiters: Waiters::new(),
    room: Condvar::new(),
});

/// eth0=user: a datagram leaving the machine goes out of the guest
/// socket's host UDP socket (10.0.2.2 is the host's loopback, 10.0.2.3:53
/// the host's resolver). Like a packet, it may be lost: errors drop it.
fn nat_send_udp(sock: &Arc<InetSocket>, ip: IpAddr, port: u16, data: &[u8]) {
    let IpAddr::V4(v4) = canonical(ip) else {
        return;
    };
    let to = if v4 == iface::NAT_GATEWAY {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else if v4 == iface::NAT_DNS {
        match iface::nat_dns() {
            Some(a) if port == 53 => a,
            _ => return,
        }
    } else {
        SocketAddr::new(IpAddr::V4(v4), port)
    };
    // A reply of a forwarded port's server leaves by the forward's socket.
    let local_port = sock.lock().local.map(|l| l.port());
    if let Some((h, to)) = local_port.and_then(|p| udp_fwd_reply(p, to)) {
        if h.send_to(data, to).is_ok() {
            iface::count_lo(0);
        }
        return;
    }
    let existing = sock.lock().host_udp.clone();
    let h = match existing {
        Some(h) => h,
        None => {
            let Ok(h) = HostUdp::bind_any() else {
                return;
            };
            let Ok(reader) = h.try_clone() else {
                return;
            };
            let h = Arc::new(h);
            sock.lock().host_udp = Some(h.clone());
            let weak = Arc::downgrade(sock);
            if std::thread::Builder::new()
                .name("ruml-nat-udp".into())
                .stack_size(NAT_STACK)
                .spawn(move || nat_udp_reader(weak, reader))
                .is_err()
            {
                sock.lock().host_udp = None;
                return;
            }
            h
        }
    };
    if h.send_to(data, to).is_ok() {
        iface::count_lo(0);
    }
}

/// A host peer as the guest sees it through the NAT: the host's loopback
/// is the gateway 10.0.2.2 (same port); others are themselves.
fn nat_view(from: SocketAddr) -> SocketAddr {
    if from.ip().is_loopback() {
        SocketAddr::new(IpAddr::V4(iface::NAT_GATEWAY), from.port())
    } else {
        from
    }
}

/// Queues the datagrams a NAT UDP socket receives on the guest socket,
/// their senders mapped back (host loopback → 10.0.2.2, the resolver →
/// 10.0.2.3:53), until the guest socket closes.
fn nat_udp_reader(weak: Weak<InetSocket>, h: HostUdp) {
    let mut buf = vec![0u8; 65536];
    let dns = iface::nat_dns();
    loop {
        let r = h.recv_from(&mut buf);
        let Some(sock) = weak.upgrade() else {
            return;
        };
        if sock.lock().closed {
            return;
        }
        let Ok((n, from)) = r else {
            continue;
        };
        let from = if Some(from) == dns {
            SocketAddr::new(IpAddr::V4(iface::NAT_DNS), 53)
        } else {
            nat_view(from)
        };
        let delivered = {
            let mut s = sock.lock();
            let wanted = s.remote.is_none_or(|r| {
                canonical(r.ip()) == canonical(from.ip()) && r.port() == from.port()
            });
            if !wanted || s.shut_rd || s.dgram_bytes + n > s.opts.rcvbuf {
                false
            } else {
                s.dgram_bytes += n;
                s.dgrams.push_back((
                    in_family(sock.family, from.ip(), from.port()),
                    buf[..n].to_vec(),
                    Meta::new(IpAddr::V4(iface::NAT_GUEST), ETH0_INDEX, 64, 0),
                ));
                true
            }
        };
        if delivered {
            super::snmp::bump(sock.net, |c| c.udp_in += 1);
        }
        if delivered {
            sock.waiters.wake_all();
        }
    }
}

fn connect_udp(sock: &Arc<InetSocket>, dst: Option<SocketAddr>) -> KResult<u64> {
    let Some(dst) = dst else {
        sock.lock().remote = None;
        return Ok(0);
    };
    let v6only = sock.lock().opts.v6only;
    let ip = route(sock, dst, v6only)?;
    let src = iface::source_for(ip).ok_or(Errno::ENETUNREACH)?;
    let local = sock.lock().local;
    match local {
        None => bind_port(sock, sock.in_family(src, 0))?,
        Some(l) if l.ip().is_unspecified() => {
            sock.lock().local = Some(sock.in_family(src, l.port()));
        }
        Some(_) => {}
    }
    let mut s = sock.lock();
    s.remote = Some(sock.in_family(ip, dst.port()));
    s.error = None;
    Ok(0)
}

pub fn accept(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    sock: &Arc<InetSocket>,
    addr: UserAddr,
    len: UserAddr,
    flags: i32,
) -> KResult<u64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return error!(EINVAL);
    }
    if !sock.tcp() {
        return error!(EOPNOTSUPP);
    }
    let mut got = None;
    let take = |got: &mut Option<Arc<InetSocket>>| -> KResult<bool> {
        let mut s = sock.lock();
        match &mut s.tcp {
            Tcp::Listen { queue, .. } => {
                *got = queue.pop_front();
                Ok(got.is_some())
            }
            _ => error!(EINVAL),
        }
    };
    if !take(&mut got)? {
        if f.nonblocking() {
            return error!(EAGAIN);
        }
        let timeout = sock.lock().opts.rcvtimeo;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut err = None;
        let r = sock
            .waiters
            .wait(Some(ctx.task), deadline, || match take(&mut got) {
                Ok(b) => b,
                Err(e) => {
                    err = Some(e);
                    true
                }
            });
        if let Some(e) = err {
            return Err(e);
        }
        match r {
            Err(Errno::ETIMEDOUT) => return error!(EAGAIN),
            r => r?,
        }
    }
    let Some(conn) = got else {
        return error!(EAGAIN);
    };
    admit_pending(sock);
    // Room in the queue: the switch backend may take more connections.
    eth::kick();
    let remote = conn.lock().remote;
    let nf = new_file(conn, flags & SOCK_NONBLOCK != 0);
    let nfd = ctx.files().alloc(nf, flags & SOCK_CLOEXEC != 0)?;
    super::write_sockaddr(ctx, addr, len, &sockaddr_bytes(sock.family, remote))?;
    Ok(nfd as u64)
}

pub fn getname(
    ctx: &SyscallContext<'_>,
    sock: &Arc<InetSocket>,
    addr: UserAddr,
    len: UserAddr,
    peer: bool,
) -> KResult<u64> {
    let a = {
        let s = sock.lock();
        if peer {
            let connected = match s.tcp {
                Tcp::Connected => true,
                Tcp::Closed => s.was_connected && !s.broken && s.remote.is_some() && sock.tcp(),
                _ => false,
            };
            if sock.tcp() && !connected {
                return error!(ENOTCONN);
            }
            if !sock.tcp() && s.remote.is_none() {
                return error!(ENOTCONN);
            }
            s.remote
        } else {
            s.local
        }
    };
    super::write_sockaddr(ctx, addr, len, &sockaddr_bytes(sock.family, a))?;
    Ok(0)
}

pub fn shutdown(sock: &Arc<InetSocket>, how: i32) -> KResult<u64> {
    if !(0..=2).contains(&how) {
        return error!(EINVAL);
    }
    let mut wire = None;
    let peer = {
        let mut s = sock.lock();
        let connected = match s.tcp {
            Tcp::Connected => true,
            Tcp::Listen { .. } => {
                // Linux stops a listener on SHUT_RD: its queued
                // connections are reset, its waiting connectors refused.
                let (queued, pending) = if how != 1 {
                    close_listener(&mut s)
                } else {
                    (Vec::new(), Vec::new())
                };
                drop(s);
                for c in queued {
                    close(&c, true);
                }
                for c in pending {
                    reset(&c, Errno::ECONNREFUSED);
                }
                sock.waiters.wake_all();
                return Ok(0);
            }
            _ => !sock.tcp() && s.remote.is_some(),
        };
        if !connected {
            return error!(ENOTCONN);
        }
        if how != 1 {
            s.shut_rd = true;
        }
        if how != 0 {
            s.shut_wr = true;
        }
        if how != 0 {
            if let Some(h) = &s.host {
                h.shutdown_write();
            }
            wire = s.eth;
        }
        s.peer.as_ref().and_then(|w| w.upgrade())
    };
    // Outside the socket's lock (the eth lock comes first).
    if let Some(h) = wire {
        eth::close(h, false, true);
    }
    if how != 0 {
        if let Some(p) = peer {
            p.lock().fin = true;
            p.waiters.wake_all();
        }
    }
    sock.waiters.wake_all();
    Ok(0)
}

/// Stops a listener: its queued connections are reset, its waiting
/// connectors refused. Returns them to be told outside the lock.
fn close_listener(s: &mut State) -> (Vec<Arc<InetSocket>>, Vec<Arc<InetSocket>>) {
    match std::mem::replace(&mut s.tcp, Tcp::Closed) {
        Tcp::Listen { queue, pending, .. } => (queue.into(), pending.into()),
        other => {
            s.tcp = other;
            (Vec::new(), Vec::new())
        }
    }
}

/// The last descriptor of `sock` closed.
fn release(sock: &Arc<InetSocket>) {
    close(sock, false)
}

/// Closes `sock`: a FIN to its peer, or a reset when `rst`, when data is
/// left unread, or with SO_LINGER {1, 0}. A listener's queued connections
/// are reset (as Linux's listen_stop does) and its waiting connectors
/// refused.
fn close(sock: &Arc<InetSocket>, rst: bool) {
    let wire;
    let (queued, pending, peer, rst) = {
        let mut s = sock.lock();
        s.closed = true;
        let (q, p) = close_listener(&mut s);
        let rst = rst || !s.rx.is_empty() || s.opts.linger == Some(0);
        let peer = s.peer.take().and_then(|w| w.upgrade());
        if let Some(h) = s.host.take() {
            h.shutdown_both();
        }
        if let Some(h) = s.host_udp.take() {
            h.wake();
        }
        wire = s.eth.take();
        s.tcp = Tcp::Closed;
        QUEUED.fetch_sub(s.rx.len(), Ordering::Relaxed);
        s.rx.clear();
        s.dgrams.clear();
        s.dgram_bytes = 0;
        (q, p, peer, rst)
    };
    sock.room.notify_all();
    if let Some(h) = wire {
        eth::close(h, rst, false);
    }
    unbind(sock);
    for c in queued {
        close(&c, true);
    }
    for c in pending {
        reset(&c, Errno::ECONNREFUSED);
    }
    if let Some(p) = peer {
        if rst {
            reset(&p, Errno::ECONNRESET);
        } else {
            p.lock().fin = true;
            p.waiters.wake_all();
        }
    }
    sock.waiters.wake_all();
}

// ---------------------------------------------------------------------------
// data

fn sigpipe(task: Option<&Arc<Task>>, flags: i32) -> Errno {
    if flags & MSG_NOSIGNAL == 0 {
        if let Some(t) = task {
            crate::signal::send_sigpipe(t);
        }
    }
    Errno::EPIPE
}

fn wait_for(
    sock: &InetSocket,
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

/// Where sent bytes come from: `fill(offset, buf)` copies the request's
/// bytes from `offset` into `buf`.
type Fill<'a> = dyn FnMut(usize, &mut [u8]) -> KResult<()> + 'a;
/// Where received bytes go: `sink(offset, bytes)`.
type Sink<'a> = dyn FnMut(usize, &[u8]) -> KResult<()> + 'a;

fn send_core(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    to: Option<SocketAddr>,
) -> KResult<usize> {
    if sock.tcp() {
        send_tcp(sock, task, flags, total, fill)
    } else if sock.typ == super::SOCK_RAW {
        raw::send(sock, flags, total, fill, to)
    } else if sock.icmp {
        send_ping(sock, flags, total, fill, to)
    } else {
        let sent = send_udp(sock, task, flags, total, fill, to);
        if sent.is_ok() {
            super::snmp::bump(sock.net, |c| c.udp_out += 1);
        }
        sent
    }
}

/// The Internet checksum of `b` added to `sum`.
fn csum(mut sum: u32, b: &[u8]) -> u16 {
    for c in b.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request on a ping socket. Every reachable address is this
/// machine's, which answers at once: the reply (identifier = the socket's
/// port, checksum filled in) goes on the socket's own queue.
fn send_ping(
    sock: &Arc<InetSocket>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    to: Option<SocketAddr>,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return error!(EOPNOTSUPP);
    }
    let (remote, v6only, err) = {
        let mut s = sock.lock();
        (s.remote, s.opts.v6only, s.error.take())
    };
    if let Some(e) = err {
        return Err(e);
    }
    let Some(dst) = to.or(remote) else {
        return error!(EDESTADDRREQ);
    };
    let max = if sock.family == AF_INET {
        UDP_MAX_V4
    } else {
        UDP_MAX_V6
    };
    if total > max {
        return error!(EMSGSIZE);
    }
    if total < 8 {
        return error!(EINVAL);
    }
    let mut msg = vec![0u8; total];
    fill(0, &mut msg)?;
    let (request, reply) = if sock.family == AF_INET {
        (8, 0)
    } else {
        (128, 129)
    };
    if msg[0] != request || msg[1] != 0 {
        return error!(EINVAL);
    }
    let ip = route(sock, dst, v6only)?;
    autobind(sock)?;
    let ident = sock.lock().local.map(|l| l.port()).unwrap_or(0);
    if !iface::is_local(ip) && eth::routes(ip) {
        // To a neighbour on eth0's switch: the request goes on the wire.
        let src = iface::source_for(ip).ok_or(Errno::ENETUNREACH)?;
        msg[2..4].copy_from_slice(&[0, 0]);
        msg[4..6].copy_from_slice(&ident.to_be_bytes());
        let sum = csum(0, &msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        eth::send_echo(src, ip, &msg)?;
        return Ok(total);
    }
    // Raw sockets see the request as it arrives.
    let mut req = msg.clone();
    req[4..6].copy_from_slice(&ident.to_be_bytes());
    raw::seen_request(ip, &mut req);
    msg[0] = reply;
    msg[2..4].copy_from_slice(&[0, 0]);
    msg[4..6].copy_from_slice(&ident.to_be_bytes());
    let sum = match ip {
        IpAddr::V4(_) => csum(0, &msg),
        IpAddr::V6(v6) => {
            // The pseudo-header: source, destination (both `ip`), length,
            // next header.
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&v6.octets());
            pseudo.extend_from_slice(&v6.octets());
            pseudo.extend_from_slice(&(total as u32).to_be_bytes());
            pseudo.extend_from_slice(&(IPPROTO_ICMPV6 as u32).to_be_bytes());
            let mut sum = 0u32;
            for c in pseudo.chunks(2) {
                sum += u16::from_be_bytes([c[0], c[1]]) as u32;
            }
            csum(sum, &msg)
        }
    };
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    raw::deliver(ip, ip, &msg, 64, 0);
    let queued = {
        let mut s = sock.lock();
        if s.closed || s.shut_rd || s.dgram_bytes + total > s.opts.rcvbuf {
            false
        } else {
            s.dgram_bytes += total;
            s.dgrams
                .push_back((sock.in_family(ip, 0), msg, Meta::new(ip, LO_INDEX, 64, 0)));
            true
        }
    };
    if ip.is_ipv4() {
        super::snmp::bump(sock.net, |c| c.icmp_echos += 1);
    }
    if queued {
        iface::count_lo(2 * total);
        sock.waiters.wake_all();
    }
    Ok(total)
}

fn send_tcp(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return error!(EOPNOTSUPP);
    }
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeout = sock.lock().opts.sndtimeo;
    // Wait out a connect in progress.
    wait_for(sock, task, nonblock, timeout, || {
        !matches!(sock.lock().tcp, Tcp::Connecting)
    })?;
    let host = sock.lock().host.clone();
    if let Some(h) = host {
        return send_host(sock, task, flags, total, fill, &h);
    }
    let wire = sock.lock().eth;
    if let Some(h) = wire {
        return send_eth(sock, task, flags, total, fill, h);
    }
    let mut done = 0usize;
    loop {
        let (peer, err) = {
            let mut s = sock.lock();
            if let Some(e) = s.error.take() {
                (None, Some(e))
            } else if s.shut_wr || s.broken || !matches!(s.tcp, Tcp::Connected) {
                (None, Some(Errno::EPIPE))
            } else {
                (s.peer.as_ref().and_then(|w| w.upgrade()), None)
            }
        };
        if let Some(e) = err {
            if done > 0 {
                return Ok(done);
            }
            return Err(if e == Errno::EPIPE {
                sigpipe(task, flags)
            } else {
                e
            });
        }
        let peer_gone = match &peer {
            None => true,
            Some(p) => {
                let ps = p.lock();
                ps.closed
            }
        };
        if peer_gone {
            // Data to a closed peer draws a reset: this write "succeeds",
            // the next one sees EPIPE.
            let mut s = sock.lock();
            s.error = Some(Errno::EPIPE);
            s.broken = true;
            s.fin = true;
            drop(s);
            sock.waiters.wake_all();
            return Ok(if done > 0 { done } else { total });
        }
        if done == total {
            return Ok(done);
        }
        let Some(peer) = peer else {
            return Ok(done);
        };
        // Wait for room in the peer's receive buffer.
        let r = wait_for(sock, task, nonblock, timeout, || {
            let room = {
                let ps = peer.lock();
                ps.closed || ps.rx.len() < window(&ps.opts)
            };
            let s = sock.lock();
            room || s.error.is_some() || s.broken || s.shut_wr
        });
        if let Err(e) = r {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let room = {
            let ps = peer.lock();
            if ps.closed {
                continue;
            }
            window(&ps.opts).saturating_sub(ps.rx.len())
        };
        if room == 0 {
            continue;
        }
        let n = room.min(total - done).min(1 << 20);
        let mut chunk = vec![0u8; n];
        if let Err(e) = fill(done, &mut chunk) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        {
            let mut ps = peer.lock();
            if ps.closed {
                continue;
            }
            ps.rx.extend(chunk.iter());
            ps.bytes_received += n as u64;
            ps.last_recv = Some(Instant::now());
            QUEUED.fetch_add(n, Ordering::Relaxed);
        }
        iface::count_lo(n);
        peer.waiters.wake_all();
        note_sent(sock, n);
        done += n;
    }
}

fn send_udp(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    to: Option<SocketAddr>,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return error!(EOPNOTSUPP);
    }
    let (remote, v6only, err, shut) = {
        let mut s = sock.lock();
        (s.remote, s.opts.v6only, s.error.take(), s.shut_wr)
    };
    if let Some(e) = err {
        return Err(e);
    }
    if shut {
        return Err(sigpipe(task, flags));
    }
    let Some(dst) = to.or(remote) else {
        return error!(EDESTADDRREQ);
    };
    let max = if sock.family == AF_INET {
        UDP_MAX_V4
    } else {
        UDP_MAX_V6
    };
    if total > max {
        return error!(EMSGSIZE);
    }
    if canonical(dst.ip()).is_multicast() {
        return send_mcast(sock, dst, v6only, total, fill);
    }
    let ip = route(sock, dst, v6only)?;
    autobind(sock)?;
    let mut data = vec![0u8; total];
    fill(0, &mut data)?;
    let (local, meta) = {
        let s = sock.lock();
        let ttl = if s.opts.ttl == -1 {
            64
        } else {
            s.opts.ttl as u8
        };
        let tos = if ip.is_ipv4() {
            s.opts.tos
        } else {
            s.opts.tclass
        };
        (s.local, Meta::new(ip, LO_INDEX, ttl, tos as u8))
    };
    let local = local.ok_or(Errno::EINVAL)?;
    let src_ip = if local.ip().is_unspecified() {
        iface::source_for(ip).ok_or(Errno::ENETUNREACH)?
    } else {
        canonical(local.ip())
    };
    let src = SocketAddr::new(src_ip, local.port());
    if !iface::is_local(ip) && eth::routes(ip) {
        eth::send_udp(src, SocketAddr::new(ip, dst.port()), &data)?;
        return Ok(total);
    }
    if !iface::is_local(ip) {
        nat_send_udp(sock, ip, dst.port(), &data);
        return Ok(total);
    }
    // The receiver: a socket bound to the destination port that accepts
    // the address (and, if connected, this source); exact before wildcard.
    // Among SO_REUSEPORT siblings of the best class, the source port
    // picks one (so a flow keeps going to the same socket).
    let target = {
        let mut t = ports();
        let mut cands: Vec<(bool, Arc<InetSocket>)> = Vec::new();
        for (s, b) in bindings_on(&mut t, IPPROTO_UDP, dst.port(), sock)
            .into_iter()
            .chain(self_binding(sock, dst.port()))
        {
            if !b.accepts(ip) {
                continue;
            }
            if let Some(r) = b.connected_to {
                if canonical(r.ip()) != src_ip || r.port() != src.port() {
                    continue;
                }
            }
            cands.push((!b.wildcard(), s));
        }
        let exact = cands.iter().any(|c| c.0);
        let best: Vec<Arc<InetSocket>> = cands
            .into_iter()
            .filter(|c| c.0 == exact)
            .map(|c| c.1)
            .collect();
        if best.is_empty() {
            None
        } else {
            let k = (src.port() as usize).wrapping_mul(31) % best.len();
            best.into_iter().nth(k)
        }
    };
    match target {
        None => {
            super::snmp::bump(sock.net, |c| c.udp_no_ports += 1);
            // ICMP port unreachable: reported to a connected sender.
            if remote.is_some() && to.is_none() {
                sock.lock().error = Some(Errno::ECONNREFUSED);
                sock.waiters.wake_all();
            }
        }
        Some(r) => {
            let delivered = {
                let mut rs = r.lock();
                if rs.closed || rs.shut_rd || rs.dgram_bytes + total > rs.opts.rcvbuf {
                    false
                } else {
                    rs.dgram_bytes += total;
                    rs.dgrams
                        .push_back((in_family(r.family, src.ip(), src.port()), data, meta));
                    true
                }
            };
            super::snmp::bump(r.net, |c| {
                if delivered {
                    c.udp_in += 1;
                } else {
                    c.udp_rcvbuf_errors += 1;
                }
            });
            if delivered {
                iface::count_lo(total);
                r.waiters.wake_all();
            }
        }
    }
    Ok(total)
}

/// A datagram to a multicast group (see [`super::mcast`]): out of the
/// socket's multicast interface; copies to this machine's sockets on the
/// port when that interface is lo or the sender loops; nothing on eth0's
/// wire.
fn send_mcast(
    sock: &Arc<InetSocket>,
    dst: SocketAddr,
    v6only: bool,
    total: usize,
    fill: &mut Fill<'_>,
) -> KResult<usize> {
    let group = canonical(dst.ip());
    if sock.family == AF_INET6 && v6only && group.is_ipv4() {
        return error!(ENETUNREACH);
    }
    let scope = match dst {
        SocketAddr::V6(a) => a.scope_id(),
        SocketAddr::V4(_) => 0,
    };
    let (mc, tos) = {
        let s = sock.lock();
        let tos = if group.is_ipv4() {
            s.opts.tos
        } else {
            s.opts.tclass
        };
        (s.opts.mc.clone(), tos)
    };
    let (ix, local_copy, ttl) = super::mcast::route(&mc, group, scope)?;
    autobind(sock)?;
    let mut data = vec![0u8; total];
    fill(0, &mut data)?;
    let local = sock.lock().local.ok_or(Errno::EINVAL)?;
    let src_ip = if !local.ip().is_unspecified() && !canonical(local.ip()).is_multicast() {
        canonical(local.ip())
    } else if group.is_ipv4() && !mc.if_addr.is_unspecified() {
        IpAddr::V4(mc.if_addr)
    } else {
        let t = iface::ifaces();
        let first = t
            .iter()
            .find(|i| i.index == ix)
            .and_then(|i| i.addrs.iter().find(|a| a.addr.is_ipv4() == group.is_ipv4()))
            .map(|a| a.addr);
        drop(t);
        first.unwrap_or(if group.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        })
    };
    if !local_copy {
        // Out on eth0's wire, which carries no multicast.
        return Ok(total);
    }
    let cands: Vec<Arc<InetSocket>> = {
        let mut t = ports();
        bindings_on(&mut t, IPPROTO_UDP, dst.port(), sock)
            .into_iter()
            .chain(self_binding(sock, dst.port()))
            .filter(|(_, b)| b.accepts(group))
            .filter(|(_, b)| {
                b.connected_to
                    .is_none_or(|r| canonical(r.ip()) == src_ip && r.port() == local.port())
            })
            .map(|(s, _)| s)
            .collect()
    };
    let opts: Vec<super::mcast::McOpts> = cands.iter().map(|c| c.lock().opts.mc.clone()).collect();
    if !super::mcast::joined(opts.iter().flat_map(|o| o.groups.iter()), group, ix) {
        return Ok(total);
    }
    let meta = Meta::new(group, ix, ttl, tos as u8);
    for (r, o) in cands.iter().zip(&opts) {
        if !super::mcast::allows(o, group, ix) {
            continue;
        }
        let delivered = {
            let mut rs = r.lock();
            if rs.closed || rs.shut_rd || rs.dgram_bytes + total > rs.opts.rcvbuf {
                false
            } else {
                rs.dgram_bytes += total;
                rs.dgrams.push_back((
                    in_family(r.family, src_ip, local.port()),
                    data.clone(),
                    meta,
                ));
                true
            }
        };
        if delivered {
            r.waiters.wake_all();
        }
    }
    iface::count_lo(total);
    Ok(total)
}

/// `sock`'s own binding on `port` (a socket may send to itself).
fn self_binding(sock: &Arc<InetSocket>, port: u16) -> Option<(Arc<InetSocket>, Binding)> {
    let s = sock.lock();
    if s.local.map(|l| l.port()) != Some(port) {
        return None;
    }
    Binding::of(sock, &s).map(|b| (sock.clone(), b))
}

struct Got {
    copied: usize,
    full: usize,
    from: Option<SocketAddr>,
    flags: i32,
    /// A datagram's metadata, for control messages.
    meta: Option<Meta>,
}

fn recv_core(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    room: usize,
    sink: &mut Sink<'_>,
) -> KResult<Got> {
    // Nothing ever lands on the error queue (no ICMP errors are queued).
    if flags & MSG_ERRQUEUE != 0 {
        return error!(EAGAIN);
    }
    if sock.tcp() {
        recv_tcp(sock, task, flags, room, sink)
    } else {
        recv_udp(sock, task, flags, room, sink)
    }
}

fn recv_tcp(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    room: usize,
    sink: &mut Sink<'_>,
) -> KResult<Got> {
    if flags & MSG_OOB != 0 {
        return error!(EINVAL);
    }
    {
        let s = sock.lock();
        match s.tcp {
            Tcp::Listen { .. } => return error!(ENOTCONN),
            Tcp::Closed if !s.was_connected && s.error.is_none() => return error!(ENOTCONN),
            _ => {}
        }
    }
    // Nothing asked for: nothing to wait for (as Linux's tcp_recvmsg).
    if room == 0 {
        return Ok(Got {
            copied: 0,
            full: 0,
            from: None,
            flags: 0,
            meta: None,
        });
    }
    let nonblock = flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let waitall = flags & MSG_WAITALL != 0 && !peek;
    let timeout = sock.lock().opts.rcvtimeo;
    let mut done = 0usize;
    loop {
        let r = wait_for(sock, task, nonblock, timeout, || {
            let s = sock.lock();
            !s.rx.is_empty()
                || s.fin
                || s.shut_rd
                || s.error.is_some()
                || matches!(s.tcp, Tcp::Closed)
        });
        if let Err(e) = r {
            return if done > 0 {
                Ok(Got {
                    copied: done,
                    full: done,
                    from: None,
                    flags: 0,
                    meta: None,
                })
            } else {
                Err(e)
            };
        }
        let chunk: Vec<u8> = {
            let mut s = sock.lock();
            if s.rx.is_empty() {
                if done == 0 {
                    if let Some(e) = s.error.take() {
                        return Err(e);
                    }
                }
                return Ok(Got {
                    copied: done,
                    full: done,
                    from: None,
                    flags: 0,
                    meta: None,
                });
            }
            let n = (room - done).min(s.rx.len());
            let mut v = Vec::with_capacity(n);
            let (a, b) = s.rx.as_slices();
            let k = n.min(a.len());
            v.extend_from_slice(&a[..k]);
            v.extend_from_slice(&b[..n - k]);
            if !peek {
                s.rx.drain(..n);
                QUEUED.fetch_sub(n, Ordering::Relaxed);
                sock.room.notify_all();
                if s.eth.is_some() {
                    // Room in the window: the poll thread moves more in.
                    eth::kick();
                }
            }
            v
        };
        let n = chunk.len();
        if !peek {
            if let Some(p) = sock.peer() {
                p.waiters.wake_all();
            }
        }
        if flags & MSG_TRUNC == 0 {
            sink(done, &chunk)?;
        }
        done += n;
        if !waitall || done >= room || n == 0 {
            return Ok(Got {
                copied: done,
                full: done,
                from: None,
                flags: 0,
                meta: None,
            });
        }
    }
}

fn recv_udp(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    room: usize,
    sink: &mut Sink<'_>,
) -> KResult<Got> {
    if flags & MSG_OOB != 0 {
        return error!(EINVAL);
    }
    let nonblock = flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let timeout = sock.lock().opts.rcvtimeo;
    wait_for(sock, task, nonblock, timeout, || {
        let s = sock.lock();
        !s.dgrams.is_empty() || s.error.is_some() || s.shut_rd
    })?;
    let (from, data, meta) = {
        let mut s = sock.lock();
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let m = if peek {
            s.dgrams.front().cloned()
        } else {
            s.dgrams.pop_front()
        };
        let Some(m) = m else {
            // Shut down for reading.
            return Ok(Got {
                copied: 0,
                full: 0,
                from: None,
                flags: 0,
                meta: None,
            });
        };
        if !peek {
            s.dgram_bytes -= m.1.len();
        }
        m
    };
    let n = room.min(data.len());
    sink(0, &data[..n])?;
    Ok(Got {
        copied: n,
        full: data.len(),
        from: Some(from),
        flags: if n < data.len() { MSG_TRUNC } else { 0 },
        meta: Some(meta),
    })
}

/// sendto/sendmsg on an inet socket.
pub fn send(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    sock: &Arc<InetSocket>,
    req: &SendReq<'_>,
) -> KResult<u64> {
    let to = match req.name {
        Some((a, l)) if !sock.tcp() => match read_sockaddr(ctx, sock.family, a, l)? {
            Some(a) => Some(a),
            None => return error!(EAFNOSUPPORT),
        },
        _ => None,
    };
    let total: usize = req
        .segs
        .iter()
        .map(|s| s.1)
        .fold(0usize, usize::saturating_add);
    let flags = req.flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    let mm = ctx.mm();
    let mut fill =
        |off: usize, buf: &mut [u8]| crate::fs::syscalls::gather(&mm, req.segs, off, buf);
    send_core(sock, Some(ctx.task), flags, total, &mut fill, to).map(|n| n as u64)
}

/// recvfrom/recvmsg on an inet socket.
pub fn recv(
    ctx: &SyscallContext<'_>,
    f: &FileRef,
    sock: &Arc<InetSocket>,
    req: &RecvReq<'_>,
) -> KResult<RecvOut> {
    let room: usize = req
        .segs
        .iter()
        .map(|s| s.1)
        .fold(0usize, usize::saturating_add);
    let flags = req.flags | if f.nonblocking() { MSG_DONTWAIT } else { 0 };
    let mm = ctx.mm();
    let mut sink = |off: usize, b: &[u8]| crate::fs::syscalls::scatter(&mm, req.segs, off, b);
    let g = recv_core(sock, Some(ctx.task), flags, room, &mut sink)?;
    let mut c = super::cmsg::Cmsgs::new(req.control);
    if let Some(m) = g.meta {
        recv_cmsgs(sock, &m, &mut c);
    }
    Ok(RecvOut {
        copied: g.copied,
        full: g.full,
        from: g.from.map(|a| sockaddr_bytes(sock.family, Some(a))),
        flags: g.flags | c.flags,
        control: c.bytes().to_vec(),
    })
}

/// The control messages a datagram receive gives, in Linux's order: the
/// timestamp (sock_recv_cmsgs), then IPV6_PKTINFO (an AF_INET6 socket),
/// then an IPv4 datagram's IP_PKTINFO, IP_TTL, IP_TOS or an IPv6 one's
/// IPV6_HOPLIMIT, IPV6_TCLASS.
fn recv_cmsgs(sock: &InetSocket, m: &Meta, c: &mut super::cmsg::Cmsgs) {
    let o = sock.lock().opts.clone();
    match o.timestamp {
        1 => {
            let mut v = m.stamp.0.to_le_bytes().to_vec();
            v.extend_from_slice(&((m.stamp.1 / 1000) as i64).to_le_bytes());
            c.put(SOL_SOCKET, SO_TIMESTAMP, &v);
        }
        2 => {
            let mut v = m.stamp.0.to_le_bytes().to_vec();
            v.extend_from_slice(&(m.stamp.1 as i64).to_le_bytes());
            c.put(SOL_SOCKET, SO_TIMESTAMPNS, &v);
        }
        _ => {}
    }
    if sock.family == AF_INET6 && o.recvpktinfo6 {
        let a = match m.dst {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut v = a.octets().to_vec();
        v.extend_from_slice(&m.ifindex.to_le_bytes());
        c.put(IPPROTO_IPV6, IPV6_PKTINFO, &v);
    }
    match m.dst {
        IpAddr::V4(dst) => {
            if o.pktinfo {
                // ipi_spec_dst: the local address a reply would come
                // from (the destination itself unless it is a group or
                // broadcast).
                let spec = if dst.is_multicast() || dst.is_broadcast() {
                    match iface::ifaces()
                        .iter()
                        .find(|i| i.index == m.ifindex)
                        .and_then(|i| i.addrs.iter().find(|a| a.addr.is_ipv4()))
                        .map(|a| a.addr)
                    {
                        Some(IpAddr::V4(a)) => a,
                        _ => Ipv4Addr::UNSPECIFIED,
                    }
                } else {
                    dst
                };
                let mut v = m.ifindex.to_le_bytes().to_vec();
                v.extend_from_slice(&spec.octets());
                v.extend_from_slice(&dst.octets());
                c.put(IPPROTO_IP, IP_PKTINFO, &v);
            }
            if o.recvttl {
                c.put(IPPROTO_IP, IP_TTL, &(m.ttl as i32).to_le_bytes());
            }
            if o.recvtos {
                c.put(IPPROTO_IP, IP_TOS, &[m.tos]);
            }
        }
        IpAddr::V6(_) => {
            if o.recvhoplimit {
                c.put(IPPROTO_IPV6, IPV6_HOPLIMIT, &(m.ttl as i32).to_le_bytes());
            }
            if o.recvtclass {
                c.put(IPPROTO_IPV6, IPV6_TCLASS, &(m.tos as i32).to_le_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// options

const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_DONTROUTE: i32 = 5;
const SO_BROADCAST: i32 = 6;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_OOBINLINE: i32 = 10;
const SO_PRIORITY: i32 = 12;
const SO_LINGER: i32 = 13;
const SO_REUSEPORT: i32 = 15;
const SO_RCVLOWAT: i32 = 18;
const SO_RCVTIMEO: i32 = 20;
const SO_SNDTIMEO: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;
const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_CORK: i32 = 3;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const IP_TOS: i32 = 1;
const IP_TTL: i32 = 2;
const IPV6_UNICAST_HOPS: i32 = 16;
const IPV6_V6ONLY: i32 = 26;
const TCP_INFO: i32 = 11;
const SO_TIMESTAMP: i32 = 29;
const SO_TIMESTAMPNS: i32 = 35;
const IP_PKTINFO: i32 = 8;
const IP_RECVERR: i32 = 11;
const IP_RECVTTL: i32 = 12;
const IP_RECVTOS: i32 = 13;
const IPV6_RECVERR: i32 = 25;
const IPV6_RECVPKTINFO: i32 = 49;
const IPV6_PKTINFO: i32 = 50;
const IPV6_RECVHOPLIMIT: i32 = 51;
const IPV6_HOPLIMIT: i32 = 52;
const IPV6_RECVTCLASS: i32 = 66;
const IPV6_TCLASS: i32 = 67;

pub fn setsockopt(
    ctx: &SyscallContext<'_>,
    sock: &Arc<InetSocket>,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> KResult<u64> {
    let int = || super::opt_int(ctx, val, len);
    if sock.typ == super::SOCK_RAW && (level == raw::SOL_RAW || level == IPPROTO_ICMPV6) {
        return raw::setsockopt(ctx, sock, level, name, val, len);
    }
    if level == IPPROTO_IP || (level == IPPROTO_IPV6 && sock.family == AF_INET6) {
        if let Some(r) = super::mcast::parse(ctx, sock.tcp(), level, name, val, len) {
            let r = r?;
            if sock.tcp() && matches!(r, super::mcast::Req::Join(_) | super::mcast::Req::Drop(..)) {
                return error!(EPROTO);
            }
            super::mcast::apply(&mut sock.lock().opts.mc, r)?;
            return Ok(0);
        }
    }
    match (level, name) {
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
            if (len as i32) < 16 {
                return error!(EINVAL);
            }
            let tv: [i64; 2] = ctx.mm().read_val(val.0)?;
            if !(0..1_000_000).contains(&tv[1]) {
                return error!(EDOM);
            }
            let d = (tv[0] > 0 || (tv[0] == 0 && tv[1] != 0))
                .then(|| Duration::new(tv[0] as u64, tv[1] as u32 * 1000));
            let mut s = sock.lock();
            if name == SO_RCVTIMEO {
                s.opts.rcvtimeo = d;
            } else {
                s.opts.sndtimeo = d;
            }
        }
        (SOL_SOCKET, SO_LINGER) => {
            if (len as i32) < 8 {
                return error!(EINVAL);
            }
            let l: [i32; 2] = ctx.mm().read_val(val.0)?;
            sock.lock().opts.linger = (l[0] != 0).then_some(l[1].max(0));
        }
        (SOL_SOCKET, _) => {
            let v = int()?;
            let mut s = sock.lock();
            let o = &mut s.opts;
            match name {
                SO_TIMESTAMP | SO_TIMESTAMPNS => {
                    o.timestamp = match (v != 0, name) {
                        (false, _) => 0,
                        (true, SO_TIMESTAMP) => 1,
                        _ => 2,
                    }
                }
                SO_REUSEADDR => o.reuseaddr = v != 0,
                SO_REUSEPORT => o.reuseport = v != 0,
                SO_KEEPALIVE => o.keepalive = v != 0,
                SO_BROADCAST => o.broadcast = v != 0,
                SO_OOBINLINE => o.oobinline = v != 0,
                SO_DONTROUTE => {}
                SO_PRIORITY => o.priority = v,
                SO_RCVLOWAT => o.rcvlowat = v.max(1),
                // Linux doubles the request for bookkeeping and reports that.
                SO_RCVBUF | SO_RCVBUFFORCE => {
                    o.rcvbuf = ((v.max(0) as usize).min(BUF_MAX / 2) * 2).max(BUF_MIN);
                    o.rcvbuf_locked = true;
                }
                SO_SNDBUF | SO_SNDBUFFORCE => {
                    o.sndbuf = ((v.max(0) as usize).min(BUF_MAX / 2) * 2).max(4608)
                }
                _ => return error!(ENOPROTOOPT),
            }
            drop(s);
            // A bigger receive buffer may let a blocked sender go on.
            if let Some(p) = sock.peer() {
                p.waiters.wake_all();
            }
        }
        (IPPROTO_TCP, _) if sock.tcp() => {
            let v = int()?;
            let mut s = sock.lock();
            let o = &mut s.opts;
            match name {
                TCP_NODELAY => o.nodelay = v != 0,
                TCP_CORK => o.cork = v != 0,
                TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT => {
                    let max = if name == TCP_KEEPCNT { 127 } else { 32767 };
                    if !(1..=max).contains(&v) {
                        return error!(EINVAL);
                    }
                    match name {
                        TCP_KEEPIDLE => o.keepidle = v,
                        TCP_KEEPINTVL => o.keepintvl = v,
                        _ => o.keepcnt = v,
                    }
                }
                TCP_MAXSEG => {
                    if v != 0 && !(88..=32767).contains(&v) {
                        return error!(EINVAL);
                    }
                    o.maxseg = if v == 0 { 536 } else { v };
                }
                _ => return error!(ENOPROTOOPT),
            }
        }
        (IPPROTO_IP, IP_PKTINFO | IP_RECVTTL | IP_RECVTOS | IP_RECVERR) => {
            let v = super::mcast::ip_int(ctx, val, len)? != 0;
            let mut s = sock.lock();
            let o = &mut s.opts;
            match name {
                IP_PKTINFO => o.pktinfo = v,
                IP_RECVTTL => o.recvttl = v,
                IP_RECVTOS => o.recvtos = v,
                _ => o.recverr = v,
            }
        }
        (IPPROTO_IP, IP_TTL) => {
            let v = super::mcast::ip_int(ctx, val, len)?;
            if v != -1 && !(1..=255).contains(&v) {
                return error!(EINVAL);
            }
            sock.lock().opts.ttl = v;
        }
        (IPPROTO_IP, IP_TOS) => {
            let v = super::mcast::ip_int(ctx, val, len)?;
            sock.lock().opts.tos = v & 0xff;
        }
        (IPPROTO_IPV6, _) if sock.family == AF_INET6 => {
            let v = int()?;
            match name {
                IPV6_V6ONLY => {
                    let mut s = sock.lock();
                    if s.local.is_some() {
                        return error!(EINVAL);
                    }
                    s.opts.v6only = v != 0;
                }
                IPV6_UNICAST_HOPS => {
                    if !(-1..=255).contains(&v) {
                        return error!(EINVAL);
                    }
                    sock.lock().opts.ttl = v;
                }
                IPV6_TCLASS => {
                    if !(-1..=255).contains(&v) {
                        return error!(EINVAL);
                    }
                    sock.lock().opts.tclass = v.max(0);
                }
                IPV6_RECVPKTINFO | IPV6_RECVHOPLIMIT | IPV6_RECVTCLASS | IPV6_RECVERR => {
                    let mut s = sock.lock();
                    let o = &mut s.opts;
                    let v = v != 0;
                    match name {
                        IPV6_RECVPKTINFO => o.recvpktinfo6 = v,
                        IPV6_RECVHOPLIMIT => o.recvhoplimit = v,
                        IPV6_RECVTCLASS => o.recvtclass = v,
                        _ => o.recverr6 = v,
                    }
                }
                _ => return error!(ENOPROTOOPT),
            }
        }
        _ => return error!(ENOPROTOOPT),
    }
    Ok(0)
}

/// Linux's TCP state number for a TCP socket (as TCP_INFO, /proc/net/tcp
/// and sock_diag give it): a connection whose peer finished is
/// CLOSE_WAIT, one that finished its own sending FIN_WAIT2 (the FIN is
/// acknowledged at once), both CLOSE (Linux hands the TIME_WAIT to a
/// mini-socket and marks the socket closed).
fn tcp_state(s: &State) -> u8 {
    match s.tcp {
        Tcp::Listen { .. } => 10,
        Tcp::Connecting => 2,
        Tcp::Closed => 7,
        Tcp::Connected if s.broken => 7,
        Tcp::Connected => match (s.fin, s.shut_wr) {
            (false, false) => 1,
            (true, false) => 8,
            (false, true) => 5,
            (true, true) => 7,
        },
    }
}

/// sizeof(struct tcp_info) as of Linux 6.2 (through tcpi_rehash).
const TCP_INFO_LEN: usize = 240;

/// getsockopt(TCP_INFO): the fields this transport has. A connection here
/// has no segments, congestion window, retransmissions or round trips to
/// measure (lo's delivery is a copy; eth0's smoltcp and eth0=user's host
/// socket keep theirs), so those fields are zero; filled in are the
/// state, the reordering setting, the MSS and path MTU of the route, the receive space and the
/// peer's window, the byte counters (in-kernel delivery is the
/// acknowledgement: bytes_acked counts the sent bytes and the SYN, as
/// Linux counts it) and the milliseconds since data last moved.
fn tcp_info(sock: &Arc<InetSocket>) -> Vec<u8> {
    let (state, was, wire, host, peer, received, sent, last_recv, last_sent, space) = {
        let s = sock.lock();
        (
            tcp_state(&s),
            s.was_connected,
            s.eth.is_some(),
            s.host.is_some(),
            s.peer.as_ref().and_then(|w| w.upgrade()),
            s.bytes_received,
            s.bytes_sent,
            s.last_recv,
            s.last_sent,
            window(&s.opts),
        )
    };
    let mut b = vec![0u8; TCP_INFO_LEN];
    let put32 =
        |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    b[0] = state;
    // tcpi_reordering: the initial reordering metric every Linux socket
    // starts with (net.ipv4.tcp_reordering), a setting, not a measurement.
    put32(&mut b, 88, 3);
    if was {
        let (mss, mtu) = if wire || host {
            (1460, 1500)
        } else {
            (65483, 65536)
        };
        put32(&mut b, 16, mss); // snd_mss
        put32(&mut b, 20, mss); // rcv_mss
        put32(&mut b, 60, mtu); // pmtu
        put32(&mut b, 84, mss); // advmss
        put32(&mut b, 96, space as u32); // rcv_space
        let ms = |t: Option<Instant>| {
            t.map(|t| t.elapsed().as_millis().min(u32::MAX as u128) as u32)
                .unwrap_or(0)
        };
        put32(&mut b, 44, ms(last_sent)); // last_data_sent
        put32(&mut b, 52, ms(last_recv)); // last_data_recv
        put64(&mut b, 112, u64::MAX); // max_pacing_rate: unlimited
        if !wire && !host {
            put64(&mut b, 120, sent + 1); // bytes_acked
        }
        put64(&mut b, 128, received); // bytes_received
        put64(&mut b, 200, sent); // bytes_sent
        if let Some(p) = peer {
            let ps = p.lock();
            let wnd = window(&ps.opts).saturating_sub(ps.rx.len());
            put32(&mut b, 228, wnd.min(u32::MAX as usize) as u32); // snd_wnd
        }
        put32(
            &mut b,
            232,
            space.saturating_sub(sock.lock().rx.len()) as u32,
        ); // rcv_wnd
    }
    b
}

fn int_bytes(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub fn getsockopt(sock: &Arc<InetSocket>, level: i32, name: i32) -> KResult<Vec<u8>> {
    if sock.tcp() && level == IPPROTO_TCP && name == TCP_INFO {
        return Ok(tcp_info(sock));
    }
    if sock.typ == super::SOCK_RAW {
        if let Some(r) = raw::getsockopt(sock, level, name) {
            return r;
        }
    }
    if !sock.tcp() && level == IPPROTO_TCP {
        // ip_getsockopt: not its level.
        return error!(EOPNOTSUPP);
    }
    let mut s = sock.lock();
    let o = &s.opts;
    if level == IPPROTO_IP || (level == IPPROTO_IPV6 && sock.family == AF_INET6) {
        if let Some(v) = super::mcast::get(&o.mc, level, name) {
            return Ok(v);
        }
    }
    let b = match (level, name) {
        (SOL_SOCKET, SO_TIMESTAMP) => int_bytes((o.timestamp == 1) as i32),
        (SOL_SOCKET, SO_TIMESTAMPNS) => int_bytes((o.timestamp == 2) as i32),
        (IPPROTO_IP, IP_PKTINFO) => int_bytes(o.pktinfo as i32),
        (IPPROTO_IP, IP_RECVTTL) => int_bytes(o.recvttl as i32),
        (IPPROTO_IP, IP_RECVTOS) => int_bytes(o.recvtos as i32),
        (IPPROTO_IP, IP_RECVERR) => int_bytes(o.recverr as i32),
        (IPPROTO_IPV6, IPV6_RECVPKTINFO) if sock.family == AF_INET6 => {
            int_bytes(o.recvpktinfo6 as i32)
        }
        (IPPROTO_IPV6, IPV6_RECVHOPLIMIT) if sock.family == AF_INET6 => {
            int_bytes(o.recvhoplimit as i32)
        }
        (IPPROTO_IPV6, IPV6_RECVTCLASS) if sock.family == AF_INET6 => {
            int_bytes(o.recvtclass as i32)
        }
        (IPPROTO_IPV6, IPV6_RECVERR) if sock.family == AF_INET6 => int_bytes(o.recverr6 as i32),
        (IPPROTO_IPV6, IPV6_TCLASS) if sock.family == AF_INET6 => int_bytes(o.tclass),
        (SOL_SOCKET, SO_TYPE) => int_bytes(sock.typ),
        (SOL_SOCKET, SO_DOMAIN) => int_bytes(sock.family),
        (SOL_SOCKET, SO_PROTOCOL) => int_bytes(sock.proto()),
        (SOL_SOCKET, SO_ERROR) => int_bytes(s.error.take().map(|e| e.as_i32()).unwrap_or(0)),
        (SOL_SOCKET, SO_REUSEADDR) => int_bytes(o.reuseaddr as i32),
        (SOL_SOCKET, SO_REUSEPORT) => int_bytes(o.reuseport as i32),
        (SOL_SOCKET, SO_KEEPALIVE) => int_bytes(o.keepalive as i32),
        (SOL_SOCKET, SO_BROADCAST) => int_bytes(o.broadcast as i32),
        (SOL_SOCKET, SO_OOBINLINE) => int_bytes(o.oobinline as i32),
        (SOL_SOCKET, SO_DONTROUTE) => int_bytes(0),
        (SOL_SOCKET, SO_PRIORITY) => int_bytes(o.priority),
        (SOL_SOCKET, SO_RCVLOWAT) => int_bytes(o.rcvlowat),
        (SOL_SOCKET, SO_RCVBUF) => int_bytes(o.rcvbuf as i32),
        (SOL_SOCKET, SO_SNDBUF) => int_bytes(o.sndbuf as i32),
        (SOL_SOCKET, SO_ACCEPTCONN) => int_bytes(matches!(s.tcp, Tcp::Listen { .. }) as i32),
        (SOL_SOCKET, SO_LINGER) => {
            let mut v = int_bytes(o.linger.is_some() as i32);
            v.extend_from_slice(&o.linger.unwrap_or(0).to_le_bytes());
            v
        }
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
            let d = if name == SO_RCVTIMEO {
                o.rcvtimeo
            } else {
                o.sndtimeo
            }
            .unwrap_or_default();
            let mut v = (d.as_secs() as i64).to_le_bytes().to_vec();
            v.extend_from_slice(&(d.subsec_micros() as i64).to_le_bytes());
            v
        }
        (IPPROTO_TCP, _) if sock.tcp() => match name {
            TCP_NODELAY => int_bytes(o.nodelay as i32),
            TCP_CORK => int_bytes(o.cork as i32),
            TCP_KEEPIDLE => int_bytes(o.keepidle),
            TCP_KEEPINTVL => int_bytes(o.keepintvl),
            TCP_KEEPCNT => int_bytes(o.keepcnt),
            TCP_MAXSEG => int_bytes(if matches!(s.tcp, Tcp::Connected) {
                65483
            } else {
                o.maxseg
            }),
            _ => return error!(ENOPROTOOPT),
        },
        (IPPROTO_IP, IP_TTL) => int_bytes(if o.ttl == -1 { 64 } else { o.ttl }),
        (IPPROTO_IP, IP_TOS) => int_bytes(o.tos),
        (IPPROTO_IPV6, IPV6_V6ONLY) if sock.family == AF_INET6 => int_bytes(o.v6only as i32),
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS) if sock.family == AF_INET6 => {
            int_bytes(if o.ttl == -1 { 64 } else { o.ttl })
        }
        _ => return error!(ENOPROTOOPT),
    };
    drop(s);
    Ok(b)
}

// ---------------------------------------------------------------------------
// the open file

/// The open-file face of an inet socket; its release closes the socket.
struct InetFile(Arc<InetSocket>);

impl Drop for InetFile {
    fn drop(&mut self) {
        release(&self.0);
    }
}

const SIOCOUTQ: u32 = 0x5411;
const SIOCATMARK: u32 = 0x8905;

impl FileOps for InetFile {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let flags = if f.nonblocking() { MSG_DONTWAIT } else { 0 };
        let room = buf.len();
        let mut sink = |off: usize, b: &[u8]| {
            buf[off..off + b.len()].copy_from_slice(b);
            Ok(())
        };
        recv_core(&self.0, task, flags, room, &mut sink).map(|g| g.copied)
    }
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let flags = if f.nonblocking() { MSG_DONTWAIT } else { 0 };
        let mut fill = |off: usize, b: &mut [u8]| {
            b.copy_from_slice(&buf[off..off + b.len()]);
            Ok(())
        };
        send_core(&self.0, task, flags, buf.len(), &mut fill, None)
    }
    fn write(&self, f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.write_as(f, off, buf, None)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        poll(&self.0)
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
    fn bytes_available(&self) -> Option<KResult<usize>> {
        let s = self.0.lock();
        Some(match &s.tcp {
            Tcp::Listen { .. } => Err(Errno::EINVAL),
            _ if self.0.tcp() => Ok(s.rx.len()),
            _ => Ok(s.dgrams.front().map(|d| d.1.len()).unwrap_or(0)),
        })
    }
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        match cmd {
            // Sent bytes are in the peer's queue at once: nothing unsent.
            SIOCOUTQ => {
                if matches!(self.0.lock().tcp, Tcp::Listen { .. }) {
                    return error!(EINVAL);
                }
                ctx.mm().write_val(arg, &0i32)?;
                Ok(0)
            }
            SIOCATMARK => {
                ctx.mm().write_val(arg, &0i32)?;
                Ok(0)
            }
            c if iface::is_if_ioctl(c) => iface::ioctl(ctx, c, arg),
            _ => error!(ENOTTY),
        }
    }
}

fn poll(sock: &Arc<InetSocket>) -> PollEvents {
    let s = sock.lock();
    let mut ev = 0;
    if s.error.is_some() {
        ev |= POLLERR;
    }
    if !sock.tcp() {
        if !s.dgrams.is_empty() || s.shut_rd {
            ev |= READABLE;
        }
        if !s.shut_wr {
            ev |= WRITABLE;
        }
        return ev;
    }
    match &s.tcp {
        Tcp::Listen { queue, .. } => {
            if !queue.is_empty() {
                ev |= READABLE;
            }
            return ev;
        }
        Tcp::Connecting => return ev,
        _ => {}
    }
    if !s.rx.is_empty() || s.fin || s.shut_rd {
        ev |= READABLE;
    }
    if s.fin || s.shut_rd {
        ev |= POLLRDHUP;
    }
    let closed = matches!(s.tcp, Tcp::Closed);
    if closed || (s.shut_wr && s.fin) || s.broken {
        ev |= POLLHUP;
    }
    if closed || s.broken {
        // Linux reports a closed socket writable (a write fails at once).
        if !s.shut_wr {
            ev |= WRITABLE;
        }
        return ev;
    }
    if s.eth.is_some() {
        if s.eth_room > 0 && !s.shut_wr {
            ev |= WRITABLE;
        }
        return ev;
    }
    let peer = s.peer.as_ref().and_then(|w| w.upgrade());
    drop(s);
    let writable = match peer {
        Some(p) => {
            let ps = p.lock();
            ps.closed || ps.rx.len() < window(&ps.opts)
        }
        None => true,
    };
    if writable && !sock.lock().shut_wr {
        ev |= WRITABLE;
    }
    ev
}

/// eth0=switch: a send on a connection carried by smoltcp. Copies into
/// its send buffer as room appears (the poll thread reports room through
/// `eth_room` and wakes the socket).
fn send_eth(
    sock: &Arc<InetSocket>,
    task: Option<&Arc<Task>>,
    flags: i32,
    total: usize,
    fill: &mut Fill<'_>,
    h: smoltcp::iface::SocketHandle,
) -> KResult<usize> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeout = sock.lock().opts.sndtimeo;
    let mut done = 0usize;
    let mut chunk = Vec::new();
    loop {
        let err = {
            let mut s = sock.lock();
            if let Some(e) = s.error.take() {
                Some(e)
            } else if s.shut_wr || s.broken || !matches!(s.tcp, Tcp::Connected) {
                Some(Errno::EPIPE)
            } else {
                None
            }
        };
        if let Some(e) = err {
            if done > 0 {
                return Ok(done);
            }
            return Err(if e == Errno::EPIPE {
                sigpipe(task, flags)
            } else {
                e
            });
        }
        if done == total {
            return Ok(done);
        }
        let r = wait_for(sock, task, nonblock, timeout, || {
            let s = sock.lock();
            s.eth_room > 0 || s.error.is_some() || s.broken || s.shut_wr || s.eth != Some(h)
        });
        if let Err(e) = r {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let room = sock.lock().eth_room;
        if room == 0 {
            continue;
        }
        let n = room.min(total - done).min(256 << 10);
        chunk.resize(n, 0);
        if let Err(e) = fill(done, &mut chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        match eth::send(sock, h, &chunk[..n]) {
            Ok(k) => {
                note_sent(sock, k);
                done += k
            }
            Err(e) => {
                sock.lock().broken = true;
                if done > 0 {
                    return Ok(done);
                }
                return Err(if e == Errno::EPIPE {
                    sigpipe(task, flags)
                } else {
                    e
                });
            }
        }
    }
}

/// eth0=switch: a datagram from the wire to the socket bound to its
/// destination (exact address before wildcard; a connected socket only
/// takes its peer's). Nobody there, or a full queue: dropped.
fn deliver_udp(src: SocketAddr, dst: SocketAddr, data: Vec<u8>) {
    let ip = canonical(dst.ip());
    let mut cands: Vec<(bool, Arc<InetSocket>)> = Vec::new();
    for (s, b) in eth::bound(IPPROTO_UDP, dst.port()) {
        if !b.accepts(ip) {
            continue;
        }
        if let Some(r) = b.connected_to {
            if canonical(r.ip()) != src.ip() || r.port() != src.port() {
                continue;
            }
        }
        cands.push((!b.wildcard(), s));
    }
    let exact = cands.iter().any(|c| c.0);
    let best: Vec<Arc<InetSocket>> = cands
        .into_iter()
        .filter(|c| c.0 == exact)
        .map(|c| c.1)
        .collect();
    if best.is_empty() {
        return;
    }
    let k = (src.port() as usize).wrapping_mul(31) % best.len();
    let Some(r) = best.into_iter().nth(k) else {
        return;
    };
    let total = data.len();
    let delivered = {
        let mut rs = r.lock();
        if rs.closed || rs.shut_rd || rs.dgram_bytes + total > rs.opts.rcvbuf {
            false
        } else {
            rs.dgram_bytes += total;
            rs.dgrams.push_back((
                in_family(r.family, src.ip(), src.port()),
                data,
                Meta::new(ip, ETH0_INDEX, 64, 0),
            ));
            true
        }
    };
    super::snmp::bump(r.net, |c| {
        if delivered {
            c.udp_in += 1;
        } else {
            c.udp_rcvbuf_errors += 1;
        }
    });
    if delivered {
        r.waiters.wake_all();
    }
}

/// eth0=switch: an echo reply from the wire to the ping socket whose port
/// is its identifier.
fn deliver_echo(from: Ipv4Addr, ident: u16, msg: Vec<u8>) {
    let total = msg.len();
    let to = iface::source_for(IpAddr::V4(from)).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    raw::deliver(IpAddr::V4(from), to, &msg, 64, 0);
    for (r, _) in eth::bound(IPPROTO_ICMP, ident) {
        if r.family != AF_INET {
            continue;
        }
        let delivered = {
            let mut rs = r.lock();
            if rs.closed || rs.shut_rd || rs.dgram_bytes + total > rs.opts.rcvbuf {
                false
            } else {
                rs.dgram_bytes += total;
                rs.dgrams.push_back((
                    in_family(r.family, IpAddr::V4(from), 0),
                    msg,
                    Meta::new(to, ETH0_INDEX, 64, 0),
                ));
                true
            }
        };
        if delivered {
            r.waiters.wake_all();
        }
        return;
    }
}

// ---------------------------------------------------------------------------
// /proc/net

/// One socket as /proc/net/{tcp,udp}[6] lists it.
pub struct SockInfo {
    pub family: i32,
    pub tcp: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Linux's TCP state number (1 established, 7 close, 10 listen).
    pub state: u8,
    pub rx_queue: usize,
    /// A listener's backlog (its "send queue" in /proc/net and ss), else
    /// 0: sent data is in the peer's queue at once.
    pub tx_queue: usize,
    pub id: u64,
    /// The owner's uid (sk_uid).
    pub uid: u32,
    pub v6only: bool,
    /// sk_shutdown: 1 receive, 2 send.
    pub shutdown: u8,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    pub tos: u8,
    pub sock: Arc<InetSocket>,
}

/// Socket counts for /proc/net/sockstat[6]: every live (not yet
/// released) inet socket by (family, kind), kind 0 TCP, 1 UDP and ping,
/// 2 raw; and the pages queued in TCP and UDP receive queues.
pub fn counts() -> (HashMap<(i32, u8), usize>, usize, usize) {
    let all = in_current_net();
    let mut n = HashMap::new();
    let mut udp_bytes = 0;
    for sock in all {
        let s = sock.lock();
        if s.closed {
            continue;
        }
        let kind = if sock.tcp() {
            0
        } else if sock.typ == super::SOCK_RAW {
            2
        } else {
            udp_bytes += s.dgram_bytes;
            1
        };
        *n.entry((sock.family, kind)).or_insert(0) += 1;
    }
    (
        n,
        QUEUED.load(Ordering::Relaxed).div_ceil(4096),
        udp_bytes.div_ceil(4096),
    )
}

/// TCP_INFO of a socket (sock_diag's INET_DIAG_INFO).
pub fn tcp_info_of(sock: &Arc<InetSocket>) -> Vec<u8> {
    tcp_info(sock)
}

/// The live inet sockets, for /proc/net.
pub fn sockets() -> Vec<SockInfo> {
    let all = in_current_net();
    let mut out = Vec::new();
    for sock in all {
        let s = sock.lock();
        if s.closed {
            continue;
        }
        let Some(local) = s.local else {
            continue;
        };
        if sock.icmp {
            continue;
        }
        let zero = if sock.family == AF_INET {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        } else {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        };
        let state = match s.tcp {
            _ if sock.tcp() => tcp_state(&s),
            Tcp::Listen { .. } => 10,
            Tcp::Connected => 1,
            Tcp::Connecting => 2,
            // UDP: 7 (close) unbound-peer, 1 when connected.
            Tcp::Closed => {
                if s.remote.is_some() {
                    1
                } else {
                    7
                }
            }
        };
        out.push(SockInfo {
            family: sock.family,
            tcp: sock.tcp(),
            local,
            remote: s.remote.unwrap_or(zero),
            state,
            rx_queue: match &s.tcp {
                Tcp::Listen { queue, .. } => queue.len(),
                _ if sock.tcp() => s.rx.len(),
                _ => s.dgram_bytes,
            },
            tx_queue: match &s.tcp {
                Tcp::Listen { backlog, .. } => *backlog,
                _ => 0,
            },
            id: sock.id,
            uid: sock.uid,
            v6only: s.opts.v6only,
            shutdown: s.shut_rd as u8 | (s.shut_wr as u8) << 1,
            rcvbuf: s.opts.rcvbuf,
            sndbuf: s.opts.sndbuf,
            tos: if sock.family == AF_INET {
                s.opts.tos as u8
            } else {
                s.opts.tclass as u8
            },
            sock: sock.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, family: i32, v6only: bool) -> Binding {
        Binding {
            ip: canonical(ip.parse().unwrap()),
            family,
            v6only,
            reuseaddr: false,
            reuseport: false,
            listening: false,
            connected_to: None,
        }
    }

    #[test]
    fn bind_overlaps() {
        let any4 = b("0.0.0.0", AF_INET, false);
        let lo4 = b("127.0.0.1", AF_INET, false);
        let other4 = b("127.0.0.2", AF_INET, false);
        let any6 = b("::", AF_INET6, false);
        let any6only = b("::", AF_INET6, true);
        let lo6 = b("::1", AF_INET6, false);
        let mapped = b("::ffff:127.0.0.1", AF_INET6, false);
        assert!(any4.overlaps(&lo4) && lo4.overlaps(&any4));
        assert!(!lo4.overlaps(&other4));
        assert!(any6.overlaps(&any4) && any6.overlaps(&lo4));
        assert!(!any6only.overlaps(&any4) && !any6only.overlaps(&lo4));
        assert!(any6only.overlaps(&lo6) && any6.overlaps(&lo6));
        assert!(!any4.overlaps(&lo6));
        assert!(mapped.overlaps(&lo4) && mapped.overlaps(&any4));
        assert!(!mapped.overlaps(&lo6));
    }

    #[test]
    fn bind_conflicts() {
        let mut a = b("127.0.0.1", AF_INET, false);
        let mut c = b("127.0.0.1", AF_INET, false);
        assert!(conflicts(&a, &c, true));
        a.reuseaddr = true;
        c.reuseaddr = true;
        assert!(!conflicts(&a, &c, true));
        c.listening = true;
        assert!(conflicts(&a, &c, true));
        assert!(!conflicts(&a, &c, false));
        a.reuseport = true;
        c.reuseport = true;
        assert!(!conflicts(&a, &c, true));
    }

    #[test]
    fn internet_checksum() {
        // An echo reply with its checksum verifies to zero.
        let mut m = vec![0u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c'];
        let s = csum(0, &m);
        m[2..4].copy_from_slice(&s.to_be_bytes());
        assert_eq!(csum(0, &m), 0);
    }

    #[test]
    fn sockaddr_bytes_layout() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v = sockaddr_bytes(AF_INET, Some(a));
        assert_eq!(v, [2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v6 = sockaddr_bytes(AF_INET6, Some(a));
        assert_eq!(v6.len(), 28);
        assert_eq!(
            &v6[8..24],
            &"::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(sockaddr_bytes(AF_INET6, None)[..4], [10, 0, 0, 0]);
    }
}
