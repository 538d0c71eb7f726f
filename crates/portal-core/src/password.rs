//! Password policy (R13) and the opaque stored hash.
//!
//! Policy: 8–128 characters by default (counted in Unicode code points after NFC normalisation),
//! no composition rules, never truncated, checked case-insensitively against a built-in list of
//! about 30,000 common passwords (the zxcvbn list, MIT licensed, plus common German choices), and
//! not built from the user's own e-mail local part or name.

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

static BLOCKLIST_TEXT: &str = include_str!("../data/common-passwords.txt");

static BLOCKLIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    BLOCKLIST_TEXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// Number of entries in the built-in common-password list.
#[must_use]
pub fn blocklist_len() -> usize {
    BLOCKLIST.len()
}

/// Iterates over the built-in common-password list (lower case).
pub fn blocklist() -> impl Iterator<Item = &'static str> {
    BLOCKLIST_TEXT.lines().filter(|l| !l.is_empty())
}

/// Whether a password is on the common-password list (case-insensitive).
#[must_use]
pub fn is_blocklisted(candidate: &str) -> bool {
    BLOCKLIST.contains(candidate.to_lowercase().as_str())
}

/// The password rules of an installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    /// Fewest characters (code points) accepted. Default 8; 15 is recommended without MFA.
    pub min_chars: usize,
    /// Most characters accepted. Default 128; must be at least 64.
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 8,
            max_chars: 128,
        }
    }
}

/// Why a new password is refused. The reason is shown to the user (NIST asks for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer characters than the policy's minimum.
    #[error("password must have at least {min} characters")]
    TooShort {
        /// The policy's minimum.
        min: usize,
    },
    /// More characters than the policy's maximum.
    #[error("password must have at most {max} characters")]
    TooLong {
        /// The policy's maximum.
        max: usize,
    },
    /// On the list of common passwords.
    #[error("password is too common")]
    Blocklisted,
    /// Built from the user's e-mail address or name.
    #[error("password must not contain your e-mail address or name")]
    ContainsPersonalData,
    /// Password and confirmation differ.
    #[error("password and confirmation do not match")]
    ConfirmationMismatch,
}

/// A new password that satisfies the policy. Only [`PasswordPolicy::check`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(SecretString);

impl Password {
    /// A password that just verified against its stored hash, to be re-hashed with current
    /// parameters. Skips the policy: the user chose it under the rules of its time.
    pub(crate) fn verified_for_rehash(normalized: SecretString) -> Self {
        Self(normalized)
    }

    /// The normalised password, for hashing.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Normalises a password as typed (NFC), so the same password typed on different systems hashes
/// the same. Used for new passwords and for login attempts alike.
#[must_use]
pub fn normalize(raw: &str) -> SecretString {
    SecretString::new(raw.nfc().collect::<String>())
}

impl PasswordPolicy {
    /// Checks a new password against the policy and its confirmation.
    ///
    /// `personal` holds words the password must not contain (the user's e-mail local part, first
    /// and last name); words shorter than four characters are ignored.
    ///
    /// # Errors
    /// The first rule the password breaks.
    pub fn check(
        &self,
        password: &SecretString,
        confirmation: &SecretString,
        personal: &[&str],
    ) -> Result<Password, PasswordError> {
        let normalized = normalize(password.expose());
        if normalized != normalize(confirmation.expose()) {
            return Err(PasswordError::ConfirmationMismatch);
        }
        self.check_single(&normalized, personal)
    }

    /// Checks a password without a confirmation field.
    ///
    /// # Errors
    /// The first rule the password breaks.
    pub fn check_single(
        &self,
        password: &SecretString,
        personal: &[&str],
    ) -> Result<Password, PasswordError> {
        let normalized = normalize(password.expose());
        let s = normalized.expose();
        let chars = s.chars().count();
        if chars < self.min_chars {
            return Err(PasswordError::TooShort {
                min: self.min_chars,
            });
        }
        if chars > self.max_chars {
            return Err(PasswordError::TooLong {
                max: self.max_chars,
            });
        }
        let lower = s.to_lowercase();
        if BLOCKLIST.contains(lower.as_str()) {
            return Err(PasswordError::Blocklisted);
        }
        for word in personal {
            let w = word.trim().to_lowercase();
            if w.chars().count() >= 4 && lower.contains(&w) {
                return Err(PasswordError::ContainsPersonalData);
            }
        }
        Ok(Password(normalized))
    }
}

/// A stored password hash in PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$…`). Opaque: it can
/// only be produced by a [`PasswordHasher`](crate::ports::PasswordHasher) or read back from storage.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read back from storage or produced by a hasher.
    ///
    /// # Errors
    /// The text is not a PHC string (does not start with `$`).
    pub fn from_phc(phc: impl Into<String>) -> Result<Self, InvalidPasswordHash> {
        let phc = phc.into();
        if phc.starts_with('$') && phc.len() <= 512 && phc.is_ascii() {
            Ok(Self(phc))
        } else {
            Err(InvalidPasswordHash)
        }
    }

    /// The PHC string.
    #[must_use]
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = self.0.split('$').nth(1).unwrap_or("?");
        write!(f, "PasswordHash({alg}, …)")
    }
}

/// The text is not a PHC string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a PHC password hash")]
pub struct InvalidPasswordHash;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str) -> Result<Password, PasswordError> {
        PasswordPolicy::default().check(&p.into(), &p.into(), &["anna.schmidt", "Anna", "Schmidt"])
    }

    #[test]
    fn ships_a_blocklist_of_at_least_ten_thousand_passwords() {
        assert!(blocklist_len() >= 10_000, "{}", blocklist_len());
        assert!(is_blocklisted("Password"));
        assert!(is_blocklisted("passwort123"));
    }

    #[test]
    fn length_limits_count_code_points() {
        assert_eq!(check("kurz1!x"), Err(PasswordError::TooShort { min: 8 }));
        assert!(check("üöäßüöäß").is_ok(), "8 umlauts are 8 characters");
        assert!(check(&"Zq9!".repeat(32)).is_ok(), "128 characters");
        assert_eq!(
            check(&"Zq9!".repeat(32).add_char('x')),
            Err(PasswordError::TooLong { max: 128 })
        );
    }

    #[test]
    fn no_composition_rules() {
        for ok in [
            "korrekt pferd batterie",
            "nurkleinbuchstaben",
            "9283746519",
            "🦀🦀 rust 🦀🦀",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert_eq!(check("password1"), Err(PasswordError::Blocklisted));
        assert_eq!(check("PaSsWoRd1"), Err(PasswordError::Blocklisted));
        assert_eq!(check("passwort123"), Err(PasswordError::Blocklisted));
    }

    #[test]
    fn personal_data_is_refused() {
        assert_eq!(
            check("schmidt-geheim-2024"),
            Err(PasswordError::ContainsPersonalData)
        );
        assert_eq!(
            check("xx anna.schmidt xx"),
            Err(PasswordError::ContainsPersonalData)
        );
    }

    #[test]
    fn confirmation_must_match() {
        assert_eq!(
            PasswordPolicy::default().check(&"abcdefghij1".into(), &"abcdefghij2".into(), &[]),
            Err(PasswordError::ConfirmationMismatch)
        );
    }

    #[test]
    fn nfc_and_nfd_forms_are_the_same_password() {
        let nfc = "P\u{e4}sswort-Stra\u{df}e";
        let nfd = "Pa\u{308}sswort-Stra\u{df}e";
        let a = check(nfc).unwrap();
        let b = PasswordPolicy::default()
            .check(&nfd.into(), &nfd.into(), &[])
            .unwrap();
        assert_eq!(a.expose(), b.expose());
    }

    #[test]
    fn password_hash_is_opaque_and_debug_hides_it() {
        let h = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap();
        assert_eq!(format!("{h:?}"), "PasswordHash(argon2id, …)");
        assert_eq!(PasswordHash::from_phc("plain"), Err(InvalidPasswordHash));
    }

    trait AddChar {
        fn add_char(self, c: char) -> String;
    }
    impl AddChar for String {
        fn add_char(mut self, c: char) -> String {
            self.push(c);
            self
        }
    }
}
