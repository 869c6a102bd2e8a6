//! API keys of service accounts (seed 003): an administrator creates one with scopes and an
//! expiry, sees it once, and Latchkey keeps only its keyed hash. `POST /api/v1/auth/token`
//! exchanges a key for a short-lived access token, minted under the key's own grant, so that
//! revoking the key revokes every token it produced at once.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::first_party::FIRST_PARTY_CLIENT_ID;
use crate::admin::users::parse_permissions;
use crate::admin::{AdminError, Caller};
use crate::domain::{Email, PlainToken, Scope, Timestamp, Username, now};
use crate::events::audit::{self, AuditEvent};
use crate::oauth::clients::find_client;
use crate::oauth::issue::{Authentication, TokenContext, load_subject, mint_access_token};
use crate::startup::AppState;
use crate::store::api_keys::{self as rows, ApiKeyRow};
use crate::store::grants::{self as grant_rows, GrantRow};
use crate::store::security::{self, SecurityRow};
use crate::store::users::{self as user_rows, UserRow};
use crate::store::{AnyConnection, StoreError, to_json};

/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "lk_key_";
/// How long a key lives when the request does not say.
pub const DEFAULT_DAYS: i64 = 90;
/// The longest a key may live.
pub const MAX_DAYS: i64 = 3650;
/// How many leading characters of a key are kept to tell keys apart.
const PREFIX_LEN: usize = 14;

/// What an administrator sends to create a key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// A label for people.
    pub name: String,
    /// The permissions the key may use.
    pub scopes: Vec<String>,
    /// The service account the key acts as; one is created when absent.
    pub user_id: Option<String>,
    /// When the key stops working (RFC 3339)…
    pub expires_at: Option<String>,
    /// …or in how many days (default 90, at most 3650).
    pub expires_in_days: Option<i64>,
}

/// The view of a key: never the key or its hash.
fn view(row: &ApiKeyRow, username: &str, at: i64) -> Value {
    let status = if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|e| e <= at) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": row.id,
        "name": row.name,
        "key_prefix": row.key_prefix,
        "user_id": row.user_id,
        "username": username,
        "scopes": row.scopes.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "status": status,
        "created_by": row.created_by,
        "created_at": Timestamp(row.created_at),
        "expires_at": row.expires_at.map(Timestamp),
        "last_used_at": row.last_used_at.map(Timestamp),
        "revoked_at": row.revoked_at.map(Timestamp),
    })
}

/// `svc-<name>-<random>`: a username for a new service account.
fn service_username(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(40).collect();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    if slug.is_empty() {
        format!("svc-{suffix}")
    } else {
        format!("svc-{slug}-{suffix}")
    }
}

/// Creates a service account holding exactly `scopes` as direct permissions.
fn create_service_account(
    conn: &mut AnyConnection,
    name: &str,
    scopes: &[String],
    at: i64,
) -> Result<String, AdminError> {
    let username = service_username(name);
    let email = format!("{username}@service-accounts.invalid");
    let row = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: Username::parse(&username)
            .map_err(|e| AdminError::invalid("name", e.0))?
            .as_str()
            .to_owned(),
        email: Email::parse(&email)
            .map_err(|e| AdminError::invalid("name", e.0))?
            .as_str()
            .to_owned(),
        email_verified: false,
        password_hash: None,
        first_name: None,
        last_name: None,
        status: "active".into(),
        created_at: at,
        updated_at: at,
        last_login_at: None,
        middle_name: None,
        nickname: None,
        picture: None,
        website: None,
        profile_url: None,
        gender: None,
        birthdate: None,
        zoneinfo: None,
        locale: None,
        phone_number: None,
        phone_number_verified: false,
        address: None,
        display_name: Some(format!("Service account: {name}")),
        bio: None,
        preferences: None,
        metadata: None,
        email_verified_at: None,
    };
    user_rows::insert(conn, &row)?;
    user_rows::set_kind(conn, &row.id, "service")?;
    security::insert(conn, &SecurityRow::new(&row.id, None))?;
    user_rows::set_direct_permissions(conn, &row.id, scopes)?;
    Ok(row.id)
}

/// Creates a key; returns its view with the key itself, shown this once.
pub fn create(
    conn: &mut AnyConnection,
    crypto: &crate::crypto::Crypto,
    caller: &Caller,
    request: NewApiKey,
) -> Result<Value, AdminError> {
    let at = now();
    let mut errors = Vec::new();
    let name = match crate::domain::text::line(&request.name, 100) {
        Ok(Some(name)) => name,
        Ok(None) => {
            errors.push(("name".into(), "must be 1 to 100 characters".into()));
            String::new()
        }
        Err(e) => {
            errors.push(("name".into(), e.0));
            String::new()
        }
    };
    if request.scopes.is_empty() {
        errors.push(("scopes".into(), "must list at least one permission".into()));
    }
    let scopes = parse_permissions("scopes", &request.scopes, &mut errors);
    let expires_at = match (request.expires_at.as_deref(), request.expires_in_days) {
        (Some(_), Some(_)) => {
            errors.push((
                "expires_at".into(),
                "give expires_at or expires_in_days, not both".into(),
            ));
            None
        }
        (Some(text), None) => match Timestamp::parse(text) {
            Some(t) if t.0 > at && t.0 <= at + MAX_DAYS * 86_400 => Some(t.0),
            Some(_) => {
                errors.push((
                    "expires_at".into(),
                    format!("must be in the future and within {MAX_DAYS} days"),
                ));
                None
            }
            None => {
                errors.push(("expires_at".into(), "must be an RFC 3339 time".into()));
                None
            }
        },
        (None, days) => {
            let days = days.unwrap_or(DEFAULT_DAYS);
            if (1..=MAX_DAYS).contains(&days) {
                Some(at + days * 86_400)
            } else {
                // Not multiplied: a huge number of days would overflow.
                errors.push(("expires_in_days".into(), format!("must be 1 to {MAX_DAYS}")));
                None
            }
        }
    };
    if !errors.is_empty() {
        return Err(AdminError::Invalid(errors));
    }
    caller.ensure_holds(scopes.iter().map(String::as_str))?;
    let user_id = match &request.user_id {
        Some(id) => {
            let user = crate::admin::users::find(conn, id)?;
            if user.deleted_at.is_some() {
                return Err(AdminError::NotFound("user"));
            }
            caller.ensure_outranks(conn, id)?;
            let held = crate::domain::PermissionSet::new(user_rows::permissions(conn, id)?);
            let missing: Vec<(String, String)> = scopes
                .iter()
                .filter(|s| !held.grants(s))
                .map(|s| ("scopes".to_owned(), format!("the user does not hold `{s}`")))
                .collect();
            if !missing.is_empty() {
                return Err(AdminError::Invalid(missing));
            }
            id.clone()
        }
        None => create_service_account(conn, &name, &scopes, at)?,
    };
    let scope = scopes.join(" ");
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: FIRST_PARTY_CLIENT_ID.to_owned(),
        user_id: user_id.clone(),
        session_id: None,
        scope: scope.clone(),
        claims: None,
        auth_time: at,
        acr: "0".into(),
        amr: to_json(&["api_key"]),
        offline: true,
        created_at: at,
        expires_at: expires_at.unwrap_or(at + MAX_DAYS * 86_400),
        revoked_at: None,
        revoked_reason: None,
        refresh_ttl_secs: None,
    };
    grant_rows::insert_grant(conn, &grant)?;
    let key = PlainToken::generate(API_KEY_PREFIX);
    let row = ApiKeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        key_hash: crypto.hash_token(key.expose()).0,
        key_prefix: key.expose().chars().take(PREFIX_LEN).collect(),
        user_id: user_id.clone(),
        grant_id: grant.id,
        scopes: scope,
        created_by: caller.user_id.clone(),
        created_at: at,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    rows::insert(conn, &row)?;
    let username = user_rows::find(conn, &user_id)?.username;
    let mut shown = view(&row, &username, at);
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("api_key_created", "api_keys", Some(&row.id))
            .values(None, Some(shown.clone())),
    )?;
    shown["api_key"] = json!(key.expose());
    Ok(shown)
}

/// Every key (of one user, when asked), as `(created_at, id, view)`.
pub fn list(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
) -> Result<Vec<(i64, String, Value)>, StoreError> {
    let at = now();
    Ok(rows::list(conn, user_id)?
        .into_iter()
        .map(|(row, username)| (row.created_at, row.id.clone(), view(&row, &username, at)))
        .collect())
}

/// One key.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Value, AdminError> {
    let row = match rows::find(conn, id) {
        Ok(row) => row,
        Err(StoreError::NotFound) => return Err(AdminError::NotFound("API key")),
        Err(other) => return Err(other.into()),
    };
    let username = user_rows::find(conn, &row.user_id)?.username;
    Ok(view(&row, &username, now()))
}

/// Revokes a key and its grant: every access token it produced stops working at once.
pub fn revoke(conn: &mut AnyConnection, caller: &Caller, id: &str) -> Result<Value, AdminError> {
    let before = get(conn, id)?;
    let row = rows::find(conn, id)?;
    caller.ensure_outranks(conn, &row.user_id)?;
    let at = now();
    if !rows::revoke(conn, id, at)? {
        return Err(AdminError::Conflict(
            "The API key is already revoked".into(),
        ));
    }
    grant_rows::revoke_grant(conn, &row.grant_id, "API key revoked", at)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("api_key_revoked", "api_keys", Some(id)).values(
            Some(json!({"status": before["status"]})),
            Some(json!({"status": "revoked"})),
        ),
    )?;
    Ok(json!({"message": "API key revoked", "revoked_at": Timestamp(at)}))
}

/// Why a key was not exchanged. The caller learns only that it was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Unknown, revoked or expired, or its account cannot act.
    #[error("the API key is invalid, expired or revoked")]
    Refused,
    /// Something failed inside.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An access token minted for a key.
#[derive(Debug, serde::Serialize)]
pub struct KeyToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
}

/// Exchanges a presented key for an access token under the key's grant.
pub async fn exchange(state: &AppState, presented: &str) -> Result<KeyToken, ExchangeError> {
    if !presented.starts_with(API_KEY_PREFIX) || presented.len() > 256 {
        return Err(ExchangeError::Refused);
    }
    let hash = state.crypto.hash_token(presented).0;
    let found = state
        .store
        .write(move |conn| {
            let at = now();
            let row = match rows::find_by_hash(conn, &hash) {
                Ok(row) => row,
                Err(StoreError::NotFound) => return Ok(None),
                Err(other) => return Err(other),
            };
            if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= at) {
                return Ok(None);
            }
            let grant = grant_rows::find_grant(conn, &row.grant_id)?;
            let user = user_rows::find_listed(conn, &row.user_id)?;
            let lock = security::find(conn, &row.user_id)?.locked_until;
            if grant.revoked_at.is_some()
                || user.row.status != "active"
                || user.deleted_at.is_some()
                || lock.is_some_and(|until| until > at)
            {
                return Ok(None);
            }
            rows::touch(conn, &row.id, at)?;
            let client = find_client(conn, FIRST_PARTY_CLIENT_ID)?.ok_or(StoreError::NotFound)?;
            Ok(Some((
                row,
                grant,
                client,
                load_subject(conn, &user.row.id)?,
            )))
        })
        .await
        .map_err(|e| ExchangeError::Internal(e.into()))?;
    let Some((row, grant, client, subject)) = found else {
        return Err(ExchangeError::Refused);
    };
    let scope = Scope::parse(&row.scopes)
        .map_err(|e| ExchangeError::Internal(anyhow::anyhow!("api_keys.scopes: {e}")))?;
    let (access_token, _) = mint_access_token(
        state,
        &TokenContext {
            client: &client,
            subject: &subject,
            grant_id: &grant.id,
            scope: &scope,
            authentication: &Authentication {
                auth_time: grant.auth_time,
                acr: grant.acr.clone(),
                amr: vec!["api_key".into()],
                session_id: None,
            },
            claims: &Default::default(),
        },
    )?;
    state.metrics.token_issued("api_key");
    Ok(KeyToken {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.lifetimes.access_token,
        scope: row.scopes,
    })
}
