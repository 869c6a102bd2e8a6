//! OAuth clients: registration rules, the stored model, and its public view.
//!
//! A client's secret is generated here (256 bits), shown once, and stored only as a keyed
//! hash, so the token endpoint checks it at HMAC speed rather than at password-hash speed.

use serde::Serialize;
use serde_json::Value;

use crate::crypto::Crypto;
use crate::domain::{
    ApplicationType, AuthMethod, ClientId, GrantType, Invalid, PlainToken, RedirectUri,
    ResponseType, Scope, SigningAlg, Timestamp, now,
};
use crate::store::clients::{self as rows, ClientRow};
use crate::store::{AnyConnection, StoreError, from_json, to_json};

/// Prefix of generated client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "lks_";

/// The scopes a client may ask for when registration does not say.
pub const DEFAULT_SCOPE: &str = "openid profile email address phone offline_access";

/// What an administrator asks to register. Every field is parsed by [`ClientRegistration::validate`].
#[derive(Debug, Default, Clone)]
pub struct ClientRequest {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    pub auth_method: Option<String>,
    pub scope: Option<String>,
    pub skip_consent: bool,
    pub application_type: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub userinfo_signed_response_alg: Option<String>,
    pub require_pkce: bool,
    /// A secret to import (for clients moved from another provider) instead of generating one.
    pub secret: Option<String>,
}

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ClientFieldError {
    /// The metadata field (RFC 7591 name).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn field_error(field: &'static str) -> impl Fn(Invalid) -> ClientFieldError {
    move |e| ClientFieldError {
        field,
        message: e.0,
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> ClientFieldError {
    ClientFieldError {
        field,
        message: message.into(),
    }
}

/// Registration metadata after validation.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    pub name: String,
    pub application_type: ApplicationType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub scope: Scope,
    pub skip_consent: bool,
    pub require_pkce: bool,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: SigningAlg,
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    pub imported_secret: Option<PlainToken>,
}

fn web_url(field: &'static str, raw: &str) -> Result<String, ClientFieldError> {
    let url =
        url::Url::parse(raw).map_err(|e| bad(field, format!("`{raw}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad(field, format!("`{raw}` must be an http(s) URL")));
    }
    if url.fragment().is_some() {
        return Err(bad(field, format!("`{raw}` must not contain a fragment")));
    }
    Ok(raw.to_owned())
}

fn optional_url(
    field: &'static str,
    raw: &Option<String>,
) -> Result<Option<String>, ClientFieldError> {
    raw.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| web_url(field, s))
        .transpose()
}

/// The response types a set of grants allows (OpenID Connect Registration §2).
fn response_types_for(grants: &[GrantType]) -> Vec<String> {
    let code = grants.contains(&GrantType::AuthorizationCode);
    let implicit = grants.contains(&GrantType::Implicit);
    ResponseType::SUPPORTED
        .iter()
        .filter(|rt| {
            let rt = ResponseType::parse(rt).expect("supported types parse");
            (!rt.code || code) && (!rt.is_front_channel() || implicit)
        })
        .map(|rt| (*rt).to_owned())
        .collect()
}

/// Checks that a JWK Set holds only public keys, each with a key type.
fn validate_jwks(jwks: &Value) -> Result<(), ClientFieldError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("jwks", "must be a JWK Set: an object with a `keys` array"))?;
    if keys.is_empty() {
        return Err(bad("jwks", "must contain at least one key"));
    }
    for key in keys {
        if key.get("kty").and_then(Value::as_str).is_none() {
            return Err(bad("jwks", "every key needs a `kty`"));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if key.get(private).is_some() {
                return Err(bad("jwks", "must hold public keys only"));
            }
        }
        josekit::jwk::Jwk::from_bytes(key.to_string().as_bytes())
            .map_err(|e| bad("jwks", format!("a key does not parse: {e}")))?;
    }
    Ok(())
}

impl ClientRequest {
    /// Applies the registration rules and defaults.
    pub fn validate(&self) -> Result<ClientRegistration, ClientFieldError> {
        let name = crate::domain::text::line(&self.name, 200)
            .map_err(|e| bad("client_name", e.0))?
            .ok_or_else(|| bad("client_name", "must be 1 to 200 characters"))?;
        let application_type = self
            .application_type
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(field_error("application_type"))?
            .unwrap_or(ApplicationType::Web);
        let mut grant_types = Vec::new();
        for raw in &self.grant_types {
            let grant: GrantType = raw.parse().map_err(field_error("grant_types"))?;
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        if grant_types.is_empty() {
            grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        }
        let auth_method = self
            .auth_method
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(field_error("token_endpoint_auth_method"))?
            .unwrap_or(AuthMethod::ClientSecretBasic);
        let redirect_uris = self
            .redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(field_error("redirect_uris"))?;
        let uses_redirects = grant_types
            .iter()
            .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
        if uses_redirects && redirect_uris.is_empty() {
            return Err(bad(
                "redirect_uris",
                "at least one is required for the authorization_code and implicit grants",
            ));
        }
        if grant_types.contains(&GrantType::Implicit) {
            for uri in &redirect_uris {
                if application_type != ApplicationType::Web {
                    continue;
                }
                if !uri.as_str().starts_with("https://") {
                    return Err(bad(
                        "redirect_uris",
                        "web clients using the implicit grant must use https redirect URIs",
                    ));
                }
                // OpenID Connect Registration §2: tokens in a fragment sent to this machine
                // go to whatever listens on it, not to the registered application.
                if uri.is_this_machine() {
                    return Err(bad(
                        "redirect_uris",
                        "web clients using the implicit grant must not redirect to localhost or a loopback address",
                    ));
                }
            }
        }
        let post_logout_redirect_uris = self
            .post_logout_redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(field_error("post_logout_redirect_uris"))?;
        if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(bad(
                "grant_types",
                "a public client (auth method none) cannot use client_credentials",
            ));
        }
        let jwks = self.jwks.clone();
        if let Some(jwks) = &jwks {
            validate_jwks(jwks)?;
        }
        let jwks_uri = optional_url("jwks_uri", &self.jwks_uri)?;
        if jwks.is_some() && jwks_uri.is_some() {
            return Err(bad("jwks", "give jwks or jwks_uri, not both"));
        }
        if auth_method == AuthMethod::PrivateKeyJwt && jwks.is_none() && jwks_uri.is_none() {
            return Err(bad(
                "jwks",
                "private_key_jwt needs the client's keys: jwks or jwks_uri",
            ));
        }
        let scope = Scope::parse(self.scope.as_deref().unwrap_or(DEFAULT_SCOPE))
            .map_err(field_error("scope"))?;
        if scope.contains("*") {
            return Err(bad(
                "scope",
                "`*` is reserved to the built-in first-party client: list the permissions instead",
            ));
        }
        let id_token_signed_response_alg = self
            .id_token_signed_response_alg
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(field_error("id_token_signed_response_alg"))?
            .unwrap_or(SigningAlg::Rs256);
        let userinfo_signed_response_alg = self
            .userinfo_signed_response_alg
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(field_error("userinfo_signed_response_alg"))?;
        let imported_secret = match &self.secret {
            None => None,
            Some(_) if !auth_method.uses_secret() => {
                return Err(bad(
                    "client_secret",
                    "only clients authenticating with a secret have one",
                ));
            }
            Some(secret) if secret.chars().count() < 32 || secret.len() > 512 => {
                return Err(bad(
                    "client_secret",
                    "an imported secret must be 32 to 512 characters",
                ));
            }
            Some(secret) => Some(PlainToken::presented(secret.clone())),
        };
        Ok(ClientRegistration {
            name,
            application_type,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri: optional_url(
                "backchannel_logout_uri",
                &self.backchannel_logout_uri,
            )?,
            frontchannel_logout_uri: optional_url(
                "frontchannel_logout_uri",
                &self.frontchannel_logout_uri,
            )?,
            response_types: response_types_for(&grant_types),
            grant_types,
            auth_method,
            scope,
            skip_consent: self.skip_consent,
            // RFC 9700 §2.1.1: public clients always use PKCE.
            require_pkce: self.require_pkce || auth_method == AuthMethod::None,
            logo_uri: optional_url("logo_uri", &self.logo_uri)?,
            policy_uri: optional_url("policy_uri", &self.policy_uri)?,
            tos_uri: optional_url("tos_uri", &self.tos_uri)?,
            jwks,
            jwks_uri,
            id_token_signed_response_alg,
            userinfo_signed_response_alg,
            imported_secret,
        })
    }
}

/// A client's public metadata (RFC 7591 names): what listing and creation show.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    pub client_id: String,
    /// Present only in the response that created (or rotated) the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_name: String,
    pub application_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
    pub skip_consent: bool,
    pub require_pkce: bool,
    pub id_token_signed_response_alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ClientView {
    /// The public view of a stored client.
    pub fn from_row(row: &ClientRow) -> Result<Self, StoreError> {
        Ok(Self {
            client_id: row.id.clone(),
            client_secret: None,
            client_name: row.name.clone(),
            application_type: row.application_type.clone(),
            redirect_uris: from_json("clients.redirect_uris", &row.redirect_uris)?,
            post_logout_redirect_uris: from_json(
                "clients.post_logout_redirect_uris",
                &row.post_logout_redirect_uris,
            )?,
            grant_types: from_json("clients.grant_types", &row.grant_types)?,
            response_types: from_json("clients.response_types", &row.response_types)?,
            token_endpoint_auth_method: row.token_endpoint_auth_method.clone(),
            scope: row.scope.clone(),
            skip_consent: row.skip_consent,
            require_pkce: row.require_pkce,
            id_token_signed_response_alg: row.id_token_signed_response_alg.clone(),
            userinfo_signed_response_alg: row.userinfo_signed_response_alg.clone(),
            backchannel_logout_uri: row.backchannel_logout_uri.clone(),
            frontchannel_logout_uri: row.frontchannel_logout_uri.clone(),
            logo_uri: row.logo_uri.clone(),
            policy_uri: row.policy_uri.clone(),
            tos_uri: row.tos_uri.clone(),
            jwks: row
                .jwks
                .as_deref()
                .map(|j| from_json("clients.jwks", j))
                .transpose()?,
            jwks_uri: row.jwks_uri.clone(),
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        })
    }
}

/// A registered client, parsed: what the protocol flows work with.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    secret_hash: Option<String>,
    pub name: String,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub application_type: ApplicationType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: SigningAlg,
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    pub scope: Scope,
    pub skip_consent: bool,
    pub require_pkce: bool,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    /// The epoch its client-credentials tokens are issued under (see [`ClientRow::token_epoch`]).
    pub token_epoch: i64,
}

fn parse_stored<T: std::str::FromStr<Err = Invalid>>(
    column: &str,
    text: &str,
) -> Result<T, StoreError> {
    text.parse()
        .map_err(|e: Invalid| StoreError::Corrupt(anyhow::anyhow!("column {column}: {e}")))
}

impl Client {
    /// Parses a stored client.
    pub fn from_row(row: ClientRow) -> Result<Self, StoreError> {
        let uris = |column: &str, text: &str| -> Result<Vec<RedirectUri>, StoreError> {
            from_json::<Vec<String>>(column, text)?
                .iter()
                .map(|u| {
                    RedirectUri::parse(u)
                        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("column {column}: {e}")))
                })
                .collect()
        };
        let grant_types = from_json::<Vec<String>>("clients.grant_types", &row.grant_types)?
            .iter()
            .map(|g| parse_stored("clients.grant_types", g))
            .collect::<Result<Vec<GrantType>, _>>()?;
        Ok(Self {
            redirect_uris: uris("clients.redirect_uris", &row.redirect_uris)?,
            post_logout_redirect_uris: uris(
                "clients.post_logout_redirect_uris",
                &row.post_logout_redirect_uris,
            )?,
            grant_types,
            response_types: from_json("clients.response_types", &row.response_types)?,
            application_type: parse_stored("clients.application_type", &row.application_type)?,
            auth_method: parse_stored(
                "clients.token_endpoint_auth_method",
                &row.token_endpoint_auth_method,
            )?,
            jwks: row
                .jwks
                .as_deref()
                .map(|j| from_json("clients.jwks", j))
                .transpose()?,
            id_token_signed_response_alg: parse_stored(
                "clients.id_token_signed_response_alg",
                &row.id_token_signed_response_alg,
            )?,
            userinfo_signed_response_alg: row
                .userinfo_signed_response_alg
                .as_deref()
                .map(|a| parse_stored("clients.userinfo_signed_response_alg", a))
                .transpose()?,
            scope: Scope::parse(&row.scope)
                .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("column clients.scope: {e}")))?,
            id: row.id,
            secret_hash: row.secret_hash,
            name: row.name,
            logo_uri: row.logo_uri,
            policy_uri: row.policy_uri,
            tos_uri: row.tos_uri,
            jwks_uri: row.jwks_uri,
            skip_consent: row.skip_consent,
            require_pkce: row.require_pkce,
            backchannel_logout_uri: row.backchannel_logout_uri,
            frontchannel_logout_uri: row.frontchannel_logout_uri,
            token_epoch: row.token_epoch,
        })
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether the client registered `response_type`.
    pub fn allows_response_type(&self, response_type: &ResponseType) -> bool {
        let wanted = response_type.to_string();
        self.response_types.contains(&wanted)
    }

    /// The registered redirect URI matching `presented` (exact, or the RFC 8252 loopback rule
    /// for native clients).
    pub fn matching_redirect_uri(&self, presented: &str) -> Option<&RedirectUri> {
        self.redirect_uris
            .iter()
            .find(|r| r.matches(presented, self.application_type))
    }

    /// Whether `presented` is one of the registered post-logout redirect URIs (exact match).
    pub fn allows_post_logout_redirect(&self, presented: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.as_str() == presented)
    }

    /// Checks a presented secret against the stored keyed hash, in constant time.
    pub fn secret_matches(&self, crypto: &Crypto, presented: &str) -> bool {
        match &self.secret_hash {
            Some(stored) => crate::crypto::constant_time_eq(
                crypto.hash_token(presented).0.as_bytes(),
                stored.as_bytes(),
            ),
            None => false,
        }
    }
}

/// The client with this id, if it exists.
pub fn find_client(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    match rows::find(conn, client_id) {
        Ok(row) => Client::from_row(row).map(Some),
        Err(StoreError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The stored form of a registration under `id`.
fn row_of(
    registration: ClientRegistration,
    id: String,
    secret_hash: Option<String>,
    created_at: i64,
    updated_at: i64,
) -> ClientRow {
    let strings = |uris: &[RedirectUri]| {
        uris.iter()
            .map(|u| u.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    ClientRow {
        id,
        secret_hash,
        name: registration.name,
        logo_uri: registration.logo_uri,
        policy_uri: registration.policy_uri,
        tos_uri: registration.tos_uri,
        application_type: registration.application_type.as_str().to_owned(),
        redirect_uris: to_json(&strings(&registration.redirect_uris)),
        post_logout_redirect_uris: to_json(&strings(&registration.post_logout_redirect_uris)),
        grant_types: to_json(
            &registration
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>(),
        ),
        response_types: to_json(&registration.response_types),
        token_endpoint_auth_method: registration.auth_method.as_str().to_owned(),
        jwks: registration.jwks.as_ref().map(to_json),
        jwks_uri: registration.jwks_uri,
        id_token_signed_response_alg: registration
            .id_token_signed_response_alg
            .as_str()
            .to_owned(),
        userinfo_signed_response_alg: registration
            .userinfo_signed_response_alg
            .map(|a| a.as_str().to_owned()),
        scope: registration.scope.to_string(),
        skip_consent: registration.skip_consent,
        require_pkce: registration.require_pkce,
        backchannel_logout_uri: registration.backchannel_logout_uri,
        frontchannel_logout_uri: registration.frontchannel_logout_uri,
        created_at,
        updated_at,
        token_epoch: 0,
    }
}

/// Whether a change from `before` to `after` takes away anything the client's own tokens were
/// issued under: a scope, the client-credentials grant, or the credentials that obtained them.
fn narrows_tokens(before: &ClientRow, after: &ClientRow, secret_replaced: bool) -> bool {
    let scope_lost = before
        .scope
        .split_ascii_whitespace()
        .any(|s| !after.scope.split_ascii_whitespace().any(|t| t == s));
    let grants = |row: &ClientRow| {
        from_json::<Vec<String>>("clients.grant_types", &row.grant_types).unwrap_or_default()
    };
    let grant_lost = grants(before).iter().any(|g| !grants(after).contains(g));
    scope_lost
        || grant_lost
        || secret_replaced
        || before.token_endpoint_auth_method != after.token_endpoint_auth_method
        || before.jwks != after.jwks
        || before.jwks_uri != after.jwks_uri
}

/// Stores a validated registration; the returned view carries the secret, once.
pub fn create_client(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    registration: ClientRegistration,
) -> Result<ClientView, StoreError> {
    let secret = registration.auth_method.uses_secret().then(|| {
        registration
            .imported_secret
            .clone()
            .unwrap_or_else(|| PlainToken::generate(CLIENT_SECRET_PREFIX))
    });
    let at = now();
    let row = row_of(
        registration,
        ClientId::generate().as_str().to_owned(),
        secret.as_ref().map(|s| crypto.hash_token(s.expose()).0),
        at,
        at,
    );
    rows::insert(conn, &row)?;
    let mut view = ClientView::from_row(&row)?;
    view.client_secret = secret.map(|s| s.expose().to_owned());
    Ok(view)
}

/// Replaces the metadata of a client (RFC 7592 §2.2: the whole registration). Its secret is
/// kept while its method still uses one; a client that starts using a secret gets a new one,
/// returned once in the view; one that stops using a secret loses it.
pub fn update_client(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    client_id: &str,
    registration: ClientRegistration,
) -> Result<ClientView, StoreError> {
    if client_id == crate::accounts::first_party::FIRST_PARTY_CLIENT_ID {
        return Err(StoreError::Conflict {
            constraint: "the built-in first-party client cannot be changed".into(),
        });
    }
    let current = rows::find(conn, client_id)?;
    let uses_secret = registration.auth_method.uses_secret();
    let new_secret = match (&registration.imported_secret, &current.secret_hash) {
        (Some(imported), _) => Some(imported.clone()),
        (None, None) if uses_secret => Some(PlainToken::generate(CLIENT_SECRET_PREFIX)),
        _ => None,
    };
    let secret_hash = match &new_secret {
        Some(secret) => Some(crypto.hash_token(secret.expose()).0),
        None if uses_secret => current.secret_hash.clone(),
        None => None,
    };
    let mut row = row_of(
        registration,
        current.id.clone(),
        secret_hash,
        current.created_at,
        now(),
    );
    row.token_epoch =
        current.token_epoch + i64::from(narrows_tokens(&current, &row, new_secret.is_some()));
    rows::update(conn, &row)?;
    let mut view = ClientView::from_row(&row)?;
    view.client_secret = new_secret.map(|s| s.expose().to_owned());
    Ok(view)
}

/// Gives a confidential client a new secret; the old one stops working at once. Returns the
/// new secret, shown once.
pub fn rotate_secret(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    client_id: &str,
) -> Result<Option<PlainToken>, StoreError> {
    let client = find_client(conn, client_id)?.ok_or(StoreError::NotFound)?;
    if !client.auth_method.uses_secret() {
        return Ok(None);
    }
    let secret = PlainToken::generate(CLIENT_SECRET_PREFIX);
    rows::set_secret_hash(
        conn,
        client_id,
        &crypto.hash_token(secret.expose()).0,
        now(),
    )?;
    Ok(Some(secret))
}

/// Every client's public view.
pub fn list_clients(conn: &mut AnyConnection) -> Result<Vec<ClientView>, StoreError> {
    rows::all(conn)?.iter().map(ClientView::from_row).collect()
}

/// Deletes a client; the built-in first-party client cannot be deleted (the JSON API's logins
/// are grants to it).
pub fn delete_client(conn: &mut AnyConnection, client_id: &str) -> Result<(), StoreError> {
    if client_id == crate::accounts::first_party::FIRST_PARTY_CLIENT_ID {
        return Err(StoreError::Conflict {
            constraint: "the built-in first-party client cannot be deleted".into(),
        });
    }
    rows::delete(conn, client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ClientRequest {
        ClientRequest {
            name: "Example".into(),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_a_confidential_code_client() {
        let reg = request().validate().unwrap();
        assert_eq!(reg.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(
            reg.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(reg.response_types, vec!["code"]);
        assert_eq!(reg.id_token_signed_response_alg, SigningAlg::Rs256);
        assert!(!reg.require_pkce);
    }

    #[test]
    fn public_clients_require_pkce_and_cannot_use_client_credentials() {
        let mut r = request();
        r.auth_method = Some("none".into());
        assert!(r.validate().unwrap().require_pkce);
        r.grant_types = vec!["client_credentials".into()];
        assert_eq!(r.validate().unwrap_err().field, "grant_types");
    }

    #[test]
    fn implicit_grant_adds_front_channel_response_types() {
        let mut r = request();
        r.grant_types = vec!["authorization_code".into(), "implicit".into()];
        assert_eq!(r.validate().unwrap().response_types.len(), 6);
    }

    #[test]
    fn refuses_private_jwks_and_missing_redirects() {
        let mut r = request();
        r.jwks = Some(serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
        assert_eq!(r.validate().unwrap_err().field, "jwks");
        let mut r = request();
        r.redirect_uris.clear();
        assert_eq!(r.validate().unwrap_err().field, "redirect_uris");
    }
}
