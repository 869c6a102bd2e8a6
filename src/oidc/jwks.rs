//! `GET /oauth/jwks`: the public halves of the published signing keys, served from memory.

use actix_web::{HttpResponse, web};

use crate::startup::AppState;

/// Relying parties may cache the set briefly: a new key is published a whole rotation period
/// before it signs, so a cached set never misses a signing key.
const CACHE_CONTROL: &str = "public, max-age=60";

/// Serves the JWK Set document prepared when the keys were last loaded.
#[utoipa::path(
    get,
    path = crate::paths::JWKS,
    tag = "oidc",
    description = "The JWK Set (RFC 7517): the public halves of the signing keys, a new key published \
before it signs and an old one kept until its tokens have expired.",
    responses(
        (status = 200, description = "The signing keys", body = crate::oidc::schema::JwkSet),
    ),
    security(()),
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", CACHE_CONTROL))
        .body(state.keys.current().jwks())
}
