//! Multicast on inet datagram sockets: group memberships
//! (IP_ADD_MEMBERSHIP/IP_DROP_MEMBERSHIP, IPV6_JOIN_GROUP/IPV6_LEAVE_GROUP)
//! and the sender's options (IP_MULTICAST_IF/TTL/LOOP/ALL,
//! IPV6_MULTICAST_IF/HOPS/LOOP).
//!
//! Delivery is local only, as on a Linux machine whose multicast leaves
//! by lo or comes back by IP_MULTICAST_LOOP: a datagram to a group goes
//! out of one interface (the socket's multicast interface, or the route
//! to the group); if that interface is lo, or the sender loops, every
//! UDP socket bound to the port (wildcard or the group itself) receives a
//! copy when some socket of the machine joined the group on that
//! interface (224.0.0.1 is always joined), filtered per socket as Linux's
//! `ip_mc_sf_allow`: a socket with a membership on that interface takes
//! it, one without takes it only with IP_MULTICAST_ALL (the default).
//! Nothing goes on eth0's wire (eth0=switch and eth0=user carry no
//! multicast). As on Linux, lo is not multicast-capable for IPv6 (no
//! ff00::/8 route): IPv6 groups are reached through eth0 only.
//!
//! The options live in the socket's option block ([`McOpts`], under the
//! socket's lock); the user's buffer is read and interfaces resolved
//! ([`parse`]) before that lock is taken.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::iface::{self, IFF_LOOPBACK};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::syscalls::{SyscallContext, UserAddr};

pub const IP_MULTICAST_IF: i32 = 32;
pub const IP_MULTICAST_TTL: i32 = 33;
pub const IP_MULTICAST_LOOP: i32 = 34;
pub const IP_ADD_MEMBERSHIP: i32 = 35;
pub const IP_DROP_MEMBERSHIP: i32 = 36;
pub const IP_MULTICAST_ALL: i32 = 49;
pub const IPV6_MULTICAST_IF: i32 = 17;
pub const IPV6_MULTICAST_HOPS: i32 = 18;
pub const IPV6_MULTICAST_LOOP: i32 = 19;
pub const IPV6_JOIN_GROUP: i32 = 20;
pub const IPV6_LEAVE_GROUP: i32 = 21;
const IPPROTO_IP: i32 = 0;
const IPPROTO_IPV6: i32 = 41;

/// Linux's net.ipv4.igmp_max_memberships (and the IPv6 limit's order).
pub const MAX_MEMBERSHIPS: usize = 20;

/// One group joined on one interface.
#[derive(Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: IpAddr,
    pub ifindex: i32,
}

/// A socket's multicast options and memberships.
#[derive(Clone)]
pub struct McOpts {
    pub ttl: i32,
    pub loop4: bool,
    /// IP_MULTICAST_IF: an address (0.0.0.0: none) and/or an index.
    pub if_addr: Ipv4Addr,
    pub if_index: i32,
    pub all: bool,
    pub hops6: i32,
    pub loop6: bool,
    pub if6: i32,
    pub groups: Vec<Membership>,
}

impl Default for McOpts {
    fn default() -> McOpts {
        McOpts {
            ttl: 1,
            loop4: true,
            if_addr: Ipv4Addr::UNSPECIFIED,
            if_index: 0,
            all: true,
            hops6: 1,
            loop6: true,
            if6: 0,
            groups: Vec::new(),
        }
    }
}

/// A multicast option, read from the user and resolved.
pub enum Req {
    Ttl(i32),
    Loop4(bool),
    All(bool),
    If4(Ipv4Addr, i32),
    Join(Membership),
    Drop(IpAddr, i32),
    Hops6(i32),
    Loop6(bool),
    If6(i32),
}

/// An IPv4 option's value as Linux reads it: an int from 4 bytes or
/// more, else one byte, else 0.
pub fn ip_int(ctx: &SyscallContext<'_>, val: UserAddr, len: u32) -> KResult<i32> {
    let len = len as i32;
    if len >= 4 {
        ctx.mm().read_val::<i32>(val.0)
    } else if len >= 1 {
        Ok(ctx.mm().read_val::<u8>(val.0)? as i32)
    } else if len == 0 {
        Ok(0)
    } else {
        error!(EINVAL)
    }
}

fn index_exists(ix: i32) -> bool {
    iface::ifaces().iter().any(|i| i.index == ix)
}

/// The interface holding IPv4 address `a`.
fn index_of_addr(a: Ipv4Addr) -> Option<i32> {
    iface::ifaces()
        .iter()
        .find(|i| i.addrs.iter().any(|x| x.addr == IpAddr::V4(a)))
        .map(|i| i.index)
}

/// The interface a packet to group `g` leaves by when nothing names one:
/// the default route's (eth0=user), else none.
fn route_index(g: IpAddr) -> Option<i32> {
    if g.is_ipv4() {
        iface::default_gateway().map(|(_, ix)| ix)
    } else {
        multicast_v6_index()
    }
}

/// The first multicast-capable (not loopback) interface, for IPv6.
fn multicast_v6_index() -> Option<i32> {
    iface::ifaces()
        .iter()
        .find(|i| i.flags & IFF_LOOPBACK == 0)
        .map(|i| i.index)
}

/// Reads and resolves a multicast option; None when (level, name) is not
/// one.
pub fn parse(
    ctx: &SyscallContext<'_>,
    tcp: bool,
    level: i32,
    name: i32,
    val: UserAddr,
    len: u32,
) -> Option<KResult<Req>> {
    let r = match (level, name) {
        (IPPROTO_IP, IP_MULTICAST_TTL) => (|| {
            if (len as i32) < 1 {
                return error!(EINVAL);
            }
            let v = ip_int(ctx, val, len)?;
            let v = if v == -1 { 1 } else { v };
            if !(0..=255).contains(&v) {
                return error!(EINVAL);
            }
            Ok(Req::Ttl(v))
        })(),
        (IPPROTO_IP, IP_MULTICAST_LOOP) => (|| {
            if (len as i32) < 1 {
                return error!(EINVAL);
            }
            Ok(Req::Loop4(ip_int(ctx, val, len)? != 0))
        })(),
        (IPPROTO_IP, IP_MULTICAST_ALL) => ip_int(ctx, val, len).map(|v| Req::All(v != 0)),
        (IPPROTO_IP, IP_MULTICAST_IF) => (|| {
            if tcp {
                return error!(EINVAL);
            }
            let (addr, ix) = read_mreqn(ctx, val, len, true)?;
            if ix == 0 {
                if addr.is_unspecified() {
                    return Ok(Req::If4(addr, 0));
                }
                let ix = index_of_addr(addr).ok_or(Errno::EADDRNOTAVAIL)?;
                return Ok(Req::If4(addr, ix));
            }
            if !index_exists(ix) {
                return error!(EADDRNOTAVAIL);
            }
            Ok(Req::If4(addr, ix))
        })(),
        (IPPROTO_IP, IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP) => (|| {
            if (len as i32) < 8 {
                return error!(EINVAL);
            }
            let group: [u8; 4] = ctx.mm().read_val(val.0)?;
            let group = Ipv4Addr::from(group);
            let (addr, ix) = read_mreqn(ctx, val, len, false)?;
            if !group.is_multicast() {
                return error!(EINVAL);
            }
            let ix = if ix != 0 {
                index_exists(ix).then_some(ix)
            } else if !addr.is_unspecified() {
                index_of_addr(addr)
            } else {
                route_index(IpAddr::V4(group))
            };
            if name == IP_DROP_MEMBERSHIP {
                return Ok(Req::Drop(IpAddr::V4(group), ix.ok_or(Errno::ENODEV)?));
            }
            Ok(Req::Join(Membership {
                group: IpAddr::V4(group),
                ifindex: ix.ok_or(Errno::ENODEV)?,
            }))
        })(),
        (IPPROTO_IPV6, IPV6_MULTICAST_HOPS) => (|| {
            let v = super::opt_int(ctx, val, len)?;
            if !(-1..=255).contains(&v) {
                return error!(EINVAL);
            }
            Ok(Req::Hops6(if v == -1 { 1 } else { v }))
        })(),
        (IPPROTO_IPV6, IPV6_MULTICAST_LOOP) => (|| {
            if len != 4 {
                return error!(EINVAL);
            }
            let v = ctx.mm().read_val::<i32>(val.0)?;
            if v != 0 && v != 1 {
                return error!(EINVAL);
            }
            Ok(Req::Loop6(v == 1))
        })(),
        (IPPROTO_IPV6, IPV6_MULTICAST_IF) => (|| {
            if tcp {
                return error!(ENOPROTOOPT);
            }
            let v = super::opt_int(ctx, val, len)?;
            if v != 0 && !index_exists(v) {
                return error!(ENODEV);
            }
            Ok(Req::If6(v))
        })(),
        (IPPROTO_IPV6, IPV6_JOIN_GROUP | IPV6_LEAVE_GROUP) => (|| {
            if (len as i32) < 20 {
                return error!(EINVAL);
            }
            let m: [u8; 20] = ctx.mm().read_val(val.0)?;
            let mut g = [0u8; 16];
            g.copy_from_slice(&m[..16]);
            let g = Ipv6Addr::from(g);
            let ix = i32::from_le_bytes([m[16], m[17], m[18], m[19]]);
            if !g.is_multicast() {
                return error!(EINVAL);
            }
            let ix = if ix != 0 {
                index_exists(ix).then_some(ix)
            } else {
                route_index(IpAddr::V6(g))
            };
            if name == IPV6_LEAVE_GROUP {
                return Ok(Req::Drop(IpAddr::V6(g), ix.ok_or(Errno::ENODEV)?));
            }
            Ok(Req::Join(Membership {
                group: IpAddr::V6(g),
                ifindex: ix.ok_or(Errno::ENODEV)?,
            }))
        })(),
        _ => return None,
    };
    Some(r)
}

/// The interface part of an `ip_mreqn` (12 bytes or more), `ip_mreq` (8)
/// or, for IP_MULTICAST_IF, a bare `in_addr` (4): (address, index).
fn read_mreqn(
    ctx: &SyscallContext<'_>,
    val: UserAddr,
    len: u32,
    bare: bool,
) -> KResult<(Ipv4Addr, i32)> {
    let len = len as i32;
    if len >= 12 {
        let m: [u8; 12] = ctx.mm().read_val(val.0)?;
        let a = Ipv4Addr::new(m[4], m[5], m[6], m[7]);
        return Ok((a, i32::from_le_bytes([m[8], m[9], m[10], m[11]])));
    }
    if len >= 8 {
        let m: [u8; 8] = ctx.mm().read_val(val.0)?;
        return Ok((Ipv4Addr::new(m[4], m[5], m[6], m[7]), 0));
    }
    if bare && len >= 4 {
        let m: [u8; 4] = ctx.mm().read_val(val.0)?;
        return Ok((Ipv4Addr::from(m), 0));
    }
    error!(EINVAL)
}

/// Applies a parsed option to a socket's options.
pub fn apply(o: &mut McOpts, r: Req) -> KResult<()> {
    match r {
        Req::Ttl(v) => o.ttl = v,
        Req::Loop4(v) => o.loop4 = v,
        Req::All(v) => o.all = v,
        Req::If4(a, ix) => (o.if_addr, o.if_index) = (a, ix),
        Req::Hops6(v) => o.hops6 = v,
        Req::Loop6(v) => o.loop6 = v,
        Req::If6(v) => o.if6 = v,
        Req::Join(m) => {
            if o.groups.contains(&m) {
                return error!(EADDRINUSE);
            }
            if o.groups.len() >= MAX_MEMBERSHIPS {
                return error!(ENOBUFS);
            }
            o.groups.push(m);
        }
        Req::Drop(g, ix) => {
            let Some(k) = o
                .groups
                .iter()
                .position(|m| m.group == g && m.ifindex == ix)
            else {
                return error!(EADDRNOTAVAIL);
            };
            o.groups.remove(k);
        }
    }
    Ok(())
}

/// getsockopt of a multicast option; None when (level, name) is not one.
pub fn get(o: &McOpts, level: i32, name: i32) -> Option<Vec<u8>> {
    let int = |v: i32| v.to_le_bytes().to_vec();
    Some(match (level, name) {
        (IPPROTO_IP, IP_MULTICAST_TTL) => int(o.ttl),
        (IPPROTO_IP, IP_MULTICAST_LOOP) => int(o.loop4 as i32),
        (IPPROTO_IP, IP_MULTICAST_ALL) => int(o.all as i32),
        (IPPROTO_IP, IP_MULTICAST_IF) => o.if_addr.octets().to_vec(),
        (IPPROTO_IPV6, IPV6_MULTICAST_HOPS) => int(o.hops6),
        (IPPROTO_IPV6, IPV6_MULTICAST_LOOP) => int(o.loop6 as i32),
        (IPPROTO_IPV6, IPV6_MULTICAST_IF) => int(o.if6),
        _ => return None,
    })
}

/// Where a datagram from a socket with options `o` to `group` goes:
/// (the interface, whether local sockets get a copy, the TTL / hop
/// limit). `scope` is a sockaddr_in6's scope id. ENETUNREACH when no
/// interface takes it (no route; lo for IPv6).
pub fn route(o: &McOpts, group: IpAddr, scope: u32) -> KResult<(i32, bool, u8)> {
    let t = iface::ifaces();
    let find = |ix: i32| t.iter().find(|i| i.index == ix && i.up());
    match group {
        IpAddr::V4(_) => {
            let ix = if o.if_index != 0 {
                o.if_index
            } else if !o.if_addr.is_unspecified() {
                t.iter()
                    .find(|i| i.addrs.iter().any(|x| x.addr == IpAddr::V4(o.if_addr)))
                    .map(|i| i.index)
                    .ok_or(Errno::ENETUNREACH)?
            } else {
                drop(t);
                return match route_index(group) {
                    Some(ix) => Ok((ix, o.loop4, o.ttl as u8)),
                    None => error!(ENETUNREACH),
                };
            };
            let i = find(ix).ok_or(Errno::ENETUNREACH)?;
            let lo = i.flags & IFF_LOOPBACK != 0;
            Ok((ix, lo || o.loop4, o.ttl as u8))
        }
        IpAddr::V6(_) => {
            let ix = if scope != 0 {
                scope as i32
            } else if o.if6 != 0 {
                o.if6
            } else {
                drop(t);
                return match multicast_v6_index() {
                    Some(ix) => Ok((ix, o.loop6, o.hops6 as u8)),
                    None => error!(ENETUNREACH),
                };
            };
            let i = find(ix).ok_or(Errno::ENETUNREACH)?;
            if i.flags & IFF_LOOPBACK != 0 {
                return error!(ENETUNREACH);
            }
            Ok((ix, o.loop6, o.hops6 as u8))
        }
    }
}

/// Whether a socket with options `o` takes a datagram to `group` that
/// arrived on interface `ix` (Linux's ip_mc_sf_allow without source
/// filters).
pub fn allows(o: &McOpts, group: IpAddr, ix: i32) -> bool {
    if o.groups.iter().any(|m| m.group == group && m.ifindex == ix) {
        return true;
    }
    o.all
}

/// Whether `group` on `ix` is joined by a socket in `all` (memberships of
/// every socket of the machine) or is the all-hosts group.
pub fn joined<'a>(mut all: impl Iterator<Item = &'a Membership>, group: IpAddr, ix: i32) -> bool {
    group == IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1))
        || group == IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1))
        || all.any(|m| m.group == group && m.ifindex == ix)
}
