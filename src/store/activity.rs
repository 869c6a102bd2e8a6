//! One user's activity, from the audit log and the sessions table, computed with SQL
//! aggregates: how often and when they sign in, how long their sessions last, what was done
//! by or to them lately.

use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use super::audit::AuditRow;
use super::schema::{audit_logs, sessions};
use super::{AnyConnection, StoreError};

/// The audit action of a completed sign-in.
pub const LOGIN: &str = "login_succeeded";

fn about_or_by(user_id: &str) -> audit_logs::BoxedQuery<'static, super::MultiBackend> {
    audit_logs::table
        .filter(
            audit_logs::actor_id
                .eq(user_id.to_owned())
                .or(audit_logs::resource
                    .eq("users")
                    .and(audit_logs::resource_id.eq(user_id.to_owned()))),
        )
        .into_boxed()
}

/// How many sign-ins the user completed, and when the last one was.
pub fn logins(conn: &mut AnyConnection, user_id: &str) -> Result<(i64, Option<i64>), StoreError> {
    Ok(about_or_by(user_id)
        .filter(audit_logs::action.eq(LOGIN))
        .select((count_star(), diesel::dsl::max(audit_logs::created_at)))
        .first(conn)?)
}

/// Sign-ins per day of the week (0 is Monday), as `(day, count)`.
pub fn logins_by_weekday(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<(i64, i64)>, StoreError> {
    // 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3 counting from Monday.
    const WEEKDAY: &str = "((audit_logs.created_at / 86400) + 3) % 7";
    Ok(audit_logs::table
        .filter(audit_logs::action.eq(LOGIN))
        .filter(
            audit_logs::actor_id.eq(user_id).or(audit_logs::resource
                .eq("users")
                .and(audit_logs::resource_id.eq(user_id))),
        )
        .group_by(sql::<BigInt>(WEEKDAY))
        .select((sql::<BigInt>(WEEKDAY), count_star()))
        .load(conn)?)
}

/// Sign-ins per hour of the day (UTC), as `(hour, count)`.
pub fn logins_by_hour(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<(i64, i64)>, StoreError> {
    const HOUR: &str = "(audit_logs.created_at % 86400) / 3600";
    Ok(audit_logs::table
        .filter(audit_logs::action.eq(LOGIN))
        .filter(
            audit_logs::actor_id.eq(user_id).or(audit_logs::resource
                .eq("users")
                .and(audit_logs::resource_id.eq(user_id))),
        )
        .group_by(sql::<BigInt>(HOUR))
        .select((sql::<BigInt>(HOUR), count_star()))
        .load(conn)?)
}

/// The average time from the start of a session to its last activity, in seconds.
pub fn average_session_secs(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id.to_owned()))
        .select(sql::<Nullable<BigInt>>(
            "CAST(AVG(sessions.last_activity - sessions.created_at) AS BIGINT)",
        ))
        .first(conn)?)
}

/// The latest audit entries by or about the user, newest first.
pub fn recent(
    conn: &mut AnyConnection,
    user_id: &str,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(about_or_by(user_id)
        .order((audit_logs::created_at.desc(), audit_logs::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}
