//! Every time limit of the second-factor flows at exactly the limit and one second either side,
//! on the manual clock: phone codes (R19, 10 min) at login, at setup and as a presence proof;
//! the authenticator setup window (15 min); the step-up window (15 min, inclusive); the send
//! budgets of phone codes (5 per clock hour) and fresh recovery codes (3 per UTC day).
//!
//! Each boundary is pinned against the code's own comparison: a code or setup is dead at exactly
//! its limit (`now >= expires_at`, `now - started_at < ttl`), the step-up window still holds at
//! exactly 15 min (`authenticated_at >= now - window`), and send budgets come back at exactly the
//! next window boundary — the next clock hour for phone codes, midnight UTC for recovery codes —
//! however many requests came before it (`SendBudget::window_index`).

use crate::support::*;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use portal_core::config::PortalConfig;
use portal_core::mfa::RecoveryChannel;
use portal_core::service::{CodeError, MfaError, PendingMfaLogin, SecondFactor};
use portal_core::throttle::LoginProtection;

const PHONE: &str = "+4917612345678";

/// January 2026, day `day`, at `h:m:s` UTC (the manual clock starts on the 5th at 09:00:00).
fn at(day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, h, m, s).unwrap()
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
            matches!(err, MfaError::Code(CodeError::Expired)),
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
            matches!(err, MfaError::Code(CodeError::Expired)),
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
            matches!(err, MfaError::Code(CodeError::Expired)),
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
    w.confirm_recovery_channel(
        &p,
        &RecoveryChannel::Email(email("anna.privat@example.org")),
    )
    .await;
    for i in 1..=4 {
        let pending = w.password_step("anna@example.com").await;
        let before = w.snapshot(session.user_id).await;
        w.portal
            .send_recovery_code(pending.token.expose())
            .await
            .unwrap();
        let mailed = recovery_codes_mailed(&w);
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

/// Asks for a fresh recovery code on a new pending login; `true` when one was mailed.
async fn ask_for_recovery_code(w: &World) -> (PendingMfaLogin, bool) {
    let mailed = recovery_codes_mailed(w);
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    let sent = recovery_codes_mailed(w) > mailed;
    (pending, sent)
}

/// The daily budget of fresh recovery codes is per UTC day: spent in the morning, it stays spent
/// however often it is asked for that day — refused requests count nothing, so the counter stays
/// at three — and is full again at exactly midnight UTC, not a quiet day after the last request:
/// refused at 23:59:59, mailed (and working) at 00:00:00 and at 00:00:01.
#[tokio::test]
async fn fresh_recovery_codes_are_capped_at_three_per_utc_day_and_refill_at_midnight() {
    let w = recovery_codes_used_up().await;
    let anna = w.user_id("anna@example.com").await;
    assert_eq!(
        w.recovery_sends_of(anna).await,
        3,
        "the refused fourth counted nothing"
    );
    for hour in 10..=23 {
        w.clock.set(at(5, hour, 30, 0));
        let (_, sent) = ask_for_recovery_code(&w).await;
        assert!(!sent, "{hour}:30 on the same day: nothing is sent");
    }
    w.clock.set(at(5, 23, 59, 59));
    let (_, sent) = ask_for_recovery_code(&w).await;
    assert!(!sent, "23:59:59: still the same day");
    assert_eq!(w.recovery_sends_of(anna).await, 3);

    w.clock.set(at(6, 0, 0, 0));
    let (pending, sent) = ask_for_recovery_code(&w).await;
    assert!(sent, "00:00:00: a new day, a full budget");
    let code = w.secret_for("anna.privat@example.org");
    w.finish(&pending, SecondFactor::RecoveryCode(code.into()), false)
        .await
        .unwrap();
    w.clock.set(at(6, 0, 0, 1));
    let (_, sent) = ask_for_recovery_code(&w).await;
    assert!(sent, "00:00:01: the second of the new day");
    assert_eq!(w.recovery_sends_of(anna).await, 2);
}

/// Someone who knows Anna's password (R14, R17) spends her daily budget in the morning and then
/// asks again every 23 hours — under a quiet-day window that kept her fresh recovery codes
/// blocked for good, since each refused request restarted the day. Per UTC day every request
/// falls into a new day: the attacker's is mailed to Anna's address, and Anna's own a minute later
/// is mailed too and finishes her login.
#[tokio::test]
async fn asking_every_23_hours_cannot_keep_the_recovery_codes_blocked() {
    let w = recovery_codes_used_up().await;
    w.clock.set(at(5, 9, 30, 0));
    for day in 6..=10 {
        w.advance(TimeDelta::hours(23));
        assert_eq!(
            now(&w).date_naive().to_string(),
            format!("2026-01-{day:02}")
        );
        let (_, attacker_sent) = ask_for_recovery_code(&w).await;
        assert!(
            attacker_sent,
            "January {day}: a new UTC day, the budget is back"
        );
        w.advance(TimeDelta::minutes(1));
        let (pending, sent) = ask_for_recovery_code(&w).await;
        assert!(sent, "January {day}: Anna's own request is sent too");
        let code = w.secret_for("anna.privat@example.org");
        w.finish(&pending, SecondFactor::RecoveryCode(code.into()), false)
            .await
            .unwrap();
    }
}

/// Anna with an SMS phone and its code of the setup, at 09:00 on the clock: one of her five
/// phone codes of this clock hour is spent.
async fn anna_with_a_phone() -> World {
    let w = World::new();
    w.clock.set(at(5, 9, 0, 0));
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    w
}

/// Asks for a login phone code on a new pending login; `true` when one was sent.
async fn ask_for_phone_code(w: &World) -> (PendingMfaLogin, bool) {
    let texts = w.sms.messages().len();
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap();
    let sent = w.sms.messages().len() > texts;
    (pending, sent)
}

/// The phone budget is per clock hour: asked every ten minutes (and at 09:59:59) it sends five
/// codes in the hour — the setup code and four login codes — and nothing more, refused requests
/// counting nothing; at exactly 10:00:00 it is full again (sent, and the code works), and
/// 10:00:01 is the second code of the new hour.
#[tokio::test]
async fn the_phone_budget_refills_at_the_next_clock_hour_however_often_it_was_asked() {
    let w = anna_with_a_phone().await;
    let anna = w.user_id("anna@example.com").await;
    for (minute, second, expected) in [
        (10, 0, true),
        (20, 0, true),
        (30, 0, true),
        (40, 0, true),
        (50, 0, false),
        (59, 59, false),
    ] {
        w.clock.set(at(5, 9, minute, second));
        let (_, sent) = ask_for_phone_code(&w).await;
        assert_eq!(sent, expected, "09:{minute}:{second}");
    }
    assert_eq!(w.phone_codes_of(anna).await, 5, "refusals counted nothing");
    assert_eq!(w.phone_codes_to(PHONE).await, 5);

    w.clock.set(at(5, 10, 0, 0));
    let (pending, sent) = ask_for_phone_code(&w).await;
    assert!(sent, "10:00:00: a new hour, a full budget");
    let code = w.sms.last_code_to(PHONE).unwrap();
    w.finish(
        &pending,
        SecondFactor::PhoneCode(code.as_str().into()),
        false,
    )
    .await
    .unwrap();
    w.clock.set(at(5, 10, 0, 1));
    let (_, sent) = ask_for_phone_code(&w).await;
    assert!(sent, "10:00:01");
    assert_eq!(w.phone_codes_of(anna).await, 2);
    assert_eq!(w.phone_codes_to(PHONE).await, 2);
}

/// Someone who knows Anna's password spends her phone budget and then asks for a code every
/// 59 minutes — under a sliding hour, enough to keep her codes blocked for good, since each
/// refused request restarted the hour. Per clock hour each of the attacker's later requests falls
/// into a new hour, and Anna's own request half a minute after it is sent and finishes her login.
#[tokio::test]
async fn asking_every_59_minutes_cannot_keep_the_phone_codes_blocked() {
    let w = anna_with_a_phone().await;
    for _ in 0..4 {
        ask_for_phone_code(&w).await;
    }
    w.clock.set(at(5, 9, 58, 0));
    let (_, sent) = ask_for_phone_code(&w).await;
    assert!(!sent, "control: the budget of the 09:00 hour is spent");
    for poke in 1..=6 {
        w.advance(TimeDelta::minutes(59));
        ask_for_phone_code(&w).await;
        w.advance(seconds(30));
        let (pending, sent) = ask_for_phone_code(&w).await;
        assert!(sent, "poke {poke} at {}: Anna still gets her code", now(&w));
        let code = w.sms.last_code_to(PHONE).unwrap();
        w.finish(
            &pending,
            SecondFactor::PhoneCode(code.as_str().into()),
            false,
        )
        .await
        .unwrap();
    }
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
    w.confirm_recovery_channel(
        &p,
        &RecoveryChannel::Email(email("anna.privat@example.org")),
    )
    .await;
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
        matches!(err, MfaError::Code(CodeError::Wrong)),
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
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "single use: {err:?}"
    );
}

/// Fresh recovery codes mailed to Anna's recovery address (not the code that verified it).
fn recovery_codes_mailed(w: &World) -> usize {
    w.mail_kinds_to("anna.privat@example.org")
        .iter()
        .filter(|k| **k == "recovery_code")
        .count()
}
