//! Phone codes (SMS / voice call) for the second factor (R19).

use crate::secret::SecretString;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a phone code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneCodePurpose {
    /// The second step of a login.
    Login,
    /// Confirming a new MFA phone.
    Enrolment,
    /// A fresh recovery code for the recovery phone.
    Recovery,
    /// Verifying a new recovery phone before it is used.
    RecoveryChannel,
}

impl PhoneCodePurpose {
    /// Stable key (`login`, `enrolment`, `recovery`, `recovery_channel`), as stored in an
    /// outbox message and offered to a gateway's body template.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Enrolment => "enrolment",
            Self::Recovery => "recovery",
            Self::RecoveryChannel => "recovery_channel",
        }
    }
}

/// A code to deliver by SMS or voice call: what the [`SmsSender`] port is handed, and the
/// payload of an outbox message of kind `sms`
/// ([`Payload::Sms`](crate::outbox::Payload::Sms), when [`Portal::with_sms_outbox`](crate::service::Portal::with_sms_outbox)
/// queues phone codes in the commit that stores their hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneMessage {
    /// Recipient.
    pub to: crate::mfa::PhoneNumber,
    /// SMS or voice.
    pub channel: crate::mfa::PhoneChannel,
    /// The code (redacted in `Debug`).
    pub code: SecretString,
    /// Why.
    pub purpose: PhoneCodePurpose,
    /// Language of the text.
    pub language: crate::values::Language,
}

/// The phone gateway could not take the message.
#[derive(Debug, thiserror::Error)]
#[error("phone gateway: {0}")]
pub struct SmsError(pub String);

/// Sends codes by SMS or voice call (R19), directly: called after the commit that stored the
/// code's hash; a failure is reported to the user, who can ask again. (A production gateway
/// usually goes through the outbox instead, with retries: [`Portal::with_sms_outbox`](crate::service::Portal::with_sms_outbox)
/// and an outbox [`Sender`](crate::outbox::Sender) of kind `sms`.)
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Delivers one message.
    async fn send(&self, message: &PhoneMessage) -> Result<(), SmsError>;
}

/// No phone gateway: SMS and voice factors cannot be set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSmsSender;

#[async_trait]
impl SmsSender for NoSmsSender {
    async fn send(&self, _message: &PhoneMessage) -> Result<(), SmsError> {
        Err(SmsError("no phone gateway configured".into()))
    }
}
