//! `/api/v1/sessions`: the caller's sessions (browser sign-ins and API logins), and revoking
//! them. Revoking one revokes its grants, so its refresh tokens stop and its access tokens are
//! inactive at once, and its clients get back-channel logout notices.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::accounts::devices::describe;
use crate::api::error::ApiError;
use crate::api::extract::Authenticated;
use crate::domain::{Timestamp, now};
use crate::sessions::revoke::{Revocation, end_other_sessions, end_session};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::store::sessions as rows;

/// `GET /api/v1/sessions`.
#[utoipa::path(
    get,
    path = crate::paths::SESSIONS,
    tag = "sessions",
    responses(
        (status = 200, description = "The caller's live sessions; `current` marks the one of this token", body = schema::SessionList),
    ),
    security(("bearer" = ["profile:read"])),
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:read")?;
    let user_id = caller.user_id()?.to_owned();
    let current = caller.active.claims.sid.clone();
    let sessions = state
        .store
        .run(move |conn| rows::live_for_user(conn, &user_id, now()))
        .await?;
    let sessions: Vec<_> = sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "kind": s.kind,
                "device": describe(s.user_agent.as_deref()),
                "ip_address": s.ip_address,
                "location": null,
                "created_at": Timestamp(s.created_at),
                "last_activity": Timestamp(s.last_activity),
                "expires_at": Timestamp(s.expires_at),
                "current": current.as_deref() == Some(s.id.as_str()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "sessions": sessions })))
}

/// `DELETE /api/v1/sessions/{id}`: one of the caller's sessions (404 for anyone else's).
#[utoipa::path(
    delete,
    path = crate::paths::SESSION,
    tag = "sessions",
    params(("id" = String, Path, description = "A session id of the caller")),
    responses(
        (status = 200, description = "The session ended, its grants revoked", body = crate::api::openapi::MessageBody),
        (status = 404, description = "No live session of the caller has this id", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn revoke(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let session_id = id.into_inner();
    if session_id.len() > 64 {
        return Err(ApiError::not_found("No such session"));
    }
    let crypto = state.crypto.clone();
    let by = caller.actor(&http);
    let ended = state
        .store
        .write(move |conn| {
            let session = match rows::find(conn, &session_id) {
                Ok(session) => session,
                Err(StoreError::NotFound) => return Ok(None),
                Err(other) => return Err(other),
            };
            if session.user_id != user_id
                || session.revoked_at.is_some()
                || session.expires_at <= now()
            {
                return Ok(None);
            }
            let revocation = Revocation {
                actor: &by,
                reason: "session revoked",
                at: now(),
            };
            end_session(conn, &crypto, &session.id, true, &revocation).map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("No such session"))?;
    tracing::info!(target: "latchkey::security", event = "session_revoked", sessions = ?ended.sessions, grants = ended.grants.len(), "session revoked");
    Ok(HttpResponse::Ok().json(json!({ "message": "Session revoked successfully" })))
}

/// `DELETE /api/v1/sessions`: every session of the caller but the current one.
#[utoipa::path(
    delete,
    path = crate::paths::SESSIONS,
    tag = "sessions",
    responses(
        (status = 200, description = "Every other session of the caller ended", body = schema::SessionsRevoked),
    ),
    security(("bearer" = ["profile:write"])),
)]
pub async fn revoke_others(
    state: web::Data<AppState>,
    http: HttpRequest,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    caller.require("profile:write")?;
    let user_id = caller.user_id()?.to_owned();
    let (sid, gid) = (
        caller.active.claims.sid.clone(),
        caller.active.claims.gid.clone(),
    );
    let crypto = state.crypto.clone();
    let by = caller.actor(&http);
    let ended = state
        .store
        .write(move |conn| {
            let revocation = Revocation {
                actor: &by,
                reason: "sessions revoked",
                at: now(),
            };
            end_other_sessions(
                conn,
                &crypto,
                &user_id,
                sid.as_deref(),
                gid.as_deref(),
                &revocation,
            )
        })
        .await?;
    tracing::info!(target: "latchkey::security", event = "session_revoked", count = ended.sessions.len(), "other sessions revoked");
    Ok(HttpResponse::Ok().json(json!({
        "message": "All other sessions revoked successfully",
        "revoked_count": ended.sessions.len(),
    })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, revoke, revoke_others))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// A session of the caller.
    #[derive(ToSchema)]
    pub struct Session {
        pub id: String,
        /// `browser` or `api`.
        pub kind: String,
        /// The browser and system, as read from the user agent.
        pub device: String,
        pub ip_address: Option<String>,
        /// Always `null`: no location is looked up.
        #[schema(value_type = Option<String>)]
        pub location: Option<()>,
        pub created_at: Timestamp,
        pub last_activity: Timestamp,
        pub expires_at: Timestamp,
        /// Whether the access token of this request belongs to it.
        pub current: bool,
    }

    /// The caller's sessions.
    #[derive(ToSchema)]
    pub struct SessionList {
        pub sessions: Vec<Session>,
    }

    /// Other sessions ended.
    #[derive(ToSchema)]
    pub struct SessionsRevoked {
        pub message: String,
        pub revoked_count: u64,
    }
}
