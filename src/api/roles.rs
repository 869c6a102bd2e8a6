//! Roles and the permission catalogue: `/api/v1/admin/roles` and `/api/v1/admin/permissions`
//! (seed 000), gated by `roles:read` and `roles:write`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::roles::{self, RoleInput};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::pagination::{ListQuery, page_in_memory};
use crate::api::{Shown, created};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;

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
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_ROLES,
    tag = "roles",
    params(crate::api::openapi::PagingParams),
    responses(
        (status = 200, description = "A page of roles, oldest first", body = schema::RoleList),
    ),
    security(("bearer" = ["roles:read"])),
)]
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
#[utoipa::path(
    post,
    path = crate::paths::ADMIN_ROLES,
    tag = "roles",
    request_body = schema::RoleInputBody,
    responses(
        (status = 201, description = "The new role (its URL in `Location`)", body = schema::RoleView),
        (status = 403, description = "No `roles:write`, or permissions the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "A role has this name", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["roles:write"])),
)]
async fn create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<RoleInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let view = state
        .store
        .write_or_refuse(move |conn| roles::create(conn, &caller, body.0))
        .await??;
    let id = view["id"].as_str().unwrap_or_default();
    Ok(created(paths::ADMIN_ROLES, id, &view, Shown::Plain))
}

/// `GET /admin/roles/{id}` (the id or the name).
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_ROLE,
    tag = "roles",
    params(("id" = String, Path, description = "The role's id or name")),
    responses(
        (status = 200, description = "The role", body = schema::RoleView),
        (status = 404, description = "No role has this id or name", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["roles:read"])),
)]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(roles::view(conn, &id)))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT`/`PATCH /admin/roles/{id}`.
#[utoipa::path(
    method(put, patch),
    path = crate::paths::ADMIN_ROLE,
    tag = "roles",
    params(("id" = String, Path, description = "The role's id or name")),
    request_body = schema::RoleInputBody,
    responses(
        (status = 200, description = "The changed role", body = schema::RoleView),
        (status = 403, description = "No `roles:write`, a built-in role, or permissions the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No role has this id or name", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "A role has this name", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "An invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["roles:write"])),
)]
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
        .write_or_refuse(move |conn| roles::update(conn, &caller, &id, body.0))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete a role that users hold (they lose it).
    #[serde(default)]
    force: bool,
}

/// `DELETE /admin/roles/{id}` (`?force=true` for a role in use).
#[utoipa::path(
    delete,
    path = crate::paths::ADMIN_ROLE,
    tag = "roles",
    params(("id" = String, Path, description = "The role's id or name"), DeleteQuery),
    responses(
        (status = 200, description = "Deleted; its holders lost it", body = schema::RoleDeleted),
        (status = 403, description = "No `roles:write`, or a built-in role", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No role has this id or name", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The role is held by users (use `force=true`)", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["roles:write"])),
)]
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
        .write_or_refuse(move |conn| roles::delete(conn, &caller, &id, force))
        .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /admin/permissions`: the catalogue with its categories.
#[utoipa::path(
    get,
    path = crate::paths::ADMIN_PERMISSIONS,
    tag = "roles",
    responses(
        (status = 200, description = "Every permission known, with its category", body = schema::PermissionCatalogue),
    ),
    security(("bearer" = ["roles:read"])),
)]
async fn catalogue(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.run(roles::catalogue).await?))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, update, delete, catalogue))]
pub struct Doc;

/// The shapes of this module's bodies for the OpenAPI document (built with `json!` by
/// `admin::roles`; the input is `admin::roles::RoleInput`).
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// A role.
    #[derive(ToSchema)]
    pub struct RoleView {
        pub id: String,
        pub name: String,
        pub description: Option<String>,
        pub permissions: Vec<String>,
        /// Users holding it.
        pub user_count: i64,
        /// `admin` and `user` are built in.
        pub built_in: bool,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
    }

    /// A page of roles.
    #[derive(ToSchema)]
    pub struct RoleList {
        pub roles: Vec<RoleView>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// A new role, or changes to one (absent members stay; `null` clears `description`).
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RoleInputBody {
        /// 2 to 64 lower-case letters, digits, `_`, `-` or `.`.
        pub name: Option<String>,
        pub description: Option<String>,
        /// `resource:action` permissions (`*` for all).
        pub permissions: Option<Vec<String>>,
    }

    /// A deletion.
    #[derive(ToSchema)]
    pub struct RoleDeleted {
        pub message: String,
        /// Users who held the role.
        pub users_affected: i64,
    }

    /// A permission of the catalogue.
    #[derive(ToSchema)]
    pub struct PermissionEntry {
        pub name: String,
        pub description: Option<String>,
        pub category: String,
        pub built_in: bool,
    }

    /// The permission catalogue.
    #[derive(ToSchema)]
    pub struct PermissionCatalogue {
        pub permissions: Vec<PermissionEntry>,
        pub categories: Vec<String>,
    }
}
