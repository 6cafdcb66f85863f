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
    len: usize,
}

impl UserFrames {
    pub(super) fn new(phys: Arc<PhysMem>) -> UserFrames {
        UserFrames {
            phys,
            pieces: Vec::new(),
            len: 0,
        }
    }

    /// Adds a piece (its frame's reference is already taken).
    pub(super) fn push(&mut self, pfn: Pfn, off: usize, n: usize) {
        self.pieces.push((pfn, off, n));
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
        let mut pos = 0usize;
        for &(pfn, off, len) in &self.pieces {
            if pos >= end {
                break;
            }
            let (lo, hi) = (pos.max(at), (pos + len).min(end));
            if lo < hi {
                f(pfn, off + (lo - pos), lo, hi - lo);
            }
            pos += len;
        }
    }

    /// Copies `n` bytes from frame `src` at `src_off` into the buffer at
    /// `at` (a read(2) into the guest).
    pub fn copy_from_frame(&self, at: usize, src: Pfn, src_off: usize, n: usize) {
        debug_assert!(src_off + n <= PAGE as usize);
        self.each(at, n, |pfn, off, pos, k| {
            let from = src_off + (pos - at);
            // SAFETY: both ranges lie inside physmem frames (offsets and
            // lengths within a page, checked by construction); copy is a
            // memmove, so the same frame on both sides is fine.
            unsafe {
                std::ptr::copy(
                    self.phys.page_ptr(src).add(from),
                    self.phys.page_ptr(pfn).add(off),
                    k,
                );
            }
        });
    }

    /// Copies `n` bytes of the buffer at `at` into frame `dst` at
    /// `dst_off` (a write(2) from the guest).
    pub fn copy_to_frame(&self, at: usize, dst: Pfn, dst_off: usize, n: usize) {
        debug_assert!(dst_off + n <= PAGE as usize);
        self.each(at, n, |pfn, off, pos, k| {
            let to = dst_off + (pos - at);
            // SAFETY: as in copy_from_frame.
            unsafe {
                std::ptr::copy(
                    self.phys.page_ptr(pfn).add(off),
                    self.phys.page_ptr(dst).add(to),
                    k,
                );
            }
        });
    }

    /// Bytes `[at, at + n)` of the buffer as pointers into the kernel's
    /// physmem mapping, for one host preadv/pwritev over them.
    pub fn iov(&self, at: usize, n: usize) -> Vec<(*mut u8, usize)> {
        let mut v = Vec::with_capacity(n / PAGE as usize + 2);
        // SAFETY (of the add): the offset lies inside the piece's frame.
        self.each(at, n, |pfn, off, _, k| {
            v.push((unsafe { self.phys.page_ptr(pfn).add(off) }, k))
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
