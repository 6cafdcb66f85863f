//! The file data cache: regular files' data blocks, keyed by their block
//! on the device, so that reads of cached data never reach the host.
//!
//! Write-through: file data still goes to the device as it is written
//! (ordered mode's rule: data before the metadata that points at it), and
//! cached copies of the written blocks follow, so nothing here is ever
//! dirty and evicting a block is free. Blocks enter on reads only (filling
//! the cache's memory on every write made a sequential writer pay page
//! faults for blocks nobody reads back), and only on reads smaller than
//! [`STREAM`]: the cache exists to spare small reads the host round trip
//! (one host read brings in a sequential reader's next 256 KiB); a large
//! read costs one host read anyway, and the host caches the image file,
//! so copying it into this cache too only made it slower (measured: the
//! first 64 MiB sequential read in 64 KiB reads went from 0.14 s to
//! 0.25 s). Cached blocks serve every read. Reads that miss read the run of
//! blocks they need, plus read-ahead on a sequential reader, in one
//! device read. Bounded: [`DATA_CACHE_BYTES`] per filesystem, in slabs
//! of 1 MiB; when full, the least recently used half goes.
//!
//! Coherence: a freed block leaves the cache (it may come back as
//! metadata or another file's data); a journal replay empties it; a write
//! to any block device node (or BLKFLSBUF) empties it before the next
//! read (see [`crate::block::raw_writes`]); O_DIRECT and the page cache
//! of mapped files read through it.
//!
//! Locking: it lives in the filesystem's [`State`], under its mutex.

use super::*;

/// Most bytes of file data one filesystem caches.
pub(super) const DATA_CACHE_BYTES: usize = 128 << 20;

/// Read-ahead of a sequential reader, in bytes.
pub(super) const READ_AHEAD: u64 = 256 << 10;

/// Reads of at least this many bytes are not cached on a miss.
const STREAM: usize = 64 << 10;

/// Most bytes one device read brings in.
const MAX_RUN: u64 = 1 << 20;

/// Blocks per slab: the cache's memory comes in slabs of this many
/// blocks (1 MiB of 4 KiB blocks), never freed before the filesystem is
/// unmounted, so that filling it costs a few host mmaps, not one heap
/// growth per block.
const SLAB_BLOCKS: usize = 256;

/// One slab's memory: host pages present from the start (no page fault
/// per block filled), or the heap if the host refuses that.
enum Slab {
    Host(ruml_host::hostfile::PrefaultedBuf),
    Heap(Vec<u8>),
}

impl std::ops::Deref for Slab {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Slab::Host(b) => b,
            Slab::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Slab {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Slab::Host(b) => b,
            Slab::Heap(v) => v,
        }
    }
}

/// Hashes a block number with one multiplication (Fibonacci hashing):
/// SipHash per block lookup showed in the read path's profile. The keys
/// are device block numbers below the filesystem's block count (the
/// allocator's, or a checked image's); a crafted layout can at worst make
/// its own lookups slower.
#[derive(Default, Clone, Copy)]
pub(crate) struct BlockHasher(u64);

impl std::hash::Hasher for BlockHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

pub(super) type BlockMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<BlockHasher>>;

#[derive(Default)]
pub(crate) struct DataCache {
    /// Device block -> (slot, last use).
    blocks: BlockMap<(u32, u64)>,
    /// The slabs; slot `s` is block `s % SLAB_BLOCKS` of slab
    /// `s / SLAB_BLOCKS`.
    slabs: Vec<Slab>,
    /// Slots not in use.
    free: Vec<u32>,
    /// The block size (0 until the first insert).
    bs: usize,
    tick: u64,
    /// [`crate::block::raw_writes`] when last looked at.
    raw_seen: u64,
    /// A reused buffer for device reads (no allocation per miss).
    scratch: Vec<u8>,
}

impl DataCache {
    fn slot(&self, s: u32) -> &[u8] {
        let (k, i) = (s as usize / SLAB_BLOCKS, s as usize % SLAB_BLOCKS);
        &self.slabs[k][i * self.bs..(i + 1) * self.bs]
    }

    fn slot_mut(&mut self, s: u32) -> &mut [u8] {
        let (k, i) = (s as usize / SLAB_BLOCKS, s as usize % SLAB_BLOCKS);
        &mut self.slabs[k][i * self.bs..(i + 1) * self.bs]
    }

    /// Copies `out.len()` bytes of block `b` from `at` if it is cached.
    pub(super) fn read(&mut self, b: u64, at: usize, out: &mut [u8]) -> bool {
        self.tick += 1;
        let tick = self.tick;
        match self.blocks.get_mut(&b) {
            Some((s, t)) => {
                *t = tick;
                let s = *s;
                out.copy_from_slice(&self.slot(s)[at..at + out.len()]);
                true
            }
            None => false,
        }
    }

    pub(super) fn contains(&self, b: u64) -> bool {
        self.blocks.contains_key(&b)
    }

    /// A free slot: from the free list, a new slab, or eviction.
    fn take_slot(&mut self) -> u32 {
        if let Some(s) = self.free.pop() {
            return s;
        }
        let cap = DATA_CACHE_BYTES / self.bs;
        if self.slabs.len() * SLAB_BLOCKS < cap {
            let base = (self.slabs.len() * SLAB_BLOCKS) as u32;
            let len = SLAB_BLOCKS * self.bs;
            self.slabs
                .push(match ruml_host::hostfile::PrefaultedBuf::new(len) {
                    Some(b) => Slab::Host(b),
                    None => Slab::Heap(vec![0u8; len]),
                });
            self.free
                .extend((base + 1..base + SLAB_BLOCKS as u32).rev());
            return base;
        }
        self.evict(cap / 2);
        self.free.pop().unwrap_or(0)
    }

    /// Caches `data`, blocks of `bs` bytes from block `first` on.
    pub(super) fn insert(&mut self, first: u64, data: &[u8], bs: usize) {
        if self.bs != bs {
            self.blocks.clear();
            self.slabs.clear();
            self.free.clear();
            self.bs = bs;
        }
        self.tick += 1;
        let tick = self.tick;
        for (k, v) in data.chunks_exact(bs).enumerate() {
            let b = first + k as u64;
            let s = match self.blocks.get_mut(&b) {
                Some((s, t)) => {
                    *t = tick;
                    *s
                }
                None => {
                    let s = self.take_slot();
                    self.blocks.insert(b, (s, tick));
                    s
                }
            };
            self.slot_mut(s).copy_from_slice(v);
        }
    }

    /// Blocks from `first` on were written with `data`: cached copies
    /// follow (blocks not cached are not added: a writer that never
    /// reads back would fill the cache for nothing).
    pub(super) fn update(&mut self, first: u64, data: &[u8], bs: usize) {
        if self.blocks.is_empty() || self.bs != bs {
            return;
        }
        for (k, v) in data.chunks_exact(bs).enumerate() {
            if let Some(&(s, _)) = self.blocks.get(&(first + k as u64)) {
                self.slot_mut(s).copy_from_slice(v);
            }
        }
    }

    /// Keeps the `keep` most recently used blocks.
    fn evict(&mut self, keep: usize) {
        if self.blocks.len() <= keep {
            return;
        }
        let mut ticks: Vec<u64> = self.blocks.values().map(|(_, t)| *t).collect();
        let cut = ticks.len() - keep;
        let (_, &mut nth, _) = ticks.select_nth_unstable(cut);
        let free = &mut self.free;
        self.blocks.retain(|_, (s, t)| {
            let keep = *t >= nth;
            if !keep {
                free.push(*s);
            }
            keep
        });
    }

    /// Blocks `b..b + n` were freed.
    pub(super) fn forget(&mut self, b: u64, n: u64) {
        if self.blocks.is_empty() {
            return;
        }
        if n as usize > self.blocks.len() {
            let free = &mut self.free;
            self.blocks.retain(|k, (s, _)| {
                let gone = (b..b + n).contains(k);
                if gone {
                    free.push(*s);
                }
                !gone
            });
        } else {
            for k in b..b + n {
                if let Some((s, _)) = self.blocks.remove(&k) {
                    self.free.push(s);
                }
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.blocks.clear();
        self.free.clear();
        self.free
            .extend((0..(self.slabs.len() * SLAB_BLOCKS) as u32).rev());
    }

    /// Empties the cache if a block device was written directly since
    /// the last look.
    pub(super) fn check_raw_writes(&mut self) {
        let now = crate::block::raw_writes();
        if now != self.raw_seen {
            self.raw_seen = now;
            self.clear();
        }
    }

    /// Blocks cached.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Bytes of memory the cache holds.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.slabs.len() * SLAB_BLOCKS * self.bs
    }
}

/// Where a file read puts its bytes: a kernel buffer, or the guest's
/// frames straight (read(2) and pread(2): one copy from the cache).
pub(super) enum Sink<'a> {
    Buf(&'a mut [u8]),
    Frames(&'a crate::mm::userframes::UserFrames),
}

impl Sink<'_> {
    fn len(&self) -> usize {
        match self {
            Sink::Buf(b) => b.len(),
            Sink::Frames(f) => f.len(),
        }
    }

    /// Copies `data` in at `at`.
    fn put(&mut self, at: usize, data: &[u8]) {
        match self {
            Sink::Buf(b) => b[at..at + data.len()].copy_from_slice(data),
            Sink::Frames(f) => crate::block::frames_put(f, at, data),
        }
    }

    /// Reads `n` bytes of the device from block `b` in at `at`, with no
    /// copy in between where the device can.
    fn read_dev(&mut self, dev: &dyn BlockDevice, sector: u64, at: usize, n: usize) -> KResult<()> {
        match self {
            Sink::Buf(buf) => dev.read_sectors(sector, &mut buf[at..at + n]),
            Sink::Frames(f) => dev.read_sectors_frames(sector, f, at, n),
        }
    }

    fn zero(&mut self, at: usize, n: usize) {
        match self {
            Sink::Buf(b) => b[at..at + n].fill(0),
            Sink::Frames(f) => f.zero(at, n),
        }
    }
}

impl DataCache {
    /// Copies block `b` (from `at`, `n` bytes) into `out` at `to` if it is
    /// cached.
    fn read_into(&mut self, b: u64, at: usize, out: &mut Sink<'_>, to: usize, n: usize) -> bool {
        self.tick += 1;
        let tick = self.tick;
        let bs = self.bs;
        match self.blocks.get_mut(&b) {
            Some((s, t)) => {
                *t = tick;
                let (k, i) = (*s as usize / SLAB_BLOCKS, *s as usize % SLAB_BLOCKS);
                out.put(to, &self.slabs[k][i * bs + at..i * bs + at + n]);
                true
            }
            None => false,
        }
    }
}

impl Ext2Fs {
    /// Reads file data at `off` into `buf` (up to the file's size),
    /// through the data cache; `ahead` bytes of read-ahead past the
    /// request on a miss.
    pub(super) fn read_file_ahead(
        &self,
        st: &mut State,
        i: &DInode,
        off: u64,
        buf: &mut [u8],
        ahead: u64,
    ) -> KResult<usize> {
        self.read_file_into(st, i, off, &mut Sink::Buf(buf), ahead)
    }

    /// [`Ext2Fs::read_file_ahead`] into any [`Sink`]. The block map is
    /// looked up once per run of consecutive blocks (an extent), not per
    /// block; cached blocks are one copy each into `out`.
    pub(super) fn read_file_into(
        &self,
        st: &mut State,
        i: &DInode,
        off: u64,
        out: &mut Sink<'_>,
        ahead: u64,
    ) -> KResult<usize> {
        let size = i.size();
        if off >= size {
            return Ok(0);
        }
        let len = (out.len() as u64).min(size - off) as usize;
        let bs = self.geo.bs;
        let last = (size - 1) / bs;
        let end_blk = (off + len as u64 - 1) / bs;
        st.data.check_raw_writes();
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            // The run of device blocks from `lblk` on that the request
            // covers (one map lookup).
            let Some((b0, run)) = self.bmap_run(st, i, lblk, end_blk - lblk + 1)? else {
                let take = (bs as usize - in_blk).min(len - done);
                out.zero(done, take);
                done += take;
                continue;
            };
            let run = run.max(1);
            // Cached blocks of the run (within the request) first.
            let mut k = 0u64;
            let mut in_blk = in_blk;
            while k < run && done < len {
                let take = (bs as usize - in_blk).min(len - done);
                if !st.data.read_into(b0 + k, in_blk, out, done, take) {
                    break;
                }
                done += take;
                in_blk = 0;
                k += 1;
            }
            if done >= len || k >= run {
                continue;
            }
            // A miss at block `b`.
            let (b, lblk) = (b0 + k, lblk + k);
            if in_blk == 0 && len - done >= STREAM {
                // A large read: the whole blocks it covers that follow
                // each other on the device and are not cached, straight
                // into `out`, neither cached nor read ahead (the copy
                // into the cache cost more than the host read it would
                // save: the host caches the image too).
                let whole = ((len - done) as u64 / bs).min(run - k).min(MAX_RUN / bs);
                let mut n = whole;
                for j in 1..whole {
                    if st.data.contains(b + j) {
                        n = j;
                        break;
                    }
                }
                if n > 0 {
                    self.check_block(b + n - 1)?;
                    let nb = (n * bs) as usize;
                    if st.cache.is_empty() || !(0..n).any(|j| st.cache.contains_key(&(b + j))) {
                        out.read_dev(self.dev(), b * bs / 512, done, nb)?;
                        done += nb;
                        continue;
                    }
                }
            }
            // The blocks this request still needs and the read-ahead, as
            // far as they follow each other on the device and are not
            // cached, in one read.
            let want = end_blk - lblk + 1 + ahead / bs;
            let run = self.bmap_run(st, i, lblk, want)?.map_or(1, |r| r.1);
            let mut n = want.min(run).min(last - lblk + 1).min(MAX_RUN / bs).max(1);
            for j in 1..n {
                if st.data.contains(b + j) {
                    n = j;
                    break;
                }
            }
            self.check_block(b + n - 1)?;
            let nb = (n * bs) as usize;
            // The scratch buffer keeps its length between misses: not
            // cleared first (the device read fills what is used).
            let mut tmp = std::mem::take(&mut st.data.scratch);
            if tmp.len() < nb {
                tmp.resize(nb, 0);
            }
            let r = self.dev().read_sectors(b * bs / 512, &mut tmp[..nb]);
            if let Err(e) = r {
                st.data.scratch = tmp;
                return Err(e);
            }
            self.newer_meta(st, b, n, &mut tmp[..nb]);
            st.data.insert(b, &tmp[..nb], bs as usize);
            let c = (nb - in_blk).min(len - done);
            out.put(done, &tmp[in_blk..in_blk + c]);
            done += c;
            if tmp.capacity() <= MAX_RUN as usize {
                st.data.scratch = tmp;
            }
        }
        Ok(len)
    }

    /// A metadata block cached under the number of one of the `n` blocks
    /// from `b` read into `buf` is newer than the device (it cannot be
    /// file data: a freed block leaves both caches; a safety net).
    fn newer_meta(&self, st: &State, b: u64, n: u64, buf: &mut [u8]) {
        if st.cache.is_empty() {
            return;
        }
        let bs = self.geo.bs as usize;
        for k in 0..n {
            if let Some(v) = st.cache.get(&(b + k)) {
                let at = k as usize * bs;
                buf[at..at + bs].copy_from_slice(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounded, least recently used blocks go first, contents kept per
    /// block, freed blocks go.
    #[test]
    fn data_cache_is_bounded_and_keeps_recent_blocks() {
        let bs = 4096;
        let cap = DATA_CACHE_BYTES / bs;
        let mut c = DataCache::default();
        let blk = |b: u64| vec![(b % 251) as u8; bs];
        c.insert(7, &blk(7), bs);
        for b in 100..100 + cap as u64 + 500 {
            c.insert(b, &blk(b), bs);
            if b % 64 == 0 {
                // Block 7 stays in use.
                let mut o = [0u8; 16];
                assert!(c.read(7, 100, &mut o));
                assert_eq!(o, [7u8; 16]);
            }
        }
        assert!(c.len() <= cap);
        assert!(c.bytes() <= DATA_CACHE_BYTES);
        assert!(c.contains(7));
        assert!(!c.contains(100), "the oldest block stayed");
        let last = 100 + cap as u64 + 499;
        let mut o = vec![0u8; bs];
        assert!(c.read(last, 0, &mut o));
        assert_eq!(o, blk(last));
        c.forget(last - 10, 11);
        assert!(!c.contains(last) && !c.contains(last - 10) && c.contains(last - 11));
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(!c.contains(7));
    }
}
