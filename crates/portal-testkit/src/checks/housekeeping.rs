//! Housekeeping: purges remove exactly the dead rows, in batches, and keep open mail.

use super::{queue, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::ids::OutboxId;
use portal_core::ports::Write;
use portal_core::token::TokenPurpose;
use std::sync::Arc;
use uuid::Uuid;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_housekeeping {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; housekeeping;
            purging_removes_exactly_the_rows_dead_at_the_cutoff,
            purges_go_in_batches,
            purging_sent_mail_keeps_open_and_dead_mail,
        );
    };
}

/// Purging removes exactly the rows dead at the cut-off (the cut-off itself included) and
/// nothing else: sessions by idle expiry, challenges by start, link tokens by expiry, counters
/// by their last event. A purged session is gone from every query; a second purge finds nothing.
pub async fn purging_removes_exactly_the_rows_dead_at_the_cutoff<S: Store>(store: Arc<S>) {
    use portal_core::ports::Expired;
    let c = setup_customer(&*store, "100000091").await;
    let u = employee(c.id(), "purge@example.com", "Paul", "Purge");
    let p = pending_user("pending.purge@example.com", "Pia", "Pending");
    let (old_hash, new_hash) = (token_hash(), token_hash());
    // Idle expiries t0 + 1 h and t0 + 3 h.
    let old = session(u.id(), old_hash, t0());
    let new = session(u.id(), new_hash, at(7_200));
    let old_challenge = challenge(p.id(), "pending.purge@example.com", t0());
    let new_challenge = challenge(p.id(), "pending.purge@example.com", at(120));
    let (old_link, new_link) = (token_hash(), token_hash());
    let old_token = action_token(u.id(), TokenPurpose::PasswordReset, old_link); // ends at 3600
    let new_token = portal_core::token::ActionToken::issue(
        portal_core::ids::ActionTokenId::from_uuid(new_uuid()),
        new_link,
        TokenPurpose::Invitation,
        u.id(),
        t0(),
        at(7_200),
    );
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertUser(p.clone()),
            Write::InsertSession(old.clone()),
            Write::InsertSession(new.clone()),
            Write::InsertChallenge(old_challenge.clone()),
            Write::InsertChallenge(new_challenge.clone()),
            Write::InsertActionToken(old_token),
            Write::InsertActionToken(new_token),
        ]),
    )
    .await;
    let window = chrono::TimeDelta::hours(24);
    store.bump_counter("old", t0(), window).await.unwrap();
    store.bump_counter("new", at(1), window).await.unwrap();

    let us = chrono::TimeDelta::microseconds(1);
    let hour = at(3_600);
    // Just before the cut-off nothing is dead yet.
    for (kind, cutoff) in [
        (Expired::Sessions, hour - us),
        (Expired::Challenges, t0() - us),
        (Expired::ActionTokens, hour - us),
        (Expired::Counters, t0() - us),
    ] {
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            0,
            "{kind:?} before its cut-off"
        );
    }
    for (kind, cutoff) in [
        (Expired::Sessions, hour),
        (Expired::Challenges, t0()),
        (Expired::ActionTokens, hour),
        (Expired::Counters, t0()),
    ] {
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            1,
            "{kind:?} at its cut-off"
        );
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            0,
            "{kind:?} purged once"
        );
    }
    let left = session_ids(&*store, u.id()).await;
    assert_eq!(left, [new.id()]);
    assert!(
        store
            .session_context(&old_hash, t0())
            .await
            .unwrap()
            .is_none(),
        "a purged session is gone from the lookup by hash"
    );
    assert!(
        store
            .session_context(&new_hash, at(7_201))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .challenge_by_ticket(&old_challenge.record().ticket_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .challenge_by_ticket(&new_challenge.record().ticket_hash)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .action_token(&old_link, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .action_token(&new_link, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.counter("old").await.unwrap().is_none());
    assert_eq!(
        store.counter("new").await.unwrap().map(|c| c.count),
        Some(1)
    );
    // A purged counter starts again at 1.
    assert_eq!(
        store
            .bump_counter("old", at(2), window)
            .await
            .unwrap()
            .count,
        1
    );
    // Users, customers and the audit log are never touched.
    assert!(store.user(u.id()).await.unwrap().is_some());
    assert!(store.user(p.id()).await.unwrap().is_some());
}

/// Purges work in batches of at most `limit` rows until none is left; a limit of 0 deletes
/// nothing.
pub async fn purges_go_in_batches<S: Store>(store: Arc<S>) {
    use portal_core::ports::Expired;
    let c = setup_customer(&*store, "100000092").await;
    let u = employee(c.id(), "batch@example.com", "Bea", "Batch");
    let mut ws = vec![Write::InsertUser(u.clone())];
    for i in 0..5 {
        ws.push(Write::InsertSession(session(u.id(), token_hash(), at(i))));
    }
    commit_ok(&*store, writes(ws)).await;
    let cutoff = at(86_400);
    assert_eq!(
        store
            .purge_expired(Expired::Sessions, cutoff, 0)
            .await
            .unwrap(),
        0
    );
    let mut batches = Vec::new();
    loop {
        let n = store
            .purge_expired(Expired::Sessions, cutoff, 2)
            .await
            .unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1]);
    assert!(store.sessions_of_user(u.id()).await.unwrap().is_empty());
}

/// Purging delivered mail removes only mails sent at or before the cut-off; pending, claimed
/// and dead mails stay, whatever their age.
pub async fn purging_sent_mail_keeps_open_and_dead_mail<S: Store>(store: Arc<S>) {
    let early = code_mail("early@example.com", "111111", at(1));
    let late = code_mail("late@example.com", "222222", at(2));
    let dead = code_mail("dead@example.com", "333333", at(3));
    let claimed = code_mail("claimed@example.com", "444444", at(4));
    let pending = code_mail("pending@example.com", "555555", at(5));
    queue(
        &*store,
        &[
            early.clone(),
            late.clone(),
            dead.clone(),
            claimed.clone(),
            pending.clone(),
        ],
    )
    .await;
    let c = Uuid::from_u128(91);
    assert_eq!(
        store
            .claim_outbox("mail", c, at(10), at(70), 4)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(store.mark_sent(early.id, c, at(20)).await.unwrap());
    assert!(store.mark_sent(late.id, c, at(40)).await.unwrap());
    assert!(store.mark_failed(dead.id, c, "550", None).await.unwrap());

    assert_eq!(
        store
            .purge_sent(at(20) - chrono::TimeDelta::microseconds(1), 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.purge_sent(at(20), 10).await.unwrap(), 1);
    assert!(store.outbox_entry(early.id).await.unwrap().is_none());
    assert!(store.outbox_entry(late.id).await.unwrap().is_some());
    assert_eq!(store.purge_sent(at(1_000_000), 0).await.unwrap(), 0);
    assert_eq!(store.purge_sent(at(1_000_000), 10).await.unwrap(), 1);
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (1, 1, 0, 1)
    );
    assert_eq!(
        store
            .dead_letters(None, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id())
            .collect::<Vec<_>>(),
        [dead.id]
    );
    let due = store
        .claim_outbox("mail", Uuid::from_u128(92), at(100), at(160), 10)
        .await
        .unwrap();
    let mut ids: Vec<OutboxId> = due.iter().map(|e| e.id()).collect();
    ids.sort();
    let mut want = vec![claimed.id, pending.id];
    want.sort();
    assert_eq!(
        ids, want,
        "the claimed (lease over) and pending mails are still queued"
    );
}
