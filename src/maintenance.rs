//! Periodic housekeeping every instance runs: expired pending requests, codes, revocation
//! records, used assertion ids, ended rate-limit windows and login throttles are deleted, and
//! the sealed successors kept for the refresh grace window are forgotten once it has passed. Each step is an idempotent statement, so
//! instances running it at the same time do no harm.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::now;
use crate::startup::AppState;
use crate::store::{StoreError, authorization_requests, clients, grants, rate_limits, throttles};

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Deletes what has expired; returns the number of rows touched.
pub async fn sweep(state: &AppState) -> Result<usize, StoreError> {
    let grace = state.settings.refresh_reuse_grace_secs as i64;
    state
        .store
        .run(move |conn| {
            let at = now();
            Ok(authorization_requests::delete_expired(conn, at)?
                + grants::delete_expired(conn, at)?
                + grants::forget_successors(conn, at - grace)?
                + clients::delete_expired_assertions(conn, at)?
                + rate_limits::delete_expired(conn, at)?
                + throttles::delete_expired(conn, at)?)
        })
        .await
}

/// Runs housekeeping until the process stops.
pub async fn run(state: Arc<AppState>, heartbeat: crate::workers::Heartbeat) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sweep(&state).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "expired rows removed"),
            Err(error) => tracing::warn!(%error, "housekeeping failed"),
        }
        heartbeat.beat();
    }
}
