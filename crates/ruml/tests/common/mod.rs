//! Shared helpers for ruml's integration tests: build guest programs from
//! `tests/guest/*.c` with the host's gcc, run a program natively and under
//! ruml with the same controlled environment and a timeout, and compare the
//! two (the differential oracle).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod tmux;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one run of ruml (or of the native program) may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The ruml binary under test.
pub fn ruml_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ruml"))
}

/// The backend the tests ask for: `RUML_TEST_MODE=ptrace|seccomp` becomes
/// ruml's `mode=` parameter on every run; unset, ruml picks its default.
pub fn test_mode() -> Option<String> {
    match std::env::var("RUML_TEST_MODE") {
        Ok(m) if m == "ptrace" || m == "seccomp" => Some(m),
        Ok(m) if m.is_empty() || m == "default" => None,
        Ok(m) => panic!("RUML_TEST_MODE={m}: give ptrace, seccomp or default"),
        Err(_) => None,
    }
}

/// `mode=X ` for command lines written as text (tmux scripts), or "".
pub fn mode_prefix() -> String {
    test_mode()
        .map(|m| format!("mode={m} "))
        .unwrap_or_default()
}

/// The test's parameters with the backend's `mode=` and, unless the test
/// names its own `eth0=`, `eth0=none`: tests see only what they set up
/// (ruml's default, `eth0=user`, has tests of its own in network.rs).
fn with_mode<S: AsRef<OsStr>>(args: &[S]) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = Vec::new();
    if let Some(m) = test_mode() {
        v.push(format!("mode={m}").into());
    }
    let params = args.iter().take_while(|a| a.as_ref() != "--");
    if !params
        .into_iter()
        .any(|a| a.as_ref().to_string_lossy().starts_with("eth0="))
    {
        v.push("eth0=none".into());
    }
    v.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    v
}

/// The workspace root (where README.md, docs/ and tests/guest/ live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The environment every program under test gets, natively and under ruml
/// (ruml passes its own environment through to init unchanged).
pub fn test_env() -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
        ("LC_ALL", "C"),
        ("TZ", "UTC"),
        ("HOME", "/root"),
        ("TERM", "dumb"),
        ("RUML_TEST", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

// ---------------------------------------------------------------------------
// Temporary directories and guest programs
// ---------------------------------------------------------------------------

/// A fresh directory under cargo's target tmpdir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a guest program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `-static -no-pie`: fixed addresses, no interpreter.
    Static,
    /// `-static-pie -fPIE`: self-relocating, no interpreter.
    StaticPie,
    /// `-pie` (gcc's default): ld.so and libc.so from the host.
    Dynamic,
}

impl Flavour {
    pub const ALL: [Flavour; 3] = [Flavour::Static, Flavour::StaticPie, Flavour::Dynamic];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Static => "static",
            Flavour::StaticPie => "static-pie",
            Flavour::Dynamic => "dynamic",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Flavour::Static => &["-static", "-no-pie", "-DRUML_STATIC_NOPIE"],
            Flavour::StaticPie => &["-static-pie", "-fPIE", "-DRUML_STATIC_PIE"],
            Flavour::Dynamic => &["-pie", "-fPIE", "-DRUML_DYNAMIC"],
        }
    }
}

/// A guest program built from `tests/guest/NAME.c`; its directory goes
/// away with it.
pub struct Guest {
    pub path: PathBuf,
    pub flavour: Flavour,
    _dir: TempDir,
}

/// Compiles `tests/guest/<name>.c` in the given flavour into a fresh
/// directory. Panics with gcc's output if it fails.
pub fn build_guest(name: &str, flavour: Flavour) -> Guest {
    let src = workspace_root()
        .join("tests/guest")
        .join(format!("{name}.c"));
    assert!(src.exists(), "guest source {} is missing", src.display());
    let dir = TempDir::new(&format!("guest-{name}-{}", flavour.name()));
    let out = dir.path().join(name);
    let result = Command::new("gcc")
        .args(["-O1", "-g", "-Wall", "-o"])
        .arg(&out)
        .args(flavour.flags())
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc (is it installed?): {e}"));
    assert!(
        result.status.success(),
        "gcc failed to build {} ({}):\n{}{}",
        src.display(),
        flavour.name(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    Guest {
        path: out,
        flavour,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------

/// What a run produced.
pub struct Output {
    /// What was run, for messages.
    pub what: String,
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
}

impl Output {
    /// The status as a shell reports it: the exit code, or 128+N when
    /// killed by signal N. ruml exits with this for its init.
    pub fn code(&self) -> i32 {
        shell_code(&self.status)
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- {} ---", self.what)?;
        writeln!(f, "status: {}", describe_status(&self.status))?;
        writeln!(
            f,
            "stdout ({} bytes):\n{}",
            self.stdout.len(),
            indent(&self.stdout)
        )?;
        write!(
            f,
            "stderr ({} bytes):\n{}",
            self.stderr.len(),
            indent(&tail(&self.stderr, 60))
        )
    }
}

pub fn shell_code(status: &ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    }
}

pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!(
            "killed by signal {s}{}",
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => format!("{status:?}"),
    }
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "    (empty)".to_string();
    }
    s.lines().map(|l| format!("    |{l}\n")).collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() <= n {
        return s.to_string();
    }
    format!(
        "[... {} lines cut ...]\n{}",
        lines.len() - n,
        lines[lines.len() - n..].join("\n")
    )
}

/// Runs `prog args` natively with exactly `env`, stdin /dev/null.
pub fn run_native<S: AsRef<OsStr>>(
    prog: impl AsRef<Path>,
    args: &[S],
    env: &[(String, String)],
) -> Output {
    let prog = prog.as_ref();
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let what = format!("native: {}", render(prog.as_os_str(), args));
    run_command(cmd, env, what, TIMEOUT)
}

/// Runs `ruml quiet -- prog args` with exactly `env`, stdin /dev/null.
pub fn run_ruml<S: AsRef<OsStr>>(
    prog: impl AsRef<Path>,
    args: &[S],
    env: &[(String, String)],
) -> Output {
    let prog = prog.as_ref();
    let mut full: Vec<&OsStr> = vec![OsStr::new("quiet"), OsStr::new("--"), prog.as_os_str()];
    full.extend(args.iter().map(|a| a.as_ref()));
    run_ruml_raw(&full, env)
}

/// Runs `ruml ARGS...` (ARGS are ruml's own parameters, then `--` etc.).
pub fn run_ruml_raw<S: AsRef<OsStr>>(args: &[S], env: &[(String, String)]) -> Output {
    run_ruml_raw_budget(args, env, TIMEOUT)
}

/// As [`run_ruml_raw`], with a time budget of its own (for runs whose
/// work grows with a loaded machine: many disk images in one boot).
pub fn run_ruml_raw_budget<S: AsRef<OsStr>>(
    args: &[S],
    env: &[(String, String)],
    budget: Duration,
) -> Output {
    let args = with_mode(args);
    let mut cmd = Command::new(ruml_bin());
    cmd.args(&args);
    let what = format!("ruml {}", render_args(&args));
    run_command(cmd, env, what, budget)
}

fn render<S: AsRef<OsStr>>(prog: &OsStr, args: &[S]) -> String {
    let mut s = prog.to_string_lossy().into_owned();
    if !args.is_empty() {
        s.push(' ');
        s.push_str(&render_args(args));
    }
    s
}

fn render_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| {
            let a = a.as_ref().to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$;&|<>()".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs a command in its own process group with a controlled environment,
/// collecting stdout and stderr. On timeout the whole process group is
/// SIGKILLed and the test fails, so a hang cannot wedge the test run.
pub fn run_command(
    mut cmd: Command,
    env: &[(String, String)],
    what: String,
    timeout: Duration,
) -> Output {
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Every signal at its default, as a fresh ruml's first process has
    // them: a suite started in the background by a shell without job
    // control inherits SIGINT and SIGQUIT ignored, and the native side
    // of a differential test would show it.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let pgid = child.id() as i32;
    let out_t = reader(child.stdout.take().unwrap());
    let err_t = reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                kill_group(pgid);
                let _ = child.kill();
                let _ = child.wait();
                let out = join_reader(out_t, pgid);
                let err = join_reader(err_t, pgid);
                panic!(
                    "TIMEOUT after {:?}: `{what}` did not finish; killed it.\nstdout so far:\n{}\nstderr so far:\n{}",
                    timeout,
                    indent(&String::from_utf8_lossy(&out)),
                    indent(&tail(&String::from_utf8_lossy(&err), 60)),
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = join_reader(out_t, pgid);
    let stderr = join_reader(err_t, pgid);
    Output {
        what,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        status,
    }
}

/// Waits for a reader thread; if something left behind in the process
/// group still holds the pipe open after a grace period, kills the group.
/// If even that does not close it (a process that left the group), gives
/// up on the pipe rather than hang.
fn join_reader(t: JoinHandle<Vec<u8>>, pgid: i32) -> Vec<u8> {
    let mut grace = Instant::now() + Duration::from_secs(10);
    let mut killed = false;
    while !t.is_finished() {
        if Instant::now() >= grace {
            if killed {
                return b"<output pipe still held open by a process outside ruml's process group>\n".to_vec();
            }
            kill_group(pgid);
            killed = true;
            grace = Instant::now() + Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    t.join().unwrap_or_default()
}

fn kill_group(pgid: i32) {
    // SAFETY: plain kill(2) on a process group we created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

// ---------------------------------------------------------------------------
// The differential oracle
// ---------------------------------------------------------------------------

/// Asserts that ruml's run produced the same stdout and the same status as
/// the native one (native death by signal N == ruml exit code 128+N).
pub fn assert_same(native: &Output, ruml: &Output) {
    assert_same_with(native, ruml, |s| s.to_string());
}

/// As [`assert_same`], comparing stdout after `normalize`.
pub fn assert_same_with(native: &Output, ruml: &Output, normalize: impl Fn(&str) -> String) {
    let a = normalize(&native.stdout);
    let b = normalize(&ruml.stdout);
    let mut problems = Vec::new();
    if a != b {
        problems.push(format!(
            "stdout differs (- native, + ruml):\n{}",
            line_diff(&a, &b)
        ));
    }
    if native.code() != ruml.code() {
        problems.push(format!(
            "status differs: native {} (code {}), ruml {} (code {})",
            describe_status(&native.status),
            native.code(),
            describe_status(&ruml.status),
            ruml.code()
        ));
    }
    if native.status.signal().is_none() && ruml.status.signal().is_some() {
        problems.push(format!(
            "ruml itself was killed by a signal ({}), it should exit with init's status",
            describe_status(&ruml.status)
        ));
    }
    if !problems.is_empty() {
        panic!(
            "differential test failed for `{}`:\n{}\n\n{}\n\n{}",
            native.what,
            problems.join("\n"),
            native,
            ruml
        );
    }
}

/// A unified-style line diff (LCS), enough for test outputs.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    if a.len() * b.len() > 4_000_000 {
        let i = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        return format!(
            "  (outputs too long for a full diff; first difference at line {})\n- {}\n+ {}\n",
            i + 1,
            a.get(i).unwrap_or(&"<end of output>"),
            b.get(i).unwrap_or(&"<end of output>")
        );
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    if a.is_empty() && b.is_empty() {
        out.push_str("  (both empty; difference is in trailing whitespace or newlines)\n");
    }
    out
}

/// Builds `name` in `flavour`, runs it natively and under ruml with `args`
/// and the test environment, and asserts the outputs are the same. Returns
/// both runs for further checks.
pub fn differential(name: &str, flavour: Flavour, args: &[&str]) -> (Output, Output) {
    let guest = build_guest(name, flavour);
    let env = test_env();
    let native = run_native(&guest.path, args, &env);
    let ruml = run_ruml(&guest.path, args, &env);
    assert_same(&native, &ruml);
    (native, ruml)
}

// ---------------------------------------------------------------------------
// Host processes: finding ruml's stubs
// ---------------------------------------------------------------------------

/// Fields of /proc/PID/stat that the tests use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub starttime: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may contain spaces or ')'.
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state), rest[1] field 4 (ppid), rest[19] field 22.
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Host processes descended from `root` (not including it).
pub fn descendants(root: i32) -> Vec<ProcStat> {
    let stats: Vec<ProcStat> = all_pids().into_iter().filter_map(proc_stat).collect();
    let mut set = BTreeSet::from([root]);
    let mut out = Vec::new();
    loop {
        let before = set.len();
        for s in &stats {
            if set.contains(&s.ppid) && set.insert(s.pid) {
                out.push(s.clone());
            }
        }
        if set.len() == before {
            break;
        }
    }
    out
}

/// What a hung ruml (host pid `pid`) is doing, for a test's failure
/// message before it kills the run: each of its host threads and of its
/// descendants (stubs) with state, wait channel and current system call,
/// and the threads' backtraces from the host's gdb (bounded to a minute).
pub fn hang_report(pid: i32) -> String {
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    let mut out =
        String::from("--- host threads of ruml and its stubs (tid comm state wchan syscall):\n");
    let mut procs = vec![pid];
    procs.extend(descendants(pid).iter().map(|s| s.pid));
    for p in procs {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.filter_map(|e| e.ok()) {
            let tid = t.file_name().to_string_lossy().into_owned();
            let base = format!("/proc/{p}/task/{tid}");
            let stat = read(format!("{base}/stat"));
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string))
                .unwrap_or_default();
            out.push_str(&format!(
                "{p}/{tid} {} {state} {} {}\n",
                read(format!("{base}/comm")).trim(),
                read(format!("{base}/wchan")).trim(),
                read(format!("{base}/syscall")).trim()
            ));
        }
    }
    let gdb = Command::new("timeout")
        .args(["60", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt 25"])
        .stdin(Stdio::null())
        .output();
    match gdb {
        Ok(o) => {
            out.push_str("--- gdb: thread apply all bt\n");
            out.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        Err(e) => out.push_str(&format!("--- gdb did not run: {e}\n")),
    }
    out
}

/// Whether the native side of a namespace test can run: as root, on a
/// host that lets `unshare -Urmpf` make namespaces (says why not).
pub fn host_allows_namespaces() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the native side must run as root");
        return false;
    }
    let ok = Command::new("unshare")
        .args(["-Urmpf", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: the host refuses namespaces (unshare -Urmpf true failed)");
    }
    ok
}

/// Host children of `parent`.
pub fn children(parent: i32) -> Vec<ProcStat> {
    all_pids()
        .into_iter()
        .filter_map(proc_stat)
        .filter(|s| s.ppid == parent)
        .collect()
}

/// Whether a process recorded earlier is still running: it exists, is the
/// same process (same start time), and is not dead (zombie or exiting).
pub fn still_running(p: &ProcStat) -> bool {
    match proc_stat(p.pid) {
        Some(now) => now.starttime == p.starttime && !matches!(now.state, 'Z' | 'X' | 'x'),
        None => false,
    }
}

/// Starts `ruml ARGS` in the background (own process group, stdio to
/// /dev/null except stderr, which is captured to a file in `dir`).
pub fn spawn_ruml<S: AsRef<OsStr>>(args: &[S], dir: &TempDir) -> Child {
    let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
    Command::new(ruml_bin())
        .args(with_mode(args))
        .env_clear()
        .envs(test_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start ruml")
}

/// A background ruml that is SIGKILLed with its process group on drop.
pub struct Background {
    pub child: Child,
    pub dir: TempDir,
}

impl Background {
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Background {
        let dir = TempDir::new("bg-ruml");
        let child = spawn_ruml(args, &dir);
        Background { child, dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Polls until `pred(descendants)` holds or `timeout` passes; returns
    /// the last set of descendants seen. Fails if ruml exits meanwhile.
    pub fn wait_for_descendants(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&[ProcStat]) -> bool,
    ) -> Vec<ProcStat> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "ruml exited early ({}); stderr:\n{}",
                    describe_status(&st),
                    indent(&self.stderr())
                );
            }
            let d = descendants(self.pid());
            if pred(&d) || Instant::now() >= deadline {
                return d;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_group(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the tests run as root on the host (the native half of a
/// differential test that changes ids needs it).
pub fn host_is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the host's root holds CAP_SYS_RESOURCE (a container's may not).
pub fn host_has_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}
