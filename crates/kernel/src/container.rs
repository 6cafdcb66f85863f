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
use std::sync::atomic::{AtomicI32, Ordering};
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
    pub hostname: Option<Vec<u8>>,
    /// Made in order, after ruml's own boot-time mounts.
    pub mounts: Vec<ExtraMount>,
}

static SETUP: Mutex<Option<ContainerSetup>> = Mutex::new(None);
/// init's pid once [`apply`] ran (0 before).
static INIT_PID: AtomicI32 = AtomicI32::new(0);

/// Records the setup the next boot applies to init.
pub fn set(setup: ContainerSetup) {
    *SETUP.lock().unwrap_or_else(|p| p.into_inner()) = Some(setup);
}

/// Applies the recorded setup to init (`task`, whose filesystem context
/// is `fs`). Called by boot before init's program is loaded.
pub(crate) fn apply(task: &Arc<Task>, fs: &Arc<FsContext>) -> Result<(), String> {
    INIT_PID.store(task.tgid(), Ordering::SeqCst);
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
