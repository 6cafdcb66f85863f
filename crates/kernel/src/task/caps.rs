//! Capabilities, as capabilities(7) describes them: the permitted,
//! effective, inheritable, bounding and ambient sets and the securebits
//! live in the process's [`Creds`] (one mutex; ruml keeps credentials per
//! process, and glibc keeps a process's threads in step anyway).
//!
//! Rules implemented here: capget/capset (versions 1-3), the set*uid
//! transitions (caps dropped when no uid is 0 any more unless
//! SECBIT_KEEP_CAPS, effective set following the effective uid, fsuid
//! moving the filesystem capabilities), the execve transformation (root
//! gets its bounding and inheritable sets unless SECBIT_NOROOT; ambient
//! kept), PR_CAPBSET_*, PR_CAP_AMBIENT, PR_*_KEEPCAPS and PR_*_SECUREBITS.
//! File capabilities (security.capability xattrs) are not supported: an
//! executable never adds capabilities of its own, and set-user-id bits
//! are not honoured by exec either (docs/security.md).
//!
//! Every privilege check of the kernel goes through
//! [`Task::privileged`](super::Task::privileged) with the capability it
//! needs, so that user namespaces can make that one function aware of them.

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::creds::Creds;

/// A capability number (linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    Chown = 0,
    DacOverride = 1,
    DacReadSearch = 2,
    Fowner = 3,
    Fsetid = 4,
    Kill = 5,
    Setgid = 6,
    Setuid = 7,
    Setpcap = 8,
    LinuxImmutable = 9,
    NetBindService = 10,
    NetBroadcast = 11,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysModule = 16,
    SysRawio = 17,
    SysChroot = 18,
    SysPtrace = 19,
    SysPacct = 20,
    SysAdmin = 21,
    SysBoot = 22,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    SysTtyConfig = 26,
    Mknod = 27,
    Lease = 28,
    AuditWrite = 29,
    AuditControl = 30,
    Setfcap = 31,
    MacOverride = 32,
    MacAdmin = 33,
    Syslog = 34,
    WakeAlarm = 35,
    BlockSuspend = 36,
    AuditRead = 37,
    Perfmon = 38,
    Bpf = 39,
    CheckpointRestore = 40,
}

impl Cap {
    /// The capability's bit in a set.
    pub fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

/// The highest capability number (/proc/sys/kernel/cap_last_cap).
pub const CAP_LAST_CAP: u64 = 40;
/// Every capability.
pub const CAP_FULL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

/// The capabilities that follow the filesystem uid (CAP_FS_SET).
const CAP_FS_SET: u64 =
    (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 9) | (1 << 27) | (1 << 32);

pub const SECBIT_NOROOT: u32 = 1 << 0;
pub const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
pub const SECBIT_KEEP_CAPS: u32 = 1 << 4;
pub const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
pub const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
/// NOROOT, NO_SETUID_FIXUP, KEEP_CAPS, NO_CAP_AMBIENT_RAISE, EXEC_RESTRICT_FILE and
/// EXEC_DENY_INTERACTIVE (the last two are policy for interpreters to read).
const SECURE_ALL_BITS: u32 = 0x555;
const SECURE_ALL_LOCKS: u32 = 0xaaa;

/// The five sets and the securebits of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
    pub securebits: u32,
}

/// capabilities(7)'s names, by number.
pub const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A capability's number from its name ("CAP_CHOWN"; case-insensitive).
pub fn cap_by_name(name: &str) -> Option<u32> {
    CAP_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// A set of the named capabilities; the first unknown name is the error.
pub fn set_of(names: &[String]) -> Result<u64, String> {
    names.iter().try_fold(0u64, |m, n| {
        cap_by_name(n)
            .map(|b| m | 1 << b)
            .ok_or_else(|| format!("unknown capability {n:?}"))
    })
}

impl CapSets {
    /// The sets an OCI process asks for (config.json
    /// `process.capabilities`), made consistent as Linux's capset and
    /// PR_CAP_AMBIENT would leave them: effective within permitted,
    /// ambient within both permitted and inheritable. The execve of the
    /// container's program then transforms them as for any exec.
    pub fn from_oci(
        bounding: u64,
        effective: u64,
        permitted: u64,
        inheritable: u64,
        ambient: u64,
    ) -> CapSets {
        let permitted = permitted & CAP_FULL;
        CapSets {
            inheritable: inheritable & CAP_FULL,
            permitted,
            effective: effective & permitted,
            bounding: bounding & CAP_FULL,
            ambient: ambient & permitted & inheritable,
            securebits: 0,
        }
    }

    /// Root's sets at boot: everything but inheritable and ambient.
    pub fn root() -> CapSets {
        CapSets {
            inheritable: 0,
            permitted: CAP_FULL,
            effective: CAP_FULL,
            bounding: CAP_FULL,
            ambient: 0,
            securebits: 0,
        }
    }
}

impl Default for CapSets {
    fn default() -> Self {
        CapSets::root()
    }
}

impl Creds {
    /// Whether the effective set holds `cap`.
    pub fn capable(&self, cap: Cap) -> bool {
        self.ns_caps || self.caps.effective & cap.bit() != 0
    }
}

/// kill(2)'s permission rule (check_kill_permission): a thread of the
/// same process, a sender whose real or effective uid is the target's real
/// or saved uid, a holder of CAP_KILL, or SIGCONT within the session.
pub fn may_signal(sender: &super::Task, target: &super::ThreadGroup, sig: i32) -> bool {
    if std::ptr::eq(sender.group.as_ref(), target) {
        return true;
    }
    let s = sender
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (truid, tsuid) = {
        let t = target.creds.lock().unwrap_or_else(|p| p.into_inner());
        (t.ruid, t.suid)
    };
    if s.capable(Cap::Kill) || [truid, tsuid].contains(&s.euid) || [truid, tsuid].contains(&s.ruid)
    {
        return true;
    }
    const SIGCONT: i32 = 18;
    sig == SIGCONT && {
        let sid = |pid| super::process_ids(pid).map(|i| i.sid);
        sid(sender.tgid()).is_some_and(|a| Some(a) == sid(target.tgid()))
    }
}

fn valid(cap: u64) -> bool {
    cap <= CAP_LAST_CAP
}

/// cap_emulate_setxuid: after setuid/setreuid/setresuid changed `new`'s
/// ids from `old`'s.
pub fn fix_setuid(old: &Creds, new: &mut Creds) {
    if new.caps.securebits & SECBIT_NO_SETUID_FIXUP != 0 {
        return;
    }
    // "Root" is uid 0 of the process's user namespace.
    let root = new.root_uid();
    let was_root = old.ruid == root || old.euid == root || old.suid == root;
    let now_root = new.ruid == root || new.euid == root || new.suid == root;
    if was_root && !now_root {
        if new.caps.securebits & SECBIT_KEEP_CAPS == 0 {
            new.caps.permitted = 0;
            new.caps.effective = 0;
        }
        new.caps.ambient = 0;
    }
    if old.euid == root && new.euid != root {
        new.caps.effective = 0;
    }
    if old.euid != root && new.euid == root {
        new.caps.effective = new.caps.permitted;
    }
    fix_setfsuid(old.fsuid, new);
}

/// The filesystem capabilities follow the filesystem uid (setfsuid, and
/// every set*uid, which moves the fsuid too).
pub fn fix_setfsuid(old_fsuid: u32, new: &mut Creds) {
    if new.caps.securebits & SECBIT_NO_SETUID_FIXUP != 0 {
        return;
    }
    let root = new.root_uid();
    if old_fsuid == root && new.fsuid != root {
        new.caps.effective &= !CAP_FS_SET;
    }
    if old_fsuid != root && new.fsuid == root {
        new.caps.effective |= new.caps.permitted & CAP_FS_SET;
    }
}

/// The execve transformation for a file without file capabilities and
/// without set-id bits honoured (cap_bprm_creds_from_file).
pub fn exec_transform(c: &mut Creds) {
    let root_uid = c.root_uid();
    let (euid, ruid) = (c.euid, c.ruid);
    let s = &mut c.caps;
    let root = s.securebits & SECBIT_NOROOT == 0;
    let mut permitted = 0;
    let mut effective = false;
    if root && (euid == root_uid || ruid == root_uid) {
        permitted = s.bounding | s.inheritable;
    }
    if root && euid == root_uid {
        effective = true;
    }
    // Neither file capabilities nor a set-id change: ambient stays.
    s.permitted = permitted | s.ambient;
    s.effective = if effective { s.permitted } else { s.ambient };
    // SECBIT_KEEP_CAPS is cleared by every execve.
    s.securebits &= !SECBIT_KEEP_CAPS;
    c.suid = c.euid;
    c.fsuid = c.euid;
    c.sgid = c.egid;
    c.fsgid = c.egid;
}

syscall_table! { pub fn caps_table;
    CAPGET => sys_capget(hdr: UserAddr, data: UserAddr),
    CAPSET => sys_capset(hdr: UserAddr, data: UserAddr),
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// The header's version and pid; an unknown version is answered with
/// version 3 written back and EINVAL (how libcap probes).
fn cap_version(ctx: &SyscallContext<'_>, hdr: UserAddr) -> KResult<(usize, i32)> {
    let h: [u32; 2] = ctx.mm().read_val(hdr.0)?;
    match h[0] {
        CAP_V1 => Ok((1, h[1] as i32)),
        CAP_V2 | CAP_V3 => Ok((2, h[1] as i32)),
        _ => {
            ctx.mm().write_val(hdr.0, &CAP_V3)?;
            error!(EINVAL)
        }
    }
}

fn sys_capget(ctx: &mut SyscallContext<'_>, hdr: UserAddr, data: UserAddr) -> KResult<u64> {
    let (words, pid) = match cap_version(ctx, hdr) {
        Ok(v) => v,
        Err(e) if e == crate::errno!(EINVAL) && data.is_null() => return Ok(0),
        Err(e) => return Err(e),
    };
    if data.is_null() {
        return Ok(0);
    }
    if pid < 0 {
        return error!(EINVAL);
    }
    let target = if pid == 0 || pid == ctx.task.tid() {
        ctx.task.clone()
    } else {
        crate::kernel()
            .tasks
            .thread(pid)
            .ok_or(crate::errno!(ESRCH))?
    };
    let s = target
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .caps;
    let mut out = Vec::with_capacity(24);
    for i in 0..words {
        for set in [s.effective, s.permitted, s.inheritable] {
            out.extend_from_slice(&((set >> (32 * i)) as u32).to_le_bytes());
        }
    }
    ctx.mm().write_bytes(data.0, &out)?;
    Ok(0)
}

fn sys_capset(ctx: &mut SyscallContext<'_>, hdr: UserAddr, data: UserAddr) -> KResult<u64> {
    let (words, pid) = cap_version(ctx, hdr)?;
    if pid != 0 && pid != ctx.task.tid() {
        return error!(EPERM);
    }
    let mut raw = [0u8; 24];
    ctx.mm().read_bytes(data.0, &mut raw[..12 * words])?;
    let word = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]) as u64;
    let (mut eff, mut prm, mut inh) = (0u64, 0u64, 0u64);
    for i in 0..words {
        eff |= word(i * 12) << (32 * i);
        prm |= word(i * 12 + 4) << (32 * i);
        inh |= word(i * 12 + 8) << (32 * i);
    }
    let (eff, prm, inh) = (eff & CAP_FULL, prm & CAP_FULL, inh & CAP_FULL);
    let mut c = super::creds::change(&ctx.task.group);
    let old = c.caps;
    // cap_capset's rules.
    if !c.capable(Cap::Setpcap) && inh & !(old.inheritable | old.permitted) != 0 {
        return error!(EPERM);
    }
    if inh & !(old.inheritable | old.bounding) != 0 {
        return error!(EPERM);
    }
    if prm & !old.permitted != 0 || eff & !prm != 0 {
        return error!(EPERM);
    }
    c.caps.effective = eff;
    c.caps.permitted = prm;
    c.caps.inheritable = inh;
    c.caps.ambient &= prm & inh;
    Ok(0)
}

const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_GET_SECUREBITS: i32 = 27;
const PR_SET_SECUREBITS: i32 = 28;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// The capability options of prctl; None for an option that is not one.
pub fn prctl(ctx: &SyscallContext<'_>, option: i32, a: [u64; 4]) -> Option<KResult<u64>> {
    let mut c = ctx
        .task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let r = match option {
        PR_GET_KEEPCAPS => Ok((c.caps.securebits & SECBIT_KEEP_CAPS != 0) as u64),
        PR_SET_KEEPCAPS => {
            if a[0] > 1 {
                error!(EINVAL)
            } else if c.caps.securebits & SECBIT_KEEP_CAPS_LOCKED != 0 {
                error!(EPERM)
            } else {
                if a[0] == 1 {
                    c.caps.securebits |= SECBIT_KEEP_CAPS;
                } else {
                    c.caps.securebits &= !SECBIT_KEEP_CAPS;
                }
                Ok(0)
            }
        }
        PR_CAPBSET_READ => {
            if !valid(a[0]) {
                error!(EINVAL)
            } else {
                Ok((c.caps.bounding >> a[0]) & 1)
            }
        }
        PR_CAPBSET_DROP => {
            if !c.capable(Cap::Setpcap) {
                error!(EPERM)
            } else if !valid(a[0]) {
                error!(EINVAL)
            } else {
                c.caps.bounding &= !(1 << a[0]);
                Ok(0)
            }
        }
        PR_GET_SECUREBITS => Ok(c.caps.securebits as u64),
        PR_SET_SECUREBITS => {
            let old = c.caps.securebits as u64;
            let locks = SECURE_ALL_LOCKS as u64;
            if ((old & locks) >> 1) & (old ^ a[0]) != 0
                || old & locks & !a[0] != 0
                || a[0] & !((SECURE_ALL_LOCKS | SECURE_ALL_BITS) as u64) != 0
                || !c.capable(Cap::Setpcap)
            {
                error!(EPERM)
            } else {
                c.caps.securebits = a[0] as u32;
                Ok(0)
            }
        }
        PR_CAP_AMBIENT => ambient(&mut c, a),
        _ => return None,
    };
    Some(r)
}

fn ambient(c: &mut Creds, a: [u64; 4]) -> KResult<u64> {
    if a[0] == PR_CAP_AMBIENT_CLEAR_ALL {
        if a[1] != 0 || a[2] != 0 || a[3] != 0 {
            return error!(EINVAL);
        }
        c.caps.ambient = 0;
        return Ok(0);
    }
    if !valid(a[1]) || a[2] != 0 || a[3] != 0 {
        return error!(EINVAL);
    }
    let bit = 1u64 << a[1];
    match a[0] {
        PR_CAP_AMBIENT_IS_SET => Ok((c.caps.ambient & bit != 0) as u64),
        PR_CAP_AMBIENT_RAISE => {
            if c.caps.permitted & bit == 0
                || c.caps.inheritable & bit == 0
                || c.caps.securebits & SECBIT_NO_CAP_AMBIENT_RAISE != 0
            {
                return error!(EPERM);
            }
            c.caps.ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.caps.ambient &= !bit;
            Ok(0)
        }
        _ => error!(EINVAL),
    }
}

/// The Cap* lines of /proc/PID/status.
pub fn status_lines(s: &CapSets) -> String {
    format!(
        "CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\n",
        s.inheritable, s.permitted, s.effective, s.bounding, s.ambient
    )
}

/// Opening /proc/PID/oom_score_adj for writing: its owner (the process's
/// effective uid) or a caller with CAP_DAC_OVERRIDE, as the file's 0644
/// mode gives on Linux; EACCES otherwise, ESRCH once the process is gone.
pub fn open_oom_score_adj(
    pid: i32,
    flags: u32,
    caller: &crate::fs::vfs::Caller<'_>,
) -> KResult<std::sync::Arc<dyn crate::fs::vfs::FileOps>> {
    let group = crate::kernel()
        .tasks
        .thread(pid)
        .map(|t| t.group.clone())
        .ok_or(crate::errno!(ESRCH))?;
    let (sys_resource, owner) = match caller.task {
        None => (true, true),
        Some(t) => {
            let euid = group.creds.lock().unwrap_or_else(|p| p.into_inner()).euid;
            let fsuid = t
                .group
                .creds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fsuid;
            (
                t.privileged(Cap::SysResource),
                fsuid == euid || t.privileged(Cap::DacOverride),
            )
        }
    };
    if !owner {
        return error!(EACCES);
    }
    let data = if flags & 3 == 2 {
        Vec::new()
    } else {
        format!("{}\n", group.sig().oom_score_adj).into_bytes()
    };
    Ok(std::sync::Arc::new(OomScoreAdj {
        group: std::sync::Arc::downgrade(&group),
        sys_resource,
        data,
    }))
}

/// An open /proc/PID/oom_score_adj: writes set the process's value with
/// Linux's rules (-1000..1000, else EINVAL; below the value last set with
/// CAP_SYS_RESOURCE needs CAP_SYS_RESOURCE: EACCES). Holds the process
/// weakly: ESRCH once it is gone.
struct OomScoreAdj {
    group: std::sync::Weak<super::ThreadGroup>,
    /// Whether the opener holds CAP_SYS_RESOURCE.
    sys_resource: bool,
    /// The value at open, for reads of an O_RDWR open.
    data: Vec<u8>,
}

impl crate::fs::vfs::FileOps for OomScoreAdj {
    fn read(&self, _f: &crate::fs::file::OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.data.len() as u64) as usize;
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }
    fn write(&self, _f: &crate::fs::file::OpenFile, _off: u64, buf: &[u8]) -> KResult<usize> {
        let text = &buf[..buf.len().min(64)];
        let v: i64 = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(crate::errno!(EINVAL))?;
        if !(-1000..=1000).contains(&v) {
            return error!(EINVAL);
        }
        let g = self.group.upgrade().ok_or(crate::errno!(ESRCH))?;
        let mut s = g.sig();
        let v = v as i16;
        if v < s.oom_score_adj_min && !self.sys_resource {
            return error!(EACCES);
        }
        s.oom_score_adj = v;
        if self.sys_resource {
            s.oom_score_adj_min = v;
        }
        Ok(buf.len())
    }
    fn truncate(&self, _len: u64) -> KResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Creds {
        Creds::default()
    }

    #[test]
    fn setuid_drops_unless_keepcaps() {
        let old = root();
        let mut new = old.clone();
        (new.ruid, new.euid, new.suid, new.fsuid) = (1000, 1000, 1000, 1000);
        fix_setuid(&old, &mut new);
        assert_eq!((new.caps.permitted, new.caps.effective), (0, 0));
        let mut old = root();
        old.caps.securebits = SECBIT_KEEP_CAPS;
        let mut new = old.clone();
        (new.ruid, new.euid, new.suid, new.fsuid) = (1000, 1000, 1000, 1000);
        fix_setuid(&old, &mut new);
        assert_eq!((new.caps.permitted, new.caps.effective), (CAP_FULL, 0));
    }

    #[test]
    fn seteuid_round_trip_restores_effective() {
        let old = root();
        let mut mid = old.clone();
        (mid.euid, mid.fsuid) = (1000, 1000);
        fix_setuid(&old, &mut mid);
        assert_eq!((mid.caps.permitted, mid.caps.effective), (CAP_FULL, 0));
        let mut back = mid.clone();
        (back.euid, back.fsuid) = (0, 0);
        fix_setuid(&mid, &mut back);
        assert_eq!(back.caps.effective, CAP_FULL);
    }

    #[test]
    fn exec_of_root_and_of_user() {
        let mut c = root();
        c.caps.bounding &= !Cap::NetRaw.bit();
        exec_transform(&mut c);
        assert_eq!(c.caps.effective, CAP_FULL & !Cap::NetRaw.bit());
        let mut u = root();
        (u.ruid, u.euid, u.suid, u.fsuid) = (5, 5, 5, 5);
        u.caps.inheritable = Cap::NetRaw.bit();
        u.caps.ambient = Cap::NetRaw.bit();
        exec_transform(&mut u);
        assert_eq!(u.caps.permitted, Cap::NetRaw.bit());
        assert_eq!(u.caps.effective, Cap::NetRaw.bit());
    }
}
