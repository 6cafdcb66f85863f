//! ext2's VFS face: inodes, open files and directories, and mount.
//! An [`Ext2Inode`] is a (filesystem, inode number) handle made fresh by
//! each lookup; everything it reports is read from the image under the
//! filesystem's mutex (see the parent module).

use std::sync::Arc;

use super::*;
use crate::block::Disk;
use crate::fs::file::OpenFile;
use crate::fs::types::{encode_dev, DirSink, Stat, StatFs};
use crate::fs::vfs::{Caller, FileOps, Inode, InodeKey, SetAttr};

const EXT2_SUPER_MAGIC: i64 = 0xEF53;
const RENAME_NOREPLACE: u32 = 1;

/// Mounts the ext2/3/4 filesystem on `disk`; returns its root inode.
pub fn mount(disk: &Arc<Disk>, read_only: bool) -> KResult<Arc<dyn Inode>> {
    if !read_only && disk.read_only() {
        return error!(EACCES);
    }
    let held = crate::block::open_for_mount(disk)?;
    let fs = Ext2Fs::open(held, disk.rdev, !read_only)?;
    crate::log::info(&format!(
        "EXT2-fs ({}): mounted filesystem ({}, {} blocks of {} bytes)",
        disk.name,
        if read_only { "read-only" } else { "read-write" },
        fs.geo.blocks_count,
        fs.geo.bs
    ));
    Ok(Arc::new(Ext2Inode {
        fs,
        ino: ROOT_INO,
        ftype: FileType::Directory,
    }))
}

/// Mounts the root filesystem from `disk` (`root=/dev/ubda`): the type
/// is probed from the superblock's features. Returns (type, root inode).
pub fn mount_root(disk: &Arc<Disk>, read_only: bool) -> KResult<(&'static str, Arc<dyn Inode>)> {
    let root = mount(disk, read_only)?;
    let kind = root
        .as_any()
        .downcast_ref::<Ext2Inode>()
        .map(|i| i.fs.kind)
        .unwrap_or("ext2");
    Ok((kind, root))
}

/// An inode handle; see the module doc.
pub struct Ext2Inode {
    pub(super) fs: Arc<Ext2Fs>,
    pub(super) ino: u32,
    ftype: FileType,
}

fn check_name(name: &[u8]) -> KResult<()> {
    if name.len() > 255 {
        return error!(ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return error!(EINVAL);
    }
    Ok(())
}

impl Ext2Fs {
    fn handle(self: &Arc<Self>, ino: u32, ftype: FileType) -> Arc<Ext2Inode> {
        Arc::new(Ext2Inode {
            fs: self.clone(),
            ino,
            ftype,
        })
    }

    fn writable(&self) -> KResult<()> {
        if self.ro() {
            return error!(EROFS);
        }
        Ok(())
    }

    fn open_file(self: &Arc<Self>, ino: u32) -> Arc<Ext2File> {
        *self.lock().open.entry(ino).or_insert(0) += 1;
        Arc::new(Ext2File {
            fs: self.clone(),
            ino,
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn stat_of(&self, i: &DInode, ino: u32) -> Stat {
        Stat {
            dev: self.dev_no,
            ino: ino as u64,
            mode: i.mode() as u32,
            nlink: i.links() as u64,
            uid: i.uid(),
            gid: i.gid(),
            rdev: match i.ftype() {
                FileType::CharDevice | FileType::BlockDevice => i.rdev(),
                _ => (0, 0),
            },
            size: i.size(),
            blksize: self.geo.bs as u32,
            blocks: i.blocks512(&self.geo),
            atime: i.atime(),
            mtime: i.mtime(),
            ctime: i.ctime(),
            btime: i.crtime(),
            attributes: 0,
            attributes_mask: 0,
        }
    }

    /// Creates `name` in `dir` as a new inode of type `t`; `fill` sets
    /// up its contents (before it is linked). Returns the inode number.
    fn make(
        &self,
        dir: u32,
        name: &[u8],
        t: FileType,
        perm: u32,
        fill: impl FnOnce(&Ext2Fs, &mut State, u32, &mut DInode) -> KResult<()>,
    ) -> KResult<u32> {
        check_name(name)?;
        self.writable()?;
        let mut st = self.lock();
        let d = self.live_inode(&mut st, dir)?;
        if d.ftype() != FileType::Directory {
            return error!(ENOTDIR);
        }
        if self.dir_find(&mut st, &d, name)?.is_some() {
            return error!(EEXIST);
        }
        if t == FileType::Directory && d.links() >= LINK_MAX {
            return error!(EMLINK);
        }
        let (ino, mut i) = self.new_inode(&mut st, dir, t, perm)?;
        let made = fill(self, &mut st, ino, &mut i)
            .and_then(|_| self.write_inode(&mut st, ino, &i))
            .and_then(|_| self.dir_add(&mut st, dir, name, ino, t));
        if let Err(e) = made {
            // Undo: the inode was never linked.
            let _ = self.evict(&mut st, ino);
            return Err(e);
        }
        if t == FileType::Directory {
            self.adjust_links(&mut st, dir, 1)?;
        }
        Ok(ino)
    }
}

impl Inode for Ext2Inode {
    fn file_type(&self) -> FileType {
        self.ftype
    }
    fn key(&self) -> InodeKey {
        (
            encode_dev(self.fs.dev_no.0, self.fs.dev_no.1),
            self.ino as u64,
        )
    }
    fn stat(&self) -> KResult<Stat> {
        let mut st = self.fs.lock();
        let i = self.fs.live_inode(&mut st, self.ino)?;
        Ok(self.fs.stat_of(&i, self.ino))
    }
    fn statfs(&self) -> KResult<StatFs> {
        let st = self.fs.lock();
        let free = le32(&st.sb, 12) as u64;
        let reserved = le32(&st.sb, 8) as u64;
        Ok(StatFs {
            f_type: EXT2_SUPER_MAGIC,
            bsize: self.fs.geo.bs as i64,
            blocks: self.fs.geo.blocks_count,
            bfree: free,
            bavail: free.saturating_sub(reserved),
            files: self.fs.geo.inodes_count as u64,
            ffree: le32(&st.sb, 16) as u64,
            fsid: [
                le32(&st.sb, 104) as i32 ^ le32(&st.sb, 112) as i32,
                le32(&st.sb, 108) as i32 ^ le32(&st.sb, 116) as i32,
            ],
            namelen: 255,
            frsize: self.fs.geo.bs as i64,
            flags: crate::fs::types::ST_VALID
                | if self.fs.ro() {
                    crate::fs::types::ST_RDONLY
                } else {
                    0
                },
        })
    }
    fn lookup(&self, name: &[u8], _caller: &Caller<'_>) -> KResult<Arc<dyn Inode>> {
        if name.len() > 255 {
            return error!(ENAMETOOLONG);
        }
        let mut st = self.fs.lock();
        let d = self.fs.live_inode(&mut st, self.ino)?;
        if d.ftype() != FileType::Directory {
            return error!(ENOTDIR);
        }
        let Some((ino, _)) = self.fs.dir_find(&mut st, &d, name)? else {
            return error!(ENOENT);
        };
        let i = self.fs.read_inode(&mut st, ino)?;
        if i.mode() == 0 || i.links() == 0 {
            return Err(corrupt(&format!("directory entry for deleted inode {ino}")));
        }
        Ok(self.fs.handle(ino, i.ftype()))
    }
    fn readlink(&self, _caller: &Caller<'_>) -> KResult<Vec<u8>> {
        if self.ftype != FileType::Symlink {
            return error!(EINVAL);
        }
        let mut st = self.fs.lock();
        let i = self.fs.live_inode(&mut st, self.ino)?;
        let size = i.size();
        if size > self.fs.geo.bs || size > 4096 {
            return Err(corrupt("symlink too long"));
        }
        if i.is_fast_symlink(&self.fs.geo) {
            return Ok(i.iblock_bytes()[..size as usize].to_vec());
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.fs.read_file(&mut st, &i, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
    fn open(&self, flags: u32, caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        use crate::fs::types::oflags::O_TRUNC;
        match self.ftype {
            FileType::Regular => {
                if flags & O_TRUNC != 0 {
                    let mut st = self.fs.lock();
                    let mut i = self.fs.live_inode(&mut st, self.ino)?;
                    if i.size() != 0 {
                        self.fs.writable()?;
                        self.fs.set_len(&mut st, self.ino, &mut i, 0)?;
                        drop(st);
                        invalidate(self.key());
                    }
                }
                Ok(self.fs.open_file(self.ino))
            }
            FileType::Directory => Ok(Arc::new(Ext2Dir {
                fs: self.fs.clone(),
                ino: self.ino,
            })),
            FileType::Symlink => error!(ELOOP),
            FileType::Fifo => crate::fs::pipe::open_fifo(self.key(), flags, caller),
            FileType::BlockDevice => {
                let rdev = self.stat()?.rdev;
                crate::block::open_disk(rdev, flags)
            }
            FileType::CharDevice => {
                let rdev = self.stat()?.rdev;
                crate::fs::devfs::open_chrdev(rdev, flags, caller)
            }
            _ => error!(ENXIO),
        }
    }
    fn create(
        &self,
        name: &[u8],
        mode: u32,
        _flags: u32,
    ) -> KResult<(Arc<dyn Inode>, Arc<dyn FileOps>)> {
        let ino = self
            .fs
            .make(self.ino, name, FileType::Regular, mode, |_, _, _, _| Ok(()))?;
        let inode: Arc<dyn Inode> = self.fs.handle(ino, FileType::Regular);
        let ops: Arc<dyn FileOps> = self.fs.open_file(ino);
        Ok((inode, ops))
    }
    fn mkdir(&self, name: &[u8], mode: u32) -> KResult<()> {
        let parent = self.ino;
        self.fs
            .make(
                self.ino,
                name,
                FileType::Directory,
                mode,
                |fs, st, ino, i| {
                    let bs = fs.geo.bs as usize;
                    let (b, _) = fs.bmap_alloc(st, ino, i, 0)?;
                    let mut blk = vec![0u8; bs];
                    let ft = if fs.geo.filetype { 2 } else { 0 };
                    put32(&mut blk, 0, ino);
                    put16(&mut blk, 4, 12);
                    blk[6] = 1;
                    blk[7] = ft;
                    blk[8] = b'.';
                    put32(&mut blk, 12, parent);
                    put16(&mut blk, 16, (fs.dir_space() - 12) as u16);
                    blk[18] = 2;
                    blk[19] = ft;
                    blk[20..22].copy_from_slice(b"..");
                    fs.write_dir_block(st, ino, i.generation(), b, &mut blk)?;
                    i.set_size(bs as u64);
                    i.set_links(2);
                    Ok(())
                },
            )
            .map(|_| ())
    }
    fn unlink(&self, name: &[u8]) -> KResult<()> {
        check_name(name)?;
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let d = self.fs.live_inode(&mut st, self.ino)?;
        let Some((ino, _)) = self.fs.dir_find(&mut st, &d, name)? else {
            return error!(ENOENT);
        };
        if self.fs.read_inode(&mut st, ino)?.ftype() == FileType::Directory {
            return error!(EISDIR);
        }
        self.fs.dir_remove(&mut st, self.ino, name)?;
        let r = self.fs.drop_link(&mut st, ino, false);
        self.fs.unlock(st, r)
    }
    fn rmdir(&self, name: &[u8]) -> KResult<()> {
        check_name(name)?;
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let d = self.fs.live_inode(&mut st, self.ino)?;
        let Some((ino, _)) = self.fs.dir_find(&mut st, &d, name)? else {
            return error!(ENOENT);
        };
        let child = self.fs.read_inode(&mut st, ino)?;
        if child.ftype() != FileType::Directory {
            return error!(ENOTDIR);
        }
        if !self.fs.dir_is_empty(&mut st, &child)? {
            return error!(ENOTEMPTY);
        }
        self.fs.dir_remove(&mut st, self.ino, name)?;
        let r = self
            .fs
            .drop_link(&mut st, ino, true)
            .and_then(|_| self.fs.adjust_links(&mut st, self.ino, -1));
        self.fs.unlock(st, r)
    }
    fn symlink(&self, name: &[u8], target: &[u8]) -> KResult<()> {
        if target.is_empty() {
            return error!(ENOENT);
        }
        if target.len() >= self.fs.geo.bs as usize || target.len() >= 4096 {
            return error!(ENAMETOOLONG);
        }
        self.fs
            .make(
                self.ino,
                name,
                FileType::Symlink,
                0o777,
                |fs, st, ino, i| {
                    if target.len() < 60 {
                        i.raw[40..40 + target.len()].copy_from_slice(target);
                        i.set_size(target.len() as u64);
                        Ok(())
                    } else {
                        if fs.geo.extents {
                            extent::init_root(i);
                        }
                        fs.write_file(st, ino, i, 0, target).map(|_| ())
                    }
                },
            )
            .map(|_| ())
    }
    fn mknod(&self, name: &[u8], mode: u32, rdev: (u32, u32)) -> KResult<()> {
        let t = FileType::from_mode(mode);
        if matches!(t, FileType::Directory | FileType::Symlink) {
            return error!(EINVAL);
        }
        self.fs
            .make(self.ino, name, t, mode, |_, _, _, i| {
                if matches!(t, FileType::CharDevice | FileType::BlockDevice) {
                    i.set_rdev(rdev);
                }
                Ok(())
            })
            .map(|_| ())
    }
    fn link(&self, name: &[u8], target: &dyn Inode) -> KResult<()> {
        check_name(name)?;
        let Some(t) = target.as_any().downcast_ref::<Ext2Inode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return error!(EXDEV);
        }
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let d = self.fs.live_inode(&mut st, self.ino)?;
        let mut ti = self.fs.read_inode(&mut st, t.ino)?;
        if ti.ftype() == FileType::Directory {
            return error!(EPERM);
        }
        if ti.links() == 0 {
            return error!(ENOENT);
        }
        if ti.links() >= LINK_MAX {
            return error!(EMLINK);
        }
        if self.fs.dir_find(&mut st, &d, name)?.is_some() {
            return error!(EEXIST);
        }
        self.fs
            .dir_add(&mut st, self.ino, name, t.ino, ti.ftype())?;
        ti.set_links(ti.links() + 1);
        ti.set_ctime(now());
        self.fs.write_inode(&mut st, t.ino, &ti)
    }
    fn rename(&self, name: &[u8], new_dir: &dyn Inode, new_name: &[u8], flags: u32) -> KResult<()> {
        check_name(name)?;
        check_name(new_name)?;
        if flags & !RENAME_NOREPLACE != 0 {
            // RENAME_EXCHANGE and RENAME_WHITEOUT: ext2 has neither.
            return error!(EINVAL);
        }
        let Some(nd) = new_dir.as_any().downcast_ref::<Ext2Inode>() else {
            return error!(EXDEV);
        };
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return error!(EXDEV);
        }
        self.fs.writable()?;
        let fs = &self.fs;
        let mut st = fs.lock();
        let od = fs.live_inode(&mut st, self.ino)?;
        let ndi = fs.live_inode(&mut st, nd.ino)?;
        if ndi.ftype() != FileType::Directory {
            return error!(ENOTDIR);
        }
        let Some((src, _)) = fs.dir_find(&mut st, &od, name)? else {
            return error!(ENOENT);
        };
        let dst = fs.dir_find(&mut st, &ndi, new_name)?.map(|d| d.0);
        if dst.is_some() && flags & RENAME_NOREPLACE != 0 {
            return error!(EEXIST);
        }
        if dst == Some(src) {
            return Ok(());
        }
        let si = fs.read_inode(&mut st, src)?;
        let sdir = si.ftype() == FileType::Directory;
        if sdir && self.ino != nd.ino {
            // The new parent must not lie inside the directory moved.
            let mut cur = nd.ino;
            for _ in 0..MAX_DEPTH {
                if cur == src {
                    return error!(EINVAL);
                }
                if cur == ROOT_INO {
                    break;
                }
                cur = fs.parent_of(&mut st, cur)?;
            }
            if cur != ROOT_INO {
                return Err(corrupt("directory tree too deep or looping"));
            }
            if ndi.links() >= LINK_MAX {
                return error!(EMLINK);
            }
        }
        if let Some(d) = dst {
            let di = fs.read_inode(&mut st, d)?;
            let ddir = di.ftype() == FileType::Directory;
            match (sdir, ddir) {
                (true, false) => return error!(ENOTDIR),
                (false, true) => return error!(EISDIR),
                (true, true) if !fs.dir_is_empty(&mut st, &di)? => return error!(ENOTEMPTY),
                _ => {}
            }
            fs.dir_set(&mut st, nd.ino, new_name, src, si.ftype())?;
            let r = if ddir {
                fs.drop_link(&mut st, d, true)
                    .and_then(|_| fs.adjust_links(&mut st, nd.ino, -1))
            } else {
                fs.drop_link(&mut st, d, false)
            };
            if let Err(e) = r {
                return fs.unlock(st, Err(e));
            }
        } else {
            fs.dir_add(&mut st, nd.ino, new_name, src, si.ftype())?;
        }
        fs.dir_remove(&mut st, self.ino, name)?;
        if sdir && self.ino != nd.ino {
            fs.dir_set(&mut st, src, b"..", nd.ino, FileType::Directory)?;
            fs.adjust_links(&mut st, self.ino, -1)?;
            fs.adjust_links(&mut st, nd.ino, 1)?;
        }
        let r = fs.read_inode(&mut st, src).and_then(|mut si| {
            si.set_ctime(now());
            fs.write_inode(&mut st, src, &si)
        });
        fs.unlock(st, r)
    }
    fn setattr(&self, a: &SetAttr) -> KResult<()> {
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let mut i = self.fs.live_inode(&mut st, self.ino)?;
        let t = now();
        let mut truncated = false;
        if let Some(len) = a.size {
            match self.ftype {
                FileType::Regular => {}
                FileType::Directory => return error!(EISDIR),
                _ => return error!(EINVAL),
            }
            if len != i.size() {
                self.fs.set_len(&mut st, self.ino, &mut i, len)?;
                truncated = true;
            } else {
                i.set_mtime(t);
            }
        }
        let mut mode = i.mode() as u32;
        if let Some(m) = a.mode {
            mode = (mode & crate::fs::types::S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = a.uid {
            i.set_uid(u);
        }
        if let Some(g) = a.gid {
            i.set_gid(g);
        }
        if a.kill_suid && self.ftype != FileType::Directory {
            mode &= !0o4000;
            if mode & 0o010 != 0 {
                mode &= !0o2000;
            }
        }
        i.set_mode(mode as u16);
        if let Some(at) = a.atime {
            i.set_atime(at.resolve(t));
        }
        if let Some(mt) = a.mtime {
            i.set_mtime(mt.resolve(t));
        }
        i.set_ctime(t);
        self.fs.write_inode(&mut st, self.ino, &i)?;
        drop(st);
        if truncated {
            invalidate(self.key());
        }
        Ok(())
    }
    fn getxattr(&self, name: &[u8]) -> KResult<Vec<u8>> {
        self.fs.xattr_get(self.ino, name)
    }

    fn setxattr(&self, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        self.fs.writable()?;
        self.fs.xattr_set(self.ino, name, value, flags)
    }

    fn listxattr(&self) -> KResult<Vec<Vec<u8>>> {
        self.fs.xattr_list(self.ino)
    }

    // File handles as Linux's ext4: FILEID_INO32_GEN, (inode, generation).
    fn encode_fh(&self) -> KResult<(i32, Vec<u8>)> {
        let mut st = self.fs.lock();
        let i = self.fs.live_inode(&mut st, self.ino)?;
        let mut fh = self.ino.to_le_bytes().to_vec();
        fh.extend_from_slice(&i.generation().to_le_bytes());
        Ok((1, fh))
    }

    fn decode_fh(&self, ty: i32, fh: &[u8]) -> KResult<Arc<dyn Inode>> {
        if ty != 1 || fh.len() < 8 {
            return error!(ESTALE);
        }
        let ino = le32(fh, 0);
        let gen = le32(fh, 4);
        // Reserved inodes (the journal, ...) are never handed out.
        if (ino != ROOT_INO && ino < self.fs.geo.first_ino) || ino > self.fs.geo.inodes_count {
            return error!(ESTALE);
        }
        let mut st = self.fs.lock();
        let i = match self.fs.live_inode(&mut st, ino) {
            Ok(i) => i,
            Err(e) if e == crate::errno!(ENOENT) => return error!(ESTALE),
            Err(e) => return Err(e),
        };
        if i.generation() != gen || i.links() == 0 {
            return error!(ESTALE);
        }
        let ft = i.ftype();
        drop(st);
        Ok(self.fs.handle(ino, ft))
    }

    fn remount(&self, read_only: bool) -> KResult<()> {
        self.fs.remount(read_only)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Drops the page cache's pages of a file whose size changed.
fn invalidate(key: InodeKey) {
    if crate::kernel_booted() {
        crate::kernel().page_cache.invalidate(key);
    }
}

/// An open regular file. Holds an open count on its inode (an unlinked
/// file lives until the last one is dropped).
pub struct Ext2File {
    fs: Arc<Ext2Fs>,
    ino: u32,
    /// Where the last read ended: a read from there (or from 0) is
    /// sequential and reads ahead.
    next: std::sync::atomic::AtomicU64,
}

impl Drop for Ext2File {
    fn drop(&mut self) {
        let mut st = self.fs.lock();
        let left = match st.open.get_mut(&self.ino) {
            Some(n) => {
                *n -= 1;
                *n
            }
            None => 0,
        };
        if left == 0 {
            st.open.remove(&self.ino);
            if st.orphans.contains(&self.ino) && !self.fs.ro() {
                if let Err(e) = self.fs.evict(&mut st, self.ino) {
                    crate::log::warn(&format!("EXT2-fs: freeing inode {}: {e:?}", self.ino));
                }
            }
        }
        let _ = self.fs.unlock(st, Ok(()));
    }
}

impl FileOps for Ext2File {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let ahead = if off == 0 || off == self.next.load(Relaxed) {
            super::datacache::READ_AHEAD
        } else {
            0
        };
        let mut st = self.fs.lock();
        let i = self.fs.read_inode(&mut st, self.ino)?;
        let n = self.fs.read_file_ahead(&mut st, &i, off, buf, ahead)?;
        self.next.store(off + n as u64, Relaxed);
        Ok(n)
    }
    /// read(2) and pread(2) copy from the data cache straight into the
    /// guest's frames (no kernel buffer); writes go through
    /// [`FileOps::write`].
    fn direct_io(&self) -> bool {
        true
    }
    fn read_frames(
        &self,
        _f: &OpenFile,
        off: u64,
        dst: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let ahead = if off == 0 || off == self.next.load(Relaxed) {
            super::datacache::READ_AHEAD
        } else {
            0
        };
        let mut st = self.fs.lock();
        let i = self.fs.read_inode(&mut st, self.ino)?;
        let n = self.fs.read_file_into(
            &mut st,
            &i,
            off,
            &mut super::datacache::Sink::Frames(dst),
            ahead,
        )?;
        self.next.store(off + n as u64, Relaxed);
        Ok(n)
    }
    fn write_frames(
        &self,
        f: &OpenFile,
        off: u64,
        src: &crate::mm::userframes::UserFrames,
    ) -> KResult<usize> {
        let mut buf = vec![0u8; src.len()];
        src.copy_out(&mut buf);
        self.write(f, off, &buf)
    }
    fn write(&self, _f: &OpenFile, off: u64, buf: &[u8]) -> KResult<usize> {
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let mut i = self.fs.read_inode(&mut st, self.ino)?;
        let n = self.fs.write_file(&mut st, self.ino, &mut i, off, buf)?;
        if _f.flags() & crate::fs::types::oflags::O_DSYNC != 0 {
            self.fs.dev().flush()?;
        }
        Ok(n)
    }
    fn size(&self) -> KResult<u64> {
        let mut st = self.fs.lock();
        Ok(self.fs.read_inode(&mut st, self.ino)?.size())
    }
    fn stat(&self) -> Option<KResult<Stat>> {
        let mut st = self.fs.lock();
        Some(
            self.fs
                .read_inode(&mut st, self.ino)
                .map(|i| self.fs.stat_of(&i, self.ino)),
        )
    }
    fn truncate(&self, len: u64) -> KResult<()> {
        self.fs.writable()?;
        let mut st = self.fs.lock();
        let mut i = self.fs.read_inode(&mut st, self.ino)?;
        self.fs.set_len(&mut st, self.ino, &mut i, len)?;
        drop(st);
        invalidate((
            encode_dev(self.fs.dev_no.0, self.fs.dev_no.1),
            self.ino as u64,
        ));
        Ok(())
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        self.fs.sync_fs()
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        self.fs.lock().mapped.insert(self.ino);
        Ok((
            encode_dev(self.fs.dev_no.0, self.fs.dev_no.1),
            self.ino as u64,
        ))
    }
}

/// An open directory: positions are byte offsets of records.
pub struct Ext2Dir {
    fs: Arc<Ext2Fs>,
    ino: u32,
}

fn dt_from_ext2(ft: u8) -> u8 {
    match ft {
        1 => 8,
        2 => 4,
        3 => 2,
        4 => 6,
        5 => 1,
        6 => 12,
        7 => 10,
        _ => 0,
    }
}

impl FileOps for Ext2Dir {
    fn read(&self, _f: &OpenFile, _off: u64, _buf: &mut [u8]) -> KResult<usize> {
        error!(EISDIR)
    }
    fn getdents(&self, _f: &OpenFile, pos: &mut u64, sink: &mut DirSink) -> KResult<()> {
        let mut st = self.fs.lock();
        let d = self.fs.live_inode(&mut st, self.ino)?;
        loop {
            let batch = self.fs.dir_list(&mut st, &d, *pos, 256)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (next, ino, name, ft) in batch {
                let dt = if self.fs.geo.filetype {
                    dt_from_ext2(ft)
                } else {
                    self.fs
                        .read_inode(&mut st, ino)
                        .map(|i| i.ftype().dirent_type())
                        .unwrap_or(0)
                };
                if !sink.push(ino as u64, next as i64, dt, &name) {
                    if sink.is_empty() {
                        return error!(EINVAL);
                    }
                    return Ok(());
                }
                *pos = next;
            }
        }
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        self.fs.sync_fs()
    }
}
