//! Every time limit of the second-factor flows at exactly the limit and one second either side,
//! on the manual clock: phone codes (R19, 10 min) at login, at setup and as a presence proof;
//! the authenticator setup window (15 min); the step-up window (15 min, inclusive); fresh
//! recovery codes (3 a day).
//!
//! Each boundary is pinned against the code's own comparison: a code or setup is dead at exactly
//! its limit (`now >= expires_at`, `now - started_at < ttl`), the step-up window still holds at
//! exactly 15 min (`authenticated_at >= now - window`), and send budgets come back once a whole
//! period has passed since the last request (`now - last_at >= period`).

mod support;

use chrono::TimeDelta;
use portal_core::config::PortalConfig;
use portal_core::mfa::RecoveryChannel;
use portal_core::service::{MfaError, SecondFactor};
use portal_core::throttle::LoginProtection;
use support::*;

const PHONE: &str = "+4917612345678";

fn seconds(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// Pending logins that outlive their phone codes (15 min instead of 5), and enough phone codes
/// per hour for several rounds: only so is a login's phone code ever seen expiring.
fn long_pending_logins() -> PortalConfig {
    PortalConfig {
        mfa_login_ttl: TimeDelta::minutes(15),
        login_protection: LoginProtection {
            phone_codes_per_hour: 20,
            ..LoginProtection::default()
        },
        ..PortalConfig::default()
    }
}

/// With the default settings a pending login lives 5 minutes, half as long as its phone code:
/// there the pending login ends first (`mfa::sms_codes_set_up_a_phone_and_finish_logins_within_
/// ten_minutes`). With pending logins of 15 minutes the code's own limit shows: accepted one
/// second before 10 minutes, expired at exactly 10 minutes and after; an expired code spends no
/// try and leaves the pending login alive for a new code.
#[tokio::test]
async fn a_login_phone_code_expires_at_exactly_ten_minutes() {
    let w = World::with_config(long_pending_logins());
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    for (offset, accepted) in [(-1, true), (0, false), (1, false)] {
        let pending = w.password_step("anna@example.com").await;
        w.portal
            .send_login_phone_code(pending.token.expose())
            .await
            .unwrap();
        let code = w.sms.last_code_to(PHONE).unwrap();
        w.advance(TimeDelta::minutes(10) + seconds(offset));
        let before = w.snapshot(session.user_id).await;
        let r = w
            .finish(
                &pending,
                SecondFactor::PhoneCode(code.as_str().into()),
                false,
            )
            .await;
        if accepted {
            let login = r.unwrap();
            w.principal(&login.session).await;
            continue;
        }
        let err = r.unwrap_err();
        assert!(
            matches!(err, MfaError::CodeExpired),
            "offset {offset}: {err:?}"
        );
        assert_eq!(
            w.snapshot(session.user_id).await,
            before,
            "offset {offset}: an expired code changes nothing (no try, no counter)"
        );
        // The pending login still lives (it has 15 minutes): a new code finishes it.
        w.portal
            .send_login_phone_code(pending.token.expose())
            .await
            .unwrap();
        let fresh = w.sms.last_code_to(PHONE).unwrap();
        w.finish(
            &pending,
            SecondFactor::PhoneCode(fresh.as_str().into()),
            false,
        )
        .await
        .unwrap();
    }
}

/// `confirm_phone` ten minutes after the code went out, plus `offset` seconds.
async fn confirm_phone_after(offset: i64) -> (World, Snapshot, Result<(), MfaError>) {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = portal_core::mfa::PhoneNumber::parse(PHONE).unwrap();
    w.portal
        .start_phone_enrolment(&p, &phone, portal_core::mfa::PhoneChannel::Sms)
        .await
        .unwrap();
    let code = w.sms.last_code_to(PHONE).unwrap();
    w.advance(TimeDelta::minutes(10) + seconds(offset));
    // Still inside the 15-minute step-up window: only the code's limit decides.
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let r = w
        .portal
        .confirm_phone(&p, &code.as_str().into())
        .await
        .map(|_| ());
    (w, before, r)
}

#[tokio::test]
async fn a_phone_setup_code_expires_at_exactly_ten_minutes() {
    let (w, _, r) = confirm_phone_after(-1).await;
    r.unwrap();
    let id = w.user_id("anna@example.com").await;
    assert!(w.user(id).await.mfa().phone.is_some());

    for offset in [0, 1] {
        let (w, before, r) = confirm_phone_after(offset).await;
        let err = r.unwrap_err();
        assert!(
            matches!(err, MfaError::CodeExpired),
            "offset {offset}: {err:?}"
        );
        let id = w.user_id("anna@example.com").await;
        assert_eq!(
            w.snapshot(id).await,
            before,
            "offset {offset}: nothing changed"
        );
        assert!(w.user(id).await.mfa().phone.is_none(), "no phone factor");
    }
}

/// A presence code (for a sensitive change without the app) sent at the start, used 10 minutes
/// plus `offset` seconds later to regenerate the recovery code.
async fn presence_code_after(offset: i64) -> (World, Snapshot, Result<(), MfaError>) {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    let p = w.principal(&session).await;
    w.portal.send_presence_code(&p).await.unwrap();
    let code = w.sms.last_code_to(PHONE).unwrap();
    w.advance(TimeDelta::minutes(10) + seconds(offset));
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let r = w
        .portal
        .regenerate_recovery_code(&p, &SecondFactor::PhoneCode(code.as_str().into()))
        .await
        .map(|_| ());
    (w, before, r)
}

#[tokio::test]
async fn a_presence_phone_code_expires_at_exactly_ten_minutes() {
    let (w, before, r) = presence_code_after(-1).await;
    r.unwrap();
    assert_eq!(w.store.audit_len(), before.counts.audit + 1);

    for offset in [0, 1] {
        let (w, before, r) = presence_code_after(offset).await;
        let err = r.unwrap_err();
        assert!(
            matches!(err, MfaError::CodeExpired),
            "offset {offset}: {err:?}"
        );
        let id = w.user_id("anna@example.com").await;
        assert_eq!(
            w.snapshot(id).await,
            before,
            "offset {offset}: nothing changed"
        );
    }
}

/// An authenticator setup started at login, confirmed 15 minutes plus `offset` seconds later.
/// Past the step-up window the user re-authenticates first (so the setup window is what is
/// tested, not the step-up).
async fn confirm_totp_after(offset: i64) -> (World, Snapshot, Result<(), MfaError>) {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let enrolment = w.portal.start_totp_enrolment(&p).await.unwrap();
    let secret = portal_core::totp::TotpSecret::from_base32(enrolment.secret_base32()).unwrap();
    w.advance(TimeDelta::minutes(15) + seconds(offset));
    let mut p = w.principal(&session).await;
    if offset > 0 {
        let err = w
            .portal
            .confirm_totp(&p, &portal_core::totp::code_at(&secret, now(&w)))
            .await
            .unwrap_err();
        assert!(matches!(err, MfaError::ReauthRequired), "got {err:?}");
        let fresh = w
            .portal
            .reauthenticate(&p, &PASSWORD.into(), None, client())
            .await
            .unwrap();
        p = w.principal(&fresh).await;
    }
    let before = w.snapshot(session.user_id).await;
    let r = w
        .portal
        .confirm_totp(&p, &portal_core::totp::code_at(&secret, now(&w)))
        .await
        .map(|_| ());
    (w, before, r)
}

fn now(w: &World) -> chrono::DateTime<chrono::Utc> {
    portal_core::ports::Clock::now(&*w.clock)
}

#[tokio::test]
async fn an_authenticator_setup_must_be_confirmed_within_fifteen_minutes() {
    let (w, _, r) = confirm_totp_after(-1).await;
    r.unwrap();
    let id = w.user_id("anna@example.com").await;
    assert!(w.user(id).await.mfa().totp.is_some());

    for offset in [0, 1] {
        let (w, before, r) = confirm_totp_after(offset).await;
        let err = r.unwrap_err();
        assert!(
            matches!(err, MfaError::NoSetupInProgress),
            "offset {offset}: {err:?}"
        );
        let id = w.user_id("anna@example.com").await;
        assert_eq!(
            w.snapshot(id).await,
            before,
            "offset {offset}: nothing changed"
        );
        assert!(!w.user(id).await.mfa().is_enabled());
        // Starting again works.
        let session = w.login("anna@example.com").await;
        w.enable_totp(&session).await;
        assert!(w.user(id).await.mfa().is_enabled());
    }
}

/// The step-up window: a login 15 min − 1 s or exactly 15 min ago still allows setting up a
/// factor; one second more does not, and the refusal changes nothing.
#[tokio::test]
async fn the_step_up_window_for_second_factors_is_fifteen_minutes_inclusive() {
    for (offset, allowed) in [(-1, true), (0, true), (1, false)] {
        let w = World::new();
        let (_, session) = w.registered("anna@example.com").await;
        w.advance(TimeDelta::minutes(15) + seconds(offset));
        let p = w.principal(&session).await;
        let before = w.snapshot(session.user_id).await;
        let r = w.portal.start_totp_enrolment(&p).await;
        if allowed {
            r.unwrap();
            continue;
        }
        let err = r.unwrap_err();
        assert!(matches!(err, MfaError::ReauthRequired), "got {err:?}");
        assert_eq!(w.snapshot(session.user_id).await, before);
        assert!(w.user(session.user_id).await.mfa().pending_totp.is_none());
    }
}

/// A user with an authenticator app and a recovery e-mail address who asked for fresh recovery
/// codes four times within the same few minutes: three were mailed, the fourth was not.
async fn recovery_codes_used_up() -> World {
    let w = World::new();
    let (secret, _, session) = w.with_totp("anna@example.com").await;
    let p = w.principal(&session).await;
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Email(email("anna.privat@example.org")),
            &w.totp_now(&secret),
        )
        .await
        .unwrap();
    for i in 1..=4 {
        let pending = w.password_step("anna@example.com").await;
        let before = w.snapshot(session.user_id).await;
        w.portal
            .send_recovery_code(pending.token.expose())
            .await
            .unwrap();
        let mailed = w.mails_to("anna.privat@example.org").len();
        if i <= 3 {
            assert_eq!(mailed, i, "request {i} is mailed");
        } else {
            assert_eq!(mailed, 3, "the fourth request of the day mails nothing");
            assert_eq!(
                w.snapshot(session.user_id).await,
                before,
                "and changes nothing: same answer, no audit entry, the current code stays"
            );
        }
        w.advance(seconds(10));
    }
    w
}

/// The daily budget of fresh recovery codes comes back one whole day after the last request
/// (suppressed requests count: the counter forgets after a quiet day): 24 h − 1 s after the
/// fourth request nothing is sent, at exactly 24 h a code is mailed and works.
#[tokio::test]
async fn fresh_recovery_codes_are_capped_at_three_until_a_quiet_day() {
    let w = recovery_codes_used_up().await;
    w.advance(TimeDelta::hours(24) - seconds(10) - seconds(1));
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(w.mails_to("anna.privat@example.org").len(), 3, "24 h − 1 s");

    let w = recovery_codes_used_up().await;
    w.advance(TimeDelta::hours(24) - seconds(10));
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert_eq!(w.mails_to("anna.privat@example.org").len(), 4, "24 h");
    let code = w.secret_for("anna.privat@example.org");
    w.finish(&pending, SecondFactor::RecoveryCode(code.into()), false)
        .await
        .unwrap();
}

/// A fresh recovery code replaces the account's recovery code at once (the old one dies) and
/// then has no lifetime of its own: it is the recovery code, single use, until it is used or
/// replaced — like the one shown after setup.
#[tokio::test]
async fn a_mailed_recovery_code_replaces_the_old_one_and_lives_until_used() {
    let w = World::new();
    let (secret, old, session) = w.with_totp("anna@example.com").await;
    let p = w.principal(&session).await;
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Email(email("anna.privat@example.org")),
            &w.totp_now(&secret),
        )
        .await
        .unwrap();
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    let fresh = w.secret_for("anna.privat@example.org");
    let err = w
        .finish(&pending, SecondFactor::RecoveryCode(old.into()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::WrongCode),
        "the old code died: {err:?}"
    );
    w.advance(TimeDelta::days(30));
    let later = w.password_step("anna@example.com").await;
    w.finish(
        &later,
        SecondFactor::RecoveryCode(fresh.clone().into()),
        false,
    )
    .await
    .unwrap();
    let again = w.password_step("anna@example.com").await;
    let err = w
        .finish(&again, SecondFactor::RecoveryCode(fresh.into()), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::WrongCode), "single use: {err:?}");
}
