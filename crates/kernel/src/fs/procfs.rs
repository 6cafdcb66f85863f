//! procfs at /proc: `self`, `thread-self`, a directory per process
//! (stat, status, statm, cmdline, comm, environ, maps, smaps, limits,
//! mounts, mountinfo, fd/, fdinfo/, task/, exe, cwd, root) and the system
//! files (cpuinfo, meminfo, stat, uptime, loadavg, mounts, filesystems,
//! version, sys/kernel/*, sys/vm/overcommit_memory).
//!
//! Files are generated whole when opened (a snapshot, as Linux's
//! seq_file gives for small files). Inodes are made per lookup and hold
//! only a pid; no locking of their own.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{now, Meta, SynthDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFDIR, S_IFLNK, S_IFREG};
use crate::fs::vfs::{anon_dev, d_path, Caller, FileOps, Inode, InodeKey, Link};
use crate::task::{Task, ThreadGroup};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const HZ: u64 = 100;

fn pid_ino(pid: i32, sub: u64) -> u64 {
    ((pid as u32 as u64) << 16) | sub
}

/// Builds a procfs root (showing the initial PID namespace).
pub fn new_procfs() -> Arc<dyn Inode> {
    new_procfs_in(&crate::task::ns::root_pid())
}

/// Builds a procfs root showing PID namespace `ns` (mount(2) of "proc"
/// passes the mounter's: fs/procns.rs).
pub fn new_procfs_in(ns: &Arc<crate::task::ns::PidNs>) -> Arc<dyn Inode> {
    let dev = anon_dev();
    crate::fs::procns::register(dev, ns);
    Arc::new(ProcRoot {
        meta: Meta {
            dev,
            ino: 1,
            magic: PROC_SUPER_MAGIC,
            time: now(),
            read_only: false,
        },
    })
}

fn parse_num(name: &[u8]) -> Option<i32> {
    if name.is_empty()
        || name.len() > 10
        || (name[0] == b'0' && name.len() > 1)
        || !name.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn live_group(pid: i32) -> Option<Arc<ThreadGroup>> {
    crate::kernel_booted()
        .then(|| crate::kernel().tasks.group(pid))
        .flatten()
}

fn thread_of(pid: i32, tid: i32) -> Option<Arc<Task>> {
    let t = crate::kernel().tasks.thread(tid)?;
    (t.tgid() == pid).then_some(t)
}

fn leader(pid: i32) -> Option<Arc<Task>> {
    let g = live_group(pid)?;
    let threads = g.threads();
    threads
        .iter()
        .find(|t| t.tid() == pid)
        .cloned()
        .or_else(|| threads.into_iter().next())
}

/// Sets the owner of a /proc/PID inode from process `pid`, as Linux's
/// task_dump_owner: its effective uid and gid, except that a process
/// made non-dumpable (PR_SET_DUMPABLE 0, or a credential change) has
/// its entries owned by root — all but the plain 0555 directories.
pub(crate) fn pid_owned(mut st: Stat, pid: i32) -> Stat {
    let plain_dir = st.mode == S_IFDIR | 0o555;
    if let Some(g) = live_group(pid) {
        if plain_dir || g.dumpable() {
            let c = g.creds.lock().unwrap_or_else(|p| p.into_inner());
            (st.uid, st.gid) = (c.euid, c.egid);
        }
    } else if let Some(z) = zombie(pid) {
        let c = &z.remains.creds;
        (st.uid, st.gid) = (c.euid, c.egid);
    }
    st
}

/// Process `pid` if it is a zombie (fs/proczombie.rs).
fn zombie(pid: i32) -> Option<crate::fs::proczombie::Zombie> {
    crate::fs::proczombie::remains(pid)
}

/// Every process's pid, zombies' too (/proc/PID stays until the reap), in
/// order.
fn all_pids() -> Vec<i32> {
    if !crate::kernel_booted() {
        return Vec::new();
    }
    crate::kernel().tasks.lock().keys().copied().collect()
}

struct ProcRoot {
    meta: Meta,
}

/// What a generated file shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    Stat(i32, i32),
    Status(i32, i32),
    Statm(i32),
    Cmdline(i32),
    Comm(i32, i32),
    Environ(i32),
    Auxv(i32),
    Maps(i32),
    Smaps(i32),
    Limits(i32),
    Mounts(i32),
    MountInfo(i32),
    FdInfo(i32, i32),
    Cgroup,
    OomScoreAdj(i32),
    OomScore(i32),
    /// /proc/PID/timens_offsets (time/ns.rs).
    TimensOffsets(i32),
    CpuInfo,
    MemInfo,
    SysStat,
    Uptime,
    LoadAvg,
    Filesystems,
    Partitions,
    Version,
    /// /proc/cmdline: the kernel command line ruml was given.
    KernelCmdline,
    /// /proc/config.gz (fs/procconfig.rs).
    ConfigGz,
    OsType,
    OsRelease,
    /// /proc/sys/kernel/random/boot_id: one random UUID per boot.
    BootId,
    /// /proc/sys/kernel/random/uuid: a fresh random UUID on every open.
    Uuid,
    Text(&'static str),
    /// /proc/sys/fs/aio-nr (fs/aio.rs).
    AioNr,
    /// A /proc/net file (crate::net::procnet).
    Net(&'static str),
    /// /proc/keys and /proc/key-users (keys/).
    Keys,
    KeyUsers,
}

impl Gen {
    /// The process a per-process file is about.
    fn pid(self) -> Option<i32> {
        match self {
            Gen::Stat(p, _)
            | Gen::Status(p, _)
            | Gen::Statm(p)
            | Gen::Cmdline(p)
            | Gen::Comm(p, _)
            | Gen::Environ(p)
            | Gen::Auxv(p)
            | Gen::Maps(p)
            | Gen::Smaps(p)
            | Gen::Limits(p)
            | Gen::Mounts(p)
            | Gen::MountInfo(p)
            | Gen::FdInfo(p, _)
            | Gen::OomScoreAdj(p)
            | Gen::OomScore(p)
            | Gen::TimensOffsets(p) => Some(p),
            _ => None,
        }
    }
}

impl Inode for ProcRoot {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o555, 3, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let m = |ino| self.meta.with_ino(ino);
        let file = |ino, g| -> KResult<Arc<dyn Inode>> {
            Ok(Arc::new(GenFile {
                meta: m(ino),
                gen: g,
                perm: 0o444,
            }))
        };
        match name {
            b"self" => Ok(Arc::new(SelfLink {
                meta: m(2),
                thread: false,
            })),
            b"thread-self" => Ok(Arc::new(SelfLink {
                meta: m(3),
                thread: true,
            })),
            b"cpuinfo" => file(10, Gen::CpuInfo),
            b"meminfo" => file(11, Gen::MemInfo),
            b"stat" => file(12, Gen::SysStat),
            b"uptime" => file(13, Gen::Uptime),
            b"loadavg" => file(14, Gen::LoadAvg),
            b"filesystems" => file(15, Gen::Filesystems),
            b"keys" => file(450, Gen::Keys),
            b"key-users" => file(451, Gen::KeyUsers),
            b"partitions" => file(18, Gen::Partitions),
            b"version" => file(16, Gen::Version),
            b"cmdline" => file(19, Gen::KernelCmdline),
            b"config.gz" => file(21, Gen::ConfigGz),
            b"mounts" => Ok(Arc::new(SelfRelLink {
                meta: m(17),
                rest: b"mounts",
            })),
            b"sys" => Ok(Arc::new(SysDir {
                meta: m(20),
                node: SysNode::Root,
            })),
            b"sysvipc" => Ok(crate::ipc::proc::sysvipc_dir(&self.meta)),
            b"net" => Ok(Arc::new(SysDir {
                meta: m(100),
                node: SysNode::Net,
            })),
            // Pids are this instance's PID namespace's (procns.rs).
            _ => match parse_num(name)
                .and_then(|n| crate::fs::procns::view(self.meta.dev).global(n))
            {
                Some(pid) if live_group(pid).is_some() || zombie(pid).is_some() => {
                    Ok(Arc::new(PidDir {
                        meta: m(pid_ino(pid, 1)),
                        pid,
                        tid: None,
                    }))
                }
                _ => error!(ENOENT),
            },
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let r = FileType::Regular.dirent_type();
        let l = FileType::Symlink.dirent_type();
        let mut entries = vec![(1, d, b".".to_vec()), (1, d, b"..".to_vec())];
        for (ino, t, n) in [
            (19, r, "cmdline"),
            (21, r, "config.gz"),
            (10, r, "cpuinfo"),
            (15, r, "filesystems"),
            (450, r, "keys"),
            (451, r, "key-users"),
            (14, r, "loadavg"),
            (11, r, "meminfo"),
            (17, l, "mounts"),
            (18, r, "partitions"),
            (2, l, "self"),
            (100, d, "net"),
            (12, r, "stat"),
            (20, d, "sys"),
            (crate::ipc::proc::SYSVIPC_DIR_INO, d, "sysvipc"),
            (3, l, "thread-self"),
            (13, r, "uptime"),
            (16, r, "version"),
        ] {
            entries.push((ino, t, n.as_bytes().to_vec()));
        }
        let ns = crate::fs::procns::view(self.meta.dev);
        for pid in all_pids() {
            if ns.sees(pid) {
                entries.push((pid_ino(pid, 1), d, ns.local(pid).to_string().into_bytes()));
            }
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/self (-> pid) and /proc/thread-self (-> pid/task/tid).
struct SelfLink {
    meta: Meta,
    thread: bool,
}

impl Inode for SelfLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFLNK | 0o777, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, caller: &Caller<'_>) -> KResult<Vec<u8>> {
        let Some(task) = caller.task else {
            return error!(ENOENT);
        };
        let ns = crate::fs::procns::view(self.meta.dev);
        let (pid, tid) = (ns.local(caller.tgid), ns.local(task.tid()));
        if pid == 0 {
            return error!(ENOENT);
        }
        Ok(if self.thread {
            format!("{pid}/task/{tid}")
        } else {
            pid.to_string()
        }
        .into_bytes())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/mounts -> self/mounts.
struct SelfRelLink {
    meta: Meta,
    rest: &'static [u8],
}

impl Inode for SelfRelLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFLNK | 0o777, 1, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        let mut v = b"self/".to_vec();
        v.extend_from_slice(self.rest);
        Ok(v)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/<pid> and /proc/<pid>/task/<tid>.
struct PidDir {
    meta: Meta,
    pid: i32,
    tid: Option<i32>,
}

const PID_FILES: &[(&str, u64)] = &[
    ("auxv", 29),
    ("cgroup", 30),
    ("cmdline", 31),
    ("comm", 32),
    ("cwd", 3),
    ("environ", 33),
    ("exe", 5),
    ("fd", 2),
    ("fdinfo", 6),
    ("limits", 34),
    ("maps", 35),
    ("mem", 47),
    ("gid_map", 44),
    ("mountinfo", 36),
    ("mounts", 37),
    ("ns", 8),
    ("oom_score", 46),
    ("oom_score_adj", 38),
    ("pagemap", 49),
    ("root", 4),
    ("setgroups", 45),
    ("smaps", 39),
    ("stat", 40),
    ("statm", 41),
    ("status", 42),
    ("task", 7),
    ("timens_offsets", 48),
    ("uid_map", 43),
];

impl Inode for PidDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(pid_owned(self.meta.stat(S_IFDIR | 0o555, 9, 0), self.pid))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let (pid, tid) = (self.pid, self.tid.unwrap_or(self.pid));
        if live_group(pid).is_none() && zombie(pid).is_none() {
            return error!(ENOENT);
        }
        let base = if self.tid.is_some() {
            pid_ino(tid, 0x8000)
        } else {
            pid_ino(pid, 0)
        };
        let ino = |sub: u64| self.meta.with_ino(base + sub);
        let file = |sub, g, perm| -> KResult<Arc<dyn Inode>> {
            Ok(Arc::new(GenFile {
                meta: ino(sub),
                gen: g,
                perm,
            }))
        };
        let link = |sub, what| -> KResult<Arc<dyn Inode>> {
            Ok(Arc::new(TaskLink {
                meta: ino(sub),
                pid,
                tid,
                what,
            }))
        };
        match name {
            b"fd" => Ok(Arc::new(FdDir {
                meta: ino(2),
                pid,
                info: false,
            })),
            b"fdinfo" => Ok(Arc::new(FdDir {
                meta: ino(6),
                pid,
                info: true,
            })),
            b"cwd" => link(3, What::Cwd),
            b"root" => link(4, What::Root),
            b"exe" => link(5, What::Exe),
            b"task" if self.tid.is_none() => Ok(Arc::new(TaskDir { meta: ino(7), pid })),
            b"ns" => Ok(Arc::new(crate::fs::procns::NsDir {
                meta: ino(8),
                task: thread_of(pid, tid)
                    .or_else(|| leader(pid))
                    .ok_or(crate::errno!(ENOENT))?,
            })),
            b"uid_map" | b"gid_map" | b"setgroups" => {
                use crate::fs::procns::IdFile;
                let (sub, which) = match name {
                    b"uid_map" => (43, IdFile::Map(crate::task::ns::MapKind::Uid)),
                    b"gid_map" => (44, IdFile::Map(crate::task::ns::MapKind::Gid)),
                    _ => (45, IdFile::Setgroups),
                };
                Ok(Arc::new(crate::fs::procns::IdMapFile {
                    meta: ino(sub),
                    task: leader(pid).ok_or(crate::errno!(ENOENT))?,
                    which,
                }))
            }
            b"auxv" => file(29, Gen::Auxv(pid), 0o400),
            b"cgroup" => file(30, Gen::Cgroup, 0o444),
            b"cmdline" => file(31, Gen::Cmdline(pid), 0o444),
            b"comm" => file(32, Gen::Comm(pid, tid), 0o644),
            b"environ" => file(33, Gen::Environ(pid), 0o400),
            b"limits" => file(34, Gen::Limits(pid), 0o444),
            b"maps" => file(35, Gen::Maps(pid), 0o444),
            b"mem" => Ok(Arc::new(MemInode {
                meta: ino(47),
                pid,
                tid,
            })),
            b"mountinfo" => file(36, Gen::MountInfo(pid), 0o444),
            b"mounts" => file(37, Gen::Mounts(pid), 0o444),
            b"oom_score_adj" => file(38, Gen::OomScoreAdj(pid), 0o644),
            b"oom_score" => file(46, Gen::OomScore(pid), 0o444),
            // A process's, not a thread's (Linux has none under task/TID).
            b"timens_offsets" if self.tid.is_none() => file(48, Gen::TimensOffsets(pid), 0o644),
            b"pagemap" => Ok(Arc::new(crate::mm::pagemap::PagemapInode {
                meta: ino(49),
                tid,
            })),
            b"smaps" => file(39, Gen::Smaps(pid), 0o444),
            b"stat" => file(40, Gen::Stat(pid, tid), 0o444),
            b"statm" => file(41, Gen::Statm(pid), 0o444),
            b"status" => file(42, Gen::Status(pid, tid), 0o444),
            _ => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let base = if let Some(t) = self.tid {
            pid_ino(t, 0x8000)
        } else {
            pid_ino(self.pid, 0)
        };
        let mut entries = vec![
            (
                self.meta.ino,
                FileType::Directory.dirent_type(),
                b".".to_vec(),
            ),
            (1, FileType::Directory.dirent_type(), b"..".to_vec()),
        ];
        for &(n, sub) in PID_FILES {
            if matches!(n, "task" | "timens_offsets") && self.tid.is_some() {
                continue;
            }
            let t = match n {
                "cwd" | "exe" | "root" => FileType::Symlink,
                "fd" | "fdinfo" | "task" | "ns" => FileType::Directory,
                _ => FileType::Regular,
            };
            entries.push((base + sub, t.dirent_type(), n.as_bytes().to_vec()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/<pid>/task.
struct TaskDir {
    meta: Meta,
    pid: i32,
}

impl Inode for TaskDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(pid_owned(self.meta.stat(S_IFDIR | 0o555, 3, 0), self.pid))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let tid = parse_num(name).ok_or(crate::errno!(ENOENT))?;
        thread_of(self.pid, tid).ok_or(crate::errno!(ENOENT))?;
        Ok(Arc::new(PidDir {
            meta: self.meta.with_ino(pid_ino(tid, 0x8001)),
            pid: self.pid,
            tid: Some(tid),
        }))
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![
            (self.meta.ino, d, b".".to_vec()),
            (pid_ino(self.pid, 1), d, b"..".to_vec()),
        ];
        let mut tids: Vec<i32> = live_group(self.pid)
            .map(|g| g.threads().iter().map(|t| t.tid()).collect())
            .unwrap_or_default();
        tids.sort_unstable();
        for t in tids {
            entries.push((pid_ino(t, 0x8001), d, t.to_string().into_bytes()));
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/<pid>/fd and /proc/<pid>/fdinfo.
struct FdDir {
    meta: Meta,
    pid: i32,
    info: bool,
}

impl Inode for FdDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mode = S_IFDIR | if self.info { 0o555 } else { 0o500 };
        Ok(pid_owned(self.meta.stat(mode, 2, 0), self.pid))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let task = leader(self.pid).ok_or(crate::errno!(ENOENT))?;
        let fd = parse_num(name).ok_or(crate::errno!(ENOENT))?;
        task.files().get(fd).map_err(|_| crate::errno!(ENOENT))?;
        let ino = self.meta.ino + 0x100 + fd as u64;
        if self.info {
            Ok(Arc::new(GenFile {
                meta: self.meta.with_ino(ino),
                gen: Gen::FdInfo(self.pid, fd),
                perm: 0o444,
            }))
        } else {
            Ok(Arc::new(TaskLink {
                meta: self.meta.with_ino(ino),
                pid: self.pid,
                tid: self.pid,
                what: What::Fd(fd),
            }))
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![
            (self.meta.ino, d, b".".to_vec()),
            (pid_ino(self.pid, 1), d, b"..".to_vec()),
        ];
        if let Some(task) = leader(self.pid) {
            let t = if self.info {
                FileType::Regular
            } else {
                FileType::Symlink
            };
            for fd in task.files().fds() {
                entries.push((
                    self.meta.ino + 0x100 + fd as u64,
                    t.dirent_type(),
                    fd.to_string().into_bytes(),
                ));
            }
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    /// A process may always enter its own fd directory, root's as it is
    /// when the process is not dumpable (Linux's proc_fd_permission).
    fn grants(&self, caller: &Caller<'_>) -> bool {
        caller.task.is_some() && caller.tgid == self.pid
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

enum What {
    Fd(i32),
    Cwd,
    Root,
    Exe,
}

/// A magic link: /proc/<pid>/fd/N, cwd, root, exe.
struct TaskLink {
    meta: Meta,
    pid: i32,
    /// The thread whose cwd, root and exe it reads: /proc/PID's are the
    /// leader's, /proc/PID/task/TID's that thread's.
    tid: i32,
    what: What,
}

impl TaskLink {
    fn target(&self, caller: &Caller<'_>) -> KResult<(crate::fs::vfs::Path, crate::fs::vfs::Path)> {
        let task = match self.what {
            What::Fd(_) => leader(self.pid),
            // A thread that has exited (a zombie leader whose other
            // threads run) has no fs context or memory left: ENOENT, as
            // Linux's proc_cwd_link, proc_root_link and proc_exe_link.
            _ => thread_of(self.pid, self.tid),
        }
        .ok_or(crate::errno!(ENOENT))?;
        let fs = task.fs();
        let p = match self.what {
            What::Fd(fd) => task
                .files()
                .get(fd)
                .map_err(|_| crate::errno!(ENOENT))?
                .path
                .clone(),
            What::Cwd => fs.cwd(),
            What::Root => fs.root(),
            What::Exe => task
                .exe
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or(crate::errno!(ENOENT))?,
        };
        // Paths print relative to the reader's root.
        let root = caller
            .task
            .map(|t| t.fs().root())
            .unwrap_or_else(|| fs.root());
        Ok((p, root))
    }
}

impl Inode for TaskLink {
    fn file_type(&self) -> FileType {
        FileType::Symlink
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let perm = if matches!(self.what, What::Fd(_)) {
            0o700
        } else {
            0o777
        };
        Ok(pid_owned(self.meta.stat(S_IFLNK | perm, 1, 64), self.pid))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn readlink(&self, caller: &Caller<'_>) -> KResult<Vec<u8>> {
        let (p, root) = self.target(caller)?;
        Ok(d_path(&p, &root))
    }
    fn get_link(&self, caller: &Caller<'_>) -> KResult<Link> {
        Ok(Link::Jump(self.target(caller)?.0))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/sys and below.
#[derive(Clone, Copy)]
enum SysNode {
    Root,
    Kernel,
    Vm,
    Fs,
    Random,
    /// /proc/net (not under /proc/sys, but the same kind of directory).
    Net,
}

struct SysDir {
    meta: Meta,
    node: SysNode,
}

impl SysDir {
    /// The same directory in fs/procsys.rs, which serves more of it.
    fn sysctl(&self) -> Option<crate::fs::procsys::Dir> {
        use crate::fs::procsys::Dir;
        match self.node {
            SysNode::Root => Some(Dir::Root),
            SysNode::Kernel => Some(Dir::Kernel),
            SysNode::Vm => Some(Dir::Vm),
            SysNode::Fs => Some(Dir::Fs),
            SysNode::Random | SysNode::Net => None,
        }
    }

    fn children(&self) -> Vec<(&'static str, u64, Option<Gen>)> {
        match self.node {
            SysNode::Root => vec![("fs", 23, None), ("kernel", 21, None), ("vm", 22, None)],
            // The IPC entries come from ipc/proc.rs (lookup and open below).
            SysNode::Fs => vec![
                ("aio-max-nr", 92, Some(Gen::Text("65536\n"))),
                ("aio-nr", 93, Some(Gen::AioNr)),
            ],
            SysNode::Random => vec![
                ("boot_id", 62, Some(Gen::BootId)),
                ("entropy_avail", 63, Some(Gen::Text("256\n"))),
                ("poolsize", 64, Some(Gen::Text("256\n"))),
                ("uuid", 65, Some(Gen::Uuid)),
            ],
            SysNode::Kernel => vec![
                ("cap_last_cap", 57, Some(Gen::Text("40\n"))),
                ("ngroups_max", 54, Some(Gen::Text("65536\n"))),
                ("overflowgid", 61, Some(Gen::Text("65534\n"))),
                ("overflowuid", 59, Some(Gen::Text("65534\n"))),
                ("random", 58, None),
                ("osrelease", 51, Some(Gen::OsRelease)),
                ("ostype", 52, Some(Gen::OsType)),
            ],
            // vm's files are procsys.rs's.
            SysNode::Vm => vec![],
            SysNode::Net => crate::net::procnet::FILES
                .iter()
                .map(|&(n, ino)| (n, ino, Some(Gen::Net(n))))
                .collect(),
        }
    }
}

impl Inode for SysDir {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFDIR | 0o555, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if let Some(i) = self
            .sysctl()
            .and_then(|d| crate::fs::procsys::lookup(d, name, &self.meta))
        {
            return Ok(i);
        }
        let ipc = match self.node {
            SysNode::Kernel => crate::ipc::proc::sys_kernel_lookup(name, &self.meta),
            SysNode::Fs => crate::ipc::proc::sys_fs_lookup(name, &self.meta),
            _ => None,
        };
        if let Some(i) = ipc {
            return Ok(i);
        }
        let (_, ino, g) = self
            .children()
            .into_iter()
            .find(|(n, _, _)| n.as_bytes() == name)
            .ok_or(crate::errno!(ENOENT))?;
        Ok(match (g, name) {
            (Some(g), _) => Arc::new(GenFile {
                meta: self.meta.with_ino(ino),
                gen: g,
                perm: 0o444,
            }),
            (None, b"kernel") => Arc::new(SysDir {
                meta: self.meta.with_ino(ino),
                node: SysNode::Kernel,
            }),
            (None, b"random") => Arc::new(SysDir {
                meta: self.meta.with_ino(ino),
                node: SysNode::Random,
            }),
            (None, b"fs") => Arc::new(SysDir {
                meta: self.meta.with_ino(ino),
                node: SysNode::Fs,
            }),
            (None, _) => Arc::new(SysDir {
                meta: self.meta.with_ino(ino),
                node: SysNode::Vm,
            }),
        })
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![(self.meta.ino, d, b".".to_vec()), (1, d, b"..".to_vec())];
        for (n, ino, g) in self.children() {
            let t = if g.is_some() {
                FileType::Regular
            } else {
                FileType::Directory
            };
            entries.push((ino, t.dirent_type(), n.as_bytes().to_vec()));
        }
        for (n, ino, dir) in self
            .sysctl()
            .map(crate::fs::procsys::entries)
            .unwrap_or_default()
        {
            let t = if dir {
                FileType::Directory
            } else {
                FileType::Regular
            };
            entries.push((ino, t.dirent_type(), n.as_bytes().to_vec()));
        }
        match self.node {
            SysNode::Kernel => {
                for (n, ino) in crate::ipc::proc::sys_kernel_entries() {
                    entries.push((ino, FileType::Regular.dirent_type(), n.as_bytes().to_vec()));
                }
            }
            SysNode::Fs => {
                for (n, ino) in crate::ipc::proc::sys_fs_entries() {
                    entries.push((
                        ino,
                        FileType::Directory.dirent_type(),
                        n.as_bytes().to_vec(),
                    ));
                }
            }
            _ => {}
        }
        Ok(Arc::new(SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /proc/PID/mem: the process's memory at file offset = address, read
/// and written as a debugger would (see task::ptrace::open_mem).
struct MemInode {
    meta: Meta,
    pid: i32,
    tid: i32,
}

impl Inode for MemInode {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(pid_owned(self.meta.stat(S_IFREG | 0o600, 1, 0), self.pid))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, _flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        crate::task::ptrace::open_mem(caller.task, self.tid)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A generated file.
struct GenFile {
    meta: Meta,
    gen: Gen,
    perm: u32,
}

impl Inode for GenFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let st = self.meta.stat(S_IFREG | self.perm, 1, 0);
        // Per-process files belong to the process (so that it may write
        // its own writable ones).
        Ok(match self.gen.pid() {
            Some(pid) => pid_owned(st, pid),
            None => st,
        })
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 {
            if let Gen::OomScoreAdj(pid) = self.gen {
                return crate::task::caps::open_oom_score_adj(pid, flags, caller);
            }
            if let Gen::TimensOffsets(pid) = self.gen {
                return crate::time::ns::open_offsets(pid, flags, caller);
            }
            return error!(EACCES);
        }
        Ok(Arc::new(Snapshot {
            data: render(self.gen, caller, &crate::fs::procns::view(self.meta.dev))?,
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The text of an opened generated file.
struct Snapshot {
    data: Vec<u8>,
}

impl FileOps for Snapshot {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.data.len() as u64) as usize;
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
}

fn ticks(d: std::time::Duration) -> u64 {
    (d.as_millis() as u64) * HZ / 1000
}

fn state_char(group: &ThreadGroup) -> (char, &'static str) {
    if group.sig().stopped.is_some() {
        ('T', "T (stopped)")
    } else {
        ('S', "S (sleeping)")
    }
}

fn read_guest_range(task: &Task, range: (u64, u64)) -> Vec<u8> {
    let (a, b) = range;
    if b <= a || b - a > 1 << 20 {
        return Vec::new();
    }
    let mut v = vec![0u8; (b - a) as usize];
    if task.mm().read_bytes(a, &mut v).is_err() {
        return Vec::new();
    }
    v
}

fn mount_lines(task: &Task, info: bool) -> String {
    let fs = task.fs();
    let root = fs.root();
    let mut s = String::new();
    for m in fs.ns.mounts() {
        if m.internal {
            continue;
        }
        let at = match m.mountpoint() {
            Some(p) => String::from_utf8_lossy(&d_path(&p, &root)).into_owned(),
            None => "/".to_string(),
        };
        let opts = m.options();
        let super_opts = if m.read_only() { "ro" } else { "rw" };
        let recorded = m.source().map(|s| String::from_utf8_lossy(s).into_owned());
        let source = match (m.fstype, &recorded) {
            (_, Some(s)) => s.as_str(),
            ("hostfs", _) => "none",
            ("devtmpfs", _) => "udev",
            ("devpts", _) => "devpts",
            (other, _) => other,
        };
        if info {
            let parent = m.mountpoint().map(|p| p.mnt.id).unwrap_or(m.id);
            s.push_str(&format!(
                "{} {} 0:{} / {} {},relatime{} - {} {} {}\n",
                m.id,
                parent,
                m.id + 20,
                at,
                opts,
                crate::fs::mntns::mountinfo_tags(&m),
                m.fstype,
                source,
                super_opts
            ));
        } else {
            s.push_str(&format!("{source} {at} {} {opts},relatime 0 0\n", m.fstype));
        }
    }
    s
}

/// The masks of ignored and caught signals (SigIgn, SigCgt).
fn ignored_and_caught(gs: &crate::signal::GroupSignals) -> (u64, u64) {
    let (mut ign, mut cat) = (0u64, 0u64);
    for (i, a) in gs.actions.iter().enumerate() {
        match a.handler {
            0 => {}
            1 => ign |= 1 << i,
            _ => cat |= 1 << i,
        }
    }
    (ign, cat)
}

/// A zombie's per-process file: state Z, its name, ids and times; what
/// its memory held (cmdline, environ, maps) is empty, as Linux's.
fn zombie_text(
    gen: Gen,
    pid: i32,
    z: &crate::fs::proczombie::Zombie,
    ns: &Arc<crate::task::ns::PidNs>,
) -> KResult<Vec<u8>> {
    let comm = String::from_utf8_lossy(&z.remains.comm).into_owned();
    let (ppid, pgid, sid) = (
        ns.local(z.ids.ppid),
        ns.local(z.ids.pgid),
        ns.local(z.ids.sid),
    );
    let c = &z.remains.creds;
    let text = match gen {
        Gen::Stat(..) => format!(
            "{} ({comm}) Z {ppid} {pgid} {sid} 0 -1 4194308 0 0 0 0 {} {} 0 0 20 0 1 0 {} 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 {}\n",
            ns.local(pid),
            ticks(z.usage.user),
            ticks(z.usage.sys),
            ticks(z.remains.started),
            z.status.wait_status()
        ),
        Gen::Status(..) => format!(
            "Name:\t{comm}\nState:\tZ (zombie)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{ppid}\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nThreads:\t1\n",
            c.ruid, c.euid, c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid,
            pid = ns.local(pid)
        ),
        Gen::Comm(..) => format!("{comm}\n"),
        Gen::Cmdline(_) | Gen::Environ(_) | Gen::Maps(_) | Gen::Smaps(_) => String::new(),
        Gen::Statm(_) => "0 0 0 0 0 0 0\n".to_string(),
        _ => return error!(ESRCH),
    };
    Ok(text.into_bytes())
}

/// A generated file's text; pids in it are PID namespace `ns`'s.
fn render(gen: Gen, caller: &Caller<'_>, ns: &Arc<crate::task::ns::PidNs>) -> KResult<Vec<u8>> {
    if let Some(pid) = gen.pid() {
        if live_group(pid).is_none() {
            if let Some(z) = zombie(pid) {
                return zombie_text(gen, pid, &z, ns);
            }
        }
    }
    let k = || crate::kernel();
    let task_of = |pid: i32| leader(pid).ok_or(crate::errno!(ESRCH));
    if gen == Gen::ConfigGz {
        return Ok(crate::fs::procconfig::config_gz());
    }
    let text = match gen {
        Gen::Stat(pid, tid) => {
            let g = live_group(pid).ok_or(crate::errno!(ESRCH))?;
            let t = thread_of(pid, tid).or_else(|| leader(pid)).ok_or(crate::errno!(ESRCH))?;
            let ids = crate::task::process_ids(pid).ok_or(crate::errno!(ESRCH))?;
            let ids = crate::task::ProcIds { ppid: ns.local(ids.ppid), pgid: ns.local(ids.pgid), sid: ns.local(ids.sid) };
            let tid = ns.local(tid);
            let comm = String::from_utf8_lossy(&t.comm.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
            let st = t.mm().stats();
            let me = crate::task::usage::group_times(&g);
            let ch = g.usage.lock().unwrap_or_else(|p| p.into_inner()).children;
            let (c, _) = state_char(&g);
            let nthreads = g.threads().len();
            let start = ticks(g.started);
            let (blocked, pend) = {
                let s = t.signals.lock();
                (s.blocked, s.pending.iter().fold(0u64, |m, q| m | crate::signal::bit(q.signo)))
            };
            let (ign, cat) = ignored_and_caught(&g.sig());
            let nice = t.sched.lock().unwrap_or_else(|p| p.into_inner()).nice;
            format!(
                "{} ({}) {} {} {} {} 0 -1 4194304 0 0 0 0 {} {} {} {} {} {} {} 0 {} {} {} 18446744073709551615 {} {} {} 0 0 {} {} {} {} 0 0 0 17 0 0 0 0 0 0 {} {} {} {} {} {} {} 0\n",
                tid, comm, c, ids.ppid, ids.pgid, ids.sid,
                ticks(me.user), ticks(me.sys), ticks(ch.user), ticks(ch.sys), 20 + nice, nice, nthreads, start,
                st.vsize, t.mm().rss().total(), st.code.0, st.code.1, st.stack.1, pend, blocked, ign, cat,
                0, 0, st.brk_start, st.arg.0, st.arg.1, st.env.0, st.env.1
            )
        }
        Gen::Status(pid, tid) => {
            let g = live_group(pid).ok_or(crate::errno!(ESRCH))?;
            let t = thread_of(pid, tid).or_else(|| leader(pid)).ok_or(crate::errno!(ESRCH))?;
            let ids = crate::task::process_ids(pid).ok_or(crate::errno!(ESRCH))?;
            let ids = crate::task::ProcIds { ppid: ns.local(ids.ppid), pgid: ns.local(ids.pgid), sid: ns.local(ids.sid) };
            // NStgid/NSpid: the pid in each namespace from the viewer's down.
            let chain = |g: i32| -> String {
                let own = t.pid_ns().chain_of(g);
                let skip = ns.level as usize;
                own.iter().skip(skip).map(|p| p.to_string()).collect::<Vec<_>>().join("\t")
            };
            let (nstgid, nspid) = (chain(pid), chain(tid));
            let (pid, tid) = (ns.local(pid), ns.local(tid));
            let comm = String::from_utf8_lossy(&t.comm.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
            let st = t.mm().stats();
            let rss = t.mm().rss();
            let (_, state) = state_char(&g);
            let (blocked, pend) = {
                let s = t.signals.lock();
                (s.blocked, s.pending.iter().fold(0u64, |m, q| m | crate::signal::bit(q.signo)))
            };
            let (shd, ign, cat, nnp) = {
                let gs = g.sig();
                let shd = gs.shared.iter().fold(0u64, |m, q| m | crate::signal::bit(q.signo));
                let (ign, cat) = ignored_and_caught(&gs);
                (shd, ign, cat, gs.no_new_privs)
            };
            let umask = t.fs().umask();
            let creds = g.creds.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let caps = crate::task::caps::status_lines(&creds.caps);
            let seccomp = crate::task::seccomp::status_lines(&t);
            let groups: String = creds.groups.iter().map(|g| format!("{g} ")).collect();
            let (u, gi) = (&creds, &creds);
            let ids_line = format!(
                "Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\n",
                u.ruid, u.euid, u.suid, u.fsuid, gi.rgid, gi.egid, gi.sgid, gi.fsgid
            );
            let kb = |b: u64| b / 1024;
            let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            format!(
                "Name:\t{comm}\nUmask:\t{umask:04o}\nState:\t{state}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{}\nTracerPid:\t{}\n\
                 {ids_line}FDSize:\t{}\nGroups:\t{groups}\nNStgid:\t{nstgid}\nNSpid:\t{nspid}\nNSpgid:\t{}\nNSsid:\t{}\n\
                 VmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmLck:\t{:8} kB\nVmPin:\t       0 kB\nVmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\n\
                 RssAnon:\t{:8} kB\nRssFile:\t{:8} kB\nRssShmem:\t{:8} kB\nVmData:\t{:8} kB\nVmStk:\t{:8} kB\nVmExe:\t{:8} kB\n\
                 VmLib:\t       0 kB\nVmPTE:\t       0 kB\nVmSwap:\t       0 kB\nThreads:\t{}\nSigQ:\t0/63432\nSigPnd:\t{pend:016x}\n\
                 ShdPnd:\t{shd:016x}\nSigBlk:\t{blocked:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cat:016x}\n{caps}\
                 NoNewPrivs:\t{}\n{seccomp}Speculation_Store_Bypass:\tthread vulnerable\n\
                 Cpus_allowed:\t{:x}\nCpus_allowed_list:\t0-{}\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
                ids.ppid,
                t.ptrace.tracer(),
                t.files().limit().max(64),
                ids.pgid,
                ids.sid,
                kb(st.vsize),
                kb(st.vsize),
                kb(t.mm().locked_bytes()),
                kb(rss.total() * 4096),
                kb(rss.total() * 4096),
                kb(rss.anon * 4096),
                kb(rss.file * 4096),
                kb(rss.shmem * 4096),
                kb(st.brk.saturating_sub(st.brk_start)),
                kb(st.stack.1 - st.stack.0),
                kb(st.code.1 - st.code.0),
                g.threads().len(),
                nnp as u8,
                (1u64 << ncpu.min(63)) - 1,
                ncpu - 1
            )
        }
        Gen::Statm(pid) => {
            let mm = task_of(pid)?.mm();
            let (st, rss) = (mm.stats(), mm.rss());
            format!("{} {} {} {} 0 {} 0\n", st.vsize / 4096, rss.total(), rss.file + rss.shmem, (st.code.1 - st.code.0) / 4096, st.brk.saturating_sub(st.brk_start) / 4096)
        }
        Gen::Cmdline(pid) => {
            let t = task_of(pid)?;
            return Ok(read_guest_range(&t, t.mm().stats().arg));
        }
        Gen::Auxv(pid) => return Ok(task_of(pid)?.mm().auxv()),
        Gen::Environ(pid) => {
            let t = task_of(pid)?;
            return Ok(read_guest_range(&t, t.mm().stats().env));
        }
        Gen::Comm(pid, tid) => {
            let t = thread_of(pid, tid).or_else(|| leader(pid)).ok_or(crate::errno!(ESRCH))?;
            let mut c = t.comm.lock().unwrap_or_else(|p| p.into_inner()).clone();
            c.push(b'\n');
            return Ok(c);
        }
        Gen::Maps(pid) | Gen::Smaps(pid) => {
            let t = task_of(pid)?;
            let root = caller.task.map(|c| c.fs().root()).unwrap_or_else(|| t.fs().root());
            let mm = t.mm();
            let files = mm.area_files();
            let maps = mm.maps_text_with(|start| files.iter().find(|(s, _)| *s == start).map(|(_, f)| d_path(&f.path, &root)));
            if matches!(gen, Gen::Maps(_)) {
                maps
            } else {
                crate::fs::procsmaps::smaps_text(&maps, &mm.area_usage())
            }
        }
        Gen::Limits(pid) => {
            let g = live_group(pid).ok_or(crate::errno!(ESRCH))?;
            let names = [
                ("Max cpu time", "seconds"),
                ("Max file size", "bytes"),
                ("Max data size", "bytes"),
                ("Max stack size", "bytes"),
                ("Max core file size", "bytes"),
                ("Max resident set", "bytes"),
                ("Max processes", "processes"),
                ("Max open files", "files"),
                ("Max locked memory", "bytes"),
                ("Max address space", "bytes"),
                ("Max file locks", "locks"),
                ("Max pending signals", "signals"),
                ("Max msgqueue size", "bytes"),
                ("Max nice priority", ""),
                ("Max realtime priority", ""),
                ("Max realtime timeout", "us"),
            ];
            let mut s = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
            for (i, (n, u)) in names.iter().enumerate() {
                let [soft, hard] = g.limit(i);
                let f = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
                s.push_str(&format!("{:<25} {:<20} {:<20} {:<10}\n", n, f(soft), f(hard), u));
            }
            s
        }
        Gen::Mounts(pid) => mount_lines(&*task_of(pid)?, false),
        Gen::MountInfo(pid) => mount_lines(&*task_of(pid)?, true),
        Gen::FdInfo(pid, fd) => {
            let files = task_of(pid)?.files();
            let f = files.get(fd).map_err(|_| crate::errno!(ENOENT))?;
            let cloexec = if files.get_cloexec(fd).unwrap_or(false) { crate::fs::types::oflags::O_CLOEXEC } else { 0 };
            let mut s = format!("pos:\t{}\nflags:\t0{:o}\nmnt_id:\t{}\nino:\t{}\n", f.pos(), f.flags() | cloexec, f.path.mnt.id, f.path.inode().key().1);
            if let Ok(ops) = f.ops() {
                ops.show_fdinfo(&f, ns, &mut s);
            }
            s
        }
        Gen::Cgroup => "0::/\n".to_string(),
        Gen::OomScoreAdj(pid) => {
            let g = live_group(pid).ok_or(crate::errno!(ESRCH))?;
            let adj = g.sig().oom_score_adj;
            format!("{adj}\n")
        }
        Gen::OomScore(pid) => {
            // Linux's badness: resident pages per mille of RAM plus the
            // adjustment, 0 for -1000.
            let g = live_group(pid).ok_or(crate::errno!(ESRCH))?;
            let adj = i64::from(g.sig().oom_score_adj);
            let t = task_of(pid)?;
            let total = k().phys.total_pages().max(1) as i64;
            let rss = t.mm().rss().total() as i64;
            let score = if adj == -1000 { 0 } else { (rss * 1000 / total + adj).clamp(0, 2000) };
            format!("{score}\n")
        }
        Gen::CpuInfo => ruml_host::clock::host_cpuinfo(),
        Gen::MemInfo => {
            let total = k().phys.total_pages() * 4;
            let free = k().phys.free_pages() * 4;
            format!(
                "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {free:8} kB\nBuffers:               0 kB\nCached:                0 kB\n\
                 SwapCached:            0 kB\nActive:                0 kB\nInactive:              0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n\
                 Dirty:                 0 kB\nShmem:                 0 kB\nSlab:                  0 kB\nCommitLimit:    {total:8} kB\nCommitted_AS:   {:8} kB\n",
                total - free
            )
        }
        Gen::SysStat => {
            let up = crate::log::since_boot();
            let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u64;
            let (mut user, mut sys) = (0u64, 0u64);
            let groups: Vec<_> = k().tasks.lock().values().filter_map(|n| n.group.clone()).collect();
            for g in &groups {
                let t = crate::task::usage::group_times(g);
                user += ticks(t.user);
                sys += ticks(t.sys);
            }
            let idle = (ticks(up) * ncpu).saturating_sub(user + sys);
            let (bs, _) = ruml_host::clock::gettime(0).unwrap_or((0, 0));
            let btime = bs - up.as_secs() as i64;
            let mut s = format!("cpu  {user} 0 {sys} {idle} 0 0 0 0 0 0\n");
            for i in 0..ncpu {
                s.push_str(&format!("cpu{i} {} 0 {} {} 0 0 0 0 0 0\n", user / ncpu, sys / ncpu, idle / ncpu));
            }
            s.push_str(&format!("intr 0\nctxt 0\nbtime {btime}\nprocesses {}\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n", groups.len()));
            s
        }
        Gen::Uptime => {
            // Shifted by the reader's time namespace's BOOTTIME offset.
            let off = caller.task.map_or(0, |t| t.nsproxy().time.offsets.boottime());
            let up = crate::log::since_boot().as_secs_f64() + off as f64 / 1e9;
            format!("{up:.2} {:.2}\n", up * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64)
        }
        Gen::LoadAvg => {
            let n = all_pids().len();
            let last = all_pids().last().copied().unwrap_or(1);
            format!("0.00 0.00 0.00 1/{n} {last}\n")
        }
        Gen::Filesystems => "nodev\tsysfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\tpipefs\nnodev\thostfs\n\text2\n\text3\n\text4\n".to_string(),
        Gen::Partitions => crate::block::proc_partitions(),
        Gen::Version => format!(
            "Linux version {} (ruml@ruml) (rustc) {}\n",
            crate::task::syscalls::UTS_RELEASE,
            crate::task::syscalls::UTS_VERSION
        ),
        Gen::KernelCmdline => format!("{}\n", crate::boot::cmdline()),
        Gen::ConfigGz => String::new(),
        Gen::TimensOffsets(pid) => crate::time::ns::show(pid)?,
        Gen::OsType => "Linux\n".to_string(),
        Gen::OsRelease => format!("{}\n", crate::task::syscalls::UTS_RELEASE),
        Gen::AioNr => format!("{}\n", crate::fs::aio::aio_nr()),
        Gen::BootId => {
            static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            ID.get_or_init(random_uuid).clone()
        }
        Gen::Uuid => random_uuid(),
        Gen::Text(t) => t.to_string(),
        Gen::Net(n) => crate::net::procnet::render(n),
        Gen::Keys => caller.task.map(crate::keys::proc_keys_text).unwrap_or_default(),
        Gen::KeyUsers => crate::keys::key_users_text(),
    };
    Ok(text.into_bytes())
}

/// A random (version 4) UUID and a newline, as /proc/sys/kernel/random
/// gives them.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    ruml_host::clock::random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}\n",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}
