//! Health endpoints: `/health` (liveness), `/api/v1/system/health` (seed 000) and
//! `/health/detailed` (seed 001, with the database check and the pool state).

use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::api::extract::{Authenticated, current_permissions};
use crate::domain::{Timestamp, now};
use crate::startup::AppState;
use crate::store::PoolState;
use crate::workers::WorkerStatus;

/// The version reported by every health and info endpoint.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /health`: the process is up. No dependency is checked, so a load balancer does not
/// take every instance out when the shared database blinks.
#[utoipa::path(
    get,
    path = crate::paths::HEALTH,
    tag = "system",
    responses(
        (status = 200, description = "The process is up (no dependency is checked)", body = schema::Health),
    ),
    security(()),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "status": "healthy",
            "timestamp": Timestamp(now()),
            "version": VERSION,
        }))
}

#[derive(Serialize)]
struct DatabaseCheck {
    status: &'static str,
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    connection_pool: PoolState,
}

async fn check_database(state: &AppState) -> DatabaseCheck {
    let ping = state.store.ping().await;
    let backend = state.settings.database_url.backend();
    let connection_pool = state.store.pool_state();
    match ping {
        Ok(elapsed) => DatabaseCheck {
            status: "healthy",
            backend,
            response_time_ms: Some(round_ms(elapsed)),
            error: None,
            connection_pool,
        },
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            DatabaseCheck {
                status: "unhealthy",
                backend,
                response_time_ms: None,
                error: Some("database unreachable"),
                connection_pool,
            }
        }
    }
}

fn round_ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 100_000.0).round() / 100.0
}

/// `GET /health/detailed`: 200 with the checks, or 503 in the error form with the checks in
/// `details` when the database cannot be reached. Anyone sees each check's status; the
/// figures behind them (pool, timings, keys, workers, uptime) are for callers holding
/// `system:read`, and for the `metrics_bind` listener.
#[utoipa::path(
    get,
    path = crate::paths::HEALTH_DETAILED,
    tag = "system",
    description = "Each check's status for anyone; with a token holding `system:read` (or on the \
`metrics_bind` listener) also the pool, timings, signing keys, workers and uptime. `status` is \
`degraded` when a background worker stopped or stalled.",
    responses(
        (status = 200, description = "Healthy or degraded, with the checks", body = schema::DetailedHealth),
        (status = 401, description = "A token was sent and is not valid", body = crate::api::openapi::ApiErrorBody),
        (status = 503, description = "The database cannot be reached: the checks are in `details`", body = crate::api::openapi::ApiErrorBody),
    ),
    security((), ("bearer" = ["system:read"])),
)]
pub async fn detailed(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let full = shows_internals(&state, &request).await?;
    detailed_view(&state, full).await
}

/// Whether the caller may see the server's internals (its figures, workers and uptime): a
/// valid token holding `system:read` now. Without a token, no; with a bad one, 401.
async fn shows_internals(state: &AppState, request: &HttpRequest) -> Result<bool, ApiError> {
    if !request.headers().contains_key(AUTHORIZATION) {
        return Ok(false);
    }
    let caller = Authenticated::extract(request).await?;
    let caller = current_permissions(state, caller).await?;
    Ok(caller.require(SYSTEM_READ).is_ok())
}

/// `GET /health/detailed` on the `metrics_bind` listener: the full view without a token.
pub async fn detailed_open(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    detailed_view(&state, true).await
}

/// The permission that shows the figures of `/health/detailed`.
const SYSTEM_READ: &str = "system:read";

async fn detailed_view(state: &AppState, full: bool) -> Result<HttpResponse, ApiError> {
    let database = check_database(state).await;
    let workers = state.workers.report();
    let workers_status = if workers.iter().all(|w| w.status == WorkerStatus::Healthy) {
        "healthy"
    } else {
        "unhealthy"
    };
    let checks = if full {
        json!({
            "database": database,
            "signing_keys": {
                "status": "healthy",
                "published": state.keys.current().published_count(),
            },
            "workers": { "status": workers_status, "workers": workers },
        })
    } else {
        json!({
            "database": { "status": database.status },
            "signing_keys": { "status": "healthy" },
            "workers": { "status": workers_status },
        })
    };
    if database.status != "healthy" {
        return Err(ApiError::unavailable().with_details(json!({ "checks": checks })));
    }
    let mut body = json!({
        "status": if workers_status == "healthy" { "healthy" } else { "degraded" },
        "timestamp": Timestamp(now()),
        "version": VERSION,
        "checks": checks,
    });
    if full {
        body["uptime"] = json!(state.started_at.elapsed().as_secs());
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `GET /api/v1/system/health` in seed 000's shape (its `uptime` only for `system:read`, as
/// on `/health/detailed`); 503 in the error form when unhealthy.
#[utoipa::path(
    get,
    path = crate::paths::SYSTEM_HEALTH,
    tag = "system",
    responses(
        (status = 200, description = "Healthy (seed 000's shape; `uptime` only for a token holding `system:read`)", body = schema::SystemHealth),
        (status = 401, description = "A token was sent and is not valid", body = crate::api::openapi::ApiErrorBody),
        (status = 503, description = "The database cannot be reached: the services are in `details`", body = crate::api::openapi::ApiErrorBody),
    ),
    security((), ("bearer" = ["system:read"])),
)]
pub async fn system(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let internals = shows_internals(&state, &request).await?;
    let database = check_database(&state).await;
    let services = json!({ "database": database.status });
    if database.status != "healthy" {
        return Err(ApiError::unavailable().with_details(json!({ "services": services })));
    }
    let mut body = json!({
        "status": "healthy",
        "version": VERSION,
        "services": services,
        "timestamp": Timestamp(now()),
    });
    if internals {
        body["uptime"] = json!(state.started_at.elapsed().as_secs());
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, detailed, system))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// Liveness.
    #[derive(ToSchema)]
    pub struct Health {
        /// `healthy`.
        pub status: String,
        pub timestamp: Timestamp,
        pub version: String,
    }

    /// The pool's figures.
    #[derive(ToSchema)]
    pub struct PoolFigures {
        pub active: u32,
        pub idle: u32,
        pub total: u32,
        pub max: u32,
    }

    /// The database check (the figures for `system:read` only).
    #[derive(ToSchema)]
    pub struct DatabaseHealth {
        /// `healthy` or `unhealthy`.
        pub status: String,
        /// `sqlite` or `postgres`.
        pub backend: Option<String>,
        pub response_time_ms: Option<f64>,
        pub error: Option<String>,
        pub connection_pool: Option<PoolFigures>,
    }

    /// The signing keys check.
    #[derive(ToSchema)]
    pub struct KeysHealth {
        pub status: String,
        /// Keys in the JWK Set (for `system:read` only).
        pub published: Option<u64>,
    }

    /// One background worker (for `system:read` only).
    #[derive(ToSchema)]
    pub struct WorkerHealth {
        /// `outbox`, `housekeeping` or `keys`.
        pub name: String,
        /// `healthy`, `stalled` or `stopped`.
        pub status: String,
        pub last_beat_at: Timestamp,
        /// Panics caught (and the worker restarted) since this instance started.
        pub panics: u64,
    }

    /// The background workers check.
    #[derive(ToSchema)]
    pub struct WorkersHealth {
        /// `healthy` when every worker runs and beats, else `unhealthy`.
        pub status: String,
        pub workers: Option<Vec<WorkerHealth>>,
    }

    /// The checks of `/health/detailed`.
    #[derive(ToSchema)]
    pub struct HealthChecks {
        pub database: DatabaseHealth,
        pub signing_keys: KeysHealth,
        pub workers: WorkersHealth,
    }

    /// Seed 001's detailed health.
    #[derive(ToSchema)]
    pub struct DetailedHealth {
        /// `healthy`, or `degraded` when a worker stopped or stalled.
        pub status: String,
        pub timestamp: Timestamp,
        pub version: String,
        /// Seconds since this instance started (for `system:read` only).
        pub uptime: Option<u64>,
        pub checks: HealthChecks,
    }

    /// The services of seed 000's health.
    #[derive(ToSchema)]
    pub struct HealthServices {
        /// `healthy` or `unhealthy`.
        pub database: String,
    }

    /// Seed 000's health.
    #[derive(ToSchema)]
    pub struct SystemHealth {
        pub status: String,
        pub version: String,
        /// Seconds since the process started; only for a token holding `system:read`.
        pub uptime: Option<u64>,
        pub services: HealthServices,
        pub timestamp: Timestamp,
    }
}
