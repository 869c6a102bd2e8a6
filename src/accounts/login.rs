//! Checking credentials, with lockout: failures are counted in the database (so every
//! instance agrees), and too many within the window lock the account for a while.
//!
//! Unknown accounts cost the same argon2 verification as known ones, and get the same answer.

use secrecy::SecretString;

use crate::accounts::passwords::{self};
use crate::config::AccountSettings;
use crate::domain::now;
use crate::startup::AppState;
use crate::store::security::{self, SecurityRow};
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError, write_transaction};

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

/// Records a failed attempt (a wrong password or second-factor code); returns the seconds the
/// account is now locked for, when this failure locked it.
pub fn record_failure(
    conn: &mut AnyConnection,
    rules: &AccountSettings,
    user_id: &str,
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
        let locked = if row.failed_login_count as u32 >= rules.lockout_threshold {
            row.locked_until = Some(at + rules.lockout_duration_secs as i64);
            row.lock_reason = Some("too many failed attempts".into());
            row.failed_login_count = 0;
            row.failed_login_window_start = None;
            Some(rules.lockout_duration_secs as i64)
        } else {
            None
        };
        security::save(conn, &row)?;
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
/// and a hash made with weaker parameters than today's is replaced.
pub async fn verify_credentials(
    state: &AppState,
    login: &str,
    password: SecretString,
) -> Result<Verified, CredentialError> {
    let login = login.trim().to_lowercase();
    let found = state
        .store
        .run(move |conn| match users::find_by_login(conn, &login) {
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
    let Some((user, security)) = found else {
        return Err(CredentialError::Invalid);
    };
    let at = now();
    if let Some(retry_after) = locked_for(&user, &security, at) {
        return Err(CredentialError::Locked { retry_after });
    }
    if !password_ok {
        let rules = state.settings.accounts.clone();
        let user_id = user.id.clone();
        let locked = state
            .store
            .run(move |conn| record_failure(conn, &rules, &user_id))
            .await?;
        tracing::info!(target: "latchkey::security", event = "login_failed", user_id = %user.id, locked = locked.is_some(), "wrong password");
        return Err(match locked {
            Some(retry_after) => {
                tracing::warn!(target: "latchkey::security", event = "account_locked", user_id = %user.id, "account locked after repeated failures");
                CredentialError::Locked { retry_after }
            }
            None => CredentialError::Invalid,
        });
    }
    if user.status != "active" {
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
/// codes, new password or address); a wrong one counts toward the lockout.
pub async fn confirm_password(
    state: &AppState,
    user_id: &str,
    password: &str,
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
        return Ok(());
    }
    let (rules, id) = (state.settings.accounts.clone(), user_id.to_owned());
    match state
        .store
        .run(move |conn| record_failure(conn, &rules, &id))
        .await?
    {
        Some(retry_after) => Err(CredentialError::Locked { retry_after }),
        None => Err(CredentialError::Invalid),
    }
}
