//! From config.json to what ruml boots: the kernel's [`BootConfig`] and
//! the container setup ([`ContainerSetup`]) applied to init. Every check
//! a bundle can fail is made here, before anything is created on disk.

use std::path::{Path, PathBuf};

use ruml_kernel::boot::BootConfig;
use ruml_kernel::container::{ContainerSetup, ExtraMount};
use ruml_kernel::fs::RootMode;

use super::spec::{rlimit_resource, Spec};

/// fs.nr_open's default: the most RLIMIT_NOFILE Linux accepts.
const NR_OPEN: u64 = 1_048_576;

/// What `create` prepares.
pub struct Plan {
    pub boot: BootConfig,
    pub setup: ContainerSetup,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub net: Net,
    /// A UTS namespace given by path: joined by the instance, and its
    /// hostname becomes the guest's.
    pub uts_join: Option<String>,
}

/// The guest's network, from `linux.namespaces`' network entry (the
/// guest's sockets are always ruml's own; this decides what its `eth0`
/// reaches):
#[derive(Debug, PartialEq)]
pub enum Net {
    /// A new, empty network namespace: only `lo` (`eth0=none`).
    LoopbackOnly,
    /// No network namespace (the host's network, as runc would share
    /// it): `eth0=user`, its flows leaving from ruml's own namespace.
    /// `hostfwd` as the `ruml.hostfwd` annotation asks.
    User {
        /// Joined first: the network namespace at this path (a pod's,
        /// made by podman's or the CRI's network set-up), so the flows and
        /// forwarded ports live there.
        join: Option<String>,
        hostfwd: Vec<ruml_kernel::net::inet::HostFwd>,
    },
}

/// Reads and checks `BUNDLE/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec, String> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("bad {}: {e}", path.display()))
}

fn absolute_guest_path(what: &str, p: &str) -> Result<Vec<u8>, String> {
    if !p.starts_with('/') {
        return Err(format!("{what} {p:?} must be an absolute path"));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(format!("{what} {p:?} must not contain '..'"));
    }
    Ok(p.as_bytes().to_vec())
}

/// Finds args[0] as execvp would, in the container's PATH inside `root`.
pub fn resolve_cmd(root: &Path, cmd: &str, env: &[String]) -> String {
    if cmd.contains('/') {
        return cmd.to_string();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let cand = format!("{}/{cmd}", dir.trim_end_matches('/'));
        let host = root.join(&cand[1..]);
        // A symlink (busybox applets) counts: the guest resolves it.
        if host.symlink_metadata().is_ok() {
            return cand;
        }
    }
    cmd.to_string()
}

/// `process.rlimits` checked: (resource, soft, hard) for setrlimit.
pub fn rlimits(list: &[super::spec::Rlimit]) -> Result<Vec<(u32, u64, u64)>, String> {
    let mut out = Vec::new();
    for (k, r) in list.iter().enumerate() {
        let res = rlimit_resource(&r.kind)
            .ok_or_else(|| format!("process.rlimits: unknown type {:?}", r.kind))?;
        // runtime-spec: "For each type, duplicate entries MUST NOT be present".
        if list[..k].iter().any(|o| o.kind == r.kind) {
            return Err(format!("process.rlimits: {} is given twice", r.kind));
        }
        if r.soft > r.hard {
            return Err(format!(
                "process.rlimits: {} soft limit {} is above its hard limit {}",
                r.kind, r.soft, r.hard
            ));
        }
        if res == 7 && r.hard > NR_OPEN {
            return Err(format!(
                "process.rlimits: RLIMIT_NOFILE {} is above the most a process may open ({NR_OPEN})",
                r.hard
            ));
        }
        out.push((res, r.soft, r.hard));
    }
    Ok(out)
}

/// Builds the plan for `spec` of the bundle at `bundle` (absolute).
pub fn plan(spec: &Spec, bundle: &Path, debug: bool) -> Result<Plan, String> {
    if !spec.oci_version.starts_with("1.") {
        return Err(format!(
            "ociVersion {:?} is not supported: ruml implements runtime-spec 1.x",
            spec.oci_version
        ));
    }
    let process = spec
        .process
        .as_ref()
        .ok_or("config.json has no \"process\": nothing to run")?;
    if process.args.is_empty() {
        return Err("process.args is empty: nothing to run".into());
    }
    let root_spec = spec.root.as_ref().ok_or("config.json has no \"root\"")?;
    let root = {
        let p = Path::new(&root_spec.path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            bundle.join(p)
        }
    };
    if !root.is_dir() {
        return Err(format!("root.path {} is not a directory", root.display()));
    }
    let cwd = absolute_guest_path("process.cwd", &process.cwd)?;
    let mut setup = ContainerSetup {
        cwd: Some(cwd),
        user: Some((
            process.user.uid,
            process.user.gid,
            process.user.additional_gids.clone(),
        )),
        no_new_privs: process.no_new_privileges,
        caps: process
            .capabilities
            .as_ref()
            .map(|c| c.sets())
            .transpose()?,
        hostname: spec.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
        ..Default::default()
    };
    if let Some(h) = &spec.hostname {
        if h.len() > 64 {
            return Err(format!("hostname {h:?} is longer than 64 bytes"));
        }
    }
    setup.rlimits = rlimits(&process.rlimits)?;
    for m in &spec.mounts {
        let dest = absolute_guest_path("mount destination", &m.destination)?;
        let bind = m.kind.as_deref() == Some("bind")
            || m.options.iter().any(|o| o == "bind" || o == "rbind");
        let ro = m.options.iter().any(|o| o == "ro");
        let kind = m.kind.as_deref().unwrap_or("none");
        let at = m.destination.trim_end_matches('/');
        if bind {
            let src = m
                .source
                .as_deref()
                .ok_or_else(|| format!("bind mount on {at} has no source"))?;
            let src = if Path::new(src).is_absolute() {
                PathBuf::from(src)
            } else {
                bundle.join(src)
            };
            let md = std::fs::metadata(&src)
                .map_err(|e| format!("bind mount on {at}: source {}: {e}", src.display()))?;
            if md.is_dir() {
                setup.mounts.push(ExtraMount::HostDir {
                    host: src,
                    target: dest,
                    read_only: ro,
                });
            } else if md.is_file() {
                setup.mounts.push(ExtraMount::HostFile {
                    host: src,
                    target: dest,
                    read_only: ro,
                });
            } else {
                return Err(format!(
                    "bind mount on {at}: source {} is not a directory or regular file",
                    src.display()
                ));
            }
            continue;
        }
        match (kind, at) {
            // ruml's own boot-time filesystems are these.
            ("proc", "/proc") | ("sysfs", "/sys") | ("devpts", "/dev/pts") => {}
            // /dev is ruml's devtmpfs (device nodes, /dev/pts, /dev/shm).
            ("tmpfs", "/dev") => {}
            ("tmpfs", _) => setup.mounts.push(ExtraMount::Tmpfs {
                target: dest,
                read_only: ro,
            }),
            // ruml's /dev (its devtmpfs) has no mqueue directory and makes
            // none; mq_open needs no mount, so the usual one is left out.
            ("mqueue", "/dev/mqueue") => {
                if debug {
                    eprintln!("ruml oci: mqueue on /dev/mqueue: ruml's /dev has no such directory, left out");
                }
            }
            ("mqueue" | "proc" | "sysfs" | "devpts", _) => setup.mounts.push(ExtraMount::Special {
                fstype: kind.to_string(),
                target: dest,
                read_only: ro,
            }),
            // ruml has no cgroup filesystem: the directory stays as the root
            // has it (runtime-spec tools always ask for one).
            ("cgroup" | "cgroup2", "/sys/fs/cgroup") => {
                if debug {
                    eprintln!("ruml oci: {kind} on {at}: not available in ruml, left out");
                }
            }
            _ => {
                return Err(format!(
                    "mount of type {kind:?} on {at} is not supported: ruml supports bind mounts of \
                     host directories and files, tmpfs, proc, sysfs, devpts, mqueue, and cgroup at /sys/fs/cgroup"
                ))
            }
        }
    }
    if let Some(linux) = &spec.linux {
        for m in &linux.masked_paths {
            let target = absolute_guest_path("linux.maskedPaths entry", m)?;
            setup.mounts.push(ExtraMount::Mask { target });
        }
        for r in &linux.readonly_paths {
            let target = absolute_guest_path("linux.readonlyPaths entry", r)?;
            setup.mounts.push(ExtraMount::ReadOnly { target });
        }
    }
    let h = &spec.hooks;
    for (kind, hooks) in [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ] {
        for hook in hooks {
            // runtime-spec: path MUST be absolute; timeout, if set, MUST
            // be greater than zero.
            if !hook.path.starts_with('/') {
                return Err(format!(
                    "hooks.{kind}: path {:?} must be absolute",
                    hook.path
                ));
            }
            if hook.timeout.is_some_and(|t| t <= 0) {
                return Err(format!(
                    "hooks.{kind}: {}: timeout must be greater than zero",
                    hook.path
                ));
            }
        }
    }
    if !spec.hooks.create_container.is_empty() || !spec.hooks.start_container.is_empty() {
        return Err(
            "createContainer and startContainer hooks (run inside the container) are not supported"
                .into(),
        );
    }
    // ruml is its own kernel: the guest always has its own pid, mount,
    // uts, ipc and user views. Joining another namespace by path cannot be
    // done; it is refused unless the annotation
    // ruml.ignore-namespace-paths=true says isolation is acceptable (a
    // Kubernetes pod's containers join the pod sandbox's namespaces).
    let ignore_ns_paths = spec
        .annotations
        .get("ruml.ignore-namespace-paths")
        .is_some_and(|v| v == "true");
    let mut net = Net::User {
        join: None,
        hostfwd: Vec::new(),
    };
    let mut uts_join = None;
    for ns in spec.linux.iter().flat_map(|l| &l.namespaces) {
        if let ("uts", Some(p)) = (ns.kind.as_str(), &ns.path) {
            if !p.starts_with('/') {
                return Err(format!(
                    "linux.namespaces: the uts namespace path {p} is not absolute"
                ));
            }
            if spec.hostname.is_some() {
                return Err(
                    "hostname cannot be set when joining a uts namespace by path (as runc)".into(),
                );
            }
            uts_join = Some(p.clone());
            continue;
        }
        if ns.kind == "network" {
            net = match &ns.path {
                None => Net::LoopbackOnly,
                Some(p) => {
                    if !p.starts_with('/') {
                        return Err(format!(
                            "linux.namespaces: the network namespace path {p} is not absolute"
                        ));
                    }
                    Net::User {
                        join: Some(p.clone()),
                        hostfwd: Vec::new(),
                    }
                }
            };
            continue;
        }
        match &ns.path {
            Some(p) if !ignore_ns_paths => {
                return Err(format!(
                    "linux.namespaces: joining the {} namespace at {p} is not supported (each ruml \
                     container has its own kernel; the annotation ruml.ignore-namespace-paths=true \
                     runs it isolated instead)",
                    ns.kind
                ))
            }
            Some(p) if debug => eprintln!(
                "ruml oci: not joining the {} namespace at {p}: the container is isolated",
                ns.kind
            ),
            _ => {}
        }
    }
    let mut mem = 1u64 << 30;
    let mut quiet = !debug;
    let mut mode = None;
    for (k, v) in &spec.annotations {
        let Some(param) = k.strip_prefix("ruml.") else {
            continue;
        };
        match param {
            "mem" => {
                mem = crate::parse_size(v)
                    .filter(|&m| m >= 16 << 20)
                    .ok_or_else(|| format!("annotation {k}={v}: give a size of at least 16M"))?
            }
            "mode" if v == "ptrace" => mode = Some(ruml_host::Mode::Ptrace),
            "mode" if v == "seccomp" => mode = Some(ruml_host::Mode::Seccomp),
            "mode" => {
                return Err(format!(
                    "annotation {k}={v}: not a backend (ptrace or seccomp)"
                ))
            }
            "quiet" => quiet = v != "false",
            "ignore-namespace-paths" if v == "true" || v == "false" => {}
            "hostfwd" => {
                let Net::User { hostfwd, .. } = &mut net else {
                    return Err(format!(
                        "annotation {k}={v}: the container has no network (a new, empty network \
                         namespace); port forwarding needs the host's or a joined one"
                    ));
                };
                for f in v.split(',') {
                    hostfwd.push(crate::parse_hostfwd(f).ok_or_else(|| {
                        format!("annotation {k}: bad entry {f}: give tcp:[HOSTADDR:]HOSTPORT:GUESTPORT or udp:...")
                    })?);
                }
            }
            _ => {
                return Err(format!(
                "annotation {k}={v}: unknown ruml parameter (known: ruml.mem, ruml.mode, ruml.quiet, \
                 ruml.hostfwd, ruml.ignore-namespace-paths=true|false)"
            ))
            }
        }
    }
    let init = resolve_cmd(&root, &process.args[0], &process.env);
    let boot = BootConfig {
        mem,
        root,
        init: init.into_bytes(),
        argv: process.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: process.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        quiet,
        root_mode: if root_spec.readonly {
            RootMode::HostFs
        } else {
            RootMode::Overlay
        },
        host_mounts: Vec::new(),
        ubd: Vec::new(),
        // process.cwd is applied by the container setup.
        cwd: None,
        mode,
        init_fallbacks: Vec::new(),
        cmdline: String::new(),
    };
    Ok(Plan {
        boot,
        setup,
        terminal: process.terminal,
        console_size: process.console_size.map(|c| (c.height, c.width)),
        net,
        uts_join,
    })
}
