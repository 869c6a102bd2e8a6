//! Prometheus metrics: requests and their latency by route and status, tokens issued by grant,
//! login failures, lockouts, rate-limit refusals and outbox passes, counted as they happen; the
//! outbox backlog, the database pool and the age of the signing keys, read when scraped; and the
//! process's CPU and memory.
//!
//! Each server has its own registry (no global state), so tests can run many servers in one
//! process. `/metrics` is served on the main listener to holders of `metrics_token`, and on
//! `metrics_bind` (a second listener, typically on a private address) to anyone who reaches it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use secrecy::ExposeSecret;

use crate::domain::now;
use crate::startup::AppState;
use crate::store::outbox as outbox_rows;

/// Latency buckets, in seconds: from a quarter millisecond (a JWKS answer) to ten seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    tokens_issued: IntCounterVec,
    login_failures: IntCounter,
    lockouts: IntCounter,
    rate_limited: IntCounterVec,
    outbox_passes: IntCounter,
    worker_panics: IntCounterVec,
    worker_up: IntGaugeVec,
    outbox_backlog: IntGaugeVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    key_age: GaugeVec,
    uptime: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("latchkey".into()), None).expect("a registry");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer a request, by route and method",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("registered once");
        let key_age = GaugeVec::new(
            Opts::new(
                "signing_key_age_seconds",
                "Age of the active signing key, by algorithm",
            ),
            &["alg"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(key_age.clone()))
            .expect("registered once");
        let uptime = Gauge::new("uptime_seconds", "Seconds since this instance started")
            .expect("a valid metric");
        registry
            .register(Box::new(uptime.clone()))
            .expect("registered once");
        let outbox_backlog = IntGaugeVec::new(
            Opts::new(
                "outbox_backlog",
                "Messages waiting for delivery, by kind (all instances)",
            ),
            &["kind"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(outbox_backlog.clone()))
            .expect("registered once");
        let worker_up = IntGaugeVec::new(
            Opts::new(
                "worker_up",
                "1 while a background worker runs and beats its heartbeat, 0 when it stopped or stalled",
            ),
            &["worker"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(worker_up.clone()))
            .expect("registered once");
        Self {
            worker_panics: counter_vec(
                &registry,
                "worker_panics_total",
                "Panics caught in background workers, by worker (each is restarted)",
                &["worker"],
            ),
            worker_up,
            http_requests: counter_vec(
                &registry,
                "http_requests_total",
                "Requests answered, by route, method and status",
                &["route", "method", "status"],
            ),
            http_duration,
            tokens_issued: counter_vec(
                &registry,
                "tokens_issued_total",
                "Access tokens issued, by grant",
                &["grant"],
            ),
            login_failures: counter(
                &registry,
                "login_failures_total",
                "Sign-ins refused for a wrong password or an unknown account",
            ),
            lockouts: counter(
                &registry,
                "lockouts_total",
                "Accounts locked after repeated failures",
            ),
            rate_limited: counter_vec(
                &registry,
                "rate_limited_total",
                "Requests refused by a rate limit, by rule",
                &["rule"],
            ),
            outbox_passes: counter(
                &registry,
                "outbox_passes_total",
                "Outbox passes this instance has finished (each claims and delivers every due message)",
            ),
            outbox_backlog,
            pool_connections: gauge(
                &registry,
                "db_pool_connections",
                "Database connections open in this instance's pool",
            ),
            pool_idle: gauge(
                &registry,
                "db_pool_idle_connections",
                "Idle database connections in this instance's pool",
            ),
            key_age,
            uptime,
            registry,
        }
    }

    /// Counts an access token issued under `grant` (`authorization_code`, `password`, ...).
    pub fn token_issued(&self, grant: &str) {
        self.tokens_issued.with_label_values(&[grant]).inc();
    }

    /// Counts a refused sign-in.
    pub fn login_failed(&self) {
        self.login_failures.inc();
    }

    /// Counts an account locked by failures.
    pub fn locked_out(&self) {
        self.lockouts.inc();
    }

    /// Counts a request refused by the rate limit `rule`.
    pub fn rate_limited(&self, rule: &str) {
        self.rate_limited.with_label_values(&[rule]).inc();
    }

    /// Counts a finished outbox pass, delivered or not: the worker is alive, and whatever the
    /// pass had in flight has landed.
    pub fn outbox_pass_finished(&self) {
        self.outbox_passes.inc();
    }

    /// Counts a panic caught in the background worker `worker`.
    pub fn worker_panicked(&self, worker: &str) {
        self.worker_panics.with_label_values(&[worker]).inc();
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, status_label(status)])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// Reads the gauges that are measured when scraped, then renders every metric in the
    /// Prometheus text format.
    pub async fn render(&self, state: &AppState) -> String {
        let pool = state.store.pool_state();
        self.pool_connections.set(i64::from(pool.total));
        self.pool_idle.set(i64::from(pool.idle));
        self.uptime.set(state.started_at.elapsed().as_secs_f64());
        let at = now();
        for (alg, created_at) in state.keys.current().active_ages() {
            self.key_age
                .with_label_values(&[alg])
                .set((at - created_at).max(0) as f64);
        }
        for worker in state.workers.report() {
            let up = worker.status == crate::workers::WorkerStatus::Healthy;
            self.worker_up
                .with_label_values(&[worker.name])
                .set(i64::from(up));
            self.worker_panics
                .with_label_values(&[worker.name])
                .inc_by(0);
        }
        match state.store.run(outbox_rows::pending_by_kind).await {
            Ok(backlog) => {
                self.outbox_backlog.reset();
                for (kind, count) in backlog {
                    self.outbox_backlog.with_label_values(&[&kind]).set(count);
                }
            }
            Err(error) => tracing::warn!(%error, "outbox backlog unavailable for metrics"),
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text format encodes");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Status codes as labels without one series per code: `200`, `404`, `429`, ... are kept
/// (few and meaningful), anything unusual is folded to its class.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        302 => "302",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        423 => "423",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

/// Counts every request by its route pattern (never its raw path, which would make one series
/// per id), method and status, and records its latency.
pub async fn track<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let started = Instant::now();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let method = request.method().clone();
    let response = next.call(request).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state.metrics.observe(
            &route,
            method.as_str(),
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `GET /metrics` on the main listener: for holders of `metrics_token` only (404 when no token
/// is configured, so the endpoint does not exist for the internet; 401 for a wrong token).
#[utoipa::path(
    get,
    path = crate::paths::METRICS,
    tag = "system",
    description = "Prometheus metrics on the main listener, for holders of the configured `metrics.token` \
(the endpoint does not exist when none is configured). A separate `metrics_bind` listener serves them \
without a token.",
    responses(
        (status = 200, description = "The metrics in the Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "A missing or wrong token (with `WWW-Authenticate: Bearer`); no body"),
        (status = 404, description = "No `metrics.token` is configured", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("metrics_token" = [])),
)]
pub async fn metrics_with_token(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let Some(expected) = &state.settings.metrics.token else {
        return actix_web::ResponseError::error_response(&crate::api::error::ApiError::not_found(
            format!("No resource at GET {}", request.path()),
        ));
    };
    let presented = crate::oauth::bearer::from_header(&request)
        .ok()
        .flatten()
        .unwrap_or_default();
    if !crate::crypto::constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes()) {
        let mut response = HttpResponse::new(StatusCode::UNAUTHORIZED);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="latchkey-metrics""#),
        );
        return response;
    }
    text(state.metrics.render(&state).await)
}

/// `GET /metrics` on the `metrics_bind` listener: reachable only where that address is.
pub async fn metrics_open(state: web::Data<AppState>) -> HttpResponse {
    text(state.metrics.render(&state).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_rendered() {
        let metrics = Metrics::new();
        metrics.observe("/api/v1/users/{id}", "GET", 200, 0.003);
        metrics.token_issued("client_credentials");
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(
            r#"latchkey_http_requests_total{method="GET",route="/api/v1/users/{id}",status="200"} 1"#
        ));
        assert!(text.contains(r#"latchkey_tokens_issued_total{grant="client_credentials"} 1"#));
        assert_eq!(status_label(418), "4xx");
    }
}

/// The metrics operation, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics_with_token))]
pub struct Doc;
