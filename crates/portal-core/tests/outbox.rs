//! The operator's outbox use cases: dead letters of every kind, and the audited re-queue (R21,
//! R20): operators and the system only, a malformed kind refused, a live message refused with
//! nothing written.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::ids::OutboxId;
use portal_core::mail::OutboxStatus;
use portal_core::ports::{Clock, OutboxStore};
use portal_core::service::OutboxError;

/// Kills the oldest due mail and returns its id.
async fn dead_mail(w: &World) -> OutboxId {
    let now = w.clock.now();
    let claim = uuid::Uuid::from_u128(7);
    let got = w
        .store
        .claim_outbox("mail", claim, now, now + TimeDelta::minutes(5), 1)
        .await
        .unwrap();
    let id = got[0].id();
    assert!(
        w.store
            .mark_failed(id, claim, "550 refused", None)
            .await
            .unwrap()
    );
    id
}

fn requeued(w: &World) -> Vec<portal_core::audit::AuditEntry> {
    w.audit_of(None)
        .into_iter()
        .filter(|e| e.record.category == AuditCategory::OutboxRequeued)
        .collect()
}

#[tokio::test]
async fn only_operators_and_the_system_see_and_requeue_dead_letters() {
    let w = World::new();
    let op = w.operator("op@example.com").await;
    w.customer("100000001").await;
    let employee = w.member("e@example.com", "100000001").await;
    let id = dead_mail(&w).await;

    assert!(matches!(
        w.portal.dead_letters(&employee, &*w.store, None, 10).await,
        Err(OutboxError::Forbidden)
    ));
    assert!(matches!(
        w.portal.requeue_outbox(&employee, &*w.store, id).await,
        Err(OutboxError::Forbidden)
    ));
    assert!(requeued(&w).is_empty(), "a refused requeue writes nothing");
    assert_eq!(
        w.store.outbox_entry(id).await.unwrap().unwrap().status,
        OutboxStatus::Dead
    );
    assert!(matches!(
        w.portal
            .dead_letters(&op, &*w.store, Some("Mail"), 10)
            .await,
        Err(OutboxError::InvalidKind)
    ));
    let listed = w
        .portal
        .dead_letters(&op, &*w.store, Some("mail"), 10)
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|e| e.id()).collect::<Vec<_>>(), [id]);

    // The system (a maintenance job) may re-queue too; the log names it.
    let before = w
        .portal
        .requeue_outbox(&Actor::System, &*w.store, id)
        .await
        .unwrap();
    assert_eq!(before.status, OutboxStatus::Dead, "the entry as it was");
    let e = w.store.outbox_entry(id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(e.next_attempt_at, w.clock.now());
    let log = requeued(&w);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].record.actor.kind, ActorKind::System);
    assert!(
        log[0]
            .record
            .details
            .starts_with(&format!("outbox={id} kind=mail summary="))
    );
    assert!(matches!(
        w.portal.requeue_outbox(&op, &*w.store, id).await,
        Err(OutboxError::NotFound)
    ));
    assert!(matches!(
        w.portal
            .requeue_outbox(
                &op,
                &*w.store,
                OutboxId::from_uuid(uuid::Uuid::from_u128(1))
            )
            .await,
        Err(OutboxError::NotFound)
    ));
    assert_eq!(requeued(&w).len(), 1, "nothing audited for a refusal");
}
