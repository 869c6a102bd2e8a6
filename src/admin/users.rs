//! Managing users (seeds 000, 001 and 003): the view administrators see, creation, changes,
//! soft and hard deletion, locks, preferences and direct permissions. Every function runs
//! inside the caller's transaction and writes its audit entry and webhook events there, so
//! they exist exactly when the change does.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AdminError, Caller, ensure_superuser_remains};
use crate::accounts::users::{CreateUserError, NewUser, create_user};
use crate::domain::{Email, Permission, Timestamp, Username, now, nullable};
use crate::events::audit::{self, AuditEvent};
use crate::events::webhooks;
use crate::sessions::revoke::{Revocation, end_other_sessions};
use crate::startup::Handles;
use crate::store::roles::{self as role_rows, RoleRow};
use crate::store::security::{self, SecurityRow};
use crate::store::users::{self as rows, ListedUser, UserChanges};
use crate::store::{AnyConnection, StoreError, from_json, lock_privileges, to_json};

/// The statuses an administrator may set (`locked` locks without an end).
pub const STATUSES: &[&str] = &["active", "inactive", "suspended", "locked"];

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

/// The longest name, display name or lock reason.
const MAX_NAME: usize = 100;
/// The largest `metadata` or `preferences` object, serialised.
const MAX_OBJECT_BYTES: usize = 16 * 1024;

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
        Some(Some(text)) => {
            let text = text.trim().to_owned();
            if text.chars().count() > MAX_NAME {
                errors.push((
                    field.into(),
                    format!("must be at most {MAX_NAME} characters"),
                ));
                None
            } else {
                Some((!text.is_empty()).then_some(text))
            }
        }
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
fn webhook_user(view: &Value) -> Value {
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
    if let Some(reason) = reason {
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
    lock_privileges(conn)?;
    let before = view(conn, id, Include::default())?;
    if before["status"] == "deleted" {
        return Err(AdminError::NotFound("user"));
    }
    caller.ensure_outranks(conn, id)?;
    let at = now();
    let reason = reason.unwrap_or("locked by an administrator").to_owned();
    let mut security = security::find(conn, id)?;
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
    let mut security = security::find(conn, id)?;
    security.locked_until = None;
    security.lock_reason = None;
    security.failed_login_count = 0;
    security.failed_login_window_start = None;
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
