//! personality(2): the execution domain and its flags, per task,
//! inherited by fork and clone. Any 32-bit value is kept and reported, as
//! Linux does (the argument is an unsigned int; 0xffffffff only asks).
//! Flags with an effect, as on x86_64 Linux: ADDR_NO_RANDOMIZE (exec lays
//! the new program out without randomization, as debuggers ask),
//! READ_IMPLIES_EXEC (mmap and mprotect add PROT_EXEC to PROT_READ),
//! UNAME26 (uname reports "2.6.(60+minor)" and the release's suffix).
//! The domain does not change how ruml runs a program (x86_64 only).

use std::sync::atomic::Ordering;

use crate::errno::KResult;
use crate::syscall_table;
use crate::syscalls::SyscallContext;

/// Lay out new programs without randomization.
pub const ADDR_NO_RANDOMIZE: u32 = 0x0040000;
/// uname reports a 2.6 release (for old programs' version checks).
pub const UNAME26: u32 = 0x0020000;
/// PROT_READ mappings are executable too.
pub const READ_IMPLIES_EXEC: u32 = 0x0400000;

const PROT_READ: u32 = 1;
const PROT_EXEC: u32 = 4;

/// `prot` as mmap/mprotect apply it for `task`: READ_IMPLIES_EXEC adds
/// PROT_EXEC to readable mappings.
pub fn implied_prot(task: &super::Task, prot: u32) -> u32 {
    if prot & PROT_READ != 0 && task.personality.load(Ordering::Relaxed) & READ_IMPLIES_EXEC != 0 {
        prot | PROT_EXEC
    } else {
        prot
    }
}

/// The release uname reports to `task`: UNAME26 makes "6.1.0-ruml" read
/// "2.6.61-ruml" (Linux's override_release: 2.6.(60 + minor), then what
/// follows the release's first three numeric components).
pub fn uname_release(task: &super::Task) -> String {
    let rel = super::syscalls::UTS_RELEASE;
    if task.personality.load(Ordering::Relaxed) & UNAME26 == 0 {
        return rel.to_string();
    }
    let mut dots = 0;
    let mut end = rel.len();
    for (i, c) in rel.char_indices() {
        if c == '.' {
            dots += 1;
            if dots >= 3 {
                end = i;
                break;
            }
        } else if !c.is_ascii_digit() {
            end = i;
            break;
        }
    }
    let minor: u32 = rel
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    format!("2.6.{}{}", 60 + minor, &rel[end..])
}

syscall_table! { pub fn persona_table;
    PERSONALITY => sys_personality(persona: u64),
}

fn sys_personality(ctx: &mut SyscallContext<'_>, persona: u64) -> KResult<u64> {
    let old = ctx.task.personality.load(Ordering::Relaxed);
    // 0xffffffff only asks.
    if persona as u32 == u32::MAX {
        return Ok(old as u64);
    }
    ctx.task
        .personality
        .store(persona as u32, Ordering::Relaxed);
    Ok(old as u64)
}
