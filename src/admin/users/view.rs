//! The view of a user administrators see: batched reads, `include`, and `fields` projections.

use serde_json::{Map, Value, json};

use super::AdminError;
use crate::domain::{Timestamp, now};
use crate::store::roles as role_rows;
use crate::store::security::{self, SecurityRow};
use crate::store::users::{self as rows, ListedUser};
use crate::store::{AnyConnection, StoreError, from_json};

/// Every member of a user view, for `fields` projections.
pub const VIEW_FIELDS: &[&str] = &[
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "role",
    "roles",
    "permissions",
    "direct_permissions",
    "preferences",
    "metadata",
    "status",
    "is_active",
    "email_verified",
    "mfa_enabled",
    "kind",
    "login_attempts",
    "locked_until",
    "lock_reason",
    "last_login",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// What a view adds beyond the default members (seed 003's `include`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    /// `roles` as objects with their permissions, rather than names.
    pub roles: bool,
    /// `permissions` (effective) and `direct_permissions`.
    pub permissions: bool,
    /// `preferences`.
    pub preferences: bool,
}

impl Include {
    /// Parses `include=roles,permissions,preferences`.
    pub fn parse(text: Option<&str>) -> Result<Self, AdminError> {
        let mut include = Self::default();
        for part in text.unwrap_or("").split(',').map(str::trim) {
            match part {
                "" => {}
                "roles" => include.roles = true,
                "permissions" => include.permissions = true,
                "preferences" => include.preferences = true,
                other => {
                    return Err(AdminError::invalid(
                        "include",
                        format!(
                            "`{other}` cannot be included; use roles, permissions or preferences"
                        ),
                    ));
                }
            }
        }
        Ok(include)
    }

    /// Everything (the answer to a create or an update).
    pub fn all() -> Self {
        Self {
            roles: false,
            permissions: true,
            preferences: true,
        }
    }
}

/// The effective status: `deleted`, `locked` while a lock lasts, else the stored one.
pub fn effective_status(user: &ListedUser, security: Option<&SecurityRow>, at: i64) -> String {
    if user.deleted_at.is_some() {
        return "deleted".into();
    }
    if security
        .and_then(|s| s.locked_until)
        .is_some_and(|until| until > at)
    {
        return "locked".into();
    }
    user.row.status.clone()
}

fn parse_object(column: &str, text: Option<&str>) -> Value {
    text.and_then(|t| from_json::<Value>(column, t).ok())
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// The views of several users, with two extra reads for all of them (security state and
/// roles) and, when asked, one per user for permissions.
pub fn views(
    conn: &mut AnyConnection,
    users: &[ListedUser],
    include: Include,
) -> Result<Vec<Value>, StoreError> {
    let ids: Vec<String> = users.iter().map(|u| u.row.id.clone()).collect();
    let securities = security::find_many(conn, &ids)?;
    let role_pairs = rows::role_names_of(conn, &ids)?;
    let at = now();
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let row = &user.row;
        let sec = securities.iter().find(|s| s.user_id == row.id);
        let role_names: Vec<&str> = role_pairs
            .iter()
            .filter(|(id, _)| *id == row.id)
            .map(|(_, name)| name.as_str())
            .collect();
        let status = effective_status(user, sec, at);
        let mut view = json!({
            "id": row.id,
            "username": row.username,
            "email": row.email,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "display_name": row.display_name,
            "role": role_names.first(),
            "roles": role_names,
            "metadata": parse_object("users.metadata", row.metadata.as_deref()),
            "is_active": status == "active",
            "status": status,
            "email_verified": row.email_verified,
            "mfa_enabled": sec.is_some_and(|s| s.mfa_enabled),
            "kind": user.kind,
            "login_attempts": sec.map_or(0, |s| s.failed_login_count),
            "locked_until": sec.and_then(|s| s.locked_until).filter(|u| *u > at).map(Timestamp),
            "lock_reason": sec.and_then(|s| s.lock_reason.clone()).filter(|_| status == "locked"),
            "last_login": row.last_login_at.map(Timestamp),
            "created_at": Timestamp(row.created_at),
            "updated_at": Timestamp(row.updated_at),
            "deleted_at": user.deleted_at.map(Timestamp),
        });
        let object = view.as_object_mut().expect("an object literal");
        if include.roles {
            let mut detailed = Vec::new();
            for name in &role_names {
                let role = role_rows::find_by_name(conn, name)?;
                detailed.push(json!({
                    "id": role.id,
                    "name": role.name,
                    "description": role.description,
                    "permissions": role_rows::permissions(conn, &role.id)?,
                }));
            }
            object.insert("roles".into(), Value::Array(detailed));
        }
        if include.permissions {
            object.insert(
                "permissions".into(),
                json!(rows::permissions(conn, &row.id)?),
            );
            object.insert(
                "direct_permissions".into(),
                json!(rows::direct_permissions(conn, &row.id)?),
            );
        }
        if include.preferences {
            object.insert(
                "preferences".into(),
                parse_object("users.preferences", row.preferences.as_deref()),
            );
        }
        out.push(view);
    }
    Ok(out)
}

/// The view of one user (soft-deleted ones too).
pub fn view(conn: &mut AnyConnection, id: &str, include: Include) -> Result<Value, AdminError> {
    let user = find(conn, id)?;
    Ok(views(conn, &[user], include)?.remove(0))
}

/// The user with this id, or [`AdminError::NotFound`].
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<ListedUser, AdminError> {
    match rows::find_listed(conn, id) {
        Ok(user) => Ok(user),
        Err(StoreError::NotFound) => Err(AdminError::NotFound("user")),
        Err(other) => Err(other.into()),
    }
}

/// Keeps only the `fields` asked for.
pub fn project(view: Value, fields: Option<&[String]>) -> Value {
    match (view, fields) {
        (Value::Object(map), Some(fields)) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        (view, _) => view,
    }
}

/// What webhooks receive about a user: identity and names, nothing security-related.
pub(super) fn webhook_user(view: &Value) -> Value {
    let mut user = Map::new();
    for key in [
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "roles",
        "status",
        "created_at",
        "updated_at",
    ] {
        if let Some(value) = view.get(key) {
            user.insert(key.into(), value.clone());
        }
    }
    Value::Object(user)
}
