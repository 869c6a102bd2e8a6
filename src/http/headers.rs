//! Security headers on every response: a Content-Security-Policy without inline script that
//! forbids framing, `X-Frame-Options`, `X-Content-Type-Options`, `Referrer-Policy`,
//! `Permissions-Policy`, HSTS when the issuer is https, and `Cache-Control: no-store`. A
//! handler that needs a different policy (a page that frames the clients' front-channel logout
//! URIs; the public documents that may be cached) sets its own header, which is kept.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::startup::AppState;

/// The policy of every response unless its handler sets another: scripts, styles and images
/// only from this server (images also as `data:` URIs, for QR codes), nothing framed, and no
/// framing of these pages by anyone. `form-action` is left open on purpose: a form posted
/// here may end in a redirect to a client, which browsers check against `form-action`.
pub const DEFAULT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// HSTS for an https issuer: two years, subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

fn set_if_absent(headers: &mut header::HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Adds the security headers to a response.
pub async fn security_headers<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let https = request
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.settings.is_https());
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    set_if_absent(headers, header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set_if_absent(headers, header::X_FRAME_OPTIONS, "DENY");
    set_if_absent(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_if_absent(headers, header::REFERRER_POLICY, "no-referrer");
    // Answers are personal (profiles, sessions, audit entries, tokens) or hold one-time
    // values (CSRF tokens): no shared or browser cache may keep one unless its handler says
    // it is public.
    set_if_absent(headers, header::CACHE_CONTROL, "no-store");
    set_if_absent(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if https {
        set_if_absent(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    Ok(response)
}
