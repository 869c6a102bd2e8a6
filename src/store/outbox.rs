//! The `outbox` table: messages waiting for delivery (mail now; logout tokens and webhooks
//! later).
//!
//! A message is claimed by a guarded update that sets a lease (`claimed_until`), so of several
//! instances polling one database exactly one delivers it. The lease value doubles as a fencing
//! token: the outcome is written only by the claim that still holds it.

use diesel::prelude::*;

use super::schema::outbox;
use super::{AnyConnection, StoreError};

/// Status of a message still to deliver (possibly after a failed attempt).
pub const PENDING: &str = "pending";
/// Status of a message delivered.
pub const DELIVERED: &str = "delivered";
/// Status of a message given up on.
pub const FAILED: &str = "failed";

/// A message as stored. The payload is sealed under the row's id.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    /// The message's id, also the context its payload is sealed under.
    pub id: String,
    /// What delivers it (`email`, ...).
    pub kind: String,
    /// The sealed JSON payload.
    pub payload: String,
    /// [`PENDING`], [`DELIVERED`] or [`FAILED`].
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is due (again).
    pub next_attempt_at: i64,
    /// While set and in the future, one instance is delivering the message.
    pub claimed_until: Option<i64>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When the row last changed.
    pub updated_at: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// What the message is about (a webhook id, a client id), for listing deliveries.
    pub topic: Option<String>,
}

/// A message without its payload: what an operator may see.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxSummaryRow {
    /// See [`OutboxRow`] for each column.
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub next_attempt_at: i64,
    pub topic: Option<String>,
}

/// The outcome of a failed attempt.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Attempts made so far, this one included.
    pub attempts: i32,
    /// Why it failed (short, no secrets).
    pub last_error: &'a str,
    /// When to try again (ignored once `give_up`).
    pub next_attempt_at: i64,
    /// Whether the message is now marked failed.
    pub give_up: bool,
}

/// Inserts a new message.
pub fn insert(conn: &mut AnyConnection, row: &OutboxRow) -> Result<(), StoreError> {
    diesel::insert_into(outbox::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The message with this id, payload included (still sealed).
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<OutboxRow, StoreError> {
    Ok(outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .get_result(conn)?)
}

/// Ids of up to `limit` messages due at `now` and not claimed, the longest waiting first.
pub fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
    Ok(outbox::table
        .filter(outbox::status.eq(PENDING))
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::claimed_until
                .is_null()
                .or(outbox::claimed_until.lt(now)),
        )
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .limit(limit)
        .select(outbox::id)
        .load(conn)?)
}

/// Claims a due message until `lease_until` and returns it; `None` when it is not due or
/// another instance holds it. The guard is in the `UPDATE` itself, so of concurrent claims
/// exactly one changes the row on either backend.
pub fn claim(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<OutboxRow>, StoreError> {
    let changed = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::status.eq(PENDING))
            .filter(outbox::next_attempt_at.le(now))
            .filter(
                outbox::claimed_until
                    .is_null()
                    .or(outbox::claimed_until.lt(now)),
            ),
    )
    .set((
        outbox::claimed_until.eq(lease_until),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed != 1 {
        return Ok(None);
    }
    find(conn, id).map(Some)
}

/// Marks a claimed message delivered; returns false when the claim was lost meanwhile.
pub fn mark_delivered(
    conn: &mut AnyConnection,
    id: &str,
    lease_until: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::claimed_until.eq(lease_until)),
    )
    .set((
        outbox::status.eq(DELIVERED),
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::delivered_at.eq(now),
        outbox::claimed_until.eq(None::<i64>),
        outbox::last_error.eq(None::<String>),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Records a failed attempt of a claimed message and releases the claim; returns false when
/// the claim was lost meanwhile.
pub fn record_failure(
    conn: &mut AnyConnection,
    id: &str,
    lease_until: i64,
    failure: &Failure<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::claimed_until.eq(lease_until)),
    )
    .set((
        outbox::status.eq(if failure.give_up { FAILED } else { PENDING }),
        outbox::attempts.eq(failure.attempts),
        outbox::last_error.eq(failure.last_error),
        outbox::next_attempt_at.eq(failure.next_attempt_at),
        outbox::claimed_until.eq(None::<i64>),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The latest `limit` messages of one kind, newest first, without payloads.
pub fn list(
    conn: &mut AnyConnection,
    kind: &str,
    topic: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxSummaryRow>, StoreError> {
    let mut query = outbox::table.filter(outbox::kind.eq(kind)).into_boxed();
    if let Some(topic) = topic {
        query = query.filter(outbox::topic.eq(topic.to_owned()));
    }
    Ok(query
        .order((outbox::created_at.desc(), outbox::id.desc()))
        .limit(limit)
        .select(OutboxSummaryRow::as_select())
        .load(conn)?)
}

/// A page of the messages of one kind about one topic (a webhook's deliveries), newest first,
/// payloads included (still sealed): before the `(created_at, id)` of `before` when given,
/// else from `offset`. Also returns how many such messages there are.
pub fn topic_page(
    conn: &mut AnyConnection,
    kind: &str,
    topic: &str,
    before: Option<(i64, String)>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<OutboxRow>, i64), StoreError> {
    let total = outbox::table
        .filter(outbox::kind.eq(kind))
        .filter(outbox::topic.eq(topic))
        .count()
        .get_result(conn)?;
    let mut query = outbox::table
        .filter(outbox::kind.eq(kind))
        .filter(outbox::topic.eq(topic))
        .into_boxed();
    if let Some((created_at, id)) = before {
        query = query.filter(
            outbox::created_at
                .lt(created_at)
                .or(outbox::created_at.eq(created_at).and(outbox::id.lt(id))),
        );
    } else {
        query = query.offset(offset);
    }
    let rows = query
        .order((outbox::created_at.desc(), outbox::id.desc()))
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// How many messages wait for delivery, by kind.
pub fn pending_by_kind(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(outbox::table
        .filter(outbox::status.eq(PENDING))
        .group_by(outbox::kind)
        .select((outbox::kind, diesel::dsl::count_star()))
        .load(conn)?)
}
