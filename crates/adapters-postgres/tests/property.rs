//! Portal's property-testing kit (`portal_core::property`) on the SQL store: the generated
//! scenarios of `crates/portal-core/tests/properties.rs` — catalogs, customers, users in every
//! status, actors and command sequences — run through a real `Portal` whose every outcome
//! `property::check` compares with the kit's reference model, here with the SQL store underneath:
//! SQLite in memory and Postgres, a fresh migrated database per case.

use adapters_postgres::SqlStore;
use adapters_postgres::testing::{TestPostgres, sqlite_memory, with_database};
use portal_core::permission::PermissionCatalog;
use portal_core::property::{self, NoExtraRule};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::ConnectionTrait as _;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn check_on(store: SqlStore, scenario: property::Scenario) -> Result<(), TestCaseError> {
    let store = Arc::new(store);
    let result = property::check(scenario, store.clone(), &NoExtraRule).await;
    let _ = store.connection().clone().close().await;
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn management_commands_follow_the_rules_on_sqlite(scenario in property::scenarios()) {
        rt().block_on(async { check_on(sqlite_memory().await, scenario).await })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The manual's own catalog (ten permissions, group "Meine Daten").
    #[test]
    fn the_default_catalog_follows_the_rules_on_sqlite(
        scenario in property::scenarios_for(PermissionCatalog::default_catalog())
    ) {
        rt().block_on(async { check_on(sqlite_memory().await, scenario).await })?;
    }
}

fn unique(what: &str) -> String {
    format!("portal_prop_{what}_{}", uuid::Uuid::new_v4().simple())
}

/// One server for the whole run, one fresh database per case (also while shrinking), copied
/// from a migrated template.
#[test]
fn management_commands_follow_the_rules_on_postgres() {
    let rt = rt();
    let pg = rt.block_on(TestPostgres::start());
    let admin = pg.store();
    let template = unique("template");
    rt.block_on(async {
        admin
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE {template}"))
            .await
            .unwrap();
        let migrated = SqlStore::open(&with_database(pg.url(), &template))
            .await
            .unwrap();
        // A template must have no connections when it is copied.
        migrated.connection().clone().close().await.unwrap();
    });
    let mut runner = TestRunner::new(Config {
        cases: 6,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&property::scenarios(), |scenario| {
        rt.block_on(async {
            let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
            let name = unique("case");
            admin
                .connection()
                .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
                .map_err(|e| fail(&e))?;
            let store = SqlStore::open(&with_database(pg.url(), &name))
                .await
                .map_err(|e| fail(&e))?;
            let result = check_on(store, scenario).await;
            admin
                .connection()
                .execute_unprepared(&format!("DROP DATABASE {name}"))
                .await
                .map_err(|e| fail(&e))?;
            result
        })
    });
    rt.block_on(async {
        let _ = admin
            .connection()
            .execute_unprepared(&format!("DROP DATABASE {template}"))
            .await;
        let _ = admin.connection().clone().close().await;
        pg.finish().await;
    });
    result.unwrap();
}
