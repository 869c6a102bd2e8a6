//! The audit log (seed 001's model): every admin write and every security event, with who did
//! it, from where, and the old and new values (secrets redacted). Entries are written in the
//! same transaction as the change they describe.

use serde_json::{Map, Value};

use crate::domain::now;
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{AnyConnection, StoreError, to_json};

/// Who did something, and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The acting user (none for anonymous requests and the system itself).
    pub user_id: Option<String>,
    /// Their email address at the time.
    pub email: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The request that did it.
    pub request_id: Option<String>,
}

impl Actor {
    /// The server itself (key rotation, housekeeping).
    pub fn system() -> Self {
        Self::default()
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// What happened: `user_created`, `login_failed`, `key_rotated`, …
    pub action: &'a str,
    /// To what kind of thing: `users`, `clients`, `sessions`, `keys`, …
    pub resource: &'a str,
    pub resource_id: Option<&'a str>,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    pub info: Option<Value>,
}

impl<'a> AuditEvent<'a> {
    /// An event about one resource, without values.
    pub fn new(action: &'a str, resource: &'a str, resource_id: Option<&'a str>) -> Self {
        Self {
            action,
            resource,
            resource_id,
            old_values: None,
            new_values: None,
            info: None,
        }
    }

    /// Adds the values before and after.
    pub fn values(mut self, old: Option<Value>, new: Option<Value>) -> Self {
        self.old_values = old;
        self.new_values = new;
        self
    }

    /// Adds context.
    pub fn info(mut self, info: Value) -> Self {
        self.info = Some(info);
        self
    }
}

/// Names whose values never reach the log.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password", "secret", "token", "hash", "totp", "api_key", "code",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Replaces every secret member, at any depth, with `[REDACTED]`.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    // A flag says nothing secret (`password_set: true`).
                    if is_secret(&k) && !v.is_null() && !v.is_boolean() {
                        (k, Value::String("[REDACTED]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// Writes an entry (the actor's email is looked up when the caller did not give it).
pub fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    event: AuditEvent<'_>,
) -> Result<(), StoreError> {
    let actor_email = match (&actor.email, &actor.user_id) {
        (Some(email), _) => Some(email.clone()),
        (None, Some(id)) => crate::store::users::find(conn, id).ok().map(|u| u.email),
        (None, None) => None,
    };
    rows::insert(
        conn,
        &AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            actor_id: actor.user_id.clone(),
            actor_email,
            action: event.action.to_owned(),
            resource: event.resource.to_owned(),
            resource_id: event.resource_id.map(str::to_owned),
            old_values: event.old_values.map(|v| to_json(&redact(v))),
            new_values: event.new_values.map(|v| to_json(&redact(v))),
            ip_address: actor.ip_address.clone(),
            user_agent: actor.user_agent.clone(),
            request_id: actor.request_id.clone(),
            additional_info: event.info.map(|v| to_json(&redact(v))),
            created_at: now(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let value = redact(json!({
            "email": "a@example.com",
            "password": "hunter2",
            "client": {"client_secret": "s", "name": "x"},
            "items": [{"refresh_token": "t"}],
            "totp_secret": null,
        }));
        assert_eq!(value["email"], "a@example.com");
        assert_eq!(value["password"], "[REDACTED]");
        assert_eq!(value["client"]["client_secret"], "[REDACTED]");
        assert_eq!(value["client"]["name"], "x");
        assert_eq!(value["items"][0]["refresh_token"], "[REDACTED]");
        assert!(value["totp_secret"].is_null());
    }
}
