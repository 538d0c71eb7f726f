//! Second factors (manual chapter 4, R16–R19): finishing a login with an authenticator code, a
//! phone code or the recovery code; setting up and removing factors; the recovery code and
//! recovery channel; remembered devices; step-up re-authentication.
//!
//! This module holds the types, the errors and the checks every flow shares (the factor check,
//! the failure throttle, step-up); the flows are in `login` (finishing a login), `authenticator`
//! and `phone` (setting up factors, phone budgets) and `changes` (what needs a current factor).

use super::auth::{IssuedSession, Principal};
use super::{Portal, infra_errors};
use crate::challenge::CodeError;
use crate::error::InfraError;
use crate::ids::UserId;
use crate::mfa::PendingCode;
use crate::password::{Password, PasswordHash};
use crate::ports::SmsError;
use crate::secret::{SecretString, TokenHash, VerificationCode};
use crate::session::ClientInfo;
use crate::throttle::keys;
use crate::totp::{self, TotpRejected, TotpSecret};
use crate::user::User;
use chrono::{DateTime, Utc};

mod authenticator;
mod changes;
mod login;
mod passkeys;
mod phone;

pub use passkeys::{PasskeyCeremony, PasskeySignIn};

/// A second factor offered to finish a login, or to prove presence for a sensitive change.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// Six digits from the authenticator app.
    Totp(SecretString),
    /// The code sent by SMS or voice call.
    PhoneCode(SecretString),
    /// The recovery code ("Wiederherstellungscode").
    RecoveryCode(SecretString),
    /// A passkey's answer to a second-factor ceremony
    /// ([`Portal::begin_passkey_second_factor`], [`Portal::begin_passkey_presence`]).
    Passkey {
        /// The ceremony's challenge.
        challenge_id: uuid::Uuid,
        /// The browser's `PublicKeyCredential` (JSON).
        response: serde_json::Value,
    },
}

/// Finishing a login.
#[derive(Debug, Clone)]
pub struct CompleteMfa {
    /// The pending login's token from [`super::LoginOutcome::MfaRequired`].
    pub token: String,
    /// The factor.
    pub factor: SecondFactor,
    /// "Mich auf diesem Gerät für 30 Tage merken".
    pub remember_device: bool,
    /// Where from.
    pub client: ClientInfo,
}

/// A finished login.
#[derive(Debug, Clone)]
pub struct MfaLogin {
    /// The full session (a new token: the pending one is dead).
    pub session: IssuedSession,
    /// The remembered device's token, when asked for (30 days, absolute).
    pub remembered_device: Option<IssuedSession>,
    /// After logging in with the recovery code: the new recovery code, shown once.
    pub new_recovery_code: Option<SecretString>,
    /// After logging in with the recovery code: the user should set up a new factor.
    pub choose_new_factor: bool,
}

/// A second factor was set up; the recovery code is shown once when one was issued.
#[derive(Debug, Clone)]
pub struct FactorEnabled {
    /// The new recovery code (only when the user had none).
    pub recovery_code: Option<SecretString>,
}

/// Why a second-factor action failed.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// No pending login with this token (unknown, expired, finished or used up).
    #[error("no pending login; log in again")]
    NoPendingLogin,
    /// The code was not accepted: malformed (no try used up), wrong or already used, an expired
    /// phone code, or no tries left for this login or setup (log in or start again).
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Too many failed codes for this user: wait.
    #[error("too many failed attempts; try again later")]
    Throttled {
        /// When the next attempt is allowed.
        retry_at: DateTime<Utc>,
    },
    /// The user has no such factor.
    #[error("this factor is not set up")]
    NoSuchFactor,
    /// A sensitive change needs a fresh login (within the step-up window).
    #[error("please confirm your password again")]
    ReauthRequired,
    /// An authenticator app is set up already; remove it first.
    #[error("an authenticator app is set up already")]
    AlreadyEnabled,
    /// No second factor is set up.
    #[error("no second factor is set up")]
    NotEnabled,
    /// No setup is in progress (or it expired).
    #[error("no setup in progress; start again")]
    NoSetupInProgress,
    /// The server has no MFA key (authenticator apps) or no phone gateway (SMS/voice).
    #[error("this factor is not available on this server")]
    Unavailable,
    /// The phone gateway failed; try again.
    #[error("the code could not be sent")]
    SendFailed(#[source] SmsError),
    /// The recovery phone must differ from the MFA phone.
    #[error("the recovery phone must differ from the phone used for codes")]
    SamePhone,
    /// The password given for re-authentication is wrong.
    #[error("wrong password")]
    WrongPassword,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// A passkey's answer was refused (origin, relying party, challenge, signature, user
    /// verification, sign counter, a credential not registered for the account).
    #[error(transparent)]
    Passkey(#[from] crate::ports::PasskeyRejected),
    /// The passkey ceremony's challenge is unknown, answered already, expired or not this
    /// user's: start again.
    #[error("this passkey request is no longer valid; start again")]
    PasskeyChallenge,
    /// A user has at most [`crate::passkey::MAX_PASSKEYS`] passkeys.
    #[error("no more passkeys can be added")]
    PasskeyLimit,
    /// Not a passkey name.
    #[error(transparent)]
    InvalidPasskeyName(#[from] crate::passkey::InvalidPasskeyName),
    /// The last second factor of a user who must have one (R22) cannot be removed.
    #[error("the last second factor cannot be removed: one is required")]
    LastFactor,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(MfaError);

/// Recovery codes: 16 characters of Crockford base32 (80 bits), shown as four groups of four.
fn new_recovery_code(random: &dyn crate::ports::SecretGenerator) -> SecretString {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    random.fill(&mut bytes);
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(b);
    }
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let idx = ((bits >> (75 - 5 * i)) & 31) as usize;
        out.push(char::from(ALPHABET[idx]));
    }
    SecretString::new(out)
}

/// What a typed recovery code is compared as: upper case, no separators, Crockford's look-alikes
/// folded (O→0, I/L→1).
fn canonical_recovery_code(raw: &str) -> Option<SecretString> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (s.len() == 16 && s.chars().all(|c| c.is_ascii_alphanumeric())).then(|| SecretString::new(s))
}

fn code_hash(salt: &[u8], code: &VerificationCode) -> TokenHash {
    code.hash_for(salt)
}

/// A code sent for a setup in progress (a phone, a recovery channel) checked against what was
/// sent (`sent`): an expired code or one without tries left is refused and changes nothing; a
/// wrong one uses up a try of the code `code_in` finds in the user's state, in the returned
/// commit (`Err`), for the caller to commit with its `Wrong` answer; the right one gives the user
/// back (`Ok`) to go on with.
fn check_sent_code(
    mut user: User,
    sent: &PendingCode,
    code: &VerificationCode,
    now: DateTime<Utc>,
    code_in: fn(&mut crate::mfa::MfaState) -> Option<&mut PendingCode>,
) -> Result<Result<User, crate::ports::Commit>, MfaError> {
    if now >= sent.expires_at {
        return Err(MfaError::Code(CodeError::Expired));
    }
    if sent.attempts_left == 0 {
        return Err(MfaError::Code(CodeError::TooManyAttempts));
    }
    let salt = user.id().as_uuid();
    if code_hash(salt.as_bytes(), code).matches(&sent.code_hash) {
        return Ok(Ok(user));
    }
    user.change_mfa(
        |m| {
            if let Some(c) = code_in(m) {
                c.attempts_left = c.attempts_left.saturating_sub(1);
            }
        },
        now,
    );
    let mut commit = crate::ports::Commit::new();
    commit.write(crate::ports::Write::UpdateUser(user));
    Ok(Err(commit))
}

enum Checked {
    Ok,
    Failed,
    /// An authenticator app's code of a step already accepted.
    Replayed,
}

impl Checked {
    /// The error of a refused code.
    const fn refusal(&self) -> Option<CodeError> {
        match self {
            Self::Ok => None,
            Self::Failed => Some(CodeError::Wrong),
            Self::Replayed => Some(CodeError::Used),
        }
    }
}

/// A passkey's challenge is answered once: the commit that accepts the answer marks it used
/// (of two concurrent answers, one commit conflicts and is decided again).
fn consume_passkey_challenge(
    proof: &SecondFactor,
    commit: &mut crate::ports::Commit,
    now: DateTime<Utc>,
) {
    if let SecondFactor::Passkey { challenge_id, .. } = proof {
        commit.write(crate::ports::Write::UsePasskeyChallenge {
            id: *challenge_id,
            at: now,
        });
    }
}

/// Whether a code error counts as a failed try of a second factor (throttling).
pub(crate) const fn is_failed_try(e: &MfaError) -> bool {
    matches!(
        e,
        MfaError::Code(CodeError::Wrong | CodeError::Used | CodeError::TooManyAttempts)
            | MfaError::PasskeyChallenge
    ) || matches!(e, MfaError::Passkey(r) if !matches!(r, crate::ports::PasskeyRejected::Malformed))
}

impl Portal {
    fn mfa_key(&self) -> Result<&crate::secretbox::MfaKey, MfaError> {
        self.config.mfa_key.as_ref().ok_or(MfaError::Unavailable)
    }

    /// Phone codes need a gateway; without one nothing is stored, counted or audited.
    fn require_phone_gateway(&self) -> Result<(), MfaError> {
        if self.phone_gateway {
            Ok(())
        } else {
            Err(MfaError::Unavailable)
        }
    }

    pub(crate) fn totp_aad(user: UserId) -> Vec<u8> {
        format!("portal-totp-v1:{user}").into_bytes()
    }

    fn open_totp(&self, user: UserId, sealed: &str) -> Result<TotpSecret, MfaError> {
        let ring = self.mfa_keyring().ok_or(MfaError::Unavailable)?;
        let bytes = ring.open(sealed, &Self::totp_aad(user)).map_err(|_| {
            MfaError::Infra(InfraError::Store(crate::ports::StoreError::backend(
                "TOTP secret cannot be opened with the configured MFA key",
            )))
        })?;
        TotpSecret::from_bytes(&bytes).map_err(|_| {
            MfaError::Infra(InfraError::Store(crate::ports::StoreError::backend(
                "stored TOTP secret has the wrong length",
            )))
        })
    }

    async fn hash_recovery_code(&self, code: &SecretString) -> Result<PasswordHash, MfaError> {
        let canonical =
            canonical_recovery_code(code.expose()).ok_or(MfaError::Code(CodeError::Malformed))?;
        Ok(self
            .deps
            .hasher
            .hash(&Password::verified_for_rehash(canonical))
            .await?)
    }

    /// Checks a factor against the user's current factors. On success the user may carry a
    /// changed TOTP step (store it in the same commit: replay protection) or a consumed phone
    /// code; on failure nothing but the caller's counters change.
    async fn check_factor(
        &self,
        user: &mut User,
        factor: &SecondFactor,
        pending_phone_code: Option<&PendingCode>,
        phone_salt: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Checked, MfaError> {
        match factor {
            SecondFactor::Totp(code) => {
                let Some(f) = user.mfa().totp.clone() else {
                    return Err(MfaError::NoSuchFactor);
                };
                let secret = self.open_totp(user.id(), &f.sealed_secret)?;
                match totp::verify(&secret, code.expose(), now, Some(f.last_used_step)) {
                    Ok(step) => {
                        user.change_mfa(
                            |m| {
                                if let Some(t) = &mut m.totp {
                                    t.last_used_step = step;
                                }
                            },
                            now,
                        );
                        Ok(Checked::Ok)
                    }
                    Err(TotpRejected::Malformed) => Err(MfaError::Code(CodeError::Malformed)),
                    Err(TotpRejected::Replayed) => Ok(Checked::Replayed),
                    Err(_) => Ok(Checked::Failed),
                }
            }
            SecondFactor::PhoneCode(code) => {
                let code = VerificationCode::parse(code.expose())
                    .map_err(|_| MfaError::Code(CodeError::Malformed))?;
                let Some(pending) = pending_phone_code else {
                    return Err(MfaError::NoSuchFactor);
                };
                if now >= pending.expires_at {
                    return Err(MfaError::Code(CodeError::Expired));
                }
                if code_hash(phone_salt, &code).matches(&pending.code_hash) {
                    Ok(Checked::Ok)
                } else {
                    Ok(Checked::Failed)
                }
            }
            SecondFactor::RecoveryCode(code) => {
                let Some(hash) = user.mfa().recovery_code.clone() else {
                    return Err(MfaError::NoSuchFactor);
                };
                let canonical = canonical_recovery_code(code.expose())
                    .ok_or(MfaError::Code(CodeError::Malformed))?;
                if self.deps.hasher.verify(&canonical, &hash).await? {
                    Ok(Checked::Ok)
                } else {
                    Ok(Checked::Failed)
                }
            }
            SecondFactor::Passkey {
                challenge_id,
                response,
            } => {
                self.check_passkey(user, *challenge_id, response, now)
                    .await?;
                Ok(Checked::Ok)
            }
        }
    }

    async fn second_factor_throttle(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), MfaError> {
        let policy = self.config.login_protection.second_factor;
        if let Some(retry_at) = self
            .throttled_until(&[(keys::second_factor(user), policy)], now)
            .await?
        {
            return Err(MfaError::Throttled { retry_at });
        }
        Ok(())
    }

    async fn count_second_factor_failure(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), MfaError> {
        let policy = self.config.login_protection.second_factor;
        self.deps
            .committer
            .bump_counter(&keys::second_factor(user), now, policy.reset_after)
            .await?;
        Ok(())
    }

    /// Whether the principal proved a credential in this session within the step-up window
    /// (inclusive: a login exactly `step_up_window` ago still counts, one second more does not).
    pub(crate) fn stepped_up(&self, principal: &Principal) -> bool {
        let since = self.now() - self.config.step_up_window;
        principal.session().authenticated_since(since)
    }

    /// A sensitive change needs a credential proven within the step-up window in this session.
    fn require_step_up(&self, principal: &Principal) -> Result<(), MfaError> {
        if self.stepped_up(principal) {
            Ok(())
        } else {
            Err(MfaError::ReauthRequired)
        }
    }

    async fn current_user(&self, principal: &Principal) -> Result<User, MfaError> {
        self.deps
            .queries
            .user(principal.user().id())
            .await?
            .filter(User::can_log_in)
            .ok_or(MfaError::NoPendingLogin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[test]
    fn recovery_codes_have_80_bits_in_four_groups() {
        let r = SeededRandom::new(1);
        let a = new_recovery_code(&r);
        let b = new_recovery_code(&r);
        assert_ne!(a, b);
        let s = a.expose();
        assert_eq!(s.len(), 19);
        assert_eq!(s.matches('-').count(), 3);
        assert_eq!(canonical_recovery_code(s).unwrap().expose().len(), 16);
        // 16 symbols of a 32-symbol alphabet: 16 × 5 = 80 bits.
        assert_eq!(16 * 5, 80);
    }

    #[test]
    fn recovery_codes_forgive_case_separators_and_look_alikes() {
        let c = canonical_recovery_code("abcd-efgh-jkmn-pqrs").unwrap();
        assert_eq!(c.expose(), "ABCDEFGHJKMNPQRS");
        assert_eq!(
            canonical_recovery_code("O0IL 0000 0000 0000")
                .unwrap()
                .expose(),
            "0011000000000000"
        );
        assert!(canonical_recovery_code("short").is_none());
        assert!(canonical_recovery_code("ÄBCD-EFGH-JKMN-PQRS").is_none());
    }
}
