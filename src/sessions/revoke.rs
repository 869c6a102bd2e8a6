//! Ending sessions: a session is revoked with its grants, so its refresh tokens stop working
//! and its access tokens are inactive at once (every verification reads the grant), and every
//! client that took part in it is told through back-channel logout. Each ended session is
//! written to the audit log (`session_revoked`) and reported to the `session.revoked` webhooks,
//! in the caller's transaction.

use serde_json::json;

use crate::crypto::Crypto;
use crate::events::audit::{self, Actor, AuditEvent};
use crate::events::{backchannel, webhooks};
use crate::oauth::clients::find_client;
use crate::store::grants as grant_rows;
use crate::store::sessions::{self as session_rows, SessionRow};
use crate::store::{AnyConnection, StoreError};

/// Who ends sessions, why and when: what the audit log, the grants and the webhooks record.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    /// Who did it (the person, an administrator, or the system), from where.
    pub actor: &'a Actor,
    /// Why (`logout`, `password changed`, `session revoked`, ...).
    pub reason: &'a str,
    /// When (unix seconds).
    pub at: i64,
}

/// What follows the end of one session: back-channel logout notices, the audit entry and the
/// `session.revoked` webhooks.
fn session_ended(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    session: &SessionRow,
    revocation: &Revocation<'_>,
) -> Result<(), StoreError> {
    let mut clients = Vec::new();
    for id in grant_rows::session_client_ids(conn, &session.id)? {
        if let Some(client) = find_client(conn, &id)? {
            clients.push(client);
        }
    }
    backchannel::queue(conn, crypto, &clients, &session.user_id, &session.id)?;
    audit::record(
        conn,
        revocation.actor,
        AuditEvent::new("session_revoked", "sessions", Some(&session.id)).info(json!({
            "reason": revocation.reason,
            "user_id": session.user_id,
            "kind": session.kind,
        })),
    )?;
    webhooks::emit(
        conn,
        crypto,
        "session.revoked",
        json!({
            "session": {"id": session.id, "user_id": session.user_id},
            "reason": revocation.reason,
        }),
    )?;
    Ok(())
}

/// What ending sessions revoked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The sessions ended.
    pub sessions: Vec<String>,
    /// The grants revoked with them.
    pub grants: Vec<String>,
}

/// Ends one session and its grants. `include_offline` also revokes grants with
/// `offline_access`, which otherwise outlive the session that created them. Call it inside a
/// transaction, so the session ends if and only if its audit entry is written.
pub fn end_session(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    session_id: &str,
    include_offline: bool,
    revocation: &Revocation<'_>,
) -> Result<Ended, StoreError> {
    let mut ended = Ended::default();
    if session_rows::revoke(conn, session_id, revocation.at)? {
        let session = session_rows::find(conn, session_id)?;
        session_ended(conn, crypto, &session, revocation)?;
        ended.sessions.push(session.id);
    }
    ended.grants = grant_rows::revoke_session_grants(
        conn,
        session_id,
        include_offline,
        revocation.reason,
        revocation.at,
    )?;
    Ok(ended)
}

/// Ends every live session of a user except `keep`, and revokes every other grant of the user
/// (offline ones included) except `keep_grant`: what a password change or reset requires.
/// Call it inside a transaction, like [`end_session`].
pub fn end_other_sessions(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    keep: Option<&str>,
    keep_grant: Option<&str>,
    revocation: &Revocation<'_>,
) -> Result<Ended, StoreError> {
    let mut ended = Ended::default();
    for session in session_rows::live_for_user(conn, user_id, revocation.at)? {
        if Some(session.id.as_str()) == keep {
            continue;
        }
        if session_rows::revoke(conn, &session.id, revocation.at)? {
            session_ended(conn, crypto, &session, revocation)?;
            ended.sessions.push(session.id);
        }
    }
    ended.grants = grant_rows::revoke_user_grants(
        conn,
        user_id,
        keep_grant,
        revocation.reason,
        revocation.at,
    )?;
    Ok(ended)
}
