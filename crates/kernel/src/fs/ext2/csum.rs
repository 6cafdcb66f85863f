//! The checksums ext4 and jbd2 keep: crc32c (metadata_csum, the journal's
//! v2/v3 checksums) and crc16 (gdt_csum's group descriptors).
//!
//! `crc32c` is the raw update Linux's `crc32c()` performs — no inversion
//! before or after — so `crc32c(!0, data)` is what ext4 stores.

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

const fn crc16_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xA001
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();
static CRC16: [u16; 256] = crc16_table();

/// crc32c (Castagnoli), reflected, continuing from `crc`: the CPU's
/// crc32 instruction where it has SSE4.2 (every block bitmap, inode and
/// directory block a write changes is checksummed), else a table.
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2 (checked just above).
        return unsafe { crc32c_sse42(crc, data) };
    }
    crc32c_table_driven(crc, data)
}

fn crc32c_table_driven(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// crc32c with SSE4.2's crc32 instruction, eight bytes at a time.
///
/// # Safety
/// The CPU must have SSE4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut c = crc as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        c = _mm_crc32_u64(c, u64::from_le_bytes(b));
    }
    let mut c = c as u32;
    for &b in words.remainder() {
        c = _mm_crc32_u8(c, b);
    }
    c
}

/// crc16 (ANSI, reflected polynomial 0xA001), continuing from `crc`.
pub(crate) fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc = CRC16[((crc ^ b as u16) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The standard check values: crc32c("123456789") = 0xE3069283
        // (with the usual inversions), crc16/ARC("123456789") = 0xBB3D.
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }

    #[test]
    fn the_instruction_and_the_table_agree() {
        let data: Vec<u8> = (0..4099u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 4096, 4099] {
            for seed in [0, !0, 0x1234_5678] {
                assert_eq!(
                    crc32c(seed, &data[..len]),
                    crc32c_table_driven(seed, &data[..len]),
                    "len {len} seed {seed:#x}"
                );
            }
        }
    }
}
