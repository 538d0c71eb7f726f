//! Password hashing (R13, R14).

use crate::legacy_hash::LegacyHash;
use crate::password::{Password, PasswordHash};
use crate::secret::SecretString;
use async_trait::async_trait;

/// Hashing failed (bad parameters, out of memory). Never carries the password.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Hashes and verifies passwords (R13). The production implementation is
/// [`Argon2idHasher`](crate::hashing::Argon2idHasher); servers wrap it to run on dedicated threads
/// behind a semaphore.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with a fresh salt.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `candidate` matches `hash`. MUST take the same time whether it matches or not.
    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError>;

    /// Spends the time of one verification against a dummy hash and returns `false`, so an
    /// unknown user costs what a known one does (R14).
    async fn verify_dummy(&self, candidate: &SecretString) -> Result<bool, HashError>;

    /// Whether a hash was made with weaker parameters than the current ones and should be
    /// replaced at the next successful login.
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;

    /// Whether `candidate` matches an old system's hash (R8, linking an old account), with the
    /// old algorithm and cost. The default computes on the calling thread; servers run it on
    /// their bounded hashing threads like [`Self::verify`].
    async fn verify_legacy(
        &self,
        candidate: &SecretString,
        hash: &LegacyHash,
    ) -> Result<bool, HashError> {
        Ok(hash.verify_blocking(candidate.expose()))
    }
}
