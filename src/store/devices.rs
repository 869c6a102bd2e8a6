//! The `known_devices` table: browser and OS families a person signed in from.

use diesel::prelude::*;

use super::schema::known_devices;
use super::{AnyConnection, StoreError};

/// Records a sign-in from a device; returns `(new, had_others)`: whether the device was
/// unknown, and whether the person had signed in from any device before.
pub fn note(
    conn: &mut AnyConnection,
    user_id: &str,
    fingerprint: &str,
    description: &str,
    now: i64,
) -> Result<(bool, bool), StoreError> {
    let updated = diesel::update(known_devices::table.find((user_id, fingerprint)))
        .set(known_devices::last_seen.eq(now))
        .execute(conn)?;
    if updated == 1 {
        return Ok((false, true));
    }
    let had_others: bool = diesel::select(diesel::dsl::exists(
        known_devices::table.filter(known_devices::user_id.eq(user_id)),
    ))
    .get_result(conn)?;
    let inserted = diesel::insert_into(known_devices::table)
        .values((
            known_devices::user_id.eq(user_id),
            known_devices::fingerprint.eq(fingerprint),
            known_devices::description.eq(description),
            known_devices::first_seen.eq(now),
            known_devices::last_seen.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok((true, had_others)),
        // A concurrent sign-in from the same device recorded it first.
        Err(e) => match StoreError::from(e) {
            StoreError::Conflict { .. } => Ok((false, true)),
            other => Err(other),
        },
    }
}
