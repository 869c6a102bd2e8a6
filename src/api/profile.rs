//! The caller's own profile: seed 002's `/me` (camelCase), seed 000's `/users/profile` (with
//! preferences), and the password change of seeds 000 and 001. One profile model behind all.
//! Every change is written to the audit log (and a profile change reported to the
//! `user.updated` webhooks) in the transaction that makes it.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::accounts::policy::check_new_password;
use crate::accounts::profile::{self, Profile};
use crate::accounts::users::webhook_user;
use crate::api::auth::{name_field, profile_json};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{ApiJson, Authenticated};
use crate::api::recovery::{confirm_password, new_password_pair};
use crate::crypto::Crypto;
use crate::domain::{Timestamp, now, text};
use crate::events::audit::{self, Actor, AuditEvent};
use crate::events::email::{self, EmailKind};
use crate::events::webhooks;
use crate::sessions::revoke::{Revocation, end_other_sessions};
use crate::startup::AppState;
use crate::store::users::{self, ProfileChanges, UserRow};
use crate::store::{AnyConnection, StoreError, from_json, security, to_json};

async fn load(state: &AppState, user_id: &str) -> Result<Profile, ApiError> {
    let id = user_id.to_owned();
    Ok(state
        .store
        .run(move |conn| profile::load(conn, &id))
        .await?)
}

/// Seed 002's shape.
fn me_json(profile: &Profile) -> Value {
    let user = &profile.user;
    json!({
        "id": user.id,
        "status": user.status,
        "name": profile.display_name(),
        "bio": user.bio,
        "activeSessions": profile.active_sessions,
        "createdAt": Timestamp(user.created_at),
        "updatedAt": Timestamp(user.updated_at),
        "email": user.email,
    })
}

/// `GET /api/v1/me`.
#[utoipa::path(
    get,
    path = crate::paths::ME,
    tag = "profile",
    responses(
        (status = 200, description = "The caller, in seed 002's camelCase shape", body = schema::Me),
    ),
    security(("bearer" = ["profile:read"])),
)]
pub async fn get_me(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:read")?;
    Ok(HttpResponse::Ok().json(me_json(&load(&state, caller.user_id()?).await?)))
}

/// `PATCH /me`: `{"name", "bio"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// The display name (at most 100 characters; `null` clears it).
    #[schema(value_type = Option<String>, max_length = 100)]
    name: Option<Option<String>>,
    /// At most 1000 characters; `null` clears it.
    #[schema(value_type = Option<String>, max_length = 1000)]
    bio: Option<Option<String>>,
}

/// Validates an optional, nullable text field with `parse` (a [`crate::domain::text`] rule).
fn text_change(
    field: &str,
    value: Option<Option<String>>,
    parse: impl Fn(&str) -> Result<Option<String>, crate::domain::Invalid>,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => parse(&text)
            .map_err(|e| errors.push(FieldError::new(field, e.0)))
            .ok(),
    }
}

/// `PATCH /api/v1/me`.
#[utoipa::path(
    patch,
    path = crate::paths::ME,
    tag = "profile",
    request_body = MePatch,
    responses(
        (status = 200, description = "The changed profile", body = schema::Me),
        (status = 422, description = "A member too long or of the wrong type", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn patch_me(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<MePatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let mut errors = Vec::new();
    let changes = ProfileChanges {
        display_name: text_change("name", body.name, |t| text::line(t, 100), &mut errors),
        bio: text_change("bio", body.bio, |t| text::paragraphs(t, 1000), &mut errors),
        updated_at: Some(now()),
        ..Default::default()
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    update_profile(&state, &user_id, changes, caller.actor(&http)).await?;
    Ok(HttpResponse::Ok().json(me_json(&load(&state, &user_id).await?)))
}

/// The profile fields a person edits, as the audit log shows them (`preferences` as JSON).
fn editable_fields(user: &UserRow) -> Vec<(&'static str, Value)> {
    let preferences = user
        .preferences
        .as_deref()
        .map(|p| from_json::<Value>("users.preferences", p).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    vec![
        ("first_name", json!(user.first_name)),
        ("last_name", json!(user.last_name)),
        ("display_name", json!(user.display_name)),
        ("bio", json!(user.bio)),
        ("preferences", preferences),
    ]
}

/// Applies a self-service profile change; when it changed anything, writes `profile_updated`
/// with the old and new values of the changed fields and queues `user.updated`, in one
/// transaction.
async fn update_profile(
    state: &AppState,
    user_id: &str,
    changes: ProfileChanges,
    actor: Actor,
) -> Result<(), StoreError> {
    let (id, crypto) = (user_id.to_owned(), state.crypto.clone());
    state
        .store
        .write(move |conn| {
            let before = users::find(conn, &id)?;
            users::update_profile(conn, &id, &changes)?;
            let after = users::find(conn, &id)?;
            record_profile_change(conn, &crypto, &actor, &before, &after)
        })
        .await
}

fn record_profile_change(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    actor: &Actor,
    before: &UserRow,
    after: &UserRow,
) -> Result<(), StoreError> {
    let (mut old, mut new, mut changed) = (Map::new(), Map::new(), Vec::new());
    for ((name, was), (_, now_is)) in editable_fields(before)
        .into_iter()
        .zip(editable_fields(after))
    {
        if was != now_is {
            old.insert(name.to_owned(), was);
            new.insert(name.to_owned(), now_is);
            changed.push(name);
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    audit::record(
        conn,
        actor,
        AuditEvent::new("profile_updated", "users", Some(&after.id))
            .values(Some(Value::Object(old)), Some(Value::Object(new))),
    )?;
    webhooks::emit(
        conn,
        crypto,
        "user.updated",
        json!({"user": webhook_user(after), "changes": changed}),
    )?;
    Ok(())
}

/// `GET /api/v1/users/profile`.
#[utoipa::path(
    get,
    path = crate::paths::USERS_PROFILE,
    tag = "profile",
    responses(
        (status = 200, description = "The caller's profile (seed 000)", body = crate::api::auth::schema::Profile),
    ),
    security(("bearer" = ["profile:read"])),
)]
pub async fn get_profile(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:read")?;
    Ok(HttpResponse::Ok().json(profile_json(&load(&state, caller.user_id()?).await?)))
}

/// `PUT /users/profile`: `{"first_name", "last_name", "preferences"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[schema(max_length = 100)]
    first_name: Option<String>,
    #[schema(max_length = 100)]
    last_name: Option<String>,
    /// An object (at most 16 KiB serialised) that replaces the preferences; `null` clears them.
    #[schema(value_type = Option<Object>)]
    preferences: Option<Value>,
}

/// Largest accepted `preferences` object, serialised.
const MAX_PREFERENCES_BYTES: usize = 16 * 1024;

/// `PUT /api/v1/users/profile`.
#[utoipa::path(
    put,
    path = crate::paths::USERS_PROFILE,
    tag = "profile",
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The changed profile", body = crate::api::auth::schema::Profile),
        (status = 422, description = "A name too long, or `preferences` not an object or too large", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn put_profile(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let mut errors = Vec::new();
    let first_name = name_field("first_name", &body.first_name, &mut errors);
    let last_name = name_field("last_name", &body.last_name, &mut errors);
    let preferences = match body.preferences {
        None => None,
        Some(Value::Object(map)) => {
            let text = to_json(&map);
            if text.len() > MAX_PREFERENCES_BYTES {
                errors.push(FieldError::new("preferences", "is too large"));
            }
            Some(Some(text))
        }
        Some(Value::Null) => Some(None),
        Some(_) => {
            errors.push(FieldError::new("preferences", "must be an object"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let changes = ProfileChanges {
        first_name: body.first_name.is_some().then_some(first_name),
        last_name: body.last_name.is_some().then_some(last_name),
        preferences,
        updated_at: Some(now()),
        ..Default::default()
    };
    update_profile(&state, &user_id, changes, caller.actor(&http)).await?;
    Ok(HttpResponse::Ok().json(profile_json(&load(&state, &user_id).await?)))
}

/// `{"current_password", "new_password", "confirm_password"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

/// `POST /users/change-password` and `/auth/change-password`: every other session and refresh
/// token of the account is revoked; this one stays.
#[utoipa::path(
    post,
    path = crate::paths::AUTH_CHANGE_PASSWORD,
    tag = "profile",
    description = "Also at `POST /api/v1/users/change-password`. Every other session and refresh token of the account is revoked; this one stays.",
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "The password is changed", body = crate::api::openapi::MessageBody),
        (status = 401, description = "No valid access token, or a wrong current password (`invalid_credentials`)", body = crate::api::openapi::ApiErrorBody),
        (status = 422, description = "A missing member, passwords that differ, the same password, or a weak one", body = crate::api::openapi::ApiErrorBody),
        (status = 423, description = "`account_locked` after repeated wrong passwords", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn change_password(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let mut errors = Vec::new();
    if body.current_password.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new("current_password", "is required"));
    }
    let new_password = new_password_pair(&body.new_password, &body.confirm_password, &mut errors);
    let (Some(new_password), true) = (new_password, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    if body.current_password.as_deref() == Some(new_password.as_str()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "new_password",
            "must differ from the current password",
        )]));
    }
    let profile = load(&state, &user_id).await?;
    check_new_password(
        &new_password,
        &[&profile.user.username, &profile.user.email],
        state.settings.accounts.password_min_strength,
    )
    .map_err(|problem| ApiError::validation(vec![FieldError::new("new_password", problem)]))?;
    let by = caller.actor(&http);
    confirm_password(
        &state,
        &user_id,
        body.current_password.as_deref().unwrap_or_default(),
        &by,
    )
    .await?;
    let hash = state
        .passwords
        .hash(SecretString::from(new_password))
        .await?;
    let handles = state.handles();
    let (sid, gid) = (
        caller.active.claims.sid.clone(),
        caller.active.claims.gid.clone(),
    );
    let id = user_id.clone();
    let ended = state
        .store
        .write(move |conn| {
            let at = now();
            users::set_password_hash(conn, &id, &hash, at)?;
            let mut row = security::find_for_update(conn, &id)?;
            row.password_changed_at = Some(at);
            security::save(conn, &row)?;
            let ended = end_other_sessions(
                conn,
                &handles.crypto,
                &id,
                sid.as_deref(),
                gid.as_deref(),
                &Revocation {
                    actor: &by,
                    reason: "password changed",
                    at,
                },
            )?;
            audit::record(
                conn,
                &by,
                AuditEvent::new("password_changed", "users", Some(&id))
                    .info(json!({"sessions_ended": ended.sessions.len()})),
            )?;
            email::queue_to_user(
                conn,
                &handles.crypto,
                &handles.settings,
                &id,
                EmailKind::PasswordChanged,
            )?;
            Ok(ended)
        })
        .await?;
    tracing::info!(target: "latchkey::security", event = "password_changed", %user_id, ended_sessions = ended.sessions.len(), "password changed");
    Ok(HttpResponse::Ok().json(json!({ "message": "Password changed successfully" })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_me, patch_me, get_profile, put_profile, change_password))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// Seed 002's `/me` (camelCase).
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Me {
        pub id: String,
        pub status: String,
        /// The display name, else the first and last names, else the username.
        pub name: String,
        pub bio: Option<String>,
        pub active_sessions: i64,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub email: String,
    }
}
