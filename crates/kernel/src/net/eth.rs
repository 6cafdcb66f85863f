//! `eth0=switch,PATH`: eth0 as an Ethernet port on a switch speaking UML's
//! daemon transport (Debian's `uml_switch`, or `ruml switch`).
//!
//! Frames need a packet-level stack: smoltcp is the packet engine here,
//! for this interface only (lo and eth0=user keep the in-kernel path of
//! [`super`]). One smoltcp `Interface` has eth0's MAC (`mac=`) and eth0's
//! IPv4 addresses, copied from the interface table (where `ip addr add`
//! puts them) before every poll; it answers ARP and ICMP echo requests
//! itself. The POSIX side stays the inet layer's: port table, bind
//! conflicts, errno, readiness and blocking on the sockets' wait queues.
//!
//! - TCP: a connect to an on-link address of eth0, or a connection a
//!   listener (bound to the wildcard or to an eth0 address) takes from the
//!   wire, is backed by a smoltcp TCP socket ([`State::eth`]). The poll
//!   thread moves received bytes into the inet socket's receive queue
//!   (within its window, so a guest that does not read closes the TCP
//!   window), reports establishment, FIN, reset and refusal, and keeps
//!   [`State::eth_room`] (free send buffer) for senders and poll. A guest
//!   send copies into the smoltcp socket's send buffer.
//! - UDP: datagrams are built here (IPv4 + UDP, no fragmentation: more than
//!   1472 bytes is EMSGSIZE) and leave by a raw smoltcp socket; arriving
//!   UDP packets are checked (checksum) and delivered to the socket the
//!   port table names, as local datagrams are.
//! - ICMP: a ping socket's echo request to an eth0 neighbour leaves by a raw
//!   ICMP socket; echo replies come back to the ping socket whose port is
//!   their identifier.
//!
//! The poll thread (`ruml-eth0`) sleeps in [`SwitchLink::wait`] until a
//! frame arrives, a socket kicks it ([`kick`]), or smoltcp's `poll_delay`
//! (a retransmission, a delayed ACK) is due: an idle instance uses no CPU.
//!
//! Locking: [`Net`] behind one mutex. Order: net → a socket's state; the
//! port table is never taken with net held (arriving datagrams are
//! delivered after net is released). Nothing blocks with net held but a
//! frame send (bounded by the host link's send wait).
//!
//! Hostile input: frames come from any peer on the switch. The host link
//! drops datagrams that are not from the switch or not frame-sized;
//! smoltcp parses with checked accessors; UDP and ICMP parsing here checks
//! every length. Memory is bounded: a fixed number of frames is taken per
//! poll, smoltcp's buffers are fixed, and TCP data waits in the guest
//! socket's bounded window.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use ruml_host::switch::{SwitchLink, Wait, Waker, MAX_FRAME};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{raw, tcp};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol,
    IpVersion, Ipv4Packet,
};

use super::{
    bindings_on, canonical, iface, in_family, window, Errno, InetSocket, KResult, State, Task, Tcp,
    DUMMY, IPPROTO_ICMP, IPPROTO_UDP, QUEUED,
};
use crate::error;

/// eth0's MTU, and the largest UDP payload that fits a frame.
const MTU: usize = 1500;
const UDP_MAX: usize = MTU - 28;
/// A smoltcp TCP socket's send buffer, and its receive buffer (which is
/// the window it offers). The window stays within what a switch's socket
/// buffers hold (uml_switch's data socket takes about 90 frames with the
/// host's default wmem): a larger one makes the switch drop frames and
/// TCP wait out retransmission timeouts.
const TCP_TX_BUF: usize = 256 << 10;
const TCP_RX_BUF: usize = 64 << 10;
/// Listening smoltcp sockets per guest listener (connections completing
/// their handshakes at once).
const LISTEN_SLOTS: usize = 8;
/// Frames taken from the link per poll.
const RX_BATCH: usize = 256;
/// A connection whose peer stops answering is dropped after this long.
const TCP_TIMEOUT: Duration = Duration::from_secs(60);

/// A listening slot whose handshake does not complete within this is
/// freed for the next connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// `eth0=switch,PATH` and `mac=`, from the command line.
struct Setup {
    path: PathBuf,
    mac: [u8; 6],
}

static SETUP: Mutex<Option<Setup>> = Mutex::new(None);
static STACK: OnceLock<Stack> = OnceLock::new();

/// The running backend: smoltcp's state and the poll thread's waker.
struct Stack {
    net: Mutex<Net>,
    waker: Waker,
}

/// A TCP connection carried by smoltcp.
struct Conn {
    h: SocketHandle,
    sock: Weak<InetSocket>,
    since: Instant,
    /// Reached ESTABLISHED.
    est: bool,
}

/// A guest listener's smoltcp listening sockets.
struct Listener {
    sock: Weak<InetSocket>,
    ep: IpListenEndpoint,
    slots: Vec<SocketHandle>,
}

/// smoltcp's side, behind [`Stack::net`].
struct Net {
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: Link,
    udp: SocketHandle,
    icmp: SocketHandle,
    conns: Vec<Conn>,
    listeners: Vec<Listener>,
    /// Closed by the guest, finishing (FIN exchange) in smoltcp.
    closing: Vec<(SocketHandle, Instant)>,
    /// Outgoing UDP and ICMP by (protocol, destination): one raw socket
    /// each, so that datagrams to a neighbour that never answers ARP wait
    /// (and are dropped) alone instead of holding up everyone's.
    tx: Vec<(u8, Ipv4Addr, SocketHandle, Instant)>,
    next_ip_id: u16,
}

/// The smoltcp device: frames to and from the host link.
struct Link {
    link: Arc<SwitchLink>,
    rx: VecDeque<Vec<u8>>,
    up: bool,
}

struct RxTok(Vec<u8>);
struct TxTok<'a>(&'a SwitchLink, bool);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        if self.1 {
            self.0.send(&b);
        }
        r
    }
}

impl Device for Link {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;

    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(RxTok, TxTok<'_>)> {
        let f = self.rx.pop_front()?;
        Some((RxTok(f), TxTok(&self.link, self.up)))
    }

    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<TxTok<'_>> {
        Some(TxTok(&self.link, self.up))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = MTU + 14;
        c
    }
}

fn now() -> smoltcp::time::Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    smoltcp::time::Instant::from_micros(e.elapsed().as_micros() as i64)
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (a unicast address).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (parts.next().is_none() && m[0] & 1 == 0 && m != [0; 6]).then_some(m)
}

/// A random locally administered unicast MAC.
fn random_mac() -> [u8; 6] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let v = h.finish().to_le_bytes();
    [0x02, v[0], v[1], v[2], v[3], v[4]]
}

/// `eth0=switch,PATH` (with `mac=`, or a random one): adds eth0 (up, no
/// address yet) to the interface table. Called once before boot; [`start`]
/// connects.
pub fn configure(path: PathBuf, mac: Option<[u8; 6]>) {
    let mac = mac.unwrap_or_else(random_mac);
    iface::add_ether("eth0", mac);
    *SETUP.lock().unwrap_or_else(|p| p.into_inner()) = Some(Setup { path, mac });
}

/// Whether eth0=switch was given.
pub fn configured() -> bool {
    SETUP.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Connects eth0 to its switch and starts the poll thread (at boot, when
/// eth0=switch was given). An unreachable switch fails the boot.
pub fn start() -> Result<(), String> {
    let Some((path, mac)) = SETUP
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|s| (s.path.clone(), s.mac))
    else {
        return Ok(());
    };
    let link = SwitchLink::connect(&path).map_err(|e| {
        format!(
            "eth0: cannot connect to the switch at {}: {e}",
            path.display()
        )
    })?;
    let link = Arc::new(link);
    let waker = link.waker();
    let mut dev = Link {
        link: link.clone(),
        rx: VecDeque::new(),
        up: true,
    };
    let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    cfg.random_seed = u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 7, 9])
        ^ now().total_micros() as u64;
    let iface = Interface::new(cfg, &mut dev, now());
    let mut sockets = SocketSet::new(Vec::new());
    let rawsock = |proto| {
        raw::Socket::new(
            Some(IpVersion::Ipv4),
            Some(proto),
            raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 512], vec![0u8; 512 * 1536]),
            raw::PacketBuffer::new(Vec::new(), Vec::new()),
        )
    };
    let udp = sockets.add(rawsock(IpProtocol::Udp));
    let icmp = sockets.add(rawsock(IpProtocol::Icmp));
    let net = Net {
        iface,
        sockets,
        dev,
        udp,
        icmp,
        conns: Vec::new(),
        listeners: Vec::new(),
        closing: Vec::new(),
        tx: Vec::new(),
        next_ip_id: 1,
    };
    if STACK
        .set(Stack {
            net: Mutex::new(net),
            waker,
        })
        .is_err()
    {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("ruml-eth0".into())
        .spawn(move || poll_loop(link))
        .map_err(|e| format!("eth0: cannot start its thread: {e}"))?;
    crate::log::info(&format!(
        "eth0: switch at {} (UML daemon transport), MAC {}",
        path.display(),
        mac_text(&mac)
    ));
    Ok(())
}

fn stack() -> Option<&'static Stack> {
    STACK.get()
}

fn net(st: &Stack) -> MutexGuard<'_, Net> {
    st.net.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wakes the poll thread (a socket has something for it).
pub fn kick() {
    if let Some(st) = stack() {
        st.waker.wake();
    }
}

/// Whether a packet to `ip` (canonical, not local) leaves by eth0: the
/// switch backend runs, eth0 is up, and `ip` is on one of its IPv4 links.
pub fn routes(ip: IpAddr) -> bool {
    stack().is_some() && iface::on_link("eth0", canonical(ip))
}

/// eth0's IPv4 addresses (up to smoltcp's limit), for the interface.
fn eth0_cidrs() -> (bool, Vec<IpCidr>) {
    let t = iface::ifaces();
    let Some(i) = t.iter().find(|i| i.name == "eth0") else {
        return (false, Vec::new());
    };
    let v = i
        .addrs
        .iter()
        .filter_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(IpCidr::new(IpAddress::Ipv4(v4), a.prefix.min(32))),
            _ => None,
        })
        .take(8)
        .collect();
    (i.up(), v)
}

/// A datagram or echo reply to hand to the inet layer once net is released.
enum Inbound {
    Udp(SocketAddr, SocketAddr, Vec<u8>),
    Echo(Ipv4Addr, u16, Vec<u8>),
}

fn poll_loop(link: Arc<SwitchLink>) {
    let Some(st) = stack() else {
        return;
    };
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let mut frames = VecDeque::new();
        while frames.len() < RX_BATCH {
            match link.recv(&mut buf) {
                Some(n) => frames.push_back(buf[..n].to_vec()),
                None => break,
            }
        }
        let more = frames.len() == RX_BATCH;
        let (delay, inbound) = {
            let mut n = net(st);
            let n = &mut *n;
            let (up, cidrs) = eth0_cidrs();
            n.dev.up = up;
            if n.iface.ip_addrs() != cidrs.as_slice() {
                n.iface.update_ip_addrs(|a| {
                    a.clear();
                    for c in cidrs {
                        let _ = a.push(c);
                    }
                });
            }
            if up {
                iface::count("eth0", frames.len());
                n.dev.rx = frames;
            }
            let mut inbound = Vec::new();
            for _ in 0..4 {
                n.iface.poll(now(), &mut n.dev, &mut n.sockets);
                if !service(n, &mut inbound) {
                    break;
                }
            }
            (n.iface.poll_delay(now(), &n.sockets), inbound)
        };
        for i in inbound {
            match i {
                Inbound::Udp(src, dst, data) => super::deliver_udp(src, dst, data),
                Inbound::Echo(from, ident, msg) => super::deliver_echo(from, ident, msg),
            }
        }
        if more {
            continue;
        }
        if link.wait(delay.map(|d| Duration::from_micros(d.total_micros()))) == Wait::Hangup {
            crate::log::warn("eth0: the switch closed the connection; eth0 has no carrier");
            let mut n = net(st);
            n.dev.up = false;
            for c in std::mem::take(&mut n.conns) {
                if let Some(s) = c.sock.upgrade() {
                    drop(n);
                    super::reset(&s, Errno::ENETDOWN);
                    n = net(st);
                }
            }
            return;
        }
    }
}

/// Moves state between smoltcp's sockets and the guest's: returns whether
/// anything changed that smoltcp should act on (another poll).
fn service(n: &mut Net, inbound: &mut Vec<Inbound>) -> bool {
    let mut again = false;
    // Arriving UDP and ICMP.
    let udp = n.sockets.get_mut::<raw::Socket>(n.udp);
    while let Ok(p) = udp.recv() {
        if let Some(d) = parse_udp(p) {
            inbound.push(d);
        }
    }
    let icmp = n.sockets.get_mut::<raw::Socket>(n.icmp);
    while let Ok(p) = icmp.recv() {
        if let Some(d) = parse_echo_reply(p) {
            inbound.push(d);
        }
    }
    // Connections.
    let mut k = 0;
    while k < n.conns.len() {
        let keep = serve_conn(n, k, &mut again);
        if keep {
            k += 1;
        } else {
            n.conns.swap_remove(k);
        }
    }
    // Listeners.
    let mut k = 0;
    while k < n.listeners.len() {
        if serve_listener(n, k, &mut again) {
            k += 1;
        } else {
            let l = n.listeners.swap_remove(k);
            for h in l.slots {
                n.sockets.get_mut::<tcp::Socket>(h).abort();
                n.closing.push((h, Instant::now()));
            }
            again = true;
        }
    }
    // Finished closes.
    let sockets = &mut n.sockets;
    n.closing.retain(|&(h, since)| {
        let ts = sockets.get_mut::<tcp::Socket>(h);
        let done = matches!(ts.state(), tcp::State::Closed | tcp::State::TimeWait)
            || since.elapsed() > TCP_TIMEOUT;
        if done {
            sockets.remove(h);
        }
        !done
    });
    again
}

/// One connection: establishment, data in, FIN, reset, send room.
/// Returns false when it is over (removed from smoltcp).
fn serve_conn(n: &mut Net, k: usize, again: &mut bool) -> bool {
    let h = n.conns[k].h;
    let Some(sock) = n.conns[k].sock.upgrade() else {
        n.sockets.get_mut::<tcp::Socket>(h).abort();
        n.closing.push((h, Instant::now()));
        *again = true;
        return false;
    };
    let ts = n.sockets.get_mut::<tcp::Socket>(h);
    let state = ts.state();
    let mut s = sock.lock();
    if s.eth != Some(h) {
        // Closed by the guest meanwhile (close() took it over).
        return false;
    }
    let mut wake = false;
    use tcp::State as T;
    match state {
        T::SynSent | T::SynReceived | T::Listen => {}
        T::Closed | T::TimeWait if !n.conns[k].est => {
            // Refused (RST to our SYN) or no answer.
            let err = if n.conns[k].since.elapsed() >= TCP_TIMEOUT {
                Errno::ETIMEDOUT
            } else {
                Errno::ECONNREFUSED
            };
            if matches!(s.tcp, Tcp::Connecting) {
                s.error = Some(err);
                s.tcp = Tcp::Closed;
                s.remote = None;
            }
            s.eth = None;
            drop(s);
            n.sockets.remove(h);
            sock.waiters.wake_all();
            return false;
        }
        _ => {
            if !n.conns[k].est {
                n.conns[k].est = true;
                if matches!(s.tcp, Tcp::Connecting) {
                    s.tcp = Tcp::Connected;
                    s.was_connected = true;
                }
                wake = true;
            }
        }
    }
    // Data in, within the guest socket's window.
    let win = window(&s.opts);
    while ts.can_recv() && s.rx.len() < win {
        let room = win - s.rx.len();
        let got = ts.recv(|b| {
            let m = b.len().min(room);
            (m, b[..m].to_vec())
        });
        match got {
            Ok(v) if !v.is_empty() => {
                QUEUED.fetch_add(v.len(), std::sync::atomic::Ordering::Relaxed);
                s.rx.extend(v.iter());
                s.bytes_received += v.len() as u64;
                s.last_recv = Some(std::time::Instant::now());
                wake = true;
                *again = true;
            }
            _ => break,
        }
    }
    let peer_done = matches!(
        state,
        T::CloseWait | T::LastAck | T::Closing | T::TimeWait | T::Closed
    );
    if peer_done && !ts.can_recv() && !s.fin {
        if state == T::Closed && !matches!(s.tcp, Tcp::Closed) && !s.shut_wr {
            // Closed without our FIN: a reset from the peer.
            s.error = Some(Errno::ECONNRESET);
            s.broken = true;
        }
        s.fin = true;
        wake = true;
    }
    if state == T::Closed {
        if !s.fin {
            s.error = Some(Errno::ECONNRESET);
            s.fin = true;
            s.broken = true;
        }
        if matches!(s.tcp, Tcp::Connected) {
            s.tcp = Tcp::Closed;
        }
        s.eth = None;
        s.eth_room = 0;
        drop(s);
        n.sockets.remove(h);
        sock.waiters.wake_all();
        return false;
    }
    let room = if ts.may_send() {
        ts.send_capacity() - ts.send_queue()
    } else {
        0
    };
    if room > 0 && s.eth_room == 0 {
        wake = true;
    }
    s.eth_room = room;
    drop(s);
    if wake {
        sock.waiters.wake_all();
    }
    true
}

/// One listener: completed handshakes become guest connections on its
/// accept queue. Returns false once the guest listener is gone.
fn serve_listener(n: &mut Net, k: usize, again: &mut bool) -> bool {
    let Some(l) = n.listeners[k].sock.upgrade() else {
        return false;
    };
    let (listening, room) = {
        let s = l.lock();
        match &s.tcp {
            Tcp::Listen { backlog, queue, .. } if !s.closed => {
                (true, (*backlog + 1).saturating_sub(queue.len()))
            }
            _ => (false, 0),
        }
    };
    if !listening {
        return false;
    }
    let ep = n.listeners[k].ep;
    let mut slot = 0;
    while slot < n.listeners[k].slots.len() {
        let h = n.listeners[k].slots[slot];
        let ts = n.sockets.get_mut::<tcp::Socket>(h);
        match ts.state() {
            tcp::State::Listen | tcp::State::SynReceived => slot += 1,
            tcp::State::Closed => {
                // A handshake that failed: listen again.
                let _ = ts.listen(ep);
                slot += 1;
            }
            _ => {
                n.listeners[k].slots.swap_remove(slot);
                let (Some(lo), Some(re)) = (ts.local_endpoint(), ts.remote_endpoint()) else {
                    ts.abort();
                    n.closing.push((h, Instant::now()));
                    continue;
                };
                if !accept_conn(n, &l, h, lo, re) {
                    n.sockets.get_mut::<tcp::Socket>(h).abort();
                    n.closing.push((h, Instant::now()));
                }
                *again = true;
            }
        }
    }
    // Keep listening slots while the accept queue has room.
    let want = room.min(LISTEN_SLOTS);
    while n.listeners[k].slots.len() < want {
        let mut ts = new_tcp(&l.lock());
        // A handshake left half-open (a SYN flood from addresses nobody
        // has) frees its slot soon.
        ts.set_timeout(Some(smoltcp::time::Duration::from_secs(
            HANDSHAKE_TIMEOUT.as_secs(),
        )));
        let h = n.sockets.add(ts);
        if n.sockets.get_mut::<tcp::Socket>(h).listen(ep).is_err() {
            n.sockets.remove(h);
            break;
        }
        n.listeners[k].slots.push(h);
    }
    true
}

/// A connection from the wire, established: the server end, on the
/// listener's accept queue (false if the queue is full).
fn accept_conn(
    n: &mut Net,
    l: &Arc<InetSocket>,
    h: SocketHandle,
    lo: IpEndpoint,
    re: IpEndpoint,
) -> bool {
    let (IpAddress::Ipv4(lip), IpAddress::Ipv4(rip)) = (lo.addr, re.addr);
    let server = InetSocket::accepted(l);
    {
        let opts = l.lock().opts.clone();
        let mut s = server.lock();
        s.opts = opts;
        s.local = Some(in_family(l.family, IpAddr::V4(lip), lo.port));
        s.remote = Some(in_family(l.family, IpAddr::V4(rip), re.port));
        s.tcp = Tcp::Connected;
        s.was_connected = true;
        s.eth = Some(h);
    }
    let ok = {
        let mut ls = l.lock();
        match &mut ls.tcp {
            Tcp::Listen { backlog, queue, .. } if queue.len() <= *backlog => {
                queue.push_back(server.clone());
                true
            }
            _ => false,
        }
    };
    if !ok {
        server.lock().eth = None;
        return false;
    }
    n.sockets
        .get_mut::<tcp::Socket>(h)
        .set_timeout(Some(smoltcp::time::Duration::from_secs(
            TCP_TIMEOUT.as_secs(),
        )));
    n.conns.push(Conn {
        h,
        sock: Arc::downgrade(&server),
        since: Instant::now(),
        est: true,
    });
    l.waiters.wake_all();
    true
}

fn new_tcp(s: &State) -> tcp::Socket<'static> {
    let mut ts = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; TCP_RX_BUF]),
        tcp::SocketBuffer::new(vec![0u8; TCP_TX_BUF]),
    );
    ts.set_nagle_enabled(!s.opts.nodelay);
    ts.set_timeout(Some(smoltcp::time::Duration::from_secs(
        TCP_TIMEOUT.as_secs(),
    )));
    ts
}

/// A connect to `dst` on eth0's link, from `src` (the socket is bound and
/// its remote set). Blocking connects wait for the handshake.
pub(super) fn connect(
    task: &Arc<Task>,
    sock: &Arc<InetSocket>,
    src: SocketAddr,
    dst: SocketAddr,
    nonblock: bool,
) -> KResult<u64> {
    let (Some(st), IpAddr::V4(sip), IpAddr::V4(dip)) =
        (stack(), canonical(src.ip()), canonical(dst.ip()))
    else {
        return error!(ENETUNREACH);
    };
    {
        let mut n = net(st);
        let n = &mut *n;
        let ts = new_tcp(&sock.lock());
        let h = n.sockets.add(ts);
        let r = n.sockets.get_mut::<tcp::Socket>(h).connect(
            n.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(dip), dst.port()),
            IpListenEndpoint {
                addr: Some(IpAddress::Ipv4(sip)),
                port: src.port(),
            },
        );
        if r.is_err() {
            n.sockets.remove(h);
            sock.lock().remote = None;
            return error!(EADDRNOTAVAIL);
        }
        {
            let mut s = sock.lock();
            s.tcp = Tcp::Connecting;
            s.eth = Some(h);
            s.eth_room = 0;
        }
        n.conns.push(Conn {
            h,
            sock: Arc::downgrade(sock),
            since: Instant::now(),
            est: false,
        });
    }
    kick();
    if nonblock {
        sock.lock().in_progress = true;
        return error!(EINPROGRESS);
    }
    let timeout = sock.lock().opts.sndtimeo;
    let deadline = timeout.map(|t| Instant::now() + t);
    match sock.waiters.wait(Some(task), deadline, || {
        !matches!(sock.lock().tcp, Tcp::Connecting)
    }) {
        Ok(()) => {}
        Err(Errno::ETIMEDOUT) => {
            sock.lock().in_progress = true;
            return error!(EINPROGRESS);
        }
        Err(e) => {
            sock.lock().in_progress = true;
            return Err(e);
        }
    }
    let mut s = sock.lock();
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    Ok(0)
}

/// Sends what fits of `data` on connection `h`: the bytes taken (0: the
/// send buffer is full; the caller waits for [`State::eth_room`]).
/// EPIPE once smoltcp can send no more.
pub(super) fn send(sock: &InetSocket, h: SocketHandle, data: &[u8]) -> KResult<usize> {
    let Some(st) = stack() else {
        return error!(EPIPE);
    };
    let taken = {
        let mut n = net(st);
        if sock.lock().eth != Some(h) {
            return error!(EPIPE);
        }
        let ts = n.sockets.get_mut::<tcp::Socket>(h);
        if !ts.may_send() {
            return error!(EPIPE);
        }
        let k = ts.send_slice(data).unwrap_or(0);
        let room = ts.send_capacity() - ts.send_queue();
        sock.lock().eth_room = room;
        k
    };
    if taken > 0 {
        kick();
    }
    Ok(taken)
}

/// The guest closed connection `h` (RST if `rst`) or ended its sending
/// side (`shut_wr`: FIN, the connection stays).
pub(super) fn close(h: SocketHandle, rst: bool, shut_wr: bool) {
    let Some(st) = stack() else {
        return;
    };
    {
        let mut n = net(st);
        let ts = n.sockets.get_mut::<tcp::Socket>(h);
        if rst {
            ts.abort();
        } else {
            ts.close();
        }
        if !shut_wr {
            n.conns.retain(|c| c.h != h);
            n.closing.push((h, Instant::now()));
        }
    }
    kick();
}

/// A guest listener on `port` (bound to `ip`, canonical, or a wildcard
/// covering IPv4): connections from the wire reach it.
pub(super) fn listen(sock: &Arc<InetSocket>, ip: IpAddr, port: u16) {
    let Some(st) = stack() else {
        return;
    };
    let addr = match ip {
        IpAddr::V4(v4) if !v4.is_unspecified() => Some(IpAddress::Ipv4(v4)),
        _ => None,
    };
    {
        let mut n = net(st);
        if n.listeners
            .iter()
            .any(|l| std::ptr::eq(l.sock.as_ptr(), &**sock))
        {
            return;
        }
        n.listeners.push(Listener {
            sock: Arc::downgrade(sock),
            ep: IpListenEndpoint { addr, port },
            slots: Vec::new(),
        });
    }
    kick();
}

fn ip_id(n: &mut Net) -> u16 {
    n.next_ip_id = n.next_ip_id.wrapping_add(1);
    n.next_ip_id
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

/// An IPv4 packet from `src` to `dst` carrying `payload` (the header's
/// checksum is filled in by smoltcp).
fn ipv4(id: u16, proto: u8, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + payload.len());
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, ttl, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// At most this many destinations have a send queue; the least recently
/// used one gives way.
const MAX_TX: usize = 64;
/// Datagrams waiting (for ARP) per destination; more are dropped, as
/// Linux's unresolved-neighbour queue drops them.
const TX_QUEUE: usize = 64;

/// Queues an IPv4 packet for `dst`; a full queue drops it (a datagram may
/// be lost).
fn send_raw(n: &mut Net, proto: u8, dst: Ipv4Addr, pkt: &[u8]) {
    let now = Instant::now();
    let h = match n.tx.iter_mut().find(|e| e.0 == proto && e.1 == dst) {
        Some(e) => {
            e.3 = now;
            e.2
        }
        None => {
            if n.tx.len() >= MAX_TX {
                if let Some(k) = (0..n.tx.len()).min_by_key(|&k| n.tx[k].3) {
                    let old = n.tx.swap_remove(k);
                    n.sockets.remove(old.2);
                }
            }
            // Send-only: no receive buffer (arriving packets are the
            // receiving sockets' business).
            let h = n.sockets.add(raw::Socket::new(
                Some(IpVersion::Ipv4),
                Some(IpProtocol::from(proto)),
                raw::PacketBuffer::new(Vec::new(), Vec::new()),
                raw::PacketBuffer::new(
                    vec![raw::PacketMetadata::EMPTY; TX_QUEUE],
                    vec![0u8; TX_QUEUE * (MTU + 36)],
                ),
            ));
            n.tx.push((proto, dst, h, now));
            h
        }
    };
    let _ = n.sockets.get_mut::<raw::Socket>(h).send_slice(pkt);
}

/// A UDP datagram from `src` to `dst` (on eth0's link) onto the wire.
pub(super) fn send_udp(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> KResult<()> {
    let (Some(st), IpAddr::V4(s4), IpAddr::V4(d4)) =
        (stack(), canonical(src.ip()), canonical(dst.ip()))
    else {
        return error!(ENETUNREACH);
    };
    if data.len() > UDP_MAX {
        return error!(EMSGSIZE);
    }
    let len = (8 + data.len()) as u16;
    let mut u = Vec::with_capacity(len as usize);
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&s4.octets());
    pseudo.extend_from_slice(&d4.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_UDP as u8]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let mut sum = 0u32;
    for c in pseudo.chunks(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    let c = match csum(sum, &u) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    {
        let mut n = net(st);
        let id = ip_id(&mut n);
        let pkt = ipv4(id, IPPROTO_UDP as u8, s4, d4, 64, &u);
        send_raw(&mut n, IPPROTO_UDP as u8, d4, &pkt);
    }
    kick();
    Ok(())
}

/// A ping socket's echo request (`msg`: ICMP header and data, identifier
/// and checksum set) from `src` to `dst` onto the wire.
pub(super) fn send_echo(src: IpAddr, dst: IpAddr, msg: &[u8]) -> KResult<()> {
    let (Some(st), IpAddr::V4(s4), IpAddr::V4(d4)) = (stack(), canonical(src), canonical(dst))
    else {
        return error!(ENETUNREACH);
    };
    if msg.len() > MTU - 20 {
        return error!(EMSGSIZE);
    }
    {
        let mut n = net(st);
        let id = ip_id(&mut n);
        let pkt = ipv4(id, IPPROTO_ICMP as u8, s4, d4, 64, msg);
        send_raw(&mut n, IPPROTO_ICMP as u8, d4, &pkt);
    }
    kick();
    Ok(())
}

/// An IPv4 packet's header length, protocol, source, destination and
/// payload, every length checked (the packet came off the wire).
fn split_ipv4(p: &[u8]) -> Option<(u8, Ipv4Addr, Ipv4Addr, &[u8])> {
    let pkt = Ipv4Packet::new_checked(p).ok()?;
    if !pkt.verify_checksum() || pkt.more_frags() || pkt.frag_offset() != 0 {
        return None;
    }
    let hl = pkt.header_len() as usize;
    let total = (pkt.total_len() as usize).min(p.len());
    if total < hl {
        return None;
    }
    Some((
        pkt.next_header().into(),
        pkt.src_addr(),
        pkt.dst_addr(),
        &p[hl..total],
    ))
}

fn parse_udp(p: &[u8]) -> Option<Inbound> {
    let (proto, src, dst, u) = split_ipv4(p)?;
    if proto != IPPROTO_UDP as u8 || u.len() < 8 {
        return None;
    }
    let len = u16::from_be_bytes([u[4], u[5]]) as usize;
    if len < 8 || len > u.len() {
        return None;
    }
    let u = &u[..len];
    let sum = u16::from_be_bytes([u[6], u[7]]);
    if sum != 0 {
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, IPPROTO_UDP as u8]);
        pseudo.extend_from_slice(&(len as u16).to_be_bytes());
        let mut s = 0u32;
        for c in pseudo.chunks(2) {
            s += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        if csum(s, u) != 0 {
            return None;
        }
    }
    let sport = u16::from_be_bytes([u[0], u[1]]);
    let dport = u16::from_be_bytes([u[2], u[3]]);
    if dport == 0 {
        return None;
    }
    Some(Inbound::Udp(
        SocketAddr::new(IpAddr::V4(src), sport),
        SocketAddr::new(IpAddr::V4(dst), dport),
        u[8..].to_vec(),
    ))
}

fn parse_echo_reply(p: &[u8]) -> Option<Inbound> {
    let (proto, src, _dst, m) = split_ipv4(p)?;
    if proto != IPPROTO_ICMP as u8 || m.len() < 8 || m[0] != 0 || m[1] != 0 || csum(0, m) != 0 {
        return None;
    }
    let ident = u16::from_be_bytes([m[4], m[5]]);
    Some(Inbound::Echo(src, ident, m.to_vec()))
}

/// For the inet layer's delivery: the live bindings of (proto, port).
pub(super) fn bound(proto: i32, port: u16) -> Vec<(Arc<InetSocket>, super::Binding)> {
    bindings_on(&mut super::ports(), proto, port, &DUMMY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse() {
        assert_eq!(parse_mac("02:00:00:00:00:01"), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("01:00:00:00:00:01"), None);
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:01:03"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:01"), None);
    }

    #[test]
    fn junk_packets_are_dropped() {
        // Short, truncated, lying lengths, bad checksums: no panic, no
        // delivery.
        for p in [
            &[][..],
            &[0x45][..],
            &[0x45, 0, 0, 200, 0, 0, 0, 0, 64, 17, 0, 0][..],
            &[0x4f; 60][..],
            &[
                0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2, 0,
                99, 0, 0,
            ][..],
        ] {
            assert!(parse_udp(p).is_none());
            assert!(parse_echo_reply(p).is_none());
        }
        // A good one passes.
        let u = [0u8, 7, 0, 9, 0, 9, 0, 0, 42];
        let pkt = ipv4(
            1,
            17,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            64,
            &u,
        );
        let mut pkt = pkt;
        let c = csum(0, &pkt[..20]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        match parse_udp(&pkt) {
            Some(Inbound::Udp(s, d, data)) => {
                assert_eq!((s.port(), d.port(), data), (7, 9, vec![42]));
            }
            _ => panic!("a valid datagram was dropped"),
        }
    }
}
