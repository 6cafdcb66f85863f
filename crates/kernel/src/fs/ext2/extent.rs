//! ext4 extent trees, written.
//!
//! Mapping a hole: the block is allocated next to its left neighbour's,
//! and the common cases change one leaf in place — the neighbour grows
//! by one block, or the new extent goes into a leaf with room. Anything
//! else (a full leaf, a new first extent of a leaf, an unwritten extent
//! being written) flattens the tree into its list of extents, changes the
//! list, and lays the tree out again: leaves full, index
//! levels added while more than the inode's four entries remain, old
//! tree blocks reused and the surplus freed. Truncation does the same.
//! Every tree block gets its checksum tail (metadata_csum).
//!
//! Reading goes through [`Ext2Fs::extent_lookup`] (the parent module).
//! Locking: all of it runs under the filesystem's state mutex.

use super::*;

const EXT_MAGIC: u16 = 0xF30A;
/// Longest initialized extent.
const MAX_INIT_LEN: u32 = 32768;
/// Most tree nodes one walk visits (a bound on a corrupt tree's cost).
const MAX_NODES: u32 = 1 << 17;

/// One extent: `len` blocks from logical `lblk` at physical `pblk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ext {
    lblk: u32,
    len: u32,
    pblk: u64,
    /// Allocated but unwritten (reads as zeros).
    uninit: bool,
}

impl Ext {
    fn end(&self) -> u64 {
        self.lblk as u64 + self.len as u64
    }
}

/// Makes `i`'s i_block an empty extent tree and sets EXTENTS_FL.
pub(super) fn init_root(i: &mut DInode) {
    i.raw[40..100].fill(0);
    put16(&mut i.raw, 40, EXT_MAGIC);
    put16(&mut i.raw, 44, 4);
    i.set_flags(i.flags() | EXTENTS_FL);
}

fn parse_ext(node: &[u8], o: usize) -> Ext {
    let mut len = le16(node, o + 4) as u32;
    let uninit = len > MAX_INIT_LEN;
    if uninit {
        len -= MAX_INIT_LEN;
    }
    Ext {
        lblk: le32(node, o),
        len,
        pblk: (le16(node, o + 6) as u64) << 32 | le32(node, o + 8) as u64,
        uninit,
    }
}

fn put_ext(node: &mut [u8], o: usize, e: &Ext) {
    put32(node, o, e.lblk);
    put16(
        node,
        o + 4,
        if e.uninit {
            e.len + MAX_INIT_LEN
        } else {
            e.len
        } as u16,
    );
    put16(node, o + 6, (e.pblk >> 32) as u16);
    put32(node, o + 8, e.pblk as u32);
}

fn put_idx(node: &mut [u8], o: usize, lblk: u32, child: u64) {
    put32(node, o, lblk);
    put32(node, o + 4, child as u32);
    put16(node, o + 8, (child >> 32) as u16);
    put16(node, o + 10, 0);
}

fn idx_child(node: &[u8], o: usize) -> u64 {
    le32(node, o + 4) as u64 | (le16(node, o + 8) as u64) << 32
}

fn put_header(node: &mut [u8], entries: usize, max: usize, depth: u16) {
    put16(node, 0, EXT_MAGIC);
    put16(node, 2, entries as u16);
    put16(node, 4, max as u16);
    put16(node, 6, depth);
    put32(node, 8, 0);
}

/// Checks a node's header: (entries, max, depth).
fn header(node: &[u8], cap: usize) -> KResult<(usize, usize, u16)> {
    if le16(node, 0) != EXT_MAGIC {
        return Err(corrupt("bad extent header"));
    }
    let entries = le16(node, 2) as usize;
    let max = le16(node, 4) as usize;
    let depth = le16(node, 6);
    if max > cap || entries > max || depth > 5 {
        return Err(corrupt("bad extent header counts"));
    }
    Ok((entries, max, depth))
}

/// One level of a path from the root to a leaf.
struct Level {
    /// The node's block (None: the inode's i_block).
    blk: Option<u64>,
    node: Vec<u8>,
}

impl Ext2Fs {
    fn ext_cap(&self) -> usize {
        (self.geo.bs as usize - 12) / 12
    }

    /// Writes a tree block with its checksum tail.
    fn write_ext_block(
        &self,
        st: &mut State,
        ino: u32,
        i: &DInode,
        blk: u64,
        node: &mut [u8],
    ) -> KResult<()> {
        if self.geo.csum {
            let max = le16(node, 4) as usize;
            let t = 12 + 12 * max;
            if t + 4 <= node.len() {
                let c = csum::crc32c(self.ino_seed(ino, i.generation()), &node[..t]);
                put32(node, t, c);
            }
        }
        self.write_block(st, blk, node)
    }

    /// The path from the root to the leaf that covers (or would take)
    /// logical block `lblk`.
    fn ext_path(&self, st: &mut State, i: &DInode, lblk: u32) -> KResult<Vec<Level>> {
        let mut path = Vec::new();
        let mut node = i.iblock_bytes().to_vec();
        let mut blk = None;
        let mut cap = 4;
        let mut want: Option<u16> = None;
        loop {
            let (n, _, depth) = header(&node, cap)?;
            if want.is_some_and(|w| w != depth) || path.len() > 5 {
                return Err(corrupt("extent tree depth inconsistent"));
            }
            if depth == 0 {
                path.push(Level { blk, node });
                return Ok(path);
            }
            if n == 0 {
                return Err(corrupt("empty extent index node"));
            }
            let mut k = 0;
            for e in 0..n {
                if le32(&node, 12 + e * 12) <= lblk {
                    k = e;
                } else {
                    break;
                }
            }
            let child = idx_child(&node, 12 + k * 12);
            path.push(Level { blk, node });
            node = self.read_ext_block(st, i, child)?;
            blk = Some(child);
            cap = self.ext_cap();
            want = Some(depth - 1);
        }
    }

    /// All extents of `i` in order, and the tree's blocks.
    fn ext_collect(&self, st: &mut State, i: &DInode) -> KResult<(Vec<Ext>, Vec<u64>)> {
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        let mut budget = MAX_NODES;
        let root = i.iblock_bytes().to_vec();
        self.ext_walk(st, i, &root, 4, None, &mut out, &mut blocks, &mut budget)?;
        Ok((out, blocks))
    }

    #[allow(clippy::too_many_arguments)]
    fn ext_walk(
        &self,
        st: &mut State,
        i: &DInode,
        node: &[u8],
        cap: usize,
        want: Option<u16>,
        out: &mut Vec<Ext>,
        blocks: &mut Vec<u64>,
        budget: &mut u32,
    ) -> KResult<()> {
        let (n, _, depth) = header(node, cap)?;
        if want.is_some_and(|w| w != depth) {
            return Err(corrupt("extent tree depth inconsistent"));
        }
        if depth == 0 {
            for e in 0..n {
                let x = parse_ext(node, 12 + e * 12);
                if x.len == 0 || x.end() > u32::MAX as u64 {
                    return Err(corrupt("bad extent length"));
                }
                if out.last().is_some_and(|l: &Ext| (x.lblk as u64) < l.end()) {
                    return Err(corrupt("extents overlap or are out of order"));
                }
                self.check_block(x.pblk)?;
                self.check_block(x.pblk + x.len as u64 - 1)?;
                out.push(x);
            }
            return Ok(());
        }
        for e in 0..n {
            let child = idx_child(node, 12 + e * 12);
            if *budget == 0 {
                return Err(corrupt("extent tree too large"));
            }
            *budget -= 1;
            let c = self.read_ext_block(st, i, child)?;
            blocks.push(child);
            self.ext_walk(
                st,
                i,
                &c,
                self.ext_cap(),
                Some(depth - 1),
                out,
                blocks,
                budget,
            )?;
        }
        Ok(())
    }

    /// bmap_alloc for an extent-mapped file; see the module doc.
    pub(super) fn ext_map_alloc(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        lblk: u64,
        want: u64,
    ) -> KResult<(u64, bool)> {
        if lblk >= u32::MAX as u64 {
            return error!(EFBIG);
        }
        let l = lblk as u32;
        let mut path = self.ext_path(st, i, l)?;
        let depth_of_path = path.len();
        let cap = if depth_of_path == 1 {
            4
        } else {
            self.ext_cap()
        };
        let leaf = path.last_mut().ok_or_else(|| corrupt("extent path"))?;
        let (n, max, _) = header(&leaf.node, cap)?;
        let exts: Vec<Ext> = (0..n).map(|e| parse_ext(&leaf.node, 12 + e * 12)).collect();
        let pos = exts.iter().position(|e| e.lblk > l).unwrap_or(n);
        let mut uninit_hit = false;
        if pos > 0 {
            let e = exts[pos - 1];
            if lblk < e.end() {
                if !e.uninit {
                    let b = e.pblk + (lblk - e.lblk as u64);
                    self.check_block(b)?;
                    return Ok((b, false));
                }
                uninit_hit = true;
            }
        }
        if uninit_hit {
            // Written into an unwritten extent: split it around the block.
            // The block's data must be durable before a commit that
            // marks it written, as for a new block (ordered mode).
            st.alloc_since_flush = true;
            let (mut all, blocks) = self.ext_collect(st, i)?;
            let k = all
                .iter()
                .position(|e| lblk >= e.lblk as u64 && lblk < e.end())
                .ok_or_else(|| corrupt("extent vanished"))?;
            let e = all[k];
            let b = e.pblk + (lblk - e.lblk as u64);
            let mut pieces = Vec::new();
            if l > e.lblk {
                pieces.push(Ext {
                    len: l - e.lblk,
                    ..e
                });
            }
            pieces.push(Ext {
                lblk: l,
                len: 1,
                pblk: b,
                uninit: false,
            });
            if lblk + 1 < e.end() {
                pieces.push(Ext {
                    lblk: l + 1,
                    len: (e.end() - lblk - 1) as u32,
                    pblk: b + 1,
                    uninit: true,
                });
            }
            all.splice(k..k + 1, pieces);
            self.ext_rebuild(st, ino, i, all, blocks, b)?;
            return Ok((b, true));
        }
        let group_goal =
            self.geo.first_data_block + ((ino - 1) / self.geo.ipg) as u64 * self.geo.bpg;
        let goal = if pos > 0 {
            let e = exts[pos - 1];
            e.pblk + (lblk - e.lblk as u64)
        } else if pos < n {
            exts[pos].pblk.saturating_sub(exts[pos].lblk as u64 - lblk)
        } else {
            group_goal
        };
        // Up to `want` blocks: not past the next extent, not past the end
        // of the logical range, and so that the extent they join or make
        // stays within an initialized extent's length.
        let mut want = want.min(u32::MAX as u64 - lblk).min(MAX_INIT_LEN as u64);
        if pos < n {
            want = want.min(exts[pos].lblk as u64 - lblk);
        }
        if pos > 0 {
            let e = exts[pos - 1];
            if !e.uninit && e.end() == lblk && e.len < MAX_INIT_LEN {
                want = want.min((MAX_INIT_LEN - e.len) as u64);
            }
        }
        let (nb, got) = self.alloc_blocks(st, goal, want.max(1))?;
        let got32 = got as u32;
        i.add_blocks(&self.geo, got as i64);
        let new = Ext {
            lblk: l,
            len: got32,
            pblk: nb,
            uninit: false,
        };
        // In place: the left neighbour grows.
        if pos > 0 {
            let e = exts[pos - 1];
            if !e.uninit
                && e.end() == lblk
                && e.pblk + e.len as u64 == nb
                && e.len + got32 <= MAX_INIT_LEN
            {
                let grown = Ext {
                    len: e.len + got32,
                    ..e
                };
                put_ext(&mut leaf.node, 12 + (pos - 1) * 12, &grown);
                self.ext_store_leaf(st, ino, i, path)?;
                return Ok((nb, true));
            }
        }
        // In place: a leaf with room.
        if n < max && (pos > 0 || depth_of_path == 1) {
            let o = 12 + pos * 12;
            leaf.node.copy_within(o..12 + n * 12, o + 12);
            put_ext(&mut leaf.node, o, &new);
            put16(&mut leaf.node, 2, (n + 1) as u16);
            self.ext_store_leaf(st, ino, i, path)?;
            return Ok((nb, true));
        }
        let (mut all, blocks) = self.ext_collect(st, i)?;
        let at = all.iter().position(|e| e.lblk > l).unwrap_or(all.len());
        all.insert(at, new);
        if let Err(e) = self.ext_rebuild(st, ino, i, all, blocks, nb) {
            // Not mapped after all: give the blocks back.
            let _ = self.free_blocks(st, nb, got);
            i.add_blocks(&self.geo, -(got as i64));
            return Err(e);
        }
        Ok((nb, true))
    }

    fn ext_store_leaf(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        mut path: Vec<Level>,
    ) -> KResult<()> {
        let Some(mut leaf) = path.pop() else {
            return Err(corrupt("extent path"));
        };
        match leaf.blk {
            None => {
                i.raw[40..100].copy_from_slice(&leaf.node[..60]);
                Ok(())
            }
            Some(b) => self.write_ext_block(st, ino, i, b, &mut leaf.node),
        }
    }

    /// Frees every block at logical index >= `keep`; the caller writes
    /// `i` back.
    pub(super) fn ext_truncate(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        keep: u64,
    ) -> KResult<()> {
        let (exts, blocks) = self.ext_collect(st, i)?;
        if exts.last().is_none_or(|e| e.end() <= keep) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(exts.len());
        for e in exts {
            if e.end() <= keep {
                out.push(e);
            } else if e.lblk as u64 >= keep {
                self.free_blocks(st, e.pblk, e.len as u64)?;
                i.add_blocks(&self.geo, -(e.len as i64));
            } else {
                let k = (keep - e.lblk as u64) as u32;
                self.free_blocks(st, e.pblk + k as u64, (e.len - k) as u64)?;
                i.add_blocks(&self.geo, -((e.len - k) as i64));
                out.push(Ext { len: k, ..e });
            }
        }
        let goal = out.last().map(|e| e.pblk).unwrap_or(0);
        self.ext_rebuild(st, ino, i, out, blocks, goal)
    }

    /// Lays the tree of `i` out again holding `exts` (sorted); see the
    /// module doc. `old` are the tree's present blocks.
    fn ext_rebuild(
        &self,
        st: &mut State,
        ino: u32,
        i: &mut DInode,
        exts: Vec<Ext>,
        old: Vec<u64>,
        goal: u64,
    ) -> KResult<()> {
        // Merge neighbours that continue each other.
        let mut list: Vec<Ext> = Vec::with_capacity(exts.len());
        for e in exts {
            if let Some(l) = list.last_mut() {
                if l.uninit == e.uninit
                    && l.end() == e.lblk as u64
                    && l.pblk + l.len as u64 == e.pblk
                    && l.len + e.len
                        <= if e.uninit {
                            MAX_INIT_LEN - 1
                        } else {
                            MAX_INIT_LEN
                        }
                {
                    l.len += e.len;
                    continue;
                }
            }
            list.push(e);
        }
        let bs = self.geo.bs as usize;
        let cap = self.ext_cap();
        let per = cap.max(1);
        // Nodes per level, leaves first, until the root can hold a level.
        let mut sizes = Vec::new();
        if list.len() > 4 {
            let mut n = list.len().div_ceil(per);
            sizes.push(n);
            while n > 4 {
                n = n.div_ceil(per);
                sizes.push(n);
            }
        }
        if sizes.len() > 5 {
            return error!(EFBIG);
        }
        let total: usize = sizes.iter().sum();
        let mut pool = old;
        let have = pool.len();
        while pool.len() < total {
            match self.alloc_block(st, goal) {
                Ok(b) => {
                    i.add_blocks(&self.geo, 1);
                    pool.push(b);
                }
                Err(e) => {
                    // The tree stays as it was: give the new blocks back.
                    for b in pool.drain(have..) {
                        let _ = self.free_block(st, b);
                        i.add_blocks(&self.geo, -1);
                    }
                    return Err(e);
                }
            }
        }
        for b in pool.split_off(total) {
            self.free_block(st, b)?;
            i.add_blocks(&self.geo, -1);
        }
        let mut next = pool.into_iter();
        // (first logical block, node block) of the level built last.
        let mut level: Vec<(u32, u64)> = Vec::new();
        if !sizes.is_empty() {
            for chunk in list.chunks(per) {
                let blk = next.next().ok_or_else(|| corrupt("extent rebuild"))?;
                let mut node = vec![0u8; bs];
                put_header(&mut node, chunk.len(), cap, 0);
                for (k, e) in chunk.iter().enumerate() {
                    put_ext(&mut node, 12 + k * 12, e);
                }
                self.write_ext_block(st, ino, i, blk, &mut node)?;
                level.push((chunk[0].lblk, blk));
            }
            let mut depth = 1u16;
            while level.len() > 4 {
                let mut up = Vec::new();
                for chunk in level.chunks(per) {
                    let blk = next.next().ok_or_else(|| corrupt("extent rebuild"))?;
                    let mut node = vec![0u8; bs];
                    put_header(&mut node, chunk.len(), cap, depth);
                    for (k, &(lb, child)) in chunk.iter().enumerate() {
                        put_idx(&mut node, 12 + k * 12, lb, child);
                    }
                    self.write_ext_block(st, ino, i, blk, &mut node)?;
                    up.push((chunk[0].0, blk));
                }
                level = up;
                depth += 1;
            }
            let mut root = [0u8; 60];
            put_header(&mut root, level.len(), 4, depth);
            for (k, &(lb, child)) in level.iter().enumerate() {
                put_idx(&mut root, 12 + k * 12, lb, child);
            }
            i.raw[40..100].copy_from_slice(&root);
        } else {
            let mut root = [0u8; 60];
            put_header(&mut root, list.len(), 4, 0);
            for (k, e) in list.iter().enumerate() {
                put_ext(&mut root, 12 + k * 12, e);
            }
            i.raw[40..100].copy_from_slice(&root);
        }
        Ok(())
    }
}
