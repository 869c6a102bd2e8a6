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

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{AnyConnection, Manager};

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
        }
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
                .connect()
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

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;

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

    #[test]
    fn concurrent_writers_see_their_commit_before_returning_and_a_failed_one_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults();
        settings.database_url = DatabaseUrl::Sqlite(dir.path().join("writers.db"));
        let store = Store::open(&settings).unwrap();
        store
            .run_blocking(|conn| Ok(conn.batch_execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .unwrap();
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
}
