//! Logging, request ids, and the middleware that gives every request both.
//!
//! Each request gets an id (`req_…`) that is sent back in `X-Request-Id`, put in every JSON
//! error body, and written on the one access-log line the request produces. A panic in a
//! handler is caught here and answered with an opaque 500 that carries the same id.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use futures_util::FutureExt;
use rand::RngCore;
use tracing_subscriber::EnvFilter;

use crate::api::error::ApiError;
use crate::config::LogFormat;

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of one request, as sent in `X-Request-Id` and in error bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    fn generate() -> Self {
        let mut bytes = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut bytes);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = String::with_capacity(28);
        id.push_str("req_");
        for b in bytes {
            id.push(char::from(HEX[usize::from(b >> 4)]));
            id.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Self(id)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of the request being handled on this task (`req_unknown` outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.0.clone())
        .unwrap_or_else(|_| "req_unknown".to_owned())
}

/// Installs the global tracing subscriber. Called once, by `main`.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

/// An error (or a caught panic) that escaped the handler, answered inside its request's scope so
/// the body and the `X-Request-Id` header carry the right id.
#[derive(Debug)]
struct ScopedError {
    inner: Option<actix_web::Error>,
    request_id: RequestId,
}

impl std::fmt::Display for ScopedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => inner.fmt(f),
            None => f.write_str("handler panicked"),
        }
    }
}

impl ResponseError for ScopedError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match &self.inner {
            Some(inner) => inner.as_response_error().status_code(),
            None => actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = REQUEST_ID.sync_scope(self.request_id.clone(), || match &self.inner {
            Some(inner) => inner.error_response(),
            None => ApiError::internal().error_response(),
        });
        if let Ok(value) = HeaderValue::from_str(&self.request_id.0) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
}

/// Middleware: request id, panic guard and the access-log line.
///
/// Query strings are never logged: they carry codes, tokens and state.
pub async fn request_context(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = RequestId::generate();
    request.extensions_mut().insert(request_id.clone());
    let method = request.method().clone();
    let path = request.path().to_owned();
    let started = Instant::now();

    let outcome = REQUEST_ID
        .scope(
            request_id.clone(),
            AssertUnwindSafe(next.call(request)).catch_unwind(),
        )
        .await;
    let (result, status) = match outcome {
        Ok(Ok(mut response)) => {
            if let Ok(value) = HeaderValue::from_str(&request_id.0) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            let status = response.status().as_u16();
            (Ok(response.map_into_boxed_body()), status)
        }
        Ok(Err(error)) => {
            let scoped = ScopedError {
                inner: Some(error),
                request_id: request_id.clone(),
            };
            let status = scoped.status_code().as_u16();
            (Err(scoped.into()), status)
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            tracing::error!(request_id = %request_id.0, %method, %path, panic = %message, "handler panicked");
            let scoped = ScopedError {
                inner: None,
                request_id: request_id.clone(),
            };
            (Err(scoped.into()), 500)
        }
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "latchkey::access",
        request_id = %request_id.0,
        %method,
        %path,
        status,
        latency_ms = format_args!("{latency_ms:.2}"),
        "request"
    );
    result
}
