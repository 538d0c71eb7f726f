//! No secret reaches the logs. Its own test binary (`[[test]] name = "logs"`, beside the crate's
//! one `integration` binary): `tracing`'s per-callsite interest is shared by the threads of one
//! process, so a scoped subscriber sees everything only when no other test runs beside it.

// The router-test helpers, of which this binary uses a few.
#[allow(dead_code)]
mod support;

use axum::http::Method;
use serde_json::json;
use std::sync::{Arc, Mutex};
use support::*;

/// Captures everything logged at any level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_no_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::new();
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "sec@example.com", "first_name": "S", "last_name": "E",
                   "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    let code = app.secret_for("sec@example.com");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": code}),
    )
    .await
    .ok(201);
    let session = c.cookie("portal-session").unwrap();
    let csrf = c.csrf_token().await;
    let setup = c.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let totp = totp_code(&app, &secret);
    let recovery = c
        .post("/api/v1/me/mfa/totp/confirm", json!({"code": totp}))
        .await
        .body["recovery_code"]
        .as_str()
        .unwrap()
        .to_owned();
    c.post(
        "/api/v1/auth/login",
        json!({"email": "sec@example.com", "password": "wrong wrong wrong"}),
    )
    .await;
    c.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "sec@example.com"}),
    )
    .await;
    app.process_reset_requests().await;
    let reset = app.secret_for("sec@example.com");
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": reset, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .ok(204);
    c.get(&format!("/api/v1/invitations/{reset}")).await;
    c.send(Req {
        csrf: false,
        headers: vec![("x-csrf-token".into(), csrf.clone())],
        ..Client::req(Method::DELETE, "/api/v1/me/sessions")
    })
    .await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("\"route\""), "requests are logged: {log}");
    assert!(
        log.contains("/api/v1/invitations/{token}"),
        "templates, not raw paths"
    );
    for secret in [
        PASSWORD,
        NEW_PASSWORD,
        "wrong wrong wrong",
        &session,
        &csrf,
        &ticket,
        &code,
        &secret,
        &totp,
        &recovery,
        &reset,
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// The JSON lines of a captured log.
fn lines(captured: &Captured) -> Vec<serde_json::Value> {
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn every_log_line_inside_a_request_carries_its_id_and_route() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::new();
    let c = app.client();
    // A CSRF refusal is logged by the API guard, inside the request.
    let r = c
        .send(Req {
            csrf: false,
            headers: vec![("x-request-id".into(), "trace-4711".into())],
            ..Client::req(
                Method::DELETE,
                "/api/v1/me/sessions/00000000-0000-7000-8000-000000000001",
            )
        })
        .await;
    r.assert(403, "csrf_failed");
    assert_eq!(r.headers["x-request-id"], "trace-4711");
    assert_eq!(r.body["error"]["request_id"], "trace-4711");

    let lines = lines(&captured);
    let warning = lines
        .iter()
        .find(|l| l["fields"]["message"] == "csrf check failed")
        .unwrap_or_else(|| panic!("no csrf line in {lines:#?}"));
    assert_eq!(warning["span"]["request_id"], "trace-4711", "{warning}");
    assert_eq!(
        warning["span"]["route"], "/api/v1/me/sessions/{id}",
        "{warning}"
    );
    assert_eq!(warning["span"]["method"], "DELETE", "{warning}");
    // And one completion line per request, with status and duration.
    let done: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request" && l["span"]["request_id"] == "trace-4711")
        .collect();
    assert_eq!(done.len(), 1, "{lines:#?}");
    assert_eq!(done[0]["fields"]["status"], 403);
    assert!(done[0]["fields"]["elapsed_ms"].is_u64(), "{}", done[0]);
}

/// A router whose store fails every session lookup (a backend error with an internal message).
fn failing_session_store() -> axum::Router {
    use adapters_http::{AlwaysReady, AppState, router};
    use portal_core::ports::{MockQueries, StoreError};
    use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};

    let mut queries = MockQueries::new();
    queries
        .expect_session_context()
        .returning(|_, _| Err(StoreError::backend("sqlx error: relation sessions")));
    let deps = portal_core::Deps {
        queries: Arc::new(queries),
        committer: Arc::new(adapters_memory::MemoryStore::new()),
        clock: Arc::new(ManualClock::new()),
        ids: Arc::new(SequentialIds::new()),
        random: Arc::new(SeededRandom::new(1)),
        hasher: Arc::new(fast_hasher(1)),
        legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
    };
    let portal = portal_core::Portal::new(deps, Default::default(), Default::default()).unwrap();
    router(AppState::new(
        Arc::new(portal),
        http_config(),
        Arc::new(AlwaysReady),
    ))
}

/// `GET path` with a session cookie on a router whose session lookup fails: status, request id
/// and body.
async fn get_with_session(app: axum::Router, path: &str) -> (u16, String, String) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    let r = app
        .oneshot(
            Request::get(path)
                .header(header::ACCEPT, "text/html")
                .header(
                    header::COOKIE,
                    format!("__Host-portal-session={}", "A".repeat(43)),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = axum::body::to_bytes(r.into_body(), 100_000).await.unwrap();
    (status, id, String::from_utf8_lossy(&body).into_owned())
}

/// The one "request failed" line of a captured log: an error with the internal cause, inside the
/// span of request `id` on `route`.
fn the_failure_line(captured: &Captured, id: &str, route: &str) {
    let failed: Vec<_> = lines(captured)
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let line = &failed[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["fields"]["code"], "internal");
    assert!(
        line["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("sqlx error"),
        "{line}"
    );
    assert_eq!(line["span"]["request_id"], id, "{line}");
    assert_eq!(line["span"]["route"], route, "{line}");
}

#[tokio::test]
async fn a_server_error_is_logged_once_by_the_error_layer_with_its_cause_and_request() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (status, id, body) = get_with_session(failing_session_store(), "/api/v1/me").await;
    assert_eq!(status, 500);
    assert!(!body.contains("sqlx"));
    the_failure_line(&captured, &id, "/api/v1/me");
}

#[tokio::test]
async fn a_server_error_of_a_page_is_logged_once_by_the_same_layer() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (status, id, body) = get_with_session(failing_session_store(), "/home").await;
    assert_eq!(status, 500);
    assert!(body.contains("<html"), "the error page: {body}");
    assert!(
        body.contains("Ein Fehler ist aufgetreten"),
        "its message: {body}"
    );
    assert!(!body.contains("sqlx"), "the cause stays in the log: {body}");
    the_failure_line(&captured, &id, "/home");
}

/// `GET /api/v1/auth/csrf` from `client`, with `X-Forwarded-For` when given.
async fn get_forwarded(client: &Client, forwarded: Option<&str>) {
    let headers = forwarded
        .map(|f| vec![("x-forwarded-for".to_owned(), f.to_owned())])
        .unwrap_or_default();
    client
        .send(Req {
            headers,
            ..Client::req(Method::GET, "/api/v1/auth/csrf")
        })
        .await
        .ok(200);
}

/// The warnings about `X-Forwarded-For` in a captured log.
fn forwarding_warnings(captured: &Captured) -> Vec<serde_json::Value> {
    lines(captured)
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("X-Forwarded-For"))
        })
        .collect()
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_warned_about_once_naming_the_setting() {
    use adapters_http::ClientAddressSource;

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // No proxy trusted (the default): requests without the header say nothing, the first with it
    // warns, and no later one again.
    let app = TestApp::new();
    let c = app.client();
    get_forwarded(&c, None).await;
    assert!(forwarding_warnings(&captured).is_empty());
    for _ in 0..3 {
        get_forwarded(&c, Some("203.0.113.9")).await;
    }
    let mut other = app.client();
    other.ip = "192.0.2.33".parse().unwrap();
    get_forwarded(&other, Some("203.0.113.10")).await;
    let warnings = forwarding_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w["level"], "WARN", "{w}");
    let text = w["fields"]["message"].as_str().unwrap();
    assert!(text.contains("PORTAL_TRUSTED_PROXIES"), "{text}");
    assert!(text.contains("198.51.100.7"), "names the peer: {text}");
    assert_eq!(w["fields"]["peer"], "198.51.100.7", "{w}");

    // The peer is a trusted proxy: its header is believed, nothing to warn about.
    let mut config = http_config();
    config.client_address = ClientAddressSource::XForwardedFor {
        proxies: vec!["198.51.100.7".parse().unwrap()],
    };
    let trusted = TestApp::with(config, |_| {});
    get_forwarded(&trusted.client(), Some("203.0.113.9")).await;
    assert_eq!(forwarding_warnings(&captured).len(), 1);
    // Proxies configured, but this peer is none of them: warned (once, for this server).
    let mut stranger = trusted.client();
    stranger.ip = "192.0.2.33".parse().unwrap();
    get_forwarded(&stranger, Some("203.0.113.9")).await;
    get_forwarded(&stranger, Some("203.0.113.9")).await;
    let warnings = forwarding_warnings(&captured);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(warnings[1]["fields"]["peer"], "192.0.2.33");
}

/// The warnings about a router served without the client's address.
fn connect_info_warnings(captured: &Captured) -> Vec<serde_json::Value> {
    lines(captured)
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("into_make_service_with_connect_info"))
        })
        .collect()
}

#[tokio::test]
async fn a_router_served_without_connect_info_is_warned_about_once() {
    use axum::body::Body;
    use tower::ServiceExt as _;

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Served with the peer's address (the test client sets ConnectInfo): nothing to warn about.
    let app = TestApp::new();
    get_forwarded(&app.client(), None).await;
    assert!(connect_info_warnings(&captured).is_empty());
    // The same router asked without it, three times: one warning.
    for _ in 0..3 {
        let request = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        let response = app.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let warnings = connect_info_warnings(&captured);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["level"], "WARN");
    let text = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(text.contains("rate-limit bucket"), "{text}");
}
