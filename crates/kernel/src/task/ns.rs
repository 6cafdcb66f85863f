//! Namespaces: user, PID, UTS, IPC, cgroup and time namespace objects, the
//! per-task [`NsProxy`] that points at them, and the system calls that make
//! and join them (unshare, setns; clone's CLONE_NEW* flags go through
//! [`clone_namespaces`]). Mount namespaces are the VFS's
//! [`Namespace`](crate::fs::vfs::Namespace), held by a task's
//! [`FsContext`](crate::fs::FsContext); their copying is in `fs/mntns.rs`.
//!
//! Lifetimes and locking:
//! - Every namespace is an `Arc`; it lives while a task, an open
//!   `/proc/PID/ns/*` file or a child namespace (user and PID namespaces
//!   point at their parent) holds it. Each has an inode number from one
//!   counter ([`new_inum`]) that `/proc/PID/ns/*` shows (`uts:[4026532001]`).
//! - A task's [`NsProxy`] sits behind one mutex in the task, held only to
//!   clone or replace the `Arc`. unshare and setns replace the proxy of the
//!   calling thread only (as Linux).
//! - A process's PID namespace (where its pid was allocated) is fixed for
//!   its life, in its [`ThreadGroup`](super::ThreadGroup); the proxy's
//!   `pid_for_children` is where its next children go.
//! - Global (root-namespace) pids stay the keys of the task table; a
//!   [`PidNs`] below the root maps them to its own numbers and back, under
//!   its own mutex, taken after the task tree's (never the other way).
//! - A user namespace's id maps are written once ([`UserNs`]); credentials
//!   keep kernel ids (the root namespace's) and system calls translate at
//!   the boundary (getuid shows the mapped id, or 65534 when unmapped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::SyscallContext;

pub const CLONE_NEWTIME: u64 = 0x80;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// Every namespace flag ruml can make a new namespace for.
pub const CLONE_NEW_SUPPORTED: u64 = CLONE_NEWNET
    | CLONE_NEWTIME
    | CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID;

/// The overflow id getuid shows for an unmapped id (/proc/sys/kernel/overflowuid).
pub const OVERFLOW_ID: u32 = 65534;

/// Nesting limit of user and PID namespaces (Linux's 32).
const MAX_LEVEL: u32 = 32;

/// Inode numbers of the initial namespaces, as Linux numbers them.
const INIT_IPC: u64 = 0xEFFF_FFFF;
const INIT_UTS: u64 = 0xEFFF_FFFE;
const INIT_USER: u64 = 0xEFFF_FFFD;
const INIT_PID: u64 = 0xEFFF_FFFC;
const INIT_CGROUP: u64 = 0xEFFF_FFFB;
const INIT_TIME: u64 = 0xEFFF_FFFA;
/// The first mount and network namespaces take the first dynamic numbers.
pub const INIT_NET: u64 = 0xF000_0000;
pub const INIT_MNT: u64 = 0xF000_0001;

static NEXT_INUM: AtomicU64 = AtomicU64::new(0xF000_00A0);

/// A fresh namespace inode number.
pub fn new_inum() -> u64 {
    NEXT_INUM.fetch_add(1, Ordering::Relaxed)
}

/// The kinds of namespace, as /proc/PID/ns names them and NS_GET_NSTYPE
/// reports them (the CLONE_NEW* bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsKind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    PidForChildren,
    Time,
    TimeForChildren,
    User,
    Uts,
}

impl NsKind {
    /// Entries of /proc/PID/ns, in Linux's order.
    pub const ALL: [NsKind; 10] = [
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::PidForChildren,
        NsKind::Time,
        NsKind::TimeForChildren,
        NsKind::User,
        NsKind::Uts,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::PidForChildren => "pid_for_children",
            NsKind::Time => "time",
            NsKind::TimeForChildren => "time_for_children",
            NsKind::User => "user",
            NsKind::Uts => "uts",
        }
    }

    /// The name readlink shows before `:[inum]`.
    pub fn link_name(self) -> &'static str {
        match self {
            NsKind::PidForChildren => "pid",
            NsKind::TimeForChildren => "time",
            k => k.file_name(),
        }
    }

    pub fn clone_flag(self) -> u64 {
        match self {
            NsKind::Cgroup => CLONE_NEWCGROUP,
            NsKind::Ipc => CLONE_NEWIPC,
            NsKind::Mnt => CLONE_NEWNS,
            NsKind::Net => CLONE_NEWNET,
            NsKind::Pid | NsKind::PidForChildren => CLONE_NEWPID,
            NsKind::Time | NsKind::TimeForChildren => CLONE_NEWTIME,
            NsKind::User => CLONE_NEWUSER,
            NsKind::Uts => CLONE_NEWUTS,
        }
    }
}

// ---------------------------------------------------------------------
// User namespaces

/// One line of a uid_map or gid_map: ids `first..first+count` of the
/// namespace are ids `lower..` of its parent, which are kernel ids
/// `kfirst..` (kept so translation never walks the parents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub first: u32,
    pub lower: u32,
    pub count: u32,
    pub kfirst: u32,
}

/// An id map; `None` until written (everything unmapped).
pub type IdMap = Option<Vec<Extent>>;

/// A user namespace. Maps are written once each, under `maps`.
pub struct UserNs {
    pub inum: u64,
    pub parent: Option<Arc<UserNs>>,
    pub level: u32,
    /// The creator's effective ids (kernel ids): NS_GET_OWNER_UID, and the
    /// owner holds every capability in the namespace.
    pub owner_uid: u32,
    pub owner_gid: u32,
    maps: Mutex<UserMaps>,
}

#[derive(Default)]
struct UserMaps {
    uid: IdMap,
    gid: IdMap,
    /// /proc/PID/setgroups: "deny" makes setgroups(2) fail with EPERM.
    setgroups_deny: bool,
}

/// Which of a user namespace's maps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapKind {
    Uid,
    Gid,
}

/// Most lines a map may have (Linux's UID_GID_MAP_MAX_EXTENTS).
const MAX_EXTENTS: usize = 340;

impl UserNs {
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    fn lock(&self) -> MutexGuard<'_, UserMaps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kernel id -> id in this namespace (None: unmapped).
    pub fn from_kernel(&self, kind: MapKind, kid: u32) -> Option<u32> {
        if self.is_root() {
            return Some(kid);
        }
        let m = self.lock();
        let map = match kind {
            MapKind::Uid => &m.uid,
            MapKind::Gid => &m.gid,
        };
        map.as_ref()?.iter().find_map(|e| {
            (kid >= e.kfirst && kid - e.kfirst < e.count).then(|| e.first + (kid - e.kfirst))
        })
    }

    /// Id in this namespace -> kernel id (None: unmapped).
    pub fn to_kernel(&self, kind: MapKind, id: u32) -> Option<u32> {
        if self.is_root() {
            return Some(id);
        }
        let m = self.lock();
        let map = match kind {
            MapKind::Uid => &m.uid,
            MapKind::Gid => &m.gid,
        };
        map.as_ref()?.iter().find_map(|e| {
            (id >= e.first && id - e.first < e.count).then(|| e.kfirst + (id - e.first))
        })
    }

    /// What getuid shows for kernel id `kid`: the mapped id, or 65534.
    pub fn show(&self, kind: MapKind, kid: u32) -> u32 {
        self.from_kernel(kind, kid).unwrap_or(OVERFLOW_ID)
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn is_ancestor_of(self: &Arc<Self>, other: &Arc<UserNs>) -> bool {
        let mut cur = Some(other.clone());
        while let Some(c) = cur {
            if Arc::ptr_eq(&c, self) {
                return true;
            }
            cur = c.parent.clone();
        }
        false
    }

    /// The text of /proc/PID/uid_map or gid_map as seen from `viewer`'s
    /// namespace: lines "first lower count" with lower in the viewer's ids.
    pub fn map_text(&self, kind: MapKind, viewer: &UserNs) -> String {
        let m = self.lock();
        let map = match kind {
            MapKind::Uid => m.uid.clone(),
            MapKind::Gid => m.gid.clone(),
        };
        drop(m);
        let mut s = String::new();
        if self.is_root() {
            s.push_str("         0          0 4294967295\n");
            return s;
        }
        for e in map.unwrap_or_default() {
            let lower = viewer.from_kernel(kind, e.kfirst).unwrap_or(e.lower);
            s.push_str(&format!("{:>10} {:>10} {:>10}\n", e.first, lower, e.count));
        }
        s
    }

    pub fn setgroups_denied(&self) -> bool {
        self.lock().setgroups_deny
    }

    /// Whether this namespace or an ancestor denies setgroups(2), or its
    /// gid map is not yet written (Linux's userns_may_setgroups).
    pub fn may_setgroups(&self) -> bool {
        if self.is_root() {
            return true;
        }
        let m = self.lock();
        m.gid.is_some() && !m.setgroups_deny
    }

    /// The text of /proc/PID/setgroups.
    pub fn setgroups_text(&self) -> &'static str {
        if self.setgroups_denied() {
            "deny\n"
        } else {
            "allow\n"
        }
    }

    /// A write to /proc/PID/setgroups: "allow" or "deny" (EINVAL for
    /// anything else; EPERM to allow again or to deny after the gid map).
    pub fn write_setgroups(&self, buf: &[u8]) -> KResult<()> {
        let text = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
        let word = text.trim_end_matches([' ', '\n', '\t']);
        let deny = match word {
            "allow" => false,
            "deny" => true,
            _ => return error!(EINVAL),
        };
        let mut m = self.lock();
        if deny {
            if self.parent.is_none() || (m.gid.is_some() && !m.setgroups_deny) {
                return error!(EPERM);
            }
            m.setgroups_deny = true;
        } else if m.setgroups_deny {
            return error!(EPERM);
        }
        Ok(())
    }

    /// A write to uid_map/gid_map by `writer` (Linux's map_write rules):
    /// one write, at offset 0, of at most 340 lines "first lower count",
    /// no overlaps, each range mapped in the parent; only once; the
    /// writer needs CAP_SETUID/CAP_SETGID over the parent namespace, or
    /// maps just its own effective id (and, for gid_map, has denied
    /// setgroups).
    pub fn write_map(
        self: &Arc<Self>,
        kind: MapKind,
        buf: &[u8],
        writer: &super::Task,
    ) -> KResult<()> {
        let Some(parent) = self.parent.clone() else {
            return error!(EPERM);
        };
        let (wns, euid, egid) = {
            let c = writer.group.creds.lock().unwrap_or_else(|p| p.into_inner());
            (c.user_ns.0.clone(), c.euid, c.egid)
        };
        if !Arc::ptr_eq(&wns, self) && !Arc::ptr_eq(&wns, &parent) {
            return error!(EPERM);
        }
        if buf.len() >= 4096 {
            return error!(EINVAL);
        }
        let text = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
        let mut extents: Vec<Extent> = Vec::new();
        for line in text.split('\n') {
            if line.is_empty() {
                continue;
            }
            let mut w = line.split_ascii_whitespace();
            let mut num = || -> KResult<u32> {
                w.next()
                    .ok_or(crate::errno!(EINVAL))?
                    .parse::<u32>()
                    .map_err(|_| crate::errno!(EINVAL))
            };
            let (first, lower, count) = (num()?, num()?, num()?);
            if w.next().is_some() {
                return error!(EINVAL);
            }
            if count == 0
                || first.checked_add(count).is_none()
                || lower.checked_add(count).is_none()
                || first as u64 + count as u64 > u32::MAX as u64
                || lower as u64 + count as u64 > u32::MAX as u64
            {
                return error!(EINVAL);
            }
            if extents.len() >= MAX_EXTENTS {
                return error!(EINVAL);
            }
            let clash =
                |a: u32, n: u32, b: u32| a < b.saturating_add(count) && b < a.saturating_add(n);
            if extents
                .iter()
                .any(|e| clash(e.first, e.count, first) || clash(e.lower, e.count, lower))
            {
                return error!(EINVAL);
            }
            extents.push(Extent {
                first,
                lower,
                count,
                kfirst: 0,
            });
        }
        if extents.is_empty() {
            return error!(EINVAL);
        }
        // Permission (Linux's new_idmap_permitted).
        let own = extents.len() == 1
            && extents[0].count == 1
            && euid == self.owner_uid
            && match kind {
                MapKind::Uid => parent.to_kernel(kind, extents[0].lower) == Some(euid),
                MapKind::Gid => {
                    self.setgroups_denied()
                        && parent.to_kernel(kind, extents[0].lower) == Some(egid)
                }
            };
        let cap = match kind {
            MapKind::Uid => super::caps::Cap::Setuid,
            MapKind::Gid => super::caps::Cap::Setgid,
        };
        if !own && !writer.privileged_in(&parent, cap) {
            return error!(EPERM);
        }
        // Each range must be mapped in the parent, in one piece.
        for e in extents.iter_mut() {
            let k0 = parent
                .to_kernel(kind, e.lower)
                .ok_or(crate::errno!(EPERM))?;
            let k1 = parent
                .to_kernel(kind, e.lower + (e.count - 1))
                .ok_or(crate::errno!(EPERM))?;
            if k1.wrapping_sub(k0) != e.count - 1 {
                return error!(EPERM);
            }
            e.kfirst = k0;
        }
        let mut m = self.lock();
        let slot = match kind {
            MapKind::Uid => &mut m.uid,
            MapKind::Gid => &mut m.gid,
        };
        if slot.is_some() {
            return error!(EPERM);
        }
        *slot = Some(extents);
        Ok(())
    }
}

/// The initial user namespace: every id maps to itself.
pub fn root_user() -> Arc<UserNs> {
    static R: OnceLock<Arc<UserNs>> = OnceLock::new();
    R.get_or_init(|| {
        Arc::new(UserNs {
            inum: INIT_USER,
            parent: None,
            level: 0,
            owner_uid: 0,
            owner_gid: 0,
            maps: Mutex::new(UserMaps::default()),
        })
    })
    .clone()
}

/// A new user namespace below `parent`, owned by the given kernel ids.
pub(crate) fn new_user(
    parent: &Arc<UserNs>,
    owner_uid: u32,
    owner_gid: u32,
) -> KResult<Arc<UserNs>> {
    if parent.level + 1 > MAX_LEVEL {
        return error!(EUSERS);
    }
    // The setgroups state is inherited (Linux copies the parent's flags).
    let deny = parent.setgroups_denied();
    Ok(Arc::new(UserNs {
        inum: new_inum(),
        parent: Some(parent.clone()),
        level: parent.level + 1,
        owner_uid,
        owner_gid,
        maps: Mutex::new(UserMaps {
            setgroups_deny: deny,
            ..Default::default()
        }),
    }))
}

// ---------------------------------------------------------------------
// PID namespaces

/// A PID namespace. The root one is the identity; below it, the pids of
/// this namespace's processes and threads are numbered from 1 and mapped
/// to global pids (the task table's keys) both ways.
pub struct PidNs {
    pub inum: u64,
    pub parent: Option<Arc<PidNs>>,
    pub level: u32,
    /// The user namespace that owns it (NS_GET_USERNS).
    pub user_ns: Arc<UserNs>,
    maps: Mutex<PidMaps>,
}

#[derive(Default)]
struct PidMaps {
    to_local: HashMap<i32, i32>,
    to_global: HashMap<i32, i32>,
    next: i32,
    /// The namespace's init (global pid), once it has one.
    init: Option<i32>,
    /// Its init has exited: no new process may enter (ENOMEM, as Linux).
    dead: bool,
}

impl PidNs {
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    fn lock(&self) -> MutexGuard<'_, PidMaps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Global pid -> this namespace's number (0: not visible here, as
    /// getppid reports a parent outside the namespace).
    pub fn local(&self, global: i32) -> i32 {
        if self.is_root() || global <= 0 {
            return global;
        }
        self.lock().to_local.get(&global).copied().unwrap_or(0)
    }

    /// This namespace's number -> global pid (None: no such pid here).
    pub fn global(&self, local: i32) -> Option<i32> {
        if self.is_root() {
            return Some(local);
        }
        self.lock().to_global.get(&local).copied()
    }

    /// Whether global pid `g` is visible in this namespace.
    pub fn sees(&self, global: i32) -> bool {
        self.is_root() || self.lock().to_local.contains_key(&global)
    }

    /// The namespace's init, as a global pid.
    pub fn init(&self) -> Option<i32> {
        if self.is_root() {
            return Some(1);
        }
        self.lock().init
    }

    /// Numbers global pid `g` in this namespace and every ancestor below
    /// the root. ENOMEM once the namespace's init has died.
    pub fn attach(self: &Arc<Self>, g: i32, process: bool) -> KResult<()> {
        let mut chain = Vec::new();
        let mut cur = Some(self.clone());
        while let Some(ns) = cur {
            if ns.is_root() {
                break;
            }
            cur = ns.parent.clone();
            chain.push(ns);
        }
        for (i, ns) in chain.iter().enumerate() {
            let mut m = ns.lock();
            if m.dead || (m.init.is_none() && !process) {
                drop(m);
                for done in &chain[..i] {
                    done.detach(g);
                }
                return error!(ENOMEM);
            }
            if let Some(old) = m.to_local.remove(&g) {
                m.to_global.remove(&old);
            }
            let top = crate::fs::procsys::pid_max() - 1;
            let mut n = m.next.max(1);
            if n > top {
                n = 2;
            }
            let mut tries = 0;
            while m.to_global.contains_key(&n) {
                n = if n >= top { 2 } else { n + 1 };
                tries += 1;
                if tries > top {
                    drop(m);
                    for done in &chain[..i] {
                        done.detach(g);
                    }
                    return error!(EAGAIN);
                }
            }
            m.next = if n >= top { 2 } else { n + 1 };
            m.to_local.insert(g, n);
            m.to_global.insert(n, g);
            if m.init.is_none() {
                m.init = Some(g);
            }
        }
        Ok(())
    }

    /// Forgets global pid `g` (its process was reaped, or its thread
    /// exited) here and in every ancestor.
    pub fn detach(self: &Arc<Self>, g: i32) {
        let mut cur = Some(self.clone());
        while let Some(ns) = cur {
            if ns.is_root() {
                break;
            }
            {
                let mut m = ns.lock();
                if let Some(l) = m.to_local.remove(&g) {
                    m.to_global.remove(&l);
                }
            }
            cur = ns.parent.clone();
        }
    }

    /// Whether its init has exited.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Its init exited: the namespace takes no new processes.
    pub fn mark_dead(&self) {
        self.lock().dead = true;
    }

    /// Global pids of this namespace (for kill(-1) and /proc listings).
    pub fn members(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.lock().to_local.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// This namespace, or an ancestor? (setns may only move down.)
    pub fn is_ancestor_of(self: &Arc<Self>, other: &Arc<PidNs>) -> bool {
        let mut cur = Some(other.clone());
        while let Some(c) = cur {
            if Arc::ptr_eq(&c, self) {
                return true;
            }
            cur = c.parent.clone();
        }
        false
    }

    /// The pids of global pid `g` from this namespace up to the root's
    /// children, innermost last (NSpid of /proc/PID/status).
    pub fn chain_of(self: &Arc<Self>, g: i32) -> Vec<i32> {
        let mut v = Vec::new();
        let mut cur = Some(self.clone());
        while let Some(ns) = cur {
            v.push(ns.local(g));
            cur = ns.parent.clone();
        }
        v.reverse();
        v
    }
}

/// The initial PID namespace: global pids.
pub fn root_pid() -> Arc<PidNs> {
    static R: OnceLock<Arc<PidNs>> = OnceLock::new();
    R.get_or_init(|| {
        Arc::new(PidNs {
            inum: INIT_PID,
            parent: None,
            level: 0,
            user_ns: root_user(),
            maps: Mutex::new(PidMaps::default()),
        })
    })
    .clone()
}

/// Every PID namespace below the root that still exists (weakly), so a
/// reaped pid can be forgotten in all of them.
fn all_pid_ns() -> MutexGuard<'static, Vec<std::sync::Weak<PidNs>>> {
    static A: OnceLock<Mutex<Vec<std::sync::Weak<PidNs>>>> = OnceLock::new();
    A.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A process was reaped (or a thread ended): its numbers in every PID
/// namespace are free again.
pub fn release_pid(global: i32) {
    let live: Vec<Arc<PidNs>> = {
        let mut a = all_pid_ns();
        a.retain(|w| w.strong_count() > 0);
        a.iter().filter_map(|w| w.upgrade()).collect()
    };
    for ns in live {
        let mut m = ns.lock();
        if let Some(l) = m.to_local.remove(&global) {
            m.to_global.remove(&l);
        }
    }
}

/// A process of `group` exited. If it was its PID namespace's init, the
/// namespace dies: every other process in it is killed (SIGKILL) and no
/// new one may enter. Returns the reaper for its orphans: its namespace's
/// init, unless it was that init (then the global init).
pub fn process_exited(group: &super::ThreadGroup) -> i32 {
    let ns = group.pid_ns();
    if ns.is_root() {
        return 1;
    }
    let pid = group.tgid();
    if ns.init() != Some(pid) {
        // Orphans of a namespace whose init is gone go to the global init.
        return if ns.is_dead() {
            1
        } else {
            ns.init().unwrap_or(1)
        };
    }
    ns.mark_dead();
    for g in ns.members() {
        if g == pid {
            continue;
        }
        if let Some(tg) = crate::kernel().tasks.group(g) {
            crate::signal::group_exit(
                &tg,
                super::ExitStatus::Killed {
                    signo: 9,
                    core: false,
                },
            );
        }
    }
    1
}

fn new_pid(parent: &Arc<PidNs>, user_ns: &Arc<UserNs>) -> KResult<Arc<PidNs>> {
    if parent.level + 1 > MAX_LEVEL {
        return error!(ENOSPC);
    }
    let ns = new_pid_inner(parent, user_ns);
    all_pid_ns().push(Arc::downgrade(&ns));
    Ok(ns)
}

fn new_pid_inner(parent: &Arc<PidNs>, user_ns: &Arc<UserNs>) -> Arc<PidNs> {
    Arc::new(PidNs {
        inum: new_inum(),
        parent: Some(parent.clone()),
        level: parent.level + 1,
        user_ns: user_ns.clone(),
        maps: Mutex::new(PidMaps {
            next: 1,
            ..Default::default()
        }),
    })
}

// ---------------------------------------------------------------------
// UTS, IPC, cgroup and time namespaces

type UtsNames = (Mutex<Vec<u8>>, Mutex<Vec<u8>>);

/// A UTS namespace: hostname and domainname. The initial one's names are
/// the kernel's own fields (`Kernel::hostname`), which boot and the
/// container setup write.
pub struct UtsNs {
    pub inum: u64,
    pub user_ns: Arc<UserNs>,
    /// (hostname, domainname); None: the kernel's own (initial namespace).
    names: Option<UtsNames>,
}

impl UtsNs {
    /// The hostname (`domain` false) or domainname slot.
    pub fn slot(&self, domain: bool) -> &Mutex<Vec<u8>> {
        match (&self.names, domain) {
            (Some((h, _)), false) => h,
            (Some((_, d)), true) => d,
            (None, false) => &crate::kernel().hostname,
            (None, true) => &crate::kernel().domainname,
        }
    }

    pub fn get(&self, domain: bool) -> Vec<u8> {
        self.slot(domain)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A namespace whose state lives with its subsystem, keyed by the
/// namespace's number: IPC (ipc/: System V tables per namespace; POSIX
/// message queues stay per instance), network (net/: interfaces and port
/// tables, [`PerNet`]); and namespaces with nothing of their own in ruml
/// beyond identity and owner: cgroup (ruml has one cgroup, the root, which
/// a new cgroup namespace also shows as "/"), time (its clock offsets,
/// time/ns.rs).
pub struct PlainNs {
    pub inum: u64,
    pub user_ns: Arc<UserNs>,
    /// A network namespace: its per-namespace state (net/) goes with it.
    pub net: bool,
    /// An IPC namespace: its System V objects (ipc/) go with it.
    pub ipc: bool,
    /// A time namespace's clock offsets (unused by the other kinds).
    pub offsets: crate::time::ns::Offsets,
}

impl Drop for PlainNs {
    fn drop(&mut self) {
        if self.net {
            crate::net::netns_gone(self.inum);
        }
        if self.ipc {
            crate::ipc::ipcns_gone(self.inum);
        }
    }
}

/// The IPC namespace of the task this host thread runs (the initial one
/// outside any task). System V IPC keys its tables by this number.
pub fn current_ipc() -> u64 {
    crate::fs::anon::current_task()
        .map(|t| t.nsproxy().ipc.inum)
        .unwrap_or(INIT_IPC)
}

/// The network namespace of the task this host thread runs (the initial
/// one outside any task: boot, the NAT's own threads). The network stack
/// keys its per-namespace state by this number ([`PerNet`]).
pub fn current_net() -> u64 {
    crate::fs::anon::current_task()
        .map(|t| t.nsproxy().net.inum)
        .unwrap_or(INIT_NET)
}

/// A locked map of per-network-namespace state, opened at the current
/// task's namespace: derefs to that namespace's `T` (made with `init` on
/// first use).
pub struct PerNet<T: 'static> {
    guard: MutexGuard<'static, HashMap<u64, T>>,
    key: u64,
}

impl<T: 'static> PerNet<T> {
    pub fn lock(map: &'static Mutex<HashMap<u64, T>>, init: impl FnOnce(u64) -> T) -> Self {
        Self::lock_at(map, current_net(), init)
    }

    /// The same for the namespace numbered `key` (any kind: ipc/ uses it
    /// with [`current_ipc`]).
    pub fn lock_at(
        map: &'static Mutex<HashMap<u64, T>>,
        key: u64,
        init: impl FnOnce(u64) -> T,
    ) -> Self {
        let mut guard = map.lock().unwrap_or_else(|p| p.into_inner());
        guard.entry(key).or_insert_with(|| init(key));
        PerNet { guard, key }
    }
}

impl<T: 'static> std::ops::Deref for PerNet<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard[&self.key]
    }
}

impl<T: 'static> std::ops::DerefMut for PerNet<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard
            .get_mut(&self.key)
            .unwrap_or_else(|| unreachable!("PerNet::lock inserted the entry"))
    }
}

/// The namespaces a task is in (all but mount and PID, which live in the
/// task's FsContext and ThreadGroup), and where its children go.
#[derive(Clone)]
pub struct NsProxy {
    pub uts: Arc<UtsNs>,
    pub ipc: Arc<PlainNs>,
    pub cgroup: Arc<PlainNs>,
    pub net: Arc<PlainNs>,
    pub time: Arc<PlainNs>,
    pub time_for_children: Arc<PlainNs>,
    pub pid_for_children: Arc<PidNs>,
}

/// The initial namespaces.
pub fn root_proxy() -> Arc<NsProxy> {
    static R: OnceLock<Arc<NsProxy>> = OnceLock::new();
    R.get_or_init(|| {
        let u = root_user();
        let plain = |inum| {
            Arc::new(PlainNs {
                inum,
                user_ns: u.clone(),
                net: inum == INIT_NET,
                ipc: inum == INIT_IPC,
                offsets: crate::time::ns::Offsets::root(),
            })
        };
        let time = plain(INIT_TIME);
        Arc::new(NsProxy {
            uts: Arc::new(UtsNs {
                inum: INIT_UTS,
                user_ns: u.clone(),
                names: None,
            }),
            ipc: plain(INIT_IPC),
            cgroup: plain(INIT_CGROUP),
            net: plain(INIT_NET),
            time: time.clone(),
            time_for_children: time,
            pid_for_children: root_pid(),
        })
    })
    .clone()
}

// ---------------------------------------------------------------------
// A task's view

impl super::Task {
    pub fn nsproxy(&self) -> Arc<NsProxy> {
        self.nsproxy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn set_nsproxy(&self, p: Arc<NsProxy>) {
        *self.nsproxy.lock().unwrap_or_else(|p| p.into_inner()) = p;
    }
    /// The PID namespace the task's process lives in.
    pub fn pid_ns(&self) -> Arc<PidNs> {
        self.group.pid_ns()
    }
    /// The task's user namespace (its credentials').
    pub fn user_ns(&self) -> Arc<UserNs> {
        self.group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .user_ns
            .0
            .clone()
    }
    /// Global pid -> as this task sees it (0 when outside its namespace).
    pub fn pid_view(&self, global: i32) -> i32 {
        self.pid_ns().local(global)
    }
    /// A pid as this task names it -> global (None: no such pid for it).
    pub fn pid_lookup(&self, local: i32) -> Option<i32> {
        self.pid_ns().global(local)
    }
}

/// What a namespace file (/proc/PID/ns/X, or an fd opened from one) refers to.
#[derive(Clone)]
pub enum NsRef {
    User(Arc<UserNs>),
    Pid(Arc<PidNs>),
    Uts(Arc<UtsNs>),
    Mnt(Arc<crate::fs::vfs::Namespace>),
    Plain(NsKind, Arc<PlainNs>),
}

impl NsRef {
    pub fn inum(&self) -> u64 {
        match self {
            NsRef::User(n) => n.inum,
            NsRef::Pid(n) => n.inum,
            NsRef::Uts(n) => n.inum,
            NsRef::Mnt(n) => n.inum,
            NsRef::Plain(_, n) => n.inum,
        }
    }

    /// The kind as NS_GET_NSTYPE reports it (pid_for_children is pid).
    pub fn kind(&self) -> NsKind {
        match self {
            NsRef::User(_) => NsKind::User,
            NsRef::Pid(_) => NsKind::Pid,
            NsRef::Uts(_) => NsKind::Uts,
            NsRef::Mnt(_) => NsKind::Mnt,
            NsRef::Plain(NsKind::TimeForChildren, _) => NsKind::Time,
            NsRef::Plain(k, _) => *k,
        }
    }

    /// The owning user namespace (NS_GET_USERNS; a user namespace's own
    /// is its parent, as NS_GET_PARENT).
    pub fn owner(&self) -> Option<Arc<UserNs>> {
        match self {
            NsRef::User(n) => n.parent.clone(),
            NsRef::Pid(n) => Some(n.user_ns.clone()),
            NsRef::Uts(n) => Some(n.user_ns.clone()),
            NsRef::Mnt(n) => Some(n.user_ns.clone()),
            NsRef::Plain(_, n) => Some(n.user_ns.clone()),
        }
    }

    /// readlink's text: `uts:[4026531838]`.
    pub fn link_text(&self, kind: NsKind) -> String {
        format!("{}:[{}]", kind.link_name(), self.inum())
    }
}

/// The namespace of kind `kind` that `task` is in.
pub fn task_ns(task: &super::Task, kind: NsKind) -> NsRef {
    let p = task.nsproxy();
    match kind {
        NsKind::User => NsRef::User(task.user_ns()),
        NsKind::Pid => NsRef::Pid(task.pid_ns()),
        NsKind::PidForChildren => NsRef::Pid(p.pid_for_children.clone()),
        NsKind::Uts => NsRef::Uts(p.uts.clone()),
        NsKind::Mnt => NsRef::Mnt(task.fs().ns.clone()),
        NsKind::Ipc => NsRef::Plain(kind, p.ipc.clone()),
        NsKind::Cgroup => NsRef::Plain(kind, p.cgroup.clone()),
        NsKind::Net => NsRef::Plain(kind, p.net.clone()),
        NsKind::Time => NsRef::Plain(kind, p.time.clone()),
        NsKind::TimeForChildren => NsRef::Plain(kind, p.time_for_children.clone()),
    }
}

// ---------------------------------------------------------------------
// Making namespaces: clone and unshare

/// EPERM without the privilege to make the namespaces in `flags`.
fn check_new_flags(task: &super::Task, flags: u64) -> KResult<()> {
    let need_priv = flags & CLONE_NEW_SUPPORTED & !CLONE_NEWUSER != 0;
    if need_priv
        && flags & CLONE_NEWUSER == 0
        && !task.privileged_in(&task.user_ns(), crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    Ok(())
}

/// The credentials' user namespace a new user namespace gets, for a task
/// with credentials `c` (in place).
fn enter_new_user(c: &mut super::creds::Creds) -> KResult<()> {
    let ns = new_user(&c.user_ns, c.euid, c.egid)?;
    c.user_ns = ns.into();
    c.ns_caps = true;
    // Linux (set_cred_user_ns): a full set in the new namespace.
    c.caps = super::caps::CapSets::root();
    Ok(())
}

/// The namespaces a clone's child gets: `parent`'s, with new ones for the
/// CLONE_NEW* flags. Returns (proxy, new mount namespace?, pid namespace of
/// the child, user namespace to put in the child's credentials).
pub struct CloneNs {
    pub proxy: Arc<NsProxy>,
    pub mnt: Option<Arc<crate::fs::vfs::Namespace>>,
    pub pid_ns: Arc<PidNs>,
    pub user: Option<(Arc<UserNs>, bool)>,
}

pub fn clone_namespaces(parent: &super::Task, flags: u64, thread: bool) -> KResult<CloneNs> {
    let ns_flags = flags & (CLONE_NEW_SUPPORTED | CLONE_NEWNET);
    let proxy = parent.nsproxy();
    // A child with its own address space enters the parent's
    // time_for_children (Linux's timens_on_fork); CLONE_VM children stay.
    let enters_time =
        !thread && flags & CLONE_VM == 0 && !Arc::ptr_eq(&proxy.time, &proxy.time_for_children);
    if ns_flags == 0 {
        let pid_ns = if thread {
            parent.pid_ns()
        } else {
            proxy.pid_for_children.clone()
        };
        let proxy = if enters_time {
            let mut p = (*proxy).clone();
            p.time = p.time_for_children.clone();
            Arc::new(p)
        } else {
            proxy
        };
        return Ok(CloneNs {
            pid_ns,
            proxy,
            mnt: None,
            user: None,
        });
    }
    if thread {
        // Namespaces are per process (CLONE_NEWUSER|CLONE_THREAD etc.).
        return error!(EINVAL);
    }
    check_new_flags(parent, ns_flags)?;
    let mut creds = parent
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let user = if ns_flags & CLONE_NEWUSER != 0 {
        enter_new_user(&mut creds)?;
        Some((creds.user_ns.0.clone(), true))
    } else {
        None
    };
    let (p, mnt) = make_namespaces(parent, &proxy, ns_flags, &creds.user_ns)?;
    let pid_ns = p.pid_for_children.clone();
    // clone(CLONE_NEWTIME) puts the child itself in the new time
    // namespace, unless it shares the parent's address space (CLONE_VM).
    let mut p = p;
    if flags & CLONE_VM == 0 {
        p.time = p.time_for_children.clone();
    }
    Ok(CloneNs {
        proxy: Arc::new(p),
        mnt,
        pid_ns,
        user,
    })
}

/// New namespaces per `flags` (user namespace already made), owned by `owner`.
fn make_namespaces(
    task: &super::Task,
    proxy: &NsProxy,
    flags: u64,
    owner: &Arc<UserNs>,
) -> KResult<(NsProxy, Option<Arc<crate::fs::vfs::Namespace>>)> {
    let mut p = proxy.clone();
    let plain = || {
        Arc::new(PlainNs {
            inum: new_inum(),
            user_ns: owner.clone(),
            net: false,
            ipc: false,
            // A new time namespace starts with its creator's offsets.
            offsets: crate::time::ns::Offsets::copy_of(&proxy.time_for_children.offsets),
        })
    };
    if flags & CLONE_NEWUTS != 0 {
        p.uts = Arc::new(UtsNs {
            inum: new_inum(),
            user_ns: owner.clone(),
            names: Some((
                Mutex::new(proxy.uts.get(false)),
                Mutex::new(proxy.uts.get(true)),
            )),
        });
    }
    if flags & CLONE_NEWIPC != 0 {
        p.ipc = Arc::new(PlainNs {
            inum: new_inum(),
            user_ns: owner.clone(),
            net: false,
            ipc: true,
            offsets: Default::default(),
        });
    }
    if flags & CLONE_NEWCGROUP != 0 {
        p.cgroup = plain();
    }
    if flags & CLONE_NEWNET != 0 {
        p.net = Arc::new(PlainNs {
            inum: new_inum(),
            user_ns: owner.clone(),
            net: true,
            ipc: false,
            offsets: Default::default(),
        });
    }
    if flags & CLONE_NEWTIME != 0 {
        p.time_for_children = plain();
    }
    if flags & CLONE_NEWPID != 0 {
        p.pid_for_children = new_pid(&task.pid_ns(), owner)?;
    }
    let mnt = if flags & CLONE_NEWNS != 0 {
        Some(crate::fs::mntns::copy_namespace(&task.fs().ns, owner))
    } else {
        None
    };
    Ok((p, mnt))
}

syscall_table! { pub fn ns_table;
    UNSHARE => sys_unshare(flags: u64),
    SETNS => sys_setns(fd: i32, nstype: i32),
}

const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VM: u64 = 0x100;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;

fn sys_unshare(ctx: &mut SyscallContext<'_>, flags: u64) -> KResult<u64> {
    let known = CLONE_NEW_SUPPORTED
        | CLONE_NEWNET
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_VM
        | CLONE_THREAD
        | CLONE_SYSVSEM;
    if flags & !known != 0 {
        return error!(EINVAL);
    }
    let task = ctx.task;
    let multi = task.group.threads().len() > 1;
    // A new user namespace needs a single-threaded process (and implies
    // CLONE_THREAD/CLONE_FS); so do VM/SIGHAND/THREAD unsharing.
    if multi && flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 {
        return error!(EINVAL);
    }
    let ns_flags = flags & (CLONE_NEW_SUPPORTED | CLONE_NEWNET);
    check_new_flags(task, ns_flags)?;
    if flags & CLONE_NEWUSER != 0 {
        // A chroot'ed process may not make a user namespace.
        let fs = task.fs();
        if !fs.root().same(&fs.ns.root()) && !fs.root().same_object(&fs.ns.root()) {
            return error!(EPERM);
        }
    }
    if flags & CLONE_FILES != 0 {
        task.set_files(task.files().fork_copy());
    }
    if ns_flags == 0 {
        if flags & CLONE_FS != 0 {
            task.set_fs(task.fs().fork_copy());
        }
        return Ok(0);
    }
    // The new credentials first: the other namespaces belong to the new
    // user namespace.
    let owner = if flags & CLONE_NEWUSER != 0 {
        let mut c = super::creds::change(&task.group);
        let mut n = c.clone();
        enter_new_user(&mut n)?;
        *c = n;
        c.user_ns.0.clone()
    } else {
        task.user_ns()
    };
    let proxy = task.nsproxy();
    let (p, mnt) = make_namespaces(task, &proxy, ns_flags, &owner)?;
    task.set_nsproxy(Arc::new(p));
    if let Some(ns) = mnt {
        task.set_fs(crate::fs::mntns::fs_in(&task.fs(), ns));
    } else if flags & CLONE_FS != 0 {
        task.set_fs(task.fs().fork_copy());
    }
    Ok(0)
}

fn sys_setns(ctx: &mut SyscallContext<'_>, fd: i32, nstype: i32) -> KResult<u64> {
    let f = crate::fs::fd_get(ctx.task, fd)?;
    let task = ctx.task;
    let ops = f.ops()?.clone();
    if let Some(nsf) = ops.as_any_ops().downcast_ref::<NsFile>() {
        let target = nsf.ns.clone();
        if nstype != 0 && nstype as u32 as u64 != target.kind().clone_flag() {
            return error!(EINVAL);
        }
        let mut set = NsSet::new(task);
        set.stage(task, target)?;
        set.commit(task);
        return Ok(0);
    }
    if crate::fs::anon::is_pidfd(&f) {
        return setns_pidfd(task, &f, nstype as u32 as u64);
    }
    // Neither a namespace file nor a pidfd.
    error!(EINVAL)
}

/// setns(pidfd, flags) (Linux 5.8): enters the namespaces of the thread a
/// pidfd names, those of `flags`, all or none.
fn setns_pidfd(task: &super::Task, f: &crate::fs::FileRef, flags: u64) -> KResult<u64> {
    let all = CLONE_NEWNS
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWNET
        | CLONE_NEWTIME
        | CLONE_NEWUSER
        | CLONE_NEWPID
        | CLONE_NEWCGROUP;
    if flags == 0 || flags & !all != 0 {
        return error!(EINVAL);
    }
    let target = crate::fs::anon::pidfd_task(f)?;
    if !super::ptrace::may_access(task, &target, false) {
        return error!(EPERM);
    }
    // Linux's order (validate_nsset): the user namespace first, so that
    // the others are checked with the credentials it gives.
    let order = [
        (CLONE_NEWUSER, NsKind::User),
        (CLONE_NEWNS, NsKind::Mnt),
        (CLONE_NEWUTS, NsKind::Uts),
        (CLONE_NEWIPC, NsKind::Ipc),
        (CLONE_NEWPID, NsKind::Pid),
        (CLONE_NEWCGROUP, NsKind::Cgroup),
        (CLONE_NEWNET, NsKind::Net),
        (CLONE_NEWTIME, NsKind::Time),
    ];
    let targets: Vec<NsRef> = order
        .iter()
        .filter(|(flag, _)| flags & flag != 0)
        .map(|(_, kind)| task_ns(&target, *kind))
        .collect();
    let mut set = NsSet::new(task);
    for ns in targets {
        set.stage(task, ns)?;
    }
    set.commit(task);
    Ok(0)
}

/// What a setns is about to install (Linux's nsset): namespaces are
/// checked and staged one by one, then committed together, so that
/// setns(pidfd) with several changes all or nothing. Lives on the
/// caller's stack for one call.
struct NsSet {
    /// The credentials after joining a user namespace.
    creds: Option<super::creds::Creds>,
    proxy: NsProxy,
    /// The fs context after joining a mount namespace.
    fs: Option<Arc<crate::fs::FsContext>>,
    /// A time namespace joined (its clocks take effect on commit).
    time: Option<Arc<PlainNs>>,
}

impl NsSet {
    fn new(task: &super::Task) -> NsSet {
        NsSet {
            creds: None,
            proxy: (*task.nsproxy()).clone(),
            fs: None,
            time: None,
        }
    }

    /// CAP_SYS_ADMIN in `ns`, with the staged credentials if any.
    fn admin_in(&self, task: &super::Task, ns: &Arc<UserNs>) -> bool {
        match &self.creds {
            Some(c) => c.privileged_in(ns, crate::task::caps::Cap::SysAdmin),
            None => task.privileged_in(ns, crate::task::caps::Cap::SysAdmin),
        }
    }

    /// Checks that `task` may enter `target` and stages it.
    fn stage(&mut self, task: &super::Task, target: NsRef) -> KResult<()> {
        // CAP_SYS_ADMIN over the namespace's owner (and, for a user
        // namespace, the target itself) as Linux's install hooks require.
        let admin = match &target {
            NsRef::User(u) => self.admin_in(task, u),
            _ => target
                .owner()
                .as_ref()
                .is_some_and(|o| self.admin_in(task, o)),
        };
        if !admin {
            return error!(EPERM);
        }
        match target {
            NsRef::User(u) => {
                if Arc::ptr_eq(&u, &task.user_ns()) {
                    return error!(EINVAL);
                }
                if task.group.threads().len() > 1 {
                    return error!(EINVAL);
                }
                let mut c = task
                    .group
                    .creds
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                c.user_ns = u.into();
                c.ns_caps = true;
                c.caps = super::caps::CapSets::root();
                self.creds = Some(c);
            }
            NsRef::Pid(p) => {
                // Only into our own PID namespace or one below it.
                if !task.pid_ns().is_ancestor_of(&p) {
                    return error!(EINVAL);
                }
                self.proxy.pid_for_children = p;
            }
            NsRef::Uts(u) => self.proxy.uts = u,
            NsRef::Mnt(m) => {
                let fs = self.fs.clone().unwrap_or_else(|| task.fs());
                self.fs = Some(crate::fs::mntns::fs_at_root(&fs, m));
            }
            NsRef::Plain(k, n) => match k {
                NsKind::Ipc => self.proxy.ipc = n,
                NsKind::Cgroup => self.proxy.cgroup = n,
                NsKind::Net => self.proxy.net = n,
                NsKind::Time | NsKind::TimeForChildren => {
                    // Linux's timens_install: a single-threaded caller.
                    if task.group.threads().len() > 1 {
                        return error!(EUSERS);
                    }
                    self.proxy.time = n.clone();
                    self.proxy.time_for_children = n.clone();
                    self.time = Some(n);
                }
                _ => return error!(EINVAL),
            },
        }
        Ok(())
    }

    /// Installs everything staged.
    fn commit(self, task: &super::Task) {
        if let Some(c) = self.creds {
            *super::creds::change(&task.group) = c;
        }
        task.set_nsproxy(Arc::new(self.proxy));
        if let Some(fs) = self.fs {
            task.set_fs(fs);
        }
        if let Some(n) = self.time {
            crate::time::ns::entered(task, &n);
        }
    }
}

// ---------------------------------------------------------------------
// Namespace files

/// An open /proc/PID/ns/* file: holds the namespace (so it lives on).
pub struct NsFile {
    pub ns: NsRef,
}

const NSIO: u32 = 0xb7;
const NS_GET_USERNS: u32 = NSIO << 8 | 0x1;
const NS_GET_PARENT: u32 = NSIO << 8 | 0x2;
const NS_GET_NSTYPE: u32 = NSIO << 8 | 0x3;
const NS_GET_OWNER_UID: u32 = NSIO << 8 | 0x4;

impl crate::fs::vfs::FileOps for NsFile {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn seekable(&self) -> bool {
        false
    }
    fn ioctl(
        &self,
        _f: &crate::fs::file::OpenFile,
        cmd: u32,
        arg: u64,
        ctx: &SyscallContext<'_>,
    ) -> KResult<u64> {
        let task = ctx.task;
        let open_ns = |r: NsRef| -> KResult<u64> {
            // The caller may only climb to namespaces it is inside of.
            // (Linux's ns_get_owner: at or below the caller's own.)
            if let NsRef::User(u) = &r {
                if !task.user_ns().is_ancestor_of(u) {
                    return error!(EPERM);
                }
            }
            let kind = r.kind();
            let file = open_ns_file(r, kind)?;
            let fd = ctx.files().alloc(file, true)?;
            Ok(fd as u64)
        };
        match cmd {
            NS_GET_USERNS => {
                let o = self.ns.owner().ok_or(crate::errno!(EPERM))?;
                open_ns(NsRef::User(o))
            }
            NS_GET_PARENT => match &self.ns {
                NsRef::User(u) => {
                    let p = u.parent.clone().ok_or(crate::errno!(EPERM))?;
                    open_ns(NsRef::User(p))
                }
                NsRef::Pid(p) => {
                    let par = p.parent.clone().ok_or(crate::errno!(EPERM))?;
                    if !task.pid_ns().is_ancestor_of(&par) {
                        return error!(EPERM);
                    }
                    open_ns(NsRef::Pid(par))
                }
                _ => error!(EINVAL),
            },
            NS_GET_NSTYPE => Ok(self.ns.kind().clone_flag()),
            NS_GET_OWNER_UID => {
                let NsRef::User(u) = &self.ns else {
                    return error!(EINVAL);
                };
                let uid = task.user_ns().show(MapKind::Uid, u.owner_uid);
                ctx.mm().write_val(arg, &uid)?;
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }
}

/// The nsfs inode of a namespace (what an ns file's fstat shows: st_ino
/// is the namespace's inode number, as Linux's nsfs).
pub struct NsInode {
    pub ns: NsRef,
    pub kind: NsKind,
}

/// nsfs's device number.
pub fn nsfs_dev() -> (u32, u32) {
    static D: OnceLock<(u32, u32)> = OnceLock::new();
    *D.get_or_init(crate::fs::vfs::anon_dev)
}

impl crate::fs::vfs::Inode for NsInode {
    fn file_type(&self) -> crate::fs::types::FileType {
        crate::fs::types::FileType::Regular
    }
    fn key(&self) -> crate::fs::vfs::InodeKey {
        let (ma, mi) = nsfs_dev();
        (crate::fs::types::encode_dev(ma, mi), self.ns.inum())
    }
    fn stat(&self) -> KResult<crate::fs::types::Stat> {
        let (ma, mi) = nsfs_dev();
        Ok(crate::fs::types::Stat {
            dev: (ma, mi),
            ino: self.ns.inum(),
            mode: crate::fs::types::S_IFREG | 0o444,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }
    fn statfs(&self) -> KResult<crate::fs::types::StatFs> {
        Ok(crate::fs::types::StatFs::pseudo(0x6e73_6673))
    }
    fn open(
        &self,
        _flags: u32,
        _caller: &crate::fs::vfs::Caller<'_>,
    ) -> KResult<Arc<dyn crate::fs::vfs::FileOps>> {
        Ok(Arc::new(NsFile {
            ns: self.ns.clone(),
        }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The nsfs path of namespace `ns` (what /proc/PID/ns/X jumps to).
pub fn ns_path(ns: NsRef, kind: NsKind) -> crate::fs::vfs::Path {
    use crate::fs::vfs::{Dentry, Mount, Path};
    static FS: OnceLock<Arc<Mount>> = OnceLock::new();
    let mnt = FS.get_or_init(|| {
        let root: Arc<dyn crate::fs::vfs::Inode> = Arc::new(NsInode {
            ns: NsRef::User(root_user()),
            kind: NsKind::User,
        });
        Mount::new("nsfs", root, None, true, true)
    });
    let name = ns.link_text(kind).into_bytes();
    let inode: Arc<dyn crate::fs::vfs::Inode> = Arc::new(NsInode { ns, kind });
    Path {
        mnt: mnt.clone(),
        dentry: Dentry::child(&mnt.root, &name, inode),
    }
}

/// An open file for namespace `ns` (NS_GET_USERNS and friends).
pub fn open_ns_file(ns: NsRef, kind: NsKind) -> KResult<crate::fs::FileRef> {
    let path = ns_path(ns.clone(), kind);
    Ok(crate::fs::file::OpenFile::new(
        path,
        Some(Arc::new(NsFile { ns })),
        0,
    ))
}
