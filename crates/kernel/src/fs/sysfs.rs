//! A minimal sysfs at /sys: what programs read to count CPUs
//! (/sys/devices/system/cpu/{online,possible,present,cpuN}), the network
//! interfaces (/sys/class/net/IFACE/*, their values read from the network
//! subsystem when opened) and the usual top-level directories. The tree is
//! read-only and immutable: no locking.

use std::sync::Arc;

use crate::errno::KResult;
use crate::error;
use crate::fs::file::OpenFile;
use crate::fs::simple::{now, Meta, StaticDir};
use crate::fs::types::{FileType, Stat, StatFs, S_IFREG};
use crate::fs::vfs::{anon_dev, Caller, FileOps, Inode, InodeKey};

const SYSFS_MAGIC: i64 = 0x6265_6572;

/// A read-only file with fixed text.
pub(crate) struct StaticFile {
    pub meta: Meta,
    pub text: Vec<u8>,
}

impl Inode for StaticFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFREG | 0o444, 1, 4096))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 {
            return error!(EACCES);
        }
        Ok(Arc::new(Text(self.text.clone())))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A read-only file whose text is made when it is opened.
struct LiveFile {
    meta: Meta,
    gen: Box<dyn Fn() -> String + Send + Sync>,
}

impl Inode for LiveFile {
    fn file_type(&self) -> FileType {
        FileType::Regular
    }
    fn key(&self) -> InodeKey {
        self.meta.key()
    }
    fn stat(&self) -> KResult<Stat> {
        Ok(self.meta.stat(S_IFREG | 0o444, 1, 4096))
    }
    fn statfs(&self) -> KResult<StatFs> {
        Ok(self.meta.statfs())
    }
    fn open(&self, flags: u32, _caller: &Caller<'_>) -> KResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 {
            return error!(EACCES);
        }
        Ok(Arc::new(Text((self.gen)().into_bytes())))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct Text(Vec<u8>);

impl FileOps for Text {
    fn read(&self, _f: &OpenFile, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let off = off.min(self.0.len() as u64) as usize;
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
}

/// Builds the sysfs root.
pub fn new_sysfs() -> Arc<dyn Inode> {
    let base = Meta {
        dev: anon_dev(),
        ino: 1,
        magic: SYSFS_MAGIC,
        time: now(),
        read_only: true,
    };
    let mut ino = 1u64;
    let mut m = || {
        ino += 1;
        base.with_ino(ino)
    };
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let range = if ncpu == 1 {
        "0\n".to_string()
    } else {
        format!("0-{}\n", ncpu - 1)
    };
    let file = |meta: Meta, t: &str| -> Arc<dyn Inode> {
        Arc::new(StaticFile {
            meta,
            text: t.as_bytes().to_vec(),
        })
    };
    let dir = |meta: Meta, children: Vec<(Vec<u8>, Arc<dyn Inode>)>| -> Arc<dyn Inode> {
        Arc::new(StaticDir {
            meta,
            perm: 0o755,
            children,
        })
    };
    let mut cpu_children: Vec<(Vec<u8>, Arc<dyn Inode>)> = vec![
        (b"online".to_vec(), file(m(), &range)),
        (b"possible".to_vec(), file(m(), &range)),
        (b"present".to_vec(), file(m(), &range)),
        (b"kernel_max".to_vec(), file(m(), "8191\n")),
    ];
    for i in 0..ncpu {
        let online = file(m(), "1\n");
        cpu_children.push((
            format!("cpu{i}").into_bytes(),
            dir(m(), vec![(b"online".to_vec(), online)]),
        ));
    }
    let cpu = dir(m(), cpu_children);
    let system = dir(m(), vec![(b"cpu".to_vec(), cpu)]);
    let devices = dir(m(), vec![(b"system".to_vec(), system)]);
    // /sys/class/net: one directory per interface (the set is fixed at
    // boot), each attribute read live.
    let mut ifaces: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
    for name in crate::net::iface::names() {
        let mut attrs: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
        for attr in crate::net::iface::SYSFS_ATTRS {
            let n = name.clone();
            attrs.push((
                attr.as_bytes().to_vec(),
                Arc::new(LiveFile {
                    meta: m(),
                    gen: Box::new(move || crate::net::iface::sysfs_attr(&n, attr)),
                }),
            ));
        }
        ifaces.push((name.into_bytes(), dir(m(), attrs)));
    }
    let class = dir(m(), vec![(b"net".to_vec(), dir(m(), ifaces))]);
    let mut top: Vec<(Vec<u8>, Arc<dyn Inode>)> =
        vec![(b"devices".to_vec(), devices), (b"class".to_vec(), class)];
    top.push((b"block".to_vec(), crate::block::sysfs_block_dir(m())));
    let dev_block = crate::block::sysfs_dev_block_dir(m());
    top.push((
        b"dev".to_vec(),
        dir(m(), vec![(b"block".to_vec(), dev_block)]),
    ));
    for name in ["bus", "firmware", "fs", "kernel", "module", "power"] {
        top.push((name.as_bytes().to_vec(), dir(m(), Vec::new())));
    }
    top.sort_by(|a, b| a.0.cmp(&b.0));
    dir(base, top)
}
