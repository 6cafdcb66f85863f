//! Small wrappers over libc for the rest of the crate.

use crate::HostError;

/// The host's errno after a failed call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turns a libc return value into a Result, naming the call on failure.
pub fn check(ret: libc::c_long, what: &str) -> Result<libc::c_long, HostError> {
    if ret < 0 {
        Err(HostError::last(what))
    } else {
        Ok(ret)
    }
}

/// Retries a call interrupted by a host signal.
pub fn retry<F: FnMut() -> libc::c_long>(mut f: F) -> libc::c_long {
    loop {
        let r = f();
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return r;
    }
}
