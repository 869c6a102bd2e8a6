//! The `audit_logs` table.
//!
//! Lists and exports read it newest first, ordered by `(created_at, id)` descending: offset
//! pages for `page`/`offset` paging, keyset pages (rows after a `(created_at, id)` position)
//! for cursors and exports, which stay consistent while entries are written between requests.

use diesel::prelude::*;

use super::schema::audit_logs;
use super::{AnyConnection, MultiBackend, StoreError};

/// An audit entry as stored. The value columns hold JSON text with secrets already redacted.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_logs)]
pub struct AuditRow {
    /// A UUIDv7.
    pub id: String,
    /// The acting user, if any.
    pub actor_id: Option<String>,
    /// The actor's email address at the time.
    pub actor_email: Option<String>,
    /// What happened (`user_created`, `login_failed`, ...).
    pub action: String,
    /// The kind of thing it happened to (`users`, `clients`, ...).
    pub resource: String,
    /// Which one.
    pub resource_id: Option<String>,
    /// The values before, as JSON.
    pub old_values: Option<String>,
    /// The values after, as JSON.
    pub new_values: Option<String>,
    /// Where the request came from.
    pub ip_address: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request that did it.
    pub request_id: Option<String>,
    /// Context, as JSON.
    pub additional_info: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Inserts an entry.
pub fn insert(conn: &mut AnyConnection, row: &AuditRow) -> Result<(), StoreError> {
    diesel::insert_into(audit_logs::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Filters of the audit log; every member given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The acting user.
    pub actor_id: Option<String>,
    /// The action, exactly.
    pub action: Option<String>,
    /// The resource kind, exactly.
    pub resource: Option<String>,
    /// The resource id, exactly.
    pub resource_id: Option<String>,
    /// Written at or after (unix seconds).
    pub from: Option<i64>,
    /// Written at or before (unix seconds).
    pub to: Option<i64>,
}

fn filtered(filter: &AuditFilter) -> audit_logs::BoxedQuery<'static, MultiBackend> {
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

/// One page of matching entries, newest first, skipping `offset` of them.
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

/// Up to `limit` matching entries older than the position `after` (`(created_at, id)` of the
/// last entry already seen; the newest when `None`), newest first: keyset paging for cursors
/// and exports.
pub fn after(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = filtered(filter);
    if let Some((created_at, id)) = after {
        query = query.filter(
            audit_logs::created_at
                .lt(created_at)
                .or(audit_logs::created_at
                    .eq(created_at)
                    .and(audit_logs::id.lt(id.to_owned()))),
        );
    }
    Ok(query
        .order((audit_logs::created_at.desc(), audit_logs::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// Members of audit values that identify a person.
const PERSONAL: &[&str] = &[
    "email",
    "new_email",
    "old_email",
    "username",
    "login",
    "first_name",
    "last_name",
    "display_name",
    "name",
];

/// Replaces personal members, at any depth, with `[erased]`; returns whether any was found.
fn erase(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut changed = false;
            for (key, member) in map.iter_mut() {
                if PERSONAL.contains(&key.as_str()) && !member.is_null() {
                    *member = serde_json::Value::String("[erased]".into());
                    changed = true;
                } else {
                    changed |= erase(member);
                }
            }
            changed
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, i| erase(i) | c),
        _ => false,
    }
}

/// Erases a deleted user from the audit log while keeping what happened: entries by them
/// lose their email, address and user agent; entries by or about them lose the personal
/// members of their values. The ids stay, so the history remains coherent.
pub fn erase_personal_data(conn: &mut AnyConnection, user_id: &str) -> Result<usize, StoreError> {
    diesel::update(audit_logs::table.filter(audit_logs::actor_id.eq(user_id)))
        .set((
            audit_logs::actor_email.eq(None::<String>),
            audit_logs::ip_address.eq(None::<String>),
            audit_logs::user_agent.eq(None::<String>),
        ))
        .execute(conn)?;
    type Texts = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Texts> = audit_logs::table
        .filter(
            audit_logs::actor_id.eq(user_id).or(audit_logs::resource
                .eq("users")
                .and(audit_logs::resource_id.eq(user_id))),
        )
        .select((
            audit_logs::id,
            audit_logs::old_values,
            audit_logs::new_values,
            audit_logs::additional_info,
        ))
        .load(conn)?;
    let scrub = |text: Option<String>| -> (Option<String>, bool) {
        match text
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
        {
            Some(Ok(mut value)) => {
                let changed = erase(&mut value);
                (Some(value.to_string()), changed)
            }
            _ => (text, false),
        }
    };
    let mut changed_rows = 0;
    for (id, old, new, info) in rows {
        let (old, a) = scrub(old);
        let (new, b) = scrub(new);
        let (info, c) = scrub(info);
        if a || b || c {
            diesel::update(audit_logs::table.find(&id))
                .set((
                    audit_logs::old_values.eq(old),
                    audit_logs::new_values.eq(new),
                    audit_logs::additional_info.eq(info),
                ))
                .execute(conn)?;
            changed_rows += 1;
        }
    }
    Ok(changed_rows)
}
