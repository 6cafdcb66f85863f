//! Disks: ubd devices over host files (raw and UML COW files, checked
//! against Debian's uml_mkcow and uml_moo), the block ioctls, loop
//! devices with util-linux's losetup, and ext2 read-write checked with
//! the host's e2fsprogs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run_ruml_raw, test_env, Output, TempDir};

fn sh(params: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = vec!["quiet"];
    args.extend_from_slice(params);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run_ruml_raw(&args, &test_env())
}

/// A host tool the test needs (.ci/run installs it).
fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("host tool {name} is missing (install uml-utilities and e2fsprogs, see .ci/run)");
}

fn host(cmd: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new(tool(cmd))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    out
}

fn host_ok(cmd: &str, args: &[&str], dir: &Path) -> String {
    let out = host(cmd, args, dir);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic bytes for an image.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

// --- ubd over a raw file --------------------------------------------------

#[test]
fn ubd_raw_disk_reads_and_writes_reach_the_host_file() {
    let dir = TempDir::new("ubd-raw");
    let img = dir.path().join("disk.img");
    let ro = dir.path().join("ro.img");
    let mut data = pattern(4 << 20, 1);
    data[5 * 512..5 * 512 + 10].copy_from_slice(b"HOST-BYTES");
    std::fs::write(&img, &data).unwrap();
    std::fs::write(&ro, pattern(1 << 20, 2)).unwrap();
    let script = "dd if=/dev/ubda bs=512 skip=5 count=1 2>/dev/null | head -c 10; echo; \
                  printf GUEST-WROTE | dd of=/dev/ubda bs=1 seek=4103 conv=notrunc 2>/dev/null; \
                  dd if=/dev/ubda bs=1 skip=4103 count=11 2>/dev/null; echo; \
                  sync /dev/ubda; \
                  blockdev --getsize64 --getsz --getss --getbsz --getpbsz --getro /dev/ubda; \
                  blockdev --getsize64 --getro /dev/ubdb; \
                  echo x | dd of=/dev/ubdb 2>/dev/null || echo ro-refused; \
                  stat -c '%t:%T %F' /dev/ubda /dev/ubdb; \
                  grep ubd /proc/partitions; \
                  cat /sys/block/ubda/size /sys/block/ubda/dev /sys/block/ubdb/ro";
    let ro_param = format!("ubd1r={}", path_str(&ro));
    let out = sh(&[&format!("ubd0={}", path_str(&img)), &ro_param], script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "HOST-BYTES",
            "GUEST-WROTE",
            "4194304",
            "8192",
            "512",
            "4096",
            "512",
            "0",
            "1048576",
            "1",
            "ro-refused",
            "62:0 block special file",
            "62:10 block special file",
            "  98        0       4096 ubda",
            "  98       16       1024 ubdb",
            "8192",
            "98:0",
            "1",
        ],
        "{out}"
    );
    let after = std::fs::read(&img).unwrap();
    assert_eq!(&after[4103..4114], b"GUEST-WROTE");
    // Everything else is as the host wrote it.
    assert_eq!(&after[..4103], &data[..4103]);
    assert_eq!(&after[4114..], &data[4114..]);
    assert_eq!(std::fs::read(&ro).unwrap(), pattern(1 << 20, 2));
}

#[test]
fn ubd_parameters_are_checked() {
    let dir = TempDir::new("ubd-params");
    let missing = dir.path().join("missing.img");
    let out = sh(&[&format!("ubd0={}", path_str(&missing))], "true");
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("ubd0: cannot open"), "{out}");
    let out = sh(&["ubd0q=x"], "true");
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("unknown flag"), "{out}");
}

// --- COW files ------------------------------------------------------------

/// uml_mkcow makes the COW file; guest writes land in it and not in the
/// backing file; uml_moo merges them into a new image.
#[test]
fn cow_file_from_uml_mkcow_opens_and_merges_with_uml_moo() {
    let dir = TempDir::new("ubd-cow");
    let d = dir.path();
    let back = pattern(2 << 20, 3);
    std::fs::write(d.join("back.img"), &back).unwrap();
    host_ok("uml_mkcow", &["cow.img", "back.img"], d);
    let script = "printf SECTOR-SEVEN | dd of=/dev/ubda bs=512 seek=7 conv=notrunc 2>/dev/null; \
                  printf TAIL | dd of=/dev/ubda bs=1 seek=2097000 conv=notrunc 2>/dev/null; \
                  dd if=/dev/ubda bs=512 skip=7 count=1 2>/dev/null | head -c 12; echo; \
                  blockdev --getsize64 /dev/ubda";
    let cow = d.join("cow.img");
    let back_p = d.join("back.img");
    let out = sh(
        &[&format!("ubd0={},{}", path_str(&cow), path_str(&back_p))],
        script,
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout_lines(), vec!["SECTOR-SEVEN", "2097152"], "{out}");
    assert_eq!(
        std::fs::read(&back_p).unwrap(),
        back,
        "backing file changed"
    );
    // The COW file alone names its backing file: the writes are still there.
    let out = sh(
        &[&format!("ubd0={}", path_str(&cow))],
        "dd if=/dev/ubda bs=1 skip=2097000 count=4 2>/dev/null; echo",
    );
    assert_eq!(out.stdout_lines(), vec!["TAIL"], "{out}");
    host_ok("uml_moo", &["cow.img", "merged.img"], d);
    let merged = std::fs::read(d.join("merged.img")).unwrap();
    let mut expect = back.clone();
    expect[7 * 512..7 * 512 + 12].copy_from_slice(b"SECTOR-SEVEN");
    expect[2097000..2097004].copy_from_slice(b"TAIL");
    assert!(
        merged == expect,
        "uml_moo's merge differs from the expected image"
    );
}

/// A missing COW file is created (in UML's format: uml_moo reads it), and
/// a backing file changed since the COW file was made is refused.
#[test]
fn cow_file_is_created_on_first_use_and_checks_its_backing_file() {
    let dir = TempDir::new("ubd-cow-new");
    let d = dir.path();
    let back = pattern(1 << 20, 4);
    std::fs::write(d.join("back.img"), &back).unwrap();
    let param = format!(
        "ubd0={},{}",
        path_str(&d.join("new.cow")),
        path_str(&d.join("back.img"))
    );
    let out = sh(
        &[&param],
        "printf FIRST | dd of=/dev/ubda bs=512 seek=100 conv=notrunc 2>/dev/null",
    );
    assert_eq!(out.code(), 0, "{out}");
    let out = sh(
        &[&param],
        "dd if=/dev/ubda bs=512 skip=100 count=1 2>/dev/null | head -c 5; echo",
    );
    assert_eq!(out.stdout_lines(), vec!["FIRST"], "{out}");
    host_ok("uml_moo", &["new.cow", "merged.img"], d);
    let merged = std::fs::read(d.join("merged.img")).unwrap();
    assert_eq!(&merged[100 * 512..100 * 512 + 5], b"FIRST");
    assert_eq!(&merged[..100 * 512], &back[..100 * 512]);
    assert_eq!(std::fs::read(d.join("back.img")).unwrap(), back);
    // Touch the backing file: its mtime no longer matches the header.
    let t = std::fs::File::options()
        .write(true)
        .open(d.join("back.img"))
        .unwrap();
    t.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000))
        .unwrap();
    drop(t);
    let out = sh(&[&param], "true");
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("mtime mismatch"), "{out}");
}

// --- loop devices ---------------------------------------------------------

#[test]
fn losetup_binds_a_loop_device_to_a_guest_file() {
    let script = "cd /tmp && truncate -s 8M f && \
                  printf LOOPDATA | dd of=f bs=1k seek=2 conv=notrunc 2>/dev/null; \
                  D=$(losetup -f --show f); echo $D; \
                  losetup -l -n -O NAME,OFFSET,SIZELIMIT,RO,BACK-FILE; \
                  blockdev --getsize64 $D; \
                  dd if=$D bs=1k skip=2 count=1 2>/dev/null | head -c 8; echo; \
                  printf VIA-LOOP | dd of=$D bs=1k seek=3 conv=notrunc 2>/dev/null; \
                  dd if=f bs=1k skip=3 count=1 2>/dev/null | head -c 8; echo; \
                  losetup -d $D; losetup -a | wc -l; \
                  E=$(losetup -o 2048 --sizelimit 4096 -r -f --show f); \
                  blockdev --getsize64 --getro $E; head -c 8 $E; echo; \
                  echo x | dd of=$E 2>/dev/null || echo ro-refused; \
                  losetup -d $E; \
                  exec 3<>/dev/loop-control; echo ok";
    let out = sh(&[], script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "/dev/loop0",
            "/dev/loop0      0         0  0 /tmp/f",
            "8388608",
            "LOOPDATA",
            "VIA-LOOP",
            "0",
            "4096",
            "1",
            "LOOPDATA",
            "ro-refused",
            "ok",
        ],
        "{out}"
    );
}
