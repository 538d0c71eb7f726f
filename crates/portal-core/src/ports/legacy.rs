//! The legacy directory ("Servicewelt"): old accounts a user can link once (R8).

use crate::ids::{CustomerId, UserId};
use crate::legacy_hash::LegacyHash;
use crate::values::CustomerNumber;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// An account of the old system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAccount {
    /// Stable id of the old account (each can be linked once).
    pub id: String,
    /// The customer it belonged to.
    pub customer_number: CustomerNumber,
}

/// The legacy directory could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("legacy directory unavailable: {0}")]
pub struct LegacyError(pub String);

/// An old account as the directory holds it: the account, its username as imported, and the old
/// password hash until the account is linked (then `None`: the hash is deleted in the linking
/// commit, see [`Write::InsertLegacyClaim`](super::Write::InsertLegacyClaim)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// Id (from the username, see [`LegacyRecord::id_for`]) and customer.
    pub account: LegacyAccount,
    /// The username as the old system spelled it.
    pub username: String,
    /// The old password hash; `None` once linked.
    pub hash: Option<LegacyHash>,
    /// When it was imported or last changed by an import.
    pub imported_at: DateTime<Utc>,
}

impl LegacyRecord {
    /// The id of the old account with this username: usernames are compared trimmed and
    /// case-insensitively (`legacy:` and the lower-case name).
    #[must_use]
    pub fn id_for(username: &str) -> String {
        format!("legacy:{}", username.trim().to_lowercase())
    }
}

/// The directory of old accounts ("Servicewelt-Zugangsdaten"). It only finds accounts; the core
/// verifies the password against the record's hash on the hashing threads
/// ([`PasswordHasher::verify_legacy`](super::PasswordHasher::verify_legacy)), with a dummy hash
/// for unknown names, and throttles failures.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LegacyDirectory: Send + Sync {
    /// The old account with this username (trimmed, case-insensitive), linked or not.
    async fn find(&self, username: &str) -> Result<Option<LegacyRecord>, LegacyError>;
}

/// A legacy directory with no accounts, for installations without an old system.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLegacyDirectory;

#[async_trait]
impl LegacyDirectory for NoLegacyDirectory {
    async fn find(&self, _username: &str) -> Result<Option<LegacyRecord>, LegacyError> {
        Ok(None)
    }
}

/// Records that an old account was linked, so it cannot be linked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyClaim {
    /// The old account's id.
    pub legacy_id: String,
    /// Who linked it.
    pub user_id: UserId,
    /// To which customer.
    pub customer_id: CustomerId,
    /// When.
    pub claimed_at: DateTime<Utc>,
}
