//! Audit: verifiable hash chains per customer, paging and filters, search.

use super::{seqs, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::{self, AuditCategory};
use portal_core::ids::{CustomerId, UserId};
use portal_core::ports::{AuditQuery, Commit};
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_audit_log {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; audit_log;
            audit_entries_form_verifiable_chains_per_customer,
            audit_pages_newest_first_with_filters,
            audit_search_matches_details_or_categories,
        );
    };
}

fn audit_query(customer: Option<CustomerId>, limit: u32) -> AuditQuery {
    AuditQuery {
        customer,
        subject: None,
        categories: Vec::new(),
        search: None,
        search_categories: Vec::new(),
        from: None,
        until: None,
        before_seq: None,
        limit,
    }
}

/// Entries are chained per customer (and globally), numbered from 1 without gaps, and every
/// chain verifies; records read back exactly.
pub async fn audit_entries_form_verifiable_chains_per_customer<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000060").await;
    let c2 = setup_customer(&*store, "100000061").await;
    let mut written = Vec::new();
    for round in 0..3_i64 {
        let mut commit = Commit::new();
        let recs = [
            audit(
                Some(c1.id()),
                None,
                AuditCategory::UserCreated,
                "a",
                at(round * 10),
            ),
            audit(
                Some(c2.id()),
                None,
                AuditCategory::UserLocked,
                "reason=given",
                at(round * 10),
            ),
            audit(
                Some(c1.id()),
                None,
                AuditCategory::PermissionsChanged,
                "permissions=+shop",
                at(round * 10 + 1),
            ),
            audit(
                None,
                None,
                AuditCategory::CustomerCreated,
                "",
                at(round * 10 + 2),
            ),
        ];
        for r in recs {
            written.push(r.clone());
            commit.audit(r);
        }
        commit_ok(&*store, commit).await;
    }
    for chain in [Some(c1.id()), Some(c2.id()), None] {
        let entries = store.audit_chain(chain, 0, 100).await.unwrap();
        let want: Vec<_> = written
            .iter()
            .filter(|r| r.customer == chain)
            .cloned()
            .collect();
        assert_eq!(
            entries.iter().map(|e| e.record.clone()).collect::<Vec<_>>(),
            want,
            "records of chain {chain:?} in commit order"
        );
        assert_eq!(seqs(&entries), (1..=want.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            audit::verify_chain(&entries),
            Ok(()),
            "chain {chain:?} verifies"
        );
    }
    let all = store.audit_chain(Some(c1.id()), 0, 100).await.unwrap();
    let stretch = store.audit_chain(Some(c1.id()), 2, 2).await.unwrap();
    assert_eq!(seqs(&stretch), [3, 4]);
    assert_eq!(audit::verify_chain_from(&stretch, 2, all[1].hash), Ok(()));
}

/// The log pages newest first by sequence number and filters by subject, category and time.
pub async fn audit_pages_newest_first_with_filters<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000062").await;
    let other = setup_customer(&*store, "100000063").await;
    let u1 = UserId::from_uuid(new_uuid());
    let u2 = UserId::from_uuid(new_uuid());
    for i in 0..10_i64 {
        let (subject, category) = if i % 2 == 0 {
            (u1, AuditCategory::UserLocked)
        } else {
            (u2, AuditCategory::PermissionsChanged)
        };
        let mut commit = Commit::new();
        commit.audit(audit(Some(c.id()), Some(subject), category, "", at(i * 60)));
        commit_ok(&*store, commit).await;
    }
    let mut commit = Commit::new();
    commit.audit(audit(
        Some(other.id()),
        Some(u1),
        AuditCategory::UserLocked,
        "",
        at(0),
    ));
    commit_ok(&*store, commit).await;

    let q = audit_query(Some(c.id()), 3);
    assert_eq!(
        seqs(&store.audit(&q).await.unwrap()),
        [10, 9, 8, 7],
        "limit + 1, newest first"
    );
    let q = AuditQuery {
        before_seq: Some(7),
        ..audit_query(Some(c.id()), 3)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [6, 5, 4, 3]);
    let q = AuditQuery {
        subject: Some(u1),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [9, 7, 5, 3, 1]);
    let q = AuditQuery {
        categories: vec![AuditCategory::PermissionsChanged],
        before_seq: Some(6),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [4, 2]);
    let q = AuditQuery {
        from: Some(at(180)),
        until: Some(at(360)),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(
        seqs(&store.audit(&q).await.unwrap()),
        [6, 5, 4],
        "from inclusive, until exclusive"
    );
    assert_eq!(
        seqs(
            &store
                .audit(&audit_query(Some(other.id()), 10))
                .await
                .unwrap()
        ),
        [1]
    );
    assert!(
        store
            .audit(&audit_query(None, 10))
            .await
            .unwrap()
            .is_empty(),
        "chains are separate"
    );
    assert!(
        store
            .audit(&audit_query(Some(CustomerId::from_uuid(new_uuid())), 10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Search finds entries whose lower-cased details contain the text, or whose category is one of
/// the matched categories; `%` is literal.
pub async fn audit_search_matches_details_or_categories<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000064").await;
    let mut commit = Commit::new();
    commit
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::PermissionsChanged,
            "permissions=+documents,-shop",
            at(1),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::UserLocked,
            "reason=given",
            at(2),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::UserDeleted,
            "Role=Administrator",
            at(3),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::AccountChanged,
            "quota=100%",
            at(4),
        ));
    commit_ok(&*store, commit).await;
    let search = |text: &str, cats: Vec<AuditCategory>| AuditQuery {
        search: Some(text.to_owned()),
        search_categories: cats,
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(
        seqs(&store.audit(&search("documents", vec![])).await.unwrap()),
        [1]
    );
    assert_eq!(
        seqs(&store.audit(&search("role=admin", vec![])).await.unwrap()),
        [3],
        "details are searched lower-cased"
    );
    assert_eq!(
        seqs(
            &store
                .audit(&search("gesperrt", vec![AuditCategory::UserLocked]))
                .await
                .unwrap()
        ),
        [2],
        "a category whose label matched"
    );
    assert_eq!(seqs(&store.audit(&search("%", vec![])).await.unwrap()), [4]);
    assert!(
        store
            .audit(&search("nothing", vec![]))
            .await
            .unwrap()
            .is_empty()
    );
}
