//! Imported old accounts ("Servicewelt", R8): the store's [`LegacyDirectory`](portal_core::ports::LegacyDirectory) finds them by
//! username, an import replaces them, and linking deletes the old hash in the same commit.

use super::{insert_users, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::legacy_hash::LegacyHash;
use portal_core::ports::{LegacyAccount, LegacyClaim, LegacyRecord, StoreError, UniqueKey, Write};
use portal_core::values::CustomerNumber;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_legacy {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; legacy;
            legacy_accounts_are_found_by_username_and_replaced_by_id,
            linking_an_old_account_deletes_its_hash_in_the_same_commit,
        );
    };
}

fn record(username: &str, number: &str, hash: &LegacyHash, seconds: i64) -> LegacyRecord {
    LegacyRecord {
        account: LegacyAccount {
            id: LegacyRecord::id_for(username),
            customer_number: CustomerNumber::parse(number).expect("a customer number"),
        },
        username: username.to_owned(),
        hash: Some(hash.clone()),
        imported_at: at(seconds),
    }
}

fn bcrypt() -> LegacyHash {
    LegacyHash::parse("$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a")
        .expect("a bcrypt hash")
}

/// An imported account is found by its username, trimmed and in any case, with its hash exactly
/// as imported; a second import of the same id replaces spelling, customer and hash; unknown
/// names find nothing.
pub async fn legacy_accounts_are_found_by_username_and_replaced_by_id<S: Store>(store: Arc<S>) {
    let pbkdf2 = LegacyHash::pbkdf2_sha256("alt", b"salz", 1_000).expect("a hash");
    let first = record("Mueller", "123456789", &bcrypt(), 1);
    let other = record("schmidt", "987654321", &pbkdf2, 1);
    commit_ok(
        &*store,
        writes([
            Write::PutLegacyAccount(first.clone()),
            Write::PutLegacyAccount(other.clone()),
        ]),
    )
    .await;
    for typed in ["Mueller", " mueller ", "MUELLER"] {
        assert_eq!(
            store.find(typed).await.unwrap(),
            Some(first.clone()),
            "{typed:?}"
        );
    }
    assert_eq!(store.find("schmidt").await.unwrap(), Some(other.clone()));
    assert_eq!(
        store
            .find("schmidt")
            .await
            .unwrap()
            .unwrap()
            .hash
            .unwrap()
            .as_str(),
        pbkdf2.as_str()
    );
    assert!(store.find("müller").await.unwrap().is_none());
    assert!(store.find("").await.unwrap().is_none());

    let replaced = record("MUELLER", "111111111", &pbkdf2, 2);
    commit_ok(&*store, writes([Write::PutLegacyAccount(replaced.clone())])).await;
    assert_eq!(store.find("mueller").await.unwrap(), Some(replaced));
    assert_eq!(store.find("schmidt").await.unwrap(), Some(other));
}

/// A claim deletes the old hash of its account in the same commit (the row stays, without a
/// hash); a failed claim (linked already) leaves the hash alone; a claim without an imported
/// account (another directory) still works.
pub async fn linking_an_old_account_deletes_its_hash_in_the_same_commit<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000065").await;
    let u = employee(c.id(), "alt@example.com", "Alt", "Konto");
    let v = employee(c.id(), "zweit@example.com", "Zweit", "Konto");
    insert_users(&*store, &[u.clone(), v.clone()]).await;
    let anna = record("anna", "100000065", &bcrypt(), 1);
    let bert = record("bert", "100000065", &bcrypt(), 1);
    commit_ok(
        &*store,
        writes([
            Write::PutLegacyAccount(anna.clone()),
            Write::PutLegacyAccount(bert.clone()),
        ]),
    )
    .await;
    let claim = |legacy_id: &str, user: &portal_core::user::User| LegacyClaim {
        legacy_id: legacy_id.to_owned(),
        user_id: user.id(),
        customer_id: c.id(),
        claimed_at: at(5),
    };
    // Bert's account was claimed before (by another directory): the duplicate claim fails and
    // the whole commit with it, Anna's hash included.
    commit_ok(
        &*store,
        writes([Write::InsertLegacyClaim(claim("legacy:other", &v))]),
    )
    .await;
    let e = commit_err(
        &*store,
        writes([
            Write::InsertLegacyClaim(claim(&anna.account.id, &u)),
            Write::InsertLegacyClaim(claim("legacy:other", &u)),
        ]),
    )
    .await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::LegacyAccount)),
        "got {e:?}"
    );
    assert_eq!(store.find("anna").await.unwrap(), Some(anna.clone()));
    assert!(
        store
            .legacy_claim(&anna.account.id)
            .await
            .unwrap()
            .is_none()
    );

    commit_ok(
        &*store,
        writes([Write::InsertLegacyClaim(claim(&anna.account.id, &u))]),
    )
    .await;
    let linked = store.find("anna").await.unwrap().expect("the row stays");
    assert_eq!(linked.hash, None, "the old hash is gone");
    assert_eq!(linked.account, anna.account);
    assert_eq!(
        store.find("bert").await.unwrap(),
        Some(bert),
        "others keep theirs"
    );
    assert_eq!(
        store
            .legacy_claim(&anna.account.id)
            .await
            .unwrap()
            .map(|c| c.user_id),
        Some(u.id())
    );
}
