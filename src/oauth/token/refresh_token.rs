//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).
//!
//! Each use rotates the token. A rotated token presented again revokes its whole grant, unless
//! it comes back within the grace window from a client that authenticated (a client retrying a
//! request whose answer it lost), in which case it gets the same successor: one family, never
//! two. A public client proves nothing by naming itself, so whoever replays its stolen token
//! gets no grace: the replay revokes the family. A reuse is a security event:
//! the revocation and its audit entry commit together, before the error answer is sent.

use actix_web::HttpRequest;
use serde_json::json;

use crate::accounts::login::on_behalf_of;
use crate::crypto::Crypto;
use crate::domain::{AuthMethod, GrantType, PlainToken, Scope, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::oauth::client_auth::authenticate_then_write;
use crate::oauth::clients::Client;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issue::{REFRESH_TOKEN_PREFIX, Subject, load_subject};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::grants::{self as rows, GrantRow, RefreshTokenRow};
use crate::store::{AnyConnection, StoreError};

use super::TokenResponse;
use super::authorization_code::{grant_scope, respond};

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error("The refresh token is invalid")]
    Unknown,
    #[error("The refresh token was issued to another client")]
    WrongClient,
    #[error("The refresh token has expired")]
    Expired,
    #[error("The refresh token was revoked")]
    Revoked,
    #[error("The refresh token was already used")]
    Reused { grant_id: String },
    #[error("The account is not active")]
    InactiveAccount,
}

enum Decision {
    Issue {
        grant: Box<GrantRow>,
        subject: Box<Subject>,
        successor: String,
        /// The narrower scope asked for, if any.
        narrowed: Option<Scope>,
    },
    Refuse(RefreshError),
    WidenedScope,
    /// Refused before the token was looked at (the client's grant types, the request).
    Invalid(OAuthError),
}

/// What a refresh request asks, read before its turn at the database; the successor is made
/// here too, and stored only if the request wins.
struct Asked {
    token_hash: String,
    requested_scope: Option<Scope>,
    successor: PlainToken,
    sealed_successor: String,
}

impl Asked {
    fn of(state: &AppState, params: &Params) -> Result<Self, OAuthError> {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let requested_scope = params
            .get("scope")
            .map(Scope::parse)
            .transpose()
            .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
        let token_hash = state.crypto.hash_token(presented).0;
        let successor = PlainToken::generate(REFRESH_TOKEN_PREFIX);
        let sealed_successor = state
            .crypto
            .seal(successor.expose().as_bytes(), &token_hash);
        Ok(Self {
            token_hash,
            requested_scope,
            successor,
            sealed_successor,
        })
    }
}

/// The refresh grant at the token endpoint `endpoint_url`: client authentication, rotation,
/// reuse detection and narrowing, with the client read and checked in the same write as the
/// rotation. The request's `actor` (address, user agent, request id; the grant's user is
/// filled in) is named in the audit entry of a reuse.
pub async fn authenticate_and_refresh(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    endpoint_url: &str,
    actor: Actor,
) -> Result<TokenResponse, OAuthError> {
    let decide = decider(state, params, actor);
    let (client, decision) =
        authenticate_then_write(state, request, params, endpoint_url, decide).await?;
    respond_to(state, &client, decision)
}

/// The refresh grant for `client`, known without authentication (the first-party API's).
pub async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
    actor: Actor,
) -> Result<TokenResponse, OAuthError> {
    let decide = decider(state, params, actor);
    let reader = client.clone();
    let decision = state.store.write(move |conn| decide(conn, &reader)).await?;
    respond_to(state, client, decision)
}

/// The write that decides a refresh request for a client: its grant types, then the request,
/// then the rotation. Errors in the request are told only to an authenticated client.
fn decider(
    state: &AppState,
    params: &Params,
    actor: Actor,
) -> impl FnOnce(&mut AnyConnection, &Client) -> Result<Decision, StoreError> + Send + 'static {
    let asked = Asked::of(state, params);
    let crypto = state.crypto.clone();
    let grace = state.settings.refresh_reuse_grace_secs as i64;
    let ttl = state.settings.lifetimes.refresh_token as i64;
    move |conn, client| {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(Decision::Invalid(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "This client may not use the refresh_token grant",
            )));
        }
        match asked {
            Ok(asked) => {
                let grace = if client.auth_method == AuthMethod::None {
                    0
                } else {
                    grace
                };
                rotate(conn, &crypto, &client.id, &asked, grace, ttl, &actor)
            }
            Err(invalid) => Ok(Decision::Invalid(invalid)),
        }
    }
}

/// The rotation itself, in the request's write transaction.
fn rotate(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    client_id: &str,
    asked: &Asked,
    grace: i64,
    ttl: i64,
    actor: &Actor,
) -> Result<Decision, StoreError> {
    let token_hash = &asked.token_hash;
    let row = match rows::find_refresh_token(conn, token_hash) {
        Ok(row) => row,
        Err(StoreError::NotFound) => return Ok(Decision::Refuse(RefreshError::Unknown)),
        Err(other) => return Err(other),
    };
    let grant = rows::find_grant(conn, &row.grant_id)?;
    if grant.client_id != client_id {
        return Ok(Decision::Refuse(RefreshError::WrongClient));
    }
    if grant.revoked_at.is_some() {
        return Ok(Decision::Refuse(RefreshError::Revoked));
    }
    let at = now();
    if row.expires_at <= at || grant.expires_at <= at {
        return Ok(Decision::Refuse(RefreshError::Expired));
    }
    if let Some(wanted) = &asked.requested_scope {
        let granted = Scope::parse(&grant.scope).unwrap_or_default();
        if !wanted.is_subset_of(&granted) {
            return Ok(Decision::WidenedScope);
        }
    }
    let subject = load_subject(conn, &grant.user_id)?;
    if subject.user.status != "active" {
        return Ok(Decision::Refuse(RefreshError::InactiveAccount));
    }
    if rows::use_refresh_token(conn, token_hash, &asked.sealed_successor, at)? {
        if let Some(session_id) = &grant.session_id {
            crate::store::sessions::touch(conn, session_id, at)?;
        }
        let expires = (at + grant.refresh_ttl_secs.unwrap_or(ttl)).min(grant.expires_at);
        rows::insert_refresh_token(
            conn,
            &RefreshTokenRow {
                token_hash: crypto.hash_token(asked.successor.expose()).0,
                grant_id: grant.id.clone(),
                created_at: at,
                expires_at: expires,
                used_at: None,
                successor_sealed: None,
            },
        )?;
        return Ok(Decision::Issue {
            grant: Box::new(grant),
            subject: Box::new(subject),
            successor: asked.successor.expose().to_owned(),
            narrowed: asked.requested_scope.clone(),
        });
    }
    // Already used: re-read, now that the winner (if concurrent) has committed.
    let used = rows::find_refresh_token(conn, token_hash)?;
    // A zero window disables the grace: every second presentation is a reuse.
    let within_grace = grace > 0 && used.used_at.is_some_and(|t| at - t <= grace);
    match (within_grace, used.successor_sealed) {
        (true, Some(sealed)) => {
            let plain = crypto
                .open(&sealed, token_hash)
                .map_err(|e| StoreError::Corrupt(e.into()))?;
            Ok(Decision::Issue {
                grant: Box::new(grant),
                subject: Box::new(subject),
                successor: String::from_utf8(plain).map_err(|e| StoreError::Corrupt(e.into()))?,
                narrowed: asked.requested_scope.clone(),
            })
        }
        _ => {
            // RFC 9700 §4.14.2: the whole family goes. Returning `Ok` commits the
            // revocation and its audit entry although the request fails.
            rows::revoke_grant(conn, &grant.id, "refresh token reused", at)?;
            audit::record(
                conn,
                &on_behalf_of(actor, &grant.user_id),
                AuditEvent::new("refresh_token_reuse", "grants", Some(&grant.id)).info(json!({
                    "client_id": grant.client_id,
                    "session_id": grant.session_id,
                    "reason": "a rotated refresh token was presented again",
                })),
            )?;
            Ok(Decision::Refuse(RefreshError::Reused {
                grant_id: grant.id,
            }))
        }
    }
}

/// The answer to a decided refresh: the new tokens, or the refusal.
fn respond_to(
    state: &AppState,
    client: &Client,
    decision: Decision,
) -> Result<TokenResponse, OAuthError> {
    match decision {
        Decision::Issue {
            grant,
            subject,
            successor,
            narrowed,
        } => {
            let scope = match narrowed {
                Some(narrowed) => narrowed,
                None => grant_scope(&grant)?,
            };
            respond(
                state,
                client,
                &grant,
                &subject,
                &scope,
                None,
                Some(successor),
            )
        }
        Decision::WidenedScope => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "The requested scope exceeds the scope originally granted",
        )),
        Decision::Refuse(RefreshError::Reused { grant_id }) => {
            tracing::warn!(
                target: "latchkey::security",
                event = "refresh_token_reuse",
                client_id = %client.id,
                grant_id = %grant_id,
                "a rotated refresh token was presented again: its whole family is revoked"
            );
            Err(OAuthError::invalid_grant(
                RefreshError::Reused { grant_id }.to_string(),
            ))
        }
        Decision::Refuse(other) => Err(OAuthError::invalid_grant(other.to_string())),
        Decision::Invalid(error) => Err(error),
    }
}
