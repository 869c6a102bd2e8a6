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
