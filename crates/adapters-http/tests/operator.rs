//! `/api/v1/operator/*`.

use crate::support::*;
use axum::http::Method;
use portal_core::audit::AuditCategory;
use portal_core::ids::OutboxId;
use portal_core::mail::OutboxStatus;
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{Commit, Committer as _, OutboxStore as _};
use serde_json::json;

#[tokio::test]
async fn operators_create_list_show_and_import_customers() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let op = &t.operator;
    let r = op
        .post(
            "/api/v1/operator/customers",
            json!({"customer_number": "D300000003", "name": "Partnerkunde GmbH",
                   "affiliations": ["de-business"], "channel": "partner", "partner_name": "Fachhandel AG"}),
        )
        .await;
    let body = r.ok(201);
    assert_eq!(body["number"], "300000003");
    assert_eq!(body["printed_number"], "D300000003");
    assert_eq!(body["channel"]["partner"], "Fachhandel AG");
    op.post(
        "/api/v1/operator/customers",
        json!({"customer_number": "300000003", "name": "Doppelt", "affiliations": ["de-business"]}),
    )
    .await
    .assert(409, "number_taken");
    op.post(
        "/api/v1/operator/customers",
        json!({"customer_number": "300000004", "name": "X", "affiliations": ["mars"]}),
    )
    .await
    .assert(422, "unknown_affiliation");
    op.post(
        "/api/v1/operator/customers",
        json!({"customer_number": "300000004", "name": "X", "entitlements": ["nope"]}),
    )
    .await
    .assert(422, "unknown_permissions");
    op.post(
        "/api/v1/operator/customers",
        json!({"customer_number": "300000004", "name": "X", "channel": "partner"}),
    )
    .await
    .assert(400, "invalid_request");
    op.post(
        "/api/v1/operator/customers",
        json!({"customer_number": "3", "name": "X"}),
    )
    .await
    .assert(400, "invalid_customer_number");

    let r = op.get("/api/v1/operator/customers?per_page=2").await;
    let next = r.ok(200)["next"].as_str().unwrap().to_owned();
    let r = op
        .get(&format!(
            "/api/v1/operator/customers?per_page=2&cursor={next}"
        ))
        .await;
    assert_eq!(r.ok(200)["items"][0]["number"], "300000003");
    op.get("/api/v1/operator/customers?cursor=x")
        .await
        .assert(400, "invalid_cursor");
    let r = op.get("/api/v1/operator/customers?q=partner").await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1);
    op.get("/api/v1/operator/customers/D100000001")
        .await
        .ok(200);
    op.get("/api/v1/operator/customers/999999999")
        .await
        .assert(404, "not_found");
    op.get("/api/v1/operator/customers/abc")
        .await
        .assert(400, "invalid_customer_number");

    // Import.
    let csv = "number,name,products,channel\n400000004,Importiert GmbH,de-business,direct\n100000001,Firma Neu,de-business,direct\n";
    let r = op
        .raw(
            Method::POST,
            "/api/v1/operator/customers/import",
            "text/csv",
            csv,
        )
        .await;
    let body = r.ok(200);
    assert_eq!(body["created"], 1);
    assert_eq!(body["updated"], 1);
    let r = op
        .raw(
            Method::POST,
            "/api/v1/operator/customers/import",
            "text/csv",
            "400000005,X,de-business,direct\n12,Y,de-business,direct\n",
        )
        .await;
    r.assert(422, "invalid_row");
    assert_eq!(r.body["error"]["details"]["row"], 2);
    op.raw(
        Method::POST,
        "/api/v1/operator/customers/import",
        "text/csv",
        "500000005,X,mars,direct\n",
    )
    .await
    .assert(422, "invalid_row");
    op.raw(
        Method::POST,
        "/api/v1/operator/customers/import",
        "application/json",
        "{}",
    )
    .await
    .assert(415, "unsupported_media_type");
    // A larger CSV than the JSON limit is fine up to the import limit.
    let mut big = String::new();
    for i in 0..2000 {
        big.push_str(&format!(
            "{:09},Firma Nummer {i} mit langem Namen,de-business,direct\n",
            600_000_000 + i
        ));
    }
    assert!(big.len() > 64 * 1024);
    let r = op
        .raw(
            Method::POST,
            "/api/v1/operator/customers/import",
            "text/csv",
            &big,
        )
        .await;
    assert_eq!(r.ok(200)["created"], 2000);

    // Not for administrators or employees.
    t.admin_a
        .get("/api/v1/operator/customers")
        .await
        .assert(403, "forbidden");
    t.admin_a
        .get("/api/v1/operator/customers/100000001")
        .await
        .assert(403, "forbidden");
    t.employee_a
        .raw(
            Method::POST,
            "/api/v1/operator/customers/import",
            "text/csv",
            csv,
        )
        .await
        .assert(403, "forbidden");
}

#[tokio::test]
async fn operators_decide_admin_requests() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let id = t
        .employee_a
        .post_empty("/api/v1/me/admin-request")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Waiting for consent: not ready for the operator.
    t.operator
        .post_empty(&format!("/api/v1/operator/admin-requests/{id}/approve"))
        .await
        .assert(409, "wrong_state");
    t.admin_a
        .post_empty(&format!(
            "/api/v1/customers/100000001/admin-requests/{id}/consent"
        ))
        .await
        .ok(200);
    let r = t.operator.get("/api/v1/operator/admin-requests").await;
    assert_eq!(r.ok(200)["items"][0]["id"], id.as_str());
    let r = t
        .operator
        .get("/api/v1/operator/admin-requests?status=awaiting_approval&customer_number=100000001")
        .await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1);
    t.operator
        .get("/api/v1/operator/admin-requests?status=maybe")
        .await
        .assert(400, "invalid_request");
    t.operator
        .get("/api/v1/operator/admin-requests?customer_number=999999999")
        .await
        .assert(404, "not_found");
    t.admin_a
        .post_empty(&format!("/api/v1/operator/admin-requests/{id}/approve"))
        .await
        .assert(403, "forbidden");
    t.admin_a
        .get("/api/v1/operator/admin-requests")
        .await
        .assert(403, "forbidden");
    let r = t
        .operator
        .post_empty(&format!("/api/v1/operator/admin-requests/{id}/approve"))
        .await;
    assert_eq!(r.ok(200)["status"], "approved");
    t.operator
        .post_empty(&format!("/api/v1/operator/admin-requests/{id}/reject"))
        .await
        .assert(409, "wrong_state");
    t.operator
        .post_empty("/api/v1/operator/admin-requests/00000000-0000-7000-8000-0000000fffff/reject")
        .await
        .assert(404, "not_found");
    t.operator
        .post_empty("/api/v1/operator/admin-requests/nope/reject")
        .await
        .assert(400, "invalid_id");
    // The new administrator's role applies at once.
    assert_eq!(
        t.employee_a.get("/api/v1/me").await.body["role"],
        "administrator"
    );
}

#[tokio::test]
async fn a_requester_locked_meanwhile_is_not_promoted() {
    let app = TestApp::new();
    app.operator("op@example.com").await;
    app.customer("100000001").await;
    app.member("anna@example.com", "100000001").await;
    let anna = app.login("anna@example.com").await;
    let operator = app.login("op@example.com").await;
    let id = anna.post_empty("/api/v1/me/admin-request").await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let anna_id = app.user_id("anna@example.com").await;
    operator
        .post(
            &format!("/api/v1/customers/100000001/users/{anna_id}/lock"),
            json!({}),
        )
        .await
        .ok(200);
    operator
        .post_empty(&format!("/api/v1/operator/admin-requests/{id}/approve"))
        .await
        .assert(409, "requester_ineligible");
    // Nothing changed: the request is still open and Anna no administrator.
    let r = operator
        .get("/api/v1/operator/admin-requests?customer_number=100000001")
        .await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_ne!(items[0]["status"], "approved");
    let user = app
        .portal
        .deps()
        .queries
        .user(anna_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role(), portal_core::user::Role::Employee);
}

#[tokio::test]
async fn the_global_log_and_chain_verification() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t.operator.get("/api/v1/operator/audit?per_page=5").await;
    assert!(!r.ok(200)["items"].as_array().unwrap().is_empty());
    t.admin_a
        .get("/api/v1/operator/audit")
        .await
        .assert(403, "forbidden");
    let r = t.operator.get("/api/v1/operator/audit/verify").await;
    assert_eq!(r.ok(200)["valid"], true);
    let r = t
        .operator
        .get("/api/v1/operator/audit/verify?customer_number=100000001")
        .await;
    let entries = r.ok(200)["entries"].as_u64().unwrap();
    assert!(entries > 0);
    app.store.tamper_with_audit(
        Some(
            app.portal
                .deps()
                .queries
                .customer_by_number(&number("100000001"))
                .await
                .unwrap()
                .unwrap()
                .id(),
        ),
        1,
        "tampered",
    );
    let r = t
        .operator
        .get("/api/v1/operator/audit/verify?customer_number=100000001")
        .await;
    assert_eq!(r.ok(200)["valid"], false);
    assert!(r.body["problem"].is_string());
    t.operator
        .get("/api/v1/operator/audit/verify?customer_number=999999999")
        .await
        .assert(404, "not_found");
    t.admin_a
        .get("/api/v1/operator/audit/verify")
        .await
        .assert(403, "forbidden");
}

#[tokio::test]
async fn operators_create_operators_with_a_setup_link() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t
        .operator
        .post(
            "/api/v1/operator/operators",
            json!({"email": "op2@example.com", "first_name": "Olga", "last_name": "Op"}),
        )
        .await;
    let body = r.ok(201);
    assert_eq!(body["user"]["role"], "operator");
    assert_eq!(body["user"]["status"], "invited");
    let token = body["setup_token"].as_str().unwrap();
    assert!(body["setup_url"].as_str().unwrap().ends_with(token));
    app.client()
        .get(&format!("/api/v1/invitations/{token}"))
        .await
        .ok(200);
    t.operator
        .post(
            "/api/v1/operator/operators",
            json!({"email": "a@example.com", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(409, "email_unavailable");
    t.admin_a
        .post(
            "/api/v1/operator/operators",
            json!({"email": "op3@example.com", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(403, "forbidden");
}

#[tokio::test]
async fn dead_letters_are_listed_and_requeued_by_operators() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    // Let one mail die: claim it and fail it for good.
    let now = app.portal.deps().clock.now();
    let claim = uuid::Uuid::from_u128(99);
    let claimed = app
        .store
        .claim_outbox("mail", claim, now, now + chrono::TimeDelta::minutes(1), 1)
        .await
        .unwrap();
    let id = claimed[0].id();
    let mail = claimed[0].mail().unwrap();
    assert!(
        app.store
            .mark_failed(id, claim, "550 no such user", None)
            .await
            .unwrap()
    );
    // And a message of a kind this server version does not know (a newer one wrote it).
    let future = OutboxMessage {
        id: OutboxId::from_uuid(uuid::Uuid::from_u128(0xfeed)),
        created_at: now,
        payload: Payload::Unknown {
            kind: "webhook".into(),
            recipient: "https://hooks.example.com/portal".into(),
            json: r#"{"event":"user.locked"}"#.into(),
        },
    };
    let mut commit = Commit::new();
    commit.message(future.clone());
    app.store.commit(commit).await.unwrap();
    let c2 = uuid::Uuid::from_u128(100);
    app.store
        .claim_outbox("webhook", c2, now, now + chrono::TimeDelta::minutes(1), 1)
        .await
        .unwrap();
    assert!(
        app.store
            .mark_failed(future.id, c2, "410 gone", None)
            .await
            .unwrap()
    );

    let r = t.operator.get("/api/v1/operator/outbox/dead-letters").await;
    let body = r.ok(200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    assert_eq!(items[0]["id"], future.id.to_string(), "newest first");
    assert_eq!(items[0]["kind"], "webhook");
    assert_eq!(items[0]["recipient"], "https://hooks.example.com/portal");
    assert_eq!(items[0]["summary"], "");
    assert_eq!(items[1]["id"], id.to_string());
    assert_eq!(items[1]["kind"], "mail");
    assert_eq!(items[1]["recipient"], mail.to.to_string());
    assert_eq!(items[1]["summary"], mail.intent.key());
    assert_eq!(items[1]["last_error"], "550 no such user");
    assert_eq!(items[1]["attempts"], 1);
    let r = t
        .operator
        .get("/api/v1/operator/outbox/dead-letters?kind=mail")
        .await;
    let only_mail = r.ok(200);
    let only: Vec<_> = only_mail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(only, [serde_json::Value::from(id.to_string())]);
    let r = t
        .operator
        .get("/api/v1/operator/outbox/dead-letters?kind=backchannel_logout")
        .await;
    let none = r.ok(200);
    assert_eq!(none["items"], serde_json::json!([]));
    for bad in ["Mail", "mail%27%20OR%201%3D1", "x%20y"] {
        t.operator
            .get(&format!("/api/v1/operator/outbox/dead-letters?kind={bad}"))
            .await
            .assert(400, "invalid_request");
    }
    t.admin_a
        .get("/api/v1/operator/outbox/dead-letters")
        .await
        .assert(403, "forbidden");
    t.admin_a
        .post_empty(&format!("/api/v1/operator/outbox/{id}/requeue"))
        .await
        .assert(403, "forbidden");
    let audited = |store: &adapters_memory::MemoryStore| {
        store
            .audit_entries(None)
            .into_iter()
            .filter(|e| e.record.category == AuditCategory::OutboxRequeued)
            .collect::<Vec<_>>()
    };
    assert!(
        audited(&app.store).is_empty(),
        "a refused requeue is not audited"
    );
    t.operator
        .post_empty(&format!("/api/v1/operator/outbox/{id}/requeue"))
        .await
        .ok(204);
    let e = app.store.outbox_entry(id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 0));
    let log = audited(&app.store);
    assert_eq!(log.len(), 1, "audited once, in the global chain");
    let details = &log[0].record.details;
    assert_eq!(
        details,
        &format!("outbox={id} kind=mail summary={}", mail.intent.key())
    );
    assert!(!details.contains(mail.to.as_str()), "no address in the log");
    assert_eq!(
        log[0].record.actor.kind,
        portal_core::audit::ActorKind::Operator
    );
    t.operator
        .post_empty(&format!("/api/v1/operator/outbox/{id}/requeue"))
        .await
        .assert(404, "not_found");
    assert_eq!(audited(&app.store).len(), 1, "nothing audited for a 404");
    // The unknown kind goes back as stored.
    t.operator
        .post_empty(&format!("/api/v1/operator/outbox/{}/requeue", future.id))
        .await
        .ok(204);
    let e = app.store.outbox_entry(future.id).await.unwrap().unwrap();
    assert_eq!((e.status, &e.message), (OutboxStatus::Pending, &future));
    assert!(
        audited(&app.store)[1]
            .record
            .details
            .ends_with("kind=webhook")
    );
    t.operator
        .post_empty("/api/v1/operator/outbox/xyz/requeue")
        .await
        .assert(400, "invalid_id");
}

#[tokio::test]
async fn a_second_factor_policy_leads_covered_users_to_the_setup_and_nowhere_else() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let path = "/api/v1/operator/customers/100000001/second-factor-policy";
    t.admin_a
        .put(path, json!({"policy": "all_users"}))
        .await
        .assert(403, "forbidden");
    t.operator
        .put(path, json!({"policy": "everybody"}))
        .await
        .assert(400, "invalid_request");
    let r = t
        .operator
        .put(path, json!({"policy": "administrators"}))
        .await;
    assert_eq!(r.ok(200)["second_factor_policy"], "administrators");
    let r = t.operator.get("/api/v1/operator/customers/100000001").await;
    assert_eq!(r.ok(200)["second_factor_policy"], "administrators");

    // The administrator: only the second-factor setup (and logout) until done.
    t.admin_a
        .get("/api/v1/me")
        .await
        .assert(403, "second_factor_required");
    t.admin_a
        .get("/api/v1/customers/100000001/users")
        .await
        .assert(403, "second_factor_required");
    t.employee_a.get("/api/v1/me").await.ok(200);
    t.admin_b.get("/api/v1/me").await.ok(200);
    let setup = t.admin_a.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.ok(201)["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&app, &secret);
    t.admin_a
        .post("/api/v1/me/mfa/totp/confirm", json!({"code": code}))
        .await
        .ok(200);
    t.admin_a.get("/api/v1/me").await.ok(200);
    t.admin_a
        .get("/api/v1/customers/100000001/users")
        .await
        .ok(200);

    // All users: the employee is led to the setup too; logout still works.
    t.operator
        .put(path, json!({"policy": "all_users"}))
        .await
        .ok(200);
    t.employee_a
        .get("/api/v1/me")
        .await
        .assert(403, "second_factor_required");
    t.employee_a.post_empty("/api/v1/auth/logout").await.ok(204);
    t.employee_a
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
}

#[tokio::test]
async fn an_operator_without_a_second_factor_reaches_only_its_setup_over_the_api() {
    let app = TestApp::new();
    app.customer("100000001").await;
    // An operator from a setup link, with a password but no second factor yet.
    let setup = app
        .portal
        .create_operator(
            &portal_core::Actor::System,
            &email("neu-op@example.com"),
            &name("Nina"),
            &name("Neu"),
            portal_core::values::Language::De,
        )
        .await
        .unwrap();
    let c = app.client();
    let path = format!("/api/v1/invitations/{}/accept", setup.token.expose());
    let r = c
        .post(
            &path,
            json!({"password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    let ticket = r.ok(202)["ticket"].as_str().unwrap().to_owned();
    let code = app.secret_for("neu-op@example.com");
    c.post(
        "/api/v1/auth/register/verify",
        json!({"ticket": ticket, "code": code}),
    )
    .await
    .ok(201);
    // Operators always need a second factor (R22): nothing but its setup and logout until then.
    c.get("/api/v1/operator/customers")
        .await
        .assert(403, "second_factor_required");
    c.get("/api/v1/me")
        .await
        .assert(403, "second_factor_required");
    let setup = c.post_empty("/api/v1/me/mfa/totp").await;
    let secret = setup.ok(201)["secret"].as_str().unwrap().to_owned();
    c.post(
        "/api/v1/me/mfa/totp/confirm",
        json!({"code": totp_code(&app, &secret)}),
    )
    .await
    .ok(200);
    c.get("/api/v1/operator/customers").await.ok(200);
    // The next login asks for the app's code.
    let again = app.client();
    let r = again
        .post(
            "/api/v1/auth/login",
            json!({"email": "neu-op@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
}
