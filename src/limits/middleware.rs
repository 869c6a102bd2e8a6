//! The middleware that applies the rate limits: it finds the rule of a request, counts it
//! under the client's key, adds the `X-RateLimit-*` headers, and answers 429 — in the JSON
//! API's error form, or as a page for the login and reset pages — once a limit is passed.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use super::{Limit, Standing};
use crate::api::error::ApiError;
use crate::domain::now;
use crate::paths;
use crate::startup::AppState;
use crate::web::PageError;

/// The rule of a request, if one applies: the contract's table, then the rest of the API.
pub fn classify(method: &Method, path: &str) -> Option<Limit> {
    let post = method == Method::POST;
    match path {
        paths::AUTH_REGISTER if post => Some(Limit::Register),
        paths::AUTH_LOGIN | paths::LOGIN if post => Some(Limit::Login),
        paths::AUTH_RESET_PASSWORD | paths::ACCOUNT_RESET_PASSWORD if post => {
            Some(Limit::ResetPassword)
        }
        paths::AUTH_FORGOT_PASSWORD if post => Some(Limit::ForgotPassword),
        paths::AUTH_REFRESH if post => Some(Limit::Refresh),
        // The JSON API (its CORS preflights are free).
        _ if path.starts_with("/api/v1/") && method != Method::OPTIONS => Some(Limit::Api),
        _ => None,
    }
}

/// The login a request body names, read as the login handlers read it: the first of
/// `username` and `email` that is not blank, trimmed and lower-cased; empty when there is none
/// or the body does not parse. Reading it any other way would let a blank `username` beside the
/// real login in `email` open a fresh bucket on every request.
pub fn login_of(content_type: &str, body: &[u8]) -> String {
    const MEMBERS: [&str; 2] = ["username", "email"];
    let mut found: [Option<String>; 2] = [None, None];
    if content_type.starts_with("application/json") {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            for (slot, member) in found.iter_mut().zip(MEMBERS) {
                *slot = value
                    .get(member)
                    .and_then(|s| s.as_str())
                    .map(str::to_owned);
            }
        }
    } else {
        for (key, value) in url::form_urlencoded::parse(body) {
            if let Some(at) = MEMBERS.iter().position(|m| *m == key) {
                found[at].get_or_insert_with(|| value.into_owned());
            }
        }
    }
    found
        .iter()
        .flatten()
        .map(|name| name.trim())
        .find(|name| !name.is_empty())
        .unwrap_or_default()
        .to_lowercase()
}

/// The standing as `X-RateLimit-*` headers (seed 000 and seed 003).
pub fn headers(standing: &Standing) -> [(HeaderName, HeaderValue); 4] {
    [
        (
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(standing.limit),
        ),
        (
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(standing.remaining()),
        ),
        (
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderValue::from(standing.reset_at),
        ),
        (
            HeaderName::from_static("x-ratelimit-window"),
            HeaderValue::from(standing.window_secs),
        ),
    ]
}

/// The 429 of a refused request.
fn refusal(limit: Limit, standing: &Standing, page: bool) -> actix_web::HttpResponse {
    let retry_after = standing.retry_after(now());
    let mut response = if page {
        PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!(
                "{} You can try again in {} minute(s).",
                limit.message(),
                (retry_after + 59) / 60
            ),
        )
        .error_response()
    } else {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            limit.error_code(),
            limit.message(),
        )
        .with_field("retry_after", retry_after)
        .error_response()
    };
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
    for (name, value) in self::headers(standing) {
        headers.insert(name, value);
    }
    response
}

/// The client address of a request, as the limits key it (an IPv6 address by its /64).
fn address_of(state: &AppState, request: &ServiceRequest) -> String {
    crate::http::client_ip(
        request.peer_addr(),
        request.headers(),
        &state.settings.trusted_proxies,
    )
    .map(crate::http::address_bucket)
    .unwrap_or_else(|| "unknown".into())
}

/// The client key of a request under `limit`. Reads (and puts back) the body of a login.
async fn key_of(
    state: &AppState,
    limit: Limit,
    request: &mut ServiceRequest,
) -> Result<String, Error> {
    let ip = address_of(state, request);
    match limit {
        Limit::Login => {
            let body =
                crate::http::read_body(request.take_payload(), state.settings.max_body_bytes)
                    .await
                    .unwrap_or_default();
            let content_type = crate::http::media_type(request.request());
            let login = login_of(&content_type, &body);
            request.set_payload(Payload::from(body));
            Ok(format!("{ip}|{login}"))
        }
        Limit::Api => {
            // The subject of a valid token of this issuer (signature and expiry only: a
            // forged subject must not get a fresh bucket); otherwise the address.
            let subject = crate::oauth::bearer::from_header(request.request())
                .ok()
                .flatten()
                .and_then(|token| {
                    crate::oauth::access_token::verify(
                        &state.keys.current(),
                        &state.settings.issuer,
                        &token,
                    )
                    .ok()
                })
                .map(|claims| claims.sub);
            Ok(match subject {
                Some(sub) => format!("sub:{sub}"),
                None => format!("ip:{ip}"),
            })
        }
        _ => Ok(ip),
    }
}

/// Applies the rate limits to a request.
pub async fn enforce(
    mut request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody, BoxBody>>, Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let limit = match classify(request.method(), request.path()) {
        Some(limit) if state.limiter.enabled() => limit,
        _ => return Ok(next.call(request).await?.map_into_left_body()),
    };
    let key = key_of(&state, limit, &mut request).await?;
    // A login counts against its address's ceiling first, then against its own bucket.
    let ceiling =
        (limit == Limit::Login).then(|| (Limit::LoginAddress, address_of(&state, &request)));
    let mut standing = None;
    for (limit, key) in ceiling.into_iter().chain([(limit, key)]) {
        let counted = match state.limiter.hit(limit, &key).await {
            Ok(counted) => counted,
            Err(error) => {
                // Without the counters the request is served as if unlimited: the handler
                // then meets the same database trouble and answers it (503), not the limiter.
                tracing::warn!(%error, rule = limit.name(), "rate-limit counters unavailable");
                return Ok(next.call(request).await?.map_into_left_body());
            }
        };
        if !counted.allowed() {
            return Ok(refuse(&state, limit, &counted, request));
        }
        standing = Some(counted);
    }
    let standing = standing.expect("every request with a rule is counted once at least");
    let mut response = next.call(request).await?;
    for (name, value) in headers(&standing) {
        response.headers_mut().insert(name, value);
    }
    Ok(response.map_into_left_body())
}

/// The 429 of a request that `limit` refuses.
fn refuse(
    state: &AppState,
    limit: Limit,
    standing: &Standing,
    request: ServiceRequest,
) -> ServiceResponse<EitherBody<BoxBody, BoxBody>> {
    state.metrics.rate_limited(limit.name());
    tracing::info!(
        target: "latchkey::security",
        event = "rate_limited",
        rule = limit.name(),
        "request refused by a rate limit"
    );
    let page = !request.path().starts_with("/api/");
    let response = refusal(limit, standing, page);
    request.into_response(response).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_table_decides_the_rule() {
        assert_eq!(
            classify(&Method::POST, paths::AUTH_LOGIN),
            Some(Limit::Login)
        );
        assert_eq!(classify(&Method::POST, paths::LOGIN), Some(Limit::Login));
        assert_eq!(classify(&Method::GET, paths::LOGIN), None);
        assert_eq!(
            classify(&Method::POST, paths::AUTH_FORGOT_PASSWORD),
            Some(Limit::ForgotPassword)
        );
        assert_eq!(classify(&Method::GET, "/api/v1/users"), Some(Limit::Api));
        assert_eq!(classify(&Method::OPTIONS, "/api/v1/users"), None);
        assert_eq!(classify(&Method::POST, paths::TOKEN), None);
    }

    #[test]
    fn the_login_is_read_from_json_or_form_bodies() {
        assert_eq!(
            login_of("application/json", br#"{"email":" Alice@Example.com "}"#),
            "alice@example.com"
        );
        assert_eq!(
            login_of("application/x-www-form-urlencoded", b"csrf=x&username=Bob"),
            "bob"
        );
        assert_eq!(login_of("application/json", b"not json"), "");
        assert_eq!(
            login_of("application/json", br#"{"username":"  ","email":"IVAN"}"#),
            "ivan"
        );
        assert_eq!(
            login_of("application/x-www-form-urlencoded", b"username=&email=Ivan"),
            "ivan"
        );
    }
}
