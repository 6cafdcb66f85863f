//! The management console: UML's mconsole commands, served on the
//! instance's `UMID/mconsole` socket (the socket and the wire format are
//! `ruml_host::mconsole`'s). One host thread, [`serve`], answers requests
//! one at a time, as UML's mconsole driver does; Debian's `uml_mconsole`
//! and `ruml ctl` are its clients.
//!
//! Commands: `version`, `help`, `halt`, `reboot`, `cad`, `sysrq KEY`,
//! `stop`, `go`, `log TEXT`, `proc PATH`, `config`, `remove`. Every
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
    config <dev>=<config> - Add a new device to UML (ruml: not supported)
    config <dev> - Query the configuration of a device (ruml: not supported)
    remove <dev> - Remove a device from UML (ruml: not supported)
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
        "config" | "remove" => err(format!(
            "{verb}: ruml cannot hot-plug or query devices from the management console; \
             give disks (ubdN=) and the network (eth0=) on the command line at boot"
        )),
        "" => err("Unknown command"),
        _ => err(format!(
            "Unknown command {verb:?}: `help` lists the commands"
        )),
    }
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
