//! Roles: named sets of permissions (seed 000's `/admin/roles`), and the permission catalogue.
//! The built-in roles `admin` and `user` can be changed but not renamed or deleted; a role in
//! use is deleted only with `force`; nobody puts into a role, or takes out of it, a
//! permission they do not hold.

use serde::Deserialize;
use serde_json::{Value, json};

use super::users::parse_permissions;
use super::{AdminError, Caller, ensure_superuser_remains};
use crate::bootstrap::BUILTIN_ROLES;
use crate::domain::{Timestamp, now, nullable};
use crate::events::audit::{self, AuditEvent};
use crate::store::roles::{self as rows, RoleRow};
use crate::store::{AnyConnection, StoreError, lock_privileges};

/// A new role (`POST`), or changes to one (`PUT`/`PATCH`: absent members stay).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
}

/// A valid role name: 2 to 64 lower-case letters, digits, `_`, `-` or `.`.
fn valid_name(name: &str) -> Result<String, (String, String)> {
    let name = name.trim();
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err((
            "name".into(),
            "must be 2 to 64 lower-case letters, digits, _, - or .".into(),
        ))
    }
}

fn is_builtin(name: &str) -> bool {
    BUILTIN_ROLES.iter().any(|(n, _, _)| *n == name)
}

/// The view of a role.
fn role_view(role: &RoleRow, permissions: &[String], user_count: i64) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": permissions,
        "user_count": user_count,
        "built_in": is_builtin(&role.name),
        "created_at": Timestamp(role.created_at),
        "updated_at": Timestamp(role.updated_at),
    })
}

/// Every role with its permissions and how many users hold it, as `(created_at, id, view)`.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<(i64, String, Value)>, StoreError> {
    let counts = rows::user_counts(conn)?;
    let mut views = Vec::new();
    for role in rows::all(conn)? {
        let permissions = rows::permissions(conn, &role.id)?;
        let count = counts
            .iter()
            .find(|(id, _)| *id == role.id)
            .map_or(0, |(_, c)| *c);
        views.push((
            role.created_at,
            role.id.clone(),
            role_view(&role, &permissions, count),
        ));
    }
    Ok(views)
}

/// The role with this id or name.
pub fn find(conn: &mut AnyConnection, id_or_name: &str) -> Result<RoleRow, AdminError> {
    match rows::find(conn, id_or_name) {
        Ok(role) => Ok(role),
        Err(StoreError::NotFound) => match rows::find_by_name(conn, id_or_name) {
            Ok(role) => Ok(role),
            Err(StoreError::NotFound) => Err(AdminError::NotFound("role")),
            Err(other) => Err(other.into()),
        },
        Err(other) => Err(other.into()),
    }
}

/// The view of one role.
pub fn view(conn: &mut AnyConnection, id_or_name: &str) -> Result<Value, AdminError> {
    let role = find(conn, id_or_name)?;
    let permissions = rows::permissions(conn, &role.id)?;
    let count = rows::user_count(conn, &role.id)?;
    Ok(role_view(&role, &permissions, count))
}

fn description(value: Option<Option<String>>) -> Result<Option<String>, AdminError> {
    match value {
        None => Ok(None),
        Some(None) => Ok(Some(String::new())),
        Some(Some(text)) => crate::domain::text::line(&text, 500)
            .map(Option::unwrap_or_default)
            .map(Some)
            .map_err(|e| AdminError::invalid("description", e.0)),
    }
}

/// Creates a role.
pub fn create(
    conn: &mut AnyConnection,
    caller: &Caller,
    input: RoleInput,
) -> Result<Value, AdminError> {
    let mut errors = Vec::new();
    let name = match input.name.as_deref().map(valid_name) {
        Some(Ok(name)) => Some(name),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => {
            errors.push(("name".into(), "is required".into()));
            None
        }
    };
    let permissions = parse_permissions(
        "permissions",
        input.permissions.as_deref().unwrap_or_default(),
        &mut errors,
    );
    let description = description(input.description)?.unwrap_or_default();
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(AdminError::Invalid(errors));
    };
    caller.ensure_holds(permissions.iter().map(String::as_str))?;
    let at = now();
    let role = RoleRow {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        description,
        created_at: at,
        updated_at: at,
    };
    match rows::insert(conn, &role, &permissions) {
        Err(StoreError::Conflict { .. }) => {
            return Err(AdminError::Conflict(format!(
                "A role named `{}` already exists",
                role.name
            )));
        }
        other => other?,
    }
    let view = role_view(&role, &permissions, 0);
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("role_created", "roles", Some(&role.id)).values(None, Some(view.clone())),
    )?;
    Ok(view)
}

/// Changes a role: its name (not a built-in one's), description or permissions.
pub fn update(
    conn: &mut AnyConnection,
    caller: &Caller,
    id_or_name: &str,
    input: RoleInput,
) -> Result<Value, AdminError> {
    lock_privileges(conn)?;
    let role = find(conn, id_or_name)?;
    let before = view(conn, &role.id)?;
    let mut errors = Vec::new();
    let name = match input.name.as_deref().map(valid_name) {
        Some(Ok(name)) if name != role.name && is_builtin(&role.name) => {
            return Err(AdminError::Conflict(format!(
                "The built-in role `{}` cannot be renamed",
                role.name
            )));
        }
        Some(Ok(name)) => name,
        Some(Err(e)) => {
            errors.push(e);
            role.name.clone()
        }
        None => role.name.clone(),
    };
    let permissions = input
        .permissions
        .map(|names| parse_permissions("permissions", &names, &mut errors));
    if !errors.is_empty() {
        return Err(AdminError::Invalid(errors));
    }
    let description = description(input.description)?.unwrap_or(role.description.clone());
    let at = now();
    match rows::update(conn, &role.id, &name, &description, at) {
        Err(StoreError::Conflict { .. }) => {
            return Err(AdminError::Conflict(format!(
                "A role named `{name}` already exists"
            )));
        }
        other => other?,
    }
    if let Some(permissions) = &permissions {
        let old = rows::permissions(conn, &role.id)?;
        // Both what is added and what is taken away: a role's holders may hold more than
        // the caller, and removing from them is a demotion.
        caller.ensure_holds(old.iter().chain(permissions).map(String::as_str))?;
        rows::set_permissions(conn, &role.id, permissions)?;
    }
    ensure_superuser_remains(conn)?;
    let after = view(conn, &role.id)?;
    if after != before {
        audit::record(
            conn,
            &caller.actor,
            AuditEvent::new("role_updated", "roles", Some(&role.id))
                .values(Some(before), Some(after.clone())),
        )?;
    }
    Ok(after)
}

/// Deletes a role. One held by users needs `force` (it is then taken from them); the built-in
/// roles cannot be deleted.
pub fn delete(
    conn: &mut AnyConnection,
    caller: &Caller,
    id_or_name: &str,
    force: bool,
) -> Result<Value, AdminError> {
    lock_privileges(conn)?;
    let role = find(conn, id_or_name)?;
    if is_builtin(&role.name) {
        return Err(AdminError::Conflict(format!(
            "The built-in role `{}` cannot be deleted",
            role.name
        )));
    }
    let before = view(conn, &role.id)?;
    let users = before["user_count"].as_i64().unwrap_or(0);
    if users > 0 && !force {
        return Err(AdminError::Conflict(format!(
            "The role is held by {users} user(s); delete it with force=true to take it from them"
        )));
    }
    let permissions = rows::permissions(conn, &role.id)?;
    caller.ensure_holds(permissions.iter().map(String::as_str))?;
    rows::delete(conn, &role.id)?;
    ensure_superuser_remains(conn)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("role_deleted", "roles", Some(&role.id))
            .values(Some(before), None)
            .info(json!({"force": force, "users_affected": users})),
    )?;
    Ok(json!({"message": "Role deleted successfully", "users_affected": users}))
}

/// The permission catalogue (seed 000): the built-in permissions with descriptions, and any
/// other permission some role or user holds, with their categories.
pub fn catalogue(conn: &mut AnyConnection) -> Result<Value, StoreError> {
    use super::permissions::{CATALOGUE, category};
    let mut entries: Vec<Value> = CATALOGUE
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "description": description, "category": category(name), "built_in": true})
        })
        .collect();
    let mut categories: Vec<String> = super::permissions::categories()
        .into_iter()
        .map(str::to_owned)
        .collect();
    for name in rows::permissions_in_use(conn)? {
        if name == "*" || CATALOGUE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let c = category(&name).to_owned();
        if !categories.contains(&c) {
            categories.push(c.clone());
        }
        entries.push(json!({"name": name, "description": null, "category": c, "built_in": false}));
    }
    Ok(json!({"permissions": entries, "categories": categories}))
}
