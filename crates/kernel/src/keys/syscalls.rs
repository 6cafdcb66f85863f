//! add_key(2), request_key(2) and keyctl(2) (see the module above for
//! what exists). Argument checks come in Linux's order: strings and
//! payloads are copied first (EFAULT, EINVAL), then the keys named are
//! looked up (lookup_user_key: special ids, state, permission), then the
//! operation's own checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    link, permitted, search_process, search_ring, unlink, Asker, Found, Key, KeyType, ALL, LINK,
    READ, SEARCH, SETATTR, VIEW, WRITE,
};
use crate::errno::{Errno, KResult};
use crate::error;
use crate::syscall_table;
use crate::syscalls::{SyscallContext, UserAddr};
use crate::task::caps::Cap;

syscall_table! { pub fn keys_table;
    ADD_KEY => sys_add_key(ktype: UserAddr, desc: UserAddr, payload: UserAddr, plen: usize, ring: i32),
    REQUEST_KEY => sys_request_key(ktype: UserAddr, desc: UserAddr, callout: UserAddr, dest: i32),
    KEYCTL => sys_keyctl(op: i32, a2: u64, a3: u64, a4: u64, a5: u64),
}

const KEY_SPEC_THREAD_KEYRING: i32 = -1;
const KEY_SPEC_PROCESS_KEYRING: i32 = -2;
const KEY_SPEC_SESSION_KEYRING: i32 = -3;
const KEY_SPEC_USER_KEYRING: i32 = -4;
const KEY_SPEC_USER_SESSION_KEYRING: i32 = -5;
const KEY_SPEC_GROUP_KEYRING: i32 = -6;
const KEY_SPEC_REQKEY_AUTH_KEY: i32 = -7;
const KEY_SPEC_REQUESTOR_KEYRING: i32 = -8;

/// lookup_user_key flags.
const CREATE: u32 = 1;
const PARTIAL: u32 = 2;
/// A "permission" that asks for the state check but leaves the
/// permission check to the caller (KEY_DEFER_PERM_CHECK).
const DEFER: u32 = 0x100;

/// Largest add_key payload (1 MiB less one byte), KEYCTL_UPDATE's (a page).
const ADD_MAX_PAYLOAD: usize = (1 << 20) - 1;
const PAGE: usize = 4096;

/// A key as an operation names it: whether the caller possesses it.
struct KeyRef {
    key: Arc<Key>,
    possessed: bool,
}

/// A key type name from the guest (key_get_type_from_user): EFAULT,
/// EINVAL when empty or 32 bytes or longer, EPERM for the kernel's own
/// ("." types).
fn read_type(ctx: &SyscallContext<'_>, at: UserAddr) -> KResult<Vec<u8>> {
    let t = ctx.mm().read_cstring(at.0, 31).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            crate::errno!(EINVAL)
        } else {
            e
        }
    })?;
    if t.is_empty() {
        return error!(EINVAL);
    }
    if t[0] == b'.' {
        return error!(EPERM);
    }
    Ok(t)
}

/// A string of at most `max` bytes before its NUL (strndup_user: EFAULT,
/// EINVAL if longer).
fn read_str(ctx: &SyscallContext<'_>, at: UserAddr, max: usize) -> KResult<Vec<u8>> {
    ctx.mm().read_cstring(at.0, max).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            crate::errno!(EINVAL)
        } else {
            e
        }
    })
}

fn read_payload(ctx: &SyscallContext<'_>, at: UserAddr, len: usize) -> KResult<Vec<u8>> {
    let mut b = vec![0u8; len];
    if len > 0 {
        ctx.mm().read_bytes(at.0, &mut b)?;
    }
    Ok(b)
}

/// Puts `k` in the keys slot `pick` chooses of the caller's credentials;
/// the key it replaces is dropped after the credentials' lock.
fn replace_key(
    ctx: &SyscallContext<'_>,
    pick: impl FnOnce(&mut crate::task::creds::Creds) -> &mut Option<Arc<Key>>,
    k: Option<Arc<Key>>,
) {
    let old = {
        let mut c = ctx
            .task
            .group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::replace(pick(&mut c), k)
    };
    drop(old);
}

fn set_session(ctx: &SyscallContext<'_>, k: Option<Arc<Key>>) {
    replace_key(ctx, |c| &mut c.keys.session, k);
}

/// Linux's lookup_user_key: a special id or a serial, then (unless
/// PARTIAL) the key must be usable when `need` is non-zero, then the
/// permission in `need` (possession counted).
fn lookup(
    ctx: &SyscallContext<'_>,
    who: &Asker,
    id: i32,
    flags: u32,
    need: u32,
) -> KResult<KeyRef> {
    let task = ctx.task;
    let keyring_perm = super::pos(ALL) | super::usr(VIEW);
    let key = match id {
        KEY_SPEC_THREAD_KEYRING | KEY_SPEC_PROCESS_KEYRING => {
            // The thread's or the process's keyring, made if asked.
            let thread = id == KEY_SPEC_THREAD_KEYRING;
            let have = if thread {
                super::thread_keyring(task)
            } else {
                super::process_keyring(task)
            };
            match have {
                Some(k) => k,
                None if flags & CREATE != 0 => {
                    let desc: &[u8] = if thread { b"_tid" } else { b"_pid" };
                    let k = super::new_keyring(desc, who.fsuid, who.fsgid, keyring_perm)?;
                    if thread {
                        super::install_thread(task, k)
                    } else {
                        super::install_process(task, k)
                    }
                }
                None => return error!(ENOKEY),
            }
        }
        KEY_SPEC_SESSION_KEYRING => match who.creds.keys.session.clone() {
            Some(k) => k,
            None => {
                let us = super::user_keyrings(who)?.1;
                if flags & CREATE != 0 {
                    // Linux installs the user-session keyring as the
                    // session keyring upon such an access.
                    set_session(ctx, Some(us.clone()));
                }
                us
            }
        },
        KEY_SPEC_USER_KEYRING => super::user_keyrings(who)?.0,
        KEY_SPEC_USER_SESSION_KEYRING => super::user_keyrings(who)?.1,
        KEY_SPEC_GROUP_KEYRING => return error!(EINVAL),
        // The authorisation KEYCTL_ASSUME_AUTHORITY assumed, and the
        // destination keyring it records.
        KEY_SPEC_REQKEY_AUTH_KEY => who
            .creds
            .keys
            .request_key_auth
            .clone()
            .ok_or(crate::errno!(ENOKEY))?,
        KEY_SPEC_REQUESTOR_KEYRING => {
            let auth = who
                .creds
                .keys
                .request_key_auth
                .clone()
                .ok_or(crate::errno!(ENOKEY))?;
            match super::upcall::requestor_keyring(&auth) {
                Some(k) => k,
                None => return error!(EKEYREVOKED),
            }
        }
        id if id < 1 => return error!(EINVAL),
        id => {
            let k = super::by_serial(id).ok_or(crate::errno!(ENOKEY))?;
            // A key under construction: uses other than PARTIAL ones wait
            // for it (wait_for_key_construction).
            if flags & PARTIAL == 0 {
                super::upcall::wait_constructed(task, &k)?;
            }
            let poss = super::possessed(task, who, &k);
            return finish(
                who,
                KeyRef {
                    key: k,
                    possessed: poss,
                },
                flags,
                need,
            );
        }
    };
    finish(
        who,
        KeyRef {
            key,
            possessed: true,
        },
        flags,
        need,
    )
}

fn finish(who: &Asker, r: KeyRef, flags: u32, need: u32) -> KResult<KeyRef> {
    // PARTIAL lookups take negative keys (__key_validate); others do not
    // (wait_for_key_construction gives the negative key's error).
    if need != 0 {
        if flags & PARTIAL != 0 {
            r.key.validate_live()?;
        } else {
            r.key.validate()?;
        }
    }
    if need & ALL != 0 && !permitted(&r.key, r.possessed, who, need & ALL) {
        return error!(EACCES);
    }
    Ok(r)
}

/// Default permissions of a key add_key makes (key_create_or_update).
fn default_perm(t: KeyType) -> u32 {
    let mut p = super::pos(VIEW | SEARCH | LINK | SETATTR) | super::usr(VIEW);
    if t != KeyType::Logon {
        p |= super::pos(READ);
    }
    p | super::pos(WRITE)
}

/// A user or logon payload: 1..=32767 bytes (user_preparse).
fn check_user_payload(p: &[u8]) -> KResult<()> {
    if p.is_empty() || p.len() > super::USER_MAX_PAYLOAD {
        return error!(EINVAL);
    }
    Ok(())
}

/// Replaces a user/logon key's payload, moving its quota charge.
fn update_payload(key: &Key, payload: Vec<u8>) -> KResult<()> {
    check_user_payload(&payload)?;
    let old = {
        let mut st = key.lock();
        let new_bytes = key.desc.len() + 1 + payload.len();
        super::recharge(st.quota_uid, st.quota_bytes, new_bytes)?;
        st.quota_bytes = new_bytes;
        std::mem::replace(&mut st.payload, payload)
    };
    drop(old);
    Ok(())
}

fn sys_add_key(
    ctx: &mut SyscallContext<'_>,
    ktype: UserAddr,
    desc: UserAddr,
    payload: UserAddr,
    plen: usize,
    ring: i32,
) -> KResult<u64> {
    let tname = read_type(ctx, ktype)?;
    let desc = if desc.is_null() {
        Vec::new()
    } else {
        read_str(ctx, desc, super::MAX_DESC)?
    };
    if plen > ADD_MAX_PAYLOAD {
        return error!(EINVAL);
    }
    let payload = read_payload(ctx, payload, plen)?;
    let who = Asker::of(ctx.task);
    let dest = lookup(ctx, &who, ring, CREATE, WRITE)?;
    let t = KeyType::by_name(&tname).ok_or(crate::errno!(ENODEV))?;
    if dest.key.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    match t {
        KeyType::Keyring if !payload.is_empty() => return error!(EINVAL),
        KeyType::User | KeyType::Logon => check_user_payload(&payload)?,
        _ => {}
    }
    if desc.is_empty() {
        return error!(EINVAL);
    }
    if t == KeyType::Logon {
        // "service:name" with a non-empty service (logon_vet_description).
        match desc.iter().position(|&b| b == b':') {
            Some(i) if i > 0 => {}
            _ => return error!(EINVAL),
        }
    }
    if dest.key.lock().restricted {
        return error!(EPERM);
    }
    // A user or logon key of the same description in the keyring is
    // updated in place (if usable and writable).
    if t != KeyType::Keyring {
        if let Some(k) = super::find_in(&dest.key, t, &desc) {
            let dead = {
                let st = k.lock();
                st.revoked || st.invalidated
            };
            if !dead {
                if !permitted(&k, dest.possessed, &who, WRITE) {
                    return error!(EACCES);
                }
                update_payload(&k, payload)?;
                return Ok(k.serial as u64);
            }
        }
    }
    let data = if t == KeyType::Keyring {
        Vec::new()
    } else {
        payload
    };
    let k = super::create(t, &desc, who.fsuid, who.fsgid, default_perm(t), data)?;
    link(&dest.key, &k)?;
    Ok(k.serial as u64)
}

fn sys_request_key(
    ctx: &mut SyscallContext<'_>,
    ktype: UserAddr,
    desc: UserAddr,
    callout: UserAddr,
    dest: i32,
) -> KResult<u64> {
    let tname = read_type(ctx, ktype)?;
    let desc = read_str(ctx, desc, super::MAX_DESC)?;
    let callout = if callout.is_null() {
        None
    } else {
        Some(read_str(ctx, callout, PAGE)?)
    };
    let who = Asker::of(ctx.task);
    let dest = if dest != 0 {
        Some(lookup(ctx, &who, dest, CREATE, WRITE)?)
    } else {
        None
    };
    let t = KeyType::by_name(&tname).ok_or(crate::errno!(ENOKEY))?;
    // A negative key found gives its error (a rejection's may be
    // EKEYEXPIRED); expired keys are skipped (KEYRING_SEARCH_SKIP_EXPIRED).
    let found = match search_process(ctx.task, &who, t, &desc) {
        Err(Errno::EKEYEXPIRED | Errno::ENOKEY) => {
            if let Some(e) = super::negative_error(ctx.task, &who, t, &desc)? {
                return Err(e);
            }
            Err(Errno::ENOKEY)
        }
        r => r,
    };
    match found {
        Ok(k) => {
            if let Some(d) = dest {
                if !permitted(&k, true, &who, LINK) {
                    return error!(EACCES);
                }
                link(&d.key, &k)?;
            }
            // Under construction by another request: wait, then its
            // outcome (a negated or rejected key's error).
            super::upcall::wait_constructed(ctx.task, &k)?;
            k.validate()?;
            Ok(k.serial as u64)
        }
        Err(Errno::ENOKEY) => {
            let Some(callout) = callout else {
                return error!(ENOKEY);
            };
            if t == KeyType::Keyring {
                return error!(EPERM);
            }
            // Construction (Linux's construct_key_and_link): the key is
            // made and linked into the destination, /sbin/request-key run
            // to instantiate it (keys/upcall.rs).
            let ring = match dest {
                Some(d) => d.key,
                None => default_dest(ctx, &who)?,
            };
            let k =
                super::upcall::construct(ctx.task, &who, t, &desc, callout, ring, default_perm(t))?;
            Ok(k.serial as u64)
        }
        Err(e) => Err(e),
    }
}

/// Where request_key links a key it constructs with no destination
/// given: as KEYCTL_SET_REQKEY_KEYRING chose (construct_get_dest_keyring):
/// the thread, process or session keyring, the first that exists, from
/// the chosen one down to the user-session keyring; or the user keyring.
fn default_dest(ctx: &SyscallContext<'_>, who: &Asker) -> KResult<Arc<Key>> {
    let task = ctx.task;
    let choice = who.creds.keys.reqkey_default;
    if choice == 4 {
        return Ok(super::user_keyrings(who)?.0);
    }
    let from_thread = matches!(choice, 0 | 1 | 7).then(|| super::thread_keyring(task));
    let from_process = matches!(choice, 0 | 1 | 2 | 7).then(|| super::process_keyring(task));
    let from_session = matches!(choice, 0 | 1 | 2 | 3 | 7).then(|| who.creds.keys.session.clone());
    match [from_thread, from_process, from_session]
        .into_iter()
        .flatten()
        .flatten()
        .next()
    {
        Some(k) => Ok(k),
        None => Ok(super::user_keyrings(who)?.1),
    }
}

// keyctl operations.
const GET_KEYRING_ID: i32 = 0;
const JOIN_SESSION_KEYRING: i32 = 1;
const UPDATE: i32 = 2;
const REVOKE: i32 = 3;
const CHOWN: i32 = 4;
const SETPERM: i32 = 5;
const DESCRIBE: i32 = 6;
const CLEAR: i32 = 7;
const LINK_OP: i32 = 8;
const UNLINK: i32 = 9;
const SEARCH_OP: i32 = 10;
const READ_OP: i32 = 11;
const INSTANTIATE: i32 = 12;
const NEGATE: i32 = 13;
const SET_REQKEY_KEYRING: i32 = 14;
const SET_TIMEOUT: i32 = 15;
const ASSUME_AUTHORITY: i32 = 16;
const GET_SECURITY: i32 = 17;
const SESSION_TO_PARENT: i32 = 18;
const REJECT: i32 = 19;
const INSTANTIATE_IOV: i32 = 20;
const INVALIDATE: i32 = 21;
const GET_PERSISTENT: i32 = 22;
const DH_COMPUTE: i32 = 23;
const PKEY_QUERY: i32 = 24;
const PKEY_VERIFY: i32 = 28;
const RESTRICT_KEYRING: i32 = 29;
const MOVE: i32 = 30;
const CAPABILITIES: i32 = 31;
const WATCH_KEY: i32 = 32;

fn sys_keyctl(
    ctx: &mut SyscallContext<'_>,
    op: i32,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> KResult<u64> {
    let id = a2 as i32;
    match op {
        GET_KEYRING_ID => {
            let who = Asker::of(ctx.task);
            let flags = if a3 as i32 != 0 { CREATE } else { 0 };
            Ok(lookup(ctx, &who, id, flags, SEARCH)?.key.serial as u64)
        }
        JOIN_SESSION_KEYRING => join(ctx, UserAddr(a2)),
        UPDATE => {
            let plen = a4 as usize;
            if plen > PAGE {
                return error!(EINVAL);
            }
            let payload = read_payload(ctx, UserAddr(a3), plen)?;
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, 0, WRITE)?;
            if matches!(r.key.ktype, KeyType::Keyring | KeyType::RequestKeyAuth) {
                return error!(EOPNOTSUPP);
            }
            update_payload(&r.key, payload)?;
            Ok(0)
        }
        REVOKE => {
            let who = Asker::of(ctx.task);
            let r = match lookup(ctx, &who, id, 0, WRITE) {
                Err(Errno::EACCES) => lookup(ctx, &who, id, 0, SETATTR)?,
                r => r?,
            };
            r.key.revoke();
            Ok(0)
        }
        CHOWN => chown(ctx, id, a3 as u32, a4 as u32),
        SETPERM => {
            let perm = a3 as u32;
            if perm & !0x3f3f_3f3f != 0 {
                return error!(EINVAL);
            }
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, CREATE | PARTIAL, SETATTR)?;
            let mut st = r.key.lock();
            if st.uid != who.fsuid && !ctx.task.privileged(Cap::SysAdmin) {
                return error!(EACCES);
            }
            st.perm = perm;
            Ok(0)
        }
        DESCRIBE => {
            let who = Asker::of(ctx.task);
            let r = match lookup(ctx, &who, id, PARTIAL, VIEW) {
                // Viewing a key under construction with its authorisation
                // at hand (KEY_AUTHTOKEN_OVERRIDE).
                Err(Errno::EACCES) if super::upcall::auth_key_for(ctx.task, &who, id).is_ok() => {
                    lookup(ctx, &who, id, PARTIAL, 0)?
                }
                r => r?,
            };
            let mut s = r.key.describe(&who.creds).into_bytes();
            s.push(0);
            copy_out_if_fits(ctx, UserAddr(a3), a4 as usize, &s)
        }
        CLEAR => {
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, CREATE, WRITE)?;
            if r.key.ktype != KeyType::Keyring {
                return error!(ENOTDIR);
            }
            let old = {
                let mut st = r.key.lock();
                if st.restricted {
                    return error!(EPERM);
                }
                std::mem::take(&mut st.links)
            };
            drop(old);
            Ok(0)
        }
        LINK_OP => {
            let who = Asker::of(ctx.task);
            let ring = lookup(ctx, &who, a3 as i32, CREATE, WRITE)?;
            let key = lookup(ctx, &who, id, CREATE, LINK)?;
            link(&ring.key, &key.key)?;
            Ok(0)
        }
        UNLINK => {
            let who = Asker::of(ctx.task);
            let ring = lookup(ctx, &who, a3 as i32, 0, WRITE)?;
            let key = lookup(ctx, &who, id, PARTIAL, 0)?;
            unlink(&ring.key, &key.key)?;
            Ok(0)
        }
        SEARCH_OP => search(ctx, id, UserAddr(a3), UserAddr(a4), a5 as i32),
        READ_OP => {
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, 0, DEFER)?;
            if !permitted(&r.key, r.possessed, &who, READ) && !r.possessed {
                return error!(EACCES);
            }
            let data = match r.key.ktype {
                KeyType::Logon => return error!(EOPNOTSUPP),
                // A negative key gives its error (key_read_state).
                KeyType::User if r.key.is_negative() => return error!(ENOKEY),
                KeyType::User | KeyType::RequestKeyAuth => r.key.lock().payload.clone(),
                KeyType::Keyring => r
                    .key
                    .links()
                    .iter()
                    .filter(|k| !k.is_invalidated())
                    .flat_map(|k| k.serial.to_ne_bytes())
                    .collect(),
            };
            copy_out_if_fits(ctx, UserAddr(a3), a4 as usize, &data)
        }
        INSTANTIATE => {
            // No payload pointer: an empty payload, whatever the length.
            let plen = if a3 == 0 { 0 } else { a4 as usize };
            if plen > ADD_MAX_PAYLOAD {
                return error!(EINVAL);
            }
            let who = Asker::of(ctx.task);
            super::upcall::authorised_target(&who, id)?;
            let payload = if plen == 0 {
                Vec::new()
            } else {
                read_payload(ctx, UserAddr(a3), plen)?
            };
            instantiate(ctx, &who, id, payload, a5 as i32)
        }
        INSTANTIATE_IOV => {
            let payload = read_iov(ctx, UserAddr(a3), a4)?;
            if payload.len() > ADD_MAX_PAYLOAD {
                return error!(EINVAL);
            }
            let who = Asker::of(ctx.task);
            super::upcall::authorised_target(&who, id)?;
            instantiate(ctx, &who, id, payload, a5 as i32)
        }
        NEGATE => reject(ctx, id, a3 as u32, Errno::ENOKEY.as_i32() as u32, a4 as i32),
        REJECT => reject(ctx, id, a3 as u32, a4 as u32, a5 as i32),
        SET_REQKEY_KEYRING => reqkey_keyring(ctx, id),
        SET_TIMEOUT => {
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, CREATE | PARTIAL, SETATTR)?;
            let secs = a3 as u32;
            r.key.lock().expiry = if secs == 0 {
                None
            } else {
                Some(Instant::now() + Duration::from_secs(secs.into()))
            };
            Ok(0)
        }
        ASSUME_AUTHORITY => match id {
            i32::MIN..=-1 => error!(EINVAL),
            0 => {
                set_auth(ctx, None);
                Ok(0)
            }
            _ => {
                let who = Asker::of(ctx.task);
                let auth = super::upcall::auth_key_for(ctx.task, &who, id)?;
                let serial = auth.serial;
                set_auth(ctx, Some(auth));
                Ok(serial as u64)
            }
        },
        GET_SECURITY => {
            let who = Asker::of(ctx.task);
            lookup(ctx, &who, id, PARTIAL, VIEW)?;
            // No security module: an empty context.
            if a3 != 0 && a4 as usize > 0 {
                ctx.mm().write_bytes(a3, &[0])?;
            }
            Ok(1)
        }
        SESSION_TO_PARENT => session_to_parent(ctx),
        INVALIDATE => {
            let who = Asker::of(ctx.task);
            let r = lookup(ctx, &who, id, 0, SEARCH)?;
            r.key.invalidate();
            invalidate_links(&r.key);
            Ok(0)
        }
        GET_PERSISTENT => persistent(ctx, id, a3 as i32),
        RESTRICT_KEYRING => restrict(ctx, id, UserAddr(a3), UserAddr(a4)),
        MOVE => key_move(ctx, id, a3 as i32, a4 as i32, a5 as u32),
        CAPABILITIES => {
            // CAPABILITIES, PERSISTENT_KEYRINGS, INVALIDATE,
            // RESTRICT_KEYRING, MOVE; no Diffie-Hellman, public keys,
            // big keys, namespaced names or notifications.
            // (Linux 5.3 and later always set the two namespace bits of
            // the second byte; ruml's JOIN_SESSION_KEYRING does not look
            // names up per user namespace, so it leaves them clear.)
            let caps = [0x01u8 | 0x02 | 0x20 | 0x40 | 0x80, 0];
            let n = (a3 as usize).min(caps.len());
            if n > 0 {
                ctx.mm().write_bytes(a2, &caps[..n])?;
                // The rest of the buffer is cleared (clear_user), a page
                // at a time until it ends or faults.
                let zero = [0u8; PAGE];
                let mut at = a2.wrapping_add(n as u64);
                let mut left = a3.saturating_sub(n as u64);
                while left > 0 {
                    let k = left.min(PAGE as u64) as usize;
                    ctx.mm().write_bytes(at, &zero[..k])?;
                    at = at.wrapping_add(k as u64);
                    left -= k as u64;
                }
            }
            Ok(caps.len() as u64)
        }
        // A kernel without CONFIG_ASYMMETRIC_KEY_TYPE: PKEY_QUERY checks
        // its reserved argument, then it and the other public-key
        // operations are EOPNOTSUPP, as Linux's stubs say.
        PKEY_QUERY if a3 != 0 => error!(EINVAL),
        // Without CONFIG_KEY_DH_OPERATIONS, CONFIG_ASYMMETRIC_KEY_TYPE and
        // CONFIG_KEY_NOTIFICATIONS (/proc/config.gz says so), and for an
        // unknown operation: Linux's EOPNOTSUPP.
        DH_COMPUTE | PKEY_QUERY..=PKEY_VERIFY | WATCH_KEY => error!(EOPNOTSUPP),
        _ => error!(EOPNOTSUPP),
    }
}

fn set_auth(ctx: &SyscallContext<'_>, k: Option<Arc<Key>>) {
    replace_key(ctx, |c| &mut c.keys.request_key_auth, k);
}

/// An iovec array's bytes for KEYCTL_INSTANTIATE_IOV (import_iovec:
/// at most UIO_MAXIOV entries, EINVAL; EFAULT; a total past the largest
/// payload is EINVAL before anything is read).
fn read_iov(ctx: &SyscallContext<'_>, iov: UserAddr, count: u64) -> KResult<Vec<u8>> {
    if iov.is_null() || count == 0 {
        return Ok(Vec::new());
    }
    if count > 1024 {
        return error!(EINVAL);
    }
    let segs = crate::fs::syscalls::iovec_entries(&ctx.mm(), iov.0, count as usize)?;
    let mut total: u64 = 0;
    for &(_, l) in &segs {
        if l > isize::MAX as u64 {
            return error!(EINVAL);
        }
        total = total.saturating_add(l);
    }
    if total > ADD_MAX_PAYLOAD as u64 {
        return error!(EINVAL);
    }
    let mut out = Vec::with_capacity(total as usize);
    for (a, l) in segs {
        let start = out.len();
        out.resize(start + l as usize, 0);
        if l > 0 {
            ctx.mm().read_bytes(a, &mut out[start..])?;
        }
    }
    Ok(out)
}

/// Linux's get_instantiation_keyring: 0 none, a serial (looked up for
/// write, created if special), KEY_SPEC_REQKEY_AUTH_KEY EINVAL, another
/// special id the requester's destination.
fn instantiation_keyring(
    ctx: &SyscallContext<'_>,
    who: &Asker,
    auth: &Arc<Key>,
    ring: i32,
) -> KResult<Option<Arc<Key>>> {
    match ring {
        0 => Ok(None),
        r if r > 0 => Ok(Some(lookup(ctx, who, r, CREATE, WRITE)?.key)),
        KEY_SPEC_REQKEY_AUTH_KEY => error!(EINVAL),
        r if r >= KEY_SPEC_REQUESTOR_KEYRING => Ok(super::upcall::requestor_keyring(auth)),
        _ => error!(ENOKEY),
    }
}

/// KEYCTL_INSTANTIATE(_IOV) after the payload is read: the key is
/// instantiated, linked, the authorisation revoked and let go.
fn instantiate(
    ctx: &SyscallContext<'_>,
    who: &Asker,
    id: i32,
    payload: Vec<u8>,
    ring: i32,
) -> KResult<u64> {
    let (auth, target) = super::upcall::authorised_target(who, id)?;
    let dest = instantiation_keyring(ctx, who, &auth, ring)?;
    super::upcall::instantiate(&target, payload)?;
    if let Some(d) = dest {
        link(&d, &target)?;
    }
    // The authorisation is used up (Linux invalidates it: ENOKEY after).
    auth.invalidate();
    invalidate_links(&auth);
    set_auth(ctx, None);
    Ok(0)
}

/// KEYCTL_NEGATE and KEYCTL_REJECT. `err` is an unsigned int, as
/// Linux's: any error number below MAX_ERRNO but the restart codes
/// (keyctl_reject_key refuses ERESTARTSYS, ERESTARTNOINTR,
/// ERESTARTNOHAND and ERESTART_RESTARTBLOCK), named or not; the key keeps
/// it and request_key gives it back as it was.
fn reject(ctx: &SyscallContext<'_>, id: i32, timeout: u32, err: u32, ring: i32) -> KResult<u64> {
    let e = i32::try_from(err)
        .ok()
        .filter(|&n| n < Errno::MAX)
        .and_then(Errno::from_raw)
        .filter(|e| {
            !matches!(
                *e,
                Errno::ERESTARTSYS
                    | Errno::ERESTARTNOINTR
                    | Errno::ERESTARTNOHAND
                    | Errno::ERESTART_RESTARTBLOCK
            )
        })
        .ok_or(crate::errno!(EINVAL))?;
    let who = Asker::of(ctx.task);
    let (auth, target) = super::upcall::authorised_target(&who, id)?;
    let dest = instantiation_keyring(ctx, &who, &auth, ring)?;
    super::upcall::reject(&target, timeout, e)?;
    if let Some(d) = dest {
        link(&d, &target)?;
    }
    // The authorisation is used up (Linux invalidates it: ENOKEY after).
    auth.invalidate();
    invalidate_links(&auth);
    set_auth(ctx, None);
    Ok(0)
}

/// Writes `data` to `buf` if it fits in `len` (nothing otherwise); the
/// length in any case.
fn copy_out_if_fits(
    ctx: &SyscallContext<'_>,
    buf: UserAddr,
    len: usize,
    data: &[u8],
) -> KResult<u64> {
    if !buf.is_null() && len >= data.len() && !data.is_empty() {
        ctx.mm().write_bytes(buf.0, data)?;
    }
    Ok(data.len() as u64)
}

/// Removes an invalidated key from every keyring (Linux's garbage
/// collector does so at once for invalidated keys).
fn invalidate_links(key: &Arc<Key>) {
    let rings: Vec<Arc<Key>> = {
        let reg = super::registry();
        reg.serials
            .values()
            .filter_map(|w| w.upgrade())
            .filter(|k| k.ktype == KeyType::Keyring)
            .collect()
    };
    for r in &rings {
        let _ = unlink(r, key);
    }
}

fn join(ctx: &SyscallContext<'_>, name: UserAddr) -> KResult<u64> {
    let who = Asker::of(ctx.task);
    if name.is_null() {
        let perm = super::pos(ALL) | super::usr(VIEW | READ);
        let k = super::new_keyring(b"_ses", who.fsuid, who.fsgid, perm)?;
        let serial = k.serial;
        set_session(ctx, Some(k));
        return Ok(serial as u64);
    }
    let name = read_str(ctx, name, super::MAX_DESC)?;
    if name.is_empty() {
        return error!(EINVAL);
    }
    // An existing keyring of that name the caller may search without
    // possessing it (find_keyring_by_name), else a new one.
    let found = {
        let reg = super::registry();
        reg.serials
            .values()
            .filter_map(|w| w.upgrade())
            .filter(|k| k.ktype == KeyType::Keyring && k.desc == name)
            .collect::<Vec<_>>()
    };
    let found = found
        .into_iter()
        .find(|k| k.validate().is_ok() && permitted(k, false, &who, SEARCH));
    let k = match found {
        Some(k) => {
            if who
                .creds
                .keys
                .session
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, &k))
            {
                return Ok(0);
            }
            k
        }
        None => {
            let perm = super::pos(ALL) | super::usr(VIEW | READ | LINK);
            super::new_keyring(&name, who.fsuid, who.fsgid, perm)?
        }
    };
    let serial = k.serial;
    set_session(ctx, Some(k));
    Ok(serial as u64)
}

fn chown(ctx: &SyscallContext<'_>, id: i32, uid: u32, gid: u32) -> KResult<u64> {
    use crate::task::ns::MapKind;
    let who = Asker::of(ctx.task);
    let kuid = if uid == u32::MAX {
        None
    } else {
        Some(
            who.creds
                .user_ns
                .0
                .to_kernel(MapKind::Uid, uid)
                .ok_or(crate::errno!(EINVAL))?,
        )
    };
    let kgid = if gid == u32::MAX {
        None
    } else {
        Some(
            who.creds
                .user_ns
                .0
                .to_kernel(MapKind::Gid, gid)
                .ok_or(crate::errno!(EINVAL))?,
        )
    };
    // Nothing to change: done, before the key is looked up.
    if kuid.is_none() && kgid.is_none() {
        return Ok(0);
    }
    let r = lookup(ctx, &who, id, CREATE | PARTIAL, SETATTR)?;
    let admin = ctx.task.privileged(Cap::SysAdmin);
    let mut st = r.key.lock();
    let privileged_op = kuid.is_some_and(|u| u != st.uid)
        || kgid.is_some_and(|g| g != st.gid && g != who.fsgid && !who.groups.contains(&g));
    if privileged_op && !admin {
        return error!(EACCES);
    }
    if let Some(u) = kuid.filter(|&u| u != st.uid) {
        // The new owner takes over the quota charge.
        super::charge(u, st.quota_bytes)?;
        let (old_uid, bytes) = (st.quota_uid, st.quota_bytes);
        {
            let mut q = super::quotas();
            if let Some(o) = q.get_mut(&old_uid) {
                o.keys = o.keys.saturating_sub(1);
                o.bytes = o.bytes.saturating_sub(bytes);
            }
        }
        st.quota_uid = u;
        st.uid = u;
    }
    if let Some(g) = kgid {
        st.gid = g;
    }
    Ok(0)
}

fn search(
    ctx: &SyscallContext<'_>,
    ring: i32,
    ktype: UserAddr,
    desc: UserAddr,
    dest: i32,
) -> KResult<u64> {
    let tname = read_type(ctx, ktype)?;
    let desc = read_str(ctx, desc, super::MAX_DESC)?;
    let who = Asker::of(ctx.task);
    let dest = if dest != 0 {
        Some(lookup(ctx, &who, dest, CREATE, WRITE)?)
    } else {
        None
    };
    let r = lookup(ctx, &who, ring, 0, SEARCH)?;
    let t = KeyType::by_name(&tname).ok_or(crate::errno!(ENOKEY))?;
    if r.key.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    let k = match search_ring(&r.key, r.possessed, &who, t, &desc) {
        Found::Key(k) => k,
        Found::Err(e) => return Err(e),
        Found::None => return error!(ENOKEY),
    };
    if let Some(d) = dest {
        if !permitted(&k, r.possessed, &who, LINK) {
            return error!(EACCES);
        }
        link(&d.key, &k)?;
    }
    Ok(k.serial as u64)
}

fn reqkey_keyring(ctx: &SyscallContext<'_>, v: i32) -> KResult<u64> {
    let old = {
        let c = ctx
            .task
            .group
            .creds
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.keys.reqkey_default
    };
    match v {
        -1 => return Ok(old as u64),
        // THREAD and PROCESS make the keyring they name.
        1 => {
            let who = Asker::of(ctx.task);
            lookup(ctx, &who, KEY_SPEC_THREAD_KEYRING, CREATE, 0)?;
        }
        2 => {
            let who = Asker::of(ctx.task);
            lookup(ctx, &who, KEY_SPEC_PROCESS_KEYRING, CREATE, 0)?;
        }
        0 | 3 | 4 | 5 | 7 => {}
        _ => return error!(EINVAL),
    }
    ctx.task
        .group
        .creds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys
        .reqkey_default = v;
    Ok(old as u64)
}

/// KEYCTL_SESSION_TO_PARENT: the parent process takes the caller's
/// session keyring (same owner, single-threaded, not init).
fn session_to_parent(ctx: &SyscallContext<'_>) -> KResult<u64> {
    let who = Asker::of(ctx.task);
    let mine = lookup(ctx, &who, KEY_SPEC_SESSION_KEYRING, 0, LINK)?.key;
    let ppid = crate::task::process_ids(ctx.task.tgid())
        .map(|i| i.ppid)
        .unwrap_or(0);
    let parent = crate::kernel()
        .tasks
        .group(ppid)
        .ok_or(crate::errno!(EPERM))?;
    if ctx.task.pid_view(ppid) == 1 || parent.threads().len() != 1 {
        return error!(EPERM);
    }
    let c = &who.creds;
    let mut pc = parent.creds.lock().unwrap_or_else(|p| p.into_inner());
    if pc.ruid != c.euid
        || pc.euid != c.euid
        || pc.suid != c.euid
        || pc.rgid != c.egid
        || pc.egid != c.egid
        || pc.sgid != c.egid
        || pc
            .keys
            .session
            .as_ref()
            .is_some_and(|s| s.lock().uid != c.euid)
        || mine.lock().uid != c.euid
    {
        return error!(EPERM);
    }
    let old = pc.keys.session.replace(mine);
    drop(pc);
    drop(old);
    Ok(0)
}

fn persistent(ctx: &SyscallContext<'_>, uid: i32, dest: i32) -> KResult<u64> {
    use crate::task::ns::MapKind;
    let who = Asker::of(ctx.task);
    let c = &who.creds;
    let kuid = if uid == -1 {
        c.ruid
    } else {
        let k = c
            .user_ns
            .0
            .to_kernel(MapKind::Uid, uid as u32)
            .ok_or(crate::errno!(EINVAL))?;
        if k != c.ruid && k != c.euid && k != c.suid && !ctx.task.privileged(Cap::Setuid) {
            return error!(EPERM);
        }
        k
    };
    let d = lookup(ctx, &who, dest, CREATE, WRITE)?;
    let k = super::persistent_keyring(kuid)?;
    link(&d.key, &k)?;
    Ok(k.serial as u64)
}

fn restrict(
    ctx: &SyscallContext<'_>,
    id: i32,
    ktype: UserAddr,
    restriction: UserAddr,
) -> KResult<u64> {
    let tname = if ktype.is_null() {
        None
    } else {
        let t = read_type(ctx, ktype)?;
        read_str(ctx, restriction, PAGE)?;
        Some(t)
    };
    let who = Asker::of(ctx.task);
    let r = lookup(ctx, &who, id, 0, SETATTR)?;
    if r.key.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    if let Some(t) = tname {
        // No key type here offers restrictions (asymmetric keys would).
        KeyType::by_name(&t).ok_or(crate::errno!(ENOKEY))?;
        return error!(ENOENT);
    }
    let mut st = r.key.lock();
    if st.restricted {
        return error!(EEXIST);
    }
    st.restricted = true;
    Ok(0)
}

fn key_move(ctx: &SyscallContext<'_>, id: i32, from: i32, to: i32, flags: u32) -> KResult<u64> {
    const MOVE_EXCL: u32 = 1;
    if flags & !MOVE_EXCL != 0 {
        return error!(EINVAL);
    }
    let who = Asker::of(ctx.task);
    let key = lookup(ctx, &who, id, CREATE, LINK)?.key;
    let from = lookup(ctx, &who, from, 0, WRITE)?.key;
    let to = lookup(ctx, &who, to, CREATE, WRITE)?.key;
    if from.ktype != KeyType::Keyring || to.ktype != KeyType::Keyring {
        return error!(ENOTDIR);
    }
    if Arc::ptr_eq(&from, &to) {
        return Ok(0);
    }
    if to.lock().restricted {
        return error!(EPERM);
    }
    if !from.links().iter().any(|k| Arc::ptr_eq(k, &key)) {
        return error!(ENOENT);
    }
    if flags & MOVE_EXCL != 0 && super::find_in(&to, key.ktype, &key.desc).is_some() {
        return error!(EEXIST);
    }
    link(&to, &key)?;
    unlink(&from, &key)?;
    Ok(0)
}
