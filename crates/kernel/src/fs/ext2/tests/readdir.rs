//! Listing a directory while it grows: positions are hash cookies that
//! survive leaf splits and the move from a linear to an indexed directory,
//! so a listing never repeats a name and sees every name present
//! throughout (names added meanwhile may or may not be seen, as POSIX
//! allows).

use super::*;
use std::collections::HashSet;

/// Lists `dir` in batches of `batch` entries from position 0; between
/// batches `between(k)` runs (k = batches so far). Returns the names seen,
/// failing on a repeat.
fn list_while(
    fs: &Arc<Ext2Fs>,
    dino: u32,
    batch: usize,
    mut between: impl FnMut(usize),
) -> HashSet<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut pos = 0u64;
    for k in 0.. {
        let ents = {
            let mut st = fs.lock();
            let d = fs.read_inode(&mut st, dino).unwrap();
            fs.dir_list(&mut st, &d, pos, batch).unwrap()
        };
        if ents.is_empty() {
            break;
        }
        for (next, _, name, _) in ents {
            assert!(
                seen.insert(name.clone()),
                "{} listed twice (batch {k})",
                String::from_utf8_lossy(&name)
            );
            assert!(next > pos, "positions go forward");
            pos = next;
        }
        between(k);
        assert!(k < 100_000, "the listing ends");
    }
    seen
}

fn check(tag: &str, args: &[&str], size: &str, dev_n: u32, initial: usize, per_batch: usize) {
    let base = make_image(tag, args, size);
    let (dev, root) = mount_mem(base, None, dev_n);
    let root = root.expect("mount");
    let caller = crate::fs::vfs::Caller::kernel();
    root.mkdir(b"d", 0o755).unwrap();
    let d = root.lookup(b"d", &caller).unwrap();
    let dino = d.as_any().downcast_ref::<vfs::Ext2Inode>().unwrap().ino;
    let fs = fs_of(&root);
    let old: Vec<Vec<u8>> = (0..initial)
        .map(|k| format!("old-{k}-{}", "y".repeat(k % 29)).into_bytes())
        .collect();
    for n in &old {
        d.create(n, 0o644, 0).unwrap();
    }
    let flags_before = {
        let mut st = fs.lock();
        fs.read_inode(&mut st, dino).unwrap().flags()
    };
    let size_before = d.stat().unwrap().size;
    let mut added = 0usize;
    // Names are added while the listing runs, up to a bound (the
    // listing, which may see them, has to end).
    let seen = list_while(&fs, dino, 7, |_| {
        for _ in 0..per_batch.min(2500 - added.min(2500)) {
            let n = format!("new-{added}-{}", "z".repeat(added % 31));
            d.create(n.as_bytes(), 0o644, 0).unwrap();
            added += 1;
        }
    });
    for n in &old {
        assert!(
            seen.contains(n),
            "{} (present throughout) not listed",
            String::from_utf8_lossy(n)
        );
    }
    assert!(seen.contains(b".".as_slice()) && seen.contains(b"..".as_slice()));
    let flags_after = {
        let mut st = fs.lock();
        fs.read_inode(&mut st, dino).unwrap().flags()
    };
    assert!(flags_after & INDEX_FL != 0, "the directory is indexed");
    assert!(
        d.stat().unwrap().size > size_before + 4 * 1024,
        "leaves split during the listing (flags before {flags_before:#x})"
    );
    // A fresh listing sees everything, once.
    let all = list_while(&fs, dino, 50, |_| {});
    assert_eq!(all.len(), initial + added + 2);
    drop(d);
    drop(root);
    let (clean, out) = e2fsck(&dev.0.lock().unwrap(), tag);
    assert!(clean, "e2fsck: {out}");
}

/// Already indexed when the listing starts; leaves split under it.
#[test]
fn readdir_during_htree_splits_no_repeats_no_misses() {
    check(
        "rdsplit",
        &["-t", "ext4", "-b", "1024", "-N", "6000"],
        "16M",
        9200,
        600,
        40,
    );
}

/// Linear (one block) when the listing starts: it becomes indexed and
/// splits under the listing.
#[test]
fn readdir_across_linear_to_htree_no_repeats_no_misses() {
    check(
        "rdlin",
        &["-t", "ext4", "-b", "1024", "-N", "6000"],
        "16M",
        9201,
        20,
        60,
    );
}
