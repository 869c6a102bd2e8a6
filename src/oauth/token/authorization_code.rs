//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6).
//!
//! A code is used once. The use is recorded before the redirect URI and PKCE are checked, so
//! a failed attempt burns the code; a second use revokes the grant and every token issued
//! under it (RFC 6749 §4.1.2, RFC 9700 §4.5).

use crate::domain::{ClaimsRequest, CodeChallenge, GrantType, Scope, now};
use crate::oauth::clients::Client;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::issue::{
    Authentication, Subject, TokenContext, load_subject, mint_access_token, mint_id_token,
    new_refresh_token,
};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::grants::{self as rows, GrantRow};
use crate::store::{StoreError, from_json};

use super::TokenResponse;

/// Why a code was refused.
#[derive(Debug, thiserror::Error)]
enum CodeExchangeError {
    #[error("The authorization code is invalid")]
    Unknown,
    #[error("The authorization code was issued to another client")]
    WrongClient,
    #[error("The authorization code has expired")]
    Expired,
    #[error("The authorization code was already used")]
    Replayed { grant_id: String },
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    #[error("code_verifier does not match the code_challenge")]
    PkceMismatch,
    #[error("code_verifier is required: the authorization request used PKCE")]
    PkceMissing,
    #[error("code_verifier was sent but the authorization request had no code_challenge")]
    PkceUnexpected,
    #[error("The grant was revoked")]
    Revoked,
    #[error("The account is not active")]
    InactiveAccount,
}

impl From<CodeExchangeError> for OAuthError {
    fn from(error: CodeExchangeError) -> Self {
        OAuthError::invalid_grant(error.to_string())
    }
}

/// What a successful exchange stored, for the response.
struct Issued {
    grant: GrantRow,
    subject: Subject,
    nonce: Option<String>,
    refresh_token: Option<String>,
}

/// What the exchange transaction decided.
enum Decision {
    Issue(Box<Issued>),
    Refuse(CodeExchangeError),
}

pub(super) async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use the authorization_code grant",
        ));
    }
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?
        .to_owned();
    let redirect_uri = params.get("redirect_uri").unwrap_or("").to_owned();
    let verifier = params.get("code_verifier").map(str::to_owned);
    let code_hash = state.crypto.hash_token(&code).0;
    let crypto = state.crypto.clone();
    let client_id = client.id.clone();
    let issues_refresh = client.allows_grant(GrantType::RefreshToken);
    let refresh_ttl = state.settings.lifetimes.refresh_token as i64;

    let decision = state
        .store
        .write(move |conn| {
            let row = match rows::find_code(conn, &code_hash) {
                Ok(row) => row,
                Err(StoreError::NotFound) => {
                    return Ok(Decision::Refuse(CodeExchangeError::Unknown));
                }
                Err(other) => return Err(other),
            };
            if row.client_id != client_id {
                return Ok(Decision::Refuse(CodeExchangeError::WrongClient));
            }
            let at = now();
            if !rows::use_code(conn, &code_hash, at)? {
                return Ok(Decision::Refuse(CodeExchangeError::Replayed {
                    grant_id: row.grant_id,
                }));
            }
            // From here the code is spent, whatever the outcome.
            if row.expires_at <= at {
                return Ok(Decision::Refuse(CodeExchangeError::Expired));
            }
            if row.redirect_uri != redirect_uri {
                return Ok(Decision::Refuse(CodeExchangeError::RedirectMismatch));
            }
            match (&row.code_challenge, &verifier) {
                (Some(challenge), Some(verifier)) => {
                    if !CodeChallenge::stored(challenge.clone()).verify(verifier) {
                        return Ok(Decision::Refuse(CodeExchangeError::PkceMismatch));
                    }
                }
                (Some(_), None) => return Ok(Decision::Refuse(CodeExchangeError::PkceMissing)),
                (None, Some(_)) => {
                    return Ok(Decision::Refuse(CodeExchangeError::PkceUnexpected));
                }
                (None, None) => {}
            }
            let grant = rows::find_grant(conn, &row.grant_id)?;
            if grant.revoked_at.is_some() {
                return Ok(Decision::Refuse(CodeExchangeError::Revoked));
            }
            let subject = load_subject(conn, &grant.user_id)?;
            if subject.user.status != "active" {
                return Ok(Decision::Refuse(CodeExchangeError::InactiveAccount));
            }
            let refresh_token = if issues_refresh {
                let expires =
                    (at + grant.refresh_ttl_secs.unwrap_or(refresh_ttl)).min(grant.expires_at);
                Some(
                    new_refresh_token(conn, &crypto, &grant.id, expires)?
                        .expose()
                        .to_owned(),
                )
            } else {
                None
            };
            Ok(Decision::Issue(Box::new(Issued {
                grant,
                subject,
                nonce: row.nonce,
                refresh_token,
            })))
        })
        .await?;

    let Issued {
        grant,
        subject,
        nonce,
        refresh_token,
    } = match decision {
        Decision::Issue(issued) => *issued,
        Decision::Refuse(CodeExchangeError::Replayed { grant_id }) => {
            let revoked_id = grant_id.clone();
            let newly = state
                .store
                .run(move |conn| {
                    rows::revoke_grant(conn, &revoked_id, "authorization code replayed", now())
                })
                .await?;
            tracing::warn!(
                target: "latchkey::security",
                event = "authorization_code_replay",
                client_id = %client.id,
                grant_id = %grant_id,
                revoked = newly,
                "authorization code used twice: every token of its grant is revoked"
            );
            return Err(CodeExchangeError::Replayed { grant_id }.into());
        }
        Decision::Refuse(other) => return Err(other.into()),
    };
    respond(
        state,
        client,
        &grant,
        &subject,
        &grant_scope(&grant)?,
        nonce.as_deref(),
        refresh_token,
    )
}

/// The scope a grant records.
pub(super) fn grant_scope(grant: &GrantRow) -> Result<Scope, OAuthError> {
    Scope::parse(&grant.scope).map_err(|e| {
        tracing::error!(grant_id = %grant.id, error = %e, "stored grant scope is invalid");
        OAuthError::server_error()
    })
}

/// Mints the access token (and the ID token when `openid` was granted) of a grant, never with
/// more than the client may have today: a client whose scope an administrator narrowed gets
/// its codes and renewals narrowed too.
pub(super) fn respond(
    state: &AppState,
    client: &Client,
    grant: &GrantRow,
    subject: &Subject,
    scope: &Scope,
    nonce: Option<&str>,
    refresh_token: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let scope = &scope.intersect(&client.scope);
    let authentication = Authentication {
        auth_time: grant.auth_time,
        acr: grant.acr.clone(),
        amr: from_json("grants.amr", &grant.amr)?,
        session_id: grant.session_id.clone(),
    };
    let claims: ClaimsRequest = match grant.claims.as_deref() {
        Some(text) => from_json("grants.claims", text)?,
        None => ClaimsRequest::default(),
    };
    let ctx = TokenContext {
        client,
        subject,
        grant_id: &grant.id,
        scope,
        authentication: &authentication,
        claims: &claims,
    };
    let (access_token, _) = mint_access_token(state, &ctx)?;
    let id_token = if scope.contains("openid") {
        Some(mint_id_token(
            state,
            &ctx,
            nonce,
            Some(&access_token),
            None,
        )?)
    } else {
        None
    };
    let refresh_expires_in = refresh_token.as_ref().map(|_| {
        let ttl = grant
            .refresh_ttl_secs
            .unwrap_or(state.settings.lifetimes.refresh_token as i64);
        ttl.min(grant.expires_at - crate::domain::now()).max(0) as u64
    });
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.lifetimes.access_token,
        refresh_token,
        refresh_expires_in,
        id_token,
        scope: scope.to_string(),
    })
}
