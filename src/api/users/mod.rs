//! The users resource: `/api/v1/users` (seeds 001 and 003) and `/api/v1/admin/users`
//! (seed 000), one set of handlers gated by `users:read`, `users:write` and `users:delete`.

mod bulk_ops;
mod export;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::policy::check_new_password;
use crate::admin::users::{self as admin, Include, UserInput, VIEW_FIELDS};
use crate::admin::{AdminError, activity};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated, OptionalJson};
use crate::api::pagination::{Cursor, PageQuery, Paging, cursor_json, offset_json};
use crate::api::{Shown, created};
use crate::domain::{
    Condition, QueryError, SortField, Timestamp, UserField, equals, now, parse_fields,
    parse_filters, parse_sort,
};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::user_search::{self, SortValue, UserQuery, Window};
use bulk_ops::{bulk_actions, bulk_create, bulk_delete};
use export::export;

/// The routes, under both bases. Ids are UUIDs, so `/users/search`, `/users/bulk` and the
/// other named paths never reach the `{id}` routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    const READ: &[&str] = &["users:read"];
    const WRITE: &[&str] = &["users:write"];
    const DELETE: &[&str] = &["users:delete"];
    cfg.service(endpoint(paths::USERS_SEARCH).get_as(READ, list).finish())
        .service(endpoint(paths::USERS_EXPORT).get_as(READ, export).finish())
        .service(
            endpoint(paths::USERS_BULK)
                .post_as(WRITE, bulk_create)
                .delete_as(DELETE, bulk_delete)
                .finish(),
        )
        .service(
            endpoint(paths::USERS_BULK_ACTIONS)
                .post_as(WRITE, bulk_actions)
                .finish(),
        )
        .service(
            endpoint(paths::ADMIN_USER_PERMISSIONS)
                .put_as(&["users:write", "roles:write"], set_permissions)
                .finish(),
        );
    for base in [paths::USERS, paths::ADMIN_USERS] {
        let one = format!("{base}/{{id:[0-9a-fA-F-]{{36}}}}");
        cfg.service(
            endpoint(base)
                .get_as(READ, list)
                .post_as(WRITE, create)
                .finish(),
        )
        .service(
            endpoint(&one)
                .get_as(READ, get)
                .put_as(WRITE, update)
                .patch_as(WRITE, update)
                .delete_as(DELETE, delete)
                .finish(),
        )
        .service(
            endpoint(&format!("{one}/lock"))
                .post_as(WRITE, lock)
                .finish(),
        )
        .service(
            endpoint(&format!("{one}/unlock"))
                .post_as(WRITE, unlock)
                .finish(),
        )
        .service(
            endpoint(&format!("{one}/preferences"))
                .put_as(WRITE, set_preferences)
                .finish(),
        )
        .service(
            endpoint(&format!("{one}/activity"))
                .get_as(READ, get_activity)
                .finish(),
        );
    }
}

fn query_error(error: QueryError) -> ApiError {
    ApiError::validation(vec![FieldError::new(error.field, error.message)])
}

/// The parameters of the lists and of `/users/search`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The page, from 1 (not with `offset` or `cursor`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// The page size, 1 to 100 (50 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A synonym of `limit`.
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
    /// Users to skip (not with `page` or `cursor`).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Pages by key: empty for the first page, then the previous page's `next_cursor`.
    cursor: Option<String>,
    /// Words to find in the names and the address (`q` in seed 003's search).
    search: Option<String>,
    /// A synonym of `search`.
    q: Option<String>,
    /// Only holders of this role.
    role: Option<String>,
    /// Only users with this status.
    status: Option<String>,
    /// Sort fields, comma-separated, each optionally prefixed with `-` for descending.
    sort: Option<String>,
    /// `asc` or `desc`.
    order: Option<String>,
    /// The members to return, comma-separated.
    fields: Option<String>,
    /// `roles`, `permissions` and/or `preferences`, comma-separated.
    include: Option<String>,
    /// Seed 003's JSON filter object.
    filters: Option<String>,
    /// Lists soft-deleted users too.
    include_deleted: Option<bool>,
}

struct ListSpec {
    query: UserQuery,
    paging: Paging,
    fields: Option<Vec<String>>,
    include: Include,
}

/// The conditions of the `role`, `status` and `filters` parameters.
pub(super) fn conditions(
    filters: Option<&str>,
    role: Option<String>,
    status: Option<String>,
) -> Result<Vec<Condition>, ApiError> {
    let mut conditions = match filters {
        Some(text) => parse_filters(text).map_err(query_error)?,
        None => Vec::new(),
    };
    if let Some(role) = role.filter(|r| !r.is_empty()) {
        conditions.push(equals(UserField::Role, &role, "role").map_err(query_error)?);
    }
    if let Some(status) = status.filter(|s| !s.is_empty()) {
        conditions.push(equals(UserField::Status, &status, "status").map_err(query_error)?);
    }
    Ok(conditions)
}

/// `search` and its seed 003 spelling `q`.
pub(super) fn search_words(
    search: Option<String>,
    q: Option<String>,
) -> Result<Option<String>, ApiError> {
    match (search, q) {
        (Some(a), Some(b)) if a != b => Err(ApiError::bad_request("search and q disagree")),
        (Some(s), _) | (None, Some(s)) => Ok(Some(s).filter(|s| !s.trim().is_empty())),
        (None, None) => Ok(None),
    }
}

impl ListQuery {
    fn parse(self) -> Result<ListSpec, ApiError> {
        let paging = PageQuery {
            page: self.page,
            limit: self.limit,
            size: self.size,
            offset: self.offset,
            cursor: self.cursor,
        }
        .paging(50)?;
        let conditions = conditions(self.filters.as_deref(), self.role, self.status)?;
        let sort = parse_sort(self.sort.as_deref(), self.order.as_deref()).map_err(query_error)?;
        if matches!(paging, Paging::Cursor { .. }) && sort.len() > 1 {
            return Err(ApiError::bad_request(
                "A cursor pages by one sort key: give a single sort field",
            ));
        }
        let search = search_words(self.search, self.q)?;
        Ok(ListSpec {
            query: UserQuery {
                search,
                conditions,
                include_deleted: self.include_deleted.unwrap_or(false),
                sort,
            },
            paging,
            fields: parse_fields(self.fields.as_deref(), VIEW_FIELDS).map_err(query_error)?,
            include: Include::parse(self.include.as_deref())?,
        })
    }
}

fn cursor_value(field: SortField, cursor: &Cursor) -> Result<SortValue, ApiError> {
    let value = if field.is_time() {
        cursor.key.as_i64().map(SortValue::Int)
    } else {
        cursor.key.as_str().map(|s| SortValue::Text(s.to_owned()))
    };
    value.ok_or_else(|| ApiError::bad_request("The cursor belongs to another sort order"))
}

fn cursor_key(value: SortValue) -> Value {
    match value {
        SortValue::Int(i) => json!(i),
        SortValue::Text(t) => json!(t),
    }
}

/// `GET /users`, `GET /admin/users`, `GET /users/search`.
#[utoipa::path(
    get,
    path = crate::paths::USERS,
    tag = "users",
    description = "Also at `GET /api/v1/users/search` (seed 003) and `GET /api/v1/admin/users` (seed 000).",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users", body = schema::UserList),
        (status = 422, description = "A bad `filters`, `sort`, `fields`, `include`, `role` or `status`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:read"])),
)]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let spec = query.into_inner().parse()?;
    let sort_key = spec.query.sort[0];
    let window = match &spec.paging {
        Paging::Offset { offset, limit, .. } => Window::Offset {
            offset: *offset,
            limit: *limit,
        },
        Paging::Cursor { after, limit } => Window::After {
            key: after
                .as_ref()
                .map(|c| cursor_value(sort_key.field, c))
                .transpose()?,
            id: after.as_ref().map(|c| c.id.clone()),
            // One more than asked, to know whether there is a next page.
            limit: limit + 1,
        },
    };
    let (query, include) = (spec.query, spec.include);
    let (total, mut users) = state
        .store
        .run(move |conn| {
            let at = now();
            let total = user_search::count(conn, &query, at)?;
            Ok((total, user_search::page(conn, &query, &window, at)?))
        })
        .await?;
    let pagination = match spec.paging {
        Paging::Offset {
            offset,
            limit,
            page,
        } => offset_json(offset, limit, page, total),
        Paging::Cursor { limit, .. } => {
            let more = users.len() as i64 > limit;
            users.truncate(limit as usize);
            let next = users.last().filter(|_| more).map(|last| Cursor {
                key: cursor_key(user_search::sort_value(sort_key.field, &last.row)),
                id: last.row.id.clone(),
            });
            cursor_json(limit, next.as_ref(), total)
        }
    };
    let views = state
        .store
        .run(move |conn| admin::views(conn, &users, include))
        .await?;
    let fields = spec.fields;
    let views: Vec<Value> = views
        .into_iter()
        .map(|v| admin::project(v, fields.as_deref()))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"users": views, "pagination": pagination})))
}

/// Checks a new password against the policy, naming the account's own words.
fn check_password(
    state: &AppState,
    password: &secrecy::SecretString,
    words: &[&str],
    field: &str,
) -> Result<(), AdminError> {
    use secrecy::ExposeSecret;
    check_new_password(
        password.expose_secret(),
        words,
        state.settings.accounts.password_min_strength,
    )
    .map_err(|message| AdminError::invalid(field, message))
}

/// Validates a new user and hashes its password (off the executor).
pub(super) async fn prepare(
    state: &AppState,
    input: UserInput,
) -> Result<(admin::UserSpec, Option<String>, bool), AdminError> {
    let (spec, password, welcome) = input.validate(true)?;
    let hash = match password {
        Some(password) => {
            let words: Vec<&str> = [
                spec.username.as_ref().map(|u| u.as_str()),
                spec.email.as_ref().map(|e| e.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            check_password(state, &password, &words, "password")?;
            Some(
                state
                    .passwords
                    .hash(password)
                    .await
                    .map_err(|e| AdminError::Store(crate::store::StoreError::Corrupt(e)))?,
            )
        }
        None => None,
    };
    Ok((spec, hash, welcome))
}

/// `POST /users`: 201 with the new user and its `Location`.
#[utoipa::path(
    post,
    path = crate::paths::USERS,
    tag = "users",
    request_body = schema::UserInputBody,
    responses(
        (status = 201, description = "The new user (its URL in `Location`)", body = schema::UserView),
        (status = 403, description = "No `users:write`, or roles or permissions the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The username or the address is taken", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing or invalid member, or a weak password", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
async fn create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<UserInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (spec, hash, welcome) = prepare(&state, body.0).await?;
    let handles = state.handles();
    let view = state
        .store
        .write_or_refuse(move |conn| admin::create(conn, &handles, &caller, spec, hash, welcome))
        .await??;
    let id = view["id"].as_str().unwrap_or_default();
    Ok(created(paths::USERS, id, &view, Shown::Plain))
}

/// `include` and `fields` of a single user.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ViewQuery {
    /// `roles`, `permissions` and/or `preferences`, comma-separated.
    include: Option<String>,
    /// The members to return, comma-separated.
    fields: Option<String>,
}

/// `GET /users/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)"), ViewQuery),
    responses(
        (status = 200, description = "The user (the members of `fields` only, when given)", body = schema::UserView),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A bad `fields` or `include`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:read"])),
)]
async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ViewQuery>,
) -> Result<HttpResponse, ApiError> {
    let include = Include::parse(query.include.as_deref())?;
    let fields = parse_fields(query.fields.as_deref(), VIEW_FIELDS).map_err(query_error)?;
    let id = id.into_inner();
    let view = state
        .store
        .run(move |conn| Ok(admin::view(conn, &id, include)))
        .await??;
    Ok(HttpResponse::Ok().json(admin::project(view, fields.as_deref())))
}

/// `PUT` and `PATCH /users/{id}`: members given are changed, others stay (seed 003 allows a
/// partial `PUT`).
#[utoipa::path(
    method(put, patch),
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    request_body = schema::UserInputBody,
    responses(
        (status = 200, description = "The changed user", body = schema::UserView),
        (status = 403, description = "No `users:write`, or a role or permission the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The username or the address is taken, or the change would leave no active holder of `*`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "An invalid member", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
async fn update(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<UserInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (spec, _, _) = body.0.validate(false)?;
    let (handles, id) = (state.handles(), id.into_inner());
    let view = state
        .store
        .write_or_refuse(move |conn| admin::update(conn, &handles, &caller, &id, spec, None))
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Keep a tombstone (status `deleted`, restorable) rather than erase the user.
    #[serde(default)]
    soft_delete: bool,
}

/// `DELETE /users/{id}` (`?soft_delete=true` keeps a tombstone).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)"), DeleteQuery),
    responses(
        (status = 200, description = "Deleted (or, with `soft_delete`, marked deleted)", body = schema::UserDeleted),
        (status = 403, description = "No `users:delete`, or the caller themself", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The last active holder of `*`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:delete"])),
)]
async fn delete(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (handles, id, soft) = (state.handles(), id.into_inner(), query.soft_delete);
    let deleted = state
        .store
        .write_or_refuse(move |conn| admin::delete(conn, &handles, &caller, &id, soft))
        .await??;
    Ok(HttpResponse::Ok().json(deleted))
}

/// The body of a lock.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LockBody {
    /// Why (at most 500 characters).
    #[schema(max_length = 500)]
    reason: Option<String>,
    /// How long, 1 to 525600 minutes; without it the lock lasts until an unlock.
    #[schema(minimum = 1, maximum = 525600)]
    duration_minutes: Option<i64>,
}

/// `POST /users/{id}/lock`: ends the user's sessions; without `duration_minutes` the lock
/// lasts until an unlock.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/lock",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    request_body(content = Option<LockBody>, description = "Optional"),
    responses(
        (status = 200, description = "Locked; the user's sessions ended", body = schema::UserLocked),
        (status = 403, description = "No `users:write`, or the caller themself", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 409, description = "The last active holder of `*`", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "`duration_minutes` out of range or `reason` too long", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
async fn lock(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: OptionalJson<LockBody>,
) -> Result<HttpResponse, ApiError> {
    let LockBody {
        reason,
        duration_minutes,
    } = body.0;
    if duration_minutes.is_some_and(|m| !(1..=525_600).contains(&m)) {
        return Err(ApiError::validation(vec![FieldError::new(
            "duration_minutes",
            "must be 1 to 525600 (a year)",
        )]));
    }
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let until = state
        .store
        .write_or_refuse(move |conn| {
            admin::lock(
                conn,
                &handles,
                &caller,
                &id,
                reason.as_deref(),
                duration_minutes,
            )
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({
        "message": "User account locked successfully",
        "locked_until": until.map(Timestamp),
    })))
}

/// `POST /users/{id}/unlock`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/unlock",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    responses(
        (status = 200, description = "Unlocked, failure count cleared", body = crate::api::openapi::MessageBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
async fn unlock(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let id = id.into_inner();
    state
        .store
        .write_or_refuse(move |conn| admin::unlock(conn, &caller, &id))
        .await??;
    Ok(HttpResponse::Ok().json(json!({"message": "User account unlocked successfully"})))
}

/// `PUT /users/{id}/preferences`: replaces the preferences object.
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/preferences",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    request_body(content = Object, description = "The new preferences object (at most 16 KiB)"),
    responses(
        (status = 200, description = "The preferences as stored", body = schema::Preferences),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "Not an object, or too large", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
async fn set_preferences(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<Value>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let preferences = state
        .store
        .write_or_refuse(move |conn| admin::set_preferences(conn, &handles, &caller, &id, body.0))
        .await??;
    Ok(HttpResponse::Ok().json(json!({"preferences": preferences})))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ActivityQuery {
    /// The latest entries to return, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// `GET /users/{id}/activity` (seed 003).
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/activity",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)"), ActivityQuery),
    responses(
        (status = 200, description = "A summary of the user's sign-ins and their latest audit entries", body = schema::Activity),
        (status = 400, description = "`limit` out of range", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:read"])),
)]
async fn get_activity(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 100"));
    }
    let id = id.into_inner();
    let body = state
        .store
        .run(move |conn| Ok(activity::activity(conn, &id, limit)))
        .await??;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PermissionsBody {
    permissions: Vec<String>,
}

/// `PUT /admin/users/{id}/permissions` (seed 001): the user's direct permissions.
#[utoipa::path(
    put,
    path = crate::paths::ADMIN_USER_PERMISSIONS,
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)")),
    request_body = PermissionsBody,
    responses(
        (status = 200, description = "The user's direct permissions as stored", body = schema::PermissionsSet),
        (status = 403, description = "Missing `users:write` or `roles:write`, or a permission the caller does not hold", body = crate::api::openapi::ApiErrorBody),
        (status = 404, description = "No user has this id", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A permission that is not `resource:action`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write", "roles:write"])),
)]
async fn set_permissions(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    id: web::Path<String>,
    body: ApiJson<PermissionsBody>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let permissions = state
        .store
        .write_or_refuse(move |conn| {
            admin::set_permissions(conn, &handles, &caller, &id, &body.0.permissions)
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({
        "message": "Permissions updated successfully",
        "permissions": permissions,
    })))
}

/// This module's operations, for the OpenAPI document (also served under
/// `/api/v1/admin/users`, which the document adds).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get,
    update,
    delete,
    lock,
    unlock,
    set_preferences,
    get_activity,
    set_permissions,
    bulk_ops::bulk_create,
    bulk_ops::bulk_actions,
    bulk_ops::bulk_delete,
    export::export
))]
pub struct Doc;

/// The shapes of this module's bodies for the OpenAPI document: the user view is built with
/// `json!` by `admin::users`, and the input is `admin::users::UserInput`.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use serde_json::Value;
    use utoipa::ToSchema;

    /// A role with its permissions (`include=roles`).
    #[derive(ToSchema)]
    pub struct UserRole {
        pub id: String,
        pub name: String,
        pub description: Option<String>,
        pub permissions: Vec<String>,
    }

    /// A role of a user: its name, or (with `include=roles`) the role.
    #[derive(ToSchema)]
    #[serde(untagged)]
    pub enum UserRoleItem {
        Name(String),
        Detailed(UserRole),
    }

    /// A user as administrators see it. A `fields` projection keeps only the members it names,
    /// so none is required.
    #[derive(ToSchema)]
    pub struct UserView {
        #[schema(required = false)]
        pub id: String,
        #[schema(required = false)]
        pub username: String,
        #[schema(required = false)]
        pub email: String,
        #[schema(required = false)]
        pub first_name: Option<String>,
        #[schema(required = false)]
        pub last_name: Option<String>,
        #[schema(required = false)]
        pub display_name: Option<String>,
        /// The first role.
        #[schema(required = false)]
        pub role: Option<String>,
        #[schema(required = false)]
        pub roles: Vec<UserRoleItem>,
        #[schema(value_type = Object, required = false)]
        pub metadata: Value,
        #[schema(required = false)]
        pub is_active: bool,
        /// `active`, `inactive`, `suspended`, `locked` or `deleted`.
        #[schema(required = false)]
        pub status: String,
        #[schema(required = false)]
        pub email_verified: bool,
        #[schema(required = false)]
        pub mfa_enabled: bool,
        /// `person` or `service` (service accounts of API keys).
        #[schema(required = false)]
        pub kind: String,
        /// Failed sign-ins since the last success.
        #[schema(required = false)]
        pub login_attempts: i64,
        #[schema(required = false)]
        pub locked_until: Option<Timestamp>,
        #[schema(required = false)]
        pub lock_reason: Option<String>,
        #[schema(required = false)]
        pub last_login: Option<Timestamp>,
        #[schema(required = false)]
        pub created_at: Timestamp,
        #[schema(required = false)]
        pub updated_at: Timestamp,
        #[schema(required = false)]
        pub deleted_at: Option<Timestamp>,
        /// Effective permissions (`include=permissions`, and after a create or update).
        #[schema(required = false)]
        pub permissions: Vec<String>,
        /// Permissions given to the user directly.
        #[schema(required = false)]
        pub direct_permissions: Vec<String>,
        /// `include=preferences`, and after a create or update.
        #[schema(value_type = Object, required = false)]
        pub preferences: Value,
    }

    /// A page of users.
    #[derive(ToSchema)]
    pub struct UserList {
        pub users: Vec<UserView>,
        pub pagination: crate::api::openapi::Pagination,
    }

    /// What an administrator sends about a user (mirrors `admin::users::UserInput`): to create
    /// one, or to change the members given (`null` clears a nullable one).
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct UserInputBody {
        pub username: Option<String>,
        pub email: Option<String>,
        /// The first password (creation only).
        pub password: Option<String>,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub display_name: Option<String>,
        /// One role (seeds 001 and 003).
        pub role: Option<String>,
        /// The roles (seed 000).
        pub roles: Option<Vec<String>>,
        /// Direct permissions.
        pub permissions: Option<Vec<String>>,
        /// `active`, `inactive`, `suspended` or `locked`.
        pub status: Option<String>,
        /// `true` is `status: active`, `false` is `status: inactive`.
        pub is_active: Option<bool>,
        pub email_verified: Option<bool>,
        #[schema(value_type = Option<Object>)]
        pub metadata: Option<Value>,
        #[schema(value_type = Option<Object>)]
        pub preferences: Option<Value>,
        /// Mail the new user a welcome.
        pub send_welcome_email: Option<bool>,
    }

    /// A deletion.
    #[derive(ToSchema)]
    pub struct UserDeleted {
        pub message: String,
        pub deleted_at: Timestamp,
        pub soft_delete: bool,
    }

    /// A lock.
    #[derive(ToSchema)]
    pub struct UserLocked {
        pub message: String,
        /// `null` for a lock without an end.
        pub locked_until: Option<Timestamp>,
    }

    /// Preferences as stored.
    #[derive(ToSchema)]
    pub struct Preferences {
        #[schema(value_type = Object)]
        pub preferences: Value,
    }

    /// Direct permissions as stored.
    #[derive(ToSchema)]
    pub struct PermissionsSet {
        pub message: String,
        pub permissions: Vec<String>,
    }

    /// A summary of a user's sign-ins.
    #[derive(ToSchema)]
    pub struct ActivitySummary {
        pub total_logins: i64,
        pub last_login: Option<Timestamp>,
        /// Seconds, over the user's sessions.
        pub average_session_duration: Option<i64>,
        /// `monday` ... `sunday`.
        pub most_active_day: Option<String>,
        /// `HH:00-HH:00` (UTC).
        pub preferred_login_time: Option<String>,
    }

    /// An audit entry by or about the user.
    #[derive(ToSchema)]
    pub struct ActivityEntry {
        pub id: String,
        pub event: String,
        pub resource: String,
        pub resource_id: Option<String>,
        /// Whether the user did it.
        pub by_user: bool,
        pub timestamp: Timestamp,
        pub ip_address: Option<String>,
        pub user_agent: Option<String>,
        /// The names of the fields changed.
        pub changes: Option<Vec<String>>,
    }

    /// Seed 003's activity.
    #[derive(ToSchema)]
    pub struct Activity {
        pub user_id: String,
        pub activity_summary: ActivitySummary,
        pub recent_activities: Vec<ActivityEntry>,
    }

    /// One item of a bulk creation.
    #[derive(ToSchema)]
    pub struct BulkItem {
        /// The position in `users`.
        pub index: u64,
        pub success: bool,
        /// `{id, username, email, status, roles}` of the created user.
        #[schema(value_type = Option<Object>)]
        pub user: Option<Value>,
        pub error: Option<BulkItemError>,
    }

    /// Why one item failed.
    #[derive(ToSchema)]
    pub struct BulkItemError {
        /// `validation_error`, `conflict`, `forbidden`, `not_found` or `rolled_back`.
        pub code: String,
        pub message: String,
        pub details: Option<Vec<crate::api::openapi::FieldErrorBody>>,
    }

    /// Counts of a bulk creation.
    #[derive(ToSchema)]
    pub struct BulkSummary {
        pub total: u64,
        pub successful: u64,
        pub failed: u64,
    }

    /// The outcome of a bulk creation.
    #[derive(ToSchema)]
    pub struct BulkCreated {
        pub results: Vec<BulkItem>,
        pub summary: BulkSummary,
    }

    /// A refused bulk creation: the per-item outcome when no user was created, or the error
    /// form when the request itself was refused.
    #[derive(ToSchema)]
    #[serde(untagged)]
    pub enum BulkRefused {
        Outcome(BulkCreated),
        Error(crate::api::openapi::ApiErrorBody),
    }

    /// One user a bulk action or deletion could not act on.
    #[derive(ToSchema)]
    pub struct BulkFailure {
        pub id: String,
        pub error: String,
        pub message: String,
    }

    /// The outcome of a bulk action (seed 001).
    #[derive(ToSchema)]
    pub struct BulkActed {
        pub message: String,
        pub affected_users: u64,
        pub failed_users: Vec<BulkFailure>,
    }

    /// The outcome of a bulk deletion (seed 004).
    #[derive(ToSchema)]
    pub struct BulkDeleted {
        pub deleted: Vec<String>,
        pub failed: Vec<String>,
        pub errors: Vec<BulkFailure>,
    }

    /// A bulk action (mirrors `admin::bulk::BulkActionRequest`).
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BulkActionBody {
        /// 1 to 100 user ids.
        pub user_ids: Vec<String>,
        pub action: BulkActionName,
        /// Recorded with locks and deactivations.
        pub reason: Option<String>,
        /// The role of `assign_role` and `remove_role`.
        pub role: Option<String>,
        /// The length of a `lock` (1 to 525600).
        pub duration_minutes: Option<i64>,
        /// `delete` keeps tombstones.
        pub soft_delete: Option<bool>,
    }

    /// The actions of a bulk action.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum BulkActionName {
        Activate,
        Deactivate,
        Lock,
        Unlock,
        Delete,
        AssignRole,
        RemoveRole,
    }
}
