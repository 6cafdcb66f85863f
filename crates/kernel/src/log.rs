//! The kernel log: dmesg-style lines with a timestamp since boot, kept in
//! the kernel's message ring ([`crate::kmsg`], what the guest's `dmesg`
//! reads) and shown on the host's stderr when their level is below the
//! console level (`quiet` hides all but warnings).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static QUIET: AtomicBool = AtomicBool::new(false);
static BOOT: OnceLock<Instant> = OnceLock::new();

/// Marks the start of boot; timestamps count from here.
pub fn start(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    crate::kmsg::set_quiet(quiet);
    BOOT.get_or_init(Instant::now);
}

fn stamp() -> String {
    let t = BOOT.get_or_init(Instant::now).elapsed();
    format!("[{:5}.{:06}]", t.as_secs(), t.subsec_micros())
}

/// Time since boot.
pub fn since_boot() -> std::time::Duration {
    BOOT.get_or_init(Instant::now).elapsed()
}

/// The end of a log line: with the host terminal in raw mode, a bare
/// newline would not return to column 0.
fn eol() -> &'static str {
    if ruml_host::console::is_raw() {
        "\r\n"
    } else {
        "\n"
    }
}

/// A boot-log line, as dmesg prints it; hidden by `quiet`.
pub fn info(msg: &str) {
    let stamp = stamp();
    crate::kmsg::record(6, &stamp, msg);
    if crate::kmsg::on_console(6) {
        eprint!("{} {}{}", stamp, msg, eol());
    }
}

/// A debug line: kept in the message ring (the guest's dmesg shows it)
/// but on the host's console only at console log level 8.
pub fn debug(msg: &str) {
    let stamp = stamp();
    crate::kmsg::record(7, &stamp, msg);
    if crate::kmsg::on_console(7) {
        eprint!("{} {}{}", stamp, msg, eol());
    }
}

/// A line the user should see even with `quiet`: a guest killed by a
/// kernel-side problem, an unimplemented call.
pub fn kprint(msg: &str) {
    let stamp = stamp();
    crate::kmsg::record(5, &stamp, msg);
    if crate::kmsg::on_console(5) || std::env::var_os("RUML_VERBOSE").is_some() {
        eprint!("{} {}{}", stamp, msg, eol());
    }
}

/// A line always shown: the guest or the instance lost something.
pub fn warn(msg: &str) {
    let stamp = stamp();
    let msg = format!("ruml: {msg}");
    crate::kmsg::record(3, &stamp, &msg);
    eprint!("{} {}{}", stamp, msg, eol());
}

/// `RUML_STRACE=1`: log every system call and its result.
pub fn strace_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RUML_STRACE").is_some())
}
