//! Setting up an authenticator app (R16): the enrolment with its QR code and the first code
//! that confirms it; the commit every new factor shares (recovery code, remembered devices end).

use super::{FactorEnabled, MfaError, new_recovery_code};
use crate::audit::AuditCategory;
use crate::challenge::CodeError;
use crate::error::InfraError;
use crate::mail::MailIntent;
use crate::mfa::{PendingTotp, TotpFactor};
use crate::ports::{Commit, Write};
use crate::secret::SecretString;
use crate::service::auth::Principal;
use crate::service::{Planned, Portal};
use crate::totp::{self, TotpEnrolment, TotpRejected, TotpSecret};
use crate::user::User;
use chrono::{DateTime, Utc};

impl Portal {
    /// "Einrichten Multi-Faktor-Authentifizierung" with an authenticator app: a new secret, its
    /// `otpauth://` URI and QR code. Confirm with [`Self::confirm_totp`]. A setup in progress
    /// (not confirmed, not expired) keeps its secret: starting again shows the same one, so an
    /// app that scanned it still matches (nothing is written then).
    ///
    /// # Errors
    /// Step-up needed, an app set up already, no MFA key; infrastructure failures.
    pub async fn start_totp_enrolment(
        &self,
        principal: &Principal,
    ) -> Result<TotpEnrolment, MfaError> {
        if let Some(pending) = self.pending_totp_enrolment(principal).await? {
            return Ok(pending);
        }
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
                .audit(self.own_audit_record(
                    now,
                    &user,
                    AuditCategory::AccountChanged,
                    "mfa=totp_setup_started",
                ))
                .write(Write::UpdateUser(user));
            Ok::<_, MfaError>(Planned::new(commit, ()))
        })
        .await?;
        Self::enrolment(&secret, &self.config.totp_issuer, &account)
    }

    /// The authenticator app's setup in progress, if any: the same secret, URI and QR code as
    /// when it was started (for its page after a wrong code or a reload).
    ///
    /// # Errors
    /// Step-up needed, an app set up already, no MFA key; infrastructure failures.
    pub async fn pending_totp_enrolment(
        &self,
        principal: &Principal,
    ) -> Result<Option<TotpEnrolment>, MfaError> {
        self.require_step_up(principal)?;
        let user = self.current_user(principal).await?;
        if user.mfa().totp.is_some() {
            return Err(MfaError::AlreadyEnabled);
        }
        let now = self.now();
        let Some(pending) = user
            .mfa()
            .pending_totp
            .clone()
            .filter(|p| now - p.started_at < self.config.totp_enrolment_ttl)
        else {
            return Ok(None);
        };
        let secret = self.open_totp(user.id(), &pending.sealed_secret)?;
        Self::enrolment(&secret, &self.config.totp_issuer, user.email().as_ref()).map(Some)
    }

    fn enrolment(
        secret: &TotpSecret,
        issuer: &str,
        account: &str,
    ) -> Result<TotpEnrolment, MfaError> {
        TotpEnrolment::new(secret, issuer, account).map_err(|e| {
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

    pub(super) fn factor_enabled_commit(
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
            .audit(self.own_audit_record(
                now,
                user,
                AuditCategory::MfaEnabled,
                format!("method={method}"),
            ));
        commit
    }
}
