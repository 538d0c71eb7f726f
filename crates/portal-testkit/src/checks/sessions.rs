//! Sessions, registration challenges, link tokens, admin requests and legacy claims.

use super::{insert_users, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::admin_request::AdminRequestStatus;
use portal_core::ids::SessionId;
use portal_core::ports::{AdminRequestFilter, LegacyClaim, StoreError, UniqueKey, Write};
use portal_core::token::TokenPurpose;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_sessions {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; sessions;
            session_round_trips_and_is_found_by_hash_only,
            session_expiry_is_enforced_in_the_query,
            touching_a_session_moves_its_idle_expiry,
            sessions_of_a_user_end_together_except_one,
            challenge_round_trips_and_counts_sends,
            action_tokens_round_trip_by_hash_and_purpose,
            admin_requests_round_trip_and_filter_newest_first,
            legacy_claims_are_unique,
            counters_are_read_together_and_deleted_in_a_commit,
        );
    };
}

/// A session is found by its token hash with its user and customer; nothing else finds it.
pub async fn session_round_trips_and_is_found_by_hash_only<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000050").await;
    let u = employee(c.id(), "s@example.com", "Sina", "Session");
    let op = operator("op@vendor.example");
    let hash = token_hash();
    let s = session(u.id(), hash, t0());
    let op_hash = token_hash();
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertUser(op.clone()),
            Write::InsertSession(s.clone()),
            Write::InsertSession(session(op.id(), op_hash, t0())),
        ]),
    )
    .await;
    let ctx = store
        .session_context(&hash, at(1))
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(ctx.session.record(), s.record(), "session round trip");
    assert_eq!(ctx.user.id(), u.id());
    assert_eq!(ctx.user.version(), 1);
    assert_eq!(ctx.customer.map(|c| c.id()), Some(c.id()));
    let op_ctx = store
        .session_context(&op_hash, at(1))
        .await
        .unwrap()
        .expect("operator");
    assert!(op_ctx.customer.is_none(), "operators have no customer");
    assert!(
        store
            .session_context(&token_hash(), at(1))
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record(), s.record());
}

/// Expired sessions (idle or absolute, at the instant of expiry) are never returned, even
/// before they are purged.
pub async fn session_expiry_is_enforced_in_the_query<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000051").await;
    let u = employee(c.id(), "exp@example.com", "Ex", "Pire");
    let idle_hash = token_hash();
    let abs_hash = token_hash();
    let idle = session(u.id(), idle_hash, t0());
    let abs = session(u.id(), abs_hash, t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(idle.clone()),
            Write::InsertSession(abs.clone()),
        ]),
    )
    .await;
    let us = chrono::TimeDelta::microseconds(1);
    let hour = chrono::TimeDelta::hours(1);
    assert!(
        store
            .session_context(&idle_hash, t0() + hour - us)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_context(&idle_hash, t0() + hour)
            .await
            .unwrap()
            .is_none(),
        "idle expiry is exclusive"
    );
    // Kept alive until its absolute end, then dead however fresh its idle expiry.
    let end = abs.record().expires_at;
    store
        .touch_session(abs.id(), end - hour, end)
        .await
        .unwrap();
    assert!(
        store
            .session_context(&abs_hash, end - us)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_context(&abs_hash, end)
            .await
            .unwrap()
            .is_none(),
        "absolute expiry"
    );
    assert_eq!(
        store.sessions_of_user(u.id()).await.unwrap().len(),
        2,
        "expired sessions are still listed until purged"
    );
}

/// Touching moves `last_seen_at` and the idle expiry; a missing session is not an error.
pub async fn touching_a_session_moves_its_idle_expiry<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000052").await;
    let u = employee(c.id(), "t@example.com", "Tim", "Touch");
    let hash = token_hash();
    let s = session(u.id(), hash, t0());
    user_with_session(&*store, &u, &s).await;
    store
        .touch_session(s.id(), at(1800), at(5400))
        .await
        .unwrap();
    let got = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(got[0].record().last_seen_at, at(1800));
    assert_eq!(got[0].record().idle_expires_at, at(5400));
    assert!(
        store
            .session_context(&hash, at(3700))
            .await
            .unwrap()
            .is_some(),
        "alive past the old idle expiry"
    );
    store
        .touch_session(SessionId::from_uuid(new_uuid()), at(1), at(2))
        .await
        .expect("touching a missing session is not an error");
}

/// `DeleteSessionsOfUser` ends all of one user's sessions but the one kept; `DeleteSession` is
/// idempotent.
pub async fn sessions_of_a_user_end_together_except_one<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000053").await;
    let u = employee(c.id(), "many@example.com", "Many", "Sessions");
    let v = employee(c.id(), "other@example.com", "Other", "User");
    let s: Vec<_> = (0..3)
        .map(|i| session(u.id(), token_hash(), at(i)))
        .collect();
    let sv = session(v.id(), token_hash(), t0());
    let mut w = vec![Write::InsertUser(u.clone()), Write::InsertUser(v.clone())];
    w.extend(s.iter().cloned().map(Write::InsertSession));
    w.push(Write::InsertSession(sv.clone()));
    commit_ok(&*store, writes(w)).await;
    commit_ok(
        &*store,
        writes([Write::DeleteSessionsOfUser {
            user: u.id(),
            except: Some(s[1].id()),
        }]),
    )
    .await;
    let left = session_ids(&*store, u.id()).await;
    assert_eq!(left, [s[1].id()]);
    assert_eq!(
        store.sessions_of_user(v.id()).await.unwrap().len(),
        1,
        "other users untouched"
    );
    commit_ok(&*store, writes([Write::DeleteSession(s[1].id())])).await;
    commit_ok(&*store, writes([Write::DeleteSession(s[1].id())])).await;
    assert!(store.sessions_of_user(u.id()).await.unwrap().is_empty());
}

/// A challenge reads back by its ticket hash; sends per address are counted from a time on.
pub async fn challenge_round_trips_and_counts_sends<S: Store>(store: Arc<S>) {
    let p = pending_user("code@example.com", "Cody", "Code");
    let q = pending_user("else@example.com", "Else", "Where");
    let c1 = challenge(p.id(), "code@example.com", t0());
    let c2 = challenge(p.id(), "code@example.com", at(120));
    let c3 = challenge(q.id(), "else@example.com", at(60));
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(p.clone()),
            Write::InsertUser(q.clone()),
            Write::InsertChallenge(c1.clone()),
            Write::InsertChallenge(c2),
            Write::InsertChallenge(c3),
        ]),
    )
    .await;
    let got = store
        .challenge_by_ticket(&c1.record().ticket_hash)
        .await
        .unwrap()
        .expect("by ticket");
    let mut expected = c1.record().clone();
    expected.version = 1;
    assert_eq!(got.record(), &expected);
    assert!(
        store
            .challenge_by_ticket(&token_hash())
            .await
            .unwrap()
            .is_none()
    );
    let addr = email("code@example.com");
    assert_eq!(
        store.count_challenges_sent_to(&addr, t0()).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_challenges_sent_to(&addr, at(60)).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_challenges_sent_to(&addr, at(121))
            .await
            .unwrap(),
        0
    );
    commit_ok(&*store, writes([Write::DeleteChallengesOfUser(p.id())])).await;
    assert!(
        store
            .challenge_by_ticket(&c1.record().ticket_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.count_challenges_sent_to(&addr, t0()).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .count_challenges_sent_to(&email("else@example.com"), t0())
            .await
            .unwrap(),
        1
    );
}

/// A link token is found by hash and purpose only; deleting by purpose keeps the others.
pub async fn action_tokens_round_trip_by_hash_and_purpose<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000054").await;
    let u = employee(c.id(), "tok@example.com", "Tok", "En");
    let h_reset = token_hash();
    let h_invite = token_hash();
    let reset = action_token(u.id(), TokenPurpose::PasswordReset, h_reset);
    let invite = action_token(u.id(), TokenPurpose::Invitation, h_invite);
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertActionToken(reset.clone()),
            Write::InsertActionToken(invite.clone()),
        ]),
    )
    .await;
    let got = store
        .action_token(&h_reset, TokenPurpose::PasswordReset)
        .await
        .unwrap()
        .expect("by hash");
    let mut expected = reset.record().clone();
    expected.version = 1;
    assert_eq!(got.record(), &expected);
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_none(),
        "a token of one purpose is useless for the other"
    );
    let of_user = store
        .action_tokens_of_user(u.id(), TokenPurpose::PasswordReset)
        .await
        .unwrap();
    assert_eq!(
        of_user.iter().map(|t| t.id()).collect::<Vec<_>>(),
        [reset.id()]
    );
    commit_ok(
        &*store,
        writes([Write::DeleteActionTokensOfUser {
            user: u.id(),
            purpose: Some(TokenPurpose::Invitation),
        }]),
    )
    .await;
    assert!(
        store
            .action_token(&h_invite, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_some()
    );
    commit_ok(
        &*store,
        writes([Write::DeleteActionTokensOfUser {
            user: u.id(),
            purpose: None,
        }]),
    )
    .await;
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none()
    );
}

/// Admin requests read back, list newest first and filter by customer, requester and status.
pub async fn admin_requests_round_trip_and_filter_newest_first<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000055").await;
    let c2 = setup_customer(&*store, "100000056").await;
    let r1 = employee(c1.id(), "r1@example.com", "Re", "Eins");
    let r2 = employee(c1.id(), "r2@example.com", "Re", "Zwei");
    let r3 = employee(c2.id(), "r3@example.com", "Re", "Drei");
    let a = admin_request(c1.id(), r1.id(), at(10));
    let b = admin_request(c1.id(), r2.id(), at(20));
    let c = admin_request(c2.id(), r3.id(), at(30));
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(r1.clone()),
            Write::InsertUser(r2),
            Write::InsertUser(r3),
            Write::InsertAdminRequest(a.clone()),
            Write::InsertAdminRequest(b.clone()),
            Write::InsertAdminRequest(c.clone()),
        ]),
    )
    .await;
    let mut expected = a.record().clone();
    expected.version = 1;
    assert_eq!(
        store.admin_request(a.id()).await.unwrap().unwrap().record(),
        &expected
    );
    let list = |f: AdminRequestFilter| {
        let store = store.clone();
        async move {
            store
                .admin_requests(&f)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(AdminRequestFilter::default()).await,
        [c.id(), b.id(), a.id()]
    );
    assert_eq!(
        list(AdminRequestFilter {
            customer: Some(c1.id()),
            ..Default::default()
        })
        .await,
        [b.id(), a.id()]
    );
    assert_eq!(
        list(AdminRequestFilter {
            requester: Some(r1.id()),
            ..Default::default()
        })
        .await,
        [a.id()]
    );
    let mut consented = store.admin_request(b.id()).await.unwrap().unwrap();
    consented.consent(r1.id(), at(40)).unwrap();
    commit_ok(&*store, writes([Write::UpdateAdminRequest(consented)])).await;
    assert_eq!(
        list(AdminRequestFilter {
            customer: Some(c1.id()),
            statuses: vec![AdminRequestStatus::AwaitingApproval],
            ..Default::default()
        })
        .await,
        [b.id()]
    );
}

/// An old account can be linked once.
pub async fn legacy_claims_are_unique<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000057").await;
    let u = employee(c.id(), "legacy@example.com", "Leg", "Acy");
    let v = employee(c.id(), "second@example.com", "Sec", "Ond");
    insert_users(&*store, &[u.clone(), v.clone()]).await;
    let claim = LegacyClaim {
        legacy_id: "legacy:mueller".into(),
        user_id: u.id(),
        customer_id: c.id(),
        claimed_at: at(7),
    };
    commit_ok(&*store, writes([Write::InsertLegacyClaim(claim.clone())])).await;
    let again = LegacyClaim {
        user_id: v.id(),
        ..claim.clone()
    };
    let e = commit_err(&*store, writes([Write::InsertLegacyClaim(again)])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::LegacyAccount)),
        "got {e:?}"
    );
    assert_eq!(
        store.legacy_claim("legacy:mueller").await.unwrap(),
        Some(claim)
    );
    assert!(store.legacy_claim("legacy:other").await.unwrap().is_none());
}

/// [`Queries::counters`](portal_core::ports::Queries::counters) answers in the order asked, with
/// `None` for a missing key; [`Write::DeleteCounters`] removes counters in the commit (a missing
/// key is no error) and is undone with the rest of a failing commit.
pub async fn counters_are_read_together_and_deleted_in_a_commit<S: Store>(store: Arc<S>) {
    let window = chrono::TimeDelta::hours(1);
    store
        .bump_counter("login:pair:a", t0(), window)
        .await
        .unwrap();
    store
        .bump_counter("login:pair:a", at(1), window)
        .await
        .unwrap();
    store
        .bump_counter("login:account:c", at(2), window)
        .await
        .unwrap();
    let keys = ["login:account:c", "missing", "login:pair:a"].map(String::from);
    let got: Vec<Option<(u32, _)>> = store
        .counters(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.map(|c| (c.count, c.last_at)))
        .collect();
    assert_eq!(got, vec![Some((1, at(2))), None, Some((2, at(1)))]);
    assert!(store.counters(&[]).await.unwrap().is_empty());

    // Undone with a commit that fails after it.
    let e = commit_err(
        &*store,
        writes([
            Write::DeleteCounters(vec!["login:pair:a".into()]),
            Write::ExpectUser {
                id: portal_core::ids::UserId::from_uuid(uuid::Uuid::new_v4()),
                version: 1,
            },
        ]),
    )
    .await;
    assert!(matches!(e, StoreError::Conflict), "got {e:?}");
    assert_eq!(
        store
            .counter("login:pair:a")
            .await
            .unwrap()
            .map(|c| c.count),
        Some(2)
    );

    commit_ok(
        &*store,
        writes([Write::DeleteCounters(vec![
            "login:pair:a".into(),
            "missing".into(),
        ])]),
    )
    .await;
    assert!(store.counter("login:pair:a").await.unwrap().is_none());
    assert_eq!(
        store
            .counter("login:account:c")
            .await
            .unwrap()
            .map(|c| c.count),
        Some(1),
        "only the keys named are deleted"
    );
}
