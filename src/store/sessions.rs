//! The `sessions` table: browser sign-ins and API logins.

use diesel::prelude::*;

use super::schema::sessions;
use super::{AnyConnection, StoreError};

/// A session as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub kind: String,
    pub user_id: String,
    pub secret_hash: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_activity: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// Inserts a session.
pub fn insert(conn: &mut AnyConnection, row: &SessionRow) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The live (unrevoked, unexpired) session whose cookie secret hashes to `secret_hash`.
pub fn find_live_by_secret(
    conn: &mut AnyConnection,
    secret_hash: &str,
    now: i64,
) -> Result<SessionRow, StoreError> {
    Ok(sessions::table
        .filter(sessions::secret_hash.eq(secret_hash))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .first(conn)?)
}

/// The session with this id, whatever its state.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<SessionRow, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)?)
}

/// Records activity on a session.
pub fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_activity.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Marks a session revoked; returns whether it was live.
pub fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    let changed = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}
