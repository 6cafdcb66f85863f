//! Discretionary access control (credentials(7), path_resolution(7)):
//! files are checked against the caller's filesystem uid and gid and
//! supplementary groups. The capabilities that override them are
//! Linux's: CAP_DAC_OVERRIDE passes every check but execute, which needs
//! some x bit on a non-directory; CAP_DAC_READ_SEARCH reads anything and
//! searches directories; CAP_FOWNER stands in for the owner; CAP_CHOWN
//! for chown. Root holds them all until it drops them (task/caps.rs; a
//! non-zero fsuid drops them from the effective set). Kernel-internal
//! callers (no task) are not checked.

use crate::errno::KResult;
use crate::error;
use crate::fs::types::{FileType, Stat};
use crate::fs::vfs::{Caller, Path};
use crate::task::caps::Cap;
use crate::task::creds::Creds;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;
const S_ISVTX: u32 = 0o1000;

/// Whether `c` may access a file with `st` for `want` (MAY_* bits).
pub fn allowed(c: &Creds, st: &Stat, want: u32) -> bool {
    let dir = st.mode & 0o170000 == 0o040000;
    let bits = if st.uid == c.fsuid {
        st.mode >> 6
    } else if st.gid == c.fsgid || c.groups.contains(&st.gid) {
        st.mode >> 3
    } else {
        st.mode
    } & 7;
    if bits & want == want {
        return true;
    }
    if c.capable(Cap::DacOverride) && (want & MAY_EXEC == 0 || dir || st.mode & 0o111 != 0) {
        return true;
    }
    c.capable(Cap::DacReadSearch) && want & MAY_WRITE == 0 && (dir || want & MAY_EXEC == 0)
}

/// EACCES unless the caller may access `p` for `want`.
pub fn check(caller: &Caller<'_>, p: &Path, want: u32) -> KResult<()> {
    let Some(c) = caller.creds() else {
        return Ok(());
    };
    if c.capable(Cap::DacOverride) && want & MAY_EXEC == 0 || p.inode().grants(caller) {
        return Ok(());
    }
    if allowed(&c, &p.inode().stat()?, want) {
        Ok(())
    } else {
        error!(EACCES)
    }
}

/// Search permission on a directory being walked through.
pub fn may_search(caller: &Caller<'_>, dir: &Path) -> KResult<()> {
    let Some(c) = caller.creds() else {
        return Ok(());
    };
    if c.capable(Cap::DacOverride) || c.capable(Cap::DacReadSearch) || dir.inode().grants(caller) {
        return Ok(());
    }
    if allowed(&c, &dir.inode().stat()?, MAY_EXEC) {
        Ok(())
    } else {
        error!(EACCES)
    }
}

/// chdir, fchdir and chroot: search permission on the directory
/// (EACCES); chroot then needs CAP_SYS_CHROOT in the caller's user
/// namespace (EPERM), as Linux checks them in that order.
pub fn may_enter(task: &crate::task::Task, dir: &Path, chroot: bool) -> KResult<()> {
    may_search(&Caller::of(task), dir)?;
    if chroot && !task.privileged(Cap::SysChroot) {
        return error!(EPERM);
    }
    Ok(())
}

/// Creating or removing names in `dir` needs write and search on it; in
/// a sticky directory only the owner of the victim or of the directory
/// (or root) may remove or rename it.
pub fn may_change_dir(caller: &Caller<'_>, dir: &Path, victim: Option<&Path>) -> KResult<()> {
    let Some(c) = caller.creds() else {
        return Ok(());
    };
    let ds = dir.inode().stat()?;
    if !allowed(&c, &ds, MAY_WRITE | MAY_EXEC) {
        return error!(EACCES);
    }
    if let Some(v) = victim {
        if ds.mode & S_ISVTX != 0 && !c.capable(Cap::Fowner) {
            let vs = v.inode().stat()?;
            if vs.uid != c.fsuid && ds.uid != c.fsuid {
                return error!(EPERM);
            }
        }
    }
    Ok(())
}

/// chmod, utimes with explicit times: only the owner (or root).
pub fn must_own(caller: &Caller<'_>, p: &Path) -> KResult<()> {
    let Some(c) = caller.creds() else {
        return Ok(());
    };
    if c.capable(Cap::Fowner) || p.inode().stat()?.uid == c.fsuid {
        Ok(())
    } else {
        error!(EPERM)
    }
}

/// chown: root may do anything; the owner may change the group to one of
/// its own groups; nobody else may change anything.
pub fn may_chown(caller: &Caller<'_>, p: &Path, uid: Option<u32>, gid: Option<u32>) -> KResult<()> {
    let Some(c) = caller.creds() else {
        return Ok(());
    };
    if c.capable(Cap::Chown) {
        return Ok(());
    }
    let st = p.inode().stat()?;
    let uid_ok = uid.is_none_or(|u| u == st.uid);
    let gid_ok = gid.is_none_or(|g| {
        g == st.gid || (st.uid == c.fsuid && (g == c.fsgid || c.groups.contains(&g)))
    });
    if st.uid == c.fsuid && uid_ok && gid_ok {
        Ok(())
    } else {
        error!(EPERM)
    }
}

/// access(2) checks with the real ids (AT_EACCESS: the effective ones).
pub fn access_check(caller: &Caller<'_>, p: &Path, want: u32, effective: bool) -> KResult<()> {
    let Some(mut c) = caller.creds() else {
        return Ok(());
    };
    if !effective {
        // Linux's do_faccessat: the real ids, and the capabilities of
        // root only if the real uid is 0.
        c.fsuid = c.ruid;
        c.fsgid = c.rgid;
        let root = c.ruid == 0 && c.caps.securebits & crate::task::caps::SECBIT_NOROOT == 0;
        c.caps.effective = if root { c.caps.permitted } else { 0 };
    }
    if want == 0 {
        return Ok(());
    }
    let st = p.inode().stat()?;
    if c.capable(Cap::DacOverride) {
        // Execute still needs some x bit on a non-directory.
        if want & MAY_EXEC != 0 && st.file_type() != FileType::Directory && st.mode & 0o111 == 0 {
            return error!(EACCES);
        }
        return Ok(());
    }
    if allowed(&c, &st, want) {
        Ok(())
    } else {
        error!(EACCES)
    }
}

const S_ISGID: u32 = 0o2000;

/// chmod's mode as Linux applies it: S_ISGID is dropped when the caller
/// is neither in the file's group nor holds CAP_FSETID.
pub fn chmod_mode(caller: &Caller<'_>, p: &Path, mode: u32) -> u32 {
    let Some(c) = caller.creds() else { return mode };
    if mode & S_ISGID == 0 || c.capable(Cap::Fsetid) {
        return mode;
    }
    match p.inode().stat() {
        Ok(st) if st.gid != c.fsgid && !c.groups.contains(&st.gid) => mode & !S_ISGID,
        _ => mode,
    }
}

/// Before a write or truncate by `task` (Linux's file_remove_privs): a
/// caller without CAP_FSETID clears a regular file's S_ISUID, and its
/// S_ISGID when the group may execute it or the caller is not in its
/// group. Costs a stat only for such callers.
pub fn remove_privs(task: &crate::task::Task, inode: &std::sync::Arc<dyn crate::fs::vfs::Inode>) {
    let (fsgid, groups) = {
        let c = task.group.creds.lock().unwrap_or_else(|p| p.into_inner());
        if c.capable(Cap::Fsetid) {
            return;
        }
        (c.fsgid, c.groups.clone())
    };
    let Ok(st) = inode.stat() else { return };
    if st.file_type() != FileType::Regular || st.mode & 0o6000 == 0 {
        return;
    }
    let mut mode = st.mode & 0o7777 & !0o4000;
    if st.mode & S_ISGID != 0
        && (st.mode & 0o010 != 0 || (st.gid != fsgid && !groups.contains(&st.gid)))
    {
        mode &= !S_ISGID;
    }
    if mode != st.mode & 0o7777 {
        let _ = inode.setattr(&crate::fs::vfs::SetAttr {
            mode: Some(mode),
            ..Default::default()
        });
    }
}

/// A file a non-root caller just created in `dir` belongs to its fsuid,
/// and to its fsgid unless `dir` is set-group-ID: then to `dir`'s group,
/// as the filesystem made it (filesystems create as root). A
/// non-directory created there with S_ISGID and group-execute by a caller
/// neither in `dir`'s group nor holding CAP_FSETID loses S_ISGID (Linux's
/// mode_strip_sgid), root without CAP_FSETID included.
pub fn own_new(caller: &Caller<'_>, dir: &Path, inode: &std::sync::Arc<dyn crate::fs::vfs::Inode>) {
    let Some(c) = caller.creds() else { return };
    let dir_st = dir.inode().stat().ok();
    let sgid_gid = dir_st.filter(|st| st.mode & S_ISGID != 0).map(|st| st.gid);
    let strip =
        sgid_gid.is_some_and(|g| g != c.fsgid && !c.groups.contains(&g) && !c.capable(Cap::Fsetid));
    let mode = if strip {
        inode.stat().ok().and_then(|st| {
            let sgid_x = S_ISGID | 0o010;
            (st.file_type() != FileType::Directory && st.mode & sgid_x == sgid_x)
                .then_some(st.mode & 0o7777 & !S_ISGID)
        })
    } else {
        None
    };
    if c.fsuid == 0 && c.fsgid == 0 {
        if mode.is_some() {
            let _ = inode.setattr(&crate::fs::vfs::SetAttr {
                mode,
                ..Default::default()
            });
        }
        return;
    }
    let attr = crate::fs::vfs::SetAttr {
        uid: Some(c.fsuid),
        gid: Some(sgid_gid.unwrap_or(c.fsgid)),
        mode,
        ..Default::default()
    };
    let _ = inode.setattr(&attr);
}

/// As [`own_new`], for the entry `name` just made in `dir`.
pub fn own_new_entry(caller: &Caller<'_>, dir: &Path, name: &[u8]) {
    if caller
        .creds()
        .is_some_and(|c| c.fsuid != 0 || c.fsgid != 0 || !c.capable(Cap::Fsetid))
    {
        if let Ok(i) = dir.inode().lookup(name, caller) {
            own_new(caller, dir, &i);
        }
    }
}
