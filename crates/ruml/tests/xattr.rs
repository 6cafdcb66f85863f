//! Extended attributes: the system calls against the host's
//! (tests/guest/xattr.c, differential: the host's /tmp against the guest's
//! tmpfs-backed /tmp), the overlay (lower attributes show, copy-up keeps
//! them, the host file is untouched), hostfs (user.* reach the host file,
//! nothing else does) and ext4 images made by the host's mke2fs (read,
//! written in the inode and in an attribute block, e2fsck -fn clean,
//! debugfs reads them back); and file handles (tests/guest/fhandle.c,
//! differential, on the overlay root and on ext4).

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_same, build_guest, run_native, run_ruml, test_env, Flavour, TempDir};

/// Sets a user attribute on a host file with the host's python3.
fn host_setxattr(path: &Path, name: &str, value: &str) {
    let st = Command::new("python3")
        .args([
            "-c",
            "import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())",
        ])
        .arg(path)
        .args([name, value])
        .status()
        .expect("python3");
    assert!(st.success(), "host setxattr {name} on {}", path.display());
}

/// The host's view of a file's attributes: sorted `name=value` lines.
fn host_xattrs(path: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,sys\n\
             for n in sorted(os.listxattr(sys.argv[1])): print(n + '=' + os.getxattr(sys.argv[1], n).decode())",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "host listxattr {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn xattr_calls(flavour: Flavour) {
    let guest = build_guest("xattr", flavour);
    let env = test_env();
    let host_dir = std::env::temp_dir().join(format!(
        "ruml-xattr-{}-{}",
        std::process::id(),
        flavour.name()
    ));
    let _ = std::fs::remove_dir_all(&host_dir);
    // trusted.* and security.* need CAP_SYS_ADMIN on the host: test them
    // when the native run may use them (root outside a user namespace).
    let mut native = run_native(&guest.path, &[host_dir.as_os_str(), "priv".as_ref()], &env);
    let _ = std::fs::remove_dir_all(&host_dir);
    let priv_ok = native.stdout.contains("set trusted: 0\n");
    if !priv_ok {
        eprintln!("the host refuses trusted.*: testing without them");
        native = run_native(&guest.path, &[host_dir.as_os_str()], &env);
        let _ = std::fs::remove_dir_all(&host_dir);
    }
    assert_eq!(native.code(), 0, "{native}");
    assert!(
        native.stdout.contains("get user.a: 5 'hello'"),
        "the host's /tmp has no user xattrs:\n{native}"
    );
    let mut args = vec![host_dir.to_str().expect("utf-8 temp dir")];
    if priv_ok {
        args.push("priv");
    }
    let ruml = run_ruml(&guest.path, &args, &env);
    assert_same(&native, &ruml);
}

#[test]
fn xattr_calls_static() {
    xattr_calls(Flavour::Static);
}

#[test]
fn xattr_calls_dynamic() {
    xattr_calls(Flavour::Dynamic);
}

/// A python program run as the guest's init.
fn guest_py(params: &[&str], program: &str, args: &[&str]) -> common::Output {
    let mut a: Vec<&str> = vec!["quiet"];
    a.extend_from_slice(params);
    a.extend_from_slice(&["--", "/usr/bin/python3", "-c", program]);
    a.extend_from_slice(args);
    common::run_ruml_raw(&a, &test_env())
}

const SHOW: &str = r#"import os, sys
def show(p):
    try:
        print(p.rsplit('/', 1)[-1], sorted((n, os.getxattr(p, n).decode()) for n in os.listxattr(p)))
    except OSError as e:
        print(p.rsplit('/', 1)[-1], 'error', e.errno)
def tryset(p, n, v):
    try:
        os.setxattr(p, n, v)
        print('set', n, 'ok')
    except OSError as e:
        print('set', n, 'errno', e.errno)
"#;

/// The overlay root shows the host's user.* attributes, and copy-up
/// (by a write, a chmod or a setxattr) keeps them; the host's file is
/// never changed.
#[test]
fn overlay_shows_lower_xattrs_and_copy_up_keeps_them() {
    let dir = TempDir::new("xattr-ovl");
    let d = dir.path();
    for f in ["a", "b", "c"] {
        std::fs::write(d.join(f), f).unwrap();
        host_setxattr(&d.join(f), "user.host", &format!("from host {f}"));
    }
    std::fs::create_dir(d.join("sub")).unwrap();
    host_setxattr(&d.join("sub"), "user.dir", "D");
    let program = SHOW.to_string()
        + r#"
d = sys.argv[1]
for f in ['a', 'b', 'c', 'sub']: show(d + '/' + f)
open(d + '/a', 'a').write('more')
os.chmod(d + '/b', 0o600)
tryset(d + '/c', 'user.new', b'N')
tryset(d + '/c', 'trusted.t', b'T')
os.removexattr(d + '/sub', 'user.dir')
for f in ['a', 'b', 'c', 'sub']: show(d + '/' + f)
print(open(d + '/a').read(), open(d + '/c').read())
try:
    os.removexattr(d + '/sub', 'user.dir')
except OSError as e:
    print('remove again', e.errno)
"#;
    let out = guest_py(&[], &program, &[d.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "a [('user.host', 'from host a')]",
            "b [('user.host', 'from host b')]",
            "c [('user.host', 'from host c')]",
            "sub [('user.dir', 'D')]",
            "set user.new ok",
            "set trusted.t ok",
            "a [('user.host', 'from host a')]",
            "b [('user.host', 'from host b')]",
            "c [('trusted.t', 'T'), ('user.host', 'from host c'), ('user.new', 'N')]",
            "sub []",
            "amore c",
            "remove again 61",
        ],
        "{out}"
    );
    // The host's files are what they were.
    for f in ["a", "b", "c"] {
        assert_eq!(
            host_xattrs(&d.join(f)),
            format!("user.host=from host {f}\n")
        );
    }
    assert_eq!(host_xattrs(&d.join("sub")), "user.dir=D\n");
    assert_eq!(std::fs::read(d.join("a")).unwrap(), b"a");
}

/// A read-write hostfs mount passes user.* to the host's file and
/// nothing else; a read-only one refuses writes with EROFS.
#[test]
fn hostfs_passes_user_xattrs_to_the_host() {
    let dir = TempDir::new("xattr-hostfs");
    let d = dir.path();
    std::fs::write(d.join("f"), "f").unwrap();
    host_setxattr(&d.join("f"), "user.old", "O");
    std::fs::create_dir(d.join("dir")).unwrap();
    let program = SHOW.to_string()
        + r#"
show('/mnt/h/f')
tryset('/mnt/h/f', 'user.guest', b'G')
tryset('/mnt/h/dir', 'user.guestdir', b'GD')
tryset('/mnt/h/f', 'trusted.t', b'T')
tryset('/mnt/h/f', 'security.s', b'S')
os.removexattr('/mnt/h/f', 'user.old')
show('/mnt/h/f')
show('/mnt/h/dir')
try:
    os.getxattr('/mnt/h/f', 'trusted.t')
except OSError as e:
    print('get trusted', e.errno)
"#;
    let mount = format!("mount={}:/mnt/h", d.display());
    let out = guest_py(&[&mount], &program, &[]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout_lines(),
        vec![
            "f [('user.old', 'O')]",
            "set user.guest ok",
            "set user.guestdir ok",
            "set trusted.t errno 95",
            "set security.s errno 95",
            "f [('user.guest', 'G')]",
            "dir [('user.guestdir', 'GD')]",
            "get trusted 95",
        ],
        "{out}"
    );
    assert_eq!(host_xattrs(&d.join("f")), "user.guest=G\n");
    assert_eq!(host_xattrs(&d.join("dir")), "user.guestdir=GD\n");
}

/// A host tool (e2fsprogs; .ci/run installs it).
fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("host tool {name} is missing (install e2fsprogs, see .ci/run)");
}

fn host_ok(cmd: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool(cmd))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// mke2fs -d copies the host tree's user attributes into the image (in
/// the inode when small, in a block when not); the guest reads them,
/// writes and removes more (in the inode, in new blocks, freeing blocks);
/// the host's e2fsck -fn finds the image clean, debugfs shows the guest's
/// attributes, and a second boot reads them back.
fn ext_round_trip(kind: &str) {
    let dir = TempDir::new(&format!("xattr-{kind}"));
    let d = dir.path();
    let pre = d.join("pre");
    std::fs::create_dir_all(pre.join("sub")).unwrap();
    for f in ["small", "big", "none"] {
        std::fs::write(pre.join(f), f).unwrap();
    }
    symlink_to(&pre.join("link"), "small");
    host_setxattr(&pre.join("small"), "user.color", "blue");
    host_setxattr(&pre.join("big"), "user.big", &"x".repeat(1500));
    host_setxattr(&pre.join("big"), "user.s", "S");
    host_setxattr(&pre.join("sub"), "user.dir", "D");
    host_ok(
        "mke2fs",
        &["-q", "-t", kind, "-b", "4096", "-d", "pre", "img", "16M"],
        d,
    );
    let img = d.join("img");
    let script = common::workspace_root().join("tests/scripts/xattr_ext4.py");
    let ubd = format!("ubd0={}", img.display());
    let run = |phase: &str| {
        common::run_ruml_raw(
            &[
                "quiet",
                &ubd,
                "--",
                "/usr/bin/python3",
                script.to_str().unwrap(),
                phase,
            ],
            &test_env(),
        )
    };
    let out = run("write");
    assert_eq!(out.code(), 0, "{out}");
    let odd: Vec<String> = (1..20)
        .step_by(2)
        .map(|i| format!("('user.k{i:02}', {}, 'v{i}')", format!("v{i}").len()))
        .collect();
    let small_after = format!("small [('user.color', 5, 'green'), {}]", odd.join(", "));
    let final_lines = vec![
        small_after.clone(),
        "big [('user.s', 1, 'S')]".to_string(),
        "none [('security.sec', 1, 'S'), ('user.a', 1, '1'), ('user.b', 2000, 'yyyyyyyy')]"
            .to_string(),
        "sub [('user.dir', 1, 'D'), ('user.dir2', 3000, 'EEEEEEEE')]".to_string(),
        "new [('user.n', 1, 'N')]".to_string(),
    ];
    let mut expect: Vec<String> = [
        "small [('user.color', 4, 'blue')]",
        "big [('user.big', 1500, 'xxxxxxxx'), ('user.s', 1, 'S')]",
        "none []",
        "sub [('user.dir', 1, 'D')]",
        "create existing File exists",
        "replace missing No data available",
        "remove missing No data available",
        "system.posix_acl_access Operation not supported",
        "too big for a block No space left on device",
        "symlink Operation not permitted",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expect.extend(final_lines.iter().cloned());
    assert_eq!(out.stdout_lines(), expect, "{out}");
    host_ok("e2fsck", &["-fn", "img"], d);
    let ea = |f: &str| host_ok("debugfs", &["-R", &format!("ea_list /{f}"), "img"], d);
    let none = ea("none");
    assert!(none.contains("user.a (1) = \"1\""), "{none}");
    assert!(none.contains("security.sec (1) = \"S\""), "{none}");
    assert!(none.contains("user.b (2000)"), "{none}");
    let small = ea("small");
    assert!(small.contains("user.color (5) = \"green\""), "{small}");
    assert!(small.contains("user.k19 (3) = \"v19\""), "{small}");
    assert!(!small.contains("user.k18"), "{small}");
    assert!(!ea("big").contains("user.big"));
    // Read back by a second boot.
    let again = run("read");
    assert_eq!(again.code(), 0, "{again}");
    assert_eq!(again.stdout_lines(), final_lines, "{again}");
    host_ok("e2fsck", &["-fn", "img"], d);
}

fn symlink_to(link: &Path, target: &str) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn ext4_xattrs_round_trip_e2fsck_clean() {
    ext_round_trip("ext4");
}

#[test]
fn ext2_xattrs_round_trip_e2fsck_clean() {
    ext_round_trip("ext2");
}

// --- file handles -----------------------------------------------------------

/// name_to_handle_at/open_by_handle_at (tests/guest/fhandle.c) against the
/// host: natively in a fresh directory of the host's /tmp (or /dev/shm
/// where /tmp's filesystem makes no handles, as an overlayfs), under ruml
/// in the guest's /tmp (the overlay root) and on an ext4 disk.
fn fhandle(flavour: Flavour) {
    let guest = build_guest("fhandle", flavour);
    let env = test_env();
    let mut native = None;
    for base in [std::env::temp_dir(), "/dev/shm".into()] {
        let host_dir = base.join(format!(
            "ruml-fhandle-{}-{}",
            std::process::id(),
            flavour.name()
        ));
        let _ = std::fs::remove_dir_all(&host_dir);
        let out = run_native(&guest.path, &[host_dir.as_os_str()], &env);
        let _ = std::fs::remove_dir_all(&host_dir);
        if out.stdout.contains("\nhandle: 0\n") {
            native = Some(out);
            break;
        }
        eprintln!("no file handles on the host's {}:\n{out}", base.display());
    }
    let native = native.expect("the host makes no file handles in /tmp nor /dev/shm");
    assert_eq!(native.code(), 0, "{native}");
    let dir = format!(
        "/tmp/ruml-fhandle-{}-{}",
        std::process::id(),
        flavour.name()
    );
    let ruml = run_ruml(&guest.path, &[dir.as_str()], &env);
    assert_same(&native, &ruml);

    // On ext4: the same answers.
    let disk = TempDir::new("fhandle-ext4");
    host_ok("mke2fs", &["-q", "-t", "ext4", "img", "16M"], disk.path());
    let ubd = format!("ubd0={}", disk.path().join("img").display());
    let script = format!(
        "mkdir -p /mnt && mount /dev/ubda /mnt && {} /mnt/fh; s=$?; umount /mnt; exit $s",
        guest.path.display()
    );
    let ext4 = common::run_ruml_raw(&["quiet", &ubd, "--", "/bin/sh", "-c", &script], &env);
    assert_same(&native, &ext4);
    host_ok("e2fsck", &["-fn", "img"], disk.path());
}

#[test]
fn fhandle_static() {
    fhandle(Flavour::Static);
}

#[test]
fn fhandle_dynamic() {
    fhandle(Flavour::Dynamic);
}
