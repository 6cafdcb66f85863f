//! openat2(2): open with RESOLVE_* restrictions on the path walk
//! (NO_XDEV, NO_MAGICLINKS, NO_SYMLINKS, BENEATH, IN_ROOT, CACHED).

use crate::errno::{Errno, KResult};
use crate::error;
use crate::fs::types::oflags::*;
use crate::fs::{namei, open_at, open_resolved, walker_for};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;
const ALL_RESOLVE: u64 = RESOLVE_NO_XDEV
    | RESOLVE_NO_MAGICLINKS
    | RESOLVE_NO_SYMLINKS
    | RESOLVE_BENEATH
    | RESOLVE_IN_ROOT
    | RESOLVE_CACHED;
/// Every flag open(2) knows (Linux's VALID_OPEN_FLAGS, O_PATH included).
const VALID_FLAGS: u64 = 0o37777777;
/// The only flags O_PATH goes with (openat2 refuses others, EINVAL).
const O_PATH_FLAGS: u32 = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

syscall_table! { pub fn openat2_table;
    OPENAT2 => sys_openat2(dirfd: Fd, path: UserAddr, how: UserAddr, size: usize),
}

fn sys_openat2(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    how: UserAddr,
    size: usize,
) -> KResult<u64> {
    if !(24..=4096).contains(&size) {
        return error!(EINVAL);
    }
    let mut raw = vec![0u8; size];
    ctx.mm().read_bytes(how.0, &mut raw)?;
    if raw[24..].iter().any(|&b| b != 0) {
        return error!(E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags & !VALID_FLAGS != 0 || flags > u32::MAX as u64 || resolve & !ALL_RESOLVE != 0 {
        return error!(EINVAL);
    }
    let flags = flags as u32;
    if flags & O_PATH != 0 && flags & !O_PATH_FLAGS != 0 {
        return error!(EINVAL);
    }
    if mode & !0o7777 != 0 || (mode != 0 && flags & O_CREAT == 0 && flags & O_TMPFILE != O_TMPFILE)
    {
        return error!(EINVAL);
    }
    if resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
        return error!(EINVAL);
    }
    let p = crate::fs::syscalls::read_path(ctx, path)?;
    if p.is_empty() {
        return error!(ENOENT);
    }
    let fs = ctx.fs();
    let start = crate::fs::syscalls::start_dir(ctx, &fs, dirfd, &p)?;
    // With BENEATH or IN_ROOT the walk is confined to the start directory:
    // it becomes the walk's root.
    let confined = resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0;
    let base = walker_for(&fs, ctx.task);
    let start = if !confined {
        start
    } else if dirfd.0 == -100 {
        fs.cwd()
    } else {
        // Confined walks start at dirfd even for absolute paths.
        let f = ctx.files().get(dirfd.0)?;
        if f.file_type() != crate::fs::types::FileType::Directory {
            return error!(ENOTDIR);
        }
        f.path.clone()
    };
    let w = namei::Walker {
        ns: base.ns,
        root: if confined {
            start.clone()
        } else {
            base.root.clone()
        },
        caller: base.caller,
    };
    let path_bytes = p;
    let follow = flags & O_NOFOLLOW == 0;
    let file = match w.walk_resolve(&start, &path_bytes, follow, resolve) {
        Ok(target) => {
            if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                return error!(EEXIST);
            }
            if flags & O_PATH != 0 {
                // As open_at: no I/O, and a trailing symlink (O_NOFOLLOW)
                // is the descriptor's object.
                if flags & O_DIRECTORY != 0
                    && target.inode().file_type() != crate::fs::types::FileType::Directory
                {
                    return error!(ENOTDIR);
                }
                crate::fs::file::OpenFile::new(target, None, O_PATH)
            } else {
                open_resolved(&w, target, flags & !O_CREAT)?
            }
        }
        Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
            // Resolve the directory under the same rules, then create the
            // last name in it (which cannot be a symlink: it is missing).
            let trimmed = path_bytes.strip_suffix(b"/").unwrap_or(&path_bytes);
            let (dir_part, name) = match trimmed.iter().rposition(|&c| c == b'/') {
                Some(i) => (&trimmed[..i.max(1)], &trimmed[i + 1..]),
                None => (&b"."[..], trimmed),
            };
            let dir = w.walk_resolve(&start, dir_part, true, resolve)?;
            open_at(&w, &fs, &dir, name, flags | O_NOFOLLOW, mode as u32)?
        }
        Err(e) => return Err(e),
    };
    crate::fs::inotify::notify(&file.path, crate::fs::inotify::IN_OPEN);
    ctx.files()
        .alloc(file, flags & O_CLOEXEC != 0)
        .map(|fd| fd as u64)
}
