//! The new mount API: fsopen, fspick, fsconfig, fsmount, move_mount,
//! open_tree, mount_setattr.
//!
//! An fsopen descriptor holds a filesystem context ([`FsCtx`]: the type,
//! the options and source set by fsconfig, and the filesystem once
//! FSCONFIG_CMD_CREATE made it) behind its own mutex. An fspick
//! descriptor holds a context for reconfiguring the filesystem of an
//! existing mount: FSCONFIG_CMD_RECONFIGURE applies "ro"/"rw" as
//! mount(MS_REMOUNT) does (the filesystem is told, as a disk filesystem
//! then refuses writes, and every mount of that filesystem in the
//! caller's namespace becomes read-only or writable: ruml keeps the
//! read-only state per mount, not per superblock); other options cannot
//! be changed on a live filesystem in ruml (EOPNOTSUPP at reconfigure).
//! fsmount and open_tree(OPEN_TREE_CLONE) give a descriptor of a
//! *detached* mount: a [`Mount`] in no namespace's table ([`Detached`]),
//! with AT_RECURSIVE the copies of the mounts below it; move_mount
//! attaches them (or moves an attached mount) in the caller's mount
//! namespace. Before it is attached, paths through the descriptor see the
//! top mount only. A detached mount nobody attached simply goes when its
//! descriptor closes.

use std::sync::{Arc, Mutex};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::types::atflags::AT_FDCWD;
use crate::fs::types::FileType;
use crate::fs::vfs::{FileOps, Mount, Path};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

/// An fsopen context.
struct FsCtx {
    ty: Vec<u8>,
    inner: Mutex<FsCtxState>,
}

#[derive(Default)]
struct FsCtxState {
    /// "key" or "key=value", comma-joined for the filesystem's parser.
    opts: Vec<u8>,
    source: Option<Vec<u8>>,
    ro: bool,
    created: Option<crate::fs::syscalls::NewFs>,
    /// fsmount took the filesystem: the context is spent.
    used: bool,
    /// fspick: the mount whose filesystem is reconfigured.
    pick: Option<Arc<Mount>>,
    /// fspick: "ro" (Some(true)) or "rw" (Some(false)) was given.
    want_ro: Option<bool>,
    /// fspick: an option other than ro/rw/source was given.
    other: bool,
}

impl FileOps for FsCtx {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn seekable(&self) -> bool {
        false
    }
}

/// What fsmount and open_tree(OPEN_TREE_CLONE) return: a detached mount
/// and (open_tree with AT_RECURSIVE) the copies of the mounts below it,
/// each mounted on its copied parent, attached with it by move_mount.
struct Detached {
    mnt: Arc<Mount>,
    subs: Vec<Arc<Mount>>,
}

impl FileOps for Detached {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn seekable(&self) -> bool {
        false
    }
}

syscall_table! { pub fn mountapi_table;
    FSOPEN => sys_fsopen(name: UserAddr, flags: u32),
    FSPICK => sys_fspick(dfd: i32, path: UserAddr, flags: u32),
    FSCONFIG => sys_fsconfig(fd: i32, cmd: u32, key: UserAddr, value: UserAddr, aux: i32),
    FSMOUNT => sys_fsmount(fd: i32, flags: u32, attr: u32),
    MOVE_MOUNT => sys_move_mount(from_dfd: i32, from: UserAddr, to_dfd: i32, to: UserAddr, flags: u32),
    OPEN_TREE => sys_open_tree(dfd: i32, path: UserAddr, flags: u32),
    MOUNT_SETATTR => sys_mount_setattr(dfd: i32, path: UserAddr, flags: u32, attr: UserAddr, size: usize),
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_BINARY: u32 = 2;
const FSCONFIG_SET_PATH: u32 = 3;
const FSCONFIG_SET_PATH_EMPTY: u32 = 4;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSCONFIG_CMD_RECONFIGURE: u32 = 7;
const FSCONFIG_CMD_CREATE_EXCL: u32 = 8;
const FSMOUNT_CLOEXEC: u32 = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR__ATIME: u64 = 0x70;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
const MOUNT_ATTR_KNOWN: u64 = MOUNT_ATTR_RDONLY
    | MOUNT_ATTR_NOSUID
    | MOUNT_ATTR_NODEV
    | MOUNT_ATTR_NOEXEC
    | MOUNT_ATTR__ATIME
    | MOUNT_ATTR_NODIRATIME
    | MOUNT_ATTR_NOSYMFOLLOW;
const MOVE_MOUNT_F_SYMLINKS: u32 = 1;
const MOVE_MOUNT_F_AUTOMOUNTS: u32 = 2;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 4;
const MOVE_MOUNT_T_SYMLINKS: u32 = 0x10;
const MOVE_MOUNT_T_AUTOMOUNTS: u32 = 0x20;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = 0o2000000;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_NO_AUTOMOUNT: u32 = 0x800;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_RECURSIVE: u32 = 0x8000;
const O_PATH: u32 = 0o10000000;

/// The longest option value fsconfig takes (bounded guest memory).
const MAX_VALUE: usize = 4096;
/// All options of one context together, at most.
const MAX_OPTS: usize = 64 * 1024;

fn admin(ctx: &SyscallContext<'_>) -> KResult<()> {
    if !ctx
        .task
        .privileged_in(&ctx.fs().ns.user_ns, crate::task::caps::Cap::SysAdmin)
    {
        return error!(EPERM);
    }
    Ok(())
}

fn install(
    ctx: &SyscallContext<'_>,
    ops: Arc<dyn FileOps>,
    name: &[u8],
    cloexec: bool,
) -> KResult<u64> {
    let path = crate::fs::anon::anon_file(std::str::from_utf8(name).unwrap_or("fscontext"), ops, 0);
    Ok(ctx.files().alloc(path, cloexec)? as u64)
}

fn sys_fsopen(ctx: &mut SyscallContext<'_>, name: UserAddr, flags: u32) -> KResult<u64> {
    admin(ctx)?;
    if flags & !FSOPEN_CLOEXEC != 0 {
        return error!(EINVAL);
    }
    let ty = ctx.mm().read_cstring(name.0, 255).map_err(|e| {
        if e == crate::errno::Errno::ENAMETOOLONG {
            crate::errno!(ENODEV)
        } else {
            e
        }
    })?;
    const KNOWN: &[&[u8]] = &[
        b"tmpfs",
        b"proc",
        b"mqueue",
        b"sysfs",
        b"devpts",
        b"devtmpfs",
        b"ext2",
        b"ext3",
        b"ext4",
        b"hostfs",
    ];
    if !KNOWN.contains(&ty.as_slice()) {
        return error!(ENODEV);
    }
    let c = Arc::new(FsCtx {
        ty,
        inner: Mutex::new(FsCtxState::default()),
    });
    install(ctx, c, b"fscontext", flags & FSOPEN_CLOEXEC != 0)
}

fn fs_ctx(ctx: &SyscallContext<'_>, fd: i32) -> KResult<(crate::fs::FileRef, Arc<dyn FileOps>)> {
    let f = crate::fs::fd_get(ctx.task, fd)?;
    let ops = f.ops()?.clone();
    if ops.as_any_ops().downcast_ref::<FsCtx>().is_none() {
        return error!(EINVAL);
    }
    Ok((f, ops))
}

fn sys_fsconfig(
    ctx: &mut SyscallContext<'_>,
    fd: i32,
    cmd: u32,
    key: UserAddr,
    value: UserAddr,
    aux: i32,
) -> KResult<u64> {
    let (_f, ops) = fs_ctx(ctx, fd)?;
    let Some(c) = ops.as_any_ops().downcast_ref::<FsCtx>() else {
        return error!(EINVAL);
    };
    let read_key = |ctx: &SyscallContext<'_>| -> KResult<Vec<u8>> {
        if key.is_null() {
            return error!(EINVAL);
        }
        ctx.mm().read_cstring(key.0, 255)
    };
    let mut st = c.inner.lock().unwrap_or_else(|p| p.into_inner());
    if st.used {
        return error!(EBUSY);
    }
    let push = |st: &mut FsCtxState, k: &[u8], v: Option<&[u8]>| -> KResult<()> {
        match (k, v) {
            (b"source", Some(v)) => {
                if st.source.is_some() {
                    return error!(EINVAL);
                }
                st.source = Some(v.to_vec());
                return Ok(());
            }
            (b"ro", None) => {
                st.ro = true;
                st.want_ro = Some(true);
            }
            (b"rw", None) => {
                st.ro = false;
                st.want_ro = Some(false);
            }
            _ => st.other = true,
        }
        if st.opts.len() + k.len() + v.map_or(0, |v| v.len()) + 2 > MAX_OPTS {
            return error!(ENOMEM);
        }
        if !st.opts.is_empty() {
            st.opts.push(b',');
        }
        st.opts.extend_from_slice(k);
        if let Some(v) = v {
            st.opts.push(b'=');
            st.opts.extend_from_slice(v);
        }
        Ok(())
    };
    match cmd {
        FSCONFIG_SET_FLAG => {
            if !value.is_null() || aux != 0 {
                return error!(EINVAL);
            }
            let k = read_key(ctx)?;
            push(&mut st, &k, None)?;
        }
        FSCONFIG_SET_STRING => {
            if value.is_null() || aux != 0 {
                return error!(EINVAL);
            }
            let k = read_key(ctx)?;
            let v = ctx.mm().read_cstring(value.0, MAX_VALUE)?;
            push(&mut st, &k, Some(&v))?;
        }
        FSCONFIG_SET_BINARY | FSCONFIG_SET_PATH | FSCONFIG_SET_PATH_EMPTY | FSCONFIG_SET_FD => {
            // No filesystem of ruml's takes binary, path or fd options.
            read_key(ctx)?;
            return error!(EINVAL);
        }
        FSCONFIG_CMD_CREATE | FSCONFIG_CMD_CREATE_EXCL => {
            if !key.is_null() || !value.is_null() || aux != 0 {
                return error!(EINVAL);
            }
            if st.created.is_some() || st.pick.is_some() {
                return error!(EBUSY);
            }
            let (ty, opts, source, ro) = (c.ty.clone(), st.opts.clone(), st.source.clone(), st.ro);
            drop(st);
            let made =
                crate::fs::syscalls::make_filesystem(ctx, &ty, &opts, source.as_deref(), ro)?;
            c.inner.lock().unwrap_or_else(|p| p.into_inner()).created = Some(made);
        }
        FSCONFIG_CMD_RECONFIGURE => {
            if !key.is_null() || !value.is_null() || aux != 0 {
                return error!(EINVAL);
            }
            let Some(m) = st.pick.clone() else {
                // A context from fsopen is for creating, not reconfiguring.
                return error!(EBUSY);
            };
            admin(ctx)?;
            if st.other {
                return error!(EOPNOTSUPP);
            }
            if let Some(ro) = st.want_ro {
                // The filesystem first (a disk may refuse rw), then every
                // mount of it in the caller's namespace.
                m.root.inode.remount(ro)?;
                let dev = m.root.inode.key().0;
                for other in ctx.fs().ns.mounts() {
                    if other.root.inode.key().0 == dev && other.fstype == m.fstype {
                        other.set_read_only(ro);
                    }
                }
                if !ctx.fs().ns.contains(&m) {
                    m.set_read_only(ro);
                }
                crate::fs::namei::dcache::changed();
            }
            // Linux cleans the context: a new round of options may follow.
            st.opts.clear();
            st.source = None;
            st.want_ro = None;
            st.other = false;
        }
        _ => return error!(EOPNOTSUPP),
    }
    Ok(0)
}

fn sys_fsmount(ctx: &mut SyscallContext<'_>, fd: i32, flags: u32, attr: u32) -> KResult<u64> {
    admin(ctx)?;
    if flags & !FSMOUNT_CLOEXEC != 0 || attr as u64 & !MOUNT_ATTR_KNOWN != 0 {
        return error!(EINVAL);
    }
    let (_f, ops) = fs_ctx(ctx, fd)?;
    let Some(c) = ops.as_any_ops().downcast_ref::<FsCtx>() else {
        return error!(EINVAL);
    };
    let mut st = c.inner.lock().unwrap_or_else(|p| p.into_inner());
    if st.used || st.pick.is_some() {
        return error!(EBUSY);
    }
    let Some((name, inode, src)) = st.created.clone() else {
        return error!(EINVAL);
    };
    st.used = true;
    drop(st);
    let m = Mount::new(
        name,
        inode,
        None,
        attr as u64 & MOUNT_ATTR_RDONLY != 0,
        false,
    );
    m.set_flags(attr_mnt_flags(attr as u64));
    if let Some(s) = src {
        m.set_source(&s);
    }
    install_mount(ctx, m, Vec::new(), flags & FSMOUNT_CLOEXEC != 0)
}

/// A descriptor of detached mount `m` (and `subs` below it): at its root
/// (usable as a dirfd).
fn install_mount(
    ctx: &SyscallContext<'_>,
    m: Arc<Mount>,
    subs: Vec<Arc<Mount>>,
    cloexec: bool,
) -> KResult<u64> {
    let f = OpenFile::new(
        Path::mount_root(&m),
        Some(Arc::new(Detached { mnt: m, subs })),
        0,
    );
    Ok(ctx.files().alloc(f, cloexec)? as u64)
}

const FSPICK_CLOEXEC: u32 = 1;
const FSPICK_SYMLINK_NOFOLLOW: u32 = 2;
const FSPICK_NO_AUTOMOUNT: u32 = 4;
const FSPICK_EMPTY_PATH: u32 = 8;

/// fspick: a context for reconfiguring the filesystem mounted at `path`
/// (which must be a mount's root: EINVAL otherwise).
fn sys_fspick(ctx: &mut SyscallContext<'_>, dfd: i32, path: UserAddr, flags: u32) -> KResult<u64> {
    admin(ctx)?;
    if flags & !(FSPICK_CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT | FSPICK_EMPTY_PATH)
        != 0
    {
        return error!(EINVAL);
    }
    let p = lookup(
        ctx,
        dfd,
        path,
        flags & FSPICK_SYMLINK_NOFOLLOW == 0,
        flags & FSPICK_EMPTY_PATH != 0,
    )?;
    if !p.is_mount_root() {
        return error!(EINVAL);
    }
    let c = Arc::new(FsCtx {
        ty: p.mnt.fstype.as_bytes().to_vec(),
        inner: Mutex::new(FsCtxState {
            pick: Some(p.mnt.clone()),
            ro: p.mnt.read_only(),
            ..Default::default()
        }),
    });
    install(ctx, c, b"fscontext", flags & FSPICK_CLOEXEC != 0)
}

/// (dfd, path) with AT_EMPTY_PATH / symlink following as the flags say.
fn lookup(
    ctx: &SyscallContext<'_>,
    dfd: i32,
    path: UserAddr,
    follow: bool,
    empty: bool,
) -> KResult<Path> {
    crate::fs::syscalls::resolve(ctx, Fd(dfd), path, follow, empty)
}

/// The detached mount an fd holds and the copies below it.
fn detached_tree_of(ctx: &SyscallContext<'_>, dfd: i32) -> Option<(Arc<Mount>, Vec<Arc<Mount>>)> {
    if dfd == AT_FDCWD {
        return None;
    }
    let f = crate::fs::fd_get(ctx.task, dfd).ok()?;
    let ops = f.ops().ok()?.clone();
    ops.as_any_ops()
        .downcast_ref::<Detached>()
        .map(|d| (d.mnt.clone(), d.subs.clone()))
}

fn sys_move_mount(
    ctx: &mut SyscallContext<'_>,
    from_dfd: i32,
    from: UserAddr,
    to_dfd: i32,
    to: UserAddr,
    flags: u32,
) -> KResult<u64> {
    admin(ctx)?;
    const KNOWN: u32 = MOVE_MOUNT_F_SYMLINKS
        | MOVE_MOUNT_F_AUTOMOUNTS
        | MOVE_MOUNT_F_EMPTY_PATH
        | MOVE_MOUNT_T_SYMLINKS
        | MOVE_MOUNT_T_AUTOMOUNTS
        | MOVE_MOUNT_T_EMPTY_PATH;
    if flags & !KNOWN != 0 {
        return error!(EINVAL);
    }
    let fs = ctx.fs();
    let target = lookup(
        ctx,
        to_dfd,
        to,
        flags & MOVE_MOUNT_T_SYMLINKS != 0,
        flags & MOVE_MOUNT_T_EMPTY_PATH != 0,
    )?;
    if !fs.ns.contains(&target.mnt) {
        return error!(EINVAL);
    }
    crate::fs::namei::dcache::changed();
    // A detached mount from fsmount/open_tree (an empty path on its fd).
    let empty_from = flags & MOVE_MOUNT_F_EMPTY_PATH != 0;
    if empty_from {
        if let Some((m, subs)) = detached_tree_of(ctx, from_dfd) {
            if m.mountpoint().is_some() || fs.ns.contains(&m) {
                // Already attached once: it is an ordinary mount now.
                return error!(EINVAL);
            }
            let (tdir, mdir) = (
                target.inode().file_type() == FileType::Directory,
                m.root.inode.file_type() == FileType::Directory,
            );
            if tdir != mdir {
                return error!(ENOTDIR);
            }
            m.set_mountpoint(Some(target.clone()));
            fs.ns.attach(m.clone());
            crate::fs::mntns::propagate_new(&fs.ns, &m, &target);
            // open_tree(AT_RECURSIVE)'s copies of the mounts below.
            for s in subs {
                if !fs.ns.contains(&s) {
                    fs.ns.attach(s);
                }
            }
            return Ok(0);
        }
    }
    // Moving an attached mount (MS_MOVE).
    let src = lookup(
        ctx,
        from_dfd,
        from,
        flags & MOVE_MOUNT_F_SYMLINKS != 0,
        empty_from,
    )?;
    if !src.is_mount_root() || !fs.ns.contains(&src.mnt) || src.mnt.mountpoint().is_none() {
        return error!(EINVAL);
    }
    crate::fs::mntns::move_under(&fs.ns, &src, target)?;
    Ok(0)
}

fn sys_open_tree(
    ctx: &mut SyscallContext<'_>,
    dfd: i32,
    path: UserAddr,
    flags: u32,
) -> KResult<u64> {
    const KNOWN: u32 = OPEN_TREE_CLONE
        | OPEN_TREE_CLOEXEC
        | AT_SYMLINK_NOFOLLOW
        | AT_NO_AUTOMOUNT
        | AT_EMPTY_PATH
        | AT_RECURSIVE;
    if flags & !KNOWN != 0 || (flags & AT_RECURSIVE != 0 && flags & OPEN_TREE_CLONE == 0) {
        return error!(EINVAL);
    }
    let p = lookup(
        ctx,
        dfd,
        path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    let cloexec = flags & OPEN_TREE_CLOEXEC != 0;
    if flags & OPEN_TREE_CLONE == 0 {
        // An O_PATH descriptor of the place.
        let f = OpenFile::new(p, None, O_PATH);
        return Ok(ctx.files().alloc(f, cloexec)? as u64);
    }
    admin(ctx)?;
    // A detached copy of the mount (bind of this place) and, with
    // AT_RECURSIVE, of the mounts below it.
    let mut tree = crate::fs::mntns::clone_tree(&ctx.fs().ns, &p, flags & AT_RECURSIVE != 0)?;
    if tree.is_empty() {
        return error!(EINVAL);
    }
    let m = tree.remove(0);
    install_mount(ctx, m, tree, cloexec)
}

/// The per-mount flags of MOUNT_ATTR_NOSUID/NODEV/NOEXEC in `attr`.
fn attr_mnt_flags(attr: u64) -> u32 {
    use crate::fs::vfs::{MNT_NODEV, MNT_NOEXEC, MNT_NOSUID};
    let mut f = 0;
    for (a, m) in [
        (MOUNT_ATTR_NOSUID, MNT_NOSUID),
        (MOUNT_ATTR_NODEV, MNT_NODEV),
        (MOUNT_ATTR_NOEXEC, MNT_NOEXEC),
    ] {
        if attr & a != 0 {
            f |= m;
        }
    }
    f
}

/// struct mount_attr's size (MOUNT_ATTR_SIZE_VER0).
const MOUNT_ATTR_SIZE_VER0: usize = 32;

fn sys_mount_setattr(
    ctx: &mut SyscallContext<'_>,
    dfd: i32,
    path: UserAddr,
    flags: u32,
    attr: UserAddr,
    size: usize,
) -> KResult<u64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_RECURSIVE) != 0 {
        return error!(EINVAL);
    }
    if !(MOUNT_ATTR_SIZE_VER0..=4096).contains(&size) {
        return error!(EINVAL);
    }
    let mut raw = vec![0u8; size];
    ctx.mm().read_bytes(attr.0, &mut raw)?;
    if raw[MOUNT_ATTR_SIZE_VER0..].iter().any(|&b| b != 0) {
        return error!(E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (set, clr, propagation, userns_fd) = (word(0), word(1), word(2), word(3));
    if (set | clr) & !(MOUNT_ATTR_KNOWN | MOUNT_ATTR_IDMAP) != 0 || userns_fd != 0 {
        return error!(EINVAL);
    }
    if (set | clr) & MOUNT_ATTR_IDMAP != 0 {
        // Idmapped mounts are not supported.
        return error!(EINVAL);
    }
    const MS_UNBINDABLE: u64 = 1 << 17;
    const MS_PRIVATE: u64 = 1 << 18;
    const MS_SLAVE: u64 = 1 << 19;
    const MS_SHARED: u64 = 1 << 20;
    if propagation != 0 && ![MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED].contains(&propagation)
    {
        return error!(EINVAL);
    }
    let p = lookup(
        ctx,
        dfd,
        path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    admin(ctx)?;
    let fs = ctx.fs();
    if !p.is_mount_root() || !fs.ns.contains(&p.mnt) {
        return error!(EINVAL);
    }
    crate::fs::namei::dcache::changed();
    let rec = flags & AT_RECURSIVE != 0;
    let targets: Vec<Arc<Mount>> = if rec {
        let mut out = vec![p.mnt.clone()];
        let all = fs.ns.mounts();
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
    } else {
        vec![p.mnt.clone()]
    };
    for m in &targets {
        if set & MOUNT_ATTR_RDONLY != 0 {
            m.set_read_only(true);
        } else if clr & MOUNT_ATTR_RDONLY != 0 {
            m.set_read_only(false);
        }
        m.set_flags(m.flags() & !attr_mnt_flags(clr) | attr_mnt_flags(set));
    }
    if propagation != 0 {
        crate::fs::mntns::set_propagation(&fs.ns, &p.mnt, propagation, rec);
    }
    Ok(0)
}
