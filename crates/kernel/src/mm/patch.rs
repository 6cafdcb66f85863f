//! Patched system-call sites (seccomp backend, `patch=on`; issue #9).
//!
//! A guest system call on the seccomp backend is a host SIGSYS plus a
//! handoff. For the common site shape `mov $nr,%eax; syscall` (`b8 imm32
//! 0f 05`, 7 bytes) the kernel rewrites the site, once it has trapped
//! from it, into `jmp *abs32` (`ff 24 25 abs32`, also 7 bytes), where
//! `abs32` is a slot of the *patch area*, a reserved range of the guest's
//! low 2 GiB ([`AREA`]). The slot holds the address of a small block of
//! code right after it that enters the kernel through the stub's
//! signal-less entry (`jmp *%gs:88`, see `ruml_host::patch`), with the
//! block's own words as the entry's site block: the return address (the
//! instruction after the site) and the number.
//!
//! **Why the area sits at `0x0b0f_0000`.** The last two bytes of `abs32`
//! land where the `syscall` was: with the area's address they are `0f
//! 0b`, `ud2`. A thread that executed the site's `mov` before the rewrite
//! and its `syscall` after it, a branch onto the `syscall`, and a restart
//! (which returns to the `syscall`'s address) all meet `ud2` there, and
//! the kernel runs the system call the `syscall` would have made (number
//! in rax, return past the site): [`Mm::patch_trap`]. No other
//! instruction can ever be decoded there.
//!
//! **How a site is rewritten.** Only in a private (not `MAP_SHARED`),
//! executable, non-writable mapping, file-backed or anonymous: the page
//! is copied into a fresh frame, the copy rewritten, and the copy mapped
//! over the old page in one host mmap (the "page swap"). Guest threads
//! running meanwhile see either the old page or the new one, never a torn
//! instruction, and since no guest thread can write the page nothing is
//! lost by the copy. Other address spaces that shared the frame (fork,
//! the page cache) keep the original. Undoing a patch (below) is the same
//! page swap with the original bytes.
//!
//! **Blocks.** Each patched site has its own 64-byte block, never reused
//! in this address space (a thread may still be inside an old block):
//!
//! | offset | contents |
//! |---|---|
//! | 0 | the address of the code below (`jmp *abs32` reads it) |
//! | 8 | `lahf; seto %al; rdgsbase %rcx; lea 16-24(%rip),%r11; jmp *%gs:88` |
//! | 48 | the return address (site + 7): the entry's site block is block + 16 |
//! | 56 | the system-call number |
//!
//! A thread whose GS base is not the stub's (a guest that set its own
//! with `wrgsbase`) faults or lands somewhere in the block instead of the
//! entry: a signal whose rip lies in a block's code is taken as the
//! block's system call ([`Mm::patch_trap`]). A guest that sets its GS base
//! with arch_prctl should not run patched code at all; see
//! docs/architecture.md, "Patched system-call sites".
//!
//! **What undoes patches.** Any change the guest makes to a range that
//! holds a patched site (mmap over it, munmap, mprotect, mremap,
//! madvise, brk, remap_file_pages) first restores the site's original
//! bytes and drops it from the table; a change over the area itself
//! restores every site and removes the area. A debugger's view is the
//! original program: ptrace attaching to any thread of the space
//! (ATTACH, SEIZE, TRACEME), ptrace PEEK/POKE, /proc/PID/mem and
//! process_vm_readv/writev restore every site and turn patching off for
//! this address space until exec. fork copies the table and the area
//! (private memory); exec starts a fresh address space without either.
//!
//! Locking: the table lives in [`super::MmInner`], under the address
//! space's lock, as the page table it describes.

use std::collections::{BTreeMap, HashSet};

use super::vma::Backing;
use super::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
use super::{host_prot, HostOp, Mm, MmInner, Pte, PAGE};
use ruml_host::Pfn;

/// Where the patch area starts: `abs32` of a slot then ends in `0f 0b`.
pub const AREA: u64 = 0x0b0f_0000;
/// The area's length: 1024 blocks.
pub const AREA_LEN: u64 = 0x1_0000;
const BLOCK: u64 = 64;
const BLOCKS: u16 = (AREA_LEN / BLOCK) as u16;
const PAGES: usize = (AREA_LEN / PAGE) as usize;
/// Sites examined and found unpatchable, remembered so as not to read
/// them again on every call; bounded.
const REJECT_MAX: usize = 4096;
const SIGILL: i32 = 4;

/// One patched site.
#[derive(Clone, Copy, Debug)]
struct Site {
    orig: [u8; 7],
}

/// The patch table of one address space. See the module documentation.
#[derive(Clone, Default)]
pub(super) struct Patch {
    /// Patched sites by address (of the `mov`).
    sites: BTreeMap<u64, Site>,
    /// Every block handed out: (site, number); kept after the site is
    /// undone, since a thread may still be inside the block.
    blocks: Vec<(u64, u32)>,
    /// The area's frames, once allocated.
    pages: [Option<Pfn>; PAGES],
    /// A debugger looked at or attached to this space: no more patching.
    off: bool,
    rejected: HashSet<u64>,
}

/// The code of a block at `blk` (bytes 8..32), and the pointer before it.
fn block_bytes(blk: u64, ret: u64, nr: u32) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&(blk + 8).to_le_bytes());
    let code: [u8; 24] = [
        0x9f, // lahf
        0x0f, 0x90, 0xc0, // seto %al
        0xf3, 0x48, 0x0f, 0xae, 0xc9, // rdgsbase %rcx
        0x4c, 0x8d, 0x1d, 0xf8, 0xff, 0xff, 0xff, // lea -8(%rip),%r11 (= block + 16)
        0x65, 0xff, 0x24, 0x25, 0x58, 0x00, 0x00, 0x00, // jmp *%gs:88
    ];
    b[8..32].copy_from_slice(&code);
    b[48..56].copy_from_slice(&ret.to_le_bytes());
    b[56..60].copy_from_slice(&nr.to_le_bytes());
    b
}

/// Whether patching is on for this instance: `patch=on` on the seccomp
/// backend.
pub fn active() -> bool {
    ruml_host::patch::enabled() && ruml_host::mode() == ruml_host::Mode::Seccomp
}

/// The task loop's view of a trap (task/mod.rs): a host signal from a
/// patched site's `ud2` or from a block's code becomes the system call
/// the site would have made, as if trapped at the end of the site.
pub fn fixup_trap(
    task: &crate::task::Task,
    regs: &mut ruml_host::Registers,
    trap: ruml_host::Trap,
) -> ruml_host::Trap {
    let ruml_host::Trap::Signal(info) = trap else {
        return trap;
    };
    if !active() {
        return trap;
    }
    match task.mm().patch_trap(info.signo, regs.rip, regs.rax) {
        Some((nr, ret)) => {
            if crate::log::strace_enabled() {
                eprintln!(
                    "[{}] --- host signal {} at rip {:#x}: the patched site's call {nr}",
                    task.tid(),
                    info.signo,
                    regs.rip
                );
            }
            if regs.gs_base != 0 {
                task.mm().patch_disable();
            }
            regs.orig_rax = nr;
            regs.rax = nr;
            regs.rip = ret;
            ruml_host::Trap::Syscall
        }
        None => trap,
    }
}

/// After a system-call trap of an untraced task: patch its site.
/// A thread with a GS base of its own (set with `wrgsbase`) turns
/// patching off for its address space instead: patched sites reach the
/// stub through the GS base.
pub fn after_trap(task: &crate::task::Task, regs: &ruml_host::Registers) {
    if active() {
        if regs.gs_base != 0 {
            task.mm().patch_disable();
        } else {
            task.mm().patch_site(regs.rip);
        }
    }
}

impl Patch {
    /// The copy a fork's child gets: the same table, the area's frames
    /// copied (queued as host mappings in `ops`). False with it if a copy
    /// could not be made: the child must then restore its sites
    /// ([`Mm::patch_disable`]).
    pub(super) fn fork_copy(&self, mm: &Mm, ops: &mut Vec<HostOp>) -> (Patch, bool) {
        let mut c = self.clone();
        c.rejected.clear();
        let mut ok = true;
        for (i, page) in c.pages.iter_mut().enumerate() {
            let Some(pfn) = *page else { continue };
            match mm.phys.alloc() {
                Some(copy) => {
                    mm.phys.copy_page(pfn, copy);
                    ops.push(HostOp::Map {
                        addr: AREA + i as u64 * PAGE,
                        len: PAGE,
                        prot: PROT_READ | PROT_EXEC,
                        pfn: copy,
                    });
                    *page = Some(copy);
                }
                None => {
                    *page = None;
                    ok = false;
                }
            }
        }
        (c, ok)
    }

    /// The frames to release when the address space goes.
    pub(super) fn frames(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.pages.iter().flatten().copied()
    }
}

impl Mm {
    /// Maps the fresh frame of a page with `bytes` written at `addr`,
    /// over the page's current frame (the page swap). False if the page
    /// is not there.
    fn swap_write(&self, m: &mut MmInner, addr: u64, bytes: &[u8]) -> bool {
        let vpn = addr / PAGE;
        let Some(prot) = m.vmas.find(addr).map(|v| v.prot) else {
            return false;
        };
        let Some(pte) = m.ptes.get(&vpn).copied() else {
            return false;
        };
        let Some(new) = self.phys.alloc() else {
            return false;
        };
        self.phys.copy_page(pte.pfn, new);
        self.phys.write(new, (addr % PAGE) as usize, bytes);
        m.frees.push(pte.pfn);
        m.ptes.insert(
            vpn,
            Pte {
                pfn: new,
                cow: false,
            },
        );
        m.ops.push(HostOp::Map {
            addr: vpn * PAGE,
            len: PAGE,
            prot: host_prot(prot, false),
            pfn: new,
        });
        true
    }

    /// Restores the original bytes of the patched sites that overlap
    /// `[start, end)` (only forgets them without `restore`: the range's
    /// pages are about to go) and forgets them; if the range touches the
    /// patch area, restores every site and removes the area. Called
    /// before any change the guest makes to its address space.
    pub(super) fn patch_invalidate(&self, m: &mut MmInner, start: u64, end: u64, restore: bool) {
        // What was found unpatchable in the range may be patchable now.
        m.patch.rejected.clear();
        if m.patch.sites.is_empty() && m.patch.pages.iter().all(Option::is_none) {
            return;
        }
        if start < AREA + AREA_LEN && end > AREA {
            self.patch_restore_all(m);
            let pages: Vec<Pfn> = m.patch.frames().collect();
            m.patch.pages = [None; PAGES];
            m.ops.push(HostOp::Unmap {
                addr: AREA,
                len: AREA_LEN,
            });
            m.frees.extend(pages);
            return;
        }
        let hit: Vec<(u64, Site)> = m
            .patch
            .sites
            .range(start.saturating_sub(6)..end)
            .map(|(&a, &s)| (a, s))
            .collect();
        for (addr, site) in hit {
            m.patch.sites.remove(&addr);
            if restore {
                self.swap_write(m, addr, &site.orig);
            }
        }
    }

    fn patch_restore_all(&self, m: &mut MmInner) {
        let all = std::mem::take(&mut m.patch.sites);
        for (addr, site) in all {
            self.swap_write(m, addr, &site.orig);
        }
    }

    /// A debugger is about to look at this space or trace one of its
    /// threads: restores every patched site and patches no more (until
    /// exec).
    pub fn patch_disable(&self) {
        let mut m = self.lock();
        m.patch.off = true;
        if !m.patch.sites.is_empty() {
            self.patch_restore_all(&mut m);
        }
    }

    /// A system-call trap whose `syscall` ends at `rip`, from a thread no
    /// debugger traces: rewrites the site if it is a `mov $nr,%eax;
    /// syscall` in a private, executable, non-writable mapping.
    pub fn patch_site(&self, rip: u64) {
        let Some(site) = rip.checked_sub(7) else {
            return;
        };
        let mut m = self.lock();
        let p = &m.patch;
        if p.off || p.sites.contains_key(&site) || p.rejected.contains(&site) {
            return;
        }
        let Some(nr) = self.patchable(&m, site) else {
            if m.patch.rejected.len() < REJECT_MAX {
                m.patch.rejected.insert(site);
            }
            return;
        };
        let index = m.patch.blocks.len();
        if index >= BLOCKS as usize {
            return;
        }
        let blk = AREA + index as u64 * BLOCK;
        let page = (index as u64 * BLOCK / PAGE) as usize;
        let pfn = match m.patch.pages[page] {
            Some(pfn) => pfn,
            None => {
                let at = AREA + page as u64 * PAGE;
                if m.vmas.overlaps(at, at + PAGE) {
                    return;
                }
                let Some(pfn) = self.phys.alloc() else {
                    return;
                };
                m.patch.pages[page] = Some(pfn);
                m.ops.push(HostOp::Map {
                    addr: at,
                    len: PAGE,
                    prot: PROT_READ | PROT_EXEC,
                    pfn,
                });
                pfn
            }
        };
        let mut orig = [0u8; 7];
        let Some(pte) = m.ptes.get(&(site / PAGE)).copied() else {
            return;
        };
        self.phys.read(pte.pfn, (site % PAGE) as usize, &mut orig);
        self.phys
            .write(pfn, (blk % PAGE) as usize, &block_bytes(blk, site + 7, nr));
        let abs = (blk as u32).to_le_bytes();
        debug_assert_eq!(abs[2..4], [0x0f, 0x0b]);
        let new = [0xff, 0x24, 0x25, abs[0], abs[1], abs[2], abs[3]];
        if !self.swap_write(&mut m, site, &new) {
            return;
        }
        m.patch.blocks.push((site, nr));
        m.patch.sites.insert(site, Site { orig });
    }

    /// The number of the site at `site` if it may be patched.
    fn patchable(&self, m: &MmInner, site: u64) -> Option<u32> {
        if site / PAGE != (site + 6) / PAGE || site + 7 > super::task_size() {
            return None;
        }
        if site < AREA + AREA_LEN && site + 7 > AREA {
            return None;
        }
        let v = m.vmas.find(site)?;
        if v.shared
            || v.prot & PROT_EXEC == 0
            || v.prot & PROT_WRITE != 0
            || matches!(v.backing, Backing::Special { .. })
        {
            return None;
        }
        let pte = m.ptes.get(&(site / PAGE))?;
        let mut b = [0u8; 7];
        self.phys.read(pte.pfn, (site % PAGE) as usize, &mut b);
        if b[0] != 0xb8 || b[5..7] != [0x0f, 0x05] {
            return None;
        }
        Some(u32::from_le_bytes([b[1], b[2], b[3], b[4]]))
    }

    /// A host signal `signo` at `rip` with `rax`: if it comes from a
    /// patched site's `ud2` (a thread that was between the `mov` and the
    /// `syscall`, a branch onto the `syscall`, a restart) or from a
    /// block's code (a thread whose GS base is not the stub's), the
    /// system call the site would have made: (number, address after the
    /// site).
    pub fn patch_trap(&self, signo: i32, rip: u64, rax: u64) -> Option<(u64, u64)> {
        // Page faults elsewhere (the common signal) take no lock.
        if signo != SIGILL && !(AREA..AREA + AREA_LEN).contains(&rip) {
            return None;
        }
        let m = self.lock();
        if signo == SIGILL {
            if let Some(site) = rip.checked_sub(5) {
                if m.patch.sites.contains_key(&site) {
                    return Some((rax, site + 7));
                }
            }
        }
        if (AREA..AREA + AREA_LEN).contains(&rip) && (rip - AREA) % BLOCK >= 8 {
            let index = ((rip - AREA) / BLOCK) as usize;
            let page = index * BLOCK as usize / PAGE as usize;
            if m.patch.pages[page].is_some() {
                if let Some(&(site, nr)) = m.patch.blocks.get(index) {
                    return Some((u64::from(nr), site + 7));
                }
            }
        }
        None
    }

    /// How many sites are patched now (tests, /proc).
    pub fn patched_sites(&self) -> usize {
        self.lock().patch.sites.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_addresses_end_in_ud2() {
        for i in 0..BLOCKS as u64 {
            let a = ((AREA + i * BLOCK) as u32).to_le_bytes();
            assert_eq!(a[2..4], [0x0f, 0x0b]);
        }
        const { assert!(AREA + AREA_LEN < 1 << 31) };
    }

    #[test]
    fn block_layout() {
        let b = block_bytes(AREA, 0x401007, 110);
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), AREA + 8);
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 0x401007);
        assert_eq!(u32::from_le_bytes(b[56..60].try_into().unwrap()), 110);
        // lea ends at offset 24: r11 = 24 - 8 = 16; +32 and +40 are the
        // entry's return address and number.
        assert_eq!(16 + ruml_host::sstub::BLK_RET, 48);
        assert_eq!(16 + ruml_host::sstub::BLK_NR, 56);
    }
}
