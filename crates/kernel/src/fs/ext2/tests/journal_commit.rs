//! One-flush commits (jbd2 async_commit with v1 commit checksums) and
//! the flushes an fsync needs, against the host's e2fsprogs: a commit
//! that allocated nothing costs one flush, an fsync with nothing new
//! none, and a crash that tears the one-flush commit (any block of the
//! writes under its flush lost) is replayed by this driver and by the
//! host's e2fsck to the same, clean filesystem: the transaction whole
//! or not at all.

use super::*;
use crate::block::flushgate::FlushGate;

/// Writes not yet flushed, as (byte offset, contents).
type Pending = Vec<(usize, Vec<u8>)>;

/// What a host crash may leave of a device: writes since the last flush
/// are pending, any of them may be lost. `last` keeps, for the last
/// flush, the image before it and the writes it made durable.
struct TearDev {
    inner: Mutex<TearInner>,
    gate: FlushGate,
}

struct TearInner {
    cur: Vec<u8>,
    durable: Vec<u8>,
    pending: Pending,
    last: Option<(Vec<u8>, Pending)>,
    flushes: u64,
}

impl TearDev {
    fn flushes(&self) -> u64 {
        self.inner.lock().unwrap().flushes
    }
}

impl BlockDevice for TearDev {
    fn size(&self) -> u64 {
        self.inner.lock().unwrap().cur.len() as u64 / 512 * 512
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> KResult<()> {
        let d = self.inner.lock().unwrap();
        let at = (sector * 512) as usize;
        buf.copy_from_slice(&d.cur[at..at + buf.len()]);
        Ok(())
    }
    fn write_sectors(&self, sector: u64, buf: &[u8]) -> KResult<()> {
        {
            let mut d = self.inner.lock().unwrap();
            let at = (sector * 512) as usize;
            d.cur[at..at + buf.len()].copy_from_slice(buf);
            d.pending.push((at, buf.to_vec()));
        }
        self.gate.wrote();
        Ok(())
    }
    fn flush(&self) -> KResult<()> {
        self.gate.flush(|| {
            let mut d = self.inner.lock().unwrap();
            let pending = std::mem::take(&mut d.pending);
            let before = d.durable.clone();
            for (at, v) in &pending {
                d.durable[*at..*at + v.len()].copy_from_slice(v);
            }
            d.last = Some((before, pending));
            d.flushes += 1;
            Ok(())
        })
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn mode_of(root: &Arc<dyn Inode>, name: &[u8]) -> u32 {
    let caller = crate::fs::vfs::Caller::kernel();
    root.lookup(name, &caller).unwrap().stat().unwrap().mode & 0o7777
}

/// An fsync whose transaction allocated no block (an overwrite in place
/// and a chmod) commits under one flush, and a second fsync with
/// nothing new flushes nothing. Then every crash that loses one block
/// of that flush's writes: this driver's replay and the host's e2fsck
/// agree (the chmod is there exactly when the whole transaction reached
/// the log), and the filesystem is clean.
#[test]
fn ext4_one_flush_commit_and_its_torn_crashes_replay_whole_or_not_at_all() {
    let base = make_image("ext4async", &["-t", "ext4", "-J", "size=1"], "4M");
    let dev = Arc::new(TearDev {
        inner: Mutex::new(TearInner {
            cur: base.clone(),
            durable: base,
            pending: Vec::new(),
            last: None,
            flushes: 0,
        }),
        gate: FlushGate::default(),
    });
    let disk = Disk::new("tear7100".into(), (240, 7100), Kind::Ubd);
    disk.bind(Some(dev.clone() as Arc<dyn BlockDevice>));
    let root = vfs::mount(&disk, false).expect("mount");
    let fs = fs_of(&root);
    let caller = crate::fs::vfs::Caller::kernel();
    write_all(&root, b"f", &[1u8; 20000]).unwrap();
    fs.sync_fs().unwrap();
    // Nothing new since: no flush at all.
    let n0 = dev.flushes();
    fs.sync_fs().unwrap();
    assert_eq!(dev.flushes(), n0, "an fsync with nothing new flushed");
    // An overwrite in place and a chmod: no block allocated.
    write_all(&root, b"f", &[2u8; 20000]).unwrap();
    root.lookup(b"f", &caller)
        .unwrap()
        .setattr(&crate::fs::vfs::SetAttr {
            mode: Some(0o600),
            ..Default::default()
        })
        .unwrap();
    fs.sync_fs().unwrap();
    assert_eq!(
        dev.flushes(),
        n0 + 1,
        "a commit with no new block: one flush"
    );
    let (before, writes) = dev.inner.lock().unwrap().last.clone().unwrap();
    drop(root);
    drop(fs);
    // The writes of that flush, block by block (1 KiB: the image's
    // block size), any one of which a crash may lose.
    let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
    for (at, v) in &writes {
        for (k, c) in v.chunks(1024).enumerate() {
            pieces.push((at + k * 1024, c.to_vec()));
        }
    }
    assert!(pieces.len() >= 3, "{} blocks under the flush", pieces.len());
    let (mut whole, mut none) = (0, 0);
    for lost in 0..=pieces.len() {
        let mut img = before.clone();
        for (k, (at, c)) in pieces.iter().enumerate() {
            if k != lost {
                img[*at..*at + c.len()].copy_from_slice(c);
            }
        }
        // The host's e2fsck replays it...
        let path =
            std::env::temp_dir().join(format!("ruml-ext2-torn-{lost}-{}", std::process::id()));
        std::fs::write(&path, &img).unwrap();
        let out = std::process::Command::new(host_tool("e2fsck"))
            .arg("-fy")
            .arg(&path)
            .output()
            .unwrap();
        let host_img = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !out.contains("corrupt") && !out.contains("Fix? yes"),
            "lost block {lost}: e2fsck -fy: {out}"
        );
        let (clean, o) = e2fsck(&host_img, &format!("torn-host{lost}"));
        assert!(clean, "lost block {lost}, after the host's replay: {o}");
        // ...and so does this driver, to the same result.
        let mut modes = Vec::new();
        for (n, im) in [(0, host_img), (1, img)] {
            let (dev2, root2) = mount_mem(im, None, 7200 + 2 * lost as u32 + n);
            let root2 = root2.unwrap_or_else(|e| panic!("lost block {lost}: mount: {e:?}"));
            modes.push(mode_of(&root2, b"f"));
            let data = read_all(&root2, b"f").unwrap();
            assert_eq!(data.len(), 20000, "lost block {lost}");
            walk(&fs_of(&root2));
            drop(root2);
            let (clean, o) = e2fsck(&dev2.0.lock().unwrap(), &format!("torn{lost}-{n}"));
            assert!(clean, "lost block {lost}, after replay: {o}");
        }
        assert_eq!(
            modes[0], modes[1],
            "lost block {lost}: host and ruml differ"
        );
        match modes[0] {
            0o600 => whole += 1,
            0o644 => none += 1,
            m => panic!("lost block {lost}: mode {m:o}"),
        }
    }
    eprintln!(
        "{} blocks under the flush: replayed whole {whole} times, dropped {none}",
        pieces.len()
    );
    // Losing nothing (or only file data) replays the transaction;
    // losing its commit block or a logged block drops it.
    assert!(whole > 0 && none > 0, "replayed {whole}, dropped {none}");
}
