//! API keys of service accounts: `/api/v1/admin/api-keys` for administrators (`api_keys:read`,
//! `api_keys:write`) and seed 003's `POST /api/v1/auth/token`, which exchanges a key for an
//! access token.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::api_keys::{self, ExchangeError, NewApiKey};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{PageQuery, page_in_memory};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::write_transaction;

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    page: Option<i64>,
    limit: Option<i64>,
    size: Option<i64>,
    offset: Option<i64>,
    cursor: Option<String>,
    user_id: Option<String>,
}

/// `GET /admin/api-keys[?user_id=]`, oldest first.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                api_keys::create(conn, &crypto, &caller, body.0)
            }))
        })
        .await??;
    let location = format!(
        "{}/{}",
        paths::ADMIN_API_KEYS,
        view["id"].as_str().unwrap_or_default()
    );
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// `GET /admin/api-keys/{id}`.
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(api_keys::get(conn, &id)))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /admin/api-keys/{id}`: revokes the key and every token it produced.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                api_keys::revoke(conn, &caller, &id)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// Seed 003's exchange request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    api_key: SecretString,
    grant_type: String,
}

/// `POST /auth/token`: `{"api_key", "grant_type": "client_credentials"}` → an access token.
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
