//! Events: the audit trail, and the durable outbox with what it delivers (mail, back-channel
//! logout tokens, webhooks) through supervised background workers.

pub mod audit;
pub mod backchannel;
pub mod email;
pub mod mailer;
pub mod outbox;
pub mod webhooks;

use std::sync::Arc;

use crate::startup::AppState;
use crate::workers::supervise;

/// Starts the supervised background workers (outbox delivery, housekeeping, signing-key
/// maintenance); they run until their handles are aborted.
pub fn spawn_workers(state: Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let on_panic = |state: &Arc<AppState>| {
        let metrics = state.metrics.clone();
        move |worker: &'static str| metrics.worker_panicked(worker)
    };
    let keys = state.keys.clone();
    let key_interval = state.settings.key_refresh_interval;
    let outbox = state.clone();
    let housekeeping = state.clone();
    vec![
        supervise(
            &state.workers,
            "outbox",
            state.settings.outbox.poll_interval,
            on_panic(&state),
            move |beat| outbox::run(outbox.clone(), beat),
        ),
        supervise(
            &state.workers,
            "housekeeping",
            crate::maintenance::INTERVAL,
            on_panic(&state),
            move |beat| crate::maintenance::run(housekeeping.clone(), beat),
        ),
        supervise(
            &state.workers,
            "keys",
            key_interval,
            on_panic(&state),
            move |beat| keys.clone().maintain(key_interval, beat),
        ),
    ]
}
