//! The platform interface on its own: a stub process runs raw machine
//! code from physmem, its system calls trap instead of running, its
//! writes land in physmem, and a wild access is reported as a fault.

use std::sync::Arc;

use ruml_host::{prot, AddressSpace, Context, PhysMem, Registers, Trap};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x40_1000;

/// The backend under test: `RUML_TEST_MODE=seccomp` or ptrace (default).
fn select_mode() {
    if std::env::var("RUML_TEST_MODE").as_deref() == Ok("seccomp") {
        ruml_host::set_mode(ruml_host::Mode::Seccomp);
    }
}

fn setup() -> (Arc<PhysMem>, AddressSpace, Context, u64) {
    select_mode();
    let phys = Arc::new(PhysMem::new(64 << 20).unwrap());
    let (a, c) = AddressSpace::new(&phys).unwrap();
    let code = phys.alloc().unwrap();
    let data = phys.alloc().unwrap();
    #[rustfmt::skip]
    let prog: &[u8] = &[
        0xb8, 0x27, 0x00, 0x00, 0x00,                               // mov eax, 39 (getpid)
        0x0f, 0x05,                                                 // syscall
        0xc7, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0x2a, 0, 0, 0,    // mov dword [0x401000], 42
        0xb8, 0x3c, 0x00, 0x00, 0x00,                               // mov eax, 60 (exit)
        0x0f, 0x05,                                                 // syscall
        0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10, 0x01, 0, 0, 0,    // mov dword [0x10000000], 1
    ];
    phys.write(code, 0, prog);
    a.map(CODE, 4096, prot::READ | prot::EXEC, code);
    a.map(DATA, 4096, prot::READ | prot::WRITE, data);
    let _ = code;
    (phys, a, c, data)
}

fn start_regs() -> Registers {
    Registers {
        rip: CODE,
        rsp: DATA + 4000,
        cs: 0x33,
        ss: 0x2b,
        eflags: 0x202,
        ..Default::default()
    }
}

#[test]
fn syscalls_trap_writes_land_faults_report() {
    let (phys, _a, mut a, data) = setup();
    let mut regs = start_regs();
    assert_eq!(a.run(&mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.orig_rax, 39);
    regs.rax = 1234;
    assert_eq!(a.run(&mut regs).unwrap(), Trap::Syscall);
    assert_eq!(
        regs.orig_rax, 60,
        "exit was emulated, not run: the stub is still alive"
    );
    let mut word = [0u8; 4];
    phys.read(data, 0, &mut word);
    assert_eq!(
        u32::from_le_bytes(word),
        42,
        "the guest's write is in physmem"
    );
    match a.run(&mut regs).unwrap() {
        Trap::Signal(si) => {
            assert_eq!(si.signo, libc::SIGSEGV);
            assert_eq!(si.addr, 0x1000_0000);
        }
        t => panic!("expected a fault, got {t:?}"),
    }
}

#[test]
fn unmap_and_protect_take_effect() {
    let (_phys, space, mut a, _data) = setup();
    space.protect(DATA, 4096, prot::READ);
    let mut regs = start_regs();
    assert_eq!(a.run(&mut regs).unwrap(), Trap::Syscall);
    match a.run(&mut regs).unwrap() {
        Trap::Signal(si) => {
            assert_eq!(si.signo, libc::SIGSEGV);
            assert_eq!(si.addr, DATA);
            assert_eq!(si.code, 2, "SEGV_ACCERR on a read-only page");
        }
        t => panic!("expected a fault, got {t:?}"),
    }
    space.unmap(DATA, 4096);
    match a.run(&mut regs).unwrap() {
        Trap::Signal(si) => assert_eq!(si.code, 1, "SEGV_MAPERR once unmapped"),
        t => panic!("expected a fault, got {t:?}"),
    }
}

#[test]
fn interrupter_stops_a_spinning_guest() {
    select_mode();
    let phys = Arc::new(PhysMem::new(64 << 20).unwrap());
    let (space, mut a) = AddressSpace::new(&phys).unwrap();
    let code = phys.alloc().unwrap();
    phys.write(code, 0, &[0xeb, 0xfe]); // jmp .
    space.map(CODE, 4096, prot::READ | prot::EXEC, code);
    let i = a.interrupter();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        i.interrupt();
    });
    let mut regs = start_regs();
    assert_eq!(a.run(&mut regs).unwrap(), Trap::Interrupted);
    assert_eq!(regs.rip, CODE);
    t.join().unwrap();
}

#[test]
fn stub_holds_nothing_of_ruml() {
    select_mode();
    let phys = Arc::new(PhysMem::new(64 << 20).unwrap());
    let (a, mut ctx) = AddressSpace::new(&phys).unwrap();
    // A fresh stub is cleared out with its first batch, before any guest
    // code can run in it.
    ctx.flush().unwrap();
    let pid = a.host_pid();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let lines: Vec<&str> = maps.lines().collect();
    // ptrace: the stub code page, the data page, and the kernel's vsyscall
    // page; seccomp: code, requests, filters, doorbell, one thread's
    // region, vsyscall.
    let most = match ruml_host::mode() {
        ruml_host::Mode::Ptrace => 3,
        ruml_host::Mode::Seccomp => 6,
    };
    assert!(lines.len() <= most, "stub maps:\n{maps}");
    assert!(
        !maps.contains("[heap]") && !maps.contains("[stack]") && !maps.contains("[vdso]"),
        "{maps}"
    );
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .collect();
    assert_eq!(fds.len(), 1, "only physmem's descriptor");
}

#[test]
fn threads_share_the_address_space_and_end_alone() {
    let (phys, space, mut main, data) = setup();
    let nt = main.new_thread().unwrap();
    let space2 = space.clone();
    let t = std::thread::spawn(move || {
        let mut c = Context::adopt(&space2, nt).unwrap();
        let mut regs = start_regs();
        assert_eq!(c.run(&mut regs).unwrap(), Trap::Syscall);
        assert_eq!(c.run(&mut regs).unwrap(), Trap::Syscall);
        c.host_tid()
    });
    let tid = t.join().unwrap();
    assert_ne!(tid, space.host_pid());
    let mut word = [0u8; 4];
    phys.read(data, 0, &mut word);
    assert_eq!(
        u32::from_le_bytes(word),
        42,
        "the second thread wrote shared memory"
    );
    // The main thread still runs after the other one ended.
    let mut regs = start_regs();
    assert_eq!(main.run(&mut regs).unwrap(), Trap::Syscall);
    let pid = space.host_pid();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    // Under seccomp the process also has its helper thread and, once it
    // has made a thread, one spare stub thread for the next (unless turned
    // off for measuring).
    let spare = std::env::var("RUML_SPARE_THREAD").map_or(true, |v| v != "off");
    let expect = match ruml_host::mode() {
        ruml_host::Mode::Ptrace => 1,
        ruml_host::Mode::Seccomp => 2 + usize::from(spare),
    };
    assert_eq!(
        threads, expect,
        "the adopted thread's exit left the process alone"
    );
}
