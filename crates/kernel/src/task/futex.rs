//! Futexes: WAIT/WAKE (with bitsets), REQUEUE/CMP_REQUEUE, WAKE_OP,
//! relative and absolute timeouts.
//!
//! Keys are (address space, address) for private futexes and private
//! memory; futexes in shared mappings are keyed by physical frame, so
//! processes that share the memory meet.
//!
//! Locking: one table mutex, held while the waited-on word is compared
//! (so a wake cannot slip between compare and sleep); guest memory is
//! read under it (mm locks nest inside, never the reverse).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::errno::KResult;
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};

use super::Task;

type Key = (usize, u64);

struct Waiter {
    task: Arc<Task>,
    bitset: u32,
    woken: Mutex<bool>,
}

#[derive(Default)]
struct Table {
    queues: HashMap<Key, Vec<Arc<Waiter>>>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    f(t.get_or_insert_with(Table::default))
}

fn key(ctx: &SyscallContext<'_>, addr: u64, private: bool) -> KResult<Key> {
    if !addr.is_multiple_of(4) {
        return error!(EINVAL);
    }
    ctx.mm().futex_key(addr, private)
}

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;

syscall_table! { pub fn futex_table;
    FUTEX => sys_futex(uaddr: UserAddr, op: i32, val: u32, timeout: UserAddr, uaddr2: UserAddr, val3: u32),
    FUTEX_WAITV => sys_futex_waitv(waiters: UserAddr, nr: u32, flags: u32, timeout: UserAddr, clock: i32),
}

fn sys_futex(
    ctx: &mut SyscallContext<'_>,
    uaddr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    uaddr2: UserAddr,
    val3: u32,
) -> KResult<u64> {
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT {
        return error!(ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bitset == 0 {
                return error!(EINVAL);
            }
            let deadline = if timeout.is_null() {
                None
            } else {
                let t: [i64; 2] = ctx.mm().read_val(timeout.0)?;
                if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
                    return error!(EINVAL);
                }
                let d = Duration::new(t[0] as u64, t[1] as u32);
                Some(if cmd == FUTEX_WAIT {
                    Instant::now() + d
                } else {
                    // Absolute, on CLOCK_MONOTONIC or CLOCK_REALTIME.
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { 0 } else { 1 };
                    let (s, n) =
                        ruml_host::clock::gettime(clock).map_err(|_| crate::errno!(EINVAL))?;
                    let now = Duration::new(s.max(0) as u64, n as u32);
                    Instant::now() + d.saturating_sub(now)
                })
            };
            futex_wait(ctx, uaddr.0, private, val, bitset, deadline).map(|_| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bitset == 0 {
                return error!(EINVAL);
            }
            let k = key(ctx, uaddr.0, private)?;
            Ok(with_table(|t| wake(t, k, val as usize, bitset)) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let k1 = key(ctx, uaddr.0, private)?;
            let k2 = key(ctx, uaddr2.0, private)?;
            let max_requeue = timeout.0 as usize; // val2 travels in the timeout slot
            let mm = ctx.mm();
            with_table(|t| {
                if cmd == FUTEX_CMP_REQUEUE {
                    let cur: u32 = mm.read_val(uaddr.0)?;
                    if cur != val3 {
                        return error!(EAGAIN);
                    }
                }
                let woken = wake(t, k1, val as usize, u32::MAX);
                let mut moved = 0;
                if let Some(mut q) = t.queues.remove(&k1) {
                    let n = q.len().min(max_requeue);
                    let rest = q.split_off(n);
                    moved = q.len();
                    t.queues.entry(k2).or_default().extend(q);
                    if !rest.is_empty() {
                        t.queues.insert(k1, rest);
                    }
                }
                Ok((woken + moved) as u64)
            })
        }
        FUTEX_WAKE_OP => {
            let k1 = key(ctx, uaddr.0, private)?;
            let k2 = key(ctx, uaddr2.0, private)?;
            let val2 = timeout.0 as usize;
            let mm = ctx.mm();
            with_table(|t| {
                let old: u32 = mm.read_val(uaddr2.0)?;
                let opc = (val3 >> 28) & 7;
                let cmp = (val3 >> 24) & 15;
                let mut oparg = (val3 >> 12) & 0xfff;
                let cmparg = val3 & 0xfff;
                if val3 & (8 << 28) != 0 {
                    oparg = 1u32.checked_shl(oparg).unwrap_or(0);
                }
                let new = match opc {
                    0 => oparg,
                    1 => old.wrapping_add(oparg),
                    2 => old | oparg,
                    3 => old & !oparg,
                    4 => old ^ oparg,
                    _ => return error!(ENOSYS),
                };
                mm.write_val(uaddr2.0, &new)?;
                let mut n = wake(t, k1, val as usize, u32::MAX);
                let hit = match cmp {
                    0 => old == cmparg,
                    1 => old != cmparg,
                    2 => old < cmparg,
                    3 => old <= cmparg,
                    4 => old > cmparg,
                    5 => old >= cmparg,
                    _ => return error!(ENOSYS),
                };
                if hit {
                    n += wake(t, k2, val2, u32::MAX);
                }
                Ok(n as u64)
            })
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let deadline = if timeout.is_null() || cmd == FUTEX_TRYLOCK_PI {
                None
            } else {
                // LOCK_PI's timeout is absolute on CLOCK_REALTIME (LOCK_PI2:
                // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME).
                let t: [i64; 2] = ctx.mm().read_val(timeout.0)?;
                if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
                    return error!(EINVAL);
                }
                let clock = if cmd == FUTEX_LOCK_PI || op & FUTEX_CLOCK_REALTIME != 0 {
                    0
                } else {
                    1
                };
                let (s, n) = ruml_host::clock::gettime(clock).map_err(|_| crate::errno!(EINVAL))?;
                let now = Duration::new(s.max(0) as u64, n as u32);
                Some(Instant::now() + Duration::new(t[0] as u64, t[1] as u32).saturating_sub(now))
            };
            lock_pi(ctx, uaddr.0, private, cmd == FUTEX_TRYLOCK_PI, deadline).map(|_| 0)
        }
        FUTEX_UNLOCK_PI => unlock_pi(ctx, uaddr.0, private).map(|_| 0),
        // Requeueing onto PI futexes (WAIT_REQUEUE_PI, CMP_REQUEUE_PI).
        _ => error!(ENOSYS),
    }
}

/// Wakes up to `n` waiters on `addr` in `mm` (thread exit's
/// CLONE_CHILD_CLEARTID, robust futexes).
pub fn wake_address(mm: &Arc<crate::mm::Mm>, addr: u64, n: usize) -> usize {
    // Both the private and the shared key: the waiter may use either.
    let mut woken = with_table(|t| wake(t, (Arc::as_ptr(mm) as usize, addr), n, u32::MAX));
    if let Ok(k) = mm.futex_key(addr, false) {
        if woken < n && k.0 == usize::MAX {
            woken += with_table(|t| wake(t, k, n - woken, u32::MAX));
        }
    }
    woken
}

fn wake(t: &mut Table, k: Key, max: usize, bitset: u32) -> usize {
    let Some(q) = t.queues.get_mut(&k) else {
        return 0;
    };
    let mut n = 0;
    q.retain(|w| {
        if n < max && w.bitset & bitset != 0 {
            *w.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
            w.task.waker.poke();
            n += 1;
            false
        } else {
            true
        }
    });
    if q.is_empty() {
        t.queues.remove(&k);
    }
    n
}

/// FUTEX_LOCK_PI: take the lock word (0 → our tid, or an owner-died word
/// → our tid keeping OWNER_DIED); else mark it contended and sleep until
/// the owner's UNLOCK_PI hands it to us. Priority inheritance itself is
/// the host scheduler's business and is not emulated.
fn lock_pi(
    ctx: &SyscallContext<'_>,
    addr: u64,
    private: bool,
    try_only: bool,
    deadline: Option<Instant>,
) -> KResult<()> {
    let me = ctx.task.tid() as u32;
    let mm = ctx.mm();
    let k = key(ctx, addr, private)?;
    loop {
        let waiter = Arc::new(Waiter {
            task: ctx.task.clone(),
            bitset: u32::MAX,
            woken: Mutex::new(false),
        });
        let got = with_table(|t| -> KResult<bool> {
            let waiting = t.queues.get(&k).is_some_and(|q| !q.is_empty());
            let old = mm.atomic_update_u32(addr, |v| {
                let owner = v & FUTEX_TID_MASK;
                if owner == 0 {
                    // Free (or its owner died): ours, still contended if
                    // others wait.
                    Some(me | (v & FUTEX_OWNER_DIED) | if waiting { FUTEX_WAITERS } else { 0 })
                } else if v & FUTEX_WAITERS == 0 {
                    Some(v | FUTEX_WAITERS)
                } else {
                    None
                }
            })?;
            let owner = old & FUTEX_TID_MASK;
            if owner == me {
                return error!(EDEADLK);
            }
            if owner == 0 {
                return Ok(true);
            }
            if crate::kernel().tasks.thread(owner as i32).is_none() {
                // The owner is gone without a robust-list cleanup.
                return error!(EOWNERDEAD);
            }
            if !try_only {
                t.queues.entry(k).or_default().push(waiter.clone());
            }
            Ok(false)
        })?;
        if got {
            return Ok(());
        }
        if try_only {
            return error!(EAGAIN);
        }
        let r = ctx.task.wait_until(deadline, || {
            *waiter.woken.lock().unwrap_or_else(|p| p.into_inner())
        });
        let woken = with_table(|t| {
            if let Some(q) = t.queues.get_mut(&k) {
                q.retain(|w| !Arc::ptr_eq(w, &waiter));
            }
            *waiter.woken.lock().unwrap_or_else(|p| p.into_inner())
        });
        // UNLOCK_PI handed the word to us.
        if woken {
            let v = mm.atomic_update_u32(addr, |_| None)?;
            if v & FUTEX_TID_MASK == me {
                return Ok(());
            }
            continue;
        }
        match r {
            Err(crate::errno::Errno::ETIMEDOUT) => return error!(ETIMEDOUT),
            Err(_) => return error!(EINTR),
            Ok(()) => {}
        }
    }
}

/// FUTEX_UNLOCK_PI: the owner releases; the first waiter gets the lock.
fn unlock_pi(ctx: &SyscallContext<'_>, addr: u64, private: bool) -> KResult<()> {
    let me = ctx.task.tid() as u32;
    let mm = ctx.mm();
    let k = key(ctx, addr, private)?;
    with_table(|t| -> KResult<()> {
        let cur = mm.atomic_update_u32(addr, |_| None)?;
        if cur & FUTEX_TID_MASK != me {
            return error!(EPERM);
        }
        let next = t.queues.get_mut(&k).and_then(|q| {
            if q.is_empty() {
                None
            } else {
                Some(q.remove(0))
            }
        });
        match next {
            Some(w) => {
                let more = t.queues.get(&k).is_some_and(|q| !q.is_empty());
                let tid = w.task.tid() as u32;
                mm.atomic_update_u32(addr, |_| Some(tid | if more { FUTEX_WAITERS } else { 0 }))?;
                *w.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
                w.task.waker.poke();
            }
            None => {
                mm.atomic_update_u32(addr, |_| Some(0))?;
            }
        }
        Ok(())
    })
}

fn futex_wait(
    ctx: &SyscallContext<'_>,
    addr: u64,
    private: bool,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> KResult<()> {
    let k = key(ctx, addr, private)?;
    let mm = ctx.mm();
    let waiter = Arc::new(Waiter {
        task: ctx.task.clone(),
        bitset,
        woken: Mutex::new(false),
    });
    with_table(|t| {
        let cur: u32 = mm.read_val(addr)?;
        if cur != val {
            return error!(EAGAIN);
        }
        t.queues.entry(k).or_default().push(waiter.clone());
        Ok(())
    })?;
    let r = ctx.task.wait_until(deadline, || {
        *waiter.woken.lock().unwrap_or_else(|p| p.into_inner())
    });
    if r.is_err() {
        // Leave the queue, unless a wake raced us (then it counts).
        let woken = with_table(|t| {
            if let Some(q) = t.queues.get_mut(&k) {
                q.retain(|w| !Arc::ptr_eq(w, &waiter));
            }
            *waiter.woken.lock().unwrap_or_else(|p| p.into_inner())
        });
        if woken {
            return Ok(());
        }
    }
    r
}

/// futex_waitv(2) (Linux 5.16): waits on up to 128 futexes at once;
/// returns the index of one that was woken. All words are compared and
/// all waiters queued under the table lock, so no wake between the
/// compares and the sleep is lost.
fn sys_futex_waitv(
    ctx: &mut SyscallContext<'_>,
    waiters: UserAddr,
    nr: u32,
    flags: u32,
    timeout: UserAddr,
    clock: i32,
) -> KResult<u64> {
    const FUTEX_WAITV_MAX: u32 = 128;
    const FUTEX2_SIZE_MASK: u32 = 0x3;
    const FUTEX2_SIZE_U32: u32 = 0x2;
    const FUTEX2_PRIVATE: u32 = 128;
    if flags != 0 || waiters.is_null() || nr == 0 || nr > FUTEX_WAITV_MAX {
        return error!(EINVAL);
    }
    let deadline = if timeout.is_null() {
        None
    } else {
        // An absolute time on CLOCK_MONOTONIC or CLOCK_REALTIME.
        if clock != 0 && clock != 1 {
            return error!(EINVAL);
        }
        let t: crate::time::Timespec = ctx.mm().read_val(timeout.0)?;
        if t.sec < 0 || !(0..1_000_000_000).contains(&t.nsec) {
            return error!(EINVAL);
        }
        let now = crate::time::clock_now(clock)?;
        let at = Duration::new(t.sec as u64, t.nsec as u32);
        let now = Duration::new(now.sec.max(0) as u64, now.nsec as u32);
        Some(Instant::now() + at.saturating_sub(now))
    };
    // struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; }
    let mut entries = Vec::with_capacity(nr as usize);
    for i in 0..nr as u64 {
        let e: [u64; 3] = ctx.mm().read_val(waiters.0.wrapping_add(i * 24))?;
        let (val, addr, fl, reserved) = (e[0], e[1], e[2] as u32, (e[2] >> 32) as u32);
        if reserved != 0
            || fl & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0
            || fl & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32
            || val > u32::MAX as u64
        {
            return error!(EINVAL);
        }
        let k = key(ctx, addr, fl & FUTEX2_PRIVATE != 0)?;
        entries.push((k, addr, val as u32));
    }
    let mm = ctx.mm();
    let queued: Vec<(Key, Arc<Waiter>)> = entries
        .iter()
        .map(|&(k, _, _)| {
            (
                k,
                Arc::new(Waiter {
                    task: ctx.task.clone(),
                    bitset: u32::MAX,
                    woken: Mutex::new(false),
                }),
            )
        })
        .collect();
    let unqueue = |t: &mut Table| {
        for (k, w) in &queued {
            if let Some(q) = t.queues.get_mut(k) {
                q.retain(|x| !Arc::ptr_eq(x, w));
                if q.is_empty() {
                    t.queues.remove(k);
                }
            }
        }
    };
    with_table(|t| {
        for &(_, addr, val) in &entries {
            let cur: u32 = mm.read_val(addr)?;
            if cur != val {
                return error!(EAGAIN);
            }
        }
        for (k, w) in &queued {
            t.queues.entry(*k).or_default().push(w.clone());
        }
        Ok(())
    })?;
    let woken_index = || {
        queued
            .iter()
            .position(|(_, w)| *w.woken.lock().unwrap_or_else(|p| p.into_inner()))
    };
    let r = ctx.task.wait_until(deadline, || woken_index().is_some());
    // Leave every queue; a wake that raced the end still counts.
    let woken = with_table(|t| {
        unqueue(t);
        woken_index()
    });
    match (woken, r) {
        (Some(i), _) => Ok(i as u64),
        (None, Err(crate::errno::Errno::EINTR)) => error!(ERESTARTSYS),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => error!(EAGAIN),
    }
}
