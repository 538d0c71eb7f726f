//! Signed event webhooks end to end in one process: the real core on the in-memory store queues
//! the events, the real dispatcher and [`WebhookSender`] post them over HTTP to a receiver
//! written in Python that verifies every signature with the `standardwebhooks` package (the
//! specification's own library, installed by `scripts/test-deps`), and detects gaps and
//! disorder from the events' `seq` and `previous_seq`.
//!
//! The dispatcher runs on a manual clock, so back-off is stepped, not waited for; the sender
//! stamps its attempts with the real clock, as the receiver checks the timestamp's age.

use adapters_memory::MemoryStore;
use chrono::TimeDelta;
use portal_core::audit::AuditCategory;
use portal_core::config::PortalConfig;
use portal_core::defaults::SystemClock;
use portal_core::outbox::{OutboxKind, OutboxStatus, RetryPolicy};
use portal_core::ports::{Clock, OutboxStore};
use portal_core::secretbox::MfaKey;
use portal_core::service::NewWebhook;
use portal_core::testing::ManualClock;
use portal_core::{Actor, Deps, Portal};
use portal_dispatch::{Dispatcher, DispatcherConfig, WebhookSender};
use portal_testkit::seed;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The Python receiver, killed when dropped.
struct Receiver {
    child: Child,
    url: String,
    log: LogFile,
}

/// The receiver's log, under the target directory, removed when dropped.
struct LogFile(std::path::PathBuf);

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Receiver {
    /// Starts it: it fails its first `fail_first` requests and refuses every event of
    /// `refused_type` (503).
    fn start(fail_first: u32, refused_type: &str) -> Self {
        let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("webhooks-{}.jsonl", uuid::Uuid::new_v4()));
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&log)
            .arg(fail_first.to_string())
            .arg(refused_type)
            .env("PYTHONPATH", portal_core::testing::test_tools_python_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .expect("the receiver prints its port");
        let port: u16 = port.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver did not start (is standardwebhooks installed?): {port:?}")
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/portal-events?token=receiver-side"),
            log: LogFile(log),
        }
    }

    /// Hands it the endpoint's secret, shown once at registration.
    fn configure(&mut self, secret: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{secret}").expect("the receiver reads its secret");
        stdin.flush().unwrap();
    }

    /// What the receiver logged, one JSON object per request, in order.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log.0)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn portal(store: &Arc<MemoryStore>) -> Arc<Portal> {
    let config = PortalConfig {
        mfa_key: Some(MfaKey::from_bytes(*b"webhook test sealing key 32 b!!!")),
        ..PortalConfig::default()
    };
    Arc::new(
        Portal::new(
            Deps::production(store.clone()),
            config,
            portal_core::permission::PermissionCatalog::default(),
        )
        .expect("portal"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_signed_retried_dead_lettered_and_numbered_so_the_receiver_sees_the_gap() {
    let store = Arc::new(MemoryStore::new());
    let portal = portal(&store);
    let seeded = seed::customer_with_admin(
        &portal,
        &*store,
        "424242424",
        "anna@hooks.example",
        &["ben@hooks.example"],
    )
    .await
    .expect("seeded customer");
    let ben = seeded.employees[0];
    // The receiver fails its first request and refuses every `user.unlocked` for good.
    let mut receiver = Receiver::start(1, "user.unlocked");
    let created = portal
        .create_webhook(
            &Actor::System,
            NewWebhook {
                url: receiver.url.clone(),
                description: "CRM".into(),
                events: vec![AuditCategory::UserLocked, AuditCategory::UserUnlocked],
            },
        )
        .await
        .expect("endpoint registered");
    receiver.configure(created.secret.expose());

    // Three changes: locked (A), unlocked (B, refused for good), locked again (C).
    let n = &seeded.customer;
    portal
        .lock_user(&Actor::System, n, ben, None)
        .await
        .unwrap();
    portal.unlock_user(&Actor::System, n, ben).await.unwrap();
    portal
        .lock_user(&Actor::System, n, ben, None)
        .await
        .unwrap();

    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let config = DispatcherConfig {
        retry: RetryPolicy {
            base: TimeDelta::seconds(30),
            max_delay: TimeDelta::minutes(5),
            max_attempts: 3,
        },
        ..DispatcherConfig::default()
    };
    let sender = WebhookSender::new(
        portal.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(10),
    )
    .expect("http client");
    let dispatcher =
        Dispatcher::new(store.clone(), Arc::new(sender), clock.clone(), config).unwrap();
    assert_eq!(dispatcher.kind(), OutboxKind::Webhook);

    let first = dispatcher.drain().await.unwrap();
    assert_eq!((first.sent, first.retried), (1, 2), "{first:?}");
    clock.advance(TimeDelta::seconds(30));
    let second = dispatcher.drain().await.unwrap();
    assert_eq!((second.sent, second.retried), (1, 1), "{second:?}");
    clock.advance(TimeDelta::seconds(60));
    let third = dispatcher.drain().await.unwrap();
    assert_eq!((third.sent, third.dead), (0, 1), "{third:?}");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 6, "{requests:#?}");
    assert!(
        requests.iter().all(|r| r["verified"] == true),
        "every request verifies with standardwebhooks: {requests:#?}"
    );
    let delivered: Vec<&Value> = requests.iter().filter(|r| r["status"] == 204).collect();
    let refused: Vec<&Value> = requests
        .iter()
        .filter(|r| r["type"] == "user.unlocked")
        .collect();
    assert_eq!(refused.len(), 3, "tried max_attempts times: {requests:#?}");
    assert!(
        refused.iter().all(|r| r["id"] == refused[0]["id"]),
        "every attempt carries the same webhook-id"
    );
    let seq = |r: &Value| r["seq"].as_u64().unwrap();
    let (a, c) = (
        delivered
            .iter()
            .find(|r| r["type"] == "user.locked" && r["previous_seq"].is_null()),
        delivered.iter().find(|r| !r["previous_seq"].is_null()),
    );
    let (a, c) = (a.expect("A delivered"), c.expect("C delivered"));
    let b = seq(refused[0]);
    assert_eq!(
        (seq(a) + 1, b + 1),
        (b, seq(c)),
        "consecutive entries of the chain"
    );
    assert_eq!(c["previous_seq"].as_u64(), Some(b), "C names B before it");
    assert_eq!(c["customer"], "424242424");
    assert_eq!(
        c["gap"], true,
        "the receiver sees that B (and, at first, A) is missing before C"
    );
    assert_eq!(
        requests[0]["status"], 503,
        "the first request failed and A was retried"
    );
    assert_eq!(
        requests.iter().filter(|r| r["id"] == a["id"]).count(),
        2,
        "A arrived on its second attempt, with its first id"
    );

    // The dead letter is listed for operators, and did not hold up C.
    let dead = store.dead_letters(Some("webhook"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, OutboxStatus::Dead);
    assert_eq!(
        dead[0].message.id.to_string(),
        refused[0]["id"].as_str().unwrap()
    );
    assert_eq!(dead[0].message.payload.summary(), "user.unlocked");
    assert!(
        dead[0].last_error.as_deref().unwrap_or("").contains("503"),
        "{:?}",
        dead[0].last_error
    );
}
