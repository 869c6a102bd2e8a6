//! The JSON API's error form (seed 000), and the mapping of lower errors into it.
//!
//! `{"error": "snake_code", "message": "...", "code": 400, "details": ..., "request_id": "req_..."}`
//! Every error the JSON API sends goes through [`ApiError`], so the form is decided here once.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use crate::store::StoreError;
use crate::telemetry::current_request_id;

/// One entry of a 422's `details`.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault (dotted path for nested fields).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answered in the JSON API's form. Boxed, so that `Result<T, ApiError>` stays small
/// on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    error: &'static str,
    message: String,
    details: Option<Value>,
    extra: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.error,
            self.0.message
        )
    }
}

impl ApiError {
    /// An error with a status, a snake_case code and a human message.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            error,
            message: message.into(),
            details: None,
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 `validation_error` with per-field details.
    pub fn validation(details: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "Request validation failed",
        )
        .with_details(serde_json::to_value(details).expect("field errors serialise"))
    }

    /// 503 `service_unavailable`: the database (or another dependency) is unreachable.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable; try again shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
    }

    /// 500 `internal_error`: opaque to the caller; the cause is logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred; quote the request id when reporting it",
        )
    }

    /// Attaches `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Adds a top-level member (e.g. `retry_after`, `mfa_token`).
    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a response header (e.g. `WWW-Authenticate`, `Retry-After`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// The snake_case code.
    pub fn code(&self) -> &'static str {
        self.0.error
    }

    /// The body as JSON, with this request's id.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "error": self.0.error,
            "message": self.0.message,
            "code": self.0.status.as_u16(),
        });
        let object = body.as_object_mut().expect("an object literal");
        if let Some(details) = &self.0.details {
            object.insert("details".into(), details.clone());
        }
        for (name, value) in &self.0.extra {
            object.insert(name.clone(), value.clone());
        }
        object.insert("request_id".into(), Value::String(current_request_id()));
        body
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.0.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for (name, value) in &self.0.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.body())
    }
}

impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _request: &actix_web::HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::not_found("The resource does not exist"),
            StoreError::Conflict { .. } => Self::conflict("The resource already exists"),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if let Some(StoreError::Unavailable(reason)) = error.downcast_ref::<StoreError>() {
            tracing::warn!(%reason, "database unavailable");
            return Self::unavailable();
        }
        tracing::error!(error = %format!("{error:#}"), "internal error");
        Self::internal()
    }
}

/// Turns actix's JSON extractor failures into the contract's form: an oversized body is a 413,
/// a wrong content type a 415, malformed JSON a 400 and well-formed JSON of the wrong shape a
/// 422, each with details.
pub fn json_error(error: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than the limit of {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be application/json",
        ),
        E::Deserialize(e) if e.is_data() => {
            ApiError::validation(vec![FieldError::new("body", e.to_string())])
        }
        E::Deserialize(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "The request body is not valid JSON",
        )
        .with_details(json!({"line": e.line(), "column": e.column(), "reason": e.to_string()})),
        other => ApiError::bad_request(format!("The request body could not be read: {other}")),
    }
}

/// A query string that does not fit the endpoint's parameters (a number that is not one, …).
pub fn query_error(error: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request(format!("The query string is invalid: {error}"))
}

/// A path segment that does not parse.
pub fn path_error(error: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request(format!("The path is invalid: {error}"))
}

/// The answer for a path no route serves.
pub async fn not_found(request: actix_web::HttpRequest) -> ApiError {
    ApiError::not_found(format!(
        "No resource at {} {}",
        request.method(),
        request.path()
    ))
}

/// The answer for a known path asked with a method it does not serve (RFC 9110 §15.5.6:
/// with an `Allow` header listing the methods it does serve).
pub fn method_not_allowed(allow: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("This resource allows only {allow}"),
    )
    .with_header(
        header::ALLOW,
        HeaderValue::from_str(allow).unwrap_or(HeaderValue::from_static("GET")),
    )
}

impl From<crate::admin::AdminError> for ApiError {
    fn from(error: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError as E;
        match error {
            E::NotFound(what) => Self::not_found(format!("No such {what}")),
            E::Conflict(message) => Self::conflict(message),
            E::Forbidden(message) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            E::Invalid(fields) => Self::validation(
                fields
                    .into_iter()
                    .map(|(field, message)| FieldError::new(field, message))
                    .collect(),
            ),
            E::Store(error) => error.into(),
        }
    }
}
