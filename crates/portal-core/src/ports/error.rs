//! Storage errors: what storage can answer besides data.

use crate::customer::CorruptRecord;
use std::fmt;

/// A uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey {
    /// Two accounts (not pending registrations) with one e-mail address.
    UserEmail,
    /// Two customers with one number.
    CustomerNumber,
    /// An old account linked twice.
    LegacyAccount,
    /// Another unique key (adapter-specific).
    Other(&'static str),
}

/// What storage can answer besides data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An expected version did not match, or an entity to update is gone: someone else changed
    /// it first. Nothing was written. The use case may reload and retry.
    #[error("concurrent modification")]
    Conflict,
    /// The webhook endpoints changed since the commit's deliveries were computed from them
    /// ([`Commit::webhooks_generation`](crate::ports::Commit::webhooks_generation)). Nothing
    /// was written; the service reads the endpoints again and retries.
    #[error("webhook endpoints changed")]
    WebhooksChanged,
    /// A write broke a uniqueness rule. Nothing was written.
    #[error("duplicate {0:?}")]
    Duplicate(UniqueKey),
    /// A stored row breaks a domain rule when read back.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The backend cannot be reached (connection refused, pool exhausted, timeout).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage failure: {message}")]
    Backend {
        /// What failed, without personal data.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend failure with a message.
    #[must_use]
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
            source: None,
        }
    }
}

impl fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserEmail => f.write_str("user email"),
            Self::CustomerNumber => f.write_str("customer number"),
            Self::LegacyAccount => f.write_str("legacy account"),
            Self::Other(s) => f.write_str(s),
        }
    }
}
