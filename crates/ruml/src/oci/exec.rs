//! `exec`: a new process in a running container. The runtime connects to
//! the instance's `exec.sock` (in the state directory), sends the process
//! (JSON) with its stdin/stdout/stderr as SCM_RIGHTS descriptors, and gets
//! back `pid N` once the guest process runs, then `exit N` when it ends
//! (or `error MSG`). If the exec side goes away first, the guest process
//! is killed: nothing outlives the command that started it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The request: what `ruml_kernel::container::Spawn` needs, minus fds.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub no_new_privileges: bool,
    #[serde(default)]
    pub capabilities: Option<super::spec::Capabilities>,
    /// `--process`'s rlimits (checked): (resource, soft, hard); the
    /// others come from init.
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
}

const MAX_REQUEST: usize = 4 << 20;
/// Most descriptors `--preserve-fds` passes (one SCM_RIGHTS message
/// carries at most 253, stdio included).
pub const MAX_PRESERVED: usize = 250;

/// Binds `DIR/exec.sock` (relative to DIR, so long state paths fit).
pub fn listen(dir: &Path) -> Result<UnixListener, String> {
    let old = std::env::current_dir().ok();
    std::env::set_current_dir(dir).map_err(|e| format!("cannot enter {}: {e}", dir.display()))?;
    let l = UnixListener::bind("exec.sock").map_err(|e| format!("cannot bind exec.sock: {e}"));
    // Only the runtime's user may hand the container processes.
    if l.is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions("exec.sock", std::fs::Permissions::from_mode(0o600));
    }
    let _ = std::env::set_current_dir(old.as_deref().unwrap_or(Path::new("/")));
    l
}

/// The instance's accept loop (a thread).
pub fn serve(l: UnixListener) {
    for conn in l.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve_one(&conn) {
                let _ = writeln!(&conn, "error {}", e.replace('\n', " "));
            }
        });
    }
}

fn serve_one(conn: &UnixStream) -> Result<(), String> {
    let (len, fds) = recv_fds(conn)?;
    if len > MAX_REQUEST || fds.len() < 3 || fds.len() > 3 + MAX_PRESERVED {
        return Err("bad exec request".into());
    }
    let mut body = vec![0u8; len];
    (&*conn)
        .read_exact(&mut body)
        .map_err(|e| format!("exec request: {e}"))?;
    let r: Request = serde_json::from_slice(&body).map_err(|e| format!("exec request: {e}"))?;
    let pid = ruml_kernel::container::spawn(ruml_kernel::container::Spawn {
        path: r.path.into_bytes(),
        argv: r.args.into_iter().map(String::into_bytes).collect(),
        envp: r.env.into_iter().map(String::into_bytes).collect(),
        cwd: r.cwd.into_bytes(),
        user: (r.uid, r.gid, r.additional_gids),
        no_new_privs: r.no_new_privileges,
        caps: r.capabilities.as_ref().map(|c| c.sets()).transpose()?,
        rlimits: r.rlimits,
        stdio: fds,
    })?;
    let _ = writeln!(&*conn, "pid {pid}");
    // The exec side going away (EOF) kills the process.
    let exited = Arc::new(AtomicBool::new(false));
    let (e2, c2) = (exited.clone(), conn.try_clone().map_err(|e| e.to_string())?);
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while matches!((&c2).read(&mut b), Ok(n) if n > 0) {}
        if !e2.load(Ordering::SeqCst) {
            ruml_kernel::container::kill_spawned(pid);
        }
    });
    let code = ruml_kernel::container::wait_exit(pid).unwrap_or(255);
    exited.store(true, Ordering::SeqCst);
    let _ = writeln!(&*conn, "exit {code}");
    Ok(())
}

/// Receives the 4-byte request length with its descriptors.
fn recv_fds(conn: &UnixStream) -> Result<(usize, Vec<OwnedFd>), String> {
    let mut len = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: len.as_mut_ptr().cast(),
        iov_len: 4,
    };
    let mut cbuf = [0u64; 160];
    let mut fds = Vec::new();
    // SAFETY: msghdr points at our buffers, within their sizes; every
    // received descriptor is taken into an OwnedFd.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(i * 4).cast::<i32>());
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        if n != 4 {
            return Err("short exec request".into());
        }
    }
    Ok((u32::from_ne_bytes(len) as usize, fds))
}

/// The exec side: sends `req` with `fds` (stdin, stdout, stderr, then
/// any preserved descriptors: the guest's 0, 1, 2, 3...); returns the
/// connection after the guest pid came back.
pub fn request(
    dir: &Path,
    req: &Request,
    fds: &[i32],
) -> Result<(BufReader<UnixStream>, i32), String> {
    if fds.len() < 3 || fds.len() > 3 + MAX_PRESERVED {
        return Err("exec: bad descriptor count".into());
    }
    let bytes = 4 * fds.len() as u32;
    let old = std::env::current_dir().ok();
    std::env::set_current_dir(dir).map_err(|e| format!("cannot enter {}: {e}", dir.display()))?;
    let conn = UnixStream::connect("exec.sock");
    let _ = std::env::set_current_dir(old.as_deref().unwrap_or(Path::new("/")));
    let conn = conn.map_err(|e| format!("the container does not take exec requests: {e}"))?;
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    let mut len = (body.len() as u32).to_ne_bytes();
    // SAFETY: msghdr points at our buffers, within their sizes.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: len.as_mut_ptr().cast(),
            iov_len: 4,
        };
        let space = libc::CMSG_SPACE(bytes) as usize;
        let mut cbuf = vec![0u64; space.div_ceil(8)];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            bytes as usize,
        );
        if libc::sendmsg(conn.as_raw_fd(), &msg, 0) != 4 {
            return Err(format!("exec request: {}", std::io::Error::last_os_error()));
        }
    }
    (&conn)
        .write_all(&body)
        .map_err(|e| format!("exec request: {e}"))?;
    let mut r = BufReader::new(conn);
    let line = next_line(&mut r)?;
    match line.split_once(' ') {
        Some(("pid", p)) => Ok((r, p.parse().map_err(|_| format!("bad reply {line:?}"))?)),
        Some(("error", e)) => Err(e.to_string()),
        _ => Err(format!("bad reply {line:?}")),
    }
}

fn next_line(r: &mut BufReader<UnixStream>) -> Result<String, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Err("the container ended".into()),
        Ok(_) => Ok(line.trim_end().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits for `exit N`; returns N.
pub fn wait(r: &mut BufReader<UnixStream>) -> Result<i32, String> {
    let line = next_line(r)?;
    match line.split_once(' ') {
        Some(("exit", c)) => c.parse().map_err(|_| format!("bad reply {line:?}")),
        Some(("error", e)) => Err(e.to_string()),
        _ => Err(format!("bad reply {line:?}")),
    }
}
