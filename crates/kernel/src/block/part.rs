//! Partition tables: MBR (four primary entries) and GPT (a protective MBR,
//! the header at sector 1, up to 15 entries used), read when a ubd disk
//! is registered and on BLKRRPART. Partition N of disk `ubda` is `ubda1`…,
//! device number (98, 16·disk + N) as on Linux; a partition is a window
//! on its disk ([`Partition`]), so I/O through it is clipped to it.
//!
//! The table is hostile input: entries outside the disk, overlapping the
//! table itself or absurd sizes are skipped; nothing is trusted for more
//! than its bounds.

use std::sync::Arc;

use crate::block::{self, BlockDevice, Disk, Kind, SECTOR};
use crate::errno::KResult;
use crate::error;

/// Most partitions per ubd disk (minors 16·N+1 .. 16·N+15).
const MAX_PARTS: usize = 15;

/// A window of sectors on another device.
pub struct Partition {
    parent: Arc<dyn BlockDevice>,
    start: u64,
    sectors: u64,
}

impl BlockDevice for Partition {
    fn size(&self) -> u64 {
        self.sectors * SECTOR
    }
    fn read_only(&self) -> bool {
        self.parent.read_only()
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
        self.parent.read_sectors(self.start + sector, buf)
    }
    fn read_sectors_frames(
        &self,
        sector: u64,
        dst: &crate::mm::userframes::UserFrames,
        at: usize,
        n: usize,
    ) -> KResult<()> {
        self.parent
            .read_sectors_frames(self.start + sector, dst, at, n)
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        self.parent.write_sectors(self.start + sector, buf)
    }
    fn flush(&self) -> KResult<()> {
        self.parent.flush()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    le32(b, o) as u64 | (le32(b, o + 4) as u64) << 32
}

/// The partitions of `dev` as (start sector, sector count), in table
/// order with unused slots as None.
pub fn scan(dev: &dyn BlockDevice) -> KResult<Vec<Option<(u64, u64)>>> {
    let total = dev.size() / SECTOR;
    if total < 2 {
        return Ok(Vec::new());
    }
    let mut mbr = [0u8; 512];
    dev.read_sectors(0, &mut mbr)?;
    if mbr[510] != 0x55 || mbr[511] != 0xAA {
        return Ok(Vec::new());
    }
    let entry = |i: usize| {
        let o = 446 + 16 * i;
        (
            mbr[o + 4],
            le32(&mbr, o + 8) as u64,
            le32(&mbr, o + 12) as u64,
        )
    };
    let ok = |start: u64, n: u64| {
        n > 0 && start >= 1 && start.checked_add(n).is_some_and(|e| e <= total)
    };
    if (0..4).any(|i| entry(i).0 == 0xEE) {
        return scan_gpt(dev, total);
    }
    // An ext2 filesystem's boot block may end in 55 AA by chance; real
    // tables have status bytes 0x00 or 0x80.
    if (0..4).any(|i| !matches!(mbr[446 + 16 * i], 0x00 | 0x80)) {
        return Ok(Vec::new());
    }
    Ok((0..4)
        .map(|i| {
            let (ty, start, n) = entry(i);
            // Extended partitions (logical volumes) are not read.
            (ty != 0 && !matches!(ty, 0x05 | 0x0f | 0x85) && ok(start, n)).then_some((start, n))
        })
        .collect())
}

fn scan_gpt(dev: &dyn BlockDevice, total: u64) -> KResult<Vec<Option<(u64, u64)>>> {
    let mut hdr = [0u8; 512];
    dev.read_sectors(1, &mut hdr)?;
    if &hdr[0..8] != b"EFI PART" {
        return Ok(Vec::new());
    }
    let entries_lba = le64(&hdr, 72);
    let count = le32(&hdr, 80) as u64;
    let esize = le32(&hdr, 84) as u64;
    if !(128..=4096).contains(&esize) || !esize.is_multiple_of(8) || count == 0 || entries_lba < 2 {
        return Ok(Vec::new());
    }
    let count = count.min(128);
    let bytes = count * esize;
    if entries_lba
        .checked_add(bytes.div_ceil(SECTOR))
        .is_none_or(|e| e > total)
    {
        return Ok(Vec::new());
    }
    let mut tbl = vec![0u8; (bytes.div_ceil(SECTOR) * SECTOR) as usize];
    dev.read_sectors(entries_lba, &mut tbl)?;
    let mut out = Vec::new();
    for i in 0..count as usize {
        let e = &tbl[i * esize as usize..(i + 1) * esize as usize];
        if e[0..16].iter().all(|&b| b == 0) {
            out.push(None);
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        let good = first >= 2 && last >= first && last < total;
        out.push(good.then(|| (first, last - first + 1)));
        if out.iter().filter(|p| p.is_some()).count() >= MAX_PARTS {
            break;
        }
    }
    // Trailing unused slots carry no numbers worth keeping.
    while out.last().is_some_and(|p| p.is_none()) {
        out.pop();
    }
    Ok(out)
}

/// (Re)registers the partitions of ubd disk `disk`. EBUSY if one of the
/// old partitions is in use.
pub fn rescan(disk: &Arc<Disk>) -> KResult<()> {
    if disk.kind != Kind::Ubd || !disk.rdev.1.is_multiple_of(16) {
        return error!(EINVAL);
    }
    let base = disk.rdev.1;
    let old: Vec<Arc<Disk>> = (1..=MAX_PARTS as u32)
        .filter_map(|p| block::lookup((disk.rdev.0, base + p)))
        .collect();
    if old.iter().any(|d| d.users() > 0) {
        return error!(EBUSY);
    }
    for d in &old {
        block::unregister(d.rdev);
    }
    let dev = disk.bound()?;
    let parts = scan(dev.as_ref())?;
    for (i, p) in parts.iter().enumerate().take(MAX_PARTS) {
        let Some((start, sectors)) = *p else {
            continue;
        };
        let n = i as u32 + 1;
        let part = Disk::new(
            format!("{}{n}", disk.name),
            (disk.rdev.0, base + n),
            Kind::Ubd,
        );
        part.bind(Some(Arc::new(Partition {
            parent: dev.clone(),
            start,
            sectors,
        })));
        block::register(part)?;
    }
    Ok(())
}
