//! /proc/config.gz: the kernel configuration, gzip-compressed, as Linux's
//! CONFIG_IKCONFIG_PROC gives it. It describes ruml, not the host: an
//! option is `=y` only when ruml implements what it stands for. Options
//! that stand for a system call family are derived from the syscall table
//! itself (an option whose calls are ENOSYS reads `is not set`), so the
//! file cannot claim a call the kernel lacks; options for subsystems
//! without a call of their own (filesystems, binfmts) are listed by hand
//! and must follow the code when it changes.
//!
//! The gzip stream uses stored (uncompressed) deflate blocks: valid for
//! every gzip reader (`zcat`, zlib), and no compressor in the kernel.

use std::sync::OnceLock;

/// Options that hold for ruml whatever the syscall table says.
const ALWAYS: &[&str] = &[
    "CONFIG_64BIT",
    "CONFIG_X86_64",
    "CONFIG_UML",
    "CONFIG_MMU",
    "CONFIG_SMP",
    "CONFIG_MULTIUSER",
    "CONFIG_IKCONFIG",
    "CONFIG_IKCONFIG_PROC",
    "CONFIG_PROC_FS",
    "CONFIG_PROC_SYSCTL",
    "CONFIG_SYSFS",
    "CONFIG_TMPFS",
    "CONFIG_TMPFS_XATTR",
    "CONFIG_DEVTMPFS",
    "CONFIG_UNIX98_PTYS",
    "CONFIG_EXT2_FS",
    "CONFIG_EXT3_FS",
    "CONFIG_EXT4_FS",
    "CONFIG_OVERLAY_FS",
    "CONFIG_HOSTFS",
    "CONFIG_BINFMT_ELF",
    "CONFIG_BINFMT_SCRIPT",
    "CONFIG_COREDUMP",
    "CONFIG_ELF_CORE",
    "CONFIG_HIGH_RES_TIMERS",
    "CONFIG_POSIX_TIMERS",
    "CONFIG_GENERIC_VDSO_TIME_NS",
    "CONFIG_FILE_LOCKING",
    "CONFIG_FSNOTIFY",
    "CONFIG_DNOTIFY",
    "CONFIG_NET",
    "CONFIG_UNIX",
    "CONFIG_INET",
    "CONFIG_IPV6",
    "CONFIG_BLK_DEV_UBD",
    "CONFIG_BLK_DEV_LOOP",
    "CONFIG_PRINTK",
    "CONFIG_FUTEX",
    "CONFIG_NAMESPACES",
    "CONFIG_UTS_NS",
    "CONFIG_IPC_NS",
    "CONFIG_PID_NS",
    "CONFIG_USER_NS",
    "CONFIG_NET_NS",
    "CONFIG_TIME_NS",
    // keyctl's KEYCTL_GET_PERSISTENT (keys/).
    "CONFIG_PERSISTENT_KEYRINGS",
];

/// Options stand for a family of system calls: `=y` when the first call
/// named is in the syscall table.
const BY_SYSCALL: &[(&str, &str)] = &[
    ("CONFIG_SYSVIPC", "msgget"),
    ("CONFIG_POSIX_MQUEUE", "mq_open"),
    ("CONFIG_EPOLL", "epoll_create1"),
    ("CONFIG_SIGNALFD", "signalfd4"),
    ("CONFIG_TIMERFD", "timerfd_create"),
    ("CONFIG_EVENTFD", "eventfd2"),
    ("CONFIG_INOTIFY_USER", "inotify_init1"),
    ("CONFIG_FANOTIFY", "fanotify_init"),
    ("CONFIG_AIO", "io_setup"),
    ("CONFIG_IO_URING", "io_uring_setup"),
    ("CONFIG_MEMFD_CREATE", "memfd_create"),
    ("CONFIG_FHANDLE", "name_to_handle_at"),
    ("CONFIG_SECCOMP", "seccomp"),
    ("CONFIG_SECCOMP_FILTER", "seccomp"),
    ("CONFIG_CROSS_MEMORY_ATTACH", "process_vm_readv"),
    ("CONFIG_ADVISE_SYSCALLS", "madvise"),
    ("CONFIG_KEYS", "keyctl"),
    ("CONFIG_BPF_SYSCALL", "bpf"),
    ("CONFIG_USERFAULTFD", "userfaultfd"),
    ("CONFIG_PERF_EVENTS", "perf_event_open"),
    ("CONFIG_KEXEC", "kexec_load"),
    ("CONFIG_SWAP", "swapon"),
    ("CONFIG_QUOTACTL", "quotactl"),
    ("CONFIG_SECURITY_LANDLOCK", "landlock_create_ruleset"),
    ("CONFIG_KCMP", "kcmp"),
    ("CONFIG_BSD_PROCESS_ACCT", "acct"),
    ("CONFIG_X86_IOPL_IOPERM", "iopl"),
    ("CONFIG_MEMBARRIER", "membarrier"),
    ("CONFIG_RSEQ", "rseq"),
    ("CONFIG_MIGRATION", "move_pages"),
    ("CONFIG_NUMA", "mbind"),
    ("CONFIG_CACHESTAT_SYSCALL", "cachestat"),
    ("CONFIG_SECRETMEM", "memfd_secret"),
];

/// Options ruml does not have, always `is not set`.
const NEVER: &[&str] = &[
    "CONFIG_MODULES",
    "CONFIG_KVM",
    "CONFIG_HUGETLBFS",
    // Key types and keyctl operations ruml lacks (KEYCTL_CAPABILITIES
    // says the same).
    "CONFIG_KEY_DH_OPERATIONS",
    "CONFIG_ASYMMETRIC_KEY_TYPE",
    "CONFIG_BIG_KEYS",
    "CONFIG_KEY_NOTIFICATIONS",
];

fn syscall_present(name: &str) -> bool {
    crate::syscalls::names::SYSCALL_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .is_some_and(|(nr, _)| crate::syscalls::lookup(*nr as u64).is_some())
}

/// The plain-text configuration.
pub fn config_text() -> String {
    let mut s = format!(
        "#\n# Automatically generated file; DO NOT EDIT.\n# ruml {} Kernel Configuration\n#\n",
        crate::task::syscalls::UTS_RELEASE
    );
    for o in ALWAYS {
        s.push_str(&format!("{o}=y\n"));
    }
    for (o, call) in BY_SYSCALL {
        if syscall_present(call) {
            s.push_str(&format!("{o}=y\n"));
        } else {
            s.push_str(&format!("# {o} is not set\n"));
        }
    }
    for o in NEVER {
        s.push_str(&format!("# {o} is not set\n"));
    }
    s
}

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer wants.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `data` as a gzip member of stored deflate blocks (RFC 1951 §3.2.4).
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(if chunks.peek().is_none() { 1 } else { 0 });
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// The bytes of /proc/config.gz (made once: the table does not change).
pub fn config_gz() -> Vec<u8> {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| gzip_stored(config_text().as_bytes()))
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_of_known_string() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn config_names_real_calls() {
        for (_, call) in super::BY_SYSCALL {
            assert!(
                crate::syscalls::names::SYSCALL_NAMES
                    .iter()
                    .any(|(_, n)| n == call),
                "{call} is no syscall"
            );
        }
        let t = super::config_text();
        assert!(t.contains("CONFIG_SYSVIPC=y\n"));
        assert!(t.contains("# CONFIG_MODULES is not set\n"));
        assert!(t.contains("CONFIG_PERSISTENT_KEYRINGS=y\n"));
        assert!(t.contains("# CONFIG_KEY_DH_OPERATIONS is not set\n"));
        assert!(t.contains("# CONFIG_ASYMMETRIC_KEY_TYPE is not set\n"));
        assert!(t.contains("# CONFIG_KEY_NOTIFICATIONS is not set\n"));
    }
}
