//! The `roles` and `role_permissions` tables.

use diesel::prelude::*;

use super::schema::{role_permissions, roles, user_permissions, user_roles};
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
        .get_result(conn)?)
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

/// Every role, by name.
pub fn all(conn: &mut AnyConnection) -> Result<Vec<RoleRow>, StoreError> {
    Ok(roles::table
        .order(roles::name)
        .select(RoleRow::as_select())
        .load(conn)?)
}

/// The role with this id.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<RoleRow, StoreError> {
    Ok(roles::table
        .find(id)
        .select(RoleRow::as_select())
        .get_result(conn)?)
}

/// How many users hold each role, as `(role_id, count)`.
pub fn user_counts(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(user_roles::table
        .group_by(user_roles::role_id)
        .select((user_roles::role_id, diesel::dsl::count_star()))
        .load(conn)?)
}

/// How many users hold one role.
pub fn user_count(conn: &mut AnyConnection, role_id: &str) -> Result<i64, StoreError> {
    Ok(user_roles::table
        .filter(user_roles::role_id.eq(role_id))
        .count()
        .get_result(conn)?)
}

/// Renames a role and changes its description.
pub fn update(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    description: &str,
    at: i64,
) -> Result<(), StoreError> {
    match diesel::update(roles::table.find(id))
        .set((
            roles::name.eq(name),
            roles::description.eq(description),
            roles::updated_at.eq(at),
        ))
        .execute(conn)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Replaces the permissions of a role.
pub fn set_permissions(
    conn: &mut AnyConnection,
    role_id: &str,
    permissions: &[String],
) -> Result<(), StoreError> {
    diesel::delete(role_permissions::table.filter(role_permissions::role_id.eq(role_id)))
        .execute(conn)?;
    for permission in permissions {
        diesel::insert_into(role_permissions::table)
            .values((
                role_permissions::role_id.eq(role_id),
                role_permissions::permission.eq(permission),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes a role, first taking it from every user who holds it.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    diesel::delete(user_roles::table.filter(user_roles::role_id.eq(id))).execute(conn)?;
    match diesel::delete(roles::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Every permission name held by some role or some user, sorted and distinct.
pub fn permissions_in_use(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = role_permissions::table
        .select(role_permissions::permission)
        .distinct()
        .load(conn)?;
    names.extend(
        user_permissions::table
            .select(user_permissions::permission)
            .distinct()
            .load::<String>(conn)?,
    );
    names.sort();
    names.dedup();
    Ok(names)
}
