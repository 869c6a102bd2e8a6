//! OAuth clients for administrators: `/api/v1/admin/clients`, gated by `clients:read` and
//! `clients:write`.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::admin::clients::{self, ClientInput};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{ListQuery, page_in_memory};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::write_transaction;

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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                clients::create(conn, &handles, &caller, body.0)
            }))
        })
        .await??;
    state.cors_origins.invalidate();
    let location = format!(
        "{}/{}",
        paths::ADMIN_CLIENTS,
        view["client_id"].as_str().unwrap_or_default()
    );
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// `GET /admin/clients/{id}`.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                clients::update(conn, &handles, &caller, &id, body, patch)
            }))
        })
        .await??;
    state.cors_origins.invalidate();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// `PUT /admin/clients/{id}`: the whole registration (RFC 7592 §2.2).
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                clients::delete(conn, &handles, &caller, &id)
            }))
        })
        .await??;
    state.cors_origins.invalidate();
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /admin/clients/{id}/rotate-secret`: a new secret, shown once.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                clients::rotate(conn, &handles, &caller, &id)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
