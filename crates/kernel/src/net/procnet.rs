//! /proc/net: tcp, tcp6, udp, udp6, unix, dev, if_inet6, route, sockstat,
//! snmp (net/snmp.rs) — in
//! Linux's formats, drawn from the socket tables and the interfaces at the
//! moment of opening.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use super::iface::{self, canonical};
use super::{inet, netlink, unix, AF_INET};

/// The files and their inode numbers under /proc/net.
pub const FILES: &[(&str, u64)] = &[
    ("dev", 101),
    ("if_inet6", 102),
    ("route", 103),
    ("tcp", 104),
    ("tcp6", 105),
    ("udp", 106),
    ("udp6", 107),
    ("unix", 108),
    ("sockstat", 109),
    ("sockstat6", 110),
    ("snmp", 111),
];

/// An IPv4 address as /proc/net prints it: the network-order bytes read
/// as a little-endian word.
fn hex4(o: [u8; 4]) -> String {
    format!("{:08X}", u32::from_le_bytes(o))
}

fn hex_addr(a: SocketAddr, v6: bool) -> String {
    let ip = if v6 {
        match a.ip() {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            ip => ip,
        }
    } else {
        canonical(a.ip())
    };
    let s = match ip {
        IpAddr::V4(v4) => hex4(v4.octets()),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|c| hex4([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    format!("{s}:{:04X}", a.port())
}

fn sockets(tcp: bool, v6: bool) -> String {
    let mut out = String::new();
    let pad = if v6 { 32 } else { 8 };
    if tcp {
        let _ = writeln!(
            out,
            "  sl  {:<w$} {:<w$} st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            "local_address",
            "rem_address",
            w = pad + 5
        );
    } else {
        let _ = writeln!(
            out,
            "   sl  {:<w$} {:<w$} st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
            "local_address",
            "rem_address",
            w = pad + 5
        );
    }
    let want = if v6 { super::AF_INET6 } else { AF_INET };
    for (i, s) in inet::sockets()
        .into_iter()
        .filter(|s| s.tcp == tcp && s.family == want)
        .enumerate()
    {
        let _ = write!(
            out,
            "{:>w$}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:>5}        0 {}",
            i,
            hex_addr(s.local, v6),
            hex_addr(s.remote, v6),
            s.state,
            0,
            s.rx_queue,
            s.uid,
            s.id,
            w = if tcp { 4 } else { 5 }
        );
        if tcp {
            let _ = writeln!(out, " 1 0000000000000000 100 0 0 10 0");
        } else {
            let _ = writeln!(out, " 2 0000000000000000 0");
        }
    }
    out
}

fn dev() -> String {
    let mut out = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for i in iface::ifaces().iter() {
        let (pk, by) = i.stats;
        let _ = writeln!(
            out,
            "{:>6}: {:>7} {:>7}    0    0    0     0          0         0 {:>8} {:>7}    0    0    0     0       0          0",
            i.name, by, pk, by, pk
        );
    }
    out
}

fn if_inet6() -> String {
    let mut out = String::new();
    for i in iface::ifaces().iter() {
        for a in &i.addrs {
            if let IpAddr::V6(v6) = a.addr {
                let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
                let scope = if v6.is_loopback() { 0x10 } else { 0 };
                let _ = writeln!(
                    out,
                    "{hex} {:02x} {:02x} {:02x} {:02x} {:>8}",
                    i.index, a.prefix, scope, 0x80, i.name
                );
            }
        }
    }
    out
}

fn route() -> String {
    let mut out = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    for r in netlink::main_v4_routes() {
        let (name, dst, prefix) = r;
        let mask = if prefix == 0 {
            0u32
        } else {
            u32::MAX << (32 - prefix.min(32) as u32)
        };
        let _ = writeln!(
            out,
            "{name}\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0",
            hex4(dst.octets()),
            hex4(mask.to_be_bytes()),
        );
    }
    out
}

fn unix_sockets() -> String {
    let mut out = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    for (k, s) in unix::bound_sockets().into_iter().enumerate() {
        // Type: 1 stream, 2 dgram, 5 seqpacket; state 01 unconnected,
        // 03 connected; flags 00010000 = listening.
        let _ = writeln!(
            out,
            "{:016x}: 00000002 00000000 {:08x} {:04x} {:02x} {} {}",
            k,
            if s.listening { 0x10000 } else { 0 },
            s.typ,
            if s.connected { 3 } else { 1 },
            0,
            String::from_utf8_lossy(&s.name)
        );
    }
    out
}

/// /proc/net/sockstat and sockstat6: sockets in use (bound, in the
/// tables /proc/net/tcp and udp list), TCP sockets allocated (both
/// families, as Linux counts them) and the pages their queues hold. No
/// orphans or TIME_WAIT sockets exist here; "sockets: used" counts inet
/// sockets and bound unix ones.
fn sockstat(v6: bool) -> String {
    let listed = inet::sockets();
    let inuse = |tcp: bool, fam: i32| {
        listed
            .iter()
            .filter(|s| s.tcp == tcp && (s.family == fam))
            .count()
    };
    let (n, tcp_pages, udp_pages) = inet::counts();
    let get = |fam: i32, kind: u8| n.get(&(fam, kind)).copied().unwrap_or(0);
    if v6 {
        return format!(
            "TCP6: inuse {}\nUDP6: inuse {}\nUDPLITE6: inuse 0\nRAW6: inuse {}\nFRAG6: inuse 0 memory 0\n",
            inuse(true, super::AF_INET6),
            inuse(false, super::AF_INET6),
            get(super::AF_INET6, 2)
        );
    }
    let all: usize = n.values().sum::<usize>() + unix::bound_sockets().len();
    format!(
        "sockets: used {all}\nTCP: inuse {} orphan 0 tw 0 alloc {} mem {tcp_pages}\nUDP: inuse {} mem {udp_pages}\nUDPLITE: inuse 0\nRAW: inuse {}\nFRAG: inuse 0 memory 0\n",
        inuse(true, AF_INET),
        get(AF_INET, 0) + get(super::AF_INET6, 0),
        inuse(false, AF_INET),
        get(AF_INET, 2)
    )
}

/// The text of /proc/net/NAME.
pub fn render(name: &str) -> String {
    match name {
        "tcp" => sockets(true, false),
        "tcp6" => sockets(true, true),
        "udp" => sockets(false, false),
        "udp6" => sockets(false, true),
        "dev" => dev(),
        "if_inet6" => if_inet6(),
        "route" => route(),
        "unix" => unix_sockets(),
        "sockstat" => sockstat(false),
        "sockstat6" => sockstat(true),
        "snmp" => super::snmp::render(
            crate::task::ns::current_net(),
            inet::sockets()
                .iter()
                .filter(|s| s.tcp && s.state == 1)
                .count(),
        ),
        _ => String::new(),
    }
}
