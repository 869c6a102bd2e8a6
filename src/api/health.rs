//! Health endpoints: `/health` (liveness), `/api/v1/system/health` (seed 000) and
//! `/health/detailed` (seed 001, with the database check and the pool state).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use crate::api::error::ApiError;
use crate::domain::{Timestamp, now};
use crate::startup::AppState;
use crate::store::PoolState;

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
/// `details` when the database cannot be reached.
#[utoipa::path(
    get,
    path = crate::paths::HEALTH_DETAILED,
    tag = "system",
    responses(
        (status = 200, description = "Healthy, with the checks", body = schema::DetailedHealth),
        (status = 503, description = "The database cannot be reached: the checks are in `details`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn detailed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let database = check_database(&state).await;
    let keys = state.keys.current();
    let checks = json!({
        "database": database,
        "signing_keys": {
            "status": "healthy",
            "published": keys.published_count(),
        },
    });
    if database.status != "healthy" {
        return Err(ApiError::unavailable().with_details(json!({ "checks": checks })));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "status": "healthy",
            "timestamp": Timestamp(now()),
            "version": VERSION,
            "uptime": state.started_at.elapsed().as_secs(),
            "checks": checks,
        })))
}

/// `GET /api/v1/system/health` in seed 000's shape; 503 in the error form when unhealthy.
#[utoipa::path(
    get,
    path = crate::paths::SYSTEM_HEALTH,
    tag = "system",
    responses(
        (status = 200, description = "Healthy (seed 000's shape)", body = schema::SystemHealth),
        (status = 503, description = "The database cannot be reached: the services are in `details`", body = crate::api::openapi::ApiErrorBody),
    ),
    security(()),
)]
pub async fn system(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let database = check_database(&state).await;
    let services = json!({ "database": database.status });
    if database.status != "healthy" {
        return Err(ApiError::unavailable().with_details(json!({ "services": services })));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "status": "healthy",
            "version": VERSION,
            "uptime": state.started_at.elapsed().as_secs(),
            "services": services,
            "timestamp": Timestamp(now()),
        })))
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

    /// The database check.
    #[derive(ToSchema)]
    pub struct DatabaseHealth {
        /// `healthy` or `unhealthy`.
        pub status: String,
        /// `sqlite` or `postgres`.
        pub backend: String,
        pub response_time_ms: Option<f64>,
        pub error: Option<String>,
        pub connection_pool: PoolFigures,
    }

    /// The signing keys check.
    #[derive(ToSchema)]
    pub struct KeysHealth {
        pub status: String,
        /// Keys in the JWK Set.
        pub published: u64,
    }

    /// The checks of `/health/detailed`.
    #[derive(ToSchema)]
    pub struct HealthChecks {
        pub database: DatabaseHealth,
        pub signing_keys: KeysHealth,
    }

    /// Seed 001's detailed health.
    #[derive(ToSchema)]
    pub struct DetailedHealth {
        pub status: String,
        pub timestamp: Timestamp,
        pub version: String,
        /// Seconds since this instance started.
        pub uptime: u64,
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
        pub uptime: u64,
        pub services: HealthServices,
        pub timestamp: Timestamp,
    }
}
