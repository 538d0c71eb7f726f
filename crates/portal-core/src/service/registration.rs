//! Registration (manual 2.1, R7) and accepting an invitation (manual 3.6, R10).
//!
//! `register` answers the same for a new and an existing address: a ticket. For a new address the
//! code goes out; for an existing one its owner gets a notice instead, and the ticket leads to a
//! challenge that behaves exactly like a real one but can never be confirmed. No account exists
//! and no session is issued until the code is confirmed.

use super::auth::IssuedSession;
use super::{Planned, Portal, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::challenge::{ChallengePurpose, CodeError, EmailChallenge, ResendRefused};
use crate::error::InfraError;
use crate::ids::{ChallengeId, UserId};
use crate::mail::MailIntent;
use crate::password::{PasswordError, PasswordHash};
use crate::ports::{Commit, UniqueKey, Write};
use crate::secret::{SecretString, Token, VerificationCode};
use crate::session::ClientInfo;
use crate::token::{TokenPurpose, TokenUnusable};
use crate::user::{AccountState, Role, User};
use crate::values::{EmailAddress, Language, PersonName};
use chrono::{DateTime, TimeDelta, Utc};

/// Code and notice mails per address and hour; more registrations answer the same but mail
/// nothing, so the form cannot be used to flood someone's inbox.
pub const MAX_CODE_MAILS_PER_ADDRESS_PER_HOUR: u32 = 10;

/// "Erstellen Sie Ihr Konto".
#[derive(Debug, Clone)]
pub struct Register {
    /// E-mail.
    pub email: EmailAddress,
    /// Vorname.
    pub first_name: PersonName,
    /// Nachname.
    pub last_name: PersonName,
    /// Passwort.
    pub password: SecretString,
    /// Passwort bestätigen.
    pub password_confirmation: SecretString,
    /// Language for mails.
    pub language: Language,
}

/// What the client keeps between registering and entering the code.
#[derive(Debug, Clone)]
pub struct RegistrationTicket {
    /// The ticket: sent back with the code and with "Code erneut senden".
    pub ticket: Token,
    /// When the mailed code expires.
    pub code_expires_at: DateTime<Utc>,
    /// When "Code erneut senden" becomes available.
    pub resend_available_at: DateTime<Utc>,
}

/// Why a registration was refused. Deliberately nothing about the address.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Too much concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(RegisterError);

/// Why a new code was not sent.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// The ticket is malformed, unknown or expired.
    #[error("invalid or expired registration")]
    InvalidTicket,
    /// Too soon after the last code.
    #[error("wait before asking for another code")]
    TooSoon {
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
    /// This registration has used up its codes; start again.
    #[error("no more codes for this registration")]
    TooMany,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(ResendError);

/// Why a code was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The ticket is malformed, unknown, or its registration is gone.
    #[error("invalid or expired registration")]
    InvalidTicket,
    /// The code was not accepted: malformed (no try used up), wrong, expired, or too many wrong
    /// tries (ask for a new one).
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The invitation behind this registration expired or was used.
    #[error("the invitation is no longer valid")]
    InvitationInvalid,
    /// Meanwhile another registration of this address was confirmed.
    #[error("this address is registered already; log in or reset the password")]
    AlreadyRegistered,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(VerifyError, UniqueKey::UserEmail => VerifyError::AlreadyRegistered);

/// The pre-filled registration page behind an invitation link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationView {
    /// The invited address (fixed).
    pub email: EmailAddress,
    /// First name as the admin entered it.
    pub first_name: PersonName,
    /// Last name as the admin entered it.
    pub last_name: PersonName,
    /// Language.
    pub language: Language,
    /// The company (none for an operator's setup link).
    pub customer_name: Option<String>,
    /// The role the account will have.
    pub role: Role,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
}

/// Setting the password on the invitation page.
#[derive(Debug, Clone)]
pub struct AcceptInvitation {
    /// Passwort.
    pub password: SecretString,
    /// Passwort bestätigen.
    pub password_confirmation: SecretString,
}

/// Why an invitation link does not work.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// Malformed, unknown or revoked link.
    #[error("unknown invitation")]
    NotFound,
    /// Expired; ask the administrator for a new one.
    #[error("the invitation has expired")]
    Expired,
    /// Registration already finished with it.
    #[error("the invitation was used already")]
    Used,
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(InvitationError);

impl From<TokenUnusable> for InvitationError {
    fn from(e: TokenUnusable) -> Self {
        match e {
            TokenUnusable::Expired => Self::Expired,
            TokenUnusable::Used => Self::Used,
        }
    }
}

impl Portal {
    /// Registers a new account ("Registrieren"): checks the password, then mails a code (or, for
    /// an address that has an account, a notice to its owner) and returns the same kind of ticket
    /// either way.
    ///
    /// # Errors
    /// The password breaks the policy; infrastructure failures.
    pub async fn register(&self, cmd: Register) -> Result<RegistrationTicket, RegisterError> {
        let personal = [
            cmd.email.local_part(),
            cmd.first_name.as_str(),
            cmd.last_name.as_str(),
        ];
        let password = self.config.password_policy.check(
            &cmd.password,
            &cmd.password_confirmation,
            &personal,
        )?;
        // Hash in both cases, so an existing address costs what a new one does.
        let hash = self.deps.hasher.hash(&password).await?;
        let ticket = Token::generate(&*self.deps.random);
        self.transact(|| self.plan_register(&cmd, &hash, &ticket))
            .await
    }

    async fn plan_register(
        &self,
        cmd: &Register,
        hash: &PasswordHash,
        ticket: &Token,
    ) -> Result<Planned<RegistrationTicket>, RegisterError> {
        let now = self.now();
        let q = &self.deps.queries;
        let policy = self.config.code_policy;
        let code = VerificationCode::generate(&*self.deps.random);
        let challenge_id = ChallengeId::from_uuid(self.new_uuid());
        let may_mail = q
            .count_challenges_sent_to(&cmd.email, now - TimeDelta::hours(1))
            .await?
            < MAX_CODE_MAILS_PER_ADDRESS_PER_HOUR;
        let mut commit = Commit::new();
        match q.user_by_email(&cmd.email).await? {
            Some(existing) => {
                let challenge = EmailChallenge::issue(
                    challenge_id,
                    ticket.hash(),
                    existing.id(),
                    ChallengePurpose::ExistingAccount,
                    cmd.email.clone(),
                    &code,
                    None,
                    &policy,
                    now,
                );
                commit.write(Write::InsertChallenge(challenge));
                commit.audit(self.audit_record(
                    now,
                    existing.customer_id(),
                    ActorRef::anonymous(),
                    Some(existing.id()),
                    AuditCategory::RegistrationAttempted,
                    if may_mail {
                        "notice=sent"
                    } else {
                        "notice=suppressed"
                    },
                ));
                if may_mail {
                    commit.mail(self.mail_to(
                        now,
                        &existing,
                        MailIntent::ExistingAccountNotice {
                            first_name: existing.first_name().to_string(),
                        },
                    ));
                }
            }
            None => {
                let user = User::new_pending(
                    UserId::from_uuid(self.new_uuid()),
                    cmd.email.clone(),
                    cmd.first_name.clone(),
                    cmd.last_name.clone(),
                    cmd.language,
                    now,
                );
                let challenge = EmailChallenge::issue(
                    challenge_id,
                    ticket.hash(),
                    user.id(),
                    ChallengePurpose::Registration,
                    cmd.email.clone(),
                    &code,
                    Some(hash.clone()),
                    &policy,
                    now,
                );
                commit.audit(self.audit_record(
                    now,
                    None,
                    ActorRef::anonymous(),
                    Some(user.id()),
                    AuditCategory::RegistrationStarted,
                    if may_mail {
                        "code=sent"
                    } else {
                        "code=suppressed"
                    },
                ));
                if may_mail {
                    commit.mail(self.code_mail(now, &user, &code));
                }
                commit
                    .write(Write::InsertUser(user))
                    .write(Write::InsertChallenge(challenge));
            }
        }
        Ok(Planned::new(
            commit,
            RegistrationTicket {
                ticket: ticket.clone(),
                code_expires_at: now + policy.ttl,
                resend_available_at: now + policy.resend_cooldown,
            },
        ))
    }

    /// The challenge behind a ticket, unless its attempt is older than
    /// `pending_registration_ttl` (then the ticket is dead, whatever its codes say: a registration,
    /// an invitation's or an e-mail change's code, and the look-alike of an existing address).
    pub(crate) async fn live_challenge(
        &self,
        ticket: &Token,
        now: DateTime<Utc>,
    ) -> Result<Option<EmailChallenge>, crate::ports::StoreError> {
        Ok(self
            .deps
            .queries
            .challenge_by_ticket(&ticket.hash())
            .await?
            .filter(|c| c.started_within(self.config.pending_registration_ttl, now)))
    }

    fn code_mail(
        &self,
        now: DateTime<Utc>,
        user: &User,
        code: &VerificationCode,
    ) -> crate::mail::OutboxMail {
        self.mail_to(
            now,
            user,
            MailIntent::VerificationCode {
                first_name: user.first_name().to_string(),
                code: SecretString::new(code.expose()),
                valid_minutes: self.config.code_policy.ttl.num_minutes(),
            },
        )
    }

    /// "Code erneut senden": mails a new code (the old one stops working) after the cooldown.
    ///
    /// # Errors
    /// Unknown ticket, too soon, too many codes; infrastructure failures.
    pub async fn resend_code(&self, ticket: &str) -> Result<RegistrationTicket, ResendError> {
        let ticket = Token::parse(ticket).map_err(|_| ResendError::InvalidTicket)?;
        self.transact(|| self.plan_resend(&ticket)).await
    }

    async fn plan_resend(
        &self,
        ticket: &Token,
    ) -> Result<Planned<RegistrationTicket>, ResendError> {
        let now = self.now();
        let q = &self.deps.queries;
        let policy = self.config.code_policy;
        let mut challenge = self
            .live_challenge(ticket, now)
            .await?
            .ok_or(ResendError::InvalidTicket)?;
        let user = q
            .user(challenge.user_id())
            .await?
            .ok_or(ResendError::InvalidTicket)?;
        let code = VerificationCode::generate(&*self.deps.random);
        challenge.resend(&code, &policy, now).map_err(|e| match e {
            ResendRefused::TooSoon { retry_at } => ResendError::TooSoon { retry_at },
            ResendRefused::TooMany => ResendError::TooMany,
        })?;
        let may_mail = q
            .count_challenges_sent_to(challenge.email(), now - TimeDelta::hours(1))
            .await?
            < MAX_CODE_MAILS_PER_ADDRESS_PER_HOUR;
        let mut commit = Commit::new();
        let customer = match challenge.purpose() {
            ChallengePurpose::Registration => None,
            _ => user.customer_id(),
        };
        if may_mail {
            let mail = match challenge.purpose() {
                ChallengePurpose::ExistingAccount => self.mail_to(
                    now,
                    &user,
                    MailIntent::ExistingAccountNotice {
                        first_name: user.first_name().to_string(),
                    },
                ),
                // The new address gets the code, not the current one.
                ChallengePurpose::EmailChange => self.mail(
                    now,
                    challenge.email().clone(),
                    user.language(),
                    MailIntent::VerificationCode {
                        first_name: user.first_name().to_string(),
                        code: SecretString::new(code.expose()),
                        valid_minutes: self.config.code_policy.ttl.num_minutes(),
                    },
                ),
                _ => self.code_mail(now, &user, &code),
            };
            commit.mail(mail);
        }
        commit.audit(self.audit_record(
            now,
            customer,
            ActorRef::anonymous(),
            Some(user.id()),
            AuditCategory::CodeResent,
            if may_mail {
                "mail=sent"
            } else {
                "mail=suppressed"
            },
        ));
        let answer = RegistrationTicket {
            ticket: ticket.clone(),
            code_expires_at: challenge.expires_at(),
            resend_available_at: challenge.resend_available_at(&policy),
        };
        commit.write(Write::UpdateChallenge(challenge));
        Ok(Planned::new(commit, answer))
    }

    /// "Weiter" on the code page: confirms the code, creates the account (or completes the
    /// invitation) and starts a session.
    ///
    /// # Errors
    /// Unknown ticket, malformed/wrong/expired code, too many tries, a used invitation, an address
    /// confirmed meanwhile by another registration; infrastructure failures.
    pub async fn verify_registration(
        &self,
        ticket: &str,
        code: &str,
        client: ClientInfo,
    ) -> Result<IssuedSession, VerifyError> {
        let ticket = Token::parse(ticket).map_err(|_| VerifyError::InvalidTicket)?;
        let code = VerificationCode::parse(code).map_err(CodeError::from)?;
        let session_token = Token::generate(&*self.deps.random);
        self.transact(|| self.plan_verify(&ticket, &code, &client, &session_token))
            .await?
    }

    async fn plan_verify(
        &self,
        ticket: &Token,
        code: &VerificationCode,
        client: &ClientInfo,
        session_token: &Token,
    ) -> Result<Planned<Result<IssuedSession, VerifyError>>, VerifyError> {
        let now = self.now();
        let q = &self.deps.queries;
        let mut challenge = self
            .live_challenge(ticket, now)
            .await?
            .ok_or(VerifyError::InvalidTicket)?;
        match challenge.check(code, now) {
            Ok(()) => {}
            Err(CodeError::Wrong) => {
                // Only the failure counter changes.
                let mut commit = Commit::new();
                commit.write(Write::UpdateChallenge(challenge));
                return Ok(Planned::new(commit, Err(CodeError::Wrong.into())));
            }
            Err(e) => return Err(e.into()),
        }
        let mut user = q
            .user(challenge.user_id())
            .await?
            .ok_or(VerifyError::InvalidTicket)?;
        let password = challenge
            .password_hash()
            .cloned()
            .ok_or(VerifyError::InvalidTicket)?;
        let mut commit = Commit::new();
        let (customer, category, details) = match challenge.purpose() {
            ChallengePurpose::Registration => {
                if user.state() != AccountState::PendingVerification {
                    return Err(VerifyError::InvalidTicket);
                }
                (None, AuditCategory::UserCreated, "via=registration")
            }
            ChallengePurpose::Invitation { token } => {
                let mut invitation = q
                    .action_tokens_of_user(user.id(), TokenPurpose::Invitation)
                    .await?
                    .into_iter()
                    .find(|t| t.id() == token)
                    .ok_or(VerifyError::InvitationInvalid)?;
                // Accepted in time: the mailed code carries its own expiry from here on.
                invitation
                    .complete(now)
                    .map_err(|_| VerifyError::InvitationInvalid)?;
                commit.write(Write::UpdateActionToken(invitation));
                (
                    user.customer_id(),
                    AuditCategory::UserActivated,
                    "via=invitation",
                )
            }
            // Never confirmable here: existing accounts by design, e-mail changes through
            // `confirm_email_change` of the logged-in user.
            ChallengePurpose::ExistingAccount | ChallengePurpose::EmailChange => {
                return Err(VerifyError::InvalidTicket);
            }
        };
        user.complete_registration(password, now)
            .map_err(|_| VerifyError::InvitationInvalid)?;
        user.record_login(now);
        let (session, issued) = self.start_session(&user, client.clone(), session_token, now);
        commit.audit(self.audit_record(
            now,
            customer,
            ActorRef::user(user.id()),
            Some(user.id()),
            category,
            details,
        ));
        commit
            .write(Write::DeleteChallengesOfUser(user.id()))
            .write(Write::UpdateUser(user))
            .write(Write::InsertSession(session));
        let _ = challenge;
        Ok(Planned::new(commit, Ok(issued)))
    }

    /// Opens an invitation link: the pre-filled registration page.
    ///
    /// # Errors
    /// Unknown, expired or used link; infrastructure failures.
    pub async fn invitation(&self, token: &str) -> Result<InvitationView, InvitationError> {
        let token = Token::parse(token).map_err(|_| InvitationError::NotFound)?;
        let now = self.now();
        let (invitation, user) = self.load_invitation(&token, now).await?;
        let customer_name = match user.customer_id() {
            Some(c) => self
                .deps
                .queries
                .customer(c)
                .await?
                .map(|c| c.name().to_string()),
            None => None,
        };
        Ok(InvitationView {
            email: user.email().clone(),
            first_name: user.first_name().clone(),
            last_name: user.last_name().clone(),
            language: user.language(),
            customer_name,
            role: user.role(),
            expires_at: invitation.record().expires_at,
        })
    }

    async fn load_invitation(
        &self,
        token: &Token,
        now: DateTime<Utc>,
    ) -> Result<(crate::token::ActionToken, User), InvitationError> {
        let q = &self.deps.queries;
        let invitation = q
            .action_token(&token.hash(), TokenPurpose::Invitation)
            .await?
            .ok_or(InvitationError::NotFound)?;
        invitation.usable_at(now)?;
        let user = q
            .user(invitation.user_id())
            .await?
            .ok_or(InvitationError::NotFound)?;
        if user.state() != AccountState::Invited {
            return Err(InvitationError::Used);
        }
        if user.lock().is_some() {
            return Err(InvitationError::NotFound);
        }
        Ok((invitation, user))
    }

    /// "Registrieren" on the invitation page: sets the password (applied once the code is
    /// confirmed) and mails the code.
    ///
    /// # Errors
    /// Unknown, expired or used link; a password that breaks the policy; infrastructure failures.
    pub async fn accept_invitation(
        &self,
        token: &str,
        cmd: AcceptInvitation,
    ) -> Result<RegistrationTicket, InvitationError> {
        let token = Token::parse(token).map_err(|_| InvitationError::NotFound)?;
        let (_, user) = self.load_invitation(&token, self.now()).await?;
        let personal = [
            user.email().local_part(),
            user.first_name().as_str(),
            user.last_name().as_str(),
        ];
        let password = self.config.password_policy.check(
            &cmd.password,
            &cmd.password_confirmation,
            &personal,
        )?;
        let hash = self.deps.hasher.hash(&password).await?;
        let ticket = Token::generate(&*self.deps.random);
        self.transact(|| self.plan_accept(&token, &hash, &ticket))
            .await
    }

    async fn plan_accept(
        &self,
        token: &Token,
        hash: &PasswordHash,
        ticket: &Token,
    ) -> Result<Planned<RegistrationTicket>, InvitationError> {
        let now = self.now();
        let policy = self.config.code_policy;
        let (invitation, user) = self.load_invitation(token, now).await?;
        let code = VerificationCode::generate(&*self.deps.random);
        let challenge = EmailChallenge::issue(
            ChallengeId::from_uuid(self.new_uuid()),
            ticket.hash(),
            user.id(),
            ChallengePurpose::Invitation {
                token: invitation.id(),
            },
            user.email().clone(),
            &code,
            Some(hash.clone()),
            &policy,
            now,
        );
        let mut commit = Commit::new();
        commit
            .write(Write::InsertChallenge(challenge))
            .audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::user(user.id()),
                Some(user.id()),
                AuditCategory::RegistrationStarted,
                "via=invitation",
            ))
            .mail(self.code_mail(now, &user, &code));
        Ok(Planned::new(
            commit,
            RegistrationTicket {
                ticket: ticket.clone(),
                code_expires_at: now + policy.ttl,
                resend_available_at: now + policy.resend_cooldown,
            },
        ))
    }
}
