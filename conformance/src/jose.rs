//! JWTs, JWK Sets and signatures: parsing, the suite's JWKS rules (checklist §6.3), key
//! selection and signature verification (`AbstractVerifyJwsSignature`), and `at_hash`/`c_hash`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::report::{Finding, Level};

/// A parsed (not yet verified) JWS compact serialization.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub raw: String,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Decodes base64url, with or without padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` only uses the unpadded base64url alphabet.
pub fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Jwt {
    /// Parses a compact JWS; a JWE (5 parts) or anything else is an error.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() == 5 {
            return Err("the token is a JWE (encrypted), but the client registered no keys".into());
        }
        if parts.len() != 3 {
            return Err(format!(
                "not a JWT: {} dot-separated parts instead of 3",
                parts.len()
            ));
        }
        let decode_json = |part: &str, what: &str| -> Result<Map<String, Value>, String> {
            let bytes = b64url_decode(part).ok_or(format!("the {what} is not base64url"))?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(format!("the {what} is not a JSON object")),
            }
        };
        let header = decode_json(parts[0], "header")?;
        let claims = decode_json(parts[1], "payload")?;
        let signature = b64url_decode(parts[2]).ok_or("the signature is not base64url")?;
        Ok(Self {
            raw: raw.to_owned(),
            header,
            claims,
            signing_input: format!("{}.{}", parts[0], parts[1]),
            signature,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// A string claim.
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric claim (as seconds).
    pub fn num_claim(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    /// Verifies the signature with a key of `jwks`, choosing the key as the suite does.
    pub fn verify(&self, jwks: &Value) -> Result<(), String> {
        let alg = self.alg().ok_or("the JWS header has no alg")?;
        if alg == "none" {
            return Err("the token is unsigned (alg none)".into());
        }
        let kty = kty_for_alg(alg).ok_or(format!("unsupported signing algorithm {alg}"))?;
        let keys = signing_keys(jwks);
        let kid = self.header.get("kid").and_then(Value::as_str);
        let matches_alg = |k: &Map<String, Value>| {
            k.get("kty").and_then(Value::as_str) == Some(kty)
                && k.get("alg")
                    .and_then(Value::as_str)
                    .is_none_or(|a| a == alg)
        };
        match kid {
            Some(kid) => {
                let candidates: Vec<&Map<String, Value>> = keys
                    .iter()
                    .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                    .filter(|k| matches_alg(k))
                    .copied()
                    .collect();
                match candidates.len() {
                    0 => Err(format!(
                        "no key in the server JWKS has kid {kid} with kty {kty} usable for {alg}"
                    )),
                    1 => self.verify_with(alg, candidates[0]),
                    n => Err(format!(
                        "{n} keys in the server JWKS share kid {kid}, kty {kty} and alg {alg}"
                    )),
                }
            }
            None => {
                let mut last = format!("no key with kty {kty} in the server JWKS");
                for key in keys.iter().filter(|k| matches_alg(k)) {
                    match self.verify_with(alg, key) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e,
                    }
                }
                Err(format!(
                    "no key verifies the signature (no kid in the header): {last}"
                ))
            }
        }
    }

    fn verify_with(&self, alg: &str, key: &Map<String, Value>) -> Result<(), String> {
        let verifier = verifier(alg, key)?;
        verifier
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|e| format!("the signature does not verify with the selected key: {e}"))
    }
}

/// The key type an algorithm needs.
fn kty_for_alg(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("RSA"),
        "ES256" | "ES384" | "ES512" | "ES256K" => Some("EC"),
        "EdDSA" | "Ed25519" => Some("OKP"),
        _ => None,
    }
}

/// The keys that may sign: `use` absent or `sig`.
fn signing_keys(jwks: &Value) -> Vec<&Map<String, Value>> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_object)
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A josekit verifier for `alg` from a JWK.
fn verifier(alg: &str, key: &Map<String, Value>) -> Result<Box<dyn JwsVerifier>, String> {
    let jwk = Jwk::from_map(key.clone()).map_err(|e| format!("the JWK does not parse: {e}"))?;
    let err = |e: josekit::JoseError| format!("the JWK is not a valid {alg} key: {e}");
    Ok(match alg {
        "RS256" => Box::new(josekit::jws::RS256.verifier_from_jwk(&jwk).map_err(err)?),
        "RS384" => Box::new(josekit::jws::RS384.verifier_from_jwk(&jwk).map_err(err)?),
        "RS512" => Box::new(josekit::jws::RS512.verifier_from_jwk(&jwk).map_err(err)?),
        "PS256" => Box::new(josekit::jws::PS256.verifier_from_jwk(&jwk).map_err(err)?),
        "PS384" => Box::new(josekit::jws::PS384.verifier_from_jwk(&jwk).map_err(err)?),
        "PS512" => Box::new(josekit::jws::PS512.verifier_from_jwk(&jwk).map_err(err)?),
        "ES256" => Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).map_err(err)?),
        "ES384" => Box::new(josekit::jws::ES384.verifier_from_jwk(&jwk).map_err(err)?),
        "ES512" => Box::new(josekit::jws::ES512.verifier_from_jwk(&jwk).map_err(err)?),
        "ES256K" => Box::new(josekit::jws::ES256K.verifier_from_jwk(&jwk).map_err(err)?),
        "EdDSA" | "Ed25519" => Box::new(josekit::jws::EdDSA.verifier_from_jwk(&jwk).map_err(err)?),
        other => return Err(format!("unsupported algorithm {other}")),
    })
}

/// The algorithm a key is checked with when it names none.
fn default_alg(key: &Map<String, Value>) -> Option<&'static str> {
    let crv = key.get("crv").and_then(Value::as_str);
    match key.get("kty").and_then(Value::as_str)? {
        "RSA" => Some("RS256"),
        "EC" => match crv? {
            "P-256" => Some("ES256"),
            "P-384" => Some("ES384"),
            "P-521" => Some("ES512"),
            "secp256k1" => Some("ES256K"),
            _ => None,
        },
        "OKP" => match crv? {
            "Ed25519" | "Ed448" => Some("EdDSA"),
            _ => None,
        },
        _ => None,
    }
}

/// The checks every module runs on the server JWKS after `FetchServerKeys`:
/// `CheckServerKeysIsValid` (at `valid_level`), `ValidateServerJWKs` (STOP),
/// `CheckForKeyIdInServerJWKs`, `CheckDistinctKeyIdValueInServerJWKs` and
/// `EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys` (FAILURE), plus the WARNINGs of
/// `ValidateJwksSequence` for keys that cannot be used.
pub fn validate_jwks(jwks: &Value, valid_level: Level) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        out.push(Finding::new(
            valid_level,
            "CheckServerKeysIsValid",
            "the JWKS has no `keys` array",
        ));
        out.push(Finding::new(
            Level::Stop,
            "ValidateServerJWKs",
            "the JWKS has no `keys` array",
        ));
        return out;
    };
    let mut kids: HashMap<String, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(key) = key.as_object() else {
            out.push(Finding::new(
                Level::Stop,
                "ValidateServerJWKs",
                format!("key #{i} is not a JSON object"),
            ));
            continue;
        };
        let label = key
            .get("kid")
            .and_then(Value::as_str)
            .map(|k| format!("key {k}"))
            .unwrap_or_else(|| format!("key #{i}"));
        let Some(kty) = key.get("kty").and_then(Value::as_str) else {
            out.push(Finding::new(
                Level::Stop,
                "ValidateServerJWKs",
                format!("{label} has no kty"),
            ));
            continue;
        };
        // Private or symmetric material.
        let private: Vec<&str> = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .into_iter()
            .filter(|m| key.contains_key(*m))
            .collect();
        if !private.is_empty() || kty == "oct" {
            out.push(Finding::new(
                Level::Failure,
                "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys",
                format!("{label} (kty {kty}) publishes private or symmetric members {private:?}"),
            ));
        }
        // Structure and base64url.
        let required: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["crv", "x", "y"],
            "OKP" => &["crv", "x"],
            _ => &[],
        };
        let mut structural = true;
        for member in required {
            match key.get(*member).and_then(Value::as_str) {
                None => {
                    structural = false;
                    out.push(Finding::new(
                        Level::Stop,
                        "ValidateServerJWKs",
                        format!("{label} (kty {kty}) lacks `{member}`"),
                    ));
                }
                Some(v) if *member != "crv" && !is_b64url(v) => {
                    structural = false;
                    out.push(Finding::new(
                        Level::Stop,
                        "ValidateServerJWKs",
                        format!("{label}: `{member}` is not unpadded base64url"),
                    ));
                }
                _ => {}
            }
        }
        if !["RSA", "EC", "OKP", "oct"].contains(&kty) {
            out.push(Finding::new(
                Level::Warning,
                "ValidateServerJWKs",
                format!("{label} has an unsupported kty {kty}"),
            ));
        } else if structural && kty != "oct" {
            // Usable keys must parse.
            let alg = key
                .get("alg")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| default_alg(key).map(str::to_owned));
            match alg {
                Some(alg) if kty_for_alg(&alg) == Some(kty) => {
                    if key
                        .get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                        && let Err(e) = verifier(&alg, key)
                    {
                        out.push(Finding::new(
                            Level::Stop,
                            "ValidateServerJWKs",
                            format!("{label} cannot be used: {e}"),
                        ));
                    }
                }
                Some(alg) => out.push(Finding::new(
                    Level::Warning,
                    "ValidateServerJWKs",
                    format!("{label} (kty {kty}) names an unknown or mismatched alg {alg}"),
                )),
                None => out.push(Finding::new(
                    Level::Warning,
                    "ValidateServerJWKs",
                    format!("{label} (kty {kty}) uses an unsupported curve"),
                )),
            }
        }
        match key.get("kid") {
            Some(Value::String(kid)) if !kid.trim().is_empty() => {
                *kids.entry(kid.clone()).or_default() += 1;
            }
            _ => out.push(Finding::new(
                Level::Failure,
                "CheckForKeyIdInServerJWKs",
                format!("{label} has no kid (OIDCC-10.1)"),
            )),
        }
    }
    let mut repeated: Vec<&String> = kids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    repeated.sort();
    if !repeated.is_empty() {
        out.push(Finding::new(
            Level::Failure,
            "CheckDistinctKeyIdValueInServerJWKs",
            format!("kid values used more than once: {repeated:?} (RFC7517-4.5)"),
        ));
    }
    out
}

/// The `at_hash` / `c_hash` of `value` for a token signed with `alg`: the left half of the
/// hash named by the algorithm, base64url.
pub fn half_hash(alg: &str, value: &str) -> Option<String> {
    let digest: Vec<u8> = match alg {
        "RS256" | "PS256" | "ES256" | "ES256K" | "HS256" => Sha256::digest(value).to_vec(),
        "RS384" | "PS384" | "ES384" | "HS384" => Sha384::digest(value).to_vec(),
        "RS512" | "PS512" | "ES512" | "HS512" | "EdDSA" | "Ed25519" => {
            Sha512::digest(value).to_vec()
        }
        _ => return None,
    };
    Some(b64url(&digest[..digest.len() / 2]))
}

/// The S256 PKCE challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier))
}

/// An unsigned (`alg: none`) JWT with these claims.
pub fn unsigned_jwt(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(br#"{"alg":"none"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_hash_matches_the_spec_example() {
        // OpenID Connect Core, appendix A.4 (at_hash of the example access token, RS256).
        assert_eq!(
            half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
    }

    #[test]
    fn flags_private_keys_and_missing_kid() {
        let jwks = serde_json::json!({"keys": [{"kty": "oct", "k": "AAAA"}]});
        let findings = validate_jwks(&jwks, Level::Warning);
        assert!(
            findings
                .iter()
                .any(|f| f.condition == "CheckForKeyIdInServerJWKs")
        );
        assert!(
            findings
                .iter()
                .any(|f| f.condition == "EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys")
        );
    }
}
