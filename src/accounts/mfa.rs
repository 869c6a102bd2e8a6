//! Multi-factor authentication: TOTP (RFC 6238) with recovery codes.
//!
//! Setting up stores the new secret, sealed, in a setup challenge until a code from the
//! authenticator confirms it. A TOTP code is accepted once (the last accepted time step is
//! kept); recovery codes are single-use and stored as keyed hashes. Wrong codes count toward
//! a lockout of the second factor, kept apart from passwords. Starting a setup needs the
//! password, as turning MFA off does. Every change (on, off, new recovery codes), every
//! recovery code spent and every wrong code is written to the audit log in the transaction of
//! the change.

use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Builder, Secret, Totp};

use crate::accounts::login::{Attempt, on_behalf_of};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::domain::{PlainToken, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::events::email::{self, EmailKind};
use crate::startup::AppState;
use crate::store::mfa::{self as rows, ChallengeRow};
use crate::store::security;
use crate::store::{AnyConnection, StoreError, from_json, to_json};

/// How long an `mfa_token` or a `setup_token` lives.
pub const CHALLENGE_TTL_SECS: i64 = 300;
/// How many recovery codes a person gets.
pub const RECOVERY_CODES: usize = 10;

const MFA_TOKEN_PREFIX: &str = "lk_mfa_";
const SETUP_TOKEN_PREFIX: &str = "lk_mfs_";

/// Why a second factor was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The `mfa_token` or `setup_token` is unknown, expired or used.
    #[error("the token is invalid or has expired")]
    UnknownChallenge,
    /// The code is wrong, or was already used.
    #[error("the code is invalid")]
    WrongCode,
    /// MFA is not set up for this account.
    #[error("multi-factor authentication is not enabled")]
    NotEnabled,
    /// MFA is already on (set-up again needs disabling first).
    #[error("multi-factor authentication is already enabled")]
    AlreadyEnabled,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which second factor was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A TOTP code from the authenticator.
    Totp,
    /// A single-use recovery code.
    RecoveryCode,
}

fn totp_for(secret: Secret, account: &str, issuer: &str) -> Result<Totp, StoreError> {
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("TOTP parameters: {e}")))
}

fn totp_context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// A new TOTP secret waiting for confirmation, as shown to the person once.
#[derive(Clone, Serialize)]
pub struct TotpSetup {
    /// The secret in base32, for typing into an authenticator.
    pub secret: String,
    /// The `otpauth://` URL (seed 000's `qr_code_url`).
    pub qr_code_url: String,
    /// The same URL as a QR code, an SVG data URI.
    pub qr_code: String,
    /// Ten single-use recovery codes, shown only now.
    pub backup_codes: Vec<String>,
    /// Identifies this setup when it is confirmed.
    pub setup_token: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SetupPayload {
    /// The TOTP secret, sealed.
    secret: String,
    /// Keyed hashes of the recovery codes.
    recovery_hashes: Vec<String>,
}

/// A recovery code: `xxxxx-xxxxx` from an alphabet without look-alikes.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    code
}

/// What is hashed of a recovery code: lower case, without separators.
fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_set(crypto: &Crypto) -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes = codes
        .iter()
        .map(|c| crypto.hash_token(&normalise_recovery_code(c)).0)
        .collect();
    (codes, hashes)
}

/// Starts a TOTP setup for an account (`label` names it in the authenticator).
pub fn begin_setup(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    settings: &Settings,
    user_id: &str,
    label: &str,
) -> Result<TotpSetup, MfaError> {
    if security::find(conn, user_id)?.mfa_enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    let secret = Secret::generate();
    let base32 = secret.to_base32();
    let totp = totp_for(secret, label, &settings.accounts.totp_issuer)?;
    let url = totp
        .to_url()
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("TOTP URL: {e}")))?;
    let qr_code = qr_data_uri(&url)?;
    let (codes, hashes) = recovery_set(crypto);
    let token = PlainToken::generate(SETUP_TOKEN_PREFIX);
    let at = now();
    rows::insert_challenge(
        conn,
        &ChallengeRow {
            token_hash: crypto.hash_token(token.expose()).0,
            user_id: user_id.to_owned(),
            purpose: "setup".into(),
            payload: to_json(&SetupPayload {
                secret: crypto.seal(base32.as_bytes(), &totp_context(user_id)),
                recovery_hashes: hashes,
            }),
            created_at: at,
            expires_at: at + CHALLENGE_TTL_SECS,
            used_at: None,
        },
    )?;
    Ok(TotpSetup {
        secret: base32,
        qr_code_url: url,
        qr_code,
        backup_codes: codes,
        setup_token: token.expose().to_owned(),
    })
}

/// A QR code of `text`, as an SVG data URI.
fn qr_data_uri(text: &str) -> Result<String, StoreError> {
    let svg = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// A setup shown again after a wrong code: the same secret, and a new set of recovery codes
/// (the first set was only ever stored hashed, so it cannot be shown twice; the new set
/// replaces it, so the codes on screen are always the ones that will work).
#[derive(Clone)]
pub struct PendingSetup {
    /// The secret in base32.
    pub secret: String,
    /// The `otpauth://` URL.
    pub qr_code_url: String,
    /// The URL as a QR code, an SVG data URI.
    pub qr_code: String,
    /// The recovery codes that will be saved when the setup is confirmed.
    pub backup_codes: Vec<String>,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup { .. }")
    }
}

impl std::fmt::Debug for PendingSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSetup { .. }")
    }
}

/// The setup behind `setup_token`, if it is still open, with renewed recovery codes.
pub fn pending_setup(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    settings: &Settings,
    setup_token: &str,
) -> Result<Option<PendingSetup>, StoreError> {
    let token_hash = crypto.hash_token(setup_token).0;
    let challenge = match rows::find_challenge(conn, &token_hash, "setup", now()) {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Ok(None),
        Err(other) => return Err(other),
    };
    let mut payload: SetupPayload = from_json("mfa_challenges.payload", &challenge.payload)?;
    let secret = open_secret(crypto, &challenge.user_id, &payload.secret)?;
    let base32 = secret.to_base32();
    let account = crate::store::users::find(conn, &challenge.user_id)?.username;
    let url = totp_for(secret, &account, &settings.accounts.totp_issuer)?
        .to_url()
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("TOTP URL: {e}")))?;
    let qr_code = qr_data_uri(&url)?;
    let (codes, hashes) = recovery_set(crypto);
    payload.recovery_hashes = hashes;
    if !rows::replace_challenge_payload(conn, &token_hash, &to_json(&payload))? {
        return Ok(None);
    }
    Ok(Some(PendingSetup {
        secret: base32,
        qr_code_url: url,
        qr_code,
        backup_codes: codes,
    }))
}

fn open_secret(crypto: &Crypto, user_id: &str, sealed: &str) -> Result<Secret, StoreError> {
    let bytes = crypto
        .open(sealed, &totp_context(user_id))
        .map_err(|e| StoreError::Corrupt(e.into()))?;
    let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.into()))?;
    Secret::try_from_base32(text)
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("TOTP secret: {e}")))
}

/// The time step a code matches (now, or one step either side), if any.
fn matching_step(secret: Secret, code: &str) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = Builder::new().with_secret(secret).build().ok()?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    totp.check(&code, time)
}

/// Confirms a setup with a code from the authenticator: MFA is on from now (`mfa_enabled` in
/// the audit log, by `actor` or, for a request without a signed-in person, by the account).
/// With `owner`, a setup of any other account is unknown here. Returns the user id. Call it
/// inside a transaction.
pub fn confirm_setup(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    setup_token: &str,
    code: &str,
    owner: Option<&str>,
    actor: &Actor,
) -> Result<String, MfaError> {
    let hash = crypto.hash_token(setup_token).0;
    let challenge = match rows::find_challenge(conn, &hash, "setup", now()) {
        Ok(challenge) if owner.is_none_or(|owner| owner == challenge.user_id) => challenge,
        Ok(_) | Err(StoreError::NotFound) => return Err(MfaError::UnknownChallenge),
        Err(other) => return Err(other.into()),
    };
    let payload: SetupPayload = from_json("mfa_challenges.payload", &challenge.payload)?;
    let secret = open_secret(crypto, &challenge.user_id, &payload.secret)?;
    let step = matching_step(secret, code).ok_or(MfaError::WrongCode)?;
    if !rows::use_challenge(conn, &hash, now())? {
        return Err(MfaError::UnknownChallenge);
    }
    let mut row = security::find_for_update(conn, &challenge.user_id)?;
    if row.mfa_enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    row.mfa_enabled = true;
    row.totp_secret = Some(payload.secret);
    row.totp_last_step = Some(step as i64);
    security::save(conn, &row)?;
    rows::replace_recovery_codes(conn, &challenge.user_id, &payload.recovery_hashes, now())?;
    audit::record(
        conn,
        &on_behalf_of(actor, &challenge.user_id),
        AuditEvent::new("mfa_enabled", "users", Some(&challenge.user_id))
            .values(
                Some(json!({"mfa_enabled": false})),
                Some(json!({"mfa_enabled": true})),
            )
            .info(json!({"method": "totp"})),
    )?;
    Ok(challenge.user_id)
}

/// Checks a second factor: a TOTP code (never one already accepted) or a recovery code.
pub fn verify_code(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    code: &str,
) -> Result<Factor, MfaError> {
    let mut row = security::find_for_update(conn, user_id)?;
    let (true, Some(sealed)) = (row.mfa_enabled, row.totp_secret.clone()) else {
        return Err(MfaError::NotEnabled);
    };
    let secret = open_secret(crypto, user_id, &sealed)?;
    if let Some(step) = matching_step(secret, code) {
        // RFC 6238 §5.2: a code is accepted once.
        if row.totp_last_step.is_some_and(|last| step as i64 <= last) {
            return Err(MfaError::WrongCode);
        }
        row.totp_last_step = Some(step as i64);
        security::save(conn, &row)?;
        return Ok(Factor::Totp);
    }
    let normalised = normalise_recovery_code(code);
    if normalised.len() == 10
        && rows::use_recovery_code(conn, user_id, &crypto.hash_token(&normalised).0, now())?
    {
        return Ok(Factor::RecoveryCode);
    }
    Err(MfaError::WrongCode)
}

/// Turns MFA off (the caller has checked the password); `mfa_disabled` in the audit log. Call
/// it inside a transaction.
pub fn disable(conn: &mut AnyConnection, user_id: &str, actor: &Actor) -> Result<(), MfaError> {
    let mut row = security::find_for_update(conn, user_id)?;
    if !row.mfa_enabled {
        return Err(MfaError::NotEnabled);
    }
    row.mfa_enabled = false;
    row.totp_secret = None;
    row.totp_last_step = None;
    security::save(conn, &row)?;
    rows::replace_recovery_codes(conn, user_id, &[], now())?;
    audit::record(
        conn,
        &on_behalf_of(actor, user_id),
        AuditEvent::new("mfa_disabled", "users", Some(user_id)).values(
            Some(json!({"mfa_enabled": true})),
            Some(json!({"mfa_enabled": false})),
        ),
    )?;
    Ok(())
}

/// Replaces the recovery codes; returns the new ones, shown only now (the audit log says only
/// that they were replaced). Call it inside a transaction.
pub fn regenerate_recovery_codes(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    actor: &Actor,
) -> Result<Vec<String>, MfaError> {
    if !security::find(conn, user_id)?.mfa_enabled {
        return Err(MfaError::NotEnabled);
    }
    let (codes, hashes) = recovery_set(crypto);
    rows::replace_recovery_codes(conn, user_id, &hashes, now())?;
    audit::record(
        conn,
        &on_behalf_of(actor, user_id),
        AuditEvent::new("mfa_recovery_codes_regenerated", "users", Some(user_id))
            .info(json!({"count": codes.len()})),
    )?;
    Ok(codes)
}

/// Runs a change to a person's second factor in one write and, when it is made, queues `kind`
/// to them in the same transaction. `change` answers whose account it changed and what to hand
/// back; its refusals come back as they are, the database's failures as [`MfaError::Store`].
async fn change_and_notify<T, F>(
    state: &AppState,
    kind: EmailKind,
    change: F,
) -> Result<T, MfaError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &Crypto) -> Result<(String, T), MfaError> + Send + 'static,
{
    let handles = state.handles();
    state
        .store
        .write(move |conn| match change(conn, &handles.crypto) {
            Ok((user_id, value)) => {
                email::queue_to_user(conn, &handles.crypto, &handles.settings, &user_id, kind)?;
                Ok(Ok(value))
            }
            Err(MfaError::Store(e)) => Err(e),
            Err(refused) => Ok(Err(refused)),
        })
        .await?
}

/// Turns MFA on with a setup token and a code from the authenticator ([`confirm_setup`], for
/// `owner`'s account only when given) and mails the account's owner. Returns whose account it
/// was.
pub async fn enable(
    state: &AppState,
    setup_token: &str,
    code: &str,
    owner: Option<&str>,
    actor: &Actor,
) -> Result<String, MfaError> {
    let (token, code, actor) = (setup_token.to_owned(), code.to_owned(), actor.clone());
    let owner = owner.map(str::to_owned);
    let user_id = change_and_notify(state, EmailKind::MfaEnabled, move |conn, crypto| {
        let user_id = confirm_setup(conn, crypto, &token, &code, owner.as_deref(), &actor)?;
        Ok((user_id.clone(), user_id))
    })
    .await?;
    tracing::info!(target: "latchkey::security", event = "mfa_enabled", %user_id, "two-step verification enabled");
    Ok(user_id)
}

/// Turns MFA off ([`disable`]; the caller has checked the password) and mails the owner.
pub async fn turn_off(state: &AppState, user_id: &str, actor: &Actor) -> Result<(), MfaError> {
    let (id, actor) = (user_id.to_owned(), actor.clone());
    change_and_notify(state, EmailKind::MfaDisabled, move |conn, _| {
        disable(conn, &id, &actor)?;
        Ok((id, ()))
    })
    .await?;
    tracing::info!(target: "latchkey::security", event = "mfa_disabled", %user_id, "two-step verification disabled");
    Ok(())
}

/// Replaces the recovery codes ([`regenerate_recovery_codes`]; the caller has checked the
/// password) and mails the owner. Returns the new codes, to be shown once.
pub async fn replace_recovery_codes(
    state: &AppState,
    user_id: &str,
    actor: &Actor,
) -> Result<Vec<String>, MfaError> {
    let (id, actor) = (user_id.to_owned(), actor.clone());
    let kind = EmailKind::RecoveryCodesRegenerated;
    let codes = change_and_notify(state, kind, move |conn, crypto| {
        let codes = regenerate_recovery_codes(conn, crypto, &id, &actor)?;
        Ok((id, codes))
    })
    .await?;
    tracing::info!(target: "latchkey::security", event = "mfa_recovery_codes_regenerated", %user_id, "recovery codes replaced");
    Ok(codes)
}

/// What a login waiting for its second factor carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginChallenge {
    /// The API login's `remember_me`.
    #[serde(default)]
    pub remember_me: bool,
    /// The pending authorization request of a browser login.
    #[serde(default)]
    pub authorization_request: Option<String>,
    /// The browser session to step up (acr_values asked for MFA inside a session).
    #[serde(default)]
    pub step_up_session: Option<String>,
}

/// Creates the `mfa_token` of a login whose password was right.
pub fn new_login_challenge(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    challenge: &LoginChallenge,
) -> Result<PlainToken, StoreError> {
    let token = PlainToken::generate(MFA_TOKEN_PREFIX);
    let at = now();
    rows::insert_challenge(
        conn,
        &ChallengeRow {
            token_hash: crypto.hash_token(token.expose()).0,
            user_id: user_id.to_owned(),
            purpose: "login".into(),
            payload: to_json(challenge),
            created_at: at,
            expires_at: at + CHALLENGE_TTL_SECS,
            used_at: None,
        },
    )?;
    Ok(token)
}

/// The login waiting behind an `mfa_token`, if it is live: the user id and what it carries.
pub fn find_login_challenge(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    mfa_token: &str,
) -> Result<Option<(String, LoginChallenge)>, StoreError> {
    match rows::find_challenge(conn, &crypto.hash_token(mfa_token).0, "login", now()) {
        Ok(row) => Ok(Some((
            row.user_id,
            from_json("mfa_challenges.payload", &row.payload)?,
        ))),
        Err(StoreError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Spends an `mfa_token` once its code was right; false if it was spent meanwhile.
pub fn complete_login_challenge(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    mfa_token: &str,
) -> Result<bool, StoreError> {
    rows::use_challenge(conn, &crypto.hash_token(mfa_token).0, now())
}

/// Why the second factor of a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// The `mfa_token` is unknown, expired or spent.
    #[error("the sign-in has expired: start again")]
    UnknownChallenge,
    /// The code is wrong (the failure was counted).
    #[error("the code is invalid")]
    WrongCode,
    /// The account is locked (perhaps by this failure).
    #[error("the account is locked")]
    Locked { retry_after: i64 },
    /// Something failed inside.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Checks the code of a pending login and spends its `mfa_token`; wrong codes count toward the
/// second factor's own lockout (`mfa_failed`, and `account_locked` when they lock it), a spent
/// recovery code is `mfa_recovery_code_used`, each in the transaction of the change. Returns
/// the user and what the login carried (the sign-in itself is recorded when its session
/// starts).
pub async fn complete_second_factor(
    state: &AppState,
    mfa_token: &str,
    code: &str,
    attempt: &Attempt,
) -> Result<(String, LoginChallenge), SecondFactorError> {
    use crate::accounts::login::{count_wrong_code, locked_for, second_factor_locked_for};
    let crypto = state.crypto.clone();
    let rules = state.settings.accounts.clone();
    let (token, code, attempt) = (mfa_token.to_owned(), code.to_owned(), attempt.clone());
    state
        .store
        .write(move |conn| {
            let Some((user_id, challenge)) = find_login_challenge(conn, &crypto, &token)?
            else {
                return Ok(Err(SecondFactorError::UnknownChallenge));
            };
            let user = crate::store::users::find(conn, &user_id)?;
            let security_row = security::find_for_update(conn, &user_id)?;
            let at = now();
            if let Some(retry_after) = locked_for(&user, &security_row, at)
                .or_else(|| second_factor_locked_for(&security_row, at))
            {
                return Ok(Err(SecondFactorError::Locked { retry_after }));
            }
            match verify_code(conn, &crypto, &user_id, &code) {
                Ok(factor) => {
                    if !complete_login_challenge(conn, &crypto, &token)? {
                        return Ok(Err(SecondFactorError::UnknownChallenge));
                    }
                    if factor == Factor::RecoveryCode {
                        let remaining = rows::unused_recovery_codes(conn, &user_id)?;
                        audit::record(
                            conn,
                            &on_behalf_of(&attempt.actor, &user_id),
                            AuditEvent::new("mfa_recovery_code_used", "users", Some(&user_id))
                                .info(json!({
                                    "remaining": remaining,
                                    "client_id": attempt.client_id,
                                })),
                        )?;
                    }
                    Ok(Ok((user_id, challenge)))
                }
                Err(MfaError::WrongCode) => {
                    tracing::info!(target: "latchkey::security", event = "mfa_failed", %user_id, "wrong second-factor code");
                    let locked = count_wrong_code(conn, &crypto, &rules, &attempt, &user_id)?;
                    Ok(Err(match locked {
                        Some(retry_after) => SecondFactorError::Locked { retry_after },
                        None => SecondFactorError::WrongCode,
                    }))
                }
                Err(MfaError::Store(e)) => Err(e),
                Err(_) => Ok(Err(SecondFactorError::UnknownChallenge)),
            }
        })
        .await
        .map_err(|e| SecondFactorError::Internal(e.into()))?
}

/// How many unused recovery codes an account has left.
pub fn recovery_codes_left(conn: &mut AnyConnection, user_id: &str) -> Result<i64, StoreError> {
    rows::unused_recovery_codes(conn, user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_normalise_and_look_distinct() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(normalise_recovery_code(&code.to_uppercase()).len(), 10);
        assert_ne!(new_recovery_code(), new_recovery_code());
    }

    #[test]
    fn codes_are_matched_within_one_step() {
        let secret = Secret::generate();
        let totp = Builder::new().with_secret(secret.clone()).build().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let code = totp.generate(now).to_string();
        assert!(matching_step(secret.clone(), &code).is_some());
        assert!(matching_step(secret.clone(), "12345").is_none());
        let old = totp.generate(now - 600).to_string();
        assert!(matching_step(secret, &old).is_none() || old == code);
    }
}
