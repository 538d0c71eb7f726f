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

/// Starts a ceremony at the API address `options` as the script does and answers it with
/// `auth`: the hidden fields the script fills in before it submits the page's form.
async fn answer(b: &Browser, auth: &mut Authenticator, options: &str) -> (String, String) {
    let start = api(b, options, None).await;
    assert_eq!(start.status, 200, "{}", start.text);
    let start = json_of(&start);
    let credential = auth.sign(&start["public_key"], ORIGIN);
    (
        start["challenge_id"].as_str().unwrap().to_owned(),
        credential.to_string(),
    )
}

#[tokio::test]
async fn a_passkey_signs_in_from_the_login_page_and_is_offered_as_second_step() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;

    // "Mit Passkey anmelden": the form the script fills in and submits to the page, which
    // starts the session like the password does, with the known-browser cookie.
    let fresh = app.browser();
    fresh
        .get("/login?next=%2Fmfa")
        .await
        .ok()
        .has("action=\"/login/passkey\"")
        .has("name=\"credential\"")
        .has("autocomplete=\"username webauthn\"")
        .has("Passkeys benötigen JavaScript")
        .has("name=\"password\"");
    let (challenge, credential) = answer(&fresh, &mut auth, "/api/v1/auth/passkey/options").await;
    assert!(fresh.cookie("portal-known-browser").is_none());
    fresh
        .post(
            "/login/passkey",
            &[
                ("challenge_id", &challenge),
                ("credential", &credential),
                ("next", "/mfa"),
            ],
        )
        .await
        .redirects_to("/mfa");
    assert!(fresh.cookie("portal-known-browser").is_some());
    fresh.get("/mfa").await.ok().has("Laptop").lacks("noch nie");
    // The same answer again (a replay) is refused on the login page and signs no one in.
    let replay = app.browser();
    replay.get("/login").await.ok();
    let sessions = app.store.session_count();
    replay
        .post_back(
            "/login/passkey",
            &[("challenge_id", &challenge), ("credential", &credential)],
        )
        .await
        .has("Die Passkey-Anfrage ist abgelaufen oder wurde schon verwendet")
        .lacks(&credential);
    // Nothing the script did not fill in: refused, nothing changes.
    replay
        .post_back(
            "/login/passkey",
            &[("challenge_id", ""), ("credential", "")],
        )
        .await
        .has("Der Passkey wurde nicht akzeptiert");
    assert_eq!(app.store.session_count(), sessions);
    replay.get("/mfa").await.redirects_to("/login?next=%2Fmfa");

    // The password path stays, and the second step offers the passkey: the script fills in the
    // step's own form (`factor=passkey`), whose page starts the session with the cookies.
    let other = app.browser();
    let r = other.login_form("x@example.com", PASSWORD).await;
    assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
    let step = r.location().to_owned();
    other
        .get(&step)
        .await
        .ok()
        .has("data-passkey=\"second-factor\"")
        .has("data-options=\"/api/v1/auth/login/mfa/passkey/options\"")
        .has("name=\"factor\" value=\"passkey\"")
        .has("Mit Passkey bestätigen")
        .has("Passkeys benötigen JavaScript");
    let (challenge, credential) =
        answer(&other, &mut auth, "/api/v1/auth/login/mfa/passkey/options").await;
    assert!(other.cookie("portal-known-browser").is_none());
    other
        .post(
            &step,
            &[
                ("factor", "passkey"),
                ("challenge_id", &challenge),
                ("credential", &credential),
                ("remember_device", "1"),
            ],
        )
        .await
        .redirects_to("/home");
    assert!(other.cookie("portal-known-browser").is_some());
    assert!(other.cookie("portal-device").is_some());
    other.get("/mfa").await.ok().has("Laptop");
}

#[tokio::test]
async fn a_refused_passkey_in_the_second_step_keeps_the_step() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;
    let other = app.browser();
    let step = other
        .login_form("x@example.com", PASSWORD)
        .await
        .location()
        .to_owned();
    other.get(&step).await.ok();
    let start = json_of(&api(&other, "/api/v1/auth/login/mfa/passkey/options", None).await);
    other
        .post_back(
            &step,
            &[
                ("factor", "passkey"),
                ("challenge_id", start["challenge_id"].as_str().unwrap()),
                ("credential", "{\"id\":\"x\"}"),
            ],
        )
        .await
        .has("Der Passkey wurde nicht akzeptiert")
        .has("data-passkey=\"second-factor\"");
    assert!(other.cookie("portal-session").is_none());
    assert!(other.cookie("portal-mfa").is_some());
}

/// The action of the first passkey's rename form on `page`.
fn rename_action(page: &Page) -> String {
    let end = page.text.find("/rename\"").expect("a rename form");
    let start = page.text[..end].rfind("action=\"").unwrap() + "action=\"".len();
    page.text[start..end + "/rename".len()].to_owned()
}

#[tokio::test]
async fn a_passkey_is_renamed_on_the_security_page_and_audited() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;
    let page = b.get("/mfa").await;
    page.ok()
        .has("Umbenennen")
        .has("Neuer Name")
        .has("value=\"Laptop\"");
    let action = rename_action(&page);
    assert!(action.starts_with("/mfa/passkeys/"), "{action}");
    let audit = app.store.audit_len();
    b.post(&action, &[("name", "  Büro-Laptop ")])
        .await
        .redirects_to("/mfa");
    b.get("/mfa")
        .await
        .ok()
        .has("Gespeichert")
        .has("Büro-Laptop")
        .lacks("value=\"Laptop\"");
    assert_eq!(app.store.audit_len(), audit + 1);
    let entries = app.store.audit_entries(None);
    assert!(
        entries
            .iter()
            .any(|e| e.record.details.contains("passkey_renamed=")),
        "the rename is in the change log"
    );

    // A name that is none, or too long: the message, nothing changes.
    let audit = app.store.audit_len();
    b.get("/mfa").await.ok();
    for bad in ["   ", &"x".repeat(61)] {
        b.post_back(&action, &[("name", bad)])
            .await
            .has("Der Name eines Passkeys hat 1 bis 60 Zeichen")
            .has("Büro-Laptop");
    }
    assert_eq!(app.store.audit_len(), audit);
    // Another user cannot rename it: their own page says so, and the name stays.
    app.registered("y@example.com").await;
    let y = app.login("y@example.com").await;
    y.get("/mfa").await.ok();
    y.post_back(&action, &[("name", "Gekapert")])
        .await
        .lacks("Gekapert");
    b.get("/mfa")
        .await
        .ok()
        .has("Büro-Laptop")
        .lacks("Gekapert");
}

#[tokio::test]
async fn step_up_with_a_passkey_instead_of_the_password() {
    let app = WebApp::new();
    app.registered("x@example.com").await;
    let b = app.login("x@example.com").await;
    let mut auth = Authenticator::new();
    add_passkey(&b, &mut auth, "Laptop").await;
    let action = remove_action(&b.get("/mfa").await);
    app.clock.advance(chrono::TimeDelta::minutes(30));
    b.post(&action, &[])
        .await
        .redirects_to("/reauth?next=%2Fmfa");
    // "Passwort bestätigen" offers the passkey beside the password form.
    b.get("/reauth?next=%2Fmfa")
        .await
        .ok()
        .has("name=\"password\"")
        .has("data-passkey=\"reauth\"")
        .has("data-options=\"/api/v1/me/passkeys/presence-options\"")
        .has("Oder bestätigen Sie mit einem Ihrer Passkeys")
        .has("Passkeys benötigen JavaScript");

    // A refused answer: the page again with the message; still no step-up, nothing audited.
    let audit = app.store.audit_len();
    let (challenge, _) = answer(&b, &mut auth, "/api/v1/me/passkeys/presence-options").await;
    b.post_back(
        "/reauth",
        &[
            ("factor", "passkey"),
            ("challenge_id", &challenge),
            ("credential", "{}"),
            ("next", "/mfa"),
        ],
    )
    .await
    .has("Der Passkey wurde nicht akzeptiert");
    assert_eq!(app.store.audit_len(), audit);
    b.get("/mfa").await.ok();
    b.post(&action, &[])
        .await
        .redirects_to("/reauth?next=%2Fmfa");

    // The passkey alone (no password): the session is rotated, then the removal goes through.
    b.get("/reauth?next=%2Fmfa").await.ok();
    let session = b.cookie("portal-session");
    let (challenge, credential) =
        answer(&b, &mut auth, "/api/v1/me/passkeys/presence-options").await;
    b.post(
        "/reauth",
        &[
            ("factor", "passkey"),
            ("challenge_id", &challenge),
            ("credential", &credential),
            ("next", "/mfa"),
        ],
    )
    .await
    .redirects_to("/mfa");
    assert_ne!(
        b.cookie("portal-session"),
        session,
        "the session is rotated"
    );
    assert!(b.cookie("portal-known-browser").is_some());
    assert!(
        app.store.audit_entries(None).iter().any(|e| e
            .record
            .details
            .starts_with("method=reauthentication; passkey=")),
        "the step-up is in the change log"
    );
    let page = b.get("/mfa").await;
    page.ok().lacks("noch nie");
    b.post(&remove_action(&page), &[])
        .await
        .redirects_to("/mfa");
    b.get("/mfa")
        .await
        .ok()
        .has("Sie haben noch keinen Passkey eingerichtet.");
    // The same answer again is refused (the challenge was used).
    b.get("/reauth?next=%2Fmfa").await.ok();
    b.post_back(
        "/reauth",
        &[
            ("factor", "passkey"),
            ("challenge_id", &challenge),
            ("credential", &credential),
            ("next", "/mfa"),
        ],
    )
    .await
    .lacks("data-passkey=\"reauth\"");
}

/// A server that cannot verify passkeys (no WebAuthn relying party: its public address is an IP
/// or `PORTAL_PUBLIC_URL` names no domain) offers none: no "Mit Passkey anmelden" on the login
/// page, no form to add one on the security page.
#[tokio::test]
async fn a_server_without_passkeys_offers_none() {
    let app = WebApp::new();
    app.customer("100000001").await;
    app.member("emma@example.com", "100000001").await;
    let without = std::sync::Arc::new(
        portal_core::Portal::new(
            app.portal.deps().clone(),
            app.portal.config().clone(),
            app.portal.catalog().clone(),
        )
        .unwrap(),
    );
    assert!(!without.passkeys_available());
    let other = adapters_http::router(
        adapters_http::AppState::new(
            without,
            app.config.clone(),
            std::sync::Arc::new(adapters_http::AlwaysReady),
        )
        .with_outbox(app.store.clone()),
    );
    let b = app.browser_on(other);
    b.get("/login")
        .await
        .ok()
        .lacks("data-passkey")
        .lacks("Mit Passkey anmelden")
        .lacks("passkeys.js");
    b.login("emma@example.com", PASSWORD).await;
    b.get("/mfa")
        .await
        .ok()
        .lacks("data-passkey=\"register\"")
        .lacks("Passkey hinzufügen");
    // The same pages on the app's own server offer them.
    app.browser()
        .get("/login")
        .await
        .ok()
        .has("data-passkey=\"sign-in\"");
}
