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
    Ok(users::table
        .filter(users::username.eq(&login).or(users::email.eq(&login)))
        .select(UserRow::as_select())
        .first(conn)?)
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
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)?)
}

/// The names of a user's roles, sorted.
pub fn role_names(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .order(roles::name)
        .select(roles::name)
        .load(conn)?)
}

/// A user's effective permissions before any scope cut: those of their roles and their
/// direct ones, sorted and distinct.
pub fn permissions(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut from_roles: Vec<String> = user_roles::table
        .inner_join(role_permissions::table.on(role_permissions::role_id.eq(user_roles::role_id)))
        .filter(user_roles::user_id.eq(user_id))
        .select(role_permissions::permission)
        .load(conn)?;
    let direct: Vec<String> = user_permissions::table
        .filter(user_permissions::user_id.eq(user_id))
        .select(user_permissions::permission)
        .load(conn)?;
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

/// Marks the address verified, optionally replacing it (a confirmed change of address).
pub fn verify_email(
    conn: &mut AnyConnection,
    id: &str,
    new_email: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    match new_email {
        Some(email) => diesel::update(users::table.find(id))
            .set((
                users::email.eq(email),
                users::email_verified.eq(true),
                users::email_verified_at.eq(at),
                users::updated_at.eq(at),
            ))
            .execute(conn)?,
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
