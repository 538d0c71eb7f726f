//! Customers: round trips, the unique customer number, listing and search.

use crate::Store;
use crate::fixtures::*;
use portal_core::customer::SecondFactorPolicy;
use portal_core::ids::CustomerId;
use portal_core::ports::{CustomerQuery, StoreError, UniqueKey, Write};
use portal_core::values::CustomerNumber;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_customers {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; customers;
            customer_round_trips,
            customer_number_is_unique,
            customers_are_listed_by_number_with_search,
            every_second_factor_policy_round_trips,
        );
    };
}

/// A customer reads back exactly as written (version 1, times to the microsecond), by id and by
/// number; an update stores version 2.
pub async fn customer_round_trips<S: Store>(store: Arc<S>) {
    let c = customer("100000001", "Müller & Söhne GmbH");
    commit_ok(&*store, writes([Write::InsertCustomer(c.clone())])).await;
    let mut expected = c.record().clone();
    expected.version = 1;
    let got = store.customer(c.id()).await.unwrap().expect("by id");
    assert_eq!(got.record(), &expected, "customer by id");
    let got = store
        .customer_by_number(c.number())
        .await
        .unwrap()
        .expect("by number");
    assert_eq!(got.record(), &expected, "customer by number");

    let mut changed = got.clone();
    changed.touch_admin_set(at(50));
    commit_ok(&*store, writes([Write::UpdateCustomer(changed)])).await;
    let again = store.customer(c.id()).await.unwrap().expect("after update");
    assert_eq!(again.version(), 2, "an update bumps the version");
    assert_eq!(again.record().updated_at, at(50));
    assert!(
        store
            .customer(CustomerId::from_uuid(new_uuid()))
            .await
            .unwrap()
            .is_none(),
        "unknown id"
    );
    assert!(
        store
            .customer_by_number(&CustomerNumber::parse("999999999").unwrap())
            .await
            .unwrap()
            .is_none(),
        "unknown number"
    );
}

/// Two customers cannot share a number; the refused one leaves no trace.
pub async fn customer_number_is_unique<S: Store>(store: Arc<S>) {
    let first = customer("100000002", "Erste GmbH");
    let second = customer("100000002", "Zweite GmbH");
    commit_ok(&*store, writes([Write::InsertCustomer(first.clone())])).await;
    let e = commit_err(&*store, writes([Write::InsertCustomer(second.clone())])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::CustomerNumber)),
        "got {e:?}"
    );
    assert!(store.customer(second.id()).await.unwrap().is_none());
    let by_number = store.customer_by_number(first.number()).await.unwrap();
    assert_eq!(by_number.map(|c| c.id()), Some(first.id()));
}

/// Customers are listed by number, `limit + 1` at a time, after a number, and found by a
/// literal substring of the number or the lower-case company name.
pub async fn customers_are_listed_by_number_with_search<S: Store>(store: Arc<S>) {
    let c3 = customer("300000003", "Gamma AG");
    let c1 = customer("100000001", "Alpha GmbH");
    let c2 = customer("200000002", "Beta 50% KG");
    commit_ok(
        &*store,
        writes([c3.clone(), c1.clone(), c2.clone()].map(Write::InsertCustomer)),
    )
    .await;
    let list = |search: Option<&str>, after: Option<&str>, limit: u32| CustomerQuery {
        search: search.map(str::to_owned),
        after: after.map(|a| CustomerNumber::parse(a).unwrap()),
        limit,
    };
    let numbers = |cs: Vec<portal_core::customer::Customer>| {
        cs.iter()
            .map(|c| c.number().as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let all = store.customers(&list(None, None, 10)).await.unwrap();
    assert_eq!(numbers(all), ["100000001", "200000002", "300000003"]);
    let first = store.customers(&list(None, None, 1)).await.unwrap();
    assert_eq!(numbers(first), ["100000001", "200000002"], "limit + 1 rows");
    let after = store
        .customers(&list(None, Some("100000001"), 10))
        .await
        .unwrap();
    assert_eq!(numbers(after), ["200000002", "300000003"]);
    let beta = store
        .customers(&list(Some("beta"), None, 10))
        .await
        .unwrap();
    assert_eq!(numbers(beta), ["200000002"], "by company name");
    let by_digits = store
        .customers(&list(Some("0003"), None, 10))
        .await
        .unwrap();
    assert_eq!(numbers(by_digits), ["300000003"], "by number");
    let percent = store.customers(&list(Some("%"), None, 10)).await.unwrap();
    assert_eq!(
        numbers(percent),
        ["200000002"],
        "`%` is a literal character"
    );
}

/// A customer's second-factor policy (R22) is stored: new customers have none, and every policy
/// reads back after an update, by id and by number, with the version bumped.
pub async fn every_second_factor_policy_round_trips<S: Store>(store: Arc<S>) {
    let c = customer("100000077", "Sicher GmbH");
    commit_ok(&*store, writes([Write::InsertCustomer(c.clone())])).await;
    let mut current = store.customer(c.id()).await.unwrap().expect("by id");
    assert_eq!(current.second_factor_policy(), SecondFactorPolicy::None);
    for (i, policy) in [
        SecondFactorPolicy::AllUsers,
        SecondFactorPolicy::Administrators,
        SecondFactorPolicy::None,
    ]
    .into_iter()
    .enumerate()
    {
        let mut changed = current.clone();
        changed.set_second_factor_policy(policy, at(10 + i64::try_from(i).unwrap()));
        commit_ok(&*store, writes([Write::UpdateCustomer(changed.clone())])).await;
        let by_id = store.customer(c.id()).await.unwrap().expect("by id");
        let by_number = store
            .customer_by_number(c.number())
            .await
            .unwrap()
            .expect("by number");
        assert_eq!(by_id.second_factor_policy(), policy, "by id");
        assert_eq!(by_number.record(), by_id.record(), "by number");
        assert_eq!(by_id.version(), current.version() + 1);
        current = by_id;
    }
}
