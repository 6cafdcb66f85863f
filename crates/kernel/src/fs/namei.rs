//! The kernel-side path walk, component by component, as Linux's namei:
//! symlinks (at most 40 followed per walk, else ELOOP), `..` never above
//! the caller's root, mount points crossed both ways, trailing-slash rules,
//! ENAMETOOLONG for paths of 4096 bytes or more and names over 255.
//!
//! Absolute symlink targets resolve against the walker's root (the guest's
//! root), never the host's: filesystems only ever see single names.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::types::FileType;
use crate::fs::vfs::{Caller, Dentry, Link, Namespace, Path};

/// PATH_MAX, counting the NUL: a path of 4096 bytes or more is too long.
pub const PATH_MAX: usize = 4096;
/// NAME_MAX.
pub const NAME_MAX: usize = 255;
/// Symlinks one walk may follow (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;

/// One component still to walk. `slash`: a slash followed it, so it must
/// be a directory (and a symlink there is followed).
struct Comp {
    name: Vec<u8>,
    slash: bool,
}

fn split(path: &[u8]) -> (bool, Vec<Comp>) {
    let abs = path.first() == Some(&b'/');
    let mut comps = Vec::new();
    let mut it = path.split(|&b| b == b'/').peekable();
    while let Some(part) = it.next() {
        if part.is_empty() {
            if let Some(last) = comps.last_mut() {
                let c: &mut Comp = last;
                c.slash = true;
            }
            continue;
        }
        let followed = it.peek().is_some();
        comps.push(Comp {
            name: part.to_vec(),
            slash: followed,
        });
    }
    (abs, comps)
}

/// Walks paths for one caller: its namespace and root.
pub struct Walker<'a> {
    pub ns: &'a Namespace,
    pub root: Path,
    pub caller: Caller<'a>,
}

impl Walker<'_> {
    /// The parent of `p` for `..`: stays at the root, climbs out of mounts.
    pub fn parent(&self, p: &Path) -> Path {
        let mut cur = p.clone();
        loop {
            if cur.same_object(&self.root) {
                return cur;
            }
            if cur.is_mount_root() {
                match cur.mnt.mountpoint() {
                    Some(mp) => {
                        cur = mp;
                        continue;
                    }
                    None => return cur,
                }
            }
            break;
        }
        let up = match &cur.dentry.parent {
            Some(parent) => Path {
                mnt: cur.mnt.clone(),
                dentry: parent.clone(),
            },
            None => cur,
        };
        self.ns.traverse_mounts(up)
    }

    /// Looks up one name in directory `dir`, crossing onto anything mounted
    /// on the result.
    pub fn lookup_one(&self, dir: &Path, name: &[u8]) -> KResult<Path> {
        if dir.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        match name {
            b"." => return Ok(dir.clone()),
            b".." => return Ok(self.parent(dir)),
            _ => {}
        }
        if name.len() > NAME_MAX {
            return error!(ENAMETOOLONG);
        }
        crate::fs::perm::may_search(&self.caller, dir)?;
        let cacheable = matches!(dir.mnt.fstype, "overlay" | "tmpfs") && !dir.mnt.internal;
        if cacheable {
            if let Some(d) = dcache::get(&dir.dentry, name) {
                return Ok(self.ns.traverse_mounts(Path {
                    mnt: dir.mnt.clone(),
                    dentry: d,
                }));
            }
        }
        let generation = dcache::generation();
        let inode = dir.inode().lookup(name, &self.caller)?;
        let child = Path {
            mnt: dir.mnt.clone(),
            dentry: Dentry::child(&dir.dentry, name, inode),
        };
        if cacheable {
            dcache::put(&dir.dentry, name, &child.dentry, generation);
        }
        Ok(self.ns.traverse_mounts(child))
    }

    /// Resolves `path` from `start` (used when it is relative). `follow`:
    /// follow a symlink in the final component (a trailing slash always
    /// does).
    pub fn walk(&self, start: &Path, path: &[u8], follow: bool) -> KResult<Path> {
        self.walk_resolve(start, path, follow, 0)
    }

    /// openat2's walk: as [`Walker::walk`] with RESOLVE_* restrictions
    /// (`resolve` bits; RESOLVE_IN_ROOT is the caller's business: it walks
    /// with `root` set to the start directory).
    pub fn walk_resolve(
        &self,
        start: &Path,
        path: &[u8],
        follow: bool,
        resolve: u64,
    ) -> KResult<Path> {
        const NO_XDEV: u64 = 0x01;
        const NO_MAGICLINKS: u64 = 0x02;
        const NO_SYMLINKS: u64 = 0x04;
        const BENEATH: u64 = 0x08;
        if path.is_empty() {
            return error!(ENOENT);
        }
        if path.len() >= PATH_MAX {
            return error!(ENAMETOOLONG);
        }
        let (abs, comps) = split(path);
        if abs && resolve & BENEATH != 0 {
            return error!(EXDEV);
        }
        let mut cur = if abs {
            self.root.clone()
        } else {
            start.clone()
        };
        let mut queue: VecDeque<Comp> = comps.into();
        let mut links = 0usize;
        let mut must_be_dir = path.last() == Some(&b'/');
        while let Some(c) = queue.pop_front() {
            let last = queue.is_empty();
            if last {
                must_be_dir = c.slash;
            }
            if c.name == b".." && resolve & BENEATH != 0 && cur.same_object(&self.root) {
                return error!(EXDEV);
            }
            let child = self.lookup_one(&cur, &c.name)?;
            if resolve & NO_XDEV != 0 && !Arc::ptr_eq(&child.mnt, &cur.mnt) {
                return error!(EXDEV);
            }
            let is_link = child.inode().file_type() == FileType::Symlink;
            if !is_link || (last && !follow && !c.slash) {
                cur = child;
                continue;
            }
            if resolve & NO_SYMLINKS != 0 {
                return error!(ELOOP);
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return error!(ELOOP);
            }
            match child.inode().get_link(&self.caller)? {
                Link::Jump(p) => {
                    if resolve & (NO_MAGICLINKS | BENEATH) != 0 {
                        return error!(ELOOP);
                    }
                    cur = p;
                }
                Link::Text(target) => {
                    if target.is_empty() {
                        return error!(ENOENT);
                    }
                    if target.len() >= PATH_MAX {
                        return error!(ENAMETOOLONG);
                    }
                    let (tabs, mut tcomps) = split(&target);
                    if tabs {
                        if resolve & BENEATH != 0 {
                            return error!(EXDEV);
                        }
                        cur = self.root.clone();
                    }
                    if let Some(l) = tcomps.last_mut() {
                        l.slash |= c.slash;
                    } else if last {
                        must_be_dir = false;
                    }
                    for tc in tcomps.into_iter().rev() {
                        queue.push_front(tc);
                    }
                }
            }
        }
        if must_be_dir && cur.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves all but the last component of `path`, for calls that
    /// create or remove a name: (directory, last name, trailing slash).
    /// The last name may be "." or ".." (the caller decides what that
    /// means); for "/" it is ".".
    pub fn walk_parent(&self, start: &Path, path: &[u8]) -> KResult<(Path, Vec<u8>, bool)> {
        if path.is_empty() {
            return error!(ENOENT);
        }
        if path.len() >= PATH_MAX {
            return error!(ENAMETOOLONG);
        }
        let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let trailing = trimmed_len < path.len();
        if trimmed_len == 0 {
            // "/" or "///".
            return Ok((self.root.clone(), b".".to_vec(), false));
        }
        let trimmed = &path[..trimmed_len];
        let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => {
                let prefix = &trimmed[..i];
                let dir = if prefix.iter().all(|&b| b == b'/') {
                    self.root.clone()
                } else {
                    self.walk(start, prefix, true)?
                };
                (dir, trimmed[i + 1..].to_vec())
            }
            None => (start.clone(), trimmed.to_vec()),
        };
        if dir.inode().file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        if name.len() > NAME_MAX {
            return error!(ENAMETOOLONG);
        }
        Ok((dir, name, trailing))
    }
}

/// The dentry cache: positive lookups in guest-owned namespaces (the
/// overlay root and tmpfs), so a path walked again costs no filesystem
/// lookups. Any change to any namespace made through ruml clears it
/// ([`dcache::changed`]); a lookup that raced with a change is not
/// cached (the generation moved). Host-backed mounts (`mount=`) are not
/// cached: the host may change them behind ruml's back.
pub mod dcache {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock, Weak};

    use crate::fs::vfs::Dentry;

    const MAX_ENTRIES: usize = 16384;

    /// (parent dentry address, name) → (the parent, the child).
    type Entries = HashMap<(usize, Vec<u8>), (Weak<Dentry>, Arc<Dentry>)>;

    struct Cache {
        generation: u64,
        map: Entries,
    }

    fn cache() -> &'static Mutex<Cache> {
        static C: OnceLock<Mutex<Cache>> = OnceLock::new();
        C.get_or_init(|| {
            Mutex::new(Cache {
                generation: 0,
                map: HashMap::new(),
            })
        })
    }

    fn lock() -> std::sync::MutexGuard<'static, Cache> {
        cache().lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn generation() -> u64 {
        lock().generation
    }

    pub fn get(parent: &Arc<Dentry>, name: &[u8]) -> Option<Arc<Dentry>> {
        let c = lock();
        let (p, child) = c.map.get(&(Arc::as_ptr(parent) as usize, name.to_vec()))?;
        // The key's address could belong to a new dentry: check it is the same.
        p.upgrade()
            .filter(|p| Arc::ptr_eq(p, parent))
            .map(|_| child.clone())
    }

    pub fn put(parent: &Arc<Dentry>, name: &[u8], child: &Arc<Dentry>, generation: u64) {
        let mut c = lock();
        if c.generation != generation {
            return;
        }
        if c.map.len() >= MAX_ENTRIES {
            c.map.clear();
        }
        c.map.insert(
            (Arc::as_ptr(parent) as usize, name.to_vec()),
            (Arc::downgrade(parent), child.clone()),
        );
    }

    /// A name was created, removed or moved somewhere: forget everything.
    pub fn changed() {
        let mut c = lock();
        c.generation += 1;
        c.map.clear();
    }
}
