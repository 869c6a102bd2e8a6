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
