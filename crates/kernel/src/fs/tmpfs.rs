//! tmpfs: a filesystem in guest memory.
//!
//! Regular files keep their data in physmem frames, a map page index →
//! frame per file (holes are absent pages and read as zeros), so shared
//! mappings can map the very frames read()/write() use
//! ([`FileOps::page_frame`]). The filesystem holds one reference to each
//! of its frames; a frame a mapping still holds outlives a truncate.
//! Accounting: a size limit in pages (default half of physmem, `size=`)
//! and an inode limit; hitting either, or a full physmem, is ENOSPC.
//!
//! Directories, symlinks, device nodes, FIFOs and sockets (mknod), hard
//! links, rename with RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT,
//! attributes and POSIX timestamps (relatime atime). Inode numbers count
//! up from 1 (the root) and are never reused within one instance.
//!
//! Locking: every inode has one mutex over its attributes and contents.
//! Namespace changes (create, link, unlink, rename, ...) also take the
//! filesystem's `ns_lock` first; only under it may a thread hold more than
//! one inode lock at once (rename). Lookups, I/O and attribute changes take
//! one inode lock and nothing else. The page cache is never called with an
//! inode lock held.
//!
//! The overlay root uses tmpfs as its upper layer; the few things it needs
//! beyond the VFS (whiteouts, opaque directories, the origin of a copied-up
//! object) are the `pub(crate)` methods at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use ruml_host::{Pfn, PhysMem};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::now;
use crate::fs::types::{encode_dev, DirSink, FileType, Stat, StatFs};
use crate::fs::vfs::{anon_dev, Caller, FileOps, Inode, InodeKey, SetAttr};
use crate::fs::xattr::XattrMap;

/// statfs f_type of tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;
const PAGE: u64 = 4096;
/// Linux's BOGO_DIRENT_SIZE: a tmpfs directory's size is 20 per entry.
const BOGO_DIRENT_SIZE: u64 = 20;
/// Symlinks this long or longer take a page (st_blocks 8), as in Linux.
const SHORT_SYMLINK_LEN: usize = 128;
/// MAX_LFS_FILESIZE.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

/// fallocate modes tmpfs supports.
pub const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
pub const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;

/// Guest memory: the kernel's physmem, or (unit tests, before boot) a
/// private one.
pub fn physmem() -> Arc<PhysMem> {
    if crate::kernel_booted() {
        return crate::kernel().phys.clone();
    }
    static TEST: OnceLock<Arc<PhysMem>> = OnceLock::new();
    TEST.get_or_init(|| Arc::new(PhysMem::new(64 << 20).expect("physmem for unit tests")))
        .clone()
}

/// Mount options (`size=`, `nr_inodes=`, `mode=`, `uid=`, `gid=`).
#[derive(Clone, Copy, Debug)]
pub struct TmpfsOptions {
    pub max_pages: u64,
    pub max_inodes: u64,
    /// The root directory's permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl TmpfsOptions {
    /// Linux's defaults: half of memory, as many inodes as pages, 01777.
    pub fn defaults(phys: &PhysMem) -> TmpfsOptions {
        let half = (phys.total_pages() / 2).max(1);
        TmpfsOptions {
            max_pages: half,
            max_inodes: half,
            mode: 0o1777,
            uid: 0,
            gid: 0,
        }
    }

    /// Parses mount(2)'s data string for tmpfs; unknown options give
    /// EINVAL as in Linux (generic flags like `rw`, `nosuid` are accepted).
    pub fn parse(data: &[u8], phys: &PhysMem) -> KResult<TmpfsOptions> {
        let mut o = TmpfsOptions::defaults(phys);
        let total = phys.total_pages();
        for opt in data.split(|&b| b == b',') {
            if opt.is_empty() {
                continue;
            }
            let (k, v) = match opt.iter().position(|&b| b == b'=') {
                Some(i) => (&opt[..i], Some(&opt[i + 1..])),
                None => (opt, None),
            };
            let num = |v: Option<&[u8]>, radix: u32| -> KResult<u64> {
                let s = std::str::from_utf8(v.ok_or(crate::errno!(EINVAL))?)
                    .map_err(|_| crate::errno!(EINVAL))?;
                u64::from_str_radix(s, radix).map_err(|_| crate::errno!(EINVAL))
            };
            match k {
                b"size" => {
                    let v = v.ok_or(crate::errno!(EINVAL))?;
                    o.max_pages = parse_size(v, total)?.div_ceil(PAGE);
                }
                b"nr_blocks" => o.max_pages = num(v, 10)?,
                b"nr_inodes" => o.max_inodes = parse_size(v.ok_or(crate::errno!(EINVAL))?, total)?,
                b"mode" => o.mode = (num(v, 8)? as u32) & 0o7777,
                b"uid" => o.uid = u32::try_from(num(v, 10)?).map_err(|_| crate::errno!(EINVAL))?,
                b"gid" => o.gid = u32::try_from(num(v, 10)?).map_err(|_| crate::errno!(EINVAL))?,
                b"rw" | b"ro" | b"nosuid" | b"suid" | b"nodev" | b"dev" | b"noexec" | b"exec"
                | b"relatime" | b"norelatime" | b"noatime" | b"atime" | b"strictatime"
                | b"nodiratime" | b"sync" | b"async" | b"silent" | b"defaults" => {}
                _ => return error!(EINVAL),
            }
        }
        // size=0 means unlimited in Linux; cap at physmem.
        if o.max_pages == 0 || o.max_pages > total {
            o.max_pages = total;
        }
        if o.max_inodes == 0 {
            o.max_inodes = u64::MAX;
        }
        Ok(o)
    }
}

/// "10M", "4k", "50%" (of physmem) → bytes.
fn parse_size(v: &[u8], total_pages: u64) -> KResult<u64> {
    let s = std::str::from_utf8(v).map_err(|_| crate::errno!(EINVAL))?;
    if let Some(p) = s.strip_suffix('%') {
        let p: u64 = p.parse().map_err(|_| crate::errno!(EINVAL))?;
        return Ok(total_pages.saturating_mul(PAGE).saturating_mul(p) / 100);
    }
    let (digits, mul) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| crate::errno!(EINVAL))?;
    Ok(n.saturating_mul(mul))
}

/// One tmpfs instance.
pub struct TmpFs {
    phys: Arc<PhysMem>,
    dev: (u32, u32),
    next_ino: AtomicU64,
    ns_lock: Mutex<()>,
    opts: TmpfsOptions,
    used_pages: AtomicU64,
    used_inodes: AtomicU64,
    /// Bytes of extended attributes held by the instance's inodes
    /// (counted as [`crate::fs::xattr::entry_space`]), at most
    /// [`TmpFs::xattr_limit`].
    xattr_used: AtomicU64,
    /// Every live inode by number, for open_by_handle_at (entries leave
    /// when their inode drops).
    by_ino: Mutex<std::collections::HashMap<u64, Weak<TmpInode>>>,
}

impl TmpFs {
    /// A new, empty tmpfs; returns its root directory.
    pub fn new_root(opts: TmpfsOptions) -> Arc<TmpInode> {
        let fs = Arc::new(TmpFs {
            phys: physmem(),
            dev: anon_dev(),
            next_ino: AtomicU64::new(1),
            ns_lock: Mutex::new(()),
            opts,
            used_pages: AtomicU64::new(0),
            used_inodes: AtomicU64::new(0),
            xattr_used: AtomicU64::new(0),
            by_ino: Mutex::new(std::collections::HashMap::new()),
        });
        let t = now();
        let st = State {
            perm: opts.mode & 0o7777,
            uid: opts.uid,
            gid: opts.gid,
            nlink: 2,
            atime: t,
            mtime: t,
            ctime: t,
            btime: t,
            rdev: (0, 0),
            data: Data::Dir(DirData::new(Weak::new())),
            opaque: false,
            origin: None,
            cached: false,
            xattrs: XattrMap::default(),
        };
        fs.used_inodes.fetch_add(1, Ordering::Relaxed);
        let ino = fs.next_ino.fetch_add(1, Ordering::Relaxed);
        let root = Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            me: me.clone(),
            ino,
            ftype: FileType::Directory,
            st: Mutex::new(st),
        });
        fs.register(&root);
        root
    }

    fn register(&self, inode: &Arc<TmpInode>) {
        self.by_ino
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(inode.ino, Arc::downgrade(inode));
    }

    /// A tmpfs with default options (the overlay's upper layer).
    pub fn new_default() -> Arc<TmpInode> {
        TmpFs::new_root(TmpfsOptions {
            mode: 0o755,
            ..TmpfsOptions::defaults(&physmem())
        })
    }

    fn lock_ns(&self) -> MutexGuard<'_, ()> {
        self.ns_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn alloc_page(&self) -> KResult<Pfn> {
        if self.used_pages.fetch_add(1, Ordering::Relaxed) >= self.opts.max_pages {
            self.used_pages.fetch_sub(1, Ordering::Relaxed);
            return error!(ENOSPC);
        }
        match self.phys.alloc() {
            Some(p) => Ok(p),
            None => {
                self.used_pages.fetch_sub(1, Ordering::Relaxed);
                error!(ENOSPC)
            }
        }
    }

    /// The instance's budget for extended attributes: 1 KiB per page of
    /// its size (Linux charges them to the inode space, about 1 KiB per
    /// inode), at most 64 MiB, at least 64 KiB.
    fn xattr_limit(&self) -> u64 {
        self.opts
            .max_pages
            .saturating_mul(1024)
            .clamp(64 * 1024, 64 << 20)
    }

    /// Charges `delta` bytes of attributes (negative: releases); ENOSPC
    /// beyond the budget.
    fn charge_xattr(&self, delta: i64) -> KResult<()> {
        if delta <= 0 {
            self.xattr_used
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            return Ok(());
        }
        let d = delta as u64;
        let limit = self.xattr_limit();
        self.xattr_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + d <= limit).then_some(u + d)
            })
            .map(|_| ())
            .map_err(|_| crate::errno!(ENOSPC))
    }

    fn free_pages(&self, pfns: &[Pfn]) {
        if pfns.is_empty() {
            return;
        }
        self.phys.put_many(pfns);
        self.used_pages
            .fetch_sub(pfns.len() as u64, Ordering::Relaxed);
    }
}

struct DirData {
    /// name → (readdir cookie, inode).
    entries: BTreeMap<Vec<u8>, (u64, Arc<TmpInode>)>,
    /// readdir order: cookie → name. Cookies only grow, so a position
    /// survives entries being removed before it.
    order: BTreeMap<u64, Vec<u8>>,
    next_cookie: u64,
    parent: Weak<TmpInode>,
}

impl DirData {
    fn new(parent: Weak<TmpInode>) -> DirData {
        DirData {
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            next_cookie: 2,
            parent,
        }
    }
    fn insert(&mut self, name: &[u8], inode: Arc<TmpInode>) {
        let c = self.next_cookie;
        self.next_cookie += 1;
        if let Some((old, _)) = self.entries.insert(name.to_vec(), (c, inode)) {
            self.order.remove(&old);
        }
        self.order.insert(c, name.to_vec());
    }
    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpInode>> {
        let (c, i) = self.entries.remove(name)?;
        self.order.remove(&c);
        Some(i)
    }
    fn get(&self, name: &[u8]) -> Option<Arc<TmpInode>> {
        self.entries.get(name).map(|(_, i)| i.clone())
    }
}

struct FileData {
    pages: BTreeMap<u64, Pfn>,
    size: u64,
}

enum Data {
    Dir(DirData),
    File(FileData),
    Link(Vec<u8>),
    Special,
}

struct State {
    perm: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: (i64, u32),
    mtime: (i64, u32),
    ctime: (i64, u32),
    btime: (i64, u32),
    rdev: (u32, u32),
    data: Data,
    /// Overlay: a directory that hides the lower layer.
    opaque: bool,
    /// Overlay: the lower object this one was copied up from.
    origin: Option<InodeKey>,
    /// Pages may be in the page cache (the file was mmapped).
    cached: bool,
    /// Extended attributes (charged to the instance's xattr budget).
    xattrs: XattrMap,
}

impl State {
    fn dir(&mut self) -> KResult<&mut DirData> {
        match &mut self.data {
            Data::Dir(d) => Ok(d),
            _ => error!(ENOTDIR),
        }
    }
    fn file(&mut self) -> KResult<&mut FileData> {
        match &mut self.data {
            Data::File(f) => Ok(f),
            Data::Dir(_) => error!(EISDIR),
            _ => error!(EINVAL),
        }
    }
    fn touch_mc(&mut self) {
        let t = now();
        self.mtime = t;
        self.ctime = t;
    }
    /// relatime: update atime when it is older than mtime or ctime, or a
    /// day old.
    fn touch_atime(&mut self) {
        let t = now();
        if self.atime <= self.mtime || self.atime <= self.ctime || t.0 - self.atime.0 >= 86400 {
            self.atime = t;
        }
    }
}

/// A tmpfs inode.
pub struct TmpInode {
    fs: Arc<TmpFs>,
    me: Weak<TmpInode>,
    ino: u64,
    ftype: FileType,
    st: Mutex<State>,
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        let st = self.st.get_mut().unwrap_or_else(|p| p.into_inner());
        let cached = st.cached;
        let xspace = st.xattrs.space();
        if xspace > 0 {
            self.fs.xattr_used.fetch_sub(xspace, Ordering::Relaxed);
        }
        if let Data::File(f) = &mut st.data {
            let pfns: Vec<Pfn> = f.pages.values().copied().collect();
            self.fs.free_pages(&pfns);
        }
        // Page-cache copies of a dead file would never be used again.
        if cached && crate::kernel_booted() {
            crate::kernel()
                .page_cache
                .invalidate((encode_dev(self.fs.dev.0, self.fs.dev.1), self.ino));
        }
        self.fs.used_inodes.fetch_sub(1, Ordering::Relaxed);
        self.fs
            .by_ino
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.ino);
    }
}

fn check_name(name: &[u8]) -> KResult<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return error!(EINVAL);
    }
    if name.len() > 255 {
        return error!(ENAMETOOLONG);
    }
    Ok(())
}

impl TmpInode {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arc(&self) -> KResult<Arc<TmpInode>> {
        self.me.upgrade().ok_or(crate::errno!(ENOENT))
    }

    /// The filesystem's statfs.
    fn fs_statfs(&self) -> StatFs {
        let o = &self.fs.opts;
        let used = self.fs.used_pages.load(Ordering::Relaxed);
        let inodes = self.fs.used_inodes.load(Ordering::Relaxed);
        let files = if o.max_inodes == u64::MAX {
            0
        } else {
            o.max_inodes
        };
        StatFs {
            f_type: TMPFS_MAGIC,
            bsize: PAGE as i64,
            blocks: o.max_pages,
            bfree: o.max_pages.saturating_sub(used),
            bavail: o.max_pages.saturating_sub(used),
            files,
            ffree: files.saturating_sub(inodes),
            fsid: [0, 0],
            namelen: 255,
            frsize: PAGE as i64,
            flags: 0,
        }
    }

    /// A new inode (not yet linked anywhere).
    fn new_inode(
        &self,
        ftype: FileType,
        perm: u32,
        data: Data,
        rdev: (u32, u32),
        dir_st: &State,
    ) -> KResult<Arc<TmpInode>> {
        let fs = &self.fs;
        if fs.used_inodes.fetch_add(1, Ordering::Relaxed) >= fs.opts.max_inodes {
            fs.used_inodes.fetch_sub(1, Ordering::Relaxed);
            return error!(ENOSPC);
        }
        let t = now();
        // The set-group-ID directory rule: the group (and, for
        // directories, the bit itself) is inherited.
        let (gid, mut perm) = if dir_st.perm & S_ISGID != 0 {
            (dir_st.gid, perm)
        } else {
            (0, perm)
        };
        if ftype == FileType::Directory && dir_st.perm & S_ISGID != 0 {
            perm |= S_ISGID;
        }
        let st = State {
            perm: perm & 0o7777,
            uid: 0,
            gid,
            nlink: if ftype == FileType::Directory { 2 } else { 1 },
            atime: t,
            mtime: t,
            ctime: t,
            btime: t,
            rdev,
            data,
            opaque: false,
            origin: None,
            cached: false,
            xattrs: XattrMap::default(),
        };
        let ino = fs.next_ino.fetch_add(1, Ordering::Relaxed);
        let inode = Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            me: me.clone(),
            ino,
            ftype,
            st: Mutex::new(st),
        });
        fs.register(&inode);
        Ok(inode)
    }

    /// Adds a new object `name` to this directory.
    fn add(
        &self,
        name: &[u8],
        ftype: FileType,
        perm: u32,
        rdev: (u32, u32),
        data: Data,
    ) -> KResult<Arc<TmpInode>> {
        check_name(name)?;
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        if st.nlink == 0 {
            return error!(ENOENT);
        }
        if st.dir()?.entries.contains_key(name) {
            return error!(EEXIST);
        }
        let data = match data {
            Data::Dir(_) => Data::Dir(DirData::new(self.me.clone())),
            d => d,
        };
        let child = self.new_inode(ftype, perm, data, rdev, &st)?;
        st.dir()?.insert(name, child.clone());
        if ftype == FileType::Directory {
            st.nlink += 1;
        }
        st.touch_mc();
        Ok(child)
    }

    /// Whether `self` is `anc` or lies below it (directories; under the
    /// namespace lock).
    fn is_within(&self, anc: &TmpInode) -> bool {
        let mut cur = self.me.upgrade();
        while let Some(c) = cur {
            if std::ptr::eq(Arc::as_ptr(&c), anc) {
                return true;
            }
            cur = match &c.lock().data {
                Data::Dir(d) => d.parent.upgrade(),
                _ => None,
            };
        }
        false
    }

    // -- file data --------------------------------------------------------

    /// Reads file data at `off`.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let phys = self.fs.phys.clone();
        self.read_with(off, buf.len(), |segs| {
            for &(page, in_off, done, k) in segs {
                match page {
                    Some(pfn) => phys.read(pfn, in_off, &mut buf[done..done + k]),
                    None => buf[done..done + k].fill(0),
                }
            }
        })
    }

    /// read_at straight into guest frames. A plain copy through the
    /// kernel's mapping, one per stretch that is contiguous in physmem on
    /// both sides: the host's preadv on the memfd costs more per page
    /// than a copy between pages already mapped (measured: about 930
    /// against 1,300–5,000 MB/s on the benchmark VM).
    pub fn read_frames(&self, off: u64, dst: &crate::mm::userframes::UserFrames) -> KResult<usize> {
        self.read_with(off, dst.len(), |segs| {
            for &(page, _, done, k) in segs {
                if page.is_none() {
                    dst.zero(done, k);
                }
            }
            for_runs(segs, |pos, done, n| dst.copy_from_phys(done, pos, n));
        })
    }

    /// The body of reads: `put(pieces)` with, for each page's part of
    /// `[off, off + len)` below the size, (frame or None for a hole,
    /// offset in the page, offset in the destination, bytes), called once
    /// under the inode's lock.
    fn read_with(&self, off: u64, len: usize, put: impl FnOnce(&[Piece])) -> KResult<usize> {
        let mut st = self.lock();
        let f = st.file()?;
        if off >= f.size || len == 0 {
            return Ok(0);
        }
        let n = ((f.size - off) as usize).min(len);
        let mut segs = Vec::with_capacity(n / PAGE as usize + 2);
        let mut done = 0usize;
        while done < n {
            let pos = off + done as u64;
            let (idx, in_off) = (pos / PAGE, (pos % PAGE) as usize);
            let k = (PAGE as usize - in_off).min(n - done);
            segs.push((f.pages.get(&idx).copied(), in_off, done, k));
            done += k;
        }
        put(&segs);
        st.touch_atime();
        Ok(n)
    }

    /// Writes file data at `off`, allocating pages; a full filesystem
    /// gives a short write (ENOSPC if nothing was written).
    pub fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        let phys = self.fs.phys.clone();
        self.write_with(off, buf.len(), |segs| {
            for_runs(segs, |pos, done, n| {
                let src = buf[done..done + n].as_ptr();
                if !phys.write_iov(pos, &[(src, n)]) {
                    by_page(pos, n, |pfn, o, at, k| {
                        phys.write(pfn, o, &buf[done + at..done + at + k])
                    });
                }
            })
        })
    }

    /// write_at straight from guest frames: one host pwritev per run of
    /// the file's frames that lie side by side in physmem (the host backs
    /// a fresh frame without zeroing it first).
    pub fn write_frames(
        &self,
        off: u64,
        src: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        let phys = self.fs.phys.clone();
        self.write_with(off, src.len(), |segs| {
            for_runs(segs, |pos, done, n| {
                let iov: Vec<(*const u8, usize)> = src
                    .iov(done, n)
                    .into_iter()
                    .map(|(p, k)| (p as *const u8, k))
                    .collect();
                if !phys.write_iov(pos, &iov) {
                    src.copy_to_phys(done, pos, n);
                }
            })
        })
    }

    /// The body of writes: `get(pieces)` with, for each page's part of
    /// `[off, off + len)`, (frame, offset in the page, offset in the
    /// source, bytes), pages allocated as needed, called once under the
    /// inode's lock.
    fn write_with(&self, off: u64, buf_len: usize, get: impl FnOnce(&[Piece])) -> KResult<usize> {
        if buf_len == 0 {
            return Ok(0);
        }
        if off >= MAX_FILE_SIZE {
            return error!(EFBIG);
        }
        let len = (buf_len as u64).min(MAX_FILE_SIZE - off) as usize;
        let cached;
        let done = {
            let mut st = self.lock();
            let f = st.file()?;
            let mut segs = Vec::with_capacity(len / PAGE as usize + 2);
            let mut done = 0usize;
            let mut err = None;
            while done < len {
                let pos = off + done as u64;
                let (idx, in_off) = (pos / PAGE, (pos % PAGE) as usize);
                let k = (PAGE as usize - in_off).min(len - done);
                let pfn = match f.pages.get(&idx) {
                    Some(&p) => p,
                    None => match self.fs.alloc_page() {
                        Ok(p) => {
                            f.pages.insert(idx, p);
                            p
                        }
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    },
                };
                segs.push((Some(pfn), in_off, done, k));
                done += k;
            }
            get(&segs);
            if off + done as u64 > f.size {
                f.size = off + done as u64;
            }
            if done > 0 {
                st.touch_mc();
            }
            cached = st.cached;
            if done == 0 {
                if let Some(e) = err {
                    return Err(e);
                }
            }
            done
        };
        if cached {
            self.invalidate_cache();
        }
        Ok(done)
    }

    fn invalidate_cache(&self) {
        if crate::kernel_booted() {
            crate::kernel().page_cache.invalidate(self.key());
        }
    }

    /// Sets the size: pages past it are freed, the tail of the last one
    /// zeroed.
    fn truncate_locked(&self, st: &mut State, len: u64) -> KResult<()> {
        if len > MAX_FILE_SIZE {
            return error!(EFBIG);
        }
        let f = st.file()?;
        if len < f.size {
            let keep = len.div_ceil(PAGE);
            let gone: Vec<Pfn> = f.pages.split_off(&keep).into_values().collect();
            self.fs.free_pages(&gone);
            if !len.is_multiple_of(PAGE) {
                if let Some(&pfn) = f.pages.get(&(len / PAGE)) {
                    let o = (len % PAGE) as usize;
                    self.fs.phys.zero(pfn, o, PAGE as usize - o);
                }
            }
        }
        f.size = len;
        st.touch_mc();
        Ok(())
    }

    /// truncate(2) / ftruncate(2).
    pub fn truncate(&self, len: u64) -> KResult<()> {
        let (cached, old) = {
            let mut st = self.lock();
            let old = st.file()?.size;
            self.truncate_locked(&mut st, len)?;
            (st.cached, old)
        };
        if cached {
            self.invalidate_cache();
            self.unmap_past(old, len);
        }
        Ok(())
    }

    /// After a shrink from `old` to `len` bytes (this file's lock
    /// released): its pages past the end leave every address space that
    /// maps them, private copies too, so an access there is SIGBUS (Linux's
    /// `truncate_pagecache`: `unmap_mapping_range(.., even_cows)`).
    fn unmap_past(&self, old: u64, len: u64) {
        if len < old {
            crate::mm::rmap::unmap_file_pages(
                self.key(),
                len.div_ceil(PAGE),
                old.div_ceil(PAGE),
                crate::mm::rmap::Zap::All,
            );
        }
    }

    fn fallocate(&self, mode: u32, off: u64, len: u64) -> KResult<()> {
        if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0 {
            return error!(EOPNOTSUPP);
        }
        if mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0 {
            return error!(EOPNOTSUPP);
        }
        let end = off
            .checked_add(len)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(crate::errno!(EFBIG))?;
        // The punched pages, index → frame, to unmap where mapped.
        let mut punched: std::collections::HashMap<u64, Pfn> = Default::default();
        let cached = {
            let mut st = self.lock();
            let phys = self.fs.phys.clone();
            let f = st.file()?;
            if mode & FALLOC_FL_PUNCH_HOLE != 0 {
                let first_full = off.div_ceil(PAGE);
                let last_full = end / PAGE; // exclusive
                let mut gone = Vec::new();
                if first_full < last_full {
                    let keys: Vec<u64> = f
                        .pages
                        .range(first_full..last_full)
                        .map(|(&k, _)| k)
                        .collect();
                    for k in keys {
                        if let Some(p) = f.pages.remove(&k) {
                            gone.push(p);
                            punched.insert(k, p);
                        }
                    }
                }
                // Partial pages at either end are zeroed in place.
                let head = off / PAGE;
                if !off.is_multiple_of(PAGE) {
                    let stop = ((head + 1) * PAGE).min(end);
                    if let Some(&pfn) = f.pages.get(&head) {
                        phys.zero(pfn, (off % PAGE) as usize, (stop - off) as usize);
                    }
                }
                let tail = end / PAGE;
                if !end.is_multiple_of(PAGE)
                    && tail * PAGE >= off
                    && (off.is_multiple_of(PAGE) || tail != head)
                {
                    if let Some(&pfn) = f.pages.get(&tail) {
                        phys.zero(pfn, 0, (end % PAGE) as usize);
                    }
                }
                self.fs.free_pages(&gone);
            } else {
                let mut idx = off / PAGE;
                let last = end.div_ceil(PAGE);
                while idx < last {
                    if let std::collections::btree_map::Entry::Vacant(v) = f.pages.entry(idx) {
                        v.insert(self.fs.alloc_page()?);
                    }
                    idx += 1;
                }
                if mode & FALLOC_FL_KEEP_SIZE == 0 && end > f.size {
                    f.size = end;
                }
            }
            st.touch_mc();
            st.cached
        };
        if cached {
            self.invalidate_cache();
            // The hole's pages leave every mapping of them (Linux's
            // shmem_fallocate: unmap_mapping_range without even_cows):
            // the next access maps what the file holds now, zeros.
            if let (Some(&lo), Some(&hi)) = (punched.keys().min(), punched.keys().max()) {
                crate::mm::rmap::unmap_file_pages(
                    self.key(),
                    lo,
                    hi + 1,
                    crate::mm::rmap::Zap::Frames(&punched),
                );
            }
        }
        Ok(())
    }

    fn page_frame(&self, index: u64, create: bool) -> KResult<Pfn> {
        let mut st = self.lock();
        let f = st.file()?;
        if index >= f.size.div_ceil(PAGE) {
            return error!(ENXIO);
        }
        let pfn = match f.pages.get(&index) {
            Some(&p) => p,
            None if create => {
                let p = self.fs.alloc_page()?;
                f.pages.insert(index, p);
                p
            }
            None => return error!(ENOENT),
        };
        self.fs.phys.get(pfn);
        Ok(pfn)
    }

    /// SEEK_DATA (3) / SEEK_HOLE (4).
    fn seek_data_hole(&self, off: i64, whence: u32) -> KResult<u64> {
        let mut st = self.lock();
        let f = st.file()?;
        if off < 0 || off as u64 >= f.size {
            return error!(ENXIO);
        }
        let off = off as u64;
        let idx = off / PAGE;
        if whence == 3 {
            match f.pages.range(idx..).next() {
                Some((&i, _)) => {
                    let at = (i * PAGE).max(off);
                    if at >= f.size {
                        error!(ENXIO)
                    } else {
                        Ok(at)
                    }
                }
                None => error!(ENXIO),
            }
        } else {
            let mut i = idx;
            while f.pages.contains_key(&i) {
                i += 1;
            }
            Ok((i * PAGE).max(off).min(f.size))
        }
    }

    fn size(&self) -> u64 {
        match &self.lock().data {
            Data::File(f) => f.size,
            _ => 0,
        }
    }

    // -- what the overlay needs --------------------------------------------

    /// The entry `name`, whatever it is (whiteouts included).
    pub(crate) fn lookup_raw(&self, name: &[u8]) -> Option<Arc<TmpInode>> {
        match &self.lock().data {
            Data::Dir(d) => d.get(name),
            _ => None,
        }
    }

    /// All entries of a directory, in readdir order.
    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, Arc<TmpInode>)> {
        match &self.lock().data {
            Data::Dir(d) => d
                .order
                .values()
                .filter_map(|n| d.get(n).map(|i| (n.clone(), i)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// An overlay whiteout: a character device 0:0.
    pub(crate) fn is_whiteout(&self) -> bool {
        self.ftype == FileType::CharDevice && self.lock().rdev == (0, 0)
    }

    pub(crate) fn make_whiteout(&self, name: &[u8]) -> KResult<()> {
        self.add(name, FileType::CharDevice, 0, (0, 0), Data::Special)
            .map(|_| ())
    }

    /// Removes `name` if it is a whiteout; true if it was.
    pub(crate) fn remove_whiteout(&self, name: &[u8]) -> KResult<bool> {
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        let d = st.dir()?;
        match d.get(name) {
            Some(c) if c.is_whiteout() => {
                d.remove(name);
                st.touch_mc();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes every whiteout in a directory (before the overlay removes
    /// it).
    pub(crate) fn clear_whiteouts(&self) -> KResult<()> {
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        let d = st.dir()?;
        let names: Vec<Vec<u8>> = d
            .entries
            .iter()
            .filter(|(_, (_, i))| i.is_whiteout())
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            d.remove(&n);
        }
        Ok(())
    }

    pub(crate) fn opaque(&self) -> bool {
        self.lock().opaque
    }

    pub(crate) fn set_opaque(&self, on: bool) {
        self.lock().opaque = on;
    }

    pub(crate) fn origin(&self) -> Option<InodeKey> {
        self.lock().origin
    }

    /// Copy-up: the lower object's identity, ownership and times.
    pub(crate) fn set_copied_attrs(&self, origin: InodeKey, st: &Stat) {
        let mut s = self.lock();
        s.origin = Some(origin);
        s.perm = st.mode & 0o7777;
        s.uid = st.uid;
        s.gid = st.gid;
        s.atime = st.atime;
        s.mtime = st.mtime;
    }

    /// Marks the file as possibly cached in the page cache.
    fn mark_cached(&self) {
        self.lock().cached = true;
    }

    pub(crate) fn tmp_ino(&self) -> u64 {
        self.ino
    }

    /// Opens the inode's file operations directly (the overlay).
    pub(crate) fn open_ops(&self, flags: u32) -> KResult<Arc<dyn FileOps>> {
        self.open(flags, &Caller::kernel())
    }

    /// The tmpfs link operation between two tmpfs inodes (the overlay).
    pub(crate) fn link_tmp(&self, name: &[u8], target: &TmpInode) -> KResult<()> {
        Inode::link(self, name, target)
    }
}

impl Inode for TmpInode {
    fn file_type(&self) -> FileType {
        self.ftype
    }

    fn key(&self) -> InodeKey {
        (encode_dev(self.fs.dev.0, self.fs.dev.1), self.ino)
    }

    fn stat(&self) -> KResult<Stat> {
        let st = self.lock();
        let (size, blocks) = match &st.data {
            Data::File(f) => (f.size, f.pages.len() as u64 * (PAGE / 512)),
            Data::Dir(d) => ((d.entries.len() as u64 + 2) * BOGO_DIRENT_SIZE, 0),
            Data::Link(t) => (
                t.len() as u64,
                if t.len() >= SHORT_SYMLINK_LEN {
                    PAGE / 512
                } else {
                    0
                },
            ),
            Data::Special => (0, 0),
        };
        Ok(Stat {
            dev: self.fs.dev,
            ino: self.ino,
            mode: self.ftype.mode_bits() | st.perm,
            nlink: st.nlink,
            uid: st.uid,
            gid: st.gid,
            rdev: st.rdev,
            size,
            blksize: PAGE as u32,
            blocks,
            atime: st.atime,
            mtime: st.mtime,
            ctime: st.ctime,
            btime: Some(st.btime),
            attributes: 0,
            attributes_mask: 0,
        })
    }

    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.fs_statfs())
    }

    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let st = self.lock();
        match &st.data {
            Data::Dir(d) => match d.get(name) {
                Some(i) => Ok(i),
                None => error!(ENOENT),
            },
            _ => error!(ENOTDIR),
        }
    }

    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        let mut st = self.lock();
        let t = match &st.data {
            Data::Link(t) => t.clone(),
            _ => return error!(EINVAL),
        };
        st.touch_atime();
        Ok(t)
    }

    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        use crate::fs::types::oflags::O_TRUNC;
        match self.ftype {
            FileType::Regular => {
                if flags & O_TRUNC != 0 {
                    let mut st = self.lock();
                    let f = st.file()?;
                    let old = f.size;
                    if old != 0 {
                        self.truncate_locked(&mut st, 0)?;
                        let cached = st.cached;
                        drop(st);
                        if cached {
                            self.invalidate_cache();
                            self.unmap_past(old, 0);
                        }
                    }
                }
                Ok(Arc::new(TmpFile { inode: self.arc()? }))
            }
            FileType::Directory => Ok(Arc::new(TmpDirFile { inode: self.arc()? })),
            FileType::Symlink => error!(ELOOP),
            FileType::Fifo => crate::fs::pipe::open_fifo(self.key(), flags, _caller),
            // Device nodes made with mknod: the device of that number.
            FileType::CharDevice => {
                let rdev = self.lock().rdev;
                crate::fs::devfs::open_chrdev(rdev, flags, _caller)
            }
            FileType::BlockDevice => {
                let rdev = self.lock().rdev;
                crate::block::open_disk(rdev, flags)
            }
            _ => error!(ENXIO),
        }
    }

    fn create(
        &self,
        name: &[u8],
        mode: u32,
        _flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        let child = self.add(
            name,
            FileType::Regular,
            mode,
            (0, 0),
            Data::File(FileData {
                pages: BTreeMap::new(),
                size: 0,
            }),
        )?;
        let ops: Arc<dyn FileOps> = Arc::new(TmpFile {
            inode: child.clone(),
        });
        Ok((child, ops))
    }

    fn mkdir(&self, name: &[u8], mode: u32) -> KResult<()> {
        self.add(
            name,
            FileType::Directory,
            mode,
            (0, 0),
            Data::Dir(DirData::new(Weak::new())),
        )
        .map(|_| ())
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> KResult<()> {
        if target.is_empty() {
            return error!(ENOENT);
        }
        if target.len() >= 4096 {
            return error!(ENAMETOOLONG);
        }
        self.add(
            name,
            FileType::Symlink,
            0o777,
            (0, 0),
            Data::Link(target.to_vec()),
        )
        .map(|_| ())
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: (u32, u32)) -> KResult<()> {
        let ftype = FileType::from_mode(mode);
        let (ft, data, rdev) = match ftype {
            FileType::Regular => (
                ftype,
                Data::File(FileData {
                    pages: BTreeMap::new(),
                    size: 0,
                }),
                (0, 0),
            ),
            FileType::CharDevice | FileType::BlockDevice => (ftype, Data::Special, rdev),
            FileType::Fifo | FileType::Socket => (ftype, Data::Special, (0, 0)),
            FileType::Directory | FileType::Symlink => return error!(EINVAL),
        };
        self.add(name, ft, mode & 0o7777, rdev, data).map(|_| ())
    }

    fn unlink(&self, name: &[u8]) -> KResult<()> {
        check_name(name)?;
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        let d = st.dir()?;
        let child = d.get(name).ok_or(crate::errno!(ENOENT))?;
        if child.ftype == FileType::Directory {
            return error!(EISDIR);
        }
        d.remove(name);
        st.touch_mc();
        drop(st);
        let mut cs = child.lock();
        cs.nlink = cs.nlink.saturating_sub(1);
        cs.ctime = now();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> KResult<()> {
        check_name(name)?;
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        let child = st.dir()?.get(name).ok_or(crate::errno!(ENOENT))?;
        if child.ftype != FileType::Directory {
            return error!(ENOTDIR);
        }
        {
            let mut cs = child.lock();
            if !cs.dir()?.entries.is_empty() {
                return error!(ENOTEMPTY);
            }
            cs.nlink = 0;
            cs.ctime = now();
        }
        st.dir()?.remove(name);
        st.nlink = st.nlink.saturating_sub(1);
        st.touch_mc();
        Ok(())
    }

    fn link(&self, name: &[u8], target: &dyn Inode) -> KResult<()> {
        check_name(name)?;
        let Some(t) = target.as_any().downcast_ref::<TmpInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return error!(EXDEV);
        }
        if t.ftype == FileType::Directory {
            return error!(EPERM);
        }
        let target = t.arc()?;
        let _ns = self.fs.lock_ns();
        let mut st = self.lock();
        if st.nlink == 0 {
            return error!(ENOENT);
        }
        if st.dir()?.entries.contains_key(name) {
            return error!(EEXIST);
        }
        {
            let mut ts = target.lock();
            if ts.nlink == 0 {
                return error!(ENOENT);
            }
            ts.nlink += 1;
            ts.ctime = now();
        }
        st.dir()?.insert(name, target);
        st.touch_mc();
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &dyn Inode, new_name: &[u8], flags: u32) -> KResult<()> {
        check_name(name)?;
        check_name(new_name)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
            return error!(EINVAL);
        }
        let Some(nd) = new_dir.as_any().downcast_ref::<TmpInode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &nd.fs) {
            return error!(EXDEV);
        }
        let _ns = self.fs.lock_ns();
        let same_dir = std::ptr::eq(self, nd);
        let src = self.lock().dir()?.get(name).ok_or(crate::errno!(ENOENT))?;
        let dst = nd.lock().dir()?.get(new_name);
        if flags & RENAME_EXCHANGE != 0 {
            let Some(dst) = dst else {
                return error!(ENOENT);
            };
            if Arc::ptr_eq(&src, &dst) {
                return Ok(());
            }
            if src.ftype == FileType::Directory && nd.is_within(&src) {
                return error!(EINVAL);
            }
            if dst.ftype == FileType::Directory && self.is_within(&dst) {
                return error!(EINVAL);
            }
            let t = now();
            if same_dir {
                let mut st = self.lock();
                let d = st.dir()?;
                d.insert(name, dst.clone());
                d.insert(new_name, src.clone());
                st.mtime = t;
                st.ctime = t;
            } else {
                let (sd, dd) = (
                    src.ftype == FileType::Directory,
                    dst.ftype == FileType::Directory,
                );
                {
                    let mut st = self.lock();
                    st.dir()?.insert(name, dst.clone());
                    if sd && !dd {
                        st.nlink -= 1;
                    } else if dd && !sd {
                        st.nlink += 1;
                    }
                    st.mtime = t;
                    st.ctime = t;
                }
                {
                    let mut st = nd.lock();
                    st.dir()?.insert(new_name, src.clone());
                    if dd && !sd {
                        st.nlink -= 1;
                    } else if sd && !dd {
                        st.nlink += 1;
                    }
                    st.mtime = t;
                    st.ctime = t;
                }
                if let Data::Dir(d) = &mut src.lock().data {
                    d.parent = nd.me.clone();
                }
                if let Data::Dir(d) = &mut dst.lock().data {
                    d.parent = self.me.clone();
                }
            }
            src.lock().ctime = t;
            dst.lock().ctime = t;
            return Ok(());
        }
        if let Some(dst) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return error!(EEXIST);
            }
            if Arc::ptr_eq(&src, dst) {
                // Two names of one file (or the same name): nothing to do.
                return Ok(());
            }
        }
        let src_dir = src.ftype == FileType::Directory;
        // Linux's lock_rename traps: the source may not be an ancestor of
        // the target, nor the target of the source.
        if src_dir && nd.is_within(&src) {
            return error!(EINVAL);
        }
        if let Some(d) = &dst {
            if d.ftype == FileType::Directory && self.is_within(d) {
                return error!(ENOTEMPTY);
            }
        }
        if let Some(dst) = &dst {
            let dst_dir = dst.ftype == FileType::Directory;
            if src_dir && !dst_dir {
                return error!(ENOTDIR);
            }
            if !src_dir && dst_dir {
                return error!(EISDIR);
            }
            if dst_dir {
                let mut ds = dst.lock();
                if !ds.dir()?.entries.is_empty() {
                    return error!(ENOTEMPTY);
                }
            }
        }
        // A whiteout left behind needs an inode before anything changes.
        let whiteout = if flags & RENAME_WHITEOUT != 0 {
            let st = self.lock();
            Some(self.new_inode(FileType::CharDevice, 0, Data::Special, (0, 0), &st)?)
        } else {
            None
        };
        let t = now();
        if let Some(dst) = &dst {
            let mut ds = dst.lock();
            if dst.ftype == FileType::Directory {
                ds.nlink = 0;
            } else {
                ds.nlink = ds.nlink.saturating_sub(1);
            }
            ds.ctime = t;
        }
        {
            let mut st = self.lock();
            let d = st.dir()?;
            d.remove(name);
            if let Some(w) = whiteout {
                d.insert(name, w);
            }
            if src_dir && !same_dir {
                st.nlink -= 1;
            }
            st.mtime = t;
            st.ctime = t;
        }
        {
            let mut st = nd.lock();
            st.dir()?.insert(new_name, src.clone());
            if dst.as_ref().is_some_and(|d| d.ftype == FileType::Directory) {
                st.nlink -= 1;
            }
            if src_dir && !same_dir {
                st.nlink += 1;
            }
            st.mtime = t;
            st.ctime = t;
        }
        let mut ss = src.lock();
        ss.ctime = t;
        if let Data::Dir(d) = &mut ss.data {
            d.parent = nd.me.clone();
        }
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> KResult<()> {
        let mut st = self.lock();
        let t = now();
        let mut cached = false;
        let mut shrunk = None;
        if let Some(len) = a.size {
            match self.ftype {
                FileType::Regular => {}
                FileType::Directory => return error!(EISDIR),
                _ => return error!(EINVAL),
            }
            let old = st.file()?.size;
            self.truncate_locked(&mut st, len)?;
            cached = st.cached;
            shrunk = Some((old, len));
        }
        if let Some(m) = a.mode {
            st.perm = m & 0o7777;
        }
        if let Some(u) = a.uid {
            st.uid = u;
        }
        if let Some(g) = a.gid {
            st.gid = g;
        }
        if a.kill_suid && self.ftype != FileType::Directory {
            st.perm &= !S_ISUID;
            if st.perm & 0o010 != 0 {
                st.perm &= !S_ISGID;
            }
        }
        if let Some(at) = a.atime {
            st.atime = at.resolve(t);
        }
        if let Some(mt) = a.mtime {
            st.mtime = mt.resolve(t);
        }
        st.ctime = t;
        drop(st);
        if cached {
            self.invalidate_cache();
            if let Some((old, len)) = shrunk {
                self.unmap_past(old, len);
            }
        }
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> KResult<Vec<u8>> {
        self.lock().xattrs.get(name)
    }

    fn setxattr(&self, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        let mut st = self.lock();
        st.xattrs
            .set(name, value, flags, |d| self.fs.charge_xattr(d))?;
        st.ctime = now();
        Ok(())
    }

    fn listxattr(&self) -> KResult<Vec<Vec<u8>>> {
        Ok(self.lock().xattrs.names())
    }

    // File handles, as Linux's shmem: type 1, (generation, inode number);
    // ruml's tmpfs never reuses a number, so the generation is 0.
    fn encode_fh(&self) -> KResult<(i32, Vec<u8>)> {
        let mut fh = vec![0u8; 16];
        fh[4..12].copy_from_slice(&self.ino.to_le_bytes());
        Ok((1, fh))
    }

    fn decode_fh(&self, ty: i32, fh: &[u8]) -> KResult<Arc<dyn Inode>> {
        if ty != 1 || fh.len() < 12 || fh[..4] != [0; 4] {
            return error!(ESTALE);
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&fh[4..12]);
        let ino = u64::from_le_bytes(b);
        let found = self
            .fs
            .by_ino
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ino)
            .and_then(|w| w.upgrade());
        let Some(i) = found else {
            return error!(ESTALE);
        };
        let linked = i.lock().nlink > 0;
        if !linked || i.is_whiteout() {
            return error!(ESTALE);
        }
        Ok(i)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open tmpfs regular file.
pub struct TmpFile {
    inode: Arc<TmpInode>,
}

impl FileOps for TmpFile {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.inode.read_at(off, buf)
    }
    fn write(&self, _f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.inode.write_at(off, buf)
    }
    fn direct_io(&self) -> bool {
        true
    }
    fn read_frames(
        &self,
        _f: &OpenFile,
        off: u64,
        dst: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        self.inode.read_frames(off, dst)
    }
    fn write_frames(
        &self,
        _f: &OpenFile,
        off: u64,
        src: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        self.inode.write_frames(off, src)
    }
    fn size(&self) -> KResult<u64> {
        Ok(self.inode.size())
    }
    fn llseek(&self, _pos: u64, off: i64, whence: u32) -> Option<KResult<u64>> {
        match whence {
            3 | 4 => Some(self.inode.seek_data_hole(off, whence)),
            _ => None,
        }
    }
    fn truncate(&self, len: u64) -> KResult<()> {
        self.inode.truncate(len)
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        Ok(())
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        self.inode.mark_cached();
        Ok(self.inode.key())
    }
    fn fallocate(&self, mode: u32, off: u64, len: u64) -> KResult<()> {
        self.inode.fallocate(mode, off, len)
    }
    fn page_frame(&self, index: u64, create: bool) -> Option<KResult<Pfn>> {
        Some(self.inode.page_frame(index, create))
    }
    fn frames_in(&self, first: u64, last: u64) -> Option<Vec<Pfn>> {
        let mut st = self.inode.lock();
        Some(match st.file() {
            Ok(f) => f.pages.range(first..=last).map(|(_, &p)| p).collect(),
            Err(_) => Vec::new(),
        })
    }
}

/// An open tmpfs directory: positions are entry cookies (0 ".", 1 "..").
pub struct TmpDirFile {
    inode: Arc<TmpInode>,
}

impl FileOps for TmpDirFile {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EISDIR)
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        Ok(())
    }
    fn getdents(&self, _f: &OpenFile, pos: &mut u64, sink: &mut DirSink) -> KResult<()> {
        let mut st = self.inode.lock();
        if st.nlink == 0 {
            return error!(ENOENT);
        }
        let me = self.inode.ino;
        let Data::Dir(d) = &st.data else {
            return error!(ENOTDIR);
        };
        let dt = FileType::Directory.dirent_type();
        let mut full = false;
        if *pos == 0 {
            if sink.push(me, 1, dt, b".") {
                *pos = 1;
            } else {
                full = true;
            }
        }
        if *pos == 1 && !full {
            let pino = d.parent.upgrade().map_or(me, |p| p.ino);
            if sink.push(pino, 2, dt, b"..") {
                *pos = 2;
            } else {
                full = true;
            }
        }
        if !full {
            for (&c, name) in d.order.range((*pos).max(2)..) {
                let Some(i) = d.get(name) else { continue };
                if !sink.push(i.ino, c as i64 + 1, i.ftype.dirent_type(), name) {
                    full = true;
                    break;
                }
                *pos = c + 1;
            }
        }
        if full && sink.is_empty() {
            return error!(EINVAL);
        }
        st.touch_atime();
        Ok(())
    }
}

/// A page's part of a read or write: (frame, None for a hole; offset in
/// the page; offset in the caller's buffer; bytes), in buffer order.
type Piece = (Option<Pfn>, usize, usize, usize);

/// Calls `f(byte offset in physmem, offset in the buffer, bytes)` for each
/// run of `segs` whose frames follow one another in physmem (holes
/// skipped): one host call moves a run.
fn for_runs(segs: &[Piece], mut f: impl FnMut(u64, usize, usize)) {
    let mut run: Option<(u64, usize, usize)> = None;
    for &(page, in_off, done, k) in segs {
        let Some(pfn) = page else {
            if let Some((p, d, n)) = run.take() {
                f(p, d, n);
            }
            continue;
        };
        let pos = pfn * PAGE + in_off as u64;
        match &mut run {
            Some((p, d, n)) if *p + *n as u64 == pos && *d + *n == done => *n += k,
            _ => {
                if let Some((p, d, n)) = run.take() {
                    f(p, d, n);
                }
                run = Some((pos, done, k));
            }
        }
    }
    if let Some((p, d, n)) = run {
        f(p, d, n);
    }
}

/// Splits a run of physmem `[pos, pos + n)` into its frames: `f(frame,
/// offset in it, offset in the run, bytes)` (the by-hand copy when the
/// host's preadv/pwritev is not used).
fn by_page(pos: u64, n: usize, mut f: impl FnMut(Pfn, usize, usize, usize)) {
    let mut at = 0usize;
    while at < n {
        let p = pos + at as u64;
        let o = (p % PAGE) as usize;
        let k = (PAGE as usize - o).min(n - at);
        f(p / PAGE, o, at, k);
        at += k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::fs::vfs::SetTime;

    fn root() -> Arc<TmpInode> {
        TmpFs::new_default()
    }

    fn child(d: &TmpInode, n: &[u8]) -> Arc<TmpInode> {
        d.lookup_raw(n).unwrap()
    }

    #[test]
    fn files_holes_truncate() {
        let r = root();
        let (i, _) = r.create(b"f", 0o644, 0).unwrap();
        let f = child(&r, b"f");
        assert_eq!(i.key(), f.key());
        assert_eq!(f.write_at(10_000, b"hello").unwrap(), 5);
        let st = f.stat().unwrap();
        assert_eq!(st.size, 10_005);
        assert_eq!(st.blocks, 8, "one page for a sparse file");
        let mut buf = vec![1u8; 10_005];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 10_005);
        assert!(buf[..10_000].iter().all(|&b| b == 0));
        assert_eq!(&buf[10_000..], b"hello");
        assert_eq!(f.seek_data_hole(0, 3).unwrap(), 8192);
        assert_eq!(f.seek_data_hole(0, 4).unwrap(), 0);
        assert_eq!(f.seek_data_hole(8192, 4).unwrap(), 10_005);
        f.truncate(10_002).unwrap();
        f.truncate(10_005).unwrap();
        let mut b = [9u8; 5];
        f.read_at(10_000, &mut b).unwrap();
        assert_eq!(&b, b"he\0\0\0");
        f.truncate(0).unwrap();
        assert_eq!(f.stat().unwrap().blocks, 0);
    }

    #[test]
    fn namespace_ops() {
        let r = root();
        r.mkdir(b"d", 0o755).unwrap();
        assert_eq!(r.stat().unwrap().nlink, 3);
        let d = child(&r, b"d");
        d.create(b"a", 0o600, 0).unwrap();
        assert_eq!(r.rmdir(b"d"), Err(Errno::ENOTEMPTY));
        d.link(b"b", child(&d, b"a").as_ref()).unwrap();
        assert_eq!(child(&d, b"a").stat().unwrap().nlink, 2);
        d.rename(b"a", r.as_ref(), b"moved", RENAME_NOREPLACE)
            .unwrap();
        assert_eq!(
            d.rename(b"b", r.as_ref(), b"moved", RENAME_NOREPLACE),
            Err(Errno::EEXIST)
        );
        d.unlink(b"b").unwrap();
        assert_eq!(child(&r, b"moved").stat().unwrap().nlink, 1);
        r.mkdir(b"e", 0o755).unwrap();
        assert_eq!(
            r.rename(b"d", child(&r, b"d").as_ref(), b"x", 0),
            Err(Errno::EINVAL)
        );
        r.rename(b"d", r.as_ref(), b"e", 0).unwrap();
        assert_eq!(r.stat().unwrap().nlink, 3);
        r.symlink(b"l", b"target").unwrap();
        r.rename(b"l", r.as_ref(), b"moved", RENAME_EXCHANGE)
            .unwrap();
        assert_eq!(child(&r, b"moved").file_type(), FileType::Symlink);
        assert_eq!(child(&r, b"l").file_type(), FileType::Regular);
        r.rmdir(b"e").unwrap();
        assert_eq!(r.stat().unwrap().nlink, 2);
        r.setattr(&SetAttr {
            mode: Some(0o700),
            atime: Some(SetTime::At(5, 6)),
            ..Default::default()
        })
        .unwrap();
        let st = r.stat().unwrap();
        assert_eq!((st.mode & 0o7777, st.atime), (0o700, (5, 6)));
    }

    #[test]
    fn enospc_and_free() {
        let phys = physmem();
        let r = TmpFs::new_root(TmpfsOptions {
            max_pages: 2,
            ..TmpfsOptions::defaults(&phys)
        });
        r.create(b"f", 0o644, 0).unwrap();
        let f = child(&r, b"f");
        assert_eq!(
            f.write_at(0, &[1u8; 3 * 4096]).unwrap(),
            2 * 4096,
            "a short write"
        );
        assert_eq!(f.write_at(8192, b"x"), Err(Errno::ENOSPC));
        r.unlink(b"f").unwrap();
        drop(f);
        assert_eq!(r.fs.used_pages.load(Ordering::Relaxed), 0);
    }
}
