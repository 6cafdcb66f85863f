//! /proc/net/snmp: the MIB counters of the reader's network namespace,
//! in Linux's layout. ruml carries TCP and UDP between the machine's own
//! sockets without building IP datagrams or segments, so the counters
//! are those of the events it has: connections opened actively (every
//! connect that goes out: to lo, through eth0=user's NAT or on
//! eth0=switch) and passively (a connection a listener took on lo),
//! connects refused, established connections now; datagrams sent,
//! delivered, to a port no socket has, and dropped for a full receive
//! buffer; ping sockets' echo requests to the machine's own addresses
//! and their replies (ICMP). The IP counters, TCP's segment counts and
//! the ICMP messages Linux would make for errors (port unreachable) stay
//! 0: ruml makes no such datagrams. Raw sockets' ICMP is not counted.
//!
//! Counters live per namespace in one table (its lock is a leaf: taken
//! with no other held, or under a socket's lock and nothing after it).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// One namespace's counters.
#[derive(Clone, Copy, Default)]
pub struct Counters {
    pub tcp_active_opens: u64,
    pub tcp_passive_opens: u64,
    pub tcp_attempt_fails: u64,
    pub udp_in: u64,
    pub udp_no_ports: u64,
    pub udp_rcvbuf_errors: u64,
    pub udp_out: u64,
    /// Echo requests to the machine's own IPv4 addresses (each is one
    /// message in and one out, and so is its reply).
    pub icmp_echos: u64,
}

fn table() -> std::sync::MutexGuard<'static, HashMap<u64, Counters>> {
    static T: OnceLock<Mutex<HashMap<u64, Counters>>> = OnceLock::new();
    T.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Counts an event in namespace `net`.
pub fn bump(net: u64, f: impl FnOnce(&mut Counters)) {
    f(table().entry(net).or_default());
}

/// A network namespace is gone: its counters go too.
pub fn netns_gone(net: u64) {
    table().remove(&net);
}

/// The text of /proc/net/snmp for namespace `net`, with `estab`
/// connections established now.
pub fn render(net: u64, estab: usize) -> String {
    let c = table().get(&net).copied().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits"
    );
    let _ = writeln!(out, "Ip: 1 64 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    let _ = writeln!(
        out,
        "Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps"
    );
    let e = c.icmp_echos;
    let _ = writeln!(
        out,
        "Icmp: {} 0 0 0 0 0 0 0 {e} {e} 0 0 0 0 {} 0 0 0 0 0 0 0 0 {e} {e} 0 0 0 0",
        2 * e,
        2 * e
    );
    if e > 0 {
        let _ = writeln!(out, "IcmpMsg: InType0 InType8 OutType0 OutType8");
        let _ = writeln!(out, "IcmpMsg: {e} {e} {e} {e}");
    }
    let _ = writeln!(
        out,
        "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors"
    );
    let _ = writeln!(
        out,
        "Tcp: 1 200 120000 -1 {} {} {} 0 {estab} 0 0 0 0 0 0",
        c.tcp_active_opens, c.tcp_passive_opens, c.tcp_attempt_fails
    );
    let udp_head = "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors";
    let _ = writeln!(out, "Udp: {udp_head}");
    let _ = writeln!(
        out,
        "Udp: {} {} {} {} {} 0 0 0 0",
        c.udp_in, c.udp_no_ports, c.udp_rcvbuf_errors, c.udp_out, c.udp_rcvbuf_errors
    );
    let _ = writeln!(out, "UdpLite: {udp_head}");
    let _ = writeln!(out, "UdpLite: 0 0 0 0 0 0 0 0 0");
    out
}
