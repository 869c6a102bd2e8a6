//! MFA storage: the `mfa_challenges` and `recovery_codes` tables.

use diesel::prelude::*;

use super::schema::{mfa_challenges, recovery_codes};
use super::{AnyConnection, StoreError};

/// A pending second-factor step (a login's `mfa_token`, or a TOTP setup's `setup_token`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_challenges)]
pub struct ChallengeRow {
    pub token_hash: String,
    pub user_id: String,
    /// `login` or `setup`.
    pub purpose: String,
    /// What the step needs when it completes (JSON; secrets in it are sealed).
    pub payload: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Inserts a challenge.
pub fn insert_challenge(conn: &mut AnyConnection, row: &ChallengeRow) -> Result<(), StoreError> {
    diesel::insert_into(mfa_challenges::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The unused, unexpired challenge with this hash and purpose.
pub fn find_challenge(
    conn: &mut AnyConnection,
    token_hash: &str,
    purpose: &str,
    now: i64,
) -> Result<ChallengeRow, StoreError> {
    Ok(mfa_challenges::table
        .find(token_hash)
        .filter(mfa_challenges::purpose.eq(purpose))
        .filter(mfa_challenges::used_at.is_null())
        .filter(mfa_challenges::expires_at.gt(now))
        .select(ChallengeRow::as_select())
        .get_result(conn)?)
}

/// Marks a challenge used if it was not; returns whether this call used it.
pub fn use_challenge(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        mfa_challenges::table
            .find(token_hash)
            .filter(mfa_challenges::used_at.is_null()),
    )
    .set(mfa_challenges::used_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Replaces the payload of an unused challenge; returns whether it was still unused.
pub fn replace_challenge_payload(
    conn: &mut AnyConnection,
    token_hash: &str,
    payload: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        mfa_challenges::table
            .find(token_hash)
            .filter(mfa_challenges::used_at.is_null()),
    )
    .set(mfa_challenges::payload.eq(payload))
    .execute(conn)?
        == 1)
}

/// Removes expired challenges.
pub fn delete_expired_challenges(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.le(now)))
            .execute(conn)?,
    )
}

/// Replaces a user's recovery codes.
pub fn replace_recovery_codes(
    conn: &mut AnyConnection,
    user_id: &str,
    code_hashes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for hash in code_hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Uses a recovery code if it exists and is unused; returns whether this call used it.
pub fn use_recovery_code(
    conn: &mut AnyConnection,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        recovery_codes::table
            .find((user_id, code_hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?
        == 1)
}

/// How many unused recovery codes a user has.
pub fn unused_recovery_codes(conn: &mut AnyConnection, user_id: &str) -> Result<i64, StoreError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}
