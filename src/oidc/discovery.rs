//! Discovery: OpenID Connect Discovery 1.0 and RFC 8414 metadata, built from [`crate::paths`]
//! and the settings once at start, and served from memory.
//!
//! Only what the server implements is listed: each capability adds its members here.

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySetUrl, ProviderMetadata,
    ResponseTypes,
};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::domain::SigningAlg;
use crate::paths;
use crate::startup::AppState;

/// Metadata members that `openidconnect`'s core type does not model (RFC 8414, RFC 7636,
/// RFC 9207, RFC 7009, RFC 7662, and the OpenID logout specifications).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatchkeyMetadata {}

impl AdditionalProviderMetadata for LatchkeyMetadata {}

/// Latchkey's provider metadata type.
pub type Metadata = ProviderMetadata<
    LatchkeyMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The `openidconnect` name of one of our signing algorithms.
pub fn oidc_alg(alg: SigningAlg) -> CoreJwsSigningAlgorithm {
    match alg {
        SigningAlg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        SigningAlg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        SigningAlg::Ps256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        SigningAlg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
    }
}

/// Every signing algorithm, RS256 first (the OpenID default).
fn signing_algs() -> Vec<CoreJwsSigningAlgorithm> {
    let mut algs: Vec<SigningAlg> = SigningAlg::ALL.to_vec();
    algs.sort_by_key(|a| *a != SigningAlg::Rs256);
    algs.into_iter().map(oidc_alg).collect()
}

/// Builds the metadata document.
pub fn metadata(settings: &Settings) -> anyhow::Result<Metadata> {
    let url = |path: &str| settings.url_for(path);
    let metadata = Metadata::new(
        IssuerUrl::new(settings.issuer.clone())?,
        AuthUrl::new(url(paths::AUTHORIZE))?,
        JsonWebKeySetUrl::new(url(paths::JWKS))?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        signing_algs(),
        LatchkeyMetadata::default(),
    );
    Ok(metadata)
}

/// The document's bytes, built once at start.
pub fn document(settings: &Settings) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(&metadata(settings)?)?))
}

/// `GET /.well-known/openid-configuration` and `GET /.well-known/oauth-authorization-server`.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(state.discovery.clone())
}
