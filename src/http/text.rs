//! NUL characters in request text. No field, identifier or parameter of Latchkey may hold
//! one: it is no part of any name, address or token, and PostgreSQL cannot store it (SQLite
//! would, so refusing it at the door keeps both backends alike). The JSON bodies, forms and
//! query strings are checked as they are read, before anything reaches the database.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::api::error::ApiError;
use crate::paths;

/// Middleware: a JSON API URL whose path or query decodes to a NUL is a 400 before any
/// extractor sees it. The protocol endpoints, their `/api/v1/oauth/` aliases included, check
/// their parameters themselves, to answer in their own forms.
pub async fn refuse_nul_in_api_urls<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let uri = request.uri();
    if uri.path().starts_with(paths::API_V1)
        && !uri.path().starts_with(paths::API_OAUTH)
        && (urlencoded_has_nul(uri.path().as_bytes())
            || urlencoded_has_nul(uri.query().unwrap_or_default().as_bytes()))
    {
        let refusal =
            ApiError::bad_request("The URL holds a NUL character (%00), which no parameter may")
                .error_response();
        return Ok(request.into_response(refusal));
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Whether URL-encoded text (a query string or a form body) decodes to a NUL anywhere.
pub fn urlencoded_has_nul(raw: &[u8]) -> bool {
    raw.contains(&0) || raw.windows(3).any(|w| w == b"%00")
}

/// Whether JSON text has a NUL in a string: the escape `\u0000` (a raw NUL is not JSON). A
/// backslash appears only inside strings, where it always starts an escape of its own.
pub fn json_has_nul(raw: &[u8]) -> bool {
    let mut at = 0;
    while at < raw.len() {
        if raw[at] == b'\\' {
            if raw[at + 1..].starts_with(b"u0000") {
                return true;
            }
            at += 2;
        } else {
            at += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_in_forms_and_json_and_not_in_its_look_alikes() {
        assert!(urlencoded_has_nul(b"a=1&b=x%00"));
        assert!(urlencoded_has_nul(b"a=\0"));
        assert!(!urlencoded_has_nul(b"a=%2500&b=%0A"));
        assert!(json_has_nul(br#"{"a":"x\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(json_has_nul(br#"{"a":"\u00001"}"#));
        assert!(!json_has_nul(br#"{"a":"\u0001 \n"}"#));
    }
}
