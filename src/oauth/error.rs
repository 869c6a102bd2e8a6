//! Protocol errors, exactly as the RFCs spell them.
//!
//! [`ErrorCode`] holds the registered strings; [`OAuthError`] renders the JSON form of the
//! token, revocation and introspection endpoints (RFC 6749 §5.2), with `Cache-Control:
//! no-store` and, for 401s, `WWW-Authenticate`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::store::StoreError;

/// The registered OAuth 2.0 / OpenID Connect error codes Latchkey uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    InteractionRequired,
    /// OpenID Connect Unmet Authentication Requirements 1.0: an essential `acr` cannot be met.
    UnmetAuthenticationRequirements,
    LoginRequired,
    AccountSelectionRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
}

impl ErrorCode {
    /// The registered string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::LoginRequired => "login_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

/// RFC 6749 §5.2 limits `error_description` to `%x20-21 / %x23-5B / %x5D-7E`: anything else
/// (quotes, backslashes, control and non-ASCII characters) is dropped.
pub fn clean_description(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

/// An error of the token, revocation or introspection endpoint.
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    code: ErrorCode,
    description: String,
    www_authenticate: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl OAuthError {
    /// An error with the status RFC 6749 §5.2 gives it (400, or 401 for `invalid_client`).
    pub fn new(code: ErrorCode, description: impl AsRef<str>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            code,
            description: clean_description(description.as_ref()),
            www_authenticate: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl AsRef<str>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl AsRef<str>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`, with the challenge of the scheme the client tried (RFC 6749 §5.2:
    /// a failed Basic authentication must get `WWW-Authenticate`).
    pub fn invalid_client(description: impl AsRef<str>, used_basic: bool) -> Self {
        let mut error = Self::new(ErrorCode::InvalidClient, description);
        if used_basic {
            error.www_authenticate = Some(r#"Basic realm="latchkey", charset="UTF-8""#.to_owned());
        }
        error
    }

    /// An error of a resource protected by a bearer token (RFC 6750 §3): 401 `invalid_token`,
    /// 403 `insufficient_scope` or 400 `invalid_request`, with the matching challenge. With no
    /// code (no token was sent at all), the challenge carries no error (§3.1).
    pub fn bearer(code: Option<ErrorCode>, description: impl AsRef<str>) -> Self {
        let description = clean_description(description.as_ref());
        let mut error = Self::new(code.unwrap_or(ErrorCode::InvalidToken), &description);
        error.www_authenticate = Some(match code {
            None => r#"Bearer realm="latchkey""#.to_owned(),
            Some(code) => {
                let mut challenge = format!(
                    r#"Bearer realm="latchkey", error="{}", error_description="{}""#,
                    code.as_str(),
                    description
                );
                if code == ErrorCode::InsufficientScope {
                    challenge.push_str(r#", scope="openid""#);
                }
                challenge
            }
        });
        if code.is_none() {
            error.status = StatusCode::UNAUTHORIZED;
        }
        error
    }

    /// `server_error`: the cause is logged by the caller, never shown.
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "The server could not complete the request",
        )
    }

    /// `temporarily_unavailable`: the database cannot be reached.
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "The service is temporarily unavailable",
        )
    }

    /// 413 `invalid_request`: the body is larger than the server accepts.
    pub fn too_large() -> Self {
        let mut error = Self::invalid_request("The request body is too large");
        error.status = StatusCode::PAYLOAD_TOO_LARGE;
        error
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if let Some(challenge) = &self.www_authenticate {
            response.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response.json(json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }))
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage error on a protocol endpoint");
                Self::server_error()
            }
        }
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<StoreError>() {
            Ok(store) => store.into(),
            Err(other) => {
                tracing::error!(error = %format!("{other:#}"), "internal error on a protocol endpoint");
                Self::server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_only_allowed_characters() {
        assert_eq!(clean_description("bad \"value\" \\ é\n"), "bad value  ");
    }
}
