//! The operators' webhook page (`/operator/webhooks*`), through the router like a browser: the
//! list, registration with the secret shown once, rotation, disabling, enabling and removal.

use crate::web_support::*;
use axum::http::StatusCode;
use portal_core::Actor;

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

#[tokio::test]
async fn an_operator_registers_a_webhook_sees_its_secret_once_and_manages_it() {
    let app = WebApp::new();
    let _w = app.two_customers().await;
    let op = app.login("op@example.com").await;
    op.get("/operator/webhooks")
        .await
        .ok()
        .has("<h1>Webhooks</h1>")
        .has("Noch keine Webhooks registriert.")
        .has("value=\"user.locked\"");
    op.get("/operator/webhooks?lang=en")
        .await
        .ok()
        .has("No webhooks registered yet.");
    op.get("/operator/webhooks?lang=de").await.ok();

    // Refused: the field is marked, nothing is registered.
    let bad = op
        .post_back(
            "/operator/webhooks",
            &[("url", "javascript:alert(1)"), ("events", "user.locked")],
        )
        .await;
    bad.has("aria-invalid=\"true\"").has("javascript:alert(1)");
    let bad = op
        .post_back(
            "/operator/webhooks",
            &[("url", "https://crm.example.com/in")],
        )
        .await;
    bad.has("Wählen Sie mindestens ein Ereignis.");
    assert!(
        app.portal
            .webhooks(&Actor::System)
            .await
            .unwrap()
            .is_empty()
    );

    let created = op
        .post(
            "/operator/webhooks",
            &[
                ("url", "https://crm.example.com/in"),
                ("description", "CRM"),
                ("events", "user.locked"),
                ("events", "user.permissions_changed"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.has("nur dieses eine Mal").has("role=\"alert\"");
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = element(&created, "webhook-id");
    let secret = element(&created, "webhook-secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let stored = app.portal.webhooks(&Actor::System).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].events.iter().map(|c| c.key()).collect::<Vec<_>>(),
        ["user.permissions_changed", "user.locked"]
    );

    // Never again: not in the list.
    op.get("/operator/webhooks")
        .await
        .ok()
        .has("https://crm.example.com/in")
        .has("aktiv")
        // The list names the events as the change log does, in the reader's language.
        .has("Benutzer gesperrt")
        .lacks(&secret);

    let rotated = op
        .post(&format!("/operator/webhooks/{id}/rotate-secret"), &[])
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = element(&rotated, "webhook-secret");
    assert_ne!(new_secret, secret);

    op.post(&format!("/operator/webhooks/{id}/disable"), &[])
        .await
        .redirects_to("/operator/webhooks");
    op.get("/operator/webhooks").await.ok().has("deaktiviert");
    op.post(&format!("/operator/webhooks/{id}/enable"), &[])
        .await
        .redirects_to("/operator/webhooks");
    assert!(!app.portal.webhooks(&Actor::System).await.unwrap()[0].disabled);
    // A form address opened by GET leads to the page it belongs to, changing nothing.
    for action in ["rotate-secret", "disable", "enable", "remove"] {
        op.get(&format!("/operator/webhooks/{id}/{action}"))
            .await
            .redirects_to("/operator/webhooks");
    }
    assert_eq!(app.portal.webhooks(&Actor::System).await.unwrap().len(), 1);
    op.post(&format!("/operator/webhooks/{id}/remove"), &[])
        .await
        .redirects_to("/operator/webhooks");
    assert!(
        app.portal
            .webhooks(&Actor::System)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn only_operators_see_the_webhook_page() {
    let app = WebApp::new();
    let _w = app.two_customers().await;
    let admin = app.login("a@example.com").await;
    let page = admin.get("/operator/webhooks").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
}
