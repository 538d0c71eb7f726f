//! The customer (tenant): a company identified by its nine-digit customer number.

use crate::ids::CustomerId;
use crate::permission::{LocalizedText, MalformedKey, PermissionKey, PermissionSet};
use crate::values::{CompanyName, CustomerNumber};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The key of a product affiliation ("Zugehörigkeit"): which product line a customer uses and a
/// user belongs to. Same syntax as permission keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AffiliationKey(String);

impl AffiliationKey {
    /// Parses a key.
    ///
    /// # Errors
    /// The text breaks the key syntax.
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        // Same rules as a permission key.
        PermissionKey::parse(raw).map(|k| Self(k.as_str().to_owned()))
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AffiliationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AffiliationKey {
    type Error = MalformedKey;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AffiliationKey> for String {
    fn from(value: AffiliationKey) -> Self {
        value.0
    }
}

/// A product affiliation a user can choose after registering ("Bitte wählen Sie Ihre
/// Zugehörigkeit aus").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affiliation {
    /// Stable key.
    pub key: AffiliationKey,
    /// Region or product family shown as a heading ("Deutschland").
    pub region: LocalizedText,
    /// The products it covers.
    pub label: LocalizedText,
}

impl Affiliation {
    /// The manual's three choices.
    #[must_use]
    pub fn defaults() -> Vec<Self> {
        let a = |key: &str, region: LocalizedText, label: LocalizedText| Self {
            key: AffiliationKey::parse(key).expect("valid key"),
            region,
            label,
        };
        vec![
            a(
                "de-business",
                LocalizedText::new("Deutschland", "Germany"),
                LocalizedText::new(
                    "Sage 50 Connected, Sage 50 Handwerk, Sage 100, Sage ERP, Sage HR Suite, Sage Business Cloud Payroll, Sage HR Lohnabrechnung Service u. v. m.",
                    "Sage 50 Connected, Sage 50 Handwerk, Sage 100, Sage ERP, Sage HR Suite, Sage Business Cloud Payroll, Sage HR payroll service and more",
                ),
            ),
            a(
                "de-enterprise",
                LocalizedText::new("Deutschland", "Germany"),
                LocalizedText::new(
                    "Sage b7, Sage Wincarat, Sage X3",
                    "Sage b7, Sage Wincarat, Sage X3",
                ),
            ),
            a(
                "at",
                LocalizedText::new("Österreich", "Austria"),
                LocalizedText::new("Sage DPW", "Sage DPW"),
            ),
        ]
    }
}

/// Who serves a customer: the vendor directly or a reseller partner ("Fachhandelspartner").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceChannel {
    /// Served by the vendor.
    Direct,
    /// Served by a partner.
    Partner {
        /// The partner's name.
        name: CompanyName,
    },
}

/// Who of a customer's users must have a second factor (R22). Operators are not covered by any
/// customer's policy: they must when [`PortalConfig::operators_need_second_factor`] is set
/// (off by default until every harness signs operators in with a second factor).
///
/// [`PortalConfig::operators_need_second_factor`]: crate::config::PortalConfig::operators_need_second_factor
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecondFactorPolicy {
    /// Nobody is required to (a user may still set one up).
    #[default]
    None,
    /// The customer's administrators.
    Administrators,
    /// Every user of the customer.
    AllUsers,
}

impl SecondFactorPolicy {
    /// Every policy.
    pub const ALL: [Self; 3] = [Self::None, Self::Administrators, Self::AllUsers];

    /// Stable key, as stored and in the API: `none`, `administrators`, `all_users`.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Administrators => "administrators",
            Self::AllUsers => "all_users",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// Everything stored about a customer. Read it through [`Customer::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// Id.
    pub id: CustomerId,
    /// The nine-digit number.
    pub number: CustomerNumber,
    /// Company name.
    pub name: CompanyName,
    /// Product affiliations. Empty means users of any affiliation may link.
    pub affiliations: BTreeSet<AffiliationKey>,
    /// Vendor or partner.
    pub channel: ServiceChannel,
    /// The areas the customer is entitled to (depends on its products and contract).
    pub entitlements: PermissionSet,
    /// Permissions a user gets when joining (pre-checked "Meine Supportanfragen").
    pub default_permissions: PermissionSet,
    /// Who must have a second factor (R22).
    pub second_factor_policy: SecondFactorPolicy,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version; bumped by every write, also by changes to the set of
    /// administrators so two concurrent admin removals conflict (R5).
    pub version: u64,
}

/// A customer (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    rec: CustomerRecord,
}

/// A stored record breaks an invariant of its entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt {entity} record: {reason}")]
pub struct CorruptRecord {
    /// Entity kind.
    pub entity: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl CorruptRecord {
    /// A corrupt record of an entity.
    #[must_use]
    pub fn new(entity: &'static str, reason: impl Into<String>) -> Self {
        Self {
            entity,
            reason: reason.into(),
        }
    }
}

impl Customer {
    /// A new customer. Default permissions outside the entitlements are dropped.
    #[must_use]
    pub fn new(mut rec: CustomerRecord) -> Self {
        rec.default_permissions = rec.default_permissions.intersection(&rec.entitlements);
        rec.version = 0;
        Self { rec }
    }

    /// Rebuilds a customer read back from storage.
    ///
    /// # Errors
    /// Default permissions outside the entitlements.
    pub fn from_record(rec: CustomerRecord) -> Result<Self, CorruptRecord> {
        if !rec.default_permissions.is_subset(&rec.entitlements) {
            return Err(CorruptRecord::new(
                "customer",
                "default permissions exceed entitlements",
            ));
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &CustomerRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> CustomerId {
        self.rec.id
    }

    /// Customer number.
    #[must_use]
    pub fn number(&self) -> &CustomerNumber {
        &self.rec.number
    }

    /// Company name.
    #[must_use]
    pub fn name(&self) -> &CompanyName {
        &self.rec.name
    }

    /// Version for optimistic concurrency.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.rec.version
    }

    /// Whether the customer is entitled to an area.
    #[must_use]
    pub fn is_entitled(&self, key: &PermissionKey) -> bool {
        self.rec.entitlements.contains(key)
    }

    /// The entitled areas.
    #[must_use]
    pub fn entitlements(&self) -> &PermissionSet {
        &self.rec.entitlements
    }

    /// The permissions a joining user gets.
    #[must_use]
    pub fn default_permissions(&self) -> &PermissionSet {
        &self.rec.default_permissions
    }

    /// Who must have a second factor (R22).
    #[must_use]
    pub fn second_factor_policy(&self) -> SecondFactorPolicy {
        self.rec.second_factor_policy
    }

    /// Sets who must have a second factor.
    pub fn set_second_factor_policy(&mut self, policy: SecondFactorPolicy, now: DateTime<Utc>) {
        self.rec.second_factor_policy = policy;
        self.rec.updated_at = now;
    }

    /// Whether a user of this affiliation may link to the customer.
    #[must_use]
    pub fn accepts_affiliation(&self, key: &AffiliationKey) -> bool {
        self.rec.affiliations.is_empty() || self.rec.affiliations.contains(key)
    }

    /// Replaces the master data (operator import). Default permissions are clipped to the
    /// entitlements.
    pub fn update(
        &mut self,
        name: CompanyName,
        affiliations: BTreeSet<AffiliationKey>,
        channel: ServiceChannel,
        entitlements: PermissionSet,
        default_permissions: PermissionSet,
        now: DateTime<Utc>,
    ) {
        self.rec.default_permissions = default_permissions.intersection(&entitlements);
        self.rec.name = name;
        self.rec.affiliations = affiliations;
        self.rec.channel = channel;
        self.rec.entitlements = entitlements;
        self.rec.updated_at = now;
    }

    /// Marks a change to the customer's set of administrators so that concurrent changes conflict.
    pub fn touch_admin_set(&mut self, now: DateTime<Utc>) {
        self.rec.updated_at = now;
    }
}
