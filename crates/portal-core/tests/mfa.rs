//! Second factors (manual chapter 4, R16–R19): TOTP enrolment and login, replay protection, the
//! partial login state, recovery code and channel, SMS/voice codes, remembered devices, removal.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::mfa::{MfaMethod, PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::ports::{Clock, Commit, Committer, Counter, StoreError};
use portal_core::secret::SecretString;
use portal_core::service::{
    CodeError, CompleteMfa, IssuedSession, Login, LoginError, LoginOutcome, MfaError, MfaLogin,
    PendingMfaLogin, SecondFactor,
};
use portal_core::totp::{self, TotpSecret};
use portal_core::{Deps, Portal};
use std::sync::Arc;

/// An active user with an authenticator app; returns the secret, the recovery code and the
/// session used to set it up.
async fn with_totp(w: &World, address: &str) -> (TotpSecret, String, IssuedSession) {
    let (_, session) = w.registered(address).await;
    let p = w.principal(&session).await;
    let enrolment = w.portal.start_totp_enrolment(&p).await.unwrap();
    let secret = TotpSecret::from_base32(enrolment.secret_base32()).unwrap();
    let code = totp::code_at(&secret, w.clock.now());
    let enabled = w.portal.confirm_totp(&p, &code).await.unwrap();
    let recovery = enabled
        .recovery_code
        .expect("first factor issues a recovery code");
    // The enrolment used the current step; the next login needs the next one.
    w.advance(TimeDelta::seconds(30));
    (secret, recovery.expose().to_owned(), session)
}

async fn password_step(w: &World, address: &str) -> PendingMfaLogin {
    match w
        .portal
        .login(Login {
            email: address.into(),
            password: PASSWORD.into(),
            client: client(),
        })
        .await
        .unwrap()
    {
        LoginOutcome::MfaRequired(p) => p,
        LoginOutcome::Authenticated(_) => panic!("{address} logged in without a second factor"),
    }
}

async fn finish(
    w: &World,
    pending: &PendingMfaLogin,
    factor: SecondFactor,
    remember: bool,
) -> Result<MfaLogin, MfaError> {
    w.portal
        .complete_mfa(CompleteMfa {
            token: pending.token.expose().to_owned(),
            factor,
            remember_device: remember,
            client: client(),
        })
        .await
}

fn totp_now(w: &World, secret: &TotpSecret) -> SecondFactor {
    SecondFactor::Totp(totp::code_at(secret, w.clock.now()))
}

#[tokio::test]
async fn enrolment_shows_uri_and_qr_and_the_first_code_turns_the_factor_on() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let e = w.portal.start_totp_enrolment(&p).await.unwrap();
    assert!(
        e.otpauth_uri()
            .starts_with("otpauth://totp/Portal:anna%40example.com?"),
        "{}",
        e.otpauth_uri()
    );
    assert!(e.qr_svg().contains("<svg"));
    assert!(e.qr_png_data_uri().starts_with("data:image/png;base64,"));
    let user = w.user(session.user_id).await;
    assert!(!user.mfa().is_enabled(), "not before the first code");
    assert!(user.mfa().pending_totp.is_some());
    let stored = format!("{:?}", user.mfa());
    assert!(
        !stored.contains(e.secret_base32()),
        "the secret is stored sealed"
    );

    let secret = TotpSecret::from_base32(e.secret_base32()).unwrap();
    let wrong = SecretString::new(
        if totp::code_at(&secret, w.clock.now()).expose() == "000000" {
            "111111"
        } else {
            "000000"
        },
    );
    let err = w.portal.confirm_totp(&p, &wrong).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let enabled = w
        .portal
        .confirm_totp(&p, &totp::code_at(&secret, w.clock.now()))
        .await
        .unwrap();
    assert!(enabled.recovery_code.is_some());
    assert!(w.user(session.user_id).await.mfa().is_enabled());
    assert!(w.mail_kinds_to("anna@example.com").contains(&"mfa_enabled"));
    let err = w.portal.start_totp_enrolment(&p).await.unwrap_err();
    assert!(
        matches!(err, MfaError::AlreadyEnabled),
        "the seed cannot be re-read: {err:?}"
    );
}

#[tokio::test]
async fn setting_up_a_factor_needs_a_recent_login() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.advance(TimeDelta::minutes(15) + TimeDelta::seconds(1));
    let p = w.principal(&session).await;
    let err = w.portal.start_totp_enrolment(&p).await.unwrap_err();
    assert!(matches!(err, MfaError::ReauthRequired), "got {err:?}");
    let fresh = w
        .portal
        .reauthenticate(&p, &PASSWORD.into(), None, client())
        .await
        .unwrap();
    assert!(
        w.portal.authenticate(session.token.expose()).await.is_err(),
        "re-authentication rotates the token"
    );
    let p = w.principal(&fresh).await;
    w.portal.start_totp_enrolment(&p).await.unwrap();
}

#[tokio::test]
async fn with_totp_the_password_only_yields_a_pending_state_that_authenticates_nothing() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let pending = password_step(&w, "anna@example.com").await;
    assert!(pending.methods.contains(&MfaMethod::Totp));
    assert!(pending.methods.contains(&MfaMethod::RecoveryCode));
    assert!(
        w.portal.authenticate(pending.token.expose()).await.is_err(),
        "a pending login is not a session"
    );
    let login = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap();
    assert_ne!(
        login.session.token.expose(),
        pending.token.expose(),
        "a new token"
    );
    w.principal(&login.session).await;
    let again = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(
        matches!(again, MfaError::NoPendingLogin),
        "the pending token died: {again:?}"
    );
}

#[tokio::test]
async fn the_pending_state_expires_after_five_minutes() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let pending = password_step(&w, "anna@example.com").await;
    w.advance(TimeDelta::minutes(5));
    let err = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoPendingLogin), "got {err:?}");

    let pending = password_step(&w, "anna@example.com").await;
    w.advance(TimeDelta::minutes(5) - TimeDelta::seconds(1));
    finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_totp_code_is_accepted_once_and_older_steps_never_after_a_newer_one() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let code = totp_now(&w, &secret);
    let first = password_step(&w, "anna@example.com").await;
    finish(&w, &first, code.clone(), false).await.unwrap();
    let second = password_step(&w, "anna@example.com").await;
    let err = finish(&w, &second, code, false).await.unwrap_err();
    // A replay is told apart from a wrong code: it was right, and the next one will do.
    assert!(
        matches!(err, MfaError::Code(CodeError::Used)),
        "replay: {err:?}"
    );
    // The previous step is still inside the ±1 window but older than the used one.
    let previous = SecondFactor::Totp(totp::code_at(
        &secret,
        w.clock.now() - TimeDelta::seconds(30),
    ));
    let err = finish(&w, &second, previous, false).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Used)),
        "older step: {err:?}"
    );
    let wrong = SecondFactor::Totp(SecretString::new("000000"));
    let err = finish(&w, &second, wrong, false).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "wrong: {err:?}"
    );
    w.advance(TimeDelta::seconds(30));
    finish(&w, &second, totp_now(&w, &secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn one_step_of_drift_is_tolerated_two_are_not() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    for (offset, ok) in [(-60, false), (60, false), (30, true)] {
        let pending = password_step(&w, "anna@example.com").await;
        let code = SecondFactor::Totp(totp::code_at(
            &secret,
            w.clock.now() + TimeDelta::seconds(offset),
        ));
        let r = finish(&w, &pending, code, false).await;
        assert_eq!(r.is_ok(), ok, "offset {offset}: {r:?}");
        w.advance(TimeDelta::seconds(90));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_of_one_code_succeed_exactly_once() {
    let w = Arc::new(World::new());
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let mut pendings = Vec::new();
    for _ in 0..20 {
        pendings.push(password_step(&w, "anna@example.com").await);
    }
    let code = totp::code_at(&secret, w.clock.now());
    let barrier = Arc::new(tokio::sync::Barrier::new(pendings.len()));
    let tasks: Vec<_> = pendings
        .into_iter()
        .map(|p| {
            let (w, code, barrier) = (w.clone(), code.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                finish(&w, &p, SecondFactor::Totp(code), false).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            // Losers see a replayed code (or, once their failures pile up, the throttle).
            Err(MfaError::Code(CodeError::Used) | MfaError::Throttled { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one submission of a step wins");
}

/// A committer over the store whose counter bumps first let every other task run, so concurrent
/// requests all read the send budget before any of them counts: the worst interleaving, every
/// time.
struct BumpsAfterEveryRead(Arc<adapters_memory::MemoryStore>);

#[async_trait::async_trait]
impl Committer for BumpsAfterEveryRead {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        self.0.commit(commit).await
    }

    async fn touch_session(
        &self,
        id: portal_core::ids::SessionId,
        last_seen_at: chrono::DateTime<chrono::Utc>,
        idle_expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.0
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
        reset_after: TimeDelta,
    ) -> Result<Counter, StoreError> {
        tokio::task::yield_now().await;
        self.0.bump_counter(key, now, reset_after).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.0.reset_counter(key).await
    }

    async fn purge_expired(
        &self,
        kind: portal_core::ports::Expired,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.0.purge_expired(kind, cutoff, limit).await
    }
}

/// Twenty requests for a login phone code at once, all past the budget check before the first
/// counts: the atomic bump has the last word, and no more than the hour's budget (four left after
/// the setup code) is sent — a check that only read the budget would send twenty.
#[tokio::test]
async fn concurrent_phone_code_requests_never_send_more_than_the_budget() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, "+4917612345678").await.unwrap();
    let mut pendings = Vec::new();
    for _ in 0..20 {
        pendings.push(password_step(&w, "anna@example.com").await);
    }
    let deps = Deps {
        committer: Arc::new(BumpsAfterEveryRead(w.store.clone())),
        ..w.portal.deps().clone()
    };
    let portal = Arc::new(
        Portal::new(deps, w.portal.config().clone(), w.portal.catalog().clone())
            .unwrap()
            .with_sms_sender(w.sms.clone()),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for p in pendings {
        let portal = portal.clone();
        tasks.spawn(async move { portal.send_login_phone_code(p.token.expose()).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(w.sms.messages().len() - 1, 4, "login codes sent");
    // Losing the race is the one way a refusal counts: in the first budget it overran, and no
    // further.
    assert_eq!(w.phone_codes_of(session.user_id).await, 21);
    assert_eq!(w.phone_codes_to("+4917612345678").await, 5);
}

#[tokio::test]
async fn wrong_codes_use_up_the_attempt_and_then_throttle_the_user() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let bad = |w: &World| {
        let right = totp::code_at(&secret, w.clock.now());
        let n: u32 = right.expose().parse().unwrap();
        SecondFactor::Totp(SecretString::new(format!(
            "{:06}",
            (n + 500_000) % 1_000_000
        )))
    };
    let pending = password_step(&w, "anna@example.com").await;
    let audit = w.store.audit_len();
    for i in 0..3 {
        let err = finish(&w, &pending, bad(&w), false).await.unwrap_err();
        assert!(
            matches!(err, MfaError::Code(CodeError::Wrong)),
            "try {i}: {err:?}"
        );
    }
    assert_eq!(
        w.store.audit_len(),
        audit,
        "wrong codes change nothing but counters"
    );
    // The fourth failure is over the free ones: the next try must wait.
    let err = finish(&w, &pending, bad(&w), false).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let err = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::Throttled { .. }), "got {err:?}");
    w.advance(TimeDelta::seconds(5));
    let err = finish(&w, &pending, bad(&w), false).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::TooManyAttempts)),
        "fifth wrong code ends the attempt: {err:?}"
    );
    let err = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoPendingLogin), "got {err:?}");
    // Malformed codes cost nothing.
    w.advance(TimeDelta::minutes(15));
    let pending = password_step(&w, "anna@example.com").await;
    let err = finish(&w, &pending, SecondFactor::Totp("12ab56".into()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Malformed)),
        "got {err:?}"
    );
    finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_recovery_code_signs_in_once_and_a_new_one_is_issued() {
    let w = World::new();
    let (_, recovery, _) = with_totp(&w, "anna@example.com").await;
    let pending = password_step(&w, "anna@example.com").await;
    let login = finish(
        &w,
        &pending,
        SecondFactor::RecoveryCode(recovery.to_lowercase().into()),
        false,
    )
    .await
    .unwrap();
    let fresh = login.new_recovery_code.expect("a new recovery code");
    assert_ne!(fresh.expose(), recovery);
    assert!(login.choose_new_factor);
    assert!(
        w.mail_kinds_to("anna@example.com")
            .contains(&"recovery_code_used")
    );
    let cats: Vec<_> = w
        .audit_of(None)
        .iter()
        .map(|e| e.record.category.key())
        .collect();
    assert!(cats.contains(&"mfa.recovery_code_used"), "{cats:?}");

    let pending = password_step(&w, "anna@example.com").await;
    let err = finish(
        &w,
        &pending,
        SecondFactor::RecoveryCode(recovery.clone().into()),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "single use: {err:?}"
    );
    finish(&w, &pending, SecondFactor::RecoveryCode(fresh), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_remembered_device_skips_only_the_second_factor_for_thirty_days() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let pending = password_step(&w, "anna@example.com").await;
    let login = finish(&w, &pending, totp_now(&w, &secret), true)
        .await
        .unwrap();
    let device = login.remembered_device.expect("a device token");
    assert!(
        w.portal.authenticate(device.token.expose()).await.is_err(),
        "the device token is not a session"
    );
    let with_device = |password: &'static str| {
        let w = &w;
        let d = device.token.expose().to_owned();
        async move {
            w.portal
                .login_with_device(
                    Login {
                        email: "anna@example.com".into(),
                        password: password.into(),
                        client: client(),
                    },
                    &d,
                )
                .await
        }
    };
    assert!(matches!(
        with_device(PASSWORD).await,
        Ok(LoginOutcome::Authenticated(_))
    ));
    assert!(
        matches!(
            with_device("falsches passwort").await,
            Err(LoginError::InvalidCredentials)
        ),
        "the device never replaces the password"
    );
    w.advance(TimeDelta::days(30) - TimeDelta::seconds(1));
    assert!(matches!(
        with_device(PASSWORD).await,
        Ok(LoginOutcome::Authenticated(_))
    ));
    w.advance(TimeDelta::seconds(1));
    assert!(
        matches!(
            with_device(PASSWORD).await,
            Ok(LoginOutcome::MfaRequired(_))
        ),
        "30 days after it was issued the device is forgotten"
    );
}

#[tokio::test]
async fn another_users_device_token_does_not_skip_the_second_factor() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    w.registered("ben@example.com").await;
    let pending = password_step(&w, "anna@example.com").await;
    let device = finish(&w, &pending, totp_now(&w, &secret), true)
        .await
        .unwrap()
        .remembered_device
        .unwrap();
    let (secret_b, _, _) = {
        let (_, s) = (0, w.login("ben@example.com").await);
        let p = w.principal(&s).await;
        let e = w.portal.start_totp_enrolment(&p).await.unwrap();
        let sb = TotpSecret::from_base32(e.secret_base32()).unwrap();
        w.portal
            .confirm_totp(&p, &totp::code_at(&sb, w.clock.now()))
            .await
            .unwrap();
        w.advance(TimeDelta::seconds(30));
        (sb, (), ())
    };
    let _ = secret_b;
    let r = w
        .portal
        .login_with_device(
            Login {
                email: "ben@example.com".into(),
                password: PASSWORD.into(),
                client: client(),
            },
            device.token.expose(),
        )
        .await
        .unwrap();
    assert!(matches!(r, LoginOutcome::MfaRequired(_)), "got {r:?}");
}

/// The device rows (remembered devices) a user has in the store.
async fn device_rows(w: &World, user: portal_core::ids::UserId) -> usize {
    w.portal
        .deps()
        .queries
        .sessions_of_user(user)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.kind() == &portal_core::session::SessionKind::RememberedDevice)
        .count()
}

#[tokio::test]
async fn a_remembered_device_dies_on_a_password_change() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let (session, device) = w
        .login_remembering_device("anna@example.com", &secret)
        .await;
    assert!(
        w.device_skips_second_factor("anna@example.com", PASSWORD, device.token.expose())
            .await,
        "control: the device works before the change"
    );
    let p = w.principal(&session).await;
    let new_password = "ein neues langes passwort";
    w.portal
        .change_password(
            &p,
            &PASSWORD.into(),
            &new_password.into(),
            &new_password.into(),
            client(),
        )
        .await
        .unwrap();
    assert_eq!(device_rows(&w, session.user_id).await, 0);
    assert!(
        !w.device_skips_second_factor("anna@example.com", new_password, device.token.expose())
            .await,
        "after a password change the second factor is asked again"
    );
}

#[tokio::test]
async fn a_remembered_device_dies_when_a_factor_is_added() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let (session, device) = w
        .login_remembering_device("anna@example.com", &secret)
        .await;
    assert!(
        w.device_skips_second_factor("anna@example.com", PASSWORD, device.token.expose())
            .await,
        "control"
    );
    let recovery = w.enable_phone(&session, "+4917612345678").await;
    assert!(
        recovery.is_none(),
        "the recovery code stays the one issued with the app"
    );
    assert_eq!(device_rows(&w, session.user_id).await, 0);
    w.principal(&session).await;
    assert!(
        !w.device_skips_second_factor("anna@example.com", PASSWORD, device.token.expose())
            .await,
        "after adding a factor the second factor is asked again"
    );
}

#[tokio::test]
async fn a_remembered_device_dies_when_mfa_is_removed() {
    let w = World::new();
    let (secret, _, _) = with_totp(&w, "anna@example.com").await;
    let (session, device) = w
        .login_remembering_device("anna@example.com", &secret)
        .await;
    assert!(
        w.device_skips_second_factor("anna@example.com", PASSWORD, device.token.expose())
            .await,
        "control"
    );
    let p = w.principal(&session).await;
    w.portal
        .remove_mfa(&p, &totp_now(&w, &secret))
        .await
        .unwrap();
    assert_eq!(device_rows(&w, session.user_id).await, 0);
    // Without a factor every login is password-only anyway; set one up again to see whether
    // the old device would still skip it.
    let plain = w.login("anna@example.com").await;
    let (_, _) = w.enable_totp(&plain).await;
    assert!(
        !w.device_skips_second_factor("anna@example.com", PASSWORD, device.token.expose())
            .await,
        "a device from before the removal does not skip the new factor"
    );
}

#[tokio::test]
async fn a_remembered_device_dies_when_the_user_is_deleted() {
    let w = World::new();
    let (admin, emp, secret) = employee_with_totp(&w).await;
    let (_, device) = w.login_remembering_device("emp@firma.de", &secret).await;
    assert!(
        w.device_skips_second_factor("emp@firma.de", PASSWORD, device.token.expose())
            .await,
        "control"
    );
    w.portal
        .delete_user(&admin, &number("123456789"), emp)
        .await
        .unwrap();
    assert_eq!(device_rows(&w, emp).await, 0);
    let r = w
        .login_outcome("emp@firma.de", PASSWORD, Some(device.token.expose()))
        .await;
    assert!(
        matches!(r, Err(LoginError::InvalidCredentials)),
        "got {r:?}"
    );
    // The address is free again; the new account with its own factor is not the old device's.
    let (_, session) = w.registered("emp@firma.de").await;
    w.enable_totp(&session).await;
    assert!(
        !w.device_skips_second_factor("emp@firma.de", PASSWORD, device.token.expose())
            .await
    );
}

#[tokio::test]
async fn removing_mfa_with_a_wrong_code_is_refused_and_changes_nothing_but_the_counter() {
    let w = World::new();
    let (secret, _, session) = with_totp(&w, "anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .remove_mfa(&p, &w.wrong_totp(&secret))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let after = w.snapshot(session.user_id).await;
    assert_eq!(after.user, before.user, "the factors are untouched");
    assert_eq!(
        after.counts, before.counts,
        "no audit entry, no mail, no session change"
    );
    assert_eq!(after.sessions, before.sessions);
    assert_eq!(after.second_factor_failures.map(|c| c.count), Some(1));
    assert!(w.user(session.user_id).await.mfa().is_enabled());
}

#[tokio::test]
async fn removing_mfa_after_the_step_up_window_needs_a_reauthentication() {
    let w = World::new();
    let (secret, _, session) = with_totp(&w, "anna@example.com").await;
    // The session logged in 30 s before `with_totp` returned.
    w.advance(TimeDelta::minutes(15));
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .remove_mfa(&p, &totp_now(&w, &secret))
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::ReauthRequired), "got {err:?}");
    assert_eq!(
        w.snapshot(session.user_id).await,
        before,
        "refused before the code was even looked at"
    );
    let fresh = w
        .portal
        .reauthenticate(&p, &PASSWORD.into(), Some(&totp_now(&w, &secret)), client())
        .await
        .unwrap();
    w.advance(TimeDelta::seconds(30));
    let p = w.principal(&fresh).await;
    let audit = w.store.audit_len();
    let mails = w.mails_to("anna@example.com").len();
    w.portal
        .remove_mfa(&p, &totp_now(&w, &secret))
        .await
        .unwrap();
    let user = w.user(session.user_id).await;
    assert!(!user.mfa().is_enabled());
    assert!(user.mfa().recovery_code.is_none());
    // Exactly one audit entry and one mail.
    let entries = w.audit_of(None);
    assert_eq!(entries.len(), audit + 1);
    let last = entries.last().unwrap();
    assert_eq!(last.record.category.key(), "mfa.disabled");
    assert_eq!(last.record.subject, Some(session.user_id));
    assert_eq!(last.record.actor.kind, portal_core::audit::ActorKind::User);
    let mails_now = w.mail_kinds_to("anna@example.com");
    assert_eq!(mails_now.len(), mails + 1);
    assert_eq!(mails_now.last(), Some(&"mfa_disabled"));
}

#[tokio::test]
async fn regenerating_the_recovery_code_kills_the_old_one_and_is_audited_and_mailed() {
    let w = World::new();
    let (secret, old, session) = with_totp(&w, "anna@example.com").await;
    let p = w.principal(&session).await;
    let audit = w.store.audit_len();
    let mails = w.mails_to("anna@example.com").len();
    let new = w
        .portal
        .regenerate_recovery_code(&p, &totp_now(&w, &secret))
        .await
        .unwrap();
    assert_ne!(new.expose(), old);
    let kinds = w.mail_kinds_to("anna@example.com");
    assert_eq!(kinds.len(), mails + 1, "exactly one mail");
    assert_eq!(kinds.last(), Some(&"recovery_code_renewed"));
    assert!(
        w.mails_to("anna@example.com")
            .last()
            .unwrap()
            .intent
            .secret()
            .is_none(),
        "the mail does not carry the code"
    );
    let entries = w.audit_of(None);
    assert_eq!(entries.len(), audit + 1, "exactly one audit entry");
    let last = entries.last().unwrap();
    assert_eq!(last.record.category.key(), "mfa.recovery_code_renewed");
    assert_eq!(last.record.subject, Some(session.user_id));
    assert!(!last.record.details.contains(&new.expose()[..4]));
    w.advance(TimeDelta::seconds(30));
    let pending = password_step(&w, "anna@example.com").await;
    let err = finish(&w, &pending, SecondFactor::RecoveryCode(old.into()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    finish(&w, &pending, SecondFactor::RecoveryCode(new), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn sms_codes_set_up_a_phone_and_finish_logins_within_ten_minutes() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = PhoneNumber::parse("+49 176 12345678").unwrap();
    w.portal
        .start_phone_enrolment(&p, &phone, PhoneChannel::Sms)
        .await
        .unwrap();
    let code = w.sms.last_code_to("+4917612345678").expect("an SMS");
    let enabled = w
        .portal
        .confirm_phone(&p, &code.as_str().into())
        .await
        .unwrap();
    assert!(enabled.recovery_code.is_some());

    let pending = password_step(&w, "anna@example.com").await;
    assert!(pending.methods.contains(&MfaMethod::Sms));
    w.portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap();
    let code = w.sms.last_code_to("+4917612345678").unwrap();
    // With the default settings the pending login (5 min) ends before its phone code (10 min):
    // the login is what dies first. The code's own expiry is pinned in
    // `mfa_expiry::a_login_phone_code_expires_at_exactly_ten_minutes`.
    w.advance(TimeDelta::minutes(5));
    let err = finish(
        &w,
        &pending,
        SecondFactor::PhoneCode(code.as_str().into()),
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MfaError::NoPendingLogin), "got {err:?}");

    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap();
    let code = w.sms.last_code_to("+4917612345678").unwrap();
    w.advance(TimeDelta::minutes(4));
    finish(
        &w,
        &pending,
        SecondFactor::PhoneCode(code.as_str().into()),
        false,
    )
    .await
    .unwrap();
}

/// Five codes per clock hour; the sixth and seventh get the same answer, are not sent and count
/// nothing (the budget counts sends). The next clock hour has a full budget (the boundaries to
/// the second: `mfa_expiry::the_phone_budget_refills_at_the_next_clock_hour_however_often_it_was_asked`).
#[tokio::test]
async fn phone_codes_are_capped_per_clock_hour_without_a_different_answer() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = PhoneNumber::parse("+4917612345678").unwrap();
    for _ in 0..7 {
        w.portal
            .start_phone_enrolment(&p, &phone, PhoneChannel::Voice)
            .await
            .unwrap();
    }
    assert_eq!(
        w.sms.messages().len(),
        5,
        "the sixth and seventh are not sent"
    );
    assert_eq!(w.phone_codes_of(session.user_id).await, 5, "nor counted");
    assert_eq!(w.phone_codes_to(phone.as_str()).await, 5);
    w.advance(TimeDelta::hours(1));
    let p = w.principal(&w.login("anna@example.com").await).await;
    w.portal
        .start_phone_enrolment(&p, &phone, PhoneChannel::Voice)
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 6);
}

#[tokio::test]
async fn the_recovery_phone_must_differ_and_a_recovery_mail_delivers_a_working_code() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = PhoneNumber::parse("+4917612345678").unwrap();
    w.portal
        .start_phone_enrolment(&p, &phone, PhoneChannel::Sms)
        .await
        .unwrap();
    let code = w.sms.last_code_to(phone.as_str()).unwrap();
    w.portal
        .confirm_phone(&p, &code.as_str().into())
        .await
        .unwrap();

    w.portal.send_presence_code(&p).await.unwrap();
    let code = w.sms.last_code_to(phone.as_str()).unwrap();
    let err = w
        .portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Phone(phone.clone()),
            &SecondFactor::PhoneCode(code.as_str().into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::SamePhone), "got {err:?}");

    w.portal.send_presence_code(&p).await.unwrap();
    let code = w.sms.last_code_to(phone.as_str()).unwrap();
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Email(email("anna.privat@example.org")),
            &SecondFactor::PhoneCode(code.as_str().into()),
        )
        .await
        .unwrap();
    w.confirm_recovery_channel(
        &p,
        &RecoveryChannel::Email(email("anna.privat@example.org")),
    )
    .await;

    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    let fresh = w.secret_for("anna.privat@example.org");
    assert_eq!(fresh.len(), 19, "XXXX-XXXX-XXXX-XXXX");
    finish(
        &w,
        &pending,
        SecondFactor::RecoveryCode(fresh.into()),
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_password_reset_never_bypasses_the_second_factor() {
    let w = World::new();
    with_totp(&w, "anna@example.com").await;
    w.forgot_password("anna@example.com").await.unwrap();
    let link = w.secret_for("anna@example.com");
    w.portal
        .reset_password(
            &link,
            &"ganz neues passwort".into(),
            &"ganz neues passwort".into(),
        )
        .await
        .unwrap();
    let r = w
        .portal
        .login(Login {
            email: "anna@example.com".into(),
            password: "ganz neues passwort".into(),
            client: client(),
        })
        .await
        .unwrap();
    assert!(matches!(r, LoginOutcome::MfaRequired(_)), "got {r:?}");
}

/// An active employee of customer 123456789 (which has an admin) with an authenticator app:
/// the admin, the employee and the secret.
async fn employee_with_totp(
    w: &World,
) -> (portal_core::Actor, portal_core::ids::UserId, TotpSecret) {
    let op = w.operator("op@vendor.example").await;
    w.customer("123456789").await;
    let admin = w.admin("admin@firma.de", "123456789", &op).await;
    let (secret, _, _) = with_totp(w, "emp@firma.de").await;
    let emp = w.user_id("emp@firma.de").await;
    w.portal
        .choose_affiliation(&portal_core::Actor::user(emp), &affiliation())
        .await
        .unwrap();
    w.portal
        .link_customer(&portal_core::Actor::user(emp), &number("123456789"))
        .await
        .unwrap();
    w.portal
        .activate_user(&admin, &number("123456789"), emp)
        .await
        .unwrap();
    (admin, emp, secret)
}

#[tokio::test]
async fn a_lock_kills_pending_logins_and_devices_and_unlock_revives_neither() {
    let w = World::new();
    let (admin, emp, secret) = employee_with_totp(&w).await;
    let (_, device) = w.login_remembering_device("emp@firma.de", &secret).await;
    assert!(
        w.device_skips_second_factor("emp@firma.de", PASSWORD, device.token.expose())
            .await,
        "control: the device works before the lock"
    );
    let pending = password_step(&w, "emp@firma.de").await;
    w.portal
        .lock_user(&admin, &number("123456789"), emp, None)
        .await
        .unwrap();
    assert_eq!(device_rows(&w, emp).await, 0);
    let err = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoPendingLogin), "got {err:?}");
    let r = w
        .login_outcome("emp@firma.de", PASSWORD, Some(device.token.expose()))
        .await;
    assert!(
        matches!(r, Err(LoginError::InvalidCredentials)),
        "locked: {r:?}"
    );
    w.portal
        .unlock_user(&admin, &number("123456789"), emp)
        .await
        .unwrap();
    let err = finish(&w, &pending, totp_now(&w, &secret), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::NoPendingLogin),
        "unlock does not revive the pending login: {err:?}"
    );
    assert!(
        !w.device_skips_second_factor("emp@firma.de", PASSWORD, device.token.expose())
            .await,
        "unlock restores the login, not the device"
    );
}

#[tokio::test]
async fn a_recovery_phone_receives_a_recovery_code_that_finishes_the_login() {
    let w = World::new();
    let (secret, old, session) = with_totp(&w, "anna@example.com").await;
    let recovery_phone = PhoneNumber::parse("+49 151 2345678").unwrap();
    let p = w.principal(&session).await;
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Phone(recovery_phone.clone()),
            &totp_now(&w, &secret),
        )
        .await
        .unwrap();
    w.confirm_recovery_channel(&p, &RecoveryChannel::Phone(recovery_phone.clone()))
        .await;
    w.advance(TimeDelta::seconds(30));
    let pending = password_step(&w, "anna@example.com").await;
    let audit = w.store.audit_len();
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    let messages = w.sms.messages();
    let sent = messages.last().expect("an SMS to the recovery phone");
    assert_eq!(sent.to, recovery_phone);
    assert_eq!(sent.purpose, portal_core::ports::PhoneCodePurpose::Recovery);
    let code = sent.code.expose().to_owned();
    assert_eq!(code.len(), 19, "XXXX-XXXX-XXXX-XXXX");
    let entries = w.audit_of(None);
    assert_eq!(entries.len(), audit + 1);
    let last = entries.last().unwrap();
    assert_eq!(last.record.category.key(), "mfa.recovery_code_sent");
    assert_eq!(last.record.details, "channel=phone");
    // The old code died with the new one.
    let err = finish(&w, &pending, SecondFactor::RecoveryCode(old.into()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let login = finish(&w, &pending, SecondFactor::RecoveryCode(code.into()), false)
        .await
        .unwrap();
    assert!(login.new_recovery_code.is_some());
    assert!(login.choose_new_factor);
    w.principal(&login.session).await;
}

#[tokio::test]
async fn phone_codes_are_capped_per_number_across_users() {
    let w = World::new();
    let shared = PhoneNumber::parse("+4917612345678").unwrap();
    let other = PhoneNumber::parse("+4917687654321").unwrap();
    let (_, anna) = w.registered("anna@example.com").await;
    let (_, ben) = w.registered("ben@example.com").await;
    let anna = w.principal(&anna).await;
    let ben = w.principal(&ben).await;
    for _ in 0..5 {
        w.portal
            .start_phone_enrolment(&anna, &shared, PhoneChannel::Sms)
            .await
            .unwrap();
    }
    assert_eq!(w.sms.messages().len(), 5);
    // Ben has sent nothing yet, but the number has had its five codes this hour.
    w.portal
        .start_phone_enrolment(&ben, &shared, PhoneChannel::Sms)
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 5, "the number's budget is used up");
    w.portal
        .start_phone_enrolment(&ben, &other, PhoneChannel::Sms)
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 6, "Ben's own budget was untouched");
    assert_eq!(w.sms.messages().last().unwrap().to, other);
}

#[tokio::test]
async fn phone_codes_are_capped_per_user_across_numbers() {
    let w = World::new();
    let first = PhoneNumber::parse("+4917612345678").unwrap();
    let second = PhoneNumber::parse("+4917687654321").unwrap();
    let (_, anna) = w.registered("anna@example.com").await;
    let (_, ben) = w.registered("ben@example.com").await;
    let anna = w.principal(&anna).await;
    let ben = w.principal(&ben).await;
    for _ in 0..5 {
        w.portal
            .start_phone_enrolment(&anna, &first, PhoneChannel::Sms)
            .await
            .unwrap();
    }
    // A fresh number does not give Anna a fresh budget.
    w.portal
        .start_phone_enrolment(&anna, &second, PhoneChannel::Sms)
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 5, "Anna's budget is used up");
    w.portal
        .start_phone_enrolment(&ben, &second, PhoneChannel::Sms)
        .await
        .unwrap();
    assert_eq!(
        w.sms.messages().len(),
        6,
        "the second number's budget was untouched"
    );
    assert_eq!(w.sms.messages().last().unwrap().to, second);
    assert_eq!(
        w.phone_codes_to(second.as_str()).await,
        1,
        "Anna's refused request did not count against the number"
    );
}

/// A recovery code sent to a recovery phone is a text like any other: it takes from the number's
/// hourly budget (shared with whoever else texts that number) and from the user's, and it is not
/// sent once either is spent — though the daily recovery budget still has room, and that refusal
/// counts against nothing. In the next clock hour it is sent again.
#[tokio::test]
async fn a_recovery_sms_counts_against_the_numbers_and_the_users_phone_budgets() {
    let w = World::new();
    let (secret, _, anna) = with_totp(&w, "anna@example.com").await;
    let recovery_phone = PhoneNumber::parse("+49 151 2345678").unwrap();
    let p = w.principal(&anna).await;
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Phone(recovery_phone.clone()),
            &totp_now(&w, &secret),
        )
        .await
        .unwrap();
    w.confirm_recovery_channel(&p, &RecoveryChannel::Phone(recovery_phone.clone()))
        .await;
    // The text that verified the recovery phone belongs to the hour before.
    w.advance(TimeDelta::hours(1));
    // Ben sets up the same number as his phone: four codes this hour.
    let (_, ben) = w.registered("ben@example.com").await;
    let ben = w.principal(&ben).await;
    for _ in 0..4 {
        w.portal
            .start_phone_enrolment(&ben, &recovery_phone, PhoneChannel::Sms)
            .await
            .unwrap();
    }
    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(
        w.sms.messages().len(),
        6,
        "the check, then the number's fifth text"
    );
    assert_eq!(w.phone_codes_to(recovery_phone.as_str()).await, 5);
    assert_eq!(w.phone_codes_of(anna.user_id).await, 1, "Anna's first");
    assert_eq!(w.recovery_sends_of(anna.user_id).await, 1);

    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 6, "the number's budget is spent");
    assert_eq!(
        w.recovery_sends_of(anna.user_id).await,
        1,
        "the refused request counted nothing"
    );
    assert_eq!(w.phone_codes_of(anna.user_id).await, 1);
    w.portal
        .start_phone_enrolment(&ben, &recovery_phone, PhoneChannel::Sms)
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 6, "Ben's sixth is refused as well");

    w.advance(TimeDelta::hours(1));
    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(w.sms.messages().len(), 7, "a new clock hour");
    let code = w.sms.messages().last().unwrap().code.expose().to_owned();
    finish(&w, &pending, SecondFactor::RecoveryCode(code.into()), false)
        .await
        .unwrap();
}

/// The user's own hourly phone budget caps recovery texts too: after five login codes, Anna's
/// recovery phone (another number, untouched) gets nothing this hour.
#[tokio::test]
async fn a_recovery_sms_is_refused_when_the_users_phone_budget_is_spent() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, "+4917612345678").await.unwrap();
    let recovery_phone = PhoneNumber::parse("+49 151 2345678").unwrap();
    let p = w.principal(&session).await;
    w.portal.send_presence_code(&p).await.unwrap();
    let code = w.sms.last_code_to("+4917612345678").unwrap();
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Phone(recovery_phone.clone()),
            &SecondFactor::PhoneCode(code.as_str().into()),
        )
        .await
        .unwrap();
    w.confirm_recovery_channel(&p, &RecoveryChannel::Phone(recovery_phone.clone()))
        .await;
    let pending = password_step(&w, "anna@example.com").await;
    for _ in 0..2 {
        w.portal
            .send_login_phone_code(pending.token.expose())
            .await
            .unwrap();
    }
    assert_eq!(
        w.phone_codes_of(session.user_id).await,
        5,
        "setup, presence, the recovery phone's check, two logins"
    );
    let texts = w.sms.messages().len();
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(
        w.sms.messages().len(),
        texts,
        "Anna's phone budget is spent"
    );
    assert_eq!(w.recovery_sends_of(session.user_id).await, 0);
    assert_eq!(
        w.phone_codes_to(recovery_phone.as_str()).await,
        1,
        "only the check of the recovery phone"
    );
}
