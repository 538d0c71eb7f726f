//! The operators' application pages (`/operator/clients*`) and the dead-letter page's other
//! kinds, through the router like a browser.

use crate::web_support::*;
use axum::http::StatusCode;
use portal_core::Actor;
use portal_core::audit::AuditCategory;
use portal_core::ids::OutboxId;
use portal_core::oidc::{AccessTokenFormat, BackchannelLogout};
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{Clock as _, Commit, Committer as _, OutboxStore as _};

/// The text of the element with this `id`.
fn element(p: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = p
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id}: {}", p.text))
        + marker.len();
    let end = p.text[start..].find('<').unwrap() + start;
    p.text[start..end].to_owned()
}

fn client_log(app: &WebApp) -> Vec<String> {
    app.store
        .audit_entries(None)
        .into_iter()
        .filter(|e| {
            matches!(
                e.record.category,
                AuditCategory::OidcClientCreated | AuditCategory::OidcClientChanged
            )
        })
        .map(|e| e.record.details)
        .collect()
}

const FORM: &[(&str, &str)] = &[
    ("name", "Supportanfragen"),
    (
        "redirect_uris",
        "https://support.example.com/callback\r\n\r\nhttps://support.example.com/cb2\r\n",
    ),
    ("post_logout_redirect_uris", ""),
    ("backchannel_logout_uri", "https://support.example.com/bc"),
    ("required_permission", "support_requests"),
    ("first_party", "on"),
    ("access_tokens", "opaque"),
];

#[tokio::test]
async fn an_operator_registers_an_application_and_sees_its_secret_once() {
    let app = WebApp::new();
    let _w = app.two_customers().await;
    let op = app.login("op@example.com").await;
    op.get("/operator/clients")
        .await
        .ok()
        .has("<h1>Anwendungen</h1>")
        .has("Noch keine Anwendungen registriert.")
        .has("href=\"/operator/clients/new\"");
    op.get("/operator/clients?lang=en")
        .await
        .ok()
        .has("<h1>Applications</h1>");
    op.get("/operator/clients?lang=de").await.ok();
    op.get("/operator/clients/new")
        .await
        .ok()
        .has("Rücksprungadressen")
        .has("Supportanfragen");

    // Refused: the fields are marked, nothing is registered.
    let bad = op
        .post_back(
            "/operator/clients/new",
            &[
                ("name", "Supportanfragen"),
                ("redirect_uris", "javascript:alert(1)"),
                ("access_tokens", "opaque"),
            ],
        )
        .await;
    bad.has("Geben Sie mindestens eine Rücksprungadresse an")
        .has("aria-invalid=\"true\"")
        .has("javascript:alert(1)");
    assert!(app.portal.clients(&Actor::System).await.unwrap().is_empty());
    // A name with a text-direction control is refused like any other displayed name.
    let mut hidden = FORM.to_vec();
    hidden[0] = ("name", "Support\u{202E}negarfna");
    let bad = op.post_back("/operator/clients/new", &hidden).await;
    bad.has("Steuerzeichen für die Schreibrichtung")
        .has("aria-invalid=\"true\"");
    assert!(app.portal.clients(&Actor::System).await.unwrap().is_empty());

    let created = op.post("/operator/clients/new", FORM).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.has("nur dieses eine Mal").has("role=\"alert\"");
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = element(&created, "client-id");
    let secret = element(&created, "client-secret");
    assert!(secret.len() >= 40, "{secret}");
    let stored = app.portal.client(&Actor::System, &id).await.unwrap();
    assert_eq!(
        stored.redirect_uris,
        [
            "https://support.example.com/callback",
            "https://support.example.com/cb2"
        ],
        "one URI a line, blank lines skipped"
    );
    assert!(stored.first_party && !stored.public);
    assert_eq!(
        stored.required_permission.as_deref(),
        Some("support_requests")
    );

    // Never again: not in the list, not on its page, not in the log.
    op.get("/operator/clients")
        .await
        .ok()
        .has("Supportanfragen")
        .has(&id)
        .lacks(&secret);
    let page = op.get(&format!("/operator/clients/{id}")).await;
    page.ok()
        .has("https://support.example.com/cb2")
        .has("Neues Geheimnis erzeugen")
        .lacks(&secret);

    // Settings saved; a bad URI is refused and changes nothing.
    let action = format!("/operator/clients/{id}");
    let mut edit = FORM.to_vec();
    edit[0] = ("name", "Support");
    edit[6] = ("access_tokens", "jwt");
    op.post(&action, &edit).await.redirects_to(&action);
    op.get(&action)
        .await
        .ok()
        .has("Gespeichert")
        .has("<h1>Support</h1>");
    let changed = app.portal.client(&Actor::System, &id).await.unwrap();
    assert_eq!(changed.access_tokens, AccessTokenFormat::Jwt);
    assert_eq!(changed.name, "Support");
    edit[3] = ("backchannel_logout_uri", "ftp://support.example.com/bc");
    let bad = op.post_back(&action, &edit).await;
    bad.has("Nur absolute http(s)-Adressen");
    assert_eq!(
        app.portal.client(&Actor::System, &id).await.unwrap(),
        changed
    );

    // A new secret, shown once; then disabled.
    let rotated = op
        .post(&format!("/operator/clients/{id}/rotate-secret"), &[])
        .await;
    rotated.ok().has("nur dieses eine Mal");
    let new_secret = element(&rotated, "client-secret");
    assert_ne!(new_secret, secret);
    op.get(&action).await;
    op.post(&format!("/operator/clients/{id}/disable"), &[])
        .await
        .redirects_to(&action);
    op.get(&action)
        .await
        .ok()
        .has("deaktiviert")
        .lacks("Anwendung deaktivieren</button>");
    assert!(
        app.portal
            .client(&Actor::System, &id)
            .await
            .unwrap()
            .disabled
    );
    // A reload of an action's address leads back to the page.
    op.get(&format!("/operator/clients/{id}/disable"))
        .await
        .redirects_to(&action);

    let log = client_log(&app);
    assert_eq!(log.len(), 4, "created, changed, rotated, disabled: {log:?}");
    for details in &log {
        assert!(
            !details.contains(&secret) && !details.contains(&new_secret),
            "{details}"
        );
    }

    // Unknown and malformed ids: the 404 page.
    for bad in ["0123456789abcdef0123456789abcdef", "a.b"] {
        assert_eq!(
            op.get(&format!("/operator/clients/{bad}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn application_pages_are_for_operators_only() {
    let app = WebApp::new();
    let _w = app.two_customers().await;
    let op = app.login("op@example.com").await;
    let created = op
        .submit("/operator/clients/new", "/operator/clients/new", FORM)
        .await;
    let id = element(&created, "client-id");
    let before = app.portal.client(&Actor::System, &id).await.unwrap();
    for who in ["a@example.com", "e@example.com"] {
        let b = app.login(who).await;
        b.get("/home").await.lacks("href=\"/operator/clients\"");
        for path in [
            "/operator/clients".to_owned(),
            "/operator/clients/new".to_owned(),
            format!("/operator/clients/{id}"),
        ] {
            assert_eq!(
                b.get(&path).await.status,
                StatusCode::FORBIDDEN,
                "{who} {path}"
            );
        }
        for path in [
            "/operator/clients/new".to_owned(),
            format!("/operator/clients/{id}"),
            format!("/operator/clients/{id}/rotate-secret"),
            format!("/operator/clients/{id}/disable"),
        ] {
            let r = b.submit("/home", &path, FORM).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who} {path}");
            r.lacks("Das Formular ist abgelaufen");
        }
    }
    assert_eq!(app.portal.clients(&Actor::System).await.unwrap().len(), 1);
    assert_eq!(
        app.portal.client(&Actor::System, &id).await.unwrap(),
        before
    );
    assert_eq!(client_log(&app).len(), 1);
    op.get("/home").await.has("href=\"/operator/clients\"");
}

#[tokio::test]
async fn the_dead_letter_page_shows_back_channel_logouts_too() {
    let app = WebApp::new();
    let _w = app.two_customers().await;
    let now = app.clock.now();
    let message = OutboxMessage {
        id: OutboxId::from_uuid(uuid::Uuid::from_u128(0xbc)),
        created_at: now,
        payload: Payload::BackchannelLogout(BackchannelLogout {
            uri: "https://support.example.com/bc".into(),
            client_id: "app123".into(),
            logout_token: "eyJ.logout.token".into(),
        }),
    };
    let mut commit = Commit::new();
    commit.message(message.clone());
    app.store.commit(commit).await.unwrap();
    let claim = uuid::Uuid::from_u128(7);
    app.store
        .claim_outbox(
            "backchannel_logout",
            claim,
            now,
            now + chrono::TimeDelta::minutes(1),
            1,
        )
        .await
        .unwrap();
    assert!(
        app.store
            .mark_failed(message.id, claim, "503 from the client", None)
            .await
            .unwrap()
    );

    let op = app.login("op@example.com").await;
    let page = op.get("/operator/outbox").await;
    page.ok()
        .has("data-label=\"Art\">Abmeldung bei Anwendung (Back-Channel)</td>")
        .has("https://support.example.com/bc")
        .has("backchannel_logout client=app123")
        .has("503 from the client")
        .has(&format!(
            "action=\"/operator/outbox/{}/requeue\"",
            message.id
        ))
        .lacks("eyJ.logout.token");
    op.get("/operator/outbox?kind=backchannel_logout")
        .await
        .ok()
        .has("https://support.example.com/bc");
    op.get("/operator/outbox?kind=mail")
        .await
        .ok()
        .lacks("https://support.example.com/bc");
    op.get("/operator/outbox?lang=en")
        .await
        .ok()
        .has("Application logout (back-channel)");
}
