//! execve: ELF loading (static, static-pie, dynamic with PT_INTERP),
//! `#!` scripts, and the initial stack (argv, envp, auxv).

use std::sync::Arc;

use ruml_host::Registers;

use crate::errno::KResult;
use crate::error;
use crate::fs::FileRef;
use crate::mm::vma::{Backing, Vma, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::{page_down, page_up, task_size, Mm, PAGE};
use crate::syscall_table;
use crate::syscalls::{Fd, SyscallContext, UserAddr};
use crate::task::{After, Task};

/// Longest single argument or environment string (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * PAGE as usize;
/// Total size of argv and envp strings (a quarter of the stack limit).
const MAX_ARG_TOTAL: usize = (crate::mm::STACK_LIMIT / 4) as usize;
/// Where position-independent executables go (before randomization).
const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;

syscall_table! { pub fn exec_table;
    EXECVE => sys_execve(path: UserAddr, argv: UserAddr, envp: UserAddr),
    EXECVEAT => sys_execveat(dirfd: Fd, path: UserAddr, argv: UserAddr, envp: UserAddr, flags: i32),
}

fn read_string_array(mm: &Mm, addr: UserAddr, total: &mut usize) -> KResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if addr.is_null() {
        return Ok(out);
    }
    for i in 0.. {
        if i >= 0x7fff_ffff {
            return error!(E2BIG);
        }
        let p: u64 = mm.read_val(addr.0 + i * 8)?;
        if p == 0 {
            break;
        }
        let s = mm.read_cstring(p, MAX_ARG_STRLEN).map_err(|e| {
            if e == crate::errno!(ENAMETOOLONG) {
                crate::errno!(E2BIG)
            } else {
                e
            }
        })?;
        *total += s.len() + 1 + 8;
        if *total > MAX_ARG_TOTAL {
            return error!(E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

fn sys_execve(
    ctx: &mut SyscallContext<'_>,
    path: UserAddr,
    argv: UserAddr,
    envp: UserAddr,
) -> KResult<u64> {
    sys_execveat(ctx, Fd(-100), path, argv, envp, 0)
}

fn sys_execveat(
    ctx: &mut SyscallContext<'_>,
    dirfd: Fd,
    path: UserAddr,
    argv: UserAddr,
    envp: UserAddr,
    flags: i32,
) -> KResult<u64> {
    const AT_EMPTY_PATH: i32 = 0x1000;
    const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return error!(EINVAL);
    }
    let mm = ctx.mm();
    let path = mm.read_cstring(path.0, 4095)?;
    let file = crate::fs::open_exec_at(
        ctx.task,
        dirfd.0,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    // The name the new program sees as AT_EXECFN, as Linux makes it.
    let name = if path.is_empty() {
        format!("/dev/fd/{}", dirfd.0).into_bytes()
    } else if path.starts_with(b"/") || dirfd.0 == -100 {
        path.clone()
    } else {
        let mut n = format!("/dev/fd/{}/", dirfd.0).into_bytes();
        n.extend_from_slice(&path);
        n
    };
    let mut total = 0;
    let mut argv = read_string_array(&mm, argv, &mut total)?;
    let envp = read_string_array(&mm, envp, &mut total)?;
    // argc 0: Linux passes one empty argument (do_execveat_common).
    if argv.is_empty() {
        argv.push(Vec::new());
    }
    let regs = exec_file(ctx.task, file, &name, argv, envp)?;
    *ctx.regs = regs;
    ctx.after = Some(After::Exec);
    Ok(0)
}

/// Replaces the task's program. On success the task has a new mm and the
/// returned registers start the program; the old mm is gone.
pub fn exec(
    task: &Arc<Task>,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> KResult<Registers> {
    let file = crate::fs::open_exec(task, path)?;
    exec_file(task, file, path, argv, envp)
}

/// exec of an opened program; `path` is its name (AT_EXECFN, argv of `#!`).
pub fn exec_file(
    task: &Arc<Task>,
    mut file: FileRef,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> KResult<Registers> {
    let mut path = path.to_vec();
    let execfn = path.clone();
    // #! scripts, nested up to 4 deep as Linux allows.
    for depth in 0.. {
        let mut head = vec![0u8; 256];
        let n = read_full(&file, 0, &mut head)?;
        head.truncate(n);
        if !head.starts_with(b"#!") {
            break;
        }
        if depth >= 4 {
            return error!(ELOOP);
        }
        let line_end = head.iter().position(|&c| c == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end];
        let line: Vec<u8> = line
            .iter()
            .copied()
            .skip_while(|c| *c == b' ' || *c == b'\t')
            .collect();
        let interp_end = line
            .iter()
            .position(|&c| c == b' ' || c == b'\t')
            .unwrap_or(line.len());
        let interp = line[..interp_end].to_vec();
        if interp.is_empty() {
            return error!(ENOEXEC);
        }
        let arg: Vec<u8> = line[interp_end..]
            .iter()
            .copied()
            .skip_while(|c| *c == b' ' || *c == b'\t')
            .collect();
        let arg = arg
            .iter()
            .rposition(|c| *c != b' ' && *c != b'\t' && *c != b'\r')
            .map(|e| arg[..=e].to_vec());
        let mut new_argv = vec![interp.clone()];
        if let Some(a) = arg {
            new_argv.push(a);
        }
        new_argv.push(path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        file = crate::fs::open_exec(task, &interp)?;
        path = interp;
    }
    let phys = crate::kernel().phys.clone();
    // personality(ADDR_NO_RANDOMIZE) (debuggers set it): a fixed layout.
    let fixed = task.personality.load(std::sync::atomic::Ordering::Relaxed)
        & crate::task::persona::ADDR_NO_RANDOMIZE
        != 0;
    let mut layout = Layout::random(fixed);
    let mm = Mm::new(phys, layout.mmap_base);
    // RLIMIT_AS (9) and RLIMIT_STACK (3) bound the new image.
    mm.set_limits(
        task.group.limit(9)[0],
        task.group.limit(3)[0].min(crate::mm::task_size() / 4),
    );
    let main = load_elf(&mm, &file, Some(layout.pie_base))?;
    let (entry, base) = match &main.interp {
        Some(ip) => {
            let ifile = crate::fs::open_exec(task, ip).map_err(|e| {
                if e == crate::errno!(EACCES) {
                    crate::errno!(ELIBBAD)
                } else {
                    e
                }
            })?;
            let interp = load_elf(&mm, &ifile, None)?;
            if interp.interp.is_some() {
                return error!(ELIBBAD);
            }
            (interp.entry, interp.bias)
        }
        None => (main.entry, 0),
    };
    mm.set_brk_start(page_up(main.end).ok_or(crate::errno!(ENOEXEC))?);
    // [vvar] and [vdso] just above the stack, at a random page offset.
    if let Some(v) = crate::vdso::get() {
        layout.vdso_ehdr = Some(v.map_into(&mm, layout.vdso_at)?);
    }
    let sp = build_stack(&mm, &layout, &main, base, &argv, &envp, &execfn)?;
    // Point of no return: the new program replaces the old, and the
    // other threads of the process end.
    de_thread(task);
    // Robust futexes held by the old image are released (exec_mm_release).
    crate::task::exit::release_robust_list(task);
    *task.robust_list.lock().unwrap_or_else(|p| p.into_inner()) = (0, 0);
    let old_mm = task.mm();
    task.set_mm(mm);
    // exec enters the time namespace made by unshare(CLONE_NEWTIME).
    crate::time::ns::exec_commit(task);
    // System V shared memory is detached from the old image (ipc/shm.rs).
    crate::ipc::mm_released(&old_mm, task.tgid());
    drop(old_mm);
    task.files().close_on_exec();
    crate::keys::on_exec(task);
    task.group.sig().reset_for_exec();
    task.signals.lock().altstack = crate::signal::StackT {
        flags: 2,
        ..Default::default()
    };
    let comm: Vec<u8> = path
        .rsplit(|&c| c == b'/')
        .next()
        .unwrap_or(&path)
        .iter()
        .take(15)
        .copied()
        .collect();
    *task.comm.lock().unwrap_or_else(|p| p.into_inner()) = comm;
    {
        // begin_new_exec: dumpable again unless the real and effective ids
        // differ; then the new credentials commit (task/creds.rs), which
        // drops it if they change ids or grow the permitted set.
        let mut c = crate::task::creds::change(&task.group);
        task.group
            .set_dumpable_mode(if c.euid == c.ruid && c.egid == c.rgid {
                1
            } else {
                crate::task::creds::suid_dumpable()
            });
        // A user namespace's creator keeps its capabilities there only
        // until exec; after it, being uid 0 in the namespace is what counts.
        c.ns_caps = false;
        crate::task::caps::exec_transform(&mut c);
        // The new address space belongs to the namespace exec runs in.
        task.group.set_mm_user_ns(c.user_ns.0.clone());
    }
    *task.exe.lock().unwrap_or_else(|p| p.into_inner()) = Some(file.path.clone());
    if let Some(tx) = task
        .vfork_done
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = tx.send(());
    }
    Ok(Registers {
        rip: entry,
        rsp: sp,
        cs: 0x33,
        ss: 0x2b,
        eflags: 0x202,
        orig_rax: u64::MAX,
        ..Default::default()
    })
}

/// Ends every other thread of the exec'ing process; the exec'ing thread
/// takes over the process's pid, as Linux's de_thread.
fn de_thread(task: &Arc<Task>) {
    let group = task.group.clone();
    if group.threads().len() > 1 {
        {
            let mut g = group.sig();
            if g.exit.is_none() {
                g.exec_leader = Some(task.tid());
            }
        }
        group.kick_all();
        task.sleep_until_poked(|| group.threads().len() <= 1 || group.sig().exit.is_some());
        group.sig().exec_leader = None;
    }
    if task.tid() != task.tgid() {
        let k = crate::kernel();
        k.tasks.unregister_thread(task.tid());
        task.set_tid(task.tgid());
        k.tasks.register_thread(task);
    }
}

fn read_full(f: &FileRef, off: u64, buf: &mut [u8]) -> KResult<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = f.read_at(off + got as u64, &mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Address-space layout of a new program, randomized as Linux does.
struct Layout {
    stack_top: u64,
    mmap_base: u64,
    pie_base: u64,
    /// Where [vvar] (then [vdso]) go: above the stack, below TASK_SIZE.
    vdso_at: u64,
    /// The vDSO image's address once mapped (AT_SYSINFO_EHDR).
    vdso_ehdr: Option<u64>,
}

impl Layout {
    fn random(fixed: bool) -> Layout {
        let mut r = [0u8; 32];
        if !fixed {
            ruml_host::clock::random_bytes(&mut r);
        }
        let rnd = |i: usize, bits: u32| {
            u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8])) & ((1 << bits) - 1)
        };
        let stack_top = (task_size() - (16 << 20)) - (rnd(0, 22) << 12);
        let gap = (crate::mm::STACK_LIMIT + (128 << 20)).max(128 << 20);
        let mmap_base = page_down(stack_top - gap - (rnd(1, 28) << 12));
        let pie_base = ELF_ET_DYN_BASE + (rnd(2, 28) << 12);
        // Within 2 MiB above the stack (the stack top leaves 16 MiB).
        let vdso_at = stack_top + PAGE + (rnd(3, 9) << 12);
        Layout {
            stack_top,
            mmap_base,
            pie_base,
            vdso_at,
            vdso_ehdr: None,
        }
    }
}

struct Loaded {
    bias: u64,
    entry: u64,
    phdr: u64,
    phnum: u64,
    /// End of the highest segment (for brk).
    end: u64,
    interp: Option<Vec<u8>>,
}

fn u16_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
        .unwrap_or(0)
}
fn u32_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
        .unwrap_or(0)
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

struct Phdr {
    typ: u64,
    flags: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Maps an ELF file's PT_LOAD segments. `pie_base` is where an ET_DYN
/// main program goes; None (an interpreter) lets mmap choose.
/// The most of a writable segment exec copies ahead (see load_elf).
const EXEC_PREFAULT_MAX: u64 = 64 * PAGE;

fn load_elf(mm: &Mm, file: &FileRef, pie_base: Option<u64>) -> KResult<Loaded> {
    let mut eh = [0u8; 64];
    if read_full(file, 0, &mut eh)? < 64 || &eh[0..4] != b"\x7fELF" {
        return error!(ENOEXEC);
    }
    if eh[4] != 2 || eh[5] != 1 || u16_at(&eh, 18) != 62 {
        return error!(ENOEXEC);
    }
    let etype = u16_at(&eh, 16);
    if etype != 2 && etype != 3 {
        return error!(ENOEXEC);
    }
    let (phoff, phentsize, phnum) = (u64_at(&eh, 32), u16_at(&eh, 54), u16_at(&eh, 56));
    if phentsize != 56 || phnum == 0 || phnum > 512 {
        return error!(ENOEXEC);
    }
    let mut ph = vec![0u8; (phnum * 56) as usize];
    if read_full(file, phoff, &mut ph)? < ph.len() {
        return error!(ENOEXEC);
    }
    let phdrs: Vec<Phdr> = (0..phnum as usize)
        .map(|i| {
            let b = &ph[i * 56..];
            Phdr {
                typ: u32_at(b, 0),
                flags: u32_at(b, 4),
                offset: u64_at(b, 8),
                vaddr: u64_at(b, 16),
                filesz: u64_at(b, 32),
                memsz: u64_at(b, 40),
            }
        })
        .collect();
    let loads: Vec<&Phdr> = phdrs.iter().filter(|p| p.typ == 1).collect();
    if loads.is_empty() {
        return error!(ENOEXEC);
    }
    let mut interp = None;
    for p in &phdrs {
        if p.typ == 3 {
            if p.filesz == 0 || p.filesz > 4096 {
                return error!(ENOEXEC);
            }
            let mut b = vec![0u8; p.filesz as usize];
            read_full(file, p.offset, &mut b)?;
            while b.last() == Some(&0) {
                b.pop();
            }
            interp = Some(b);
        }
    }
    let lo = page_down(loads.iter().map(|p| p.vaddr).min().unwrap_or(0));
    let hi = loads
        .iter()
        .map(|p| p.vaddr.saturating_add(p.memsz))
        .max()
        .unwrap_or(0);
    let span = page_up(hi)
        .ok_or(crate::errno!(ENOEXEC))?
        .checked_sub(lo)
        .ok_or(crate::errno!(ENOEXEC))?;
    if span == 0 || span > task_size() / 2 {
        return error!(ENOEXEC);
    }
    let bias = if etype == 2 {
        if hi > task_size() || lo < crate::mm::MMAP_MIN {
            return error!(ENOEXEC);
        }
        0
    } else {
        // Reserve the whole span, then map segments over it.
        let hint = pie_base.unwrap_or(0);
        let flags = 0x02 | 0x20 | if pie_base.is_some() { 0x10 } else { 0 };
        let at = mm.mmap(hint, span, 0, flags, None)?;
        at - lo
    };
    let mut end = 0;
    for p in &loads {
        if p.filesz > p.memsz {
            return error!(ENOEXEC);
        }
        let prot = (if p.flags & 4 != 0 { PROT_READ } else { 0 })
            | (if p.flags & 2 != 0 { PROT_WRITE } else { 0 })
            | (if p.flags & 1 != 0 { PROT_EXEC } else { 0 });
        let vaddr = bias.wrapping_add(p.vaddr);
        let start = page_down(vaddr);
        if p.offset % PAGE != p.vaddr % PAGE {
            return error!(ENOEXEC);
        }
        let file_end = vaddr.checked_add(p.filesz).ok_or(crate::errno!(ENOEXEC))?;
        let mem_end = vaddr.checked_add(p.memsz).ok_or(crate::errno!(ENOEXEC))?;
        if p.filesz > 0 {
            let len = page_up(file_end).ok_or(crate::errno!(ENOEXEC))? - start;
            mm.mmap(
                start,
                len,
                prot,
                0x02 | 0x10,
                Some((file.clone(), page_down(p.offset))),
            )?;
            // What is cached maps now rather than at a fault each; a data
            // segment (written at once by the program's start-up) gets
            // its private copies now, up to a bound. Both only save
            // faults: a failure here is the fault's to report.
            mm.map_ahead_cached(start, len);
            if prot & PROT_WRITE != 0 {
                let _ = mm.prefault_write(start, len.min(EXEC_PREFAULT_MAX));
            }
        }
        // .bss: zero the whole rest of the last file page (as Linux's
        // padzero does: ld.so's allocator relies on it), map anonymous
        // pages after.
        let file_page_end = if p.filesz > 0 {
            page_up(file_end).unwrap_or(file_end)
        } else {
            start
        };
        if mem_end > file_end && p.filesz > 0 && file_end < file_page_end {
            let zeros = vec![0u8; (file_page_end - file_end) as usize];
            mm.write_bytes_force(file_end, &zeros)?;
        }
        let anon_end = page_up(mem_end).ok_or(crate::errno!(ENOEXEC))?;
        if anon_end > file_page_end {
            mm.mmap(
                file_page_end,
                anon_end - file_page_end,
                prot,
                0x02 | 0x20 | 0x10,
                None,
            )?;
        }
        end = end.max(mem_end);
    }
    // Unused parts of the reservation (gaps between segments) stay
    // PROT_NONE, as Linux leaves them.
    let phdr = phdrs
        .iter()
        .find(|p| p.typ == 6)
        .map(|p| bias + p.vaddr)
        .or_else(|| {
            loads
                .iter()
                .find(|p| p.offset <= phoff && phoff < p.offset + p.filesz)
                .map(|p| bias + p.vaddr + (phoff - p.offset))
        })
        .unwrap_or(0);
    Ok(Loaded {
        bias,
        entry: bias.wrapping_add(u64_at(&eh, 24)),
        phdr,
        phnum,
        end,
        interp,
    })
}

fn hwcap() -> (u64, u64) {
    let l1 = std::arch::x86_64::__cpuid(1);
    let l7 = std::arch::x86_64::__cpuid_count(7, 0);
    (l1.edx as u64, if l7.ebx & 1 != 0 { 2 } else { 0 })
}

/// Builds the initial stack: strings at the top, then the 16 random bytes,
/// then auxv, envp, argv and argc; returns the stack pointer.
fn build_stack(
    mm: &Arc<Mm>,
    layout: &Layout,
    main: &Loaded,
    interp_base: u64,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
) -> KResult<u64> {
    let top = layout.stack_top;
    let size = 132 * 1024;
    mm.map_area(Vma {
        start: top - size,
        end: top,
        prot: PROT_READ | PROT_WRITE,
        shared: false,
        growsdown: true,
        backing: Backing::Anon,
        name: Some("[stack]"),
        flags: 0,
        anon_file: None,
    })?;
    let mut sp = top - 8;
    let push_str = |sp: &mut u64, s: &[u8]| -> KResult<u64> {
        *sp -= s.len() as u64 + 1;
        let mut b = s.to_vec();
        b.push(0);
        mm.write_bytes(*sp, &b)?;
        Ok(*sp)
    };
    let execfn_addr = push_str(&mut sp, execfn)?;
    let env_end = sp;
    let mut env_ptrs: Vec<u64> = Vec::new();
    for e in envp.iter().rev() {
        env_ptrs.push(push_str(&mut sp, e)?);
    }
    env_ptrs.reverse();
    let arg_end = sp;
    let mut arg_ptrs: Vec<u64> = Vec::new();
    for a in argv.iter().rev() {
        arg_ptrs.push(push_str(&mut sp, a)?);
    }
    arg_ptrs.reverse();
    let arg_start = sp;
    let env_start = env_ptrs.first().copied().unwrap_or(env_end);
    let platform = push_str(&mut sp, b"x86_64")?;
    let mut rnd = [0u8; 16];
    ruml_host::clock::random_bytes(&mut rnd);
    sp = (sp - 16) & !15;
    let random = sp;
    mm.write_bytes(random, &rnd)?;
    let (hw, hw2) = hwcap();
    let mut auxv: Vec<(u64, u64)> = Vec::with_capacity(20);
    if let Some(ehdr) = layout.vdso_ehdr {
        auxv.push((33, ehdr)); // AT_SYSINFO_EHDR
    }
    auxv.extend([
        (16, hw),          // AT_HWCAP
        (6, PAGE),         // AT_PAGESZ
        (17, 100),         // AT_CLKTCK
        (3, main.phdr),    // AT_PHDR
        (4, 56),           // AT_PHENT
        (5, main.phnum),   // AT_PHNUM
        (7, interp_base),  // AT_BASE
        (8, 0),            // AT_FLAGS
        (9, main.entry),   // AT_ENTRY
        (11, 0),           // AT_UID
        (12, 0),           // AT_EUID
        (13, 0),           // AT_GID
        (14, 0),           // AT_EGID
        (23, 0),           // AT_SECURE
        (25, random),      // AT_RANDOM
        (26, hw2),         // AT_HWCAP2
        (31, execfn_addr), // AT_EXECFN
        (15, platform),    // AT_PLATFORM
        (0, 0),            // AT_NULL
    ]);
    let words = 1 + arg_ptrs.len() + 1 + env_ptrs.len() + 1 + auxv.len() * 2;
    sp -= (words * 8) as u64;
    sp &= !15;
    let mut v: Vec<u64> = Vec::with_capacity(words);
    v.push(argv.len() as u64);
    v.extend(&arg_ptrs);
    v.push(0);
    v.extend(&env_ptrs);
    v.push(0);
    for &(k, val) in &auxv {
        v.push(k);
        v.push(val);
    }
    let auxv_at = sp + 8 * (words - auxv.len() * 2) as u64;
    let bytes: Vec<u8> = v.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.write_bytes(sp, &bytes)?;
    mm.set_arg_env((arg_start, arg_end), (env_start, env_end));
    mm.set_auxv_range((auxv_at, sp + bytes.len() as u64));
    Ok(sp)
}
