//! What administrators send about a user, validated field by field.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::AdminError;
use crate::domain::{Email, Permission, Username, nullable};
use crate::store::to_json;

/// The statuses an administrator may set (`locked` locks without an end).
pub const STATUSES: &[&str] = &["active", "inactive", "suspended", "locked"];

/// The longest name, display name or lock reason.
const MAX_NAME: usize = 100;
/// The largest `metadata` or `preferences` object, serialised.
const MAX_OBJECT_BYTES: usize = 16 * 1024;

/// The members of a user an administrator may send: to create (`POST`) or change (`PUT`,
/// `PATCH`; absent members stay as they are, `null` clears a nullable one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub username: Option<String>,
    pub email: Option<String>,
    /// The first password (creation only); without one the account gets none until a reset.
    pub password: Option<SecretString>,
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    /// Seeds 001 and 003: one role.
    pub role: Option<String>,
    /// Seed 000: the roles.
    pub roles: Option<Vec<String>>,
    /// Direct permissions (seed 001's admin creation).
    pub permissions: Option<Vec<String>>,
    pub status: Option<String>,
    /// Seed 001: `true` is `status: active`, `false` is `status: inactive`.
    pub is_active: Option<bool>,
    pub email_verified: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub preferences: Option<Option<Value>>,
    /// Mail the new user a welcome (with a link to set a password when none was given).
    pub send_welcome_email: Option<bool>,
}

/// Validated changes (or a validated new user).
#[derive(Debug, Default)]
pub struct UserSpec {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub permissions: Option<Vec<String>>,
    pub status: Option<String>,
    pub email_verified: Option<bool>,
    pub metadata: Option<Option<String>>,
    pub preferences: Option<Option<String>>,
}

fn name_field(
    field: &str,
    value: Option<Option<String>>,
    errors: &mut Vec<(String, String)>,
) -> Option<Option<String>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => crate::domain::text::line(&text, MAX_NAME)
            .map_err(|e| errors.push((field.into(), e.0)))
            .ok(),
    }
}

fn object_field(
    field: &str,
    value: Option<Option<Value>>,
    errors: &mut Vec<(String, String)>,
) -> Option<Option<String>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(Value::Object(map))) => {
            let text = to_json(&map);
            if text.len() > MAX_OBJECT_BYTES {
                errors.push((
                    field.into(),
                    format!("must be at most {MAX_OBJECT_BYTES} bytes"),
                ));
                None
            } else {
                Some(Some(text))
            }
        }
        Some(Some(_)) => {
            errors.push((field.into(), "must be a JSON object".into()));
            None
        }
    }
}

/// Parses permission names, reporting the bad ones under `field`.
pub fn parse_permissions(
    field: &str,
    names: &[String],
    errors: &mut Vec<(String, String)>,
) -> Vec<String> {
    let mut valid = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        match Permission::parse(name) {
            Ok(p) => valid.push(p.as_str().to_owned()),
            Err(e) => errors.push((format!("{field}[{index}]"), e.0)),
        }
    }
    valid.sort();
    valid.dedup();
    valid
}

impl UserInput {
    /// Validates the members; `creating` requires an email and allows the password and the
    /// welcome mail. Returns the changes and the password (creation only).
    pub fn validate(
        self,
        creating: bool,
    ) -> Result<(UserSpec, Option<SecretString>, bool), AdminError> {
        let mut errors = Vec::new();
        let mut spec = UserSpec::default();
        if !creating {
            if self.password.is_some() {
                errors.push((
                    "password".into(),
                    "is set through a password reset, not here".into(),
                ));
            }
            if self.send_welcome_email.is_some() {
                errors.push((
                    "send_welcome_email".into(),
                    "applies only when creating a user".into(),
                ));
            }
        }
        if let Some(email) = &self.email {
            match Email::parse(email) {
                Ok(email) => spec.email = Some(email),
                Err(e) => errors.push(("email".into(), e.0)),
            }
        } else if creating {
            errors.push(("email".into(), "is required".into()));
        }
        match (&self.username, creating) {
            (Some(name), _) => match Username::parse(name) {
                Ok(name) => spec.username = Some(name),
                Err(e) => errors.push(("username".into(), e.0)),
            },
            // Seeds 001 and 003 create users by email alone: the address is the username.
            (None, true) => {
                if let Some(email) = &spec.email {
                    match Username::parse(email.as_str()) {
                        Ok(name) => spec.username = Some(name),
                        Err(e) => errors.push(("username".into(), e.0)),
                    }
                }
            }
            (None, false) => {}
        }
        spec.first_name = name_field("first_name", self.first_name, &mut errors);
        spec.last_name = name_field("last_name", self.last_name, &mut errors);
        spec.display_name = name_field("display_name", self.display_name, &mut errors);
        spec.roles = match (self.role, self.roles) {
            (Some(_), Some(_)) => {
                errors.push(("role".into(), "give role or roles, not both".into()));
                None
            }
            (Some(role), None) => Some(vec![role]),
            (None, Some(roles)) => Some(roles),
            (None, None) if creating => Some(vec!["user".to_owned()]),
            (None, None) => None,
        };
        if let Some(roles) = &mut spec.roles {
            roles.iter_mut().for_each(|r| *r = r.trim().to_owned());
            roles.sort();
            roles.dedup();
        }
        spec.permissions = self
            .permissions
            .map(|names| parse_permissions("permissions", &names, &mut errors));
        let status_from_flag = self
            .is_active
            .map(|active| if active { "active" } else { "inactive" }.to_owned());
        spec.status = match (self.status, status_from_flag) {
            (Some(status), Some(flag)) if status != flag => {
                errors.push(("is_active".into(), "disagrees with status".into()));
                None
            }
            (Some(status), _) if !STATUSES.contains(&status.as_str()) => {
                errors.push((
                    "status".into(),
                    format!("must be one of {}", STATUSES.join(", ")),
                ));
                None
            }
            (Some(status), _) | (None, Some(status)) => Some(status),
            (None, None) => None,
        };
        spec.email_verified = self.email_verified;
        spec.metadata = object_field("metadata", self.metadata, &mut errors);
        spec.preferences = object_field("preferences", self.preferences, &mut errors);
        if errors.is_empty() {
            Ok((
                spec,
                self.password,
                self.send_welcome_email.unwrap_or(false),
            ))
        } else {
            Err(AdminError::Invalid(errors))
        }
    }
}
