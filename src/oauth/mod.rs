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
