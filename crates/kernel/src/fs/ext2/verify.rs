//! metadata_csum verification of metadata blocks as they come from the
//! device: block and inode bitmaps, extent tree blocks, directory blocks
//! (leaf blocks' checksum tails and htree index blocks' dx tails). Inodes
//! are checked in `read_inode`, group descriptors and the superblock at
//! mount, the journal's checksums in `journal`.
//!
//! As Linux: a mismatch logs an `EXT4-fs error` line naming the device and
//! the structure and gives EBADMSG (Linux's EFSBADCRC); the bad block is
//! not cached, so every later read checks it again. Blocks are checked
//! once, when read from the device: a cached block is either one that
//! passed or one this driver wrote (with a fresh checksum).

use super::{csum, dev_name, le16, le32, put32, DInode, Ext2Fs, State, INDEX_FL};
use crate::errno::{Errno, KResult};

/// dx_root_info's size (the root's count/limit follow it at offset 32).
const DX_ROOT_COUNT_OFF: usize = 32;
/// An interior dx node's count/limit follow its fake 8-byte dirent.
const DX_NODE_COUNT_OFF: usize = 8;

impl Ext2Fs {
    /// Logs a checksum mismatch and gives Linux's EFSBADCRC (EBADMSG).
    pub(super) fn bad_csum(&self, what: &str) -> Errno {
        crate::log::warn(&format!(
            "EXT4-fs error (device {}): {what}",
            dev_name(self.dev_no)
        ));
        crate::errno!(EBADMSG)
    }

    /// A metadata block through the cache; `check` runs on it when it
    /// comes from the device (a failing block is not cached).
    pub(super) fn read_meta_checked(
        &self,
        st: &mut State,
        b: u64,
        check: impl FnOnce(&[u8]) -> KResult<()>,
    ) -> KResult<Vec<u8>> {
        self.check_block(b)?;
        if let Some(v) = st.cache.get(&b) {
            return Ok(v.clone());
        }
        let mut v = vec![0u8; self.geo.bs as usize];
        self.dev().read_sectors(b * self.geo.bs / 512, &mut v)?;
        check(&v)?;
        self.cache_insert(st, b, &v);
        Ok(v)
    }

    /// Group `g`'s block bitmap as stored, checked against the checksum in
    /// its descriptor.
    pub(super) fn read_block_bitmap(&self, st: &mut State, g: u32) -> KResult<Vec<u8>> {
        let blk = st.groups[g as usize].block_bitmap;
        let want = self.gd_bitmap_csum(st, g, 0x18, 0x38);
        let n = (self.geo.bpg / 8) as usize;
        self.read_meta_checked(st, blk, |bm| {
            if self.geo.csum && !self.bitmap_ok(&bm[..n.min(bm.len())], want) {
                return Err(self.bad_csum(&format!("bg {g}: bad block bitmap checksum")));
            }
            Ok(())
        })
    }

    /// Group `g`'s inode bitmap as stored, checked likewise.
    pub(super) fn read_inode_bitmap(&self, st: &mut State, g: u32) -> KResult<Vec<u8>> {
        let blk = st.groups[g as usize].inode_bitmap;
        let want = self.gd_bitmap_csum(st, g, 0x1A, 0x3A);
        let n = (self.geo.ipg as usize).div_ceil(8);
        self.read_meta_checked(st, blk, |bm| {
            if self.geo.csum && !self.bitmap_ok(&bm[..n.min(bm.len())], want) {
                return Err(self.bad_csum(&format!("bg {g}: bad inode bitmap checksum")));
            }
            Ok(())
        })
    }

    /// (stored checksum, whether it has 32 bits) of a bitmap in group
    /// `g`'s descriptor: low half at `lo`, high half at `hi` (64-byte
    /// descriptors).
    fn gd_bitmap_csum(&self, st: &State, g: u32, lo: usize, hi: usize) -> (u32, bool) {
        let off = g as usize * self.geo.desc_size;
        let d = &st.gdt[off..off + self.geo.desc_size];
        if self.geo.desc_size >= 64 {
            (le16(d, lo) as u32 | (le16(d, hi) as u32) << 16, true)
        } else {
            (le16(d, lo) as u32, false)
        }
    }

    fn bitmap_ok(&self, bm: &[u8], (want, full): (u32, bool)) -> bool {
        let c = csum::crc32c(self.geo.csum_seed, bm);
        if full {
            c == want
        } else {
            c & 0xFFFF == want
        }
    }

    /// An extent tree block of inode `i`, its checksum tail checked.
    pub(super) fn read_ext_block(&self, st: &mut State, i: &DInode, b: u64) -> KResult<Vec<u8>> {
        self.read_meta_checked(st, b, |node| {
            if !self.geo.csum {
                return Ok(());
            }
            let max = le16(node, 4) as usize;
            let t = 12 + 12 * max;
            if t + 4 > node.len() {
                return Err(super::corrupt(&format!(
                    "inode #{}: extent block {b} has no room for its checksum",
                    i.ino
                )));
            }
            let c = csum::crc32c(self.ino_seed(i.ino, i.generation()), &node[..t]);
            if c != le32(node, t) {
                return Err(self.bad_csum(&format!(
                    "inode #{}: pblk {b}: extent tree block failed checksum",
                    i.ino
                )));
            }
            Ok(())
        })
    }

    /// Block `lblk` (at `b`) of directory `dir`, checked: an htree index
    /// block against its dx tail, a leaf block against its dirent tail.
    pub(super) fn read_dir_block(
        &self,
        st: &mut State,
        dir: &DInode,
        lblk: u64,
        b: u64,
    ) -> KResult<Vec<u8>> {
        self.read_meta_checked(st, b, |blk| {
            if !self.geo.csum {
                return Ok(());
            }
            let seed = self.ino_seed(dir.ino, dir.generation());
            if let Some(co) = self.dx_count_offset(dir, lblk, blk) {
                return match dx_csum_slot(blk, co) {
                    Some((t, count)) if dx_csum(seed, blk, co, count, t) == le32(blk, t + 4) => {
                        Ok(())
                    }
                    _ => Err(self.bad_csum(&format!(
                        "inode #{}: lblock {lblk}: Directory index failed checksum",
                        dir.ino
                    ))),
                };
            }
            let t = blk.len() - 12;
            if !self.dir_tail_ok(blk) || csum::crc32c(seed, &blk[..t]) != le32(blk, t + 8) {
                return Err(self.bad_csum(&format!(
                    "inode #{}: lblock {lblk}: Directory block failed checksum",
                    dir.ino
                )));
            }
            Ok(())
        })
    }

    /// Where the count/limit pair of an htree index block is (None: `blk`
    /// is a leaf block): the root is block 0 of an indexed directory, an
    /// interior node is one empty record covering the whole block.
    pub(super) fn dx_count_offset(&self, dir: &DInode, lblk: u64, blk: &[u8]) -> Option<usize> {
        if dir.flags() & INDEX_FL == 0 {
            return None;
        }
        if lblk == 0 {
            return Some(DX_ROOT_COUNT_OFF);
        }
        if le32(blk, 0) == 0 && le16(blk, 4) as u64 == self.geo.bs && blk[6] == 0 {
            return Some(DX_NODE_COUNT_OFF);
        }
        None
    }

    /// Sets the dx tail checksum of an index block (count/limit at `co`).
    pub(super) fn set_dx_csum(&self, dir: &DInode, blk: &mut [u8], co: usize) -> KResult<()> {
        if !self.geo.csum {
            return Ok(());
        }
        let Some((t, count)) = dx_csum_slot(blk, co) else {
            return Err(super::corrupt(&format!(
                "inode #{}: htree node has no room for its checksum",
                dir.ino
            )));
        };
        put32(blk, t, 0);
        let c = dx_csum(self.ino_seed(dir.ino, dir.generation()), blk, co, count, t);
        put32(blk, t + 4, c);
        Ok(())
    }
}

/// The dx tail's offset and the entry count of an index block whose
/// count/limit are at `co`, if the limit leaves room for the tail.
fn dx_csum_slot(blk: &[u8], co: usize) -> Option<(usize, usize)> {
    if co + 4 > blk.len() {
        return None;
    }
    let limit = le16(blk, co) as usize;
    let count = le16(blk, co + 2) as usize;
    let t = co + limit * 8;
    if count > limit || t + 8 > blk.len() {
        return None;
    }
    Some((t, count))
}

/// ext4_dx_csum: the block up to the last entry, the tail's reserved
/// word, and a zero checksum field.
fn dx_csum(seed: u32, blk: &[u8], co: usize, count: usize, t: usize) -> u32 {
    let mut c = csum::crc32c(seed, &blk[..co + count * 8]);
    c = csum::crc32c(c, &blk[t..t + 4]);
    csum::crc32c(c, &[0; 4])
}
