//! OpenID Connect: discovery, the JWK Set and the signing keys.

pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod keys;
pub mod logout;
pub mod userinfo;

/// The OpenID Connect operations of this module, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    userinfo::userinfo_get,
    userinfo::userinfo_post,
    discovery::discovery,
    jwks::jwks,
    logout::logout_get,
    logout::logout_post
))]
pub struct Doc;

/// The parameters and bodies of the OpenID Connect endpoints, for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use serde_json::Value;
    use utoipa::{IntoParams, ToSchema};

    /// UserInfo claims (OpenID Connect Core §5.1): `sub`, then those of the granted scopes
    /// (`profile`, `email`, ...) and of the `claims` request.
    #[derive(ToSchema)]
    pub struct UserInfo {
        pub sub: String,
        pub name: Option<String>,
        pub preferred_username: Option<String>,
        pub given_name: Option<String>,
        pub family_name: Option<String>,
        pub email: Option<String>,
        pub email_verified: Option<bool>,
    }

    /// The token as a form parameter.
    #[derive(ToSchema)]
    pub struct UserInfoForm {
        pub access_token: Option<String>,
    }

    /// The provider's metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2); only the
    /// members every client needs are listed here.
    #[derive(ToSchema)]
    pub struct ProviderMetadata {
        pub issuer: String,
        pub authorization_endpoint: String,
        pub token_endpoint: String,
        pub userinfo_endpoint: Option<String>,
        pub jwks_uri: String,
        pub end_session_endpoint: Option<String>,
        pub revocation_endpoint: Option<String>,
        pub introspection_endpoint: Option<String>,
        pub scopes_supported: Option<Vec<String>>,
        pub response_types_supported: Vec<String>,
        pub grant_types_supported: Option<Vec<String>>,
        pub subject_types_supported: Vec<String>,
        pub id_token_signing_alg_values_supported: Vec<String>,
        pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
        pub code_challenge_methods_supported: Option<Vec<String>>,
        pub claims_supported: Option<Vec<String>>,
    }

    /// A JWK Set (RFC 7517 §5).
    #[derive(ToSchema)]
    pub struct JwkSet {
        /// Public keys with `kid`, `use` and `alg`.
        #[schema(value_type = Vec<Object>)]
        pub keys: Vec<Value>,
    }

    /// The parameters of RP-initiated logout (§2).
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct LogoutParams {
        pub id_token_hint: Option<String>,
        pub logout_hint: Option<String>,
        pub client_id: Option<String>,
        pub post_logout_redirect_uri: Option<String>,
        pub state: Option<String>,
        pub ui_locales: Option<String>,
    }

    /// The parameters of RP-initiated logout as a form.
    #[derive(ToSchema)]
    pub struct LogoutForm {
        pub id_token_hint: Option<String>,
        pub logout_hint: Option<String>,
        pub client_id: Option<String>,
        pub post_logout_redirect_uri: Option<String>,
        pub state: Option<String>,
        pub ui_locales: Option<String>,
    }
}
