//! docs/syscalls.md is generated from the table, so it cannot drift: the
//! test below fails when the file differs from what the table says, and
//! `RUML_UPDATE_DOCS=1 cargo test -p ruml-kernel syscalls_md` rewrites it.

use super::{lookup, names::SYSCALL_NAMES};

/// Implemented calls that do less than Linux, and what is missing.
pub const PARTIAL: &[(&str, &str)] = &[
    ("ptrace", "implemented on ruml's own task state (docs/debugging.md); PTRACE_OLDSETOPTIONS (21) is taken as PTRACE_SETOPTIONS, as on x86 Linux; PTRACE_ARCH_PRCTL sets/gets the tracee's fs/gs base; a tracer is a process (any of its threads may make requests; Linux allows only the tracing thread); writes to segment selectors are ignored (64-bit code only); no hardware breakpoints or watchpoints (debug registers read as 0, nonzero writes give EIO); PTRACE_O_TRACESECCOMP stops come with guest seccomp filters; Yama's ptrace_scope is not modelled (same ids or root may attach)"),
    ("personality", "any 32-bit value is kept and reported; ADDR_NO_RANDOMIZE (exec), READ_IMPLIES_EXEC (mmap, mprotect) and UNAME26 (uname) take effect; the other flags and the execution domain have none (x86_64 only)"),
    ("clone", "CLONE_NEW* as unshare (docs/namespaces.md)"),
    ("pidfd_open", "process and thread (PIDFD_THREAD) pidfds, pids as the caller's PID namespace names them; of the pidfd ioctls, PIDFD_GET_*_NAMESPACE are implemented and PIDFD_GET_INFO (Linux 6.13) gives ENOTTY, as a kernel before it"),
    ("vmsplice", "the bytes are copied (SPLICE_F_GIFT ignored, as Linux may); SPLICE_F_NONBLOCK applies to reading an empty pipe, writing follows the descriptor's O_NONBLOCK"),
    ("kcmp", "signal handlers and the System V undo list compare per process (ruml shares handlers only between threads, has no CLONE_SYSVSEM), each task has its own I/O context (no CLONE_IO); KCMP_EPOLL_TFD counts a descriptor's watches in the order they were added"),
    ("clone3", "set_tid gives EINVAL; namespaces as unshare (docs/namespaces.md)"),
    ("unshare", "every namespace type; IPC namespaces separate System V objects but not POSIX message queues; a time namespace's MONOTONIC/BOOTTIME offsets apply to clock_gettime, absolute sleeps and timers, /proc/uptime and sysinfo, and its processes' vDSO clock calls trap into the kernel (docs/namespaces.md); a network namespace has its own interfaces, ports, abstract unix names, /proc/net/unix and /proc/net/snmp counters; signals' si_pid is not translated into the receiver's PID namespace"),
    ("setns", "namespace files (/proc/PID/ns/*) and pidfds (several namespaces at once, all or none); joining a mount namespace does not check that the caller shares its fs context with no other thread (Linux: EINVAL)"),
    ("pivot_root", "as Linux; the old root may be detached with umount2(MNT_DETACH)"),
    ("open_tree", "OPEN_TREE_CLONE with AT_RECURSIVE copies the whole subtree, but paths through the descriptor see the top mount only until move_mount attaches it"),
    ("fspick", "FSCONFIG_CMD_RECONFIGURE changes ro/rw only (other options EOPNOTSUPP), and makes every mount of the filesystem in the caller's namespace read-only or writable (ruml keeps read-only per mount)"),
    ("fsconfig", "FSCONFIG_SET_FLAG/SET_STRING, CMD_CREATE and (fspick contexts) CMD_RECONFIGURE of ro/rw; binary, path and fd values give EINVAL"),
    ("mount_setattr", "MOUNT_ATTR_RDONLY, NOSUID, NODEV, NOEXEC and propagation take effect (noexec: execve EACCES, mmap PROT_EXEC EPERM, mprotect +PROT_EXEC EACCES; nodev: device nodes open with EACCES; nosuid is recorded and shown); the atime attributes and NOSYMFOLLOW are accepted and not enforced; idmapped mounts give EINVAL"),
    ("prlimit64", "NOFILE, STACK, AS and FSIZE (EFBIG with SIGXFSZ) are enforced; the others are recorded (NPROC is not enforced for root, as on Linux)"),
    ("prctl", "NAME, DUMPABLE (credential changes set it to fs.suid_dumpable, 0, 1 or 2, as Linux; docs/security.md), PDEATHSIG, CHILD_SUBREAPER, NO_NEW_PRIVS (per process), KEEPCAPS, SECUREBITS, CAPBSET_READ/DROP, CAP_AMBIENT, GET/SET_SECCOMP (docs/security.md); others EINVAL"),
    ("arch_prctl", "ARCH_SET/GET_FS, ARCH_SET/GET_GS, ARCH_GET_CPUID"),
    ("process_madvise", "as Linux's checks and results; the advice another process may take (COLD, PAGEOUT, WILLNEED, COLLAPSE) has no effect in ruml beyond its errors (no LRU, swap or huge pages), as madvise's"),
    ("cachestat", "nr_cache counts a memory-backed file's (tmpfs, memfd) pages that hold data (a page allocated but never written, by fallocate or a mapping's fault-around, does not count) and another file's mapped page cache only (read/write do not fill it in ruml); nr_dirty, nr_writeback and the eviction counts are 0 (ruml writes through and never evicts)"),
    ("madvise", "DONTNEED/DONTNEED_LOCKED/FREE discard pages, area by area as Linux (a hole in the range is ENOMEM once the mapped parts are done; DONTNEED and FREE on a locked area are EINVAL, stopping there; DONTNEED_LOCKED discards locked memory, which stays locked); DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, DONTDUMP/DODUMP as Linux; REMOVE punches a hole in the file behind MAP_SHARED mappings of memory-backed files (tmpfs, memfd, the shmem object of shared anonymous memory; others EOPNOTSUPP); FREE (private anonymous, unlocked memory only, else EINVAL) frees at once; COLD/PAGEOUT are EINVAL on locked areas and else have no effect (no LRU, no swap); HWPOISON/SOFT_OFFLINE are EINVAL, as on a kernel without CONFIG_MEMORY_FAILURE; the access-pattern hints are accepted without effect"),
    ("msync", "writes back every mapped page of shared host-file mappings (no dirty tracking)"),
    ("ioctl", "FIONREAD, FIONBIO, FIOCLEX/FIONCLEX, the terminal ioctls (termios, window size, job control, ptys; no TIOCPKT packet mode, no TIOCSCTTY stealing), SIOCOUTQ/SIOCATMARK and the interface ioctls (SIOCGIF{CONF,FLAGS,ADDR,NETMASK,BRDADDR,MTU,HWADDR,INDEX,NAME}, SIOCSIFFLAGS), the block ioctls (BLKGETSIZE64, BLKGETSIZE, BLKSSZGET, BLKBSZGET/SET, BLKPBSZGET, BLKIOMIN/OPT, BLKALIGNOFF, BLKDISCARDZEROES, BLKROGET/SET, BLKFLSBUF, HDIO_GETGEO, BLKRRPART for MBR/GPT on ubd disks) and the loop ioctls (LOOP_SET_FD, LOOP_CONFIGURE, LOOP_SET/GET_STATUS64, LOOP_CLR_FD, LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE 512 only, LOOP_CTL_GET_FREE/ADD/REMOVE; the old 32-bit LOOP_SET/GET_STATUS and LOOP_CHANGE_FD give ENOSYS)"),
    ("sync", "flushes every disk (ubd, loop) to the host's disk; hostfs writes are on the host already"),
    ("syncfs", "as sync: flushes every disk"),
    ("sysinfo", "load averages read as zero"),
    ("adjtimex", "the instance's own clock: ADJ_FREQUENCY runs REALTIME (not MONOTONIC) faster or slower; no PLL runs, so ADJ_OFFSET outside adjtime mode is only kept and reported"),
    ("clock_adjtime", "CLOCK_REALTIME as adjtimex; other clocks EOPNOTSUPP"),
    ("syslog", "every action on the kernel's 128 KiB message ring; kernel.dmesg_restrict is 1 at boot (as Debian), root with CAP_SYS_ADMIN may change it; no /dev/kmsg"),
    ("setuid", "ids and capabilities are kept per process, not per thread (glibc applies set*id to every thread anyway); capabilities follow the uids as capabilities(7) (docs/security.md)"),
    ("setgid", "as setuid"),
    ("setreuid", "as setuid"),
    ("setregid", "as setuid"),
    ("setresuid", "as setuid"),
    ("setresgid", "as setuid"),
    ("setfsuid", "as setuid"),
    ("setfsgid", "as setuid"),
    ("setgroups", "as setuid"),
    ("capget", "sets are per process: a tid names its whole process"),
    ("capset", "sets are per process, not per thread; file capabilities are not supported (docs/security.md)"),
    ("seccomp", "SECCOMP_IOCTL_NOTIF_SET_FLAGS gives EINVAL (docs/security.md)"),
    ("sched_setaffinity", "the mask is recorded and reported, not applied to host scheduling"),
    ("sched_setscheduler", "Linux's checks and privilege rules (CAP_SYS_NICE, RLIMIT_RTPRIO, RLIMIT_NICE, other users' processes, SCHED_RESET_ON_FORK); policy and priority are recorded, inherited and reported, not applied to host scheduling"),
    ("sched_setparam", "as sched_setscheduler"),
    ("sched_setattr", "as sched_setscheduler; SCHED_DEADLINE parameters are checked and recorded (no admission control: never EBUSY); utilization clamps EOPNOTSUPP, as a kernel without CONFIG_UCLAMP_TASK"),
    ("setpriority", "Linux's privilege rules (EPERM for other users' processes, EACCES to lower nice without RLIMIT_NICE or CAP_SYS_NICE); nice values are per thread as Linux (PRIO_PROCESS takes a thread id; PRIO_PGRP/PRIO_USER reach every thread), recorded and reported, not applied"),
    ("setitimer", "ITIMER_VIRTUAL and ITIMER_PROF are checked every 10 ms of wall time"),
    ("timer_create", "CLOCK_REALTIME/MONOTONIC/BOOTTIME and the CPU-time clocks (CLOCK_PROCESS/THREAD_CPUTIME_ID, clock_getcpuclockid ids of any process): a CPU-time timer looks at its clock every 10 ms of wall time while armed, so it fires up to 10 ms late; MONOTONIC_RAW/COARSE and fd clocks EOPNOTSUPP; the ALARM clocks need CAP_WAKE_ALARM (EPERM) and run as REALTIME/BOOTTIME (nothing wakes the host)"),
    ("clock_nanosleep", "MONOTONIC_RAW and the COARSE clocks EOPNOTSUPP, the ALARM clocks need CAP_WAKE_ALARM, as Linux; on a CPU-time clock the clock is looked at every 10 ms; an interrupted relative CPU-time sleep without a handler restarts with its whole duration"),
    ("socket", "AF_UNIX, AF_INET and AF_INET6 (TCP, UDP), ping sockets (ICMP echo), SOCK_RAW for IPPROTO_ICMP / IPPROTO_ICMPV6 only (CAP_NET_RAW, else EPERM; other raw protocols EPROTONOSUPPORT), AF_NETLINK (NETLINK_ROUTE, NETLINK_SOCK_DIAG for inet TCP/UDP); no packet sockets (EAFNOSUPPORT); lo, and eth0 with eth0=user or eth0=switch (docs/networking.md)"),
    ("fcntl", "O_ASYNC signals (SIGIO or F_SETSIG with si_fd/si_band) when an object becomes readable or writable, or gains bytes (a repeated event on an object that keeps no byte count is not signalled again); F_GETOWNER_UIDS gives EINVAL; leases: opens held only by a mapping do not count against F_WRLCK, and a breaker rechecks a few times a second; dnotify reports renames to the old directory only; F_SEAL_WRITE does not check existing shared mappings"),
    ("fanotify_init", "notification class only (FAN_CLASS_CONTENT/PRE_CONTENT give EINVAL), FAN_REPORT_TID; no FAN_REPORT_FID/DFID/NAME (EINVAL)"),
    ("fanotify_mark", "FAN_ACCESS, FAN_MODIFY, FAN_OPEN, FAN_CLOSE_WRITE/NOWRITE with FAN_ONDIR and FAN_EVENT_ON_CHILD on inodes, mounts and filesystems; permission events, FAN_OPEN_EXEC, directory-entry events and ignore masks give EINVAL"),
    ("epoll_ctl", "as Linux, with EPOLLEXCLUSIVE waking one epoll instance per event (the first with a sleeper) and nested epolls waking their waiters; EPOLLWAKEUP is accepted and ignored"),
    ("io_uring_setup", "ring mmaps are checked as Linux up to 6.4 (an offset naming no region or a length past it is EINVAL); no SQPOLL or IOPOLL (EINVAL), no SQE128/CQE32, NO_MMAP or registered ring fds; features reported: SINGLE_MMAP, NODROP, SUBMIT_STABLE, RW_CUR_POS, FAST_POLL, POLL_32BITS, EXT_ARG"),
    ("io_uring_enter", "opcodes NOP, READ(V)/WRITE(V), READ/WRITE_FIXED, FSYNC, POLL_ADD/REMOVE (no multishot or updates), TIMEOUT/TIMEOUT_REMOVE (no updates), OPENAT, CLOSE, STATX, ACCEPT, CONNECT, SEND, RECV, SENDMSG, RECVMSG, ASYNC_CANCEL (ALL/FD/ANY), SPLICE, TEE; others (LINK_TIMEOUT, ...) complete with EINVAL; IOSQE_FIXED_FILE only for the read/write, fsync and poll opcodes (EBADF for the descriptor-based ones); no buffer selection or personalities; a registered eventfd is signalled once per CQE"),
    ("io_uring_register", "BUFFERS (ranges checked, not pinned), FILES, FILES_UPDATE, EVENTFD(_ASYNC), PROBE, ENABLE_RINGS; others EINVAL"),
    ("add_key", "key types user, logon and keyring (others ENODEV); per-user quotas from /proc/sys/kernel/keys; no asymmetric, big_key, encrypted or trusted keys"),
    ("request_key", "finds existing keys (expired ones skipped; a negated or rejected key gives its error); a key to construct is made, linked into the destination (or the default requestor keyring) and the guest's /sbin/request-key run by the kernel (root, init's namespaces, stdio on /dev/null, argv and environment as Linux's call_usermodehelper) with a .request_key_auth key in its _req session keyring; the caller waits for the helper to exit (uninterruptibly, as Linux), other requesters of the key wait for its construction; a key the helper leaves uninstantiated is negated for 60 s (ENOKEY); ENOENT when /sbin/request-key is missing; keyring keys cannot be requested (EPERM)"),
    ("keyctl", "thread, process, session, user and user-session keyrings; ASSUME_AUTHORITY, INSTANTIATE, INSTANTIATE_IOV, NEGATE and REJECT work with a request_key helper's authorisation (EPERM without it; ASSUME_AUTHORITY gives ENOKEY when no authorisation for the key is reachable or it was used (invalidated, as Linux does, by the INSTANTIATE or REJECT that used it), EKEYREVOKED once revoked; REJECT keeps any error number Linux does, named or not (EINVAL for 0, 4095 and up, and the ERESTART* codes), and request_key, searches and lookups give it back); KEY_SPEC_REQKEY_AUTH_KEY and KEY_SPEC_REQUESTOR_KEYRING; while it holds an authorisation the helper possesses and searches the requester's keyrings; RESTRICT_KEYRING only without a restriction type; DH_COMPUTE, PKEY_* and WATCH_KEY give EOPNOTSUPP (PKEY_QUERY EINVAL first for a non-zero reserved argument), as a kernel without CONFIG_KEY_DH_OPERATIONS, CONFIG_ASYMMETRIC_KEY_TYPE and CONFIG_KEY_NOTIFICATIONS, which /proc/config.gz and CAPABILITIES say; CAPABILITIES leaves the second byte's namespace bits clear (JOIN_SESSION_KEYRING does not look names up per user namespace, as Linux 5.3 and later do); GET_SECURITY returns an empty context; user and user-session keyrings per (user namespace, uid); revoked and expired keys are unlinked from keyrings kernel.keys.gc_delay seconds after they died, lazily when a keyring is read or /proc/keys is read (no timer); negative keys give their error (ENOKEY, or a rejection's) to READ, UPDATE and searches, DESCRIBE works; /proc/keys describes a .request_key_auth key as Linux (key:<target> pid:<requester> ci:<callout length>, nothing once revoked), though ruml leaves out invalidated keys at once where Linux shows them until its garbage collector runs"),
    ("io_submit", "reads, writes and syncs run at submission (as Linux's buffered AIO: blocking on pipes and sockets); POLL waits asynchronously; IOCB_CMD_NOOP is EINVAL as on Linux"),
    ("io_cancel", "only pending polls can be cancelled (EINPROGRESS, the event comes through the ring); others EINVAL"),
    ("open", "O_TMPFILE files cannot be linked into the tree later"),
    ("socketpair", "AF_UNIX only (EOPNOTSUPP for inet, as Linux)"),
    ("connect", "inet: only this machine's addresses are reachable (ENETUNREACH otherwise), or IPv4 through eth0=user's NAT"),
    ("setsockopt", "options with no effect on an in-kernel loopback transport (TCP_NODELAY, keepalive timers, IP_TOS, SO_PRIORITY) are stored and reported; multicast groups are delivered locally only (nothing on eth0's wire); IP_RECVERR / IPV6_RECVERR are kept but no error is ever queued; no IP_HDRINCL, IPV6_CHECKSUM, source-specific multicast (ENOPROTOOPT)"),
    ("getsockopt", "TCP_INFO gives the state, MSS, path MTU, byte counters, windows and last-data times; congestion, round-trip and retransmission fields are 0 (an in-kernel loopback measures none)"),
    ("sendmsg", "inet and netlink: control messages are ignored (no IP_PKTINFO / IP_TTL on send)"),
    ("recvmsg", "inet datagram sockets: SO_TIMESTAMP(NS), IP_PKTINFO, IP_TTL, IP_TOS, IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS; no MSG_ERRQUEUE entries (EAGAIN), nothing on TCP; netlink: none"),
    ("mount", "tmpfs, proc, sysfs, devpts, devtmpfs, hostfs, mqueue, and ext2/ext3/ext4 from a block device (read-write with the journal, extents, 64bit, flex_bg, metadata_csum; images with other read-only-compatible features such as quota mount read-only only: EROFS for a read-write mount; unknown incompatible features: EINVAL); MS_NOSUID, MS_NODEV and MS_NOEXEC recorded per mount (mount, MS_REMOUNT, copied by MS_BIND; shown by mountinfo, /proc/mounts, statfs) and enforced (noexec, nodev); the atime flags are ignored"),
    ("umount2", "MNT_EXPIRE always gives EAGAIN; MNT_FORCE is ignored"),
    ("mknod", "device nodes on tmpfs, the overlay and ext2 open the device of their number when ruml has its driver (mem 1:3/5/7/8/9, tty 5:0/1/2, vc 4:N, pts 136+:N, block devices); other numbers give ENXIO as an unregistered major; never on hostfs (EPERM)"),
    ("mknodat", "as mknod"),
    ("fallocate", "tmpfs: allocate, KEEP_SIZE, PUNCH_HOLE (the hole is unmapped from every mapping of the file, as truncation is); hostfs: passed to the host; others EOPNOTSUPP"),
    ("chown", "hostfs: when the host refuses, only the file's current ids succeed (docs/filesystems.md)"),
    ("fchown", "as chown"),
    ("lchown", "as chown"),
    ("fchownat", "as chown"),
    ("getxattr", "user., trusted., security. on tmpfs, the overlay root and ext2/3/4; hostfs only user. (on the host file); system.* (POSIX ACLs) EOPNOTSUPP; other filesystems EOPNOTSUPP (docs/filesystems.md)"),
    ("lgetxattr", "as getxattr"),
    ("fgetxattr", "as getxattr"),
    ("listxattr", "as getxattr"),
    ("llistxattr", "as getxattr"),
    ("flistxattr", "as getxattr"),
    ("setxattr", "as getxattr; security.capability is stored as given (no v3 root-id conversion)"),
    ("lsetxattr", "as setxattr"),
    ("fsetxattr", "as setxattr"),
    ("removexattr", "as setxattr"),
    ("lremovexattr", "as setxattr"),
    ("fremovexattr", "as setxattr"),
    ("name_to_handle_at", "tmpfs, ext2/3/4 and the overlay root; other filesystems EOPNOTSUPP, but with AT_HANDLE_FID the generic FILEID_INO64_GEN (generation 0) as Linux; overlay handles go stale on rename (docs/filesystems.md)"),
    ("open_by_handle_at", "as name_to_handle_at; the file has no path of its own (/proc/self/fd shows /)"),
    ("msgsnd", "all queues' texts together are bounded by a quarter of mem= (ENOMEM beyond)"),
    ("msgrcv", "woken receivers compete for a message (no hand-off to the first matching sleeper as Linux's pipelined send)"),
    ("semget", "all semaphores together are bounded by a quarter of mem= (ENOMEM beyond)"),
    ("semop", "CLONE_SYSVSEM is not honoured (undo lists are per process); sleepers retry on every change, without Linux's queue order"),
    ("semtimedop", "as semop"),
    ("shmget", "SHM_HUGETLB is accepted and gives ordinary pages"),
    ("shmctl", "SHM_LOCK only marks the segment (guest memory is never paged by ruml)"),
    ("mq_notify", "SIGEV_THREAD needs a netlink socket, which ruml lacks (ECONNREFUSED); a registration ends at close(2) or the process's exit, not at close_range or dup2 over the descriptor"),
];

/// System calls left as ENOSYS, with the reason docs/syscalls.md gives.
pub const UNIMPLEMENTED: &[(&str, &str)] = &[
    (
        "open_tree_attr",
        "Linux 6.15's open_tree with attributes: open_tree then mount_setattr does the same",
    ),
    ("init_module", NO_MODULES),
    ("finit_module", NO_MODULES),
    ("delete_module", NO_MODULES),
    (
        "acct",
        "no BSD process accounting: as Linux without CONFIG_BSD_PROCESS_ACCT (/proc/config.gz)",
    ),
    ("iopl", NO_PORTS),
    ("ioperm", NO_PORTS),
    (
        "bpf",
        "no BPF: as Linux without CONFIG_BPF_SYSCALL (/proc/config.gz)",
    ),
    (
        "perf_event_open",
        "no performance counters: as Linux without CONFIG_PERF_EVENTS (/proc/config.gz)",
    ),
    (
        "userfaultfd",
        "as Linux without CONFIG_USERFAULTFD (/proc/config.gz)",
    ),
    (
        "kexec_load",
        "as Linux without CONFIG_KEXEC (/proc/config.gz)",
    ),
    (
        "kexec_file_load",
        "as Linux without CONFIG_KEXEC (/proc/config.gz)",
    ),
    (
        "swapon",
        "ruml never swaps: as Linux without CONFIG_SWAP (/proc/config.gz)",
    ),
    (
        "swapoff",
        "ruml never swaps: as Linux without CONFIG_SWAP (/proc/config.gz)",
    ),
    (
        "quotactl",
        "no disk quotas: as Linux without CONFIG_QUOTACTL (/proc/config.gz)",
    ),
    (
        "quotactl_fd",
        "no disk quotas: as Linux without CONFIG_QUOTACTL (/proc/config.gz)",
    ),
];

/// Module calls: a user-mode kernel has no loadable modules.
const NO_MODULES: &str = "no loadable modules: as Linux without CONFIG_MODULES (/proc/config.gz)";
/// Port I/O calls: a guest never reaches the host's I/O ports.
const NO_PORTS: &str =
    "no I/O port access: as Linux without CONFIG_X86_IOPL_IOPERM (/proc/config.gz)";

/// The markdown text of docs/syscalls.md.
pub fn syscalls_md() -> String {
    let mut s = String::from(
        "# System calls\n\nEvery x86_64 system call and its state in ruml. Generated from the kernel's \
         table by `RUML_UPDATE_DOCS=1 cargo test -p ruml-kernel syscalls_md`; a test fails when \
         this file is stale.\n\n- `implemented`: does what Linux does.\n- `partial`: implemented, \
         with the limits in the notes.\n- `ENOSYS`: not implemented; the call returns ENOSYS \
         (logged once per number).\n\n| NR | name | state | notes |\n|---:|---|---|---|\n",
    );
    for &(nr, name) in SYSCALL_NAMES {
        let (state, note) = match (lookup(nr as u64), PARTIAL.iter().find(|(n, _)| *n == name)) {
            (Some(_), Some((_, note))) => ("partial", *note),
            (Some(_), None) => ("implemented", ""),
            (None, _) => (
                "ENOSYS",
                UNIMPLEMENTED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("", |(_, note)| *note),
            ),
        };
        s.push_str(&format!("| {nr} | {name} | {state} | {note} |\n"));
    }
    let n = super::implemented().len();
    s.push_str(&format!(
        "\n{n} of {} system calls are implemented.\n",
        SYSCALL_NAMES.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn syscalls_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/syscalls.md");
        let want = super::syscalls_md();
        if std::env::var_os("RUML_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(have == want, "docs/syscalls.md is stale: run RUML_UPDATE_DOCS=1 cargo test -p ruml-kernel syscalls_md");
    }

    #[test]
    fn partial_names_exist_and_are_implemented() {
        let nr = |name: &str| {
            super::SYSCALL_NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(nr, _)| *nr as u64)
                .unwrap_or_else(|| panic!("{name} is no syscall"))
        };
        for (name, _) in super::PARTIAL {
            assert!(
                super::lookup(nr(name)).is_some(),
                "{name} listed as partial but not implemented"
            );
        }
        for (name, _) in super::UNIMPLEMENTED {
            assert!(
                super::lookup(nr(name)).is_none(),
                "{name} listed as ENOSYS but implemented"
            );
        }
    }
}
