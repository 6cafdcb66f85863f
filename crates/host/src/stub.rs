//! The stub: the only code in a guest address space that is not the
//! guest's. It is a handful of instructions, written here in assembly and
//! copied into a tiny ELF that each stub process executes, so the process
//! image holds nothing of ruml (no binary, heap, stack or libraries).
//!
//! Layout at the top of the guest address space (above the guest's
//! TASK_SIZE, so the guest can never map, unmap or protect it):
//!
//! - `stub_code()`: one read+execute page: the ELF header and the code.
//! - `stub_data()`: one page of physmem, mapped read-only in the stub, where
//!   the kernel writes batches of map/unmap/protect requests (through its
//!   own mapping of physmem).
//!
//! Entry points in the code:
//! - `entry`: `int3` — stops the fresh process for its tracer.
//! - `syscall1`: `syscall; int3` — one system call from registers.
//! - `batch`: runs the requests in the data page until a terminator or the
//!   first error, then `int3`.
//! - `clone`: creates a stub thread that waits in pause() for its tracer.
//! - `setup`: a fresh stub's first run: maps the data page, then runs the
//!   batch (which clears out what the host's exec left: stack, vDSO).
//!
//! Under ptrace the guest runs with PTRACE_SYSEMU, so a guest that jumps
//! into this code executes only emulated system calls: the stub's host
//! system calls happen only when the kernel itself resumes it with
//! PTRACE_CONT at one of these entry points.

use std::sync::OnceLock;

/// The top of the address space ruml's own host gives a process, rounded
/// up to 64 GiB: 0x8000_0000_0000 on a Linux host (47-bit user space).
/// Under another ruml (nesting), that ruml's guests end lower, so this
/// ruml's stubs and guests move down by as much: see [`probe_top`].
fn top() -> u64 {
    static TOP: OnceLock<u64> = OnceLock::new();
    *TOP.get_or_init(probe_top)
}

/// The space kept above the guest's TASK_SIZE for the stubs (the seccomp
/// stub's window and the ptrace stub's two pages).
pub const STUB_AREA: u64 = 0x10_0000_0000;

/// Finds the top of this process's address space: the highest of
/// 0x8000_0000_0000 − k · [`STUB_AREA`] (k = 0..16) whose last pages can
/// be mapped. A Linux host gives k = 0; a ruml host, whose guests end at
/// its own `GUEST_TOP`, k = 1; one more per level of nesting.
fn probe_top() -> u64 {
    for k in 0..16u64 {
        let top = 0x8000_0000_0000 - k * STUB_AREA;
        // The last page below top (Linux's TASK_SIZE is a page short of
        // 2^47: probe the page below that one).
        let probe = top - 0x2000;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping;
        // the probe page is unmapped again at once.
        let r = unsafe {
            libc::mmap(
                probe as *mut libc::c_void,
                0x1000,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            if r as u64 == probe {
                // SAFETY: the page was just mapped by this probe.
                unsafe { libc::munmap(r, 0x1000) };
                return top;
            }
            // An old kernel without MAP_FIXED_NOREPLACE placed it
            // elsewhere: undo, and assume a plain host.
            // SAFETY: as above.
            unsafe { libc::munmap(r, 0x1000) };
            return 0x8000_0000_0000;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
            return top;
        }
    }
    0x8000_0000_0000
}

/// How many rumls this one runs inside (0 on a Linux host), as the
/// address space's top tells.
pub fn nesting_level() -> u64 {
    (0x8000_0000_0000 - top()) / STUB_AREA
}

/// Where the stub's code page is mapped in every stub process
/// (0x7fff_f000_0000 on a Linux host).
pub fn stub_code() -> u64 {
    top() - 0x1000_0000
}
/// Where the stub's data page (one physmem frame) is mapped.
pub fn stub_data() -> u64 {
    stub_code() + 0x1000
}
/// The end of the ptrace stub's two pages.
pub fn stub_end() -> u64 {
    stub_code() + 0x2000
}
/// The top of the address space the host gives this process (see
/// [`probe_top`]).
pub fn host_top() -> u64 {
    top()
}
/// The highest address a guest may use, plus one (the guest's TASK_SIZE):
/// 0x7ff0_0000_0000 on a Linux host, 64 GiB less per level of nesting.
/// Above it: the seccomp backend's stub at a random base, and the ptrace
/// stub's two pages at [`stub_code`].
pub fn guest_top() -> u64 {
    top() - STUB_AREA
}
/// The host file descriptor of physmem inside every stub process.
pub const STUB_PHYSMEM_FD: i32 = 3;

/// Offset of the code within the code page (after the ELF headers).
const CODE_OFFSET: u64 = 0x100;

/// One request of a batch: a system call number and six arguments; the
/// stub writes the result. `nr == u64::MAX` ends the batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StubRequest {
    pub nr: u64,
    pub args: [u64; 6],
    pub result: u64,
}

/// How many requests fit in the data page (one slot is kept for the end).
pub const BATCH_MAX: usize = (4096 / std::mem::size_of::<StubRequest>()) - 1;

std::arch::global_asm!(
    ".pushsection .rodata.ruml_stub,\"a\"",
    ".globl ruml_stub_code_start",
    "ruml_stub_code_start:",
    // entry: the fresh process stops here for its tracer.
    "    int3",
    // syscall1: one system call from registers.
    ".globl ruml_stub_syscall1",
    "ruml_stub_syscall1:",
    "    syscall",
    "    int3",
    // batch: the requests in the data page, until the end marker or the
    // first error; rbx then points at the request it stopped on and rax
    // holds that request's result. The data page is read-only here: the
    // stub never writes it, so guest threads (which share the address
    // space) cannot either.
    ".globl ruml_stub_batch",
    "ruml_stub_batch:",
    // The data page is the page after the code page, whose offset
    // CODE_OFFSET is where this code starts: rip-relative, so the code
    // runs at whatever address the layout puts it.
    "    lea rbx, [rip + ruml_stub_code_start + {data_off}]",
    "2:",
    "    mov rax, [rbx]",
    "    cmp rax, -1",
    "    je 3f",
    "    mov rdi, [rbx + 8]",
    "    mov rsi, [rbx + 16]",
    "    mov rdx, [rbx + 24]",
    "    mov r10, [rbx + 32]",
    "    mov r8, [rbx + 40]",
    "    mov r9, [rbx + 48]",
    "    syscall",
    "    cmp rax, -4095",
    "    jae 3f",
    "    add rbx, 64",
    "    jmp 2b",
    "3:",
    "    int3",
    // clone: a new stub thread. The parent traps back to its tracer; the
    // child (rax = 0) waits in pause() until its own tracer seizes it.
    ".globl ruml_stub_clone",
    "ruml_stub_clone:",
    "    syscall",
    "    test rax, rax",
    "    jnz 5f",
    "4:",
    "    mov eax, 34",
    "    syscall",
    "    jmp 4b",
    "5:",
    "    int3",
    // setup: a fresh stub's first run, from its exec stop (where the
    // host overwrites rax on the way out of execve): map the data page
    // with the arguments in rdi..r9, then run the batch in it. rbx = 0
    // at the int3 says the mapping failed (its result in rax).
    ".globl ruml_stub_setup",
    "ruml_stub_setup:",
    "    xor ebx, ebx",
    "    mov eax, 9",
    "    syscall",
    "    cmp rax, -4095",
    "    jb ruml_stub_batch",
    "    int3",
    ".globl ruml_stub_code_end",
    "ruml_stub_code_end:",
    ".popsection",
    data_off = const 0x1000 - CODE_OFFSET,
);

extern "C" {
    static ruml_stub_code_start: u8;
    static ruml_stub_syscall1: u8;
    static ruml_stub_batch: u8;
    static ruml_stub_clone: u8;
    static ruml_stub_setup: u8;
    static ruml_stub_code_end: u8;
}

fn offset_of(sym: *const u8) -> u64 {
    let start = &raw const ruml_stub_code_start as u64;
    sym as u64 - start
}

/// Address of the entry point (`int3`) in a stub process.
pub fn entry() -> u64 {
    stub_code() + CODE_OFFSET
}

/// Address of `syscall; int3`.
pub fn syscall1() -> u64 {
    entry() + offset_of(&raw const ruml_stub_syscall1)
}

/// Address of the batch runner.
pub fn batch() -> u64 {
    entry() + offset_of(&raw const ruml_stub_batch)
}

/// Address of the first-run setup: maps the data page (mmap arguments in
/// rdi..r9), then runs the batch.
pub fn setup() -> u64 {
    entry() + offset_of(&raw const ruml_stub_setup)
}

/// Address of the thread-creating clone site.
pub fn clone_site() -> u64 {
    entry() + offset_of(&raw const ruml_stub_clone)
}

fn code_bytes() -> &'static [u8] {
    // SAFETY: both symbols are in the same section defined above.
    unsafe {
        let s = &raw const ruml_stub_code_start;
        let e = &raw const ruml_stub_code_end;
        std::slice::from_raw_parts(s, e as usize - s as usize)
    }
}

/// The stub's ELF image: one PT_LOAD page, read+execute, at [`stub_code`].
pub fn elf_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let code = code_bytes();
        let mut img = vec![0u8; 4096];
        // ELF header.
        img[0..4].copy_from_slice(b"\x7fELF");
        img[4] = 2; // ELFCLASS64
        img[5] = 1; // little endian
        img[6] = 1; // EV_CURRENT
        put16(&mut img, 16, 2); // ET_EXEC
        put16(&mut img, 18, 62); // EM_X86_64
        put32(&mut img, 20, 1);
        put64(&mut img, 24, entry());
        put64(&mut img, 32, 64); // e_phoff
        put16(&mut img, 52, 64); // e_ehsize
        put16(&mut img, 54, 56); // e_phentsize
        put16(&mut img, 56, 1); // e_phnum
                                // Program header: PT_LOAD R+X, the whole page.
        let ph = 64;
        put32(&mut img, ph, 1);
        put32(&mut img, ph + 4, 5);
        put64(&mut img, ph + 8, 0);
        put64(&mut img, ph + 16, stub_code());
        put64(&mut img, ph + 24, stub_code());
        put64(&mut img, ph + 32, 4096);
        put64(&mut img, ph + 40, 4096);
        put64(&mut img, ph + 48, 4096);
        img[CODE_OFFSET as usize..CODE_OFFSET as usize + code.len()].copy_from_slice(code);
        img
    })
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_fits_and_starts_with_int3() {
        let c = super::code_bytes();
        assert_eq!(c[0], 0xcc);
        assert_eq!(&c[1..4], &[0x0f, 0x05, 0xcc]);
        assert!(c.len() < 4096 - super::CODE_OFFSET as usize);
    }
}
