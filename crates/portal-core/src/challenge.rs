//! Mailed six-digit codes (R7). A challenge belongs to one registration attempt, identified by an
//! opaque ticket the client keeps; the code alone is worthless without the ticket, and a ticket is
//! worthless without the code. Codes expire, allow a limited number of tries, and can be re-sent
//! after a cooldown; a re-sent code replaces the old one.

use crate::customer::CorruptRecord;
use crate::ids::{ActionTokenId, ChallengeId, UserId};
use crate::password::PasswordHash;
use crate::secret::{TokenHash, VerificationCode};
use crate::values::EmailAddress;
use chrono::{DateTime, TimeDelta, Utc};

/// What confirming the code completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// A self-registration: the pending user becomes active.
    Registration,
    /// An accepted invitation: the invited user becomes active and the invitation is used up.
    Invitation {
        /// The invitation token.
        token: ActionTokenId,
    },
    /// Someone registered an address that already has an account. The owner got a notice instead
    /// of a code, so this challenge can never be confirmed; it exists so that every answer
    /// (wrong code, too many tries, re-send cooldown) is the same as for a new address.
    ExistingAccount,
    /// A logged-in user changes their address: the code went to the new address (the challenge's
    /// `email`), which replaces the old one once confirmed.
    EmailChange,
}

impl ChallengePurpose {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Invitation { .. } => "invitation",
            Self::ExistingAccount => "existing_account",
            Self::EmailChange => "email_change",
        }
    }
}

/// Limits for mailed codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    /// A code is valid this long (at most 15 minutes).
    pub ttl: TimeDelta,
    /// Wrong tries allowed per code.
    pub max_attempts: u32,
    /// Time between two sends.
    pub resend_cooldown: TimeDelta,
    /// Sends per challenge, the first included.
    pub max_sends: u32,
}

impl Default for CodePolicy {
    fn default() -> Self {
        Self {
            ttl: TimeDelta::minutes(15),
            max_attempts: 5,
            resend_cooldown: TimeDelta::seconds(60),
            max_sends: 5,
        }
    }
}

/// Everything stored about a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// Id (also the salt of the code hash).
    pub id: ChallengeId,
    /// Hash of the ticket the client holds.
    pub ticket_hash: TokenHash,
    /// The pending, invited or (for [`ChallengePurpose::ExistingAccount`]) existing user.
    pub user_id: UserId,
    /// What confirming completes.
    pub purpose: ChallengePurpose,
    /// The address the codes (or the notice) went to.
    pub email: EmailAddress,
    /// Hash of the current code.
    pub code_hash: TokenHash,
    /// The password chosen in this attempt, applied when the code is confirmed.
    pub password_hash: Option<PasswordHash>,
    /// When the current code expires.
    pub expires_at: DateTime<Utc>,
    /// Wrong tries left for the current code.
    pub attempts_left: u32,
    /// Codes sent so far.
    pub sends: u32,
    /// When the last code was sent.
    pub last_sent_at: DateTime<Utc>,
    /// When the attempt started.
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Why a one-time code was not accepted: a mailed code, a texted code, an authenticator app's
/// code or a recovery code. Every use case that checks a code answers with this one type, wrapped
/// in its own error (`VerifyError::Code`, `ProfileError::Code`, `MfaError::Code`), so an adapter
/// maps the four outcomes once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code does not have the right form (no try is used up).
    #[error("malformed code")]
    Malformed,
    /// Wrong code; a try was used up.
    #[error("wrong code")]
    Wrong,
    /// An authenticator app's code that was right but is already used (its time step was
    /// accepted before: replay protection); the next one, about 30 seconds later, will do. A try
    /// was used up, as for a wrong code.
    #[error("the code was already used")]
    Used,
    /// The code has expired; a new one must be sent.
    #[error("the code has expired")]
    Expired,
    /// No tries left for this code; a new one must be sent (or, for a login, start again).
    #[error("too many wrong codes")]
    TooManyAttempts,
}

impl From<crate::secret::MalformedCode> for CodeError {
    fn from(_: crate::secret::MalformedCode) -> Self {
        Self::Malformed
    }
}

/// Why no new code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResendRefused {
    /// Too soon after the last one.
    #[error("wait before asking for another code")]
    TooSoon {
        /// When the next code may be sent.
        retry_at: DateTime<Utc>,
    },
    /// The attempt has used up its sends.
    #[error("no more codes for this attempt")]
    TooMany,
}

/// A mailed-code challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChallenge {
    rec: ChallengeRecord,
}

impl EmailChallenge {
    /// Starts a challenge with its first code.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        id: ChallengeId,
        ticket_hash: TokenHash,
        user_id: UserId,
        purpose: ChallengePurpose,
        email: EmailAddress,
        code: &VerificationCode,
        password_hash: Option<PasswordHash>,
        policy: &CodePolicy,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            rec: ChallengeRecord {
                id,
                ticket_hash,
                user_id,
                purpose,
                email,
                code_hash: code.hash_for(id.as_uuid().as_bytes()),
                password_hash,
                expires_at: now + policy.ttl,
                attempts_left: policy.max_attempts,
                sends: 1,
                last_sent_at: now,
                created_at: now,
                version: 0,
            },
        }
    }

    /// Rebuilds a challenge read back from storage.
    ///
    /// # Errors
    /// A registration or invitation without a password.
    pub fn from_record(rec: ChallengeRecord) -> Result<Self, CorruptRecord> {
        if matches!(
            rec.purpose,
            ChallengePurpose::Registration | ChallengePurpose::Invitation { .. }
        ) && rec.password_hash.is_none()
        {
            return Err(CorruptRecord::new("challenge", "missing password"));
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &ChallengeRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> ChallengeId {
        self.rec.id
    }

    /// Whose.
    #[must_use]
    pub fn user_id(&self) -> UserId {
        self.rec.user_id
    }

    /// Purpose.
    #[must_use]
    pub fn purpose(&self) -> ChallengePurpose {
        self.rec.purpose
    }

    /// The password chosen in this attempt.
    #[must_use]
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.rec.password_hash.as_ref()
    }

    /// The address the codes go to.
    #[must_use]
    pub fn email(&self) -> &EmailAddress {
        &self.rec.email
    }

    /// Version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.rec.version
    }

    /// When the current code expires.
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.rec.expires_at
    }

    /// When the next code may be sent.
    #[must_use]
    pub fn resend_available_at(&self, policy: &CodePolicy) -> DateTime<Utc> {
        self.rec.last_sent_at + policy.resend_cooldown
    }

    /// Whether the attempt is still within `lifetime` of its start (re-sent codes do not extend
    /// it): dead at exactly `created_at + lifetime`.
    #[must_use]
    pub fn started_within(&self, lifetime: TimeDelta, now: DateTime<Utc>) -> bool {
        now - self.rec.created_at < lifetime
    }

    /// Checks a code. A wrong code uses up a try (the caller must store the challenge).
    ///
    /// # Errors
    /// [`CodeError::Expired`], [`CodeError::TooManyAttempts`] or [`CodeError::Wrong`] (never
    /// `Malformed`: the code is parsed already).
    pub fn check(&mut self, code: &VerificationCode, now: DateTime<Utc>) -> Result<(), CodeError> {
        if now >= self.rec.expires_at {
            return Err(CodeError::Expired);
        }
        if self.rec.attempts_left == 0 {
            return Err(CodeError::TooManyAttempts);
        }
        let candidate = code.hash_for(self.rec.id.as_uuid().as_bytes());
        if self.rec.purpose != ChallengePurpose::ExistingAccount
            && candidate.matches(&self.rec.code_hash)
        {
            return Ok(());
        }
        self.rec.attempts_left -= 1;
        Err(CodeError::Wrong)
    }

    /// Whether a new code may be sent now.
    ///
    /// # Errors
    /// Too soon, or too many sends.
    pub fn may_resend(&self, policy: &CodePolicy, now: DateTime<Utc>) -> Result<(), ResendRefused> {
        if self.rec.sends >= policy.max_sends {
            return Err(ResendRefused::TooMany);
        }
        let retry_at = self.rec.last_sent_at + policy.resend_cooldown;
        if now < retry_at {
            return Err(ResendRefused::TooSoon { retry_at });
        }
        Ok(())
    }

    /// Replaces the code with a new one (the old one stops working) and resets the tries.
    ///
    /// # Errors
    /// See [`Self::may_resend`].
    pub fn resend(
        &mut self,
        code: &VerificationCode,
        policy: &CodePolicy,
        now: DateTime<Utc>,
    ) -> Result<(), ResendRefused> {
        self.may_resend(policy, now)?;
        self.rec.code_hash = code.hash_for(self.rec.id.as_uuid().as_bytes());
        self.rec.expires_at = now + policy.ttl;
        self.rec.attempts_left = policy.max_attempts;
        self.rec.sends += 1;
        self.rec.last_sent_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap()
    }

    fn challenge(code: &VerificationCode, purpose: ChallengePurpose) -> EmailChallenge {
        EmailChallenge::issue(
            ChallengeId::from_uuid(Uuid::from_u128(5)),
            TokenHash::from_bytes([0; 32]),
            UserId::from_uuid(Uuid::from_u128(6)),
            purpose,
            EmailAddress::parse("a@example.com").unwrap(),
            code,
            Some(PasswordHash::from_phc("$argon2id$x").unwrap()),
            &CodePolicy::default(),
            t0(),
        )
    }

    fn other(code: &VerificationCode) -> VerificationCode {
        let n: u32 = code.expose().parse().unwrap();
        VerificationCode::parse(&format!("{:06}", (n + 1) % 1_000_000)).unwrap()
    }

    #[test]
    fn right_code_before_expiry_is_accepted() {
        let code = VerificationCode::generate(&SeededRandom::new(1));
        let mut c = challenge(&code, ChallengePurpose::Registration);
        assert_eq!(c.check(&code, t0() + TimeDelta::seconds(899)), Ok(()));
    }

    #[test]
    fn code_expires_at_exactly_fifteen_minutes() {
        let code = VerificationCode::generate(&SeededRandom::new(1));
        let mut c = challenge(&code, ChallengePurpose::Registration);
        assert_eq!(
            c.check(&code, t0() + TimeDelta::seconds(900)),
            Err(CodeError::Expired)
        );
    }

    #[test]
    fn five_wrong_codes_void_the_code() {
        let code = VerificationCode::generate(&SeededRandom::new(1));
        let mut c = challenge(&code, ChallengePurpose::Registration);
        for _ in 0..5 {
            assert_eq!(c.check(&other(&code), t0()), Err(CodeError::Wrong));
        }
        assert_eq!(c.check(&code, t0()), Err(CodeError::TooManyAttempts));
    }

    #[test]
    fn resend_replaces_the_code_after_the_cooldown() {
        let p = CodePolicy::default();
        let r = SeededRandom::new(2);
        let first = VerificationCode::generate(&r);
        let mut c = challenge(&first, ChallengePurpose::Registration);
        assert!(matches!(
            c.resend(
                &VerificationCode::generate(&r),
                &p,
                t0() + TimeDelta::seconds(59)
            ),
            Err(ResendRefused::TooSoon { .. })
        ));
        let second = VerificationCode::generate(&r);
        let later = t0() + TimeDelta::seconds(60);
        c.resend(&second, &p, later).unwrap();
        if first != second {
            assert_eq!(c.check(&first, later), Err(CodeError::Wrong));
        }
        assert_eq!(c.check(&second, later), Ok(()));
    }

    #[test]
    fn sends_are_capped() {
        let p = CodePolicy::default();
        let r = SeededRandom::new(3);
        let mut c = challenge(
            &VerificationCode::generate(&r),
            ChallengePurpose::Registration,
        );
        let mut now = t0();
        for _ in 1..p.max_sends {
            now += p.resend_cooldown;
            c.resend(&VerificationCode::generate(&r), &p, now).unwrap();
        }
        now += p.resend_cooldown;
        assert_eq!(
            c.resend(&VerificationCode::generate(&r), &p, now),
            Err(ResendRefused::TooMany)
        );
    }

    #[test]
    fn an_attempt_ends_at_exactly_its_lifetime_however_often_the_code_was_resent() {
        let p = CodePolicy::default();
        let r = SeededRandom::new(5);
        let mut c = challenge(
            &VerificationCode::generate(&r),
            ChallengePurpose::Registration,
        );
        let day = TimeDelta::hours(24);
        c.resend(
            &VerificationCode::generate(&r),
            &p,
            t0() + day - TimeDelta::minutes(1),
        )
        .unwrap();
        assert!(c.started_within(day, t0() + day - TimeDelta::seconds(1)));
        assert!(!c.started_within(day, t0() + day));
        assert!(!c.started_within(day, t0() + day + TimeDelta::seconds(1)));
    }

    #[test]
    fn an_existing_account_challenge_never_accepts_a_code() {
        let code = VerificationCode::generate(&SeededRandom::new(4));
        let mut c = challenge(&code, ChallengePurpose::ExistingAccount);
        assert_eq!(c.check(&code, t0()), Err(CodeError::Wrong));
    }
}
