//! Every example runs here, so none can rot.

#[path = "../in_memory.rs"]
mod in_memory;

#[path = "../custom_catalog.rs"]
mod custom_catalog;

#[path = "../postgres.rs"]
mod postgres;

#[tokio::test]
async fn in_memory_walks_the_flow_and_the_lock_ends_the_session() {
    let (open, alive) = in_memory::run().await.unwrap();
    assert!(open, "the linked user may open the default area");
    assert!(!alive, "the lock ends the session at once");
}

#[tokio::test]
async fn custom_catalog_entitles_only_the_finance_areas() {
    let entitled = custom_catalog::run().await.unwrap();
    assert_eq!(entitled.joined(), "dunning,invoices");
}

#[test]
fn custom_catalog_is_property_tested_with_the_kit() {
    assert_eq!(custom_catalog::property_test(16).unwrap(), 16);
}

#[tokio::test]
async fn postgres_example_migrates_and_lists_on_postgres() {
    let pg = adapters_postgres::testing::TestPostgres::start().await;
    assert_eq!(postgres::run(pg.url()).await.unwrap(), 1);
    assert_eq!(postgres::run(pg.url()).await.unwrap(), 1, "idempotent");
    pg.finish().await;
}

#[tokio::test]
async fn postgres_example_also_runs_on_a_sqlite_file() {
    let db = adapters_postgres::testing::TestSqlite::file().await;
    let url = format!("sqlite://{}?mode=rwc", db.path().display());
    assert_eq!(postgres::run(&url).await.unwrap(), 1);
    db.finish().await;
}
