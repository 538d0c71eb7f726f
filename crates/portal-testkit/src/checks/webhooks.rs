//! Webhook endpoints (versioned rows) and the numbering of webhook deliveries: each delivery
//! gets the `seq` of the entry it reports and, per endpoint and chain, the `seq` of the one
//! queued before it.

use super::{is_conflict, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::{AuditCategory, AuditRecord};
use portal_core::ids::{CustomerId, OutboxId};
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{Commit, StoreError, Write};
use portal_core::webhook::{WebhookDelivery, WebhookEndpoint, WebhookEvent};
use std::sync::Arc;
use uuid::Uuid;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_webhooks {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; webhooks;
            webhook_endpoints_round_trip_with_versions,
            webhook_deliveries_carry_their_chain_seq_and_the_previous_one_per_endpoint,
            a_failed_commit_moves_no_webhook_cursor,
            every_webhook_write_moves_the_generation_and_stale_commits_are_refused,
            several_deliveries_of_one_commit_chain_their_previous_seq_in_order,
        );
    };
}

fn endpoint(url: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        id: new_uuid(),
        url: url.into(),
        description: "CRM".into(),
        events: vec![AuditCategory::UserLocked, AuditCategory::UserUnlocked],
        sealed_secret: "v2.0123456789abcdef.c2VhbGVk".into(),
        disabled: false,
        created_at: t0(),
        secret_rotated_at: None,
        version: 1,
    }
}

fn delivery(endpoint: &WebhookEndpoint, record: &AuditRecord) -> OutboxMessage {
    OutboxMessage {
        id: OutboxId::from_uuid(new_uuid()),
        created_at: record.at,
        payload: Payload::Webhook(WebhookDelivery {
            endpoint: endpoint.id,
            url: endpoint.url.clone(),
            event: WebhookEvent::for_entry(record, None),
        }),
    }
}

/// One audit record plus a delivery of it to each endpoint.
fn event(customer: Option<CustomerId>, endpoints: &[&WebhookEndpoint]) -> (Commit, Vec<OutboxId>) {
    let record = audit(customer, None, AuditCategory::UserLocked, "", t0());
    let mut commit = Commit::new();
    let mut ids = Vec::new();
    for e in endpoints {
        let m = delivery(e, &record);
        ids.push(m.id);
        commit.message(m);
    }
    commit.audit(record);
    (commit, ids)
}

async fn numbers<S: Store>(store: &S, id: OutboxId) -> (u64, Option<u64>) {
    let entry = store
        .outbox_entry(id)
        .await
        .expect("read outbox")
        .expect("delivery queued");
    let Payload::Webhook(d) = entry.message.payload else {
        panic!(
            "a webhook delivery reads back as one: {:?}",
            entry.message.payload
        )
    };
    (d.event.data.seq, d.event.data.previous_seq)
}

/// Endpoints read back as written, update and delete only at their version, list oldest first.
pub async fn webhook_endpoints_round_trip_with_versions<S: Store>(store: Arc<S>) {
    let store = &*store;
    let a = endpoint("https://a.example/hook");
    let mut b = endpoint("https://b.example/hook?token=x");
    b.created_at = at(1);
    // The newer one is stored first: the list is ordered by registration time, not insertion.
    commit_ok(store, writes([Write::InsertWebhook(b.clone())])).await;
    commit_ok(store, writes([Write::InsertWebhook(a.clone())])).await;
    let read = store.webhook(a.id).await.unwrap().expect("stored");
    assert_eq!(read, a, "reads back as written, version 1");
    assert_eq!(
        store
            .webhooks()
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![a.id, b.id],
        "oldest first"
    );
    let e = commit_err(store, writes([Write::InsertWebhook(a.clone())])).await;
    assert!(is_conflict(&e), "a taken id: {e:?}");

    let mut changed = read.clone();
    changed.disabled = true;
    changed.secret_rotated_at = Some(at(60));
    commit_ok(store, writes([Write::UpdateWebhook(changed.clone())])).await;
    let after = store.webhook(a.id).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    assert!(after.disabled);
    assert_eq!(after.secret_rotated_at, Some(at(60)));
    let e = commit_err(store, writes([Write::UpdateWebhook(changed.clone())])).await;
    assert!(is_conflict(&e), "a stale version: {e:?}");
    let e = commit_err(store, writes([Write::DeleteWebhook(changed)])).await;
    assert!(is_conflict(&e), "a stale version cannot delete: {e:?}");
    commit_ok(store, writes([Write::DeleteWebhook(after)])).await;
    assert_eq!(store.webhook(a.id).await.unwrap(), None);
    assert_eq!(store.webhooks().await.unwrap().len(), 1);
    let unknown = Uuid::from_u128(u128::MAX);
    assert_eq!(store.webhook(unknown).await.unwrap(), None);
}

/// A delivery gets its entry's `seq`, and the `seq` of the last delivery queued for the same
/// endpoint in the same chain as `previous_seq`; removing an endpoint forgets its cursors.
pub async fn webhook_deliveries_carry_their_chain_seq_and_the_previous_one_per_endpoint<
    S: Store,
>(
    store: Arc<S>,
) {
    let store = &*store;
    let c = setup_customer(store, "123456789").await;
    let a = endpoint("https://a.example/hook");
    let b = endpoint("https://b.example/hook");
    commit_ok(
        store,
        writes([
            Write::InsertWebhook(a.clone()),
            Write::InsertWebhook(b.clone()),
        ]),
    )
    .await;
    // Entry 1 of the customer's chain is for `a` only, 2 for both, 3 for nobody, 4 for `b`.
    let (commit, one) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;
    let (commit, two) = event(Some(c.id()), &[&a, &b]);
    commit_ok(store, commit).await;
    let (commit, _) = event(Some(c.id()), &[]);
    commit_ok(store, commit).await;
    let (commit, four) = event(Some(c.id()), &[&b]);
    commit_ok(store, commit).await;
    // The global chain has its own numbers and cursors.
    let (commit, global) = event(None, &[&a]);
    commit_ok(store, commit).await;

    let seqs: Vec<u64> = store
        .audit_chain(Some(c.id()), 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "the chain as appended");
    assert_eq!(numbers(store, one[0]).await, (1, None), "a's first");
    assert_eq!(numbers(store, two[0]).await, (2, Some(1)), "a's second");
    assert_eq!(numbers(store, two[1]).await, (2, None), "b's first");
    assert_eq!(
        numbers(store, four[0]).await,
        (4, Some(2)),
        "b's second: its previous is 2, the gap (3) was never for b"
    );
    assert_eq!(numbers(store, global[0]).await, (1, None), "global chain");

    // A removed endpoint forgets its cursors: registered again under the same id, it starts over.
    let stored_a = store.webhook(a.id).await.unwrap().unwrap();
    commit_ok(store, writes([Write::DeleteWebhook(stored_a)])).await;
    commit_ok(store, writes([Write::InsertWebhook(a.clone())])).await;
    let (commit, again) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;
    assert_eq!(numbers(store, again[0]).await, (5, None));
}

/// A commit that fails moves neither the chain nor any cursor.
pub async fn a_failed_commit_moves_no_webhook_cursor<S: Store>(store: Arc<S>) {
    let store = &*store;
    let c = setup_customer(store, "123456789").await;
    let a = endpoint("https://a.example/hook");
    commit_ok(store, writes([Write::InsertWebhook(a.clone())])).await;
    let (commit, first) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;
    // A stale version fails this commit after its audit record and delivery were planned.
    let (mut commit, failed) = event(Some(c.id()), &[&a]);
    let mut stale = store.webhook(a.id).await.unwrap().unwrap();
    stale.version = 9;
    commit.write(Write::UpdateWebhook(stale));
    let e = commit_err(store, commit).await;
    assert!(is_conflict(&e), "{e:?}");
    assert_eq!(store.outbox_entry(failed[0]).await.unwrap(), None);
    let (commit, next) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;
    assert_eq!(numbers(store, first[0]).await, (1, None));
    assert_eq!(
        numbers(store, next[0]).await,
        (2, Some(1)),
        "neither the chain nor the cursor moved for the failed commit"
    );
}

/// The endpoints' generation moves by one with every write of an endpoint and with nothing else;
/// the snapshot reads it with the endpoints. A commit computed from another generation is
/// refused (`WebhooksChanged`) and leaves no trace, whether it appends to the change log or not;
/// a commit that writes an endpoint itself is checked against the generation before its writes.
pub async fn every_webhook_write_moves_the_generation_and_stale_commits_are_refused<S: Store>(
    store: Arc<S>,
) {
    let store = &*store;
    let c = setup_customer(store, "123456789").await;
    let start = store.webhook_snapshot().await.unwrap();
    assert!(start.endpoints.is_empty());
    let g = start.generation;

    // Registering, with the generation it was computed from: accepted, one more.
    let a = endpoint("https://a.example/hook");
    let mut register = writes([Write::InsertWebhook(a.clone())]);
    register.audit(audit(None, None, AuditCategory::WebhookCreated, "", t0()));
    register.webhooks_generation = Some(g);
    commit_ok(store, register).await;
    let after = store.webhook_snapshot().await.unwrap();
    assert_eq!(after.generation, g + 1, "an insert moves the generation");
    assert_eq!(
        after.endpoints.iter().map(|e| e.id).collect::<Vec<_>>(),
        [a.id]
    );

    // Anything else that is not an endpoint write leaves it.
    let (mut event_now, _) = event(Some(c.id()), &[&a]);
    event_now.webhooks_generation = Some(g + 1);
    commit_ok(store, event_now).await;
    assert_eq!(store.webhook_snapshot().await.unwrap().generation, g + 1);

    // A commit computed before the registration: refused, nothing of it stored.
    let (mut stale, _) = event(Some(c.id()), &[]);
    let record_id = stale.audit[0].id;
    stale.webhooks_generation = Some(g);
    let e = commit_err(store, stale).await;
    assert!(matches!(e, StoreError::WebhooksChanged), "{e:?}");
    let head = store
        .audit(&portal_core::ports::AuditQuery {
            customer: Some(c.id()),
            subject: None,
            categories: Vec::new(),
            search: None,
            search_categories: Vec::new(),
            from: None,
            until: None,
            before_seq: None,
            limit: 50,
        })
        .await
        .unwrap();
    assert!(
        head.iter().all(|entry| entry.record.id != record_id),
        "the refused commit's entry is not in the change log"
    );
    // Without a change-log entry too.
    let mut quiet = Commit::new();
    quiet.write(Write::InsertWebhook(endpoint("https://q.example/hook")));
    quiet.webhooks_generation = Some(g);
    let e = commit_err(store, quiet).await;
    assert!(matches!(e, StoreError::WebhooksChanged), "{e:?}");
    assert_eq!(
        store.webhook_snapshot().await.unwrap().endpoints.len(),
        1,
        "the refused insert left no endpoint"
    );

    // Updates and deletes move it too; without a generation a commit is not checked.
    let mut disabled = store.webhook(a.id).await.unwrap().unwrap();
    disabled.disabled = true;
    commit_ok(store, writes([Write::UpdateWebhook(disabled)])).await;
    let read = store.webhook(a.id).await.unwrap().unwrap();
    commit_ok(store, writes([Write::DeleteWebhook(read)])).await;
    let end = store.webhook_snapshot().await.unwrap();
    assert_eq!(end.generation, g + 3, "update and delete: one each");
    assert!(end.endpoints.is_empty());
}

/// One commit with several entries for the same endpoint, in two chains: each delivery's
/// `previous_seq` is the one before it in the same chain, also within the commit, and the next
/// commit continues from the last.
pub async fn several_deliveries_of_one_commit_chain_their_previous_seq_in_order<S: Store>(
    store: Arc<S>,
) {
    let store = &*store;
    let c = setup_customer(store, "123456788").await;
    let a = endpoint("https://a.example/hook");
    commit_ok(store, writes([Write::InsertWebhook(a.clone())])).await;
    let (commit, first) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;

    let mut commit = Commit::new();
    let mut ids = Vec::new();
    for customer in [Some(c.id()), None, Some(c.id()), Some(c.id())] {
        let record = audit(customer, None, AuditCategory::UserLocked, "", t0());
        let m = delivery(&a, &record);
        ids.push(m.id);
        commit.message(m);
        commit.audit(record);
    }
    commit_ok(store, commit).await;
    let (commit, next) = event(Some(c.id()), &[&a]);
    commit_ok(store, commit).await;

    assert_eq!(numbers(store, first[0]).await, (1, None));
    assert_eq!(numbers(store, ids[0]).await, (2, Some(1)));
    assert_eq!(
        numbers(store, ids[1]).await,
        (1, None),
        "the global chain's first"
    );
    assert_eq!(
        numbers(store, ids[2]).await,
        (3, Some(2)),
        "within the commit"
    );
    assert_eq!(numbers(store, ids[3]).await, (4, Some(3)));
    assert_eq!(
        numbers(store, next[0]).await,
        (5, Some(4)),
        "the next commit continues"
    );
}
