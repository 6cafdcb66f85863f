//! docs/syscalls.md lists every x86_64 system call with its state in ruml.
//!
//! The file is generated from the kernel's table; this test checks it
//! against the host's <asm/unistd_64.h> (plus the calls newer than Debian
//! 12's headers, up to 462). Format: a markdown table whose rows are
//! `| NR | name | state |`, state one of `implemented`, `partial`, `ENOSYS`.

mod common;

use std::collections::BTreeMap;

const HEADER: &str = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
const LAST: u32 = 462;
const STATES: [&str; 3] = ["implemented", "partial", "ENOSYS"];

/// x86_64 calls after Debian 12's headers (Linux 6.1), up to 462.
const NEWER: &[(u32, &str)] = &[
    (451, "cachestat"),
    (452, "fchmodat2"),
    (453, "map_shadow_stack"),
    (454, "futex_wake"),
    (455, "futex_wait"),
    (456, "futex_requeue"),
    (457, "statmount"),
    (458, "listmount"),
    (459, "lsm_get_self_attr"),
    (460, "lsm_set_self_attr"),
    (461, "lsm_list_modules"),
    (462, "mseal"),
];

fn expected() -> BTreeMap<u32, String> {
    let text = std::fs::read_to_string(HEADER)
        .unwrap_or_else(|e| panic!("cannot read {HEADER} (install linux-libc-dev): {e}"));
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if let (Some("#define"), Some(name), Some(nr)) = (w.next(), w.next(), w.next()) {
            if let (Some(name), Ok(nr)) = (name.strip_prefix("__NR_"), nr.parse::<u32>()) {
                if nr <= LAST {
                    map.insert(nr, name.to_string());
                }
            }
        }
    }
    assert!(
        map.len() > 300,
        "parsed only {} syscalls from {HEADER}",
        map.len()
    );
    for &(nr, name) in NEWER {
        map.entry(nr).or_insert_with(|| name.to_string());
    }
    map
}

#[test]
fn syscalls_md_lists_every_syscall() {
    let path = common::workspace_root().join("docs/syscalls.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\n(it is generated from the kernel's syscall table)",
            path.display()
        )
    });
    let mut rows: BTreeMap<u32, (String, String)> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        // Header and separator rows have no number in the first cell.
        let Ok(nr) = cells[0].trim_matches('`').parse::<u32>() else {
            continue;
        };
        if cells.len() < 3 {
            problems.push(format!(
                "line {}: expected `| NR | name | state |`: {line}",
                i + 1
            ));
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let state = cells[2].trim_matches('`').to_string();
        if !STATES.contains(&state.as_str()) {
            problems.push(format!(
                "line {}: state {state:?} of {nr} {name} is not one of {STATES:?}",
                i + 1
            ));
        }
        if rows.insert(nr, (name.clone(), state)).is_some() {
            problems.push(format!(
                "line {}: syscall {nr} ({name}) listed twice",
                i + 1
            ));
        }
    }
    for (nr, name) in expected() {
        match rows.get(&nr) {
            None => problems.push(format!("syscall {nr} ({name}) is missing")),
            Some((n, _)) if *n != name => {
                problems.push(format!("syscall {nr} is named {n:?}, expected {name:?}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} has {} problem(s):\n{}",
        path.display(),
        problems.len(),
        problems.join("\n")
    );
}
