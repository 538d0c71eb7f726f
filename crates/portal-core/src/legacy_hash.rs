//! Password hashes of the old system ("Servicewelt", R8), as its account export stores them.
//!
//! Portal never makes such hashes for its own accounts (those are Argon2id, R13); it keeps the
//! imported ones only to verify an old password once, when a user links their account with it
//! ("Jetzt verknüpfen"), and deletes each when its account is linked. The forms read:
//!
//! | scheme | form | example start | verified by |
//! | --- | --- | --- | --- |
//! | bcrypt | modular crypt, versions `2a`, `2b`, `2x`, `2y`, cost 4–16 | `$2y$10$…` | the `bcrypt` crate |
//! | PBKDF2-SHA256 | PHC string (`i` rounds, optional `l` output length) | `$pbkdf2-sha256$i=600000,l=32$…` | RustCrypto `pbkdf2` |
//! | PBKDF2-SHA256 | modular crypt of passlib (rounds, adapted base64) | `$pbkdf2-sha256$29000$…` | RustCrypto `pbkdf2` |
//! | Argon2id, Argon2i, Argon2d | PHC string (the modular-crypt form is the same), at most 256 MiB, t ≤ 20, p ≤ 16 | `$argon2id$v=19$m=19456,t=2,p=1$…` | RustCrypto `argon2` |
//!
//! PBKDF2 takes 1 000 to 10 000 000 rounds. The bounds keep one verification within what the
//! bounded hashing threads can afford; a hash outside them is refused at import, not at login.
//! No cryptography is written here: this module only tells the forms apart, checks their
//! parameters, and hands the verification to the crates above (all compare in constant time).
//!
//! ```
//! use portal_core::legacy_hash::LegacyHash;
//! // passlib's pbkdf2_sha256 of "password" (the example of its documentation).
//! let h = LegacyHash::parse(
//!     "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
//! ).unwrap();
//! assert_eq!(h.describe(), "pbkdf2-sha256 (modular crypt) rounds=6400");
//! assert!(h.verify_blocking("password"));
//! assert!(!h.verify_blocking("not the password"));
//! assert!(LegacyHash::parse("5f4dcc3b5aa765d61d8327deb882cf99").is_err());
//! ```

use argon2::password_hash::phc;
use base64::Engine as _;
use std::fmt;

/// Highest bcrypt cost accepted (cost 16 is about 5 s on one core).
pub const MAX_BCRYPT_COST: u32 = 16;
/// Fewest PBKDF2 rounds accepted (the `pbkdf2` crate's minimum).
pub const MIN_PBKDF2_ROUNDS: u32 = 1_000;
/// Most PBKDF2 rounds accepted.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
/// Most Argon2 memory accepted, in KiB (256 MiB).
pub const MAX_ARGON2_M_KIB: u32 = 262_144;
/// Most Argon2 iterations accepted.
pub const MAX_ARGON2_T: u32 = 20;
/// Most Argon2 lanes accepted.
pub const MAX_ARGON2_P: u32 = 16;
/// Longest hash string accepted.
pub const MAX_LEN: usize = 512;

/// Which algorithm an old hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LegacyScheme {
    /// bcrypt (modular crypt `$2a$`, `$2b$`, `$2x$`, `$2y$`).
    Bcrypt,
    /// PBKDF2-HMAC-SHA256 as a PHC string.
    Pbkdf2Sha256Phc,
    /// PBKDF2-HMAC-SHA256 in passlib's modular crypt form.
    Pbkdf2Sha256Mcf,
    /// Argon2 (id, i or d) as a PHC string.
    Argon2,
}

/// Why a string is not an old hash Portal can verify. Never repeats the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyHashError {
    /// Not one of the forms read (see the [module docs](self)).
    #[error(
        "not a supported password hash (bcrypt, PBKDF2-SHA256 as PHC or modular crypt, argon2 PHC)"
    )]
    UnknownFormat,
    /// The form is known, but the string is damaged.
    #[error("malformed {0} hash")]
    Malformed(&'static str),
    /// The cost parameters are outside the accepted bounds.
    #[error("{0}")]
    CostOutOfBounds(String),
}

/// An old password hash, checked to be one of the supported forms with bounded cost.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyHash {
    text: String,
    scheme: LegacyScheme,
    cost: String,
}

/// Never prints the hash (it is as good as the password to an offline attacker).
impl fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyHash({})", self.describe())
    }
}

impl LegacyHash {
    /// Reads an old hash (surrounding spaces ignored).
    ///
    /// # Errors
    /// An unknown form, a damaged string, cost outside the bounds.
    pub fn parse(raw: &str) -> Result<Self, LegacyHashError> {
        let text = raw.trim();
        if text.len() > MAX_LEN || !text.is_ascii() {
            return Err(LegacyHashError::UnknownFormat);
        }
        let (scheme, cost) = if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| text.starts_with(p))
        {
            (LegacyScheme::Bcrypt, bcrypt_cost(text)?)
        } else if let Some(rest) = text.strip_prefix("$pbkdf2-sha256$") {
            if rest.starts_with("i=") {
                (LegacyScheme::Pbkdf2Sha256Phc, pbkdf2_phc_cost(text)?)
            } else {
                (LegacyScheme::Pbkdf2Sha256Mcf, pbkdf2_mcf_cost(rest)?)
            }
        } else if ["$argon2id$", "$argon2i$", "$argon2d$"]
            .iter()
            .any(|p| text.starts_with(p))
        {
            (LegacyScheme::Argon2, argon2_cost(text)?)
        } else {
            return Err(LegacyHashError::UnknownFormat);
        };
        Ok(Self {
            text: text.to_owned(),
            scheme,
            cost,
        })
    }

    /// The stored form, for the storage adapters.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The algorithm.
    #[must_use]
    pub fn scheme(&self) -> LegacyScheme {
        self.scheme
    }

    /// Algorithm and cost, without salt or hash: `bcrypt cost=10`,
    /// `argon2id m=19456,t=2,p=1`, … (for the import's summary and logs).
    #[must_use]
    pub fn describe(&self) -> String {
        let name = match self.scheme {
            LegacyScheme::Bcrypt => "bcrypt",
            LegacyScheme::Pbkdf2Sha256Phc => "pbkdf2-sha256 (PHC)",
            LegacyScheme::Pbkdf2Sha256Mcf => "pbkdf2-sha256 (modular crypt)",
            LegacyScheme::Argon2 => self.text.split('$').nth(1).unwrap_or("argon2"),
        };
        format!("{name} {}", self.cost)
    }

    /// Whether `candidate` is the password, computed on the calling thread (servers run it on
    /// their bounded hashing threads, see
    /// [`PasswordHasher::verify_legacy`](crate::ports::PasswordHasher::verify_legacy)). Takes the
    /// hash's full cost whether or not it matches.
    #[must_use]
    pub fn verify_blocking(&self, candidate: &str) -> bool {
        use pbkdf2::password_hash::PasswordVerifier as _;
        match self.scheme {
            // Like the old system: bcrypt reads at most 72 bytes of the password.
            LegacyScheme::Bcrypt => {
                bcrypt::verify(candidate.as_bytes(), &self.text).unwrap_or(false)
            }
            LegacyScheme::Pbkdf2Sha256Phc => phc::PasswordHash::new(&self.text).is_ok_and(|h| {
                pbkdf2::Pbkdf2::SHA256
                    .verify_password(candidate.as_bytes(), &h)
                    .is_ok()
            }),
            LegacyScheme::Pbkdf2Sha256Mcf => pbkdf2::mcf::PasswordHashRef::new(&self.text)
                .is_ok_and(|h| {
                    pbkdf2::Pbkdf2::SHA256
                        .verify_password(candidate.as_bytes(), h)
                        .is_ok()
                }),
            LegacyScheme::Argon2 => phc::PasswordHash::new(&self.text).is_ok_and(|h| {
                use argon2::PasswordVerifier as _;
                argon2::Argon2::default()
                    .verify_password(candidate.as_bytes(), &h)
                    .is_ok()
            }),
        }
    }

    /// Makes a PBKDF2-SHA256 hash in passlib's modular crypt form, as an old system would have:
    /// for test data, demos and dummy hashes. Portal never stores its own passwords like this
    /// (they are Argon2id, R13).
    ///
    /// # Errors
    /// Rounds outside the bounds, a salt of more than 64 bytes.
    pub fn pbkdf2_sha256(
        password: &str,
        salt: &[u8],
        rounds: u32,
    ) -> Result<Self, LegacyHashError> {
        use pbkdf2::password_hash::CustomizedPasswordHasher as _;
        rounds_in_bounds(rounds)?;
        let params =
            pbkdf2::Params::new(rounds).map_err(|_| LegacyHashError::Malformed("pbkdf2-sha256"))?;
        let hash: pbkdf2::mcf::PasswordHash = pbkdf2::Pbkdf2::SHA256
            .hash_password_customized(password.as_bytes(), salt, None, None, params)
            .map_err(|_| LegacyHashError::Malformed("pbkdf2-sha256"))?;
        Self::parse(hash.as_ref())
    }

    /// The default dummy hash for unknown old usernames: bcrypt at cost 10 (PHP's
    /// `password_hash` default, the likeliest cost of an old web portal's export), of a
    /// password nobody knows. See
    /// [`PortalConfig::legacy_dummy_hash`](crate::config::PortalConfig::legacy_dummy_hash).
    #[must_use]
    pub fn default_dummy() -> Self {
        Self::parse(DEFAULT_DUMMY).expect("the built-in dummy hash is valid")
    }
}

/// bcrypt, cost 10 (made by libxcrypt), of 64 random hex digits that were thrown away.
const DEFAULT_DUMMY: &str = "$2b$10$0rfwS7uXYIMmq1rDikdLSOlwyH274.ZHm7BpiZfKpcbxqOJBnuuIu";

fn bcrypt_cost(text: &str) -> Result<String, LegacyHashError> {
    let parts: bcrypt::HashParts = text
        .parse()
        .map_err(|_| LegacyHashError::Malformed("bcrypt"))?;
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(LegacyHashError::CostOutOfBounds(format!(
            "bcrypt cost {cost} outside 4–{MAX_BCRYPT_COST}"
        )));
    }
    Ok(format!("cost={cost}"))
}

fn rounds_in_bounds(rounds: u32) -> Result<String, LegacyHashError> {
    if !(MIN_PBKDF2_ROUNDS..=MAX_PBKDF2_ROUNDS).contains(&rounds) {
        return Err(LegacyHashError::CostOutOfBounds(format!(
            "pbkdf2 rounds {rounds} outside {MIN_PBKDF2_ROUNDS}–{MAX_PBKDF2_ROUNDS}"
        )));
    }
    Ok(format!("rounds={rounds}"))
}

fn pbkdf2_phc_cost(text: &str) -> Result<String, LegacyHashError> {
    let bad = LegacyHashError::Malformed("pbkdf2-sha256");
    let h = phc::PasswordHash::new(text).map_err(|_| bad.clone())?;
    if h.salt.is_none() || h.hash.is_none() {
        return Err(bad);
    }
    let params = pbkdf2::Params::try_from(&h).map_err(|_| bad)?;
    rounds_in_bounds(params.rounds())
}

/// passlib: `$pbkdf2-sha256$<rounds>$<salt>$<checksum>`, salt and checksum in its "adapted
/// base64" (`.` for `+`, no padding).
fn pbkdf2_mcf_cost(rest: &str) -> Result<String, LegacyHashError> {
    let bad = LegacyHashError::Malformed("pbkdf2-sha256");
    let fields: Vec<&str> = rest.split('$').collect();
    let [rounds, salt, checksum] = fields[..] else {
        return Err(bad);
    };
    let rounds: u32 = rounds.parse().map_err(|_| bad.clone())?;
    let ab64 = |s: &str| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s.replace('.', "+"))
            .ok()
    };
    match (ab64(salt), ab64(checksum)) {
        (Some(s), Some(c)) if !s.is_empty() && s.len() <= 64 && (10..=64).contains(&c.len()) => {}
        _ => return Err(bad),
    }
    rounds_in_bounds(rounds)
}

fn argon2_cost(text: &str) -> Result<String, LegacyHashError> {
    let bad = LegacyHashError::Malformed("argon2");
    let h = phc::PasswordHash::new(text).map_err(|_| bad.clone())?;
    if h.salt.is_none() || h.hash.is_none() {
        return Err(bad);
    }
    argon2::Algorithm::try_from(h.algorithm.as_str()).map_err(|_| bad.clone())?;
    if let Some(v) = h.version {
        argon2::Version::try_from(v).map_err(|_| bad.clone())?;
    }
    let params = argon2::Params::try_from(&h).map_err(|_| bad)?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_ARGON2_M_KIB || t > MAX_ARGON2_T || p > MAX_ARGON2_P {
        return Err(LegacyHashError::CostOutOfBounds(format!(
            "argon2 m={m},t={t},p={p} above m={MAX_ARGON2_M_KIB},t={MAX_ARGON2_T},p={MAX_ARGON2_P}"
        )));
    }
    Ok(format!("m={m},t={t},p={p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made by the crates themselves, as an old system would have stored them.
    fn bcrypt_of(pw: &str, cost: u32) -> String {
        bcrypt::hash_with_salt(pw, cost, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY)
    }

    fn pbkdf2_phc_of(pw: &str, rounds: u32) -> String {
        use pbkdf2::password_hash::CustomizedPasswordHasher as _;
        let h: phc::PasswordHash = pbkdf2::Pbkdf2::SHA256
            .hash_password_customized(
                pw.as_bytes(),
                b"saltsaltsaltsalt",
                None,
                None,
                pbkdf2::Params::new(rounds).unwrap(),
            )
            .unwrap();
        h.to_string()
    }

    fn pbkdf2_mcf_of(pw: &str, rounds: u32) -> String {
        use pbkdf2::password_hash::CustomizedPasswordHasher as _;
        let h: pbkdf2::mcf::PasswordHash = pbkdf2::Pbkdf2::SHA256
            .hash_password_customized(
                pw.as_bytes(),
                b"saltsaltsaltsalt",
                None,
                None,
                pbkdf2::Params::new(rounds).unwrap(),
            )
            .unwrap();
        h.to_string()
    }

    fn argon2_of(pw: &str, algorithm: argon2::Algorithm) -> String {
        use argon2::password_hash::CustomizedPasswordHasher as _;
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        argon2::Argon2::default()
            .hash_password_customized(
                pw.as_bytes(),
                b"saltsaltsaltsalt",
                Some(algorithm.ident().as_str()),
                None,
                params,
            )
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_supported_form_verifies_the_right_password_only() {
        let pw = "Alt-Passwort 2019 ä";
        let cases = [
            (bcrypt_of(pw, 4), LegacyScheme::Bcrypt, "bcrypt cost=4"),
            (
                bcrypt_of(pw, 5).replacen("$2y$", "$2a$", 1),
                LegacyScheme::Bcrypt,
                "bcrypt cost=5",
            ),
            (
                pbkdf2_phc_of(pw, 1000),
                LegacyScheme::Pbkdf2Sha256Phc,
                "pbkdf2-sha256 (PHC) rounds=1000",
            ),
            (
                pbkdf2_mcf_of(pw, 2000),
                LegacyScheme::Pbkdf2Sha256Mcf,
                "pbkdf2-sha256 (modular crypt) rounds=2000",
            ),
            (
                argon2_of(pw, argon2::Algorithm::Argon2id),
                LegacyScheme::Argon2,
                "argon2id m=64,t=1,p=1",
            ),
            (
                argon2_of(pw, argon2::Algorithm::Argon2i),
                LegacyScheme::Argon2,
                "argon2i m=64,t=1,p=1",
            ),
        ];
        for (text, scheme, describe) in cases {
            let h =
                LegacyHash::parse(&format!(" {text} ")).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(h.scheme(), scheme, "{text}");
            assert_eq!(h.describe(), describe);
            assert_eq!(h.as_str(), text);
            assert!(h.verify_blocking(pw), "{text}");
            assert!(!h.verify_blocking("Alt-Passwort 2019 a"), "{text}");
            assert!(!h.verify_blocking(""), "{text}");
            assert!(
                !format!("{h:?}").contains(&text[text.len() - 10..]),
                "Debug hides the hash"
            );
        }
    }

    #[test]
    fn known_vectors_of_other_implementations_verify() {
        // passlib.hash.pbkdf2_sha256 documentation example ("password"; Python's hashlib
        // derives the same checksum).
        let passlib = LegacyHash::parse(
            "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
        )
        .unwrap();
        assert!(passlib.verify_blocking("password"));
        assert!(!passlib.verify_blocking("Password"));
        // PHP manual's password_verify example ("rasmuslerdorf"; libxcrypt agrees).
        let php = LegacyHash::parse("$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a")
            .unwrap();
        assert!(php.verify_blocking("rasmuslerdorf"));
        assert!(!php.verify_blocking("rasmuslerdorF"));
    }

    #[test]
    fn bad_forms_and_costs_are_refused_without_echoing_the_hash() {
        let too_costly_argon =
            argon2_of("x", argon2::Algorithm::Argon2id).replace("m=64", "m=524288");
        for (bad, expect) in [
            ("", LegacyHashError::UnknownFormat),
            (
                "5f4dcc3b5aa765d61d8327deb882cf99",
                LegacyHashError::UnknownFormat,
            ),
            ("{SSHA}abc", LegacyHashError::UnknownFormat),
            ("$2y$10$short", LegacyHashError::Malformed("bcrypt")),
            (
                "$pbkdf2-sha256$i=1000$c2FsdA",
                LegacyHashError::Malformed("pbkdf2-sha256"),
            ),
            (
                "$pbkdf2-sha256$29000$!!$??",
                LegacyHashError::Malformed("pbkdf2-sha256"),
            ),
            (
                "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
                LegacyHashError::Malformed("argon2"),
            ),
        ] {
            assert_eq!(LegacyHash::parse(bad).unwrap_err(), expect, "{bad}");
        }
        let cost = |s: &str| {
            matches!(
                LegacyHash::parse(s),
                Err(LegacyHashError::CostOutOfBounds(_))
            )
        };
        assert!(cost(&bcrypt_of("x", 4).replacen("$04$", "$17$", 1)));
        assert!(cost(&pbkdf2_mcf_of("x", 1000).replacen(
            "$1000$",
            "$20000000$",
            1
        )));
        assert!(cost(&too_costly_argon));
        let err = LegacyHash::parse(&too_costly_argon)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2FsdHNhbHRzYWx0c2FsdA"), "{err}");
    }

    #[test]
    fn the_default_dummy_is_bcrypt_cost_10_and_matches_nothing_typed() {
        let d = LegacyHash::default_dummy();
        assert_eq!(d.describe(), "bcrypt cost=10");
        assert!(!d.verify_blocking(""));
        assert!(!d.verify_blocking("password"));
    }
}
