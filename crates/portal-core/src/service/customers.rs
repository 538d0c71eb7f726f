//! Customers, for operators: create, import, list; and the setup of operator accounts.

use super::paging::{self, PageRequest, PagingError};
use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::Acting;
use crate::customer::{
    AffiliationKey, Customer, CustomerRecord, SecondFactorPolicy, ServiceChannel,
};
use crate::error::InfraError;
use crate::ids::{ActionTokenId, CustomerId, UserId};
use crate::permission::PermissionSet;
use crate::ports::{Commit, CustomerQuery, UniqueKey, Write};
use crate::secret::Token;
use crate::token::{ActionToken, TokenPurpose};
use crate::user::{Role, User};
use crate::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// A customer to create or import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// Number.
    pub number: CustomerNumber,
    /// Company name.
    pub name: CompanyName,
    /// Product affiliations (keys of the configured ones).
    pub affiliations: BTreeSet<AffiliationKey>,
    /// Served by the vendor or a partner.
    pub channel: ServiceChannel,
    /// Entitled areas; all of the catalog when `None`.
    pub entitlements: Option<PermissionSet>,
    /// Permissions for joining users; the configured default when `None`.
    pub default_permissions: Option<PermissionSet>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// New customers.
    pub created: usize,
    /// Existing customers whose data changed.
    pub updated: usize,
    /// Existing customers already up to date.
    pub unchanged: usize,
}

/// A page of customers.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    /// Customers ordered by number.
    pub items: Vec<Customer>,
    /// Cursor of the next page.
    pub next: Option<String>,
}

/// A new operator account and its one-time setup link token.
#[derive(Debug, Clone)]
pub struct OperatorSetup {
    /// The invited operator.
    pub user: User,
    /// Token for the setup link (the invitation page); shown once.
    pub token: Token,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
}

/// Why a customer action failed.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// Operators only.
    #[error("operators only")]
    Forbidden,
    /// Unknown customer.
    #[error("not found")]
    NotFound,
    /// A customer with this number exists.
    #[error("a customer with this number exists already")]
    NumberTaken,
    /// An affiliation that is not configured.
    #[error("unknown affiliation {0}")]
    UnknownAffiliation(String),
    /// Permission keys not in the catalog (or defaults outside the entitlements).
    #[error("unknown permissions: {}", .0.join(", "))]
    UnknownPermissions(Vec<String>),
    /// The address has an account already.
    #[error("this address has an account already")]
    EmailUnavailable,
    /// An import row is invalid (row number from 1, and why).
    #[error("row {row}: {reason}")]
    InvalidRow {
        /// Row number.
        row: usize,
        /// Why.
        reason: String,
    },
    /// A bad page request.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(
    CustomerError,
    UniqueKey::CustomerNumber => CustomerError::NumberTaken,
    UniqueKey::UserEmail => CustomerError::EmailUnavailable,
);

struct Resolved {
    affiliations: BTreeSet<AffiliationKey>,
    entitlements: PermissionSet,
    defaults: PermissionSet,
}

impl Portal {
    async fn operator(&self, actor: &Actor) -> Result<Acting, CustomerError> {
        self.acting_operator(actor)
            .await?
            .ok_or(CustomerError::Forbidden)
    }

    fn resolve(&self, c: &NewCustomer) -> Result<Resolved, CustomerError> {
        for a in &c.affiliations {
            if !self.config.affiliations.iter().any(|x| &x.key == a) {
                return Err(CustomerError::UnknownAffiliation(a.to_string()));
            }
        }
        let entitlements = c.entitlements.clone().unwrap_or_else(|| self.catalog.all());
        let unknown: Vec<String> = entitlements
            .iter()
            .filter(|k| !self.catalog.contains(k))
            .map(ToString::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(CustomerError::UnknownPermissions(unknown));
        }
        let defaults = match &c.default_permissions {
            Some(d) => {
                let outside: Vec<String> = d
                    .iter()
                    .filter(|k| !entitlements.contains(k))
                    .map(ToString::to_string)
                    .collect();
                if !outside.is_empty() {
                    return Err(CustomerError::UnknownPermissions(outside));
                }
                d.clone()
            }
            None => self
                .config
                .default_joiner_permissions
                .iter()
                .filter_map(|k| self.catalog.resolve(k).ok())
                .filter(|k| entitlements.contains(k))
                .collect(),
        };
        Ok(Resolved {
            affiliations: c.affiliations.clone(),
            entitlements,
            defaults,
        })
    }

    /// Creates a customer.
    ///
    /// # Errors
    /// Number taken, unknown affiliation or permissions; not an operator; infrastructure failures.
    pub async fn create_customer(
        &self,
        actor: &Actor,
        cmd: &NewCustomer,
    ) -> Result<Customer, CustomerError> {
        let resolved = self.resolve(cmd)?;
        self.transact(|| self.plan_upsert(actor, cmd, &resolved, false))
            .await
            .map(|(c, _)| c)
    }

    /// Imports customers: creates new numbers, updates existing ones. Every row is checked before
    /// anything is written; each customer is then written in its own commit with its audit entry.
    ///
    /// # Errors
    /// An invalid row (nothing written), not an operator; infrastructure failures.
    pub async fn import_customers(
        &self,
        actor: &Actor,
        rows: &[NewCustomer],
    ) -> Result<ImportReport, CustomerError> {
        self.operator(actor).await?;
        let mut resolved = Vec::with_capacity(rows.len());
        let mut seen = BTreeSet::new();
        for (i, row) in rows.iter().enumerate() {
            let r = self.resolve(row).map_err(|e| CustomerError::InvalidRow {
                row: i + 1,
                reason: e.to_string(),
            })?;
            if !seen.insert(row.number.clone()) {
                return Err(CustomerError::InvalidRow {
                    row: i + 1,
                    reason: "number appears twice".into(),
                });
            }
            resolved.push(r);
        }
        let mut report = ImportReport::default();
        for (row, r) in rows.iter().zip(&resolved) {
            let (_, outcome) = self
                .transact(|| self.plan_upsert(actor, row, r, true))
                .await?;
            match outcome {
                Upsert::Created => report.created += 1,
                Upsert::Updated => report.updated += 1,
                Upsert::Unchanged => report.unchanged += 1,
            }
        }
        Ok(report)
    }

    async fn plan_upsert(
        &self,
        actor: &Actor,
        cmd: &NewCustomer,
        r: &Resolved,
        allow_update: bool,
    ) -> Result<Planned<(Customer, Upsert)>, CustomerError> {
        let now = self.now();
        let acting = self.operator(actor).await?;
        let mut commit = Commit::new();
        if let Acting::User(u) = &acting {
            commit.write(Write::ExpectUser {
                id: u.id(),
                version: u.version(),
            });
        }
        match self.deps.queries.customer_by_number(&cmd.number).await? {
            Some(_) if !allow_update => Err(CustomerError::NumberTaken),
            Some(mut existing) => {
                let before = existing.clone();
                existing.update(
                    cmd.name.clone(),
                    r.affiliations.clone(),
                    cmd.channel.clone(),
                    r.entitlements.clone(),
                    r.defaults.clone(),
                    now,
                );
                let same = {
                    let (a, b) = (before.record(), existing.record());
                    a.name == b.name
                        && a.affiliations == b.affiliations
                        && a.channel == b.channel
                        && a.entitlements == b.entitlements
                        && a.default_permissions == b.default_permissions
                };
                if same {
                    return Ok(Planned::new(Commit::new(), (before, Upsert::Unchanged)));
                }
                commit
                    .audit(self.audit_record(
                        now,
                        Some(existing.id()),
                        actor_ref(&acting),
                        None,
                        AuditCategory::CustomerUpdated,
                        format!("entitlements={}", existing.entitlements().joined()),
                    ))
                    .write(Write::UpdateCustomer(existing.clone()));
                Ok(Planned::new(commit, (existing, Upsert::Updated)))
            }
            None => {
                let customer = Customer::new(CustomerRecord {
                    id: CustomerId::from_uuid(self.new_uuid()),
                    number: cmd.number.clone(),
                    name: cmd.name.clone(),
                    affiliations: r.affiliations.clone(),
                    channel: cmd.channel.clone(),
                    entitlements: r.entitlements.clone(),
                    default_permissions: r.defaults.clone(),
                    second_factor_policy: SecondFactorPolicy::None,
                    created_at: now,
                    updated_at: now,
                    version: 0,
                });
                commit
                    .audit(self.audit_record(
                        now,
                        Some(customer.id()),
                        actor_ref(&acting),
                        None,
                        AuditCategory::CustomerCreated,
                        format!("number={}", customer.number()),
                    ))
                    .write(Write::InsertCustomer(customer.clone()));
                Ok(Planned::new(commit, (customer, Upsert::Created)))
            }
        }
    }

    /// Customers, ordered by number, with search on number and name.
    ///
    /// # Errors
    /// Not an operator, bad page; infrastructure failures.
    pub async fn list_customers(
        &self,
        actor: &Actor,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<CustomerPage, CustomerError> {
        self.operator(actor).await?;
        let size = paging::page_size(&self.config, page)?;
        let after = match &page.cursor {
            Some(c) => Some(CustomerNumber::parse(c).map_err(|_| PagingError::InvalidCursor)?),
            None if page.page.is_none_or(|p| p == 1) => None,
            None => return Err(PagingError::PageOutOfRange.into()),
        };
        let mut items = self
            .deps
            .queries
            .customers(&CustomerQuery {
                search: search
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.chars().take(100).collect()),
                after,
                limit: size,
            })
            .await?;
        let next = if items.len() > size as usize {
            items.truncate(size as usize);
            items.last().map(|c| c.number().to_string())
        } else {
            None
        };
        Ok(CustomerPage { items, next })
    }

    /// Sets who of the customer's users must have a second factor (R22); operators only. The
    /// change is audited (`customer.updated`, `second_factor_policy=…`); setting the policy it
    /// has changes nothing. Users it covers who have no factor are led to set one up at their
    /// next request.
    ///
    /// # Errors
    /// Unknown customer, not an operator; infrastructure failures.
    pub async fn set_second_factor_policy(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        policy: SecondFactorPolicy,
    ) -> Result<Customer, CustomerError> {
        self.transact(|| async {
            let now = self.now();
            let acting = self.operator(actor).await?;
            let mut customer = self
                .deps
                .queries
                .customer_by_number(number)
                .await?
                .ok_or(CustomerError::NotFound)?;
            if customer.second_factor_policy() == policy {
                return Ok(Planned::new(Commit::new(), customer));
            }
            customer.set_second_factor_policy(policy, now);
            let mut commit = Self::expect_acting(&acting);
            commit
                .audit(self.audit_record(
                    now,
                    Some(customer.id()),
                    actor_ref(&acting),
                    None,
                    AuditCategory::CustomerUpdated,
                    format!("second_factor_policy={}", policy.key()),
                ))
                .write(Write::UpdateCustomer(customer.clone()));
            Ok(Planned::new(commit, customer))
        })
        .await
    }

    /// A commit that fails if the acting operator changed meanwhile.
    fn expect_acting(acting: &Acting) -> Commit {
        let mut commit = Commit::new();
        if let Acting::User(u) = acting {
            commit.write(Write::ExpectUser {
                id: u.id(),
                version: u.version(),
            });
        }
        commit
    }

    /// One customer, for operators.
    ///
    /// # Errors
    /// Unknown, not an operator; infrastructure failures.
    pub async fn get_customer(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<Customer, CustomerError> {
        self.operator(actor).await?;
        self.deps
            .queries
            .customer_by_number(number)
            .await?
            .ok_or(CustomerError::NotFound)
    }

    /// Creates an operator account with a one-time setup link (the invitation page: set a
    /// password, confirm the mailed code). Used by `portal operator create` and by operators.
    ///
    /// # Errors
    /// The address has an account; not an operator; infrastructure failures.
    pub async fn create_operator(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        first_name: &PersonName,
        last_name: &PersonName,
        language: Language,
    ) -> Result<OperatorSetup, CustomerError> {
        let token = Token::generate(&*self.deps.random);
        self.transact(|| async {
            let now = self.now();
            let acting = self.operator(actor).await?;
            if self.deps.queries.user_by_email(email).await?.is_some() {
                return Err(CustomerError::EmailUnavailable);
            }
            let user = User::new_invited(
                UserId::from_uuid(self.new_uuid()),
                email.clone(),
                first_name.clone(),
                last_name.clone(),
                language,
                Role::Operator,
                None,
                PermissionSet::new(),
                now,
            );
            let expires_at = now + self.config.invitation_ttl;
            let mut commit = Commit::new();
            commit
                .write(Write::InsertUser(user.clone()))
                .write(Write::InsertActionToken(ActionToken::issue(
                    ActionTokenId::from_uuid(self.new_uuid()),
                    token.hash(),
                    TokenPurpose::Invitation,
                    user.id(),
                    now,
                    expires_at,
                )))
                .audit(self.audit_record(
                    now,
                    None,
                    actor_ref(&acting),
                    Some(user.id()),
                    AuditCategory::UserCreated,
                    "role=operator; via=setup_link",
                ));
            Ok(Planned::new(
                commit,
                OperatorSetup {
                    user,
                    token: token.clone(),
                    expires_at,
                },
            ))
        })
        .await
    }

    /// Whether any operator account exists (active or still invited).
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn has_operator(&self) -> Result<bool, CustomerError> {
        Ok(!self.deps.queries.operators().await?.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upsert {
    Created,
    Updated,
    Unchanged,
}
