//! Guest memory held for a direct copy: the physmem frames behind a range
//! of guest buffers, so that files whose data lives in physmem (tmpfs)
//! copy straight between their frames and the guest's, with no kernel
//! buffer in between.
//!
//! Lifetime: each frame carries one reference taken when the range was
//! resolved, dropped with the `UserFrames`; a concurrent munmap cannot
//! hand the frame to someone else meanwhile. The Mm's lock is not held
//! while copying (so a file's lock may be taken without ordering against
//! it).

use std::sync::Arc;

use ruml_host::{Pfn, PhysMem};

use super::PAGE;

/// See the module documentation.
pub struct UserFrames {
    phys: Arc<PhysMem>,
    /// (frame, offset in the frame, bytes), in buffer order.
    pieces: Vec<(Pfn, usize, usize)>,
    /// The offset in the buffer where each piece starts.
    starts: Vec<usize>,
    len: usize,
}

impl UserFrames {
    pub(super) fn new(phys: Arc<PhysMem>) -> UserFrames {
        UserFrames {
            phys,
            pieces: Vec::new(),
            starts: Vec::new(),
            len: 0,
        }
    }

    /// Adds a piece (its frame's reference is already taken).
    pub(super) fn push(&mut self, pfn: Pfn, off: usize, n: usize) {
        self.pieces.push((pfn, off, n));
        self.starts.push(self.len);
        self.len += n;
    }

    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(frame, offset in frame, offset in buffer, n)` for each
    /// piece of `[at, at + n)` of the buffer.
    fn each(&self, at: usize, n: usize, mut f: impl FnMut(Pfn, usize, usize, usize)) {
        let end = (at + n).min(self.len);
        // The first piece that ends past `at` (pieces are in buffer order).
        let first = self.starts.partition_point(|&s| s <= at).saturating_sub(1);
        for (i, &(pfn, off, len)) in self.pieces.iter().enumerate().skip(first) {
            let pos = self.starts[i];
            if pos >= end {
                break;
            }
            let (lo, hi) = (pos.max(at), (pos + len).min(end));
            if lo < hi {
                f(pfn, off + (lo - pos), lo, hi - lo);
            }
        }
    }

    /// Calls `f(byte offset in physmem, offset in buffer, n)` for each
    /// run of `[at, at + n)` of the buffer that is contiguous in physmem
    /// (the pieces of a buffer whose frames follow one another merge).
    fn each_run(&self, at: usize, n: usize, mut f: impl FnMut(u64, usize, usize)) {
        let mut run: Option<(u64, usize, usize)> = None;
        self.each(at, n, |pfn, off, pos, k| {
            let phys = pfn * PAGE + off as u64;
            match &mut run {
                Some((p, _, len)) if *p + *len as u64 == phys => *len += k,
                _ => {
                    if let Some((p, b, len)) = run.take() {
                        f(p, b, len);
                    }
                    run = Some((phys, pos, k));
                }
            }
        });
        if let Some((p, b, len)) = run {
            f(p, b, len);
        }
    }

    /// Copies the `n` bytes of physmem at byte `src` (a run of frames that
    /// follow one another) into the buffer at `at` (a read(2) into the
    /// guest): one copy per run of the buffer contiguous in physmem.
    pub fn copy_from_phys(&self, at: usize, src: u64, n: usize) {
        let total = self.phys.total_pages() * PAGE;
        if src.checked_add(n as u64).is_none_or(|e| e > total) {
            return;
        }
        let base = self.phys.page_ptr(0);
        self.each_run(at, n, |dst, pos, k| {
            // SAFETY: both ranges lie inside the physmem mapping (the
            // source checked above, the buffer's pieces by construction);
            // copy is a memmove, so overlap (a buffer that is a mapping of
            // the file itself) is fine.
            unsafe {
                std::ptr::copy(
                    base.add((src + (pos - at) as u64) as usize),
                    base.add(dst as usize),
                    k,
                )
            }
        });
    }

    /// Copies `n` bytes of the buffer at `at` into physmem at byte `dst`
    /// (a run of frames that follow one another; a write(2) from the
    /// guest): one copy per run of the buffer contiguous in physmem.
    pub fn copy_to_phys(&self, at: usize, dst: u64, n: usize) {
        let total = self.phys.total_pages() * PAGE;
        if dst.checked_add(n as u64).is_none_or(|e| e > total) {
            return;
        }
        let base = self.phys.page_ptr(0);
        self.each_run(at, n, |src, pos, k| {
            // SAFETY: as in copy_from_phys.
            unsafe {
                std::ptr::copy(
                    base.add(src as usize),
                    base.add((dst + (pos - at) as u64) as usize),
                    k,
                )
            }
        });
    }

    /// Bytes `[at, at + n)` of the buffer as pointers into the kernel's
    /// physmem mapping, for one host preadv/pwritev over them.
    pub fn iov(&self, at: usize, n: usize) -> Vec<(*mut u8, usize)> {
        let mut v = Vec::with_capacity(n / PAGE as usize + 2);
        let base = self.phys.page_ptr(0);
        // SAFETY (of the add): the run lies inside physmem.
        self.each_run(at, n, |p, _, k| {
            v.push((unsafe { base.add(p as usize) }, k))
        });
        v
    }

    /// The pieces (frame, offset in the frame, bytes), in buffer order,
    /// for host I/O straight into or out of them.
    pub fn pieces(&self) -> &[(Pfn, usize, usize)] {
        &self.pieces
    }

    pub fn phys(&self) -> &Arc<PhysMem> {
        &self.phys
    }

    /// Copies `data` into the buffer from its start.
    pub fn copy_in(&self, data: &[u8]) {
        self.each(0, data.len(), |pfn, off, pos, k| {
            self.phys.write(pfn, off, &data[pos..pos + k])
        });
    }

    /// Copies the buffer's first `out.len()` bytes out.
    pub fn copy_out(&self, out: &mut [u8]) {
        self.each(0, out.len(), |pfn, off, pos, k| {
            self.phys.read(pfn, off, &mut out[pos..pos + k])
        });
    }

    /// Zeroes `n` bytes of the buffer at `at` (a hole read).
    pub fn zero(&self, at: usize, n: usize) {
        self.each(at, n, |pfn, off, _, k| self.phys.zero(pfn, off, k));
    }
}

impl Drop for UserFrames {
    fn drop(&mut self) {
        // One reference per piece was taken: put them all.
        let all: Vec<Pfn> = self.pieces.iter().map(|p| p.0).collect();
        self.phys.put_many(&all);
    }
}
