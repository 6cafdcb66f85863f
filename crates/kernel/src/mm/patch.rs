//! Patched system-call sites (seccomp backend, `patch=on`, the default;
//! issue #9).
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
//! **The shapes** ([`Shape`]; what each is worth is measured in
//! docs/benchmarks.md): a site is the `syscall` and the one instruction
//! before it, which the rewrite *displaces*.
//!
//! - `mov $nr,%eax; syscall` (`b8 imm32 0f 05`): as above.
//! - `mov $nr,%rax; syscall` (`48 c7 c0 imm32 0f 05`, 9 bytes): becomes
//!   `jmp *abs32; ud2` (`ff 24 25 abs32 0f 0b`), so the `syscall`'s two
//!   bytes are a `ud2` of their own; a constant-number block, returning
//!   to site + 9. Only a number below 2^31 (the `mov` sign-extends).
//! - `mov 0x8(%rsp),%r9; syscall` (`4c 8b 4c 24 08 0f 05`, glibc's
//!   `syscall(3)`, the number in rax) and `mov $imm32,%edi; syscall`
//!   (`bf imm32 0f 05`, glibc's `open64_nocancel`, the number set
//!   further up): `jmp *abs32` as for the first shape, to a *carrying*
//!   block that executes the displaced instruction, byte for byte, and
//!   enters through the entry's second door (`%gs:88` minus the length
//!   of `ruml_host::sstub::Sites::patch_entry_rax`), which takes the
//!   number from rax. Only these two instructions are carried: neither
//!   depends on rip (so it means the same in the block), neither is a
//!   branch, neither touches the flags, and the block does not move rsp
//!   (the jump pushes nothing), so the load reads the same stack word.
//!   The load can fault; a signal at the carried instruction itself is
//!   reported at the site (rip = the site, nothing done yet), as it
//!   would be natively, and re-running the site re-runs the block.
//!
//! Bytes read backwards can be the tail of a longer instruction, so the
//! byte before a site must be no prefix and the trap that finds it must
//! show the displaced instruction's effect ([`Mm::patchable`]). A site
//! across a page boundary is rewritten only as below ("Sites across two
//! pages").
//!
//! Every other shape stays trapping: an instruction before the
//! `syscall` that is shorter than the 5 bytes the jump needs (`xor
//! %eax,%eax`, `mov %esi,%eax`) would take a branch or a rip-relative
//! instruction with it (glibc's `read`: `cmpb $0,x(%rip); je; xor
//! %eax,%eax; syscall`), and a branch target inside the displaced bytes
//! cannot be ruled out.
//!
//! **Jumping into the middle.** The displaced instruction and the
//! `syscall` are the only instruction starts the site had. A branch onto
//! the first runs the jump (the whole site, as before); a branch onto the
//! `syscall` — and a thread that executed the displaced instruction just
//! before the rewrite, and a restart, which returns to the `syscall`'s
//! address — meets `ud2` (7-byte sites: the last two bytes of `abs32`;
//! 9-byte sites: the `ud2` after the jump), and the kernel makes the
//! call the `syscall` would have made, with the number in rax and the
//! displaced instruction already executed by the thread itself. A
//! branch into the displaced instruction's own bytes was an overlapping
//! instruction before the rewrite too; no compiler emits one.
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
//! **Sites across two pages** ([`Mm::swap_site`]; the argument in full is
//! in docs/architecture.md, "Patched system-call sites"). Two page swaps,
//! two host mmaps one after the other, each complete before the next:
//! threads see the original pair of pages, the rewritten pair, or one
//! page changed. The rewritten first page with the original second would
//! be a `jmp *abs32` reading the `syscall`'s `0f 05` as its address, so:
//! the displaced instruction must lie wholly on the first page (the
//! second holds only `syscall` bytes, which become `ud2`'s); patching
//! swaps the second page first, restoring the first page first; the only
//! pair in between is the displaced instruction then `ud2`, which
//! [`Mm::patch_trap`] takes as the call (also once the site has left the
//! table: a `ud2` that is `0f 05` again, at the end of a block's site);
//! the two swaps never merge into one host mmap; a change that removes
//! either page restores the other.
//!
//! **Blocks.** Each patched site has its own 64-byte block, never reused
//! in this address space (a thread may still be inside an old block):
//!
//! | offset | contents |
//! |---|---|
//! | 0 | the address of the code below (`jmp *abs32` reads it) |
//! | 8 | `lahf; seto %al; rdgsbase %rcx; lea 16-24(%rip),%r11; jmp *%gs:88` |
//! | 48 | the return address (site + 7 or + 9): the entry's site block is block + 16 |
//! | 56 | the system-call number |
//!
//! A carrying block instead has at 8 the displaced instruction (5
//! bytes), then `mov %gs:88,%rcx; lea -K(%rcx),%rcx; lea 16-33(%rip),
//! %r11; jmp *%rcx` (K: the second door's length), and at 56
//! `BLK_NR_IN_RAX`. Nothing in it changes rax or the flags.
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
const SIGTRAP: i32 = 5;

/// The longest site (`mov $nr,%rax; syscall`).
const SITE_MAX: usize = 9;
/// The displaced instruction a carrying block executes.
const CARRY: usize = 5;

/// One patched site.
#[derive(Clone, Copy, Debug)]
struct Site {
    /// Its original bytes (the first `len`).
    orig: [u8; SITE_MAX],
    len: u8,
}

/// A rewritable site: its address, length, the number when the site
/// sets it (None: it is in rax), and the displaced instruction a
/// carrying block executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    site: u64,
    len: u8,
    nr: Option<u32>,
    carry: [u8; CARRY],
}

/// A block handed out: the site it serves (kept after the site is
/// undone, since a thread may still be inside the block).
#[derive(Clone, Copy, Debug)]
struct Block {
    site: u64,
    len: u8,
    nr: Option<u32>,
}

/// What a host signal at a patched site or in a block means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchFix {
    /// The system call the site would have made: number, and the
    /// address after the site.
    Call { nr: u64, ret: u64 },
    /// A signal of the displaced instruction a carrying block executes
    /// (or before it): the signal stands, at the site's address.
    At { rip: u64 },
}

/// The patch table of one address space. See the module documentation.
#[derive(Clone, Default)]
pub(super) struct Patch {
    /// Patched sites by address (of the `mov`).
    sites: BTreeMap<u64, Site>,
    /// Every block handed out, by index; kept after the site is undone,
    /// since a thread may still be inside the block.
    blocks: Vec<Block>,
    /// The area's frames, once allocated.
    pages: [Option<Pfn>; PAGES],
    /// A debugger looked at or attached to this space: no more patching.
    off: bool,
    /// Trap addresses (just past a `syscall`) found unpatchable.
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

/// Where a carrying block's code ends (bytes 8..CARRY_END).
const CARRY_END: u64 = 35;

/// The code of a carrying block at `blk`: the displaced instruction
/// `carry`, then the entry's second door, which takes the number from
/// rax (the guest's, untouched, as are the flags).
fn carry_block_bytes(blk: u64, ret: u64, carry: [u8; CARRY]) -> [u8; 64] {
    let s = ruml_host::sstub::sites();
    // The second door lies this many bytes before `%gs:88`'s (checked
    // to fit a signed byte by the stub's own test).
    let back = (s.patch_entry - s.patch_entry_rax) as u8;
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&(blk + 8).to_le_bytes());
    b[8..13].copy_from_slice(&carry);
    let code: [u8; 22] = [
        0x65,
        0x48,
        0x8b,
        0x0c,
        0x25,
        0x58,
        0x00,
        0x00,
        0x00, // mov %gs:88,%rcx
        0x48,
        0x8d,
        0x49,
        back.wrapping_neg(), // lea -back(%rcx),%rcx
        0x4c,
        0x8d,
        0x1d,
        0xef,
        0xff,
        0xff,
        0xff, // lea -17(%rip),%r11 (= block + 16)
        0xff,
        0xe1, // jmp *%rcx
    ];
    b[13..CARRY_END as usize].copy_from_slice(&code);
    b[48..56].copy_from_slice(&ret.to_le_bytes());
    b[56..60].copy_from_slice(&ruml_host::sstub::BLK_NR_IN_RAX.to_le_bytes());
    b
}

/// The rewritten bytes of a site of `len` bytes whose block is at `blk`:
/// `jmp *blk`, and for a 9-byte site a `ud2` where its `syscall` was.
fn site_bytes(blk: u64, len: u8) -> ([u8; SITE_MAX], usize) {
    let abs = (blk as u32).to_le_bytes();
    debug_assert_eq!(abs[2..4], [0x0f, 0x0b]);
    let b = [0xff, 0x24, 0x25, abs[0], abs[1], abs[2], abs[3], 0x0f, 0x0b];
    (b, len as usize)
}

/// Whether a site of `len` bytes at `site` lies across two pages.
fn crosses(site: u64, len: u8) -> bool {
    site / PAGE != (site + u64::from(len) - 1) / PAGE
}

/// Whether a site of `len` bytes at `site` may be rewritten as far as
/// pages go: on one page, or across two with its displaced instruction
/// (all but the last 2 bytes, the `syscall`) wholly on the first.
fn split_ok(site: u64, len: u8) -> bool {
    !crosses(site, len) || PAGE - site % PAGE >= u64::from(len) - 2
}

/// Whether `b` is an instruction prefix (legacy or REX): a site after
/// one is not what its bytes alone say.
fn is_prefix(b: u8) -> bool {
    matches!(
        b,
        0x26 | 0x2e | 0x36 | 0x3e | 0x40..=0x4f | 0x64..=0x67 | 0xf0 | 0xf2 | 0xf3
    )
}

/// Recognises a rewritable site from the bytes that end at a trap's
/// address `rip`: `b` holds the 9 bytes before it, of which the first
/// `9 - have` could not be read (another page).
fn shape_of(rip: u64, b: &[u8; SITE_MAX], have: usize) -> Option<Shape> {
    if b[7..9] != [0x0f, 0x05] {
        return None;
    }
    let imm = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if have == 9 && b[0..3] == [0x48, 0xc7, 0xc0] && imm(3) < 1 << 31 {
        return Some(Shape {
            site: rip - 9,
            len: 9,
            nr: Some(imm(3)),
            carry: [0; CARRY],
        });
    }
    let mut carry = [0u8; CARRY];
    carry.copy_from_slice(&b[2..7]);
    let nr = match b[2] {
        0xb8 => Some(imm(3)),
        // mov $imm32,%edi
        0xbf => None,
        // mov 0x8(%rsp),%r9
        0x4c if b[2..7] == [0x4c, 0x8b, 0x4c, 0x24, 0x08] => None,
        _ => return None,
    };
    Some(Shape {
        site: rip - 7,
        len: 7,
        nr,
        carry,
    })
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
        Some(PatchFix::At { rip }) => {
            // A single step (TF) into a carrying block would come back
            // here at every try: the guest debugs itself, and sees its
            // original code from now on.
            if regs.gs_base != 0 || info.signo == SIGTRAP {
                task.mm().patch_disable();
            }
            regs.rip = rip;
            trap
        }
        Some(PatchFix::Call { nr, ret }) => {
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
            task.mm().patch_site(regs);
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
    /// Maps the frame `new` over the page of `addr`, with the page's
    /// bytes copied into it and `bytes` written at `addr` (the page
    /// swap). False, with `new` released, if the page is not there.
    fn swap_into(&self, m: &mut MmInner, addr: u64, bytes: &[u8], new: Pfn) -> bool {
        let vpn = addr / PAGE;
        let prot = m.vmas.find(addr).map(|v| v.prot);
        let pte = m.ptes.get(&vpn).copied();
        let (Some(prot), Some(pte)) = (prot, pte) else {
            self.phys.put(new);
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

    /// Writes a site's bytes at `addr` (on one page or across two) by
    /// page swaps, one host mmap per page. Patching (`patching`), both
    /// pages must be there and the second page is swapped first;
    /// restoring, the first is, and a page no longer there is skipped
    /// (module documentation, "Sites across two pages"). False if
    /// nothing was written (patching: a page missing, or no frames).
    fn swap_site(&self, m: &mut MmInner, addr: u64, bytes: &[u8], patching: bool) -> bool {
        let split = (addr / PAGE + 1) * PAGE;
        let k = (split - addr).min(bytes.len() as u64) as usize;
        let mut parts = vec![(addr, &bytes[..k])];
        if k < bytes.len() {
            parts.push((split, &bytes[k..]));
        }
        if patching
            && parts
                .iter()
                .any(|&(a, _)| !m.ptes.contains_key(&(a / PAGE)) || m.vmas.find(a).is_none())
        {
            return false;
        }
        let mut frames: Vec<Pfn> = Vec::with_capacity(2);
        for _ in &parts {
            match self.phys.alloc() {
                Some(f) => frames.push(f),
                None => {
                    self.phys.put_many(&frames);
                    return false;
                }
            }
        }
        let mut plan: Vec<(u64, &[u8], Pfn)> = parts
            .iter()
            .zip(&frames)
            .map(|(&(a, b), &f)| (a, b, f))
            .collect();
        if patching {
            plan.reverse();
        } else if plan.len() == 2 && plan[1].2 == plan[0].2 + 1 {
            // Restoring goes up through neighbouring pages: with
            // neighbouring frames the host would merge the two swaps into
            // one mmap (crates/host/src/ops.rs), and one mmap of two pages
            // promises no order. Frames out of order keep them apart.
            let (x, y) = (plan[0].2, plan[1].2);
            plan[0].2 = y;
            plan[1].2 = x;
        }
        let mut any = false;
        for (a, b, f) in plan {
            any |= self.swap_into(m, a, b, f);
        }
        any
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
            .range(start.saturating_sub(SITE_MAX as u64 - 1)..end)
            .filter(|(&a, s)| a + u64::from(s.len) > start)
            .map(|(&a, &s)| (a, s))
            .collect();
        for (addr, site) in hit {
            m.patch.sites.remove(&addr);
            // A site across two pages is restored even when the range's
            // pages go: the page the change spares must not keep its
            // half of the rewrite.
            if restore || crosses(addr, site.len) {
                self.swap_site(m, addr, &site.orig[..site.len as usize], false);
            }
        }
    }

    fn patch_restore_all(&self, m: &mut MmInner) {
        let all = std::mem::take(&mut m.patch.sites);
        for (addr, site) in all {
            self.swap_site(m, addr, &site.orig[..site.len as usize], false);
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
    /// debugger traces: rewrites the site if it has one of the shapes
    /// (module documentation) in a private, executable, non-writable
    /// mapping.
    pub fn patch_site(&self, regs: &ruml_host::Registers) {
        let rip = regs.rip;
        let mut m = self.lock();
        let p = &m.patch;
        if p.off || p.rejected.contains(&rip) || Self::site_ending_at(&m, rip).is_some() {
            return;
        }
        let Some(shape) = self.patchable(&m, rip) else {
            if m.patch.rejected.len() < REJECT_MAX {
                m.patch.rejected.insert(rip);
            }
            return;
        };
        // Not from this trap (the next one through the site will do).
        if !self.shows_effect(&m, &shape, regs) {
            return;
        }
        let (site, len) = (shape.site, shape.len);
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
        let mut orig = [0u8; SITE_MAX];
        if !self.read_at(&m, site, &mut orig[..len as usize]) {
            return;
        }
        let ret = site + u64::from(len);
        let code = match shape.nr {
            Some(nr) => block_bytes(blk, ret, nr),
            None => carry_block_bytes(blk, ret, shape.carry),
        };
        self.phys.write(pfn, (blk % PAGE) as usize, &code);
        let (new, n) = site_bytes(blk, len);
        if !self.swap_site(&mut m, site, &new[..n], true) {
            return;
        }
        m.patch.blocks.push(Block {
            site,
            len,
            nr: shape.nr,
        });
        m.patch.sites.insert(site, Site { orig, len });
    }

    /// The patched site whose `syscall` ended at `rip`, if any.
    fn site_ending_at(m: &MmInner, rip: u64) -> Option<(u64, Site)> {
        [7u64, 9].into_iter().find_map(|len| {
            let site = rip.checked_sub(len)?;
            let s = m.patch.sites.get(&site)?;
            (u64::from(s.len) == len).then_some((site, *s))
        })
    }

    /// The guest's byte at `addr`, if its page is there.
    fn byte_at(&self, m: &MmInner, addr: u64) -> Option<u8> {
        let pte = m.ptes.get(&(addr / PAGE))?;
        let mut b = [0u8; 1];
        self.phys.read(pte.pfn, (addr % PAGE) as usize, &mut b);
        Some(b[0])
    }

    /// The guest's bytes at `addr` (across pages), if its pages are there.
    fn read_at(&self, m: &MmInner, addr: u64, buf: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buf.len() {
            let a = addr + done as u64;
            let Some(pte) = m.ptes.get(&(a / PAGE)) else {
                return false;
            };
            let off = (a % PAGE) as usize;
            let n = (PAGE as usize - off).min(buf.len() - done);
            self.phys.read(pte.pfn, off, &mut buf[done..done + n]);
            done += n;
        }
        true
    }

    /// The guest's 8 bytes at `addr` (within one page), if there.
    fn u64_at(&self, m: &MmInner, addr: u64) -> Option<u64> {
        if addr % PAGE > PAGE - 8 {
            return None;
        }
        let pte = m.ptes.get(&(addr / PAGE))?;
        let mut b = [0u8; 8];
        self.phys.read(pte.pfn, (addr % PAGE) as usize, &mut b);
        Some(u64::from_le_bytes(b))
    }

    /// Whether the trap's registers show the effect of the displaced
    /// instruction of `shape`: rax is the site's number, edi the `mov`'s
    /// immediate, r9 the stack word at rsp + 8. (Not so when the thread
    /// branched onto the `syscall`, or when the bytes were the tail of
    /// another instruction: see [`Mm::patchable`].)
    fn shows_effect(&self, m: &MmInner, shape: &Shape, regs: &ruml_host::Registers) -> bool {
        let c = shape.carry;
        match shape.nr {
            Some(nr) => regs.orig_rax == u64::from(nr),
            None if c[0] == 0xbf => {
                regs.rdi == u64::from(u32::from_le_bytes([c[1], c[2], c[3], c[4]]))
            }
            None => self.u64_at(m, regs.rsp.wrapping_add(8)) == Some(regs.r9),
        }
    }

    /// The site whose `syscall` ends at `rip`, if it may be patched.
    /// Bytes read backwards from a `syscall` can be the tail of a longer
    /// instruction (`41 b8 imm32` is `mov $imm32,%r8d`, `8b b8 disp32` a
    /// load into edi), so besides the shape the byte before the site
    /// must not be a prefix (legacy or REX), and the site is rewritten
    /// only from a trap whose registers show the displaced instruction's
    /// effect ([`Mm::shows_effect`]).
    fn patchable(&self, m: &MmInner, rip: u64) -> Option<Shape> {
        if rip > super::task_size() || rip < SITE_MAX as u64 {
            return None;
        }
        // The 9 bytes before rip (fewer if the page before rip's is
        // not there).
        let mut b = [0u8; SITE_MAX];
        let mut have = 0;
        while have < SITE_MAX {
            let Some(x) = self.byte_at(m, rip - 1 - have as u64) else {
                break;
            };
            b[SITE_MAX - 1 - have] = x;
            have += 1;
        }
        if have < 7 {
            return None;
        }
        let shape = shape_of(rip, &b, have)?;
        let (site, len) = (shape.site, u64::from(shape.len));
        if is_prefix(self.byte_at(m, site.checked_sub(1)?)?) {
            return None;
        }
        // Across two pages, only with the displaced instruction wholly on
        // the first (module documentation, "Sites across two pages").
        if !split_ok(site, shape.len) {
            return None;
        }

        if site < AREA + AREA_LEN && site + len > AREA {
            return None;
        }
        // Never over another patched site (overlapping instructions).
        if m.patch
            .sites
            .range(site.saturating_sub(SITE_MAX as u64 - 1)..site + len)
            .any(|(&a, s)| a + u64::from(s.len) > site)
        {
            return None;
        }
        for at in [site, site + len - 1] {
            let v = m.vmas.find(at)?;
            if v.shared
                || v.prot & PROT_EXEC == 0
                || v.prot & PROT_WRITE != 0
                || matches!(v.backing, Backing::Special { .. })
            {
                return None;
            }
        }
        Some(shape)
    }

    /// A host signal `signo` at `rip` with `rax`: if it comes from a
    /// patched site's `ud2` (a thread that was between the displaced
    /// instruction and the `syscall`, a branch onto the `syscall`, a
    /// restart) or from a block's code (a thread whose GS base is not
    /// the stub's), the system call the site would have made; if it
    /// comes from the displaced instruction a carrying block executes,
    /// that instruction's signal at the site.
    pub fn patch_trap(&self, signo: i32, rip: u64, rax: u64) -> Option<PatchFix> {
        // Page faults elsewhere (the common signal) take no lock.
        if signo != SIGILL && !(AREA..AREA + AREA_LEN).contains(&rip) {
            return None;
        }
        let m = self.lock();
        if signo == SIGILL {
            // The `ud2` where the `syscall` was: 2 bytes before the end.
            if let Some((site, s)) = Self::site_ending_at(&m, rip + 2) {
                return Some(PatchFix::Call {
                    nr: rax,
                    ret: site + u64::from(s.len),
                });
            }
            // A `ud2` that was a site's and is its `syscall` again (the
            // site restored after the thread met it: a site across two
            // pages is restored one page at a time, the other between
            // its two instructions when it was patched): the `syscall`
            // it is now.
            let mut cur = [0u8; 2];
            if self.read_at(&m, rip, &mut cur)
                && cur == [0x0f, 0x05]
                && m.patch
                    .blocks
                    .iter()
                    .any(|b| b.site + u64::from(b.len) == rip + 2)
            {
                return Some(PatchFix::Call {
                    nr: rax,
                    ret: rip + 2,
                });
            }
        }
        if !(AREA..AREA + AREA_LEN).contains(&rip) {
            return None;
        }
        let off = (rip - AREA) % BLOCK;
        let index = ((rip - AREA) / BLOCK) as usize;
        let page = index * BLOCK as usize / PAGE as usize;
        m.patch.pages[page]?;
        let b = *m.patch.blocks.get(index)?;
        let ret = b.site + u64::from(b.len);
        match b.nr {
            Some(nr) if (8..32).contains(&off) => Some(PatchFix::Call {
                nr: u64::from(nr),
                ret,
            }),
            None if off == 8 => Some(PatchFix::At { rip: b.site }),
            // Past the carried instruction: rax is still the number.
            None if (8 + CARRY as u64..CARRY_END).contains(&off) => {
                Some(PatchFix::Call { nr: rax, ret })
            }
            _ => None,
        }
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

    fn shape(tail: &[u8]) -> Option<Shape> {
        let mut b = [0x90u8; SITE_MAX];
        b[SITE_MAX - tail.len()..].copy_from_slice(tail);
        shape_of(0x401009, &b, SITE_MAX)
    }

    #[test]
    fn shapes() {
        let s = shape(&[0xb8, 0x6e, 0, 0, 0, 0x0f, 0x05]).unwrap();
        assert_eq!((s.site, s.len, s.nr), (0x401002, 7, Some(110)));
        let s = shape(&[0x48, 0xc7, 0xc0, 0x27, 0, 0, 0, 0x0f, 0x05]).unwrap();
        assert_eq!((s.site, s.len, s.nr), (0x401000, 9, Some(39)));
        // A negative number is not the site's own (sign extension).
        assert_eq!(shape(&[0x48, 0xc7, 0xc0, 0, 0, 0, 0x80, 0x0f, 0x05]), None);
        let s = shape(&[0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05]).unwrap();
        assert_eq!((s.site, s.len, s.nr), (0x401002, 7, None));
        assert_eq!(s.carry, [0x4c, 0x8b, 0x4c, 0x24, 0x08]);
        let s = shape(&[0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05]).unwrap();
        assert_eq!((s.len, s.nr), (7, None));
        assert_eq!(s.carry, [0xbf, 0x9c, 0xff, 0xff, 0xff]);
        // Other loads, and short instructions, are not carried.
        assert_eq!(shape(&[0x4c, 0x8b, 0x4c, 0x24, 0x10, 0x0f, 0x05]), None);
        assert_eq!(shape(&[0x31, 0xc0, 0x0f, 0x05]), None);
        assert_eq!(shape(&[0xb8, 0x6e, 0, 0, 0, 0x0f, 0x0b]), None);
        // Only 7 bytes on the page: no 9-byte shape.
        let b = [0x48, 0xc7, 0xc0, 0x27, 0, 0, 0, 0x0f, 0x05];
        assert_eq!(shape_of(0x401009, &b, 7), None);
    }

    #[test]
    fn splits() {
        // glibc 2.36's open64_nocancel in Debian's libc.so.6: `bf imm32`
        // at 0xfcffa, `syscall` at 0xfcfff-0xfd001.
        assert!(crosses(0xfcffa, 7) && split_ok(0xfcffa, 7));
        // The boundary between the displaced instruction and the syscall.
        assert!(crosses(0xfcffb, 7) && split_ok(0xfcffb, 7));
        // Inside the displaced instruction: never.
        for k in 1..5 {
            assert!(!split_ok(0x1000 - k, 7), "{k}");
        }
        for k in 1..7 {
            assert!(!split_ok(0x1000 - k, 9), "{k}");
        }
        assert!(split_ok(0x1000 - 7, 9) && split_ok(0x1000 - 8, 9));
        assert!(!crosses(0x1000 - 7, 7) && split_ok(0x1000 - 7, 7));
        assert!(!crosses(0x1000, 9));
    }

    #[test]
    fn prefixes() {
        for b in [0x41, 0x48, 0x4c, 0x65, 0x66, 0xf3, 0x2e] {
            assert!(is_prefix(b), "{b:#x}");
        }
        for b in [0x90, 0xc3, 0x89, 0xfe, 0x00, 0xff] {
            assert!(!is_prefix(b), "{b:#x}");
        }
    }

    #[test]
    fn carry_block_layout() {
        let b = carry_block_bytes(AREA, 0x401007, [0xbf, 1, 2, 3, 4]);
        assert_eq!(&b[8..13], &[0xbf, 1, 2, 3, 4]);
        // lea ends at offset 33: r11 = 33 - 17 = 16.
        assert_eq!(i32::from_le_bytes(b[29..33].try_into().unwrap()), -17);
        assert_eq!(&b[33..35], &[0xff, 0xe1]);
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 0x401007);
        assert_eq!(
            u32::from_le_bytes(b[56..60].try_into().unwrap()),
            ruml_host::sstub::BLK_NR_IN_RAX
        );
        let s = ruml_host::sstub::sites();
        assert_eq!(
            u64::from(b[25].wrapping_neg()),
            s.patch_entry - s.patch_entry_rax
        );
        let (w, n) = site_bytes(AREA + 64, 9);
        assert_eq!(n, 9);
        assert_eq!(&w[5..9], &[0x0f, 0x0b, 0x0f, 0x0b]);
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
