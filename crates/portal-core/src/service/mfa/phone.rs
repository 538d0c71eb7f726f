//! Phone codes (R19): the send budgets per user and per number, sending through the
//! `SmsSender` port, and setting up a phone as a second factor.

use super::{FactorEnabled, MfaError, check_sent_code, code_hash, new_recovery_code};
use crate::audit::AuditCategory;
use crate::challenge::CodeError;
use crate::ids::UserId;
use crate::mfa::{
    PendingCode, PendingPhone, PhoneChannel, PhoneFactor, PhoneNumber, RecoveryChannel,
};
use crate::ports::{Commit, PhoneCodePurpose, PhoneMessage, Write};
use crate::secret::{SecretString, VerificationCode};
use crate::service::auth::Principal;
use crate::service::{Planned, Portal};
use crate::throttle::{SendBudget, keys};
use chrono::{DateTime, Utc};

impl Portal {
    /// Takes one send from each budget, or from none: `false` when one of them is spent for its
    /// current window (the code is then silently not sent, so the limit cannot be probed).
    ///
    /// A spent budget is seen on a read and counts nothing, so refused requests never eat into
    /// another budget nor into the next window. Otherwise the counters are bumped in order, and
    /// the atomic bump decides: when concurrent requests raced past the read, the ones beyond a
    /// limit are refused (having counted up to that budget, in this window only). So no budget
    /// ever sends more than its limit; under such a race it may send fewer.
    pub(super) async fn spend_budgets(
        &self,
        budgets: &[(String, SendBudget)],
        now: DateTime<Utc>,
    ) -> Result<bool, MfaError> {
        Ok(self.take_budgets(budgets, now).await?.is_none())
    }

    /// The phone-code budgets a text or call to `number` for `user` takes from: the user's and
    /// the number's, for the current clock hour.
    pub(super) fn phone_budgets(
        &self,
        user: UserId,
        number: &PhoneNumber,
        now: DateTime<Utc>,
    ) -> [(String, SendBudget); 2] {
        let budget = self.config.login_protection.phone_codes();
        let window = budget.window_index(now);
        [
            (keys::phone_codes_user(user, window), budget),
            (keys::phone_codes_number(number.as_str(), window), budget),
        ]
    }

    /// Takes a phone code from the user's and the number's hourly budgets; `false` when one is
    /// spent (see [`Self::spend_budgets`]).
    pub(super) async fn phone_budget(
        &self,
        user: UserId,
        number: &PhoneNumber,
        now: DateTime<Utc>,
    ) -> Result<bool, MfaError> {
        self.spend_budgets(&self.phone_budgets(user, number, now), now)
            .await
    }

    pub(super) async fn send_phone(&self, message: PhoneMessage) -> Result<(), MfaError> {
        self.sms.send(&message).await.map_err(MfaError::SendFailed)
    }

    /// "Identität auf andere Art bestätigen": sets up a phone for SMS or voice codes; a code is
    /// sent to it now. Confirm with [`Self::confirm_phone`].
    ///
    /// # Errors
    /// Step-up needed, the number is the recovery phone, no gateway or it failed; infrastructure
    /// failures.
    pub async fn start_phone_enrolment(
        &self,
        principal: &Principal,
        number: &PhoneNumber,
        channel: PhoneChannel,
    ) -> Result<(), MfaError> {
        self.require_step_up(principal)?;
        self.require_phone_gateway()?;
        let now = self.now();
        let user = self.current_user(principal).await?;
        if user.mfa().recovery_channel == Some(RecoveryChannel::Phone(number.clone())) {
            return Err(MfaError::SamePhone);
        }
        if !self.phone_budget(user.id(), number, now).await? {
            return Ok(());
        }
        let code = VerificationCode::generate(&*self.deps.random);
        let salt = user.id().as_uuid();
        let hash = code_hash(salt.as_bytes(), &code);
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            user.change_mfa(
                |m| {
                    m.pending_phone = Some(PendingPhone {
                        number: number.clone(),
                        channel,
                        code: PendingCode {
                            code_hash: hash,
                            expires_at: now + self.config.phone_code_ttl,
                            attempts_left: self.config.mfa_login_attempts,
                        },
                    });
                },
                now,
            );
            let mut commit = Commit::new();
            commit
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    "mfa=phone_setup_started",
                ))
                .write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        self.send_phone(PhoneMessage {
            to: number.clone(),
            channel,
            code: SecretString::new(code.expose()),
            purpose: PhoneCodePurpose::Enrolment,
            language: user.language(),
        })
        .await
    }

    /// Confirms the phone with the code it received; it becomes a second factor. Other sessions
    /// and remembered devices end; a recovery code is issued if the user has none.
    ///
    /// # Errors
    /// Step-up needed, no setup in progress, wrong or expired code; infrastructure failures.
    pub async fn confirm_phone(
        &self,
        principal: &Principal,
        code: &SecretString,
    ) -> Result<FactorEnabled, MfaError> {
        self.require_step_up(principal)?;
        let parsed = VerificationCode::parse(code.expose())
            .map_err(|_| MfaError::Code(CodeError::Malformed))?;
        let recovery = new_recovery_code(&*self.deps.random);
        let recovery_hash = self.hash_recovery_code(&recovery).await?;
        let result = self
            .transact(|| async {
                let now = self.now();
                let user = self.current_user(principal).await?;
                let pending = user
                    .mfa()
                    .pending_phone
                    .clone()
                    .ok_or(MfaError::NoSetupInProgress)?;
                let mut user = match check_sent_code(user, &pending.code, &parsed, now, |m| {
                    m.pending_phone.as_mut().map(|p| &mut p.code)
                })? {
                    Ok(user) => user,
                    Err(wrong) => {
                        let wrong = Planned::new(wrong, Err(MfaError::Code(CodeError::Wrong)));
                        return Ok::<_, MfaError>(wrong);
                    }
                };
                let issue_recovery = user.mfa().recovery_code.is_none();
                let method = match pending.channel {
                    PhoneChannel::Sms => "sms",
                    PhoneChannel::Voice => "voice",
                };
                user.change_mfa(
                    |m| {
                        m.phone = Some(PhoneFactor {
                            number: pending.number.clone(),
                            channel: pending.channel,
                            enrolled_at: now,
                        });
                        m.pending_phone = None;
                        if issue_recovery {
                            m.recovery_code = Some(recovery_hash.clone());
                        }
                    },
                    now,
                );
                let mut commit = self.factor_enabled_commit(principal, &user, method, now);
                commit.write(Write::UpdateUser(user));
                Ok(Planned::new(
                    commit,
                    Ok(FactorEnabled {
                        recovery_code: issue_recovery.then(|| recovery.clone()),
                    }),
                ))
            })
            .await?;
        if matches!(result, Err(MfaError::Code(CodeError::Wrong))) {
            self.count_second_factor_failure(principal.user().id(), self.now())
                .await?;
        }
        result
    }
}
