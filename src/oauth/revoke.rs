//! `POST /oauth/revoke` (RFC 7009).
//!
//! A refresh token revokes its whole grant; an access token is revoked on its own (by `jti`)
//! until it expires. Unknown tokens, and tokens of other clients, get the same 200 (§2.2: the
//! answer must not tell an attacker which tokens exist).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::accounts::first_party::FIRST_PARTY_CLIENT_ID;
use crate::domain::now;
use crate::oauth::access_token;
use crate::oauth::client_auth::authenticate;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::token::read_params;
use crate::paths;
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::grants as rows;

/// `POST /oauth/revoke` (and `/api/v1/oauth/revoke`).
#[utoipa::path(
    post,
    path = crate::paths::REVOKE,
    tag = "oauth",
    description = "Token revocation (RFC 7009), also at `/api/v1/oauth/revoke`. A refresh token revokes its \
whole grant; an access token is revoked on its own. Unknown tokens and other clients' tokens get the \
same 200. Client authentication as at the token endpoint.",
    request_body(content(
        (crate::oauth::schema::RevocationForm = "application/x-www-form-urlencoded"),
        (crate::oauth::schema::RevocationForm = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked (or was not a token of this client)", body = crate::api::openapi::MessageBody),
        (status = 400, description = "`invalid_request` or `unsupported_token_type`", body = crate::api::openapi::OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = crate::api::openapi::OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = crate::api::openapi::OAuthErrorBody),
    ),
    security((), ("client_secret_basic" = [])),
)]
pub async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_params(&request, payload, state.settings.max_body_bytes).await?;
    let client = authenticate(
        &state,
        &request,
        &params,
        &state.settings.url_for(paths::REVOKE),
    )
    .await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?
        .to_owned();
    match params.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                format!("token_type_hint {other} is not supported"),
            ));
        }
    }
    // An access token is recognised by its signature; anything else is tried as a refresh token.
    let keys = state.keys.current();
    match access_token::verify(&keys, &state.settings.issuer, &token) {
        Ok(claims) if claims.client_id == client.id => {
            let (jti, exp) = (claims.jti.clone(), claims.exp);
            // A first-party access token can be renewed from itself (`/api/v1/auth/refresh`
            // with only a bearer token): revoking it must end what was renewed from it too,
            // so its whole grant goes.
            let renewable_grant = (claims.client_id == FIRST_PARTY_CLIENT_ID)
                .then(|| claims.gid.clone())
                .flatten();
            state
                .store
                .run(move |conn| {
                    rows::revoke_jti(conn, &jti, exp)?;
                    if let Some(grant_id) = &renewable_grant {
                        rows::revoke_grant(conn, grant_id, "access token revoked", now())?;
                    }
                    Ok(())
                })
                .await?;
            tracing::info!(client_id = %client.id, jti = %claims.jti, "access token revoked");
        }
        Ok(_) | Err(access_token::TokenError::Expired) => {}
        Err(_) => {
            let hash = state.crypto.hash_token(&token).0;
            let client_id = client.id.clone();
            let revoked = state
                .store
                .run(move |conn| match rows::find_refresh_token(conn, &hash) {
                    Ok(row) => {
                        let grant = rows::find_grant(conn, &row.grant_id)?;
                        if grant.client_id != client_id {
                            return Ok(None);
                        }
                        rows::revoke_grant(conn, &grant.id, "revoked by the client", now())?;
                        Ok(Some(grant.id))
                    }
                    Err(StoreError::NotFound) => Ok(None),
                    Err(other) => Err(other),
                })
                .await?;
            if let Some(grant_id) = revoked {
                tracing::info!(client_id = %client.id, %grant_id, "refresh token family revoked");
            }
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "message": "Token revoked successfully" })))
}
