//! docs/syscalls.md is generated from the table, so it cannot drift: the
//! test below fails when the file differs from what the table says, and
//! `RUML_UPDATE_DOCS=1 cargo test -p ruml-kernel syscalls_md` rewrites it.

use super::{lookup, names::SYSCALL_NAMES};

/// Implemented calls that do less than Linux, and what is missing.
pub const PARTIAL: &[(&str, &str)] = &[
    ("clone", "CLONE_NEW* as unshare (docs/namespaces.md)"),
    ("clone3", "set_tid gives EINVAL; namespaces as unshare (docs/namespaces.md)"),
    ("unshare", "every namespace type; IPC namespaces separate System V objects but not POSIX message queues; a time namespace's offsets are always zero; a network namespace has its own interfaces and ports, but /proc/net lists every namespace's sockets and abstract unix names are shared; signals' si_pid is not translated into the receiver's PID namespace"),
    ("setns", "namespace files (/proc/PID/ns/*) only; a pidfd gives EINVAL"),
    ("pivot_root", "as Linux; the old root may be detached with umount2(MNT_DETACH)"),
    ("open_tree", "OPEN_TREE_CLONE copies the top mount only (AT_RECURSIVE does not copy submounts)"),
    ("fsconfig", "FSCONFIG_SET_FLAG/SET_STRING and CMD_CREATE; binary, path and fd values give EINVAL; CMD_RECONFIGURE gives EOPNOTSUPP"),
    ("mount_setattr", "MOUNT_ATTR_RDONLY and propagation take effect; the other attributes are accepted and not enforced; idmapped mounts give EINVAL"),
    ("prlimit64", "NOFILE, STACK and AS are enforced; the others are recorded (NPROC is not enforced for root, as on Linux)"),
    ("prctl", "NAME, DUMPABLE, PDEATHSIG, CHILD_SUBREAPER, NO_NEW_PRIVS; others EINVAL"),
    ("arch_prctl", "ARCH_SET/GET_FS, ARCH_SET/GET_GS, ARCH_GET_CPUID"),
    ("madvise", "DONTNEED/FREE discard pages; DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, DONTDUMP/DODUMP as Linux; REMOVE gives EOPNOTSUPP; HWPOISON and the access-pattern hints are accepted without effect"),
    ("msync", "writes back every mapped page of shared host-file mappings (no dirty tracking)"),
    ("ioctl", "FIONREAD, FIONBIO, FIOCLEX/FIONCLEX, the terminal ioctls (termios, window size, job control, ptys; no TIOCPKT packet mode, no TIOCSCTTY stealing), SIOCOUTQ/SIOCATMARK and the interface ioctls (SIOCGIF{CONF,FLAGS,ADDR,NETMASK,BRDADDR,MTU,HWADDR,INDEX,NAME}, SIOCSIFFLAGS), the block ioctls (BLKGETSIZE64, BLKGETSIZE, BLKSSZGET, BLKBSZGET/SET, BLKPBSZGET, BLKIOMIN/OPT, BLKALIGNOFF, BLKDISCARDZEROES, BLKROGET/SET, BLKFLSBUF, HDIO_GETGEO, BLKRRPART for MBR/GPT on ubd disks) and the loop ioctls (LOOP_SET_FD, LOOP_CONFIGURE, LOOP_SET/GET_STATUS64, LOOP_CLR_FD, LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE 512 only, LOOP_CTL_GET_FREE/ADD/REMOVE; the old 32-bit LOOP_SET/GET_STATUS and LOOP_CHANGE_FD give ENOSYS)"),
    ("sync", "flushes every disk (ubd, loop) to the host's disk; hostfs writes are on the host already"),
    ("syncfs", "as sync: flushes every disk"),
    ("sysinfo", "load averages read as zero"),
    ("setuid", "capabilities are not kept per process: effective uid 0 has them all"),
    ("setgid", "as setuid"),
    ("setreuid", "as setuid"),
    ("setregid", "as setuid"),
    ("setresuid", "as setuid"),
    ("setresgid", "as setuid"),
    ("setfsuid", "as setuid"),
    ("setfsgid", "as setuid"),
    ("setgroups", "as setuid"),
    ("capget", "full capabilities for effective uid 0, none otherwise"),
    ("capset", "only drops or keeps what the effective uid has; not kept per process"),
    ("sched_setaffinity", "the mask is recorded and reported, not applied to host scheduling"),
    ("sched_setscheduler", "policy and priority are recorded and reported, not applied"),
    ("sched_setparam", "as sched_setscheduler"),
    ("setpriority", "nice values are recorded and reported, not applied"),
    ("setitimer", "ITIMER_VIRTUAL and ITIMER_PROF are checked every 10 ms of wall time"),
    ("timer_create", "CLOCK_REALTIME/MONOTONIC/BOOTTIME; CPU-time clocks give EINVAL"),
    ("socket", "AF_UNIX, AF_INET and AF_INET6 (TCP, UDP), ping sockets (ICMP echo), AF_NETLINK (NETLINK_ROUTE); no raw or packet sockets (EPROTONOSUPPORT / EAFNOSUPPORT); lo, and eth0 with eth0=user (docs/networking.md)"),
    ("fcntl", "no leases, no F_SETOWN/O_ASYNC signal-driven I/O; F_SEAL_WRITE does not check existing shared mappings"),
    ("open", "O_TMPFILE files cannot be linked into the tree later"),
    ("socketpair", "AF_UNIX only (EOPNOTSUPP for inet, as Linux)"),
    ("connect", "inet: only this machine's addresses are reachable (ENETUNREACH otherwise), or IPv4 through eth0=user's NAT"),
    ("setsockopt", "options with no effect on an in-kernel loopback transport (TCP_NODELAY, keepalive timers, IP_TOS, SO_PRIORITY) are stored and reported; no multicast or IP_PKTINFO-style options (ENOPROTOOPT)"),
    ("sendmsg", "inet and netlink: control messages are ignored"),
    ("recvmsg", "inet and netlink: no control messages (msg_controllen 0)"),
    ("mount", "tmpfs, proc, sysfs, devpts, devtmpfs, hostfs, mqueue, and ext2/ext3/ext4 from a block device (ext2 features read-write, ext3 with a clean journal read-write without journaling, ext4 extents/64bit/flex_bg read-only: EROFS for a read-write mount); MS_REMOUNT changes MS_RDONLY only; MS_BIND|MS_REC copies submounts; propagation (shared, private, slave, unbindable, MS_REC) is kept per mount and new mounts propagate to peers and slaves (docs/namespaces.md); MS_MOVE moves a mount"),
    ("umount2", "MNT_EXPIRE always gives EAGAIN; MNT_FORCE is ignored"),
    ("mknod", "device nodes made on tmpfs cannot be opened (ENXIO; ruml's devices are in its devfs); never on hostfs (EPERM)"),
    ("mknodat", "as mknod"),
    ("fallocate", "tmpfs: allocate, KEEP_SIZE, PUNCH_HOLE; hostfs: passed to the host; others EOPNOTSUPP"),
    ("chown", "hostfs: when the host refuses, only the file's current ids succeed (docs/filesystems.md)"),
    ("fchown", "as chown"),
    ("lchown", "as chown"),
    ("fchownat", "as chown"),
    ("getxattr", "no filesystem stores extended attributes yet: EOPNOTSUPP"),
    ("lgetxattr", "as getxattr"),
    ("fgetxattr", "as getxattr"),
    ("listxattr", "lists none"),
    ("llistxattr", "lists none"),
    ("flistxattr", "lists none"),
    ("setxattr", "EROFS on read-only mounts, else EOPNOTSUPP"),
    ("lsetxattr", "as setxattr"),
    ("fsetxattr", "as setxattr"),
    ("removexattr", "as setxattr"),
    ("lremovexattr", "as setxattr"),
    ("fremovexattr", "as setxattr"),
    ("msgsnd", "one IPC namespace; all queues' texts together are bounded by a quarter of mem= (ENOMEM beyond)"),
    ("msgrcv", "woken receivers compete for a message (no hand-off to the first matching sleeper as Linux's pipelined send)"),
    ("semget", "one IPC namespace; all semaphores together are bounded by a quarter of mem= (ENOMEM beyond)"),
    ("semop", "CLONE_SYSVSEM is not honoured (undo lists are per process); sleepers retry on every change, without Linux's queue order"),
    ("semtimedop", "as semop"),
    ("shmget", "one IPC namespace; SHM_HUGETLB is accepted and gives ordinary pages"),
    ("shmctl", "SHM_LOCK only marks the segment (guest memory is never paged by ruml)"),
    ("mq_notify", "SIGEV_THREAD needs a netlink socket, which ruml lacks (ECONNREFUSED); a registration ends at close(2) or the process's exit, not at close_range or dup2 over the descriptor"),
];

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
            (None, _) => ("ENOSYS", ""),
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
        for (name, _) in super::PARTIAL {
            let nr = super::SYSCALL_NAMES
                .iter()
                .find(|(_, n)| n == name)
                .map(|(nr, _)| *nr);
            let nr = nr.unwrap_or_else(|| panic!("{name} is no syscall"));
            assert!(
                super::lookup(nr as u64).is_some(),
                "{name} listed as partial but not implemented"
            );
        }
    }
}
