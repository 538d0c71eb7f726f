//! Versions and atomicity: stale versions conflict, and a commit that fails anywhere leaves nothing.

use super::{insert_users, is_conflict, reload_user, seqs, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::admin_request::AdminRequestStatus;
use portal_core::audit::{self, AuditCategory};
use portal_core::ids::{OutboxId, UserId};
use portal_core::mail::OutboxStatus;
use portal_core::ports::{Commit, StoreError, UniqueKey, Write};
use portal_core::secret::VerificationCode;
use portal_core::testing::SeededRandom;
use portal_core::token::TokenPurpose;
use portal_core::user::User;
use portal_core::values::CustomerNumber;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_atomicity {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; atomicity;
            stale_versions_conflict_for_every_entity,
            expected_user_version_is_checked,
            a_recorded_login_checks_the_version_without_moving_it,
            updates_of_missing_rows_conflict,
            inserting_an_existing_id_conflicts,
            a_commit_whose_last_write_fails_leaves_nothing,
            a_duplicate_in_the_last_write_leaves_nothing,
            a_commit_whose_mail_insert_fails_leaves_nothing,
            a_commit_whose_audit_append_fails_leaves_nothing,
        );
    };
}

/// Every versioned entity refuses a write made from a stale copy, and keeps the newer state.
#[allow(clippy::too_many_lines)]
pub async fn stale_versions_conflict_for_every_entity<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000030").await;
    let u = employee(c.id(), "v@example.com", "Vera", "Version");
    let ch = challenge(u.id(), "v@example.com", t0());
    let tok = action_token(u.id(), TokenPurpose::Invitation, token_hash());
    let req = admin_request(c.id(), u.id(), t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertChallenge(ch.clone()),
            Write::InsertActionToken(tok.clone()),
            Write::InsertAdminRequest(req.clone()),
        ]),
    )
    .await;

    // Customer.
    let mut fresh = c.clone();
    fresh.touch_admin_set(at(10));
    commit_ok(&*store, writes([Write::UpdateCustomer(fresh)])).await;
    let mut stale = c.clone();
    stale.touch_admin_set(at(11));
    let e = commit_err(&*store, writes([Write::UpdateCustomer(stale)])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let now = store.customer(c.id()).await.unwrap().unwrap();
    assert_eq!((now.version(), now.record().updated_at), (2, at(10)));

    // User.
    let loaded = reload_user(&*store, u.id()).await;
    let mut fresh = loaded.clone();
    fresh.record_login(at(20));
    commit_ok(&*store, writes([Write::UpdateUser(fresh)])).await;
    let mut stale = loaded;
    stale.record_login(at(21));
    let e = commit_err(&*store, writes([Write::UpdateUser(stale.clone())])).await;
    assert!(is_conflict(&e), "user: {e:?}");
    let e = commit_err(&*store, writes([Write::DeleteUser(stale)])).await;
    assert!(is_conflict(&e), "user delete: {e:?}");
    let now = reload_user(&*store, u.id()).await;
    assert_eq!((now.version(), now.last_login_at()), (2, Some(at(20))));

    // Challenge.
    let loaded = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.version(), 1);
    let code = VerificationCode::generate(&SeededRandom::new(9));
    let policy = portal_core::challenge::CodePolicy::default();
    let mut fresh = loaded.clone();
    fresh.resend(&code, &policy, at(100)).unwrap();
    commit_ok(&*store, writes([Write::UpdateChallenge(fresh)])).await;
    let mut stale = loaded;
    stale.resend(&code, &policy, at(200)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateChallenge(stale)])).await;
    assert!(is_conflict(&e), "challenge: {e:?}");
    let now = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.version(), now.record().last_sent_at), (2, at(100)));

    // Link token.
    let loaded = store
        .action_token(&tok.record().hash, TokenPurpose::Invitation)
        .await
        .unwrap()
        .unwrap();
    let mut fresh = loaded.clone();
    fresh.consume(at(30)).unwrap();
    commit_ok(&*store, writes([Write::UpdateActionToken(fresh)])).await;
    let mut stale = loaded;
    stale.consume(at(31)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateActionToken(stale)])).await;
    assert!(is_conflict(&e), "token used twice: {e:?}");
    let now = store
        .action_token(&tok.record().hash, TokenPurpose::Invitation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.version(), now.record().used_at), (2, Some(at(30))));

    // Admin request.
    let loaded = store.admin_request(req.id()).await.unwrap().unwrap();
    let mut fresh = loaded.clone();
    fresh
        .consent(UserId::from_uuid(new_uuid()), at(40))
        .unwrap();
    commit_ok(&*store, writes([Write::UpdateAdminRequest(fresh)])).await;
    let mut stale = loaded;
    stale.reject(UserId::from_uuid(new_uuid()), at(41)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateAdminRequest(stale)])).await;
    assert!(is_conflict(&e), "admin request: {e:?}");
    let now = store.admin_request(req.id()).await.unwrap().unwrap();
    assert_eq!(
        (now.version(), now.status()),
        (2, AdminRequestStatus::AwaitingApproval)
    );
}

/// `ExpectUser` lets a commit through only while the user has the expected version.
pub async fn expected_user_version_is_checked<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000031").await;
    let actor = admin(c.id(), "actor@example.com", "Act", "Or");
    insert_users(&*store, std::slice::from_ref(&actor)).await;
    let ok = customer("100000032", "Passt GmbH");
    commit_ok(
        &*store,
        writes([
            Write::ExpectUser {
                id: actor.id(),
                version: 1,
            },
            Write::InsertCustomer(ok.clone()),
        ]),
    )
    .await;
    assert!(store.customer(ok.id()).await.unwrap().is_some());
    for (id, version) in [
        (actor.id(), 2),
        (actor.id(), 0),
        (UserId::from_uuid(new_uuid()), 1),
    ] {
        let refused = customer("100000033", "Abgelehnt GmbH");
        let e = commit_err(
            &*store,
            writes([
                Write::ExpectUser { id, version },
                Write::InsertCustomer(refused.clone()),
            ]),
        )
        .await;
        assert!(is_conflict(&e), "version {version}: {e:?}");
        assert!(store.customer(refused.id()).await.unwrap().is_none());
    }
}

/// `RecordLogin` checks the user's version and stores the sign-in's time without a new version:
/// two sign-ins planned from one version both commit, and an update planned before them still
/// applies — keeping the later sign-in time, which never moves back. A stale or unknown user
/// conflicts and leaves nothing.
pub async fn a_recorded_login_checks_the_version_without_moving_it<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000035").await;
    let u = employee(c.id(), "login@example.com", "Log", "In");
    insert_users(&*store, std::slice::from_ref(&u)).await;
    let planned = reload_user(&*store, u.id()).await;
    assert_eq!(planned.last_login_at(), None);
    for seconds in [20, 10] {
        commit_ok(
            &*store,
            writes([Write::RecordLogin {
                id: u.id(),
                version: planned.version(),
                at: at(seconds),
            }]),
        )
        .await;
    }
    let read = reload_user(&*store, u.id()).await;
    assert_eq!(read.version(), planned.version(), "no new version");
    assert_eq!(read.last_login_at(), Some(at(20)), "the later sign-in");

    // An administrator's change planned before the sign-ins applies and keeps their time.
    let mut changed = planned.clone();
    changed.set_permissions(portal_core::permission::PermissionSet::default(), at(30));
    commit_ok(&*store, writes([Write::UpdateUser(changed)])).await;
    let read = reload_user(&*store, u.id()).await;
    assert_eq!(read.version(), planned.version() + 1);
    assert_eq!(read.record().updated_at, at(30), "the change applied");
    assert_eq!(
        read.last_login_at(),
        Some(at(20)),
        "the sign-in's time is kept"
    );

    let e = commit_err(
        &*store,
        writes([Write::RecordLogin {
            id: u.id(),
            version: planned.version(),
            at: at(40),
        }]),
    )
    .await;
    assert!(is_conflict(&e), "a stale version: {e:?}");
    let e = commit_err(
        &*store,
        writes([Write::RecordLogin {
            id: UserId::from_uuid(new_uuid()),
            version: 1,
            at: at(40),
        }]),
    )
    .await;
    assert!(is_conflict(&e), "an unknown user: {e:?}");
    let read = reload_user(&*store, u.id()).await;
    assert_eq!(
        read.last_login_at(),
        Some(at(20)),
        "the refused sign-ins left nothing"
    );

    // A later sign-in moves the time forward, by either write.
    commit_ok(
        &*store,
        writes([Write::RecordLogin {
            id: u.id(),
            version: read.version(),
            at: at(50),
        }]),
    )
    .await;
    let mut second_step = reload_user(&*store, u.id()).await;
    assert_eq!(second_step.last_login_at(), Some(at(50)));
    second_step.record_login(at(60));
    commit_ok(&*store, writes([Write::UpdateUser(second_step)])).await;
    assert_eq!(
        reload_user(&*store, u.id()).await.last_login_at(),
        Some(at(60)),
        "an update with a later sign-in time stores it"
    );
    // Within one second, by the fraction (stored times differ in their number of digits).
    let read = reload_user(&*store, u.id()).await;
    for (micros, want) in [(500_000, 500_000), (123_456, 500_000), (600_001, 600_001)] {
        commit_ok(
            &*store,
            writes([Write::RecordLogin {
                id: u.id(),
                version: read.version(),
                at: at(60) + chrono::TimeDelta::microseconds(micros),
            }]),
        )
        .await;
        assert_eq!(
            reload_user(&*store, u.id()).await.last_login_at(),
            Some(at(60) + chrono::TimeDelta::microseconds(want)),
            "after a sign-in at +{micros} µs"
        );
    }
}

/// Updating or deleting something that is not stored is a conflict (someone deleted it).
pub async fn updates_of_missing_rows_conflict<S: Store>(store: Arc<S>) {
    let c = customer("100000034", "Fehlt GmbH");
    let e = commit_err(&*store, writes([Write::UpdateCustomer(c.clone())])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let u = employee(c.id(), "missing@example.com", "Miss", "Ing");
    let e = commit_err(&*store, writes([Write::UpdateUser(u.clone())])).await;
    assert!(is_conflict(&e), "user: {e:?}");
    let e = commit_err(&*store, writes([Write::DeleteUser(u.clone())])).await;
    assert!(is_conflict(&e), "delete: {e:?}");
    let ch = challenge(u.id(), "missing@example.com", t0());
    let e = commit_err(&*store, writes([Write::UpdateChallenge(ch)])).await;
    assert!(is_conflict(&e), "challenge: {e:?}");
    let tok = action_token(u.id(), TokenPurpose::PasswordReset, token_hash());
    let e = commit_err(&*store, writes([Write::UpdateActionToken(tok)])).await;
    assert!(is_conflict(&e), "token: {e:?}");
    let req = admin_request(c.id(), u.id(), t0());
    let e = commit_err(&*store, writes([Write::UpdateAdminRequest(req)])).await;
    assert!(is_conflict(&e), "request: {e:?}");
}

/// Inserting an entity whose id exists is a conflict (it was created concurrently).
pub async fn inserting_an_existing_id_conflicts<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000035").await;
    let mut rec = c.record().clone();
    rec.number = CustomerNumber::parse("100000036").unwrap();
    let same_id = portal_core::customer::Customer::new(rec);
    let e = commit_err(&*store, writes([Write::InsertCustomer(same_id)])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let u = employee(c.id(), "first@example.com", "First", "One");
    insert_users(&*store, std::slice::from_ref(&u)).await;
    let mut rec = u.record().clone();
    rec.email = email("second@example.com");
    let e = commit_err(
        &*store,
        writes([Write::InsertUser(User::from_record(rec).unwrap())]),
    )
    .await;
    assert!(is_conflict(&e), "user: {e:?}");
    assert_eq!(
        reload_user(&*store, u.id()).await.email().as_str(),
        "first@example.com"
    );
    // Sessions, challenges, link tokens and admin requests: a second insert of an id conflicts
    // and leaves the first row as it was.
    let s = session(u.id(), token_hash(), t0());
    let ch = challenge(u.id(), "first@example.com", t0());
    let tok = action_token(u.id(), TokenPurpose::PasswordReset, token_hash());
    let req = admin_request(c.id(), u.id(), t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertSession(s.clone()),
            Write::InsertChallenge(ch.clone()),
            Write::InsertActionToken(tok.clone()),
            Write::InsertAdminRequest(req.clone()),
        ]),
    )
    .await;
    // Same id, another token hash: only the id collides.
    let mut again = s.record().clone();
    again.token_hash = token_hash();
    let again = portal_core::session::Session::from_record(again).unwrap();
    for w in [
        Write::InsertSession(again),
        Write::InsertChallenge(ch.clone()),
        Write::InsertActionToken(tok.clone()),
        Write::InsertAdminRequest(req.clone()),
    ] {
        let what = format!("{w:?}").chars().take(40).collect::<String>();
        let e = commit_err(&*store, writes([w])).await;
        assert!(is_conflict(&e), "{what}: {e:?}");
    }
    assert_eq!(store.sessions_of_user(u.id()).await.unwrap().len(), 1);
    assert_eq!(
        store
            .admin_request(req.id())
            .await
            .unwrap()
            .map(|r| r.record().version),
        Some(1)
    );
}

async fn assert_nothing_of<S: Store>(
    store: &S,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: &portal_core::secret::TokenHash,
    mail: OutboxId,
) {
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "no customer"
    );
    assert!(store.user(u.id()).await.unwrap().is_none(), "no user");
    assert!(
        store
            .session_context(session_hash, at(1))
            .await
            .unwrap()
            .is_none(),
        "no session"
    );
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "no audit"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "no global audit"
    );
    assert!(store.outbox_entry(mail).await.unwrap().is_none(), "no mail");
    assert_eq!(
        store.outbox_stats().await.unwrap(),
        Default::default(),
        "empty outbox"
    );
}

fn big_commit(
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) -> Commit {
    let mut commit = writes([
        Write::InsertCustomer(c.clone()),
        Write::InsertUser(u.clone()),
        Write::InsertSession(session(u.id(), session_hash, t0())),
    ]);
    commit
        .audit(audit(
            Some(c.id()),
            Some(u.id()),
            AuditCategory::UserCreated,
            "",
            at(1),
        ))
        .audit(audit(None, None, AuditCategory::CustomerCreated, "", at(1)))
        .mail(mail.clone());
    commit
}

/// A commit whose last write fails leaves no entity, no audit entry and no mail; the same
/// commit without that write then succeeds with the chains starting at 1.
pub async fn a_commit_whose_last_write_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let c = customer("100000040", "Atomar GmbH");
    let u = employee(c.id(), "atom@example.com", "Ato", "Mar");
    let hash = token_hash();
    let mail = code_mail("atom@example.com", "123456", at(1));
    let mut failing = big_commit(&c, &u, hash, &mail);
    let ghost = employee(c.id(), "ghost@example.com", "Gho", "St");
    failing.write(Write::UpdateUser(ghost));
    let e = commit_err(&*store, failing).await;
    assert!(is_conflict(&e), "got {e:?}");
    assert_nothing_of(&*store, &c, &u, &hash, mail.id).await;

    commit_ok(&*store, big_commit(&c, &u, hash, &mail)).await;
    assert!(store.customer(c.id()).await.unwrap().is_some());
    assert_eq!(
        seqs(&store.audit_chain(Some(c.id()), 0, 10).await.unwrap()),
        [1]
    );
    assert_eq!(seqs(&store.audit_chain(None, 0, 10).await.unwrap()), [1]);
    assert!(store.outbox_entry(mail.id).await.unwrap().is_some());
}

/// A commit whose last write breaks a uniqueness rule leaves nothing either.
pub async fn a_duplicate_in_the_last_write_leaves_nothing<S: Store>(store: Arc<S>) {
    let taken = setup_customer(&*store, "100000041").await;
    let c = customer("100000042", "Doppelt GmbH");
    let u = employee(c.id(), "dup@example.com", "Dup", "Licate");
    let hash = token_hash();
    let mail = code_mail("dup@example.com", "654321", at(1));
    let mut failing = big_commit(&c, &u, hash, &mail);
    failing.write(Write::InsertCustomer(customer(
        taken.number().as_str(),
        "Nummer vergeben GmbH",
    )));
    let e = commit_err(&*store, failing).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::CustomerNumber)),
        "got {e:?}"
    );
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "no customer"
    );
    assert!(store.user(u.id()).await.unwrap().is_none(), "no user");
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "no audit"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "no global audit"
    );
    assert!(
        store.outbox_entry(mail.id).await.unwrap().is_none(),
        "no mail"
    );
}

/// What exists before the atomicity checks below: a customer whose audit chain has one entry,
/// and one queued mail.
struct Before {
    pre: portal_core::customer::Customer,
    pre_entry: portal_core::ids::AuditEntryId,
    old: portal_core::mail::OutboxMail,
}

async fn before_state<S: Store>(store: &S, number: &str) -> Before {
    let pre = setup_customer(store, number).await;
    let record = audit(
        Some(pre.id()),
        None,
        AuditCategory::CustomerCreated,
        "",
        t0(),
    );
    let pre_entry = record.id;
    let old = code_mail("old@example.com", "111111", t0());
    let mut commit = Commit::new();
    commit.audit(record).mail(old.clone());
    commit_ok(store, commit).await;
    Before {
        pre,
        pre_entry,
        old,
    }
}

/// [`big_commit`] plus an audit entry in the chain of `before.pre` (a chain whose head exists).
fn big_commit_on(
    before: &Before,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) -> Commit {
    let mut commit = big_commit(c, u, session_hash, mail);
    commit.audit(audit(
        Some(before.pre.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "moved",
        at(1),
    ));
    commit
}

/// Nothing of a failed [`big_commit_on`] is kept: no entity, session, audit entry (the head of
/// `before.pre`'s chain unmoved) or mail, and what existed before is as it was.
async fn assert_only_before<S: Store>(
    store: &S,
    what: &str,
    before: &Before,
    failed: (&portal_core::customer::Customer, &User),
    session_hash: &portal_core::secret::TokenHash,
    mail: OutboxId,
) {
    let (c, u) = failed;
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "{what}: no customer"
    );
    assert!(
        store.user(u.id()).await.unwrap().is_none(),
        "{what}: no user"
    );
    assert!(
        store
            .session_context(session_hash, at(1))
            .await
            .unwrap()
            .is_none(),
        "{what}: no session"
    );
    assert!(
        store.sessions_of_user(u.id()).await.unwrap().is_empty(),
        "{what}: no session listed"
    );
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "{what}: no audit in the new chain"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "{what}: no global audit"
    );
    let pre_chain = store
        .audit_chain(Some(before.pre.id()), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        pre_chain
            .iter()
            .map(|e| (e.seq, e.record.id))
            .collect::<Vec<_>>(),
        [(1, before.pre_entry)],
        "{what}: the existing chain is as it was"
    );
    assert!(
        store.outbox_entry(mail).await.unwrap().is_none(),
        "{what}: no mail"
    );
    let old = store
        .outbox_entry(before.old.id)
        .await
        .unwrap()
        .expect("the mail queued before");
    assert_eq!(
        old.mail().as_ref(),
        Some(&before.old),
        "{what}: the queued mail is untouched"
    );
    assert_eq!(old.status, OutboxStatus::Pending);
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (1, 0, 0, 0),
        "{what}: only the mail queued before"
    );
}

/// After the failed attempts, the same commit without the broken part succeeds, and every chain
/// continues where it was: the failed commits moved no chain head.
async fn assert_clean_commit_continues<S: Store>(
    store: &S,
    before: &Before,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) {
    commit_ok(store, big_commit_on(before, c, u, session_hash, mail)).await;
    assert!(store.customer(c.id()).await.unwrap().is_some());
    assert!(store.user(u.id()).await.unwrap().is_some());
    assert!(
        store
            .session_context(&session_hash, at(1))
            .await
            .unwrap()
            .is_some()
    );
    for (chain, want) in [
        (Some(before.pre.id()), vec![1, 2]),
        (Some(c.id()), vec![1]),
        (None, vec![1]),
    ] {
        let entries = store.audit_chain(chain, 0, 10).await.unwrap();
        assert_eq!(seqs(&entries), want, "chain {chain:?}");
        assert_eq!(audit::verify_chain(&entries), Ok(()), "chain {chain:?}");
    }
    assert!(store.outbox_entry(mail.id).await.unwrap().is_some());
    assert_eq!(store.outbox_stats().await.unwrap().pending, 2);
}

/// A commit whose *mail insert* fails — the same mail id twice in the commit, or the id of a
/// mail queued before — is a `Conflict` and leaves nothing: its writes, audit entries (chain
/// heads included) and earlier mails are rolled back, though they had all been applied when the
/// mail failed.
pub async fn a_commit_whose_mail_insert_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let before = before_state(&*store, "100000043").await;
    let c = customer("100000044", "Post GmbH");
    let u = employee(c.id(), "post@example.com", "Pos", "Tal");
    let hash = token_hash();
    let mail = code_mail("post@example.com", "222222", at(1));

    let mut twice = big_commit_on(&before, &c, &u, hash, &mail);
    let mut again = code_mail("twice@example.com", "333333", at(1));
    again.id = mail.id;
    twice.mail(again);
    let mut clash = big_commit_on(&before, &c, &u, hash, &mail);
    let mut queued = code_mail("clash@example.com", "444444", at(1));
    queued.id = before.old.id;
    clash.mail(queued);

    for (what, commit) in [
        ("same mail id twice", twice),
        ("mail id queued before", clash),
    ] {
        let e = commit_err(&*store, commit).await;
        assert!(is_conflict(&e), "{what}: got {e:?}");
        assert_only_before(&*store, what, &before, (&c, &u), &hash, mail.id).await;
    }
    assert_clean_commit_continues(&*store, &before, &c, &u, hash, &mail).await;
}

/// A commit whose *audit append* fails — two records with one id, or the id of an entry stored
/// before, each placed after a record of another chain, so that chain's head has moved when the
/// append fails — is a `Conflict` and leaves nothing: no entity, session, audit entry, chain
/// head move or mail.
pub async fn a_commit_whose_audit_append_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let before = before_state(&*store, "100000045").await;
    let c = customer("100000046", "Protokoll GmbH");
    let u = employee(c.id(), "log@example.com", "Pro", "Tokoll");
    let hash = token_hash();
    let mail = code_mail("log@example.com", "555555", at(1));

    // The global chain sorts first (the SQL stores append chain by chain in key order), so its
    // head is created and moved before the failing record of the customer chain.
    let mut twice = big_commit_on(&before, &c, &u, hash, &mail);
    let global = audit(
        None,
        Some(u.id()),
        AuditCategory::UserCreated,
        "first",
        at(1),
    );
    let mut same_id = audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserLocked,
        "",
        at(1),
    );
    same_id.id = global.id;
    twice.audit(global).audit(same_id);
    let mut clash = big_commit_on(&before, &c, &u, hash, &mail);
    let mut stored_id = audit(
        Some(before.pre.id()),
        Some(u.id()),
        AuditCategory::UserLocked,
        "",
        at(1),
    );
    stored_id.id = before.pre_entry;
    clash.audit(stored_id);

    for (what, commit) in [("audit id twice", twice), ("audit id stored before", clash)] {
        let e = commit_err(&*store, commit).await;
        assert!(is_conflict(&e), "{what}: got {e:?}");
        assert_only_before(&*store, what, &before, (&c, &u), &hash, mail.id).await;
    }
    assert_clean_commit_continues(&*store, &before, &c, &u, hash, &mail).await;
}
