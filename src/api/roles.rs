//! Roles and the permission catalogue: `/api/v1/admin/roles` and `/api/v1/admin/permissions`
//! (seed 000), gated by `roles:read` and `roles:write`.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::roles::{self, RoleInput};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{ListQuery, page_in_memory};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::write_transaction;

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const READ: &[&str] = &["roles:read"];
    const WRITE: &[&str] = &["roles:write"];
    cfg.service(
        endpoint(paths::ADMIN_ROLES)
            .get_as(READ, list)
            .post_as(WRITE, create)
            .finish(),
    )
    .service(
        endpoint(paths::ADMIN_ROLE)
            .get_as(READ, get)
            .put_as(WRITE, update)
            .patch_as(WRITE, update)
            .delete_as(WRITE, delete)
            .finish(),
    )
    .service(
        endpoint(paths::ADMIN_PERMISSIONS)
            .get_as(READ, catalogue)
            .finish(),
    );
}

/// `GET /admin/roles`: every role with its permissions and user count.
async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = query.into_inner().paging()?;
    let all = state.store.run(roles::list).await?;
    let (page, pagination) = page_in_memory(all, &paging, |(time, id, _)| (*time, id.as_str()));
    let roles: Vec<Value> = page.into_iter().map(|(_, _, view)| view).collect();
    Ok(HttpResponse::Ok().json(json!({"roles": roles, "pagination": pagination})))
}

/// `POST /admin/roles`: 201 with the role.
async fn create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<RoleInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let view = state
        .store
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                roles::create(conn, &caller, body.0)
            }))
        })
        .await??;
    let location = format!(
        "{}/{}",
        paths::ADMIN_ROLES,
        view["id"].as_str().unwrap_or_default()
    );
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .json(view))
}

/// `GET /admin/roles/{id}` (the id or the name).
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(roles::view(conn, &id)))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT`/`PATCH /admin/roles/{id}`.
async fn update(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<RoleInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                roles::update(conn, &caller, &id, body.0)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

/// `DELETE /admin/roles/{id}` (`?force=true` for a role in use).
async fn delete(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (id, force) = (id.into_inner(), query.force);
    let body = state
        .store
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                roles::delete(conn, &caller, &id, force)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /admin/permissions`: the catalogue with its categories.
async fn catalogue(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.run(roles::catalogue).await?))
}
