//! Old "Servicewelt" accounts imported into the store (`portal legacy import`) and linked with
//! "Jetzt verknüpfen" (R8): checked before anything is written, idempotent, linked once with the
//! old hash deleted, unknown names verified against the dummy hash, failures throttled per name.

use crate::support::*;
use async_trait::async_trait;
use portal_core::audit::AuditCategory;
use portal_core::config::PortalConfig;
use portal_core::legacy_hash::LegacyHash;
use portal_core::password::{Password, PasswordHash};
use portal_core::ports::{HashError, LegacyDirectory, PasswordHasher};
use portal_core::secret::SecretString;
use portal_core::service::{LegacyImportError, LinkError, LinkOutcome, NewLegacyAccount};
use portal_core::session::ClientInfo;
use portal_core::testing::fast_hasher;
use portal_core::{Actor, Portal};
use std::sync::{Arc, Mutex};

const N: &str = "100000001";

/// Hashes as an old system made them: passlib's PBKDF2 (made with the crate), argon2id PHC of
/// the same password (made with the argon2 crate), bcrypt from the PHP manual.
fn pbkdf2(pw: &str) -> LegacyHash {
    LegacyHash::pbkdf2_sha256(pw, b"altes salz", 1_000).unwrap()
}

fn argon2id(pw: &str) -> LegacyHash {
    use argon2::password_hash::CustomizedPasswordHasher as _;
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    let h = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    )
    .hash_password_customized(pw.as_bytes(), b"saltsaltsaltsalt", None, None, params)
    .unwrap();
    LegacyHash::parse(&h.to_string()).unwrap()
}

const PHP_BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";

fn row(line: u64, username: &str, n: &str, hash: LegacyHash) -> NewLegacyAccount {
    NewLegacyAccount {
        line,
        username: username.into(),
        customer_number: number(n),
        hash,
    }
}

fn rows() -> Vec<NewLegacyAccount> {
    vec![
        row(2, "max.alt", N, pbkdf2("altes geheimnis")),
        row(3, "Rasmus", N, LegacyHash::parse(PHP_BCRYPT).unwrap()),
        row(4, "erika", N, argon2id("erikas passwort")),
    ]
}

/// The portal of the world with the store as its legacy directory (as `portal serve` wires it).
fn with_store_directory(w: &World, hasher: Arc<dyn PasswordHasher>) -> Portal {
    let mut deps = w.portal.deps().clone();
    deps.legacy = w.store.clone();
    deps.hasher = hasher;
    Portal::new(deps, PortalConfig::default(), w.portal.catalog().clone()).unwrap()
}

async fn linking_user(w: &World, address: &str) -> Actor {
    let (actor, _) = w.registered(address).await;
    w.portal
        .choose_affiliation(&actor, &affiliation())
        .await
        .unwrap();
    actor
}

fn no_progress(_: usize) {}

#[tokio::test]
async fn an_import_writes_every_row_once_and_again_changes_nothing() {
    let w = World::new();
    w.customer(N).await;
    let portal = with_store_directory(&w, Arc::new(fast_hasher(1)));
    let seen = Mutex::new(Vec::new());
    let progress = |n: usize| seen.lock().unwrap().push(n);
    let audit = w.audit_of(None).len();
    let report = portal
        .import_legacy_accounts(&Actor::System, &rows(), &progress)
        .await
        .unwrap();
    assert_eq!(
        (
            report.created,
            report.updated,
            report.unchanged,
            report.linked
        ),
        (3, 0, 0, 0)
    );
    assert_eq!(
        report.formats.keys().cloned().collect::<Vec<_>>(),
        [
            "argon2id m=64,t=1,p=1",
            "bcrypt cost=10",
            "pbkdf2-sha256 (modular crypt) rounds=1000"
        ]
    );
    assert_eq!(*seen.lock().unwrap(), [3]);
    let entries = w.audit_of(None);
    assert_eq!(entries.len(), audit + 1);
    let entry = entries.last().unwrap();
    assert_eq!(entry.record.category, AuditCategory::LegacyAccountsImported);
    assert_eq!(entry.record.details, "created=3; updated=0");
    let stored = w.store.find(" RASMUS ").await.unwrap().unwrap();
    assert_eq!(stored.username, "Rasmus");
    assert_eq!(stored.hash.unwrap().as_str(), PHP_BCRYPT);

    let counts = w.counts();
    let report = portal
        .import_legacy_accounts(&Actor::System, &rows(), &no_progress)
        .await
        .unwrap();
    assert_eq!(
        (
            report.created,
            report.updated,
            report.unchanged,
            report.linked
        ),
        (0, 0, 3, 0)
    );
    assert_eq!(w.counts(), counts, "the same file again changes nothing");
    assert_eq!(w.audit_of(None).len(), audit + 1);

    // A changed hash is an update.
    let mut changed = rows();
    changed[0].hash = pbkdf2("neues geheimnis");
    let report = portal
        .import_legacy_accounts(&Actor::System, &changed, &no_progress)
        .await
        .unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (0, 1, 2)
    );
}

#[tokio::test]
async fn a_file_with_any_bad_row_writes_nothing_and_names_every_problem() {
    let w = World::new();
    w.customer(N).await;
    let portal = with_store_directory(&w, Arc::new(fast_hasher(1)));
    let mut bad = rows();
    bad.push(row(5, "MAX.ALT ", N, pbkdf2("x")));
    bad.push(row(6, "niemand", "999999999", pbkdf2("x")));
    bad.push(row(7, "  ", N, pbkdf2("x")));
    bad.push(row(8, "tab\tname", N, pbkdf2("x")));
    let counts = w.counts();
    let err = portal
        .import_legacy_accounts(&Actor::System, &bad, &no_progress)
        .await
        .unwrap_err();
    let LegacyImportError::InvalidRows(problems) = err else {
        panic!("got {err:?}");
    };
    let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [5, 6, 7, 8], "{problems:?}");
    assert_eq!(problems[0].reason, "username: already on line 2");
    assert!(
        problems[1]
            .reason
            .starts_with("customer_number: no customer")
    );
    assert_eq!(w.counts(), counts);
    assert!(w.store.find("max.alt").await.unwrap().is_none());

    // Only operators import.
    let (anna, _) = w.registered("anna@example.com").await;
    let err = portal
        .import_legacy_accounts(&anna, &rows(), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, LegacyImportError::Forbidden), "got {err:?}");
    assert!(w.store.find("max.alt").await.unwrap().is_none());
}

#[tokio::test]
async fn every_hash_form_links_once_and_the_old_hash_is_deleted_in_the_same_commit() {
    let w = World::new();
    let c = w.customer(N).await;
    let portal = with_store_directory(&w, Arc::new(fast_hasher(1)));
    portal
        .import_legacy_accounts(&Actor::System, &rows(), &no_progress)
        .await
        .unwrap();
    for (i, (name, pw)) in [
        ("max.alt", "altes geheimnis"),
        ("RASMUS", "rasmuslerdorf"),
        ("erika", "erikas passwort"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = linking_user(&w, &format!("user{i}@example.com")).await;
        let audit = w.audit_of(Some(c.id())).len();
        let outcome = portal
            .link_legacy(&user, name, &SecretString::new(pw))
            .await
            .unwrap();
        assert_eq!(outcome, LinkOutcome::Active, "{name}");
        assert_eq!(w.user(id_of(&user)).await.customer_id(), Some(c.id()));
        let stored = w.store.find(name).await.unwrap().unwrap();
        assert!(stored.hash.is_none(), "{name}: the old hash is deleted");
        assert_eq!(
            w.audit_of(Some(c.id())).len(),
            audit + 1,
            "one commit: claim, hash deletion and its entry"
        );
    }
    // Once: another user with the right old password gets the answer of a wrong one (the hash
    // is gone, nothing tells the account exists).
    let dora = linking_user(&w, "dora@example.com").await;
    let err = portal
        .link_legacy(&dora, "max.alt", &SecretString::new("altes geheimnis"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LinkError::InvalidLegacyCredentials),
        "got {err:?}"
    );
    // Importing the file again does not bring a linked account's hash back.
    let report = portal
        .import_legacy_accounts(&Actor::System, &rows(), &no_progress)
        .await
        .unwrap();
    assert_eq!((report.linked, report.created, report.updated), (3, 0, 0));
    assert!(
        w.store
            .find("max.alt")
            .await
            .unwrap()
            .unwrap()
            .hash
            .is_none()
    );
}

/// Records which old hashes were verified, then verifies for real.
#[derive(Default)]
struct Recording {
    verified: Mutex<Vec<String>>,
}

#[async_trait]
impl PasswordHasher for Recording {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        fast_hasher(1).hash(password).await
    }
    async fn verify(&self, c: &SecretString, h: &PasswordHash) -> Result<bool, HashError> {
        fast_hasher(1).verify(c, h).await
    }
    async fn verify_dummy(&self, c: &SecretString) -> Result<bool, HashError> {
        fast_hasher(1).verify_dummy(c).await
    }
    fn needs_rehash(&self, _: &PasswordHash) -> bool {
        false
    }
    async fn verify_legacy(&self, c: &SecretString, h: &LegacyHash) -> Result<bool, HashError> {
        self.verified.lock().unwrap().push(h.as_str().to_owned());
        Ok(h.verify_blocking(c.expose()))
    }
}

#[tokio::test]
async fn unknown_and_linked_names_are_verified_against_the_dummy_hash() {
    let w = World::new();
    w.customer(N).await;
    let hasher = Arc::new(Recording::default());
    let portal = with_store_directory(&w, hasher.clone());
    portal
        .import_legacy_accounts(&Actor::System, &rows(), &no_progress)
        .await
        .unwrap();
    let anna = linking_user(&w, "anna@example.com").await;
    let dummy = PortalConfig::default().legacy_dummy_hash;
    assert_eq!(dummy.describe(), "bcrypt cost=10");
    let err = portal
        .link_legacy(&anna, "gibt.es.nicht", &SecretString::new("egal"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::InvalidLegacyCredentials));
    let err = portal
        .link_legacy(&anna, "rasmus", &SecretString::new("falsch"))
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::InvalidLegacyCredentials));
    assert_eq!(
        *hasher.verified.lock().unwrap(),
        [dummy.as_str(), PHP_BCRYPT],
        "one verification each: the dummy for the unknown name, the account's own hash"
    );
}

#[tokio::test]
async fn failures_on_one_old_name_are_throttled_across_users_and_addresses() {
    let w = World::new();
    w.customer(N).await;
    let portal = with_store_directory(&w, Arc::new(fast_hasher(1)));
    portal
        .import_legacy_accounts(&Actor::System, &rows(), &no_progress)
        .await
        .unwrap();
    // Three guessers, each from their own address, under their own user throttle (5 free).
    for (i, ip) in ["192.0.2.1", "192.0.2.2"].into_iter().enumerate() {
        let guesser = linking_user(&w, &format!("guesser{i}@example.com")).await;
        for n in 0..3 {
            let err = portal
                .link_legacy_from(
                    &guesser,
                    "Max.Alt",
                    &SecretString::new(format!("rate {n}")),
                    &ClientInfo::new(Some(ip), Some("test")),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, LinkError::InvalidLegacyCredentials),
                "got {err:?}"
            );
        }
    }
    // Six failures on the name: the next attempt on it waits, even with the right password, from
    // a fresh user and address; another name is not held up.
    let owner = linking_user(&w, "owner@example.com").await;
    let fresh = ClientInfo::new(Some("198.51.100.7"), Some("test"));
    let err = portal
        .link_legacy_from(
            &owner,
            "max.alt",
            &SecretString::new("altes geheimnis"),
            &fresh,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::Throttled { .. }), "got {err:?}");
    let other = linking_user(&w, "other@example.com").await;
    portal
        .link_legacy_from(
            &other,
            "erika",
            &SecretString::new("erikas passwort"),
            &fresh,
        )
        .await
        .unwrap();
    w.advance(seconds(2));
    portal
        .link_legacy_from(
            &owner,
            "max.alt",
            &SecretString::new("altes geheimnis"),
            &fresh,
        )
        .await
        .unwrap();
}
