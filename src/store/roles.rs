//! The `roles` and `role_permissions` tables.

use diesel::prelude::*;

use super::schema::{role_permissions, roles};
use super::{AnyConnection, StoreError};

/// A role as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts a role with its permissions.
pub fn insert(
    conn: &mut AnyConnection,
    role: &RoleRow,
    permissions: &[String],
) -> Result<(), StoreError> {
    diesel::insert_into(roles::table)
        .values(role)
        .execute(conn)?;
    for permission in permissions {
        diesel::insert_into(role_permissions::table)
            .values((
                role_permissions::role_id.eq(&role.id),
                role_permissions::permission.eq(permission),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The role named `name`.
pub fn find_by_name(conn: &mut AnyConnection, name: &str) -> Result<RoleRow, StoreError> {
    Ok(roles::table
        .filter(roles::name.eq(name))
        .select(RoleRow::as_select())
        .first(conn)?)
}

/// The permissions of a role, sorted.
pub fn permissions(conn: &mut AnyConnection, role_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(role_permissions::table
        .filter(role_permissions::role_id.eq(role_id))
        .order(role_permissions::permission)
        .select(role_permissions::permission)
        .load(conn)?)
}

/// Whether any role exists (the database has been bootstrapped).
pub fn any_exist(conn: &mut AnyConnection) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(roles::table.select(roles::id))).get_result(conn)?)
}
