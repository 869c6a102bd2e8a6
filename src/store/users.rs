//! The `users`, `user_roles` and `user_permissions` tables.

use diesel::prelude::*;

use super::schema::{role_permissions, roles, user_permissions, user_roles, users};
use super::{AnyConnection, StoreError};

/// A user as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub website: Option<String>,
    pub profile_url: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    /// The OpenID `address` claim, as JSON.
    pub address: Option<String>,
    /// Seed 002's `name`: how the person wants to be called.
    pub display_name: Option<String>,
    pub bio: Option<String>,
    /// Seed 000's `preferences` object, as JSON.
    pub preferences: Option<String>,
    /// Seed 003's free-form `metadata` object, as JSON.
    pub metadata: Option<String>,
    pub email_verified_at: Option<i64>,
}

/// Inserts a user; [`StoreError::Conflict`] names `username` or `email` when taken.
pub fn insert(conn: &mut AnyConnection, user: &UserRow) -> Result<(), StoreError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

/// The user whose username or email is `login` (both are stored lower-cased).
pub fn find_by_login(conn: &mut AnyConnection, login: &str) -> Result<UserRow, StoreError> {
    let login = login.trim().to_lowercase();
    // An address names its own account before any username: one written before usernames
    // were kept from the shape of another account's address must not capture its logins.
    let mut found: Vec<UserRow> = users::table
        .filter(users::username.eq(&login).or(users::email.eq(&login)))
        .select(UserRow::as_select())
        .load(conn)?;
    let index = found.iter().position(|u| u.email == login).unwrap_or(0);
    if found.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(found.swap_remove(index))
}

/// Records a successful sign-in.
pub fn touch_login(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Gives a user a role.
pub fn add_role(conn: &mut AnyConnection, user_id: &str, role_id: &str) -> Result<(), StoreError> {
    diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id),
            user_roles::role_id.eq(role_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user with this id.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<UserRow, StoreError> {
    Ok(on_backend!(conn, |c| users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(c))?)
}

/// The names of a user's roles, sorted.
pub fn role_names(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(on_backend!(conn, |c| user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .order(roles::name)
        .select(roles::name)
        .load(c))?)
}

/// A user's effective permissions before any scope cut: those of their roles and their
/// direct ones, sorted and distinct.
pub fn permissions(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut from_roles: Vec<String> = on_backend!(conn, |c| user_roles::table
        .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
        .filter(user_roles::user_id.eq(user_id))
        .select(role_permissions::permission)
        .load(c))?;
    let direct: Vec<String> = on_backend!(conn, |c| user_permissions::table
        .filter(user_permissions::user_id.eq(user_id))
        .select(user_permissions::permission)
        .load(c))?;
    from_roles.extend(direct);
    from_roles.sort();
    from_roles.dedup();
    Ok(from_roles)
}

/// Changes to a profile: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub preferences: Option<Option<String>>,
    pub metadata: Option<Option<String>>,
    pub status: Option<String>,
    pub updated_at: Option<i64>,
}

/// Applies profile changes.
pub fn update_profile(
    conn: &mut AnyConnection,
    id: &str,
    changes: &ProfileChanges,
) -> Result<(), StoreError> {
    match diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Replaces a password hash.
pub fn set_password_hash(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    at: i64,
) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

/// Marks the address verified, optionally replacing it (a confirmed change of address). A
/// username that was the old address follows it, so that it never names someone else's.
pub fn verify_email(
    conn: &mut AnyConnection,
    id: &str,
    new_email: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    match new_email {
        Some(email) => {
            diesel::update(
                users::table
                    .find(id)
                    .filter(users::username.eq(users::email)),
            )
            .set(users::username.eq(email))
            .execute(conn)?;
            diesel::update(users::table.find(id))
                .set((
                    users::email.eq(email),
                    users::email_verified.eq(true),
                    users::email_verified_at.eq(at),
                    users::updated_at.eq(at),
                ))
                .execute(conn)?
        }
        None => diesel::update(users::table.find(id))
            .set((
                users::email_verified.eq(true),
                users::email_verified_at.eq(at),
                users::updated_at.eq(at),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Whether an address belongs to any account.
pub fn email_taken(conn: &mut AnyConnection, email: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table.filter(users::email.eq(email)),
    ))
    .get_result(conn)?)
}

/// The role names of several users at once: `(user_id, role_name)` pairs, by user then name.
pub fn role_names_of(
    conn: &mut AnyConnection,
    user_ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq_any(user_ids))
        .order((user_roles::user_id, roles::name))
        .select((user_roles::user_id, roles::name))
        .load(conn)?)
}

/// A user's direct permissions (not those of their roles), sorted.
pub fn direct_permissions(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(user_permissions::table
        .filter(user_permissions::user_id.eq(user_id))
        .order(user_permissions::permission)
        .select(user_permissions::permission)
        .load(conn)?)
}

/// Replaces a user's direct permissions.
pub fn set_direct_permissions(
    conn: &mut AnyConnection,
    user_id: &str,
    permissions: &[String],
) -> Result<(), StoreError> {
    diesel::delete(user_permissions::table.filter(user_permissions::user_id.eq(user_id)))
        .execute(conn)?;
    for permission in permissions {
        diesel::insert_into(user_permissions::table)
            .values((
                user_permissions::user_id.eq(user_id),
                user_permissions::permission.eq(permission),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Replaces a user's roles with the roles of these ids.
pub fn set_roles(
    conn: &mut AnyConnection,
    user_id: &str,
    role_ids: &[String],
) -> Result<(), StoreError> {
    diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user_id))).execute(conn)?;
    for role_id in role_ids {
        add_role(conn, user_id, role_id)?;
    }
    Ok(())
}

/// How many users who can act now (active, not deleted, not locked) hold `permission`
/// through a role or directly.
pub fn count_active_holders(
    conn: &mut AnyConnection,
    permission: &str,
    now: i64,
) -> Result<i64, StoreError> {
    use super::schema::user_security;
    let through_roles = user_roles::table
        .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
        .filter(role_permissions::permission.eq(permission.to_owned()))
        .select(user_roles::user_id);
    let direct = user_permissions::table
        .filter(user_permissions::permission.eq(permission.to_owned()))
        .select(user_permissions::user_id);
    let timed_locks = user_security::table
        .filter(user_security::locked_until.gt(now))
        .select(user_security::user_id);
    Ok(users::table
        .filter(users::status.eq("active"))
        .filter(users::deleted_at.is_null())
        .filter(users::id.eq_any(through_roles).or(users::id.eq_any(direct)))
        .filter(diesel::dsl::not(users::id.eq_any(timed_locks)))
        .count()
        .get_result(conn)?)
}

/// What an administrator may change of a user: `None` leaves a field alone, `Some(None)`
/// clears a nullable one.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub email_verified_at: Option<Option<i64>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub status: Option<String>,
    pub metadata: Option<Option<String>>,
    pub preferences: Option<Option<String>>,
    pub deleted_at: Option<Option<i64>>,
    pub updated_at: Option<i64>,
}

/// Applies an administrator's changes; conflicts name `username` or `email`.
pub fn update(conn: &mut AnyConnection, id: &str, changes: &UserChanges) -> Result<(), StoreError> {
    match diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Deletes a user and, by cascade, everything that belongs to them (sessions, grants,
/// consents, tokens, MFA state, roles, API keys). Their audit entries are not touched here:
/// see [`super::audit::erase_personal_data`].
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    match diesel::delete(users::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// The kind of a user: `person`, or `service` for the service accounts behind API keys.
pub fn kind(conn: &mut AnyConnection, id: &str) -> Result<String, StoreError> {
    Ok(users::table.find(id).select(users::kind).get_result(conn)?)
}

/// Marks a new user as a service account.
pub fn set_kind(conn: &mut AnyConnection, id: &str, kind: &str) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::kind.eq(kind))
        .execute(conn)?;
    Ok(())
}

/// A user with the columns only administration reads: the kind of account and the time of a
/// soft deletion.
#[derive(Debug, Clone)]
pub struct ListedUser {
    pub row: UserRow,
    /// `person` or `service`.
    pub kind: String,
    /// When the user was soft-deleted.
    pub deleted_at: Option<i64>,
}

/// The columns of a [`ListedUser`].
pub type ListedColumns = (
    diesel::helper_types::AsSelect<UserRow, super::MultiBackend>,
    users::kind,
    users::deleted_at,
);

/// The selection of a [`ListedUser`].
pub fn listed_columns() -> ListedColumns {
    (UserRow::as_select(), users::kind, users::deleted_at)
}

impl From<(UserRow, String, Option<i64>)> for ListedUser {
    fn from((row, kind, deleted_at): (UserRow, String, Option<i64>)) -> Self {
        Self {
            row,
            kind,
            deleted_at,
        }
    }
}

/// The user with this id, soft-deleted or not, with the administrative columns.
pub fn find_listed(conn: &mut AnyConnection, id: &str) -> Result<ListedUser, StoreError> {
    let found: (UserRow, String, Option<i64>) = users::table
        .find(id)
        .select(listed_columns())
        .get_result(conn)?;
    Ok(found.into())
}
