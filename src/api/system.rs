//! `GET /api/v1/system/info` (seed 000): what this server is and what it supports.

use actix_web::HttpResponse;
use serde_json::json;

use crate::api::health::VERSION;

/// The capabilities this build implements, as seed 000's `features` list names them.
pub const FEATURES: &[&str] = &[
    "oauth2",
    "openid_connect",
    "pkce",
    "token_revocation",
    "token_introspection",
    "openid_discovery",
    "jwks",
    "key_rotation",
    "single_sign_on",
];

/// How people can authenticate.
pub const AUTH_METHODS: &[&str] = &["password", "oauth2"];

/// Public information about the server.
pub async fn info() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "name": "Latchkey",
            "version": VERSION,
            "api_version": "v1",
            "features": FEATURES,
            "supported_auth_methods": AUTH_METHODS,
        }))
}
