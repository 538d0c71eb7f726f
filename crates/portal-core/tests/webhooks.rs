//! Signed event webhooks in the core: operators (and the system) manage endpoints, every change
//! audited without the secret; a change-log entry queues one delivery per enabled endpoint
//! subscribed to its category, in the same commit, numbered in its customer's chain; the sender
//! gets the current URL and key, or a reason to dead-letter.

use crate::support::*;
use base64::Engine as _;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::outbox::Payload;
use portal_core::service::{NewWebhook, WebhookError, WebhookTargetError};
use portal_core::webhook::{WebhookDelivery, WebhookEndpoint};

fn new(url: &str, events: &[AuditCategory]) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        description: "CRM".into(),
        events: events.to_vec(),
    }
}

fn deliveries(w: &World) -> Vec<WebhookDelivery> {
    w.store
        .messages()
        .into_iter()
        .filter_map(|m| match m.payload {
            Payload::Webhook(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn webhook_audit(w: &World) -> Vec<portal_core::audit::AuditEntry> {
    w.audit_of(None)
        .into_iter()
        .filter(|e| e.record.category.key().starts_with("webhook."))
        .collect()
}

#[tokio::test]
async fn only_operators_and_the_system_manage_webhooks_and_every_change_is_audited_without_the_secret()
 {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer("100000001").await;
    let employee = w.member("e@example.com", "100000001").await;
    let refused = w
        .portal
        .create_webhook(
            &employee,
            new("https://a.example/h", &[AuditCategory::UserLocked]),
        )
        .await;
    assert!(
        matches!(refused, Err(WebhookError::Forbidden)),
        "{refused:?}"
    );
    assert!(matches!(
        w.portal.webhooks(&employee).await,
        Err(WebhookError::Forbidden)
    ));

    let created = w
        .portal
        .create_webhook(
            &op,
            new(
                "https://a.example/h?token=t0k3n",
                &[AuditCategory::UserLocked],
            ),
        )
        .await
        .unwrap();
    let secret = created.secret.expose().to_owned();
    assert!(secret.starts_with("whsec_"), "Standard Webhooks form");
    let id = created.endpoint.id;
    let rotated = w.portal.rotate_webhook_secret(&op, id).await.unwrap();
    assert_ne!(rotated.secret.expose(), secret, "a new secret");
    assert!(rotated.endpoint.secret_rotated_at.is_some());
    let disabled = w.portal.set_webhook_disabled(&op, id, true).await.unwrap();
    assert!(disabled.disabled);
    w.portal.set_webhook_disabled(&op, id, false).await.unwrap();
    assert!(matches!(
        w.portal.remove_webhook(&employee, id).await,
        Err(WebhookError::Forbidden)
    ));
    w.portal.remove_webhook(&Actor::System, id).await.unwrap();
    assert!(matches!(
        w.portal.webhook(&op, id).await,
        Err(WebhookError::NotFound)
    ));

    let audit = webhook_audit(&w);
    let categories: Vec<&str> = audit.iter().map(|e| e.record.category.key()).collect();
    assert_eq!(
        categories,
        [
            "webhook.created",
            "webhook.changed",
            "webhook.changed",
            "webhook.changed",
            "webhook.removed"
        ]
    );
    assert_eq!(audit[0].record.actor.kind, ActorKind::Operator);
    assert_eq!(audit[4].record.actor.kind, ActorKind::System);
    for e in &audit {
        let d = &e.record.details;
        assert!(!d.contains("whsec_") && !d.contains(&secret[6..]), "{d}");
        assert!(
            !d.contains("t0k3n"),
            "only the URL's origin is recorded: {d}"
        );
    }
    assert!(audit[0].record.details.contains("origin=https://a.example"));
    assert!(audit[1].record.details.contains("secret=rotated"));
}

#[tokio::test]
async fn invalid_endpoints_are_refused_and_change_nothing() {
    let w = World::new();
    for (url, events, field) in [
        ("ftp://a.example/h", vec![AuditCategory::UserLocked], "url"),
        (
            "https://a.example/h#frag",
            vec![AuditCategory::UserLocked],
            "url",
        ),
        (
            "https://a.example/h x",
            vec![AuditCategory::UserLocked],
            "url",
        ),
        ("https://", vec![AuditCategory::UserLocked], "url"),
        ("https://a.example/h", vec![], "events"),
    ] {
        let e = w
            .portal
            .create_webhook(&Actor::System, new(url, &events))
            .await
            .unwrap_err();
        assert!(
            matches!(e, WebhookError::Invalid { field: f, .. } if f == field),
            "{url}: {e:?}"
        );
    }
    let e = w
        .portal
        .create_webhook(
            &Actor::System,
            NewWebhook {
                description: "\u{202e}evil".into(),
                ..new("https://a.example/h", &[AuditCategory::UserLocked])
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            WebhookError::Invalid {
                field: "description",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(w.portal.webhooks(&Actor::System).await.unwrap().is_empty());
    assert!(webhook_audit(&w).is_empty(), "nothing audited");
}

#[tokio::test]
async fn without_a_sealing_key_no_endpoint_is_registered() {
    let w = World::without_mfa_key();
    let e = w
        .portal
        .create_webhook(
            &Actor::System,
            new("https://a.example/h", &[AuditCategory::UserLocked]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, WebhookError::NoSealingKey), "{e:?}");
}

#[tokio::test]
async fn a_change_queues_one_event_per_subscribed_enabled_endpoint_numbered_in_its_chain() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    let c = w.customer("100000001").await;
    // Emma joins before there is an administrator, so she is active at once.
    let emma = w.member("emma@example.com", "100000001").await;
    let chef = w.admin("chef@example.com", "100000001", &op).await;
    let locks = |url: &str| {
        new(
            url,
            &[AuditCategory::UserLocked, AuditCategory::UserUnlocked],
        )
    };
    let a = w
        .portal
        .create_webhook(&op, locks("https://a.example/h"))
        .await
        .unwrap();
    let b = w
        .portal
        .create_webhook(&op, locks("https://b.example/h"))
        .await
        .unwrap();
    let other = w
        .portal
        .create_webhook(
            &op,
            new("https://c.example/h", &[AuditCategory::PermissionsChanged]),
        )
        .await
        .unwrap();
    w.portal
        .set_webhook_disabled(&op, b.endpoint.id, true)
        .await
        .unwrap();
    assert!(
        deliveries(&w).is_empty(),
        "management events are global and not subscribed"
    );

    w.portal
        .lock_user(&chef, &number("100000001"), id_of(&emma), None)
        .await
        .unwrap();
    let queued = deliveries(&w);
    assert_eq!(queued.len(), 1, "only the enabled subscriber: {queued:?}");
    let d = &queued[0];
    assert_eq!(d.endpoint, a.endpoint.id);
    assert_ne!(d.endpoint, other.endpoint.id);
    let entry = w
        .audit_of(Some(c.id()))
        .into_iter()
        .find(|e| e.record.category == AuditCategory::UserLocked)
        .expect("the lock's entry");
    assert_eq!(d.event.event_type, "user.locked");
    assert_eq!(d.event.data.entry_id, entry.record.id);
    assert_eq!(d.event.data.seq, entry.seq, "numbered by the store");
    assert_eq!(d.event.data.previous_seq, None, "the endpoint's first");
    assert_eq!(d.event.data.customer_number.as_deref(), Some("100000001"));
    assert_eq!(d.event.data.subject, Some(id_of(&emma)));
    assert_eq!(d.event.timestamp, entry.record.at);

    w.portal
        .unlock_user(&chef, &number("100000001"), id_of(&emma))
        .await
        .unwrap();
    let queued = deliveries(&w);
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[1].event.event_type, "user.unlocked");
    assert_eq!(queued[1].event.data.previous_seq, Some(entry.seq));
    assert!(queued[1].event.data.seq > entry.seq);
}

#[tokio::test]
async fn the_sender_gets_the_current_key_or_a_reason_to_dead_letter() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer("100000001").await;
    // Emma joins before there is an administrator, so she is active at once.
    let emma = w.member("emma@example.com", "100000001").await;
    let chef = w.admin("chef@example.com", "100000001", &op).await;
    let created = w
        .portal
        .create_webhook(
            &op,
            new("https://a.example/h", &[AuditCategory::UserLocked]),
        )
        .await
        .unwrap();
    w.portal
        .lock_user(&chef, &number("100000001"), id_of(&emma), None)
        .await
        .unwrap();
    let d = deliveries(&w).pop().expect("queued");
    let key_of = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(&s["whsec_".len()..])
            .unwrap()
    };
    let target = w.portal.webhook_target(&d).await.unwrap();
    assert_eq!(target.url, "https://a.example/h");
    assert_eq!(
        target.key.as_slice(),
        key_of(created.secret.expose()).as_slice()
    );
    assert!(!format!("{target:?}").contains("whsec"), "redacted Debug");

    let rotated = w
        .portal
        .rotate_webhook_secret(&op, created.endpoint.id)
        .await
        .unwrap();
    let target = w.portal.webhook_target(&d).await.unwrap();
    assert_eq!(
        target.key.as_slice(),
        key_of(rotated.secret.expose()).as_slice(),
        "a queued event is signed with the secret of the moment"
    );

    w.portal
        .set_webhook_disabled(&op, created.endpoint.id, true)
        .await
        .unwrap();
    assert!(matches!(
        w.portal.webhook_target(&d).await,
        Err(WebhookTargetError::Disabled)
    ));
    w.portal
        .remove_webhook(&op, created.endpoint.id)
        .await
        .unwrap();
    assert!(matches!(
        w.portal.webhook_target(&d).await,
        Err(WebhookTargetError::Removed)
    ));
}

#[tokio::test]
async fn a_webhook_secret_is_sealed_at_rest_and_bound_to_its_endpoint() {
    let w = World::new();
    let created = w
        .portal
        .create_webhook(
            &Actor::System,
            new("https://a.example/h", &[AuditCategory::UserLocked]),
        )
        .await
        .unwrap();
    let stored: WebhookEndpoint = w
        .portal
        .webhook(&Actor::System, created.endpoint.id)
        .await
        .unwrap();
    let secret = created.secret.expose();
    assert!(stored.sealed_secret.starts_with("v2."), "sealed");
    assert!(!stored.sealed_secret.contains(&secret["whsec_".len()..]));
    // Copied to another endpoint's row, it does not open.
    let other = w
        .portal
        .create_webhook(
            &Actor::System,
            new("https://b.example/h", &[AuditCategory::UserLocked]),
        )
        .await
        .unwrap();
    let mut swapped = w
        .portal
        .webhook(&Actor::System, other.endpoint.id)
        .await
        .unwrap();
    swapped.sealed_secret = stored.sealed_secret.clone();
    w.force(vec![portal_core::ports::Write::UpdateWebhook(swapped)])
        .await;
    let d = WebhookDelivery {
        endpoint: other.endpoint.id,
        url: other.endpoint.url.clone(),
        event: portal_core::webhook::WebhookEvent::for_entry(&w.audit_of(None)[0].record, None),
    };
    assert!(matches!(
        w.portal.webhook_target(&d).await,
        Err(WebhookTargetError::Unopenable)
    ));
}

/// Two servers over one store, as two `serve` processes over one database: each keeps the
/// endpoints in memory, and a registration or a disabling on one is seen by the other's very
/// next change — its commit is refused for the outdated generation, and the deliveries are
/// computed again — so no event is queued for a stale set and none is missed.
#[tokio::test]
async fn a_server_keeping_the_endpoints_in_memory_sees_another_servers_changes_at_its_next_commit()
{
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer("100000001").await;
    let emma = w.member("emma@example.com", "100000001").await;
    let chef = w.admin("chef@example.com", "100000001", &op).await;
    let other = w.sibling(w.portal.config().clone(), true);
    // The other server commits once, so it keeps the (empty) set in memory.
    other
        .lock_user(&chef, &number("100000001"), id_of(&emma), None)
        .await
        .unwrap();
    other
        .unlock_user(&chef, &number("100000001"), id_of(&emma))
        .await
        .unwrap();
    assert!(deliveries(&w).is_empty(), "no endpoint yet");

    let a = w
        .portal
        .create_webhook(
            &op,
            new("https://a.example/h", &[AuditCategory::UserLocked]),
        )
        .await
        .unwrap();
    other
        .lock_user(&chef, &number("100000001"), id_of(&emma), None)
        .await
        .unwrap();
    let queued = deliveries(&w);
    assert_eq!(
        queued.iter().map(|d| d.endpoint).collect::<Vec<_>>(),
        [a.endpoint.id],
        "the endpoint registered on the first server receives the other's event"
    );

    w.portal
        .set_webhook_disabled(&op, a.endpoint.id, true)
        .await
        .unwrap();
    other
        .unlock_user(&chef, &number("100000001"), id_of(&emma))
        .await
        .unwrap();
    other
        .lock_user(&chef, &number("100000001"), id_of(&emma), None)
        .await
        .unwrap();
    assert_eq!(
        deliveries(&w).len(),
        1,
        "nothing more for the endpoint disabled on the first server"
    );
}
