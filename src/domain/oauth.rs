//! Values of the authorization request: PKCE, prompt, response mode, the `claims` request.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Invalid;

/// The `acr` of a password sign-in.
pub const ACR_PASSWORD: &str = "urn:latchkey:acr:pwd";
/// The `acr` of a sign-in with a second factor.
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 `code_challenge` (the `plain` method is refused: RFC 9700 §2.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses the challenge and its method (`S256` when the method is absent is refused too:
    /// RFC 7636 makes `plain` the default, which we do not allow).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, Invalid> {
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err(Invalid::new(
                    "code_challenge_method must be S256 (plain is not allowed)",
                ));
            }
            Some(other) => {
                return Err(Invalid::new(format!(
                    "code_challenge_method `{other}` is not supported"
                )));
            }
        }
        if !is_pkce_text(challenge) {
            return Err(Invalid::new("code_challenge is malformed"));
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Rebuilds a stored challenge.
    pub fn stored(challenge: String) -> Self {
        Self(challenge)
    }

    /// The challenge text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(code_verifier)) == code_challenge`, compared in
    /// constant time.
    pub fn verify(&self, verifier: &str) -> bool {
        if !is_pkce_text(verifier) {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        crate::crypto::constant_time_eq(computed.as_bytes(), self.0.as_bytes())
    }
}

/// Where the authorization response parameters travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query (the default for `code`).
    Query,
    /// In the redirect URI's fragment (the default when tokens travel in the front channel).
    Fragment,
    /// In an auto-submitting HTML form POSTed to the redirect URI.
    FormPost,
}

impl FromStr for ResponseMode {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "query" => Ok(Self::Query),
            "fragment" => Ok(Self::Fragment),
            "form_post" => Ok(Self::FormPost),
            other => Err(Invalid::new(format!(
                "response_mode `{other}` is not supported"
            ))),
        }
    }
}

/// The OpenID Connect `prompt` parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// No page may be shown: fail with an interaction error instead.
    pub none: bool,
    /// Authenticate again even with a live session.
    pub login: bool,
    /// Ask for consent again even when it was given.
    pub consent: bool,
    /// Let the person choose the account.
    pub select_account: bool,
}

impl Prompt {
    /// OpenID Connect Core §3.1.2.1: space-separated values; `none` must stand alone.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut prompt = Self::default();
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                other => return Err(Invalid::new(format!("prompt `{other}` is not supported"))),
            }
        }
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err(Invalid::new(
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(prompt)
    }
}

/// The `claims` request parameter (OpenID Connect Core §5.5): the members asked for in the
/// UserInfo response and in the ID token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claims asked for in the UserInfo response.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub userinfo: Map<String, Value>,
    /// Claims asked for in the ID token.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub id_token: Map<String, Value>,
}

impl ClaimsRequest {
    /// Parses the JSON parameter: an object whose `userinfo` and `id_token` members are objects
    /// of claim name → `null` or `{"essential", "value", "values"}`. Other members are ignored.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value: Value =
            serde_json::from_str(raw).map_err(|_| Invalid::new("claims is not valid JSON"))?;
        let object = value
            .as_object()
            .ok_or_else(|| Invalid::new("claims must be a JSON object"))?;
        let member = |name: &str| -> Result<Map<String, Value>, Invalid> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(claims)) => {
                    for (claim, request) in claims {
                        if !matches!(request, Value::Null | Value::Object(_)) {
                            return Err(Invalid::new(format!(
                                "claims.{name}.{claim} must be null or an object"
                            )));
                        }
                    }
                    Ok(claims.clone())
                }
                Some(_) => Err(Invalid::new(format!("claims.{name} must be an object"))),
            }
        };
        Ok(Self {
            userinfo: member("userinfo")?,
            id_token: member("id_token")?,
        })
    }

    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }

    /// The `acr` values asked for as essential in the ID token, if any.
    pub fn essential_acr(&self) -> Vec<String> {
        let Some(Value::Object(acr)) = self.id_token.get("acr") else {
            return Vec::new();
        };
        if acr.get("essential") != Some(&Value::Bool(true)) {
            return Vec::new();
        }
        let mut values: Vec<String> = acr
            .get("values")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(value) = acr.get("value").and_then(Value::as_str) {
            values.push(value.to_owned());
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_verifies_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256"))
                .unwrap();
        assert!(challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"));
        assert!(!challenge.verify("short"));
    }

    #[test]
    fn pkce_plain_and_missing_method_are_refused() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(c, Some("plain")).is_err());
        assert!(CodeChallenge::parse(c, None).is_err());
        assert!(CodeChallenge::parse("too-short", Some("S256")).is_err());
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse("none").unwrap().none);
        assert!(Prompt::parse("login consent").unwrap().consent);
        assert!(Prompt::parse("none login").is_err());
        assert!(Prompt::parse("sometimes").is_err());
    }

    #[test]
    fn claims_request_parses_members_and_essential_acr() {
        let c = ClaimsRequest::parse(
            r#"{"userinfo":{"name":{"essential":true},"email":null},
                "id_token":{"acr":{"essential":true,"values":["a","b"]}}}"#,
        )
        .unwrap();
        assert!(c.userinfo.contains_key("name"));
        assert_eq!(c.essential_acr(), vec!["a", "b"]);
        assert!(ClaimsRequest::parse("[1]").is_err());
        assert!(ClaimsRequest::parse(r#"{"userinfo":{"name":1}}"#).is_err());
        assert!(ClaimsRequest::parse("{").is_err());
    }
}
