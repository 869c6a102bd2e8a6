//! Cross-origin requests (CORS) from browsers: the public documents (discovery, JWK Set) to
//! any origin; the token, revocation and UserInfo endpoints and the JSON API only to the web
//! origins of registered clients (the origins of their redirect URIs). Preflights are answered
//! here, before routing; an origin no client registered gets a 403 and no CORS headers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use arc_swap::ArcSwap;

use crate::api::error::ApiError;
use crate::paths;
use crate::startup::AppState;
use crate::store::{Store, StoreError, clients, from_json};

/// How long the registered origins are trusted before they are read again (changes made
/// through this instance's admin API apply at once; others within this time).
const REFRESH: Duration = Duration::from_secs(10);

/// Headers a cross-origin caller may read.
const EXPOSED: &str = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, \
X-RateLimit-Window, Retry-After, WWW-Authenticate, Location";

/// Who may call a path from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Any origin (public, credential-free documents).
    Anyone,
    /// The web origins of registered clients.
    RegisteredOrigins,
}

/// The CORS audience of a path, if it takes cross-origin requests at all.
pub fn audience(path: &str) -> Option<Audience> {
    match path {
        paths::OPENID_CONFIGURATION | paths::OAUTH_AUTHORIZATION_SERVER | paths::JWKS => {
            Some(Audience::Anyone)
        }
        paths::TOKEN | paths::API_TOKEN | paths::REVOKE | paths::API_REVOKE | paths::USERINFO => {
            Some(Audience::RegisteredOrigins)
        }
        _ if path.starts_with("/api/v1/") => Some(Audience::RegisteredOrigins),
        _ => None,
    }
}

/// The origin (`scheme://host[:port]`) of a web URL.
fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    matches!(url.scheme(), "http" | "https")
        .then(|| url.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// The registered web origins, read from the clients and kept for a few seconds.
pub struct RegisteredOrigins {
    store: Store,
    cached: ArcSwap<(Option<Instant>, Arc<HashSet<String>>)>,
}

impl std::fmt::Debug for RegisteredOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegisteredOrigins { .. }")
    }
}

impl RegisteredOrigins {
    /// Origins read from `store` when first needed.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cached: ArcSwap::from_pointee((None, Arc::new(HashSet::new()))),
        }
    }

    /// Forgets the cached origins (after a client changed).
    pub fn invalidate(&self) {
        self.cached
            .store(Arc::new((None, Arc::new(HashSet::new()))));
    }

    /// Whether some client registered `origin`.
    pub async fn allows(&self, origin: &str) -> Result<bool, StoreError> {
        let current = self.cached.load_full();
        let origins = match current.0 {
            Some(read) if read.elapsed() < REFRESH => current.1.clone(),
            _ => {
                let stored = self.store.run(clients::all_redirect_uris).await?;
                let mut origins = HashSet::new();
                for list in stored {
                    let uris: Vec<String> = from_json("clients.redirect_uris", &list)?;
                    origins.extend(uris.iter().filter_map(|u| origin_of(u)));
                }
                let origins = Arc::new(origins);
                self.cached
                    .store(Arc::new((Some(Instant::now()), origins.clone())));
                origins
            }
        };
        Ok(origins.contains(origin))
    }
}

fn allow_headers(headers: &mut header::HeaderMap, origin: &HeaderValue, audience: Audience) {
    let allowed = match audience {
        Audience::Anyone => HeaderValue::from_static("*"),
        Audience::RegisteredOrigins => origin.clone(),
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers preflights and marks the responses of cross-origin requests.
pub async fn cors<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, Error> {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let (Some(origin), Some(audience)) = (origin, audience(request.path())) else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let allowed = match (audience, &state) {
        (Audience::Anyone, _) => true,
        (Audience::RegisteredOrigins, Some(state)) => match origin.to_str() {
            Ok(text) => match state.cors_origins.allows(text).await {
                Ok(allowed) => allowed,
                Err(error) => {
                    tracing::warn!(%error, "registered origins unavailable");
                    false
                }
            },
            Err(_) => false,
        },
        (Audience::RegisteredOrigins, None) => false,
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = if allowed {
            let mut response = HttpResponse::NoContent().finish();
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, DPoP, X-Request-Id"),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(600));
            response
        } else {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "cors_origin_not_allowed",
                "This origin is not registered by any client",
            )
            .error_response()
        };
        if allowed {
            allow_headers(response.headers_mut(), &origin, audience);
        }
        return Ok(request.into_response(response).map_into_right_body());
    }
    let mut response = next.call(request).await?;
    if allowed {
        allow_headers(response.headers_mut(), &origin, audience);
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_come_from_web_redirect_uris_only() {
        assert_eq!(
            origin_of("https://app.example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://localhost:3000/callback").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(origin_of("com.example.app:/oauth"), None);
        assert_eq!(audience(paths::JWKS), Some(Audience::Anyone));
        assert_eq!(audience(paths::LOGIN), None);
        assert_eq!(audience("/api/v1/users"), Some(Audience::RegisteredOrigins));
    }
}
