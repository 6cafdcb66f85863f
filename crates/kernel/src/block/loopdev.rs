//! Loop devices: /dev/loopN (major 7) backed by any open guest file, and
//! /dev/loop-control (misc 10:237) to find, add and remove them.
//!
//! A bound loop device is a [`LoopBacking`]: the backing file's open
//! description (kept alive by the binding), an offset, a size limit and
//! flags. Status changes (LOOP_SET_STATUS64) replace the binding with a
//! new LoopBacking over the same file; see the block module doc for why
//! bindings are swapped rather than mutated. A per-device mutex
//! (`CONFIG`) serializes configuration calls.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::block::{self, BlockDevice, Disk, Kind, SECTOR};
use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::simple::Meta;
use crate::fs::types::{FileType, Stat, StatFs, S_IFCHR};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey};

pub const MAJOR: u32 = 7;
/// The most loop devices LOOP_CTL_ADD creates (bounded guest allocation).
pub const MAX_LOOP: u32 = 256;

pub const LOOP_SET_FD: u32 = 0x4C00;
pub const LOOP_CLR_FD: u32 = 0x4C01;
pub const LOOP_SET_STATUS: u32 = 0x4C02;
pub const LOOP_GET_STATUS: u32 = 0x4C03;
pub const LOOP_SET_STATUS64: u32 = 0x4C04;
pub const LOOP_GET_STATUS64: u32 = 0x4C05;
pub const LOOP_CHANGE_FD: u32 = 0x4C06;
pub const LOOP_SET_CAPACITY: u32 = 0x4C07;
pub const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
pub const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
pub const LOOP_CONFIGURE: u32 = 0x4C0A;
pub const LOOP_CTL_ADD: u32 = 0x4C80;
pub const LOOP_CTL_REMOVE: u32 = 0x4C81;
pub const LOOP_CTL_GET_FREE: u32 = 0x4C82;

pub const LO_FLAGS_READ_ONLY: u32 = 1;
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
pub const LO_FLAGS_PARTSCAN: u32 = 8;
pub const LO_FLAGS_DIRECT_IO: u32 = 16;
const SET_STATUS_SETTABLE: u32 = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
const SET_STATUS_CLEARABLE: u32 = LO_FLAGS_AUTOCLEAR;
const CONFIGURE_SETTABLE: u32 =
    LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO;

/// sizeof(struct loop_info64).
const INFO64_LEN: usize = 232;
/// sizeof(struct loop_config).
const CONFIG_LEN: usize = 8 + INFO64_LEN + 64;
const LO_NAME_SIZE: usize = 64;

/// Serializes configuration of all loop devices (rare, short).
static CONFIG: Mutex<()> = Mutex::new(());

fn config_lock() -> std::sync::MutexGuard<'static, ()> {
    CONFIG.lock().unwrap_or_else(|p| p.into_inner())
}

/// `struct loop_info64`, decoded.
#[derive(Clone, Debug)]
struct Info64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
}

impl Info64 {
    fn decode(b: &[u8]) -> Info64 {
        let u64at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        let mut i = Info64 {
            device: u64at(0),
            inode: u64at(8),
            rdevice: u64at(16),
            offset: u64at(24),
            sizelimit: u64at(32),
            number: u32at(40),
            encrypt_type: u32at(44),
            flags: u32at(52),
            file_name: [0; LO_NAME_SIZE],
            crypt_name: [0; LO_NAME_SIZE],
        };
        i.file_name.copy_from_slice(&b[56..56 + LO_NAME_SIZE]);
        i.crypt_name
            .copy_from_slice(&b[56 + LO_NAME_SIZE..56 + 2 * LO_NAME_SIZE]);
        i
    }
    fn encode(&self) -> [u8; INFO64_LEN] {
        let mut b = [0u8; INFO64_LEN];
        b[0..8].copy_from_slice(&self.device.to_ne_bytes());
        b[8..16].copy_from_slice(&self.inode.to_ne_bytes());
        b[16..24].copy_from_slice(&self.rdevice.to_ne_bytes());
        b[24..32].copy_from_slice(&self.offset.to_ne_bytes());
        b[32..40].copy_from_slice(&self.sizelimit.to_ne_bytes());
        b[40..44].copy_from_slice(&self.number.to_ne_bytes());
        b[44..48].copy_from_slice(&self.encrypt_type.to_ne_bytes());
        b[52..56].copy_from_slice(&self.flags.to_ne_bytes());
        b[56..56 + LO_NAME_SIZE].copy_from_slice(&self.file_name);
        b[56 + LO_NAME_SIZE..56 + 2 * LO_NAME_SIZE].copy_from_slice(&self.crypt_name);
        b
    }
}

/// A bound loop device; see the module doc.
pub struct LoopBacking {
    file: FileRef,
    offset: u64,
    sizelimit: u64,
    flags: u32,
    number: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    /// The backing file's path, for /sys/block/loopN/loop/backing_file.
    path: Vec<u8>,
    /// Sector-aligned size, computed at bind (LOOP_SET_CAPACITY redoes it).
    size: AtomicU64,
}

impl LoopBacking {
    fn compute_size(&self) -> KResult<u64> {
        let fsize = self.file.size()?;
        let mut s = fsize.saturating_sub(self.offset);
        if self.sizelimit != 0 {
            s = s.min(self.sizelimit);
        }
        Ok(s / SECTOR * SECTOR)
    }

    fn info(&self) -> Info64 {
        let st = self.file.stat().unwrap_or_default();
        Info64 {
            device: crate::fs::types::encode_dev(st.dev.0, st.dev.1),
            inode: st.ino,
            rdevice: crate::fs::types::encode_dev(st.rdev.0, st.rdev.1),
            offset: self.offset,
            sizelimit: self.sizelimit,
            number: self.number,
            encrypt_type: 0,
            flags: self.flags,
            file_name: self.file_name,
            crypt_name: self.crypt_name,
        }
    }

    /// The files of /sys/block/loopN/loop/.
    pub fn sysfs_attrs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "loop/backing_file",
                format!("{}\n", String::from_utf8_lossy(&self.path)),
            ),
            ("loop/offset", format!("{}\n", self.offset)),
            ("loop/sizelimit", format!("{}\n", self.sizelimit)),
            (
                "loop/autoclear",
                format!("{}\n", (self.flags & LO_FLAGS_AUTOCLEAR != 0) as u8),
            ),
            (
                "loop/partscan",
                format!("{}\n", (self.flags & LO_FLAGS_PARTSCAN != 0) as u8),
            ),
            (
                "loop/dio",
                format!("{}\n", (self.flags & LO_FLAGS_DIRECT_IO != 0) as u8),
            ),
        ]
    }
}

impl BlockDevice for LoopBacking {
    fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }
    fn read_only(&self) -> bool {
        self.flags & LO_FLAGS_READ_ONLY != 0
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
        let mut done = 0;
        while done < buf.len() {
            let off = self.offset + sector * SECTOR + done as u64;
            let n = self.file.read_at(off, &mut buf[done..])?;
            if n == 0 {
                // The backing file shrank: the rest reads as zeros.
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        if self.read_only() {
            return error!(EROFS);
        }
        let mut done = 0;
        while done < buf.len() {
            let off = self.offset + sector * SECTOR + done as u64;
            let n = self.file.write_at(off, &buf[done..])?;
            if n == 0 {
                return error!(EIO);
            }
            done += n;
        }
        Ok(())
    }
    fn flush(&self) -> KResult<()> {
        match self.file.ops()?.sync(false) {
            // Files without fsync (pseudo files) have nothing to flush.
            Err(crate::errno::Errno::EINVAL) => Ok(()),
            r => r,
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Registers loopN (unbound). EEXIST if it exists.
pub fn add(n: u32) -> KResult<()> {
    if n >= MAX_LOOP {
        return error!(EINVAL);
    }
    block::register(Disk::new(format!("loop{n}"), (MAJOR, n), Kind::Loop))
}

/// Called when the last user of a loop device goes: autoclear.
pub fn last_close(disk: &Arc<Disk>) {
    // The old binding is dropped after the lock is released: dropping its
    // file may drop a filesystem and with it another loop device's hold.
    let _old = {
        let _g = config_lock();
        if disk.users() != 0 {
            return;
        }
        let auto = disk.device().is_some_and(|d| {
            d.as_any()
                .downcast_ref::<LoopBacking>()
                .is_some_and(|l| l.flags & LO_FLAGS_AUTOCLEAR != 0)
        });
        if !auto {
            return;
        }
        disk.bind(None)
    };
}

fn is_bound(disk: &Disk) -> bool {
    disk.device()
        .is_some_and(|d| d.as_any().downcast_ref::<LoopBacking>().is_some())
}

/// Runs `f` on the loop binding of `disk` (ENXIO when unbound).
fn with_backing<T>(disk: &Disk, f: impl FnOnce(&LoopBacking) -> KResult<T>) -> KResult<T> {
    let Some(d) = disk.device() else {
        return error!(ENXIO);
    };
    match d.as_any().downcast_ref::<LoopBacking>() {
        Some(l) => f(l),
        None => error!(ENXIO),
    }
}

fn bind_file(
    disk: &Arc<Disk>,
    dev_file: &OpenFile,
    file: FileRef,
    info: Option<&Info64>,
    flags_allowed: u32,
) -> KResult<()> {
    let _g = config_lock();
    if is_bound(disk) {
        return error!(EBUSY);
    }
    if file.is_path_only() || !matches!(file.file_type(), FileType::Regular | FileType::BlockDevice)
    {
        return error!(EINVAL);
    }
    // A loop device over itself (or another loop over it) would recurse.
    if file.file_type() == FileType::BlockDevice {
        let st = file.stat()?;
        if st.rdev.0 == MAJOR {
            return error!(EINVAL);
        }
    }
    let mut flags = info.map(|i| i.flags & flags_allowed).unwrap_or(0);
    if !file.can_write() || !dev_file.can_write() {
        flags |= LO_FLAGS_READ_ONLY;
    }
    let (offset, sizelimit) = info.map(|i| (i.offset, i.sizelimit)).unwrap_or((0, 0));
    if offset % SECTOR != 0 || offset > i64::MAX as u64 || sizelimit > i64::MAX as u64 {
        return error!(EINVAL);
    }
    let root = file.path.clone();
    let path = crate::fs::vfs::d_path(&root, &file_root(&file));
    let l = LoopBacking {
        offset,
        sizelimit,
        flags,
        number: disk.rdev.1,
        file_name: info
            .map(|i| i.file_name)
            .unwrap_or_else(|| name_field(&path)),
        crypt_name: info.map(|i| i.crypt_name).unwrap_or([0; LO_NAME_SIZE]),
        path,
        file,
        size: Default::default(),
    };
    l.size.store(l.compute_size()?, Ordering::Relaxed);
    disk.bind(Some(Arc::new(l)));
    Ok(())
}

/// The namespace root the path is printed from.
fn file_root(f: &OpenFile) -> crate::fs::vfs::Path {
    let mut p = f.path.clone();
    while let Some(mp) = p.mnt.mountpoint() {
        p = mp;
    }
    crate::fs::vfs::Path::mount_root(&p.mnt)
}

fn name_field(path: &[u8]) -> [u8; LO_NAME_SIZE] {
    let mut n = [0u8; LO_NAME_SIZE];
    let len = path.len().min(LO_NAME_SIZE - 1);
    n[..len].copy_from_slice(&path[..len]);
    n
}

/// The loop ioctls of /dev/loopN.
pub fn ioctl(
    disk: &Arc<Disk>,
    f: &OpenFile,
    cmd: u32,
    arg: u64,
    ctx: &crate::syscalls::SyscallContext<'_>,
) -> KResult<u64> {
    let mm = ctx.mm();
    match cmd {
        LOOP_SET_FD => {
            let file = ctx.files().get(arg as i32)?;
            bind_file(disk, f, file, None, 0)?;
        }
        LOOP_CONFIGURE => {
            let mut b = [0u8; CONFIG_LEN];
            mm.read_bytes(arg, &mut b)?;
            let fd = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            let bsize = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
            if b[8 + INFO64_LEN..].iter().any(|&x| x != 0) {
                return error!(EINVAL);
            }
            if bsize != 0 && (!(512..=4096).contains(&bsize) || !bsize.is_power_of_two()) {
                return error!(EINVAL);
            }
            let info = Info64::decode(&b[8..8 + INFO64_LEN]);
            if info.flags & !CONFIGURE_SETTABLE != 0 {
                return error!(EINVAL);
            }
            let file = ctx.files().get(fd as i32)?;
            bind_file(disk, f, file, Some(&info), CONFIGURE_SETTABLE)?;
        }
        LOOP_CLR_FD => {
            // The old binding drops after the lock (see last_close).
            let _old = {
                let _g = config_lock();
                if !is_bound(disk) {
                    return error!(ENXIO);
                }
                // Linux: with other users, detach lazily (autoclear on
                // last close).
                if disk.users() > 1 {
                    let d = disk.bound()?;
                    match d.as_any().downcast_ref::<LoopBacking>() {
                        Some(l) => {
                            let flags = l.flags | LO_FLAGS_AUTOCLEAR;
                            let new = rebuild(l, flags, l.offset, l.sizelimit, None)?;
                            disk.bind(Some(Arc::new(new)))
                        }
                        None => None,
                    }
                } else {
                    disk.bind(None)
                }
            };
        }
        LOOP_SET_STATUS64 => {
            let mut b = [0u8; INFO64_LEN];
            mm.read_bytes(arg, &mut b)?;
            set_status(disk, &Info64::decode(&b))?;
        }
        LOOP_GET_STATUS64 => {
            let info = with_backing(disk, |l| Ok(l.info()))?;
            mm.write_bytes(arg, &info.encode())?;
        }
        LOOP_SET_CAPACITY => {
            let _g = config_lock();
            with_backing(disk, |l| {
                l.size.store(l.compute_size()?, Ordering::Relaxed);
                Ok(())
            })?;
        }
        LOOP_SET_DIRECT_IO => {
            with_backing(disk, |_| Ok(()))?;
            // Direct I/O on the backing file is a performance hint; the
            // loop device's semantics are the same either way.
        }
        LOOP_SET_BLOCK_SIZE => {
            with_backing(disk, |_| Ok(()))?;
            if !(512..=4096).contains(&arg) || !arg.is_power_of_two() {
                return error!(EINVAL);
            }
            // Logical block size is fixed at 512 here; larger ones are
            // refused rather than pretended.
            if arg != 512 {
                return error!(EINVAL);
            }
        }
        // The old 32-bit struct loop_info and LOOP_CHANGE_FD.
        LOOP_SET_STATUS | LOOP_GET_STATUS | LOOP_CHANGE_FD => return error!(ENOSYS),
        _ => return error!(ENOTTY),
    }
    Ok(0)
}

fn rebuild(
    l: &LoopBacking,
    flags: u32,
    offset: u64,
    sizelimit: u64,
    info: Option<&Info64>,
) -> KResult<LoopBacking> {
    let n = LoopBacking {
        file: l.file.clone(),
        offset,
        sizelimit,
        flags,
        number: l.number,
        file_name: info.map(|i| i.file_name).unwrap_or(l.file_name),
        crypt_name: info.map(|i| i.crypt_name).unwrap_or(l.crypt_name),
        path: l.path.clone(),
        size: Default::default(),
    };
    n.size.store(n.compute_size()?, Ordering::Relaxed);
    Ok(n)
}

fn set_status(disk: &Arc<Disk>, info: &Info64) -> KResult<()> {
    let _g = config_lock();
    let d = disk.bound()?;
    let Some(l) = d.as_any().downcast_ref::<LoopBacking>() else {
        return error!(ENXIO);
    };
    if info.encrypt_type != 0 {
        return error!(EINVAL);
    }
    if !info.offset.is_multiple_of(SECTOR) || info.offset > i64::MAX as u64 {
        return error!(EINVAL);
    }
    // Changing geometry under a user that is not us (a mount) is EBUSY.
    if (info.offset != l.offset || info.sizelimit != l.sizelimit) && disk.users() > 1 {
        return error!(EBUSY);
    }
    let mut flags = l.flags;
    flags &= !(SET_STATUS_CLEARABLE & !info.flags);
    flags |= info.flags & SET_STATUS_SETTABLE;
    let new = rebuild(l, flags, info.offset, info.sizelimit, Some(info))?;
    disk.bind(Some(Arc::new(new)));
    Ok(())
}

// ---------------------------------------------------------------------------
// /dev/loop-control

static NEXT_FREE_HINT: AtomicU32 = AtomicU32::new(0);

/// The /dev/loop-control node (character device 10:237).
pub struct LoopControlNode {
    pub meta: Meta,
}

impl Inode for LoopControlNode {
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.meta.stat(S_IFCHR | 0o660, 1, 0);
        st.rdev = (10, 237);
        st.gid = 6;
        Ok(st)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, _flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        Ok(Arc::new(LoopControl))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct LoopControl;

impl FileOps for LoopControl {
    fn seekable(&self) -> bool {
        false
    }
    fn ioctl(
        &self,
        _f: &OpenFile,
        cmd: u32,
        arg: u64,
        _ctx: &crate::syscalls::SyscallContext<'_>,
    ) -> KResult<u64> {
        match cmd {
            LOOP_CTL_GET_FREE => {
                let _g = config_lock();
                for d in block::all() {
                    if d.kind == Kind::Loop && d.device().is_none() && d.users() == 0 {
                        return Ok(d.rdev.1 as u64);
                    }
                }
                let start = NEXT_FREE_HINT.load(Ordering::Relaxed);
                for n in start..MAX_LOOP {
                    if add(n).is_ok() {
                        NEXT_FREE_HINT.store(n + 1, Ordering::Relaxed);
                        return Ok(n as u64);
                    }
                }
                error!(ENOSPC)
            }
            LOOP_CTL_ADD => {
                let n = if (arg as i64) < 0 {
                    (0..MAX_LOOP)
                        .find(|&n| block::lookup((MAJOR, n)).is_none())
                        .ok_or(crate::errno!(ENOSPC))?
                } else if arg >= MAX_LOOP as u64 {
                    return error!(EINVAL);
                } else {
                    arg as u32
                };
                add(n)?;
                Ok(n as u64)
            }
            LOOP_CTL_REMOVE => {
                if arg >= MAX_LOOP as u64 {
                    return error!(EINVAL);
                }
                let _g = config_lock();
                let disk = block::lookup((MAJOR, arg as u32)).ok_or(crate::errno!(ENODEV))?;
                if disk.device().is_some() || disk.users() > 0 {
                    return error!(EBUSY);
                }
                block::unregister(disk.rdev);
                Ok(0)
            }
            _ => error!(ENOTTY),
        }
    }
}
