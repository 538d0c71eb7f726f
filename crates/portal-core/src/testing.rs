//! Deterministic fakes for tests (feature `testkit`): a clock you move by hand, sequential ids,
//! seeded randomness and a cheap (but real) Argon2id hasher; and short constructors of valid
//! values ([`email`], [`name`], [`number`], [`keys`], …) that every test suite of the workspace
//! shares. Never use them in production.

use crate::customer::AffiliationKey;
use crate::hashing::Argon2idHasher;
use crate::permission::{PermissionKey, PermissionSet};
use crate::ports::{Clock, IdGenerator, SecretGenerator};
use crate::secretbox::MfaKey;
use crate::values::{CustomerNumber, EmailAddress, PersonName};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock at `start`.
    #[must_use]
    pub fn at(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// A clock at 2026-01-05 09:00:00 UTC.
    #[must_use]
    pub fn new() -> Self {
        Self::at(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap())
    }

    /// Moves the clock (backwards too, with a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ids 1, 2, 3, … (as UUIDs), so test output is stable. Version-7 shaped so they sort.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl SequentialIds {
    /// Starts at 1.
    #[must_use]
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0000 | u128::from(n))
    }
}

/// Seeded pseudo-randomness (SplitMix64). Deterministic; not secure.
#[derive(Debug)]
pub struct SeededRandom(Mutex<u64>);

impl SeededRandom {
    /// A generator with a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(seed))
    }
}

impl SecretGenerator for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A real Argon2id hasher at minimum cost, with seeded salts.
#[must_use]
pub fn fast_hasher(seed: u64) -> Argon2idHasher {
    Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(seed)))
}

// ---------------------------------------------------------------------------------------------
// Valid values in one call (they panic on invalid input: a bug in the test, not a case to test)
// ---------------------------------------------------------------------------------------------

/// A password every default policy accepts; the test suites register their users with it.
pub const PASSWORD: &str = "korrekt pferd batterie";

/// An e-mail address.
///
/// # Panics
/// `raw` is not an address.
#[must_use]
pub fn email(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).expect("valid e-mail address")
}

/// A person's name.
///
/// # Panics
/// `raw` is empty or too long.
#[must_use]
pub fn name(raw: &str) -> PersonName {
    PersonName::parse(raw).expect("valid name")
}

/// A customer number (nine digits, `D` prefix and spaces accepted).
///
/// # Panics
/// `raw` is not a customer number.
#[must_use]
pub fn number(raw: &str) -> CustomerNumber {
    CustomerNumber::parse(raw).expect("valid customer number")
}

/// A permission key.
///
/// # Panics
/// `raw` is not a valid key.
#[must_use]
pub fn key(raw: &str) -> PermissionKey {
    PermissionKey::parse(raw).expect("valid permission key")
}

/// A set of permission keys.
///
/// # Panics
/// One of `list` is not a valid key.
#[must_use]
pub fn keys(list: &[&str]) -> PermissionSet {
    list.iter().map(|k| key(k)).collect()
}

/// The affiliation `de-business`, the first of the default affiliations.
///
/// # Panics
/// Never.
#[must_use]
pub fn affiliation() -> AffiliationKey {
    AffiliationKey::parse("de-business").expect("valid affiliation key")
}

/// The fixed key that seals TOTP secrets in test servers.
#[must_use]
pub fn mfa_key() -> MfaKey {
    MfaKey::from_bytes([7u8; 32])
}

/// Sets up an authenticator app (TOTP) for the user signed in with the full session `token` —
/// a session just issued counts as the step-up — and returns its secret. Operators need one
/// (R22), so every harness that signs an operator in enrols one this way, with real codes.
///
/// The confirmation uses the code of the current 30-second step, which cannot be used again
/// (replay protection): the next login takes [`next_totp_code`].
///
/// # Panics
/// When the session is not live or the setup is refused (a test failure).
pub async fn enrol_totp(portal: &crate::Portal, token: &str) -> crate::totp::TotpSecret {
    let principal = portal
        .authenticate(token)
        .await
        .expect("a live session to set up an authenticator app");
    let enrolment = portal
        .start_totp_enrolment(&principal)
        .await
        .expect("TOTP setup starts");
    let secret = crate::totp::TotpSecret::from_base32(enrolment.secret_base32())
        .expect("the enrolment's secret is base32");
    let code = crate::totp::code_at(&secret, portal.deps().clock.now());
    portal
        .confirm_totp(&principal, &code)
        .await
        .expect("the current code confirms the app");
    secret
}

/// A TOTP code of `secret` that a login at `now` accepts even right after a code of the current
/// step was used (enrolment, an earlier login): the next step's code, which the one-step window
/// of [`totp::verify`](crate::totp::verify) admits.
#[must_use]
pub fn next_totp_code(secret: &crate::totp::TotpSecret, now: DateTime<Utc>) -> String {
    crate::totp::code_at(secret, now + TimeDelta::seconds(30))
        .expose()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The outbox kinds the core processes itself
// ---------------------------------------------------------------------------------------------

/// Runs the password-reset requests due now (the portal's clock) through the real
/// [`PasswordResetRequests`](crate::service::PasswordResetRequests) sender, as a dispatcher
/// would: claim with a lease → send → `mark_sent` (or `mark_failed` by the default
/// [`DeliveryRules`](crate::outbox::DeliveryRules)), through the [`OutboxStore`](crate::ports::OutboxStore)
/// port. Tests call it after `forgot_password` and before they read the mail it causes; returns
/// how many requests were processed successfully.
///
/// # Panics
/// The outbox cannot be claimed or acknowledged (a broken test store).
pub async fn process_reset_requests(
    portal: &crate::Portal,
    outbox: &dyn crate::ports::OutboxStore,
) -> usize {
    use crate::outbox::{DeliveryRules, Disposition, OutboxKind, Sender as _};
    let sender = crate::service::PasswordResetRequests(portal);
    let rules = DeliveryRules::default();
    let mut processed = 0;
    loop {
        let now = portal.deps().clock.now();
        let claim = portal.deps().ids.new_id();
        let entries = outbox
            .claim_outbox(
                OutboxKind::PasswordResetRequest.key(),
                claim,
                now,
                now + TimeDelta::minutes(5),
                10,
            )
            .await
            .expect("claim password-reset requests");
        if entries.is_empty() {
            return processed;
        }
        for entry in entries {
            let outcome = sender.send(&entry.message).await;
            let now = portal.deps().clock.now();
            let acknowledged = match rules.after(&entry, outcome.as_ref().map(|_| ()), now) {
                Disposition::Sent => {
                    processed += 1;
                    outbox.mark_sent(entry.id(), claim, now).await
                }
                Disposition::Retry(at) => {
                    let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                    outbox
                        .mark_failed(entry.id(), claim, &error, Some(at))
                        .await
                }
                Disposition::Dead => {
                    let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                    outbox.mark_failed(entry.id(), claim, &error, None).await
                }
            };
            assert!(
                acknowledged.expect("acknowledge a password-reset request"),
                "the claim was lost"
            );
        }
    }
}

/// The `PYTHONPATH` of the test tools that `scripts/test-deps` installs into
/// `target/test-tools` (pyotp, selenium; axe-core beside them in `../node`):
/// `PORTAL_TEST_PYTHONPATH` when set, else the last line the script prints (it installs on the
/// first run and answers at once later). Computed once per test process.
///
/// # Panics
/// When the script fails (no network on the first run, no `bash`).
#[must_use]
pub fn test_tools_python_path() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("PORTAL_TEST_PYTHONPATH")
            && !path.trim().is_empty()
        {
            return path;
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::process::Command::new("bash")
            .arg("scripts/test-deps")
            .current_dir(&root)
            .output()
            .expect("scripts/test-deps runs");
        assert!(
            out.status.success(),
            "scripts/test-deps failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 path")
            .lines()
            .last()
            .expect("scripts/test-deps prints the python path last")
            .trim()
            .to_owned()
    })
}
