//! Encryption at rest for secrets the server must read back in plain text, such as TOTP seeds
//! (checklist G: "stored encrypted, AEAD, key outside the database").
//!
//! [`seal`] encrypts with XChaCha20-Poly1305 under an [`MfaKey`] from configuration and a fresh
//! random 192-bit nonce, and writes `v2.`, the key's id ([`MfaKey::id`]), a dot, and unpadded
//! base64url of `nonce ‖ ciphertext ‖ tag`. [`open`] reverses it. The associated data (`aad`) is
//! authenticated but not stored: pass what the secret belongs to (for example
//! `b"totp:" ‖ user id`), and a sealed value copied to another user's row fails to open.
//! Values written by earlier releases (`v1.`, no key id) still open.
//!
//! Rotation: an [`MfaKeyring`] holds the current key, which seals, and older keys, which only
//! open. The key id stored with each value picks the key that opens it; `v1` values are tried
//! against every key. [`MfaKeyring::needs_reseal`] tells which values a rotation must re-seal
//! before an older key may be dropped.
//!
//! ```
//! use portal_core::defaults::OsSecretGenerator;
//! use portal_core::secretbox::{self, MfaKey, SealError};
//!
//! let key = MfaKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
//! let sealed = secretbox::seal(&key, &OsSecretGenerator, b"seed bytes", b"totp:user-1");
//! assert!(sealed.starts_with("v2."));
//! let opened = secretbox::open(&key, &sealed, b"totp:user-1").unwrap();
//! assert_eq!(opened.as_slice(), b"seed bytes");
//! assert_eq!(secretbox::open(&key, &sealed, b"totp:user-2"), Err(SealError::Rejected));
//! ```

use crate::ports::SecretGenerator;
use crate::secret::{SecretString, constant_time_eq};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::AeadInOut as _;
use chacha20poly1305::{Key, KeyInit as _, XChaCha20Poly1305, XNonce};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Prefix of the first format (no key id).
const V1: &str = "v1.";
/// Prefix of the current format: `v2.<key id>.<base64url>`.
const V2: &str = "v2.";
/// Label of the key id: `HMAC-SHA256(key, label)`, first [`KEY_ID_BYTES`] bytes as hex.
const KEY_ID_LABEL: &[u8] = b"portal/secretbox/key-id";
/// Bytes of the key id (16 hex characters).
const KEY_ID_BYTES: usize = 8;
/// XChaCha20 nonce: 24 random bytes, so random nonces never collide in practice.
const NONCE_BYTES: usize = 24;
/// Poly1305 tag.
const TAG_BYTES: usize = 16;

/// The server key that seals MFA secrets: 32 bytes, kept outside the database (configuration,
/// a secret store). `Debug` is redacted, equality is constant-time, and the bytes are zeroized on
/// drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MfaKey([u8; MfaKey::BYTES]);

/// The configured key is not 32 bytes of base64. The input is not echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMfaKey {
    /// Not base64 (standard or URL-safe alphabet, padding optional).
    #[error("the mfa key must be base64")]
    NotBase64,
    /// Decodes to the wrong number of bytes.
    #[error("the mfa key must be 32 bytes, got {0}")]
    Length(usize),
}

impl MfaKey {
    /// Bytes in a key.
    pub const BYTES: usize = 32;

    /// A key from its raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; Self::BYTES]) -> Self {
        Self(bytes)
    }

    /// Parses a key as written in configuration: base64 of 32 bytes, standard or URL-safe
    /// alphabet, padding optional, surrounding whitespace ignored (`openssl rand -base64 32`
    /// produces one).
    ///
    /// # Errors
    /// [`InvalidMfaKey::NotBase64`] or [`InvalidMfaKey::Length`].
    pub fn from_base64(text: &str) -> Result<Self, InvalidMfaKey> {
        let normalized: Zeroizing<String> = Zeroizing::new(
            text.trim()
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    other => other,
                })
                .collect(),
        );
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode(normalized.as_bytes())
                .map_err(|_| InvalidMfaKey::NotBase64)?,
        );
        let array: [u8; Self::BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| InvalidMfaKey::Length(bytes.len()))?;
        Ok(Self(array))
    }

    /// Draws a fresh key, for a setup command that writes the configuration.
    #[must_use]
    pub fn generate(random: &dyn SecretGenerator) -> Self {
        let mut bytes = [0u8; Self::BYTES];
        random.fill(&mut bytes);
        let key = Self(bytes);
        bytes.zeroize();
        key
    }

    /// The key as padded standard base64, the form [`from_base64`](Self::from_base64) reads.
    #[must_use]
    pub fn to_base64(&self) -> SecretString {
        SecretString::new(STANDARD.encode(self.0))
    }

    /// The key's id, stored with every value it seals: the first 8 bytes of
    /// `HMAC-SHA256(key, "portal/secretbox/key-id")` as 16 lower-case hex digits. A keyed hash,
    /// so it names the key without revealing anything about it.
    #[must_use]
    pub fn id(&self) -> String {
        use hmac::{Hmac, KeyInit as _, Mac as _};
        let mut mac =
            <Hmac<sha2::Sha256>>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(KEY_ID_LABEL);
        let digest = mac.finalize().into_bytes();
        digest[..KEY_ID_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &Key = (&self.0).into();
        XChaCha20Poly1305::new(key)
    }
}

impl PartialEq for MfaKey {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for MfaKey {}

impl fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKey([redacted])")
    }
}

/// A sealed value could not be opened. Nothing about the plaintext or key is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed value: no version prefix, not base64url, or too short.
    #[error("malformed sealed value")]
    Malformed,
    /// A version prefix this build does not know (written by a newer release).
    #[error("unsupported sealed value version")]
    UnsupportedVersion,
    /// Authentication failed: the wrong key, the wrong associated data, or tampered bytes.
    #[error("sealed value rejected")]
    Rejected,
}

/// Encrypts `plaintext` under `key` with a fresh nonce from `random`, bound to `aad`.
///
/// Two seals of the same plaintext differ. The result is ASCII: `v2.`, the key id, `.` and
/// base64url.
///
/// # Panics
/// Only if `plaintext` exceeds XChaCha20-Poly1305's limit of 256 GiB.
#[must_use]
pub fn seal(key: &MfaKey, random: &dyn SecretGenerator, plaintext: &[u8], aad: &[u8]) -> String {
    let mut nonce = [0u8; NONCE_BYTES];
    random.fill(&mut nonce);
    // Reserve the tag's room up front so the buffer never reallocates and leaves a copy of the
    // plaintext behind; zeroized in case encryption fails.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_BYTES));
    buffer.extend_from_slice(plaintext);
    let nonce_ref: &XNonce = (&nonce).into();
    key.cipher()
        .encrypt_in_place(nonce_ref, aad, &mut *buffer)
        .expect("plaintext within the cipher's 256 GiB limit");
    let mut out = Vec::with_capacity(NONCE_BYTES + buffer.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    format!("{V2}{}.{}", key.id(), URL_SAFE_NO_PAD.encode(out))
}

/// The parts of a sealed value: the key id (none in `v1`) and the base64url body.
fn parse(sealed: &str) -> Result<(Option<&str>, &str), SealError> {
    if let Some(body) = sealed.strip_prefix(V1) {
        return Ok((None, body));
    }
    if let Some(rest) = sealed.strip_prefix(V2) {
        let (kid, body) = rest.split_once('.').ok_or(SealError::Malformed)?;
        if kid.len() != 2 * KEY_ID_BYTES || !kid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SealError::Malformed);
        }
        return Ok((Some(kid), body));
    }
    Err(match sealed.split_once('.') {
        Some((version, _))
            if version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            SealError::UnsupportedVersion
        }
        _ => SealError::Malformed,
    })
}

/// The id of the key that sealed `sealed`, or `None` for a `v1` value (which names none).
///
/// # Errors
/// As [`open`] for text that is not a sealed value.
pub fn key_id_of(sealed: &str) -> Result<Option<&str>, SealError> {
    parse(sealed).map(|(kid, _)| kid)
}

/// Decrypts a value [`seal`]ed under `key` with the same `aad`. Never panics on any input.
///
/// # Errors
/// [`SealError::Malformed`] for text that is not a sealed value, [`SealError::UnsupportedVersion`]
/// for another format version, [`SealError::Rejected`] for the wrong key, the wrong `aad` or any
/// modified byte.
pub fn open(key: &MfaKey, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (kid, body) = parse(sealed)?;
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SealError::Malformed)?;
    if raw.len() < NONCE_BYTES + TAG_BYTES {
        return Err(SealError::Malformed);
    }
    if kid.is_some_and(|kid| kid != key.id()) {
        return Err(SealError::Rejected);
    }
    let (nonce, ciphertext) = raw.split_at(NONCE_BYTES);
    let nonce: &XNonce = nonce.try_into().map_err(|_| SealError::Malformed)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    key.cipher()
        .decrypt_in_place(nonce, aad, &mut *buffer)
        .map_err(|_| SealError::Rejected)?;
    Ok(buffer)
}

/// The keys of an installation: the current one seals, older ones (from before a change of the
/// server secret) only open, until every value they sealed has been re-sealed
/// ([`Self::needs_reseal`]).
///
/// ```
/// use portal_core::defaults::OsSecretGenerator;
/// use portal_core::secretbox::{self, MfaKey, MfaKeyring};
///
/// let old = MfaKey::from_bytes([1; 32]);
/// let new = MfaKey::from_bytes([2; 32]);
/// let sealed = secretbox::seal(&old, &OsSecretGenerator, b"seed", b"aad");
/// let ring = MfaKeyring::new(new.clone(), vec![old]);
/// assert_eq!(ring.open(&sealed, b"aad").unwrap().as_slice(), b"seed");
/// assert!(ring.needs_reseal(&sealed));
/// let resealed = ring.seal(&OsSecretGenerator, b"seed", b"aad");
/// assert!(!ring.needs_reseal(&resealed));
/// assert!(MfaKeyring::new(new, vec![]).open(&sealed, b"aad").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MfaKeyring {
    current: MfaKey,
    current_id: String,
    previous: Vec<(String, MfaKey)>,
}

impl fmt::Debug for MfaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaKeyring")
            .field("current", &self.current_id)
            .field(
                "previous",
                &self.previous.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MfaKeyring {
    /// A ring: `current` seals, `previous` only open. A previous key equal to the current one is
    /// left out.
    #[must_use]
    pub fn new(current: MfaKey, previous: Vec<MfaKey>) -> Self {
        let current_id = current.id();
        let mut ring = Self {
            current,
            current_id,
            previous: Vec::new(),
        };
        for key in previous {
            let id = key.id();
            if id != ring.current_id && !ring.previous.iter().any(|(p, _)| *p == id) {
                ring.previous.push((id, key));
            }
        }
        ring
    }

    /// The key that seals.
    #[must_use]
    pub const fn current(&self) -> &MfaKey {
        &self.current
    }

    /// The id of the key that seals.
    #[must_use]
    pub fn current_id(&self) -> &str {
        &self.current_id
    }

    /// The ids of the older keys.
    pub fn previous_ids(&self) -> impl Iterator<Item = &str> {
        self.previous.iter().map(|(id, _)| id.as_str())
    }

    /// Seals under the current key (see [`seal`]).
    #[must_use]
    pub fn seal(&self, random: &dyn SecretGenerator, plaintext: &[u8], aad: &[u8]) -> String {
        seal(&self.current, random, plaintext, aad)
    }

    /// Opens a value sealed under any key of the ring: the one its key id names, or for a `v1`
    /// value each key in turn (the current one first).
    ///
    /// # Errors
    /// As [`open`]; [`SealError::Rejected`] also when no key of the ring has the value's id.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match parse(sealed)? {
            (Some(kid), _) => {
                let key = if kid == self.current_id {
                    &self.current
                } else {
                    self.previous
                        .iter()
                        .find(|(id, _)| id == kid)
                        .map(|(_, k)| k)
                        .ok_or(SealError::Rejected)?
                };
                open(key, sealed, aad)
            }
            (None, _) => {
                let mut last = open(&self.current, sealed, aad);
                for (_, key) in &self.previous {
                    if last.is_ok() {
                        break;
                    }
                    last = open(key, sealed, aad);
                }
                last
            }
        }
    }

    /// Whether `sealed` must be re-sealed before the older keys can be dropped: anything not
    /// in the current format under the current key (malformed values included).
    #[must_use]
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        key_id_of(sealed) != Ok(Some(self.current_id.as_str()))
    }

    /// Opens `sealed` and seals it again under the current key; `None` when it is current
    /// already.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn reseal(
        &self,
        random: &dyn SecretGenerator,
        sealed: &str,
        aad: &[u8],
    ) -> Result<Option<String>, SealError> {
        if !self.needs_reseal(sealed) {
            return Ok(None);
        }
        let plain = self.open(sealed, aad)?;
        Ok(Some(self.seal(random, &plain, aad)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    fn key(n: u8) -> MfaKey {
        MfaKey::from_bytes([n; 32])
    }

    const AAD: &[u8] = b"totp:0190c0de-0000-7000-8000-000000000001";

    fn body(sealed: &str) -> &str {
        sealed.rsplit('.').next().unwrap()
    }

    /// A value in the first format (no key id), as earlier releases wrote it.
    fn seal_v1(key: &MfaKey, plaintext: &[u8]) -> String {
        let sealed = seal(key, &SeededRandom::new(40), plaintext, AAD);
        format!("v1.{}", body(&sealed))
    }

    #[test]
    fn values_of_the_first_format_still_open() {
        let v1 = seal_v1(&key(1), b"old seed");
        assert_eq!(open(&key(1), &v1, AAD).unwrap().as_slice(), b"old seed");
        assert_eq!(open(&key(2), &v1, AAD), Err(SealError::Rejected));
        assert_eq!(key_id_of(&v1), Ok(None));
    }

    #[test]
    fn the_key_id_names_the_key_and_picks_it_in_a_ring() {
        assert_eq!(key(1).id().len(), 16);
        assert_ne!(key(1).id(), key(2).id());
        assert_eq!(key(1).id(), key(1).clone().id());
        let sealed = seal(&key(1), &SeededRandom::new(41), b"seed", AAD);
        assert_eq!(key_id_of(&sealed), Ok(Some(key(1).id().as_str())));
        // The id is checked before decrypting: another key is refused at once.
        assert_eq!(open(&key(2), &sealed, AAD), Err(SealError::Rejected));
    }

    #[test]
    fn a_ring_seals_with_the_new_key_and_opens_with_both_until_resealed() {
        let old = key(1);
        let new = key(2);
        let random = SeededRandom::new(42);
        let by_old = seal(&old, &random, b"seed-a", AAD);
        let by_old_v1 = seal_v1(&old, b"seed-b");
        let ring = MfaKeyring::new(new.clone(), vec![old.clone(), new.clone()]);
        assert_eq!(ring.current_id(), new.id());
        assert_eq!(ring.previous_ids().collect::<Vec<_>>(), [old.id()]);
        assert!(!format!("{ring:?}").contains(old.to_base64().expose()));
        let by_new = ring.seal(&random, b"seed-c", AAD);
        assert_eq!(key_id_of(&by_new), Ok(Some(new.id().as_str())));
        for (sealed, plain) in [
            (&by_old, &b"seed-a"[..]),
            (&by_old_v1, b"seed-b"),
            (&by_new, b"seed-c"),
        ] {
            assert_eq!(ring.open(sealed, AAD).unwrap().as_slice(), plain);
        }
        assert!(ring.needs_reseal(&by_old));
        assert!(ring.needs_reseal(&by_old_v1));
        assert!(!ring.needs_reseal(&by_new));
        assert_eq!(ring.reseal(&random, &by_new, AAD), Ok(None));
        let a = ring.reseal(&random, &by_old, AAD).unwrap().unwrap();
        let b = ring.reseal(&random, &by_old_v1, AAD).unwrap().unwrap();
        // Only the new key is needed from now on.
        let only_new = MfaKeyring::new(new, vec![]);
        assert_eq!(only_new.open(&a, AAD).unwrap().as_slice(), b"seed-a");
        assert_eq!(only_new.open(&b, AAD).unwrap().as_slice(), b"seed-b");
        assert_eq!(only_new.open(&by_old, AAD), Err(SealError::Rejected));
        assert_eq!(only_new.open(&by_old_v1, AAD), Err(SealError::Rejected));
        // A reseal keeps the binding to the associated data.
        assert_eq!(only_new.open(&a, b"other"), Err(SealError::Rejected));
        assert_eq!(
            ring.reseal(&random, &by_old, b"other"),
            Err(SealError::Rejected)
        );
    }

    #[test]
    fn sealed_value_opens_with_the_same_key_and_aad() {
        let random = SeededRandom::new(1);
        let sealed = seal(&key(1), &random, b"twenty bytes of seed", AAD);
        assert!(
            sealed.starts_with(&format!("v2.{}.", key(1).id())),
            "{sealed}"
        );
        assert!(sealed.is_ascii());
        let opened = open(&key(1), &sealed, AAD).unwrap();
        assert_eq!(opened.as_slice(), b"twenty bytes of seed");
        let empty = seal(&key(1), &random, b"", b"");
        assert_eq!(open(&key(1), &empty, b"").unwrap().as_slice(), b"");
    }

    #[test]
    fn sealed_value_does_not_contain_the_plaintext() {
        let sealed = seal(&key(1), &SeededRandom::new(1), b"AAAAAAAAAAAAAAAAAAAA", AAD);
        let raw = URL_SAFE_NO_PAD.decode(body(&sealed)).unwrap();
        assert_eq!(raw.len(), NONCE_BYTES + 20 + TAG_BYTES);
        assert!(!raw.windows(4).any(|w| w == b"AAAA"));
    }

    #[test]
    fn the_wrong_key_is_rejected() {
        let sealed = seal(&key(1), &SeededRandom::new(2), b"seed", AAD);
        assert_eq!(open(&key(2), &sealed, AAD), Err(SealError::Rejected));
    }

    #[test]
    fn the_wrong_aad_is_rejected() {
        let sealed = seal(&key(1), &SeededRandom::new(3), b"seed", AAD);
        assert_eq!(
            open(&key(1), &sealed, b"totp:another-user"),
            Err(SealError::Rejected)
        );
        assert_eq!(open(&key(1), &sealed, b""), Err(SealError::Rejected));
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let sealed = seal(&key(1), &SeededRandom::new(4), b"twenty bytes of seed", AAD);
        let raw = URL_SAFE_NO_PAD.decode(body(&sealed)).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                bad[i] ^= bit;
                let text = format!("v2.{}.{}", key(1).id(), URL_SAFE_NO_PAD.encode(&bad));
                assert_eq!(
                    open(&key(1), &text, AAD),
                    Err(SealError::Rejected),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_values_fail() {
        let sealed = seal(&key(1), &SeededRandom::new(5), b"seed", AAD);
        let raw = URL_SAFE_NO_PAD.decode(body(&sealed)).unwrap();
        let prefix = format!("v2.{}.", key(1).id());
        let shorter = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert_eq!(open(&key(1), &shorter, AAD), Err(SealError::Rejected));
        let mut longer = raw.clone();
        longer.push(0);
        let longer = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&longer));
        assert_eq!(open(&key(1), &longer, AAD), Err(SealError::Rejected));
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let random = SeededRandom::new(6);
        let a = seal(&key(1), &random, b"seed", AAD);
        let b = seal(&key(1), &random, b"seed", AAD);
        assert_ne!(a, b);
        assert_eq!(
            open(&key(1), &a, AAD).unwrap(),
            open(&key(1), &b, AAD).unwrap()
        );
    }

    #[test]
    fn malformed_strings_are_errors_not_panics() {
        let k = key(1);
        for bad in [
            "",
            "v1.",
            "v1",
            "v1.!!!!",
            "v1.AAAA",
            "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "V1.AAAA",
            "totp-secret",
            "v1.\u{1F600}",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        ] {
            assert_eq!(open(&k, bad, AAD), Err(SealError::Malformed), "{bad:?}");
        }
        assert_eq!(open(&k, "v3.AAAA", AAD), Err(SealError::UnsupportedVersion));
        for bad in ["v2.AAAA", "v2.0123.AAAA", "v2.0123456789abcdeg.AAAA"] {
            assert_eq!(open(&k, bad, AAD), Err(SealError::Malformed), "{bad:?}");
        }
        assert_eq!(
            open(&k, "v10.AAAA", AAD),
            Err(SealError::UnsupportedVersion)
        );
    }

    #[test]
    fn exactly_nonce_and_tag_with_no_ciphertext_is_rejected_not_malformed() {
        let text = format!(
            "v1.{}",
            URL_SAFE_NO_PAD.encode([0u8; NONCE_BYTES + TAG_BYTES])
        );
        assert_eq!(open(&key(1), &text, AAD), Err(SealError::Rejected));
    }

    #[test]
    fn keys_parse_from_either_base64_alphabet_with_or_without_padding() {
        let bytes: [u8; 32] = core::array::from_fn(|i| u8::try_from(i * 8 + 3).unwrap());
        let expected = MfaKey::from_bytes(bytes);
        for text in [
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            base64::engine::general_purpose::URL_SAFE.encode(bytes),
            format!("  {}\n", STANDARD.encode(bytes)),
        ] {
            assert_eq!(MfaKey::from_base64(&text).unwrap(), expected, "{text}");
        }
        assert_eq!(
            MfaKey::from_base64(expected.to_base64().expose()).unwrap(),
            expected
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        assert_eq!(
            MfaKey::from_base64(&STANDARD.encode([7u8; 16])),
            Err(InvalidMfaKey::Length(16))
        );
        assert_eq!(MfaKey::from_base64(""), Err(InvalidMfaKey::Length(0)));
        let err = MfaKey::from_base64("not base64 at all!").unwrap_err();
        assert_eq!(err, InvalidMfaKey::NotBase64);
        assert!(!err.to_string().contains("not base64 at all"));
    }

    #[test]
    fn keys_do_not_print_and_compare_by_value() {
        let k = MfaKey::generate(&SeededRandom::new(9));
        assert_eq!(format!("{k:?}"), "MfaKey([redacted])");
        assert!(!format!("{k:?}").contains(k.to_base64().expose()));
        assert_eq!(k.clone(), k);
        assert_ne!(k, MfaKey::generate(&SeededRandom::new(10)));
    }

    #[test]
    fn a_seal_opens_across_key_copies_built_from_config() {
        let k = MfaKey::generate(&SeededRandom::new(11));
        let config_text = k.to_base64();
        let sealed = seal(&k, &SeededRandom::new(12), b"seed", AAD);
        let reloaded = MfaKey::from_base64(config_text.expose()).unwrap();
        assert_eq!(open(&reloaded, &sealed, AAD).unwrap().as_slice(), b"seed");
    }
}
