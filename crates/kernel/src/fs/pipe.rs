//! Pipes: a 64 KiB buffer between reader and writer ends.
//!
//! A [`Pipe`] is one Mutex-protected ring plus one [`Waiters`] queue,
//! woken on every change (data, room, an end closing). Each open end
//! ([`PipeEnd`]) counts itself in `readers` / `writers` while alive;
//! dropping the last writer gives readers EOF, dropping the last reader
//! gives writers EPIPE (SIGPIPE: `syscalls::write_result`). Writes of at
//! most PIPE_BUF (4096) bytes are atomic: they wait until all of it fits.
//! Blocking waits sleep on the queue as the calling task, so a signal
//! interrupts them: ERESTARTSYS if nothing moved, else the partial count.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::poll::{self, PollEvents, Waiters};
use crate::fs::types::{encode_dev, oflags::*, FileType, Stat, StatFs, S_IFDIR, S_IFIFO};
use crate::fs::vfs::{anon_dev, Caller, Dentry, FileOps, Inode, InodeKey, Mount, Path};
use crate::task::Task;

/// The default capacity (Linux: 16 pages).
pub const PIPE_SIZE: usize = 65536;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
const PIPEFS_MAGIC: i64 = 0x5049_5045;

struct State {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
    /// Capacity in bytes (F_SETPIPE_SZ); 0 means the default PIPE_SIZE.
    cap: usize,
    /// How many read / write ends were ever opened (Linux's r_counter and
    /// w_counter). A blocking FIFO open waits for the partner's counter to
    /// move, not for a partner to be open *now*: a writer that opens,
    /// writes and closes before the reader runs again still releases it.
    read_opens: u64,
    write_opens: u64,
}

impl State {
    fn capacity(&self) -> usize {
        if self.cap == 0 {
            PIPE_SIZE
        } else {
            self.cap
        }
    }
}

/// A pipe; see the module doc.
pub struct Pipe {
    state: Mutex<State>,
    waiters: Waiters,
}

impl Pipe {
    fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State {
                buf: VecDeque::new(),
                readers: 0,
                writers: 0,
                cap: 0,
                read_opens: 0,
                write_opens: 0,
            }),
            waiters: Waiters::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, buf: &mut [u8], nonblock: bool, task: Option<&Arc<Task>>) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut st = self.lock();
                if !st.buf.is_empty() {
                    let n = buf.len().min(st.buf.len());
                    for (d, s) in buf.iter_mut().zip(st.buf.drain(..n)) {
                        *d = s;
                    }
                    drop(st);
                    self.waiters.wake_all();
                    return Ok(n);
                }
                if st.writers == 0 {
                    return Ok(0);
                }
                if nonblock {
                    return error!(EAGAIN);
                }
            }
            self.waiters.wait(task, None, || {
                let st = self.lock();
                !st.buf.is_empty() || st.writers == 0
            })?;
        }
    }

    fn write(&self, data: &[u8], nonblock: bool, task: Option<&Arc<Task>>) -> KResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let atomic = data.len() <= PIPE_BUF;
        let mut done = 0usize;
        loop {
            {
                let mut st = self.lock();
                if st.readers == 0 {
                    return if done > 0 { Ok(done) } else { error!(EPIPE) };
                }
                let free = st.capacity().saturating_sub(st.buf.len());
                let left = data.len() - done;
                if free > 0 && (!atomic || free >= left) {
                    let n = free.min(left);
                    st.buf.extend(&data[done..done + n]);
                    done += n;
                    drop(st);
                    self.waiters.wake_all();
                    if done == data.len() {
                        return Ok(done);
                    }
                    continue;
                }
                if nonblock {
                    return if done > 0 { Ok(done) } else { error!(EAGAIN) };
                }
            }
            let need = if atomic { data.len() - done } else { 1 };
            let r = self.waiters.wait(task, None, || {
                let st = self.lock();
                st.readers == 0 || st.capacity().saturating_sub(st.buf.len()) >= need
            });
            if let Err(e) = r {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }

    /// Readiness of an end that reads and/or writes.
    fn poll(&self, read: bool, write: bool) -> PollEvents {
        let st = self.lock();
        let mut ev = 0;
        if read {
            if !st.buf.is_empty() {
                ev |= poll::READABLE;
            }
            if st.writers == 0 {
                ev |= poll::POLLHUP;
            }
        }
        if write {
            if st.capacity().saturating_sub(st.buf.len()) >= PIPE_BUF {
                ev |= poll::WRITABLE;
            }
            if st.readers == 0 {
                ev |= poll::POLLERR;
            }
        }
        ev
    }

    fn available(&self) -> usize {
        self.lock().buf.len()
    }
}

/// One end of a pipe (or both, for an O_RDWR reopen through /proc).
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
}

impl PipeEnd {
    fn new(pipe: &Arc<Pipe>, read: bool, write: bool) -> Arc<PipeEnd> {
        PipeEnd::attach(pipe, &mut pipe.lock(), read, write)
    }

    /// Counts a new end in `st` (the locked state of `pipe`), so that a
    /// caller can look at the partner counts in the same critical section.
    fn attach(pipe: &Arc<Pipe>, st: &mut State, read: bool, write: bool) -> Arc<PipeEnd> {
        if read {
            st.readers += 1;
            st.read_opens += 1;
        }
        if write {
            st.writers += 1;
            st.write_opens += 1;
        }
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            read,
            write,
        })
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.lock();
            if self.read {
                st.readers -= 1;
            }
            if self.write {
                st.writers -= 1;
            }
        }
        self.pipe.waiters.wake_all();
    }
}

impl FileOps for PipeEnd {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        &self.pipe
    }
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.pipe.read(buf, f.nonblocking(), task)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.pipe.write(buf, f.nonblocking(), task)
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        self.pipe.poll(self.read, self.write)
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.pipe.waiters)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        Some(Ok(self.pipe.available()))
    }
}

/// The inode of a pipe on the internal pipefs (fstat, /proc/self/fd).
struct PipeInode {
    pipe: Arc<Pipe>,
    ino: u64,
    dev: (u32, u32),
    time: (i64, u32),
}

impl Inode for PipeInode {
    fn file_type(&self) -> FileType {
        FileType::Fifo
    }
    fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), self.ino)
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: self.ino,
            mode: S_IFIFO | 0o600,
            nlink: 1,
            blksize: 4096,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs::pseudo(PIPEFS_MAGIC))
    }
    /// Reopening through /proc/self/fd/N: a new end of the same pipe.
    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let (r, w) = match flags & O_ACCMODE {
            O_RDONLY => (true, false),
            O_WRONLY => (false, true),
            _ => (true, true),
        };
        Ok(PipeEnd::new(&self.pipe, r, w))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The root of pipefs (never visible: pipefs is not mounted anywhere).
struct PipeFsRoot {
    dev: (u32, u32),
}

impl Inode for PipeFsRoot {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        (encode_dev(self.dev.0, self.dev.1), 1)
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: 1,
            mode: S_IFDIR | 0o700,
            nlink: 2,
            blksize: 4096,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs::pseudo(PIPEFS_MAGIC))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn pipefs() -> &'static (Arc<Mount>, (u32, u32)) {
    static PIPEFS: OnceLock<(Arc<Mount>, (u32, u32))> = OnceLock::new();
    PIPEFS.get_or_init(|| {
        let dev = anon_dev();
        (
            Mount::new("pipefs", Arc::new(PipeFsRoot { dev }), None, false, true),
            dev,
        )
    })
}

fn now() -> (i64, u32) {
    crate::vdso::realtime()
}

/// pipe2(2)'s work: a new pipe's (read end, write end). `flags` may hold
/// O_NONBLOCK (O_CLOEXEC is the descriptor's business).
pub fn new_pipe(flags: u32) -> (FileRef, FileRef) {
    static NEXT_INO: AtomicU64 = AtomicU64::new(1000);
    let (mnt, dev) = pipefs();
    let pipe = Pipe::new();
    let ino = NEXT_INO.fetch_add(1, Ordering::Relaxed);
    let inode = Arc::new(PipeInode {
        pipe: pipe.clone(),
        ino,
        dev: *dev,
        time: now(),
    });
    let name = format!("pipe:[{ino}]").into_bytes();
    let path = Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, &name, inode),
    };
    let status = flags & O_NONBLOCK;
    let r = OpenFile::new_pseudo(
        path.clone(),
        Some(PipeEnd::new(&pipe, true, false)),
        O_RDONLY | status,
    );
    let w = OpenFile::new_pseudo(
        path,
        Some(PipeEnd::new(&pipe, false, true)),
        O_WRONLY | status,
    );
    (r, w)
}

/// Named pipes (FIFOs): one pipe per FIFO inode while any end is open.
fn fifos() -> &'static Mutex<std::collections::HashMap<InodeKey, std::sync::Weak<Pipe>>> {
    static F: OnceLock<Mutex<std::collections::HashMap<InodeKey, std::sync::Weak<Pipe>>>> =
        OnceLock::new();
    F.get_or_init(|| Mutex::new(std::collections::HashMap::new()))
}

/// Opens the FIFO `key` as fifo(7) says: a reader waits for a writer and
/// a writer for a reader (unless O_NONBLOCK: then a reader opens at once
/// and a writer without readers gets ENXIO); O_RDWR never waits.
pub fn open_fifo(key: InodeKey, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
    let pipe = {
        let mut m = fifos().lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, w| w.strong_count() > 0);
        match m.get(&key).and_then(|w| w.upgrade()) {
            Some(p) => p,
            None => {
                let p = Pipe::new();
                m.insert(key, Arc::downgrade(&p));
                p
            }
        }
    };
    let nonblock = flags & O_NONBLOCK != 0;
    let (read, write) = match flags & O_ACCMODE {
        O_RDONLY => (true, false),
        O_WRONLY => (false, true),
        _ => (true, true),
    };
    let partner_opens = |st: &State| if read { st.write_opens } else { st.read_opens };
    // Attach our end and look at the partner in one critical section: a
    // partner that opens, works and closes right after must still count.
    let (end, seen) = {
        let mut st = pipe.lock();
        if write && !read && nonblock && st.readers == 0 {
            return error!(ENXIO);
        }
        let end = PipeEnd::attach(&pipe, &mut st, read, write);
        let partners = if read { st.writers } else { st.readers };
        let must_wait = read != write && !nonblock && partners == 0;
        (end, must_wait.then(|| partner_opens(&st)))
    };
    pipe.waiters.wake_all();
    if let Some(seen) = seen {
        let task = caller
            .task
            .and_then(|t| crate::kernel().tasks.thread(t.tid()));
        let r = pipe
            .waiters
            .wait(task.as_ref(), None, || partner_opens(&pipe.lock()) != seen);
        if let Err(e) = r {
            return Err(if e == crate::errno::Errno::ERESTARTSYS {
                crate::errno::Errno::EINTR
            } else {
                e
            });
        }
    }
    Ok(end)
}

/// The pipe behind an open file, if it is one.
/// Whether `a` and `b` are ends of one pipe.
pub fn same_pipe(a: &OpenFile, b: &OpenFile) -> bool {
    matches!((pipe_of(a), pipe_of(b)), (Some(x), Some(y)) if Arc::ptr_eq(&x, &y))
}

fn pipe_of(f: &OpenFile) -> Option<Arc<Pipe>> {
    let ops = f.ops().ok()?;
    ops.as_any_ops().downcast_ref::<Arc<Pipe>>().cloned()
}

/// Waits, as a read of pipe `f` would but consuming nothing, until it
/// holds data (true) or has no writer left (false); EAGAIN if it would
/// wait and `nonblock`, ERESTARTSYS on a signal. EBADF if no pipe.
pub fn wait_readable(f: &OpenFile, nonblock: bool, task: Option<&Arc<Task>>) -> KResult<bool> {
    let p = pipe_of(f).ok_or(crate::errno!(EBADF))?;
    let ready = || {
        let st = p.lock();
        !st.buf.is_empty() || st.writers == 0
    };
    if !ready() {
        if nonblock {
            return error!(EAGAIN);
        }
        p.waiters.wait(task, None, ready)?;
    }
    let has = !p.lock().buf.is_empty();
    Ok(has)
}

/// F_GETPIPE_SZ.
pub fn get_size(f: &OpenFile) -> KResult<usize> {
    let p = pipe_of(f).ok_or(crate::errno!(EBADF))?;
    let cap = p.lock().capacity();
    Ok(cap)
}

/// F_SETPIPE_SZ: rounds up to a power-of-two number of pages; EBUSY if
/// the data already in the pipe would not fit; above fs.pipe-max-size
/// EPERM unless `privileged` (CAP_SYS_RESOURCE), above 2^31 EINVAL.
pub fn set_size(f: &OpenFile, want: u64, privileged: bool) -> KResult<usize> {
    let p = pipe_of(f).ok_or(crate::errno!(EBADF))?;
    if want > 1 << 31 {
        return error!(EINVAL);
    }
    let max = crate::fs::procsys::PIPE_MAX_SIZE.load(std::sync::atomic::Ordering::Relaxed);
    if want > max as u64 && !privileged {
        return error!(EPERM);
    }
    // Pipe buffers are kernel memory: none grows past this, privileged
    // or not (Linux fails such an allocation with ENOMEM too).
    if want > crate::fs::procsys::PIPE_HARD_MAX as u64 {
        return error!(ENOMEM);
    }
    let size = (want as usize).max(4096).next_power_of_two();
    let mut st = p.lock();
    if st.buf.len() > size {
        return error!(EBUSY);
    }
    st.cap = size;
    drop(st);
    p.waiters.wake_all();
    Ok(size)
}

/// tee(2): copies up to `len` bytes from pipe `inf` to pipe `outf`
/// without consuming them.
pub fn tee(
    inf: &OpenFile,
    outf: &OpenFile,
    len: usize,
    nonblock: bool,
    task: Option<&Arc<Task>>,
) -> KResult<usize> {
    let (Some(a), Some(b)) = (pipe_of(inf), pipe_of(outf)) else {
        return error!(EINVAL);
    };
    if Arc::ptr_eq(&a, &b) {
        return error!(EINVAL);
    }
    let ready = || {
        let st = a.lock();
        !st.buf.is_empty() || st.writers == 0
    };
    if !ready() {
        if nonblock {
            return error!(EAGAIN);
        }
        a.waiters.wait(task, None, ready)?;
    }
    let data: Vec<u8> = a.lock().buf.iter().take(len).copied().collect();
    if data.is_empty() {
        return Ok(0);
    }
    let mut st = b.lock();
    if st.readers == 0 {
        return error!(EPIPE);
    }
    let room = st.capacity().saturating_sub(st.buf.len());
    if room == 0 {
        return error!(EAGAIN);
    }
    let n = room.min(data.len());
    st.buf.extend(&data[..n]);
    drop(st);
    b.waiters.wake_all();
    Ok(n)
}
