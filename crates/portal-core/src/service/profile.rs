//! Profile self-service ("Sage-ID verwalten", "Account geändert" in the log): name and language,
//! password, e-mail address. Both sensitive changes need a credential proven within the step-up
//! window (15 min by default): changing the password also needs the current one; changing the
//! address needs a code sent to the new address, and the old address is told.

use super::auth::{IssuedSession, Principal};
use super::registration::{MAX_CODE_MAILS_PER_ADDRESS_PER_HOUR, RegistrationTicket};
use super::{Planned, Portal, infra_errors};
use crate::audit::AuditCategory;
use crate::challenge::{ChallengePurpose, CodeError, EmailChallenge};
use crate::error::InfraError;
use crate::ids::ChallengeId;
use crate::mail::MailIntent;
use crate::password::{PasswordError, normalize};
use crate::ports::{Commit, UniqueKey, Write};
use crate::secret::{SecretString, Token, VerificationCode};
use crate::session::ClientInfo;
use crate::throttle::keys;
use crate::token::TokenPurpose;
use crate::user::User;
use crate::values::{EmailAddress, Language, PersonName};
use chrono::TimeDelta;

/// Why a profile change failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The session's user can no longer log in.
    #[error("not authenticated")]
    Unauthenticated,
    /// The current password is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Too many wrong passwords: wait.
    #[error("too many failed attempts; try again later")]
    Throttled {
        /// When the next attempt is allowed.
        retry_at: chrono::DateTime<chrono::Utc>,
    },
    /// The new password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A sensitive change needs a fresh login (step-up).
    #[error("please confirm your password again")]
    ReauthRequired,
    /// The address cannot be used (it has an account).
    #[error("this address cannot be used")]
    EmailUnavailable,
    /// The new address is the current one.
    #[error("this is your current address")]
    SameEmail,
    /// The ticket is unknown or not this user's e-mail change.
    #[error("invalid or expired change")]
    InvalidTicket,
    /// The code was not accepted: malformed (no try used up), wrong, expired, or too many wrong
    /// tries (start again).
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(ProfileError, UniqueKey::UserEmail => ProfileError::EmailUnavailable);

impl Portal {
    /// Step-up for password and address changes: the same window as for second factors.
    fn require_profile_step_up(&self, principal: &Principal) -> Result<(), ProfileError> {
        if self.stepped_up(principal) {
            Ok(())
        } else {
            Err(ProfileError::ReauthRequired)
        }
    }

    async fn me(&self, principal: &Principal) -> Result<User, ProfileError> {
        self.deps
            .queries
            .user(principal.user().id())
            .await?
            .filter(User::can_log_in)
            .ok_or(ProfileError::Unauthenticated)
    }

    /// Changes the user's own name and language.
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        first_name: &PersonName,
        last_name: &PersonName,
        language: Language,
    ) -> Result<User, ProfileError> {
        self.transact(|| async {
            let now = self.now();
            let mut user = self.me(principal).await?;
            if user.first_name() == first_name
                && user.last_name() == last_name
                && user.language() == language
            {
                return Ok(Planned::new(Commit::new(), user));
            }
            user.set_profile(first_name.clone(), last_name.clone(), language, now);
            let mut commit = Commit::new();
            commit
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    "profile=changed",
                ))
                .write(Write::UpdateUser(user.clone()));
            Ok(Planned::new(commit, user))
        })
        .await
    }

    /// Changes the password with the current one. Needs a fresh login (step-up: a credential
    /// proven in this session within the step-up window). Every other session and remembered
    /// device ends, outstanding reset links die, the current session gets a new token (returned),
    /// and a confirmation mail goes out.
    ///
    /// # Errors
    /// Step-up needed (nothing is checked or counted then), wrong current password (counted like
    /// a failed login), throttled, a new password that breaks the policy; infrastructure failures.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: &SecretString,
        confirmation: &SecretString,
        client: ClientInfo,
    ) -> Result<IssuedSession, ProfileError> {
        self.require_profile_step_up(principal)?;
        let now = self.now();
        let user = self.me(principal).await?;
        let key = keys::account(user.email());
        let policy = self.config.login_protection.account;
        if let Some(retry_at) = self.throttled_until(&[(key.clone(), policy)], now).await? {
            return Err(ProfileError::Throttled { retry_at });
        }
        let hash = user
            .password_hash()
            .cloned()
            .ok_or(ProfileError::Unauthenticated)?;
        if !self
            .deps
            .hasher
            .verify(&normalize(current.expose()), &hash)
            .await?
        {
            self.deps
                .committer
                .bump_counter(&key, now, policy.reset_after)
                .await?;
            return Err(ProfileError::WrongPassword);
        }
        let personal = [
            user.email().local_part(),
            user.first_name().as_str(),
            user.last_name().as_str(),
        ];
        let password = self
            .config
            .password_policy
            .check(new, confirmation, &personal)?;
        let new_hash = self.deps.hasher.hash(&password).await?;
        let token = Token::generate(&*self.deps.random);
        let issued = self
            .transact(|| async {
                let now = self.now();
                let mut user = self.me(principal).await?;
                user.set_password(new_hash.clone(), now);
                let (session, issued) = self.start_session(&user, client.clone(), &token, now);
                let mut commit = Commit::new();
                commit
                    .write(Write::DeleteSessionsOfUser {
                        user: user.id(),
                        except: None,
                    })
                    .write(Write::InsertSession(session))
                    .write(Write::DeleteActionTokensOfUser {
                        user: user.id(),
                        purpose: Some(TokenPurpose::PasswordReset),
                    })
                    .mail(self.mail_to(
                        now,
                        &user,
                        MailIntent::PasswordChanged {
                            first_name: user.first_name().to_string(),
                        },
                    ))
                    .audit(self.own_audit_record(
                        now,
                        &user,
                        AuditCategory::PasswordChanged,
                        "via=settings",
                    ))
                    .write(Write::UpdateUser(user));
                Ok::<_, ProfileError>(Planned::new(commit, issued))
            })
            .await?;
        self.deps.committer.reset_counter(&key).await?;
        Ok(issued)
    }

    /// Starts changing the e-mail address: a code goes to the new address, a notice to the old
    /// one. The address changes only when the code is confirmed ([`Self::confirm_email_change`]).
    /// Needs a fresh login (step-up). An address that has an account answers exactly the same,
    /// but no code is sent: its owner gets a notice ([`MailIntent::AddressInUseNotice`]) instead,
    /// so the answer tells nobody whether an address has an account.
    ///
    /// # Errors
    /// Step-up needed, the address is the current one; infrastructure failures.
    pub async fn start_email_change(
        &self,
        principal: &Principal,
        new_email: &EmailAddress,
    ) -> Result<RegistrationTicket, ProfileError> {
        self.require_profile_step_up(principal)?;
        let ticket = Token::generate(&*self.deps.random);
        self.transact(|| async {
            let now = self.now();
            let user = self.me(principal).await?;
            if user.email() == new_email {
                return Err(ProfileError::SameEmail);
            }
            // An address with an account answers like a free one (no account oracle): the
            // ticket and challenge look the same, but the code goes nowhere and the owner gets
            // a notice instead, at most as often as codes are mailed to one address.
            let owner = self.deps.queries.user_by_email(new_email).await?;
            let policy = self.config.code_policy;
            let code = VerificationCode::generate(&*self.deps.random);
            let challenge = EmailChallenge::issue(
                ChallengeId::from_uuid(self.new_uuid()),
                ticket.hash(),
                user.id(),
                ChallengePurpose::EmailChange,
                new_email.clone(),
                &code,
                None,
                &policy,
                now,
            );
            let mut commit = Commit::new();
            commit
                .write(Write::DeleteChallengesOfUser(user.id()))
                .write(Write::InsertChallenge(challenge));
            match owner {
                None => {
                    commit.mail(self.mail(
                        now,
                        new_email.clone(),
                        user.language(),
                        MailIntent::VerificationCode {
                            first_name: user.first_name().to_string(),
                            code: SecretString::new(code.expose()),
                            valid_minutes: policy.ttl.num_minutes(),
                        },
                    ));
                }
                Some(owner) => {
                    let mailed = self
                        .deps
                        .queries
                        .count_challenges_sent_to(new_email, now - TimeDelta::hours(1))
                        .await?;
                    if mailed < MAX_CODE_MAILS_PER_ADDRESS_PER_HOUR {
                        commit.mail(self.mail_to(
                            now,
                            &owner,
                            MailIntent::AddressInUseNotice {
                                first_name: owner.first_name().to_string(),
                            },
                        ));
                    }
                }
            }
            commit
                .mail(self.mail_to(
                    now,
                    &user,
                    MailIntent::EmailChangeRequested {
                        first_name: user.first_name().to_string(),
                        new_email: new_email.to_string(),
                    },
                ))
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    "email_change=started",
                ));
            Ok(Planned::new(
                commit,
                RegistrationTicket {
                    ticket: ticket.clone(),
                    code_expires_at: now + policy.ttl,
                    resend_available_at: now + policy.resend_cooldown,
                },
            ))
        })
        .await
    }

    /// Confirms the new address with the code it received; the old address gets a notice.
    ///
    /// # Errors
    /// Unknown ticket, malformed/wrong/expired code, too many tries, the address taken meanwhile;
    /// infrastructure failures.
    pub async fn confirm_email_change(
        &self,
        principal: &Principal,
        ticket: &str,
        code: &str,
    ) -> Result<User, ProfileError> {
        let ticket = Token::parse(ticket).map_err(|_| ProfileError::InvalidTicket)?;
        let code = VerificationCode::parse(code).map_err(CodeError::from)?;
        self.transact(|| async {
            let now = self.now();
            let mut user = self.me(principal).await?;
            let mut challenge = self
                .live_challenge(&ticket, now)
                .await?
                .filter(|c| {
                    c.user_id() == user.id() && c.purpose() == ChallengePurpose::EmailChange
                })
                .ok_or(ProfileError::InvalidTicket)?;
            match challenge.check(&code, now) {
                Ok(()) => {}
                Err(CodeError::Wrong) => {
                    let mut commit = Commit::new();
                    commit.write(Write::UpdateChallenge(challenge));
                    return Ok(Planned::new(commit, Err(CodeError::Wrong.into())));
                }
                Err(e) => return Err(ProfileError::Code(e)),
            }
            let old = user.email().clone();
            let new = challenge.email().clone();
            user.change_email(new.clone(), now);
            let mut commit = Commit::new();
            commit
                .write(Write::DeleteChallengesOfUser(user.id()))
                .write(Write::DeleteActionTokensOfUser {
                    user: user.id(),
                    purpose: Some(TokenPurpose::PasswordReset),
                })
                .mail(self.mail(
                    now,
                    old,
                    user.language(),
                    MailIntent::EmailChanged {
                        first_name: user.first_name().to_string(),
                        new_email: new.to_string(),
                    },
                ))
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    "email=changed",
                ))
                .write(Write::UpdateUser(user.clone()));
            Ok(Planned::new(commit, Ok(user)))
        })
        .await?
    }
}
