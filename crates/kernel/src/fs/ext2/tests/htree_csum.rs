//! htree directories and metadata_csum verification, against the host's
//! e2fsprogs: big indexed directories built here are e2fsck-clean, ones
//! indexed by e2fsck are looked up through their hash tree here, and a
//! flipped byte in any checksummed structure gives EBADMSG.

use super::*;

fn names(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            // Lengths from 1 to ~40 bytes, so leaves split unevenly.
            let pad = "x".repeat(k % 37);
            format!("{k}{pad}").into_bytes()
        })
        .collect()
}

fn dir_flags(fs: &Arc<Ext2Fs>, ino: u32) -> u32 {
    let mut st = fs.lock();
    fs.read_inode(&mut st, ino).unwrap().flags()
}

fn ino_of(i: &Arc<dyn Inode>) -> u32 {
    i.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino
}

/// Fills a directory through the VFS, checks every name through the
/// index, unlinks a third, checks again, and lets the host's e2fsck judge.
fn big_directory(tag: &str, args: &[&str], size: &str, n: usize, dev_n: u32) {
    let base = make_image(tag, args, size);
    let (dev, root) = mount_mem(base, None, dev_n);
    let root = root.expect("mount");
    let caller = crate::fs::vfs::Caller::kernel();
    root.mkdir(b"big", 0o755).unwrap();
    let big = root.lookup(b"big", &caller).unwrap();
    let all = names(n);
    for name in &all {
        big.create(name, 0o644, 0).unwrap();
    }
    let fs = fs_of(&root);
    let dino = ino_of(&big);
    assert!(
        dir_flags(&fs, dino) & INDEX_FL != 0,
        "the directory became indexed"
    );
    {
        let mut st = fs.lock();
        let d = fs.read_inode(&mut st, dino).unwrap();
        for name in all.iter().step_by(7) {
            let f = fs.dx_find(&mut st, &d, name).unwrap();
            assert!(
                f.is_some(),
                "{} found through the index",
                String::from_utf8_lossy(name)
            );
        }
        assert!(fs.dx_find(&mut st, &d, b"absent").unwrap().is_none());
    }
    for name in all.iter().step_by(3) {
        big.unlink(name).unwrap();
    }
    for (k, name) in all.iter().enumerate() {
        let r = big.lookup(name, &caller);
        assert_eq!(r.is_ok(), k % 3 != 0, "{}", String::from_utf8_lossy(name));
    }
    // Re-adding after removals reuses the leaves' room.
    for name in all.iter().step_by(3).take(500) {
        big.create(name, 0o644, 0).unwrap();
    }
    drop(big);
    drop(root);
    let (clean, out) = e2fsck(&dev.0.lock().unwrap(), tag);
    assert!(clean, "e2fsck after {n} entries: {out}");
}

/// 50 000 entries in one ext4 directory (4 KiB blocks, metadata_csum).
#[test]
fn htree_ext4_fifty_thousand_entries_fsck_clean() {
    big_directory(
        "htree4",
        &["-t", "ext4", "-N", "52000", "-J", "size=4"],
        "96M",
        50_000,
        9100,
    );
}

/// 1 KiB blocks: the root fills, moves into a node, nodes split.
#[test]
fn htree_ext2_small_blocks_grow_two_levels_fsck_clean() {
    big_directory(
        "htree2",
        &["-t", "ext2", "-b", "1024", "-N", "12000"],
        "24M",
        10_000,
        9101,
    );
}

/// Directories indexed by the host's e2fsck -D with each hash are looked
/// up through their index here (the hashes agree with e2fsprogs').
#[test]
fn host_indexed_directories_use_each_hash() {
    let cases = [("half_md4", "1"), ("tea", "2"), ("legacy", "1")];
    for (k, (alg, flags)) in cases.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("ruml-htree-{alg}-{}", std::process::id()));
        let src = dir.join("src/d");
        std::fs::create_dir_all(&src).unwrap();
        // Bytes above 0x7f hash differently signed and unsigned.
        let mut all = names(2000);
        for j in 0..300 {
            all.push(format!("\u{e9}t\u{e9}{j}\u{fc}").into_bytes());
        }
        for name in &all {
            std::fs::write(src.join(std::str::from_utf8(name).unwrap()), b"").unwrap();
        }
        let img = dir.join("img");
        let st = std::process::Command::new(host_tool("mke2fs"))
            .args(["-q", "-F", "-t", "ext4", "-N", "8000"])
            .arg("-d")
            .arg(dir.join("src"))
            .arg(&img)
            .arg("32M")
            .status()
            .unwrap();
        assert!(st.success());
        // The hash e2fsck -D indexes with, and signed/unsigned chars.
        let st = std::process::Command::new(host_tool("debugfs"))
            .arg("-w")
            .arg("-R")
            .arg(format!("ssv def_hash_version {alg}"))
            .arg(&img)
            .output()
            .unwrap();
        assert!(st.status.success());
        let st = std::process::Command::new(host_tool("debugfs"))
            .arg("-w")
            .arg("-R")
            .arg(format!("ssv flags {flags}"))
            .arg(&img)
            .output()
            .unwrap();
        assert!(st.status.success());
        let _ = std::process::Command::new(host_tool("e2fsck"))
            .arg("-fyD")
            .arg(&img)
            .output()
            .unwrap();
        let bytes = std::fs::read(&img).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let (dev, root) = mount_mem(bytes, None, 9110 + k as u32);
        let root = root.expect("mount");
        let caller = crate::fs::vfs::Caller::kernel();
        let d = root.lookup(b"d", &caller).unwrap();
        let fs = fs_of(&root);
        let dino = ino_of(&d);
        assert!(
            dir_flags(&fs, dino) & INDEX_FL != 0,
            "{alg}/{flags}: e2fsck -D indexed it"
        );
        {
            let mut st = fs.lock();
            let di = fs.read_inode(&mut st, dino).unwrap();
            for name in &all {
                assert!(
                    fs.dx_find(&mut st, &di, name).unwrap().is_some(),
                    "{alg}/{flags}: {} through the index",
                    String::from_utf8_lossy(name)
                );
            }
        }
        // Inserting into the host's index keeps it valid.
        for j in 0..2000 {
            d.create(format!("new{j}").as_bytes(), 0o644, 0).unwrap();
        }
        drop(d);
        drop(root);
        let (clean, out) = e2fsck(&dev.0.lock().unwrap(), alg);
        assert!(clean, "{alg}/{flags}: {out}");
    }
}

/// The offset in the image of inode `ino`'s slot.
fn inode_offset(fs: &Arc<Ext2Fs>, ino: u32) -> usize {
    let st = fs.lock();
    let (blk, off) = fs.inode_loc(&st, ino).unwrap();
    (blk * fs.geo.bs) as usize + off
}

/// Each checksummed structure, with one byte flipped: EBADMSG, as Linux.
#[test]
fn corrupt_checksums_give_ebadmsg() {
    let base = make_image("csum", &["-t", "ext4", "-J", "size=1", "-N", "64"], "4M");
    // A file with many extents (every other block), so it has a tree
    // block, and a populated directory.
    let (dev, root) = mount_mem(base, None, 9120);
    let root = root.expect("mount");
    let caller = crate::fs::vfs::Caller::kernel();
    let fs = fs_of(&root);
    let bs = fs.geo.bs as usize;
    write_all(&root, b"frag", b"").unwrap();
    let frag = ino_of(&root.lookup(b"frag", &caller).unwrap());
    {
        let mut st = fs.lock();
        let mut i = fs.read_inode(&mut st, frag).unwrap();
        for k in 0..24u64 {
            fs.write_file(&mut st, frag, &mut i, 2 * k * bs as u64, &vec![1u8; bs])
                .unwrap();
        }
    }
    let d1 = root.lookup(b"d1", &caller).unwrap();
    let d1_ino = ino_of(&d1);
    let f1_ino = ino_of(&d1.lookup(b"f1", &caller).unwrap());
    let (ext_blk, dir_blk, bbm, ibm) = {
        let mut st = fs.lock();
        let i = fs.read_inode(&mut st, frag).unwrap();
        assert!(
            le16(i.iblock_bytes(), 6) > 0,
            "frag has an extent tree block"
        );
        let ext_blk =
            (le16(i.iblock_bytes(), 12 + 8) as u64) << 32 | le32(i.iblock_bytes(), 12 + 4) as u64;
        let d = fs.read_inode(&mut st, d1_ino).unwrap();
        let dir_blk = fs.bmap(&mut st, &d, 0).unwrap().unwrap();
        let g = st.groups[0];
        (ext_blk, dir_blk, g.block_bitmap, g.inode_bitmap)
    };
    let f1_off = inode_offset(&fs, f1_ino);
    drop(d1);
    drop(root);
    fs.sync_fs().unwrap();
    drop(fs);
    let img = dev.0.lock().unwrap().clone();
    let (clean, out) = e2fsck(&img, "csum-base");
    assert!(clean, "{out}");

    let flip = |at: usize| {
        let mut v = img.clone();
        v[at] ^= 0x40;
        v
    };
    let ebadmsg = crate::errno!(EBADMSG);
    // An extent tree block: reading the file.
    let (_d, r) = mount_mem(flip(ext_blk as usize * bs + 40), None, 9121);
    let r = r.unwrap();
    let f = r.lookup(b"frag", &caller).unwrap();
    let mut buf = vec![0u8; 4096];
    let fsx = fs_of(&r);
    {
        let mut st = fsx.lock();
        let i = fsx.read_inode(&mut st, frag).unwrap();
        assert_eq!(
            fsx.read_file(&mut st, &i, 0, &mut buf).err(),
            Some(ebadmsg),
            "extent block"
        );
    }
    drop(f);
    drop(r);
    // A directory block: looking a name up in it.
    let (_d, r) = mount_mem(flip(dir_blk as usize * bs + 30), None, 9122);
    let r = r.unwrap();
    let d1 = r.lookup(b"d1", &caller).unwrap();
    assert_eq!(
        d1.lookup(b"f1", &caller).err(),
        Some(ebadmsg),
        "directory block"
    );
    drop(d1);
    drop(r);
    // An inode: looking it up.
    let (_d, r) = mount_mem(flip(f1_off + 0x20), None, 9123);
    let r = r.unwrap();
    let d1 = r.lookup(b"d1", &caller).unwrap();
    assert_eq!(d1.lookup(b"f1", &caller).err(), Some(ebadmsg), "inode");
    drop(d1);
    drop(r);
    // The block bitmap: allocating a block.
    let (_d, r) = mount_mem(flip(bbm as usize * bs + 3), None, 9124);
    let r = r.unwrap();
    assert_eq!(
        write_all(&r, b"new", &[2u8; 5000]).err(),
        Some(ebadmsg),
        "block bitmap"
    );
    drop(r);
    // The inode bitmap: allocating an inode.
    let (_d, r) = mount_mem(flip(ibm as usize * bs), None, 9125);
    let r = r.unwrap();
    assert_eq!(
        r.create(b"new", 0o644, 0).err(),
        Some(ebadmsg),
        "inode bitmap"
    );
    drop(r);
}

/// The journal superblock's checksum (csum v2/v3 journals) is verified
/// at mount: a wrong one refuses the mount with EBADMSG, a right one
/// mounts.
#[test]
fn journal_superblock_checksum_verified() {
    let base = make_image("jcsum", &["-t", "ext4", "-J", "size=1", "-N", "64"], "4M");
    let (_dev, root) = mount_mem(base.clone(), None, 9130);
    let root = root.expect("mount");
    let fs = fs_of(&root);
    let jsb_at = {
        let mut st = fs.lock();
        let ji = fs.read_inode(&mut st, fs.geo.journal_ino).unwrap();
        fs.bmap(&mut st, &ji, 0).unwrap().unwrap() * fs.geo.bs
    } as usize;
    drop(fs);
    drop(root);
    let with_v3 = |good: bool| {
        let mut img = base.clone();
        let jsb = &mut img[jsb_at..jsb_at + 1024];
        assert_eq!(&jsb[..4], &[0xC0, 0x3B, 0x39, 0x98]);
        jsb[0x28..0x2C].copy_from_slice(&0x10u32.to_be_bytes());
        jsb[0xFC..0x100].fill(0);
        let c = csum::crc32c(!0, jsb) ^ if good { 0 } else { 1 };
        jsb[0xFC..0x100].copy_from_slice(&c.to_be_bytes());
        img
    };
    let (_d, r) = mount_mem(with_v3(true), None, 9131);
    assert!(r.is_ok(), "a journal with a good checksum mounts");
    drop(r);
    let (_d, r) = mount_mem(with_v3(false), None, 9132);
    assert_eq!(r.err(), Some(crate::errno!(EBADMSG)));
}

/// Long names in 1 KiB blocks (three to a leaf): every split leaves room
/// for the name that caused it; the index stays e2fsck-clean.
#[test]
fn htree_long_names_in_small_blocks() {
    let base = make_image("htreel", &["-t", "ext4", "-b", "1024", "-N", "3000"], "16M");
    let (dev, root) = mount_mem(base, None, 9140);
    let root = root.expect("mount");
    let caller = crate::fs::vfs::Caller::kernel();
    root.mkdir(b"long", 0o755).unwrap();
    let d = root.lookup(b"long", &caller).unwrap();
    let all: Vec<Vec<u8>> = (0..1500)
        .map(|k| {
            let len = [255, 200, 9, 250, 120][k % 5];
            let mut n = format!("{k}-").into_bytes();
            n.resize(len, b'a' + (k % 26) as u8);
            n
        })
        .collect();
    for n in &all {
        d.create(n, 0o644, 0).unwrap();
    }
    for n in &all {
        assert!(d.lookup(n, &caller).is_ok());
    }
    let fs = fs_of(&root);
    assert!(dir_flags(&fs, ino_of(&d)) & INDEX_FL != 0);
    drop((d, root));
    fs.sync_fs().unwrap();
    drop(fs);
    let (clean, out) = e2fsck(&dev.0.lock().unwrap(), "htreel");
    assert!(clean, "{out}");
}
