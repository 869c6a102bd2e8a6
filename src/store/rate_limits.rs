//! The `rate_limit_counters` table: fixed-window counters shared by every instance.

use diesel::prelude::*;

use super::schema::rate_limit_counters as counters;
use super::{AnyConnection, StoreError};

/// Counts one request for `key` in the window starting at `window_start`; returns the count
/// including this one. One statement (an upsert), so concurrent instances never lose a hit.
pub fn hit(
    conn: &mut AnyConnection,
    key: &str,
    window_start: i64,
    expires_at: i64,
) -> Result<i64, StoreError> {
    // The multi-backend connection has no upsert; each backend runs the same statement.
    macro_rules! upsert {
        ($c:expr) => {
            diesel::insert_into(counters::table)
                .values((
                    counters::key.eq(key),
                    counters::window_start.eq(window_start),
                    counters::hits.eq(1),
                    counters::expires_at.eq(expires_at),
                ))
                .on_conflict((counters::key, counters::window_start))
                .do_update()
                .set(counters::hits.eq(counters::hits + 1))
                .returning(counters::hits)
                .get_result::<i32>($c)
        };
    }
    let hits = match conn {
        AnyConnection::Postgresql(c) => upsert!(c)?,
        AnyConnection::Sqlite(c) => upsert!(c)?,
    };
    Ok(i64::from(hits))
}

/// The count of `key` in the window starting at `window_start`, without counting.
pub fn peek(conn: &mut AnyConnection, key: &str, window_start: i64) -> Result<i64, StoreError> {
    Ok(counters::table
        .find((key, window_start))
        .select(counters::hits)
        .first::<i32>(conn)
        .optional()?
        .map_or(0, i64::from))
}

/// Removes the counters of windows that have ended.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(counters::table.filter(counters::expires_at.le(now))).execute(conn)?)
}
