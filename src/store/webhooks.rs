//! The `webhooks` table: subscriptions to events. The secret is sealed under the webhook's id.

use diesel::prelude::*;

use super::schema::webhooks;
use super::{AnyConnection, StoreError, from_json};

/// A webhook as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    /// The subscribed event names, as a JSON array.
    pub events: String,
    /// The signing secret, sealed under the webhook's id.
    pub secret: String,
    pub active: bool,
    pub description: Option<String>,
    /// Failed deliveries since the last success; at the limit the webhook is disabled.
    pub consecutive_failures: i32,
    /// Why the webhook was disabled automatically.
    pub disabled_reason: Option<String>,
    pub last_delivery_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WebhookRow {
    /// The subscribed event names.
    pub fn event_names(&self) -> Result<Vec<String>, StoreError> {
        from_json("webhooks.events", &self.events)
    }
}

/// The subscription to every event, present and future.
pub const EVERY_EVENT: &str = "*";

/// The active webhooks subscribed to `event` (by name or through [`EVERY_EVENT`]). Webhooks are few, so the subscription list is
/// matched here rather than in SQL (its JSON form differs between the backends).
pub fn subscribed(conn: &mut AnyConnection, event: &str) -> Result<Vec<WebhookRow>, StoreError> {
    let active: Vec<WebhookRow> = webhooks::table
        .filter(webhooks::active.eq(true))
        .order(webhooks::id)
        .select(WebhookRow::as_select())
        .load(conn)?;
    let mut matching = Vec::with_capacity(active.len());
    for row in active {
        if row
            .event_names()?
            .iter()
            .any(|e| e == event || e == EVERY_EVENT)
        {
            matching.push(row);
        }
    }
    Ok(matching)
}

/// The columns an administrator changes (`None` leaves a column as it is); `updated_at` is
/// always set, so a change set is never empty.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookChanges {
    pub url: Option<String>,
    /// The subscribed event names, as a JSON array.
    pub events: Option<String>,
    /// A new sealed secret.
    pub secret: Option<String>,
    pub active: Option<bool>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    pub consecutive_failures: Option<i32>,
    /// `Some(None)` clears it.
    pub disabled_reason: Option<Option<String>>,
    pub updated_at: i64,
}

/// Inserts a new webhook.
pub fn insert(conn: &mut AnyConnection, row: &WebhookRow) -> Result<(), StoreError> {
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The webhook with this id; [`StoreError::NotFound`] when there is none.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<WebhookRow, StoreError> {
    Ok(webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .get_result(conn)?)
}

/// A page of webhooks, oldest first: after the `(created_at, id)` of `after` when given,
/// else from `offset`.
pub fn page(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    offset: i64,
    limit: i64,
) -> Result<Vec<WebhookRow>, StoreError> {
    let mut query = webhooks::table.into_boxed();
    if let Some((created_at, id)) = after {
        query = query.filter(
            webhooks::created_at
                .gt(created_at)
                .or(webhooks::created_at.eq(created_at).and(webhooks::id.gt(id))),
        );
    } else {
        query = query.offset(offset);
    }
    Ok(query
        .order((webhooks::created_at.asc(), webhooks::id.asc()))
        .limit(limit)
        .select(WebhookRow::as_select())
        .load(conn)?)
}

/// How many webhooks exist.
pub fn count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(webhooks::table.count().get_result(conn)?)
}

/// Applies `changes` to a webhook; [`StoreError::NotFound`] when there is none.
pub fn update(
    conn: &mut AnyConnection,
    id: &str,
    changes: &WebhookChanges,
) -> Result<(), StoreError> {
    let changed = diesel::update(webhooks::table.find(id))
        .set(changes)
        .execute(conn)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a webhook; [`StoreError::NotFound`] when there is none.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    let deleted = diesel::delete(webhooks::table.find(id)).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Records a successful delivery: the run of failures ends.
pub fn record_success(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), StoreError> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::consecutive_failures.eq(0),
            webhooks::last_delivery_at.eq(at),
            webhooks::last_success_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed delivery (one more failure in a row, counted in SQL so concurrent
/// deliveries lose no count); returns the count now. Call it inside a transaction.
pub fn record_failure(conn: &mut AnyConnection, id: &str, at: i64) -> Result<i32, StoreError> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::consecutive_failures.eq(webhooks::consecutive_failures + 1),
            webhooks::last_delivery_at.eq(at),
        ))
        .execute(conn)?;
    Ok(webhooks::table
        .find(id)
        .select(webhooks::consecutive_failures)
        .get_result(conn)?)
}

/// Deactivates a webhook that is still active, with the reason; returns whether this call
/// did it (so exactly one of several instances reports it).
pub fn disable(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let changed = diesel::update(webhooks::table.find(id).filter(webhooks::active.eq(true)))
        .set((
            webhooks::active.eq(false),
            webhooks::disabled_reason.eq(reason),
            webhooks::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}
