//! The state every handler (JSON API and web UI) shares.

use crate::config::HttpConfig;
use crate::ratelimit::RateLimiter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::Portal;
use portal_core::ports::OutboxStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// "Can this process serve requests?": `/readyz` asks it. The server implements it for its store
/// (a cheap query on the database).
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when the backends are reachable; otherwise why not (logged, never shown to clients).
    ///
    /// # Errors
    /// A backend is unreachable.
    async fn check(&self) -> Result<(), String>;
}

/// A [`Readiness`] that is always ready (in-memory stores, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReady;

#[async_trait]
impl Readiness for AlwaysReady {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone)]
struct Inner {
    portal: Arc<Portal>,
    config: HttpConfig,
    readiness: Arc<dyn Readiness>,
    outbox: Option<Arc<dyn OutboxStore>>,
    limiter: Arc<RateLimiter>,
    /// Whether the warning about `X-Forwarded-For` from an untrusted peer was logged.
    forwarding_warned: Arc<AtomicBool>,
    /// Whether the warning about a request without the peer's address was logged.
    connect_info_warned: Arc<AtomicBool>,
}

/// Shared state of the router: the portal, the settings, the readiness probe, the optional
/// outbox (for the dead-letter endpoints) and the rate limiter. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for [`router`](crate::router).
    #[must_use]
    pub fn new(portal: Arc<Portal>, config: HttpConfig, readiness: Arc<dyn Readiness>) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.rate_limits));
        Self(Arc::new(Inner {
            portal,
            config,
            readiness,
            outbox: None,
            limiter,
            forwarding_warned: Arc::new(AtomicBool::new(false)),
            connect_info_warned: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// Serves the operator's dead-letter endpoints from this outbox (without it they answer 404).
    #[must_use]
    pub fn with_outbox(mut self, outbox: Arc<dyn OutboxStore>) -> Self {
        Arc::make_mut(&mut self.0).outbox = Some(outbox);
        self
    }

    /// The portal.
    #[must_use]
    pub fn portal(&self) -> &Portal {
        &self.0.portal
    }

    /// Now, by the portal's clock (the one `Clock` port every use case reads too).
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.0.portal.deps().clock.now()
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &HttpConfig {
        &self.0.config
    }

    /// The readiness probe.
    #[must_use]
    pub fn readiness(&self) -> &dyn Readiness {
        &*self.0.readiness
    }

    /// The outbox, when one was given.
    #[must_use]
    pub fn outbox(&self) -> Option<&dyn OutboxStore> {
        self.0.outbox.as_deref()
    }

    /// The per-address rate limiter.
    #[must_use]
    pub fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    /// `true` exactly once per state (so once per `portal serve` process): whether to log the
    /// warning about `X-Forwarded-For` from a peer that is not a trusted proxy.
    pub(crate) fn first_untrusted_forwarding(&self) -> bool {
        !self.0.forwarding_warned.swap(true, Ordering::Relaxed)
    }

    /// Whether the `X-Forwarded-For` warning was logged already, so a request need not look.
    pub(crate) fn untrusted_forwarding_warned(&self) -> bool {
        self.0.forwarding_warned.load(Ordering::Relaxed)
    }

    /// `true` exactly once per state: whether to log the warning about a request that came
    /// without the peer's address (a router not served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`).
    pub(crate) fn first_without_connect_info(&self) -> bool {
        !self.0.connect_info_warned.swap(true, Ordering::Relaxed)
    }
}
