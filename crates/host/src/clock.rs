//! The host's clocks.

/// Reads a host clock (CLOCK_REALTIME, CLOCK_MONOTONIC, ...): (sec, nsec).
/// An id the host rejects gives the host's errno.
pub fn gettime(clock_id: i32) -> Result<(i64, i64), i32> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(clock_id, &mut ts) };
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok((ts.tv_sec, ts.tv_nsec))
    }
}

/// The resolution of a host clock.
pub fn getres(clock_id: i32) -> Result<(i64, i64), i32> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let r = unsafe { libc::clock_getres(clock_id, &mut ts) };
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok((ts.tv_sec, ts.tv_nsec))
    }
}

/// Fills `buf` with random bytes from the host's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of buf.
        let r = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if r > 0 {
            done += r as usize;
        }
    }
}

/// The host's node name, for the guest's default hostname.
pub fn host_nodename() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid utsname.
    if unsafe { libc::uname(&mut u) } < 0 {
        return "ruml".into();
    }
    let bytes: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The host's /proc/cpuinfo: the processors the guest runs on.
pub fn host_cpuinfo() -> String {
    std::fs::read_to_string("/proc/cpuinfo").unwrap_or_else(|_| "processor\t: 0\n\n".to_string())
}
