//! reboot(2): the instance's power switch. HALT and POWER_OFF end the
//! instance (ruml exits 0), RESTART and RESTART2 end it and ask the `ruml`
//! command to boot afresh in the same host process; CAD_ON/CAD_OFF choose
//! what ctrl-alt-delete does. As Linux: CAP_SYS_BOOT is checked first
//! (EPERM), then the magic numbers (EINVAL); the call does not sync, the
//! `reboot` and `poweroff` programs do that before calling it.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::ExitStatus;

syscall_table! { pub fn reboot_table;
    REBOOT => sys_reboot(magic1: u32, magic2: u32, cmd: u32, arg: UserAddr),
}

const MAGIC1: u32 = 0xfee1_dead;
const MAGIC2: [u32; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];

const CMD_RESTART: u32 = 0x0123_4567;
const CMD_HALT: u32 = 0xcdef_0123;
const CMD_CAD_ON: u32 = 0x89ab_cdef;
const CMD_CAD_OFF: u32 = 0;
const CMD_POWER_OFF: u32 = 0x4321_fedc;
const CMD_RESTART2: u32 = 0xa1b2_c3d4;
const CMD_SW_SUSPEND: u32 = 0xd000_fce2;
const CMD_KEXEC: u32 = 0x4558_4543;

static RESTART: AtomicBool = AtomicBool::new(false);
/// Whether ctrl-alt-delete reboots at once (CAD_ON) or sends SIGINT to
/// init (CAD_OFF, the default).
static CAD_REBOOTS: AtomicBool = AtomicBool::new(false);

/// Whether the instance halted because a guest asked for a restart.
pub fn restart_requested() -> bool {
    RESTART.load(Ordering::Relaxed)
}

/// Asks the `ruml` command to boot afresh once the instance has halted
/// (the management console's `reboot`, SysRq b, ctrl-alt-delete with CAD
/// on).
pub fn request_restart() {
    RESTART.store(true, Ordering::Relaxed);
}

/// Whether ctrl-alt-delete reboots at once (CAD_ON).
pub fn cad_reboots() -> bool {
    CAD_REBOOTS.load(Ordering::Relaxed)
}

fn sys_reboot(
    ctx: &mut SyscallContext<'_>,
    magic1: u32,
    magic2: u32,
    cmd: u32,
    _arg: UserAddr,
) -> KResult<u64> {
    // Linux trusts only the superuser, then asks for the magic numbers.
    if !ctx.task.privileged(crate::task::caps::Cap::SysBoot) {
        return error!(EPERM);
    }
    if magic1 != MAGIC1 || !MAGIC2.contains(&magic2) {
        return error!(EINVAL);
    }
    match cmd {
        CMD_HALT | CMD_POWER_OFF | CMD_RESTART | CMD_RESTART2 => {
            if matches!(cmd, CMD_RESTART | CMD_RESTART2) {
                crate::log::info("Restarting system.");
                RESTART.store(true, Ordering::Relaxed);
            } else {
                crate::log::info("System halted.");
            }
            super::exit::halt_instance(ExitStatus::Exited(0));
            // As on Linux the call does not return: the caller sleeps until
            // the instance is gone.
            ctx.task.sleep_until_poked(|| false);
        }
        CMD_CAD_ON => CAD_REBOOTS.store(true, Ordering::Relaxed),
        CMD_CAD_OFF => CAD_REBOOTS.store(false, Ordering::Relaxed),
        // No hibernation support: Linux without CONFIG_HIBERNATION.
        CMD_SW_SUSPEND => return error!(ENOSYS),
        // No kexec image was loaded.
        CMD_KEXEC => return error!(EINVAL),
        _ => return error!(EINVAL),
    }
    Ok(0)
}
