//! Webhooks: the events of the contract delivered to subscribers as signed JSON POSTs through
//! the durable outbox, so a delivery is queued in the transaction of the change it reports and
//! survives a restart.
//!
//! Each attempt POSTs the body fixed when the event happened, signed at that moment:
//! `X-Latchkey-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`. A 2xx answer
//! is a delivery; anything else is retried with the outbox's backoff. A webhook that fails
//! [`DISABLE_AFTER_FAILURES`] times in a row is disabled, with the reason, an audit entry and
//! a warning; its remaining deliveries are then marked failed instead of retried.

use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::audit::{self, Actor, AuditEvent};
use super::outbox::{self, OutboxStatus, Outcome};
use crate::crypto::Crypto;
use crate::domain::{PlainToken, Timestamp, now};
use crate::startup::AppState;
use crate::store::outbox as outbox_rows;
use crate::store::webhooks::{self as rows, WebhookChanges, WebhookRow};
use crate::store::{AnyConnection, StoreError, to_json, write_transaction};

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

/// A subscription to every event, including those added later.
pub const EVERY_EVENT: &str = rows::EVERY_EVENT;

/// The event of a test ping: sent only on request, never subscribable.
pub const TEST_EVENT: &str = "webhook.test";

/// Failures in a row after which a webhook is disabled (the issue's figure).
pub const DISABLE_AFTER_FAILURES: i32 = 20;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Latchkey-Signature";
/// The header naming the event.
pub const EVENT_HEADER: &str = "X-Latchkey-Event";
/// The header carrying the delivery's id, the same on every retry: a receiver's idempotency key.
pub const DELIVERY_HEADER: &str = "X-Latchkey-Delivery";

/// How long a receiver may take to answer one attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Prefix of generated secrets, so a leaked one is recognisable.
const SECRET_PREFIX: &str = "whsec_";
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;
const MAX_DESCRIPTION_CHARS: usize = 500;

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
        queue(conn, crypto, &hook.id, event, timestamp, &data)?;
        queued += 1;
    }
    Ok(queued)
}

/// Queues one delivery of `event` to one webhook, in the contract's payload; returns its id.
fn queue(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    webhook_id: &str,
    event: &str,
    timestamp: Timestamp,
    data: &Value,
) -> Result<String, StoreError> {
    let body = json!({
        "event": event,
        "timestamp": timestamp,
        "data": data,
        "webhook_id": webhook_id,
    });
    let delivery = QueuedDelivery {
        webhook_id: webhook_id.to_owned(),
        event: event.to_owned(),
        body: body.to_string(),
    };
    outbox::enqueue(
        conn,
        crypto,
        WEBHOOK,
        Some(webhook_id),
        &serde_json::to_value(&delivery).expect("plain data"),
    )
}

/// A receiver's URL: absolute http(s), with a host, without credentials or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Parses and normalises a URL; the error says what is wrong, for a 422.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.chars().count() > MAX_URL_CHARS {
            return Err(format!("must be at most {MAX_URL_CHARS} characters"));
        }
        let url = url::Url::parse(text.trim())
            .map_err(|_| "must be an absolute http or https URL".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an absolute http or https URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            // They would be stored and shown in plain; the signature authenticates instead.
            return Err("must not carry credentials".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment".into());
        }
        Ok(Self(url.into()))
    }
}

/// The events a webhook subscribes to: at least one, each of [`EVENTS`], or [`EVERY_EVENT`]
/// alone; duplicates dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventList(Vec<String>);

impl EventList {
    /// Validates a subscription list; the error names the first unknown event.
    pub fn parse(names: Vec<String>) -> Result<Self, String> {
        if names.is_empty() {
            return Err("must name at least one event".into());
        }
        if names.iter().any(|n| n == EVERY_EVENT) {
            return Ok(Self(vec![EVERY_EVENT.to_owned()]));
        }
        let mut events: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if !EVENTS.contains(&name.as_str()) {
                return Err(format!(
                    "unknown event `{name}`; known events: {}, or {EVERY_EVENT} for all",
                    EVENTS.join(", ")
                ));
            }
            if !events.contains(&name) {
                events.push(name);
            }
        }
        Ok(Self(events))
    }
}

/// A secret chosen by the caller: 16 to 256 characters.
pub fn parse_secret(text: &str) -> Result<PlainToken, String> {
    let chars = text.chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(format!("must be at least {MIN_SECRET_CHARS} characters"));
    }
    if chars > MAX_SECRET_CHARS {
        return Err(format!("must be at most {MAX_SECRET_CHARS} characters"));
    }
    Ok(PlainToken::presented(text))
}

/// A description: at most 500 characters; blank means none.
pub fn parse_description(text: &str) -> Result<Option<String>, String> {
    crate::domain::text::line(text, MAX_DESCRIPTION_CHARS).map_err(|e| e.0)
}

/// A webhook to create, parsed at the door.
#[derive(Debug)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub events: EventList,
    /// The caller's secret; one is generated when absent.
    pub secret: Option<PlainToken>,
    pub active: bool,
    pub description: Option<String>,
}

/// How an update changes the secret.
#[derive(Debug)]
pub enum SecretChange {
    /// A fresh generated secret.
    Rotate,
    /// The caller's secret.
    Set(PlainToken),
}

/// The changes of an update (`None` leaves a field as it is).
#[derive(Debug, Default)]
pub struct WebhookUpdate {
    pub url: Option<WebhookUrl>,
    pub events: Option<EventList>,
    pub active: Option<bool>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub secret: Option<SecretChange>,
}

impl WebhookUpdate {
    fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.active.is_none()
            && self.description.is_none()
            && self.secret.is_none()
    }
}

/// A webhook as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub description: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i32,
    /// Why it was disabled automatically (cleared when it is activated again).
    pub disabled_reason: Option<String>,
    /// The latest attempt (seed 000's name).
    pub last_delivery: Option<Timestamp>,
    /// The latest successful attempt.
    pub last_success: Option<Timestamp>,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        Ok(Self {
            events: row.event_names()?,
            id: row.id,
            url: row.url,
            active: row.active,
            description: row.description,
            consecutive_failures: row.consecutive_failures,
            disabled_reason: row.disabled_reason,
            last_delivery: row.last_delivery_at.map(Timestamp),
            last_success: row.last_success_at.map(Timestamp),
            created_by: row.created_by,
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        })
    }
}

impl Webhook {
    /// What the audit log keeps of it.
    fn audit_values(&self) -> Value {
        json!({
            "url": self.url,
            "events": self.events,
            "active": self.active,
            "description": self.description,
            "disabled_reason": self.disabled_reason,
        })
    }
}

/// Creates a webhook, its secret sealed under its id; returns it with the secret in plain,
/// for the one response that shows it.
pub fn create(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    actor: &Actor,
    new: NewWebhook,
) -> Result<(Webhook, PlainToken), StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new
        .secret
        .unwrap_or_else(|| PlainToken::generate(SECRET_PREFIX));
    let at = now();
    let row = WebhookRow {
        secret: crypto.seal(secret.expose().as_bytes(), &id),
        id: id.clone(),
        url: new.url.0,
        events: to_json(&new.events.0),
        active: new.active,
        description: new.description,
        consecutive_failures: 0,
        disabled_reason: None,
        last_delivery_at: None,
        last_success_at: None,
        created_by: actor.user_id.clone(),
        created_at: at,
        updated_at: at,
    };
    write_transaction(conn, |conn| {
        rows::insert(conn, &row)?;
        let webhook = Webhook::try_from(row)?;
        audit::record(
            conn,
            actor,
            AuditEvent::new("webhook_created", "webhooks", Some(&id))
                .values(None, Some(webhook.audit_values())),
        )?;
        Ok((webhook, secret))
    })
}

/// One webhook.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Webhook, StoreError> {
    rows::find(conn, id)?.try_into()
}

/// A page of webhooks, oldest first (after the `(created_at, id)` position when given, else
/// from `offset`), and how many there are.
pub fn list(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Webhook>, i64), StoreError> {
    let total = rows::count(conn)?;
    let page = rows::page(conn, after, offset, limit)?
        .into_iter()
        .map(Webhook::try_from)
        .collect::<Result<_, _>>()?;
    Ok((page, total))
}

/// Applies an update; returns the webhook and, when the secret changed, the new one in plain.
/// Activating a webhook again clears its failure count and the reason it was disabled.
pub fn update(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    actor: &Actor,
    id: &str,
    update: WebhookUpdate,
) -> Result<(Webhook, Option<PlainToken>), StoreError> {
    write_transaction(conn, |conn| {
        let old = Webhook::try_from(rows::find(conn, id)?)?;
        if update.is_empty() {
            return Ok((old, None));
        }
        let reactivated = update.active == Some(true) && !old.active;
        let secret = update.secret.map(|change| match change {
            SecretChange::Rotate => PlainToken::generate(SECRET_PREFIX),
            SecretChange::Set(secret) => secret,
        });
        let changes = WebhookChanges {
            url: update.url.map(|u| u.0),
            events: update.events.map(|e| to_json(&e.0)),
            secret: secret
                .as_ref()
                .map(|s| crypto.seal(s.expose().as_bytes(), id)),
            active: update.active,
            description: update.description,
            consecutive_failures: reactivated.then_some(0),
            disabled_reason: reactivated.then_some(None),
            updated_at: now(),
        };
        rows::update(conn, id, &changes)?;
        let new = Webhook::try_from(rows::find(conn, id)?)?;
        let mut event = AuditEvent::new("webhook_updated", "webhooks", Some(id))
            .values(Some(old.audit_values()), Some(new.audit_values()));
        if secret.is_some() {
            event = event.info(json!({"signing_key_rotated": true}));
        }
        audit::record(conn, actor, event)?;
        Ok((new, secret))
    })
}

/// Deletes a webhook. Its deliveries still queued are marked failed at their next attempt.
pub fn delete(conn: &mut AnyConnection, actor: &Actor, id: &str) -> Result<(), StoreError> {
    write_transaction(conn, |conn| {
        let old = Webhook::try_from(rows::find(conn, id)?)?;
        rows::delete(conn, id)?;
        audit::record(
            conn,
            actor,
            AuditEvent::new("webhook_deleted", "webhooks", Some(id))
                .values(Some(old.audit_values()), None),
        )
    })
}

/// Queues a [`TEST_EVENT`] delivery to one webhook, through the same outbox and signing as
/// real events (also to an inactive webhook, so a repaired receiver can be checked before it
/// is activated again); returns the delivery's id.
pub fn queue_test(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    actor: &Actor,
    id: &str,
) -> Result<String, StoreError> {
    write_transaction(conn, |conn| {
        let hook = Webhook::try_from(rows::find(conn, id)?)?;
        let data = json!({
            "message": "A test delivery from Latchkey",
            "webhook": {"id": hook.id, "url": hook.url, "events": hook.events},
        });
        let delivery = queue(conn, crypto, id, TEST_EVENT, Timestamp(now()), &data)?;
        audit::record(
            conn,
            actor,
            AuditEvent::new("webhook_tested", "webhooks", Some(id))
                .info(json!({"delivery_id": delivery})),
        )?;
        Ok(delivery)
    })
}

/// One delivery of a webhook, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The outbox message's id, also sent as [`DELIVERY_HEADER`].
    pub id: String,
    /// The event delivered (null when the payload cannot be read with this key).
    pub event: Option<String>,
    pub status: OutboxStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// When it is tried next (only while pending).
    pub next_attempt_at: Option<Timestamp>,
}

/// A page of a webhook's deliveries, newest first (before the `(created_at, id)` position when
/// given, else from `offset`), and how many there are; [`StoreError::NotFound`] when the
/// webhook does not exist.
pub fn deliveries(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    webhook_id: &str,
    before: Option<(i64, String)>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Delivery>, i64), StoreError> {
    rows::find(conn, webhook_id)?;
    let (page, total) = outbox_rows::topic_page(conn, WEBHOOK, webhook_id, before, offset, limit)?;
    let deliveries = page
        .into_iter()
        .map(|row| {
            let status = match row.status.as_str() {
                outbox_rows::PENDING => OutboxStatus::Pending,
                outbox_rows::DELIVERED => OutboxStatus::Delivered,
                outbox_rows::FAILED => OutboxStatus::Failed,
                other => {
                    return Err(StoreError::Corrupt(anyhow::anyhow!(
                        "outbox status `{other}` is unknown"
                    )));
                }
            };
            let event = crypto
                .open(&row.payload, &row.id)
                .ok()
                .and_then(|plain| serde_json::from_slice::<QueuedDelivery>(&plain).ok())
                .map(|queued| queued.event);
            Ok(Delivery {
                event,
                next_attempt_at: (status == OutboxStatus::Pending)
                    .then_some(Timestamp(row.next_attempt_at)),
                status,
                id: row.id,
                attempts: row.attempts,
                last_error: row.last_error,
                created_at: Timestamp(row.created_at),
                delivered_at: row.delivered_at.map(Timestamp),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((deliveries, total))
}

/// The value of [`SIGNATURE_HEADER`]: `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`,
/// keyed with the secret's UTF-8 bytes. The timestamp lets a receiver refuse old replays.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut text = format!("t={timestamp},v1=");
    for byte in digest {
        write!(text, "{byte:02x}").expect("writing to a String does not fail");
    }
    text
}

/// Delivers one queued event (outbox message `delivery_id`): POSTs the stored body, signed
/// now, and records the outcome on the webhook. Errors never carry the URL or the secret.
pub(crate) async fn deliver(state: &AppState, delivery_id: &str, payload: Value) -> Outcome {
    let queued: QueuedDelivery = match serde_json::from_value(payload) {
        Ok(queued) => queued,
        Err(_) => return Outcome::Reject("the payload is not a webhook delivery".into()),
    };
    let id = queued.webhook_id.clone();
    let hook = match state.store.run(move |conn| rows::find(conn, &id)).await {
        Ok(hook) => hook,
        Err(StoreError::NotFound) => {
            return Outcome::Reject("the webhook no longer exists".into());
        }
        Err(error) => return Outcome::Retry(format!("database: {error}")),
    };
    if !hook.active && queued.event != TEST_EVENT {
        return Outcome::Reject("the webhook is disabled".into());
    }
    // Not decryptable: retried rather than failed, as for outbox payloads (an instance started
    // with the wrong key must not destroy the queue).
    let Ok(secret) = state.crypto.open(&hook.secret, &hook.id) else {
        return Outcome::Retry(
            "the secret cannot be decrypted with this key_encryption_key".into(),
        );
    };
    let http = match state.http.client_for(&hook.url) {
        Ok(http) => http,
        Err(error) => match error.downcast_ref::<crate::http::outbound::TargetRefused>() {
            Some(refused) => return Outcome::Reject(format!("refused: {refused}")),
            None => return Outcome::Retry(format!("outbound HTTP: {error}")),
        },
    };
    let response = http
        .post(&hook.url)
        .timeout(REQUEST_TIMEOUT)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("Latchkey-Webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(EVENT_HEADER, &queued.event)
        .header(DELIVERY_HEADER, delivery_id)
        .header(SIGNATURE_HEADER, signature(&secret, now(), &queued.body))
        .body(queued.body)
        .send()
        .await;
    let failure = match response {
        // Redirects are not followed (the client's policy), so a 3xx lands here as a failure.
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!(
            "the receiver answered {}",
            response.status().as_u16()
        )),
        Err(error) => Some(crate::http::outbound::describe(&error, "receiver")),
    };
    match failure {
        None => {
            let id = hook.id.clone();
            let at = now();
            if let Err(error) = state
                .store
                .run(move |conn| rows::record_success(conn, &id, at))
                .await
            {
                tracing::warn!(webhook_id = %hook.id, %error, "webhook success not recorded");
            }
            Outcome::Delivered
        }
        Some(error) => match record_failure(state, &hook.id, &error).await {
            Ok(true) => Outcome::Reject(format!("{error}; the webhook is now disabled")),
            Ok(false) => Outcome::Retry(error),
            Err(store_error) => {
                tracing::warn!(webhook_id = %hook.id, error = %store_error, "webhook failure not recorded");
                Outcome::Retry(error)
            }
        },
    }
}

/// Counts a failed attempt; at [`DISABLE_AFTER_FAILURES`] in a row, disables the webhook,
/// writes the audit entry and logs a warning. Returns whether this attempt disabled it.
async fn record_failure(
    state: &AppState,
    webhook_id: &str,
    error: &str,
) -> Result<bool, StoreError> {
    let id = webhook_id.to_owned();
    let reason = format!(
        "disabled after {DISABLE_AFTER_FAILURES} failed deliveries in a row; the last: {error}"
    );
    let (failures, disabled) = state
        .store
        .write(move |conn| {
            let at = now();
            let failures = rows::record_failure(conn, &id, at)?;
            if failures < DISABLE_AFTER_FAILURES || !rows::disable(conn, &id, &reason, at)? {
                return Ok((failures, false));
            }
            audit::record(
                conn,
                &Actor::system(),
                AuditEvent::new("webhook_disabled", "webhooks", Some(&id))
                    .values(
                        Some(json!({"active": true})),
                        Some(json!({"active": false, "disabled_reason": reason})),
                    )
                    .info(json!({"consecutive_failures": failures})),
            )?;
            Ok((failures, true))
        })
        .await?;
    if disabled {
        tracing::warn!(
            webhook_id,
            failures,
            "webhook disabled after failing too many times in a row"
        );
    }
    Ok(disabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body_in_lower_hex() {
        // Computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test_secret_value
        assert_eq!(
            signature(b"whsec_test_secret_value", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=12bb52e86aebe0a53377b285d3e47b7f6f2aa9f516f17cf3da31a40272150250"
        );
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials_or_fragment() {
        assert!(WebhookUrl::parse("https://hooks.example/in?x=1").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "/relative",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn event_lists_are_known_non_empty_and_deduplicated() {
        let events = EventList::parse(vec!["user.created".into(), "user.created".into()]).unwrap();
        assert_eq!(events.0, vec!["user.created".to_owned()]);
        assert!(EventList::parse(vec![]).is_err());
        assert!(EventList::parse(vec![TEST_EVENT.into()]).is_err());
        let every = EventList::parse(vec!["user.login".into(), "*".into()]).unwrap();
        assert_eq!(every.0, vec!["*".to_owned()]);
    }
}
