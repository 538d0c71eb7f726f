//! Passkeys (issue 16): registering one (a signed-in user, step-up), signing in with one alone
//! (discoverable credentials; user verification required, so it counts as two factors), using one
//! as the second factor after the password (see `check_factor`), listing, renaming and removing
//! (step-up; never the last second factor while a policy requires one).
//!
//! Every ceremony's challenge is kept server-side ([`PasskeyChallenge`]): answered at most once
//! (the answer's commit marks it used, atomically) and only within
//! [`CHALLENGE_TTL`](crate::passkey::CHALLENGE_TTL). A refused answer changes nothing but the
//! throttle counters.

use super::{FactorEnabled, MfaError, new_recovery_code};
use crate::audit::{ActorRef, AuditCategory};
use crate::ids::UserId;
use crate::mail::MailIntent;
use crate::passkey::{
    CHALLENGE_TTL, ChallengePurpose, MAX_PASSKEYS, Passkey, PasskeyChallenge, PasskeyName,
};
use crate::ports::{Commit, PasskeyRejected, PasskeyVerifier, Write};
use crate::secret::Token;
use crate::service::auth::{IssuedSession, Principal};
use crate::service::{Planned, Portal};
use crate::session::ClientInfo;
use crate::throttle::{ThrottlePolicy, keys};
use crate::user::User;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A ceremony started: the browser answers `options` (with `navigator.credentials.create` or
/// `.get`) and sends the answer back with `challenge_id`.
#[derive(Debug, Clone)]
pub struct PasskeyCeremony {
    /// The server-side challenge's id.
    pub challenge_id: Uuid,
    /// The `publicKey` options (JSON).
    pub options: serde_json::Value,
    /// The answer is refused from then on.
    pub expires_at: DateTime<Utc>,
}

/// Finishing a sign-in with a passkey alone.
#[derive(Debug, Clone)]
pub struct PasskeySignIn {
    /// From [`Portal::begin_passkey_sign_in`].
    pub challenge_id: Uuid,
    /// The browser's `PublicKeyCredential` (JSON).
    pub response: serde_json::Value,
    /// Where from.
    pub client: ClientInfo,
    /// The session token the browser carried (it ends with the new sign-in).
    pub presented_session: Option<String>,
}

fn rejected(e: PasskeyRejected) -> MfaError {
    MfaError::Passkey(e)
}

impl Portal {
    /// Uses `verifier` for passkeys (without one, passkeys answer `Unavailable`).
    #[must_use]
    pub fn with_passkey_verifier(mut self, verifier: std::sync::Arc<dyn PasskeyVerifier>) -> Self {
        self.passkeys = Some(verifier);
        self
    }

    /// Whether passkeys are offered (a verifier was given).
    #[must_use]
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.is_some()
    }

    fn verifier(&self) -> Result<&dyn PasskeyVerifier, MfaError> {
        self.passkeys.as_deref().ok_or(MfaError::Unavailable)
    }

    async fn insert_challenge(
        &self,
        user: Option<UserId>,
        purpose: ChallengePurpose,
        options: serde_json::Value,
        state: String,
    ) -> Result<PasskeyCeremony, MfaError> {
        let now = self.now();
        let challenge = PasskeyChallenge {
            id: self.new_uuid(),
            user,
            purpose,
            state,
            created_at: now,
            expires_at: now + CHALLENGE_TTL,
            used_at: None,
        };
        let answer = PasskeyCeremony {
            challenge_id: challenge.id,
            options,
            expires_at: challenge.expires_at,
        };
        let mut commit = Commit::new();
        commit.write(Write::InsertPasskeyChallenge(challenge));
        self.deps.committer.commit(commit).await?;
        Ok(answer)
    }

    /// A challenge that can be answered now for `purpose` by `user`.
    async fn usable_challenge(
        &self,
        id: Uuid,
        purpose: ChallengePurpose,
        user: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<PasskeyChallenge, MfaError> {
        self.deps
            .queries
            .passkey_challenge(id)
            .await?
            .filter(|c| c.usable(purpose, user, now))
            .ok_or(MfaError::PasskeyChallenge)
    }

    /// Starts registering a passkey ("Passkey hinzufügen"). Needs step-up.
    ///
    /// # Errors
    /// Step-up needed, passkeys unavailable, too many passkeys; infrastructure failures.
    pub async fn begin_passkey_registration(
        &self,
        principal: &Principal,
    ) -> Result<PasskeyCeremony, MfaError> {
        self.require_step_up(principal)?;
        let verifier = self.verifier()?;
        let user = self.current_user(principal).await?;
        if user.mfa().passkeys.len() >= MAX_PASSKEYS {
            return Err(MfaError::PasskeyLimit);
        }
        let exclude: Vec<String> = user
            .mfa()
            .passkeys
            .iter()
            .map(|p| p.credential_id.clone())
            .collect();
        let ceremony = verifier
            .start_registration(
                user.id().as_uuid(),
                user.email().as_ref(),
                &user.display_name(),
                &exclude,
            )
            .map_err(rejected)?;
        self.insert_challenge(
            Some(user.id()),
            ChallengePurpose::Register,
            ceremony.options,
            ceremony.state,
        )
        .await
    }

    /// Finishes registering a passkey under `name`: from now on it signs the user in alone and
    /// serves as the second factor after the password. Other sessions and remembered devices end;
    /// a recovery code is issued if the user has none (shown once); audited and mailed.
    ///
    /// # Errors
    /// Step-up needed, challenge unknown/used/expired or another user's, the answer refused
    /// (origin, relying party, challenge, user verification), the credential registered already,
    /// too many passkeys; infrastructure failures.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        challenge_id: Uuid,
        name: &str,
        response: &serde_json::Value,
    ) -> Result<FactorEnabled, MfaError> {
        self.require_step_up(principal)?;
        let verifier = self.verifier()?;
        let name = PasskeyName::parse(name).map_err(MfaError::from)?;
        let recovery = new_recovery_code(&*self.deps.random);
        let recovery_hash = self.hash_recovery_code(&recovery).await?;
        let passkey_id = self.new_uuid();
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            let challenge = self
                .usable_challenge(
                    challenge_id,
                    ChallengePurpose::Register,
                    Some(user.id()),
                    now,
                )
                .await?;
            let cred = verifier
                .finish_registration(&challenge.state, response)
                .map_err(rejected)?;
            if user
                .mfa()
                .passkeys
                .iter()
                .any(|p| p.credential_id == cred.credential_id)
            {
                return Err(MfaError::Passkey(PasskeyRejected::AlreadyRegistered));
            }
            if user.mfa().passkeys.len() >= MAX_PASSKEYS {
                return Err(MfaError::PasskeyLimit);
            }
            let issue_recovery = user.mfa().recovery_code.is_none();
            user.change_mfa(
                |m| {
                    m.passkeys.push(Passkey {
                        id: passkey_id,
                        name: name.clone(),
                        credential_id: cred.credential_id.clone(),
                        credential: cred.credential.clone(),
                        counter: cred.counter,
                        backup_eligible: cred.backup_eligible,
                        backup_state: cred.backup_state,
                        created_at: now,
                        last_used_at: None,
                    });
                    if issue_recovery {
                        m.recovery_code = Some(recovery_hash.clone());
                    }
                },
                now,
            );
            let mut commit = self.factor_enabled_commit(principal, &user, "passkey", now);
            commit
                .write(Write::UsePasskeyChallenge {
                    id: challenge.id,
                    at: now,
                })
                .write(Write::UpdateUser(user));
            Ok(Planned::new(
                commit,
                FactorEnabled {
                    recovery_code: issue_recovery.then(|| recovery.clone()),
                },
            ))
        })
        .await
    }

    /// Starts a sign-in with a passkey alone ("Mit Passkey anmelden"; conditional UI where the
    /// browser offers it). Nothing about any account is looked at.
    ///
    /// # Errors
    /// Passkeys unavailable; infrastructure failures.
    pub async fn begin_passkey_sign_in(&self) -> Result<PasskeyCeremony, MfaError> {
        let ceremony = self.verifier()?.start_discoverable().map_err(rejected)?;
        self.insert_challenge(
            None,
            ChallengePurpose::SignIn,
            ceremony.options,
            ceremony.state,
        )
        .await
    }

    /// Starts the passkey as the second factor of a pending login (the token of
    /// [`super::super::LoginOutcome::MfaRequired`]); finish with
    /// [`Portal::complete_mfa`] and [`super::SecondFactor::Passkey`].
    ///
    /// # Errors
    /// No pending login, no passkey, passkeys unavailable; infrastructure failures.
    pub async fn begin_passkey_second_factor(
        &self,
        pending_token: &str,
    ) -> Result<PasskeyCeremony, MfaError> {
        let verifier = self.verifier()?;
        let token = Token::parse(pending_token).map_err(|_| MfaError::NoPendingLogin)?;
        let (_, user) = self.pending_login(&token, self.now()).await?;
        self.passkey_authentication(verifier, &user).await
    }

    /// Starts a passkey as the presence proof of a signed-in user (removing factors, a new
    /// recovery code); finish with [`super::SecondFactor::Passkey`].
    ///
    /// # Errors
    /// No passkey, passkeys unavailable; infrastructure failures.
    pub async fn begin_passkey_presence(
        &self,
        principal: &Principal,
    ) -> Result<PasskeyCeremony, MfaError> {
        let verifier = self.verifier()?;
        let user = self.current_user(principal).await?;
        self.passkey_authentication(verifier, &user).await
    }

    async fn passkey_authentication(
        &self,
        verifier: &dyn PasskeyVerifier,
        user: &User,
    ) -> Result<PasskeyCeremony, MfaError> {
        let creds: Vec<String> = user
            .mfa()
            .passkeys
            .iter()
            .map(|p| p.credential.clone())
            .collect();
        if creds.is_empty() {
            return Err(MfaError::NoSuchFactor);
        }
        let ceremony = verifier.start_authentication(&creds).map_err(rejected)?;
        self.insert_challenge(
            Some(user.id()),
            ChallengePurpose::SecondFactor,
            ceremony.options,
            ceremony.state,
        )
        .await
    }

    /// Checks a passkey answer of `user`'s second-factor ceremony and, on success, records the
    /// use on the passkey (counter, backup state, last used). The caller commits the user and
    /// marks the challenge used ([`Write::UsePasskeyChallenge`]). Returns the `amr` value.
    pub(super) async fn check_passkey(
        &self,
        user: &mut User,
        challenge_id: Uuid,
        response: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<&'static str, MfaError> {
        self.verify_passkey(user, challenge_id, response, now, false)
            .await
            .map(|(amr, _)| amr)
    }

    /// [`Self::check_passkey`], also naming the passkey used; when `alone` (the passkey stands
    /// for password and second factor) an answer without user verification is refused.
    async fn verify_passkey(
        &self,
        user: &mut User,
        challenge_id: Uuid,
        response: &serde_json::Value,
        now: DateTime<Utc>,
        alone: bool,
    ) -> Result<(&'static str, Uuid), MfaError> {
        let verifier = self.verifier()?;
        if user.mfa().passkeys.is_empty() {
            return Err(MfaError::NoSuchFactor);
        }
        let challenge = self
            .usable_challenge(
                challenge_id,
                ChallengePurpose::SecondFactor,
                Some(user.id()),
                now,
            )
            .await?;
        let (_, credential_id) = verifier.identify(response).map_err(rejected)?;
        let passkey = user
            .mfa()
            .passkeys
            .iter()
            .find(|p| p.credential_id == credential_id)
            .cloned()
            .ok_or(MfaError::Passkey(PasskeyRejected::UnknownCredential))?;
        let verified = verifier
            .finish_authentication(&challenge.state, response, &passkey.credential)
            .map_err(rejected)?;
        if alone && !verified.user_verified {
            return Err(MfaError::Passkey(PasskeyRejected::UserNotVerified));
        }
        Ok((
            Self::record_passkey_use(user, &passkey, &verified, now),
            passkey.id,
        ))
    }

    fn record_passkey_use(
        user: &mut User,
        passkey: &Passkey,
        verified: &crate::ports::VerifiedAssertion,
        now: DateTime<Utc>,
    ) -> &'static str {
        let mut after = None;
        user.change_mfa(
            |m| {
                if let Some(p) = m.passkeys.iter_mut().find(|p| p.id == passkey.id) {
                    p.credential.clone_from(&verified.credential);
                    p.counter = verified.counter;
                    p.backup_eligible = verified.backup_eligible;
                    p.backup_state = verified.backup_state;
                    p.last_used_at = Some(now);
                    after = Some(p.amr());
                }
            },
            now,
        );
        after.unwrap_or_else(|| passkey.amr())
    }

    fn passkey_sign_in_keys(
        &self,
        credential_id: &str,
        client: &ClientInfo,
    ) -> Vec<(String, ThrottlePolicy)> {
        let p = &self.config.login_protection;
        let mut k = vec![(keys::passkey(credential_id), p.second_factor)];
        if let Some(ip) = &client.ip {
            k.push((keys::address(ip), p.address));
        }
        k
    }

    /// Signs in with a passkey alone (user verification required: it counts as two factors, the
    /// session's `amr` is `hwk`/`swk` and `user`). The session the browser carried ends.
    /// Throttled per credential and client address; refusals change nothing but those counters
    /// and never tell whether an account exists.
    ///
    /// # Errors
    /// Passkeys unavailable, challenge unknown/used/expired, the answer refused (unknown
    /// credential, origin, relying party, challenge, signature, user verification, sign counter),
    /// throttled; infrastructure failures.
    pub async fn finish_passkey_sign_in(
        &self,
        cmd: PasskeySignIn,
    ) -> Result<IssuedSession, MfaError> {
        let result = self.finish_passkey_sign_in_inner(cmd).await;
        let observed = match &result {
            Ok(_) => Some(crate::ports::LoginObservation::Success),
            Err(MfaError::Conflict | MfaError::Infra(_)) => None,
            Err(MfaError::Throttled { .. }) => Some(crate::ports::LoginObservation::Throttled),
            Err(_) => Some(crate::ports::LoginObservation::WrongPassword),
        };
        if let Some(o) = observed {
            self.observer.login(o);
        }
        result
    }

    async fn finish_passkey_sign_in_inner(
        &self,
        cmd: PasskeySignIn,
    ) -> Result<IssuedSession, MfaError> {
        let verifier = self.verifier()?;
        let now = self.now();
        let (handle, credential_id) = verifier.identify(&cmd.response).map_err(rejected)?;
        let throttle = self.passkey_sign_in_keys(&credential_id, &cmd.client);
        if let Some(retry_at) = self.throttled_until(&throttle, now).await? {
            return Err(MfaError::Throttled { retry_at });
        }
        let session_token = Token::generate(&*self.deps.random);
        let presented = cmd
            .presented_session
            .as_deref()
            .and_then(|t| Token::parse(t).ok());
        let result = self
            .transact(|| async {
                let now = self.now();
                let challenge = self
                    .usable_challenge(cmd.challenge_id, ChallengePurpose::SignIn, None, now)
                    .await?;
                let unknown = || MfaError::Passkey(PasskeyRejected::UnknownCredential);
                let mut user = self
                    .deps
                    .queries
                    .user(UserId::from_uuid(handle.ok_or_else(unknown)?))
                    .await?
                    .filter(User::can_log_in)
                    .ok_or_else(unknown)?;
                let passkey = user
                    .mfa()
                    .passkeys
                    .iter()
                    .find(|p| p.credential_id == credential_id)
                    .cloned()
                    .ok_or_else(unknown)?;
                let verified = verifier
                    .finish_authentication(&challenge.state, &cmd.response, &passkey.credential)
                    .map_err(rejected)?;
                if !verified.user_verified {
                    return Err(MfaError::Passkey(PasskeyRejected::UserNotVerified));
                }
                let amr = Self::record_passkey_use(&mut user, &passkey, &verified, now);
                let mut commit = Commit::new();
                if let Some(carried) = &presented {
                    self.end_full_session(&mut commit, carried, now, "reason=new_login")
                        .await?;
                }
                user.record_login(now);
                let (mut session, issued) =
                    self.start_session(&user, cmd.client.clone(), &session_token, now);
                session.set_methods(vec![amr.to_owned(), "user".to_owned()]);
                commit
                    .write(Write::UsePasskeyChallenge {
                        id: challenge.id,
                        at: now,
                    })
                    .audit(self.audit_record(
                        now,
                        user.customer_id(),
                        ActorRef::user(user.id()),
                        Some(user.id()),
                        AuditCategory::LoginSucceeded,
                        format!("method=passkey; passkey={}", passkey.id),
                    ))
                    .write(Write::UpdateUser(user))
                    .write(Write::InsertSession(session));
                Ok(Planned::new(commit, issued))
            })
            .await;
        match &result {
            Ok(_) => {
                for (key, _) in &throttle {
                    self.deps.committer.reset_counter(key).await?;
                }
            }
            Err(e) if super::is_failed_try(e) => {
                self.count_failure(&throttle, now).await?;
            }
            Err(_) => {}
        }
        result
    }

    /// Step-up with a passkey alone ("Mit Passkey bestätigen" on "Passwort bestätigen"): the
    /// answer to a ceremony of [`Portal::begin_passkey_presence`], with user verification (so it
    /// counts as password and second factor, as when signing in with a passkey alone; a user who
    /// signs in with passkeys only needs no password here). The session token is rotated as by
    /// [`Portal::reauthenticate`], its `amr` becomes the passkey's; audited. Throttled and counted
    /// like every second factor; a refused answer changes nothing else.
    ///
    /// # Errors
    /// Passkeys unavailable, no passkey, challenge unknown/used/expired or another user's, the
    /// answer refused (unknown credential, origin, relying party, signature, user verification,
    /// sign counter), throttled; infrastructure failures.
    pub async fn reauthenticate_with_passkey(
        &self,
        principal: &Principal,
        challenge_id: Uuid,
        response: &serde_json::Value,
        client: ClientInfo,
    ) -> Result<IssuedSession, MfaError> {
        let now = self.now();
        let user_id = self.current_user(principal).await?.id();
        self.second_factor_throttle(user_id, now).await?;
        let token = Token::generate(&*self.deps.random);
        let result = self
            .transact(|| async {
                let now = self.now();
                let mut user = self.current_user(principal).await?;
                let (amr, passkey) = self
                    .verify_passkey(&mut user, challenge_id, response, now, true)
                    .await?;
                let (mut session, issued) = self.start_session(&user, client.clone(), &token, now);
                session.set_methods(vec![amr.to_owned(), "user".to_owned()]);
                let mut commit = Commit::new();
                commit
                    .write(Write::UsePasskeyChallenge {
                        id: challenge_id,
                        at: now,
                    })
                    .write(Write::DeleteSession(principal.session().id()))
                    .write(Write::InsertSession(session))
                    .audit(self.audit_record(
                        now,
                        user.customer_id(),
                        ActorRef::user(user.id()),
                        Some(user.id()),
                        AuditCategory::LoginSucceeded,
                        format!("method=reauthentication; passkey={passkey}"),
                    ))
                    .write(Write::UpdateUser(user));
                Ok(Planned::new(commit, issued))
            })
            .await;
        if let Err(e) = &result
            && super::is_failed_try(e)
        {
            self.count_second_factor_failure(user_id, now).await?;
        }
        result
    }

    /// Renames one of the principal's passkeys. Audited.
    ///
    /// # Errors
    /// No such passkey, invalid name; infrastructure failures.
    pub async fn rename_passkey(
        &self,
        principal: &Principal,
        passkey: Uuid,
        name: &str,
    ) -> Result<(), MfaError> {
        let name = PasskeyName::parse(name).map_err(MfaError::from)?;
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            if !user.mfa().passkeys.iter().any(|p| p.id == passkey) {
                return Err(MfaError::NoSuchFactor);
            }
            user.change_mfa(
                |m| {
                    if let Some(p) = m.passkeys.iter_mut().find(|p| p.id == passkey) {
                        p.name = name.clone();
                    }
                },
                now,
            );
            let mut commit = Commit::new();
            commit
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    format!("passkey_renamed={passkey}"),
                ))
                .write(Write::UpdateUser(user));
            Ok(Planned::new(commit, ()))
        })
        .await
    }

    /// Removes one of the principal's passkeys. Needs step-up; refused when it is the last
    /// second factor and the user must have one (R22: customer policy, operators). Other
    /// sessions and remembered devices end, as when factors are removed; audited and mailed.
    ///
    /// # Errors
    /// Step-up needed, no such passkey, the last required factor; infrastructure failures.
    pub async fn remove_passkey(
        &self,
        principal: &Principal,
        passkey: Uuid,
    ) -> Result<(), MfaError> {
        self.require_step_up(principal)?;
        self.transact(|| async {
            let now = self.now();
            let mut user = self.current_user(principal).await?;
            let removed = user
                .mfa()
                .passkeys
                .iter()
                .find(|p| p.id == passkey)
                .cloned()
                .ok_or(MfaError::NoSuchFactor)?;
            user.change_mfa(|m| m.passkeys.retain(|p| p.id != passkey), now);
            if !user.mfa().is_enabled()
                && crate::authz::second_factor_required(
                    &user,
                    principal.customer(),
                    self.config.operators_need_second_factor,
                )
            {
                return Err(MfaError::LastFactor);
            }
            let mut commit = Commit::new();
            commit
                .write(Write::DeleteSessionsOfUser {
                    user: user.id(),
                    except: Some(principal.session().id()),
                })
                .mail(self.mail_to(
                    now,
                    &user,
                    MailIntent::PasskeyRemoved {
                        first_name: user.first_name().to_string(),
                        name: removed.name.to_string(),
                    },
                ))
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::PasskeyRemoved,
                    format!("passkey={}", removed.id),
                ))
                .write(Write::UpdateUser(user));
            Ok(Planned::new(commit, ()))
        })
        .await
    }
}
