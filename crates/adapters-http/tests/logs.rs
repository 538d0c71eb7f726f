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
