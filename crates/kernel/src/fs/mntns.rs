//! Mount namespaces and mount propagation: copying a namespace
//! (unshare/clone with CLONE_NEWNS), moving a task's root and cwd into the
//! copy, shared/private/slave/unbindable state with peer groups (what
//! /proc/PID/mountinfo shows as `shared:N` / `master:N`), propagation of
//! new mounts to a shared mount's peers and slaves, recursive bind
//! mounts, and pivot_root(2).
//!
//! Locking: a mount's [`Propagation`] is behind its own mutex, held only
//! to read or write it. The peer groups live in one registry mutex
//! ([`groups`]), taken after no other VFS lock; a namespace's mount table
//! lock is never held while it is taken.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::errno::KResult;
use crate::error;
use crate::fs::vfs::{Mount, Namespace, Path};
use crate::fs::FsContext;

/// A mount's propagation state.
#[derive(Clone, Debug, Default)]
pub struct Propagation {
    /// Peer group id when shared.
    pub shared: Option<u64>,
    /// The peer group it receives from, when a slave.
    pub master: Option<u64>,
    pub unbindable: bool,
}

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// Mounts of a peer group (or its slaves), with their namespaces.
type GroupList = Vec<(Weak<Mount>, Weak<Namespace>)>;

/// Members of each peer group (mounts shared in it, and their namespaces),
/// and the slaves of each group.
#[derive(Default)]
struct Groups {
    members: HashMap<u64, GroupList>,
    slaves: HashMap<u64, GroupList>,
}

fn groups() -> MutexGuard<'static, Groups> {
    static G: OnceLock<Mutex<Groups>> = OnceLock::new();
    G.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn prop(m: &Mount) -> Propagation {
    m.prop.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_prop(m: &Mount, p: Propagation) {
    *m.prop.lock().unwrap_or_else(|p| p.into_inner()) = p;
}

fn register(list: &mut GroupList, m: &Arc<Mount>, ns: &Arc<Namespace>) {
    list.retain(|(w, n)| w.strong_count() > 0 && n.strong_count() > 0);
    list.push((Arc::downgrade(m), Arc::downgrade(ns)));
}

fn unregister(m: &Arc<Mount>, p: &Propagation) {
    let mut g = groups();
    let drop_from = |list: Option<&mut GroupList>| {
        if let Some(l) = list {
            l.retain(|(w, _)| w.upgrade().is_some_and(|x| !Arc::ptr_eq(&x, m)));
        }
    };
    if let Some(id) = p.shared {
        drop_from(g.members.get_mut(&id));
        if g.members.get(&id).is_some_and(|l| l.is_empty()) {
            g.members.remove(&id);
        }
    }
    if let Some(id) = p.master {
        drop_from(g.slaves.get_mut(&id));
    }
}

/// A mount left its namespace (umount): it leaves its peer group.
pub fn forget(m: &Arc<Mount>) {
    let p = prop(m);
    unregister(m, &p);
    set_prop(m, Propagation::default());
}

/// The optional fields of a mountinfo line ("shared:1 master:2 ").
pub fn mountinfo_tags(m: &Mount) -> String {
    let p = prop(m);
    let mut s = String::new();
    if let Some(id) = p.shared {
        s.push_str(&format!(" shared:{id}"));
    }
    if let Some(id) = p.master {
        s.push_str(&format!(" master:{id}"));
    }
    if p.unbindable {
        s.push_str(" unbindable");
    }
    s
}

const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;

/// The mounts of `ns` at or below `top` (MS_REC), `top` first.
fn subtree(ns: &Namespace, top: &Arc<Mount>) -> Vec<Arc<Mount>> {
    let all = ns.mounts();
    let mut out = vec![top.clone()];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i].clone();
        for m in &all {
            if m.is_child_of(&cur) && !out.iter().any(|x| Arc::ptr_eq(x, m)) {
                out.push(m.clone());
            }
        }
        i += 1;
    }
    out
}

/// mount(2) with MS_SHARED, MS_PRIVATE, MS_SLAVE or MS_UNBINDABLE (one
/// of them: the caller checked) on mount `top`, and with `rec` on every
/// mount below it.
pub fn set_propagation(ns: &Arc<Namespace>, top: &Arc<Mount>, ty: u64, rec: bool) {
    let targets = if rec {
        subtree(ns, top)
    } else {
        vec![top.clone()]
    };
    for m in targets {
        let old = prop(&m);
        let mut new = old.clone();
        match ty {
            MS_SHARED => {
                new.unbindable = false;
                if new.shared.is_none() {
                    new.shared = Some(NEXT_GROUP.fetch_add(1, Ordering::Relaxed));
                }
            }
            MS_PRIVATE => new = Propagation::default(),
            MS_UNBINDABLE => {
                new = Propagation {
                    unbindable: true,
                    ..Default::default()
                }
            }
            MS_SLAVE => {
                // Its peers become its master (a mount with no peers and
                // no master becomes private).
                if let Some(id) = old.shared {
                    let peers = groups()
                        .members
                        .get(&id)
                        .map(|l| {
                            l.iter()
                                .filter_map(|(w, _)| w.upgrade())
                                .filter(|x| !Arc::ptr_eq(x, &m))
                                .count()
                        })
                        .unwrap_or(0);
                    if peers > 0 {
                        new.master = Some(id);
                    }
                }
                new.shared = None;
                new.unbindable = false;
            }
            _ => {}
        }
        unregister(&m, &old);
        {
            let mut g = groups();
            if let Some(id) = new.shared {
                register(g.members.entry(id).or_default(), &m, ns);
            }
            if let Some(id) = new.master {
                register(g.slaves.entry(id).or_default(), &m, ns);
            }
        }
        set_prop(&m, new);
    }
}

/// Whether a bind mount of `m` is refused (MS_UNBINDABLE).
pub fn unbindable(m: &Mount) -> bool {
    prop(m).unbindable
}

/// The move of an attached mount (mount's MS_MOVE, move_mount): `src`'s
/// mount goes to `target`, unless `target` lies on or below it (ELOOP).
/// The callers have checked that `src` is the root of a mount of `ns`.
pub fn move_under(ns: &Namespace, src: &Path, target: Path) -> KResult<()> {
    let mut cur = target.clone();
    loop {
        if Arc::ptr_eq(&cur.mnt, &src.mnt) {
            return error!(ELOOP);
        }
        match cur.mnt.mountpoint() {
            Some(mp) => cur = mp,
            None => break,
        }
    }
    src.mnt.set_mountpoint(Some(target));
    ns.remove(&src.mnt);
    ns.attach(src.mnt.clone());
    Ok(())
}

/// Whether `m`'s parent mount is shared (pivot_root refuses such a new root).
pub fn parent_shared(m: &Mount) -> bool {
    m.mountpoint()
        .is_some_and(|mp| prop(&mp.mnt).shared.is_some())
}

/// A copy of namespace `old` for a new mount namespace owned by `owner`:
/// every mount duplicated with its place in the tree; shared mounts stay
/// peers of the originals, slaves keep their master.
pub fn copy_namespace(
    old: &Arc<Namespace>,
    owner: &Arc<crate::task::ns::UserNs>,
) -> Arc<Namespace> {
    crate::fs::namei::dcache::changed();
    let mounts = old.mounts();
    let root = old.root().mnt;
    let mut map: Vec<(Arc<Mount>, Arc<Mount>)> = Vec::new();
    let find = |map: &Vec<(Arc<Mount>, Arc<Mount>)>, m: &Arc<Mount>| {
        map.iter()
            .find(|(o, _)| Arc::ptr_eq(o, m))
            .map(|(_, n)| n.clone())
    };
    // The root first, then parents before children.
    let mut order = vec![root.clone()];
    let mut i = 0;
    while i < order.len() {
        let cur = order[i].clone();
        for m in &mounts {
            if m.is_child_of(&cur) && !order.iter().any(|x| Arc::ptr_eq(x, m)) {
                order.push(m.clone());
            }
        }
        i += 1;
    }
    let mut new_list = Vec::new();
    for m in &order {
        let mp = m.mountpoint().and_then(|mp| {
            find(&map, &mp.mnt).map(|nm| Path {
                mnt: nm,
                dentry: mp.dentry.clone(),
            })
        });
        if mp.is_none() && !Arc::ptr_eq(m, &root) {
            continue;
        }
        let n = m.duplicate(mp);
        map.push((m.clone(), n.clone()));
        new_list.push(n);
    }
    let ns = Namespace::with_mounts(new_list, crate::task::ns::new_inum(), owner.clone());
    // Propagation: the copies join their originals' groups.
    let mut g = groups();
    for (o, n) in &map {
        let p = prop(o);
        if let Some(id) = p.shared {
            register(g.members.entry(id).or_default(), n, &ns);
        }
        if let Some(id) = p.master {
            register(g.slaves.entry(id).or_default(), n, &ns);
        }
        set_prop(n, p);
    }
    drop(g);
    MAP_CACHE.with(|c| *c.borrow_mut() = map);
    ns
}

thread_local! {
    /// The last copy's old -> new mounts, for [`fs_in`] right after.
    static MAP_CACHE: std::cell::RefCell<Vec<(Arc<Mount>, Arc<Mount>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A task's fs context moved into `ns` (just copied from its own): root
/// and cwd on the copies of the mounts they were on.
pub fn fs_in(fs: &FsContext, ns: Arc<Namespace>) -> Arc<FsContext> {
    let map = MAP_CACHE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let tr = |p: Path| -> Path {
        match map.iter().find(|(o, _)| Arc::ptr_eq(o, &p.mnt)) {
            Some((_, n)) => Path {
                mnt: n.clone(),
                dentry: p.dentry,
            },
            None => ns.root(),
        }
    };
    let (root, cwd) = (tr(fs.root()), tr(fs.cwd()));
    FsContext::with(ns, root, cwd, fs.umask())
}

/// setns into mount namespace `ns`: root and cwd at its root.
pub fn fs_at_root(fs: &FsContext, ns: Arc<Namespace>) -> Arc<FsContext> {
    let root = ns.root();
    FsContext::with(ns, root.clone(), root, fs.umask())
}

/// A new mount `m` was attached on `at` in `ns`: if `at`'s mount is shared,
/// `m` is shared in a new group and a copy goes to each peer and slave of
/// `at`'s mount (at the same dentry), as Linux's propagate_mnt does.
pub fn propagate_new(ns: &Arc<Namespace>, m: &Arc<Mount>, at: &Path) {
    let p = prop(&at.mnt);
    let Some(gid) = p.shared else {
        return;
    };
    let new_gid = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let (peers, slaves) = {
        let g = groups();
        let up =
            |l: Option<&Vec<(Weak<Mount>, Weak<Namespace>)>>| -> Vec<(Arc<Mount>, Arc<Namespace>)> {
                l.map(|l| {
                    l.iter()
                        .filter_map(|(w, n)| Some((w.upgrade()?, n.upgrade()?)))
                        .collect()
                })
                .unwrap_or_default()
            };
        (up(g.members.get(&gid)), up(g.slaves.get(&gid)))
    };
    set_prop(
        m,
        Propagation {
            shared: Some(new_gid),
            ..Default::default()
        },
    );
    register(groups().members.entry(new_gid).or_default(), m, ns);
    for (target, tns, slave) in peers
        .into_iter()
        .map(|(a, b)| (a, b, false))
        .chain(slaves.into_iter().map(|(a, b)| (a, b, true)))
    {
        if Arc::ptr_eq(&target, &at.mnt) || !tns.contains(&target) {
            continue;
        }
        if !below(&at.dentry, &target.root) {
            continue;
        }
        let copy = m.duplicate(Some(Path {
            mnt: target.clone(),
            dentry: at.dentry.clone(),
        }));
        let cp = if slave {
            Propagation {
                master: Some(new_gid),
                ..Default::default()
            }
        } else {
            Propagation {
                shared: Some(new_gid),
                ..Default::default()
            }
        };
        {
            let mut g = groups();
            if slave {
                register(g.slaves.entry(new_gid).or_default(), &copy, &tns);
            } else {
                register(g.members.entry(new_gid).or_default(), &copy, &tns);
            }
        }
        set_prop(&copy, cp);
        tns.attach(copy);
    }
}

/// Whether dentry `d` is `top` or below it.
fn below(d: &Arc<crate::fs::vfs::Dentry>, top: &Arc<crate::fs::vfs::Dentry>) -> bool {
    let mut cur = Some(d.clone());
    while let Some(c) = cur {
        if Arc::ptr_eq(&c, top) || c.inode.key() == top.inode.key() {
            return true;
        }
        cur = c.parent.clone();
    }
    false
}

/// A copy of the mount at `src` (bound at `src`'s directory, attached at
/// `at` or detached) and, with `rec`, copies of the bindable mounts below
/// it, each mounted on its copied parent: top first. Nothing is put in a
/// namespace's table; the subtree is read before anything is attached, so
/// binding a tree onto itself does not recurse forever. EINVAL for an
/// unbindable source.
fn copy_subtree(
    ns: &Namespace,
    src: &Path,
    at: Option<Path>,
    rec: bool,
) -> KResult<Vec<Arc<Mount>>> {
    if unbindable(&src.mnt) {
        return error!(EINVAL);
    }
    let top = src.mnt.bind_of(src.dentry.clone(), at);
    let mut map: Vec<(Arc<Mount>, Arc<Mount>)> = vec![(src.mnt.clone(), top)];
    if rec {
        for m in subtree(ns, &src.mnt)
            .into_iter()
            .skip(1)
            .filter(|m| !unbindable(m))
        {
            let Some(mp) = m.mountpoint() else { continue };
            let Some(parent) = map
                .iter()
                .find(|(o, _)| Arc::ptr_eq(o, &mp.mnt))
                .map(|(_, n)| n.clone())
            else {
                continue;
            };
            // Only what lies below the bound directory.
            if !below(&mp.dentry, &parent.root) {
                continue;
            }
            let c = m.duplicate(Some(Path {
                mnt: parent,
                dentry: mp.dentry.clone(),
            }));
            map.push((m, c));
        }
    }
    Ok(map.into_iter().map(|(_, c)| c).collect())
}

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `src`
/// and, with `rec`, of the bindable mounts below it (see
/// [`copy_subtree`]). Nothing is attached: move_mount attaches the copies
/// (top first).
pub fn clone_tree(ns: &Namespace, src: &Path, rec: bool) -> KResult<Vec<Arc<Mount>>> {
    copy_subtree(ns, src, None, rec)
}

/// A bind mount of `src` on `at` (with `rec`, the mounts below `src` too,
/// at the same places below the new mount). EINVAL for an unbindable
/// source. Returns the new top mount.
pub fn bind(ns: &Arc<Namespace>, src: &Path, at: &Path, rec: bool) -> KResult<Arc<Mount>> {
    let copies = copy_subtree(ns, src, Some(at.clone()), rec)?;
    let top = copies[0].clone();
    ns.attach(top.clone());
    propagate_new(ns, &top, at);
    // A bind of a shared mount is a peer of its source.
    if let Some(id) = prop(&src.mnt).shared {
        let old = prop(&top);
        unregister(&top, &old);
        register(groups().members.entry(id).or_default(), &top, ns);
        set_prop(
            &top,
            Propagation {
                shared: Some(id),
                ..Default::default()
            },
        );
    }
    for c in copies.into_iter().skip(1) {
        ns.attach(c);
    }
    Ok(top)
}

/// pivot_root(2): `new_root`'s mount becomes the namespace's root and the
/// old root is attached at `put_old`; every task whose root or cwd was
/// the old root moves to the new one.
pub fn pivot_root(fs: &FsContext, new_root: Path, put_old: Path) -> KResult<()> {
    use crate::fs::types::FileType;
    let ns = fs.ns.clone();
    if new_root.inode().file_type() != FileType::Directory
        || put_old.inode().file_type() != FileType::Directory
    {
        return error!(ENOTDIR);
    }
    let root = fs.root();
    let old_mnt = root.mnt.clone();
    // Linux's order of checks (fs/namespace.c, pivot_root).
    if prop(&put_old.mnt).shared.is_some()
        || parent_shared(&new_root.mnt)
        || parent_shared(&old_mnt)
    {
        return error!(EINVAL);
    }
    if !ns.contains(&old_mnt) || !ns.contains(&new_root.mnt) {
        return error!(EINVAL);
    }
    if Arc::ptr_eq(&new_root.mnt, &old_mnt) || Arc::ptr_eq(&put_old.mnt, &old_mnt) {
        return error!(EBUSY);
    }
    if !root.is_mount_root() || !new_root.is_mount_root() || new_root.mnt.mountpoint().is_none() {
        return error!(EINVAL);
    }
    // put_old must be at or below new_root.
    let mut cur = put_old.clone();
    loop {
        if Arc::ptr_eq(&cur.mnt, &new_root.mnt) {
            break;
        }
        match cur.mnt.mountpoint() {
            Some(mp) => cur = mp,
            None => return error!(EINVAL),
        }
    }
    // new_root must be below the current root.
    let mut cur = new_root.clone();
    loop {
        match cur.mnt.mountpoint() {
            Some(mp) if Arc::ptr_eq(&mp.mnt, &old_mnt) => break,
            Some(mp) => cur = mp,
            None => return error!(EINVAL),
        }
    }
    crate::fs::namei::dcache::changed();
    new_root.mnt.set_mountpoint(None);
    ns.set_root(new_root.mnt.clone());
    old_mnt.set_mountpoint(Some(put_old.clone()));
    // Move the table entry of the old root after its new parent's chain
    // (lookups take the most recent mount on a point).
    ns.remove(&old_mnt);
    ns.attach(old_mnt.clone());
    // Tasks rooted (or standing) at the old root move to the new one.
    let new_path = Path::mount_root(&new_root.mnt);
    let k = crate::kernel();
    let tids: Vec<i32> = k.tasks.lock().keys().copied().collect();
    for pid in tids {
        let Some(g) = k.tasks.group(pid) else {
            continue;
        };
        for t in g.threads() {
            let tfs = t.fs();
            if !Arc::ptr_eq(&tfs.ns, &ns) {
                continue;
            }
            if tfs.root().same(&root) || tfs.root().same_object(&root) {
                tfs.set_root(new_path.clone());
            }
            if tfs.cwd().same(&root) || tfs.cwd().same_object(&root) {
                tfs.set_cwd(new_path.clone());
            }
        }
    }
    Ok(())
}

crate::syscall_table! { pub fn mntns_table;
    PIVOT_ROOT => sys_pivot_root(new_root: crate::syscalls::UserAddr, put_old: crate::syscalls::UserAddr),
}

fn sys_pivot_root(
    ctx: &mut crate::syscalls::SyscallContext<'_>,
    new_root: crate::syscalls::UserAddr,
    put_old: crate::syscalls::UserAddr,
) -> KResult<u64> {
    let fs = ctx.fs();
    // CAP_SYS_ADMIN over the mount namespace's owner.
    if !ctx
        .task
        .privileged_in(&fs.ns.user_ns, crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    use crate::fs::syscalls::resolve;
    use crate::fs::types::atflags::AT_FDCWD;
    use crate::syscalls::Fd;
    let n = resolve(ctx, Fd(AT_FDCWD), new_root, true, false)?;
    let o = resolve(ctx, Fd(AT_FDCWD), put_old, true, false)?;
    pivot_root(&fs, n, o)?;
    Ok(0)
}
