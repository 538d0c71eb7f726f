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
//! valid defaults are in [`fixtures`].
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

use portal_core::ports::{Committer, OutboxStore, Queries};
use std::future::Future;
use std::sync::Arc;

/// Everything a contract check needs from a store.
pub trait Store: Queries + Committer + OutboxStore + Send + Sync + 'static {}
impl<T: Queries + Committer + OutboxStore + Send + Sync + 'static> Store for T {}

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
/// to run it for several fixtures in one file).
#[macro_export]
macro_rules! storage_contract {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture;
            customer_round_trips,
            customer_number_is_unique,
            customers_are_listed_by_number_with_search,
            user_round_trips_with_every_field,
            users_by_ids_skip_unknown_ids,
            email_is_unique_among_accounts,
            pending_registrations_hold_no_claim_on_an_address,
            deleting_a_user_frees_the_address_and_removes_what_hangs_on_it,
            admins_and_operators_are_listed,
            user_lists_never_cross_customers,
            user_pages_follow_sort_key_and_id_across_inserts,
            user_pages_by_offset,
            user_counts_are_capped,
            search_finds_substrings_of_name_and_email_literally,
            search_follows_renames_and_deletes,
            stale_versions_conflict_for_every_entity,
            expected_user_version_is_checked,
            updates_of_missing_rows_conflict,
            inserting_an_existing_id_conflicts,
            a_commit_whose_last_write_fails_leaves_nothing,
            a_duplicate_in_the_last_write_leaves_nothing,
            a_commit_whose_mail_insert_fails_leaves_nothing,
            a_commit_whose_audit_append_fails_leaves_nothing,
            session_round_trips_and_is_found_by_hash_only,
            session_expiry_is_enforced_in_the_query,
            touching_a_session_moves_its_idle_expiry,
            sessions_of_a_user_end_together_except_one,
            challenge_round_trips_and_counts_sends,
            action_tokens_round_trip_by_hash_and_purpose,
            admin_requests_round_trip_and_filter_newest_first,
            legacy_claims_are_unique,
            audit_entries_form_verifiable_chains_per_customer,
            audit_pages_newest_first_with_filters,
            audit_search_matches_details_or_categories,
            outbox_mails_round_trip_and_start_pending,
            outbox_claim_takes_due_mails_oldest_first,
            outbox_ack_purges_the_secret_and_counts,
            outbox_retry_then_dead_letter_then_requeue,
            outbox_expired_lease_is_reclaimed_and_stale_acks_ignored,
            outbox_release_gives_the_mail_back_uncounted,
            mfa_state_round_trips_with_the_user,
            session_kinds_round_trip_and_update,
            email_change_challenges_round_trip,
            rate_counters_count_atomically_and_reset,
            times_are_stored_truncated_to_microseconds,
            purging_removes_exactly_the_rows_dead_at_the_cutoff,
            purges_go_in_batches,
            purging_sent_mail_keeps_open_and_dead_mail,
        );
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::run::<$fixture, _, _>($crate::checks::$check).await;
            }
        )*
    };
}
