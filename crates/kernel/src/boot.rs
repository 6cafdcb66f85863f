//! Boot: physical memory, host checks, the root filesystem, init.

use std::path::PathBuf;
use std::sync::Arc;

use ruml_host::PhysMem;

use crate::task::{self, exit, ExitStatus, Task};

/// What the command line asked for.
pub struct BootConfig {
    /// Guest RAM in bytes (`mem=`).
    pub mem: u64,
    /// Host directory of the root filesystem (`root=`/`hostfs=`).
    pub root: PathBuf,
    /// init's path inside the guest and its argv and environment.
    pub init: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub quiet: bool,
    /// The root filesystem: overlay (default) or plain hostfs
    /// (`rootfstype=hostfs`, read-only).
    pub root_mode: crate::fs::RootMode,
    /// `mount=HOSTDIR:GUESTDIR`: read-write hostfs mounts made at boot.
    pub host_mounts: Vec<(PathBuf, Vec<u8>)>,
    /// `ubdN[rsd]=FILE[,BACKING]`: the ubd disks.
    pub ubd: Vec<crate::block::ubd::UbdSpec>,
    /// Init's working directory inside the guest (default `/`).
    pub cwd: Option<Vec<u8>>,
    /// `mode=`: the execution backend, or None for the best available.
    pub mode: Option<ruml_host::Mode>,
    /// Programs tried in turn when `init` cannot be executed (Linux's
    /// /sbin/init, /etc/init, /bin/init, /bin/sh when no init= is given).
    pub init_fallbacks: Vec<Vec<u8>>,
    /// The command line /proc/cmdline shows.
    pub cmdline: String,
}

static CMDLINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The kernel command line (/proc/cmdline).
pub fn cmdline() -> &'static str {
    CMDLINE.get().map(|s| s.as_str()).unwrap_or("")
}

/// Boots the instance and runs init to its end. Returns ruml's exit
/// status: init's exit code, or 128 + the signal that killed it.
pub fn boot(cfg: BootConfig) -> Result<i32, String> {
    crate::log::start(cfg.quiet);
    crate::log::info(&format!(
        "Linux version {} (ruml {}) {}",
        task::syscalls::UTS_RELEASE,
        env!("CARGO_PKG_VERSION"),
        task::syscalls::UTS_VERSION
    ));
    let _ = CMDLINE.set(cfg.cmdline.clone());
    crate::log::info(&format!("Kernel command line: {}", cfg.cmdline));
    let phys =
        Arc::new(PhysMem::new(cfg.mem).map_err(|e| format!("cannot create guest memory: {e}"))?);
    crate::log::info(&format!(
        "Memory: {}K available (physmem is a memfd, backed lazily)",
        phys.total_pages() * 4
    ));
    let mode = ruml_host::checks::run(&phys, &|l| crate::log::info(l), cfg.mode)
        .map_err(|e| e.to_string())?;
    ruml_host::set_mode(mode);
    crate::net::eth::start()?;
    crate::log::info(match mode {
        ruml_host::Mode::Ptrace => {
            "Execution backend: ptrace (PTRACE_SYSEMU, skas0-style stub processes)"
        }
        ruml_host::Mode::Seccomp => {
            "Execution backend: seccomp (SIGSYS in the stub, shared-memory handoff, skas-style stub processes)"
        }
    });
    let k = crate::init_kernel(crate::Kernel {
        page_cache: crate::mm::pagecache::PageCache::new(phys.clone()),
        phys,
        tasks: task::TaskTable::new(),
        hostname: std::sync::Mutex::new(b"ruml".to_vec()),
        domainname: std::sync::Mutex::new(b"(none)".to_vec()),
    });
    crate::block::boot(&cfg.ubd)?;
    let fs_cfg = crate::fs::FsConfig {
        root: cfg.root.clone(),
        read_only: true,
        mode: cfg.root_mode,
        host_mounts: cfg.host_mounts.clone(),
    };
    let fs = crate::fs::boot(&fs_cfg).map_err(|e| {
        format!(
            "cannot mount the root filesystem {}: {e}",
            cfg.root.display()
        )
    })?;
    match cfg.root_mode {
        crate::fs::RootMode::Overlay => crate::log::info(&format!(
            "VFS: Mounted root (overlay filesystem: {} read-only under a tmpfs upper layer) read-write.",
            cfg.root.display()
        )),
        crate::fs::RootMode::Disk { read_only } => crate::log::info(&format!(
            "VFS: Mounted root ({} filesystem) {} on device {}.",
            fs.ns.root().mnt.fstype,
            if read_only { "readonly" } else { "read-write" },
            cfg.root.display()
        )),
        crate::fs::RootMode::HostFs => {
            crate::log::info(&format!("VFS: Mounted root (hostfs filesystem, {}) readonly.", cfg.root.display()))
        }
    }
    for (host, guest) in &cfg.host_mounts {
        crate::log::info(&format!(
            "VFS: Mounted hostfs {} on {} read-write.",
            host.display(),
            String::from_utf8_lossy(guest)
        ));
    }
    if let Some(dir) = &cfg.cwd {
        let walker = crate::fs::namei::Walker {
            ns: &fs.ns,
            root: fs.root(),
            caller: crate::fs::vfs::Caller::kernel(),
        };
        match walker.walk(&fs.root(), dir, true) {
            Ok(p) if p.inode().file_type() == crate::fs::types::FileType::Directory => {
                fs.set_cwd(p)
            }
            _ => crate::log::warn(&format!(
                "cwd {}: not a directory in the guest; init starts in /",
                String::from_utf8_lossy(dir)
            )),
        }
    }
    let files =
        crate::fs::console_fdtable().map_err(|e| format!("cannot open the console: {e}"))?;
    let pid = {
        let tree = k.tasks.lock();
        k.tasks.alloc_pid(&tree).ok_or("no free pid")?
    };
    let mm = crate::mm::Mm::new(k.phys.clone(), crate::mm::task_size() / 2);
    let group = task::ThreadGroup::new(pid, Default::default(), task::syscalls::default_limits());
    let init = Task::new(pid, group, mm, files, fs.clone(), Default::default());
    task::syscalls::register_init(&init);
    // `ruml oci`: the container's cwd, user, rlimits, mounts (no-op otherwise).
    crate::container::apply(&init, &fs)?;
    let mut regs = None;
    let candidates: Vec<&Vec<u8>> = std::iter::once(&cfg.init)
        .chain(cfg.init_fallbacks.iter())
        .collect();
    for (i, want) in candidates.iter().enumerate() {
        crate::log::info(&format!(
            "Run {} as init process",
            String::from_utf8_lossy(want)
        ));
        let path = find_init(&init, want);
        let mut argv = cfg.argv.clone();
        if i > 0 {
            // A fallback is run under its own name, with init's arguments.
            if let Some(a0) = argv.first_mut() {
                *a0 = (*want).clone();
            }
        }
        match crate::exec::exec(&init, &path, argv, cfg.envp.clone()) {
            Ok(r) => {
                regs = Some(r);
                break;
            }
            Err(e) if i + 1 < candidates.len() => crate::log::info(&format!(
                "Starting init: {} failed ({e}); trying the next",
                String::from_utf8_lossy(want)
            )),
            Err(e) if candidates.len() > 1 => {
                return Err(format!(
                    "no working init found (tried {}; last error: {e}); pass init= \
                     (see docs/boot.md)",
                    candidates
                        .iter()
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            Err(e) => {
                return Err(format!(
                    "cannot execute init {}: {e}",
                    String::from_utf8_lossy(want)
                ))
            }
        }
    }
    let Some(regs) = regs else {
        return Err("no init to run".into());
    };
    let t = init.clone();
    std::thread::Builder::new()
        .name("init".into())
        .spawn(move || task::run(t, regs, None, task::Start::NewProcess))
        .map_err(|e| format!("cannot start init's thread: {e}"))?;
    let mut halt = exit::HALT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(st) = *halt {
            crate::log::info(&format!("init exited: {st:?}; halting"));
            // Nothing written to a disk is lost at halt.
            crate::block::shutdown_all();
            // Nor what the consoles still hold for their host ptys.
            crate::fs::vcons::flush_all();
            return Ok(match st {
                ExitStatus::Exited(c) => c & 0xff,
                ExitStatus::Killed { signo, .. } => 128 + signo,
            });
        }
        halt = exit::HALTED.wait(halt).unwrap_or_else(|p| p.into_inner());
    }
}

/// A bare command name (a disk root, where ruml could not look in the
/// host's directories) is looked up in the usual PATH inside the guest.
fn find_init(init: &Arc<Task>, want: &[u8]) -> Vec<u8> {
    if want.contains(&b'/') {
        return want.to_vec();
    }
    let fsctx = init.fs();
    let w = crate::fs::namei::Walker {
        ns: &fsctx.ns,
        root: fsctx.root(),
        caller: crate::fs::vfs::Caller::kernel(),
    };
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| [d.as_bytes(), b"/", want].concat())
    .find(|p| w.walk(&fsctx.root(), p, true).is_ok())
    .unwrap_or_else(|| want.to_vec())
}
