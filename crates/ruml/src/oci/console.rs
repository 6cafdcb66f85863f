//! `process.terminal`: a host pseudo-terminal whose master goes to the
//! caller over `--console-socket` (SCM_RIGHTS, as runc sends it) and whose
//! slave becomes the instance's stdin/stdout/stderr, so ruml's console is
//! a terminal and the guest gets its own line discipline on it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The slave side, kept for the instance.
pub struct Pty {
    slave: OwnedFd,
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Opens a pty, sends its master over the unix socket at `sock`, and
/// returns the slave.
pub fn open_pty(sock: &Path, size: Option<(u16, u16)>) -> Result<Pty, String> {
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(os_err("cannot open a pty"));
        }
        let master = OwnedFd::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return Err(os_err("cannot unlock the pty"));
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
            return Err(os_err("ptsname"));
        }
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if s < 0 {
            return Err(os_err("cannot open the pty slave"));
        }
        let slave = OwnedFd::from_raw_fd(s);
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(m, libc::TIOCSWINSZ, &ws);
        }
        send_fd(sock, master.as_raw_fd())?;
        Ok(Pty { slave })
    }
}

/// Connects to `sock` and sends `fd` with the name "/dev/ptmx".
fn send_fd(sock: &Path, fd: i32) -> Result<(), String> {
    let path = sock.as_os_str().as_bytes();
    // SAFETY: sockaddr_un and msghdr are filled within their bounds; the
    // socket is closed on every path.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        if path.len() >= addr.sun_path.len() {
            return Err(format!(
                "console socket path {} is too long",
                sock.display()
            ));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(os_err("socket"));
        }
        let s = OwnedFd::from_raw_fd(s);
        if libc::connect(
            s.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as u32,
        ) != 0
        {
            return Err(os_err(&format!("cannot connect to {}", sock.display())));
        }
        let mut payload = *b"/dev/ptmx";
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        let space = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as usize;
        std::ptr::copy_nonoverlapping(
            (&fd as *const i32).cast::<u8>(),
            libc::CMSG_DATA(c),
            std::mem::size_of::<i32>(),
        );
        if libc::sendmsg(s.as_raw_fd(), &msg, 0) < 0 {
            return Err(os_err("cannot send the pty over the console socket"));
        }
    }
    Ok(())
}

impl Pty {
    /// The slave's descriptor (valid while the Pty lives).
    pub fn raw(&self) -> i32 {
        self.slave.as_raw_fd()
    }

    /// In the instance (after setsid): the slave becomes fds 0, 1, 2 and
    /// the controlling terminal.
    pub fn become_stdio(self) -> Result<(), String> {
        let s = self.slave.as_raw_fd();
        // SAFETY: plain system calls on our descriptors.
        unsafe {
            if libc::ioctl(s, libc::TIOCSCTTY, 0) != 0 {
                return Err(os_err("cannot make the pty the controlling terminal"));
            }
            for fd in 0..3 {
                if libc::dup2(s, fd) < 0 {
                    return Err(os_err("dup2"));
                }
            }
        }
        Ok(())
    }
}
