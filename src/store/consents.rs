//! The `consents` table: what a person has already allowed a client.

use diesel::prelude::*;

use super::schema::consents;
use super::{AnyConnection, StoreError};

/// The scope (space-separated) a person has granted a client, if any.
pub fn granted_scope(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(consents::scope)
        .get_result(conn)
        .optional()?)
}

/// Stores the scope granted to a client, replacing the previous one.
pub fn save(
    conn: &mut AnyConnection,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    let updated = diesel::update(consents::table.find((user_id, client_id)))
        .set((consents::scope.eq(scope), consents::updated_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(consents::table)
            .values((
                consents::user_id.eq(user_id),
                consents::client_id.eq(client_id),
                consents::scope.eq(scope),
                consents::created_at.eq(now),
                consents::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
