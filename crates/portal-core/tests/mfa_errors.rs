//! Unknown factors, out-of-order steps and factors the server cannot offer (issue 3, "Bad
//! input"): each gets its typed error and changes nothing — no state, no audit entry, no mail, no
//! SMS, no failure counter, no try of a pending login — and the flow still works afterwards.

use crate::support::*;
use portal_core::config::PortalConfig;
use portal_core::mfa::{PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::secret::SecretString;
use portal_core::service::{MfaError, SecondFactor};

const PHONE: &str = "+4917612345678";

fn six_digits() -> SecretString {
    SecretString::new("123456")
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE).unwrap()
}

#[tokio::test]
async fn a_phone_code_for_a_user_with_only_an_app_is_no_such_factor() {
    let w = World::new();
    let (secret, _, session) = w.with_totp("anna@example.com").await;
    let pending = w.password_step("anna@example.com").await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    let err = w
        .finish(&pending, SecondFactor::PhoneCode(six_digits()), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    // No try was spent: the app still finishes this login.
    w.finish(&pending, w.totp_now(&secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_app_code_for_a_user_with_only_a_phone_is_no_such_factor() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    let pending = w.password_step("anna@example.com").await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .finish(&pending, SecondFactor::Totp(six_digits()), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    w.portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap();
    let code = w.sms.last_code_to(PHONE).unwrap();
    w.finish(
        &pending,
        SecondFactor::PhoneCode(code.as_str().into()),
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_recovery_code_request_without_a_recovery_channel_is_no_such_factor() {
    let w = World::new();
    let (secret, _, session) = w.with_totp("anna@example.com").await;
    let pending = w.password_step("anna@example.com").await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    assert_eq!(
        w.recovery_sends_of(session.user_id).await,
        0,
        "nothing counted against the daily budget"
    );
    w.finish(&pending, w.totp_now(&secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_presence_code_without_a_phone_is_no_such_factor() {
    let w = World::new();
    let (_, _, session) = w.with_totp("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w.portal.send_presence_code(&p).await.unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
}

#[tokio::test]
async fn a_presence_phone_code_that_was_never_sent_is_no_such_factor() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .regenerate_recovery_code(&p, &SecondFactor::PhoneCode(six_digits()))
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
}

#[tokio::test]
async fn reauthenticating_an_mfa_user_without_a_factor_is_no_such_factor() {
    let w = World::new();
    let (_, _, session) = w.with_totp("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .reauthenticate(&p, &PASSWORD.into(), None, client())
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSuchFactor), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    w.principal(&session).await;
}

#[tokio::test]
async fn confirming_a_setup_that_was_never_started_is_no_setup_in_progress() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w.portal.confirm_totp(&p, &six_digits()).await.unwrap_err();
    assert!(matches!(err, MfaError::NoSetupInProgress), "got {err:?}");
    let err = w.portal.confirm_phone(&p, &six_digits()).await.unwrap_err();
    assert!(matches!(err, MfaError::NoSetupInProgress), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    assert!(!w.user(session.user_id).await.mfa().is_enabled());
}

#[tokio::test]
async fn changing_second_factors_that_are_not_set_up_is_not_enabled() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let proof = SecondFactor::Totp(six_digits());
    let err = w.portal.remove_mfa(&p, &proof).await.unwrap_err();
    assert!(matches!(err, MfaError::NotEnabled), "remove: {err:?}");
    let err = w
        .portal
        .regenerate_recovery_code(&p, &proof)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NotEnabled), "regenerate: {err:?}");
    let err = w
        .portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Email(email("anna.privat@example.org")),
            &proof,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NotEnabled), "channel: {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
}

#[tokio::test]
async fn without_an_mfa_key_authenticator_apps_are_unavailable() {
    let w = World::without_mfa_key();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w.portal.start_totp_enrolment(&p).await.unwrap_err();
    assert!(matches!(err, MfaError::Unavailable), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    assert!(w.user(session.user_id).await.mfa().pending_totp.is_none());
}

#[tokio::test]
async fn a_server_without_the_mfa_key_cannot_check_app_codes_and_spends_no_try() {
    let w = World::new();
    let (secret, _, session) = w.with_totp("anna@example.com").await;
    let keyless = w.sibling(
        PortalConfig {
            mfa_key: None,
            ..w.portal.config().clone()
        },
        true,
    );
    let pending = w.password_step("anna@example.com").await;
    let before = w.snapshot(session.user_id).await;
    let err = keyless
        .complete_mfa(portal_core::service::CompleteMfa {
            token: pending.token.expose().to_owned(),
            factor: w.totp_now(&secret),
            remember_device: false,
            client: client(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::Unavailable), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    // The same code still works where the key is.
    w.finish(&pending, w.totp_now(&secret), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_a_phone_gateway_phone_factors_are_unavailable() {
    let w = World::without_phone_gateway();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .start_phone_enrolment(&p, &phone(), PhoneChannel::Sms)
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::Unavailable), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    assert!(
        w.phone_codes_of(session.user_id).await == 0 && w.phone_codes_to(PHONE).await == 0,
        "nothing counted against the phone budgets"
    );
    assert!(w.user(session.user_id).await.mfa().pending_phone.is_none());

    // A recovery phone needs the gateway too.
    let (secret, _) = w.enable_totp(&session).await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .set_recovery_channel(&p, &RecoveryChannel::Phone(phone()), &w.totp_now(&secret))
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::Unavailable), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
}

#[tokio::test]
async fn a_server_that_lost_its_phone_gateway_sends_nothing_and_changes_nothing() {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone(&session, PHONE).await.unwrap();
    let gatewayless = w.sibling(w.portal.config().clone(), false);
    let pending = w.password_step("anna@example.com").await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let err = gatewayless
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::Unavailable), "login code: {err:?}");
    let err = gatewayless.send_presence_code(&p).await.unwrap_err();
    assert!(
        matches!(err, MfaError::Unavailable),
        "presence code: {err:?}"
    );
    assert_eq!(w.snapshot(session.user_id).await, before);
}

#[tokio::test]
async fn only_a_pending_login_finishes_a_login_not_a_session_or_device_token() {
    let w = World::new();
    let (secret, _, _) = w.with_totp("anna@example.com").await;
    let (session, device) = w
        .login_remembering_device("anna@example.com", &secret)
        .await;
    let before = w.snapshot(session.user_id).await;
    for (what, token) in [
        ("session", session.token.expose()),
        ("device", device.token.expose()),
        ("garbage", "not-a-token"),
    ] {
        let err = w
            .portal
            .complete_mfa(portal_core::service::CompleteMfa {
                token: token.to_owned(),
                factor: w.totp_now(&secret),
                remember_device: true,
                client: client(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, MfaError::NoPendingLogin), "{what}: {err:?}");
        let err = w.portal.send_login_phone_code(token).await.unwrap_err();
        assert!(matches!(err, MfaError::NoPendingLogin), "{what}: {err:?}");
        let err = w.portal.send_recovery_code(token).await.unwrap_err();
        assert!(matches!(err, MfaError::NoPendingLogin), "{what}: {err:?}");
    }
    assert_eq!(w.snapshot(session.user_id).await, before);
    // The code was not used up by the refusals.
    let pending = w.password_step("anna@example.com").await;
    w.finish(&pending, w.totp_now(&secret), false)
        .await
        .unwrap();
}
