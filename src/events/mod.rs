//! Events: the durable outbox and what it delivers (mail now; back-channel logout tokens and
//! webhooks later).

pub mod audit;
pub mod backchannel;
pub mod email;
pub mod mailer;
pub mod outbox;
pub mod webhooks;

use std::sync::Arc;

use crate::startup::AppState;

/// Starts the background workers that deliver queued messages; they run until aborted.
pub fn spawn_workers(state: Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![tokio::spawn(outbox::run(state))]
}
