//! The suite's conditions that judge values: ID tokens (checklist §2.5), standard claims,
//! authorization error responses (§2.7), token endpoint errors, entropy. Each returns the
//! findings; the module records them at the suite's level.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::jose::{Jwt, half_hash};
use crate::report::{Finding, Level};

/// Clock skew the suite allows everywhere.
pub const SKEW: f64 = 300.0;

/// Seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Response parameters, in order.
pub type Params = Vec<(String, String)>;

/// The first value of a parameter.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What an ID token is checked against.
pub struct IdTokenExpectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent, if one was.
    pub nonce: Option<&'a str>,
}

/// `PerformStandardIdTokenChecks` (all FAILURE): `ValidateIdToken`,
/// `ValidateIdTokenStandardClaims`, `ValidateIdTokenNonce`, `ValidateIdTokenACRClaimAgainstRequest`,
/// `ValidateIdTokenSignature`, `CheckForSubjectInIdToken`, `EnsureIdTokenUpdatedAtValid`.
pub fn standard_id_token_checks(
    token: &Jwt,
    jwks: &Value,
    expect: &IdTokenExpectations<'_>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut fail = |condition: &'static str, message: String| {
        out.push(Finding::new(Level::Failure, condition, message));
    };
    let c = &token.claims;
    let t = now();

    // ValidateIdToken (OIDCC-3.1.3.7)
    match c.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(other) => fail(
            "ValidateIdToken",
            format!("iss {other} is not the issuer {}", expect.issuer),
        ),
        None => fail("ValidateIdToken", "iss is missing".into()),
    }
    match c.get("aud") {
        Some(Value::String(aud)) if aud == expect.client_id => {}
        Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(expect.client_id)) => {}
        Some(other) => fail(
            "ValidateIdToken",
            format!(
                "aud {other} does not contain the client_id {}",
                expect.client_id
            ),
        ),
        None => fail("ValidateIdToken", "aud is missing".into()),
    }
    match c.get("exp").and_then(Value::as_f64) {
        None => fail("ValidateIdToken", "exp is missing or not a number".into()),
        Some(exp) if exp + SKEW < t => fail("ValidateIdToken", format!("expired (exp {exp})")),
        Some(exp) if exp > t + 50.0 * 365.25 * 86400.0 => fail(
            "ValidateIdToken",
            format!("exp {exp} is more than 50 years ahead (milliseconds?)"),
        ),
        Some(_) => {}
    }
    match c.get("iat").and_then(Value::as_f64) {
        None => fail("ValidateIdToken", "iat is missing or not a number".into()),
        Some(iat) if iat > t + SKEW => {
            fail("ValidateIdToken", format!("iat {iat} is in the future"))
        }
        Some(iat) if iat < t - SKEW => fail(
            "ValidateIdToken",
            format!("iat {iat} is more than 5 minutes in the past"),
        ),
        Some(_) => {}
    }
    if let Some(auth_time) = c.get("auth_time") {
        match auth_time.as_f64() {
            None => fail("ValidateIdToken", "auth_time is not a number".into()),
            Some(at) if at > t + SKEW => fail(
                "ValidateIdToken",
                format!("auth_time {at} is in the future"),
            ),
            Some(at) if at < t - 365.0 * 86400.0 => fail(
                "ValidateIdToken",
                format!("auth_time {at} is over a year old"),
            ),
            Some(_) => {}
        }
    }
    if c.get("acr").and_then(Value::as_str) == Some("") {
        fail("ValidateIdToken", "acr is the empty string".into());
    }

    // ValidateIdTokenStandardClaims (OIDCC-5.1)
    for problem in standard_claim_problems(c) {
        fail("ValidateIdTokenStandardClaims", problem);
    }

    // ValidateIdTokenNonce (OIDCC-2)
    if let Some(sent) = expect.nonce {
        match c.get("nonce") {
            Some(Value::String(n)) if n == sent => {}
            Some(other) => fail(
                "ValidateIdTokenNonce",
                format!("nonce {other} is not the one sent ({sent})"),
            ),
            None => fail("ValidateIdTokenNonce", "nonce is missing".into()),
        }
    }

    // ValidateIdTokenACRClaimAgainstRequest
    if let Some(acr) = c.get("acr")
        && !acr.is_string()
    {
        fail(
            "ValidateIdTokenACRClaimAgainstRequest",
            format!("acr {acr} is not a string"),
        );
    }

    // ValidateIdTokenSignature
    if let Err(e) = token.verify(jwks) {
        fail("ValidateIdTokenSignature", e);
    }

    // CheckForSubjectInIdToken (OIDCC-2)
    match c.get("sub") {
        Some(Value::String(sub)) if subject_ok(sub) => {}
        Some(other) => fail(
            "CheckForSubjectInIdToken",
            format!("sub {other} is empty, longer than 255 or not printable ASCII"),
        ),
        None => fail("CheckForSubjectInIdToken", "sub is missing".into()),
    }

    // EnsureIdTokenUpdatedAtValid
    if let Some(problem) = updated_at_problem(c) {
        fail("EnsureIdTokenUpdatedAtValid", problem);
    }
    out
}

/// `sub`: non-empty, at most 255 characters, printable ASCII.
pub fn subject_ok(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= 255 && sub.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `updated_at`, if present: a number, not in the future, not before 1990.
pub fn updated_at_problem(c: &Map<String, Value>) -> Option<String> {
    let v = c.get("updated_at")?;
    match v.as_f64() {
        None => Some(format!("updated_at {v} is not a number")),
        Some(at) if at > now() + SKEW => Some(format!("updated_at {at} is in the future")),
        Some(at) if at < 631_152_000.0 => Some(format!("updated_at {at} is before 1990")),
        Some(_) => None,
    }
}

const STRING_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "zoneinfo",
    "locale",
    "phone_number",
    "txn",
    "sub",
];

/// `AbstractValidateOpenIdStandardClaims`: every standard claim present has its JSON type.
pub fn standard_claim_problems(c: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for name in STRING_CLAIMS {
        if let Some(v) = c.get(*name) {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() && s != "null" => {}
                _ => problems.push(format!("{name} must be a non-blank string, got {v}")),
            }
        }
    }
    for name in ["email_verified", "phone_number_verified"] {
        if let Some(v) = c.get(name)
            && !v.is_boolean()
        {
            problems.push(format!("{name} must be a boolean, got {v}"));
        }
    }
    if let Some(v) = c.get("updated_at")
        && !v.is_number()
    {
        problems.push(format!("updated_at must be a number, got {v}"));
    }
    if let Some(v) = c.get("birthdate")
        && !v.as_str().is_some_and(birthdate_ok)
    {
        problems.push(format!(
            "birthdate must be YYYY-MM-DD, 0000-MM-DD or YYYY, got {v}"
        ));
    }
    if let Some(v) = c.get("address") {
        match v.as_object() {
            None => problems.push(format!("address must be an object, got {v}")),
            Some(address) => {
                for member in [
                    "formatted",
                    "street_address",
                    "locality",
                    "region",
                    "postal_code",
                    "country",
                ] {
                    if let Some(m) = address.get(member)
                        && m.as_str().is_none_or(|s| s.trim().is_empty())
                    {
                        problems.push(format!(
                            "address.{member} must be a non-blank string, got {m}"
                        ));
                    }
                }
            }
        }
    }
    for name in ["_claim_names", "_claim_sources"] {
        if let Some(v) = c.get(name)
            && !v.is_object()
        {
            problems.push(format!("{name} must be an object, got {v}"));
        }
    }
    problems
}

fn birthdate_ok(s: &str) -> bool {
    let this_year = 1970 + (now() / (365.2425 * 86400.0)) as i64;
    let year_ok = |y: &str| {
        y.len() == 4
            && y.bytes().all(|b| b.is_ascii_digit())
            && y.parse::<i64>()
                .is_ok_and(|y| (1850..=this_year).contains(&y))
    };
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] => year_ok(y),
        [y, m, d] => {
            let two = |p: &str, max: u32| {
                p.len() == 2 && p.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v))
            };
            (*y == "0000" || year_ok(y)) && two(m, 12) && two(d, 31)
        }
        _ => false,
    }
}

/// `EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources`: every source named in
/// `_claim_names` exists in `_claim_sources`.
pub fn claim_sources_problem(c: &Map<String, Value>) -> Option<String> {
    let names = c.get("_claim_names")?.as_object()?;
    let sources = c.get("_claim_sources").and_then(Value::as_object);
    for (claim, source) in names {
        let source = source.as_str().unwrap_or_default();
        if !sources.is_some_and(|s| s.contains_key(source)) {
            return Some(format!(
                "_claim_names.{claim} refers to {source}, which is not in _claim_sources"
            ));
        }
    }
    None
}

/// The claims each scope stands for (`AbstractVerifyScopesReturnedInClaims`).
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "openid" => &["sub"],
        "profile" => &[
            "name",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
            "preferred_username",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// ID token claims that are never "unrequested" (`EnsureIdTokenDoesNotContainNonRequestedClaims`).
pub const ID_TOKEN_PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "nbf",
    "jti",
    "sid",
    "txn",
    "openbanking_intent_id",
];

/// `AbstractValidateHash` for `at_hash` / `c_hash`: if present (or `required`) it must be the
/// left half of the hash of `value`.
pub fn hash_claim_findings(
    token: &Jwt,
    claim: &'static str,
    value: &str,
    required: bool,
) -> Vec<Finding> {
    let condition = if claim == "at_hash" {
        "ValidateAtHash"
    } else {
        "ValidateCHash"
    };
    let Some(found) = token.claims.get(claim) else {
        return if required {
            vec![Finding::new(
                Level::Failure,
                condition,
                format!("{claim} is required in this ID token"),
            )]
        } else {
            Vec::new()
        };
    };
    let alg = token.alg().unwrap_or_default();
    match half_hash(alg, value) {
        Some(expected) if found.as_str() == Some(expected.as_str()) => Vec::new(),
        Some(expected) => vec![Finding::new(
            Level::Failure,
            condition,
            format!("{claim} {found} is not the expected {expected} for alg {alg}"),
        )],
        None => vec![Finding::new(
            Level::Failure,
            condition,
            format!("cannot compute {claim} for alg {alg}"),
        )],
    }
}

/// Shannon entropy estimate of `s` in bits (bits per character × length), as the suite
/// computes it (`AbstractEnsureMinimumEntropy`).
pub fn shannon_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for ch in s.chars() {
        *counts.entry(ch).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    per_char * s.encode_utf16().count() as f64
}

/// Whether every character is in `%x20-7E`.
pub fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `error` characters allowed by RFC 6749: `%x20-21 / %x23-5B / %x5D-7E`.
pub fn error_code_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// `error_description` and `error_uri` syntax: CR/LF/TAB → WARNING; characters outside
/// `%x09-0A / %x0D / %x20-21 / %x23-5B / %x5D-7E` → FAILURE; `error_uri` characters in
/// `%x21 / %x23-5B / %x5D-7E` (FAILURE).
pub fn error_text_findings(
    description: Option<&str>,
    uri: Option<&str>,
    crlf_condition: &'static str,
    description_condition: &'static str,
    uri_condition: &'static str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(d) = description {
        if d.contains(['\r', '\n', '\t']) {
            out.push(Finding::new(
                Level::Warning,
                crlf_condition,
                format!("error_description contains CR, LF or TAB: {d:?}"),
            ));
        }
        if !d
            .bytes()
            .all(|b| matches!(b, 0x09..=0x0a | 0x0d | 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
        {
            out.push(Finding::new(
                Level::Failure,
                description_condition,
                format!("error_description has characters RFC 6749 does not allow: {d:?}"),
            ));
        }
    }
    if let Some(u) = uri {
        let chars_ok = u
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
        if !chars_ok || url::Url::parse(u).is_err() {
            out.push(Finding::new(
                Level::Failure,
                uri_condition,
                format!("error_uri is not a valid URI of allowed characters: {u:?}"),
            ));
        }
    }
    out
}

/// The generic checks on an error sent back to the client
/// (`performGenericAuthorizationEndpointErrorResponseValidation`).
pub fn generic_error_response_findings(
    params: &Params,
    all_callback_params: &Params,
    expected_state: Option<&str>,
    issuer: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(state_findings(params, expected_state));
    out.extend(iss_findings(params, issuer));
    if param(params, "error").is_none() {
        out.push(Finding::new(
            Level::Failure,
            "EnsureErrorFromAuthorizationEndpointResponse",
            "the response has no `error` (OIDCC-3.1.2.6)",
        ));
    }
    if param(all_callback_params, "code").is_some() {
        out.push(Finding::new(
            Level::Failure,
            "RejectAuthCodeInAuthorizationEndpointResponse",
            "an error response carries a `code`",
        ));
    }
    let unexpected: Vec<&str> = params
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| {
            ![
                "error",
                "error_description",
                "error_uri",
                "state",
                "session_state",
                "iss",
            ]
            .contains(n)
        })
        .collect();
    if !unexpected.is_empty() {
        out.push(Finding::new(
            Level::Warning,
            "CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint",
            format!("unexpected parameters {unexpected:?}"),
        ));
    }
    out.extend(error_text_findings(
        param(params, "error_description"),
        param(params, "error_uri"),
        "CheckErrorDescriptionFromAuthorizationEndpointResponseErrorContainsCRLFTAB",
        "ValidateErrorDescriptionFromAuthorizationEndpointResponseError",
        "ValidateErrorUriFromAuthorizationEndpointResponseError",
    ));
    out
}

/// `CheckStateInAuthorizationResponse` (FAILURE): `state` returned unchanged.
pub fn state_findings(params: &Params, expected: Option<&str>) -> Vec<Finding> {
    let got = param(params, "state");
    let problem = match (expected, got) {
        (Some(e), Some(g)) if e == g => None,
        (Some(e), Some(g)) => Some(format!("state {g:?} is not the one sent ({e:?})")),
        (Some(_), None) => Some("state is missing from the response".to_owned()),
        (None, Some(g)) => Some(format!("state {g:?} returned although none was sent")),
        (None, None) => None,
    };
    problem
        .map(|m| {
            vec![Finding::new(
                Level::Failure,
                "CheckStateInAuthorizationResponse",
                m,
            )]
        })
        .unwrap_or_default()
}

/// `ValidateIssIfPresentInAuthorizationResponse` (FAILURE, RFC 9207).
pub fn iss_findings(params: &Params, issuer: &str) -> Vec<Finding> {
    match param(params, "iss") {
        Some(iss) if iss != issuer => vec![Finding::new(
            Level::Failure,
            "ValidateIssIfPresentInAuthorizationResponse",
            format!("iss {iss:?} is not the issuer {issuer:?}"),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_a_random_code_is_high() {
        assert!(shannon_bits("BjnQbTsQiUYitDvHY9Ork6twLS2Ps_7ZZGlNfyx2FRo") > 96.0);
        assert!(shannon_bits("BjnQbTsQiUYi") < 96.0);
        assert_eq!(shannon_bits("aaaa"), 0.0);
    }

    #[test]
    fn birthdates() {
        assert!(birthdate_ok("1990-01-31"));
        assert!(birthdate_ok("0000-12-24"));
        assert!(birthdate_ok("1901"));
        assert!(!birthdate_ok("1800"));
        assert!(!birthdate_ok("1990-1-31"));
    }

    #[test]
    fn error_syntax() {
        assert!(error_code_chars_ok("invalid_grant"));
        assert!(!error_code_chars_ok("bad\"quote"));
        let f = error_text_findings(Some("a\nb"), None, "crlf", "desc", "uri");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Warning);
    }
}
