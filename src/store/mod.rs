//! Storage: one diesel code base over SQLite (the embedded default) and PostgreSQL (scale-out).
//!
//! Everything SQL lives under this module. Capability code calls the functions of the table
//! modules through [`Store::run`], which moves the blocking diesel work off the async executor.
//!
//! Lookups by key end in `get_result`, not `first`: `first` binds its `LIMIT` as a parameter,
//! and SQLite's planner reads that value, so every new binding expires the cached statement
//! and it is parsed and planned again on each call (half the CPU of a userinfo request, as
//! profiled). A key matches one row, so the limit adds nothing.

/// Runs `$query` on the backend's own connection instead of through [`AnyConnection`], for the
/// reads on the hot paths (token state, the account and client of a request). The
/// multi-backend connection's query type has no static id, so diesel writes every query out as
/// SQL text to find its prepared statement: a tenth of a UserInfo request's CPU, as profiled.
/// On the backend's own connection the statement is found by the query's type.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $query:expr) => {
        match $conn {
            $crate::store::AnyConnection::Postgresql($c) => $query,
            $crate::store::AnyConnection::Sqlite($c) => $query,
        }
    };
}

/// Makes `$statement` (a struct with one lifetime) a query that writes a fixed SQL text around
/// its binds, in `$walk` (given the statement and diesel's `AstPass`), and that diesel keeps
/// prepared and finds again by its type. Diesel prepares every `UPDATE`, and on SQLite every
/// `INSERT` of a struct, afresh on each run, since their text may differ between two runs of
/// one Rust type; the hot paths' writes (a refresh-token rotation's) are written out this way
/// instead, and skip SQLite's parser and planner. Binds may be text and integers, nullable or
/// not: what both backends accept.
macro_rules! kept_prepared {
    ($statement:ident, |$this:ident, $out:ident| $walk:block) => {
        impl diesel::query_builder::QueryId for $statement<'_> {
            type QueryId = $statement<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $statement<'_> {}

        impl<DB> diesel::query_builder::QueryFragment<DB> for $statement<'_>
        where
            DB: diesel::backend::Backend
                + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
                + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
            i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
            Option<i64>: diesel::serialize::ToSql<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    DB,
                >,
            Option<String>:
                diesel::serialize::ToSql<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>,
        {
            fn walk_ast<'b>(
                &'b self,
                mut $out: diesel::query_builder::AstPass<'_, 'b, DB>,
            ) -> diesel::QueryResult<()> {
                let $this = self;
                $walk
            }
        }
    };
}

pub mod account_tokens;
pub mod activity;
pub mod api_keys;
pub mod audit;
pub mod authorization_requests;
pub mod clients;
pub mod consents;
pub mod devices;
pub mod grants;
pub mod keys;
pub mod meta;
pub mod mfa;
pub mod outbox;
pub mod rate_limits;
pub mod reports;
pub mod roles;
pub mod schema;
pub mod security;
pub mod sessions;
pub mod throttles;
pub mod user_search;
pub mod users;
pub mod webhooks;
mod writers;

use writers::Writers;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{
    AnsiTransactionManager, InstrumentationEvent, SimpleConnection, TransactionManager,
};
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::config::{DatabaseUrl, Settings, SqliteSynchronous};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend; queries written once run on both.
///
/// SQLite is the last variant because `establish` tries variants in order and SQLite accepts
/// any string; [`Manager`] never relies on that and builds the right variant itself.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL, for several instances sharing one database.
    Postgresql(diesel::PgConnection),
    /// SQLite, the embedded default.
    Sqlite(diesel::SqliteConnection),
}

/// The connection pool.
pub type DbPool = r2d2::Pool<Manager>;

/// Why a storage call failed, in the terms callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint (PostgreSQL) or `table.column` (SQLite) that refused it.
        constraint: String,
    },
    /// The database cannot be reached: answered with 503, never a 500.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error(transparent)]
    Db(DieselError),
    /// Stored data that cannot be read back (corrupt JSON, an unknown enum value, ...).
    #[error(transparent)]
    Corrupt(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether the conflict was on a constraint whose name mentions `what` (e.g. `email`).
    pub fn is_conflict_on(&self, what: &str) -> bool {
        matches!(self, Self::Conflict { constraint } if constraint.contains(what))
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(
                kind
                @ (DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation),
                info,
            ) => {
                let constraint = info
                    .constraint_name()
                    .map(str::to_owned)
                    // SQLite names no constraint: "UNIQUE constraint failed: users.email".
                    .unwrap_or_else(|| {
                        info.message()
                            .rsplit(": ")
                            .next()
                            .unwrap_or(info.message())
                            .to_owned()
                    });
                let constraint = if matches!(kind, DatabaseErrorKind::ForeignKeyViolation) {
                    format!("foreign key {constraint}")
                } else {
                    constraint
                };
                Self::Conflict { constraint }
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("the connection broke during a transaction".into())
            }
            other => Self::Db(other),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Which backend a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Opens connections of the configured backend and prepares SQLite ones (WAL, foreign keys,
/// busy timeout, durability). PostgreSQL URLs never fall through to SQLite.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    synchronous: SqliteSynchronous,
    busy_timeout_ms: u64,
}

/// How long a PostgreSQL connection may have sat in the pool before it is checked (one
/// `SELECT 1`) on its way out: a connection back from work a moment ago is handed on as it is,
/// so a request under load makes no round trip beyond its own queries, while one idle for
/// longer, which may have outlived a server restart, is checked first. A connection that
/// finds the server gone in use is discarded when it comes back ([`TrackedConnection`]).
const IDLE_BEFORE_CHECK: Duration = Duration::from_millis(500);

/// A connection of the pool, with what the pool needs to know of it to avoid a round trip per
/// checkout: when it last came back, and whether a query on it found the server gone (seen by
/// diesel's instrumentation, which hears of every query's failure).
pub struct TrackedConnection {
    conn: AnyConnection,
    returned_at: Instant,
    lost: Arc<AtomicBool>,
}

impl TrackedConnection {
    fn new(mut conn: AnyConnection) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        if matches!(conn, AnyConnection::Postgresql(_)) {
            let seen = lost.clone();
            conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::FinishQuery {
                    error: Some(error), ..
                } = event
                    && matches!(
                        error,
                        DieselError::DatabaseError(
                            DatabaseErrorKind::ClosedConnection
                                | DatabaseErrorKind::UnableToSendCommand,
                            _
                        )
                    )
                {
                    seen.store(true, Ordering::Relaxed);
                }
            });
        }
        Self {
            conn,
            returned_at: Instant::now(),
            lost,
        }
    }
}

impl std::ops::Deref for TrackedConnection {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for TrackedConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Manager {
    /// Opens a connection of the configured backend, prepared for use.
    pub(crate) fn open(&self) -> Result<AnyConnection, StoreError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(url.expose_secret())
                .map(AnyConnection::Postgresql)
                .map_err(|e| StoreError::Unavailable(e.to_string())),
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    StoreError::Unavailable("the SQLite path is not valid UTF-8".into())
                })?;
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                // busy_timeout first: switching to WAL needs a lock another process may hold.
                // temp_store: a savepoint's journal (the writers run each writer's work in
                // one) stays in memory instead of spilling to a temporary file past 64 KiB.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; \
                     PRAGMA temp_store = MEMORY;",
                    self.busy_timeout_ms,
                    self.synchronous.as_sql()
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = TrackedConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<TrackedConnection, StoreError> {
        self.open().map(TrackedConnection::new)
    }

    /// On checkout (PostgreSQL only): a connection idle for longer than [`IDLE_BEFORE_CHECK`]
    /// answers a `SELECT 1` first.
    fn is_valid(&self, pooled: &mut TrackedConnection) -> Result<(), StoreError> {
        if pooled.returned_at.elapsed() < IDLE_BEFORE_CHECK {
            return Ok(());
        }
        pooled.conn.ping().map_err(StoreError::from)
    }

    /// On return: notes the time, and discards a connection that panicked, broke its
    /// transaction or found the server gone.
    fn has_broken(&self, pooled: &mut TrackedConnection) -> bool {
        pooled.returned_at = Instant::now();
        let conn = &mut pooled.conn;
        std::thread::panicking()
            || pooled.lost.load(Ordering::Relaxed)
            || <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                conn,
            )
            || conn.is_broken()
    }
}

/// Pool figures for `/health/detailed`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolState {
    /// Connections checked out now.
    pub active: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Open connections.
    pub total: u32,
    /// The pool's upper bound.
    pub max: u32,
}

/// The handle every capability uses to reach the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    backend: Backend,
    /// On SQLite, this process's writers, who share their commits (see [`write_transaction`]).
    writers: Option<Arc<Writers>>,
    /// One permit per pooled connection: [`Store::run`] queues here, first come first served,
    /// instead of parking blocking threads on the pool, which wakes its waiters in no order
    /// (late callers overtook early ones: a longer tail under load), and which would hold a
    /// thread per waiting request while the database is down.
    turns: Arc<tokio::sync::Semaphore>,
    /// How long [`Store::run`] may wait for a connection, the queue included.
    wait: Duration,
}

thread_local! {
    /// The writers' turn of the SQLite store whose work runs on this thread, if any.
    static WRITERS: RefCell<Option<Arc<Writers>>> = const { RefCell::new(None) };
}

/// Runs `work` with `writers` as this thread's writers' turn, restoring the previous one
/// afterwards (even if `work` panics).
fn with_writers<T>(writers: Option<Arc<Writers>>, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<Writers>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            WRITERS.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = WRITERS.with(|current| current.replace(writers));
    let _restore = Restore(previous);
    work()
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Builds the pool without opening a connection yet, so the server can start (and report
    /// 503) while the database is down; the first use opens connections.
    pub fn open(settings: &Settings) -> Result<Self, StoreError> {
        let backend = match settings.database_url {
            DatabaseUrl::Sqlite(ref path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!(
                            "cannot create the database directory {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                configure_sqlite_library();
                Backend::Sqlite
            }
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let manager = Manager {
            url: settings.database_url.clone(),
            synchronous: settings.sqlite_synchronous,
            busy_timeout_ms: settings.database_timeout.as_millis() as u64,
        };
        let writers = (backend == Backend::Sqlite).then(|| Arc::new(Writers::new(manager.clone())));
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(settings.database_timeout)
            // A local SQLite file does not go away; a PostgreSQL server may restart, so a
            // connection idle for a while is checked on its way out (`IDLE_BEFORE_CHECK`).
            .test_on_check_out(backend == Backend::Postgres)
            .error_handler(Box::new(PoolErrorLogger))
            // The pool's own upkeep (opening connections, retiring idle ones) is light; r2d2's
            // default gives it three threads, each with its stack and allocator arena.
            .thread_pool(Arc::new(
                scheduled_thread_pool::ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("latchkey-pool")
                    .build(),
            ))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            backend,
            writers,
            turns: Arc::new(tokio::sync::Semaphore::new(settings.pool_size as usize)),
            wait: settings.database_timeout,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the pending migrations of this backend's set; returns the versions applied.
    /// Safe to run any number of times and from several processes at once.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get()?;
        let applied = match &mut **conn {
            AnyConnection::Sqlite(c) => {
                // Holding the write lock from the check of applied versions to the last
                // migration serialises processes migrating one file at once; diesel runs
                // each migration in a savepoint inside it.
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                let result = c
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(version_strings);
                if result.is_ok() {
                    AnsiTransactionManager::commit_transaction(c)?;
                } else {
                    let _ = AnsiTransactionManager::rollback_transaction(c);
                }
                result
            }
            AnyConnection::Postgresql(c) => {
                // A session lock serialises instances starting together against one database.
                c.batch_execute("SELECT pg_advisory_lock(7241000001)")?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(version_strings);
                c.batch_execute("SELECT pg_advisory_unlock(7241000001)")?;
                result
            }
        }
        .map_err(|e| StoreError::Corrupt(anyhow::anyhow!("migration failed: {e}")))?;
        Ok(applied)
    }

    /// Runs blocking database work on the blocking thread pool, with a pooled connection.
    /// Callers take their turns in order, and no longer than the database timeout in all.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let deadline = Instant::now() + self.wait;
        let turn = tokio::time::timeout_at(deadline.into(), self.turns.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable("no database connection came free in time".into())
            })?
            .expect("the store never closes its semaphore");
        let pool = self.pool.clone();
        let writers = self.writers.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut conn = pool.get_timeout(deadline.saturating_duration_since(Instant::now()))?;
            with_writers(writers, || work(&mut conn))
        })
        .await;
        match outcome {
            Ok(result) => result,
            // A panic inside the work is re-raised here, where the panic guard reports it.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(StoreError::Unavailable(format!(
                "database task cancelled: {join}"
            ))),
        }
    }

    /// Runs `work` in a write transaction (as [`write_transaction`] does) and returns once it
    /// has committed, for async code. On SQLite the work goes to the writers' thread, so that
    /// a request waiting for its turn to write holds no thread and no pooled connection (the
    /// `writers` module); on PostgreSQL it runs as [`Store::run`] work.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writers {
            Some(writers) => writers.submit(Instant::now() + self.wait, work).await,
            None => self.run(move |conn| write_transaction(conn, work)).await,
        }
    }

    /// [`Store::write`] for work that may refuse with an error of its own, such as an
    /// administrator's request that breaks a rule: a refusal undoes the work's changes (in a
    /// savepoint) and comes back inside `Ok`, while the database's own failures stay outside.
    pub async fn write_or_refuse<T, E, F>(&self, work: F) -> Result<Result<T, E>, StoreError>
    where
        T: Send + 'static,
        E: From<DieselError> + Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    {
        self.write(move |conn| Ok(write_transaction(conn, work)))
            .await
    }

    /// Runs database work on the current thread: for the CLI and for code already off the
    /// executor.
    pub fn run_blocking<T>(
        &self,
        work: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        with_writers(self.writers.clone(), || work(&mut conn))
    }

    /// Checks that the database answers, with its round-trip time.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        self.run(|conn| conn.ping().map_err(StoreError::from))
            .await?;
        Ok(started.elapsed())
    }

    /// Connections in use and idle.
    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            active: state.connections - state.idle_connections,
            idle: state.idle_connections,
            total: state.connections,
            max: self.pool.max_size(),
        }
    }
}

/// Serialises changes to who holds which permission (role grants, direct permissions, user
/// status) for the rest of the current transaction, so that two administrators demoting the
/// last two holders of `*` at once cannot both succeed. SQLite's write transactions are
/// already serial (`BEGIN IMMEDIATE`); PostgreSQL takes a transaction-scoped advisory lock.
pub fn lock_privileges(conn: &mut AnyConnection) -> Result<(), StoreError> {
    if let AnyConnection::Postgresql(c) = conn {
        c.batch_execute("SELECT pg_advisory_xact_lock(7241000002)")?;
    }
    Ok(())
}

/// Runs `work` in a write transaction. On SQLite, the writers of this process take turns on
/// one connection kept for writing and share commits (the `writers` module), so `work` gets that
/// connection, not `conn`; the transaction begins with `BEGIN IMMEDIATE`, so two writers queue
/// instead of one failing when its read snapshot goes stale, and they queue on a mutex rather
/// than in SQLite's busy handler, which sleeps in steps of up to 100 ms (other processes, such
/// as the CLI, still meet the busy timeout). Returns once the changes have committed.
pub fn write_transaction<T, E>(
    conn: &mut AnyConnection,
    work: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    let nested =
        <AnyConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .is_some();
    if nested {
        // Inside a transaction already: diesel makes this a savepoint.
        return conn.transaction(work);
    }
    match conn {
        AnyConnection::Sqlite(c) => match WRITERS.with(|current| current.borrow().clone()) {
            Some(writers) => return writers.write(work),
            // Not inside [`Store::run`] or [`Store::run_blocking`] (the server never gets here):
            // a transaction of its own on `conn`.
            None => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        },
        AnyConnection::Postgresql(c) => {
            <diesel::PgConnection as Connection>::TransactionManager::begin_transaction(c)?
        }
    }
    match work(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The original error matters more than a failed rollback (which breaks the
            // connection, and the pool then discards it).
            let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}

fn version_strings(versions: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    versions.into_iter().map(|v| v.to_string()).collect()
}

#[derive(Debug)]
struct PoolErrorLogger;

impl r2d2::HandleError<StoreError> for PoolErrorLogger {
    fn handle_error(&self, error: StoreError) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Decodes a JSON text column into a value, naming the column when it is corrupt.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(anyhow::anyhow!("column {column} holds invalid JSON: {e}"))
    })
}

/// Encodes a value for a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// Process-wide SQLite settings, before the first connection opens (later calls are refused
/// by SQLite and change nothing): no memory statistics, whose global mutex every allocation
/// of every connection would take, and the multi-thread mode, without per-connection mutexes,
/// since the pool lends a connection to one thread at a time.
fn configure_sqlite_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use libsqlite3_sys::{SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, sqlite3_config};
        // SAFETY: both options take the documented arguments, and SQLite is not yet in use
        // (or answers SQLITE_MISUSE, changing nothing).
        unsafe {
            sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
            sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
        }
    });
}
