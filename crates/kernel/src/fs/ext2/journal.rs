//! The ext3/ext4 journal (jbd2): replay at mount, and journaled metadata.
//!
//! Replay reads the log from the journal superblock's `s_start`: the
//! descriptor blocks (tags in any of jbd2's formats: 32- or 64-bit block
//! numbers, v2 or v3 checksum tags), the commit blocks that close each
//! transaction and the revoke blocks, and writes the committed blocks
//! home unless a later revoke covers them. An unfinished last
//! transaction (no commit block) is ignored.
//!
//! Writing, in ordered mode: an operation's metadata blocks join the
//! running transaction (they stay in the cache, pinned, and are not
//! written home). A commit — on fsync, sync, the 5-second timer, unmount,
//! or when the transaction grows — writes the blocks into the log after
//! the transactions already there (a descriptor, the copies, revoke
//! blocks) and a commit block carrying a crc32 of the descriptors and
//! copies (jbd2's v1 checksum). If blocks were allocated since the last
//! flush (file data in new blocks must be durable before the commit
//! that points at them: ordered mode), the log is flushed with the data
//! before the commit block is written, then flushed again: two flushes.
//! Otherwise the commit block goes with the log under one flush
//! (jbd2's async_commit): a crash that tears them leaves a commit block
//! whose checksum does not match, and the replay — ours, Linux's,
//! e2fsck's — drops that transaction and ends the log there. The
//! journal superblock says so (COMPAT_CHECKSUM, INCOMPAT_ASYNC_COMMIT)
//! only while the log holds transactions: an image with an empty log
//! has the features it had. An fsync's last flush runs after the
//! filesystem's lock is released (block/flushgate.rs shares it among
//! concurrent fsyncs: group commit), except when the transaction freed
//! blocks (they could be reused before it is durable). The checkpoint
//! is lazy: committed blocks stay pinned in the
//! cache, their home copies stale, until the log is half full (or the
//! pinned blocks a quarter of the cache), the next transaction does not
//! fit, or the filesystem is unmounted; then they are all written home,
//! flushed, and the log is marked empty. So the log holds a run of
//! committed transactions from `first`, and a crash at any point leaves,
//! after replay, the metadata of the last commit that reached its
//! commit block. A block freed while an older copy of it is in the log
//! gets a revoke record in the freeing transaction (a replay must not
//! write the old copy over the block's new use); blocks freed by the
//! running transaction are not reused before it commits (a crash must
//! not find data written over a block the old metadata still uses).
//!
//! Locking: everything here runs under the filesystem's state mutex.

use super::*;
use std::collections::BTreeMap;

const JBD2_MAGIC: u32 = 0xC03B_3998;
const BT_DESCRIPTOR: u32 = 1;
const BT_COMMIT: u32 = 2;
const BT_SB_V1: u32 = 3;
const BT_SB_V2: u32 = 4;
const BT_REVOKE: u32 = 5;

const INC_REVOKE: u32 = 0x1;
const INC_64BIT: u32 = 0x2;
const INC_ASYNC_COMMIT: u32 = 0x4;
const INC_CSUM_V2: u32 = 0x8;
const INC_CSUM_V3: u32 = 0x10;
const INC_KNOWN: u32 = INC_REVOKE | INC_64BIT | INC_ASYNC_COMMIT | INC_CSUM_V2 | INC_CSUM_V3;
/// jbd2's v1 checksums: the commit block holds a crc32 (big-endian, as
/// Linux's crc32_be) of the transaction's descriptor and logged blocks.
const COMPAT_CHECKSUM: u32 = 0x1;
const CRC32_CHKSUM: u8 = 1;
const CRC32_CHKSUM_SIZE: u8 = 4;

const TAG_ESCAPE: u32 = 1;
const TAG_SAME_UUID: u32 = 2;
const TAG_LAST: u32 = 8;

/// Most journal blocks this driver handles (a bound on the map it keeps).
const MAX_JOURNAL_BLOCKS: u64 = 1 << 22;

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn pbe32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_be_bytes());
}
fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

/// Transactions replayed (the power-cut test checks that it replays).
#[cfg(test)]
pub(super) static REPLAYED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The journal of a mounted filesystem; see the module doc.
pub(crate) struct Journal {
    /// Journal block -> filesystem block.
    map: Vec<u64>,
    first: u32,
    /// The next transaction's sequence number.
    seq: u32,
    /// The journal superblock as on disk.
    jsb: Vec<u8>,
    /// The next free log block (`first` when the log is empty).
    head: u32,
    /// Home block -> (log block, escaped) of its latest committed copy,
    /// for every block the log holds that is not yet checkpointed. These
    /// blocks stay pinned in the cache (their home copy is stale).
    pub(super) logged: BTreeMap<u64, (u32, bool)>,
}

/// A logged block: (log block, home block, escaped, the tag's checksum
/// of it: 32 bits with csum v3, the low 16 with v2).
type LogTag = (u64, u64, bool, Option<u32>);

/// jbd2's checksum of a descriptor, revoke or commit block: crc32c of
/// the block with its checksum field (at `at`) zeroed.
fn jblock_csum(seed: u32, blk: &[u8], at: usize) -> u32 {
    let c = csum::crc32c(seed, &blk[..at]);
    let c = csum::crc32c(c, &[0; 4]);
    csum::crc32c(c, &blk[at + 4..])
}

/// Linux's `crc32_be`: CRC-32 (polynomial 0x04C11DB7), most significant
/// bit first, no inversion (the caller starts from !0, as jbd2 does).
pub(super) fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    for &b in data {
        crc = (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

/// Sets or clears the features of a log written by [`Ext2Fs::commit_txn`]:
/// v1 checksums (compatible) and async_commit (incompatible, known to
/// every jbd2 since Linux 2.6.26 and to e2fsck).
fn set_async(j: &mut Journal, on: bool) {
    let c = be32(&j.jsb, 0x24) & !COMPAT_CHECKSUM;
    let i = be32(&j.jsb, 0x28) & !INC_ASYNC_COMMIT;
    pbe32(&mut j.jsb, 0x24, c | if on { COMPAT_CHECKSUM } else { 0 });
    pbe32(&mut j.jsb, 0x28, i | if on { INC_ASYNC_COMMIT } else { 0 });
}

fn jerr(what: &str) -> crate::errno::Errno {
    crate::log::warn(&format!("JBD2: {what}"));
    crate::errno!(EUCLEAN)
}

impl Ext2Fs {
    /// Loads the journal: its block map and superblock.
    fn load_journal(&self, st: &mut State) -> KResult<Journal> {
        let ji = self.read_inode(st, self.geo.journal_ino)?;
        if ji.ftype() != FileType::Regular {
            return Err(jerr("the journal inode is not a regular file"));
        }
        let n = ji.size() / self.geo.bs;
        if !(4..=MAX_JOURNAL_BLOCKS).contains(&n) {
            return Err(jerr("bad journal size"));
        }
        let mut map = Vec::with_capacity(n as usize);
        for l in 0..n {
            match self.bmap(st, &ji, l)? {
                Some(b) => map.push(b),
                None => return Err(jerr("the journal has a hole")),
            }
        }
        let mut jsb = vec![0u8; self.geo.bs as usize];
        self.dev()
            .read_sectors(map[0] * self.geo.bs / 512, &mut jsb)?;
        if be32(&jsb, 0) != JBD2_MAGIC || !matches!(be32(&jsb, 4), BT_SB_V1 | BT_SB_V2) {
            return Err(jerr("bad journal superblock"));
        }
        if be32(&jsb, 12) as u64 != self.geo.bs {
            return Err(jerr("journal block size differs from the filesystem's"));
        }
        let maxlen = be32(&jsb, 16) as u64;
        let first = be32(&jsb, 20);
        if maxlen > n || maxlen < 4 || first == 0 || first as u64 >= maxlen {
            return Err(jerr("bad journal geometry"));
        }
        map.truncate(maxlen as usize);
        let incompat = if be32(&jsb, 4) == BT_SB_V2 {
            be32(&jsb, 0x28)
        } else {
            0
        };
        if incompat & !INC_KNOWN != 0 {
            crate::log::warn(&format!(
                "JBD2: unsupported journal features {:#x} (fast commits?)",
                incompat & !INC_KNOWN
            ));
            return error!(EINVAL);
        }
        if incompat & (INC_CSUM_V2 | INC_CSUM_V3) != 0
            && jblock_csum(!0, &jsb[..1024], 0xFC) != be32(&jsb, 0xFC)
        {
            return Err(self.bad_csum("JBD2: journal checksum error (superblock)"));
        }
        Ok(Journal {
            map,
            first,
            seq: be32(&jsb, 24),
            jsb,
            head: first,
            logged: BTreeMap::new(),
        })
    }

    fn jread(&self, j: &Journal, n: u64, buf: &mut [u8]) -> KResult<()> {
        self.dev()
            .read_sectors(j.map[n as usize] * self.geo.bs / 512, buf)
    }

    fn jwrite(&self, j: &Journal, n: u64, buf: &[u8]) -> KResult<()> {
        self.dev()
            .write_sectors(j.map[n as usize] * self.geo.bs / 512, buf)
    }

    /// Whether the log holds transactions (s_start != 0).
    pub(super) fn journal_dirty(&self, st: &mut State) -> KResult<bool> {
        let j = self.load_journal(st)?;
        Ok(be32(&j.jsb, 28) != 0)
    }

    /// Replays the log into the filesystem (see the module doc); returns
    /// the number of transactions replayed. The caller re-reads the
    /// superblock and group descriptors after.
    pub(super) fn replay_journal(&self, st: &mut State) -> KResult<u32> {
        let mut j = self.load_journal(st)?;
        let start = be32(&j.jsb, 28) as u64;
        if start == 0 {
            return Ok(0);
        }
        let maxlen = j.map.len() as u64;
        if start < j.first as u64 || start >= maxlen {
            return Err(jerr("journal start outside the log"));
        }
        let v2 = be32(&j.jsb, 4) == BT_SB_V2;
        let incompat = if v2 { be32(&j.jsb, 0x28) } else { 0 };
        let is64 = incompat & INC_64BIT != 0;
        let csum3 = incompat & INC_CSUM_V3 != 0;
        let csum2 = incompat & INC_CSUM_V2 != 0;
        let tag_bytes = if csum3 {
            16
        } else {
            8 + if csum2 { 2 } else { 0 } + if is64 { 4 } else { 0 }
        };
        let tail = if csum2 || csum3 { 4 } else { 0 };
        // v1 checksums (a crc32 of each transaction in its commit block;
        // what async_commit relies on): never together with v2/v3.
        let csum1 = v2 && be32(&j.jsb, 0x24) & COMPAT_CHECKSUM != 0 && tail == 0;
        let mut crc = !0u32;
        let bs = self.geo.bs as usize;
        // The checksums' seed: the journal's UUID.
        let seed = csum::crc32c(!0, &j.jsb[0x30..0x40]);
        let block_ok =
            |blk: &[u8]| tail == 0 || jblock_csum(seed, blk, bs - 4) == be32(blk, bs - 4);
        let first = j.first as u64;
        let next = |p: u64| if p + 1 >= maxlen { first } else { p + 1 };

        // Scan: committed transactions' (log block, home block, escaped),
        // and revokes (home block -> latest revoking sequence).
        let mut seq = j.seq;
        let mut pos = start;
        let mut blk = vec![0u8; bs];
        let mut committed: Vec<(u32, Vec<LogTag>)> = Vec::new();
        let mut revoked: HashMap<u64, u32> = HashMap::new();
        let mut cur: Vec<LogTag> = Vec::new();
        let mut cur_revokes: Vec<u64> = Vec::new();
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > 2 * maxlen {
                break;
            }
            self.jread(&j, pos, &mut blk)?;
            if be32(&blk, 0) != JBD2_MAGIC || be32(&blk, 8) != seq {
                break;
            }
            match be32(&blk, 4) {
                BT_DESCRIPTOR => {
                    if !block_ok(&blk) {
                        return Err(self.bad_csum(&format!(
                            "JBD2: Invalid checksum recovering block {pos} in log"
                        )));
                    }
                    if csum1 {
                        crc = crc32_be(crc, &blk);
                    }
                    let first_tag = cur.len();
                    let mut off = 12;
                    let mut p = pos;
                    let mut last = false;
                    while !last && off + tag_bytes <= bs - tail {
                        let (lo, flags, hi, tsum) = if csum3 {
                            let c = be32(&blk, off + 12);
                            (
                                be32(&blk, off),
                                be32(&blk, off + 4),
                                be32(&blk, off + 8),
                                Some(c),
                            )
                        } else {
                            let hi = if is64 { be32(&blk, off + 8) } else { 0 };
                            let c = csum2.then(|| be16(&blk, off + 4) as u32);
                            (be32(&blk, off), be16(&blk, off + 6) as u32, hi, c)
                        };
                        let home = lo as u64 | if is64 { (hi as u64) << 32 } else { 0 };
                        off += tag_bytes;
                        if flags & TAG_SAME_UUID == 0 {
                            off += 16;
                        }
                        last = flags & TAG_LAST != 0;
                        p = next(p);
                        if cur.len() as u64 >= maxlen {
                            return Err(jerr("transaction larger than the log"));
                        }
                        cur.push((p, home, flags & TAG_ESCAPE != 0, tsum));
                    }
                    if csum1 {
                        // The logged blocks as written (escaped).
                        let mut data = vec![0u8; bs];
                        for tag in &cur[first_tag..] {
                            self.jread(&j, tag.0, &mut data)?;
                            crc = crc32_be(crc, &data);
                        }
                    }
                    pos = next(p);
                }
                BT_COMMIT => {
                    if tail != 0 && jblock_csum(seed, &blk, 16) != be32(&blk, 16) {
                        // As Linux: the log ends before a transaction
                        // whose commit block fails its checksum.
                        crate::log::warn(&format!(
                            "JBD2: Invalid checksum recovering commit block {pos} (transaction {seq}); the log ends there"
                        ));
                        break;
                    }
                    if csum1 {
                        let (ty, size, found) = (blk[12], blk[13], be32(&blk, 16));
                        let ok = (ty == CRC32_CHKSUM && size == CRC32_CHKSUM_SIZE && found == crc)
                            || (ty == 0 && size == 0 && found == 0);
                        if !ok {
                            // A transaction written with its commit block
                            // in one flush (async_commit) that did not all
                            // reach the disk: it and the log end here, as
                            // in Linux's and e2fsck's recovery.
                            crate::log::warn(&format!(
                                "JBD2: commit checksum mismatch in transaction {seq} (block {pos}); the log ends there"
                            ));
                            break;
                        }
                        crc = !0;
                    }
                    for b in cur_revokes.drain(..) {
                        let e = revoked.entry(b).or_insert(seq);
                        *e = (*e).max(seq);
                    }
                    committed.push((seq, std::mem::take(&mut cur)));
                    seq = seq.wrapping_add(1);
                    pos = next(pos);
                }
                BT_REVOKE => {
                    if !block_ok(&blk) {
                        return Err(self.bad_csum(&format!(
                            "JBD2: Invalid checksum recovering revoke block {pos} in log"
                        )));
                    }
                    let count = (be32(&blk, 12) as usize).min(bs - tail);
                    let rec = if is64 { 8 } else { 4 };
                    let mut off = 16;
                    while off + rec <= count {
                        let b = if is64 {
                            (be32(&blk, off) as u64) << 32 | be32(&blk, off + 4) as u64
                        } else {
                            be32(&blk, off) as u64
                        };
                        cur_revokes.push(b);
                        off += rec;
                    }
                    pos = next(pos);
                }
                _ => break,
            }
        }
        // Replay.
        let mut n = 0;
        let mut bad = None;
        for (tseq, tags) in &committed {
            for &(logb, home, escaped, tsum) in tags {
                if revoked.get(&home).is_some_and(|&r| r >= *tseq) {
                    continue;
                }
                if home >= self.geo.blocks_count {
                    return Err(jerr(&format!(
                        "journal block {logb} goes outside the filesystem"
                    )));
                }
                self.jread(&j, logb, &mut blk)?;
                if let Some(want) = tsum {
                    let c = csum::crc32c(csum::crc32c(seed, &tseq.to_be_bytes()), &blk);
                    if (if csum3 { c } else { c & 0xFFFF }) != want {
                        // Skipped, and the mount fails after the rest
                        // is replayed (Linux's -EFSBADCRC).
                        bad = Some(self.bad_csum(&format!(
                            "JBD2: Invalid checksum recovering data block {home} in log"
                        )));
                        continue;
                    }
                }
                if escaped {
                    pbe32(&mut blk, 0, JBD2_MAGIC);
                }
                self.dev().write_sectors(home * self.geo.bs / 512, &blk)?;
            }
            n += 1;
        }
        #[cfg(test)]
        REPLAYED.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.dev().flush()?;
        // The log is empty now.
        pbe32(&mut j.jsb, 24, seq);
        pbe32(&mut j.jsb, 28, 0);
        self.write_jsb(&mut j)?;
        self.dev().flush()?;
        st.cache.clear();
        st.data.clear();
        match bad {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Writes the journal superblock (with its checksum if it keeps one).
    fn write_jsb(&self, j: &mut Journal) -> KResult<()> {
        if be32(&j.jsb, 4) == BT_SB_V2 && be32(&j.jsb, 0x28) & (INC_CSUM_V2 | INC_CSUM_V3) != 0 {
            pbe32(&mut j.jsb, 0xFC, 0);
            let c = csum::crc32c(!0, &j.jsb[..1024]);
            pbe32(&mut j.jsb, 0xFC, c);
        }
        let jsb = j.jsb.clone();
        self.jwrite(j, 0, &jsb)
    }

    /// Opens the journal for writing (after any replay): its format is
    /// set to what this driver writes (v2 superblock, 64-bit tags on a
    /// 64bit filesystem, no checksums).
    pub(super) fn start_journal(&self, st: &mut State) -> KResult<()> {
        let mut j = self.load_journal(st)?;
        if be32(&j.jsb, 28) != 0 {
            return Err(jerr("the journal still needs recovery"));
        }
        pbe32(&mut j.jsb, 4, BT_SB_V2);
        pbe32(&mut j.jsb, 0x24, 0);
        pbe32(
            &mut j.jsb,
            0x28,
            INC_REVOKE | if self.geo.is64 { INC_64BIT } else { 0 },
        );
        pbe32(&mut j.jsb, 0x2C, 0);
        self.write_jsb(&mut j)?;
        st.journal = Some(j);
        Ok(())
    }

    /// Blocks a transaction of `n` metadata blocks takes in the log.
    fn log_blocks(&self, n: usize) -> usize {
        let per = self.tags_per_descriptor();
        n + n.div_ceil(per) + 1
    }

    fn tags_per_descriptor(&self) -> usize {
        let tag = if self.geo.is64 { 12 } else { 8 };
        (self.geo.bs as usize - 12 - 16) / tag
    }

    /// Whether the running transaction should commit now (at the end of
    /// an operation): it has grown to a quarter of the log.
    pub(super) fn txn_full(&self, st: &State) -> bool {
        st.journal
            .as_ref()
            .is_some_and(|j| self.log_blocks(st.txn.len()) * 4 > j.map.len() - j.first as usize)
    }

    /// Commits the running transaction (see the module doc), its last
    /// flush included. With no journal or an empty transaction, does
    /// nothing.
    pub(super) fn journal_commit(&self, st: &mut State) -> KResult<()> {
        if self.journal_commit_unflushed(st)? {
            self.dev().flush()?;
        }
        Ok(())
    }

    /// Commits the running transaction but for its last flush, which
    /// the caller owes (an `fsync` does it after releasing the lock, so
    /// that other threads' `fsync`s share it: see block/flushgate.rs).
    /// Returns whether it wrote a commit.
    pub(super) fn journal_commit_unflushed(&self, st: &mut State) -> KResult<bool> {
        if st.txn.is_empty() {
            return Ok(false);
        }
        let Some(mut j) = st.journal.take() else {
            return Ok(false);
        };
        let r = self.commit_txn(st, &mut j);
        st.journal = Some(j);
        // On an error the blocks stay in the transaction, to be tried
        // again.
        r?;
        st.txn.clear();
        st.txn_freed.clear();
        Ok(true)
    }

    /// Checkpoints the log: every committed block home, then the log
    /// marked empty (unmount, halt, remount read-only).
    ///
    /// Returns whether the log held anything (then the journal
    /// superblock was rewritten, not yet flushed).
    pub(super) fn journal_checkpoint(&self, st: &mut State) -> KResult<bool> {
        let Some(mut j) = st.journal.take() else {
            return Ok(false);
        };
        let held = j.head != j.first;
        let r = self.checkpoint(st, &mut j);
        st.journal = Some(j);
        r.map(|()| held)
    }

    /// Blocks the log may hold before a checkpoint: at most half the log
    /// (the running transaction commits at a quarter, so the next one
    /// fits), and a quarter of the cache (they are pinned there).
    fn log_busy(&self, j: &Journal) -> bool {
        let total = j.map.len() - j.first as usize;
        let used = (j.head - j.first) as usize;
        used * 2 > total || j.logged.len() * 4 > CACHE_BYTES / self.geo.bs as usize
    }

    /// Writes the log's committed blocks home and empties it. Blocks the
    /// operation in progress or the running transaction changed are
    /// taken from their committed copy in the log (the cache holds the
    /// newer, uncommitted contents), the others from the cache.
    fn checkpoint(&self, st: &mut State, j: &mut Journal) -> KResult<()> {
        if j.head == j.first {
            return Ok(());
        }
        // The log's last commit may have been written without its flush
        // yet (a commit's final flush can run after the lock is
        // released): it must be durable before any block goes home.
        self.dev().flush()?;
        let bs = self.geo.bs as usize;
        let mut from_log: HashMap<u64, Vec<u8>> = HashMap::new();
        for (&home, &(pos, escaped)) in &j.logged {
            if st.txn.contains(&home) || st.dirty.contains(&home) || !st.cache.contains_key(&home) {
                let mut v = vec![0u8; bs];
                self.jread(j, pos as u64, &mut v)?;
                if escaped {
                    pbe32(&mut v, 0, JBD2_MAGIC);
                }
                from_log.insert(home, v);
            }
        }
        self.write_runs(j.logged.keys().filter_map(|b| {
            from_log
                .get(b)
                .or_else(|| st.cache.get(b))
                .map(|v| (*b, v.as_slice()))
        }))?;
        self.dev().flush()?;
        // The log is empty: the next commit writes from `first` (the
        // superblock says so before that commit's flush).
        pbe32(&mut j.jsb, 24, j.seq);
        pbe32(&mut j.jsb, 28, 0);
        // An empty log carries no feature beyond what start_journal set.
        set_async(j, false);
        self.write_jsb(j)?;
        j.logged.clear();
        j.head = j.first;
        Ok(())
    }

    fn commit_txn(&self, st: &mut State, j: &mut Journal) -> KResult<()> {
        let blocks: Vec<u64> = st.txn.iter().copied().collect();
        let bs = self.geo.bs as usize;
        let dev = self.dev();
        // Revokes: blocks this transaction freed whose older copies are
        // still in the log (a replay must not write them over what the
        // blocks hold once reused). A block logged again here needs none.
        let geo = &self.geo;
        let revokes: Vec<u64> = j
            .logged
            .keys()
            .copied()
            .filter(|&b| {
                if st.txn.contains(&b) || b < geo.first_data_block {
                    return false;
                }
                let g = ((b - geo.first_data_block) / geo.bpg) as u32;
                let bit = (b - geo.first_data_block) % geo.bpg;
                st.txn_freed
                    .get(&g)
                    .is_some_and(|f| f[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
            })
            .collect();
        for b in &revokes {
            j.logged.remove(b);
        }
        let rec = if self.geo.is64 { 8 } else { 4 };
        let per_revoke = (bs - 16) / rec;
        let mut need = self.log_blocks(blocks.len()) + revokes.len().div_ceil(per_revoke);
        let room = |j: &Journal| j.map.len() - j.head as usize;
        let mut revokes = revokes;
        if need > room(j) {
            self.checkpoint(st, j)?;
            // The log is empty: nothing left to revoke.
            need -= revokes.len().div_ceil(per_revoke);
            revokes.clear();
        }
        if need <= room(j) {
            let seq = j.seq;
            let per = self.tags_per_descriptor();
            let tag = if self.geo.is64 { 12 } else { 8 };
            let mut pos = j.head as u64;
            // The log's blocks in order: descriptors and copies, then
            // revoke blocks.
            let mut log: Vec<(u64, Vec<u8>)> = Vec::with_capacity(need);
            let mut copies: Vec<(u64, u32, bool)> = Vec::with_capacity(blocks.len());
            for chunk in blocks.chunks(per) {
                let mut desc = vec![0u8; bs];
                pbe32(&mut desc, 0, JBD2_MAGIC);
                pbe32(&mut desc, 4, BT_DESCRIPTOR);
                pbe32(&mut desc, 8, seq);
                let mut off = 12;
                let desc_at = log.len();
                log.push((j.map[pos as usize], Vec::new()));
                pos += 1;
                for (k, &b) in chunk.iter().enumerate() {
                    let mut data = st
                        .cache
                        .get(&b)
                        .cloned()
                        .ok_or_else(|| jerr("a journaled block left the cache"))?;
                    let mut flags = 0u16;
                    if be32(&data, 0) == JBD2_MAGIC {
                        data[..4].fill(0);
                        flags |= TAG_ESCAPE as u16;
                    }
                    if k > 0 {
                        flags |= TAG_SAME_UUID as u16;
                    }
                    if k + 1 == chunk.len() {
                        flags |= TAG_LAST as u16;
                    }
                    pbe32(&mut desc, off, b as u32);
                    desc[off + 6..off + 8].copy_from_slice(&flags.to_be_bytes());
                    if self.geo.is64 {
                        pbe32(&mut desc, off + 8, (b >> 32) as u32);
                    }
                    off += tag;
                    if k == 0 {
                        desc[off..off + 16].copy_from_slice(&j.jsb[0x30..0x40]);
                        off += 16;
                    }
                    copies.push((b, pos as u32, flags & TAG_ESCAPE as u16 != 0));
                    log.push((j.map[pos as usize], data));
                    pos += 1;
                }
                log[desc_at].1 = desc;
            }
            // The v1 checksum of the transaction (descriptors and copies
            // in log order, as written), for its commit block.
            let crc = log.iter().fold(!0u32, |c, (_, v)| crc32_be(c, v));
            for chunk in revokes.chunks(per_revoke) {
                let mut r = vec![0u8; bs];
                pbe32(&mut r, 0, JBD2_MAGIC);
                pbe32(&mut r, 4, BT_REVOKE);
                pbe32(&mut r, 8, seq);
                let mut off = 16;
                for &b in chunk {
                    if self.geo.is64 {
                        pbe32(&mut r, off, (b >> 32) as u32);
                        pbe32(&mut r, off + 4, b as u32);
                    } else {
                        pbe32(&mut r, off, b as u32);
                    }
                    off += rec;
                }
                pbe32(&mut r, 12, off as u32);
                log.push((j.map[pos as usize], r));
                pos += 1;
            }
            let mut commit = vec![0u8; bs];
            pbe32(&mut commit, 0, JBD2_MAGIC);
            pbe32(&mut commit, 4, BT_COMMIT);
            pbe32(&mut commit, 8, seq);
            commit[12] = CRC32_CHKSUM;
            commit[13] = CRC32_CHKSUM_SIZE;
            pbe32(&mut commit, 16, crc);
            let t = now();
            commit[0x30..0x38].copy_from_slice(&(t.0 as u64).to_be_bytes());
            pbe32(&mut commit, 0x38, t.1);
            // File data written into blocks allocated since the last
            // flush must be durable before a commit that points at them
            // can be (ordered mode): then the log and data are flushed
            // before the commit block is written. Otherwise the commit
            // block goes with the log, under one flush (the caller's):
            // a crash that tears them is caught at replay by the commit
            // block's checksum (async_commit).
            let ordered = st.alloc_since_flush;
            if !ordered {
                log.push((j.map[pos as usize], commit));
                commit = Vec::new();
            }
            // The log's blocks in log order are not always consecutive on
            // the device: sorted by device block for write_runs.
            log.sort_by_key(|(b, _)| *b);
            self.write_runs(log.iter().map(|(b, v)| (*b, v.as_slice())))?;
            if j.head == j.first {
                // The first transaction in an empty log: the superblock
                // points at it (durable with the log, by the flush), and
                // says its commits carry checksums and may be written
                // with their log (cleared again when the log is empty).
                pbe32(&mut j.jsb, 24, seq);
                pbe32(&mut j.jsb, 28, j.first);
                set_async(j, true);
                self.write_jsb(j)?;
            }
            if ordered {
                dev.flush()?;
                st.alloc_since_flush = false;
                self.jwrite(j, pos, &commit)?;
            }
            j.seq = seq.wrapping_add(1);
            j.head = pos as u32 + 1;
            for (b, p, esc) in copies {
                j.logged.insert(b, (p, esc));
            }
            // Lazy checkpoint: only when the log or the pinned blocks
            // have grown (the running transaction is empty now).
            if self.log_busy(j) {
                self.checkpoint(st, j)?;
            }
            return Ok(());
        }
        crate::log::warn(&format!(
            "EXT4-fs ({}): a transaction of {} blocks does not fit the journal; written unjournaled",
            dev_name(self.dev_no),
            blocks.len()
        ));
        // The log is empty (checkpointed above): the blocks go home.
        self.write_runs(
            blocks
                .iter()
                .filter_map(|b| st.cache.get(b).map(|v| (*b, v.as_slice()))),
        )?;
        dev.flush()
    }

    /// Writes (block, contents) pairs, each run of consecutive blocks
    /// (up to 1 MiB) in one device write.
    fn write_runs<'a>(&self, blocks: impl Iterator<Item = (u64, &'a [u8])>) -> KResult<()> {
        let bs = self.geo.bs;
        let mut run: Vec<u8> = Vec::new();
        let mut first = 0u64;
        for (b, v) in blocks {
            let n = run.len() as u64 / bs;
            if !run.is_empty() && (first + n != b || run.len() >= 1 << 20) {
                self.dev().write_sectors(first * bs / 512, &run)?;
                run.clear();
            }
            if run.is_empty() {
                first = b;
            }
            run.extend_from_slice(v);
        }
        if !run.is_empty() {
            self.dev().write_sectors(first * bs / 512, &run)?;
        }
        Ok(())
    }
}
