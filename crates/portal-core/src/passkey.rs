//! Passkeys (WebAuthn credentials, issue 16): several per user, each named, stored on the user
//! record with the second factors ([`crate::mfa::MfaState::passkeys`]); the server-side
//! challenges of the ceremonies ([`PasskeyChallenge`], single use, short-lived).
//!
//! The core never parses WebAuthn data itself: the [`PasskeyVerifier`](crate::ports::PasskeyVerifier)
//! port (implemented by `adapters-webauthn` with the `webauthn-rs` crate) turns a ceremony's
//! state and the browser's answer into a decision. What the core keeps of a credential is
//! opaque to it (`credential`), plus the facts it shows and decides on: the credential id, the
//! sign counter and the backup flags.

use crate::ids::UserId;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a ceremony's challenge can be answered.
pub const CHALLENGE_TTL: TimeDelta = TimeDelta::minutes(5);

/// At most this many passkeys per user.
pub const MAX_PASSKEYS: usize = 20;

/// A passkey's name: 1–60 characters after trimming, no control, invisible or text-direction
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasskeyName(String);

/// The text is not a passkey name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a passkey name has 1 to 60 characters and no control characters")]
pub struct InvalidPasskeyName;

impl PasskeyName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 60;

    /// Parses a name typed by the user.
    ///
    /// # Errors
    /// Empty, longer than 60 characters, or with a control, invisible or text-direction
    /// character.
    pub fn parse(raw: &str) -> Result<Self, InvalidPasskeyName> {
        let s = raw.trim();
        let bad = |c: char| {
            c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
        };
        if s.is_empty() || s.chars().count() > Self::MAX_CHARS || s.chars().any(bad) {
            return Err(InvalidPasskeyName);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PasskeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PasskeyName {
    type Error = InvalidPasskeyName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PasskeyName> for String {
    fn from(value: PasskeyName) -> Self {
        value.0
    }
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    /// Portal's id of it (what the API and the pages name).
    pub id: Uuid,
    /// The user's name for it.
    pub name: PasskeyName,
    /// The WebAuthn credential id, base64url without padding.
    pub credential_id: String,
    /// The verifier's record of the credential (public key, counter, flags), opaque to the core.
    pub credential: String,
    /// The last sign counter seen (0: the authenticator keeps none, as synced passkeys do).
    pub counter: u32,
    /// The authenticator may back the credential up (a synced passkey).
    pub backup_eligible: bool,
    /// The credential is backed up now.
    pub backup_state: bool,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last used to sign in or as a second factor.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Passkey {
    /// The `amr` value of a sign-in with it (RFC 8176): `swk` for a passkey that can be synced
    /// (a software key), `hwk` for one bound to its device.
    #[must_use]
    pub const fn amr(&self) -> &'static str {
        if self.backup_eligible { "swk" } else { "hwk" }
    }
}

/// What a ceremony's challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengePurpose {
    /// Registering a new passkey (a signed-in user).
    Register,
    /// Signing in with a passkey alone (no user known yet: discoverable credentials).
    SignIn,
    /// The second factor of a pending login, or a presence proof of a signed-in user.
    SecondFactor,
}

impl ChallengePurpose {
    /// Stable key (storage).
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
            Self::SecondFactor => "second_factor",
        }
    }

    /// The purpose of a stored key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        [Self::Register, Self::SignIn, Self::SecondFactor]
            .into_iter()
            .find(|p| p.key() == key)
    }
}

/// A ceremony's challenge, kept server-side: answered at most once, before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallenge {
    /// Its id (what the client sends back with its answer).
    pub id: Uuid,
    /// Whose ceremony (none for a sign-in with a passkey alone).
    pub user: Option<UserId>,
    /// What for.
    pub purpose: ChallengePurpose,
    /// The verifier's state of the ceremony (holds the random challenge), opaque to the core.
    pub state: String,
    /// Started at.
    pub created_at: DateTime<Utc>,
    /// Dead from then on.
    pub expires_at: DateTime<Utc>,
    /// Answered at (single use).
    pub used_at: Option<DateTime<Utc>>,
}

impl PasskeyChallenge {
    /// Whether it can still be answered for `purpose` by `user` at `now`.
    #[must_use]
    pub fn usable(
        &self,
        purpose: ChallengePurpose,
        user: Option<UserId>,
        now: DateTime<Utc>,
    ) -> bool {
        self.purpose == purpose
            && self.user == user
            && self.used_at.is_none()
            && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_visible() {
        assert_eq!(PasskeyName::parse("  Laptop ").unwrap().as_str(), "Laptop");
        assert!(PasskeyName::parse(&"x".repeat(60)).is_ok());
        for bad in ["", "   ", "a\u{202E}b", "a\nb", "a\u{200B}"] {
            assert!(PasskeyName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PasskeyName::parse(&"x".repeat(61)).is_err());
    }

    #[test]
    fn purposes_round_trip_their_keys() {
        for p in [
            ChallengePurpose::Register,
            ChallengePurpose::SignIn,
            ChallengePurpose::SecondFactor,
        ] {
            assert_eq!(ChallengePurpose::from_key(p.key()), Some(p));
        }
        assert_eq!(ChallengePurpose::from_key("other"), None);
    }

    #[test]
    fn a_challenge_is_usable_once_for_its_purpose_and_user_until_it_expires() {
        let t0 = DateTime::UNIX_EPOCH;
        let user = Some(UserId::from_uuid(Uuid::from_u128(1)));
        let mut c = PasskeyChallenge {
            id: Uuid::from_u128(9),
            user,
            purpose: ChallengePurpose::Register,
            state: String::new(),
            created_at: t0,
            expires_at: t0 + CHALLENGE_TTL,
            used_at: None,
        };
        assert!(c.usable(ChallengePurpose::Register, user, t0));
        assert!(!c.usable(ChallengePurpose::SignIn, user, t0));
        assert!(!c.usable(ChallengePurpose::Register, None, t0));
        assert!(!c.usable(ChallengePurpose::Register, user, t0 + CHALLENGE_TTL));
        c.used_at = Some(t0);
        assert!(!c.usable(ChallengePurpose::Register, user, t0));
    }

    #[test]
    fn synced_passkeys_are_software_keys() {
        let mut p = Passkey {
            id: Uuid::from_u128(1),
            name: PasskeyName::parse("Phone").unwrap(),
            credential_id: "AA".into(),
            credential: "{}".into(),
            counter: 0,
            backup_eligible: true,
            backup_state: true,
            created_at: DateTime::UNIX_EPOCH,
            last_used_at: None,
        };
        assert_eq!(p.amr(), "swk");
        p.backup_eligible = false;
        assert_eq!(p.amr(), "hwk");
    }
}
