//! The ptrace backend (skas0-style). Each guest address space is a stub
//! process ([`AddressSpace`]); each guest thread in it is a stub thread
//! ([`Context`]) traced by the host thread of that guest task. System
//! calls are caught with PTRACE_SYSEMU (the host never executes them),
//! faults arrive as signal-delivery stops, and address-space changes run
//! as batches of host calls in the stub, started by a tracer at the
//! stub's fixed entry points.
//!
//! Threading: ptrace requests must come from the tracing thread, so a
//! [`Context`] is `!Send` and stays on the host thread that made it.
//! [`AddressSpace`] is shared (Send + Sync); its queue of changes is
//! flushed by whichever of its contexts runs next.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::ops::{push_map, push_protect, push_unmap, Op};
use crate::physmem::{Pfn, PhysMem, PAGE_SIZE};
use crate::regs::{FpuState, Registers};
use crate::stats::{self, Counter};
use crate::stub::{self, BATCH_MAX, STUB_PHYSMEM_FD};
use crate::sys::{check, errno, retry};
use crate::{HostError, Interrupter, SignalInfo, Trap};

/// The host signal an [`Interrupter`] sends to kick a guest out of its
/// code; it never reaches the stub (the tracer suppresses it, and stub
/// threads ignore it).
pub(crate) const KICK_SIGNAL: i32 = libc::SIGUSR2;

const NT_X86_XSTATE: libc::c_int = 0x202;

/// Flags of the clone that makes a stub thread.
const STUB_THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// The stub process behind an address space. Dropping the last reference
/// kills and reaps it.
struct StubProcess {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    phys: Arc<PhysMem>,
    data_pfn: Pfn,
    /// Queued changes; held while a batch runs, so a second flusher waits
    /// until the first one's changes are in place.
    ops: Mutex<Vec<Op>>,
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own stub through its pidfd.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0usize,
                0u32,
            );
            let mut st = 0;
            loop {
                let r = libc::waitpid(self.pid, &mut st, libc::__WALL);
                if r < 0 && errno() == libc::EINTR {
                    continue;
                }
                if r < 0 || libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                    break;
                }
            }
        }
        self.phys.put(self.data_pfn);
    }
}

/// A guest address space: a stub process (see [`crate::stub`]) and its
/// queued changes. Cheap to clone; shared by all threads of the space.
#[derive(Clone)]
pub struct AddressSpace {
    proc: Arc<StubProcess>,
}

/// A stub thread running one guest thread, traced by the current host
/// thread. Dropping it ends the stub thread (not the process).
pub struct Context {
    tid: libc::pid_t,
    aspace: AddressSpace,
    kicked: Arc<AtomicBool>,
    /// Set while the guest runs: an [`Interrupter`] kicks only then.
    running: Arc<AtomicBool>,
    /// The host CPU the stub thread is pinned to (it follows its tracer,
    /// see [`Context::place`]), and how many runs since it was last free.
    pinned: Option<i32>,
    runs: u32,
    /// Released by [`Context::detach`] (the seccomp backend's bootstrap):
    /// no longer traced, so dropping it does nothing.
    detached: bool,
    /// A fresh stub, still at its exec stop: its data page is not mapped
    /// and the host's stack and vDSO are still there. The first batch
    /// does that setup first, in the same run ([`Context::run_batch`]).
    setup_pending: bool,
    /// Makes the type !Send and !Sync: ptrace is per tracing thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// A stub thread made by [`Context::new_thread`], waiting for the host
/// thread that will trace it ([`Context::adopt`]).
pub struct NewThread {
    tid: libc::pid_t,
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
    stats::bump(Counter::PtraceCalls);
    // SAFETY: callers pass pointers valid for the request, or integers.
    unsafe { libc::ptrace(req, pid, addr, data) }
}

fn wait_stop(tid: libc::pid_t) -> Result<i32, HostError> {
    stats::bump(Counter::PtraceStops);
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let r = retry(|| unsafe { libc::waitpid(tid, &mut status, libc::__WALL) } as libc::c_long);
    if r < 0 {
        return Err(HostError::last("waitpid on a stub thread"));
    }
    if libc::WIFEXITED(status) {
        return Err(HostError::new(
            format!(
                "stub thread exited with status {}",
                libc::WEXITSTATUS(status)
            ),
            0,
        ));
    }
    if libc::WIFSIGNALED(status) {
        return Err(HostError::new(
            format!(
                "stub thread killed by host signal {}",
                libc::WTERMSIG(status)
            ),
            0,
        ));
    }
    Ok(status)
}

fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
    }
}

impl AddressSpace {
    /// Starts a clean stub process (only the stub's code and data pages
    /// and physmem's descriptor) and returns it with the context of its
    /// first thread, traced by the calling host thread.
    pub fn new(phys: &Arc<PhysMem>) -> Result<(AddressSpace, Context), HostError> {
        stats::bump(Counter::StubsBuilt);
        let elf_fd = stub_elf_fd()?;
        let forked = crate::spawn::fork_child(phys.fd(), elf_fd)?;
        let pid = forked.pid;
        // SAFETY: the write end of the go pipe is ours.
        let go = unsafe { OwnedFd::from_raw_fd(forked.go) };
        // SAFETY: pidfd_open on our own child.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            let e = HostError::last("pidfd_open (ruml needs Linux >= 5.3)");
            kill_and_reap(pid);
            return Err(e);
        }
        // SAFETY: a fresh fd we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        let Some(data_pfn) = phys.alloc() else {
            kill_and_reap(pid);
            return Err(HostError::new(
                "out of guest memory for a stub data page",
                libc::ENOMEM,
            ));
        };
        let aspace = AddressSpace {
            proc: Arc::new(StubProcess {
                pid,
                pidfd,
                phys: phys.clone(),
                data_pfn,
                ops: Mutex::new(Vec::new()),
            }),
        };
        let mut ctx = Context {
            tid: pid,
            aspace: aspace.clone(),
            kicked: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicBool::new(false)),
            pinned: None,
            runs: 0,
            detached: false,
            setup_pending: false,
            _not_send: std::marker::PhantomData,
        };
        ctx.attach_process(go)?;
        Ok((aspace, ctx))
    }

    /// The host pid of the stub process (for tests and diagnostics).
    pub fn host_pid(&self) -> i32 {
        self.proc.pid
    }

    /// A pidfd of the stub process.
    pub(crate) fn pidfd(&self) -> RawFd {
        self.proc.pidfd.as_raw_fd()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Op>> {
        self.proc.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues mapping `len` bytes at `addr` to the physmem frames starting
    /// at `pfn`, with `prot` ([`crate::prot`]).
    pub fn map(&self, addr: u64, len: u64, prot: u32, pfn: Pfn) {
        push_map(&mut self.queue(), addr, len, prot, pfn);
    }

    /// Queues removing any mapping in `[addr, addr+len)`.
    pub fn unmap(&self, addr: u64, len: u64) {
        push_unmap(&mut self.queue(), addr, len);
    }

    /// Queues changing the protection of `[addr, addr+len)`.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) {
        push_protect(&mut self.queue(), addr, len, prot);
    }
}

impl Context {
    /// Seizes the forked child, lets it exec the stub image, and clears
    /// out everything the host put in the new image.
    fn attach_process(&mut self, go: OwnedFd) -> Result<(), HostError> {
        let pid = self.tid;
        let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACEEXEC;
        if ptrace(libc::PTRACE_SEIZE, pid, 0, opts as usize) < 0 {
            let e = HostError::last(
                "PTRACE_SEIZE of a new stub (ruml needs ptrace; check seccomp and yama settings)",
            );
            kill_and_reap(pid);
            return Err(e);
        }
        // SAFETY: one byte to our own pipe.
        let w = unsafe { libc::write(go.as_raw_fd(), b"g".as_ptr().cast(), 1) };
        drop(go);
        if w != 1 {
            kill_and_reap(pid);
            return Err(HostError::last("releasing a new stub"));
        }
        let st = wait_stop(pid)?;
        if st >> 8 != (libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8)) {
            return Err(HostError::new(
                format!("stub did not exec (status {st:#x})"),
                0,
            ));
        }
        // The rest — mapping the data page, removing the host's stack,
        // vDSO and vvar — runs from this stop with the first batch.
        self.setup_pending = true;
        Ok(())
    }

    /// The calls that clear out what the host's exec put in a fresh stub
    /// (its stack, vDSO and vvar: everything but the stub's own pages,
    /// wherever the host placed them), so that the address space holds
    /// only the stub and, later, the guest.
    fn setup_calls() -> [(u64, [u64; 6]); 2] {
        // The top of the user address space the host gives (47-bit on a
        // Linux host, TASK_SIZE a page short of it; lower when nested).
        let user_top = stub::host_top() - PAGE_SIZE;
        let munmap = libc::SYS_munmap as u64;
        let (code, end) = (stub::stub_code(), stub::stub_end());
        [
            (munmap, [0, code, 0, 0, 0, 0]),
            (munmap, [end, user_top - end, 0, 0, 0, 0]),
        ]
    }

    /// Runs the setup of a fresh stub now, if it is pending.
    fn ensure_setup(&mut self) -> Result<(), HostError> {
        if self.setup_pending {
            if let Some((i, e)) = self.run_batch(&[])? {
                return Err(HostError::new(format!("stub setup call {i}"), e));
            }
        }
        Ok(())
    }

    /// The address space this thread runs in.
    pub fn address_space(&self) -> &AddressSpace {
        &self.aspace
    }

    /// The host tid of the stub thread.
    pub fn host_tid(&self) -> i32 {
        self.tid
    }

    /// A handle for other threads to interrupt the running guest.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter::new(
            self.aspace.proc.pid,
            self.tid,
            self.kicked.clone(),
            self.running.clone(),
        )
    }

    fn getregs(&self, regs: &mut Registers) -> Result<(), HostError> {
        check(
            ptrace(
                libc::PTRACE_GETREGS,
                self.tid,
                0,
                regs as *mut Registers as usize,
            ),
            "PTRACE_GETREGS",
        )?;
        Ok(())
    }

    fn setregs(&self, regs: &Registers) -> Result<(), HostError> {
        check(
            ptrace(
                libc::PTRACE_SETREGS,
                self.tid,
                0,
                regs as *const Registers as usize,
            ),
            "PTRACE_SETREGS",
        )?;
        Ok(())
    }

    /// Resumes the stub thread with PTRACE_CONT and waits for its `int3`.
    /// A kick that arrives meanwhile is remembered for the next run.
    fn run_stub(&mut self, regs: &mut Registers) -> Result<(), HostError> {
        regs.orig_rax = u64::MAX;
        // The guest's trap flag (a debugger single-stepping it) must not
        // stop the stub's own code after one instruction.
        regs.eflags &= !0x100;
        self.setregs(regs)?;
        loop {
            check(ptrace(libc::PTRACE_CONT, self.tid, 0, 0), "PTRACE_CONT")?;
            let st = wait_stop(self.tid)?;
            match libc::WSTOPSIG(st) {
                libc::SIGTRAP => break,
                s if s == KICK_SIGNAL => self.kicked.store(true, Ordering::SeqCst),
                s @ (libc::SIGSEGV | libc::SIGBUS | libc::SIGILL) => {
                    return Err(HostError::new(
                        format!("the stub faulted (signal {s}) at {:#x}", regs.rip),
                        0,
                    ));
                }
                _ => {}
            }
        }
        self.getregs(regs)
    }

    /// Carries out the address space's queued changes, up to BATCH_MAX
    /// per stub run, in this thread.
    pub fn flush(&mut self) -> Result<(), HostError> {
        let proc = self.aspace.proc.clone();
        let mut queue = proc.ops.lock().unwrap_or_else(|p| p.into_inner());
        if queue.is_empty() && !self.setup_pending {
            return Ok(());
        }
        let ops = std::mem::take(&mut *queue);
        let calls: Vec<(u64, [u64; 6])> =
            ops.iter().map(|op| op.syscall(STUB_PHYSMEM_FD)).collect();
        // The queue stays locked until the batch is done.
        match self.run_batch(&calls)? {
            None => Ok(()),
            Some((i, e)) => Err(HostError::new(
                format!("stub request {:?} failed", ops[i]),
                e,
            )),
        }
    }

    /// Has the stub thread carry out `calls` (system call number and
    /// arguments) in batches from its data page, stopping at the first
    /// that fails: `Some((its index, errno))`. A fresh stub's setup goes
    /// first, in the same run: the stub maps its data page itself from
    /// registers, then runs the batch.
    pub(crate) fn run_batch(
        &mut self,
        calls: &[(u64, [u64; 6])],
    ) -> Result<Option<(usize, i32)>, HostError> {
        let proc = self.aspace.proc.clone();
        let mut regs = Registers::default();
        self.getregs(&mut regs)?;
        let setup = std::mem::take(&mut self.setup_pending);
        let mut all: Vec<(u64, [u64; 6])> = Vec::with_capacity(calls.len() + 2);
        let skip = if setup {
            all.extend_from_slice(&Self::setup_calls());
            all.len()
        } else {
            0
        };
        all.extend_from_slice(calls);
        if setup {
            stats::stub_call(libc::SYS_mmap as u64);
        }
        for (n, chunk) in all.chunks(BATCH_MAX).enumerate() {
            let mut bytes: Vec<u8> = Vec::with_capacity((chunk.len() + 1) * 64);
            for &(nr, args) in chunk.iter().chain(std::iter::once(&(u64::MAX, [0; 6]))) {
                bytes.extend_from_slice(&nr.to_le_bytes());
                for a in args {
                    bytes.extend_from_slice(&a.to_le_bytes());
                }
                bytes.extend_from_slice(&0u64.to_le_bytes());
            }
            proc.phys.write(proc.data_pfn, 0, &bytes);
            stats::bump(Counter::StubBatches);
            for &(nr, _) in chunk {
                stats::stub_call(nr);
            }
            if setup && n == 0 {
                regs.rip = stub::setup();
                (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9) = (
                    stub::stub_data(),
                    PAGE_SIZE,
                    libc::PROT_READ as u64,
                    (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                    STUB_PHYSMEM_FD as u64,
                    proc.data_pfn * PAGE_SIZE,
                );
            } else {
                regs.rip = stub::batch();
            }
            self.run_stub(&mut regs)?;
            if regs.rbx == 0 {
                return Err(HostError::new(
                    "mapping the stub data page",
                    (regs.rax as i64).wrapping_neg() as i32,
                ));
            }
            // rbx points at the request the batch stopped on.
            let idx = (regs.rbx.wrapping_sub(stub::stub_data()) / 64) as usize;
            if idx < chunk.len() {
                let res = regs.rax as i64;
                let at = n * BATCH_MAX + idx;
                if at < skip {
                    return Err(HostError::new("clearing out a new stub", (-res) as i32));
                }
                return Ok(Some((at - skip, (-res) as i32)));
            }
        }
        Ok(None)
    }

    /// Keeps the stub thread on the CPU its tracer runs on. Every trap is a
    /// wake-up of one by the other; on the same CPU that is a cheap local
    /// switch, across CPUs an inter-processor interrupt (in a VM, several
    /// times the cost of the whole system call). Now and then the stub is
    /// left free for one run, so the host can move a busy guest thread to
    /// an idle CPU.
    fn place(&mut self) {
        const REBALANCE_EVERY: u32 = 256;
        self.runs = self.runs.wrapping_add(1);
        if self.runs.is_multiple_of(REBALANCE_EVERY) {
            if self.pinned.take().is_some() {
                set_affinity(self.tid, None);
            }
            return;
        }
        // SAFETY: sched_getcpu has no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 && self.pinned != Some(cpu) && set_affinity(self.tid, Some(cpu)) {
            self.pinned = Some(cpu);
        }
    }

    /// Runs the guest with `regs` until it traps; on return `regs` holds
    /// the guest's registers at the trap. Queued changes are flushed first.
    pub fn run(&mut self, regs: &mut Registers) -> Result<Trap, HostError> {
        self.flush()?;
        self.place();
        // Running first, then the flag: see [`Interrupter`].
        self.running.store(true, Ordering::SeqCst);
        if self.kicked.swap(false, Ordering::SeqCst) {
            self.running.store(false, Ordering::SeqCst);
            return Ok(Trap::Interrupted);
        }
        // No system call in progress: the host must not restart anything.
        regs.orig_rax = u64::MAX;
        if let Err(e) = self.setregs(regs) {
            self.running.store(false, Ordering::SeqCst);
            return Err(e);
        }
        let resumed = check(ptrace(libc::PTRACE_SYSEMU, self.tid, 0, 0), "PTRACE_SYSEMU");
        let st = resumed.and_then(|_| wait_stop(self.tid));
        self.running.store(false, Ordering::SeqCst);
        let st = st?;
        let sig = libc::WSTOPSIG(st);
        if sig == (libc::SIGTRAP | 0x80) {
            self.getregs(regs)?;
            stats::bump(Counter::TrapSyscall);
            crate::patch::census(self.tid, regs.rip);
            return Ok(Trap::Syscall);
        }
        self.getregs(regs)?;
        if st >> 16 != 0 {
            // A ptrace event stop (e.g. PTRACE_INTERRUPT): nothing for the guest.
            stats::bump(Counter::TrapInterrupted);
            return Ok(Trap::Interrupted);
        }
        let mut si: libc::siginfo_t = unsafe_zeroed();
        check(
            ptrace(
                libc::PTRACE_GETSIGINFO,
                self.tid,
                0,
                &mut si as *mut _ as usize,
            ),
            "PTRACE_GETSIGINFO",
        )?;
        if sig == KICK_SIGNAL || si.si_code <= 0 {
            // Our kick, or a signal some host process sent the stub:
            // never delivered; the guest's kernel decides what happens.
            self.kicked.store(false, Ordering::SeqCst);
            stats::bump(Counter::TrapInterrupted);
            return Ok(Trap::Interrupted);
        }
        stats::bump(Counter::TrapSignal);
        // SAFETY: for kernel-generated fault signals si_addr is valid.
        let addr = unsafe { si.si_addr() } as u64;
        Ok(Trap::Signal(SignalInfo {
            signo: sig,
            code: si.si_code,
            addr,
        }))
    }

    /// Makes a new stub thread in this address space; it waits until a
    /// host thread adopts it.
    pub fn new_thread(&mut self) -> Result<NewThread, HostError> {
        self.ensure_setup()?;
        let mut regs = Registers::default();
        self.getregs(&mut regs)?;
        regs.rip = stub::clone_site();
        regs.rax = libc::SYS_clone as u64;
        (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8) = (STUB_THREAD_FLAGS, 0, 0, 0, 0);
        self.run_stub(&mut regs)?;
        let tid = regs.rax as i64;
        if tid <= 0 {
            return Err(HostError::new("creating a stub thread", (-tid) as i32));
        }
        stats::bump(Counter::ThreadsMade);
        Ok(NewThread {
            tid: tid as libc::pid_t,
        })
    }

    /// Takes over a stub thread made by [`Context::new_thread`]: the
    /// calling host thread becomes its tracer.
    pub fn adopt(aspace: &AddressSpace, t: NewThread) -> Result<Context, HostError> {
        let tid = t.tid;
        let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
        check(
            ptrace(libc::PTRACE_SEIZE, tid, 0, opts as usize),
            "PTRACE_SEIZE of a stub thread",
        )?;
        check(
            ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0),
            "PTRACE_INTERRUPT",
        )?;
        loop {
            let st = wait_stop(tid)?;
            if st >> 16 == libc::PTRACE_EVENT_STOP {
                break;
            }
            // A signal stop first (none is expected): suppress it.
            check(ptrace(libc::PTRACE_CONT, tid, 0, 0), "PTRACE_CONT")?;
        }
        Ok(Context {
            tid,
            aspace: aspace.clone(),
            kicked: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicBool::new(false)),
            pinned: None,
            runs: 0,
            detached: false,
            setup_pending: false,
            _not_send: std::marker::PhantomData,
        })
    }

    /// The guest thread's x87/SSE/AVX state.
    pub fn get_fpu(&self) -> Result<FpuState, HostError> {
        let mut buf = vec![0u8; 16384];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        check(
            ptrace(
                libc::PTRACE_GETREGSET,
                self.tid,
                NT_X86_XSTATE as usize,
                &mut iov as *mut _ as usize,
            ),
            "PTRACE_GETREGSET NT_X86_XSTATE",
        )?;
        buf.truncate(iov.iov_len);
        Ok(FpuState(buf))
    }

    /// Replaces the guest thread's x87/SSE/AVX state.
    pub fn set_fpu(&self, fpu: &FpuState) -> Result<(), HostError> {
        let mut buf = fpu.0.clone();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        check(
            ptrace(
                libc::PTRACE_SETREGSET,
                self.tid,
                NT_X86_XSTATE as usize,
                &mut iov as *mut _ as usize,
            ),
            "PTRACE_SETREGSET NT_X86_XSTATE",
        )?;
        Ok(())
    }

    /// Lets the stub thread go, untraced, at `rip` (registers otherwise
    /// as they are): the seccomp backend's helper thread.
    pub(crate) fn detach(mut self, rip: u64) -> Result<(), HostError> {
        self.ensure_setup()?;
        let mut regs = Registers::default();
        self.getregs(&mut regs)?;
        regs.rip = rip;
        regs.orig_rax = u64::MAX;
        self.setregs(&regs)?;
        self.detached = true;
        check(ptrace(libc::PTRACE_DETACH, self.tid, 0, 0), "PTRACE_DETACH")?;
        Ok(())
    }

    /// Used by the boot checks: the traced thread.
    pub(crate) fn raw_pid(&self) -> libc::pid_t {
        self.tid
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Still at its exec stop (never ran): nothing to end; the process
        // is killed with its last AddressSpace reference.
        if self.detached || self.setup_pending {
            return;
        }
        // End just this stub thread; the process goes with its last
        // AddressSpace reference.
        if Arc::strong_count(&self.aspace.proc) > 1 {
            let mut regs = Registers::default();
            if self.getregs(&mut regs).is_ok() {
                regs.rip = stub::syscall1();
                regs.rax = libc::SYS_exit as u64;
                regs.rdi = 0;
                regs.orig_rax = u64::MAX;
                if self.setregs(&regs).is_ok() && ptrace(libc::PTRACE_CONT, self.tid, 0, 0) >= 0 {
                    let mut st = 0;
                    // SAFETY: st is a valid out-pointer; waiting for our tracee.
                    while unsafe { libc::waitpid(self.tid, &mut st, libc::__WALL) } > 0 {
                        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                            break;
                        }
                        ptrace(libc::PTRACE_CONT, self.tid, 0, 0);
                    }
                }
            }
        }
    }
}

/// Pins a host thread to one CPU (`Some`) or lets it run anywhere.
pub(crate) fn set_affinity(tid: libc::pid_t, cpu: Option<i32>) -> bool {
    stats::bump(Counter::Affinity);
    // SAFETY: cpu_set_t is plain data; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c as usize, &mut set),
            None => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs (siginfo_t).
    unsafe { std::mem::zeroed() }
}
