//! Unit tests for the path walk, hostfs confinement, pipes and fd tables.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;

use super::namei::Walker;
use super::types::{oflags::*, DirSink, FileType};
use super::vfs::{d_path, Caller, Mount, Namespace, Path};
use super::*;
use crate::errno::Errno;

/// A scratch tree: `<tmp>/outside/secret` and the hostfs root `<tmp>/root`.
struct Tree {
    base: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn tree(tag: &str) -> Tree {
    let base = std::env::temp_dir().join(format!("ruml-fs-{}-{}", tag, std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for d in ["dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), b"host secret").unwrap();
    std::fs::write(root.join("etc/passwd"), b"guest passwd").unwrap();
    std::fs::write(root.join("a/b/f"), b"hello").unwrap();
    std::fs::write(root.join("file"), b"file").unwrap();
    symlink("../../outside/secret", root.join("up")).unwrap();
    symlink("../outside/secret", root.join("esc")).unwrap();
    symlink(base.join("outside/secret"), root.join("abs_host")).unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("l2", root.join("l1")).unwrap();
    symlink("l1", root.join("l2")).unwrap();
    symlink("..", root.join("dotdot")).unwrap();
    symlink("a/", root.join("linkdir")).unwrap();
    symlink("file", root.join("linkfile")).unwrap();
    symlink("", root.join("empty")).ok();
    symlink("/", root.join("rootlink")).unwrap();
    symlink("../..", root.join("a/b/top")).unwrap();
    // c1 -> c2 -> ... -> c41 -> file: 41 links from c1, 40 from c2.
    for i in 0..41 {
        symlink(format!("c{}", i + 1), root.join(format!("c{i}"))).unwrap();
    }
    symlink("file", root.join("c41")).unwrap();
    Tree { base }
}

fn boot_at(t: &Tree, ro: bool) -> Arc<FsContext> {
    boot(&FsConfig {
        root: t.base.join("root"),
        read_only: ro,
        mode: RootMode::HostFs,
        ..Default::default()
    })
    .unwrap()
}

fn walker(fs: &FsContext) -> Walker<'_> {
    Walker {
        ns: &fs.ns,
        root: fs.root(),
        caller: Caller::kernel(),
    }
}

fn read_all(f: &FileRef) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn open(fs: &FsContext, path: &str, flags: u32) -> KResult<FileRef> {
    let w = walker(fs);
    open_at(&w, fs, &fs.cwd(), path.as_bytes(), flags, 0o644)
}

fn walk(fs: &FsContext, path: &str, follow: bool) -> KResult<Path> {
    walker(fs).walk(&fs.cwd(), path.as_bytes(), follow)
}

fn name_of(fs: &FsContext, p: &Path) -> String {
    String::from_utf8(d_path(p, &fs.root())).unwrap()
}

#[test]
fn basic_walk_and_read() {
    let t = tree("basic");
    let fs = boot_at(&t, true);
    let f = open(&fs, "/a/b/f", O_RDONLY).unwrap();
    assert_eq!(read_all(&f), b"hello");
    assert_eq!(
        name_of(&fs, &walk(&fs, "a//b/./f", true).unwrap()),
        "/a/b/f"
    );
    assert_eq!(walk(&fs, "/a/b/nope", true).err(), Some(Errno::ENOENT));
    assert_eq!(walk(&fs, "file/x", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(walk(&fs, "file/", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(walk(&fs, "", true).err(), Some(Errno::ENOENT));
}

#[test]
fn dotdot_never_above_root() {
    let t = tree("dotdot");
    let fs = boot_at(&t, true);
    for p in [
        "/..",
        "/../../..",
        "a/b/../../..",
        "dotdot",
        "dotdot/dotdot/..",
        "a/b/top/..",
    ] {
        let r = walk(&fs, p, true).unwrap();
        assert!(
            r.same_object(&fs.root()),
            "{p} escaped to {}",
            name_of(&fs, &r)
        );
    }
    let f = open(&fs, "/../../etc/passwd", O_RDONLY).unwrap();
    assert_eq!(read_all(&f), b"guest passwd");
}

#[test]
fn symlink_escapes_stay_inside() {
    let t = tree("escape");
    let fs = boot_at(&t, true);
    // Relative links climbing out stop at the guest root: ../outside does
    // not exist inside it.
    assert_eq!(open(&fs, "up", O_RDONLY).err(), Some(Errno::ENOENT));
    assert_eq!(open(&fs, "esc", O_RDONLY).err(), Some(Errno::ENOENT));
    // An absolute link resolves against the guest root.
    assert_eq!(
        read_all(&open(&fs, "abs", O_RDONLY).unwrap()),
        b"guest passwd"
    );
    // An absolute link to a host path names a guest path that is absent.
    assert_eq!(open(&fs, "abs_host", O_RDONLY).err(), Some(Errno::ENOENT));
    assert!(walk(&fs, "rootlink/..", true)
        .unwrap()
        .same_object(&fs.root()));
    assert_eq!(
        read_all(&open(&fs, "rootlink/etc/passwd", O_RDONLY).unwrap()),
        b"guest passwd"
    );
}

#[test]
fn symlink_limits_and_trailing_slashes() {
    let t = tree("loops");
    let fs = boot_at(&t, true);
    assert_eq!(walk(&fs, "l1", true).err(), Some(Errno::ELOOP));
    assert_eq!(walk(&fs, "l1/x", true).err(), Some(Errno::ELOOP));
    // Not following the final link: we get the link itself.
    assert_eq!(
        walk(&fs, "l1", false).unwrap().inode().file_type(),
        FileType::Symlink
    );
    // A trailing slash forces following.
    assert_eq!(walk(&fs, "l1/", false).err(), Some(Errno::ELOOP));
    // 40 links are fine, 41 are not.
    assert_eq!(
        walk(&fs, "c2", true).unwrap().inode().file_type(),
        FileType::Regular
    );
    assert_eq!(walk(&fs, "c1", true).err(), Some(Errno::ELOOP));
    assert_eq!(
        walk(&fs, "linkdir", false).unwrap().inode().file_type(),
        FileType::Symlink
    );
    assert_eq!(
        walk(&fs, "linkdir/", false).unwrap().inode().file_type(),
        FileType::Directory
    );
    assert_eq!(walk(&fs, "linkfile/", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(
        walk(&fs, "linkfile", true).unwrap().inode().file_type(),
        FileType::Regular
    );
    if std::fs::symlink_metadata(t.base.join("root/empty")).is_ok() {
        assert_eq!(walk(&fs, "empty", true).err(), Some(Errno::ENOENT));
    }
    assert_eq!(
        open(&fs, "linkfile", O_RDONLY | O_NOFOLLOW).err(),
        Some(Errno::ELOOP)
    );
}

#[test]
fn name_length_limits() {
    let t = tree("names");
    let fs = boot_at(&t, true);
    let long = "x".repeat(256);
    assert_eq!(walk(&fs, &long, true).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(walk(&fs, &"x".repeat(255), true).err(), Some(Errno::ENOENT));
    let deep = "a/".repeat(2048);
    assert_eq!(walk(&fs, &deep, true).err(), Some(Errno::ENAMETOOLONG));
}

#[test]
fn mounts_crossed_both_ways() {
    let t = tree("mounts");
    let fs = boot_at(&t, true);
    let null = walk(&fs, "/dev/null", true).unwrap();
    assert_eq!(null.inode().file_type(), FileType::CharDevice);
    assert_eq!(null.inode().stat().unwrap().rdev, (1, 3));
    assert_eq!(name_of(&fs, &null), "/dev/null");
    assert!(walk(&fs, "/dev/..", true).unwrap().same_object(&fs.root()));
    assert_eq!(
        read_all(&open(&fs, "/dev/../a/b/f", O_RDONLY).unwrap()),
        b"hello"
    );
    let dev = walk(&fs, "/dev", true).unwrap();
    assert_eq!(dev.mnt.fstype, "devtmpfs");
    // Writes to /dev/null work on a read-only root.
    let f = open(&fs, "/dev/null", O_WRONLY).unwrap();
    assert_eq!(f.write(b"abc").unwrap(), 3);
    let z = open(&fs, "/dev/zero", O_RDONLY).unwrap();
    let mut b = [1u8; 9];
    assert_eq!(z.read(&mut b).unwrap(), 9);
    assert_eq!(b, [0; 9]);
    assert_eq!(
        open(&fs, "/dev/full", O_WRONLY).unwrap().write(b"x").err(),
        Some(Errno::ENOSPC)
    );
    // /proc/self without a task: nothing to point at.
    assert_eq!(walk(&fs, "/proc/self", true).err(), Some(Errno::ENOENT));
    assert_eq!(
        walk(&fs, "/proc/self", false).unwrap().inode().file_type(),
        FileType::Symlink
    );
    // /sys is a read-only sysfs with the CPU topology.
    assert_eq!(walk(&fs, "/sys", true).unwrap().mnt.fstype, "sysfs");
    assert_eq!(
        read_all(&open(&fs, "/sys/devices/system/cpu/online", O_RDONLY).unwrap()).first(),
        Some(&b'0')
    );
    assert_eq!(
        walk(&fs, "/sys/nonexistent", true).err(),
        Some(Errno::ENOENT)
    );
}

#[test]
fn read_only_root() {
    let t = tree("rofs");
    let fs = boot_at(&t, true);
    assert_eq!(open(&fs, "file", O_WRONLY).err(), Some(Errno::EROFS));
    assert_eq!(
        open(&fs, "file", O_RDONLY | O_TRUNC).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        open(&fs, "new", O_CREAT | O_WRONLY).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        open(&fs, "file", O_CREAT | O_EXCL | O_WRONLY).err(),
        Some(Errno::EEXIST)
    );
    assert!(open(&fs, "file", O_CREAT | O_RDONLY).is_ok());
    assert_eq!(open(&fs, "a", O_WRONLY).err(), Some(Errno::EISDIR));
    assert_eq!(open(&fs, "file", O_DIRECTORY).err(), Some(Errno::ENOTDIR));
    assert_eq!(std::fs::read(t.base.join("root/file")).unwrap(), b"file");
}

#[test]
fn writable_hostfs() {
    let t = tree("rwfs");
    let fs = boot_at(&t, false);
    let f = open(&fs, "new", O_CREAT | O_RDWR).unwrap();
    assert_eq!(f.write(b"data").unwrap(), 4);
    assert_eq!(std::fs::read(t.base.join("root/new")).unwrap(), b"data");
    let g = open(&fs, "new", O_WRONLY | O_APPEND).unwrap();
    assert_eq!(g.write(b"more").unwrap(), 4);
    assert_eq!(std::fs::read(t.base.join("root/new")).unwrap(), b"datamore");
    drop(open(&fs, "new", O_WRONLY | O_TRUNC).unwrap());
    assert_eq!(std::fs::read(t.base.join("root/new")).unwrap(), b"");
    // Creating through a symlink to outside: the name is created inside.
    let (dir, name, _) = walker(&fs).walk_parent(&fs.cwd(), b"/a/b/newdir").unwrap();
    dir.inode().mkdir(&name, 0o755).unwrap();
    assert!(t.base.join("root/a/b/newdir").is_dir());
}

#[test]
fn getdents_lists_host_order() {
    let t = tree("dents");
    let fs = boot_at(&t, true);
    let d = open(&fs, "/a", O_RDONLY | O_DIRECTORY).unwrap();
    let mut names = Vec::new();
    loop {
        let mut sink = DirSink::new(64, false);
        d.getdents(&mut sink).unwrap();
        if sink.buf.is_empty() {
            break;
        }
        let mut at = 0;
        while at < sink.buf.len() {
            let reclen = u16::from_ne_bytes([sink.buf[at + 16], sink.buf[at + 17]]) as usize;
            let name: Vec<u8> = sink.buf[at + 19..at + reclen]
                .iter()
                .take_while(|&&c| c != 0)
                .copied()
                .collect();
            names.push(String::from_utf8(name).unwrap());
            at += reclen;
        }
    }
    names.sort();
    assert_eq!(names, [".", "..", "b"]);
    let mut buf = [0u8; 4];
    assert_eq!(d.read(&mut buf).err(), Some(Errno::EISDIR));
}

#[test]
fn host_pseudo_filesystems_are_hidden() {
    // The host's / as a bare hostfs, without our own /proc on top.
    let root = hostfs::HostFs::open_root(std::path::Path::new("/"), true).unwrap();
    let ns = Namespace::new(Mount::new("hostfs", root, None, true, false));
    let fs = FsContext::new(ns);
    if std::fs::metadata("/proc/self").is_ok() {
        assert_eq!(walk(&fs, "/proc/self", true).err(), Some(Errno::ENOENT));
        assert_eq!(
            walk(&fs, "/proc/1/environ", true).err(),
            Some(Errno::ENOENT)
        );
        let d = open(&fs, "/proc", O_RDONLY).unwrap();
        let mut sink = DirSink::new(4096, false);
        d.getdents(&mut sink).unwrap();
        assert_eq!(sink.buf.len(), 2 * 24);
    }
    if let Ok(p) = walk(&fs, "/dev/null", true) {
        if p.inode().file_type() == FileType::CharDevice {
            assert_eq!(open(&fs, "/dev/null", O_RDONLY).err(), Some(Errno::EACCES));
        }
    }
}

#[test]
fn host_confinement_direct() {
    use ruml_host::hostfile::HostRoot;
    let t = tree("hostroot");
    let r = HostRoot::new(&t.base.join("root")).unwrap();
    assert!(r.lookup(b"a/b/f").is_ok());
    assert!(r.lookup(b"../outside/secret").is_err());
    assert!(r.lookup(b"/etc/passwd").is_err());
    // A symlink in the middle is refused, never followed.
    assert!(r.lookup(b"linkdir/b").is_err());
    assert!(r.lookup(b"rootlink/etc").is_err());
    // The final symlink itself is fine (not followed).
    assert_eq!(r.lookup(b"abs").unwrap().file_type(), super::types::S_IFLNK);
    assert_eq!(r.readlink(b"abs").unwrap(), b"/etc/passwd");
    let st = r.lookup(b"up").unwrap();
    assert!(r
        .open(
            b"up",
            ruml_host::hostfile::OpenMode::Read,
            false,
            (st.dev_major, st.dev_minor, st.ino)
        )
        .is_err());
}

#[test]
fn pipes() {
    let (r, w) = pipe::new_pipe(0);
    assert_eq!(w.write(b"hello").unwrap(), 5);
    let mut buf = [0u8; 16];
    assert_eq!(r.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(r.seek(0, 0).err(), Some(Errno::ESPIPE));
    let (r2, w2) = pipe::new_pipe(O_NONBLOCK);
    assert_eq!(r2.read(&mut buf).err(), Some(Errno::EAGAIN));
    let big = vec![7u8; pipe::PIPE_SIZE + 10];
    assert_eq!(w2.write(&big).unwrap(), pipe::PIPE_SIZE);
    assert_eq!(w2.write(b"x").err(), Some(Errno::EAGAIN));
    drop(w);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    drop(r2);
    assert_eq!(w2.write(b"x").err(), Some(Errno::EPIPE));
    // Blocking handoff between threads.
    let (r3, w3) = pipe::new_pipe(0);
    let h = std::thread::spawn(move || {
        let data = vec![1u8; 200_000];
        let mut done = 0;
        while done < data.len() {
            done += w3.write(&data[done..]).unwrap();
        }
    });
    let mut total = 0;
    loop {
        let mut b = vec![0u8; 10_000];
        let n = r3.read(&mut b).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    h.join().unwrap();
    assert_eq!(total, 200_000);
}

#[test]
fn fd_table() {
    let t = FdTable::new();
    let (r, w) = pipe::new_pipe(0);
    assert_eq!(t.alloc(r.clone(), false).unwrap(), 0);
    assert_eq!(t.alloc(w.clone(), true).unwrap(), 1);
    assert_eq!(t.alloc(r.clone(), false).unwrap(), 2);
    t.close(0).unwrap();
    assert_eq!(t.alloc(w.clone(), false).unwrap(), 0);
    assert_eq!(t.alloc_from(10, r.clone(), false).unwrap(), 10);
    t.install_at(5, w.clone(), true).unwrap();
    assert_eq!(t.fds(), [0, 1, 2, 5, 10]);
    let child = t.fork_copy();
    child.close_on_exec();
    assert_eq!(child.fds(), [0, 2, 10]);
    assert_eq!(t.fds(), [0, 1, 2, 5, 10]);
    assert_eq!(t.get(-1).err(), Some(Errno::EBADF));
    assert_eq!(t.get(3).err(), Some(Errno::EBADF));
    assert_eq!(
        t.install_at(5000, r.clone(), false).err(),
        Some(Errno::EBADF)
    );
    t.close_range(1, u32::MAX, false);
    assert_eq!(t.fds(), [0]);
    t.close_all();
    assert!(t.fds().is_empty());
}

#[test]
fn console_table() {
    let t = console_fdtable().unwrap();
    assert_eq!(t.fds(), [0, 1, 2]);
    let f = t.get(1).unwrap();
    assert!(f.can_write() && f.can_read());
    assert_eq!(f.file_type(), FileType::CharDevice);
}
