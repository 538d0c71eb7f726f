//! Operations: the sealing key ids a database records (checked at start, forgotten after a
//! re-seal) and the users holding sealed secrets (what a re-seal walks through).

use super::{ids, seqs, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::{AuditCategory, verify_chain_from};
use portal_core::ids::{ActionTokenId, CustomerId, UserId};
use portal_core::mfa::{PendingTotp, TotpFactor};
use portal_core::ports::{Commit, Expired, StaleUsers, Write};
use portal_core::token::{ActionToken, TokenPurpose};
use portal_core::user::User;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_operations {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; operations;
            sealing_key_ids_are_recorded_once_and_forgotten,
            a_failed_commit_records_no_sealing_key,
            users_with_sealed_secrets_are_listed_by_id_across_customers,
            stale_registrations_and_invitations_are_found_at_their_cutoffs,
            audit_retention_removes_the_old_start_of_each_chain_and_leaves_a_checkpoint,
            audit_retention_goes_in_batches_and_never_removes_a_chains_newest_entry,
        );
    };
}

fn with_app(mut u: User, confirmed: bool) -> User {
    u.change_mfa(
        |m| {
            if confirmed {
                m.totp = Some(TotpFactor {
                    sealed_secret: "v2.0011223344556677.c2VhbGVk".into(),
                    last_used_step: 1,
                    enrolled_at: at(5),
                });
            } else {
                m.pending_totp = Some(PendingTotp {
                    sealed_secret: "v1.c2VhbGVk".into(),
                    started_at: at(5),
                });
            }
        },
        at(5),
    );
    u
}

/// A recorded id reads back (sorted); recording it again is no error and keeps one; deleting
/// an id forgets it, deleting an unknown one is no error.
pub async fn sealing_key_ids_are_recorded_once_and_forgotten<S: Store>(store: Arc<S>) {
    assert!(
        store.sealing_keys().await.unwrap().is_empty(),
        "none at first"
    );
    let insert = |id: &str| Write::InsertSealingKey {
        id: id.to_owned(),
        at: at(1),
    };
    commit_ok(&*store, writes([insert("ffeeddccbbaa0099")])).await;
    commit_ok(
        &*store,
        writes([insert("0011223344556677"), insert("ffeeddccbbaa0099")]),
    )
    .await;
    assert_eq!(
        store.sealing_keys().await.unwrap(),
        ["0011223344556677", "ffeeddccbbaa0099"]
    );
    commit_ok(
        &*store,
        writes([
            Write::DeleteSealingKey("ffeeddccbbaa0099".into()),
            Write::DeleteSealingKey("not-recorded".into()),
        ]),
    )
    .await;
    assert_eq!(store.sealing_keys().await.unwrap(), ["0011223344556677"]);
}

/// A commit that fails leaves no sealing key id behind, and deletes none.
pub async fn a_failed_commit_records_no_sealing_key<S: Store>(store: Arc<S>) {
    commit_ok(
        &*store,
        writes([Write::InsertSealingKey {
            id: "0011223344556677".into(),
            at: at(1),
        }]),
    )
    .await;
    let c = setup_customer(&*store, "100000170").await;
    let never_stored = employee(c.id(), "ghost.keys@example.com", "Geist", "Schlüssel");
    let e = commit_err(
        &*store,
        writes([
            Write::InsertSealingKey {
                id: "ffeeddccbbaa0099".into(),
                at: at(2),
            },
            Write::DeleteSealingKey("0011223344556677".into()),
            Write::UpdateUser(never_stored),
        ]),
    )
    .await;
    assert!(super::is_conflict(&e), "{e:?}");
    assert_eq!(store.sealing_keys().await.unwrap(), ["0011223344556677"]);
}

/// Users with a confirmed or pending authenticator app are listed in id order, across
/// customers and without one (any state), paged by `after` and `limit`; users without one are
/// not.
pub async fn users_with_sealed_secrets_are_listed_by_id_across_customers<S: Store>(store: Arc<S>) {
    let a = setup_customer(&*store, "100000171").await;
    let b = setup_customer(&*store, "100000172").await;
    let users = [
        with_app(employee(a.id(), "app.a@example.com", "Anna", "App"), true),
        with_app(employee(b.id(), "app.b@example.com", "Bert", "App"), false),
        with_app(pending_user("app.pending@example.com", "Pia", "App"), false),
        with_app(operator("app.operator@example.com"), true),
    ];
    let plain = employee(a.id(), "no.app@example.com", "Nora", "Ohne");
    commit_ok(
        &*store,
        writes(users.iter().cloned().chain([plain]).map(Write::InsertUser)),
    )
    .await;
    let mut expected = ids(&users);
    expected.sort_unstable();
    let all = store.users_with_sealed_secrets(None, 10).await.unwrap();
    assert_eq!(ids(&all), expected);
    let first = store.users_with_sealed_secrets(None, 3).await.unwrap();
    assert_eq!(ids(&first), expected[..3]);
    let rest = store
        .users_with_sealed_secrets(Some(expected[2]), 3)
        .await
        .unwrap();
    assert_eq!(ids(&rest), expected[3..]);
    let confirmed = all.iter().find(|u| u.id() == users[0].id()).unwrap();
    assert_eq!(confirmed.mfa(), users[0].mfa(), "read back whole");
}

fn invited(customer: CustomerId, address: &str, created: chrono::DateTime<chrono::Utc>) -> User {
    User::new_invited(
        UserId::from_uuid(new_uuid()),
        email(address),
        name("Ines"),
        name("Eingeladen"),
        portal_core::values::Language::De,
        portal_core::user::Role::Employee,
        Some(customer),
        portal_core::permission::PermissionSet::new(),
        created,
    )
}

fn invitation_link(user: UserId, expires: chrono::DateTime<chrono::Utc>) -> ActionToken {
    ActionToken::issue(
        ActionTokenId::from_uuid(new_uuid()),
        token_hash(),
        TokenPurpose::Invitation,
        user,
        t0(),
        expires,
    )
}

async fn stale<S: Store>(
    store: &S,
    kind: StaleUsers,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Vec<UserId> {
    let mut found = ids(&store.stale_users(kind, cutoff, 100).await.unwrap());
    found.sort_unstable();
    found
}

/// Pending registrations count from their start, invitations from their start and the expiry
/// of their last link: each is found at its cut-off and not a microsecond before; active users
/// never are.
pub async fn stale_registrations_and_invitations_are_found_at_their_cutoffs<S: Store>(
    store: Arc<S>,
) {
    let c = setup_customer(&*store, "100000173").await;
    let pending = pending_user("stale.pending@example.com", "Paula", "Offen"); // created t0
    let no_link = invited(c.id(), "stale.nolink@example.com", at(10));
    let with_link = invited(c.id(), "stale.link@example.com", at(10));
    let active = employee(c.id(), "stale.active@example.com", "Anton", "Aktiv");
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(pending.clone()),
            Write::InsertUser(no_link.clone()),
            Write::InsertUser(with_link.clone()),
            Write::InsertUser(active),
            Write::InsertActionToken(invitation_link(with_link.id(), at(100))),
            Write::InsertActionToken(invitation_link(with_link.id(), at(50))),
        ]),
    )
    .await;
    let just_before = |t: chrono::DateTime<chrono::Utc>| t - chrono::TimeDelta::microseconds(1);
    let regs = StaleUsers::PendingRegistrations;
    assert!(stale(&*store, regs, just_before(t0())).await.is_empty());
    assert_eq!(stale(&*store, regs, t0()).await, [pending.id()]);
    assert_eq!(stale(&*store, regs, at(1_000)).await, [pending.id()]);
    let inv = StaleUsers::Invitations;
    assert!(stale(&*store, inv, just_before(at(10))).await.is_empty());
    assert_eq!(stale(&*store, inv, at(10)).await, [no_link.id()]);
    // The newest link (expiring at 100) keeps the invitation alive until its expiry.
    assert_eq!(
        stale(&*store, inv, just_before(at(100))).await,
        [no_link.id()]
    );
    let mut both = vec![no_link.id(), with_link.id()];
    both.sort_unstable();
    assert_eq!(stale(&*store, inv, at(100)).await, both);
    assert_eq!(
        store.stale_users(inv, at(100), 1).await.unwrap().len(),
        1,
        "limit"
    );
}

async fn chain_of<S: Store>(store: &S, customer: Option<CustomerId>, times: &[i64]) {
    for t in times {
        let mut commit = Commit::new();
        commit.audit(audit(
            customer,
            None,
            AuditCategory::UserCreated,
            "retention",
            at(*t),
        ));
        commit_ok(store, commit).await;
    }
}

/// What remains of a chain after retention verifies from its checkpoint, and appends go on.
async fn assert_verifies<S: Store>(store: &S, customer: Option<CustomerId>) {
    let rest = store.audit_chain(customer, 0, 1_000).await.unwrap();
    let (seq, hash) = store
        .audit_checkpoint(customer)
        .await
        .unwrap()
        .map_or((0, portal_core::audit::ChainHash::GENESIS), |c| {
            (c.seq, c.hash)
        });
    assert_eq!(
        rest.first().map(|e| e.seq),
        Some(seq + 1),
        "contiguous after the checkpoint"
    );
    verify_chain_from(&rest, seq, hash).expect("the rest verifies from the checkpoint");
}

/// Entries up to the first one after the cut-off go, the cut-off itself included; the
/// checkpoint holds the last removed entry's seq and hash; the remaining chain verifies from it
/// and new entries append after the head as before. Another chain is untouched.
pub async fn audit_retention_removes_the_old_start_of_each_chain_and_leaves_a_checkpoint<
    S: Store,
>(
    store: Arc<S>,
) {
    let c = setup_customer(&*store, "100000174").await;
    let other = setup_customer(&*store, "100000175").await;
    let chain = Some(c.id());
    chain_of(&*store, chain, &[10, 20, 30, 40]).await;
    chain_of(&*store, Some(other.id()), &[50, 60]).await;
    let before = store.audit_chain(chain, 0, 100).await.unwrap();
    assert_eq!(before.len(), 4);
    assert!(store.audit_checkpoint(chain).await.unwrap().is_none());

    let purge = |cutoff| store.purge_expired(Expired::AuditEntries, cutoff, 100);
    assert_eq!(
        purge(at(10) - chrono::TimeDelta::microseconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        purge(at(20)).await.unwrap(),
        2,
        "seq 1 and 2 (at the cut-off)"
    );
    let cp = store
        .audit_checkpoint(chain)
        .await
        .unwrap()
        .expect("checkpoint");
    assert_eq!((cp.seq, cp.hash), (before[1].seq, before[1].hash));
    assert_eq!(
        seqs(&store.audit_chain(chain, 0, 100).await.unwrap()),
        [3, 4]
    );
    assert_verifies(&*store, chain).await;
    assert_eq!(
        purge(at(20)).await.unwrap(),
        0,
        "nothing more at the same cut-off"
    );
    assert!(
        store
            .audit_checkpoint(Some(other.id()))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .audit_chain(Some(other.id()), 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );

    chain_of(&*store, chain, &[70]).await;
    let after = store.audit_chain(chain, 0, 100).await.unwrap();
    assert_eq!(seqs(&after), [3, 4, 5]);
    assert_eq!(after[2].prev_hash, before[3].hash);
    assert_verifies(&*store, chain).await;
}

/// A purge removes at most `limit` entries (callers repeat it); the newest entry of a chain
/// stays even when it is older than the cut-off, so the chain's head is never lost.
pub async fn audit_retention_goes_in_batches_and_never_removes_a_chains_newest_entry<S: Store>(
    store: Arc<S>,
) {
    let c = setup_customer(&*store, "100000176").await;
    let chain = Some(c.id());
    chain_of(&*store, chain, &[1, 2, 3, 4, 5]).await;
    let purge = || store.purge_expired(Expired::AuditEntries, at(1_000), 3);
    assert_eq!(purge().await.unwrap(), 3);
    assert_eq!(store.audit_checkpoint(chain).await.unwrap().unwrap().seq, 3);
    assert_verifies(&*store, chain).await;
    assert_eq!(purge().await.unwrap(), 1, "all but the newest");
    assert_eq!(seqs(&store.audit_chain(chain, 0, 100).await.unwrap()), [5]);
    assert_eq!(purge().await.unwrap(), 0);
    assert_verifies(&*store, chain).await;
    chain_of(&*store, chain, &[6]).await;
    assert_eq!(
        seqs(&store.audit_chain(chain, 0, 100).await.unwrap()),
        [5, 6]
    );
    assert_verifies(&*store, chain).await;
}
