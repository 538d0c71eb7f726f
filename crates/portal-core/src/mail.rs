//! Mail intents (R21). A use case never sends mail: it puts an [`OutboxMail`] into the same commit
//! as its state change, and a dispatcher delivers it later, at least once. The intent holds what
//! the template needs; links are built by the mail adapter from its configured base URL, never
//! from a request's `Host` header.

use crate::ids::{AdminRequestId, OutboxId};
use crate::secret::SecretString;
use crate::values::{EmailAddress, Language};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a mail is about, with the data its template needs. Codes and tokens are
/// [`SecretString`]s: their `Debug` is redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailIntent {
    /// "Verifizieren Sie Ihre E-Mail-Adresse": the six-digit code.
    VerificationCode {
        /// Greeting name.
        first_name: String,
        /// The code.
        code: SecretString,
        /// Minutes until it expires.
        valid_minutes: i64,
    },
    /// Someone tried to register this address, which already has an account.
    ExistingAccountNotice {
        /// Greeting name.
        first_name: String,
    },
    /// Someone tried to change another account's address to this one, which has an account: no
    /// code was sent (the e-mail change answers as if it had been).
    AddressInUseNotice {
        /// Greeting name.
        first_name: String,
    },
    /// An administrator tried to invite this address, which has an account (with another
    /// customer or none): no invitation was made.
    InvitationToExistingAccount {
        /// Greeting name.
        first_name: String,
        /// Company whose administrator tried.
        customer_name: String,
    },
    /// "Einladung zum Portal" with the "Jetzt registrieren" link.
    Invitation {
        /// Greeting name.
        first_name: String,
        /// Company the invitation is for.
        customer_name: String,
        /// The link token.
        token: SecretString,
        /// Days until it expires.
        valid_days: i64,
    },
    /// "Ihr Passwort zurücksetzen" with the link.
    PasswordReset {
        /// Greeting name.
        first_name: String,
        /// The link token.
        token: SecretString,
        /// Minutes until it expires.
        valid_minutes: i64,
    },
    /// A reset was asked for a locked account: no link, a hint to ask the administrator.
    PasswordResetLocked {
        /// Greeting name.
        first_name: String,
    },
    /// Confirmation that the password was changed.
    PasswordChanged {
        /// Greeting name.
        first_name: String,
    },
    /// To a customer's administrators: a new user waits for activation.
    ActivationNeeded {
        /// Greeting name of the admin.
        admin_first_name: String,
        /// Name of the waiting user.
        user_name: String,
        /// Address of the waiting user.
        user_email: String,
        /// Customer number.
        customer_number: String,
    },
    /// To the user: "Herzlich willkommen im Portal", the account is active.
    Welcome {
        /// Greeting name.
        first_name: String,
    },
    /// To a customer's administrators: a user's message ("Administrator kontaktieren").
    MessageToAdmins {
        /// Greeting name of the admin.
        admin_first_name: String,
        /// Sender's name.
        from_name: String,
        /// Sender's address (for replying).
        from_email: String,
        /// The message, as written (escaped by the template).
        message: String,
    },
    /// To the customer's administrators: consent to a colleague's admin request is needed.
    AdminConsentNeeded {
        /// Greeting name of the admin.
        admin_first_name: String,
        /// Requester's name.
        requester_name: String,
        /// Request id.
        request_id: AdminRequestId,
    },
    /// To operators: a request waits for a decision.
    AdminApprovalNeeded {
        /// Requester's name.
        requester_name: String,
        /// Customer number.
        customer_number: String,
        /// Company name.
        customer_name: String,
        /// Request id.
        request_id: AdminRequestId,
    },
    /// To the requester: the request was submitted.
    AdminRequestReceived {
        /// Greeting name.
        first_name: String,
        /// Whether an existing administrator must consent first.
        needs_consent: bool,
    },
    /// To the requester: an administrator consented; an operator decides next.
    AdminRequestConsented {
        /// Greeting name.
        first_name: String,
    },
    /// To the requester: granted.
    AdminRequestApproved {
        /// Greeting name.
        first_name: String,
    },
    /// To the requester: refused.
    AdminRequestRejected {
        /// Greeting name.
        first_name: String,
    },
    /// To the user: their account was locked.
    AccountLocked {
        /// Greeting name.
        first_name: String,
    },
    /// To the user: their account was unlocked.
    AccountUnlocked {
        /// Greeting name.
        first_name: String,
    },
    /// A second factor was set up ("Multi-Faktor-Authentifizierung eingerichtet").
    MfaEnabled {
        /// Greeting name.
        first_name: String,
        /// Which factor: `totp`, `sms` or `voice`.
        method: String,
    },
    /// The second factors were removed.
    MfaDisabled {
        /// Greeting name.
        first_name: String,
    },
    /// A passkey was removed from the account.
    PasskeyRemoved {
        /// Greeting name.
        first_name: String,
        /// The passkey's name.
        name: String,
    },
    /// A new recovery code was generated (the old one stopped working).
    RecoveryCodeRenewed {
        /// Greeting name.
        first_name: String,
    },
    /// The recovery code was used to log in; a new one was issued.
    RecoveryCodeUsed {
        /// Greeting name.
        first_name: String,
    },
    /// A fresh recovery code, to the recovery e-mail address.
    RecoveryCode {
        /// Greeting name.
        first_name: String,
        /// The code.
        code: SecretString,
    },
    /// The code that verifies a new recovery e-mail address, to that address.
    RecoveryChannelCode {
        /// Greeting name.
        first_name: String,
        /// The code.
        code: SecretString,
    },
    /// To the old address: a change of address was started.
    EmailChangeRequested {
        /// Greeting name.
        first_name: String,
        /// The new address.
        new_email: String,
    },
    /// To the old address: the address was changed.
    EmailChanged {
        /// Greeting name.
        first_name: String,
        /// The new address.
        new_email: String,
    },
    /// The person's data were exported ("Ihre Daten wurden exportiert", GDPR Art. 15 and 20),
    /// by themselves or by an administrator of their customer.
    DataExported {
        /// Greeting name.
        first_name: String,
        /// Whether an administrator (or vendor staff) made the export, not the person.
        by_administrator: bool,
    },
}

impl MailIntent {
    /// Stable key of the template.
    #[must_use]
    pub const fn key(&self) -> &'static str {
        match self {
            Self::VerificationCode { .. } => "verification_code",
            Self::ExistingAccountNotice { .. } => "existing_account_notice",
            Self::AddressInUseNotice { .. } => "address_in_use_notice",
            Self::InvitationToExistingAccount { .. } => "invitation_to_existing_account",
            Self::Invitation { .. } => "invitation",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordResetLocked { .. } => "password_reset_locked",
            Self::PasswordChanged { .. } => "password_changed",
            Self::ActivationNeeded { .. } => "activation_needed",
            Self::Welcome { .. } => "welcome",
            Self::MessageToAdmins { .. } => "message_to_admins",
            Self::AdminConsentNeeded { .. } => "admin_consent_needed",
            Self::AdminApprovalNeeded { .. } => "admin_approval_needed",
            Self::AdminRequestReceived { .. } => "admin_request_received",
            Self::AdminRequestConsented { .. } => "admin_request_consented",
            Self::AdminRequestApproved { .. } => "admin_request_approved",
            Self::AdminRequestRejected { .. } => "admin_request_rejected",
            Self::AccountLocked { .. } => "account_locked",
            Self::AccountUnlocked { .. } => "account_unlocked",
            Self::MfaEnabled { .. } => "mfa_enabled",
            Self::MfaDisabled { .. } => "mfa_disabled",
            Self::PasskeyRemoved { .. } => "passkey_removed",
            Self::RecoveryCodeRenewed { .. } => "recovery_code_renewed",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::RecoveryCode { .. } => "recovery_code",
            Self::RecoveryChannelCode { .. } => "recovery_channel_code",
            Self::EmailChangeRequested { .. } => "email_change_requested",
            Self::EmailChanged { .. } => "email_changed",
            Self::DataExported { .. } => "data_exported",
        }
    }

    /// Replaces the secret (code or link token) with an empty one: what storage does once the mail
    /// is delivered, so a database dump holds no usable codes or links.
    pub fn purge_secret(&mut self) {
        match self {
            Self::VerificationCode { code: s, .. }
            | Self::RecoveryCode { code: s, .. }
            | Self::RecoveryChannelCode { code: s, .. }
            | Self::Invitation { token: s, .. }
            | Self::PasswordReset { token: s, .. } => *s = SecretString::new(""),
            _ => {}
        }
    }

    /// The secret the mail carries (code or link token), if any: what a test reads out of a
    /// delivered mail, and what an adapter may purge after delivery.
    #[must_use]
    pub fn secret(&self) -> Option<&SecretString> {
        match self {
            Self::VerificationCode { code, .. }
            | Self::RecoveryCode { code, .. }
            | Self::RecoveryChannelCode { code, .. } => Some(code),
            Self::Invitation { token, .. } | Self::PasswordReset { token, .. } => Some(token),
            _ => None,
        }
    }
}

/// A mail a use case queues ([`Commit::mail`](crate::ports::Commit::mail)); stored as an
/// [`OutboxMessage`](crate::outbox::OutboxMessage) of kind `mail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    /// Id; also the basis of the stable `Message-ID`, so a re-sent mail is recognisable.
    pub id: OutboxId,
    /// Written at.
    pub created_at: DateTime<Utc>,
    /// Recipient.
    pub to: EmailAddress,
    /// Language of the template.
    pub language: Language,
    /// What it says.
    pub intent: MailIntent,
}

// The delivery state moved to the kind-independent outbox; these names stay for mail code.
pub use crate::outbox::{OutboxEntry, OutboxStats, OutboxStatus, RetryPolicy};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_name_their_secret() {
        let i = MailIntent::VerificationCode {
            first_name: "Anna".into(),
            code: SecretString::new("123456"),
            valid_minutes: 15,
        };
        assert_eq!(i.secret().map(SecretString::expose), Some("123456"));
        assert!(
            !format!("{i:?}").contains("123456"),
            "codes never reach Debug output"
        );
        assert!(
            MailIntent::PasswordChanged {
                first_name: "A".into()
            }
            .secret()
            .is_none()
        );
    }
}
