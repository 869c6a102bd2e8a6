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

/// The active webhooks subscribed to `event`. Webhooks are few, so the subscription list is
/// matched here rather than in SQL (its JSON form differs between the backends).
pub fn subscribed(conn: &mut AnyConnection, event: &str) -> Result<Vec<WebhookRow>, StoreError> {
    let active: Vec<WebhookRow> = webhooks::table
        .filter(webhooks::active.eq(true))
        .order(webhooks::id)
        .select(WebhookRow::as_select())
        .load(conn)?;
    let mut matching = Vec::with_capacity(active.len());
    for row in active {
        if row.event_names()?.iter().any(|e| e == event) {
            matching.push(row);
        }
    }
    Ok(matching)
}
