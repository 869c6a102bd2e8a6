//! OpenID Connect: discovery, the JWK Set and the signing keys.

pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod keys;
pub mod logout;
pub mod userinfo;
