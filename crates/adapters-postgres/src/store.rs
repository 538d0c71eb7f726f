//! The store: a sea-orm connection pool plus what the backend needs to keep writes safe.

use crate::entity::{customers, users};
use crate::rows;
use portal_core::customer::{CorruptRecord, Customer};
use portal_core::permission::{PermissionCatalog, PermissionSet};
use portal_core::ports::{StoreError, UniqueKey};
use portal_core::user::User;
use sea_orm::sea_query::SelectStatement;
use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryResult, RuntimeErr, Select, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// How long a SQLite connection waits for another process's write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Storage on Postgres or SQLite: implements [`Queries`](portal_core::ports::Queries),
/// [`Committer`](portal_core::ports::Committer) and
/// [`OutboxStore`](portal_core::ports::OutboxStore).
///
/// Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: DbBackend,
    /// SQLite has one writer at a time. Writers of this process queue here (fairly, without
    /// polling) before `BEGIN IMMEDIATE`; writers of other processes are waited for by SQLite's
    /// busy timeout. `None` on Postgres, where row locks do the work.
    write_lock: Option<Arc<Mutex<()>>>,
    /// The permission keys a stored row may hold (see [`SqlStore::with_catalog`]); `None`:
    /// any well-formed key.
    known_permissions: Option<Arc<PermissionSet>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is neither `postgres://…` nor `sqlite:…`.
    #[error("unsupported database url (use postgres://… or sqlite://…)")]
    UnsupportedUrl,
    /// Connecting or migrating failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl SqlStore {
    /// Wraps an open connection (see [`connect`] for the settings it should have). Does not
    /// migrate; call [`migrate`](crate::migrate) first.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        let backend = db.get_database_backend();
        let write_lock = (backend == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Self {
            db,
            backend,
            write_lock,
            known_permissions: None,
        }
    }

    /// Reads strictly against `catalog` too: a stored user permission, customer entitlement or
    /// default permission whose key is well-formed but not in the catalog is reported as
    /// [`StoreError::Corrupt`] (like an invalid e-mail), instead of being handed to the core.
    ///
    /// Without it (the default of [`SqlStore::new`] and [`SqlStore::open`]) only the key
    /// *format* is checked: the store cannot know which catalog the embedder runs, and assuming
    /// the built-in one would make every row of an installation with its own catalog unreadable.
    /// Pass the catalog the [`Portal`](portal_core::Portal) gets. A key removed from the catalog
    /// must then be removed from the stored rows (users, customers) in the same release.
    #[must_use]
    pub fn with_catalog(mut self, catalog: &PermissionCatalog) -> Self {
        self.known_permissions = Some(Arc::new(catalog.all()));
        self
    }

    /// Refuses keys outside the catalog given to [`Self::with_catalog`].
    fn check_known(&self, entity: &'static str, keys: &PermissionSet) -> Result<(), StoreError> {
        if let Some(known) = &self.known_permissions
            && let Some(unknown) = keys.iter().find(|k| !known.contains(k))
        {
            return Err(corrupt(CorruptRecord::new(
                entity,
                format!("unknown permission {unknown}"),
            )));
        }
        Ok(())
    }

    /// A user row as an entity: strict (see `rows.rs`), and its permissions in the catalog.
    pub(crate) fn read_user(&self, m: users::Model) -> Result<User, StoreError> {
        let user = rows::user(m).map_err(corrupt)?;
        self.check_known("user", user.permissions())?;
        Ok(user)
    }

    /// A customer row as an entity: strict, and its entitlements and default permissions in the
    /// catalog.
    pub(crate) fn read_customer(&self, m: customers::Model) -> Result<Customer, StoreError> {
        let customer = rows::customer(m).map_err(corrupt)?;
        self.check_known("customer", customer.entitlements())?;
        self.check_known("customer", customer.default_permissions())?;
        Ok(customer)
    }

    /// The connection pool, for embedders who keep their own tables next to Portal's.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Takes this process's SQLite write turn (no-op on Postgres).
    pub(crate) async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (take the write lock now, so the
    /// busy timeout applies instead of a failed lock upgrade later), `BEGIN` (read committed,
    /// row locks) on Postgres.
    /// Runs a search read so that Postgres plans it for its actual parameters: a generic plan
    /// of `search_text LIKE $1` cannot use the trigram index (it does not know the pattern), and
    /// after five executions of a prepared statement Postgres may switch to one. Only searches
    /// pay for it (a transaction with `SET LOCAL plan_cache_mode = force_custom_plan`, three
    /// more round trips); every other statement keeps its cached plan. On SQLite: the pool.
    pub(crate) async fn all_searched<E: EntityTrait>(
        &self,
        select: Select<E>,
    ) -> Result<Vec<E::Model>, StoreError> {
        if self.backend != DbBackend::Postgres {
            return select.all(&self.db).await.map_err(db_err);
        }
        let txn = self.custom_plans().await?;
        let rows = select.all(&txn).await.map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(rows)
    }

    /// [`all_searched`](Self::all_searched) for a single-row statement (a capped count).
    pub(crate) async fn one_searched(
        &self,
        stmt: &SelectStatement,
    ) -> Result<Option<QueryResult>, StoreError> {
        if self.backend != DbBackend::Postgres {
            return self.db.query_one(stmt).await.map_err(db_err);
        }
        let txn = self.custom_plans().await?;
        let row = txn.query_one(stmt).await.map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// A Postgres transaction whose statements get custom plans.
    pub(crate) async fn custom_plans(&self) -> Result<DatabaseTransaction, StoreError> {
        let txn = self.db.begin().await.map_err(db_err)?;
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await
            .map_err(db_err)?;
        Ok(txn)
    }

    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.db.begin_with_options(options).await.map_err(db_err)
    }
}

/// How the connection pool behaves when the database is slow or gone. Every bound here turns a
/// request that would wait for the database into a quick [`StoreError::Unavailable`] (HTTP 503)
/// instead: a request never waits longer than `acquire_timeout` for a connection (which
/// includes opening a new one while the server refuses connections), and on Postgres a
/// statement never runs longer than `statement_timeout` (a lock held elsewhere, an overloaded
/// server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections the pool opens; `None`: 16 on Postgres, 8 for an SQLite file (an
    /// in-memory SQLite database always has exactly one).
    pub max_connections: Option<u32>,
    /// Longest wait for a pooled connection, including connecting to the server (sqlx retries a
    /// refused connection until then). Default [`PoolSettings::DEFAULT_ACQUIRE_TIMEOUT`].
    pub acquire_timeout: Duration,
    /// Postgres only: the server cancels a statement running longer (`statement_timeout`,
    /// SQLSTATE `57014`, reported as unavailable). `None`: no limit. Default
    /// [`PoolSettings::DEFAULT_STATEMENT_TIMEOUT`].
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// The default wait for a connection: long enough for a busy pool, short enough that a
    /// database outage answers within seconds instead of holding every request for its length.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default statement limit on Postgres: far above any statement Portal sends (the
    /// slowest, a search or a housekeeping batch, takes milliseconds), so only a stuck one hits
    /// it.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

    /// These settings without a statement limit: for migrations, whose index builds on a large
    /// table may take longer than any request should.
    #[must_use]
    pub fn without_statement_timeout(self) -> Self {
        Self {
            statement_timeout: None,
            ..self
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(Self::DEFAULT_STATEMENT_TIMEOUT),
        }
    }
}

/// Opens a pool for `url` with Portal's default [`PoolSettings`]; see [`connect_with`].
///
/// # Errors
/// An unsupported URL, or the database cannot be reached.
pub async fn connect(url: &str) -> Result<DatabaseConnection, ConnectError> {
    connect_with(url, &PoolSettings::default()).await
}

/// Opens a pool for `url` with Portal's settings and `pool`:
///
/// * `postgres://…`: up to 16 connections (or `pool.max_connections`), the statement timeout
///   set per connection; searches run with custom plans (a generic plan for
///   `search_text LIKE $1` cannot use the trigram index; see `docs/storage.md`), every other
///   statement with its cached plan.
/// * `sqlite://path?mode=rwc` (or `sqlite::memory:`): WAL journal, `synchronous = NORMAL`,
///   foreign keys on, a busy timeout of [`SQLITE_BUSY_TIMEOUT`]; 8 connections for a file (or
///   `pool.max_connections`), one for an in-memory database (each in-memory connection would be
///   its own database).
///
/// A connection taken from the pool is pinged first (sqlx's default), so one the server closed
/// (a restart) is replaced instead of failing a request; the pool reconnects by itself once
/// the server answers again.
///
/// # Errors
/// An unsupported URL, or the database cannot be reached.
pub async fn connect_with(
    url: &str,
    pool: &PoolSettings,
) -> Result<DatabaseConnection, ConnectError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    // sea-orm's `connect_timeout` is sqlx's acquire timeout as well: one bound for both.
    opts.sqlx_logging(false)
        .connect_timeout(pool.acquire_timeout)
        .acquire_timeout(pool.acquire_timeout);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        opts.max_connections(pool.max_connections.unwrap_or(16))
            .map_sqlx_postgres_opts(|o| o.application_name("portal"));
        if let Some(limit) = pool.statement_timeout {
            opts.statement_timeout(limit);
        }
    } else if url.starts_with("sqlite:") {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        opts.max_connections(if memory {
            1
        } else {
            pool.max_connections.unwrap_or(8)
        })
        .map_sqlx_sqlite_opts(move |o| {
            let o = o
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            if memory {
                o
            } else {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            }
        });
        if memory {
            // The one connection is the database: never let the pool close it.
            opts.idle_timeout(None::<Duration>)
                .max_lifetime(None::<Duration>);
        } else {
            // A COMMIT that fails for want of space (`SQLITE_FULL`) or an I/O error ends the
            // transaction inside SQLite, but sqlx's own rollback of it then fails ("no
            // transaction is active") and the connection keeps counting itself inside a
            // transaction — and keeps the write lock, so every other connection's write waits
            // out the busy timeout and fails with "database is locked", long after the disk has
            // room again. A connection released in that state is closed instead of reused (the
            // ping first lets a rollback still queued for it run).
            opts.map_sqlx_sqlite_pool_opts(|o| {
                o.after_release(|conn, _| {
                    Box::pin(async move {
                        sqlx::Connection::ping(conn).await?;
                        Ok(!sqlx::Connection::is_in_transaction(conn))
                    })
                })
            });
        }
    } else {
        return Err(ConnectError::UnsupportedUrl);
    }
    Ok(sea_orm::Database::connect(opts).await?)
}

/// Maps a database error to the port's error, by SQLSTATE / SQLite code and constraint name.
pub(crate) fn db_err(e: DbErr) -> StoreError {
    use std::ops::Deref;
    let sqlx_err = match &e {
        DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s))
        | DbErr::Conn(RuntimeErr::SqlxError(s)) => Some(s.clone()),
        DbErr::ConnectionAcquire(_) => {
            return StoreError::Unavailable(e.to_string());
        }
        _ => None,
    };
    if let Some(s) = sqlx_err {
        match s.deref() {
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                match code.as_str() {
                    // Postgres: unique violation; SQLite: UNIQUE (2067) / PRIMARY KEY (1555).
                    "23505" | "2067" | "1555" => {
                        let name = d.constraint().unwrap_or_else(|| d.message());
                        return unique_violation(name);
                    }
                    // A referenced row is gone (a concurrent delete): someone else was first.
                    "23503" | "787" => return StoreError::Conflict,
                    // Deadlock / serialization failure: one side is rolled back; retrying is safe.
                    "40P01" | "40001" => return StoreError::Conflict,
                    _ if unavailable(d.as_ref(), &code) => {
                        return StoreError::Unavailable(d.message().to_owned());
                    }
                    _ => {}
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => return StoreError::Unavailable(s.to_string()),
            _ => {}
        }
    }
    StoreError::Backend {
        message: "database error".to_owned(),
        source: Some(Box::new(e)),
    }
}

/// Whether SQLite refused a statement because another connection holds the lock beyond the busy
/// timeout (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes).
pub(crate) fn is_sqlite_busy(e: &DbErr) -> bool {
    use std::ops::Deref;
    let (DbErr::Exec(RuntimeErr::SqlxError(s))
    | DbErr::Query(RuntimeErr::SqlxError(s))
    | DbErr::Conn(RuntimeErr::SqlxError(s))) = e
    else {
        return false;
    };
    let sqlx::Error::Database(d) = s.deref() else {
        return false;
    };
    d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && d.code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Whether a database error means the database cannot serve now, though nothing is wrong with
/// the request: worth a 503 and a retry, never a 500.
///
/// * Postgres (five-character SQLSTATE): class `08` (connection exception), class `53`
///   (insufficient resources: disk full, out of memory, too many connections), `57014`
///   (cancelled: the statement timeout of [`PoolSettings`]), `55P03` (a lock not available in
///   time), `57P01`–`57P05` (the server shutting down, restarting or starting up, an idle
///   session ended).
/// * SQLite (extended result code): `SQLITE_BUSY` and `SQLITE_LOCKED` (another writer beyond the
///   busy timeout), `SQLITE_FULL` (the disk or file-size limit is reached), `SQLITE_IOERR` and
///   `SQLITE_CANTOPEN` (the file system refuses reads or writes). The transaction is rolled back
///   whole in every case; the same statement succeeds once space or access returns.
fn unavailable(d: &dyn sqlx::error::DatabaseError, code: &str) -> bool {
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        const BUSY: i64 = 5;
        const LOCKED: i64 = 6;
        const IOERR: i64 = 10;
        const FULL: i64 = 13;
        const CANTOPEN: i64 = 14;
        // The primary result code is the low byte of the extended one.
        return code
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, BUSY | LOCKED | IOERR | FULL | CANTOPEN));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57014" | "55P03" | "57P01" | "57P02" | "57P03" | "57P04" | "57P05"
        )
}

/// Which uniqueness rule a constraint (Postgres: its name; SQLite: "table.column") stands for.
fn unique_violation(constraint: &str) -> StoreError {
    let has = |needle: &str| constraint.contains(needle);
    if has("users_email_account_key") || has("users.email") {
        StoreError::Duplicate(UniqueKey::UserEmail)
    } else if has("customers_number_key") || has("customers.number") {
        StoreError::Duplicate(UniqueKey::CustomerNumber)
    } else if has("legacy_claims_pkey") || has("legacy_claims.legacy_id") {
        StoreError::Duplicate(UniqueKey::LegacyAccount)
    } else if has("sessions_token_hash_key") || has("sessions.token_hash") {
        StoreError::Duplicate(UniqueKey::Other("session token"))
    } else if has("audit_entries_chain_seq_key") || has("audit_entries.chain_key") {
        // Two appenders at one chain position: the chain head lock makes this unreachable, but
        // if it happened the answer is to retry.
        StoreError::Conflict
    } else if has("_pkey") || has("outbox_id_key") || has(".id") || has(".seq") {
        // An insert of an id that exists (an entity, an audit entry, a mail): it was created
        // concurrently.
        StoreError::Conflict
    } else {
        StoreError::Duplicate(UniqueKey::Other("unique constraint"))
    }
}

pub(crate) fn corrupt(e: CorruptRecord) -> StoreError {
    StoreError::Corrupt(e)
}

#[cfg(test)]
mod tests {
    use crate::testing::TestPostgres;
    use portal_core::ports::StoreError;
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

    async fn mode(conn: &impl ConnectionTrait) -> String {
        conn.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SHOW plan_cache_mode",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
    }

    /// A statement the server cancels (its statement timeout, here set low for the session) is
    /// the database being unable to serve now, not a bug: `Unavailable`, a 503.
    #[tokio::test]
    async fn a_statement_cut_off_by_the_statement_timeout_is_unavailable() {
        let db = TestPostgres::start().await;
        let store = db.store();
        let txn = store.connection().begin().await.unwrap();
        txn.execute_unprepared("SET LOCAL statement_timeout = 20")
            .await
            .unwrap();
        let err = txn
            .execute_unprepared("SELECT pg_sleep(5)")
            .await
            .unwrap_err();
        let _ = txn.rollback().await;
        assert!(
            matches!(super::db_err(err), StoreError::Unavailable(_)),
            "a cancelled statement"
        );
        db.finish().await;
    }

    /// SQLite refusing to grow a database (here its page limit; a full disk or a file-size limit
    /// alike) is `Unavailable`, a 503, never a 500.
    #[tokio::test]
    async fn a_database_that_cannot_grow_is_unavailable() {
        let store = crate::testing::sqlite_memory().await;
        let db = store.connection();
        db.execute_unprepared("CREATE TABLE filler (b BLOB)")
            .await
            .unwrap();
        let pages: i64 = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA page_count",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        db.execute_unprepared(&format!("PRAGMA max_page_count = {pages}"))
            .await
            .unwrap();
        let err = db
            .execute_unprepared("INSERT INTO filler VALUES (randomblob(100000))")
            .await
            .unwrap_err();
        assert!(
            matches!(super::db_err(err), StoreError::Unavailable(m) if m.contains("full")),
            "a full database"
        );
    }

    #[tokio::test]
    async fn searches_plan_for_their_values_and_nothing_else_does() {
        let db = TestPostgres::start().await;
        let store = db.store();
        assert_eq!(mode(store.connection()).await, "auto");
        let txn = store.custom_plans().await.unwrap();
        assert_eq!(mode(&txn).await, "force_custom_plan");
        txn.commit().await.unwrap();
        // `SET LOCAL` ended with the transaction: the pooled connection is back to cached plans.
        for _ in 0..4 {
            assert_eq!(mode(store.connection()).await, "auto");
        }
        db.finish().await;
    }
}
