//! The background workers (outbox delivery, housekeeping, signing-key maintenance) under
//! supervision: a worker that panics is logged, counted and started again after a pause, so
//! one bad job can never stop mail, webhooks or logout notices for good. Each worker beats a
//! heartbeat as it makes progress; `/health/detailed` and the `latchkey_worker_up` metric
//! report a worker that stopped or stalled.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::domain::{Timestamp, now};

/// The first pause before a panicked worker is started again; it doubles on each panic in a
/// row, up to [`MAX_RESTART_DELAY`].
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(250);
/// The longest pause between restarts.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// Slack beyond a worker's period before a missing heartbeat counts as a stall.
const STALL_SLACK_SECS: i64 = 60;

/// One worker's liveness, shared between the worker, its supervisor and the reporters.
#[derive(Debug)]
struct WorkerState {
    name: &'static str,
    period_secs: i64,
    last_beat: AtomicI64,
    running: AtomicBool,
    panics: AtomicU64,
}

/// The registry of this instance's workers.
#[derive(Debug, Default)]
pub struct Workers(Mutex<Vec<Arc<WorkerState>>>);

/// A worker's handle on its own heartbeat: [`Heartbeat::beat`] on every unit of progress.
#[derive(Debug, Clone)]
pub struct Heartbeat(Option<Arc<WorkerState>>);

impl Heartbeat {
    /// A heartbeat that reports nowhere, for one-off passes run outside a worker.
    pub fn detached() -> Self {
        Self(None)
    }

    /// Records that the worker is making progress.
    pub fn beat(&self) {
        if let Some(state) = &self.0 {
            state.last_beat.store(now(), Ordering::Relaxed);
        }
    }
}

/// How a worker stands, as `/health/detailed` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Running and beating.
    Healthy,
    /// Running, but no heartbeat for longer than its period allows.
    Stalled,
    /// Not running: it ended, or is waiting to be restarted after a panic.
    Stopped,
}

/// One worker in a health report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// The worker's name (`outbox`, `housekeeping`, `keys`).
    pub name: &'static str,
    /// How it stands.
    pub status: WorkerStatus,
    /// Its latest heartbeat.
    pub last_beat_at: Timestamp,
    /// Panics caught since this instance started.
    pub panics: u64,
}

impl Workers {
    /// Registers a worker that beats at least every `period`.
    fn register(&self, name: &'static str, period: Duration) -> Arc<WorkerState> {
        let state = Arc::new(WorkerState {
            name,
            period_secs: i64::try_from(period.as_secs()).unwrap_or(i64::MAX),
            last_beat: AtomicI64::new(now()),
            running: AtomicBool::new(false),
            panics: AtomicU64::new(0),
        });
        self.0
            .lock()
            .expect("the worker registry is never poisoned")
            .push(state.clone());
        state
    }

    /// Every registered worker, as it stands now.
    pub fn report(&self) -> Vec<WorkerReport> {
        let at = now();
        self.0
            .lock()
            .expect("the worker registry is never poisoned")
            .iter()
            .map(|worker| {
                let last_beat = worker.last_beat.load(Ordering::Relaxed);
                let status = if !worker.running.load(Ordering::Relaxed) {
                    WorkerStatus::Stopped
                } else if at - last_beat > worker.period_secs.saturating_mul(3) + STALL_SLACK_SECS {
                    WorkerStatus::Stalled
                } else {
                    WorkerStatus::Healthy
                };
                WorkerReport {
                    name: worker.name,
                    status,
                    last_beat_at: Timestamp(last_beat),
                    panics: worker.panics.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

/// Aborts the task it holds when dropped, so aborting a supervisor also stops its worker.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the worker `name` (built by `start` with its heartbeat) until it returns, starting it
/// again after each panic. `on_panic` is told of each panic (the metrics count them).
pub fn supervise<Start, Work>(
    workers: &Workers,
    name: &'static str,
    period: Duration,
    on_panic: impl Fn(&'static str) + Send + 'static,
    start: Start,
) -> tokio::task::JoinHandle<()>
where
    Start: Fn(Heartbeat) -> Work + Send + 'static,
    Work: Future<Output = ()> + Send + 'static,
{
    let worker = workers.register(name, period);
    tokio::spawn(async move {
        let mut delay = FIRST_RESTART_DELAY;
        loop {
            worker.last_beat.store(now(), Ordering::Relaxed);
            worker.running.store(true, Ordering::Relaxed);
            let mut task = AbortOnDrop(tokio::spawn(start(Heartbeat(Some(worker.clone())))));
            let ended = (&mut task.0).await;
            worker.running.store(false, Ordering::Relaxed);
            match ended {
                Ok(()) => return,
                Err(error) if error.is_panic() => {
                    worker.panics.fetch_add(1, Ordering::Relaxed);
                    on_panic(name);
                    tracing::error!(
                        worker = name,
                        panic = %panic_text(error.into_panic().as_ref()),
                        restart_in_ms = delay.as_millis() as u64,
                        "a background worker panicked; it will be started again"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RESTART_DELAY);
                }
                Err(_) => return,
            }
        }
    })
}

/// The message of a caught panic, when it carried text.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_panicking_worker_is_started_again_and_its_panics_are_counted() {
        let workers = Workers::default();
        let starts = Arc::new(AtomicUsize::new(0));
        let told = Arc::new(AtomicUsize::new(0));
        let (counted, seen) = (starts.clone(), told.clone());
        let handle = supervise(
            &workers,
            "flaky",
            Duration::from_secs(1),
            move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            },
            move |beat| {
                let run = counted.fetch_add(1, Ordering::Relaxed);
                async move {
                    beat.beat();
                    if run < 2 {
                        panic!("job {run} failed");
                    }
                    std::future::pending::<()>().await;
                }
            },
        );
        for _ in 0..100 {
            if starts.load(Ordering::Relaxed) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = workers.report();
        assert_eq!(starts.load(Ordering::Relaxed), 3);
        assert_eq!(told.load(Ordering::Relaxed), 2);
        assert_eq!(report[0].panics, 2);
        assert_eq!(report[0].status, WorkerStatus::Healthy);
        handle.abort();
    }

    #[tokio::test]
    async fn a_worker_that_ended_is_reported_stopped_and_a_silent_one_stalled() {
        let workers = Workers::default();
        let ended = supervise(
            &workers,
            "done",
            Duration::from_secs(1),
            |_| {},
            |_| async {},
        );
        ended.await.unwrap();
        let silent = workers.register("silent", Duration::from_secs(1));
        silent.running.store(true, Ordering::Relaxed);
        silent.last_beat.store(now() - 3600, Ordering::Relaxed);
        let report = workers.report();
        assert_eq!(report[0].status, WorkerStatus::Stopped);
        assert_eq!(report[1].status, WorkerStatus::Stalled);
    }

    #[test]
    fn the_text_of_a_panic_is_read_from_both_payload_kinds() {
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        let fixed: Box<dyn std::any::Any + Send> = Box::new("fixed");
        let other: Box<dyn std::any::Any + Send> = Box::new(7);
        assert_eq!(panic_text(owned.as_ref()), "owned");
        assert_eq!(panic_text(fixed.as_ref()), "fixed");
        assert_eq!(panic_text(other.as_ref()), "(no message)");
    }
}
