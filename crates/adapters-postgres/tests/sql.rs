//! What only a SQL backend can show: rows that break a domain rule are reported as corrupt
//! (never a panic, never "fixed"), secrets are stored as hashes only, migrations are
//! idempotent, the tests find a Postgres even where none runs, and the list, search and audit
//! queries use their indexes (checked with EXPLAIN through the real driver, on the very SQL the
//! store sends).

use adapters_postgres::testing::{
    ServerSource, TestPostgres, TestSqlite, analyze, seed_audit, seed_users,
};
use adapters_postgres::{DbBackend, SqlStore, connect, migrate};
use portal_core::audit::AuditCategory;
use portal_core::ids::CustomerId;
use portal_core::permission::{LocalizedText, Permission, PermissionCatalog, PermissionKey};
use portal_core::ports::{
    AuditQuery, Commit, CustomerQuery, OutboxStore, PageStart, Queries, StoreError, UserCursor,
    UserQuery, Write,
};
use portal_core::secret::{SecretString, Token};
use portal_core::service::Register;
use portal_core::session::ClientInfo;
use portal_core::testing::{ManualClock, SeededRandom, fast_hasher};
use portal_core::values::Language;
use portal_core::{Deps, Portal};
use portal_testkit::fixtures::{
    audit, code_mail, commit_ok, customer, email, employee, name, t0, writes,
};
use sea_orm::{ConnectionTrait, Statement};
use std::sync::{Arc, Mutex};

async fn exec(store: &SqlStore, sql: &str) {
    store
        .connection()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn uuid_literal(store: &SqlStore, id: uuid::Uuid) -> String {
    match store.backend() {
        DbBackend::Postgres => format!("'{id}'"),
        _ => format!("x'{}'", id.simple()),
    }
}

// ---------------------------------------------------------------------------------------------
// Corrupt rows
// ---------------------------------------------------------------------------------------------

async fn corrupt_rows_are_reported(store: SqlStore) {
    let c = customer("500000001", "Korrupt GmbH");
    let u = employee(c.id(), "corrupt@example.com", "Cora", "Rupt");
    let mut commit = writes([
        Write::InsertCustomer(c.clone()),
        Write::InsertUser(u.clone()),
    ]);
    commit.audit(audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "",
        t0(),
    ));
    commit.mail(code_mail("corrupt@example.com", "123456", t0()));
    commit_ok(&store, commit).await;
    let uid = uuid_literal(&store, u.id().as_uuid());
    let cid = uuid_literal(&store, c.id().as_uuid());

    let user_cases = [
        ("email = 'not an address'", "invalid email"),
        ("email = 'Corrupt@Example.com'", "not normalised"),
        ("role = 'superuser'", "unknown role"),
        ("state = 'zombie'", "unknown state"),
        ("permissions = '[\"Bad Key\"]'", "bad permission key"),
        ("permissions = 'not json'", "bad json"),
        ("language = 'fr'", "unknown language"),
        ("version = -1", "negative version"),
        ("role = 'operator'", "operator with a customer"),
        ("password_hash = NULL", "active without password"),
    ];
    for (set, why) in user_cases {
        let before = store.user(u.id()).await.unwrap().expect("valid before");
        exec(&store, &format!("UPDATE users SET {set} WHERE id = {uid}")).await;
        let got = store.user(u.id()).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{why}: got {got:?}"
        );
        let listed = store
            .users_of_customer(&UserQuery {
                customer: c.id(),
                search: None,
                start: PageStart::First,
                limit: 10,
            })
            .await;
        assert!(
            matches!(listed, Err(StoreError::Corrupt(_))),
            "{why} in a list: {listed:?}"
        );
        // Put the row back for the next case.
        let r = before.record();
        exec(
            &store,
            &format!(
                "UPDATE users SET email = '{}', role = '{}', state = '{}', permissions = '{}', \
                 language = 'de', version = 1, password_hash = '{}' WHERE id = {uid}",
                r.email,
                r.role.key(),
                r.state.key(),
                serde_json::to_string(&r.permissions).unwrap(),
                r.password_hash.as_ref().unwrap().as_phc(),
            ),
        )
        .await;
        assert!(store.user(u.id()).await.is_ok(), "{why}: restored");
    }

    exec(
        &store,
        &format!("UPDATE customers SET entitlements = '[\"ok\", \"NOT OK\"]' WHERE id = {cid}"),
    )
    .await;
    let got = store.customer(c.id()).await;
    assert!(
        matches!(got, Err(StoreError::Corrupt(_))),
        "customer: {got:?}"
    );

    exec(
        &store,
        "UPDATE audit_entries SET category = 'user.teleported'",
    )
    .await;
    let got = store.audit_chain(Some(c.id()), 0, 10).await;
    assert!(matches!(got, Err(StoreError::Corrupt(_))), "audit: {got:?}");

    exec(
        &store,
        "UPDATE outbox SET payload = '{\"to\":\"a@example.com\",\"language\":\"de\",\
         \"intent\":{\"kind\":\"carrier_pigeon\"}}'",
    )
    .await;
    let got = store.dead_letters(None, 10).await;
    assert!(got.is_ok(), "no dead letters to decode");
    let got = store
        .claim_outbox("mail", uuid::Uuid::nil(), t0(), t0(), 10)
        .await;
    assert!(
        matches!(got, Err(StoreError::Corrupt(_))),
        "outbox: {got:?}"
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        stats.pending, 1,
        "a refused claim leaves the mail untouched"
    );
}

#[tokio::test]
async fn postgres_corrupt_rows_are_reported_not_fixed() {
    let db = TestPostgres::start().await;
    corrupt_rows_are_reported(db.store()).await;
    db.finish().await;
}

#[tokio::test]
async fn sqlite_corrupt_rows_are_reported_not_fixed() {
    let db = TestSqlite::file().await;
    corrupt_rows_are_reported(db.store()).await;
    db.finish().await;
}

/// A catalog of the default keys plus `teleport`, as an embedder with its own permissions has.
fn custom_catalog() -> PermissionCatalog {
    let mut permissions = PermissionCatalog::default().permissions().to_vec();
    permissions.push(Permission {
        key: PermissionKey::parse("teleport").unwrap(),
        label: LocalizedText::new("Teleportieren", "Teleport"),
        description: LocalizedText::new("Beamen", "Beam"),
        group: None,
    });
    let groups = PermissionCatalog::default().groups().to_vec();
    PermissionCatalog::new(permissions, groups).unwrap()
}

/// With a catalog, a stored permission key that is well-formed but not in it is corrupt data;
/// without one only the format is checked; a custom catalog knows its own keys.
async fn unknown_catalog_keys_are_reported(plain: SqlStore) {
    let strict = plain.clone().with_catalog(&PermissionCatalog::default());
    let custom = plain.clone().with_catalog(&custom_catalog());
    let c = customer("500000003", "Katalog GmbH");
    let u = employee(c.id(), "catalog@example.com", "Kata", "Log");
    commit_ok(
        &plain,
        writes([
            Write::InsertCustomer(c.clone()),
            Write::InsertUser(u.clone()),
        ]),
    )
    .await;
    assert!(strict.user(u.id()).await.unwrap().is_some(), "valid keys");
    assert!(
        strict.customer(c.id()).await.unwrap().is_some(),
        "valid keys"
    );
    let uid = uuid_literal(&plain, u.id().as_uuid());
    let cid = uuid_literal(&plain, c.id().as_uuid());
    let list = UserQuery {
        customer: c.id(),
        search: None,
        start: PageStart::First,
        limit: 10,
    };

    exec(
        &plain,
        &format!(
            "UPDATE users SET permissions = '[\"support_requests\",\"teleport\"]' WHERE id = {uid}"
        ),
    )
    .await;
    let got = strict.user(u.id()).await;
    assert!(
        matches!(&got, Err(StoreError::Corrupt(e)) if e.to_string().contains("teleport")),
        "user by id: {got:?}"
    );
    let got = strict.user_by_email(u.email()).await;
    assert!(
        matches!(got, Err(StoreError::Corrupt(_))),
        "by email: {got:?}"
    );
    let got = strict.users_of_customer(&list).await;
    assert!(
        matches!(got, Err(StoreError::Corrupt(_))),
        "in a list: {got:?}"
    );
    let got = plain
        .user(u.id())
        .await
        .unwrap()
        .expect("no catalog: format only");
    assert!(
        got.permissions()
            .contains(&PermissionKey::parse("teleport").unwrap())
    );
    assert!(
        custom.user(u.id()).await.unwrap().is_some(),
        "a custom catalog knows its key"
    );
    exec(
        &plain,
        &format!("UPDATE users SET permissions = '[\"support_requests\"]' WHERE id = {uid}"),
    )
    .await;
    assert!(strict.user(u.id()).await.is_ok(), "restored");

    // Defaults must stay within the entitlements, so the second case widens both.
    let entitled = "entitlements = '[\"support_requests\",\"teleport\"]'";
    let restore = format!(
        "UPDATE customers SET entitlements = '{}', default_permissions = '{}' WHERE id = {cid}",
        serde_json::to_string(c.entitlements()).unwrap(),
        serde_json::to_string(c.default_permissions()).unwrap(),
    );
    for (column, set) in [
        ("entitlements", entitled.to_owned()),
        (
            "default_permissions",
            format!("{entitled}, default_permissions = '[\"teleport\"]'"),
        ),
    ] {
        exec(
            &plain,
            &format!("UPDATE customers SET {set} WHERE id = {cid}"),
        )
        .await;
        let got = strict.customer(c.id()).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{column}: {got:?}"
        );
        let got = strict.customer_by_number(c.number()).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{column} by number: {got:?}"
        );
        let got = strict
            .customers(&CustomerQuery {
                search: None,
                after: None,
                limit: 10,
            })
            .await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{column} in a list: {got:?}"
        );
        assert!(plain.customer(c.id()).await.unwrap().is_some(), "{column}");
        assert!(custom.customer(c.id()).await.unwrap().is_some(), "{column}");
        exec(&plain, &restore).await;
    }
    assert!(strict.customer(c.id()).await.is_ok(), "restored");
}

#[tokio::test]
async fn postgres_unknown_catalog_keys_are_reported_as_corrupt() {
    let db = TestPostgres::start().await;
    unknown_catalog_keys_are_reported(db.store()).await;
    db.finish().await;
}

#[tokio::test]
async fn sqlite_unknown_catalog_keys_are_reported_as_corrupt() {
    let db = TestSqlite::file().await;
    unknown_catalog_keys_are_reported(db.store()).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Outbox counts
// ---------------------------------------------------------------------------------------------

/// Inserts `n` mails with `status` in one statement (bypassing the commit path).
async fn seed_outbox(store: &SqlStore, status: &str, n: u64) {
    let now = portal_testkit::fixtures::t0();
    let sql = match store.backend() {
        DbBackend::Postgres => {
            "INSERT INTO outbox (id, created_at, kind, recipient, payload, status, \
             attempts, next_attempt_at) \
             SELECT gen_random_uuid(), $1, 'mail', 'seed@example.com', \
             '{\"to\":\"seed@example.com\",\"language\":\"de\",\
             \"intent\":{\"kind\":\"welcome\",\"first_name\":\"S\"}}', $2, 1, $1 \
             FROM generate_series(1, $3::bigint)"
        }
        _ => {
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?3) \
             INSERT INTO outbox (id, created_at, kind, recipient, payload, status, \
             attempts, next_attempt_at) \
             SELECT randomblob(16), ?1, 'mail', 'seed@example.com', \
             '{\"to\":\"seed@example.com\",\"language\":\"de\",\
             \"intent\":{\"kind\":\"welcome\",\"first_name\":\"S\"}}', ?2, 1, ?1 FROM s"
        }
    };
    store
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            store.backend(),
            sql,
            [now.into(), status.into(), i64::try_from(n).unwrap().into()],
        ))
        .await
        .unwrap();
}

/// Each count stops at the cap, however many delivered mails pile up; smaller counts are exact.
async fn outbox_counts_are_capped(store: SqlStore, seen: Captured) -> (String, String) {
    let cap = adapters_postgres::OUTBOX_STATS_CAP;
    seed_outbox(&store, "sent", cap + 25).await;
    seed_outbox(&store, "pending", 3).await;
    seed_outbox(&store, "dead", 2).await;
    seed_outbox(&store, "claimed", 1).await;
    analyze(&store).await.unwrap();
    let sample = store
        .dead_letters(None, 1)
        .await
        .unwrap()
        .pop()
        .expect("the seeded rows decode");
    assert_eq!(sample.mail().unwrap().intent.key(), "welcome");
    let mut stats = None;
    let plan = plan_of(&store, &seen, async {
        stats = Some(store.outbox_stats().await.unwrap());
    })
    .await;
    let stats = stats.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (3, 1, cap, 2),
        "sent stops at the cap"
    );
    // The claim walks the open mails only, not the delivered ones piled up before them.
    let t = portal_testkit::fixtures::at(60);
    let claim = plan_of(&store, &seen, async {
        let got = store
            .claim_outbox("mail", uuid::Uuid::from_u128(7), t, t, 10)
            .await
            .unwrap();
        assert_eq!(
            got.len(),
            3,
            "the pending mails (the claimed one holds no lease)"
        );
    })
    .await;
    (plan, claim)
}

#[tokio::test]
async fn postgres_outbox_counts_are_capped_and_use_the_partial_indexes() {
    let db = TestPostgres::start().await;
    let (store, seen) = recording_store(db.url()).await;
    let (plan, claim) = outbox_counts_are_capped(store.clone(), seen).await;
    for index in ["outbox_open_idx", "outbox_dead_idx"] {
        assert!(plan.contains(index), "counts should use {index}:\n{plan}");
    }
    assert!(plan.contains("Limit"), "every count is capped:\n{plan}");
    assert!(
        claim.contains("outbox_open_idx") && !claim.contains("Seq Scan"),
        "the claim should use outbox_open_idx:\n{claim}"
    );
    let _ = store.connection().clone().close().await;
    db.finish().await;
}

#[tokio::test]
async fn sqlite_outbox_counts_are_capped_and_use_the_partial_indexes() {
    let lite = TestSqlite::file().await;
    let url = format!("sqlite://{}?mode=rwc", lite.path().display());
    let (store, seen) = recording_store(&url).await;
    let (plan, claim) = outbox_counts_are_capped(store.clone(), seen).await;
    for index in ["outbox_open_idx", "outbox_dead_idx"] {
        assert!(plan.contains(index), "counts should use {index}:\n{plan}");
    }
    // Pending and claimed through `outbox_open_idx`, dead through `outbox_dead_idx`, sent
    // through housekeeping's `outbox_sent_idx` (its LIMIT stops it at the cap).
    assert_eq!(
        plan.matches("SCAN outbox USING").count(),
        4,
        "every count uses an index:\n{plan}"
    );
    assert!(plan.contains("outbox_sent_idx"), "{plan}");
    assert!(
        claim.contains("outbox_open_idx"),
        "the claim should use outbox_open_idx:\n{claim}"
    );
    let _ = store.connection().clone().close().await;
    lite.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Everything the database holds, as text (Postgres renders whole rows).
async fn dump(store: &SqlStore) -> String {
    let mut out = String::new();
    for table in [
        "users",
        "sessions",
        "challenges",
        "action_tokens",
        "outbox",
        "audit_entries",
    ] {
        let rows = store
            .connection()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT t::text AS row FROM {table} t"),
            ))
            .await
            .unwrap();
        for r in rows {
            out.push_str(&r.try_get::<String>("", "row").unwrap());
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn postgres_stores_tickets_and_session_tokens_as_hashes_only() {
    let db = TestPostgres::start().await;
    let store = Arc::new(db.store());
    let deps = Deps {
        queries: store.clone(),
        committer: store.clone(),
        clock: Arc::new(ManualClock::new()),
        ids: Arc::new(portal_core::defaults::UuidV7Ids),
        random: Arc::new(SeededRandom::new(77)),
        hasher: Arc::new(fast_hasher(1)),
        legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
    };
    let portal = Portal::new(deps, Default::default(), Default::default()).unwrap();
    let ticket = portal
        .register(Register {
            email: email("secret@example.com"),
            first_name: name("Sigrid"),
            last_name: name("Geheim"),
            password: SecretString::new("a long and private passphrase"),
            password_confirmation: SecretString::new("a long and private passphrase"),
            language: Language::De,
        })
        .await
        .unwrap();
    let mail = store
        .claim_outbox(
            "mail",
            uuid::Uuid::from_u128(1),
            t0() + chrono::TimeDelta::days(365),
            t0() + chrono::TimeDelta::days(366),
            10,
        )
        .await
        .unwrap()
        .pop()
        .expect("code mail");
    let code = mail
        .mail()
        .unwrap()
        .intent
        .secret()
        .unwrap()
        .expose()
        .to_owned();
    let session = portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await
        .unwrap();
    assert!(
        store
            .mark_sent(mail.id(), uuid::Uuid::from_u128(1), t0())
            .await
            .unwrap()
    );

    let everything = dump(&store).await;
    for (what, secret) in [
        ("ticket", ticket.ticket.expose().to_owned()),
        ("session token", session_token(&session)),
        ("code", code.clone()),
        ("password", "a long and private passphrase".to_owned()),
    ] {
        assert!(
            !everything.contains(&secret),
            "the {what} is stored in plain text"
        );
    }
    let token = Token::parse(&session_token(&session)).unwrap();
    assert!(
        everything.contains(&token.hash().to_hex()),
        "the session is stored by its hash"
    );
    db.finish().await;
}

fn session_token(s: &portal_core::service::IssuedSession) -> String {
    s.token.expose().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Migrations and the test server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn migrations_are_idempotent_on_both_backends() {
    let db = TestPostgres::start().await;
    migrate(db.store().connection())
        .await
        .expect("second run on Postgres");
    db.finish().await;
    let lite = TestSqlite::file().await;
    migrate(lite.store().connection())
        .await
        .expect("second run on SQLite");
    lite.finish().await;
}

/// The outbox-kinds migration carries queued mails over both ways: down to the mail-only
/// columns (`language`, `template`, `intent`; other kinds cannot be held there and go), and up
/// again to `kind` + `payload`, after which every mail reads back exactly as it was queued.
async fn outbox_kinds_migration_carries_mails_over(store: SqlStore) {
    use portal_core::ids::OutboxId;
    use portal_core::outbox::{OutboxMessage, Payload};
    use sea_orm_migration::MigratorTrait;
    let mail = code_mail("migrated@example.com", "314159", t0());
    let other = OutboxMessage {
        id: OutboxId::from_uuid(uuid::Uuid::from_u128(0xabc)),
        created_at: t0(),
        payload: Payload::Unknown {
            kind: "webhook".into(),
            recipient: "https://hooks.example.com/".into(),
            json: "{}".into(),
        },
    };
    let mut commit = Commit::new();
    commit.mail(mail.clone());
    commit.message(other.clone());
    commit_ok(&store, commit).await;

    // Down past the later migrations too (the OIDC provider, the second-factor policy, …),
    // then the outbox kinds: to the state after the third migration.
    let later = adapters_postgres::Migrator::migrations().len() - 3;
    adapters_postgres::Migrator::down(store.connection(), Some(u32::try_from(later).unwrap()))
        .await
        .expect("down");
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT recipient, language, template, intent FROM outbox",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only mail fits the mail-only schema");
    let col = |name: &str| -> String { rows[0].try_get("", name).unwrap() };
    assert_eq!(col("recipient"), "migrated@example.com");
    assert_eq!(col("language"), "en");
    assert_eq!(col("template"), "verification_code");
    let intent: portal_core::mail::MailIntent = serde_json::from_str(&col("intent")).unwrap();
    assert_eq!(intent, mail.intent);

    adapters_postgres::Migrator::up(store.connection(), None)
        .await
        .expect("up");
    let e = store
        .outbox_entry(mail.id)
        .await
        .unwrap()
        .expect("carried over");
    assert_eq!(e.mail().as_ref(), Some(&mail), "reads back as queued");
    assert_eq!(e.message.payload.kind_key(), "mail");
    assert!(store.outbox_entry(other.id).await.unwrap().is_none());
    let claimed = store
        .claim_outbox(
            "mail",
            uuid::Uuid::from_u128(1),
            t0(),
            t0() + chrono::TimeDelta::minutes(5),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "and is delivered like any new mail");
}

#[tokio::test]
async fn the_outbox_kinds_migration_carries_mails_over_on_both_backends() {
    let db = TestPostgres::start().await;
    outbox_kinds_migration_carries_mails_over(db.store()).await;
    db.finish().await;
    let lite = TestSqlite::file().await;
    outbox_kinds_migration_carries_mails_over(lite.store()).await;
    lite.finish().await;
}

#[tokio::test]
async fn tests_start_their_own_cluster_when_no_server_is_running() {
    let db = TestPostgres::start_own_cluster().await;
    assert_eq!(db.source(), ServerSource::TempCluster);
    let store = db.store();
    let c = customer("500000002", "Eigener Cluster GmbH");
    commit_ok(&store, writes([Write::InsertCustomer(c.clone())])).await;
    assert!(store.customer(c.id()).await.unwrap().is_some());
    db.finish().await;
}

async fn database_exists(admin_url: &str, name: &str) -> bool {
    let admin = connect(admin_url).await.unwrap();
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let _ = admin.close().await;
    row.try_get_by_index::<i64>(0).unwrap() == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_still_drops_its_database() {
    // A server that outlives the failing test (an own cluster of `outer` if none runs here).
    let outer = TestPostgres::start().await;
    let admin_url = adapters_postgres::testing::with_database(outer.url(), "postgres");
    let (name_tx, name_rx) = tokio::sync::oneshot::channel();
    let server = admin_url.clone();
    let failing = tokio::spawn(async move {
        let db = TestPostgres::start_on_server(&server).await;
        let store = db.store();
        commit_ok(
            &store,
            writes([Write::InsertCustomer(customer("500000004", "Leck GmbH"))]),
        )
        .await;
        name_tx.send(db.database_name().to_owned()).unwrap();
        panic!("the test fails before finish()");
    });
    let name = name_rx
        .await
        .expect("the failing test created its database");
    let outcome = failing.await.expect_err("the test panicked");
    assert!(outcome.is_panic());
    assert!(name.starts_with("portal_test_"), "{name}");
    assert!(
        !database_exists(&admin_url, &name).await,
        "{name} was dropped while the panic unwound"
    );

    // finish() still drops it, and the handle's Drop then has nothing left to do.
    let db = TestPostgres::start_on_server(&admin_url).await;
    let name = db.database_name().to_owned();
    assert!(database_exists(&admin_url, &name).await);
    db.finish().await;
    assert!(!database_exists(&admin_url, &name).await, "finish drops it");
    outer.finish().await;
}

#[test]
fn dropping_a_test_database_gives_up_when_the_server_is_gone() {
    // Nothing listens on port 1, and no socket lives in a directory that does not exist.
    for url in [
        "postgres://postgres@127.0.0.1:1/postgres",
        "postgres://postgres@localhost/postgres?host=/nonexistent/portal-test",
    ] {
        let got = adapters_postgres::testing::drop_database_blocking(
            url,
            "portal_test_gone",
            std::time::Duration::from_secs(2),
        );
        assert!(got.is_err(), "{url}: {got:?}");
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(connect("mysql://localhost/x").await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Query plans
// ---------------------------------------------------------------------------------------------

type Captured = Arc<Mutex<Vec<Statement>>>;

/// A store on `url` whose every statement is recorded, so the test can EXPLAIN exactly what the
/// store sent.
async fn recording_store(url: &str) -> (SqlStore, Captured) {
    let mut db = connect(url).await.unwrap();
    let seen: Captured = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    db.set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.clone()));
    (SqlStore::new(db), seen)
}

async fn plan_of(
    store: &SqlStore,
    seen: &Captured,
    call: impl std::future::Future<Output = ()>,
) -> String {
    seen.lock().unwrap().clear();
    call.await;
    let stmt = seen
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s.sql.trim_start().to_uppercase().starts_with("SELECT"))
        .cloned()
        .expect("a SELECT was sent");
    let explain = match store.backend() {
        DbBackend::Postgres => "EXPLAIN ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let values = stmt.values.clone().map(|v| v.0).unwrap_or_default();
    let rows = store
        .connection()
        .query_all_raw(Statement::from_sql_and_values(
            store.backend(),
            format!("{explain}{}", stmt.sql),
            values,
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| match store.backend() {
            DbBackend::Postgres => r.try_get_by_index::<String>(0).unwrap(),
            _ => r.try_get::<String>("", "detail").unwrap(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the plan tests query: the big customer, and the one user with audit entries about him.
struct Seeded {
    big: CustomerId,
    subject: portal_core::ids::UserId,
}

/// The first of the seeded audit times (`seed_audit` puts entry `i` at this plus `i` seconds).
fn seed_start() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn seeded(store: &SqlStore) -> Seeded {
    let big = customer("600000001", "Gross GmbH");
    let other = customer("600000002", "Andere GmbH");
    commit_ok(
        store,
        writes([
            Write::InsertCustomer(big.clone()),
            Write::InsertCustomer(other.clone()),
        ]),
    )
    .await;
    seed_users(store, big.id(), "big", 1, 30_000).await.unwrap();
    seed_users(store, other.id(), "other", 1, 30_000)
        .await
        .unwrap();
    let rare = employee(
        big.id(),
        "q.zwoelfender@example.com",
        "Quirinus",
        "Zwölfender",
    );
    let subject = rare.id();
    commit_ok(store, writes([Write::InsertUser(rare)])).await;
    seed_audit(store, big.id(), 1, 60_000).await.unwrap();
    seed_audit(store, other.id(), 1, 20_000).await.unwrap();
    // Three entries about one user, in a rare category, through the commit path (seq 60001–3).
    let mut commit = Commit::new();
    for i in 0..3 {
        commit.audit(audit(
            Some(big.id()),
            Some(subject),
            AuditCategory::PermissionsChanged,
            "permissions=+shop",
            t0() + chrono::TimeDelta::seconds(i),
        ));
    }
    commit_ok(store, commit).await;
    analyze(store).await.unwrap();
    Seeded {
        big: big.id(),
        subject,
    }
}

fn page(customer: CustomerId, search: Option<&str>, start: PageStart<UserCursor>) -> UserQuery {
    UserQuery {
        customer,
        search: search.map(str::to_owned),
        start,
        limit: 10,
    }
}

fn audit_page(customer: CustomerId, before: Option<u64>) -> AuditQuery {
    AuditQuery {
        customer: Some(customer),
        subject: None,
        categories: Vec::new(),
        search: None,
        search_categories: Vec::new(),
        from: None,
        until: None,
        before_seq: before,
        limit: 20,
    }
}

/// Search answers the same through either SQLite path (FTS candidates for a rare term, the
/// index walk for a common one) and on Postgres.
async fn search_answers(store: &SqlStore, big: CustomerId) {
    let common = store
        .users_of_customer(&page(big, Some("vorname1"), PageStart::First))
        .await
        .unwrap();
    let names: Vec<&str> = common.iter().map(|u| u.last_name().as_str()).collect();
    let mut want = vec!["Nachname0000001".to_owned()];
    want.extend((10..20).map(|i| format!("Nachname{i:07}")));
    assert_eq!(names, want, "common term, first page");
    assert_eq!(
        store
            .count_users_of_customer(big, Some("vorname1".into()), 100_000)
            .await
            .unwrap(),
        11_111,
        "1, 10–19, 100–199, 1000–1999, 10000–19999"
    );
    assert_eq!(
        store
            .count_users_of_customer(big, Some("zwölfender".into()), 100_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_users_of_customer(big, Some("ender".into()), 100_000)
            .await
            .unwrap(),
        1,
        "a substring inside a word"
    );
}

async fn check_plans(
    store: &SqlStore,
    seen: &Captured,
    seeded: &Seeded,
) -> Vec<(&'static str, String)> {
    let (big, subject) = (seeded.big, seeded.subject);
    let deep = UserCursor {
        sort_key: "nachname0020000".into(),
        id: portal_core::ids::UserId::from_uuid(uuid::Uuid::nil()),
    };
    let mut plans = Vec::new();
    plans.push((
        "first page",
        plan_of(store, seen, async {
            assert_eq!(
                store
                    .users_of_customer(&page(big, None, PageStart::First))
                    .await
                    .unwrap()
                    .len(),
                11
            );
        })
        .await,
    ));
    plans.push((
        "deep page",
        plan_of(store, seen, async {
            assert_eq!(
                store
                    .users_of_customer(&page(big, None, PageStart::After(deep.clone())))
                    .await
                    .unwrap()
                    .len(),
                11
            );
        })
        .await,
    ));
    plans.push((
        "rare search",
        plan_of(store, seen, async {
            assert_eq!(
                store
                    .users_of_customer(&page(big, Some("zwölfender"), PageStart::First))
                    .await
                    .unwrap()
                    .len(),
                1
            );
        })
        .await,
    ));
    plans.push((
        "common search",
        plan_of(store, seen, async {
            assert_eq!(
                store
                    .users_of_customer(&page(big, Some("vorname1"), PageStart::First))
                    .await
                    .unwrap()
                    .len(),
                11
            );
        })
        .await,
    ));
    plans.push((
        "audit first page",
        plan_of(store, seen, async {
            assert_eq!(
                store.audit(&audit_page(big, None)).await.unwrap()[0].seq,
                60_003
            );
        })
        .await,
    ));
    plans.push((
        "audit by subject",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.subject = Some(subject);
            let got = store.audit(&q).await.unwrap();
            assert_eq!(
                got.iter().map(|e| e.seq).collect::<Vec<_>>(),
                [60_003, 60_002, 60_001]
            );
        })
        .await,
    ));
    plans.push((
        "audit by category",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.categories = vec![AuditCategory::PermissionsChanged];
            assert_eq!(store.audit(&q).await.unwrap().len(), 3);
        })
        .await,
    ));
    plans.push((
        "audit by common category",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.categories = vec![AuditCategory::UserLocked];
            let got = store.audit(&q).await.unwrap();
            assert_eq!(got.len(), 21);
            assert_eq!(got[0].seq, 60_000, "every tenth seeded entry");
        })
        .await,
    ));
    plans.push((
        "audit by time range",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.from = Some(seed_start() + chrono::TimeDelta::seconds(30_000));
            q.until = Some(seed_start() + chrono::TimeDelta::seconds(30_100));
            let got = store.audit(&q).await.unwrap();
            assert_eq!(got.len(), 21);
            assert_eq!(got[0].seq, 30_099, "newest first within the range");
        })
        .await,
    ));
    plans.push((
        "audit rare search",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.search = Some("+shop".into());
            let got = store.audit(&q).await.unwrap();
            assert_eq!(
                got.iter().map(|e| e.seq).collect::<Vec<_>>(),
                [60_003, 60_002, 60_001],
                "the three entries of the rare text, newest first"
            );
        })
        .await,
    ));
    plans.push((
        "audit common search",
        plan_of(store, seen, async {
            let mut q = audit_page(big, None);
            q.search = Some("seq=5".into());
            let got = store.audit(&q).await.unwrap();
            assert_eq!(got.len(), 21);
            assert_eq!(got[0].seq, 59_999, "the newest entry containing seq=5");
        })
        .await,
    ));
    plans.push((
        "audit deep page",
        plan_of(store, seen, async {
            assert_eq!(
                store.audit(&audit_page(big, Some(1_000))).await.unwrap()[0].seq,
                999
            );
        })
        .await,
    ));
    plans
}

/// The index each query of [`check_plans`] must use (the rare search differs per backend).
fn expected_index(what: &str) -> &'static str {
    match what {
        // A common term fills the page at once by walking the customer's index and testing
        // each row: faster than collecting every match from the trigram index.
        "first page" | "deep page" | "common search" => "users_customer_sort_idx",
        "audit first page" | "audit deep page" | "audit common search" => {
            "audit_entries_chain_seq_key"
        }
        "audit by subject" => "audit_entries_subject_idx",
        "audit by category" | "audit by common category" => "audit_entries_category_idx",
        "audit by time range" => "audit_entries_at_idx",
        other => panic!("no expected index for {other}"),
    }
}

#[tokio::test]
async fn postgres_list_search_and_audit_queries_use_their_indexes() {
    let db = TestPostgres::start().await;
    let (store, seen) = recording_store(db.url()).await;
    let seeded = seeded(&store).await;
    search_answers(&store, seeded.big).await;
    for (what, plan) in check_plans(&store, &seen, &seeded).await {
        let expected = match what {
            "rare search" => "users_search_trgm_idx",
            "audit rare search" => "audit_entries_search_trgm_idx",
            _ => expected_index(what),
        };
        assert!(
            plan.contains(expected),
            "{what} should use {expected}:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{what} scans a table:\n{plan}");
    }
    let _ = store.connection().clone().close().await;
    db.finish().await;
}

#[tokio::test]
async fn sqlite_list_search_and_audit_queries_use_their_indexes() {
    let lite = TestSqlite::file().await;
    let url = format!("sqlite://{}?mode=rwc", lite.path().display());
    let (store, seen) = recording_store(&url).await;
    let seeded = seeded(&store).await;
    search_answers(&store, seeded.big).await;
    for (what, plan) in check_plans(&store, &seen, &seeded).await {
        // A rare term is looked up in the FTS5 trigram index first (users_search, audit_search);
        // the page is then read by primary key (a few rows, sorted in memory).
        let expected = match what {
            "rare search" => "sqlite_autoindex_users_1",
            "audit rare search" => "sqlite_autoindex_audit_entries_1",
            _ => expected_index(what),
        };
        assert!(
            plan.contains(expected),
            "{what} should use {expected}:\n{plan}"
        );
        assert!(
            !plan.contains("SCAN users") && !plan.contains("SCAN audit_entries"),
            "{what} scans a table:\n{plan}"
        );
        // A time range is found through `(chain_key, at)` and its rows sorted by seq (Postgres
        // does the same); every other list follows its index in order.
        if !matches!(
            what,
            "rare search" | "audit rare search" | "audit by time range"
        ) {
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{what} sorts instead of following the index:\n{plan}"
            );
        }
    }
    let _ = store.connection().clone().close().await;
    lite.finish().await;
}

/// Statements other than searches keep their cached (possibly generic) plans: replanning every
/// execution doubled the cost of a session lookup. Searches plan for their values (see the
/// unit test `searches_plan_for_their_values_and_nothing_else_does` in `store.rs`).
#[tokio::test]
async fn postgres_connections_keep_cached_plans() {
    let db = TestPostgres::start().await;
    let row = db
        .store()
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SHOW plan_cache_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode, "auto");
    db.finish().await;
}

#[tokio::test]
async fn sqlite_files_run_in_wal_mode_with_foreign_keys() {
    let lite = TestSqlite::file().await;
    let conn = lite.store().connection().clone();
    let get = |sql: &'static str| {
        let conn = conn.clone();
        async move {
            let row = conn
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
                .unwrap()
        }
    };
    assert_eq!(get("PRAGMA journal_mode").await, "wal");
    assert_eq!(get("PRAGMA foreign_keys").await, "1");
    drop(conn);
    lite.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Housekeeping plans
// ---------------------------------------------------------------------------------------------

/// The DELETE each purge sent, with its values.
async fn purge_statements(store: &SqlStore, seen: &Captured) -> Vec<(&'static str, Statement)> {
    use portal_core::ports::{Committer as _, Expired, OutboxStore as _};
    let mut out = Vec::new();
    let mut last_delete = |name: &'static str| {
        let stmt = seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.sql.trim_start().to_uppercase().starts_with("DELETE"))
            .cloned()
            .expect("a DELETE was sent");
        seen.lock().unwrap().clear();
        out.push((name, stmt));
    };
    for kind in Expired::ALL {
        store.purge_expired(kind, t0(), 100).await.unwrap();
        last_delete(kind.key());
    }
    store.purge_sent(t0(), 100).await.unwrap();
    last_delete("sent_mail");
    out
}

fn purge_index(what: &str) -> &'static str {
    match what {
        "sessions" => "sessions_idle_expires_idx",
        "challenges" => "challenges_created_idx",
        "action_tokens" => "action_tokens_expires_idx",
        "counters" => "counters_last_at_idx",
        "sent_mail" => "outbox_sent_idx",
        "oidc_tokens" => "oidc_tokens_expires_idx",
        "passkey_challenges" => "passkey_challenges_expires_idx",
        other => panic!("no expected index for {other}"),
    }
}

/// Every purge finds its dead rows through an index (so a run costs the rows it removes, not the
/// table): SQLite plans by the schema alone; on Postgres, whose planner rightly prefers a scan of
/// a near-empty table, sequential scans are switched off to prove an index serves the predicate.
#[tokio::test]
async fn purges_find_their_rows_by_index() {
    let db = TestPostgres::start().await;
    let lite = TestSqlite::file().await;
    let lite_url = format!("sqlite://{}?mode=rwc", lite.path().display());
    for url in [db.url().to_owned(), lite_url] {
        let (store, seen) = recording_store(&url).await;
        for (what, stmt) in purge_statements(&store, &seen).await {
            let values = stmt.values.clone().map(|v| v.0).unwrap_or_default();
            let plan = match store.backend() {
                DbBackend::Postgres => {
                    let txn = sea_orm::TransactionTrait::begin(store.connection())
                        .await
                        .unwrap();
                    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                        .await
                        .unwrap();
                    let rows = txn
                        .query_all_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            format!("EXPLAIN {}", stmt.sql),
                            values,
                        ))
                        .await
                        .unwrap();
                    txn.rollback().await.unwrap();
                    rows.iter()
                        .map(|r| r.try_get_by_index::<String>(0).unwrap())
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                _ => store
                    .connection()
                    .query_all_raw(Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        format!("EXPLAIN QUERY PLAN {}", stmt.sql),
                        values,
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String>("", "detail").unwrap())
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            let expected = purge_index(what);
            assert!(
                plan.contains(expected),
                "{url}: {what} should use {expected}:\n{plan}"
            );
        }
        let _ = store.connection().clone().close().await;
    }
    db.finish().await;
    lite.finish().await;
}
