//! Extended attributes on ext2/3/4, in ext4's on-disk format: entries in
//! the inode's extra space after `i_extra_isize` (the "ibody": a magic
//! word, then entries, values packed at the end of the space, offsets
//! relative to the first entry) and in one attribute block (`i_file_acl`:
//! a 32-byte header with a reference count, entries sorted by (name index,
//! name length, name) as Linux's lookup expects, values packed from the
//! end of the block, offsets relative to the block; with metadata_csum a
//! crc32c over the block number and the block).
//!
//! Every change rewrites both places from the whole set: entries go into
//! the inode while they fit, the rest into the block (ENOSPC when that is
//! full too). A block shared by several inodes (reference count above 1,
//! as Linux's mbcache makes them) is never changed in place: the inode
//! gets a block of its own and the shared one loses a reference.
//! Values in separate inodes (the ea_inode feature) are not supported: the
//! mount refuses that feature, and such an entry reads as corruption.
//!
//! Names are stored as an index and a suffix: 1 `user.`, 4 `trusted.`,
//! 6 `security.`; entries with other indexes (POSIX ACLs, `system.data`,
//! richacl) are kept as they are but not shown (system.* is EOPNOTSUPP
//! in ruml). Everything read from the image is bounds-checked: a bad
//! entry gives EUCLEAN.

use super::*;

const XATTR_MAGIC: u32 = 0xEA02_0000;
/// The attribute block's header.
const BLOCK_HDR: usize = 32;
/// An entry's fixed part.
const ENTRY_HDR: usize = 16;
/// The superblock's compat feature "ext_attr".
const COMPAT_EXT_ATTR: u32 = 0x8;

/// One attribute as stored: name index, name suffix, value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    index: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Entry {
    fn key(&self) -> (u8, usize, &[u8]) {
        (self.index, self.name.len(), &self.name)
    }
    /// Space the entry takes: its record and its padded value.
    fn space(&self) -> usize {
        entry_len(self.name.len()) + pad4(self.value.len())
    }
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn entry_len(name_len: usize) -> usize {
    pad4(ENTRY_HDR + name_len)
}

/// The full name of an entry ruml shows.
fn full_name(e: &Entry) -> Option<Vec<u8>> {
    let p: &[u8] = match e.index {
        1 => b"user.",
        4 => b"trusted.",
        6 => b"security.",
        _ => return None,
    };
    Some([p, &e.name[..]].concat())
}

/// (index, suffix) of a name ruml stores; EOPNOTSUPP for system.*.
fn split_name(name: &[u8]) -> KResult<(u8, &[u8])> {
    for (p, idx) in [(&b"user."[..], 1u8), (b"trusted.", 4), (b"security.", 6)] {
        if let Some(rest) = name.strip_prefix(p) {
            if rest.is_empty() || rest.len() > 255 {
                return error!(EINVAL);
            }
            return Ok((idx, rest));
        }
    }
    error!(EOPNOTSUPP)
}

/// ext4_xattr_hash_entry: over the name and the value's 32-bit words.
fn hash_entry(name: &[u8], value: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 5) ^ (h >> 27) ^ c as u32;
    }
    for w in value.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(b);
    }
    h
}

/// Parses the entries of an area: entries from `first`, value offsets
/// relative to `base`, everything inside `area`.
fn parse(area: &[u8], first: usize, base: usize) -> KResult<Vec<Entry>> {
    let mut out = Vec::new();
    let mut at = first;
    loop {
        if at + 4 > area.len() {
            return Err(corrupt("xattr entries run past their area"));
        }
        if le32(area, at) == 0 {
            return Ok(out);
        }
        if at + ENTRY_HDR > area.len() {
            return Err(corrupt("xattr entry past its area"));
        }
        let name_len = area[at] as usize;
        let index = area[at + 1];
        let offs = le16(area, at + 2) as usize;
        let inum = le32(area, at + 4);
        let size = le32(area, at + 8) as usize;
        let elen = entry_len(name_len);
        if name_len == 0 || at + elen > area.len() {
            return Err(corrupt("bad xattr entry name"));
        }
        if inum != 0 {
            return Err(corrupt("xattr value in an inode (ea_inode)"));
        }
        let value = if size == 0 {
            Vec::new()
        } else {
            let start = base + offs;
            if start < first || size > area.len() || start > area.len() - size {
                return Err(corrupt("xattr value outside its area"));
            }
            area[start..start + size].to_vec()
        };
        out.push(Entry {
            index,
            name: area[at + ENTRY_HDR..at + ENTRY_HDR + name_len].to_vec(),
            value,
        });
        at += elen;
    }
}

/// Lays `entries` out in `area` (zeroed beforehand by the caller) from
/// `first`, value offsets relative to `base`; false if they do not fit.
fn layout(area: &mut [u8], entries: &[Entry], first: usize, base: usize) -> bool {
    let mut at = first;
    let mut vend = area.len();
    for e in entries {
        let elen = entry_len(e.name.len());
        let vl = pad4(e.value.len());
        if at + elen + 4 + vl > vend {
            return false;
        }
        let offs = if vl > 0 {
            vend -= vl;
            area[vend..vend + e.value.len()].copy_from_slice(&e.value);
            vend - base
        } else {
            0
        };
        area[at] = e.name.len() as u8;
        area[at + 1] = e.index;
        put16(area, at + 2, offs as u16);
        put32(area, at + 4, 0);
        put32(area, at + 8, e.value.len() as u32);
        put32(area, at + 12, hash_entry(&e.name, &e.value));
        area[at + ENTRY_HDR..at + ENTRY_HDR + e.name.len()].copy_from_slice(&e.name);
        at += elen;
    }
    true
}

impl Ext2Fs {
    /// The in-inode attribute space of `i`: (start, length) in its raw
    /// bytes, if it has any (a 4-byte magic word, entries, values).
    fn ibody_area(&self, i: &DInode) -> Option<(usize, usize)> {
        let start = 128 + i.extra_isize();
        if i.extra_isize() == 0 || start + 8 > i.raw.len() {
            return None;
        }
        Some((start, i.raw.len() - start))
    }

    /// metadata_csum's checksum of attribute block `b`.
    fn xattr_block_csum(&self, b: u64, blk: &[u8]) -> u32 {
        let mut c = csum::crc32c(self.geo.csum_seed, &b.to_le_bytes());
        c = csum::crc32c(c, &blk[..16]);
        c = csum::crc32c(c, &[0; 4]);
        csum::crc32c(c, &blk[20..])
    }

    /// Reads and checks attribute block `b`.
    fn read_xattr_block(&self, st: &mut State, b: u64) -> KResult<Vec<u8>> {
        self.check_block(b)?;
        let blk = self.read_meta(st, b)?;
        if le32(&blk, 0) != XATTR_MAGIC || le32(&blk, 8) != 1 {
            return Err(corrupt(&format!("bad xattr block {b}")));
        }
        if self.geo.csum && le32(&blk, 16) != self.xattr_block_csum(b, &blk) {
            return Err(corrupt(&format!("xattr block {b} checksum does not match")));
        }
        Ok(blk)
    }

    /// Writes attribute block `b` with its hash and checksum filled in.
    fn write_xattr_block(&self, st: &mut State, b: u64, mut blk: Vec<u8>) -> KResult<()> {
        if self.geo.csum {
            let c = self.xattr_block_csum(b, &blk);
            put32(&mut blk, 16, c);
        }
        self.write_block(st, b, &blk)
    }

    /// An inode's attributes: (in the inode, in its block).
    fn xattr_load(&self, st: &mut State, i: &DInode) -> KResult<(Vec<Entry>, Vec<Entry>)> {
        let mut ibody = Vec::new();
        if let Some((start, _)) = self.ibody_area(i) {
            if le32(&i.raw, start) == XATTR_MAGIC {
                ibody = parse(&i.raw[start..], 4, 4)?;
            }
        }
        let acl = i.file_acl();
        let block = if acl != 0 {
            let blk = self.read_xattr_block(st, acl)?;
            parse(&blk, BLOCK_HDR, 0)?
        } else {
            Vec::new()
        };
        Ok((ibody, block))
    }

    /// Drops one reference to attribute block `b`: frees it when it was
    /// the last (deleting an inode, or an inode leaving a shared block).
    pub(super) fn xattr_release_block(&self, st: &mut State, b: u64) -> KResult<()> {
        self.check_block(b)?;
        let mut blk = self.read_meta(st, b)?;
        if le32(&blk, 0) == XATTR_MAGIC && le32(&blk, 4) > 1 {
            let rc = le32(&blk, 4) - 1;
            put32(&mut blk, 4, rc);
            self.write_xattr_block(st, b, blk)
        } else {
            self.free_block(st, b)
        }
    }

    /// getxattr: the value of `name` on inode `ino`.
    pub(super) fn xattr_get(&self, ino: u32, name: &[u8]) -> KResult<Vec<u8>> {
        let (index, suffix) = split_name(name)?;
        let mut st = self.lock();
        let i = self.live_inode(&mut st, ino)?;
        let (a, b) = self.xattr_load(&mut st, &i)?;
        a.into_iter()
            .chain(b)
            .find(|e| e.index == index && e.name == suffix)
            .map(|e| e.value)
            .ok_or(crate::errno!(ENODATA))
    }

    /// listxattr: the names of inode `ino`'s attributes ruml shows.
    pub(super) fn xattr_list(&self, ino: u32) -> KResult<Vec<Vec<u8>>> {
        let mut st = self.lock();
        let i = self.live_inode(&mut st, ino)?;
        let (a, b) = self.xattr_load(&mut st, &i)?;
        Ok(a.iter().chain(b.iter()).filter_map(full_name).collect())
    }

    /// setxattr (`value` Some) or removexattr (None) on inode `ino`.
    pub(super) fn xattr_set(
        &self,
        ino: u32,
        name: &[u8],
        value: Option<&[u8]>,
        flags: u32,
    ) -> KResult<()> {
        use crate::fs::xattr::{XATTR_CREATE, XATTR_REPLACE};
        let (index, suffix) = split_name(name)?;
        let mut st = self.lock();
        let mut i = self.live_inode(&mut st, ino)?;
        let (ibody, block) = self.xattr_load(&mut st, &i)?;
        let mut all: Vec<Entry> = ibody.into_iter().chain(block).collect();
        let pos = all
            .iter()
            .position(|e| e.index == index && e.name == suffix);
        match (pos, value) {
            (None, None) => return error!(ENODATA),
            (Some(p), None) => {
                all.remove(p);
            }
            (Some(_), Some(_)) if flags & XATTR_CREATE != 0 => return error!(EEXIST),
            (None, Some(_)) if flags & XATTR_REPLACE != 0 => return error!(ENODATA),
            (Some(p), Some(v)) => all[p].value = v.to_vec(),
            (None, Some(v)) => all.push(Entry {
                index,
                name: suffix.to_vec(),
                value: v.to_vec(),
            }),
        }
        // Placement: what was in the inode first, then the rest, each into
        // the inode while it fits.
        let area = self.ibody_area(&i);
        let cap = area.map_or(0, |(_, len)| len.saturating_sub(8));
        let mut used = 0usize;
        let mut in_inode = Vec::new();
        let mut in_block = Vec::new();
        for e in all {
            if used + e.space() <= cap {
                used += e.space();
                in_inode.push(e);
            } else {
                in_block.push(e);
            }
        }
        in_block.sort_by(|a, b| a.key().cmp(&b.key()));
        let bs = self.geo.bs as usize;
        let mut blk = vec![0u8; bs];
        if !in_block.is_empty() {
            if !layout(&mut blk, &in_block, BLOCK_HDR, 0) {
                return error!(ENOSPC);
            }
            put32(&mut blk, 0, XATTR_MAGIC);
            put32(&mut blk, 4, 1);
            put32(&mut blk, 8, 1);
            // The block hash (ext4_xattr_rehash), over the entry hashes.
            let mut h: u32 = 0;
            for e in &in_block {
                h = (h << 16) ^ (h >> 16) ^ hash_entry(&e.name, &e.value);
            }
            put32(&mut blk, 12, h);
        }
        // The inode's space.
        if let Some((start, len)) = area {
            let raw = &mut i.raw[start..start + len];
            raw.fill(0);
            if !in_inode.is_empty() {
                put32(raw, 0, XATTR_MAGIC);
                if !layout(&mut raw[..], &in_inode, 4, 4) {
                    return Err(corrupt("xattr layout"));
                }
                // layout() wrote from offset 4 with values at the end; the
                // magic word stays at 0.
            }
        }
        // The block.
        let old = i.file_acl();
        if in_block.is_empty() {
            if old != 0 {
                self.xattr_release_block(&mut st, old)?;
                i.add_blocks(&self.geo, -1);
                i.set_file_acl(0);
            }
        } else {
            let shared = old != 0 && le32(&self.read_meta(&mut st, old)?, 4) > 1;
            let target = if old != 0 && !shared {
                old
            } else {
                let g = ((ino - 1) / self.geo.ipg) as usize;
                let goal = st.groups.get(g).map_or(0, |g| g.inode_table);
                let b = self.alloc_block(&mut st, goal)?;
                if old != 0 {
                    self.xattr_release_block(&mut st, old)?;
                } else {
                    i.add_blocks(&self.geo, 1);
                }
                i.set_file_acl(b);
                b
            };
            self.write_xattr_block(&mut st, target, blk)?;
        }
        i.set_ctime(now());
        self.write_inode(&mut st, ino, &i)?;
        let compat = le32(&st.sb, 0x5C);
        if compat & COMPAT_EXT_ATTR == 0 {
            put32(&mut st.sb, 0x5C, compat | COMPAT_EXT_ATTR);
            self.write_super(&mut st)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_then_parse_round_trips() {
        let es = vec![
            Entry {
                index: 1,
                name: b"a".to_vec(),
                value: b"hello".to_vec(),
            },
            Entry {
                index: 4,
                name: b"longer".to_vec(),
                value: Vec::new(),
            },
        ];
        let mut area = vec![0u8; 100];
        assert!(layout(&mut area, &es, 4, 4));
        put32(&mut area, 0, XATTR_MAGIC);
        assert_eq!(parse(&area, 4, 4).unwrap(), es);
        let mut small = vec![0u8; 40];
        assert!(!layout(&mut small, &es, 4, 4));
        // Hostile: a value offset past the area, a name past the area.
        let mut bad = area.clone();
        put16(&mut bad, 4 + 2, 200);
        assert!(parse(&bad, 4, 4).is_err());
        let mut bad = area.clone();
        bad[4] = 250;
        assert!(parse(&bad, 4, 4).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(split_name(b"user.x").unwrap(), (1, &b"x"[..]));
        assert_eq!(split_name(b"security.selinux").unwrap().0, 6);
        assert!(split_name(b"system.posix_acl_access").is_err());
        let e = Entry {
            index: 6,
            name: b"s".to_vec(),
            value: vec![],
        };
        assert_eq!(full_name(&e).unwrap(), b"security.s");
    }
}
