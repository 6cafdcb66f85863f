//! NETLINK_SOCK_DIAG: inet_diag for TCP and UDP over IPv4 and IPv6, what
//! iproute2's `ss` asks first (it falls back to /proc/net only when this
//! fails). SOCK_DIAG_BY_FAMILY dumps (filtered by state bits and by the
//! request's source/destination ports) and exact lookups, answered with
//! `struct inet_diag_msg` and the attributes Linux gives: INET_DIAG_SHUTDOWN
//! and (IPv6) INET_DIAG_SKV6ONLY always; INET_DIAG_MEMINFO,
//! INET_DIAG_INFO (TCP_INFO), INET_DIAG_TOS / INET_DIAG_TCLASS and
//! INET_DIAG_SKMEMINFO when idiag_ext asks. Not built: the bytecode filter
//! (INET_DIAG_REQ_BYTECODE is ignored; `ss` filters again itself), uids and
//! timers in the message (0), other families and protocols (ENOENT, so
//! `ss -x` reads /proc/net/unix), SOCK_DESTROY (EOPNOTSUPP).
//!
//! Replies are split into datagrams of at most [`CHUNK`] bytes of whole
//! messages, the last one ending with NLMSG_DONE, as Linux's dumps fill
//! one skb at a time.

use std::net::{IpAddr, SocketAddr};

use super::inet::{self, SockInfo, IPPROTO_TCP, IPPROTO_UDP};
use super::{AF_INET, AF_INET6};
use crate::errno::Errno;

pub const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_DUMP: u16 = 0x300;
const INET_DIAG_MEMINFO: u16 = 1;
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_TOS: u16 = 5;
const INET_DIAG_TCLASS: u16 = 6;
const INET_DIAG_SKMEMINFO: u16 = 7;
const INET_DIAG_SHUTDOWN: u16 = 8;
const INET_DIAG_SKV6ONLY: u16 = 11;
/// sizeof(struct inet_diag_req_v2).
const REQ_LEN: usize = 56;
/// The most bytes of messages in one reply datagram.
const CHUNK: usize = 16384;

/// One netlink message under construction.
struct Msg(Vec<u8>);

impl Msg {
    fn new(typ: u16, flags: u16, seq: u32, pid: u32) -> Msg {
        let mut b = vec![0u8; 16];
        b[4..6].copy_from_slice(&typ.to_le_bytes());
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        b[8..12].copy_from_slice(&seq.to_le_bytes());
        b[12..16].copy_from_slice(&pid.to_le_bytes());
        Msg(b)
    }
    fn raw(&mut self, d: &[u8]) {
        self.0.extend_from_slice(d);
        self.0.resize((self.0.len() + 3) & !3, 0);
    }
    fn attr(&mut self, typ: u16, d: &[u8]) {
        self.0
            .extend_from_slice(&((4 + d.len()) as u16).to_le_bytes());
        self.0.extend_from_slice(&typ.to_le_bytes());
        self.raw(d);
    }
    fn finish(mut self) -> Vec<u8> {
        let n = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

fn err_msg(errno: i32, req: &[u8], seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(NLMSG_ERROR, 0, seq, pid);
    m.raw(&(-errno).to_le_bytes());
    m.raw(&req[..16]);
    m.finish()
}

/// The 16 address bytes of a sockid (IPv4 in the first four).
fn addr16(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

/// `struct inet_diag_msg` and its attributes for one socket.
fn sock_msg(si: &SockInfo, ext: u8, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut m = Msg::new(SOCK_DIAG_BY_FAMILY, flags, seq, pid);
    let mut b = Vec::with_capacity(72);
    b.extend_from_slice(&[si.family as u8, si.state, 0, 0]);
    b.extend_from_slice(&si.local.port().to_be_bytes());
    b.extend_from_slice(&si.remote.port().to_be_bytes());
    b.extend_from_slice(&addr16(si.local.ip()));
    b.extend_from_slice(&addr16(si.remote.ip()));
    b.extend_from_slice(&0u32.to_le_bytes()); // idiag_if
    b.extend_from_slice(&(si.id as u32).to_le_bytes()); // cookie
    b.extend_from_slice(&((si.id >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // expires
    b.extend_from_slice(&(si.rx_queue as u32).to_le_bytes());
    b.extend_from_slice(&(si.tx_queue as u32).to_le_bytes());
    b.extend_from_slice(&si.uid.to_le_bytes()); // uid
    b.extend_from_slice(&(si.id as u32).to_le_bytes()); // inode
    m.raw(&b);
    let want = |a: u16| ext & (1 << (a - 1)) != 0;
    if want(INET_DIAG_MEMINFO) {
        let v: Vec<u8> = [si.rx_queue as u32, 0, 0, 0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        m.attr(INET_DIAG_MEMINFO, &v);
    }
    if want(INET_DIAG_INFO) && si.tcp {
        m.attr(INET_DIAG_INFO, &inet::tcp_info_of(&si.sock));
    }
    if want(INET_DIAG_TOS) {
        m.attr(INET_DIAG_TOS, &[si.tos]);
    }
    if want(INET_DIAG_TCLASS) && si.family == AF_INET6 {
        m.attr(INET_DIAG_TCLASS, &[si.tos]);
    }
    if want(INET_DIAG_SKMEMINFO) {
        let v: Vec<u8> = [
            si.rx_queue as u32,
            si.rcvbuf as u32,
            0,
            si.sndbuf as u32,
            0,
            0,
            0,
            0,
            0,
        ]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
        m.attr(INET_DIAG_SKMEMINFO, &v);
    }
    m.attr(INET_DIAG_SHUTDOWN, &[si.shutdown]);
    if si.family == AF_INET6 {
        m.attr(INET_DIAG_SKV6ONLY, &[si.v6only as u8]);
    }
    m.finish()
}

/// Whether a request's sockid address (16 bytes) names `a` (all zero:
/// any).
fn addr_matches(want: &[u8], a: IpAddr, family: i32) -> bool {
    let n = if family == AF_INET { 4 } else { 16 };
    want[..n].iter().all(|&x| x == 0) || want[..n] == addr16(a)[..n]
}

/// Answers one request on a NETLINK_SOCK_DIAG socket: reply datagrams.
pub fn handle(req: &[u8], pid: u32) -> Vec<Vec<u8>> {
    let typ = u16::from_le_bytes([req[4], req[5]]);
    let flags = u16::from_le_bytes([req[6], req[7]]);
    let seq = u32::from_le_bytes([req[8], req[9], req[10], req[11]]);
    let body = &req[16..];
    if flags & NLM_F_REQUEST == 0 {
        return Vec::new();
    }
    let fail = |e: Errno| vec![err_msg(e.as_i32(), req, seq, pid)];
    match typ {
        SOCK_DIAG_BY_FAMILY => {}
        SOCK_DESTROY => return fail(Errno::EOPNOTSUPP),
        _ => return fail(Errno::EINVAL),
    }
    if body.len() < 2 {
        return fail(Errno::EINVAL);
    }
    let (family, proto) = (body[0] as i32, body[1] as i32);
    if family != AF_INET && family != AF_INET6 {
        return fail(if family >= 46 {
            Errno::EINVAL
        } else {
            Errno::ENOENT
        });
    }
    if body.len() < REQ_LEN {
        return fail(Errno::EINVAL);
    }
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return fail(Errno::ENOENT);
    }
    let ext = body[2];
    let states = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let sport = u16::from_be_bytes([body[8], body[9]]);
    let dport = u16::from_be_bytes([body[10], body[11]]);
    let (src, dst) = (&body[12..28], &body[28..44]);
    let tcp = proto == IPPROTO_TCP;
    let mut socks: Vec<SockInfo> = inet::sockets()
        .into_iter()
        .filter(|s| s.family == family && s.tcp == tcp)
        .collect();
    socks.sort_by_key(|s| s.id);
    let port_ok = |a: SocketAddr, want: u16| want == 0 || a.port() == want;
    if flags & NLM_F_DUMP != NLM_F_DUMP {
        // An exact lookup: the socket with these addresses and ports.
        let found = socks.iter().find(|s| {
            s.local.port() == sport
                && s.remote.port() == dport
                && addr_matches(src, s.local.ip(), family)
                && addr_matches(dst, s.remote.ip(), family)
        });
        return match found {
            Some(s) => vec![sock_msg(s, ext, 0, seq, pid)],
            None => fail(Errno::ENOENT),
        };
    }
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for s in socks.iter().filter(|s| {
        states & (1 << s.state) != 0 && port_ok(s.local, sport) && port_ok(s.remote, dport)
    }) {
        let m = sock_msg(s, ext, NLM_F_MULTI, seq, pid);
        if !cur.is_empty() && cur.len() + m.len() > CHUNK {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(m);
    }
    let mut d = Msg::new(NLMSG_DONE, NLM_F_MULTI, seq, pid);
    d.raw(&0i32.to_le_bytes());
    cur.extend(d.finish());
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(typ: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Msg::new(typ, flags, 7, 0);
        m.raw(body);
        m.finish()
    }

    fn errno_of(r: &[Vec<u8>]) -> i32 {
        assert_eq!(r.len(), 1);
        assert_eq!(u16::from_le_bytes([r[0][4], r[0][5]]), NLMSG_ERROR);
        -i32::from_le_bytes([r[0][16], r[0][17], r[0][18], r[0][19]])
    }

    #[test]
    fn hostile_requests() {
        let f = NLM_F_REQUEST | NLM_F_DUMP;
        assert_eq!(errno_of(&handle(&req(99, f, &[2, 6]), 1)), libc_einval());
        assert_eq!(errno_of(&handle(&req(20, f, &[2]), 1)), libc_einval());
        assert_eq!(
            errno_of(&handle(&req(20, f, &[2, 6, 0, 0]), 1)),
            libc_einval()
        );
        let mut body = vec![0u8; REQ_LEN];
        body[0] = 2;
        body[1] = 132;
        assert_eq!(
            errno_of(&handle(&req(20, f, &body), 1)),
            Errno::ENOENT.as_i32()
        );
        body[0] = 1;
        assert_eq!(
            errno_of(&handle(&req(20, f, &body), 1)),
            Errno::ENOENT.as_i32()
        );
        body[0] = 200;
        assert_eq!(errno_of(&handle(&req(20, f, &body), 1)), libc_einval());
        // A dump with nothing matching ends with NLMSG_DONE.
        body[0] = 2;
        body[1] = 6;
        let r = handle(&req(20, f, &body), 1);
        let last = r.last().map(|v| v.as_slice()).unwrap_or(&[]);
        assert!(last.len() >= 20);
    }

    fn libc_einval() -> i32 {
        Errno::EINVAL.as_i32()
    }
}
