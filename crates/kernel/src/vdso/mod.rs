//! The vDSO and its data page (vvar).
//!
//! Every guest address space gets, at exec, two special mappings just above
//! its stack (at a random offset, as Linux places them): `[vvar]`, one
//! read-only page of clock data, and `[vdso]`, the ELF image built from
//! `vdso.c` by the crate's build script. `AT_SYSINFO_EHDR` points at the
//! image; glibc (static and dynamic) finds `__vdso_clock_gettime` and
//! friends there and calls them instead of trapping into the kernel.
//!
//! Both mappings are one set of physmem frames shared by every address
//! space: the kernel allocates them once, holds one reference for ever, and
//! each mapping takes its own (see [`crate::mm::vma::Backing::Special`]).
//!
//! ## The guest clock
//!
//! A guest cannot make host system calls, so the vDSO computes time from
//! the CPU's time-stamp counter and the vvar page:
//! `mono = mono_base + (tsc - tsc_base) * mult >> 32`, with per-clock
//! offsets for REALTIME and BOOTTIME. The kernel's own `clock_gettime`
//! (and `gettimeofday`, `time`) evaluate the very same formula over the
//! same page, so the vDSO and the system call never disagree and
//! CLOCK_MONOTONIC never goes backwards across them.
//!
//! The formula is kept close to the host clock by re-synchronisation
//! ([`sync_if_stale`], after any system call once the page is older than
//! [`SYNC_INTERVAL_NS`]): the new base is the host's clock at that moment
//! or the formula's current value, whichever is later (so time only moves
//! forward), and `mult` is the TSC rate measured against the host clock
//! over the whole time since boot, lowered by a small bias so that between
//! syncs the guest clock runs a hair slower than the host's and each sync
//! moves it forward by at most microseconds. Sleeps are timed by the host
//! clock; since a sleeper's wake-up is a system call that syncs, a guest
//! that sleeps for D always measures at least D (to within the sync's
//! own read latency). Nothing runs on a timer: an idle instance does not
//! wake up to keep the page current.
//!
//! Without an invariant TSC (CPUID 0x80000007 EDX bit 8) the page says so
//! and every vDSO function makes the real system call, which reads the
//! host clock.
//!
//! Writers serialise on a mutex and bracket their stores with the page's
//! sequence counter (odd while writing); the TSC value of a sync is taken
//! after the counter turns odd, so that no reader completes with the old
//! parameters at a later TSC than the new base was computed at.

use std::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ruml_host::{Pfn, PhysMem};

use crate::errno::KResult;
use crate::error;
use crate::mm::vma::{Backing, SpecialMapping, Vma, PROT_EXEC, PROT_READ};
use crate::mm::{Mm, PAGE};
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

/// The image, built by build.rs from vdso.c, vdso.lds and vdso.map.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// How old the vvar page may get before a system call re-synchronises it.
pub const SYNC_INTERVAL_NS: u64 = 1_000_000;

/// vvar flag: the TSC clock is valid.
const VVAR_TSC: u32 = 1;

syscall_table! { pub fn vdso_table;
    GETCPU => sys_getcpu(cpu: UserAddr, node: UserAddr, cache: UserAddr),
}

/// The vvar page as the guest sees it; mirrors `struct vvar` in vdso.c.
/// The kernel touches it only through these atomics.
#[repr(C)]
struct VvarPage {
    seq: AtomicU32,
    flags: AtomicU32,
    tsc_base: AtomicU64,
    mult: AtomicU64,
    mono_base: AtomicU64,
    real_off: AtomicI64,
    boot_off: AtomicI64,
    coarse_res: AtomicU64,
    hres_res: AtomicU64,
}

/// Calibration state, kept by whichever thread syncs (under the mutex).
struct Calib {
    /// The first (tsc, host CLOCK_MONOTONIC ns) sample: the baseline the
    /// TSC rate is measured over.
    tsc0: u64,
    mono0: u64,
}

/// The kernel's one vDSO: its frames and its clock state.
pub struct Vdso {
    phys: Arc<PhysMem>,
    vvar: SpecialMapping,
    /// The data page of address spaces whose process is in a time
    /// namespace with offsets (time/ns.rs): all zero, so its flags say
    /// "no TSC clock" and every vDSO clock function makes the system
    /// call, which applies the namespace's offsets.
    timens_vvar: SpecialMapping,
    image: SpecialMapping,
    /// Whether the TSC clock is used at all.
    tsc_ok: bool,
    /// TSC value of the last sync; read without the lock to decide
    /// whether a sync is due.
    last_sync: AtomicU64,
    /// TSC cycles in [`SYNC_INTERVAL_NS`].
    sync_cycles: AtomicU64,
    writer: Mutex<Calib>,
}

static VDSO: OnceLock<Option<Vdso>> = OnceLock::new();

/// The vDSO, set up on first use (the first exec). None before boot (unit
/// tests) or if guest memory could not hold it.
pub fn get() -> Option<&'static Vdso> {
    if !crate::kernel_booted() {
        return None;
    }
    VDSO.get_or_init(|| Vdso::new(crate::kernel().phys.clone()))
        .as_ref()
}

fn rdtsc() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects; every x86_64 CPU
    // has both.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        let t = std::arch::x86_64::_rdtsc();
        std::arch::x86_64::_mm_lfence();
        t
    }
}

fn host_ns(clock: i32) -> Option<u64> {
    let (s, ns) = ruml_host::clock::gettime(clock).ok()?;
    u64::try_from(s)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns as u64)
}

fn host_res(clock: i32) -> u64 {
    ruml_host::clock::getres(clock)
        .map(|(s, ns)| s as u64 * 1_000_000_000 + ns as u64)
        .unwrap_or(1)
        .max(1)
}

/// A (TSC, host CLOCK_MONOTONIC) pair, the tightest of a few tries.
fn sample() -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64, u64)> = None;
    for _ in 0..7 {
        let a = rdtsc();
        let m = host_ns(1)?;
        let b = rdtsc();
        let width = b.wrapping_sub(a);
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, a + width / 2, m));
        }
    }
    best.map(|(_, t, m)| (t, m))
}

/// Whether the CPU's TSC runs at a constant rate in every power state.
fn invariant_tsc() -> bool {
    let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max < 0x8000_0007 {
        return false;
    }
    let l = std::arch::x86_64::__cpuid(0x8000_0007);
    l.edx & (1 << 8) != 0
}

/// `mult` (ns per cycle, 32.32) from two samples, lowered by the bias.
fn rate(t0: u64, m0: u64, t1: u64, m1: u64) -> Option<u64> {
    let dt = t1.checked_sub(t0).filter(|&d| d > 0)?;
    let dm = m1.checked_sub(m0).filter(|&d| d > 0)?;
    let raw = ((dm as u128) << 32) / dt as u128;
    // 5 ppm, plus twice a sample's uncertainty (~100 ns) over the
    // baseline: the guest clock runs no faster than the host's.
    let bias_ppb = 5_000u128 + 200_000_000_000u128 / dm as u128;
    let m = raw - raw * bias_ppb.min(1_000_000) / 1_000_000_000;
    u64::try_from(m).ok().filter(|&m| m > 0)
}

impl Vdso {
    fn new(phys: Arc<PhysMem>) -> Option<Vdso> {
        let pages = (IMAGE.len() as u64).div_ceil(PAGE);
        let mut image = Vec::with_capacity(pages as usize);
        for i in 0..pages {
            let pfn = phys.alloc()?;
            phys.zero(pfn, 0, PAGE as usize);
            let off = (i * PAGE) as usize;
            let end = (off + PAGE as usize).min(IMAGE.len());
            phys.write(pfn, 0, &IMAGE[off..end]);
            image.push(pfn);
        }
        let vvar_pfn: Pfn = phys.alloc()?;
        phys.zero(vvar_pfn, 0, PAGE as usize);
        let timens_pfn: Pfn = phys.alloc()?;
        phys.zero(timens_pfn, 0, PAGE as usize);
        let tsc_ok = invariant_tsc();
        let (tsc0, mono0) = sample()?;
        let v = Vdso {
            phys,
            vvar: SpecialMapping {
                pfns: vec![vvar_pfn],
                max_prot: PROT_READ,
            },
            timens_vvar: SpecialMapping {
                pfns: vec![timens_pfn],
                max_prot: PROT_READ,
            },
            image: SpecialMapping {
                pfns: image,
                max_prot: PROT_READ | PROT_EXEC | crate::mm::vma::PROT_WRITE,
            },
            tsc_ok,
            last_sync: AtomicU64::new(0),
            sync_cycles: AtomicU64::new(0),
            writer: Mutex::new(Calib { tsc0, mono0 }),
        };
        let page = v.page();
        page.coarse_res.store(host_res(5), Ordering::Relaxed);
        page.hres_res.store(host_res(1), Ordering::Relaxed);
        if tsc_ok {
            // A first rate over a few milliseconds; syncs refine it over
            // an ever longer baseline.
            std::thread::sleep(std::time::Duration::from_millis(5));
            v.sync();
        }
        Some(v)
    }

    fn page(&self) -> &VvarPage {
        // SAFETY: the vvar frame is held by this Vdso for the kernel's
        // lifetime; physmem's mapping in the kernel lives as long; the
        // kernel accesses the page only through VvarPage's atomics, which
        // fit in one page and are naturally aligned at the frame's start.
        unsafe { &*(self.phys.page_ptr(self.vvar.pfns[0]) as *const VvarPage) }
    }

    /// Re-synchronises the page with the host clock (see the module
    /// documentation). Skips if another thread is doing it.
    fn sync(&self) {
        let Ok(calib) = self.writer.try_lock() else {
            return;
        };
        self.sync_with(&calib);
    }

    /// Re-synchronises now, waiting for a sync in progress (after the
    /// instance's clock was set, the page must show the new time before
    /// the setter returns).
    fn resync(&self) {
        if !self.tsc_ok {
            return;
        }
        let calib = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.sync_with(&calib);
    }

    fn sync_with(&self, calib: &Calib) {
        let p = self.page();
        let seq = p.seq.load(Ordering::Relaxed);
        p.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let t = rdtsc();
        let (Some(mono), Some(real), Some(boot)) = (host_ns(1), host_ns(0), host_ns(7)) else {
            p.flags.store(0, Ordering::Relaxed);
            p.seq.store(seq.wrapping_add(2), Ordering::Release);
            return;
        };
        let cur = if p.flags.load(Ordering::Relaxed) & VVAR_TSC != 0 {
            Some(eval(
                t,
                p.tsc_base.load(Ordering::Relaxed),
                p.mult.load(Ordering::Relaxed),
                p.mono_base.load(Ordering::Relaxed),
            ))
        } else {
            None
        };
        let Some(mult) = rate(calib.tsc0, calib.mono0, t, mono) else {
            p.seq.store(seq.wrapping_add(2), Ordering::Release);
            return;
        };
        let base = cur.map_or(mono, |c| c.max(mono));
        p.tsc_base.store(t, Ordering::Relaxed);
        p.mult.store(mult, Ordering::Relaxed);
        p.mono_base.store(base, Ordering::Relaxed);
        // The instance's wall clock: the host's plus its own setting.
        p.real_off.store(
            (real as i64 - mono as i64).saturating_add(crate::time::adjust::offset_at(mono)),
            Ordering::Relaxed,
        );
        p.boot_off
            .store(boot as i64 - mono as i64, Ordering::Relaxed);
        p.flags.store(VVAR_TSC, Ordering::Relaxed);
        p.seq.store(seq.wrapping_add(2), Ordering::Release);
        // Cycles per sync interval: interval * 2^32 / mult.
        let cycles = ((SYNC_INTERVAL_NS as u128) << 32) / mult as u128;
        self.sync_cycles
            .store(u64::try_from(cycles).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.last_sync.store(t, Ordering::Relaxed);
    }

    /// One clock in ns by the page's formula, or None if the page does not
    /// serve it (the host clock does).
    fn read(&self, clock: i32) -> Option<u64> {
        let p = self.page();
        let mut spins = 0u32;
        loop {
            let seq = p.seq.load(Ordering::Acquire);
            if seq & 1 != 0 {
                spins += 1;
                if spins > 1000 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            if p.flags.load(Ordering::Relaxed) & VVAR_TSC == 0 {
                return None;
            }
            let (base, mult, mono) = (
                p.tsc_base.load(Ordering::Relaxed),
                p.mult.load(Ordering::Relaxed),
                p.mono_base.load(Ordering::Relaxed),
            );
            let (off, coarse) = match clock {
                0 => (p.real_off.load(Ordering::Relaxed), false),
                1 => (0, false),
                5 => (p.real_off.load(Ordering::Relaxed), true),
                6 => (0, true),
                7 => (p.boot_off.load(Ordering::Relaxed), false),
                _ => return None,
            };
            let res = p.coarse_res.load(Ordering::Relaxed);
            let t = rdtsc();
            fence(Ordering::Acquire);
            if p.seq.load(Ordering::Relaxed) != seq {
                continue;
            }
            let v = (eval(t, base, mult, mono) as i64).checked_add(off)?;
            let v = u64::try_from(v).ok()?;
            return Some(if coarse && res > 1 { v - v % res } else { v });
        }
    }

    /// Syncs if the page is older than [`SYNC_INTERVAL_NS`].
    fn sync_if_stale(&self) {
        if !self.tsc_ok {
            return;
        }
        let last = self.last_sync.load(Ordering::Relaxed);
        if rdtsc().wrapping_sub(last) >= self.sync_cycles.load(Ordering::Relaxed) {
            self.sync();
        }
    }

    /// Maps `[vvar]` at `at` and `[vdso]` right after it into `mm`;
    /// returns the image's address (AT_SYSINFO_EHDR).
    pub fn map_into(&'static self, mm: &Mm, at: u64) -> KResult<u64> {
        let vvar_len = self.vvar.pfns.len() as u64 * PAGE;
        let image_len = self.image.pfns.len() as u64 * PAGE;
        mm.map_area(Vma {
            start: at,
            end: at + vvar_len,
            prot: PROT_READ,
            shared: false,
            growsdown: false,
            backing: Backing::Special {
                map: &self.vvar,
                pgoff: 0,
            },
            name: Some("[vvar]"),
            flags: 0,
            anon_file: None,
        })?;
        let image_at = at + vvar_len;
        mm.map_area(Vma {
            start: image_at,
            end: image_at + image_len,
            prot: PROT_READ | PROT_EXEC,
            shared: false,
            growsdown: false,
            backing: Backing::Special {
                map: &self.image,
                pgoff: 0,
            },
            name: Some("[vdso]"),
            flags: 0,
            anon_file: None,
        })?;
        Ok(image_at)
    }

    /// Bytes the two mappings take.
    /// Gives `mm` the data page for a process in a time namespace with
    /// offsets (`timens`) or the shared clock page (not): the [vvar]
    /// area is replaced in place. Called when a process enters a time
    /// namespace (fork, exec, setns), with no other thread running in
    /// `mm`.
    pub fn join_timens(&'static self, mm: &Mm, timens: bool) {
        let want = if timens {
            &self.timens_vvar
        } else {
            &self.vvar
        };
        let Some((start, end, cur)) = mm.special_area("[vvar]") else {
            return;
        };
        if std::ptr::eq(cur, want) {
            return;
        }
        if mm.munmap(start, end - start).is_err() {
            return;
        }
        let _ = mm.map_area(Vma {
            start,
            end,
            prot: PROT_READ,
            shared: false,
            growsdown: false,
            backing: Backing::Special {
                map: want,
                pgoff: 0,
            },
            name: Some("[vvar]"),
            flags: 0,
            anon_file: None,
        });
    }

    pub fn span(&self) -> u64 {
        (self.vvar.pfns.len() + self.image.pfns.len()) as u64 * PAGE
    }
}

/// `mono + (t - base) * mult >> 32`, as vdso.c computes it.
fn eval(t: u64, base: u64, mult: u64, mono: u64) -> u64 {
    let d = t.saturating_sub(base);
    mono.wrapping_add(((d as u128 * mult as u128) >> 32) as u64)
}

/// After the instance's wall clock changed: the vvar page shows it at once.
pub fn resync() {
    if let Some(Some(v)) = VDSO.get() {
        v.resync();
    }
}

/// Called after every system call: keeps the vvar page close to the host
/// clock while the guest is busy (costs a TSC read when nothing is due).
pub fn sync_if_stale() {
    if let Some(Some(v)) = VDSO.get() {
        v.sync_if_stale();
    }
}

/// A clock the guest reads, in ns, as the vDSO computes it: REALTIME,
/// MONOTONIC, their COARSE variants and BOOTTIME. None when the host clock
/// should be read instead (another clock, or no usable TSC).
pub fn clock_ns(clock: i32) -> Option<u64> {
    let v = get()?;
    if !v.tsc_ok {
        return None;
    }
    v.sync_if_stale();
    v.read(clock)
}

/// CLOCK_REALTIME as guests read it (the vDSO's formula, else the host's
/// clock), as (seconds, nanoseconds): for inode and pipe times, so that a
/// file made just now is never newer than `clock_gettime` says it is.
pub fn realtime() -> (i64, u32) {
    match clock_ns(0) {
        Some(ns) => ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32),
        None => crate::time::now_realtime(),
    }
}

/// The host CPU (and NUMA node) the calling thread runs on, from the
/// limit of the host's per-CPU segment, as the vDSO's getcpu reads it.
pub fn current_cpu() -> Option<(u32, u32)> {
    let mut p: u32 = 0;
    let mut ok: u8 = 0;
    // SAFETY: lsl only reads the segment descriptor's limit into a
    // register and sets ZF; it faults on nothing.
    unsafe {
        std::arch::asm!(
            "lsl {p:e}, {seg:e}",
            "setz {ok}",
            p = inout(reg) p,
            ok = inout(reg_byte) ok,
            seg = in(reg) 0x7bu32,
            options(nomem, nostack)
        );
    }
    (ok != 0).then_some((p & 0xfff, p >> 12))
}

fn sys_getcpu(
    ctx: &mut SyscallContext<'_>,
    cpu: UserAddr,
    node: UserAddr,
    _cache: UserAddr,
) -> KResult<u64> {
    let Some((c, n)) = current_cpu() else {
        return error!(ENOSYS);
    };
    if !cpu.is_null() {
        ctx.mm().write_val(cpu.0, &c)?;
    }
    if !node.is_null() {
        ctx.mm().write_val(node.0, &n)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image is a shared object exporting the LINUX_2.6 symbols glibc
    /// looks up, with no relocations (nothing would apply them).
    #[test]
    fn image_shape() {
        assert_eq!(&IMAGE[..4], b"\x7fELF");
        assert_eq!(IMAGE[4], 2, "64-bit");
        assert_eq!(u16::from_le_bytes([IMAGE[16], IMAGE[17]]), 3, "ET_DYN");
        let has = |s: &[u8]| IMAGE.windows(s.len()).any(|w| w == s);
        for s in [
            &b"__vdso_clock_gettime\0"[..],
            b"__vdso_gettimeofday\0",
            b"__vdso_time\0",
            b"__vdso_getcpu\0",
            b"__vdso_clock_getres\0",
            b"LINUX_2.6\0",
            b"linux-vdso.so.1\0",
        ] {
            assert!(has(s), "{}", String::from_utf8_lossy(s));
        }
        assert!(IMAGE.len() <= 2 * PAGE as usize);
    }

    /// The page's clock against the host's while syncs race with reads
    /// on other threads: never backwards, close to the host's, the coarse
    /// clock never ahead of the fine one.
    #[test]
    fn clock_monotonic_across_syncs() {
        let Ok(phys) = PhysMem::new(1 << 20) else {
            return;
        };
        let Some(v) = Vdso::new(Arc::new(phys)) else {
            panic!("no vDSO in 1 MiB of physmem");
        };
        if !v.tsc_ok {
            assert_eq!(v.read(1), None, "no TSC: the host clock serves");
            return;
        }
        let v = Arc::new(v);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (v, stop) = (v.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    v.sync();
                    n += 1;
                }
                n
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let v = v.clone();
                std::thread::spawn(move || {
                    let mut last = 0u64;
                    for _ in 0..200_000 {
                        let Some(t) = v.read(1) else {
                            panic!("the TSC clock stopped serving");
                        };
                        assert!(t >= last, "went backwards: {last} then {t}");
                        last = t;
                        let c = v.read(6).unwrap_or(0);
                        assert!(c <= v.read(1).unwrap_or(0), "coarse ahead of fine");
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().unwrap_or_else(|_| panic!("a reader failed"));
        }
        stop.store(true, Ordering::Relaxed);
        let syncs = writer.join().unwrap_or(0);
        assert!(syncs > 0);
        let host = host_ns(1).unwrap_or(0);
        let mine = v.read(1).unwrap_or(0);
        assert!(
            host.abs_diff(mine) < 500_000_000,
            "host {host}, page {mine}"
        );
        let host_real = host_ns(0).unwrap_or(0);
        let real = v.read(0).unwrap_or(0);
        assert!(host_real.abs_diff(real) < 500_000_000);
    }

    #[test]
    fn rate_is_biased_slow() {
        // 1 GHz for one second: one ns per cycle, minus the bias.
        let m = rate(0, 0, 1_000_000_000, 1_000_000_000).unwrap_or(0);
        assert!(m < 1 << 32 && m > (1u64 << 32) - (1 << 32) / 10_000);
        assert_eq!(rate(5, 0, 5, 10), None);
        assert_eq!(
            eval(10, 20, 1 << 32, 7),
            7,
            "a TSC before the base reads the base"
        );
        assert_eq!(eval(30, 20, 1 << 32, 7), 17);
    }
}
