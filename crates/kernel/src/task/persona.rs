//! personality(2): the execution domain and its flags, per task,
//! inherited by fork and clone. Any value is kept and reported, as Linux
//! does; of the flags, ADDR_NO_RANDOMIZE is honoured (exec lays the new
//! program out without randomization, as debuggers ask). The domain does
//! not change how ruml runs a program (x86_64 only).

use std::sync::atomic::Ordering;

use crate::errno::KResult;
use crate::syscall_table;
use crate::syscalls::SyscallContext;

/// Lay out new programs without randomization.
pub const ADDR_NO_RANDOMIZE: u32 = 0x0040000;

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
