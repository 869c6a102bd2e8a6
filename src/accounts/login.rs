//! Checking credentials, with lockouts that hurt whoever guesses rather than the account's
//! owner:
//!
//! - Failed passwords are counted per login and client address. Enough of them within the
//!   window lock that address out of that login for a while; the owner, elsewhere, still gets
//!   in. The counters are kept by a keyed hash of the login, whether or not an account has
//!   it, so an unknown login answers exactly as a known one does (same statuses, same
//!   argon2 verification).
//! - Failed passwords are also counted per login from every address. Past
//!   `lockout_spray_threshold` within the window (a spray from many addresses), a password
//!   alone signs in only from an address the account has signed in from before; a second
//!   factor still gets in from anywhere.
//! - Wrong second-factor codes are counted per account, apart from passwords: a right
//!   password forgives none of them, only a completed sign-in does. Enough of them lock the
//!   second factor.
//! - An administrator's lock (`status = locked`, or `locked_until`) is another thing: nothing
//!   but an administrator lifts it, and it is told only to someone who gave the right password.
//!
//! The counters live in the database, so every instance agrees. Every attempt lands in the
//! audit log: `login_failed` (with the reason; for an unknown account without a resource id,
//! with the submitted login), `mfa_failed`, `account_locked` when a failure sets a lockout (and
//! the `user.locked` webhook, with its scope), `login_succeeded` when a sign-in is complete
//! (and the `user.login` webhook). Never the password.

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::accounts::passwords::{self};
use crate::accounts::users::webhook_user;
use crate::config::AccountSettings;
use crate::crypto::Crypto;
use crate::domain::{Timestamp, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::events::webhooks;
use crate::startup::AppState;
use crate::store::security::{self, SecurityRow};
use crate::store::throttles::{self, ThrottleRow};
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError, sessions};

/// How far back a sign-in from an address makes it known to the account, for the spray rule.
const KNOWN_ADDRESS_SECS: i64 = 30 * 86_400;

/// An attempt to authenticate as the audit log sees it: the request's actor (address, user
/// agent, request id; the account is filled in once known) and the application it is for.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// Who asks, from where.
    pub actor: Actor,
    /// The client the sign-in is for (the first-party client for the JSON API).
    pub client_id: Option<String>,
}

/// The actor of an event about one account: the given actor when it is a signed-in person or
/// an administrator, else (a login, a link from a mail) the account itself, from the same place.
pub fn on_behalf_of(actor: &Actor, user_id: &str) -> Actor {
    if actor.user_id.is_some() {
        return actor.clone();
    }
    Actor {
        user_id: Some(user_id.to_owned()),
        email: None,
        ..actor.clone()
    }
}

/// What kind of password failed, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordUse {
    /// A login.
    Login,
    /// A signed-in person confirming a sensitive change.
    Reauthentication,
    /// The right password from an address the account has not signed in from, while its login
    /// is sprayed (a login without a second factor, or a confirmation): answered and counted
    /// as a wrong one, so the answer never tells the sprayer which guess was right.
    Sprayed,
}

impl PasswordUse {
    fn info(self) -> Value {
        match self {
            PasswordUse::Login => json!({"method": "password", "reason": "wrong password"}),
            PasswordUse::Reauthentication => json!({
                "method": "password",
                "reason": "wrong password",
                "purpose": "confirmation of a sensitive change",
            }),
            PasswordUse::Sprayed => json!({
                "method": "password",
                "reason": "right password from a new address while the login is sprayed from many addresses: refused as a wrong one",
            }),
        }
    }
}

/// Adds the attempt's client to an `info` object.
fn with_client(mut info: Value, attempt: &Attempt) -> Value {
    if let (Some(client_id), Some(map)) = (&attempt.client_id, info.as_object_mut()) {
        map.insert("client_id".into(), json!(client_id));
    }
    info
}

/// Records a failed login that changed nothing (locked out, locked, disabled).
fn record_refusal(
    conn: &mut AnyConnection,
    attempt: &Attempt,
    user_id: Option<&str>,
    info: Value,
) -> Result<(), StoreError> {
    let actor = match user_id {
        Some(id) => on_behalf_of(&attempt.actor, id),
        None => attempt.actor.clone(),
    };
    audit::record(
        conn,
        &actor,
        AuditEvent::new("login_failed", "users", user_id).info(with_client(info, attempt)),
    )
}

/// Why credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Wrong login or password (never says which).
    #[error("invalid username or password")]
    Invalid,
    /// Locked out (this address, the second factor, or by an administrator) for
    /// `retry_after` more seconds.
    #[error("the account is locked")]
    Locked { retry_after: i64 },
    /// Deactivated or otherwise not active.
    #[error("the account is disabled")]
    Disabled,
    /// Something failed inside.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for CredentialError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.into())
    }
}

/// A person whose password was just checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: UserRow,
    pub security: SecurityRow,
}

/// Seconds until an administrator's lock of the account ends, if one holds now.
pub fn locked_for(user: &UserRow, security: &SecurityRow, at: i64) -> Option<i64> {
    match security.locked_until {
        Some(until) if until > at => Some(until - at),
        // An administrator's lock without an end.
        _ if user.status == "locked" => Some(i64::MAX / 4),
        _ => None,
    }
}

/// Seconds until the account's second factor may be tried again, if wrong codes locked it.
pub fn second_factor_locked_for(security: &SecurityRow, at: i64) -> Option<i64> {
    security
        .mfa_locked_until
        .filter(|until| *until > at)
        .map(|until| until - at)
}

/// Why repeated failures lock.
const LOCKOUT_REASON: &str = "too many failed attempts";

/// The counters a login is throttled by: its own from this address, and its own from all.
#[derive(Clone)]
struct ThrottleKeys {
    address: String,
    login: String,
}

impl ThrottleKeys {
    /// Keyed hashes, so the table says neither which logins were tried nor from where.
    fn new(crypto: &Crypto, login: &str, ip: Option<&str>) -> Self {
        let ip = ip
            .and_then(|ip| ip.parse().ok())
            .map(crate::http::address_bucket)
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            address: crypto
                .hash_token(&format!("throttle:address:{login}\u{0}{ip}"))
                .0,
            login: crypto.hash_token(&format!("throttle:login:{login}")).0,
        }
    }
}

/// The turn of an attempt on `keys` (see [`crate::accounts::turns`]), waited for no longer
/// than half of what the database may take. Past that the attempt goes on without it, so a
/// queue never costs a person their answer (a slow or absent database, many sign-ins of one
/// account behind one address); attempts that waited that long read the failures of those
/// before them anyway, written by then.
async fn take_turn<'a>(
    state: &'a AppState,
    keys: &ThrottleKeys,
) -> Option<crate::accounts::turns::Turn<'a>> {
    state
        .attempt_turns
        .take(&keys.address, state.settings.database_timeout / 2)
        .await
}

/// What one failed password did to the counters.
struct Counted {
    /// Failures of this login from this address in the window, this one included.
    failures: i32,
    /// Seconds the address is now locked out of the login, when this failure locked it.
    locked: Option<i64>,
}

/// Counts an attempt against its login's counter from every address (the spray tier's)
/// before its password is checked, so that attempts sent at once from many addresses are each
/// judged on the count of those before them, never all on the same earlier count. A right
/// password gives it back ([`give_back`]); a wrong one keeps it ([`count_wrong_password`]).
/// Returns the counter, this attempt included.
fn reserve_attempt(
    conn: &mut AnyConnection,
    rules: &AccountSettings,
    keys: &ThrottleKeys,
    user_id: Option<&str>,
) -> Result<ThrottleRow, StoreError> {
    let window = rules.lockout_window_secs as i64;
    throttles::count_failure(conn, &keys.login, user_id, now(), window)
}

/// Takes back an attempt [`reserve_attempt`] counted whose password was right.
fn give_back(conn: &mut AnyConnection, keys: &ThrottleKeys) -> Result<(), StoreError> {
    throttles::uncount(conn, &keys.login)
}

/// Counts a wrong password of an attempt [`reserve_attempt`] counted, from its address (the
/// address is locked out of the login at the threshold). For a known account, also its
/// informational count, the audit entries and, when it locks, `account_locked` and the
/// `user.locked` webhook (scope `address`).
fn count_wrong_password(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    rules: &AccountSettings,
    attempt: &Attempt,
    keys: &ThrottleKeys,
    user_id: Option<&str>,
    usage: PasswordUse,
) -> Result<Counted, StoreError> {
    let at = now();
    let window = rules.lockout_window_secs as i64;
    let address = throttles::count_failure(conn, &keys.address, user_id, at, window)?;
    let locked = if address.failures as u32 >= rules.lockout_threshold {
        let until = at + rules.lockout_duration_secs as i64;
        throttles::lock(conn, &keys.address, until)?;
        Some(rules.lockout_duration_secs as i64)
    } else {
        None
    };
    let Some(user_id) = user_id else {
        return Ok(Counted {
            failures: address.failures,
            locked,
        });
    };
    let mut row = security::find_for_update(conn, user_id)?;
    let window_open = row
        .failed_login_window_start
        .is_some_and(|start| start + window > at);
    if window_open {
        row.failed_login_count += 1;
    } else {
        row.failed_login_count = 1;
        row.failed_login_window_start = Some(at);
    }
    security::save(conn, &row)?;
    let actor = on_behalf_of(&attempt.actor, user_id);
    let mut info = with_client(usage.info(), attempt);
    info["failed_attempts"] = json!(address.failures);
    audit::record(
        conn,
        &actor,
        AuditEvent::new("login_failed", "users", Some(user_id)).info(info),
    )?;
    if let Some(secs) = locked {
        announce_lockout(
            conn,
            crypto,
            attempt,
            user_id,
            "address",
            at + secs,
            address.failures,
        )?;
    }
    Ok(Counted {
        failures: address.failures,
        locked,
    })
}

/// Writes `account_locked` and queues `user.locked` for a lockout that failures set:
/// `scope` says what is locked (`address`: the request's address, out of this account;
/// `second_factor`: the account's second factor).
fn announce_lockout(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    attempt: &Attempt,
    user_id: &str,
    scope: &str,
    until: i64,
    failures: i32,
) -> Result<(), StoreError> {
    let user = users::find(conn, user_id)?;
    let actor = on_behalf_of(&attempt.actor, user_id);
    audit::record(
        conn,
        &actor,
        AuditEvent::new("account_locked", "users", Some(user_id))
            .values(None, Some(json!({"locked_until": Timestamp(until)})))
            .info(with_client(
                json!({"reason": LOCKOUT_REASON, "failed_attempts": failures, "scope": scope}),
                attempt,
            )),
    )?;
    webhooks::emit(
        conn,
        crypto,
        "user.locked",
        json!({
            "user": webhook_user(&user),
            "reason": LOCKOUT_REASON,
            "scope": scope,
            "ip_address": attempt.actor.ip_address,
            "locked_until": Timestamp(until),
        }),
    )?;
    Ok(())
}

/// Counts a wrong second-factor code of an account: at the threshold its second factor locks
/// (`mfa_failed`, then `account_locked` with scope `second_factor`, in one transaction).
/// Returns the seconds it is now locked for, when this failure locked it.
pub fn count_wrong_code(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    rules: &AccountSettings,
    attempt: &Attempt,
    user_id: &str,
) -> Result<Option<i64>, StoreError> {
    let at = now();
    let mut row = security::find_for_update(conn, user_id)?;
    let window_open = row
        .mfa_failed_window_start
        .is_some_and(|start| start + rules.lockout_window_secs as i64 > at);
    if window_open {
        row.mfa_failed_count += 1;
    } else {
        row.mfa_failed_count = 1;
        row.mfa_failed_window_start = Some(at);
    }
    let failures = row.mfa_failed_count;
    let locked = (failures as u32 >= rules.lockout_threshold).then(|| {
        row.mfa_locked_until = Some(at + rules.lockout_duration_secs as i64);
        row.mfa_failed_count = 0;
        row.mfa_failed_window_start = None;
        rules.lockout_duration_secs as i64
    });
    security::save(conn, &row)?;
    audit::record(
        conn,
        &on_behalf_of(&attempt.actor, user_id),
        AuditEvent::new("mfa_failed", "users", Some(user_id)).info(with_client(
            json!({"method": "mfa", "reason": "wrong code", "failed_attempts": failures}),
            attempt,
        )),
    )?;
    if let Some(secs) = locked {
        announce_lockout(
            conn,
            crypto,
            attempt,
            user_id,
            "second_factor",
            at + secs,
            failures,
        )?;
    }
    Ok(locked)
}

/// What the first step of a login finds.
struct Found {
    account: Option<(UserRow, SecurityRow)>,
    /// Until when the address is locked out of the login, if it is (nothing was counted).
    locked_until: Option<i64>,
    /// The login's counter from every address, this attempt counted in (when the address is
    /// not locked out).
    reserved: Option<ThrottleRow>,
    /// Whether the account has signed in from this address lately (read only under a spray).
    known_address: bool,
}

/// Checks a login (username or email) and password; see the module's rules. On success the
/// address's failures are forgiven and a hash made with weaker parameters than today's is
/// replaced; every refusal is written to the audit log (the sign-in itself is, once complete,
/// by [`record_login`]).
pub async fn verify_credentials(
    state: &AppState,
    login: &str,
    password: SecretString,
    attempt: &Attempt,
) -> Result<Verified, CredentialError> {
    let login = login.trim().to_lowercase();
    let rules = state.settings.accounts.clone();
    let keys = ThrottleKeys::new(&state.crypto, &login, attempt.actor.ip_address.as_deref());
    // One attempt of this login from this address at a time, each on the count before it.
    let _turn = take_turn(state, &keys).await;
    let (lookup, address_key, login_key) =
        (login.clone(), keys.address.clone(), keys.login.clone());
    let ip = attempt.actor.ip_address.clone();
    let spray = rules.lockout_spray_threshold as i32;
    let reserving = rules.clone();
    let found = state
        .store
        .write(move |conn| {
            let at = now();
            let account = match users::find_by_login(conn, &lookup) {
                Ok(user) => {
                    let security = security::find(conn, &user.id)?;
                    Some((user, security))
                }
                Err(StoreError::NotFound) => None,
                Err(other) => return Err(other),
            };
            let locked_until = throttles::find(conn, &address_key, at)?
                .and_then(|a| a.locked_until)
                .filter(|until| *until > at);
            if locked_until.is_some() {
                return Ok(Found {
                    account,
                    locked_until,
                    reserved: None,
                    known_address: false,
                });
            }
            let keys = ThrottleKeys {
                address: address_key,
                login: login_key,
            };
            let user_id = account.as_ref().map(|(u, _)| u.id.clone());
            let reserved = reserve_attempt(conn, &reserving, &keys, user_id.as_deref())?;
            // Failures before this attempt: those sent at the same moment count too.
            let sprayed = reserved.failures > spray;
            let known_address = match (&account, &ip) {
                (Some((user, _)), Some(ip)) if sprayed => {
                    sessions::signed_in_from(conn, &user.id, ip, at - KNOWN_ADDRESS_SECS)?
                }
                _ => false,
            };
            Ok(Found {
                account,
                locked_until: None,
                reserved: Some(reserved),
                known_address,
            })
        })
        .await?;
    let at = now();
    let refuse = |user_id: Option<String>, info: Value| {
        let attempt = attempt.clone();
        state
            .store
            .write(move |conn| record_refusal(conn, &attempt, user_id.as_deref(), info))
    };
    // Locked out from here: the password is not even looked at (alike for every login).
    if let Some(until) = found.locked_until {
        let user_id = found.account.as_ref().map(|(u, _)| u.id.clone());
        refuse(
            user_id,
            json!({"method": "password", "reason": "locked out from this address", "login": login}),
        )
        .await?;
        state.metrics.login_failed();
        return Err(CredentialError::Locked {
            retry_after: (until - at).max(1),
        });
    }
    let reserved = found
        .reserved
        .expect("an attempt not locked out is reserved");
    let hash = found
        .account
        .as_ref()
        .and_then(|(u, _)| u.password_hash.clone());
    let password_ok = state
        .passwords
        .verify(password.clone(), hash.clone())
        .await?;
    let known_id = found.account.as_ref().map(|(u, _)| u.id.clone());
    // Under a spray, a password alone does not sign in from a new address; it is refused the
    // way a wrong one is, before any other answer could tell that it was right.
    let sprayed = reserved.failures > spray;
    let sprayed_out = password_ok
        && sprayed
        && !found.known_address
        && found.account.as_ref().is_some_and(|(_, s)| !s.mfa_enabled);
    if sprayed_out {
        tracing::warn!(target: "latchkey::security", event = "login_sprayed", "a right password from a new address refused while the login is sprayed");
    }
    let usage = if sprayed_out {
        PasswordUse::Sprayed
    } else {
        PasswordUse::Login
    };
    let Some((user, security_row)) = found.account.filter(|_| password_ok && !sprayed_out) else {
        let (crypto, failed, keys) = (state.crypto.clone(), attempt.clone(), keys.clone());
        let tried = login.clone();
        let counted = state
            .store
            .write(move |conn| {
                let counted = count_wrong_password(
                    conn,
                    &crypto,
                    &rules,
                    &failed,
                    &keys,
                    known_id.as_deref(),
                    usage,
                )?;
                if known_id.is_none() {
                    // The submitted login is not a secret; it says what was tried.
                    record_refusal(
                        conn,
                        &failed,
                        None,
                        json!({"method": "password", "reason": "unknown account", "login": tried}),
                    )?;
                }
                Ok(counted)
            })
            .await?;
        tracing::info!(target: "latchkey::security", event = "login_failed", failures = counted.failures, locked = counted.locked.is_some(), "wrong password");
        state.metrics.login_failed();
        return Err(match counted.locked {
            Some(retry_after) => {
                state.metrics.locked_out();
                tracing::warn!(target: "latchkey::security", event = "login_locked_out", "an address locked out of a login after repeated failures");
                CredentialError::Locked { retry_after }
            }
            None => CredentialError::Invalid,
        });
    };
    // The password was right: whatever refuses the sign-in now, it was no failed password.
    let refuse_right = |info: Value| {
        let (attempt, user_id) = (attempt.clone(), user.id.clone());
        let keys = keys.clone();
        state.store.write(move |conn| {
            give_back(conn, &keys)?;
            record_refusal(conn, &attempt, Some(&user_id), info)
        })
    };
    if let Some(retry_after) = locked_for(&user, &security_row, at) {
        refuse_right(json!({"method": "password", "reason": "account locked"})).await?;
        return Err(CredentialError::Locked { retry_after });
    }
    if user.status != "active" {
        refuse_right(json!({"method": "password", "reason": "account disabled"})).await?;
        return Err(CredentialError::Disabled);
    }
    if security_row.mfa_enabled
        && let Some(retry_after) = second_factor_locked_for(&security_row, at)
    {
        refuse_right(json!({"method": "mfa", "reason": "second factor locked"})).await?;
        return Err(CredentialError::Locked { retry_after });
    }
    let user_id = user.id.clone();
    let upgrade = hash
        .filter(|h| !passwords::has_current_parameters(h))
        .map(|_| password);
    let new_hash = match upgrade {
        Some(password) => Some(state.passwords.hash(password).await?),
        None => None,
    };
    state
        .store
        .write(move |conn| {
            give_back(conn, &keys)?;
            forgive_password_failures(conn, &user_id, &keys.address)?;
            if let Some(hash) = new_hash {
                users::set_password_hash(conn, &user_id, &hash, now())?;
                tracing::info!(%user_id, "password hash upgraded to the current parameters");
            }
            Ok(())
        })
        .await?;
    Ok(Verified {
        user,
        security: security_row,
    })
}

/// Forgives the failed passwords of a login from one address (the right password came from
/// there), and the account's informational count of them.
fn forgive_password_failures(
    conn: &mut AnyConnection,
    user_id: &str,
    address_key: &str,
) -> Result<(), StoreError> {
    throttles::clear(conn, address_key)?;
    let mut row = security::find_for_update(conn, user_id)?;
    if row.failed_login_count != 0 || row.failed_login_window_start.is_some() {
        row.failed_login_count = 0;
        row.failed_login_window_start = None;
        security::save(conn, &row)?;
    }
    Ok(())
}

/// Forgets every failure counted against an account (its passwords from every address, its
/// second factor) and lifts the lockouts they set; never an administrator's lock. For an
/// unlock by an administrator, and for a password reset from a mailed link.
pub fn forgive_all_failures(conn: &mut AnyConnection, user_id: &str) -> Result<(), StoreError> {
    throttles::clear_user(conn, user_id)?;
    let mut row = security::find_for_update(conn, user_id)?;
    row.failed_login_count = 0;
    row.failed_login_window_start = None;
    row.mfa_failed_count = 0;
    row.mfa_failed_window_start = None;
    row.mfa_locked_until = None;
    security::save(conn, &row)
}

/// Checks the password of a signed-in person before a sensitive change (MFA on or off, new
/// recovery codes, new password or address). A wrong one counts as a login's would (from this
/// address, for this account's username) and is written to the audit log; a right one
/// forgives them. While the account's login is sprayed, a right one from an address the
/// account has not signed in from counts as a wrong one, as at a login.
pub async fn confirm_password(
    state: &AppState,
    user_id: &str,
    password: &str,
    actor: &Actor,
) -> Result<(), CredentialError> {
    let id = user_id.to_owned();
    let user = state.store.run(move |conn| users::find(conn, &id)).await?;
    let keys = ThrottleKeys::new(&state.crypto, &user.username, actor.ip_address.as_deref());
    let _turn = take_turn(state, &keys).await;
    let (address_key, login_key, ip) = (
        keys.address.clone(),
        keys.login.clone(),
        actor.ip_address.clone(),
    );
    let rules = state.settings.accounts.clone();
    let (spray, owner, reserving) = (
        rules.lockout_spray_threshold as i32,
        user.id.clone(),
        rules.clone(),
    );
    let checked = state
        .store
        .write(move |conn| {
            let at = now();
            let locked = throttles::find(conn, &address_key, at)?
                .and_then(|row| row.locked_until)
                .filter(|until| *until > at);
            if let Some(until) = locked {
                return Ok(Err(until));
            }
            let keys = ThrottleKeys {
                address: address_key,
                login: login_key,
            };
            let sprayed = reserve_attempt(conn, &reserving, &keys, Some(&owner))?.failures > spray;
            let new_address = match &ip {
                Some(ip) if sprayed => {
                    !sessions::signed_in_from(conn, &owner, ip, at - KNOWN_ADDRESS_SECS)?
                }
                _ => sprayed,
            };
            Ok(Ok(sprayed && new_address))
        })
        .await?;
    let at = now();
    let sprayed = checked.map_err(|until| CredentialError::Locked {
        retry_after: (until - at).max(1),
    })?;
    let attempt = Attempt {
        actor: actor.clone(),
        client_id: None,
    };
    let (crypto, id) = (state.crypto.clone(), user_id.to_owned());
    let right = state
        .passwords
        .verify(SecretString::from(password.to_owned()), user.password_hash)
        .await?;
    if right && !sprayed {
        state
            .store
            .write(move |conn| {
                give_back(conn, &keys)?;
                forgive_password_failures(conn, &id, &keys.address)
            })
            .await?;
        return Ok(());
    }
    let usage = if right {
        tracing::warn!(target: "latchkey::security", event = "login_sprayed", "a right password confirmation from a new address refused while the login is sprayed");
        PasswordUse::Sprayed
    } else {
        PasswordUse::Reauthentication
    };
    let counted = state
        .store
        .write(move |conn| {
            count_wrong_password(conn, &crypto, &rules, &attempt, &keys, Some(&id), usage)
        })
        .await?;
    match counted.locked {
        Some(retry_after) => Err(CredentialError::Locked { retry_after }),
        None => Err(CredentialError::Invalid),
    }
}

/// A completed sign-in, as the audit log and the `user.login` webhooks report it.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// Who signed in.
    pub user: &'a UserRow,
    /// The session it started (or stepped up).
    pub session_id: &'a str,
    /// How (`pwd`, `otp`).
    pub amr: &'a [String],
    /// Whether a second factor stepped up an existing session rather than starting one.
    pub step_up: bool,
}

/// Writes `login_succeeded` and queues the `user.login` webhooks, and forgives the account's
/// wrong second-factor codes (only a completed sign-in does): call it in the transaction that
/// starts (or steps up) the session, once every factor is done.
pub fn record_login(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    attempt: &Attempt,
    sign_in: &SignIn<'_>,
) -> Result<(), StoreError> {
    let user = sign_in.user;
    let mut row = security::find_for_update(conn, &user.id)?;
    if row.mfa_failed_count != 0 || row.mfa_failed_window_start.is_some() {
        row.mfa_failed_count = 0;
        row.mfa_failed_window_start = None;
        security::save(conn, &row)?;
    }
    let method = if sign_in.amr.iter().any(|m| m == "otp") {
        "mfa"
    } else {
        "password"
    };
    let mut info = with_client(
        json!({"method": method, "amr": sign_in.amr, "session_id": sign_in.session_id}),
        attempt,
    );
    if sign_in.step_up {
        info["step_up"] = json!(true);
    }
    audit::record(
        conn,
        &on_behalf_of(&attempt.actor, &user.id),
        AuditEvent::new("login_succeeded", "users", Some(&user.id)).info(info),
    )?;
    webhooks::emit(
        conn,
        crypto,
        "user.login",
        json!({
            "user": webhook_user(user),
            "session": {"id": sign_in.session_id},
            "method": method,
            "amr": sign_in.amr,
            "client_id": attempt.client_id,
            "ip_address": attempt.actor.ip_address,
            "step_up": sign_in.step_up,
        }),
    )?;
    Ok(())
}
