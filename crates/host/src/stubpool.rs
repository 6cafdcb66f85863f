//! Clean seccomp stubs made ahead of time, so that fork and exec need not
//! wait for a stub process to be forked, exec'd and set up (about a
//! millisecond of ptrace round trips). A pooled stub is exactly what
//! [`crate::seccomp::AddressSpace::new`] makes: no guest mapping, its
//! first thread parked in its first trap (asleep: the pool costs no CPU).
//!
//! The pool is bounded ([`POOL_MAX`] stubs) and filled by one background
//! thread, started by the second address space an instance asks for (the
//! first is init's: a `ruml -- CMD` that never forks makes no spare
//! stub). Each stub taken wakes the filler to make one more. A failure
//! to make one stops the filler for good: the callers then make their
//! own, as without a pool.
//!
//! Stubs of ended processes come back here too, *recycled*: a process
//! whose last thread ends with every other stub thread gone (its spare
//! told to exit, and the host counting exactly the helper and that
//! thread) leaves its stub with every guest mapping removed and its
//! thread parked (see `seccomp::Stub::recycle`);
//! up to [`RECYCLED_MAX`] stubs wait here in all. A fork or exec then
//! costs no new host process, no ptrace bootstrap, no filter compilation
//! and no teardown.
//!
//! `RUML_STUB_POOL=off` (environment of ruml) disables it, recycling
//! included, for measurements.
//!
//! The stubs are forked by the spawner thread like any other, so they
//! die with ruml (PR_SET_PDEATHSIG); their frames belong to the physmem
//! they were made for, and a caller with another physmem gets none.

use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::physmem::PhysMem;
use crate::seccomp::{AddressSpace, NewThread};

/// Most stubs kept ready by the filler.
pub const POOL_MAX: usize = 2;

/// Most stubs kept ready, recycled ones included.
pub const RECYCLED_MAX: usize = 4;

struct Pool {
    /// The physmem to make stubs in (set by the first caller).
    phys: Option<Arc<PhysMem>>,
    ready: Vec<(AddressSpace, NewThread)>,
    /// Address spaces asked for so far.
    asked: u64,
    filler_started: bool,
    failed: bool,
}

fn pool() -> &'static (Mutex<Pool>, Condvar) {
    static P: OnceLock<(Mutex<Pool>, Condvar)> = OnceLock::new();
    P.get_or_init(|| {
        (
            Mutex::new(Pool {
                phys: None,
                ready: Vec::new(),
                asked: 0,
                filler_started: false,
                failed: false,
            }),
            Condvar::new(),
        )
    })
}

/// A ready stub for `phys`, if there is one; asks the filler for more.
pub(crate) fn take(phys: &Arc<PhysMem>) -> Option<(AddressSpace, NewThread)> {
    let (m, cv) = pool();
    let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
    if p.phys.as_ref().is_some_and(|q| !Arc::ptr_eq(q, phys)) {
        // Another physmem (host tests make several): start over with it.
        p.ready.clear();
    }
    p.phys = Some(phys.clone());
    p.asked += 1;
    if disabled() {
        return None;
    }
    let got = p.ready.pop();
    if p.asked >= 2 && !p.failed {
        if !p.filler_started {
            p.filler_started = true;
            let spawned = std::thread::Builder::new()
                .name("stub-pool".into())
                .spawn(fill);
            if spawned.is_err() {
                p.failed = true;
            }
        }
        cv.notify_one();
    }
    got
}

/// Whether a recycled stub for `phys` would be kept.
pub(crate) fn has_room(phys: &Arc<PhysMem>) -> bool {
    if disabled() {
        return false;
    }
    let (m, _) = pool();
    let p = m.lock().unwrap_or_else(|e| e.into_inner());
    p.phys.as_ref().is_some_and(|q| Arc::ptr_eq(q, phys)) && p.ready.len() < RECYCLED_MAX
}

/// Keeps a recycled stub (clean: no guest mapping, its thread parked)
/// for the next caller; one that does not fit is dropped (killed).
pub(crate) fn give(a: AddressSpace, nt: NewThread) {
    let (m, _) = pool();
    let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
    if p.phys.as_ref().is_some_and(|q| a.uses(q)) && p.ready.len() < RECYCLED_MAX {
        p.ready.push((a, nt));
        return;
    }
    drop(p);
    drop((a, nt));
}

/// `RUML_STUB_POOL=off` in ruml's environment: no pool (to measure).
fn disabled() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| std::env::var("RUML_STUB_POOL").is_ok_and(|v| v == "off"))
}

/// How many stubs are ready now (for tests).
pub fn ready() -> usize {
    let (m, _) = pool();
    m.lock().unwrap_or_else(|e| e.into_inner()).ready.len()
}

fn fill() {
    let (m, cv) = pool();
    loop {
        let phys = {
            let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if p.failed {
                    return;
                }
                match &p.phys {
                    Some(ph) if p.ready.len() < POOL_MAX => break ph.clone(),
                    _ => p = cv.wait(p).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let made = AddressSpace::build(&phys);
        let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
        match made {
            Ok((a, nt))
                if a.uses(&phys) && p.phys.as_ref().is_some_and(|q| Arc::ptr_eq(q, &phys)) =>
            {
                if p.ready.len() < POOL_MAX {
                    p.ready.push((a, nt));
                }
            }
            Ok(_) => {}
            Err(_) => p.failed = true,
        }
    }
}
