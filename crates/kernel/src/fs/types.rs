//! File types, open flags, and the ABI structs of the file system calls
//! (`struct stat`, `statx`, `statfs`, `linux_dirent64`, `iovec`) for x86_64.

use crate::abi_struct;

/// The type of an inode (S_IFMT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

impl FileType {
    /// The type in a mode word; unknown types read as regular files.
    pub fn from_mode(mode: u32) -> FileType {
        match mode & S_IFMT {
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => FileType::Regular,
        }
    }
    /// The S_IFMT bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }
    /// The `d_type` of a directory entry (DT_*).
    pub fn dirent_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// open(2) flags, x86_64 values.
pub mod oflags {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_RDONLY: u32 = 0;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const O_ASYNC: u32 = 0o20000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_SYNC: u32 = 0o4010000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE: u32 = 0o20200000;
    /// Flags that only matter at open time and are not kept in f_flags.
    pub const OPEN_ONLY: u32 = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC;
    /// Flags F_SETFL may change.
    pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
}

/// `*at` flags.
pub mod atflags {
    pub const AT_FDCWD: i32 = -100;
    pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    pub const AT_EACCESS: u32 = 0x200;
    pub const AT_REMOVEDIR: u32 = 0x200;
    pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
    pub const AT_NO_AUTOMOUNT: u32 = 0x800;
    pub const AT_EMPTY_PATH: u32 = 0x1000;
    pub const AT_STATX_SYNC_TYPE: u32 = 0x6000;
}

/// An inode's attributes, filesystem-independent. Devices are kept as
/// (major, minor) and encoded per ABI when copied out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: (u32, u32),
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: (u32, u32),
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub btime: Option<(i64, u32)>,
    pub attributes: u64,
    pub attributes_mask: u64,
}

impl Stat {
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

/// Linux's `new_encode_dev` / glibc's `makedev` for the 64-bit st_dev.
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

abi_struct! {
    /// x86_64 `struct stat` (144 bytes).
    pub struct StatAbi {
        pub st_dev: u64,
        pub st_ino: u64,
        pub st_nlink: u64,
        pub st_mode: u32,
        pub st_uid: u32,
        pub st_gid: u32,
        pub pad0: u32,
        pub st_rdev: u64,
        pub st_size: i64,
        pub st_blksize: i64,
        pub st_blocks: i64,
        pub st_atime: i64,
        pub st_atime_nsec: i64,
        pub st_mtime: i64,
        pub st_mtime_nsec: i64,
        pub st_ctime: i64,
        pub st_ctime_nsec: i64,
        pub unused: [i64; 3],
    }
}

impl StatAbi {
    pub fn from_stat(s: &Stat) -> StatAbi {
        StatAbi {
            st_dev: encode_dev(s.dev.0, s.dev.1),
            st_ino: s.ino,
            st_nlink: s.nlink,
            st_mode: s.mode,
            st_uid: s.uid,
            st_gid: s.gid,
            pad0: 0,
            st_rdev: encode_dev(s.rdev.0, s.rdev.1),
            st_size: s.size as i64,
            st_blksize: s.blksize as i64,
            st_blocks: s.blocks as i64,
            st_atime: s.atime.0,
            st_atime_nsec: s.atime.1 as i64,
            st_mtime: s.mtime.0,
            st_mtime_nsec: s.mtime.1 as i64,
            st_ctime: s.ctime.0,
            st_ctime_nsec: s.ctime.1 as i64,
            unused: [0; 3],
        }
    }
}

abi_struct! {
    /// `struct statx_timestamp`.
    pub struct StatxTimestamp {
        pub tv_sec: i64,
        pub tv_nsec: u32,
        pub reserved: i32,
    }
}

abi_struct! {
    /// `struct statx` (256 bytes).
    pub struct StatxAbi {
        pub stx_mask: u32,
        pub stx_blksize: u32,
        pub stx_attributes: u64,
        pub stx_nlink: u32,
        pub stx_uid: u32,
        pub stx_gid: u32,
        pub stx_mode: u16,
        pub spare0: u16,
        pub stx_ino: u64,
        pub stx_size: u64,
        pub stx_blocks: u64,
        pub stx_attributes_mask: u64,
        pub stx_atime: StatxTimestamp,
        pub stx_btime: StatxTimestamp,
        pub stx_ctime: StatxTimestamp,
        pub stx_mtime: StatxTimestamp,
        pub stx_rdev_major: u32,
        pub stx_rdev_minor: u32,
        pub stx_dev_major: u32,
        pub stx_dev_minor: u32,
        pub stx_mnt_id: u64,
        pub spare: [u64; 14],
    }
}

pub const STATX_TYPE: u32 = 0x1;
pub const STATX_MODE: u32 = 0x2;
pub const STATX_NLINK: u32 = 0x4;
pub const STATX_UID: u32 = 0x8;
pub const STATX_GID: u32 = 0x10;
pub const STATX_ATIME: u32 = 0x20;
pub const STATX_MTIME: u32 = 0x40;
pub const STATX_CTIME: u32 = 0x80;
pub const STATX_INO: u32 = 0x100;
pub const STATX_SIZE: u32 = 0x200;
pub const STATX_BLOCKS: u32 = 0x400;
pub const STATX_BASIC_STATS: u32 = 0x7ff;
pub const STATX_BTIME: u32 = 0x800;
pub const STATX_MNT_ID: u32 = 0x1000;
/// Bits of the request mask Linux rejects (STATX__RESERVED).
pub const STATX_RESERVED: u32 = 0x8000_0000;

impl StatxAbi {
    pub fn from_stat(s: &Stat, mnt_id: u64) -> StatxAbi {
        let ts = |t: (i64, u32)| StatxTimestamp {
            tv_sec: t.0,
            tv_nsec: t.1,
            reserved: 0,
        };
        let mut mask = STATX_BASIC_STATS | STATX_MNT_ID;
        if s.btime.is_some() {
            mask |= STATX_BTIME;
        }
        StatxAbi {
            stx_mask: mask,
            stx_blksize: s.blksize,
            stx_attributes: s.attributes,
            stx_nlink: s.nlink.min(u32::MAX as u64) as u32,
            stx_uid: s.uid,
            stx_gid: s.gid,
            stx_mode: s.mode as u16,
            spare0: 0,
            stx_ino: s.ino,
            stx_size: s.size,
            stx_blocks: s.blocks,
            stx_attributes_mask: s.attributes_mask,
            stx_atime: ts(s.atime),
            stx_btime: s.btime.map(ts).unwrap_or_default(),
            stx_ctime: ts(s.ctime),
            stx_mtime: ts(s.mtime),
            stx_rdev_major: s.rdev.0,
            stx_rdev_minor: s.rdev.1,
            stx_dev_major: s.dev.0,
            stx_dev_minor: s.dev.1,
            stx_mnt_id: mnt_id,
            spare: [0; 14],
        }
    }
}

/// A filesystem's statfs, filesystem-independent.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatFs {
    pub f_type: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: [i32; 2],
    pub namelen: i64,
    pub frsize: i64,
    pub flags: i64,
}

/// ST_* mount flags in statfs.f_flags.
pub const ST_RDONLY: i64 = 1;
pub const ST_NOSUID: i64 = 2;
pub const ST_NODEV: i64 = 4;
pub const ST_NOEXEC: i64 = 8;
pub const ST_VALID: i64 = 0x20;

impl StatFs {
    /// A statfs for a memory filesystem with magic `f_type`.
    pub fn pseudo(f_type: i64) -> StatFs {
        StatFs {
            f_type,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            flags: ST_VALID,
            ..Default::default()
        }
    }
}

abi_struct! {
    /// x86_64 `struct statfs` (120 bytes).
    pub struct StatFsAbi {
        pub f_type: i64,
        pub f_bsize: i64,
        pub f_blocks: u64,
        pub f_bfree: u64,
        pub f_bavail: u64,
        pub f_files: u64,
        pub f_ffree: u64,
        pub f_fsid: [i32; 2],
        pub f_namelen: i64,
        pub f_frsize: i64,
        pub f_flags: i64,
        pub f_spare: [i64; 4],
    }
}

impl StatFsAbi {
    pub fn from_statfs(s: &StatFs) -> StatFsAbi {
        StatFsAbi {
            f_type: s.f_type,
            f_bsize: s.bsize,
            f_blocks: s.blocks,
            f_bfree: s.bfree,
            f_bavail: s.bavail,
            f_files: s.files,
            f_ffree: s.ffree,
            f_fsid: s.fsid,
            f_namelen: s.namelen,
            f_frsize: s.frsize,
            f_flags: s.flags,
            f_spare: [0; 4],
        }
    }
}

abi_struct! {
    /// `struct iovec`.
    pub struct IoVec {
        pub base: u64,
        pub len: u64,
    }
}

abi_struct! {
    /// `struct linux_dirent64` without its name.
    pub struct Dirent64Header {
        pub d_ino: u64,
        pub d_off: i64,
        pub d_reclen: u16,
        pub d_type: u8,
    }
}

/// Collects directory entries into a getdents64 (or old getdents) buffer.
/// Both record formats have the same length for the same name
/// (`(19 + namelen + 1)` rounded up to 8), so a host getdents64 buffer of
/// the guest's size always fits.
pub struct DirSink {
    pub buf: Vec<u8>,
    cap: usize,
    old: bool,
}

impl DirSink {
    /// A sink for up to `cap` bytes; `old` = the legacy `linux_dirent`.
    pub fn new(cap: usize, old: bool) -> DirSink {
        DirSink {
            buf: Vec::new(),
            cap,
            old,
        }
    }

    /// The record length for a name.
    pub fn reclen(name_len: usize) -> usize {
        (19 + name_len + 1).div_ceil(8) * 8
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.cap - self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Adds an entry; false (and nothing added) if it does not fit.
    /// `next_off` is the d_off cookie: the position after this entry.
    pub fn push(&mut self, ino: u64, next_off: i64, d_type: u8, name: &[u8]) -> bool {
        let reclen = DirSink::reclen(name.len());
        if reclen > self.remaining() || reclen > u16::MAX as usize {
            return false;
        }
        let start = self.buf.len();
        self.buf.resize(start + reclen, 0);
        let rec = &mut self.buf[start..];
        rec[0..8].copy_from_slice(&ino.to_ne_bytes());
        rec[8..16].copy_from_slice(&next_off.to_ne_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        if self.old {
            // linux_dirent: d_name at 18, then NUL, then d_type in the last byte.
            rec[18..18 + name.len()].copy_from_slice(name);
            rec[reclen - 1] = d_type;
        } else {
            rec[18] = d_type;
            rec[19..19 + name.len()].copy_from_slice(name);
        }
        true
    }
}
