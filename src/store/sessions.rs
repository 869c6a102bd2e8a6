//! The `sessions` table: browser sign-ins and API logins.

use diesel::prelude::*;

use super::schema::sessions;
use diesel::sql_types::{BigInt, Text};

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
        .get_result(conn)?)
}

/// The session with this id, whatever its state.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<SessionRow, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .get_result(conn)?)
}

/// Records activity on a session.
pub fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), StoreError> {
    on_backend!(conn, |c| Touch { id, now }.execute(c))?;
    Ok(())
}

/// The `UPDATE` of [`touch`], kept prepared (see `kept_prepared!`): every refresh-token
/// rotation of a browser's grant runs it.
struct Touch<'a> {
    id: &'a str,
    now: i64,
}

kept_prepared!(Touch, |touch, out| {
    out.push_sql("UPDATE sessions SET last_activity = ");
    out.push_bind_param::<BigInt, _>(&touch.now)?;
    out.push_sql(" WHERE id = ");
    out.push_bind_param::<Text, _>(touch.id)?;
    Ok(())
});

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

/// The live sessions of a user, most recent first.
pub fn live_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order(sessions::last_activity.desc())
        .select(SessionRow::as_select())
        .load(conn)?)
}

/// How many live sessions a user has.
pub fn count_live_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

/// Records a completed second factor on a live session: a new `auth_time`, `amr` and `acr`.
pub fn step_up(
    conn: &mut AnyConnection,
    id: &str,
    amr: &str,
    acr: &str,
    now: i64,
) -> Result<(), StoreError> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::auth_time.eq(now),
        sessions::amr.eq(amr),
        sessions::acr.eq(acr),
        sessions::last_activity.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Whether `user_id` started a session from `ip_address` since `since` (an address the account
/// is known to sign in from).
pub fn signed_in_from(
    conn: &mut AnyConnection,
    user_id: &str,
    ip_address: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ip_address.eq(ip_address))
            .filter(sessions::created_at.ge(since)),
    ))
    .get_result(conn)?)
}

/// Records that `replacement`, a new sign-in in the same browser, took over from `id`.
pub fn mark_replaced(
    conn: &mut AnyConnection,
    id: &str,
    replacement: &str,
) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::replaced_by.eq(replacement))
        .execute(conn)?;
    Ok(())
}

/// The session that replaced `id` in its browser, if one did.
pub fn replaced_by(conn: &mut AnyConnection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(sessions::replaced_by)
        .get_result::<Option<String>>(conn)
        .optional()?
        .flatten())
}
