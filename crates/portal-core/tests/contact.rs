//! "Administrator kontaktieren" (manual 3.2, R12): a user writes to the customer's
//! administrators, who get the message by mail; the change log records that, not what.

use crate::support::*;
use portal_core::Actor;
use portal_core::audit::AuditCategory;
use portal_core::mail::MailIntent;
use portal_core::service::{ContactError, Invite};
use portal_core::values::{FreeText, Language};

const N: &str = "100000001";
const TEXT: &str = "Bitte schalten Sie mir \"Meine Belege\" frei.\nDanke, Ida";

fn text() -> FreeText {
    FreeText::parse(TEXT).unwrap()
}

#[tokio::test]
async fn a_message_reaches_every_active_admin_and_the_log_keeps_no_text() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    w.admin("chef2@example.com", N, &op).await;
    w.admin("chef3@example.com", N, &op).await;
    let chef3 = w.user_id("chef3@example.com").await;
    w.portal
        .lock_user(&chef, &number(N), chef3, None)
        .await
        .unwrap();
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;

    let from = w.store.outbox().len();
    let sent = w.portal.contact_admins(&emma, &text()).await.unwrap();
    assert_eq!(sent, 2);
    assert_eq!(
        mails_since(&w, from),
        [
            ("chef2@example.com".to_owned(), "message_to_admins"),
            ("chef@example.com".to_owned(), "message_to_admins"),
        ],
        "the active admins, not the locked one, not the sender"
    );
    match &w.last_mail_to("chef@example.com").intent {
        MailIntent::MessageToAdmins {
            from_name,
            from_email,
            message,
            ..
        } => {
            assert_eq!(from_name, "Ida Eingeladen");
            assert_eq!(from_email, "emma@example.com");
            assert_eq!(message, TEXT);
        }
        other => panic!("got {other:?}"),
    }
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::MessageToAdmins);
    assert_eq!(last.record.subject, Some(id_of(&emma)));
    assert_eq!(last.record.actor.user, Some(id_of(&emma)));
    assert_eq!(last.record.details, "recipients=2");
    assert!(!last.record.details.contains("Belege"));
}

#[tokio::test]
async fn an_admin_writes_to_the_other_admins_but_not_to_himself() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let counts = w.counts();
    let err = w.portal.contact_admins(&chef, &text()).await.unwrap_err();
    assert!(
        matches!(err, ContactError::NoAdmin),
        "alone: nobody else: {err:?}"
    );
    assert_eq!(w.counts(), counts);
    w.admin("chef2@example.com", N, &op).await;
    let from = w.store.outbox().len();
    assert_eq!(w.portal.contact_admins(&chef, &text()).await.unwrap(), 1);
    assert_eq!(
        mails_since(&w, from),
        [("chef2@example.com".to_owned(), "message_to_admins")]
    );
}

#[tokio::test]
async fn without_an_admin_there_is_nobody_to_write_to() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    let chef = w.admin("chef@example.com", N, &op).await;
    // The only admin is locked: as good as none.
    w.portal
        .lock_user(&op, &number(N), id_of(&chef), None)
        .await
        .unwrap();
    let counts = w.counts();
    let err = w.portal.contact_admins(&anna, &text()).await.unwrap_err();
    assert!(matches!(err, ContactError::NoAdmin), "got {err:?}");
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_unlinked_user_cannot_write() {
    let w = World::new();
    let (solo, _) = w.registered("solo@example.com").await;
    let op = w.operator("op@vendor.example").await;
    let counts = w.counts();
    for (who, actor) in [("unlinked user", &solo), ("operator", &op)] {
        let err = w.portal.contact_admins(actor, &text()).await.unwrap_err();
        assert!(matches!(err, ContactError::NotLinked), "{who}: got {err:?}");
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_user_waiting_for_activation_may_write() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.admin("chef@example.com", N, &op).await;
    let bert = w.pending_member("bert@example.com", N).await;
    let from = w.store.outbox().len();
    let sent = w
        .portal
        .contact_admins(
            &bert,
            &FreeText::parse("Bitte aktivieren Sie mich.").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(sent, 1);
    assert_eq!(
        mails_since(&w, from),
        [("chef@example.com".to_owned(), "message_to_admins")]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::MessageToAdmins);
    assert_eq!(last.record.subject, Some(id_of(&bert)));
}

#[tokio::test]
async fn locked_and_invited_users_and_the_system_cannot_write() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    w.portal
        .lock_user(&chef, &number(N), id_of(&emma), None)
        .await
        .unwrap();
    let ida = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            Invite {
                email: email("ida@example.com"),
                first_name: name("Ida"),
                last_name: name("Neu"),
                language: Language::De,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    let counts = w.counts();
    for (who, actor) in [
        ("locked", emma),
        ("invited", Actor::user(ida.id())),
        ("system", Actor::System),
    ] {
        let err = w.portal.contact_admins(&actor, &text()).await.unwrap_err();
        assert!(matches!(err, ContactError::Forbidden), "{who}: got {err:?}");
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn the_sixteenth_message_of_a_day_is_refused_and_queues_nothing() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    for _ in 0..15 {
        assert_eq!(w.portal.contact_admins(&emma, &text()).await.unwrap(), 1);
    }
    let counts = w.counts();
    let log = w.audit_of(Some(c.id())).len();
    let midnight = (w.now() + chrono::TimeDelta::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let err = w.portal.contact_admins(&emma, &text()).await.unwrap_err();
    assert!(
        matches!(err, ContactError::Throttled { retry_at } if retry_at == midnight),
        "got {err:?}"
    );
    assert_eq!(w.counts(), counts, "nothing queued");
    assert_eq!(w.audit_of(Some(c.id())).len(), log, "nothing logged");
    w.clock.set(midnight);
    assert_eq!(w.portal.contact_admins(&emma, &text()).await.unwrap(), 1);
}

#[tokio::test]
async fn an_administrator_receives_at_most_his_daily_budget_from_all_users() {
    let mut config = portal_core::config::PortalConfig::default();
    config.mail_budgets.contact_per_recipient = 4;
    let w = World::with_config(config);
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let ida = w.invited(&chef, N, "ida@example.com", &[]).await;
    for who in [&emma, &ida, &emma, &ida] {
        w.portal.contact_admins(who, &text()).await.unwrap();
    }
    let counts = w.counts();
    let err = w.portal.contact_admins(&ida, &text()).await.unwrap_err();
    assert!(matches!(err, ContactError::Throttled { .. }), "got {err:?}");
    assert_eq!(w.counts(), counts);
}
