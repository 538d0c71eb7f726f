//! Upgrades: the migration lock (two migrators on one fresh database apply each migration
//! once, on Postgres and SQLite) and the dry run (`pending_migrations` lists what would run and
//! changes nothing).

use adapters_postgres::testing::{TestPostgres, TestSqlite};
use adapters_postgres::{
    DatabaseConnection, Migrator, apply_migrations, connect, pending_migrations,
};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::MigratorTrait as _;

/// Every migration's name, in order.
fn all_migrations() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// The rows of the migration table (0 when it does not exist).
async fn recorded(db: &DatabaseConnection) -> usize {
    let sql = "SELECT count(*) AS n FROM seaql_migrations";
    match db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
    {
        Ok(Some(row)) => usize::try_from(row.try_get::<i64>("", "n").unwrap()).unwrap(),
        Ok(None) | Err(_) => 0,
    }
}

/// Two migrators started together on `url` (each with its own pool): both succeed, one applies
/// every migration, the other waits for the lock and finds nothing pending.
async fn two_migrators(url: &str) {
    let a = connect(url).await.expect("connect a");
    let b = connect(url).await.expect("connect b");
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { apply_migrations(&a).await.map(|n| (n, a)) }),
        tokio::spawn(async move { apply_migrations(&b).await.map(|n| (n, b)) }),
    );
    let (ra, a) = ra.unwrap().expect("first migrator");
    let (rb, b) = rb.unwrap().expect("second migrator");
    assert!(
        ra.is_empty() || rb.is_empty(),
        "one of them applied the migrations, not both: {ra:?} / {rb:?}"
    );
    let mut applied = ra;
    applied.extend(rb);
    assert_eq!(applied, all_migrations(), "every migration applied once");
    assert_eq!(recorded(&a).await, all_migrations().len());
    assert!(pending_migrations(&b).await.unwrap().is_empty());
    let _ = a.close().await;
    let _ = b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_migrators_on_a_fresh_postgres_database_apply_each_migration_once() {
    let db = TestPostgres::start_empty().await;
    two_migrators(db.url()).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_migrators_on_a_fresh_sqlite_file_apply_each_migration_once() {
    let db = TestSqlite::empty_file().await;
    two_migrators(&db.url()).await;
    db.finish().await;
}

/// The dry run on a fresh database (everything, no migration table created), on one migrated
/// part of the way (the rest, the table unchanged) and on an up-to-date one (nothing).
async fn dry_run(db: &DatabaseConnection) {
    let all = all_migrations();
    assert_eq!(pending_migrations(db).await.unwrap(), all);
    assert_eq!(
        pending_migrations(db).await.unwrap(),
        all,
        "still everything"
    );
    let tables = "SELECT count(*) AS n FROM information_schema.tables \
                  WHERE table_name = 'seaql_migrations'";
    let sqlite_tables = "SELECT count(*) AS n FROM sqlite_master WHERE name = 'seaql_migrations'";
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => tables,
        _ => sqlite_tables,
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        0,
        "the dry run created no migration table"
    );

    Migrator::up(db, Some(3)).await.unwrap();
    assert_eq!(pending_migrations(db).await.unwrap(), all[3..].to_vec());
    assert_eq!(recorded(db).await, 3, "the dry run recorded nothing");
    assert_eq!(apply_migrations(db).await.unwrap(), all[3..].to_vec());
    assert!(pending_migrations(db).await.unwrap().is_empty());
    assert!(apply_migrations(db).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_dry_run_lists_pending_migrations_and_changes_nothing_on_postgres() {
    let db = TestPostgres::start_empty().await;
    dry_run(db.store().connection()).await;
    db.finish().await;
}

#[tokio::test]
async fn the_dry_run_lists_pending_migrations_and_changes_nothing_on_sqlite() {
    let db = TestSqlite::empty_file().await;
    dry_run(db.store().connection()).await;
    db.finish().await;
}

/// A database migrated by a newer release (a migration this build does not know is recorded):
/// this build refuses to migrate or start on it, and the dry run says the same, changing
/// nothing (`docs/operations.md`, Upgrades: going back means restoring the backup).
async fn newer_schema_is_refused(db: &DatabaseConnection) {
    apply_migrations(db).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) \
         VALUES ('m20991231_999999_from_the_future', 0)",
    )
    .await
    .unwrap();
    let e = apply_migrations(db).await.unwrap_err().to_string();
    assert!(
        e.contains("m20991231_999999_from_the_future") && e.contains("missing"),
        "{e}"
    );
    let e = pending_migrations(db).await.unwrap_err().to_string();
    assert!(e.contains("m20991231_999999_from_the_future"), "{e}");
    assert_eq!(recorded(db).await, all_migrations().len() + 1);
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused_on_postgres() {
    let db = TestPostgres::start_empty().await;
    newer_schema_is_refused(db.store().connection()).await;
    db.finish().await;
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused_on_sqlite() {
    let db = TestSqlite::empty_file().await;
    newer_schema_is_refused(db.store().connection()).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Upgrade fixtures: a database of every schema state, with data, migrated to the newest schema.
// ---------------------------------------------------------------------------------------------

use adapters_postgres::SqlStore;
use portal_core::ports::{OutboxStore as _, Queries as _};
use portal_core::secret::SecretString;
use portal_core::secretbox::MfaKey;
use portal_core::service::{CompleteMfa, Login, LoginOutcome, NewClient, NewWebhook, SecondFactor};
use portal_core::session::ClientInfo;
use portal_core::totp::{self, TotpSecret};
use portal_core::values::{CustomerNumber, FreeText};
use portal_core::{Actor, Deps, Portal, config::PortalConfig, permission::PermissionCatalog};
use portal_testkit::seed;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the fixtures live: `<migration name>.postgres.sql` and `<migration name>.sqlite.sql`.
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The command that writes the fixtures a migration is missing (`docs/storage.md`).
const WRITE_FIXTURES: &str = "cargo test -p adapters-postgres --test integration \
     upgrade::write_missing_upgrade_fixtures -- --ignored";

/// The key that seals the seeded TOTP secret (fixtures only).
const FIXTURE_MFA_KEY: [u8; 32] = *b"portal upgrade fixture mfa key!!";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn key(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

fn fixture_path(state: &str, backend: Backend) -> PathBuf {
    fixture_dir().join(format!("{state}.{}.sql", backend.key()))
}

/// What a fixture's data holds beyond its rows: who can sign in, how.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// The schema state: the last migration applied.
    state: String,
    /// The customers' numbers.
    customers: Vec<String>,
    /// Active users whose password is `seed::PASSWORD` and who have no second factor.
    password_users: Vec<String>,
    /// A user with an authenticator app and its secret (base32); `None` in the states before
    /// the second factors (their users have the password only).
    totp: Option<(String, String)>,
    /// A locked user (right password, refused like a wrong one).
    locked_user: String,
}

fn fixture_portal(store: &SqlStore) -> Portal {
    let config = PortalConfig {
        mfa_key: Some(MfaKey::from_bytes(FIXTURE_MFA_KEY)),
        ..PortalConfig::default()
    };
    Portal::new(
        Deps::production(std::sync::Arc::new(store.clone())),
        config,
        PermissionCatalog::default(),
    )
    .expect("portal")
}

/// Seeds what a running installation holds, through the portal's own use cases on the newest
/// schema: two customers with administrators and employees, changed permissions, a locked user,
/// sessions, an authenticator app, an OIDC client, the mails in the outbox and the change logs.
async fn seed_installation(store: &SqlStore) -> Manifest {
    let portal = fixture_portal(store);
    // A webhook endpoint first, so the changes below queue its deliveries and move its cursors.
    portal
        .create_webhook(
            &Actor::System,
            NewWebhook {
                url: "https://hooks.fixture.example/portal".to_owned(),
                description: "CRM sync".to_owned(),
                events: portal_core::webhook::parse_events(["all"]).unwrap(),
            },
        )
        .await
        .expect("webhook endpoint");
    let first = seed::customer_with_admin(
        &portal,
        store,
        "424242001",
        "anna.admin@fixture.example",
        &["ben@fixture.example", "carla@fixture.example"],
    )
    .await
    .expect("first customer");
    seed::customer_with_admin(
        &portal,
        store,
        "424242002",
        "dora.admin@fixture.example",
        &["emil@fixture.example"],
    )
    .await
    .expect("second customer");
    let number = CustomerNumber::parse("424242001").unwrap();
    let admin = Actor::user(first.admin);
    portal
        .set_permissions(
            &admin,
            &number,
            first.employees[0],
            &PermissionCatalog::default().all(),
        )
        .await
        .expect("permissions");
    portal
        .lock_user(
            &admin,
            &number,
            first.employees[1],
            Some(&FreeText::parse("Vertrag beendet").unwrap()),
        )
        .await
        .expect("lock");
    // Sessions (kept in the fixture; they will have ended when a test reads them).
    seed::session(&portal, "ben@fixture.example")
        .await
        .expect("session");
    // An authenticator app for emil.
    let token = seed::session(&portal, "emil@fixture.example")
        .await
        .expect("session");
    let principal = portal.authenticate(&token).await.expect("principal");
    let enrolment = portal
        .start_totp_enrolment(&principal)
        .await
        .expect("totp start");
    let secret = TotpSecret::from_base32(enrolment.secret_base32()).unwrap();
    portal
        .confirm_totp(&principal, &totp::code_at(&secret, chrono::Utc::now()))
        .await
        .expect("totp confirm");
    // An application that signs in through Portal.
    portal
        .create_client(
            &Actor::System,
            NewClient {
                name: "Rechnungsportal".to_owned(),
                redirect_uris: vec!["https://rechnung.fixture.example/callback".to_owned()],
                post_logout_redirect_uris: vec![],
                backchannel_logout_uri: None,
                public: false,
                first_party: true,
                required_permission: None,
                require_second_factor: false,
                access_tokens: portal_core::oidc::AccessTokenFormat::Opaque,
            },
        )
        .await
        .expect("OIDC client");
    Manifest {
        state: String::new(),
        customers: vec!["424242001".to_owned(), "424242002".to_owned()],
        password_users: vec![
            "anna.admin@fixture.example".to_owned(),
            "ben@fixture.example".to_owned(),
            "dora.admin@fixture.example".to_owned(),
        ],
        totp: Some((
            "emil@fixture.example".to_owned(),
            enrolment.secret_base32().to_owned(),
        )),
        locked_user: "carla@fixture.example".to_owned(),
    }
}

fn login(email: &str, password: &str) -> Login {
    Login {
        email: email.to_owned(),
        password: SecretString::new(password),
        client: ClientInfo::new(Some("127.0.0.1"), Some("upgrade test")),
    }
}

/// What must hold on a database migrated from a fixture: every row reads back (no `Corrupt`),
/// every change log verifies, the seeded users sign in (the TOTP user with the app's code), the
/// locked one does not, and the outbox's mails are readable and claimable.
async fn check_upgraded(store: &SqlStore, manifest: &Manifest) {
    let state = &manifest.state;
    let portal = fixture_portal(store);
    // Webhook endpoints (from 000010 on) read back and their secrets open; their queued
    // deliveries read back with the outbox below.
    for endpoint in portal.webhooks(&Actor::System).await.unwrap() {
        let delivery = portal_core::webhook::WebhookDelivery {
            endpoint: endpoint.id,
            url: endpoint.url.clone(),
            event: portal_core::webhook::WebhookEvent {
                event_type: "user.locked".to_owned(),
                timestamp: chrono::Utc::now(),
                data: portal_core::webhook::WebhookEventData {
                    entry_id: portal_core::ids::AuditEntryId::from_uuid(uuid::Uuid::nil()),
                    customer_number: None,
                    seq: 1,
                    previous_seq: None,
                    actor: portal_core::audit::ActorRef::system(),
                    subject: None,
                    details: String::new(),
                },
            },
        };
        portal
            .webhook_target(&delivery)
            .await
            .unwrap_or_else(|e| panic!("{state}: webhook {} opens: {e}", endpoint.id));
    }
    for number in &manifest.customers {
        let n = CustomerNumber::parse(number).unwrap();
        let customer = store
            .customer_by_number(&n)
            .await
            .unwrap_or_else(|e| panic!("{state}: customer {number} reads: {e}"))
            .unwrap_or_else(|| panic!("{state}: customer {number} kept"));
        let report = portal
            .verify_audit_chain(&Actor::System, Some(&n))
            .await
            .unwrap_or_else(|e| panic!("{state}: change log of {number} verifies: {e}"));
        assert!(report.entries > 0, "{state}: {number} has its change log");
        // The change log's text search finds entries written before the upgrade (on SQLite
        // through the FTS5 table 000011 filled from them).
        let found = store
            .audit(&portal_core::ports::AuditQuery {
                customer: Some(customer.id()),
                subject: None,
                categories: Vec::new(),
                search: Some(format!("number={number}")),
                search_categories: Vec::new(),
                from: None,
                until: None,
                before_seq: None,
                limit: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("{state}: change log of {number} searches: {e}"));
        assert_eq!(
            found.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1],
            "{state}: the search finds {number}'s first entry"
        );
        let users = store
            .count_users_of_customer(customer.id(), None, 1_000)
            .await
            .unwrap_or_else(|e| panic!("{state}: users of {number} read: {e}"));
        assert!(users >= 2, "{state}: the users of {number} are kept");
    }
    let global = portal
        .verify_audit_chain(&Actor::System, None)
        .await
        .unwrap_or_else(|e| panic!("{state}: the global change log verifies: {e}"));
    assert!(global.entries > 0, "{state}: the global log is kept");

    for email in &manifest.password_users {
        match portal.login(login(email, seed::PASSWORD)).await {
            Ok(LoginOutcome::Authenticated(s)) => {
                portal
                    .authenticate(s.token.expose())
                    .await
                    .unwrap_or_else(|e| panic!("{state}: {email}'s new session works: {e:?}"));
            }
            other => panic!("{state}: {email} signs in with the password: {other:?}"),
        }
    }
    if let Some((user, secret)) = &manifest.totp {
        let Ok(LoginOutcome::MfaRequired(pending)) =
            portal.login(login(user, seed::PASSWORD)).await
        else {
            panic!("{state}: the TOTP user is asked for the second factor");
        };
        let secret = TotpSecret::from_base32(secret).unwrap();
        portal
            .complete_mfa(CompleteMfa {
                token: pending.token.expose().to_owned(),
                // The next step's code (inside the one-step window): the step of the enrolment
                // is used up, and a test run just after writing the fixture may still be in it.
                factor: SecondFactor::Totp(totp::code_at(
                    &secret,
                    chrono::Utc::now() + chrono::TimeDelta::seconds(30),
                )),
                remember_device: false,
                client: ClientInfo::default(),
            })
            .await
            .unwrap_or_else(|e| {
                panic!("{state}: the TOTP user signs in with the app's code: {e:?}")
            });
    }
    assert!(
        portal
            .login(login(&manifest.locked_user, seed::PASSWORD))
            .await
            .is_err(),
        "{state}: the locked user stays locked"
    );

    let stats = store
        .outbox_stats()
        .await
        .unwrap_or_else(|e| panic!("{state}: outbox counts: {e}"));
    assert!(stats.pending > 0, "{state}: the queued mails are kept");
    store
        .dead_letters(None, 100)
        .await
        .unwrap_or_else(|e| panic!("{state}: dead letters read: {e}"));
    let code = seed::mailed_secret(store, "emil@fixture.example")
        .await
        .unwrap_or_else(|e| panic!("{state}: every queued mail reads and is claimable: {e}"));
    assert!(
        code.is_some(),
        "{state}: the mails of the seeded users are kept"
    );
}

async fn strings(db: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.try_get::<String>("", column).unwrap())
        .collect()
}

/// Tables in an order that inserts every referenced row before the rows referring to it.
fn insert_order(tables: Vec<String>, edges: &[(String, String)]) -> Vec<String> {
    let mut left: BTreeSet<String> = tables.into_iter().collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| {
                !edges
                    .iter()
                    .any(|(child, parent)| child == *t && parent != *t && left.contains(parent))
            })
            .cloned()
            .collect();
        assert!(
            !ready.is_empty(),
            "foreign keys form a cycle among {left:?}"
        );
        for t in ready {
            left.remove(&t);
            order.push(t);
        }
    }
    order
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Portal's tables (without the migration table; on SQLite without the FTS5 search table and
/// its shadow and map tables, which the triggers on `users` keep), in an order that inserts
/// every referenced row before the rows referring to it.
async fn tables_in_insert_order(db: &DatabaseConnection) -> Vec<String> {
    let (tables, edges) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let tables = strings(
                db,
                "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = current_schema() \
                 AND tablename <> 'seaql_migrations' ORDER BY 1",
                "t",
            )
            .await;
            let edges: Vec<(String, String)> = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent \
                     FROM pg_constraint WHERE contype = 'f' \
                     AND connamespace = current_schema()::regnamespace",
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.try_get::<String>("", "child").unwrap(),
                        r.try_get::<String>("", "parent").unwrap(),
                    )
                })
                .collect();
            (tables, edges)
        }
        _ => {
            let virtuals = strings(
                db,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'",
                "name",
            )
            .await;
            let tables: Vec<String> = strings(
                db,
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations' ORDER BY 1",
                "name",
            )
            .await
            .into_iter()
            .filter(|t| {
                !virtuals
                    .iter()
                    .any(|v| t == v || t.starts_with(&format!("{v}_")))
            })
            .collect();
            let mut edges = Vec::new();
            for t in &tables {
                for parent in strings(
                    db,
                    &format!("SELECT \"table\" AS p FROM pragma_foreign_key_list('{t}')"),
                    "p",
                )
                .await
                {
                    edges.push((t.clone(), parent));
                }
            }
            (tables, edges)
        }
    };
    insert_order(tables, &edges)
}

/// The data of every Portal table as SQL statements for a database of the same schema state,
/// deterministic (rows sorted), tables in foreign-key order. Postgres: one `INSERT … SELECT *
/// FROM json_populate_record(…)` per row (types come from the table), then the serial columns'
/// sequences moved past the rows. SQLite: `INSERT … VALUES` with SQLite's own `quote()` (what
/// the shell's `.dump` does); the FTS5 search table and its map are left out, the triggers on
/// `users` fill them again on load.
async fn dump(db: &DatabaseConnection) -> Vec<String> {
    let mut out = Vec::new();
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    for table in tables_in_insert_order(db).await {
        let t = quote_ident(&table);
        let sql = if postgres {
            format!(
                "SELECT format('INSERT INTO %I SELECT * FROM json_populate_record(NULL::%I, %L);', \
                 '{table}', '{table}', row_to_json(x)::text) AS s FROM {t} x ORDER BY 1"
            )
        } else {
            let columns = strings(
                db,
                &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
                "name",
            )
            .await;
            let names: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            let values: Vec<String> = columns
                .iter()
                .map(|c| format!("quote({})", quote_ident(c)))
                .collect();
            format!(
                "SELECT 'INSERT INTO {t} ({cols}) VALUES (' || {vals} || ');' AS s \
                 FROM {t} ORDER BY 1",
                cols = names.join(", ").replace('\'', "''"),
                vals = values.join(" || ', ' || "),
            )
        };
        out.extend(strings(db, &sql, "s").await);
    }
    if postgres {
        let serials = strings(
            db,
            "SELECT format('SELECT setval(pg_get_serial_sequence(%L, %L), \
             (SELECT COALESCE(max(%I), 0) + 1 FROM %I), false);', \
             table_name, column_name, column_name, table_name) AS s \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND (column_default LIKE 'nextval(%' OR is_identity = 'YES') ORDER BY 1",
            "s",
        )
        .await;
        out.extend(serials);
    }
    out
}

/// Deletes every row of Portal's tables (referring rows first).
async fn clear(db: &DatabaseConnection) {
    let mut tables = tables_in_insert_order(db).await;
    tables.reverse();
    for t in tables {
        db.execute_unprepared(&format!("DELETE FROM {}", quote_ident(&t)))
            .await
            .unwrap_or_else(|e| panic!("clearing {t}: {e}"));
    }
}

/// Reads a fixture: its manifest (the header line `-- manifest: {…}`) and its statements.
fn read_fixture(state: &str, backend: Backend) -> Option<(Manifest, String)> {
    let text = std::fs::read_to_string(fixture_path(state, backend)).ok()?;
    let manifest = text
        .lines()
        .find_map(|l| l.strip_prefix("-- manifest: "))
        .unwrap_or_else(|| panic!("{state}.{}: no manifest line", backend.key()));
    let manifest: Manifest = serde_json::from_str(manifest).expect("manifest");
    assert_eq!(
        manifest.state, state,
        "the fixture's manifest names its state"
    );
    Some((manifest, text))
}

/// A fresh, empty database of the backend.
enum Fresh {
    Postgres(TestPostgres),
    Sqlite(TestSqlite),
}

impl Fresh {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::Postgres(TestPostgres::start_empty().await),
            Backend::Sqlite => Self::Sqlite(TestSqlite::empty_file().await),
        }
    }

    fn store(&self) -> SqlStore {
        match self {
            Self::Postgres(db) => db.store(),
            Self::Sqlite(db) => db.store(),
        }
    }

    async fn finish(self) {
        match self {
            Self::Postgres(db) => db.finish().await,
            Self::Sqlite(db) => db.finish().await,
        }
    }
}

/// A database in the fixture's schema state holding its data, then migrated to the newest
/// schema (under the migration lock, as `portal serve` does).
async fn upgraded_from(state: &str, backend: Backend) -> (Fresh, Manifest) {
    let (manifest, sql) = read_fixture(state, backend).unwrap_or_else(|| {
        panic!(
            "no upgrade fixture {} — write it with `{WRITE_FIXTURES}`",
            fixture_path(state, backend).display()
        )
    });
    (load_upgraded(state, backend, &sql).await, manifest)
}

/// A fresh database in schema state `state`, `sql` loaded into it, migrated to the newest.
async fn load_upgraded(state: &str, backend: Backend, sql: &str) -> Fresh {
    let fresh = Fresh::new(backend).await;
    let db = fresh.store().connection().clone();
    let steps = all_migrations().iter().position(|m| m == state).unwrap() + 1;
    Migrator::up(&db, Some(u32::try_from(steps).unwrap()))
        .await
        .unwrap_or_else(|e| panic!("{state}: the schema up to the fixture's state: {e}"));
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{state}: the fixture's data loads: {e}"));
    let applied = apply_migrations(&db)
        .await
        .unwrap_or_else(|e| panic!("{state}: migrating the fixture to the newest schema: {e}"));
    assert_eq!(applied, all_migrations()[steps..].to_vec(), "{state}");
    fresh
}

/// Every fixture on `backend`, migrated forward and checked.
async fn upgrade_every_fixture(backend: Backend) {
    let mut checked = 0;
    for state in all_migrations() {
        if read_fixture(&state, backend).is_none() {
            continue; // `every_migration_has_an_upgrade_fixture` names what is missing.
        }
        let (fresh, manifest) = upgraded_from(&state, backend).await;
        check_upgraded(&fresh.store(), &manifest).await;
        fresh.finish().await;
        checked += 1;
    }
    assert!(
        checked > 0,
        "no fixture found in {}",
        fixture_dir().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_fixture_upgrades_to_the_newest_schema() {
    upgrade_every_fixture(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sqlite_fixture_upgrades_to_the_newest_schema() {
    upgrade_every_fixture(Backend::Sqlite).await;
}

/// Fails while a migration has no fixture on either backend, naming the command that writes it.
#[test]
fn every_migration_has_an_upgrade_fixture() {
    let missing: Vec<String> = all_migrations()
        .iter()
        .flat_map(|m| [Backend::Postgres, Backend::Sqlite].map(|b| fixture_path(m, b)))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "migrations without an upgrade fixture: {missing:#?}\n\
         Write them with (Postgres at 127.0.0.1:5432 or PORTAL_TEST_DATABASE_URL):\n  \
         {WRITE_FIXTURES}\nand commit the new files (docs/storage.md, Upgrade fixtures)."
    );
}

/// Writes the fixture of every schema state that has none, on both backends: seeds an
/// installation through the portal's use cases on the newest schema, migrates it down to the
/// state (none down for the newest) and dumps the data. Run by hand when a migration is added
/// (see [`WRITE_FIXTURES`]); existing fixtures are never rewritten — they stand for what
/// databases of that state hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes fixture files; run by hand when a migration is added"]
async fn write_missing_upgrade_fixtures() {
    let all = all_migrations();
    std::fs::create_dir_all(fixture_dir()).unwrap();
    for (i, state) in all.iter().enumerate() {
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let path = fixture_path(state, backend);
            if path.exists() {
                continue;
            }
            let fresh = Fresh::new(backend).await;
            let store = fresh.store();
            let db = store.connection().clone();
            apply_migrations(&db).await.expect("migrate");
            let mut manifest = seed_installation(&store).await;
            manifest.state = state.clone();
            let down = all.len() - i - 1;
            if down > 0 {
                Migrator::down(&db, Some(u32::try_from(down).unwrap()))
                    .await
                    .unwrap_or_else(|e| panic!("down to {state}: {e}"));
            }
            let statements = dump(&db).await;
            fresh.finish().await;
            // The states before the second factors lost the app on the way down: find out by
            // upgrading the dump and signing in.
            if let Some((user, _)) = &manifest.totp {
                let upgraded = load_upgraded(state, backend, &statements.join("\n")).await;
                let portal = fixture_portal(&upgraded.store());
                let outcome = portal.login(login(user, seed::PASSWORD)).await;
                if let Ok(LoginOutcome::Authenticated(_)) = outcome {
                    manifest.password_users.push(user.clone());
                    manifest.totp = None;
                }
                upgraded.finish().await;
            }
            let mut text = format!(
                "-- Portal upgrade fixture: a {} database in the schema state after {state},\n\
                 -- with the data of a small installation (written by `{WRITE_FIXTURES}`;\n\
                 -- seeded through the portal's use cases on the schema after {}, then migrated\n\
                 -- down {down} step(s)). Never edit by hand; see docs/storage.md, Upgrade fixtures.\n\
                 -- manifest: {}\n",
                backend.key(),
                all.last().unwrap(),
                serde_json::to_string(&manifest).unwrap(),
            );
            for s in &statements {
                text.push_str(s);
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
            println!("wrote {} ({} statements)", path.display(), statements.len());
        }
    }
}

/// The storage contract suite on the schema of a database upgraded from the oldest fixture (so
/// every migration ran over data): the suite's checks start from an empty store, so the
/// fixture's rows (checked by `every_*_fixture_upgrades_to_the_newest_schema`) are deleted
/// first. Postgres.
mod contract_postgres {
    use super::*;
    use std::sync::Arc;

    pub struct UpgradedPostgres(Fresh, Arc<SqlStore>);

    impl portal_testkit::Fixture for UpgradedPostgres {
        type Store = SqlStore;

        async fn setup() -> Self {
            let (fresh, _) = upgraded_from(&all_migrations()[0], Backend::Postgres).await;
            clear(fresh.store().connection()).await;
            let store = Arc::new(fresh.store());
            Self(fresh, store)
        }

        fn store(&self) -> Arc<SqlStore> {
            self.1.clone()
        }

        async fn teardown(self) {
            self.0.finish().await;
        }
    }

    portal_testkit::storage_contract!(UpgradedPostgres);
}

/// The same on SQLite (a file).
mod contract_sqlite {
    use super::*;
    use std::sync::Arc;

    pub struct UpgradedSqlite(Fresh, Arc<SqlStore>);

    impl portal_testkit::Fixture for UpgradedSqlite {
        type Store = SqlStore;

        async fn setup() -> Self {
            let (fresh, _) = upgraded_from(&all_migrations()[0], Backend::Sqlite).await;
            clear(fresh.store().connection()).await;
            let store = Arc::new(fresh.store());
            Self(fresh, store)
        }

        fn store(&self) -> Arc<SqlStore> {
            self.1.clone()
        }

        async fn teardown(self) {
            self.0.finish().await;
        }
    }

    portal_testkit::storage_contract!(UpgradedSqlite);
}
