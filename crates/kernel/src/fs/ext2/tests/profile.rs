//! The disk benchmark's paths without the guest system call around them,
//! for instruction counts (`valgrind --tool=callgrind` on this test, run
//! with `--ignored`; see docs/disks.md "Performance"): a cached 4 KiB
//! `pread`, the same read of a block not yet cached, and the small-file
//! cycle (create + write 100 bytes, stat, unlink, then sync). Each phase
//! is its own function, so its inclusive count divided by its operations
//! is the cost of one.

use super::*;

const FILE_BLOCKS: u64 = 4096;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[inline(never)]
fn profile_pread(fs: &Arc<Ext2Fs>, ino: u32, seed: u64, n: usize) -> u64 {
    let mut x = seed;
    let mut page = [0u8; 4096];
    let mut sum = 0u64;
    for _ in 0..n {
        let off = (xorshift(&mut x) % FILE_BLOCKS) * 4096;
        let mut st = fs.lock();
        let i = fs.read_inode(&mut st, ino).unwrap();
        let got = fs
            .read_file_into(&mut st, &i, off, &mut datacache::Sink::Buf(&mut page), 0)
            .unwrap();
        assert_eq!(got, 4096);
        drop(st);
        sum += page[7] as u64;
    }
    sum
}

#[inline(never)]
fn profile_small_files(root: &Arc<dyn Inode>, n: usize) {
    let caller = crate::fs::vfs::Caller::kernel();
    let fs = fs_of(root);
    root.mkdir(b"many", 0o700).unwrap();
    let d = root.lookup(b"many", &caller).unwrap();
    for k in 0..n {
        let name = format!("file-{k}");
        let (f, _) = d.create(name.as_bytes(), 0o600, 0).unwrap();
        let ino = f.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
        let mut st = fs.lock();
        let mut i = fs.read_inode(&mut st, ino).unwrap();
        fs.write_file(&mut st, ino, &mut i, 0, &[0xa5; 100])
            .unwrap();
    }
    for k in 0..n {
        let f = d.lookup(format!("file-{k}").as_bytes(), &caller).unwrap();
        assert_eq!(f.stat().unwrap().size, 100);
    }
    for k in 0..n {
        d.unlink(format!("file-{k}").as_bytes()).unwrap();
    }
    fs.sync_fs().unwrap();
}

/// Not a check (every path here is checked elsewhere): run it under
/// callgrind with `--ignored` for the counts of docs/disks.md.
#[test]
#[ignore]
fn ext4_disk_paths_profile() {
    let img = make_image("profile", &["-t", "ext4"], "96M");
    let (dev, root) = mount_mem(img, None, 7900);
    let root = root.expect("mount");
    let fs = fs_of(&root);
    let (f, _) = root.create(b"seq", 0o600, 0).unwrap();
    let ino = f.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
    {
        let mut st = fs.lock();
        let mut i = fs.read_inode(&mut st, ino).unwrap();
        let chunk = vec![0x5au8; 1 << 20];
        for k in 0..FILE_BLOCKS * 4096 / (1 << 20) {
            fs.write_file(&mut st, ino, &mut i, k << 20, &chunk)
                .unwrap();
        }
    }
    fs.sync_fs().unwrap();
    // Cold: every block read once (misses), then warm: the same again.
    let cold = profile_pread(&fs, ino, 88172645463325252, 2000);
    let warm = profile_pread(&fs, ino, 88172645463325252, 2000);
    assert_eq!(cold, warm);
    profile_small_files(&root, 500);
    drop(f);
    drop(root);
    drop(fs);
    let (clean, out) = e2fsck(&dev.0.lock().unwrap(), "profile");
    assert!(clean, "{out}");
}
