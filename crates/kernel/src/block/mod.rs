//! The block layer: block devices (ubd disks, loop devices), their device
//! files in /dev, the block ioctls, /proc/partitions and /sys/block.
//!
//! A [`BlockDevice`] moves whole 512-byte sectors. A [`Disk`] is one
//! registered device number (major, minor) with a name ("ubda", "loop0")
//! and a *binding*: the device currently behind it (always there for ubd;
//! set and cleared by LOOP_SET_FD/LOOP_CLR_FD for loop devices).
//!
//! Locking and lifetime: the registry is one mutex over a map of
//! `Arc<Disk>`, held only to add, remove or look up. A Disk's binding is
//! an `RwLock<Option<Arc<dyn BlockDevice>>>`: each I/O clones the Arc under
//! the read lock and works without it, so a loop detach never waits for
//! I/O and I/O in flight finishes on the device it started on. `users`
//! counts open device files and mounts (a loop device with
//! LO_FLAGS_AUTOCLEAR detaches when it drops to zero).

pub mod flushgate;
pub mod loopdev;
pub mod part;
pub mod ubd;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::Meta;
use crate::fs::types::{FileType, Stat, StatFs, S_IFBLK};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

/// Bytes per sector: the unit of every block device.
pub const SECTOR: u64 = 512;

/// A device that stores sectors. Implementations do their own locking;
/// all methods may be called from many threads at once.
pub trait BlockDevice: Send + Sync + 'static {
    /// Size in bytes (a multiple of [`SECTOR`]).
    fn size(&self) -> u64;
    /// Whether writes are refused (EROFS).
    fn read_only(&self) -> bool;
    /// Reads `buf.len() / SECTOR` sectors from `sector` (`buf.len()` is a
    /// multiple of SECTOR; the range is within the device).
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()>;
    /// Reads `n` bytes of whole sectors from `sector` into guest frames
    /// `dst` from its byte `at` on (a read(2) of file data that no cache
    /// holds). By default through a buffer; a device over a host file
    /// reads straight into the frames.
    fn read_sectors_frames(
        &self,
        sector: u64,
        dst: &crate::mm::userframes::UserFrames,
        at: usize,
        n: usize,
    ) -> KResult<()> {
        let mut v = vec![0u8; n];
        self.read_sectors(sector, &mut v)?;
        frames_put(dst, at, &v);
        Ok(())
    }
    /// Writes whole sectors at `sector`.
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()>;
    /// Makes every completed write durable (the host's fsync).
    fn flush(&self) -> KResult<()>;
    /// For a loop device: what /sys/block/loopN/loop and
    /// LOOP_GET_STATUS64 report.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Copies `data` into guest frames `dst` at byte `at` of the buffer
/// (`at + data.len() <= dst.len()`).
pub fn frames_put(dst: &crate::mm::userframes::UserFrames, at: usize, data: &[u8]) {
    let mut k = 0usize;
    for (p, n) in dst.iov(at, data.len()) {
        // SAFETY: `iov` gives pointers into physmem frames that `dst`
        // holds a reference on, `n` bytes each, in buffer order, covering
        // at most `data.len()` bytes in all; kernel memory (`data`) never
        // overlaps guest frames.
        unsafe { std::ptr::copy_nonoverlapping(data[k..k + n].as_ptr(), p, n) };
        k += n;
    }
}

/// The pieces (frame, offset in it, bytes) of `dst`'s bytes
/// `[at, at + n)`, for host I/O straight into them.
pub fn frame_pieces(
    dst: &crate::mm::userframes::UserFrames,
    at: usize,
    n: usize,
) -> Vec<(ruml_host::Pfn, usize, usize)> {
    let mut v = Vec::new();
    let mut pos = 0usize;
    for &(pfn, off, len) in dst.pieces() {
        let (lo, hi) = (pos.max(at), (pos + len).min(at + n));
        if lo < hi {
            v.push((pfn, off + (lo - pos), hi - lo));
        }
        pos += len;
        if pos >= at + n {
            break;
        }
    }
    v
}

/// Reads `buf.len()` bytes at byte offset `off` of `dev` (any alignment),
/// clipped to the device's end. Returns the bytes read.
pub fn read_bytes(dev: &dyn BlockDevice, off: u64, buf: &mut [u8]) -> KResult<usize> {
    let size = dev.size();
    if off >= size {
        return Ok(0);
    }
    let len = (buf.len() as u64).min(size - off) as usize;
    let first = off / SECTOR;
    let last = (off + len as u64).div_ceil(SECTOR);
    if off.is_multiple_of(SECTOR) && (len as u64).is_multiple_of(SECTOR) {
        dev.read_sectors(first, &mut buf[..len])?;
        return Ok(len);
    }
    // Bounce through whole sectors, a bounded chunk at a time.
    let mut done = 0usize;
    let mut sec = first;
    let mut tmp = vec![0u8; (64 * SECTOR) as usize];
    while sec < last {
        let n = (last - sec).min(64);
        let chunk = &mut tmp[..(n * SECTOR) as usize];
        dev.read_sectors(sec, chunk)?;
        let chunk_start = sec * SECTOR;
        let from = (off + done as u64 - chunk_start) as usize;
        let take = (chunk.len() - from).min(len - done);
        buf[done..done + take].copy_from_slice(&chunk[from..from + take]);
        done += take;
        sec += n;
    }
    Ok(len)
}

/// Writes `data` at byte offset `off` of `dev` (read-modify-write of
/// partial sectors), clipped to the device's end; ENOSPC at or past it.
pub fn write_bytes(dev: &dyn BlockDevice, off: u64, data: &[u8]) -> KResult<usize> {
    if dev.read_only() {
        return error!(EROFS);
    }
    let size = dev.size();
    if off >= size {
        return if data.is_empty() {
            Ok(0)
        } else {
            error!(ENOSPC)
        };
    }
    let len = (data.len() as u64).min(size - off) as usize;
    if off.is_multiple_of(SECTOR) && (len as u64).is_multiple_of(SECTOR) {
        dev.write_sectors(off / SECTOR, &data[..len])?;
        return Ok(len);
    }
    let mut done = 0usize;
    while done < len {
        let pos = off + done as u64;
        let sec = pos / SECTOR;
        let in_sec = (pos % SECTOR) as usize;
        if in_sec == 0 && len - done >= SECTOR as usize {
            // A run of whole sectors.
            let whole = ((len - done) / SECTOR as usize).min(64) * SECTOR as usize;
            dev.write_sectors(sec, &data[done..done + whole])?;
            done += whole;
            continue;
        }
        let mut s = [0u8; SECTOR as usize];
        dev.read_sectors(sec, &mut s)?;
        let take = (SECTOR as usize - in_sec).min(len - done);
        s[in_sec..in_sec + take].copy_from_slice(&data[done..done + take]);
        dev.write_sectors(sec, &s)?;
        done += take;
    }
    Ok(len)
}

/// Which driver a disk belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ubd,
    Loop,
}

/// A registered block device number; see the module doc.
pub struct Disk {
    pub name: String,
    pub rdev: (u32, u32),
    pub kind: Kind,
    binding: RwLock<Option<Arc<dyn BlockDevice>>>,
    /// Open device files and mounts using the disk.
    users: AtomicUsize,
    /// BLKROSET's software read-only flag.
    ro_override: std::sync::atomic::AtomicBool,
}

impl Disk {
    pub fn new(name: String, rdev: (u32, u32), kind: Kind) -> Arc<Disk> {
        Arc::new(Disk {
            name,
            rdev,
            kind,
            binding: RwLock::new(None),
            users: AtomicUsize::new(0),
            ro_override: Default::default(),
        })
    }

    /// The device behind the number, if bound.
    pub fn device(&self) -> Option<Arc<dyn BlockDevice>> {
        self.binding
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Binds `dev` (None: unbinds). Returns the previous binding.
    pub fn bind(&self, dev: Option<Arc<dyn BlockDevice>>) -> Option<Arc<dyn BlockDevice>> {
        let mut b = self.binding.write().unwrap_or_else(|p| p.into_inner());
        self.ro_override.store(false, Ordering::Relaxed);
        std::mem::replace(&mut *b, dev)
    }

    /// The bound device or ENXIO (an unbound loop device).
    pub fn bound(&self) -> KResult<Arc<dyn BlockDevice>> {
        self.device().ok_or(crate::errno!(ENXIO))
    }

    /// Size in bytes (0 when unbound).
    pub fn size(&self) -> u64 {
        self.device().map(|d| d.size()).unwrap_or(0)
    }

    /// Read-only as the device or BLKROSET says.
    pub fn read_only(&self) -> bool {
        self.ro_override.load(Ordering::Relaxed) || self.device().is_some_and(|d| d.read_only())
    }

    /// How many open files and mounts use the disk.
    pub fn users(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }

    /// Takes a user reference, released when the guard drops.
    pub fn hold(self: &Arc<Disk>) -> DiskHold {
        self.users.fetch_add(1, Ordering::Relaxed);
        DiskHold(self.clone())
    }
}

/// A user of a [`Disk`] (an open device file, a mount): dropping the last
/// one lets an autoclear loop device detach.
pub struct DiskHold(pub Arc<Disk>);

impl Drop for DiskHold {
    fn drop(&mut self) {
        if self.0.users.fetch_sub(1, Ordering::Relaxed) == 1 && self.0.kind == Kind::Loop {
            loopdev::last_close(&self.0);
        }
    }
}

/// A block device held by a filesystem: the device it was mounted from
/// (pinned: a loop detach does not pull it away mid-mount) and the hold
/// that keeps the disk busy.
pub struct Held {
    pub dev: Arc<dyn BlockDevice>,
    pub hold: DiskHold,
}

static REGISTRY: Mutex<BTreeMap<(u32, u32), Arc<Disk>>> = Mutex::new(BTreeMap::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<(u32, u32), Arc<Disk>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds a disk; EEXIST if its number is taken.
pub fn register(d: Arc<Disk>) -> KResult<()> {
    let mut r = registry();
    if r.contains_key(&d.rdev) {
        return error!(EEXIST);
    }
    r.insert(d.rdev, d);
    Ok(())
}

/// Removes a disk (loop-control's LOOP_CTL_REMOVE).
pub fn unregister(rdev: (u32, u32)) {
    registry().remove(&rdev);
}

/// The disk with device number `rdev`.
pub fn lookup(rdev: (u32, u32)) -> Option<Arc<Disk>> {
    registry().get(&rdev).cloned()
}

/// The disk named `name` ("ubda").
pub fn by_name(name: &[u8]) -> Option<Arc<Disk>> {
    registry()
        .values()
        .find(|d| d.name.as_bytes() == name)
        .cloned()
}

/// All disks in device-number order.
pub fn all() -> Vec<Arc<Disk>> {
    registry().values().cloned().collect()
}

/// The disk behind a path used as a mount source: a block device node.
/// ENOTBLK for anything else, ENXIO for an unknown number.
pub fn from_inode(inode: &Arc<dyn Inode>) -> KResult<Arc<Disk>> {
    if inode.file_type() != FileType::BlockDevice {
        return error!(ENOTBLK);
    }
    let st = inode.stat()?;
    lookup(st.rdev).ok_or(crate::errno!(ENXIO))
}

/// Opens a disk for a filesystem: its current device and a hold.
pub fn open_for_mount(disk: &Arc<Disk>) -> KResult<Held> {
    let dev = disk.bound()?;
    Ok(Held {
        dev,
        hold: disk.hold(),
    })
}

// ---------------------------------------------------------------------------
// Device nodes and device files

/// A block device node in devfs: a device number, resolved at open.
pub struct BlockNode {
    pub meta: Meta,
    pub rdev: (u32, u32),
}

impl Inode for BlockNode {
    fn file_type(&self) -> FileType {
        FileType::BlockDevice
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.meta.stat(S_IFBLK | 0o660, 1, 0);
        st.rdev = self.rdev;
        st.gid = 6; // disk
        Ok(st)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        open_disk(self.rdev, flags)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Opens the block device `rdev` as a file (from a devfs node or a node
/// made with mknod anywhere).
pub fn open_disk(rdev: (u32, u32), flags: u32) -> KResult<Arc<dyn FileOps>> {
    let disk = lookup(rdev).ok_or(crate::errno!(ENXIO))?;
    let write = flags & crate::fs::types::oflags::O_ACCMODE != 0;
    if write && disk.read_only() {
        return error!(EROFS);
    }
    Ok(Arc::new(BlockFile { hold: disk.hold() }))
}

/// Writes through block device nodes (and BLKFLSBUF), counted: a
/// filesystem's data cache empties itself when this changes, as the
/// blocks under it may have changed.
static RAW_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The count of writes through block device nodes (see [`RAW_WRITES`]).
pub fn raw_writes() -> u64 {
    RAW_WRITES.load(Ordering::Relaxed)
}

/// Counts a write through a block device node (see [`RAW_WRITES`]).
pub fn note_raw_write() {
    RAW_WRITES.fetch_add(1, Ordering::Relaxed);
}

/// An open block device file: byte-addressed reads and writes of the
/// disk's sectors, the block ioctls, and (for /dev/loopN) the loop ioctls.
pub struct BlockFile {
    hold: DiskHold,
}

impl BlockFile {
    pub fn disk(&self) -> &Arc<Disk> {
        &self.hold.0
    }
}

/// The block ioctls (`<linux/fs.h>`).
pub mod ioctl {
    pub const BLKROSET: u32 = 0x125d;
    pub const BLKROGET: u32 = 0x125e;
    pub const BLKRRPART: u32 = 0x125f;
    pub const BLKGETSIZE: u32 = 0x1260;
    pub const BLKFLSBUF: u32 = 0x1261;
    pub const BLKSSZGET: u32 = 0x1268;
    pub const BLKBSZGET: u32 = 0x8008_1270;
    pub const BLKBSZSET: u32 = 0x4008_1271;
    pub const BLKGETSIZE64: u32 = 0x8008_1272;
    pub const BLKIOMIN: u32 = 0x1278;
    pub const BLKIOOPT: u32 = 0x1279;
    pub const BLKALIGNOFF: u32 = 0x127a;
    pub const BLKPBSZGET: u32 = 0x127b;
    pub const BLKDISCARDZEROES: u32 = 0x127c;
    pub const HDIO_GETGEO: u32 = 0x0301;
}

/// O_DIRECT on a block device: offsets and lengths in whole sectors
/// (EINVAL otherwise, as Linux). There is no kernel cache to bypass: every
/// I/O goes to the device at once.
fn check_direct(f: &OpenFile, off: u64, len: usize) -> KResult<()> {
    if f.flags() & crate::fs::types::oflags::O_DIRECT != 0
        && (!off.is_multiple_of(SECTOR) || !(len as u64).is_multiple_of(SECTOR))
    {
        return error!(EINVAL);
    }
    Ok(())
}

impl FileOps for BlockFile {
    fn read(&self, f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        check_direct(f, off, buf.len())?;
        let dev = self.disk().bound()?;
        read_bytes(dev.as_ref(), off, buf)
    }
    fn write(&self, _f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        if self.disk().read_only() {
            return error!(EPERM);
        }
        check_direct(_f, off, buf.len())?;
        let dev = self.disk().bound()?;
        let n = write_bytes(dev.as_ref(), off, buf);
        // Even a failed write may have changed some blocks.
        note_raw_write();
        let n = n?;
        if _f.flags() & crate::fs::types::oflags::O_DSYNC != 0 {
            dev.flush()?;
        }
        Ok(n)
    }
    fn size(&self) -> KResult<u64> {
        Ok(self.disk().size())
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        match self.disk().device() {
            Some(d) => d.flush(),
            None => Ok(()),
        }
    }
    fn ioctl(
        &self,
        f: &OpenFile,
        cmd: u32,
        arg: u64,
        ctx: &crate::syscalls::SyscallContext<'_>,
    ) -> KResult<u64> {
        use ioctl::*;
        let disk = self.disk();
        let mm = ctx.mm();
        match cmd {
            BLKGETSIZE64 => mm.write_val(arg, &disk.size())?,
            BLKGETSIZE => mm.write_val(arg, &(disk.size() / SECTOR))?,
            BLKSSZGET | BLKPBSZGET | BLKIOMIN => mm.write_val(arg, &(SECTOR as u32))?,
            BLKBSZGET => mm.write_val(arg, &4096i32)?,
            BLKBSZSET => {
                let v: i32 = mm.read_val(arg)?;
                if !(512..=4096).contains(&v) || !(v as u32).is_power_of_two() {
                    return error!(EINVAL);
                }
            }
            BLKIOOPT | BLKALIGNOFF | BLKDISCARDZEROES => mm.write_val(arg, &0u32)?,
            BLKROGET => mm.write_val(arg, &(disk.read_only() as i32))?,
            BLKROSET => {
                let v: i32 = mm.read_val(arg)?;
                if v == 0 && disk.device().is_some_and(|d| d.read_only()) {
                    return error!(EACCES);
                }
                disk.ro_override.store(v != 0, Ordering::Relaxed);
            }
            BLKFLSBUF => {
                note_raw_write();
                if let Some(d) = disk.device() {
                    d.flush()?;
                }
            }
            BLKRRPART => part::rescan(disk)?,
            HDIO_GETGEO => {
                // struct hd_geometry { u8 heads; u8 sectors; u16 cylinders; ulong start; }
                let sectors = disk.size() / SECTOR;
                let cyl = (sectors / (255 * 63)).min(u16::MAX as u64) as u16;
                let mut g = [0u8; 16];
                g[0] = 255;
                g[1] = 63;
                g[2..4].copy_from_slice(&cyl.to_ne_bytes());
                mm.write_bytes(arg, &g)?;
            }
            _ if disk.kind == Kind::Loop => return loopdev::ioctl(disk, f, cmd, arg, ctx),
            _ => return error!(ENOTTY),
        }
        Ok(0)
    }
}

// ---------------------------------------------------------------------------
// /proc/partitions and /sys/block

/// /proc/partitions.
pub fn proc_partitions() -> String {
    let mut s = String::from("major minor  #blocks  name\n\n");
    for d in all() {
        if d.kind == Kind::Loop && d.device().is_none() {
            continue;
        }
        s.push_str(&format!(
            "{:4}  {:7} {:10} {}\n",
            d.rdev.0,
            d.rdev.1,
            d.size() / 1024,
            d.name
        ));
    }
    s
}

/// The files of /sys/block/NAME: (relative path, text). `loop/...` only
/// for a bound loop device.
pub fn sysfs_attrs(d: &Disk) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("dev", format!("{}:{}\n", d.rdev.0, d.rdev.1)),
        ("size", format!("{}\n", d.size() / SECTOR)),
        ("ro", format!("{}\n", d.read_only() as u8)),
        ("removable", "0\n".to_string()),
        ("range", "1\n".to_string()),
        (
            "uevent",
            format!(
                "MAJOR={}\nMINOR={}\nDEVNAME={}\nDEVTYPE=disk\n",
                d.rdev.0, d.rdev.1, d.name
            ),
        ),
    ];
    if let Some(dev) = d.device() {
        if let Some(l) = dev.as_any().downcast_ref::<loopdev::LoopBacking>() {
            v.extend(l.sysfs_attrs());
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Boot

/// Registers the ubd disks the command line asked for and the loop
/// devices loop0..loop7 (as Linux with max_loop=8 does), so /dev shows
/// them. Errors name the parameter.
pub fn boot(ubds: &[ubd::UbdSpec]) -> Result<(), String> {
    for spec in ubds {
        ubd::attach(spec).map_err(|e| match e.starts_with("ubd") {
            true => e,
            false => format!("ubd{}: {e}", spec.index),
        })?;
    }
    for i in 0..8 {
        let _ = loopdev::add(i);
    }
    Ok(())
}

/// /sys/block: one directory per disk, made fresh at each lookup (the
/// attributes are snapshots, as sysfs files are read at open).
pub fn sysfs_block_dir(meta: Meta) -> Arc<dyn Inode> {
    Arc::new(SysBlock { meta })
}

struct SysBlock {
    meta: Meta,
}

impl SysBlock {
    fn disk_dir(&self, d: &Disk) -> Arc<dyn Inode> {
        use crate::fs::simple::StaticDir;
        use crate::fs::sysfs::StaticFile;
        let base = 0x2_0000_0000 | (d.rdev.0 as u64) << 24 | (d.rdev.1 as u64) << 8;
        let mut ino = base;
        let mut next = || {
            ino += 1;
            self.meta.with_ino(ino)
        };
        let mut top: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
        let mut sub: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
        for (name, text) in sysfs_attrs(d) {
            let f: Arc<dyn Inode> = Arc::new(StaticFile {
                meta: next(),
                text: text.into_bytes(),
            });
            match name.strip_prefix("loop/") {
                Some(n) => sub.push((n.as_bytes().to_vec(), f)),
                None => top.push((name.as_bytes().to_vec(), f)),
            }
        }
        if !sub.is_empty() {
            top.push((
                b"loop".to_vec(),
                Arc::new(StaticDir {
                    meta: next(),
                    perm: 0o755,
                    children: sub,
                }),
            ));
        }
        Arc::new(StaticDir {
            meta: self.meta.with_ino(base),
            perm: 0o755,
            children: top,
        })
    }
}

impl Inode for SysBlock {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self
            .meta
            .stat(crate::fs::types::S_IFDIR | 0o755, 2 + all().len() as u64, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        match by_name(name) {
            Some(d) => Ok(self.disk_dir(&d)),
            None => error!(ENOENT),
        }
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let d = FileType::Directory.dirent_type();
        let mut entries = vec![
            (self.meta.ino, d, b".".to_vec()),
            (self.meta.ino, d, b"..".to_vec()),
        ];
        for disk in all() {
            let ino = 0x2_0000_0000 | (disk.rdev.0 as u64) << 24 | (disk.rdev.1 as u64) << 8;
            entries.push((ino, d, disk.name.clone().into_bytes()));
        }
        Ok(Arc::new(crate::fs::simple::SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// /sys/dev/block: `MAJOR:MINOR` symlinks to ../../block/NAME, which is
/// how libblkid and util-linux find a device's sysfs directory.
pub fn sysfs_dev_block_dir(meta: Meta) -> Arc<dyn Inode> {
    Arc::new(SysDevBlock { meta })
}

struct SysDevBlock {
    meta: Meta,
}

impl SysDevBlock {
    fn ino(d: &Disk) -> u64 {
        0x3_0000_0000 | (d.rdev.0 as u64) << 20 | d.rdev.1 as u64
    }
}

impl Inode for SysDevBlock {
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(crate::fs::types::S_IFDIR | 0o755, 2, 0))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        let s = std::str::from_utf8(name).map_err(|_| crate::errno!(ENOENT))?;
        let (ma, mi) = s.split_once(':').ok_or(crate::errno!(ENOENT))?;
        let rdev = (
            ma.parse().map_err(|_| crate::errno!(ENOENT))?,
            mi.parse().map_err(|_| crate::errno!(ENOENT))?,
        );
        let d = lookup(rdev).ok_or(crate::errno!(ENOENT))?;
        Ok(Arc::new(crate::fs::simple::StaticLink {
            meta: self.meta.with_ino(Self::ino(&d)),
            target: format!("../../block/{}", d.name).into_bytes(),
        }))
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        let dt = FileType::Directory.dirent_type();
        let mut entries = vec![
            (self.meta.ino, dt, b".".to_vec()),
            (self.meta.ino, dt, b"..".to_vec()),
        ];
        for d in all() {
            entries.push((
                Self::ino(&d),
                FileType::Symlink.dirent_type(),
                format!("{}:{}", d.rdev.0, d.rdev.1).into_bytes(),
            ));
        }
        Ok(Arc::new(crate::fs::simple::SynthDir { entries }))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// sync(2): commits the disk filesystems' journals and flushes every
/// bound disk (errors are dropped, as sync(2) reports none).
pub fn sync_all() {
    crate::fs::ext2::sync_all();
    flush_disks();
}

/// Halt: the disk filesystems are left as an unmount leaves them, and
/// every disk is flushed.
pub fn shutdown_all() {
    crate::fs::ext2::shutdown_all();
    flush_disks();
}

fn flush_disks() {
    for d in all() {
        if let Some(dev) = d.device() {
            let _ = dev.flush();
        }
    }
}
