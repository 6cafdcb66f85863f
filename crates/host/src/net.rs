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
