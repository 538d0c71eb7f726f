//! Second factors (manual chapter 4, R16–R19): an authenticator app (TOTP), a phone for SMS or
//! voice codes, a recovery code, and a recovery channel (a phone that differs from the MFA phone,
//! or an e-mail address) that can receive a fresh recovery code.
//!
//! All of it is stored on the user record as [`MfaState`], so every change is version-checked
//! with the user (a TOTP step is accepted at most once: the last used step is stored in the same
//! atomic commit that accepts it). TOTP secrets are stored sealed with the server's MFA key;
//! codes and the recovery code only as hashes.

use crate::password::PasswordHash;
use crate::secret::TokenHash;
use crate::values::EmailAddress;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in international form: `+` and 8–15 digits (E.164). Spaces, dashes, dots,
/// slashes and parentheses are dropped; a leading `00` becomes `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// The text is not a phone number in international form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("phone number must be in international form, e.g. +49 69 500070")]
pub struct InvalidPhoneNumber;

impl PhoneNumber {
    /// Parses a phone number.
    ///
    /// # Errors
    /// Not `+` (or `00`) followed by 8–15 digits.
    pub fn parse(raw: &str) -> Result<Self, InvalidPhoneNumber> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'))
            .collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest
        } else {
            return Err(InvalidPhoneNumber);
        };
        if !(8..=15).contains(&digits.len())
            || !digits.chars().all(|c| c.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(InvalidPhoneNumber);
        }
        Ok(Self(format!("+{digits}")))
    }

    /// `+` and the digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last two digits hidden, for screens and mails.
    #[must_use]
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("+{}{}", "•".repeat(n.saturating_sub(3)), &self.0[n - 2..])
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhoneNumber;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

/// How a phone receives codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneChannel {
    /// Text message.
    Sms,
    /// Voice call reading the code.
    Voice,
}

/// A confirmed authenticator app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpFactor {
    /// The secret, sealed with the server's MFA key (see [`crate::secretbox`]).
    pub sealed_secret: String,
    /// The last time step accepted; only later steps are accepted (replay protection).
    pub last_used_step: u64,
    /// Confirmed at.
    pub enrolled_at: DateTime<Utc>,
}

/// An authenticator app being set up: waits for its first code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    /// The new secret, sealed.
    pub sealed_secret: String,
    /// Started at (an unconfirmed enrolment expires).
    pub started_at: DateTime<Utc>,
}

/// A confirmed phone for SMS or voice codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneFactor {
    /// The number.
    pub number: PhoneNumber,
    /// SMS or voice.
    pub channel: PhoneChannel,
    /// Confirmed at.
    pub enrolled_at: DateTime<Utc>,
}

/// A code sent to a phone, waiting to be typed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// Hash of the code (salted with the user id).
    pub code_hash: TokenHash,
    /// Dead from then on (at most 10 minutes after sending).
    pub expires_at: DateTime<Utc>,
    /// Wrong tries left.
    pub attempts_left: u32,
}

/// A phone being set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPhone {
    /// The number.
    pub number: PhoneNumber,
    /// SMS or voice.
    pub channel: PhoneChannel,
    /// The code sent to it.
    pub code: PendingCode,
}

/// Where a fresh recovery code can be sent ("Wiederherstellungsmethode festlegen").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "to", rename_all = "snake_case")]
pub enum RecoveryChannel {
    /// A phone that is not the MFA phone.
    Phone(PhoneNumber),
    /// An e-mail address.
    Email(EmailAddress),
}

/// A user's second factors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MfaState {
    /// Authenticator app.
    pub totp: Option<TotpFactor>,
    /// Authenticator app being set up.
    pub pending_totp: Option<PendingTotp>,
    /// Phone for SMS/voice codes.
    pub phone: Option<PhoneFactor>,
    /// Phone being set up.
    pub pending_phone: Option<PendingPhone>,
    /// Hash of the recovery code (Argon2id: the code has 80 bits).
    pub recovery_code: Option<PasswordHash>,
    /// Where a fresh recovery code can be sent.
    pub recovery_channel: Option<RecoveryChannel>,
    /// Passkeys (sign-in alone, or second factor after the password).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkeys: Vec<crate::passkey::Passkey>,
}

impl MfaState {
    /// Whether a second factor is required at login.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.totp.is_some() || self.phone.is_some() || !self.passkeys.is_empty()
    }

    /// The factors a login can be finished with.
    #[must_use]
    pub fn methods(&self) -> Vec<MfaMethod> {
        let mut m = Vec::new();
        if self.totp.is_some() {
            m.push(MfaMethod::Totp);
        }
        if let Some(p) = &self.phone {
            m.push(match p.channel {
                PhoneChannel::Sms => MfaMethod::Sms,
                PhoneChannel::Voice => MfaMethod::Voice,
            });
        }
        if !self.passkeys.is_empty() {
            m.push(MfaMethod::Passkey);
        }
        if self.recovery_code.is_some() {
            m.push(MfaMethod::RecoveryCode);
        }
        m
    }
}

/// A way to finish a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    /// Authenticator app.
    Totp,
    /// Code by SMS.
    Sms,
    /// Code by voice call.
    Voice,
    /// The recovery code.
    RecoveryCode,
    /// A passkey (WebAuthn).
    Passkey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_international_form() {
        assert_eq!(
            PhoneNumber::parse("+49 (69) 500-07 6035").unwrap().as_str(),
            "+4969500076035"
        );
        assert_eq!(
            PhoneNumber::parse("0049 69 5000760").unwrap().as_str(),
            "+49695000760"
        );
        for bad in [
            "069 500070",
            "+49",
            "+0123456789",
            "+49 69 abc",
            "",
            "+1234567890123456",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masked_numbers_show_the_last_two_digits() {
        let p = PhoneNumber::parse("+4917612345678").unwrap();
        assert!(p.masked().ends_with("78"));
        assert!(!p.masked().contains("1761"));
    }

    #[test]
    fn methods_follow_the_factors() {
        let mut s = MfaState::default();
        assert!(!s.is_enabled());
        assert!(s.methods().is_empty());
        s.phone = Some(PhoneFactor {
            number: PhoneNumber::parse("+4917612345678").unwrap(),
            channel: PhoneChannel::Voice,
            enrolled_at: chrono::DateTime::UNIX_EPOCH,
        });
        assert!(s.is_enabled());
        assert_eq!(s.methods(), vec![MfaMethod::Voice]);
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = MfaState {
            recovery_channel: Some(RecoveryChannel::Email(
                EmailAddress::parse("r@example.com").unwrap(),
            )),
            ..MfaState::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<MfaState>(&json).unwrap(), s);
    }
}
