//! `/healthz` (the process is up) and `/readyz` (the database is reachable).

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A probe's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Probe {
    /// `ok` or `unavailable`.
    pub status: String,
}

/// The process is up.
pub(crate) async fn healthz() -> Json<Probe> {
    Json(Probe {
        status: "ok".into(),
    })
}

/// The process can serve: the [`Readiness`](crate::Readiness) check passes within the
/// configured time (503 otherwise; the reason is logged, not shown).
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Probe>) {
    let timeout = state.config().readiness_timeout;
    let outcome = tokio::time::timeout(timeout, state.readiness().check())
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
    match outcome {
        Ok(()) => (
            StatusCode::OK,
            Json(Probe {
                status: "ok".into(),
            }),
        ),
        Err(why) => {
            tracing::warn!(target: "portal_http", reason = %why, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Probe {
                    status: "unavailable".into(),
                }),
            )
        }
    }
}
