//! The database under a test on either backend, and what the crash and outage tests read back
//! from it: every user, audit entry, outbox mail and session, straight from the tables (not
//! through the server under test, which may be dead), to check that nothing is committed half.

use super::TempDir;
use adapters_postgres::testing::TestPostgres;
use adapters_postgres::{DbBackend, SqlStore};
use sea_orm::{ConnectionTrait as _, Statement};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file of the test's own.
    Sqlite,
    /// A fresh database on the test Postgres server (`TestPostgres`).
    Postgres,
}

/// A test's database.
pub struct Db {
    pub backend: Backend,
    url: String,
    store: SqlStore,
    pg: Option<TestPostgres>,
    /// The directory holding the SQLite file (removed on drop).
    _dir: Option<TempDir>,
}

impl Db {
    /// A fresh, migrated database on `backend`.
    pub async fn start(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres(TestPostgres::start().await),
            Backend::Sqlite => {
                let dir = TempDir::new("sqlite");
                let file = dir.path().join("portal.db");
                let mut db = Self::sqlite_file(&file).await;
                db._dir = Some(dir);
                db
            }
        }
    }

    /// A database on Postgres.
    pub fn postgres(pg: TestPostgres) -> Self {
        Self {
            backend: Backend::Postgres,
            url: pg.url().to_owned(),
            store: pg.store(),
            pg: Some(pg),
            _dir: None,
        }
    }

    /// An SQLite database in `file` (created and migrated).
    pub async fn sqlite_file(file: &Path) -> Self {
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = SqlStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        Self {
            backend: Backend::Sqlite,
            url: file.display().to_string(),
            store,
            pg: None,
            _dir: None,
        }
    }

    /// `DATABASE_URL` for the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| PathBuf::from(&self.url))
    }

    /// A store of the test's own on the database.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Closes the pool and drops the database.
    pub async fn finish(self) {
        let _ = self.store.connection().clone().close().await;
        if let Some(pg) = self.pg {
            pg.finish().await;
        }
    }

    /// Everything the checks read, in one go.
    pub async fn snapshot(&self) -> Snapshot {
        let users = self
            .rows("SELECT id, email, state, customer_id, permissions, lock FROM users")
            .await
            .into_iter()
            .map(|r| {
                let permissions: Vec<String> =
                    serde_json::from_str(&get::<String>(&r, "permissions"))
                        .expect("permissions are a JSON list");
                UserRow {
                    id: get(&r, "id"),
                    email: get(&r, "email"),
                    state: get(&r, "state"),
                    customer: get(&r, "customer_id"),
                    permissions: permissions.into_iter().collect(),
                    locked: get::<Option<String>>(&r, "lock").is_some(),
                }
            })
            .collect();
        let entries = self
            .rows(
                "SELECT chain_key, seq, category, subject, details FROM audit_entries \
                 ORDER BY chain_key, seq",
            )
            .await
            .into_iter()
            .map(|r| Entry {
                chain: get(&r, "chain_key"),
                seq: get(&r, "seq"),
                category: get(&r, "category"),
                subject: get(&r, "subject"),
                details: get(&r, "details"),
            })
            .collect();
        let mails = self
            .rows("SELECT id, recipient, payload, status FROM outbox WHERE kind = 'mail' ORDER BY seq")
            .await
            .into_iter()
            .map(|r| MailRow {
                id: get(&r, "id"),
                to: get(&r, "recipient"),
                template: template_of(&get::<String>(&r, "payload")),
                status: get(&r, "status"),
            })
            .collect();
        let sessions = self
            .rows("SELECT user_id FROM sessions")
            .await
            .into_iter()
            .map(|r| get::<Uuid>(&r, "user_id"))
            .collect();
        Snapshot {
            users,
            entries,
            mails,
            sessions,
        }
    }

    async fn rows(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let backend = match self.backend {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        };
        self.store
            .connection()
            .query_all_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every outgoing message of `kind` (an outbox kind other than mail, such as the back-channel
    /// logout's): its status and the number of delivery attempts, oldest first.
    pub async fn outbox_of_kind(&self, kind: &str) -> Vec<(String, i64)> {
        let kind = kind.replace('\'', "");
        self.rows(&format!(
            "SELECT status, attempts FROM outbox WHERE kind = '{kind}' ORDER BY seq"
        ))
        .await
        .into_iter()
        .map(|r| (get(&r, "status"), get(&r, "attempts")))
        .collect()
    }

    /// Every outbox kind in use.
    pub async fn outbox_kinds(&self) -> Vec<String> {
        self.rows("SELECT DISTINCT kind FROM outbox ORDER BY kind")
            .await
            .into_iter()
            .map(|r| get(&r, "kind"))
            .collect()
    }

    /// Counts of outbox mails by status.
    pub async fn outbox_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in self.snapshot().await.mails {
            *counts.entry(m.status).or_default() += 1;
        }
        counts
    }
}

fn get<T: sea_orm::TryGetable>(row: &sea_orm::QueryResult, column: &str) -> T {
    row.try_get("", column)
        .unwrap_or_else(|e| panic!("column {column}: {e:?}"))
}

/// A user row.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub state: String,
    pub customer: Option<Uuid>,
    pub permissions: BTreeSet<String>,
    pub locked: bool,
}

/// An audit entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub chain: Uuid,
    pub seq: i64,
    pub category: String,
    pub subject: Option<Uuid>,
    pub details: String,
}

/// A mail's template key, from its stored payload (`{"to", "language", "intent": {"kind", …}}`).
fn template_of(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).expect("an outbox payload is JSON");
    v["intent"]["kind"]
        .as_str()
        .expect("a mail payload names its intent")
        .to_owned()
}

/// An outbox row of kind `mail`.
#[derive(Debug, Clone)]
pub struct MailRow {
    pub id: Uuid,
    pub to: String,
    pub template: String,
    pub status: String,
}

/// The tables the checks read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub users: Vec<UserRow>,
    /// By chain, then sequence number.
    pub entries: Vec<Entry>,
    /// In queue order.
    pub mails: Vec<MailRow>,
    /// The user of every session row.
    pub sessions: Vec<Uuid>,
}

impl Snapshot {
    /// The user with this address.
    pub fn user(&self, email: &str) -> Option<&UserRow> {
        self.users.iter().find(|u| u.email == email)
    }

    /// The user with this id.
    pub fn user_by_id(&self, id: Uuid) -> Option<&UserRow> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The entries about `subject`, in chain order.
    pub fn entries_of(&self, subject: Uuid) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.subject == Some(subject))
            .collect()
    }

    /// How many entries of `category` are about `subject`.
    pub fn count(&self, subject: Uuid, category: &str) -> usize {
        self.entries
            .iter()
            .filter(|e| e.subject == Some(subject) && e.category == category)
            .count()
    }

    /// How many mails of `template` were queued for `to`.
    pub fn mails_to(&self, to: &str, template: &str) -> usize {
        self.mails
            .iter()
            .filter(|m| m.to == to && m.template == template)
            .count()
    }

    /// How many sessions `user` has.
    pub fn sessions_of(&self, user: Uuid) -> usize {
        self.sessions.iter().filter(|u| **u == user).count()
    }

    /// Rules that hold whatever the requests were and however they ended, for every account:
    /// each user past its registration has exactly one `user.created` entry (about it), and every
    /// `user.created` entry's user exists (nothing here deletes users). Returns the violations.
    pub fn account_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for u in &self.users {
            let created = self.count(u.id, "user.created");
            let expected = usize::from(u.state != "pending_verification");
            if created != expected {
                problems.push(format!(
                    "{} ({}) has {created} user.created entries, expected {expected}",
                    u.email, u.state
                ));
            }
        }
        for e in self.entries.iter().filter(|e| e.category == "user.created") {
            let exists = e.subject.is_some_and(|s| self.user_by_id(s).is_some());
            if !exists {
                problems.push(format!("user.created without its user: {e:?}"));
            }
        }
        problems
    }

    /// For every invited user whose address ends with `domain`: the audit log explains its
    /// stored state. Its permissions are those of its `user.created` entry with each
    /// `user.permissions_changed` entry's `added` and `removed` applied in order, it is locked
    /// exactly when its last lock entry is `user.locked`, and it has one invitation mail and one
    /// lock or unlock mail per lock or unlock entry. A change committed without its entry (or
    /// an entry, or a mail, without its change) breaks one of these. Returns the violations.
    pub fn replay_problems(&self, domain: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let set = |text: &str| -> BTreeSet<String> {
            text.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let field = |details: &str, name: &str| -> String {
            details
                .split("; ")
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_owned()
        };
        for u in self.users.iter().filter(|u| u.email.ends_with(domain)) {
            let mut permissions = BTreeSet::new();
            let mut locked = false;
            let (mut locks, mut unlocks) = (0, 0);
            for e in self.entries_of(u.id) {
                match e.category.as_str() {
                    "user.created" => permissions = set(&field(&e.details, "permissions")),
                    "user.permissions_changed" => {
                        let added = set(&field(&e.details, "added"));
                        let removed = set(&field(&e.details, "removed"));
                        if !added.is_disjoint(&permissions) || !removed.is_subset(&permissions) {
                            problems.push(format!(
                                "{}: {e:?} does not follow from {permissions:?}",
                                u.email
                            ));
                        }
                        permissions.extend(added);
                        permissions.retain(|p| !removed.contains(p));
                    }
                    "user.locked" => {
                        locked = true;
                        locks += 1;
                    }
                    "user.unlocked" => {
                        locked = false;
                        unlocks += 1;
                    }
                    _ => {}
                }
            }
            if permissions != u.permissions || locked != u.locked {
                problems.push(format!(
                    "{}: stored permissions {:?} locked {}, the log says {permissions:?} locked {locked}",
                    u.email, u.permissions, u.locked
                ));
            }
            let mails = (
                self.mails_to(&u.email, "invitation"),
                self.mails_to(&u.email, "account_locked"),
                self.mails_to(&u.email, "account_unlocked"),
            );
            if mails != (1, locks, unlocks) {
                problems.push(format!(
                    "{}: (invitation, lock, unlock) mails {mails:?}, entries (1, {locks}, {unlocks})",
                    u.email
                ));
            }
        }
        problems
    }
}
