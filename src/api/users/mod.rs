//! The users resource: `/api/v1/users` (seeds 001 and 003) and `/api/v1/admin/users`
//! (seed 000), one set of handlers gated by `users:read`, `users:write` and `users:delete`.

mod bulk_ops;
mod export;

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::policy::check_new_password;
use crate::admin::users::{self as admin, Include, UserInput, VIEW_FIELDS};
use crate::admin::{AdminError, activity};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated, OptionalJson};
use crate::api::pagination::{Cursor, PageQuery, Paging, cursor_json, offset_json};
use crate::domain::{
    Condition, QueryError, SortField, Timestamp, UserField, equals, now, parse_fields,
    parse_filters, parse_sort,
};
use crate::http::endpoint;
use crate::paths;
use crate::startup::AppState;
use crate::store::user_search::{self, SortValue, UserQuery, Window};
use crate::store::write_transaction;
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
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    limit: Option<i64>,
    size: Option<i64>,
    offset: Option<i64>,
    cursor: Option<String>,
    /// Words to find in the names and the address (`q` in seed 003's search).
    search: Option<String>,
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    fields: Option<String>,
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::create(conn, &handles, &caller, spec, hash, welcome)
            }))
        })
        .await??;
    let location = format!(
        "{}/{}",
        paths::USERS,
        view["id"].as_str().unwrap_or_default()
    );
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .json(view))
}

/// `include` and `fields` of a single user.
#[derive(Debug, Default, Deserialize)]
struct ViewQuery {
    include: Option<String>,
    fields: Option<String>,
}

/// `GET /users/{id}`.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::update(conn, &handles, &caller, &id, spec, None)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    soft_delete: bool,
}

/// `DELETE /users/{id}` (`?soft_delete=true` keeps a tombstone).
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::delete(conn, &handles, &caller, &id, soft)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(deleted))
}

/// The body of a lock.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockBody {
    reason: Option<String>,
    duration_minutes: Option<i64>,
}

/// `POST /users/{id}/lock`: ends the user's sessions; without `duration_minutes` the lock
/// lasts until an unlock.
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
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::validation(vec![FieldError::new(
            "reason",
            "must be at most 500 characters",
        )]));
    }
    let caller = auth.caller(&http);
    let (handles, id) = (state.handles(), id.into_inner());
    let until = state
        .store
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::lock(
                    conn,
                    &handles,
                    &caller,
                    &id,
                    reason.as_deref(),
                    duration_minutes,
                )
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({
        "message": "User account locked successfully",
        "locked_until": until.map(Timestamp),
    })))
}

/// `POST /users/{id}/unlock`.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::unlock(conn, &caller, &id)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({"message": "User account unlocked successfully"})))
}

/// `PUT /users/{id}/preferences`: replaces the preferences object.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::set_preferences(conn, &handles, &caller, &id, body.0)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({"preferences": preferences})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityQuery {
    limit: Option<i64>,
}

/// `GET /users/{id}/activity` (seed 003).
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsBody {
    permissions: Vec<String>,
}

/// `PUT /admin/users/{id}/permissions` (seed 001): the user's direct permissions.
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
        .run(move |conn| {
            Ok(write_transaction(conn, |conn| {
                admin::set_permissions(conn, &handles, &caller, &id, &body.0.permissions)
            }))
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({
        "message": "Permissions updated successfully",
        "permissions": permissions,
    })))
}
