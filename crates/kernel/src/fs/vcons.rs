//! Consoles on host channels: the virtual consoles /dev/tty1... (`conN=`,
//! or `con=` for every console not named) and con0 itself when it is a
//! host pty (`con0=pts`). (con0 on `fd:` or `null` is host descriptors 0
//! and 1: see [`crate::fs::console`].)
//!
//! As UML, a console's channel is opened when the guest first opens the
//! terminal (a `pts` channel logs the host pty it got: "Virtual console 1
//! assigned device '/dev/pts/5'"), and stays open for the instance's life.
//! An unconfigured console gives ENODEV, as UML's unconfigured lines.
//! Output goes through the channel's bounded queue (see
//! [`ruml_host::conchan`]): a host pty nobody reads stalls that console's
//! writers only, never the kernel; input is fed to the terminal's line
//! discipline by the channel's reader thread.
//!
//! Locking: `TTYS` is held while a console's channel is opened (the first
//! open), so two opens never make two channels; never while a terminal is
//! used.

use std::sync::{Arc, Mutex};

use ruml_host::conchan::{Chan, Channel, Input};

use crate::errno::KResult;
use crate::fs::pty::TtyFile;
use crate::fs::tty::{Kind, Termios, Tty};
use crate::fs::types::oflags::{O_ACCMODE, O_NOCTTY, O_WRONLY};
use crate::fs::vfs::FileOps;

/// Consoles 0 (/dev/console, /dev/tty0) to MAX_CONSOLES - 1 (/dev/tty15).
pub const MAX_CONSOLES: u32 = 16;

const NONE: Option<(Chan, Chan)> = None;
static SPECS: Mutex<[Option<(Chan, Chan)>; MAX_CONSOLES as usize]> =
    Mutex::new([NONE; MAX_CONSOLES as usize]);
/// An opened console: (N, terminal, the host pty's name for a `pts`
/// channel).
type Opened = (u32, Arc<Tty>, Option<String>);

/// The consoles opened so far.
static TTYS: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

/// Sets console `n`'s channel (the command line's `conN=`/`con=`, before
/// boot). Console 0 is served here only on a `pts` channel.
pub fn configure(n: u32, input: Chan, output: Chan) {
    if let Some(s) = SPECS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(n as usize)
    {
        *s = Some((input, output));
    }
}

fn spec(n: u32) -> Option<(Chan, Chan)> {
    SPECS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(n as usize)
        .copied()
        .flatten()
}

/// What the management console's `config conN` answers, as UML's
/// line_get_config: `none` for a console with no channel, the channel as
/// configured (`pts`, `fd:0,fd:1`, `null`) while the guest has not opened
/// it, and for an open host pty its name (`pts:/dev/pts/5`). None: no such
/// console.
pub fn config_string(n: u32) -> Option<String> {
    if n >= MAX_CONSOLES {
        return None;
    }
    let ttys = TTYS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, Some(name))) = ttys.iter().find(|(i, _, _)| *i == n) {
        return Some(format!("pts:{name}"));
    }
    Some(match spec(n) {
        Some((i, o)) => ruml_host::conchan::describe(i, o),
        None => "none".into(),
    })
}

/// The management console's `config conN=CHANNEL` (`none`: no channel):
/// console N (1 and up) takes the new channel, opened when the guest next
/// opens /dev/ttyN. As UML refuses to change an open line, ruml refuses
/// once the guest has opened the console (its channel then serves the
/// terminal for the instance's life), and con0 keeps the channel it
/// booted with.
pub fn reconfigure(n: u32, chan: Option<(Chan, Chan)>) -> Result<(), String> {
    if n == 0 {
        return Err(
            "con0's channel is set at boot (con0=): ruml cannot change it while the instance runs"
                .into(),
        );
    }
    if n >= MAX_CONSOLES {
        return Err(format!(
            "Invalid device number - must be between 0 and {}",
            MAX_CONSOLES - 1
        ));
    }
    // TTYS first, as terminal() takes them: no first open slips between
    // the check and the change.
    let ttys = TTYS.lock().unwrap_or_else(|p| p.into_inner());
    if ttys.iter().any(|(i, _, _)| *i == n) {
        return Err(format!(
            "Device is already open: the guest has opened /dev/tty{n}, and ruml cannot change \
             the channel of a console once it is in use"
        ));
    }
    if let Some(s) = SPECS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(n as usize)
    {
        *s = chan;
    }
    drop(ttys);
    match chan {
        Some((i, o)) => crate::log::info(&format!(
            "console {n}: channel {}",
            ruml_host::conchan::describe(i, o)
        )),
        None => crate::log::info(&format!("console {n}: no channel")),
    }
    Ok(())
}

/// Whether con0 is a host pty (its terminal then comes from [`terminal`]).
pub fn con0_on_channel() -> bool {
    matches!(spec(0), Some((Chan::Pts, _)))
}

/// Console `n`'s terminal, opening its channel on first use. ENODEV for
/// a console with no channel or whose channel cannot be opened.
pub fn terminal(n: u32) -> KResult<Arc<Tty>> {
    let mut ttys = TTYS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, t, _)) = ttys.iter().find(|(i, _, _)| *i == n) {
        return Ok(t.clone());
    }
    let Some((input, output)) = spec(n) else {
        return crate::error!(ENODEV);
    };
    if n == 0 && input != Chan::Pts {
        return crate::error!(ENODEV);
    }
    let chan = Channel::open(input, output).map_err(|e| {
        crate::log::warn(&format!("console {n}: {e}"));
        crate::errno!(ENODEV)
    })?;
    if let Some(name) = chan.pts_name() {
        crate::log::info(&format!("Virtual console {n} assigned device '{name}'"));
    }
    let ws = chan.winsize().unwrap_or([24, 80, 0, 0]);
    let kind = if n == 0 { Kind::Console } else { Kind::Vc(n) };
    let tty = Tty::on_channel(kind, Termios::standard(), ws, chan.clone());
    let weak = Arc::downgrade(&tty);
    let started = chan.start_input(Box::new(move |ev| {
        let Some(t) = weak.upgrade() else {
            return;
        };
        match ev {
            Input::Data(d) => t.receive(d),
            Input::WinSize(w) => t.set_winsize(w),
            Input::Eof => t.hangup(),
        }
    }));
    if !started {
        crate::log::warn(&format!("console {n}: cannot start its reader thread"));
    }
    ttys.push((n, tty.clone(), chan.pts_name().map(str::to_string)));
    Ok(tty)
}

/// At halt: lets every console's queued output reach the host (a console
/// whose host side takes nothing for a fifth of a second is given up).
pub fn flush_all() {
    let ttys: Vec<Arc<Tty>> = TTYS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, t, _)| t.clone())
        .collect();
    for t in ttys {
        t.flush_output(std::time::Duration::from_millis(200));
    }
}

/// open(2) of /dev/ttyN (N >= 1) by process `tgid`: a session leader
/// without a controlling terminal acquires it (unless O_NOCTTY), as
/// Linux's tty_open does for every terminal but /dev/console and tty0.
pub fn open(n: u32, flags: u32, tgid: i32) -> KResult<Arc<dyn FileOps>> {
    let tty = terminal(n)?;
    if flags & O_NOCTTY == 0 && flags & O_ACCMODE != O_WRONLY && tgid > 0 {
        tty.maybe_acquire(tgid);
    }
    Ok(Arc::new(TtyFile {
        tty,
        out_fd: 1,
        counted: false,
    }))
}
