//! The storage contract suite (portal-testkit) against the SQL store on three backends:
//! SQLite in memory, SQLite in a file, and Postgres (a fresh database per check; see
//! `adapters_postgres::testing` for where the server comes from).

use adapters_postgres::SqlStore;
use adapters_postgres::testing::{TestPostgres, TestSqlite, sqlite_memory};
use portal_testkit::Fixture;
use std::sync::Arc;

mod sqlite_memory {
    use super::*;

    pub struct SqliteMemory(Arc<SqlStore>);

    impl Fixture for SqliteMemory {
        type Store = SqlStore;

        async fn setup() -> Self {
            Self(Arc::new(sqlite_memory().await))
        }

        fn store(&self) -> Arc<SqlStore> {
            self.0.clone()
        }

        async fn teardown(self) {
            let _ = self.0.connection().clone().close().await;
        }
    }

    portal_testkit::storage_contract!(SqliteMemory);
}

mod sqlite_file {
    use super::*;

    pub struct SqliteFile(TestSqlite, Arc<SqlStore>);

    impl Fixture for SqliteFile {
        type Store = SqlStore;

        async fn setup() -> Self {
            let db = TestSqlite::file().await;
            let store = Arc::new(db.store());
            Self(db, store)
        }

        fn store(&self) -> Arc<SqlStore> {
            self.1.clone()
        }

        async fn teardown(self) {
            self.0.finish().await;
        }
    }

    portal_testkit::storage_contract!(SqliteFile);
}

mod postgres {
    use super::*;

    pub struct Postgres(TestPostgres, Arc<SqlStore>);

    impl Fixture for Postgres {
        type Store = SqlStore;

        async fn setup() -> Self {
            let db = TestPostgres::start().await;
            let store = Arc::new(db.store());
            Self(db, store)
        }

        fn store(&self) -> Arc<SqlStore> {
            self.1.clone()
        }

        async fn teardown(self) {
            self.0.finish().await;
        }
    }

    portal_testkit::storage_contract!(Postgres);
}
