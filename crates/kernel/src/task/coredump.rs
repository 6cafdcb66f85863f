//! Core dumps: when a signal whose default action is "core" kills a
//! process, an ELF core file the host's gdb reads (`gdb prog core`).
//!
//! Written as Linux writes it, with Linux's defaults: only if RLIMIT_CORE
//! allows and the process is dumpable (with fs.suid_dumpable 2, a process
//! whose credentials changed dumps as root, to an absolute pattern only,
//! never over an existing file); to `core_pattern` ("core", in the
//! process's working directory; a pattern starting with `|` pipes to a
//! program on Linux, which ruml does not do: no dump then), created with
//! mode 0600 as the process's own credentials, never following a symlink
//! and never into a file with other links or another owner. Contents:
//! NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE and NT_FPREGSET
//! notes, then one PT_LOAD per area (pages of anonymous and written
//! private memory; read-only file mappings only described, except the ELF
//! header page, as Linux's default coredump_filter does), truncated at
//! RLIMIT_CORE.
//!
//! Only the thread that took the signal is described: the other threads
//! are ending in parallel (group exit) and their registers are not
//! collected. The dump is written by the dying thread before its process
//! becomes a zombie, so a parent's wait sees a finished file.

use std::sync::{Arc, Mutex};

use crate::errno::KResult;
use crate::error;
use crate::fs::types::oflags::*;
use crate::mm::DumpArea;
use crate::signal::Queued;
use crate::task::{Task, TaskRunner};

const RLIMIT_CORE: usize = 4;
const PAGE: u64 = 4096;

const NT_PRSTATUS: u32 = 1;
const NT_FPREGSET: u32 = 2;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;

static CORE_PATTERN: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// /proc/sys/kernel/core_pattern.
pub fn core_pattern() -> Vec<u8> {
    CORE_PATTERN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| b"core".to_vec())
}

/// Sets /proc/sys/kernel/core_pattern (at most 127 bytes, as Linux).
pub fn set_core_pattern(p: &[u8]) -> KResult<()> {
    let p = p.strip_suffix(b"\n").unwrap_or(p);
    if p.len() > 127 {
        return error!(EINVAL);
    }
    *CORE_PATTERN.lock().unwrap_or_else(|p| p.into_inner()) = Some(p.to_vec());
    Ok(())
}

/// Signals whose default action dumps core (signal(7)).
pub fn is_core_signal(sig: i32) -> bool {
    // SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV SIGXCPU SIGXFSZ SIGSYS
    matches!(sig, 3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31)
}

/// Writes the core file for the process of `r`, killed by `q`; true if a
/// core was written (the wait status then says "core dumped").
pub fn dump(r: &TaskRunner, q: &Queued) -> bool {
    let task = &r.task;
    let limit = task.group.limit(RLIMIT_CORE)[0];
    let mode = task.group.dumpable_mode();
    if limit == 0 || mode == 0 {
        return false;
    }
    let pattern = core_pattern();
    if pattern.is_empty() || pattern[0] == b'|' {
        return false;
    }
    let name = expand(&pattern, task, q.signo);
    // fs.suid_dumpable 2 (SUID_DUMP_ROOT): the core of a process whose
    // credentials changed goes only to a fully qualified path, as root
    // (Linux: "can only dump core to fully qualified path").
    let as_root = mode == 2;
    if as_root && name.first() != Some(&b'/') {
        crate::log::kprint(&format!(
            "Pid {}({}) can only dump core to fully qualified path!",
            task.group.tgid(),
            String::from_utf8_lossy(&comm(task))
        ));
        return false;
    }
    let image = build(r, q);
    let len = (image.len() as u64).min(limit) as usize;
    match write_file(task, &name, &image[..len], as_root) {
        Ok(()) => true,
        Err(e) => {
            crate::log::kprint(&format!(
                "pid {}: core dump to {} failed: {e:?}",
                task.group.tgid(),
                String::from_utf8_lossy(&name)
            ));
            false
        }
    }
}

/// core_pattern's % specifiers (core(5)): %p %P %i %I pid/tid, %s signal,
/// %e name, %h hostname, %t time, %u %g ids, %% itself.
fn expand(pattern: &[u8], task: &Arc<Task>, signo: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = pattern.iter();
    while let Some(&c) = it.next() {
        if c != b'%' {
            out.push(c);
            continue;
        }
        let creds = creds_of(task);
        let piece = match it.next() {
            Some(b'p') | Some(b'P') => task.group.tgid().to_string().into_bytes(),
            Some(b'i') | Some(b'I') => task.tid().to_string().into_bytes(),
            Some(b's') => signo.to_string().into_bytes(),
            Some(b'e') => comm(task)
                .into_iter()
                .map(|b| if b == b'/' { b'!' } else { b })
                .collect(),
            Some(b'h') => crate::kernel()
                .hostname
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            Some(b't') => ruml_host::clock::gettime(0)
                .map_or(0, |t| t.0)
                .to_string()
                .into_bytes(),
            Some(b'u') => creds.ruid.to_string().into_bytes(),
            Some(b'g') => creds.rgid.to_string().into_bytes(),
            Some(b'%') => b"%".to_vec(),
            _ => Vec::new(),
        };
        out.extend(piece);
    }
    out
}

fn creds_of(task: &Task) -> crate::task::creds::Creds {
    task.group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

fn comm(task: &Task) -> Vec<u8> {
    task.comm.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Creates the core file as the process itself would: O_NOFOLLOW, 0600,
/// and not over a file that has other links or belongs to someone else.
/// `as_root` (fs.suid_dumpable 2): created with filesystem uid 0, never
/// over an existing file (O_EXCL, as Linux, which does not unlink another
/// user's core then).
fn write_file(task: &Arc<Task>, name: &[u8], data: &[u8], as_root: bool) -> KResult<()> {
    // The dying process's own credentials, its filesystem uid root for
    // the write (Linux's override_creds); put back after.
    let saved_fsuid = as_root.then(|| {
        let mut c = task.group.creds.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut c.fsuid, 0)
    });
    let r = create_and_write(task, name, data, as_root);
    if let Some(fsuid) = saved_fsuid {
        task.group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fsuid = fsuid;
    }
    r
}

fn create_and_write(task: &Arc<Task>, name: &[u8], data: &[u8], as_root: bool) -> KResult<()> {
    let fs = task.fs();
    let w = crate::fs::walker_for(&fs, task);
    let start = if name.first() == Some(&b'/') {
        fs.root()
    } else {
        fs.cwd()
    };
    let excl = if as_root { O_EXCL } else { O_TRUNC };
    let flags = O_CREAT | O_WRONLY | excl | O_NOFOLLOW | O_LARGEFILE;
    let file = crate::fs::open_at(&w, &fs, &start, name, flags, 0o600)?;
    let st = file.path.inode().stat()?;
    if st.nlink > 1 || st.uid != creds_of(task).fsuid || st.mode & 0o170000 != 0o100000 {
        return error!(EPERM);
    }
    let mut done = 0;
    while done < data.len() {
        let n = file.write(&data[done..])?;
        if n == 0 {
            return error!(ENOSPC);
        }
        done += n;
    }
    Ok(())
}

/// One ELF note: name, type, descriptor, each 4-aligned.
fn note(out: &mut Vec<u8>, name: &[u8], ty: u32, desc: &[u8]) {
    let namesz = name.len() as u32 + 1;
    out.extend(namesz.to_le_bytes());
    out.extend((desc.len() as u32).to_le_bytes());
    out.extend(ty.to_le_bytes());
    out.extend(name);
    out.push(0);
    pad4(out);
    out.extend(desc);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// struct elf_prstatus (336 bytes on x86_64).
fn prstatus(r: &TaskRunner, signo: i32) -> Vec<u8> {
    let task = &r.task;
    let mut b = vec![0u8; 336];
    put(&mut b, 0, &signo.to_le_bytes());
    put(&mut b, 12, &(signo as u16).to_le_bytes());
    let blocked = task.signals.lock().blocked;
    put(&mut b, 24, &blocked.to_le_bytes());
    put(&mut b, 32, &task.tid().to_le_bytes());
    if let Some(ids) = crate::task::process_ids(task.group.tgid()) {
        put(&mut b, 36, &ids.ppid.to_le_bytes());
        put(&mut b, 40, &ids.pgid.to_le_bytes());
        put(&mut b, 44, &ids.sid.to_le_bytes());
    }
    // pr_reg: user_regs_struct order.
    let regs = &r.regs;
    let words = [
        regs.r15,
        regs.r14,
        regs.r13,
        regs.r12,
        regs.rbp,
        regs.rbx,
        regs.r11,
        regs.r10,
        regs.r9,
        regs.r8,
        regs.rax,
        regs.rcx,
        regs.rdx,
        regs.rsi,
        regs.rdi,
        regs.orig_rax,
        regs.rip,
        regs.cs,
        regs.eflags,
        regs.rsp,
        regs.ss,
        regs.fs_base,
        regs.gs_base,
        regs.ds,
        regs.es,
        regs.fs,
        regs.gs,
    ];
    for (i, w) in words.iter().enumerate() {
        put(&mut b, 112 + i * 8, &w.to_le_bytes());
    }
    put(&mut b, 328, &1i32.to_le_bytes()); // pr_fpvalid
    b
}

/// struct elf_prpsinfo (136 bytes on x86_64).
fn prpsinfo(task: &Arc<Task>) -> Vec<u8> {
    let mut b = vec![0u8; 136];
    b[0] = 0; // pr_state: running
    b[1] = b'R';
    let creds = creds_of(task);
    put(&mut b, 16, &creds.ruid.to_le_bytes());
    put(&mut b, 20, &creds.rgid.to_le_bytes());
    put(&mut b, 24, &task.group.tgid().to_le_bytes());
    if let Some(ids) = crate::task::process_ids(task.group.tgid()) {
        put(&mut b, 28, &ids.ppid.to_le_bytes());
        put(&mut b, 32, &ids.pgid.to_le_bytes());
        put(&mut b, 36, &ids.sid.to_le_bytes());
    }
    let name = comm(task);
    let n = name.len().min(15);
    put(&mut b, 40, &name[..n]);
    // pr_psargs: the command line, NULs as spaces, at most 79 bytes.
    let mm = task.mm();
    let ((a0, a1), _) = mm.arg_env();
    let mut args = vec![0u8; a1.saturating_sub(a0).min(79) as usize];
    if mm.read_bytes(a0, &mut args).is_ok() {
        for c in args.iter_mut() {
            if *c == 0 {
                *c = b' ';
            }
        }
        let end = args.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
        put(&mut b, 56, &args[..end]);
    }
    b
}

/// siginfo_t (128 bytes) of the killing signal.
fn siginfo(q: &Queued) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    put(&mut b, 0, &q.signo.to_le_bytes());
    put(&mut b, 8, &q.code.to_le_bytes());
    put(&mut b, 16, &q.a.to_le_bytes());
    b
}

/// NT_FILE: the file mappings, with their names as /proc/PID/maps shows.
fn file_note(task: &Arc<Task>, areas: &[DumpArea]) -> Vec<u8> {
    let root = task.fs().root();
    let files: Vec<_> = areas
        .iter()
        .filter_map(|a| {
            a.file
                .as_ref()
                .map(|(f, pgoff)| (a.start, a.end, *pgoff, f))
        })
        .collect();
    let mut b = Vec::new();
    b.extend((files.len() as u64).to_le_bytes());
    b.extend(PAGE.to_le_bytes());
    for (start, end, pgoff, _) in &files {
        b.extend(start.to_le_bytes());
        b.extend(end.to_le_bytes());
        b.extend(pgoff.to_le_bytes());
    }
    for (_, _, _, f) in &files {
        b.extend(crate::fs::vfs::d_path(&f.path, &root));
        b.push(0);
    }
    b
}

/// The whole core image.
fn build(r: &TaskRunner, q: &Queued) -> Vec<u8> {
    let task = &r.task;
    let mm = task.mm();
    let areas = mm.dump_areas();
    // The first page of a read-only file mapping goes in if it is an ELF
    // header (so the debugger finds build ids), as Linux does.
    let mut header_page = vec![0u8; 4];
    let sizes: Vec<u64> = areas
        .iter()
        .map(|a| {
            if a.contents {
                a.end - a.start
            } else if a.file.is_some()
                && a.prot & crate::mm::vma::PROT_READ != 0
                && mm.read_page_for_dump(a.start, &mut header_page).is_ok()
                && header_page == b"\x7fELF"
            {
                PAGE
            } else {
                0
            }
        })
        .collect();

    let mut notes = Vec::new();
    note(&mut notes, b"CORE", NT_PRSTATUS, &prstatus(r, q.signo));
    note(&mut notes, b"CORE", NT_PRPSINFO, &prpsinfo(task));
    note(&mut notes, b"CORE", NT_SIGINFO, &siginfo(q));
    note(&mut notes, b"CORE", NT_AUXV, &mm.auxv());
    note(&mut notes, b"CORE", NT_FILE, &file_note(task, &areas));
    let fpu = r.ctx.as_ref().and_then(|c| c.get_fpu().ok());
    let mut fx = vec![0u8; 512];
    if let Some(f) = &fpu {
        let n = f.0.len().min(512);
        fx[..n].copy_from_slice(&f.0[..n]);
    }
    note(&mut notes, b"CORE", NT_FPREGSET, &fx);

    let phnum = 1 + areas.len();
    let notes_at = 64 + 56 * phnum as u64;
    let data_at = (notes_at + notes.len() as u64).div_ceil(PAGE) * PAGE;
    let mut out = Vec::with_capacity(data_at as usize);
    // ELF header.
    out.extend(b"\x7fELF\x02\x01\x01\x00");
    out.extend([0u8; 8]);
    out.extend(4u16.to_le_bytes()); // ET_CORE
    out.extend(62u16.to_le_bytes()); // EM_X86_64
    out.extend(1u32.to_le_bytes());
    out.extend(0u64.to_le_bytes()); // entry
    out.extend(64u64.to_le_bytes()); // phoff
    out.extend(0u64.to_le_bytes()); // shoff
    out.extend(0u32.to_le_bytes()); // flags
    out.extend(64u16.to_le_bytes());
    out.extend(56u16.to_le_bytes());
    out.extend((phnum.min(0xffff) as u16).to_le_bytes());
    out.extend(64u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    let phdr = |out: &mut Vec<u8>,
                ty: u32,
                flags: u32,
                off: u64,
                vaddr: u64,
                filesz: u64,
                memsz: u64,
                align: u64| {
        out.extend(ty.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend(off.to_le_bytes());
        out.extend(vaddr.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(filesz.to_le_bytes());
        out.extend(memsz.to_le_bytes());
        out.extend(align.to_le_bytes());
    };
    phdr(&mut out, 4, 0, notes_at, 0, notes.len() as u64, 0, 4); // PT_NOTE
    let mut off = data_at;
    for (a, &size) in areas.iter().zip(&sizes) {
        // PF_R = 4, PF_W = 2, PF_X = 1 from PROT_READ 1, WRITE 2, EXEC 4.
        let flags = ((a.prot & 1) << 2) | (a.prot & 2) | ((a.prot & 4) >> 2);
        phdr(
            &mut out,
            1,
            flags,
            off,
            a.start,
            size,
            a.end - a.start,
            PAGE,
        );
        off += size;
    }
    out.extend(&notes);
    out.resize(data_at as usize, 0);
    let mut page = vec![0u8; PAGE as usize];
    for (a, &size) in areas.iter().zip(&sizes) {
        let mut at = a.start;
        while at < a.start + size {
            if mm.read_page_for_dump(at, &mut page).is_err() {
                page.fill(0);
            }
            out.extend(&page);
            at += PAGE;
        }
    }
    out
}
