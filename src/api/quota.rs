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
