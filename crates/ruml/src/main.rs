//! `ruml [PARAMS] [-- CMD ARGS...]`: boots a ruml instance. PARAMS are
//! UML-style kernel parameters; CMD, if given, is init.
//! `ruml oci ...` (or this binary run under the name `ruml-oci`) is the
//! OCI runtime: see [`oci`] and docs/oci.md.

mod ctl;
mod oci;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use ruml_kernel::boot::{boot, BootConfig};
use ruml_kernel::fs::RootMode;

const USAGE: &str = "usage: ruml [PARAMS] [-- CMD ARGS...]

PARAMS (UML-style kernel parameters):
  mem=SIZE            guest RAM, e.g. 512M, 2G (default 1G)
  root=DIR            host directory used as the read-only root (default /)
  hostfs=DIR          the same, UML's spelling
  root=/dev/ubdX      boot from an ext2/ext3/ext4 disk (ubdN=...); read-write
                      unless ro is given (rootfstype=ext2|ext3|ext4 accepted,
                      the type is probed)
  rootfstype=hostfs   the root is the host directory itself, read-only
                      (default: an overlay, the host directory read-only
                      under a private in-memory upper layer)
  mount=HOST:GUEST    mount host directory HOST read-write at GUEST
  ubdN=FILE           disk N (0-15; /dev/ubda, ubdb, ...) is host file FILE
  ubdN=COW,BACKING    disk N is COW file COW (UML's format, created if
                      missing) over the read-only BACKING file
  ubdNr=..., ubdNs=...  read-only disk; synchronous writes (O_SYNC)
  init=PATH           init program inside the guest (default: /bin/sh on the
                      default root; with root=, Linux's /sbin/init,
                      /etc/init, /bin/init, /bin/sh)
  conN=IN[,OUT]       console N (0: /dev/console and tty0; 1-15: /dev/ttyN):
                      fd:N (a host descriptor), null, or pts (a new host
                      pty, its name logged); default con0=fd:0,fd:1, the
                      others absent
  con=IN[,OUT]        every console not given by conN=
  umid=NAME           the instance's name (default: random, logged)
  uml_dir=DIR         where instance directories live (default ~/.uml):
                      DIR/UMID/pid and DIR/UMID/mconsole (management socket)
  cwd=DIR             init's working directory in the guest (default: with
                      -- CMD, the current directory if the root holds it;
                      else /)
  mode=ptrace|seccomp execution backend (default: seccomp if the host
                      supports it, else ptrace)
  patch=on|off        (seccomp) rewrite guest `mov $nr,%eax; syscall` sites
                      to enter the kernel through the stub's signal-less
                      entry instead of a host signal (default: on)
  eth0=user|none      user (default): eth0 10.0.2.15/24 whose outbound TCP
                      and UDP go through host sockets made by ruml
                      (10.0.2.2 is the host's loopback); none: only lo
  eth0=switch,PATH    eth0 is a port on the switch whose control socket is
                      PATH (`ruml switch PATH` or Debian's `uml_switch
                      -unix PATH`); give it addresses with `ip addr add`
  mac=aa:bb:cc:dd:ee:ff  (with eth0=switch) eth0's MAC (default: random,
                      locally administered; the boot log shows it)
  hostfwd=tcp|udp:[ADDR:]HOSTPORT:GUESTPORT
                      (with eth0=user) forward host ADDR:HOSTPORT (ADDR
                      defaults to 127.0.0.1) to the guest's port GUESTPORT
  dns=IP[:PORT]       (with eth0=user) where queries to 10.0.2.3:53 go
                      (default: the host's first nameserver)
  quiet               no boot log
  KEY=VALUE, WORD     other parameters go to init, as on Linux: KEY=VALUE
                      into its environment, WORD into its arguments (WORD
                      only without -- CMD)
With -- CMD ARGS, CMD runs as init (pid 1) with ruml's environment, and
ruml exits with its status (128+N if a signal N killed it).

ruml switch [-hub] PATH: a learning Ethernet switch on control socket PATH
(UML's daemon transport, as uml_switch).

ruml ctl [uml_dir=DIR] UMID|SOCKET COMMAND...   the management console
ruml ctl [uml_dir=DIR] list                     running instances

ruml oci ... (or ruml run as ruml-oci): the OCI runtime, see `ruml oci --help`.";

/// `tcp:[HOSTADDR:]HOSTPORT:GUESTPORT` (HOSTADDR defaults to 127.0.0.1;
/// an IPv6 one goes in brackets).
fn parse_hostfwd(v: &str) -> Option<ruml_kernel::net::inet::HostFwd> {
    ruml_kernel::net::inet::parse_hostfwd(v)
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => {
            let m = match &s[i..] {
                "K" | "k" | "KB" | "KiB" => 1u64 << 10,
                "M" | "m" | "MB" | "MiB" => 1 << 20,
                "G" | "g" | "GB" | "GiB" => 1 << 30,
                _ => return None,
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Finds CMD as a shell would: a name without '/' is looked up in PATH
/// inside the guest root.
fn resolve_cmd(root: &Path, cmd: &OsString) -> Vec<u8> {
    let b = cmd.as_bytes();
    if b.contains(&b'/') {
        return b.to_vec();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in path.as_bytes().split(|&c| c == b':') {
        if !dir.starts_with(b"/") {
            continue;
        }
        let mut cand = dir.to_vec();
        cand.push(b'/');
        cand.extend_from_slice(b);
        let host = root.join(Path::new(std::ffi::OsStr::from_bytes(&cand[1..])));
        if host.is_file() {
            return cand;
        }
    }
    b.to_vec()
}

/// What `eth0=` gives the instance (docs/networking.md).
enum Eth0 {
    /// Only `lo`.
    None,
    /// User-mode NAT through host sockets (the default).
    User,
    /// A port on the switch at this control socket.
    Switch(PathBuf),
}

fn main() {
    ruml_host::stats::init();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // The OCI runtime: `ruml oci ARGS`, or `ruml-oci ARGS` (a link to ruml).
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n.as_bytes().ends_with(b"ruml-oci"))
    {
        std::process::exit(oci::main(args));
    }
    if args.first().is_some_and(|a| a == "oci") {
        std::process::exit(oci::main(args[1..].to_vec()));
    }
    if args.first().is_some_and(|a| a == "switch") {
        std::process::exit(switch_main(&args[1..]));
    }
    if args.first().is_some_and(|a| a == "ctl") {
        std::process::exit(ctl::main(&args[1..]));
    }
    let split = args.iter().position(|a| a == "--");
    let (params, cmd) = match split {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let mut mem = 1u64 << 30;
    let mut root = PathBuf::from("/");
    let mut init: Option<Vec<u8>> = None;
    let mut quiet = false;
    // eth0's backend: the last eth0= wins; user when none is given.
    let mut eth0 = Eth0::User;
    let mut mac: Option<[u8; 6]> = None;
    let mut root_mode = RootMode::Overlay;
    let mut disk_ro = false;
    let mut cwd: Option<Vec<u8>> = None;
    let mut mode = None;
    let mut host_mounts: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut ubd: Vec<ruml_kernel::block::ubd::UbdSpec> = Vec::new();
    let mut hostfwds: Vec<String> = Vec::new();
    let mut root_given = false;
    let mut umid: Option<String> = None;
    let mut uml_dir: Option<PathBuf> = None;
    // con= (every console not named) and conN=.
    type ChanSpec = (ruml_host::conchan::Chan, ruml_host::conchan::Chan);
    let mut con_default: Option<ChanSpec> = None;
    let mut consoles: Vec<(u32, ChanSpec)> = Vec::new();
    // Parameters the kernel does not know go to init, as on Linux.
    let mut init_env: Vec<Vec<u8>> = Vec::new();
    let mut init_args: Vec<Vec<u8>> = Vec::new();
    for p in params {
        let s = p.to_string_lossy();
        let (k, v) = s
            .split_once('=')
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((&s, None));
        if let Some(v) = v {
            match ruml_kernel::block::ubd::UbdSpec::parse(k, v) {
                Ok(Some(spec)) => {
                    if ubd.iter().any(|u| u.index == spec.index) {
                        die(&format!("{k}: ubd{} given twice", spec.index));
                    }
                    ubd.push(spec);
                    continue;
                }
                Ok(None) => {}
                Err(e) => die(&e),
            }
        }
        match (k, v) {
            ("mem", Some(v)) => match parse_size(v) {
                Some(m) if m >= 16 << 20 => mem = m,
                _ => die(&format!(
                    "bad mem={v}: give a size of at least 16M, like mem=512M"
                )),
            },
            ("root", Some(v)) if v.starts_with("/dev/") => {
                root_given = true;
                root = PathBuf::from(v);
                root_mode = RootMode::Disk { read_only: false };
            }
            ("root" | "hostfs", Some(v)) => {
                root_given = true;
                root = PathBuf::from(v)
            }
            ("umid", Some(v)) if ruml_host::mconsole::valid_umid(v) => umid = Some(v.to_string()),
            ("umid", Some(v)) => die(&format!(
                "bad umid={v}: use letters, digits and ._-+@: (at most 64)"
            )),
            ("uml_dir", Some(v)) if !v.is_empty() => uml_dir = Some(PathBuf::from(v)),
            (_, Some(v)) if console_index(k).is_some() => {
                let Some(c) = ruml_host::conchan::parse(v) else {
                    die(&format!(
                        "bad {k}={v}: give fd:N[,fd:M], null or pts (see docs/boot.md)"
                    ))
                };
                match console_index(k) {
                    Some(None) => con_default = Some(c),
                    Some(Some(n)) => {
                        consoles.retain(|(i, _)| *i != n);
                        consoles.push((n, c));
                    }
                    None => {}
                }
            }
            ("rootfstype", Some("ext2" | "ext3" | "ext4")) => {}
            ("ro", None) => disk_ro = true,
            ("rw", None) => disk_ro = false,
            ("rootfstype", Some("hostfs")) => root_mode = RootMode::HostFs,
            ("rootfstype", Some("overlay")) => root_mode = RootMode::Overlay,
            ("rootfstype", Some(v)) => die(&format!(
                "rootfstype={v} is not supported: hostfs or overlay"
            )),
            ("mount", Some(v)) => match v.split_once(':') {
                Some((h, g)) if !h.is_empty() && g.starts_with('/') => {
                    let h = PathBuf::from(h);
                    if !h.is_dir() {
                        die(&format!("mount={v}: {} is not a directory", h.display()));
                    }
                    host_mounts.push((h, g.as_bytes().to_vec()));
                }
                _ => die(&format!("bad mount={v}: give HOSTDIR:/GUESTDIR")),
            },
            ("init", Some(v)) => init = Some(v.as_bytes().to_vec()),
            ("cwd", Some(v)) if v.starts_with('/') => cwd = Some(v.as_bytes().to_vec()),
            ("cwd", Some(v)) => die(&format!("bad cwd={v}: give an absolute guest path")),
            ("mode", Some("ptrace")) => mode = Some(ruml_host::Mode::Ptrace),
            ("mode", Some("seccomp")) => mode = Some(ruml_host::Mode::Seccomp),
            ("eth0", Some("none")) => eth0 = Eth0::None,
            ("eth0", Some("user")) => eth0 = Eth0::User,
            ("eth0", Some(v)) if v.starts_with("switch,") => {
                eth0 = Eth0::Switch(PathBuf::from(&v[7..]))
            }
            ("mac", Some(v)) => match ruml_kernel::net::eth::parse_mac(v) {
                Some(m) => mac = Some(m),
                None => die(&format!("bad mac={v}: give a unicast aa:bb:cc:dd:ee:ff")),
            },
            ("hostfwd", Some(v)) => hostfwds.push(v.to_string()),
            ("dns", Some(v)) => match v
                .parse::<std::net::SocketAddr>()
                .ok()
                .or_else(|| v.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
            {
                Some(a) => ruml_kernel::net::iface::set_nat_dns(a),
                None => die(&format!("bad dns={v}: give IP or IP:PORT")),
            },
            ("eth0", Some(v)) => die(&format!(
                "eth0={v} is not available: none, user or switch,SOCKETPATH"
            )),
            ("mode", Some(v)) => die(&format!("mode={v} is not a backend: ptrace or seccomp")),
            ("patch", Some("on")) => ruml_host::patch::set_enabled(true),
            ("patch", Some("off")) => ruml_host::patch::set_enabled(false),
            ("patch", Some(v)) => die(&format!("patch={v}: give on or off")),
            ("quiet", None) => quiet = true,
            ("-h" | "--help" | "help", None) => {
                println!("{USAGE}");
                return;
            }
            (_, Some(_)) if !k.is_empty() && !k.starts_with('-') => {
                init_env.push(p.as_bytes().to_vec())
            }
            (_, None) if !cmd.is_empty() || s.starts_with('-') => die(&format!(
                "unknown parameter '{s}' (a word goes to init's arguments only without -- CMD)\n{USAGE}"
            )),
            _ => init_args.push(p.as_bytes().to_vec()),
        }
    }
    match eth0 {
        Eth0::Switch(path) => ruml_kernel::net::eth::configure(path, mac),
        _ if mac.is_some() => die("mac= needs eth0=switch,SOCKETPATH"),
        Eth0::User => ruml_kernel::net::iface::enable_user_nat(),
        Eth0::None => {}
    }
    let disk_root = matches!(root_mode, RootMode::Disk { .. });
    if disk_root {
        root_mode = RootMode::Disk { read_only: disk_ro };
    } else if !root.is_dir() {
        die(&format!("root {} is not a directory", root.display()));
    }
    for v in &hostfwds {
        let Some(fwd) = parse_hostfwd(v) else {
            die(&format!(
                "bad hostfwd={v}: give tcp:[HOSTADDR:]HOSTPORT:GUESTPORT or udp:..."
            ))
        };
        if !ruml_kernel::net::iface::nat_enabled() {
            die("hostfwd= needs eth0=user");
        }
        if let Err(e) = ruml_kernel::net::inet::add_hostfwd(&fwd) {
            die(&e);
        }
    }
    let (init_path, argv, envp) = if !cmd.is_empty() {
        let path = if disk_root {
            // The kernel looks a bare name up inside the guest.
            cmd[0].as_bytes().to_vec()
        } else {
            resolve_cmd(&root, &cmd[0])
        };
        let argv: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut envp: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| {
                let mut e = k.into_vec();
                e.push(b'=');
                e.extend(v.into_vec());
                e
            })
            .collect();
        envp.extend(init_env.iter().cloned());
        (path, argv, envp)
    } else {
        // Linux's order when no init= is given. On the embedded default
        // root (the host's own /), /sbin/init is the host's own init
        // system; plain `ruml` gives a shell there instead.
        let path = init.clone().unwrap_or_else(|| {
            if root_given {
                b"/sbin/init".to_vec()
            } else {
                b"/bin/sh".to_vec()
            }
        });
        let mut envp = vec![
            b"HOME=/".to_vec(),
            b"TERM=linux".to_vec(),
            b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec(),
        ];
        envp.extend(init_env.iter().cloned());
        let mut argv = vec![path.clone()];
        argv.extend(init_args.iter().cloned());
        (path, argv, envp)
    };
    let init_fallbacks: Vec<Vec<u8>> = if cmd.is_empty() && init.is_none() && root_given {
        ["/etc/init", "/bin/init", "/bin/sh"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect()
    } else {
        Vec::new()
    };
    let mut cmdline: Vec<String> = params
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if !cmd.is_empty() {
        cmdline.push("--".into());
        cmdline.extend(cmd.iter().map(|a| a.to_string_lossy().into_owned()));
    }
    let cmdline = cmdline.join(" ");
    // `ruml -- CMD` starts where the user is, as `runsc do` and proot do,
    // when that directory is part of the guest's root.
    if cwd.is_none() && !cmd.is_empty() && !disk_root {
        cwd = std::env::current_dir()
            .ok()
            .and_then(|d| guest_path_of(&root, &d));
    }
    let cfg = BootConfig {
        cwd,
        mem,
        root,
        init: init.unwrap_or(init_path.clone()).to_vec(),
        argv,
        envp,
        quiet,
        root_mode,
        host_mounts,
        ubd,
        mode,
        init_fallbacks,
        cmdline,
    };
    let cfg = BootConfig {
        init: if cmd.is_empty() { cfg.init } else { init_path },
        ..cfg
    };
    ruml_kernel::log::start(quiet);
    let instance = ctl::start_instance(uml_dir, umid);
    let con_spec = |n: u32| {
        consoles
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, c)| *c)
            .or(con_default)
    };
    for n in 1..ruml_kernel::fs::vcons::MAX_CONSOLES {
        if let Some((i, o)) = con_spec(n) {
            ruml_kernel::fs::vcons::configure(n, i, o);
        }
    }
    let attached = match con_spec(0) {
        Some((i @ ruml_host::conchan::Chan::Pts, o)) => {
            ruml_kernel::fs::vcons::configure(0, i, o);
            Ok(())
        }
        Some((i, o)) => {
            // Recorded for the management console's `config con0`.
            ruml_kernel::fs::vcons::configure(0, i, o);
            ruml_host::conchan::attach(i, o)
        }
        None => {
            use ruml_host::conchan::Chan;
            ruml_kernel::fs::vcons::configure(0, Chan::Fd(0), Chan::Fd(1));
            Ok(())
        }
    };
    if let Err(e) = attached {
        instance.remove();
        die(&e);
    }
    let result = boot(cfg);
    instance.remove();
    ruml_host::stats::report();
    match result {
        Ok(_)
            if ruml_kernel::task::reboot::restart_requested()
                && !ruml_kernel::power::host_shutdown_requested() =>
        {
            restart(instance.umid())
        }
        Ok(code) => std::process::exit(code),
        Err(e) => die(&e),
    }
}

/// `con` (Some(None): every console not named) or `conN` for a console
/// ruml has (Some(Some(N))).
fn console_index(k: &str) -> Option<Option<u32>> {
    let rest = k.strip_prefix("con")?;
    if rest.is_empty() {
        return Some(None);
    }
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    match rest.parse::<u32>() {
        Ok(n) if n < ruml_kernel::fs::vcons::MAX_CONSOLES => Some(Some(n)),
        _ => None,
    }
}

/// The guest path of host directory `dir` under a root of host directory
/// `root`, if it lies beneath it.
fn guest_path_of(root: &Path, dir: &Path) -> Option<Vec<u8>> {
    let root = root.canonicalize().ok()?;
    let rest = dir.strip_prefix(&root).ok()?;
    let mut g = b"/".to_vec();
    g.extend_from_slice(rest.as_os_str().as_bytes());
    Some(g)
}

/// A guest asked for a reboot: boot afresh in this same host process, with
/// the same parameters (exec leaves no guest thread or stub behind: the
/// stubs die with the threads that traced them).
/// A random umid is kept: the rebooted instance answers to the same name.
fn restart(umid: Option<&str>) -> ! {
    use std::os::unix::process::CommandExt;
    ruml_host::console::restore();
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    if let Some(u) = umid {
        if !args[..split]
            .iter()
            .any(|a| a.as_bytes().starts_with(b"umid="))
        {
            args.insert(0, format!("umid={u}").into());
        }
    }
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(std::env::args_os().next().unwrap_or_else(|| "ruml".into()))
        .args(args)
        .exec();
    die(&format!("cannot restart: {err}"))
}

/// `ruml switch [-hub] PATH`: a learning switch (or hub) on control
/// socket PATH, until killed.
fn switch_main(args: &[OsString]) -> i32 {
    let mut hub = false;
    let mut path = None;
    for a in args {
        match a.to_str() {
            Some("-hub" | "--hub") => hub = true,
            Some("-unix" | "--unix") => {}
            Some("-h" | "--help") => {
                println!("usage: ruml switch [-hub] SOCKETPATH");
                return 0;
            }
            _ if path.is_none() => path = Some(PathBuf::from(a)),
            _ => {
                eprintln!("usage: ruml switch [-hub] SOCKETPATH");
                return 2;
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: ruml switch [-hub] SOCKETPATH");
        return 2;
    };
    eprintln!(
        "ruml switch: {} on {}",
        if hub { "hub" } else { "learning switch" },
        path.display()
    );
    match ruml_host::switch::run_switch(&path, hub, &|l| eprintln!("ruml switch: {l}")) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ruml switch: {}: {e}", path.display());
            1
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("ruml: {msg}");
    std::process::exit(1);
}
