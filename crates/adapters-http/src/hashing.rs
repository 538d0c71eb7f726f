//! Password hashing off the async workers: [`BlockingHasher`].

use async_trait::async_trait;
use portal_core::password::{Password, PasswordHash};
use portal_core::ports::{HashError, PasswordHasher};
use portal_core::secret::SecretString;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Wraps a [`PasswordHasher`] (the Argon2id one) so that every hash and verification runs on
/// tokio's blocking pool, at most `permits` at a time. Argon2id is CPU-bound and takes 19 MiB per
/// computation: on the async workers it would stall every other request, and without a bound a
/// login flood would grow memory without limit. Waiting callers queue on the semaphore (fairly,
/// first come first served) instead.
///
/// ```
/// # use std::sync::Arc;
/// use adapters_http::BlockingHasher;
/// use portal_core::testing::fast_hasher;
/// let hasher = BlockingHasher::new(Arc::new(fast_hasher(1)), 2);
/// assert_eq!(hasher.permits(), 2);
/// ```
pub struct BlockingHasher {
    inner: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    size: usize,
}

impl std::fmt::Debug for BlockingHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingHasher")
            .field("permits", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlockingHasher {
    /// At most `permits` (at least 1) computations at once.
    #[must_use]
    pub fn new(inner: Arc<dyn PasswordHasher>, permits: usize) -> Self {
        let size = permits.max(1);
        Self {
            inner,
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// As many at once as [`HttpConfig::hash_concurrency`](crate::HttpConfig::hash_concurrency) says.
    #[must_use]
    pub fn from_config(inner: Arc<dyn PasswordHasher>, config: &crate::HttpConfig) -> Self {
        Self::new(inner, config.hash_concurrency)
    }

    /// How many computations may run at once.
    #[must_use]
    pub fn permits(&self) -> usize {
        self.size
    }

    async fn run<T, F, Fut>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn PasswordHasher>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, HashError>>,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError("hashing pool closed".into()))?;
        let inner = self.inner.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            // The permit is held until the computation is done, also if the caller gave up.
            let _permit = permit;
            handle.block_on(work(inner))
        })
        .await
        .map_err(|e| HashError(format!("hashing task failed: {e}")))?
    }
}

#[async_trait]
impl PasswordHasher for BlockingHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |h| async move { h.hash(&password).await })
            .await
    }

    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        let (candidate, hash) = (candidate.clone(), hash.clone());
        self.run(move |h| async move { h.verify(&candidate, &hash).await })
            .await
    }

    async fn verify_dummy(&self, candidate: &SecretString) -> Result<bool, HashError> {
        let candidate = candidate.clone();
        self.run(move |h| async move { h.verify_dummy(&candidate).await })
            .await
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        self.inner.needs_rehash(hash)
    }
}
