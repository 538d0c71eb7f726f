//! The sealing keys of an installation: checking at start that the configured server secret is
//! the one the database's sealed values need, and re-sealing everything under a new one
//! (`portal secret rotate`).
//!
//! The database records the id ([`MfaKey::id`](crate::secretbox::MfaKey::id), a keyed hash, never
//! the key) of every key whose sealed values it may hold. A start with keys that do not cover
//! them is refused ([`SealingKeyError::UnknownKeys`]) instead of failing later at the first
//! authenticator code. [`Portal::reseal_secrets`] re-seals every value under the current key and
//! then forgets the other ids: from then on only the current key is needed.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::error::InfraError;
use crate::ids::UserId;
use crate::ports::{Commit, StoreError, Write};
use crate::secretbox::{MfaKeyring, SealError};

/// Users loaded per page while re-sealing.
const RESEAL_PAGE: u32 = 100;

/// Why the configured keys do not fit the database, or a re-seal failed.
#[derive(Debug, thiserror::Error)]
pub enum SealingKeyError {
    /// The database holds values sealed under keys that are not configured. The ids are keyed
    /// hashes, safe to print.
    #[error(
        "the database holds secrets sealed with another server secret (key id {}): start with \
         that secret, or configure it as an old secret next to the new one (PORTAL_OLD_SECRET_KEYS) \
         and run `portal secret rotate`",
        .ids.join(", ")
    )]
    UnknownKeys {
        /// The ids recorded in the database that no configured key has.
        ids: Vec<String>,
    },
    /// No server key is configured (nothing can be sealed or opened).
    #[error("no server key is configured")]
    NoKey,
    /// Only operators and the system re-seal.
    #[error("forbidden")]
    Forbidden,
    /// A stored value opens with none of the configured keys: what it is (no secret).
    #[error("{0} cannot be opened with any configured server secret")]
    Unopenable(String),
    /// A stored value is still sealed under a key other than the current one, so no key id may
    /// be forgotten yet (nothing was): what it is (no secret). A process still running with
    /// the old secret sealed it after the re-seal pass.
    #[error(
        "{0} is still sealed with an old server secret: start every process with the new secret \
         (the old one in PORTAL_OLD_SECRET_KEYS), then run `portal secret rotate` again"
    )]
    StillSealedWithOldKey(String),
    /// A concurrent change kept winning.
    #[error("conflict")]
    Conflict,
    /// Infrastructure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(SealingKeyError);

/// What [`Portal::reseal_secrets`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Users whose authenticator secrets were re-sealed.
    pub users: u64,
    /// Signing keys re-sealed.
    pub signing_keys: u64,
    /// Webhook endpoints whose secrets were re-sealed.
    pub webhooks: u64,
    /// Key ids forgotten (no value needs them any more).
    pub retired: Vec<String>,
    /// The id of the key everything is sealed under now.
    pub current: String,
}

impl Portal {
    /// The configured sealing keys: the current one and the previous ones.
    pub(crate) fn mfa_keyring(&self) -> Option<MfaKeyring> {
        self.config
            .mfa_key
            .clone()
            .map(|k| MfaKeyring::new(k, self.config.mfa_previous_keys.clone()))
    }

    /// Checks that the configured keys open what the database holds, and records the current
    /// key's id (audited) when it is new. Run at start (the server does, and so does
    /// `portal restore`); without a configured key it does nothing.
    ///
    /// A database that has recorded no id yet (new, or from before ids were recorded) is checked
    /// by opening one stored value, if there is one.
    ///
    /// # Errors
    /// [`SealingKeyError::UnknownKeys`] when a recorded id has no configured key (nothing is
    /// written then); [`SealingKeyError::Unopenable`] when a database without ids holds a value
    /// no configured key opens; infrastructure.
    pub async fn check_sealing_keys(&self) -> Result<(), SealingKeyError> {
        let Some(ring) = self.mfa_keyring() else {
            return Ok(());
        };
        let stored = self.deps.queries.sealing_keys().await?;
        let unknown: Vec<String> = stored
            .iter()
            .filter(|id| *id != ring.current_id() && !ring.previous_ids().any(|p| p == *id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(SealingKeyError::UnknownKeys { ids: unknown });
        }
        if stored.is_empty() {
            self.check_one_sealed_value(&ring).await?;
        }
        if stored.iter().any(|id| id == ring.current_id()) {
            return Ok(());
        }
        let current = ring.current_id().to_owned();
        let result = self
            .transact(|| async {
                let now = self.now();
                let mut commit = Commit::new();
                commit
                    .write(Write::InsertSealingKey {
                        id: current.clone(),
                        at: now,
                    })
                    .audit(self.audit_record(
                        now,
                        None,
                        ActorRef::system(),
                        None,
                        AuditCategory::ServerSecretChanged,
                        format!("change=added key_id={current}"),
                    ));
                Ok::<_, SealingKeyError>(Planned::new(commit, ()))
            })
            .await;
        match result {
            // Another process recorded it at the same moment.
            Err(SealingKeyError::Infra(InfraError::Store(StoreError::Duplicate(_)))) => Ok(()),
            other => other,
        }
    }

    /// Opens the first stored sealed value (an authenticator seed, else a signing key) with the
    /// ring, if there is one.
    async fn check_one_sealed_value(&self, ring: &MfaKeyring) -> Result<(), SealingKeyError> {
        if let Some(user) = self
            .deps
            .queries
            .users_with_sealed_secrets(None, 1)
            .await?
            .first()
        {
            let aad = Self::totp_aad(user.id());
            for sealed in sealed_totp(user) {
                ring.open(sealed, &aad).map_err(|_| {
                    SealingKeyError::Unopenable(format!(
                        "the authenticator secret of {}",
                        user.id()
                    ))
                })?;
            }
            return Ok(());
        }
        if let Some(key) = self.deps.queries.signing_keys().await?.first() {
            ring.open(
                &key.sealed_private_key,
                super::oidc::key_aad(&key.kid).as_bytes(),
            )
            .map_err(|_| SealingKeyError::Unopenable(format!("signing key {}", key.kid)))?;
        }
        Ok(())
    }

    /// Re-seals every sealed value (authenticator seeds, confirmed or being set up, OIDC
    /// signing keys and webhook secrets) under the current key, each change audited in its own commit, and then
    /// forgets every other key id (audited): the previous secrets are no longer needed. Safe to
    /// repeat and to run while servers serve (a value changed meanwhile is re-read and
    /// re-sealed).
    ///
    /// # Errors
    /// Not an operator or the system; no key; [`SealingKeyError::Unopenable`] when a value opens
    /// with no configured key (then no id is forgotten); infrastructure.
    pub async fn reseal_secrets(&self, actor: &Actor) -> Result<ResealReport, SealingKeyError> {
        let mut report = self.reseal_sealed_values(actor).await?;
        report.retired = self.retire_sealing_keys(actor).await?;
        Ok(report)
    }

    /// The operator (or the system) acting, and the configured keys.
    async fn resealer(&self, actor: &Actor) -> Result<(ActorRef, MfaKeyring), SealingKeyError> {
        let acting = self
            .acting_operator(actor)
            .await?
            .ok_or(SealingKeyError::Forbidden)?;
        let ring = self.mfa_keyring().ok_or(SealingKeyError::NoKey)?;
        Ok((actor_ref(&acting), ring))
    }

    /// The first step of [`Self::reseal_secrets`]: re-seals every sealed value under the current
    /// key, each change audited in its own commit, and forgets no key id (`retired` is empty).
    ///
    /// # Errors
    /// As [`Self::reseal_secrets`].
    pub async fn reseal_sealed_values(
        &self,
        actor: &Actor,
    ) -> Result<ResealReport, SealingKeyError> {
        let (by, ring) = self.resealer(actor).await?;
        self.check_sealing_keys().await?;
        let mut report = ResealReport {
            current: ring.current_id().to_owned(),
            ..ResealReport::default()
        };
        let mut after = None;
        loop {
            let page = self
                .deps
                .queries
                .users_with_sealed_secrets(after, RESEAL_PAGE)
                .await?;
            for user in &page {
                if sealed_totp(user).any(|s| ring.needs_reseal(s))
                    && self.reseal_user(&ring, by, user.id()).await?
                {
                    report.users += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == RESEAL_PAGE as usize => after = Some(last.id()),
                _ => break,
            }
        }
        report.signing_keys = self.reseal_signing_keys(&ring, by).await?;
        report.webhooks = self.reseal_webhook_secrets(&ring, by).await?;
        Ok(report)
    }

    /// Re-seals one user's authenticator secrets; whether anything changed.
    async fn reseal_user(
        &self,
        ring: &MfaKeyring,
        by: ActorRef,
        id: UserId,
    ) -> Result<bool, SealingKeyError> {
        let aad = Self::totp_aad(id);
        let unopenable =
            |_: SealError| SealingKeyError::Unopenable(format!("the authenticator secret of {id}"));
        self.transact(|| async {
            let Some(mut user) = self.deps.queries.user(id).await? else {
                return Ok(Planned::new(Commit::new(), false));
            };
            let mfa = user.mfa();
            let totp = match &mfa.totp {
                Some(f) => ring
                    .reseal(&*self.deps.random, &f.sealed_secret, &aad)
                    .map_err(unopenable)?,
                None => None,
            };
            let pending = match &mfa.pending_totp {
                Some(p) => ring
                    .reseal(&*self.deps.random, &p.sealed_secret, &aad)
                    .map_err(unopenable)?,
                None => None,
            };
            if totp.is_none() && pending.is_none() {
                return Ok(Planned::new(Commit::new(), false));
            }
            let now = self.now();
            let what = [
                totp.as_ref().map(|_| "totp"),
                pending.as_ref().map(|_| "pending_totp"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(",");
            user.change_mfa(
                |m| {
                    if let (Some(f), Some(sealed)) = (m.totp.as_mut(), totp) {
                        f.sealed_secret = sealed;
                    }
                    if let (Some(p), Some(sealed)) = (m.pending_totp.as_mut(), pending) {
                        p.sealed_secret = sealed;
                    }
                },
                now,
            );
            let mut commit = Commit::new();
            commit
                .audit(self.audit_record(
                    now,
                    user.customer_id(),
                    by,
                    Some(id),
                    AuditCategory::SecretResealed,
                    format!("what={what} key_id={}", ring.current_id()),
                ))
                .write(Write::UpdateUser(user));
            Ok::<_, SealingKeyError>(Planned::new(commit, true))
        })
        .await
    }

    /// Re-seals the signing keys not sealed under the current key; how many.
    async fn reseal_signing_keys(
        &self,
        ring: &MfaKeyring,
        by: ActorRef,
    ) -> Result<u64, SealingKeyError> {
        self.transact(|| async {
            let now = self.now();
            let mut commit = Commit::new();
            let mut n = 0;
            for mut key in self.deps.queries.signing_keys().await? {
                let aad = super::oidc::key_aad(&key.kid);
                let Some(sealed) = ring
                    .reseal(&*self.deps.random, &key.sealed_private_key, aad.as_bytes())
                    .map_err(|_| SealingKeyError::Unopenable(format!("signing key {}", key.kid)))?
                else {
                    continue;
                };
                key.sealed_private_key = sealed;
                commit.audit(self.audit_record(
                    now,
                    None,
                    by,
                    None,
                    AuditCategory::SecretResealed,
                    format!(
                        "what=signing_key kid={} key_id={}",
                        key.kid,
                        ring.current_id()
                    ),
                ));
                commit.write(Write::UpdateSigningKey(key));
                n += 1;
            }
            Ok::<_, SealingKeyError>(Planned::new(commit, n))
        })
        .await
    }

    /// Re-seals the webhook secrets not sealed under the current key; how many.
    async fn reseal_webhook_secrets(
        &self,
        ring: &MfaKeyring,
        by: ActorRef,
    ) -> Result<u64, SealingKeyError> {
        self.transact(|| async {
            let now = self.now();
            let mut commit = Commit::new();
            let mut n = 0;
            for mut endpoint in self.deps.queries.webhooks().await? {
                let aad = crate::webhook::secret_aad(endpoint.id);
                let Some(sealed) = ring
                    .reseal(&*self.deps.random, &endpoint.sealed_secret, aad.as_bytes())
                    .map_err(|_| {
                        SealingKeyError::Unopenable(format!("webhook secret {}", endpoint.id))
                    })?
                else {
                    continue;
                };
                endpoint.sealed_secret = sealed;
                commit.audit(self.audit_record(
                    now,
                    None,
                    by,
                    None,
                    AuditCategory::SecretResealed,
                    format!(
                        "what=webhook_secret webhook={} key_id={}",
                        endpoint.id,
                        ring.current_id()
                    ),
                ));
                commit.write(Write::UpdateWebhook(endpoint));
                n += 1;
            }
            Ok::<_, SealingKeyError>(Planned::new(commit, n))
        })
        .await
    }

    /// The second step of [`Self::reseal_secrets`]: forgets every recorded key id but the current
    /// one (audited); the ids forgotten. Refuses, forgetting nothing, while any stored value is
    /// still sealed under another key (a process still running with the old secret sealed it
    /// after the re-seal pass): the value would be lost once the old secret is removed.
    ///
    /// # Errors
    /// Not an operator or the system; no key; [`SealingKeyError::StillSealedWithOldKey`];
    /// infrastructure.
    pub async fn retire_sealing_keys(&self, actor: &Actor) -> Result<Vec<String>, SealingKeyError> {
        let (by, ring) = self.resealer(actor).await?;
        self.transact(|| async {
            let now = self.now();
            let mut commit = Commit::new();
            let stale: Vec<String> = self
                .deps
                .queries
                .sealing_keys()
                .await?
                .into_iter()
                .filter(|id| id != ring.current_id())
                .collect();
            if !stale.is_empty() {
                self.refuse_values_under_old_keys(&ring).await?;
            }
            for id in &stale {
                commit
                    .write(Write::DeleteSealingKey(id.clone()))
                    .audit(self.audit_record(
                        now,
                        None,
                        by,
                        None,
                        AuditCategory::ServerSecretChanged,
                        format!("change=retired key_id={id}"),
                    ));
            }
            Ok::<_, SealingKeyError>(Planned::new(commit, stale))
        })
        .await
    }
}

impl Portal {
    /// [`SealingKeyError::StillSealedWithOldKey`] when any stored value (authenticator secret,
    /// signing key, webhook secret) is not sealed under the current key.
    async fn refuse_values_under_old_keys(&self, ring: &MfaKeyring) -> Result<(), SealingKeyError> {
        let mut after = None;
        loop {
            let page = self
                .deps
                .queries
                .users_with_sealed_secrets(after, RESEAL_PAGE)
                .await?;
            if let Some(user) = page
                .iter()
                .find(|u| sealed_totp(u).any(|s| ring.needs_reseal(s)))
            {
                return Err(SealingKeyError::StillSealedWithOldKey(format!(
                    "the authenticator secret of {}",
                    user.id()
                )));
            }
            match page.last() {
                Some(last) if page.len() == RESEAL_PAGE as usize => after = Some(last.id()),
                _ => break,
            }
        }
        if let Some(key) = self
            .deps
            .queries
            .signing_keys()
            .await?
            .iter()
            .find(|k| ring.needs_reseal(&k.sealed_private_key))
        {
            return Err(SealingKeyError::StillSealedWithOldKey(format!(
                "signing key {}",
                key.kid
            )));
        }
        if let Some(endpoint) = self
            .deps
            .queries
            .webhooks()
            .await?
            .iter()
            .find(|e| ring.needs_reseal(&e.sealed_secret))
        {
            return Err(SealingKeyError::StillSealedWithOldKey(format!(
                "webhook secret {}",
                endpoint.id
            )));
        }
        Ok(())
    }
}

/// A user's sealed authenticator secrets (confirmed, being set up).
fn sealed_totp(user: &crate::user::User) -> impl Iterator<Item = &str> {
    let mfa = user.mfa();
    mfa.totp
        .iter()
        .map(|f| f.sealed_secret.as_str())
        .chain(mfa.pending_totp.iter().map(|p| p.sealed_secret.as_str()))
}
