//! What the HTTP adapter reports to the `metrics` facade: requests by matched route, method and
//! status (a counter and a latency histogram), login outcomes the core reports
//! ([`MetricsObserver`]), and the hashing queue ([`crate::BlockingHasher`]). Without an installed
//! recorder every call is a no-op; `portal serve` installs the Prometheus exporter when
//! `PORTAL_METRICS_BIND` is set (see docs/operations.md).
//!
//! Labels are bounded: the route is the matched template (`/api/v1/customers/{number}/users`),
//! never the raw path, and a request that matched no route is `unmatched`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use portal_core::ports::{LoginObservation, Observer};
use std::time::Instant;

/// Requests answered: `method`, `route`, `status`.
pub const REQUESTS: &str = "portal_http_requests_total";
/// Seconds from the request to its response head: `method`, `route`, `status`.
pub const REQUEST_SECONDS: &str = "portal_http_request_duration_seconds";
/// Login attempts by `outcome` (see [`LoginObservation::key`]).
pub const LOGINS: &str = "portal_logins_total";
/// Password hashings waiting for a hashing thread now.
pub const HASHING_WAITING: &str = "portal_hashing_queue_depth";
/// Seconds a password hashing waited for a hashing thread.
pub const HASHING_WAIT_SECONDS: &str = "portal_hashing_queue_wait_seconds";

/// Describes the adapter's metrics to the installed recorder (their `# HELP` lines).
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, matched route and status"
    );
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to the response head, by method, matched route and status"
    );
    metrics::describe_counter!(
        LOGINS,
        "Login attempts by outcome (success, wrong_password, throttled, second_factor_required, second_factor_failed, passkey_success, passkey_refused)"
    );
    metrics::describe_gauge!(
        HASHING_WAITING,
        "Password hashings waiting for a hashing thread"
    );
    metrics::describe_histogram!(
        HASHING_WAIT_SECONDS,
        metrics::Unit::Seconds,
        "Time a password hashing waited for a hashing thread"
    );
}

/// Counts and times every request by its matched route (a layer on the whole router).
pub(crate) async fn track_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(REQUEST_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Counts the login outcomes the core reports ([`LOGINS`]); give it to
/// [`portal_core::Portal::with_observer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsObserver;

impl MetricsObserver {
    /// Registers every outcome at zero, so a scrape shows each before the first of its kind.
    pub fn register_outcomes() {
        for o in LoginObservation::ALL {
            metrics::counter!(LOGINS, "outcome" => o.key()).increment(0);
        }
    }
}

impl Observer for MetricsObserver {
    fn login(&self, outcome: LoginObservation) {
        metrics::counter!(LOGINS, "outcome" => outcome.key()).increment(1);
    }
}

/// One caller waiting for a hashing thread: counted in [`HASHING_WAITING`] until dropped (also
/// when the caller gives up).
pub(crate) struct Waiting(Instant);

impl Waiting {
    pub(crate) fn enter() -> Self {
        metrics::gauge!(HASHING_WAITING).increment(1.0);
        Self(Instant::now())
    }

    /// The wait is over: records how long it took.
    pub(crate) fn served(self) {
        metrics::histogram!(HASHING_WAIT_SECONDS).record(self.0.elapsed().as_secs_f64());
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!(HASHING_WAITING).decrement(1.0);
    }
}
