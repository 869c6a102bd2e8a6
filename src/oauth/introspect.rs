//! `POST /oauth/introspect` (RFC 7662): whether a token is active, and what it carries.
//!
//! Any confidential client may ask (resource servers are clients too); a public client, which
//! proves nothing by naming itself, may not, or anyone could read any token they found (RFC
//! 7662 §4). Revoked, expired and unknown tokens are all simply `{"active": false}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::domain::{AuthMethod, now};
use crate::oauth::access_token::{self, TokenError};
use crate::oauth::client_auth::authenticate_with;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::token::read_params;
use crate::paths;
use crate::startup::AppState;
use crate::store::grants as rows;
use crate::store::{StoreError, users};

fn inactive() -> Value {
    json!({ "active": false })
}

/// `POST /oauth/introspect`.
#[utoipa::path(
    post,
    path = crate::paths::INTROSPECT,
    tag = "oauth",
    description = "Token introspection (RFC 7662) of access and refresh tokens, for confidential clients \
(as at the token endpoint). Revocation and logout show at once.",
    request_body(content(
        (crate::oauth::schema::IntrospectionForm = "application/x-www-form-urlencoded"),
        (crate::oauth::schema::IntrospectionForm = "application/json"),
    )),
    responses(
        (status = 200, description = "`{\"active\": false}`, or the token's claims", body = crate::oauth::schema::Introspection),
        (status = 400, description = "`invalid_request` or `unsupported_token_type`", body = crate::api::openapi::OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = crate::api::openapi::OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = crate::api::openapi::OAuthErrorBody),
    ),
    security((), ("client_secret_basic" = [])),
)]
pub async fn introspect(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_params(&request, payload, state.settings.max_body_bytes).await?;
    // An access token's signature is checked first, so that its state is read in the same turn
    // at the database as the client; what was read counts only once the client authenticated.
    let keys = state.keys.current();
    let (claims, refused) = match params
        .get("token")
        .map(|token| access_token::verify(&keys, &state.settings.issuer, token))
    {
        Some(Ok(claims)) => (Some(claims), None),
        Some(Err(refused)) => (None, Some(refused)),
        None => (None, None),
    };
    let (client, read) = authenticate_with(
        &state,
        &request,
        &params,
        &state.settings.url_for(paths::INTROSPECT),
        move |conn| Ok(claims.map(|claims| (access_token::lookup(conn, &claims), claims))),
    )
    .await?;
    if client.auth_method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "A public client cannot introspect tokens: authenticate as a confidential client",
            false,
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let hint = params.get("token_type_hint");
    if !matches!(hint, None | Some("access_token") | Some("refresh_token")) {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            "token_type_hint must be access_token or refresh_token",
        ));
    }
    let judged = match read {
        Some((lookup, claims)) => access_token::judge(claims, lookup),
        None => Err(refused.unwrap_or(TokenError::Invalid)),
    };
    let body = match judged {
        Ok(active) => {
            let c = &active.claims;
            let mut body = json!({
                "active": true,
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "exp": c.exp,
                "iat": c.iat,
                "nbf": c.iat,
                "jti": c.jti,
                "token_type": "Bearer",
                "aud": c.aud,
                "iss": c.iss,
            });
            if let Some(username) = &active.username {
                body["username"] = json!(username);
            }
            if !c.roles.is_empty() {
                body["roles"] = json!(c.roles);
            }
            if !c.permissions.is_empty() {
                body["permissions"] = json!(c.permissions);
            }
            if let Some(sid) = &c.sid {
                body["sid"] = json!(sid);
            }
            body
        }
        Err(TokenError::Unavailable) => return Err(OAuthError::unavailable()),
        Err(TokenError::Invalid) => refresh_token_state(&state, token).await?,
        Err(_) => inactive(),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// The introspection of a refresh token: active while unused, unexpired and not revoked.
async fn refresh_token_state(state: &AppState, token: &str) -> Result<Value, OAuthError> {
    let hash = state.crypto.hash_token(token).0;
    let issuer = state.settings.issuer.clone();
    let found = state
        .store
        .run(move |conn| {
            let row = match rows::find_refresh_token(conn, &hash) {
                Ok(row) => row,
                Err(StoreError::NotFound) => return Ok(None),
                Err(other) => return Err(other),
            };
            let grant = rows::find_grant(conn, &row.grant_id)?;
            let user = users::find(conn, &grant.user_id)?;
            Ok(Some((row, grant, user)))
        })
        .await?;
    let Some((row, grant, user)) = found else {
        return Ok(inactive());
    };
    let at = now();
    if row.used_at.is_some()
        || grant.revoked_at.is_some()
        || row.expires_at <= at
        || user.status != "active"
    {
        return Ok(inactive());
    }
    Ok(json!({
        "active": true,
        "scope": grant.scope,
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "username": user.username,
        "exp": row.expires_at,
        "iat": row.created_at,
        "token_type": "refresh_token",
        "iss": issuer,
    }))
}
