//! `/api/v1/operator/webhooks*`: operators register, show, rotate, disable, enable and remove
//! webhook endpoints; the secret is shown once; refusals change nothing; the OpenAPI document
//! describes what is posted under `webhooks`.

use crate::support::*;
use portal_core::audit::AuditCategory;
use serde_json::{Value, json};

/// The global change log's entries about webhooks.
fn webhook_log(app: &TestApp) -> Vec<String> {
    app.store
        .audit_entries(None)
        .into_iter()
        .filter(|e| {
            matches!(
                e.record.category,
                AuditCategory::WebhookCreated
                    | AuditCategory::WebhookChanged
                    | AuditCategory::WebhookRemoved
            )
        })
        .map(|e| e.record.details)
        .collect()
}

fn new_hook() -> Value {
    json!({
        "url": "https://crm.example.com/portal-events?key=receiver-token",
        "events": ["user.locked", "user.unlocked"],
        "description": "CRM",
    })
}

#[tokio::test]
async fn operators_register_rotate_disable_enable_and_remove_webhooks() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let op = &t.operator;

    let created = op
        .post("/api/v1/operator/webhooks", new_hook())
        .await
        .ok(201)
        .clone();
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created["webhook"]["events"],
        json!(["user.locked", "user.unlocked"])
    );
    assert_eq!(created["webhook"]["disabled"], false);

    let list = op.get("/api/v1/operator/webhooks").await.ok(200).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert!(
        !list.to_string().contains(&secret[6..]),
        "no secret in the list"
    );
    let shown = op
        .get(&format!("/api/v1/operator/webhooks/{id}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(shown, created["webhook"]);

    let rotated = op
        .post_empty(&format!("/api/v1/operator/webhooks/{id}/rotate-secret"))
        .await
        .ok(200)
        .clone();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(!rotated["webhook"]["secret_rotated_at"].is_null());
    let r = op
        .post_empty(&format!("/api/v1/operator/webhooks/{id}/disable"))
        .await;
    assert_eq!(r.ok(200)["disabled"], true);
    let r = op
        .post_empty(&format!("/api/v1/operator/webhooks/{id}/enable"))
        .await;
    assert_eq!(r.ok(200)["disabled"], false);
    let r = op.delete(&format!("/api/v1/operator/webhooks/{id}")).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    op.get(&format!("/api/v1/operator/webhooks/{id}"))
        .await
        .assert(404, "not_found");

    let log = webhook_log(&app);
    assert_eq!(log.len(), 5, "{log:?}");
    for d in &log {
        assert!(
            !d.contains("whsec_") && !d.contains("receiver-token"),
            "{d}"
        );
    }
}

#[tokio::test]
async fn others_are_refused_and_bad_input_changes_nothing() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let op = &t.operator;
    let id = op
        .post("/api/v1/operator/webhooks", new_hook())
        .await
        .ok(201)["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logged = webhook_log(&app).len();
    for who in [&t.admin_a, &t.employee_a] {
        who.get("/api/v1/operator/webhooks")
            .await
            .assert(403, "forbidden");
        who.post("/api/v1/operator/webhooks", new_hook())
            .await
            .assert(403, "forbidden");
        who.post_empty(&format!("/api/v1/operator/webhooks/{id}/rotate-secret"))
            .await
            .assert(403, "forbidden");
        who.delete(&format!("/api/v1/operator/webhooks/{id}"))
            .await
            .assert(403, "forbidden");
    }
    app.client()
        .get("/api/v1/operator/webhooks")
        .await
        .assert(401, "unauthenticated");

    for (body, field) in [
        (
            json!({"url": "ftp://x.example/", "events": ["user.locked"]}),
            "url",
        ),
        (
            json!({"url": "https://x.example/#f", "events": ["user.locked"]}),
            "url",
        ),
        (json!({"url": "https://x.example/", "events": []}), "events"),
        (
            json!({"url": "https://x.example/", "events": ["user.exploded"]}),
            "events",
        ),
    ] {
        let r = op.post("/api/v1/operator/webhooks", body.clone()).await;
        r.assert(400, "invalid_request");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    op.post(
        "/api/v1/operator/webhooks",
        json!({"url": "https://x.example/", "events": ["all"], "secret": "mine"}),
    )
    .await
    .assert(400, "unknown_field");
    op.get("/api/v1/operator/webhooks/not-a-uuid")
        .await
        .assert(400, "invalid_id");
    op.get(&format!("/api/v1/operator/webhooks/{}", uuid::Uuid::nil()))
        .await
        .assert(404, "not_found");
    assert_eq!(webhook_log(&app).len(), logged, "refusals audit nothing");
    let list = op.get("/api/v1/operator/webhooks").await.ok(200).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_openapi_document_describes_the_signed_event_under_webhooks() {
    let app = TestApp::new();
    let doc = app
        .client()
        .get("/api/v1/openapi.json")
        .await
        .ok(200)
        .clone();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let op = &doc["webhooks"]["portalEvent"]["post"];
    let headers: Vec<&str> = op["parameters"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookEvent"
    );
    let data = &doc["components"]["schemas"]["WebhookEventData"]["properties"];
    for field in [
        "seq",
        "previous_seq",
        "customer_number",
        "entry_id",
        "details",
    ] {
        assert!(data.get(field).is_some(), "{field} documented: {data}");
    }
}
