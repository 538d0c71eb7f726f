//! Changes that need a current second factor (R17, R18): presence codes, removing MFA, a new
//! recovery code and the recovery channel; step-up re-authentication.

use super::{Checked, MfaError, SecondFactor, check_sent_code, code_hash, new_recovery_code};
use crate::audit::{ActorRef, AuditCategory};
use crate::challenge::CodeError;
use crate::ids::UserId;
use crate::mail::MailIntent;
use crate::mfa::{
    MfaMethod, PendingCode, PendingPhone, PendingRecoveryChannel, PhoneChannel, RecoveryChannel,
};
use crate::password::normalize;
use crate::ports::{Commit, PhoneCodePurpose, PhoneMessage, Write};
use crate::secret::{SecretString, Token, TokenHash, VerificationCode};
use crate::service::auth::{IssuedSession, Principal};
use crate::service::{Planned, Portal};
use crate::session::ClientInfo;
use crate::throttle::keys;
use crate::user::User;
use chrono::{DateTime, Utc};

impl Portal {
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
                if let Some(refused) = self.prove_presence(&mut user, proof, now).await?.refusal() {
                    return Ok(Planned::new(Commit::new(), Err(MfaError::Code(refused))));
                }
                let mut commit = Commit::new();
                super::consume_passkey_challenge(proof, &mut commit, now);
                let value = change(&mut user, &mut commit, now)?;
                commit.write(Write::UpdateUser(user));
                Ok(Planned::new(commit, Ok(value)))
            })
            .await?;
        if result.as_ref().is_err_and(super::is_failed_try) {
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
    /// ("Bestätigen Sie Ihre Identität"). The channel is not used yet: a code is sent to it (an
    /// SMS, or a mail through the outbox) and it takes over only with
    /// [`Self::confirm_recovery_channel`]; until then the verified channel before it stays in use.
    /// Beyond the send budgets (those of a phone code; for an address, the user's own) the answer
    /// is the same and nothing is sent.
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
        let code = VerificationCode::generate(&*self.deps.random);
        let hash = code_hash(principal.user().id().as_uuid().as_bytes(), &code);
        let budget_left = self
            .recovery_channel_budget(principal.user().id(), channel, self.now())
            .await?;
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
            if !budget_left {
                return Ok(());
            }
            self.plan_recovery_channel_code(user, commit, channel, hash, &code, now);
            Ok(())
        })
        .await?;
        if budget_left {
            self.send_recovery_channel_sms(principal, channel, &code)
                .await?;
        }
        Ok(())
    }

    /// "Code erneut senden": a new code to the recovery channel waiting for confirmation; the old
    /// code dies, the tries start again. Beyond the send budgets nothing is sent (same answer).
    ///
    /// # Errors
    /// Step-up needed, no channel waiting (`NoSetupInProgress`), a phone without gateway, the
    /// gateway failed; infrastructure failures.
    pub async fn resend_recovery_channel_code(
        &self,
        principal: &Principal,
    ) -> Result<(), MfaError> {
        self.require_step_up(principal)?;
        let user = self.current_user(principal).await?;
        let channel = user
            .mfa()
            .pending_recovery_channel
            .clone()
            .ok_or(MfaError::NoSetupInProgress)?
            .channel;
        if matches!(channel, RecoveryChannel::Phone(_)) {
            self.require_phone_gateway()?;
        }
        if !self
            .recovery_channel_budget(user.id(), &channel, self.now())
            .await?
        {
            return Ok(());
        }
        let code = VerificationCode::generate(&*self.deps.random);
        let hash = code_hash(user.id().as_uuid().as_bytes(), &code);
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            if user
                .mfa()
                .pending_recovery_channel
                .as_ref()
                .map(|p| &p.channel)
                != Some(&channel)
            {
                return Err(MfaError::NoSetupInProgress);
            }
            let mut commit = Commit::new();
            self.plan_recovery_channel_code(&mut user, &mut commit, &channel, hash, &code, now);
            commit.write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        self.send_recovery_channel_sms(principal, &channel, &code)
            .await
    }

    /// Confirms the recovery channel waiting for its code: it replaces the verified one. A wrong
    /// code uses up a try and changes nothing else; an expired code or one without tries left
    /// changes nothing (send a new one).
    ///
    /// # Errors
    /// Step-up needed, no channel waiting (`NoSetupInProgress`), malformed, wrong or expired code,
    /// no tries left, the phone became the MFA phone meanwhile (`SamePhone`); infrastructure
    /// failures.
    pub async fn confirm_recovery_channel(
        &self,
        principal: &Principal,
        code: &SecretString,
    ) -> Result<(), MfaError> {
        self.require_step_up(principal)?;
        let parsed = VerificationCode::parse(code.expose())
            .map_err(|_| MfaError::Code(CodeError::Malformed))?;
        let result = self
            .transact(|| async {
                let now = self.now();
                let user = self.current_user(principal).await?;
                let pending = user
                    .mfa()
                    .pending_recovery_channel
                    .clone()
                    .ok_or(MfaError::NoSetupInProgress)?;
                let mut user = match check_sent_code(user, &pending.code, &parsed, now, |m| {
                    m.pending_recovery_channel.as_mut().map(|p| &mut p.code)
                })? {
                    Ok(user) => user,
                    Err(wrong) => {
                        let wrong = Planned::new(wrong, Err(MfaError::Code(CodeError::Wrong)));
                        return Ok::<_, MfaError>(wrong);
                    }
                };
                if let RecoveryChannel::Phone(number) = &pending.channel
                    && user
                        .mfa()
                        .phone
                        .as_ref()
                        .is_some_and(|p| &p.number == number)
                {
                    return Err(MfaError::SamePhone);
                }
                user.change_mfa(
                    |m| {
                        m.recovery_channel = Some(pending.channel.clone());
                        m.pending_recovery_channel = None;
                    },
                    now,
                );
                let mut commit = Commit::new();
                commit
                    .audit(self.own_audit_record(
                        now,
                        &user,
                        AuditCategory::AccountChanged,
                        match pending.channel {
                            RecoveryChannel::Phone(_) => "recovery_channel=phone",
                            RecoveryChannel::Email(_) => "recovery_channel=email",
                        },
                    ))
                    .write(Write::UpdateUser(user));
                Ok(Planned::new(commit, Ok(())))
            })
            .await?;
        if matches!(result, Err(MfaError::Code(CodeError::Wrong))) {
            self.count_second_factor_failure(principal.user().id(), self.now())
                .await?;
        }
        result
    }

    /// Takes a send from the budgets of a code to `channel`: a phone's hourly budgets, or the
    /// user's own hourly budget of recovery-address codes (same size as the phone budget).
    async fn recovery_channel_budget(
        &self,
        user: UserId,
        channel: &RecoveryChannel,
        now: DateTime<Utc>,
    ) -> Result<bool, MfaError> {
        match channel {
            RecoveryChannel::Phone(number) => self.phone_budget(user, number, now).await,
            RecoveryChannel::Email(_) => {
                let budget = self.config.login_protection.phone_codes();
                let key = keys::recovery_channel_codes(user, budget.window_index(now));
                self.spend_budgets(&[(key, budget)], now).await
            }
        }
    }

    /// Stores `channel` as waiting for the code with `hash` (a new code, full tries), audits it
    /// and, for an address, queues the mail with the code.
    fn plan_recovery_channel_code(
        &self,
        user: &mut User,
        commit: &mut Commit,
        channel: &RecoveryChannel,
        hash: TokenHash,
        code: &VerificationCode,
        now: DateTime<Utc>,
    ) {
        user.change_mfa(
            |m| {
                m.pending_recovery_channel = Some(PendingRecoveryChannel {
                    channel: channel.clone(),
                    code: PendingCode {
                        code_hash: hash,
                        expires_at: now + self.config.phone_code_ttl,
                        attempts_left: self.config.mfa_login_attempts,
                    },
                });
            },
            now,
        );
        if let RecoveryChannel::Email(to) = channel {
            commit.mail(self.mail(
                now,
                to.clone(),
                user.language(),
                MailIntent::RecoveryChannelCode {
                    first_name: user.first_name().to_string(),
                    code: SecretString::new(code.expose()),
                },
            ));
        }
        commit.audit(self.own_audit_record(
            now,
            user,
            AuditCategory::AccountChanged,
            match channel {
                RecoveryChannel::Phone(_) => "recovery_channel_pending=phone",
                RecoveryChannel::Email(_) => "recovery_channel_pending=email",
            },
        ));
    }

    /// After the commit: the SMS with the code, when the channel is a phone.
    async fn send_recovery_channel_sms(
        &self,
        principal: &Principal,
        channel: &RecoveryChannel,
        code: &VerificationCode,
    ) -> Result<(), MfaError> {
        let RecoveryChannel::Phone(number) = channel else {
            return Ok(());
        };
        self.send_phone(PhoneMessage {
            to: number.clone(),
            channel: PhoneChannel::Sms,
            code: SecretString::new(code.expose()),
            purpose: PhoneCodePurpose::RecoveryChannel,
            language: principal.user().language(),
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
                    if let Some(refused) =
                        self.prove_presence(&mut user, proof, now).await?.refusal()
                    {
                        return Ok::<_, MfaError>(Planned::new(
                            commit,
                            Err(MfaError::Code(refused)),
                        ));
                    }
                    super::consume_passkey_challenge(proof, &mut commit, now);
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
            Err(e) if super::is_failed_try(e) => {
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
