//! Disks: ubd devices over host files (raw and UML COW files, checked
//! against Debian's uml_mkcow and uml_moo), the block ioctls, loop
//! devices with util-linux's losetup, and ext2 read-write checked with
//! the host's e2fsprogs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run_ruml_raw, test_env, Output, TempDir};

fn sh(params: &[&str], script: &str) -> Output {
    sh_budget(params, script, common::TIMEOUT)
}

/// `sh` for boots that walk many disk images: their work grows with the
/// machine's load, so they get five minutes rather than one.
fn sh_long(params: &[&str], script: &str) -> Output {
    sh_budget(params, script, std::time::Duration::from_secs(300))
}

fn sh_budget(params: &[&str], script: &str, budget: std::time::Duration) -> Output {
    let mut args: Vec<&str> = vec!["quiet"];
    args.extend_from_slice(params);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    common::run_ruml_raw_budget(&args, &test_env(), budget)
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
    // ubd0s: synchronous writes (O_SYNC on the host file).
    let ro_param = format!("ubd1r={}", path_str(&ro));
    let out = sh(&[&format!("ubd0s={}", path_str(&img)), &ro_param], script);
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

// --- ext2 -----------------------------------------------------------------

fn workload_script() -> std::path::PathBuf {
    common::workspace_root().join("tests/scripts/ext2_workload.sh")
}

fn e2fsck_clean(img: &Path) {
    let out = Command::new(tool("e2fsck"))
        .args(["-fn"])
        .arg(img)
        .output()
        .expect("e2fsck");
    assert!(
        out.status.success(),
        "e2fsck -fn {} found errors:\n{}\n{}",
        img.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn debugfs_cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(tool("debugfs"))
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .output()
        .expect("debugfs");
    assert!(out.status.success(), "debugfs cat {path} failed");
    out.stdout
}

/// The host's mke2fs makes and prefills an image; the guest mounts it,
/// reads what the host put there and runs a file workload whose output
/// must match the same workload run natively; then the host's e2fsck
/// finds the image clean and debugfs reads the guest's files.
#[test]
fn ext2_workload_matches_native_and_e2fsck_is_clean() {
    let dir = TempDir::new("ext2-workload");
    let d = dir.path();
    let pre = d.join("pre");
    std::fs::create_dir_all(pre.join("sub")).unwrap();
    std::fs::write(pre.join("hello"), "from the host\n").unwrap();
    let nums: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    std::fs::write(pre.join("sub/nums"), &nums).unwrap();
    let img = d.join("ext2.img");
    host_ok(
        "mke2fs",
        &[
            "-q", "-t", "ext2", "-b", "1024", "-d", "pre", "ext2.img", "32M",
        ],
        d,
    );
    let native_dir = d.join("native");
    std::fs::create_dir(&native_dir).unwrap();
    let native = Command::new("/bin/sh")
        .arg(workload_script())
        .arg(&native_dir)
        .output()
        .expect("native workload");
    assert!(
        native.status.success(),
        "native workload failed: {native:?}"
    );
    let script = format!(
        "mkdir -p /mnt && mount -t ext2 /dev/ubda /mnt && cat /mnt/hello && \
         tail -n 1 /mnt/sub/nums && mkdir /mnt/w && sh {} /mnt/w && umount /mnt",
        workload_script().display()
    );
    let out = sh(&[&format!("ubd0={}", path_str(&img))], &script);
    assert_eq!(out.code(), 0, "{out}");
    let expect = format!(
        "from the host\n3000\n{}",
        String::from_utf8_lossy(&native.stdout)
    );
    if out.stdout != expect {
        panic!(
            "guest output differs from native:\n{}",
            common::line_diff(&expect, &out.stdout)
        );
    }
    e2fsck_clean(&img);
    assert_eq!(
        debugfs_cat(&img, "/w/d/log2"),
        std::fs::read(native_dir.join("d/log2")).unwrap()
    );
    assert_eq!(
        debugfs_cat(&img, "/w/big"),
        std::fs::read(native_dir.join("big")).unwrap()
    );
    assert_eq!(
        debugfs_cat(&img, "/w/d/b2/nums"),
        std::fs::read(native_dir.join("d/b2/nums")).unwrap()
    );
}

/// ext3 and ext4 (extents, 64bit, flex_bg, metadata_csum, the journal)
/// mount read-write; an ext4 image with a read-only-compatible feature
/// ruml does not maintain (quota) mounts read-only only, and one with an
/// incompatible feature it does not know (inline_data) not at all.
#[test]
fn ext3_and_ext4_read_write_unknown_features_refused() {
    let dir = TempDir::new("ext34");
    let d = dir.path();
    std::fs::create_dir_all(d.join("src/dir")).unwrap();
    let big = pattern(300_000, 7);
    std::fs::write(d.join("src/dir/big"), &big).unwrap();
    std::fs::write(d.join("src/small"), "small\n").unwrap();
    for (img, args) in [
        ("e3.img", &["-t", "ext3"][..]),
        ("e4.img", &["-t", "ext4"][..]),
        ("q4.img", &["-t", "ext4", "-O", "quota"][..]),
        ("i4.img", &["-t", "ext4", "-O", "inline_data"][..]),
    ] {
        let mut a = vec!["-q"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-d", "src", img, "32M"]);
        host_ok("mke2fs", &a, d);
    }
    std::fs::copy(d.join("q4.img"), d.join("q4.img.orig")).unwrap();
    let script = "mkdir -p /a /b /c && for t in ext3 ext4; do \
                    dev=/dev/ubda; [ $t = ext4 ] && dev=/dev/ubdb; \
                    mount -t $t $dev /a && cat /a/small && md5sum < /a/dir/big && \
                    cp /a/dir/big /a/copy && echo new > /a/dir/new && rm /a/small && \
                    umount /a || exit 1; done; \
                  { mount -w -t ext4 /dev/ubdc /b 2>/dev/null && echo quota-rw || echo quota-no-rw; } && \
                  mount -r -t ext4 /dev/ubdc /b && md5sum < /b/dir/big && \
                  { echo x > /b/x 2>/dev/null || echo erofs; } && \
                  { mount -r -t ext4 /dev/ubdd /c 2>/dev/null && echo inline-mounted || echo inline-refused; }";
    let out = sh(
        &[
            &format!("ubd0={}", path_str(&d.join("e3.img"))),
            &format!("ubd1={}", path_str(&d.join("e4.img"))),
            &format!("ubd2={}", path_str(&d.join("q4.img"))),
            &format!("ubd3={}", path_str(&d.join("i4.img"))),
        ],
        script,
    );
    assert_eq!(out.code(), 0, "{out}");
    // Mounted read-only, q4.img is not written at all (e2fsck is no
    // judge of it: mke2fs -d leaves its quota files stale).
    let q4_before = std::fs::read(d.join("q4.img.orig")).unwrap();
    assert!(
        std::fs::read(d.join("q4.img")).unwrap() == q4_before,
        "q4.img changed"
    );
    let md5 = {
        let o = Command::new("md5sum")
            .stdin(std::fs::File::open(d.join("src/dir/big")).unwrap())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(
        out.stdout_lines(),
        vec![
            "small",
            md5.as_str(),
            "small",
            md5.as_str(),
            "quota-no-rw",
            md5.as_str(),
            "erofs",
            "inline-refused"
        ],
        "{out}"
    );
    for img in ["e3.img", "e4.img"] {
        let img = d.join(img);
        e2fsck_clean(&img);
        assert_eq!(debugfs_cat(&img, "/dir/big"), big);
    }
    for img in ["e3.img", "e4.img"] {
        let img = d.join(img);
        assert_eq!(debugfs_cat(&img, "/copy"), big);
        assert_eq!(debugfs_cat(&img, "/dir/new"), b"new\n");
        let ls = host_ok("debugfs", &["-R", "ls /", path_str(&img)], d);
        assert!(!ls.contains("small"), "{ls}");
    }
}

/// The file workload on ext4 as the host's mke2fs makes it (1 KiB and
/// 4 KiB blocks): output as native, e2fsck clean, debugfs reads the
/// guest's files; plus files with hundreds of extents (trees with index
/// levels, written in any order, truncated) and an htree directory
/// (indexed by e2fsck -D) that grows and shrinks.
#[test]
fn ext4_workload_extents_and_htree_e2fsck_clean() {
    let dir = TempDir::new("ext4-workload");
    let d = dir.path();
    let native_dir = d.join("native");
    std::fs::create_dir(&native_dir).unwrap();
    let native = Command::new("/bin/sh")
        .arg(workload_script())
        .arg(&native_dir)
        .output()
        .expect("native workload");
    assert!(
        native.status.success(),
        "native workload failed: {native:?}"
    );
    std::fs::create_dir_all(d.join("pre/big")).unwrap();
    for i in 0..600 {
        std::fs::write(
            d.join(format!("pre/big/a_long_file_name_{i}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let sparse = concat!(
        "import os, sys\n",
        "f = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)\n",
        "for k in list(range(0, 3000, 2)) + list(range(2999, 0, -6)):\n",
        "    os.pwrite(f, b'%08d' % k * 512, k * 4096)\n",
        "os.close(f)\n"
    );
    std::fs::write(d.join("sparse.py"), sparse).unwrap();
    let py = Command::new("python3")
        .arg(d.join("sparse.py"))
        .arg(native_dir.join("sparse"))
        .status()
        .unwrap();
    assert!(py.success());
    let sparse_native = std::fs::read(native_dir.join("sparse")).unwrap();
    for bs in ["1024", "4096"] {
        let img = d.join(format!("e4-{bs}.img"));
        host_ok(
            "mke2fs",
            &[
                "-q",
                "-t",
                "ext4",
                "-b",
                bs,
                "-d",
                "pre",
                path_str(&img),
                "64M",
            ],
            d,
        );
        // An htree index on the big directory.
        let _ = host("e2fsck", &["-fyD", path_str(&img)], d);
        e2fsck_clean(&img);
        let script = format!(
            "mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt && mkdir /mnt/w && \
             sh {} /mnt/w && python3 {} /mnt/sparse && \
             i=0; while [ $i -lt 300 ]; do echo $i > /mnt/big/added_$i; i=$((i+1)); done; \
             rm /mnt/big/a_long_file_name_1* && ls /mnt/big | wc -l && \
             cp /mnt/sparse /mnt/sparse2 && truncate -s 5000000 /mnt/sparse2 && umount /mnt",
            workload_script().display(),
            path_str(&d.join("sparse.py"))
        );
        let out = sh(&[&format!("ubd0={}", path_str(&img))], &script);
        assert_eq!(out.code(), 0, "{out}");
        let expect = format!("{}789\n", String::from_utf8_lossy(&native.stdout));
        if out.stdout != expect {
            panic!(
                "guest output differs from native ({bs}-byte blocks):\n{}",
                common::line_diff(&expect, &out.stdout)
            );
        }
        e2fsck_clean(&img);
        for f in ["d/log2", "big", "d/b2/nums"] {
            assert_eq!(
                debugfs_cat(&img, &format!("/w/{f}")),
                std::fs::read(native_dir.join(f)).unwrap(),
                "{f}"
            );
        }
        assert_eq!(debugfs_cat(&img, "/sparse"), sparse_native);
        assert_eq!(debugfs_cat(&img, "/sparse2"), &sparse_native[..5_000_000]);
        assert_eq!(debugfs_cat(&img, "/big/added_299"), b"299\n");
    }
}

/// kill -9 of ruml in the middle of a write-heavy workload on an ext4
/// disk, 20 times (the shell holds an unlinked file open: an orphan):
/// each next boot replays the journal at mount, frees the orphan, finds
/// every file fsync'ed before the kills, and the host's e2fsck (run as
/// a guest after umount, and on the host at the end) finds the
/// filesystem clean. The kill comes after a chosen number of workload
/// rounds, not after a time.
#[test]
fn ext4_survives_kill_9_during_writes() {
    let dir = TempDir::new("ext4-crash");
    let d = dir.path();
    let img = d.join("c.img");
    host_ok("mke2fs", &["-q", "-t", "ext4", path_str(&img), "64M"], d);
    let script = d.join("crash.sh");
    std::fs::write(
        &script,
        "mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt || { echo MOUNT-FAILED; exit 1; }\n\
r=$(cat /mnt/round 2>/dev/null || echo 0)\n\
k=1; while [ $k -le $r ]; do cat /mnt/keep$k || echo MISSING$k; k=$((k+1)); done\n\
umount /mnt\n\
if e2fsck -fn /dev/ubda >/tmp/fsck.out 2>&1; then echo FSCK-CLEAN; else echo FSCK-ERRORS; cat /tmp/fsck.out; fi\n\
[ \"$1\" = check ] && exit 0\n\
mount -t ext4 /dev/ubda /mnt && cd /mnt && mkdir -p d\n\
r=$((r+1)); echo $r > round; seq 1 $((r * 1000)) > keep$r\n\
exec 3> held; seq 1 20000 >&3; rm held; sync\n\
echo START\n\
i=0\n\
while true; do\n\
  i=$((i+1))\n\
  mkdir -p d/$((i % 7))\n\
  seq 1 $((i * 37 % 5000)) > d/$((i % 7))/f$i\n\
  cat d/$((i % 7))/f$i > d/c$((i % 13))\n\
  rm -f d/$(( (i+3) % 7))/f$((i-5))\n\
  mv d/c$((i % 13)) d/m$((i % 11)) 2>/dev/null\n\
  head -c $((i * 7919 % 300000)) /dev/zero > d/z$((i % 5))\n\
  [ $((i % 3)) = 0 ] && sync\n\
  echo iter $i\n\
done\n",
    )
    .unwrap();
    let keeps = |r: usize| -> Vec<String> {
        (1..=r)
            .flat_map(|k| (1..=k * 1000).map(|n| n.to_string()))
            .collect()
    };
    let mut seed = 12345u32;
    for round in 0..20usize {
        seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
        let want = 2 + (seed >> 16) % 25;
        let out_path = d.join("out");
        let mut child = Command::new(common::ruml_bin())
            .arg("quiet")
            // RUML_TEST_MODE's backend, as the harness's runs get it.
            .args(common::test_mode().map(|m| format!("mode={m}")))
            .args([&format!("ubd0={}", path_str(&img)), "--", "/bin/sh"])
            .arg(&script)
            .env_clear()
            .envs(test_env())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(d.join("err")).unwrap())
            .spawn()
            .expect("start ruml");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        let marker = format!("iter {want}\n");
        loop {
            let out = std::fs::read_to_string(&out_path).unwrap_or_default();
            if out.contains(&marker) {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "round {round}: ruml exited ({st:?}):\n{out}\n{}",
                    std::fs::read_to_string(d.join("err")).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no progress:\n{out}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let out = std::fs::read_to_string(&out_path).unwrap();
        let head: Vec<&str> = out.lines().take_while(|l| *l != "START").collect();
        let mut expect = keeps(round);
        expect.push("FSCK-CLEAN".into());
        assert_eq!(head, expect, "round {round}:\n{out}");
    }
    let out = sh(
        &[&format!("ubd0={}", path_str(&img))],
        &format!("sh {} check", path_str(&script)),
    );
    assert_eq!(out.code(), 0, "{out}");
    let mut expect = keeps(20);
    expect.push("FSCK-CLEAN".into());
    assert_eq!(out.stdout_lines(), expect, "{out}");
    e2fsck_clean(&img);
    let k20: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(debugfs_cat(&img, "/keep20"), k20.as_bytes());
}

/// Inside the guest, with the host's own util-linux and e2fsprogs as
/// guests: truncate, mkfs.ext2 / mkfs.ext4, mount -o loop, copy a tree,
/// umount (the loop device clears itself); the host's e2fsck finds each
/// image clean.
#[test]
fn mkfs_and_mount_o_loop_inside_the_guest() {
    let dir = TempDir::new("loop-mount");
    let d = dir.path();
    let script = "cd /hd && for t in ext2 ext4; do \
                    truncate -s 64M $t.img && mkfs.$t -q $t.img && \
                    mkdir -p /m && mount -o loop $t.img /m && \
                    mkdir /m/tree && seq 1 50000 > /m/tree/nums && \
                    cp -r /etc/default /m/tree/ && echo copied > /m/tree/note && \
                    umount /m && losetup -a | wc -l && { grep -c loop0 /proc/partitions || true; } \
                    || exit 1; done";
    let out = sh(&[&format!("mount={}:/hd", path_str(d))], script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout_lines(), vec!["0", "0", "0", "0"], "{out}");
    for t in ["ext2", "ext4"] {
        let img = d.join(format!("{t}.img"));
        e2fsck_clean(&img);
        assert_eq!(debugfs_cat(&img, "/tree/note"), b"copied\n");
        let nums: String = (1..=50000).map(|i| format!("{i}\n")).collect();
        assert_eq!(debugfs_cat(&img, "/tree/nums"), nums.as_bytes());
    }
}

/// A truncated image and images with random corruption in their
/// metadata: the mount fails or I/O gives errors; the kernel never
/// panics or hangs, and every image is visited.
#[test]
fn corrupt_ext2_images_give_errors_not_panics() {
    let dir = TempDir::new("ext2-corrupt");
    let d = dir.path();
    std::fs::create_dir_all(d.join("src/dir1/dir2")).unwrap();
    for i in 0..60 {
        std::fs::write(d.join(format!("src/dir1/f{i}")), format!("file {i}\n")).unwrap();
    }
    let nums: String = (1..=30000).map(|i| format!("{i}\n")).collect();
    std::fs::write(d.join("src/dir1/dir2/big"), nums).unwrap();
    std::os::unix::fs::symlink("dir1/f1", d.join("src/s1")).unwrap();
    host_ok(
        "mke2fs",
        &[
            "-q", "-t", "ext2", "-b", "1024", "-N", "128", "-d", "src", "base.img", "2M",
        ],
        d,
    );
    let base = std::fs::read(d.join("base.img")).unwrap();
    // A truncated image.
    std::fs::write(d.join("trunc.img"), &base[..base.len() / 2]).unwrap();
    let out = sh_long(
        &[&format!("ubd0={}", path_str(&d.join("trunc.img")))],
        "mkdir -p /m; mount -t ext2 /dev/ubda /m 2>/dev/null || echo refused",
    );
    assert_eq!(out.stdout_lines(), vec!["refused"], "{out}");
    assert!(out.stderr.contains("bad geometry"), "{out}");
    let walk = "for d in a b c d e f g h i j k l m n o p; do mkdir -p /m$d; \
                if mount -t ext2 /dev/ubd$d /m$d 2>/dev/null; then \
                (ls -laR /m$d; for f in /m$d/dir1/* /m$d/dir1/dir2/big /m$d/s1; do head -c 100000 $f; done; \
                 echo x > /m$d/new; mkdir /m$d/nd; mv /m$d/dir1/f2 /m$d/nd/; rm -rf /m$d/dir1) >/dev/null 2>&1; \
                umount /m$d; fi; echo $d; done";
    // ext4 (extents, flex_bg, 64bit, metadata_csum, a journal),
    // read-write.
    host_ok(
        "mke2fs",
        &[
            "-q",
            "-t",
            "ext4",
            "-N",
            "128",
            "-d",
            "src",
            "base4.img",
            "4M",
        ],
        d,
    );
    let base4 = std::fs::read(d.join("base4.img")).unwrap();
    let walk4 = walk.replace("mount -t ext2", "mount -t ext4");
    for run in 0..4u32 {
        let (base, walk) = if run < 2 {
            (&base, walk.to_string())
        } else {
            (&base4, walk4.clone())
        };
        let mut params = Vec::new();
        for k in 0..16u32 {
            let n = run * 16 + k;
            let mut img = base.clone();
            let noise = pattern(1024, 100 + n);
            let count = [5usize, 30, 200][(n % 3) as usize];
            for j in 0..count {
                let at = 1024
                    + (u32::from_le_bytes([
                        noise[j % 1000],
                        noise[j % 1000 + 1],
                        noise[j % 1000 + 2],
                        0,
                    ]) as usize
                        % (119 * 1024));
                img[at] = noise[(j * 7) % 1024];
            }
            let p = d.join(format!("c{n}.img"));
            std::fs::write(&p, &img).unwrap();
            params.push(format!("ubd{k}={}", path_str(&p)));
        }
        let refs: Vec<&str> = params.iter().map(|s| s.as_str()).collect();
        let out = sh_long(&refs, &walk);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout_lines().len(), 16, "{out}");
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
}

/// Two instances share one ext2 backing image through their own COW
/// files and change different things; the backing file stays byte for
/// byte the same; uml_moo merges one COW file into an image that
/// e2fsck finds clean, with that instance's changes only.
#[test]
fn two_instances_share_a_backing_image_through_cow_files() {
    let dir = TempDir::new("cow-ext2");
    let d = dir.path();
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(d.join("src/shared"), "shared\n").unwrap();
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext2", "-d", "src", "back.img", "16M"],
        d,
    );
    let back = std::fs::read(d.join("back.img")).unwrap();
    for who in ["one", "two"] {
        let param = format!(
            "ubd0={},{}",
            path_str(&d.join(format!("{who}.cow"))),
            path_str(&d.join("back.img"))
        );
        let script = format!(
            "mkdir -p /m && mount -t ext2 /dev/ubda /m && cat /m/shared && \
             echo {who} > /m/{who} && rm /m/shared && mkdir /m/dir-{who} && umount /m"
        );
        let out = sh(&[&param], &script);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout_lines(), vec!["shared"], "{out}");
    }
    assert!(
        std::fs::read(d.join("back.img")).unwrap() == back,
        "the backing file changed"
    );
    host_ok("uml_moo", &["one.cow", "one.img"], d);
    let img = d.join("one.img");
    e2fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/one"), b"one\n");
    let ls = host_ok("debugfs", &["-R", "ls /", "one.img"], d);
    assert!(
        ls.contains("dir-one") && !ls.contains("two") && !ls.contains("shared"),
        "{ls}"
    );
}

/// root=/dev/ubda: boot from an ext2 or ext4 disk holding a static
/// busybox; the guest writes and deletes files, halts, and the host's
/// e2fsck finds the image clean with the guest's files in it.
#[test]
fn boot_from_an_ext2_root_disk() {
    boot_from_a_root_disk("ext2");
}

#[test]
fn boot_from_an_ext4_root_disk() {
    boot_from_a_root_disk("ext4");
}

fn boot_from_a_root_disk(fstype: &str) {
    let dir = TempDir::new("ubd-root");
    let d = dir.path();
    let busybox = tool("busybox");
    for sub in ["bin", "dev", "proc", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(d.join("rootfs").join(sub)).unwrap();
    }
    std::fs::copy(&busybox, d.join("rootfs/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", d.join("rootfs/bin/sh")).unwrap();
    std::fs::write(d.join("rootfs/etc/motd"), "on the disk\n").unwrap();
    host_ok(
        "mke2fs",
        &["-q", "-t", fstype, "-d", "rootfs", "root.img", "32M"],
        d,
    );
    let img = d.join("root.img");
    let out = run_ruml_raw(
        &[
            "quiet",
            &format!("ubd0={}", path_str(&img)),
            "root=/dev/ubda",
            "--",
            "sh",
            "-c",
            "cat /etc/motd && busybox mkdir /data && busybox seq 1 1000 > /data/n && \
             busybox rm /etc/motd && busybox grep ' / ' /proc/mounts && busybox sync",
        ],
        &test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "on the disk".to_string(),
            format!("/dev/ubda / {fstype} rw,relatime 0 0")
        ],
        "{out}"
    );
    e2fsck_clean(&img);
    let nums: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(debugfs_cat(&img, "/data/n"), nums.as_bytes());
    let ls = host_ok("debugfs", &["-R", "ls /etc", "root.img"], d);
    assert!(!ls.contains("motd"), "{ls}");
}

/// mount -o remount,rw / remount,ro switch an ext2 filesystem itself; an
/// ext4 image with a feature ruml does not write (quota) cannot be
/// remounted read-write.
#[test]
fn remount_switches_a_disk_filesystem_between_ro_and_rw() {
    let dir = TempDir::new("remount");
    let d = dir.path();
    host_ok("mke2fs", &["-q", "-t", "ext2", "r.img", "8M"], d);
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext4", "-O", "quota", "r4.img", "8M"],
        d,
    );
    let script = "mkdir -p /m /n && mount -r /dev/ubda /m && \
                  { echo a > /m/a 2>/dev/null || echo ro; } && \
                  mount -o remount,rw /m && echo b > /m/b && cat /m/b && \
                  mount -o remount,ro /m && { echo c > /m/c 2>/dev/null || echo ro; } && \
                  grep ' /m ' /proc/mounts && mount -r /dev/ubdb /n && \
                  { mount -o remount,rw /n 2>/dev/null || echo ext4-stays-ro; }";
    let out = sh(
        &[
            &format!("ubd0={}", path_str(&d.join("r.img"))),
            &format!("ubd1={}", path_str(&d.join("r4.img"))),
        ],
        script,
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "ro",
            "b",
            "ro",
            "/dev/ubda /m ext2 ro,relatime 0 0",
            "ext4-stays-ro"
        ],
        "{out}"
    );
    let img = d.join("r.img");
    e2fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/b"), b"b\n");
}

/// Partition tables: an MBR disk and a GPT disk show their partitions
/// (ubda1, ubdb3: numbered by table slot), with Linux's minors; a
/// filesystem made by the host inside a partition mounts and takes
/// writes that land inside that partition only.
#[test]
fn mbr_and_gpt_partitions_appear_as_devices() {
    let dir = TempDir::new("parts");
    let d = dir.path();
    // MBR: partition 1 at 1 MiB (8 MiB), partition 2 at 9 MiB (2 MiB).
    let mut mbr_disk = vec![0u8; 16 << 20];
    let put_entry = |disk: &mut Vec<u8>, i: usize, ty: u8, start: u32, n: u32| {
        let o = 446 + 16 * i;
        disk[o + 4] = ty;
        disk[o + 8..o + 12].copy_from_slice(&start.to_le_bytes());
        disk[o + 12..o + 16].copy_from_slice(&n.to_le_bytes());
    };
    put_entry(&mut mbr_disk, 0, 0x83, 2048, 16384);
    put_entry(&mut mbr_disk, 1, 0x83, 18432, 4096);
    mbr_disk[510] = 0x55;
    mbr_disk[511] = 0xAA;
    std::fs::write(d.join("mbr.img"), &mbr_disk).unwrap();
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext2", "-E", "offset=1048576", "mbr.img", "8M"],
        d,
    );
    // GPT: a protective MBR, the header at LBA 1, entries at LBA 2; slot 3
    // (index 2) holds a partition at LBA 12288..14335.
    let mut gpt = vec![0u8; 8 << 20];
    put_entry(&mut gpt, 0, 0xEE, 1, 16383);
    gpt[510] = 0x55;
    gpt[511] = 0xAA;
    gpt[512..520].copy_from_slice(b"EFI PART");
    gpt[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
    gpt[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
    gpt[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
    let e = 1024 + 2 * 128;
    gpt[e..e + 16].fill(0x11);
    gpt[e + 32..e + 40].copy_from_slice(&12288u64.to_le_bytes());
    gpt[e + 40..e + 48].copy_from_slice(&14335u64.to_le_bytes());
    std::fs::write(d.join("gpt.img"), &gpt).unwrap();
    let script = "grep ubd /proc/partitions; \
                  blockdev --getsize64 /dev/ubda1 /dev/ubda2 /dev/ubdb3; \
                  stat -c '%t:%T' /dev/ubda2 /dev/ubdb3; \
                  mkdir -p /m && mount /dev/ubda1 /m && echo in-part > /m/f && umount /m && \
                  printf GPTDATA > /dev/ubdb3 && blockdev --rereadpt /dev/ubda && echo reread";
    let out = sh(
        &[
            &format!("ubd0={}", path_str(&d.join("mbr.img"))),
            &format!("ubd1={}", path_str(&d.join("gpt.img"))),
        ],
        script,
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "  98        0      16384 ubda",
            "  98        1       8192 ubda1",
            "  98        2       2048 ubda2",
            "  98       16       8192 ubdb",
            "  98       19       1024 ubdb3",
            "8388608",
            "2097152",
            "1048576",
            "62:2",
            "62:13",
            "reread",
        ],
        "{out}"
    );
    let after = std::fs::read(d.join("mbr.img")).unwrap();
    std::fs::write(d.join("p1.img"), &after[1 << 20..9 << 20]).unwrap();
    e2fsck_clean(&d.join("p1.img"));
    assert_eq!(debugfs_cat(&d.join("p1.img"), "/f"), b"in-part\n");
    assert_eq!(
        &after[9 << 20..],
        &mbr_disk[9 << 20..],
        "writes left the partition"
    );
    let g = std::fs::read(d.join("gpt.img")).unwrap();
    assert_eq!(&g[12288 * 512..12288 * 512 + 7], b"GPTDATA");
}

/// As UML: a disk file in use elsewhere (here a host process holding a
/// write lock on it, as another instance would) is refused, not shared.
#[test]
fn a_locked_disk_file_is_refused() {
    use std::io::BufRead;
    let dir = TempDir::new("ubd-lock");
    let img = dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\n\
             f=open(sys.argv[1],'r+')\n\
             fcntl.lockf(f,fcntl.LOCK_EX)\n\
             print('locked',flush=True)\n\
             sys.stdin.read()",
        ])
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let rw = sh(&[&format!("ubd0={}", path_str(&img))], "true");
    let ro = sh(&[&format!("ubd0r={}", path_str(&img))], "true");
    drop(holder.stdin.take());
    let _ = holder.wait();
    assert_ne!(rw.code(), 0, "{rw}");
    assert!(rw.stderr.contains("locked"), "{rw}");
    assert_ne!(ro.code(), 0, "{ro}");
    // Once the holder is gone, the disk opens.
    let ok = sh(&[&format!("ubd0={}", path_str(&img))], "true");
    assert_eq!(ok.code(), 0, "{ok}");
}

/// An ext4 directory listed while another guest process adds names to it
/// (tests/guest/readdir_grow.c: getdents64 with a small buffer, so the
/// splits of the htree's leaves land between calls): no listing names an
/// entry twice and every listing names every entry present throughout,
/// as natively; then the host's e2fsck finds the image clean.
#[test]
fn ext4_readdir_while_another_process_splits_the_directory() {
    let dir = TempDir::new("ext4-readdir-grow");
    let d = dir.path();
    let guest = common::build_guest("readdir_grow", common::Flavour::Static);
    let native_dir = d.join("native");
    std::fs::create_dir(&native_dir).unwrap();
    let native = Command::new(&guest.path)
        .arg(&native_dir)
        .args(["400", "3000"])
        .output()
        .expect("native run");
    assert!(native.status.success(), "native: {native:?}");
    let img = d.join("rd.img");
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext4", "-b", "1024", path_str(&img), "32M"],
        d,
    );
    let script = format!(
        "mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt && mkdir /mnt/d && \
         {} /mnt/d 400 3000 && umount /mnt",
        guest.path.display()
    );
    let out = sh_long(&[&format!("ubd0={}", path_str(&img))], &script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, String::from_utf8_lossy(&native.stdout), "{out}");
    e2fsck_clean(&img);
}

/// File reads on ext4 (1 KiB and 4 KiB blocks) at many offsets and sizes:
/// pread across blocks, holes and the end of the file, readv over several
/// buffers, read() in odd chunks; each pattern twice (the second time from
/// the data cache), on files the host's mke2fs put there and on files
/// the guest wrote; the digests match the same reads natively.
#[test]
fn ext4_reads_at_any_offset_and_size_match_native() {
    let dir = TempDir::new("ext4-reads");
    let d = dir.path();
    let script = common::workspace_root().join("tests/scripts/ext4_read_patterns.py");
    let pre = d.join("pre");
    std::fs::create_dir(&pre).unwrap();
    let made = Command::new("python3")
        .arg(&script)
        .args(["make", path_str(&pre)])
        .status()
        .unwrap();
    assert!(made.success());
    let native = Command::new("python3")
        .arg(&script)
        .args(["read", path_str(&pre), "2"])
        .output()
        .expect("native reads");
    assert!(native.status.success(), "native: {native:?}");
    let native = String::from_utf8_lossy(&native.stdout).to_string();
    for bs in ["1024", "4096"] {
        let img = d.join(format!("r-{bs}.img"));
        host_ok(
            "mke2fs",
            &[
                "-q",
                "-t",
                "ext4",
                "-b",
                bs,
                "-d",
                "pre",
                path_str(&img),
                "32M",
            ],
            d,
        );
        let py = path_str(&script);
        let cmd = format!(
            "mkdir -p /mnt && mount -t ext4 /dev/ubda /mnt && python3 {py} read /mnt 2 && \
             mkdir /mnt/g && python3 {py} make /mnt/g && python3 {py} read /mnt/g 2 && \
             umount /mnt"
        );
        let out = sh_long(&[&format!("ubd0={}", path_str(&img))], &cmd);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(
            out.stdout,
            format!("{native}{native}"),
            "{bs}-byte blocks: {out}"
        );
        e2fsck_clean(&img);
    }
}
