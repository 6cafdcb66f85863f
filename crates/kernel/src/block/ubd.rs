//! ubd: UML's block device, a host file as a disk (`ubdN=FILE`), or a
//! copy-on-write pair (`ubdN=COWFILE,BACKING`) in UML's COW file format,
//! version 3, so that Debian's `uml_mkcow` makes files ruml opens and
//! `uml_moo` merges what ruml wrote.
//!
//! COW format v3 (all integers big-endian, header packed):
//!
//! ```text
//!   0  u32 magic 0x4f4f4f4d ("OOOM")   4  u32 version (3)
//!   8  u32 backing file's mtime       12  u64 backing file's size
//!  20  u32 sector size (512)          24  u32 alignment (4096)
//!  28  u32 cow format (0: bitmap)     32  char backing_file[4096]
//! ```
//!
//! The bitmap starts at the header size (4128) rounded up to the
//! alignment and has one bit per sector (byte s/8, bit s%8, least
//! significant first); the data area starts after it, rounded up to the
//! alignment, and holds sector s at `data_offset + s * 512`. A set bit
//! means the sector's current contents are in the COW file.
//!
//! Locking: a raw disk is stateless (host pread/pwrite). A COW disk keeps
//! the bitmap in memory under a mutex, held across each write so that the
//! data lands in the COW file before its bit is set (in memory and in the
//! file): after a crash, a sector is either old or new, never garbage.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ruml_host::hostfile::{DiskOpen, HostFile};

use crate::block::{self, part, BlockDevice, Disk, Kind, SECTOR};
use crate::errno::KResult;
use crate::error;

/// ubd's major number.
pub const MAJOR: u32 = 98;
/// ubd disks the command line may name (ubd0..ubd15, as UML's MAX_DEV).
pub const MAX_DEV: u32 = 16;

const COW_MAGIC: u32 = 0x4f4f_4f4d;
const COW_VERSION: u32 = 3;
const HEADER_V3: usize = 4 + 4 + 4 + 8 + 4 + 4 + 4 + 4096;
const PATH_LEN: usize = 4096;
const ALIGNMENT: u32 = 4096;

/// One `ubdN[flags]=FILE[,BACKING]` parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UbdSpec {
    pub index: u32,
    /// The disk image, or the COW file when `backing` is given.
    pub file: PathBuf,
    pub backing: Option<PathBuf>,
    /// `r`: read-only.
    pub read_only: bool,
    /// `s`: synchronous (O_SYNC) writes.
    pub sync: bool,
    /// `d`: the file is data, never a COW file (no header detection).
    pub no_cow: bool,
}

impl UbdSpec {
    /// Parses a parameter `key=value` if key is `ubdN[flags]`. Ok(None):
    /// not a ubd parameter.
    pub fn parse(key: &str, value: &str) -> Result<Option<UbdSpec>, String> {
        let Some(rest) = key.strip_prefix("ubd") else {
            return Ok(None);
        };
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        let (num, flags) = rest.split_at(digits);
        let index = if digits > 0 {
            num.parse::<u32>().map_err(|_| format!("bad {key}"))?
        } else {
            // UML also takes a letter: ubda=.
            match flags.chars().next() {
                Some(c @ 'a'..='p') => {
                    let i = c as u32 - 'a' as u32;
                    return Self::parse(&format!("ubd{i}{}", &flags[1..]), value);
                }
                _ => return Ok(None),
            }
        };
        if index >= MAX_DEV {
            return Err(format!("{key}: ubd devices are ubd0..ubd{}", MAX_DEV - 1));
        }
        let mut spec = UbdSpec {
            index,
            ..Default::default()
        };
        for f in flags.chars() {
            match f {
                'r' => spec.read_only = true,
                's' => spec.sync = true,
                'd' => spec.no_cow = true,
                _ => return Err(format!("{key}: unknown flag '{f}' (r, s and d are known)")),
            }
        }
        let (file, backing) = match value.split_once([',', ':']) {
            Some((c, b)) if !b.is_empty() => (c, Some(PathBuf::from(b))),
            _ => (value, None),
        };
        if file.is_empty() {
            return Err(format!("{key}=: give a file"));
        }
        if backing.is_some() && spec.no_cow {
            return Err(format!(
                "{key}: flag d and a backing file exclude each other"
            ));
        }
        spec.file = PathBuf::from(file);
        spec.backing = backing;
        Ok(Some(spec))
    }

    /// For the boot log.
    pub fn describe(&self) -> String {
        match &self.backing {
            Some(b) => format!("{} (COW over {})", self.file.display(), b.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// "ubda".."ubdp".
pub fn name(index: u32) -> String {
    format!("ubd{}", (b'a' + index as u8) as char)
}

fn host_io(e: i32) -> crate::errno::Errno {
    if crate::errno::trace_enabled() {
        eprintln!("ruml: ubd: host errno {e}");
    }
    crate::errno!(EIO)
}

/// Reads exactly `buf.len()` bytes (short reads past the end of a host
/// file give zeros: a sparse or truncated image reads as zeros).
fn pread_full(f: &HostFile, off: u64, buf: &mut [u8]) -> KResult<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = f
            .pread(off + done as u64, &mut buf[done..])
            .map_err(host_io)?;
        if n == 0 {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}

fn pwrite_full(f: &HostFile, off: u64, buf: &[u8]) -> KResult<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.pwrite(off + done as u64, &buf[done..]).map_err(host_io)?;
        if n == 0 {
            return error!(EIO);
        }
        done += n;
    }
    Ok(())
}

/// Opens the disk a parameter names. Errors are for the user.
pub fn open(spec: &UbdSpec) -> Result<Arc<dyn BlockDevice>, String> {
    let what = format!("ubd{}", spec.index);
    let how = DiskOpen {
        write: !spec.read_only,
        create: false,
        sync: spec.sync,
    };
    if let Some(backing) = &spec.backing {
        return Ok(Arc::new(Cow::open_or_create(spec, backing, how)?));
    }
    let file = HostFile::open_disk(&spec.file, how).map_err(|e| {
        format!(
            "{what}: cannot open {}: {}",
            spec.file.display(),
            strerror(e)
        )
    })?;
    if !spec.no_cow {
        let mut head = vec![0u8; HEADER_V3];
        let n = file.pread(0, &mut head).unwrap_or(0);
        if n >= 8 && be32(&head, 0) == COW_MAGIC {
            // A COW file named alone: its header names the backing file.
            drop(file);
            let backing = Header::parse(&head[..n])
                .map_err(|e| format!("{what}: {}: {e}", spec.file.display()))?
                .backing;
            return Ok(Arc::new(Cow::open_or_create(spec, &backing, how)?));
        }
    }
    let size = file
        .disk_size()
        .map_err(|e| format!("{what}: {}: {}", spec.file.display(), strerror(e)))?;
    Ok(Arc::new(Raw {
        gate: Default::default(),
        file,
        size: size / SECTOR * SECTOR,
        read_only: spec.read_only,
    }))
}

fn strerror(e: i32) -> String {
    if e == crate::errno::Errno::EAGAIN.as_i32() {
        // The host lock (see HostFile::open_disk).
        return "locked: another instance (UML or ruml) uses it".to_string();
    }
    std::io::Error::from_raw_os_error(e).to_string()
}

/// A host file as a disk.
pub struct Raw {
    file: HostFile,
    /// Skips flushes with nothing written since the last one.
    gate: block::flushgate::FlushGate,
    size: u64,
    read_only: bool,
}

impl BlockDevice for Raw {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
        pread_full(&self.file, sector * SECTOR, buf)
    }
    fn read_sectors_frames(
        &self,
        sector: u64,
        dst: &crate::mm::userframes::UserFrames,
        at: usize,
        n: usize,
    ) -> KResult<()> {
        // One host preadv into the frames; what it leaves (a short read,
        // too many pieces) goes through a buffer.
        let pieces = crate::block::frame_pieces(dst, at, n);
        let mut done = 0usize;
        if pieces.len() <= 1024 {
            done = self
                .file
                .pread_frames(sector * SECTOR, dst.phys(), &pieces)
                .map_err(host_io)?;
        }
        if done < n {
            let mut v = vec![0u8; n - done];
            pread_full(&self.file, sector * SECTOR + done as u64, &mut v)?;
            crate::block::frames_put(dst, at + done, &v);
        }
        Ok(())
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        if self.read_only {
            return error!(EROFS);
        }
        let r = pwrite_full(&self.file, sector * SECTOR, buf);
        self.gate.wrote();
        r
    }
    fn flush(&self) -> KResult<()> {
        // fdatasync: the image's size and block map (what reading it
        // back needs) are flushed with the data; its times are not.
        self.gate.flush(|| self.file.sync(true).map_err(host_io))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn be64(b: &[u8], off: usize) -> u64 {
    (be32(b, off) as u64) << 32 | be32(b, off + 4) as u64
}

fn round_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

/// A parsed v3 header.
#[derive(Debug)]
struct Header {
    mtime: u32,
    size: u64,
    sectorsize: u32,
    alignment: u32,
    backing: PathBuf,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header, String> {
        if b.len() < 8 || be32(b, 0) != COW_MAGIC {
            return Err("not a COW file".into());
        }
        let version = be32(b, 4);
        if version != COW_VERSION {
            return Err(format!(
                "COW file version {version}: ruml reads version 3 (convert with uml_moo)"
            ));
        }
        if b.len() < HEADER_V3 {
            return Err("short COW header".into());
        }
        let h = Header {
            mtime: be32(b, 8),
            size: be64(b, 12),
            sectorsize: be32(b, 20),
            alignment: be32(b, 24),
            backing: {
                use std::os::unix::ffi::OsStrExt;
                let raw = &b[32..32 + PATH_LEN];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                PathBuf::from(std::ffi::OsStr::from_bytes(&raw[..end]))
            },
        };
        if be32(b, 28) != 0 {
            return Err(format!(
                "COW format {} is not the bitmap format",
                be32(b, 28)
            ));
        }
        if h.sectorsize as u64 != SECTOR {
            return Err(format!(
                "COW sector size {} (only 512 is supported)",
                h.sectorsize
            ));
        }
        if h.alignment == 0 || h.alignment > 1 << 20 {
            return Err(format!("COW alignment {} is invalid", h.alignment));
        }
        if h.backing.as_os_str().is_empty() {
            return Err("COW header names no backing file".into());
        }
        Ok(h)
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        use std::os::unix::ffi::OsStrExt;
        let path = self.backing.as_os_str().as_bytes();
        if path.len() > PATH_LEN - 1 {
            return Err("backing file name too long for a COW header".into());
        }
        let mut b = vec![0u8; HEADER_V3];
        b[0..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&COW_VERSION.to_be_bytes());
        b[8..12].copy_from_slice(&self.mtime.to_be_bytes());
        b[12..20].copy_from_slice(&self.size.to_be_bytes());
        b[20..24].copy_from_slice(&self.sectorsize.to_be_bytes());
        b[24..28].copy_from_slice(&self.alignment.to_be_bytes());
        // cow_format 0 at 28..32.
        b[32..32 + path.len()].copy_from_slice(path);
        Ok(b)
    }

    /// (bitmap offset, bitmap length, data offset), as UML's cow_sizes
    /// computes them for version 3.
    fn layout(&self) -> (u64, u64, u64) {
        let align = self.alignment as u64;
        let bitmap_off = round_up(HEADER_V3 as u64, align);
        let bitmap_len = self.size.div_ceil(self.sectorsize as u64).div_ceil(8);
        let data_off = round_up(bitmap_off + bitmap_len, align);
        (bitmap_off, bitmap_len, data_off)
    }
}

/// A COW disk: reads come from the COW file where its bitmap says so,
/// else from the backing file; writes go to the COW file.
pub struct Cow {
    cow: HostFile,
    backing: HostFile,
    size: u64,
    read_only: bool,
    bitmap_off: u64,
    data_off: u64,
    bitmap: Mutex<Vec<u8>>,
    /// Skips flushes with nothing written since the last one.
    gate: block::flushgate::FlushGate,
}

fn host_mtime_size(f: &HostFile) -> Result<(u32, u64), i32> {
    let st = f.stat()?;
    Ok((st.mtime.0 as u32, f.disk_size()?))
}

impl Cow {
    fn open_or_create(
        spec: &UbdSpec,
        backing_path: &PathBuf,
        how: DiskOpen,
    ) -> Result<Cow, String> {
        let what = format!("ubd{}", spec.index);
        let backing = HostFile::open_disk(backing_path, DiskOpen::default()).map_err(|e| {
            format!(
                "{what}: cannot open backing file {}: {}",
                backing_path.display(),
                strerror(e)
            )
        })?;
        let (mtime, size) = host_mtime_size(&backing)
            .map_err(|e| format!("{what}: {}: {}", backing_path.display(), strerror(e)))?;
        let cow = match HostFile::open_disk(&spec.file, how) {
            Ok(f) => f,
            Err(libc_enoent) if libc_enoent == 2 && !spec.read_only => {
                // UML creates a missing COW file on first use.
                let f = HostFile::open_disk(
                    &spec.file,
                    DiskOpen {
                        create: true,
                        ..how
                    },
                )
                .map_err(|e| {
                    format!(
                        "{what}: cannot create COW file {}: {}",
                        spec.file.display(),
                        strerror(e)
                    )
                })?;
                let abs = std::fs::canonicalize(backing_path)
                    .map_err(|e| format!("{what}: {}: {e}", backing_path.display()))?;
                let h = Header {
                    mtime,
                    size,
                    sectorsize: SECTOR as u32,
                    alignment: ALIGNMENT,
                    backing: abs,
                };
                let (_, _, data_off) = h.layout();
                pwrite_full(&f, 0, &h.encode()?)
                    .and_then(|_| f.truncate(data_off + size).map_err(host_io))
                    .map_err(|e| format!("{what}: writing {}: {e}", spec.file.display()))?;
                crate::log::info(&format!(
                    " {what}: created COW file {} over {}",
                    spec.file.display(),
                    backing_path.display()
                ));
                f
            }
            Err(e) => {
                return Err(format!(
                    "{what}: cannot open COW file {}: {}",
                    spec.file.display(),
                    strerror(e)
                ))
            }
        };
        let mut head = vec![0u8; HEADER_V3];
        pread_full(&cow, 0, &mut head).map_err(|e| format!("{what}: reading header: {e}"))?;
        let h =
            Header::parse(&head).map_err(|e| format!("{what}: {}: {e}", spec.file.display()))?;
        // The backing file must be the one the COW file was made over.
        if h.size != size {
            return Err(format!(
                "{what}: the size of backing file {} ({size}) differs from the COW header's ({})",
                backing_path.display(),
                h.size
            ));
        }
        if h.mtime != mtime {
            return Err(format!(
                "{what}: mtime mismatch ({} vs {mtime}) of COW header vs backing file {}",
                h.mtime,
                backing_path.display()
            ));
        }
        let (bitmap_off, bitmap_len, data_off) = h.layout();
        if bitmap_len > 1 << 30 {
            return Err(format!("{what}: COW bitmap too large"));
        }
        let mut bitmap = vec![0u8; bitmap_len as usize];
        pread_full(&cow, bitmap_off, &mut bitmap)
            .map_err(|e| format!("{what}: reading bitmap: {e}"))?;
        Ok(Cow {
            cow,
            backing,
            size: size / SECTOR * SECTOR,
            read_only: spec.read_only,
            bitmap_off,
            data_off,
            bitmap: Mutex::new(bitmap),
            gate: Default::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bitmap.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn bit(map: &[u8], s: u64) -> bool {
    map.get((s / 8) as usize)
        .is_some_and(|b| b & (1 << (s % 8)) != 0)
}

impl BlockDevice for Cow {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
        let n = buf.len() as u64 / SECTOR;
        // Snapshot the bits for the range, then read runs from each file.
        let bits: Vec<bool> = {
            let map = self.lock();
            (sector..sector + n).map(|s| bit(&map, s)).collect()
        };
        let mut i = 0u64;
        while i < n {
            let from_cow = bits[i as usize];
            let mut j = i + 1;
            while j < n && bits[j as usize] == from_cow {
                j += 1;
            }
            let chunk = &mut buf[(i * SECTOR) as usize..(j * SECTOR) as usize];
            let s = sector + i;
            if from_cow {
                pread_full(&self.cow, self.data_off + s * SECTOR, chunk)?;
            } else {
                pread_full(&self.backing, s * SECTOR, chunk)?;
            }
            i = j;
        }
        Ok(())
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        if self.read_only {
            return error!(EROFS);
        }
        let r = self.write_cow(sector, buf);
        self.gate.wrote();
        r
    }
    fn flush(&self) -> KResult<()> {
        // fdatasync: the COW file's size (it grows) and block map are
        // flushed with the data.
        self.gate.flush(|| self.cow.sync(true).map_err(host_io))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Cow {
    /// The sectors into the COW file's data area, then their bitmap bits.
    fn write_cow(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        let n = buf.len() as u64 / SECTOR;
        let mut map = self.lock();
        pwrite_full(&self.cow, self.data_off + sector * SECTOR, buf)?;
        let (first, last) = (sector / 8, (sector + n - 1) / 8);
        let mut changed = false;
        for s in sector..sector + n {
            if let Some(b) = map.get_mut((s / 8) as usize) {
                changed |= *b & (1 << (s % 8)) == 0;
                *b |= 1 << (s % 8);
            }
        }
        if changed {
            let bytes = &map[first as usize..=last as usize];
            pwrite_full(&self.cow, self.bitmap_off + first, bytes)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Attaching and detaching disks: at boot and from the management console

/// The parameter behind each configured ubd disk (index = N of ubdN), for
/// the management console's `config ubdN` query and to refuse a second
/// `config ubdN=...`.
///
/// Locking: held across a whole attach or detach (opening the host file,
/// registering the disk and its partitions, or checking that nothing uses
/// them and unregistering), so two of them never interleave. Never held
/// while a guest does I/O: I/O finds disks through the block registry.
static CONFIGURED: Mutex<[Option<UbdSpec>; MAX_DEV as usize]> =
    Mutex::new([const { None }; MAX_DEV as usize]);

fn configured() -> std::sync::MutexGuard<'static, [Option<UbdSpec>; MAX_DEV as usize]> {
    CONFIGURED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the disk `spec` names and registers it (and its partitions) in
/// the block layer, so /dev/ubdX, /proc/partitions and /sys/block show it
/// at once: the command line's `ubdN=` at boot, or `config ubdN=` from
/// the management console while the instance runs. Errors are for the
/// user.
pub fn attach(spec: &UbdSpec) -> Result<(), String> {
    let mut cfg = configured();
    let slot = cfg
        .get_mut(spec.index as usize)
        .ok_or_else(|| format!("ubd devices are ubd0..ubd{}", MAX_DEV - 1))?;
    if slot.is_some() {
        return Err("Device is already configured".to_string());
    }
    let dev = open(spec)?;
    let disk = Disk::new(name(spec.index), (MAJOR, spec.index * 16), Kind::Ubd);
    let size = dev.size();
    disk.bind(Some(dev));
    block::register(disk.clone()).map_err(|_| format!("ubd{}: given twice", spec.index))?;
    *slot = Some(spec.clone());
    crate::log::info(&format!(
        " {}: {} ({} sectors){}{}",
        disk.name,
        spec.describe(),
        size / SECTOR,
        if spec.read_only { ", read-only" } else { "" },
        if spec.sync { ", synchronous" } else { "" },
    ));
    match part::rescan(&disk) {
        Ok(()) => {
            let parts: Vec<String> = partitions(&disk).iter().map(|d| d.name.clone()).collect();
            if !parts.is_empty() {
                crate::log::info(&format!(" {}: {}", disk.name, parts.join(" ")));
            }
        }
        Err(e) => crate::log::warn(&format!(
            " {}: reading the partition table: {e:?}",
            disk.name
        )),
    }
    Ok(())
}

/// The registered partitions of ubd disk `disk`.
fn partitions(disk: &Disk) -> Vec<Arc<Disk>> {
    (1..16)
        .filter_map(|p| block::lookup((disk.rdev.0, disk.rdev.1 + p)))
        .collect()
}

/// What `config ubdN` answers: the parameter's value as given (`FILE`, or
/// `COW,BACKING`), or "" for a disk that is not configured (as UML).
pub fn config_string(index: u32) -> Option<String> {
    let cfg = configured();
    let slot = cfg.get(index as usize)?;
    Some(match slot {
        None => String::new(),
        Some(s) => match &s.backing {
            Some(b) => format!("{},{}", s.file.display(), b.display()),
            None => s.file.display().to_string(),
        },
    })
}

/// Why [`detach`] refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DetachError {
    /// No disk is configured there (UML's ENODEV).
    NoDevice,
    /// The disk or one of its partitions is open or mounted (EBUSY).
    Busy,
}

/// Unplugs ubd disk `index` (`remove ubdN`): refused while the disk or a
/// partition of it is open or mounted; otherwise its device files go away
/// and the host file is flushed and closed (its lock released), so the
/// host may use or change it again.
pub fn detach(index: u32) -> Result<(), DetachError> {
    let mut cfg = configured();
    let slot = cfg.get_mut(index as usize).ok_or(DetachError::NoDevice)?;
    if slot.is_none() {
        return Err(DetachError::NoDevice);
    }
    let Some(disk) = block::lookup((MAJOR, index * 16)) else {
        *slot = None;
        return Err(DetachError::NoDevice);
    };
    let mut all = partitions(&disk);
    all.push(disk.clone());
    if all.iter().any(|d| d.users() > 0) {
        return Err(DetachError::Busy);
    }
    for d in &all {
        block::unregister(d.rdev);
    }
    // A file opened in the instant before the unregister finds no device
    // (ENXIO) rather than the closed host file.
    for d in &all {
        if let Some(dev) = d.bind(None) {
            let _ = dev.flush();
        }
    }
    *slot = None;
    crate::log::info(&format!(" {}: removed", disk.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_params() {
        let s = UbdSpec::parse("ubd0", "img").unwrap().unwrap();
        assert_eq!((s.index, s.read_only, s.backing.clone()), (0, false, None));
        let s = UbdSpec::parse("ubd1rs", "c,b").unwrap().unwrap();
        assert_eq!(s.index, 1);
        assert!(s.read_only && s.sync);
        assert_eq!(s.backing, Some(PathBuf::from("b")));
        let s = UbdSpec::parse("ubdb", "x").unwrap().unwrap();
        assert_eq!(s.index, 1);
        assert!(UbdSpec::parse("ubd16", "x").is_err());
        assert!(UbdSpec::parse("ubd0q", "x").is_err());
        assert!(UbdSpec::parse("mem", "x").unwrap().is_none());
    }

    #[test]
    fn header_layout_matches_uml() {
        // uml_mkcow over a 102400-byte file: bitmap at 8192, 25 bytes,
        // data at 12288; the file is 114688 bytes.
        let h = Header {
            mtime: 1,
            size: 102400,
            sectorsize: 512,
            alignment: 4096,
            backing: PathBuf::from("/b"),
        };
        assert_eq!(h.layout(), (8192, 25, 12288));
        let enc = h.encode().unwrap();
        assert_eq!(enc.len(), 4128);
        let back = Header::parse(&enc).unwrap();
        assert_eq!((back.size, back.backing), (102400, PathBuf::from("/b")));
    }
}
