//! The `login_throttles` table: failed passwords counted per keyed hash of a login and client
//! address (or of a login alone), in a fixed window, with the lockout each count may have set.

use diesel::prelude::*;

use super::schema::login_throttles as throttles;
use super::{AnyConnection, StoreError};

/// One counter as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = throttles)]
pub struct ThrottleRow {
    /// Failures in the current window.
    pub failures: i32,
    /// When the window began.
    pub window_start: i64,
    /// Until when the key is locked out, if it is.
    pub locked_until: Option<i64>,
}

/// The live counter of `key` (one whose window or lockout has not ended).
pub fn find(
    conn: &mut AnyConnection,
    key_hash: &str,
    now: i64,
) -> Result<Option<ThrottleRow>, StoreError> {
    Ok(throttles::table
        .find(key_hash)
        .filter(throttles::expires_at.gt(now))
        .select(ThrottleRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// Counts one failure for `key` (a window of `window_secs` starts with the first); returns the
/// counter after it. `user_id` names the account the login belongs to, when one does, so that
/// an unlock or a reset can clear its counters. An upsert, so that concurrent instances never
/// lose a failure.
pub fn count_failure(
    conn: &mut AnyConnection,
    key_hash: &str,
    user_id: Option<&str>,
    now: i64,
    window_secs: i64,
) -> Result<ThrottleRow, StoreError> {
    diesel::delete(
        throttles::table
            .find(key_hash)
            .filter(throttles::expires_at.le(now)),
    )
    .execute(conn)?;
    macro_rules! upsert {
        ($c:expr) => {
            diesel::insert_into(throttles::table)
                .values((
                    throttles::key_hash.eq(key_hash),
                    throttles::user_id.eq(user_id),
                    throttles::failures.eq(1),
                    throttles::window_start.eq(now),
                    throttles::expires_at.eq(now + window_secs),
                ))
                .on_conflict(throttles::key_hash)
                .do_update()
                .set(throttles::failures.eq(throttles::failures + 1))
                .returning(ThrottleRow::as_returning())
                .get_result($c)
        };
    }
    Ok(match conn {
        AnyConnection::Postgresql(c) => upsert!(c)?,
        AnyConnection::Sqlite(c) => upsert!(c)?,
    })
}

/// Takes one failure back from `key` (an attempt counted before its password was checked,
/// and the password was right); a counter left with none and no lockout is removed.
pub fn uncount(conn: &mut AnyConnection, key_hash: &str) -> Result<(), StoreError> {
    diesel::update(
        throttles::table
            .find(key_hash)
            .filter(throttles::failures.gt(0)),
    )
    .set(throttles::failures.eq(throttles::failures - 1))
    .execute(conn)?;
    diesel::delete(
        throttles::table
            .find(key_hash)
            .filter(throttles::failures.le(0))
            .filter(throttles::locked_until.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Locks `key` out until `until` (its row lives at least as long).
pub fn lock(conn: &mut AnyConnection, key_hash: &str, until: i64) -> Result<(), StoreError> {
    diesel::update(throttles::table.find(key_hash))
        .set((
            throttles::locked_until.eq(until),
            throttles::expires_at.eq(until),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets the counter of `key` (its failures were followed by the right password).
pub fn clear(conn: &mut AnyConnection, key_hash: &str) -> Result<(), StoreError> {
    diesel::delete(throttles::table.find(key_hash)).execute(conn)?;
    Ok(())
}

/// Forgets every counter of an account's logins (an unlock, or a password reset).
pub fn clear_user(conn: &mut AnyConnection, user_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(throttles::table.filter(throttles::user_id.eq(user_id))).execute(conn)?)
}

/// Removes counters whose window and lockout have both ended.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(throttles::table.filter(throttles::expires_at.le(now))).execute(conn)?)
}
