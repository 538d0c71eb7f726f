//! # portal-dispatch
//!
//! The outbox dispatcher (R21): a loop per message [kind](OutboxKind) that claims due messages of
//! its kind with a lease, hands each to the kind's [`Sender`] (the mail adapter's
//! `adapters_smtp::MailDelivery` for mail), and records the outcome as the core's
//! [`DeliveryRules`] decide. Every kind gets the same guarantees:
//!
//! * **At least once.** A message is marked sent only after the sender accepted it. If the
//!   process dies in between, the lease runs out and it is sent again, with the same id (a mail
//!   keeps its `Message-ID`).
//! * **Never twice from two dispatchers.** Messages are taken only through
//!   [`OutboxStore::claim_outbox`], which never hands one message to two live leases, and a
//!   dispatcher starts a send only while its lease has at least `send_timeout` left
//!   ([`DeliveryRules::start`]; each send is cut off at `send_timeout`). So a lease never runs out
//!   while its message is being sent.
//! * **Retries.** A transient failure schedules the next attempt by the [`RetryPolicy`]
//!   (exponential backoff, capped); after `max_attempts` the message is dead-lettered. A
//!   permanent failure dead-letters it after `permanent_failure_attempts` (default 1). Dead
//!   letters are logged at `warn`; operators list and re-queue them
//!   ([`Portal::requeue_outbox`](portal_core::service::Portal::requeue_outbox), audited).
//! * **One kind does not hold up another.** Each dispatcher claims its own kind only, so a
//!   receiver that is down delays nothing but its own messages. Messages of kinds this build does
//!   not know are never claimed.
//! * **Clean shutdown.** On shutdown the dispatcher starts no new send, finishes the one in
//!   flight (bounded by `send_timeout`), and [`release`s](OutboxStore::release) the rest of its
//!   claim at once, so another dispatcher can take them without waiting for the lease.
//!
//! Logs name the outbox id, the kind and the message's summary (a mail's template), never the
//! recipient, code, link or token.
//!
//! The dispatcher depends on `portal-core` and tokio only, and most senders live in the adapters;
//! the two that post over HTTP on the portal's behalf live here: [`WebhookSender`] (signed
//! change-log events, Standard Webhooks signatures with the `standardwebhooks` crate) and
//! [`BackchannelSender`] (OpenID Connect back-channel logouts), both with reqwest.

pub mod backchannel;
pub mod webhook;

pub use backchannel::BackchannelSender;
pub use webhook::WebhookSender;

use chrono::TimeDelta;
use portal_core::ids::OutboxId;
use portal_core::outbox::{
    DeliveryRules, Disposition, OutboxEntry, OutboxKind, RetryPolicy, SendError, Sender, Start,
};
use portal_core::ports::{Clock, OutboxStore, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How a dispatcher works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Messages claimed at once.
    pub batch_size: u32,
    /// How long a claim is held. MUST exceed `send_timeout`; the longer it is compared with
    /// `batch_size × send_timeout`, the fewer messages of a slow batch are released unsent.
    pub lease: Duration,
    /// Longest time one send may take before it counts as a transient failure. A backstop:
    /// keep it above the sender's own bound (for SMTP `adapters_smtp::SmtpConfig::timeout`,
    /// 30 s by default), which normally ends a stuck delivery first.
    pub send_timeout: Duration,
    /// Backoff and maximum attempts.
    pub retry: RetryPolicy,
    /// Attempts a message gets when the receiver refuses it permanently (5xx on SMTP). 1
    /// dead-letters it at the first refusal; more give a misconfigured relay time to be fixed.
    pub permanent_failure_attempts: u32,
    /// How often the background loop looks for due messages when nobody wakes it.
    pub poll_interval: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            lease: Duration::from_secs(300),
            send_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            permanent_failure_attempts: 1,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// The dispatcher configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dispatcher configuration: {0}")]
pub struct DispatcherConfigError(&'static str);

impl DispatcherConfig {
    /// The core's delivery rules this configuration stands for.
    #[must_use]
    pub fn rules(&self) -> DeliveryRules {
        DeliveryRules {
            retry: self.retry,
            permanent_failure_attempts: self.permanent_failure_attempts,
            send_timeout: TimeDelta::from_std(self.send_timeout).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A zero batch size, attempt count or interval, or a lease not longer than `send_timeout`.
    pub fn validate(&self) -> Result<(), DispatcherConfigError> {
        if self.batch_size == 0 {
            return Err(DispatcherConfigError("batch_size must be at least 1"));
        }
        if self.send_timeout.is_zero() || self.lease <= self.send_timeout {
            return Err(DispatcherConfigError(
                "lease must be longer than send_timeout, which must not be zero",
            ));
        }
        if TimeDelta::from_std(self.lease).is_err() {
            return Err(DispatcherConfigError("lease is too long"));
        }
        if self.retry.max_attempts == 0 || self.permanent_failure_attempts == 0 {
            return Err(DispatcherConfigError("attempt counts must be at least 1"));
        }
        if self.poll_interval.is_zero() {
            return Err(DispatcherConfigError("poll_interval must not be zero"));
        }
        Ok(())
    }
}

/// What a dispatcher did with the messages it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Accepted by the sender and marked sent.
    pub sent: usize,
    /// Failed and scheduled for another attempt.
    pub retried: usize,
    /// Dead-lettered.
    pub dead: usize,
    /// Given back unsent (shutdown, or too little lease left to start a send).
    pub released: usize,
    /// Acknowledgements that did not land: the claim was no longer current, or storage failed
    /// after the attempt. Such a message is attempted again once its lease ends.
    pub unacknowledged: usize,
}

impl DispatchReport {
    fn absorb(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.dead += other.dead;
        self.released += other.released;
        self.unacknowledged += other.unacknowledged;
    }
}

enum Outcome {
    Sent,
    Retried,
    Dead,
    Released,
    Unacknowledged,
}

/// Drains the outbox's messages of one kind through that kind's [`Sender`]. Cheap to clone; run
/// as many as you like, in one process or many, on one store, one or more per kind.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn OutboxStore>,
    sender: Arc<dyn Sender>,
    kind: OutboxKind,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    rules: DeliveryRules,
    wakeup: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("kind", &self.kind)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher over `store` for the messages of `sender`'s kind, delivering through it.
    ///
    /// # Errors
    /// The configuration is invalid (see [`DispatcherConfig::validate`]).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Result<Self, DispatcherConfigError> {
        config.validate()?;
        Ok(Self {
            store,
            kind: sender.kind(),
            sender,
            clock,
            rules: config.rules(),
            config,
            wakeup: None,
        })
    }

    /// The kind this dispatcher delivers.
    #[must_use]
    pub fn kind(&self) -> OutboxKind {
        self.kind
    }

    /// Lets the background loop be woken early, e.g. right after a commit that queued a message.
    #[must_use]
    pub fn with_wakeup(mut self, notify: Arc<Notify>) -> Self {
        self.wakeup = Some(notify);
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// Claims one batch of due messages of its kind and attempts each once. Deterministic entry point for
    /// tests and for command-line tools.
    ///
    /// # Errors
    /// Claiming failed (nothing was claimed). Failures acknowledging single messages are logged and
    /// counted as `unacknowledged` instead.
    pub async fn run_once(&self) -> Result<DispatchReport, StoreError> {
        self.batch(None).await
    }

    /// Runs batches until none is due: every message of its kind due now is attempted once
    /// (messages that fail transiently are due again only after their backoff).
    ///
    /// # Errors
    /// Claiming failed; the report of the batches before is lost with it.
    pub async fn drain(&self) -> Result<DispatchReport, StoreError> {
        let mut total = DispatchReport::default();
        loop {
            let report = self.batch(None).await?;
            total.absorb(report);
            let progressed = report.claimed > report.released;
            if report.claimed == 0 || !progressed {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown` completes: drains due messages, then waits for the poll interval or a
    /// wake-up. On shutdown it finishes the send in flight and releases the rest of its claim.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let work = self.work(stop_rx);
        tokio::pin!(work);
        tokio::pin!(shutdown);
        // Shutdown first: once it has happened, the loop sees it at its very next step.
        tokio::select! {
            biased;
            () = &mut shutdown => {
                let _ = stop_tx.send(true);
                work.await;
            }
            () = &mut work => {}
        }
    }

    /// Runs the loop of [`run`](Self::run) on a tokio task. Stop it with
    /// [`DispatcherHandle::shutdown`]; dropping the handle leaves it running.
    #[must_use]
    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move { self.work(stop_rx).await });
        DispatcherHandle { stop, task }
    }

    async fn work(&self, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            kind = self.kind.key(),
            batch_size = self.config.batch_size,
            poll_interval_ms =
                u64::try_from(self.config.poll_interval.as_millis()).unwrap_or(u64::MAX),
            "outbox dispatcher started"
        );
        let mut ticker = tokio::time::interval(self.config.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        while !*stop.borrow() {
            loop {
                match self.batch(Some(&stop)).await {
                    Ok(r) => {
                        let full = r.claimed >= self.config.batch_size as usize;
                        if !full || r.claimed == r.released || *stop.borrow() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(kind = self.kind.key(), error = %e, "outbox unavailable; trying again later");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = ticker.tick() => {}
                () = woken(self.wakeup.as_deref()) => {}
                () = stopped(&mut stop) => {}
            }
        }
        tracing::info!(kind = self.kind.key(), "outbox dispatcher stopped");
    }

    async fn batch(
        &self,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<DispatchReport, StoreError> {
        let claim = Uuid::new_v4();
        let now = self.clock.now();
        // Validated in `new`.
        let lease = TimeDelta::from_std(self.config.lease).unwrap_or(TimeDelta::MAX);
        let entries = self
            .store
            .claim_outbox(
                self.kind.key(),
                claim,
                now,
                now + lease,
                self.config.batch_size,
            )
            .await?;
        let mut report = DispatchReport {
            claimed: entries.len(),
            ..DispatchReport::default()
        };
        let mut stopping = false;
        for entry in entries {
            stopping = stopping || stop.is_some_and(|s| *s.borrow());
            let outcome = if stopping {
                self.release(entry.id(), claim).await
            } else {
                self.deliver(&entry, claim).await
            };
            match outcome {
                Outcome::Sent => report.sent += 1,
                Outcome::Retried => report.retried += 1,
                Outcome::Dead => report.dead += 1,
                Outcome::Released => report.released += 1,
                Outcome::Unacknowledged => report.unacknowledged += 1,
            }
        }
        Ok(report)
    }

    async fn release(&self, id: OutboxId, claim: Uuid) -> Outcome {
        match self.store.release(id, claim).await {
            Ok(true) => Outcome::Released,
            Ok(false) => Outcome::Unacknowledged,
            Err(e) => {
                tracing::warn!(outbox_id = %id, kind = self.kind.key(), error = %e, "could not release a claimed message; it is retried when its lease ends");
                Outcome::Unacknowledged
            }
        }
    }

    async fn deliver(&self, entry: &OutboxEntry, claim: Uuid) -> Outcome {
        let id = entry.id();
        let kind = self.kind.key();
        let summary = entry.message.payload.summary();
        if self.rules.start(entry, self.clock.now()) == Start::Release {
            // Another dispatcher may take the message once the lease ends; a send begun now
            // could still be running then.
            return self.release(id, claim).await;
        }
        let result = if entry.message.payload.kind() == Some(self.kind) {
            match tokio::time::timeout(self.config.send_timeout, self.sender.send(&entry.message))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(SendError::Transient(format!(
                    "timed out after {} s",
                    self.config.send_timeout.as_secs()
                ))),
            }
        } else {
            // A store that broke the claim's contract: never hand a sender another kind.
            Err(SendError::Permanent(format!(
                "a message of kind {} reached the {kind} dispatcher",
                entry.message.payload.kind_key()
            )))
        };
        let now = self.clock.now();
        let disposition = self.rules.after(entry, result.as_ref().map(|_| ()), now);
        let error = result.err().map(|e| e.to_string());
        match disposition {
            Disposition::Sent => match self.store.mark_sent(id, claim, now).await {
                Ok(true) => {
                    tracing::info!(outbox_id = %id, kind, summary, attempts = entry.attempts, "outbox message sent");
                    Outcome::Sent
                }
                Ok(false) => {
                    tracing::warn!(outbox_id = %id, kind, summary, "message sent, but its claim had passed to another dispatcher: it may arrive twice");
                    Outcome::Unacknowledged
                }
                Err(e) => {
                    tracing::error!(outbox_id = %id, kind, summary, error = %e, "message sent but not marked sent: it is sent again when its lease ends");
                    Outcome::Unacknowledged
                }
            },
            Disposition::Retry(_) | Disposition::Dead => {
                let retry_at = match disposition {
                    Disposition::Retry(at) => Some(at),
                    _ => None,
                };
                let message = error.unwrap_or_default();
                match self.store.mark_failed(id, claim, &message, retry_at).await {
                    Ok(true) => match retry_at {
                        Some(at) => {
                            tracing::info!(outbox_id = %id, kind, summary, attempts = entry.attempts, retry_at = %at, error = %message, "outbox message not delivered; will retry");
                            Outcome::Retried
                        }
                        None => {
                            tracing::warn!(outbox_id = %id, kind, summary, attempts = entry.attempts, error = %message, "outbox message dead-lettered; re-queue it once the cause is fixed");
                            Outcome::Dead
                        }
                    },
                    Ok(false) => {
                        tracing::warn!(outbox_id = %id, kind, summary, "delivery failed and the claim had passed to another dispatcher");
                        Outcome::Unacknowledged
                    }
                    Err(e) => {
                        tracing::error!(outbox_id = %id, kind, summary, error = %e, "delivery failed and could not be recorded: retried when its lease ends");
                        Outcome::Unacknowledged
                    }
                }
            }
        }
    }
}

async fn woken(notify: Option<&Notify>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.changed().await.is_err() {
        // The sender is gone without asking to stop: run on.
        std::future::pending::<()>().await;
    }
}

/// A dispatcher running on a tokio task (see [`Dispatcher::spawn`]).
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops the loop cleanly (no new send, the one in flight finished, the rest of the claim
    /// released) and waits for it.
    ///
    /// # Errors
    /// The task panicked or was aborted.
    pub async fn shutdown(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.stop.send(true);
        self.task.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters_memory::MemoryStore;
    use async_trait::async_trait;
    use portal_core::mail::{MailIntent, OutboxMail, OutboxStatus};
    use portal_core::outbox::{OutboxMessage, Payload};
    use portal_core::ports::{Commit, Committer};
    use portal_core::testing::ManualClock;
    use portal_core::values::{EmailAddress, Language};
    use std::sync::Mutex;

    type Hook = Box<dyn Fn(usize) + Send + Sync>;

    /// Records what it is given; runs `on_send` with the call number first.
    struct Recorder {
        sent: Mutex<Vec<OutboxId>>,
        on_send: Hook,
        hang: bool,
    }

    impl Recorder {
        fn new(on_send: impl Fn(usize) + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(Self {
                sent: Mutex::new(Vec::new()),
                on_send: Box::new(on_send),
                hang: false,
            })
        }
        fn sent(&self) -> Vec<OutboxId> {
            self.sent.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Sender for Recorder {
        fn kind(&self) -> OutboxKind {
            OutboxKind::Mail
        }

        async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
            let n = self.sent.lock().unwrap().len();
            (self.on_send)(n);
            if self.hang {
                std::future::pending::<()>().await;
            }
            // Give the runtime a chance to look at other futures, as a network send would.
            tokio::task::yield_now().await;
            self.sent.lock().unwrap().push(message.id);
            Ok(())
        }
    }

    async fn queue(store: &MemoryStore, clock: &ManualClock, n: u128) -> Vec<OutboxId> {
        let mut commit = Commit::new();
        let mut ids = Vec::new();
        for i in 1..=n {
            let id = OutboxId::from_uuid(Uuid::from_u128(i));
            ids.push(id);
            commit.mail(OutboxMail {
                id,
                created_at: clock.now(),
                to: EmailAddress::parse(&format!("u{i}@example.com")).unwrap(),
                language: Language::De,
                intent: MailIntent::Welcome {
                    first_name: "Anna".into(),
                },
            });
        }
        store.commit(commit).await.unwrap();
        ids
    }

    fn dispatcher(
        store: &Arc<MemoryStore>,
        sender: Arc<dyn Sender>,
        clock: &Arc<ManualClock>,
        config: DispatcherConfig,
    ) -> Dispatcher {
        Dispatcher::new(store.clone(), sender, clock.clone(), config).unwrap()
    }

    async fn status(store: &MemoryStore, id: OutboxId) -> (OutboxStatus, u32) {
        let e = store.outbox_entry(id).await.unwrap().unwrap();
        (e.status, e.attempts)
    }

    #[test]
    fn configurations_that_could_double_send_are_refused() {
        let ok = DispatcherConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            DispatcherConfig {
                lease: ok.send_timeout,
                ..ok
            },
            DispatcherConfig {
                batch_size: 0,
                ..ok
            },
            DispatcherConfig {
                permanent_failure_attempts: 0,
                ..ok
            },
            DispatcherConfig {
                poll_interval: Duration::ZERO,
                ..ok
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn shutdown_finishes_the_send_in_flight_and_releases_the_rest_of_the_claim() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let ids = queue(&store, &clock, 5).await;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop_tx = Mutex::new(Some(stop_tx));
        // The first send asks for shutdown while it is in flight.
        let sender = Recorder::new(move |_| {
            if let Some(tx) = stop_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        });
        let d = dispatcher(&store, sender.clone(), &clock, DispatcherConfig::default());
        d.run(async {
            let _ = stop_rx.await;
        })
        .await;

        assert_eq!(
            sender.sent(),
            vec![ids[0]],
            "only the send in flight happened"
        );
        assert_eq!(status(&store, ids[0]).await, (OutboxStatus::Sent, 1));
        for id in &ids[1..] {
            assert_eq!(
                status(&store, *id).await,
                (OutboxStatus::Pending, 0),
                "released at once, attempt not counted"
            );
        }
        // Another dispatcher takes them without waiting for the lease.
        let other = Recorder::new(|_| {});
        let r = dispatcher(&store, other.clone(), &clock, DispatcherConfig::default())
            .drain()
            .await
            .unwrap();
        assert_eq!(r.sent, 4);
        assert_eq!(other.sent(), ids[1..].to_vec());
    }

    #[tokio::test]
    async fn a_batch_whose_lease_runs_low_releases_the_rest_instead_of_risking_a_double_send() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let ids = queue(&store, &clock, 3).await;
        let config = DispatcherConfig {
            lease: Duration::from_secs(100),
            send_timeout: Duration::from_secs(60),
            ..DispatcherConfig::default()
        };
        // Each send takes 50 s of (manual) time: after the first, 50 s of lease are left.
        let c = clock.clone();
        let sender = Recorder::new(move |_| c.advance(TimeDelta::seconds(50)));
        let d = dispatcher(&store, sender.clone(), &clock, config);
        let r = d.run_once().await.unwrap();
        assert_eq!((r.claimed, r.sent, r.released), (3, 1, 2), "{r:?}");
        assert_eq!(status(&store, ids[1]).await, (OutboxStatus::Pending, 0));
        let r = d.drain().await.unwrap();
        assert_eq!(r.sent, 2, "{r:?}");
        assert_eq!(sender.sent(), ids);
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_hangs_is_cut_off_and_retried() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let ids = queue(&store, &clock, 1).await;
        let sender = Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            on_send: Box::new(|_| {}),
            hang: true,
        });
        let d = dispatcher(&store, sender, &clock, DispatcherConfig::default());
        let r = d.run_once().await.unwrap();
        assert_eq!(r.retried, 1, "{r:?}");
        let e = store.outbox_entry(ids[0]).await.unwrap().unwrap();
        assert_eq!(e.status, OutboxStatus::Pending);
        assert!(e.last_error.unwrap().contains("timed out"));
    }

    #[tokio::test]
    async fn the_background_loop_is_woken_by_a_notify_and_stops_cleanly() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let sender = Recorder::new(move |n| {
            let _ = seen_tx.send(n);
        });
        let wake = Arc::new(Notify::new());
        let config = DispatcherConfig {
            poll_interval: Duration::from_secs(3600),
            ..DispatcherConfig::default()
        };
        let handle = dispatcher(&store, sender.clone(), &clock, config)
            .with_wakeup(wake.clone())
            .spawn();
        let ids = queue(&store, &clock, 2).await;
        wake.notify_one();
        for _ in 0..2 {
            seen_rx.recv().await.unwrap();
        }
        handle.shutdown().await.unwrap();
        assert_eq!(sender.sent(), ids);
        assert_eq!(status(&store, ids[1]).await.0, OutboxStatus::Sent);
    }

    #[tokio::test]
    async fn a_dispatcher_takes_its_own_kind_only_and_leaves_unknown_kinds_alone() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let other = OutboxMessage {
            id: OutboxId::from_uuid(Uuid::from_u128(99)),
            created_at: clock.now(),
            payload: Payload::Unknown {
                kind: "webhook_v9".into(),
                recipient: "https://hooks.example.com/".into(),
                json: "{}".into(),
            },
        };
        let mut commit = Commit::new();
        commit.message(other.clone());
        store.commit(commit).await.unwrap();
        let ids = queue(&store, &clock, 2).await;
        let sender = Recorder::new(|_| {});
        let d = dispatcher(&store, sender.clone(), &clock, DispatcherConfig::default());
        assert_eq!(d.kind(), OutboxKind::Mail);
        let r = d.drain().await.unwrap();
        assert_eq!((r.claimed, r.sent), (2, 2), "{r:?}");
        assert_eq!(sender.sent(), ids);
        assert_eq!(
            status(&store, other.id).await,
            (OutboxStatus::Pending, 0),
            "never claimed by the mail dispatcher"
        );
    }

    /// A sender that fails as it is told to.
    struct Failing(SendError);

    #[async_trait]
    impl Sender for Failing {
        fn kind(&self) -> OutboxKind {
            OutboxKind::Mail
        }

        async fn send(&self, _: &OutboxMessage) -> Result<(), SendError> {
            Err(self.0.clone())
        }
    }

    #[tokio::test]
    async fn failures_follow_the_core_rules_retry_then_dead_letter() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let ids = queue(&store, &clock, 1).await;
        let config = DispatcherConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            ..DispatcherConfig::default()
        };
        let d = dispatcher(
            &store,
            Arc::new(Failing(SendError::Transient("421 busy".into()))),
            &clock,
            config,
        );
        let r = d.run_once().await.unwrap();
        assert_eq!(r.retried, 1, "{r:?}");
        let e = store.outbox_entry(ids[0]).await.unwrap().unwrap();
        assert_eq!(e.next_attempt_at, clock.now() + TimeDelta::seconds(30));
        assert_eq!(e.last_error.as_deref(), Some("transient: 421 busy"));
        clock.advance(TimeDelta::seconds(30));
        let r = d.run_once().await.unwrap();
        assert_eq!(r.dead, 1, "out of attempts: {r:?}");
        assert_eq!(status(&store, ids[0]).await, (OutboxStatus::Dead, 2));
        let listed = store.dead_letters(Some("mail"), 10).await.unwrap();
        assert_eq!(listed.iter().map(OutboxEntry::id).collect::<Vec<_>>(), ids);
    }
}
