//! Issuing tokens for a grant: access tokens, ID tokens and refresh tokens, shared by the
//! authorization endpoint (implicit and hybrid responses) and every grant of the token
//! endpoint.

use crate::crypto::Crypto;
use crate::domain::{ClaimsRequest, PlainToken, Scope, effective_permissions, now};
use crate::oauth::access_token::{self, AccessTokenClaims};
use crate::oauth::clients::Client;
use crate::oidc::claims::user_claims;
use crate::oidc::id_token::{self, IdTokenContent};
use crate::startup::AppState;
use crate::store::grants::{self as rows, RefreshTokenRow};
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError};

/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "lk_ac_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "lk_rt_";

/// The person tokens are issued for, with what their tokens may carry.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user: UserRow,
    pub roles: Vec<String>,
    /// Everything the user holds, before any scope cut.
    pub permissions: Vec<String>,
}

/// Reads a user with their roles and permissions.
pub fn load_subject(conn: &mut AnyConnection, user_id: &str) -> Result<Subject, StoreError> {
    Ok(Subject {
        user: users::find(conn, user_id)?,
        roles: users::role_names(conn, user_id)?,
        permissions: users::permissions(conn, user_id)?,
    })
}

/// How and when the person authenticated, as a grant records it.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub session_id: Option<String>,
}

/// Everything needed to mint tokens under one grant.
#[derive(Debug)]
pub struct TokenContext<'a> {
    pub client: &'a Client,
    pub subject: &'a Subject,
    pub grant_id: &'a str,
    pub scope: &'a Scope,
    pub authentication: &'a Authentication,
    pub claims: &'a ClaimsRequest,
}

/// Signs an access token for the context; returns it with its claims.
pub fn mint_access_token(
    state: &AppState,
    ctx: &TokenContext<'_>,
) -> anyhow::Result<(String, AccessTokenClaims)> {
    let issued = now();
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.clone(),
        sub: ctx.subject.user.id.clone(),
        aud: state.settings.issuer.clone(),
        exp: issued + state.settings.lifetimes.access_token as i64,
        iat: issued,
        jti: access_token::new_jti(),
        client_id: ctx.client.id.clone(),
        scope: ctx.scope.to_string(),
        roles: ctx.subject.roles.clone(),
        permissions: effective_permissions(&ctx.subject.permissions, ctx.scope),
        auth_time: Some(ctx.authentication.auth_time),
        acr: Some(ctx.authentication.acr.clone()),
        amr: Some(ctx.authentication.amr.clone()),
        sid: ctx.authentication.session_id.clone(),
        gid: Some(ctx.grant_id.to_owned()),
        cep: None,
    };
    let keys = state.keys.current();
    let token = access_token::mint(&keys, state.settings.access_token_signing_alg, &claims)?;
    Ok((token, claims))
}

/// Signs an ID token for the context. Standard claims by scope go in only when no access
/// token is issued beside it (OpenID Connect Core §5.4); claims asked for through the
/// `claims` parameter's `id_token` member always do.
pub fn mint_id_token(
    state: &AppState,
    ctx: &TokenContext<'_>,
    nonce: Option<&str>,
    access_token: Option<&str>,
    code: Option<&str>,
) -> anyhow::Result<String> {
    let scope_claims = access_token.is_none().then_some(ctx.scope);
    let claims = user_claims(&ctx.subject.user, scope_claims, &ctx.claims.id_token);
    let keys = state.keys.current();
    id_token::mint(
        &keys,
        IdTokenContent {
            issuer: &state.settings.issuer,
            client_id: &ctx.client.id,
            alg: ctx.client.id_token_signed_response_alg,
            lifetime_secs: state.settings.lifetimes.id_token,
            subject: &ctx.subject.user.id,
            auth_time: ctx.authentication.auth_time,
            acr: &ctx.authentication.acr,
            amr: &ctx.authentication.amr,
            nonce,
            sid: ctx.authentication.session_id.as_deref(),
            access_token,
            code,
            claims,
        },
    )
}

/// Creates a refresh token under a grant.
pub fn new_refresh_token(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    grant_id: &str,
    expires_at: i64,
) -> Result<PlainToken, StoreError> {
    let token = PlainToken::generate(REFRESH_TOKEN_PREFIX);
    rows::insert_refresh_token(
        conn,
        &RefreshTokenRow {
            token_hash: crypto.hash_token(token.expose()).0,
            grant_id: grant_id.to_owned(),
            created_at: now(),
            expires_at,
            used_at: None,
            successor_sealed: None,
        },
    )?;
    Ok(token)
}
