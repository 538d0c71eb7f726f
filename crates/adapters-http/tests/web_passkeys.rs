//! Passkeys on the web pages (issue 16), without a browser: the security page lists them with
//! removal (step-up, the last required factor refused with a message), the login page and the
//! second step offer them, the script is served under the page CSP (no `unsafe-inline`), and
//! what the script does — the JSON API calls with the page's CSRF token, answered by the
//! software authenticator — gives a session the pages accept. `web_browser` runs the script in
//! Chromium.

use crate::support::passkey::Authenticator;
use crate::web_support::{Browser, ORIGIN, PAGE_CSP, PASSWORD, Page, Send, WebApp, number};
use axum::http::{Method, header};
use portal_core::Actor;
use portal_core::customer::SecondFactorPolicy;
use serde_json::{Value, json};

/// An API call as the script makes it: JSON, the page's CSRF token in `X-CSRF-Token`.
async fn api(b: &Browser, path: &str, body: Option<Value>) -> Page {
    let token = b.csrf().unwrap_or_default();
    b.send(Send {
        method: Method::POST,
        path,
        body: body.map(|v| ("application/json", v.to_string())),
        headers: vec![("x-csrf-token", token.as_str())],
        browser_headers: true,
    })
    .await
}

fn json_of(p: &Page) -> Value {
    serde_json::from_str(&p.text).unwrap_or_else(|_| panic!("{}: {}", p.status, p.text))
}

/// Adds a passkey named `name` as the security page's script does.
async fn add_passkey(b: &Browser, auth: &mut Authenticator, name: &str) -> Value {
    b.get("/mfa").await.ok();
    let start = api(b, "/api/v1/me/passkeys/options", None).await;
    assert_eq!(start.status, 200, "{}", start.text);
    let start = json_of(&start);
    let credential = auth.register(&start["public_key"], ORIGIN);
    let done = api(
        b,
        "/api/v1/me/passkeys",
        Some(
            json!({"challenge_id": start["challenge_id"], "name": name, "credential": credential}),
        ),
    )
    .await;
    assert_eq!(done.status, 201, "{}", done.text);
    json_of(&done)
}

/// The action of the first passkey removal form on `page`.
fn remove_action(page: &Page) -> String {
    let end = page.text.find("/remove\"").expect("a removal form");
    let start = page.text[..end].rfind("action=\"").unwrap() + "action=\"".len();
    let action = page.text[start..end + "/remove".len()].to_owned();
    assert!(action.starts_with("/mfa/passkeys/"), "{action}");
    action
}

#[tokio::test]
async fn the_script_is_served_and_the_pages_that_load_it_allow_no_inline_script() {
    let app = WebApp::new();
    let b = app.browser();
    let js = b.get("/assets/passkeys.js").await;
    js.ok();
    assert_eq!(
        js.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    js.has("navigator.credentials.create")
        .has("navigator.credentials.get")
        .has("X-CSRF-Token");
    let login = b.get("/login").await;
    login
        .ok()
        .has("<script src=\"/assets/passkeys.js\" defer></script>")
        .has("data-passkey=\"sign-in\"")
        .has("Mit Passkey anmelden")
        .has("Passkeys benötigen JavaScript")
        .has("data-options=\"/api/v1/auth/passkey/options\"");
    assert_eq!(login.headers[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
    assert!(!PAGE_CSP.contains("unsafe-inline"));
    // No inline script anywhere on the page: every script element has a `src`.
    assert_eq!(
        login.text.matches("<script").count(),
        login.text.matches("<script src=").count()
    );
    b.get("/login?lang=en")
        .await
        .ok()
        .has("Sign in with a passkey")
        .has("Passkeys need JavaScript");
}

#[tokio::test]
async fn the_security_page_lists_adds_and_removes_passkeys() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let page = b.get("/mfa").await;
    page.ok()
        .has("Sie haben noch keinen Passkey eingerichtet.")
        .has("data-passkey=\"register\"")
        .has("data-finish=\"/api/v1/me/passkeys\"")
        .has("<script src=\"/assets/passkeys.js\" defer></script>");
    assert_eq!(page.headers[header::CONTENT_SECURITY_POLICY], PAGE_CSP);

    let mut auth = Authenticator::new();
    let added = add_passkey(&b, &mut auth, "Mein Laptop").await;
    // The first factor: the recovery code, which the script shows once.
    assert!(added["recovery_code"].is_string(), "{added}");
    let page = b.get("/mfa").await;
    page.ok()
        .has("Mein Laptop")
        .has("noch nie")
        .lacks("Sie haben noch keinen Passkey");
    let action = remove_action(&page);
    b.post(&action, &[]).await.redirects_to("/mfa");
    b.get("/mfa")
        .await
        .ok()
        .lacks("Mein Laptop")
        .has("Sie haben noch keinen Passkey eingerichtet.");

    // Removing needs a fresh login (step-up).
    add_passkey(&b, &mut auth, "Telefon").await;
    let action = remove_action(&b.get("/mfa").await);
    app.clock.advance(chrono::TimeDelta::minutes(30));
    b.post(&action, &[])
        .await
        .redirects_to("/reauth?next=%2Fmfa");
    b.get("/mfa").await.ok().has("Telefon");
    // A GET on the form's address leads back to the page.
    b.get(&action).await.redirects_to("/mfa");
}

#[tokio::test]
async fn the_last_required_factor_is_refused_with_a_message() {
    let app = WebApp::new();
    app.customer("100000001").await;
    app.member("x@example.com", "100000001").await;
    app.portal
        .set_second_factor_policy(
            &Actor::System,
            &number("100000001"),
            SecondFactorPolicy::AllUsers,
        )
        .await
        .unwrap();
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;
    let page = b.get("/mfa").await;
    let action = remove_action(&page);
    b.post(&action, &[]).await.redirects_to("/mfa");
    b.get("/mfa")
        .await
        .ok()
        .has("Der letzte zweite Faktor kann nicht entfernt werden")
        .has("Laptop");
}

#[tokio::test]
async fn a_passkey_signs_in_from_the_login_page_and_is_offered_as_second_step() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;

    // "Mit Passkey anmelden": the login page's token, the API's session, then the pages.
    let fresh = app.browser();
    fresh.get("/login").await.ok();
    let start = api(&fresh, "/api/v1/auth/passkey/options", None).await;
    assert_eq!(start.status, 200, "{}", start.text);
    let start = json_of(&start);
    let answer = json!({
        "challenge_id": start["challenge_id"],
        "credential": auth.sign(&start["public_key"], ORIGIN),
    });
    let done = api(&fresh, "/api/v1/auth/passkey", Some(answer)).await;
    assert_eq!(done.status, 200, "{}", done.text);
    fresh.get("/mfa").await.ok().has("Laptop").lacks("noch nie");

    // The password path stays, and the second step offers the passkey.
    let other = app.browser();
    let r = other.login_form("x@example.com", PASSWORD).await;
    assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
    other
        .get(r.location())
        .await
        .ok()
        .has("data-passkey=\"second-factor\"")
        .has("data-options=\"/api/v1/auth/login/mfa/passkey/options\"")
        .has("Mit Passkey bestätigen")
        .has("Passkeys benötigen JavaScript");
    // The script's second step: the pending login's passkey answer logs in.
    let start = api(&other, "/api/v1/auth/login/mfa/passkey/options", None).await;
    assert_eq!(start.status, 200, "{}", start.text);
    let start = json_of(&start);
    let answer = json!({
        "challenge_id": start["challenge_id"],
        "credential": auth.sign(&start["public_key"], ORIGIN),
    });
    let done = api(&other, "/api/v1/auth/login/mfa/passkey", Some(answer)).await;
    assert_eq!(done.status, 200, "{}", done.text);
    other.get("/mfa").await.ok().has("Laptop");
}
