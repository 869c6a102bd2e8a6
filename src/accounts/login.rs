//! Checking credentials, with lockout: failures are counted in the database (so every
//! instance agrees), and too many within the window lock the account for a while.
//!
//! Unknown accounts cost the same argon2 verification as known ones, and get the same answer.
//!
//! Every attempt lands in the audit log: `login_failed` (with the reason; for an unknown
//! account without a resource id, with the submitted login), `account_locked` when a failure
//! locks the account (and the `user.locked` webhook), `login_succeeded` when a sign-in is
//! complete (and the `user.login` webhook). Never the password.

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
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError, write_transaction};

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

/// What kind of authentication failed, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A wrong password at a login.
    Password,
    /// A wrong password confirming a sensitive change by a signed-in person.
    Reauthentication,
    /// A wrong second-factor code.
    SecondFactor,
}

impl Failure {
    fn action(self) -> &'static str {
        match self {
            Failure::Password | Failure::Reauthentication => "login_failed",
            Failure::SecondFactor => "mfa_failed",
        }
    }

    fn info(self) -> Value {
        match self {
            Failure::Password => json!({"method": "password", "reason": "wrong password"}),
            Failure::Reauthentication => json!({
                "method": "password",
                "reason": "wrong password",
                "purpose": "confirmation of a sensitive change",
            }),
            Failure::SecondFactor => json!({"method": "mfa", "reason": "wrong code"}),
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

/// Records a failed login that changed nothing (unknown account, locked, disabled).
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
    /// Locked, by failed attempts or by an administrator, for `retry_after` more seconds.
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

/// Seconds until the account may log in again, if it is locked now.
pub fn locked_for(user: &UserRow, security: &SecurityRow, at: i64) -> Option<i64> {
    match security.locked_until {
        Some(until) if until > at => Some(until - at),
        // An administrator's lock without an end.
        _ if user.status == "locked" => Some(i64::MAX / 4),
        _ => None,
    }
}

/// Why repeated failures lock an account.
const LOCKOUT_REASON: &str = "too many failed attempts";

/// Records a failed attempt (a wrong password or second-factor code) and writes it to the
/// audit log; returns the seconds the account is now locked for, when this failure locked it
/// (then `account_locked` is written too and the `user.locked` webhooks are told), all in one
/// transaction.
pub fn record_failure(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    rules: &AccountSettings,
    attempt: &Attempt,
    user_id: &str,
    failure: Failure,
) -> Result<Option<i64>, StoreError> {
    write_transaction(conn, |conn| {
        let mut row = security::find(conn, user_id)?;
        let at = now();
        let window_open = row
            .failed_login_window_start
            .is_some_and(|start| start + rules.lockout_window_secs as i64 > at);
        if window_open {
            row.failed_login_count += 1;
        } else {
            row.failed_login_count = 1;
            row.failed_login_window_start = Some(at);
        }
        let failures = row.failed_login_count;
        let locked = if row.failed_login_count as u32 >= rules.lockout_threshold {
            row.locked_until = Some(at + rules.lockout_duration_secs as i64);
            row.lock_reason = Some(LOCKOUT_REASON.into());
            row.failed_login_count = 0;
            row.failed_login_window_start = None;
            Some(rules.lockout_duration_secs as i64)
        } else {
            None
        };
        security::save(conn, &row)?;
        let actor = on_behalf_of(&attempt.actor, user_id);
        let mut info = with_client(failure.info(), attempt);
        info["failed_attempts"] = json!(failures);
        audit::record(
            conn,
            &actor,
            AuditEvent::new(failure.action(), "users", Some(user_id)).info(info),
        )?;
        if let Some(until) = row.locked_until.filter(|_| locked.is_some()) {
            let user = users::find(conn, user_id)?;
            audit::record(
                conn,
                &actor,
                AuditEvent::new("account_locked", "users", Some(user_id))
                    .values(None, Some(json!({"locked_until": Timestamp(until)})))
                    .info(with_client(
                        json!({"reason": LOCKOUT_REASON, "failed_attempts": failures}),
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
                    "locked_until": Timestamp(until),
                }),
            )?;
        }
        Ok(locked)
    })
}

/// Clears the failure counter after a successful authentication.
pub fn record_success(conn: &mut AnyConnection, user_id: &str) -> Result<(), StoreError> {
    let mut row = security::find(conn, user_id)?;
    if row.failed_login_count != 0 || row.failed_login_window_start.is_some() {
        row.failed_login_count = 0;
        row.failed_login_window_start = None;
        security::save(conn, &row)?;
    }
    Ok(())
}

/// Checks a login (username or email) and password. On success the failure counter is cleared
/// and a hash made with weaker parameters than today's is replaced; every refusal is written to
/// the audit log (the sign-in itself is, once complete, by [`record_login`]).
pub async fn verify_credentials(
    state: &AppState,
    login: &str,
    password: SecretString,
    attempt: &Attempt,
) -> Result<Verified, CredentialError> {
    let login = login.trim().to_lowercase();
    let lookup = login.clone();
    let found = state
        .store
        .run(move |conn| match users::find_by_login(conn, &lookup) {
            Ok(user) => {
                let security = security::find(conn, &user.id)?;
                Ok(Some((user, security)))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(other) => Err(other),
        })
        .await?;
    let hash = found.as_ref().and_then(|(u, _)| u.password_hash.clone());
    let password_ok = state
        .passwords
        .verify(password.clone(), hash.clone())
        .await?;
    let refuse = |user_id: Option<String>, info: Value| {
        let attempt = attempt.clone();
        state
            .store
            .write(move |conn| record_refusal(conn, &attempt, user_id.as_deref(), info))
    };
    let Some((user, security)) = found else {
        state.metrics.login_failed();
        // The submitted login is not a secret; it says what was tried.
        refuse(
            None,
            json!({"method": "password", "reason": "unknown account", "login": login}),
        )
        .await?;
        return Err(CredentialError::Invalid);
    };
    let at = now();
    if let Some(retry_after) = locked_for(&user, &security, at) {
        refuse(
            Some(user.id.clone()),
            json!({"method": "password", "reason": "account locked"}),
        )
        .await?;
        return Err(CredentialError::Locked { retry_after });
    }
    if !password_ok {
        let (crypto, rules) = (state.crypto.clone(), state.settings.accounts.clone());
        let (user_id, failed) = (user.id.clone(), attempt.clone());
        let locked = state
            .store
            .run(move |conn| {
                record_failure(conn, &crypto, &rules, &failed, &user_id, Failure::Password)
            })
            .await?;
        tracing::info!(target: "latchkey::security", event = "login_failed", user_id = %user.id, locked = locked.is_some(), "wrong password");
        state.metrics.login_failed();
        return Err(match locked {
            Some(retry_after) => {
                state.metrics.locked_out();
                tracing::warn!(target: "latchkey::security", event = "account_locked", user_id = %user.id, "account locked after repeated failures");
                CredentialError::Locked { retry_after }
            }
            None => CredentialError::Invalid,
        });
    }
    if user.status != "active" {
        refuse(
            Some(user.id.clone()),
            json!({"method": "password", "reason": "account disabled"}),
        )
        .await?;
        return Err(CredentialError::Disabled);
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
        .run(move |conn| {
            record_success(conn, &user_id)?;
            if let Some(hash) = new_hash {
                users::set_password_hash(conn, &user_id, &hash, now())?;
                tracing::info!(%user_id, "password hash upgraded to the current parameters");
            }
            Ok(())
        })
        .await?;
    Ok(Verified { user, security })
}

/// Checks the password of a signed-in person before a sensitive change (MFA off, new recovery
/// codes, new password or address). A wrong one counts toward the lockout and is written to the
/// audit log; a right one clears the failure counter, as a login does.
pub async fn confirm_password(
    state: &AppState,
    user_id: &str,
    password: &str,
    actor: &Actor,
) -> Result<(), CredentialError> {
    let id = user_id.to_owned();
    let hash = state
        .store
        .run(move |conn| users::find(conn, &id))
        .await?
        .password_hash;
    if state
        .passwords
        .verify(SecretString::from(password.to_owned()), hash)
        .await?
    {
        let id = user_id.to_owned();
        state
            .store
            .run(move |conn| record_success(conn, &id))
            .await?;
        return Ok(());
    }
    let (crypto, rules) = (state.crypto.clone(), state.settings.accounts.clone());
    let (id, attempt) = (
        user_id.to_owned(),
        Attempt {
            actor: actor.clone(),
            client_id: None,
        },
    );
    match state
        .store
        .run(move |conn| {
            record_failure(
                conn,
                &crypto,
                &rules,
                &attempt,
                &id,
                Failure::Reauthentication,
            )
        })
        .await?
    {
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

/// Writes `login_succeeded` and queues the `user.login` webhooks: call it in the transaction
/// that starts (or steps up) the session, once every factor is done.
pub fn record_login(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    attempt: &Attempt,
    sign_in: &SignIn<'_>,
) -> Result<(), StoreError> {
    let user = sign_in.user;
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
