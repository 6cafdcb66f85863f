//! Group commit on an ext4 disk: several guest processes and threads
//! fsync'ing their own files at once share journal commits (an fsync
//! that finds its changes committed by another's commit waits for that
//! commit's flush instead of starting its own), and a `kill -9` of ruml
//! after every one of their fsyncs returned loses none of it: the next
//! boot replays the journal, every rewritten record is there, and the
//! guest's and the host's e2fsck find the filesystem clean. An fsync
//! with nothing new costs no host flush (counted with RUML_HOST_STATS).

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_guest, test_env, Flavour, TempDir};

fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} (e2fsprogs) is needed: see .ci/run");
}

/// ruml's arguments; `mode`: with RUML_TEST_MODE's `mode=` (the
/// harness's runs add it themselves).
fn ruml_args(img: &Path, script: String, mode: bool) -> Vec<String> {
    let mut a = vec!["quiet".to_string()];
    if let Some(m) = common::test_mode().filter(|_| mode) {
        a.push(format!("mode={m}"));
    }
    a.push(format!("ubd0={}", img.display()));
    a.extend(["--", "/bin/sh", "-c"].map(String::from));
    a.push(script);
    a
}

fn counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in stats:\n{stats}"))
}

#[test]
fn concurrent_fsyncs_survive_kill_9_and_refsync_is_free() {
    let guest = build_guest("group_fsync", Flavour::Static);
    let g = guest.path.display().to_string();
    let dir = TempDir::new("group-commit");
    let d = dir.path();
    let img = d.join("g.img");
    let st = Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&img)
        .arg("64M")
        .status()
        .expect("mke2fs");
    assert!(st.success());
    for round in 0..3 {
        // Writers, then the kill once all their fsyncs have returned.
        let out_path = d.join("out");
        let mut child = Command::new(common::ruml_bin())
            .args(ruml_args(
                &img,
                format!("mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt && exec {g} write /mnt"),
                true,
            ))
            .env_clear()
            .envs(test_env())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(d.join("err")).unwrap())
            .spawn()
            .expect("start ruml");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let out = std::fs::read_to_string(&out_path).unwrap_or_default();
            if out.contains("ALL-SYNCED\n") {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "round {round}: ruml exited ({st:?}):\n{out}\n{}",
                    std::fs::read_to_string(d.join("err")).unwrap_or_default()
                );
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("round {round}: the writers did not finish:\n{out}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The next boot: replay, every record, e2fsck clean; 200 fsyncs
        // with nothing new.
        let stats = d.join("stats");
        let _ = std::fs::remove_file(&stats);
        let mut env = test_env();
        env.push(("RUML_HOST_STATS".into(), stats.display().to_string()));
        let check = format!(
            "mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt || exit 1; \
             {g} check /mnt; umount /mnt; \
             if e2fsck -fn /dev/ubda >/tmp/fsck.out 2>&1; then echo FSCK-CLEAN; \
             else echo FSCK-ERRORS; cat /tmp/fsck.out; fi"
        );
        let out = common::run_ruml_raw_budget(
            &ruml_args(&img, check, false),
            &env,
            std::time::Duration::from_secs(300),
        );
        let mut want: Vec<String> = (0..6).map(|w| format!("w{w} ok")).collect();
        want.push("refsync done".into());
        want.push("FSCK-CLEAN".into());
        assert_eq!(out.stdout_lines(), want, "round {round}: {out}");
        let s = std::fs::read_to_string(&stats).expect("RUML_HOST_STATS file");
        let flushes = counter(&s, "file_fsync") + counter(&s, "file_fdatasync");
        // Mount (replay), umount and the guest's e2fsck flush a few
        // times; 200 fsyncs with nothing new flush nothing.
        assert!(
            flushes < 40,
            "round {round}: {flushes} host flushes for 200 fsyncs with nothing new:\n{s}"
        );
        let out = Command::new(tool("e2fsck"))
            .arg("-fn")
            .arg(&img)
            .output()
            .expect("e2fsck");
        assert!(
            out.status.success(),
            "round {round}: the host's e2fsck -fn:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
