//! Instance identity and `ruml ctl`, the management console's client.
//!
//! At boot, [`start_instance`] creates `UML_DIR/UMID` with `pid` and the
//! `mconsole` socket (UML's layout, so Debian's `uml_mconsole UMID ...`
//! finds it), starts the kernel's mconsole server on it, and catches
//! SIGTERM/SIGINT to ruml (an orderly shutdown, see
//! `ruml_kernel::power`). `ruml ctl UMID COMMAND...` sends one command;
//! `ruml ctl list` shows the running instances.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ruml_host::mconsole::{self, InstanceDir};

/// The running instance's directory (None if it could not be made and no
/// umid= was asked for).
pub struct Instance(Option<InstanceDir>);

impl Instance {
    /// Removes `UML_DIR/UMID` (halt, reboot, a failed boot).
    pub fn remove(&self) {
        if let Some(d) = &self.0 {
            d.remove();
        }
    }

    /// The instance's name.
    pub fn umid(&self) -> Option<&str> {
        self.0.as_ref().map(|d| d.umid.as_str())
    }
}

/// Creates the instance directory and starts its management console.
/// A umid in use by a live instance ends ruml with a message; a stale
/// directory (its process gone) is replaced.
pub fn start_instance(uml_dir: Option<PathBuf>, umid: Option<String>) -> Instance {
    let asked = umid.is_some();
    let umid = umid.unwrap_or_else(mconsole::random_umid);
    let uml_dir = uml_dir.unwrap_or_else(mconsole::default_uml_dir);
    let dir = match InstanceDir::create(&uml_dir, &umid) {
        Ok((d, note)) => {
            if let Some(n) = note {
                ruml_kernel::log::info(&n);
            }
            d
        }
        Err(e) if asked => {
            eprintln!("ruml: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            // Not fatal when nobody asked for a name (a read-only HOME).
            ruml_kernel::log::info(&format!("no management console: {e}"));
            return Instance(None);
        }
    };
    ruml_kernel::log::info(&format!("umid: {umid} ({})", dir.dir.display()));
    match dir.server() {
        Ok(server) => {
            ruml_kernel::log::info(&format!(
                "mconsole (version {}) initialized on {}",
                mconsole::VERSION,
                dir.socket_path().display()
            ));
            let _ = std::thread::Builder::new()
                .name("mconsole".into())
                .spawn(move || ruml_kernel::mconsole::serve(server));
        }
        Err(e) => ruml_kernel::log::warn(&format!("no management console: {e}")),
    }
    if mconsole::catch_shutdown_signals().is_ok() {
        let _ = std::thread::Builder::new()
            .name("host-signals".into())
            .spawn(|| {
                while let Some((sig, n)) = mconsole::wait_shutdown_signal() {
                    ruml_kernel::power::host_signal(sig, n);
                }
            });
    }
    Instance(Some(dir))
}

const CTL_USAGE: &str = "usage: ruml ctl [uml_dir=DIR] UMID|SOCKET COMMAND [ARGS...]
       ruml ctl [uml_dir=DIR] list
COMMAND: version, help, halt, reboot, cad, sysrq KEY, stop, go, log TEXT,
proc FILE, config DEV[=VALUE], remove DEV (ubdN disks, conN consoles)
(UML's mconsole commands; `help` asks the instance).";

/// `ruml ctl ...`; returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let mut args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut uml_dir = mconsole::default_uml_dir();
    if let Some(d) = args.first().and_then(|a| a.strip_prefix("uml_dir=")) {
        uml_dir = PathBuf::from(d);
        args.remove(0);
    }
    match args.first().map(|s| s.as_str()) {
        None | Some("-h" | "--help") => {
            println!("{CTL_USAGE}");
            if args.is_empty() {
                2
            } else {
                0
            }
        }
        Some("list") if args.len() == 1 => list(&uml_dir),
        Some(target) => {
            if args.len() < 2 {
                eprintln!("ruml ctl: no command\n{CTL_USAGE}");
                return 2;
            }
            let sock = if target.contains('/') {
                PathBuf::from(target)
            } else {
                uml_dir.join(target).join("mconsole")
            };
            let cmd = args[1..].join(" ");
            match mconsole::client_request(&sock, cmd.as_bytes(), Duration::from_secs(30)) {
                Ok((false, text)) => {
                    print_text(&text);
                    0
                }
                Ok((true, text)) => {
                    eprintln!("ruml ctl: {}", String::from_utf8_lossy(&text).trim_end());
                    1
                }
                Err(e) => {
                    eprintln!("ruml ctl: {target}: {e}");
                    1
                }
            }
        }
    }
}

fn print_text(text: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text);
    if !text.is_empty() && !text.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
}

/// `ruml ctl list`: instances under `uml_dir` whose process is alive.
fn list(uml_dir: &Path) -> i32 {
    let Ok(rd) = std::fs::read_dir(uml_dir) else {
        return 0;
    };
    let mut rows: Vec<(String, i32)> = rd
        .flatten()
        .filter_map(|e| {
            let pid = mconsole::read_pid(&e.path())?;
            if !mconsole::pid_alive(pid) || !e.path().join("mconsole").exists() {
                return None;
            }
            Some((e.file_name().to_string_lossy().into_owned(), pid))
        })
        .collect();
    rows.sort();
    println!("{:<20} {:>8}", "UMID", "PID");
    for (u, p) in rows {
        println!("{u:<20} {p:>8}");
    }
    0
}
