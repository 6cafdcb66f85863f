//! Pseudo-terminals: /dev/ptmx (each open makes a new master) and devpts
//! (mounted on /dev/pts) with the slaves /dev/pts/N and /dev/pts/ptmx.
//!
//! A pty is one [`Tty`] (the slave's terminal, with its line discipline)
//! plus the master's view of it: master writes are the slave's input,
//! master reads take the slave's processed output. The slave starts
//! locked (TIOCSPTLCK unlocks it: unlockpt); TIOCGPTN gives N (ptsname);
//! TIOCGPTPEER opens the slave from the master. When every slave
//! description is closed, master reads give EIO once drained; when the
//! master closes, the slave hangs up (reads end of file, writes EIO) and
//! its foreground group gets SIGHUP, and /dev/pts/N disappears.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::poll::{PollEvents, Waiters};
use crate::fs::simple::{now, Meta, SynthDir};
use crate::fs::tty::{Kind, Termios, Tty};
use crate::fs::types::{oflags::*, FileType, Stat, StatFs, S_IFCHR, S_IFDIR};
use crate::fs::vfs::{anon_dev, Caller, FileOps, Inode, InodeKey};
use crate::syscalls::SyscallContext;
use crate::task::Task;

/// devpts's magic.
pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// The most ptys at once (Linux's default kernel.pty.max).
const PTY_MAX: u32 = 4096;

pub const TIOCPKT: u32 = 0x5420;
pub const TIOCGPTN: u32 = 0x8004_5430;
pub const TIOCSPTLCK: u32 = 0x4004_5431;
pub const TIOCGPKT: u32 = 0x8004_5438;
pub const TIOCGPTLCK: u32 = 0x8004_5439;
pub const TIOCGPTPEER: u32 = 0x5441;

struct PtyEntry {
    tty: Weak<Tty>,
    /// The slave node's inode (stable while the pty lives).
    node: Arc<PtsNode>,
}

fn ptys() -> MutexGuard<'static, BTreeMap<u32, PtyEntry>> {
    static PTYS: Mutex<BTreeMap<u32, PtyEntry>> = Mutex::new(BTreeMap::new());
    PTYS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The devpts superblock's identity (one devpts instance).
fn devpts_meta() -> Meta {
    static META: std::sync::OnceLock<Meta> = std::sync::OnceLock::new();
    *META.get_or_init(|| Meta {
        dev: anon_dev(),
        ino: 1,
        magic: DEVPTS_SUPER_MAGIC,
        time: now(),
        read_only: false,
    })
}

/// Opens /dev/ptmx: a new pty; returns the master's operations. The
/// slave /dev/pts/N belongs to the opener's fsuid, group tty (5), mode
/// 0620, as devpts mounted `gid=5,mode=620` gives it on Linux
/// (devpts_pty_new takes current_fsuid()).
pub fn open_ptmx(owner: u32) -> KResult<Arc<dyn FileOps>> {
    let mut map = ptys();
    map.retain(|_, e| e.tty.strong_count() > 0);
    let index = (0..PTY_MAX)
        .find(|i| !map.contains_key(i))
        .ok_or(crate::errno!(ENOSPC))?;
    let tty = Tty::new(Kind::PtySlave(index), Termios::pty_slave(), [0; 4], 1);
    let node = Arc::new(PtsNode {
        meta: devpts_meta().with_ino(index as u64 + 3),
        index,
        attrs: crate::fs::devfs::DevAttrs::new(0o620, owner, 5, now()),
    });
    map.insert(
        index,
        PtyEntry {
            tty: Arc::downgrade(&tty),
            node,
        },
    );
    Ok(Arc::new(PtyMaster { tty, index }))
}

/// The slave terminal of pty `index`, while its master is open.
pub(crate) fn slave_tty(index: u32) -> Option<Arc<Tty>> {
    ptys().get(&index).and_then(|e| e.tty.upgrade())
}

/// Opens the slave `tty` for a task (`tgid`, 0 = the kernel).
pub fn open_slave(tty: &Arc<Tty>, flags: u32, tgid: i32) -> KResult<Arc<dyn FileOps>> {
    let readable = matches!(flags & O_ACCMODE, O_RDONLY | O_RDWR);
    tty.slave_open(tgid, flags & O_NOCTTY != 0, readable)?;
    Ok(Arc::new(TtyFile {
        tty: tty.clone(),
        out_fd: 1,
        counted: true,
    }))
}

/// An open pty master.
pub struct PtyMaster {
    tty: Arc<Tty>,
    index: u32,
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        self.tty.master_close();
        ptys().remove(&self.index);
    }
}

impl FileOps for PtyMaster {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.tty.master_read(buf, f.nonblocking(), task)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.tty.master_write(buf, f.nonblocking(), task)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        Some(Ok(self.tty.master_bytes_available()))
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        self.tty.master_poll()
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.tty.master_waiters)
    }
    fn ioctl(&self, f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        let mm = ctx.mm();
        match cmd {
            TIOCGPTN => {
                mm.write_val(arg, &self.index)?;
                Ok(0)
            }
            TIOCSPTLCK => {
                let v: i32 = mm.read_val(arg)?;
                self.tty.set_locked(v != 0);
                Ok(0)
            }
            TIOCGPTLCK => {
                mm.write_val(arg, &(self.tty.is_locked() as i32))?;
                Ok(0)
            }
            TIOCPKT => {
                let v: i32 = mm.read_val(arg)?;
                if v != 0 {
                    // Packet mode is not supported.
                    return error!(EINVAL);
                }
                Ok(0)
            }
            TIOCGPKT => {
                mm.write_val(arg, &0i32)?;
                Ok(0)
            }
            TIOCGPTPEER => {
                let flags = arg as u32;
                if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
                    return error!(EINVAL);
                }
                let p = {
                    let map = ptys();
                    let e = map.get(&self.index).ok_or(crate::errno!(EIO))?;
                    let node: Arc<dyn Inode> = e.node.clone();
                    pts_path(&f.path, self.index, node)
                };
                let ops = open_slave(&self.tty, flags, ctx.task.tgid())?;
                let file = OpenFile::new(p, Some(ops), flags | O_NOCTTY);
                let fd = ctx.files().alloc(file, flags & O_CLOEXEC != 0)?;
                Ok(fd as u64)
            }
            _ => self
                .tty
                .ioctl(cmd, arg, &mm, Some(ctx.task), f.can_read(), true),
        }
    }
}

/// A path for /dev/pts/N opened through TIOCGPTPEER: beside the master's
/// /dev/ptmx, under a `pts` dentry (d_path gives /dev/pts/N).
fn pts_path(
    master: &crate::fs::vfs::Path,
    index: u32,
    node: Arc<dyn Inode>,
) -> crate::fs::vfs::Path {
    use crate::fs::vfs::{Dentry, Path};
    let parent = master
        .dentry
        .parent
        .clone()
        .unwrap_or_else(|| master.dentry.clone());
    let dir = Dentry::child(
        &parent,
        b"pts",
        Arc::new(PtsDir {
            meta: devpts_meta(),
        }),
    );
    Path {
        mnt: master.mnt.clone(),
        dentry: Dentry::child(&dir, index.to_string().as_bytes(), node),
    }
}

/// An open terminal (slave side): a pty slave, or the console with its
/// line discipline. `out_fd` is the console's host descriptor for output.
pub struct TtyFile {
    pub tty: Arc<Tty>,
    pub out_fd: i32,
    /// Counted among the pty's open slaves.
    pub counted: bool,
}

impl Drop for TtyFile {
    fn drop(&mut self) {
        if self.counted {
            self.tty.slave_close();
        }
    }
}

impl FileOps for TtyFile {
    fn read_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &mut [u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.tty.read(buf, f.nonblocking(), task)
    }
    fn write_as(
        &self,
        f: &OpenFile,
        _off: u64,
        buf: &[u8],
        task: Option<&Arc<Task>>,
    ) -> KResult<usize> {
        self.tty.write(buf, f.nonblocking(), task, self.out_fd)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn bytes_available(&self) -> Option<KResult<usize>> {
        Some(Ok(self.tty.bytes_available()))
    }
    fn poll(&self, _f: &OpenFile) -> PollEvents {
        self.tty.poll()
    }
    fn waiters(&self) -> Option<&Waiters> {
        Some(&self.tty.waiters)
    }
    fn ioctl(&self, f: &OpenFile, cmd: u32, arg: u64, ctx: &SyscallContext<'_>) -> KResult<u64> {
        self.tty
            .ioctl(cmd, arg, &ctx.mm(), Some(ctx.task), f.can_read(), false)
    }
}

/// /dev/pts/N.
struct PtsNode {
    meta: Meta,
    index: u32,
    /// Owner, mode and times (chown/chmod by login, getty, sshd).
    attrs: crate::fs::devfs::DevAttrs,
}

impl Inode for PtsNode {
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.meta.stat(S_IFCHR | 0o620, 1, 0);
        st.rdev = (136 + self.index / 256, self.index % 256);
        self.attrs.apply(&mut st);
        Ok(st)
    }
    fn setattr(&self, a: &crate::fs::vfs::SetAttr) -> KResult<()> {
        self.attrs.setattr(a)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let tty = slave_tty(self.index).ok_or(crate::errno!(EIO))?;
        open_slave(&tty, flags, caller.tgid)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /dev/pts/ptmx (and /dev/ptmx): mode 0 in devpts, 0666 in devfs.
pub struct PtmxNode {
    pub meta: Meta,
    pub perm: u32,
}

impl Inode for PtmxNode {
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.meta.stat(S_IFCHR | self.perm, 1, 0);
        st.rdev = (5, 2);
        st.gid = 5;
        Ok(st)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        open_ptmx(caller.fsuid())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The devpts root: ptmx and one node per live pty.
pub struct PtsDir {
    meta: Meta,
}

/// devpts's root inode.
pub fn new_devpts() -> Arc<dyn Inode> {
    Arc::new(PtsDir {
        meta: devpts_meta(),
    })
}

impl Inode for PtsDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o755, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxNode {
                meta: self.meta.with_ino(2),
                perm: 0,
            }));
        }
        let s = std::str::from_utf8(name).map_err(|_| crate::errno!(ENOENT))?;
        if s.is_empty()
            || s.starts_with('0') && s.len() > 1
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return error!(ENOENT);
        }
        let n: u32 = s.parse().map_err(|_| crate::errno!(ENOENT))?;
        let mut map = ptys();
        map.retain(|_, e| e.tty.strong_count() > 0);
        match map.get(&n) {
            Some(e) => Ok(e.node.clone()),
            None => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let c = FileType::CharDevice.dirent_type();
        let mut entries = vec![
            (1, d, b".".to_vec()),
            (1, d, b"..".to_vec()),
            (2, c, b"ptmx".to_vec()),
        ];
        let mut map = ptys();
        map.retain(|_, e| e.tty.strong_count() > 0);
        for (n, _) in map.iter() {
            entries.push((*n as u64 + 3, c, n.to_string().into_bytes()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
