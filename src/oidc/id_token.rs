//! ID tokens, built with `openidconnect`'s typed claims (which also computes `at_hash` and
//! `c_hash`) and signed with our keys in memory.

use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, IdToken, IdTokenClaims, PrivateSigningKey,
    SigningError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::{SigningAlg, now};
use crate::oidc::discovery::oidc_alg;
use crate::oidc::keys::{ActiveKey, KeySet};

/// Claims Latchkey adds to the ID token beyond the standard set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatchkeyIdTokenClaims {
    /// The session id (OpenID Connect Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AdditionalClaims for LatchkeyIdTokenClaims {}

/// Latchkey's ID token type.
pub type LatchkeyIdToken = IdToken<
    LatchkeyIdTokenClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Lends one of our active keys to `openidconnect`.
struct Signer<'a>(&'a ActiveKey);

impl PrivateSigningKey for Signer<'_> {
    type VerificationKey = CoreJsonWebKey;

    fn sign(
        &self,
        _alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        self.0
            .sign(message)
            .map_err(|e| SigningError::Other(e.to_string()))
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        self.0.public_jwk().clone()
    }
}

/// What goes into one ID token.
#[derive(Debug)]
pub struct IdTokenContent<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub alg: SigningAlg,
    pub lifetime_secs: u64,
    pub subject: &'a str,
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a [String],
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// The access token issued beside it (for `at_hash`).
    pub access_token: Option<&'a str>,
    /// The code issued beside it (for `c_hash`).
    pub code: Option<&'a str>,
    /// Standard claims to include.
    pub claims: Map<String, Value>,
}

/// Builds and signs an ID token.
pub fn mint(keys: &KeySet, content: IdTokenContent<'_>) -> anyhow::Result<String> {
    let key = keys
        .active(content.alg)
        .ok_or_else(|| anyhow::anyhow!("no active {} signing key", content.alg))?;
    let issued = now();
    let mut body = content.claims;
    let mut set = |name: &str, value: Value| {
        body.insert(name.to_owned(), value);
    };
    set("iss", json!(content.issuer));
    set("sub", json!(content.subject));
    set("aud", json!([content.client_id]));
    set("azp", json!(content.client_id));
    set("exp", json!(issued + content.lifetime_secs as i64));
    set("iat", json!(issued));
    set("auth_time", json!(content.auth_time));
    set("acr", json!(content.acr));
    if !content.amr.is_empty() {
        set("amr", json!(content.amr));
    }
    if let Some(nonce) = content.nonce {
        set("nonce", json!(nonce));
    }
    if let Some(sid) = content.sid {
        set("sid", json!(sid));
    }
    // Typed claims refuse a value of the wrong type before anything is signed.
    let claims: IdTokenClaims<LatchkeyIdTokenClaims, CoreGenderClaim> =
        serde_json::from_value(Value::Object(body))?;
    let access_token = content.access_token.map(|t| AccessToken::new(t.to_owned()));
    let code = content.code.map(|c| AuthorizationCode::new(c.to_owned()));
    let token = LatchkeyIdToken::new(
        claims,
        &Signer(key),
        oidc_alg(content.alg),
        access_token.as_ref(),
        code.as_ref(),
    )?;
    Ok(token.to_string())
}
