//! Self-tests of the test harness (no ruml involved): a hung program is
//! killed with everything it started, and the diff is readable.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = common::TempDir::new("harness-timeout");
    let marker = dir.path().join("pid");
    let script = format!("sleep 100 & echo $! > {}; sleep 100", marker.display());
    let start = Instant::now();
    let result = std::panic::catch_unwind(|| {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &script]);
        common::run_command(
            cmd,
            &common::test_env(),
            "hang".into(),
            Duration::from_secs(1),
        )
    });
    let msg = match result {
        Ok(out) => panic!("a hung program was not reported as a timeout:\n{out}"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(msg.contains("TIMEOUT"), "unexpected panic message: {msg}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "timeout took {:?}",
        start.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&marker)
        .expect("background pid")
        .trim()
        .parse()
        .expect("pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::proc_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X')) {
        assert!(
            Instant::now() < deadline,
            "background sleep {pid} survived the timeout kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn line_diff_marks_changes() {
    let d = common::line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
    assert_eq!(d, "  a\n- b\n+ B\n  c\n+ d\n");
}

#[test]
fn status_codes() {
    let out = common::run_native("/bin/sh", &["-c", "kill -SEGV $$"], &common::test_env());
    assert_eq!(out.code(), 139);
    let out = common::run_native("/bin/sh", &["-c", "exit 7"], &common::test_env());
    assert_eq!(out.code(), 7);
}
