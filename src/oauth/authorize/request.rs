//! Parsing and validating an authorization request.
//!
//! The client and the redirect URI are checked first: until both are trusted, every error is
//! shown as a page and never redirected (RFC 6749 §4.1.2.1). After that, errors go back to
//! the client with `error`, `state` and `iss`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{ClaimsRequest, CodeChallenge, Prompt, ResponseMode, ResponseType, Scope};
use crate::oauth::clients::Client;
use crate::oauth::error::ErrorCode;
use crate::oauth::params::Params;
use crate::oidc::keys::KeySet;
use crate::web::PageError;

use super::response::ResponseTarget;

/// Longest accepted value of a free-text parameter (`state`, `nonce`, hints, ...).
const MAX_PARAMETER_LEN: usize = 4096;

/// A validated authorization request, stored as JSON while the person logs in or consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect URI as sent (empty when omitted): the token request must repeat it.
    pub presented_redirect_uri: String,
    /// Where the response goes.
    pub redirect_uri: String,
    /// Canonical `response_type`.
    pub response_type: String,
    pub response_mode: ResponseMode,
    /// The requested scope, cut to what the client may ask for.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The subject of a valid `id_token_hint`.
    pub id_token_hint_sub: Option<String>,
    pub acr_values: Vec<String>,
    pub claims: ClaimsRequest,
}

impl AuthorizationRequest {
    /// The parsed response type (stored canonical, so this cannot fail for stored requests).
    pub fn response_type(&self) -> ResponseType {
        ResponseType::parse(&self.response_type).expect("stored response types are valid")
    }

    /// The parsed scope.
    pub fn scope(&self) -> Scope {
        Scope::parse(&self.scope).unwrap_or_default()
    }

    /// Whether the request asks for a sign-in with a second factor: `acr_values` lists the MFA
    /// level and not the password level (a preference, met when the account can), or
    /// [`Self::requires_mfa`].
    pub fn asks_for_mfa(&self) -> bool {
        only_mfa(&self.acr_values) || self.requires_mfa()
    }

    /// Whether nothing but a sign-in with a second factor answers the request: the `claims`
    /// request makes the MFA level essential. When it cannot be met, the answer is an error
    /// (OpenID Connect Core §5.5.1.1), never a token at a weaker level.
    pub fn requires_mfa(&self) -> bool {
        only_mfa(&self.claims.essential_acr())
    }

    /// Whether the `claims` request makes `acr` essential with no level this provider signs
    /// in at: no sign-in can meet it (OpenID Connect Core §5.5.1.1), so the answer is an error
    /// before anyone is asked to sign in.
    pub fn asks_for_an_unknown_level(&self) -> bool {
        use crate::domain::{ACR_MFA, ACR_PASSWORD};
        let essential = self.claims.essential_acr();
        !essential.is_empty() && !essential.iter().any(|v| v == ACR_MFA || v == ACR_PASSWORD)
    }

    /// Where and how responses (and errors) go.
    pub fn target(&self, issuer: &str) -> ResponseTarget {
        ResponseTarget {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.response_mode,
            state: self.state.clone(),
            issuer: issuer.to_owned(),
        }
    }
}

/// Why a request was refused: a page (nothing is trusted yet), or an error sent back to the
/// client's redirect URI.
#[derive(Debug)]
pub enum RequestError {
    /// Shown to the person.
    Page(PageError),
    /// Sent to the client.
    Redirect {
        target: ResponseTarget,
        code: ErrorCode,
        description: String,
    },
}

fn page(message: impl Into<String>) -> RequestError {
    RequestError::Page(PageError::bad_request(message))
}

/// The client and redirect URI of a request, checked; errors are pages.
pub struct Trusted<'a> {
    /// The redirect URI as presented (empty when omitted).
    pub presented: String,
    /// The redirect URI to use.
    pub redirect_uri: String,
    /// The client.
    pub client: &'a Client,
}

/// The `client_id` of a request, or a page explaining why there is none.
pub fn client_id(params: &Params) -> Result<String, RequestError> {
    if params.is_repeated("client_id") {
        return Err(page("The client_id parameter is repeated."));
    }
    if params.get("client_id").is_some_and(|id| id.contains('\0')) {
        return Err(page("The client_id parameter holds a NUL character."));
    }
    params
        .get("client_id")
        .map(str::to_owned)
        .ok_or_else(|| page("The request does not name a client (client_id is missing)."))
}

/// Checks the redirect URI against the client's registered ones.
pub fn trust<'a>(params: &Params, client: &'a Client) -> Result<Trusted<'a>, RequestError> {
    if params.is_repeated("redirect_uri") {
        return Err(page("The redirect_uri parameter is repeated."));
    }
    match params.get("redirect_uri") {
        Some(presented) => match client.matching_redirect_uri(presented) {
            Some(_) => Ok(Trusted {
                presented: presented.to_owned(),
                redirect_uri: presented.to_owned(),
                client,
            }),
            None => Err(page(
                "The redirect_uri is not registered for this client. Nothing was sent back to \
                 the application.",
            )),
        },
        None if client.redirect_uris.len() == 1 => Ok(Trusted {
            presented: String::new(),
            redirect_uri: client.redirect_uris[0].as_str().to_owned(),
            client,
        }),
        None => Err(page(
            "The request has no redirect_uri and the client registered several.",
        )),
    }
}

/// Validates the rest of a request whose client and redirect URI are trusted.
pub fn validate(
    params: &Params,
    trusted: Trusted<'_>,
    keys: &KeySet,
    issuer: &str,
) -> Result<AuthorizationRequest, RequestError> {
    let client = trusted.client;
    // Errors travel by the mode asked for when it is understood, else by the default of the
    // response type, else in the query.
    let parsed_type = params.get("response_type").map(ResponseType::parse);
    let default_mode = match &parsed_type {
        Some(Ok(rt)) if rt.is_front_channel() => ResponseMode::Fragment,
        _ => ResponseMode::Query,
    };
    // A request object is refused below; its `response_mode` and `state` (read, not trusted)
    // still say how the client expects that refusal, when the query does not.
    let object = params.get("request").and_then(unverified_claims);
    let from_object = |name: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mode = params
        .get("response_mode")
        .map(str::to_owned)
        .or_else(|| from_object("response_mode"))
        .and_then(|m| m.parse().ok())
        .unwrap_or(default_mode);
    let state = params.get("state").map(str::to_owned).or_else(|| {
        params
            .contains("request")
            .then(|| from_object("state"))
            .flatten()
    });
    let target = ResponseTarget {
        redirect_uri: trusted.redirect_uri.clone(),
        mode,
        state: state.clone(),
        issuer: issuer.to_owned(),
    };
    let fail = |code: ErrorCode, description: &str| RequestError::Redirect {
        target: target.clone(),
        code,
        description: description.to_owned(),
    };

    if let Some(repeated) = params.repeated() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("The parameter {} is repeated", repeated.0),
        ));
    }
    if let Some(name) = params.with_nul() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("The parameter {name} holds a NUL character"),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAMETER_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "state is too long"));
    }
    if params.contains("request") {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "Request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    let response_type = match parsed_type {
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some(Err(e)) => return Err(fail(ErrorCode::UnsupportedResponseType, &e.0)),
        Some(Ok(rt)) => rt,
    };
    if !client.allows_response_type(&response_type) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "This client may not use this response_type",
        ));
    }
    if let Some(raw) = params.get("response_mode") {
        let asked: ResponseMode = raw
            .parse()
            .map_err(|e: crate::domain::Invalid| fail(ErrorCode::InvalidRequest, &e.0))?;
        // OAuth 2.0 Multiple Response Types §5: tokens never travel in the query.
        if asked == ResponseMode::Query && response_type.is_front_channel() {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "response_mode=query cannot carry tokens",
            ));
        }
    }
    let asked_scope = Scope::parse(params.get("scope").unwrap_or(""))
        .map_err(|e| fail(ErrorCode::InvalidScope, &e.0))?;
    let mut scope = asked_scope.intersect(&client.scope);
    if !response_type.code {
        // OpenID Connect Core §11: offline_access needs a code.
        scope = Scope::parse(
            &scope
                .iter()
                .filter(|s| *s != "offline_access")
                .collect::<Vec<_>>()
                .join(" "),
        )
        .unwrap_or_default();
    }
    if response_type.id_token && !scope.contains("openid") {
        return Err(fail(
            ErrorCode::InvalidScope,
            "response types with id_token need the openid scope",
        ));
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_PARAMETER_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is too long"));
    }
    if response_type.id_token && nonce.is_none() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "nonce is required when the ID token travels in the front channel",
        ));
    }
    let code_challenge = match params.get("code_challenge") {
        Some(challenge) => Some(
            CodeChallenge::parse(challenge, params.get("code_challenge_method"))
                .map_err(|e| fail(ErrorCode::InvalidRequest, &e.0))?,
        ),
        None if params.contains("code_challenge_method") => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method was sent without code_challenge",
            ));
        }
        None => None,
    };
    if response_type.code && client.require_pkce && code_challenge.is_none() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "This client must use PKCE: code_challenge (S256) is required",
        ));
    }
    let prompt = Prompt::parse(params.get("prompt").unwrap_or(""))
        .map_err(|e| fail(ErrorCode::InvalidRequest, &e.0))?;
    let max_age = match params.get("max_age") {
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer",
            )
        })?),
        None => None,
    };
    let claims = match params.get("claims") {
        Some(raw) => {
            ClaimsRequest::parse(raw).map_err(|e| fail(ErrorCode::InvalidRequest, &e.0))?
        }
        None => ClaimsRequest::default(),
    };
    let login_hint = params
        .get("login_hint")
        .map(|h| h.chars().take(254).collect::<String>());
    let id_token_hint_sub = match params.get("id_token_hint") {
        Some(hint) => Some(hint_subject(keys, issuer, &client.id, hint).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "id_token_hint is not a valid ID token of this provider",
            )
        })?),
        None => None,
    };
    let acr_values = params
        .get("acr_values")
        .map(|v| {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        presented_redirect_uri: trusted.presented,
        redirect_uri: trusted.redirect_uri,
        response_type: response_type.to_string(),
        response_mode: mode,
        scope: scope.to_string(),
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        id_token_hint_sub,
        acr_values,
        claims,
    })
}

/// The claims of a compact JWT, without checking anything: only to learn how a client wants
/// an error delivered.
fn unverified_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The subject of an ID token this provider issued to `client_id` (an expired one still names
/// the person: OpenID Connect Core §3.1.2.1).
fn hint_subject(keys: &KeySet, issuer: &str, client_id: &str, hint: &str) -> Option<String> {
    let verified = keys.verify(hint).ok()?;
    let claims: Value = serde_json::from_slice(&verified.payload).ok()?;
    if claims.get("iss")?.as_str()? != issuer {
        return None;
    }
    let audience_ok = match claims.get("aud")? {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    audience_ok.then(|| claims.get("sub")?.as_str().map(str::to_owned))?
}

/// Whether `values` (of `acr_values` or an essential `acr`) list the MFA level and not the
/// password level.
fn only_mfa(values: &[String]) -> bool {
    use crate::domain::{ACR_MFA, ACR_PASSWORD};
    values.iter().any(|v| v == ACR_MFA) && !values.iter().any(|v| v == ACR_PASSWORD)
}
