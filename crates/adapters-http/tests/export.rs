//! `GET /api/v1/me/export` and `GET /api/v1/customers/{number}/users/{id}/export`: a person's
//! data as a JSON attachment; step-up, daily budget, change log and mail; nothing of another
//! customer.

use crate::support::*;
use chrono::TimeDelta;
use serde_json::json;

const A: &str = "/api/v1/customers/100000001";
const B: &str = "/api/v1/customers/100000002";

/// What belongs to customer 100000002 in [`TestApp::two_customers`].
fn foreign(t: &Tenants) -> Vec<String> {
    vec![
        "f@example.com".to_owned(),
        "b@example.com".to_owned(),
        "100000002".to_owned(),
        t.employee_b_id.to_string(),
    ]
}

#[tokio::test]
async fn the_own_export_is_an_attachment_with_the_persons_data_audited_and_mailed() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let mails = app.mails_to("e@example.com").len();
    let r = t.employee_a.get("/api/v1/me/export").await;
    let body = r.ok(200);
    let disposition = r.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"portal-data-"),
        "{disposition}"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(body["format"], "portal-data-export-v1");
    assert_eq!(body["scope"], "self");
    assert_eq!(body["profile"]["email"], "e@example.com");
    assert_eq!(body["customer"]["number"], "D100000001");
    assert_eq!(body["permissions"][0]["key"], "support_requests");
    assert!(
        body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.get("ip").is_some()),
        "the own export shows session addresses: {}",
        body["sessions"]
    );
    for f in foreign(&t) {
        assert!(
            !r.text.contains(&f),
            "{f} of the other customer in the file"
        );
    }
    let sent = app.mails_to("e@example.com");
    assert_eq!(sent.len(), mails + 1);
    assert_eq!(sent.last().unwrap().intent.key(), "data_exported");
    // The change log shows it to the administrator.
    let log = t
        .admin_a
        .get(&format!("{A}/users/{}/audit", t.employee_a_id))
        .await;
    assert_eq!(log.ok(200)["items"][0]["category"], "account.data_exported");
}

#[tokio::test]
async fn an_administrator_exports_a_user_without_session_addresses_or_devices() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let r = t
        .admin_a
        .get(&format!("{A}/users/{}/export", t.employee_a_id))
        .await;
    let body = r.ok(200);
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(body["scope"], "administrator");
    assert_eq!(body["profile"]["email"], "e@example.com");
    let sessions = body["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "the sessions, with times");
    for s in sessions {
        assert!(
            s.get("ip").is_none() && s.get("user_agent").is_none(),
            "{s}"
        );
    }
    assert_eq!(body["applications"], json!([]));
    for f in foreign(&t) {
        assert!(
            !r.text.contains(&f),
            "{f} of the other customer in the file"
        );
    }
    let mail = app.mails_to("e@example.com").pop().unwrap();
    assert_eq!(mail.intent.key(), "data_exported");
}

#[tokio::test]
async fn another_customers_user_is_not_found_and_an_employee_may_not_export_others() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    let mails = app.mails_to("f@example.com").len();
    t.admin_a
        .get(&format!("{A}/users/{}/export", t.employee_b_id))
        .await
        .assert(404, "not_found");
    t.admin_b
        .get(&format!("{A}/users/{}/export", t.employee_a_id))
        .await
        .assert(404, "not_found");
    t.admin_a
        .get(&format!("{B}/users/{}/export", t.employee_b_id))
        .await
        .assert(404, "not_found");
    let r = t
        .employee_a
        .get(&format!("{A}/users/{}/export", t.employee_a_id))
        .await;
    assert!(
        matches!(r.code(), "forbidden" | "not_found"),
        "an employee: {}",
        r.text
    );
    assert_eq!(app.mails_to("f@example.com").len(), mails, "nothing mailed");
}

#[tokio::test]
async fn an_export_needs_a_fresh_authentication() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    app.advance(TimeDelta::minutes(16));
    let mails = app.mails_to("e@example.com").len();
    t.employee_a
        .get("/api/v1/me/export")
        .await
        .assert(403, "reauth_required");
    t.admin_a
        .get(&format!("{A}/users/{}/export", t.employee_a_id))
        .await
        .assert(403, "reauth_required");
    assert_eq!(app.mails_to("e@example.com").len(), mails, "nothing mailed");
    t.employee_a
        .post("/api/v1/auth/reauthenticate", json!({"password": PASSWORD}))
        .await
        .ok(200);
    t.employee_a.get("/api/v1/me/export").await.ok(200);
}

#[tokio::test]
async fn exports_are_limited_per_person_and_day() {
    let app = TestApp::new();
    let t = app.two_customers().await;
    for _ in 0..5 {
        t.employee_a.get("/api/v1/me/export").await.ok(200);
    }
    let mails = app.mails_to("e@example.com").len();
    let r = t.employee_a.get("/api/v1/me/export").await;
    r.assert(429, "throttled");
    assert!(r.headers.contains_key("retry-after"));
    // The administrator's export of the same person takes from the same budget.
    t.admin_a
        .get(&format!("{A}/users/{}/export", t.employee_a_id))
        .await
        .assert(429, "throttled");
    assert_eq!(app.mails_to("e@example.com").len(), mails, "nothing mailed");
}

#[tokio::test]
async fn both_exports_are_in_the_openapi_document() {
    let app = TestApp::new();
    let paths = &app.spec["paths"];
    for p in [
        "/api/v1/me/export",
        "/api/v1/customers/{number}/users/{id}/export",
    ] {
        let op = &paths[p]["get"];
        assert!(op.is_object(), "{p} missing");
        assert!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with("/DataExportView")),
            "{p}: {}",
            op["responses"]["200"]
        );
        assert!(
            op["responses"]["403"].is_object(),
            "reauth_required documented"
        );
        assert!(op["responses"]["429"].is_object(), "throttled documented");
    }
}
