//! CSRF protection for every form: a signed double-submit token, bound to the session.
//!
//! The `lk_csrf` cookie (`__Host-lk_csrf` under an https issuer) holds a random value; each
//! form carries the HMAC, under a server key, of that value and of the browser's session
//! cookie. A cross-site page can make the browser send the cookies but can neither read them
//! nor compute the token; and a token from before a sign-in (one an attacker who planted the
//! CSRF cookie could know) does not serve after it.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::crypto::{Crypto, constant_time_eq};
use crate::domain::PlainToken;
use crate::http::{BodyError, read_body};
use crate::startup::AppState;
use crate::web::PageError;

/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "lk_csrf";
/// Its name under an https issuer (see [`crate::sessions::browser::SECURE_SESSION_COOKIE`]).
pub const SECURE_CSRF_COOKIE: &str = "__Host-lk_csrf";

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_CSRF_COOKIE
    } else {
        CSRF_COOKIE
    }
}

/// The text a form token signs: the CSRF cookie's value and the session the browser holds.
fn signed_text(request: &HttpRequest, value: &str) -> String {
    let session = crate::sessions::browser::cookie_secret(request).unwrap_or_default();
    format!("{value}|{session}")
}

/// The token to put in a page's forms, and the cookie to set if the browser had none.
pub struct CsrfGuard {
    /// The form field value.
    pub token: String,
    /// A new cookie to send with the page, when the browser had no valid one.
    pub cookie: Option<Cookie<'static>>,
}

fn valid_cookie(request: &HttpRequest) -> Option<String> {
    request
        .cookie(cookie_name(crate::sessions::browser::secure_cookies(
            request,
        )))
        .map(|c| c.value().to_owned())
        .filter(|v| v.starts_with("lk_x_") && v.len() < 100)
}

/// The CSRF token for a page, reusing the browser's cookie when it has one.
pub fn issue(request: &HttpRequest, crypto: &Crypto, secure: bool) -> CsrfGuard {
    match valid_cookie(request) {
        Some(value) => CsrfGuard {
            token: crypto.csrf_token(&signed_text(request, &value)),
            cookie: None,
        },
        None => {
            let value = PlainToken::generate("lk_x_");
            CsrfGuard {
                token: crypto.csrf_token(&signed_text(request, value.expose())),
                cookie: Some(
                    Cookie::build(cookie_name(secure), value.expose().to_owned())
                        .path("/")
                        .http_only(true)
                        .secure(secure)
                        .same_site(SameSite::Lax)
                        .finish(),
                ),
            }
        }
    }
}

/// Whether a submitted form token belongs to the browser's CSRF cookie.
pub fn verify(request: &HttpRequest, crypto: &Crypto, submitted: &str) -> bool {
    match valid_cookie(request) {
        Some(value) => constant_time_eq(
            crypto.csrf_token(&signed_text(request, &value)).as_bytes(),
            submitted.as_bytes(),
        ),
        None => false,
    }
}

/// Reads a form posted by one of our pages and checks its CSRF token.
pub async fn read_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    http: &HttpRequest,
    payload: web::Payload,
) -> Result<T, PageError> {
    let body = read_body(payload, 16 * 1024).await.map_err(|e| match e {
        BodyError::TooLarge => PageError::bad_request("The form is too large."),
        BodyError::Broken => PageError::bad_request("The form could not be read."),
    })?;
    let token = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "csrf_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !verify(http, &state.crypto, &token) {
        return Err(PageError::csrf());
    }
    if crate::http::text::urlencoded_has_nul(&body) {
        return Err(PageError::bad_request(
            "The form holds a NUL character, which no field may.",
        ));
    }
    serde_urlencoded::from_bytes(&body).map_err(|_| {
        PageError::bad_request("The form is missing a field or has an unexpected one.")
    })
}

/// Renders a page with its CSRF token, setting the CSRF cookie when the browser has none.
pub fn page_with_csrf(
    state: &AppState,
    http: &HttpRequest,
    status: StatusCode,
    build: impl FnOnce(&str) -> HttpResponse,
) -> HttpResponse {
    let guard = issue(http, &state.crypto, state.settings.is_https());
    let mut response = build(&guard.token);
    response.head_mut().status = status;
    if let Some(cookie) = guard.cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}
