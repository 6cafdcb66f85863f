//! Rendezvous under load: many blocking opens of named pipes, in several
//! ruml instances at once, while host threads keep every core busy.
//!
//! A FIFO's blocking open is a rendezvous between a reader and a writer;
//! on a busy machine the partner may open, write and close before the
//! waiter runs again, so a wait for "a partner is open now" can miss it
//! (and did: issue 16). No timing is asserted: each instance has the
//! harness's timeout, and the test fails only on a hang or a wrong byte.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Host threads spinning on every core until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

const INSTANCES: usize = 4;
/// Rendezvous per instance and direction: 4 × 2 × 70 = 560 in all.
const ROUNDS: usize = 70;

/// A hang never ends; a slow run on a loaded machine does, so the budget
/// is generous (one instance takes about 10 s with every core busy).
const BUDGET: std::time::Duration = std::time::Duration::from_secs(300);

/// Each round: a reader that opens first (the writer comes later, in
/// the background) and a writer that opens first (the reader comes later).
const SCRIPT: &str = r#"cd /tmp || exit 1
i=0
while [ $i -lt $ROUNDS ]; do
    mkfifo f$i || exit 2
    (echo r$i > f$i &)
    cat f$i
    cat f$i > got$i &
    echo w$i > f$i
    wait
    cat got$i
    rm f$i got$i
    i=$((i+1))
done
"#;

#[test]
fn fifo_rendezvous_under_load() {
    let _load = Load::start();
    let mut env = common::test_env();
    env.push(("ROUNDS".into(), ROUNDS.to_string()));
    let expected: String = (0..ROUNDS).map(|i| format!("r{i}\nw{i}\n")).collect();
    let runs: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let env = env.clone();
            std::thread::spawn(move || {
                let mut cmd = std::process::Command::new(common::ruml_bin());
                cmd.args(["quiet", "--", "/bin/sh", "-c", SCRIPT]);
                common::run_command(cmd, &env, "ruml: FIFO rendezvous".into(), BUDGET)
            })
        })
        .collect();
    for r in runs {
        let out = r.join().expect("instance thread");
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, expected, "{out}");
    }
}
