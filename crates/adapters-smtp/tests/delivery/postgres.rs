//! Two dispatchers on one SQL outbox (adapters-postgres): each on its own connection pool, as two
//! server processes would be. Postgres claims with `FOR UPDATE SKIP LOCKED`; SQLite serialises
//! writers.
//!
//! The Postgres test finds or starts a server through `adapters_postgres::testing::TestPostgres`
//! (`PORTAL_TEST_DATABASE_URL`, `DATABASE_URL`, a local server on 5432, or a throwaway cluster
//! from the installed binaries).

use crate::dispatcher::two_dispatchers_deliver_every_mail_exactly_once;
use adapters_postgres::SqlStore;
use adapters_postgres::testing::{TestPostgres, TestSqlite};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_postgres_outbox_deliver_200_mails_exactly_once() {
    let pg = TestPostgres::start().await;
    let first = Arc::new(pg.store());
    let second = Arc::new(SqlStore::open(pg.url()).await.expect("second pool"));
    two_dispatchers_deliver_every_mail_exactly_once(first, second, 200).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_sqlite_outbox_deliver_200_mails_exactly_once() {
    let db = TestSqlite::file().await;
    let first = Arc::new(db.store());
    let url = format!("sqlite://{}?mode=rwc", db.path().display());
    let second = Arc::new(SqlStore::open(&url).await.expect("second pool"));
    two_dispatchers_deliver_every_mail_exactly_once(first, second, 200).await;
    db.finish().await;
}
