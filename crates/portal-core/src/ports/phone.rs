//! Phone codes (SMS / voice call) for the second factor (R19).

use crate::secret::SecretString;
use async_trait::async_trait;

/// Why a phone code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A code to deliver by SMS or voice call.
#[derive(Debug, Clone)]
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

/// Sends codes by SMS or voice call (R19). Called after the commit that stored the code's hash;
/// a failure is reported to the user, who can ask again.
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
