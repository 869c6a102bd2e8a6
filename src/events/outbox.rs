//! The durable outbox: a message is written in the same transaction as the change that causes
//! it (a rollback queues nothing, a commit loses nothing), then delivered by a background
//! worker with retries and exponential backoff.
//!
//! Several instances may poll one database: each message is claimed by a guarded update that
//! sets a lease, and only the instance whose update changed the row delivers it. A process that
//! dies mid-delivery leaves a lease that expires, and the message is tried again: delivery is
//! at least once, and exactly once unless a process stops between sending and recording.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use serde::Serialize;

use futures_util::FutureExt;

use super::mailer::{self, Mailer, OutgoingEmail, SendError};
use crate::config::OutboxSettings;
use crate::crypto::Crypto;
use crate::domain::{Timestamp, now};
use crate::startup::AppState;
use crate::store::outbox::{self as rows, Failure, OutboxRow};
use crate::store::{AnyConnection, StoreError};
use crate::workers::{Heartbeat, panic_text};

/// The kind of an outbox message carrying an [`OutgoingEmail`].
pub const EMAIL: &str = "email";

/// Due messages read per query while draining.
const BATCH: i64 = 50;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up on after too many attempts, or undeliverable as it is.
    Failed,
}

impl OutboxStatus {
    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            rows::PENDING => Ok(Self::Pending),
            rows::DELIVERED => Ok(Self::Delivered),
            rows::FAILED => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(anyhow::anyhow!(
                "outbox status `{other}` is unknown"
            ))),
        }
    }
}

/// A message as operators see it (the admin API's outbox listing): never the payload.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    /// The message's id (a UUIDv7, so ids sort by creation).
    pub id: String,
    /// What delivers it (`email`, ...).
    pub kind: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// Why the latest attempt failed (short, without addresses or links).
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// When it is tried next (while pending).
    pub next_attempt_at: Timestamp,
    /// What it is about (a webhook id, a client id).
    pub topic: Option<String>,
}

/// Queues a message of `kind` for delivery; returns its id. Call it inside the transaction of
/// the change that causes the message. The payload is sealed under the id, because mails carry
/// one-time links.
pub fn enqueue(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    kind: &str,
    topic: Option<&str>,
    payload: &serde_json::Value,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let plain = serde_json::to_vec(payload).expect("a JSON value serialises");
    let at = now();
    rows::insert(
        conn,
        &OutboxRow {
            payload: crypto.seal(&plain, &id),
            id: id.clone(),
            kind: kind.to_owned(),
            status: rows::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: at,
            claimed_until: None,
            last_error: None,
            created_at: at,
            updated_at: at,
            delivered_at: None,
            topic: topic.map(str::to_owned),
        },
    )?;
    Ok(id)
}

/// The latest `limit` messages of `kind`, newest first, without their payloads.
pub fn list(
    conn: &mut AnyConnection,
    kind: &str,
    topic: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxEntry>, StoreError> {
    rows::list(conn, kind, topic, limit)?
        .into_iter()
        .map(|row| {
            Ok(OutboxEntry {
                status: OutboxStatus::parse(&row.status)?,
                id: row.id,
                kind: row.kind,
                attempts: row.attempts,
                last_error: row.last_error,
                created_at: Timestamp(row.created_at),
                delivered_at: row.delivered_at.map(Timestamp),
                next_attempt_at: Timestamp(row.next_attempt_at),
                topic: row.topic,
            })
        })
        .collect()
}

/// One pass: claims and delivers every message due now; returns how many were delivered.
/// The worker calls it on every tick; tests and admin tasks may call it directly.
pub async fn deliver_due(state: &AppState) -> anyhow::Result<usize> {
    let mailer = Mailer::new(&state.settings.mail).context("build the mailer")?;
    drain(state, &mailer, &Heartbeat::detached()).await
}

/// Delivers due messages every `outbox.poll_interval` until the process stops, beating
/// `heartbeat` on every tick and every message.
pub async fn run(state: Arc<AppState>, heartbeat: Heartbeat) {
    let mut ticker = tokio::time::interval(state.settings.outbox.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mailer = None;
    let mut mailer_error_logged = false;
    loop {
        ticker.tick().await;
        heartbeat.beat();
        if mailer.is_none() {
            match Mailer::new(&state.settings.mail) {
                Ok(built) => mailer = Some(built),
                Err(error) => {
                    if !mailer_error_logged {
                        tracing::error!(error = %format!("{error:#}"), "mail cannot be sent");
                        mailer_error_logged = true;
                    }
                    continue;
                }
            }
        }
        let Some(mailer) = &mailer else { continue };
        match drain(&state, mailer, &heartbeat).await {
            Ok(0) => {}
            Ok(delivered) => tracing::debug!(delivered, "outbox messages delivered"),
            Err(error) => tracing::warn!(error = %format!("{error:#}"), "outbox pass failed"),
        }
        state.metrics.outbox_pass_finished();
    }
}

/// Claims and delivers due messages until none is left that this pass has not tried.
async fn drain(state: &AppState, mailer: &Mailer, heartbeat: &Heartbeat) -> anyhow::Result<usize> {
    let mut tried = HashSet::new();
    let mut delivered = 0;
    loop {
        let at = now();
        let due = state
            .store
            .run(move |conn| rows::due(conn, at, BATCH))
            .await
            .context("list due outbox messages")?;
        let fresh: Vec<String> = due
            .into_iter()
            .filter(|id| tried.insert(id.clone()))
            .collect();
        if fresh.is_empty() {
            return Ok(delivered);
        }
        for id in fresh {
            if deliver_one(state, mailer, id).await? {
                delivered += 1;
            }
            heartbeat.beat();
        }
    }
}

/// What became of one attempt.
pub(crate) enum Outcome {
    Delivered,
    /// This attempt failed; try again after the backoff (or give up after `max_attempts`).
    Retry(String),
    /// The message can never be delivered as it is: mark it failed now.
    Reject(String),
}

/// Claims one message and, if this instance got it, delivers it and records the outcome.
/// Returns whether it was delivered.
async fn deliver_one(state: &AppState, mailer: &Mailer, id: String) -> anyhow::Result<bool> {
    let claimed_at = now();
    let lease_until = claimed_at + lease_secs(state);
    let claimed = {
        let id = id.clone();
        state
            .store
            .run(move |conn| rows::claim(conn, &id, claimed_at, lease_until))
            .await
            .context("claim an outbox message")?
    };
    let Some(message) = claimed else {
        // Another instance claimed it first, or it is no longer due.
        return Ok(false);
    };
    // Bounded well inside the lease, so the outcome is recorded before another instance may
    // claim the message again.
    let limit = Duration::from_secs(lease_secs(state) as u64 / 2);
    // A deliverer that panics fails its own message, with the reason, and no other: the
    // worker goes on with the next.
    let guarded = std::panic::AssertUnwindSafe(attempt(state, mailer, &message)).catch_unwind();
    let outcome = match tokio::time::timeout(limit, guarded).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => {
            let reason = panic_text(panic.as_ref());
            tracing::error!(id = %message.id, kind = %message.kind, panic = %reason, "an outbox deliverer panicked");
            Outcome::Reject(mailer::shorten(&format!("the deliverer failed: {reason}")))
        }
        Err(_) => Outcome::Retry("delivery timed out".into()),
    };
    let (recorded, delivered) = match outcome {
        Outcome::Delivered => {
            let done = now();
            let recorded = state
                .store
                .run(move |conn| rows::mark_delivered(conn, &id, lease_until, done))
                .await
                .context("record an outbox delivery")?;
            tracing::debug!(id = %message.id, kind = %message.kind, "outbox message delivered");
            (recorded, true)
        }
        Outcome::Retry(error) => (
            record_failure(state, &message, lease_until, error, false).await?,
            false,
        ),
        Outcome::Reject(error) => (
            record_failure(state, &message, lease_until, error, true).await?,
            false,
        ),
    };
    if !recorded {
        tracing::warn!(id = %message.id, "the outbox claim expired before the outcome was recorded");
    }
    Ok(delivered && recorded)
}

/// Records a failed attempt: back off and release the claim, or give up when the message was
/// rejected or has used its `max_attempts`.
async fn record_failure(
    state: &AppState,
    message: &OutboxRow,
    lease_until: i64,
    error: String,
    rejected: bool,
) -> anyhow::Result<bool> {
    let attempts = message.attempts.saturating_add(1);
    let give_up = rejected || attempts as u32 >= state.settings.outbox.max_attempts;
    let done = now();
    let next_attempt_at = done + retry_delay(&state.settings.outbox, attempts as u32);
    if give_up {
        tracing::warn!(
            id = %message.id, kind = %message.kind, attempts, %error,
            "outbox message failed for good"
        );
    } else {
        tracing::warn!(
            id = %message.id, kind = %message.kind, attempts, %error,
            retry_at = next_attempt_at, "outbox delivery failed; will retry"
        );
    }
    let id = message.id.clone();
    state
        .store
        .run(move |conn| {
            let failure = Failure {
                attempts,
                last_error: &error,
                next_attempt_at,
                give_up,
            };
            rows::record_failure(conn, &id, lease_until, &failure, done)
        })
        .await
        .context("record an outbox failure")
}

/// Opens the payload and hands it to the deliverer of its kind: the one place to extend when
/// a new kind of message (logout token, webhook) is added.
async fn attempt(state: &AppState, mailer: &Mailer, message: &OutboxRow) -> Outcome {
    let payload = match open_payload(state, message) {
        Ok(payload) => payload,
        Err(outcome) => return outcome,
    };
    match message.kind.as_str() {
        EMAIL => deliver_email(mailer, &message.id, payload).await,
        super::backchannel::BACKCHANNEL_LOGOUT => super::backchannel::deliver(state, payload).await,
        super::webhooks::WEBHOOK => super::webhooks::deliver(state, &message.id, payload).await,
        other => Outcome::Reject(mailer::shorten(&format!(
            "unknown message kind `{other}`: no deliverer handles it"
        ))),
    }
}

/// Decrypts and parses a payload. A payload that does not open is retried rather than failed
/// at once: an instance started with the wrong key must not destroy the queue.
fn open_payload(state: &AppState, message: &OutboxRow) -> Result<serde_json::Value, Outcome> {
    let plain = state
        .crypto
        .open(&message.payload, &message.id)
        .map_err(|_| {
            Outcome::Retry("the payload cannot be decrypted with this key_encryption_key".into())
        })?;
    serde_json::from_slice(&plain).map_err(|_| Outcome::Reject("the payload is not JSON".into()))
}

async fn deliver_email(mailer: &Mailer, id: &str, payload: serde_json::Value) -> Outcome {
    let email: OutgoingEmail = match serde_json::from_value(payload) {
        Ok(email) => email,
        Err(_) => return Outcome::Reject("the payload is not an email".into()),
    };
    match mailer.send(id, &email).await {
        Ok(()) => Outcome::Delivered,
        Err(SendError::Failed(error)) => Outcome::Retry(error),
        Err(SendError::Rejected(error)) => Outcome::Reject(error),
    }
}

/// How long a claim lasts: long enough for a slow SMTP exchange (several commands, each
/// bounded by the SMTP timeout), short enough that a crashed instance delays mail little.
fn lease_secs(state: &AppState) -> i64 {
    let smtp_timeout = state
        .settings
        .mail
        .smtp
        .as_ref()
        .map_or(0, |smtp| smtp.timeout.as_secs());
    60 + 4 * smtp_timeout as i64
}

/// Seconds until the next attempt after `attempts` failures: `base · 2^(attempts−1)`, at most
/// `max`, plus up to a fifth more at random so that messages failed together spread out.
fn retry_delay(settings: &OutboxSettings, attempts: u32) -> i64 {
    let exponential = settings
        .backoff_base_secs
        .saturating_mul(2u64.saturating_pow(attempts.saturating_sub(1)));
    let delay = exponential.min(settings.backoff_max_secs);
    let jitter = rand::thread_rng().gen_range(0..=delay / 5);
    i64::try_from(delay + jitter).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base: u64, max: u64) -> OutboxSettings {
        OutboxSettings {
            poll_interval: Duration::from_secs(1),
            backoff_base_secs: base,
            backoff_max_secs: max,
            max_attempts: 20,
        }
    }

    #[test]
    fn retry_delay_doubles_up_to_the_maximum_with_bounded_jitter() {
        let s = settings(5, 3600);
        for (attempts, expected) in [(1, 5), (2, 10), (3, 20), (4, 40), (10, 2560), (11, 3600)] {
            let delay = retry_delay(&s, attempts);
            assert!(
                (expected..=expected + expected / 5).contains(&delay),
                "attempt {attempts}: {delay}s, expected about {expected}s"
            );
        }
        assert!(retry_delay(&s, 200) <= 3600 + 720);
    }

    #[test]
    fn status_round_trips_and_refuses_unknown_values() {
        assert_eq!(
            OutboxStatus::parse("delivered").unwrap(),
            OutboxStatus::Delivered
        );
        assert!(OutboxStatus::parse("lost").is_err());
    }
}
