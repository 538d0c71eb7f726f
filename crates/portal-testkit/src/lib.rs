//! # portal-testkit
//!
//! The storage contract suite: one plain `async fn` per behaviour that every storage adapter of
//! Portal must show ([`checks`]), and a macro, [`storage_contract!`], that expands them into one
//! `#[tokio::test]` per check for a given adapter. The same checks run unchanged against the
//! in-memory adapter, SQLite (in memory and in a file) and Postgres; that is how "the same rules
//! on every backend" is proven rather than claimed.
//!
//! Choosing adapters and wiring them into your own service: `docs/embedding.md`.
//!
//! It is a test-only crate: add it as a dev-dependency. Fixture builders for entities with
//! valid defaults are in [`fixtures`]. For embedders' tests on any store, [`seed`] creates a
//! customer with an administrator and employees through the portal's own use cases
//! ([`seed::customer_with_admin`]), logs one in ([`seed::session`]) and reads mailed codes and
//! links from any outbox ([`seed::mailed_secret`]).
//!
//! ```ignore
//! // crates/my-adapter/tests/contract.rs
//! struct Mine(std::sync::Arc<MyStore>);
//! impl portal_testkit::Fixture for Mine {
//!     type Store = MyStore;
//!     async fn setup() -> Self { Mine(std::sync::Arc::new(MyStore::new())) }
//!     fn store(&self) -> std::sync::Arc<MyStore> { self.0.clone() }
//!     async fn teardown(self) {}
//! }
//! portal_testkit::storage_contract!(Mine);
//! ```

pub mod checks;
pub mod fixtures;
pub mod seed;

use portal_core::ports::{Committer, LegacyDirectory, OutboxStore, Queries};
use std::future::Future;
use std::sync::Arc;

/// Everything a contract check needs from a store.
pub trait Store:
    Queries + Committer + OutboxStore + LegacyDirectory + Send + Sync + 'static
{
}
impl<T: Queries + Committer + OutboxStore + LegacyDirectory + Send + Sync + 'static> Store for T {}

/// A fresh, empty store for one check, and how to clean up after it.
pub trait Fixture: Sized + Send + 'static {
    /// The adapter under test.
    type Store: Store;
    /// A new, empty store (a new database, file or map).
    fn setup() -> impl Future<Output = Self> + Send;
    /// The store.
    fn store(&self) -> Arc<Self::Store>;
    /// Removes what [`Self::setup`] made (drops the database, deletes the file). Runs also when
    /// the check failed.
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

/// Runs one check on a fresh fixture: the check runs in its own task, so a failing assertion
/// still lets the fixture clean up, and the panic is re-raised afterwards.
///
/// # Panics
/// When the check panics (its assertion message is kept).
pub async fn run<F, C, Fut>(check: C)
where
    F: Fixture,
    C: FnOnce(Arc<F::Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = F::setup().await;
    let outcome = tokio::spawn(check(fixture.store())).await;
    fixture.teardown().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("check did not finish: {e}"),
        }
    }
}

/// Expands every check of [`checks`] into one `#[tokio::test]` for a [`Fixture`] type.
///
/// Use it once per adapter, at the top level of an integration test file (or inside a module
/// to run it for several fixtures in one file). The tests are named after the checks
/// (`customer_round_trips`, …), whichever module of [`checks`] holds them; each module lists its
/// own checks in a macro beside them, and this expands every module's list.
#[macro_export]
macro_rules! storage_contract {
    ($fixture:ty) => {
        $crate::__storage_contract_customers!($fixture);
        $crate::__storage_contract_users!($fixture);
        $crate::__storage_contract_atomicity!($fixture);
        $crate::__storage_contract_sessions!($fixture);
        $crate::__storage_contract_audit_log!($fixture);
        $crate::__storage_contract_outbox!($fixture);
        $crate::__storage_contract_second_factors!($fixture);
        $crate::__storage_contract_times!($fixture);
        $crate::__storage_contract_housekeeping!($fixture);
        $crate::__storage_contract_oidc!($fixture);
        $crate::__storage_contract_legacy!($fixture);
        $crate::__storage_contract_passkeys!($fixture);
        $crate::__storage_contract_operations!($fixture);
        $crate::__storage_contract_webhooks!($fixture);
    };
    (@tests $fixture:ty; $module:ident; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::run::<$fixture, _, _>($crate::checks::$module::$check).await;
            }
        )*
    };
}
