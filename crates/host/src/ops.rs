//! The queue of address-space changes shared by both backends: map,
//! unmap and protect requests, merged with their neighbours as they come,
//! carried out in one batch before the guest next runs.

use crate::physmem::{Pfn, PAGE_SIZE};

/// One queued address-space change (the kernel's memory manager queues
/// these too, as `mm::HostOp`, and hands them to [`crate::AddressSpace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Map {
        addr: u64,
        len: u64,
        prot: u32,
        pfn: Pfn,
    },
    Unmap {
        addr: u64,
        len: u64,
    },
    Protect {
        addr: u64,
        len: u64,
        prot: u32,
    },
}

impl Op {
    /// The host system call that carries the change out in a stub whose
    /// physmem descriptor is `fd`: number and six arguments.
    pub(crate) fn syscall(&self, fd: i32) -> (u64, [u64; 6]) {
        match *self {
            Op::Map {
                addr,
                len,
                prot,
                pfn,
            } => (
                libc::SYS_mmap as u64,
                [
                    addr,
                    len,
                    prot as u64,
                    (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                    fd as u64,
                    pfn * PAGE_SIZE,
                ],
            ),
            Op::Unmap { addr, len } => (libc::SYS_munmap as u64, [addr, len, 0, 0, 0, 0]),
            Op::Protect { addr, len, prot } => {
                (libc::SYS_mprotect as u64, [addr, len, prot as u64, 0, 0, 0])
            }
        }
    }
}

/// Queues a map, merging it with the previous one when contiguous.
pub(crate) fn push_map(ops: &mut Vec<Op>, addr: u64, len: u64, prot: u32, pfn: Pfn) {
    if let Some(Op::Map {
        addr: a,
        len: l,
        prot: p,
        pfn: f,
    }) = ops.last_mut()
    {
        if *a + *l == addr && *p == prot && *f + *l / PAGE_SIZE == pfn {
            *l += len;
            return;
        }
    }
    ops.push(Op::Map {
        addr,
        len,
        prot,
        pfn,
    });
}

/// Queues an unmap, merging it with the previous one when contiguous.
pub(crate) fn push_unmap(ops: &mut Vec<Op>, addr: u64, len: u64) {
    if let Some(Op::Unmap { addr: a, len: l }) = ops.last_mut() {
        if *a + *l == addr {
            *l += len;
            return;
        }
    }
    ops.push(Op::Unmap { addr, len });
}

/// Queues a protection change, merging it with the previous one.
pub(crate) fn push_protect(ops: &mut Vec<Op>, addr: u64, len: u64, prot: u32) {
    if let Some(Op::Protect {
        addr: a,
        len: l,
        prot: p,
    }) = ops.last_mut()
    {
        if *a + *l == addr && *p == prot {
            *l += len;
            return;
        }
    }
    ops.push(Op::Protect { addr, len, prot });
}
