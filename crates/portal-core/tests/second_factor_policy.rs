//! R22: an operator requires a second factor for a customer's administrators or for all its
//! users; a user under such a policy without a factor is led to set one up and reaches nothing
//! else until done. Operators need one when the portal says so.

use crate::support::*;
use portal_core::Actor;
use portal_core::audit::AuditCategory;
use portal_core::config::PortalConfig;
use portal_core::customer::SecondFactorPolicy;
use portal_core::permission::PermissionKey;
use portal_core::service::{CustomerError, IssuedSession};

const N: &str = "100000001";

async fn missing(w: &World, session: &IssuedSession) -> bool {
    w.principal(session).await.second_factor_missing()
}

fn area() -> PermissionKey {
    PermissionKey::parse("support_requests").unwrap()
}

#[tokio::test]
async fn a_policy_for_administrators_covers_them_until_they_have_a_factor_and_is_audited() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.admin("chef@example.com", N, &op).await;
    let chef = w.login("chef@example.com").await;
    let chef_principal = w.principal(&chef).await;
    w.invited(
        &Actor::user(chef_principal.user().id()),
        N,
        "emma@example.com",
        &["support_requests"],
    )
    .await;
    let emma = w.login("emma@example.com").await;
    assert!(!missing(&w, &chef).await, "no policy, nothing required");
    assert_eq!(c.second_factor_policy(), SecondFactorPolicy::None);

    let log = w.audit_of(Some(c.id())).len();
    let changed = w
        .portal
        .set_second_factor_policy(&op, &number(N), SecondFactorPolicy::Administrators)
        .await
        .unwrap();
    assert_eq!(
        changed.second_factor_policy(),
        SecondFactorPolicy::Administrators
    );
    let entries = w.audit_of(Some(c.id()));
    assert_eq!(entries.len(), log + 1, "one entry");
    let last = entries.last().unwrap();
    assert_eq!(last.record.category, AuditCategory::CustomerUpdated);
    assert_eq!(last.record.details, "second_factor_policy=administrators");
    assert_eq!(last.record.actor.user, Some(id_of(&op)));
    // Setting it again changes nothing and writes nothing.
    w.portal
        .set_second_factor_policy(&op, &number(N), SecondFactorPolicy::Administrators)
        .await
        .unwrap();
    assert_eq!(w.audit_of(Some(c.id())).len(), log + 1);

    // At the administrator's next request: led to the setup, no area reachable.
    assert!(
        missing(&w, &chef).await,
        "the administrator must set one up"
    );
    let p = w.principal(&chef).await;
    assert!(!w.portal.may_access_area(&p, &area()), "nothing else");
    assert!(!missing(&w, &emma).await, "employees are not covered");
    assert!(w.portal.may_access_area(&w.principal(&emma).await, &area()));
    // The setup itself works for the covered user, and then everything does again.
    w.enable_totp(&chef).await;
    assert!(!missing(&w, &chef).await);
    assert!(w.portal.may_access_area(&w.principal(&chef).await, &area()));
}

#[tokio::test]
async fn a_policy_for_all_users_covers_employees_too_and_none_releases_them() {
    let w = World::new();
    w.customer(N).await;
    w.customer("100000002").await;
    let op = w.operator("op@vendor.example").await;
    w.member("emma@example.com", N).await;
    w.member("otto@example.com", "100000002").await;
    let emma = w.login("emma@example.com").await;
    let otto = w.login("otto@example.com").await;
    w.portal
        .set_second_factor_policy(&op, &number(N), SecondFactorPolicy::AllUsers)
        .await
        .unwrap();
    assert!(missing(&w, &emma).await);
    assert!(
        !missing(&w, &otto).await,
        "another customer's users are not covered"
    );
    w.portal
        .set_second_factor_policy(&op, &number(N), SecondFactorPolicy::None)
        .await
        .unwrap();
    assert!(!missing(&w, &emma).await);
}

#[tokio::test]
async fn only_operators_set_a_policy_and_unknown_customers_are_not_found() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let counts = w.counts();
    let err = w
        .portal
        .set_second_factor_policy(&chef, &number(N), SecondFactorPolicy::None)
        .await
        .unwrap_err();
    assert!(matches!(err, CustomerError::Forbidden), "got {err:?}");
    let err = w
        .portal
        .set_second_factor_policy(&op, &number("999999999"), SecondFactorPolicy::AllUsers)
        .await
        .unwrap_err();
    assert!(matches!(err, CustomerError::NotFound), "got {err:?}");
    assert_eq!(w.counts(), counts, "nothing written");
    assert_eq!(
        w.customer_now(N).await.second_factor_policy(),
        c.second_factor_policy()
    );
}

#[tokio::test]
async fn operators_need_a_second_factor_by_default() {
    // The default requires it (see docs/rules.md R22).
    let w = World::with_config(PortalConfig::default());
    w.operator("op@vendor.example").await;
    let session = w.login("op@vendor.example").await;
    assert!(missing(&w, &session).await);
    w.enable_totp(&session).await;
    assert!(!missing(&w, &session).await);
    // Only a host application embedding the core can switch it off.
    let config = PortalConfig {
        operators_need_second_factor: false,
        ..PortalConfig::default()
    };
    let w = World::with_config(config);
    w.operator("op@vendor.example").await;
    let session = w.login("op@vendor.example").await;
    assert!(!missing(&w, &session).await);
}
