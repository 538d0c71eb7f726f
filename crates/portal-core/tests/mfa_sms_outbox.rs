//! Phone codes through the outbox (`Portal::with_sms_outbox`, R19 + R21): every text is queued as
//! a message of kind `sms` in the same commit that stores its code's hash, nothing is handed to an
//! `SmsSender` directly, the codes work as with a direct gateway, and the budgets still decide
//! what is queued.

use crate::support::*;
use portal_core::mfa::{PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::outbox::OutboxKind;
use portal_core::ports::{PhoneCodePurpose, PhoneMessage};
use portal_core::secret::SecretString;
use portal_core::service::{CompleteMfa, Login, LoginOutcome, PendingMfaLogin, SecondFactor};
use portal_core::values::Language;

const PHONE: &str = "+4917612345678";
const RECOVERY_PHONE: &str = "+491512345678";

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

fn last_queued(w: &World) -> PhoneMessage {
    w.queued_sms().pop().expect("a queued text")
}

/// No audit entry of any customer (or of none) mentions `code`.
fn audit_never_mentions(w: &World, code: &SecretString) {
    let entries = w.store.audit_entries(None);
    assert!(!entries.is_empty());
    for e in entries {
        assert!(
            !format!("{e:?}").contains(code.expose()),
            "the code is in an audit entry: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_phone_code_is_queued_with_its_commit_and_sets_up_the_phone_and_finishes_logins() {
    let w = World::with_sms_outbox();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = PhoneNumber::parse("+49 176 12345678").unwrap();
    w.portal
        .start_phone_enrolment(&p, &phone, PhoneChannel::Sms)
        .await
        .unwrap();
    assert!(w.sms.messages().is_empty(), "nothing sent directly");
    let queued = w.store.messages();
    let message = queued.last().unwrap();
    assert_eq!(message.payload.kind(), Some(OutboxKind::Sms));
    assert_eq!(message.payload.recipient(), PHONE);
    assert_eq!(message.payload.summary(), "sms:enrolment");
    let text = last_queued(&w);
    assert_eq!(text.to.as_str(), PHONE);
    assert_eq!(text.channel, PhoneChannel::Sms);
    assert_eq!(text.purpose, PhoneCodePurpose::Enrolment);
    assert_eq!(text.language, Language::De);
    audit_never_mentions(&w, &text.code);
    let enabled = w.portal.confirm_phone(&p, &text.code).await.unwrap();
    assert!(enabled.recovery_code.is_some());

    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_login_phone_code(pending.token.expose())
        .await
        .unwrap();
    let text = last_queued(&w);
    assert_eq!(text.purpose, PhoneCodePurpose::Login);
    assert_eq!(w.queued_sms().len(), 2);
    w.portal
        .complete_mfa(CompleteMfa {
            token: pending.token.expose().to_owned(),
            factor: SecondFactor::PhoneCode(text.code.clone()),
            remember_device: false,
            client: client(),
        })
        .await
        .unwrap();
    audit_never_mentions(&w, &text.code);
    assert!(w.sms.messages().is_empty(), "nothing sent directly");
}

/// Presence codes, a recovery phone's confirmation code and a recovery code sent to the recovery
/// phone are texts like the others: queued, never sent directly, and each one works.
#[tokio::test]
async fn presence_recovery_channel_and_recovery_texts_are_queued_and_work() {
    let w = World::with_sms_outbox();
    let (_, session) = w.registered("anna@example.com").await;
    w.enable_phone_from_outbox(&session, PHONE).await;
    let p = w.principal(&session).await;

    w.portal.send_presence_code(&p).await.unwrap();
    let presence = last_queued(&w);
    assert_eq!(presence.purpose, PhoneCodePurpose::Login);
    assert_eq!(presence.to.as_str(), PHONE);
    let recovery_phone = RecoveryChannel::Phone(PhoneNumber::parse(RECOVERY_PHONE).unwrap());
    w.portal
        .set_recovery_channel(
            &p,
            &recovery_phone,
            &SecondFactor::PhoneCode(presence.code.clone()),
        )
        .await
        .unwrap();
    let confirm = last_queued(&w);
    assert_eq!(confirm.purpose, PhoneCodePurpose::RecoveryChannel);
    assert_eq!(confirm.to.as_str(), RECOVERY_PHONE);
    w.portal
        .confirm_recovery_channel(&p, &confirm.code)
        .await
        .unwrap();

    let pending = password_step(&w, "anna@example.com").await;
    w.portal
        .send_recovery_code(pending.token.expose())
        .await
        .unwrap();
    let recovery = last_queued(&w);
    assert_eq!(recovery.purpose, PhoneCodePurpose::Recovery);
    assert_eq!(recovery.to.as_str(), RECOVERY_PHONE);
    w.portal
        .complete_mfa(CompleteMfa {
            token: pending.token.expose().to_owned(),
            factor: SecondFactor::RecoveryCode(recovery.code.clone()),
            remember_device: false,
            client: client(),
        })
        .await
        .unwrap();
    for text in [&presence, &confirm, &recovery] {
        audit_never_mentions(&w, &text.code);
    }
    assert!(w.sms.messages().is_empty(), "nothing sent directly");
}

/// The hourly phone budget decides what is queued: the sixth request of an hour gets the same
/// answer and queues nothing.
#[tokio::test]
async fn beyond_the_phone_budget_nothing_is_queued() {
    let w = World::with_sms_outbox();
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let phone = PhoneNumber::parse(PHONE).unwrap();
    for _ in 0..6 {
        w.portal
            .start_phone_enrolment(&p, &phone, PhoneChannel::Sms)
            .await
            .unwrap();
    }
    assert_eq!(w.queued_sms().len(), 5);
}
