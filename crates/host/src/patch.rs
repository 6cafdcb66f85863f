//! Syscall-site patching on the seccomp backend (issue #9, "Patched
//! syscall sites"): the `patch=` switch and the census of site shapes.
//! The stub's signal-less entry is `ruml_sstub_patch_entry` in
//! [`crate::sstub`]; the kernel rewrites guest sites to reach it
//! (`ruml_kernel::mm::patch`, docs/architecture.md "Patched system-call
//! sites").
//!
//! **The entry's contract.** With `patch=on` ([`set_enabled`]) a guest
//! thread whose own GS base is zero runs with its control page as GS
//! base. Code enters the kernel without a host signal by
//! `jmp *%gs:CTL_ENTRY` ([`crate::sstub::CTL_ENTRY`], 88) with:
//!
//! - rax: the arithmetic flags, `lahf` into ah and `seto` into al;
//! - rcx: the GS base (the control page);
//! - r11: a *site block*, whose u64 at [`crate::sstub::BLK_RET`] is where
//!   the guest resumes and whose u32 at [`crate::sstub::BLK_NR`] is the
//!   system-call number;
//! - every other register the guest's (rax, rcx and r11 are dead at a
//!   `syscall`: it sets them).
//!
//! The kernel sees the call exactly as a SIGSYS trap at the return
//! address; on return rax is the result, rcx the return address and r11
//! RFLAGS, as after `syscall`. A restart returns to the return address
//! minus 2, where the caller must have a `syscall` (or an instruction the
//! kernel treats as one). The frame the entry builds and the way it copes
//! with kicks are described in docs/architecture.md ("The signal-less
//! entry"); `tests/guest/patch_entry.c` drives it.
//!
//! A patch replaces the `syscall` instruction and the instruction before
//! it, together exactly as long as the rewrite, with a jump into code
//! that enters the kernel without a signal. Which shapes are worth
//! rewriting is a question of measure, so when counting is on
//! (`RUML_HOST_STATS`, see [`crate::stats`]) every system-call trap (of
//! either backend: the guest's sites are the same) is classified by the
//! bytes before its `syscall`:
//!
//! - `mov $nr,%eax; syscall` (`b8 imm32 0f 05`, 7 bytes): the shape of
//!   glibc's and musl's own wrappers (getpid, read, write, ...), and the
//!   only one gVisor's systrap rewrites;
//! - `mov $nr,%rax; syscall` (`48 c7 c0 imm32 0f 05`, 9 bytes);
//! - glibc's `syscall(3)` function: `mov 0x8(%rsp),%r9; syscall`
//!   (`4c 8b 4c 24 08 0f 05`, 7 bytes; the number comes in a register,
//!   so a rewrite must carry the displaced load along);
//! - `mov $imm32,%edi; syscall` (`bf imm32 0f 05`, 7 bytes; the number
//!   was set further up): glibc's `open64_nocancel` (`openat(AT_FDCWD,
//!   ...)`), which is most of the rest in python and shell workloads;
//! - anything else (inline system calls whose number was set further
//!   up, or sites whose bytes could not be read).
//!
//! Calls that come through the entry from a rewritten site are a class
//! of their own, `site_patched` (the entry's frame says so with
//! [`ENTRY_ERRNO`]); the shapes count what still traps.
//!
//! The entry has a second door for sites whose number is in rax when
//! they reach it ([`crate::sstub::Sites::patch_entry_rax`], `%gs:
//! CTL_ENTRY` minus a few bytes): the site block's number is then
//! [`crate::sstub::BLK_NR_IN_RAX`], rax holds the number, the flags are
//! the guest's and rcx is free; that door saves the number in the
//! control page ([`crate::sstub::CTL_PX_NR`]) and the flags as the entry
//! wants them, and falls into it.
//!
//! The census is a heuristic, as gVisor's test for its one shape is: a
//! `b8` seven bytes before the end can be the tail of a longer
//! instruction, and a branch may land on the `syscall` itself. A rewrite
//! must therefore leave a thread that lands inside it a fault it can be
//! restarted from (the `syscall`'s first byte made an invalid opcode
//! before the rest is written), never a different instruction.
//!
//! The census reads the guest's code with `process_vm_readv` on the stub
//! thread, only when counting is on.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::stats::{self, Counter};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the seccomp stub's signal-less entry and site patching on
/// (`patch=on`, the default) or off (`patch=off`) for stubs made from now
/// on.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether patching is on (`patch=on`, the default; only the seccomp
/// backend has it).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The `si_errno` of the SIGSYS frame the signal-less entry builds (the
/// host's own SIGSYS from the filter's `SECCOMP_RET_TRAP` has 0): tells
/// the census a patched site's call from a trap. Only counting reads it.
pub const ENTRY_ERRNO: u32 = 0x7074_6368;

/// The shape of the instructions that end with a site's `syscall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `mov $imm32,%eax; syscall`.
    MovNr,
    /// `mov $imm32,%rax; syscall`.
    MovNr64,
    /// glibc's `syscall(3)`: `mov 0x8(%rsp),%r9; syscall`.
    SyscallFn,
    /// `mov $imm32,%edi; syscall` (number set further up).
    MovEdi,
    Other,
}

/// Bytes read before the address just past a `syscall`.
pub const LOOKBEHIND: usize = 9;

/// Classifies the `LOOKBEHIND` bytes that end at the address just past a
/// site's `syscall` instruction.
pub fn classify(b: &[u8; LOOKBEHIND]) -> Shape {
    if b[7..9] != [0x0f, 0x05] {
        return Shape::Other;
    }
    if b[0..3] == [0x48, 0xc7, 0xc0] {
        return Shape::MovNr64;
    }
    if b[2] == 0xb8 {
        return Shape::MovNr;
    }
    if b[2..7] == [0x4c, 0x8b, 0x4c, 0x24, 0x08] {
        return Shape::SyscallFn;
    }
    if b[2] == 0xbf {
        return Shape::MovEdi;
    }
    Shape::Other
}

/// Counts the shape of the site of a system-call trap at `rip` (just
/// past the `syscall`) in host thread `pid` (a stub's), if counting is on.
pub(crate) fn census(pid: libc::pid_t, rip: u64) {
    if !stats::on() {
        return;
    }
    let mut b = [0u8; LOOKBEHIND];
    let shape = match rip.checked_sub(LOOKBEHIND as u64) {
        Some(addr) => {
            let local = libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: LOOKBEHIND,
            };
            let remote = libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: LOOKBEHIND,
            };
            // SAFETY: reads from another process into our own buffer of
            // the given length; a bad remote address is an error return.
            let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
            if n == LOOKBEHIND as isize {
                classify(&b)
            } else {
                Shape::Other
            }
        }
        None => Shape::Other,
    };
    stats::bump(match shape {
        Shape::MovNr => Counter::SiteMovNr,
        Shape::MovNr64 => Counter::SiteMovNr64,
        Shape::SyscallFn => Counter::SiteSyscallFn,
        Shape::MovEdi => Counter::SiteMovEdi,
        Shape::Other => Counter::SiteOther,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        // getppid in glibc: mov $0x6e,%eax; syscall
        let b = [0x90, 0x90, 0xb8, 0x6e, 0, 0, 0, 0x0f, 0x05];
        assert_eq!(classify(&b), Shape::MovNr);
        let b = [0x48, 0xc7, 0xc0, 0x27, 0, 0, 0, 0x0f, 0x05];
        assert_eq!(classify(&b), Shape::MovNr64);
        // glibc's syscall(3)
        let b = [0x89, 0xca, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05];
        assert_eq!(classify(&b), Shape::SyscallFn);
        // glibc's open64_nocancel: mov $AT_FDCWD,%edi; syscall
        let b = [0x48, 0x89, 0xbf, 0x9c, 0xff, 0xff, 0xff, 0x0f, 0x05];
        assert_eq!(classify(&b), Shape::MovEdi);
        // mov %rdi,%rax; syscall (number from a register)
        let b = [0x90, 0x90, 0x90, 0x90, 0x48, 0x89, 0xf8, 0x0f, 0x05];
        assert_eq!(classify(&b), Shape::Other);
        // not a syscall at all
        let b = [0x90, 0x90, 0xb8, 0x6e, 0, 0, 0, 0x0f, 0x0b];
        assert_eq!(classify(&b), Shape::Other);
    }
}
