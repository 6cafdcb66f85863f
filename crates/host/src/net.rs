//! Host TCP connections for the kernel's user-mode NAT (`eth0=user`): the
//! kernel opens them on a guest's behalf for outbound flows; the guest's
//! socket stays a kernel object. Blocking calls; each connection's reads
//! are made by one kernel thread.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// One outbound TCP connection on the host.
pub struct HostTcp(TcpStream);

impl HostTcp {
    /// Connects to `addr`, waiting at most `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<HostTcp> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_nodelay(true)?;
        Ok(HostTcp(s))
    }

    /// A second handle on the same connection (for the reader thread).
    pub fn try_clone(&self) -> std::io::Result<HostTcp> {
        self.0.try_clone().map(HostTcp)
    }

    /// Reads what is there (blocking); 0 at end of stream.
    pub fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.0).read(buf)
    }

    /// Writes all of `buf` (blocking).
    pub fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        (&self.0).write_all(buf)
    }

    /// Ends the sending side (FIN to the host peer).
    pub fn shutdown_write(&self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }

    /// Ends both sides; a blocked read returns.
    pub fn shutdown_both(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// A host TCP listener for port forwarding into the guest (`hostfwd=`).
pub struct HostListener(std::net::TcpListener);

impl HostListener {
    /// Listens on `addr`.
    pub fn bind(addr: SocketAddr) -> std::io::Result<HostListener> {
        std::net::TcpListener::bind(addr).map(HostListener)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Waits for the next connection: it and the peer's address.
    pub fn accept(&self) -> std::io::Result<(HostTcp, SocketAddr)> {
        let (s, a) = self.0.accept()?;
        let _ = s.set_nodelay(true);
        Ok((HostTcp(s), a))
    }
}

/// A host UDP socket for the NAT's outbound datagrams of one guest socket.
pub struct HostUdp(std::net::UdpSocket);

impl HostUdp {
    /// A socket on an ephemeral port of every host address.
    pub fn bind_any() -> std::io::Result<HostUdp> {
        std::net::UdpSocket::bind(("0.0.0.0", 0)).map(HostUdp)
    }

    /// A socket on `addr` (a UDP port forward's host side).
    pub fn bind(addr: SocketAddr) -> std::io::Result<HostUdp> {
        std::net::UdpSocket::bind(addr).map(HostUdp)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    pub fn try_clone(&self) -> std::io::Result<HostUdp> {
        self.0.try_clone().map(HostUdp)
    }

    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.0.send_to(buf, to)
    }

    /// Waits for a datagram: its length and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf)
    }

    /// Wakes a thread blocked in recv_from (with an empty datagram to
    /// itself), so that it can notice it should stop.
    pub fn wake(&self) {
        if let Ok(a) = self.0.local_addr() {
            let _ = self
                .0
                .send_to(&[], SocketAddr::new([127, 0, 0, 1].into(), a.port()));
        }
    }
}

/// The first nameserver of the host's /etc/resolv.conf, port 53.
pub fn host_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next())
            .flatten()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}
