//! The page cache: file pages in physmem, shared by every mapping of the
//! same file page (read-only, copy-on-write for private writers), so a
//! library mapped by a hundred processes is in memory once.
//!
//! Keyed by the file's (dev, ino) and page index; the cache holds one
//! reference to each frame. Locking: one mutex over the map, held while a
//! missing page is read in (so two faults never read the same page twice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruml_host::{Pfn, PhysMem};

use crate::errno::KResult;
use crate::error;
use crate::fs::FileRef;

/// Pages one miss reads at most.
const MAX_AHEAD: u64 = 32;

/// (file's (dev, ino), page index).
type PageKey = ((u64, u64), u64);

pub struct PageCache {
    phys: Arc<PhysMem>,
    pages: Mutex<HashMap<PageKey, Pfn>>,
    /// Files with pages here (so invalidating others is cheap).
    files: Mutex<std::collections::HashSet<(u64, u64)>>,
}

impl PageCache {
    pub fn new(phys: Arc<PhysMem>) -> PageCache {
        PageCache {
            phys,
            pages: Mutex::new(HashMap::new()),
            files: Mutex::new(Default::default()),
        }
    }

    /// The frame holding page `index` of the file, with a reference for the
    /// caller. Bytes past the end of the file read as zero.
    pub fn get_page(&self, file: &FileRef, key: (u64, u64), index: u64) -> KResult<Pfn> {
        self.get_page_ahead(file, key, index, 1)
    }

    /// [`PageCache::get_page`], and on a miss also the file's next pages
    /// up to `ahead` in all, read with the same host request (a fault
    /// that maps 32 pages of a program reads them in one go, not one
    /// page per host read). Pages already cached are left as they are;
    /// pages wholly past the end of the file are not cached.
    pub fn get_page_ahead(
        &self,
        file: &FileRef,
        key: (u64, u64),
        index: u64,
        ahead: u64,
    ) -> KResult<Pfn> {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&pfn) = pages.get(&(key, index)) {
            self.phys.get(pfn);
            return Ok(pfn);
        }
        // Only the run of missing pages right after `index`.
        let mut count = 1u64;
        while count < ahead.clamp(1, MAX_AHEAD) && !pages.contains_key(&(key, index + count)) {
            count += 1;
        }
        let mut buf = vec![0u8; (count * 4096) as usize];
        let mut got = 0;
        while got < buf.len() {
            let n = file.read_at_uncached(index * 4096 + got as u64, &mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let count = count.min((got as u64).div_ceil(4096)).max(1);
        let mut first = None;
        for i in 0..count {
            let Some(pfn) = self.phys.alloc() else {
                if first.is_some() {
                    break;
                }
                crate::log::warn("out of guest memory for the page cache (raise mem=)");
                return error!(ENOMEM);
            };
            let at = (i * 4096) as usize;
            self.phys.write(pfn, 0, &buf[at..at + 4096]);
            pages.insert((key, index + i), pfn);
            if first.is_none() {
                first = Some(pfn);
            }
        }
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        let pfn = first.ok_or(crate::errno!(ENOMEM))?;
        self.phys.get(pfn);
        Ok(pfn)
    }

    /// The frame of page `index` of the file if it is cached, with a
    /// reference for the caller; never reads the file (fault-around).
    pub fn lookup(&self, key: (u64, u64), index: u64) -> Option<Pfn> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let pfn = *pages.get(&(key, index))?;
        self.phys.get(pfn);
        Some(pfn)
    }

    /// How many pages of `[first, last]` (inclusive) of the file are
    /// cached (cachestat).
    pub fn count(&self, key: (u64, u64), first: u64, last: u64) -> u64 {
        if !self.has_file(key) {
            return 0;
        }
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .keys()
            .filter(|(k, i)| *k == key && (first..=last).contains(i))
            .count() as u64
    }

    /// Whether any page of the file is cached.
    pub fn has_file(&self, key: (u64, u64)) -> bool {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
    }

    /// Copies the cached pages' bytes over `buf`, which holds the file's
    /// bytes from `off`.
    pub fn read_over(&self, key: (u64, u64), off: u64, buf: &mut [u8]) {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let (idx, inner) = (at / 4096, (at % 4096) as usize);
            let n = (4096 - inner).min(buf.len() - done);
            if let Some(&pfn) = pages.get(&(key, idx)) {
                self.phys.read(pfn, inner, &mut buf[done..done + n]);
            }
            done += n;
        }
    }

    /// Puts `data`, just written to the file at `off`, into its cached pages.
    pub fn write_through(&self, key: (u64, u64), off: u64, data: &[u8]) {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = 0usize;
        while done < data.len() {
            let at = off + done as u64;
            let (idx, inner) = (at / 4096, (at % 4096) as usize);
            let n = (4096 - inner).min(data.len() - done);
            if let Some(&pfn) = pages.get(&(key, idx)) {
                self.phys.write(pfn, inner, &data[done..done + n]);
            }
            done += n;
        }
    }

    /// A file was truncated to `len`: its cached bytes from `len` on read
    /// as zeros (a shrink then a write past the hole must not bring the
    /// old bytes back through the cache or a shared mapping). Pages are
    /// kept, not dropped, as shared mappings may hold them.
    pub fn truncate(&self, key: (u64, u64), len: u64) {
        if !self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return;
        }
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        for (&(k, idx), &pfn) in pages.iter() {
            if k != key {
                continue;
            }
            let start = idx * 4096;
            if start + 4096 <= len {
                continue;
            }
            let from = len.saturating_sub(start) as usize;
            self.phys.zero(pfn, from, 4096 - from);
        }
    }

    /// Drops the pages of a file (it changed or went away).
    pub fn invalidate(&self, key: (u64, u64)) {
        if !self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
        {
            return;
        }
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<_> = pages.keys().filter(|(k, _)| *k == key).copied().collect();
        let mut frames = Vec::new();
        for k in gone {
            if let Some(p) = pages.remove(&k) {
                frames.push(p);
            }
        }
        self.phys.put_many(&frames);
    }
}
