//! Network interfaces: `lo` (127.0.0.1/8 and ::1/128), their flags and
//! addresses, which addresses are local, and the interface ioctls
//! (SIOCGIFCONF, SIOCGIFADDR, SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFHWADDR,
//! SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFMTU, SIOCGIFNETMASK).
//!
//! There is one table per network namespace (task/ns.rs `PerNet`: the
//! current task's namespace's), all behind one mutex, held only for short
//! lookups and never while another lock is taken. A new namespace's table
//! has only `lo`, down and without addresses until brought up, as Linux. Netlink (RTM_NEWADDR, RTM_NEWLINK)
//! changes it; the inet layer asks [`is_local`] and [`source_for`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::syscalls::SyscallContext;

pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x10000;
pub const ARPHRD_LOOPBACK: u16 = 772;

/// One address on an interface, with its prefix length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
    pub label: String,
}

/// A network interface.
#[derive(Clone, Debug)]
pub struct Iface {
    pub index: i32,
    pub name: String,
    /// IFF_* flags the administrator sets (IFF_UP) and the fixed ones.
    pub flags: u32,
    pub mtu: u32,
    pub hwaddr: [u8; 6],
    pub hwtype: u16,
    pub addrs: Vec<IfAddr>,
    /// Packets and bytes received/sent (lo: both the same).
    pub stats: (u64, u64),
}

impl Iface {
    pub fn up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
    /// Flags as SIOCGIFFLAGS and RTM_NEWLINK report them.
    pub fn report_flags(&self) -> u32 {
        if self.up() {
            self.flags | IFF_RUNNING | IFF_LOWER_UP
        } else {
            self.flags
        }
    }
}

/// `eth0=user`: the guest's address, the gateway (which is the host's
/// loopback), as slirp and QEMU's user networking number them.
pub const NAT_GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const NAT_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// eth0=user's DNS server: queries to it go to the host's resolver.
pub const NAT_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

static DNS: std::sync::Mutex<Option<std::net::SocketAddr>> = std::sync::Mutex::new(None);

/// `dns=IP[:PORT]`: where queries to 10.0.2.3:53 go (default: the host's
/// first nameserver).
pub fn set_nat_dns(a: std::net::SocketAddr) {
    *DNS.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
}

/// The host address DNS queries to 10.0.2.3 go to.
pub fn nat_dns() -> Option<std::net::SocketAddr> {
    let set = *DNS.lock().unwrap_or_else(|p| p.into_inner());
    set.or_else(ruml_host::net::host_resolver)
}
const IFF_BROADCAST: u32 = 0x2;
const IFF_MULTICAST: u32 = 0x1000;
const ARPHRD_ETHER: u16 = 1;

static NAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `eth0=user`: adds eth0 (10.0.2.15/24, default route via 10.0.2.2) whose
/// outbound TCP connections the kernel makes as host connections. Called
/// once at boot, before the guest runs.
pub fn enable_user_nat() {
    let mut t = ifaces();
    if t.iter().any(|i| i.name == "eth0") {
        return;
    }
    t.push(Iface {
        index: 2,
        name: "eth0".into(),
        flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST,
        mtu: 1500,
        hwaddr: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        hwtype: ARPHRD_ETHER,
        addrs: vec![IfAddr {
            addr: IpAddr::V4(NAT_GUEST),
            prefix: 24,
            label: "eth0".into(),
        }],
        stats: (0, 0),
    });
    NAT.store(true, std::sync::atomic::Ordering::Release);
}

/// Adds an Ethernet interface `name` with `mac`, up, without addresses
/// (eth0=switch; `ip addr add` gives it addresses). Called once at boot.
pub fn add_ether(name: &str, mac: [u8; 6]) {
    let mut t = ifaces();
    if t.iter().any(|i| i.name == name) {
        return;
    }
    let index = t.iter().map(|i| i.index).max().unwrap_or(0) + 1;
    t.push(Iface {
        index,
        name: name.into(),
        flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST,
        mtu: 1500,
        hwaddr: mac,
        hwtype: ARPHRD_ETHER,
        addrs: Vec::new(),
        stats: (0, 0),
    });
}

/// Whether `ip` is on one of interface `name`'s links (within the prefix
/// of one of its addresses) and the interface is up.
pub fn on_link(name: &str, ip: IpAddr) -> bool {
    ifaces()
        .iter()
        .filter(|i| i.name == name && i.up())
        .flat_map(|i| i.addrs.iter())
        .any(|a| a.addr.is_ipv4() == ip.is_ipv4() && in_prefix(ip, a.addr, a.prefix))
}

/// Counts `n` frames through interface `name` (for /proc/net/dev).
pub fn count(name: &str, n: usize) {
    if n == 0 {
        return;
    }
    if let Some(i) = ifaces().iter_mut().find(|i| i.name == name) {
        i.stats.0 += n as u64;
    }
}

/// Whether eth0=user was given.
pub fn nat_enabled() -> bool {
    NAT.load(std::sync::atomic::Ordering::Acquire)
}

/// Whether packets to `ip` (canonical, not local) leave through the
/// user-mode NAT: eth0=user is on, eth0 is up, and `ip` is IPv4.
pub fn nat_route(ip: IpAddr) -> bool {
    NAT.load(std::sync::atomic::Ordering::Acquire)
        && ip.is_ipv4()
        && ifaces().iter().any(|i| i.name == "eth0" && i.up())
}

/// The default gateway, when eth0=user is on and eth0 is up.
pub fn default_gateway() -> Option<(Ipv4Addr, i32)> {
    if !NAT.load(std::sync::atomic::Ordering::Acquire) {
        return None;
    }
    ifaces()
        .iter()
        .find(|i| i.name == "eth0" && i.up())
        .map(|i| (NAT_GATEWAY, i.index))
}

/// At most this many addresses per interface (guest-controlled memory).
pub const MAX_ADDRS: usize = 256;

/// lo's addresses (given when it comes up).
fn lo_addrs() -> Vec<IfAddr> {
    vec![
        IfAddr {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: 8,
            label: "lo".into(),
        },
        IfAddr {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
            label: "lo".into(),
        },
    ]
}

/// A namespace's first table: the initial namespace's lo is up (as a
/// container runtime leaves it); a new namespace's is down, bare.
fn new_table(net: u64) -> Vec<Iface> {
    let first = net == crate::task::ns::INIT_NET;
    vec![Iface {
        index: 1,
        name: "lo".into(),
        flags: if first {
            IFF_UP | IFF_LOOPBACK
        } else {
            IFF_LOOPBACK
        },
        mtu: 65536,
        hwaddr: [0; 6],
        hwtype: ARPHRD_LOOPBACK,
        addrs: if first { lo_addrs() } else { Vec::new() },
        stats: (0, 0),
    }]
}

fn table() -> &'static Mutex<std::collections::HashMap<u64, Vec<Iface>>> {
    static T: OnceLock<Mutex<std::collections::HashMap<u64, Vec<Iface>>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// The current network namespace's interface table, locked.
pub fn ifaces() -> crate::task::ns::PerNet<Vec<Iface>> {
    crate::task::ns::PerNet::lock(table(), new_table)
}

/// A network namespace is gone: its interfaces go too.
pub fn netns_gone(net: u64) {
    table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&net);
}

/// IFF_UP changes on `i`: a loopback coming up gets its addresses.
pub fn set_up(i: &mut Iface, up: bool) {
    i.flags = (i.flags & !IFF_UP) | if up { IFF_UP } else { 0 };
    if up && i.flags & IFF_LOOPBACK != 0 && i.addrs.is_empty() {
        i.addrs = lo_addrs();
    }
}

/// Takes an IPv4-mapped IPv6 address to IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn in_prefix(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32) as u32)
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128) as u32)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// Whether `ip` (canonical) is an address of this machine: one assigned to
/// an interface that is up, or (on lo) within lo's IPv4 prefix, as Linux's
/// local route 127.0.0.0/8 makes it.
pub fn is_local(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    ifaces().iter().filter(|i| i.up()).any(|i| {
        i.addrs.iter().any(|a| {
            a.addr == ip
                || (i.flags & IFF_LOOPBACK != 0 && ip.is_ipv4() && in_prefix(ip, a.addr, a.prefix))
        })
    })
}

/// Whether `ip` may be bound: a local address or, with IPv4 on lo, any
/// address of lo's prefix.
pub fn bindable(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    ip.is_unspecified() || is_local(ip)
}

/// The source address for a packet to local address `dst` (canonical):
/// the address itself when assigned, else the first of its family on lo.
pub fn source_for(dst: IpAddr) -> Option<IpAddr> {
    let dst = canonical(dst);
    let t = ifaces();
    let up = || t.iter().filter(|i| i.up());
    if up().any(|i| i.addrs.iter().any(|a| a.addr == dst)) {
        return Some(dst);
    }
    let on_link = up()
        .flat_map(|i| i.addrs.iter())
        .find(|a| a.addr.is_ipv4() == dst.is_ipv4() && in_prefix(dst, a.addr, a.prefix))
        .map(|a| a.addr);
    drop(t);
    // Beyond the links: through the NAT, from eth0's address.
    on_link.or_else(|| nat_route(dst).then_some(IpAddr::V4(NAT_GUEST)))
}

/// Counts a packet of `len` bytes through lo (for /proc/net/dev).
pub fn count_lo(len: usize) {
    if let Some(i) = ifaces().iter_mut().find(|i| i.flags & IFF_LOOPBACK != 0) {
        i.stats.0 += 1;
        i.stats.1 += len as u64;
    }
}

/// The interfaces' names (for /sys/class/net).
pub fn names() -> Vec<String> {
    ifaces().iter().map(|i| i.name.clone()).collect()
}

/// The files of /sys/class/net/IFACE.
pub const SYSFS_ATTRS: &[&str] = &[
    "address",
    "addr_len",
    "broadcast",
    "carrier",
    "flags",
    "ifindex",
    "iflink",
    "mtu",
    "operstate",
    "tx_queue_len",
    "type",
];

/// The text of /sys/class/net/NAME/ATTR, as Linux writes it.
pub fn sysfs_attr(name: &str, attr: &str) -> String {
    let t = ifaces();
    let Some(i) = t.iter().find(|i| i.name == name) else {
        return String::new();
    };
    let mac = |m: &[u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    match attr {
        "address" => format!("{}\n", mac(&i.hwaddr)),
        "broadcast" if i.flags & IFF_LOOPBACK == 0 => format!("{}\n", mac(&[0xff; 6])),
        "broadcast" => format!("{}\n", mac(&i.hwaddr)),
        "addr_len" => "6\n".into(),
        "carrier" => format!("{}\n", i.up() as u8),
        "flags" => format!("{:#x}\n", i.flags),
        "ifindex" | "iflink" => format!("{}\n", i.index),
        "mtu" => format!("{}\n", i.mtu),
        // lo reports "unknown" when up, as Linux's does.
        "operstate" => match (i.up(), i.flags & IFF_LOOPBACK != 0) {
            (true, true) => "unknown\n",
            (true, false) => "up\n",
            (false, _) => "down\n",
        }
        .into(),
        "tx_queue_len" => "1000\n".into(),
        "type" => format!("{}\n", i.hwtype),
        _ => String::new(),
    }
}

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const IFREQ_SIZE: usize = 40;
const IFNAMSIZ: usize = 16;

/// Whether `cmd` is an interface ioctl this module answers.
pub fn is_if_ioctl(cmd: u32) -> bool {
    matches!(
        cmd,
        SIOCGIFNAME
            | SIOCGIFCONF
            | SIOCGIFFLAGS
            | SIOCSIFFLAGS
            | SIOCGIFADDR
            | SIOCGIFBRDADDR
            | SIOCGIFNETMASK
            | SIOCGIFMTU
            | SIOCGIFHWADDR
            | SIOCGIFINDEX
    )
}

fn sockaddr_in(ip: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&(super::AF_INET as u16).to_le_bytes());
    b[4..8].copy_from_slice(&ip.octets());
    b
}

fn first_v4(i: &Iface) -> Option<&IfAddr> {
    i.addrs.iter().find(|a| a.addr.is_ipv4())
}

/// The interface ioctls, on any socket.
pub fn ioctl(ctx: &SyscallContext<'_>, cmd: u32, arg: u64) -> KResult<u64> {
    if cmd == SIOCGIFCONF {
        return ifconf(ctx, arg);
    }
    let mut req = [0u8; IFREQ_SIZE];
    ctx.mm().read_bytes(arg, &mut req)?;
    if cmd == SIOCGIFNAME {
        let idx = i32::from_le_bytes([req[16], req[17], req[18], req[19]]);
        let t = ifaces();
        let Some(i) = t.iter().find(|i| i.index == idx) else {
            return error!(ENODEV);
        };
        let mut name = [0u8; IFNAMSIZ];
        name[..i.name.len()].copy_from_slice(i.name.as_bytes());
        ctx.mm().write_bytes(arg, &name)?;
        return Ok(0);
    }
    let end = req[..IFNAMSIZ]
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(IFNAMSIZ);
    if end == IFNAMSIZ {
        // Linux terminates the name itself; an unterminated one cannot match.
        return error!(ENODEV);
    }
    let name = &req[..end];
    let mut t = ifaces();
    let Some(i) = t.iter_mut().find(|i| i.name.as_bytes() == name) else {
        return error!(ENODEV);
    };
    let mut u = [0u8; 24];
    match cmd {
        SIOCGIFFLAGS => u[..2].copy_from_slice(&(i.report_flags() as u16).to_le_bytes()),
        SIOCSIFFLAGS => {
            let f = u16::from_le_bytes([req[16], req[17]]) as u32;
            set_up(i, f & IFF_UP != 0);
            return Ok(0);
        }
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR => {
            let Some(a) = first_v4(i) else {
                return error!(EADDRNOTAVAIL);
            };
            let IpAddr::V4(v4) = a.addr else {
                return error!(EADDRNOTAVAIL);
            };
            let mask = if a.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - a.prefix.min(32) as u32)
            };
            let ip = match cmd {
                SIOCGIFADDR => v4,
                SIOCGIFNETMASK => Ipv4Addr::from(mask),
                _ => Ipv4Addr::from(u32::from(v4) | !mask),
            };
            u[..16].copy_from_slice(&sockaddr_in(ip));
        }
        SIOCGIFMTU => u[..4].copy_from_slice(&i.mtu.to_le_bytes()),
        SIOCGIFHWADDR => {
            u[..2].copy_from_slice(&i.hwtype.to_le_bytes());
            u[2..8].copy_from_slice(&i.hwaddr);
        }
        SIOCGIFINDEX => u[..4].copy_from_slice(&i.index.to_le_bytes()),
        _ => return error!(ENOTTY),
    }
    drop(t);
    ctx.mm().write_bytes(arg + IFNAMSIZ as u64, &u)?;
    Ok(0)
}

/// SIOCGIFCONF: one ifreq per IPv4 address of each up interface; a null
/// buffer asks for the length needed.
fn ifconf(ctx: &SyscallContext<'_>, arg: u64) -> KResult<u64> {
    let (len, buf): (i32, u64) = {
        let raw: [u64; 2] = ctx.mm().read_val(arg)?;
        (raw[0] as u32 as i32, raw[1])
    };
    let mut recs = Vec::new();
    for i in ifaces().iter().filter(|i| i.up()) {
        for a in i.addrs.iter() {
            if let IpAddr::V4(v4) = a.addr {
                let mut r = [0u8; IFREQ_SIZE];
                let n = a.label.len().min(IFNAMSIZ - 1);
                r[..n].copy_from_slice(&a.label.as_bytes()[..n]);
                r[16..32].copy_from_slice(&sockaddr_in(v4));
                recs.push(r);
            }
        }
    }
    let out_len = if buf == 0 {
        recs.len() * IFREQ_SIZE
    } else {
        let fit = (len.max(0) as usize / IFREQ_SIZE).min(recs.len());
        for (k, r) in recs.iter().take(fit).enumerate() {
            ctx.mm().write_bytes(buf + (k * IFREQ_SIZE) as u64, r)?;
        }
        fit * IFREQ_SIZE
    };
    ctx.mm().write_val(arg, &(out_len as i32))?;
    Ok(0)
}
