//! API keys of service accounts: `/api/v1/admin/api-keys` for administrators (`api_keys:read`,
//! `api_keys:write`) and seed 003's `POST /api/v1/auth/token`, which exchanges a key for an
//! access token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::api_keys::{self, ExchangeError, NewApiKey};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{PageQuery, page_in_memory};
use crate::api::{Shown, created};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const READ: &[&str] = &["api_keys:read"];
    const WRITE: &[&str] = &["api_keys:write"];
    cfg.service(
        endpoint(paths::ADMIN_API_KEYS)
            .get_as(READ, list)
            .post_as(WRITE, create)
            .finish(),
    )
    .service(
        endpoint(paths::ADMIN_API_KEY)
            .get_as(READ, get)
            .delete_as(WRITE, revoke)
            .finish(),
    )
    .service(endpoint(paths::AUTH_TOKEN).post(token).finish());
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The page, from 1 (not with `offset` or `cursor`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// The page size, 1 to 100 (50 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A synonym of `limit`.
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
    /// Keys to skip (not with `page` or `cursor`).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Pages by key: empty for the first page, then the previous page's `next_cursor`.
    cursor: Option<String>,
    /// Only the keys of this service account.
    user_id: Option<String>,
}

/// `GET /admin/api-keys[?user_id=]`, oldest first.
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_API_KEYS,
    tag = "api-keys",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of keys, oldest first (never the keys themselves)", body = schema::ApiKeyList),
    ),
    security(("bearer" = ["api_keys:read"])),
)]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let paging = PageQuery {
        page: query.page,
        limit: query.limit,
        size: query.size,
        offset: query.offset,
        cursor: query.cursor,
    }
    .paging(50)?;
    let user_id = query.user_id;
    let all = state
        .store
        .run(move |conn| api_keys::list(conn, user_id.as_deref()))
        .await?;
    let (page, pagination) = page_in_memory(all, &paging, |(time, id, _)| (*time, id.as_str()));
    let keys: Vec<Value> = page.into_iter().map(|(_, _, view)| view).collect();
    Ok(HttpResponse::Ok().json(json!({"api_keys": keys, "pagination": pagination})))
}

/// `POST /admin/api-keys`: 201 with the key in `api_key`, shown only now.
#[utoipa::path(
    post,
    path = crate::paths::ADMIN_API_KEYS,
    tag = "api-keys",
    request_body = schema::NewApiKeyBody,
    responses(
        (status = 201, description = "The key, in `api_key`, shown only now", body = schema::ApiKeyCreated),
        (status = 403, description = "No `api_keys:write`, or scopes the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "`user_id` names no user", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["api_keys:write"])),
)]
async fn create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let crypto = state.crypto.clone();
    let view = state
        .store
        .write_or_refuse(move |conn| api_keys::create(conn, &crypto, &caller, body.0))
        .await??;
    let id = view["id"].as_str().unwrap_or_default();
    Ok(created(paths::ADMIN_API_KEYS, id, &view, Shown::SecretOnce))
}

/// `GET /admin/api-keys/{id}`.
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_API_KEY,
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key (never the key itself)", body = schema::ApiKeyView),
        (status = 404, description = "No key has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["api_keys:read"])),
)]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(api_keys::get(conn, &id)))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /admin/api-keys/{id}`: revokes the key and every token it produced.
#[utoipa::path(
    delete,
    path = crate::paths::ADMIN_API_KEY,
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked, with every token it produced", body = schema::ApiKeyRevoked),
        (status = 404, description = "No key has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "Already revoked", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["api_keys:write"])),
)]
async fn revoke(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let id = id.into_inner();
    let body = state
        .store
        .write_or_refuse(move |conn| api_keys::revoke(conn, &caller, &id))
        .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// Seed 003's exchange request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// The API key.
    #[schema(value_type = String)]
    api_key: SecretString,
    /// `client_credentials`.
    grant_type: String,
}

/// `POST /auth/token`: `{"api_key", "grant_type": "client_credentials"}` → an access token.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_TOKEN,
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "An access token of the key's service account, with the key's scopes", body = schema::KeyTokenBody),
        (status = 400, description = "`unsupported_grant_type`: `grant_type` must be `client_credentials`", body = crate::api::openapi::ApiErrorBody),
        (status = 401, description = "`invalid_api_key`: unknown, expired or revoked", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
async fn token(
    state: web::Data<AppState>,
    body: ApiJson<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    if request.grant_type != "client_credentials" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        ));
    }
    match api_keys::exchange(&state, request.api_key.expose_secret()).await {
        Ok(token) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"))
            .json(token)),
        Err(ExchangeError::Refused) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "The API key is invalid, expired or revoked",
        )),
        Err(ExchangeError::Internal(error)) => Err(error.into()),
    }
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, revoke, token))]
pub struct Doc;

/// The shapes of this module's bodies for the OpenAPI document (the views are built with
/// `json!` by `accounts::api_keys`; the input is `accounts::api_keys::NewApiKey`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// An API key (never the key or its hash).
    #[derive(ToSchema)]
    pub struct ApiKeyView {
        pub id: String,
        pub name: String,
        /// The key's first characters, to recognise it.
        pub key_prefix: String,
        /// The service account it acts as.
        pub user_id: String,
        pub username: String,
        pub scopes: Vec<String>,
        /// `active`, `expired` or `revoked`.
        pub status: String,
        pub created_by: Option<String>,
        pub created_at: Timestamp,
        pub expires_at: Option<Timestamp>,
        pub last_used_at: Option<Timestamp>,
        pub revoked_at: Option<Timestamp>,
    }

    /// A new key: the view and the key, once.
    #[derive(ToSchema)]
    pub struct ApiKeyCreated {
        #[serde(flatten)]
        pub view: ApiKeyView,
        /// The key: shown only in this response.
        pub api_key: String,
    }

    /// A page of keys.
    #[derive(ToSchema)]
    pub struct ApiKeyList {
        pub api_keys: Vec<ApiKeyView>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// A new key (mirrors `accounts::api_keys::NewApiKey`).
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NewApiKeyBody {
        /// A label for people.
        pub name: String,
        /// The permissions the key may use.
        pub scopes: Vec<String>,
        /// The service account the key acts as; one is created when absent.
        pub user_id: Option<String>,
        /// When the key stops working (RFC 3339)...
        pub expires_at: Option<String>,
        /// ...or in how many days (default 90, at most 3650).
        #[schema(minimum = 1, maximum = 3650)]
        pub expires_in_days: Option<i64>,
    }

    /// A revocation.
    #[derive(ToSchema)]
    pub struct ApiKeyRevoked {
        pub message: String,
        pub revoked_at: Timestamp,
    }

    /// The token of an exchanged key (mirrors `accounts::api_keys::KeyToken`).
    #[derive(ToSchema)]
    pub struct KeyTokenBody {
        pub access_token: String,
        /// `Bearer`.
        pub token_type: String,
        pub expires_in: u64,
        pub scope: String,
    }
}
