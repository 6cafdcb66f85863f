//! Anonymous-inode files: eventfd, timerfd, signalfd, pidfd. They live on
//! an internal filesystem, so fstat and /proc/self/fd show them as Linux
//! does ("anon_inode:[eventfd]"). Each object's state is behind one mutex;
//! its [`Waiters`] are woken on every change that can affect readiness.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::abi::Pod;
use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{PollEvents, Waiters, POLLIN, POLLOUT, READABLE, WRITABLE};
use crate::fs::types::{encode_dev, oflags::*, FileType, Stat, StatFs, S_IFDIR};
use crate::fs::vfs::{anon_dev, Dentry, FileOps, Inode, InodeKey, Mount, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::ns::PidNs;
use crate::task::{Task, ThreadGroup};
use crate::time::timers::{schedule, Expiry};

const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;

/// The one inode every anonymous file shares, as Linux's anon_inode.
struct AnonInode {
    dev: (u32, u32),
}

impl Inode for AnonInode {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), 1)
    }
    fn stat(&self) -> KResult<Stat> {
        // Linux reports mode 0600 with no file type bits for anon inodes.
        Ok(Stat {
            dev: self.dev,
            ino: 1,
            mode: 0o600,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs::pseudo(ANON_INODE_FS_MAGIC))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct AnonRoot {
    dev: (u32, u32),
}

impl Inode for AnonRoot {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), 0)
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: 0,
            mode: S_IFDIR | 0o700,
            nlink: 2,
            blksize: 4096,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs::pseudo(ANON_INODE_FS_MAGIC))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A new open file of `kind` ("eventfd", "timerfd", ...).
/// A socket's inode (Linux's sockfs): its own number, S_IFSOCK, so that
/// /proc/PID/fd shows `socket:[INO]` as /proc/net and sock_diag name it.
struct SockInode {
    dev: (u32, u32),
    ino: u64,
}

impl Inode for SockInode {
    fn file_type(&self) -> FileType {
        FileType::Socket
    }
    fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), self.ino)
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: self.ino,
            mode: 0o140777,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs::pseudo(0x534F_434B))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open socket numbered `ino` (see [`SockInode`]).
pub fn socket_file(ino: u64, ops: Arc<dyn FileOps>, flags: u32) -> FileRef {
    static DEV: OnceLock<(u32, u32)> = OnceLock::new();
    let (mnt, _) = anon_fs();
    let inode: Arc<dyn Inode> = Arc::new(SockInode {
        dev: *DEV.get_or_init(anon_dev),
        ino,
    });
    let name = format!("socket:[{ino}]").into_bytes();
    let path = Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, &name, inode),
    };
    OpenFile::new_pseudo(path, Some(ops), flags)
}

pub fn anon_file(kind: &str, ops: Arc<dyn FileOps>, flags: u32) -> FileRef {
    let (mnt, inode) = anon_fs();
    let name = format!("anon_inode:[{kind}]").into_bytes();
    let path = Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, &name, inode.clone()),
    };
    OpenFile::new_pseudo(path, Some(ops), flags)
}

/// The anon-inode mount and its one shared inode.
fn anon_fs() -> &'static (Arc<Mount>, Arc<dyn Inode>) {
    static FS: OnceLock<(Arc<Mount>, Arc<dyn Inode>)> = OnceLock::new();
    FS.get_or_init(|| {
        let dev = anon_dev();
        let inode: Arc<dyn Inode> = Arc::new(AnonInode { dev });
        (
            Mount::new(
                "anon_inodefs",
                Arc::new(AnonRoot { dev }),
                None,
                false,
                true,
            ),
            inode,
        )
    })
}

fn install(ctx: &SyscallContext<'_>, file: FileRef, cloexec: bool) -> KResult<u64> {
    ctx.files().alloc(file, cloexec).map(|fd| fd as u64)
}

syscall_table! { pub fn anon_table;
    EVENTFD => sys_eventfd(initval: u32),
    EVENTFD2 => sys_eventfd2(initval: u32, flags: u32),
    TIMERFD_CREATE => sys_timerfd_create(clock: i32, flags: u32),
    TIMERFD_SETTIME => sys_timerfd_settime(fd: Fd, flags: u32, new: UserAddr, old: UserAddr),
    TIMERFD_GETTIME => sys_timerfd_gettime(fd: Fd, cur: UserAddr),
    SIGNALFD => sys_signalfd(fd: Fd, mask: UserAddr, size: usize),
    SIGNALFD4 => sys_signalfd4(fd: Fd, mask: UserAddr, size: usize, flags: u32),
    PIDFD_OPEN => sys_pidfd_open(pid: i32, flags: u32),
    PIDFD_SEND_SIGNAL => sys_pidfd_send_signal(fd: Fd, sig: i32, info: UserAddr, flags: u32),
    PIDFD_GETFD => sys_pidfd_getfd(pidfd: i32, fd: i32, flags: u32),
}

// --- eventfd ----------------------------------------------------------------

const EFD_SEMAPHORE: u32 = 1;

struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    waiters: Waiters,
    /// Its number in /proc/PID/fdinfo (`eventfd-id:`): the smallest free
    /// one, as Linux's ida, given back when the eventfd goes.
    id: u32,
}

/// The eventfd ids in use (at most one per open eventfd, so bounded by
/// the descriptor limits).
fn eventfd_ids() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<u32>> {
    static IDS: OnceLock<Mutex<std::collections::BTreeSet<u32>>> = OnceLock::new();
    IDS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn eventfd_id() -> u32 {
    let mut ids = eventfd_ids();
    let mut id = 0;
    for &used in ids.iter() {
        if used != id {
            break;
        }
        id += 1;
    }
    ids.insert(id);
    id
}

impl Drop for EventFd {
    fn drop(&mut self) {
        eventfd_ids().remove(&self.id);
    }
}

impl FileOps for EventFd {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        if buf.len() < 8 {
            return error!(EINVAL);
        }
        let mut got = 0;
        let take = |c: &mut u64| -> u64 {
            if self.semaphore {
                *c -= 1;
                1
            } else {
                std::mem::take(c)
            }
        };
        {
            let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
            if *c > 0 {
                got = take(&mut c);
            }
        }
        if got == 0 {
            if f.nonblocking() {
                return error!(EAGAIN);
            }
            self.waiters.wait(task, None, || {
                let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
                if *c > 0 {
                    got = take(&mut c);
                    true
                } else {
                    false
                }
            })?;
        }
        buf[..8].copy_from_slice(&got.to_le_bytes());
        self.waiters.wake_all();
        Ok(8)
    }
    fn write(&self, f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.write_as(f, off, buf, None)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        if buf.len() < 8 {
            return error!(EINVAL);
        }
        let v = u64::from_le_bytes(buf[..8].try_into().unwrap_or([0; 8]));
        if v == u64::MAX {
            return error!(EINVAL);
        }
        let fits = |c: &u64| *c <= u64::MAX - 1 - v;
        {
            let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
            if fits(&c) {
                *c += v;
                drop(c);
                self.waiters.wake_all();
                return Ok(8);
            }
        }
        if f.nonblocking() {
            return error!(EAGAIN);
        }
        self.waiters.wait(task, None, || {
            let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
            if fits(&c) {
                *c += v;
                true
            } else {
                false
            }
        })?;
        self.waiters.wake_all();
        Ok(8)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let c = *self.count.lock().unwrap_or_else(|p| p.into_inner());
        let mut ev = 0;
        if c > 0 {
            ev |= READABLE;
        }
        if c < u64::MAX - 1 {
            ev |= WRITABLE;
        }
        ev
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<PidNs>, out: &mut String) {
        let c = *self.count.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(&format!(
            "eventfd-count: {c:16x}\neventfd-id: {}\neventfd-semaphore: {}\n",
            self.id,
            u8::from(self.semaphore)
        ));
    }
}

fn sys_eventfd(ctx: &mut SyscallContext<'_>, initval: u32) -> KResult<u64> {
    sys_eventfd2(ctx, initval, 0)
}

fn sys_eventfd2(ctx: &mut SyscallContext<'_>, initval: u32, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return error!(EINVAL);
    }
    let ops = Arc::new(EventFd {
        count: Mutex::new(initval as u64),
        semaphore: flags & EFD_SEMAPHORE != 0,
        waiters: Waiters::new(),
        id: eventfd_id(),
    });
    let f = anon_file("eventfd", ops, O_RDWR | (flags & O_NONBLOCK));
    install(ctx, f, flags & O_CLOEXEC != 0)
}

// --- timerfd ----------------------------------------------------------------

const TFD_TIMER_ABSTIME: u32 = 1;
const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

#[derive(Default)]
struct TimerFdState {
    deadline: Option<Instant>,
    interval: Duration,
    expirations: u64,
    generation: u64,
    /// TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET of the last settime.
    settime_flags: u32,
}

struct TimerFd {
    clock: i32,
    /// The clock as timerfd_create named it (fdinfo's `clockid:`).
    clockid: i32,
    state: Mutex<TimerFdState>,
    waiters: Waiters,
}

impl TimerFdState {
    /// Counts the expiries whose time has come, from the clock, as Linux's
    /// timerfd_read forwards the timer to now: a reader is never told
    /// fewer than have passed because the timer thread ran late.
    fn catch_up(&mut self, now: Instant) {
        let Some(d) = self.deadline else { return };
        if d > now {
            return;
        }
        if self.interval.is_zero() {
            self.expirations += 1;
            self.deadline = None;
            return;
        }
        let iv = self.interval.as_nanos();
        let n = (now - d).as_nanos() / iv + 1;
        self.expirations = self
            .expirations
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        // n whole intervals from d: the first still to come.
        let step = n.saturating_mul(iv);
        let step = Duration::new(
            u64::try_from(step / 1_000_000_000).unwrap_or(u64::MAX),
            (step % 1_000_000_000) as u32,
        );
        self.deadline = d.checked_add(step);
    }
}

impl Expiry for TimerFd {
    fn fire(self: Arc<Self>, generation: u64) {
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if s.generation != generation {
                return;
            }
            let Some(d) = s.deadline else { return };
            let now = Instant::now();
            if d > now {
                // A reader already counted this expiry (catch_up moved the
                // deadline on): wait for the next one.
                schedule(&self, d, generation);
                return;
            }
            s.catch_up(now);
            if let Some(next) = s.deadline {
                schedule(&self, next, generation);
            }
        }
        self.waiters.wake_all();
    }
}

impl FileOps for TimerFd {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(f, off, buf, None)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        if buf.len() < 8 {
            return error!(EINVAL);
        }
        let mut got = 0;
        let mut take = || {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.catch_up(Instant::now());
            got = std::mem::take(&mut s.expirations);
            got > 0
        };
        if !take() {
            if f.nonblocking() {
                return error!(EAGAIN);
            }
            self.waiters.wait(task, None, take)?;
        }
        buf[..8].copy_from_slice(&got.to_le_bytes());
        Ok(8)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.catch_up(Instant::now());
        if s.expirations > 0 {
            READABLE
        } else {
            0
        }
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
}

fn timerfd_of(ctx: &SyscallContext<'_>, fd: Fd) -> KResult<(FileRef, Arc<TimerFd>)> {
    let f = ctx.files().get(fd.0)?;
    let ops = f.ops().map_err(|_| crate::errno!(EINVAL))?.clone();
    let any: &dyn std::any::Any = ops.as_any_ops();
    match any.downcast_ref::<Arc<TimerFd>>() {
        Some(t) => Ok((f.clone(), t.clone())),
        None => error!(EINVAL),
    }
}

fn sys_timerfd_create(ctx: &mut SyscallContext<'_>, clock: i32, flags: u32) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return error!(EINVAL);
    }
    if !matches!(clock, 0 | 1 | 7 | 8 | 9) {
        return error!(EINVAL);
    }
    crate::time::check_wake_alarm(ctx.task, clock)?;
    let t = Arc::new(TimerFd {
        // The clock absolute deadlines are read on (the ALARM clocks as
        // their base clocks).
        clock: match clock {
            8 => 0,
            9 => 7,
            c => c,
        },
        clockid: clock,
        state: Mutex::new(TimerFdState::default()),
        waiters: Waiters::new(),
    });
    let f = anon_file(
        "timerfd",
        Arc::new(TimerFdOps(t)),
        O_RDWR | (flags & O_NONBLOCK),
    );
    install(ctx, f, flags & O_CLOEXEC != 0)
}

/// The FileOps face of a timerfd (the timer wheel holds the Arc<TimerFd>).
struct TimerFdOps(Arc<TimerFd>);

impl FileOps for TimerFdOps {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.0.read(f, off, buf)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.0.read_as(f, off, buf, task)
    }
    fn poll(&self, f: &OpenFile) -> PollEvents {
        self.0.poll(f)
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.0.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        &self.0
    }
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<PidNs>, out: &mut String) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.catch_up(now);
        let left = s
            .deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or_default();
        out.push_str(&format!(
            "clockid: {}\nticks: {}\nsettime flags: 0{:o}\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.0.clockid,
            s.expirations,
            s.settime_flags,
            left.as_secs(),
            left.subsec_nanos(),
            s.interval.as_secs(),
            s.interval.subsec_nanos()
        ));
    }
}

fn itimerspec(
    ctx: &SyscallContext<'_>,
    at: UserAddr,
    left: Duration,
    interval: Duration,
) -> KResult<()> {
    ctx.mm().write_val(
        at.0,
        &[
            interval.as_secs() as i64,
            interval.subsec_nanos() as i64,
            left.as_secs() as i64,
            left.subsec_nanos() as i64,
        ],
    )
}

fn sys_timerfd_settime(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    flags: u32,
    new: UserAddr,
    old: UserAddr,
) -> KResult<u64> {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return error!(EINVAL);
    }
    let (_f, t) = timerfd_of(ctx, fd)?;
    let (interval, at) =
        crate::time::timers::read_itimerspec(ctx, new, flags & TFD_TIMER_ABSTIME != 0, t.clock)?;
    let (prev_left, prev_interval, generation) = {
        let mut s = t.state.lock().unwrap_or_else(|p| p.into_inner());
        let prev = (
            s.deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or_default(),
            s.interval,
        );
        s.generation += 1;
        s.deadline = at;
        s.interval = interval;
        s.expirations = 0;
        s.settime_flags = flags;
        (prev.0, prev.1, s.generation)
    };
    if let Some(at) = at {
        schedule(&t, at, generation);
    }
    if !old.is_null() {
        itimerspec(ctx, old, prev_left, prev_interval)?;
    }
    Ok(0)
}

fn sys_timerfd_gettime(ctx: &mut SyscallContext<'_>, fd: Fd, cur: UserAddr) -> KResult<u64> {
    let (_f, t) = timerfd_of(ctx, fd)?;
    let (left, interval) = {
        let s = t.state.lock().unwrap_or_else(|p| p.into_inner());
        (
            s.deadline
                .map(|d| {
                    d.saturating_duration_since(Instant::now())
                        .max(Duration::from_nanos(1))
                })
                .unwrap_or_default(),
            s.interval,
        )
    };
    itimerspec(ctx, cur, left, interval)?;
    Ok(0)
}

// --- signalfd ---------------------------------------------------------------

/// A signalfd: reads the reader's pending signals in `mask`.
struct SignalFd {
    mask: Mutex<u64>,
}

impl SignalFd {
    fn take(&self, task: &Task) -> Option<crate::signal::Queued> {
        let mask = *self.mask.lock().unwrap_or_else(|p| p.into_inner());
        let mut g = task.group.sig();
        let mut s = task.signals.lock();
        if let Some(i) = s
            .pending
            .iter()
            .position(|q| mask & crate::signal::bit(q.signo) != 0 && !q.forced)
        {
            return Some(s.pending.remove(i));
        }
        g.shared
            .iter()
            .position(|q| mask & crate::signal::bit(q.signo) != 0)
            .map(|i| g.shared.remove(i))
    }

    fn pending(&self, task: &Task) -> bool {
        let mask = *self.mask.lock().unwrap_or_else(|p| p.into_inner());
        let g = task.group.sig();
        let s = task.signals.lock();
        s.pending
            .iter()
            .any(|q| mask & crate::signal::bit(q.signo) != 0)
            || g.shared
                .iter()
                .any(|q| mask & crate::signal::bit(q.signo) != 0)
    }
}

crate::abi_struct! {
    /// `struct signalfd_siginfo` (128 bytes).
    pub struct SignalFdSigInfo {
        pub signo: u32, pub errno: i32, pub code: i32, pub pid: u32, pub uid: u32, pub fd: i32, pub tid: u32,
        pub band: u32, pub overrun: u32, pub trapno: u32, pub status: i32, pub int: i32, pub ptr: u64, pub utime: u64,
        pub stime: u64, pub addr: u64, pub addr_lsb: u16, pub pad2: u16, pub syscall: i32, pub call_addr: u64,
        pub arch: u32, pub pad: [u8; 28],
    }
}

impl FileOps for SignalFd {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        // Only a task has signals to read.
        error!(EAGAIN)
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        let Some(task) = task else {
            return error!(EAGAIN);
        };
        let n = buf.len() / 128;
        if n == 0 {
            return error!(EINVAL);
        }
        let mut out: Vec<crate::signal::Queued> = Vec::new();
        while out.len() < n {
            match self.take(task) {
                Some(q) => out.push(q),
                None => break,
            }
        }
        if out.is_empty() {
            if f.nonblocking() {
                return error!(EAGAIN);
            }
            let mut got = None;
            task.wait_until(None, || {
                got = self.take(task);
                got.is_some()
            })
            .map_err(|_| crate::errno!(ERESTARTSYS))?;
            out.extend(got);
        }
        for (i, q) in out.iter().enumerate() {
            let q = crate::time::timers::on_dequeue(&task.group, *q);
            let mut si = SignalFdSigInfo {
                signo: q.signo as u32,
                code: q.code,
                ..Default::default()
            };
            match (q.signo, q.code) {
                (crate::signal::SIGCHLD, c) if c > 0 => {
                    si.pid = q.a as u32;
                    si.status = q.b as i32;
                }
                (_, -2) => {
                    si.tid = q.a as u32;
                    si.overrun = (q.a >> 32) as u32;
                    si.ptr = q.b;
                }
                (4 | 7 | 8 | 11, c) if c > 0 => si.addr = q.a,
                _ => {
                    si.pid = q.a as u32;
                    si.uid = (q.a >> 32) as u32;
                    si.ptr = q.b;
                    si.int = q.b as i32;
                }
            }
            buf[i * 128..i * 128 + 128].copy_from_slice(si.as_bytes());
        }
        Ok(out.len() * 128)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        // The poller is the reader; the poll code passes no task, so this
        // looks at the calling thread through the task table.
        match current_task() {
            Some(t) if self.pending(&t) => POLLIN,
            _ => 0,
        }
    }
    fn seekable(&self) -> bool {
        false
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn show_fdinfo(&self, _f: &OpenFile, _ns: &Arc<PidNs>, out: &mut String) {
        let m = *self.mask.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(&format!("sigmask:\t{m:016x}\n"));
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Weak<Task>> = const { std::cell::RefCell::new(Weak::new()) };
}

/// Records the task this host thread runs (for signalfd's poll).
pub fn set_current_task(t: &Arc<Task>) {
    CURRENT.with(|c| *c.borrow_mut() = Arc::downgrade(t));
}

/// The task this host thread runs, if any.
pub(crate) fn current_task() -> Option<Arc<Task>> {
    CURRENT.with(|c| c.borrow().upgrade())
}

fn read_mask(ctx: &SyscallContext<'_>, mask: UserAddr, size: usize) -> KResult<u64> {
    if size != 8 {
        return error!(EINVAL);
    }
    let m: u64 = ctx.mm().read_val(mask.0)?;
    // SIGKILL and SIGSTOP can't be read through a signalfd.
    Ok(m & !((1 << 8) | (1 << 18)))
}

fn sys_signalfd(ctx: &mut SyscallContext<'_>, fd: Fd, mask: UserAddr, size: usize) -> KResult<u64> {
    sys_signalfd4(ctx, fd, mask, size, 0)
}

fn sys_signalfd4(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    mask: UserAddr,
    size: usize,
    flags: u32,
) -> KResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return error!(EINVAL);
    }
    let m = read_mask(ctx, mask, size)?;
    if fd.0 != -1 {
        let f = ctx.files().get(fd.0)?;
        let ops = f.ops().map_err(|_| crate::errno!(EINVAL))?.clone();
        let Some(s) = ops.as_any_ops().downcast_ref::<SignalFd>() else {
            return error!(EINVAL);
        };
        *s.mask.lock().unwrap_or_else(|p| p.into_inner()) = m;
        return Ok(fd.0 as u64);
    }
    let f = anon_file(
        "signalfd",
        Arc::new(SignalFd {
            mask: Mutex::new(m),
        }),
        O_RDWR | (flags & O_NONBLOCK),
    );
    install(ctx, f, flags & O_CLOEXEC != 0)
}

// --- pidfd ------------------------------------------------------------------

const PIDFD_NONBLOCK: u32 = O_NONBLOCK;
/// pidfd_open's PIDFD_THREAD (Linux 6.9): a pidfd for one thread. It is
/// O_EXCL, and shows in F_GETFL as such.
const PIDFD_THREAD: u32 = O_EXCL;
const PIDFD_SIGNAL_THREAD: u32 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u32 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 4;
/// pidfd_send_signal's stand-ins for the caller's own thread and process.
const PIDFD_SELF_THREAD: i32 = -10000;
const PIDFD_SELF_THREAD_GROUP: i32 = -10001;

/// A pidfd: a stable handle on a process (or, with PIDFD_THREAD, on one
/// thread). Immutable once made; what it names is looked up on each use,
/// so a reused pid never matches (`group` and `thread` keep their
/// allocations' identity).
pub struct PidFd {
    /// The global pid it names: the process's, or the thread's tid.
    pid: i32,
    /// The process (a dangling Weak when opened on a zombie).
    group: Weak<ThreadGroup>,
    /// The process's pid (equal to `pid` for a process pidfd).
    tgid: i32,
    /// PIDFD_THREAD: the thread (None for a process pidfd).
    thread: Option<Weak<Task>>,
    /// The innermost PID namespace of the target: pidfd_send_signal needs
    /// it at or below the caller's (Linux's access_pidfd_pidns).
    ns: Arc<crate::task::ns::PidNs>,
}

impl PidFd {
    /// A thread pidfd of a thread that is not its process's leader: its
    /// life is the thread's own (Linux releases such a thread at exit).
    fn names_non_leader(&self) -> bool {
        self.thread.is_some() && self.pid != self.tgid
    }

    /// The live thread Linux's pid_task(pid, PIDTYPE_PID) gives: the named
    /// thread, or for a process pidfd its leader thread (None once the
    /// leader has exited, even if other threads live on).
    pub(crate) fn task(&self) -> Option<Arc<Task>> {
        crate::kernel()
            .tasks
            .thread(self.pid)
            .filter(|t| match &self.thread {
                Some(w) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(t)),
                None => std::ptr::eq(self.group.as_ptr(), Arc::as_ptr(&t.group)),
            })
    }

    /// The process, while it has live threads.
    fn live_group(&self) -> Option<Arc<ThreadGroup>> {
        self.group.upgrade().filter(|g| !g.threads().is_empty())
    }

    /// Whether the process is still in the tree (alive or a zombie).
    fn unreaped(&self) -> bool {
        crate::kernel().tasks.unreaped(self.tgid, &self.group)
    }
}

impl FileOps for PidFd {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EINVAL)
    }
    /// Linux's pidfd_poll: POLLIN|POLLHUP once the task is gone (a reaped
    /// process, an exited non-leader thread); POLLIN for a zombie whose
    /// threads have all exited; nothing while any thread of a process
    /// lives, even when its leader has exited (for a process pidfd and a
    /// thread pidfd of the leader alike).
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        use crate::fs::poll::POLLHUP;
        if self.names_non_leader() {
            return if self.task().is_some() {
                0
            } else {
                POLLIN | POLLHUP
            };
        }
        if !self.unreaped() {
            POLLIN | POLLHUP
        } else if self.live_group().is_some() {
            0
        } else {
            POLLIN
        }
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(pidfd_waiters())
    }
    fn seekable(&self) -> bool {
        false
    }
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    /// The PIDFD_GET_*_NAMESPACE ioctls (Linux 6.11): a descriptor
    /// (close-on-exec) for a namespace of the thread the pidfd names.
    fn ioctl(&self, _f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        use crate::task::ns::NsKind;
        // _IO(PIDFS_IOCTL_MAGIC, 1..=10), in Linux's numbering.
        const PIDFS_IOCTL_MAGIC: u32 = 0xff;
        if cmd >> 8 != PIDFS_IOCTL_MAGIC {
            return error!(ENOTTY);
        }
        let kind = match cmd & 0xff {
            1 => NsKind::Cgroup,
            2 => NsKind::Ipc,
            3 => NsKind::Mnt,
            4 => NsKind::Net,
            5 => NsKind::Pid,
            6 => NsKind::PidForChildren,
            7 => NsKind::Time,
            8 => NsKind::TimeForChildren,
            9 => NsKind::User,
            10 => NsKind::Uts,
            // PIDFD_GET_INFO (11, Linux 6.13) is not supported: ENOTTY,
            // as a kernel before it says.
            _ => return error!(ENOTTY),
        };
        let task = self.task().ok_or(crate::errno!(ESRCH))?;
        if arg != 0 {
            return error!(EINVAL);
        }
        if !crate::task::ptrace::may_access(ctx.task, &task, true) {
            return error!(EACCES);
        }
        let ns = crate::task::ns::task_ns(&task, kind);
        let k = ns.kind();
        let file = crate::task::ns::open_ns_file(ns, k)?;
        install(ctx, file, true)
    }
    /// `Pid:` the process's pid in `ns` (0 if it is not visible there, -1
    /// once reaped); `NSpid:` that and its pids in the namespaces below.
    fn show_fdinfo(&self, _f: &OpenFile, ns: &Arc<PidNs>, out: &mut String) {
        // As Linux's pid_has_task(pid, PIDTYPE_PID): a non-leader thread
        // is gone at its exit, a process (or its leader) once reaped.
        let alive = if self.names_non_leader() {
            self.task().is_some()
        } else {
            self.unreaped()
        };
        let nr = if alive { ns.local(self.pid) } else { -1 };
        let mut nspid = nr.to_string();
        if nr > 0 {
            if let Some(g) = self.group.upgrade() {
                for p in g
                    .pid_ns()
                    .chain_of(self.pid)
                    .iter()
                    .skip(ns.level as usize + 1)
                {
                    nspid.push_str(&format!("\t{p}"));
                }
            }
        }
        out.push_str(&format!("Pid:\t{nr}\nNSpid:\t{nspid}\n"));
    }
}

/// The operations of `f`, to look at as a pidfd with [`pidfd_of`].
fn as_pidfd(f: &FileRef) -> KResult<Arc<dyn FileOps>> {
    Ok(f.ops().map_err(|_| crate::errno!(EBADF))?.clone())
}

/// The pidfd behind `ops`: EBADF when it is not one.
fn pidfd_of(ops: &Arc<dyn FileOps>) -> KResult<&PidFd> {
    ops.as_any_ops()
        .downcast_ref::<PidFd>()
        .ok_or(crate::errno!(EBADF))
}

/// Whether `f` is a pidfd.
pub fn is_pidfd(f: &FileRef) -> bool {
    as_pidfd(f).is_ok_and(|o| pidfd_of(&o).is_ok())
}

/// The process (global pid) a pidfd refers to, for waitid(P_PIDFD): EBADF
/// when `f` is not a pidfd. A thread pidfd gives its thread's id (which is
/// no child of anyone unless it is a leader: waitid then says ECHILD, as
/// Linux's PIDTYPE_PID wait).
pub fn pidfd_pid(f: &FileRef) -> KResult<i32> {
    let ops = as_pidfd(f)?;
    Ok(pidfd_of(&ops)?.pid)
}

/// The live thread a pidfd names (Linux's pid_task(pid, PIDTYPE_PID): for a
/// process pidfd, its leader thread), for setns(pidfd): EBADF when `f` is
/// not a pidfd, ESRCH when that thread is gone.
pub fn pidfd_task(f: &FileRef) -> KResult<Arc<Task>> {
    let ops = as_pidfd(f)?;
    pidfd_of(&ops)?.task().ok_or(crate::errno!(ESRCH))
}

/// A live thread of the process a pidfd refers to (Linux's
/// `pidfd_get_task` then `get_task_mm`): EBADF when `f` is not a pidfd,
/// ESRCH once the process was reaped or has exited (a zombie has no
/// address space).
pub fn pidfd_process_task(f: &FileRef) -> KResult<Arc<crate::task::Task>> {
    let ops = f.ops().map_err(|_| crate::errno!(EBADF))?.clone();
    let Some(p) = ops.as_any_ops().downcast_ref::<PidFd>() else {
        return error!(EBADF);
    };
    if !crate::kernel().tasks.unreaped(p.tgid, &p.group) {
        return error!(ESRCH);
    }
    p.group
        .upgrade()
        .and_then(|g| g.threads().into_iter().next())
        .ok_or(crate::errno!(ESRCH))
}

/// Woken whenever any process or thread exits (pidfds become readable).
pub fn pidfd_waiters() -> &'static Waiters {
    static W: OnceLock<Waiters> = OnceLock::new();
    W.get_or_init(Waiters::new)
}

/// A pidfd for a new child (clone's CLONE_PIDFD).
pub fn new_pidfd(group: &Arc<ThreadGroup>) -> FileRef {
    anon_file(
        "pidfd",
        Arc::new(PidFd {
            pid: group.tgid(),
            group: Arc::downgrade(group),
            tgid: group.tgid(),
            thread: None,
            ns: group.pid_ns(),
        }),
        O_RDWR,
    )
}

/// pidfd_open: `pid` as the caller's PID namespace names it. A process
/// (alive or a zombie not yet reaped) or, with PIDFD_THREAD, any live
/// thread; a non-leader thread without PIDFD_THREAD is ENOENT (Linux 6.15).
fn sys_pidfd_open(ctx: &mut SyscallContext<'_>, pid: i32, flags: u32) -> KResult<u64> {
    if flags & !(PIDFD_NONBLOCK | PIDFD_THREAD) != 0 || pid <= 0 {
        return error!(EINVAL);
    }
    let thread = flags & PIDFD_THREAD != 0;
    let global = ctx.task.pid_lookup(pid).ok_or(crate::errno!(ESRCH))?;
    let k = crate::kernel();
    let process = k.tasks.lock().get(&global).map(|n| n.group.clone());
    let fd = match process {
        // A process: its group, or none for a zombie.
        Some(group) => {
            let ns = group
                .as_ref()
                .map(|g| g.pid_ns())
                .unwrap_or_else(|| ctx.task.pid_ns());
            let leader = if thread {
                Some(
                    k.tasks
                        .thread(global)
                        .map(|t| Arc::downgrade(&t))
                        .unwrap_or_default(),
                )
            } else {
                None
            };
            PidFd {
                pid: global,
                group: group.as_ref().map(Arc::downgrade).unwrap_or_default(),
                tgid: global,
                thread: leader,
                ns,
            }
        }
        None => {
            let t = k.tasks.thread(global).ok_or(crate::errno!(ESRCH))?;
            if !thread {
                return error!(ENOENT);
            }
            PidFd {
                pid: global,
                group: Arc::downgrade(&t.group),
                tgid: t.tgid(),
                thread: Some(Arc::downgrade(&t)),
                ns: t.group.pid_ns(),
            }
        }
    };
    let f = anon_file("pidfd", Arc::new(fd), O_RDWR | (flags & O_NONBLOCK));
    f.keep_flags(flags & PIDFD_THREAD);
    install(ctx, f, true)
}

fn sys_pidfd_send_signal(
    ctx: &mut SyscallContext<'_>,
    fd: Fd,
    sig: i32,
    info: UserAddr,
    flags: u32,
) -> KResult<u64> {
    let scope_flags = PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP;
    if flags & !scope_flags != 0 || flags.count_ones() > 1 {
        return error!(EINVAL);
    }
    // PIDFD_SELF_THREAD and PIDFD_SELF_THREAD_GROUP (Linux 6.15): the
    // caller's own thread or process, without a descriptor.
    let own;
    let ops;
    let p: &PidFd = match fd.0 {
        PIDFD_SELF_THREAD | PIDFD_SELF_THREAD_GROUP => {
            let t = ctx.task;
            let thread = fd.0 == PIDFD_SELF_THREAD;
            own = PidFd {
                pid: if thread { t.tid() } else { t.tgid() },
                group: Arc::downgrade(&t.group),
                tgid: t.tgid(),
                thread: thread.then(|| Arc::downgrade(t)),
                ns: t.pid_ns(),
            };
            &own
        }
        _ => {
            let f = ctx.files().get(fd.0)?;
            ops = as_pidfd(&f)?;
            pidfd_of(&ops)?
        }
    };
    // The target must live in the caller's PID namespace or below it.
    if !ctx.task.pid_ns().is_ancestor_of(&p.ns) {
        return error!(EINVAL);
    }
    #[derive(PartialEq)]
    enum Scope {
        Thread,
        Process,
        Pgrp,
    }
    let scope = match flags {
        PIDFD_SIGNAL_THREAD => Scope::Thread,
        PIDFD_SIGNAL_THREAD_GROUP => Scope::Process,
        PIDFD_SIGNAL_PROCESS_GROUP => Scope::Pgrp,
        _ if p.thread.is_some() => Scope::Thread,
        _ => Scope::Process,
    };
    let code = if scope == Scope::Thread {
        crate::signal::SI_TKILL
    } else {
        crate::signal::SI_USER
    };
    let mut q = crate::signal::user_signal(ctx, sig, code);
    if !info.is_null() {
        let head: crate::signal::SigInfoHead = ctx.mm().read_val(info.0)?;
        if head.signo != sig {
            return error!(EINVAL);
        }
        // Only to oneself (the calling thread's own pid) may a sender
        // forge an si_code of the kernel's or tkill's.
        if (p.pid != ctx.task.tid() || scope == Scope::Pgrp)
            && (head.code >= 0 || head.code == crate::signal::SI_TKILL)
        {
            return error!(EPERM);
        }
        q.code = head.code;
        q.a = head.a;
        q.b = head.b;
    }
    if scope == Scope::Pgrp {
        return send_pgrp(ctx, p.pid, sig, q);
    }
    let Some(task) = p.task() else {
        // Linux keeps a zombie leader's task: a signal to a process not
        // yet reaped (or whose leader thread alone has exited) is
        // accepted and discarded. A non-leader thread is gone at exit.
        if p.names_non_leader() || !p.unreaped() {
            return error!(ESRCH);
        }
        if !(0..=crate::signal::NSIG).contains(&sig) {
            return error!(EINVAL);
        }
        if scope == Scope::Process && sig != 0 {
            if let Some(g) = p.live_group() {
                if !crate::task::caps::may_signal(ctx.task, &g, sig) {
                    return error!(EPERM);
                }
                crate::signal::send_kill(&g, q);
            }
        }
        return Ok(0);
    };
    if !(0..=crate::signal::NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    if !crate::task::caps::may_signal(ctx.task, &task.group, sig) {
        return error!(EPERM);
    }
    if sig == 0 {
        return Ok(0);
    }
    if scope == Scope::Thread {
        if crate::signal::sigpending_full(&task.group, sig, q.code) {
            return error!(EAGAIN);
        }
        crate::signal::send_thread(&task, q);
    } else {
        if crate::signal::sigpending_full(&task.group, sig, q.code) {
            return error!(EAGAIN);
        }
        crate::signal::send_kill(&task.group, q);
    }
    Ok(0)
}

/// PIDFD_SIGNAL_PROCESS_GROUP: the process group whose id is the pidfd's
/// pid (Linux's kill_pgrp_info on the pidfd's struct pid: ESRCH unless
/// the process leads a group). Success if any member may be signalled.
fn send_pgrp(
    ctx: &SyscallContext<'_>,
    pgid: i32,
    sig: i32,
    q: crate::signal::Queued,
) -> KResult<u64> {
    let members: Vec<Arc<ThreadGroup>> = crate::kernel()
        .tasks
        .lock()
        .values()
        .filter(|n| n.pgid == pgid && n.zombie.is_none())
        .filter_map(|n| n.group.clone())
        .collect();
    if members.is_empty() {
        return error!(ESRCH);
    }
    if !(0..=crate::signal::NSIG).contains(&sig) {
        return error!(EINVAL);
    }
    let mut result = error!(EPERM);
    for g in members {
        if crate::task::caps::may_signal(ctx.task, &g, sig) {
            if sig != 0 {
                crate::signal::send_kill(&g, q);
            }
            result = Ok(0);
        }
    }
    result
}

/// pidfd_getfd: a duplicate (close-on-exec) of descriptor `fd` of the
/// thread a pidfd names (a process pidfd: its leader thread), for a
/// caller allowed to ptrace it (PTRACE_MODE_ATTACH_REALCREDS).
fn sys_pidfd_getfd(ctx: &mut SyscallContext<'_>, pidfd: i32, fd: i32, flags: u32) -> KResult<u64> {
    if flags != 0 {
        return error!(EINVAL);
    }
    let f = ctx.files().get(pidfd)?;
    let ops = as_pidfd(&f)?;
    let task = pidfd_of(&ops)?.task().ok_or(crate::errno!(ESRCH))?;
    if !crate::task::ptrace::may_access(ctx.task, &task, false) {
        return error!(EPERM);
    }
    let file = task.files().get(fd)?;
    install(ctx, file, true)
}

#[allow(dead_code)]
const _: u32 = POLLOUT;
