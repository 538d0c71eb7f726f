//! The outbox dispatcher (R21): claims due mails with a lease, renders them, hands them to a
//! [`MailSender`], and records the outcome.
//!
//! * **At least once.** A mail is marked sent only after the sender accepted it. If the process
//!   dies in between, the lease runs out and the mail is sent again, with the same `Message-ID`.
//! * **Never twice from two dispatchers.** Mails are taken only through
//!   [`OutboxStore::claim_outbox`], which never hands one mail to two live leases, and a
//!   dispatcher starts a send only while its lease has at least `send_timeout` left (each send
//!   is cut off at `send_timeout`). So a lease never runs out while its mail is being sent.
//! * **Retries.** A transient failure (4xx, unreachable, timeout) schedules the next attempt by
//!   the [`RetryPolicy`] (exponential backoff, capped); after `max_attempts` the mail is
//!   dead-lettered. A permanent failure (5xx) dead-letters it after
//!   `permanent_failure_attempts` (default 1). Dead letters are logged at `warn` and can be
//!   re-queued with [`OutboxStore::requeue`].
//! * **Clean shutdown.** On shutdown the dispatcher starts no new send, finishes the one in
//!   flight (bounded by `send_timeout`), and [`release`s](OutboxStore::release) the rest of its
//!   claim at once, so another dispatcher can take them without waiting for the lease.
//!
//! Logs name the outbox id and the mail's kind, never the recipient, code or link.

use crate::render::MailRenderer;
use crate::sender::{MailSender, SendError};
use chrono::TimeDelta;
use portal_core::ids::OutboxId;
use portal_core::mail::{OutboxEntry, RetryPolicy};
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
    /// Mails claimed at once.
    pub batch_size: u32,
    /// How long a claim is held. MUST exceed `send_timeout`; the longer it is compared with
    /// `batch_size × send_timeout`, the fewer mails of a slow batch are released unsent.
    pub lease: Duration,
    /// Longest time one send may take before it counts as a transient failure. A backstop:
    /// keep it above the sender's own bound ([`SmtpConfig::timeout`](crate::SmtpConfig::timeout),
    /// 30 s by default), which normally ends a stuck delivery first.
    pub send_timeout: Duration,
    /// Backoff and maximum attempts.
    pub retry: RetryPolicy,
    /// Attempts a mail gets when the server refuses it permanently (5xx). 1 dead-letters it at
    /// the first refusal; more give a misconfigured relay time to be fixed.
    pub permanent_failure_attempts: u32,
    /// How often the background loop looks for due mails when nobody wakes it.
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

/// What a dispatcher did with the mails it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchReport {
    /// Mails claimed.
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
    /// after the attempt. Such a mail is attempted again once its lease ends.
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

/// Drains the outbox through a [`MailSender`]. Cheap to clone; run as many as you like, in one
/// process or many, on one store.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn OutboxStore>,
    sender: Arc<dyn MailSender>,
    renderer: Arc<MailRenderer>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    wakeup: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher over `store`, delivering through `sender`.
    ///
    /// # Errors
    /// The configuration is invalid (see [`DispatcherConfig::validate`]).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        sender: Arc<dyn MailSender>,
        renderer: MailRenderer,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Result<Self, DispatcherConfigError> {
        config.validate()?;
        Ok(Self {
            store,
            sender,
            renderer: Arc::new(renderer),
            clock,
            config,
            wakeup: None,
        })
    }

    /// Lets the background loop be woken early, e.g. right after a commit that queued mail.
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

    /// Claims one batch of due mails and attempts each once. Deterministic entry point for
    /// tests and for command-line tools.
    ///
    /// # Errors
    /// Claiming failed (nothing was claimed). Failures acknowledging single mails are logged and
    /// counted as `unacknowledged` instead.
    pub async fn run_once(&self) -> Result<DispatchReport, StoreError> {
        self.batch(None).await
    }

    /// Runs batches until none is due: every mail due now is attempted once (mails that fail
    /// transiently are due again only after their backoff).
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

    /// Runs until `shutdown` completes: drains due mails, then waits for the poll interval or a
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
            batch_size = self.config.batch_size,
            poll_interval_ms =
                u64::try_from(self.config.poll_interval.as_millis()).unwrap_or(u64::MAX),
            "mail dispatcher started"
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
                        tracing::warn!(error = %e, "outbox unavailable; trying again later");
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
        tracing::info!("mail dispatcher stopped");
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
            .claim_outbox(claim, now, now + lease, self.config.batch_size)
            .await?;
        let mut report = DispatchReport {
            claimed: entries.len(),
            ..DispatchReport::default()
        };
        let mut stopping = false;
        for entry in entries {
            stopping = stopping || stop.is_some_and(|s| *s.borrow());
            let outcome = if stopping {
                self.release(entry.mail.id, claim).await
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
                tracing::warn!(outbox_id = %id, error = %e, "could not release a claimed mail; it is retried when its lease ends");
                Outcome::Unacknowledged
            }
        }
    }

    async fn deliver(&self, entry: &OutboxEntry, claim: Uuid) -> Outcome {
        let id = entry.mail.id;
        let kind = entry.mail.intent.key();
        let started = self.clock.now();
        let send_timeout = TimeDelta::from_std(self.config.send_timeout).unwrap_or(TimeDelta::MAX);
        let lease_left = entry
            .claimed_until
            .map_or(TimeDelta::zero(), |u| u - started);
        if lease_left < send_timeout {
            // Another dispatcher may take the mail once the lease ends; a send begun now could
            // still be running then.
            return self.release(id, claim).await;
        }
        let result = match self.renderer.render(&entry.mail) {
            Err(e) => Err(SendError::Permanent(format!("render: {e}"))),
            Ok(rendered) => {
                match tokio::time::timeout(self.config.send_timeout, self.sender.send(&rendered))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(SendError::Transient(format!(
                        "timed out after {} s",
                        self.config.send_timeout.as_secs()
                    ))),
                }
            }
        };
        let now = self.clock.now();
        match result {
            Ok(()) => match self.store.mark_sent(id, claim, now).await {
                Ok(true) => {
                    tracing::info!(outbox_id = %id, kind, attempts = entry.attempts, "mail sent");
                    Outcome::Sent
                }
                Ok(false) => {
                    tracing::warn!(outbox_id = %id, kind, "mail sent, but its claim had passed to another dispatcher: it may arrive twice");
                    Outcome::Unacknowledged
                }
                Err(e) => {
                    tracing::error!(outbox_id = %id, kind, error = %e, "mail sent but not marked sent: it is sent again when its lease ends");
                    Outcome::Unacknowledged
                }
            },
            Err(err) => {
                let retry_at = match &err {
                    SendError::Transient(_) => self.config.retry.next_attempt(entry.attempts, now),
                    SendError::Permanent(_)
                        if entry.attempts < self.config.permanent_failure_attempts =>
                    {
                        self.config.retry.next_attempt(entry.attempts, now)
                    }
                    SendError::Permanent(_) => None,
                };
                let message = err.to_string();
                match self.store.mark_failed(id, claim, &message, retry_at).await {
                    Ok(true) => match retry_at {
                        Some(at) => {
                            tracing::info!(outbox_id = %id, kind, attempts = entry.attempts, retry_at = %at, error = %message, "mail not delivered; will retry");
                            Outcome::Retried
                        }
                        None => {
                            tracing::warn!(outbox_id = %id, kind, attempts = entry.attempts, error = %message, "mail dead-lettered; re-queue it once the cause is fixed");
                            Outcome::Dead
                        }
                    },
                    Ok(false) => {
                        tracing::warn!(outbox_id = %id, kind, "delivery failed and the claim had passed to another dispatcher");
                        Outcome::Unacknowledged
                    }
                    Err(e) => {
                        tracing::error!(outbox_id = %id, kind, error = %e, "delivery failed and could not be recorded: retried when its lease ends");
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
    use crate::render::RenderedMail;
    use crate::settings::MailSettings;
    use adapters_memory::MemoryStore;
    use async_trait::async_trait;
    use portal_core::mail::{MailIntent, OutboxMail, OutboxStatus};
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
    impl MailSender for Recorder {
        async fn send(&self, mail: &RenderedMail) -> Result<(), SendError> {
            let n = self.sent.lock().unwrap().len();
            (self.on_send)(n);
            if self.hang {
                std::future::pending::<()>().await;
            }
            // Give the runtime a chance to look at other futures, as a network send would.
            tokio::task::yield_now().await;
            self.sent.lock().unwrap().push(mail.outbox_id());
            Ok(())
        }
    }

    fn renderer() -> MailRenderer {
        MailRenderer::new(
            MailSettings::new(
                "https://portal.example.com",
                EmailAddress::parse("noreply@portal.example.com").unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
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
        sender: Arc<dyn MailSender>,
        clock: &Arc<ManualClock>,
        config: DispatcherConfig,
    ) -> Dispatcher {
        Dispatcher::new(store.clone(), sender, renderer(), clock.clone(), config).unwrap()
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
}
