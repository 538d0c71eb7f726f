//! `GET /metrics` of `portal serve`, in the Prometheus text format, on its own listener
//! (`PORTAL_METRICS_BIND`, off by default): the `metrics` facade with the
//! `metrics-exporter-prometheus` recorder (see docs/operations.md, "Metrics").
//!
//! Request counts and latencies and the hashing queue are reported by the HTTP adapter
//! ([`adapters_http::metrics`]), login outcomes by the core through its
//! [`Observer`](portal_core::ports::Observer) port ([`adapters_http::metrics::MetricsObserver`]),
//! sessions started and ended by a committer decorator here ([`SessionCounter`]); the outbox
//! and the database pool are read at each scrape.

use crate::app::Failure;
use adapters_postgres::{DbBackend, SqlStore};
use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portal_core::audit::AuditCategory;
use portal_core::ids::SessionId;
use portal_core::ports::{Commit, Committer, Counter, Expired, OutboxStore, StoreError, Write};
use std::sync::Arc;

/// Full sessions started (logins, second steps, registrations, invitations accepted).
pub const SESSIONS_STARTED: &str = "portal_sessions_started_total";
/// Sessions ended: `how="logout"` (one session, by its holder or a new login in the same
/// browser) or `how="ended_by_other"` (an administrator, an operator or the user's "end all
/// other sessions": each such event, however many sessions it ended).
pub const SESSIONS_ENDED: &str = "portal_sessions_ended_total";

/// Latency buckets (seconds) of every `*_seconds` histogram: from a cached page to a slow
/// Argon2id queue.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder for this process and describes every metric.
///
/// # Errors
/// A recorder is installed already (a second server in one process).
pub fn install() -> Result<PrometheusHandle, Failure> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
        .map_err(|e| Failure::of("metrics", e))?
        .install_recorder()
        .map_err(|e| Failure::of("metrics", e))?;
    adapters_http::metrics::describe();
    adapters_http::metrics::MetricsObserver::register_outcomes();
    metrics::describe_counter!(SESSIONS_STARTED, "Full sessions started");
    metrics::describe_counter!(
        SESSIONS_ENDED,
        "Sessions ended by logout (how=logout) and ends by someone else (how=ended_by_other, one per event)"
    );
    metrics::counter!(SESSIONS_STARTED).increment(0);
    for how in ["logout", "ended_by_other"] {
        metrics::counter!(SESSIONS_ENDED, "how" => how).increment(0);
    }
    metrics::describe_gauge!("portal_build_info", "Always 1; the labels name the build");
    metrics::gauge!(
        "portal_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "rustc_edition" => "2024",
    )
    .set(1.0);
    metrics::describe_gauge!(
        "portal_outbox_messages",
        "Outgoing messages of every kind by state (pending, claimed, dead; capped at 10000)"
    );
    metrics::describe_gauge!(
        "portal_outbox_retrying",
        "Open outgoing messages that failed at least once and wait for a retry"
    );
    metrics::describe_gauge!(
        "portal_outbox_oldest_open_age_seconds",
        "Age of the oldest open (pending or claimed) outgoing message; 0 when none is open"
    );
    metrics::describe_gauge!(
        "portal_db_pool_connections",
        "Database pool connections by state (in_use, idle)"
    );
    metrics::describe_gauge!(
        "portal_db_pool_max_connections",
        "The database pool's size limit"
    );
    Ok(handle)
}

/// What the `/metrics` handler reads at each scrape.
#[derive(Clone)]
pub struct Scrape {
    handle: PrometheusHandle,
    store: Arc<SqlStore>,
}

impl Scrape {
    /// The handler's state.
    #[must_use]
    pub fn new(handle: PrometheusHandle, store: Arc<SqlStore>) -> Self {
        Self { handle, store }
    }
}

/// The metrics listener's router: `GET /metrics` only.
pub fn router(scrape: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(scrape)
}

async fn render(State(s): State<Scrape>) -> Response {
    if let Err(e) = read_store(&s.store).await {
        // The request metrics still answer; the store's gauges keep their last values.
        tracing::warn!(error = %e, "metrics: reading the outbox failed");
    }
    read_pool(&s.store);
    s.handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.handle.render(),
    )
        .into_response()
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
async fn read_store(store: &SqlStore) -> Result<(), StoreError> {
    let stats = store.outbox_stats().await?;
    for (state, n) in [
        ("pending", stats.pending),
        ("claimed", stats.claimed),
        ("dead", stats.dead),
    ] {
        metrics::gauge!("portal_outbox_messages", "state" => state).set(n as f64);
    }
    let backlog = store.outbox_backlog().await?;
    metrics::gauge!("portal_outbox_retrying").set(backlog.retrying as f64);
    metrics::gauge!("portal_outbox_oldest_open_age_seconds").set(age(backlog.oldest_open_at));
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn age(since: Option<DateTime<Utc>>) -> f64 {
    since.map_or(0.0, |t| {
        (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
    })
}

/// The pool's connections in use and idle, and its limit (sqlx's pool counts; sqlx does not
/// count waits for a connection, so a full pool shows as `in_use` = the limit).
#[allow(clippy::cast_precision_loss)]
fn read_pool(store: &SqlStore) {
    let db = store.connection();
    let (size, idle, max) = match store.backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    metrics::gauge!("portal_db_pool_connections", "state" => "in_use").set(f64::from(size - idle));
    metrics::gauge!("portal_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("portal_db_pool_max_connections").set(f64::from(max));
}

/// A committer that counts the sessions each successful commit started and ended
/// ([`SESSIONS_STARTED`], [`SESSIONS_ENDED`]).
pub struct SessionCounter {
    inner: Arc<dyn Committer>,
}

impl SessionCounter {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Committer>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl Committer for SessionCounter {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let started = commit
            .writes
            .iter()
            .filter(|w| matches!(w, Write::InsertSession(s) if s.is_full()))
            .count();
        let logouts = commit
            .audit
            .iter()
            .filter(|a| a.category == AuditCategory::LoggedOut)
            .count();
        let ended_by_other = commit
            .audit
            .iter()
            .filter(|a| a.category == AuditCategory::SessionsEnded)
            .count();
        self.inner.commit(commit).await?;
        for (n, how) in [
            (logouts, Some("logout")),
            (ended_by_other, Some("ended_by_other")),
            (started, None),
        ] {
            if n > 0 {
                let n = u64::try_from(n).unwrap_or(u64::MAX);
                match how {
                    Some(how) => metrics::counter!(SESSIONS_ENDED, "how" => how).increment(n),
                    None => metrics::counter!(SESSIONS_STARTED).increment(n),
                }
            }
        }
        Ok(())
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: chrono::TimeDelta,
    ) -> Result<Counter, StoreError> {
        self.inner.bump_counter(key, now, reset_after).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.inner.reset_counter(key).await
    }

    async fn purge_expired(
        &self,
        kind: Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.purge_expired(kind, cutoff, limit).await
    }
}
