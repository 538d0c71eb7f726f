//! The harness: the real `portal` binary ([`portal`]), a real SMTP server ([`smtp`]), a browser-like
//! HTTP client ([`browser`]), delivered mails ([`mail`]), a software passkey authenticator
//! ([`passkey`]), and the set-ups the tests share ([`world`]).
//!
//! Every test gets its own Postgres database (`TestPostgres`), its own SMTP server and its own
//! ports, so tests run in parallel. Nothing waits by sleeping: the harness waits on process
//! output, on SMTP receipts and on readiness polls, each under a generous deadline that only turns a
//! hang into a failure.

#![allow(dead_code)]

pub mod browser;
pub mod db;
pub mod fixture;
pub mod load;
pub mod mail;
pub mod oidc;
/// The example application `examples/oidc_app.rs`, run by `oidc::example_app_*`.
#[path = "../../../examples/oidc_app.rs"]
pub mod oidc_app;
/// The software authenticator (`webauthn-authenticator-rs`'s `SoftPasskey`) the HTTP adapter's
/// passkey tests use, shared rather than copied.
#[path = "../../../crates/adapters-http/tests/support/passkey.rs"]
pub mod passkey;
pub mod portal;
pub mod smtp;
pub mod world;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Longest wait for any one event (a line of output, a mail, a readiness answer, an exit). A guard
/// against hangs, not a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Where the Python test tools live: `$PORTAL_TEST_PYTHONPATH` (set by `scripts/test`), else what
/// `scripts/test-deps` installs (it serialises concurrent callers itself).
pub fn python_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("PORTAL_TEST_PYTHONPATH")
            && !p.trim().is_empty()
        {
            return PathBuf::from(p.trim());
        }
        let root = repo_root();
        let out = std::process::Command::new(root.join("scripts/test-deps"))
            .current_dir(&root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/test-deps");
        assert!(out.status.success(), "scripts/test-deps failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(
            stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .expect("scripts/test-deps printed no path")
                .trim(),
        )
    })
    .clone()
}

/// A scratch directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "portal-e2e-{tag}-{}-{n}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh 32-byte server secret, base64 (what `openssl rand -base64 32` prints).
pub fn secret_key() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A free TCP port on 127.0.0.1 (free when asked; the server start retries on the rare race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
