//! Wiring shared by the commands: the store, the portal service on it, logging, the development
//! phone gateway, and a committer decorator that sees the mails of each commit.

use crate::config::{Database, LogConfig};
use adapters_postgres::{Migrator, PoolSettings, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::config::PortalConfig;
use portal_core::ids::SessionId;
use portal_core::mail::OutboxMail;
use portal_core::outbox::OutboxKind;
use portal_core::permission::PermissionCatalog;
use portal_core::ports::{
    Commit, Committer, Counter, Expired, PhoneMessage, SmsError, SmsSender, StoreError,
};
use portal_core::{Deps, Portal};
use sea_orm_migration::MigratorTrait as _;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// A failure of a command, printed as `error: …` with exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl Failure {
    /// A failure with context: `"{what}: {error}"`.
    #[must_use]
    pub fn of(what: &str, error: impl std::fmt::Display) -> Self {
        Self(format!("{what}: {error}"))
    }
}

/// What opening the database did to the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied now, in order.
    pub applied: Vec<String>,
    /// Migrations the schema has in total.
    pub total: usize,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.applied.is_empty() {
            write!(f, "schema up to date ({} migrations)", self.total)
        } else {
            write!(
                f,
                "applied {} of {} migrations: {}",
                self.applied.len(),
                self.total,
                self.applied.join(", ")
            )
        }
    }
}

/// Connects to the database with the default [`PoolSettings`], applies pending migrations and
/// returns the store; see [`open_store_with`].
///
/// # Errors
/// The database cannot be reached, or a migration failed.
pub async fn open_store(database: &Database) -> Result<(SqlStore, MigrationReport), Failure> {
    open_store_with(database, &PoolSettings::default()).await
}

/// Connects to the database, applies pending migrations and returns the store (reading
/// permission keys strictly against the default catalog, the one [`portal`] uses), whose pool
/// has the size and timeouts of `pool`. The migrations run over a connection of their own
/// without the statement timeout (an index build may take longer than any request should).
///
/// # Errors
/// The database cannot be reached, or a migration failed.
pub async fn open_store_with(
    database: &Database,
    pool: &PoolSettings,
) -> Result<(SqlStore, MigrationReport), Failure> {
    let url = database.url();
    let what = database.describe();
    let setup = adapters_postgres::connect_with(url, &pool.without_statement_timeout())
        .await
        .map_err(|e| Failure::of(&format!("cannot open {what}"), e))?;
    // Under the migration lock: of two processes started at once, one applies and reports the
    // migrations, the other waits and finds the schema up to date.
    let applied = adapters_postgres::apply_migrations(&setup)
        .await
        .map_err(|e| Failure::of("migration failed", e))?;
    let report = MigrationReport {
        applied,
        total: Migrator::migrations().len(),
    };
    let in_memory = matches!(database, Database::Sqlite { file: None, .. });
    let store = if in_memory {
        // The one connection is the database.
        SqlStore::new(setup)
    } else {
        // A fresh pool after migrating: a pooled SQLite connection that read before the schema
        // existed could keep answering from its old snapshot (see `SqlStore::open`).
        setup
            .close()
            .await
            .map_err(|e| Failure::of("cannot close the setup connection", e))?;
        SqlStore::new(
            adapters_postgres::connect_with(url, pool)
                .await
                .map_err(|e| Failure::of(&format!("cannot open {what}"), e))?,
        )
    };
    // Read strictly against the catalog `portal` runs with: a stored permission key outside it
    // is corrupt data, not a grant.
    Ok((store.with_catalog(&PermissionCatalog::default()), report))
}

/// The portal on `store` with production adapters, the store's imported old accounts as the
/// legacy directory and the default catalog, committing through
/// `committer` when given (a decorator around the store).
///
/// # Errors
/// The configuration is out of its safe range.
pub fn portal(
    store: Arc<SqlStore>,
    committer: Option<Arc<dyn Committer>>,
    config: PortalConfig,
) -> Result<Portal, Failure> {
    let mut deps = Deps::production(store.clone());
    // The imported old accounts ("Servicewelt", `portal legacy import`).
    deps.legacy = store;
    if let Some(c) = committer {
        deps.committer = c;
    }
    Portal::new(deps, config, PermissionCatalog::default()).map_err(|e| Failure::of("portal", e))
}

/// Starts logging to standard error: text or JSON lines, filtered by `EnvFilter` directives.
/// A second call does nothing.
pub fn init_logging(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|e| {
        eprintln!("warning: PORTAL_LOG: {e}; using the default filter");
        EnvFilter::new(crate::config::DEFAULT_LOG_FILTER)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if config.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// A committer that shows what every successful commit queued to a hook: `serve` wakes the
/// dispatchers of the kinds queued with it (a code arrives in milliseconds instead of at the
/// next poll), and [`MailCapture`] keeps the mails for command-line tools. Commits that queue
/// nothing pass straight through.
pub struct MailHook {
    inner: Arc<dyn Committer>,
    hook: Hook,
}

/// What a [`MailHook`] calls after a commit: with its mails, or with the kinds it queued.
enum Hook {
    Mails(Box<MailsSeen>),
    Kinds(Box<KindsSeen>),
}

/// A hook on the mails of a commit.
type MailsSeen = dyn Fn(&[OutboxMail]) + Send + Sync;
/// A hook on the kinds of message a commit queued.
type KindsSeen = dyn Fn(&[OutboxKind]) + Send + Sync;

impl MailHook {
    /// Wraps `inner`; `hook` sees the mails of each successful commit that queued any.
    #[must_use]
    pub fn new(
        inner: Arc<dyn Committer>,
        hook: impl Fn(&[OutboxMail]) + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Hook::Mails(Box::new(hook)),
        }
    }

    /// Wraps `inner`; `hook` sees the kinds of message (each once) that each successful commit
    /// queued, when it queued any: what wakes the dispatchers of exactly those kinds.
    #[must_use]
    pub fn kinds(
        inner: Arc<dyn Committer>,
        hook: impl Fn(&[OutboxKind]) + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Hook::Kinds(Box::new(hook)),
        }
    }

    /// Wakes `notify` (the dispatcher's wake-up) after every commit that queued mail.
    #[must_use]
    pub fn waking(inner: Arc<dyn Committer>, notify: Arc<Notify>) -> Self {
        Self::new(inner, move |_| notify.notify_one())
    }
}

#[async_trait]
impl Committer for MailHook {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        if commit.outbox.is_empty() {
            return self.inner.commit(commit).await;
        }
        match &self.hook {
            Hook::Mails(hook) => {
                let mails = commit.mails();
                self.inner.commit(commit).await?;
                if !mails.is_empty() {
                    hook(&mails);
                }
            }
            Hook::Kinds(hook) => {
                let mut kinds: Vec<OutboxKind> = Vec::new();
                for kind in commit.outbox.iter().filter_map(|m| m.payload.kind()) {
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                self.inner.commit(commit).await?;
                hook(&kinds);
            }
        }
        Ok(())
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: chrono::TimeDelta,
    ) -> Result<Counter, StoreError> {
        self.inner.bump_counter(key, now, reset_after).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.inner.reset_counter(key).await
    }

    async fn purge_expired(
        &self,
        kind: Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.purge_expired(kind, cutoff, limit).await
    }
}

/// Remembers the mails of every successful commit made through [`Self::committer`], so a
/// command-line tool can use the codes and links it causes (`portal demo` confirms its demo
/// accounts this way) without reading them back from storage. The mails are queued in the
/// outbox as usual.
#[derive(Debug, Clone, Default)]
pub struct MailCapture(Arc<Mutex<Vec<OutboxMail>>>);

impl MailCapture {
    /// A committer over `inner` whose mails this capture keeps.
    #[must_use]
    pub fn committer(&self, inner: Arc<dyn Committer>) -> MailHook {
        let log = self.0.clone();
        MailHook::new(inner, move |mails| {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(mails);
        })
    }

    /// Every mail committed so far, oldest first.
    #[must_use]
    pub fn mails(&self) -> Vec<OutboxMail> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The code or link token of the newest mail to `to` that carries one.
    #[must_use]
    pub fn secret_for(&self, to: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .filter(|m| m.to.as_str() == to)
            .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
    }
}

/// Closes the store's pool, so a command ends with every connection shut cleanly.
///
/// # Errors
/// The database refused to close.
pub async fn close_store(store: &SqlStore) -> Result<(), Failure> {
    store
        .connection()
        .clone()
        .close()
        .await
        .map_err(|e| Failure::of("closing the database", e))
}

/// The development phone gateway: sends nothing, logs every SMS or voice code at `info`
/// (target `portal::dev_sms`) so a developer can complete phone sign-in without a provider.
/// Only wired in development mode; a production gateway is a [`SmsSender`] of your own
/// (see `docs/embedding.md`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DevPhoneGateway;

#[async_trait]
impl SmsSender for DevPhoneGateway {
    async fn send(&self, message: &PhoneMessage) -> Result<(), SmsError> {
        tracing::info!(
            target: "portal::dev_sms",
            "{:?} to {} code {} ({:?}, development phone gateway: nothing sent)",
            message.channel,
            message.to.as_str(),
            message.code.expose(),
            message.purpose,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hook sees the mails of successful commits only, and commits without mail not at all.
    #[tokio::test]
    async fn the_mail_hook_sees_exactly_the_mails_that_were_committed() {
        use portal_testkit::fixtures::{at, code_mail, customer};
        let store = Arc::new(adapters_memory::MemoryStore::new());
        let capture = MailCapture::default();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let inner: Arc<dyn Committer> = Arc::new(capture.committer(store.clone()));
        let hooked = MailHook::new(inner, move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mail = code_mail("a@example.com", "123456", at(1));
        let mut with_mail = Commit::new();
        with_mail.mail(mail.clone());
        hooked.commit(with_mail).await.unwrap();
        let mut without = Commit::new();
        let c = customer("100000001", "Hook GmbH");
        without.write(portal_core::ports::Write::InsertCustomer(c.clone()));
        hooked.commit(without).await.unwrap();
        // The same customer again: refused, so its mail is not shown.
        let mut refused = Commit::new();
        refused.write(portal_core::ports::Write::InsertCustomer(c));
        refused.mail(code_mail("b@example.com", "654321", at(2)));
        assert!(hooked.commit(refused).await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            capture.mails().iter().map(|m| m.id).collect::<Vec<_>>(),
            [mail.id]
        );
        assert_eq!(
            capture.secret_for("a@example.com").as_deref(),
            Some("123456")
        );
        assert_eq!(capture.secret_for("b@example.com"), None);
    }

    /// The kinds hook (what `serve` wakes its dispatchers with) sees each kind a successful
    /// commit queued once, and nothing for a commit that queued nothing.
    #[tokio::test]
    async fn the_kinds_hook_sees_each_queued_kind_once() {
        use portal_core::ids::OutboxId;
        use portal_core::outbox::{OutboxMessage, PasswordResetRequest, Payload};
        use portal_testkit::fixtures::{at, code_mail, customer};
        let store = Arc::new(adapters_memory::MemoryStore::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let hooked = MailHook::kinds(store, move |kinds| {
            log.lock().unwrap().push(kinds.to_vec());
        });
        let mut commit = Commit::new();
        commit.mail(code_mail("a@example.com", "123456", at(1)));
        commit.mail(code_mail("b@example.com", "654321", at(1)));
        commit.message(OutboxMessage {
            id: OutboxId::from_uuid(uuid::Uuid::from_u128(7)),
            created_at: at(1),
            payload: Payload::PasswordResetRequest(PasswordResetRequest { email: None }),
        });
        hooked.commit(commit).await.unwrap();
        let mut quiet = Commit::new();
        quiet.write(portal_core::ports::Write::InsertCustomer(customer(
            "100000002",
            "Still GmbH",
        )));
        hooked.commit(quiet).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [vec![OutboxKind::Mail, OutboxKind::PasswordResetRequest]]
        );
    }
    use crate::config::Database;

    #[tokio::test]
    async fn a_fresh_database_gets_every_migration_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::parse(dir.path().join("p.db").to_str().unwrap()).unwrap();
        let (_, first) = open_store(&db).await.unwrap();
        assert_eq!(first.applied.len(), first.total, "{first}");
        assert!(
            first.to_string().starts_with(&format!(
                "applied {n} of {n} migrations: m2026",
                n = first.total
            )),
            "{first}"
        );
        let (_, second) = open_store(&db).await.unwrap();
        assert!(second.applied.is_empty());
        assert_eq!(
            second.to_string(),
            format!("schema up to date ({} migrations)", second.total)
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_schema() {
        let (store, report) = open_store(&Database::parse("sqlite::memory:").unwrap())
            .await
            .unwrap();
        assert_eq!(report.applied.len(), report.total);
        let portal = portal(Arc::new(store), None, PortalConfig::default()).unwrap();
        assert!(!portal.has_operator().await.unwrap());
    }
}
