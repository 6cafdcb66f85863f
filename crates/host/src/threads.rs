//! Host threads for the kernel's long-running work (a guest task's loop),
//! kept for reuse: a thread whose job ended waits, asleep, for the next
//! one, so that fork and thread creation need not pay for a host thread's
//! birth and death each time (clone3, its stack's mmap and guard page, the
//! signal stack std sets up, the munmaps at its end: some ten host calls).
//!
//! Bounded: at most [`MAX_IDLE`] threads wait; one that has waited
//! [`IDLE_TIMEOUT`] ends. Waiting threads sleep on a channel and use no
//! CPU. A thread takes the name of each job it runs.
//!
//! Locking: the list of waiting threads is one mutex, held only to push
//! or take an entry. A thread that timed out leaves only if its entry is
//! still in the list; if a spawner took it meanwhile, a job is on its way
//! and the thread waits for it (the spawner holds the sending end until
//! it has sent), so no job is ever lost.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::stats::{self, Counter};

/// A job: the thread's name and what it runs.
type Job = (String, Box<dyn FnOnce() + Send + 'static>);

/// Most threads kept waiting for work.
pub const MAX_IDLE: usize = 16;
/// How long a thread waits for work before it ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Waiting threads: an id and the sending end of each one's channel.
type Idle = Mutex<Vec<(u64, Sender<Job>)>>;

fn idle() -> &'static Idle {
    static I: OnceLock<Idle> = OnceLock::new();
    I.get_or_init(|| Mutex::new(Vec::new()))
}

/// `RUML_THREAD_REUSE=off` (environment of ruml): a new host thread for
/// every job, as before (to measure).
fn disabled() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| std::env::var("RUML_THREAD_REUSE").is_ok_and(|v| v == "off"))
}

/// Runs `f` on a host thread named `name`: a waiting one if there is
/// one, else a new one. Fails only if no thread could be started.
pub fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut job: Job = (name, Box::new(f));
    if !disabled() {
        loop {
            let w = idle().lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some((_, tx)) = w else { break };
            match tx.send(job) {
                Ok(()) => {
                    stats::bump(Counter::HostThreadReuse);
                    return Ok(());
                }
                // That thread is gone: take the job back, try another.
                Err(e) => job = e.0,
            }
        }
    }
    stats::bump(Counter::HostThreads);
    let (tx, rx) = channel::<Job>();
    std::thread::Builder::new()
        .name(job.0.clone())
        .spawn(move || worker(job, tx, rx))
        .map(|_| ())
}

fn worker(first: Job, tx: Sender<Job>, rx: Receiver<Job>) {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (_, f) = first;
    f();
    if disabled() {
        return;
    }
    loop {
        {
            let mut l = idle().lock().unwrap_or_else(|p| p.into_inner());
            if l.len() >= MAX_IDLE {
                return;
            }
            l.push((id, tx.clone()));
        }
        let job = match rx.recv_timeout(IDLE_TIMEOUT) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                let mut l = idle().lock().unwrap_or_else(|p| p.into_inner());
                if let Some(i) = l.iter().position(|(w, _)| *w == id) {
                    l.swap_remove(i);
                    return;
                }
                drop(l);
                // A spawner took us: its job is on the way.
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        set_name(&job.0);
        (job.1)();
    }
}

/// Names the calling thread (as Builder::name would; the host keeps 15
/// bytes).
fn set_name(name: &str) {
    let mut b = [0u8; 16];
    let n = name.len().min(15);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: a NUL-terminated buffer of 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, b.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn jobs_run_and_a_waiting_thread_is_reused() {
        let (tx, rx) = channel();
        let mut ids = Vec::new();
        for i in 0..20 {
            let tx = tx.clone();
            spawn(format!("job-{i}"), move || {
                let _ = tx.send((i, std::thread::current().id()));
            })
            .unwrap();
            let (got, id) = rx.recv().unwrap();
            assert_eq!(got, i);
            ids.push(id);
            // Until the thread waits for work again (a liveness bound only).
            let mut waited = 0;
            while idle().lock().unwrap().is_empty() {
                assert!(waited < 10_000, "the thread never came back");
                std::thread::sleep(Duration::from_millis(1));
                waited += 1;
            }
        }
        assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    }
}
