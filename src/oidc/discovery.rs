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
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, IssuerUrl, JsonWebKeySetUrl,
    LanguageTag, ProviderMetadata, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::domain::{ACR_MFA, ACR_PASSWORD, AuthMethod, ResponseType, SigningAlg};
use crate::paths;
use crate::startup::AppState;

/// Metadata members that `openidconnect`'s core type does not model (RFC 8414, RFC 7636,
/// RFC 9207, RFC 7009, RFC 7662, and the OpenID logout specifications).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatchkeyMetadata {
    /// RFC 8414 / RFC 7636: PKCE methods (S256 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// How clients authenticate at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// How clients authenticate at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: every authorization response carries `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// RP-Initiated Logout: where relying parties send people to sign out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Back-Channel Logout: logout tokens are POSTed to registered URIs…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    /// …and carry `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
    /// Front-Channel Logout: the signed-out page loads registered URIs in frames…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_supported: Option<bool>,
    /// …with `iss` and `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_supported: Option<bool>,
}

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

/// The scopes discovery lists (OpenID's standard set).
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// Builds the metadata document.
pub fn metadata(settings: &Settings) -> anyhow::Result<Metadata> {
    let url = |path: &str| settings.url_for(path);
    let response_types = ResponseType::SUPPORTED
        .iter()
        .map(|rt| {
            ResponseTypes::new(
                rt.split(' ')
                    .map(|part| match part {
                        "code" => CoreResponseType::Code,
                        "id_token" => CoreResponseType::IdToken,
                        _ => CoreResponseType::Token,
                    })
                    .collect(),
            )
        })
        .collect();
    let auth_methods: Vec<String> = AuthMethod::ALL
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect();
    let confidential_methods: Vec<String> = AuthMethod::ALL
        .iter()
        .filter(|m| **m != AuthMethod::None)
        .map(|m| m.as_str().to_owned())
        .collect();
    let metadata = Metadata::new(
        IssuerUrl::new(settings.issuer.clone())?,
        AuthUrl::new(url(paths::AUTHORIZE))?,
        JsonWebKeySetUrl::new(url(paths::JWKS))?,
        response_types,
        vec![CoreSubjectIdentifierType::Public],
        signing_algs(),
        LatchkeyMetadata {
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            revocation_endpoint: Some(url(paths::REVOKE)),
            revocation_endpoint_auth_methods_supported: Some(auth_methods.clone()),
            introspection_endpoint: Some(url(paths::INTROSPECT)),
            introspection_endpoint_auth_methods_supported: Some(confidential_methods),
            authorization_response_iss_parameter_supported: Some(true),
            end_session_endpoint: Some(url(paths::LOGOUT)),
            backchannel_logout_supported: Some(true),
            backchannel_logout_session_supported: Some(true),
            frontchannel_logout_supported: Some(true),
            frontchannel_logout_session_supported: Some(true),
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(url(paths::TOKEN))?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(url(paths::USERINFO))?))
    .set_scopes_supported(Some(
        SCOPES.iter().map(|s| Scope::new((*s).to_owned())).collect(),
    ))
    .set_response_modes_supported(Some(vec![
        CoreResponseMode::Query,
        CoreResponseMode::Fragment,
        CoreResponseMode::FormPost,
    ]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::Implicit,
        CoreGrantType::RefreshToken,
        CoreGrantType::ClientCredentials,
    ]))
    .set_acr_values_supported(Some(vec![
        AuthenticationContextClass::new(ACR_PASSWORD.to_owned()),
        AuthenticationContextClass::new(ACR_MFA.to_owned()),
    ]))
    .set_userinfo_signing_alg_values_supported(Some(signing_algs()))
    .set_token_endpoint_auth_methods_supported(Some(
        AuthMethod::ALL
            .iter()
            .map(|m| serde_json::from_value(serde_json::json!(m.as_str())))
            .collect::<Result<_, _>>()?,
    ))
    .set_token_endpoint_auth_signing_alg_values_supported(Some(
        crate::oauth::client_auth::ASSERTION_ALGS
            .iter()
            .map(|a| oidc_alg(*a))
            .collect(),
    ))
    .set_display_values_supported(Some(vec![CoreAuthDisplay::Page, CoreAuthDisplay::Popup]))
    .set_claim_types_supported(Some(vec![CoreClaimType::Normal]))
    .set_claims_supported(Some(
        crate::oidc::claims::supported_claims()
            .into_iter()
            .map(|c| CoreClaimName::new(c.to_owned()))
            .collect(),
    ))
    .set_claims_parameter_supported(Some(true))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false))
    .set_ui_locales_supported(Some(vec![LanguageTag::new("en".to_owned())]));
    Ok(metadata)
}

/// The document's bytes, built once at start.
pub fn document(settings: &Settings) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(&metadata(settings)?)?))
}

/// `GET /.well-known/openid-configuration` and `GET /.well-known/oauth-authorization-server`.
#[utoipa::path(
    get,
    path = crate::paths::OPENID_CONFIGURATION,
    tag = "oidc",
    description = "OpenID Connect Discovery 1.0; the same document is served as RFC 8414 metadata at \
`/.well-known/oauth-authorization-server`.",
    responses(
        (status = 200, description = "The provider's metadata", body = crate::oidc::schema::ProviderMetadata),
    ),
    security(()),
)]
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(state.discovery.clone())
}
