//! The UserInfo endpoint (OpenID Connect Core §5.3), GET and POST.
//!
//! Claims follow the token's scope and the grant's `claims` request; a client that registered
//! `userinfo_signed_response_alg` gets a signed JWT (`application/jwt`) instead of JSON.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::domain::now;
use crate::http::media_type;
use crate::oauth::access_token::{self, TokenError};
use crate::oauth::bearer::{self, BearerError};
use crate::oauth::clients::find_client;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::token::read_params;
use crate::oidc::claims::user_claims;
use crate::startup::AppState;
use crate::store::users;

/// The answer to a refused bearer token.
pub fn token_error(error: TokenError) -> OAuthError {
    match error {
        TokenError::Unavailable => OAuthError::unavailable(),
        other => OAuthError::bearer(Some(ErrorCode::InvalidToken), other.to_string()),
    }
}

/// The answer to a request whose bearer token could not be read.
pub fn bearer_error(error: BearerError) -> OAuthError {
    match error {
        BearerError::Missing => OAuthError::bearer(None, "An access token is required"),
        BearerError::Malformed => OAuthError::bearer(
            Some(ErrorCode::InvalidRequest),
            "The Authorization header must be: Bearer <token>",
        ),
        BearerError::Ambiguous => OAuthError::bearer(
            Some(ErrorCode::InvalidRequest),
            "Send the access token in one place only",
        ),
    }
}

/// `GET /oauth/userinfo`.
#[utoipa::path(
    get,
    path = crate::paths::USERINFO,
    tag = "oidc",
    description = "The UserInfo endpoint (OpenID Connect Core §5.3): the claims the token's scope and the \
grant's `claims` request allow. A client that registered `userinfo_signed_response_alg` gets a signed \
JWT instead of JSON.",
    responses(
        (status = 200, description = "The claims", content(
            (crate::oidc::schema::UserInfo = "application/json"),
            (String = "application/jwt"),
        )),
        (status = 400, description = "`invalid_request`: a malformed `Authorization` header, or the token sent twice", body = crate::api::openapi::OAuthErrorBody),
        (status = 401, description = "No token, or an invalid one (with `WWW-Authenticate: Bearer`, RFC 6750 §3)", body = crate::api::openapi::OAuthErrorBody),
        (status = 403, description = "`insufficient_scope`: the token lacks `openid` or is not a user's", body = crate::api::openapi::OAuthErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn userinfo_get(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, OAuthError> {
    let token = bearer::token(&request, None).map_err(bearer_error)?;
    respond(&state, &token).await
}

/// `POST /oauth/userinfo`: the token in the header or in the form body.
#[utoipa::path(
    post,
    path = crate::paths::USERINFO,
    tag = "oidc",
    description = "As `GET`; the access token may also come as the form parameter `access_token` (RFC 6750 §2.2).",
    request_body(content = Option<crate::oidc::schema::UserInfoForm>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The claims", content(
            (crate::oidc::schema::UserInfo = "application/json"),
            (String = "application/jwt"),
        )),
        (status = 400, description = "`invalid_request`: a malformed `Authorization` header, or the token sent twice", body = crate::api::openapi::OAuthErrorBody),
        (status = 401, description = "No token, or an invalid one (with `WWW-Authenticate: Bearer`)", body = crate::api::openapi::OAuthErrorBody),
        (status = 403, description = "`insufficient_scope`: the token lacks `openid` or is not a user's", body = crate::api::openapi::OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = crate::api::openapi::OAuthErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn userinfo_post(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = if media_type(&request) == "application/x-www-form-urlencoded" {
        read_params(&request, payload, state.settings.max_body_bytes).await?
    } else {
        Params::default()
    };
    let token = bearer::token(&request, params.get("access_token")).map_err(bearer_error)?;
    respond(&state, &token).await
}

async fn respond(state: &AppState, token: &str) -> Result<HttpResponse, OAuthError> {
    let keys = state.keys.current();
    // The account and client are read in the same turn as the token's state.
    let (active, account) = access_token::check_then(
        &state.store,
        &keys,
        &state.settings.issuer,
        token,
        |conn, claims| {
            if !claims.has_user() || !claims.scope().contains("openid") {
                return Ok(None);
            }
            let user = users::find(conn, &claims.sub)?;
            Ok(Some((user, find_client(conn, &claims.client_id)?)))
        },
    )
    .await
    .map_err(token_error)?;
    let Some((user, client)) = account else {
        return Err(OAuthError::bearer(
            Some(ErrorCode::InsufficientScope),
            "The access token was not granted the openid scope",
        ));
    };
    let scope = active.claims.scope();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    claims.extend(user_claims(
        &user,
        Some(&scope),
        &active.claims_request.userinfo,
    ));
    match client.and_then(|c| c.userinfo_signed_response_alg.map(|alg| (c.id, alg))) {
        Some((client_id, alg)) => {
            claims.insert("iss".into(), json!(state.settings.issuer));
            claims.insert("aud".into(), json!(client_id));
            claims.insert("iat".into(), json!(now()));
            let key = keys
                .active(alg)
                .ok_or_else(|| OAuthError::from(anyhow::anyhow!("no active {alg} key")))?;
            let jwt = key.sign_jwt("JWT", &Value::Object(claims))?;
            Ok(HttpResponse::Ok()
                .content_type("application/jwt")
                .insert_header(("Cache-Control", "no-store"))
                .body(jwt))
        }
        None => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(Value::Object(claims))),
    }
}
