//! Access tokens: RFC 9068 JWTs (`typ: at+jwt`), and the one verification path every
//! protected resource uses (UserInfo, introspection, the JSON API).
//!
//! Verification checks the signature against the keys in memory, the issuer and the expiry,
//! then reads one indexed row: whether the grant (or the token alone) was revoked and whether
//! the account is still active. A revocation therefore takes effect at once, everywhere.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::domain::{ClaimsRequest, Scope, SigningAlg, now};
use crate::oidc::keys::{JwsError, KeySet};
use crate::store::grants::{self as rows};
use crate::store::{AnyConnection, Store, StoreError, from_json};

/// The JWT `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user's id, or the client's id for client credentials.
    pub sub: String,
    /// The resource: this issuer's own APIs.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The session the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant the token belongs to (revoking the grant revokes the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// A client-credentials token's client epoch: the token stops when the client's scope,
    /// grant or credentials are cut back (see [`crate::store::clients::ClientRow::token_epoch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cep: Option<i64>,
}

impl AccessTokenClaims {
    /// The granted scope.
    pub fn scope(&self) -> Scope {
        Scope::parse(&self.scope).unwrap_or_default()
    }

    /// Whether this token was issued to a user (not by client credentials).
    pub fn has_user(&self) -> bool {
        self.gid.is_some()
    }
}

/// A new token id: 128 random bits.
pub fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs an access token with the active key of `alg`.
pub fn mint(keys: &KeySet, alg: SigningAlg, claims: &AccessTokenClaims) -> anyhow::Result<String> {
    let key = keys
        .active(alg)
        .ok_or_else(|| anyhow::anyhow!("no active {alg} signing key"))?;
    key.sign_jwt(ACCESS_TOKEN_TYP, claims)
}

/// Why an access token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT of ours.
    #[error("the access token is malformed or not signed by this server")]
    Invalid,
    /// Past its `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Revoked: alone, with its grant, or with its session.
    #[error("the access token has been revoked")]
    Revoked,
    /// The account is locked, disabled or gone.
    #[error("the account is not active")]
    InactiveAccount,
    /// The database could not be asked.
    #[error("the token state cannot be read now")]
    Unavailable,
}

impl From<JwsError> for TokenError {
    fn from(_: JwsError) -> Self {
        Self::Invalid
    }
}

/// Checks the signature, type, issuer and expiry of an access token. No database access.
pub fn verify(keys: &KeySet, issuer: &str, token: &str) -> Result<AccessTokenClaims, TokenError> {
    let verified = keys.verify_remembered(token)?;
    let typ = verified
        .header
        .get("typ")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
        && !typ.eq_ignore_ascii_case("application/at+jwt")
    {
        return Err(TokenError::Invalid);
    }
    let claims: AccessTokenClaims =
        serde_json::from_slice(&verified.payload).map_err(|_| TokenError::Invalid)?;
    if claims.iss != issuer {
        return Err(TokenError::Invalid);
    }
    if claims.exp <= now() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// An access token that is valid now, with what its grant adds.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    /// The token's claims.
    pub claims: AccessTokenClaims,
    /// The account's username (user tokens only).
    pub username: Option<String>,
    /// The `claims` request of the grant.
    pub claims_request: ClaimsRequest,
}

/// What storage says about a token: read by [`lookup`], judged by [`judge`].
pub enum Lookup {
    /// A user token: the state of its grant.
    Grant(rows::GrantState),
    /// A client-credentials token: whether it was revoked (alone, or with its client).
    ClientOnly { revoked: bool },
}

/// Reads, in one indexed query, what decides whether a verified token still stands.
pub fn lookup(conn: &mut AnyConnection, claims: &AccessTokenClaims) -> Result<Lookup, StoreError> {
    match &claims.gid {
        Some(gid) => Ok(Lookup::Grant(rows::grant_state(conn, gid, &claims.jti)?)),
        None => Ok(Lookup::ClientOnly {
            revoked: !rows::client_token_live(
                conn,
                &claims.jti,
                &claims.client_id,
                claims.cep.unwrap_or(0),
            )?,
        }),
    }
}

/// Whether a verified token still stands, given what [`lookup`] read.
pub fn judge(
    claims: AccessTokenClaims,
    lookup: Result<Lookup, StoreError>,
) -> Result<ActiveToken, TokenError> {
    match lookup {
        Ok(Lookup::Grant(state)) => {
            if state.revoked_at.is_some() || state.jti_revoked {
                return Err(TokenError::Revoked);
            }
            if state.status != "active" {
                return Err(TokenError::InactiveAccount);
            }
            let claims_request = match state.claims.as_deref() {
                Some(text) => from_json("grants.claims", text).unwrap_or_default(),
                None => ClaimsRequest::default(),
            };
            Ok(ActiveToken {
                claims,
                username: Some(state.username),
                claims_request,
            })
        }
        Ok(Lookup::ClientOnly { revoked: true }) => Err(TokenError::Revoked),
        Ok(Lookup::ClientOnly { revoked: false }) => Ok(ActiveToken {
            claims,
            username: None,
            claims_request: ClaimsRequest::default(),
        }),
        Err(error) => Err(unreadable(error)),
    }
}

/// Why a token's state could not be read, as a [`TokenError`].
fn unreadable(error: StoreError) -> TokenError {
    match error {
        // The grant row is gone (its client or user was deleted).
        StoreError::NotFound => TokenError::Revoked,
        StoreError::Unavailable(_) => TokenError::Unavailable,
        error => {
            tracing::error!(%error, "access token state lookup failed");
            TokenError::Unavailable
        }
    }
}

/// Verifies a token and checks, in one read, that it was not revoked and that its account is
/// still active.
pub async fn check(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    token: &str,
) -> Result<ActiveToken, TokenError> {
    check_then(store, keys, issuer, token, |_, _| Ok(()))
        .await
        .map(|(active, ())| active)
}

/// [`check`], then `then` on the same connection if the token stands: the reads a resource
/// needs (the account's claims, say) go to the database in the same turn as the revocation
/// check, not in a second one.
pub async fn check_then<T, F>(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    token: &str,
    then: F,
) -> Result<(ActiveToken, T), TokenError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &AccessTokenClaims) -> Result<T, StoreError> + Send + 'static,
{
    let claims = verify(keys, issuer, token)?;
    store
        .run(move |conn| {
            let read = lookup(conn, &claims);
            match judge(claims, read) {
                Ok(active) => {
                    let more = then(conn, &active.claims)?;
                    Ok(Ok((active, more)))
                }
                Err(refused) => Ok(Err(refused)),
            }
        })
        .await
        .map_err(unreadable)?
}
