//! Seed 000's `GET /api/v1/users/quota`: where the caller stands against the rate limits
//! that apply to them, read without counting.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::extract::Authenticated;
use crate::domain::Timestamp;
use crate::limits::{Limit, Standing};
use crate::startup::AppState;

fn standing_json(standing: &Standing) -> Value {
    json!({
        "limit": standing.limit,
        "used": standing.used.min(standing.limit),
        "remaining": standing.remaining(),
        "reset_at": Timestamp(standing.reset_at),
        "window_secs": standing.window_secs,
    })
}

/// `GET /users/quota`: the caller's API requests (this one included) and login attempts
/// from this address in the current windows.
#[utoipa::path(
    get,
    path = crate::paths::USERS_QUOTA,
    tag = "profile",
    responses(
        (status = 200, description = "The caller's standing against the rate limits", body = schema::Quota),
    ),
    security(("bearer" = [])),
)]
pub async fn quota(
    state: web::Data<AppState>,
    http: HttpRequest,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ip = crate::http::client_ip(
        http.peer_addr(),
        http.headers(),
        &state.settings.trusted_proxies,
    )
    .map(|ip| ip.to_string())
    .unwrap_or_else(|| "unknown".into());
    let subject = &auth.active.claims.sub;
    let login = auth.active.username.clone().unwrap_or_default();
    let limiter = &state.limiter;
    let api = limiter.peek(Limit::Api, &format!("sub:{subject}")).await?;
    let logins = limiter.peek(Limit::Login, &format!("{ip}|{login}")).await?;
    Ok(HttpResponse::Ok().json(json!({
        "enforced": limiter.enabled(),
        "limits": {
            "api_requests": standing_json(&api),
            "login_attempts": standing_json(&logins),
        }
    })))
}

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(quota))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use crate::domain::Timestamp;
    use utoipa::ToSchema;

    /// Where the caller stands against one limit.
    #[derive(ToSchema)]
    pub struct Standing {
        pub limit: u64,
        pub used: u64,
        pub remaining: u64,
        pub reset_at: Timestamp,
        pub window_secs: u64,
    }

    /// The limits that apply to the caller.
    #[derive(ToSchema)]
    pub struct QuotaLimits {
        pub api_requests: Standing,
        pub login_attempts: Standing,
    }

    /// `/users/quota`.
    #[derive(ToSchema)]
    pub struct Quota {
        /// Whether the limits are enforced on this server.
        pub enforced: bool,
        pub limits: QuotaLimits,
    }
}
