//! Container setup for `ruml oci`: what an OCI bundle asks of the
//! container process beyond what [`crate::boot::BootConfig`] carries
//! (working directory, credentials, resource limits, no_new_privs,
//! hostname, extra mounts), and signals from the host runtime to init.
//!
//! The OCI runtime in the `ruml` command calls [`set`] before
//! [`crate::boot::boot`]; boot calls [`apply`] once the root filesystem
//! is mounted and init's task exists, before init's program is loaded.
//! A plain `ruml` boot never calls [`set`], and [`apply`] then does
//! nothing. The setup is kept in a process-wide mutex, taken once by
//! [`apply`] (one instance per host process).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use crate::fs::namei::Walker;
use crate::fs::types::FileType;
use crate::fs::vfs::Caller;
use crate::fs::FsContext;
use crate::task::Task;

/// A mount the container asks for beyond ruml's boot-time ones.
#[derive(Clone, Debug)]
pub enum ExtraMount {
    /// An empty tmpfs (guest memory) at `target`.
    Tmpfs { target: Vec<u8>, read_only: bool },
    /// Host directory `host` as hostfs at `target` (confined beneath it).
    HostDir {
        host: PathBuf,
        target: Vec<u8>,
        read_only: bool,
    },
    /// A filesystem ruml has of its own: "mqueue", "proc", "sysfs" or
    /// "devpts" (a new instance, as `mount -t TYPE` in the guest gives).
    Special {
        fstype: String,
        target: Vec<u8>,
        read_only: bool,
    },
    /// OCI `linux.maskedPaths`: a directory gets an empty read-only tmpfs,
    /// anything else the guest's /dev/null; a missing path is skipped.
    Mask { target: Vec<u8> },
    /// OCI `linux.readonlyPaths`: `target` bound read-only onto itself; a
    /// missing path is skipped.
    ReadOnly { target: Vec<u8> },
    /// Host file `host` at `target`, a file the mount makes if missing.
    HostFile {
        host: PathBuf,
        target: Vec<u8>,
        read_only: bool,
    },
}

/// The container process's setup (OCI config.json `process`, `hostname`,
/// `mounts`).
#[derive(Clone, Debug, Default)]
pub struct ContainerSetup {
    /// Working directory inside the guest (absolute).
    pub cwd: Option<Vec<u8>>,
    /// uid, gid and additional gids of init (all of real, effective,
    /// saved and filesystem ids).
    pub user: Option<(u32, u32, Vec<u32>)>,
    /// (resource number, soft, hard) for setrlimit's resources 0..16.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub no_new_privs: bool,
    /// process.capabilities (None: ruml's default, root's full sets).
    pub caps: Option<crate::task::caps::CapSets>,
    pub hostname: Option<Vec<u8>>,
    /// Made in order, after ruml's own boot-time mounts.
    pub mounts: Vec<ExtraMount>,
}

static SETUP: Mutex<Option<ContainerSetup>> = Mutex::new(None);
/// Host descriptors init gets as its 3, 4, ... (`--preserve-fds`); taken
/// by [`apply`].
static PRESERVED: Mutex<Vec<std::os::fd::OwnedFd>> = Mutex::new(Vec::new());

/// Records host descriptors that become init's descriptors 3, 4, ... (as
/// runc's `--preserve-fds`): guest files over the host descriptors (see
/// [`crate::fs::hostfd`]).
pub fn set_preserved_fds(fds: Vec<std::os::fd::OwnedFd>) {
    *PRESERVED.lock().unwrap_or_else(|p| p.into_inner()) = fds;
}
/// init's pid once [`apply`] ran (0 before).
static INIT_PID: AtomicI32 = AtomicI32::new(0);

/// init's first thread, once boot set init up (the context request_key's
/// helper starts in, as Linux's usermode helpers start in init's).
pub fn init_task() -> Option<Arc<Task>> {
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid == 0 || !crate::kernel_booted() {
        return None;
    }
    crate::kernel()
        .tasks
        .group(pid)
        .and_then(|g| g.threads().first().cloned())
}

/// Records the setup the next boot applies to init.
pub fn set(setup: ContainerSetup) {
    *SETUP.lock().unwrap_or_else(|p| p.into_inner()) = Some(setup);
}

/// Applies the recorded setup to init (`task`, whose filesystem context
/// is `fs`). Called by boot before init's program is loaded.
pub(crate) fn apply(task: &Arc<Task>, fs: &Arc<FsContext>) -> Result<(), String> {
    INIT_PID.store(task.tgid(), Ordering::SeqCst);
    let preserved = std::mem::take(&mut *PRESERVED.lock().unwrap_or_else(|p| p.into_inner()));
    for (k, host) in preserved.into_iter().enumerate() {
        let fd = 3 + k as i32;
        task.files()
            .install_at(fd, crate::fs::hostfd::open(host), false)
            .map_err(|e| format!("cannot install preserved descriptor {fd}: {e}"))?;
    }
    let Some(s) = SETUP.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return Ok(());
    };
    let walker = Walker {
        ns: &fs.ns,
        root: fs.ns.root(),
        caller: Caller::kernel(),
    };
    let root = fs.ns.root();
    for m in &s.mounts {
        let (target, inode, fstype, ro): (
            &[u8],
            Arc<dyn crate::fs::vfs::Inode>,
            &'static str,
            bool,
        ) = match m {
            ExtraMount::Tmpfs { target, read_only } => {
                let opts = crate::fs::tmpfs::TmpfsOptions::defaults(&crate::fs::tmpfs::physmem());
                (
                    target,
                    crate::fs::tmpfs::TmpFs::new_root(opts),
                    "tmpfs",
                    *read_only,
                )
            }
            ExtraMount::HostDir {
                host,
                target,
                read_only,
            } => {
                let inode = crate::fs::hostfs::HostFs::open_root(host, *read_only)
                    .map_err(|e| format!("cannot open {}: {e}", host.display()))?;
                (target, inode, "hostfs", *read_only)
            }
            ExtraMount::Special {
                fstype,
                target,
                read_only,
            } => {
                let (name, inode): (&'static str, Arc<dyn crate::fs::vfs::Inode>) =
                    match fstype.as_str() {
                        "mqueue" => ("mqueue", crate::ipc::mqueue::fs_root()),
                        "proc" => ("proc", crate::fs::procfs::new_procfs()),
                        "sysfs" => ("sysfs", crate::fs::sysfs::new_sysfs()),
                        "devpts" => ("devpts", crate::fs::pty::new_devpts()),
                        other => return Err(format!("no {other} filesystem in ruml")),
                    };
                (target, inode, name, *read_only)
            }
            ExtraMount::Mask { target } | ExtraMount::ReadOnly { target } => {
                let shown = String::from_utf8_lossy(target).into_owned();
                let p = match walker.walk(&root, target, true) {
                    Ok(p) => p,
                    Err(crate::errno::Errno::ENOENT) => continue,
                    Err(e) => return Err(format!("{shown}: {e}")),
                };
                let (fstype, inode): (&'static str, Arc<dyn crate::fs::vfs::Inode>) = match m {
                    ExtraMount::ReadOnly { .. } => (p.mnt.fstype, p.inode().clone()),
                    _ if p.inode().file_type() == FileType::Directory => {
                        let opts =
                            crate::fs::tmpfs::TmpfsOptions::defaults(&crate::fs::tmpfs::physmem());
                        ("tmpfs", crate::fs::tmpfs::TmpFs::new_root(opts))
                    }
                    _ => {
                        let null = walker
                            .walk(&root, b"/dev/null", true)
                            .map_err(|e| format!("masking {shown}: /dev/null: {e}"))?;
                        ("devtmpfs", null.inode().clone())
                    }
                };
                fs.ns.mount(fstype, inode, &p, true);
                continue;
            }
            ExtraMount::HostFile {
                host,
                target,
                read_only,
            } => {
                let inode = crate::fs::hostfs::HostFs::open_file_root(host, *read_only)
                    .map_err(|e| format!("cannot open {}: {e}", host.display()))?;
                let shown = String::from_utf8_lossy(target).into_owned();
                let p = file_mount_point(&walker, &root, target)
                    .map_err(|e| format!("mount point {shown}: {e}"))?;
                fs.ns.mount("hostfs", inode, &p, *read_only);
                crate::log::info(&format!(
                    "VFS: Bound host file {} on {shown}.",
                    host.display()
                ));
                continue;
            }
        };
        let shown = String::from_utf8_lossy(target).into_owned();
        let p = match walker.walk(&root, target, true) {
            Ok(p) => p,
            Err(crate::errno::Errno::ENOENT) => crate::fs::mkdir_p(&walker, &root, target)
                .map_err(|e| format!("cannot make the mount point {shown}: {e}"))?,
            Err(e) => return Err(format!("mount point {shown}: {e}")),
        };
        if p.inode().file_type() != FileType::Directory {
            return Err(format!("mount point {shown} is not a directory"));
        }
        fs.ns.mount(fstype, inode, &p, ro);
        crate::log::info(&format!(
            "VFS: Mounted {fstype} on {shown} {}.",
            if ro { "read-only" } else { "read-write" }
        ));
    }
    if let Some(h) = s.hostname {
        *crate::kernel()
            .hostname
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = h;
    }
    if let Some(cwd) = s.cwd {
        let shown = String::from_utf8_lossy(&cwd).into_owned();
        let p = walker
            .walk(&root, &cwd, true)
            .map_err(|e| format!("cwd {shown}: {e}"))?;
        if p.inode().file_type() != FileType::Directory {
            return Err(format!("cwd {shown} is not a directory"));
        }
        fs.set_cwd(p);
    }
    {
        let mut limits = task.group.limits.lock().unwrap_or_else(|p| p.into_inner());
        for &(res, soft, hard) in &s.rlimits {
            match limits.get_mut(res as usize) {
                Some(l) if soft <= hard => *l = [soft, hard],
                _ => return Err(format!("bad rlimit {res}: {soft} > {hard} or unknown")),
            }
        }
    }
    if let Some((uid, gid, groups)) = s.user {
        let mut c = task.group.creds.lock().unwrap_or_else(|p| p.into_inner());
        c.ruid = uid;
        c.euid = uid;
        c.suid = uid;
        c.fsuid = uid;
        c.rgid = gid;
        c.egid = gid;
        c.sgid = gid;
        c.fsgid = gid;
        c.groups = groups;
    }
    if let Some(caps) = s.caps {
        task.group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .caps = caps;
    }
    if s.no_new_privs {
        task.group.sig().no_new_privs = true;
    }
    Ok(())
}

/// The guest file `target` for a file bind mount, made empty (with its
/// parent directories) when missing.
fn file_mount_point(
    walker: &Walker<'_>,
    root: &crate::fs::vfs::Path,
    target: &[u8],
) -> crate::errno::KResult<crate::fs::vfs::Path> {
    match walker.walk(root, target, true) {
        Ok(p) if p.inode().file_type() == FileType::Directory => {
            crate::error!(EISDIR)
        }
        Ok(p) => Ok(p),
        Err(crate::errno::Errno::ENOENT) => {
            let cut = target.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let (dir, name) = (&target[..cut], &target[cut + 1..]);
            let parent = match walker.walk(root, dir, true) {
                Ok(p) => p,
                Err(crate::errno::Errno::ENOENT) => crate::fs::mkdir_p(walker, root, dir)?,
                Err(e) => return Err(e),
            };
            if parent.mnt.read_only() {
                return crate::error!(EROFS);
            }
            parent.inode().create(name, 0o644, 0)?;
            crate::fs::namei::dcache::changed();
            walker.walk(root, target, true)
        }
        Err(e) => Err(e),
    }
}

/// Sends `signo` to init on behalf of the host (the OCI runtime's
/// `kill`). None if init has not been set up yet; Some(false) if init is
/// gone or `signo` is not a signal.
pub fn signal_init(signo: i32) -> Option<bool> {
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid == 0 || !crate::kernel_booted() {
        return None;
    }
    if !(1..=64).contains(&signo) || crate::kernel().tasks.group(pid).is_none() {
        return Some(false);
    }
    crate::signal::send_to_process(pid, signo);
    Some(true)
}

/// Sends `signo` to every guest process (`kill --all`). None before init
/// is set up.
pub fn signal_all(signo: i32) -> Option<bool> {
    if INIT_PID.load(Ordering::SeqCst) == 0 || !crate::kernel_booted() {
        return None;
    }
    if !(1..=64).contains(&signo) {
        return Some(false);
    }
    let pids: Vec<i32> = {
        let tree = crate::kernel().tasks.lock();
        tree.iter()
            .filter(|(_, n)| n.group.is_some())
            .map(|(&pid, _)| pid)
            .collect()
    };
    for pid in &pids {
        crate::signal::send_to_process(*pid, signo);
    }
    Some(!pids.is_empty())
}

/// A process started from the host in a running instance (`ruml oci
/// exec`): like a process that entered the container with setns, it has
/// no parent inside (ppid 0) and its own session; the host side collects
/// its exit status with [`wait_exit`].
pub struct Spawn {
    /// Path inside the guest, argv and environment.
    pub path: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub user: (u32, u32, Vec<u32>),
    pub no_new_privs: bool,
    /// process.capabilities (None: root's full sets).
    pub caps: Option<crate::task::caps::CapSets>,
    /// process.rlimits of `exec --process`: (resource, soft, hard) over
    /// init's limits.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Host descriptors that become the guest's 0, 1, 2 (see
    /// [`crate::fs::hostfd`]).
    pub stdio: Vec<std::os::fd::OwnedFd>,
}

/// Starts `s` in the booted instance; returns its guest pid.
pub fn spawn(s: Spawn) -> Result<i32, String> {
    let init_pid = INIT_PID.load(Ordering::SeqCst);
    if init_pid == 0 || !crate::kernel_booted() {
        return Err("the container has not started".into());
    }
    let k = crate::kernel();
    let init = k
        .tasks
        .group(init_pid)
        .and_then(|g| g.threads().first().cloned())
        .ok_or("the container's init has exited")?;
    let fs = FsContext::new(init.fs().ns.clone());
    {
        let walker = Walker {
            ns: &fs.ns,
            root: fs.ns.root(),
            caller: Caller::kernel(),
        };
        let shown = String::from_utf8_lossy(&s.cwd).into_owned();
        let p = walker
            .walk(&fs.ns.root(), &s.cwd, true)
            .map_err(|e| format!("cwd {shown}: {e}"))?;
        if p.inode().file_type() != FileType::Directory {
            return Err(format!("cwd {shown} is not a directory"));
        }
        fs.set_cwd(p);
    }
    let files = crate::fs::FdTable::new();
    for (fd, host) in s.stdio.into_iter().enumerate() {
        files
            .install_at(fd as i32, crate::fs::hostfd::open(host), false)
            .map_err(|e| format!("cannot install descriptor {fd}: {e}"))?;
    }
    let mut limits = *init.group.limits.lock().unwrap_or_else(|p| p.into_inner());
    for &(res, soft, hard) in &s.rlimits {
        match limits.get_mut(res as usize) {
            Some(l) if soft <= hard => *l = [soft, hard],
            _ => return Err(format!("bad rlimit {res}: {soft} > {hard} or unknown")),
        }
    }
    let task = {
        let mut tree = k.tasks.lock();
        let pid = k.tasks.alloc_pid(&tree).ok_or("no free pid")?;
        let mm = crate::mm::Mm::new(k.phys.clone(), crate::mm::task_size() / 2);
        let group = crate::task::ThreadGroup::new(pid, Default::default(), limits);
        {
            let (uid, gid, groups) = s.user.clone();
            let mut c = group.creds.lock().unwrap_or_else(|p| p.into_inner());
            (c.ruid, c.euid, c.suid, c.fsuid) = (uid, uid, uid, uid);
            (c.rgid, c.egid, c.sgid, c.fsgid) = (gid, gid, gid, gid);
            c.groups = groups;
            if let Some(caps) = s.caps {
                c.caps = caps;
            }
        }
        group.sig().no_new_privs = s.no_new_privs;
        let t = Task::new(pid, group.clone(), mm, files, fs, Default::default());
        tree.insert(pid, crate::task::ProcNode::new(0, pid, pid, group));
        t
    };
    crate::task::start_parentless(task, &s.path, s.argv, s.envp, "exec").map_err(|e| match e {
        crate::task::StartError::Exec(e) => {
            format!("cannot execute {}: {e}", String::from_utf8_lossy(&s.path))
        }
        crate::task::StartError::Thread(e) => format!("cannot start the process's thread: {e}"),
    })
}

/// Waits until process `pid` started by [`spawn`] has exited, reaps it
/// and returns its wait status as the shell shows it (code, or 128 + the
/// signal). None if there is no such process.
pub fn wait_exit(pid: i32) -> Option<i32> {
    loop {
        {
            let mut tree = crate::kernel().tasks.lock();
            match tree.get(&pid) {
                None => return None,
                Some(n) if n.ppid == 0 => {
                    if let Some(st) = n.zombie {
                        tree.remove(&pid);
                        return Some(match st {
                            crate::task::ExitStatus::Exited(c) => c & 0xff,
                            crate::task::ExitStatus::Killed { signo, .. } => 128 + signo,
                        });
                    }
                }
                Some(_) => return None,
            }
        }
        // The exit path has no host-side waiter to notify: check again
        // shortly (a host thread of the runtime, not a guest's time).
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Kills process `pid` started by [`spawn`] (its host side went away).
pub fn kill_spawned(pid: i32) {
    if let Some(g) = crate::kernel().tasks.group(pid) {
        crate::signal::send_to_process(g.tgid(), crate::signal::SIGKILL);
    }
}

/// `ruml oci pause`: every guest task is held outside guest code (in the
/// signal-delivery check each task passes before returning to the guest)
/// until [`thaw`]. Tasks asleep in a system call stay asleep and are held
/// when they wake. Invisible to the guest: no signal, no state change.
static FROZEN: AtomicBool = AtomicBool::new(false);

/// Whether the instance is frozen (checked on every return to the guest).
pub fn frozen() -> bool {
    FROZEN.load(Ordering::Relaxed)
}

fn live_groups() -> Vec<Arc<crate::task::ThreadGroup>> {
    let tree = crate::kernel().tasks.lock();
    tree.values().filter_map(|n| n.group.clone()).collect()
}

/// Freezes the guest. None before init is set up.
pub fn freeze() -> Option<()> {
    if INIT_PID.load(Ordering::SeqCst) == 0 {
        return None;
    }
    freeze_guest()
}

/// Freezes every guest task (the management console's `stop`). None
/// before the kernel is up.
pub fn freeze_guest() -> Option<()> {
    if !crate::kernel_booted() {
        return None;
    }
    FROZEN.store(true, Ordering::SeqCst);
    // Out of guest code, into the held state.
    for g in live_groups() {
        g.kick_all();
    }
    Some(())
}

/// Lets a frozen guest run again.
pub fn thaw() {
    FROZEN.store(false, Ordering::SeqCst);
    if crate::kernel_booted() {
        for g in live_groups() {
            for t in g.threads() {
                t.waker.poke();
            }
        }
    }
}

/// Holds `task` while the instance is frozen (or until its process exits).
pub(crate) fn hold_while_frozen(task: &Task) {
    task.sleep_until_poked(|| !frozen() || task.group.sig().exit.is_some());
}
