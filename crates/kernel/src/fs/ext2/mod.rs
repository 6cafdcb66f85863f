//! ext2 (and ext3/ext4 images it can safely handle) on a block device.
//!
//! Read-write for the ext2 feature set (which is also what an ext3 image
//! with a clean journal has: the journal is left alone, as Linux's ext2
//! driver does). Read-only for ext4 images whose incompatible features
//! only change how data is found (extents, 64bit, flex_bg, large dirs) or
//! whose ro-compatible features would need maintaining on write
//! (metadata_csum, uninit_bg, ...). Anything else — a journal that needs
//! recovery, inline data, encryption, meta_bg, a journal device — refuses
//! the mount with a kernel log line naming the features.
//!
//! An image is hostile input: every on-disk number is checked before use
//! (block and inode numbers in range, directory records inside their
//! block, extent headers and depths, indirect chains bounded) and a bad
//! one gives EUCLEAN (Linux's EFSCORRUPTED), never a panic or an access
//! outside the device.
//!
//! Locking and lifetime: one mutex ([`Ext2Fs::state`]) serializes every
//! operation on a mounted filesystem; operations load on-disk inodes fresh
//! under it and write back what they change before releasing it, so no
//! stale copy of an inode lives across operations. File data goes to the
//! block device at once; metadata blocks (bitmaps, group descriptors,
//! inode tables, directories, indirect blocks) are cached (bounded) under
//! the same mutex, and those an operation changed are written when it
//! ends ([`Op`]), with the superblock's free counts, so the image is
//! consistent for the host's e2fsck whenever no operation is in progress. The filesystem lives as
//! long as any of its inodes (the mount root included); dropping it
//! releases the device (a loop device set to autoclear detaches then).

mod vfs;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::block::{BlockDevice, Held};
use crate::errno::KResult;
use crate::error;
use crate::fs::types::FileType;

pub use vfs::{mount, mount_root};

const EXT2_MAGIC: u16 = 0xEF53;
const ROOT_INO: u32 = 2;
const NDIR: u64 = 12;

// Feature bits.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const INCOMPAT_LARGEDIR: u32 = 0x4000;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_HUGE_FILE: u32 = 0x8;

/// Incompatible features this driver can read.
const INCOMPAT_READ: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_FLEX_BG
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR;
/// Incompatible features this driver can write.
const INCOMPAT_WRITE: u32 = INCOMPAT_FILETYPE;
/// Read-only-compatible features this driver maintains on write.
const RO_COMPAT_WRITE: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE;

// Inode flags.
const INDEX_FL: u32 = 0x1000;
const EXTENTS_FL: u32 = 0x80000;
const HUGE_FILE_FL: u32 = 0x40000;
const INLINE_DATA_FL: u32 = 0x1000_0000;

/// Most bytes of metadata kept in the cache (per mount).
const CACHE_BYTES: usize = 16 << 20;
/// Most bytes of group descriptors a mount reads (a bound on what an
/// image can make the kernel allocate).
const MAX_GDT_BYTES: u64 = 8 << 20;
/// Bound on a ".." walk (rename's loop check) through a corrupt tree.
const MAX_DEPTH: usize = 4096;
/// Linux's EXT2_LINK_MAX.
const LINK_MAX: u16 = 32000;

/// Logs a corruption once per call site kind and gives EUCLEAN.
fn corrupt(what: &str) -> crate::errno::Errno {
    crate::log::warn(&format!("EXT2-fs error: {what}"));
    crate::errno!(EUCLEAN)
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

/// A listed directory entry: (next position, inode, name, ext2 type).
type DirEntry = (u64, u32, Vec<u8>, u8);

/// Fixed facts of a mounted filesystem, from the superblock.
#[derive(Clone, Debug)]
struct Geometry {
    bs: u64,
    blocks_count: u64,
    inodes_count: u32,
    first_data_block: u64,
    bpg: u64,
    ipg: u32,
    inode_size: usize,
    first_ino: u32,
    desc_size: usize,
    ngroups: u32,
    gdt_block: u64,
    filetype: bool,
    huge_file: bool,
    large_file: bool,
    /// i_extra_isize for new inodes.
    extra_isize: u16,
}

impl Geometry {
    fn ptrs_per_block(&self) -> u64 {
        self.bs / 4
    }
    fn itable_blocks(&self) -> u64 {
        (self.ipg as u64 * self.inode_size as u64).div_ceil(self.bs)
    }
    fn blocks_in_group(&self, g: u32) -> u64 {
        let start = self.first_data_block + g as u64 * self.bpg;
        (self.blocks_count - start).min(self.bpg)
    }
    /// Largest file, in blocks, the indirect map can address.
    fn max_blocks(&self) -> u64 {
        let p = self.ptrs_per_block();
        NDIR + p + p * p + p * p * p
    }
}

/// One group descriptor, decoded.
#[derive(Clone, Copy, Debug, Default)]
struct Group {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    free_blocks: u32,
    free_inodes: u32,
    used_dirs: u32,
}

/// The mutable state; see the module doc.
pub(crate) struct State {
    sb: Vec<u8>,
    gdt: Vec<u8>,
    groups: Vec<Group>,
    cache: HashMap<u64, Vec<u8>>,
    /// Open files per inode (an unlinked inode is freed at last close).
    open: HashMap<u32, usize>,
    /// Inodes with no links left that are still open.
    orphans: HashSet<u32>,
    /// Inodes whose pages the page cache may hold (mmapped files).
    mapped: HashSet<u32>,
    /// Freed inodes whose cached pages must go (after the lock is
    /// released: the page cache calls into the filesystem under its own
    /// lock, so it is never called under ours).
    stale: Vec<u32>,
    /// Metadata blocks changed by the operation in progress (in `cache`),
    /// written out when it ends.
    dirty: std::collections::BTreeSet<u64>,
    /// The superblock changed (free counts).
    sb_dirty: bool,
}

/// One operation on the filesystem: its state, locked. When the
/// operation ends (the Op drops), the metadata it changed is written to
/// the device — each block once, however often it changed — then the lock
/// is released, then stale page-cache pages are dropped.
pub(crate) struct Op<'a> {
    fs: &'a Ext2Fs,
    guard: Option<MutexGuard<'a, State>>,
}

impl std::ops::Deref for Op<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_ref().expect("Op used after drop")
    }
}

impl std::ops::DerefMut for Op<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("Op used after drop")
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.guard.take() else {
            return;
        };
        if let Err(e) = self.fs.commit(&mut st) {
            crate::log::warn(&format!("EXT2-fs: writing metadata: {e:?}"));
        }
        let stale = std::mem::take(&mut st.stale);
        drop(st);
        for ino in stale {
            self.fs.invalidate_ino(ino);
        }
    }
}

/// A mounted ext2 filesystem; see the module doc.
pub struct Ext2Fs {
    held: Held,
    dev_no: (u32, u32),
    geo: Geometry,
    /// Mounted read-only (a remount changes it).
    read_only: std::sync::atomic::AtomicBool,
    /// The image's features let this driver write it.
    writable: bool,
    /// "ext2", "ext3" (a journal) or "ext4" (ext4-only features).
    kind: &'static str,
    state: Mutex<State>,
}

/// An on-disk inode (its raw bytes, `inode_size` long).
#[derive(Clone)]
pub(crate) struct DInode {
    raw: Vec<u8>,
}

impl DInode {
    fn mode(&self) -> u16 {
        le16(&self.raw, 0)
    }
    fn set_mode(&mut self, m: u16) {
        put16(&mut self.raw, 0, m)
    }
    fn ftype(&self) -> FileType {
        FileType::from_mode(self.mode() as u32)
    }
    fn uid(&self) -> u32 {
        le16(&self.raw, 2) as u32 | (le16(&self.raw, 120) as u32) << 16
    }
    fn set_uid(&mut self, u: u32) {
        put16(&mut self.raw, 2, u as u16);
        put16(&mut self.raw, 120, (u >> 16) as u16);
    }
    fn gid(&self) -> u32 {
        le16(&self.raw, 24) as u32 | (le16(&self.raw, 122) as u32) << 16
    }
    fn set_gid(&mut self, g: u32) {
        put16(&mut self.raw, 24, g as u16);
        put16(&mut self.raw, 122, (g >> 16) as u16);
    }
    fn size(&self) -> u64 {
        let lo = le32(&self.raw, 4) as u64;
        if self.ftype() == FileType::Regular {
            lo | (le32(&self.raw, 108) as u64) << 32
        } else {
            lo
        }
    }
    fn set_size(&mut self, s: u64) {
        put32(&mut self.raw, 4, s as u32);
        if self.ftype() == FileType::Regular {
            put32(&mut self.raw, 108, (s >> 32) as u32);
        }
    }
    fn links(&self) -> u16 {
        le16(&self.raw, 26)
    }
    fn set_links(&mut self, n: u16) {
        put16(&mut self.raw, 26, n)
    }
    /// i_blocks in 512-byte units.
    fn blocks512(&self, geo: &Geometry) -> u64 {
        let mut b = le32(&self.raw, 28) as u64;
        if geo.huge_file {
            b |= (le16(&self.raw, 116) as u64) << 32;
            if self.flags() & HUGE_FILE_FL != 0 {
                b *= geo.bs / 512;
            }
        }
        b
    }
    fn add_blocks(&mut self, geo: &Geometry, fs_blocks: i64) {
        let cur = le32(&self.raw, 28) as i64;
        let n = (cur + fs_blocks * (geo.bs / 512) as i64).max(0);
        put32(&mut self.raw, 28, n as u32);
    }
    fn flags(&self) -> u32 {
        le32(&self.raw, 32)
    }
    fn set_flags(&mut self, f: u32) {
        put32(&mut self.raw, 32, f)
    }
    fn block(&self, i: usize) -> u32 {
        le32(&self.raw, 40 + 4 * i)
    }
    fn set_block(&mut self, i: usize, b: u32) {
        put32(&mut self.raw, 40 + 4 * i, b)
    }
    fn iblock_bytes(&self) -> &[u8] {
        &self.raw[40..100]
    }
    fn generation(&self) -> u32 {
        le32(&self.raw, 100)
    }
    fn file_acl(&self) -> u64 {
        le32(&self.raw, 104) as u64 | (le16(&self.raw, 118) as u64) << 32
    }
    fn set_file_acl(&mut self, b: u64) {
        put32(&mut self.raw, 104, b as u32);
        put16(&mut self.raw, 118, (b >> 32) as u16);
    }
    fn extra_isize(&self) -> usize {
        if self.raw.len() > 128 {
            le16(&self.raw, 128) as usize
        } else {
            0
        }
    }
    /// A time: seconds at `off`, the extra word at `xoff` if present.
    fn time(&self, off: usize, xoff: usize) -> (i64, u32) {
        let lo = le32(&self.raw, off) as i32 as i64;
        if xoff + 4 <= 128 + self.extra_isize() && xoff + 4 <= self.raw.len() {
            let x = le32(&self.raw, xoff);
            (lo + (((x & 3) as i64) << 32), x >> 2)
        } else {
            (lo, 0)
        }
    }
    fn set_time(&mut self, off: usize, xoff: usize, t: (i64, u32)) {
        put32(&mut self.raw, off, t.0 as u32);
        if xoff + 4 <= 128 + self.extra_isize() && xoff + 4 <= self.raw.len() {
            let epoch = ((t.0 - t.0 as i32 as i64) >> 32) as u32 & 3;
            put32(&mut self.raw, xoff, epoch | (t.1.min(999_999_999) << 2));
        }
    }
    fn atime(&self) -> (i64, u32) {
        self.time(8, 140)
    }
    fn ctime(&self) -> (i64, u32) {
        self.time(12, 132)
    }
    fn mtime(&self) -> (i64, u32) {
        self.time(16, 136)
    }
    fn set_atime(&mut self, t: (i64, u32)) {
        self.set_time(8, 140, t)
    }
    fn set_ctime(&mut self, t: (i64, u32)) {
        self.set_time(12, 132, t)
    }
    fn set_mtime(&mut self, t: (i64, u32)) {
        self.set_time(16, 136, t)
    }
    fn crtime(&self) -> Option<(i64, u32)> {
        if self.extra_isize() >= 24 && self.raw.len() >= 152 {
            Some(self.time(144, 148))
        } else {
            None
        }
    }
    /// A device node's number (old or new encoding in i_block).
    fn rdev(&self) -> (u32, u32) {
        let old = self.block(0);
        if old != 0 {
            ((old >> 8) & 0xff, old & 0xff)
        } else {
            let n = self.block(1);
            ((n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00))
        }
    }
    fn set_rdev(&mut self, (ma, mi): (u32, u32)) {
        if ma < 256 && mi < 256 {
            self.set_block(0, (ma << 8) | mi);
            self.set_block(1, 0);
        } else {
            self.set_block(0, 0);
            self.set_block(1, (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12));
        }
    }
    /// A fast symlink keeps its text in i_block.
    fn is_fast_symlink(&self, geo: &Geometry) -> bool {
        if self.ftype() != FileType::Symlink || self.flags() & INLINE_DATA_FL != 0 {
            return false;
        }
        let acl_blocks = if self.file_acl() != 0 {
            geo.bs / 512
        } else {
            0
        };
        self.blocks512(geo) == acl_blocks && self.size() < 60
    }
}

fn now() -> (i64, u32) {
    crate::fs::simple::now()
}

/// Whether the directory record at `off` of `blk` is well formed.
fn dirent_at(blk: &[u8], off: usize) -> KResult<(u32, usize, usize, u8)> {
    if off + 8 > blk.len() {
        return Err(corrupt("directory entry past the end of its block"));
    }
    let ino = le32(blk, off);
    let rec_len = le16(blk, off + 4) as usize;
    let name_len = blk[off + 6] as usize;
    let ftype = blk[off + 7];
    if rec_len < 8
        || !rec_len.is_multiple_of(4)
        || off + rec_len > blk.len()
        || (ino != 0 && name_len + 8 > rec_len)
    {
        return Err(corrupt("bad directory entry (rec_len)"));
    }
    Ok((ino, rec_len, name_len, ftype))
}

fn rec_len_for(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

fn dirent_type(t: FileType) -> u8 {
    match t {
        FileType::Regular => 1,
        FileType::Directory => 2,
        FileType::CharDevice => 3,
        FileType::BlockDevice => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

impl Ext2Fs {
    /// Reads and checks the superblock and group descriptors of `held`.
    /// `want_rw`: EROFS if the features allow only reading.
    pub fn open(held: Held, dev_no: (u32, u32), want_rw: bool) -> KResult<Arc<Ext2Fs>> {
        let dev = held.dev.clone();
        let mut sb = vec![0u8; 1024];
        if crate::block::read_bytes(dev.as_ref(), 1024, &mut sb)? != 1024 {
            return Err(mount_err("device too small for an ext2 superblock"));
        }
        if le16(&sb, 56) != EXT2_MAGIC {
            return Err(mount_err("no ext2/ext3/ext4 superblock (bad magic)"));
        }
        let log_bs = le32(&sb, 24);
        if log_bs > 6 {
            return Err(mount_err("bad block size"));
        }
        let bs = 1024u64 << log_bs;
        let rev = le32(&sb, 76);
        let (compat, incompat, ro_compat) = if rev >= 1 {
            (le32(&sb, 92), le32(&sb, 96), le32(&sb, 100))
        } else {
            (0, 0, 0)
        };
        if incompat & !INCOMPAT_READ != 0 {
            let what = if incompat & INCOMPAT_RECOVER != 0 {
                "the journal needs recovery (replay it with e2fsck first)".to_string()
            } else {
                format!(
                    "unsupported incompatible features ({:#x})",
                    incompat & !INCOMPAT_READ
                )
            };
            crate::log::warn(&format!(
                "EXT4-fs ({}): couldn't mount: {what}",
                dev_name(dev_no)
            ));
            return error!(EINVAL);
        }
        let writable = incompat & !INCOMPAT_WRITE == 0 && ro_compat & !RO_COMPAT_WRITE == 0;
        if want_rw && !writable {
            crate::log::warn(&format!(
                "EXT4-fs ({}): couldn't mount RDWR because of features ruml does not write (incompat {:#x}, ro_compat {:#x}); mount it read-only",
                dev_name(dev_no),
                incompat & !INCOMPAT_WRITE,
                ro_compat & !RO_COMPAT_WRITE
            ));
            return error!(EROFS);
        }
        let blocks_lo = le32(&sb, 4) as u64;
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = if is64 {
            blocks_lo | (le32(&sb, 336) as u64) << 32
        } else {
            blocks_lo
        };
        let inodes_count = le32(&sb, 0);
        let first_data_block = le32(&sb, 20) as u64;
        let bpg = le32(&sb, 32) as u64;
        let ipg = le32(&sb, 40);
        let (inode_size, first_ino) = if rev >= 1 {
            (le16(&sb, 88) as usize, le32(&sb, 84))
        } else {
            (128, 11)
        };
        let desc_size = if is64 { le16(&sb, 254) as usize } else { 32 };
        if bpg == 0 || bpg > 8 * bs || ipg == 0 || ipg as u64 > 8 * bs {
            return Err(mount_err("bad blocks or inodes per group"));
        }
        if first_data_block != (bs == 1024) as u64 || blocks_count <= first_data_block {
            return Err(mount_err("bad first data block or block count"));
        }
        if !(128..=bs as usize).contains(&inode_size) || !inode_size.is_power_of_two() {
            return Err(mount_err("bad inode size"));
        }
        if is64 && (!(64..=1024).contains(&desc_size) || !desc_size.is_power_of_two()) {
            return Err(mount_err("bad group descriptor size"));
        }
        let ngroups64 = (blocks_count - first_data_block).div_ceil(bpg);
        if ngroups64 > u32::MAX as u64 || ngroups64 * ipg as u64 != inodes_count as u64 {
            return Err(mount_err("inode count does not match the groups"));
        }
        let ngroups = ngroups64 as u32;
        if first_ino < 11 || first_ino > inodes_count {
            return Err(mount_err("bad first inode"));
        }
        let dev_size = dev.size();
        if blocks_count
            .checked_mul(bs)
            .is_none_or(|end| end > dev_size)
        {
            crate::log::warn(&format!(
                "EXT4-fs ({}): bad geometry: block count {blocks_count} exceeds size of device ({} blocks)",
                dev_name(dev_no),
                dev_size / bs
            ));
            return error!(EINVAL);
        }
        let extra = if inode_size > 128 {
            let want = if rev >= 1 { le16(&sb, 0x15E) } else { 0 };
            let want = if want >= 4 { want } else { 32 };
            want.min((inode_size - 128) as u16) & !3
        } else {
            0
        };
        let geo = Geometry {
            bs,
            blocks_count,
            inodes_count,
            first_data_block,
            bpg,
            ipg,
            inode_size,
            first_ino,
            desc_size,
            ngroups,
            gdt_block: first_data_block + 1,
            filetype: incompat & INCOMPAT_FILETYPE != 0,
            huge_file: ro_compat & RO_COMPAT_HUGE_FILE != 0,
            large_file: ro_compat & RO_COMPAT_LARGE_FILE != 0,
            extra_isize: extra,
        };
        let gdt_len = ngroups as u64 * desc_size as u64;
        if gdt_len > MAX_GDT_BYTES || geo.gdt_block + gdt_len.div_ceil(bs) > blocks_count {
            return Err(mount_err("group descriptors do not fit"));
        }
        let mut gdt = vec![0u8; gdt_len as usize];
        crate::block::read_bytes(dev.as_ref(), geo.gdt_block * bs, &mut gdt)?;
        let mut groups = Vec::with_capacity(ngroups as usize);
        for g in 0..ngroups as usize {
            let d = &gdt[g * desc_size..(g + 1) * desc_size];
            let hi = |o: usize| if is64 { le32(d, o) as u64 } else { 0 };
            let hi16 = |o: usize| if is64 { le16(d, o) as u32 } else { 0 };
            let grp = Group {
                block_bitmap: le32(d, 0) as u64 | hi(32) << 32,
                inode_bitmap: le32(d, 4) as u64 | hi(36) << 32,
                inode_table: le32(d, 8) as u64 | hi(40) << 32,
                free_blocks: le16(d, 12) as u32 | hi16(44) << 16,
                free_inodes: le16(d, 14) as u32 | hi16(46) << 16,
                used_dirs: le16(d, 16) as u32 | hi16(48) << 16,
            };
            let in_fs = |b: u64| b >= first_data_block && b < blocks_count;
            if !in_fs(grp.block_bitmap)
                || !in_fs(grp.inode_bitmap)
                || !in_fs(grp.inode_table)
                || grp.inode_table + geo.itable_blocks() > blocks_count
            {
                return Err(mount_err(&format!(
                    "group {g}'s bitmaps or inode table lie outside the filesystem"
                )));
            }
            groups.push(grp);
        }
        let read_only = !want_rw;
        if compat & COMPAT_HAS_JOURNAL != 0 && !read_only {
            crate::log::info(&format!(
                "EXT4-fs ({}): mounted without journaling (the journal is clean and left alone)",
                dev_name(dev_no)
            ));
        }
        let fs = Arc::new(Ext2Fs {
            held,
            dev_no,
            geo,
            read_only: std::sync::atomic::AtomicBool::new(read_only),
            writable,
            kind: if incompat & !INCOMPAT_FILETYPE != 0 {
                "ext4"
            } else if compat & COMPAT_HAS_JOURNAL != 0 {
                "ext3"
            } else {
                "ext2"
            },
            state: Mutex::new(State {
                sb,
                gdt,
                groups,
                cache: HashMap::new(),
                open: HashMap::new(),
                orphans: HashSet::new(),
                mapped: HashSet::new(),
                stale: Vec::new(),
                dirty: Default::default(),
                sb_dirty: false,
            }),
        });
        // The root must be a directory.
        {
            let mut st = fs.lock();
            let root = fs.read_inode(&mut st, ROOT_INO)?;
            if root.ftype() != FileType::Directory || root.links() == 0 {
                return Err(mount_err("the root inode is not a directory"));
            }
            if !read_only {
                let t = now();
                let cnt = le16(&st.sb, 52).wrapping_add(1);
                put16(&mut st.sb, 52, cnt);
                put32(&mut st.sb, 44, t.0 as u32);
                fs.write_super(&mut st)?;
            }
        }
        Ok(fs)
    }

    /// Whether writes are refused.
    fn ro(&self) -> bool {
        self.read_only.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// mount -o remount,ro / remount,rw.
    fn remount(&self, read_only: bool) -> KResult<()> {
        if !read_only && (!self.writable || self.held.hold.0.read_only()) {
            return error!(EROFS);
        }
        let st = self.lock();
        drop(st); // commits what is pending
        self.held.dev.flush()?;
        self.read_only
            .store(read_only, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn lock(&self) -> Op<'_> {
        Op {
            fs: self,
            guard: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Writes the dirty metadata out (at the end of each operation).
    fn commit(&self, st: &mut State) -> KResult<()> {
        if self.ro() {
            st.dirty.clear();
            st.sb_dirty = false;
            return Ok(());
        }
        let dirty = std::mem::take(&mut st.dirty);
        for b in dirty {
            if let Some(v) = st.cache.get(&b) {
                self.dev().write_sectors(b * self.geo.bs / 512, v)?;
            }
        }
        if st.sb_dirty {
            st.sb_dirty = false;
            put32(&mut st.sb, 48, now().0 as u32);
            crate::block::write_bytes(self.dev(), 1024, &st.sb)?;
            st.cache.remove(&(1024 / self.geo.bs));
        }
        Ok(())
    }

    fn dev(&self) -> &dyn BlockDevice {
        self.held.dev.as_ref()
    }

    // --- blocks -----------------------------------------------------------

    fn check_block(&self, b: u64) -> KResult<()> {
        if b < self.geo.first_data_block || b >= self.geo.blocks_count {
            return Err(corrupt(&format!("block {b} outside the filesystem")));
        }
        Ok(())
    }

    /// A metadata block (cached).
    fn read_meta(&self, st: &mut State, b: u64) -> KResult<Vec<u8>> {
        self.check_block(b)?;
        if let Some(v) = st.cache.get(&b) {
            return Ok(v.clone());
        }
        let mut v = vec![0u8; self.geo.bs as usize];
        self.dev().read_sectors(b * self.geo.bs / 512, &mut v)?;
        if st.cache.len() >= CACHE_BYTES / self.geo.bs as usize {
            // Clean blocks go; dirty ones stay until the operation ends.
            let State { cache, dirty, .. } = st;
            cache.retain(|k, _| dirty.contains(k));
        }
        st.cache.insert(b, v.clone());
        Ok(v)
    }

    /// A data block into `buf` (not cached, but a cached copy wins).
    fn read_data(&self, st: &State, b: u64, buf: &mut [u8]) -> KResult<()> {
        self.check_block(b)?;
        if let Some(v) = st.cache.get(&b) {
            buf.copy_from_slice(v);
            return Ok(());
        }
        self.dev().read_sectors(b * self.geo.bs / 512, buf)
    }

    /// A metadata block (bitmaps, inode table, directories, indirect
    /// blocks): into the cache, written when the operation ends.
    fn write_block(&self, st: &mut State, b: u64, data: &[u8]) -> KResult<()> {
        if self.ro() {
            return error!(EROFS);
        }
        self.check_block(b)?;
        st.cache.insert(b, data.to_vec());
        st.dirty.insert(b);
        Ok(())
    }

    /// A file data block: to the device at once (a cached copy follows).
    fn write_data(&self, st: &mut State, b: u64, data: &[u8]) -> KResult<()> {
        if self.ro() {
            return error!(EROFS);
        }
        self.check_block(b)?;
        self.dev().write_sectors(b * self.geo.bs / 512, data)?;
        if let Some(v) = st.cache.get_mut(&b) {
            v.copy_from_slice(data);
        }
        Ok(())
    }

    fn write_super(&self, st: &mut State) -> KResult<()> {
        st.sb_dirty = true;
        Ok(())
    }

    fn write_group(&self, st: &mut State, g: u32) -> KResult<()> {
        let ds = self.geo.desc_size;
        let grp = st.groups[g as usize];
        let off = g as usize * ds;
        {
            let d = &mut st.gdt[off..off + ds];
            put16(d, 12, grp.free_blocks as u16);
            put16(d, 14, grp.free_inodes as u16);
            put16(d, 16, grp.used_dirs as u16);
        }
        let byte = self.geo.gdt_block * self.geo.bs + off as u64;
        let blk = byte / self.geo.bs;
        let mut b = self.read_meta(st, blk)?;
        let in_blk = (byte % self.geo.bs) as usize;
        b[in_blk..in_blk + ds].copy_from_slice(&st.gdt[off..off + ds]);
        self.write_block(st, blk, &b)
    }

    fn free_counts(&self, st: &mut State, dblocks: i64, dinodes: i64) {
        let fb = (le32(&st.sb, 12) as i64 + dblocks).max(0) as u32;
        let fi = (le32(&st.sb, 16) as i64 + dinodes).max(0) as u32;
        put32(&mut st.sb, 12, fb);
        put32(&mut st.sb, 16, fi);
    }

    /// Allocates a block near `goal`.
    fn alloc_block(&self, st: &mut State, goal: u64) -> KResult<u64> {
        let geo = &self.geo;
        let goal = if goal >= geo.first_data_block && goal < geo.blocks_count {
            goal
        } else {
            geo.first_data_block
        };
        let g0 = ((goal - geo.first_data_block) / geo.bpg) as u32;
        for i in 0..geo.ngroups {
            let g = (g0 + i) % geo.ngroups;
            if st.groups[g as usize].free_blocks == 0 {
                continue;
            }
            let start_bit = if i == 0 {
                (goal - geo.first_data_block) % geo.bpg
            } else {
                0
            };
            let bm_blk = st.groups[g as usize].block_bitmap;
            let mut bm = self.read_meta(st, bm_blk)?;
            let n = geo.blocks_in_group(g);
            let found = (start_bit..n)
                .chain(0..start_bit)
                .find(|&bit| bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0);
            let Some(bit) = found else {
                continue;
            };
            let b = geo.first_data_block + g as u64 * geo.bpg + bit;
            bm[(bit / 8) as usize] |= 1 << (bit % 8);
            self.write_block(st, bm_blk, &bm)?;
            st.groups[g as usize].free_blocks -= 1;
            self.write_group(st, g)?;
            self.free_counts(st, -1, 0);
            self.write_super(st)?;
            return Ok(b);
        }
        error!(ENOSPC)
    }

    fn free_block(&self, st: &mut State, b: u64) -> KResult<()> {
        self.check_block(b)?;
        let geo = &self.geo;
        let g = ((b - geo.first_data_block) / geo.bpg) as u32;
        let bit = (b - geo.first_data_block) % geo.bpg;
        let bm_blk = st.groups[g as usize].block_bitmap;
        let mut bm = self.read_meta(st, bm_blk)?;
        if bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return Err(corrupt(&format!(
                "freeing block {b}, which is already free"
            )));
        }
        bm[(bit / 8) as usize] &= !(1 << (bit % 8));
        self.write_block(st, bm_blk, &bm)?;
        st.cache.remove(&b);
        st.dirty.remove(&b);
        st.groups[g as usize].free_blocks += 1;
        self.write_group(st, g)?;
        self.free_counts(st, 1, 0);
        self.write_super(st)
    }

    fn alloc_inode(&self, st: &mut State, near: u32, dir: bool) -> KResult<u32> {
        let geo = &self.geo;
        let g0 = (near.saturating_sub(1)) / geo.ipg;
        for i in 0..geo.ngroups {
            let g = (g0 + i) % geo.ngroups;
            if st.groups[g as usize].free_inodes == 0 {
                continue;
            }
            let bm_blk = st.groups[g as usize].inode_bitmap;
            let mut bm = self.read_meta(st, bm_blk)?;
            let found = (0..geo.ipg).find(|&bit| {
                let ino = g * geo.ipg + bit + 1;
                ino >= geo.first_ino && bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0
            });
            let Some(bit) = found else {
                continue;
            };
            bm[(bit / 8) as usize] |= 1 << (bit % 8);
            self.write_block(st, bm_blk, &bm)?;
            let grp = &mut st.groups[g as usize];
            grp.free_inodes -= 1;
            if dir {
                grp.used_dirs += 1;
            }
            self.write_group(st, g)?;
            self.free_counts(st, 0, -1);
            self.write_super(st)?;
            return Ok(g * geo.ipg + bit + 1);
        }
        error!(ENOSPC)
    }

    fn free_inode_bit(&self, st: &mut State, ino: u32, dir: bool) -> KResult<()> {
        let geo = &self.geo;
        let g = (ino - 1) / geo.ipg;
        let bit = (ino - 1) % geo.ipg;
        let bm_blk = st.groups[g as usize].inode_bitmap;
        let mut bm = self.read_meta(st, bm_blk)?;
        if bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return Err(corrupt(&format!(
                "freeing inode {ino}, which is already free"
            )));
        }
        bm[(bit / 8) as usize] &= !(1 << (bit % 8));
        self.write_block(st, bm_blk, &bm)?;
        let grp = &mut st.groups[g as usize];
        grp.free_inodes += 1;
        if dir {
            grp.used_dirs = grp.used_dirs.saturating_sub(1);
        }
        self.write_group(st, g)?;
        self.free_counts(st, 0, 1);
        self.write_super(st)
    }

    // --- inodes -----------------------------------------------------------

    fn inode_loc(&self, st: &State, ino: u32) -> KResult<(u64, usize)> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(corrupt(&format!("inode number {ino} out of range")));
        }
        let g = (ino - 1) / self.geo.ipg;
        let idx = ((ino - 1) % self.geo.ipg) as u64;
        let byte = idx * self.geo.inode_size as u64;
        let blk = st.groups[g as usize].inode_table + byte / self.geo.bs;
        Ok((blk, (byte % self.geo.bs) as usize))
    }

    fn read_inode(&self, st: &mut State, ino: u32) -> KResult<DInode> {
        let (blk, off) = self.inode_loc(st, ino)?;
        let b = self.read_meta(st, blk)?;
        let raw = b[off..off + self.geo.inode_size].to_vec();
        let i = DInode { raw };
        if i.extra_isize() > self.geo.inode_size.saturating_sub(128) {
            return Err(corrupt(&format!("inode {ino} has a bad extra size")));
        }
        let max = if i.flags() & EXTENTS_FL != 0 {
            (1u64 << 32) * self.geo.bs
        } else {
            self.geo.max_blocks() * self.geo.bs
        };
        if i.mode() != 0 && i.size() > max {
            return Err(corrupt(&format!("inode {ino} has a bad size")));
        }
        Ok(i)
    }

    fn write_inode(&self, st: &mut State, ino: u32, i: &DInode) -> KResult<()> {
        let (blk, off) = self.inode_loc(st, ino)?;
        let mut b = self.read_meta(st, blk)?;
        b[off..off + self.geo.inode_size].copy_from_slice(&i.raw);
        self.write_block(st, blk, &b)
    }

    /// A live inode (links > 0 or open), ENOENT if it was deleted.
    fn live_inode(&self, st: &mut State, ino: u32) -> KResult<DInode> {
        let i = self.read_inode(st, ino)?;
        if i.links() == 0 && !st.orphans.contains(&ino) || i.mode() == 0 {
            return error!(ENOENT);
        }
        Ok(i)
    }

    // --- block maps -------------------------------------------------------

    /// The physical block of logical block `lblk` (None: a hole).
    fn bmap(&self, st: &mut State, i: &DInode, lblk: u64) -> KResult<Option<u64>> {
        if i.flags() & EXTENTS_FL != 0 {
            return self.extent_lookup(st, i, lblk);
        }
        if i.flags() & INLINE_DATA_FL != 0 {
            return Err(corrupt("inline data"));
        }
        let p = self.geo.ptrs_per_block();
        let (root, depth, mut rel) = if lblk < NDIR {
            return Ok(match i.block(lblk as usize) {
                0 => None,
                b => {
                    self.check_block(b as u64)?;
                    Some(b as u64)
                }
            });
        } else if lblk < NDIR + p {
            (i.block(12), 1, lblk - NDIR)
        } else if lblk < NDIR + p + p * p {
            (i.block(13), 2, lblk - NDIR - p)
        } else if lblk < self.geo.max_blocks() {
            (i.block(14), 3, lblk - NDIR - p - p * p)
        } else {
            return Ok(None);
        };
        let mut cur = root as u64;
        for d in (0..depth).rev() {
            if cur == 0 {
                return Ok(None);
            }
            let blk = self.read_meta(st, cur)?;
            let span = p.pow(d);
            let idx = (rel / span) as usize;
            rel %= span;
            cur = le32(&blk, idx * 4) as u64;
        }
        if cur == 0 {
            return Ok(None);
        }
        self.check_block(cur)?;
        Ok(Some(cur))
    }

    fn extent_lookup(&self, st: &mut State, i: &DInode, lblk: u64) -> KResult<Option<u64>> {
        let mut node: Vec<u8> = i.iblock_bytes().to_vec();
        for _ in 0..6 {
            if le16(&node, 0) != 0xF30A {
                return Err(corrupt("bad extent header"));
            }
            let entries = le16(&node, 2) as usize;
            let depth = le16(&node, 6);
            if 12 + entries * 12 > node.len() || depth > 5 {
                return Err(corrupt("bad extent header counts"));
            }
            if depth == 0 {
                for e in 0..entries {
                    let o = 12 + e * 12;
                    let start = le32(&node, o) as u64;
                    let mut len = le16(&node, o + 4) as u64;
                    let uninit = len > 32768;
                    if uninit {
                        len -= 32768;
                    }
                    if lblk >= start && lblk < start + len {
                        if uninit {
                            return Ok(None);
                        }
                        let phys = (le16(&node, o + 6) as u64) << 32 | le32(&node, o + 8) as u64;
                        let b = phys + (lblk - start);
                        self.check_block(b)?;
                        return Ok(Some(b));
                    }
                }
                return Ok(None);
            }
            let mut child = None;
            for e in 0..entries {
                let o = 12 + e * 12;
                if le32(&node, o) as u64 <= lblk {
                    child = Some((le16(&node, o + 8) as u64) << 32 | le32(&node, o + 4) as u64);
                } else {
                    break;
                }
            }
            let Some(c) = child else {
                return Ok(None);
            };
            node = self.read_meta(st, c)?;
        }
        Err(corrupt("extent tree too deep"))
    }

    /// The physical block of `lblk`, allocating it (and indirect blocks)
    /// if it is a hole. Returns (block, newly allocated). Updates `i`'s
    /// block pointers and i_blocks; the caller writes `i` back.
    fn bmap_alloc(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        lblk: u64,
    ) -> KResult<(u64, bool)> {
        if i.flags() & (EXTENTS_FL | INLINE_DATA_FL) != 0 {
            return error!(EROFS);
        }
        let p = self.geo.ptrs_per_block();
        let group_goal =
            self.geo.first_data_block + ((ino - 1) / self.geo.ipg) as u64 * self.geo.bpg;
        // Prefer the block after the previous logical block.
        let goal = if lblk > 0 {
            self.bmap(st, i, lblk - 1)?
                .map(|b| b + 1)
                .unwrap_or(group_goal)
        } else {
            group_goal
        };
        if lblk < NDIR {
            let b = i.block(lblk as usize);
            if b != 0 {
                self.check_block(b as u64)?;
                return Ok((b as u64, false));
            }
            let nb = self.alloc_block(st, goal)?;
            i.set_block(lblk as usize, nb as u32);
            i.add_blocks(&self.geo, 1);
            return Ok((nb, true));
        }
        let (slot, depth, mut rel) = if lblk < NDIR + p {
            (12, 1, lblk - NDIR)
        } else if lblk < NDIR + p + p * p {
            (13, 2, lblk - NDIR - p)
        } else if lblk < self.geo.max_blocks() {
            (14, 3, lblk - NDIR - p - p * p)
        } else {
            return error!(EFBIG);
        };
        let zero = vec![0u8; self.geo.bs as usize];
        let mut cur = i.block(slot) as u64;
        if cur == 0 {
            cur = self.alloc_block(st, goal)?;
            self.write_block(st, cur, &zero)?;
            i.set_block(slot, cur as u32);
            i.add_blocks(&self.geo, 1);
        }
        for d in (0..depth).rev() {
            let mut blk = self.read_meta(st, cur)?;
            let span = p.pow(d);
            let idx = (rel / span) as usize;
            rel %= span;
            let next = le32(&blk, idx * 4) as u64;
            if next != 0 {
                self.check_block(next)?;
                if d == 0 {
                    return Ok((next, false));
                }
                cur = next;
                continue;
            }
            let nb = self.alloc_block(st, goal)?;
            i.add_blocks(&self.geo, 1);
            if d > 0 {
                self.write_block(st, nb, &zero)?;
            }
            put32(&mut blk, idx * 4, nb as u32);
            self.write_block(st, cur, &blk)?;
            if d == 0 {
                return Ok((nb, true));
            }
            cur = nb;
        }
        Err(corrupt("indirect map walk"))
    }

    /// Frees every block of `i` at logical index >= `keep` (indirect
    /// blocks that empty out too). The caller writes `i` back.
    fn truncate_blocks(&self, st: &mut State, i: &mut DInode, keep: u64) -> KResult<()> {
        if i.flags() & (EXTENTS_FL | INLINE_DATA_FL) != 0 {
            return error!(EROFS);
        }
        if i.ftype() == FileType::Symlink && i.is_fast_symlink(&self.geo) {
            return Ok(());
        }
        for l in keep.min(NDIR)..NDIR {
            let b = i.block(l as usize);
            if b != 0 {
                self.free_block(st, b as u64)?;
                i.add_blocks(&self.geo, -1);
                i.set_block(l as usize, 0);
            }
        }
        let p = self.geo.ptrs_per_block();
        let mut base = NDIR;
        for (slot, depth) in [(12usize, 1u32), (13, 2), (14, 3)] {
            let span = p.pow(depth);
            let b = i.block(slot) as u64;
            if b != 0 && base + span > keep {
                let mut freed = 0i64;
                if self.trunc_tree(st, b, depth, base, keep, &mut freed, 0)? {
                    self.free_block(st, b)?;
                    freed += 1;
                    i.set_block(slot, 0);
                }
                i.add_blocks(&self.geo, -freed);
            }
            base += span;
        }
        Ok(())
    }

    /// Frees the part of the indirect tree at `blk` (covering logical
    /// blocks from `base`, `depth` levels) at or past `keep`. Returns
    /// whether `blk` itself is now empty (the caller frees it).
    #[allow(clippy::too_many_arguments)]
    fn trunc_tree(
        &self,
        st: &mut State,
        blk: u64,
        depth: u32,
        base: u64,
        keep: u64,
        freed: &mut i64,
        level: u32,
    ) -> KResult<bool> {
        if level > 3 {
            return Err(corrupt("indirect tree too deep"));
        }
        let p = self.geo.ptrs_per_block();
        let span = p.pow(depth - 1);
        let mut data = self.read_meta(st, blk)?;
        let mut changed = false;
        for idx in 0..p as usize {
            let c = le32(&data, idx * 4) as u64;
            if c == 0 {
                continue;
            }
            let cbase = base + idx as u64 * span;
            if cbase + span <= keep {
                continue;
            }
            let empty = if depth == 1 {
                true
            } else {
                self.trunc_tree(st, c, depth - 1, cbase, keep, freed, level + 1)?
            };
            if empty {
                self.free_block(st, c)?;
                *freed += 1;
                put32(&mut data, idx * 4, 0);
                changed = true;
            }
        }
        let empty = data.iter().all(|&b| b == 0);
        if changed && !empty {
            self.write_block(st, blk, &data)?;
        }
        Ok(empty)
    }

    // --- file data --------------------------------------------------------

    fn read_file(&self, st: &mut State, i: &DInode, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let size = i.size();
        if off >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - off) as usize;
        let bs = self.geo.bs;
        let mut done = 0usize;
        let mut tmp = vec![0u8; bs as usize];
        while done < len {
            let pos = off + done as u64;
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            let take = (bs as usize - in_blk).min(len - done);
            match self.bmap(st, i, lblk)? {
                Some(b) if in_blk == 0 && take == bs as usize => {
                    self.read_data(st, b, &mut buf[done..done + take])?;
                }
                Some(b) => {
                    self.read_data(st, b, &mut tmp)?;
                    buf[done..done + take].copy_from_slice(&tmp[in_blk..in_blk + take]);
                }
                None => buf[done..done + take].fill(0),
            }
            done += take;
        }
        Ok(len)
    }

    fn write_file(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        off: u64,
        data: &[u8],
    ) -> KResult<usize> {
        let bs = self.geo.bs;
        let end = off
            .checked_add(data.len() as u64)
            .ok_or(crate::errno!(EFBIG))?;
        let max = if self.geo.large_file {
            self.geo.max_blocks() * bs
        } else {
            (1u64 << 31) - 1
        };
        if end > max {
            if off >= max {
                return error!(EFBIG);
            }
            return self.write_file(st, ino, i, off, &data[..(max - off) as usize]);
        }
        let mut done = 0usize;
        let mut tmp = vec![0u8; bs as usize];
        let mut result = Ok(());
        while done < data.len() {
            let pos = off + done as u64;
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            let take = (bs as usize - in_blk).min(data.len() - done);
            let (b, fresh) = match self.bmap_alloc(st, ino, i, lblk) {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if take == bs as usize {
                self.write_data(st, b, &data[done..done + take])?;
            } else {
                if fresh {
                    tmp.fill(0);
                } else {
                    self.read_data(st, b, &mut tmp)?;
                }
                tmp[in_blk..in_blk + take].copy_from_slice(&data[done..done + take]);
                self.write_data(st, b, &tmp)?;
            }
            done += take;
        }
        if off + done as u64 > i.size() {
            i.set_size(off + done as u64);
        }
        if done > 0 {
            let t = now();
            i.set_mtime(t);
            i.set_ctime(t);
        }
        self.write_inode(st, ino, i)?;
        if done == 0 {
            result?;
        }
        Ok(done)
    }

    /// Truncates (or extends, sparsely) to `len`.
    fn set_len(&self, st: &mut State, ino: u32, i: &mut DInode, len: u64) -> KResult<()> {
        let bs = self.geo.bs;
        if len > self.geo.max_blocks() * bs {
            return error!(EFBIG);
        }
        let old = i.size();
        if len < old {
            self.truncate_blocks(st, i, len.div_ceil(bs))?;
            // Zero the tail of the last kept block: a later extension
            // must read zeros there.
            if !len.is_multiple_of(bs) {
                if let Some(b) = self.bmap(st, i, len / bs)? {
                    let mut tmp = vec![0u8; bs as usize];
                    self.read_data(st, b, &mut tmp)?;
                    tmp[(len % bs) as usize..].fill(0);
                    self.write_data(st, b, &tmp)?;
                }
            }
        }
        i.set_size(len);
        let t = now();
        i.set_mtime(t);
        i.set_ctime(t);
        self.write_inode(st, ino, i)
    }

    /// Frees an inode with no links left: its blocks, xattr block, bit.
    fn evict(&self, st: &mut State, ino: u32) -> KResult<()> {
        let mut i = self.read_inode(st, ino)?;
        let dir = i.ftype() == FileType::Directory;
        if !(i.ftype() == FileType::Symlink && i.is_fast_symlink(&self.geo))
            && matches!(
                i.ftype(),
                FileType::Regular | FileType::Directory | FileType::Symlink
            )
        {
            self.truncate_blocks(st, &mut i, 0)?;
        }
        let acl = i.file_acl();
        if acl != 0 {
            self.check_block(acl)?;
            let mut b = self.read_meta(st, acl)?;
            if le32(&b, 0) == 0xEA02_0000 && le32(&b, 4) > 1 {
                let rc = le32(&b, 4) - 1;
                put32(&mut b, 4, rc);
                self.write_block(st, acl, &b)?;
            } else {
                self.free_block(st, acl)?;
            }
            i.add_blocks(&self.geo, -1);
            i.set_file_acl(0);
        }
        i.set_size(0);
        i.set_links(0);
        put32(&mut i.raw, 20, now().0 as u32); // dtime
        self.write_inode(st, ino, &i)?;
        st.orphans.remove(&ino);
        if st.mapped.remove(&ino) {
            st.stale.push(ino);
        }
        self.free_inode_bit(st, ino, dir)
    }

    /// Releases the lock, then drops the page-cache pages of inodes freed
    /// under it (a reused inode number must not see old pages).
    fn unlock<T>(&self, st: Op<'_>, r: KResult<T>) -> KResult<T> {
        drop(st);
        r
    }

    fn invalidate_ino(&self, ino: u32) {
        if crate::kernel_booted() {
            let dev = crate::fs::types::encode_dev(self.dev_no.0, self.dev_no.1);
            crate::kernel().page_cache.invalidate((dev, ino as u64));
        }
    }

    /// Drops one link of `ino`; frees it when none are left and it is
    /// not open.
    fn drop_link(&self, st: &mut State, ino: u32, all: bool) -> KResult<()> {
        let mut i = self.read_inode(st, ino)?;
        let n = if all { 0 } else { i.links().saturating_sub(1) };
        i.set_links(n);
        i.set_ctime(now());
        self.write_inode(st, ino, &i)?;
        if n == 0 {
            if st.open.get(&ino).copied().unwrap_or(0) > 0 {
                st.orphans.insert(ino);
            } else {
                self.evict(st, ino)?;
            }
        }
        Ok(())
    }

    fn adjust_links(&self, st: &mut State, ino: u32, delta: i32) -> KResult<()> {
        let mut i = self.read_inode(st, ino)?;
        let n = (i.links() as i32 + delta).clamp(0, u16::MAX as i32) as u16;
        i.set_links(n);
        let t = now();
        i.set_ctime(t);
        i.set_mtime(t);
        self.write_inode(st, ino, &i)
    }

    // --- directories ------------------------------------------------------

    /// Calls `f(block_index, block_bytes)` for each block of directory
    /// `i` until it returns Some.
    fn dir_blocks<T>(
        &self,
        st: &mut State,
        i: &DInode,
        mut f: impl FnMut(&mut State, u64, u64, &[u8]) -> KResult<Option<T>>,
    ) -> KResult<Option<T>> {
        let bs = self.geo.bs;
        let n = i.size().div_ceil(bs);
        if n > (1 << 32) {
            return Err(corrupt("directory too large"));
        }
        for l in 0..n {
            let Some(b) = self.bmap(st, i, l)? else {
                continue;
            };
            let data = self.read_meta(st, b)?;
            if let Some(r) = f(st, l, b, &data)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Looks `name` up in directory `dir`: (inode, d_type byte).
    fn dir_find(&self, st: &mut State, dir: &DInode, name: &[u8]) -> KResult<Option<(u32, u8)>> {
        self.dir_blocks(st, dir, |_, _, _, blk| {
            let mut off = 0;
            while off < blk.len() {
                let (ino, rec, nl, ft) = dirent_at(blk, off)?;
                if ino != 0 && nl == name.len() && &blk[off + 8..off + 8 + nl] == name {
                    return Ok(Some((ino, ft)));
                }
                off += rec;
            }
            Ok(None)
        })
    }

    /// Entries from byte position `pos`: (next position, ino, name, type).
    fn dir_list(
        &self,
        st: &mut State,
        dir: &DInode,
        pos: u64,
        max: usize,
    ) -> KResult<Vec<DirEntry>> {
        let bs = self.geo.bs;
        let mut out = Vec::new();
        let mut l = pos / bs;
        let n = dir.size().div_ceil(bs);
        let mut start = (pos % bs) as usize;
        while l < n && out.len() < max {
            if let Some(b) = self.bmap(st, dir, l)? {
                let blk = self.read_meta(st, b)?;
                let mut off = 0;
                while off < blk.len() {
                    let (ino, rec, nl, ft) = dirent_at(&blk, off)?;
                    if off >= start && ino != 0 {
                        out.push((
                            l * bs + (off + rec) as u64,
                            ino,
                            blk[off + 8..off + 8 + nl].to_vec(),
                            ft,
                        ));
                    }
                    off += rec;
                }
            }
            start = 0;
            l += 1;
        }
        Ok(out)
    }

    /// Adds `name` -> `ino` to directory `dir_ino`.
    fn dir_add(
        &self,
        st: &mut State,
        dir_ino: u32,
        name: &[u8],
        ino: u32,
        t: FileType,
    ) -> KResult<()> {
        let need = rec_len_for(name.len());
        let ft = if self.geo.filetype { dirent_type(t) } else { 0 };
        let mut dir = self.read_inode(st, dir_ino)?;
        let bs = self.geo.bs as usize;
        let write_entry = |blk: &mut [u8], off: usize, rec: usize| {
            put32(blk, off, ino);
            put16(blk, off + 4, rec as u16);
            blk[off + 6] = name.len() as u8;
            blk[off + 7] = ft;
            blk[off + 8..off + 8 + name.len()].copy_from_slice(name);
        };
        let slot = self.dir_blocks(st, &dir, |_, _, b, blk| {
            let mut off = 0;
            while off < blk.len() {
                let (eino, rec, nl, _) = dirent_at(blk, off)?;
                let used = if eino == 0 { 0 } else { rec_len_for(nl) };
                if rec - used >= need {
                    return Ok(Some((b, off, used, rec)));
                }
                off += rec;
            }
            Ok(None)
        })?;
        if let Some((b, off, used, rec)) = slot {
            let mut blk = self.read_meta(st, b)?;
            if used == 0 {
                write_entry(&mut blk, off, rec);
            } else {
                put16(&mut blk, off + 4, used as u16);
                write_entry(&mut blk, off + used, rec - used);
            }
            self.write_block(st, b, &blk)?;
        } else {
            // A new block at the end.
            let l = dir.size() / bs as u64;
            let (b, _) = self.bmap_alloc(st, dir_ino, &mut dir, l)?;
            let mut blk = vec![0u8; bs];
            write_entry(&mut blk, 0, bs);
            self.write_block(st, b, &blk)?;
            dir.set_size((l + 1) * bs as u64);
        }
        // Linear changes invalidate an htree index: drop the flag (the
        // index blocks read as empty linear blocks).
        dir.set_flags(dir.flags() & !INDEX_FL);
        let tm = now();
        dir.set_mtime(tm);
        dir.set_ctime(tm);
        self.write_inode(st, dir_ino, &dir)
    }

    /// Removes `name` from directory `dir_ino`; returns its inode.
    fn dir_remove(&self, st: &mut State, dir_ino: u32, name: &[u8]) -> KResult<u32> {
        let dir = self.read_inode(st, dir_ino)?;
        let found = self.dir_blocks(st, &dir, |_, _, b, blk| {
            let mut off = 0;
            let mut prev: Option<usize> = None;
            while off < blk.len() {
                let (ino, rec, nl, _) = dirent_at(blk, off)?;
                if ino != 0 && nl == name.len() && &blk[off + 8..off + 8 + nl] == name {
                    return Ok(Some((b, off, prev, ino, rec)));
                }
                prev = Some(off);
                off += rec;
            }
            Ok(None)
        })?;
        let Some((b, off, prev, ino, rec)) = found else {
            return error!(ENOENT);
        };
        let mut blk = self.read_meta(st, b)?;
        match prev {
            Some(p) => {
                let prec = le16(&blk, p + 4) as usize;
                put16(&mut blk, p + 4, (prec + rec) as u16);
            }
            None => put32(&mut blk, off, 0),
        }
        self.write_block(st, b, &blk)?;
        let mut dir = self.read_inode(st, dir_ino)?;
        dir.set_flags(dir.flags() & !INDEX_FL);
        let tm = now();
        dir.set_mtime(tm);
        dir.set_ctime(tm);
        self.write_inode(st, dir_ino, &dir)?;
        Ok(ino)
    }

    /// Points entry `name` of `dir_ino` at `ino` (rename over an entry).
    fn dir_set(
        &self,
        st: &mut State,
        dir_ino: u32,
        name: &[u8],
        ino: u32,
        t: FileType,
    ) -> KResult<()> {
        let dir = self.read_inode(st, dir_ino)?;
        let found = self.dir_blocks(st, &dir, |_, _, b, blk| {
            let mut off = 0;
            while off < blk.len() {
                let (eino, rec, nl, _) = dirent_at(blk, off)?;
                if eino != 0 && nl == name.len() && &blk[off + 8..off + 8 + nl] == name {
                    return Ok(Some((b, off)));
                }
                off += rec;
            }
            Ok(None)
        })?;
        let Some((b, off)) = found else {
            return error!(ENOENT);
        };
        let mut blk = self.read_meta(st, b)?;
        put32(&mut blk, off, ino);
        if self.geo.filetype {
            blk[off + 7] = dirent_type(t);
        }
        self.write_block(st, b, &blk)
    }

    fn dir_is_empty(&self, st: &mut State, dir: &DInode) -> KResult<bool> {
        let nonempty = self.dir_blocks(st, dir, |_, _, _, blk| {
            let mut off = 0;
            while off < blk.len() {
                let (ino, rec, nl, _) = dirent_at(blk, off)?;
                let name = &blk[off + 8..off + 8 + nl.min(rec - 8)];
                if ino != 0 && name != b"." && name != b".." {
                    return Ok(Some(()));
                }
                off += rec;
            }
            Ok(None)
        })?;
        Ok(nonempty.is_none())
    }

    /// The parent of directory `ino` (its ".." entry).
    fn parent_of(&self, st: &mut State, ino: u32) -> KResult<u32> {
        let d = self.read_inode(st, ino)?;
        match self.dir_find(st, &d, b"..")? {
            Some((p, _)) => Ok(p),
            None => Err(corrupt(&format!("directory {ino} has no '..'"))),
        }
    }

    /// Makes a new inode of type `t` (not linked anywhere yet).
    fn new_inode(
        &self,
        st: &mut State,
        near: u32,
        t: FileType,
        perm: u32,
    ) -> KResult<(u32, DInode)> {
        let ino = self.alloc_inode(st, near, t == FileType::Directory)?;
        let old = self.read_inode(st, ino)?;
        let mut i = DInode {
            raw: vec![0u8; self.geo.inode_size],
        };
        i.set_mode((t.mode_bits() | (perm & 0o7777)) as u16);
        if self.geo.inode_size > 128 {
            put16(&mut i.raw, 128, self.geo.extra_isize);
        }
        let tm = now();
        i.set_atime(tm);
        i.set_ctime(tm);
        i.set_mtime(tm);
        if i.extra_isize() >= 24 {
            i.set_time(144, 148, tm);
        }
        // A fresh generation (for NFS-style staleness checks).
        put32(&mut i.raw, 100, old.generation().wrapping_add(1));
        i.set_links(1);
        Ok((ino, i))
    }
}

impl Drop for Ext2Fs {
    /// Unmounted: the page cache must not keep pages under this device's
    /// numbers (another filesystem may come to the same device).
    fn drop(&mut self) {
        let mapped: Vec<u32> = self.lock().mapped.drain().collect();
        for ino in mapped {
            self.invalidate_ino(ino);
        }
        let _ = self.held.dev.flush();
    }
}

fn dev_name(dev_no: (u32, u32)) -> String {
    crate::block::lookup(dev_no)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| format!("{}:{}", dev_no.0, dev_no.1))
}

fn mount_err(what: &str) -> crate::errno::Errno {
    crate::log::warn(&format!("EXT2-fs: can't mount: {what}"));
    crate::errno!(EINVAL)
}

#[cfg(test)]
mod tests {
    //! Hostile images in bulk: an image made by the host's mke2fs,
    //! corrupted at random a thousand times in its metadata, mounted from
    //! memory and walked, read and written: errors are fine, a panic or a
    //! hang is not.

    use super::*;
    use crate::block::{Disk, Kind};

    struct MemDev(Mutex<Vec<u8>>);

    impl BlockDevice for MemDev {
        fn size(&self) -> u64 {
            self.0.lock().unwrap().len() as u64 / 512 * 512
        }
        fn read_only(&self) -> bool {
            false
        }
        fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
            let d = self.0.lock().unwrap();
            let at = (sector * 512) as usize;
            buf.copy_from_slice(&d[at..at + buf.len()]);
            Ok(())
        }
        fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
            let mut d = self.0.lock().unwrap();
            let at = (sector * 512) as usize;
            d[at..at + buf.len()].copy_from_slice(buf);
            Ok(())
        }
        fn flush(&self) -> KResult<()> {
            Ok(())
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// A small ext2 image with directories, files (direct, indirect and
    /// double-indirect blocks) and symlinks, made by the host's mke2fs.
    fn base_image() -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("ruml-ext2-unit-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("d1/d2")).unwrap();
        for i in 0..40 {
            std::fs::write(src.join(format!("d1/f{i}")), format!("file {i}\n")).unwrap();
        }
        let big: String = (0..40000).map(|i| format!("{i}\n")).collect();
        std::fs::write(src.join("d1/d2/big"), big).unwrap();
        std::os::unix::fs::symlink("d1/f1", src.join("s1")).unwrap();
        std::os::unix::fs::symlink("x".repeat(100), src.join("s2")).unwrap();
        let img = dir.join("img");
        let mke2fs = ["/usr/sbin/mke2fs", "/sbin/mke2fs"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mke2fs (e2fsprogs) is needed: see .ci/run");
        let st = std::process::Command::new(mke2fs)
            .args(["-q", "-F", "-t", "ext2", "-b", "1024", "-N", "64", "-d"])
            .arg(&src)
            .arg(&img)
            .arg("1M")
            .status()
            .unwrap();
        assert!(st.success());
        let v = std::fs::read(&img).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        v
    }

    fn walk(fs: &Arc<Ext2Fs>) {
        let mut stack = vec![(ROOT_INO, 0)];
        let mut visited = 0;
        while let Some((ino, depth)) = stack.pop() {
            visited += 1;
            if visited > 300 {
                break;
            }
            let mut st = fs.lock();
            let Ok(i) = fs.read_inode(&mut st, ino) else {
                continue;
            };
            match i.ftype() {
                FileType::Directory => {
                    if let Ok(ents) = fs.dir_list(&mut st, &i, 0, 256) {
                        for (_, c, name, _) in ents {
                            if name != b"." && name != b".." && depth < 6 {
                                stack.push((c, depth + 1));
                            }
                        }
                    }
                }
                _ => {
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = fs.read_file(&mut st, &i, 0, &mut buf);
                }
            }
        }
    }

    #[test]
    fn a_thousand_corrupt_images_never_panic() {
        let base = base_image();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let caller = crate::fs::vfs::Caller::kernel();
        let mut mounted = 0;
        for n in 0..1000u32 {
            let mut img = base.clone();
            let count = [3, 20, 150][(n % 3) as usize];
            for _ in 0..count {
                // Metadata lives in the first 100 KiB of this image.
                let at = 1024 + (rnd() % (100 * 1024)) as usize;
                img[at] = rnd() as u8;
            }
            let dev: Arc<dyn BlockDevice> = Arc::new(MemDev(Mutex::new(img)));
            let disk = Disk::new(format!("mem{n}"), (240, n), Kind::Ubd);
            disk.bind(Some(dev));
            let Ok(root) = vfs::mount(&disk, false) else {
                continue;
            };
            mounted += 1;
            let fs = root
                .as_any()
                .downcast_ref::<vfs::Ext2Inode>()
                .unwrap()
                .fs
                .clone();
            walk(&fs);
            let _ = root.mkdir(b"nd", 0o755);
            let _ = root.symlink(b"ns", b"d1/f2");
            let _ = root.symlink(b"nl", &[b'y'; 200]);
            if let Ok((_, _f)) = root.create(b"nf", 0o644, 0) {
                let _ = root.unlink(b"nf");
            }
            if let Ok(d1) = root.lookup(b"d1", &caller) {
                let _ = root.rename(b"d1", root.as_ref(), b"moved", 0);
                let _ = d1.unlink(b"f3");
                if let Ok(big) = d1
                    .lookup(b"d2", &caller)
                    .and_then(|d2| d2.lookup(b"big", &caller))
                {
                    let _ = big.setattr(&crate::fs::vfs::SetAttr {
                        size: Some(5000),
                        ..Default::default()
                    });
                }
                let _ = d1.rmdir(b"d2");
            }
            let _ = root.rmdir(b"nd");
            walk(&fs);
        }
        // Most images still mount: the walk ran on corrupt filesystems.
        assert!(mounted > 300, "only {mounted} of 1000 images mounted");
    }
}
