//! OpenID Connect: discovery, the JWK Set and the signing keys.

pub mod discovery;
pub mod jwks;
pub mod keys;
