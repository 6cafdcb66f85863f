//! Where the guest's console is on the host (`con0=` / `con=`), as UML's
//! channels: `fd:N` (a host descriptor ruml inherited) and `null` (nothing
//! in, output discarded). (`pts`, a host pseudo-terminal, is not done yet.)
//! The console code always talks to host
//! descriptors 0 (input) and 1 (output); [`attach`] puts the chosen
//! channels there before boot, so everything downstream — raw mode when
//! the input is a terminal, the line discipline, restoring the terminal —
//! works the same on every channel.

/// One direction of a console channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chan {
    /// A host descriptor.
    Fd(i32),
    /// /dev/null.
    Null,
}

impl Chan {
    fn parse(s: &str) -> Option<Chan> {
        match s {
            "null" => Some(Chan::Null),
            _ => s
                .strip_prefix("fd:")?
                .parse()
                .ok()
                .filter(|&n: &i32| n >= 0)
                .map(Chan::Fd),
        }
    }
}

/// Parses `IN[,OUT]` (one channel for both directions when OUT is
/// missing), as UML's `con0=` value.
pub fn parse(v: &str) -> Option<(Chan, Chan)> {
    let (i, o) = match v.split_once(',') {
        Some((i, o)) => (Chan::parse(i)?, Chan::parse(o)?),
        None => {
            let c = Chan::parse(v)?;
            (c, c)
        }
    };
    Some((i, o))
}

fn dup_onto(from: i32, to: i32) -> Result<(), String> {
    if from == to {
        return Ok(());
    }
    // SAFETY: dup2 of descriptors we own or inherited.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(format!(
            "cannot use host fd {from} for the console: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn check_open(fd: i32) -> Result<(), String> {
    // SAFETY: F_GETFD only asks about the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("con0=fd:{fd}: host fd {fd} is not open"));
    }
    Ok(())
}

/// Puts the console's channels on host fds 0 and 1.
pub fn attach(input: Chan, output: Chan) -> Result<(), String> {
    let open_null = || -> Result<i32, String> {
        // SAFETY: open of a constant path.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "cannot open /dev/null: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(fd)
    };
    // Resolve both before moving anything (fd:1,fd:0 swaps them).
    let src = |c: Chan| -> Result<i32, String> {
        match c {
            Chan::Fd(n) => {
                check_open(n)?;
                // SAFETY: F_DUPFD_CLOEXEC of an open descriptor.
                let d = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
                if d < 0 {
                    return Err(format!("con0=fd:{n}: {}", std::io::Error::last_os_error()));
                }
                Ok(d)
            }
            Chan::Null => open_null(),
        }
    };
    let (i, o) = (src(input)?, src(output)?);
    dup_onto(i, 0)?;
    dup_onto(o, 1)?;
    // SAFETY: closing the spare copies.
    unsafe {
        libc::close(i);
        libc::close(o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_specs() {
        assert_eq!(parse("fd:0,fd:1"), Some((Chan::Fd(0), Chan::Fd(1))));
        assert_eq!(parse("null"), Some((Chan::Null, Chan::Null)));
        assert_eq!(parse("fd:3"), Some((Chan::Fd(3), Chan::Fd(3))));
        assert_eq!(parse("pts"), None);
        assert_eq!(parse("fd:-1"), None);
        assert_eq!(parse("xterm"), None);
        assert_eq!(parse("port:9000"), None);
    }
}
