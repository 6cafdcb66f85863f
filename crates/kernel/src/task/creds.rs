//! Credentials: real, effective, saved and filesystem user and group ids,
//! supplementary groups, capabilities (task/caps.rs). The guest starts as
//! root with every capability. Set*id follow credentials(7): a holder of
//! CAP_SETUID/CAP_SETGID may set anything; others only to their real,
//! effective or saved ids; capabilities follow the uids as
//! capabilities(7) says. Per process (glibc keeps threads in step
//! anyway), behind one mutex.
//!
//! Files are not yet checked against non-root credentials (the guest's
//! filesystems treat every caller as root); docs/syscalls.md says so.

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

pub use super::caps::Cap;

/// A process's credentials. Ids are kernel ids (the initial user
/// namespace's); `user_ns` maps them for the process's view (ns.rs).
#[derive(Clone, Debug, Default)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Capability sets and securebits.
    pub caps: super::caps::CapSets,
    /// The user namespace (ns.rs).
    pub user_ns: UserNsRef,
    /// Holds every capability in `user_ns` though not uid 0 there: it
    /// made or joined the namespace (Linux gives the creator a full set);
    /// lost at exec and when the effective uid changes.
    pub ns_caps: bool,
    /// The session keyring and request_key default (keys/).
    pub keys: crate::keys::CredKeys,
}

/// A credentials' user namespace (Default: the initial one).
#[derive(Clone)]
pub struct UserNsRef(pub std::sync::Arc<super::ns::UserNs>);

impl Default for UserNsRef {
    fn default() -> Self {
        UserNsRef(super::ns::root_user())
    }
}

impl std::fmt::Debug for UserNsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user:[{}]", self.0.inum)
    }
}

impl std::ops::Deref for UserNsRef {
    type Target = std::sync::Arc<super::ns::UserNs>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<std::sync::Arc<super::ns::UserNs>> for UserNsRef {
    fn from(a: std::sync::Arc<super::ns::UserNs>) -> Self {
        UserNsRef(a)
    }
}

impl Creds {
    /// The kernel uid that is root in this user namespace (uid 0 as the
    /// process names it; u32::MAX if the namespace maps no uid 0): what
    /// capabilities(7)'s rules call "root" (task/caps.rs).
    pub fn root_uid(&self) -> u32 {
        self.user_ns.to_kernel(MapKind::Uid, 0).unwrap_or(u32::MAX)
    }

    /// An id as the process names it -> kernel id (EINVAL when unmapped;
    /// KEEP stays KEEP).
    fn kid(&self, kind: MapKind, id: u32) -> KResult<u32> {
        if id == KEEP {
            return Ok(KEEP);
        }
        self.user_ns
            .to_kernel(kind, id)
            .ok_or(crate::errno!(EINVAL))
    }

    /// A kernel id as the process sees it (65534 when unmapped).
    fn show(&self, kind: MapKind, kid: u32) -> u32 {
        self.user_ns.show(kind, kid)
    }
}

use super::ns::MapKind;
use MapKind::{Gid, Uid};

impl super::Task {
    /// Whether the task may do what `cap` guards in the initial user
    /// namespace. The one place every privilege check goes through.
    pub fn privileged(&self, cap: Cap) -> bool {
        self.privileged_in(&super::ns::root_user(), cap)
    }

    /// Whether the task holds `cap` in user namespace `ns` (Linux's
    /// ns_capable): it is in `ns` and its effective set holds `cap` (or it
    /// made/joined `ns`: `ns_caps`), or it is in an ancestor of `ns` and
    /// privileged there, or the owner of the namespace below it.
    pub fn privileged_in(&self, ns: &std::sync::Arc<super::ns::UserNs>, cap: Cap) -> bool {
        self.group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .privileged_in(ns, cap)
    }
}

impl Creds {
    /// As [`super::Task::privileged_in`], for credentials not (yet) the
    /// task's own (setns(pidfd) checks later namespaces with the
    /// credentials of the user namespace it is joining).
    pub fn privileged_in(&self, ns: &std::sync::Arc<super::ns::UserNs>, cap: Cap) -> bool {
        let c = self;
        let mine = c.user_ns.0.clone();
        let mut cur = ns.clone();
        loop {
            if std::sync::Arc::ptr_eq(&cur, &mine) {
                return c.capable(cap);
            }
            let Some(parent) = cur.parent.clone() else {
                return false;
            };
            if std::sync::Arc::ptr_eq(&parent, &mine) && cur.owner_uid == c.euid {
                return true;
            }
            cur = parent;
        }
    }
}

/// fs.suid_dumpable: what a credential change (and exec of a set-id
/// program) leaves of dumpability: 0 (Linux's default, not dumpable),
/// 1 (dumpable) or 2 (dumps as root, to an absolute core_pattern only).
static SUID_DUMPABLE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// fs.suid_dumpable now.
pub fn suid_dumpable() -> u8 {
    SUID_DUMPABLE.load(std::sync::atomic::Ordering::Relaxed)
}

/// /proc/sys/fs/suid_dumpable's text.
pub fn suid_dumpable_text() -> String {
    format!("{}\n", suid_dumpable())
}

/// Writes /proc/sys/fs/suid_dumpable (proc_dointvec_minmax: 0 to 2,
/// else EINVAL).
pub fn set_suid_dumpable(_admin: bool, buf: &[u8]) -> crate::errno::KResult<()> {
    let text = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
    let v: i64 = text
        .split_whitespace()
        .next()
        .ok_or(crate::errno!(EINVAL))?
        .parse()
        .map_err(|_| crate::errno!(EINVAL))?;
    if !(0..=2).contains(&v) {
        return crate::error!(EINVAL);
    }
    SUID_DUMPABLE.store(v as u8, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Linux's commit_creds rule: a process whose effective or filesystem
/// ids change, or whose permitted capabilities grow (are not a subset of
/// the old ones, across user namespaces as cred_cap_issubset), stops
/// being dumpable as its owner: it becomes fs.suid_dumpable (0:
/// PR_GET_DUMPABLE says 0, its /proc entries belong to root, same-uid
/// ptrace is refused, no core is written; 2: the same, but cores are
/// written as root; 1: nothing changes), until PR_SET_DUMPABLE or the
/// next exec.
pub fn commit_dumpable(group: &super::ThreadGroup, old: &Creds, new: &Creds) {
    let ids_changed =
        (old.euid, old.egid, old.fsuid, old.fsgid) != (new.euid, new.egid, new.fsuid, new.fsgid);
    if ids_changed || !cap_issubset(old, new) {
        group.set_dumpable_mode(suid_dumpable());
    }
}

/// cred_cap_issubset: whether `new`'s permitted set is within `old`'s.
/// In another user namespace it is only when `old` owns (its effective
/// uid made) that namespace or one of its ancestors below `old`'s.
fn cap_issubset(old: &Creds, new: &Creds) -> bool {
    if std::sync::Arc::ptr_eq(&old.user_ns, &new.user_ns) {
        return new.caps.permitted & !old.caps.permitted == 0;
    }
    let mut ns = new.user_ns.0.clone();
    while let Some(parent) = ns.parent.clone() {
        if std::sync::Arc::ptr_eq(&parent, &old.user_ns) && ns.owner_uid == old.euid {
            return true;
        }
        ns = parent;
    }
    false
}

/// A process's credentials locked for a change, the one way set*id,
/// capset, unshare/setns and exec change them: when dropped, the change
/// is committed as Linux's commit_creds does (see [`commit_dumpable`]).
/// Holds the credentials mutex for its life.
pub struct CredsChange<'a> {
    creds: std::sync::MutexGuard<'a, Creds>,
    old: Creds,
    group: &'a super::ThreadGroup,
}

/// Locks `group`'s credentials for a change.
pub fn change(group: &super::ThreadGroup) -> CredsChange<'_> {
    let creds = group.creds.lock().unwrap_or_else(|p| p.into_inner());
    let old = creds.clone();
    CredsChange { creds, old, group }
}

impl std::ops::Deref for CredsChange<'_> {
    type Target = Creds;
    fn deref(&self) -> &Creds {
        &self.creds
    }
}

impl std::ops::DerefMut for CredsChange<'_> {
    fn deref_mut(&mut self) -> &mut Creds {
        &mut self.creds
    }
}

impl Drop for CredsChange<'_> {
    fn drop(&mut self) {
        commit_dumpable(self.group, &self.old, &self.creds);
    }
}

const NGROUPS_MAX: usize = 65536;
const KEEP: u32 = u32::MAX;

syscall_table! { pub fn creds_table;
    GETUID => sys_getuid(),
    GETEUID => sys_geteuid(),
    GETGID => sys_getgid(),
    GETEGID => sys_getegid(),
    GETRESUID => sys_getresuid(r: UserAddr, e: UserAddr, s: UserAddr),
    GETRESGID => sys_getresgid(r: UserAddr, e: UserAddr, s: UserAddr),
    SETUID => sys_setuid(uid: u32),
    SETGID => sys_setgid(gid: u32),
    SETREUID => sys_setreuid(r: u32, e: u32),
    SETREGID => sys_setregid(r: u32, e: u32),
    SETRESUID => sys_setresuid(r: u32, e: u32, s: u32),
    SETRESGID => sys_setresgid(r: u32, e: u32, s: u32),
    SETFSUID => sys_setfsuid(uid: u32),
    SETFSGID => sys_setfsgid(gid: u32),
    GETGROUPS => sys_getgroups(size: i32, list: UserAddr),
    SETGROUPS => sys_setgroups(size: usize, list: UserAddr),
}

fn creds<'a>(ctx: &SyscallContext<'a>) -> std::sync::MutexGuard<'a, Creds> {
    ctx.task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

// Ids cross the boundary through the caller's user namespace (ns.rs).
fn sys_getuid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let c = creds(ctx);
    Ok(c.show(Uid, c.ruid) as u64)
}
fn sys_geteuid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let c = creds(ctx);
    Ok(c.show(Uid, c.euid) as u64)
}
fn sys_getgid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let c = creds(ctx);
    Ok(c.show(Gid, c.rgid) as u64)
}
fn sys_getegid(ctx: &mut SyscallContext<'_>) -> KResult<u64> {
    let c = creds(ctx);
    Ok(c.show(Gid, c.egid) as u64)
}

fn put3(ctx: &SyscallContext<'_>, a: [UserAddr; 3], v: [u32; 3]) -> KResult<u64> {
    for (p, x) in a.iter().zip(v) {
        ctx.mm().write_val(p.0, &x)?;
    }
    Ok(0)
}

fn sys_getresuid(
    ctx: &mut SyscallContext<'_>,
    r: UserAddr,
    e: UserAddr,
    s: UserAddr,
) -> KResult<u64> {
    let c = creds(ctx).clone();
    put3(
        ctx,
        [r, e, s],
        [
            c.show(Uid, c.ruid),
            c.show(Uid, c.euid),
            c.show(Uid, c.suid),
        ],
    )
}

fn sys_getresgid(
    ctx: &mut SyscallContext<'_>,
    r: UserAddr,
    e: UserAddr,
    s: UserAddr,
) -> KResult<u64> {
    let c = creds(ctx).clone();
    put3(
        ctx,
        [r, e, s],
        [
            c.show(Gid, c.rgid),
            c.show(Gid, c.egid),
            c.show(Gid, c.sgid),
        ],
    )
}

/// setresuid/setresgid's rule: each new id (unless KEEP) must be one of
/// the current three, unless privileged.
fn allowed(c: &Creds, cap: Cap, cur: [u32; 3], new: [u32; 3]) -> bool {
    c.capable(cap) || new.iter().all(|&n| n == KEEP || cur.contains(&n))
}

fn sys_setresuid(ctx: &mut SyscallContext<'_>, r: u32, e: u32, s: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let old = c.clone();
    let r = c.kid(Uid, r)?;
    let e = c.kid(Uid, e)?;
    let s = c.kid(Uid, s)?;
    if !allowed(&c, Cap::Setuid, [c.ruid, c.euid, c.suid], [r, e, s]) {
        return error!(EPERM);
    }
    if r != KEEP {
        c.ruid = r;
    }
    if e != KEEP {
        c.euid = e;
    }
    if s != KEEP {
        c.suid = s;
    }
    c.fsuid = c.euid;
    super::caps::fix_setuid(&old, &mut c);
    Ok(0)
}

fn sys_setresgid(ctx: &mut SyscallContext<'_>, r: u32, e: u32, s: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let r = c.kid(Gid, r)?;
    let e = c.kid(Gid, e)?;
    let s = c.kid(Gid, s)?;
    if !allowed(&c, Cap::Setgid, [c.rgid, c.egid, c.sgid], [r, e, s]) {
        return error!(EPERM);
    }
    if r != KEEP {
        c.rgid = r;
    }
    if e != KEEP {
        c.egid = e;
    }
    if s != KEEP {
        c.sgid = s;
    }
    c.fsgid = c.egid;
    Ok(0)
}

fn sys_setuid(ctx: &mut SyscallContext<'_>, uid: u32) -> KResult<u64> {
    if uid == KEEP {
        return error!(EINVAL);
    }
    let mut c = change(&ctx.task.group);
    let old = c.clone();
    let uid = c.kid(Uid, uid)?;
    if c.capable(Cap::Setuid) {
        (c.ruid, c.euid, c.suid, c.fsuid) = (uid, uid, uid, uid);
    } else if uid == c.ruid || uid == c.suid {
        (c.euid, c.fsuid) = (uid, uid);
    } else {
        return error!(EPERM);
    }
    super::caps::fix_setuid(&old, &mut c);
    Ok(0)
}

fn sys_setgid(ctx: &mut SyscallContext<'_>, gid: u32) -> KResult<u64> {
    if gid == KEEP {
        return error!(EINVAL);
    }
    let mut c = change(&ctx.task.group);
    let gid = c.kid(Gid, gid)?;
    if c.capable(Cap::Setgid) {
        (c.rgid, c.egid, c.sgid, c.fsgid) = (gid, gid, gid, gid);
    } else if gid == c.rgid || gid == c.sgid {
        (c.egid, c.fsgid) = (gid, gid);
    } else {
        return error!(EPERM);
    }
    Ok(0)
}

fn sys_setreuid(ctx: &mut SyscallContext<'_>, r: u32, e: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let old = c.clone();
    let r = c.kid(Uid, r)?;
    let e = c.kid(Uid, e)?;
    let ok = c.capable(Cap::Setuid)
        || ((r == KEEP || r == c.ruid || r == c.euid)
            && (e == KEEP || e == c.ruid || e == c.euid || e == c.suid));
    if !ok {
        return error!(EPERM);
    }
    let old_ruid = c.ruid;
    if r != KEEP {
        c.ruid = r;
    }
    if e != KEEP {
        c.euid = e;
    }
    // The saved id follows the effective one when the real one is set or
    // the effective one changes away from the old real id.
    if r != KEEP || (e != KEEP && e != old_ruid) {
        c.suid = c.euid;
    }
    c.fsuid = c.euid;
    super::caps::fix_setuid(&old, &mut c);
    Ok(0)
}

fn sys_setregid(ctx: &mut SyscallContext<'_>, r: u32, e: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let r = c.kid(Gid, r)?;
    let e = c.kid(Gid, e)?;
    let ok = c.capable(Cap::Setgid)
        || ((r == KEEP || r == c.rgid || r == c.egid)
            && (e == KEEP || e == c.rgid || e == c.egid || e == c.sgid));
    if !ok {
        return error!(EPERM);
    }
    let old_rgid = c.rgid;
    if r != KEEP {
        c.rgid = r;
    }
    if e != KEEP {
        c.egid = e;
    }
    if r != KEEP || (e != KEEP && e != old_rgid) {
        c.sgid = c.egid;
    }
    c.fsgid = c.egid;
    Ok(0)
}

fn sys_setfsuid(ctx: &mut SyscallContext<'_>, uid: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let uid = c.kid(Uid, uid).unwrap_or(KEEP);
    let old_k = c.fsuid;
    let old = c.show(Uid, old_k);
    if uid != KEEP && (c.capable(Cap::Setuid) || [c.ruid, c.euid, c.suid, c.fsuid].contains(&uid)) {
        c.fsuid = uid;
        super::caps::fix_setfsuid(old_k, &mut c);
    }
    Ok(old as u64)
}

fn sys_setfsgid(ctx: &mut SyscallContext<'_>, gid: u32) -> KResult<u64> {
    let mut c = change(&ctx.task.group);
    let gid = c.kid(Gid, gid).unwrap_or(KEEP);
    let old = c.show(Gid, c.fsgid);
    if gid != KEEP && (c.capable(Cap::Setgid) || [c.rgid, c.egid, c.sgid, c.fsgid].contains(&gid)) {
        c.fsgid = gid;
    }
    Ok(old as u64)
}

fn sys_getgroups(ctx: &mut SyscallContext<'_>, size: i32, list: UserAddr) -> KResult<u64> {
    if size < 0 {
        return error!(EINVAL);
    }
    let g: Vec<u32> = {
        let c = creds(ctx);
        c.groups.iter().map(|&k| c.show(Gid, k)).collect()
    };
    if size == 0 {
        return Ok(g.len() as u64);
    }
    if (size as usize) < g.len() {
        return error!(EINVAL);
    }
    let bytes: Vec<u8> = g.iter().flat_map(|x| x.to_le_bytes()).collect();
    ctx.mm().write_bytes(list.0, &bytes)?;
    Ok(g.len() as u64)
}

fn sys_setgroups(ctx: &mut SyscallContext<'_>, size: usize, list: UserAddr) -> KResult<u64> {
    if size > NGROUPS_MAX {
        return error!(EINVAL);
    }
    let mut b = vec![0u8; size * 4];
    ctx.mm().read_bytes(list.0, &mut b)?;
    let mut c = change(&ctx.task.group);
    // In a user namespace: only once its gid map is written and unless
    // /proc/PID/setgroups says "deny".
    if !c.capable(Cap::Setgid) || !c.user_ns.may_setgroups() {
        return error!(EPERM);
    }
    let mut g: Vec<u32> = b
        .chunks_exact(4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
        .map(|id| c.kid(Gid, id))
        .collect::<KResult<Vec<u32>>>()?;
    g.sort_unstable();
    c.groups = g;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Creds {
        let mut c = Creds {
            ruid: uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            ..Default::default()
        };
        c.caps.permitted = 0;
        c.caps.effective = 0;
        c
    }

    /// Linux's commit_creds cases: ids, permitted growth, and the full
    /// set of a new user namespace (owned by the old euid: a subset; a
    /// sibling's: not).
    #[test]
    fn dumpability_changes() {
        let old = user(1000);
        let mut new = old.clone();
        assert!(cap_issubset(&old, &new));
        new.fsgid = 5;
        let changed = |o: &Creds, n: &Creds| {
            let g = crate::task::ThreadGroup::new(1, Default::default(), [[0; 2]; 16]);
            commit_dumpable(&g, o, n);
            !g.dumpable()
        };
        assert!(changed(&old, &new));
        let mut new = old.clone();
        new.caps.permitted = Cap::NetRaw.bit();
        assert!(changed(&old, &new));
        assert!(!changed(&new, &old));
        let own = super::super::ns::new_user(&old.user_ns, 1000, 0).unwrap();
        let mut new = old.clone();
        new.user_ns = own.clone().into();
        new.caps = super::super::caps::CapSets::root();
        assert!(!changed(&old, &new));
        let other = super::super::ns::new_user(&old.user_ns, 2000, 0).unwrap();
        new.user_ns = other.into();
        assert!(changed(&old, &new));
        let nested = super::super::ns::new_user(&own, 1000, 0).unwrap();
        new.user_ns = nested.into();
        assert!(!changed(&old, &new));
    }
}
