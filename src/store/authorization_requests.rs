//! The `authorization_requests` table: validated requests waiting for a login or a consent.

use diesel::prelude::*;

use super::schema::authorization_requests;
use super::{AnyConnection, StoreError};

/// A pending authorization request as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_requests)]
pub struct AuthorizationRequestRow {
    pub id: String,
    pub client_id: String,
    /// The validated request, as JSON.
    pub parameters: String,
    /// The session created by a login made for this request (so `prompt=login` and `max_age`
    /// are satisfied once, not in a loop).
    pub login_session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The session chosen on the account-choice page (it answers `prompt=select_account`).
    pub selected_session_id: Option<String>,
}

/// Inserts a pending request.
pub fn insert(conn: &mut AnyConnection, row: &AuthorizationRequestRow) -> Result<(), StoreError> {
    diesel::insert_into(authorization_requests::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The unexpired request with this id.
pub fn find_live(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
) -> Result<AuthorizationRequestRow, StoreError> {
    Ok(authorization_requests::table
        .find(id)
        .filter(authorization_requests::expires_at.gt(now))
        .select(AuthorizationRequestRow::as_select())
        .get_result(conn)?)
}

/// Records the session a login made for this request.
pub fn set_login_session(
    conn: &mut AnyConnection,
    id: &str,
    session_id: &str,
) -> Result<(), StoreError> {
    diesel::update(authorization_requests::table.find(id))
        .set(authorization_requests::login_session_id.eq(session_id))
        .execute(conn)?;
    Ok(())
}

/// Records the session chosen on the account-choice page for this request.
pub fn set_selected_session(
    conn: &mut AnyConnection,
    id: &str,
    session_id: &str,
) -> Result<(), StoreError> {
    diesel::update(authorization_requests::table.find(id))
        .set(authorization_requests::selected_session_id.eq(session_id))
        .execute(conn)?;
    Ok(())
}

/// Removes a request once it is answered; returns whether it existed (a second answer to the
/// same request is refused).
pub fn take(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(authorization_requests::table.find(id)).execute(conn)? == 1)
}

/// Removes expired requests.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        authorization_requests::table.filter(authorization_requests::expires_at.le(now)),
    )
    .execute(conn)?)
}
