//! Finishing a login with the second factor (R16–R18): the pending login, an authenticator,
//! phone or recovery code, a remembered device issued on request; phone and recovery codes sent
//! for a pending login.

use super::{Checked, CompleteMfa, MfaError, MfaLogin, SecondFactor, code_hash, new_recovery_code};
use crate::audit::{ActorRef, AuditCategory};
use crate::challenge::CodeError;
use crate::ids::SessionId;
use crate::mail::MailIntent;
use crate::mfa::{PendingCode, PhoneChannel, RecoveryChannel};
use crate::password::PasswordHash;
use crate::ports::{Commit, PhoneCodePurpose, PhoneMessage, Write};
use crate::secret::{SecretString, Token, VerificationCode};
use crate::service::auth::IssuedSession;
use crate::service::{Planned, Portal};
use crate::session::{Session, SessionKind};
use crate::throttle::keys;
use crate::user::User;
use chrono::{DateTime, Utc};

impl Portal {
    pub(super) async fn pending_login(
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
        let result = self.complete_mfa_inner(cmd).await;
        let observed = match &result {
            Ok(_) => Some(crate::ports::LoginObservation::Success),
            Err(MfaError::Conflict | MfaError::Infra(_)) => None,
            Err(_) => Some(crate::ports::LoginObservation::SecondFactorFailed),
        };
        if let Some(o) = observed {
            self.observer.login(o);
        }
        result
    }

    async fn complete_mfa_inner(&self, cmd: CompleteMfa) -> Result<MfaLogin, MfaError> {
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
            Err(e) if super::is_failed_try(e) => {
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
            checked @ (Checked::Failed | Checked::Replayed) => {
                let left = pending.spend_attempt();
                let err = if left == 0 {
                    commit.write(Write::DeleteSession(pending.id()));
                    MfaError::Code(CodeError::TooManyAttempts)
                } else {
                    commit.write(Write::UpdateSession(pending));
                    MfaError::Code(checked.refusal().unwrap_or(CodeError::Wrong))
                };
                return Ok(Planned::new(commit, Err(err)));
            }
            Checked::Ok => {}
        }
        let mut method = match &cmd.factor {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::PhoneCode(_) => "phone_code",
            SecondFactor::RecoveryCode(_) => "recovery_code",
            SecondFactor::Passkey { .. } => "passkey",
        }
        .to_owned();
        super::consume_passkey_challenge(&cmd.factor, &mut commit, now);
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
        let (mut session, issued) =
            self.start_session(&user, cmd.client.clone(), session_token, now);
        session.set_methods(vec![
            "pwd".to_owned(),
            match &cmd.factor {
                SecondFactor::Totp(_) => "otp",
                SecondFactor::PhoneCode(_) => "sms",
                SecondFactor::RecoveryCode(_) => "rc",
                SecondFactor::Passkey { .. } => user
                    .mfa()
                    .passkeys
                    .iter()
                    .find(|p| p.last_used_at == Some(now))
                    .map_or("hwk", crate::passkey::Passkey::amr),
            }
            .to_owned(),
        ]);
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
        let message = PhoneMessage {
            to: phone.number,
            channel: phone.channel,
            code: SecretString::new(code.expose()),
            purpose: PhoneCodePurpose::Login,
            language: user.language(),
        };
        let mut commit = Commit::new();
        commit.write(Write::UpdateSession(pending));
        self.queue_phone(&mut commit, now, &message);
        self.commit_with_events(commit).await?;
        self.send_phone(message).await
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
        let text = match &channel {
            RecoveryChannel::Phone(number) => Some(PhoneMessage {
                to: number.clone(),
                channel: PhoneChannel::Sms,
                code: code.clone(),
                purpose: PhoneCodePurpose::Recovery,
                language: user.language(),
            }),
            RecoveryChannel::Email(_) => None,
        };
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
            if let Some(text) = &text {
                self.queue_phone(&mut commit, now, text);
            }
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        if let Some(text) = text {
            self.send_phone(text).await?;
        }
        Ok(())
    }
}
