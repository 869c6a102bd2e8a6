//! The writers of a SQLite store: one write transaction at a time for the whole process, and
//! one commit for every writer that was waiting (group commit).
//!
//! SQLite takes one writer at a time, and in its durable mode (`synchronous = full`) every
//! commit waits for an fsync of the write-ahead log: more than half of a refresh-token
//! rotation's time, as measured. So [`write_transaction`](super::write_transaction) does not
//! commit each writer's transaction on its own connection. The writers of the process take
//! turns on one connection kept for writing; each writer's work runs in a savepoint of the
//! transaction open there, so one that fails is undone alone; and a writer that finishes while
//! others wait for their turn leaves the transaction open for them. The last of such a group
//! commits for all (at most [`MAX_GROUP`] writers), and no writer returns before the commit
//! that holds its changes has succeeded, or fails with it. The work of a group runs one after
//! another, as it would have one transaction at a time, and other connections see all of it
//! or none of it.
//!
//! Async code ([`Store::write`](super::Store::write)) does not hold a blocking thread while it
//! waits: it queues its work for the writers' own thread, which takes all the work queued
//! (up to [`MAX_GROUP`]) into its turn, each piece in its own savepoint, and answers each
//! once their commit is over. A request waiting for its turn then holds no thread, no pooled
//! connection and none of the store's turns, so the groups are as large as the load makes
//! them, not as the pool.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::thread::Result as Caught;
use std::time::Instant;

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{AnyConnection, Manager, StoreError};

/// The most writers one commit covers, so that a steady stream of writers still commits (and
/// lets other processes, such as the CLI, take the lock) every so often.
const MAX_GROUP: usize = 32;

/// The turn of a SQLite store's writers, with the connection they write on.
pub struct Writers {
    manager: Manager,
    turn: Mutex<Turn>,
    /// Writers waiting for the turn: while there are any, a finished writer leaves the
    /// transaction open for them.
    waiting: AtomicUsize,
    /// The queue of the writers' thread, which starts at the first [`Writers::submit`].
    queue: OnceLock<Sender<Box<dyn Job>>>,
}

/// What the writer holding the turn works with.
#[derive(Default)]
struct Turn {
    /// The connection kept for writing: opened at the first write, dropped when it breaks.
    conn: Option<AnyConnection>,
    /// The group of the open transaction, if one is open.
    group: Option<Arc<Group>>,
    /// How many writers' work the open transaction holds.
    members: usize,
}

/// The writers whose work one transaction holds, and how its commit went.
#[derive(Default)]
struct Group {
    outcome: Mutex<Option<Result<(), String>>>,
    committed: Condvar,
}

impl Group {
    fn finish(&self, outcome: Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.committed.notify_all();
    }

    fn wait(&self) -> Result<(), String> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(done) = outcome.as_ref() {
                return done.clone();
            }
            outcome = self
                .committed
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A diesel error carrying `message`; `kind` decides how the store reports it.
fn failure(kind: DatabaseErrorKind, message: String) -> DieselError {
    DieselError::DatabaseError(kind, Box::new(message))
}

impl Writers {
    /// The writers of the SQLite database `manager` opens.
    pub(super) fn new(manager: Manager) -> Self {
        Self {
            manager,
            turn: Mutex::new(Turn::default()),
            waiting: AtomicUsize::new(0),
            queue: OnceLock::new(),
        }
    }

    /// Queues `work` for the writers' thread and waits, without holding a thread, for the
    /// commit of the transaction that holds it. Work still queued at `deadline` is not run:
    /// it fails as the database being unavailable.
    pub(super) async fn submit<T, F>(
        self: &Arc<Self>,
        deadline: Instant,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let stopped = || StoreError::Unavailable("the writers' thread has stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Queued {
            work: Some(work),
            deadline,
            outcome: None,
            reply,
        });
        self.queue()?.send(job).map_err(|_| stopped())?;
        match answer.await {
            Ok(Ok(result)) => result,
            // A panic inside the work is re-raised here, where the panic guard reports it.
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(stopped()),
        }
    }

    /// The writers' thread's queue, starting the thread if it is not running yet.
    fn queue(self: &Arc<Self>) -> Result<&Sender<Box<dyn Job>>, StoreError> {
        if let Some(queue) = self.queue.get() {
            return Ok(queue);
        }
        let (sender, receiver) = channel();
        let writers = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("latchkey-writer".into())
            .spawn(move || serve(&writers, &receiver))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the writers' thread: {e}"))
            })?;
        // Two first callers at once start a thread each; the one whose queue is not kept
        // finds it closed and ends.
        Ok(self.queue.get_or_init(|| sender))
    }

    /// Runs `work` in this process's write transaction, in its own savepoint, and returns
    /// once the transaction holding its changes has committed.
    pub(super) fn write<T, E>(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DieselError>,
    {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let group = match &turn.group {
            Some(group) => group.clone(),
            None => {
                let group = self.begin(&mut turn)?;
                turn.group = Some(group.clone());
                group
            }
        };
        let conn = turn
            .conn
            .as_mut()
            .expect("an open transaction has its connection");
        // Inside the open transaction, diesel makes this a savepoint.
        let done = catch_unwind(AssertUnwindSafe(|| conn.transaction(work)));
        if done.is_err() {
            // A panic left the savepoint open: undo this writer's work alone.
            let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
        }
        turn.members += 1;
        let committed = if self.waiting.load(Ordering::SeqCst) > 0 && turn.members < MAX_GROUP {
            // Another writer is waiting for the turn: it joins this transaction, and it
            // (or the last one after it) commits.
            drop(turn);
            group.wait()
        } else {
            let outcome = Self::commit(&mut turn);
            group.finish(outcome.clone());
            drop(turn);
            outcome
        };
        match done {
            Err(panic) => resume_unwind(panic),
            // Its own savepoint was rolled back; the commit does not change that.
            Ok(Err(error)) => Err(error),
            Ok(Ok(value)) => match committed {
                Ok(()) => Ok(value),
                Err(message) => Err(failure(DatabaseErrorKind::Unknown, message).into()),
            },
        }
    }

    /// Opens the connection if needed and begins a transaction that holds the write lock.
    fn begin(&self, turn: &mut Turn) -> Result<Arc<Group>, DieselError> {
        if turn.conn.is_none() {
            let conn = self
                .manager
                .open()
                .map_err(|error| failure(DatabaseErrorKind::ClosedConnection, error.to_string()))?;
            turn.conn = Some(conn);
        }
        let Some(AnyConnection::Sqlite(conn)) = turn.conn.as_mut() else {
            unreachable!("the writers of a SQLite store write on SQLite");
        };
        if let Err(error) = AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE") {
            Self::drop_if_broken(turn);
            return Err(error);
        }
        Ok(Arc::new(Group::default()))
    }

    /// Commits the open transaction; the group is over either way.
    fn commit(turn: &mut Turn) -> Result<(), String> {
        turn.group = None;
        turn.members = 0;
        let conn = turn
            .conn
            .as_mut()
            .expect("an open transaction has its connection");
        let outcome = <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)
            .map_err(|error| error.to_string());
        if outcome.is_err() {
            tracing::error!(error = ?outcome, "the writers' commit failed");
        }
        Self::drop_if_broken(turn);
        outcome
    }

    /// Drops the connection if it is left inside a transaction or broken; the next writer
    /// opens another.
    fn drop_if_broken(turn: &mut Turn) {
        let Some(conn) = turn.conn.as_mut() else {
            return;
        };
        let idle =
            <AnyConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
                .transaction_depth()
                .is_ok_and(|depth| depth.is_none());
        if !idle || conn.is_broken() {
            turn.conn = None;
        }
    }
}

/// The writers' thread: takes the queued work into one turn, as much as is waiting (up to
/// [`MAX_GROUP`]), and answers each piece once the turn's commit is over. Ends when the store
/// is gone.
fn serve(writers: &Weak<Writers>, queue: &Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_GROUP - 1));
        let Some(writers) = writers.upgrade() else {
            return;
        };
        let turn = writers.write(|conn| {
            for job in &mut batch {
                job.run(conn);
            }
            Ok::<(), DieselError>(())
        });
        let failed = turn.err().map(|error| match error {
            DieselError::DatabaseError(kind, info) => (kind, info.message().to_owned()),
            other => (DatabaseErrorKind::Unknown, other.to_string()),
        });
        for job in batch {
            job.answer(failed.as_ref());
        }
    }
}

/// Work queued by [`Writers::submit`], as the writers' thread sees it.
trait Job: Send {
    /// Runs the work in its own savepoint of the open transaction (unless its deadline has
    /// passed), keeping its outcome for the answer.
    fn run(&mut self, conn: &mut AnyConnection);
    /// Answers the submitter: the work's own outcome, or the failure of the turn that held
    /// it (`failed`: the error's kind and message), in which case nothing of it was kept.
    fn answer(self: Box<Self>, failed: Option<&(DatabaseErrorKind, String)>);
}

/// Queued work returning `T`, with the channel of its answer.
struct Queued<T, F> {
    work: Option<F>,
    deadline: Instant,
    outcome: Option<Caught<Result<T, StoreError>>>,
    reply: tokio::sync::oneshot::Sender<Caught<Result<T, StoreError>>>,
}

impl<T, F> Job for Queued<T, F>
where
    T: Send,
    F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &mut AnyConnection) {
        let Some(work) = self.work.take() else {
            return;
        };
        if Instant::now() >= self.deadline {
            self.outcome = Some(Ok(Err(StoreError::Unavailable(
                "no turn to write came in time".into(),
            ))));
            return;
        }
        // Inside the open transaction, diesel makes this a savepoint.
        let done = catch_unwind(AssertUnwindSafe(|| conn.transaction(work)));
        if done.is_err() {
            // A panic left the savepoint open: undo this work alone.
            let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
        }
        self.outcome = Some(done);
    }

    fn answer(self: Box<Self>, failed: Option<&(DatabaseErrorKind, String)>) {
        let answer = match (self.outcome, failed) {
            (Some(Err(panic)), _) => Err(panic),
            // Its own savepoint was rolled back; the commit does not change that.
            (Some(Ok(Err(error))), _) => Ok(Err(error)),
            (Some(Ok(Ok(value))), None) => Ok(Ok(value)),
            (_, Some((kind, message))) => Ok(Err(failure(*kind, message.clone()).into())),
            (None, None) => Ok(Err(StoreError::Unavailable("the write was not run".into()))),
        };
        // A submitter that stopped waiting (its request went away) needs no answer.
        let _ = self.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;

    use std::sync::atomic::Ordering;

    use super::Writers;
    use crate::config::{DatabaseUrl, Settings};
    use crate::store::{Store, StoreError, write_transaction};

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn numbers(store: &Store) -> Vec<i64> {
        store
            .run_blocking(|conn| {
                Ok(diesel::sql_query("SELECT n FROM t ORDER BY n").load::<Row>(conn)?)
            })
            .unwrap()
            .into_iter()
            .map(|row| row.n)
            .collect()
    }

    /// A SQLite store in `dir` with one table `t (n)`, and the database timeout `timeout`.
    fn store_with_table(dir: &tempfile::TempDir, timeout: Option<std::time::Duration>) -> Store {
        let mut settings = Settings::defaults();
        settings.database_url = DatabaseUrl::Sqlite(dir.path().join("writers.db"));
        if let Some(timeout) = timeout {
            settings.database_timeout = timeout;
        }
        let store = Store::open(&settings).unwrap();
        store
            .run_blocking(|conn| Ok(conn.batch_execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .unwrap();
        store
    }

    /// A blocking writer that inserts `n` and then holds the turn until `released` says so
    /// (given the writers); returns once it holds the turn.
    fn holding_the_turn(
        store: &Store,
        n: i64,
        released: impl Fn(&Writers) -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<Result<(), StoreError>> {
        let (holding, held) = std::sync::mpsc::channel();
        let writers = store.writers.clone().unwrap();
        let store = store.clone();
        let holder = std::thread::spawn(move || {
            store.run_blocking(|conn| {
                write_transaction(conn, |conn| {
                    diesel::sql_query(format!("INSERT INTO t VALUES ({n})")).execute(conn)?;
                    holding.send(()).unwrap();
                    while !released(&writers) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Ok::<_, StoreError>(())
                })
            })
        });
        held.recv().unwrap();
        holder
    }

    #[test]
    fn concurrent_writers_see_their_commit_before_returning_and_a_failed_one_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_table(&dir, None);
        std::thread::scope(|scope| {
            for n in 0..24_i64 {
                let store = &store;
                scope.spawn(move || {
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        store.run_blocking(|conn| {
                            write_transaction(conn, |conn| {
                                diesel::sql_query(format!("INSERT INTO t VALUES ({n})"))
                                    .execute(conn)?;
                                match n % 3 {
                                    0 => Ok(()),
                                    1 => Err(StoreError::NotFound),
                                    _ => panic!("writer {n} fails after its insert"),
                                }
                            })
                        })
                    }));
                    // Once a writer returns, its row is committed (seen from another
                    // connection) exactly when it succeeded.
                    let committed = matches!(outcome, Ok(Ok(())));
                    assert_eq!(numbers(store).contains(&n), committed, "writer {n}");
                });
            }
        });
        let expected: Vec<i64> = (0..24).filter(|n| n % 3 == 0).collect();
        assert_eq!(numbers(&store), expected);
    }

    /// The async path: requests queued for the writers' thread, some of them while a
    /// blocking writer holds the turn, so that they share a transaction with each other and
    /// with it.
    #[test]
    fn queued_writers_share_a_turn_yet_each_is_answered_by_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_table(&dir, None);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // A blocking writer holds the turn until the writers' thread waits for it.
        let holder = holding_the_turn(&store, 100, |writers| {
            writers.waiting.load(Ordering::SeqCst) > 0
        });
        let tasks: Vec<_> = (0..24_i64)
            .map(|n| {
                let store = store.clone();
                runtime.spawn(async move {
                    let outcome = store
                        .write(move |conn| {
                            diesel::sql_query(format!("INSERT INTO t VALUES ({n})"))
                                .execute(conn)?;
                            match n % 3 {
                                0 => Ok(n),
                                1 => Err(StoreError::Conflict {
                                    constraint: format!("writer {n}"),
                                }),
                                _ => panic!("writer {n} fails after its insert"),
                            }
                        })
                        .await;
                    // Answered only once committed: another connection sees the row.
                    let seen = numbers(&store).contains(&n);
                    (outcome, seen)
                })
            })
            .collect();
        for (n, task) in (0..24_i64).zip(tasks) {
            match runtime.block_on(task) {
                Ok((Ok(value), seen)) => {
                    assert_eq!((n % 3, value), (0, n));
                    assert!(seen, "writer {n} answered before its commit");
                }
                Ok((Err(StoreError::Conflict { constraint }), seen)) => {
                    assert_eq!(n % 3, 1);
                    assert_eq!(constraint, format!("writer {n}"), "another writer's error");
                    assert!(!seen, "writer {n}'s failed work was kept");
                }
                Ok((Err(other), _)) => panic!("writer {n}: unexpected {other}"),
                Err(join) => assert!(join.is_panic() && n % 3 == 2, "writer {n}: {join}"),
            }
        }
        holder.join().unwrap().unwrap();
        let mut expected: Vec<i64> = (0..24).filter(|n| n % 3 == 0).collect();
        expected.push(100);
        assert_eq!(numbers(&store), expected);
    }

    /// Work still queued when the database timeout has passed is not run.
    #[test]
    fn queued_work_past_the_database_timeout_is_refused_and_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_table(&dir, Some(std::time::Duration::from_millis(100)));
        // The holder lets go once the queued work waits and its deadline has passed.
        let since = std::time::Instant::now();
        let holder = holding_the_turn(&store, 1, move |writers| {
            writers.waiting.load(Ordering::SeqCst) > 0
                && since.elapsed() > std::time::Duration::from_millis(150)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let late = runtime.block_on(store.write(|conn| {
            diesel::sql_query("INSERT INTO t VALUES (2)").execute(conn)?;
            Ok(())
        }));
        assert!(
            matches!(late, Err(StoreError::Unavailable(_))),
            "late work was answered with {late:?}"
        );
        holder.join().unwrap().unwrap();
        assert_eq!(numbers(&store), vec![1]);
    }
}
