//! The `audit_logs` table.

use diesel::prelude::*;

use super::schema::audit_logs;
use super::{AnyConnection, StoreError};

/// An audit entry as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_logs)]
pub struct AuditRow {
    pub id: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub resource: String,
    pub resource_id: Option<String>,
    pub old_values: Option<String>,
    pub new_values: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub additional_info: Option<String>,
    pub created_at: i64,
}

/// Inserts an entry.
pub fn insert(conn: &mut AnyConnection, row: &AuditRow) -> Result<(), StoreError> {
    diesel::insert_into(audit_logs::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

fn filtered(filter: &AuditFilter) -> audit_logs::BoxedQuery<'static, super::MultiBackend> {
    let mut query = audit_logs::table.into_boxed();
    if let Some(v) = &filter.actor_id {
        query = query.filter(audit_logs::actor_id.eq(v.clone()));
    }
    if let Some(v) = &filter.action {
        query = query.filter(audit_logs::action.eq(v.clone()));
    }
    if let Some(v) = &filter.resource {
        query = query.filter(audit_logs::resource.eq(v.clone()));
    }
    if let Some(v) = &filter.resource_id {
        query = query.filter(audit_logs::resource_id.eq(v.clone()));
    }
    if let Some(v) = filter.from {
        query = query.filter(audit_logs::created_at.ge(v));
    }
    if let Some(v) = filter.to {
        query = query.filter(audit_logs::created_at.le(v));
    }
    query
}

/// How many entries match.
pub fn count(conn: &mut AnyConnection, filter: &AuditFilter) -> Result<i64, StoreError> {
    Ok(filtered(filter).count().get_result(conn)?)
}

/// One page of matching entries, newest first (ids are time-ordered UUIDv7).
pub fn page(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(filtered(filter)
        .order((audit_logs::created_at.desc(), audit_logs::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// Matching entries older than `before_id` (keyset paging for exports and cursors).
pub fn before(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = filtered(filter);
    if let Some(id) = before_id {
        query = query.filter(audit_logs::id.lt(id.to_owned()));
    }
    Ok(query
        .order(audit_logs::id.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}
