//! Server-rendered pages: askama page structs, the CSRF guard, the page error, and the static
//! assets compiled into the binary.

pub mod csrf;
pub mod pages;
pub mod statics;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::telemetry::current_request_id;

/// Renders a page with `status`, never cached (pages carry CSRF tokens and personal data).
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(error) => {
            tracing::error!(%error, "page rendering failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// An error shown to a person as a page, with the request id to quote.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.message)
    }
}

impl PageError {
    /// A page error with a status, a title and a message.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    /// 400: the request cannot be served as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            message,
        )
    }

    /// 403: the form's CSRF token is missing or wrong.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Your session has expired",
            "The form was not accepted because its security token is missing or out of date. \
             Go back, reload the page and try again.",
        )
    }

    /// 500: something failed inside; the cause is logged.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete the request. Quote the request id below when reporting it.",
        )
    }

    /// 503: the database is unreachable.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service is temporarily unavailable. Try again in a moment.",
        )
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        render(
            self.status,
            &pages::ErrorPage {
                title: &self.title,
                message: &self.message,
                request_id: &current_request_id(),
            },
        )
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage error on a page");
                Self::internal()
            }
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<crate::store::StoreError>() {
            Ok(store) => store.into(),
            Err(other) => {
                tracing::error!(error = %format!("{other:#}"), "internal error on a page");
                Self::internal()
            }
        }
    }
}
