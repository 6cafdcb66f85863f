//! The kernel's message ring and syslog(2): every kernel log line (see
//! [`crate::log`]) is kept in a bounded ring as Linux's printk buffer
//! keeps it, whether or not it was shown on the console, so `dmesg` in the
//! guest reads the boot log and the warnings. The console log level
//! (syslog's CONSOLE_LEVEL/OFF/ON) decides which lines also reach the
//! host's stderr; `quiet` starts it at 4, as Linux's `quiet` does.
//!
//! Locking: one mutex over the ring, held only to append or copy out; a
//! reader blocked in SYSLOG_ACTION_READ waits on the kernel's wait queue
//! outside it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

use crate::errno::KResult;
use crate::error;
use crate::fs::poll::Waiters;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

/// Bytes of formatted text the ring keeps (Linux's default log_buf_len).
pub const LOG_BUF_LEN: usize = 128 * 1024;

syscall_table! { pub fn kmsg_table;
    SYSLOG => sys_syslog(action: i32, buf: UserAddr, len: i32),
}

struct Record {
    seq: u64,
    /// "<L>[    s.micros] msg\n", as syslog(2) returns it.
    text: String,
}

struct Ring {
    records: VecDeque<Record>,
    bytes: usize,
    next_seq: u64,
    /// The first record READ (2) has not consumed.
    read_seq: u64,
    /// The first record READ_ALL shows (CLEAR moves it).
    clear_seq: u64,
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    records: VecDeque::new(),
    bytes: 0,
    next_seq: 0,
    read_seq: 0,
    clear_seq: 0,
});

/// console_loglevel: lines with a level below it reach the console.
static CONSOLE_LEVEL: AtomicI32 = AtomicI32::new(7);
/// The level CONSOLE_ON restores.
static SAVED_LEVEL: AtomicI32 = AtomicI32::new(-1);
/// kernel.dmesg_restrict: reading the log needs CAP_SYSLOG (Debian's
/// default, 1).
pub static DMESG_RESTRICT: AtomicBool = AtomicBool::new(true);

/// The console log level (kernel.printk's first number).
pub fn console_level() -> i32 {
    CONSOLE_LEVEL.load(Ordering::Relaxed)
}

/// Sets the console log level (a write to kernel.printk).
pub fn set_console_level(level: i32) {
    CONSOLE_LEVEL.store(level, Ordering::Relaxed);
}

fn waiters() -> &'static Waiters {
    static W: std::sync::OnceLock<Waiters> = std::sync::OnceLock::new();
    W.get_or_init(Waiters::default)
}

fn lock() -> std::sync::MutexGuard<'static, Ring> {
    RING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the console level at boot: `quiet` shows only warnings and worse.
pub fn set_quiet(quiet: bool) {
    CONSOLE_LEVEL.store(if quiet { 4 } else { 7 }, Ordering::Relaxed);
}

/// Whether a line of `level` goes to the console too.
pub fn on_console(level: i32) -> bool {
    level < CONSOLE_LEVEL.load(Ordering::Relaxed)
}

/// Appends one line; `stamp` is the "[    s.micros]" the console shows.
pub fn record(level: i32, stamp: &str, msg: &str) {
    let text = format!("<{level}>{stamp} {msg}\n");
    {
        let mut r = lock();
        let seq = r.next_seq;
        r.next_seq += 1;
        r.bytes += text.len();
        r.records.push_back(Record { seq, text });
        while r.bytes > LOG_BUF_LEN {
            let Some(old) = r.records.pop_front() else {
                break;
            };
            r.bytes -= old.text.len();
        }
        let first = r.records.front().map_or(r.next_seq, |x| x.seq);
        r.read_seq = r.read_seq.max(first);
        r.clear_seq = r.clear_seq.max(first);
    }
    waiters().wake_all();
}

/// The text of every record from `from` on, the newest `len` bytes of it
/// (whole records, as Linux's syslog_print_all).
fn text_since(r: &Ring, from: u64, len: usize) -> Vec<u8> {
    let recs: Vec<&Record> = r.records.iter().filter(|x| x.seq >= from).collect();
    let mut total = 0;
    let mut start = recs.len();
    while start > 0 && total + recs[start - 1].text.len() <= len {
        total += recs[start - 1].text.len();
        start -= 1;
    }
    recs[start..].iter().flat_map(|x| x.text.bytes()).collect()
}

fn may_read(ctx: &SyscallContext<'_>, action: i32) -> KResult<()> {
    const READ_ALL: i32 = 3;
    const SIZE_BUFFER: i32 = 10;
    let restricted =
        DMESG_RESTRICT.load(Ordering::Relaxed) || (action != READ_ALL && action != SIZE_BUFFER);
    use crate::task::caps::Cap;
    // CAP_SYSLOG, or (deprecated, still honoured) CAP_SYS_ADMIN.
    if restricted && !ctx.task.privileged(Cap::Syslog) && !ctx.task.privileged(Cap::SysAdmin) {
        return error!(EPERM);
    }
    Ok(())
}

fn sys_syslog(ctx: &mut SyscallContext<'_>, action: i32, buf: UserAddr, len: i32) -> KResult<u64> {
    const CLOSE: i32 = 0;
    const OPEN: i32 = 1;
    const READ: i32 = 2;
    const READ_ALL: i32 = 3;
    const READ_CLEAR: i32 = 4;
    const CLEAR: i32 = 5;
    const CONSOLE_OFF: i32 = 6;
    const CONSOLE_ON: i32 = 7;
    const CONSOLE_LEVEL_ACTION: i32 = 8;
    const SIZE_UNREAD: i32 = 9;
    const SIZE_BUFFER: i32 = 10;
    if !(CLOSE..=SIZE_BUFFER).contains(&action) {
        return error!(EINVAL);
    }
    may_read(ctx, action)?;
    let check_buf = |ctx: &SyscallContext<'_>| -> KResult<usize> {
        if buf.is_null() || len < 0 {
            return error!(EINVAL);
        }
        if len > 0 && ctx.mm().accessible_len(buf.0, len as usize, true) < len as usize {
            return error!(EFAULT);
        }
        Ok(len as usize)
    };
    match action {
        CLOSE | OPEN => Ok(0),
        READ => {
            let len = check_buf(ctx)?;
            if len == 0 {
                return Ok(0);
            }
            let mut out = Vec::new();
            waiters().wait(Some(ctx.task), None, || {
                let mut r = lock();
                if r.read_seq >= r.next_seq {
                    return false;
                }
                // Whole records while they fit (at least part of one).
                let from = r.read_seq;
                let mut next = from;
                for rec in r.records.iter().filter(|x| x.seq >= from) {
                    if !out.is_empty() && out.len() + rec.text.len() > len {
                        break;
                    }
                    out.extend_from_slice(rec.text.as_bytes());
                    next = rec.seq + 1;
                    if out.len() >= len {
                        break;
                    }
                }
                r.read_seq = next;
                true
            })?;
            out.truncate(len);
            ctx.mm().write_bytes(buf.0, &out)?;
            Ok(out.len() as u64)
        }
        READ_ALL | READ_CLEAR => {
            let len = check_buf(ctx)?;
            if len == 0 {
                return Ok(0);
            }
            let text = {
                let mut r = lock();
                let t = text_since(&r, r.clear_seq, len);
                if action == READ_CLEAR {
                    r.clear_seq = r.next_seq;
                }
                t
            };
            ctx.mm().write_bytes(buf.0, &text)?;
            Ok(text.len() as u64)
        }
        CLEAR => {
            let mut r = lock();
            r.clear_seq = r.next_seq;
            Ok(0)
        }
        CONSOLE_OFF => {
            let cur = CONSOLE_LEVEL.load(Ordering::Relaxed);
            if SAVED_LEVEL.load(Ordering::Relaxed) < 0 {
                SAVED_LEVEL.store(cur, Ordering::Relaxed);
            }
            // Linux's minimum_console_loglevel: only emergencies.
            CONSOLE_LEVEL.store(1, Ordering::Relaxed);
            Ok(0)
        }
        CONSOLE_ON => {
            let saved = SAVED_LEVEL.swap(-1, Ordering::Relaxed);
            if saved >= 0 {
                CONSOLE_LEVEL.store(saved, Ordering::Relaxed);
            }
            Ok(0)
        }
        CONSOLE_LEVEL_ACTION => {
            if !(1..=8).contains(&len) {
                return error!(EINVAL);
            }
            CONSOLE_LEVEL.store(len.max(1), Ordering::Relaxed);
            SAVED_LEVEL.store(-1, Ordering::Relaxed);
            Ok(0)
        }
        SIZE_UNREAD => {
            let r = lock();
            let from = r.read_seq;
            Ok(r.records
                .iter()
                .filter(|x| x.seq >= from)
                .map(|x| x.text.len() as u64)
                .sum())
        }
        _ => Ok(LOG_BUF_LEN as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_returns_the_newest_whole_records() {
        let mut r = Ring {
            records: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            read_seq: 0,
            clear_seq: 0,
        };
        for (i, t) in ["<6>[0] a\n", "<6>[0] bb\n", "<6>[0] ccc\n"]
            .iter()
            .enumerate()
        {
            r.records.push_back(Record {
                seq: i as u64,
                text: t.to_string(),
            });
        }
        r.next_seq = 3;
        assert_eq!(
            text_since(&r, 0, 1000),
            b"<6>[0] a\n<6>[0] bb\n<6>[0] ccc\n"
        );
        assert_eq!(text_since(&r, 0, 21), b"<6>[0] bb\n<6>[0] ccc\n");
        assert_eq!(text_since(&r, 2, 1000), b"<6>[0] ccc\n");
        assert_eq!(text_since(&r, 0, 5), b"");
    }
}
