//! "Passwort vergessen?" (manual 2.3, R15). The request always gets the same answer; a link goes
//! out only for an account that can log in, at most a few times an hour. The link carries a
//! 256-bit single-use token (stored hashed, one hour by default); using it sets a new password,
//! ends every session, voids every other reset link and sends a confirmation.

use super::{Planned, Portal, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::error::InfraError;
use crate::ids::{ActionTokenId, OutboxId};
use crate::mail::MailIntent;
use crate::outbox::{OutboxKind, OutboxMessage, PasswordResetRequest, Payload, SendError, Sender};
use crate::password::{PasswordError, PasswordHash};
use crate::ports::{Commit, Write};
use crate::secret::{SecretString, Token};
use crate::throttle::{AccountKey, keys};
use crate::token::{ActionToken, TokenPurpose, TokenUnusable};
use crate::user::User;
use crate::values::EmailAddress;
use async_trait::async_trait;
use chrono::TimeDelta;
use std::borrow::Borrow;

/// Why a reset failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Malformed, unknown or revoked link.
    #[error("invalid reset link")]
    InvalidLink,
    /// The link expired; ask for a new one.
    #[error("the reset link has expired")]
    Expired,
    /// The link was used already.
    #[error("the reset link was used already")]
    Used,
    /// The new password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(ResetError);

impl From<TokenUnusable> for ResetError {
    fn from(e: TokenUnusable) -> Self {
        match e {
            TokenUnusable::Expired => Self::Expired,
            TokenUnusable::Used => Self::Used,
        }
    }
}

/// The [`Sender`] of [`OutboxKind::PasswordResetRequest`]: processes recorded "Passwort
/// vergessen?" requests with the portal itself (lookup, hourly cap, older links voided, link or
/// locked notice with its audit entry and mail in one commit). Run a dispatcher with it next to
/// the mail dispatcher (`portal serve` does; embedding hosts start one themselves,
/// docs/embedding.md); hold the portal as an `Arc<Portal>` there.
///
/// An infrastructure failure is transient (the dispatcher retries the request with back-off); a
/// message that is not a request, or no longer holds its address, is permanent.
#[derive(Debug, Clone)]
pub struct PasswordResetRequests<P>(pub P);

#[async_trait]
impl<P: Borrow<Portal> + Send + Sync> Sender for PasswordResetRequests<P> {
    fn kind(&self) -> OutboxKind {
        OutboxKind::PasswordResetRequest
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let Payload::PasswordResetRequest(request) = &message.payload else {
            return Err(SendError::Permanent(format!(
                "not a password-reset request: kind {}",
                message.payload.kind_key()
            )));
        };
        let Some(email) = &request.email else {
            return Err(SendError::Permanent(
                "the request no longer holds its address".to_owned(),
            ));
        };
        match self
            .0
            .borrow()
            .process_reset_request(message.id, email)
            .await
        {
            Ok(()) => Ok(()),
            // Neither names the address.
            Err(e @ (ResetError::Infra(_) | ResetError::Conflict)) => {
                Err(SendError::Transient(e.to_string()))
            }
            Err(e) => Err(SendError::Permanent(e.to_string())),
        }
    }
}

/// A plan whose value says whether its commit writes anything.
fn planned(commit: Commit) -> Planned<bool> {
    let writes = !commit.is_empty();
    Planned::new(commit, writes)
}

impl Portal {
    /// "E-Mail senden": the same answer whatever the address. The request is only recorded here,
    /// alike for every well-formed address; the lookup and what follows happen behind the answer,
    /// when the outbox hands the request to [`PasswordResetRequests`]: a reset link for an
    /// account that can log in, a "your account is locked" notice for a locked one, nothing
    /// otherwise.
    ///
    /// # Errors
    /// Infrastructure failures only.
    pub async fn forgot_password(&self, email: &str) -> Result<(), ResetError> {
        let Ok(email) = EmailAddress::parse(email) else {
            return Ok(());
        };
        // The same writes for every address, known or not (docs/security.md, "Timing"): its
        // counter (named by a keyed hash, so unknown addresses are not stored in clear), then the
        // request in the outbox — unless the address asked more often than links may go out in
        // an hour, which depends on the requests alone, never on the account. Nothing is read
        // about the account here, and no write goes to a shared chain.
        let now = self.now();
        let account = AccountKey::of(self.config.counter_key.as_ref(), &email);
        let key = keys::reset_requests(&account, now.timestamp().div_euclid(3_600));
        let requests = self
            .deps
            .committer
            .bump_counter(&key, now, TimeDelta::hours(1))
            .await?;
        if requests.count > self.config.reset_requests_per_hour {
            return Ok(());
        }
        let mut commit = Commit::new();
        commit.message(OutboxMessage {
            id: OutboxId::from_uuid(self.new_uuid()),
            created_at: now,
            payload: Payload::PasswordResetRequest(PasswordResetRequest { email: Some(email) }),
        });
        self.commit_with_events(commit).await?;
        Ok(())
    }

    /// Processes one recorded request (see [`PasswordResetRequests`]): a reset link, a locked
    /// notice or nothing, by today's rules. Processing the same request again (at-least-once
    /// delivery) commits nothing more: the token it wrote carries the request's id.
    async fn process_reset_request(
        &self,
        request: OutboxId,
        email: &EmailAddress,
    ) -> Result<(), ResetError> {
        let token = Token::generate(&*self.deps.random);
        let id = ActionTokenId::from_uuid(request.as_uuid());
        self.transact(|| self.plan_forgot(email, &token, id))
            .await
            .map(|_| ())
    }

    async fn plan_forgot(
        &self,
        email: &EmailAddress,
        token: &Token,
        id: ActionTokenId,
    ) -> Result<Planned<bool>, ResetError> {
        let now = self.now();
        let q = &self.deps.queries;
        let mut commit = Commit::new();
        let Some(user) = q.user_by_email(email).await? else {
            return Ok(planned(commit));
        };
        let tokens = q
            .action_tokens_of_user(user.id(), TokenPurpose::PasswordReset)
            .await?;
        if tokens.iter().any(|t| t.id() == id) {
            // This request was processed before (its acknowledgement did not land).
            return Ok(planned(commit));
        }
        let recent = tokens
            .iter()
            .filter(|t| t.record().created_at > now - TimeDelta::hours(1))
            .count();
        if recent >= self.config.reset_requests_per_hour as usize {
            return Ok(planned(commit));
        }
        let audit = |details: &str| {
            self.audit_record(
                now,
                user.customer_id(),
                ActorRef::anonymous(),
                Some(user.id()),
                AuditCategory::PasswordResetRequested,
                details,
            )
        };
        if user.lock().is_some() {
            commit
                .audit(audit("link=withheld_locked"))
                .mail(self.mail_to(
                    now,
                    &user,
                    MailIntent::PasswordResetLocked {
                        first_name: user.first_name().to_string(),
                    },
                ));
            // Record the attempt so the hourly cap applies to notices as well.
            commit.write(Write::InsertActionToken(Self::used_reset_token(
                id, &user, token, now,
            )));
            return Ok(planned(commit));
        }
        if !user.can_log_in() {
            return Ok(planned(commit));
        }
        let ttl = self.config.reset_link_ttl;
        let reset = ActionToken::issue(
            id,
            token.hash(),
            TokenPurpose::PasswordReset,
            user.id(),
            now,
            now + ttl,
        );
        // A new link voids the older ones (they stay as used rows for the hourly cap).
        for mut old in tokens {
            if old.consume(now).is_ok() {
                commit.write(Write::UpdateActionToken(old));
            }
        }
        commit
            .write(Write::InsertActionToken(reset))
            .audit(audit("link=sent"))
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::PasswordReset {
                    first_name: user.first_name().to_string(),
                    token: SecretString::new(token.expose()),
                    valid_minutes: ttl.num_minutes(),
                },
            ));
        Ok(planned(commit))
    }

    fn used_reset_token(
        id: ActionTokenId,
        user: &User,
        token: &Token,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ActionToken {
        let mut t = ActionToken::issue(
            id,
            token.hash(),
            TokenPurpose::PasswordReset,
            user.id(),
            now,
            now,
        );
        let _ = t.consume(now - TimeDelta::microseconds(1));
        t
    }

    /// "Passwort zurücksetzen": sets a new password with a reset link. Every session of the user
    /// ends and every other reset link dies; a confirmation mail goes out. Does not log in.
    /// Returns whose password it was (the adapter marks the browser as one that knows it).
    ///
    /// # Errors
    /// Invalid, expired or used link; a password that breaks the policy; infrastructure failures.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &SecretString,
        confirmation: &SecretString,
    ) -> Result<crate::ids::UserId, ResetError> {
        let token = Token::parse(token).map_err(|_| ResetError::InvalidLink)?;
        let now = self.now();
        let (_, user) = self.load_reset(&token, now).await?;
        let personal = [
            user.email().local_part(),
            user.first_name().as_str(),
            user.last_name().as_str(),
        ];
        let password = self
            .config
            .password_policy
            .check(password, confirmation, &personal)?;
        let hash = self.deps.hasher.hash(&password).await?;
        self.transact(|| self.plan_reset(&token, &hash)).await?;
        // A reset is the way out of a throttled account: its failures are forgiven (the count
        // inside sessions and the day's count across addresses; an address's own block stays,
        // and the adapter marks the browser that reset as one that knows the account).
        let keys = [
            keys::account(user.email()),
            keys::login_account_day(
                &AccountKey::of(self.config.counter_key.as_ref(), user.email()),
                self.now().timestamp().div_euclid(86_400),
            ),
        ];
        for key in &keys {
            self.deps.committer.reset_counter(key).await?;
        }
        Ok(user.id())
    }

    /// Checks a reset link when it is opened, without using it up: the page says at once that
    /// an unknown, expired or used link is no good, before anyone types a new password.
    ///
    /// # Errors
    /// Invalid, expired or used link; infrastructure failures.
    pub async fn check_reset_link(&self, token: &str) -> Result<(), ResetError> {
        let token = Token::parse(token).map_err(|_| ResetError::InvalidLink)?;
        self.load_reset(&token, self.now()).await.map(|_| ())
    }

    async fn load_reset(
        &self,
        token: &Token,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(ActionToken, User), ResetError> {
        let q = &self.deps.queries;
        let reset = q
            .action_token(&token.hash(), TokenPurpose::PasswordReset)
            .await?
            .ok_or(ResetError::InvalidLink)?;
        reset.usable_at(now)?;
        let user = q
            .user(reset.user_id())
            .await?
            .filter(User::can_log_in)
            .ok_or(ResetError::InvalidLink)?;
        Ok((reset, user))
    }

    async fn plan_reset(
        &self,
        token: &Token,
        hash: &PasswordHash,
    ) -> Result<Planned<()>, ResetError> {
        let now = self.now();
        let (mut reset, mut user) = self.load_reset(token, now).await?;
        reset.consume(now)?;
        user.set_password(hash.clone(), now);
        let mut commit = Commit::new();
        // Every other outstanding link dies too; used rows stay (a second use answers "used", and
        // the hourly cap keeps counting them) until housekeeping removes them, 30 days after
        // their expiry.
        for mut other in self
            .deps
            .queries
            .action_tokens_of_user(user.id(), TokenPurpose::PasswordReset)
            .await?
        {
            if other.id() != reset.id() && other.consume(now).is_ok() {
                commit.write(Write::UpdateActionToken(other));
            }
        }
        commit
            .write(Write::UpdateActionToken(reset))
            .write(Write::DeleteSessionsOfUser {
                user: user.id(),
                except: None,
            })
            .audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::user(user.id()),
                Some(user.id()),
                AuditCategory::PasswordChanged,
                "via=reset_link",
            ))
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::PasswordChanged {
                    first_name: user.first_name().to_string(),
                },
            ))
            .write(Write::UpdateUser(user));
        Ok(Planned::new(commit, ()))
    }
}
