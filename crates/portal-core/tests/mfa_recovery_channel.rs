//! A new recovery channel (issue 13: "recovery phone/e-mail is not verified before use"): it waits
//! for the code sent to it, is never used for recovery before, and the verified channel before it
//! stays in use until the new one is confirmed. Wrong, expired and used-up codes change nothing.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::audit::AuditCategory;
use portal_core::mfa::{PhoneNumber, RecoveryChannel};
use portal_core::ports::PhoneCodePurpose;
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, MfaError};

const OLD: &str = "anna.alt@example.org";
const NEW: &str = "anna.neu@example.org";

fn mail(to: &str) -> RecoveryChannel {
    RecoveryChannel::Email(email(to))
}

/// Anna with an app and `OLD` as her verified recovery address; her principal and app secret.
async fn anna_with_old_channel(
    w: &World,
) -> (
    portal_core::totp::TotpSecret,
    portal_core::service::Principal,
    portal_core::ids::UserId,
) {
    let (secret, _, session) = w.with_totp("anna@example.com").await;
    let p = w.principal(&session).await;
    w.portal
        .set_recovery_channel(&p, &mail(OLD), &w.totp_now(&secret))
        .await
        .unwrap();
    w.confirm_recovery_channel(&p, &mail(OLD)).await;
    w.advance(TimeDelta::seconds(30));
    (secret, p, session.user_id)
}

/// A wrong code that is still well-formed.
fn wrong(right: &str) -> SecretString {
    let flipped: String = right
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    SecretString::new(flipped)
}

#[tokio::test]
async fn a_pending_recovery_address_is_never_used_and_the_old_one_stays_until_confirmed() {
    let w = World::new();
    let (secret, p, user) = anna_with_old_channel(&w).await;
    w.portal
        .set_recovery_channel(&p, &mail(NEW), &w.totp_now(&secret))
        .await
        .unwrap();
    assert_eq!(w.mail_kinds_to(NEW), vec!["recovery_channel_code"]);
    let state = w.user(user).await;
    assert_eq!(state.mfa().recovery_channel, Some(mail(OLD)));
    assert_eq!(
        state
            .mfa()
            .pending_recovery_channel
            .as_ref()
            .map(|c| &c.channel),
        Some(&mail(NEW))
    );

    // A fresh recovery code now goes to the verified address only.
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert!(w.mail_kinds_to(OLD).contains(&"recovery_code"));
    assert!(!w.mail_kinds_to(NEW).contains(&"recovery_code"));

    // Confirmed: the new address takes over, audited.
    w.confirm_recovery_channel(&p, &mail(NEW)).await;
    let state = w.user(user).await;
    assert_eq!(state.mfa().recovery_channel, Some(mail(NEW)));
    assert!(state.mfa().pending_recovery_channel.is_none());
    let details: Vec<String> = w
        .audit_of(None)
        .into_iter()
        .filter(|e| e.record.category == AuditCategory::AccountChanged)
        .map(|e| e.record.details)
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d == "recovery_channel_pending=email"),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d == "recovery_channel=email"),
        "{details:?}"
    );
    let pending = w.password_step("anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    assert!(w.mail_kinds_to(NEW).contains(&"recovery_code"));
}

#[tokio::test]
async fn wrong_expired_and_used_up_codes_change_nothing_and_a_resend_works() {
    let w = World::new();
    let (secret, p, user) = anna_with_old_channel(&w).await;
    w.portal
        .set_recovery_channel(&p, &mail(NEW), &w.totp_now(&secret))
        .await
        .unwrap();
    let right = w.secret_for(NEW);

    let err = w
        .portal
        .confirm_recovery_channel(&p, &wrong(&right))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let state = w.user(user).await;
    assert_eq!(state.mfa().recovery_channel, Some(mail(OLD)));
    let attempts = state
        .mfa()
        .pending_recovery_channel
        .as_ref()
        .unwrap()
        .code
        .attempts_left;
    assert_eq!(attempts, 4, "one try used up");

    let err = w
        .portal
        .confirm_recovery_channel(&p, &"12ab".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Malformed)),
        "got {err:?}"
    );

    for _ in 0..4 {
        w.portal
            .confirm_recovery_channel(&p, &wrong(&right))
            .await
            .unwrap_err();
    }
    let before = w.user(user).await;
    let err = w
        .portal
        .confirm_recovery_channel(&p, &right.as_str().into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::TooManyAttempts)),
        "got {err:?}"
    );
    assert_eq!(w.user(user).await, before, "no tries left: nothing changes");
    assert_eq!(before.mfa().recovery_channel, Some(mail(OLD)));

    // A new code: full tries again, the old code is dead.
    w.portal.resend_recovery_channel_code(&p).await.unwrap();
    let fresh = w.secret_for(NEW);
    assert_eq!(w.mails_to(NEW).len(), 2);
    if fresh != right {
        let err = w
            .portal
            .confirm_recovery_channel(&p, &right.as_str().into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, MfaError::Code(CodeError::Wrong)),
            "got {err:?}"
        );
    }

    // Expired: nothing changes.
    w.advance(TimeDelta::minutes(10) + TimeDelta::seconds(1));
    let before = w.user(user).await;
    let err = w
        .portal
        .confirm_recovery_channel(&p, &fresh.as_str().into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MfaError::Code(CodeError::Expired)),
        "got {err:?}"
    );
    assert_eq!(w.user(user).await, before);

    w.portal.resend_recovery_channel_code(&p).await.unwrap();
    w.confirm_recovery_channel(&p, &mail(NEW)).await;
    assert_eq!(w.user(user).await.mfa().recovery_channel, Some(mail(NEW)));
}

#[tokio::test]
async fn a_recovery_phone_gets_its_own_code_by_sms_and_nothing_waits_without_a_setup() {
    let w = World::new();
    let (secret, p, user) = anna_with_old_channel(&w).await;
    let err = w.portal.resend_recovery_channel_code(&p).await.unwrap_err();
    assert!(matches!(err, MfaError::NoSetupInProgress), "got {err:?}");
    let err = w
        .portal
        .confirm_recovery_channel(&p, &"123456".into())
        .await
        .unwrap_err();
    assert!(matches!(err, MfaError::NoSetupInProgress), "got {err:?}");

    let phone = PhoneNumber::parse("+49 151 2345678").unwrap();
    w.portal
        .set_recovery_channel(
            &p,
            &RecoveryChannel::Phone(phone.clone()),
            &w.totp_now(&secret),
        )
        .await
        .unwrap();
    let sent = w.sms.messages().last().cloned().expect("an SMS");
    assert_eq!(sent.to, phone);
    assert_eq!(sent.purpose, PhoneCodePurpose::RecoveryChannel);
    assert_eq!(w.user(user).await.mfa().recovery_channel, Some(mail(OLD)));
    w.confirm_recovery_channel(&p, &RecoveryChannel::Phone(phone.clone()))
        .await;
    assert_eq!(
        w.user(user).await.mfa().recovery_channel,
        Some(RecoveryChannel::Phone(phone))
    );
}
