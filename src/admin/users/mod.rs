//! Managing users (seeds 000, 001 and 003): the view administrators see, creation, changes,
//! soft and hard deletion, locks, preferences and direct permissions. Every function runs
//! inside the caller's transaction and writes its audit entry and webhook events there, so
//! they exist exactly when the change does.

mod input;
mod view;

pub use input::{STATUSES, UserInput, UserSpec, parse_permissions};
pub use view::{Include, VIEW_FIELDS, effective_status, find, project, view, views};

use super::{AdminError, Caller, ensure_superuser_remains};
use crate::accounts::users::{CreateUserError, NewUser, create_user};
use crate::domain::{Timestamp, now};
use crate::events::audit::{self, AuditEvent};
use crate::events::webhooks;
use crate::sessions::revoke::{Revocation, end_other_sessions};
use crate::startup::Handles;
use crate::store::roles::{self as role_rows, RoleRow};
use crate::store::security;
use crate::store::users::{self as rows, UserChanges};
use crate::store::{AnyConnection, StoreError, lock_privileges};
use serde_json::{Map, Value, json};
use view::webhook_user;

/// Resolves role names to roles, and checks the caller holds every permission they carry.
fn grantable_roles(
    conn: &mut AnyConnection,
    caller: &Caller,
    names: &[String],
) -> Result<Vec<RoleRow>, AdminError> {
    let mut roles = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for (index, name) in names.iter().enumerate() {
        match role_rows::find_by_name(conn, name) {
            Ok(role) => {
                let permissions = role_rows::permissions(conn, &role.id)?;
                caller.ensure_holds(permissions.iter().map(String::as_str))?;
                roles.push(role);
            }
            Err(StoreError::NotFound) => unknown.push((
                format!("roles[{index}]"),
                format!("there is no role named `{name}`"),
            )),
            Err(other) => return Err(other.into()),
        }
    }
    if unknown.is_empty() {
        Ok(roles)
    } else {
        Err(AdminError::Invalid(unknown))
    }
}

fn conflict_of(error: StoreError) -> AdminError {
    if error.is_conflict_on("username") {
        AdminError::Conflict("The username is already taken".into())
    } else if error.is_conflict_on("email") {
        AdminError::Conflict("A user with this email address already exists".into())
    } else {
        error.into()
    }
}

/// Creates a user (the password, if any, already hashed). The welcome mail, when asked for,
/// carries a link to set a password if none was given.
pub fn create(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    spec: UserSpec,
    password_hash: Option<String>,
    send_welcome_email: bool,
) -> Result<Value, AdminError> {
    lock_privileges(conn)?;
    let role_names = spec.roles.clone().unwrap_or_default();
    grantable_roles(conn, caller, &role_names)?;
    if let Some(permissions) = &spec.permissions {
        caller.ensure_holds(permissions.iter().map(String::as_str))?;
    }
    let has_password = password_hash.is_some();
    let (Some(username), Some(email)) = (spec.username, spec.email) else {
        return Err(AdminError::invalid("email", "is required"));
    };
    let created = create_user(
        conn,
        NewUser {
            username,
            email,
            password_hash,
            roles: role_names,
            email_verified: spec.email_verified.unwrap_or(false),
        },
    )
    .map_err(|e| match e {
        CreateUserError::UsernameTaken => {
            AdminError::Conflict("The username is already taken".into())
        }
        CreateUserError::EmailTaken => {
            AdminError::Conflict("A user with this email address already exists".into())
        }
        CreateUserError::UnknownRole(name) => {
            AdminError::invalid("roles", format!("there is no role named `{name}`"))
        }
        error @ CreateUserError::UsernameIsAnotherAddress => {
            AdminError::invalid("username", error.to_string())
        }
        CreateUserError::Store(e) => e.into(),
    })?;
    let changes = UserChanges {
        first_name: spec.first_name,
        last_name: spec.last_name,
        display_name: spec.display_name,
        metadata: spec.metadata,
        preferences: spec.preferences,
        status: spec.status.clone(),
        updated_at: Some(created.created_at.0),
        ..Default::default()
    };
    rows::update(conn, &created.id, &changes)?;
    if let Some(permissions) = &spec.permissions {
        rows::set_direct_permissions(conn, &created.id, permissions)?;
    }
    let view = view(conn, &created.id, Include::all())?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("user_created", "users", Some(&created.id))
            .values(None, Some(view.clone()))
            .info(json!({"send_welcome_email": send_welcome_email, "password_set": has_password})),
    )?;
    webhooks::emit(
        conn,
        &handles.crypto,
        "user.created",
        json!({"user": webhook_user(&view)}),
    )?;
    if send_welcome_email {
        let user = rows::find(conn, &created.id)?;
        crate::accounts::recovery::queue_welcome(conn, handles, &user, !has_password)?;
    }
    Ok(view)
}

/// The members of a view an update may change, for the audit entry's old and new values.
const AUDITED: &[&str] = &[
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "roles",
    "status",
    "email_verified",
    "metadata",
    "preferences",
    "direct_permissions",
];

fn audited(view: &Value) -> Map<String, Value> {
    AUDITED
        .iter()
        .filter_map(|k| view.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// Ends every session and grant of a user (a lock, a deactivation, a deletion): refresh
/// tokens stop at once, access tokens are inactive at their next check, and each client that
/// registered a back-channel logout URI is told.
fn end_all_sessions(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    user_id: &str,
    reason: &str,
) -> Result<(), AdminError> {
    end_other_sessions(
        conn,
        &handles.crypto,
        user_id,
        None,
        None,
        &Revocation {
            actor: &caller.actor,
            reason,
            at: now(),
        },
    )?;
    Ok(())
}

/// Keeps an address-shaped username the account's own: a username that was the old address
/// follows a change of address, and a username may not become another address.
fn username_fits_address(before: &Value, changes: &mut UserChanges) -> Result<(), AdminError> {
    let old_username = before["username"].as_str().unwrap_or_default();
    let old_email = before["email"].as_str().unwrap_or_default();
    let email = changes.email.as_deref().unwrap_or(old_email);
    if changes.username.is_none() && changes.email.is_some() && old_username == old_email {
        changes.username = Some(email.to_owned());
        return Ok(());
    }
    let username = changes.username.as_deref().unwrap_or(old_username);
    if username.contains('@') && !username.eq_ignore_ascii_case(email) {
        return Err(AdminError::invalid(
            "username",
            CreateUserError::UsernameIsAnotherAddress.to_string(),
        ));
    }
    Ok(())
}

/// The longest reason an administrator may give for a change of a user.
const MAX_REASON_CHARS: usize = 500;

/// An administrator's reason for a change of a user (a lock, a deactivation, a role change):
/// one line, as it is kept in the audit log, on a locked account and in webhook payloads.
/// Every path that takes a reason (one user, a bulk action) checks it here.
pub fn checked_reason(raw: Option<&str>) -> Result<Option<String>, AdminError> {
    match raw {
        None => Ok(None),
        Some(raw) => crate::domain::text::line(raw, MAX_REASON_CHARS)
            .map_err(|e| AdminError::invalid("reason", e.0)),
    }
}

/// Changes a user. A change of roles is reported as `user.role_changed`, any other change as
/// `user.updated`; a status other than active ends the user's sessions; a soft-deleted user
/// comes back with `status: active`.
pub fn update(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    id: &str,
    spec: UserSpec,
    reason: Option<&str>,
) -> Result<Value, AdminError> {
    let reason = checked_reason(reason)?;
    lock_privileges(conn)?;
    let before = view(conn, id, Include::all())?;
    caller.ensure_outranks(conn, id)?;
    let at = now();
    let mut changes = UserChanges {
        username: spec.username.map(|u| u.as_str().to_owned()),
        first_name: spec.first_name,
        last_name: spec.last_name,
        display_name: spec.display_name,
        metadata: spec.metadata,
        preferences: spec.preferences,
        updated_at: Some(at),
        ..Default::default()
    };
    if let Some(email) = spec
        .email
        .filter(|e| Some(e.as_str()) != before["email"].as_str())
    {
        changes.email = Some(email.as_str().to_owned());
        // A new address is unproven until its owner confirms it (or the admin says it is).
        changes.email_verified = Some(spec.email_verified.unwrap_or(false));
        changes.email_verified_at = Some(spec.email_verified.filter(|v| *v).map(|_| at));
    } else if let Some(verified) = spec.email_verified {
        changes.email_verified = Some(verified);
        changes.email_verified_at = Some(verified.then_some(at));
    }
    username_fits_address(&before, &mut changes)?;
    let deactivating = match spec.status.as_deref() {
        Some("locked") => {
            changes.status = Some("locked".into());
            true
        }
        Some(status) => {
            changes.status = Some(status.to_owned());
            if before["status"] == "deleted" && status == "active" {
                changes.deleted_at = Some(None);
            }
            status != "active"
        }
        None => false,
    };
    rows::update(conn, id, &changes).map_err(conflict_of)?;
    let roles_changed = match &spec.roles {
        Some(names) => {
            let roles = grantable_roles(conn, caller, names)?;
            let ids: Vec<String> = roles.into_iter().map(|r| r.id).collect();
            rows::set_roles(conn, id, &ids)?;
            before["roles"] != json!(names)
        }
        None => false,
    };
    if let Some(permissions) = &spec.permissions {
        caller.ensure_holds(permissions.iter().map(String::as_str))?;
        rows::set_direct_permissions(conn, id, permissions)?;
    }
    if deactivating {
        end_all_sessions(
            conn,
            handles,
            caller,
            id,
            "account deactivated by an administrator",
        )?;
    }
    ensure_superuser_remains(conn)?;
    let after = view(conn, id, Include::all())?;
    let (old, new) = (audited(&before), audited(&after));
    let changed: Vec<&String> = new.keys().filter(|k| old.get(*k) != new.get(*k)).collect();
    if changed.is_empty() {
        return Ok(after);
    }
    let pick = |m: &Map<String, Value>| -> Value {
        Value::Object(
            changed
                .iter()
                .filter_map(|k| m.get(*k).map(|v| ((*k).clone(), v.clone())))
                .collect(),
        )
    };
    let mut event = AuditEvent::new("user_updated", "users", Some(id))
        .values(Some(pick(&old)), Some(pick(&new)));
    if let Some(reason) = &reason {
        event = event.info(json!({"reason": reason}));
    }
    audit::record(conn, &caller.actor, event)?;
    if roles_changed {
        webhooks::emit(
            conn,
            &handles.crypto,
            "user.role_changed",
            json!({"user": webhook_user(&after), "old_roles": before["roles"], "new_roles": after["roles"]}),
        )?;
    }
    if changed.iter().any(|k| *k != "roles") {
        let fields: Vec<&String> = changed.iter().copied().filter(|k| *k != "roles").collect();
        webhooks::emit(
            conn,
            &handles.crypto,
            "user.updated",
            json!({"user": webhook_user(&after), "changes": fields}),
        )?;
    }
    Ok(after)
}

/// What a deletion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deleted {
    pub message: &'static str,
    pub deleted_at: Timestamp,
    pub soft_delete: bool,
}

/// Deletes a user. Soft: the account is kept as a tombstone (status `deleted`, unable to
/// sign in, restorable); hard: the user and everything of theirs is removed, and the audit
/// log forgets their address. Both end every session first (with back-channel logout).
pub fn delete(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    id: &str,
    soft: bool,
) -> Result<Deleted, AdminError> {
    lock_privileges(conn)?;
    let before = view(conn, id, Include::all())?;
    if soft && before["status"] == "deleted" {
        return Err(AdminError::Conflict("The user is already deleted".into()));
    }
    caller.ensure_outranks(conn, id)?;
    end_all_sessions(conn, handles, caller, id, "account deleted")?;
    let at = now();
    if soft {
        rows::update(
            conn,
            id,
            &UserChanges {
                status: Some("deleted".into()),
                deleted_at: Some(Some(at)),
                updated_at: Some(at),
                ..Default::default()
            },
        )?;
    } else {
        rows::delete(conn, id)?;
        crate::store::audit::erase_personal_data(conn, id)?;
    }
    ensure_superuser_remains(conn)?;
    // A hard deletion erases: its own entry keeps only the id.
    let old = if soft {
        Value::Object(audited(&before))
    } else {
        json!({"id": id})
    };
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("user_deleted", "users", Some(id))
            .values(Some(old), None)
            .info(json!({"soft_delete": soft, "personal_data_erased": !soft})),
    )?;
    webhooks::emit(
        conn,
        &handles.crypto,
        "user.deleted",
        json!({"user": {"id": id, "username": before["username"], "email": before["email"]}, "soft_delete": soft}),
    )?;
    Ok(Deleted {
        message: "User deleted successfully",
        deleted_at: Timestamp(at),
        soft_delete: soft,
    })
}

/// Locks a user for `duration_minutes` (without an end when absent) and ends their sessions.
/// Returns when the lock ends.
pub fn lock(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    id: &str,
    reason: Option<&str>,
    duration_minutes: Option<i64>,
) -> Result<Option<i64>, AdminError> {
    let reason = checked_reason(reason)?;
    lock_privileges(conn)?;
    let before = view(conn, id, Include::default())?;
    if before["status"] == "deleted" {
        return Err(AdminError::NotFound("user"));
    }
    caller.ensure_outranks(conn, id)?;
    let at = now();
    let reason = reason.unwrap_or_else(|| "locked by an administrator".to_owned());
    let mut security = security::find_for_update(conn, id)?;
    security.lock_reason = Some(reason.clone());
    let until = match duration_minutes {
        Some(minutes) => {
            security.locked_until = Some(at + minutes * 60);
            security.locked_until
        }
        None => {
            security.locked_until = None;
            rows::update(
                conn,
                id,
                &UserChanges {
                    status: Some("locked".into()),
                    updated_at: Some(at),
                    ..Default::default()
                },
            )?;
            None
        }
    };
    security::save(conn, &security)?;
    end_all_sessions(
        conn,
        handles,
        caller,
        id,
        "account locked by an administrator",
    )?;
    ensure_superuser_remains(conn)?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("user_locked", "users", Some(id))
            .values(
                Some(json!({"status": before["status"]})),
                Some(json!({"status": "locked", "locked_until": until.map(Timestamp)})),
            )
            .info(json!({"reason": reason})),
    )?;
    webhooks::emit(
        conn,
        &handles.crypto,
        "user.locked",
        json!({"user": webhook_user(&before), "reason": reason, "locked_until": until.map(Timestamp)}),
    )?;
    Ok(until)
}

/// Lifts every lock of a user (an administrator's, and one from failed attempts) and clears
/// the failure count.
pub fn unlock(conn: &mut AnyConnection, caller: &Caller, id: &str) -> Result<(), AdminError> {
    let before = view(conn, id, Include::default())?;
    if before["status"] == "deleted" {
        return Err(AdminError::NotFound("user"));
    }
    caller.ensure_outranks(conn, id)?;
    let at = now();
    crate::accounts::login::forgive_all_failures(conn, id)?;
    let mut security = security::find_for_update(conn, id)?;
    security.locked_until = None;
    security.lock_reason = None;
    security::save(conn, &security)?;
    let stored_status = rows::find(conn, id)?.status;
    if stored_status == "locked" {
        rows::update(
            conn,
            id,
            &UserChanges {
                status: Some("active".into()),
                updated_at: Some(at),
                ..Default::default()
            },
        )?;
    }
    let after = view(conn, id, Include::default())?;
    audit::record(
        conn,
        &caller.actor,
        AuditEvent::new("user_unlocked", "users", Some(id)).values(
            Some(json!({"status": before["status"]})),
            Some(json!({"status": after["status"]})),
        ),
    )?;
    Ok(())
}

/// Replaces a user's preferences object.
pub fn set_preferences(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    id: &str,
    preferences: Value,
) -> Result<Value, AdminError> {
    let spec = UserInput {
        preferences: Some(Some(preferences)),
        ..Default::default()
    }
    .validate(false)?
    .0;
    let after = update(conn, handles, caller, id, spec, None)?;
    Ok(after["preferences"].clone())
}

/// Replaces a user's direct permissions (seed 001); the caller must hold each one.
pub fn set_permissions(
    conn: &mut AnyConnection,
    handles: &Handles,
    caller: &Caller,
    id: &str,
    names: &[String],
) -> Result<Vec<String>, AdminError> {
    let mut errors = Vec::new();
    let permissions = parse_permissions("permissions", names, &mut errors);
    if !errors.is_empty() {
        return Err(AdminError::Invalid(errors));
    }
    let spec = UserSpec {
        permissions: Some(permissions),
        ..Default::default()
    };
    let after = update(conn, handles, caller, id, spec, None)?;
    Ok(serde_json::from_value(after["direct_permissions"].clone()).unwrap_or_default())
}
