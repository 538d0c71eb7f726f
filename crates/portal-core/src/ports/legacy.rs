//! The legacy directory ("Servicewelt"): old accounts a user can link once (R8).

use crate::ids::{CustomerId, UserId};
use crate::secret::SecretString;
use crate::values::CustomerNumber;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// An account of the old system, found by its username and password.
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

/// The directory of old accounts ("Servicewelt-Zugangsdaten").
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LegacyDirectory: Send + Sync {
    /// Looks up an old account by username and password. Returns `None` for an unknown username
    /// or a wrong password alike.
    async fn verify(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<LegacyAccount>, LegacyError>;
}

/// A legacy directory with no accounts, for installations without an old system.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLegacyDirectory;

#[async_trait]
impl LegacyDirectory for NoLegacyDirectory {
    async fn verify(
        &self,
        _username: &str,
        _password: &SecretString,
    ) -> Result<Option<LegacyAccount>, LegacyError> {
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
