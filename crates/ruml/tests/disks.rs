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

/// ext3 with a clean journal mounts read-write (the journal left alone,
/// as Linux's ext2 driver does); ext4 (extents, 64bit, metadata_csum)
/// refuses read-write and reads correctly read-only.
#[test]
fn ext3_read_write_and_ext4_read_only() {
    let dir = TempDir::new("ext34");
    let d = dir.path();
    std::fs::create_dir_all(d.join("src/dir")).unwrap();
    let big = pattern(300_000, 7);
    std::fs::write(d.join("src/dir/big"), &big).unwrap();
    std::fs::write(d.join("src/small"), "small\n").unwrap();
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext3", "-d", "src", "e3.img", "32M"],
        d,
    );
    host_ok(
        "mke2fs",
        &["-q", "-t", "ext4", "-d", "src", "e4.img", "32M"],
        d,
    );
    let script = "mkdir -p /a /b && mount -t ext3 /dev/ubda /a && \
                  cat /a/small && md5sum < /a/dir/big && \
                  cp /a/dir/big /a/copy && echo new > /a/dir/new && rm /a/small && \
                  umount /a && \
                  { mount -w -t ext4 /dev/ubdb /b 2>/dev/null && echo ext4-rw || echo ext4-no-rw; } && \
                  mount -r -t ext4 /dev/ubdb /b && md5sum < /b/dir/big && cat /b/small && \
                  { echo x > /b/x 2>/dev/null || echo erofs; }";
    let out = sh(
        &[
            &format!("ubd0={}", path_str(&d.join("e3.img"))),
            &format!("ubd1={}", path_str(&d.join("e4.img"))),
        ],
        script,
    );
    assert_eq!(out.code(), 0, "{out}");
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
            "ext4-no-rw",
            md5.as_str(),
            "small",
            "erofs"
        ],
        "{out}"
    );
    e2fsck_clean(&d.join("e3.img"));
    e2fsck_clean(&d.join("e4.img"));
    assert_eq!(debugfs_cat(&d.join("e3.img"), "/copy"), big);
    assert_eq!(debugfs_cat(&d.join("e3.img"), "/dir/new"), b"new\n");
}

/// Inside the guest, with the host's own util-linux and e2fsprogs as
/// guests: truncate, mkfs.ext2, mount -o loop, copy a tree, umount (the
/// loop device clears itself); the host's e2fsck finds the image clean.
#[test]
fn mkfs_and_mount_o_loop_inside_the_guest() {
    let dir = TempDir::new("loop-mount");
    let d = dir.path();
    let script = "cd /hd && truncate -s 16M f.img && mkfs.ext2 -q f.img && \
                  mkdir -p /m && mount -o loop f.img /m && \
                  mkdir /m/tree && seq 1 50000 > /m/tree/nums && \
                  cp -r /etc/default /m/tree/ && echo copied > /m/tree/note && \
                  umount /m && losetup -a | wc -l && { grep -c loop0 /proc/partitions || true; }";
    let out = sh(&[&format!("mount={}:/hd", path_str(d))], script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout_lines(), vec!["0", "0"], "{out}");
    let img = d.join("f.img");
    e2fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/tree/note"), b"copied\n");
    let nums: String = (1..=50000).map(|i| format!("{i}\n")).collect();
    assert_eq!(debugfs_cat(&img, "/tree/nums"), nums.as_bytes());
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
    let out = sh(
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
    for run in 0..2u32 {
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
        let out = sh(&refs, walk);
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

/// root=/dev/ubda: boot from an ext2 disk holding a static busybox; the
/// guest writes and deletes files, halts, and the host's e2fsck finds
/// the image clean with the guest's files in it.
#[test]
fn boot_from_an_ext2_root_disk() {
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
        &["-q", "-t", "ext2", "-d", "rootfs", "root.img", "32M"],
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
        vec!["on the disk", "/dev/ubda / ext2 rw,relatime 0 0"],
        "{out}"
    );
    e2fsck_clean(&img);
    let nums: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(debugfs_cat(&img, "/data/n"), nums.as_bytes());
    let ls = host_ok("debugfs", &["-R", "ls /etc", "root.img"], d);
    assert!(!ls.contains("motd"), "{ls}");
}
