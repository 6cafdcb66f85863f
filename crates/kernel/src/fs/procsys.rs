//! More of /proc/sys: the sysctl files common programs read, beyond those
//! procfs.rs and ipc/proc.rs serve. Every value is what ruml really does
//! (a limit it does not enforce reads as "no limit" where Linux has such a
//! value); the files whose setting has an effect in ruml are writable by
//! root (kernel.printk, kernel.dmesg_restrict, kernel.pid_max,
//! kernel.threads-max, fs.pipe-max-size, fs.lease-break-time,
//! net.core.somaxconn), the rest are read-only (mode 0444: EACCES on a
//! write open, for root too): vm.overcommit_memory (no commit accounting:
//! guest RAM is a lazily backed host file), vm.max_map_count and
//! fs.file-max (no such limits: the values say so), kernel.tainted,
//! kernel.panic, kernel.randomize_va_space.
//!
//! Effects: pid_max bounds the pids fork hands out in every PID namespace
//! (task/mod.rs, task/ns.rs: EAGAIN once all are taken); threads-max
//! bounds the instance's threads below ruml's own cap of 8192
//! (task/syscalls.rs, EAGAIN); somaxconn caps listen()'s backlog (net/),
//! at most 65535 whatever is written, as kernel memory the guest controls.
//!
//! Writes follow Linux's sysctl rules: the mode bits are checked against
//! the effective uid (root is kernel uid 0, whatever its capabilities);
//! dmesg_restrict also needs CAP_SYS_ADMIN (EPERM); values are decimal
//! integers, out of range or malformed is EINVAL.
//!
//! procfs.rs's /proc/sys directories ask [`entries`] and [`lookup`] for
//! these; subdirectories of their own (fs/inotify, net, net/core) are
//! [`SysctlDir`]s. Inodes hold only which file they are: no locking.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{Meta, TableDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFREG};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

/// fs.pipe-max-size: the largest F_SETPIPE_SZ an unprivileged process may
/// ask for (fs/pipe.rs).
pub static PIPE_MAX_SIZE: AtomicUsize = AtomicUsize::new(1 << 20);

/// The largest pipe buffer ruml makes (kernel memory a guest controls):
/// F_SETPIPE_SZ above it is ENOMEM, and fs.pipe-max-size cannot exceed it.
pub const PIPE_HARD_MAX: usize = 64 << 20;

/// kernel.pid_max: pids are below it (Linux's PID_MAX_LIMIT at boot).
static PID_MAX: AtomicI32 = AtomicI32::new(PID_MAX_LIMIT);
const PID_MAX_LIMIT: i32 = 4 << 20;
/// Linux's RESERVED_PIDS + 1: the least pid_max.
const PID_MAX_MIN: i32 = 301;

/// kernel.pid_max now.
pub fn pid_max() -> i32 {
    PID_MAX.load(Ordering::Relaxed)
}

/// kernel.threads-max: the instance's thread limit (ruml's own cap,
/// 8192, bounds it further: task/syscalls.rs).
static THREADS_MAX: AtomicUsize = AtomicUsize::new(8192);

/// kernel.threads-max now.
pub fn threads_max() -> usize {
    THREADS_MAX.load(Ordering::Relaxed)
}

/// net.core.somaxconn as written (Linux's default 4096).
static SOMAXCONN: AtomicI32 = AtomicI32::new(4096);

/// listen()'s backlog ceiling: net.core.somaxconn, at most 65535 (the
/// pending connections a listener queues are kernel memory).
pub fn somaxconn() -> i32 {
    SOMAXCONN.load(Ordering::Relaxed).min(65535)
}

/// A directory of this module's files, by its path under /proc/sys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dir {
    Root,
    Kernel,
    Vm,
    Fs,
    Inotify,
    Net,
    NetCore,
    /// kernel/keys (keys/).
    Keys,
}

/// A file's setter: given whether the opener holds CAP_SYS_ADMIN, and
/// the bytes written.
type Setter = fn(bool, &[u8]) -> KResult<()>;

/// One entry: a file with its text and, if writable, its setter; or a
/// subdirectory.
enum Node {
    File(fn() -> String, Option<Setter>),
    Sub(Dir),
}

struct Entry {
    dir: Dir,
    name: &'static str,
    ino: u64,
    node: Node,
}

const fn ro(dir: Dir, name: &'static str, ino: u64, f: fn() -> String) -> Entry {
    Entry {
        dir,
        name,
        ino,
        node: Node::File(f, None),
    }
}

const fn rw(dir: Dir, name: &'static str, ino: u64, f: fn() -> String, set: Setter) -> Entry {
    Entry {
        dir,
        name,
        ino,
        node: Node::File(f, Some(set)),
    }
}

const fn sub(dir: Dir, name: &'static str, ino: u64, to: Dir) -> Entry {
    Entry {
        dir,
        name,
        ino,
        node: Node::Sub(to),
    }
}

/// Linux's INT_MAX: "no limit" for limits ruml does not impose.
const INT_MAX: i64 = i32::MAX as i64;

static ENTRIES: &[Entry] = &[
    // kernel.*
    ro(Dir::Kernel, "version", 400, || {
        format!("{}\n", crate::task::syscalls::UTS_VERSION)
    }),
    Entry {
        dir: Dir::Kernel,
        name: "printk",
        ino: 401,
        node: Node::File(
            || format!("{}\t4\t1\t7\n", crate::kmsg::console_level()),
            Some(set_printk),
        ),
    },
    Entry {
        dir: Dir::Kernel,
        name: "dmesg_restrict",
        ino: 402,
        node: Node::File(
            || {
                format!(
                    "{}\n",
                    u8::from(crate::kmsg::DMESG_RESTRICT.load(Ordering::Relaxed))
                )
            },
            Some(set_dmesg_restrict),
        ),
    },
    Entry {
        dir: Dir::Kernel,
        name: "pid_max",
        ino: 53,
        node: Node::File(|| format!("{}\n", pid_max()), Some(set_pid_max)),
    },
    Entry {
        dir: Dir::Kernel,
        name: "threads-max",
        ino: 55,
        node: Node::File(|| format!("{}\n", threads_max()), Some(set_threads_max)),
    },
    // ruml never reboots on a panic (it exits), and never taints.
    ro(Dir::Kernel, "panic", 403, || "0\n".into()),
    ro(Dir::Kernel, "tainted", 404, || "0\n".into()),
    // exec randomizes the layout as Linux's default (exec/mod.rs).
    ro(Dir::Kernel, "randomize_va_space", 405, || "2\n".into()),
    // kernel.keys.*: the key quotas and timeouts (keys/).
    sub(Dir::Kernel, "keys", 460, Dir::Keys),
    rw(
        Dir::Keys,
        "gc_delay",
        461,
        crate::keys::gc_delay_text,
        crate::keys::set_gc_delay,
    ),
    rw(
        Dir::Keys,
        "maxbytes",
        462,
        crate::keys::maxbytes_text,
        crate::keys::set_maxbytes,
    ),
    rw(
        Dir::Keys,
        "maxkeys",
        463,
        crate::keys::maxkeys_text,
        crate::keys::set_maxkeys,
    ),
    rw(
        Dir::Keys,
        "persistent_keyring_expiry",
        464,
        crate::keys::persistent_expiry_text,
        crate::keys::set_persistent_expiry,
    ),
    rw(
        Dir::Keys,
        "root_maxbytes",
        465,
        crate::keys::root_maxbytes_text,
        crate::keys::set_root_maxbytes,
    ),
    rw(
        Dir::Keys,
        "root_maxkeys",
        466,
        crate::keys::root_maxkeys_text,
        crate::keys::set_root_maxkeys,
    ),
    // vm.*: no limit on the number of mappings (only RLIMIT_AS).
    ro(Dir::Vm, "max_map_count", 410, || format!("{INT_MAX}\n")),
    // Heuristic overcommit (0): no commit accounting in ruml.
    ro(Dir::Vm, "overcommit_memory", 60, || "0\n".into()),
    ro(Dir::Vm, "mmap_min_addr", 411, || {
        format!("{}\n", crate::mm::MMAP_MIN)
    }),
    // fs.*: no system-wide file limit; RLIMIT_NOFILE's ceiling is nr_open.
    ro(Dir::Fs, "file-max", 420, || format!("{}\n", i64::MAX)),
    ro(Dir::Fs, "nr_open", 421, || {
        format!("{}\n", crate::task::syscalls::NR_OPEN)
    }),
    Entry {
        dir: Dir::Fs,
        name: "pipe-max-size",
        ino: 422,
        node: Node::File(
            || format!("{}\n", PIPE_MAX_SIZE.load(Ordering::Relaxed)),
            Some(set_pipe_max_size),
        ),
    },
    Entry {
        dir: Dir::Fs,
        name: "lease-break-time",
        ino: 94,
        node: Node::File(
            crate::fs::lease::break_time_text,
            Some(crate::fs::lease::set_break_time),
        ),
    },
    // Who may dump core after a credential change (task/creds.rs).
    rw(
        Dir::Fs,
        "suid_dumpable",
        433,
        crate::task::creds::suid_dumpable_text,
        crate::task::creds::set_suid_dumpable,
    ),
    // Pipe buffers are not accounted per user: 0 is "no limit".
    ro(Dir::Fs, "pipe-user-pages-hard", 423, || "0\n".into()),
    ro(Dir::Fs, "pipe-user-pages-soft", 424, || "0\n".into()),
    // The protected_* link and file restrictions are not enforced.
    ro(Dir::Fs, "protected_fifos", 425, || "0\n".into()),
    ro(Dir::Fs, "protected_hardlinks", 426, || "0\n".into()),
    ro(Dir::Fs, "protected_regular", 427, || "0\n".into()),
    ro(Dir::Fs, "protected_symlinks", 428, || "0\n".into()),
    sub(Dir::Fs, "inotify", 429, Dir::Inotify),
    // inotify: the queue holds MAX_QUEUED events (fs/inotify.rs); watches
    // and instances are limited only by memory.
    ro(Dir::Inotify, "max_queued_events", 430, || {
        format!("{}\n", crate::fs::inotify::MAX_QUEUED)
    }),
    ro(Dir::Inotify, "max_user_instances", 431, || {
        format!("{INT_MAX}\n")
    }),
    ro(Dir::Inotify, "max_user_watches", 432, || {
        format!("{INT_MAX}\n")
    }),
    // net.core.somaxconn: listen()'s backlog ceiling (net/inet.rs,
    // net/unix.rs).
    sub(Dir::Root, "net", 440, Dir::Net),
    sub(Dir::Net, "core", 441, Dir::NetCore),
    Entry {
        dir: Dir::NetCore,
        name: "somaxconn",
        ino: 442,
        node: Node::File(
            || format!("{}\n", SOMAXCONN.load(Ordering::Relaxed)),
            Some(set_somaxconn),
        ),
    },
];

/// The entries of `dir`: (name, inode number, whether a directory).
pub fn entries(dir: Dir) -> Vec<(&'static str, u64, bool)> {
    ENTRIES
        .iter()
        .filter(|e| e.dir == dir)
        .map(|e| (e.name, e.ino, matches!(e.node, Node::Sub(_))))
        .collect()
}

/// `name` in `dir`, if it is one of this module's; `meta` is the
/// directory's.
pub fn lookup(dir: Dir, name: &[u8], meta: &Meta) -> Option<Arc<dyn Inode>> {
    let i = ENTRIES
        .iter()
        .position(|e| e.dir == dir && e.name.as_bytes() == name)?;
    let e = &ENTRIES[i];
    Some(match e.node {
        Node::File(..) => Arc::new(SysctlFile {
            meta: meta.with_ino(e.ino),
            entry: i,
        }) as Arc<dyn Inode>,
        // A directory of this module's own (fs/inotify, net, net/core).
        Node::Sub(to) => Arc::new(TableDir {
            meta: meta.with_ino(e.ino),
            parent_ino: meta.ino,
            entries: entries(to)
                .into_iter()
                .map(|(n, ino, is_dir)| {
                    let t = if is_dir {
                        FileType::Directory
                    } else {
                        FileType::Regular
                    };
                    (n, ino, t)
                })
                .collect(),
            make: Box::new(move |name, meta| lookup(to, name, meta)),
        }),
    })
}

/// A decimal integer in `lo..=hi` (surrounding whitespace allowed).
fn parse(buf: &[u8], lo: i64, hi: i64) -> KResult<i64> {
    let s = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
    let v: i64 = s.trim().parse().map_err(|_| crate::errno!(EINVAL))?;
    if !(lo..=hi).contains(&v) {
        return error!(EINVAL);
    }
    Ok(v)
}

/// kernel.printk: the first of its four numbers is the console log level
/// (the others are fixed in ruml, and ignored when written).
fn set_printk(_admin: bool, buf: &[u8]) -> KResult<()> {
    let s = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
    let first = s.split_whitespace().next().ok_or(crate::errno!(EINVAL))?;
    let v: i32 = first.parse().map_err(|_| crate::errno!(EINVAL))?;
    crate::kmsg::set_console_level(v.clamp(1, 8));
    Ok(())
}

/// kernel.dmesg_restrict: 0 or 1, and CAP_SYS_ADMIN to change it.
fn set_dmesg_restrict(admin: bool, buf: &[u8]) -> KResult<()> {
    if !admin {
        return error!(EPERM);
    }
    let v = parse(buf, 0, 1)?;
    crate::kmsg::DMESG_RESTRICT.store(v == 1, Ordering::Relaxed);
    Ok(())
}

/// fs.pipe-max-size: rounded up to a power-of-two number of pages (at
/// least one page); more than [`PIPE_HARD_MAX`] is EINVAL (Linux allows up
/// to 2^31).
fn set_pipe_max_size(_admin: bool, buf: &[u8]) -> KResult<()> {
    let v = parse(buf, 0, u32::MAX as i64)? as usize;
    if v > PIPE_HARD_MAX {
        return error!(EINVAL);
    }
    let v = v.max(4096).next_power_of_two();
    PIPE_MAX_SIZE.store(v, Ordering::Relaxed);
    Ok(())
}

/// kernel.pid_max: 301 ..= 4194304 (Linux's pid_max_min and
/// PID_MAX_LIMIT on 64-bit).
fn set_pid_max(_admin: bool, buf: &[u8]) -> KResult<()> {
    let v = parse(buf, PID_MAX_MIN.into(), PID_MAX_LIMIT.into())?;
    PID_MAX.store(v as i32, Ordering::Relaxed);
    Ok(())
}

/// kernel.threads-max: 20 ..= FUTEX_TID_MASK, as Linux.
fn set_threads_max(_admin: bool, buf: &[u8]) -> KResult<()> {
    let v = parse(buf, 20, 0x3fff_ffff)?;
    THREADS_MAX.store(v as usize, Ordering::Relaxed);
    Ok(())
}

/// net.core.somaxconn: 0 ..= INT_MAX.
fn set_somaxconn(_admin: bool, buf: &[u8]) -> KResult<()> {
    let v = parse(buf, 0, INT_MAX)?;
    SOMAXCONN.store(v as i32, Ordering::Relaxed);
    Ok(())
}

/// A sysctl file: 0644 with a setter, else 0444; owned by root.
struct SysctlFile {
    meta: Meta,
    entry: usize,
}

impl SysctlFile {
    fn funcs(&self) -> (fn() -> String, Option<Setter>) {
        match ENTRIES.get(self.entry).map(|e| &e.node) {
            Some(Node::File(r, w)) => (*r, *w),
            _ => (String::new, None),
        }
    }
}

impl Inode for SysctlFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let perm = if self.funcs().1.is_some() {
            0o644
        } else {
            0o444
        };
        Ok(self.meta.stat(S_IFREG | perm, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let (read, write) = self.funcs();
        if flags & 3 != 0 {
            // Linux's sysctl test_perm: the owner bits for euid 0 only.
            let root = caller
                .task
                .is_none_or(|t| t.group.creds.lock().unwrap_or_else(|p| p.into_inner()).euid == 0);
            if write.is_none() || !root {
                return error!(EACCES);
            }
        }
        Ok(Arc::new(SysctlOpen {
            data: read().into_bytes(),
            write,
            admin: caller
                .task
                .is_none_or(|t| t.privileged(crate::task::caps::Cap::SysAdmin)),
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An opened sysctl file: its text at open, and its setter.
struct SysctlOpen {
    data: Vec<u8>,
    write: Option<Setter>,
    /// Whether the opener holds CAP_SYS_ADMIN (for the setters that
    /// need it).
    admin: bool,
}

impl FileOps for SysctlOpen {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.data.len() as u64) as usize;
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
    fn write(&self, _f: &OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        let Some(w) = self.write else {
            return error!(EINVAL);
        };
        w(self.admin, &buf[..buf.len().min(4096)])?;
        Ok(buf.len())
    }
    fn truncate(&self, _len: u64) -> KResult<()> {
        Ok(())
    }
}
