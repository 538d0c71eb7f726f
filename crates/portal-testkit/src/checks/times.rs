//! Time precision: every stored time keeps its microseconds, truncated, on every backend.

use super::reload_user;
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::{self, AuditCategory};
use portal_core::ports::{LegacyClaim, Write};
use portal_core::token::TokenPurpose;
use portal_core::user::User;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_times {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; times;
            times_are_stored_truncated_to_microseconds,
        );
    };
}

/// Every stored time is kept to the microsecond on every backend: written with nanoseconds
/// (`.123456999`), it reads back truncated (`.123456`, not rounded up), for every entity, the
/// audit chain (which still verifies), the outbox's times and the rate counters.
#[allow(clippy::too_many_lines)]
pub async fn times_are_stored_truncated_to_microseconds<S: Store>(store: Arc<S>) {
    use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
    let ns = TimeDelta::nanoseconds(999);
    let nano = |seconds: i64| at(seconds) + ns;
    let us = |t: DateTime<Utc>| t.trunc_subsecs(6);
    assert_ne!(nano(0), us(nano(0)), "the test times carry nanoseconds");
    assert_eq!(us(nano(0)), t0(), "truncated, not rounded");

    let mut c_rec = customer("100000095", "Nano GmbH").record().clone();
    c_rec.created_at = nano(0);
    c_rec.updated_at = nano(1);
    let c = portal_core::customer::Customer::new(c_rec);
    let mut u_rec = employee(c.id(), "nano@example.com", "Nana", "Sekunde")
        .record()
        .clone();
    u_rec.created_at = nano(2);
    u_rec.updated_at = nano(3);
    u_rec.last_login_at = Some(nano(4));
    let u = User::from_record(u_rec).unwrap();
    let hash = token_hash();
    let s = session(u.id(), hash, nano(5));
    let ch = challenge(u.id(), "nano@example.com", nano(6));
    let mut t_rec = action_token(u.id(), TokenPurpose::PasswordReset, token_hash())
        .record()
        .clone();
    t_rec.created_at = nano(7);
    t_rec.expires_at = nano(3600);
    t_rec.used_at = Some(nano(8));
    let tok = portal_core::token::ActionToken::from_record(t_rec).unwrap();
    let req = admin_request(c.id(), u.id(), nano(9));
    let claim = LegacyClaim {
        legacy_id: "legacy:nano".into(),
        user_id: u.id(),
        customer_id: c.id(),
        claimed_at: nano(10),
    };
    let record = audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "",
        nano(11),
    );
    let mail = code_mail("nano@example.com", "123456", nano(12));
    let mut commit = writes([
        Write::InsertCustomer(c.clone()),
        Write::InsertUser(u.clone()),
        Write::InsertSession(s.clone()),
        Write::InsertChallenge(ch.clone()),
        Write::InsertActionToken(tok.clone()),
        Write::InsertAdminRequest(req.clone()),
        Write::InsertLegacyClaim(claim.clone()),
    ]);
    commit.audit(record.clone()).mail(mail.clone());
    commit_ok(&*store, commit).await;

    let got = store.customer(c.id()).await.unwrap().expect("customer");
    assert_eq!(
        (got.record().created_at, got.record().updated_at),
        (us(nano(0)), us(nano(1))),
        "customer"
    );
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(
        (
            got.record().created_at,
            got.record().updated_at,
            got.record().last_login_at
        ),
        (us(nano(2)), us(nano(3)), Some(us(nano(4)))),
        "user"
    );
    let got = store.sessions_of_user(u.id()).await.unwrap();
    let r = got[0].record();
    let w = s.record();
    assert_eq!(
        [
            r.created_at,
            r.last_seen_at,
            r.idle_expires_at,
            r.expires_at,
            r.authenticated_at
        ],
        [
            us(w.created_at),
            us(w.last_seen_at),
            us(w.idle_expires_at),
            us(w.expires_at),
            us(w.authenticated_at)
        ],
        "session"
    );
    let got = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .expect("challenge");
    let w = ch.record();
    assert_eq!(
        [
            got.record().created_at,
            got.record().last_sent_at,
            got.record().expires_at
        ],
        [us(w.created_at), us(w.last_sent_at), us(w.expires_at)],
        "challenge"
    );
    let got = store
        .action_token(&tok.record().hash, TokenPurpose::PasswordReset)
        .await
        .unwrap()
        .expect("token");
    assert_eq!(
        (
            got.record().created_at,
            got.record().expires_at,
            got.record().used_at
        ),
        (us(nano(7)), us(nano(3600)), Some(us(nano(8)))),
        "action token"
    );
    let got = store
        .admin_request(req.id())
        .await
        .unwrap()
        .expect("request");
    assert_eq!(
        (got.record().created_at, got.record().updated_at),
        (us(nano(9)), us(nano(9))),
        "admin request"
    );
    let got = store
        .legacy_claim("legacy:nano")
        .await
        .unwrap()
        .expect("claim");
    assert_eq!(got.claimed_at, us(nano(10)), "legacy claim");
    let chain = store.audit_chain(Some(c.id()), 0, 10).await.unwrap();
    assert_eq!(chain[0].record.at, us(nano(11)), "audit entry");
    assert_eq!(
        audit::verify_chain(&chain),
        Ok(()),
        "the hash covers the stored time"
    );
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(
        (got.message.created_at, got.next_attempt_at),
        (us(nano(12)), us(nano(12))),
        "mail"
    );

    // Times handed to the outbox, counter and session calls are stored the same way.
    let claim_id = new_uuid();
    let claimed = store
        .claim_outbox("mail", claim_id, nano(20), nano(320), 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].claimed_until, Some(us(nano(320))), "lease");
    assert_eq!(
        store
            .outbox_entry(mail.id)
            .await
            .unwrap()
            .expect("mail")
            .claimed_until,
        Some(us(nano(320))),
        "stored lease"
    );
    assert!(
        store
            .mark_failed(mail.id, claim_id, "451", Some(nano(400)))
            .await
            .unwrap()
    );
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(got.next_attempt_at, us(nano(400)), "retry time");
    let again = store
        .claim_outbox("mail", claim_id, nano(400), nano(700), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "due at its truncated retry time");
    assert!(store.mark_sent(mail.id, claim_id, nano(450)).await.unwrap());
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(got.sent_at, Some(us(nano(450))), "sent time");

    let counted = store
        .bump_counter("nano", nano(30), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(counted.last_at, us(nano(30)), "counter as returned");
    assert_eq!(
        store.counter("nano").await.unwrap().map(|c| c.last_at),
        Some(us(nano(30))),
        "counter as stored"
    );
    store
        .touch_session(s.id(), nano(40), nano(1800))
        .await
        .unwrap();
    let got = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(
        (
            got[0].record().last_seen_at,
            got[0].record().idle_expires_at
        ),
        (us(nano(40)), us(nano(1800))),
        "touched session"
    );
}
