//! Login, logout and the per-request session check (manual 2.2, R11, R14).
//!
//! Login failures answer identically for an unknown address, a wrong password, a locked account
//! and an account that has not finished registration; an unknown address still costs one
//! Argon2id verification against a dummy hash.

use super::{Actor, Planned, Portal, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::authz;
use crate::customer::Customer;
use crate::error::InfraError;
use crate::ids::{SessionId, UserId};
use crate::mfa::MfaMethod;
use crate::password::normalize;
use crate::permission::PermissionKey;
use crate::ports::{Commit, LoginObservation, Write};
use crate::secret::{SecretString, Token};
use crate::session::SessionKind;
use crate::session::{ClientInfo, Session};
use crate::throttle::{AccountKey, ThrottlePolicy, keys};
use crate::user::User;
use crate::values::EmailAddress;
use chrono::{DateTime, Utc};

/// A freshly started session. The token is handed to the client once (cookie) and never stored.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The bearer token.
    pub token: Token,
    /// The session's id.
    pub session_id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
}

/// What a correct password leads to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// A full session.
    Authenticated(IssuedSession),
    /// The account has a second factor: finish with [`Portal::complete_mfa`] using this token.
    MfaRequired(PendingMfaLogin),
}

/// The state between a correct password and the second factor: its token can do nothing but
/// finish the login ([`Portal::complete_mfa`], [`Portal::send_login_phone_code`],
/// [`Portal::send_recovery_code`]) within a few minutes.
#[derive(Debug, Clone)]
pub struct PendingMfaLogin {
    /// The token of the pending login (not a session: it authenticates nothing).
    pub token: Token,
    /// Dead from then on.
    pub expires_at: DateTime<Utc>,
    /// The factors the user can finish with.
    pub methods: Vec<MfaMethod>,
}

/// "Anmelden".
#[derive(Debug, Clone)]
pub struct Login {
    /// E-mail as typed (not yet parsed: a malformed address fails like a wrong password).
    pub email: String,
    /// Passwort.
    pub password: SecretString,
    /// Where from.
    pub client: ClientInfo,
}

/// What a browser presents with a login besides the credentials. Everything is optional; the
/// adapters fill in what the request carried.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    /// The session token the request carried: a login whose password is right ends that session
    /// (whoever's it was) in the same commit, so one browser never holds two sessions.
    pub session: Option<String>,
    /// The remembered-device token of "Mich auf diesem Gerät für 30 Tage merken" (R18).
    pub remembered_device: Option<String>,
    /// The browser's known-browser cookie, if it carries a well-signed one (R14).
    pub known_browser: Option<std::sync::Arc<dyn KnownBrowser>>,
}

/// A browser's "device cookie" (OWASP, "Slow down online guessing attacks with device
/// cookies"): set by the adapter at every successful login, signed with its key, naming the
/// account without showing it. The adapter checks the signature; the core asks whether it names
/// the account typed and then exempts the browser from the per-address, pair and daily login
/// limits, holding it to a counter of its own (R14).
pub trait KnownBrowser: Send + Sync + std::fmt::Debug {
    /// Whether the cookie was issued to `user` (implementations compare in constant time).
    fn names(&self, user: UserId) -> bool;
    /// A non-secret handle of this cookie, unique per cookie: the key of its own counter.
    fn handle(&self) -> &str;
}

/// The tokens of [`Presented`], parsed (a malformed one counts as absent).
struct PresentedTokens {
    device: Option<Token>,
    session: Option<Token>,
}

/// What a login with the right password commits besides the user's own state.
struct LoginAttempt<'a> {
    /// The new hash when the stored one uses outdated parameters.
    rehash: Option<crate::password::PasswordHash>,
    client: &'a ClientInfo,
    token: &'a Token,
    presented: &'a PresentedTokens,
    /// Counters the success deletes (those of them that existed when the login began).
    forgiven: &'a [String],
}

/// Until when one of `keys` is throttled, given their counters (`counters[i]` is `keys[i]`'s).
fn blocked_until(
    keys: &[(String, ThrottlePolicy)],
    counters: &[Option<crate::ports::Counter>],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    keys.iter()
        .zip(counters)
        .filter_map(|((_, policy), c)| {
            c.as_ref()
                .and_then(|c| policy.blocked_until(c.count, c.last_at, now))
        })
        .max()
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown address, wrong password, locked or unfinished account: one answer for all.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Too many failures (R14): for this account from this client address, for this account
    /// today across addresses, from this client address, or — from a browser that signed in to
    /// the account before — in this browser. Try again later. Answered the same for known and
    /// unknown addresses, and without checking the password.
    #[error("too many failed attempts; try again later")]
    Throttled {
        /// When the next attempt is allowed.
        retry_at: DateTime<Utc>,
    },
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(LoginError);

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No, a malformed, an unknown, an expired or a revoked session; or its user is locked or
    /// deleted.
    #[error("not authenticated")]
    Unauthenticated,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(AuthError);

/// The authenticated party of one request: its session, and its user and customer as stored at
/// the start of the request.
#[derive(Debug, Clone)]
pub struct Principal {
    session: Session,
    user: User,
    customer: Option<Customer>,
    second_factor_missing: bool,
}

impl Principal {
    /// The actor to pass to use cases.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.user.id(),
            session: Some(self.session.id()),
        }
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The user.
    #[must_use]
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The user's customer.
    #[must_use]
    pub fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }

    /// R22: the user must set up a second factor before using the portal (an operator, or a
    /// customer's policy covers them, and they have none). Adapters let such a principal reach
    /// only the second-factor setup, re-authentication and logout.
    #[must_use]
    pub fn second_factor_missing(&self) -> bool {
        self.second_factor_missing
    }
}

impl Portal {
    pub(crate) fn start_session(
        &self,
        user: &User,
        client: ClientInfo,
        token: &Token,
        now: DateTime<Utc>,
    ) -> (Session, IssuedSession) {
        let session = Session::start(
            SessionId::from_uuid(self.new_uuid()),
            token.hash(),
            user.id(),
            client,
            &self.config.session_policy,
            now,
        );
        let issued = IssuedSession {
            token: token.clone(),
            session_id: session.id(),
            user_id: user.id(),
            expires_at: session.record().expires_at,
        };
        (session, issued)
    }

    /// Logs in with e-mail and password.
    ///
    /// # Errors
    /// [`LoginError::InvalidCredentials`] for every kind of failure, [`LoginError::Throttled`]
    /// while one of the login's counters is throttled (the account and client address pair, the
    /// account's daily count across addresses, the client address, or a known browser's own
    /// counter); infrastructure failures.
    pub async fn login(&self, cmd: Login) -> Result<LoginOutcome, LoginError> {
        self.login_presenting(cmd, Presented::default()).await
    }

    /// Logs in from a remembered device: with the device token from
    /// "Mich auf diesem Gerät für 30 Tage merken", an account with a second factor gets a full
    /// session after the password alone. The device token never replaces the password (R18).
    ///
    /// # Errors
    /// As [`Self::login`].
    pub async fn login_with_device(
        &self,
        cmd: Login,
        device_token: &str,
    ) -> Result<LoginOutcome, LoginError> {
        let presented = Presented {
            remembered_device: Some(device_token.to_owned()),
            ..Presented::default()
        };
        self.login_presenting(cmd, presented).await
    }

    /// Logs in with what the browser presents besides the credentials ([`Presented`]): the
    /// session it carried ends when the password is right, and a remembered device skips the
    /// second factor as in [`Self::login_with_device`].
    ///
    /// # Errors
    /// As [`Self::login`].
    pub async fn login_presenting(
        &self,
        cmd: Login,
        presented: Presented,
    ) -> Result<LoginOutcome, LoginError> {
        let result = self.login_inner(cmd, &presented).await;
        let observed = match &result {
            Ok(LoginOutcome::Authenticated(_)) => Some(LoginObservation::Success),
            Ok(LoginOutcome::MfaRequired(_)) => Some(LoginObservation::SecondFactorRequired),
            Err(LoginError::InvalidCredentials) => Some(LoginObservation::WrongPassword),
            Err(LoginError::Throttled { .. }) => Some(LoginObservation::Throttled),
            Err(LoginError::Conflict | LoginError::Infra(_)) => None,
        };
        if let Some(o) = observed {
            self.observer.login(o);
        }
        result
    }

    /// Until when one of the keys is throttled, if any (one read for all of them).
    pub(crate) async fn throttled_until(
        &self,
        keys: &[(String, ThrottlePolicy)],
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, crate::ports::StoreError> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let counters = self.deps.queries.counters(&names).await?;
        Ok(blocked_until(keys, &counters, now))
    }

    async fn login_inner(
        &self,
        cmd: Login,
        presented: &Presented,
    ) -> Result<LoginOutcome, LoginError> {
        let hasher = &self.deps.hasher;
        let now = self.now();
        let email = EmailAddress::parse(&cmd.email).ok();
        // The same queries for known and unknown addresses, in the same order (timing, R14).
        let user = match &email {
            Some(e) => self.deps.queries.user_by_email(e).await?,
            None => None,
        };
        let known_browser = match (&presented.known_browser, &user) {
            (Some(b), Some(u)) => b.names(u.id()).then_some(b),
            (Some(b), None) => {
                // As much work as for an account, and never a match.
                let _ = b.names(UserId::from_uuid(uuid::Uuid::nil()));
                None
            }
            (None, _) => None,
        };
        let throttle_keys = self.login_throttle_keys(
            email.as_ref(),
            cmd.client.ip.as_deref(),
            known_browser.map(|b| b.handle()),
            now,
        );
        // One read for the login's counters and the account's wrong-current-password counter
        // (which a success forgives): which of them exist decides what the success deletes.
        let mut names: Vec<String> = throttle_keys.iter().map(|(k, _)| k.clone()).collect();
        if let Some(e) = &email {
            names.push(keys::account(e));
        }
        let counters = self.deps.queries.counters(&names).await?;
        if let Some(retry_at) = blocked_until(&throttle_keys, &counters, now) {
            return Err(LoginError::Throttled { retry_at });
        }
        // A success forgives this address's (or this browser's) failures and the account's
        // wrong current passwords, not the account's daily count: guesses from elsewhere stay
        // bounded however often the user signs in. Only counters that exist are deleted, in the
        // login's own commit.
        let forgiven: Vec<String> = names
            .into_iter()
            .zip(&counters)
            .filter(|(key, c)| {
                c.is_some()
                    && (key.starts_with("login:pair:")
                        || key.starts_with("login:browser:")
                        || key.starts_with("login:account:"))
            })
            .map(|(key, _)| key)
            .collect();
        // An over-long password fails without hashing (no Argon2 work for megabyte inputs), the
        // same way for known and unknown addresses.
        let too_long = cmd.password.expose().len() > self.config.max_password_bytes;
        let candidate = normalize(if too_long { "" } else { cmd.password.expose() });
        let password_ok = match (too_long, user.as_ref().and_then(User::password_hash)) {
            (true, _) => false,
            (false, Some(hash)) => hasher.verify(&candidate, hash).await?,
            (false, None) => hasher.verify_dummy(&candidate).await?,
        };
        // A wrong password (or an unknown address) is counted, not audited: the audit entry was
        // a transaction more for existing accounts, which made their failures measurably slower
        // than an unknown address's (see docs/security.md, "Timing").
        let user = match user {
            Some(user) if password_ok => user,
            _ => {
                self.count_failure(&throttle_keys, now).await?;
                return Err(LoginError::InvalidCredentials);
            }
        };
        if !user.can_log_in() {
            self.count_failure(&throttle_keys, now).await?;
        }
        let rehash = if user.password_hash().is_some_and(|h| hasher.needs_rehash(h)) {
            let password = crate::password::Password::verified_for_rehash(candidate.clone());
            Some(hasher.hash(&password).await?)
        } else {
            None
        };
        let token = Token::generate(&*self.deps.random);
        let tokens = PresentedTokens {
            device: presented
                .remembered_device
                .as_deref()
                .and_then(|t| Token::parse(t).ok()),
            session: presented
                .session
                .as_deref()
                .and_then(|t| Token::parse(t).ok()),
        };
        let user_id = user.id();
        // The first attempt plans with the user as read above (every outcome that writes checks
        // its version in the commit); a retry after a conflict reads it again.
        let mut loaded = Some(user);
        let attempt = LoginAttempt {
            rehash,
            client: &cmd.client,
            token: &token,
            presented: &tokens,
            forgiven: &forgiven,
        };
        self.transact(|| self.plan_login(user_id, loaded.take(), &attempt))
            .await?
    }

    /// The counters a login from `ip` for the address typed is held to (R14): from a browser
    /// that signed in to the account before, only that browser's own counter; otherwise the
    /// account-and-address pair, the account's count of the UTC day, and the client address.
    fn login_throttle_keys(
        &self,
        email: Option<&EmailAddress>,
        ip: Option<&str>,
        known_browser: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<(String, ThrottlePolicy)> {
        let protection = &self.config.login_protection;
        if let Some(handle) = known_browser {
            return vec![(keys::login_known_browser(handle), protection.known_browser)];
        }
        let mut throttle_keys = Vec::new();
        if let Some(e) = email {
            let account = AccountKey::of(self.config.counter_key.as_ref(), e);
            if let Some(ip) = ip {
                throttle_keys.push((keys::login_pair(&account, ip), protection.pair));
            }
            let day = now.timestamp().div_euclid(86_400);
            throttle_keys.push((
                keys::login_account_day(&account, day),
                protection.account_daily,
            ));
        }
        if let Some(ip) = ip {
            throttle_keys.push((keys::address(ip), protection.address));
        }
        throttle_keys
    }

    /// Counts one failure on each of `keys` (each forgets after its policy's `reset_after`).
    pub(super) async fn count_failure(
        &self,
        keys: &[(String, ThrottlePolicy)],
        now: DateTime<Utc>,
    ) -> Result<(), crate::ports::StoreError> {
        for (key, policy) in keys {
            self.deps
                .committer
                .bump_counter(key, now, policy.reset_after)
                .await?;
        }
        Ok(())
    }

    async fn plan_login(
        &self,
        user_id: UserId,
        loaded: Option<User>,
        attempt: &LoginAttempt<'_>,
    ) -> Result<Planned<Result<LoginOutcome, LoginError>>, LoginError> {
        let (rehash, client, token, presented, forgiven) = (
            &attempt.rehash,
            attempt.client,
            attempt.token,
            attempt.presented,
            attempt.forgiven,
        );
        let now = self.now();
        let mut user = match loaded {
            Some(user) => user,
            None => self
                .deps
                .queries
                .user(user_id)
                .await?
                .ok_or(LoginError::InvalidCredentials)?,
        };
        let mut commit = Commit::new();
        if !user.can_log_in() {
            // The right password for a locked or unfinished account.
            let reason = if user.lock().is_some() {
                "reason=locked"
            } else {
                "reason=not_active"
            };
            commit.audit(self.audit_record(
                now,
                user.customer_id(),
                ActorRef::anonymous(),
                Some(user.id()),
                AuditCategory::LoginFailed,
                reason,
            ));
            return Ok(Planned::new(commit, Err(LoginError::InvalidCredentials)));
        }
        if let Some(hash) = rehash {
            user.set_password(hash.clone(), now);
            commit.write(Write::UpdateUser(user.clone()));
        }
        if !forgiven.is_empty() {
            commit.write(Write::DeleteCounters(forgiven.to_vec()));
        }
        // The session this browser had ends with its new login (also another user's, and also
        // when the second step is still to come): no browser holds two sessions.
        if let Some(carried) = &presented.session {
            self.end_full_session(&mut commit, carried, now, "reason=new_login")
                .await?;
        }
        let remembered = match (user.mfa().is_enabled(), &presented.device) {
            (true, Some(d)) => self
                .deps
                .queries
                .session_context(&d.hash(), now)
                .await?
                .is_some_and(|ctx| {
                    ctx.session.kind() == &SessionKind::RememberedDevice
                        && ctx.session.user_id() == user.id()
                }),
            _ => false,
        };
        if user.mfa().is_enabled() && !remembered {
            // Only a short-lived pending login: nothing is recorded yet but the rehash.
            let pending = Session::start_mfa_pending(
                SessionId::from_uuid(self.new_uuid()),
                token.hash(),
                user.id(),
                client.clone(),
                self.config.mfa_login_ttl,
                self.config.mfa_login_attempts,
                now,
            );
            let answer = PendingMfaLogin {
                token: token.clone(),
                expires_at: pending.record().expires_at,
                methods: user.mfa().methods(),
            };
            if !commit
                .writes
                .iter()
                .any(|w| matches!(w, Write::UpdateUser(_)))
            {
                // The user as read before the password check must still be current (a lock in
                // the meantime fails the commit, and the retry reads it again).
                commit.write(Write::ExpectUser {
                    id: user.id(),
                    version: user.version(),
                });
            }
            commit.write(Write::InsertSession(pending));
            return Ok(Planned::new(commit, Ok(LoginOutcome::MfaRequired(answer))));
        }
        let (mut session, issued) = self.start_session(&user, client.clone(), token, now);
        if remembered {
            session.set_methods(vec!["pwd".to_owned(), "device".to_owned()]);
        }
        commit.audit(self.audit_record(
            now,
            user.customer_id(),
            ActorRef::user(user.id()),
            Some(user.id()),
            AuditCategory::LoginSucceeded,
            if remembered {
                "method=password+remembered_device"
            } else {
                "method=password"
            },
        ));
        // The sign-in is recorded without a new version of the user (concurrent sign-ins of one
        // account do not conflict); it still checks the version the plan was made with, after
        // the rehash's update when there is one.
        let version = if rehash.is_some() {
            user.version() + 1
        } else {
            user.version()
        };
        commit
            .write(Write::RecordLogin {
                id: user.id(),
                version,
                at: now,
            })
            .write(Write::InsertSession(session));
        Ok(Planned::new(
            commit,
            Ok(LoginOutcome::Authenticated(issued)),
        ))
    }

    /// Checks a session token (every request): the session must exist, be within its idle and
    /// absolute lifetime, and belong to a user who may still log in. A lock or deletion therefore
    /// ends access at the very next request (R11), and role or permission changes apply at once
    /// (R6). Activity is recorded at most once per touch interval.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`]; infrastructure failures.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let token = Token::parse(token).map_err(|_| AuthError::Unauthenticated)?;
        let now = self.now();
        let ctx = self
            .deps
            .queries
            .session_context(&token.hash(), now)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let mut session = ctx.session;
        // Only a full session authenticates: a pending second step or a remembered device does
        // not (R16, R18).
        if !session.is_full() || !session.is_alive_at(now) || !ctx.user.can_log_in() {
            return Err(AuthError::Unauthenticated);
        }
        let policy = &self.config.session_policy;
        if session.needs_touch(policy, now) {
            session.touch(policy, now);
            let r = session.record();
            self.deps
                .committer
                .touch_session(r.id, r.last_seen_at, r.idle_expires_at)
                .await?;
        }
        let second_factor_missing = authz::second_factor_missing(
            &ctx.user,
            ctx.customer.as_ref(),
            self.config.operators_need_second_factor,
        );
        Ok(Principal {
            session,
            user: ctx.user,
            customer: ctx.customer,
            second_factor_missing,
        })
    }

    /// Logs out: the session ends on the server. Unknown or expired tokens are fine (nothing to
    /// end).
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let Ok(token) = Token::parse(token) else {
            return Ok(());
        };
        self.transact(|| self.plan_logout(&token)).await
    }

    async fn plan_logout(&self, token: &Token) -> Result<Planned<()>, AuthError> {
        let now = self.now();
        let mut commit = Commit::new();
        self.end_full_session(&mut commit, token, now, "").await?;
        Ok(Planned::new(commit, ()))
    }

    /// Adds to `commit` the end of the full session `token` names, audited as a logout with
    /// `details`. Unknown or expired tokens and sessions that are not full are left alone.
    pub(crate) async fn end_full_session(
        &self,
        commit: &mut Commit,
        token: &Token,
        now: DateTime<Utc>,
        details: &str,
    ) -> Result<(), crate::ports::StoreError> {
        if let Some(ctx) = self
            .deps
            .queries
            .session_context(&token.hash(), now)
            .await?
            .filter(|ctx| ctx.session.is_full())
        {
            commit
                .write(Write::DeleteSession(ctx.session.id()))
                .audit(self.audit_record(
                    now,
                    ctx.user.customer_id(),
                    ActorRef::user(ctx.user.id()),
                    Some(ctx.user.id()),
                    AuditCategory::LoggedOut,
                    details,
                ));
        }
        Ok(())
    }

    /// R1: whether the principal may enter a protected area. Unknown areas are denied, and so is
    /// everything while a required second factor is missing (R22).
    #[must_use]
    pub fn may_access_area(&self, principal: &Principal, area: &PermissionKey) -> bool {
        self.catalog.contains(area)
            && !principal.second_factor_missing()
            && authz::may_access_area(&principal.user, principal.customer.as_ref(), area)
    }
}
