//! Boot-time checks of the host features ruml relies on, printed in UML's
//! manner. Each check really exercises the feature on a stub process.

use std::sync::Arc;

use crate::physmem::PhysMem;
use crate::ptrace::{AddressSpace, Context};
use crate::regs::Registers;
use crate::{seccomp, sstub, stub};
use crate::{HostError, Mode, Trap};

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

/// Runs a guest "instruction" of the seccomp stub: the `syscall` just
/// before `site`, with `nr` and arguments; it must trap as that system
/// call, never run on the host.
fn expect_trap(
    ctx: &mut seccomp::Context,
    site: u64,
    nr: i64,
    args: [u64; 6],
) -> Result<(), HostError> {
    let base = ctx.address_space().base();
    let mut r = Registers {
        rip: base + site - 2,
        rax: nr as u64,
        rdi: args[0],
        rsi: args[1],
        rdx: args[2],
        r10: args[3],
        r8: args[4],
        r9: args[5],
        rsp: 0,
        cs: 0x33,
        ss: 0x2b,
        eflags: 0x202,
        ..Default::default()
    };
    let t = ctx.run(&mut r)?;
    if t != Trap::Syscall || r.orig_rax != nr as u64 || r.rip != base + site {
        return Err(HostError::new(
            format!(
                "system call {nr} from the stub's code at {site:#x} was not trapped ({t:?}, nr {}, rip {:#x})",
                r.orig_rax as i64, r.rip
            ),
            0,
        ));
    }
    Ok(())
}

/// The seccomp backend's checks: a stub starts, its guest thread traps
/// system calls with SIGSYS, and its filter refuses what the handler's own
/// system-call instructions could do with a guest's registers.
fn check_seccomp(phys: &Arc<PhysMem>, log: &dyn Fn(&str)) -> Result<(), HostError> {
    let what = "Checking that user code can switch its TLS base (FSGSBASE)...";
    if !seccomp::host_has_fsgsbase() {
        log(&format!("{what}no"));
        return Err(HostError::new("the host does not enable FSGSBASE", 0));
    }
    log(&format!("{what}OK"));
    let what = "Checking that seccomp can trap system calls...";
    let (_a, mut ctx) = match seccomp::AddressSpace::new(phys) {
        Ok(x) => x,
        Err(e) => {
            log(&format!("{what}failed"));
            return Err(e);
        }
    };
    let s = sstub::sites();
    if let Err(e) = expect_trap(&mut ctx, s.first, libc::SYS_getppid, [0; 6]) {
        log(&format!("{what}failed"));
        return Err(e);
    }
    log(&format!("{what}OK"));
    let what = "Checking that the stub's filter confines guest code...";
    let base = ctx.address_space().base();
    let map = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
    let attempts: [(u64, i64, [u64; 6]); 6] = [
        // mmap of physmem from the futex instruction.
        (s.wake, libc::SYS_mmap, [0x10000, 4096, 7, map, 3, 0]),
        // mmap from the rt_sigreturn and exit instructions.
        (s.sigreturn, libc::SYS_mmap, [0x10000, 4096, 7, map, 3, 0]),
        (s.exit, libc::SYS_mprotect, [base, 4096, 7, 0, 0, 0]),
        // futex on a word that is not a thread's state word.
        (
            s.wait,
            libc::SYS_futex,
            [base + sstub::OFF_REQ, 1, 1, 0, 0, 0],
        ),
        // futex with another operation, or a timeout.
        (
            s.wake,
            libc::SYS_futex,
            [base + sstub::OFF_THREADS, 3, 1, 0, 0, 0],
        ),
        (
            s.wait,
            libc::SYS_futex,
            [base + sstub::OFF_THREADS, 0, 0, base + sstub::OFF_REQ, 0, 0],
        ),
    ];
    for (site, nr, args) in attempts {
        if let Err(e) = expect_trap(&mut ctx, site, nr, args) {
            log(&format!("{what}failed"));
            return Err(e);
        }
    }
    log(&format!("{what}OK"));
    Ok(())
}

/// Runs the checks, printing each line with `log`, and picks the backend:
/// `want` if given (an error if it cannot be used), else the best the host
/// supports. Returns the first failure with advice.
pub fn run(phys: &Arc<PhysMem>, log: &dyn Fn(&str), want: Option<Mode>) -> Result<Mode, HostError> {
    let (_space, aspace) = AddressSpace::new(phys)
        .and_then(|(s, mut c)| c.flush().map(|()| (s, c)))
        .map_err(|e| {
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
    drop(aspace);
    if want == Some(Mode::Ptrace) {
        return Ok(Mode::Ptrace);
    }
    let level = crate::stub::nesting_level();
    if level > 0 {
        // Under another ruml the stub's signal frames and rt_sigreturn go
        // through that ruml's emulation, which the seccomp backend's
        // handoff does not work over yet (docs/debugging.md, Nesting).
        let why = format!(
            "running nested inside ruml (level {level}: the address space ends at {:#x})",
            0x8000_0000_0000 - level * crate::stub::STUB_AREA
        );
        if want == Some(Mode::Seccomp) {
            return Err(HostError::new(
                format!("mode=seccomp cannot be used {why}; use mode=ptrace"),
                libc::EINVAL,
            ));
        }
        log(&format!(
            "Nesting: {why}; the seccomp backend is not used nested, falling back to ptrace"
        ));
        return Ok(Mode::Ptrace);
    }
    match check_seccomp(phys, log) {
        Ok(()) => Ok(Mode::Seccomp),
        Err(e) if want == Some(Mode::Seccomp) => Err(HostError::new(
            format!("mode=seccomp cannot be used on this host: {}", e.what),
            e.errno,
        )),
        Err(e) => {
            log(&format!(
                "seccomp backend unavailable ({e}); falling back to ptrace"
            ));
            Ok(Mode::Ptrace)
        }
    }
}
