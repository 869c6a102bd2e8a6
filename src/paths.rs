//! Every endpoint path, in one place.
//!
//! The router and the discovery document both read these constants, so a path is never
//! spelled twice and discovery can never advertise a path the router does not serve.

/// OpenID Connect Discovery 1.0 document.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 authorization server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// The authorization endpoint (GET and POST).
pub const AUTHORIZE: &str = "/oauth/authorize";
/// Where the authorization flow resumes after a login, an account choice or a consent.
pub const AUTHORIZE_RESUME: &str = "/oauth/authorize/resume";
/// The token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// RFC 7009 token revocation.
pub const REVOKE: &str = "/oauth/revoke";
/// RFC 7662 token introspection.
pub const INTROSPECT: &str = "/oauth/introspect";
/// The UserInfo endpoint (GET and POST).
pub const USERINFO: &str = "/oauth/userinfo";
/// Seed 000's alias of the authorization endpoint.
pub const API_AUTHORIZE: &str = "/api/v1/oauth/authorize";
/// Seed 000's alias of the token endpoint.
pub const API_TOKEN: &str = "/api/v1/oauth/token";
/// Seed 000's alias of the revocation endpoint.
pub const API_REVOKE: &str = "/api/v1/oauth/revoke";
/// The login page of an authorization request.
pub const LOGIN: &str = "/login";
/// The consent page of an authorization request.
pub const CONSENT: &str = "/consent";
/// The "signed in as …" page for `prompt=select_account`.
pub const SELECT_ACCOUNT: &str = "/select-account";
/// Static assets compiled into the binary.
pub const STATIC: &str = "/static/{path:.*}";
/// The JWK Set with the public halves of the signing keys.
pub const JWKS: &str = "/oauth/jwks";

/// Liveness probe for load balancers (seed 001).
pub const HEALTH: &str = "/health";
/// Health with the database check, its response time and the pool state (seed 001).
pub const HEALTH_DETAILED: &str = "/health/detailed";
/// Base of the JSON API.
pub const API_V1: &str = "/api/v1";
/// Seed 000's health endpoint, under the API base.
pub const SYSTEM_HEALTH: &str = "/api/v1/system/health";
/// Seed 000's public system information.
pub const SYSTEM_INFO: &str = "/api/v1/system/info";
