//! The guest's register file, laid out as the host's `user_regs_struct` so
//! that PTRACE_GETREGS/SETREGS move it in one call.

/// General-purpose registers of an x86_64 thread (`struct user_regs_struct`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Registers {
    /// The six system-call arguments, in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// The extended (x87/SSE/AVX) state of a thread, as the host's XSAVE
/// layout (NT_X86_XSTATE). Opaque to the kernel except for signal frames.
#[derive(Clone, PartialEq, Eq)]
pub struct FpuState(pub Vec<u8>);

impl std::fmt::Debug for FpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FpuState({} bytes)", self.0.len())
    }
}

/// The XSAVE features the host enabled (XCR0), which debuggers read from
/// the first software-reserved word of an NT_X86_XSTATE image. x87 and SSE
/// only if the CPU has no XSAVE.
pub fn xcr0() -> u64 {
    let c = core::arch::x86_64::__cpuid(1);
    if c.ecx & (1 << 27) == 0 {
        return 3; // no OSXSAVE: xgetbv would fault
    }
    let (lo, hi): (u32, u32);
    // SAFETY: OSXSAVE is set, so xgetbv with ecx=0 reads XCR0 and has no
    // other effect.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    ((hi as u64) << 32) | lo as u64
}
