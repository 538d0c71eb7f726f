//! `/api/v1/auth/*` and `/api/v1/invitations/*`.

use crate::support::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test]
async fn registration_mails_a_code_and_verifying_it_logs_in() {
    let app = TestApp::new();
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "neu@example.com", "first_name": "Nina", "last_name": "Neu",
                   "password": PASSWORD, "password_confirmation": PASSWORD, "language": "en"}),
        )
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    assert!(r.body["code_expires_at"].is_string());
    assert!(
        c.cookie("portal-session").is_none(),
        "no session before the code"
    );

    // wrong, malformed, then right
    let wrong = if app.secret_for("neu@example.com") == "000000" {
        "111111"
    } else {
        "000000"
    };
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": wrong}),
    )
    .await
    .assert(400, "invalid_code");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": "12"}),
    )
    .await
    .assert(400, "malformed_code");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": "nope", "code": "123456"}),
    )
    .await
    .assert(400, "invalid_ticket");
    let code = app.secret_for("neu@example.com");
    let r = c
        .post(
            "/api/v1/auth/register/verify",
            json!({"ticket": ticket, "code": code}),
        )
        .await;
    let body = r.ok(201);
    assert_eq!(body["user"]["email"], "neu@example.com");
    assert_eq!(body["user"]["status"], "active");
    assert_eq!(body["user"]["language"], "en");
    assert!(body["csrf_token"].is_string());
    assert!(c.cookie("portal-session").is_some());
    c.get("/api/v1/me").await.ok(200);
}

#[tokio::test]
async fn registering_an_existing_address_answers_the_same() {
    let app = TestApp::new();
    app.registered("da@example.com").await;
    let c = app.client();
    let body = json!({"email": "da@example.com", "first_name": "X", "last_name": "Y",
                      "password": PASSWORD, "password_confirmation": PASSWORD});
    let r = c.post("/api/v1/auth/register", body).await;
    r.ok(202);
    assert!(r.body["ticket"].is_string());
}

#[tokio::test]
async fn registration_refuses_bad_passwords_with_the_rule() {
    let app = TestApp::new();
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "x@example.com", "first_name": "X", "last_name": "Y",
                   "password": "kurz", "password_confirmation": "kurz"}),
        )
        .await;
    r.assert(422, "password_policy");
    assert_eq!(r.body["error"]["details"]["rule"], "too_short");
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "x@example.com", "first_name": "X", "last_name": "Y",
                   "password": PASSWORD, "password_confirmation": "anders anders anders"}),
        )
        .await;
    assert_eq!(r.body["error"]["details"]["rule"], "confirmation_mismatch");
    c.post(
        "/api/v1/auth/register",
        json!({"email": "no-at-sign", "first_name": "X", "last_name": "Y",
               "password": PASSWORD, "password_confirmation": PASSWORD}),
    )
    .await
    .assert(400, "invalid_request");
    c.post(
        "/api/v1/auth/register",
        json!({"email": "x@example.com", "first_name": "X", "last_name": "Y",
               "password": PASSWORD, "password_confirmation": PASSWORD, "language": "fr"}),
    )
    .await
    .assert(400, "invalid_request");
}

#[tokio::test]
async fn retry_after_rounds_up_so_waiting_that_long_is_enough() {
    let app = TestApp::new();
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "r@example.com", "first_name": "R", "last_name": "S",
                   "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    // 1.5 s of the 60 s cooldown left: rounded down, `Retry-After: 1` was refused again.
    app.advance(TimeDelta::milliseconds(58_500));
    let r = c
        .post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await;
    r.assert(429, "too_soon");
    let secs: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(secs, 2, "{:?}", r.headers);
    app.advance(TimeDelta::seconds(secs));
    c.post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await
        .ok(202);
}

#[tokio::test]
async fn resending_a_code_waits_for_the_cooldown() {
    let app = TestApp::new();
    let c = app.client();
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": "r@example.com", "first_name": "R", "last_name": "S",
                   "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    let r = c
        .post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await;
    r.assert(429, "too_soon");
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body["error"]["details"]["retry_at"].is_string());
    app.advance(TimeDelta::minutes(2));
    c.post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await
        .ok(202);
    c.post("/api/v1/auth/register/resend", json!({"ticket": "garbage"}))
        .await
        .assert(400, "invalid_ticket");
}

#[tokio::test]
async fn a_login_ends_the_session_the_browser_carried() {
    let app = TestApp::new();
    app.registered("l@example.com").await;
    let c = app.login("l@example.com").await;
    let kept = c.fork();
    let first = c.cookie("portal-session").unwrap();
    c.post(
        "/api/v1/auth/login",
        json!({"email": "l@example.com", "password": PASSWORD}),
    )
    .await
    .ok(200);
    assert_ne!(c.cookie("portal-session").unwrap(), first);
    c.get("/api/v1/me").await.ok(200);
    assert_eq!(kept.cookie("portal-session").unwrap(), first);
    kept.get("/api/v1/me").await.assert(401, "unauthenticated");
}

#[tokio::test]
async fn login_failures_answer_alike_and_logout_ends_the_session_on_the_server() {
    let app = TestApp::new();
    app.registered("l@example.com").await;
    let c = app.client();
    for (email, pw) in [
        ("l@example.com", "falsches passwort"),
        ("unknown@example.com", PASSWORD),
        ("not an address", PASSWORD),
    ] {
        let r = c
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": pw}),
            )
            .await;
        r.assert(401, "invalid_credentials");
        assert_eq!(
            r.body["error"]["message"],
            "Wrong e-mail or password (also for unknown, locked and unfinished accounts)."
        );
    }
    let c = app.login("l@example.com").await;
    let token = c.cookie("portal-session").unwrap();
    let stolen = c.fork();
    c.get("/api/v1/me").await.ok(200);
    let r = c.post_empty("/api/v1/auth/logout").await;
    r.ok(204);
    let cleared = r.cookie("__Host-portal-session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(c.cookie("portal-session").is_none());
    // The old cookie, replayed, is dead on the server.
    assert_eq!(stolen.cookie("portal-session").unwrap(), token);
    stolen
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
    // Logging out again without a session is fine.
    c.post_empty("/api/v1/auth/logout").await.ok(204);
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_with_retry_after() {
    let app = TestApp::new();
    app.registered("t@example.com").await;
    let c = app.client();
    let mut last = None;
    for _ in 0..30 {
        let r = c
            .post(
                "/api/v1/auth/login",
                json!({"email": "t@example.com", "password": "falsch falsch"}),
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r);
            break;
        }
        r.assert(401, "invalid_credentials");
    }
    let r = last.expect("throttled after repeated failures");
    r.assert(429, "throttled");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn password_reset_sets_a_new_password_and_ends_sessions() {
    let app = TestApp::new();
    app.registered("p@example.com").await;
    let old = app.login("p@example.com").await;
    let c = app.client();
    c.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "p@example.com"}),
    )
    .await
    .ok(202);
    c.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "nobody@example.com"}),
    )
    .await
    .ok(202);
    app.process_reset_requests().await;
    let token = app.secret_for("p@example.com");
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": token, "password": "kurz", "password_confirmation": "kurz"}),
    )
    .await
    .assert(422, "password_policy");
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .ok(204);
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .assert(410, "link_used");
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": "x", "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .assert(400, "invalid_link");
    old.get("/api/v1/me").await.assert(401, "unauthenticated");
    c.post(
        "/api/v1/auth/login",
        json!({"email": "p@example.com", "password": NEW_PASSWORD}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn expired_reset_links_answer_410() {
    let app = TestApp::new();
    app.registered("q@example.com").await;
    let c = app.client();
    c.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "q@example.com"}),
    )
    .await
    .ok(202);
    app.process_reset_requests().await;
    let token = app.secret_for("q@example.com");
    app.advance(TimeDelta::hours(2));
    c.post(
        "/api/v1/auth/password/reset",
        json!({"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}),
    )
    .await
    .assert(410, "link_expired");
}

/// Sets up TOTP for a logged-in client; returns the secret.
pub async fn enable_totp(app: &TestApp, c: &Client) -> (String, Option<String>) {
    let setup = c.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.ok(201)["secret"].as_str().unwrap().to_owned();
    assert!(
        setup.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(setup.body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(setup.headers["cache-control"], "no-store");
    let code = totp_code(app, &secret);
    let r = c
        .post("/api/v1/me/mfa/totp/confirm", json!({"code": code}))
        .await;
    let recovery = r.ok(200)["recovery_code"].as_str().map(ToOwned::to_owned);
    (secret, recovery)
}

#[tokio::test]
async fn a_second_factor_login_goes_through_the_pending_cookie_and_can_remember_the_device() {
    let app = TestApp::new();
    app.registered("m@example.com").await;
    let c = app.login("m@example.com").await;
    let (secret, recovery) = enable_totp(&app, &c).await;
    assert!(recovery.is_some());
    app.advance(TimeDelta::seconds(31));

    let b = app.client();
    let r = b
        .post(
            "/api/v1/auth/login",
            json!({"email": "m@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    assert!(b.cookie("portal-session").is_none());
    assert!(b.cookie("portal-mfa").is_some());
    // The pending cookie is no session.
    b.get("/api/v1/me").await.assert(401, "unauthenticated");
    // Garbage, then a wrong code, then the right one.
    b.post(
        "/api/v1/auth/login/mfa",
        json!({"method": "totp", "code": "abc"}),
    )
    .await
    .assert(400, "malformed_code");
    let code = totp_code(&app, &secret);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.post(
        "/api/v1/auth/login/mfa",
        json!({"method": "totp", "code": wrong}),
    )
    .await
    .assert(400, "invalid_code");
    let r = b
        .post(
            "/api/v1/auth/login/mfa",
            json!({"method": "totp", "code": code, "remember_device": true}),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(body["user"]["email"], "m@example.com");
    assert_eq!(body["device_remembered"], true);
    let device = r.cookie("__Host-portal-device").unwrap();
    assert!(device.contains("Max-Age=2592000"), "{device}");
    assert!(r.cookie("__Host-portal-mfa").unwrap().contains("Max-Age=0"));
    b.get("/api/v1/me").await.ok(200);

    // The pending cookie died with the step.
    b.post(
        "/api/v1/auth/login/mfa",
        json!({"method": "totp", "code": code}),
    )
    .await
    .assert(401, "no_pending_login");

    // Logout keeps the device; the next login skips the second factor.
    b.post_empty("/api/v1/auth/logout").await.ok(204);
    assert!(b.cookie("portal-device").is_some());
    let r = b
        .post(
            "/api/v1/auth/login",
            json!({"email": "m@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "authenticated");
    // Forgetting the device ends it.
    b.post("/api/v1/auth/logout", json!({"forget_device": true}))
        .await
        .ok(204);
    assert!(b.cookie("portal-device").is_none());
    let r = b
        .post(
            "/api/v1/auth/login",
            json!({"email": "m@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
}

#[tokio::test]
async fn the_recovery_code_finishes_a_login_and_is_replaced() {
    let app = TestApp::new();
    app.registered("rc@example.com").await;
    let c = app.login("rc@example.com").await;
    let (_, recovery) = enable_totp(&app, &c).await;
    let b = app.client();
    b.post(
        "/api/v1/auth/login",
        json!({"email": "rc@example.com", "password": PASSWORD}),
    )
    .await
    .ok(200);
    let r = b
        .post(
            "/api/v1/auth/login/mfa",
            json!({"method": "recovery_code", "code": recovery.unwrap()}),
        )
        .await;
    let body = r.ok(200);
    assert_eq!(body["choose_new_factor"], true);
    assert!(body["recovery_code"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn pending_steps_can_ask_for_phone_and_recovery_codes() {
    let app = TestApp::new();
    app.registered("ph@example.com").await;
    let c = app.login("ph@example.com").await;
    // Set up a phone factor.
    c.post(
        "/api/v1/me/mfa/phone",
        json!({"phone": "+49 170 1234567", "channel": "sms"}),
    )
    .await
    .ok(202);
    let code = app.sms.last_code_to("+491701234567").unwrap();
    c.post("/api/v1/me/mfa/phone/confirm", json!({"code": code}))
        .await
        .ok(200);
    let b = app.client();
    b.post(
        "/api/v1/auth/login",
        json!({"email": "ph@example.com", "password": PASSWORD}),
    )
    .await
    .ok(200);
    b.post_empty("/api/v1/auth/login/mfa/phone-code")
        .await
        .ok(202);
    let code = app.sms.last_code_to("+491701234567").unwrap();
    // No recovery channel yet.
    b.post_empty("/api/v1/auth/login/mfa/recovery-code")
        .await
        .assert(400, "no_such_factor");
    b.post(
        "/api/v1/auth/login/mfa",
        json!({"method": "phone_code", "code": code}),
    )
    .await
    .ok(200);
    // Without a pending step.
    app.client()
        .post_empty("/api/v1/auth/login/mfa/phone-code")
        .await
        .assert(401, "no_pending_login");
}

#[tokio::test]
async fn reauthentication_rotates_the_session_and_opens_the_step_up_window() {
    let app = TestApp::new();
    app.registered("s@example.com").await;
    let c = app.login("s@example.com").await;
    let before = c.cookie("portal-session").unwrap();
    app.advance(TimeDelta::minutes(20));
    c.post("/api/v1/me/email", json!({"email": "s2@example.com"}))
        .await
        .assert(403, "reauth_required");
    c.post(
        "/api/v1/auth/reauthenticate",
        json!({"password": "falsch falsch"}),
    )
    .await
    .assert(400, "wrong_password");
    let r = c
        .post("/api/v1/auth/reauthenticate", json!({"password": PASSWORD}))
        .await;
    assert!(r.ok(200)["csrf_token"].is_string());
    let after = c.cookie("portal-session").unwrap();
    assert_ne!(before, after);
    c.post("/api/v1/me/email", json!({"email": "s2@example.com"}))
        .await
        .ok(202);
    // With a second factor, the factor is required.
    let (secret, _) = enable_totp(&app, &c).await;
    app.advance(TimeDelta::seconds(31));
    c.post("/api/v1/auth/reauthenticate", json!({"password": PASSWORD}))
        .await
        .assert(400, "mfa_required");
    let code = totp_code(&app, &secret);
    c.post(
        "/api/v1/auth/reauthenticate",
        json!({"password": PASSWORD, "factor": {"method": "totp", "code": code}}),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn invitations_show_and_accept() {
    let app = TestApp::new();
    let op = app.operator("op@example.com").await;
    app.customer("100000001").await;
    let admin = app.admin("a@example.com", "100000001", &op).await;
    app.portal
        .invite_user(
            &admin,
            &number("100000001"),
            portal_core::service::Invite {
                email: email("inv@example.com"),
                first_name: name("Ina"),
                last_name: name("Vite"),
                language: portal_core::values::Language::En,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    let token = app.secret_for("inv@example.com");
    let c = app.client();
    let r = c.get(&format!("/api/v1/invitations/{token}")).await;
    let body = r.ok(200);
    assert_eq!(body["email"], "inv@example.com");
    assert_eq!(body["customer_name"], "Firma 100000001");
    assert_eq!(body["role"], "employee");
    c.get("/api/v1/invitations/garbage")
        .await
        .assert(404, "not_found");
    c.post(
        &format!("/api/v1/invitations/{token}/accept"),
        json!({"password": "kurz", "password_confirmation": "kurz"}),
    )
    .await
    .assert(422, "password_policy");
    let r = c
        .post(
            &format!("/api/v1/invitations/{token}/accept"),
            json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    let code = app.secret_for("inv@example.com");
    let r = c
        .post(
            "/api/v1/auth/register/verify",
            json!({"ticket": ticket, "code": code}),
        )
        .await;
    assert_eq!(r.ok(201)["user"]["customer_number"], "100000001");
    c.get(&format!("/api/v1/invitations/{token}"))
        .await
        .assert(410, "invitation_used");
}

#[tokio::test]
async fn an_invitation_link_expires_after_its_ttl() {
    let app = TestApp::new();
    let op = app.operator("op@example.com").await;
    app.customer("100000001").await;
    let admin = app.admin("a@example.com", "100000001", &op).await;
    let token = app
        .invite(&admin, "100000001", "late@example.com", &[])
        .await;
    let c = app.client();
    c.get(&format!("/api/v1/invitations/{token}")).await.ok(200);
    // Seven days by default (`PortalConfig::invitation_ttl`): at the last second it still opens.
    app.advance(TimeDelta::days(7) - TimeDelta::seconds(1));
    c.get(&format!("/api/v1/invitations/{token}")).await.ok(200);
    app.advance(TimeDelta::seconds(1));
    c.get(&format!("/api/v1/invitations/{token}"))
        .await
        .assert(410, "invitation_expired");
    c.post(
        &format!("/api/v1/invitations/{token}/accept"),
        json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
    )
    .await
    .assert(410, "invitation_expired");
    assert!(
        app.mails_to("late@example.com")
            .iter()
            .all(|m| m.intent.key() != "verification_code"),
        "no code was mailed for an expired link"
    );
}

#[tokio::test]
async fn a_code_for_an_invitation_that_disappeared_meanwhile_is_refused() {
    use portal_core::ports::{Commit, Committer as _, Write};
    use portal_core::token::TokenPurpose;
    let app = TestApp::new();
    let op = app.operator("op@example.com").await;
    app.customer("100000001").await;
    let admin = app.admin("a@example.com", "100000001", &op).await;
    let token = app
        .invite(&admin, "100000001", "inv@example.com", &[])
        .await;
    let c = app.client();
    let r = c
        .post(
            &format!("/api/v1/invitations/{token}/accept"),
            json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    let code = app.secret_for("inv@example.com");
    // Between reading the registration and its invitation, a concurrent request (an
    // administrator's "send again" on another server) removed the invitation. Sequential
    // requests never see that state — every writer that drops an invitation also drops its
    // registrations — so the test removes the invitation alone, as the race would leave it.
    let user = app.user_id("inv@example.com").await;
    let mut commit = Commit::new();
    commit.write(Write::DeleteActionTokensOfUser {
        user,
        purpose: Some(TokenPurpose::Invitation),
    });
    app.store.commit(commit).await.unwrap();
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": code}),
    )
    .await
    .assert(400, "invitation_invalid");
    assert!(c.cookie("portal-session").is_none(), "no session");
    let stored = app.portal.deps().queries.user(user).await.unwrap().unwrap();
    assert_eq!(stored.status(), portal_core::user::UserStatus::Invited);
}

/// Registers `address` through the API; returns the ticket and the mailed code.
async fn register(app: &TestApp, c: &Client, address: &str) -> (String, String) {
    let r = c
        .post(
            "/api/v1/auth/register",
            json!({"email": address, "first_name": "Nina", "last_name": "Neu",
                   "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    (ticket, app.secret_for(address))
}

#[tokio::test]
async fn a_registration_code_expires_and_a_new_one_works() {
    let app = TestApp::new();
    let c = app.client();
    let (ticket, code) = register(&app, &c, "slow@example.com").await;
    // 15 minutes by default (`CodePolicy::ttl`).
    app.advance(TimeDelta::minutes(15));
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": code}),
    )
    .await
    .assert(400, "code_expired");
    assert!(c.cookie("portal-session").is_none());
    c.post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await
        .ok(202);
    let fresh = app.secret_for("slow@example.com");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": fresh}),
    )
    .await
    .ok(201);
}

#[tokio::test]
async fn a_registration_runs_out_of_codes() {
    let app = TestApp::new();
    let c = app.client();
    let (ticket, _) = register(&app, &c, "many@example.com").await;
    // Five sends per registration by default (`CodePolicy::max_sends`), the first included.
    for _ in 0..4 {
        app.advance(TimeDelta::seconds(60));
        c.post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
            .await
            .ok(202);
    }
    app.advance(TimeDelta::seconds(60));
    c.post("/api/v1/auth/register/resend", json!({"ticket": ticket}))
        .await
        .assert(400, "too_many_codes");
    // The last code still confirms the registration.
    let code = app.secret_for("many@example.com");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": code}),
    )
    .await
    .ok(201);
}

#[tokio::test]
async fn of_two_registrations_of_one_address_the_first_confirmed_wins() {
    let app = TestApp::new();
    let first = app.client();
    let second = app.client();
    let (t1, c1) = register(&app, &first, "twice@example.com").await;
    let (t2, c2) = register(&app, &second, "twice@example.com").await;
    assert_ne!(t1, t2);
    second
        .post(
            "/api/v1/auth/register/verify",
            json!({"ticket": t2, "code": c2}),
        )
        .await
        .ok(201);
    first
        .post(
            "/api/v1/auth/register/verify",
            json!({"ticket": t1, "code": c1}),
        )
        .await
        .assert(409, "already_registered");
    assert!(first.cookie("portal-session").is_none());
    second.get("/api/v1/me").await.ok(200);
}

#[tokio::test]
async fn a_used_up_second_step_clears_its_cookie() {
    let app = TestApp::new();
    app.registered("u@example.com").await;
    let c = app.login("u@example.com").await;
    let (secret, _) = enable_totp(&app, &c).await;
    let b = app.client();
    b.post(
        "/api/v1/auth/login",
        json!({"email": "u@example.com", "password": PASSWORD}),
    )
    .await
    .ok(200);
    let code = totp_code(&app, &secret);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut last = None;
    for _ in 0..10 {
        // Past the per-factor throttle's delay, within the step's lifetime.
        app.advance(TimeDelta::seconds(30));
        let r = b
            .post(
                "/api/v1/auth/login/mfa",
                json!({"method": "totp", "code": wrong}),
            )
            .await;
        if r.code() != "invalid_code" {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("the step gets used up");
    r.assert(400, "too_many_attempts");
    assert!(r.cookie("__Host-portal-mfa").unwrap().contains("Max-Age=0"));
    assert!(b.cookie("portal-mfa").is_none());
}

/// Issue 12's lock-out attack over HTTP: wrong passwords for the account from address A every
/// five minutes for 24 hours. Every three hours the user signs in at the first try, from a new
/// browser at address B and from the browser at A that signed in before (its known-browser
/// cookie). Before, the account-wide lockout answered `throttled` to both.
#[tokio::test]
async fn an_attacker_failing_all_day_from_one_address_never_keeps_the_user_out() {
    let app = TestApp::new();
    app.registered("v@example.com").await;
    let home = app.login("v@example.com").await;
    let mark = home.cookie("portal-known-browser").expect("set at login");
    let user = app.user_id("v@example.com").await;
    assert!(
        !mark.contains(&user.to_string()) && !mark.contains("v@example.com"),
        "the account is not in the cookie in clear: {mark}"
    );
    let attacker = app.client();
    assert_eq!(attacker.ip, home.ip, "same address A");
    let login = |c: &Client, password: &str| {
        let c = c.clone();
        let body = json!({"email": "v@example.com", "password": password});
        async move { c.post("/api/v1/auth/login", body).await }
    };
    let (mut guesses, mut throttled) = (0, 0);
    for minute in (0..24 * 60).step_by(5) {
        let r = login(&attacker, "rate mal").await;
        match r.status.as_u16() {
            401 => guesses += 1,
            429 => throttled += 1,
            other => panic!("minute {minute}: {other} {}", r.body),
        }
        if minute % 180 == 90 {
            let mut fresh = app.client();
            fresh.ip = "203.0.113.5".parse().unwrap();
            let r = login(&fresh, PASSWORD).await;
            assert_eq!(r.status, 200, "minute {minute}, from B: {}", r.body);
            let r = login(&home, PASSWORD).await;
            assert_eq!(
                r.status, 200,
                "minute {minute}, known browser at A: {}",
                r.body
            );
        }
        app.advance(TimeDelta::minutes(5));
    }
    assert!(guesses <= 10 + 24, "{guesses} guesses from A");
    assert!(throttled > 200, "{throttled}");
    // A browser at A without the cookie, or with a forged one, is still held to A's block.
    let forged = app.client();
    forged.set_cookie("portal-known-browser", &mark.replace('.', "x."));
    for c in [app.client(), forged] {
        login(&c, PASSWORD).await.assert(429, "throttled");
    }
}
