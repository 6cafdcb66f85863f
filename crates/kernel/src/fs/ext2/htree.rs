//! htree (dir_index) directories: lookups walk the hash tree, insertions
//! go into the leaf the hash selects, a full leaf is split in two by hash
//! (the index grows: a full root moves into a new interior node, a full
//! interior node splits), and a linear directory whose first block fills
//! becomes indexed — as Linux's fs/ext4/namei.c does, so the host's
//! e2fsck finds the index valid.
//!
//! Layout (Linux's): logical block 0 is the root — "." and ".." records,
//! then dx_root_info (hash version, indirect levels) and the entries;
//! interior nodes are one empty record covering the block, then the
//! entries. An entry is (hash, logical block); the first one's hash slot
//! holds (limit, count). With metadata_csum, index blocks end in a dx
//! tail and leaves in a dirent tail ([`super::verify`]). A stored hash
//! with the low bit set marks a leaf continuing its predecessor's run of
//! equal hashes.
//!
//! Everything runs under the filesystem's state mutex, like the rest of
//! the directory code; a malformed index gives EUCLEAN.

use super::{
    corrupt, dirent_at, le16, le32, put16, put32, rec_len_for, DInode, Ext2Fs, State, INDEX_FL,
};
use crate::errno::KResult;
use crate::error;

const COMPAT_DIR_INDEX: u32 = 0x20;
const INCOMPAT_LARGEDIR: u32 = 0x4000;
/// s_flags: the legacy/half-MD4/TEA hashes use unsigned chars.
const FLAGS_UNSIGNED_HASH: u32 = 0x2;
const ROOT_CO: usize = 32;
const NODE_CO: usize = 8;
/// Linux's EXT4_HTREE_EOF_32BIT.
const HTREE_EOF: u32 = 0x7fff_ffff;

/// Where a name was found: (logical block, physical block, offset,
/// offset of the record before it, inode, rec_len, d_type).
pub(super) type Found = (u64, u64, usize, Option<usize>, u32, usize, u8);

/// A record found in one block: (offset, previous record's offset,
/// inode, rec_len, d_type).
pub(super) type InBlock = (usize, Option<usize>, u32, usize, u8);

/// One index block on the path from the root to a leaf.
struct Frame {
    lblk: u64,
    pblk: u64,
    blk: Vec<u8>,
    /// Offset of (limit, count).
    co: usize,
    /// The entry followed.
    at: usize,
}

impl Frame {
    fn count(&self) -> usize {
        le16(&self.blk, self.co + 2) as usize
    }
    fn limit(&self) -> usize {
        le16(&self.blk, self.co) as usize
    }
    fn hash(&self, i: usize) -> u32 {
        if i == 0 {
            0
        } else {
            le32(&self.blk, self.co + 8 * i)
        }
    }
    fn block(&self, i: usize) -> u64 {
        (le32(&self.blk, self.co + 8 * i + 4) & 0x0fff_ffff) as u64
    }
    /// Inserts (hash, block) as entry `pos` (room checked by the caller).
    fn insert(&mut self, pos: usize, hash: u32, block: u64) {
        let n = self.count();
        let co = self.co;
        let start = co + 8 * pos;
        self.blk.copy_within(start..co + 8 * n, start + 8);
        put32(&mut self.blk, start, hash);
        put32(&mut self.blk, start + 4, block as u32);
        put16(&mut self.blk, co + 2, (n + 1) as u16);
    }
}

/// A live entry of a leaf: (hash, inode, name, d_type).
type Ent = (u32, u32, Vec<u8>, u8);

impl Ext2Fs {
    fn dir_index_feature(&self, st: &State) -> bool {
        le32(&st.sb, 0x5C) & COMPAT_DIR_INDEX != 0
    }

    /// Whether `dir` is to be handled as an htree directory.
    pub(super) fn is_dx(&self, st: &State, dir: &DInode) -> bool {
        dir.flags() & INDEX_FL != 0 && self.dir_index_feature(st)
    }

    fn root_limit(&self) -> usize {
        (self.geo.bs as usize - ROOT_CO - if self.geo.csum { 8 } else { 0 }) / 8
    }

    fn node_limit(&self) -> usize {
        (self.geo.bs as usize - NODE_CO - if self.geo.csum { 8 } else { 0 }) / 8
    }

    /// The hash version `v` (from the root) as used: the unsigned variant
    /// if the superblock says so.
    fn hash_version(&self, st: &State, v: u8) -> KResult<u8> {
        if v > 2 {
            return Err(corrupt(&format!("dx_probe: unrecognised hash code {v}")));
        }
        Ok(if le32(&st.sb, 0x160) & FLAGS_UNSIGNED_HASH != 0 {
            v + 3
        } else {
            v
        })
    }

    /// The major hash of `name` (low bit clear).
    fn name_hash(&self, st: &State, version: u8, name: &[u8]) -> u32 {
        let mut seed = [0u32; 4];
        for (k, s) in seed.iter_mut().enumerate() {
            *s = le32(&st.sb, 0xEC + 4 * k);
        }
        dirhash(version, &seed, name)
    }

    fn dir_pblk(&self, st: &mut State, dir: &DInode, lblk: u64) -> KResult<u64> {
        if lblk >= dir.size().div_ceil(self.geo.bs) {
            return Err(corrupt(&format!(
                "inode #{}: htree points past the directory's end",
                dir.ino
            )));
        }
        match self.bmap(st, dir, lblk)? {
            Some(b) => Ok(b),
            None => Err(corrupt(&format!(
                "inode #{}: htree points at a hole",
                dir.ino
            ))),
        }
    }

    /// The path from the root to the leaf `hash` belongs in; also the
    /// hash version in use.
    fn dx_probe(&self, st: &mut State, dir: &DInode, name: &[u8]) -> KResult<(Vec<Frame>, u32)> {
        let pblk = self.dir_pblk(st, dir, 0)?;
        let blk = self.read_dir_block(st, dir, 0, pblk)?;
        if blk.len() < ROOT_CO + 8 || le32(&blk, 24) != 0 || blk[29] != 8 {
            return Err(corrupt(&format!("inode #{}: bad htree root", dir.ino)));
        }
        let version = self.hash_version(st, blk[28])?;
        let levels = blk[30] as usize;
        let max_levels = if le32(&st.sb, 0x60) & INCOMPAT_LARGEDIR != 0 {
            3
        } else {
            2
        };
        if levels >= max_levels {
            return Err(corrupt(&format!(
                "inode #{}: unimplemented htree depth {levels}",
                dir.ino
            )));
        }
        let hash = self.name_hash(st, version, name);
        let mut frames = Vec::new();
        let mut f = Frame {
            lblk: 0,
            pblk,
            blk,
            co: ROOT_CO,
            at: 0,
        };
        let mut want_limit = self.root_limit();
        loop {
            if f.limit() != want_limit || f.count() == 0 || f.count() > f.limit() {
                return Err(corrupt(&format!(
                    "inode #{}: htree node {} has a bad count or limit",
                    dir.ino, f.lblk
                )));
            }
            // The last entry whose hash is <= the name's.
            let (mut lo, mut hi) = (1, f.count());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if f.hash(mid) > hash {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            f.at = lo - 1;
            let child = f.block(f.at);
            frames.push(f);
            if frames.len() > levels {
                return Ok((frames, hash));
            }
            let pblk = self.dir_pblk(st, dir, child)?;
            let blk = self.read_dir_block(st, dir, child, pblk)?;
            if le32(&blk, 0) != 0 || le16(&blk, 4) as u64 != self.geo.bs {
                return Err(corrupt(&format!(
                    "inode #{}: htree node {child} is not an index block",
                    dir.ino
                )));
            }
            f = Frame {
                lblk: child,
                pblk,
                blk,
                co: NODE_CO,
                at: 0,
            };
            want_limit = self.node_limit();
        }
    }

    /// Moves `frames` to the next leaf if it may hold more names of hash
    /// `hash` (a continued run); false at the end.
    fn dx_next_leaf(
        &self,
        st: &mut State,
        dir: &DInode,
        frames: &mut [Frame],
        hash: u32,
    ) -> KResult<bool> {
        let Some(k) = (0..frames.len())
            .rev()
            .find(|&k| frames[k].at + 1 < frames[k].count())
        else {
            return Ok(false);
        };
        let next = frames[k].hash(frames[k].at + 1);
        if next & !1 != hash {
            return Ok(false);
        }
        frames[k].at += 1;
        for j in k + 1..frames.len() {
            let child = frames[j - 1].block(frames[j - 1].at);
            let pblk = self.dir_pblk(st, dir, child)?;
            let blk = self.read_dir_block(st, dir, child, pblk)?;
            let f = &mut frames[j];
            f.lblk = child;
            f.pblk = pblk;
            f.blk = blk;
            f.at = 0;
            if f.count() == 0 || f.count() > f.limit() || f.co + 8 * f.limit() > f.blk.len() {
                return Err(corrupt(&format!("inode #{}: bad htree node", dir.ino)));
            }
        }
        Ok(true)
    }

    /// Looks `name` up through the index of htree directory `dir`.
    pub(super) fn dx_find(
        &self,
        st: &mut State,
        dir: &DInode,
        name: &[u8],
    ) -> KResult<Option<Found>> {
        let (mut frames, hash) = self.dx_probe(st, dir, name)?;
        // Bounded by the directory's size: each step visits a new leaf.
        for _ in 0..=dir.size() / self.geo.bs {
            let Some(last) = frames.last() else {
                return Ok(None);
            };
            let lblk = last.block(last.at);
            let pblk = self.dir_pblk(st, dir, lblk)?;
            let blk = self.read_dir_block(st, dir, lblk, pblk)?;
            if let Some((off, prev, ino, rec, ft)) = scan_block(&blk, name)? {
                return Ok(Some((lblk, pblk, off, prev, ino, rec, ft)));
            }
            if !self.dx_next_leaf(st, dir, &mut frames, hash)? {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Whether `dir` is listed in hash order with hash cookies as
    /// positions: an indexed directory, and (as Linux's is_dx_dir) a
    /// one-block directory on a dir_index filesystem, so that a listing
    /// that began before the directory became indexed keeps its place.
    pub(super) fn lists_by_hash(&self, st: &State, dir: &DInode) -> bool {
        self.dir_index_feature(st) && (dir.flags() & INDEX_FL != 0 || dir.size() == self.geo.bs)
    }

    /// Entries of a hash-ordered directory ([`Self::lists_by_hash`]) whose
    /// cookie is at least `pos`, in cookie order, at most `max`: (next
    /// position, inode, name, type).
    ///
    /// A cookie is the name's major hash (31 bits) over a crc32c of the
    /// name (32 bits); "." is 1 and ".." 2. It depends on the name alone,
    /// not on where the entry lies, so a leaf split (which moves entries
    /// between blocks) during a listing neither repeats nor skips a name:
    /// the listing resumes after the last cookie it returned. Every block
    /// is read (index blocks hold no live records), and only the `max`
    /// smallest cookies are kept at any time.
    pub(super) fn dx_list(
        &self,
        st: &mut State,
        dir: &DInode,
        pos: u64,
        max: usize,
    ) -> KResult<Vec<super::DirEntry>> {
        let bs = self.geo.bs;
        let version = if dir.flags() & INDEX_FL != 0 {
            let root = match self.bmap(st, dir, 0)? {
                Some(b) => self.read_dir_block(st, dir, 0, b)?,
                None => return Err(corrupt("htree root is a hole")),
            };
            if root.len() < ROOT_CO + 8 {
                return Err(corrupt("bad htree root"));
            }
            self.hash_version(st, root[28])?
        } else {
            let def = st.sb[0xFC];
            self.hash_version(st, if def > 2 { 1 } else { def })?
        };
        let max = max.max(1);
        let mut found: Vec<(u64, u32, Vec<u8>, u8)> = Vec::new();
        let n = dir.size().div_ceil(bs);
        if n > (1 << 32) {
            return Err(corrupt("directory too large"));
        }
        for l in 0..n {
            let Some(b) = self.bmap(st, dir, l)? else {
                continue;
            };
            let blk = self.read_dir_block(st, dir, l, b)?;
            let mut off = 0;
            while off < blk.len() {
                let (ino, rec, nl, ft) = dirent_at(&blk, off)?;
                if ino != 0 {
                    let name = &blk[off + 8..off + 8 + nl];
                    let cookie = match name {
                        b"." => 1,
                        b".." => 2,
                        _ => {
                            let major = (self.name_hash(st, version, name) >> 1) as u64;
                            let minor = super::csum::crc32c(!0, name) as u64;
                            (major << 32 | minor).max(3)
                        }
                    };
                    if cookie >= pos {
                        found.push((cookie, ino, name.to_vec(), ft));
                        if found.len() >= 2 * max {
                            found.sort_unstable_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
                            found.truncate(max);
                        }
                    }
                }
                off += rec;
            }
        }
        found.sort_unstable_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
        found.truncate(max);
        Ok(found
            .into_iter()
            .map(|(c, ino, name, ft)| (c + 1, ino, name, ft))
            .collect())
    }

    /// Writes index block `f` with its checksum.
    fn write_frame(&self, st: &mut State, dir: &DInode, f: &mut Frame) -> KResult<()> {
        self.set_dx_csum(dir, &mut f.blk, f.co)?;
        self.write_block(st, f.pblk, &f.blk)
    }

    /// A new block at the end of directory `dir_ino`: (logical, physical).
    fn dir_grow(&self, st: &mut State, dir_ino: u32, dir: &mut DInode) -> KResult<(u64, u64)> {
        let l = dir.size() / self.geo.bs;
        if l >= 0x0fff_ffff {
            return error!(ENOSPC);
        }
        let (b, _) = self.bmap_alloc(st, dir_ino, dir, l)?;
        dir.set_size((l + 1) * self.geo.bs);
        Ok((l, b))
    }

    /// A fresh interior node block holding entries `ents` (the first one's
    /// hash is not stored).
    fn new_node(&self, ents: &[(u32, u64)]) -> Vec<u8> {
        let bs = self.geo.bs as usize;
        let mut blk = vec![0u8; bs];
        put16(&mut blk, 4, bs as u16);
        put16(&mut blk, NODE_CO, self.node_limit() as u16);
        put16(&mut blk, NODE_CO + 2, ents.len() as u16);
        for (i, &(h, b)) in ents.iter().enumerate() {
            if i > 0 {
                put32(&mut blk, NODE_CO + 8 * i, h);
            }
            put32(&mut blk, NODE_CO + 8 * i + 4, b as u32);
        }
        blk
    }

    /// Makes room for one more entry in the deepest index block of
    /// `frames`, growing the tree (a full root moves down into a new node)
    /// or splitting a full interior node into its parent.
    fn dx_make_room(
        &self,
        st: &mut State,
        dir_ino: u32,
        dir: &mut DInode,
        frames: &mut Vec<Frame>,
    ) -> KResult<()> {
        let d = frames.len() - 1;
        if frames[d].count() < frames[d].limit() {
            return Ok(());
        }
        if d == 0 {
            // The root is full: its entries move to a new node, one level
            // deeper.
            let root = &frames[0];
            let ents: Vec<(u32, u64)> = (0..root.count())
                .map(|i| (root.hash(i), root.block(i)))
                .collect();
            if ents.len() > self.node_limit() {
                return Err(corrupt("htree root larger than a node"));
            }
            let at = root.at;
            let (l, b) = self.dir_grow(st, dir_ino, dir)?;
            let mut node = Frame {
                lblk: l,
                pblk: b,
                blk: self.new_node(&ents),
                co: NODE_CO,
                at,
            };
            let root = &mut frames[0];
            put16(&mut root.blk, ROOT_CO + 2, 1);
            put32(&mut root.blk, ROOT_CO + 4, l as u32);
            root.blk[30] += 1;
            root.at = 0;
            self.write_frame(st, dir, &mut node)?;
            self.write_frame(st, dir, &mut frames[0])?;
            frames.push(node);
            return Ok(());
        }
        // A full interior node: split it, if its parent has room.
        if frames[d - 1].count() >= frames[d - 1].limit() {
            crate::log::warn(&format!(
                "EXT4-fs warning (device {}): inode #{dir_ino}: Directory index full!",
                super::dev_name(self.dev_no)
            ));
            return error!(ENOSPC);
        }
        let n = frames[d].count();
        let half = n / 2;
        let moved: Vec<(u32, u64)> = (half..n)
            .map(|i| (frames[d].hash(i), frames[d].block(i)))
            .collect();
        let key = moved[0].0;
        let (l, b) = self.dir_grow(st, dir_ino, dir)?;
        let mut new = Frame {
            lblk: l,
            pblk: b,
            blk: self.new_node(&moved),
            co: NODE_CO,
            at: 0,
        };
        put16(&mut frames[d].blk, NODE_CO + 2, half as u16);
        let pat = frames[d - 1].at;
        frames[d - 1].insert(pat + 1, key, l);
        if frames[d].at >= half {
            new.at = frames[d].at - half;
            frames[d - 1].at = pat + 1;
            let mut old = std::mem::replace(&mut frames[d], new);
            self.write_frame(st, dir, &mut old)?;
        } else {
            self.write_frame(st, dir, &mut new)?;
        }
        for f in frames.iter_mut().take(d + 1) {
            self.set_dx_csum(dir, &mut f.blk, f.co)?;
            self.write_block(st, f.pblk, &f.blk)?;
        }
        Ok(())
    }

    /// The live entries of leaf block `blk` with their hashes.
    fn leaf_entries(&self, st: &State, version: u8, blk: &[u8]) -> KResult<Vec<Ent>> {
        let mut out = Vec::new();
        let mut off = 0;
        let space = self.dir_space();
        while off < space {
            let (ino, rec, nl, ft) = dirent_at(blk, off)?;
            if ino != 0 {
                let name = blk[off + 8..off + 8 + nl].to_vec();
                out.push((self.name_hash(st, version, &name), ino, name, ft));
            }
            off += rec;
        }
        Ok(out)
    }

    /// A leaf block holding `ents`, packed, the last record reaching the
    /// checksum tail (or the block's end).
    fn pack_leaf(&self, ents: &[Ent]) -> Vec<u8> {
        let bs = self.geo.bs as usize;
        let space = self.dir_space();
        let mut blk = vec![0u8; bs];
        let mut off = 0;
        for (k, (_, ino, name, ft)) in ents.iter().enumerate() {
            let rec = if k + 1 == ents.len() {
                space - off
            } else {
                rec_len_for(name.len())
            };
            put_dirent(&mut blk, off, rec, *ino, name, *ft);
            off += rec;
        }
        if ents.is_empty() {
            put16(&mut blk, 4, space as u16);
        }
        blk
    }

    /// Adds `name` -> `ino` (d_type `ft`) to htree directory `dir_ino`.
    pub(super) fn dx_add(
        &self,
        st: &mut State,
        dir_ino: u32,
        dir: &mut DInode,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> KResult<()> {
        let (mut frames, hash) = self.dx_probe(st, dir, name)?;
        let version = self.hash_version(st, frames[0].blk[28])?;
        let gen = dir.generation();
        let space = self.dir_space();
        let leaf = frames.len() - 1;
        let lblk = frames[leaf].block(frames[leaf].at);
        let pblk = self.dir_pblk(st, dir, lblk)?;
        let mut blk = self.read_dir_block(st, dir, lblk, pblk)?;
        if put_entry(&mut blk, space, ino, name, ft)? {
            return self.write_dir_block(st, dir_ino, gen, pblk, &mut blk);
        }
        // The leaf is full: split it by hash, the new name included (so
        // both halves are at most half a block and one name).
        self.dx_make_room(st, dir_ino, dir, &mut frames)?;
        let mut ents = self.leaf_entries(st, version, &blk)?;
        if ents.is_empty() {
            return Err(corrupt(&format!(
                "inode #{dir_ino}: full htree leaf with no entry"
            )));
        }
        ents.push((hash, ino, name.to_vec(), ft));
        ents.sort_by_key(|e| e.0);
        let total: usize = ents.iter().map(|e| rec_len_for(e.2.len())).sum();
        let mut moved = 0;
        let mut split = ents.len();
        while split > 1 && moved < total / 2 {
            split -= 1;
            moved += rec_len_for(ents[split].2.len());
        }
        let hash2 = ents[split].0;
        let continued = (hash2 == ents[split - 1].0) as u32;
        let (nl, nb) = self.dir_grow(st, dir_ino, dir)?;
        let mut lower = self.pack_leaf(&ents[..split]);
        let mut upper = self.pack_leaf(&ents[split..]);
        self.write_dir_block(st, dir_ino, gen, pblk, &mut lower)?;
        self.write_dir_block(st, dir_ino, gen, nb, &mut upper)?;
        let last = frames.len() - 1;
        let f = &mut frames[last];
        let at = f.at;
        f.insert(at + 1, hash2 | continued, nl);
        self.write_frame(st, dir, f)
    }

    /// Turns linear directory `dir_ino` (one full block) into an htree:
    /// block 0 becomes the root, its entries go to two new leaves split by
    /// hash, then `name` is added. False if the directory does not
    /// qualify (the caller adds linearly).
    pub(super) fn dx_make_indexed(
        &self,
        st: &mut State,
        dir_ino: u32,
        dir: &mut DInode,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> KResult<bool> {
        let bs = self.geo.bs;
        if !self.dir_index_feature(st) || dir.size() != bs || bs > 32768 {
            return Ok(false);
        }
        let pblk = self.dir_pblk(st, dir, 0)?;
        let blk = self.read_dir_block(st, dir, 0, pblk)?;
        let (dino, r0, n0, _) = dirent_at(&blk, 0)?;
        if dino == 0 || n0 != 1 || blk[8] != b'.' || r0 != 12 {
            return Ok(false);
        }
        let (parent, r1, n1, _) = dirent_at(&blk, r0)?;
        if parent == 0 || n1 != 2 || &blk[r0 + 8..r0 + 10] != b".." {
            return Ok(false);
        }
        let def = st.sb[0xFC];
        let def = if def > 2 { 1 } else { def };
        let version = self.hash_version(st, def)?;
        let mut ents = Vec::new();
        let mut off = r0 + r1;
        while off < self.dir_space() {
            let (e, rec, nl, t) = dirent_at(&blk, off)?;
            if e != 0 {
                let n = blk[off + 8..off + 8 + nl].to_vec();
                ents.push((self.name_hash(st, version, &n), e, n, t));
            }
            off += rec;
        }
        let h = self.name_hash(st, version, name);
        ents.push((h, ino, name.to_vec(), ft));
        ents.sort_by_key(|e| e.0);
        let total: usize = ents.iter().map(|e| rec_len_for(e.2.len())).sum();
        let mut moved = 0;
        let mut split = ents.len();
        while split > 1 && moved < total / 2 {
            split -= 1;
            moved += rec_len_for(ents[split].2.len());
        }
        if split == 0 || split == ents.len() {
            return Ok(false);
        }
        let hash2 = ents[split].0;
        let continued = (hash2 == ents[split - 1].0) as u32;
        let gen = dir.generation();
        let (l1, b1) = self.dir_grow(st, dir_ino, dir)?;
        let (l2, b2) = self.dir_grow(st, dir_ino, dir)?;
        let mut lower = self.pack_leaf(&ents[..split]);
        let mut upper = self.pack_leaf(&ents[split..]);
        self.write_dir_block(st, dir_ino, gen, b1, &mut lower)?;
        self.write_dir_block(st, dir_ino, gen, b2, &mut upper)?;
        // The root.
        let mut root = vec![0u8; bs as usize];
        put_dirent(&mut root, 0, 12, dino, b".", blk[7]);
        put_dirent(&mut root, 12, bs as usize - 12, parent, b"..", blk[r0 + 7]);
        root[28] = def;
        root[29] = 8;
        put16(&mut root, ROOT_CO, self.root_limit() as u16);
        put16(&mut root, ROOT_CO + 2, 2);
        put32(&mut root, ROOT_CO + 4, l1 as u32);
        put32(&mut root, ROOT_CO + 8, hash2 | continued);
        put32(&mut root, ROOT_CO + 12, l2 as u32);
        dir.set_flags(dir.flags() | INDEX_FL);
        let mut f = Frame {
            lblk: 0,
            pblk,
            blk: root,
            co: ROOT_CO,
            at: 0,
        };
        self.write_frame(st, dir, &mut f)?;
        Ok(true)
    }
}

/// Writes one directory record.
fn put_dirent(blk: &mut [u8], off: usize, rec: usize, ino: u32, name: &[u8], ft: u8) {
    put32(blk, off, ino);
    put16(blk, off + 4, rec as u16);
    blk[off + 6] = name.len() as u8;
    blk[off + 7] = ft;
    blk[off + 8..off + 8 + name.len()].copy_from_slice(name);
}

/// Adds a record to leaf block `blk` (records within `space` bytes) if
/// one has room to spare; false if the block is full.
fn put_entry(blk: &mut [u8], space: usize, ino: u32, name: &[u8], ft: u8) -> KResult<bool> {
    let need = rec_len_for(name.len());
    let mut off = 0;
    while off < space {
        let (eino, rec, nl, _) = dirent_at(blk, off)?;
        if off + rec > space {
            return Err(corrupt("directory entry over the checksum tail"));
        }
        let used = if eino == 0 { 0 } else { rec_len_for(nl) };
        if rec - used >= need {
            if used == 0 {
                put_dirent(blk, off, rec, ino, name, ft);
            } else {
                put16(blk, off + 4, used as u16);
                put_dirent(blk, off + used, rec - used, ino, name, ft);
            }
            return Ok(true);
        }
        off += rec;
    }
    Ok(false)
}

/// Finds `name` in one directory block: (offset, previous record's
/// offset, inode, rec_len, d_type).
pub(super) fn scan_block(blk: &[u8], name: &[u8]) -> KResult<Option<InBlock>> {
    let mut off = 0;
    let mut prev = None;
    while off < blk.len() {
        let (ino, rec, nl, ft) = dirent_at(blk, off)?;
        if ino != 0 && nl == name.len() && &blk[off + 8..off + 8 + nl] == name {
            return Ok(Some((off, prev, ino, rec, ft)));
        }
        prev = Some(off);
        off += rec;
    }
    Ok(None)
}

// --- the hashes (Linux's fs/ext4/hash.c) -----------------------------------

/// ext4fs_dirhash's major hash for hash version `version` (0-2 signed,
/// 3-5 unsigned: legacy, half-MD4, TEA).
pub(super) fn dirhash(version: u8, seed: &[u32; 4], name: &[u8]) -> u32 {
    let mut buf = [0x6745_2301u32, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    if seed.iter().any(|&s| s != 0) {
        buf = *seed;
    }
    let unsigned = version >= 3;
    let hash = match version % 3 {
        0 => legacy_hash(name, unsigned),
        1 => {
            let mut p = name;
            loop {
                let mut input = [0u32; 8];
                str2hashbuf(p, &mut input, unsigned);
                half_md4(&mut buf, &input);
                if p.len() <= 32 {
                    break;
                }
                p = &p[32..];
            }
            buf[1]
        }
        _ => {
            let mut p = name;
            loop {
                let mut input = [0u32; 4];
                str2hashbuf(p, &mut input, unsigned);
                tea(&mut buf, &input);
                if p.len() <= 16 {
                    break;
                }
                p = &p[16..];
            }
            buf[0]
        }
    };
    let hash = hash & !1;
    if hash == HTREE_EOF << 1 {
        (HTREE_EOF - 1) << 1
    } else {
        hash
    }
}

fn char_val(c: u8, unsigned: bool) -> u32 {
    if unsigned {
        c as u32
    } else {
        c as i8 as i32 as u32
    }
}

fn legacy_hash(name: &[u8], unsigned: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &c in name {
        let mut h = h1.wrapping_add(h0 ^ char_val(c, unsigned).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// str2hashbuf_{signed,unsigned}: `out.len()` words of `msg`, padded.
fn str2hashbuf(msg: &[u8], out: &mut [u32], unsigned: bool) {
    let num = out.len();
    let len = msg.len();
    let mut pad = len as u32 | (len as u32) << 8;
    pad |= pad << 16;
    let mut val = pad;
    let take = len.min(num * 4);
    let mut w = 0;
    for (i, &c) in msg[..take].iter().enumerate() {
        val = char_val(c, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < num {
        out[w] = val;
        w += 1;
    }
    for o in out.iter_mut().skip(w) {
        *o = pad;
    }
}

fn tea(buf: &mut [u32; 4], input: &[u32; 4]) {
    let mut sum = 0u32;
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let [a, b, c, d] = *input;
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(b),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(c) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(d),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

fn half_md4(buf: &mut [u32; 4], x: &[u32; 8]) {
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s);
        };
    }
    round!(f, a, b, c, d, x[0], 3);
    round!(f, d, a, b, c, x[1], 7);
    round!(f, c, d, a, b, x[2], 11);
    round!(f, b, c, d, a, x[3], 19);
    round!(f, a, b, c, d, x[4], 3);
    round!(f, d, a, b, c, x[5], 7);
    round!(f, c, d, a, b, x[6], 11);
    round!(f, b, c, d, a, x[7], 19);
    round!(g, a, b, c, d, x[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, x[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, x[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, x[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, x[6].wrapping_add(K2), 13);
    round!(h, a, b, c, d, x[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, x[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, x[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, x[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, x[4].wrapping_add(K3), 15);
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}
