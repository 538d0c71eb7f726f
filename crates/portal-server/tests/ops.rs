//! Backups, restores and the change of the server secret (issue 17, item 2), on real SQLite
//! files: a backup under concurrent writes restored into a fresh directory, a restore or start
//! with another secret refused, and the whole rotation cycle (seal with the old secret, configure
//! new + old, both open, rotate, only the new one opens everything).

use adapters_postgres::SqlStore;
use portal_core::audit::AuditCategory;
use portal_core::config::PortalConfig;
use portal_core::customer::AffiliationKey;
use portal_core::customer::ServiceChannel;
use portal_core::permission::PermissionCatalog;
use portal_core::ports::Queries as _;
use portal_core::secret::SecretString;
use portal_core::secretbox::{self, MfaKeyring};
use portal_core::service::{
    AuditListQuery, CompleteMfa, Login, LoginOutcome, NewCustomer, SealingKeyError, SecondFactor,
};
use portal_core::session::ClientInfo;
use portal_core::testing::ManualClock;
use portal_core::totp::{self, TotpSecret};
use portal_core::values::{CompanyName, CustomerNumber};
use portal_core::{Actor, Deps, Portal};
use portal_server::app;
use portal_server::config::Database;
use portal_server::demo;
use portal_server::ops;
use portal_server::secrets::ServerSecret;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn secret(n: u8) -> ServerSecret {
    ServerSecret::from_bytes([n; 32])
}

/// The portal's keys with `current` sealing and `old` still opening.
fn keys(current: &ServerSecret, old: &[&ServerSecret]) -> PortalConfig {
    PortalConfig {
        mfa_key: Some(current.mfa_key()),
        mfa_previous_keys: old.iter().map(|s| s.mfa_key()).collect(),
        counter_key: Some(current.counter_key()),
        ..PortalConfig::default()
    }
}

struct Site {
    store: Arc<SqlStore>,
    portal: Arc<Portal>,
}

/// The portal on the SQLite file `file` (migrated), with `config` and a manual clock.
async fn site(file: &Path, config: PortalConfig, clock: &Arc<ManualClock>) -> Site {
    let db = Database::parse(file.to_str().unwrap()).unwrap();
    let store = Arc::new(app::open_store(&db).await.unwrap().0);
    let mut deps = Deps::production(store.clone());
    deps.clock = clock.clone();
    let portal = Portal::new(deps, config, PermissionCatalog::default()).unwrap();
    Site {
        store,
        portal: Arc::new(portal),
    }
}

fn client() -> ClientInfo {
    ClientInfo::new(Some("127.0.0.1"), Some("ops test"))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(chrono::Utc::now()))
}

async fn login(portal: &Portal, email: &str) -> LoginOutcome {
    portal
        .login(Login {
            email: email.into(),
            password: SecretString::new(demo::DEMO_PASSWORD),
            client: client(),
        })
        .await
        .unwrap()
}

/// Sets up an authenticator app for `email` (logged in without one); the clock then moves a
/// step on so the next code is fresh.
async fn enable_totp(portal: &Portal, clock: &ManualClock, email: &str) -> TotpSecret {
    let LoginOutcome::Authenticated(session) = login(portal, email).await else {
        panic!("{email} needs no second factor yet");
    };
    let principal = portal.authenticate(session.token.expose()).await.unwrap();
    let enrolment = portal.start_totp_enrolment(&principal).await.unwrap();
    let secret = TotpSecret::from_base32(enrolment.secret_base32()).unwrap();
    let code = totp::code_at(&secret, portal_core::ports::Clock::now(clock));
    portal.confirm_totp(&principal, &code).await.unwrap();
    clock.advance(chrono::TimeDelta::seconds(30));
    secret
}

/// Logs in with password and authenticator code; whether it ended in a session.
async fn login_with_totp(portal: &Portal, clock: &ManualClock, email: &str, totp: &TotpSecret) {
    let LoginOutcome::MfaRequired(pending) = login(portal, email).await else {
        panic!("{email} should need the second factor");
    };
    let code = totp::code_at(totp, portal_core::ports::Clock::now(clock));
    let done = portal
        .complete_mfa(CompleteMfa {
            token: pending.token.expose().to_owned(),
            factor: SecondFactor::Totp(code),
            remember_device: false,
            client: client(),
        })
        .await;
    assert!(done.is_ok(), "{email}: {done:?}");
    clock.advance(chrono::TimeDelta::seconds(30));
}

fn new_customer(i: u32) -> NewCustomer {
    NewCustomer {
        number: CustomerNumber::parse(&format!("{}", 700_000_000 + i)).unwrap(),
        name: CompanyName::parse(&format!("Lastkunde {i} GmbH")).unwrap(),
        affiliations: [AffiliationKey::parse("de-business").unwrap()].into(),
        channel: ServiceChannel::Direct,
        entitlements: None,
        default_permissions: None,
    }
}

async fn verify_chains(portal: &Portal, numbers: &[CustomerNumber]) {
    let global = portal.verify_audit_chain(&Actor::System, None).await;
    assert!(global.is_ok(), "global chain: {global:?}");
    for n in numbers {
        let r = portal.verify_audit_chain(&Actor::System, Some(n)).await;
        assert!(r.is_ok(), "chain of {n}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_answered_change_with_logins_and_totp() {
    let dir = tempfile::tempdir().unwrap();
    let (live, fresh) = (dir.path().join("live"), dir.path().join("fresh"));
    std::fs::create_dir_all(&live).unwrap();
    let file = live.join("portal.db");
    let clock = clock();
    let server_secret = secret(1);
    let a = site(&file, keys(&server_secret, &[]), &clock).await;
    a.portal.check_sealing_keys().await.unwrap();
    demo::seed(a.store.clone(), keys(&server_secret, &[]))
        .await
        .unwrap();
    let anna_totp = enable_totp(&a.portal, &clock, demo::ADMIN.email).await;

    // A second task writes customers (each with its change-log entry) without pause and
    // reports every change once it was answered, with whether it began after the backup had
    // returned.
    let stop = Arc::new(AtomicBool::new(false));
    let backed_up = Arc::new(AtomicBool::new(false));
    let (tx, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn({
        let (portal, stop, backed_up) = (a.portal.clone(), stop.clone(), backed_up.clone());
        async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let began_after_backup = backed_up.load(Ordering::SeqCst);
                let c = portal
                    .create_customer(&Actor::System, &new_customer(i))
                    .await
                    .expect("write under load");
                tx.send((c.number().clone(), began_after_backup)).unwrap();
                i += 1;
            }
        }
    });
    let mut before = Vec::new();
    while before.len() < 25 {
        before.push(answered.recv().await.unwrap().0);
    }
    while let Ok((n, _)) = answered.try_recv() {
        before.push(n);
    }
    let backup = dir.path().join("backup.db");
    let bytes = ops::backup_sqlite(&a.store, &backup).await.unwrap();
    backed_up.store(true, Ordering::SeqCst);
    assert!(bytes > 0);
    // The writer was not blocked: it goes on writing after the backup; the first change it
    // began once the backup had returned is `after`.
    let after = loop {
        let (n, began_after_backup) = answered.recv().await.unwrap();
        if began_after_backup {
            break n;
        }
    };
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the backup holds password hashes");
    let again = ops::backup_sqlite(&a.store, &backup).await.unwrap_err();
    assert!(again.0.contains("exists already"), "{again}");

    // Into a fresh directory, with the same secret.
    let target = fresh.join("portal.db");
    let report = ops::restore_sqlite(&backup, &target, false, keys(&server_secret, &[]))
        .await
        .unwrap();
    assert!(report.bytes > 0);
    let b = site(&target, keys(&server_secret, &[]), &clock).await;
    for n in &before {
        assert!(
            b.store.customer_by_number(n).await.unwrap().is_some(),
            "{n} was answered before the backup began"
        );
    }
    assert!(
        portal_core::ports::Queries::customer_by_number(&*a.store, &after)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        b.store.customer_by_number(&after).await.unwrap().is_none(),
        "{after} began after the backup had returned: not in the copy"
    );
    let mut chains = before.clone();
    chains.push(CustomerNumber::parse(demo::DEMO_CUSTOMER).unwrap());
    verify_chains(&b.portal, &chains).await;
    login_with_totp(&b.portal, &clock, demo::ADMIN.email, &anna_totp).await;
    assert!(matches!(
        login(&b.portal, demo::BEN.email).await,
        LoginOutcome::Authenticated(_)
    ));

    // A database with data is not replaced unless forced; nothing changes.
    let refused = ops::restore_sqlite(&backup, &target, false, keys(&server_secret, &[]))
        .await
        .unwrap_err();
    assert!(refused.0.contains("--force"), "{refused}");
    let forced = ops::restore_sqlite(&backup, &file, true, keys(&server_secret, &[])).await;
    assert!(forced.is_ok(), "{forced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_secret_is_refused_at_start_and_at_restore() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.db");
    let clock = clock();
    let right = secret(1);
    let a = site(&file, keys(&right, &[]), &clock).await;
    a.portal.check_sealing_keys().await.unwrap();
    demo::seed(a.store.clone(), keys(&right, &[]))
        .await
        .unwrap();
    enable_totp(&a.portal, &clock, demo::ADMIN.email).await;
    let backup = dir.path().join("backup.db");
    ops::backup_sqlite(&a.store, &backup).await.unwrap();

    let wrong = site(&file, keys(&secret(2), &[]), &clock).await;
    let e = wrong.portal.check_sealing_keys().await.unwrap_err();
    assert!(matches!(e, SealingKeyError::UnknownKeys { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("another server secret"), "{message}");
    assert!(
        message.contains(&right.mfa_key().id()),
        "names the key id: {message}"
    );
    assert!(
        !message.contains(right.to_base64().as_str()),
        "never the secret"
    );
    assert_eq!(
        wrong.store.sealing_keys().await.unwrap(),
        [right.mfa_key().id()],
        "nothing recorded for the wrong secret"
    );

    let target = dir.path().join("elsewhere").join("portal.db");
    let e = ops::restore_sqlite(&backup, &target, false, keys(&secret(2), &[]))
        .await
        .unwrap_err();
    assert!(e.0.contains("another server secret"), "{e}");
    assert!(!target.exists(), "nothing restored");
    let leftovers = std::fs::read_dir(target.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 0, "no temporary file left");
}

/// A database from before key ids were recorded: the check opens a stored value instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_recorded_ids_a_stored_value_decides() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.db");
    let clock = clock();
    let right = secret(1);
    let a = site(&file, keys(&right, &[]), &clock).await;
    demo::seed(a.store.clone(), keys(&right, &[]))
        .await
        .unwrap();
    enable_totp(&a.portal, &clock, demo::ADMIN.email).await;
    assert!(a.store.sealing_keys().await.unwrap().is_empty());
    let wrong = site(&file, keys(&secret(2), &[]), &clock).await;
    let e = wrong.portal.check_sealing_keys().await.unwrap_err();
    assert!(matches!(e, SealingKeyError::Unopenable(_)), "{e:?}");
    assert!(wrong.store.sealing_keys().await.unwrap().is_empty());
    a.portal.check_sealing_keys().await.unwrap();
    assert_eq!(
        a.store.sealing_keys().await.unwrap(),
        [right.mfa_key().id()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_seals_with_the_new_secret_and_after_it_only_the_new_one_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.db");
    let clock = clock();
    let (old, new) = (secret(1), secret(2));
    let (old_id, new_id) = (old.mfa_key().id(), new.mfa_key().id());

    // Sealed with the old secret: an authenticator app and a signing key.
    let a = site(&file, keys(&old, &[]), &clock).await;
    a.portal.check_sealing_keys().await.unwrap();
    demo::seed(a.store.clone(), keys(&old, &[])).await.unwrap();
    let anna = enable_totp(&a.portal, &clock, demo::ADMIN.email).await;
    let kid = a.portal.rotate_signing_key(&Actor::System).await.unwrap();

    // New + old configured: both open, the new one seals.
    let b = site(&file, keys(&new, &[&old]), &clock).await;
    b.portal.check_sealing_keys().await.unwrap();
    assert_eq!(b.store.sealing_keys().await.unwrap().len(), 2);
    login_with_totp(&b.portal, &clock, demo::ADMIN.email, &anna).await;
    let ben = enable_totp(&b.portal, &clock, demo::BEN.email).await;
    let ben_user = b
        .store
        .user_by_email(&portal_core::values::EmailAddress::parse(demo::BEN.email).unwrap())
        .await
        .unwrap()
        .unwrap();
    let ben_sealed = &ben_user.mfa().totp.as_ref().unwrap().sealed_secret;
    assert_eq!(secretbox::key_id_of(ben_sealed), Ok(Some(new_id.as_str())));
    login_with_totp(&b.portal, &clock, demo::BEN.email, &ben).await;

    // Before the rotation the new secret alone is refused: the old one is still needed.
    let only_new = site(&file, keys(&new, &[]), &clock).await;
    let e = only_new.portal.check_sealing_keys().await.unwrap_err();
    assert!(
        matches!(&e, SealingKeyError::UnknownKeys { ids } if ids == std::slice::from_ref(&old_id)),
        "{e:?}"
    );

    let report = b.portal.reseal_secrets(&Actor::System).await.unwrap();
    assert_eq!(
        report.users, 1,
        "Anna's app; Ben's is sealed under the new key already"
    );
    assert_eq!(report.signing_keys, 1);
    assert_eq!(report.retired, std::slice::from_ref(&old_id));
    assert_eq!(report.current, new_id);
    let again = b.portal.reseal_secrets(&Actor::System).await.unwrap();
    assert_eq!(
        (again.users, again.signing_keys),
        (0, 0),
        "nothing left to do"
    );
    assert!(again.retired.is_empty());

    // Only the new secret from now on: it opens everything, the old one alone is refused.
    only_new.portal.check_sealing_keys().await.unwrap();
    login_with_totp(&only_new.portal, &clock, demo::ADMIN.email, &anna).await;
    login_with_totp(&only_new.portal, &clock, demo::BEN.email, &ben).await;
    let ring = MfaKeyring::new(new.mfa_key(), vec![]);
    let key = only_new
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap();
    assert_eq!(
        secretbox::key_id_of(&key.sealed_private_key),
        Ok(Some(new_id.as_str()))
    );
    assert!(
        ring.open(
            &key.sealed_private_key,
            format!("oidc-signing-key:{kid}").as_bytes()
        )
        .is_ok()
    );
    let only_old = site(&file, keys(&old, &[]), &clock).await;
    assert!(matches!(
        only_old.portal.check_sealing_keys().await,
        Err(SealingKeyError::UnknownKeys { .. })
    ));

    // Audited: the re-seal in Anna's customer log, the key changes in the global one.
    let number = CustomerNumber::parse(demo::DEMO_CUSTOMER).unwrap();
    let page = only_new
        .portal
        .customer_audit(
            &Actor::System,
            &number,
            &AuditListQuery {
                categories: vec![AuditCategory::SecretResealed],
                ..AuditListQuery::default()
            },
            portal_core::values::Language::En,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    assert!(page.items[0].entry.record.details.contains(&new_id));
    verify_chains(&only_new.portal, &[number]).await;
}

/// A process still running with the old secret seals a value after the re-seal pass: the old
/// key id is not forgotten (the value would be lost), and the next rotation re-seals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_sealed_with_the_old_secret_after_the_reseal_pass_keeps_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.db");
    let clock = clock();
    let (old, new) = (secret(1), secret(2));
    let old_id = old.mfa_key().id();
    let a = site(&file, keys(&old, &[]), &clock).await;
    a.portal.check_sealing_keys().await.unwrap();
    demo::seed(a.store.clone(), keys(&old, &[])).await.unwrap();
    let anna = enable_totp(&a.portal, &clock, demo::ADMIN.email).await;

    let b = site(&file, keys(&new, &[&old]), &clock).await;
    let pass = b.portal.reseal_sealed_values(&Actor::System).await.unwrap();
    assert_eq!(pass.users, 1, "Anna's app");
    assert!(pass.retired.is_empty());
    // `a` still runs with the old secret alone and seals Ben's app with it.
    let ben = enable_totp(&a.portal, &clock, demo::BEN.email).await;

    let e = b
        .portal
        .retire_sealing_keys(&Actor::System)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SealingKeyError::StillSealedWithOldKey(what) if what.contains("authenticator")),
        "{e:?}"
    );
    assert!(e.to_string().contains("every process"), "{e}");
    assert_eq!(
        b.store.sealing_keys().await.unwrap().len(),
        2,
        "nothing forgotten"
    );

    // Every process on the new secret: the rotation re-seals Ben's app and forgets the old key.
    let report = b.portal.reseal_secrets(&Actor::System).await.unwrap();
    assert_eq!(report.users, 1, "Ben's app");
    assert_eq!(report.retired, std::slice::from_ref(&old_id));
    let only_new = site(&file, keys(&new, &[]), &clock).await;
    only_new.portal.check_sealing_keys().await.unwrap();
    login_with_totp(&only_new.portal, &clock, demo::ADMIN.email, &anna).await;
    login_with_totp(&only_new.portal, &clock, demo::BEN.email, &ben).await;
}

#[test]
fn backup_and_restore_refuse_postgres_with_a_pointer_to_pg_dump() {
    assert!(ops::POSTGRES_BACKUP_HINT.contains("pg_dump"));
    assert!(ops::POSTGRES_BACKUP_HINT.contains("docs/operations.md"));
}
