//! The `user_security` table: lockout counters and MFA state of an account.

use diesel::prelude::*;

use super::schema::user_security;
use super::{AnyConnection, StoreError};

/// An account's security state.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = user_security, treat_none_as_null = true)]
pub struct SecurityRow {
    pub user_id: String,
    pub failed_login_count: i32,
    pub failed_login_window_start: Option<i64>,
    pub locked_until: Option<i64>,
    pub lock_reason: Option<String>,
    pub mfa_enabled: bool,
    /// The TOTP secret, sealed.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted (a code is never accepted twice).
    pub totp_last_step: Option<i64>,
    pub password_changed_at: Option<i64>,
    /// Wrong second-factor codes in the current window (apart from passwords: a right
    /// password forgives none of them; only a completed sign-in does).
    pub mfa_failed_count: i32,
    /// When that window began.
    pub mfa_failed_window_start: Option<i64>,
    /// Until when the second factor is locked after too many wrong codes.
    pub mfa_locked_until: Option<i64>,
}

impl SecurityRow {
    /// The state of a new account.
    pub fn new(user_id: &str, password_changed_at: Option<i64>) -> Self {
        Self {
            user_id: user_id.to_owned(),
            failed_login_count: 0,
            failed_login_window_start: None,
            locked_until: None,
            lock_reason: None,
            mfa_enabled: false,
            totp_secret: None,
            totp_last_step: None,
            password_changed_at,
            mfa_failed_count: 0,
            mfa_failed_window_start: None,
            mfa_locked_until: None,
        }
    }
}

/// Inserts the security state of a new account.
pub fn insert(conn: &mut AnyConnection, row: &SecurityRow) -> Result<(), StoreError> {
    diesel::insert_into(user_security::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The security state of an account.
pub fn find(conn: &mut AnyConnection, user_id: &str) -> Result<SecurityRow, StoreError> {
    Ok(user_security::table
        .find(user_id)
        .select(SecurityRow::as_select())
        .get_result(conn)?)
}

/// The security state of an account, read to be changed and written back with [`save`]: on
/// PostgreSQL the row stays locked (`FOR UPDATE`) until the transaction ends, so concurrent
/// changes (two wrong codes at once, a password beside a code) wait for each other instead of
/// writing back what the other did not see. SQLite has one writer already.
pub fn find_for_update(conn: &mut AnyConnection, user_id: &str) -> Result<SecurityRow, StoreError> {
    let query = user_security::table.find(user_id);
    Ok(match conn {
        AnyConnection::Postgresql(c) => query
            .select(SecurityRow::as_select())
            .for_update()
            .get_result(c)?,
        AnyConnection::Sqlite(c) => query.select(SecurityRow::as_select()).get_result(c)?,
    })
}

/// Writes the whole security state of an account (read with [`find_for_update`]).
pub fn save(conn: &mut AnyConnection, row: &SecurityRow) -> Result<(), StoreError> {
    diesel::update(user_security::table.find(&row.user_id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// The security state of several accounts.
pub fn find_many(
    conn: &mut AnyConnection,
    user_ids: &[String],
) -> Result<Vec<SecurityRow>, StoreError> {
    Ok(user_security::table
        .filter(user_security::user_id.eq_any(user_ids))
        .select(SecurityRow::as_select())
        .load(conn)?)
}
