//! Shared HTTP plumbing: declaring an endpoint's methods once, so that a wrong method gets a
//! 405 with an `Allow` header that can never disagree with the routes.

use actix_web::dev::HttpServiceFactory;
use actix_web::{FromRequest, Handler, Resource, Responder, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::api::error::method_not_allowed;

pub mod cors;
pub mod headers;
pub mod outbound;
pub mod routes;
pub mod text;

pub use routes::declared_routes;

/// An endpoint under construction: a path and the methods it serves.
pub struct Endpoint {
    path: String,
    resource: Resource,
    allow: Vec<&'static str>,
}

/// Starts an endpoint at `path` (one of [`crate::paths`]).
pub fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        path: path.to_owned(),
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

macro_rules! method {
    ($name:ident, $route:path, $text:literal) => {
        /// Serves this method with `handler`.
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource = self.resource.route($route().to(handler));
            self.allow.push($text);
            self
        }
    };
}

macro_rules! guarded_method {
    ($name:ident, $route:path, $text:literal) => {
        /// Serves this method with `handler` to callers holding every one of `permissions`:
        /// the access token is checked (401) and the permissions (403) before anything else
        /// of the request — its query, its body — is read.
        pub fn $name<F, Args>(mut self, permissions: &'static [&'static str], handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource =
                self.resource
                    .route($route().to(handler).wrap(actix_web::middleware::from_fn(
                        move |request, next| {
                            crate::api::extract::authorize(permissions, request, next)
                        },
                    )));
            self.allow.push($text);
            self
        }
    };
}

impl Endpoint {
    method!(get, web::get, "GET");
    method!(post, web::post, "POST");
    method!(put, web::put, "PUT");
    method!(patch, web::patch, "PATCH");
    method!(delete, web::delete, "DELETE");
    guarded_method!(get_as, web::get, "GET");
    guarded_method!(post_as, web::post, "POST");
    guarded_method!(put_as, web::put, "PUT");
    guarded_method!(patch_as, web::patch, "PATCH");
    guarded_method!(delete_as, web::delete, "DELETE");

    /// The finished resource: any other method is answered 405 with `Allow`.
    pub fn finish(self) -> impl HttpServiceFactory {
        routes::record(&self.path, &self.allow);
        let allow = self.allow.join(", ");
        self.resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(&allow) }
        }))
    }
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the configured limit.
    TooLarge,
    /// The connection failed while the body was read.
    Broken,
}

/// Reads a request body of at most `limit` bytes, so every endpoint answers an oversized
/// body in its own error form.
pub async fn read_body<S>(mut payload: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of a request (`application/json`, ...), lower-cased, without parameters.
pub fn media_type(request: &actix_web::HttpRequest) -> String {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The client's address: the peer, or — when the peer is a trusted reverse proxy — the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Addresses a
/// client wrote into the header before the trusted proxies are never believed.
pub fn client_ip(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[crate::config::ProxyNet],
) -> Option<std::net::IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A malformed hop ends what can be believed.
            Err(_) => break,
        }
    }
    Some(client)
}

/// The network a per-address counter (a rate limit, a lockout) keys on: an IPv4 address
/// itself, an IPv6 address by its /64, the block one subscriber is usually given (a host that
/// holds a /64 could otherwise take a fresh address, and a fresh budget, for every request).
/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) counts as itself.
pub fn address_bucket(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Middleware, outermost: rewrites the path to its one canonical spelling before anything
/// reads it, decoding percent-encoded unreserved characters (`%61` is `a`; RFC 3986 §6.2.2.2
/// says they are the same path). The router matches decoded paths, so without this the rate
/// limits, the NUL guard and CORS, which read the path, could be walked around by spelling a
/// path another way. Reserved and other characters stay encoded, as the router leaves them.
pub async fn canonical_path<B: actix_web::body::MessageBody + 'static>(
    mut request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<B>, actix_web::Error> {
    if let Some(path) = decode_unreserved(request.uri().path()) {
        let mut parts = request.head().uri.clone().into_parts();
        let query = parts
            .path_and_query
            .as_ref()
            .and_then(|pq| pq.query())
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Ok(path_and_query) = format!("{path}{query}").parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
                request.match_info_mut().get_mut().update(&uri);
                request.head_mut().uri = uri;
            }
        }
    }
    next.call(request).await
}

/// The path with its percent-encoded unreserved characters decoded; `None` when it has none.
fn decode_unreserved(path: &str) -> Option<String> {
    if !path.contains('%') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut changed = false;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            let hex = &path[at + 1..at + 3];
            if let Ok(byte) = u8::from_str_radix(hex, 16)
                && (byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~'))
            {
                out.push(byte as char);
                changed = true;
                at += 3;
                continue;
            }
        }
        out.push(bytes[at] as char);
        at += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_as_themselves() {
        let bucket = |text: &str| address_bucket(text.parse().unwrap());
        assert_eq!(bucket("203.0.113.9"), "203.0.113.9");
        assert_eq!(bucket("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(bucket("2001:db8:1:3::1"), bucket("2001:db8:1:2::1"));
    }

    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<crate::config::ProxyNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = Some("10.0.0.5:443".parse().unwrap());
        let stranger = Some("203.0.113.9:5000".parse().unwrap());
        let headers = forwarded("198.51.100.1, 192.0.2.7, 10.0.0.9");
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            Some("192.0.2.7".parse().unwrap()),
            "the right-most untrusted hop, not the spoofable left-most"
        );
        assert_eq!(
            client_ip(stranger, &headers, &trusted),
            Some("203.0.113.9".parse().unwrap()),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_ip(proxy, &forwarded("not-an-ip"), &trusted),
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &[]),
            Some("10.0.0.5".parse().unwrap())
        );
    }

    #[test]
    fn only_unreserved_characters_are_decoded() {
        assert_eq!(
            decode_unreserved("/%61pi/v1/auth/%6Cogin").as_deref(),
            Some("/api/v1/auth/login")
        );
        assert_eq!(decode_unreserved("/a%7Eb%2Dc").as_deref(), Some("/a~b-c"));
        assert_eq!(decode_unreserved("/api/v1/users"), None);
        assert_eq!(decode_unreserved("/a%2Fb%00c%25"), None);
        assert_eq!(decode_unreserved("/x%6"), None);
        assert_eq!(decode_unreserved("/x%"), None);
    }
}
