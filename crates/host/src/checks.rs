//! Boot-time checks of the host features ruml relies on, printed in UML's
//! manner. Each check really exercises the feature on a stub process.

use std::sync::Arc;

use crate::physmem::PhysMem;
use crate::ptrace::{AddressSpace, Context};
use crate::regs::Registers;
use crate::stub;
use crate::HostError;

/// One boot check: exercises a feature on a stub.
type Check = fn(&Context) -> Result<(), HostError>;

fn ptrace(req: libc::c_uint, pid: libc::pid_t, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: integer arguments or pointers to live locals.
    unsafe { libc::ptrace(req, pid, addr, data) }
}

fn wait(pid: libc::pid_t) -> Result<i32, HostError> {
    let mut st = 0;
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } < 0 {
        return Err(HostError::last("waitpid"));
    }
    if !libc::WIFSTOPPED(st) {
        return Err(HostError::new("the test process died", 0));
    }
    Ok(st)
}

fn regs_of(pid: libc::pid_t) -> Result<Registers, HostError> {
    let mut r = Registers::default();
    if ptrace(libc::PTRACE_GETREGS, pid, 0, &mut r as *mut _ as usize) < 0 {
        return Err(HostError::last("PTRACE_GETREGS"));
    }
    Ok(r)
}

fn set_regs(pid: libc::pid_t, r: &Registers) -> Result<(), HostError> {
    if ptrace(libc::PTRACE_SETREGS, pid, 0, r as *const _ as usize) < 0 {
        return Err(HostError::last("PTRACE_SETREGS"));
    }
    Ok(())
}

/// PTRACE_SYSCALL stops at entry; the check turns getppid into getpid and
/// expects the stub's own pid back.
fn check_change_syscall(aspace: &Context) -> Result<(), HostError> {
    let pid = aspace.raw_pid();
    let mut r = regs_of(pid)?;
    r.rip = stub::syscall1();
    r.rax = libc::SYS_getppid as u64;
    set_regs(pid, &r)?;
    if ptrace(libc::PTRACE_SYSCALL, pid, 0, 0) < 0 {
        return Err(HostError::last("PTRACE_SYSCALL"));
    }
    wait(pid)?;
    let mut r = regs_of(pid)?;
    r.orig_rax = libc::SYS_getpid as u64;
    set_regs(pid, &r)?;
    ptrace(libc::PTRACE_SYSCALL, pid, 0, 0);
    wait(pid)?;
    let r = regs_of(pid)?;
    ptrace(libc::PTRACE_CONT, pid, 0, 0);
    wait(pid)?;
    if r.rax as i64 != pid as i64 {
        return Err(HostError::new(
            format!(
                "changed system call returned {} instead of pid {pid}",
                r.rax as i64
            ),
            0,
        ));
    }
    Ok(())
}

/// PTRACE_SYSEMU must stop at a system call without running it: the check
/// emulates exit_group and expects the stub alive at its next int3.
fn check_sysemu(aspace: &Context) -> Result<(), HostError> {
    let pid = aspace.raw_pid();
    let mut r = regs_of(pid)?;
    r.rip = stub::syscall1();
    r.rax = libc::SYS_exit_group as u64;
    r.rdi = 99;
    set_regs(pid, &r)?;
    if ptrace(libc::PTRACE_SYSEMU, pid, 0, 0) < 0 {
        return Err(HostError::last("PTRACE_SYSEMU"));
    }
    let st = wait(pid)?;
    if libc::WSTOPSIG(st) != libc::SIGTRAP | 0x80 {
        return Err(HostError::new("no system-call stop under PTRACE_SYSEMU", 0));
    }
    let r = regs_of(pid)?;
    if r.orig_rax != libc::SYS_exit_group as u64 {
        return Err(HostError::new(
            "wrong system-call number at the SYSEMU stop",
            0,
        ));
    }
    ptrace(libc::PTRACE_CONT, pid, 0, 0);
    let st = wait(pid)?;
    if libc::WSTOPSIG(st) != libc::SIGTRAP {
        return Err(HostError::new(
            "the emulated system call ran on the host",
            0,
        ));
    }
    Ok(())
}

/// Runs the checks, printing each line with `log`. Returns the first
/// failure with advice.
pub fn run(phys: &Arc<PhysMem>, log: &dyn Fn(&str)) -> Result<(), HostError> {
    let (_space, aspace) = AddressSpace::new(phys).map_err(|e| {
        HostError::new(
            format!(
                "cannot start a stub process ({e}). ruml needs ptrace: run it outside seccomp \
                 sandboxes that forbid ptrace, and check /proc/sys/kernel/yama/ptrace_scope <= 1"
            ),
            e.errno,
        )
    })?;
    log("Checking that a clean stub process can be started...OK");
    let steps: [(&str, Check); 2] = [
        (
            "Checking that ptrace can change system call numbers...",
            check_change_syscall,
        ),
        ("Checking syscall emulation for ptrace...", check_sysemu),
    ];
    for (what, f) in steps {
        match f(&aspace) {
            Ok(()) => log(&format!("{what}OK")),
            Err(e) => {
                log(&format!("{what}failed"));
                return Err(e);
            }
        }
    }
    Ok(())
}
