//! request_key's upcall (Linux's security/keys/request_key.c and
//! request_key_auth.c): a key request_key has to construct is made
//! uninstantiated, linked into the destination keyring, and the guest's
//! `/sbin/request-key` is started by the kernel, as root in init's
//! namespaces with stdio on /dev/null (Linux's call_usermodehelper), as
//! `request-key create <key> <uid> <gid> <thread-keyring>
//! <process-keyring> <session-keyring>` (the requester's ids and
//! keyrings, 0 for none). Its session keyring `_req.<key>` holds an
//! authorisation key (type ".request_key_auth", described by the target
//! key's serial in hex, payload the callout information). The helper
//! takes it with KEYCTL_ASSUME_AUTHORITY and constructs the key with
//! KEYCTL_INSTANTIATE(_IOV), NEGATE or REJECT; while it holds the
//! authority it possesses what the requester possesses.
//!
//! The requester waits for the helper to exit (uninterruptibly, as
//! Linux's UMH_WAIT_PROC, woken by the exit itself: no polling); a key still uninstantiated then is negated
//! (ENOKEY). The INSTANTIATE or REJECT that constructs the key
//! invalidates the authorisation (ASSUME_AUTHORITY then gives ENOKEY,
//! as on Linux); it is revoked in any case when the helper has exited. Other requesters finding the key under construction
//! wait for it on [`CONSTRUCTION`] (interruptibly: ERESTARTSYS).
//!
//! Locking: [`CONSTRUCT`] serialises the search-then-create of a key to
//! construct (Linux's key_construction_mutex); it is taken before
//! [`super::REGISTRY`] and key locks, never while waiting.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use super::{
    create, insert, link, new_keyring, pos, search_process, top_keyrings, usr, Asker, Key, KeyType,
    ALL, LINK, READ, SEARCH, VIEW,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::task::creds::Creds;
use crate::task::wait::WaitQueue;
use crate::task::Task;

/// Where the helper is.
const HELPER: &[u8] = b"/sbin/request-key";

/// Wakes whoever waits for a key under construction.
pub static CONSTRUCTION: LazyLock<WaitQueue> = LazyLock::new(WaitQueue::new);

/// Serialises finding-or-creating the key to construct.
static CONSTRUCT: Mutex<()> = Mutex::new(());

/// An authorisation key's context (Linux's struct request_key_auth).
pub struct AuthInfo {
    pub target: Arc<Key>,
    /// Where request_key links the key (KEY_SPEC_REQUESTOR_KEYRING).
    pub dest: Arc<Key>,
    /// The requester's credentials (authorisation cleared) and keyrings:
    /// the helper possesses and searches what these reach.
    pub requester: Creds,
    pub tops: Vec<Arc<Key>>,
    /// The requesting thread's id (the first requester's when a helper
    /// asks on its behalf), as /proc/keys shows it.
    pub pid: i32,
}

/// With an assumed, unrevoked authorisation: the requester's keyrings
/// and the requester as an [`Asker`].
pub fn requester_of(who: &Asker) -> Option<(Vec<Arc<Key>>, Asker)> {
    let auth = who.creds.keys.request_key_auth.as_ref()?;
    let st = auth.lock();
    let info = st.auth.as_ref()?;
    let c = info.requester.clone();
    Some((
        info.tops.clone(),
        Asker {
            fsuid: c.fsuid,
            fsgid: c.fsgid,
            groups: c.groups.clone(),
            creds: c,
        },
    ))
}

/// Waits while `key` is under construction (ERESTARTSYS on a signal).
pub fn wait_constructed(task: &Arc<Task>, key: &Arc<Key>) -> KResult<()> {
    if !key.is_constructing() {
        return Ok(());
    }
    CONSTRUCTION.wait(task, None, || !key.is_constructing())
}

/// Constructs `ktype`/`desc` for request_key (no usable key was found):
/// the helper is run and waited for; the result is the key, or the
/// error of its construction (ENOENT: no helper; ENOKEY: negated or not
/// instantiated; a rejection's error).
pub fn construct(
    task: &Arc<Task>,
    who: &Asker,
    ktype: KeyType,
    desc: &[u8],
    callout: Vec<u8>,
    dest: Arc<Key>,
    perm: u32,
) -> KResult<Arc<Key>> {
    let key = {
        let _g = CONSTRUCT.lock().unwrap_or_else(|p| p.into_inner());
        // Someone may have started constructing it meanwhile.
        if let Ok(k) = search_process(task, who, ktype, desc) {
            drop(_g);
            if super::permitted(&k, true, who, LINK) {
                link(&dest, &k)?;
            }
            wait_constructed(task, &k)?;
            k.validate()?;
            return Ok(k);
        }
        let k = create(ktype, desc, who.fsuid, who.fsgid, perm, Vec::new())?;
        k.lock().constructing = true;
        link(&dest, &k)?;
        k
    };
    let r = run_construction(task, who, &key, callout, &dest);
    // complete_request_key: a key left uninstantiated is negated.
    let err = match r {
        Err(e) => Some(e),
        Ok(()) if key.is_constructing() || key.validate_live().is_err() => {
            Some(crate::errno!(ENOKEY))
        }
        Ok(()) => None,
    };
    if err.is_some() {
        let _ = reject(
            &key,
            super::NEGATIVE_TIMEOUT.as_secs() as u32,
            Errno::ENOKEY,
        );
    }
    CONSTRUCTION.wake_all();
    if let Some(e) = err {
        return Err(e);
    }
    key.validate()?;
    Ok(key)
}

/// Makes the authorisation, runs the helper and waits for it; the
/// authorisation is revoked at the end.
fn run_construction(
    task: &Arc<Task>,
    who: &Asker,
    key: &Arc<Key>,
    callout: Vec<u8>,
    dest: &Arc<Key>,
) -> KResult<()> {
    // A helper asking on another's behalf acts in the original context.
    let (requester, tops) = match requester_of(who) {
        Some((tops, a)) => (a.creds, tops),
        None => {
            let mut c = who.creds.clone();
            c.keys.request_key_auth = None;
            (c, top_keyrings(task, who)?)
        }
    };
    let pid = who
        .creds
        .keys
        .request_key_auth
        .as_ref()
        .and_then(|a| a.lock().auth.as_ref().map(|i| i.pid))
        .unwrap_or_else(|| task.tid());
    let info = AuthInfo {
        target: key.clone(),
        dest: dest.clone(),
        requester,
        tops,
        pid,
    };
    let auth = insert(
        KeyType::RequestKeyAuth,
        format!("{:x}", key.serial).as_bytes(),
        who.fsuid,
        who.fsgid,
        pos(VIEW | READ | SEARCH | LINK) | usr(VIEW),
        callout,
        None,
        Some(Box::new(info)),
    );
    let r = (|| {
        let ring = new_keyring(
            format!("_req.{}", key.serial).as_bytes(),
            who.fsuid,
            who.fsgid,
            pos(ALL) | usr(VIEW | READ),
        )?;
        link(&ring, &auth)?;
        let serial = |k: Option<Arc<Key>>| k.map_or(0, |k| k.serial);
        let session = match who.creds.keys.session.clone() {
            Some(s) => s.serial,
            None => super::user_keyrings(who)?.1.serial,
        };
        let argv: Vec<Vec<u8>> = [
            String::from_utf8_lossy(HELPER).into_owned(),
            "create".into(),
            key.serial.to_string(),
            who.fsuid.to_string(),
            who.fsgid.to_string(),
            serial(super::thread_keyring(task)).to_string(),
            serial(super::process_keyring(task)).to_string(),
            session.to_string(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        run_helper(argv, ring)
    })();
    auth.revoke();
    r
}

/// Starts the helper as Linux's call_usermodehelper does (root, init's
/// namespaces and root directory, stdio on /dev/null, a fixed
/// environment, `session` as its session keyring) and waits until it
/// has exited. The exec's error if it cannot start (ENOENT: no helper).
fn run_helper(argv: Vec<Vec<u8>>, session: Arc<Key>) -> KResult<()> {
    use crate::fs::types::oflags::O_RDWR;
    use crate::fs::vfs::Caller;
    let init = crate::container::init_task().ok_or(crate::errno!(ENOENT))?;
    let k = crate::kernel();
    let fs = crate::fs::FsContext::new(init.fs().ns.clone());
    let files = crate::fs::FdTable::new();
    {
        let walker = crate::fs::namei::Walker {
            ns: &fs.ns,
            root: fs.ns.root(),
            caller: Caller::kernel(),
        };
        if let Ok(p) = walker.walk(&fs.ns.root(), b"/dev/null", true) {
            if let Ok(ops) = p.inode().open(O_RDWR, &Caller::kernel()) {
                let f = crate::fs::OpenFile::new(p, Some(ops), O_RDWR);
                for fd in 0..3 {
                    files.install_at(fd, f.clone(), false)?;
                }
            }
        }
    }
    let limits = *init.group.limits.lock().unwrap_or_else(|p| p.into_inner());
    let task = {
        let mut tree = k.tasks.lock();
        let pid = k.tasks.alloc_pid(&tree).ok_or(crate::errno!(EAGAIN))?;
        let mm = crate::mm::Mm::new(k.phys.clone(), crate::mm::task_size() / 2);
        let group = crate::task::ThreadGroup::new(pid, Default::default(), limits);
        group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .session = Some(session);
        let t = Task::new(pid, group.clone(), mm, files, fs, Default::default());
        tree.insert(pid, crate::task::ProcNode::new(0, pid, pid, group));
        t
    };
    let envp: Vec<Vec<u8>> = [
        &b"HOME=/"[..],
        b"TERM=linux",
        b"PATH=/sbin:/bin:/usr/sbin:/usr/bin",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    let pid = crate::task::start_parentless(task, HELPER, argv, envp, "request-key").map_err(
        |e| match e {
            crate::task::StartError::Exec(e) => e,
            crate::task::StartError::Thread(_) => crate::errno!(EAGAIN),
        },
    )?;
    reap(pid);
    Ok(())
}

/// Waits until the helper (no parent inside: ppid 0) is a zombie and
/// reaps it, uninterruptibly as Linux's UMH_WAIT_PROC. Every process's
/// exit wakes the exit notification (the wait queue of pidfds, woken by
/// task/exit.rs once the zombie is recorded); this kernel wait sleeps on
/// its own waker registered there, holding no lock while it sleeps, and
/// rechecks the helper at each wake.
fn reap(pid: i32) {
    use crate::task::wait::Waker;
    let exits = crate::fs::anon::pidfd_waiters();
    let waker = Arc::new(Waker::default());
    // Registered before the first check: an exit in between pokes it.
    exits.add_waker(&waker);
    loop {
        {
            let mut tree = crate::kernel().tasks.lock();
            match tree.get(&pid) {
                Some(n) if n.ppid == 0 && n.zombie.is_none() => {}
                Some(n) if n.ppid == 0 => {
                    tree.remove(&pid);
                    drop(tree);
                    crate::task::ns::release_pid(pid);
                    break;
                }
                _ => break,
            }
        }
        waker.sleep(None);
    }
    exits.remove_waker(&waker);
}

/// Negates or rejects `key` (under construction) with `err` for
/// `timeout` seconds (Linux's key_reject_and_link; EBUSY if it is no
/// longer under construction).
pub fn reject(key: &Arc<Key>, timeout: u32, err: Errno) -> KResult<()> {
    {
        let mut st = key.lock();
        if !st.constructing {
            return error!(EBUSY);
        }
        st.constructing = false;
        st.negative = Some(err);
        st.expiry = Some(Instant::now() + std::time::Duration::from_secs(timeout.into()));
    }
    CONSTRUCTION.wake_all();
    Ok(())
}

/// Instantiates `key` (under construction) with `payload` (Linux's
/// key_instantiate_and_link: the type's checks first, then EBUSY).
pub fn instantiate(key: &Arc<Key>, payload: Vec<u8>) -> KResult<()> {
    if payload.is_empty() || payload.len() > super::USER_MAX_PAYLOAD {
        return error!(EINVAL);
    }
    {
        let mut st = key.lock();
        if !st.constructing {
            return error!(EBUSY);
        }
        let bytes = key.desc.len() + 1 + payload.len();
        super::recharge(st.quota_uid, st.quota_bytes, bytes)?;
        st.quota_bytes = bytes;
        st.payload = payload;
        st.constructing = false;
    }
    CONSTRUCTION.wake_all();
    Ok(())
}

/// The target of the authorisation the caller assumed, if it is `id`
/// (EPERM otherwise: no authority over that key).
pub fn authorised_target(who: &Asker, id: i32) -> KResult<(Arc<Key>, Arc<Key>)> {
    let auth = who
        .creds
        .keys
        .request_key_auth
        .clone()
        .ok_or(crate::errno!(EPERM))?;
    if auth.desc != format!("{id:x}").as_bytes() {
        return error!(EPERM);
    }
    // A revoked authorisation has let its context go: the target is
    // found by its serial (it is instantiated by then: EBUSY follows).
    let target = {
        let st = auth.lock();
        st.auth.as_ref().map(|i| i.target.clone())
    };
    let target = match target {
        Some(t) => t,
        None => super::by_serial(id).ok_or(crate::errno!(EPERM))?,
    };
    Ok((auth, target))
}

/// The requester's destination keyring recorded in an authorisation.
pub fn requestor_keyring(auth: &Arc<Key>) -> Option<Arc<Key>> {
    auth.lock().auth.as_ref().map(|i| i.dest.clone())
}

/// The authorisation for target `id` among the caller's keyrings
/// (key_get_instantiation_authkey): ENOKEY if none, EKEYREVOKED once
/// the construction is over.
pub fn auth_key_for(task: &Arc<Task>, who: &Asker, id: i32) -> KResult<Arc<Key>> {
    let desc = format!("{id:x}");
    let k = match search_process(task, who, KeyType::RequestKeyAuth, desc.as_bytes()) {
        Ok(k) => k,
        Err(Errno::EAGAIN) => return error!(ENOKEY),
        Err(e) => return Err(e),
    };
    if k.lock().revoked {
        return error!(EKEYREVOKED);
    }
    Ok(k)
}
