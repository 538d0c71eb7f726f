//! Infrastructure failures: a database that is down answers 503, any other failure 500; neither
//! says anything about the cause, both carry the request id; a panic is a 500 and the server
//! goes on.

use crate::support::http_config;
use adapters_http::{AlwaysReady, AppState, router};
use adapters_memory::MemoryStore;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use portal_core::config::PortalConfig;
use portal_core::permission::PermissionCatalog;
use portal_core::ports::{MockQueries, StoreError};
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use portal_core::{Deps, Portal};
use std::sync::Arc;
use tower::ServiceExt;

fn app_with(queries: MockQueries) -> axum::Router {
    let store = Arc::new(MemoryStore::new());
    let deps = Deps {
        queries: Arc::new(queries),
        committer: store,
        clock: Arc::new(ManualClock::new()),
        ids: Arc::new(SequentialIds::new()),
        random: Arc::new(SeededRandom::new(1)),
        hasher: Arc::new(fast_hasher(1)),
        legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
    };
    let portal = Portal::new(deps, PortalConfig::default(), PermissionCatalog::default()).unwrap();
    router(AppState::new(
        Arc::new(portal),
        http_config(),
        Arc::new(AlwaysReady),
    ))
}

async fn me(app: axum::Router) -> (StatusCode, String, String) {
    let token = "A".repeat(43);
    let r = app
        .oneshot(
            Request::get("/api/v1/me")
                .header(header::COOKIE, format!("__Host-portal-session={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = axum::body::to_bytes(r.into_body(), 10_000).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap(), id)
}

#[tokio::test]
async fn an_unreachable_database_answers_503_without_details() {
    let mut q = MockQueries::new();
    q.expect_session_context().returning(|_, _| {
        Err(StoreError::Unavailable(
            "connection refused to 10.0.0.5:5432".into(),
        ))
    });
    let (status, body, id) = me(app_with(q)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    assert_eq!(v["error"]["request_id"], id.as_str());
    assert!(
        !body.contains("refused") && !body.contains("5432"),
        "{body}"
    );
}

#[tokio::test]
async fn other_failures_answer_500_without_details() {
    let mut q = MockQueries::new();
    q.expect_session_context().returning(|_, _| {
        Err(StoreError::backend(
            "SELECT * FROM sessions failed: sqlx error",
        ))
    });
    let (status, body, _) = me(app_with(q)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "internal");
    for leak in ["SELECT", "sqlx", "sessions"] {
        assert!(!body.contains(leak), "{body}");
    }
}

#[tokio::test]
async fn a_panicking_request_is_a_500_and_the_next_one_is_served() {
    let mut q = MockQueries::new();
    q.expect_session_context()
        .returning(|_, _| panic!("boom in the store"));
    let app = app_with(q);
    let (status, body, _) = me(app.clone()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.contains("\"internal\"") && !body.contains("boom"),
        "{body}"
    );
    let r = app
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
