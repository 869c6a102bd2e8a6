//! The `api_keys` table: long-lived credentials of service accounts, stored as keyed hashes.

use diesel::prelude::*;

use super::schema::{api_keys, users};
use super::{AnyConnection, StoreError};

/// An API key as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// The keyed hash of the key: the key itself is never stored.
    pub key_hash: String,
    /// The key's first characters, so people can tell their keys apart.
    pub key_prefix: String,
    /// The service account the key acts as.
    pub user_id: String,
    /// The grant its access tokens belong to (revoking it revokes them).
    pub grant_id: String,
    /// The permissions the key may use, space-separated.
    pub scopes: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Inserts a key.
pub fn insert(conn: &mut AnyConnection, row: &ApiKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The key with this id.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<ApiKeyRow, StoreError> {
    Ok(api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .get_result(conn)?)
}

/// The key whose hash is `key_hash`.
pub fn find_by_hash(conn: &mut AnyConnection, key_hash: &str) -> Result<ApiKeyRow, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(ApiKeyRow::as_select())
        .get_result(conn)?)
}

/// Every key (of one user when `user_id` is given) with its user's username, oldest first.
pub fn list(
    conn: &mut AnyConnection,
    user_id: Option<&str>,
) -> Result<Vec<(ApiKeyRow, String)>, StoreError> {
    let mut query = api_keys::table
        .inner_join(users::table)
        .select((ApiKeyRow::as_select(), users::username))
        .order((api_keys::created_at, api_keys::id))
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(api_keys::user_id.eq(user_id.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Marks a key revoked; returns whether it was live.
pub fn revoke(conn: &mut AnyConnection, id: &str, at: i64) -> Result<bool, StoreError> {
    Ok(diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(at))
    .execute(conn)?
        == 1)
}

/// Records a use of a key.
pub fn touch(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), StoreError> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(at))
        .execute(conn)?;
    Ok(())
}
