//! `ruml oci` (also reached as `ruml-oci`): ruml as an OCI runtime, with
//! the command line runc, crun and runsc share, so that podman, conmon and
//! containerd's runc shim can run containers in ruml.
//!
//! One container is one ruml instance: a host process (the pid `state`
//! reports) that boots the ruml kernel on the bundle's root and runs
//! `process.args` as init. Its state lives in `ROOT/ID/`:
//! - `state.json`: id, pid, the pid's start time, bundle, annotations;
//! - `exec.fifo`: present from `create` to `start`; the instance blocks
//!   opening it for writing until `start` opens it for reading, so the
//!   container process is prepared but does not run before `start`;
//! - `ctl`: a fifo the instance reads requests from (`kill`, `pause`,
//!   `resume`);
//! - `paused`: present while the guest is frozen;
//! - `exec.sock`: where `exec` hands the instance a process (see exec.rs);
//! - `exit`: init's exit status, written by the instance as it ends;
//! - `config.json`: the bundle's configuration (for poststop hooks).

mod exec;
mod plan;
mod spec;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spec::{Hook, State};

const OCI_VERSION: &str = "1.2.0";

const USAGE: &str = "usage: ruml oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ID  (or: ruml-oci ...)

GLOBAL OPTIONS:
  --root DIR          state directory (default /run/ruml-oci)
  --log FILE          also write errors to FILE
  --log-format F      text (default) or json
  --systemd-cgroup    accepted; ruml uses no host cgroups
  --debug             ruml's boot log goes to the container's stderr

COMMANDS:
  create [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] ID
  run [create's options] [--detach] [--keep] ID
  start ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  list [--format table|json] [--quiet]
  ps [--format table|json] ID
  features
  exec [--process F | [--cwd D] [--env K=V]... [--user U[:G]] ID ARGS...]
       [--tty --console-socket S] [--detach] [--pid-file F] [--preserve-fds N]
  pause ID, resume ID";

/// Global options.
struct Ctx {
    root: PathBuf,
    log: Option<PathBuf>,
    json_log: bool,
    debug: bool,
}

impl Ctx {
    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Reports `msg` on stderr and in the log file.
    fn error(&self, msg: &str) {
        eprintln!("ruml oci: {msg}");
        if let Some(log) = &self.log {
            let line = if self.json_log {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                serde_json::json!({"level": "error", "msg": msg, "time": rfc3339(t)}).to_string()
            } else {
                format!("ruml oci: {msg}")
            };
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

/// Runs `ruml oci ARGS` (ARGS without "oci"); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut ctx = Ctx {
        root: PathBuf::from("/run/ruml-oci"),
        log: None,
        json_log: false,
        debug: false,
    };
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        let (k, inline) = match args[i].split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (args[i].clone(), None),
        };
        let value = |i: &mut usize| -> Option<String> {
            if inline.is_some() {
                return inline.clone();
            }
            *i += 1;
            args.get(*i).cloned()
        };
        match k.as_str() {
            "--root" => match value(&mut i) {
                Some(v) => ctx.root = PathBuf::from(v),
                None => return usage_error(&ctx, "--root needs a directory"),
            },
            "--log" => ctx.log = value(&mut i).map(PathBuf::from),
            "--log-format" => match value(&mut i).as_deref() {
                Some("json") => ctx.json_log = true,
                Some("text") => ctx.json_log = false,
                other => {
                    return usage_error(
                        &ctx,
                        &format!("--log-format {}: give text or json", other.unwrap_or("")),
                    )
                }
            },
            "--systemd-cgroup" | "--rootless" => {
                if k == "--rootless" && inline.is_none() {
                    // `--rootless true|false|auto` takes a value in runc.
                    if matches!(
                        args.get(i + 1).map(|s| s.as_str()),
                        Some("true" | "false" | "auto")
                    ) {
                        i += 1;
                    }
                }
            }
            "--debug" => ctx.debug = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            "-v" | "--version" => {
                println!(
                    "ruml-oci version {}\nspec: {OCI_VERSION}",
                    env!("CARGO_PKG_VERSION")
                );
                return 0;
            }
            _ => return usage_error(&ctx, &format!("unknown global option {k}")),
        }
        i += 1;
    }
    let Some(cmd) = args.get(i) else {
        return usage_error(&ctx, "no command");
    };
    let rest = &args[i + 1..];
    let r = match cmd.as_str() {
        "create" => create(&ctx, rest),
        "run" => return run_cmd(&ctx, rest),
        "start" => one_id(rest).and_then(|id| start(&ctx, &id)),
        "state" => one_id(rest).and_then(|id| state_cmd(&ctx, &id)),
        "kill" => kill(&ctx, rest),
        "delete" => delete(&ctx, rest),
        "list" => list(&ctx, rest),
        "ps" => ps(&ctx, rest),
        "features" => features(),
        "exec" => return exec_cmd(&ctx, rest),
        "pause" => one_id(rest).and_then(|id| pause(&ctx, &id, true)),
        "resume" => one_id(rest).and_then(|id| pause(&ctx, &id, false)),
        "update" | "checkpoint" | "restore" | "events" => {
            Err(format!("{cmd} is not supported by ruml yet"))
        }
        "help" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => return usage_error(&ctx, &format!("unknown command {cmd}")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            ctx.error(&e);
            1
        }
    }
}

fn usage_error(ctx: &Ctx, msg: &str) -> i32 {
    ctx.error(&format!("{msg}\n{USAGE}"));
    2
}

/// Command options given: (name, value; empty for flags).
type Opts = Vec<(String, String)>;

/// Splits command options (`--x v`, `--x=v`, flags) from positionals.
/// `flags` take no value.
fn parse_opts(
    rest: &[String],
    flags: &[&str],
    valued: &[&str],
) -> Result<(Opts, Vec<String>), String> {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        if a == "--" {
            pos.extend(rest[i + 1..].iter().cloned());
            break;
        }
        if a.starts_with('-') && a.len() > 1 && pos.is_empty() {
            let (k, inline) = match a.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            // `-bundle` (Go flag style) is `--bundle`; `-e` stays short.
            let k = if k.starts_with("--") || k.len() == 2 {
                k
            } else {
                format!("-{k}")
            };
            if flags.contains(&k.as_str()) {
                opts.push((k, inline.unwrap_or_default()));
            } else if valued.contains(&k.as_str()) {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        rest.get(i).cloned().ok_or(format!("{k} needs a value"))?
                    }
                };
                opts.push((k, v));
            } else {
                return Err(format!("unknown option {a}"));
            }
        } else {
            pos.push(a.clone());
        }
        i += 1;
    }
    Ok((opts, pos))
}

fn one_id(rest: &[String]) -> Result<String, String> {
    let (_, pos) = parse_opts(rest, &[], &[])?;
    match pos.as_slice() {
        [id] => check_id(id).map(|_| id.clone()),
        _ => Err("give one container ID".into()),
    }
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 1024
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    {
        return Err(format!(
            "bad container ID {id:?}: letters, digits, . _ - + only"
        ));
    }
    Ok(())
}

/// What `state.json` keeps beyond the runtime-spec state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    state: State,
    /// /proc/PID/stat start time of the instance (guards pid reuse).
    start_time: u64,
    created: String,
}

fn load(ctx: &Ctx, id: &str) -> Result<Saved, String> {
    check_id(id)?;
    let p = ctx.dir(id).join("state.json");
    let text = std::fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("container {id} does not exist"),
        _ => format!("cannot read {}: {e}", p.display()),
    })?;
    serde_json::from_slice(&text).map_err(|e| format!("bad {}: {e}", p.display()))
}

/// The start time and state letter of host process `pid`.
fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    Some((f.get(19)?.parse().ok()?, f.first()?.chars().next()?))
}

/// Whether the instance of `saved` still runs (not a zombie, not a reused pid).
fn alive(saved: &Saved) -> bool {
    let Some(pid) = saved.state.pid else {
        return false;
    };
    matches!(proc_stat(pid), Some((t, st)) if t == saved.start_time && st != 'Z' && st != 'X')
}

/// The current runtime-spec status of a saved container.
fn status(ctx: &Ctx, saved: &Saved) -> &'static str {
    if !alive(saved) {
        "stopped"
    } else if ctx.dir(&saved.state.id).join("exec.fifo").exists() {
        "created"
    } else if ctx.dir(&saved.state.id).join("paused").exists() {
        "paused"
    } else {
        "running"
    }
}

fn current_state(ctx: &Ctx, id: &str) -> Result<(Saved, State), String> {
    let saved = load(ctx, id)?;
    let mut st = saved.state.clone();
    st.status = status(ctx, &saved).into();
    if st.status == "stopped" {
        st.pid = None;
    }
    Ok((saved, st))
}

fn state_cmd(ctx: &Ctx, id: &str) -> Result<(), String> {
    let (_, st) = current_state(ctx, id)?;
    let s = serde_json::to_string_pretty(&st).map_err(|e| e.to_string())?;
    println!("{s}");
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn mkfifo(path: &Path) -> Result<(), String> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(format!(
            "cannot make {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn rfc3339(secs: u64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

const CREATE_FLAGS: &[&str] = &["--no-pivot", "--no-new-keyring"];
const CREATE_VALUED: &[&str] = &[
    "--bundle",
    "-b",
    "--pid-file",
    "--console-socket",
    "--preserve-fds",
];

/// `run` (as runc's): create and start; in the foreground, waits for the
/// container's process (forwarding the caller's signals to it), deletes
/// the container unless `--keep`, and exits with its status; with
/// `--detach`, returns once it started.
fn run_cmd(ctx: &Ctx, rest: &[String]) -> i32 {
    match run(ctx, rest) {
        Ok(code) => code,
        Err(e) => {
            ctx.error(&e);
            1
        }
    }
}

fn run(ctx: &Ctx, rest: &[String]) -> Result<i32, String> {
    let mut flags = CREATE_FLAGS.to_vec();
    flags.extend(["--detach", "-d", "--keep"]);
    let (opts, pos) = parse_opts(rest, &flags, CREATE_VALUED)?;
    let [id] = pos.as_slice() else {
        return Err("run: give one container ID".into());
    };
    let has = |k: &[&str]| opts.iter().any(|(o, _)| k.contains(&o.as_str()));
    let mut args = Vec::new();
    for (k, v) in &opts {
        if CREATE_VALUED.contains(&k.as_str()) {
            args.extend([k.clone(), v.clone()]);
        } else if CREATE_FLAGS.contains(&k.as_str()) {
            args.push(k.clone());
        }
    }
    args.push(id.clone());
    create(ctx, &args)?;
    if let Err(e) = start(ctx, id) {
        let _ = delete(ctx, &["--force".into(), id.clone()]);
        return Err(e);
    }
    if has(&["--detach", "-d"]) {
        return Ok(0);
    }
    let (saved, _) = current_state(ctx, id)?;
    let pid = saved.state.pid.ok_or("the container has no process")?;
    // The caller's signals go to the container's init, as runc forwards
    // them (blocked here, taken by a thread; the instance, forked before,
    // keeps its own mask).
    // SAFETY: sigset operations on our own set; blocking in this thread
    // before any other thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let fwd = Ctx {
        root: ctx.root.clone(),
        log: ctx.log.clone(),
        json_log: ctx.json_log,
        debug: ctx.debug,
    };
    let fid = id.clone();
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: sigwait on the set blocked above.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            let _ = send_ctl(&fwd, &fid, sig, 0);
        }
    });
    let mut st = 0;
    let r = loop {
        // SAFETY: waitpid on one pid, into our own int.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break r;
        }
    };
    let code = if r != pid {
        // Not our child after all: wait for the status it leaves.
        while alive(&saved) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(ctx.dir(id).join("exit"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(255)
    } else if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        128 + libc::WTERMSIG(st)
    };
    if !has(&["--keep"]) {
        delete(ctx, std::slice::from_ref(id))?;
    }
    Ok(code)
}

fn create(ctx: &Ctx, rest: &[String]) -> Result<(), String> {
    let (opts, pos) = parse_opts(rest, CREATE_FLAGS, CREATE_VALUED)?;
    let [id] = pos.as_slice() else {
        return Err("create: give one container ID".into());
    };
    check_id(id)?;
    let get = |k: &[&str]| {
        opts.iter()
            .rev()
            .find(|(o, _)| k.contains(&o.as_str()))
            .map(|(_, v)| v.clone())
    };
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let bundle = cwd.join(get(&["--bundle", "-b"]).unwrap_or_else(|| ".".into()));
    let bundle = bundle
        .canonicalize()
        .map_err(|e| format!("bundle {}: {e}", bundle.display()))?;
    let pid_file = get(&["--pid-file"]).map(|p| cwd.join(p));
    let console_socket = get(&["--console-socket"]).map(|p| cwd.join(p));
    let preserve = preserve_fds(get(&["--preserve-fds"]))?;
    let spec = plan::load_spec(&bundle)?;
    let plan = plan::plan(&spec, &bundle, ctx.debug)?;
    if plan.terminal && console_socket.is_none() {
        return Err("process.terminal is true: give --console-socket".into());
    }
    std::fs::create_dir_all(&ctx.root)
        .map_err(|e| format!("cannot make {}: {e}", ctx.root.display()))?;
    let dir = ctx.dir(id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("container {id} already exists"))
        }
        Err(e) => return Err(format!("cannot make {}: {e}", dir.display())),
    }
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
    let r = create_in(
        ctx,
        id,
        &dir,
        &bundle,
        &spec,
        plan,
        pid_file,
        console_socket,
        preserve,
    );
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn create_in(
    ctx: &Ctx,
    id: &str,
    dir: &Path,
    bundle: &Path,
    spec: &spec::Spec,
    plan: plan::Plan,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    preserve: usize,
) -> Result<(), String> {
    std::fs::copy(bundle.join("config.json"), dir.join("config.json"))
        .map_err(|e| format!("cannot copy config.json: {e}"))?;
    mkfifo(&dir.join("exec.fifo"))?;
    mkfifo(&dir.join("ctl"))?;
    let console = match (&console_socket, plan.terminal) {
        (Some(sock), true) => Some(console::open_pty(sock, plan.console_size)?),
        _ => None,
    };
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `create` is single-threaded here, so the child may run Rust
    // code freely; it never returns from `instance`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: our own pipe's read end.
        unsafe { libc::close(fds[0]) };
        instance(ctx, dir, plan, fds[1], console, preserve);
    }
    // SAFETY: the child has its own copy of the write end.
    unsafe { libc::close(fds[1]) };
    drop(console);
    // SAFETY: fds[0] is ours alone now.
    let mut sync = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut msg = String::new();
    let _ = sync.read_to_string(&mut msg);
    if msg != "ready" {
        // The child failed before it was ready: reap it and report why.
        // SAFETY: our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(if msg.is_empty() {
            "the ruml instance ended before it was ready".into()
        } else {
            msg
        });
    }
    let start_time = proc_stat(pid).map(|s| s.0).unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let saved = Saved {
        state: State {
            oci_version: OCI_VERSION.into(),
            id: id.into(),
            status: "created".into(),
            pid: Some(pid),
            bundle: bundle.to_string_lossy().into_owned(),
            annotations: spec.annotations.clone(),
        },
        start_time,
        created: rfc3339(now),
    };
    let kill_child = || {
        // SAFETY: our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    };
    let json = serde_json::to_vec_pretty(&saved).map_err(|e| e.to_string())?;
    if let Err(e) = write_atomic(&dir.join("state.json"), &json) {
        kill_child();
        return Err(e);
    }
    let mut st = saved.state.clone();
    st.status = "created".into();
    for h in spec.hooks.prestart.iter().chain(&spec.hooks.create_runtime) {
        if let Err(e) = run_hook(h, &st) {
            kill_child();
            return Err(e);
        }
    }
    if let Some(p) = pid_file {
        if let Err(e) = write_atomic(&p, pid.to_string().as_bytes()) {
            kill_child();
            return Err(e);
        }
    }
    Ok(())
}

/// The instance: the process `state` reports. Waits for `start`, then
/// boots ruml with the container as init. Never returns.
fn instance(
    ctx: &Ctx,
    dir: &Path,
    mut plan: plan::Plan,
    sync_fd: i32,
    console: Option<console::Pty>,
    preserve: usize,
) -> ! {
    // SAFETY: sync_fd is our end of the pipe.
    let mut sync = unsafe { std::fs::File::from_raw_fd(sync_fd) };
    let fail = |sync: &mut std::fs::File, msg: String| -> ! {
        let _ = sync.write_all(msg.as_bytes());
        // SAFETY: ends this child without running the parent's atexit.
        unsafe { libc::_exit(1) }
    };
    // Out of the caller's session: its terminal's signals are not ours;
    // and out of its directory, which we must not keep busy.
    // SAFETY: plain system call.
    unsafe { libc::setsid() };
    if let Some(p) = &plan.uts_join {
        match join_uts(p) {
            Ok(h) => plan.setup.hostname = Some(h),
            Err(e) => fail(&mut sync, e),
        }
    }
    if let Err(e) = set_up_network(&plan.net) {
        fail(&mut sync, e);
    }
    let _ = std::env::set_current_dir("/");
    if let Some(pty) = console {
        if let Err(e) = pty.become_stdio() {
            fail(&mut sync, e);
        }
    }
    let ctl = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("ctl"))
    {
        Ok(f) => f,
        Err(e) => fail(&mut sync, format!("cannot open the control fifo: {e}")),
    };
    let exec_listener = match exec::listen(dir) {
        Ok(l) => l,
        Err(e) => fail(&mut sync, e),
    };
    if sync.write_all(b"ready").is_err() {
        // SAFETY: see above.
        unsafe { libc::_exit(1) }
    }
    drop(sync);
    // Held here until `start` opens the fifo for reading.
    let go = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("exec.fifo"))
        .and_then(|mut f| f.write_all(b"0"));
    if go.is_err() {
        // SAFETY: see above.
        unsafe { libc::_exit(1) }
    }
    let ctl_dir = dir.to_path_buf();
    std::thread::spawn(move || forward_signals(ctl, &ctl_dir));
    std::thread::spawn(move || exec::serve(exec_listener));
    ruml_kernel::container::set(plan.setup);
    // SAFETY: `create` checked that 3..3+preserve are open descriptors it
    // inherited; this process takes them over (nothing else uses them).
    let kept = (0..preserve)
        .map(|k| unsafe { std::os::fd::OwnedFd::from_raw_fd(3 + k as i32) })
        .collect();
    ruml_kernel::container::set_preserved_fds(kept);
    let code = match ruml_kernel::boot::boot(plan.boot) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ruml: {e}");
            if ctx.debug {
                eprintln!("ruml oci: the container did not start");
            }
            127
        }
    };
    let _ = write_atomic(&dir.join("exit"), code.to_string().as_bytes());
    std::process::exit(code)
}

/// Joins the UTS namespace at `path` (this process is still
/// single-threaded) and returns its hostname, which the guest gets: ruml's
/// guest has a kernel of its own, so it gets a copy at boot.
fn join_uts(path: &str) -> Result<Vec<u8>, String> {
    let ns = std::fs::File::open(path)
        .map_err(|e| format!("cannot open the uts namespace {path}: {e}"))?;
    // SAFETY: setns on a descriptor we own; single-threaded here.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
        return Err(format!(
            "cannot join the uts namespace {path}: {} (the runtime needs CAP_SYS_ADMIN over it)",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: uname NUL-terminates nodename within the struct.
    let name = unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) };
    Ok(name.to_bytes().to_vec())
}

/// Gives the guest the network the plan asks for: joins a network
/// namespace by path (before this process has any other thread, so every
/// thread the kernel starts is in it) and turns on `eth0=user` with its
/// port forwards.
fn set_up_network(net: &plan::Net) -> Result<(), String> {
    let plan::Net::User { join, hostfwd } = net else {
        return Ok(());
    };
    if let Some(path) = join {
        let ns = std::fs::File::open(path)
            .map_err(|e| format!("cannot open the network namespace {path}: {e}"))?;
        // SAFETY: setns on a descriptor we own; this process is still
        // single-threaded.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot join the network namespace {path}: {} (the runtime needs \
                 CAP_SYS_ADMIN over it)",
                std::io::Error::last_os_error()
            ));
        }
    }
    ruml_kernel::net::iface::enable_user_nat();
    for f in hostfwd {
        ruml_kernel::net::inet::add_hostfwd(f)?;
    }
    Ok(())
}

/// Control requests on the `ctl` fifo: 8 bytes, a code (i32) and an
/// argument (i32). A code from 1 to 64 is a signal for init (argument 1:
/// for every guest process); [`CTL_PAUSE`] and [`CTL_RESUME`] freeze and
/// thaw the guest.
const CTL_PAUSE: i32 = -1;
const CTL_RESUME: i32 = -2;

/// The instance's reader of control requests (a thread).
fn forward_signals(mut ctl: std::fs::File, dir: &Path) {
    let mut b = [0u8; 8];
    while ctl.read_exact(&mut b).is_ok() {
        let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let arg = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        // Boot may still be under way: retry until init exists.
        for _ in 0..2000 {
            let done = match code {
                CTL_PAUSE => ruml_kernel::container::freeze().map(|()| {
                    let _ = std::fs::write(dir.join("paused"), b"");
                    true
                }),
                CTL_RESUME => {
                    // The marker goes first: once thawed, init may end and
                    // this process with it.
                    let _ = std::fs::remove_file(dir.join("paused"));
                    ruml_kernel::container::thaw();
                    Some(true)
                }
                _ if arg != 0 => ruml_kernel::container::signal_all(code),
                _ => ruml_kernel::container::signal_init(code),
            };
            if done.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Writes one control request to the instance of `id`.
fn send_ctl(ctx: &Ctx, id: &str, code: i32, arg: i32) -> Result<(), String> {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&code.to_ne_bytes());
    msg[4..].copy_from_slice(&arg.to_ne_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(ctx.dir(id).join("ctl"))
        .and_then(|mut f| f.write_all(&msg))
        .map_err(|e| format!("container {id} does not take requests: {e}"))
}

/// `pause` (`freeze`) or `resume`: waits until the instance reports it.
fn pause(ctx: &Ctx, id: &str, freeze: bool) -> Result<(), String> {
    let (saved, st) = current_state(ctx, id)?;
    let (want, code) = if freeze {
        ("running", CTL_PAUSE)
    } else {
        ("paused", CTL_RESUME)
    };
    if st.status != want {
        return Err(format!("container {id} is {}, not {want}", st.status));
    }
    send_ctl(ctx, id, code, 0)?;
    let marker = ctx.dir(id).join("paused");
    let deadline = Instant::now() + Duration::from_secs(60);
    while marker.exists() != freeze {
        if !alive(&saved) {
            return Err(format!("container {id} ended"));
        }
        if Instant::now() > deadline {
            return Err(format!("container {id} did not answer"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn start(ctx: &Ctx, id: &str) -> Result<(), String> {
    let (saved, st) = current_state(ctx, id)?;
    if st.status != "created" {
        return Err(format!("container {id} is {}, not created", st.status));
    }
    let fifo = ctx.dir(id).join("exec.fifo");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| format!("cannot open {}: {e}", fifo.display()))?;
    // Wait for the instance's byte; give up if it died meanwhile.
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            break;
        }
        if !alive(&saved) {
            return Err(format!("container {id} ended before it started"));
        }
    }
    let _ = std::fs::remove_file(&fifo);
    let spec = plan::load_spec(&ctx.dir(id))?;
    let mut st = st;
    st.status = "running".into();
    for h in &spec.hooks.poststart {
        // Poststart hook failures are logged, not fatal (runtime-spec).
        if let Err(e) = run_hook(h, &st) {
            ctx.error(&e);
        }
    }
    Ok(())
}

fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("bad signal {s}"));
    }
    let name = s.trim_start_matches("SIG");
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(format!("unknown signal {s}")),
    };
    Ok(n)
}

fn kill(ctx: &Ctx, rest: &[String]) -> Result<(), String> {
    let (opts, pos) = parse_opts(rest, &["--all", "-a"], &[])?;
    let all = !opts.is_empty();
    let (id, sig) = match pos.as_slice() {
        [id] => (id, libc::SIGTERM),
        [id, s] => (id, parse_signal(s)?),
        _ => return Err("kill: give ID [SIGNAL]".into()),
    };
    let (saved, st) = current_state(ctx, id)?;
    let pid = match (st.status.as_str(), saved.state.pid) {
        ("created" | "running" | "paused", Some(p)) => p,
        _ => return Err(format!("container {id} is not running")),
    };
    if st.status == "created" || sig == libc::SIGKILL {
        // Before start nothing runs in the guest yet; SIGKILL ends the
        // whole instance (init and every guest process) at once.
        // SAFETY: plain system call on the instance we checked is alive.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        return Ok(());
    }
    send_ctl(ctx, id, sig, i32::from(all))
}

fn delete(ctx: &Ctx, rest: &[String]) -> Result<(), String> {
    let (opts, pos) = parse_opts(rest, &["--force", "-f"], &[])?;
    let force = !opts.is_empty();
    let [id] = pos.as_slice() else {
        return Err("delete: give one container ID".into());
    };
    let (saved, st) = match current_state(ctx, id) {
        Ok(s) => s,
        Err(e) => {
            // A state directory without state.json is a create that died.
            if ctx.dir(id).is_dir() && !ctx.dir(id).join("state.json").exists() {
                let _ = std::fs::remove_dir_all(ctx.dir(id));
                return Ok(());
            }
            return Err(e);
        }
    };
    if st.status != "stopped" {
        if (st.status == "running" || st.status == "paused") && !force {
            return Err(format!("container {id} is running: stop it or use --force"));
        }
        if let Some(pid) = saved.state.pid {
            // SAFETY: the instance we checked is alive.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(&saved) {
            if Instant::now() > deadline {
                return Err(format!("container {id} did not end after SIGKILL"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut st = st;
    st.status = "stopped".into();
    st.pid = None;
    let hooks = plan::load_spec(&ctx.dir(id))
        .map(|s| s.hooks.poststop)
        .unwrap_or_default();
    std::fs::remove_dir_all(ctx.dir(id))
        .map_err(|e| format!("cannot remove {}: {e}", ctx.dir(id).display()))?;
    for h in &hooks {
        if let Err(e) = run_hook(h, &st) {
            ctx.error(&e);
        }
    }
    Ok(())
}

fn format_opt(opts: &[(String, String)]) -> Result<bool, String> {
    match opts
        .iter()
        .rev()
        .find(|(k, _)| k == "--format" || k == "-f")
        .map(|(_, v)| v.as_str())
    {
        None | Some("table") => Ok(false),
        Some("json") => Ok(true),
        Some(f) => Err(format!("unknown format {f}: table or json")),
    }
}

fn list(ctx: &Ctx, rest: &[String]) -> Result<(), String> {
    let (opts, _) = parse_opts(rest, &["--quiet", "-q"], &["--format", "-f"])?;
    let json = format_opt(&opts)?;
    let quiet = opts.iter().any(|(k, _)| k == "--quiet" || k == "-q");
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&ctx.root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok((saved, st)) = current_state(ctx, &id) {
                all.push((saved, st));
            }
        }
    }
    all.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    if json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(s, st)| {
                serde_json::json!({
                    "ociVersion": st.oci_version, "id": st.id, "pid": st.pid.unwrap_or(0),
                    "status": st.status, "bundle": st.bundle, "rootfs": "",
                    "created": s.created, "annotations": st.annotations, "owner": "",
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else if quiet {
        for (_, st) in &all {
            println!("{}", st.id);
        }
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED");
        for (s, st) in &all {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                st.id,
                st.pid.unwrap_or(0),
                st.status,
                st.bundle,
                s.created
            );
        }
    }
    Ok(())
}

/// Host processes of a container: the instance and the stub processes
/// it runs guest address spaces in (its children).
fn host_pids(pid: i32) -> Vec<i32> {
    let mut v = vec![pid];
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let ppid = s
                .rfind(')')
                .and_then(|i| s[i + 2..].split(' ').nth(1))
                .and_then(|f| f.parse::<i32>().ok());
            if ppid == Some(pid) {
                v.push(p);
            }
        }
    }
    v
}

fn ps(ctx: &Ctx, rest: &[String]) -> Result<(), String> {
    let (opts, pos) = parse_opts(rest, &[], &["--format", "-f"])?;
    let json = format_opt(&opts)?;
    let [id] = pos.as_slice() else {
        return Err("ps: give one container ID".into());
    };
    let (saved, st) = current_state(ctx, id)?;
    let pids = match (st.status.as_str(), saved.state.pid) {
        ("stopped", _) | (_, None) => Vec::new(),
        (_, Some(p)) => host_pids(p),
    };
    if json {
        println!("{}", serde_json::json!(pids));
    } else {
        println!("PID\tCMD");
        for p in pids {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmd: Vec<String> = cmd
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            println!("{p}\t{}", cmd.join(" "));
        }
    }
    Ok(())
}

fn features() -> Result<(), String> {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw"],
        "linux": {
            // Every container gets new ones of each type (a kernel of its
            // own); network and uts may also be joined by path.
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ruml_kernel::task::caps::CAP_NAMES,
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "io.github.ruml.sandbox": "ruml: a Linux kernel in an unprivileged host process",
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// `exec`: runs a new process in a running container; exits with its
/// status (with --detach, a child of ours waits for it and does).
fn exec_cmd(ctx: &Ctx, rest: &[String]) -> i32 {
    match exec_prepare(ctx, rest) {
        Ok(code) => code,
        Err(e) => {
            ctx.error(&e);
            1
        }
    }
}

fn exec_prepare(ctx: &Ctx, rest: &[String]) -> Result<i32, String> {
    let (opts, pos) = parse_opts(
        rest,
        &[
            "--tty",
            "-t",
            "--detach",
            "-d",
            "--no-new-privs",
            "--ignore-paused",
        ],
        &[
            "--process",
            "-p",
            "--console-socket",
            "--pid-file",
            "--cwd",
            "--env",
            "-e",
            "--user",
            "-u",
            "--additional-gids",
            "-g",
            "--cap",
            "-c",
            "--preserve-fds",
            "--process-label",
            "--apparmor",
            "--cgroup",
        ],
    )?;
    let has = |k: &[&str]| opts.iter().any(|(o, _)| k.contains(&o.as_str()));
    let get = |k: &[&str]| {
        opts.iter()
            .rev()
            .find(|(o, _)| k.contains(&o.as_str()))
            .map(|(_, v)| v.clone())
    };
    let Some((id, args)) = pos.split_first() else {
        return Err("exec: give ID [ARGS...]".into());
    };
    let (saved, st) = current_state(ctx, id)?;
    if st.status != "running" {
        return Err(format!("container {id} is {}, not running", st.status));
    }
    let dir = ctx.dir(id);
    let spec = plan::load_spec(&dir)?;
    let (mut process, mut tty) = match get(&["--process", "-p"]) {
        Some(f) => {
            let text = std::fs::read(&f).map_err(|e| format!("cannot read {f}: {e}"))?;
            let p: spec::Process =
                serde_json::from_slice(&text).map_err(|e| format!("bad {f}: {e}"))?;
            let t = p.terminal;
            (p, t)
        }
        None => {
            let base = spec.process.clone().ok_or("config.json has no process")?;
            let p = spec::Process {
                args: args.to_vec(),
                terminal: false,
                console_size: None,
                // The container's rlimits are init's, which the new
                // process starts with anyway.
                rlimits: Vec::new(),
                ..base
            };
            (p, false)
        }
    };
    tty |= has(&["--tty", "-t"]);
    if let Some(c) = get(&["--cwd"]) {
        process.cwd = c;
    }
    for (k, v) in &opts {
        if k == "--env" || k == "-e" {
            process.env.push(v.clone());
        }
    }
    if let Some(u) = get(&["--user", "-u"]) {
        let (uid, gid) = u.split_once(':').unwrap_or((&u, "0"));
        process.user.uid = uid
            .parse()
            .map_err(|_| format!("bad --user {u}: give UID[:GID]"))?;
        process.user.gid = gid
            .parse()
            .map_err(|_| format!("bad --user {u}: give UID[:GID]"))?;
    }
    if process.args.is_empty() {
        return Err("exec: nothing to run".into());
    }
    if !process.cwd.starts_with('/') {
        return Err(format!("exec: cwd {:?} must be absolute", process.cwd));
    }
    let root = spec
        .root
        .as_ref()
        .map(|r| Path::new(&saved.state.bundle).join(&r.path))
        .ok_or("config.json has no root")?;
    let req = exec::Request {
        path: plan::resolve_cmd(&root, &process.args[0], &process.env),
        args: process.args.clone(),
        env: process.env.clone(),
        cwd: process.cwd.clone(),
        uid: process.user.uid,
        gid: process.user.gid,
        additional_gids: process.user.additional_gids.clone(),
        no_new_privileges: process.no_new_privileges || has(&["--no-new-privs"]),
        capabilities: process.capabilities.clone(),
        rlimits: plan::rlimits(&process.rlimits)?,
    };
    let pty = if tty {
        let sock = get(&["--console-socket"]).ok_or("exec --tty: give --console-socket")?;
        let size = process.console_size.map(|c| (c.height, c.width));
        Some(console::open_pty(Path::new(&sock), size)?)
    } else {
        None
    };
    let preserve = preserve_fds(get(&["--preserve-fds"]))?;
    let mut fds = match &pty {
        Some(p) => vec![p.raw(); 3],
        None => vec![0, 1, 2],
    };
    fds.extend((0..preserve).map(|k| 3 + k as i32));
    let (mut conn, _guest_pid) = exec::request(&dir, &req, &fds)?;
    drop(pty);
    let pid_file = get(&["--pid-file"]);
    if has(&["--detach", "-d"]) {
        // SAFETY: exec is single-threaded; the child only waits and exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if child == 0 {
            // SAFETY: plain system calls in the child.
            unsafe {
                libc::setsid();
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
            std::process::exit(exec::wait(&mut conn).unwrap_or(255));
        }
        if let Some(f) = pid_file {
            write_atomic(Path::new(&f), child.to_string().as_bytes())?;
        }
        return Ok(0);
    }
    if let Some(f) = pid_file {
        write_atomic(Path::new(&f), std::process::id().to_string().as_bytes())?;
    }
    exec::wait(&mut conn)
}

/// `--preserve-fds N`: the count, with descriptors 3..3+N checked open.
fn preserve_fds(v: Option<String>) -> Result<usize, String> {
    let Some(v) = v else {
        return Ok(0);
    };
    let n: usize = v
        .parse()
        .map_err(|_| format!("--preserve-fds {v}: give a number of descriptors"))?;
    if n > exec::MAX_PRESERVED {
        return Err(format!(
            "--preserve-fds {n}: at most {} descriptors",
            exec::MAX_PRESERVED
        ));
    }
    for fd in 3..3 + n as i32 {
        // SAFETY: F_GETFD only asks about the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!("--preserve-fds {n}: descriptor {fd} is not open"));
        }
    }
    Ok(n)
}

/// Runs one hook with the container state on its stdin (runtime-spec).
fn run_hook(h: &Hook, st: &State) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
    }
    cmd.args(h.args.iter().skip(1));
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("hook {}: {e}", h.path))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(&serde_json::to_vec(st).unwrap_or_default());
    }
    let deadline = h
        .timeout
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("hook {} failed: {s}", h.path)),
            Ok(None) => {}
            Err(e) => return Err(format!("hook {}: {e}", h.path)),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hook {} timed out", h.path));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

mod console;
