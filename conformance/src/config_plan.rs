//! The Config OP plan (`oidcc-discovery-endpoint-verification`, checklist §4 and §6) and
//! `oidcc-server-rotate-keys` (§5), which needs a way to rotate the OP's keys.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use url::Url;

use crate::harness::{Ctx, Env};
use crate::jose;
use crate::report::{Level, Outcome, Step, skip, stop};

/// JSON type of a known metadata member (the suite's RFC 8414 schema, which also covers the
/// OpenID Connect Discovery members).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uri,
    Str,
    StrArray,
    Bool,
    Object,
    Any,
}

/// Every member the suite's schema (`json-schemas/rfc8414/oauth_authorization_server_metadata.json`)
/// knows, with its type; anything else is "unexpected" (WARNING).
const KNOWN_MEMBERS: &[(&str, Kind)] = &[
    ("issuer", Kind::Uri),
    ("authorization_endpoint", Kind::Uri),
    ("token_endpoint", Kind::Uri),
    ("jwks_uri", Kind::Uri),
    ("registration_endpoint", Kind::Uri),
    ("scopes_supported", Kind::StrArray),
    ("response_types_supported", Kind::StrArray),
    ("response_modes_supported", Kind::StrArray),
    ("grant_types_supported", Kind::StrArray),
    ("token_endpoint_auth_methods_supported", Kind::StrArray),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("service_documentation", Kind::Uri),
    ("ui_locales_supported", Kind::StrArray),
    ("op_policy_uri", Kind::Uri),
    ("op_tos_uri", Kind::Uri),
    ("revocation_endpoint", Kind::Uri),
    ("revocation_endpoint_auth_methods_supported", Kind::StrArray),
    (
        "revocation_endpoint_auth_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("global_token_revocation_endpoint", Kind::Uri),
    (
        "global_token_revocation_endpoint_auth_methods_supported",
        Kind::StrArray,
    ),
    ("introspection_endpoint", Kind::Uri),
    (
        "introspection_endpoint_auth_methods_supported",
        Kind::StrArray,
    ),
    (
        "introspection_endpoint_auth_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("code_challenge_methods_supported", Kind::StrArray),
    ("userinfo_endpoint", Kind::Uri),
    ("end_session_endpoint", Kind::Uri),
    ("check_session_iframe", Kind::Uri),
    ("subject_types_supported", Kind::StrArray),
    ("id_token_signing_alg_values_supported", Kind::StrArray),
    ("id_token_encryption_alg_values_supported", Kind::StrArray),
    ("id_token_encryption_enc_values_supported", Kind::StrArray),
    ("userinfo_signing_alg_values_supported", Kind::StrArray),
    ("userinfo_encryption_alg_values_supported", Kind::StrArray),
    ("userinfo_encryption_enc_values_supported", Kind::StrArray),
    (
        "request_object_signing_alg_values_supported",
        Kind::StrArray,
    ),
    (
        "request_object_encryption_alg_values_supported",
        Kind::StrArray,
    ),
    (
        "request_object_encryption_enc_values_supported",
        Kind::StrArray,
    ),
    ("display_values_supported", Kind::StrArray),
    ("claim_types_supported", Kind::StrArray),
    ("claims_supported", Kind::StrArray),
    ("claims_locales_supported", Kind::StrArray),
    ("claims_parameter_supported", Kind::Bool),
    ("request_parameter_supported", Kind::Bool),
    ("request_uri_parameter_supported", Kind::Bool),
    ("require_request_uri_registration", Kind::Bool),
    ("acr_values_supported", Kind::StrArray),
    ("frontchannel_logout_supported", Kind::Bool),
    ("frontchannel_logout_session_supported", Kind::Bool),
    ("backchannel_logout_supported", Kind::Bool),
    ("backchannel_logout_session_supported", Kind::Bool),
    ("dpop_signing_alg_values_supported", Kind::StrArray),
    ("pushed_authorization_request_endpoint", Kind::Uri),
    ("require_pushed_authorization_requests", Kind::Bool),
    ("authorization_details_types_supported", Kind::StrArray),
    ("authorization_challenge_endpoint", Kind::Uri),
    ("backchannel_authentication_endpoint", Kind::Uri),
    ("backchannel_token_delivery_modes_supported", Kind::StrArray),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("backchannel_user_code_parameter_supported", Kind::Bool),
    ("authorization_signing_alg_values_supported", Kind::StrArray),
    (
        "authorization_encryption_alg_values_supported",
        Kind::StrArray,
    ),
    (
        "authorization_encryption_enc_values_supported",
        Kind::StrArray,
    ),
    (
        "client_attestation_signing_alg_values_supported",
        Kind::StrArray,
    ),
    (
        "client_attestation_pop_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("challenge_endpoint", Kind::Uri),
    ("mtls_endpoint_aliases", Kind::Object),
    ("tls_client_certificate_bound_access_tokens", Kind::Bool),
    ("signed_metadata", Kind::Str),
    (
        "pre-authorized_grant_anonymous_access_supported",
        Kind::Bool,
    ),
    ("authorization_response_iss_parameter_supported", Kind::Bool),
    ("device_authorization_endpoint", Kind::Uri),
    ("require_signed_request_object", Kind::Bool),
    ("introspection_signing_alg_values_supported", Kind::StrArray),
    (
        "introspection_encryption_alg_values_supported",
        Kind::StrArray,
    ),
    (
        "introspection_encryption_enc_values_supported",
        Kind::StrArray,
    ),
    ("prompt_values_supported", Kind::StrArray),
    ("signed_jwks_uri", Kind::Uri),
    ("jwks", Kind::Object),
    ("organization_name", Kind::Str),
    ("organization_uri", Kind::Uri),
    ("display_name", Kind::Str),
    ("description", Kind::Str),
    ("keywords", Kind::StrArray),
    ("contacts", Kind::StrArray),
    ("logo_uri", Kind::Uri),
    ("information_uri", Kind::Uri),
    ("federation_registration_endpoint", Kind::Uri),
    ("client_registration_types_supported", Kind::StrArray),
    ("client_id_metadata_document_supported", Kind::Bool),
    ("trust_frameworks_supported", Kind::StrArray),
    ("evidence_supported", Kind::StrArray),
    ("documents_supported", Kind::StrArray),
    ("documents_check_methods_supported", Kind::StrArray),
    ("documents_methods_supported", Kind::StrArray),
    ("electronic_records_supported", Kind::StrArray),
    ("attachments_supported", Kind::StrArray),
    ("claims_in_verified_claims_supported", Kind::StrArray),
    ("transformed_claims_functions_supported", Kind::StrArray),
    ("transformed_claims_predefined", Kind::Any),
    ("grant_management_endpoint", Kind::Uri),
    ("grant_management_actions_supported", Kind::StrArray),
    ("grant_management_action_required", Kind::Bool),
    ("request_authentication_methods_supported", Kind::Any),
    (
        "request_authentication_signing_alg_values_supported",
        Kind::StrArray,
    ),
    ("protected_resources", Kind::StrArray),
    ("status_list_aggregation_endpoint", Kind::Uri),
];

fn kind_ok(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Uri => v.as_str().is_some_and(|s| Url::parse(s).is_ok()),
        Kind::Str => v.is_string(),
        Kind::StrArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Bool => v.is_boolean(),
        Kind::Object => v.is_object(),
        Kind::Any => true,
    }
}

/// Runs `oidcc-discovery-endpoint-verification`.
pub async fn discovery_endpoint_verification(env: Arc<Env>) -> Outcome {
    let started = Instant::now();
    let mut ctx = Ctx::new(env, false);
    let result = discovery_checks(&mut ctx).await;
    let Ctx { rec, .. } = ctx;
    rec.finish(
        "oidcc-discovery-endpoint-verification".into(),
        result,
        started.elapsed(),
    )
}

/// `IssuerUrlValidation`: a URI with scheme https, a host, no query, fragment or userinfo.
fn issuer_problem(env: &Env, issuer: &str) -> Option<String> {
    let url = match Url::parse(issuer) {
        Ok(u) => u,
        Err(e) => return Some(format!("issuer {issuer:?} is not a URL: {e}")),
    };
    if !env.scheme_ok(&url) {
        return Some(format!("issuer {issuer:?} does not use https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some(format!("issuer {issuer:?} has no host"));
    }
    if url.query().is_some() {
        return Some(format!("issuer {issuer:?} has a query"));
    }
    if url.fragment().is_some() {
        return Some(format!("issuer {issuer:?} has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(format!("issuer {issuer:?} has userinfo"));
    }
    None
}

/// `AbstractJsonUriIsValidAndHttps`: a string, a valid URL, https.
pub(crate) fn https_url_problem(env: &Env, d: &Map<String, Value>, name: &str) -> Option<String> {
    let Some(v) = d.get(name) else {
        return Some(format!("{name} is missing"));
    };
    let Some(s) = v.as_str() else {
        return Some(format!("{name} is not a string: {v}"));
    };
    match Url::parse(s) {
        Err(e) => Some(format!("{name} {s:?} is not a URL: {e}")),
        Ok(u) if !env.scheme_ok(&u) => Some(format!("{name} {s:?} does not use https")),
        Ok(_) => None,
    }
}

fn string_list(d: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    d.get(name).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

async fn discovery_checks(ctx: &mut Ctx) -> Step<()> {
    let env = ctx.env.clone();
    let discovery_url = env.config.discovery_url();
    let (response, d) = ctx.fetch_discovery().await?;
    if response.status != 200 {
        ctx.rec.failure(
            "EnsureDiscoveryEndpointResponseStatusCodeIs200",
            format!("discovery answered HTTP {} (OIDCD-4)", response.status),
        );
    }
    if response.mime() != "application/json" {
        ctx.rec.failure(
            "CheckDiscoveryEndpointReturnedJsonContentType",
            format!(
                "Content-Type is {:?}, not application/json",
                response.mime()
            ),
        );
    }

    // 1. response_types_supported (static client)
    let allowed: Vec<BTreeSet<&str>> = [
        "code",
        "code id_token",
        "id_token",
        "token id_token",
        "code id_token token",
        "code token",
    ]
    .iter()
    .map(|t| t.split(' ').collect())
    .collect();
    match d.get("response_types_supported").and_then(Value::as_array) {
        None => ctx.rec.failure(
            "OIDCCCheckDiscEndpointResponseTypesSupported",
            "response_types_supported is missing or not an array",
        ),
        Some(types) => {
            let any = types.iter().filter_map(Value::as_str).any(|t| {
                let set: BTreeSet<&str> = t.split(' ').filter(|s| !s.is_empty()).collect();
                allowed.contains(&set)
            });
            if !any {
                ctx.rec.failure(
                    "OIDCCCheckDiscEndpointResponseTypesSupported",
                    format!("response_types_supported {types:?} has no OpenID response type"),
                );
            }
        }
    }

    // 2. CheckDiscEndpointDiscoveryUrl
    match Url::parse(&discovery_url) {
        Ok(u) if u.path().ends_with("/.well-known/openid-configuration") && env.scheme_ok(&u) => {}
        _ => ctx.rec.failure(
            "CheckDiscEndpointDiscoveryUrl",
            format!("the discovery URL {discovery_url} must be https and end in /.well-known/openid-configuration"),
        ),
    }

    // 3. CheckDiscEndpointIssuer
    let expected_issuer = discovery_url
        .strip_suffix(".well-known/openid-configuration")
        .unwrap_or(&discovery_url)
        .trim_end_matches('/')
        .to_owned();
    match d.get("issuer").and_then(Value::as_str) {
        None => ctx
            .rec
            .failure("CheckDiscEndpointIssuer", "issuer is missing"),
        Some(issuer) => {
            if issuer.trim_end_matches('/') != expected_issuer {
                ctx.rec.failure(
                    "CheckDiscEndpointIssuer",
                    format!("issuer {issuer:?} does not match the discovery URL (expected {expected_issuer:?}) (OIDCD-4.3)"),
                );
            }
            // 4. CheckDiscEndpointIssuerIsValidUrl
            if let Some(problem) = issuer_problem(&env, issuer) {
                ctx.rec
                    .failure("CheckDiscEndpointIssuerIsValidUrl", problem);
            }
        }
    }

    // 5, 6. Schema types and unexpected members
    let mut unexpected = Vec::new();
    for (name, value) in &d {
        match KNOWN_MEMBERS.iter().find(|(n, _)| n == name) {
            Some((_, kind)) => {
                if !kind_ok(*kind, value) {
                    ctx.rec.failure(
                        "ValidateServerMetadataAgainstSchema",
                        format!("{name} must be {kind:?}, got {value}"),
                    );
                }
            }
            None => unexpected.push(name.clone()),
        }
    }
    if !unexpected.is_empty() {
        ctx.rec.warning(
            "CheckForUnexpectedParametersInServerMetadata",
            format!("members not in the metadata schema: {unexpected:?}"),
        );
    }

    // 7. subject_types_supported
    match string_list(&d, "subject_types_supported") {
        Some(l) if l.iter().any(|s| s == "public" || s == "pairwise") => {}
        other => ctx.rec.failure(
            "OIDCCCheckDiscEndpointSubjectTypesSupported",
            format!("subject_types_supported {other:?} lacks public/pairwise"),
        ),
    }
    // 8. id_token_signing_alg_values_supported
    match string_list(&d, "id_token_signing_alg_values_supported") {
        Some(l) if l.iter().any(|s| s == "RS256") => {}
        other => ctx.rec.failure(
            "OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported",
            format!("id_token_signing_alg_values_supported {other:?} lacks RS256"),
        ),
    }
    // 9. userinfo_signing_alg_values_supported
    if let Some(v) = d.get("userinfo_signing_alg_values_supported")
        && !v.is_array()
    {
        ctx.rec.failure(
            "CheckDiscEndpointUserinfoSigningAlgValuesSupported",
            format!("userinfo_signing_alg_values_supported is not an array: {v}"),
        );
    }
    // 10. authorization_endpoint, token_endpoint
    for (name, condition) in [
        (
            "authorization_endpoint",
            "CheckDiscEndpointAuthorizationEndpoint",
        ),
        ("token_endpoint", "CheckDiscEndpointTokenEndpoint"),
    ] {
        if let Some(problem) = https_url_problem(&env, &d, name) {
            ctx.rec.failure(condition, problem);
        }
    }
    // 11. userinfo_endpoint
    if d.contains_key("userinfo_endpoint") {
        if let Some(problem) = https_url_problem(&env, &d, "userinfo_endpoint") {
            ctx.rec
                .failure("CheckDiscEndpointUserinfoEndpoint", problem);
        }
    } else {
        ctx.rec.warning(
            "CheckDiscEndpointUserinfoEndpoint",
            "userinfo_endpoint is missing",
        );
    }
    // 12. registration_endpoint
    if d.contains_key("registration_endpoint")
        && let Some(problem) = https_url_problem(&env, &d, "registration_endpoint")
    {
        ctx.rec
            .failure("CheckDiscEndpointRegistrationEndpoint", problem);
    }
    // 13. jwks_uri
    if let Some(problem) = https_url_problem(&env, &d, "jwks_uri") {
        ctx.rec.failure("CheckJwksUri", problem);
    }
    // 14, 15. FetchServerKeys + JWKS validation
    let Some(jwks_uri) = d.get("jwks_uri").and_then(Value::as_str) else {
        return stop("FetchServerKeys", "discovery has no jwks_uri");
    };
    let jwks = ctx.fetch_jwks(jwks_uri).await?;
    let findings = jose::validate_jwks(&jwks, Level::Failure);
    ctx.apply(findings)?;
    // 16, 17, 19: INFO only.
    // 18. request_object_signing_alg_values_supported
    if let Some(l) = string_list(&d, "request_object_signing_alg_values_supported")
        && !l.iter().any(|a| a == "RS256")
    {
        ctx.rec.warning(
            "CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256",
            format!("request_object_signing_alg_values_supported {l:?} lacks RS256"),
        );
    }
    // 20. claims_supported
    if !d.get("claims_supported").is_some_and(Value::is_array) {
        ctx.rec.warning(
            "CheckDiscEndpointClaimsSupported",
            "claims_supported is missing or not an array",
        );
    }
    // 21. grant_types_supported (static client)
    if let Some(v) = d.get("grant_types_supported")
        && v.as_array().is_none_or(|a| a.is_empty())
    {
        ctx.rec.failure(
            "CheckDiscEndpointGrantTypesSupported",
            format!("grant_types_supported must be a non-empty array, got {v}"),
        );
    }
    // 22, 23. scopes_supported
    match d.get("scopes_supported") {
        None => ctx.rec.warning(
            "CheckDiscEndpointScopesSupportedContainsOpenId",
            "scopes_supported is missing",
        ),
        Some(v) => {
            let scopes: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !scopes.contains(&"openid") {
                ctx.rec.failure(
                    "CheckDiscEndpointScopesSupportedContainsOpenId",
                    format!("scopes_supported {v} lacks openid"),
                );
            }
            let bad: Vec<&&str> = scopes
                .iter()
                .filter(|s| {
                    s.is_empty()
                        || !s
                            .bytes()
                            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
                })
                .collect();
            if !bad.is_empty() {
                ctx.rec.failure(
                    "CheckDiscEndpointScopesSupportedSyntax",
                    format!("scopes that are not RFC 6749 scope-tokens: {bad:?}"),
                );
            }
        }
    }
    // 24. Locales
    for name in ["ui_locales_supported", "claims_locales_supported"] {
        let Some(v) = d.get(name) else { continue };
        let Some(list) = v.as_array() else {
            ctx.rec.failure(
                "CheckDiscEndpointLocalesSyntax",
                format!("{name} is not an array"),
            );
            continue;
        };
        for tag in list {
            match tag.as_str().map(bcp47::check) {
                Some(Ok(canonical)) => {
                    let tag = tag.as_str().unwrap_or_default();
                    if canonical != tag {
                        ctx.rec.warning(
                            "CheckDiscEndpointLocalesCanonicalCasing",
                            format!("{name}: {tag:?} should be written {canonical:?}"),
                        );
                    }
                }
                Some(Err(e)) => ctx.rec.failure(
                    "CheckDiscEndpointLocalesSyntax",
                    format!("{name}: {tag} is not a valid BCP47 tag: {e}"),
                ),
                None => ctx.rec.failure(
                    "CheckDiscEndpointLocalesSyntax",
                    format!("{name}: {tag} is not a string"),
                ),
            }
        }
    }
    // 25. CheckDiscEndpointAllEndpointsAreHttps
    for name in d.keys().filter(|k| k.ends_with("_endpoint")) {
        if let Some(problem) = https_url_problem(&env, &d, name) {
            ctx.rec
                .failure("CheckDiscEndpointAllEndpointsAreHttps", problem);
        }
    }
    // 26. code_challenge_methods_supported
    if let Some(v) = d.get("code_challenge_methods_supported") {
        let ok = v.as_array().is_some_and(|a| {
            a.is_empty()
                || a.iter()
                    .any(|m| m.as_str() == Some("S256") || m.as_str() == Some("plain"))
        });
        if !ok {
            ctx.rec.failure(
                "CheckDiscEndpointCodeChallengeMethodsSupportedValid",
                format!("code_challenge_methods_supported {v} lists neither S256 nor plain"),
            );
        }
    }
    Ok(())
}

/// Well-formedness of BCP47 language tags (RFC 5646 §2.1) with the registered ISO 639-1
/// two-letter languages, and their canonical casing (§2.1.1).
mod bcp47 {
    /// ISO 639-1 codes (the two-letter primary language subtags of the IANA registry).
    const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik in io is it iu iw ja ji jv jw ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mo mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

    fn alpha(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphabetic())
    }
    fn alnum(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    fn digits(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_digit())
    }

    /// Checks a tag; returns its canonical casing.
    pub fn check(tag: &str) -> Result<String, String> {
        if tag.is_empty() {
            return Err("empty".into());
        }
        let parts: Vec<&str> = tag.split('-').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 8 || !alnum(p))
        {
            return Err("subtags must be 1 to 8 letters or digits".into());
        }
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        let first = parts[0];
        if first.eq_ignore_ascii_case("x") {
            // Private use only.
            return Ok(tag.to_ascii_lowercase());
        }
        if !alpha(first) || first.len() < 2 {
            return Err(format!("bad primary language subtag {first:?}"));
        }
        if first.len() == 2 && !ISO_639_1.split(' ').any(|c| c.eq_ignore_ascii_case(first)) {
            return Err(format!("{first:?} is not a registered language subtag"));
        }
        out.push(first.to_ascii_lowercase());
        i += 1;
        // extlang (only after a 2-3 letter language)
        let mut extlangs = 0;
        while i < parts.len()
            && first.len() <= 3
            && parts[i].len() == 3
            && alpha(parts[i])
            && extlangs < 3
        {
            out.push(parts[i].to_ascii_lowercase());
            i += 1;
            extlangs += 1;
        }
        // script
        if i < parts.len() && parts[i].len() == 4 && alpha(parts[i]) {
            let p = parts[i].to_ascii_lowercase();
            out.push(format!("{}{}", p[..1].to_ascii_uppercase(), &p[1..]));
            i += 1;
        }
        // region
        if i < parts.len()
            && ((parts[i].len() == 2 && alpha(parts[i]))
                || (parts[i].len() == 3 && digits(parts[i])))
        {
            out.push(parts[i].to_ascii_uppercase());
            i += 1;
        }
        // variants
        while i < parts.len() {
            let p = parts[i];
            let variant =
                (5..=8).contains(&p.len()) || (p.len() == 4 && p.as_bytes()[0].is_ascii_digit());
            if !variant {
                break;
            }
            out.push(p.to_ascii_lowercase());
            i += 1;
        }
        // extensions and private use
        while i < parts.len() {
            let p = parts[i];
            if p.len() != 1 {
                return Err(format!("unexpected subtag {p:?}"));
            }
            let private = p.eq_ignore_ascii_case("x");
            out.push(p.to_ascii_lowercase());
            i += 1;
            let start = i;
            while i < parts.len() && (private || parts[i].len() >= 2) {
                if !private && parts[i].len() == 1 {
                    break;
                }
                out.push(parts[i].to_ascii_lowercase());
                i += 1;
            }
            if i == start {
                return Err(format!("singleton {p:?} without subtags"));
            }
        }
        Ok(out.join("-"))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn tags() {
            assert_eq!(super::check("en").unwrap(), "en");
            assert_eq!(super::check("en-us").unwrap(), "en-US");
            assert_eq!(super::check("zh-hant-tw").unwrap(), "zh-Hant-TW");
            assert!(super::check("qq").is_err());
            assert!(super::check("en--US").is_err());
            assert!(super::check("en_US").is_err());
        }
    }
}

// ----------------------------------------------------------------------------------------
// oidcc-server-rotate-keys

/// Runs `oidcc-server-rotate-keys`.
pub async fn rotate_keys(env: Arc<Env>) -> Outcome {
    let started = Instant::now();
    let mut ctx = Ctx::new(env, false);
    let result = rotate_keys_checks(&mut ctx).await;
    let Ctx { rec, .. } = ctx;
    rec.finish("oidcc-server-rotate-keys".into(), result, started.elapsed())
}

/// The fields that identify a public key (`JWK.getRequiredParams()`) plus its kid.
fn key_identity(key: &Map<String, Value>) -> BTreeSet<(String, String)> {
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or_default();
    let members: &[&str] = match kty {
        "RSA" => &["kty", "e", "n", "kid"],
        "EC" => &["kty", "crv", "x", "y", "kid"],
        "OKP" => &["kty", "crv", "x", "kid"],
        _ => &["kty", "kid"],
    };
    members
        .iter()
        .map(|m| {
            (
                (*m).to_owned(),
                key.get(*m).map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn signing_keys(jwks: &Value) -> Vec<Map<String, Value>> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn rotate_keys_checks(ctx: &mut Ctx) -> Step<()> {
    let Some(command) = ctx.env.config.rotate_keys_command.clone() else {
        return skip(
            "no rotate_keys_command configured: the suite asks the tester to rotate the OP's keys by hand",
        );
    };
    let (_, d) = ctx.fetch_discovery().await?;
    for name in ["issuer", "authorization_endpoint", "token_endpoint"] {
        if d.get(name)
            .and_then(Value::as_str)
            .is_none_or(|s| Url::parse(s).is_err())
        {
            return stop(
                "CheckServerConfiguration",
                format!("{name} is missing or not a URL"),
            );
        }
    }
    let Some(jwks_uri) = d.get("jwks_uri").and_then(Value::as_str).map(str::to_owned) else {
        return stop("FetchServerKeys", "discovery has no jwks_uri");
    };
    let original = ctx.fetch_jwks(&jwks_uri).await?;
    ctx.apply(jose::validate_jwks(&original, Level::Failure))?;

    // TellUserToRotateOpKeys: the configured command does what the tester would.
    let command_started = Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&command[0])
            .args(&command[1..])
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await;
    match run {
        Ok(Ok(output)) if output.status.success() => {}
        Ok(Ok(output)) => {
            return stop(
                "TellUserToRotateOpKeys",
                format!(
                    "the rotate command exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            );
        }
        Ok(Err(e)) => {
            return stop(
                "TellUserToRotateOpKeys",
                format!("cannot run the rotate command: {e}"),
            );
        }
        Err(e) => {
            return stop(
                "TellUserToRotateOpKeys",
                format!("the rotate command panicked: {e}"),
            );
        }
    }

    // The OP may cache its key set briefly: poll until the published set changes.
    let original_ids: BTreeSet<_> = signing_keys(&original).iter().map(key_identity).collect();
    let command_secs = command_started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut polls = 0;
    let latest = loop {
        polls += 1;
        let jwks = ctx.fetch_jwks(&jwks_uri).await?;
        let ids: BTreeSet<_> = signing_keys(&jwks).iter().map(key_identity).collect();
        if ids != original_ids || Instant::now() >= deadline {
            break jwks;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ctx.apply(jose::validate_jwks(&latest, Level::Failure))?;

    let original_keys = signing_keys(&original);
    let latest_keys = signing_keys(&latest);
    let new_keys: Vec<&Map<String, Value>> = latest_keys
        .iter()
        .filter(|k| !original_ids.contains(&key_identity(k)))
        .collect();
    if new_keys.is_empty() {
        let kids = |keys: &[Map<String, Value>]| -> Vec<String> {
            keys.iter()
                .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        ctx.rec.failure(
            "VerifyNewJwksHasNewSigningKey",
            format!(
                "no new keys with 'use':'sig' (or no 'use') found (OIDCC-10.1.1): the rotate command took \
                 {command_secs:.1} s, then {polls} fetches of the JWKS over up to 20 s; kids before {:?}, after {:?}",
                kids(&original_keys),
                kids(&latest_keys)
            ),
        );
    }
    let mut okp = 0;
    for key in &new_keys {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or_default();
        if original_keys
            .iter()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        {
            ctx.rec.failure(
                "VerifyNewJwksHasNewSigningKey",
                format!("a new key reuses the kid {kid} of an original key"),
            );
        }
        let kty = key.get("kty").and_then(Value::as_str).unwrap_or_default();
        let field = match kty {
            "RSA" => "n",
            "EC" => "x",
            "OKP" => {
                okp += 1;
                "x"
            }
            other => {
                ctx.rec.failure(
                    "VerifyNewJwksHasNewSigningKey",
                    format!("unknown key type '{other}' found (kid {kid})"),
                );
                continue;
            }
        };
        let value = key.get(field);
        if original_keys
            .iter()
            .any(|k| k.get(field).is_some() && k.get(field) == value)
        {
            ctx.rec.failure(
                "VerifyNewJwksHasNewSigningKey",
                format!("the new key {kid} reuses the `{field}` of an original key"),
            );
        }
    }
    if okp > 0 {
        ctx.rec.warning(
            "VerifyNewJwksHasNewSigningKey",
            format!(
                "{okp} new key(s) have kty OKP; checked by `x` as the checklist says, but the OIDF \
                 suite's VerifyNewJwksHasNewSigningKey only knows RSA and EC and reports \
                 \"unknown key type 'OKP' found\" (FAILURE) for them"
            ),
        );
    }
    let latest_ids: BTreeSet<_> = latest_keys.iter().map(key_identity).collect();
    if !original_ids.iter().any(|id| latest_ids.contains(id)) {
        ctx.rec.warning(
            "VerifyNewJwksStillHasOldSigningKey",
            "none of the original signing keys is still published (OIDCC-10.1.1)",
        );
    }
    Ok(())
}
