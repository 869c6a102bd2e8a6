//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).
//!
//! Each use rotates the token. A rotated token presented again revokes its whole grant, unless
//! it comes back within the grace window (a client retrying a request whose answer it lost),
//! in which case it gets the same successor: one family, never two. A reuse is a security event:
//! the revocation and its audit entry commit together, before the error answer is sent.

use serde_json::json;

use crate::accounts::login::on_behalf_of;
use crate::domain::{GrantType, PlainToken, Scope, now};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::oauth::clients::Client;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issue::{REFRESH_TOKEN_PREFIX, Subject, load_subject};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::grants::{self as rows, GrantRow, RefreshTokenRow};
use crate::store::{StoreError, write_transaction};

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
    },
    Refuse(RefreshError),
    WidenedScope,
}

/// The refresh grant for an authenticated client: rotation, reuse detection, narrowing. The
/// request's `actor` (address, user agent, request id; the grant's user is filled in) is named
/// in the audit entry of a reuse.
pub async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
    actor: &Actor,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use the refresh_token grant",
        ));
    }
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let requested_scope = params
        .get("scope")
        .map(Scope::parse)
        .transpose()
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
    let token_hash = state.crypto.hash_token(presented).0;
    // The successor is made before the transaction; it is stored only if this request wins.
    let successor = PlainToken::generate(REFRESH_TOKEN_PREFIX);
    let sealed_successor = state
        .crypto
        .seal(successor.expose().as_bytes(), &token_hash);
    let crypto = state.crypto.clone();
    let client_id = client.id.clone();
    let grace = state.settings.refresh_reuse_grace_secs as i64;
    let ttl = state.settings.lifetimes.refresh_token as i64;
    let wanted_scope = requested_scope.clone();
    let actor = actor.clone();

    let decision = state
        .store
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let row = match rows::find_refresh_token(conn, &token_hash) {
                    Ok(row) => row,
                    Err(StoreError::NotFound) => {
                        return Ok(Decision::Refuse(RefreshError::Unknown));
                    }
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
                if let Some(wanted) = &wanted_scope {
                    let granted = Scope::parse(&grant.scope).unwrap_or_default();
                    if !wanted.is_subset_of(&granted) {
                        return Ok(Decision::WidenedScope);
                    }
                }
                let subject = load_subject(conn, &grant.user_id)?;
                if subject.user.status != "active" {
                    return Ok(Decision::Refuse(RefreshError::InactiveAccount));
                }
                if rows::use_refresh_token(conn, &token_hash, &sealed_successor, at)? {
                    if let Some(session_id) = &grant.session_id {
                        crate::store::sessions::touch(conn, session_id, at)?;
                    }
                    let expires =
                        (at + grant.refresh_ttl_secs.unwrap_or(ttl)).min(grant.expires_at);
                    rows::insert_refresh_token(
                        conn,
                        &RefreshTokenRow {
                            token_hash: crypto.hash_token(successor.expose()).0,
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
                        successor: successor.expose().to_owned(),
                    });
                }
                // Already used: re-read, now that the winner (if concurrent) has committed.
                let used = rows::find_refresh_token(conn, &token_hash)?;
                // A zero window disables the grace: every second presentation is a reuse.
                let within_grace = grace > 0 && used.used_at.is_some_and(|t| at - t <= grace);
                match (within_grace, used.successor_sealed) {
                    (true, Some(sealed)) => {
                        let plain = crypto
                            .open(&sealed, &token_hash)
                            .map_err(|e| StoreError::Corrupt(e.into()))?;
                        Ok(Decision::Issue {
                            grant: Box::new(grant),
                            subject: Box::new(subject),
                            successor: String::from_utf8(plain)
                                .map_err(|e| StoreError::Corrupt(e.into()))?,
                        })
                    }
                    _ => {
                        // RFC 9700 §4.14.2: the whole family goes. Returning `Ok` commits the
                        // revocation and its audit entry although the request fails.
                        rows::revoke_grant(conn, &grant.id, "refresh token reused", at)?;
                        audit::record(
                            conn,
                            &on_behalf_of(&actor, &grant.user_id),
                            AuditEvent::new("refresh_token_reuse", "grants", Some(&grant.id)).info(
                                json!({
                                    "client_id": grant.client_id,
                                    "session_id": grant.session_id,
                                    "reason": "a rotated refresh token was presented again",
                                }),
                            ),
                        )?;
                        Ok(Decision::Refuse(RefreshError::Reused {
                            grant_id: grant.id,
                        }))
                    }
                }
            })
        })
        .await?;

    match decision {
        Decision::Issue {
            grant,
            subject,
            successor,
        } => {
            let scope = match requested_scope {
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
    }
}
