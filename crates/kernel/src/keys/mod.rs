//! The key-retention service (Linux's security/keys): keys of type
//! "user" (readable payload), "logon" (payload never read back) and
//! "keyring" (a list of links to other keys), the thread, process,
//! session, user and user-session keyrings, permissions with possession,
//! per-user quotas (/proc/sys/kernel/keys/*), /proc/keys and
//! /proc/key-users. The system calls are in [`syscalls`].
//!
//! request_key constructs a missing key through the guest's
//! /sbin/request-key, which the kernel starts with an authorisation key
//! ([`upcall`]: KEYCTL_ASSUME_AUTHORITY, INSTANTIATE(_IOV), NEGATE and
//! REJECT; keys under construction, which other requesters wait for).
//! Without /sbin/request-key the construction fails with ENOENT and the
//! key is negated, as Linux's.
//!
//! Lifetime: a key lives while something holds an `Arc<Key>`: a keyring
//! linking it, a credential naming it as session keyring, a task or
//! process keyring slot, or the per-uid user keyrings (kept for the
//! instance's life, one pair per uid that asked). The serial registry holds
//! `Weak`s and forgets dead ones lazily; a key's quota is given back when
//! it is dropped. Links form a DAG (LINK refuses cycles: EDEADLK), so the
//! `Arc`s never leak in a cycle.
//!
//! Locking: [`upcall`]'s construction lock, then [`REGISTRY`] (serials,
//! user keyrings), then one key's `state`;
//! [`QUOTAS`] is a leaf lock. No code holds two keys' `state` locks at
//! once: traversals clone a keyring's links and drop its lock before
//! descending, and nothing drops an `Arc<Key>` while holding a lock (a
//! key's `Drop` takes [`QUOTAS`]).

pub mod syscalls;
pub mod upcall;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::errno::{Errno, KResult};
use crate::error;
use crate::task::{Task, ThreadGroup};

pub use syscalls::keys_table;

// Permission bits, per class (possessor, user, group, other).
pub const VIEW: u32 = 0x01;
pub const READ: u32 = 0x02;
pub const WRITE: u32 = 0x04;
pub const SEARCH: u32 = 0x08;
pub const LINK: u32 = 0x10;
pub const SETATTR: u32 = 0x20;
pub const ALL: u32 = 0x3f;

const fn pos(p: u32) -> u32 {
    p << 24
}
const fn usr(p: u32) -> u32 {
    p << 16
}

/// user and logon payloads: at most 32767 bytes (Linux's user_preparse).
pub const USER_MAX_PAYLOAD: usize = 32767;
/// Descriptions: at most 4095 bytes (KEY_MAX_DESC_SIZE less the NUL).
pub const MAX_DESC: usize = 4095;
/// How deep keyrings nest for searches and links (KEYRING_SEARCH_MAX_DEPTH).
const MAX_DEPTH: usize = 6;
/// The most links one keyring holds (kernel memory a guest controls;
/// quotas bound the keys themselves).
const MAX_LINKS: usize = 65536;

/// What a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    User,
    Logon,
    Keyring,
    /// ".request_key_auth": a construction's authorisation, given to the
    /// request-key helper (see [`upcall`]); its payload is the callout
    /// information. No guest can name the type (leading dot: EPERM).
    RequestKeyAuth,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::User => "user",
            KeyType::Logon => "logon",
            KeyType::Keyring => "keyring",
            KeyType::RequestKeyAuth => ".request_key_auth",
        }
    }

    /// A type by name (None: Linux has no such type loaded).
    pub fn by_name(name: &[u8]) -> Option<KeyType> {
        match name {
            b"user" => Some(KeyType::User),
            b"logon" => Some(KeyType::Logon),
            b"keyring" => Some(KeyType::Keyring),
            _ => None,
        }
    }
}

/// A key's changeable part.
struct KeyState {
    uid: u32,
    gid: u32,
    perm: u32,
    /// user and logon keys.
    payload: Vec<u8>,
    /// keyrings: the linked keys, in link order.
    links: Vec<Arc<Key>>,
    expiry: Option<Instant>,
    revoked: bool,
    /// When KEYCTL_REVOKE revoked it (the gc counts gc_delay from here).
    revoked_at: Option<Instant>,
    /// Negatively instantiated (a construction that failed): the error a
    /// use gives (ENOKEY) until the key expires.
    negative: Option<Errno>,
    invalidated: bool,
    /// KEYCTL_RESTRICT_KEYRING with no restriction: nothing more links in.
    restricted: bool,
    /// Who is charged for it, and how many bytes.
    quota_uid: u32,
    quota_bytes: usize,
    /// Counted in its owner's quota (authorisation keys are not).
    in_quota: bool,
    /// Under construction by request_key's helper (uninstantiated):
    /// searches find it, uses other than PARTIAL lookups wait on
    /// [`upcall::CONSTRUCTION`] until it is instantiated or negated.
    constructing: bool,
    /// An authorisation key's construction context; let go when the key
    /// is revoked (which every construction's end does).
    auth: Option<Box<upcall::AuthInfo>>,
}

/// One key. `serial`, `ktype` and `desc` never change; the rest is under
/// `state`.
pub struct Key {
    pub serial: i32,
    pub ktype: KeyType,
    pub desc: Vec<u8>,
    state: Mutex<KeyState>,
}

impl Drop for Key {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if !st.in_quota {
            return;
        }
        let mut q = quotas();
        if let Some(u) = q.get_mut(&st.quota_uid) {
            u.keys = u.keys.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(st.quota_bytes);
        }
    }
}

/// Why a key cannot be used (Linux's key_validate, then a negative
/// key's error), if it cannot.
fn state_error(st: &KeyState) -> Option<Errno> {
    live_error(st).or(st.negative)
}

/// Linux's __key_validate: invalidated, revoked or expired.
fn live_error(st: &KeyState) -> Option<Errno> {
    if st.invalidated {
        Some(crate::errno!(ENOKEY))
    } else if st.revoked {
        Some(crate::errno!(EKEYREVOKED))
    } else if st.expiry.is_some_and(|e| Instant::now() >= e) {
        Some(crate::errno!(EKEYEXPIRED))
    } else {
        None
    }
}

/// Whether the garbage collector reclaims the key: revoked or expired
/// for kernel.keys.gc_delay seconds or more (Linux's key_gc_delay). The
/// collection is lazy: links to such keys go when a keyring's links are
/// read (searches, KEYCTL_READ, /proc/keys), with no timer thread.
fn reclaimable(st: &KeyState, now: Instant) -> bool {
    let dead = match (st.revoked_at, st.expiry.filter(|&e| now >= e)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let delay = std::time::Duration::from_secs(GC_DELAY.load(Ordering::Relaxed).into());
    dead.is_some_and(|d| now >= d + delay)
}

impl Key {
    fn lock(&self) -> MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// ENOKEY, EKEYREVOKED or EKEYEXPIRED when the key is unusable.
    pub fn validate(&self) -> KResult<()> {
        match state_error(&self.lock()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn perm(&self) -> u32 {
        self.lock().perm
    }

    /// The linked keys of a keyring (empty for other types), after the
    /// garbage collector unlinked the reclaimable ones.
    pub fn links(&self) -> Vec<Arc<Key>> {
        let links = self.lock().links.clone();
        let now = Instant::now();
        // One key's lock at a time: decide, then unlink under this one's.
        let dead: Vec<&Arc<Key>> = links
            .iter()
            .filter(|k| reclaimable(&k.lock(), now))
            .collect();
        if dead.is_empty() {
            return links;
        }
        let gone: Vec<Arc<Key>> = {
            let mut st = self.lock();
            let (gone, keep) = std::mem::take(&mut st.links)
                .into_iter()
                .partition(|k| dead.iter().any(|d| Arc::ptr_eq(d, k)));
            st.links = keep;
            gone
        };
        let live = self.lock().links.clone();
        drop(gone);
        live
    }

    /// Marks the key revoked (KEYCTL_REVOKE); a keyring's links go, and
    /// an authorisation key's context.
    pub fn revoke(&self) {
        let (old, _auth) = {
            let mut st = self.lock();
            st.revoked = true;
            // Linux sets the death time to now: /proc/keys says "expd".
            let now = Instant::now();
            st.revoked_at.get_or_insert(now);
            st.expiry = Some(st.expiry.map_or(now, |e| e.min(now)));
            (std::mem::take(&mut st.links), st.auth.take())
        };
        drop(old);
    }

    /// Marks the key invalidated (KEYCTL_INVALIDATE, and an
    /// authorisation once used); an authorisation's context goes. The
    /// caller unlinks it from the keyrings.
    pub fn invalidate(&self) {
        let auth = {
            let mut st = self.lock();
            st.invalidated = true;
            st.auth.take()
        };
        drop(auth);
    }

    /// Whether request_key's helper is still constructing it.
    pub fn is_constructing(&self) -> bool {
        self.lock().constructing
    }

    /// As [`Key::validate`], a negative key counting as usable.
    pub fn validate_live(&self) -> KResult<()> {
        match live_error(&self.lock()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether KEYCTL_INVALIDATE invalidated it.
    pub fn is_invalidated(&self) -> bool {
        self.lock().invalidated
    }

    /// Whether it was negatively instantiated.
    pub fn is_negative(&self) -> bool {
        self.lock().negative.is_some()
    }

    /// The key's "type;uid;gid;perm;description" (KEYCTL_DESCRIBE),
    /// ids as the caller's user namespace names them.
    fn describe(&self, creds: &crate::task::creds::Creds) -> String {
        let st = self.lock();
        format!(
            "{};{};{};{:08x};{}",
            self.ktype.name(),
            show_uid(creds, st.uid),
            show_gid(creds, st.gid),
            st.perm,
            String::from_utf8_lossy(&self.desc)
        )
    }
}

fn show_uid(creds: &crate::task::creds::Creds, kid: u32) -> u32 {
    use crate::task::ns::MapKind;
    if kid == u32::MAX {
        return 65534;
    }
    creds
        .user_ns
        .0
        .from_kernel(MapKind::Uid, kid)
        .unwrap_or(65534)
}

fn show_gid(creds: &crate::task::creds::Creds, kid: u32) -> u32 {
    use crate::task::ns::MapKind;
    if kid == u32::MAX {
        return 65534;
    }
    creds
        .user_ns
        .0
        .from_kernel(MapKind::Gid, kid)
        .unwrap_or(65534)
}

// ---------------------------------------------------------------------------
// Quotas and their sysctls
// ---------------------------------------------------------------------------

/// kernel.keys.maxkeys / maxbytes (other users) and root_maxkeys /
/// root_maxbytes (kernel uid 0), as Linux's defaults.
pub static MAXKEYS: AtomicU32 = AtomicU32::new(200);
pub static MAXBYTES: AtomicU32 = AtomicU32::new(20000);
pub static ROOT_MAXKEYS: AtomicU32 = AtomicU32::new(1_000_000);
pub static ROOT_MAXBYTES: AtomicU32 = AtomicU32::new(25_000_000);
/// kernel.keys.gc_delay and persistent_keyring_expiry (seconds).
pub static GC_DELAY: AtomicU32 = AtomicU32::new(300);
pub static PERSISTENT_EXPIRY: AtomicU32 = AtomicU32::new(259_200);

/// A kernel.keys sysctl: its text and its setter (0 ..= INT_MAX, as
/// Linux's proc_dointvec_minmax; the mode bits are procsys.rs's check).
macro_rules! keys_sysctl {
    ($($get:ident, $set:ident, $var:ident;)*) => {$(
        pub fn $get() -> String {
            format!("{}\n", $var.load(Ordering::Relaxed))
        }
        pub fn $set(_admin: bool, buf: &[u8]) -> KResult<()> {
            let s = std::str::from_utf8(buf).map_err(|_| crate::errno!(EINVAL))?;
            let v: i64 = s.trim().parse().map_err(|_| crate::errno!(EINVAL))?;
            if !(0..=i32::MAX as i64).contains(&v) {
                return error!(EINVAL);
            }
            $var.store(v as u32, Ordering::Relaxed);
            Ok(())
        }
    )*};
}

keys_sysctl! {
    gc_delay_text, set_gc_delay, GC_DELAY;
    maxbytes_text, set_maxbytes, MAXBYTES;
    maxkeys_text, set_maxkeys, MAXKEYS;
    persistent_expiry_text, set_persistent_expiry, PERSISTENT_EXPIRY;
    root_maxbytes_text, set_root_maxbytes, ROOT_MAXBYTES;
    root_maxkeys_text, set_root_maxkeys, ROOT_MAXKEYS;
}

/// What one uid holds.
#[derive(Default)]
struct UserQuota {
    keys: u32,
    bytes: usize,
}

static QUOTAS: Mutex<Option<HashMap<u32, UserQuota>>> = Mutex::new(None);

struct QuotaGuard(MutexGuard<'static, Option<HashMap<u32, UserQuota>>>);

impl QuotaGuard {
    fn get_mut(&mut self, uid: &u32) -> Option<&mut UserQuota> {
        self.0.get_or_insert_with(HashMap::new).get_mut(uid)
    }
    fn entry(&mut self, uid: u32) -> &mut UserQuota {
        self.0
            .get_or_insert_with(HashMap::new)
            .entry(uid)
            .or_default()
    }
}

fn quotas() -> QuotaGuard {
    QuotaGuard(QUOTAS.lock().unwrap_or_else(|p| p.into_inner()))
}

fn limits_for(uid: u32) -> (u32, usize) {
    if uid == 0 {
        (
            ROOT_MAXKEYS.load(Ordering::Relaxed),
            ROOT_MAXBYTES.load(Ordering::Relaxed) as usize,
        )
    } else {
        (
            MAXKEYS.load(Ordering::Relaxed),
            MAXBYTES.load(Ordering::Relaxed) as usize,
        )
    }
}

/// Charges `uid` one key of `bytes` (EDQUOT past its limits).
fn charge(uid: u32, bytes: usize) -> KResult<()> {
    let (maxk, maxb) = limits_for(uid);
    let mut q = quotas();
    let u = q.entry(uid);
    if u.keys + 1 > maxk || u.bytes + bytes > maxb {
        return error!(EDQUOT);
    }
    u.keys += 1;
    u.bytes += bytes;
    Ok(())
}

/// Changes a key's charge from `old` to `new` bytes (EDQUOT past the
/// limit when growing).
fn recharge(uid: u32, old: usize, new: usize) -> KResult<()> {
    let (_, maxb) = limits_for(uid);
    let mut q = quotas();
    let u = q.entry(uid);
    let bytes = u.bytes.saturating_sub(old) + new;
    if new > old && bytes > maxb {
        return error!(EDQUOT);
    }
    u.bytes = bytes;
    Ok(())
}

/// /proc/key-users: one line per uid holding keys.
pub fn key_users_text() -> String {
    let mut q = quotas();
    let map = q.0.get_or_insert_with(HashMap::new);
    let mut uids: Vec<_> = map.iter().filter(|(_, u)| u.keys > 0).collect();
    uids.sort_by_key(|(u, _)| **u);
    let mut s = String::new();
    for (uid, u) in uids {
        let (mk, mb) = limits_for(*uid);
        s += &format!(
            "{:5}: {:5} {}/{} {}/{} {}/{}\n",
            uid, u.keys, u.keys, u.keys, u.keys, mk, u.bytes, mb
        );
    }
    s
}

// ---------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Registry {
    serials: HashMap<i32, Weak<Key>>,
    /// Per (user namespace inode, kernel uid): (user keyring,
    /// user-session keyring), as Linux keeps them in each user
    /// namespace's keyring register.
    user: HashMap<(u64, u32), (Arc<Key>, Arc<Key>)>,
    /// Per kernel uid: the persistent keyring.
    persistent: HashMap<u32, Arc<Key>>,
    inserts: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

struct RegGuard(MutexGuard<'static, Option<Registry>>);

impl std::ops::Deref for RegGuard {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        self.0.as_ref().expect("registry initialised by registry()")
    }
}
impl std::ops::DerefMut for RegGuard {
    fn deref_mut(&mut self) -> &mut Registry {
        self.0.as_mut().expect("registry initialised by registry()")
    }
}

fn registry() -> RegGuard {
    let mut g = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(Registry::default);
    RegGuard(g)
}

/// A random serial: positive, at least 3, unused.
fn new_serial(reg: &Registry) -> i32 {
    loop {
        let mut b = [0u8; 4];
        ruml_host::clock::random_bytes(&mut b);
        let s = (u32::from_ne_bytes(b) & 0x7fff_ffff) as i32;
        if s >= 3 && reg.serials.get(&s).is_none_or(|w| w.strong_count() == 0) {
            return s;
        }
    }
}

/// A key by serial, if alive.
pub fn by_serial(serial: i32) -> Option<Arc<Key>> {
    let w = registry().serials.get(&serial).cloned();
    w.and_then(|w| w.upgrade())
}

/// Creates a key charged to `uid` (quota: description + 1 + payload
/// bytes, as Linux's key_alloc and user_preparse count).
pub fn create(
    ktype: KeyType,
    desc: &[u8],
    uid: u32,
    gid: u32,
    perm: u32,
    payload: Vec<u8>,
) -> KResult<Arc<Key>> {
    let bytes = desc.len() + 1 + payload.len();
    charge(uid, bytes)?;
    Ok(insert(
        ktype,
        desc,
        uid,
        gid,
        perm,
        payload,
        Some(bytes),
        None,
    ))
}

/// Registers a new key; `charged` is the quota already charged to `uid`
/// (None: not in quota).
#[allow(clippy::too_many_arguments)]
fn insert(
    ktype: KeyType,
    desc: &[u8],
    uid: u32,
    gid: u32,
    perm: u32,
    payload: Vec<u8>,
    charged: Option<usize>,
    auth: Option<Box<upcall::AuthInfo>>,
) -> Arc<Key> {
    let mut reg = registry();
    let serial = new_serial(&reg);
    let key = Arc::new(Key {
        serial,
        ktype,
        desc: desc.to_vec(),
        state: Mutex::new(KeyState {
            uid,
            gid,
            perm,
            payload,
            links: Vec::new(),
            expiry: None,
            revoked: false,
            revoked_at: None,
            negative: None,
            invalidated: false,
            restricted: false,
            quota_uid: uid,
            quota_bytes: charged.unwrap_or(0),
            in_quota: charged.is_some(),
            constructing: false,
            auth,
        }),
    });
    reg.inserts += 1;
    if reg.inserts.is_multiple_of(256) {
        reg.serials.retain(|_, w| w.strong_count() > 0);
    }
    reg.serials.insert(serial, Arc::downgrade(&key));
    key
}

/// A keyring owned by `uid`/`gid`.
pub fn new_keyring(desc: &[u8], uid: u32, gid: u32, perm: u32) -> KResult<Arc<Key>> {
    create(KeyType::Keyring, desc, uid, gid, perm, Vec::new())
}

/// The user keyring and user-session keyring of the asker's fsuid in its
/// user namespace, made on first use (perms possessor all but setattr,
/// user all; no group); named by the uid as that namespace sees it.
pub fn user_keyrings(who: &Asker) -> KResult<(Arc<Key>, Arc<Key>)> {
    let uid = who.fsuid;
    let ns = who.creds.user_ns.0.inum;
    if let Some(p) = registry().user.get(&(ns, uid)).cloned() {
        return Ok(p);
    }
    let perm = pos(ALL & !SETATTR) | usr(ALL);
    // from_kuid, not munged: an unmapped uid is named -1.
    let shown = who
        .creds
        .user_ns
        .0
        .from_kernel(crate::task::ns::MapKind::Uid, uid)
        .unwrap_or(u32::MAX);
    let ur = new_keyring(format!("_uid.{shown}").as_bytes(), uid, u32::MAX, perm)?;
    let us = new_keyring(format!("_uid_ses.{shown}").as_bytes(), uid, u32::MAX, perm)?;
    let mut reg = registry();
    // Another thread may have made them meanwhile: keep the first pair.
    let pair = reg.user.entry((ns, uid)).or_insert((ur, us)).clone();
    Ok(pair)
}

/// How long a negative key lasts (Linux's key_negative_timeout).
pub(crate) const NEGATIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The persistent keyring of kernel uid `uid` (KEYCTL_GET_PERSISTENT),
/// made on first use; its expiry is renewed on every request.
pub fn persistent_keyring(uid: u32) -> KResult<Arc<Key>> {
    let existing = registry().persistent.get(&uid).cloned();
    let k = match existing {
        Some(k) if k.validate().is_ok() => k,
        _ => {
            let perm = pos(ALL) | usr(VIEW | READ);
            let k = new_keyring(format!("_persistent.{uid}").as_bytes(), uid, u32::MAX, perm)?;
            registry().persistent.insert(uid, k.clone());
            k
        }
    };
    let secs = PERSISTENT_EXPIRY.load(Ordering::Relaxed);
    k.lock().expiry = Some(Instant::now() + std::time::Duration::from_secs(secs.into()));
    Ok(k)
}

// ---------------------------------------------------------------------------
// Per-task and per-process keyrings, session keyrings in the credentials
// ---------------------------------------------------------------------------

/// A credential's keyring state (in task::creds::Creds, so fork copies it
/// as Linux copies the cred): the session keyring and request_key's
/// default destination (KEYCTL_SET_REQKEY_KEYRING).
#[derive(Clone, Default)]
pub struct CredKeys {
    pub session: Option<Arc<Key>>,
    pub reqkey_default: i32,
    /// The authorisation KEYCTL_ASSUME_AUTHORITY assumed (Linux's
    /// cred->request_key_auth): kept across fork and exec, so the
    /// handler request-key runs inherits it.
    pub request_key_auth: Option<Arc<Key>>,
}

impl std::fmt::Debug for CredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredKeys")
            .field("session", &self.session.as_ref().map(|k| k.serial))
            .field("reqkey_default", &self.reqkey_default)
            .field(
                "request_key_auth",
                &self.request_key_auth.as_ref().map(|k| k.serial),
            )
            .finish()
    }
}

/// Thread keyrings by task and process keyrings by thread group: slots
/// beside the task structures (neither is inherited by fork; exec drops
/// both, as Linux's exec_keys). Entries whose owner is gone are purged on
/// every change.
#[derive(Default)]
struct Slots {
    thread: Vec<(Weak<Task>, Arc<Key>)>,
    process: Vec<(Weak<ThreadGroup>, Arc<Key>)>,
}

static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);

fn with_slots<R>(f: impl FnOnce(&mut Slots) -> R) -> R {
    let mut dead = Vec::new();
    let r = {
        let mut g = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        let s = g.get_or_insert_with(Slots::default);
        let r = f(s);
        // Dropped keys are dropped after the lock is released.
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut s.thread)
            .into_iter()
            .partition(|(w, _)| w.strong_count() > 0);
        s.thread = keep;
        dead.extend(gone.into_iter().map(|(_, k)| k));
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut s.process)
            .into_iter()
            .partition(|(w, _)| w.strong_count() > 0);
        s.process = keep;
        dead.extend(gone.into_iter().map(|(_, k)| k));
        r
    };
    drop(dead);
    r
}

pub fn thread_keyring(task: &Task) -> Option<Arc<Key>> {
    with_slots(|s| {
        s.thread
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), task))
            .map(|(_, k)| k.clone())
    })
}

pub fn process_keyring(task: &Task) -> Option<Arc<Key>> {
    with_slots(|s| {
        s.process
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&task.group)))
            .map(|(_, k)| k.clone())
    })
}

/// Installs `k` as the task's thread keyring unless it has one; returns
/// the one in place.
fn install_thread(task: &Arc<Task>, k: Arc<Key>) -> Arc<Key> {
    with_slots(|s| {
        if let Some((_, old)) = s
            .thread
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(task)))
        {
            return old.clone();
        }
        s.thread.push((Arc::downgrade(task), k.clone()));
        k
    })
}

fn install_process(task: &Arc<Task>, k: Arc<Key>) -> Arc<Key> {
    with_slots(|s| {
        if let Some((_, old)) = s
            .process
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&task.group)))
        {
            return old.clone();
        }
        s.process.push((Arc::downgrade(&task.group), k.clone()));
        k
    })
}

/// exec: the thread and process keyrings are let go (Linux's exec_keys).
pub fn on_exec(task: &Arc<Task>) {
    let mut gone = Vec::new();
    with_slots(|s| {
        s.thread.retain(|(w, k)| {
            let mine = std::ptr::eq(w.as_ptr(), Arc::as_ptr(task));
            if mine {
                gone.push(k.clone());
            }
            !mine
        });
        s.process.retain(|(w, k)| {
            let mine = std::ptr::eq(w.as_ptr(), Arc::as_ptr(&task.group));
            if mine {
                gone.push(k.clone());
            }
            !mine
        });
    });
    drop(gone);
}

// ---------------------------------------------------------------------------
// Permissions, possession, searching
// ---------------------------------------------------------------------------

/// Who is asking: the credentials that matter to keys.
pub struct Asker {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub creds: crate::task::creds::Creds,
}

impl Asker {
    pub fn of(task: &Task) -> Asker {
        let c = task
            .group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Asker {
            fsuid: c.fsuid,
            fsgid: c.fsgid,
            groups: c.groups.clone(),
            creds: c,
        }
    }
}

/// Linux's key_task_permission: owner bits if the fsuid owns the key,
/// else group bits if a group matches, else other bits; possessor bits
/// added when possessed. No capability overrides it.
pub fn permitted(key: &Key, possessed: bool, who: &Asker, need: u32) -> bool {
    let perm = key.perm();
    let (uid, gid) = {
        let st = key.lock();
        (st.uid, st.gid)
    };
    let mut k = if uid == who.fsuid {
        perm >> 16
    } else if gid != u32::MAX && (gid == who.fsgid || who.groups.contains(&gid)) {
        perm >> 8
    } else {
        perm
    };
    if possessed {
        k |= perm >> 24;
    }
    k & need & ALL == need & ALL
}

/// The keyrings a search of the caller's own starts from: thread, process,
/// session (the user-session keyring when it has none).
pub fn top_keyrings(task: &Task, who: &Asker) -> KResult<Vec<Arc<Key>>> {
    let mut v = Vec::new();
    v.extend(thread_keyring(task));
    v.extend(process_keyring(task));
    match who.creds.keys.session.clone() {
        Some(s) => v.push(s),
        None => v.push(user_keyrings(who)?.1),
    }
    Ok(v)
}

/// What a search found.
pub enum Found {
    Key(Arc<Key>),
    /// A match that cannot be used (revoked, expired), or a keyring that
    /// may not be searched.
    Err(Errno),
    None,
}

/// Searches `ring` and the keyrings below it (depth first, at most
/// MAX_DEPTH deep, only through keyrings the caller may search) for a
/// usable key of `ktype` described `desc` that the caller may search.
/// `possessed` applies to the whole walk, as in Linux.
pub fn search_ring(
    ring: &Arc<Key>,
    possessed: bool,
    who: &Asker,
    ktype: KeyType,
    desc: &[u8],
) -> Found {
    let mut result = Found::None;
    search_in(ring, possessed, who, ktype, desc, 0, &mut result, true);
    result
}

#[allow(clippy::too_many_arguments)]
fn search_in(
    ring: &Arc<Key>,
    possessed: bool,
    who: &Asker,
    ktype: KeyType,
    desc: &[u8],
    depth: usize,
    result: &mut Found,
    top: bool,
) -> bool {
    // The starting keyring matches itself (a keyring searched for by name).
    if top
        && ktype == KeyType::Keyring
        && ring.desc == desc
        && consider(ring, possessed, who, result)
    {
        return true;
    }
    let links = ring.links();
    for k in &links {
        if k.ktype == ktype && k.desc == desc && consider(k, possessed, who, result) {
            return true;
        }
    }
    if depth + 1 >= MAX_DEPTH {
        return false;
    }
    for k in &links {
        if k.ktype == KeyType::Keyring
            && k.validate().is_ok()
            && permitted(k, possessed, who, SEARCH)
            && search_in(k, possessed, who, ktype, desc, depth + 1, result, false)
        {
            return true;
        }
    }
    false
}

/// Linux's keyring_search_iterator for a matching key: a usable key the
/// caller may search is found; a revoked or expired one leaves its error.
fn consider(k: &Arc<Key>, possessed: bool, who: &Asker, result: &mut Found) -> bool {
    if let Err(e) = k.validate() {
        if e != Errno::ENOKEY {
            *result = Found::Err(e);
        }
        return false;
    }
    if !permitted(k, possessed, who, SEARCH) {
        if matches!(result, Found::None) {
            *result = Found::Err(crate::errno!(EACCES));
        }
        return false;
    }
    *result = Found::Key(k.clone());
    true
}

/// The error of a negative key of `ktype`/`desc` (negated or rejected,
/// not expired) in the caller's keyrings (searched as [`search_process`]
/// does), if there is one: request_key gives it without constructing.
pub fn negative_error(
    task: &Task,
    who: &Asker,
    ktype: KeyType,
    desc: &[u8],
) -> KResult<Option<Errno>> {
    fn walk(ring: &Arc<Key>, ktype: KeyType, desc: &[u8], depth: usize) -> Option<Errno> {
        let links = ring.links();
        if let Some(e) = links.iter().find_map(|k| {
            if k.ktype != ktype || k.desc != desc {
                return None;
            }
            let st = k.lock();
            st.negative.filter(|_| live_error(&st).is_none())
        }) {
            return Some(e);
        }
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        links.iter().find_map(|k| {
            (k.ktype == KeyType::Keyring && k.validate().is_ok())
                .then(|| walk(k, ktype, desc, depth + 1))
                .flatten()
        })
    }
    Ok(top_keyrings(task, who)?
        .iter()
        .filter(|r| r.validate().is_ok())
        .find_map(|r| walk(r, ktype, desc, 0)))
}

/// Searches the caller's keyrings (search_process_keyrings): a found key
/// is possessed.
pub fn search_process(task: &Task, who: &Asker, ktype: KeyType, desc: &[u8]) -> KResult<Arc<Key>> {
    let mut err: Option<Errno> = None;
    for ring in top_keyrings(task, who)? {
        if !permitted(&ring, true, who, SEARCH) || ring.validate().is_err() {
            continue;
        }
        match search_ring(&ring, true, who, ktype, desc) {
            Found::Key(k) => return Ok(k),
            Found::Err(e) => {
                if err.is_none_or(|old| old == Errno::EACCES) {
                    err = Some(e);
                }
            }
            Found::None => {}
        }
    }
    // A helper holding an authorisation also searches its requester's
    // keyrings, as the requester (never for authorisation keys).
    if ktype != KeyType::RequestKeyAuth {
        if let Some((tops, asker)) = upcall::requester_of(who) {
            for ring in tops {
                if !permitted(&ring, true, &asker, SEARCH) || ring.validate().is_err() {
                    continue;
                }
                match search_ring(&ring, true, &asker, ktype, desc) {
                    Found::Key(k) => return Ok(k),
                    Found::Err(e) => {
                        if err.is_none_or(|old| old == Errno::EACCES) {
                            err = Some(e);
                        }
                    }
                    Found::None => {}
                }
            }
        }
    }
    Err(err.unwrap_or(Errno::ENOKEY))
}

/// Whether the caller possesses `key`: it is one of its top keyrings or
/// reachable from them through searchable keyrings, and searchable itself.
pub fn possessed(task: &Task, who: &Asker, key: &Arc<Key>) -> bool {
    let Ok(tops) = top_keyrings(task, who) else {
        return false;
    };
    let mut seen = Vec::new();
    if tops
        .iter()
        .any(|t| reaches(t, key, who, 0, &mut seen, true))
    {
        return true;
    }
    // With an assumed authorisation, what the requester possesses.
    upcall::requester_of(who).is_some_and(|(tops, asker)| {
        let mut seen = Vec::new();
        tops.iter()
            .any(|t| reaches(t, key, &asker, 0, &mut seen, true))
    })
}

fn reaches(
    ring: &Arc<Key>,
    key: &Arc<Key>,
    who: &Asker,
    depth: usize,
    seen: &mut Vec<i32>,
    top: bool,
) -> bool {
    if Arc::ptr_eq(ring, key) {
        return permitted(key, true, who, SEARCH) || top;
    }
    if ring.ktype != KeyType::Keyring
        || depth >= MAX_DEPTH
        || seen.contains(&ring.serial)
        || !permitted(ring, true, who, SEARCH)
    {
        return false;
    }
    seen.push(ring.serial);
    ring.links()
        .iter()
        .any(|k| reaches(k, key, who, depth + 1, seen, false))
}

/// Whether `target` is `ring` or a keyring reachable below it (a link of
/// `ring` into `target` would close a cycle).
fn below(target: &Arc<Key>, ring: &Arc<Key>, depth: usize) -> bool {
    if Arc::ptr_eq(target, ring) {
        return true;
    }
    if depth > MAX_DEPTH * 4 {
        return true;
    }
    target
        .links()
        .iter()
        .filter(|k| k.ktype == KeyType::Keyring)
        .any(|k| below(k, ring, depth + 1))
}

/// The depth of keyrings below `k` (0 for a key).
fn height(k: &Arc<Key>, depth: usize) -> usize {
    if k.ktype != KeyType::Keyring || depth > MAX_DEPTH * 4 {
        return 0;
    }
    1 + k
        .links()
        .iter()
        .map(|c| height(c, depth + 1))
        .max()
        .unwrap_or(0)
}

/// Links `key` into `ring`, replacing a link of the same type and
/// description (Linux's key_link). ENOTDIR if `ring` is no keyring, EPERM
/// if restricted, EDEADLK on a cycle, ELOOP when too deep.
pub fn link(ring: &Arc<Key>, key: &Arc<Key>) -> KResult<()> {
    if ring.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    ring.validate()?;
    if ring.lock().restricted {
        return error!(EPERM);
    }
    if key.ktype == KeyType::Keyring {
        if below(key, ring, 0) {
            return error!(EDEADLK);
        }
        if height(key, 0) >= MAX_DEPTH {
            return error!(ELOOP);
        }
    }
    let old = {
        let mut st = ring.lock();
        if st.links.iter().any(|k| Arc::ptr_eq(k, key)) {
            return Ok(());
        }
        let at = st
            .links
            .iter()
            .position(|k| k.ktype == key.ktype && k.desc == key.desc);
        match at {
            Some(i) => Some(std::mem::replace(&mut st.links[i], key.clone())),
            None => {
                if st.links.len() >= MAX_LINKS {
                    return error!(ENFILE);
                }
                st.links.push(key.clone());
                None
            }
        }
    };
    drop(old);
    Ok(())
}

/// Unlinks `key` from `ring` (ENOENT if not linked).
pub fn unlink(ring: &Arc<Key>, key: &Arc<Key>) -> KResult<()> {
    if ring.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    let old = {
        let mut st = ring.lock();
        let Some(i) = st.links.iter().position(|k| Arc::ptr_eq(k, key)) else {
            return error!(ENOENT);
        };
        st.links.remove(i)
    };
    drop(old);
    Ok(())
}

/// The key of `ktype`/`desc` linked directly in `ring`, if any.
fn find_in(ring: &Arc<Key>, ktype: KeyType, desc: &[u8]) -> Option<Arc<Key>> {
    ring.lock()
        .links
        .iter()
        .find(|k| k.ktype == ktype && k.desc == desc)
        .cloned()
}

// ---------------------------------------------------------------------------
// /proc/keys
// ---------------------------------------------------------------------------

fn timeout_text(exp: Option<Instant>) -> String {
    let Some(e) = exp else {
        return "perm".into();
    };
    let now = Instant::now();
    if now >= e {
        return "expd".into();
    }
    // Whole seconds left, rounded up (Linux counts in whole seconds).
    let left = e - now;
    let t = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    if t < 60 {
        format!("{t}s")
    } else if t < 3600 {
        format!("{}m", t / 60)
    } else if t < 86400 {
        format!("{}h", t / 3600)
    } else if t < 604_800 {
        format!("{}d", t / 86400)
    } else {
        format!("{}w", t / 604_800)
    }
}

/// /proc/keys: the keys the reader may view (possession counted), by
/// serial.
pub fn proc_keys_text(task: &Task) -> String {
    let who = Asker::of(task);
    let collect = || -> Vec<Arc<Key>> {
        let reg = registry();
        reg.serials.values().filter_map(|w| w.upgrade()).collect()
    };
    // The lazy garbage collection: keyrings drop reclaimable links.
    for k in collect().iter().filter(|k| k.ktype == KeyType::Keyring) {
        drop(k.links());
    }
    let mut keys = collect();
    keys.sort_by_key(|k| k.serial);
    let mut s = String::new();
    for k in &keys {
        let poss = possessed(task, &who, k);
        if !permitted(k, poss, &who, VIEW) {
            continue;
        }
        let usage = Arc::strong_count(k).saturating_sub(1);
        let st = k.lock();
        if st.invalidated {
            continue;
        }
        // Instantiated, Revoked, Dead (type gone), in Quota, Under
        // construction, Negative, invalidated.
        let flags = format!(
            "{}{}-{}{}{}{}",
            if st.constructing { '-' } else { 'I' },
            if st.revoked { 'R' } else { '-' },
            if st.in_quota { 'Q' } else { '-' },
            if st.constructing { 'U' } else { '-' },
            if st.negative.is_some() { 'N' } else { '-' },
            if st.invalidated { 'i' } else { '-' }
        );
        // The type's describe: the description, then what the payload
        // holds once the key is positive (instantiated, not negative).
        let desc = String::from_utf8_lossy(&k.desc);
        let positive = !st.constructing && st.negative.is_none();
        let shown = match k.ktype {
            KeyType::Keyring if !positive => desc.into_owned(),
            KeyType::Keyring if st.links.is_empty() => format!("{desc}: empty"),
            KeyType::Keyring => format!("{desc}: {}", st.links.len()),
            // request_key_auth_describe: nothing once revoked (the
            // context is gone); else the target's serial in hex, the
            // requester's pid and the callout's length.
            KeyType::RequestKeyAuth => match &st.auth {
                Some(a) => format!("key:{desc} pid:{} ci:{}", a.pid, st.payload.len()),
                None => String::new(),
            },
            _ if !positive => desc.into_owned(),
            // A revoked payload is freed (user_revoke reserves 0 bytes).
            _ if st.revoked => format!("{desc}: 0"),
            _ => format!("{desc}: {}", st.payload.len()),
        };
        s += &format!(
            "{:08x} {} {:5} {:>4} {:08x} {:5} {:5} {:<9.9} {}\n",
            k.serial,
            flags,
            usage,
            timeout_text(st.expiry),
            st.perm,
            show_uid(&who.creds, st.uid),
            show_gid(&who.creds, st.gid),
            k.ktype.name(),
            shown
        );
    }
    s
}
