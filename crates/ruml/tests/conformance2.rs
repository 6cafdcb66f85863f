//! Linux conformance II (issue #11): what the other suites do not cover.
//! Random arguments for every call of the area (tests/guest/conf2_fuzz.c)
//! with the kernel's own memory watched; device nodes made with mknod on
//! tmpfs and the overlay; clone's pointers at bad addresses; epoll
//! wake-ups through nested instances and EPOLLEXCLUSIVE.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build_guest, differential, run_ruml, test_env, Flavour, TempDir};

/// RssAnon of a host process in KiB: the kernel's heap (guest memory is
/// a memfd and counts as RssShmem).
fn rss_anon_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("RssAnon:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for(path: &std::path::Path, child: &mut std::process::Child, until: Instant) -> bool {
    while Instant::now() < until {
        if path.exists() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A minute of random calls (seeded; RUML_FUZZ_SEED repeats a run): ruml
/// survives (init exits 0 after the last call, no panic in its log) and
/// its heap does not grow without bound. Everything the fuzzer makes is
/// closed every round, so what the kernel holds between the first fifth
/// of the run and its end is bounded by per-user limits (keys, inotify
/// watches, AIO events, 1 MiB RLIMIT_FSIZE files): 64 MiB is far above
/// that and far below what a leak over 60 s of calls would reach.
#[test]
fn fuzz_calls_of_the_area() {
    let guest = build_guest("conf2_fuzz", Flavour::Static);
    let seed: u64 = std::env::var("RUML_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(1)
        });
    eprintln!("conf2_fuzz seed {seed} (RUML_FUZZ_SEED={seed} repeats it)");
    let dir = TempDir::new("conf2-fuzz");
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).expect("marks dir");
    let mount = format!("mount={}:/m", marks.display());
    let out = std::fs::File::create(dir.path().join("out")).expect("out file");
    let err = std::fs::File::create(dir.path().join("err")).expect("err file");
    let mut args: Vec<String> = Vec::new();
    if let Some(m) = common::test_mode() {
        args.push(format!("mode={m}"));
    }
    args.extend(
        [
            "eth0=none",
            "quiet",
            &mount,
            "--",
            guest.path.to_str().expect("path"),
            "60",
            &seed.to_string(),
            "/m",
        ]
        .map(String::from),
    );
    let mut child = Command::new(common::ruml_bin())
        .args(&args)
        .env_clear()
        .envs(test_env())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start ruml");
    let pid = child.id();
    let kill = |child: &mut std::process::Child| {
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        let _ = child.kill();
        let _ = child.wait();
    };
    let until = Instant::now() + Duration::from_secs(600);
    let log = |dir: &TempDir| {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(dir.path().join("out")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("err")).unwrap_or_default()
        )
    };
    if !wait_for(&marks.join("warm"), &mut child, until) {
        kill(&mut child);
        panic!("the fuzzer never got warm (seed {seed})\n{}", log(&dir));
    }
    let warm = rss_anon_kib(pid).expect("ruml's RssAnon");
    if !wait_for(&marks.join("end"), &mut child, until) {
        kill(&mut child);
        panic!("the fuzzer never ended (seed {seed})\n{}", log(&dir));
    }
    let end = rss_anon_kib(pid).expect("ruml's RssAnon");
    std::fs::write(marks.join("go"), b"").expect("go mark");
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() >= until {
            kill(&mut child);
            panic!(
                "ruml did not exit after the fuzzer (seed {seed})\n{}",
                log(&dir)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let all = log(&dir);
    eprintln!("ruml's RssAnon: {warm} KiB warm, {end} KiB at the end");
    assert_eq!(status.code(), Some(0), "seed {seed}\n{all}");
    assert!(
        !all.contains("panick"),
        "seed {seed}: the kernel panicked\n{all}"
    );
    let result = std::fs::read_to_string(marks.join("result")).unwrap_or_default();
    assert!(
        result.starts_with("survived "),
        "seed {seed}: {result}\n{all}"
    );
    assert!(
        end <= warm + 64 * 1024,
        "seed {seed}: ruml's heap grew from {warm} KiB to {end} KiB\n{all}"
    );
}

/// clone's CLONE_PIDFD, PARENT_SETTID and CHILD_SETTID at bad addresses:
/// as Linux (EFAULT and no child for the pidfd, the child for the tids).
#[test]
fn clone_bad_addresses() {
    let (native, ruml) = differential("clone_efault", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert_eq!(native.stdout_lines().len(), 12, "{native}");
    common::assert_same(&native, &ruml);
}

/// Device nodes made with mknod on tmpfs and on the overlay root are the
/// devices of their numbers (a char 1,3 is /dev/null, 1,5 /dev/zero...);
/// a number without a driver gives ENXIO, as on Linux.
#[test]
fn mknod_device_nodes_work() {
    let script = "\
set -e
mkdir -p /mnt/t && mount -t tmpfs none /mnt/t
for d in /mnt/t /root; do
  mknod $d/null c 1 3; mknod $d/zero c 1 5; mknod $d/full c 1 7
  mknod $d/urandom c 1 9; mknod $d/bogus c 250 0
  echo hello > $d/null && echo \"$d null write ok\"
  echo \"$d null read: $(cat $d/null | wc -c)\"
  echo \"$d zero read: $(head -c 8 $d/zero | od -An -tx1)\"
  echo x > $d/full 2>/dev/null || echo \"$d full: write fails\"
  echo \"$d urandom read: $(head -c 16 $d/urandom | wc -c)\"
  cat $d/bogus 2>&1 | sed 's/.*: //' || true
done
";
    let out = run_ruml("/bin/sh", &["-c", script], &test_env());
    let mut want = String::new();
    for d in ["/mnt/t", "/root"] {
        want += &format!(
            "{d} null write ok\n{d} null read: 0\n{d} zero read:  00 00 00 00 00 00 00 00\n\
             {d} full: write fails\n{d} urandom read: 16\nNo such device or address\n"
        );
    }
    assert_eq!(out.stdout, want, "{out}");
    assert_eq!(out.code(), 0, "{out}");
}

/// epoll wake-ups (tests/guest/epoll_wake.c): a nested epoll wakes the
/// waiter on the outer one and poll on it; EPOLLEXCLUSIVE wakes one of
/// four epoll instances for one event.
#[test]
fn epoll_wake_static() {
    let (native, ruml) = differential("epoll_wake", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native
            .stdout
            .contains("EPOLLEXCLUSIVE: 1 woken, 1 took the count"),
        "{native}"
    );
    common::assert_same(&native, &ruml);
}
