//! Client authentication at the token, revocation and introspection endpoints.
//!
//! - `client_secret_basic`: HTTP Basic whose id and secret are form-urlencoded first
//!   (RFC 6749 §2.3.1), so a secret with `+`, `%` or a space works;
//! - `client_secret_post`: `client_id` and `client_secret` in the body;
//! - `private_key_jwt`: a JWT signed with the client's key (RFC 7523 §3: `iss` = `sub` =
//!   client_id, `aud` this endpoint or the issuer, `exp`, single-use `jti`);
//! - `none`: a public client names itself with `client_id` alone.
//!
//! A client must use the method it registered, and only one method per request (§2.3).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use josekit::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::Crypto;
use crate::domain::{AuthMethod, SigningAlg, now};
use crate::oauth::clients::{Client, find_client};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oidc::keys::{decode_compact, verifier_for, verify_with};
use crate::startup::AppState;
use crate::store::clients::claim_assertion_jti;
use crate::store::{AnyConnection, StoreError};

/// The assertion type of RFC 7523 client authentication.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signing algorithms accepted for client assertions (asymmetric only).
pub const ASSERTION_ALGS: &[SigningAlg] = &[
    SigningAlg::Rs256,
    SigningAlg::Ps256,
    SigningAlg::Es256,
    SigningAlg::EdDsa,
];

/// The furthest in the future an assertion may expire: a long-lived assertion is a password.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;

/// Clock skew tolerated on assertion times.
const LEEWAY_SECS: i64 = 60;

/// What a request presents to authenticate its client (no `Debug`: it holds the secret).
enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    Public {
        client_id: String,
    },
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Reads the client's credentials from the `Authorization` header and the body.
fn presented(request: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match request.headers().get(header::AUTHORIZATION) {
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                OAuthError::invalid_client("The Authorization header is malformed", true)
            })?;
            let (scheme, credentials) = text.split_once(' ').unwrap_or((text, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client(
                    "Only Basic authentication is accepted in the Authorization header",
                    true,
                ));
            }
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    OAuthError::invalid_client("The Basic credentials are malformed", true)
                })?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                OAuthError::invalid_client("The Basic credentials are malformed", true)
            })?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let (id, secret) = (form_decode(id), form_decode(secret));
            if id.contains('\0') || secret.contains('\0') {
                return Err(OAuthError::invalid_client(
                    "The Basic credentials are malformed",
                    true,
                ));
            }
            Some((id, secret))
        }
        None => None,
    };
    let body_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods = [basic.is_some(), body_secret.is_some(), assertion.is_some()]
        .iter()
        .filter(|m| **m)
        .count();
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "Use exactly one client authentication method",
        ));
    }
    let body_id = params.get("client_id").map(str::to_owned);
    if let Some((client_id, secret)) = basic {
        if body_id.as_deref().is_some_and(|b| b != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(secret) = body_secret {
        let client_id = body_id.ok_or_else(|| {
            OAuthError::invalid_request("client_id is required with client_secret")
        })?;
        return Ok(Presented::Post {
            client_id,
            secret: secret.to_owned(),
        });
    }
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        return Ok(Presented::Assertion {
            client_id: body_id,
            assertion: assertion.to_owned(),
        });
    }
    match body_id {
        Some(client_id) => Ok(Presented::Public { client_id }),
        None => Err(OAuthError::invalid_client(
            "Client authentication is required",
            false,
        )),
    }
}

/// Authenticates the client of a request made to `endpoint_url`.
pub async fn authenticate(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    endpoint_url: &str,
) -> Result<Client, OAuthError> {
    authenticate_with(state, request, params, endpoint_url, |_| Ok(()))
        .await
        .map(|(client, ())| client)
}

/// [`authenticate`], with `also` run on the connection that reads the client, so that an
/// endpoint's own read (introspection's token state) shares its turn at the database. What
/// `also` read is returned only if the client authenticated.
pub async fn authenticate_with<T, F>(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    endpoint_url: &str,
    also: F,
) -> Result<(Client, T), OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
{
    let claim = Claim::of(request, params)?;
    let lookup = claim.client_id.clone();
    let (client, more) = state
        .store
        .run(move |conn| Ok((find_client(conn, &lookup)?, also(conn)?)))
        .await?;
    let client = claim.check(client, &state.crypto)?;
    if let Presented::Assertion { assertion, .. } = &claim.presented {
        verify_assertion(state, &client, assertion, endpoint_url).await?;
    }
    Ok((client, more))
}

/// [`authenticate`], then `work` in a write transaction with the authenticated client. For a
/// secret or a public client, the client is read and checked in the same transaction as the
/// work, one turn at the database instead of two (the refresh grant's hot path); `work` runs
/// only if the client authenticated.
pub async fn authenticate_then_write<T, F>(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    endpoint_url: &str,
    work: F,
) -> Result<(Client, T), OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &Client) -> Result<T, StoreError> + Send + 'static,
{
    let claim = Claim::of(request, params)?;
    if matches!(claim.presented, Presented::Assertion { .. }) {
        // Verifying an assertion may fetch the client's keys: not inside a transaction.
        let client = authenticate(state, request, params, endpoint_url).await?;
        let reader = client.clone();
        let done = state.store.write(move |conn| work(conn, &reader)).await?;
        return Ok((client, done));
    }
    let crypto = state.crypto.clone();
    state
        .store
        .write(move |conn| {
            let found = find_client(conn, &claim.client_id)?;
            Ok(match claim.check(found, &crypto) {
                Ok(client) => work(conn, &client).map(|done| Ok((client, done)))?,
                Err(refused) => Err(refused),
            })
        })
        .await?
}

/// The client a request names, by which method, and what it presents to prove it.
struct Claim {
    presented: Presented,
    client_id: String,
    used: AuthMethod,
    used_basic: bool,
}

impl Claim {
    /// Reads the claim from the request, before any database read.
    fn of(request: &HttpRequest, params: &Params) -> Result<Self, OAuthError> {
        let presented = presented(request, params)?;
        let used_basic = matches!(presented, Presented::Basic { .. });
        let (client_id, used) = match &presented {
            Presented::Basic { client_id, .. } => {
                (client_id.clone(), AuthMethod::ClientSecretBasic)
            }
            Presented::Post { client_id, .. } => (client_id.clone(), AuthMethod::ClientSecretPost),
            Presented::Public { client_id } => (client_id.clone(), AuthMethod::None),
            Presented::Assertion {
                client_id,
                assertion,
            } => (
                match client_id {
                    Some(id) => id.clone(),
                    None => unverified_issuer(assertion)?,
                },
                AuthMethod::PrivateKeyJwt,
            ),
        };
        let claim = Self {
            presented,
            client_id,
            used,
            used_basic,
        };
        if claim.client_id.len() > 255 {
            return Err(claim.unknown());
        }
        Ok(claim)
    }

    fn unknown(&self) -> OAuthError {
        OAuthError::invalid_client("Client authentication failed", self.used_basic)
    }

    /// Checks the claim against the client `found` under its id: the registered method and,
    /// for the secret methods, the secret. An assertion's signature is checked afterwards, by
    /// [`verify_assertion`].
    fn check(&self, found: Option<Client>, crypto: &Crypto) -> Result<Client, OAuthError> {
        let client = found.ok_or_else(|| self.unknown())?;
        if client.auth_method != self.used {
            return Err(OAuthError::invalid_client(
                format!(
                    "This client authenticates with {}, not {}",
                    client.auth_method.as_str(),
                    self.used.as_str()
                ),
                self.used_basic,
            ));
        }
        match &self.presented {
            Presented::Basic { secret, .. } | Presented::Post { secret, .. }
                if !client.secret_matches(crypto, secret) =>
            {
                Err(self.unknown())
            }
            _ => Ok(client),
        }
    }
}

/// The `iss` of an assertion, read before verification only to find the client whose keys
/// verify it.
fn unverified_issuer(assertion: &str) -> Result<String, OAuthError> {
    let (_, _, payload, _) = decode_compact(assertion)
        .map_err(|_| OAuthError::invalid_client("The client assertion is malformed", false))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OAuthError::invalid_client("The client assertion is malformed", false))?;
    let claims: Value = serde_json::from_slice(&bytes)
        .map_err(|_| OAuthError::invalid_client("The client assertion is malformed", false))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::invalid_client("The client assertion has no iss", false))
}

/// RFC 7519 §2: a NumericDate may have a fraction (josekit, for one, writes `exp` as a float).
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<f64>,
    nbf: Option<f64>,
    jti: Option<String>,
}

async fn verify_assertion(
    state: &AppState,
    client: &Client,
    assertion: &str,
    endpoint_url: &str,
) -> Result<(), OAuthError> {
    let fail = |why: &str| OAuthError::invalid_client(format!("The client assertion {why}"), false);
    let (header, ..) = decode_compact(assertion).map_err(|_| fail("is malformed"))?;
    let alg: SigningAlg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok())
        .filter(|a| ASSERTION_ALGS.contains(a))
        .ok_or_else(|| fail("uses an unsupported algorithm"))?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let keys = state
        .client_keys
        .keys_for(&state.http, client, kid.as_deref())
        .await
        .map_err(|e| {
            tracing::warn!(client_id = %client.id, error = %e, "client keys unavailable");
            fail("cannot be checked: the client's keys are unavailable")
        })?;
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| match &kid {
            Some(kid) => k.key_id() == Some(kid.as_str()),
            None => true,
        })
        .filter(|k| k.algorithm().is_none_or(|a| a == alg.as_str()))
        .filter(|k| k.key_use().is_none_or(|u| u == "sig"))
        .collect();
    let verified = candidates.iter().find_map(|jwk| {
        let verifier = verifier_for(alg, jwk).ok()?;
        verify_with(assertion, alg, verifier.as_ref()).ok()
    });
    let verified =
        verified.ok_or_else(|| fail("signature does not verify with the client's keys"))?;
    let claims: AssertionClaims =
        serde_json::from_slice(&verified.payload).map_err(|_| fail("claims are malformed"))?;
    if claims.iss.as_deref() != Some(client.id.as_str())
        || claims.sub.as_deref() != Some(client.id.as_str())
    {
        return Err(fail("must have iss and sub equal to the client_id"));
    }
    let issuer = state.settings.issuer.as_str();
    let token_endpoint = state.settings.url_for(crate::paths::TOKEN);
    let audience_ok = |aud: &str| aud == endpoint_url || aud == issuer || aud == token_endpoint;
    let aud_ok = match &claims.aud {
        Some(Value::String(aud)) => audience_ok(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(audience_ok),
        _ => false,
    };
    if !aud_ok {
        return Err(fail("audience must be this endpoint or the issuer"));
    }
    let at = now();
    let exp = claims.exp.ok_or_else(|| fail("has no exp"))?.floor() as i64;
    if exp + LEEWAY_SECS <= at {
        return Err(fail("has expired"));
    }
    if exp > at + MAX_ASSERTION_LIFETIME_SECS {
        return Err(fail("expires too far in the future"));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.floor() as i64 > at + LEEWAY_SECS)
    {
        return Err(fail("is not valid yet"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or_else(|| fail("has no jti"))?;
    let client_id = client.id.clone();
    let fresh = state
        .store
        .run(move |conn| claim_assertion_jti(conn, &client_id, &jti, exp + LEEWAY_SECS))
        .await?;
    if !fresh {
        tracing::warn!(client_id = %client.id, "client assertion replayed");
        return Err(fail("was already used"));
    }
    Ok(())
}

/// The public keys of clients that registered a `jwks_uri`, fetched on demand and cached;
/// an unknown `kid` triggers a re-fetch (the client rotated its keys), at most every 10 s.
pub struct ClientKeyCache {
    entries: Mutex<HashMap<String, FetchedKeys>>,
}

/// A client's keys and when they were fetched.
type FetchedKeys = (Instant, std::sync::Arc<Vec<Jwk>>);

impl Default for ClientKeyCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

const JWKS_CACHE_TTL: Duration = Duration::from_secs(300);
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(10);

fn parse_jwk_set(value: &Value) -> anyhow::Result<Vec<Jwk>> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("not a JWK Set"))?;
    Ok(keys
        .iter()
        .filter_map(|k| Jwk::from_bytes(k.to_string().as_bytes()).ok())
        .collect())
}

impl ClientKeyCache {
    /// The client's public keys: registered inline, or from its `jwks_uri`.
    pub async fn keys_for(
        &self,
        http: &crate::http::outbound::OutboundHttp,
        client: &Client,
        kid: Option<&str>,
    ) -> anyhow::Result<std::sync::Arc<Vec<Jwk>>> {
        if let Some(jwks) = &client.jwks {
            return Ok(std::sync::Arc::new(parse_jwk_set(jwks)?));
        }
        let uri = client
            .jwks_uri
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("the client registered no keys"))?;
        let cached = self.entries.lock().expect("cache lock").get(uri).cloned();
        if let Some((fetched, keys)) = &cached {
            let has_kid = kid.is_none_or(|kid| keys.iter().any(|k| k.key_id() == Some(kid)));
            let fresh = fetched.elapsed() < JWKS_CACHE_TTL;
            if fresh && (has_kid || fetched.elapsed() < JWKS_REFETCH_MIN) {
                return Ok(keys.clone());
            }
        }
        let response = http
            .client_for(uri)?
            .get(uri)
            .header("Accept", "application/json")
            .send()
            .await?
            .error_for_status()?;
        let value: Value = response.json().await?;
        let keys = std::sync::Arc::new(parse_jwk_set(&value)?);
        self.entries
            .lock()
            .expect("cache lock")
            .insert(uri.to_owned(), (Instant::now(), keys.clone()));
        Ok(keys)
    }
}
