//! The `account_tokens` table: single-use email verification, password reset and email change
//! tokens, stored as keyed hashes.

use diesel::prelude::*;

use super::schema::account_tokens;
use super::{AnyConnection, StoreError};

/// An account token as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_tokens)]
pub struct AccountTokenRow {
    pub token_hash: String,
    pub user_id: String,
    /// `verify_email`, `reset_password` or `change_email`.
    pub purpose: String,
    /// The address a `change_email` token confirms.
    pub new_email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Inserts a token.
pub fn insert(conn: &mut AnyConnection, row: &AccountTokenRow) -> Result<(), StoreError> {
    diesel::insert_into(account_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The unused, unexpired token with this hash and one of these purposes.
pub fn find_live(
    conn: &mut AnyConnection,
    token_hash: &str,
    purposes: &[&str],
    now: i64,
) -> Result<AccountTokenRow, StoreError> {
    Ok(account_tokens::table
        .find(token_hash)
        .filter(account_tokens::purpose.eq_any(purposes))
        .filter(account_tokens::used_at.is_null())
        .filter(account_tokens::expires_at.gt(now))
        .select(AccountTokenRow::as_select())
        .get_result(conn)?)
}

/// Marks a token used if it was not; returns whether this call used it.
pub fn use_token(conn: &mut AnyConnection, token_hash: &str, now: i64) -> Result<bool, StoreError> {
    Ok(diesel::update(
        account_tokens::table
            .find(token_hash)
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Retires a user's unused tokens of one purpose (a new one replaces them).
pub fn retire(
    conn: &mut AnyConnection,
    user_id: &str,
    purpose: &str,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        account_tokens::table
            .filter(account_tokens::user_id.eq(user_id))
            .filter(account_tokens::purpose.eq(purpose))
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(now))
    .execute(conn)?)
}

/// Removes expired tokens.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(account_tokens::table.filter(account_tokens::expires_at.le(now)))
            .execute(conn)?,
    )
}
