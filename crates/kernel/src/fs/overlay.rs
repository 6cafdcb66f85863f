//! The overlay root: a read-only lower layer (the host's `/` through
//! hostfs) under a writable tmpfs upper layer, as Linux's overlayfs
//! (without redirect_dir, index or metacopy).
//!
//! - Lookups look in the upper directory first; a whiteout (a character
//!   device 0:0 in the upper layer) hides the lower entry; an upper
//!   directory that is not opaque merges with the lower directory of the
//!   same name.
//! - Any change copies the object up first: its parent directories (made
//!   on demand along the path), then the object itself — data, mode,
//!   owner, times. Opening a lower file for writing or with O_TRUNC copies
//!   it up; descriptors opened read-only before keep reading the lower
//!   file (Linux before 4.19 did the same).
//! - Removing a name that exists in the lower layer leaves a whiteout;
//!   a directory made where a whiteout was is opaque (so rmdir + mkdir of
//!   a lower directory shows an empty one). Renaming a directory that
//!   exists in the lower layer gives EXDEV, as overlayfs does without
//!   redirect_dir (mv falls back to copying).
//! - readdir of a directory with an upper part merges the two listings:
//!   upper entries win, whiteouts and hidden lower entries are left out.
//! - Identity: an object that exists in the lower layer (copied up or not)
//!   keeps the lower (st_dev, st_ino) for its life; a copied-up object
//!   remembers its origin. Upper-only objects have the tmpfs numbers.
//!
//! The host is never written: the lower layer is only ever read.
//!
//! Every overlay inode knows its parent and name (for copy-up). Whether a
//! lower object has been copied up since the inode was looked up is
//! checked against the upper layer by name and origin, cached until the
//! next copy-up anywhere (a generation counter).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::tmpfs::{TmpFs, TmpInode};
use crate::fs::types::{oflags::*, DirSink, FileType, Stat, StatFs};
use crate::fs::vfs::{
    Caller, Dentry, FileOps, Inode, InodeKey, Link, Mount, Path, SetAttr, SetTime,
};

/// statfs f_type of overlayfs.
pub const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

/// One overlay instance.
pub struct OverlayFs {
    upper_root: Arc<TmpInode>,
    /// An internal mount over the lower root, so lower files can be opened
    /// as open files (for copy-up and merged listings).
    lower_mnt: Arc<Mount>,
    copy_lock: Mutex<()>,
    /// Bumped after every copy-up: cached "not copied up" answers expire.
    gen: AtomicU64,
    /// File handles given out (name_to_handle_at).
    handles: Mutex<Handles>,
}

/// Most file handles an overlay remembers; the oldest go first.
const MAX_HANDLES: usize = 16 * 1024;
/// Longest path (bytes of names) a handle remembers: deeper objects give
/// ENAMETOOLONG, so the table holds at most MAX_HANDLES × this.
const MAX_HANDLE_PATH: usize = 4096;
/// handle_type of overlay handles (Linux's OVL_FILEID_V1).
const OVL_FILEID: i32 = 0xf8;

/// The overlay's file handles: id → (identity, names from the overlay's
/// root). Bounded by [`MAX_HANDLES`]; held only to look up or insert.
#[derive(Default)]
struct Handles {
    by_id: std::collections::HashMap<u64, (InodeKey, Vec<Vec<u8>>)>,
    by_ident: std::collections::HashMap<(InodeKey, Vec<Vec<u8>>), u64>,
    order: std::collections::VecDeque<u64>,
    next: u64,
}

/// The root of a new overlay of `lower` (read only) and a fresh tmpfs.
pub fn new_overlay(lower: Arc<dyn Inode>) -> Arc<OvlInode> {
    let fs = Arc::new(OverlayFs {
        upper_root: TmpFs::new_default(),
        lower_mnt: Mount::new("hostfs", lower.clone(), None, true, true),
        copy_lock: Mutex::new(()),
        gen: AtomicU64::new(1),
        handles: Mutex::new(Handles::default()),
    });
    // The upper root takes the lower root's permissions and owner.
    if let Ok(st) = lower.stat() {
        fs.upper_root.set_copied_attrs(lower.key(), &st);
    }
    let ident = lower.key();
    let upper = fs.upper_root.clone();
    Arc::new_cyclic(|me| OvlInode {
        fs,
        me: me.clone(),
        parent: None,
        name: b"/".to_vec(),
        ftype: FileType::Directory,
        lower: Some(lower),
        ident,
        upper: Mutex::new(UpperCache {
            gen: 0,
            inode: Some(upper),
        }),
    })
}

struct UpperCache {
    gen: u64,
    inode: Option<Arc<TmpInode>>,
}

/// An overlay inode; see the module doc.
pub struct OvlInode {
    fs: Arc<OverlayFs>,
    me: Weak<OvlInode>,
    parent: Option<Arc<OvlInode>>,
    name: Vec<u8>,
    ftype: FileType,
    /// The lower object (for directories: the lower directory merged in).
    lower: Option<Arc<dyn Inode>>,
    /// (encoded dev, ino) reported for this object, fixed for its life.
    ident: InodeKey,
    upper: Mutex<UpperCache>,
}

/// Linux's new_decode_dev.
fn decode_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

fn kernel_caller() -> Caller<'static> {
    Caller::kernel()
}

/// A listing entry: (ino, d_type, name).
type DirEntry = (u64, u8, Vec<u8>);

/// Reads a directory through its open file: (ino, d_type, name), without
/// "." and "..".
fn list_dir(file: &OpenFile) -> KResult<Vec<DirEntry>> {
    let mut out = Vec::new();
    loop {
        let mut sink = DirSink::new(64 * 1024, false);
        file.getdents(&mut sink)?;
        if sink.buf.is_empty() {
            break;
        }
        let b = &sink.buf;
        let mut at = 0usize;
        while at + 19 <= b.len() {
            let ino = u64::from_ne_bytes(b[at..at + 8].try_into().unwrap_or_default());
            let reclen =
                u16::from_ne_bytes(b[at + 16..at + 18].try_into().unwrap_or_default()) as usize;
            if reclen < 20 || at + reclen > b.len() {
                break;
            }
            let t = b[at + 18];
            let area = &b[at + 19..at + reclen];
            let n = area.iter().position(|&c| c == 0).unwrap_or(area.len());
            let name = &area[..n];
            if name != b"." && name != b".." {
                out.push((ino, t, name.to_vec()));
            }
            at += reclen;
        }
    }
    Ok(out)
}

impl OvlInode {
    fn lock_upper(&self) -> MutexGuard<'_, UpperCache> {
        self.upper.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arc(&self) -> KResult<Arc<OvlInode>> {
        self.me.upgrade().ok_or(crate::errno!(ENOENT))
    }

    /// The upper object, if there is one (now).
    fn upper(&self) -> Option<Arc<TmpInode>> {
        let mut c = self.lock_upper();
        if let Some(u) = &c.inode {
            return Some(u.clone());
        }
        let lower = self.lower.as_ref()?;
        let g = self.fs.gen.load(Ordering::Acquire);
        if c.gen == g {
            return None;
        }
        let key = lower.key();
        let found = self
            .parent
            .as_ref()
            .and_then(|p| p.upper())
            .and_then(|pu| pu.lookup_raw(&self.name))
            .filter(|u| !u.is_whiteout() && u.origin() == Some(key) && u.file_type() == self.ftype);
        c.gen = g;
        c.inode = found.clone();
        found
    }

    /// The lower directory merged into this one, if it shows.
    fn lower_dir(&self) -> Option<&Arc<dyn Inode>> {
        if self.ftype != FileType::Directory {
            return None;
        }
        let l = self.lower.as_ref()?;
        if l.file_type() != FileType::Directory {
            return None;
        }
        match self.upper() {
            Some(u) if u.opaque() => None,
            _ => Some(l),
        }
    }

    /// Whether the lower layer has `name` here (so removing it needs a
    /// whiteout).
    fn lower_has(&self, name: &[u8]) -> bool {
        self.lower_dir()
            .is_some_and(|l| l.lookup(name, &kernel_caller()).is_ok())
    }

    fn child(
        &self,
        name: &[u8],
        ftype: FileType,
        lower: Option<Arc<dyn Inode>>,
        upper: Option<Arc<TmpInode>>,
    ) -> KResult<Arc<OvlInode>> {
        let ident = match (&lower, &upper) {
            (Some(l), _) => l.key(),
            (None, Some(u)) => u.origin().unwrap_or_else(|| u.key()),
            (None, None) => return error!(ENOENT),
        };
        Ok(Arc::new_cyclic(|me| OvlInode {
            fs: self.fs.clone(),
            me: me.clone(),
            parent: self.me.upgrade(),
            name: name.to_vec(),
            ftype,
            lower,
            ident,
            upper: Mutex::new(UpperCache {
                gen: 0,
                inode: upper,
            }),
        }))
    }

    fn lookup_ovl(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<OvlInode>> {
        if self.ftype != FileType::Directory {
            return error!(ENOTDIR);
        }
        if let Some(u) = self.upper() {
            if let Some(c) = u.lookup_raw(name) {
                if c.is_whiteout() {
                    return error!(ENOENT);
                }
                let ft = c.file_type();
                let lower = if ft == FileType::Directory && !c.opaque() {
                    self.lower_dir()
                        .and_then(|l| l.lookup(name, caller).ok())
                        .filter(|l| l.file_type() == FileType::Directory)
                } else {
                    None
                };
                return self.child(name, ft, lower, Some(c));
            }
        }
        let Some(l) = self.lower_dir() else {
            return error!(ENOENT);
        };
        let li = l.lookup(name, caller)?;
        let ft = li.file_type();
        let child = self.child(name, ft, Some(li), None)?;
        child.lock_upper().gen = self.fs.gen.load(Ordering::Acquire);
        Ok(child)
    }

    /// The root of the lower layer's internal mount as a path to `inode`.
    fn lower_file(&self, inode: &Arc<dyn Inode>, flags: u32) -> KResult<Arc<OpenFile>> {
        let ops = inode.open(flags, &kernel_caller())?;
        let path = Path {
            mnt: self.fs.lower_mnt.clone(),
            dentry: Dentry::root(inode.clone()),
        };
        Ok(OpenFile::new(path, Some(ops), flags))
    }

    /// Copies this object up (and its parents) unless it is there already.
    fn copy_up(&self) -> KResult<Arc<TmpInode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let (Some(parent), Some(lower)) = (&self.parent, &self.lower) else {
            return error!(EIO);
        };
        let pu = parent.copy_up()?;
        let _g = self.fs.copy_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        if pu.lookup_raw(&self.name).is_some() {
            // Removed or replaced since we were looked up.
            return error!(ENOENT);
        }
        let lst = lower.stat()?;
        let pst = pu.stat()?;
        let perm = lst.mode & 0o7777;
        match self.ftype {
            FileType::Directory => pu.mkdir(&self.name, perm)?,
            FileType::Regular => {
                pu.create(&self.name, perm, O_WRONLY)?;
            }
            FileType::Symlink => pu.symlink(&self.name, &lower.readlink(&kernel_caller())?)?,
            t => pu.mknod(&self.name, t.mode_bits() | perm, lst.rdev)?,
        }
        let up = pu.lookup_raw(&self.name).ok_or(crate::errno!(EIO))?;
        let copied = if self.ftype == FileType::Regular {
            self.copy_data(lower, &up, lst.size)
        } else {
            Ok(())
        }
        .and_then(|()| Self::copy_xattrs(lower, &up));
        if let Err(e) = copied {
            if self.ftype == FileType::Directory {
                let _ = pu.rmdir(&self.name);
            } else {
                let _ = pu.unlink(&self.name);
            }
            return Err(e);
        }
        up.set_copied_attrs(lower.key(), &lst);
        // The parent's times stay what they were (as overlayfs does).
        let _ = pu.setattr(&SetAttr {
            atime: Some(SetTime::At(pst.atime.0, pst.atime.1)),
            mtime: Some(SetTime::At(pst.mtime.0, pst.mtime.1)),
            ..Default::default()
        });
        self.lock_upper().inode = Some(up.clone());
        self.fs.gen.fetch_add(1, Ordering::AcqRel);
        Ok(up)
    }

    /// Copy-up of the lower object's extended attributes (those the lower
    /// filesystem shows: hostfs shows user.* only).
    fn copy_xattrs(lower: &Arc<dyn Inode>, up: &TmpInode) -> KResult<()> {
        let names = match lower.listxattr() {
            Ok(n) => n,
            Err(e) if e == crate::errno!(EOPNOTSUPP) => return Ok(()),
            Err(e) => return Err(e),
        };
        for n in names {
            let v = match lower.getxattr(&n) {
                Ok(v) => v,
                // Gone since the listing, or not readable: not copied.
                Err(e) if e == crate::errno!(ENODATA) || e == crate::errno!(EOPNOTSUPP) => continue,
                Err(e) => return Err(e),
            };
            up.setxattr(&n, Some(&v), 0)?;
        }
        Ok(())
    }

    fn copy_data(&self, lower: &Arc<dyn Inode>, up: &TmpInode, size: u64) -> KResult<()> {
        let f = self.lower_file(lower, O_RDONLY)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut off = 0u64;
        loop {
            let n = f.read_at(off, &mut buf)?;
            if n == 0 {
                break;
            }
            // Zero pages stay holes.
            for (i, chunk) in buf[..n].chunks(4096).enumerate() {
                if chunk.iter().any(|&b| b != 0) {
                    let o = off + (i * 4096) as u64;
                    let mut done = 0;
                    while done < chunk.len() {
                        done += up.write_at(o + done as u64, &chunk[done..])?;
                    }
                }
            }
            off += n as u64;
        }
        let _ = size;
        up.truncate(off)?;
        Ok(())
    }

    /// Prepares this directory for a new entry `name`: copied up, any
    /// whiteout at the name removed. Returns (upper dir, whiteout removed).
    fn prepare_new(&self, name: &[u8]) -> KResult<(Arc<TmpInode>, bool)> {
        let u = self.copy_up()?;
        let wo = u.remove_whiteout(name)?;
        Ok((u, wo))
    }

    fn undo_new(u: &TmpInode, name: &[u8], wo: bool) {
        if wo {
            let _ = u.make_whiteout(name);
        }
    }

    /// Names a merged listing shows (without "." and "..").
    fn merged_entries(&self) -> KResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if let Some(u) = self.upper() {
            for (name, c) in u.entries() {
                seen.insert(name.clone());
                if c.is_whiteout() {
                    continue;
                }
                let ino = c.origin().map_or(c.tmp_ino(), |k| k.1);
                out.push((ino, c.file_type().dirent_type(), name));
            }
        }
        if let Some(l) = self.lower_dir() {
            let f = self.lower_file(l, O_RDONLY | O_DIRECTORY)?;
            for e in list_dir(&f)? {
                if !seen.contains(&e.2) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Whether this directory is `anc` or lies below it.
    fn is_within(&self, anc: &OvlInode) -> bool {
        let mut cur: Option<&OvlInode> = Some(self);
        while let Some(c) = cur {
            if c.ident == anc.ident {
                return true;
            }
            cur = c.parent.as_deref();
        }
        false
    }

    fn ident_stat(&self, mut st: Stat) -> Stat {
        st.dev = decode_dev(self.ident.0);
        st.ino = self.ident.1;
        st
    }
}

impl Inode for OvlInode {
    fn file_type(&self) -> FileType {
        self.ftype
    }

    fn key(&self) -> InodeKey {
        self.ident
    }

    fn stat(&self) -> KResult<Stat> {
        match self.upper() {
            Some(u) => Ok(self.ident_stat(u.stat()?)),
            None => match &self.lower {
                Some(l) => l.stat(),
                None => error!(ENOENT),
            },
        }
    }

    fn statfs(&self) -> KResult<StatFs> {
        let mut s = self.fs.upper_root.statfs()?;
        s.f_type = OVERLAYFS_MAGIC;
        Ok(s)
    }

    fn lookup(&self, name: &[u8], caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        Ok(self.lookup_ovl(name, caller)?)
    }

    fn readlink(&self, caller: &Caller<'_>) -> KResult<Vec<u8>> {
        match self.upper() {
            Some(u) => u.readlink(caller),
            None => self
                .lower
                .as_ref()
                .ok_or(crate::errno!(EINVAL))?
                .readlink(caller),
        }
    }

    fn get_link(&self, caller: &Caller<'_>) -> KResult<Link> {
        self.readlink(caller).map(Link::Text)
    }

    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let write = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        match self.ftype {
            FileType::Directory => match self.upper() {
                Some(_) => Ok(Arc::new(OvlDirFile {
                    dir: self.arc()?,
                    entries: Mutex::new(None),
                })),
                None => self
                    .lower
                    .as_ref()
                    .ok_or(crate::errno!(ENOENT))?
                    .open(flags, caller),
            },
            FileType::Regular if write => self.copy_up()?.open_ops(flags),
            _ => match self.upper() {
                Some(u) => u.open(flags, caller),
                None => self
                    .lower
                    .as_ref()
                    .ok_or(crate::errno!(ENOENT))?
                    .open(flags, caller),
            },
        }
    }

    fn create(
        &self,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        let (u, wo) = self.prepare_new(name)?;
        let (_, ops) = u
            .create(name, mode, flags)
            .inspect_err(|_| Self::undo_new(&u, name, wo))?;
        let c = u.lookup_raw(name).ok_or(crate::errno!(EIO))?;
        let child = self.child(name, FileType::Regular, None, Some(c))?;
        Ok((child, ops))
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> KResult<()> {
        let (u, wo) = self.prepare_new(name)?;
        u.mkdir(name, mode)
            .inspect_err(|_| Self::undo_new(&u, name, wo))?;
        if wo {
            if let Some(d) = u.lookup_raw(name) {
                d.set_opaque(true);
            }
        }
        Ok(())
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> KResult<()> {
        let (u, wo) = self.prepare_new(name)?;
        u.symlink(name, target)
            .inspect_err(|_| Self::undo_new(&u, name, wo))
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: (u32, u32)) -> KResult<()> {
        // A 0:0 character device would read as a whiteout.
        if FileType::from_mode(mode) == FileType::CharDevice && rdev == (0, 0) {
            return error!(EPERM);
        }
        let (u, wo) = self.prepare_new(name)?;
        u.mknod(name, mode, rdev)
            .inspect_err(|_| Self::undo_new(&u, name, wo))
    }

    fn link(&self, name: &[u8], target: &dyn Inode) -> KResult<()> {
        let Some(t) = target.as_any().downcast_ref::<OvlInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return error!(EXDEV);
        }
        if t.ftype == FileType::Directory {
            return error!(EPERM);
        }
        let tu = t.copy_up()?;
        let (u, wo) = self.prepare_new(name)?;
        u.link_tmp(name, &tu)
            .inspect_err(|_| Self::undo_new(&u, name, wo))
    }

    fn unlink(&self, name: &[u8]) -> KResult<()> {
        let child = self.lookup_ovl(name, &kernel_caller())?;
        if child.ftype == FileType::Directory {
            return error!(EISDIR);
        }
        let whiteout = self.lower_has(name);
        let u = self.copy_up()?;
        if child.upper().is_some() {
            u.unlink(name)?;
        }
        if whiteout {
            u.make_whiteout(name)?;
        }
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> KResult<()> {
        let child = self.lookup_ovl(name, &kernel_caller())?;
        if child.ftype != FileType::Directory {
            return error!(ENOTDIR);
        }
        if !child.merged_entries()?.is_empty() {
            return error!(ENOTEMPTY);
        }
        let whiteout = self.lower_has(name);
        let u = self.copy_up()?;
        if let Some(cu) = child.upper() {
            cu.clear_whiteouts()?;
            u.rmdir(name)?;
        }
        if whiteout {
            u.make_whiteout(name)?;
        }
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &dyn Inode, new_name: &[u8], flags: u32) -> KResult<()> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            // RENAME_WHITEOUT is not supported on overlayfs either.
            return error!(EINVAL);
        }
        let Some(nd) = new_dir.as_any().downcast_ref::<OvlInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &nd.fs) {
            return error!(EXDEV);
        }
        let caller = kernel_caller();
        let src = self.lookup_ovl(name, &caller)?;
        let dst = match nd.lookup_ovl(new_name, &caller) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let exchange = flags & RENAME_EXCHANGE != 0;
        let is_dir = |o: &OvlInode| o.ftype == FileType::Directory;
        // Directories that exist in the lower layer cannot move (no
        // redirect_dir).
        if is_dir(&src) && src.lower.is_some() {
            return error!(EXDEV);
        }
        if is_dir(&src) && nd.is_within(&src) {
            return error!(EINVAL);
        }
        if let Some(d) = &dst {
            if is_dir(d) && self.is_within(d) {
                return if exchange {
                    error!(EINVAL)
                } else {
                    error!(ENOTEMPTY)
                };
            }
        }
        if let Some(d) = &dst {
            if d.ident == src.ident
                && Arc::ptr_eq(&self.fs, &d.fs)
                && std::ptr::eq(self, nd)
                && name == new_name
            {
                return if flags & RENAME_NOREPLACE != 0 {
                    error!(EEXIST)
                } else {
                    Ok(())
                };
            }
            if flags & RENAME_NOREPLACE != 0 {
                return error!(EEXIST);
            }
            if exchange {
                if is_dir(d) && d.lower.is_some() {
                    return error!(EXDEV);
                }
            } else {
                match (is_dir(&src), is_dir(d)) {
                    (true, false) => return error!(ENOTDIR),
                    (false, true) => return error!(EISDIR),
                    (true, true) if !d.merged_entries()?.is_empty() => return error!(ENOTEMPTY),
                    _ => {}
                }
            }
        } else if exchange {
            return error!(ENOENT);
        }
        let src_lower = self.lower_has(name);
        let dst_lower = nd.lower_has(new_name);
        let su = self.copy_up()?;
        let nu = nd.copy_up()?;
        let s_up = src.copy_up()?;
        let mut d_up = None;
        let mut wo = false;
        if let Some(d) = &dst {
            if exchange {
                d_up = Some(d.copy_up()?);
            } else if let Some(du) = d.upper() {
                if is_dir(d) {
                    du.clear_whiteouts()?;
                }
            }
        } else {
            wo = nu.remove_whiteout(new_name)?;
        }
        let tflags = flags & (RENAME_NOREPLACE | RENAME_EXCHANGE);
        let r = if dst.as_ref().is_some_and(|d| d.upper().is_none()) && !exchange {
            // Only the lower layer has the target: the rename just hides it.
            su.rename(name, nu.as_ref(), new_name, tflags & !RENAME_NOREPLACE)
        } else {
            su.rename(name, nu.as_ref(), new_name, tflags)
        };
        if let Err(e) = r {
            Self::undo_new(&nu, new_name, wo);
            return Err(e);
        }
        if exchange {
            if is_dir(&src) && dst_lower {
                s_up.set_opaque(true);
            }
            if let Some(du) = d_up {
                if du.file_type() == FileType::Directory && src_lower {
                    du.set_opaque(true);
                }
            }
        } else {
            if src_lower {
                su.make_whiteout(name)?;
            }
            if is_dir(&src) && (dst_lower || wo) {
                s_up.set_opaque(true);
            }
        }
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> KResult<()> {
        self.copy_up()?.setattr(attr)
    }

    // Extended attributes live in the upper layer once the object is
    // copied up (copy-up takes the lower's); before, reads see the
    // lower's. The overlay keeps its own bookkeeping (whiteouts, opaque
    // directories, origins) in the tmpfs inodes, not in attributes, so
    // nothing of it shows to or can be forged by the guest.
    fn getxattr(&self, name: &[u8]) -> KResult<Vec<u8>> {
        match (self.upper(), &self.lower) {
            (Some(u), _) => u.getxattr(name),
            // The overlay stores every namespace; what the lower layer
            // cannot hold, it does not have.
            (None, Some(l)) => l.getxattr(name).map_err(|e| {
                if e == crate::errno!(EOPNOTSUPP) {
                    crate::errno!(ENODATA)
                } else {
                    e
                }
            }),
            (None, None) => error!(ENODATA),
        }
    }

    fn setxattr(&self, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        if value.is_none() && self.upper().is_none() {
            // Removing what the lower object does not have needs no copy-up.
            self.getxattr(name)?;
        }
        self.copy_up()?.setxattr(name, value, flags)
    }

    fn encode_fh(&self) -> KResult<(i32, Vec<u8>)> {
        let mut names = Vec::new();
        let mut cur = self.arc()?;
        while let Some(p) = cur.parent.clone() {
            names.push(cur.name.clone());
            cur = p;
        }
        names.reverse();
        if names.iter().map(|n| n.len() + 1).sum::<usize>() > MAX_HANDLE_PATH {
            return error!(ENAMETOOLONG);
        }
        let mut h = self.fs.handles.lock().unwrap_or_else(|p| p.into_inner());
        let key = (self.ident, names);
        let id = match h.by_ident.get(&key) {
            Some(&id) => id,
            None => {
                if h.order.len() >= MAX_HANDLES {
                    if let Some(old) = h.order.pop_front() {
                        if let Some(k) = h.by_id.remove(&old) {
                            h.by_ident.remove(&k);
                        }
                    }
                }
                h.next += 1;
                let id = h.next;
                h.by_id.insert(id, key.clone());
                h.by_ident.insert(key, id);
                h.order.push_back(id);
                id
            }
        };
        let mut fh = id.to_le_bytes().to_vec();
        fh.extend_from_slice(&self.ident.0.to_le_bytes());
        fh.extend_from_slice(&self.ident.1.to_le_bytes());
        Ok((OVL_FILEID, fh))
    }

    fn decode_fh(&self, ty: i32, fh: &[u8]) -> KResult<Arc<dyn Inode>> {
        if ty != OVL_FILEID || fh.len() != 24 {
            return error!(ESTALE);
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fh[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let (id, ident) = (word(0), (word(1), word(2)));
        let entry = self
            .fs
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned();
        let Some((key, names)) = entry else {
            return error!(ESTALE);
        };
        if key != ident {
            return error!(ESTALE);
        }
        let mut cur = self.arc()?;
        while let Some(p) = cur.parent.clone() {
            cur = p;
        }
        for n in &names {
            cur = cur.lookup_ovl(n, &kernel_caller()).map_err(|e| {
                if e == crate::errno!(ENOENT) || e == crate::errno!(ENOTDIR) {
                    crate::errno!(ESTALE)
                } else {
                    e
                }
            })?;
        }
        if cur.ident != ident {
            return error!(ESTALE);
        }
        Ok(cur)
    }

    fn listxattr(&self) -> KResult<Vec<Vec<u8>>> {
        match (self.upper(), &self.lower) {
            (Some(u), _) => u.listxattr(),
            (None, Some(l)) => l.listxattr(),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open directory with an upper part: the merged listing, taken when
/// reading starts at position 0. Positions are entry indices.
struct OvlDirFile {
    dir: Arc<OvlInode>,
    entries: Mutex<Option<Vec<DirEntry>>>,
}

impl FileOps for OvlDirFile {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EISDIR)
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        Ok(())
    }
    fn getdents(&self, _f: &OpenFile, pos: &mut u64, sink: &mut DirSink) -> KResult<()> {
        let mut cache = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if *pos == 0 || cache.is_none() {
            if let Some(u) = self.dir.upper() {
                if u.stat()?.nlink == 0 {
                    return error!(ENOENT);
                }
            }
            let mut all = Vec::new();
            let dt = FileType::Directory.dirent_type();
            all.push((self.dir.ident.1, dt, b".".to_vec()));
            let pino = self
                .dir
                .parent
                .as_ref()
                .map_or(self.dir.ident.1, |p| p.ident.1);
            all.push((pino, dt, b"..".to_vec()));
            all.extend(self.dir.merged_entries()?);
            *cache = Some(all);
        }
        let Some(entries) = cache.as_ref() else {
            return Ok(());
        };
        while let Some((ino, t, name)) = entries.get(*pos as usize) {
            if !sink.push(*ino, *pos as i64 + 1, *t, name) {
                if sink.is_empty() {
                    return error!(EINVAL);
                }
                break;
            }
            *pos += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::hostfs::HostFs;

    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setup(tag: &str) -> (Tmp, Arc<OvlInode>) {
        let base = std::env::temp_dir().join(format!("ruml-ovl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("d/sub")).unwrap();
        std::fs::write(base.join("f"), b"lower data").unwrap();
        std::fs::write(base.join("d/g"), b"g").unwrap();
        let lower = HostFs::open_root(&base, true).unwrap();
        (Tmp(base), new_overlay(lower))
    }

    fn names(d: &OvlInode) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = d
            .merged_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.2)
            .collect();
        v.sort();
        v
    }

    fn get(d: &OvlInode, n: &[u8]) -> KResult<Arc<OvlInode>> {
        d.lookup_ovl(n, &Caller::kernel())
    }

    #[test]
    fn copy_up_whiteout_opaque() {
        let (t, root) = setup("basic");
        let f = get(&root, b"f").unwrap();
        let ident = f.key();
        let ops = f.open(O_WRONLY | O_TRUNC, &Caller::kernel()).unwrap();
        drop(ops);
        assert_eq!(
            std::fs::read(t.0.join("f")).unwrap(),
            b"lower data",
            "host untouched"
        );
        let f2 = get(&root, b"f").unwrap();
        assert_eq!(f2.key(), ident, "identity survives copy-up");
        assert_eq!(f2.stat().unwrap().size, 0);
        assert_eq!(f.stat().unwrap().size, 0, "an old inode sees the copy-up");
        root.unlink(b"f").unwrap();
        assert!(matches!(get(&root, b"f"), Err(Errno::ENOENT)));
        assert_eq!(names(&root), vec![b"d".to_vec()]);
        let d = get(&root, b"d").unwrap();
        assert_eq!(root.rmdir(b"d"), Err(Errno::ENOTEMPTY));
        d.unlink(b"g").unwrap();
        d.rmdir(b"sub").unwrap();
        assert!(names(&d).is_empty());
        root.rmdir(b"d").unwrap();
        root.mkdir(b"d", 0o755).unwrap();
        let d = get(&root, b"d").unwrap();
        assert!(
            names(&d).is_empty(),
            "a new directory over a whiteout is opaque"
        );
        assert!(t.0.join("d/g").exists());
        root.create(b"f", 0o644, O_WRONLY).unwrap();
        assert_eq!(names(&root), vec![b"d".to_vec(), b"f".to_vec()]);
    }

    #[test]
    fn rename_rules() {
        let (t, root) = setup("rename");
        assert_eq!(root.rename(b"d", root.as_ref(), b"e", 0), Err(Errno::EXDEV));
        root.rename(b"f", root.as_ref(), b"h", 0).unwrap();
        assert!(matches!(get(&root, b"f"), Err(Errno::ENOENT)));
        let mut buf = [0u8; 32];
        let h = get(&root, b"h").unwrap();
        let ops = h.open(O_RDONLY, &Caller::kernel()).unwrap();
        let hp = Path {
            mnt: root.fs.lower_mnt.clone(),
            dentry: Dentry::root(h.clone()),
        };
        let of = OpenFile::new(hp, Some(ops), O_RDONLY);
        let n = of.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"lower data");
        root.mkdir(b"new", 0o755).unwrap();
        root.rename(b"new", root.as_ref(), b"newer", RENAME_NOREPLACE)
            .unwrap();
        assert!(t.0.join("f").exists());
    }
}
