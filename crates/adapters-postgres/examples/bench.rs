//! Storage benchmark (not a test): seeds 100,000 users in one customer, 100,000 in four others
//! and 1,000,000 audit entries in the big customer's chain, then times the queries a user table
//! and a change log page make, on Postgres and on SQLite.
//!
//! ```text
//! cargo run --release -p adapters-postgres --example bench [postgres|sqlite]...
//! ```
//!
//! Postgres comes from `PORTAL_TEST_DATABASE_URL`/`DATABASE_URL`, else 127.0.0.1:5432, else a
//! throwaway cluster from the installed binaries (as in the tests). Prints a Markdown table
//! with median and 95th percentile per query, and whether the targets of `docs/performance.md`
//! are met. With `BENCH_KEEP=1` the Postgres database (and a throwaway cluster) is left
//! running for inspection; its URL is printed.

use adapters_postgres::SqlStore;
use adapters_postgres::testing::{TestPostgres, TestSqlite, analyze, seed_audit, seed_users};
use portal_core::ids::CustomerId;
use portal_core::ports::{AuditQuery, PageStart, Queries, UserCursor, UserQuery, Write};
use portal_testkit::fixtures::{commit_ok, customer, employee, writes};
use std::time::{Duration, Instant};

const USERS_BIG: i64 = 100_000;
const USERS_OTHERS: i64 = 25_000; // in each of four customers
const AUDIT: i64 = 1_000_000;
const ROUNDS: usize = 200;

struct Row {
    name: &'static str,
    median: Duration,
    p95: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn time<F, Fut>(name: &'static str, mut f: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    for _ in 0..10 {
        std::hint::black_box(f().await);
    }
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        std::hint::black_box(f().await);
        samples.push(start.elapsed());
    }
    samples.sort();
    Row {
        name,
        median: samples[ROUNDS / 2],
        p95: samples[ROUNDS * 95 / 100],
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

async fn seed(store: &SqlStore) -> CustomerId {
    let started = Instant::now();
    let big = customer("700000001", "Gross GmbH");
    commit_ok(store, writes([Write::InsertCustomer(big.clone())])).await;
    seed_users(store, big.id(), "big", 1, USERS_BIG)
        .await
        .unwrap();
    for n in 2..=5 {
        let other = customer(&format!("70000000{n}"), "Andere GmbH");
        commit_ok(store, writes([Write::InsertCustomer(other.clone())])).await;
        seed_users(store, other.id(), &format!("c{n}-"), 1, USERS_OTHERS)
            .await
            .unwrap();
    }
    let rare = employee(
        big.id(),
        "q.zwoelfender@example.com",
        "Quirinus",
        "Zwölfender",
    );
    commit_ok(store, writes([Write::InsertUser(rare)])).await;
    let chunk = 100_000;
    let mut from = 1;
    while from <= AUDIT {
        seed_audit(store, big.id(), from, (from + chunk - 1).min(AUDIT))
            .await
            .unwrap();
        from += chunk;
    }
    analyze(store).await.unwrap();
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    big.id()
}

async fn run(label: &str, store: SqlStore) {
    let big = seed(&store).await;
    let store = &store;
    let deep = store
        .users_of_customer(&page(big, None, PageStart::Offset(49_999)))
        .await
        .unwrap();
    let cursor = UserCursor {
        sort_key: deep[0].sort_key(),
        id: deep[0].id(),
    };
    let mut rows = Vec::new();
    rows.push(
        time("user list, first page", || async {
            store
                .users_of_customer(&page(big, None, PageStart::First))
                .await
                .unwrap()
                .len()
        })
        .await,
    );
    rows.push(
        time("user list, page at depth 50,000 (keyset)", || async {
            store
                .users_of_customer(&page(big, None, PageStart::After(cursor.clone())))
                .await
                .unwrap()
                .len()
        })
        .await,
    );
    rows.push(
        time("user count, capped at 10,000", || async {
            usize::try_from(
                store
                    .count_users_of_customer(big, None, 10_000)
                    .await
                    .unwrap(),
            )
            .unwrap()
        })
        .await,
    );
    rows.push(
        time("search, rare term (1 hit)", || async {
            store
                .users_of_customer(&page(big, Some("zwölfender"), PageStart::First))
                .await
                .unwrap()
                .len()
        })
        .await,
    );
    rows.push(
        time("search, common term (~11,000 hits)", || async {
            store
                .users_of_customer(&page(big, Some("vorname1"), PageStart::First))
                .await
                .unwrap()
                .len()
        })
        .await,
    );
    rows.push(
        time("audit log, first page", || async {
            store.audit(&audit_page(big, None)).await.unwrap().len()
        })
        .await,
    );
    rows.push(
        time("audit log, deep page (seq < 500,000)", || async {
            store
                .audit(&audit_page(big, Some(500_000)))
                .await
                .unwrap()
                .len()
        })
        .await,
    );

    println!("\n### {label}\n");
    println!("| query | median (ms) | p95 (ms) |");
    println!("| --- | ---: | ---: |");
    for r in &rows {
        println!("| {} | {:.3} | {:.3} |", r.name, ms(r.median), ms(r.p95));
    }
    let ratio = ms(rows[1].median) / ms(rows[0].median);
    println!(
        "\nDeep/first page ratio: {ratio:.2} (target ≤ 1.5); rare search {:.3} ms (target ≤ 5); \
         audit deep page {:.3} ms (target ≤ 2).",
        ms(rows[3].median),
        ms(rows[6].median)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |b: &str| args.is_empty() || args.iter().any(|a| a == b);
    if want("postgres") {
        let db = TestPostgres::start().await;
        eprintln!("Postgres from {:?}", db.source());
        run("Postgres", db.store()).await;
        if std::env::var("BENCH_KEEP").is_ok() {
            eprintln!("kept: {}", db.url());
            std::mem::forget(db);
        } else {
            db.finish().await;
        }
    }
    if want("sqlite") {
        let db = TestSqlite::file().await;
        run("SQLite (file, WAL)", db.store()).await;
        db.finish().await;
    }
}
