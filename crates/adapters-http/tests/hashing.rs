//! `BlockingHasher`: hashing runs on its own fixed threads, never more at once than the permits,
//! and a computation that panics neither takes a thread down nor hangs its caller.

use adapters_http::BlockingHasher;
use async_trait::async_trait;
use portal_core::legacy_hash::LegacyHash;
use portal_core::password::{Password, PasswordHash, PasswordPolicy};
use portal_core::ports::{HashError, PasswordHasher};
use portal_core::secret::SecretString;
use portal_core::testing::fast_hasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

/// Counts computations in flight; each waits at a barrier of `permits` parties, so the test only
/// finishes if `permits` of them really run at the same time, and the maximum shows that never
/// more do.
struct Probe {
    inner: portal_core::hashing::Argon2idHasher,
    now: AtomicUsize,
    max: AtomicUsize,
    barrier: Barrier,
}

impl Probe {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        self.barrier.wait();
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl PasswordHasher for Probe {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.enter();
        let r = self.inner.hash(password).await;
        self.leave();
        r
    }
    async fn verify(&self, c: &SecretString, h: &PasswordHash) -> Result<bool, HashError> {
        self.enter();
        let r = self.inner.verify(c, h).await;
        self.leave();
        r
    }
    async fn verify_dummy(&self, c: &SecretString) -> Result<bool, HashError> {
        self.enter();
        let r = self.inner.verify_dummy(c).await;
        self.leave();
        r
    }
    fn needs_rehash(&self, h: &PasswordHash) -> bool {
        self.inner.needs_rehash(h)
    }
}

fn password() -> Password {
    PasswordPolicy::default()
        .check(
            &SecretString::new("ein sehr langes passwort"),
            &SecretString::new("ein sehr langes passwort"),
            &[],
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_hashes_never_exceed_the_permits() {
    const PERMITS: usize = 3;
    let probe = Arc::new(Probe {
        inner: fast_hasher(1),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        barrier: Barrier::new(PERMITS),
    });
    let hasher = Arc::new(BlockingHasher::new(probe.clone(), PERMITS));
    let pw = password();
    let mut tasks = Vec::new();
    for i in 0..(PERMITS * 8) {
        let h = hasher.clone();
        let pw = pw.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => h.hash(&pw).await.map(|_| ()),
                1 => h.verify_dummy(&SecretString::new("x")).await.map(|_| ()),
                _ => h.hash(&pw).await.map(|_| ()),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(probe.max.load(Ordering::SeqCst), PERMITS);
    assert_eq!(probe.now.load(Ordering::SeqCst), 0);
    assert_eq!(hasher.permits(), PERMITS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_runs_off_the_async_workers_and_results_come_back() {
    let hasher = BlockingHasher::new(Arc::new(fast_hasher(2)), 1);
    let pw = password();
    let hash = hasher.hash(&pw).await.unwrap();
    assert!(
        hasher
            .verify(&SecretString::new("ein sehr langes passwort"), &hash)
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify(&SecretString::new("falsch"), &hash)
            .await
            .unwrap()
    );
    assert!(!hasher.verify_dummy(&SecretString::new("x")).await.unwrap());
    assert!(!hasher.needs_rehash(&hash));
}

/// Records which thread each computation ran on; panics on request.
struct Where {
    inner: portal_core::hashing::Argon2idHasher,
    threads: std::sync::Mutex<std::collections::BTreeSet<String>>,
    panic_next: std::sync::atomic::AtomicBool,
}

impl Where {
    fn note(&self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        self.threads.lock().unwrap().insert(name);
        assert!(
            !self.panic_next.swap(false, Ordering::SeqCst),
            "a hasher bug"
        );
    }
}

#[async_trait]
impl PasswordHasher for Where {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.note();
        self.inner.hash(password).await
    }
    async fn verify(&self, c: &SecretString, h: &PasswordHash) -> Result<bool, HashError> {
        self.note();
        self.inner.verify(c, h).await
    }
    async fn verify_dummy(&self, c: &SecretString) -> Result<bool, HashError> {
        self.note();
        self.inner.verify_dummy(c).await
    }
    fn needs_rehash(&self, h: &PasswordHash) -> bool {
        self.inner.needs_rehash(h)
    }
    async fn verify_legacy(&self, c: &SecretString, h: &LegacyHash) -> Result<bool, HashError> {
        self.note();
        self.inner.verify_legacy(c, h).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computations_run_on_the_permits_own_threads_only() {
    let probe = Arc::new(Where {
        inner: fast_hasher(3),
        threads: std::sync::Mutex::default(),
        panic_next: std::sync::atomic::AtomicBool::new(false),
    });
    let hasher = Arc::new(BlockingHasher::new(probe.clone(), 2));
    let pw = password();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (h, pw) = (hasher.clone(), pw.clone());
            tokio::spawn(async move { h.hash(&pw).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let threads = probe.threads.lock().unwrap().clone();
    assert!(!threads.is_empty());
    assert!(
        threads.len() <= 2 && threads.iter().all(|t| t.starts_with("portal-hash-")),
        "ran on {threads:?}"
    );
}

/// Old systems' hashes (linking a "Servicewelt" account) are verified on the same threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_hashes_are_verified_on_the_hashing_threads_too() {
    let probe = Arc::new(Where {
        inner: fast_hasher(5),
        threads: std::sync::Mutex::default(),
        panic_next: std::sync::atomic::AtomicBool::new(false),
    });
    let hasher = BlockingHasher::new(probe.clone(), 2);
    let old = LegacyHash::pbkdf2_sha256("altes geheimnis", b"salz", 1_000).unwrap();
    assert!(
        hasher
            .verify_legacy(&SecretString::new("altes geheimnis"), &old)
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify_legacy(&SecretString::new("falsch"), &old)
            .await
            .unwrap()
    );
    let threads = probe.threads.lock().unwrap().clone();
    assert!(
        !threads.is_empty() && threads.iter().all(|t| t.starts_with("portal-hash-")),
        "ran on {threads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_computation_is_an_error_and_the_threads_go_on() {
    let probe = Arc::new(Where {
        inner: fast_hasher(4),
        threads: std::sync::Mutex::default(),
        panic_next: std::sync::atomic::AtomicBool::new(true),
    });
    // One thread: if the panic killed it, the next computation would never run.
    let hasher = BlockingHasher::new(probe.clone(), 1);
    let pw = password();
    let err = hasher.hash(&pw).await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    let hash = hasher.hash(&pw).await.unwrap();
    assert!(
        hasher
            .verify(&SecretString::new("ein sehr langes passwort"), &hash)
            .await
            .unwrap()
    );
}
