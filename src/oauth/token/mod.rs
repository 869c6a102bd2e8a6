//! `POST /oauth/token`: client authentication, then one grant per file.

mod authorization_code;
mod client_credentials;
pub mod refresh_token;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::http::{BodyError, media_type, read_body};
use crate::oauth::client_auth::authenticate;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::paths;
use crate::startup::AppState;

/// The successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds the refresh token stays valid (as seed 000 and Keycloak report it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

impl TokenResponse {
    fn into_http(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"))
            .json(self)
    }
}

/// Reads the parameters of a protocol POST: a form (or, as seeds 000 and 002 send them, a
/// JSON object), never with a parameter repeated.
pub async fn read_params(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Params, OAuthError> {
    let body = read_body(payload, limit).await.map_err(|e| match e {
        BodyError::TooLarge => OAuthError::too_large(),
        BodyError::Broken => OAuthError::invalid_request("The request body could not be read"),
    })?;
    let params = match media_type(request).as_str() {
        "application/x-www-form-urlencoded" => Params::from_urlencoded(&body),
        "application/json" => Params::from_json(&body).map_err(OAuthError::invalid_request)?,
        "" if body.is_empty() => Params::default(),
        other => {
            return Err(OAuthError::invalid_request(format!(
                "Unsupported content type {other}: use application/x-www-form-urlencoded"
            )));
        }
    };
    if let Some(repeated) = params.repeated() {
        return Err(OAuthError::invalid_request(format!(
            "The parameter {} is repeated",
            repeated.0
        )));
    }
    if let Some(name) = params.with_nul() {
        return Err(OAuthError::invalid_request(format!(
            "The parameter {name} holds a NUL character"
        )));
    }
    Ok(params)
}

/// `POST /oauth/token` (and `/api/v1/oauth/token`).
#[utoipa::path(
    post,
    path = crate::paths::TOKEN,
    tag = "oauth",
    description = "The token endpoint (RFC 6749 §3.2), also at `/api/v1/oauth/token`. Grants: \
`authorization_code` (with PKCE), `refresh_token` (rotated on every use; reuse revokes the family) and \
`client_credentials`.\n\nClient authentication: `client_secret_basic` (HTTP Basic, the id and secret \
form-urlencoded), `client_secret_post` (`client_id` and `client_secret` in the body), `private_key_jwt` \
(`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a `client_assertion` \
signed with a key of the client's `jwks` or `jwks_uri`, audience this endpoint), or `none` for public \
clients (only `client_id`). The body may also be a JSON object (seeds 000 and 002).",
    request_body(content(
        (crate::oauth::schema::TokenForm = "application/x-www-form-urlencoded"),
        (crate::oauth::schema::TokenForm = "application/json"),
    )),
    responses(
        (status = 200, description = "Tokens (RFC 6749 §5.1; `id_token` with the `openid` scope)", body = crate::oauth::schema::TokenResponseBody),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type` or `invalid_scope`", body = crate::api::openapi::OAuthErrorBody),
        (status = 401, description = "`invalid_client` (with `WWW-Authenticate: Basic` when Basic was used)", body = crate::api::openapi::OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = crate::api::openapi::OAuthErrorBody),
    ),
    security((), ("client_secret_basic" = [])),
)]
pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_params(&request, payload, state.settings.max_body_bytes).await?;
    let endpoint_url = state.settings.url_for(paths::TOKEN);
    let grant_type = params.get("grant_type");
    let response = if grant_type == Some("refresh_token") {
        // Authenticates the client in the same write as the rotation.
        let actor = crate::api::extract::actor(&request, None);
        refresh_token::authenticate_and_refresh(&state, &request, &params, &endpoint_url, actor)
            .await?
    } else {
        let client = authenticate(&state, &request, &params, &endpoint_url).await?;
        match grant_type {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("authorization_code") => {
                authorization_code::exchange(&state, &client, &params).await?
            }
            Some("client_credentials") => {
                client_credentials::issue(&state, &client, &params).await?
            }
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("The grant type {other} is not supported"),
                ));
            }
        }
    };
    let grant_type = grant_type.unwrap_or_default();
    state.metrics.token_issued(grant_type);
    Ok(response.into_http())
}
