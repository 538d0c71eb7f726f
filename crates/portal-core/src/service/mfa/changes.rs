//! Changes that need a current second factor (R17, R18): presence codes, removing MFA, a new
//! recovery code and the recovery channel; step-up re-authentication.

use super::{Checked, MfaError, SecondFactor, code_hash, new_recovery_code};
use crate::audit::{ActorRef, AuditCategory};
use crate::mail::MailIntent;
use crate::mfa::{MfaMethod, PendingCode, PendingPhone, RecoveryChannel};
use crate::password::normalize;
use crate::ports::{Commit, PhoneCodePurpose, PhoneMessage, Write};
use crate::secret::{SecretString, Token, VerificationCode};
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
