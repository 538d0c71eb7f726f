//! Seeding at scale (a program's library, not a test): customers, users and change-log entries
//! in bulk, as rows Portal itself would have written — built as core objects (`Customer`,
//! `User`, `AuditRecord` chained with [`portal_core::audit::chain`]) and mapped to columns by
//! the same row functions the adapter's writes use. Only the transport differs: `COPY … FROM
//! STDIN` on Postgres, prepared multi-row `INSERT`s on SQLite, committed every 500,000 rows.
//!
//! Every user has the **same** Argon2id hash (computed once, at the production cost, from
//! [`SCALE_PASSWORD`]): hashing a million passwords would take hours and measure nothing the
//! login benchmark does not. Every user can log in with that password.
//!
//! Run it through `cargo run --release -p adapters-postgres --features testing --example
//! seed_scale` (docs/performance.md, "At scale").

use crate::SqlStore;
use crate::entity::{audit_chains, audit_entries, customers, users};
use crate::rows;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use portal_core::audit::{self, ActorRef, AuditCategory, AuditRecord, ChainHash};
use portal_core::customer::{
    AffiliationKey, Customer, CustomerRecord, SecondFactorPolicy, ServiceChannel,
};
use portal_core::ids::{AuditEntryId, CustomerId, UserId};
use portal_core::password::PasswordHash;
use portal_core::permission::{PermissionKey, PermissionSet};
use portal_core::user::User;
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use sea_orm::sqlx::postgres::PgPoolCopyExt;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IdenStatic, Iterable, TransactionTrait, Value,
};
use std::time::Instant;
use uuid::Uuid;

/// The password of every seeded user.
pub const SCALE_PASSWORD: &str = "Skalierung mit einer Million Benutzern";

/// The first customer number; customer `i` (from 0) has number `SCALE_FIRST_NUMBER + i`.
/// Customer 0 is the big one.
pub const SCALE_FIRST_NUMBER: u32 = 800_000_000;

/// The e-mail address of the rare user (in the big customer), the target of the rare-term
/// search.
pub const SCALE_RARE_EMAIL: &str = "q.zwoelfender@kunde00000.example";

/// How much to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalePlan {
    /// Customers (at least 2).
    pub customers: u32,
    /// Users in all, including the big customer's.
    pub users: u64,
    /// Change-log entries in all, including the big customer's chain.
    pub audit_entries: u64,
    /// Users of customer 0.
    pub big_users: u64,
    /// Change-log entries of customer 0.
    pub big_audit_entries: u64,
}

impl Default for ScalePlan {
    /// 1,000,000 users across 10,000 customers and 10,000,000 change-log entries; the big
    /// customer has 100,000 users and 1,000,000 entries, the others share the rest evenly
    /// (about 90 users and 900 entries each).
    fn default() -> Self {
        Self {
            customers: 10_000,
            users: 1_000_000,
            audit_entries: 10_000_000,
            big_users: 100_000,
            big_audit_entries: 1_000_000,
        }
    }
}

impl ScalePlan {
    /// Divides by `factor` (for a quick trial run), keeping at least 2 customers.
    #[must_use]
    pub fn scaled_down(self, factor: u64) -> Self {
        let f = factor.max(1);
        Self {
            customers: u32::try_from(u64::from(self.customers) / f)
                .unwrap_or(u32::MAX)
                .max(2),
            users: (self.users / f).max(4),
            audit_entries: (self.audit_entries / f).max(4),
            big_users: (self.big_users / f).max(2),
            big_audit_entries: (self.big_audit_entries / f).max(2),
        }
    }

    fn share(&self, customer: u32, total: u64, big: u64) -> u64 {
        if customer == 0 {
            return big.min(total);
        }
        let rest = total.saturating_sub(big);
        let others = u64::from(self.customers - 1);
        rest / others + u64::from(u64::from(customer - 1) < rest % others)
    }

    /// The users of customer `i`.
    #[must_use]
    pub fn users_of(&self, customer: u32) -> u64 {
        self.share(customer, self.users, self.big_users)
    }

    /// The change-log entries of customer `i`.
    #[must_use]
    pub fn audit_of(&self, customer: u32) -> u64 {
        self.share(customer, self.audit_entries, self.big_audit_entries)
    }
}

/// What was written, and how long each part took.
#[derive(Debug, Clone, Default)]
pub struct ScaleReport {
    /// Customers written.
    pub customers: u64,
    /// Users written.
    pub users: u64,
    /// Change-log entries written.
    pub audit_entries: u64,
    /// Seconds per phase: customers, users, change log, `ANALYZE`.
    pub seconds: [f64; 4],
    /// Database size in bytes before seeding and after each phase (customers, users, change
    /// log): Postgres `pg_database_size`, SQLite `page_count × page_size`.
    pub bytes: [u64; 4],
}

/// The database's size in bytes (Postgres: `pg_database_size`, SQLite: pages × page size; the
/// write-ahead log is not counted).
///
/// # Errors
/// The database refused.
pub async fn database_bytes(store: &SqlStore) -> Result<u64, ScaleError> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let sql = match store.backend() {
        DbBackend::Postgres => "SELECT pg_database_size(current_database())::bigint AS n",
        _ => "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()",
    };
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(store.backend(), sql))
        .await?
        .ok_or_else(|| invalid("no size"))?;
    let n: i64 = row.try_get("", "n")?;
    u64::try_from(n).map_err(invalid)
}

/// A seeding failure.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// The database refused.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// The Postgres driver refused (`COPY`).
    #[error("copy: {0}")]
    Copy(#[from] sea_orm::sqlx::Error),
    /// A generated value is not valid for Portal (a bug in this module).
    #[error("invalid seed value: {0}")]
    Invalid(String),
}

fn invalid(e: impl std::fmt::Display) -> ScaleError {
    ScaleError::Invalid(e.to_string())
}

const FIRST: [&str; 40] = [
    "Anna", "Ben", "Carla", "David", "Emil", "Frieda", "Georg", "Hanna", "Ida", "Jonas", "Karl",
    "Lena", "Max", "Nora", "Otto", "Paula", "Quentin", "Rosa", "Simon", "Tilda", "Uwe", "Vera",
    "Walter", "Xenia", "Yusuf", "Zoe", "Aylin", "Bernd", "Chiara", "Dirk", "Elif", "Finn", "Greta",
    "Hugo", "Ines", "Jan", "Kira", "Lukas", "Mia", "Noah",
];
const LAST: [&str; 50] = [
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Bauer",
    "Klein",
    "Wolf",
    "Schroeder",
    "Neumann",
    "Schwarz",
    "Braun",
    "Hofmann",
    "Zimmermann",
    "Schmitt",
    "Hartmann",
    "Krueger",
    "Schmid",
    "Werner",
    "Lange",
    "Krause",
    "Meier",
    "Lehmann",
    "Koehler",
    "Herrmann",
    "Walter",
    "Koenig",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Moeller",
    "Weiss",
    "Jung",
    "Hahn",
    "Schubert",
    "Vogel",
    "Friedrich",
    "Keller",
    "Guenther",
];

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

fn key(raw: &str) -> Result<PermissionKey, ScaleError> {
    PermissionKey::parse(raw).map_err(invalid)
}

fn keys(list: &[&str]) -> Result<PermissionSet, ScaleError> {
    list.iter().map(|k| key(k)).collect()
}

fn customer(i: u32) -> Result<Customer, ScaleError> {
    let at = base_time() + TimeDelta::seconds(i64::from(i));
    Ok(Customer::new(CustomerRecord {
        id: CustomerId::from_uuid(Uuid::now_v7()),
        number: CustomerNumber::parse(&(SCALE_FIRST_NUMBER + i).to_string()).map_err(invalid)?,
        name: CompanyName::parse(&format!("Skalierung {i:05} GmbH")).map_err(invalid)?,
        affiliations: [AffiliationKey::parse("de-business").map_err(invalid)?]
            .into_iter()
            .collect(),
        channel: ServiceChannel::Direct,
        entitlements: keys(&["documents", "support_requests", "shop"])?,
        default_permissions: keys(&["support_requests"])?,
        second_factor_policy: SecondFactorPolicy::None,
        created_at: at,
        updated_at: at,
        version: 0,
    }))
}

/// User `n` (global index) of customer `c`, its `j`-th: the first is the administrator.
fn user(c: &Customer, ci: u32, j: u64, n: u64, hash: &PasswordHash) -> Result<User, ScaleError> {
    let (first, last, email) = if ci == 0 && j == 1 {
        (
            "Quirinus".to_owned(),
            "Zwölfender".to_owned(),
            SCALE_RARE_EMAIL.to_owned(),
        )
    } else {
        let first = FIRST[usize::try_from(n % 40).unwrap_or(0)];
        let last = LAST[usize::try_from((n / 40) % 50).unwrap_or(0)];
        let email = format!(
            "{}.{}.{n}@kunde{ci:05}.example",
            first.to_lowercase(),
            last.to_lowercase()
        );
        (first.to_owned(), last.to_owned(), email)
    };
    let created = base_time() + TimeDelta::seconds(i64::try_from(n).unwrap_or(0));
    let mut u = User::new_pending(
        UserId::from_uuid(Uuid::now_v7()),
        EmailAddress::parse(&email).map_err(invalid)?,
        PersonName::parse(&first).map_err(invalid)?,
        PersonName::parse(&last).map_err(invalid)?,
        if n.is_multiple_of(5) {
            Language::En
        } else {
            Language::De
        },
        created,
    );
    u.complete_registration(hash.clone(), created)
        .map_err(invalid)?;
    let permissions = if j == 0 || n.is_multiple_of(3) {
        keys(&["support_requests", "documents"])?
    } else {
        keys(&["support_requests"])?
    };
    u.link_to_customer(c.id(), permissions, false, created)
        .map_err(invalid)?;
    if j == 0 {
        u.promote(created).map_err(invalid)?;
    }
    Ok(u)
}

/// Entry `seq` of customer `c`'s chain (the first records its creation).
fn record(c: &Customer, seq: u64, admin: UserId, members: &[UserId]) -> AuditRecord {
    let at = rows::micros(
        base_time()
            + TimeDelta::seconds(i64::try_from(seq).unwrap_or(0) * 7)
            + TimeDelta::microseconds(i64::try_from(seq % 1_000_000).unwrap_or(0)),
    );
    let subject = members[usize::try_from(seq).unwrap_or(0) % members.len()];
    let (category, details, actor, subject) = match seq {
        1 => (
            AuditCategory::CustomerCreated,
            format!("number={}", c.number().as_str()),
            ActorRef::system(),
            None,
        ),
        _ => match seq % 4 {
            0 => (
                AuditCategory::UserCreated,
                "via=invitation".to_owned(),
                ActorRef::user(admin),
                Some(subject),
            ),
            1 => (
                AuditCategory::PermissionsChanged,
                "permissions=+documents".to_owned(),
                ActorRef::user(admin),
                Some(subject),
            ),
            2 => (
                AuditCategory::AccountChanged,
                "affiliation=de-business".to_owned(),
                ActorRef::user(subject),
                Some(subject),
            ),
            _ => (
                AuditCategory::UserLocked,
                format!("reason=scale test {seq}"),
                ActorRef::user(admin),
                Some(subject),
            ),
        },
    };
    AuditRecord {
        id: AuditEntryId::from_uuid(Uuid::now_v7()),
        at,
        customer: Some(c.id()),
        actor,
        subject,
        category,
        details,
    }
}

/// Writes rows of one table: a `COPY` stream on Postgres, multi-row `INSERT`s inside the open
/// transaction on SQLite.
enum Sink<'a, E: EntityTrait> {
    Postgres {
        copy: sea_orm::sqlx::postgres::PgCopyIn<
            sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>,
        >,
        buf: Vec<u8>,
    },
    Sqlite {
        db: &'a DatabaseConnection,
        tx: Option<DatabaseTransaction>,
        in_tx: usize,
        batch: Vec<E::ActiveModel>,
        per_statement: usize,
    },
}

const COPY_CHUNK: usize = 4 << 20;

/// SQLite: rows per transaction (bounds the write-ahead log: one transaction of 10 million
/// rows would first copy the whole table into it).
const SQLITE_ROWS_PER_TX: usize = 500_000;

impl<'a, E: EntityTrait> Sink<'a, E>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    async fn open(store: &'a SqlStore) -> Result<Self, ScaleError> {
        if store.backend() != DbBackend::Postgres {
            let columns = E::Column::iter().count().max(1);
            // SQLite allows 32,766 bound values per statement.
            return Ok(Self::Sqlite {
                db: store.connection(),
                tx: None,
                in_tx: 0,
                batch: Vec::new(),
                per_statement: 32_000 / columns,
            });
        }
        let columns: Vec<&str> = E::Column::iter().map(|c| c.as_str()).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            E::default().table_name(),
            columns.join(", ")
        );
        let pool = store.connection().get_postgres_connection_pool();
        Ok(Self::Postgres {
            copy: pool.copy_in_raw(&sql).await?,
            buf: Vec::with_capacity(COPY_CHUNK + 4096),
        })
    }

    async fn push(&mut self, row: E::ActiveModel) -> Result<(), ScaleError> {
        match self {
            Self::Postgres { copy, buf } => {
                for (i, c) in E::Column::iter().enumerate() {
                    if i > 0 {
                        buf.push(b'\t');
                    }
                    copy_text(buf, row.get(c).into_value())?;
                }
                buf.push(b'\n');
                if buf.len() >= COPY_CHUNK {
                    copy.send(buf.as_slice()).await?;
                    buf.clear();
                }
            }
            Self::Sqlite {
                db,
                tx,
                in_tx,
                batch,
                per_statement,
            } => {
                batch.push(row);
                if batch.len() >= *per_statement {
                    *in_tx += batch.len();
                    let open = match tx {
                        Some(t) => t,
                        None => tx.insert(db.begin().await?),
                    };
                    E::insert_many(std::mem::take(batch))
                        .exec_without_returning(&*open)
                        .await?;
                    if *in_tx >= SQLITE_ROWS_PER_TX {
                        if let Some(t) = tx.take() {
                            t.commit().await?;
                        }
                        *in_tx = 0;
                    }
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), ScaleError> {
        match self {
            Self::Postgres { mut copy, buf } => {
                if !buf.is_empty() {
                    copy.send(buf.as_slice()).await?;
                }
                copy.finish().await?;
            }
            Self::Sqlite { db, tx, batch, .. } => {
                let tx = match tx {
                    Some(t) => t,
                    None => db.begin().await?,
                };
                if !batch.is_empty() {
                    E::insert_many(batch).exec_without_returning(&tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// One value in `COPY`'s text format (`\N` for NULL; backslash, tab, newline and carriage
/// return escaped).
fn copy_text(buf: &mut Vec<u8>, value: Option<Value>) -> Result<(), ScaleError> {
    let text = match value {
        None
        | Some(
            Value::String(None)
            | Value::Uuid(None)
            | Value::BigInt(None)
            | Value::Int(None)
            | Value::Bool(None)
            | Value::ChronoDateTimeUtc(None),
        ) => {
            buf.extend_from_slice(b"\\N");
            return Ok(());
        }
        Some(Value::String(Some(s))) => s,
        Some(Value::Uuid(Some(u))) => u.to_string(),
        Some(Value::BigInt(Some(n))) => n.to_string(),
        Some(Value::Int(Some(n))) => n.to_string(),
        Some(Value::Bool(Some(b))) => if b { "t" } else { "f" }.to_owned(),
        Some(Value::ChronoDateTimeUtc(Some(t))) => {
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        }
        Some(other) => return Err(invalid(format!("no COPY form for {other:?}"))),
    };
    for b in text.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
    Ok(())
}

/// Seeds `plan` into a migrated, empty `store`, every user with `password_hash` (of
/// [`SCALE_PASSWORD`]), then updates the planner's statistics. Progress goes to stderr.
///
/// # Errors
/// The database refused a write.
pub async fn seed(
    store: &SqlStore,
    plan: ScalePlan,
    password_hash: &PasswordHash,
) -> Result<ScaleReport, ScaleError> {
    let mut report = ScaleReport::default();
    report.bytes[0] = database_bytes(store).await?;

    let started = Instant::now();
    let mut all = Vec::with_capacity(usize::try_from(plan.customers).unwrap_or(0));
    let mut sink = Sink::<customers::Entity>::open(store).await?;
    for i in 0..plan.customers {
        let c = customer(i)?;
        sink.push(rows::customer_row(&c, 1)).await?;
        all.push(c);
    }
    sink.finish().await?;
    report.customers = all.len() as u64;
    report.bytes[1] = database_bytes(store).await?;
    report.seconds[0] = started.elapsed().as_secs_f64();
    eprintln!(
        "customers: {} in {:.1} s",
        report.customers, report.seconds[0]
    );

    let started = Instant::now();
    let mut members: Vec<Vec<UserId>> = Vec::with_capacity(all.len());
    let mut sink = Sink::<users::Entity>::open(store).await?;
    let mut n = 0u64;
    for (ci, c) in (0u32..).zip(&all) {
        let count = plan.users_of(ci);
        let mut ids = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for j in 0..count {
            let u = user(c, ci, j, n, password_hash)?;
            ids.push(u.id());
            sink.push(rows::user_row(&u, 1)).await?;
            n += 1;
        }
        members.push(ids);
        if ci % 1_000 == 0 {
            eprintln!("users: {n} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    sink.finish().await?;
    report.users = n;
    report.bytes[2] = database_bytes(store).await?;
    report.seconds[1] = started.elapsed().as_secs_f64();
    eprintln!("users: {n} in {:.1} s", report.seconds[1]);

    let started = Instant::now();
    let mut heads = Vec::with_capacity(all.len());
    let mut sink = Sink::<audit_entries::Entity>::open(store).await?;
    let mut written = 0u64;
    for (ci, c) in (0u32..).zip(&all) {
        let ids = &members[usize::try_from(ci).unwrap_or(0)];
        let Some(&admin) = ids.first() else {
            continue;
        };
        let mut prev = ChainHash::GENESIS;
        let count = plan.audit_of(ci);
        for seq in 1..=count {
            let entry = audit::chain(record(c, seq, admin, ids), seq, prev);
            prev = entry.hash;
            sink.push(rows::audit_row(&entry)).await?;
        }
        written += count;
        heads.push((c.id(), count, prev));
        if ci % 1_000 == 0 {
            eprintln!(
                "change log: {written} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    sink.finish().await?;
    let mut sink = Sink::<audit_chains::Entity>::open(store).await?;
    for (customer, seq, hash) in heads {
        sink.push(audit_chains::ActiveModel {
            chain_key: sea_orm::Set(rows::chain_key(Some(customer))),
            seq: sea_orm::Set(rows::db_version(seq)),
            hash: sea_orm::Set(hash.to_hex()),
        })
        .await?;
    }
    sink.finish().await?;
    report.audit_entries = written;
    report.bytes[3] = database_bytes(store).await?;
    report.seconds[2] = started.elapsed().as_secs_f64();
    eprintln!("change log: {written} in {:.1} s", report.seconds[2]);

    let started = Instant::now();
    crate::testing::analyze(store).await?;
    report.seconds[3] = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Verifies the chains of the first `customers` customers with Portal's own verification
/// ([`portal_core::audit::verify_chain_from`] over [`Queries::audit_chain`](portal_core::ports::Queries::audit_chain)
/// in batches of 1,000, as `verify_audit_chain` reads them) and that each ends at its stored
/// head. Returns the entries verified.
///
/// # Errors
/// A chain is broken or its head differs, or the database refused.
pub async fn verify(store: &SqlStore, plan: ScalePlan, customers: u32) -> Result<u64, ScaleError> {
    use portal_core::ports::Queries as _;
    let mut verified = 0;
    for i in 0..customers.min(plan.customers) {
        let number =
            CustomerNumber::parse(&(SCALE_FIRST_NUMBER + i).to_string()).map_err(invalid)?;
        let c = store
            .customer_by_number(&number)
            .await
            .map_err(invalid)?
            .ok_or_else(|| invalid(format!("customer {i} missing")))?;
        let (mut seq, mut head) = (0, ChainHash::GENESIS);
        loop {
            let batch = store
                .audit_chain(Some(c.id()), seq, 1_000)
                .await
                .map_err(invalid)?;
            let Some(last) = batch.last() else {
                break;
            };
            audit::verify_chain_from(&batch, seq, head).map_err(invalid)?;
            seq = last.seq;
            head = last.hash;
        }
        let stored = audit_chains::Entity::find_by_id(rows::chain_key(Some(c.id())))
            .one(store.connection())
            .await?
            .ok_or_else(|| invalid("chain head missing"))?;
        if stored.hash != head.to_hex() || u64::try_from(stored.seq).ok() != Some(seq) {
            return Err(invalid(format!(
                "customer {i}: head differs from the chain"
            )));
        }
        if seq != plan.audit_of(i) {
            return Err(invalid(format!(
                "customer {i}: {seq} entries, expected {}",
                plan.audit_of(i)
            )));
        }
        verified += seq;
    }
    Ok(verified)
}

/// Adds `count` full sessions starting now (default lifetimes: 1 hour idle, 24 hours at most),
/// round-robin over the first 100 users of the big customer, as Portal's login would store them (a random
/// token, stored as its hash). Returns the tokens, the values of the session cookie, so a load
/// generator can use every session.
///
/// # Errors
/// The database refused, or the big customer is missing.
pub async fn sessions(store: &SqlStore, count: u64) -> Result<Vec<String>, ScaleError> {
    use crate::entity::sessions as table;
    use portal_core::defaults::OsSecretGenerator;
    use portal_core::ids::SessionId;
    use portal_core::ports::{PageStart, Queries as _, UserQuery};
    use portal_core::secret::Token;
    use portal_core::session::{ClientInfo, Session, SessionPolicy};

    let number = CustomerNumber::parse(&SCALE_FIRST_NUMBER.to_string()).map_err(invalid)?;
    let big = store
        .customer_by_number(&number)
        .await
        .map_err(invalid)?
        .ok_or_else(|| invalid("the big customer is missing: seed first"))?;
    let users = store
        .users_of_customer(&UserQuery {
            customer: big.id(),
            search: None,
            start: PageStart::First,
            limit: 100,
        })
        .await
        .map_err(invalid)?;
    if users.is_empty() {
        return Err(invalid("the big customer has no users"));
    }
    let now = rows::micros(Utc::now());
    let policy = SessionPolicy::default();
    let client = ClientInfo::new(Some("127.0.0.1"), Some("seed_scale"));
    let mut tokens = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut sink = Sink::<table::Entity>::open(store).await?;
    for i in 0..count {
        let token = Token::generate(&OsSecretGenerator);
        let user = &users[usize::try_from(i).unwrap_or(0) % users.len()];
        let session = Session::start(
            SessionId::from_uuid(Uuid::now_v7()),
            token.hash(),
            user.id(),
            client.clone(),
            &policy,
            now,
        );
        sink.push(rows::session_row(&session)).await?;
        tokens.push(token.expose().to_owned());
    }
    sink.finish().await?;
    Ok(tokens)
}
