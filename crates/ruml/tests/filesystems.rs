//! Filesystems: the overlay root is a private sandbox (the host never
//! changes), tmpfs behaves as a Linux filesystem (differentially against
//! the host's /tmp), hostfs mounts write through to the host, and nothing
//! a guest does reaches a host file outside its root.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{
    assert_same, build_guest, run_native, run_ruml, run_ruml_raw, test_env, Flavour, Output,
    TempDir,
};

/// Runs `script` under ruml's sh. `$S` is a scratch directory of the
/// guest's own under /tmp: the overlay shows the host's /tmp, so a fixed
/// name there could already be taken on the host.
fn sh(params: &[&str], script: &str) -> Output {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let full = format!(
        "S=/tmp/ruml-scratch-{}-{n}; mkdir $S 2>/dev/null; {script}",
        std::process::id()
    );
    let mut args: Vec<&str> = vec!["quiet"];
    args.extend_from_slice(params);
    args.extend_from_slice(&["--", "/bin/sh", "-c", &full]);
    run_ruml_raw(&args, &test_env())
}

// --- the overlay root -----------------------------------------------------

#[test]
fn overlay_root_is_a_private_sandbox() {
    let passwd_before = std::fs::read("/etc/passwd").expect("host /etc/passwd");
    let script = "echo x > /etc/passwd; cat /etc/passwd; \
                  rm /bin/ls; /bin/ls / >/dev/null 2>&1 || echo ls-gone; \
                  test -e /bin/ls || echo no-bin-ls; \
                  mkdir -p /usr/local/ruml-new/a && echo new > /usr/local/ruml-new/a/f && cat /usr/local/ruml-new/a/f; \
                  cp /bin/cat $S/c && chmod 755 $S/c && $S/c /etc/passwd";
    let out = sh(&[], script);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec!["x", "ls-gone", "no-bin-ls", "new", "x"],
        "{out}"
    );
    assert_eq!(
        std::fs::read("/etc/passwd").unwrap(),
        passwd_before,
        "the host's /etc/passwd changed"
    );
    assert!(Path::new("/bin/ls").exists(), "the host's /bin/ls is gone");
    assert!(
        !Path::new("/usr/local/ruml-new").exists(),
        "a guest directory reached the host"
    );
}

#[test]
fn overlay_whiteouts_and_opaque_directories() {
    // /etc exists everywhere; /etc/ruml-x does not.
    let script = "rm -rf /etc/default && test ! -e /etc/default && echo removed; \
                  ls /etc | grep -cx default; \
                  mkdir /etc/default && ls -A /etc/default | wc -l; \
                  echo a > /etc/hostname.new && mv /etc/hostname.new /etc/ruml-x && cat /etc/ruml-x; \
                  ln /etc/passwd $S/pw && test /etc/passwd -ef $S/pw && echo linked";
    if !Path::new("/etc/default").is_dir() {
        return;
    }
    let out = sh(&[], script);
    assert_eq!(
        out.stdout_lines(),
        vec!["removed", "0", "0", "a", "linked"],
        "{out}"
    );
    assert!(Path::new("/etc/default").is_dir());
    assert!(!Path::new("/etc/ruml-x").exists());
}

#[test]
fn programs_run_from_tmp_and_see_rewrites() {
    // exec maps the file's pages: a rewritten program must run anew.
    let script = "cp /bin/true $S/p && $S/p && echo one; \
                  cp /bin/false $S/p; $S/p; echo $?; \
                  cat /bin/true > $S/p; $S/p; echo $?";
    let out = sh(&[], script);
    assert_eq!(out.stdout_lines(), vec!["one", "1", "0"], "{out}");
}

#[test]
fn rootfstype_hostfs_is_read_only() {
    let out = sh(&["rootfstype=hostfs"], "echo x > /etc/ruml-ro-test 2>/dev/null || echo erofs; touch /tmp/x 2>&1 | grep -c Read-only");
    assert_eq!(out.stdout_lines(), vec!["erofs", "1"], "{out}");
    assert!(!Path::new("/etc/ruml-ro-test").exists());
}

// --- tmpfs ----------------------------------------------------------------

fn tmpfs_ops(flavour: Flavour) {
    let guest = build_guest("tmpfs_ops", flavour);
    let env = test_env();
    let host_dir = std::env::temp_dir().join(format!(
        "ruml-tmpfs-ops-{}-{}",
        std::process::id(),
        flavour.name()
    ));
    let _ = std::fs::remove_dir_all(&host_dir);
    let native = run_native(&guest.path, &[host_dir.as_os_str()], &env);
    let _ = std::fs::remove_dir_all(&host_dir);
    assert_eq!(native.code(), 0, "{native}");
    assert!(native.stdout.contains("same inode 1"), "{native}");
    let ruml = run_ruml(&guest.path, &["/tmp/ruml-tmpfs-ops"], &env);
    // The directory argument is printed nowhere, so the outputs compare.
    assert_same(&native, &ruml);
}

#[test]
fn tmpfs_ops_static() {
    tmpfs_ops(Flavour::Static);
}

#[test]
fn tmpfs_ops_dynamic() {
    tmpfs_ops(Flavour::Dynamic);
}

#[test]
fn tmpfs_mounts_remounts_and_umount() {
    let script = "mkdir $S/m && mount -t tmpfs -o size=64k,mode=700 none $S/m && stat -c %a $S/m; \
                  dd if=/dev/zero of=$S/m/f bs=4k count=100 2>/dev/null || echo enospc; \
                  stat -c %s $S/m/f; \
                  cd $S/m && umount $S/m 2>/dev/null || echo busy; cd /; \
                  mount -o remount,ro $S/m && (touch $S/m/g 2>/dev/null || echo rofs); \
                  umount $S/m && test ! -e $S/m/f && echo unmounted; \
                  mount -t nosuchfs none $S/m 2>/dev/null || echo enodev; \
                  umount /tmp 2>/dev/null || echo einval; \
                  mount -t proc proc $S/m && test -e $S/m/self/stat && echo proc; umount $S/m; \
                  mount --bind /etc $S/m && test -e $S/m/passwd && echo bind; umount $S/m; \
                  grep -c ' /dev/shm tmpfs' /proc/mounts";
    let out = sh(&[], script);
    let lines = out.stdout_lines();
    assert_eq!(
        &lines[..lines.len().min(9)],
        &[
            "700",
            "enospc",
            "65536",
            "busy",
            "rofs",
            "unmounted",
            "enodev",
            "einval",
            "proc"
        ],
        "{out}"
    );
    assert_eq!(lines.get(9), Some(&"bind"), "{out}");
}

// --- hostfs ---------------------------------------------------------------

#[test]
fn hostfs_mounts_write_through() {
    let dir = TempDir::new("hostfs-rw");
    std::fs::write(dir.path().join("old"), b"old\n").unwrap();
    let boot_mount = format!("mount={}:/mnt/boot", dir.path().display());
    let script = format!(
        "cd /mnt/boot && echo hello > new && mkdir d && mv new d/moved && ln d/moved hard && ln -s old sym && \
         chmod 640 hard && truncate -s 3 old && touch -d 2001-02-03 old && rm -f gone; echo $?; \
         mkdir $S/h && mount -t hostfs -o {} none $S/h && echo inguest > $S/h/g && rmdir $S/h/d 2>/dev/null || echo notempty",
        dir.path().display()
    );
    let out = sh(&[&boot_mount], &script);
    assert_eq!(out.stdout_lines(), vec!["0", "notempty"], "{out}");
    let p = dir.path();
    assert_eq!(std::fs::read(p.join("d/moved")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(p.join("hard")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(p.join("old")).unwrap(), b"old");
    assert_eq!(
        std::fs::read_link(p.join("sym")).unwrap(),
        PathBuf::from("old")
    );
    assert_eq!(std::fs::read(p.join("g")).unwrap(), b"inguest\n");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::metadata(p.join("hard")).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o640);
    assert_eq!(m.nlink(), 2);
    let old = std::fs::metadata(p.join("old")).unwrap();
    assert_eq!(old.mtime(), 981_158_400, "touch -d 2001-02-03 (TZ=UTC)");
}

/// A root with a secret next to it and every kind of escape attempt.
#[test]
fn no_escape_from_the_root() {
    let base = TempDir::new("escape");
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    for d in ["proc", "dev", "sys", "mnt", "sub", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret");
    std::fs::write(&secret, b"host secret\n").unwrap();
    std::fs::write(root.join("sub/inner.txt"), b"inner\n").unwrap();
    symlink("../outside/secret", root.join("up")).unwrap();
    symlink("../../outside/secret", root.join("up2")).unwrap();
    symlink(&secret, root.join("abs")).unwrap();
    symlink("/", root.join("rootlink")).unwrap();
    symlink("../outside", root.join("sublink")).unwrap();
    symlink("../../outside/secret", root.join("sub/link")).unwrap();
    let esc = build_guest("fs_escape", Flavour::Static);
    std::fs::copy(&esc.path, root.join("esc")).unwrap();
    let attempts = [
        "/sub/inner.txt",
        "/../outside/secret",
        "../outside/secret",
        "../../../../outside/secret",
        "/up",
        "/up2",
        "/abs",
        "/rootlink/../outside/secret",
        "/proc/self/root/../outside/secret",
        "/proc/self/cwd/../../outside/secret",
        "/sub/link",
        "mount:/mnt:/sub",
        "/mnt/inner.txt",
        "/mnt/link",
        "/mnt/../../outside/secret",
        "mount:/tmp:/../outside",
        "/tmp/secret",
        "mount:/dev:../outside",
        "/dev/secret",
        "mount:/sys:/sublink",
        "/sys/secret",
        "write:/up",
        "write:/abs",
        "write:/sub/link",
    ];
    for params in [&[][..], &["rootfstype=hostfs"][..]] {
        let root_param = format!("root={}", root.display());
        let mut args: Vec<&str> = vec!["quiet", &root_param];
        args.extend_from_slice(params);
        args.extend_from_slice(&["--", "/esc"]);
        args.extend_from_slice(&attempts);
        let out = run_ruml_raw(&args, &test_env());
        assert_eq!(out.code(), 0, "{out}");
        assert!(
            !out.stdout.contains("host secret"),
            "a guest read a host file outside its root:\n{out}"
        );
        assert!(out.stdout.contains("read /sub/inner.txt: [inner]"), "{out}");
        assert!(
            out.stdout.contains("read /mnt/inner.txt: [inner]"),
            "the hostfs mount of /sub failed:\n{out}"
        );
        assert_eq!(
            std::fs::read(&secret).unwrap(),
            b"host secret\n",
            "the host secret changed"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            1,
            "a file appeared outside the root"
        );
    }
}

/// Permission checks for a process that dropped root (tests/guest/dac.c),
/// natively in a scratch directory and under ruml in the guest's /tmp.
#[test]
fn permissions_after_dropping_root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("permissions_after_dropping_root: needs root natively (setuid); skipped");
        return;
    }
    let guest = common::build_guest("dac", common::Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("dac");
    let native = common::run_native(&guest.path, &[dir.path().as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let script = format!(
        "d=/tmp/ruml-dac-{}; mkdir $d && exec {} $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}

/// openat2's RESOLVE_* restrictions (tests/guest/openat2.c), natively in a
/// scratch directory and under ruml in the guest's /tmp.
#[test]
fn openat2_resolve_flags() {
    let guest = common::build_guest("openat2", common::Flavour::Static);
    let env = common::test_env();
    let dir = common::TempDir::new("openat2");
    let native = common::run_native(&guest.path, &[dir.path().as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let script = format!(
        "d=/tmp/ruml-openat2-{}; mkdir $d && exec {} $d",
        std::process::id(),
        guest.path.display()
    );
    let ruml = common::run_ruml("/bin/sh", &["-c", script.as_str()], &env);
    common::assert_same(&native, &ruml);
}

/// A host directory in a read-write mount is swapped for a symlink to a
/// secret outside the guest's root, again and again, while the guest keeps
/// walking through it: the guest sees the real file or an error, never the
/// secret (host operations refuse symlinks beneath the mount's root).
///
/// Both halves are proven on any machine: the racer holds each state (real
/// directory, symlink) for a while, and the guest keeps trying until it has
/// seen the real file *and* an error, so a slow or busy machine only makes
/// the run longer (the attempt budget is far beyond what a quiet machine
/// needs). The "never outside" assertion covers every attempt.
#[test]
fn swapped_directory_never_leads_outside() {
    let base = TempDir::new("swap");
    let root = base.path().join("root");
    let share = base.path().join("share");
    let outside = base.path().join("outside");
    for d in ["proc", "dev", "sys", "m"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(share.join("d")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(share.join("d/secret"), b"inner\n").unwrap();
    std::fs::write(outside.join("secret"), b"host secret\n").unwrap();
    let esc = build_guest("fs_escape", Flavour::Static);
    std::fs::copy(&esc.path, root.join("esc")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let (share, outside, stop) = (share.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            let hold = std::time::Duration::from_micros(300);
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(hold);
                let _ = std::fs::rename(share.join("d"), share.join("d.real"));
                // Both an absolute and a relative way out.
                let target = if swaps.is_multiple_of(2) {
                    outside.clone()
                } else {
                    PathBuf::from("../outside")
                };
                let _ = symlink(&target, share.join("d"));
                std::thread::sleep(hold);
                let _ = std::fs::remove_file(share.join("d"));
                let _ = std::fs::rename(share.join("d.real"), share.join("d"));
                // Leave the real directory in place a moment too, so the
                // guest's walks also meet it (else, on a fast backend, it
                // may see only the swapped states).
                std::thread::sleep(std::time::Duration::from_micros(300));
                swaps += 1;
            }
            swaps
        })
    };
    let env = test_env();
    let root_param = format!("root={}", root.display());
    let mount = format!("mount={}:/m", share.display());
    let args = [
        "quiet",
        &root_param,
        &mount,
        "--",
        "/esc",
        "race:1000000:/m/d/secret",
    ];
    let out = run_ruml_raw(&args, &env);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    assert!(
        !out.stdout.contains("host secret"),
        "the guest read outside its root:\n{out}"
    );
    assert!(
        out.stdout.contains("read /m/d/secret: [inner]"),
        "the guest never saw the real file ({swaps} swaps):\n{out}"
    );
    assert!(
        out.stdout.contains("open /m/d/secret: E"),
        "the guest never saw the swapped state ({swaps} swaps):\n{out}"
    );
}

/// A process that exited in a mount leaves it free: umount right after
/// waiting for it succeeds (its working directory is released at exit,
/// before the parent is told, as Linux's exit_fs), many times over.
#[test]
fn umount_after_a_child_exits_inside() {
    let out = common::run_ruml_raw(
        &[
            "quiet",
            "--",
            "/bin/sh",
            "-c",
            "mkdir -p /m; i=0; while [ $i -lt 200 ]; do \
             mount -t tmpfs t /m || exit 2; sh -c 'cd /m; :'; \
             umount /m || { echo busy at $i; exit 1; }; i=$((i+1)); done; echo ok $i",
        ],
        &common::test_env(),
    );
    assert_eq!(out.stdout, "ok 200\n", "{out}");
}
