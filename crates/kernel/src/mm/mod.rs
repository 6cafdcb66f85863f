//! The memory manager: each guest address space is an [`Mm`] — its VMAs,
//! its page table (guest page → physmem frame), and the queue of changes
//! the host's stub process must make before the guest next runs.
//!
//! Policy: anonymous areas are mapped ahead in whole runs of frames, so
//! first touches are served by the host without a trap (areas over 16 MiB
//! 2 MiB at a time, on a fault); file areas are filled from the page cache
//! a chunk at a time on the first fault, and the cached pages around the
//! fault are mapped with it (fault-around, no I/O).
//! Private pages shared after fork (or with the page cache) are mapped
//! read-only and copied on the first write fault.
//!
//! Locking: one mutex per Mm over VMAs, page table and queue. The kernel
//! never holds it while blocking.

pub mod cachestat;
pub mod discard;
mod fork;
pub mod pagecache;
pub mod pagemap;
pub mod patch;
pub mod pmadvise;
pub mod remove;
pub mod rmap;
pub mod rss;
pub mod shmem;
pub mod syscalls;
pub mod userframes;
pub mod vma;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ruml_host::{Pfn, PhysMem};

use crate::abi::Pod;
use crate::errno::KResult;
use crate::error;
use vma::{Backing, Vma, VmaMap, PROT_EXEC, PROT_READ, PROT_WRITE};

pub const PAGE: u64 = 4096;
/// The guest's TASK_SIZE: everything above belongs to the stub.
pub fn task_size() -> u64 {
    ruml_host::stub::guest_top()
}
/// The lowest address mmap hands out (vm.mmap_min_addr).
pub const MMAP_MIN: u64 = 0x10000;
/// Anonymous areas up to this size are mapped ahead whole.
const MAP_AHEAD_MAX: u64 = 16 << 20;
/// Pages filled at once on a fault in a lazily filled file area.
const FAULT_CHUNK_PAGES: u64 = 32;
/// Pages around a fault in a file area mapped at once when their frames
/// are at hand (see [`Mm::map_cached`]).
const FAULT_AROUND_PAGES: u64 = 512;
/// How far below a stack growing down the next mapping must stay
/// (Linux's stack_guard_gap: 256 pages).
const STACK_GUARD_GAP: u64 = 256 * PAGE;
/// Pages filled at once on a sequential fault in an anonymous area too
/// large to be mapped ahead whole (2 MiB, aligned; see
/// [`Mm::fault_window`]).
const ANON_FAULT_PAGES: u64 = 512;
/// Pages filled at once on any other fault in such an area (64 KiB,
/// aligned, as Linux's fault_around_bytes).
const ANON_FAULT_FIRST_PAGES: u64 = 16;
/// fork copies the pages from this far below the stack pointer up to it
/// at once (see [`Mm::fork_hot`]): what the calls after fork returns push.
pub const FORK_HOT_BELOW_SP: u64 = 256;
/// How far a stack may grow (RLIMIT_STACK's default).
pub const STACK_LIMIT: u64 = 8 << 20;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}
pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// A change the stub process must make, queued in order: the platform
/// interface's own type.
pub use ruml_host::Op as HostOp;

/// One page-table entry.
#[derive(Clone, Copy, Debug)]
struct Pte {
    pfn: Pfn,
    /// Shared with another address space or the page cache: mapped
    /// read-only until a write copies it.
    cow: bool,
}

/// An area as a core dump sees it; see [`Mm::dump_areas`].
pub struct DumpArea {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    /// Whether the dump holds the area's pages.
    pub contents: bool,
    /// The mapped file and the page offset into it.
    pub file: Option<(crate::fs::FileRef, u64)>,
}

/// Sizes of an address space, for /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmStats {
    pub vsize: u64,
    pub rss_pages: u64,
    pub brk_start: u64,
    pub brk: u64,
    pub stack: (u64, u64),
    pub code: (u64, u64),
    pub arg: (u64, u64),
    pub env: (u64, u64),
}

/// The outcome of a fault the kernel could not resolve: the signal the
/// guest gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSignal {
    pub signo: i32,
    pub code: i32,
    pub addr: u64,
}

pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;

struct MmInner {
    vmas: VmaMap,
    ptes: BTreeMap<u64, Pte>,
    ops: Vec<HostOp>,
    /// Frames to release once the queued host changes no longer map them.
    frees: Vec<Pfn>,
    brk_start: u64,
    brk: u64,
    mmap_base: u64,
    /// Where argv and envp strings start and end (for /proc/PID/cmdline).
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    /// Where exec put the auxiliary vector on the initial stack.
    auxv_range: (u64, u64),
    /// Flags every new area gets (mlockall's MCL_FUTURE).
    def_flags: u32,
    /// Patched system-call sites and their area ([`patch`]).
    patch: patch::Patch,
    /// The last window a fault in a large anonymous area filled (see
    /// [`Mm::fault_window`]): a fault just past either end of it is
    /// sequential and gets the whole window; any other one a small one.
    anon_window: (u64, u64),
}

/// A guest address space. See the module documentation.
pub struct Mm {
    phys: Arc<PhysMem>,
    inner: Mutex<MmInner>,
    /// The stub process, once the first thread has started it.
    host: Mutex<Option<ruml_host::AddressSpace>>,
    /// Held while queued changes are applied, so that no thread of this
    /// space runs before the changes another thread took are in place.
    pub flush_lock: Mutex<()>,
    /// How many batches of queued changes have reached the host, and the
    /// condition a fault waits on for the next one (see
    /// [`Mm::wait_host_change`]). Bumped after each flush, under no other
    /// lock. The pair is (flushes so far, faults waiting for the next).
    flushes: (Mutex<(u64, u32)>, std::sync::Condvar),
    /// RLIMIT_AS and RLIMIT_STACK (soft) in bytes.
    limits: Mutex<(u64, u64)>,
    /// This space itself, for the reverse map of file mappings
    /// ([`rmap`]): set at creation, never changed.
    me: Weak<Mm>,
}

/// How the kernel touches a page on the guest's behalf.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    /// The kernel itself (exec): ignores the VMA's protection.
    Force,
    /// A debugger (ptrace, /proc/PID/mem: FOLL_FORCE): reads any mapping;
    /// writes private ones whatever their protection (copy-on-write), and
    /// shared ones only if writable.
    DebugRead,
    DebugWrite,
}

fn host_prot(vma_prot: u32, cow: bool) -> u32 {
    let mut p = vma_prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
    if cow {
        p &= !PROT_WRITE;
    }
    p
}

impl MmInner {
    /// The page-cache keys of the files this space maps.
    fn file_keys(&self) -> Vec<(u64, u64)> {
        let mut keys: Vec<(u64, u64)> = self
            .vmas
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::File { key, .. } => Some(*key),
                _ => None,
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

impl Mm {
    pub fn new(phys: Arc<PhysMem>, mmap_base: u64) -> Arc<Mm> {
        Arc::new_cyclic(|me| Mm {
            me: me.clone(),
            phys,
            inner: Mutex::new(MmInner {
                vmas: VmaMap::default(),
                ptes: BTreeMap::new(),
                ops: Vec::new(),
                frees: Vec::new(),
                brk_start: 0,
                brk: 0,
                mmap_base,
                arg_range: (0, 0),
                env_range: (0, 0),
                auxv_range: (0, 0),
                def_flags: 0,
                patch: patch::Patch::default(),
                anon_window: (0, 0),
            }),
            host: Mutex::new(None),
            flush_lock: Mutex::new(()),
            flushes: (Mutex::new((0, 0)), std::sync::Condvar::new()),
            limits: Mutex::new((u64::MAX, STACK_LIMIT)),
        })
    }

    /// Sets the address-space and stack size limits (setrlimit, exec).
    pub fn set_limits(&self, as_limit: u64, stack: u64) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = (as_limit, stack);
    }

    fn limit_as(&self) -> u64 {
        self.limits.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn limit_stack(&self) -> u64 {
        self.limits.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The stub process of this space, if started.
    pub fn host(&self) -> Option<ruml_host::AddressSpace> {
        self.host.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the stub process started for this space.
    pub fn set_host(&self, a: ruml_host::AddressSpace) {
        *self.host.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
    }

    fn lock(&self) -> MutexGuard<'_, MmInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn phys(&self) -> &Arc<PhysMem> {
        &self.phys
    }

    /// The number of batches of changes applied to the host so far: read
    /// before handling a fault, it tells [`Mm::wait_host_change`] which
    /// flushes the fault may not have seen.
    pub fn flush_count(&self) -> u64 {
        self.flushes.0.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Records that a batch of changes reached the host (called after each
    /// flush, by whichever thread did it) and wakes the faults waiting
    /// for one.
    pub fn note_flushed(&self) {
        let waiting = {
            let mut g = self.flushes.0.lock().unwrap_or_else(|p| p.into_inner());
            g.0 += 1;
            g.1
        };
        // std's notify_all is a host futex call even with nobody waiting,
        // and this runs before every resume of every thread: wake only
        // when a fault waits (counted under the same lock, so none is
        // missed).
        if waiting > 0 {
            self.flushes.1.notify_all();
        }
    }

    /// For a fault the kernel found nothing to change for (another
    /// thread's host change is on its way): waits until a flush after
    /// `seen` (a [`Mm::flush_count`] read before the fault was handled)
    /// has completed, or `patience` has passed. The wait ends on the
    /// change itself, not on the host scheduler giving the other thread a
    /// turn first.
    pub fn wait_host_change(&self, seen: u64, patience: std::time::Duration) {
        let mut g = self.flushes.0.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        let mut g = match self
            .flushes
            .1
            .wait_timeout_while(g, patience, |n| n.0 == seen)
        {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
        g.1 -= 1;
    }

    /// Takes the queued host changes, to apply to the stub before running,
    /// and the frames to release once they are applied.
    pub fn take_host_ops(&self) -> (Vec<HostOp>, Vec<Pfn>) {
        let mut m = self.lock();
        (std::mem::take(&mut m.ops), std::mem::take(&mut m.frees))
    }

    /// A copy-on-write copy for fork: same VMAs; private pages shared
    /// read-only by both until one writes; shared pages shared.
    pub fn fork(&self) -> Arc<Mm> {
        self.fork_hot(&[])
    }

    /// As [`Mm::fork`], except that the present private writable pages
    /// holding an address of `hot` are copied for the child now rather
    /// than shared: pages both processes are about to write (the stack
    /// around the forking thread's stack pointer: both return from fork
    /// through it), where sharing would cost each side a write fault — a
    /// round trip to the stub and back — to end in the same copy. Only
    /// for a parent no other thread of which can write the page during
    /// the copy.
    pub fn fork_hot(&self, hot: &[u64]) -> Arc<Mm> {
        self.fork_copy(hot, false)
    }

    /// The body of [`Mm::fork_hot`] and [`Mm::fork_synced`]. With
    /// `synced`, the parent's private writable pages were write-protected
    /// in the host just before (fork.rs): a page that lost its
    /// copy-on-write mark since is the parent's alone again, writable in
    /// the host once the change queued for it is applied, and the child
    /// gets a copy of it now instead of a share.
    fn fork_copy(&self, hot: &[u64], synced: bool) -> Arc<Mm> {
        let mut p = self.lock();
        let mut child_ptes = BTreeMap::new();
        let mut child_ops = Vec::new();
        let mut parent_protect: Vec<(u64, u32)> = Vec::new();
        // The child's areas: no MADV_DONTFORK ones, no locks (mlock(2)).
        let mut vmas = p.vmas.clone();
        for v in p.vmas.iter() {
            if v.flags & vma::vm_flags::DONTFORK != 0 {
                vmas.remove_range(v.start, v.end);
            }
        }
        let unlock = !(vma::vm_flags::LOCKED | vma::vm_flags::LOCKONFAULT);
        vmas.update_range(0, task_size(), |v| v.flags &= unlock);
        for v in vmas.iter() {
            // MADV_WIPEONFORK: the child starts with fresh zero pages.
            if v.flags & vma::vm_flags::WIPEONFORK != 0 {
                continue;
            }
            for (&vpn, pte) in p.ptes.range_mut(v.start / PAGE..v.end / PAGE) {
                let eager = !v.shared
                    && v.prot & PROT_WRITE != 0
                    && !matches!(v.backing, Backing::Special { .. })
                    && ((synced && !pte.cow) || hot.iter().any(|&a| a / PAGE == vpn));
                if eager {
                    if let Some(copy) = self.phys.alloc() {
                        self.phys.copy_page(pte.pfn, copy);
                        child_ptes.insert(
                            vpn,
                            Pte {
                                pfn: copy,
                                cow: false,
                            },
                        );
                        child_ops.push(HostOp::Map {
                            addr: vpn * PAGE,
                            len: PAGE,
                            prot: host_prot(v.prot, false),
                            pfn: copy,
                        });
                        continue;
                    }
                }
                self.phys.get(pte.pfn);
                let cow = !v.shared;
                if cow && !pte.cow && v.prot & PROT_WRITE != 0 {
                    parent_protect.push((vpn, host_prot(v.prot, true)));
                }
                if cow {
                    pte.cow = true;
                }
                child_ptes.insert(
                    vpn,
                    Pte {
                        pfn: pte.pfn,
                        cow: pte.cow,
                    },
                );
                child_ops.push(HostOp::Map {
                    addr: vpn * PAGE,
                    len: PAGE,
                    prot: host_prot(v.prot, pte.cow),
                    pfn: pte.pfn,
                });
            }
        }
        let (child_patch, patch_ok) = p.patch.fork_copy(self, &mut child_ops);
        for (vpn, prot) in parent_protect {
            p.ops.push(HostOp::Protect {
                addr: vpn * PAGE,
                len: PAGE,
                prot,
            });
        }
        let child = Arc::new_cyclic(|me| Mm {
            me: me.clone(),
            phys: self.phys.clone(),
            inner: Mutex::new(MmInner {
                vmas,
                ptes: child_ptes,
                ops: child_ops,
                frees: Vec::new(),
                brk_start: p.brk_start,
                brk: p.brk,
                mmap_base: p.mmap_base,
                arg_range: p.arg_range,
                env_range: p.env_range,
                auxv_range: p.auxv_range,
                // Locks are not inherited by a fork's child (mlock(2)).
                def_flags: 0,
                patch: child_patch,
                anon_window: (0, 0),
            }),
            host: Mutex::new(None),
            flush_lock: Mutex::new(()),
            flushes: (Mutex::new((0, 0)), std::sync::Condvar::new()),
            limits: Mutex::new(*self.limits.lock().unwrap_or_else(|p| p.into_inner())),
        });
        // The child maps the parent's files too (rmap): listed before the
        // parent's lock is released, so a truncation that zaps the parent
        // after this finds the child too.
        let keys = child.lock().file_keys();
        for key in keys {
            rmap::register(key, &child.me);
        }
        drop(p);
        if !patch_ok {
            child.patch_disable();
        }
        child
    }

    /// Records where the initial stack's strings lie.
    pub fn set_arg_env(&self, args: (u64, u64), env: (u64, u64)) {
        let mut m = self.lock();
        m.arg_range = args;
        m.env_range = env;
    }

    pub fn arg_env(&self) -> ((u64, u64), (u64, u64)) {
        let m = self.lock();
        (m.arg_range, m.env_range)
    }

    /// Records where exec put the auxiliary vector (`[start, end)`).
    pub fn set_auxv_range(&self, range: (u64, u64)) {
        self.lock().auxv_range = range;
    }

    /// The auxiliary vector as the process's stack holds it now.
    pub fn auxv(&self) -> Vec<u8> {
        let (start, end) = self.lock().auxv_range;
        let mut b = vec![0u8; end.saturating_sub(start) as usize];
        match self.read_bytes(start, &mut b) {
            Ok(()) => b,
            Err(_) => Vec::new(),
        }
    }

    /// The areas a core dump describes, in address order: each with
    /// whether its contents go into the dump (Linux's default
    /// coredump_filter: anonymous and written-to private memory, not the
    /// pages of files mapped read-only, which the debugger reads from the
    /// files themselves) and its file, if any, with the page offset.
    pub fn dump_areas(&self) -> Vec<DumpArea> {
        let m = self.lock();
        m.vmas
            .iter()
            .map(|v| {
                let file = match &v.backing {
                    Backing::File { file, pgoff, .. } => Some((file.clone(), *pgoff)),
                    Backing::Anon | Backing::Special { .. } => None,
                };
                // Of the special mappings only the vDSO's code goes in (as
                // Linux: [vvar] is VM_IO).
                let vvar = matches!(v.backing, Backing::Special { .. }) && v.prot & PROT_EXEC == 0;
                let readable = v.prot & PROT_READ != 0 && v.flags & vma::vm_flags::DONTDUMP == 0;
                let contents = readable && !vvar && (file.is_none() || v.prot & PROT_WRITE != 0);
                DumpArea {
                    start: v.start,
                    end: v.end,
                    prot: v.prot,
                    contents,
                    file,
                }
            })
            .collect()
    }

    /// One page of an area for a core dump: what the process has there now,
    /// without allocating for pages it never touched (zeros for anonymous
    /// memory). EFAULT where the area is gone or unreadable.
    pub fn read_page_for_dump(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        let mut m = self.lock();
        let vpn = addr / PAGE;
        let off = (addr % PAGE) as usize;
        let n = buf.len().min(PAGE as usize - off);
        if let Some(pte) = m.ptes.get(&vpn) {
            self.phys.read(pte.pfn, off, &mut buf[..n]);
            return Ok(());
        }
        match m
            .vmas
            .find(addr)
            .map(|v| matches!(v.backing, Backing::Anon))
        {
            None => error!(EFAULT),
            Some(true) => {
                buf[..n].fill(0);
                Ok(())
            }
            Some(false) => {
                let pfn = self.touch(&mut m, addr, Access::Read)?;
                self.phys.read(pfn, off, &mut buf[..n]);
                Ok(())
            }
        }
    }

    /// Sets up the heap after exec.
    pub fn set_brk_start(&self, at: u64) {
        let mut m = self.lock();
        m.brk_start = at;
        m.brk = at;
    }

    /// The area named `name` (the vDSO's "[vvar]") if it is a special
    /// mapping: its range and the mapping (vdso/mod.rs swaps the data page
    /// when a process enters a time namespace).
    pub fn special_area(&self, name: &str) -> Option<(u64, u64, &'static vma::SpecialMapping)> {
        let m = self.lock();
        let found = m
            .vmas
            .iter()
            .find(|v| v.name == Some(name))
            .and_then(|v| match v.backing {
                Backing::Special { map, .. } => Some((v.start, v.end, map)),
                _ => None,
            });
        found
    }

    /// Maps an area: `addr` is where (already chosen and free), the
    /// backing and protection as given. Anonymous areas are mapped ahead.
    pub fn map_area(&self, vma: Vma) -> KResult<()> {
        let mut m = self.lock();
        self.map_area_locked(&mut m, vma)
    }

    fn map_area_locked(&self, m: &mut MmInner, mut vma: Vma) -> KResult<()> {
        let (start, end, prot) = (vma.start, vma.end, vma.prot);
        self.patch_invalidate(m, start, end, true);
        let total: u64 = m.vmas.iter().map(|v| v.len()).sum();
        if total.saturating_add(end - start) > self.limit_as() {
            return error!(ENOMEM);
        }
        vma.flags |= m.def_flags;
        if let Backing::File { key, .. } = &vma.backing {
            rmap::register(*key, &self.me);
        }
        let locked =
            vma.flags & vma::vm_flags::LOCKED != 0 && vma.flags & vma::vm_flags::LOCKONFAULT == 0;
        let ahead = match vma.backing {
            Backing::Anon => prot != 0 && (locked || end - start <= MAP_AHEAD_MAX),
            Backing::Special { .. } => true,
            Backing::File { ref file, .. } => {
                prot != 0 && (locked || (shmem::is_object(file) && end - start <= MAP_AHEAD_MAX))
            }
        };
        m.vmas.insert(vma);
        if ahead {
            self.populate(m, start, end)?;
        }
        Ok(())
    }

    /// Writes the pages of shared writable mappings of files that are not
    /// memory-backed (hostfs) in `[start, end)` back to their files: such
    /// a file's data lives on the host, and its mapped pages in the page
    /// cache; msync, munmap and exit carry them home.
    fn write_back_locked(&self, m: &MmInner, start: u64, end: u64) {
        for v in m
            .vmas
            .iter()
            .filter(|v| v.start < end && v.end > start && v.shared && v.prot & PROT_WRITE != 0)
        {
            let Backing::File {
                file, pgoff, size, ..
            } = &v.backing
            else {
                continue;
            };
            if file
                .ops()
                .is_ok_and(|o| crate::fs::vfs::memory_backed(o.as_ref()))
            {
                continue;
            }
            let (a, b) = (v.start.max(start), v.end.min(end));
            for (&vpn, pte) in m.ptes.range(a / PAGE..b / PAGE) {
                let file_page = pgoff + (vpn * PAGE - v.start) / PAGE;
                let off = file_page * PAGE;
                if off >= *size {
                    continue;
                }
                let n = (*size - off).min(PAGE) as usize;
                let mut buf = vec![0u8; n];
                self.phys.read(pte.pfn, 0, &mut buf);
                if let Err(e) = file.write_at(off, &buf) {
                    crate::log::warn(&format!("writing back a shared mapping failed: {e}"));
                    break;
                }
            }
        }
    }

    /// msync: write back shared file pages in the range.
    pub fn sync_range(&self, start: u64, end: u64) {
        let m = self.lock();
        self.write_back_locked(&m, start, end);
    }

    /// Removes every mapping in `[start, end)`: VMAs, pages, host mappings.
    fn unmap_locked(&self, m: &mut MmInner, start: u64, end: u64) {
        self.patch_invalidate(m, start, end, false);
        self.write_back_locked(m, start, end);
        let removed = m.vmas.remove_range(start, end);
        if removed.is_empty() {
            return;
        }
        let vpns: Vec<u64> = m
            .ptes
            .range(start / PAGE..end / PAGE)
            .map(|(&k, _)| k)
            .collect();
        let mut frames = Vec::with_capacity(vpns.len());
        for vpn in vpns {
            if let Some(p) = m.ptes.remove(&vpn) {
                frames.push(p.pfn);
            }
        }
        for v in &removed {
            m.ops.push(HostOp::Unmap {
                addr: v.start,
                len: v.len(),
            });
        }
        m.frees.extend(frames);
        // Files this space no longer maps leave the reverse map.
        let mut gone: Vec<(u64, u64)> = removed
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::File { key, .. } => Some(*key),
                _ => None,
            })
            .collect();
        if !gone.is_empty() {
            let left = m.file_keys();
            gone.retain(|k| !left.contains(k));
            gone.dedup();
            rmap::unregister(self.me.as_ptr() as usize, &gone);
        }
    }

    /// Fills `[start, end)` (inside one VMA) with frames where it has none.
    fn populate(&self, m: &mut MmInner, start: u64, end: u64) -> KResult<()> {
        let Some(vma) = m.vmas.find(start).cloned() else {
            return error!(EFAULT);
        };
        let end = end.min(vma.end);
        match &vma.backing {
            Backing::Anon => {
                // The runs of missing pages: the gaps between the entries
                // there are (one walk, not a lookup per page).
                let mut gaps = Vec::new();
                let mut from = start;
                for &vpn in m
                    .ptes
                    .range(start / PAGE..end.div_ceil(PAGE))
                    .map(|(k, _)| k)
                {
                    if vpn * PAGE > from {
                        gaps.push((from, vpn * PAGE));
                    }
                    from = (vpn + 1) * PAGE;
                }
                if from < end {
                    gaps.push((from, end));
                }
                for (mut at, run_end) in gaps {
                    while at < run_end {
                        let Some((pfn, n)) = self.phys.alloc_run((run_end - at) / PAGE) else {
                            crate::log::warn("out of guest memory (raise mem=)");
                            return error!(ENOMEM);
                        };
                        for i in 0..n {
                            m.ptes.insert(
                                at / PAGE + i,
                                Pte {
                                    pfn: pfn + i,
                                    cow: false,
                                },
                            );
                        }
                        m.ops.push(HostOp::Map {
                            addr: at,
                            len: n * PAGE,
                            prot: host_prot(vma.prot, false),
                            pfn,
                        });
                        at += n * PAGE;
                    }
                }
            }
            Backing::Special { map, pgoff } => {
                let mut at = start;
                while at < end {
                    let vpn = at / PAGE;
                    let Some(&pfn) = map.pfns.get((pgoff + (at - vma.start) / PAGE) as usize)
                    else {
                        break; // beyond the object: SIGBUS on access
                    };
                    if let std::collections::btree_map::Entry::Vacant(e) = m.ptes.entry(vpn) {
                        self.phys.get(pfn);
                        e.insert(Pte { pfn, cow: true });
                        m.ops.push(HostOp::Map {
                            addr: at,
                            len: PAGE,
                            prot: host_prot(vma.prot, true),
                            pfn,
                        });
                    }
                    at += PAGE;
                }
            }
            Backing::File {
                file,
                pgoff,
                key,
                size,
            } => {
                let cache = &crate::kernel().page_cache;
                let ops = file.ops().ok().cloned();
                // Memory-backed files (tmpfs) hand out their own frames;
                // others go through the page cache.
                let live_size = if ops
                    .as_ref()
                    .is_some_and(|o| crate::fs::vfs::memory_backed(o.as_ref()))
                {
                    file.size().unwrap_or(*size)
                } else {
                    *size
                };
                let mut at = start;
                while at < end {
                    let vpn = at / PAGE;
                    if m.ptes.contains_key(&vpn) {
                        at += PAGE;
                        continue;
                    }
                    let file_page = pgoff + (at - vma.start) / PAGE;
                    if file_page * PAGE >= live_size {
                        break; // beyond EOF: SIGBUS on access
                    }
                    // A hole gets the file's own page, whatever the
                    // mapping's protection, as shmem fills it on a read
                    // fault: a private zero page in its place would part
                    // ways with the file — a read-only shared mapping
                    // made writable later (mprotect), or the file written
                    // through another mapping or write(2), would no
                    // longer show the same bytes. (A nested ruml maps
                    // its guests' fresh frames read-only first when they
                    // fork: their memory and the inner kernel's view of
                    // it parted, and three levels crashed.)
                    let own = ops.as_ref().and_then(|o| o.page_frame(file_page, true));
                    let (pfn, private_copy) = match own {
                        None => {
                            let ahead = (end - at) / PAGE;
                            (cache.get_page_ahead(file, *key, file_page, ahead)?, false)
                        }
                        Some(Ok(pfn)) => (pfn, false),
                        // A hole in a private or read-only mapping reads
                        // as zeros: a fresh private page.
                        Some(Err(crate::errno::Errno::ENOENT)) => {
                            let Some(pfn) = self.phys.alloc() else {
                                return error!(ENOMEM);
                            };
                            (pfn, true)
                        }
                        Some(Err(e)) => return Err(e),
                    };
                    let cow = !vma.shared && !private_copy;
                    m.ptes.insert(vpn, Pte { pfn, cow });
                    m.ops.push(HostOp::Map {
                        addr: at,
                        len: PAGE,
                        prot: host_prot(vma.prot, cow),
                        pfn,
                    });
                    at += PAGE;
                }
            }
        }
        Ok(())
    }

    /// Fault-around for files, as Linux's `filemap_map_pages`: maps the
    /// pages of `[start, end)` (inside one file VMA) whose frames are at
    /// hand — in the page cache, or a memory-backed file's own — without
    /// reading anything or allocating; the rest fault as before. Each
    /// page mapped here is one trap fewer (a round trip to the stub and
    /// back), for one lookup.
    fn map_cached(&self, m: &mut MmInner, start: u64, end: u64) {
        let Some(vma) = m.vmas.find(start).cloned() else {
            return;
        };
        let Backing::File {
            file,
            pgoff,
            key,
            size,
        } = &vma.backing
        else {
            return;
        };
        let cache = &crate::kernel().page_cache;
        let ops = file.ops().ok().cloned();
        let memory_backed = ops
            .as_ref()
            .is_some_and(|o| crate::fs::vfs::memory_backed(o.as_ref()));
        let live_size = if memory_backed {
            file.size().unwrap_or(*size)
        } else {
            *size
        };
        let end = end.min(vma.end);
        let mut at = start.max(vma.start);
        while at < end {
            let vpn = at / PAGE;
            let file_page = pgoff + (at - vma.start) / PAGE;
            if file_page * PAGE >= live_size {
                break;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = m.ptes.entry(vpn) {
                let pfn = if memory_backed {
                    ops.as_ref()
                        .and_then(|o| o.page_frame(file_page, false))
                        .and_then(|r| r.ok())
                } else {
                    cache.lookup(*key, file_page)
                };
                if let Some(pfn) = pfn {
                    let cow = !vma.shared;
                    e.insert(Pte { pfn, cow });
                    m.ops.push(HostOp::Map {
                        addr: at,
                        len: PAGE,
                        prot: host_prot(vma.prot, cow),
                        pfn,
                    });
                }
            }
            at += PAGE;
        }
    }

    /// Maps what of `[start, start+len)` is at hand without I/O (see
    /// [`Mm::map_cached`]): exec does it for each segment it loads, so a
    /// program whose pages are cached starts without a fault for each.
    pub fn map_ahead_cached(&self, start: u64, len: u64) {
        let mut m = self.lock();
        let end = start.saturating_add(len);
        let mut at = start;
        while at < end {
            let Some(vend) = m.vmas.find(at).map(|v| v.end) else {
                break;
            };
            self.map_cached(&mut m, at, end.min(vend));
            at = vend;
        }
    }

    /// Gives the private pages of `[start, start+len)` their own copies
    /// now, as a write to each would (exec does it for the data segments
    /// it loads: the program writes nearly all of them at once, and each
    /// first write would otherwise be a fault). EFAULT where unmapped.
    pub fn prefault_write(&self, start: u64, len: u64) -> KResult<()> {
        let mut m = self.lock();
        let mut at = page_down(start);
        let end = start.saturating_add(len);
        while at < end {
            // A forced touch copies a shared page, as a write would.
            self.touch(&mut m, at, Access::Force)?;
            at += PAGE;
        }
        Ok(())
    }

    /// Gives the page at `vpn` a private, writable frame.
    fn break_cow(&self, m: &mut MmInner, vpn: u64, vma_prot: u32) -> KResult<Pfn> {
        let Some(pte) = m.ptes.get(&vpn).copied() else {
            return error!(EFAULT);
        };
        if !pte.cow {
            return Ok(pte.pfn);
        }
        let pfn = if self.phys.refcount(pte.pfn) == 1 {
            pte.pfn
        } else {
            let Some(new) = self.phys.alloc() else {
                crate::log::warn("out of guest memory (raise mem=)");
                return error!(ENOMEM);
            };
            self.phys.copy_page(pte.pfn, new);
            m.frees.push(pte.pfn);
            new
        };
        m.ptes.insert(vpn, Pte { pfn, cow: false });
        if pfn == pte.pfn {
            m.ops.push(HostOp::Protect {
                addr: vpn * PAGE,
                len: PAGE,
                prot: host_prot(vma_prot, false),
            });
        } else {
            m.ops.push(HostOp::Map {
                addr: vpn * PAGE,
                len: PAGE,
                prot: host_prot(vma_prot, false),
                pfn,
            });
        }
        Ok(pfn)
    }

    /// Grows a stack VMA down to cover `addr`, if one lies just above.
    fn grow_stack(&self, m: &mut MmInner, addr: u64) -> bool {
        let Some(v) = m.vmas.next_after(addr).cloned() else {
            return false;
        };
        if !v.growsdown || v.start <= addr {
            return false;
        }
        let new_start = page_down(addr);
        if v.end - new_start > self.limit_stack() || m.vmas.overlaps(new_start, v.start) {
            return false;
        }
        // Linux's stack guard gap: a stack does not grow to within
        // 256 pages of an accessible mapping below it.
        if let Some(prev) = m.vmas.prev_before(new_start) {
            if !prev.growsdown
                && prev.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
                && new_start - prev.end < STACK_GUARD_GAP
            {
                return false;
            }
        }
        let total: u64 = m.vmas.iter().map(|v| v.len()).sum();
        if total.saturating_add(v.start - new_start) > self.limit_as() {
            return false;
        }
        let mut nv = v.clone();
        nv.start = new_start;
        nv.end = v.start;
        m.vmas.insert(nv);
        true
    }

    /// The frame behind one guest page, as a guest access would find it:
    /// filled if missing, copied if a write hits a shared page.
    fn touch(&self, m: &mut MmInner, addr: u64, access: Access) -> KResult<Pfn> {
        let vpn = addr / PAGE;
        if m.vmas.find(addr).is_none() && !self.grow_stack(m, addr) {
            return error!(EFAULT);
        }
        let Some(vma) = m.vmas.find(addr).cloned() else {
            return error!(EFAULT);
        };
        let ok = match access {
            Access::Read => vma.prot & PROT_READ != 0,
            Access::Write => vma.prot & PROT_WRITE != 0,
            // Not even the kernel writes into a special mapping that may
            // never be writable (the vvar page is one set of frames).
            Access::Force => match &vma.backing {
                Backing::Special { map, .. } => map.max_prot & PROT_WRITE != 0,
                _ => true,
            },
            Access::DebugRead => true,
            Access::DebugWrite => match &vma.backing {
                Backing::Special { map, .. } => !vma.shared && map.max_prot & PROT_WRITE != 0,
                _ => !vma.shared || vma.prot & PROT_WRITE != 0,
            },
        };
        if !ok {
            return error!(EFAULT);
        }
        if !m.ptes.contains_key(&vpn) {
            self.fill_around(m, &vma, addr)?;
        }
        let Some(pte) = m.ptes.get(&vpn).copied() else {
            return error!(EFAULT);
        };
        if !matches!(access, Access::Read | Access::DebugRead) && pte.cow {
            return self.break_cow(m, vpn, vma.prot);
        }
        Ok(pte.pfn)
    }

    /// The range to fill around a fault at `addr`. For anonymous memory
    /// (areas larger than [`MAP_AHEAD_MAX`]; smaller ones are mapped
    /// whole at mmap), fault-around as Linux's transparent huge pages: a
    /// fault that continues the previous window of this address space
    /// (just past its end, or just below its start for a stack growing
    /// down) gets the aligned 2 MiB around it ([`ANON_FAULT_PAGES`]), any
    /// other fault the aligned [`ANON_FAULT_FIRST_PAGES`] — so a
    /// sequential first touch costs one trap per 2 MiB, and a sparse touch
    /// of a huge area (MAP_NORESERVE, a hash table) takes 64 KiB of
    /// guest memory per fault, not 2 MiB. Frames are backed lazily by the
    /// host: a page mapped ahead costs no host memory until touched. Files,
    /// whose pages must be read in, fill [`FAULT_CHUNK_PAGES`]. Always
    /// within the VMA.
    fn fault_window(&self, m: &MmInner, vma: &Vma, addr: u64) -> (u64, u64) {
        let pages = match &vma.backing {
            Backing::Anon => self.anon_window_pages(m, addr),
            Backing::File { file, .. } if shmem::is_object(file) => self.anon_window_pages(m, addr),
            _ => FAULT_CHUNK_PAGES,
        };
        let chunk = pages * PAGE;
        let lo = (addr & !(chunk - 1)).max(vma.start);
        let hi = ((addr & !(chunk - 1)) + chunk).min(vma.end);
        (lo, hi)
    }

    /// The fault window's size in pages for anonymous memory (and shared
    /// anonymous objects, mm::shmem): see [`Mm::fault_window`].
    fn anon_window_pages(&self, m: &MmInner, addr: u64) -> u64 {
        let page = page_down(addr);
        let (plo, phi) = m.anon_window;
        if phi > plo && (page == phi || page + PAGE == plo) {
            ANON_FAULT_PAGES
        } else {
            ANON_FAULT_FIRST_PAGES
        }
    }

    /// Fills the window around a fault at `addr` in `vma` (see
    /// [`Mm::fault_window`]). Guest memory nearly used up fails the
    /// window, not the fault: then only the faulting page is filled.
    fn fill_around(&self, m: &mut MmInner, vma: &Vma, addr: u64) -> KResult<()> {
        let (lo, hi) = self.fault_window(m, vma, addr);
        // A fault that continues the previous window: the guest is
        // touching this memory in order, so the host pages of the new
        // window are worth making now, off the guest's path (see
        // `PhysMem::back_ahead`). Private anonymous memory only: its
        // frames are fresh and this space's own.
        let sequential = matches!(vma.backing, Backing::Anon)
            && self.anon_window_pages(m, addr) == ANON_FAULT_PAGES;
        let queued = m.ops.len();
        let r = self.populate(m, lo, hi);
        if sequential && r.is_ok() {
            // Only the frames this fill allocated (fresh from the free
            // list, so never backed before): the host clears a frame it
            // is asked to back a second time and then counts it resident.
            let runs: Vec<(Pfn, u64)> = m.ops[queued..]
                .iter()
                .filter_map(|op| match *op {
                    HostOp::Map { pfn, len, .. } => Some((pfn, len / PAGE)),
                    _ => None,
                })
                .collect();
            self.phys.back_ahead(&runs);
        }
        let anon = match &vma.backing {
            Backing::Anon => true,
            Backing::File { file, .. } => shmem::is_object(file),
            Backing::Special { .. } => false,
        };
        if anon {
            m.anon_window = (lo, hi);
            if r.is_err() {
                if m.ptes.contains_key(&(addr / PAGE)) {
                    return Ok(());
                }
                return self.populate(m, page_down(addr), page_down(addr) + PAGE);
            }
        }
        r
    }

    /// Resolves a guest fault at `addr` (from a SIGSEGV the host reported),
    /// or says which signal the guest gets. `Ok(true)` when it changed
    /// the page (filled it, or gave it its own copy: a write to a page
    /// another thread's fork shared again faults again, legitimately, for
    /// each fork), `Ok(false)` when there was nothing to change (the
    /// host's mapping is still on its way: retry).
    pub fn handle_fault(&self, addr: u64, host_code: i32) -> Result<bool, FaultSignal> {
        let mut m = self.lock();
        let segv = |code| FaultSignal {
            signo: 11,
            code,
            addr,
        };
        if addr >= task_size() {
            return Err(segv(SEGV_MAPERR));
        }
        if m.vmas.find(addr).is_none() && !self.grow_stack(&mut m, addr) {
            return Err(segv(SEGV_MAPERR));
        }
        let Some(vma) = m.vmas.find(addr).cloned() else {
            return Err(segv(SEGV_MAPERR));
        };
        if vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
            return Err(segv(SEGV_ACCERR));
        }
        let vpn = addr / PAGE;
        match m.ptes.get(&vpn).copied() {
            None => {
                if let Backing::File {
                    file, pgoff, size, ..
                } = &vma.backing
                {
                    let memory_backed = file
                        .ops()
                        .is_ok_and(|o| crate::fs::vfs::memory_backed(o.as_ref()));
                    let size = if memory_backed {
                        file.size().unwrap_or(*size)
                    } else {
                        *size
                    };
                    let file_page = pgoff + (addr - vma.start) / PAGE;
                    if file_page * PAGE >= size {
                        return Err(FaultSignal {
                            signo: 7,
                            code: BUS_ADRERR,
                            addr,
                        });
                    }
                }
                self.fill_around(&mut m, &vma, addr)
                    .map_err(|_| FaultSignal {
                        signo: 7,
                        code: BUS_ADRERR,
                        addr,
                    })?;
                if matches!(vma.backing, Backing::File { .. }) {
                    let around = FAULT_AROUND_PAGES * PAGE;
                    let a = addr & !(around - 1);
                    self.map_cached(&mut m, a.max(vma.start), a.saturating_add(around));
                }
                Ok(true)
            }
            // A present page faulted: a write to a shared page is the only
            // access we can fix; anything else violates the protection.
            Some(pte) if pte.cow && vma.prot & PROT_WRITE != 0 && host_code == SEGV_ACCERR => {
                self.break_cow(&mut m, vpn, vma.prot)
                    .map_err(|_| FaultSignal {
                        signo: 7,
                        code: BUS_ADRERR,
                        addr,
                    })?;
                Ok(true)
            }
            // Present here but not (yet) in the host: another thread's
            // changes were still being applied. Retry; the task loop gives
            // up after a few repeats.
            Some(_) if host_code == SEGV_MAPERR => Ok(false),
            Some(pte) if !pte.cow && vma.prot & PROT_WRITE != 0 && host_code == SEGV_ACCERR => {
                Ok(false)
            }
            Some(_) => Err(segv(SEGV_ACCERR)),
        }
    }

    /// The x86 page-fault error code of a fault [`Mm::handle_fault`] could
    /// not fix, as Linux puts it in the signal frame's `sigcontext.err`
    /// (its `thread.error_code`). The host does not tell the kernel the
    /// access type, so it is inferred from this address space's own state:
    /// a fault at the instruction pointer (or on the page boundary an
    /// instruction straddles) on a page that may not be executed is a fetch;
    /// any other fault on a present, readable page can only be a write;
    /// a fault on an absent page is reported as a read, so that a program
    /// that maps on demand (as UML does) maps it readable and then sees the
    /// write fault again, now with the write bit.
    pub fn fault_error_code(&self, addr: u64, rip: u64) -> u64 {
        const PF_PROT: u64 = 1;
        const PF_WRITE: u64 = 2;
        const PF_USER: u64 = 4;
        const PF_INSTR: u64 = 16;
        let m = self.lock();
        let vma_prot = m.vmas.find(addr).map_or(0, |v| v.prot);
        let present = vma_prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
            && m.ptes.contains_key(&(addr / PAGE));
        let mut err = PF_USER | if present { PF_PROT } else { 0 };
        let fetch = addr == rip || (addr > rip && addr - rip < 16 && addr.is_multiple_of(PAGE));
        if fetch && (!present || vma_prot & PROT_EXEC == 0) {
            err |= PF_INSTR;
        } else if present && vma_prot & PROT_READ != 0 {
            err |= PF_WRITE;
        }
        err
    }

    fn copy_user(
        &self,
        addr: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(Pfn, usize, usize, usize),
    ) -> KResult<()> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len as u64).ok_or(crate::errno!(EFAULT))?;
        if end > task_size() {
            return error!(EFAULT);
        }
        let mut m = self.lock();
        let mut at = addr;
        let mut done = 0usize;
        while at < end {
            let pfn = self.touch(&mut m, at, access)?;
            let off = (at % PAGE) as usize;
            let n = ((PAGE as usize) - off).min((end - at) as usize);
            f(pfn, off, done, n);
            at += n as u64;
            done += n;
        }
        Ok(())
    }

    /// The frames behind `len` bytes of the guest buffers `segs`, from
    /// `skip` bytes in, as a guest access would find them (`write`: made
    /// private and writable, for a read(2) into them), each with a
    /// reference held by the result. EFAULT if any byte is inaccessible.
    pub fn pin_user(
        &self,
        segs: &[(u64, usize)],
        mut skip: usize,
        len: usize,
        write: bool,
    ) -> KResult<userframes::UserFrames> {
        let access = if write { Access::Write } else { Access::Read };
        let mut out = userframes::UserFrames::new(self.phys.clone());
        let mut m = self.lock();
        for &(base, seg_len) in segs {
            if out.len() >= len {
                break;
            }
            if skip >= seg_len {
                skip -= seg_len;
                continue;
            }
            let n = (seg_len - skip).min(len - out.len());
            let start = base.checked_add(skip as u64).ok_or(crate::errno!(EFAULT))?;
            let end = start.checked_add(n as u64).ok_or(crate::errno!(EFAULT))?;
            if end > task_size() {
                return error!(EFAULT);
            }
            let mut at = start;
            while at < end {
                let pfn = self.touch(&mut m, at, access)?;
                let off = (at % PAGE) as usize;
                let k = ((PAGE as usize) - off).min((end - at) as usize);
                self.phys.get(pfn);
                out.push(pfn, off, k);
                at += k as u64;
            }
            skip = 0;
        }
        Ok(out)
    }

    /// How many bytes from `addr` (up to `len`) the guest could write (or,
    /// with `write` false, read), without touching them: a read(2) checks
    /// this first so that a bad buffer does not consume data.
    pub fn accessible_len(&self, addr: u64, len: usize, write: bool) -> usize {
        let m = self.lock();
        let need = if write { PROT_WRITE } else { PROT_READ };
        let end = addr.saturating_add(len as u64).min(task_size());
        let mut at = addr;
        while at < end {
            let v = match m.vmas.find(at) {
                Some(v) => v.clone(),
                None => {
                    // Stack growth happens on touch: count what may grow.
                    match m.vmas.next_after(at) {
                        Some(v) if v.growsdown && v.end - page_down(at) <= STACK_LIMIT => v.clone(),
                        _ => break,
                    }
                }
            };
            if v.prot & need == 0 {
                break;
            }
            at = v.end.min(end);
        }
        (at.saturating_sub(addr)) as usize
    }

    /// Atomically applies `f` to the aligned 32-bit guest word at `addr`
    /// (as the guest's own atomic instructions would), returning the old
    /// value; `f` returning None leaves the word alone. EFAULT if the word
    /// is not writable.
    pub fn atomic_update_u32(
        &self,
        addr: u64,
        mut f: impl FnMut(u32) -> Option<u32>,
    ) -> KResult<u32> {
        if !addr.is_multiple_of(4) {
            return error!(EINVAL);
        }
        let pfn = {
            let mut m = self.lock();
            self.touch(&mut m, addr, Access::Write)?
        };
        // SAFETY: the word lies inside one physmem frame that this mm maps
        // writable; guest threads access it concurrently only atomically
        // (the futex protocol), and AtomicU32 matches their accesses.
        let word = unsafe {
            &*(self.phys.page_ptr(pfn).add((addr % PAGE) as usize)
                as *const std::sync::atomic::AtomicU32)
        };
        let mut cur = word.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            let Some(new) = f(cur) else { return Ok(cur) };
            match word.compare_exchange(
                cur,
                new,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(cur),
                Err(now) => cur = now,
            }
        }
    }

    /// The futex key of `addr`: shared mappings are keyed by the physical
    /// frame (so processes sharing the memory meet), everything else by
    /// (address space, address).
    pub fn futex_key(&self, addr: u64, private: bool) -> KResult<(usize, u64)> {
        let me = self as *const Mm as usize;
        if private {
            return Ok((me, addr));
        }
        let mut m = self.lock();
        let shared = m.vmas.find(addr).is_some_and(|v| v.shared);
        if !shared {
            return Ok((me, addr));
        }
        let pfn = self.touch(&mut m, addr, Access::Read)?;
        Ok((usize::MAX, pfn * PAGE + addr % PAGE))
    }

    /// Copies guest memory into `buf`; EFAULT if any of it is unreadable.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        let phys = self.phys.clone();
        self.copy_user(addr, buf.len(), Access::Read, |pfn, off, done, n| {
            phys.read(pfn, off, &mut buf[done..done + n])
        })
    }

    /// Copies `data` into guest memory; EFAULT if any of it is unwritable.
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> KResult<()> {
        let phys = self.phys.clone();
        self.copy_user(addr, data.len(), Access::Write, |pfn, off, done, n| {
            phys.write(pfn, off, &data[done..done + n])
        })
    }

    /// Writes guest memory regardless of protection (exec's loader).
    pub fn write_bytes_force(&self, addr: u64, data: &[u8]) -> KResult<()> {
        let phys = self.phys.clone();
        self.copy_user(addr, data.len(), Access::Force, |pfn, off, done, n| {
            phys.write(pfn, off, &data[done..done + n])
        })
    }

    /// A debugger's access (ptrace PEEK/POKE, /proc/PID/mem): reads into
    /// `buf` or, with `data`, writes `data`, with FOLL_FORCE semantics (a
    /// write into read-only private text copies the page). Returns how many
    /// bytes were moved before the first inaccessible one.
    pub fn access_remote(&self, addr: u64, buf: &mut [u8], data: Option<&[u8]>) -> usize {
        // A debugger sees the program as it is: no patched sites.
        self.patch_disable();
        let len = data.map_or(buf.len(), |d| d.len());
        let mut done = 0usize;
        while done < len {
            let at = addr.wrapping_add(done as u64);
            let n = ((PAGE - at % PAGE) as usize).min(len - done);
            let phys = self.phys.clone();
            let r = match data {
                Some(d) => self.copy_user(at, n, Access::DebugWrite, |pfn, off, k, m| {
                    phys.write(pfn, off, &d[done + k..done + k + m])
                }),
                None => {
                    let out = &mut buf[done..done + n];
                    self.copy_user(at, n, Access::DebugRead, |pfn, off, k, m| {
                        phys.read(pfn, off, &mut out[k..k + m])
                    })
                }
            };
            if r.is_err() {
                break;
            }
            done += n;
        }
        done
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the
    /// NUL); ENAMETOOLONG if none ends within `max`.
    pub fn read_cstring(&self, addr: u64, max: usize) -> KResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let n = (PAGE - at % PAGE) as usize;
            let mut chunk = vec![0u8; n];
            self.read_bytes(at, &mut chunk)?;
            if let Some(i) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..i]);
                if out.len() > max {
                    return error!(ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            if out.len() > max {
                return error!(ENAMETOOLONG);
            }
            at += n as u64;
        }
    }

    pub fn read_val<T: Pod>(&self, addr: u64) -> KResult<T> {
        let mut b = vec![0u8; std::mem::size_of::<T>()];
        self.read_bytes(addr, &mut b)?;
        Ok(T::from_bytes(&b))
    }

    pub fn write_val<T: Pod>(&self, addr: u64, v: &T) -> KResult<()> {
        self.write_bytes(addr, v.as_bytes())
    }

    /// Sizes for /proc: (virtual size, resident pages, heap start, heap end,
    /// stack top).
    pub fn stats(&self) -> MmStats {
        let m = self.lock();
        let vsize = m.vmas.iter().map(|v| v.len()).sum();
        let stack = m
            .vmas
            .iter()
            .find(|v| v.name == Some("[stack]"))
            .map(|v| (v.start, v.end))
            .unwrap_or((0, 0));
        let code = m
            .vmas
            .iter()
            .find(|v| v.prot & PROT_EXEC != 0)
            .map(|v| (v.start, v.end))
            .unwrap_or((0, 0));
        MmStats {
            vsize,
            rss_pages: m.ptes.len() as u64,
            brk_start: m.brk_start,
            brk: m.brk,
            stack,
            code,
            arg: m.arg_range,
            env: m.env_range,
        }
    }

    /// The file of each file-backed area, for /proc/PID/maps paths.
    pub fn area_files(&self) -> Vec<(u64, crate::fs::FileRef)> {
        let m = self.lock();
        m.vmas
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::File { file, .. } => Some((v.start, file.clone())),
                Backing::Anon | Backing::Special { .. } => {
                    v.anon_file.as_ref().map(|a| (v.start, a.file.clone()))
                }
            })
            .collect()
    }

    /// Gives the anonymous areas of `[start, end)` the file they were made
    /// from (a private mapping of /dev/zero at page `pgoff`), which
    /// /proc/PID/maps names.
    pub fn set_anon_file(
        &self,
        start: u64,
        end: u64,
        file: crate::fs::FileRef,
        pgoff: u64,
        key: (u64, u64),
    ) {
        let mut m = self.lock();
        m.vmas.update_range(start, end, |v| {
            if matches!(v.backing, Backing::Anon) {
                v.anon_file = Some(vma::AnonFile {
                    file: file.clone(),
                    pgoff: pgoff + (v.start - start) / PAGE,
                    key,
                });
            }
        });
    }

    /// Each file-backed area as (start, end, page offset, file): shmdt
    /// and exit find System V shared memory attachments by it (ipc/shm.rs).
    pub fn file_areas(&self) -> Vec<(u64, u64, u64, crate::fs::FileRef)> {
        let m = self.lock();
        m.vmas
            .iter()
            .filter_map(|v| match &v.backing {
                Backing::File { file, pgoff, .. } => Some((v.start, v.end, *pgoff, file.clone())),
                Backing::Anon | Backing::Special { .. } => None,
            })
            .collect()
    }

    /// Lines of /proc/PID/maps.
    pub fn maps_text(&self) -> String {
        self.maps_text_with(|_| None)
    }

    /// Lines of /proc/PID/maps, naming file areas with `name(start)`.
    pub fn maps_text_with(&self, name: impl Fn(u64) -> Option<Vec<u8>>) -> String {
        let m = self.lock();
        let mut s = String::new();
        for v in m.vmas.iter() {
            let p = |bit, c| if v.prot & bit != 0 { c } else { '-' };
            let (off, dev, ino) = match (&v.backing, &v.anon_file) {
                (Backing::File { pgoff, key, .. }, _) => (pgoff * PAGE, key.0, key.1),
                (Backing::Anon, Some(a)) => (a.pgoff * PAGE, a.key.0, a.key.1),
                (Backing::Anon | Backing::Special { .. }, _) => (0, 0, 0),
            };
            let mut line = format!(
                "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
                v.start,
                v.end,
                p(PROT_READ, 'r'),
                p(PROT_WRITE, 'w'),
                p(PROT_EXEC, 'x'),
                if v.shared { 's' } else { 'p' },
                off,
                (dev >> 8) & 0xfff,
                (dev & 0xff) | ((dev >> 12) & 0xfff00),
                ino
            );
            let has_file = matches!(v.backing, Backing::File { .. }) || v.anon_file.is_some();
            let label = if has_file {
                name(v.start).map(|n| String::from_utf8_lossy(&n).into_owned())
            } else {
                v.name.map(str::to_string)
            };
            if let Some(n) = label {
                // As Linux's seq_pad: the name starts at column 73.
                while line.len() < 73 {
                    line.push(' ');
                }
                line.push_str(&n);
            }
            s.push_str(&line);
            s.push('\n');
        }
        s
    }
}

impl Drop for Mm {
    fn drop(&mut self) {
        {
            let m = self.lock();
            self.write_back_locked(&m, 0, task_size());
            rmap::unregister(self as *const Mm as usize, &m.file_keys());
        }
        let m = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut frames: Vec<Pfn> = m.ptes.values().map(|p| p.pfn).collect();
        frames.extend(m.patch.frames());
        frames.append(&mut m.frees);
        self.phys.put_many(&frames);
    }
}
