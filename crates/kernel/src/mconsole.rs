//! The management console: UML's mconsole commands, served on the
//! instance's `UMID/mconsole` socket (the socket and the wire format are
//! `ruml_host::mconsole`'s). One host thread, [`serve`], answers requests
//! one at a time, as UML's mconsole driver does; Debian's `uml_mconsole`
//! and `ruml ctl` are its clients.
//!
//! Commands: `version`, `help`, `halt`, `reboot`, `cad`, `sysrq KEY`,
//! `stop`, `go`, `log TEXT`, `proc PATH`, `config` and `remove` (ubd
//! disks hot-plugged and unplugged, console channels queried and set,
//! as UML's `mconsole_config`/`mconsole_remove` with its replies). Every
//! request gets a reply; a malformed one (no magic, a wrong version, a
//! length field that disagrees with the datagram, more than 511 bytes of
//! data, an unknown command) gets an error reply and does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ruml_host::mconsole::{encode_reply, parse_request, Request, Server};

use crate::fs::vfs::{Caller, Mount, Path};
use crate::task::ExitStatus;

/// Whether `stop` froze the guest (until `go`).
static STOPPED: AtomicBool = AtomicBool::new(false);

/// The most `proc PATH` returns (bytes).
const PROC_MAX: usize = 256 << 10;

const HELP: &str = "Commands:
    version - Get kernel version
    help - Print this message
    halt - Halt UML
    reboot - Reboot UML
    config <dev>=<config> - Add a new device to UML (ubdN=FILE, conN=CHANNEL)
    config <dev> - Query the configuration of a device (ubdN, conN)
    remove <dev> - Remove a device from UML (ubdN, conN)
    sysrq <letter> - Performs the SysRq action controlled by the letter
    cad - invoke the Ctrl-Alt-Del handler
    stop - pause the UML; it will do nothing until it receives a 'go'
    go - continue the UML after a 'stop'
    log <string> - make UML enter <string> into the kernel log
    proc <file> - returns the contents of the UML's /proc/<file>
";

/// What one command answers: (error?, text), and an action to take once
/// the reply is sent (halting ends the process, so it must come after).
struct Answer {
    err: bool,
    text: Vec<u8>,
    then: Option<fn()>,
}

fn ok(text: impl Into<Vec<u8>>) -> Answer {
    Answer {
        err: false,
        text: text.into(),
        then: None,
    }
}

fn err(text: impl Into<Vec<u8>>) -> Answer {
    Answer {
        err: true,
        text: text.into(),
        then: None,
    }
}

/// Serves the management socket until the instance ends.
pub fn serve(server: Server) {
    loop {
        let Ok(d) = server.recv() else {
            return;
        };
        match parse_request(&d.bytes) {
            Request::Version0 => server.reply_raw(
                &d.from,
                b"ERR Version 0 mconsole clients are not supported by this driver\0",
            ),
            Request::Bad(why) => server.reply(&d.from, &encode_reply(why.as_bytes(), true, false)),
            Request::Command(cmd) => {
                let a = command(&cmd);
                server.reply(&d.from, &encode_reply(&a.text, a.err, false));
                if let Some(f) = a.then {
                    f();
                }
            }
        }
    }
}

/// Runs one command line.
fn command(line: &[u8]) -> Answer {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_start();
    let (verb, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line.trim_end(), ""),
    };
    if !crate::kernel_booted() && !matches!(verb, "help" | "version") {
        return err("the instance is still booting");
    }
    match verb {
        "version" => {
            let host = if crate::kernel_booted() {
                String::from_utf8_lossy(
                    &crate::kernel()
                        .hostname
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()),
                )
                .into_owned()
            } else {
                "ruml".to_string()
            };
            ok(format!(
                "Linux {host} {} {} x86_64",
                crate::task::syscalls::UTS_RELEASE,
                crate::task::syscalls::UTS_VERSION
            ))
        }
        "help" => ok(HELP),
        "halt" => {
            crate::log::info("mconsole: halt");
            Answer {
                then: Some(|| {
                    crate::log::info("System halted.");
                    crate::task::exit::halt_instance(ExitStatus::Exited(0))
                }),
                ..ok("")
            }
        }
        "reboot" => {
            crate::log::info("mconsole: reboot");
            Answer {
                then: Some(|| {
                    crate::log::info("Restarting system.");
                    crate::task::reboot::request_restart();
                    crate::task::exit::halt_instance(ExitStatus::Exited(0))
                }),
                ..ok("")
            }
        }
        "cad" => {
            let what = crate::power::ctrl_alt_del();
            crate::log::info(&format!("mconsole: ctrl-alt-del: {what}"));
            ok("")
        }
        "sysrq" => {
            let key = rest.as_bytes();
            if key.is_empty() {
                return err("sysrq needs a key letter (sysrq h lists them)");
            }
            match crate::power::sysrq(key[0]) {
                Ok(t) => ok(t),
                Err(e) => err(e),
            }
        }
        "stop" => {
            if STOPPED.swap(true, Ordering::SeqCst) {
                return err("Already stopped");
            }
            if crate::container::freeze_guest().is_none() {
                STOPPED.store(false, Ordering::SeqCst);
                return err("the instance is still booting");
            }
            crate::log::info("mconsole: stopped (every guest thread is held until `go`)");
            ok("stopped")
        }
        "go" => {
            if !STOPPED.swap(false, Ordering::SeqCst) {
                return err("Not stopped");
            }
            crate::container::thaw();
            crate::log::info("mconsole: go");
            ok("")
        }
        "log" => {
            crate::log::kprint(rest);
            ok("")
        }
        "proc" => match read_proc(rest.as_bytes()) {
            Ok(b) => ok(b),
            Err(e) => err(e),
        },
        "config" => config(rest),
        "remove" => remove(rest),
        "" => err("Unknown command"),
        _ => err(format!(
            "Unknown command {verb:?}: `help` lists the commands"
        )),
    }
}

/// A device number after a driver's name (`ubd1`, `ubdb` for ubd, `con3`),
/// the whole of `s`. None: not a number.
fn unit(s: &str, letters: bool) -> Option<u32> {
    match s.as_bytes() {
        [c @ b'a'..=b'z'] if letters => Some(u32::from(c - b'a')),
        b if !b.is_empty() && b.len() <= 3 && b.iter().all(u8::is_ascii_digit) => s.parse().ok(),
        _ => None,
    }
}

fn out_of_range(max: u32) -> Answer {
    err(format!(
        "Invalid device number - must be between 0 and {}",
        max - 1
    ))
}

/// `config DEV=CONFIG` (add or set a device) and `config DEV` (what it
/// is), for the devices ruml can change at run time: ubd disks and
/// consoles.
fn config(arg: &str) -> Answer {
    use crate::block::ubd;
    use crate::fs::vcons;
    let (dev, value) = match arg.split_once('=') {
        Some((d, v)) => (d, Some(v)),
        None => (arg, None),
    };
    if let Some(n) = dev.strip_prefix("ubd") {
        let Some(value) = value else {
            return match unit(n, true).and_then(ubd::config_string) {
                Some(s) => ok(s),
                None => err("ubd_get_config : device number out of range"),
            };
        };
        return match ubd::UbdSpec::parse(dev, value) {
            Ok(Some(spec)) => match ubd::attach(&spec) {
                Ok(()) => {
                    crate::log::info(&format!("mconsole: config {dev}={value}"));
                    ok("")
                }
                Err(e) => err(e),
            },
            Ok(None) => err("Bad configuration option: ubd needs a number, as ubd1=FILE"),
            Err(e) => err(e),
        };
    }
    if let Some(n) = dev.strip_prefix("con") {
        let Some(n) = unit(n, false) else {
            return err("Couldn't parse device number");
        };
        if n >= vcons::MAX_CONSOLES {
            return out_of_range(vcons::MAX_CONSOLES);
        }
        let Some(value) = value else {
            return match vcons::config_string(n) {
                Some(s) => ok(s),
                None => out_of_range(vcons::MAX_CONSOLES),
            };
        };
        let chan = if value == "none" {
            None
        } else {
            match ruml_host::conchan::parse(value) {
                Some(c) => Some(c),
                None => {
                    return err(format!(
                        "bad channel {value:?}: give fd:N[,fd:M], null, pts or none"
                    ))
                }
            }
        };
        return match vcons::reconfigure(n, chan) {
            Ok(()) => ok(""),
            Err(e) => err(e),
        };
    }
    if dev.starts_with("eth") || dev.starts_with("mem") || dev.starts_with("ssl") {
        return err(format!(
            "Bad configuration option: ruml cannot change {dev} at run time \
             (only ubdN and conN); give it on the command line at boot"
        ));
    }
    err("Bad configuration option")
}

/// `remove DEV`: unplugs ubd disk N (refused while open or mounted, as
/// UML's "Device is currently open"), or takes console N's channel away
/// (as `config conN=none`).
fn remove(arg: &str) -> Answer {
    use crate::block::ubd;
    if let Some(n) = arg.strip_prefix("ubd") {
        let Some(n) = unit(n, true) else {
            return err("Couldn't parse device number");
        };
        if n >= ubd::MAX_DEV {
            return out_of_range(ubd::MAX_DEV);
        }
        return match ubd::detach(n) {
            Ok(()) => {
                crate::log::info(&format!("mconsole: remove {arg}"));
                ok("")
            }
            Err(ubd::DetachError::NoDevice) => err("Device doesn't exist"),
            Err(ubd::DetachError::Busy) => err(
                "Device is currently open (ruml: a filesystem on it is mounted or a \
                 process has it open)",
            ),
        };
    }
    if let Some(n) = arg.strip_prefix("con") {
        let Some(n) = unit(n, false) else {
            return err("Couldn't parse device number");
        };
        return match crate::fs::vcons::reconfigure(n, None) {
            Ok(()) => ok(""),
            Err(e) => err(e),
        };
    }
    err("Bad remove option")
}

/// `proc PATH`: the contents of the guest's /proc/PATH, read from a
/// procfs instance of the kernel's own (so it works whether or not the
/// guest mounted /proc), as the guest's root would read it.
fn read_proc(path: &[u8]) -> Result<Vec<u8>, String> {
    let show = String::from_utf8_lossy(path).into_owned();
    if path.is_empty() {
        return Err("proc needs a file name, like `proc meminfo`".into());
    }
    let init = crate::kernel()
        .tasks
        .group(1)
        .and_then(|g| g.threads().first().cloned())
        .ok_or("init is gone")?;
    let fs = init.fs();
    let mnt = Mount::new("proc", crate::fs::procfs::new_procfs(), None, true, true);
    let root = Path {
        dentry: mnt.root.clone(),
        mnt: Arc::clone(&mnt),
    };
    let w = crate::fs::namei::Walker {
        ns: &fs.ns,
        root: root.clone(),
        caller: Caller::kernel(),
    };
    let f = crate::fs::open_at(&w, &fs, &root, path, crate::fs::types::oflags::O_RDONLY, 0)
        .map_err(|e| format!("/proc/{show}: {e}"))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    while out.len() < PROC_MAX {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("/proc/{show}: {e}")),
        }
    }
    out.truncate(PROC_MAX);
    Ok(out)
}
