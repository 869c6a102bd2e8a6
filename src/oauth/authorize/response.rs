//! Delivering an authorization response (or error) to the client: in the query, in the
//! fragment, or as an auto-submitting form (OAuth 2.0 Form Post Response Mode). Every response
//! carries `iss` (RFC 9207) and the `state` exactly as received, encoded by `url`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::domain::ResponseMode;
use crate::oauth::error::{ErrorCode, clean_description};
use crate::web::pages::FormPostPage;
use crate::web::{PageError, render};

use super::request::RequestError;

/// Where and how an authorization response goes.
#[derive(Debug, Clone)]
pub struct ResponseTarget {
    /// The (trusted) redirect URI.
    pub redirect_uri: String,
    /// Query, fragment or form_post.
    pub mode: ResponseMode,
    /// The client's `state`, echoed.
    pub state: Option<String>,
    /// The issuer, sent as `iss`.
    pub issuer: String,
}

impl ResponseTarget {
    /// Sends `params` (plus `state` and `iss`) to the client.
    pub fn deliver(&self, mut params: Vec<(&'static str, String)>) -> HttpResponse {
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        params.push(("iss", self.issuer.clone()));
        match self.mode {
            ResponseMode::FormPost => {
                let mut response = render(
                    StatusCode::OK,
                    &FormPostPage {
                        action: &self.redirect_uri,
                        fields: &params,
                    },
                );
                // The page posts to the client's origin: no referrer, never framed.
                response.headers_mut().insert(
                    actix_web::http::header::REFERRER_POLICY,
                    actix_web::http::header::HeaderValue::from_static("no-referrer"),
                );
                response
            }
            ResponseMode::Query | ResponseMode::Fragment => {
                let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
                    // Registered URIs are validated absolute URIs; this cannot happen.
                    return PageError::internal().error_response();
                };
                if self.mode == ResponseMode::Query {
                    let mut query = url.query_pairs_mut();
                    for (name, value) in &params {
                        query.append_pair(name, value);
                    }
                } else {
                    let fragment = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params.iter().map(|(n, v)| (*n, v.as_str())))
                        .finish();
                    url.set_fragment(Some(&fragment));
                }
                HttpResponse::Found()
                    .insert_header(("Location", url.as_str()))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish()
            }
        }
    }

    /// Sends an error to the client.
    pub fn error(&self, code: ErrorCode, description: &str) -> HttpResponse {
        self.deliver(vec![
            ("error", code.as_str().to_owned()),
            ("error_description", clean_description(description)),
        ])
    }
}

/// An authorization endpoint failure: a page when nothing about the client can be trusted,
/// a redirect with the error otherwise.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the person.
    Page(PageError),
    /// Sent to the client.
    Redirect {
        target: ResponseTarget,
        code: ErrorCode,
        description: String,
    },
}

impl std::fmt::Display for AuthorizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Page(page) => page.fmt(f),
            Self::Redirect {
                code, description, ..
            } => write!(f, "{}: {description}", code.as_str()),
        }
    }
}

impl ResponseError for AuthorizeError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page(page) => page.status_code(),
            Self::Redirect { .. } => StatusCode::FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Page(page) => page.error_response(),
            Self::Redirect {
                target,
                code,
                description,
            } => target.error(*code, description),
        }
    }
}

impl From<RequestError> for AuthorizeError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Page(page) => Self::Page(page),
            RequestError::Redirect {
                target,
                code,
                description,
            } => Self::Redirect {
                target,
                code,
                description,
            },
        }
    }
}

impl From<PageError> for AuthorizeError {
    fn from(error: PageError) -> Self {
        Self::Page(error)
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Page(error.into())
    }
}

impl From<anyhow::Error> for AuthorizeError {
    fn from(error: anyhow::Error) -> Self {
        Self::Page(error.into())
    }
}
