//! ext2, ext3 and ext4 on a block device.
//!
//! Read-write for the feature sets the host's `mke2fs -t ext2|ext3|ext4`
//! enables: extent trees ([`extent`]), 64bit, flex_bg, huge files,
//! metadata_csum's crc32c checksums and gdt_csum's crc16 ([`csum`]),
//! uninitialized groups, and the jbd2 journal ([`journal`]: replayed at
//! mount, metadata journaled in ordered mode). Read-only for images with
//! read-only-compatible features this driver does not maintain (quota,
//! bigalloc, ...). Anything else — inline data, encryption, meta_bg, a
//! journal device — refuses the mount with a kernel log line naming the
//! features.
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
//! inode tables, directories, indirect and extent blocks) are cached
//! (bounded) under the same mutex, and those an operation changed are,
//! when it ends ([`Op`]), with the superblock, added to the journal's
//! running transaction (pinned in the cache until it commits) or, without
//! a journal, written home, so the image is consistent for the host's
//! e2fsck whenever no operation is in progress. The filesystem lives as
//! long as any of its inodes (the mount root included); dropping it
//! releases the device (a loop device set to autoclear detaches then).

mod csum;
mod datacache;
mod extent;
mod htree;
mod journal;
mod verify;
mod vfs;
mod xattr;

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
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_DIR_NLINK: u32 = 0x20;
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

// Group descriptor flags.
const BG_INODE_UNINIT: u16 = 0x1;
const BG_BLOCK_UNINIT: u16 = 0x2;

/// Incompatible features this driver can read.
const INCOMPAT_READ: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_FLEX_BG
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR;
/// Incompatible features this driver can write (a journal needing
/// recovery is replayed at mount).
const INCOMPAT_WRITE: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_FLEX_BG
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR;
/// Read-only-compatible features this driver maintains on write.
const RO_COMPAT_WRITE: u32 = RO_COMPAT_SPARSE_SUPER
    | RO_COMPAT_LARGE_FILE
    | RO_COMPAT_HUGE_FILE
    | RO_COMPAT_GDT_CSUM
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_METADATA_CSUM;

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

/// The first bit in `from..to` clear in `bm` and (if given) in `also`:
/// whole bytes of set bits are skipped at once.
fn first_free(bm: &[u8], also: Option<&[u8]>, from: u64, to: u64) -> Option<u64> {
    let busy = |i: usize| bm[i] | also.map_or(0, |a| a[i]);
    // Eight bytes at a time where all 64 bits are in use (a group's used
    // run before the goal's free space was scanned a byte at a time:
    // some 10,000 instructions per allocation in a filled group).
    let word = |b: &[u8], i: usize| {
        b.get(i..i + 8)
            .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
    };
    let mut bit = from;
    while bit < to {
        let i = (bit / 8) as usize;
        if bit.is_multiple_of(8)
            && bit + 64 <= to
            && (word(bm, i) | also.map_or(0, |a| word(a, i))) == u64::MAX
        {
            bit += 64;
            continue;
        }
        let byte = busy(i);
        if byte == 0xFF {
            bit = (bit / 8 + 1) * 8;
            continue;
        }
        if byte & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

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
    /// metadata_csum: crc32c checksums on every metadata structure.
    csum: bool,
    /// gdt_csum (uninit_bg): crc16 group descriptor checksums.
    gdt_csum: bool,
    /// The seed of metadata_csum's checksums (from the UUID or stored).
    csum_seed: u32,
    /// New files get extent trees.
    extents: bool,
    is64: bool,
    sparse_super: bool,
    /// Group descriptor blocks reserved for growth (after the GDT).
    reserved_gdt: u64,
    /// The journal's inode (0: none).
    journal_ino: u32,
}

impl Geometry {
    fn ptrs_per_block(&self) -> u64 {
        self.bs / 4
    }
    fn itable_blocks(&self) -> u64 {
        (self.ipg as u64 * self.inode_size as u64).div_ceil(self.bs)
    }
    /// Groups keep uninitialized bitmaps and a count of unused inodes.
    fn uninit_bg(&self) -> bool {
        self.csum || self.gdt_csum
    }
    /// Whether group `g` holds a superblock backup (and the GDT).
    fn has_super(&self, g: u32) -> bool {
        if g <= 1 || !self.sparse_super {
            return true;
        }
        [3u32, 5, 7].iter().any(|&p| {
            let mut n = p;
            while n < g {
                n = match n.checked_mul(p) {
                    Some(m) => m,
                    None => return false,
                };
            }
            n == g
        })
    }
    fn gdt_blocks(&self) -> u64 {
        (self.ngroups as u64 * self.desc_size as u64).div_ceil(self.bs)
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
    flags: u16,
    itable_unused: u32,
}

/// The mutable state; see the module doc.
pub(crate) struct State {
    sb: Vec<u8>,
    gdt: Vec<u8>,
    groups: Vec<Group>,
    /// Metadata blocks by number (hashed with one multiplication, as
    /// the data cache: SipHash showed in every operation's profile).
    cache: datacache::BlockMap<Vec<u8>>,
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
    /// The journal, while journaling writes.
    journal: Option<journal::Journal>,
    /// Blocks of the running transaction (in `cache`, pinned there).
    txn: std::collections::BTreeSet<u64>,
    /// Blocks the running transaction freed: not reused before it
    /// commits. Per group, a bitmap in the block bitmap's layout, so that
    /// an allocation skips them a byte at a time.
    txn_freed: HashMap<u32, Vec<u8>>,
    /// Blocks were allocated since the journal last flushed before a
    /// commit block: the next commit writes its commit block only after
    /// the log and the file data are flushed (ordered mode).
    alloc_since_flush: bool,
    /// Regular files' data blocks (see datacache.rs).
    data: datacache::DataCache,
}

impl State {
    fn new(sb: Vec<u8>, gdt: Vec<u8>, groups: Vec<Group>) -> State {
        State {
            sb,
            gdt,
            groups,
            cache: Default::default(),
            open: HashMap::new(),
            orphans: HashSet::new(),
            mapped: HashSet::new(),
            stale: Vec::new(),
            dirty: Default::default(),
            sb_dirty: false,
            journal: None,
            txn: Default::default(),
            txn_freed: HashMap::new(),
            alloc_since_flush: true,
            data: Default::default(),
        }
    }
}

/// What [`Ext2Fs::parse`] reads from a superblock and its descriptors.
struct Parsed {
    geo: Geometry,
    sb: Vec<u8>,
    gdt: Vec<u8>,
    groups: Vec<Group>,
    writable: bool,
    kind: &'static str,
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
    /// Its number (metadata_csum seeds its blocks' checksums with it).
    ino: u32,
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
        let mut cur = le32(&self.raw, 28) as i64;
        if geo.huge_file {
            cur |= (le16(&self.raw, 116) as i64) << 32;
        }
        let unit = if geo.huge_file && self.flags() & HUGE_FILE_FL != 0 {
            1
        } else {
            (geo.bs / 512) as i64
        };
        let n = (cur + fs_blocks * unit).max(0);
        put32(&mut self.raw, 28, n as u32);
        if geo.huge_file {
            put16(&mut self.raw, 116, (n >> 32) as u16);
        }
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
    fn parse(dev: &Arc<dyn BlockDevice>, dev_no: (u32, u32), want_rw: bool) -> KResult<Parsed> {
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
            crate::log::warn(&format!(
                "EXT4-fs ({}): couldn't mount: unsupported incompatible features ({:#x})",
                dev_name(dev_no),
                incompat & !INCOMPAT_READ
            ));
            return error!(EINVAL);
        }
        if ro_compat & RO_COMPAT_METADATA_CSUM != 0
            && csum::crc32c(!0, &sb[..0x3FC]) != le32(&sb, 0x3FC)
        {
            return Err(mount_err("superblock checksum does not match"));
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
            csum: ro_compat & RO_COMPAT_METADATA_CSUM != 0,
            gdt_csum: ro_compat & RO_COMPAT_GDT_CSUM != 0,
            csum_seed: if incompat & INCOMPAT_CSUM_SEED != 0 {
                le32(&sb, 0x270)
            } else {
                csum::crc32c(!0, &sb[0x68..0x78])
            },
            extents: incompat & INCOMPAT_EXTENTS != 0,
            is64,
            sparse_super: ro_compat & RO_COMPAT_SPARSE_SUPER != 0,
            reserved_gdt: if rev >= 1 { le16(&sb, 0xCE) as u64 } else { 0 },
            journal_ino: if compat & COMPAT_HAS_JOURNAL != 0 {
                le32(&sb, 0xE0)
            } else {
                0
            },
        };
        if geo.journal_ino != 0 && (geo.journal_ino > inodes_count || geo.journal_ino >= first_ino)
        {
            return Err(mount_err("bad journal inode"));
        }
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
                flags: if geo.uninit_bg() { le16(d, 18) } else { 0 },
                itable_unused: if geo.uninit_bg() {
                    le16(d, 28) as u32 | hi16(50) << 16
                } else {
                    0
                },
            };
            if geo.uninit_bg() && gd_csum(&geo, &sb, g as u32, d) != le16(d, 30) {
                return Err(mount_err(&format!(
                    "group descriptor {g} checksum does not match"
                )));
            }
            if grp.itable_unused > ipg || grp.free_inodes > ipg || grp.free_blocks as u64 > bpg {
                return Err(mount_err(&format!("group {g}'s counts are out of range")));
            }
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
        Ok(Parsed {
            geo,
            sb,
            gdt,
            groups,
            writable,
            kind: if incompat & !(INCOMPAT_FILETYPE | INCOMPAT_RECOVER) != 0 {
                "ext4"
            } else if compat & COMPAT_HAS_JOURNAL != 0 {
                "ext3"
            } else {
                "ext2"
            },
        })
    }

    /// Reads and checks the superblock and group descriptors of `held`,
    /// replays the journal if it needs it, and starts journaling for a
    /// read-write mount. `want_rw`: EROFS if the features allow only
    /// reading.
    pub fn open(held: Held, dev_no: (u32, u32), want_rw: bool) -> KResult<Arc<Ext2Fs>> {
        let dev = held.dev.clone();
        let p = Self::parse(&dev, dev_no, want_rw)?;
        let read_only = !want_rw;
        let mut fs = Ext2Fs {
            held,
            dev_no,
            geo: p.geo,
            read_only: std::sync::atomic::AtomicBool::new(read_only),
            writable: p.writable,
            kind: p.kind,
            state: Mutex::new(State::new(p.sb, p.gdt, p.groups)),
        };
        if fs.geo.journal_ino != 0 {
            let needs = {
                let mut g = fs.raw_lock();
                le32(&g.sb, 96) & INCOMPAT_RECOVER != 0 || fs.journal_dirty(&mut g)?
            };
            if needs {
                if dev.read_only() {
                    crate::log::warn(&format!(
                        "EXT4-fs ({}): the journal needs recovery and the device is read-only",
                        dev_name(dev_no)
                    ));
                    return error!(EROFS);
                }
                let n = fs.replay_journal(&mut fs.raw_lock())?;
                // The superblock as the journal left it, without the
                // recovery flag.
                let mut sb = vec![0u8; 1024];
                crate::block::read_bytes(dev.as_ref(), 1024, &mut sb)?;
                if le16(&sb, 56) == EXT2_MAGIC {
                    let f = le32(&sb, 96) & !INCOMPAT_RECOVER;
                    put32(&mut sb, 96, f);
                    if le32(&sb, 100) & RO_COMPAT_METADATA_CSUM != 0 {
                        let c = csum::crc32c(!0, &sb[..0x3FC]);
                        put32(&mut sb, 0x3FC, c);
                    }
                    crate::block::write_bytes(dev.as_ref(), 1024, &sb)?;
                    dev.flush()?;
                }
                crate::log::info(&format!(
                    "EXT4-fs ({}): recovery complete ({n} transactions replayed)",
                    dev_name(dev_no)
                ));
                let p = Self::parse(&dev, dev_no, want_rw)?;
                fs.geo = p.geo;
                fs.writable = p.writable;
                *fs.state.get_mut().unwrap_or_else(|p| p.into_inner()) =
                    State::new(p.sb, p.gdt, p.groups);
            }
            if !read_only {
                fs.start_journaling(&mut fs.raw_lock())?;
            }
        }
        let fs = Arc::new(fs);
        if fs.geo.journal_ino != 0 && !read_only {
            journal_timer(&fs);
        }
        register(&fs);
        // The root must be a directory.
        {
            let mut st = fs.lock();
            let root = fs.read_inode(&mut st, ROOT_INO)?;
            if root.ftype() != FileType::Directory || root.links() == 0 {
                return Err(mount_err("the root inode is not a directory"));
            }
            if !read_only {
                fs.orphan_cleanup(&mut st)?;
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
        let mut st = self.lock();
        if read_only && !self.ro() {
            self.stop_journaling(&mut st)?;
        }
        self.read_only
            .store(read_only, std::sync::atomic::Ordering::Relaxed);
        if !read_only && self.geo.journal_ino != 0 && st.journal.is_none() {
            self.start_journaling(&mut st)?;
        }
        drop(st);
        self.held.dev.flush()
    }

    /// The state without an operation (mount-time work).
    fn raw_lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts journaling for writes: the journal opened for writing, the
    /// superblock marked as needing recovery (written at once).
    fn start_journaling(&self, st: &mut State) -> KResult<()> {
        self.start_journal(st)?;
        let f = le32(&st.sb, 96) | INCOMPAT_RECOVER;
        put32(&mut st.sb, 96, f);
        self.write_super_now(st)
    }

    /// Commits the running transaction and ends journaling: the
    /// superblock's recovery flag cleared (unmount, halt, remount ro).
    fn stop_journaling(&self, st: &mut State) -> KResult<()> {
        self.commit(st)?;
        self.journal_commit(st)?;
        // An empty log costs one flush here (the superblock's); a log
        // that held transactions is checkpointed, and its superblock
        // (log empty) must be durable before the recovery flag is
        // cleared: a crash between the two would leave a clear flag
        // over a log e2fsck still finds transactions in.
        if self.journal_checkpoint(st)? {
            self.dev().flush()?;
        }
        if st.journal.take().is_some() {
            let f = le32(&st.sb, 96) & !INCOMPAT_RECOVER;
            put32(&mut st.sb, 96, f);
            self.write_super_now(st)?;
        }
        Ok(())
    }

    /// Writes the superblock home at once (outside any transaction:
    /// only the recovery flag and mount counts change this way).
    fn write_super_now(&self, st: &mut State) -> KResult<()> {
        self.sb_csum(st);
        crate::block::write_bytes(self.dev(), 1024, &st.sb)?;
        let (blk, off) = self.sb_loc();
        if let Some(b) = st.cache.get_mut(&blk) {
            b[off..off + 1024].copy_from_slice(&st.sb);
        }
        self.dev().flush()
    }

    fn sb_csum(&self, st: &mut State) {
        if self.geo.csum {
            let c = csum::crc32c(!0, &st.sb[..0x3FC]);
            put32(&mut st.sb, 0x3FC, c);
        }
    }

    /// The block holding the superblock, and its offset there.
    fn sb_loc(&self) -> (u64, usize) {
        (1024 / self.geo.bs, (1024 % self.geo.bs) as usize)
    }

    /// Commits the journal's running transaction and flushes the device
    /// (fsync, sync, the timer).
    pub(crate) fn sync_fs(&self) -> KResult<()> {
        let mut st = self.raw_lock();
        if !self.ro() {
            self.commit(&mut st)?;
            // Blocks this commit frees may be reused (and written) as
            // soon as the lock is released: it must be durable first,
            // or a crash could leave the old metadata pointing at new
            // data.
            let freed = !st.txn_freed.is_empty();
            if self.journal_commit_unflushed(&mut st)? && freed {
                self.dev().flush()?;
            }
        }
        drop(st);
        // One flush for the file data and the commit, after the lock is
        // released: the device skips it when a completed flush already
        // covers every write (an fsync with nothing new), and an fsync
        // of another thread that arrives meanwhile waits for this one
        // and shares it (group commit; block/flushgate.rs).
        self.dev().flush()
    }

    fn lock(&self) -> Op<'_> {
        Op {
            fs: self,
            guard: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Ends an operation: the superblock into its block, and the
    /// metadata blocks it changed into the journal's running transaction
    /// (committed when it has grown), or home at once without a journal.
    fn commit(&self, st: &mut State) -> KResult<()> {
        if self.ro() {
            st.dirty.clear();
            st.sb_dirty = false;
            return Ok(());
        }
        if st.sb_dirty {
            st.sb_dirty = false;
            put32(&mut st.sb, 48, now().0 as u32);
            self.sb_csum(st);
            let (blk, off) = self.sb_loc();
            let mut b = self.read_meta(st, blk)?;
            b[off..off + 1024].copy_from_slice(&st.sb);
            st.cache.insert(blk, b);
            st.dirty.insert(blk);
        }
        let dirty = std::mem::take(&mut st.dirty);
        if st.journal.is_some() {
            st.txn.extend(dirty);
            if self.txn_full(st) {
                self.journal_commit(st)?;
            }
            return Ok(());
        }
        for b in dirty {
            if let Some(v) = st.cache.get(&b) {
                self.dev().write_sectors(b * self.geo.bs / 512, v)?;
            }
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

    /// Largest file `i` can be, in blocks (by its block map's kind).
    fn file_max_blocks(&self, i: &DInode) -> u64 {
        if i.flags() & EXTENTS_FL != 0 {
            (1 << 32) - 1
        } else {
            self.geo.max_blocks()
        }
    }

    /// A metadata block (cached).
    fn read_meta(&self, st: &mut State, b: u64) -> KResult<Vec<u8>> {
        self.check_block(b)?;
        if let Some(v) = st.cache.get(&b) {
            return Ok(v.clone());
        }
        let mut v = vec![0u8; self.geo.bs as usize];
        self.dev().read_sectors(b * self.geo.bs / 512, &mut v)?;
        self.cache_insert(st, b, &v);
        Ok(v)
    }

    /// Caches block `b` as read from the device.
    fn cache_insert(&self, st: &mut State, b: u64, v: &[u8]) {
        if st.cache.len() >= CACHE_BYTES / self.geo.bs as usize {
            // Clean blocks go; dirty ones stay until the operation
            // ends, journaled ones until they are checkpointed.
            let State {
                cache,
                dirty,
                txn,
                journal,
                ..
            } = st;
            cache.retain(|k, _| {
                dirty.contains(k)
                    || txn.contains(k)
                    || journal.as_ref().is_some_and(|j| j.logged.contains_key(k))
            });
        }
        st.cache.insert(b, v.to_vec());
    }

    /// A data block into `buf` (not cached, but a cached copy wins).
    fn read_data(&self, st: &mut State, b: u64, buf: &mut [u8]) -> KResult<()> {
        self.check_block(b)?;
        if let Some(v) = st.cache.get(&b) {
            buf.copy_from_slice(v);
            return Ok(());
        }
        st.data.check_raw_writes();
        if st.data.read(b, 0, buf) {
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
        // The cached copy's memory is reused (no allocation and free
        // per metadata write).
        match st.cache.get_mut(&b) {
            Some(v) if v.len() == data.len() => v.copy_from_slice(data),
            _ => {
                st.cache.insert(b, data.to_vec());
            }
        }
        st.dirty.insert(b);
        Ok(())
    }

    /// Metadata block `b` to change in place in the cache (read first if
    /// it is not cached), marked dirty as [`Self::write_block`] does: the
    /// read-modify-write of an inode or a group descriptor without a copy
    /// of the block.
    fn meta_mut<'s>(&self, st: &'s mut State, b: u64) -> KResult<&'s mut [u8]> {
        if self.ro() {
            return error!(EROFS);
        }
        self.check_block(b)?;
        if !st.cache.contains_key(&b) {
            let mut v = vec![0u8; self.geo.bs as usize];
            self.dev().read_sectors(b * self.geo.bs / 512, &mut v)?;
            self.cache_insert(st, b, &v);
        }
        st.dirty.insert(b);
        match st.cache.get_mut(&b) {
            Some(v) => Ok(v),
            None => error!(EIO),
        }
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
        st.data.check_raw_writes();
        st.data.update(b, data, self.geo.bs as usize);
        Ok(())
    }

    /// File data blocks from `first` on, consecutive on the device: one
    /// write (cached copies follow).
    fn write_data_run(&self, st: &mut State, first: u64, data: &[u8]) -> KResult<()> {
        if self.ro() {
            return error!(EROFS);
        }
        let bs = self.geo.bs as usize;
        let n = (data.len() / bs) as u64;
        if n == 0 {
            return Ok(());
        }
        self.check_block(first)?;
        self.check_block(first + n - 1)?;
        self.dev().write_sectors(first * self.geo.bs / 512, data)?;
        st.data.check_raw_writes();
        st.data.update(first, data, bs);
        if !st.cache.is_empty() {
            for k in 0..n {
                if let Some(v) = st.cache.get_mut(&(first + k)) {
                    let at = k as usize * bs;
                    v.copy_from_slice(&data[at..at + bs]);
                }
            }
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
            if self.geo.uninit_bg() {
                put16(d, 18, grp.flags);
                put16(d, 28, grp.itable_unused as u16);
            }
            if ds >= 64 {
                put16(d, 44, (grp.free_blocks >> 16) as u16);
                put16(d, 46, (grp.free_inodes >> 16) as u16);
                put16(d, 48, (grp.used_dirs >> 16) as u16);
                put16(d, 50, (grp.itable_unused >> 16) as u16);
            }
        }
        if self.geo.uninit_bg() {
            let c = gd_csum(&self.geo, &st.sb, g, &st.gdt[off..off + ds]);
            put16(&mut st.gdt[off..off + ds], 30, c);
        }
        let byte = self.geo.gdt_block * self.geo.bs + off as u64;
        let blk = byte / self.geo.bs;
        let in_blk = (byte % self.geo.bs) as usize;
        // In place in the cached descriptor block (no copy of it).
        self.meta_mut(st, blk)?;
        let State { cache, gdt, .. } = st;
        match cache.get_mut(&blk) {
            Some(v) => {
                v[in_blk..in_blk + ds].copy_from_slice(&gdt[off..off + ds]);
                Ok(())
            }
            None => error!(EIO),
        }
    }

    fn free_counts(&self, st: &mut State, dblocks: i64, dinodes: i64) {
        let mut fb = le32(&st.sb, 12) as i64;
        if self.geo.is64 {
            fb |= (le32(&st.sb, 0x158) as i64) << 32;
        }
        let fb = (fb + dblocks).max(0) as u64;
        let fi = (le32(&st.sb, 16) as i64 + dinodes).max(0) as u32;
        put32(&mut st.sb, 12, fb as u32);
        if self.geo.is64 {
            put32(&mut st.sb, 0x158, (fb >> 32) as u32);
        }
        put32(&mut st.sb, 16, fi);
    }

    /// Sets bits `from..` of a bitmap block (the padding past a group's
    /// last block or inode).
    fn mark_end(bm: &mut [u8], from: u64) {
        for bit in from..bm.len() as u64 * 8 {
            bm[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// Group `g`'s block bitmap; an uninitialized one (BLOCK_UNINIT) is
    /// computed: the superblock backup and descriptors, and the bitmaps
    /// and inode tables of any group that lie in it.
    fn load_block_bitmap(&self, st: &mut State, g: u32) -> KResult<Vec<u8>> {
        let grp = st.groups[g as usize];
        if grp.flags & BG_BLOCK_UNINIT == 0 {
            return self.read_block_bitmap(st, g);
        }
        let geo = &self.geo;
        let mut bm = vec![0u8; geo.bs as usize];
        let start = geo.first_data_block + g as u64 * geo.bpg;
        let n = geo.blocks_in_group(g);
        let mut set = |b: u64| {
            if b >= start && b < start + n {
                let bit = b - start;
                bm[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        };
        if geo.has_super(g) {
            for b in start..start + 1 + geo.gdt_blocks() + geo.reserved_gdt {
                set(b);
            }
        }
        for o in &st.groups {
            set(o.block_bitmap);
            set(o.inode_bitmap);
            for b in o.inode_table..o.inode_table + geo.itable_blocks() {
                set(b);
            }
        }
        Self::mark_end(&mut bm, n);
        Ok(bm)
    }

    /// Writes group `g`'s block bitmap (initialized from now on) and its
    /// checksum in the descriptor; the caller writes the descriptor.
    fn store_block_bitmap(&self, st: &mut State, g: u32, bm: &[u8]) -> KResult<()> {
        let blk = st.groups[g as usize].block_bitmap;
        self.write_block(st, blk, bm)?;
        st.groups[g as usize].flags &= !BG_BLOCK_UNINIT;
        if self.geo.csum {
            let c = csum::crc32c(self.geo.csum_seed, &bm[..(self.geo.bpg / 8) as usize]);
            let off = g as usize * self.geo.desc_size;
            put16(&mut st.gdt, off + 0x18, c as u16);
            if self.geo.desc_size >= 64 {
                put16(&mut st.gdt, off + 0x38, (c >> 16) as u16);
            }
        }
        Ok(())
    }

    fn load_inode_bitmap(&self, st: &mut State, g: u32) -> KResult<Vec<u8>> {
        let grp = st.groups[g as usize];
        if grp.flags & BG_INODE_UNINIT == 0 {
            return self.read_inode_bitmap(st, g);
        }
        let mut bm = vec![0u8; self.geo.bs as usize];
        Self::mark_end(&mut bm, self.geo.ipg as u64);
        Ok(bm)
    }

    fn store_inode_bitmap(&self, st: &mut State, g: u32, bm: &[u8]) -> KResult<()> {
        let blk = st.groups[g as usize].inode_bitmap;
        self.write_block(st, blk, bm)?;
        st.groups[g as usize].flags &= !BG_INODE_UNINIT;
        if self.geo.csum {
            let c = csum::crc32c(
                self.geo.csum_seed,
                &bm[..(self.geo.ipg as usize).div_ceil(8)],
            );
            let off = g as usize * self.geo.desc_size;
            put16(&mut st.gdt, off + 0x1A, c as u16);
            if self.geo.desc_size >= 64 {
                put16(&mut st.gdt, off + 0x3A, (c >> 16) as u16);
            }
        }
        Ok(())
    }

    /// Allocates a block near `goal`.
    fn alloc_block(&self, st: &mut State, goal: u64) -> KResult<u64> {
        self.alloc_blocks(st, goal, 1).map(|(b, _)| b)
    }

    /// Allocates up to `max` (>= 1) consecutive blocks near `goal`, in
    /// one group: the first free block found and the free ones right
    /// after it. Returns (first block, how many).
    fn alloc_blocks(&self, st: &mut State, goal: u64, max: u64) -> KResult<(u64, u64)> {
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
            let mut bm = self.load_block_bitmap(st, g)?;
            let n = geo.blocks_in_group(g);
            let base = geo.first_data_block + g as u64 * geo.bpg;
            let freed = st.txn_freed.get(&g).map(|v| v.as_slice());
            let found = first_free(&bm, freed, start_bit, n)
                .or_else(|| first_free(&bm, freed, 0, start_bit.min(n)));
            let Some(bit) = found else {
                continue;
            };
            let b = base + bit;
            let mut k = 0u64;
            let free = st.groups[g as usize].free_blocks as u64;
            while k < max.max(1) && k < free && bit + k < n {
                let x = bit + k;
                let (at, m) = ((x / 8) as usize, 1u8 << (x % 8));
                if bm[at] & m != 0 || freed.is_some_and(|f| f[at] & m != 0) {
                    break;
                }
                k += 1;
            }
            let k = k.max(1);
            for x in bit..bit + k {
                bm[(x / 8) as usize] |= 1 << (x % 8);
            }
            self.store_block_bitmap(st, g, &bm)?;
            st.groups[g as usize].free_blocks -= k as u32;
            self.write_group(st, g)?;
            self.free_counts(st, -(k as i64), 0);
            self.write_super(st)?;
            st.alloc_since_flush = true;
            return Ok((b, k));
        }
        error!(ENOSPC)
    }

    fn free_block(&self, st: &mut State, b: u64) -> KResult<()> {
        self.free_blocks(st, b, 1)
    }

    /// Frees `n` blocks from `b` (a run, possibly across groups).
    fn free_blocks(&self, st: &mut State, b: u64, n: u64) -> KResult<()> {
        let geo = &self.geo;
        if n == 0 {
            return Ok(());
        }
        self.check_block(b)?;
        self.check_block(b + n - 1)?;
        let mut cur = b;
        while cur < b + n {
            let g = ((cur - geo.first_data_block) / geo.bpg) as u32;
            let base = geo.first_data_block + g as u64 * geo.bpg;
            let end = (b + n).min(base + geo.bpg);
            let mut bm = self.load_block_bitmap(st, g)?;
            for x in cur..end {
                let bit = x - base;
                if bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                    return Err(corrupt(&format!(
                        "freeing block {x}, which is already free"
                    )));
                }
                bm[(bit / 8) as usize] &= !(1 << (bit % 8));
                st.cache.remove(&x);
                st.dirty.remove(&x);
                st.txn.remove(&x);
                if st.journal.is_some() {
                    let bs = geo.bs as usize;
                    let f = st.txn_freed.entry(g).or_insert_with(|| vec![0u8; bs]);
                    f[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            }
            self.store_block_bitmap(st, g, &bm)?;
            st.data.forget(cur, end - cur);
            st.groups[g as usize].free_blocks += (end - cur) as u32;
            self.write_group(st, g)?;
            self.free_counts(st, (end - cur) as i64, 0);
            cur = end;
        }
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
            let mut bm = self.load_inode_bitmap(st, g)?;
            let found = (0..geo.ipg).find(|&bit| {
                let ino = g * geo.ipg + bit + 1;
                ino >= geo.first_ino && bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0
            });
            let Some(bit) = found else {
                continue;
            };
            bm[(bit / 8) as usize] |= 1 << (bit % 8);
            self.store_inode_bitmap(st, g, &bm)?;
            let grp = &mut st.groups[g as usize];
            grp.free_inodes -= 1;
            if dir {
                grp.used_dirs += 1;
            }
            if geo.uninit_bg() && bit >= geo.ipg - grp.itable_unused.min(geo.ipg) {
                grp.itable_unused = geo.ipg - bit - 1;
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
        let mut bm = self.load_inode_bitmap(st, g)?;
        if bm[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return Err(corrupt(&format!(
                "freeing inode {ino}, which is already free"
            )));
        }
        bm[(bit / 8) as usize] &= !(1 << (bit % 8));
        self.store_inode_bitmap(st, g, &bm)?;
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

    /// The checksum seed of inode `ino` (its extent and directory blocks
    /// use it too).
    fn ino_seed(&self, ino: u32, gen: u32) -> u32 {
        let c = csum::crc32c(self.geo.csum_seed, &ino.to_le_bytes());
        csum::crc32c(c, &gen.to_le_bytes())
    }

    /// metadata_csum's inode checksum (and whether it has 32 bits).
    fn inode_csum(&self, ino: u32, raw: &[u8]) -> (u32, bool) {
        let mut c = self.ino_seed(ino, le32(raw, 100));
        c = csum::crc32c(c, &raw[..0x7C]);
        c = csum::crc32c(c, &[0, 0]);
        c = csum::crc32c(c, &raw[0x7E..128]);
        let mut full = false;
        if raw.len() > 128 {
            c = csum::crc32c(c, &raw[128..0x82]);
            let mut off = 0x82;
            if le16(raw, 128) >= 4 {
                c = csum::crc32c(c, &[0, 0]);
                off += 2;
                full = true;
            }
            c = csum::crc32c(c, &raw[off..]);
        }
        (c, full)
    }

    /// An inode as stored, unchecked (a free slot being reused).
    fn read_inode_raw(&self, st: &mut State, ino: u32) -> KResult<DInode> {
        let (blk, off) = self.inode_loc(st, ino)?;
        let raw = match st.cache.get(&blk) {
            Some(b) => b[off..off + self.geo.inode_size].to_vec(),
            None => self.read_meta(st, blk)?[off..off + self.geo.inode_size].to_vec(),
        };
        Ok(DInode { ino, raw })
    }

    fn read_inode(&self, st: &mut State, ino: u32) -> KResult<DInode> {
        let i = self.read_inode_raw(st, ino)?;
        if self.geo.csum && i.raw.iter().any(|&x| x != 0) {
            let (c, full) = self.inode_csum(ino, &i.raw);
            let stored = le16(&i.raw, 0x7C) as u32
                | if full {
                    (le16(&i.raw, 0x82) as u32) << 16
                } else {
                    0
                };
            let want = if full { c } else { c & 0xFFFF };
            if stored != want {
                return Err(self.bad_csum(&format!("inode #{ino}: iget: checksum invalid")));
            }
        }
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
        let isz = self.geo.inode_size;
        if i.raw.len() != isz {
            return Err(corrupt(&format!("inode {ino}: bad in-memory size")));
        }
        // In place in the cached inode table block (no copy of it).
        let raw = &mut self.meta_mut(st, blk)?[off..off + isz];
        raw.copy_from_slice(&i.raw);
        if self.geo.csum {
            let (c, full) = self.inode_csum(ino, raw);
            put16(raw, 0x7C, c as u16);
            if full {
                put16(raw, 0x82, (c >> 16) as u16);
            }
        }
        Ok(())
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

    /// The physical block of `lblk` and how many blocks from it on (up
    /// to `max`, at least 1) follow it on the device.
    fn bmap_run(
        &self,
        st: &mut State,
        i: &DInode,
        lblk: u64,
        max: u64,
    ) -> KResult<Option<(u64, u64)>> {
        if i.flags() & EXTENTS_FL != 0 {
            return self.extent_lookup_run(st, i, lblk);
        }
        let Some(b) = self.bmap(st, i, lblk)? else {
            return Ok(None);
        };
        let lim = max.min(self.file_max_blocks(i).saturating_sub(lblk));
        let mut n = 1;
        while n < lim && self.bmap(st, i, lblk + n)? == Some(b + n) {
            n += 1;
        }
        Ok(Some((b, n)))
    }

    fn extent_lookup(&self, st: &mut State, i: &DInode, lblk: u64) -> KResult<Option<u64>> {
        Ok(self.extent_lookup_run(st, i, lblk)?.map(|(b, _)| b))
    }

    /// The physical block of `lblk` and how many blocks from it on
    /// follow it on the device (to the end of its extent).
    fn extent_lookup_run(
        &self,
        st: &mut State,
        i: &DInode,
        lblk: u64,
    ) -> KResult<Option<(u64, u64)>> {
        // Walked in place: the root in the inode, index and leaf blocks
        // where the metadata cache holds them (no copy per lookup: a
        // read looks up its run once, but a lookup is per system call).
        let mut step = extent_step(i.iblock_bytes(), lblk)?;
        for _ in 0..6 {
            let c = match step {
                ExtStep::Leaf(None) => return Ok(None),
                ExtStep::Leaf(Some((b, n))) => {
                    self.check_block(b)?;
                    return Ok(Some((b, n)));
                }
                ExtStep::Child(c) => c,
            };
            step = match st.cache.get(&c) {
                Some(node) if self.check_block(c).is_ok() => extent_step(node, lblk)?,
                _ => {
                    let node = self.read_ext_block(st, i, c)?;
                    extent_step(&node, lblk)?
                }
            };
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
        self.bmap_alloc_run(st, ino, i, lblk, 1)
    }

    /// [`Self::bmap_alloc`] for a writer that will fill `want` blocks from
    /// `lblk` on: a hole in an extent-mapped file gets up to that many
    /// blocks at once, consecutive on the device, in one extent (the
    /// following calls find them mapped).
    fn bmap_alloc_run(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        lblk: u64,
        want: u64,
    ) -> KResult<(u64, bool)> {
        if i.flags() & EXTENTS_FL != 0 {
            return self.ext_map_alloc(st, ino, i, lblk, want.max(1));
        }
        if i.flags() & INLINE_DATA_FL != 0 {
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
    fn truncate_blocks(&self, st: &mut State, ino: u32, i: &mut DInode, keep: u64) -> KResult<()> {
        if i.ftype() == FileType::Symlink && i.is_fast_symlink(&self.geo) {
            return Ok(());
        }
        if i.flags() & EXTENTS_FL != 0 {
            return self.ext_truncate(st, ino, i, keep);
        }
        if i.flags() & INLINE_DATA_FL != 0 {
            return error!(EROFS);
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
        self.read_file_ahead(st, i, off, buf, 0)
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
            self.file_max_blocks(i) * bs
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
        // Whole blocks that follow each other on the device go out in one
        // write (up to 1 MiB): (first block, offset in `data`, blocks).
        let mut run: Option<(u64, usize, u64)> = None;
        while done < data.len() {
            let pos = off + done as u64;
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            let take = (bs as usize - in_blk).min(data.len() - done);
            // The whole blocks this write fills from here on.
            let want = if in_blk == 0 {
                ((data.len() - done) as u64 / bs).max(1)
            } else {
                1
            };
            let (b, fresh) = match self.bmap_alloc_run(st, ino, i, lblk, want) {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if take == bs as usize {
                match &mut run {
                    Some((first, _, n)) if *first + *n == b && *n * bs < (1 << 20) => *n += 1,
                    _ => {
                        if let Some((first, at, n)) = run.take() {
                            self.write_data_run(st, first, &data[at..at + (n * bs) as usize])?;
                        }
                        run = Some((b, done, 1));
                    }
                }
            } else {
                if let Some((first, at, n)) = run.take() {
                    self.write_data_run(st, first, &data[at..at + (n * bs) as usize])?;
                }
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
        if let Some((first, at, n)) = run.take() {
            self.write_data_run(st, first, &data[at..at + (n * bs) as usize])?;
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
        if len > self.file_max_blocks(i) * bs {
            return error!(EFBIG);
        }
        let old = i.size();
        if len < old {
            self.truncate_blocks(st, ino, i, len.div_ceil(bs))?;
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
    /// The on-disk orphan list (journaled filesystems): an inode with no
    /// links left that is still open is chained from the superblock's
    /// s_last_orphan through i_dtime, so that a crash before its last
    /// close leaves it for the next mount to free.
    fn orphan_add(&self, st: &mut State, ino: u32, i: &mut DInode) -> KResult<()> {
        if self.geo.journal_ino == 0 {
            return Ok(());
        }
        put32(&mut i.raw, 20, le32(&st.sb, 0xE8));
        self.write_inode(st, ino, i)?;
        put32(&mut st.sb, 0xE8, ino);
        self.write_super(st)
    }

    /// Unchains `ino` from the orphan list (if it is there).
    fn orphan_del(&self, st: &mut State, ino: u32, i: &DInode) -> KResult<()> {
        let next = le32(&i.raw, 20);
        let mut cur = le32(&st.sb, 0xE8);
        if cur == ino {
            put32(&mut st.sb, 0xE8, next);
            return self.write_super(st);
        }
        for _ in 0..self.geo.inodes_count.min(1 << 20) {
            if cur == 0 || cur > self.geo.inodes_count {
                return Ok(());
            }
            let mut p = self.read_inode(st, cur)?;
            let pn = le32(&p.raw, 20);
            if pn == ino {
                put32(&mut p.raw, 20, next);
                return self.write_inode(st, cur, &p);
            }
            cur = pn;
        }
        Err(corrupt("orphan list loops"))
    }

    /// At a read-write mount: frees the inodes a crash left on the orphan
    /// list.
    fn orphan_cleanup(&self, st: &mut State) -> KResult<()> {
        let mut cur = le32(&st.sb, 0xE8);
        let mut n = 0;
        while cur != 0 {
            if n >= self.geo.inodes_count.min(1 << 20) || cur > self.geo.inodes_count {
                return Err(corrupt("bad orphan list"));
            }
            n += 1;
            let mut i = self.read_inode(st, cur)?;
            let next = le32(&i.raw, 20);
            put32(&mut st.sb, 0xE8, next);
            self.write_super(st)?;
            if i.links() == 0 && i.mode() != 0 {
                put32(&mut i.raw, 20, 0);
                self.write_inode(st, cur, &i)?;
                self.evict(st, cur)?;
            } else {
                put32(&mut i.raw, 20, 0);
                self.write_inode(st, cur, &i)?;
            }
            cur = next;
        }
        if n > 0 {
            crate::log::info(&format!(
                "EXT4-fs ({}): {n} orphan inodes deleted",
                dev_name(self.dev_no)
            ));
        }
        Ok(())
    }

    fn evict(&self, st: &mut State, ino: u32) -> KResult<()> {
        let mut i = self.read_inode(st, ino)?;
        if st.orphans.contains(&ino) {
            self.orphan_del(st, ino, &i)?;
            i = self.read_inode(st, ino)?;
        }
        let dir = i.ftype() == FileType::Directory;
        if !(i.ftype() == FileType::Symlink && i.is_fast_symlink(&self.geo))
            && matches!(
                i.ftype(),
                FileType::Regular | FileType::Directory | FileType::Symlink
            )
        {
            self.truncate_blocks(st, ino, &mut i, 0)?;
        }
        let acl = i.file_acl();
        if acl != 0 {
            self.xattr_release_block(st, acl)?;
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
                self.orphan_add(st, ino, &mut i)?;
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
            let data = self.read_dir_block(st, i, l, b)?;
            if let Some(r) = f(st, l, b, &data)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Bytes of a directory block entries may use (metadata_csum keeps a
    /// 12-byte checksum tail after them).
    fn dir_space(&self) -> usize {
        self.geo.bs as usize - if self.geo.csum { 12 } else { 0 }
    }

    fn dir_tail_ok(&self, blk: &[u8]) -> bool {
        let t = blk.len() - 12;
        le32(blk, t) == 0 && le16(blk, t + 4) == 12 && blk[t + 6] == 0 && blk[t + 7] == 0xDE
    }

    /// Writes a directory block of `dir_ino`, with its checksum tail.
    fn write_dir_block(
        &self,
        st: &mut State,
        dir_ino: u32,
        gen: u32,
        b: u64,
        blk: &mut [u8],
    ) -> KResult<()> {
        if self.geo.csum {
            let t = blk.len() - 12;
            put32(blk, t, 0);
            put16(blk, t + 4, 12);
            blk[t + 6] = 0;
            blk[t + 7] = 0xDE;
            let c = csum::crc32c(self.ino_seed(dir_ino, gen), &blk[..t]);
            put32(blk, t + 8, c);
        }
        self.write_block(st, b, blk)
    }

    /// Turns an htree directory into a linear one before an entry is
    /// added without hashing: the flag goes, and with metadata_csum the
    /// index blocks become empty directory blocks with checksum tails.
    fn dir_unindex(&self, st: &mut State, dir_ino: u32, dir: &mut DInode) -> KResult<()> {
        if dir.flags() & INDEX_FL == 0 {
            return Ok(());
        }
        let bs = self.geo.bs as usize;
        if self.geo.csum {
            let n = dir.size().div_ceil(bs as u64);
            for l in 0..n.min(1 << 20) {
                let Some(b) = self.bmap(st, dir, l)? else {
                    continue;
                };
                let mut blk = self.read_meta(st, b)?;
                if l == 0 {
                    let (_, r0, _, _) = dirent_at(&blk, 0)?;
                    let (_, r1, _, _) = dirent_at(&blk, r0)?;
                    if r0 + r1 == bs && r0 + 12 + 12 <= bs {
                        put16(&mut blk, r0 + 4, (bs - 12 - r0) as u16);
                        self.write_dir_block(st, dir_ino, dir.generation(), b, &mut blk)?;
                    }
                } else if le32(&blk, 0) == 0 && le16(&blk, 4) as usize == bs {
                    put16(&mut blk, 4, (bs - 12) as u16);
                    self.write_dir_block(st, dir_ino, dir.generation(), b, &mut blk)?;
                }
            }
        }
        dir.set_flags(dir.flags() & !INDEX_FL);
        self.write_inode(st, dir_ino, dir)
    }

    /// Looks `name` up in directory `dir`: (inode, d_type byte).
    fn dir_find(&self, st: &mut State, dir: &DInode, name: &[u8]) -> KResult<Option<(u32, u8)>> {
        Ok(self.dir_locate(st, dir, name)?.map(|f| (f.4, f.6)))
    }

    /// Where `name` is in directory `dir`: through the hash tree of an
    /// indexed directory (a malformed index falls back to a linear scan,
    /// as Linux does), else block by block.
    fn dir_locate(
        &self,
        st: &mut State,
        dir: &DInode,
        name: &[u8],
    ) -> KResult<Option<htree::Found>> {
        if self.is_dx(st, dir) {
            if let Ok(r) = self.dx_find(st, dir, name) {
                return Ok(r);
            }
        }
        self.dir_blocks(st, dir, |_, l, b, blk| {
            Ok(htree::scan_block(blk, name)?
                .map(|(off, prev, ino, rec, ft)| (l, b, off, prev, ino, rec, ft)))
        })
    }

    /// Entries from position `pos`: (next position, ino, name, type).
    /// A position is a hash cookie in a hash-ordered directory
    /// ([`Self::dx_list`]), else a byte offset.
    fn dir_list(
        &self,
        st: &mut State,
        dir: &DInode,
        pos: u64,
        max: usize,
    ) -> KResult<Vec<DirEntry>> {
        if self.lists_by_hash(st, dir) {
            return self.dx_list(st, dir, pos, max);
        }
        let bs = self.geo.bs;
        let mut out = Vec::new();
        let mut l = pos / bs;
        let n = dir.size().div_ceil(bs);
        let mut start = (pos % bs) as usize;
        while l < n && out.len() < max {
            if let Some(b) = self.bmap(st, dir, l)? {
                let blk = self.read_dir_block(st, dir, l, b)?;
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
        if self.is_dx(st, &dir) {
            return match self.dx_add(st, dir_ino, &mut dir, name, ino, ft) {
                Ok(()) => self.dir_touch(st, dir_ino, &mut dir),
                // A malformed index: without checksums Linux drops the
                // index and adds linearly; with them it is an error.
                Err(e) if self.geo.csum || e != crate::errno!(EUCLEAN) => Err(e),
                Err(_) => {
                    let mut dir = self.read_inode(st, dir_ino)?;
                    self.dir_unindex(st, dir_ino, &mut dir)?;
                    self.dir_add_linear(st, dir_ino, dir, name, ino, ft, need)
                }
            };
        }
        self.dir_unindex(st, dir_ino, &mut dir)?;
        self.dir_add_linear(st, dir_ino, dir, name, ino, ft, need)
    }

    /// dir_add into a linear directory (which may become indexed).
    #[allow(clippy::too_many_arguments)]
    fn dir_add_linear(
        &self,
        st: &mut State,
        dir_ino: u32,
        mut dir: DInode,
        name: &[u8],
        ino: u32,
        ft: u8,
        need: usize,
    ) -> KResult<()> {
        let bs = self.geo.bs as usize;
        let space = self.dir_space();
        let csum = self.geo.csum;
        let write_entry = |blk: &mut [u8], off: usize, rec: usize| {
            put32(blk, off, ino);
            put16(blk, off + 4, rec as u16);
            blk[off + 6] = name.len() as u8;
            blk[off + 7] = ft;
            blk[off + 8..off + 8 + name.len()].copy_from_slice(name);
        };
        let slot = self.dir_blocks(st, &dir, |_, _, b, blk| {
            if csum && !self.dir_tail_ok(blk) {
                return Err(corrupt("directory block without a checksum tail"));
            }
            let mut off = 0;
            while off < space {
                let (eino, rec, nl, _) = dirent_at(blk, off)?;
                if off + rec > space {
                    return Err(corrupt("directory entry over the checksum tail"));
                }
                let used = if eino == 0 { 0 } else { rec_len_for(nl) };
                if rec - used >= need {
                    return Ok(Some((b, off, used, rec)));
                }
                off += rec;
            }
            Ok(None)
        })?;
        let gen = dir.generation();
        if let Some((b, off, used, rec)) = slot {
            let mut blk = self.read_meta(st, b)?;
            if used == 0 {
                write_entry(&mut blk, off, rec);
            } else {
                put16(&mut blk, off + 4, used as u16);
                write_entry(&mut blk, off + used, rec - used);
            }
            self.write_dir_block(st, dir_ino, gen, b, &mut blk)?;
        } else if self.dx_make_indexed(st, dir_ino, &mut dir, name, ino, ft)? {
            // The first block filled: the directory is indexed now.
        } else {
            // A new block at the end.
            let l = dir.size() / bs as u64;
            let (b, _) = self.bmap_alloc(st, dir_ino, &mut dir, l)?;
            let mut blk = vec![0u8; bs];
            write_entry(&mut blk, 0, space);
            self.write_dir_block(st, dir_ino, gen, b, &mut blk)?;
            dir.set_size((l + 1) * bs as u64);
        }
        self.dir_touch(st, dir_ino, &mut dir)
    }

    /// Sets a changed directory's times and writes its inode.
    fn dir_touch(&self, st: &mut State, dir_ino: u32, dir: &mut DInode) -> KResult<()> {
        let tm = now();
        dir.set_mtime(tm);
        dir.set_ctime(tm);
        self.write_inode(st, dir_ino, dir)
    }

    /// Removes `name` from directory `dir_ino`; returns its inode.
    fn dir_remove(&self, st: &mut State, dir_ino: u32, name: &[u8]) -> KResult<u32> {
        let dir = self.read_inode(st, dir_ino)?;
        let Some((_, b, off, prev, ino, rec, _)) = self.dir_locate(st, &dir, name)? else {
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
        // Removing an entry keeps an htree index valid (as Linux does).
        self.write_dir_block(st, dir_ino, dir.generation(), b, &mut blk)?;
        let mut dir = self.read_inode(st, dir_ino)?;
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
        let Some((_, b, off, ..)) = self.dir_locate(st, &dir, name)? else {
            return error!(ENOENT);
        };
        let mut blk = self.read_meta(st, b)?;
        put32(&mut blk, off, ino);
        if self.geo.filetype {
            blk[off + 7] = dirent_type(t);
        }
        self.write_dir_block(st, dir_ino, dir.generation(), b, &mut blk)
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
        let old = self.read_inode_raw(st, ino)?;
        let mut i = DInode {
            ino,
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
        if self.geo.extents && matches!(t, FileType::Regular | FileType::Directory) {
            extent::init_root(&mut i);
        }
        Ok((ino, i))
    }
}

impl Drop for Ext2Fs {
    /// Unmounted: the page cache must not keep pages under this device's
    /// numbers (another filesystem may come to the same device).
    fn drop(&mut self) {
        if !self.ro() {
            let mut st = self.raw_lock();
            if let Err(e) = self.stop_journaling(&mut st) {
                crate::log::warn(&format!("EXT4-fs: unmounting: {e:?}"));
            }
        }
        let mapped: Vec<u32> = self.lock().mapped.drain().collect();
        for ino in mapped {
            self.invalidate_ino(ino);
        }
        let _ = self.held.dev.flush();
    }
}

/// Mounted filesystems, for sync(2) and halt.
static MOUNTED: Mutex<Vec<std::sync::Weak<Ext2Fs>>> = Mutex::new(Vec::new());

fn register(fs: &Arc<Ext2Fs>) {
    let mut m = MOUNTED.lock().unwrap_or_else(|p| p.into_inner());
    m.retain(|w| w.strong_count() > 0);
    m.push(Arc::downgrade(fs));
}

fn mounted() -> Vec<Arc<Ext2Fs>> {
    let m = MOUNTED.lock().unwrap_or_else(|p| p.into_inner());
    m.iter().filter_map(|w| w.upgrade()).collect()
}

/// sync(2): commits every mounted filesystem's journal.
pub fn sync_all() {
    for fs in mounted() {
        let _ = fs.sync_fs();
    }
}

/// Halt: every filesystem is left as an unmount leaves it (committed,
/// the journal empty and the recovery flag cleared).
pub fn shutdown_all() {
    for fs in mounted() {
        if !fs.ro() {
            let mut st = fs.raw_lock();
            // Files unlinked while open go now, as at umount.
            let orphans: Vec<u32> = st.orphans.iter().copied().collect();
            for ino in orphans {
                if let Err(e) = fs.evict(&mut st, ino) {
                    crate::log::warn(&format!("EXT4-fs: freeing inode {ino} at halt: {e:?}"));
                }
            }
            if let Err(e) = fs.stop_journaling(&mut st) {
                crate::log::warn(&format!("EXT4-fs: at halt: {e:?}"));
            }
            drop(st);
            fs.read_only
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = fs.dev().flush();
    }
}

/// Commits a journaled filesystem's running transaction every five
/// seconds (as jbd2's commit interval); the thread ends with the mount.
fn journal_timer(fs: &Arc<Ext2Fs>) {
    let weak = Arc::downgrade(fs);
    let _ = std::thread::Builder::new()
        .name("jbd2".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let Some(fs) = weak.upgrade() else {
                return;
            };
            let pending = !fs.raw_lock().txn.is_empty();
            if pending {
                let _ = fs.sync_fs();
            }
        });
}

/// A group descriptor's checksum: crc32c (metadata_csum) or crc16
/// (gdt_csum) of the group number and the descriptor without its
/// checksum field.
fn gd_csum(geo: &Geometry, sb: &[u8], g: u32, d: &[u8]) -> u16 {
    let le = g.to_le_bytes();
    if geo.csum {
        let mut c = csum::crc32c(geo.csum_seed, &le);
        c = csum::crc32c(c, &d[..0x1E]);
        c = csum::crc32c(c, &[0, 0]);
        if d.len() > 0x20 {
            c = csum::crc32c(c, &d[0x20..]);
        }
        c as u16
    } else {
        let mut c = csum::crc16(!0, &sb[0x68..0x78]);
        c = csum::crc16(c, &le);
        c = csum::crc16(c, &d[..0x1E]);
        if geo.is64 && d.len() > 0x20 {
            c = csum::crc16(c, &d[0x20..]);
        }
        c
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

/// One level of an extent tree walk for logical block `lblk`.
enum ExtStep {
    /// A leaf: the physical block and how many follow it in its extent
    /// (None: a hole or an uninitialized extent).
    Leaf(Option<(u64, u64)>),
    /// An index node: the child block to descend into.
    Child(u64),
}

/// Looks `lblk` up in one extent tree node (checked header).
fn extent_step(node: &[u8], lblk: u64) -> KResult<ExtStep> {
    if node.len() < 12 || le16(node, 0) != 0xF30A {
        return Err(corrupt("bad extent header"));
    }
    let entries = le16(node, 2) as usize;
    let depth = le16(node, 6);
    if 12 + entries * 12 > node.len() || depth > 5 {
        return Err(corrupt("bad extent header counts"));
    }
    if depth == 0 {
        for e in 0..entries {
            let o = 12 + e * 12;
            let start = le32(node, o) as u64;
            let mut len = le16(node, o + 4) as u64;
            let uninit = len > 32768;
            if uninit {
                len -= 32768;
            }
            if lblk >= start && lblk < start + len {
                if uninit {
                    return Ok(ExtStep::Leaf(None));
                }
                let phys = (le16(node, o + 6) as u64) << 32 | le32(node, o + 8) as u64;
                return Ok(ExtStep::Leaf(Some((
                    phys + (lblk - start),
                    start + len - lblk,
                ))));
            }
        }
        return Ok(ExtStep::Leaf(None));
    }
    let mut child = None;
    for e in 0..entries {
        let o = 12 + e * 12;
        if le32(node, o) as u64 <= lblk {
            child = Some((le16(node, o + 8) as u64) << 32 | le32(node, o + 4) as u64);
        } else {
            break;
        }
    }
    Ok(match child {
        Some(c) => ExtStep::Child(c),
        None => ExtStep::Leaf(None),
    })
}

#[cfg(test)]
mod tests {
    //! Hostile images in bulk: an image made by the host's mke2fs,
    //! corrupted at random a thousand times in its metadata, mounted from
    //! memory and walked, read and written: errors are fine, a panic or a
    //! hang is not.

    use super::*;
    use crate::block::{Disk, Kind};
    use crate::fs::vfs::Inode;

    /// An image in memory. `limit`: writes after that many are dropped
    /// (a power cut); `writes` counts them.
    struct MemDev(Mutex<Vec<u8>>, Mutex<(u64, Option<u64>)>);

    impl MemDev {
        fn new(img: Vec<u8>, limit: Option<u64>) -> MemDev {
            MemDev(Mutex::new(img), Mutex::new((0, limit)))
        }
        fn writes(&self) -> u64 {
            self.1.lock().unwrap().0
        }
    }

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
            let mut c = self.1.lock().unwrap();
            c.0 += 1;
            if c.1.is_some_and(|l| c.0 > l) {
                return Ok(());
            }
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

    fn host_tool(name: &str) -> String {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| format!("{d}/{name}"))
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| panic!("{name} (e2fsprogs) is needed: see .ci/run"))
    }

    /// A small image with directories, files (direct, indirect and
    /// double-indirect blocks, or several extents) and symlinks, made by
    /// the host's mke2fs with `args`.
    fn make_image(tag: &str, args: &[&str], size: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("ruml-ext2-unit-{tag}-{}", std::process::id()));
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
        let st = std::process::Command::new(host_tool("mke2fs"))
            .args(["-q", "-F"])
            .args(args)
            .arg("-d")
            .arg(&src)
            .arg(&img)
            .arg(size)
            .status()
            .unwrap();
        assert!(st.success());
        let v = std::fs::read(&img).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        v
    }

    fn base_image() -> Vec<u8> {
        make_image("ext2", &["-t", "ext2", "-b", "1024", "-N", "64"], "1M")
    }

    /// The host's e2fsck -fn on an image: (clean, its output).
    fn e2fsck(img: &[u8], tag: &str) -> (bool, String) {
        let path =
            std::env::temp_dir().join(format!("ruml-ext2-fsck-{tag}-{}", std::process::id()));
        std::fs::write(&path, img).unwrap();
        let out = std::process::Command::new(host_tool("e2fsck"))
            .arg("-fn")
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn mount_mem(
        img: Vec<u8>,
        limit: Option<u64>,
        n: u32,
    ) -> (Arc<MemDev>, KResult<Arc<dyn Inode>>) {
        let dev = Arc::new(MemDev::new(img, limit));
        let disk = Disk::new(format!("mem{n}"), (240, n), Kind::Ubd);
        disk.bind(Some(dev.clone() as Arc<dyn BlockDevice>));
        let r = vfs::mount(&disk, false);
        (dev, r)
    }

    fn fs_of(root: &Arc<dyn Inode>) -> Arc<Ext2Fs> {
        root.as_any()
            .downcast_ref::<vfs::Ext2Inode>()
            .unwrap()
            .fs
            .clone()
    }

    fn write_all(root: &Arc<dyn Inode>, name: &[u8], data: &[u8]) -> KResult<()> {
        let caller = crate::fs::vfs::Caller::kernel();
        let f = match root.lookup(name, &caller) {
            Ok(f) => f,
            Err(_) => root.create(name, 0o644, 0)?.0,
        };
        let ino = f.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
        let fs = fs_of(root);
        let mut st = fs.lock();
        let mut i = fs.read_inode(&mut st, ino)?;
        fs.write_file(&mut st, ino, &mut i, 0, data)?;
        Ok(())
    }

    fn read_all(root: &Arc<dyn Inode>, name: &[u8]) -> KResult<Vec<u8>> {
        let caller = crate::fs::vfs::Caller::kernel();
        let f = root.lookup(name, &caller)?;
        let ino = f.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
        let fs = fs_of(root);
        let mut st = fs.lock();
        let i = fs.read_inode(&mut st, ino)?;
        let mut buf = vec![0u8; i.size() as usize];
        let n = fs.read_file(&mut st, &i, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The workload of the power-cut test: returns the device's write
    /// count when the fsync'ed file was committed.
    fn crash_workload(root: &Arc<dyn Inode>, dev: &MemDev) -> KResult<u64> {
        let fs = fs_of(root);
        write_all(root, b"kept", &[7u8; 5000])?;
        fs.sync_fs()?;
        let synced = dev.writes();
        root.mkdir(b"nd", 0o755)?;
        for k in 0..30u32 {
            let data: Vec<u8> = (0..(k * 997) % 20000).map(|x| (x ^ k) as u8).collect();
            write_all(root, format!("n{k}").as_bytes(), &data)?;
            if k % 4 == 0 {
                root.rename(
                    format!("n{k}").as_bytes(),
                    root.as_ref(),
                    format!("r{k}").as_bytes(),
                    0,
                )?;
            }
            if k % 5 == 1 {
                root.unlink(format!("n{}", k - 1).as_bytes())
                    .or(Ok::<(), crate::errno::Errno>(()))?;
            }
            if k % 10 == 9 {
                fs.sync_fs()?;
            }
        }
        let caller = crate::fs::vfs::Caller::kernel();
        let d1 = root.lookup(b"d1", &caller)?;
        d1.unlink(b"f3")?;
        let _ = root.symlink(b"ls", &[b'y'; 300]);
        let big = d1.lookup(b"d2", &caller)?.lookup(b"big", &caller)?;
        big.setattr(&crate::fs::vfs::SetAttr {
            size: Some(5000),
            ..Default::default()
        })?;
        Ok(synced)
    }

    /// Power cuts at every point of a journaled workload: after replay
    /// at the next mount, the host's e2fsck finds the image clean and
    /// data fsync'ed before the cut is there.
    #[test]
    fn ext4_power_cut_at_any_write_replays_to_consistent() {
        let base = make_image("ext4j", &["-t", "ext4", "-J", "size=1"], "4M");
        let (dev, root) = mount_mem(base.clone(), None, 5000);
        let root = root.expect("mount");
        crash_workload(&root, &dev).expect("workload");
        drop(root);
        let total = dev.writes();
        let (clean, out) = e2fsck(&dev.0.lock().unwrap(), "full");
        assert!(clean, "after a clean run: {out}");
        let step = (total / 100).max(1);
        let mut cut = 0;
        let mut n = 0;
        while cut <= total {
            n += 1;
            let (dev, root) = mount_mem(base.clone(), Some(cut), 5000 + n);
            let synced = match root {
                Ok(root) => crash_workload(&root, &dev).ok(),
                Err(_) => None,
            };
            let img = dev.0.lock().unwrap().clone();
            let (dev2, root2) = mount_mem(img, None, 6000 + n);
            let root2 = root2.unwrap_or_else(|e| panic!("cut at {cut}: remount: {e:?}"));
            if synced.is_some_and(|s| cut >= s) {
                assert_eq!(
                    read_all(&root2, b"kept").unwrap(),
                    vec![7u8; 5000],
                    "cut at {cut}"
                );
            }
            walk(&fs_of(&root2));
            drop(root2);
            let (clean, out) = e2fsck(&dev2.0.lock().unwrap(), &format!("cut{cut}"));
            assert!(clean, "power cut after write {cut} of {total}: {out}");
            cut += step;
        }
        let replayed = journal::REPLAYED.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{n} power cuts, {replayed} transactions replayed");
        assert!(replayed > 0, "no power cut left a transaction to replay");
    }

    /// The file data cache: small reads fill it (with read-ahead), file
    /// writes update it, a write through a block device node empties it,
    /// freed blocks leave it.
    #[test]
    fn ext4_data_cache_follows_writes_raw_device_writes_and_frees() {
        let base = make_image("ext4dc", &["-t", "ext4"], "4M");
        let (dev, root) = mount_mem(base, None, 7100);
        let root = root.expect("mount");
        let fs = fs_of(&root);
        let data: Vec<u8> = (0..40000u32).map(|x| (x % 253) as u8).collect();
        write_all(&root, b"a", &data).unwrap();
        let caller = crate::fs::vfs::Caller::kernel();
        let f = root.lookup(b"a", &caller).unwrap();
        let ino = f.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
        let small = |off: u64| -> Vec<u8> {
            let mut st = fs.lock();
            let i = fs.read_inode(&mut st, ino).unwrap();
            let mut b = vec![0u8; 100];
            let n = fs
                .read_file_ahead(&mut st, &i, off, &mut b, datacache::READ_AHEAD)
                .unwrap();
            b.truncate(n);
            b
        };
        assert_eq!(small(0), &data[..100]);
        let bs = fs.geo.bs;
        let (b0, cached) = {
            let mut st = fs.lock();
            let i = fs.read_inode(&mut st, ino).unwrap();
            let b0 = fs.bmap(&mut st, &i, 0).unwrap().unwrap();
            (b0, st.data.len())
        };
        assert!(
            cached as u64 >= 40000 / bs,
            "read-ahead cached {cached} blocks"
        );
        // A file write: the cached copy follows.
        {
            let mut st = fs.lock();
            let mut i = fs.read_inode(&mut st, ino).unwrap();
            fs.write_file(&mut st, ino, &mut i, 50, &[9u8; 100])
                .unwrap();
        }
        let mut want = data.clone();
        want[50..150].fill(9);
        assert_eq!(small(0), &want[..100]);
        assert_eq!(small(bs + 7), &want[(bs + 7) as usize..(bs + 107) as usize]);
        // A write to the device under the filesystem, as through
        // /dev/ubda: the next read sees it.
        {
            let mut img = dev.0.lock().unwrap();
            let at = (b0 * bs) as usize;
            img[at..at + 100].fill(0xEE);
        }
        crate::block::note_raw_write();
        assert_eq!(small(0), vec![0xEEu8; 100]);
        // Freed blocks leave the cache.
        assert_eq!(small(0), vec![0xEEu8; 100]);
        assert!(fs.lock().data.contains(b0));
        f.setattr(&crate::fs::vfs::SetAttr {
            size: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert!(!fs.lock().data.contains(b0));
    }

    /// The lazy checkpoint leaves several committed transactions in the
    /// log, with revoke records for blocks freed after they were logged
    /// (directory blocks of removed directories, reused by file data):
    /// the image as a crash leaves it replays on the host's e2fsck and
    /// on this driver to the same files, and e2fsck finds it clean.
    #[test]
    fn ext4_log_of_many_transactions_with_revokes_replays_on_the_host() {
        let base = make_image("ext4multi", &["-t", "ext4", "-J", "size=1"], "4M");
        let (dev, root) = mount_mem(base, None, 7000);
        let root = root.expect("mount");
        let fs = fs_of(&root);
        let caller = crate::fs::vfs::Caller::kernel();
        let mut want: Vec<(String, Vec<u8>)> = Vec::new();
        for k in 0..12u32 {
            let d = format!("dir{k}");
            root.mkdir(d.as_bytes(), 0o755).unwrap();
            let dir = root.lookup(d.as_bytes(), &caller).unwrap();
            for e in 0..40 {
                dir.create(format!("entry-with-a-long-name-{e}").as_bytes(), 0o644, 0)
                    .unwrap();
            }
            fs.sync_fs().unwrap();
            for e in 0..40 {
                dir.unlink(format!("entry-with-a-long-name-{e}").as_bytes())
                    .unwrap();
            }
            drop(dir);
            root.rmdir(d.as_bytes()).unwrap();
            fs.sync_fs().unwrap();
            let name = format!("file{k}");
            let data: Vec<u8> = (0..30000u32).map(|x| (x * 7 + k) as u8).collect();
            write_all(&root, name.as_bytes(), &data).unwrap();
            fs.sync_fs().unwrap();
            want.push((name, data));
        }
        let crashed = dev.0.lock().unwrap().clone();
        drop(root);
        drop(fs);
        // The log is not empty: the journal superblock's s_start.
        let dirty = {
            let path = std::env::temp_dir().join(format!("ruml-ext2-multi-{}", std::process::id()));
            std::fs::write(&path, &crashed).unwrap();
            let out = std::process::Command::new(host_tool("debugfs"))
                .args(["-R", "logdump"])
                .arg(&path)
                .output()
                .unwrap();
            let _ = std::fs::remove_file(&path);
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert!(
            dirty.matches("(commit block)").count() > 1 && dirty.contains("(revoke table)"),
            "the log holds one transaction or none, or no revoke:\n{dirty}"
        );
        // The host's e2fsck replays it.
        let path = std::env::temp_dir().join(format!("ruml-ext2-multi-h-{}", std::process::id()));
        std::fs::write(&path, &crashed).unwrap();
        let out = std::process::Command::new(host_tool("e2fsck"))
            .arg("-fy")
            .arg(&path)
            .output()
            .unwrap();
        let host_replayed = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "e2fsck -fy: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let (clean, o) = e2fsck(&host_replayed, "multi-host");
        assert!(clean, "after the host's replay: {o}");
        // And this driver's replay, at mount.
        for (n, img) in [(7001, host_replayed), (7002, crashed)] {
            let (dev2, root2) = mount_mem(img, None, n);
            let root2 = root2.expect("mount after the crash");
            for (name, data) in &want {
                assert_eq!(&read_all(&root2, name.as_bytes()).unwrap(), data, "{name}");
            }
            walk(&fs_of(&root2));
            drop(root2);
            let (clean, o) = e2fsck(&dev2.0.lock().unwrap(), &format!("multi{n}"));
            assert!(clean, "after replay: {o}");
        }
    }

    /// ext4 images (extents, flex_bg, 64bit, metadata_csum, a journal)
    /// corrupted at random, read-write: errors, never a panic.
    #[test]
    fn a_thousand_corrupt_ext4_images_never_panic() {
        let base = make_image("ext4c", &["-t", "ext4", "-J", "size=1", "-N", "64"], "3M");
        let mut seed = 0x0fed_cba9_8765_4321u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut mounted = 0;
        for n in 0..1000u32 {
            let mut img = base.clone();
            let count = [2, 10, 60][(n % 3) as usize];
            for _ in 0..count {
                // Superblock, descriptors, bitmaps, inode table, the root
                // and first directories (the first 300 KiB).
                let at = 1024 + (rnd() % (300 * 1024)) as usize;
                img[at] = rnd() as u8;
            }
            let (_dev, root) = mount_mem(img, None, 7000 + n);
            let Ok(root) = root else {
                continue;
            };
            mounted += 1;
            exercise(&root);
        }
        eprintln!("{mounted} of 1000 corrupt ext4 images mounted");
        assert!(mounted > 100, "only {mounted} of 1000 images mounted");
    }

    /// Reads, writes and changes what a corrupt image lets it.
    fn exercise(root: &Arc<dyn Inode>) {
        let caller = crate::fs::vfs::Caller::kernel();
        let fs = fs_of(root);
        walk(&fs);
        let _ = root.mkdir(b"nd", 0o755);
        let _ = root.symlink(b"ns", b"d1/f2");
        let _ = root.symlink(b"nl", &[b'y'; 200]);
        let _ = write_all(root, b"nw", &[1u8; 70000]);
        if let Ok((_, _f)) = root.create(b"nf", 0o644, 0) {
            let _ = root.unlink(b"nf");
        }
        if let Ok(d1) = root.lookup(b"d1", &caller) {
            let _ = root.rename(b"d1", root.as_ref(), b"moved", 0);
            let _ = d1.unlink(b"f3");
            for k in 0..20 {
                let _ = d1.create(format!("x{k}").as_bytes(), 0o644, 0);
            }
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
        let _ = fs.sync_fs();
        walk(&fs);
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
        let mut mounted = 0;
        for n in 0..1000u32 {
            let mut img = base.clone();
            let count = [3, 20, 150][(n % 3) as usize];
            for _ in 0..count {
                // Metadata lives in the first 100 KiB of this image.
                let at = 1024 + (rnd() % (100 * 1024)) as usize;
                img[at] = rnd() as u8;
            }
            let (_dev, root) = mount_mem(img, None, n);
            let Ok(root) = root else {
                continue;
            };
            mounted += 1;
            exercise(&root);
        }
        // Most images still mount: the walk ran on corrupt filesystems.
        assert!(mounted > 300, "only {mounted} of 1000 images mounted");
    }
    /// The word-at-a-time skip finds what a bit-by-bit scan finds.
    #[test]
    fn first_free_matches_a_bit_scan() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..400 {
            let len = 64 + (next() % 200) as usize;
            // Mostly full bitmaps, with a few clear bits.
            let mut bm = vec![0xFFu8; len];
            let mut also = vec![0u8; len];
            for _ in 0..(round % 6) {
                let b = (next() % (len as u64 * 8)) as usize;
                bm[b / 8] &= !(1 << (b % 8));
            }
            for _ in 0..(round % 3) {
                let b = (next() % (len as u64 * 8)) as usize;
                also[b / 8] |= 1 << (b % 8);
            }
            let from = next() % (len as u64 * 8);
            let to = from + next() % (len as u64 * 8 - from + 1);
            for a in [None, Some(also.as_slice())] {
                let want = (from..to).find(|&b| {
                    let (i, m) = ((b / 8) as usize, 1u8 << (b % 8));
                    (bm[i] | a.map_or(0, |a| a[i])) & m == 0
                });
                assert_eq!(first_free(&bm, a, from, to), want, "{from}..{to}");
            }
        }
    }

    mod htree_csum;
    mod journal_commit;
    mod profile;
    mod readdir;
}
