//! Cross-cutting behaviour: headers, cookies, CSRF, content types, limits, error shape, request
//! ids, logs, probes, and the OpenAPI document against the route table.

use crate::support::*;
use adapters_http::{AppState, CookieKey, HttpConfig, RateLimit, RateLimits, Readiness, router};
use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::test]
async fn every_response_has_the_security_headers_and_no_server_header() {
    let app = TestApp::new();
    let c = app.client();
    for r in [
        c.get("/api/v1/auth/csrf").await,
        c.get("/api/v1/me").await,
        c.get("/healthz").await,
        c.get("/nowhere").await,
    ] {
        let h = &r.headers;
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        assert!(!h.contains_key("server"));
        assert!(h.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn authenticated_and_token_bearing_answers_are_not_cached() {
    let app = TestApp::new();
    app.registered("n@example.com").await;
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/login",
            json!({"email": "n@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        c.get("/api/v1/me").await.headers["cache-control"],
        "no-store"
    );
    assert_eq!(
        c.get("/api/v1/me/sessions").await.headers["cache-control"],
        "no-store"
    );
}

fn assert_cookie(set_cookie: &str, name: &str, same_site: &str, secure: bool) {
    let parts: Vec<&str> = set_cookie.split("; ").collect();
    assert!(parts[0].starts_with(&format!("{name}=")), "{set_cookie}");
    assert!(parts.contains(&"HttpOnly"), "{set_cookie}");
    assert!(parts.contains(&"Path=/"), "{set_cookie}");
    assert!(
        parts.contains(&format!("SameSite={same_site}").as_str()),
        "{set_cookie}"
    );
    assert_eq!(parts.contains(&"Secure"), secure, "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "{set_cookie}"
    );
    assert!(set_cookie.len() < 4096);
}

async fn every_cookie(app: &TestApp, prefix: &str, secure: bool) {
    app.registered("k@example.com").await;
    let c = app.client();
    let r = c.get("/api/v1/auth/csrf").await;
    assert_cookie(
        &r.cookie(&format!("{prefix}portal-csrf")).unwrap(),
        &format!("{prefix}portal-csrf"),
        "Strict",
        secure,
    );
    let r = c
        .post(
            "/api/v1/auth/login",
            json!({"email": "k@example.com", "password": PASSWORD}),
        )
        .await;
    let session = r.cookie(&format!("{prefix}portal-session")).unwrap();
    assert_cookie(&session, &format!("{prefix}portal-session"), "Lax", secure);
    // The cookie is opaque: no id, no address.
    let value = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    assert!(
        !value.contains("k@example.com") && value.len() >= 43,
        "{value}"
    );
    // MFA: the pending and device cookies.
    let setup = c.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = totp_code(app, &secret);
    c.post("/api/v1/me/mfa/totp/confirm", json!({"code": code}))
        .await
        .ok(200);
    app.advance(chrono::TimeDelta::seconds(31));
    let b = app.client();
    let r = b
        .post(
            "/api/v1/auth/login",
            json!({"email": "k@example.com", "password": PASSWORD}),
        )
        .await;
    assert_cookie(
        &r.cookie(&format!("{prefix}portal-mfa")).unwrap(),
        &format!("{prefix}portal-mfa"),
        "Strict",
        secure,
    );
    let code = totp_code(app, &secret);
    let r = b
        .post(
            "/api/v1/auth/login/mfa",
            json!({"method": "totp", "code": code, "remember_device": true}),
        )
        .await;
    assert_cookie(
        &r.cookie(&format!("{prefix}portal-device")).unwrap(),
        &format!("{prefix}portal-device"),
        "Strict",
        secure,
    );
    assert_cookie(
        &r.cookie(&format!("{prefix}portal-session")).unwrap(),
        &format!("{prefix}portal-session"),
        "Lax",
        secure,
    );
    let r = b.post_empty("/api/v1/auth/logout").await;
    let cleared = r.cookie(&format!("{prefix}portal-session")).unwrap();
    assert_cookie(&cleared, &format!("{prefix}portal-session"), "Lax", secure);
    assert!(cleared.contains("Max-Age=0"));
}

#[tokio::test]
async fn cookies_are_host_prefixed_secure_httponly_samesite_path_root_without_domain() {
    every_cookie(&TestApp::new(), "__Host-", true).await;
}

#[tokio::test]
async fn the_development_switch_drops_only_secure_and_the_prefix() {
    let config = http_config().insecure_development_cookies();
    let app = TestApp::with(config, |_| {});
    every_cookie(&app, "", false).await;
    let r = app.client().get("/healthz").await;
    assert!(!r.headers.contains_key("strict-transport-security"));
}

#[tokio::test]
async fn unsafe_requests_without_the_right_csrf_token_are_refused() {
    let app = TestApp::new();
    app.registered("c@example.com").await;
    let c = app.login("c@example.com").await;
    let body = json!({"first_name": "Neu", "last_name": "Name", "language": "de"});
    // Missing.
    let r = c
        .send(Req {
            csrf: false,
            body: Some(("application/json".into(), body.to_string())),
            ..Client::req(Method::PUT, "/api/v1/me")
        })
        .await;
    r.assert(403, "csrf_failed");
    // Wrong.
    let r = c
        .send(Req {
            csrf: false,
            headers: vec![("x-csrf-token".into(), "not-the-token".into())],
            body: Some(("application/json".into(), body.to_string())),
            ..Client::req(Method::PUT, "/api/v1/me")
        })
        .await;
    r.assert(403, "csrf_failed");
    // Another session's token.
    app.registered("d@example.com").await;
    let other = app.login("d@example.com").await;
    let foreign = other.csrf_token().await;
    let r = c
        .send(Req {
            csrf: false,
            headers: vec![("x-csrf-token".into(), foreign)],
            body: Some(("application/json".into(), body.to_string())),
            ..Client::req(Method::PUT, "/api/v1/me")
        })
        .await;
    r.assert(403, "csrf_failed");
    // Cross-site fetch metadata and foreign origins, even with the right token.
    for (h, v) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example.com"),
        ("origin", "null"),
    ] {
        let r = c
            .send(Req {
                headers: vec![(h.into(), v.into())],
                body: Some(("application/json".into(), body.to_string())),
                ..Client::req(Method::PUT, "/api/v1/me")
            })
            .await;
        r.assert(403, "csrf_failed");
    }
    // Same origin with the token works.
    let r = c
        .send(Req {
            headers: vec![
                ("origin".into(), ORIGIN.into()),
                ("sec-fetch-site".into(), "same-origin".into()),
            ],
            body: Some(("application/json".into(), body.to_string())),
            ..Client::req(Method::PUT, "/api/v1/me")
        })
        .await;
    r.ok(200);
}

#[tokio::test]
async fn login_and_registration_need_the_pre_session_token_too() {
    let app = TestApp::new();
    app.registered("pre@example.com").await;
    let c = app.client();
    let r = c
        .send(Req {
            csrf: false,
            body: Some((
                "application/json".into(),
                json!({"email": "pre@example.com", "password": PASSWORD}).to_string(),
            )),
            ..Client::req(Method::POST, "/api/v1/auth/login")
        })
        .await;
    r.assert(403, "csrf_failed");
    // A token computed for another browser's nonce fails (login CSRF).
    let attacker = app.client();
    let token = attacker.csrf_token().await;
    c.csrf_token().await;
    let r = c
        .send(Req {
            csrf: false,
            headers: vec![("x-csrf-token".into(), token)],
            body: Some((
                "application/json".into(),
                json!({"email": "pre@example.com", "password": PASSWORD}).to_string(),
            )),
            ..Client::req(Method::POST, "/api/v1/auth/login")
        })
        .await;
    r.assert(403, "csrf_failed");
    let r = c
        .send(Req {
            csrf: false,
            body: Some(("application/json".into(), "{}".into())),
            ..Client::req(Method::POST, "/api/v1/auth/register")
        })
        .await;
    r.assert(403, "csrf_failed");
}

#[tokio::test]
async fn bodies_must_be_json_and_small() {
    let app = TestApp::new();
    let c = app.client();
    let login = json!({"email": "x@example.com", "password": PASSWORD}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/csv",
    ] {
        c.raw(Method::POST, "/api/v1/auth/login", ct, &login)
            .await
            .assert(415, "unsupported_media_type");
    }
    // A body without a content type.
    let r = c
        .send(Req {
            body: None,
            headers: vec![("content-length".into(), "3".into())],
            ..Client::req(Method::POST, "/api/v1/auth/login")
        })
        .await;
    r.assert(415, "unsupported_media_type");
    // Oversize: declared, and streamed without a declared length.
    let big = format!(
        "{{\"email\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(70_000)
    );
    let r = c
        .send(Req {
            headers: vec![("content-length".into(), big.len().to_string())],
            body: Some(("application/json".into(), big.clone())),
            ..Client::req(Method::POST, "/api/v1/auth/login")
        })
        .await;
    r.assert(413, "payload_too_large");
    c.raw(Method::POST, "/api/v1/auth/login", "application/json", &big)
        .await
        .assert(413, "payload_too_large");
    // The customer import's route carries its own, larger limit: a file of the same size passes
    // its guard (and meets the login check); one beyond its limit does not.
    let csv = format!(
        "number,name,products,channel\n{}",
        "D100000001,Muster GmbH,,direct\n".repeat(3_000)
    );
    assert!(csv.len() > 70_000);
    let r = c
        .send(Req {
            headers: vec![("content-length".into(), csv.len().to_string())],
            body: Some(("text/csv".into(), csv)),
            ..Client::req(Method::POST, "/api/v1/operator/customers/import")
        })
        .await;
    r.assert(401, "unauthenticated");
    let r = c
        .send(Req {
            headers: vec![("content-length".into(), (3 * 1024 * 1024).to_string())],
            body: Some(("text/csv".into(), String::new())),
            ..Client::req(Method::POST, "/api/v1/operator/customers/import")
        })
        .await;
    r.assert(413, "payload_too_large");
    // Malformed, unknown field, wrong types, missing field.
    c.raw(
        Method::POST,
        "/api/v1/auth/login",
        "application/json",
        "{\"email\": ",
    )
    .await
    .assert(400, "malformed_json");
    c.raw(
        Method::POST,
        "/api/v1/auth/login",
        "application/json",
        "not json",
    )
    .await
    .assert(400, "malformed_json");
    c.post(
        "/api/v1/auth/login",
        json!({"email": "x@example.com", "password": "y", "admin": true}),
    )
    .await
    .assert(400, "unknown_field");
    let r = c
        .post(
            "/api/v1/auth/login",
            json!({"email": 5, "password": "geheim geheim"}),
        )
        .await;
    r.assert(400, "invalid_request");
    assert!(!r.text.contains("geheim"));
    c.post("/api/v1/auth/login", json!({"email": "x@example.com"}))
        .await
        .assert(400, "invalid_request");
    c.post("/api/v1/auth/login", json!([1, 2]))
        .await
        .assert(400, "invalid_request");
    // application/json with a charset is fine.
    c.raw(
        Method::POST,
        "/api/v1/auth/login",
        "application/json; charset=utf-8",
        &login,
    )
    .await
    .assert(401, "invalid_credentials");
}

#[tokio::test]
async fn bad_path_values_get_their_own_codes() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let c = &t.admin_a;
    c.get("/api/v1/customers/12/users")
        .await
        .assert(400, "invalid_customer_number");
    c.get("/api/v1/customers/D1000000011/users")
        .await
        .assert(400, "invalid_customer_number");
    c.get("/api/v1/customers/100000001/users/not-a-uuid")
        .await
        .assert(400, "invalid_id");
    c.delete("/api/v1/me/sessions/42")
        .await
        .assert(400, "invalid_id");
    c.get("/api/v1/customers/100000001/users?per_page=abc")
        .await
        .assert(400, "invalid_request");
    c.get("/api/v1/customers/100000001/users?per_page=0")
        .await
        .assert(400, "invalid_page_size");
    c.get("/api/v1/customers/100000001/users?cursor=%21%21")
        .await
        .assert(400, "invalid_cursor");
    // The printed form works.
    c.get("/api/v1/customers/D100000001/users").await.ok(200);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::new();
    let c = app.client();
    let r = c.get("/api/v1/nothing-here").await;
    r.assert(404, "not_found");
    let r = c.send(Client::req(Method::PATCH, "/api/v1/me")).await;
    r.assert(405, "method_not_allowed");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut config = http_config();
    config.rate_limits.login = RateLimit::new(3, 1);
    config.rate_limits.registration = RateLimit::new(1, 1);
    let app = TestApp::with(config, |_| {});
    let c = app.client();
    for _ in 0..3 {
        c.post(
            "/api/v1/auth/login",
            json!({"email": "x@example.com", "password": "y"}),
        )
        .await
        .assert(401, "invalid_credentials");
    }
    let r = c
        .post(
            "/api/v1/auth/login",
            json!({"email": "x@example.com", "password": "y"}),
        )
        .await;
    r.assert(429, "rate_limited");
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
    // Another address has its own budget.
    let mut other = app.client();
    other.ip = "203.0.113.50".parse().unwrap();
    other
        .post(
            "/api/v1/auth/login",
            json!({"email": "x@example.com", "password": "y"}),
        )
        .await
        .assert(401, "invalid_credentials");
    // Registration has its own.
    let reg = json!({"email": "r@example.com", "first_name": "R", "last_name": "S",
                     "password": PASSWORD, "password_confirmation": PASSWORD});
    c.post("/api/v1/auth/register", reg.clone()).await.ok(202);
    c.post("/api/v1/auth/register", reg)
        .await
        .assert(429, "rate_limited");
}

#[tokio::test]
async fn behind_trusted_proxies_the_forwarded_client_is_limited_and_others_cannot_pretend() {
    let mut config = http_config();
    config.rate_limits.login = RateLimit::new(1, 1);
    config.client_address = adapters_http::ClientAddressSource::XForwardedFor {
        proxies: vec!["10.0.0.1".parse().unwrap()],
    };
    let app = TestApp::with(config, |_| {});
    let login = json!({"email": "x@example.com", "password": "y"});
    let via_proxy = |client: &str| Req {
        headers: vec![("x-forwarded-for".into(), client.into())],
        body: Some(("application/json".into(), login.to_string())),
        ..Client::req(Method::POST, "/api/v1/auth/login")
    };
    let mut proxy = app.client();
    proxy.ip = "10.0.0.1".parse().unwrap();
    proxy
        .send(via_proxy("203.0.113.1"))
        .await
        .assert(401, "invalid_credentials");
    proxy
        .send(via_proxy("203.0.113.1"))
        .await
        .assert(429, "rate_limited");
    // Another client behind the same proxy has its own budget.
    proxy
        .send(via_proxy("203.0.113.2"))
        .await
        .assert(401, "invalid_credentials");
    // A direct client cannot choose its address by header.
    let direct = app.client();
    direct
        .send(via_proxy("203.0.113.99"))
        .await
        .assert(401, "invalid_credentials");
    direct
        .send(via_proxy("203.0.113.98"))
        .await
        .assert(429, "rate_limited");
}

#[tokio::test]
async fn bodiless_endpoints_refuse_foreign_bodies_too() {
    let app = TestApp::new();
    app.registered("nb@example.com").await;
    let c = app.login("nb@example.com").await;
    c.raw(
        Method::POST,
        "/api/v1/me/admin-request",
        "text/plain",
        "hello",
    )
    .await
    .assert(415, "unsupported_media_type");
    let r = c
        .send(Req {
            headers: vec![("content-length".into(), "9999999".into())],
            ..Client::req(Method::POST, "/api/v1/me/admin-request")
        })
        .await;
    r.assert(413, "payload_too_large");
}

#[tokio::test]
async fn request_ids_are_generated_or_taken_and_echoed() {
    let app = TestApp::new();
    let c = app.client();
    let r = c.get("/api/v1/me").await;
    let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(r.body["error"]["request_id"], id.as_str());
    let r = c
        .send(Req {
            headers: vec![("x-request-id".into(), "trace-123".into())],
            ..Client::req(Method::GET, "/api/v1/me")
        })
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-123");
    let r = c
        .send(Req {
            headers: vec![("x-request-id".into(), "bad id with spaces".into())],
            ..Client::req(Method::GET, "/healthz")
        })
        .await;
    assert_ne!(r.headers["x-request-id"], "bad id with spaces");
}

struct Down;

#[async_trait]
impl Readiness for Down {
    async fn check(&self) -> Result<(), String> {
        Err("connection refused".into())
    }
}

struct Hanging;

#[async_trait]
impl Readiness for Hanging {
    async fn check(&self) -> Result<(), String> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_readiness_check_answers_503_after_the_timeout() {
    let app = TestApp::new();
    let mut config = http_config();
    config.readiness_timeout = std::time::Duration::from_millis(10);
    let hanging = router(AppState::new(app.portal.clone(), config, Arc::new(Hanging)));
    let r = tower::ServiceExt::oneshot(
        hanging,
        axum::http::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn probes_tell_up_and_ready() {
    let app = TestApp::new();
    let c = app.client();
    assert_eq!(c.get("/healthz").await.ok(200)["status"], "ok");
    assert_eq!(c.get("/readyz").await.ok(200)["status"], "ok");
    let state = AppState::new(app.portal.clone(), http_config(), Arc::new(Down));
    let down = router(state);
    let r = tower::ServiceExt::oneshot(
        down,
        axum::http::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = axum::body::to_bytes(r.into_body(), 1000).await.unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("refused"));
}

#[tokio::test]
async fn openapi_and_swagger_ui_are_served_and_can_be_turned_off() {
    let app = TestApp::new();
    let c = app.client();
    let spec = c.get("/api/v1/openapi.json").await;
    assert_eq!(spec.ok(200)["openapi"], "3.1.0");
    let ui = c.get("/api/docs/").await;
    assert_eq!(ui.status, StatusCode::OK);
    assert!(
        ui.text.contains("swagger"),
        "{}",
        &ui.text[..ui.text.len().min(200)]
    );
    assert!(
        ui.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let init = c.get("/api/docs/swagger-initializer.js").await;
    assert!(
        init.text.contains("\"/api/v1/openapi.json\""),
        "{}",
        init.text
    );
    assert_eq!(spec.body["servers"][0]["url"], "/");
    let r = c.get("/api/docs").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/api/docs/");
    c.get("/api/docs/no-such-file.js")
        .await
        .assert(404, "not_found");
    let mut config = http_config();
    config.serve_openapi = false;
    let off = TestApp::with(config, |_| {});
    off.client()
        .get("/api/v1/openapi.json")
        .await
        .assert(404, "not_found");
    off.client()
        .get("/api/docs/")
        .await
        .assert(404, "not_found");
}

#[tokio::test]
async fn swagger_ui_and_the_document_work_nested_under_the_path_of_the_public_url() {
    let mut config = HttpConfig::new(
        "https://portal.example.com/portal/",
        CookieKey::from_bytes([5; 32]),
    )
    .unwrap();
    config.rate_limits = RateLimits::off();
    let app = TestApp::with(config, |_| {});
    let c = app
        .client()
        .on(axum::Router::new().nest("/portal", app.app.clone()));
    let r = c.get("/portal/api/docs").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/portal/api/docs/");
    let ui = c.get("/portal/api/docs/").await;
    assert_eq!(ui.status, StatusCode::OK);
    assert!(ui.text.contains("swagger-initializer.js"), "{}", ui.text);
    let init = c.get("/portal/api/docs/swagger-initializer.js").await;
    assert_eq!(init.status, StatusCode::OK);
    assert!(
        init.text.contains("\"/portal/api/v1/openapi.json\""),
        "{}",
        init.text
    );
    assert_eq!(
        c.get("/portal/api/docs/swagger-ui.css").await.status,
        StatusCode::OK
    );
    // The document it points at is there, and its paths resolve under its `servers` entry.
    let spec = c.get("/portal/api/v1/openapi.json").await;
    let server = spec.ok(200)["servers"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server, "/portal");
    assert!(spec.body["paths"]["/api/v1/auth/csrf"]["get"].is_object());
    let r = c.get(&format!("{server}/api/v1/auth/csrf")).await;
    assert!(r.ok(200)["csrf_token"].is_string());
}

/// Every operation of the document: (method, path template, security names).
fn operations(spec: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .flat_map(|r| r.as_object().unwrap().keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            out.push((method.to_uppercase(), path.clone(), security));
        }
    }
    out
}

fn fill(path: &str, id: &str) -> String {
    path.replace("{number}", "100000001")
        .replace("{id}", id)
        .replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .replace("{group}", "my_data")
}

#[tokio::test]
async fn the_document_and_the_route_table_match() {
    let app = TestApp::new();
    let c = app.client();
    let spec = c.get("/api/v1/openapi.json").await.body;
    let ops = operations(&spec);
    // Every documented operation is routed (no "no such endpoint", no 405).
    for (method, path, _) in &ops {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let r = c
            .send(Req {
                csrf: false,
                ..Client::req(
                    method.parse().unwrap(),
                    &fill(path, "00000000-0000-7000-8000-000000000001"),
                )
            })
            .await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            r.body["error"]["message"], "no such endpoint",
            "{method} {path}"
        );
    }
    // Every handler is registered through `routes!` and documented: the annotations in the
    // source, the registrations and the document's operations are the same count, and no route
    // bypasses the document but the probes and the document itself.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut annotated = 0;
    let mut registered = 0;
    for entry in std::fs::read_dir(src.join("api")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        annotated += text.matches("#[utoipa::path(").count();
        for group in text.split("routes!(").skip(1) {
            let inner = group.split(')').next().unwrap();
            registered += inner.split(',').filter(|h| !h.trim().is_empty()).count();
        }
        assert!(!text.contains(".route("), "a route outside the document");
    }
    assert_eq!(
        annotated,
        ops.len(),
        "annotated handlers vs documented operations"
    );
    assert_eq!(
        registered,
        ops.len(),
        "registered handlers vs documented operations"
    );
    // Outside the document, only the probes, the document itself and the Swagger UI
    // (`/api/docs`) are served under these prefixes (the web UI's pages are elsewhere).
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let compact: String = lib.split_whitespace().collect();
    for route in compact.split(".route(\"/api").skip(1) {
        assert!(
            route.starts_with("/v1/openapi.json\"") || route.starts_with("/docs"),
            "an /api route outside the document: /api{}",
            &route[..route.len().min(40)]
        );
    }
    for probe in ["\"/healthz\"", "\"/readyz\"", "\"/api/v1/openapi.json\""] {
        assert!(lib.contains(probe), "{probe}");
    }
    // Every operation documents its errors, with the error body.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}"
            );
            if method != "get" {
                assert!(
                    responses.contains_key("403"),
                    "{method} {path}: csrf_failed"
                );
            }
            for (status, r) in responses {
                if !status.starts_with('2') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    // Every reference resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push(x.as_str().unwrap().to_owned());
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&spec, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            spec["components"]["schemas"].get(name).is_some(),
            "dangling {r}"
        );
    }
    if let Ok(dir) = std::env::var("PORTAL_DUMP_OPENAPI") {
        std::fs::write(
            format!("{dir}/openapi.json"),
            serde_json::to_string_pretty(&spec).unwrap(),
        )
        .unwrap();
    }
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "__Host-portal-session");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
}

#[tokio::test]
async fn the_pending_second_step_reaches_no_endpoint_but_its_own() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    // The operator has an authenticator app (operators need one): a pending login for them,
    // in a browser that is not their remembered device.
    assert!(t.operator.get("/api/v1/me").await.ok(200)["mfa"]["enabled"] == true);
    let pending = app.client();
    let r = pending
        .post(
            "/api/v1/auth/login",
            json!({"email": "op@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
    let token = pending.cookie("portal-mfa").unwrap();
    let spec = pending.get("/api/v1/openapi.json").await.body;
    let mut checked = 0;
    for (method, path, security) in operations(&spec) {
        if !security.iter().any(|s| s == "session") || path == "/api/v1/auth/logout" {
            continue;
        }
        let url = fill(&path, &t.employee_a_id.to_string());
        // The pending cookie as it is…
        let r = pending
            .send(Req {
                body: Some(("application/json".into(), "{}".into())),
                ..Client::req(method.parse().unwrap(), &url)
            })
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.text
        );
        // …and its token smuggled into the session cookie.
        let smuggler = app.client();
        smuggler.set_cookie("portal-session", &token);
        let r = smuggler
            .send(Req {
                body: Some(("application/json".into(), "{}".into())),
                ..Client::req(method.parse().unwrap(), &url)
            })
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.text
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
}

#[tokio::test]
async fn client_mistakes_never_get_a_server_error() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let spec = t.admin_a.get("/api/v1/openapi.json").await.body;
    let bodies = [
        "",
        "{",
        "null",
        "[]",
        "{\"unknown\": 1}",
        "{\"email\": 1, \"password\": [], \"code\": {}, \"permissions\": \"x\"}",
        "\"\\u0000\"",
    ];
    for (method, path, _) in operations(&spec) {
        for id in ["garbage", "00000000-0000-7000-8000-00000000ffff"] {
            for url in [
                fill(&path, id),
                path.replace("{number}", "x").replace("{id}", id),
            ] {
                for body in bodies {
                    for who in [&t.admin_a, &t.operator] {
                        let r = who
                            .send(Req {
                                body: Some(("application/json".into(), body.into())),
                                ..Client::req(method.parse().unwrap(), &url)
                            })
                            .await;
                        assert!(r.status.as_u16() < 500, "{method} {url} {body}: {}", r.text);
                        if r.status.as_u16() >= 400 {
                            assert!(
                                r.body["error"]["code"].is_string(),
                                "{method} {url}: {}",
                                r.text
                            );
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_remembered_config_origin_is_the_only_accepted_origin() {
    let config = HttpConfig::new(
        "http://127.0.0.1:8080",
        adapters_http::CookieKey::generate(),
    )
    .unwrap()
    .insecure_development_cookies();
    assert_eq!(config.public_origin(), "http://127.0.0.1:8080");
}

/// The operations that document `429 rate_limited` are exactly the ones that answer it: with a
/// budget of one request per address, the second request of every operation from its own
/// address answers `rate_limited` when (and only when) its document lists that code. Every other
/// answer is checked against the document as in every test.
#[tokio::test]
async fn exactly_the_operations_documenting_429_are_rate_limited() {
    let one = RateLimit::new(1, 1);
    let mut config = http_config();
    config.rate_limits.login = one;
    config.rate_limits.mfa = one;
    config.rate_limits.registration = one;
    config.rate_limits.codes = one;
    config.rate_limits.password = one;
    let app = TestApp::with(config, |_| {});
    let op = app.operator("op@example.com").await;
    app.customer("100000001").await;
    app.admin("a@example.com", "100000001", &op).await;
    // The one login of the default address.
    let admin = app.login("a@example.com").await;
    let spec = app.spec.clone();
    let mut checked = 0;
    let mut limited = Vec::new();
    for (n, (template, item)) in spec["paths"].as_object().unwrap().iter().enumerate() {
        // Logging out would end the session the other operations are tried with.
        if template == "/api/v1/auth/logout" {
            continue;
        }
        let path = template
            .replace("{number}", "100000001")
            .replace("{id}", "0190d4a2-0000-7000-8000-000000000000")
            .replace("{token}", "not-a-token")
            .replace("{group}", "my_data");
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_ascii_uppercase().parse().unwrap();
            // Other 429 codes (a core throttle such as `throttled`) may share the status.
            let documented = op["responses"]["429"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("`rate_limited`"));
            // Each operation from its own address: the buckets are per address and shared by
            // the operations of a group.
            let mut c = admin.fork();
            c.ip = format!("198.51.{}.{}", n / 200, n % 200 + 1)
                .parse()
                .unwrap();
            let request = || {
                let mut r = Client::req(method.clone(), &path);
                if method != Method::GET {
                    r.body = Some(("application/json".into(), "{}".into()));
                }
                r
            };
            let first = c.send(request()).await;
            assert_ne!(
                first.status, 429,
                "{method} {template}: first request limited"
            );
            let second = c.send(request()).await;
            assert_eq!(
                second.body["error"]["code"] == "rate_limited",
                documented,
                "{method} {template}: answered {} ({}), 429 documented: {documented}",
                second.status,
                second.body
            );
            if documented {
                limited.push(format!("{method} {template}"));
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} operations");
    for op in [
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/register",
        "POST /api/v1/auth/password/forgot",
        "POST /api/v1/me/link/customer",
        "POST /api/v1/me/link/legacy",
    ] {
        assert!(limited.contains(&op.to_owned()), "{op} in {limited:?}");
    }
}
