//! Second factors (manual chapter 4, R16–R19): finishing a login with an authenticator code, a
//! phone code or the recovery code; setting up and removing factors; the recovery code and
//! recovery channel; remembered devices; step-up re-authentication.

use super::auth::{IssuedSession, Principal};
use super::{Planned, Portal, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::challenge::CodeError;
use crate::error::InfraError;
use crate::ids::{SessionId, UserId};
use crate::mail::MailIntent;
use crate::mfa::{
    MfaMethod, PendingCode, PendingPhone, PendingTotp, PhoneChannel, PhoneFactor, PhoneNumber,
    RecoveryChannel, TotpFactor,
};
use crate::password::{Password, PasswordHash, normalize};
use crate::ports::{Commit, PhoneCodePurpose, PhoneMessage, SmsError, Write};
use crate::secret::{SecretString, Token, TokenHash, VerificationCode};
use crate::session::{ClientInfo, Session, SessionKind};
use crate::throttle::{SendBudget, keys};
use crate::totp::{self, TotpEnrolment, TotpRejected, TotpSecret};
use crate::user::User;
use chrono::{DateTime, Utc};

/// A second factor offered to finish a login, or to prove presence for a sensitive change.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// Six digits from the authenticator app.
    Totp(SecretString),
    /// The code sent by SMS or voice call.
    PhoneCode(SecretString),
    /// The recovery code ("Wiederherstellungscode").
    RecoveryCode(SecretString),
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

enum Checked {
    Ok,
    Failed,
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

    fn totp_aad(user: UserId) -> Vec<u8> {
        format!("portal-totp-v1:{user}").into_bytes()
    }

    fn open_totp(&self, user: UserId, sealed: &str) -> Result<TotpSecret, MfaError> {
        let key = self.mfa_key()?;
        let bytes = crate::secretbox::open(key, sealed, &Self::totp_aad(user)).map_err(|_| {
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

    async fn pending_login(
        &self,
        token: &Token,
        now: DateTime<Utc>,
    ) -> Result<(Session, User), MfaError> {
        let ctx = self
            .deps
            .queries
            .session_context(&token.hash(), now)
            .await?
            .ok_or(MfaError::NoPendingLogin)?;
        if !matches!(ctx.session.kind(), SessionKind::MfaPending { .. })
            || !ctx.session.is_alive_at(now)
            || !ctx.user.can_log_in()
        {
            return Err(MfaError::NoPendingLogin);
        }
        Ok((ctx.session, ctx.user))
    }

    /// Finishes a login with a second factor (the second step). The pending token dies and a new
    /// full session starts; with `remember_device`, a 30-day device token is issued too. Using the
    /// recovery code issues a new one (shown once) and suggests setting up a new factor.
    ///
    /// # Errors
    /// No pending login, malformed/wrong/expired code, tries used up, throttled, factor not set
    /// up; infrastructure failures.
    pub async fn complete_mfa(&self, cmd: CompleteMfa) -> Result<MfaLogin, MfaError> {
        let token = Token::parse(&cmd.token).map_err(|_| MfaError::NoPendingLogin)?;
        let now = self.now();
        let (_, user) = self.pending_login(&token, now).await?;
        self.second_factor_throttle(user.id(), now).await?;
        // Hash the next recovery code outside the retry loop (Argon2id is slow).
        let next_recovery = match &cmd.factor {
            SecondFactor::RecoveryCode(_) => {
                let code = new_recovery_code(&*self.deps.random);
                let hash = self.hash_recovery_code(&code).await?;
                Some((code, hash))
            }
            _ => None,
        };
        let session_token = Token::generate(&*self.deps.random);
        let device_token = Token::generate(&*self.deps.random);
        let result = self
            .transact(|| {
                self.plan_complete_mfa(
                    &cmd,
                    &token,
                    &session_token,
                    &device_token,
                    next_recovery.as_ref(),
                )
            })
            .await?;
        match &result {
            Ok(login) => {
                self.deps
                    .committer
                    .reset_counter(&keys::second_factor(login.session.user_id))
                    .await?;
            }
            Err(MfaError::Code(CodeError::Wrong) | MfaError::Code(CodeError::TooManyAttempts)) => {
                self.count_second_factor_failure(user.id(), now).await?;
            }
            Err(_) => {}
        }
        result
    }

    async fn plan_complete_mfa(
        &self,
        cmd: &CompleteMfa,
        token: &Token,
        session_token: &Token,
        device_token: &Token,
        next_recovery: Option<&(SecretString, PasswordHash)>,
    ) -> Result<Planned<Result<MfaLogin, MfaError>>, MfaError> {
        let now = self.now();
        let (mut pending, mut user) = self.pending_login(token, now).await?;
        let phone_code = match pending.kind() {
            SessionKind::MfaPending { phone_code, .. } => phone_code.clone(),
            _ => None,
        };
        let salt = pending.id().as_uuid();
        let mut commit = Commit::new();
        match self
            .check_factor(
                &mut user,
                &cmd.factor,
                phone_code.as_ref(),
                salt.as_bytes(),
                now,
            )
            .await?
        {
            Checked::Failed => {
                let left = pending.spend_attempt();
                let err = if left == 0 {
                    commit.write(Write::DeleteSession(pending.id()));
                    MfaError::Code(CodeError::TooManyAttempts)
                } else {
                    commit.write(Write::UpdateSession(pending));
                    MfaError::Code(CodeError::Wrong)
                };
                return Ok(Planned::new(commit, Err(err)));
            }
            Checked::Ok => {}
        }
        let mut method = match &cmd.factor {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::PhoneCode(_) => "phone_code",
            SecondFactor::RecoveryCode(_) => "recovery_code",
        }
        .to_owned();
        let mut new_recovery_code = None;
        let mut category = AuditCategory::LoginSucceeded;
        if let Some((code, hash)) = next_recovery {
            user.change_mfa(|m| m.recovery_code = Some(hash.clone()), now);
            new_recovery_code = Some(code.clone());
            category = AuditCategory::RecoveryCodeUsed;
            commit.mail(self.mail_to(
                now,
                &user,
                MailIntent::RecoveryCodeUsed {
                    first_name: user.first_name().to_string(),
                },
            ));
        }
        user.record_login(now);
        let (session, issued) = self.start_session(&user, cmd.client.clone(), session_token, now);
        commit
            .write(Write::DeleteSession(pending.id()))
            .write(Write::InsertSession(session));
        let remembered_device = if cmd.remember_device {
            let device = Session::start_remembered_device(
                SessionId::from_uuid(self.new_uuid()),
                device_token.hash(),
                user.id(),
                cmd.client.clone(),
                self.config.remember_device_ttl,
                now,
            );
            let issued_device = IssuedSession {
                token: device_token.clone(),
                session_id: device.id(),
                user_id: user.id(),
                expires_at: device.record().expires_at,
            };
            commit.write(Write::InsertSession(device));
            method.push_str("; remembered_device=new");
            Some(issued_device)
        } else {
            None
        };
        commit.audit(self.audit_record(
            now,
            user.customer_id(),
            ActorRef::user(user.id()),
            Some(user.id()),
            category,
            format!("method=password+{method}"),
        ));
        commit.write(Write::UpdateUser(user));
        Ok(Planned::new(
            commit,
            Ok(MfaLogin {
                session: issued,
                remembered_device,
                choose_new_factor: new_recovery_code.is_some(),
                new_recovery_code,
            }),
        ))
    }

    /// Takes one send from each budget, or from none: `false` when one of them is spent for its
    /// current window (the code is then silently not sent, so the limit cannot be probed).
    ///
    /// A spent budget is seen on a read and counts nothing, so refused requests never eat into
    /// another budget nor into the next window. Otherwise the counters are bumped in order, and
    /// the atomic bump decides: when concurrent requests raced past the read, the ones beyond a
    /// limit are refused (having counted up to that budget, in this window only). So no budget
    /// ever sends more than its limit; under such a race it may send fewer.
    async fn spend_budgets(
        &self,
        budgets: &[(String, SendBudget)],
        now: DateTime<Utc>,
    ) -> Result<bool, MfaError> {
        for (key, budget) in budgets {
            let count = self.deps.queries.counter(key).await?.map_or(0, |c| c.count);
            if !budget.allows(count) {
                return Ok(false);
            }
        }
        for (key, budget) in budgets {
            let after = self
                .deps
                .committer
                .bump_counter(key, now, budget.reset_after())
                .await?;
            if after.count > budget.limit {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The phone-code budgets a text or call to `number` for `user` takes from: the user's and
    /// the number's, for the current clock hour.
    fn phone_budgets(
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
    async fn phone_budget(
        &self,
        user: UserId,
        number: &PhoneNumber,
        now: DateTime<Utc>,
    ) -> Result<bool, MfaError> {
        self.spend_budgets(&self.phone_budgets(user, number, now), now)
            .await
    }

    async fn send_phone(&self, message: PhoneMessage) -> Result<(), MfaError> {
        self.sms.send(&message).await.map_err(MfaError::SendFailed)
    }

    /// Sends a code by SMS or voice call for the second step of a login (replacing an older one).
    /// Over the phone budget (per user and per number and clock hour,
    /// [`LoginProtection::phone_codes`](crate::throttle::LoginProtection::phone_codes)) the answer
    /// is the same but nothing is sent and nothing is counted.
    ///
    /// # Errors
    /// No pending login, no phone factor, no gateway (`Unavailable`) or it failed; infrastructure
    /// failures.
    pub async fn send_login_phone_code(&self, token: &str) -> Result<(), MfaError> {
        let token = Token::parse(token).map_err(|_| MfaError::NoPendingLogin)?;
        let now = self.now();
        let (mut pending, user) = self.pending_login(&token, now).await?;
        let phone = user.mfa().phone.clone().ok_or(MfaError::NoSuchFactor)?;
        self.require_phone_gateway()?;
        if !self.phone_budget(user.id(), &phone.number, now).await? {
            return Ok(());
        }
        let code = VerificationCode::generate(&*self.deps.random);
        pending.set_phone_code(PendingCode {
            code_hash: code_hash(pending.id().as_uuid().as_bytes(), &code),
            expires_at: now + self.config.phone_code_ttl,
            attempts_left: self.config.mfa_login_attempts,
        });
        let mut commit = Commit::new();
        commit.write(Write::UpdateSession(pending));
        self.deps.committer.commit(commit).await?;
        self.send_phone(PhoneMessage {
            to: phone.number,
            channel: phone.channel,
            code: SecretString::new(code.expose()),
            purpose: PhoneCodePurpose::Login,
            language: user.language(),
        })
        .await
    }

    /// "Haben Sie Ihren Wiederherstellungscode vergessen?": during the second step of a login,
    /// sends a fresh recovery code to the recovery phone or e-mail address; the old code stops
    /// working. A few per UTC day
    /// ([`LoginProtection::recovery_sends`](crate::throttle::LoginProtection::recovery_sends)); a
    /// code sent to a recovery phone also takes from that user's and that number's hourly phone
    /// budgets. Beyond a budget the answer is the same and nothing is sent or counted.
    ///
    /// # Errors
    /// No pending login, no recovery channel, a recovery phone without gateway (`Unavailable`),
    /// the gateway failed; infrastructure failures.
    pub async fn send_recovery_code(&self, token: &str) -> Result<(), MfaError> {
        let token = Token::parse(token).map_err(|_| MfaError::NoPendingLogin)?;
        let now = self.now();
        let (_, user) = self.pending_login(&token, now).await?;
        let channel = user
            .mfa()
            .recovery_channel
            .clone()
            .ok_or(MfaError::NoSuchFactor)?;
        if matches!(channel, RecoveryChannel::Phone(_)) {
            self.require_phone_gateway()?;
        }
        let recovery = self.config.login_protection.recovery_sends();
        let mut budgets = vec![(
            keys::recovery_sends(user.id(), recovery.window_index(now)),
            recovery,
        )];
        if let RecoveryChannel::Phone(number) = &channel {
            // A text to a phone, like any other: it also takes from the hourly phone budgets.
            budgets.extend(self.phone_budgets(user.id(), number, now));
        }
        if !self.spend_budgets(&budgets, now).await? {
            return Ok(());
        }
        let code = new_recovery_code(&*self.deps.random);
        let hash = self.hash_recovery_code(&code).await?;
        self.transact(|| async {
            let now = self.now();
            let (_, mut user) = self.pending_login(&token, now).await?;
            user.change_mfa(|m| m.recovery_code = Some(hash.clone()), now);
            let mut commit = Commit::new();
            if let RecoveryChannel::Email(to) = &channel {
                commit.mail(self.mail(
                    now,
                    to.clone(),
                    user.language(),
                    MailIntent::RecoveryCode {
                        first_name: user.first_name().to_string(),
                        code: code.clone(),
                    },
                ));
            }
            commit.audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::anonymous(),
                Some(user.id()),
                AuditCategory::RecoveryCodeSent,
                match &channel {
                    RecoveryChannel::Email(_) => "channel=email",
                    RecoveryChannel::Phone(_) => "channel=phone",
                },
            ));
            commit.write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        if let RecoveryChannel::Phone(number) = channel {
            self.send_phone(PhoneMessage {
                to: number,
                channel: PhoneChannel::Sms,
                code,
                purpose: PhoneCodePurpose::Recovery,
                language: user.language(),
            })
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Managing factors (logged in, with step-up)
    // -----------------------------------------------------------------------------------------

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

    /// "Einrichten Multi-Faktor-Authentifizierung" with an authenticator app: a new secret, its
    /// `otpauth://` URI and QR code. Confirm with [`Self::confirm_totp`].
    ///
    /// # Errors
    /// Step-up needed, an app set up already, no MFA key; infrastructure failures.
    pub async fn start_totp_enrolment(
        &self,
        principal: &Principal,
    ) -> Result<TotpEnrolment, MfaError> {
        self.require_step_up(principal)?;
        let key = self.mfa_key()?.clone();
        let secret = TotpSecret::generate(&*self.deps.random);
        let sealed = crate::secretbox::seal(
            &key,
            &*self.deps.random,
            secret.expose_bytes(),
            &Self::totp_aad(principal.user().id()),
        );
        let account = principal.user().email().to_string();
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            if user.mfa().totp.is_some() {
                return Err(MfaError::AlreadyEnabled);
            }
            user.change_mfa(
                |m| {
                    m.pending_totp = Some(PendingTotp {
                        sealed_secret: sealed.clone(),
                        started_at: now,
                    });
                },
                now,
            );
            let mut commit = Commit::new();
            commit
                .audit(self.audit_record(
                    now,
                    user.customer_id(),
                    ActorRef::user(user.id()),
                    Some(user.id()),
                    AuditCategory::AccountChanged,
                    "mfa=totp_setup_started",
                ))
                .write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        TotpEnrolment::new(&secret, &self.config.totp_issuer, &account).map_err(|e| {
            MfaError::Infra(InfraError::Store(crate::ports::StoreError::backend(
                format!("TOTP enrolment material: {e}"),
            )))
        })
    }

    /// Confirms the authenticator app with its first code: from now on it is required at every
    /// login. Other sessions and remembered devices end; a recovery code is issued if the user
    /// has none (shown once).
    ///
    /// # Errors
    /// Step-up needed, no setup in progress, wrong code; infrastructure failures.
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &SecretString,
    ) -> Result<FactorEnabled, MfaError> {
        self.require_step_up(principal)?;
        let recovery = new_recovery_code(&*self.deps.random);
        let recovery_hash = self.hash_recovery_code(&recovery).await?;
        let result = self
            .transact(|| async {
                let now = self.now();
                let mut user = self.current_user(principal).await?;
                if user.mfa().totp.is_some() {
                    return Err(MfaError::AlreadyEnabled);
                }
                let pending = user
                    .mfa()
                    .pending_totp
                    .clone()
                    .filter(|p| now - p.started_at < self.config.totp_enrolment_ttl)
                    .ok_or(MfaError::NoSetupInProgress)?;
                let secret = self.open_totp(user.id(), &pending.sealed_secret)?;
                let step = match totp::verify(&secret, code.expose(), now, None) {
                    Ok(step) => step,
                    Err(TotpRejected::Malformed) => {
                        return Err(MfaError::Code(CodeError::Malformed));
                    }
                    Err(_) => {
                        return Ok(Planned::new(
                            Commit::new(),
                            Err(MfaError::Code(CodeError::Wrong)),
                        ));
                    }
                };
                let issue_recovery = user.mfa().recovery_code.is_none();
                user.change_mfa(
                    |m| {
                        m.totp = Some(TotpFactor {
                            sealed_secret: pending.sealed_secret.clone(),
                            last_used_step: step,
                            enrolled_at: now,
                        });
                        m.pending_totp = None;
                        if issue_recovery {
                            m.recovery_code = Some(recovery_hash.clone());
                        }
                    },
                    now,
                );
                let commit = self.factor_enabled_commit(principal, &user, "totp", now);
                let mut commit = commit;
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

    fn factor_enabled_commit(
        &self,
        principal: &Principal,
        user: &User,
        method: &str,
        now: DateTime<Utc>,
    ) -> Commit {
        let mut commit = Commit::new();
        commit
            .write(Write::DeleteSessionsOfUser {
                user: user.id(),
                except: Some(principal.session().id()),
            })
            .mail(self.mail_to(
                now,
                user,
                MailIntent::MfaEnabled {
                    first_name: user.first_name().to_string(),
                    method: method.to_owned(),
                },
            ))
            .audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::user(user.id()),
                Some(user.id()),
                AuditCategory::MfaEnabled,
                format!("method={method}"),
            ));
        commit
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
                .audit(self.audit_record(
                    now,
                    user.customer_id(),
                    ActorRef::user(user.id()),
                    Some(user.id()),
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
                let mut user = self.current_user(principal).await?;
                let pending = user
                    .mfa()
                    .pending_phone
                    .clone()
                    .ok_or(MfaError::NoSetupInProgress)?;
                if now >= pending.code.expires_at {
                    return Err(MfaError::Code(CodeError::Expired));
                }
                if pending.code.attempts_left == 0 {
                    return Err(MfaError::Code(CodeError::TooManyAttempts));
                }
                let salt = user.id().as_uuid();
                if !code_hash(salt.as_bytes(), &parsed).matches(&pending.code.code_hash) {
                    user.change_mfa(
                        |m| {
                            if let Some(p) = &mut m.pending_phone {
                                p.code.attempts_left = p.code.attempts_left.saturating_sub(1);
                            }
                        },
                        now,
                    );
                    let mut commit = Commit::new();
                    commit.write(Write::UpdateUser(user));
                    return Ok(Planned::new(commit, Err(MfaError::Code(CodeError::Wrong))));
                }
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

    /// Sends a code to the user's MFA phone, to prove presence for removing or changing factors
    /// when no authenticator app is at hand.
    ///
    /// # Errors
    /// No phone factor, no gateway (`Unavailable`) or it failed; infrastructure failures.
    pub async fn send_presence_code(&self, principal: &Principal) -> Result<(), MfaError> {
        let now = self.now();
        let user = self.current_user(principal).await?;
        let phone = user.mfa().phone.clone().ok_or(MfaError::NoSuchFactor)?;
        self.require_phone_gateway()?;
        if !self.phone_budget(user.id(), &phone.number, now).await? {
            return Ok(());
        }
        let code = VerificationCode::generate(&*self.deps.random);
        let hash = code_hash(user.id().as_uuid().as_bytes(), &code);
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            user.change_mfa(
                |m| {
                    m.pending_phone = Some(PendingPhone {
                        number: phone.number.clone(),
                        channel: phone.channel,
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
            commit.write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        self.send_phone(PhoneMessage {
            to: phone.number,
            channel: phone.channel,
            code: SecretString::new(code.expose()),
            purpose: PhoneCodePurpose::Login,
            language: user.language(),
        })
        .await
    }

    /// Proves presence with a current second factor for a logged-in user: a TOTP code, a code
    /// sent by [`Self::send_presence_code`], or the recovery code. On success the user carries the
    /// consumed TOTP step / phone code (commit it).
    async fn prove_presence(
        &self,
        user: &mut User,
        proof: &SecondFactor,
        now: DateTime<Utc>,
    ) -> Result<Checked, MfaError> {
        let pending = user.mfa().pending_phone.clone().filter(|p| {
            user.mfa()
                .phone
                .as_ref()
                .is_some_and(|f| f.number == p.number)
        });
        let salt = user.id().as_uuid();
        let checked = self
            .check_factor(
                user,
                proof,
                pending.as_ref().map(|p| &p.code),
                salt.as_bytes(),
                now,
            )
            .await?;
        if matches!((&checked, proof), (Checked::Ok, SecondFactor::PhoneCode(_))) {
            user.change_mfa(|m| m.pending_phone = None, now);
        }
        Ok(checked)
    }

    async fn with_presence<T, F>(
        &self,
        principal: &Principal,
        proof: &SecondFactor,
        change: F,
    ) -> Result<T, MfaError>
    where
        F: Fn(&mut User, &mut Commit, DateTime<Utc>) -> Result<T, MfaError>,
    {
        self.require_step_up(principal)?;
        let result = self
            .transact(|| async {
                let now = self.now();
                let mut user = self.current_user(principal).await?;
                if !user.mfa().is_enabled() {
                    return Err(MfaError::NotEnabled);
                }
                match self.prove_presence(&mut user, proof, now).await? {
                    Checked::Failed => {
                        return Ok(Planned::new(
                            Commit::new(),
                            Err(MfaError::Code(CodeError::Wrong)),
                        ));
                    }
                    Checked::Ok => {}
                }
                let mut commit = Commit::new();
                let value = change(&mut user, &mut commit, now)?;
                commit.write(Write::UpdateUser(user));
                Ok(Planned::new(commit, Ok(value)))
            })
            .await?;
        if matches!(result, Err(MfaError::Code(CodeError::Wrong))) {
            self.count_second_factor_failure(principal.user().id(), self.now())
                .await?;
        }
        result
    }

    /// "Entfernen": removes every second factor and the recovery code. Needs a current second
    /// factor; other sessions and remembered devices end; audited and mailed.
    ///
    /// # Errors
    /// Step-up needed, no factor set up, wrong proof; infrastructure failures.
    pub async fn remove_mfa(
        &self,
        principal: &Principal,
        proof: &SecondFactor,
    ) -> Result<(), MfaError> {
        self.with_presence(principal, proof, |user, commit, now| {
            user.change_mfa(
                |m| {
                    m.totp = None;
                    m.pending_totp = None;
                    m.phone = None;
                    m.pending_phone = None;
                    m.recovery_code = None;
                },
                now,
            );
            commit
                .write(Write::DeleteSessionsOfUser {
                    user: user.id(),
                    except: Some(principal.session().id()),
                })
                .mail(self.mail_to(
                    now,
                    user,
                    MailIntent::MfaDisabled {
                        first_name: user.first_name().to_string(),
                    },
                ))
                .audit(self.audit_record(
                    now,
                    user.customer_id(),
                    ActorRef::user(user.id()),
                    Some(user.id()),
                    AuditCategory::MfaDisabled,
                    "",
                ));
            Ok(())
        })
        .await
    }

    /// "Neuen Code generieren": a new recovery code (the old one stops working), shown once.
    /// Needs a current second factor; audited and mailed.
    ///
    /// # Errors
    /// Step-up needed, no factor set up, wrong proof; infrastructure failures.
    pub async fn regenerate_recovery_code(
        &self,
        principal: &Principal,
        proof: &SecondFactor,
    ) -> Result<SecretString, MfaError> {
        let code = new_recovery_code(&*self.deps.random);
        let hash = self.hash_recovery_code(&code).await?;
        self.with_presence(principal, proof, |user, commit, now| {
            user.change_mfa(|m| m.recovery_code = Some(hash.clone()), now);
            commit
                .mail(self.mail_to(
                    now,
                    user,
                    MailIntent::RecoveryCodeRenewed {
                        first_name: user.first_name().to_string(),
                    },
                ))
                .audit(self.audit_record(
                    now,
                    user.customer_id(),
                    ActorRef::user(user.id()),
                    Some(user.id()),
                    AuditCategory::RecoveryCodeRenewed,
                    "",
                ));
            Ok(code.clone())
        })
        .await
    }

    /// "Wiederherstellungsmethode festlegen": the phone (different from the MFA phone) or e-mail
    /// address that can receive a fresh recovery code. Needs a current second factor
    /// ("Bestätigen Sie Ihre Identität").
    ///
    /// # Errors
    /// Step-up needed, same phone as the MFA phone, a phone without gateway (`Unavailable`), no
    /// factor, wrong proof; infrastructure failures.
    pub async fn set_recovery_channel(
        &self,
        principal: &Principal,
        channel: &RecoveryChannel,
        proof: &SecondFactor,
    ) -> Result<(), MfaError> {
        if matches!(channel, RecoveryChannel::Phone(_)) {
            self.require_phone_gateway()?;
        }
        self.with_presence(principal, proof, |user, commit, now| {
            if let RecoveryChannel::Phone(number) = channel
                && user
                    .mfa()
                    .phone
                    .as_ref()
                    .is_some_and(|p| &p.number == number)
            {
                return Err(MfaError::SamePhone);
            }
            user.change_mfa(|m| m.recovery_channel = Some(channel.clone()), now);
            commit.audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::user(user.id()),
                Some(user.id()),
                AuditCategory::AccountChanged,
                match channel {
                    RecoveryChannel::Phone(_) => "recovery_channel=phone",
                    RecoveryChannel::Email(_) => "recovery_channel=email",
                },
            ));
            Ok(())
        })
        .await
    }

    /// Step-up re-authentication: the password again, and a current second factor when the user
    /// has one (a remembered device never counts). The session token is rotated: the old one dies,
    /// the new session's timeouts start again.
    ///
    /// # Errors
    /// Wrong password or code, throttled; infrastructure failures.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        password: &SecretString,
        factor: Option<&SecondFactor>,
        client: ClientInfo,
    ) -> Result<IssuedSession, MfaError> {
        let now = self.now();
        let user = self.current_user(principal).await?;
        let account_key = keys::account(user.email());
        let policy = self.config.login_protection.account;
        if let Some(retry_at) = self
            .throttled_until(&[(account_key.clone(), policy)], now)
            .await?
        {
            return Err(MfaError::Throttled { retry_at });
        }
        self.second_factor_throttle(user.id(), now).await?;
        let hash = user
            .password_hash()
            .cloned()
            .ok_or(MfaError::WrongPassword)?;
        if !self
            .deps
            .hasher
            .verify(&normalize(password.expose()), &hash)
            .await?
        {
            self.deps
                .committer
                .bump_counter(&account_key, now, policy.reset_after)
                .await?;
            return Err(MfaError::WrongPassword);
        }
        if user.mfa().is_enabled() && factor.is_none() {
            return Err(MfaError::NoSuchFactor);
        }
        let token = Token::generate(&*self.deps.random);
        let result = self
            .transact(|| async {
                let now = self.now();
                let mut user = self.current_user(principal).await?;
                let mut commit = Commit::new();
                if user.mfa().is_enabled() {
                    let proof = factor.ok_or(MfaError::NoSuchFactor)?;
                    if let Checked::Failed = self.prove_presence(&mut user, proof, now).await? {
                        return Ok::<_, MfaError>(Planned::new(
                            commit,
                            Err(MfaError::Code(CodeError::Wrong)),
                        ));
                    }
                }
                let (session, issued) = self.start_session(&user, client.clone(), &token, now);
                commit
                    .write(Write::DeleteSession(principal.session().id()))
                    .write(Write::InsertSession(session))
                    .audit(self.audit_record(
                        now,
                        user.customer_id(),
                        ActorRef::user(user.id()),
                        Some(user.id()),
                        AuditCategory::LoginSucceeded,
                        "method=reauthentication",
                    ))
                    .write(Write::UpdateUser(user));
                Ok(Planned::new(commit, Ok(issued)))
            })
            .await?;
        match &result {
            Ok(_) => self.deps.committer.reset_counter(&account_key).await?,
            Err(MfaError::Code(CodeError::Wrong)) => {
                self.count_second_factor_failure(user.id(), now).await?
            }
            Err(_) => {}
        }
        result
    }

    /// The methods a user's login can be finished with.
    #[must_use]
    pub fn mfa_methods(&self, user: &User) -> Vec<MfaMethod> {
        user.mfa().methods()
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
