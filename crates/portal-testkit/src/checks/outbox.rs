//! Outbox: queueing, claiming with leases per kind, acknowledgements, retries, dead letters,
//! re-queueing as an audited commit write, and messages of kinds this build does not know.

use super::{is_conflict, queue};
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::AuditCategory;
use portal_core::ids::OutboxId;
use portal_core::mail::OutboxStatus;
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{Commit, Write};
use portal_core::secret::SecretString;
use std::sync::Arc;
use uuid::Uuid;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_outbox {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; outbox;
            outbox_mails_round_trip_and_start_pending,
            outbox_claim_takes_due_mails_oldest_first,
            outbox_ack_purges_the_secret_and_counts,
            outbox_retry_then_dead_letter_then_requeue,
            outbox_expired_lease_is_reclaimed_and_stale_acks_ignored,
            outbox_release_gives_the_mail_back_uncounted,
            outbox_mailed_secret_reads_the_newest_and_leaves_the_queue_as_it_was,
            outbox_codes_seed_a_customer_with_admin_and_employees,
            outbox_claims_take_only_their_kind,
            outbox_unknown_kind_is_kept_as_stored_and_dead_letters_filter_by_kind,
            outbox_requeue_of_a_live_message_fails_the_whole_commit,
            outbox_reset_request_keeps_its_address_only_until_processed,
            outbox_phone_code_keeps_its_code_only_until_sent,
        );
    };
}

/// A queued mail reads back exactly, pending, due at its creation, with no attempts.
pub async fn outbox_mails_round_trip_and_start_pending<S: Store>(store: Arc<S>) {
    let m1 = code_mail("a@example.com", "111111", at(1));
    let mut m2 = code_mail("b@example.com", "222222", at(2));
    m2.intent = portal_core::mail::MailIntent::AdminApprovalNeeded {
        requester_name: "Anna Ä".into(),
        customer_number: "D100000001".into(),
        customer_name: "Müller GmbH".into(),
        request_id: portal_core::ids::AdminRequestId::from_uuid(new_uuid()),
    };
    queue(&*store, &[m1.clone(), m2.clone()]).await;
    for m in [&m1, &m2] {
        let e = store.outbox_entry(m.id).await.unwrap().expect("queued");
        assert_eq!(e.mail().as_ref(), Some(m), "mail round trip");
        assert_eq!(e.status, OutboxStatus::Pending);
        assert_eq!(e.attempts, 0);
        assert_eq!(e.next_attempt_at, m.created_at);
        assert!(e.claim.is_none() && e.claimed_until.is_none() && e.sent_at.is_none());
    }
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (2, 0, 0, 0)
    );
    assert!(
        store
            .outbox_entry(OutboxId::from_uuid(new_uuid()))
            .await
            .unwrap()
            .is_none()
    );
}

/// A claim takes due mails in queue order up to its limit; mails due later, and mails under
/// another claim's lease, are left alone.
pub async fn outbox_claim_takes_due_mails_oldest_first<S: Store>(store: Arc<S>) {
    let mails: Vec<_> = (0..5)
        .map(|i| code_mail(&format!("m{i}@example.com"), "000000", at(i)))
        .collect();
    for m in &mails {
        queue(&*store, std::slice::from_ref(m)).await;
    }
    let future = code_mail("later@example.com", "999999", at(10_000));
    queue(&*store, std::slice::from_ref(&future)).await;

    let c1 = Uuid::from_u128(1);
    let got = store
        .claim_outbox("mail", c1, at(100), at(400), 2)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [mails[0].id, mails[1].id],
        "oldest first"
    );
    for e in &got {
        assert_eq!(e.status, OutboxStatus::Claimed);
        assert_eq!(e.claim, Some(c1));
        assert_eq!(e.claimed_until, Some(at(400)));
        assert_eq!(e.attempts, 1);
    }
    let stored = store.outbox_entry(mails[0].id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.claim, stored.attempts),
        (OutboxStatus::Claimed, Some(c1), 1)
    );
    let c2 = Uuid::from_u128(2);
    let rest = store
        .claim_outbox("mail", c2, at(100), at(400), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [mails[2].id, mails[3].id, mails[4].id],
        "claimed and future mails are skipped"
    );
    assert!(
        store
            .claim_outbox("mail", c2, at(100), at(400), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_outbox("mail", c2, at(10_000), at(10_300), 0)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.claimed), (1, 5));
}

/// Acknowledging a delivery marks it sent and purges its secret; a second ack is refused.
pub async fn outbox_ack_purges_the_secret_and_counts<S: Store>(store: Arc<S>) {
    let m = code_mail("ack@example.com", "424242", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let claim = Uuid::from_u128(7);
    let got = store
        .claim_outbox("mail", claim, at(10), at(70), 5)
        .await
        .unwrap();
    assert_eq!(
        got[0]
            .mail()
            .unwrap()
            .intent
            .secret()
            .cloned()
            .as_ref()
            .map(SecretString::expose),
        Some("424242"),
        "the dispatcher gets the secret"
    );
    assert!(store.mark_sent(m.id, claim, at(20)).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Sent);
    assert_eq!(e.sent_at, Some(at(20)));
    assert!(e.claim.is_none() && e.claimed_until.is_none());
    assert_eq!(
        e.mail()
            .unwrap()
            .intent
            .secret()
            .cloned()
            .as_ref()
            .map(SecretString::expose),
        Some(""),
        "secret purged after delivery"
    );
    assert!(
        !store.mark_sent(m.id, claim, at(21)).await.unwrap(),
        "acknowledged once"
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.claimed, stats.sent), (0, 0, 1));
    assert!(
        store
            .claim_outbox("mail", claim, at(1000), at(1060), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A failed attempt waits until its retry time; without one the mail is dead, listed as a dead
/// letter, and can be re-queued (a commit write, with its audit record) with its attempts reset.
pub async fn outbox_retry_then_dead_letter_then_requeue<S: Store>(store: Arc<S>) {
    let m = code_mail("retry@example.com", "131313", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let c1 = Uuid::from_u128(11);
    assert_eq!(
        store
            .claim_outbox("mail", c1, at(10), at(70), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let long_error = "4".repeat(600);
    assert!(
        store
            .mark_failed(m.id, c1, &long_error, Some(at(500)))
            .await
            .unwrap()
    );
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.next_attempt_at, e.claim),
        (OutboxStatus::Pending, at(500), None)
    );
    assert_eq!(
        e.last_error.as_deref().map(str::len),
        Some(500),
        "errors are cut"
    );
    assert!(
        store
            .claim_outbox("mail", c1, at(499), at(560), 1)
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let c2 = Uuid::from_u128(12);
    let again = store
        .claim_outbox("mail", c2, at(500), at(560), 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(
        store
            .mark_failed(m.id, c2, "550 no such user", None)
            .await
            .unwrap()
    );
    let dead = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.iter().map(|e| e.id()).collect::<Vec<_>>(), [m.id]);
    assert_eq!(dead[0].status, OutboxStatus::Dead);
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert!(
        store
            .claim_outbox("mail", c2, at(100_000), at(100_060), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.outbox_stats().await.unwrap().dead, 1);

    let mut commit = Commit::new();
    commit.write(Write::RequeueOutbox {
        id: m.id,
        at: at(600),
    });
    commit.audit(audit(
        None,
        None,
        AuditCategory::OutboxRequeued,
        "requeued",
        at(600),
    ));
    commit_ok(&*store, commit).await;
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.attempts, e.next_attempt_at),
        (OutboxStatus::Pending, 0, at(600))
    );
    assert_eq!(
        e.last_error.as_deref(),
        Some("550 no such user"),
        "the last error stays for the record"
    );
    let log = store.audit_chain(None, 0, 10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.record.category).collect::<Vec<_>>(),
        [AuditCategory::OutboxRequeued],
        "audited in the same commit"
    );
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .claim_outbox("mail", c2, at(600), at(660), 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A claim whose lease ended can be taken over; the old claim's acknowledgements are ignored.
pub async fn outbox_expired_lease_is_reclaimed_and_stale_acks_ignored<S: Store>(store: Arc<S>) {
    let m = code_mail("lease@example.com", "777777", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let old = Uuid::from_u128(21);
    let new = Uuid::from_u128(22);
    assert_eq!(
        store
            .claim_outbox("mail", old, at(100), at(160), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_outbox("mail", new, at(159), at(219), 1)
            .await
            .unwrap()
            .is_empty(),
        "lease still running"
    );
    let taken = store
        .claim_outbox("mail", new, at(160), at(220), 1)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "lease ended at its instant");
    assert_eq!((taken[0].claim, taken[0].attempts), (Some(new), 2));
    assert!(
        !store.mark_sent(m.id, old, at(161)).await.unwrap(),
        "stale ack ignored"
    );
    assert!(
        !store.mark_failed(m.id, old, "x", None).await.unwrap(),
        "stale failure ignored"
    );
    assert!(
        !store.release(m.id, old).await.unwrap(),
        "stale release ignored"
    );
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!((e.status, e.claim), (OutboxStatus::Claimed, Some(new)));
    assert!(store.mark_sent(m.id, new, at(170)).await.unwrap());
}

/// Releasing a claim puts the mail back, due at once, without counting the attempt.
pub async fn outbox_release_gives_the_mail_back_uncounted<S: Store>(store: Arc<S>) {
    let m = code_mail("release@example.com", "858585", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let c1 = Uuid::from_u128(31);
    assert_eq!(
        store
            .claim_outbox("mail", c1, at(10), at(70), 1)
            .await
            .unwrap()[0]
            .attempts,
        1
    );
    assert!(store.release(m.id, c1).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.attempts, e.claim),
        (OutboxStatus::Pending, 0, None)
    );
    let c2 = Uuid::from_u128(32);
    let again = store
        .claim_outbox("mail", c2, at(10), at(70), 1)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    assert!(
        !store.release(m.id, c1).await.unwrap(),
        "not the current claim"
    );
}

/// [`mailed_secret`](crate::seed::mailed_secret) finds the newest secret mailed to an address
/// (whatever the case of the address), `None` for another address, and leaves every mail
/// pending with its attempts as they were.
pub async fn outbox_mailed_secret_reads_the_newest_and_leaves_the_queue_as_it_was<S: Store>(
    store: Arc<S>,
) {
    let old = code_mail("reader@example.com", "111111", at(1));
    let new = code_mail("reader@example.com", "222222", at(2));
    let other = code_mail("other@example.com", "333333", at(3));
    queue(&*store, &[old.clone(), new.clone(), other.clone()]).await;
    let read = |to: &'static str| {
        let store = store.clone();
        async move { crate::seed::mailed_secret(&*store, to).await.unwrap() }
    };
    assert_eq!(read("Reader@Example.com").await.as_deref(), Some("222222"));
    assert_eq!(read("other@example.com").await.as_deref(), Some("333333"));
    assert_eq!(read("nobody@example.com").await, None);
    for m in [&old, &new, &other] {
        let e = store.outbox_entry(m.id).await.unwrap().unwrap();
        assert_eq!(
            (e.status, e.attempts, e.claim),
            (OutboxStatus::Pending, 0, None),
            "left as it was"
        );
    }
    let claimed = store
        .claim_outbox("mail", Uuid::from_u128(41), at(10), at(70), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3, "a dispatcher still gets every mail");
}

/// [`customer_with_admin`](crate::seed::customer_with_admin) seeds through the use cases on
/// this store, reading the mailed codes from its outbox: an active administrator, active
/// employees holding the default joiner permission `support_requests`, sessions that
/// authenticate.
pub async fn outbox_codes_seed_a_customer_with_admin_and_employees<S: Store>(store: Arc<S>) {
    use portal_core::user::{AccountState, Role};
    let portal = portal_core::Portal::new(
        portal_core::Deps {
            hasher: Arc::new(portal_core::testing::fast_hasher(5)),
            ..portal_core::Deps::production(store.clone())
        },
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let seeded = crate::seed::customer_with_admin(
        &portal,
        &*store,
        "D123456789",
        "anna@seed.example",
        &["ben@seed.example", "cem@seed.example"],
    )
    .await
    .unwrap();
    assert_eq!(seeded.customer.to_string(), "123456789");
    let admin = store.user(seeded.admin).await.unwrap().unwrap();
    assert_eq!(
        (admin.role(), admin.state()),
        (Role::Administrator, AccountState::Active)
    );
    assert_eq!(seeded.employees.len(), 2);
    for id in &seeded.employees {
        let u = store.user(*id).await.unwrap().unwrap();
        assert_eq!(
            (u.role(), u.state()),
            (Role::Employee, AccountState::Active)
        );
        let keys: Vec<&str> = u.permissions().iter().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["support_requests"], "the default joiner permission");
    }
    for email in ["anna@seed.example", "ben@seed.example"] {
        let token = crate::seed::session(&portal, email).await.unwrap();
        let principal = portal.authenticate(&token).await.unwrap();
        assert_eq!(principal.user().email().as_str(), email);
    }
    assert!(
        crate::seed::session(&portal, "nobody@seed.example")
            .await
            .is_err()
    );
    let again =
        crate::seed::customer_with_admin(&portal, &*store, "123456789", "x@seed.example", &[]);
    assert!(again.await.is_err(), "a number is seeded once");
}

/// A message of another kind, as a newer process (or a later kind) writes it.
fn other_kind(kind: &str, created: chrono::DateTime<chrono::Utc>) -> OutboxMessage {
    OutboxMessage {
        id: OutboxId::from_uuid(new_uuid()),
        created_at: created,
        payload: Payload::Unknown {
            kind: kind.to_owned(),
            recipient: "https://rp.example.com/backchannel".to_owned(),
            json: r#"{"logout_token":"eyJ…","n":[1,2,3],"ü":"ß"}"#.to_owned(),
        },
    }
}

async fn queue_messages<S: Store>(store: &S, messages: &[OutboxMessage]) {
    let mut commit = Commit::new();
    for m in messages {
        commit.message(m.clone());
    }
    commit_ok(store, commit).await;
}

/// A claim names its kind and takes due messages of that kind only: a dispatcher of one kind
/// never sees (or delays) another kind's messages.
pub async fn outbox_claims_take_only_their_kind<S: Store>(store: Arc<S>) {
    let future = other_kind("future_kind", at(1));
    let mail = code_mail("kind@example.com", "565656", at(2));
    let later = other_kind("future_kind", at(3));
    queue_messages(
        &*store,
        &[future.clone(), mail.clone().into(), later.clone()],
    )
    .await;
    let mails = store
        .claim_outbox("mail", Uuid::from_u128(41), at(10), at(70), 10)
        .await
        .unwrap();
    assert_eq!(
        mails.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [mail.id],
        "only mail, though older messages of another kind are due"
    );
    let others = store
        .claim_outbox("future_kind", Uuid::from_u128(42), at(10), at(70), 10)
        .await
        .unwrap();
    assert_eq!(
        others.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [future.id, later.id],
        "its own kind, oldest first"
    );
    assert!(
        store
            .claim_outbox("webhook", Uuid::from_u128(43), at(10), at(70), 10)
            .await
            .unwrap()
            .is_empty(),
        "a kind with nothing queued claims nothing"
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed),
        (0, 3),
        "stats count every kind"
    );
}

/// A message of a kind this build cannot read reads back as stored (kind, recipient and JSON
/// byte for byte); it is dead-lettered, listed (with `kind` filtering the list) and re-queued
/// like any other, and no mail claim takes it.
pub async fn outbox_unknown_kind_is_kept_as_stored_and_dead_letters_filter_by_kind<S: Store>(
    store: Arc<S>,
) {
    let future = other_kind("backchannel_logout_v2", at(1));
    let mail = code_mail("dead@example.com", "676767", at(2));
    queue_messages(&*store, &[future.clone(), mail.clone().into()]).await;
    let e = store.outbox_entry(future.id).await.unwrap().unwrap();
    assert_eq!(e.message, future, "kept as stored");
    assert_eq!(e.message.payload.kind(), None);

    for (kind, id, claim) in [
        ("backchannel_logout_v2", future.id, 51),
        ("mail", mail.id, 52),
    ] {
        let c = Uuid::from_u128(claim);
        let got = store
            .claim_outbox(kind, c, at(10), at(70), 10)
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|e| e.id()).collect::<Vec<_>>(),
            [id],
            "{kind}"
        );
        assert!(store.mark_failed(id, c, "410 gone", None).await.unwrap());
    }
    let all = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [mail.id, future.id],
        "every kind, newest first"
    );
    let only = store
        .dead_letters(Some("backchannel_logout_v2"), 10)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].message, future, "listed as stored");
    assert_eq!(
        only[0].message.payload.recipient(),
        "https://rp.example.com/backchannel"
    );
    let mails = store.dead_letters(Some("mail"), 10).await.unwrap();
    assert_eq!(mails.iter().map(|e| e.id()).collect::<Vec<_>>(), [mail.id]);
    assert!(
        store
            .dead_letters(Some("webhook"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut commit = Commit::new();
    commit.write(Write::RequeueOutbox {
        id: future.id,
        at: at(100),
    });
    commit.audit(audit(
        None,
        None,
        AuditCategory::OutboxRequeued,
        "requeued",
        at(100),
    ));
    commit_ok(&*store, commit).await;
    let e = store.outbox_entry(future.id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(e.message, future, "still as stored");
    assert!(
        store
            .claim_outbox("mail", Uuid::from_u128(53), at(200), at(260), 10)
            .await
            .unwrap()
            .is_empty(),
        "a mail claim never takes it"
    );
}

/// Re-queueing a message that is not dead (pending, sent, or unknown) fails the whole commit
/// with a conflict: nothing else of it is written, not its audit record, not its mail.
pub async fn outbox_requeue_of_a_live_message_fails_the_whole_commit<S: Store>(store: Arc<S>) {
    let m = code_mail("live@example.com", "898989", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    for id in [m.id, OutboxId::from_uuid(new_uuid())] {
        let extra = code_mail("extra@example.com", "000000", at(2));
        let mut commit = Commit::new();
        commit.write(Write::RequeueOutbox { id, at: at(50) });
        commit.audit(audit(
            None,
            None,
            AuditCategory::OutboxRequeued,
            "requeued",
            at(50),
        ));
        commit.mail(extra.clone());
        let err = commit_err(&*store, commit).await;
        assert!(is_conflict(&err), "{err:?}");
        assert!(
            store.outbox_entry(extra.id).await.unwrap().is_none(),
            "no mail"
        );
    }
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "no audit entry"
    );
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.next_attempt_at),
        (OutboxStatus::Pending, at(1))
    );
}

/// A password-reset request (the core's own kind) reads back exactly, is claimed only by its
/// kind, never shows its address as the recipient, and loses the address once processed.
pub async fn outbox_reset_request_keeps_its_address_only_until_processed<S: Store>(store: Arc<S>) {
    use portal_core::outbox::{OutboxKind, PasswordResetRequest};
    let m = OutboxMessage {
        id: OutboxId::from_uuid(Uuid::from_u128(0x5e5e7)),
        created_at: at(1),
        payload: Payload::PasswordResetRequest(PasswordResetRequest {
            email: Some(portal_core::testing::email("reset@example.com")),
        }),
    };
    queue_messages(&*store, std::slice::from_ref(&m)).await;
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.message, m);
    assert!(!e.message.payload.recipient().contains("reset@"));
    let claim = Uuid::from_u128(8);
    assert!(
        store
            .claim_outbox("mail", claim, at(10), at(70), 5)
            .await
            .unwrap()
            .is_empty(),
        "not a mail"
    );
    let got = store
        .claim_outbox(
            OutboxKind::PasswordResetRequest.key(),
            claim,
            at(10),
            at(70),
            5,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, m, "the processor gets the address");
    assert!(store.mark_sent(m.id, claim, at(20)).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Sent);
    assert_eq!(
        e.message.payload,
        Payload::PasswordResetRequest(PasswordResetRequest { email: None }),
        "the address is gone once processed"
    );
    assert!(!e.message.payload.to_json().contains("reset@"));
}

/// A phone code (kind `sms`) reads back exactly, is claimed by its kind only, shows its number
/// as recipient, and loses its code once sent.
pub async fn outbox_phone_code_keeps_its_code_only_until_sent<S: Store>(store: Arc<S>) {
    use portal_core::mfa::{PhoneChannel, PhoneNumber};
    use portal_core::outbox::OutboxKind;
    use portal_core::ports::{PhoneCodePurpose, PhoneMessage};
    let text = PhoneMessage {
        to: PhoneNumber::parse("+49 176 12345678").unwrap(),
        channel: PhoneChannel::Voice,
        code: portal_core::secret::SecretString::new("402913"),
        purpose: PhoneCodePurpose::RecoveryChannel,
        language: portal_core::values::Language::En,
    };
    let m = OutboxMessage {
        id: OutboxId::from_uuid(Uuid::from_u128(0x5e5e8)),
        created_at: at(1),
        payload: Payload::Sms(text.clone()),
    };
    queue_messages(&*store, std::slice::from_ref(&m)).await;
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.message, m, "round trip");
    assert_eq!(e.message.payload.recipient(), "+4917612345678");
    let claim = Uuid::from_u128(9);
    assert!(
        store
            .claim_outbox("mail", claim, at(10), at(70), 5)
            .await
            .unwrap()
            .is_empty(),
        "not a mail"
    );
    let got = store
        .claim_outbox(OutboxKind::Sms.key(), claim, at(10), at(70), 5)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, m, "the gateway gets the code");
    assert!(store.mark_sent(m.id, claim, at(20)).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Sent);
    let Payload::Sms(stored) = &e.message.payload else {
        panic!("{e:?}")
    };
    assert_eq!(stored.code.expose(), "", "the code is gone once sent");
    assert_eq!((&stored.to, stored.purpose), (&text.to, text.purpose));
    assert!(!e.message.payload.to_json().contains("402913"));
}
