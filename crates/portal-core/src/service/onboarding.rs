//! After the code: choose the product affiliation, then link the account to a customer by its
//! number or by an old "Servicewelt" account (manual 2.1, R8). If the customer already has an
//! administrator, the user waits for activation and the administrators are mailed; otherwise the
//! user is active at once with the customer's default permissions.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::Acting;
use crate::customer::{AffiliationKey, Customer};
use crate::error::InfraError;
use crate::ids::UserId;
use crate::mail::MailIntent;
use crate::ports::{Commit, LegacyAccount, LegacyClaim, UniqueKey, Write};
use crate::secret::SecretString;
use crate::session::ClientInfo;
use crate::throttle::{ThrottlePolicy, keys};
use crate::user::{Role, User};
use crate::values::CustomerNumber;

/// Where linking left the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Active with the customer's default permissions.
    Active,
    /// Waiting for the customer's administrator.
    PendingActivation,
}

/// Why choosing an affiliation or linking failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Not logged in as a user who can do this (e.g. operators, locked users).
    #[error("not allowed")]
    Forbidden,
    /// No customer with this number.
    #[error("no customer with this number")]
    CustomerNotFound,
    /// The affiliation is not one of the configured ones.
    #[error("unknown affiliation")]
    UnknownAffiliation,
    /// Choose the product affiliation first.
    #[error("choose your product affiliation first")]
    AffiliationRequired,
    /// The customer does not use the chosen product line.
    #[error("the customer does not belong to your product affiliation")]
    AffiliationMismatch,
    /// The account is linked to a customer already.
    #[error("your account is linked already")]
    AlreadyLinked,
    /// Username or password of the old account are wrong.
    #[error("unknown username or wrong password")]
    InvalidLegacyCredentials,
    /// The old account was linked before (it can be linked once).
    #[error("this old account was linked already")]
    LegacyAlreadyLinked,
    /// Too many failed attempts to link (by this user or from this client address): wait.
    #[error("too many failed attempts; try again later")]
    Throttled {
        /// When the next attempt is allowed.
        retry_at: chrono::DateTime<chrono::Utc>,
    },
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(LinkError, UniqueKey::LegacyAccount => LinkError::LegacyAlreadyLinked);

impl Portal {
    /// "Bitte wählen Sie Ihre Zugehörigkeit aus".
    ///
    /// # Errors
    /// Unknown affiliation, already linked, not an active employee; infrastructure failures.
    pub async fn choose_affiliation(
        &self,
        actor: &Actor,
        affiliation: &AffiliationKey,
    ) -> Result<(), LinkError> {
        if !self
            .config
            .affiliations
            .iter()
            .any(|a| &a.key == affiliation)
        {
            return Err(LinkError::UnknownAffiliation);
        }
        self.transact(|| self.plan_affiliation(actor, affiliation))
            .await
    }

    async fn plan_affiliation(
        &self,
        actor: &Actor,
        affiliation: &AffiliationKey,
    ) -> Result<Planned<()>, LinkError> {
        let now = self.now();
        let mut user = self.linking_user(actor).await?;
        if user.customer_id().is_some() {
            return Err(LinkError::AlreadyLinked);
        }
        user.choose_affiliation(affiliation.clone(), now)
            .map_err(|_| LinkError::Forbidden)?;
        let mut commit = Commit::new();
        commit.audit(self.audit_record(
            now,
            None,
            actor_ref(&Acting::User(user.clone())),
            Some(user.id()),
            AuditCategory::AccountChanged,
            format!("affiliation={affiliation}"),
        ));
        commit.write(Write::UpdateUser(user));
        Ok(Planned::new(commit, ()))
    }

    async fn linking_user(&self, actor: &Actor) -> Result<User, LinkError> {
        match self.acting(actor).await? {
            Some(Acting::User(u)) if u.is_active() && u.role() == Role::Employee => Ok(u),
            _ => Err(LinkError::Forbidden),
        }
    }

    /// "Jetzt registrieren" with a customer number. Without the client's address: only the
    /// user's own throttle applies (see [`Self::link_customer_from`]).
    ///
    /// # Errors
    /// Unknown customer, affiliation missing or not matching, already linked, throttled;
    /// infrastructure failures.
    pub async fn link_customer(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<LinkOutcome, LinkError> {
        self.link_customer_from(actor, number, &ClientInfo::default())
            .await
    }

    /// [`Self::link_customer`] from a client address. Guessing customer numbers is throttled in
    /// the core, per user and per client address, with counters in storage (so several server
    /// processes share them): a number that is unknown or of another product line counts as a
    /// failure ([`PortalConfig::link_user_throttle`](crate::config::PortalConfig::link_user_throttle),
    /// [`PortalConfig::link_address_throttle`](crate::config::PortalConfig::link_address_throttle)).
    ///
    /// # Errors
    /// Those of [`Self::link_customer`].
    pub async fn link_customer_from(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        client: &ClientInfo,
    ) -> Result<LinkOutcome, LinkError> {
        let user = self.linking_user(actor).await?;
        let keys = self.link_throttle(user.id(), client, None).await?;
        let result = self.transact(|| self.plan_link(actor, number, None)).await;
        if matches!(
            result,
            Err(LinkError::CustomerNotFound | LinkError::AffiliationMismatch)
        ) {
            self.count_failure(&keys, self.now()).await?;
        }
        result
    }

    /// "Jetzt verknüpfen" with the old username and password (once per old account). Without
    /// the client's address (see [`Self::link_legacy_from`]).
    ///
    /// # Errors
    /// Wrong credentials, old account linked before, plus those of [`Self::link_customer`].
    pub async fn link_legacy(
        &self,
        actor: &Actor,
        username: &str,
        password: &SecretString,
    ) -> Result<LinkOutcome, LinkError> {
        self.link_legacy_from(actor, username, password, &ClientInfo::default())
            .await
    }

    /// [`Self::link_legacy`] from a client address. The old password is verified with the old
    /// algorithm through the [`PasswordHasher`](crate::ports::PasswordHasher) (servers: on the
    /// bounded hashing threads); an unknown or already linked username is verified against
    /// [`PortalConfig::legacy_dummy_hash`](crate::config::PortalConfig::legacy_dummy_hash) so it
    /// costs the same and answers the same. Wrong credentials count against the throttle of
    /// guessed customer numbers (per user, per client address) and per old username
    /// ([`PortalConfig::link_legacy_name_throttle`](crate::config::PortalConfig::link_legacy_name_throttle)).
    ///
    /// # Errors
    /// Those of [`Self::link_legacy`].
    pub async fn link_legacy_from(
        &self,
        actor: &Actor,
        username: &str,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<LinkOutcome, LinkError> {
        // Check the actor first: the directory is not an oracle for strangers.
        let user = self.linking_user(actor).await?;
        let name = username.trim();
        let name_key = (name.len() <= 256).then(|| {
            (
                keys::link_legacy_name(name),
                self.config.link_legacy_name_throttle,
            )
        });
        let keys = self.link_throttle(user.id(), client, name_key).await?;
        if name.is_empty() || name.len() > 256 || password.expose().len() > 1024 {
            self.count_failure(&keys, self.now()).await?;
            return Err(LinkError::InvalidLegacyCredentials);
        }
        let record = self.deps.legacy.find(name).await?;
        let matched = match record.as_ref().and_then(|r| r.hash.as_ref()) {
            Some(hash) => self.deps.hasher.verify_legacy(password, hash).await?,
            None => {
                let dummy = &self.config.legacy_dummy_hash;
                let _ = self.deps.hasher.verify_legacy(password, dummy).await?;
                false
            }
        };
        let Some(record) = record.filter(|_| matched) else {
            self.count_failure(&keys, self.now()).await?;
            return Err(LinkError::InvalidLegacyCredentials);
        };
        let account = record.account;
        self.transact(|| self.plan_link(actor, &account.customer_number, Some(&account)))
            .await
    }

    /// The link throttle's keys for `user` from `client`; refuses when one of them is blocked.
    async fn link_throttle(
        &self,
        user: UserId,
        client: &ClientInfo,
        extra: Option<(String, ThrottlePolicy)>,
    ) -> Result<Vec<(String, ThrottlePolicy)>, LinkError> {
        let mut keys = vec![(keys::link_user(user), self.config.link_user_throttle)];
        if let Some(ip) = &client.ip {
            keys.push((keys::link_address(ip), self.config.link_address_throttle));
        }
        keys.extend(extra);
        if let Some(retry_at) = self.throttled_until(&keys, self.now()).await? {
            return Err(LinkError::Throttled { retry_at });
        }
        Ok(keys)
    }

    async fn plan_link(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        legacy: Option<&LegacyAccount>,
    ) -> Result<Planned<LinkOutcome>, LinkError> {
        let now = self.now();
        let q = &self.deps.queries;
        let mut user = self.linking_user(actor).await?;
        if user.customer_id().is_some() {
            return Err(LinkError::AlreadyLinked);
        }
        let affiliation = user
            .affiliation()
            .cloned()
            .ok_or(LinkError::AffiliationRequired)?;
        let mut customer: Customer = q
            .customer_by_number(number)
            .await?
            .ok_or(LinkError::CustomerNotFound)?;
        if !customer.accepts_affiliation(&affiliation) {
            return Err(LinkError::AffiliationMismatch);
        }
        if let Some(account) = legacy
            && q.legacy_claim(&account.id).await?.is_some()
        {
            return Err(LinkError::LegacyAlreadyLinked);
        }
        let admins: Vec<User> = q
            .admins_of_customer(customer.id())
            .await?
            .into_iter()
            .filter(|a| a.is_active_admin_of(customer.id()))
            .collect();
        let needs_activation = !admins.is_empty();
        user.link_to_customer(
            customer.id(),
            customer.default_permissions().clone(),
            needs_activation,
            now,
        )
        .map_err(|_| LinkError::Forbidden)?;
        let mut commit = Commit::new();
        if let Some(account) = legacy {
            commit.write(Write::InsertLegacyClaim(LegacyClaim {
                legacy_id: account.id.clone(),
                user_id: user.id(),
                customer_id: customer.id(),
                claimed_at: now,
            }));
        }
        for admin in &admins {
            commit.mail(self.mail_to(
                now,
                admin,
                MailIntent::ActivationNeeded {
                    admin_first_name: admin.first_name().to_string(),
                    user_name: user.display_name(),
                    user_email: user.email().to_string(),
                    customer_number: customer.number().to_string(),
                },
            ));
        }
        let via = if legacy.is_some() { "legacy" } else { "number" };
        let state = if needs_activation {
            "pending_activation"
        } else {
            "active"
        };
        commit.audit(self.audit_record(
            now,
            Some(customer.id()),
            actor_ref(&Acting::User(user.clone())),
            Some(user.id()),
            AuditCategory::CustomerLinked,
            format!("via={via}; status={state}"),
        ));
        // Touching the customer serialises joins with changes to its administrators, so "has an
        // admin" is decided on current data.
        customer.touch_admin_set(now);
        commit
            .write(Write::UpdateUser(user))
            .write(Write::UpdateCustomer(customer));
        Ok(Planned::new(
            commit,
            if needs_activation {
                LinkOutcome::PendingActivation
            } else {
                LinkOutcome::Active
            },
        ))
    }
}
