//! Bulk operations on users: seed 003's bulk creation, seed 001's bulk actions and seed
//! 004's bulk deletion.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::prepare;
use crate::admin::bulk::{self, BulkActionRequest, BulkNewUser, MAX_ITEMS};
use crate::admin::users::UserInput;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated};
use crate::startup::AppState;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkOptions {
    #[serde(default)]
    send_welcome_emails: bool,
    #[serde(default)]
    fail_on_error: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkCreateBody {
    /// 1 to 100 users.
    #[schema(value_type = Vec<super::schema::UserInputBody>)]
    users: Vec<UserInput>,
    #[serde(default)]
    options: BulkOptions,
}

/// `POST /users/bulk` (seed 003): 201 when every user was created, 207 when some were, 422
/// when none was (or `fail_on_error` undid them); per-item results either way.
#[utoipa::path(
    post,
    path = crate::paths::USERS_BULK,
    tag = "users",
    request_body = BulkCreateBody,
    responses(
        (status = 201, description = "Every user was created", body = super::schema::BulkCreated),
        (status = 207, description = "Some users were created; the results say which and why not", body = super::schema::BulkCreated),
        (status = 422, description = "None was created, or `fail_on_error` undid them (the results say why); or the request was refused (`users` empty or longer than 100, a malformed item)", body = super::schema::BulkRefused),
    ),
    security(("bearer" = ["users:write"])),
)]
pub(super) async fn bulk_create(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<BulkCreateBody>,
) -> Result<HttpResponse, ApiError> {
    let BulkCreateBody { users, options } = body.0;
    if users.is_empty() || users.len() > MAX_ITEMS {
        return Err(ApiError::validation(vec![FieldError::new(
            "users",
            format!("must list 1 to {MAX_ITEMS} users"),
        )]));
    }
    let mut items = Vec::with_capacity(users.len());
    for input in users {
        let prepared = prepare(&state, input)
            .await
            .map(|(spec, hash, _)| (spec, hash));
        items.push(BulkNewUser { prepared });
    }
    let caller = auth.caller(&http);
    let handles = state.handles();
    let outcome = state
        .store
        .run(move |conn| {
            bulk::create(
                conn,
                &handles,
                &caller,
                items,
                options.send_welcome_emails,
                options.fail_on_error,
            )
        })
        .await?;
    let status = match outcome.successful() {
        n if n == outcome.results.len() => StatusCode::CREATED,
        0 => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::MULTI_STATUS,
    };
    Ok(HttpResponse::build(status).json(outcome))
}

/// `POST /users/bulk-actions` (seed 001).
#[utoipa::path(
    post,
    path = crate::paths::USERS_BULK_ACTIONS,
    tag = "users",
    request_body = super::schema::BulkActionBody,
    responses(
        (status = 200, description = "The action was applied to each user it could be", body = super::schema::BulkActed),
        (status = 403, description = "No `users:write` (or `users:delete` for `delete`)", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "Empty or too many ids, a missing `role`, or a bad `duration_minutes`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:write"])),
)]
pub(super) async fn bulk_actions(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<BulkActionRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    if request.action == bulk::BulkAction::Delete {
        auth.require("users:delete")?;
    }
    bulk::validate_action(&request)?;
    let caller = auth.caller(&http);
    let handles = state.handles();
    let outcome = state
        .store
        .run(move |conn| bulk::act(conn, &handles, &caller, &request))
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkDeleteBody {
    /// 1 to 100 user ids.
    ids: Vec<String>,
    #[serde(default)]
    soft_delete: bool,
}

/// `DELETE /users/bulk` (seed 004): `{"deleted": [...], "failed": [...]}`.
#[utoipa::path(
    delete,
    path = crate::paths::USERS_BULK,
    tag = "users",
    request_body = BulkDeleteBody,
    responses(
        (status = 200, description = "Which users were deleted and which not", body = super::schema::BulkDeleted),
        (status = 422, description = "`ids` is empty or longer than 100", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["users:delete"])),
)]
pub(super) async fn bulk_delete(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
    body: ApiJson<BulkDeleteBody>,
) -> Result<HttpResponse, ApiError> {
    let BulkDeleteBody { ids, soft_delete } = body.0;
    if ids.is_empty() || ids.len() > MAX_ITEMS {
        return Err(ApiError::validation(vec![FieldError::new(
            "ids",
            format!("must list 1 to {MAX_ITEMS} ids"),
        )]));
    }
    let caller = auth.caller(&http);
    let handles = state.handles();
    let outcome = state
        .store
        .run(move |conn| bulk::delete(conn, &handles, &caller, &ids, soft_delete))
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}
