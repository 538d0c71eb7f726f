//! `/api/v1/operator/clients*`: operators manage the applications of the OpenID Connect
//! provider; the secret is shown once and never logged; refusals change nothing.

use crate::support::*;
use portal_core::audit::AuditCategory;
use portal_core::secret::SecretString;
use portal_core::service::{ClientAuth, TokenError};
use serde_json::{Value, json};

/// The global change log's entries about clients.
fn client_log(app: &TestApp) -> Vec<String> {
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

/// Whether `secret` authenticates `id` (at introspection, the real client authentication).
async fn secret_works(app: &TestApp, id: &str, secret: &str) -> bool {
    let auth = ClientAuth {
        client_id: Some(id.to_owned()),
        secret: Some(SecretString::new(secret.to_owned())),
    };
    match app.portal.introspect(&auth, "not-a-token").await {
        Ok(v) => {
            assert_eq!(v, json!({"active": false}));
            true
        }
        Err(TokenError::InvalidClient) => false,
        Err(e) => panic!("introspection failed: {e:?}"),
    }
}

fn new_app() -> Value {
    json!({
        "name": "Supportanfragen",
        "redirect_uris": ["https://support.example.com/callback"],
        "post_logout_redirect_uris": ["https://support.example.com/"],
        "backchannel_logout_uri": "https://support.example.com/backchannel",
        "required_permission": "support_requests",
        "first_party": true,
    })
}

#[tokio::test]
async fn operators_register_change_rotate_and_disable_applications() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let op = &t.operator;

    let r = op.post("/api/v1/operator/clients", new_app()).await;
    let created = r.ok(201).clone();
    let id = created["client"]["id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 40, "a long random secret: {secret}");
    assert_eq!(created["client"]["public"], false);
    assert_eq!(created["client"]["access_tokens"], "opaque");
    assert_eq!(created["client"]["required_permission"], "support_requests");
    assert_eq!(created["client"]["disabled"], false);
    assert!(secret_works(&app, &id, &secret).await);

    // Listed and shown without the secret.
    let r = op.get("/api/v1/operator/clients").await;
    let list = r.ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(!list.to_string().contains(&secret), "no secret in the list");
    let r = op.get(&format!("/api/v1/operator/clients/{id}")).await;
    let shown = r.ok(200);
    assert_eq!(shown, &created["client"]);
    assert!(shown.get("client_secret").is_none());

    // Changed: the whole new state; the log names the changed fields.
    let r = op
        .put(
            &format!("/api/v1/operator/clients/{id}"),
            json!({
                "name": "Supportanfragen",
                "redirect_uris": ["https://support.example.com/callback", "https://support.example.com/cb2"],
                "post_logout_redirect_uris": [],
                "backchannel_logout_uri": null,
                "first_party": false,
                "required_permission": "licenses",
                "require_second_factor": true,
                "access_tokens": "jwt",
            }),
        )
        .await;
    let changed = r.ok(200);
    assert_eq!(
        changed["redirect_uris"][1],
        "https://support.example.com/cb2"
    );
    assert_eq!(changed["backchannel_logout_uri"], Value::Null);
    assert_eq!(changed["required_permission"], "licenses");
    assert_eq!(changed["require_second_factor"], true);
    assert_eq!(changed["access_tokens"], "jwt");
    assert_eq!(changed["first_party"], false);
    assert!(
        secret_works(&app, &id, &secret).await,
        "a change keeps the secret"
    );
    let log = client_log(&app);
    assert_eq!(
        log.last().unwrap(),
        &format!(
            "client={id} fields=redirect_uris,post_logout_redirect_uris,backchannel_logout_uri,\
             first_party,required_permission,require_second_factor,access_tokens"
        )
    );

    // A new secret, shown once; the old one stops working at once.
    let r = op
        .post_empty(&format!("/api/v1/operator/clients/{id}/rotate-secret"))
        .await;
    let rotated = r.ok(200).clone();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["client"]["id"], id.as_str());
    assert!(secret_works(&app, &id, &new_secret).await);
    assert!(
        !secret_works(&app, &id, &secret).await,
        "the old secret is dead"
    );

    // Disabled: its secret authenticates nothing any more.
    let r = op
        .post_empty(&format!("/api/v1/operator/clients/{id}/disable"))
        .await;
    assert_eq!(r.ok(200)["disabled"], true);
    assert!(!secret_works(&app, &id, &new_secret).await);

    // A public client has no secret to show or rotate.
    let mut public = new_app();
    public["public"] = json!(true);
    public["name"] = json!("Mobile App");
    let r = op.post("/api/v1/operator/clients", public).await;
    let p = r.ok(201).clone();
    assert_eq!(p["client_secret"], Value::Null);
    assert_eq!(p["client"]["public"], true);
    let pid = p["client"]["id"].as_str().unwrap();
    op.post_empty(&format!("/api/v1/operator/clients/{pid}/rotate-secret"))
        .await
        .assert(400, "invalid_request");

    // Every change audited in the global chain, none with a secret.
    let log = client_log(&app);
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[2], format!("client={id} secret=rotated"));
    assert_eq!(log[3], format!("client={id} disabled=true"));
    for details in &log {
        assert!(
            !details.contains(&secret) && !details.contains(&new_secret),
            "{details}"
        );
    }
}

#[tokio::test]
async fn client_commands_are_refused_with_stable_errors_and_change_nothing() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let op = &t.operator;
    let r = op.post("/api/v1/operator/clients", new_app()).await;
    let id = r.ok(201)["client"]["id"].as_str().unwrap().to_owned();
    let before = op
        .get(&format!("/api/v1/operator/clients/{id}"))
        .await
        .ok(200)
        .clone();
    let logged = client_log(&app).len();

    // Not operators: a customer's administrator and an employee.
    for who in [&t.admin_a, &t.employee_a] {
        who.get("/api/v1/operator/clients")
            .await
            .assert(403, "forbidden");
        who.get(&format!("/api/v1/operator/clients/{id}"))
            .await
            .assert(403, "forbidden");
        who.post("/api/v1/operator/clients", new_app())
            .await
            .assert(403, "forbidden");
        who.put(
            &format!("/api/v1/operator/clients/{id}"),
            json!({"name": "Gekapert", "redirect_uris": ["https://evil.example/cb"],
                   "post_logout_redirect_uris": [], "backchannel_logout_uri": null,
                   "first_party": true, "required_permission": null,
                   "require_second_factor": false, "access_tokens": "opaque"}),
        )
        .await
        .assert(403, "forbidden");
        who.post_empty(&format!("/api/v1/operator/clients/{id}/rotate-secret"))
            .await
            .assert(403, "forbidden");
        who.post_empty(&format!("/api/v1/operator/clients/{id}/disable"))
            .await
            .assert(403, "forbidden");
    }
    // Not logged in.
    app.client()
        .get("/api/v1/operator/clients")
        .await
        .assert(401, "unauthenticated");

    // Bad URIs and values: the field is named, nothing is stored.
    let cases: [(&str, Value, &str); 7] = [
        (
            "redirect_uris",
            json!(["javascript:alert(1)"]),
            "redirect_uris",
        ),
        (
            "redirect_uris",
            json!(["https://app.example/cb#frag"]),
            "redirect_uris",
        ),
        ("redirect_uris", json!(["/relative"]), "redirect_uris"),
        ("redirect_uris", json!([]), "redirect_uris"),
        (
            "backchannel_logout_uri",
            json!("ftp://app.example/bc"),
            "backchannel_logout_uri",
        ),
        (
            "post_logout_redirect_uris",
            json!(["https://a b.example/"]),
            "post_logout_redirect_uris",
        ),
        ("required_permission", json!("root"), "required_permission"),
    ];
    for (field, value, named) in &cases {
        let mut body = new_app();
        body[*field] = value.clone();
        let r = op.post("/api/v1/operator/clients", body.clone()).await;
        r.assert(400, "invalid_request");
        assert_eq!(r.body["error"]["details"]["field"], *named, "{body}");
        let mut update = before.clone();
        for k in ["id", "public", "disabled", "created_at"] {
            update.as_object_mut().unwrap().remove(k);
        }
        update[*field] = value.clone();
        let r = op
            .put(&format!("/api/v1/operator/clients/{id}"), update)
            .await;
        r.assert(400, "invalid_request");
        assert_eq!(r.body["error"]["details"]["field"], *named);
    }
    let mut long = new_app();
    long["name"] = json!("x".repeat(101));
    op.post("/api/v1/operator/clients", long)
        .await
        .assert(400, "invalid_request");
    let mut sneaky = new_app();
    sneaky["secret_hash"] = json!("00");
    op.post("/api/v1/operator/clients", sneaky)
        .await
        .assert(400, "unknown_field");
    op.put(
        &format!("/api/v1/operator/clients/{id}"),
        json!({"name": "Nur der Name"}),
    )
    .await
    .assert(400, "invalid_request");

    // Unknown and malformed ids.
    let unknown = "0123456789abcdef0123456789abcdef";
    op.get(&format!("/api/v1/operator/clients/{unknown}"))
        .await
        .assert(404, "not_found");
    op.post_empty(&format!("/api/v1/operator/clients/{unknown}/disable"))
        .await
        .assert(404, "not_found");
    for bad in ["a%20b", "a.b", &"a".repeat(65)] {
        op.get(&format!("/api/v1/operator/clients/{bad}"))
            .await
            .assert(400, "invalid_id");
    }

    // Nothing changed, nothing logged.
    let after = op.get(&format!("/api/v1/operator/clients/{id}")).await;
    assert_eq!(after.ok(200), &before);
    assert_eq!(
        op.get("/api/v1/operator/clients").await.ok(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(client_log(&app).len(), logged, "refusals are not logged");
}
