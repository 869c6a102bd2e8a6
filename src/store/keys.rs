//! The `signing_keys` table: key rows and the guarded status changes of a rotation.

use diesel::prelude::*;

use super::schema::signing_keys;
use super::{AnyConnection, StoreError};

/// A signing key as stored: the public JWK in clear, the private key sealed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub public_jwk: String,
    pub private_key: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// Status of a key that is published but does not sign yet.
pub const NEXT: &str = "next";
/// Status of the key that signs.
pub const ACTIVE: &str = "active";
/// Status of a key that no longer signs but is published until its tokens expire.
pub const RETIRED: &str = "retired";

/// Inserts a key.
pub fn insert(conn: &mut AnyConnection, row: &SigningKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Every key, ordered by algorithm and creation.
pub fn all(conn: &mut AnyConnection) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .order((
            signing_keys::alg,
            signing_keys::created_at,
            signing_keys::kid,
        ))
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

/// `(kid, status)` of every key: a cheap read that tells an instance whether to reload.
pub fn fingerprint(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    Ok(signing_keys::table
        .order(signing_keys::kid)
        .select((signing_keys::kid, signing_keys::status))
        .load(conn)?)
}

/// The keys of one algorithm with one status.
pub fn with_status(
    conn: &mut AnyConnection,
    alg: &str,
    status: &str,
) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .filter(signing_keys::alg.eq(alg))
        .filter(signing_keys::status.eq(status))
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

/// Retires the active key `kid` if it is still active; returns whether it was. Zero rows
/// means another process rotated first, and the caller abandons its rotation.
pub fn retire_if_active(
    conn: &mut AnyConnection,
    kid: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::status.eq(ACTIVE)),
    )
    .set((
        signing_keys::status.eq(RETIRED),
        signing_keys::retired_at.eq(now),
        signing_keys::expires_at.eq(expires_at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Makes the published successor `kid` the signing key; returns whether it was `next`.
pub fn activate_if_next(conn: &mut AnyConnection, kid: &str, now: i64) -> Result<bool, StoreError> {
    let changed = diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::status.eq(NEXT)),
    )
    .set((
        signing_keys::status.eq(ACTIVE),
        signing_keys::activated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Removes retired keys whose last tokens have expired; returns their kids.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<Vec<String>, StoreError> {
    let expired: Vec<String> = signing_keys::table
        .filter(signing_keys::status.eq(RETIRED))
        .filter(signing_keys::expires_at.le(now))
        .select(signing_keys::kid)
        .load(conn)?;
    if !expired.is_empty() {
        diesel::delete(
            signing_keys::table
                .filter(signing_keys::kid.eq_any(&expired))
                .filter(signing_keys::status.eq(RETIRED)),
        )
        .execute(conn)?;
    }
    Ok(expired)
}
