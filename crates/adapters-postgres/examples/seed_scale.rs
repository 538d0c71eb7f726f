//! Seeds a database at scale (a program, not a test): by default 1,000,000 users across 10,000
//! customers and 10,000,000 change-log entries, valid for Portal — the chains verify, every user
//! can log in with [`SCALE_PASSWORD`]. See `adapters_postgres::scale` and docs/performance.md
//! ("At scale") for what is written and how the figures were measured.
//!
//! ```text
//! cargo run --release -p adapters-postgres --features testing --example seed_scale -- \
//!     postgres://postgres@127.0.0.1:5432/portal_scale     # or sqlite:///path/portal.db?mode=rwc
//! SCALE_DOWN=100 cargo run …                               # a hundredth of it, for a trial
//! ```
//!
//! The database must be empty (it is migrated first). After seeding, the chains of the first
//! customers (`SCALE_VERIFY`, default 3, among them the big one) are verified with Portal's own
//! chain verification.

use adapters_postgres::SqlStore;
use adapters_postgres::scale::{self, SCALE_PASSWORD, SCALE_RARE_EMAIL, ScalePlan};
use portal_core::defaults::OsSecretGenerator;
use portal_core::hashing::Argon2idHasher;
use portal_core::ports::Queries as _;
use portal_core::values::CustomerNumber;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The store without the pool's statement timeout: a `COPY` of millions of rows is one statement.
async fn open(url: &str) -> Result<SqlStore, String> {
    let settings = adapters_postgres::PoolSettings::default().without_statement_timeout();
    let db = adapters_postgres::connect_with(url, &settings)
        .await
        .map_err(|e| e.to_string())?;
    adapters_postgres::migrate(&db)
        .await
        .map_err(|e| e.to_string())?;
    Ok(SqlStore::new(db))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first() else {
        eprintln!(
            "usage: seed_scale <DATABASE_URL>                    seed (SCALE_DOWN=n divides by n)\n       \
             seed_scale <DATABASE_URL> sessions <N> <FILE>   add N sessions, tokens to FILE\n       \
             seed_scale <DATABASE_URL> remigrate <N>         undo the last N migrations, apply them again, timed"
        );
        return ExitCode::from(2);
    };
    if args.get(1).map(String::as_str) == Some("sessions") {
        return add_sessions(url, &args[2..]).await;
    }
    if args.get(1).map(String::as_str) == Some("remigrate") {
        return remigrate(url, &args[2..]).await;
    }
    let plan = ScalePlan::default().scaled_down(env_u64("SCALE_DOWN", 1));
    let verify = u32::try_from(env_u64("SCALE_VERIFY", 3)).unwrap_or(3);
    let store = match open(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let first = CustomerNumber::parse(&scale::SCALE_FIRST_NUMBER.to_string()).expect("a number");
    match store.customer_by_number(&first).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            eprintln!("the database is already seeded; seed an empty one");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("cannot read the database: {e}");
            return ExitCode::FAILURE;
        }
    }
    // One hash at the production cost, shared by every user.
    let hasher = Argon2idHasher::new(Arc::new(OsSecretGenerator));
    let hash = match hasher.hash_blocking(SCALE_PASSWORD) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("hashing failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("seeding {plan:?}");
    let started = Instant::now();
    let report = match scale::seed(&store, plan, &hash).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("seeding failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = started.elapsed().as_secs_f64();
    let verifying = Instant::now();
    let verified = match scale::verify(&store, plan, verify).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("verification failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "seeded {} customers, {} users, {} change-log entries in {total:.0} s \
         (customers {:.1} s, users {:.1} s, change log {:.1} s, analyze {:.1} s)",
        report.customers,
        report.users,
        report.audit_entries,
        report.seconds[0],
        report.seconds[1],
        report.seconds[2],
        report.seconds[3],
    );
    let mib = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1_048_576.0;
    let b = report.bytes;
    println!(
        "database size: {:.0} MiB in all; customers +{:.1} MiB, users +{:.1} MiB \
         ({:.1} MiB per 100,000 users), change log +{:.1} MiB ({:.1} MiB per 1,000,000 entries)",
        b[3] as f64 / 1_048_576.0,
        mib(b[0], b[1]),
        mib(b[1], b[2]),
        mib(b[1], b[2]) * 100_000.0 / report.users.max(1) as f64,
        mib(b[2], b[3]),
        mib(b[2], b[3]) * 1_000_000.0 / report.audit_entries.max(1) as f64,
    );
    println!(
        "verified the chains of the first {verify} customers ({verified} entries) in {:.1} s",
        verifying.elapsed().as_secs_f64()
    );
    println!(
        "big customer {} ({} users, {} entries); log in as anna.mueller.0@kunde00000.example \
         (its administrator) or {SCALE_RARE_EMAIL}, password \"{SCALE_PASSWORD}\"",
        scale::SCALE_FIRST_NUMBER,
        plan.users_of(0),
        plan.audit_of(0),
    );
    ExitCode::SUCCESS
}

/// `sessions <N> <FILE>`: N sessions for the big customer's users, their tokens one a line.
async fn add_sessions(url: &str, args: &[String]) -> ExitCode {
    let (Some(Ok(n)), Some(file)) = (args.first().map(|n| n.parse::<u64>()), args.get(1)) else {
        eprintln!("usage: seed_scale <DATABASE_URL> sessions <N> <FILE>");
        return ExitCode::from(2);
    };
    let store = match open(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let tokens = match scale::sessions(&store, n).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("adding sessions failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(file, tokens.join("\n") + "\n") {
        eprintln!("cannot write {file}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "added {n} sessions in {:.1} s; tokens in {file}",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// What the newest migrations cost on a database of this size: undoes the last `N` (their
/// `down`), then applies them again as `portal migrate` does (one transaction, the migration
/// lock), and prints the time of each half. Used for the upgrade figures in docs/operations.md.
async fn remigrate(url: &str, args: &[String]) -> ExitCode {
    use sea_orm_migration::MigratorTrait as _;
    let Some(Ok(n)) = args.first().map(|n| n.parse::<u32>()) else {
        eprintln!("usage: seed_scale <DATABASE_URL> remigrate <N>");
        return ExitCode::from(2);
    };
    let settings = adapters_postgres::PoolSettings::default().without_statement_timeout();
    let db = match adapters_postgres::connect_with(url, &settings).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    if let Err(e) = adapters_postgres::Migrator::down(&db, Some(n)).await {
        eprintln!("undoing the last {n} migrations failed: {e}");
        return ExitCode::FAILURE;
    }
    let undone = started.elapsed().as_secs_f64();
    let started = Instant::now();
    match adapters_postgres::apply_migrations(&db).await {
        Ok(applied) => println!(
            "undone in {undone:.1} s; applied {} in {:.1} s",
            applied.join(", "),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("applying them again failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
