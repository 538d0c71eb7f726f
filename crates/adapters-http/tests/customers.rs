//! `/api/v1/customers/{number}/*`: a customer's administration.

use crate::support::*;
use serde_json::json;

const A: &str = "/api/v1/customers/100000001";
const B: &str = "/api/v1/customers/100000002";

#[tokio::test]
async fn the_user_table_lists_searches_and_pages() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t.admin_a.get(&format!("{A}/users")).await;
    let body = r.ok(200);
    assert_eq!(body["total"], 2);
    assert_eq!(body["total_capped"], false);
    assert_eq!(body["per_page"], 10);
    assert!(body["next"].is_null());
    let u = &body["items"][0];
    for field in [
        "id",
        "email",
        "first_name",
        "last_name",
        "status",
        "role",
        "last_login_at",
        "permissions",
        "customer_number",
        "language",
    ] {
        assert!(u.get(field).is_some(), "{field} missing in {u}");
    }
    let r = t.admin_a.get(&format!("{A}/users?per_page=1")).await;
    let next = r.ok(200)["next"].as_str().unwrap().to_owned();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = t
        .admin_a
        .get(&format!("{A}/users?per_page=1&cursor={next}"))
        .await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1);
    let r = t.admin_a.get(&format!("{A}/users?q=eingeladen")).await;
    assert_eq!(r.ok(200)["total"], 1);
    t.admin_a
        .get(&format!("{A}/users?page=0"))
        .await
        .assert(400, "page_out_of_range");
    t.admin_a
        .get(&format!("{A}/users?per_page=1000"))
        .await
        .assert(400, "invalid_page_size");
}

#[tokio::test]
async fn other_customers_answer_like_unknown_ones_and_employees_are_forbidden() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let foreign = t.employee_b_id;
    let unknown = "00000000-0000-7000-8000-0000000fffff";
    // A foreign customer: 404 like an unknown one.
    t.admin_a
        .get(&format!("{B}/users"))
        .await
        .assert(404, "not_found");
    t.admin_a
        .get("/api/v1/customers/999999999/users")
        .await
        .assert(404, "not_found");
    // A foreign user addressed through the own customer: 404 like an unknown id.
    for id in [foreign.to_string(), unknown.to_string()] {
        let r1 = t.admin_a.get(&format!("{A}/users/{id}")).await;
        r1.assert(404, "not_found");
        for (method, path) in [
            ("DELETE", format!("{A}/users/{id}")),
            ("GET", format!("{A}/users/{id}/permissions")),
            ("POST", format!("{A}/users/{id}/lock")),
            ("DELETE", format!("{A}/users/{id}/lock")),
            ("POST", format!("{A}/users/{id}/activate")),
            ("POST", format!("{A}/users/{id}/invitation")),
            ("DELETE", format!("{A}/users/{id}/admin-rights")),
            ("DELETE", format!("{A}/users/{id}/sessions")),
            ("GET", format!("{A}/users/{id}/audit")),
            ("POST", format!("{A}/users/{id}/permissions/groups/my_data")),
        ] {
            let r = t
                .admin_a
                .send(Client::req(method.parse().unwrap(), &path))
                .await;
            r.assert(404, "not_found");
        }
        t.admin_a
            .put(
                &format!("{A}/users/{id}/permissions"),
                json!({"permissions": []}),
            )
            .await
            .assert(404, "not_found");
    }
    // Exactly alike: same status, code and message.
    let strip = |r: &Reply| {
        let mut e = r.body["error"].clone();
        e.as_object_mut().unwrap().remove("request_id");
        (r.status, e)
    };
    assert_eq!(
        strip(&t.admin_a.get(&format!("{A}/users/{foreign}")).await),
        strip(&t.admin_a.get(&format!("{A}/users/{unknown}")).await)
    );
    assert_eq!(
        strip(&t.admin_a.get(&format!("{B}/users")).await),
        strip(&t.admin_a.get("/api/v1/customers/999999999/users").await)
    );
    // Through the foreign customer's number: 404 as well.
    t.admin_a
        .get(&format!("{B}/users/{foreign}"))
        .await
        .assert(404, "not_found");
    // An employee of the customer: 403.
    t.employee_a
        .get(&format!("{A}/users"))
        .await
        .assert(403, "forbidden");
    t.employee_a
        .get(&format!("{A}/audit"))
        .await
        .assert(403, "forbidden");
    // An operator manages every customer.
    t.operator.get(&format!("{B}/users")).await.ok(200);
    // Without a session: 401.
    app.client()
        .get(&format!("{A}/users"))
        .await
        .assert(401, "unauthenticated");
}

#[tokio::test]
async fn inviting_creates_an_invited_user_and_refuses_bad_input() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t
        .admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "new@example.com", "first_name": "Neu", "last_name": "Person",
                   "permissions": ["support_requests"], "language": "en"}),
        )
        .await;
    let body = r.ok(201);
    assert_eq!(body["status"], "invited");
    assert_eq!(body["permissions"], json!(["support_requests"]));
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(app.mails_to("new@example.com").len() == 1);
    // Resend the invitation.
    t.admin_a
        .post_empty(&format!("{A}/users/{id}/invitation"))
        .await
        .ok(202);
    let e = t.employee_a_id;
    t.admin_a
        .post_empty(&format!("{A}/users/{e}/invitation"))
        .await
        .assert(409, "wrong_state");
    // Already a member, unavailable elsewhere, not grantable, bad address.
    t.admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "e@example.com", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(409, "already_member");
    t.admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "f@example.com", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(409, "email_unavailable");
    let r = t
        .admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "z@example.com", "first_name": "X", "last_name": "Y", "permissions": ["nope", "!!"]}),
        )
        .await;
    r.assert(422, "not_grantable");
    t.admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "z", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(400, "invalid_request");
    t.admin_a
        .post(&format!("{A}/users"), json!({"email": "z@example.com", "first_name": "X", "last_name": "Y", "role": "administrator"}))
        .await
        .assert(400, "unknown_field");
    t.employee_a
        .post(
            &format!("{A}/users"),
            json!({"email": "z@example.com", "first_name": "X", "last_name": "Y"}),
        )
        .await
        .assert(403, "forbidden");
}

#[tokio::test]
async fn permissions_are_replaced_and_granted_by_group() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let e = t.employee_a_id;
    let r = t.admin_a.get(&format!("{A}/users/{e}/permissions")).await;
    let body = r.ok(200);
    assert_eq!(body["permissions"], json!(["support_requests"]));
    assert!(body["catalog"].as_array().unwrap().len() > 3);
    let r = t
        .admin_a
        .put(
            &format!("{A}/users/{e}/permissions"),
            json!({"permissions": []}),
        )
        .await;
    assert_eq!(r.ok(200)["permissions"], json!([]));
    t.admin_a
        .put(
            &format!("{A}/users/{e}/permissions"),
            json!({"permissions": ["unknown_area"]}),
        )
        .await
        .assert(422, "not_grantable");
    let r = t
        .admin_a
        .post_empty(&format!("{A}/users/{e}/permissions/groups/my_data"))
        .await;
    let granted = r.ok(200)["permissions"].as_array().unwrap().len();
    assert!(granted > 1);
    // Idempotent.
    let r = t
        .admin_a
        .post_empty(&format!("{A}/users/{e}/permissions/groups/my_data"))
        .await;
    assert_eq!(r.ok(200)["permissions"].as_array().unwrap().len(), granted);
    let r = t
        .admin_a
        .delete(&format!("{A}/users/{e}/permissions/groups/my_data"))
        .await;
    assert_eq!(r.ok(200)["permissions"], json!([]));
    t.admin_a
        .post_empty(&format!("{A}/users/{e}/permissions/groups/no_such_group"))
        .await
        .assert(404, "unknown_group");
    // The change applies to the employee's very next request.
    let me = t.employee_a.get("/api/v1/me").await;
    assert_eq!(me.ok(200)["permissions"], json!([]));
}

#[tokio::test]
async fn locking_ends_the_users_sessions_at_once_and_unlocking_restores_login() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let e = t.employee_a_id;
    t.employee_a.get("/api/v1/me").await.ok(200);
    let r = t
        .admin_a
        .post(
            &format!("{A}/users/{e}/lock"),
            json!({"reason": "Laptop verloren"}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "locked");
    t.employee_a
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
    t.admin_a
        .post_empty(&format!("{A}/users/{e}/lock"))
        .await
        .assert(409, "wrong_state");
    t.admin_a
        .post(&format!("{A}/users/{e}/lock"), json!({"reason": ""}))
        .await
        .assert(400, "invalid_request");
    let r = t.admin_a.delete(&format!("{A}/users/{e}/lock")).await;
    assert_eq!(r.ok(200)["status"], "active");
    t.employee_a
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
    app.login("e@example.com").await;
    t.admin_a
        .delete(&format!("{A}/users/{e}/lock"))
        .await
        .assert(409, "wrong_state");
}

#[tokio::test]
async fn the_last_administrator_cannot_remove_themself() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let me = app.user_id("a@example.com").await;
    t.admin_a
        .post_empty(&format!("{A}/users/{me}/lock"))
        .await
        .assert(409, "last_admin");
    t.admin_a
        .delete(&format!("{A}/users/{me}"))
        .await
        .assert(409, "last_admin");
    t.admin_a
        .delete(&format!("{A}/users/{me}/admin-rights"))
        .await
        .assert(409, "last_admin");
    let e = t.employee_a_id;
    t.admin_a
        .delete(&format!("{A}/users/{e}/admin-rights"))
        .await
        .assert(409, "wrong_state");
}

#[tokio::test]
async fn activating_ending_sessions_and_deleting() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    // A joiner waits for activation.
    app.member("j@example.com", "100000001").await;
    let j = app.user_id("j@example.com").await;
    let r = t.admin_a.get(&format!("{A}/users/{j}")).await;
    assert_eq!(r.ok(200)["status"], "pending_activation");
    let r = t
        .admin_a
        .post_empty(&format!("{A}/users/{j}/activate"))
        .await;
    assert_eq!(r.ok(200)["status"], "active");
    t.admin_a
        .post_empty(&format!("{A}/users/{j}/activate"))
        .await
        .assert(409, "wrong_state");
    // End a user's sessions.
    let e = t.employee_a_id;
    t.admin_a
        .delete(&format!("{A}/users/{e}/sessions"))
        .await
        .ok(204);
    t.employee_a
        .get("/api/v1/me")
        .await
        .assert(401, "unauthenticated");
    // Delete.
    t.admin_a.delete(&format!("{A}/users/{e}")).await.ok(204);
    t.admin_a
        .get(&format!("{A}/users/{e}"))
        .await
        .assert(404, "not_found");
}

#[tokio::test]
async fn change_logs_of_users_and_customers() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let e = t.employee_a_id;
    t.admin_a
        .post_empty(&format!("{A}/users/{e}/lock"))
        .await
        .ok(200);
    let r = t.admin_a.get(&format!("{A}/users/{e}/audit")).await;
    let body = r.ok(200);
    let first = &body["items"][0];
    assert_eq!(first["category"], "user.locked");
    assert!(first["category_label"].is_string());
    assert!(first["actor"].is_string());
    let r = t.admin_a.get(&format!("{A}/audit?per_page=2")).await;
    let next = r.ok(200)["next"].as_str().unwrap().to_owned();
    t.admin_a
        .get(&format!("{A}/audit?per_page=2&cursor={next}"))
        .await
        .ok(200);
    let r = t
        .admin_a
        .get(&format!("{A}/audit?category=user.locked"))
        .await;
    assert!(
        r.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["category"] == "user.locked")
    );
    t.admin_a
        .get(&format!("{A}/audit?category=nope"))
        .await
        .assert(400, "invalid_request");
    t.admin_a
        .get(&format!("{A}/audit?from=yesterday"))
        .await
        .assert(400, "invalid_request");
    t.admin_a
        .get(&format!("{A}/audit?page=2"))
        .await
        .assert(400, "page_out_of_range");
    t.admin_a
        .get(&format!("{B}/audit"))
        .await
        .assert(404, "not_found");
}

#[tokio::test]
async fn admin_requests_are_consented_or_declined_by_the_customers_administrator() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t.employee_a.post_empty("/api/v1/me/admin-request").await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["status"], "awaiting_consent");
    let r = t.admin_a.get(&format!("{A}/admin-requests")).await;
    let item = &r.ok(200)["items"][0];
    assert_eq!(item["requester_email"], "e@example.com");
    // Another customer's administrator cannot see or decide it.
    t.admin_b
        .post_empty(&format!("{B}/admin-requests/{id}/consent"))
        .await
        .assert(404, "not_found");
    t.admin_b
        .post_empty(&format!("{A}/admin-requests/{id}/consent"))
        .await
        .assert(404, "not_found");
    t.employee_a
        .post_empty(&format!("{A}/admin-requests/{id}/consent"))
        .await
        .assert(403, "forbidden");
    let r = t
        .admin_a
        .post_empty(&format!("{A}/admin-requests/{id}/consent"))
        .await;
    assert_eq!(r.ok(200)["status"], "awaiting_approval");
    t.admin_a
        .post_empty(&format!("{A}/admin-requests/{id}/consent"))
        .await
        .assert(409, "wrong_state");
    let r = t
        .admin_a
        .post_empty(&format!("{A}/admin-requests/{id}/decline"))
        .await;
    assert_eq!(r.ok(200)["status"], "rejected");
    t.admin_a
        .post_empty(&format!(
            "{A}/admin-requests/00000000-0000-7000-8000-0000000fffff/decline"
        ))
        .await
        .assert(404, "not_found");
}

#[tokio::test]
async fn the_thirteenth_invitation_to_one_address_in_a_day_answers_429_and_sends_nothing() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t
        .admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "aussen@example.com", "first_name": "A", "last_name": "U"}),
        )
        .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    for _ in 0..11 {
        t.admin_a
            .post_empty(&format!("{A}/users/{id}/invitation"))
            .await
            .ok(202);
    }
    assert_eq!(app.mails_to("aussen@example.com").len(), 12);
    let r = t
        .admin_a
        .post_empty(&format!("{A}/users/{id}/invitation"))
        .await;
    r.assert(429, "throttled");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(app.mails_to("aussen@example.com").len(), 12, "nothing sent");
}

#[tokio::test]
async fn inviting_an_address_with_an_account_elsewhere_keeps_its_answer_and_mails_the_owner() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    // f@example.com is an employee of the other customer.
    let before = app.mails_to("f@example.com").len();
    t.admin_a
        .post(
            &format!("{A}/users"),
            json!({"email": "f@example.com", "first_name": "F", "last_name": "B"}),
        )
        .await
        .assert(409, "email_unavailable");
    let mails = app.mails_to("f@example.com");
    assert_eq!(mails.len(), before + 1);
    assert_eq!(
        mails.last().unwrap().intent.key(),
        "invitation_to_existing_account"
    );
}

#[tokio::test]
async fn the_change_log_export_is_signed_jsonl_of_the_own_customer_only() {
    use portal_core::audit_export::{Keys, verify_export};
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t.admin_a.get(&format!("{A}/audit/export")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/jsonl");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"audit-100000001.jsonl\""
    );
    let ok = verify_export(&r.text, Keys::FromHeader).unwrap();
    let customer_id = |text: &str| -> portal_core::ids::CustomerId {
        let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        header["customer_id"].as_str().unwrap().parse().unwrap()
    };
    let a = customer_id(&r.text);
    assert_eq!(ok.customer, "100000001");
    assert!(ok.entries >= 3, "{ok:?}");
    // The published JWKS verifies it too.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(app.client().get("/oidc/jwks").await.ok(200).clone()).unwrap();
    assert_eq!(verify_export(&r.text, Keys::Given(&jwks)).unwrap(), ok);
    // Another customer's log: 404 like an unknown one; employees 403; no session 401.
    t.admin_a
        .get(&format!("{B}/audit/export"))
        .await
        .assert(404, "not_found");
    t.admin_a
        .get("/api/v1/customers/999999999/audit/export")
        .await
        .assert(404, "not_found");
    t.employee_a
        .get(&format!("{A}/audit/export"))
        .await
        .assert(403, "forbidden");
    app.client()
        .get(&format!("{A}/audit/export"))
        .await
        .assert(401, "unauthenticated");
    // Operators export any customer.
    let rb = t.operator.get(&format!("{B}/audit/export")).await;
    assert_eq!(
        verify_export(&rb.text, Keys::FromHeader).unwrap().customer,
        "100000002"
    );
    // Neither file holds the other customer's id.
    let b = customer_id(&rb.text);
    assert!(!r.text.contains(&b.to_string()));
    assert!(!rb.text.contains(&a.to_string()));
    // A chain broken in storage is refused, never signed.
    app.store.tamper_with_audit(Some(a), 1, "x");
    t.admin_a
        .get(&format!("{A}/audit/export"))
        .await
        .assert(409, "chain_broken");
}
