//! Passkey ceremonies' challenges (migration 000007): stored and read back as written, answered
//! at most once (decided by the store), purged once expired. The passkeys themselves live in the
//! user's second factors and round-trip with the user (see `second_factors`).

use super::is_conflict;
use crate::Store;
use crate::fixtures::*;
use portal_core::ids::UserId;
use portal_core::passkey::{CHALLENGE_TTL, ChallengePurpose, PasskeyChallenge};
use portal_core::ports::{Commit, Expired, Write};
use std::sync::Arc;
use uuid::Uuid;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_passkeys {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; passkeys;
            passkey_challenges_round_trip_and_expire,
            a_passkey_challenge_is_answered_at_most_once,
        );
    };
}

fn challenge(n: u128, user: Option<UserId>, purpose: ChallengePurpose) -> PasskeyChallenge {
    PasskeyChallenge {
        id: Uuid::from_u128(0x7a55_0000 + n),
        user,
        purpose,
        state: format!("{{\"state\":{n},\"text\":\"ä\"}}"),
        created_at: t0(),
        expires_at: t0() + CHALLENGE_TTL,
        used_at: None,
    }
}

/// Every field comes back as written (no user for a sign-in); unknown ids read as none; the
/// housekeeping purge removes expired challenges only.
pub async fn passkey_challenges_round_trip_and_expire<S: Store>(store: Arc<S>) {
    let user = UserId::from_uuid(Uuid::from_u128(77));
    let register = challenge(1, Some(user), ChallengePurpose::Register);
    let sign_in = challenge(2, None, ChallengePurpose::SignIn);
    let mut later = challenge(3, Some(user), ChallengePurpose::SecondFactor);
    later.expires_at = t0() + chrono::TimeDelta::hours(1);
    commit_ok(
        &*store,
        writes([
            Write::InsertPasskeyChallenge(register.clone()),
            Write::InsertPasskeyChallenge(sign_in.clone()),
            Write::InsertPasskeyChallenge(later.clone()),
        ]),
    )
    .await;
    for c in [&register, &sign_in, &later] {
        assert_eq!(
            store.passkey_challenge(c.id).await.unwrap().as_ref(),
            Some(c),
            "round trip"
        );
    }
    assert_eq!(
        store.passkey_challenge(Uuid::from_u128(1)).await.unwrap(),
        None
    );
    let n = store
        .purge_expired(Expired::PasskeyChallenges, t0() + CHALLENGE_TTL, 100)
        .await
        .unwrap();
    assert_eq!(n, 2, "the two expired ones");
    assert_eq!(store.passkey_challenge(register.id).await.unwrap(), None);
    assert_eq!(store.passkey_challenge(sign_in.id).await.unwrap(), None);
    assert_eq!(
        store.passkey_challenge(later.id).await.unwrap().as_ref(),
        Some(&later)
    );
}

/// Of two answers to one challenge exactly one commits, and nothing of the other's commit is
/// kept; answering an unknown or used challenge conflicts.
pub async fn a_passkey_challenge_is_answered_at_most_once<S: Store>(store: Arc<S>) {
    let c = challenge(4, None, ChallengePurpose::SignIn);
    commit_ok(&*store, writes([Write::InsertPasskeyChallenge(c.clone())])).await;
    let marker = |n: u128| challenge(10 + n, None, ChallengePurpose::SignIn);
    let mut first = Commit::new();
    first
        .write(Write::UsePasskeyChallenge { id: c.id, at: t0() })
        .write(Write::InsertPasskeyChallenge(marker(1)));
    let mut second = Commit::new();
    second
        .write(Write::UsePasskeyChallenge { id: c.id, at: t0() })
        .write(Write::InsertPasskeyChallenge(marker(2)));
    let (a, b) = tokio::join!(store.commit(first), store.commit(second));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one answer wins: {a:?} {b:?}"
    );
    let loser = if a.is_ok() { marker(2) } else { marker(1) };
    assert_eq!(
        store.passkey_challenge(loser.id).await.unwrap(),
        None,
        "nothing of the losing commit"
    );
    let used = store.passkey_challenge(c.id).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(t0()));
    let again = store
        .commit(writes([Write::UsePasskeyChallenge { id: c.id, at: t0() }]))
        .await
        .unwrap_err();
    assert!(is_conflict(&again), "{again:?}");
    let unknown = store
        .commit(writes([Write::UsePasskeyChallenge {
            id: Uuid::from_u128(5),
            at: t0(),
        }]))
        .await
        .unwrap_err();
    assert!(is_conflict(&unknown), "{unknown:?}");
}
