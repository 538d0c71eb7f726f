//! The schema, as sea-orm-migration migrations that run unchanged on Postgres and SQLite.
//!
//! Where the two differ the migration asks the backend and adds what only one has: the `pg_trgm`
//! extension and its GIN index (Postgres), `COLLATE "C"` on the ordered text columns so Postgres
//! sorts them bytewise like SQLite and the in-memory adapter do. Later migrations (the MFA
//! columns, for example) are appended to [`Migrator::migrations`]; a shipped migration is never
//! edited.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// Every migration of the storage schema, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(InitialSchema),
            Box::new(SecondFactors),
            Box::new(Housekeeping),
            Box::new(OutboxKinds),
            Box::new(SecondFactorPolicy),
            Box::new(OidcProvider),
            Box::new(Passkeys),
            Box::new(LegacyAccounts),
            Box::new(SecretKeysRetention),
            Box::new(Webhooks),
            Box::new(AuditSearch),
            Box::new(WebhookGeneration),
        ]
    }
}

/// The first schema: every table of the storage ports.
struct InitialSchema;

impl MigrationName for InitialSchema {
    fn name(&self) -> &'static str {
        "m20261126_000001_initial_schema"
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn uuid_pk(name: &str) -> ColumnDef {
    ColumnDef::new(a(name))
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

fn uuid(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).uuid().not_null().to_owned()
}

fn uuid_null(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).uuid().null().to_owned()
}

fn text(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).text().not_null().to_owned()
}

fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).text().null().to_owned()
}

/// A text column that is compared and sorted bytewise on every backend.
fn text_c(name: &str, backend: DbBackend) -> ColumnDef {
    let mut c = text(name);
    if backend == DbBackend::Postgres {
        c.extra("COLLATE \"C\"");
    }
    c
}

fn ts(name: &str) -> ColumnDef {
    ColumnDef::new(a(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn ts_null(name: &str) -> ColumnDef {
    ColumnDef::new(a(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn big(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).big_integer().not_null().to_owned()
}

fn fk(name: &str, from: (&str, &str), to: (&str, &str)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(a(from.0), a(from.1))
        .to(a(to.0), a(to.1))
        .on_delete(ForeignKeyAction::NoAction)
        .on_update(ForeignKeyAction::NoAction)
        .to_owned()
}

fn index(name: &str, table: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(a(table));
    for c in cols {
        i.col(a(c));
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for InitialSchema {
    #[allow(clippy::too_many_lines)]
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        let conn = m.get_connection();
        if b == DbBackend::Postgres {
            conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                .await?;
        }

        m.create_table(
            Table::create()
                .table(a("customers"))
                .col(uuid_pk("id"))
                .col(text_c("number", b))
                .col(text("name"))
                .col(text_c("name_lower", b))
                .col(text("affiliations"))
                .col(text("channel"))
                .col(text("entitlements"))
                .col(text("default_permissions"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(big("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("customers_number_key", "customers", &["number"])
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(a("users"))
                .col(uuid_pk("id"))
                .col(text_c("email", b))
                .col(text("first_name"))
                .col(text("last_name"))
                .col(text("language"))
                .col(text("role"))
                .col(text("state"))
                .col(text_null("lock"))
                .col(uuid_null("customer_id"))
                .col(text_null("affiliation"))
                .col(text("permissions"))
                .col(text_null("password_hash"))
                .col(ts_null("last_login_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(big("version"))
                .col(text_c("sort_key", b))
                .col(text_c("search_text", b))
                .foreign_key(&mut fk(
                    "users_customer_fkey",
                    ("users", "customer_id"),
                    ("customers", "id"),
                ))
                .to_owned(),
        )
        .await?;
        // An address belongs to at most one account; pending registrations hold no claim on it.
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX users_email_account_key ON users (email) \
             WHERE state <> 'pending_verification'",
        )
        .await?;
        m.create_index(index("users_email_idx", "users", &["email"]))
            .await?;
        // The user table of a customer, in keyset order.
        m.create_index(index(
            "users_customer_sort_idx",
            "users",
            &["customer_id", "sort_key", "id"],
        ))
        .await?;
        m.create_index(index("users_role_idx", "users", &["role", "customer_id"]))
            .await?;
        // Without the GIN pending list: a search then never has to scan recent inserts
        // linearly (4 ms instead of 0.2 ms after a bulk load); inserting users is rare.
        if b == DbBackend::Postgres {
            conn.execute_unprepared(
                "CREATE INDEX users_search_trgm_idx ON users USING gin (search_text gin_trgm_ops) \
                 WITH (fastupdate = off)",
            )
            .await?;
        }

        if b == DbBackend::Sqlite {
            // SQLite has no trigram index type; FTS5's trigram tokenizer is one. The search text
            // is mirrored into it by triggers, keyed through a map table (a uuid is no FTS
            // rowid, and implicit rowids of `users` may change on VACUUM).
            for sql in [
                "CREATE TABLE users_search_map (id INTEGER PRIMARY KEY, user_id BLOB NOT NULL UNIQUE)",
                "CREATE VIRTUAL TABLE users_search USING fts5(search_text, \
                 tokenize = 'trigram case_sensitive 1')",
                "CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN \
                 INSERT INTO users_search_map (user_id) VALUES (new.id); \
                 INSERT INTO users_search (rowid, search_text) VALUES \
                 ((SELECT id FROM users_search_map WHERE user_id = new.id), new.search_text); \
                 END",
                "CREATE TRIGGER users_search_update AFTER UPDATE OF search_text ON users BEGIN \
                 UPDATE users_search SET search_text = new.search_text WHERE rowid = \
                 (SELECT id FROM users_search_map WHERE user_id = old.id); \
                 END",
                "CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN \
                 DELETE FROM users_search WHERE rowid = \
                 (SELECT id FROM users_search_map WHERE user_id = old.id); \
                 DELETE FROM users_search_map WHERE user_id = old.id; \
                 END",
            ] {
                conn.execute_unprepared(sql).await?;
            }
        }

        m.create_table(
            Table::create()
                .table(a("sessions"))
                .col(uuid_pk("id"))
                .col(text("token_hash"))
                .col(uuid("user_id"))
                .col(ts("created_at"))
                .col(ts("last_seen_at"))
                .col(ts("idle_expires_at"))
                .col(ts("expires_at"))
                .col(ts("authenticated_at"))
                .col(text_null("client_ip"))
                .col(text_null("user_agent"))
                .foreign_key(&mut fk(
                    "sessions_user_fkey",
                    ("sessions", "user_id"),
                    ("users", "id"),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("sessions_token_hash_key", "sessions", &["token_hash"])
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(index("sessions_user_idx", "sessions", &["user_id"]))
            .await?;

        m.create_table(
            Table::create()
                .table(a("challenges"))
                .col(uuid_pk("id"))
                .col(text("ticket_hash"))
                .col(uuid("user_id"))
                .col(text("purpose"))
                .col(uuid_null("invitation_token"))
                .col(text("email"))
                .col(text("code_hash"))
                .col(text_null("password_hash"))
                .col(ts("expires_at"))
                .col(big("attempts_left"))
                .col(big("sends"))
                .col(ts("last_sent_at"))
                .col(ts("created_at"))
                .col(big("version"))
                .foreign_key(&mut fk(
                    "challenges_user_fkey",
                    ("challenges", "user_id"),
                    ("users", "id"),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "challenges_ticket_idx",
            "challenges",
            &["ticket_hash"],
        ))
        .await?;
        m.create_index(index("challenges_user_idx", "challenges", &["user_id"]))
            .await?;
        m.create_index(index(
            "challenges_email_created_idx",
            "challenges",
            &["email", "created_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(a("action_tokens"))
                .col(uuid_pk("id"))
                .col(text("token_hash"))
                .col(text("purpose"))
                .col(uuid("user_id"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("used_at"))
                .col(big("version"))
                .foreign_key(&mut fk(
                    "action_tokens_user_fkey",
                    ("action_tokens", "user_id"),
                    ("users", "id"),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "action_tokens_hash_idx",
            "action_tokens",
            &["token_hash", "purpose"],
        ))
        .await?;
        m.create_index(index(
            "action_tokens_user_idx",
            "action_tokens",
            &["user_id", "purpose"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(a("admin_requests"))
                .col(uuid_pk("id"))
                .col(uuid("customer_id"))
                .col(uuid("requester"))
                .col(text("status"))
                .col(uuid_null("consented_by"))
                .col(uuid_null("decided_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(big("version"))
                .foreign_key(&mut fk(
                    "admin_requests_customer_fkey",
                    ("admin_requests", "customer_id"),
                    ("customers", "id"),
                ))
                .foreign_key(&mut fk(
                    "admin_requests_requester_fkey",
                    ("admin_requests", "requester"),
                    ("users", "id"),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "admin_requests_customer_idx",
            "admin_requests",
            &["customer_id", "created_at"],
        ))
        .await?;
        m.create_index(index(
            "admin_requests_requester_idx",
            "admin_requests",
            &["requester"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(a("legacy_claims"))
                .col(
                    ColumnDef::new(a("legacy_id"))
                        .text()
                        .not_null()
                        .primary_key()
                        .to_owned(),
                )
                .col(uuid("user_id"))
                .col(uuid("customer_id"))
                .col(ts("claimed_at"))
                .to_owned(),
        )
        .await?;

        // One row per chain: its head. Locked (FOR UPDATE) by every commit that appends to it.
        m.create_table(
            Table::create()
                .table(a("audit_chains"))
                .col(uuid_pk("chain_key"))
                .col(big("seq"))
                .col(text("hash"))
                .to_owned(),
        )
        .await?;
        // Append-only; deliberately no foreign keys, so deleting a user keeps the trail.
        m.create_table(
            Table::create()
                .table(a("audit_entries"))
                .col(uuid_pk("id"))
                .col(uuid("chain_key"))
                .col(big("seq"))
                .col(ts("at"))
                .col(uuid_null("customer_id"))
                .col(text("actor_kind"))
                .col(uuid_null("actor_user"))
                .col(uuid_null("subject"))
                .col(text("category"))
                .col(text("details"))
                .col(text("details_lower"))
                .col(text("prev_hash"))
                .col(text("hash"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "audit_entries_chain_seq_key",
                "audit_entries",
                &["chain_key", "seq"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            "audit_entries_subject_idx",
            "audit_entries",
            &["chain_key", "subject", "seq"],
        ))
        .await?;
        m.create_index(index(
            "audit_entries_category_idx",
            "audit_entries",
            &["chain_key", "category", "seq"],
        ))
        .await?;
        m.create_index(index(
            "audit_entries_at_idx",
            "audit_entries",
            &["chain_key", "at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(a("outbox"))
                .col(
                    ColumnDef::new(a("seq"))
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key()
                        .to_owned(),
                )
                .col(uuid("id"))
                .col(ts("created_at"))
                .col(text("recipient"))
                .col(text("language"))
                .col(text("template"))
                .col(text("intent"))
                .col(text("status"))
                .col(big("attempts"))
                .col(ts("next_attempt_at"))
                .col(uuid_null("claim"))
                .col(ts_null("claimed_until"))
                .col(text_null("last_error"))
                .col(ts_null("sent_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("outbox_id_key", "outbox", &["id"])
                .unique()
                .to_owned(),
        )
        .await?;
        // Only open mails are indexed: delivered ones pile up without slowing the claim.
        conn.execute_unprepared(
            "CREATE INDEX outbox_open_idx ON outbox (seq) WHERE status IN ('pending', 'claimed')",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX outbox_dead_idx ON outbox (seq) WHERE status = 'dead'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "outbox",
            "audit_entries",
            "audit_chains",
            "legacy_claims",
            "admin_requests",
            "action_tokens",
            "challenges",
            "sessions",
            "users",
            "customers",
            "users_search",
            "users_search_map",
        ] {
            m.drop_table(Table::drop().table(a(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Second factors, session kinds and rate counters: the user's MFA state (one JSON column, so it
/// is version-checked with the user), what a session token stands for, and the counters of the
/// login protection.
struct SecondFactors;

impl MigrationName for SecondFactors {
    fn name(&self) -> &'static str {
        "m20261126_000002_second_factors"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SecondFactors {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(a("users"))
                .add_column(
                    ColumnDef::new(a("mfa"))
                        .text()
                        .not_null()
                        .default("{}")
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(a("sessions"))
                .add_column(
                    ColumnDef::new(a("kind"))
                        .text()
                        .not_null()
                        .default("{\"kind\":\"full\"}")
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("counters"))
                .col(ColumnDef::new(a("key")).text().not_null().primary_key())
                .col(big("count"))
                .col(ts("last_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(a("counters")).if_exists().to_owned())
            .await?;
        for (table, column) in [("sessions", "kind"), ("users", "mfa")] {
            m.alter_table(
                Table::alter()
                    .table(a(table))
                    .drop_column(a(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// Indexes for housekeeping: every purge finds its dead rows by index, so a run costs the rows it
/// removes, not the size of the table.
struct Housekeeping;

impl MigrationName for Housekeeping {
    fn name(&self) -> &'static str {
        "m20261202_000003_housekeeping"
    }
}

/// `(name, table, column)` of the housekeeping indexes.
const HOUSEKEEPING_INDEXES: [(&str, &str, &str); 4] = [
    ("sessions_idle_expires_idx", "sessions", "idle_expires_at"),
    ("challenges_created_idx", "challenges", "created_at"),
    ("action_tokens_expires_idx", "action_tokens", "expires_at"),
    ("counters_last_at_idx", "counters", "last_at"),
];

#[async_trait::async_trait]
impl MigrationTrait for Housekeeping {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in HOUSEKEEPING_INDEXES {
            m.create_index(index(name, table, &[column])).await?;
        }
        // Delivered mails only: the predicate is repeated verbatim by the purge (SQLite uses a
        // partial index only for a query containing its WHERE term as written).
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE status = 'sent'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("outbox_sent_idx").to_owned())
            .await?;
        for (name, _, _) in HOUSEKEEPING_INDEXES {
            m.drop_index(Index::drop().name(name).to_owned()).await?;
        }
        Ok(())
    }
}

/// Outgoing messages of several kinds: the outbox's mail-only columns (`language`, `template`,
/// `intent`) become `kind` and a JSON `payload`; `recipient` stays, as each kind's destination
/// shown to operators. Existing mails are carried over as kind `mail` with the payload
/// `{"to", "language", "intent"}` built from their columns, in the same migration.
struct OutboxKinds;

impl MigrationName for OutboxKinds {
    fn name(&self) -> &'static str {
        "m20261206_000004_outbox_kinds"
    }
}

async fn add_text_column(
    m: &SchemaManager<'_>,
    table: &str,
    column: &str,
    default: &str,
) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(a(table))
            .add_column(
                ColumnDef::new(a(column))
                    .text()
                    .not_null()
                    .default(default)
                    .to_owned(),
            )
            .to_owned(),
    )
    .await
}

async fn drop_columns(m: &SchemaManager<'_>, table: &str, columns: &[&str]) -> Result<(), DbErr> {
    // One column per statement: SQLite alters one thing at a time.
    for column in columns {
        m.alter_table(
            Table::alter()
                .table(a(table))
                .drop_column(a(column))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxKinds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_text_column(m, "outbox", "kind", "mail").await?;
        add_text_column(m, "outbox", "payload", "{}").await?;
        let fill = match m.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE outbox SET payload = json_build_object('to', recipient, \
                 'language', language, 'intent', intent::json)::text"
            }
            _ => {
                "UPDATE outbox SET payload = json_object('to', recipient, \
                 'language', language, 'intent', json(intent))"
            }
        };
        m.get_connection().execute_unprepared(fill).await?;
        drop_columns(m, "outbox", &["template", "intent", "language"]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_text_column(m, "outbox", "language", "de").await?;
        add_text_column(m, "outbox", "template", "").await?;
        add_text_column(m, "outbox", "intent", "{}").await?;
        let conn = m.get_connection();
        // The mail-only schema cannot hold other kinds.
        conn.execute_unprepared("DELETE FROM outbox WHERE kind <> 'mail'")
            .await?;
        let fill = match m.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE outbox SET language = payload::json->>'language', \
                 template = payload::json->'intent'->>'kind', \
                 intent = (payload::json->'intent')::text"
            }
            _ => {
                "UPDATE outbox SET language = json_extract(payload, '$.language'), \
                 template = json_extract(payload, '$.intent.kind'), \
                 intent = json_extract(payload, '$.intent')"
            }
        };
        conn.execute_unprepared(fill).await?;
        drop_columns(m, "outbox", &["payload", "kind"]).await
    }
}

/// R22: who of a customer's users must have a second factor (`none`, `administrators`,
/// `all_users`); existing customers get `none`, what they had.
struct SecondFactorPolicy;

impl MigrationName for SecondFactorPolicy {
    fn name(&self) -> &'static str {
        "m20261206_000005_second_factor_policy"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SecondFactorPolicy {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_text_column(m, "customers", "second_factor_policy", "none").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(m, "customers", &["second_factor_policy"]).await
    }
}

/// The OpenID Connect provider: clients, grants (one per sign-in at a client, the refresh-token
/// family), codes and tokens by hash, consents, signing keys (sealed), and how each session's
/// user authenticated (`sessions.methods`, the `amr`; existing sessions were password logins
/// as far as anyone can tell).
struct OidcProvider;

impl MigrationName for OidcProvider {
    fn name(&self) -> &'static str {
        "m20261206_000006_oidc_provider"
    }
}

/// The provider's tables, newest first (the order `down` drops them in).
const OIDC_TABLES: [&str; 5] = [
    "oidc_keys",
    "oidc_consents",
    "oidc_tokens",
    "oidc_grants",
    "oidc_clients",
];

#[async_trait::async_trait]
impl MigrationTrait for OidcProvider {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_text_column(m, "sessions", "methods", "[\"pwd\"]").await?;
        m.create_table(
            Table::create()
                .table(a("oidc_clients"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(text("data"))
                .col(big("version"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("oidc_grants"))
                .col(uuid_pk("id"))
                .col(uuid("user_id"))
                .col(uuid("session_id"))
                .col(text("client_id"))
                .col(text("data"))
                .col(big("version"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("oidc_grants_user_idx", "oidc_grants", &["user_id"]))
            .await?;
        m.create_index(index(
            "oidc_grants_session_idx",
            "oidc_grants",
            &["session_id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("oidc_tokens"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(uuid("grant_id"))
                .col(text("kind"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("used_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "oidc_tokens_expires_idx",
            "oidc_tokens",
            &["expires_at"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("oidc_consents"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(uuid("user_id"))
                .col(text("scopes"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("oidc_keys"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(text("data"))
                .col(big("version"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in OIDC_TABLES {
            m.drop_table(Table::drop().table(a(t)).if_exists().to_owned())
                .await?;
        }
        drop_columns(m, "sessions", &["methods"]).await
    }
}

/// Operations (issue 17): `sealing_keys`, the ids (keyed hashes) of the server-secret keys
/// whose sealed values the database holds, checked at every start; `audit_checkpoints`, per
/// change-log chain the sequence number and hash of the last entry removed by retention, where
/// verification of what remains starts.
struct SecretKeysRetention;

impl MigrationName for SecretKeysRetention {
    fn name(&self) -> &'static str {
        "m20261207_000009_secret_keys_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SecretKeysRetention {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("sealing_keys"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("audit_checkpoints"))
                .col(uuid_pk("chain_key"))
                .col(big("seq"))
                .col(text("hash"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["audit_checkpoints", "sealing_keys"] {
            m.drop_table(Table::drop().table(a(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Passkeys (issue 16): the ceremonies' challenges, kept server-side until answered once or
/// expired. The passkeys themselves are second factors on the user record (`users.mfa`).
struct Passkeys;

impl MigrationName for Passkeys {
    fn name(&self) -> &'static str {
        "m20261207_000007_passkeys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Passkeys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("passkey_challenges"))
                .col(uuid_pk("id"))
                .col(uuid_null("user_id"))
                .col(text("purpose"))
                .col(text("state"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("used_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "passkey_challenges_expires_idx",
            "passkey_challenges",
            &["expires_at"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(a("passkey_challenges"))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Imported old "Servicewelt" accounts (R8, `portal legacy import`): the username's id, the
/// username as spelled, the customer number, and the old password hash until the account is
/// linked (then NULL).
struct LegacyAccounts;

impl MigrationName for LegacyAccounts {
    fn name(&self) -> &'static str {
        "m20261207_000008_legacy_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LegacyAccounts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("legacy_accounts"))
                .col(ColumnDef::new(a("id")).text().not_null().primary_key())
                .col(text("username"))
                .col(text("customer_number"))
                .col(text_null("password_hash"))
                .col(ts("imported_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(a("legacy_accounts"))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Signed event webhooks (issue 14): `webhook_endpoints`, the registered receivers (the entity as
/// JSON in `data`, its secret sealed inside, version-checked with its row), and
/// `webhook_cursors`, per endpoint and change-log chain the `seq` of the last event queued for
/// it, from which the next event's `previous_seq` is read.
struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &'static str {
        "m20261207_000010_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("webhook_endpoints"))
                .col(uuid_pk("id"))
                .col(text("data"))
                .col(big("version"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("webhook_cursors"))
                .col(uuid("endpoint_id"))
                .col(uuid("chain_key"))
                .col(big("last_seq"))
                .primary_key(Index::create().col(a("endpoint_id")).col(a("chain_key")))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["webhook_cursors", "webhook_endpoints"] {
            m.drop_table(Table::drop().table(a(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// An index for the change log's text search (issue 17: a search that matched rarely read the
/// customer's whole chain, about 2 s at 1,000,000 entries). Postgres: a trigram GIN index on
/// `details_lower`, like the user search's. SQLite: an FTS5 trigram table mirrored by triggers
/// (contentless: it keeps only the index, the text stays in `audit_entries`), keyed through a map
/// table as `users_search` is, filled from the existing entries.
///
/// On Postgres the build takes a `SHARE` lock on `audit_entries` until the upgrade commits, so
/// commits that append to the change log (every login) wait for it. An installation with a long
/// change log builds the index beforehand without blocking writes (the CHANGELOG gives the
/// statement): `CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_entries_search_trgm_idx ON
/// audit_entries USING gin (details_lower gin_trgm_ops)`; this migration then finds it and does
/// nothing. An invalid index of that name (a concurrent build that failed) is dropped first.
struct AuditSearch;

impl MigrationName for AuditSearch {
    fn name(&self) -> &'static str {
        "m20261207_000011_audit_search"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditSearch {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        if m.get_database_backend() == DbBackend::Postgres {
            for sql in [
                "DO $$ BEGIN \
                 IF EXISTS (SELECT 1 FROM pg_index \
                 WHERE indexrelid = to_regclass('audit_entries_search_trgm_idx') \
                 AND NOT indisvalid) THEN DROP INDEX audit_entries_search_trgm_idx; END IF; \
                 END $$",
                // With the GIN pending list (unlike the user search's index): every login
                // appends an entry, and a pending list keeps that insert cheap.
                "CREATE INDEX IF NOT EXISTS audit_entries_search_trgm_idx ON audit_entries \
                 USING gin (details_lower gin_trgm_ops)",
            ] {
                conn.execute_unprepared(sql).await?;
            }
            return Ok(());
        }
        for sql in [
            "CREATE TABLE audit_search_map (id INTEGER PRIMARY KEY, entry_id BLOB NOT NULL UNIQUE)",
            "CREATE VIRTUAL TABLE audit_search USING fts5(details_lower, \
             tokenize = 'trigram case_sensitive 1', content = '', contentless_delete = 1)",
            "INSERT INTO audit_search_map (entry_id) \
             SELECT id FROM audit_entries ORDER BY chain_key, seq",
            "INSERT INTO audit_search (rowid, details_lower) \
             SELECT m.id, e.details_lower FROM audit_search_map m \
             JOIN audit_entries e ON e.id = m.entry_id",
            "CREATE TRIGGER audit_search_insert AFTER INSERT ON audit_entries BEGIN \
             INSERT INTO audit_search_map (entry_id) VALUES (new.id); \
             INSERT INTO audit_search (rowid, details_lower) VALUES \
             ((SELECT id FROM audit_search_map WHERE entry_id = new.id), new.details_lower); \
             END",
            // Entries are never updated, only removed (retention, a customer's deletion).
            "CREATE TRIGGER audit_search_delete AFTER DELETE ON audit_entries BEGIN \
             DELETE FROM audit_search WHERE rowid = \
             (SELECT id FROM audit_search_map WHERE entry_id = old.id); \
             DELETE FROM audit_search_map WHERE entry_id = old.id; \
             END",
        ] {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        let statements: &[&str] = if m.get_database_backend() == DbBackend::Postgres {
            &["DROP INDEX IF EXISTS audit_entries_search_trgm_idx"]
        } else {
            &[
                "DROP TRIGGER IF EXISTS audit_search_delete",
                "DROP TRIGGER IF EXISTS audit_search_insert",
                "DROP TABLE IF EXISTS audit_search",
                "DROP TABLE IF EXISTS audit_search_map",
            ]
        };
        for sql in statements {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

/// The webhook endpoints' generation: at most one row (none reads as 0), one more with every
/// write of an endpoint. A
/// service keeps the endpoints in memory and every commit that appends to the change log reads
/// the generation in its chain-lock statement, so a registration in another process is noticed
/// at the next commit without a statement of its own (the commit is refused and computed again).
struct WebhookGeneration;

impl MigrationName for WebhookGeneration {
    fn name(&self) -> &'static str {
        "m20261207_000012_webhook_generation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WebhookGeneration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("webhook_generation"))
                .col(ColumnDef::new(a("id")).integer().not_null().primary_key())
                .col(big("generation"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(a("webhook_generation"))
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
