//! Open file descriptions.
//!
//! An [`OpenFile`] is what open(2) creates and dup/fork share: the path it
//! was opened at, its operations, its status flags and its position.
//! Locking: `flags` is atomic (F_SETFL); `pos` is a Mutex held across one
//! read/write/getdents of a seekable file, so concurrent users of a shared
//! description each see a consistent position. Streams never take it.
//! An OpenFile lives as long as any descriptor (or mapping, or exec in
//! progress) holds its `Arc`; dropping the last reference releases the
//! underlying object (a host descriptor, a pipe end).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::KResult;
use crate::error;
use crate::fs::types::{oflags::*, DirSink, FileType, Stat};
use crate::fs::vfs::{FileOps, Path};
use crate::task::Task;

/// An open file description; see the module doc.
pub struct OpenFile {
    pub path: Path,
    ops: Option<Arc<dyn FileOps>>,
    flags: AtomicU32,
    pos: Mutex<u64>,
}

/// What descriptors hold.
pub type FileRef = Arc<OpenFile>;

/// The largest count one read or write transfers (Linux's MAX_RW_COUNT).
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

impl Drop for OpenFile {
    /// The last reference (descriptor, dup, fork's copy, mapping) is
    /// gone, Linux's __fput: IN_CLOSE_WRITE or IN_CLOSE_NOWRITE (not for
    /// descriptors fanotify opened for its reader), then IN_DELETE_SELF
    /// if the file has no link left.
    fn drop(&mut self) {
        if self.path.mnt.internal {
            return;
        }
        if self.flags() & crate::fs::fanotify::FMODE_NONOTIFY == 0 {
            let ev = if self.can_write() {
                crate::fs::inotify::IN_CLOSE_WRITE
            } else {
                crate::fs::inotify::IN_CLOSE_NOWRITE
            };
            crate::fs::inotify::notify(&self.path, ev);
        }
        crate::fs::inotify::file_released(self.path.inode().key());
    }
}

impl OpenFile {
    /// A file opened with `flags` (open(2) flags; open-only ones dropped).
    /// `ops` is None for O_PATH descriptors.
    pub fn new(path: Path, ops: Option<Arc<dyn FileOps>>, flags: u32) -> FileRef {
        let kept = (flags & !OPEN_ONLY) | O_LARGEFILE;
        if !path.mnt.internal {
            crate::fs::inotify::file_opened(path.inode().key());
        }
        Arc::new(OpenFile {
            path,
            ops,
            flags: AtomicU32::new(kept),
            pos: Mutex::new(0),
        })
    }

    /// [`OpenFile::new`] for a file Linux makes without open(2) (pipes,
    /// sockets, anonymous-inode files): no O_LARGEFILE in its flags, as
    /// F_GETFL and /proc/PID/fdinfo show them there.
    pub fn new_pseudo(path: Path, ops: Option<Arc<dyn FileOps>>, flags: u32) -> FileRef {
        let f = OpenFile::new(path, ops, flags & !O_LARGEFILE);
        f.flags.fetch_and(!O_LARGEFILE, Ordering::Relaxed);
        f
    }

    /// Status flags and access mode, as F_GETFL reports them.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Keeps status bits `new` would drop as open-only (a thread pidfd's
    /// O_EXCL, which F_GETFL shows as Linux does).
    pub fn keep_flags(&self, bits: u32) {
        self.flags.fetch_or(bits, Ordering::Relaxed);
    }

    /// F_SETFL: changes only the flags Linux lets it change.
    pub fn set_status_flags(&self, new: u32) {
        let _ = self
            .flags
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((old & !SETFL_MASK) | (new & SETFL_MASK))
            });
    }

    /// FIONBIO.
    pub fn set_nonblocking(&self, on: bool) {
        if on {
            self.flags.fetch_or(O_NONBLOCK, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!O_NONBLOCK, Ordering::Relaxed);
        }
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }

    /// An O_PATH descriptor: no I/O at all.
    pub fn is_path_only(&self) -> bool {
        self.ops.is_none()
    }

    /// Opened for reading.
    pub fn can_read(&self) -> bool {
        self.ops.is_some() && matches!(self.flags() & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    /// Opened for writing.
    pub fn can_write(&self) -> bool {
        self.ops.is_some() && matches!(self.flags() & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    pub fn file_type(&self) -> FileType {
        self.path.inode().file_type()
    }

    /// The operations; EBADF for O_PATH descriptors.
    pub fn ops(&self) -> KResult<&Arc<dyn FileOps>> {
        self.ops.as_ref().ok_or(crate::errno!(EBADF))
    }

    fn lock_pos(&self) -> std::sync::MutexGuard<'_, u64> {
        self.pos.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current position.
    pub fn pos(&self) -> u64 {
        *self.lock_pos()
    }

    /// read(2) by the kernel itself; see [`OpenFile::read_as`].
    pub fn read(&self, buf: &mut [u8]) -> KResult<usize> {
        self.read_as(buf, None)
    }

    /// read(2) by `task`: at the file position (advancing it) for
    /// seekable files; streams block as the task (interruptibly).
    pub fn read_as(&self, buf: &mut [u8], task: Option<&Arc<Task>>) -> KResult<usize> {
        if !self.can_read() {
            return error!(EBADF);
        }
        if self.file_type() == FileType::Directory {
            return error!(EISDIR);
        }
        let ops = self.ops()?;
        if !ops.seekable() {
            return ops.read_as(self, 0, buf, task);
        }
        let mut pos = self.lock_pos();
        let n = ops.read_as(self, *pos, buf, task)?;
        self.overlay_cached(ops.as_ref(), *pos, &mut buf[..n]);
        *pos += n as u64;
        Ok(n)
    }

    /// The page-cache key of a host file (regular, not memory-backed)
    /// that has pages in the page cache.
    fn cached_key(&self, ops: &dyn FileOps) -> Option<(u64, u64)> {
        if self.file_type() != FileType::Regular
            || crate::fs::vfs::memory_backed(ops)
            || !crate::kernel_booted()
        {
            return None;
        }
        let key = self.path.inode().key();
        crate::kernel().page_cache.has_file(key).then_some(key)
    }

    /// Reads of a host file see its cached pages (which hold what shared
    /// mappings wrote and have not written back yet).
    fn overlay_cached(&self, ops: &dyn FileOps, off: u64, buf: &mut [u8]) {
        if let Some(key) = self.cached_key(ops) {
            crate::kernel().page_cache.read_over(key, off, buf);
        }
    }

    /// The file's own bytes at `off`, past the page cache (the page cache
    /// fills itself with this).
    pub fn read_at_uncached(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        if self.file_type() == FileType::Directory {
            return error!(EISDIR);
        }
        let ops = self.ops()?;
        if !ops.seekable() {
            return error!(ESPIPE);
        }
        if off > i64::MAX as u64 {
            return error!(EINVAL);
        }
        ops.read(self, off, buf)
    }

    /// pread semantics: at `off`, position untouched (exec and mmap use it
    /// too, so it does not require read access mode beyond a real file).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        if self.file_type() == FileType::Directory {
            return error!(EISDIR);
        }
        let ops = self.ops()?;
        if !ops.seekable() {
            return error!(ESPIPE);
        }
        if off > i64::MAX as u64 {
            return error!(EINVAL);
        }
        let n = ops.read(self, off, buf)?;
        self.overlay_cached(ops.as_ref(), off, &mut buf[..n]);
        Ok(n)
    }

    /// write(2) by the kernel itself; see [`OpenFile::write_as`].
    pub fn write(&self, buf: &[u8]) -> KResult<usize> {
        self.write_as(buf, None)
    }

    /// write(2) by `task`: at the position (or the end, with O_APPEND).
    pub fn write_as(&self, buf: &[u8], task: Option<&Arc<Task>>) -> KResult<usize> {
        if !self.can_write() {
            return error!(EBADF);
        }
        let ops = self.ops()?;
        if !ops.seekable() {
            return ops.write_as(self, 0, buf, task);
        }
        let mut pos = self.lock_pos();
        if self.flags() & O_APPEND != 0 {
            *pos = ops.size()?;
        }
        crate::fs::memfd::check_write(self, Some(*pos + buf.len() as u64))?;
        let end = *pos + buf.len() as u64;
        if end > ops.size().unwrap_or(0) {
            crate::fs::memfd::check_resize(self, end)?;
        }
        let n = ops.write_as(self, *pos, buf, task)?;
        self.after_write(ops.as_ref(), *pos, &buf[..n]);
        *pos += n as u64;
        Ok(n)
    }

    /// A write to a host file whose pages the page cache holds: the cached
    /// pages (maybe mapped shared) get the same bytes, so mappings and
    /// later reads agree with the file.
    fn after_write(&self, ops: &dyn FileOps, off: u64, data: &[u8]) {
        if let Some(key) = self.cached_key(ops) {
            crate::kernel().page_cache.write_through(key, off, data);
        }
    }

    /// pwrite(2). (Linux quirk kept: with O_APPEND, pwrite appends.)
    pub fn write_at(&self, off: u64, buf: &[u8]) -> KResult<usize> {
        if !self.can_write() {
            return error!(EBADF);
        }
        let ops = self.ops()?;
        if !ops.seekable() {
            return error!(ESPIPE);
        }
        if off > i64::MAX as u64 {
            return error!(EINVAL);
        }
        let off = if self.flags() & O_APPEND != 0 {
            ops.size()?
        } else {
            off
        };
        crate::fs::memfd::check_write(self, Some(off + buf.len() as u64))?;
        if off + buf.len() as u64 > ops.size().unwrap_or(0) {
            crate::fs::memfd::check_resize(self, off + buf.len() as u64)?;
        }
        let n = ops.write(self, off, buf)?;
        self.after_write(ops.as_ref(), off, &buf[..n]);
        Ok(n)
    }

    /// read(2) (`off` None: at and advancing the position) or pread(2)
    /// straight into guest frames, for files whose
    /// [`FileOps::direct_io`] says so. The caller checked the access mode
    /// and the file type, as for [`OpenFile::read_as`].
    pub fn read_frames(
        &self,
        dst: &crate::mm::userframes::UserFrames,
        off: Option<u64>,
    ) -> KResult<usize> {
        let ops = self.ops()?;
        // A host file with pages in the page cache (shared mappings):
        // reads must see those, so through a buffer.
        let read = |at: u64| -> KResult<usize> {
            if self.cached_key(ops.as_ref()).is_none() {
                return ops.read_frames(self, at, dst);
            }
            let mut buf = vec![0u8; dst.len()];
            let n = ops.read(self, at, &mut buf)?;
            self.overlay_cached(ops.as_ref(), at, &mut buf[..n]);
            dst.copy_in(&buf[..n]);
            Ok(n)
        };
        match off {
            Some(o) if o > i64::MAX as u64 => error!(EINVAL),
            Some(o) => read(o),
            None => {
                let mut pos = self.lock_pos();
                let n = read(*pos)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }

    /// write(2) or pwrite(2) straight from guest frames; see
    /// [`OpenFile::read_frames`], [`OpenFile::write_as`] and
    /// [`OpenFile::write_at`] (O_APPEND and memfd seals apply alike).
    pub fn write_frames(
        &self,
        src: &crate::mm::userframes::UserFrames,
        off: Option<u64>,
    ) -> KResult<usize> {
        let ops = self.ops()?;
        let len = src.len() as u64;
        let append = self.flags() & O_APPEND != 0;
        let mut pos = match off {
            Some(o) if o > i64::MAX as u64 => return error!(EINVAL),
            Some(_) => None,
            None => Some(self.lock_pos()),
        };
        let at = match (&mut pos, off) {
            (_, Some(_)) if append => ops.size()?,
            (_, Some(o)) => o,
            (Some(p), None) => {
                if append {
                    **p = ops.size()?;
                }
                **p
            }
            (None, None) => return error!(EINVAL),
        };
        crate::fs::memfd::check_write(self, Some(at + len))?;
        if at + len > ops.size().unwrap_or(0) {
            crate::fs::memfd::check_resize(self, at + len)?;
        }
        let n = if self.cached_key(ops.as_ref()).is_none() {
            ops.write_frames(self, at, src)?
        } else {
            // The page cache's copies of the file take the same bytes.
            let mut buf = vec![0u8; src.len()];
            src.copy_out(&mut buf);
            let n = ops.write(self, at, &buf)?;
            self.after_write(ops.as_ref(), at, &buf[..n]);
            n
        };
        if let Some(p) = &mut pos {
            **p += n as u64;
        }
        Ok(n)
    }

    /// lseek(2).
    pub fn seek(&self, off: i64, whence: u32) -> KResult<u64> {
        let ops = self.ops()?;
        if !ops.seekable() {
            return error!(ESPIPE);
        }
        if whence > 4 {
            return error!(EINVAL);
        }
        let mut pos = self.lock_pos();
        if let Some(r) = ops.llseek(*pos, off, whence) {
            let new = r?;
            *pos = new;
            return Ok(new);
        }
        let size = || -> KResult<i64> { Ok(ops.size()?.min(i64::MAX as u64) as i64) };
        let new: i64 = match whence {
            0 => off,
            1 => (*pos as i64)
                .checked_add(off)
                .ok_or(crate::errno!(EOVERFLOW))?,
            2 => size()?.checked_add(off).ok_or(crate::errno!(EOVERFLOW))?,
            3 => {
                // SEEK_DATA: everything is data.
                let s = size()?;
                if off < 0 || off >= s {
                    return error!(ENXIO);
                }
                off
            }
            _ => {
                // SEEK_HOLE: the only hole is at the end.
                let s = size()?;
                if off < 0 || off >= s {
                    return error!(ENXIO);
                }
                s
            }
        };
        if new < 0 {
            return error!(EINVAL);
        }
        *pos = new as u64;
        Ok(new as u64)
    }

    /// getdents64 / getdents: entries from the position on.
    pub fn getdents(&self, sink: &mut DirSink) -> KResult<()> {
        let ops = self.ops()?;
        if self.file_type() != FileType::Directory {
            return error!(ENOTDIR);
        }
        let mut pos = self.lock_pos();
        let mut p = *pos;
        let r = ops.getdents(self, &mut p, sink);
        *pos = p;
        r
    }

    /// fstat: the open file's attributes.
    pub fn stat(&self) -> KResult<Stat> {
        if let Some(ops) = &self.ops {
            if let Some(st) = ops.stat() {
                return st;
            }
        }
        self.path.inode().stat()
    }

    /// The file's size (exec, mmap).
    pub fn size(&self) -> KResult<u64> {
        match &self.ops {
            Some(ops) if self.file_type() == FileType::Regular => ops.size(),
            _ => Ok(self.stat()?.size),
        }
    }

    /// Whether this is /dev/zero, whose mappings are anonymous memory
    /// (mmap_key gives ENODEV for it).
    pub fn is_dev_zero(&self) -> bool {
        self.file_type() == FileType::CharDevice
            && self.path.inode().stat().is_ok_and(|s| s.rdev == (1, 5))
    }

    /// (dev, ino) identity for the page cache; ENODEV if not mmappable.
    pub fn mmap_key(&self) -> KResult<(u64, u64)> {
        self.ops()?.mmap_key()
    }

    /// The file's own check of an mmap's offset and length
    /// ([`FileOps::mmap_check`]).
    pub fn mmap_check(&self, off: u64, len: u64) -> KResult<()> {
        self.ops()?.mmap_check(off, len)
    }
}
