//! Second factors, profile changes and login protection: MFA state on the user, session kinds
//! (pending second step, remembered device), e-mail change codes, rate counters.

use super::{is_conflict, reload_user, setup_customer};
use crate::Store;
use crate::fixtures::*;
use portal_core::ids::SessionId;
use portal_core::ports::Write;
use portal_core::secret::VerificationCode;
use portal_core::testing::SeededRandom;
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_second_factors {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; second_factors;
            mfa_state_round_trips_with_the_user,
            session_kinds_round_trip_and_update,
            email_change_challenges_round_trip,
            rate_counters_count_atomically_and_reset,
        );
    };
}

/// The second factors stored on a user round-trip exactly, and change only with the user's
/// version.
pub async fn mfa_state_round_trips_with_the_user<S: Store>(store: Arc<S>) {
    use portal_core::mfa::{
        PendingCode, PhoneChannel, PhoneFactor, PhoneNumber, RecoveryChannel, TotpFactor,
    };
    let c = setup_customer(&*store, "100000090").await;
    let mut u = employee(c.id(), "mfa@example.com", "Mia", "Faktor");
    u.change_mfa(
        |m| {
            m.totp = Some(TotpFactor {
                sealed_secret: "v1.c2VhbGVk".into(),
                last_used_step: 59_000_123,
                enrolled_at: at(1),
            });
            m.phone = Some(PhoneFactor {
                number: PhoneNumber::parse("+4917612345678").unwrap(),
                channel: PhoneChannel::Voice,
                enrolled_at: at(2),
            });
            m.pending_phone = Some(portal_core::mfa::PendingPhone {
                number: PhoneNumber::parse("+4917612345679").unwrap(),
                channel: PhoneChannel::Sms,
                code: PendingCode {
                    code_hash: token_hash(),
                    expires_at: at(600),
                    attempts_left: 4,
                },
            });
            m.recovery_code = Some(password_hash());
            m.recovery_channel = Some(RecoveryChannel::Email(email("r@example.org")));
            m.passkeys = vec![portal_core::passkey::Passkey {
                id: uuid::Uuid::from_u128(0xbeef),
                name: portal_core::passkey::PasskeyName::parse("Laptop „Büro“").unwrap(),
                credential_id: "AAECAwQFBgcICQ".into(),
                credential: "{\"cred\":{\"counter\":7}}".into(),
                counter: 7,
                backup_eligible: true,
                backup_state: false,
                created_at: at(5),
                last_used_at: Some(at(6)),
            }];
        },
        at(3),
    );
    commit_ok(&*store, writes([Write::InsertUser(u.clone())])).await;
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(got.mfa(), u.mfa(), "MFA state round trip");
    let mut next = got.clone();
    next.change_mfa(
        |m| {
            if let Some(t) = &mut m.totp {
                t.last_used_step += 1;
            }
        },
        at(4),
    );
    commit_ok(&*store, writes([Write::UpdateUser(next.clone())])).await;
    // The same step again from the old version: the version check refuses it.
    let e = commit_err(&*store, writes([Write::UpdateUser(next)])).await;
    assert!(is_conflict(&e), "stale MFA update: {e:?}");
    let stored = reload_user(&*store, u.id()).await;
    assert_eq!(
        stored.mfa().totp.as_ref().map(|t| t.last_used_step),
        Some(59_000_124)
    );
}

/// Pending second steps and remembered devices are stored with their kind; a pending step's
/// attempts and phone code are replaced by `UpdateSession`.
pub async fn session_kinds_round_trip_and_update<S: Store>(store: Arc<S>) {
    use portal_core::mfa::PendingCode;
    use portal_core::session::{ClientInfo, Session, SessionKind};
    let c = setup_customer(&*store, "100000091").await;
    let u = employee(c.id(), "kind@example.com", "Kim", "Kind");
    let pending_hash = token_hash();
    let device_hash = token_hash();
    let mut pending = Session::start_mfa_pending(
        SessionId::from_uuid(new_uuid()),
        pending_hash,
        u.id(),
        ClientInfo::new(Some("10.0.0.1"), Some("test")),
        chrono::TimeDelta::minutes(5),
        5,
        t0(),
    );
    let device = Session::start_remembered_device(
        SessionId::from_uuid(new_uuid()),
        device_hash,
        u.id(),
        ClientInfo::default(),
        chrono::TimeDelta::days(30),
        t0(),
    );
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(pending.clone()),
            Write::InsertSession(device.clone()),
        ]),
    )
    .await;
    let ctx = store
        .session_context(&device_hash, at(1))
        .await
        .unwrap()
        .expect("device");
    assert_eq!(ctx.session.kind(), &SessionKind::RememberedDevice);
    assert_eq!(ctx.session.record(), device.record());
    assert!(
        store
            .session_context(&device_hash, t0() + chrono::TimeDelta::days(30))
            .await
            .unwrap()
            .is_none(),
        "a device ends 30 days after it was remembered"
    );
    pending.spend_attempt();
    pending.set_phone_code(PendingCode {
        code_hash: token_hash(),
        expires_at: at(300),
        attempts_left: 5,
    });
    commit_ok(&*store, writes([Write::UpdateSession(pending.clone())])).await;
    let ctx = store
        .session_context(&pending_hash, at(1))
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(
        ctx.session.record(),
        pending.record(),
        "updated pending step"
    );
    // Updating a session that is gone is no error and creates nothing.
    let ghost = Session::start_mfa_pending(
        SessionId::from_uuid(new_uuid()),
        token_hash(),
        u.id(),
        ClientInfo::default(),
        chrono::TimeDelta::minutes(5),
        5,
        t0(),
    );
    commit_ok(&*store, writes([Write::UpdateSession(ghost.clone())])).await;
    assert_eq!(store.sessions_of_user(u.id()).await.unwrap().len(), 2);
}

/// An e-mail change challenge round-trips with its purpose and the new address.
pub async fn email_change_challenges_round_trip<S: Store>(store: Arc<S>) {
    use portal_core::challenge::{ChallengePurpose, CodePolicy, EmailChallenge};
    use portal_core::ids::ChallengeId;
    let c = setup_customer(&*store, "100000092").await;
    let u = employee(c.id(), "old@example.com", "Olga", "Alt");
    let ticket = token_hash();
    let code = VerificationCode::generate(&SeededRandom::new(3));
    let ch = EmailChallenge::issue(
        ChallengeId::from_uuid(new_uuid()),
        ticket,
        u.id(),
        ChallengePurpose::EmailChange,
        email("new@example.com"),
        &code,
        None,
        &CodePolicy::default(),
        t0(),
    );
    commit_ok(
        &*store,
        writes([Write::InsertUser(u), Write::InsertChallenge(ch.clone())]),
    )
    .await;
    let got = store
        .challenge_by_ticket(&ticket)
        .await
        .unwrap()
        .expect("challenge");
    assert_eq!(got.purpose(), ChallengePurpose::EmailChange);
    assert_eq!(got.email().as_str(), "new@example.com");
    assert_eq!(got.record().version, 1);
}

/// Rate counters count atomically, start again after their window, and can be reset.
pub async fn rate_counters_count_atomically_and_reset<S: Store>(store: Arc<S>) {
    let window = chrono::TimeDelta::hours(1);
    assert!(
        store
            .counter("login:account:a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.bump_counter("login:account:a@example.com", t0(), window)
                .await
                .unwrap()
                .count
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<_>>(),
        "no lost or doubled increments"
    );
    let c = store
        .counter("login:account:a@example.com")
        .await
        .unwrap()
        .expect("counter");
    assert_eq!((c.count, c.last_at), (20, t0()));
    let later = store
        .bump_counter(
            "login:account:a@example.com",
            t0() + window - chrono::TimeDelta::seconds(1),
            window,
        )
        .await
        .unwrap();
    assert_eq!(later.count, 21, "still inside the window of the last event");
    let fresh = store
        .bump_counter(
            "login:account:a@example.com",
            later.last_at + window,
            window,
        )
        .await
        .unwrap();
    assert_eq!(fresh.count, 1, "a quiet window starts the count again");
    store
        .reset_counter("login:account:a@example.com")
        .await
        .unwrap();
    assert!(
        store
            .counter("login:account:a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    store.reset_counter("never-set").await.unwrap();
    assert!(
        store.counter("login:ip:10.0.0.1").await.unwrap().is_none(),
        "keys are separate"
    );
}
