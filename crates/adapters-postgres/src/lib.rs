//! # adapters-postgres
//!
//! Every storage port of [`portal_core`] ([`Queries`](portal_core::ports::Queries),
//! [`Committer`](portal_core::ports::Committer), [`OutboxStore`](portal_core::ports::OutboxStore))
//! on a SQL database through sea-orm: **Postgres** in production and **SQLite** as the embedded
//! default, from one code base and one set of migrations.
//!
//! Choosing adapters and wiring them into your own service: `docs/embedding.md`.
//!
//! What it guarantees, on both backends (the storage contract suite in `portal-testkit` checks
//! each point against this crate, the in-memory adapter and real databases):
//!
//! * A [`Commit`](portal_core::ports::Commit) is one database transaction. Updates are
//!   version-checked (`UPDATE … WHERE id = $1 AND version = $2`; no row → `Conflict`),
//!   `ExpectUser` holds the user's row lock until the end, audit entries are appended to their
//!   hash chain under a lock on the chain's head row, and outbox mails are inserted in the same
//!   transaction. A failed commit leaves nothing behind.
//! * Unique violations are reported by constraint: `Duplicate(UserEmail)` for a second account
//!   with an address (pending registrations hold no claim: a partial unique index),
//!   `Duplicate(CustomerNumber)`, `Duplicate(LegacyAccount)`.
//! * Lists page by keyset: users by `(customer_id, sort_key, id)`, the audit log by
//!   `(chain, seq)`; counts are capped. User search and the change log's text search use trigram
//!   GIN indexes on Postgres and FTS5 trigram tables on SQLite (migration 000011 for the change
//!   log).
//! * Session, link and code secrets are stored as SHA-256 hashes only; session expiry is part
//!   of the query.
//! * A row that breaks a domain rule when read back is `StoreError::Corrupt`, never a panic;
//!   with [`SqlStore::with_catalog`] also a stored permission key outside the catalog.
//! * Every stored time is truncated to whole microseconds (what Postgres keeps), on SQLite too,
//!   so a value reads back the same on every backend.
//! * A database that is down, stuck or full fails fast with `StoreError::Unavailable`: a
//!   connection is waited for at most [`PoolSettings::acquire_timeout`], a Postgres statement runs
//!   at most [`PoolSettings::statement_timeout`] ([`connect_with`]); the pool reconnects by
//!   itself once the database is back.
//!
//! It is not a general repository layer: the tables are private, and callers see only
//! portal-core's entities. `docs/storage.md` describes the schema, the transactions and the
//! SQLite choices (WAL, `BEGIN IMMEDIATE`, one writer per process at a time).
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use adapters_postgres::SqlStore;
//! use portal_core::{Deps, Portal};
//! use std::sync::Arc;
//!
//! // `postgres://user@host/db` in production; an SQLite file (`sqlite://portal.db?mode=rwc`)
//! // for a single server; an in-memory database for this example.
//! let store = Arc::new(SqlStore::open("sqlite::memory:").await?);
//! let portal = Portal::new(Deps::production(store.clone()), Default::default(), Default::default())?;
//! assert!(!portal.has_operator().await?);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod commit;
mod entity;
mod legacy;
mod migration;
mod oidc;
mod ops;
mod outbox;
mod passkeys;
mod queries;
mod rows;
#[cfg(feature = "testing")]
pub mod scale;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;

pub use migration::Migrator;
pub use outbox::{OUTBOX_STATS_CAP, OutboxBacklog};
pub use sea_orm::{DatabaseConnection, DbBackend};
pub use store::{ConnectError, PoolSettings, SQLITE_BUSY_TIMEOUT, SqlStore, connect, connect_with};

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use sea_orm_migration::MigratorTrait;

/// The key of the Postgres advisory lock the migrator holds (`pg_advisory_xact_lock`): the bytes
/// of `portalmg`. Advisory locks are per database, so databases on one server do not wait for
/// each other.
pub const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_616c_6d67;

/// How often [`apply_migrations`] tries to take SQLite's write lock, each try waiting out
/// [`SQLITE_BUSY_TIMEOUT`]: a process that finds another one migrating waits up to this many
/// busy timeouts (10 minutes) before it gives up.
pub const SQLITE_MIGRATION_LOCK_TRIES: u32 = 60;

/// Brings the schema up to date (idempotent: applied migrations are skipped). Same as
/// [`apply_migrations`], without the list.
///
/// # Errors
/// See [`apply_migrations`].
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    apply_migrations(db).await.map(|_| ())
}

/// Applies the pending migrations under a lock and returns their names, in order (empty when
/// the schema was up to date).
///
/// All pending migrations run in **one transaction** that first takes the migration lock:
/// on Postgres the advisory lock [`MIGRATION_LOCK_KEY`] (`pg_advisory_xact_lock`, released by
/// the commit or rollback), each migration in a savepoint of its own; on SQLite the database's
/// write lock (`BEGIN IMMEDIATE`). A second process that starts at the same time waits for the
/// lock, then finds nothing pending: every migration is applied exactly once. Both backends have
/// transactional DDL, so a failing migration leaves the schema as it was before the call (the
/// migrations before it in the same call are rolled back too). sea-orm-migration on its own runs
/// SQLite migrations without a transaction; the outer transaction here is what makes them
/// atomic.
///
/// # Errors
/// The lock could not be taken (SQLite: another process held the write lock for
/// [`SQLITE_MIGRATION_LOCK_TRIES`] busy timeouts; Postgres: the connection's statement timeout
/// ran out while waiting), or a migration failed.
pub async fn apply_migrations(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    let txn = migration_lock(db).await?;
    let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    if !pending.is_empty() {
        tracing::info!(applied = ?pending, "migrations applied");
    }
    Ok(pending)
}

/// The names of the migrations [`apply_migrations`] would run now, in order, read without
/// changing anything: no lock, and the migration table is not created when it is missing (a
/// fresh database lists every migration). `portal migrate --dry-run` prints these.
///
/// # Errors
/// The database cannot be read.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// A transaction holding the migration lock (see [`apply_migrations`]).
async fn migration_lock(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await?;
        return Ok(txn);
    }
    let options = sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..sea_orm::TransactionOptions::default()
    };
    let mut tries = 0;
    loop {
        tries += 1;
        match db.begin_with_options(options).await {
            Ok(txn) => return Ok(txn),
            // Each failed try has already waited the busy timeout inside SQLite.
            Err(e) if tries < SQLITE_MIGRATION_LOCK_TRIES && store::is_sqlite_busy(&e) => {
                tracing::info!("another process is migrating the database; waiting");
            }
            Err(e) => return Err(e),
        }
    }
}

impl SqlStore {
    /// Connects with [`connect`], applies the migrations and returns the store.
    ///
    /// # Errors
    /// The URL is not supported, the database cannot be reached, or a migration failed.
    pub async fn open(url: &str) -> Result<Self, ConnectError> {
        let file_sqlite =
            url.starts_with("sqlite:") && !url.contains(":memory:") && !url.contains("mode=memory");
        if file_sqlite {
            // Migrate over a connection of its own and close it before the pool opens: a pooled
            // connection that started reading before the schema existed could otherwise keep
            // answering "no such table" from its old snapshot.
            let setup = connect(url).await?;
            migrate(&setup).await?;
            setup.close().await?;
            return Ok(Self::new(connect(url).await?));
        }
        let db = connect(url).await?;
        migrate(&db).await?;
        Ok(Self::new(db))
    }
}
