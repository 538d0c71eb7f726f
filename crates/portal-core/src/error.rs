//! The infrastructure failure every use-case error carries as its opaque last variant.

use crate::ports::{HashError, LegacyError, StoreError};

/// Something below the domain failed: storage, hashing or the legacy directory. Callers answer
/// with a generic server error (503 when storage is unavailable) and log it with a request id.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// Storage.
    #[error(transparent)]
    Store(StoreError),
    /// Password hashing.
    #[error(transparent)]
    Hash(HashError),
    /// Legacy directory.
    #[error(transparent)]
    Legacy(LegacyError),
}

impl InfraError {
    /// Whether the failure is a backend being unreachable (worth a 503 and a retry).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Store(StoreError::Unavailable(_)) | Self::Legacy(_)
        )
    }
}
