//! OAuth 2.0: clients (and, as they land, the grants, revocation and introspection).

pub mod access_token;
pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod clients;
pub mod error;
pub mod introspect;
pub mod issue;
pub mod params;
pub mod revoke;
pub mod token;

/// The protocol operations of this module, for the OpenAPI document (the `/api/v1/oauth`
/// aliases are added there).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    authorize::authorize_get,
    authorize::authorize_post,
    token::token,
    revoke::revoke,
    introspect::introspect
))]
pub struct Doc;

/// The parameters and bodies of the protocol endpoints, for the OpenAPI document.
#[allow(dead_code)]
pub mod schema {
    use utoipa::{IntoParams, ToSchema};

    /// The parameters of an authorization request (RFC 6749 §4.1.1, OpenID Connect Core
    /// §3.1.2.1, RFC 7636): the query of a GET, and the form of a POST.
    #[derive(IntoParams, ToSchema)]
    #[into_params(parameter_in = Query)]
    pub struct AuthorizationParams {
        /// `code`.
        pub response_type: Option<String>,
        pub client_id: Option<String>,
        /// One of the client's registered redirect URIs.
        pub redirect_uri: Option<String>,
        /// Space-separated; `openid` for an OpenID Connect request.
        pub scope: Option<String>,
        pub state: Option<String>,
        pub nonce: Option<String>,
        /// `query` or `form_post`.
        pub response_mode: Option<String>,
        /// PKCE (RFC 7636).
        pub code_challenge: Option<String>,
        /// `S256`.
        pub code_challenge_method: Option<String>,
        /// `none`, `login`, `consent` and/or `select_account`.
        pub prompt: Option<String>,
        /// Seconds since the last authentication that are acceptable.
        pub max_age: Option<String>,
        pub login_hint: Option<String>,
        pub id_token_hint: Option<String>,
        pub acr_values: Option<String>,
        pub ui_locales: Option<String>,
        /// The `claims` request (JSON).
        pub claims: Option<String>,
        /// A request object (unsigned or signed).
        pub request: Option<String>,
    }

    /// A token request (RFC 6749 §4.1.3, §6, §4.4) with the client's credentials when they are
    /// not in the `Authorization` header.
    #[derive(ToSchema)]
    pub struct TokenForm {
        /// `authorization_code`, `refresh_token` or `client_credentials`.
        pub grant_type: String,
        /// The authorization code (`authorization_code`).
        pub code: Option<String>,
        /// The redirect URI of the authorization request (`authorization_code`).
        pub redirect_uri: Option<String>,
        /// The PKCE verifier (`authorization_code`).
        pub code_verifier: Option<String>,
        /// The refresh token (`refresh_token`).
        pub refresh_token: Option<String>,
        /// A narrower scope (`refresh_token`, `client_credentials`).
        pub scope: Option<String>,
        /// `client_secret_post` and `none`.
        pub client_id: Option<String>,
        /// `client_secret_post`.
        pub client_secret: Option<String>,
        /// `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
        pub client_assertion_type: Option<String>,
        /// `private_key_jwt`: the signed assertion.
        pub client_assertion: Option<String>,
    }

    /// A successful token response (RFC 6749 §5.1; mirrors `oauth::token::TokenResponse`).
    #[derive(ToSchema)]
    pub struct TokenResponseBody {
        /// A JWT (RFC 9068).
        pub access_token: String,
        /// `Bearer`.
        pub token_type: String,
        pub expires_in: u64,
        pub refresh_token: Option<String>,
        /// Seconds the refresh token stays valid.
        pub refresh_expires_in: Option<u64>,
        /// With the `openid` scope.
        pub id_token: Option<String>,
        /// The scope granted.
        pub scope: Option<String>,
    }

    /// A revocation request (RFC 7009 §2.1).
    #[derive(ToSchema)]
    pub struct RevocationForm {
        pub token: String,
        /// `access_token` or `refresh_token`.
        pub token_type_hint: Option<String>,
        pub client_id: Option<String>,
        pub client_secret: Option<String>,
        pub client_assertion_type: Option<String>,
        pub client_assertion: Option<String>,
    }

    /// An introspection request (RFC 7662 §2.1).
    #[derive(ToSchema)]
    pub struct IntrospectionForm {
        pub token: String,
        /// `access_token` or `refresh_token`.
        pub token_type_hint: Option<String>,
        pub client_id: Option<String>,
        pub client_secret: Option<String>,
        pub client_assertion_type: Option<String>,
        pub client_assertion: Option<String>,
    }

    /// An introspection response (RFC 7662 §2.2): only `active` for an inactive token.
    #[derive(ToSchema)]
    pub struct Introspection {
        pub active: bool,
        pub scope: Option<String>,
        pub client_id: Option<String>,
        pub sub: Option<String>,
        pub username: Option<String>,
        pub exp: Option<i64>,
        pub iat: Option<i64>,
        pub nbf: Option<i64>,
        pub jti: Option<String>,
        /// `Bearer` or `refresh_token`.
        pub token_type: Option<String>,
        pub aud: Option<String>,
        pub iss: Option<String>,
        pub roles: Option<Vec<String>>,
        pub permissions: Option<Vec<String>>,
        /// The session.
        pub sid: Option<String>,
    }
}
