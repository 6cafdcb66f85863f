//! The ptrace backend (skas0-style): one stub process per guest address
//! space, traced by the host thread of the guest task that runs in it.
//! System calls are caught with PTRACE_SYSEMU (the host never executes
//! them), faults arrive as signal-delivery stops, and address-space
//! changes run as batches of host calls in the stub, started by the tracer
//! at the stub's fixed entry points.
//!
//! Threading: ptrace requests must come from the tracing thread, so an
//! [`AddressSpace`] is used only by the host thread that created it
//! (`!Sync`); other threads reach it through an [`Interrupter`].

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::physmem::{Pfn, PhysMem, PAGE_SIZE};
use crate::regs::{FpuState, Registers};
use crate::stub::{self, StubRequest, BATCH_MAX, STUB_CODE, STUB_DATA, STUB_PHYSMEM_FD};
use crate::sys::{check, errno, retry};
use crate::{HostError, SignalInfo, Trap};

/// The host signal an [`Interrupter`] sends to kick a guest out of its
/// code; it never reaches the stub (the tracer suppresses it).
const KICK_SIGNAL: i32 = libc::SIGUSR2;

const NT_X86_XSTATE: libc::c_int = 0x202;

/// One queued address-space change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Map { addr: u64, len: u64, prot: u32, pfn: Pfn },
    Unmap { addr: u64, len: u64 },
    Protect { addr: u64, len: u64, prot: u32 },
}

/// A guest address space: a stub process (see [`crate::stub`]), its queued
/// changes, and its one guest thread's execution context.
///
/// Lifetime: the stub process lives as long as this value; dropping it
/// kills and reaps the process. If ruml dies, PTRACE_O_EXITKILL and
/// PR_SET_PDEATHSIG kill the stub too.
pub struct AddressSpace {
    pid: libc::pid_t,
    pidfd: Arc<OwnedFd>,
    phys: Arc<PhysMem>,
    data_pfn: Pfn,
    ops: Vec<Op>,
    kicked: Arc<AtomicBool>,
    /// Makes the type !Sync and !Send: ptrace is per tracing thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// A handle that other host threads use to stop a running guest, so its
/// task can notice a signal or other work.
#[derive(Clone)]
pub struct Interrupter {
    pidfd: Arc<OwnedFd>,
    kicked: Arc<AtomicBool>,
}

impl Interrupter {
    /// Makes the guest trap with [`Trap::Interrupted`] soon: at once if it
    /// is running guest code, else at its next run.
    pub fn interrupt(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        // SAFETY: sending a signal through our own pidfd; a dead process
        // just gives ESRCH.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), KICK_SIGNAL, 0usize, 0u32);
        }
    }
}

fn stub_elf_fd() -> Result<RawFd, HostError> {
    static FD: OnceLock<Result<RawFd, HostError>> = OnceLock::new();
    FD.get_or_init(|| {
        // SAFETY: a valid C string.
        let fd = unsafe { libc::memfd_create(c"ruml-stub".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(HostError::last("memfd_create for the stub image"));
        }
        let img = stub::elf_image();
        // SAFETY: writing our own buffer to our own fd.
        let n = unsafe { libc::write(fd, img.as_ptr().cast(), img.len()) };
        if n != img.len() as isize {
            return Err(HostError::last("writing the stub image"));
        }
        Ok(fd)
    })
    .clone()
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: callers pass pointers valid for the request, or integers.
    unsafe { libc::ptrace(req, pid, addr, data) }
}

fn wait_stop(pid: libc::pid_t) -> Result<i32, HostError> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let r = retry(|| unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } as libc::c_long);
    if r < 0 {
        return Err(HostError::last("waitpid on a stub process"));
    }
    if libc::WIFEXITED(status) {
        return Err(HostError::new(format!("stub process exited with status {}", libc::WEXITSTATUS(status)), 0));
    }
    if libc::WIFSIGNALED(status) {
        return Err(HostError::new(format!("stub process killed by host signal {}", libc::WTERMSIG(status)), 0));
    }
    Ok(status)
}

impl AddressSpace {
    /// Starts a clean stub process: only the stub's code page, its data
    /// page and physmem's descriptor.
    pub fn new(phys: &Arc<PhysMem>) -> Result<AddressSpace, HostError> {
        let elf_fd = stub_elf_fd()?;
        let phys_fd = phys.fd();
        // SAFETY: getpid never fails.
        let parent = unsafe { libc::getpid() };
        let argv: [*const libc::c_char; 2] = [c"ruml-stub".as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        // SAFETY: the child calls only async-signal-safe system calls on
        // memory prepared before the fork, then execs or exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(HostError::last("fork for a stub process"));
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only; see above.
            unsafe { stub_child(parent, phys_fd, elf_fd, &argv, &envp) }
        }
        // SAFETY: pidfd_open on our own child.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            let e = HostError::last("pidfd_open (ruml needs Linux >= 5.3)");
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
            }
            return Err(e);
        }
        // SAFETY: a fresh fd we own.
        let pidfd = Arc::new(unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) });
        let data_pfn = match phys.alloc() {
            Some(p) => p,
            None => {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
                }
                return Err(HostError::new("out of guest memory for a stub data page", libc::ENOMEM));
            }
        };
        let mut aspace = AddressSpace {
            pid,
            pidfd,
            phys: phys.clone(),
            data_pfn,
            ops: Vec::new(),
            kicked: Arc::new(AtomicBool::new(false)),
            _not_send: std::marker::PhantomData,
        };
        aspace.attach()?;
        Ok(aspace)
    }

    /// Follows the child from its SIGSTOP through exec to the stub's first
    /// `int3`, then clears out everything the host put in the new image.
    fn attach(&mut self) -> Result<(), HostError> {
        let pid = self.pid;
        let st = wait_stop(pid)?;
        if libc::WSTOPSIG(st) != libc::SIGSTOP {
            return Err(HostError::new(format!("stub stopped with signal {} before exec", libc::WSTOPSIG(st)), 0));
        }
        let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACEEXEC;
        check(ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts as usize), "PTRACE_SETOPTIONS (EXITKILL needs Linux >= 3.8)")?;
        check(ptrace(libc::PTRACE_CONT, pid, 0, 0), "PTRACE_CONT")?;
        let st = wait_stop(pid)?;
        if st >> 8 != (libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8)) {
            return Err(HostError::new(format!("stub did not exec (status {st:#x})"), 0));
        }
        check(ptrace(libc::PTRACE_CONT, pid, 0, 0), "PTRACE_CONT")?;
        let st = wait_stop(pid)?;
        if libc::WSTOPSIG(st) != libc::SIGTRAP {
            return Err(HostError::new(format!("stub stopped with signal {} at entry", libc::WSTOPSIG(st)), 0));
        }
        // Remove the host's stack, vDSO and vvar: the address space must
        // hold only the stub and, later, the guest.
        let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_err(|e| HostError::new(format!("reading the stub's maps: {e}"), 0))?;
        for line in maps.lines() {
            let Some(range) = line.split_whitespace().next() else { continue };
            let Some((s, e)) = range.split_once('-') else { continue };
            let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else { continue };
            if s == STUB_CODE || s >= 0xffff_8000_0000_0000 {
                continue;
            }
            let r = self.host_syscall(libc::SYS_munmap as u64, [s, e - s, 0, 0, 0, 0])?;
            if r < 0 {
                return Err(HostError::new(format!("unmapping {range} in the stub"), -r as i32));
            }
        }
        let r = self.host_syscall(
            libc::SYS_mmap as u64,
            [
                STUB_DATA,
                PAGE_SIZE,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                STUB_PHYSMEM_FD as u64,
                self.data_pfn * PAGE_SIZE,
            ],
        )?;
        if r < 0 {
            return Err(HostError::new("mapping the stub data page", -r as i32));
        }
        Ok(())
    }

    /// The host pid of the stub process (for tests and diagnostics).
    pub fn host_pid(&self) -> i32 {
        self.pid
    }

    /// A handle for other threads to interrupt the running guest.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter { pidfd: self.pidfd.clone(), kicked: self.kicked.clone() }
    }

    fn getregs(&self, regs: &mut Registers) -> Result<(), HostError> {
        check(ptrace(libc::PTRACE_GETREGS, self.pid, 0, regs as *mut Registers as usize), "PTRACE_GETREGS")?;
        Ok(())
    }

    fn setregs(&self, regs: &Registers) -> Result<(), HostError> {
        check(ptrace(libc::PTRACE_SETREGS, self.pid, 0, regs as *const Registers as usize), "PTRACE_SETREGS")?;
        Ok(())
    }

    /// Resumes the stub with PTRACE_CONT at `rip` and waits for its `int3`.
    /// A kick that arrives meanwhile is remembered for the next run.
    fn run_stub(&mut self, regs: &mut Registers) -> Result<(), HostError> {
        self.setregs(regs)?;
        let mut sig = 0usize;
        loop {
            check(ptrace(libc::PTRACE_CONT, self.pid, 0, sig), "PTRACE_CONT")?;
            let st = wait_stop(self.pid)?;
            match libc::WSTOPSIG(st) {
                libc::SIGTRAP => break,
                s if s == KICK_SIGNAL => {
                    self.kicked.store(true, Ordering::SeqCst);
                    sig = 0;
                }
                s @ (libc::SIGSEGV | libc::SIGBUS | libc::SIGILL) => {
                    return Err(HostError::new(format!("the stub faulted (signal {s}) at {:#x}", regs.rip), 0));
                }
                _ => sig = 0,
            }
        }
        self.getregs(regs)
    }

    /// Executes one host system call inside the stub (used to set it up).
    fn host_syscall(&mut self, nr: u64, a: [u64; 6]) -> Result<i64, HostError> {
        let mut regs = Registers::default();
        self.getregs(&mut regs)?;
        regs.rip = stub::SYSCALL1;
        regs.rax = nr;
        regs.orig_rax = u64::MAX;
        (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
        self.run_stub(&mut regs)?;
        Ok(regs.rax as i64)
    }

    /// Queues mapping `len` bytes at `addr` to the physmem frames starting
    /// at `pfn`, with `prot` ([`crate::prot`]).
    pub fn map(&mut self, addr: u64, len: u64, prot: u32, pfn: Pfn) {
        if let Some(Op::Map { addr: a, len: l, prot: p, pfn: f }) = self.ops.last_mut() {
            if *a + *l == addr && *p == prot && *f + *l / PAGE_SIZE == pfn {
                *l += len;
                return;
            }
        }
        self.ops.push(Op::Map { addr, len, prot, pfn });
    }

    /// Queues removing any mapping in `[addr, addr+len)`.
    pub fn unmap(&mut self, addr: u64, len: u64) {
        if let Some(Op::Unmap { addr: a, len: l }) = self.ops.last_mut() {
            if *a + *l == addr {
                *l += len;
                return;
            }
        }
        self.ops.push(Op::Unmap { addr, len });
    }

    /// Queues changing the protection of `[addr, addr+len)`.
    pub fn protect(&mut self, addr: u64, len: u64, prot: u32) {
        if let Some(Op::Protect { addr: a, len: l, prot: p }) = self.ops.last_mut() {
            if *a + *l == addr && *p == prot {
                *l += len;
                return;
            }
        }
        self.ops.push(Op::Protect { addr, len, prot });
    }

    /// Carries out the queued changes, up to BATCH_MAX per stub run.
    pub fn flush(&mut self) -> Result<(), HostError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.ops);
        let mut regs = Registers::default();
        self.getregs(&mut regs)?;
        let saved = regs;
        for chunk in ops.chunks(BATCH_MAX) {
            let mut reqs: Vec<StubRequest> = chunk
                .iter()
                .map(|op| match *op {
                    Op::Map { addr, len, prot, pfn } => StubRequest {
                        nr: libc::SYS_mmap as u64,
                        args: [
                            addr,
                            len,
                            prot as u64,
                            (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                            STUB_PHYSMEM_FD as u64,
                            pfn * PAGE_SIZE,
                        ],
                        result: 0,
                    },
                    Op::Unmap { addr, len } => {
                        StubRequest { nr: libc::SYS_munmap as u64, args: [addr, len, 0, 0, 0, 0], result: 0 }
                    }
                    Op::Protect { addr, len, prot } => StubRequest {
                        nr: libc::SYS_mprotect as u64,
                        args: [addr, len, prot as u64, 0, 0, 0],
                        result: 0,
                    },
                })
                .collect();
            reqs.push(StubRequest { nr: u64::MAX, ..Default::default() });
            let bytes: Vec<u8> = reqs
                .iter()
                .flat_map(|r| {
                    let mut v = Vec::with_capacity(64);
                    v.extend_from_slice(&r.nr.to_le_bytes());
                    for a in r.args {
                        v.extend_from_slice(&a.to_le_bytes());
                    }
                    v.extend_from_slice(&r.result.to_le_bytes());
                    v
                })
                .collect();
            self.phys.write(self.data_pfn, 0, &bytes);
            regs.rip = stub::BATCH;
            regs.orig_rax = u64::MAX;
            self.run_stub(&mut regs)?;
            // rbx points at the request the batch stopped on.
            let idx = ((regs.rbx - STUB_DATA) / 64) as usize;
            if idx < chunk.len() {
                let res = regs.rax as i64;
                return Err(HostError::new(format!("stub request {:?} failed", chunk[idx]), (-res) as i32));
            }
        }
        self.setregs(&saved)?;
        Ok(())
    }

    /// Runs the guest with `regs` until it traps; on return `regs` holds
    /// the guest's registers at the trap. Queued changes are flushed first.
    pub fn run(&mut self, regs: &mut Registers) -> Result<Trap, HostError> {
        self.flush()?;
        if self.kicked.swap(false, Ordering::SeqCst) {
            return Ok(Trap::Interrupted);
        }
        self.setregs(regs)?;
        check(ptrace(libc::PTRACE_SYSEMU, self.pid, 0, 0), "PTRACE_SYSEMU")?;
        let st = wait_stop(self.pid)?;
        let sig = libc::WSTOPSIG(st);
        if sig == (libc::SIGTRAP | 0x80) {
            self.getregs(regs)?;
            return Ok(Trap::Syscall);
        }
        let mut si: libc::siginfo_t = unsafe_zeroed();
        check(ptrace(libc::PTRACE_GETSIGINFO, self.pid, 0, &mut si as *mut _ as usize), "PTRACE_GETSIGINFO")?;
        self.getregs(regs)?;
        if sig == KICK_SIGNAL || si.si_code <= 0 {
            // Our kick, or a signal some host process sent the stub:
            // never delivered; the guest's kernel decides what happens.
            self.kicked.store(false, Ordering::SeqCst);
            return Ok(Trap::Interrupted);
        }
        // SAFETY: for kernel-generated fault signals si_addr is valid.
        let addr = unsafe { si.si_addr() } as u64;
        Ok(Trap::Signal(SignalInfo { signo: sig, code: si.si_code, addr }))
    }

    /// The guest thread's x87/SSE/AVX state.
    pub fn get_fpu(&self) -> Result<FpuState, HostError> {
        let mut buf = vec![0u8; 16384];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        check(
            ptrace(libc::PTRACE_GETREGSET, self.pid, NT_X86_XSTATE as usize, &mut iov as *mut _ as usize),
            "PTRACE_GETREGSET NT_X86_XSTATE",
        )?;
        buf.truncate(iov.iov_len);
        Ok(FpuState(buf))
    }

    /// Replaces the guest thread's x87/SSE/AVX state.
    pub fn set_fpu(&self, fpu: &FpuState) -> Result<(), HostError> {
        let mut buf = fpu.0.clone();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        check(
            ptrace(libc::PTRACE_SETREGSET, self.pid, NT_X86_XSTATE as usize, &mut iov as *mut _ as usize),
            "PTRACE_SETREGSET NT_X86_XSTATE",
        )?;
        Ok(())
    }

    /// Used by the boot checks: raw access for a test sequence.
    pub(crate) fn raw_pid(&self) -> libc::pid_t {
        self.pid
    }
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs (siginfo_t).
    unsafe { std::mem::zeroed() }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own child through its pidfd.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32);
            let mut st = 0;
            while libc::waitpid(self.pid, &mut st, libc::__WALL) < 0 && errno() == libc::EINTR {}
        }
        self.phys.put(self.data_pfn);
    }
}

/// The child side of [`AddressSpace::new`]: drop everything of ruml and
/// exec the stub image under the parent's trace.
///
/// # Safety
/// Must be called only in a freshly forked child; uses only
/// async-signal-safe system calls and never returns.
unsafe fn stub_child(
    parent: libc::pid_t,
    phys_fd: RawFd,
    elf_fd: RawFd,
    argv: &[*const libc::c_char; 2],
    envp: &[*const libc::c_char; 1],
) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    if libc::getppid() != parent {
        libc::_exit(1);
    }
    // Out of ruml's session: terminal signals never reach a stub.
    libc::setsid();
    // A fixed layout: the host's stack and vDSO stay clear of the stub.
    libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
    // Move physmem to its fixed number and the image just above it, then
    // close everything else, the console included.
    let p = libc::fcntl(phys_fd, libc::F_DUPFD_CLOEXEC, 100);
    let e = libc::fcntl(elf_fd, libc::F_DUPFD_CLOEXEC, 100);
    if p < 0 || e < 0 || libc::dup2(p, STUB_PHYSMEM_FD) < 0 || libc::dup3(e, STUB_PHYSMEM_FD + 1, libc::O_CLOEXEC) < 0 {
        libc::_exit(2);
    }
    libc::close(0);
    libc::close(1);
    libc::close(2);
    libc::syscall(libc::SYS_close_range, STUB_PHYSMEM_FD + 2, u32::MAX, 0);
    if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
        libc::_exit(3);
    }
    libc::kill(libc::getpid(), libc::SIGSTOP);
    libc::syscall(
        libc::SYS_execveat,
        STUB_PHYSMEM_FD + 1,
        c"".as_ptr(),
        argv.as_ptr(),
        envp.as_ptr(),
        libc::AT_EMPTY_PATH,
    );
    libc::_exit(4)
}
