//! System V shared memory: shmget, shmat, shmdt, shmctl.
//!
//! A segment's memory is a file on an internal tmpfs (frames of physmem,
//! allocated on first touch and freed with the file). shmat maps it
//! MAP_SHARED into the caller through the ordinary mm machinery, as a file
//! opened for that attachment ([`ShmFile`]); fork copies the mapping (and
//! so the attachment), and munmap, exit and exec drop it. `shm_nattch` is
//! the number of mappings holding some attachment's open file, as Linux
//! counts vmas. A segment removed while attached (IPC_RMID) is marked
//! SHM_DEST, loses its key, and goes when its last attachment does.
//!
//! Locking: [`TABLE`]'s mutex over all segments. Dropping an attachment
//! (which happens under an address space's lock) takes it, so the table
//! is never held while calling into an address space.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::{
    check_owner, ipcget, ipcperms, new_perm, now, Cred, Ids, Ipc64Perm, IpcObject, Perm, IPC_64,
    IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, LIMITS, S_IRUGO, S_IWUGO,
};
use crate::errno::KResult;
use crate::error;
use crate::fs::file::{FileRef, OpenFile};
use crate::fs::tmpfs::{TmpFs, TmpInode, TmpfsOptions};
use crate::fs::types::oflags::{O_RDONLY, O_RDWR};
use crate::fs::vfs::{Caller, Dentry, FileOps, Inode, Mount, Path};
use crate::mm::{Mm, PAGE};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

const SHM_RDONLY: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;
/// shmget: do not reserve swap (no accounting of the size).
const SHM_NORESERVE: i32 = 0o10000;

const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// Mode bits: removed while attached; locked in memory.
const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;

const MAP_SHARED: u32 = 0x01;
const MAP_FIXED: u32 = 0x10;
const MAP_FIXED_NOREPLACE: u32 = 0x100000;
const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;

/// RLIMIT_MEMLOCK's index.
const RLIMIT_MEMLOCK: usize = 8;

crate::abi_struct! {
    /// struct shmid64_ds (x86_64).
    pub struct ShmidDs {
        pub perm: Ipc64Perm,
        pub segsz: u64,
        pub atime: i64,
        pub dtime: i64,
        pub ctime: i64,
        pub cpid: i32,
        pub lpid: i32,
        pub nattch: u64,
        pub unused4: u64,
        pub unused5: u64,
    }
}

crate::abi_struct! {
    /// struct shminfo64.
    pub struct ShmInfo64 {
        pub shmmax: u64,
        pub shmmin: u64,
        pub shmmni: u64,
        pub shmseg: u64,
        pub shmall: u64,
        pub unused1: u64,
        pub unused2: u64,
        pub unused3: u64,
        pub unused4: u64,
    }
}

crate::abi_struct! {
    /// struct shm_info.
    pub struct ShmInfo {
        pub used_ids: i32,
        pub pad: i32,
        pub shm_tot: u64,
        pub shm_rss: u64,
        pub shm_swp: u64,
        pub swap_attempts: u64,
        pub swap_successes: u64,
    }
}

/// One segment. Locking: [`TABLE`]'s mutex.
pub struct Segment {
    perm: Perm,
    id: i32,
    serial: u64,
    size: u64,
    /// The tmpfs file holding the pages.
    inode: Arc<dyn Inode>,
    cpid: i32,
    lpid: i32,
    atime: i64,
    dtime: i64,
    ctime: i64,
    /// The open file of each attachment; mappings hold them.
    attaches: Vec<Weak<OpenFile>>,
}

impl IpcObject for Segment {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
    fn id(&self) -> i32 {
        self.id
    }
}

impl Segment {
    /// How many mappings hold an attachment (shm_nattch).
    fn nattch(&self) -> u64 {
        self.attaches.iter().map(|w| w.strong_count() as u64).sum()
    }
    fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE)
    }
    /// Frames in use (the tmpfs file's blocks).
    fn rss_pages(&self) -> u64 {
        self.inode.stat().map(|s| s.blocks / 8).unwrap_or(0)
    }
    fn ds(&self) -> ShmidDs {
        ShmidDs {
            perm: self.perm.to_abi(),
            segsz: self.size,
            atime: self.atime,
            dtime: self.dtime,
            ctime: self.ctime,
            cpid: self.cpid,
            lpid: self.lpid,
            nattch: self.nattch(),
            ..Default::default()
        }
    }
}

/// One table per IPC namespace (task/ns.rs), keyed by its number.
static TABLE: std::sync::LazyLock<Mutex<std::collections::HashMap<u64, Option<Ids<Segment>>>>> =
    std::sync::LazyLock::new(Default::default);

/// The current task's IPC namespace's table, locked.
fn table() -> crate::task::ns::PerNet<Option<Ids<Segment>>> {
    crate::task::ns::PerNet::lock_at(&TABLE, crate::task::ns::current_ipc(), |_| None)
}

/// An IPC namespace is gone: its objects go.
pub(crate) fn ns_gone(ns: u64) {
    let gone = TABLE.lock().unwrap_or_else(|p| p.into_inner()).remove(&ns);
    drop(gone);
}

fn with<R>(f: impl FnOnce(&mut Ids<Segment>) -> R) -> R {
    let mut t = table();
    f(t.get_or_insert_with(Ids::default))
}

/// The internal tmpfs that holds every segment's pages.
fn shmfs() -> &'static (Arc<Mount>, Arc<TmpInode>) {
    static M: OnceLock<(Arc<Mount>, Arc<TmpInode>)> = OnceLock::new();
    M.get_or_init(|| {
        let root = TmpFs::new_root(TmpfsOptions::defaults(&crate::fs::tmpfs::physmem()));
        (Mount::new("tmpfs", root.clone(), None, false, true), root)
    })
}

/// The file operations of one attachment: the segment's tmpfs file, with
/// every page present (a read-only attachment must see the frames the
/// writers share, not private zero pages).
pub struct ShmFile {
    inner: Arc<dyn FileOps>,
    serial: u64,
}

impl FileOps for ShmFile {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn size(&self) -> KResult<u64> {
        self.inner.size()
    }
    fn sync(&self, _data_only: bool) -> KResult<()> {
        Ok(())
    }
    fn mmap_key(&self) -> KResult<(u64, u64)> {
        self.inner.mmap_key()
    }
    fn page_frame(&self, index: u64, _create: bool) -> Option<KResult<ruml_host::Pfn>> {
        self.inner.page_frame(index, true)
    }
}

impl Drop for ShmFile {
    /// The last mapping of an attachment went: a segment marked for
    /// removal goes with its last attachment.
    fn drop(&mut self) {
        let serial = self.serial;
        with(|ids| {
            let gone: Vec<i32> = ids
                .map
                .values()
                .filter(|s| s.serial == serial && s.perm.mode & SHM_DEST != 0 && s.nattch() == 0)
                .map(|s| s.id)
                .collect();
            for id in gone {
                ids.remove(id);
            }
            for s in ids.map.values_mut() {
                if s.serial == serial {
                    s.attaches.retain(|w| w.strong_count() > 0);
                }
            }
        });
    }
}

fn shm_of(f: &FileRef) -> Option<u64> {
    f.ops()
        .ok()
        .and_then(|o| o.as_any_ops().downcast_ref::<ShmFile>())
        .map(|s| s.serial)
}

syscall_table! { pub fn shm_table;
    SHMGET => sys_shmget(key: i32, size: u64, flg: i32),
    SHMAT => sys_shmat(id: i32, addr: u64, flg: i32),
    SHMDT => sys_shmdt(addr: u64),
    SHMCTL => sys_shmctl(id: i32, cmd: i32, buf: UserAddr),
}

fn sys_shmget(ctx: &mut SyscallContext<'_>, key: i32, size: u64, flg: i32) -> KResult<u64> {
    let cred = Cred::of(ctx.task);
    let tgid = ctx.task.tgid();
    with(|ids| {
        let total: u64 = ids.map.values().map(|s| s.pages()).sum();
        ipcget(
            ids,
            &cred,
            key,
            flg,
            |s| {
                if s.size < size {
                    error!(EINVAL)
                } else {
                    Ok(())
                }
            },
            |ids| {
                if size < 1 || size > LIMITS.shmmax.get() as u64 {
                    return error!(EINVAL);
                }
                let pages = size.div_ceil(PAGE);
                if total
                    .checked_add(pages)
                    .is_none_or(|t| t > LIMITS.shmall.get() as u64)
                {
                    return error!(ENOSPC);
                }
                // Memory accounting as Linux's default overcommit
                // heuristic: no segment larger than all of memory, unless
                // SHM_NORESERVE.
                if flg & SHM_NORESERVE == 0 && pages > crate::fs::tmpfs::physmem().total_pages() {
                    return error!(ENOMEM);
                }
                let (idx, id, seq, serial) = ids.alloc(LIMITS.shmmni.get().max(0) as u32)?;
                let (_, root) = shmfs();
                let name = format!(".shm.{serial}").into_bytes();
                let (inode, ops) = root.create(&name, 0o600, O_RDWR)?;
                root.unlink(&name)?;
                ops.truncate(size).map_err(|_| crate::errno!(ENOMEM))?;
                ids.map.insert(
                    idx,
                    Segment {
                        perm: new_perm(&cred, key, flg, seq),
                        id,
                        serial,
                        size,
                        inode,
                        cpid: tgid,
                        lpid: 0,
                        atime: 0,
                        dtime: 0,
                        ctime: now(),
                        attaches: Vec::new(),
                    },
                );
                Ok(id)
            },
        )
    })
    .map(|id| id as u64)
}

fn sys_shmat(ctx: &mut SyscallContext<'_>, id: i32, addr: u64, flg: i32) -> KResult<u64> {
    if id < 0 {
        return error!(EINVAL);
    }
    let mut addr = addr;
    let mut flags = MAP_SHARED;
    if addr != 0 {
        if !addr.is_multiple_of(PAGE) {
            if flg & SHM_RND == 0 {
                return error!(EINVAL);
            }
            addr &= !(PAGE - 1);
            if addr == 0 && flg & SHM_REMAP != 0 {
                return error!(EINVAL);
            }
        }
        flags |= if flg & SHM_REMAP != 0 {
            MAP_FIXED
        } else {
            MAP_FIXED_NOREPLACE
        };
    } else if flg & SHM_REMAP != 0 {
        return error!(EINVAL);
    }
    let (mut prot, mut acc) = if flg & SHM_RDONLY != 0 {
        (PROT_READ, S_IRUGO)
    } else {
        (PROT_READ | PROT_WRITE, S_IRUGO | S_IWUGO)
    };
    if flg & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
        acc |= 0o111;
    }
    let cred = Cred::of(ctx.task);
    let tgid = ctx.task.tgid();
    // The attachment is made under the table's lock and mapped after it
    // is released (dropping a failed one takes the lock again).
    let (file, size, serial) = with(|ids| -> KResult<_> {
        let s = ids.get_mut(id)?;
        if !ipcperms(&cred, &s.perm, acc) {
            return error!(EACCES);
        }
        let (mnt, _) = shmfs();
        let ops = s.inode.open(O_RDWR, &Caller::kernel())?;
        let name = format!("/SYSV{:08x} (deleted)", s.perm.key as u32).into_bytes();
        let path = Path {
            mnt: mnt.clone(),
            dentry: Dentry::child(&mnt.root, &name, s.inode.clone()),
        };
        let file = OpenFile::new(
            path,
            Some(Arc::new(ShmFile {
                inner: ops,
                serial: s.serial,
            })),
            if flg & SHM_RDONLY != 0 {
                O_RDONLY
            } else {
                O_RDWR
            },
        );
        s.attaches.retain(|w| w.strong_count() > 0);
        s.attaches.push(Arc::downgrade(&file));
        Ok((file, s.size, s.serial))
    })?;
    if addr != 0 && addr.checked_add(size).is_none() {
        return error!(EINVAL);
    }
    let r = ctx.mm().mmap(addr, size, prot, flags, Some((file, 0)));
    let at = match r {
        Ok(a) => a,
        Err(crate::errno::Errno::EEXIST) => return error!(EINVAL),
        Err(e) => return Err(e),
    };
    with(|ids| {
        if let Some(s) = ids.map.values_mut().find(|s| s.serial == serial) {
            s.atime = now();
            s.lpid = tgid;
        }
    });
    Ok(at)
}

/// Unmaps the attachment at `addr` (all its areas, as Linux's shmdt).
fn detach(mm: &Mm, addr: u64) -> KResult<u64> {
    let areas = mm.file_areas();
    let Some((file, serial)) = areas.iter().find_map(|(start, _, pgoff, f)| {
        (*start == addr && *pgoff == 0)
            .then(|| shm_of(f).map(|s| (f.clone(), s)))
            .flatten()
    }) else {
        return error!(EINVAL);
    };
    let size = with(|ids| {
        ids.map
            .values()
            .find(|s| s.serial == serial)
            .map(|s| s.size)
    })
    .unwrap_or_else(|| file.size().unwrap_or(0));
    let end = addr.saturating_add(size.div_ceil(PAGE) * PAGE);
    let mine: Vec<(u64, u64)> = areas
        .iter()
        .filter(|(s, e, _, f)| Arc::ptr_eq(f, &file) && *s >= addr && *e <= end)
        .map(|(s, e, _, _)| (*s, *e))
        .collect();
    drop(areas);
    drop(file);
    for (s, e) in mine {
        mm.munmap(s, e - s)?;
    }
    Ok(serial)
}

fn sys_shmdt(ctx: &mut SyscallContext<'_>, addr: u64) -> KResult<u64> {
    if !addr.is_multiple_of(PAGE) {
        return error!(EINVAL);
    }
    let serial = detach(&ctx.mm(), addr)?;
    let tgid = ctx.task.tgid();
    with(|ids| {
        if let Some(s) = ids.map.values_mut().find(|s| s.serial == serial) {
            s.dtime = now();
            s.lpid = tgid;
        }
    });
    Ok(0)
}

/// Detaches every segment from `mm` if no live task runs in it any more
/// (exit, exec): see [`super::mm_released`].
pub fn detach_all(mm: &Arc<Mm>, tgid: i32) {
    if crate::kernel().tasks.mm_in_use(mm) {
        return;
    }
    let areas: Vec<(u64, u64, u64)> = mm
        .file_areas()
        .into_iter()
        .filter_map(|(s, e, _, f)| shm_of(&f).map(|serial| (s, e, serial)))
        .collect();
    for &(s, e, _) in &areas {
        let _ = mm.munmap(s, e - s);
    }
    with(|ids| {
        for s in ids.map.values_mut() {
            if areas.iter().any(|a| a.2 == s.serial) {
                s.dtime = now();
                s.lpid = tgid;
            }
        }
    });
}

fn sys_shmctl(ctx: &mut SyscallContext<'_>, id: i32, cmd: i32, buf: UserAddr) -> KResult<u64> {
    if id < 0 || cmd < 0 || cmd & IPC_64 != 0 {
        return error!(EINVAL);
    }
    let cred = Cred::of(ctx.task);
    let mm = ctx.mm();
    match cmd {
        IPC_INFO => {
            let max = with(|ids| ids.max_idx());
            let shmmni = LIMITS.shmmni.get() as u64;
            mm.write_val(
                buf.0,
                &ShmInfo64 {
                    shmmax: LIMITS.shmmax.get() as u64,
                    shmmin: 1,
                    shmmni,
                    shmseg: 4096,
                    shmall: LIMITS.shmall.get() as u64,
                    ..Default::default()
                },
            )?;
            Ok(max)
        }
        SHM_INFO => {
            let (info, max) = with(|ids| {
                (
                    ShmInfo {
                        used_ids: ids.map.len() as i32,
                        shm_tot: ids.map.values().map(|s| s.pages()).sum(),
                        shm_rss: ids.map.values().map(|s| s.rss_pages()).sum(),
                        ..Default::default()
                    },
                    ids.max_idx(),
                )
            });
            mm.write_val(buf.0, &info)?;
            Ok(max)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (ds, ret) = with(|ids| -> KResult<_> {
                let s = if cmd == IPC_STAT {
                    ids.get(id)?
                } else {
                    ids.at_index(id)?
                };
                if cmd != SHM_STAT_ANY && !ipcperms(&cred, &s.perm, S_IRUGO) {
                    return error!(EACCES);
                }
                Ok((s.ds(), if cmd == IPC_STAT { 0 } else { s.id as u64 }))
            })?;
            mm.write_val(buf.0, &ds)?;
            Ok(ret)
        }
        IPC_SET => {
            let new: ShmidDs = mm.read_val(buf.0)?;
            with(|ids| {
                let s = ids.get_mut(id)?;
                check_owner(&cred, &s.perm)?;
                super::set_perm(&mut s.perm, &new.perm);
                s.ctime = now();
                Ok(0)
            })
        }
        IPC_RMID => with(|ids| {
            let s = ids.get_mut(id)?;
            check_owner(&cred, &s.perm)?;
            if s.nattch() == 0 {
                ids.remove(id);
            } else {
                s.perm.mode |= SHM_DEST;
                s.perm.key = super::IPC_PRIVATE;
            }
            Ok(0)
        }),
        SHM_LOCK | SHM_UNLOCK => {
            let memlock = ctx.task.group.limit(RLIMIT_MEMLOCK)[0];
            with(|ids| {
                let s = ids.get_mut(id)?;
                if !cred.privileged(crate::task::caps::Cap::IpcLock) {
                    if cred.euid != s.perm.uid && cred.euid != s.perm.cuid {
                        return error!(EPERM);
                    }
                    if cmd == SHM_LOCK && memlock == 0 {
                        return error!(EPERM);
                    }
                }
                if cmd == SHM_LOCK {
                    s.perm.mode |= SHM_LOCKED;
                } else {
                    s.perm.mode &= !SHM_LOCKED;
                }
                Ok(0)
            })
        }
        _ => error!(EINVAL),
    }
}

/// Lines of /proc/sysvipc/shm.
pub fn proc_text() -> String {
    let mut s = String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    with(|ids| {
        for g in ids.map.values() {
            s.push_str(&format!(
                "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}\n",
                g.perm.key,
                g.id,
                g.perm.mode,
                g.size,
                g.cpid,
                g.lpid,
                g.nattch(),
                g.perm.uid,
                g.perm.gid,
                g.perm.cuid,
                g.perm.cgid,
                g.atime,
                g.dtime,
                g.ctime,
                g.rss_pages() * PAGE,
                0
            ));
        }
    });
    s
}
