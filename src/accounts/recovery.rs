//! Getting back into an account, and proving an address: email verification, password reset
//! and email change. Each link carries a single-use token stored as a keyed hash, with a
//! lifetime from the settings; every mail is queued in the same transaction as its token, and
//! every step that changes something is written to the audit log in that transaction too.

use secrecy::SecretString;
use serde_json::json;

use crate::accounts::login::on_behalf_of;
use crate::accounts::policy::check_new_password;
use crate::accounts::users::webhook_user;
use crate::domain::{PlainToken, Timestamp, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::events::email::{self, EmailKind, EmailRequest};
use crate::events::webhooks;
use crate::paths;
use crate::sessions::revoke::{Revocation, end_other_sessions};
use crate::startup::{AppState, Handles};
use crate::store::account_tokens::{self as tokens, AccountTokenRow};
use crate::store::security;
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError};

/// Purpose of an email verification token.
pub const VERIFY_EMAIL: &str = "verify_email";
/// Purpose of a password reset token.
pub const RESET_PASSWORD: &str = "reset_password";
/// Purpose of an email change token.
pub const CHANGE_EMAIL: &str = "change_email";

const TOKEN_PREFIX: &str = "lk_at_";

/// Why a recovery step failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// Unknown, expired or used.
    #[error("the link is invalid or has expired")]
    InvalidToken,
    /// The new password breaks the policy.
    #[error("new_password {0}")]
    WeakPassword(String),
    /// The new address belongs to another account now.
    #[error("the email address is already in use")]
    EmailTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A link to one of the account pages with a token.
fn link(state: &Handles, page: &str, token: &PlainToken) -> String {
    let mut url = url::Url::parse(&state.settings.url_for(page)).expect("the issuer is a URL");
    url.query_pairs_mut().append_pair("token", token.expose());
    url.to_string()
}

/// Creates a token (retiring earlier unused ones of the same purpose).
fn new_token(
    conn: &mut AnyConnection,
    state: &Handles,
    user_id: &str,
    purpose: &str,
    new_email: Option<&str>,
    ttl_secs: u64,
) -> Result<PlainToken, StoreError> {
    let at = now();
    tokens::retire(conn, user_id, purpose, at)?;
    let token = PlainToken::generate(TOKEN_PREFIX);
    tokens::insert(
        conn,
        &AccountTokenRow {
            token_hash: state.crypto.hash_token(token.expose()).0,
            user_id: user_id.to_owned(),
            purpose: purpose.to_owned(),
            new_email: new_email.map(str::to_owned),
            created_at: at,
            expires_at: at + ttl_secs as i64,
            used_at: None,
        },
    )?;
    Ok(token)
}

/// Queues a mail to a user in the current transaction.
fn mail(
    conn: &mut AnyConnection,
    state: &Handles,
    to: &str,
    user: &UserRow,
    kind: EmailKind,
) -> Result<(), StoreError> {
    email::queue(
        conn,
        &state.crypto,
        &state.settings,
        &EmailRequest {
            to,
            name: user.first_name.as_deref().unwrap_or(&user.username),
            kind,
        },
    )
}

/// Sends (again) the link that verifies a user's address. Does nothing for a verified one.
pub async fn send_verification(state: &AppState, user_id: &str) -> anyhow::Result<bool> {
    let shared = state.handles();
    let id = user_id.to_owned();
    Ok(state
        .store
        .write(move |conn| {
            let user = users::find(conn, &id)?;
            if user.email_verified {
                return Ok(false);
            }
            let ttl = shared.settings.accounts.verification_token_ttl_secs;
            let token = new_token(conn, &shared, &id, VERIFY_EMAIL, None, ttl)?;
            let link = link(&shared, paths::ACCOUNT_VERIFY_EMAIL, &token);
            mail(
                conn,
                &shared,
                &user.email,
                &user,
                EmailKind::VerifyEmail { link },
            )?;
            Ok(true)
        })
        .await?)
}

/// Starts a password reset for the account with this address, if it exists and is active
/// (`password_reset_requested` in the audit log, by the account from the request's address).
/// Says nothing about whether it did: the lookup and the writes run in a task of their own,
/// after the caller has answered, so neither the answer nor how long it takes tells a known
/// address from an unknown one. A failure there is logged.
pub fn request_reset(state: &AppState, address: &str, actor: &Actor) {
    let shared = state.handles();
    let store = state.store.clone();
    let address = address.trim().to_lowercase();
    let actor = actor.clone();
    tokio::spawn(async move {
        let written = store
            .write(move |conn| {
                let user = match users::find_by_login(conn, &address) {
                    Ok(user) if user.email == address && user.status == "active" => user,
                    Ok(_) | Err(StoreError::NotFound) => return Ok(()),
                    Err(other) => return Err(other),
                };
                let ttl = shared.settings.accounts.reset_token_ttl_secs;
                let token = new_token(conn, &shared, &user.id, RESET_PASSWORD, None, ttl)?;
                let link = link(&shared, paths::ACCOUNT_RESET_PASSWORD, &token);
                mail(
                    conn,
                    &shared,
                    &user.email,
                    &user,
                    EmailKind::ResetPassword { link },
                )?;
                audit::record(
                    conn,
                    &on_behalf_of(&actor, &user.id),
                    AuditEvent::new("password_reset_requested", "users", Some(&user.id))
                        .info(json!({"email": user.email})),
                )?;
                Ok(())
            })
            .await;
        if let Err(error) = written {
            tracing::error!(error = %error, "a password reset request could not be recorded");
        }
    });
}

/// When a reset token expires, if it is live.
pub async fn reset_token_expiry(
    state: &AppState,
    token: &str,
) -> anyhow::Result<Option<Timestamp>> {
    let hash = state.crypto.hash_token(token).0;
    let found = state
        .store
        .run(
            move |conn| match tokens::find_live(conn, &hash, &[RESET_PASSWORD], now()) {
                Ok(row) => Ok(Some(Timestamp(row.expires_at))),
                Err(StoreError::NotFound) => Ok(None),
                Err(other) => Err(other),
            },
        )
        .await?;
    Ok(found)
}

/// Sets a new password with a reset token: the token is spent, the failures counted against
/// the account forgiven (never an administrator's lock), and every session and refresh token of
/// the account revoked; `password_reset` in the audit log, by the
/// account from the request's address.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    new_password: SecretString,
    actor: &Actor,
) -> Result<(), RecoveryError> {
    use secrecy::ExposeSecret;
    let hash = state.crypto.hash_token(token).0;
    let lookup = hash.clone();
    let user = state
        .store
        .run(
            move |conn| match tokens::find_live(conn, &lookup, &[RESET_PASSWORD], now()) {
                Ok(row) => users::find(conn, &row.user_id).map(Some),
                Err(StoreError::NotFound) => Ok(None),
                Err(other) => Err(other),
            },
        )
        .await?
        .ok_or(RecoveryError::InvalidToken)?;
    check_new_password(
        new_password.expose_secret(),
        &[&user.username, &user.email],
        state.settings.accounts.password_min_strength,
    )
    .map_err(RecoveryError::WeakPassword)?;
    let password_hash = state.passwords.hash(new_password).await?;
    let shared = state.handles();
    let actor = on_behalf_of(actor, &user.id);
    let spent = state
        .store
        .write(move |conn| {
            let at = now();
            if !tokens::use_token(conn, &hash, at)? {
                return Ok(false);
            }
            users::set_password_hash(conn, &user.id, &password_hash, at)?;
            // The failures counted against the account are forgiven; an administrator's lock
            // is not theirs to lift, and stays.
            crate::accounts::login::forgive_all_failures(conn, &user.id)?;
            let mut row = security::find_for_update(conn, &user.id)?;
            row.password_changed_at = Some(at);
            security::save(conn, &row)?;
            let ended = end_other_sessions(
                conn,
                &shared.crypto,
                &user.id,
                None,
                None,
                &Revocation {
                    actor: &actor,
                    reason: "password reset",
                    at,
                },
            )?;
            audit::record(
                conn,
                &actor,
                AuditEvent::new("password_reset", "users", Some(&user.id)).info(json!({
                    "method": "email link",
                    "sessions_ended": ended.sessions.len(),
                })),
            )?;
            mail(
                conn,
                &shared,
                &user.email,
                &user,
                EmailKind::PasswordChanged,
            )?;
            Ok(true)
        })
        .await?;
    if !spent {
        return Err(RecoveryError::InvalidToken);
    }
    tracing::info!(target: "latchkey::security", event = "password_reset", "password reset; every session ended");
    Ok(())
}

/// What a verification link confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The account's address.
    Email,
    /// A new address, which replaces the old one (the old one was told).
    ChangedEmail(String),
}

/// Confirms an address with a verification or email-change token: `email_verified`, or
/// `email_changed` with the old and new address, in the audit log (by the account, from the
/// request's address), and `user.updated` to the webhooks.
pub async fn verify_email(
    state: &AppState,
    token: &str,
    actor: &Actor,
) -> Result<Verified, RecoveryError> {
    let hash = state.crypto.hash_token(token).0;
    let shared = state.handles();
    let actor = actor.clone();
    state
        .store
        .write(move |conn| {
            let at = now();
            let row = match tokens::find_live(conn, &hash, &[VERIFY_EMAIL, CHANGE_EMAIL], at) {
                Ok(row) => row,
                Err(StoreError::NotFound) => return Ok(Err(RecoveryError::InvalidToken)),
                Err(other) => return Err(other),
            };
            if !tokens::use_token(conn, &hash, at)? {
                return Ok(Err(RecoveryError::InvalidToken));
            }
            let user = users::find(conn, &row.user_id)?;
            // The address the person had when they acted.
            let actor = Actor {
                email: Some(user.email.clone()),
                ..on_behalf_of(&actor, &user.id)
            };
            match row.new_email {
                None => {
                    users::verify_email(conn, &user.id, None, at)?;
                    audit::record(
                        conn,
                        &actor,
                        AuditEvent::new("email_verified", "users", Some(&user.id))
                            .values(
                                Some(json!({"email_verified": user.email_verified})),
                                Some(json!({"email_verified": true})),
                            )
                            .info(json!({"email": user.email})),
                    )?;
                    let updated = users::find(conn, &user.id)?;
                    webhooks::emit(
                        conn,
                        &shared.crypto,
                        "user.updated",
                        json!({
                            "user": webhook_user(&updated),
                            "changes": ["email_verified"],
                        }),
                    )?;
                    Ok(Ok(Verified::Email))
                }
                Some(new_email) => {
                    if users::email_taken(conn, &new_email)? {
                        return Ok(Err(RecoveryError::EmailTaken));
                    }
                    users::verify_email(conn, &user.id, Some(&new_email), at)?;
                    audit::record(
                        conn,
                        &actor,
                        AuditEvent::new("email_changed", "users", Some(&user.id)).values(
                            Some(json!({"email": user.email})),
                            Some(json!({"email": new_email})),
                        ),
                    )?;
                    let updated = users::find(conn, &user.id)?;
                    webhooks::emit(
                        conn,
                        &shared.crypto,
                        "user.updated",
                        json!({"user": webhook_user(&updated), "changes": ["email"]}),
                    )?;
                    mail(
                        conn,
                        &shared,
                        &user.email,
                        &user,
                        EmailKind::EmailChanged {
                            new_email: new_email.clone(),
                        },
                    )?;
                    Ok(Ok(Verified::ChangedEmail(new_email)))
                }
            }
        })
        .await?
}

/// Starts a change of address: a link to the new address confirms it; until then the old one
/// stays (`email_change_requested` in the audit log).
pub async fn request_email_change(
    state: &AppState,
    user_id: &str,
    new_email: &str,
    actor: &Actor,
) -> Result<(), RecoveryError> {
    let shared = state.handles();
    let (id, new_email) = (user_id.to_owned(), new_email.to_owned());
    let actor = on_behalf_of(actor, user_id);
    state
        .store
        .write(move |conn| {
            if users::email_taken(conn, &new_email)? {
                return Ok(Err(RecoveryError::EmailTaken));
            }
            let user = users::find(conn, &id)?;
            let ttl = shared.settings.accounts.verification_token_ttl_secs;
            let token = new_token(conn, &shared, &id, CHANGE_EMAIL, Some(&new_email), ttl)?;
            let link = link(&shared, paths::ACCOUNT_VERIFY_EMAIL, &token);
            mail(
                conn,
                &shared,
                &new_email,
                &user,
                EmailKind::ConfirmEmailChange {
                    link,
                    new_email: new_email.clone(),
                },
            )?;
            audit::record(
                conn,
                &actor,
                AuditEvent::new("email_change_requested", "users", Some(&id))
                    .info(json!({"email": user.email, "new_email": new_email})),
            )?;
            Ok(Ok(()))
        })
        .await?
}

/// Queues the welcome mail of an account an administrator created. With `set_password_link`
/// it carries a single-use link (a reset token living `welcome_token_ttl_secs`) to choose the
/// first password. Call it inside the transaction that creates the account.
pub fn queue_welcome(
    conn: &mut AnyConnection,
    state: &Handles,
    user: &UserRow,
    set_password_link: bool,
) -> Result<(), StoreError> {
    let link = if set_password_link {
        let ttl = state.settings.accounts.welcome_token_ttl_secs;
        let token = new_token(conn, state, &user.id, RESET_PASSWORD, None, ttl)?;
        Some(link(state, paths::ACCOUNT_RESET_PASSWORD, &token))
    } else {
        None
    };
    mail(conn, state, &user.email, user, EmailKind::Welcome { link })
}
