//! The `meta` table: facts about the installation itself (the bootstrap marker).

use diesel::prelude::*;

use super::schema::meta;
use super::{AnyConnection, StoreError};

/// The value stored under `key`, if any.
pub fn get(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(meta::table
        .find(key)
        .select(meta::value)
        .first::<String>(conn)
        .optional()?)
}

/// Stores `value` under a new `key`; [`StoreError::Conflict`] when the key exists, which makes
/// the insert usable as a once-only claim by concurrent processes.
pub fn insert(conn: &mut AnyConnection, key: &str, value: &str) -> Result<(), StoreError> {
    diesel::insert_into(meta::table)
        .values((meta::key.eq(key), meta::value.eq(value)))
        .execute(conn)?;
    Ok(())
}
