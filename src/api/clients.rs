//! OAuth clients for administrators: `/api/v1/admin/clients`, gated by `clients:read` and
//! `clients:write`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::admin::clients::{self, ClientInput};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{ListQuery, page_in_memory};
use crate::api::{Shown, created};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const READ: &[&str] = &["clients:read"];
    const WRITE: &[&str] = &["clients:write"];
    cfg.service(
        endpoint(paths::ADMIN_CLIENTS)
            .get_as(READ, list)
            .post_as(WRITE, create)
            .finish(),
    )
    .service(
        endpoint(paths::ADMIN_CLIENT)
            .get_as(READ, get)
            .put_as(WRITE, replace)
            .patch_as(WRITE, patch)
            .delete_as(WRITE, delete)
            .finish(),
    )
    .service(
        endpoint(paths::ADMIN_CLIENT_ROTATE_SECRET)
            .post_as(WRITE, rotate_secret)
            .finish(),
    );
}

/// `GET /admin/clients`, oldest first.
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_CLIENTS,
    tag = "clients",
    params(crate::api::openapi::PagingParams),
    responses(
        (status = 200, description = "A page of clients, oldest first (the built-in one included)", body = schema::ClientList),
    ),
    security(("bearer" = ["clients:read"])),
)]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = query.into_inner().paging()?;
    let all = state.store.run(clients::list).await?;
    let (page, pagination) = page_in_memory(all, &paging, |(time, id, _)| (*time, id.as_str()));
    let clients: Vec<Value> = page.into_iter().map(|(_, _, view)| view).collect();
    Ok(HttpResponse::Ok().json(json!({"clients": clients, "pagination": pagination})))
}

/// `POST /admin/clients`: 201 with the client and, for a confidential one, its secret (once).
#[utoipa::path(
    post,
    path = crate::paths::ADMIN_CLIENTS,
    tag = "clients",
    request_body = ClientInput,
    responses(
        (status = 201, description = "The new client, with its secret (shown only now) for a confidential one", body = schema::AdminClientView),
        (status = 409, description = "A conflicting client", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member (RFC 7591 rules)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:write"])),
)]
async fn create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<ClientInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let handles = state.handles();
    let view = state
        .store
        .write_or_refuse(move |conn| clients::create(conn, &handles, &caller, body.0))
        .await??;
    state.cors_origins.invalidate();
    let id = view["client_id"].as_str().unwrap_or_default();
    Ok(created(paths::ADMIN_CLIENTS, id, &view, Shown::SecretOnce))
}

/// `GET /admin/clients/{id}`.
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_CLIENT,
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client (never its secret)", body = schema::AdminClientView),
        (status = 404, description = "No client has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:read"])),
)]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(clients::get(conn, &id)))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

async fn update(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: String,
    body: Value,
    patch: bool,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let handles = state.handles();
    let view = state
        .store
        .write_or_refuse(move |conn| clients::update(conn, &handles, &caller, &id, body, patch))
        .await??;
    state.cors_origins.invalidate();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// `PUT /admin/clients/{id}`: the whole registration (RFC 7592 §2.2).
#[utoipa::path(
    put,
    path = crate::paths::ADMIN_CLIENT,
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientInput,
    responses(
        (status = 200, description = "The client as registered now", body = schema::AdminClientView),
        (status = 404, description = "No client has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The built-in client, which cannot be changed", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:write"])),
)]
async fn replace(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<Value>,
) -> Result<HttpResponse, ApiError> {
    update(state, http, auth, id.into_inner(), body.0, false).await
}

/// `PATCH /admin/clients/{id}`: the members given; `null` removes an optional one.
#[utoipa::path(
    patch,
    path = crate::paths::ADMIN_CLIENT,
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientInput,
    responses(
        (status = 200, description = "The client as registered now", body = schema::AdminClientView),
        (status = 404, description = "No client has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The built-in client, which cannot be changed", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "An invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:write"])),
)]
async fn patch(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<Value>,
) -> Result<HttpResponse, ApiError> {
    update(state, http, auth, id.into_inner(), body.0, true).await
}

/// `DELETE /admin/clients/{id}`: its grants and tokens end with it.
#[utoipa::path(
    delete,
    path = crate::paths::ADMIN_CLIENT,
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "Deleted, with its grants and tokens", body = schema::ClientDeleted),
        (status = 404, description = "No client has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The built-in client, which cannot be deleted", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:write"])),
)]
async fn delete(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let body = state
        .store
        .write_or_refuse(move |conn| clients::delete(conn, &handles, &caller, &id))
        .await??;
    state.cors_origins.invalidate();
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /admin/clients/{id}/rotate-secret`: a new secret, shown once.
#[utoipa::path(
    post,
    path = crate::paths::ADMIN_CLIENT_ROTATE_SECRET,
    tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "A new secret, shown only now; the old one stops working", body = schema::SecretRotated),
        (status = 404, description = "No client has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The client does not authenticate with a secret (or is the built-in one)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["clients:write"])),
)]
async fn rotate_secret(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let body = state
        .store
        .write_or_refuse(move |conn| clients::rotate(conn, &handles, &caller, &id))
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, replace, patch, delete, rotate_secret))]
pub struct Doc;

/// The shapes of this module's bodies for the OpenAPI document (the view is
/// `oauth::clients::ClientView` plus `built_in`; the input is `admin::clients::ClientInput`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use serde_json::Value;
    use utoipa::ToSchema;

    /// A client as administrators see it (RFC 7591 member names).
    #[derive(ToSchema)]
    pub struct AdminClientView {
        pub client_id: String,
        /// Only in the response that created the secret.
        pub client_secret: Option<String>,
        pub client_name: String,
        /// `web` or `native`.
        pub application_type: String,
        pub redirect_uris: Vec<String>,
        pub post_logout_redirect_uris: Vec<String>,
        pub grant_types: Vec<String>,
        pub response_types: Vec<String>,
        pub token_endpoint_auth_method: String,
        pub scope: String,
        pub skip_consent: bool,
        pub require_pkce: bool,
        pub id_token_signed_response_alg: String,
        pub userinfo_signed_response_alg: Option<String>,
        pub backchannel_logout_uri: Option<String>,
        pub frontchannel_logout_uri: Option<String>,
        pub logo_uri: Option<String>,
        pub policy_uri: Option<String>,
        pub tos_uri: Option<String>,
        /// A JWK Set.
        #[schema(value_type = Option<Object>)]
        pub jwks: Option<Value>,
        pub jwks_uri: Option<String>,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        /// The first-party client of the JSON API, which cannot be changed here.
        pub built_in: bool,
    }

    /// A page of clients.
    #[derive(ToSchema)]
    pub struct ClientList {
        pub clients: Vec<AdminClientView>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// A deletion.
    #[derive(ToSchema)]
    pub struct ClientDeleted {
        pub message: String,
        pub deleted_at: Timestamp,
    }

    /// A new secret.
    #[derive(ToSchema)]
    pub struct SecretRotated {
        pub client_id: String,
        pub client_secret: String,
        pub rotated_at: Timestamp,
    }
}
