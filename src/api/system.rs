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
#[utoipa::path(
    get,
    path = crate::paths::SYSTEM_INFO,
    tag = "system",
    responses(
        (status = 200, description = "What this server is and supports", body = schema::SystemInfo),
    ),
    security(()),
)]
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

/// This module's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(info))]
pub struct Doc;

/// The shapes of this module's responses for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use utoipa::ToSchema;

    /// Seed 000's system information.
    #[derive(ToSchema)]
    pub struct SystemInfo {
        /// `Latchkey`.
        pub name: String,
        pub version: String,
        /// `v1`.
        pub api_version: String,
        pub features: Vec<String>,
        pub supported_auth_methods: Vec<String>,
    }
}
