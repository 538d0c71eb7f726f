//! Fault injection with mockall: storage failing inside a commit, conflicts, a failing hasher or
//! legacy directory. Reads go to the real in-memory store; only the faulty port is mocked.

use adapters_memory::MemoryStore;
use portal_core::ports::{
    Commit, Committer, HashError, LegacyError, MockCommitter, MockLegacyDirectory,
    MockPasswordHasher, StoreError,
};
use portal_core::service::{AdminError, LinkError, RegisterError};
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use portal_core::{Deps, Portal};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::*;

/// A portal whose commits go through `committer`, everything else real.
fn portal_with(store: &Arc<MemoryStore>, committer: Arc<dyn Committer>) -> Portal {
    Portal::new(
        Deps {
            queries: store.clone(),
            committer,
            clock: Arc::new(ManualClock::new()),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(5)),
            hasher: Arc::new(fast_hasher(5)),
            legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
        },
        Default::default(),
        Default::default(),
    )
    .unwrap()
}

/// A committer that fails every commit with `error()` but records session touches in the store.
fn failing(store: &Arc<MemoryStore>, error: fn() -> StoreError) -> (MockCommitter, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let mut mock = MockCommitter::new();
    let c = calls.clone();
    mock.expect_commit().returning(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Err(error())
    });
    let s = store.clone();
    mock.expect_touch_session()
        .returning(move |id, seen, idle| {
            let s = s.clone();
            // The mock is synchronous; run the real touch on a fresh runtime thread.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
                    .block_on(s.touch_session(id, seen, idle))
            })
            .join()
            .unwrap()
        });
    (mock, calls)
}

#[tokio::test]
async fn storage_failing_inside_a_commit_leaves_no_entity_no_audit_and_no_mail() {
    let store = Arc::new(MemoryStore::new());
    let (mock, calls) = failing(&store, || {
        StoreError::Unavailable("connection reset".into())
    });
    let portal = portal_with(&store, Arc::new(mock));
    let w = World::new();
    let err = portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterError::Infra(_)), "got {err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "an infrastructure error is not retried"
    );
    assert_eq!(store.user_count(), 0);
    assert_eq!(store.audit_len(), 0);
    assert!(store.outbox().is_empty());
}

#[tokio::test]
async fn a_failing_admin_action_changes_nothing() {
    // Build a customer with an admin and an employee on a working portal, then lock through a
    // portal whose commits fail.
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    w.customer("123456789").await;
    let admin = w.admin("admin@firma.de", "123456789", &op).await;
    w.member("emp@firma.de", "123456789").await;
    let emp = w.user_id("emp@firma.de").await;
    let before_user = w.user(emp).await;
    let (audit, mails, sessions) = (
        w.store.audit_len(),
        w.store.outbox().len(),
        w.store.session_count(),
    );

    let (mock, _) = failing(&w.store, || StoreError::backend("disk full"));
    let broken = portal_with(&w.store, Arc::new(mock));
    let err = broken
        .lock_user(&admin, &number("123456789"), emp, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::Infra(_)), "got {err:?}");
    assert_eq!(w.user(emp).await, before_user);
    assert_eq!(w.store.audit_len(), audit);
    assert_eq!(w.store.outbox().len(), mails);
    assert_eq!(w.store.session_count(), sessions);
}

#[tokio::test]
async fn a_conflict_is_retried_and_the_retry_commits_once() {
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicU32::new(0));
    let mut mock = MockCommitter::new();
    let (c, s) = (calls.clone(), store.clone());
    mock.expect_commit().returning(move |commit: Commit| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            return Err(StoreError::Conflict);
        }
        let s = s.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(s.commit(commit))
        })
        .join()
        .unwrap()
    });
    let portal = portal_with(&store, Arc::new(mock));
    let w = World::new();
    portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert_eq!(
        store.audit_len(),
        1,
        "exactly one audit entry, from the retry"
    );
    assert_eq!(store.outbox().len(), 1, "exactly one mail");
}

#[tokio::test]
async fn a_persistent_conflict_is_reported_after_bounded_retries() {
    let store = Arc::new(MemoryStore::new());
    let (mock, calls) = failing(&store, || StoreError::Conflict);
    let portal = portal_with(&store, Arc::new(mock));
    let w = World::new();
    let err = portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterError::Conflict), "got {err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        portal_core::service::MAX_COMMIT_ATTEMPTS
    );
    assert_eq!(store.audit_len(), 0);
}

/// Webhook endpoints that keep changing under every attempt: the commit is computed anew a
/// bounded number of times and then reported as unavailable — not as `Conflict`, which callers
/// read as a lost race on their own data (the authorization-code exchange as a reused code).
#[tokio::test]
async fn endpoints_changing_under_every_commit_end_as_unavailable_not_as_a_conflict() {
    let store = Arc::new(MemoryStore::new());
    let (mock, calls) = failing(&store, || StoreError::WebhooksChanged);
    let portal = portal_with(&store, Arc::new(mock));
    let w = World::new();
    let err = portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterError::Infra(_)), "got {err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        portal_core::service::MAX_COMMIT_ATTEMPTS,
        "computed anew, a bounded number of times"
    );
    assert_eq!(store.user_count(), 0);
    assert_eq!(store.audit_len(), 0);
}

#[tokio::test]
async fn a_failing_hasher_is_an_infrastructure_error_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .returning(|_| Err(HashError("out of memory".into())));
    let portal = Portal::new(
        Deps {
            queries: store.clone(),
            committer: store.clone(),
            clock: Arc::new(ManualClock::new()),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(5)),
            hasher: Arc::new(hasher),
            legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
        },
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let w = World::new();
    let err = portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegisterError::Infra(_)), "got {err:?}");
    assert_eq!(store.user_count(), 0);
    assert_eq!(store.audit_len(), 0);
}

#[tokio::test]
async fn an_unreachable_legacy_directory_is_reported_as_unavailable() {
    let w = World::new();
    w.customer("123456789").await;
    let (actor, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&actor, &affiliation())
        .await
        .unwrap();
    let mut legacy = MockLegacyDirectory::new();
    legacy
        .expect_find()
        .returning(|_| Err(LegacyError("timeout".into())));
    let mut deps = w.portal.deps().clone();
    deps.legacy = Arc::new(legacy);
    let portal = Portal::new(deps, Default::default(), Default::default()).unwrap();
    let audit = w.store.audit_len();
    let err = portal
        .link_legacy(&actor, "anna", &"alt-passwort".into())
        .await
        .unwrap_err();
    match err {
        LinkError::Infra(e) => assert!(e.is_unavailable(), "got {e:?}"),
        other => panic!("got {other:?}"),
    }
    assert_eq!(w.store.audit_len(), audit);
    let user = w
        .portal
        .deps()
        .queries
        .user(w.user_id("anna@example.com").await)
        .await
        .unwrap()
        .unwrap();
    assert!(user.customer_id().is_none());
}
