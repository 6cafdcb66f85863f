use std::fmt;

/// A failure of the host: what ruml tried, and the host's errno.
#[derive(Debug, Clone)]
pub struct HostError {
    pub what: String,
    pub errno: i32,
}

impl HostError {
    pub fn new(what: impl Into<String>, errno: i32) -> HostError {
        HostError {
            what: what.into(),
            errno,
        }
    }

    /// The error for the last failed libc call.
    pub fn last(what: impl Into<String>) -> HostError {
        HostError::new(
            what,
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        )
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            write!(f, "{}", self.what)
        } else {
            write!(
                f,
                "{}: {}",
                self.what,
                std::io::Error::from_raw_os_error(self.errno)
            )
        }
    }
}

impl std::error::Error for HostError {}
