//! /proc/PID/smaps: each line of maps followed by the area's usage rows,
//! in Linux's order and format (mm::rss computes them). Huge pages, swap,
//! KSM and lazily freed memory do not exist in ruml: their rows are 0.
//! The VmFlags row is not drawn.

use crate::mm::rss::{AreaUsage, PSS_SHIFT};

/// smaps from the text of maps and the areas' usage (matched by start).
pub fn smaps_text(maps: &str, usage: &[AreaUsage]) -> String {
    let mut s = String::new();
    for line in maps.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| {
                Some((
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                ))
            });
        let (start, end) = range.unwrap_or((0, 0));
        let u = usage
            .iter()
            .find(|u| u.start == start)
            .copied()
            .unwrap_or_default();
        let kb = |b: u64| b >> 10;
        let pss_kb = |p: u64| p >> (10 + PSS_SHIFT);
        s.push_str(line);
        s.push('\n');
        let rows: [(&str, u64); 22] = [
            ("Size", kb(end.saturating_sub(start))),
            ("KernelPageSize", 4),
            ("MMUPageSize", 4),
            ("Rss", kb(u.rss)),
            ("Pss", pss_kb(u.pss)),
            ("Pss_Dirty", pss_kb(u.pss_dirty)),
            ("Shared_Clean", kb(u.shared_clean)),
            ("Shared_Dirty", kb(u.shared_dirty)),
            ("Private_Clean", kb(u.private_clean)),
            ("Private_Dirty", kb(u.private_dirty)),
            ("Referenced", kb(u.rss)),
            ("Anonymous", kb(u.anonymous)),
            ("KSM", 0),
            ("LazyFree", 0),
            ("AnonHugePages", 0),
            ("ShmemPmdMapped", 0),
            ("FilePmdMapped", 0),
            ("Shared_Hugetlb", 0),
            ("Private_Hugetlb", 0),
            ("Swap", 0),
            ("SwapPss", 0),
            ("Locked", pss_kb(u.locked)),
        ];
        for (name, v) in rows {
            // As Linux's SEQ_PUT_DEC: the name and colon padded to 16,
            // the number right-aligned in 8.
            s.push_str(&format!("{:<16}{:>8} kB\n", format!("{name}:"), v));
        }
        s.push_str("THPeligible:           0\n");
    }
    s
}
