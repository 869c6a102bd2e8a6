//! Reading a bearer token from a request (RFC 6750 §2): the `Authorization` header, or for
//! form POSTs the `access_token` parameter, never both.

use actix_web::HttpRequest;
use actix_web::http::header;

/// Why no token could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No token was sent.
    Missing,
    /// The header is not `Bearer <token>`.
    Malformed,
    /// The token was sent in more than one place.
    Ambiguous,
}

/// The token in the `Authorization: Bearer` header, if any.
pub fn from_header(request: &HttpRequest) -> Result<Option<String>, BearerError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(BearerError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(BearerError::Malformed);
    }
    Ok(Some(token.to_owned()))
}

/// The one token of a request, from the header or from a form's `access_token`.
pub fn token(request: &HttpRequest, form_token: Option<&str>) -> Result<String, BearerError> {
    match (from_header(request)?, form_token) {
        (Some(_), Some(_)) => Err(BearerError::Ambiguous),
        (Some(token), None) => Ok(token),
        (None, Some(token)) => Ok(token.to_owned()),
        (None, None) => Err(BearerError::Missing),
    }
}
