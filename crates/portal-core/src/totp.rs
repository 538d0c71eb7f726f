//! Time-based one-time passwords (R16): RFC 6238 with HMAC-SHA-1, 6 digits and 30-second steps
//! counted from the Unix epoch (T0 = 0) as a 64-bit step number, as every authenticator app
//! expects.
//!
//! What this module is: the secret ([`TotpSecret`]), code generation ([`code_at`]) and
//! verification with a one-step window and replay rejection ([`verify`]), the generic HOTP/TOTP
//! primitives the RFC test vectors are stated in ([`hotp`], [`totp`]), and the enrolment material
//! ([`otpauth_uri`], [`TotpEnrolment`] with the QR code as SVG and as PNG data URI). The HMAC and
//! truncation come from `totp-rs`.
//!
//! What it is not: storage. [`verify`] returns the step it matched; the caller stores that step
//! as the factor's `last_used_step` in the same atomic commit that accepts the login, with a
//! condition that the stored step is still lower, so two concurrent submissions of one code give
//! one success. Secrets at rest are sealed with [`crate::secretbox`].
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use portal_core::totp::{self, TotpRejected, TotpSecret};
//!
//! let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
//! let now = Utc.timestamp_opt(59, 0).unwrap();
//! let code = totp::code_at(&secret, now);
//! assert_eq!(code.expose(), "287082");
//!
//! let step = totp::verify(&secret, code.expose(), now, None).unwrap();
//! assert_eq!(step, 1);
//! // The caller stored `step`; the same code is refused from now on.
//! assert_eq!(totp::verify(&secret, code.expose(), now, Some(step)), Err(TotpRejected::Replayed));
//! ```

use crate::ports::SecretGenerator;
use crate::secret::{SecretString, constant_time_eq};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use qrcodegen_image::qrcodegen::{QrCode, QrCodeEcc};
use std::fmt::{self, Write as _};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Digits of a Portal TOTP code.
pub const DIGITS: u8 = 6;
/// Length of a time step in seconds (RFC 6238 X).
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a generated secret: 160 bits, as RFC 4226 §4 recommends.
pub const SECRET_BYTES: usize = 20;
/// Steps either side of the current one that [`verify`] accepts (RFC 6238 §5.2 recommends one).
pub const WINDOW_STEPS: u64 = 1;

/// Longest issuer accepted in an otpauth URI, in characters.
pub const MAX_ISSUER_CHARS: usize = 64;
/// Longest account name accepted in an otpauth URI, in characters (an email address fits).
pub const MAX_ACCOUNT_CHARS: usize = 254;

// ---------------------------------------------------------------------------------------------
// The secret
// ---------------------------------------------------------------------------------------------

/// The shared TOTP secret of one factor: 20 bytes from the [`SecretGenerator`].
///
/// `Debug` prints `TotpSecret([redacted])`, there is no `Display`, and the bytes are zeroized on
/// drop. Equality is constant-time. Shown to the user once at enrolment (as base32, in the
/// otpauth URI and the QR code) and stored only sealed ([`crate::secretbox`]).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret([u8; SECRET_BYTES]);

/// Bytes or text that are not a Portal TOTP secret. The input is not echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTotpSecret {
    /// Not exactly [`SECRET_BYTES`] bytes.
    #[error("a totp secret has 20 bytes, got {0}")]
    Length(usize),
    /// Not RFC 4648 base32.
    #[error("a totp secret in text form must be base32")]
    NotBase32,
}

impl TotpSecret {
    /// Draws a fresh secret.
    #[must_use]
    pub fn generate(random: &dyn SecretGenerator) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        random.fill(&mut bytes);
        let secret = Self(bytes);
        bytes.zeroize();
        secret
    }

    /// Rebuilds a secret from its bytes (as opened from storage).
    ///
    /// # Errors
    /// [`InvalidTotpSecret::Length`] unless `bytes` has exactly [`SECRET_BYTES`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidTotpSecret> {
        let array: [u8; SECRET_BYTES] = bytes
            .try_into()
            .map_err(|_| InvalidTotpSecret::Length(bytes.len()))?;
        Ok(Self(array))
    }

    /// Parses the base32 text form (RFC 4648 alphabet, case-insensitive, padding and whitespace
    /// ignored), as an authenticator app or [`to_base32`](Self::to_base32) writes it.
    ///
    /// # Errors
    /// [`InvalidTotpSecret::NotBase32`] for text outside the alphabet,
    /// [`InvalidTotpSecret::Length`] when it does not decode to [`SECRET_BYTES`] bytes.
    pub fn from_base32(text: &str) -> Result<Self, InvalidTotpSecret> {
        let compact: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let decoded = totp_rs::Secret::try_from_base32(compact.as_str())
            .map_err(|_| InvalidTotpSecret::NotBase32)?;
        Self::from_bytes(decoded.as_bytes())
    }

    /// The secret as unpadded upper-case base32, for manual entry into an authenticator app.
    #[must_use]
    pub fn to_base32(&self) -> SecretString {
        SecretString::new(self.as_totp_rs().to_base32())
    }

    /// The raw bytes. Call only to seal them for storage.
    #[must_use]
    pub const fn expose_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    /// A `totp-rs` copy of the secret; zeroized on drop (its `zeroize` feature is on).
    fn as_totp_rs(&self) -> totp_rs::Secret {
        totp_rs::Secret::from(&self.0[..])
    }
}

impl PartialEq for TotpSecret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for TotpSecret {}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

// ---------------------------------------------------------------------------------------------
// Generic HOTP / TOTP (RFC 4226, RFC 6238)
// ---------------------------------------------------------------------------------------------

/// The HMAC of an HOTP/TOTP computation. Portal's own factors use [`HmacAlgorithm::Sha1`], the
/// only one all authenticator apps support; the others exist for the RFC 6238 vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    /// HMAC-SHA-1.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl HmacAlgorithm {
    /// The name used in otpauth URIs (`SHA1`, `SHA256`, `SHA512`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    const fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Self::Sha1 => totp_rs::Algorithm::SHA1,
            Self::Sha256 => totp_rs::Algorithm::SHA256,
            Self::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// Parameters outside what RFC 4226 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpParameterError {
    /// Codes have 6 to 8 digits (RFC 4226 §5.3).
    #[error("an otp has 6 to 8 digits, not {0}")]
    Digits(u8),
    /// The key has fewer than 128 bits (RFC 4226 §4 R6).
    #[error("an otp key has at least 16 bytes, got {0}")]
    KeyTooShort(usize),
}

/// An HOTP generator over one key: `totp-rs` with a one-second step, so its "time" is the
/// counter itself.
struct Hotp(totp_rs::Totp);

impl Hotp {
    fn new(key: &[u8], algorithm: HmacAlgorithm, digits: u8) -> Result<Self, OtpParameterError> {
        if !(6..=8).contains(&digits) {
            return Err(OtpParameterError::Digits(digits));
        }
        if key.len() < 16 {
            return Err(OtpParameterError::KeyTooShort(key.len()));
        }
        // Parameters are checked above; `build_noncompliant` panics only for 10+ digits.
        let inner = totp_rs::Builder::new()
            .with_algorithm(algorithm.to_totp_rs())
            .with_digits(digits)
            .with_step_duration(1)
            .with_secret(key)
            .build_noncompliant();
        Ok(Self(inner))
    }

    fn portal(secret: &TotpSecret) -> Self {
        Self(
            totp_rs::Builder::new()
                .with_algorithm(totp_rs::Algorithm::SHA1)
                .with_digits(DIGITS)
                .with_step_duration(1)
                .with_secret(secret.as_totp_rs())
                .build_noncompliant(),
        )
    }

    fn code(&self, counter: u64) -> Zeroizing<String> {
        Zeroizing::new(self.0.generate(counter).to_string())
    }
}

/// RFC 4226 HOTP: the code for `counter` under `key`, zero-padded to `digits`.
///
/// # Errors
/// [`OtpParameterError`] when `digits` is outside 6..=8 or `key` is shorter than 16 bytes.
pub fn hotp(
    key: &[u8],
    counter: u64,
    algorithm: HmacAlgorithm,
    digits: u8,
) -> Result<SecretString, OtpParameterError> {
    let generator = Hotp::new(key, algorithm, digits)?;
    Ok(SecretString::new(generator.code(counter).as_str()))
}

/// RFC 6238 TOTP with X = 30 s and T0 = 0: the code at `unix_seconds` under `key`. T is the
/// 64-bit step number `unix_seconds / 30`.
///
/// # Errors
/// [`OtpParameterError`] when `digits` is outside 6..=8 or `key` is shorter than 16 bytes.
pub fn totp(
    key: &[u8],
    unix_seconds: u64,
    algorithm: HmacAlgorithm,
    digits: u8,
) -> Result<SecretString, OtpParameterError> {
    hotp(key, unix_seconds / STEP_SECONDS, algorithm, digits)
}

// ---------------------------------------------------------------------------------------------
// Portal's TOTP: SHA-1, 6 digits, 30 s
// ---------------------------------------------------------------------------------------------

/// The RFC 6238 step number T at `now`. Instants before 1970 count as step 0: a clock that far
/// off is broken, and saturating keeps verification total.
#[must_use]
pub fn time_step(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0) / STEP_SECONDS
}

/// The code of `secret` for step `step`.
#[must_use]
pub fn code_for_step(secret: &TotpSecret, step: u64) -> SecretString {
    SecretString::new(Hotp::portal(secret).code(step).as_str())
}

/// The code an authenticator app shows at `now`.
#[must_use]
pub fn code_at(secret: &TotpSecret, now: DateTime<Utc>) -> SecretString {
    code_for_step(secret, time_step(now))
}

/// Why a TOTP code was refused. Callers usually answer all three the same way and count the
/// failure; the variants exist for the audit log and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpRejected {
    /// Not six digits (whitespace is ignored).
    #[error("the code must be six digits")]
    Malformed,
    /// Six digits, but not the code of any step in the window.
    #[error("the code is wrong or expired")]
    Invalid,
    /// The code of a step at or before the last one already used (RFC 6238 §5.2).
    #[error("the code was already used")]
    Replayed,
}

/// Verifies a code typed by the user at server time `now`.
///
/// Accepts the codes of steps T−1, T and T+1 (one step of clock drift or network delay either
/// way, RFC 6238 §5.2), preferring T, and refuses any step at or before `last_used_step`, which
/// also refuses an older code that is still inside the window once a newer one was used.
/// Whitespace in `code` is ignored. All candidate codes are computed and compared in constant
/// time, so timing does not tell which step matched.
///
/// On success it returns the matched step; the caller MUST store it as the new `last_used_step`
/// in the same atomic commit that accepts the code, conditional on the stored value still being
/// lower (or absent).
///
/// # Errors
/// [`TotpRejected::Malformed`] for anything but six ASCII digits, [`TotpRejected::Invalid`] for
/// a code of no step in the window, [`TotpRejected::Replayed`] when every matching step is at or
/// before `last_used_step`.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now: DateTime<Utc>,
    last_used_step: Option<u64>,
) -> Result<u64, TotpRejected> {
    let typed: Zeroizing<String> =
        Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect());
    if typed.len() != usize::from(DIGITS) || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpRejected::Malformed);
    }

    let now_step = time_step(now);
    // Preference order: the current step first, then the past one, then the future one.
    let candidates = [
        Some(now_step),
        now_step.checked_sub(WINDOW_STEPS),
        now_step.checked_add(WINDOW_STEPS),
    ];
    let generator = Hotp::portal(secret);
    let mut matched = [false; 3];
    for (slot, step) in matched.iter_mut().zip(candidates) {
        if let Some(step) = step {
            *slot = constant_time_eq(generator.code(step).as_bytes(), typed.as_bytes());
        }
    }

    let mut any_match = false;
    for (is_match, step) in matched.into_iter().zip(candidates) {
        let Some(step) = step.filter(|_| is_match) else {
            continue;
        };
        any_match = true;
        if last_used_step.is_none_or(|last| step > last) {
            return Ok(step);
        }
    }
    Err(if any_match {
        TotpRejected::Replayed
    } else {
        TotpRejected::Invalid
    })
}

// ---------------------------------------------------------------------------------------------
// Enrolment: otpauth URI and QR code
// ---------------------------------------------------------------------------------------------

/// The issuer or account name cannot go into an otpauth URI, or the URI does not fit a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrolmentError {
    /// Empty, longer than [`MAX_ISSUER_CHARS`], or containing `:` or a control character.
    #[error("the issuer must be 1 to 64 characters without ':' or control characters")]
    InvalidIssuer,
    /// Empty, longer than [`MAX_ACCOUNT_CHARS`], or containing `:` or a control character.
    #[error("the account name must be 1 to 254 characters without ':' or control characters")]
    InvalidAccount,
    /// The text does not fit a QR code, or the PNG encoder failed.
    #[error("the qr code could not be rendered")]
    QrCode,
}

fn valid_label_part(s: &str, max_chars: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max_chars
        && !s.chars().any(|c| c == ':' || c.is_control())
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a space is `%20` (never
/// `+`, which some apps would show literally) and `@`, `:`, `&`, `=` cannot be misread.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The Key URI an authenticator app imports:
/// `otpauth://totp/Issuer:account?secret=…&issuer=Issuer&algorithm=SHA1&digits=6&period=30`,
/// with issuer and account percent-encoded (UTF-8) in both places.
///
/// The result contains the secret, hence [`SecretString`].
///
/// # Errors
/// [`EnrolmentError::InvalidIssuer`] or [`EnrolmentError::InvalidAccount`] when either is empty,
/// too long, or contains `:` (the label separator) or a control character.
pub fn otpauth_uri(
    secret: &TotpSecret,
    issuer: &str,
    account: &str,
) -> Result<SecretString, EnrolmentError> {
    if !valid_label_part(issuer, MAX_ISSUER_CHARS) {
        return Err(EnrolmentError::InvalidIssuer);
    }
    if !valid_label_part(account, MAX_ACCOUNT_CHARS) {
        return Err(EnrolmentError::InvalidAccount);
    }
    let issuer = percent_encode(issuer);
    let account = percent_encode(account);
    let secret = secret.to_base32();
    Ok(SecretString::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm={}&digits={DIGITS}\
         &period={STEP_SECONDS}",
        secret.expose(),
        HmacAlgorithm::Sha1.as_str(),
    )))
}

fn encode_qr(text: &str) -> Result<QrCode, EnrolmentError> {
    QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|_| EnrolmentError::QrCode)
}

/// Quiet zone around the symbol, in modules (ISO/IEC 18004 asks for four).
const QR_BORDER: i32 = 4;
/// Pixels per module in the PNG and the SVG's nominal size (as `totp-rs` draws it).
const QR_SCALE: i32 = 8;

fn render_svg(qr: &QrCode) -> String {
    let size = qr.size();
    let side = size + 2 * QR_BORDER;
    let px = side * QR_SCALE;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{px}\" \
         height=\"{px}\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/><path fill=\"#000000\" d=\""
    );
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                let _ = write!(svg, "M{},{}h1v1h-1z", x + QR_BORDER, y + QR_BORDER);
            }
        }
    }
    svg.push_str("\"/></svg>");
    svg
}

fn render_png_data_uri(qr: &QrCode) -> Result<String, EnrolmentError> {
    use qrcodegen_image::image::ImageEncoder as _;
    use qrcodegen_image::image::codecs::png::PngEncoder;

    let canvas = qrcodegen_image::draw_canvas(qr.clone());
    let (width, height) = canvas.dimensions();
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(
            canvas.as_raw(),
            width,
            height,
            qrcodegen_image::image::ExtendedColorType::L8,
        )
        .map_err(|_| EnrolmentError::QrCode)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    ))
}

/// `text` (an otpauth URI) as a QR code in SVG, ready to inline in HTML: black modules on white,
/// a four-module quiet zone, 8 px per module nominal size, scalable through its `viewBox`.
///
/// # Errors
/// [`EnrolmentError::QrCode`] when `text` does not fit a QR code (about 2,300 bytes).
pub fn qr_svg(text: &str) -> Result<String, EnrolmentError> {
    Ok(render_svg(&encode_qr(text)?))
}

/// `text` (an otpauth URI) as a QR code in a PNG, as a `data:image/png;base64,…` URI for an
/// `<img src>`. Same symbol as [`qr_svg`].
///
/// # Errors
/// [`EnrolmentError::QrCode`] when `text` does not fit a QR code or the PNG encoder fails.
pub fn qr_png_data_uri(text: &str) -> Result<String, EnrolmentError> {
    render_png_data_uri(&encode_qr(text)?)
}

/// Everything shown once when a user starts TOTP enrolment: the secret for manual entry, the
/// otpauth URI, and the same URI as a QR code in SVG and as a PNG data URI.
///
/// All four contain the secret: `Debug` is redacted and the texts are zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpEnrolment {
    secret_base32: String,
    otpauth_uri: String,
    qr_svg: String,
    qr_png_data_uri: String,
}

impl TotpEnrolment {
    /// Builds the enrolment material for `secret`, labelled `issuer:account` in the app.
    ///
    /// # Errors
    /// As [`otpauth_uri`], plus [`EnrolmentError::QrCode`] when the URI does not fit a QR code.
    pub fn new(secret: &TotpSecret, issuer: &str, account: &str) -> Result<Self, EnrolmentError> {
        let uri = otpauth_uri(secret, issuer, account)?;
        let qr = encode_qr(uri.expose())?;
        Ok(Self {
            secret_base32: secret.to_base32().expose().to_owned(),
            otpauth_uri: uri.expose().to_owned(),
            qr_svg: render_svg(&qr),
            qr_png_data_uri: render_png_data_uri(&qr)?,
        })
    }

    /// The secret as unpadded base32, for typing into an app.
    #[must_use]
    pub fn secret_base32(&self) -> &str {
        &self.secret_base32
    }

    /// The otpauth URI (see [`otpauth_uri`]).
    #[must_use]
    pub fn otpauth_uri(&self) -> &str {
        &self.otpauth_uri
    }

    /// The URI as a QR code in SVG (see [`qr_svg`]).
    #[must_use]
    pub fn qr_svg(&self) -> &str {
        &self.qr_svg
    }

    /// The URI as a QR code, `data:image/png;base64,…` (see [`qr_png_data_uri`]).
    #[must_use]
    pub fn qr_png_data_uri(&self) -> &str {
        &self.qr_png_data_uri
    }
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;
    use chrono::TimeZone as _;

    const RFC_SEED_SHA1: &[u8] = b"12345678901234567890";
    const RFC_SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const RFC_SEED_SHA512: &[u8] =
        b"1234567890123456789012345678901234567890123456789012345678901234";

    fn at(unix: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(unix, 0).unwrap()
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SEED_SHA1).unwrap()
    }

    fn code(secret: &TotpSecret, step: u64) -> String {
        code_for_step(secret, step).expose().to_owned()
    }

    // --- RFC vectors -------------------------------------------------------------------------

    #[test]
    fn every_rfc4226_appendix_d_hotp_vector_matches() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in (0u64..).zip(expected) {
            let got = hotp(RFC_SEED_SHA1, counter, HmacAlgorithm::Sha1, 6).unwrap();
            assert_eq!(got.expose(), want, "counter {counter}");
        }
    }

    #[test]
    fn every_rfc6238_appendix_b_vector_matches_with_length_matched_seeds() {
        // (time, SHA1, SHA256, SHA512), 8 digits.
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in table {
            for (alg, seed, want) in [
                (HmacAlgorithm::Sha1, RFC_SEED_SHA1, sha1),
                (HmacAlgorithm::Sha256, RFC_SEED_SHA256, sha256),
                (HmacAlgorithm::Sha512, RFC_SEED_SHA512, sha512),
            ] {
                let got = totp(seed, time, alg, 8).unwrap();
                assert_eq!(got.expose(), want, "{alg:?} at t={time}");
            }
        }
    }

    #[test]
    fn the_20_byte_seed_with_sha256_gives_a_different_code_than_the_rfc_table() {
        // The appendix X pitfall: the RFC's SHA-256 column needs the 32-byte seed.
        let got = totp(RFC_SEED_SHA1, 59, HmacAlgorithm::Sha256, 8).unwrap();
        assert_eq!(got.expose(), "32247374");
    }

    #[test]
    fn step_number_is_64_bit() {
        let t = 20_000_000_000u64 / STEP_SECONDS;
        assert_eq!(t, 0x27BC_86AA);
        assert_eq!(time_step(at(20_000_000_000)), t);
        // A step past u32::MAX still computes (T is encoded as 8 bytes).
        let far = u64::from(u32::MAX) + 7;
        assert_eq!(
            hotp(RFC_SEED_SHA1, far, HmacAlgorithm::Sha1, 6)
                .unwrap()
                .expose(),
            code(&rfc_secret(), far)
        );
    }

    #[test]
    fn portal_codes_are_the_rfc_sha1_codes_at_six_digits() {
        let secret = rfc_secret();
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(&secret, at(time)).expose(), &eight[2..], "t={time}");
        }
    }

    #[test]
    fn otp_parameters_outside_the_rfc_are_refused() {
        assert_eq!(
            hotp(RFC_SEED_SHA1, 0, HmacAlgorithm::Sha1, 5).unwrap_err(),
            OtpParameterError::Digits(5)
        );
        assert_eq!(
            hotp(RFC_SEED_SHA1, 0, HmacAlgorithm::Sha1, 9).unwrap_err(),
            OtpParameterError::Digits(9)
        );
        assert_eq!(
            hotp(&[0u8; 15], 0, HmacAlgorithm::Sha1, 6).unwrap_err(),
            OtpParameterError::KeyTooShort(15)
        );
    }

    // --- Step boundaries and window ------------------------------------------------------------

    #[test]
    fn step_boundaries_fall_at_multiples_of_thirty_seconds() {
        assert_eq!(time_step(at(0)), 0);
        assert_eq!(time_step(at(29)), 0);
        assert_eq!(time_step(at(30)), 1);
        assert_eq!(time_step(at(59)), 1);
        assert_eq!(time_step(at(60)), 2);
        let late = Utc.timestamp_opt(29, 999_999_999).unwrap();
        assert_eq!(time_step(late), 0, "29.999 s is still step 0");
        assert_eq!(time_step(at(-1)), 0, "pre-epoch saturates");
        let secret = rfc_secret();
        assert_eq!(code_at(&secret, at(29)).expose(), "755224");
        assert_eq!(code_at(&secret, at(30)).expose(), "287082");
        assert_eq!(code_at(&secret, at(59)).expose(), "287082");
    }

    #[test]
    fn code_of_the_current_step_verifies_at_both_ends_of_the_step() {
        let secret = rfc_secret();
        let c = code(&secret, 1);
        assert_eq!(verify(&secret, &c, at(30), None), Ok(1));
        assert_eq!(verify(&secret, &c, at(59), None), Ok(1));
    }

    #[test]
    fn one_step_either_side_is_accepted_and_two_are_not() {
        let secret = TotpSecret::generate(&SeededRandom::new(7));
        let now = at(1_700_000_015);
        let t = time_step(now);
        assert_eq!(verify(&secret, &code(&secret, t - 1), now, None), Ok(t - 1));
        assert_eq!(verify(&secret, &code(&secret, t + 1), now, None), Ok(t + 1));
        assert_eq!(
            verify(&secret, &code(&secret, t - 2), now, None),
            Err(TotpRejected::Invalid)
        );
        assert_eq!(
            verify(&secret, &code(&secret, t + 2), now, None),
            Err(TotpRejected::Invalid)
        );
    }

    #[test]
    fn previous_steps_code_expires_at_the_second_boundary() {
        let secret = rfc_secret();
        let c = code(&secret, 1); // valid 30..59, accepted as T−1 during 60..89
        assert_eq!(verify(&secret, &c, at(89), None), Ok(1));
        assert_eq!(
            verify(&secret, &c, at(90), None),
            Err(TotpRejected::Invalid)
        );
        // and accepted as T+1 from 0 s
        assert_eq!(verify(&secret, &c, at(0), None), Ok(1));
    }

    #[test]
    fn verification_at_step_zero_does_not_underflow() {
        let secret = rfc_secret();
        assert_eq!(verify(&secret, &code(&secret, 0), at(0), None), Ok(0));
        assert_eq!(
            verify(&secret, "000000", at(0), None),
            Err(TotpRejected::Invalid)
        );
    }

    // --- Replay --------------------------------------------------------------------------------

    #[test]
    fn the_same_step_is_accepted_only_once() {
        let secret = TotpSecret::generate(&SeededRandom::new(3));
        let now = at(1_700_000_000);
        let c = code_at(&secret, now);
        let step = verify(&secret, c.expose(), now, None).unwrap();
        assert_eq!(
            verify(&secret, c.expose(), now, Some(step)),
            Err(TotpRejected::Replayed)
        );
    }

    #[test]
    fn an_older_still_valid_code_is_refused_after_a_newer_one_was_used() {
        let secret = TotpSecret::generate(&SeededRandom::new(4));
        let now = at(1_700_000_000);
        let t = time_step(now);
        let used = verify(&secret, &code(&secret, t), now, None).unwrap();
        assert_eq!(
            verify(&secret, &code(&secret, t - 1), now, Some(used)),
            Err(TotpRejected::Replayed)
        );
    }

    #[test]
    fn the_next_step_is_accepted_after_use() {
        let secret = TotpSecret::generate(&SeededRandom::new(5));
        let now = at(1_700_000_000);
        let used = verify(&secret, code_at(&secret, now).expose(), now, None).unwrap();
        let later = now + chrono::TimeDelta::seconds(30);
        assert_eq!(
            verify(&secret, code_at(&secret, later).expose(), later, Some(used)),
            Ok(used + 1)
        );
        // A future code used early blocks the current one, so the step can never be reused.
        let t = time_step(now);
        let secret = TotpSecret::generate(&SeededRandom::new(6));
        let used = verify(&secret, &code(&secret, t + 1), now, None).unwrap();
        assert_eq!(
            verify(&secret, &code(&secret, t), now, Some(used)),
            Err(TotpRejected::Replayed)
        );
    }

    #[test]
    fn a_backward_clock_jump_does_not_reopen_used_steps() {
        let secret = TotpSecret::generate(&SeededRandom::new(8));
        let now = at(1_700_000_600);
        let used = verify(&secret, code_at(&secret, now).expose(), now, None).unwrap();
        let earlier = now - chrono::TimeDelta::minutes(10);
        assert_eq!(
            verify(
                &secret,
                code_at(&secret, earlier).expose(),
                earlier,
                Some(used)
            ),
            Err(TotpRejected::Replayed)
        );
    }

    // --- Malformed input ---------------------------------------------------------------------

    #[test]
    fn malformed_codes_are_refused_before_any_hmac() {
        let secret = rfc_secret();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "+12345",
            "-12345",
            "١٢٣٤٥٦",
            "12 34 5",
        ] {
            assert_eq!(
                verify(&secret, bad, at(59), None),
                Err(TotpRejected::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn whitespace_in_a_code_is_ignored() {
        let secret = rfc_secret();
        assert_eq!(verify(&secret, " 287 082\n", at(59), None), Ok(1));
    }

    // --- Secret ------------------------------------------------------------------------------

    #[test]
    fn generated_secrets_have_160_bits_and_differ() {
        let random = SeededRandom::new(1);
        let a = TotpSecret::generate(&random);
        let b = TotpSecret::generate(&random);
        assert_eq!(a.expose_bytes().len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn secret_round_trips_through_base32() {
        let secret = rfc_secret();
        let text = secret.to_base32();
        assert_eq!(text.expose(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(text.expose()).unwrap(), secret);
        assert_eq!(
            TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(),
            secret
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(
            TotpSecret::from_bytes(&[0u8; 19]).unwrap_err(),
            InvalidTotpSecret::Length(19)
        );
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBV").unwrap_err(),
            InvalidTotpSecret::Length(5)
        );
        assert_eq!(
            TotpSecret::from_base32("GEZDGNB1").unwrap_err(),
            InvalidTotpSecret::NotBase32
        );
    }

    #[test]
    fn secrets_and_enrolments_do_not_print() {
        let secret = rfc_secret();
        let dbg = format!("{secret:?}");
        assert_eq!(dbg, "TotpSecret([redacted])");
        let e = TotpEnrolment::new(&secret, "ACME", "a@example.com").unwrap();
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("GEZDGNBV"), "{dbg}");
        assert!(!format!("{:?}", secret.to_base32()).contains("GEZDGNBV"));
    }

    // --- Enrolment ---------------------------------------------------------------------------

    #[test]
    fn otpauth_uri_names_every_parameter_and_percent_encodes_the_label() {
        let secret = rfc_secret();
        let uri = otpauth_uri(&secret, "ACME Portal", "alice+mfa@example.com").unwrap();
        assert_eq!(
            uri.expose(),
            "otpauth://totp/ACME%20Portal:alice%2Bmfa%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Portal\
             &algorithm=SHA1&digits=6&period=30"
        );
        let umlaut = otpauth_uri(&secret, "Müller & Söhne", "jörg").unwrap();
        assert!(
            umlaut
                .expose()
                .starts_with("otpauth://totp/M%C3%BCller%20%26%20S%C3%B6hne:j%C3%B6rg?"),
            "{}",
            umlaut.expose()
        );
    }

    #[test]
    fn totp_rs_reads_our_uri_back() {
        let secret = rfc_secret();
        let uri = otpauth_uri(&secret, "ACME Portal", "alice@example.com").unwrap();
        let parsed = totp_rs::Totp::from_url(uri.expose()).unwrap();
        assert_eq!(parsed.secret().as_bytes(), secret.expose_bytes());
        assert_eq!(parsed.issuer(), Some("ACME Portal"));
        assert_eq!(parsed.account_name(), "alice@example.com");
        assert_eq!(parsed.digits(), 6);
        assert_eq!(parsed.step(), 30);
        assert_eq!(parsed.algorithm(), totp_rs::Algorithm::SHA1);
    }

    #[test]
    fn labels_that_cannot_be_encoded_are_refused() {
        let secret = rfc_secret();
        for (issuer, account, want) in [
            ("", "a", EnrolmentError::InvalidIssuer),
            ("A:B", "a", EnrolmentError::InvalidIssuer),
            ("A\nB", "a", EnrolmentError::InvalidIssuer),
            ("ACME", "", EnrolmentError::InvalidAccount),
            ("ACME", "a:b", EnrolmentError::InvalidAccount),
            ("ACME", "a\u{0}b", EnrolmentError::InvalidAccount),
        ] {
            assert_eq!(otpauth_uri(&secret, issuer, account).unwrap_err(), want);
        }
        let long = "x".repeat(MAX_ISSUER_CHARS + 1);
        assert_eq!(
            otpauth_uri(&secret, &long, "a").unwrap_err(),
            EnrolmentError::InvalidIssuer
        );
        // The longest ASCII labels still fit a QR code, even when every character is escaped.
        let issuer = "&".repeat(MAX_ISSUER_CHARS);
        let account = "@".repeat(MAX_ACCOUNT_CHARS);
        assert!(TotpEnrolment::new(&secret, &issuer, &account).is_ok());
        // Labels of four-byte characters at the limits do not, and say so.
        let account = "😀".repeat(MAX_ACCOUNT_CHARS);
        assert_eq!(
            TotpEnrolment::new(&secret, "ACME", &account).unwrap_err(),
            EnrolmentError::QrCode
        );
    }

    #[test]
    fn enrolment_material_describes_one_uri() {
        let secret = TotpSecret::generate(&SeededRandom::new(9));
        let e = TotpEnrolment::new(&secret, "ACME", "bob@example.com").unwrap();
        assert_eq!(e.secret_base32(), secret.to_base32().expose());
        assert_eq!(
            e.otpauth_uri(),
            otpauth_uri(&secret, "ACME", "bob@example.com")
                .unwrap()
                .expose()
        );
        assert_eq!(e.qr_svg(), qr_svg(e.otpauth_uri()).unwrap());
        assert_eq!(
            e.qr_png_data_uri(),
            qr_png_data_uri(e.otpauth_uri()).unwrap()
        );
        assert!(e.qr_svg().starts_with("<svg"));
        assert!(e.qr_png_data_uri().starts_with("data:image/png;base64,"));
        assert_eq!(
            qr_svg(&"x".repeat(4000)).unwrap_err(),
            EnrolmentError::QrCode
        );
    }
}
