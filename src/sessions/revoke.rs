//! Ending sessions: a session is revoked with its grants, so its refresh tokens stop working
//! and its access tokens are inactive at once (every verification reads the grant), and every
//! client that took part in it is told through back-channel logout.

use crate::crypto::Crypto;
use crate::events::backchannel;
use crate::oauth::clients::find_client;
use crate::store::grants as grant_rows;
use crate::store::sessions as session_rows;
use crate::store::{AnyConnection, StoreError};

/// Queues the back-channel logout notices of an ended session.
fn notify_clients(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    session_id: &str,
) -> Result<usize, StoreError> {
    let session = session_rows::find(conn, session_id)?;
    let mut clients = Vec::new();
    for id in grant_rows::session_client_ids(conn, session_id)? {
        if let Some(client) = find_client(conn, &id)? {
            clients.push(client);
        }
    }
    backchannel::queue(conn, crypto, &clients, &session.user_id, session_id)
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
/// `offline_access`, which otherwise outlive the session that created them.
pub fn end_session(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    session_id: &str,
    include_offline: bool,
    reason: &str,
    now: i64,
) -> Result<Ended, StoreError> {
    let mut ended = Ended::default();
    if session_rows::revoke(conn, session_id, now)? {
        ended.sessions.push(session_id.to_owned());
        notify_clients(conn, crypto, session_id)?;
    }
    ended.grants =
        grant_rows::revoke_session_grants(conn, session_id, include_offline, reason, now)?;
    Ok(ended)
}

/// Ends every live session of a user except `keep`, and revokes every other grant of the user
/// (offline ones included) except `keep_grant`: what a password change or reset requires.
pub fn end_other_sessions(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    keep: Option<&str>,
    keep_grant: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<Ended, StoreError> {
    let mut ended = Ended::default();
    for session in session_rows::live_for_user(conn, user_id, now)? {
        if Some(session.id.as_str()) == keep {
            continue;
        }
        if session_rows::revoke(conn, &session.id, now)? {
            notify_clients(conn, crypto, &session.id)?;
            ended.sessions.push(session.id);
        }
    }
    ended.grants = grant_rows::revoke_user_grants(conn, user_id, keep_grant, reason, now)?;
    Ok(ended)
}
