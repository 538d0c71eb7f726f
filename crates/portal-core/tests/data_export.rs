//! A person's own data (GDPR Art. 15 and 20): the person's export holds everything Portal keeps
//! about them and no secret; an administrator's holds what the portal shows them; both need a
//! fresh login, are rate limited, audited and mailed; nothing of another customer appears.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::audit::AuditCategory;
use portal_core::data_export::{DataExport, ExportScope, FORMAT};
use portal_core::mail::MailIntent;
use portal_core::service::ExportError;
use portal_core::throttle::MailBudgets;

const A: &str = "100000001";
const B: &str = "200000002";

/// Two customers with look-alike people: an admin, and an employee invited with the same
/// permissions under the same name.
struct Two {
    w: World,
    chef_a: portal_core::Actor,
    chef_b: portal_core::Actor,
}

async fn two() -> Two {
    let w = World::new();
    w.customer(A).await;
    w.customer(B).await;
    let op = w.operator("op@vendor.example").await;
    let chef_a = w.admin("chef-a@example.com", A, &op).await;
    let chef_b = w.admin("chef-b@example.com", B, &op).await;
    w.invited(&chef_a, A, "emma-a@example.com", &["documents"])
        .await;
    w.invited(&chef_b, B, "emma-b@example.com", &["documents"])
        .await;
    let emma_b = w.user_id("emma-b@example.com").await;
    w.portal
        .set_permissions(
            &chef_b,
            &number(B),
            emma_b,
            &keys(&["documents", "support_requests"]),
        )
        .await
        .unwrap();
    w.portal
        .lock_user(&chef_b, &number(B), emma_b, None)
        .await
        .unwrap();
    Two { w, chef_a, chef_b }
}

fn json(e: &DataExport) -> String {
    serde_json::to_string(e).unwrap()
}

#[tokio::test]
async fn the_own_export_holds_profile_customer_permissions_sessions_and_log() {
    let t = two().await;
    let w = &t.w;
    let s = w.login("emma-a@example.com").await;
    let p = w.principal(&s).await;
    let e = w.portal.export_my_data(&p).await.unwrap();

    assert_eq!(e.format, FORMAT);
    assert_eq!(e.scope, ExportScope::Own);
    assert_eq!(e.profile.email, "emma-a@example.com");
    assert_eq!(e.profile.first_name, "Ida");
    assert_eq!(e.profile.status, "active");
    let c = e.customer.as_ref().expect("linked");
    assert_eq!(c.number, "D100000001");
    assert_eq!(e.permissions.len(), 1);
    let perm = &e.permissions[0];
    assert_eq!(perm.key, "documents");
    assert!(perm.granted_at.is_some(), "the invitation granted it");
    assert_eq!(
        perm.granted_by.as_deref(),
        Some(w.user(id_of(&t.chef_a)).await.display_name().as_str()),
        "by the administrator, by name"
    );
    assert!(
        e.sessions
            .iter()
            .any(|x| x.id == s.session_id.to_string() && x.ip.as_deref() == Some("127.0.0.1")),
        "the own export shows the session's address: {:?}",
        e.sessions
    );
    let categories: Vec<&str> = e.change_log.iter().map(|l| l.category.as_str()).collect();
    assert!(categories.contains(&"user.created"), "{categories:?}");
    assert!(categories.contains(&"login.succeeded"), "{categories:?}");
    assert!(
        e.change_log.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first"
    );
}

#[tokio::test]
async fn no_data_of_another_customer_appears_in_either_export() {
    let t = two().await;
    let w = &t.w;
    let s = w.login("emma-a@example.com").await;
    let own = w
        .portal
        .export_my_data(&w.principal(&s).await)
        .await
        .unwrap();
    let chef = w.login("chef-a@example.com").await;
    let emma_a = w.user_id("emma-a@example.com").await;
    let admin = w
        .portal
        .export_user_data(&w.principal(&chef).await, &number(A), emma_a)
        .await
        .unwrap();
    let emma_b = w.user_id("emma-b@example.com").await;
    let foreign = [
        "emma-b@example.com".to_owned(),
        "chef-b@example.com".to_owned(),
        B.to_owned(),
        emma_b.to_string(),
        id_of(&t.chef_b).to_string(),
        "support_requests".to_owned(),
        "locked".to_owned(),
    ];
    for (which, e) in [("own", &own), ("administrator's", &admin)] {
        let text = json(e);
        for f in &foreign {
            assert!(
                !text.contains(f.as_str()),
                "{which} export holds {f} of the other customer"
            );
        }
    }
}

#[tokio::test]
async fn an_administrators_export_holds_no_session_addresses_devices_or_phone_numbers() {
    let t = two().await;
    let w = &t.w;
    let emma = w.login("emma-a@example.com").await;
    w.enable_phone(&emma, "+4915112345678").await;
    let chef = w.login("chef-a@example.com").await;
    let emma_a = w.user_id("emma-a@example.com").await;
    let e = w
        .portal
        .export_user_data(&w.principal(&chef).await, &number(A), emma_a)
        .await
        .unwrap();
    assert_eq!(e.scope, ExportScope::Administrator);
    assert!(!e.sessions.is_empty(), "sessions are listed, with times");
    assert!(
        e.sessions
            .iter()
            .all(|s| s.ip.is_none() && s.user_agent.is_none()),
        "{:?}",
        e.sessions
    );
    assert!(
        e.second_factors
            .iter()
            .any(|f| f.kind == "sms" || f.kind == "voice"),
        "the kind is shown: {:?}",
        e.second_factors
    );
    assert!(e.second_factors.iter().all(|f| f.label.is_none()));
    let text = json(&e);
    for hidden in ["127.0.0.1", "12345678", "\"test\""] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    assert!(
        e.change_log.iter().all(|l| l.chain == "customer"),
        "only the customer's log"
    );
}

#[tokio::test]
async fn the_export_holds_no_secret() {
    let t = two().await;
    let w = &t.w;
    let s = w.login("emma-a@example.com").await;
    w.enable_totp(&s).await;
    let p = w.principal(&s).await;
    let e = w.portal.export_my_data(&p).await.unwrap();
    assert!(e.second_factors.iter().any(|f| f.kind == "totp"));
    let user = w.user(w.user_id("emma-a@example.com").await).await;
    let rec = user.record();
    let text = json(&e);
    let hash = rec.password_hash.as_ref().unwrap().as_phc().to_owned();
    let seed = rec.mfa.totp.as_ref().unwrap().sealed_secret.clone();
    assert!(!text.contains(&hash), "no password hash");
    assert!(!text.contains(&seed), "no sealed seed");
    let recovery = rec.mfa.recovery_code.as_ref().unwrap().as_phc().to_owned();
    assert!(!text.contains(&recovery), "no recovery-code hash");
    assert!(!text.contains(s.token.expose()), "no session token");
}

#[tokio::test]
async fn an_export_needs_a_fresh_login_and_changes_nothing_without_one() {
    let t = two().await;
    let w = &t.w;
    let s = w.login("emma-a@example.com").await;
    w.advance(TimeDelta::minutes(16));
    let p = w.principal(&s).await;
    let before = w.counts();
    let err = w.portal.export_my_data(&p).await.unwrap_err();
    assert!(matches!(err, ExportError::ReauthRequired), "got {err:?}");
    assert_eq!(w.counts(), before, "nothing audited or mailed");
    let chef = w.login("chef-a@example.com").await;
    w.advance(TimeDelta::minutes(16));
    let before_admin = w.counts();
    let emma_a = w.user_id("emma-a@example.com").await;
    let err = w
        .portal
        .export_user_data(&w.principal(&chef).await, &number(A), emma_a)
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::ReauthRequired), "got {err:?}");
    assert_eq!(w.counts(), before_admin);
}

#[tokio::test]
async fn an_export_is_audited_and_mailed_to_the_person() {
    let t = two().await;
    let w = &t.w;
    let c = w.customer_now(A).await;
    let emma_a = w.user_id("emma-a@example.com").await;
    let s = w.login("emma-a@example.com").await;
    w.portal
        .export_my_data(&w.principal(&s).await)
        .await
        .unwrap();
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::DataExported);
    assert_eq!(last.record.subject, Some(emma_a));
    assert_eq!(last.record.actor.user, Some(emma_a));
    assert_eq!(last.record.details, "scope=self");
    match &w.last_mail_to("emma-a@example.com").intent {
        MailIntent::DataExported {
            by_administrator, ..
        } => assert!(!by_administrator),
        other => panic!("got {other:?}"),
    }

    let chef = w.login("chef-a@example.com").await;
    w.portal
        .export_user_data(&w.principal(&chef).await, &number(A), emma_a)
        .await
        .unwrap();
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::DataExported);
    assert_eq!(last.record.subject, Some(emma_a));
    assert_eq!(last.record.actor.user, Some(id_of(&t.chef_a)));
    assert_eq!(last.record.details, "scope=administrator");
    match &w.last_mail_to("emma-a@example.com").intent {
        MailIntent::DataExported {
            by_administrator, ..
        } => assert!(by_administrator),
        other => panic!("got {other:?}"),
    }
}

#[tokio::test]
async fn another_customers_user_answers_not_found_and_changes_nothing() {
    let t = two().await;
    let w = &t.w;
    let chef = w.login("chef-a@example.com").await;
    let p = w.principal(&chef).await;
    let emma_b = w.user_id("emma-b@example.com").await;
    let before = w.counts();
    for (n, id) in [(A, emma_b), (A, uuid_user(7))] {
        let err = w
            .portal
            .export_user_data(&p, &number(n), id)
            .await
            .unwrap_err();
        assert!(matches!(err, ExportError::NotFound), "got {err:?}");
    }
    let err = w
        .portal
        .export_user_data(&p, &number(B), emma_b)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExportError::NotFound),
        "another customer's user is not found (R2), not forbidden: got {err:?}"
    );
    assert_eq!(w.counts(), before);
    // An employee is no administrator.
    let emma = w.login("emma-a@example.com").await;
    let chef_a = id_of(&t.chef_a);
    let err = w
        .portal
        .export_user_data(&w.principal(&emma).await, &number(A), chef_a)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExportError::Forbidden),
        "an employee of the customer is forbidden: got {err:?}"
    );
}

fn uuid_user(n: u128) -> portal_core::ids::UserId {
    portal_core::ids::UserId::from_uuid(uuid::Uuid::from_u128(n))
}

#[tokio::test]
async fn exports_of_one_person_are_limited_per_day_and_a_refusal_changes_nothing() {
    let t = two().await;
    let w = &t.w;
    let s = w.login("emma-a@example.com").await;
    let p = w.principal(&s).await;
    let limit = MailBudgets::default().data_exports_per_person;
    for _ in 0..limit {
        w.portal.export_my_data(&p).await.unwrap();
    }
    let before = w.counts();
    let err = w.portal.export_my_data(&p).await.unwrap_err();
    let ExportError::Throttled { retry_at } = err else {
        panic!("got {err:?}");
    };
    assert!(retry_at > w.now());
    assert_eq!(w.counts(), before, "no entry, no mail");
    // The administrator's export of the same person counts in the person's budget too.
    let chef = w.login("chef-a@example.com").await;
    let emma_a = w.user_id("emma-a@example.com").await;
    let err = w
        .portal
        .export_user_data(&w.principal(&chef).await, &number(A), emma_a)
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::Throttled { .. }), "got {err:?}");
    // The next day the budget is full again (a fresh login for the step-up).
    w.advance(TimeDelta::days(1));
    let s = w.login("emma-a@example.com").await;
    w.portal
        .export_my_data(&w.principal(&s).await)
        .await
        .unwrap();
}
