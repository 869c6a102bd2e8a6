//! OAuth clients managed through the admin API: registration with every metadata field of the
//! OAuth issue (RFC 7591 names), reading, full and partial updates, deletion and secret
//! rotation. A secret is shown once, when it is made; the audit log never sees it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AdminError, Caller};
use crate::accounts::first_party::FIRST_PARTY_CLIENT_ID;
use crate::domain::{Timestamp, now};
use crate::events::audit::{self, AuditEvent};
use crate::events::webhooks;
use crate::oauth::clients::{
    ClientFieldError, ClientRequest, ClientView, create_client, delete_client, list_clients,
    rotate_secret, update_client,
};
use crate::startup::Handles;
use crate::store::clients as rows;
use crate::store::{AnyConnection, StoreError};

/// A client's metadata as the admin API takes it (RFC 7591 member names). `PATCH` changes the
/// members given (`null` removes an optional one); `POST` and `PUT` take the whole registration.
#[derive(Debug, Default, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// Required to create.
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Derived from the grant types; accepted (and checked) for RFC 7591 symmetry.
    pub response_types: Option<Vec<String>>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub require_pkce: bool,
    /// `web` or `native`.
    pub application_type: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub userinfo_signed_response_alg: Option<String>,
    /// A secret to import instead of generating one (clients moved from another provider).
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<ImportedSecret>,
}

/// A client secret given to import: read and written as its text, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImportedSecret(pub String);

impl std::fmt::Debug for ImportedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportedSecret(<redacted>)")
    }
}

impl ClientInput {
    fn into_request(self) -> Result<ClientRequest, AdminError> {
        let Some(name) = self.client_name else {
            return Err(AdminError::invalid("client_name", "is required"));
        };
        Ok(ClientRequest {
            name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            backchannel_logout_uri: self.backchannel_logout_uri,
            frontchannel_logout_uri: self.frontchannel_logout_uri,
            grant_types: self.grant_types,
            auth_method: self.token_endpoint_auth_method,
            scope: self.scope,
            skip_consent: self.skip_consent,
            application_type: self.application_type,
            logo_uri: self.logo_uri,
            policy_uri: self.policy_uri,
            tos_uri: self.tos_uri,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            userinfo_signed_response_alg: self.userinfo_signed_response_alg,
            require_pkce: self.require_pkce,
            secret: self.client_secret.map(|imported| imported.0),
        })
    }

    /// Validates the metadata; `response_types`, when given, must be what the grant types
    /// allow.
    fn validate(self) -> Result<crate::oauth::clients::ClientRegistration, AdminError> {
        let asked = self.response_types.clone();
        let registration = self.into_request()?.validate().map_err(field_error)?;
        if let Some(mut asked) = asked {
            let mut allowed = registration.response_types.clone();
            asked.sort();
            allowed.sort();
            if asked != allowed {
                return Err(AdminError::invalid(
                    "response_types",
                    format!(
                        "must match the grant types: {}",
                        registration.response_types.join(", ")
                    ),
                ));
            }
        }
        Ok(registration)
    }
}

fn field_error(error: ClientFieldError) -> AdminError {
    AdminError::invalid(error.field, error.message)
}

fn conflict(error: StoreError) -> AdminError {
    match error {
        StoreError::Conflict { constraint } => AdminError::Conflict(constraint),
        StoreError::NotFound => AdminError::NotFound("client"),
        other => other.into(),
    }
}

/// The URLs of a registration this server will call (`jwks_uri`, `backchannel_logout_uri`)
/// must be targets outbound requests may reach.
fn check_outbound_targets(
    handles: &Handles,
    registration: &crate::oauth::clients::ClientRegistration,
) -> Result<(), AdminError> {
    let allow = handles.settings.outbound.allow_private_networks;
    for (field, url) in [
        ("jwks_uri", &registration.jwks_uri),
        (
            "backchannel_logout_uri",
            &registration.backchannel_logout_uri,
        ),
    ] {
        if let Some(url) = url {
            crate::http::outbound::check_target(url, allow)
                .map_err(|e| AdminError::invalid(field, e.to_string()))?;
        }
    }
    Ok(())
}

/// The scopes of a client that are permissions (`users:read`, `*`): a token of the client
/// can carry them, so only a caller who holds them may register or reshape it. OpenID scopes
/// (`openid`, `profile`, ...) are no permission and pass.
fn permission_scopes(scope: &str) -> impl Iterator<Item = &str> {
    scope
        .split_ascii_whitespace()
        .filter(|token| crate::domain::Permission::parse(token).is_ok())
}

/// A client's view for administrators: the public metadata and whether it is built in.
fn admin_view(view: &ClientView) -> Value {
    let mut value = serde_json::to_value(view).expect("plain data");
    value["built_in"] = json!(view.client_id == FIRST_PARTY_CLIENT_ID);
    value
}

/// What webhooks and the audit log learn of a client: never its secret or keys.
fn summary(view: &ClientView) -> Value {
    json!({
        "client_id": view.client_id,
        "client_name": view.client_name,
        "grant_types": view.grant_types,
        "redirect_uris": view.redirect_uris,
        "token_endpoint_auth_method": view.token_endpoint_auth_method,
        "scope": view.scope,
    })
}

/// Every client (the built-in first-party one included), oldest first.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<(i64, String, Value)>, StoreError> {
    Ok(list_clients(conn)?
        .iter()
        .map(|v| (v.created_at.0, v.client_id.clone(), admin_view(v)))
        .collect())
}

fn find_view(conn: &mut AnyConnection, client_id: &str) -> Result<ClientView, AdminError> {
    match rows::find(conn, client_id) {
        Ok(row) => Ok(ClientView::from_row(&row)?),
        Err(StoreError::NotFound) => Err(AdminError::NotFound("client")),
        Err(other) => Err(other.into()),
    }
}

/// One client.
pub fn get(conn: &mut AnyConnection, client_id: &str) -> Result<Value, AdminError> {
    Ok(admin_view(&find_view(conn, client_id)?))
}

/// Registers a client; the view carries its secret, once.
pub fn create(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    input: ClientInput,
) -> Result<Value, AdminError> {
    let registration = input.validate()?;
    check_outbound_targets(handles, &registration)?;
    let scope = registration.scope.to_string();
    caller.ensure_holds(permission_scopes(&scope))?;
    let view = create_client(conn, &handles.crypto, registration)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("client_created", "clients", Some(&view.client_id))
            .values(None, Some(summary(&view))),
    )?;
    webhooks::emit(
        conn,
        &handles.crypto,
        "client.created",
        json!({"client": summary(&view)}),
    )?;
    Ok(admin_view(&view))
}

/// The input that describes a client as it is now, for partial updates.
fn current_input(view: &ClientView) -> Map<String, Value> {
    let mut value = serde_json::to_value(view).expect("plain data");
    let object = value
        .as_object_mut()
        .expect("a struct serialises to an object");
    for derived in [
        "client_id",
        "client_secret",
        "created_at",
        "updated_at",
        "response_types",
    ] {
        object.remove(derived);
    }
    object.clone()
}

/// Replaces (`patch` false: `PUT`, RFC 7592) or merges into (`patch` true: `PATCH`) a
/// client's metadata. The view carries a secret only when a new one was made.
pub fn update(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    client_id: &str,
    body: Value,
    patch: bool,
) -> Result<Value, AdminError> {
    let before = find_view(conn, client_id)?;
    if client_id == FIRST_PARTY_CLIENT_ID {
        return Err(AdminError::Conflict(
            "The built-in first-party client cannot be changed".into(),
        ));
    }
    let Value::Object(changes) = body else {
        return Err(AdminError::invalid("body", "must be a JSON object"));
    };
    let merged = if patch {
        let mut merged = current_input(&before);
        for (key, value) in changes {
            if value.is_null() {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
        merged
    } else {
        changes
    };
    let input: ClientInput = serde_json::from_value(Value::Object(merged))
        .map_err(|e| AdminError::invalid("body", e.to_string()))?;
    let registration = input.validate()?;
    check_outbound_targets(handles, &registration)?;
    // Whoever reshapes a client (its redirects, its secret, its scope) can obtain what it
    // mints, before and after: they must hold all of it.
    caller.ensure_holds(permission_scopes(&before.scope))?;
    caller.ensure_holds(permission_scopes(&registration.scope.to_string()))?;
    let view = update_client(conn, &handles.crypto, client_id, registration).map_err(conflict)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("client_updated", "clients", Some(client_id)).values(
            Some(serde_json::to_value(current_input(&before)).expect("plain data")),
            Some(serde_json::to_value(current_input(&view)).expect("plain data")),
        ),
    )?;
    Ok(admin_view(&view))
}

/// Deletes a client: its grants go with it, so every token it holds stops working at once.
pub fn delete(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    client_id: &str,
) -> Result<Value, AdminError> {
    let before = find_view(conn, client_id)?;
    delete_client(conn, client_id).map_err(conflict)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("client_deleted", "clients", Some(client_id))
            .values(Some(summary(&before)), None),
    )?;
    webhooks::emit(
        conn,
        &handles.crypto,
        "client.deleted",
        json!({"client": summary(&before)}),
    )?;
    Ok(json!({"message": "Client deleted successfully", "deleted_at": Timestamp(now())}))
}

/// Gives a confidential client a new secret (shown once); the old one stops at once.
pub fn rotate(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    client_id: &str,
) -> Result<Value, AdminError> {
    let before = find_view(conn, client_id)?;
    if client_id == FIRST_PARTY_CLIENT_ID {
        return Err(AdminError::Conflict(
            "The built-in first-party client has no secret".into(),
        ));
    }
    caller.ensure_holds(permission_scopes(&before.scope))?;
    let Some(secret) = rotate_secret(conn, &handles.crypto, client_id).map_err(conflict)? else {
        return Err(AdminError::Conflict(
            "This client does not authenticate with a secret".into(),
        ));
    };
    let at = now();
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("client_secret_rotated", "clients", Some(client_id)),
    )?;
    Ok(json!({
        "client_id": client_id,
        "client_secret": secret.expose(),
        "rotated_at": Timestamp(at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_secret_is_read_as_text_and_never_debug_printed() {
        let input: ClientInput = serde_json::from_value(
            json!({"client_name": "moved", "client_secret": "s3cret-value"}),
        )
        .unwrap();
        assert_eq!(
            input.client_secret,
            Some(ImportedSecret("s3cret-value".into()))
        );
        assert!(!format!("{input:?}").contains("s3cret-value"));
        assert_eq!(
            serde_json::to_value(&input).unwrap()["client_secret"],
            "s3cret-value"
        );
    }
}
