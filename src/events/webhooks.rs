//! Webhooks: the events of the contract delivered to subscribers as signed JSON POSTs through
//! the durable outbox, so a delivery is queued in the transaction of the change it reports and
//! survives a restart.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::outbox;
use crate::crypto::Crypto;
use crate::domain::{Timestamp, now};
use crate::store::webhooks as rows;
use crate::store::{AnyConnection, StoreError};

/// The outbox kind of webhook deliveries.
pub const WEBHOOK: &str = "webhook";

/// Every event a webhook can subscribe to (the contract's list).
pub const EVENTS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "user.login",
    "user.role_changed",
    "user.locked",
    "client.created",
    "client.deleted",
    "session.revoked",
];

/// What a queued delivery carries: the exact body to POST (fixed when the event happens, so
/// every retry sends the same bytes) and the webhook it is for (whose URL and secret are read
/// at each attempt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedDelivery {
    pub webhook_id: String,
    pub event: String,
    pub body: String,
}

/// Queues `event` with `data` for every active webhook subscribed to it; returns how many
/// deliveries were queued. Call it inside the transaction of the change the event reports.
pub fn emit(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    event: &str,
    data: Value,
) -> Result<usize, StoreError> {
    debug_assert!(EVENTS.contains(&event), "unknown webhook event {event}");
    let timestamp = Timestamp(now());
    let mut queued = 0;
    for hook in rows::subscribed(conn, event)? {
        let body = json!({
            "event": event,
            "timestamp": timestamp,
            "data": data,
            "webhook_id": hook.id,
        });
        let delivery = QueuedDelivery {
            webhook_id: hook.id.clone(),
            event: event.to_owned(),
            body: body.to_string(),
        };
        outbox::enqueue(
            conn,
            crypto,
            WEBHOOK,
            Some(&hook.id),
            &serde_json::to_value(&delivery).expect("plain data"),
        )?;
        queued += 1;
    }
    Ok(queued)
}
