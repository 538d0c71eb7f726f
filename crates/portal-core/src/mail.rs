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
            Self::RecoveryCodeRenewed { .. } => "recovery_code_renewed",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::RecoveryCode { .. } => "recovery_code",
            Self::EmailChangeRequested { .. } => "email_change_requested",
            Self::EmailChanged { .. } => "email_changed",
        }
    }

    /// Replaces the secret (code or link token) with an empty one: what storage does once the mail
    /// is delivered, so a database dump holds no usable codes or links.
    pub fn purge_secret(&mut self) {
        match self {
            Self::VerificationCode { code: s, .. }
            | Self::RecoveryCode { code: s, .. }
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
            Self::VerificationCode { code, .. } | Self::RecoveryCode { code, .. } => Some(code),
            Self::Invitation { token, .. } | Self::PasswordReset { token, .. } => Some(token),
            _ => None,
        }
    }
}

/// A mail waiting in the outbox.
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

/// Where a queued mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by a dispatcher until its lease ends.
    Claimed,
    /// Delivered (accepted by the mail server).
    Sent,
    /// Given up after permanent failures or too many attempts; operators can re-queue it.
    Dead,
}

impl OutboxStatus {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "pending" => Some(Self::Pending),
            "claimed" => Some(Self::Claimed),
            "sent" => Some(Self::Sent),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A queued mail with its delivery state, as a dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The mail. After delivery, adapters purge its secret (code or link token).
    pub mail: OutboxMail,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Delivery attempts started so far (a claim starts one).
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// The current claim: only its holder may acknowledge the attempt.
    pub claim: Option<uuid::Uuid>,
    /// The claim's lease: after it, another dispatcher may claim the mail again.
    pub claimed_until: Option<DateTime<Utc>>,
    /// The last error, without personal data.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
}

/// How many mails are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Waiting.
    pub pending: u64,
    /// Being sent.
    pub claimed: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up.
    pub dead: u64,
}

/// When to retry a failed delivery: exponential backoff from `base`, capped at `max_delay`, with
/// up to `max_attempts` attempts in all (R21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: chrono::TimeDelta,
    /// Longest delay.
    pub max_delay: chrono::TimeDelta,
    /// Attempts before a mail is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: chrono::TimeDelta::seconds(30),
            max_delay: chrono::TimeDelta::hours(1),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` attempts failed transiently; `None` means give up
    /// (dead-letter).
    #[must_use]
    pub fn next_attempt(&self, attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(20);
        let delay = self
            .base
            .checked_mul(1_i32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        Some(now + delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy::default();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(p.next_attempt(1, t), Some(t + TimeDelta::seconds(30)));
        assert_eq!(p.next_attempt(2, t), Some(t + TimeDelta::seconds(60)));
        assert_eq!(p.next_attempt(3, t), Some(t + TimeDelta::seconds(120)));
        assert_eq!(p.next_attempt(7, t), Some(t + TimeDelta::seconds(1920)));
        assert_eq!(p.next_attempt(8, t), None);
        let long = RetryPolicy {
            max_attempts: 100,
            ..p
        };
        assert_eq!(long.next_attempt(50, t), Some(t + TimeDelta::hours(1)));
    }

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
