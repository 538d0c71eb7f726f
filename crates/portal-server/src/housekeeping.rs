//! Housekeeping in the server: `portal serve` runs
//! [`Portal::housekeeping`](portal_core::Portal::housekeeping) every
//! `PORTAL_HOUSEKEEPING_INTERVAL` seconds (default 600; 0 turns it off, for installations that
//! run `portal housekeeping` from cron instead). Several server processes on one database may
//! all run it: the purges skip rows another one is deleting.

use portal_core::Portal;
use portal_core::ports::OutboxStore;
use portal_core::service::HousekeepingReport;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The outcome of a finished run: the report, or the storage error's message.
pub type RunOutcome = Result<HousekeepingReport, String>;

/// The periodic housekeeping task of a server.
#[derive(Debug)]
pub struct Housekeeper {
    stop: watch::Sender<bool>,
    runs: watch::Receiver<Option<RunOutcome>>,
    task: JoinHandle<()>,
}

impl Housekeeper {
    /// Starts running housekeeping every `every`, the first run one interval from now.
    #[must_use]
    pub fn spawn(portal: Arc<Portal>, outbox: Arc<dyn OutboxStore>, every: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let (done, runs) = watch::channel(None);
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + every;
            let mut ticks = tokio::time::interval_at(start, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    // The only change is the stop (or the sender is gone).
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {
                        // A first run over a large backlog may take a while: shutdown does not
                        // wait for it. Each batch is one statement in its own transaction, so
                        // a run dropped half-way leaves every batch either done or not begun.
                        tokio::select! {
                            outcome = run_once(&portal, &*outbox) => {
                                done.send_replace(Some(outcome));
                            }
                            _ = stopped.changed() => break,
                        }
                    }
                }
            }
        });
        Self { stop, runs, task }
    }

    /// The outcome of the latest run (`None` before the first); changes after every run.
    #[must_use]
    pub fn runs(&self) -> watch::Receiver<Option<RunOutcome>> {
        self.runs.clone()
    }

    /// Stops the task; a run in progress is dropped between (or, on the database side,
    /// within) its batch statements, each of which either happened or did not.
    ///
    /// # Errors
    /// The task panicked.
    pub async fn shutdown(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.stop.send(true);
        self.task.await
    }
}

/// One housekeeping run, logged: what was removed (info, when anything was), or the failure
/// (warning; the next run tries again).
pub async fn run_once(portal: &Portal, outbox: &dyn OutboxStore) -> RunOutcome {
    match portal.housekeeping(outbox).await {
        Ok(report) => {
            if report.total() > 0 {
                tracing::info!(
                    sessions = report.sessions,
                    challenges = report.challenges,
                    action_tokens = report.action_tokens,
                    counters = report.counters,
                    sent_mail = report.sent_mail,
                    "housekeeping removed expired rows"
                );
            }
            Ok(report)
        }
        Err(e) => {
            tracing::warn!(error = %e, "housekeeping failed; the next run tries again");
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters_memory::MemoryStore;
    use portal_core::ports::{Commit, Committer as _, Queries as _, Write};
    use portal_core::testing::ManualClock;
    use portal_core::{Deps, config::PortalConfig, permission::PermissionCatalog};
    use portal_testkit::fixtures::{operator, session, t0, token_hash};

    #[tokio::test(start_paused = true)]
    async fn the_server_task_runs_every_interval_and_stops_on_shutdown() {
        // The memory store: paused time and a database pool's timeouts do not mix.
        let store = Arc::new(MemoryStore::new());
        let op = operator("op@example.com");
        let mut commit = Commit::new();
        commit.write(Write::InsertUser(op.clone()));
        commit.write(Write::InsertSession(session(op.id(), token_hash(), t0())));
        store.commit(commit).await.unwrap();
        let mut deps = Deps::production(store.clone());
        let clock = ManualClock::new();
        clock.set(t0() + chrono::TimeDelta::days(3));
        deps.clock = Arc::new(clock);
        let portal =
            Portal::new(deps, PortalConfig::default(), PermissionCatalog::default()).unwrap();

        let keeper = Housekeeper::spawn(Arc::new(portal), store.clone(), Duration::from_secs(600));
        let mut runs = keeper.runs();
        assert!(runs.borrow().is_none(), "the first run waits one interval");
        // Paused time jumps to the next timer once every task is idle: the first tick.
        runs.changed().await.unwrap();
        let first = runs.borrow_and_update().clone().unwrap().unwrap();
        assert_eq!(first.sessions, 1, "{first}");
        assert!(store.sessions_of_user(op.id()).await.unwrap().is_empty());
        runs.changed().await.unwrap();
        let second = runs.borrow_and_update().clone().unwrap().unwrap();
        assert_eq!(second.total(), 0, "nothing left");
        keeper.shutdown().await.unwrap();
        assert!(runs.changed().await.is_err(), "no run after shutdown");
    }

    /// A committer whose purge never finishes (a huge backlog, a slow database), and says when
    /// one started.
    struct Stuck {
        inner: Arc<MemoryStore>,
        started: Arc<tokio::sync::Notify>,
    }

    #[async_trait::async_trait]
    impl portal_core::ports::Committer for Stuck {
        async fn commit(&self, c: Commit) -> Result<(), portal_core::ports::StoreError> {
            self.inner.commit(c).await
        }
        async fn touch_session(
            &self,
            id: portal_core::ids::SessionId,
            last_seen_at: chrono::DateTime<chrono::Utc>,
            idle_expires_at: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), portal_core::ports::StoreError> {
            self.inner
                .touch_session(id, last_seen_at, idle_expires_at)
                .await
        }
        async fn bump_counter(
            &self,
            key: &str,
            now: chrono::DateTime<chrono::Utc>,
            reset_after: chrono::TimeDelta,
        ) -> Result<portal_core::ports::Counter, portal_core::ports::StoreError> {
            self.inner.bump_counter(key, now, reset_after).await
        }
        async fn reset_counter(&self, key: &str) -> Result<(), portal_core::ports::StoreError> {
            self.inner.reset_counter(key).await
        }
        async fn purge_expired(
            &self,
            _: portal_core::ports::Expired,
            _: chrono::DateTime<chrono::Utc>,
            _: u32,
        ) -> Result<u64, portal_core::ports::StoreError> {
            self.started.notify_one();
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_does_not_wait_for_a_run_that_does_not_end() {
        let store = Arc::new(MemoryStore::new());
        let started = Arc::new(tokio::sync::Notify::new());
        let mut deps = Deps::production(store.clone());
        deps.committer = Arc::new(Stuck {
            inner: store.clone(),
            started: started.clone(),
        });
        let portal =
            Portal::new(deps, PortalConfig::default(), PermissionCatalog::default()).unwrap();
        let keeper = Housekeeper::spawn(Arc::new(portal), store, Duration::from_secs(600));
        let runs = keeper.runs();
        started.notified().await;
        // Returns although the run never will (in paused time a wait that never ends would let
        // the timeout fire at once instead of hanging the test).
        tokio::time::timeout(Duration::from_secs(3600), keeper.shutdown())
            .await
            .expect("shutdown does not wait for the run")
            .unwrap();
        assert!(runs.borrow().is_none(), "the stuck run never finished");
    }
}
