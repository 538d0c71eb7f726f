//! Password hashing off the async workers: [`BlockingHasher`].

use async_trait::async_trait;
use portal_core::legacy_hash::LegacyHash;
use portal_core::password::{Password, PasswordHash};
use portal_core::ports::{HashError, PasswordHasher};
use portal_core::secret::SecretString;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Wraps a [`PasswordHasher`] (the Argon2id one) so that every hash and verification runs on
/// one of `permits` dedicated hashing threads, never on the async workers. Argon2id is CPU-bound
/// and takes 19 MiB per computation: on the async workers it would stall every other request,
/// and without a bound a login flood would grow memory without limit. Waiting callers queue on a
/// semaphore (fairly, first come first served) instead.
///
/// The threads are a fixed set, started with the hasher, rather than tokio's blocking pool: the
/// allocator keeps a freed 19 MiB block in the arena of the thread that used it, so computations
/// spread over the blocking pool's many threads left one such block in each of up to
/// 8 × cores arenas (466 MiB peak on 2 cores under a login flood, see `docs/performance.md`);
/// on `permits` threads it is `permits` blocks.
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
    jobs: std::sync::mpsc::Sender<Job>,
    size: usize,
}

/// One computation for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for BlockingHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingHasher")
            .field("permits", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlockingHasher {
    /// At most `permits` (at least 1) computations at once, on as many threads named
    /// `portal-hash-N`. The threads end when the hasher is dropped.
    ///
    /// # Panics
    /// If the operating system refuses to start a thread.
    #[must_use]
    pub fn new(inner: Arc<dyn PasswordHasher>, permits: usize) -> Self {
        let size = permits.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..size {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("portal-hash-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking the next job.
                        let job = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                })
                .expect("start a password hashing thread");
        }
        Self {
            inner,
            permits: Arc::new(Semaphore::new(size)),
            jobs,
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
        let waiting = crate::metrics::Waiting::enter();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError("hashing pool closed".into()))?;
        waiting.served();
        let inner = self.inner.clone();
        let handle = tokio::runtime::Handle::current();
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The permit is held until the computation is done, also if the caller gave up.
            let _permit = permit;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(work(inner))
            }));
            let _ =
                done.send(outcome.unwrap_or_else(|_| Err(HashError("hashing panicked".into()))));
        });
        self.jobs
            .send(job)
            .map_err(|_| HashError("hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| HashError("hashing thread stopped".into()))?
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

    /// Old systems' hashes (linking an old account, R8) on the same threads and permits.
    async fn verify_legacy(
        &self,
        candidate: &SecretString,
        hash: &LegacyHash,
    ) -> Result<bool, HashError> {
        let (candidate, hash) = (candidate.clone(), hash.clone());
        self.run(move |h| async move { h.verify_legacy(&candidate, &hash).await })
            .await
    }
}
