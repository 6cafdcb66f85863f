//! The seccomp backend's stub: position-independent code copied into a
//! physmem frame and mapped read+execute at a random base in each stub
//! process, and the two seccomp filters (BPF) that confine it.
//!
//! Layout from the base `B` (all above the guest's TASK_SIZE):
//!
//! | offset | page | stub's view | what |
//! |---|---|---|---|
//! | 0x0000 | code | r-x | this code |
//! | 0x1000 | requests | r-- | map/unmap/protect/clone batches for the helper thread |
//! | 0x2000 | filters | r-- | the two BPF programs and the bootstrap sigaction |
//! | 0x3000 | doorbell | rw- | the helper's wake-up word (a hint only) |
//! | 0x10000 + i·REGION | thread i | rw- | control page, then the thread's signal stack |
//!
//! Entry points:
//! - `handler`: the SIGSYS/SIGSEGV/SIGBUS/SIGILL/SIGTRAP/SIGFPE/kick
//!   handler of guest threads. The host has saved every register and the
//!   XSAVE area in the signal frame on the thread's signal stack (a
//!   shared physmem region); the handler publishes the frame's address,
//!   hands off to the kernel (bounded spin, then futex) and, told to
//!   resume, returns into the guest with rt_sigreturn on the frame the
//!   kernel rewrote — or exits the thread.
//! - `helper`: the loop of the helper thread (the stub's first thread),
//!   which never runs guest code: it waits for a new sequence number in
//!   the read-only requests page, runs the batch, and reports completion
//!   with pwrite on physmem into a frame that is not mapped in the stub.
//! - the clone site inside the helper's batch loop: a new guest thread
//!   sets its signal stack, unblocks signals, installs the guest filter
//!   and traps once (getpid) so that its kernel thread finds it parked.
//!
//! The code uses registers only: no stack, no writable data except the
//! control pages and the doorbell, which it trusts for nothing but its own
//! thread's registers.

use std::sync::OnceLock;

/// Page offsets from the stub base.
pub const OFF_REQ: u64 = 0x1000;
pub const OFF_FILTER: u64 = 0x2000;
pub const OFF_DOORBELL: u64 = 0x3000;
pub const OFF_THREADS: u64 = 0x10000;

/// The requests page: header words, then 64-byte requests.
pub const REQ_SEQ: usize = 0;
pub const REQ_COMP_OFF: usize = 8;
pub const REQ_OK_TOKEN: usize = 16;
pub const REQ_REGION_MASK: usize = 24;
pub const REQ_FIRST: usize = 64;
/// Requests per batch (one slot is kept for the end marker).
pub const REQ_MAX: usize = (4096 - REQ_FIRST) / 64 - 1;

/// The filters page: `struct sock_fprog` of the helper's and the guest's
/// filter, the sigaction used at bootstrap, then the instructions.
pub const FLT_HELPER_PROG: usize = 0;
pub const FLT_GUEST_PROG: usize = 16;
pub const FLT_SIGACTION: usize = 32;
pub const FLT_INSNS: usize = 64;

/// The control page of a thread.
pub const CTL_STATE: usize = 0;
pub const CTL_UC: usize = 8;
pub const CTL_FS: usize = 16;
pub const CTL_GS: usize = 24;
pub const CTL_SIGSTACK: usize = 32;
pub const CTL_MASK: usize = 64;
pub const CTL_TID: usize = 72;
/// Iterations of `pause` the handler may spin for RESUME before it sleeps,
/// chosen by the kernel before each resume (see `seccomp::Handoff`); the
/// handler clamps it to [`STUB_SPIN_MAX`], so a guest that rewrites it can
/// only waste its own time.
pub const CTL_SPIN: usize = 80;
/// The stub address of [`Sites::patch_entry`], for code that enters the
/// kernel without a signal (`jmp *%gs:CTL_ENTRY`; see [`crate::patch`]).
pub const CTL_ENTRY: usize = 88;
/// The bytes of the control page the kernel sets up for a new thread.
pub const CTL_LEN: usize = 96;
/// Scratch words of the patch entry: the guest registers it needs free
/// before its frame has a place (trusted for nothing: they only ever hold
/// the thread's own registers on their way into its frame).
pub const CTL_PX_RDI: usize = 96;
pub const CTL_PX_RSI: usize = 104;
pub const CTL_PX_RDX: usize = 112;
pub const CTL_PX_R10: usize = 120;
pub const CTL_PX_RBX: usize = 128;
pub const CTL_PX_FLAGS: usize = 136;
pub const CTL_PX_BLOCK: usize = 144;
/// The number a site block with [`BLK_NR_IN_RAX`] passes to the entry
/// (written by [`Sites::patch_entry_rax`]).
pub const CTL_PX_NR: usize = 152;

/// The patch entry's parameters, at the end of the (read-only) filters
/// page: where in a thread region its frame and XSAVE area go, the XSAVE
/// size and features of the host's own signal frames, and whether
/// patching is on (the handler then leaves a guest thread whose own GS
/// base is zero running with its control page as GS base).
pub const FLT_PATCH: usize = 4096 - 64;
pub const P_UC: usize = 0;
pub const P_FP: usize = 8;
pub const P_XSIZE: usize = 16;
pub const P_ON: usize = 20;
pub const P_XFEAT: usize = 24;

/// A site block's fields the entry reads (see [`crate::patch`]): the
/// address after the site (where the guest resumes) and the number.
pub const BLK_RET: usize = 32;
pub const BLK_NR: usize = 40;
/// A site block's number that means "the number the code entered with in
/// rax" (the entry at [`Sites::patch_entry_rax`] saved it): sites whose
/// number is not a constant of the site (glibc's `syscall(3)`).
pub const BLK_NR_IN_RAX: u32 = u32::MAX;

/// Offsets in a ucontext (x86_64) that the patch entry fills.
const UC_GREGS: usize = 40;
const UC_CSGSFS: usize = 184;
const UC_FPSTATE: usize = 224;
const UC_SIGMASK: usize = 296;
const UC_SI: usize = 304;

/// Values of the state word. The kernel sets RESUME (and may turn it
/// into KWAIT when it goes to sleep waiting for the next trap: the stub
/// treats both as "run the guest"); the stub sets TRAPPED at a trap and
/// SWAIT when it sleeps; the kernel sets EXIT to end the thread.
pub const ST_RESUME: u32 = 1;
pub const ST_KWAIT: u32 = 2;
pub const ST_TRAPPED: u32 = 3;
pub const ST_SWAIT: u32 = 4;
pub const ST_EXIT: u32 = 5;

/// The most iterations the handler spins (each a `pause`, some 10-150 ns
/// depending on the CPU) before sleeping on its futex, whatever the
/// control page says: spinning is bounded to tens of microseconds.
pub const STUB_SPIN_MAX: u32 = 4096;

std::arch::global_asm!(
    ".pushsection .rodata.ruml_sstub,\"a\"",
    ".balign 4096",
    ".globl ruml_sstub_start",
    "ruml_sstub_start:",
    // ---- the guest threads' signal handler --------------------------
    ".globl ruml_sstub_handler",
    "ruml_sstub_handler:",
    // A kick that lands in the patch entry before it has blocked signals
    // is dropped: the entry is about to trap anyway, and the kernel,
    // which kicked, reports the interruption at its next run.
    "    cmp edi, {kick}",
    "    jne 30f",
    "    mov rax, [rdx + {uc_gregs} + 16*8]",
    "    lea rcx, [rip + ruml_sstub_patch_entry_rax]",
    "    cmp rax, rcx",
    "    jb 30f",
    "    lea rcx, [rip + ruml_sstub_site_block]",
    "    cmp rax, rcx",
    "    jae 30f",
    "    mov rsp, rdx",
    "    mov eax, 15",
    "    jmp 32f",
    "30:",
    "    mov r12, rdx",
    "    lea r15, [rip + ruml_sstub_start + {req}]",
    "    mov rbx, rsp",
    "    and rbx, [r15 + {req_mask}]",
    // The patch entry joins here: rbx = control page, r12 = frame.
    "31:",
    "    mov [rbx + {ctl_uc}], r12",
    "    rdfsbase rax",
    "    mov [rbx + {ctl_fs}], rax",
    "    rdgsbase rax",
    "    cmp rax, rbx",
    "    jne 33f",
    "    xor eax, eax",
    "33:",
    "    mov [rbx + {ctl_gs}], rax",
    "    mov eax, {trapped}",
    "    xchg [rbx], eax",
    "    cmp eax, {kwait}",
    "    jne 2f",
    "    mov rdi, rbx",
    "    mov esi, 1",
    "    mov edx, 1",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    ".globl ruml_sstub_site_wake",
    "ruml_sstub_site_wake:",
    "2:",
    "    mov ecx, [rbx + {ctl_spin}]",
    "    mov edx, {spin_max}",
    "    cmp ecx, edx",
    "    cmova ecx, edx",
    "3:",
    "    mov eax, [rbx]",
    "    cmp eax, {resume}",
    "    je 5f",
    "    cmp eax, {kwait}",
    "    je 5f",
    "    cmp eax, {exit}",
    "    je 6f",
    "    test ecx, ecx",
    "    jz 4f",
    "    dec ecx",
    "    pause",
    "    jmp 3b",
    "4:",
    "    mov edx, {swait}",
    "    lock cmpxchg [rbx], edx",
    "    mov rdi, rbx",
    "    xor esi, esi",
    "    mov edx, {swait}",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    ".globl ruml_sstub_site_wait",
    "ruml_sstub_site_wait:",
    "    jmp 2b",
    "5:",
    "    mov rax, [rbx + {ctl_fs}]",
    "    wrfsbase rax",
    // A guest whose own GS base is zero runs with its control page as GS
    // base while patching is on: patched sites find the entry through it.
    "    mov rax, [rbx + {ctl_gs}]",
    "    test rax, rax",
    "    jnz 34f",
    "    lea rcx, [rip + ruml_sstub_start + {filter} + {flt_patch}]",
    "    cmp dword ptr [rcx + {p_on}], 0",
    "    je 34f",
    "    mov rax, rbx",
    "34:",
    "    wrgsbase rax",
    "    mov rsp, r12",
    "    mov eax, 15",
    "32:",
    "    syscall",
    ".globl ruml_sstub_site_sigreturn",
    "ruml_sstub_site_sigreturn:",
    "    ud2",
    "6:",
    "    xor edi, edi",
    "    mov eax, 60",
    "    syscall",
    ".globl ruml_sstub_site_exit",
    "ruml_sstub_site_exit:",
    "    ud2",
    // ---- the patch entry ---------------------------------------------
    // Reached from a patched site (crate::patch) with rax = the guest's
    // arithmetic flags (lahf in ah, seto in al), rcx = the GS base (the
    // thread's control page), r11 = the site's block, every other
    // register the guest's. It blocks signals, builds on the thread's
    // signal stack the frame the host would have built for the site's
    // SIGSYS (registers, XSAVE area, siginfo), and joins the handler,
    // whose rt_sigreturn restores it all at once.
    // The entry for sites whose number is in rax (crate::patch): reached
    // with rax = the number, the guest's flags untouched, r11 = the
    // site's block (whose number is BLK_NR_IN_RAX), rcx free, every
    // other register the guest's. It saves the number in the control
    // page (the GS base, as the entry below takes it), saves the flags as
    // the entry expects them, and falls into it. Its length is what a
    // block subtracts from `%gs:CTL_ENTRY` to reach it.
    ".globl ruml_sstub_patch_entry_rax",
    "ruml_sstub_patch_entry_rax:",
    "    rdgsbase rcx",
    "    mov [rcx + {px_nr}], rax",
    "    lahf",
    "    seto al",
    ".globl ruml_sstub_patch_entry",
    "ruml_sstub_patch_entry:",
    "    mov [rcx + {px_rdi}], rdi",
    "    mov [rcx + {px_rsi}], rsi",
    "    mov [rcx + {px_rdx}], rdx",
    "    mov [rcx + {px_r10}], r10",
    "    mov [rcx + {px_rbx}], rbx",
    "    mov [rcx + {px_flags}], rax",
    "    mov [rcx + {px_block}], r11",
    "    mov rbx, rcx",
    "    xor edi, edi",
    "    lea rsi, [rip + ruml_sstub_start + {filter} + {sigaction} + 24]",
    "    xor edx, edx",
    "    mov r10d, 8",
    "    mov eax, 14",
    "    syscall",
    ".globl ruml_sstub_site_block",
    "ruml_sstub_site_block:",
    "    lea rcx, [rip + ruml_sstub_start + {filter} + {flt_patch}]",
    "    mov rdi, [rcx + {p_uc}]",
    "    add rdi, rbx",
    "    mov [rdi + {uc_gregs} + 0*8], r8",
    "    mov [rdi + {uc_gregs} + 1*8], r9",
    "    mov rax, [rbx + {px_r10}]",
    "    mov [rdi + {uc_gregs} + 2*8], rax",
    "    mov [rdi + {uc_gregs} + 4*8], r12",
    "    mov [rdi + {uc_gregs} + 5*8], r13",
    "    mov [rdi + {uc_gregs} + 6*8], r14",
    "    mov [rdi + {uc_gregs} + 7*8], r15",
    "    mov rax, [rbx + {px_rdi}]",
    "    mov [rdi + {uc_gregs} + 8*8], rax",
    "    mov rax, [rbx + {px_rsi}]",
    "    mov [rdi + {uc_gregs} + 9*8], rax",
    "    mov [rdi + {uc_gregs} + 10*8], rbp",
    "    mov rax, [rbx + {px_rbx}]",
    "    mov [rdi + {uc_gregs} + 11*8], rax",
    "    mov rax, [rbx + {px_rdx}]",
    "    mov [rdi + {uc_gregs} + 12*8], rax",
    "    mov r11, [rbx + {px_block}]",
    "    mov eax, [r11 + {blk_nr}]",
    "    cmp eax, {nr_in_rax}",
    "    jne 36f",
    "    mov rax, [rbx + {px_nr}]",
    "36:",
    "    mov [rdi + {uc_gregs} + 13*8], rax",
    "    mov rax, [r11 + {blk_ret}]",
    "    mov [rdi + {uc_gregs} + 14*8], rax",
    "    mov [rdi + {uc_gregs} + 16*8], rax",
    "    mov [rdi + {uc_gregs} + 15*8], rsp",
    // RFLAGS: the live ones (DF, AC, TF are as at the site), with the
    // arithmetic flags saved there. r11 gets them too, as after `syscall`.
    "    mov rsp, rdi",
    "    pushfq",
    "    pop rax",
    "    and rax, -0x8d6",
    "    movzx edx, byte ptr [rbx + {px_flags} + 1]",
    "    and edx, 0xd5",
    "    or rax, rdx",
    "    movzx edx, byte ptr [rbx + {px_flags}]",
    "    and edx, 1",
    "    shl edx, 11",
    "    or rax, rdx",
    "    mov [rdi + {uc_gregs} + 17*8], rax",
    "    mov [rdi + {uc_gregs} + 3*8], rax",
    // uc_flags (FP_XSTATE | SIGCONTEXT_SS | STRICT_RESTORE_SS), uc_link,
    // cs and ss, err, trapno, oldmask, cr2, the mask (the kernel writes
    // the stack and mask before any resume).
    "    mov qword ptr [rdi], 7",
    "    xor eax, eax",
    "    mov [rdi + 8], rax",
    "    mov [rdi + {uc_csgsfs} + 8], rax",
    "    mov [rdi + {uc_csgsfs} + 16], rax",
    "    mov [rdi + {uc_csgsfs} + 24], rax",
    "    mov [rdi + {uc_csgsfs} + 32], rax",
    "    mov [rdi + {uc_sigmask}], rax",
    "    movabs rax, 0x002b000000000033",
    "    mov [rdi + {uc_csgsfs}], rax",
    // siginfo: SIGSYS, SYS_SECCOMP, and an errno the host's never has
    // (crate::patch::ENTRY_ERRNO: counted apart by RUML_HOST_STATS).
    "    mov qword ptr [rdi + {uc_si}], 31",
    "    mov dword ptr [rdi + {uc_si} + 4], {entry_errno}",
    "    mov dword ptr [rdi + {uc_si} + 8], 1",
    // The XSAVE area, as the host writes it for a signal frame: header
    // cleared, XSAVE64 of the host's user features, software bytes.
    "    mov rsi, [rcx + {p_fp}]",
    "    add rsi, rbx",
    "    mov [rdi + {uc_fpstate}], rsi",
    "    xor eax, eax",
    "    mov [rsi + 512], rax",
    "    mov [rsi + 520], rax",
    "    mov [rsi + 528], rax",
    "    mov [rsi + 536], rax",
    "    mov [rsi + 544], rax",
    "    mov [rsi + 552], rax",
    "    mov [rsi + 560], rax",
    "    mov [rsi + 568], rax",
    "    mov eax, [rcx + {p_xfeat}]",
    "    mov edx, [rcx + {p_xfeat} + 4]",
    "    xsave64 [rsi]",
    "    mov dword ptr [rsi + 464], 0x46505853",
    "    mov eax, [rcx + {p_xsize}]",
    "    lea edx, [rax + 4]",
    "    mov [rsi + 468], edx",
    "    mov edx, [rcx + {p_xfeat}]",
    "    mov [rsi + 472], edx",
    "    mov edx, [rcx + {p_xfeat} + 4]",
    "    mov [rsi + 476], edx",
    "    mov [rsi + 480], eax",
    "    mov dword ptr [rsi + rax], 0x46505845",
    "    mov r12, rdi",
    "    jmp 31b",
    // ---- the helper thread ---------------------------------------------
    ".globl ruml_sstub_helper",
    "ruml_sstub_helper:",
    // Block every signal here, not during setup: a forced SIGTRAP (the
    // setup's int3 stops) while blocked would reset its handler, and guest
    // breakpoints and single steps need it.
    "    mov edi, 2",
    "    lea rsi, [rip + ruml_sstub_start + {filter} + {sigaction} + 24]",
    "    xor edx, edx",
    "    mov r10d, 8",
    "    mov eax, 14",
    "    syscall",
    "    lea r15, [rip + ruml_sstub_start + {req}]",
    "    lea r14, [rip + ruml_sstub_start + {doorbell}]",
    "    xor r13d, r13d",
    "10:",
    "    mov rax, [r15]",
    "    cmp rax, r13",
    "    jne 11f",
    "    mov rdi, r15",
    "    xor esi, esi",
    "    mov edx, r13d",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    "    jmp 10b",
    "11:",
    "    mov r13, rax",
    "    lea rbx, [r15 + {req_first}]",
    "12:",
    "    lea rax, [r15 + 4096]",
    "    cmp rbx, rax",
    "    jae 14f",
    "    mov rax, [rbx]",
    "    cmp rax, -1",
    "    je 14f",
    "    mov r12, rax",
    "    mov rdi, [rbx + 8]",
    "    mov rsi, [rbx + 16]",
    "    mov rdx, [rbx + 24]",
    "    mov r10, [rbx + 32]",
    "    mov r8, [rbx + 40]",
    "    mov r9, [rbx + 48]",
    "    syscall",
    "    cmp r12, 56",
    "    jne 13f",
    "    test rax, rax",
    "    jz 20f",
    "13:",
    "    cmp rax, -4095",
    "    jae 15f",
    "    add rbx, 64",
    "    jmp 12b",
    "14:",
    "    lea rsi, [r15 + {req_ok}]",
    "    jmp 16f",
    "15:",
    "    lea rsi, [rbx + 56]",
    "16:",
    "    mov edi, 3",
    "    mov edx, 8",
    "    mov r10, [r15 + {req_comp}]",
    "    add r10, 8",
    "    mov eax, 18",
    "    syscall",
    "    mov edi, 3",
    "    mov rsi, r15",
    "    mov edx, 8",
    "    mov r10, [r15 + {req_comp}]",
    "    mov eax, 18",
    "    syscall",
    "    lock inc dword ptr [r14]",
    "    mov rdi, r14",
    "    mov esi, 1",
    "    mov edx, 0x7fffffff",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    "    jmp 10b",
    // ---- a new guest thread (clone child of the helper; r9 = its
    // control page) ------------------------------------------------------
    "20:",
    "    mov rbx, r9",
    "    lea rdi, [rbx + {ctl_sigstack}]",
    "    xor esi, esi",
    "    mov eax, 131",
    "    syscall",
    "    mov edi, 2",
    "    lea rsi, [rbx + {ctl_mask}]",
    "    xor edx, edx",
    "    mov r10d, 8",
    "    mov eax, 14",
    "    syscall",
    "    mov edi, 1",
    "    xor esi, esi",
    "    lea rdx, [rip + ruml_sstub_start + {filter} + {guest_prog}]",
    "    mov eax, 317",
    "    syscall",
    "    mov eax, 39",
    "    syscall",
    ".globl ruml_sstub_site_first",
    "ruml_sstub_site_first:",
    "    ud2",
    ".globl ruml_sstub_end",
    "ruml_sstub_end:",
    ".popsection",
    req = const OFF_REQ,
    doorbell = const OFF_DOORBELL,
    filter = const OFF_FILTER,
    req_mask = const REQ_REGION_MASK,
    req_first = const REQ_FIRST,
    req_ok = const REQ_OK_TOKEN,
    req_comp = const REQ_COMP_OFF,
    guest_prog = const FLT_GUEST_PROG,
    sigaction = const FLT_SIGACTION,
    ctl_uc = const CTL_UC,
    ctl_fs = const CTL_FS,
    ctl_gs = const CTL_GS,
    ctl_sigstack = const CTL_SIGSTACK,
    ctl_mask = const CTL_MASK,
    trapped = const ST_TRAPPED,
    kwait = const ST_KWAIT,
    resume = const ST_RESUME,
    exit = const ST_EXIT,
    swait = const ST_SWAIT,
    ctl_spin = const CTL_SPIN,
    spin_max = const STUB_SPIN_MAX,
    kick = const crate::ptrace::KICK_SIGNAL,
    uc_gregs = const UC_GREGS,
    uc_csgsfs = const UC_CSGSFS,
    uc_fpstate = const UC_FPSTATE,
    uc_sigmask = const UC_SIGMASK,
    uc_si = const UC_SI,
    entry_errno = const crate::patch::ENTRY_ERRNO as i32,
    flt_patch = const FLT_PATCH,
    p_uc = const P_UC,
    p_fp = const P_FP,
    p_xsize = const P_XSIZE,
    p_on = const P_ON,
    p_xfeat = const P_XFEAT,
    px_rdi = const CTL_PX_RDI,
    px_rsi = const CTL_PX_RSI,
    px_rdx = const CTL_PX_RDX,
    px_r10 = const CTL_PX_R10,
    px_rbx = const CTL_PX_RBX,
    px_flags = const CTL_PX_FLAGS,
    px_block = const CTL_PX_BLOCK,
    px_nr = const CTL_PX_NR,
    nr_in_rax = const BLK_NR_IN_RAX as i32,
    blk_ret = const BLK_RET,
    blk_nr = const BLK_NR,
);

extern "C" {
    static ruml_sstub_start: u8;
    static ruml_sstub_handler: u8;
    static ruml_sstub_site_wake: u8;
    static ruml_sstub_site_wait: u8;
    static ruml_sstub_site_sigreturn: u8;
    static ruml_sstub_site_exit: u8;
    static ruml_sstub_site_first: u8;
    static ruml_sstub_patch_entry_rax: u8;
    static ruml_sstub_patch_entry: u8;
    static ruml_sstub_site_block: u8;
    static ruml_sstub_helper: u8;
    static ruml_sstub_end: u8;
}

fn off(sym: *const u8) -> u64 {
    sym as u64 - &raw const ruml_sstub_start as u64
}

/// Offsets (from the base) of the stub's entry points and of the
/// instructions just after each system call guest threads may make.
#[derive(Clone, Copy, Debug)]
pub struct Sites {
    pub handler: u64,
    pub helper: u64,
    pub wake: u64,
    pub wait: u64,
    pub sigreturn: u64,
    pub exit: u64,
    pub first: u64,
    /// The signal-less entry of patched sites, and the instruction after
    /// its rt_sigprocmask (which blocks every signal).
    pub patch_entry: u64,
    /// The entry for sites whose number is in rax, just before
    /// `patch_entry` (which it falls into).
    pub patch_entry_rax: u64,
    pub block: u64,
    pub code_len: u64,
}

pub fn sites() -> Sites {
    Sites {
        handler: off(&raw const ruml_sstub_handler),
        helper: off(&raw const ruml_sstub_helper),
        wake: off(&raw const ruml_sstub_site_wake),
        wait: off(&raw const ruml_sstub_site_wait),
        sigreturn: off(&raw const ruml_sstub_site_sigreturn),
        exit: off(&raw const ruml_sstub_site_exit),
        first: off(&raw const ruml_sstub_site_first),
        patch_entry: off(&raw const ruml_sstub_patch_entry),
        patch_entry_rax: off(&raw const ruml_sstub_patch_entry_rax),
        block: off(&raw const ruml_sstub_site_block),
        code_len: off(&raw const ruml_sstub_end),
    }
}

/// The stub's code bytes (less than a page).
pub fn code() -> &'static [u8] {
    static CODE: OnceLock<Vec<u8>> = OnceLock::new();
    CODE.get_or_init(|| {
        let n = sites().code_len as usize;
        // SAFETY: the section defined above is `n` bytes long.
        unsafe { std::slice::from_raw_parts(&raw const ruml_sstub_start, n).to_vec() }
    })
}

// ---- BPF --------------------------------------------------------------

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JGT_K: u16 = 0x25;
const BPF_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_BIT: u32 = 0x4000_0000;

const D_NR: u32 = 0;
const D_ARCH: u32 = 4;
const D_IP_LO: u32 = 8;
const D_IP_HI: u32 = 12;
fn d_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
fn d_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

/// A BPF program under construction, with symbolic jumps resolved at the
/// end: `Jmp::To(label)` or the shared return labels.
struct Prog {
    insns: Vec<(u16, Jmp, Jmp, u32)>,
    labels: Vec<Option<usize>>,
}

#[derive(Clone, Copy)]
enum Jmp {
    Next,
    Label(usize),
}

const L_ALLOW: usize = 0;
const L_TRAP: usize = 1;
const L_KILL: usize = 2;

impl Prog {
    fn new() -> Prog {
        Prog {
            insns: Vec::new(),
            labels: vec![None, None, None],
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn ld(&mut self, off: u32) {
        self.insns.push((BPF_LD_W_ABS, Jmp::Next, Jmp::Next, off));
    }
    fn and(&mut self, k: u32) {
        self.insns.push((BPF_AND_K, Jmp::Next, Jmp::Next, k));
    }
    /// if A == k goto t else goto f
    fn jeq(&mut self, k: u32, t: Jmp, f: Jmp) {
        self.insns.push((BPF_JEQ_K, t, f, k));
    }
    fn jge(&mut self, k: u32, t: Jmp, f: Jmp) {
        self.insns.push((BPF_JGE_K, t, f, k));
    }
    fn jgt(&mut self, k: u32, t: Jmp, f: Jmp) {
        self.insns.push((BPF_JGT_K, t, f, k));
    }
    fn ret(&mut self, k: u32) {
        self.insns.push((BPF_RET_K, Jmp::Next, Jmp::Next, k));
    }
    /// Requires argument `i` (all 64 bits) to equal `v`, else traps.
    fn arg_eq(&mut self, i: u32, v: u64) {
        self.ld(d_arg_hi(i));
        self.jeq((v >> 32) as u32, Jmp::Next, Jmp::Label(L_TRAP));
        self.ld(d_arg_lo(i));
        self.jeq(v as u32, Jmp::Next, Jmp::Label(L_TRAP));
    }
    /// The common head: the architecture first (anything but x86_64 kills
    /// the stub process: int 0x80 and 32-bit code segments report i386),
    /// then x32 numbers (bit 30) and anything above trap.
    fn head(&mut self) {
        self.ld(D_ARCH);
        self.jeq(AUDIT_ARCH_X86_64, Jmp::Next, Jmp::Label(L_KILL));
        self.ld(D_NR);
        self.jge(X32_BIT, Jmp::Label(L_TRAP), Jmp::Next);
    }
    fn finish(mut self) -> Vec<u8> {
        self.ret(RET_TRAP);
        self.here(L_ALLOW);
        self.ret(RET_ALLOW);
        self.here(L_TRAP);
        self.ret(RET_TRAP);
        self.here(L_KILL);
        self.ret(RET_KILL_PROCESS);
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for (i, &(code, jt, jf, k)) in self.insns.iter().enumerate() {
            let rel = |j: Jmp| -> u8 {
                match j {
                    Jmp::Next => 0,
                    Jmp::Label(l) => {
                        let target = self.labels[l].expect("BPF label placed");
                        let d = target - i - 1;
                        assert!(d < 256, "BPF jump too far");
                        d as u8
                    }
                }
            };
            out.extend_from_slice(&code.to_le_bytes());
            out.push(rel(jt));
            out.push(rel(jf));
            out.extend_from_slice(&k.to_le_bytes());
        }
        out
    }
}

/// Where things are in one stub process, for its filters.
#[derive(Clone, Copy, Debug)]
pub struct FilterParams {
    pub base: u64,
    /// Offset in physmem of the completion frame (not mapped in the stub).
    pub comp_off: u64,
    pub region: u64,
    pub max_threads: u64,
    pub clone_flags: u64,
}

/// The helper thread's filter (inherited by every guest thread, which
/// adds the guest filter on top; the stricter result wins). Default: trap
/// — the helper blocks every signal, so a trap there kills the stub.
pub fn helper_filter(p: &FilterParams) -> Vec<u8> {
    let mut f = Prog::new();
    f.head();
    let simple = [
        libc::SYS_futex,
        libc::SYS_rt_sigreturn,
        libc::SYS_exit,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigprocmask,
    ];
    for nr in simple {
        f.jeq(nr as u32, Jmp::Label(L_ALLOW), Jmp::Next);
    }
    let mmap = f.label();
    let pwrite = f.label();
    let clone = f.label();
    let seccomp = f.label();
    f.jeq(libc::SYS_mmap as u32, Jmp::Label(mmap), Jmp::Next);
    f.jeq(libc::SYS_pwrite64 as u32, Jmp::Label(pwrite), Jmp::Next);
    f.jeq(libc::SYS_clone as u32, Jmp::Label(clone), Jmp::Next);
    f.jeq(libc::SYS_seccomp as u32, Jmp::Label(seccomp), Jmp::Next);
    f.ret(RET_TRAP);
    // mmap: only physmem, only MAP_SHARED|MAP_FIXED, never in the guest's
    // view above the stub's own area... the kernel chooses addresses.
    f.here(mmap);
    f.arg_eq(4, crate::stub::STUB_PHYSMEM_FD as u64);
    f.arg_eq(3, (libc::MAP_SHARED | libc::MAP_FIXED) as u64);
    f.ret(RET_ALLOW);
    // pwrite64: 8 bytes from the read-only requests page into the
    // completion frame of physmem, nowhere else.
    f.here(pwrite);
    f.arg_eq(0, crate::stub::STUB_PHYSMEM_FD as u64);
    f.arg_eq(2, 8);
    let req = p.base + OFF_REQ;
    f.ld(d_arg_hi(1));
    f.jeq((req >> 32) as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(d_arg_lo(1));
    f.and(0xffff_f000);
    f.jeq(req as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(d_arg_hi(3));
    f.jeq((p.comp_off >> 32) as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(d_arg_lo(3));
    f.jeq(p.comp_off as u32, Jmp::Label(L_ALLOW), Jmp::Next);
    f.jeq(
        p.comp_off as u32 + 8,
        Jmp::Label(L_ALLOW),
        Jmp::Label(L_TRAP),
    );
    // clone: only the stub-thread flags.
    f.here(clone);
    f.arg_eq(0, p.clone_flags);
    f.ret(RET_ALLOW);
    // seccomp: only adding a filter (the guest filter, for new threads).
    f.here(seccomp);
    f.arg_eq(0, 1);
    f.ret(RET_ALLOW);
    f.finish()
}

/// The guest threads' filter: every system call traps, except from the
/// exact instructions of the handler: futex (wait without timeout, or
/// wake) on a thread's own state word, rt_sigreturn, and exit; and from
/// the patch entry's one instruction, rt_sigprocmask blocking every
/// signal (what entering the handler does).
pub fn guest_filter(p: &FilterParams) -> Vec<u8> {
    let s = sites();
    let mut f = Prog::new();
    f.head();
    let code = p.base;
    f.ld(D_IP_HI);
    f.jeq((code >> 32) as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(D_IP_LO);
    let futex = f.label();
    let sigret = f.label();
    let exit = f.label();
    let block = f.label();
    f.jeq((code + s.block) as u32, Jmp::Label(block), Jmp::Next);
    f.jeq((code + s.wake) as u32, Jmp::Label(futex), Jmp::Next);
    f.jeq((code + s.wait) as u32, Jmp::Label(futex), Jmp::Next);
    f.jeq((code + s.sigreturn) as u32, Jmp::Label(sigret), Jmp::Next);
    f.jeq((code + s.exit) as u32, Jmp::Label(exit), Jmp::Label(L_TRAP));
    f.here(sigret);
    f.ld(D_NR);
    f.jeq(
        libc::SYS_rt_sigreturn as u32,
        Jmp::Label(L_ALLOW),
        Jmp::Label(L_TRAP),
    );
    f.here(exit);
    f.ld(D_NR);
    f.jeq(
        libc::SYS_exit as u32,
        Jmp::Label(L_ALLOW),
        Jmp::Label(L_TRAP),
    );
    // The patch entry's rt_sigprocmask: only blocking every signal (the
    // handler's own mask, from the read-only filters page), no old set.
    f.here(block);
    f.ld(D_NR);
    f.jeq(
        libc::SYS_rt_sigprocmask as u32,
        Jmp::Next,
        Jmp::Label(L_TRAP),
    );
    f.arg_eq(0, libc::SIG_BLOCK as u64);
    f.arg_eq(1, p.base + OFF_FILTER + FLT_SIGACTION as u64 + 24);
    f.arg_eq(2, 0);
    f.arg_eq(3, 8);
    f.ret(RET_ALLOW);
    f.here(futex);
    f.ld(D_NR);
    f.jeq(libc::SYS_futex as u32, Jmp::Next, Jmp::Label(L_TRAP));
    // uaddr: exactly the state word of one of this stub's thread slots.
    let first = p.base + OFF_THREADS;
    let last = first + (p.max_threads - 1) * p.region;
    f.ld(d_arg_hi(0));
    f.jeq((first >> 32) as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(d_arg_lo(0));
    f.jge(first as u32, Jmp::Next, Jmp::Label(L_TRAP));
    f.jgt(last as u32, Jmp::Label(L_TRAP), Jmp::Next);
    f.and((p.region - 1) as u32);
    f.jeq(0, Jmp::Next, Jmp::Label(L_TRAP));
    // op: FUTEX_WAKE, or FUTEX_WAIT with no timeout.
    f.ld(d_arg_hi(1));
    f.jeq(0, Jmp::Next, Jmp::Label(L_TRAP));
    f.ld(d_arg_lo(1));
    let wait = f.label();
    f.jeq(libc::FUTEX_WAKE as u32, Jmp::Label(L_ALLOW), Jmp::Next);
    f.jeq(
        libc::FUTEX_WAIT as u32,
        Jmp::Label(wait),
        Jmp::Label(L_TRAP),
    );
    f.here(wait);
    f.arg_eq(3, 0);
    f.ret(RET_ALLOW);
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_small_and_sites_ordered() {
        let s = sites();
        assert!(s.code_len < 4096);
        assert!(s.handler < s.wake && s.wake < s.wait && s.wait < s.sigreturn);
        assert!(s.sigreturn < s.exit && s.exit < s.patch_entry_rax);
        assert!(s.patch_entry_rax < s.patch_entry && s.patch_entry < s.block);
        // A block reaches the rax entry as `%gs:CTL_ENTRY` minus this,
        // with an 8-bit displacement.
        assert!(s.patch_entry - s.patch_entry_rax < 128);
        assert!(s.block < s.helper && s.helper < s.first);
        // Each site follows a `syscall` instruction.
        let c = code();
        for site in [s.wake, s.wait, s.sigreturn, s.exit, s.first, s.block] {
            assert_eq!(&c[site as usize - 2..site as usize], &[0x0f, 0x05]);
        }
    }

    #[test]
    fn filters_fit_their_page() {
        let p = FilterParams {
            base: 0x7ff1_2345_0000,
            comp_off: 0x1234_5000,
            region: 0x4000,
            max_threads: 8192,
            clone_flags: 0x50f00,
        };
        let h = helper_filter(&p);
        let g = guest_filter(&p);
        assert!(FLT_INSNS + h.len() + g.len() <= FLT_PATCH);
    }
}
