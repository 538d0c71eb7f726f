//! After the code (manual 2.1, R8): choose the product affiliation, then link the account to a
//! customer by its number or by an old "Servicewelt" account.

use crate::support::*;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::customer::AffiliationKey;
use portal_core::ports::{Clock as _, Write};
use portal_core::secret::SecretString;
use portal_core::service::{LinkError, LinkOutcome};
use portal_core::user::{Lock, UserStatus};

const N: &str = "100000001";

fn at() -> AffiliationKey {
    AffiliationKey::parse("at").unwrap()
}

/// Locks a user directly in the store: the only way to get a locked user who is not linked yet.
async fn lock_directly(w: &World, actor: &Actor) {
    let Actor::User { id, .. } = actor else {
        unreachable!()
    };
    let mut u = w.user(*id).await;
    let now = w.clock.now();
    u.lock_with(
        Lock {
            by: portal_core::audit::ActorRef::system(),
            at: now,
            reason: None,
        },
        now,
    )
    .unwrap();
    w.force(vec![Write::UpdateUser(u)]).await;
}

#[tokio::test]
async fn an_unknown_affiliation_is_refused_and_changes_nothing() {
    let w = World::new();
    let (anna, _) = w.registered("anna@example.com").await;
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w
        .portal
        .choose_affiliation(&anna, &AffiliationKey::parse("mars").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::UnknownAffiliation), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn the_affiliation_can_be_changed_until_the_account_is_linked() {
    let w = World::new();
    w.customer(N).await;
    let (anna, _) = w.registered("anna@example.com").await;
    let id = id_of(&anna);
    w.portal.choose_affiliation(&anna, &at()).await.unwrap();
    assert_eq!(w.user(id).await.affiliation(), Some(&at()));
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    assert_eq!(w.user(id).await.affiliation(), Some(&affiliation()));
    let changes: Vec<_> = w
        .audit_of(None)
        .into_iter()
        .filter(|e| {
            e.record.subject == Some(id) && e.record.category == AuditCategory::AccountChanged
        })
        .map(|e| e.record.details)
        .collect();
    assert_eq!(changes, ["affiliation=at", "affiliation=de-business"]);

    w.portal.link_customer(&anna, &number(N)).await.unwrap();
    let linked = w.user(id).await;
    let counts = w.counts();
    let err = w.portal.choose_affiliation(&anna, &at()).await.unwrap_err();
    assert!(matches!(err, LinkError::AlreadyLinked), "got {err:?}");
    assert_eq!(w.user(id).await, linked, "the affiliation stays");
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn linking_to_a_customer_without_admin_activates_with_the_default_permissions() {
    let w = World::new();
    let c = w.customer(N).await;
    let (anna, _) = w.registered("anna@example.com").await;
    let id = id_of(&anna);
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    // The printed form with the D and surrounding spaces is the same number.
    let outcome = w
        .portal
        .link_customer(&anna, &number(" D100000001 "))
        .await
        .unwrap();
    assert_eq!(outcome, LinkOutcome::Active);
    let u = w.user(id).await;
    assert_eq!(u.status(), UserStatus::Active);
    assert_eq!(u.customer_id(), Some(c.id()));
    assert_eq!(u.permissions(), &keys(&["support_requests"]));
    let linked: Vec<_> = w
        .audit_of(Some(c.id()))
        .into_iter()
        .filter(|e| e.record.category == AuditCategory::CustomerLinked)
        .collect();
    assert_eq!(
        linked.len(),
        1,
        "one entry in the customer's chain: {linked:?}"
    );
    assert_eq!(linked[0].record.subject, Some(id));
    assert_eq!(linked[0].record.actor.kind, ActorKind::User);
    assert_eq!(linked[0].record.details, "via=number; status=active");
    assert!(
        !w.audit_of(None)
            .iter()
            .any(|e| e.record.category == AuditCategory::CustomerLinked),
        "not in the global chain"
    );
    assert!(
        !w.store
            .outbox()
            .iter()
            .any(|m| m.intent.key() == "activation_needed"),
        "nobody to ask for activation"
    );
}

#[tokio::test]
async fn linking_to_a_customer_with_an_admin_waits_and_mails_every_active_admin() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.admin("a1@example.com", N, &op).await;
    w.admin("a2@example.com", N, &op).await;
    w.admin("a3@example.com", N, &op).await;
    let a3 = w.user_id("a3@example.com").await;
    w.portal.lock_user(&op, &number(N), a3, None).await.unwrap();

    let (bert, _) = w.registered("bert@example.com").await;
    w.portal
        .choose_affiliation(&bert, &affiliation())
        .await
        .unwrap();
    let mails_before = w.store.outbox().len();
    let outcome = w.portal.link_customer(&bert, &number(N)).await.unwrap();
    assert_eq!(outcome, LinkOutcome::PendingActivation);
    let u = w.user(id_of(&bert)).await;
    assert_eq!(u.status(), UserStatus::PendingActivation);
    assert_eq!(u.customer_id(), Some(c.id()));
    let mut new_mails: Vec<(String, &str)> = w.store.outbox()[mails_before..]
        .iter()
        .map(|m| (m.to.as_str().to_owned(), m.intent.key()))
        .collect();
    new_mails.sort();
    assert_eq!(
        new_mails,
        [
            ("a1@example.com".to_owned(), "activation_needed"),
            ("a2@example.com".to_owned(), "activation_needed"),
        ],
        "every active admin, not the locked one, nobody else"
    );
    let entry = w
        .audit_of(Some(c.id()))
        .into_iter()
        .rfind(|e| e.record.category == AuditCategory::CustomerLinked)
        .unwrap();
    assert_eq!(entry.record.subject, Some(id_of(&bert)));
    assert_eq!(
        entry.record.details,
        "via=number; status=pending_activation"
    );
}

#[tokio::test]
async fn linking_twice_is_refused() {
    let w = World::new();
    w.customer(N).await;
    w.customer("100000002").await;
    let anna = w.member("anna@example.com", N).await;
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    for n in [N, "100000002"] {
        let err = w.portal.link_customer(&anna, &number(n)).await.unwrap_err();
        assert!(matches!(err, LinkError::AlreadyLinked), "{n}: got {err:?}");
    }
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_unknown_customer_number_is_refused() {
    let w = World::new();
    w.customer(N).await;
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w
        .portal
        .link_customer(&anna, &number("999999999"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::CustomerNotFound), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn linking_needs_the_affiliation_first() {
    let w = World::new();
    w.customer(N).await;
    let (anna, _) = w.registered("anna@example.com").await;
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w.portal.link_customer(&anna, &number(N)).await.unwrap_err();
    assert!(matches!(err, LinkError::AffiliationRequired), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_customer_of_another_product_line_is_refused() {
    let w = World::new();
    w.customer(N).await; // de-business only
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal.choose_affiliation(&anna, &at()).await.unwrap();
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w.portal.link_customer(&anna, &number(N)).await.unwrap_err();
    assert!(matches!(err, LinkError::AffiliationMismatch), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_old_servicewelt_account_links_to_its_customer() {
    let w = World::new();
    let c = w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    let outcome = w
        .portal
        .link_legacy(&anna, " Max.Alt ", &SecretString::new("altes geheimnis"))
        .await
        .unwrap();
    assert_eq!(outcome, LinkOutcome::Active);
    let u = w.user(id_of(&anna)).await;
    assert_eq!(u.customer_id(), Some(c.id()));
    assert_eq!(u.status(), UserStatus::Active);
    assert_eq!(u.permissions(), &keys(&["support_requests"]));
    let entry = w
        .audit_of(Some(c.id()))
        .into_iter()
        .rfind(|e| e.record.category == AuditCategory::CustomerLinked)
        .unwrap();
    assert_eq!(entry.record.details, "via=legacy; status=active");
    assert!(
        !entry.record.details.contains("max.alt"),
        "the old username is not logged"
    );
}

#[tokio::test]
async fn wrong_old_credentials_are_refused_and_change_nothing() {
    let w = World::new();
    w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let long = "x".repeat(300);
    for (user, pw) in [
        ("max.alt", "falsches geheimnis"),
        ("max.alt", ""),
        ("moritz.alt", "altes geheimnis"),
        ("   ", "altes geheimnis"),
        (long.as_str(), "altes geheimnis"),
    ] {
        let err = w
            .portal
            .link_legacy(&anna, user, &SecretString::new(pw))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LinkError::InvalidLegacyCredentials),
            "{user:?}: got {err:?}"
        );
    }
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    // The right password still works afterwards.
    w.portal
        .link_legacy(&anna, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_old_account_can_be_linked_only_once() {
    let w = World::new();
    w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let (anna, _) = w.registered("anna@example.com").await;
    let (bert, _) = w.registered("bert@example.com").await;
    for u in [&anna, &bert] {
        w.portal
            .choose_affiliation(u, &affiliation())
            .await
            .unwrap();
    }
    w.portal
        .link_legacy(&anna, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap();
    let before = w.user(id_of(&bert)).await;
    let counts = w.counts();
    let err = w
        .portal
        .link_legacy(&bert, "MAX.ALT", &SecretString::new("altes geheimnis"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::LegacyAlreadyLinked), "got {err:?}");
    assert_eq!(w.user(id_of(&bert)).await, before);
    assert!(w.user(id_of(&bert)).await.customer_id().is_none());
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn operators_cannot_link() {
    let w = World::new();
    w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let op = w.operator("op@vendor.example").await;
    let before = w.user(id_of(&op)).await;
    let counts = w.counts();
    let err = w
        .portal
        .choose_affiliation(&op, &affiliation())
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    let err = w.portal.link_customer(&op, &number(N)).await.unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    let err = w
        .portal
        .link_legacy(&op, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    assert_eq!(w.user(id_of(&op)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn locked_users_cannot_link() {
    let w = World::new();
    w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    lock_directly(&w, &anna).await;
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w.portal.choose_affiliation(&anna, &at()).await.unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    let err = w.portal.link_customer(&anna, &number(N)).await.unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    let err = w
        .portal
        .link_legacy(&anna, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Forbidden), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_user_waiting_for_activation_cannot_relink_elsewhere() {
    let w = World::new();
    w.customer(N).await;
    w.customer("100000002").await;
    let op = w.operator("op@vendor.example").await;
    w.admin("chef@example.com", N, &op).await;
    let bert = w.pending_member("bert@example.com", N).await;
    let before = w.user(id_of(&bert)).await;
    let counts = w.counts();
    let err = w
        .portal
        .link_customer(&bert, &number("100000002"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LinkError::Forbidden | LinkError::AlreadyLinked),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&bert)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn guessing_customer_numbers_is_throttled_per_user_across_server_processes() {
    let w = World::new();
    w.customer(N).await;
    // A second server process on the same database: the counter lives in storage.
    let other = w.sibling(portal_core::config::PortalConfig::default(), true);
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    for i in 0..6 {
        let portal = if i % 2 == 0 { &w.portal } else { &other };
        let err = portal
            .link_customer(&anna, &number(&format!("99999999{i}")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LinkError::CustomerNotFound),
            "guess {i}: {err:?}"
        );
    }
    // Five failures are free; the sixth costs 2 s, in which nothing is checked, not even the
    // right number, on either process.
    let retry = w.now() + seconds(2);
    let before = w.user(id_of(&anna)).await;
    for portal in [&w.portal, &other] {
        let err = portal.link_customer(&anna, &number(N)).await.unwrap_err();
        assert!(
            matches!(err, LinkError::Throttled { retry_at } if retry_at == retry),
            "got {err:?}"
        );
    }
    assert_eq!(w.user(id_of(&anna)).await, before, "nothing changed");
    w.advance(seconds(2));
    let outcome = other.link_customer(&anna, &number(N)).await.unwrap();
    assert_eq!(outcome, LinkOutcome::Active);
}

#[tokio::test]
async fn guessing_from_one_client_address_is_throttled_for_every_account_there() {
    let mut config = portal_core::config::PortalConfig::default();
    config.link_address_throttle.free_failures = 2;
    let w = World::with_config(config);
    w.customer(N).await;
    let guesser = portal_core::session::ClientInfo::new(Some("203.0.113.9"), None);
    let elsewhere = portal_core::session::ClientInfo::new(Some("198.51.100.7"), None);
    let mut accounts = Vec::new();
    for who in ["anna", "ben", "carl", "dora"] {
        let (a, _) = w.registered(&format!("{who}@example.com")).await;
        w.portal
            .choose_affiliation(&a, &affiliation())
            .await
            .unwrap();
        accounts.push(a);
    }
    for (i, a) in accounts[..3].iter().enumerate() {
        let err = w
            .portal
            .link_customer_from(a, &number(&format!("99999999{i}")), &guesser)
            .await
            .unwrap_err();
        assert!(matches!(err, LinkError::CustomerNotFound), "got {err:?}");
    }
    // Three failures from one address, one per account: a fresh account there waits too.
    let dora = &accounts[3];
    let err = w
        .portal
        .link_customer_from(dora, &number(N), &guesser)
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Throttled { .. }), "got {err:?}");
    // The same account from another address is not held up by the guesser's address.
    let outcome = w
        .portal
        .link_customer_from(dora, &number(N), &elsewhere)
        .await
        .unwrap();
    assert_eq!(outcome, LinkOutcome::Active);
}

#[tokio::test]
async fn wrong_old_credentials_count_like_guessed_numbers() {
    let w = World::new();
    w.customer(N).await;
    w.legacy.add("max.alt", "altes geheimnis", number(N));
    let (anna, _) = w.registered("anna@example.com").await;
    w.portal
        .choose_affiliation(&anna, &affiliation())
        .await
        .unwrap();
    for i in 0..6 {
        let err = w
            .portal
            .link_legacy(&anna, "max.alt", &SecretString::new(format!("falsch {i}")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LinkError::InvalidLegacyCredentials),
            "got {err:?}"
        );
    }
    let err = w
        .portal
        .link_legacy(&anna, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Throttled { .. }), "got {err:?}");
    w.advance(seconds(2));
    w.portal
        .link_legacy(&anna, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap();
}
