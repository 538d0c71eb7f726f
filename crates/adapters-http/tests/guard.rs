//! The layer and extractor that protect a host application's own routes (issue "Embedding"):
//! same rules (R1, R6, R11) and answers (401 / 403 / 404) as Portal's own endpoints.

use crate::support::{self, *};
use adapters_http::guard::{PortalUser, RequireAdmin, RequirePermission};
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use portal_core::values::CustomerNumber;
use serde_json::json;

async fn invoices(user: PortalUser) -> String {
    format!("invoices of {}", user.customer_number().unwrap_or_default())
}

async fn customer_invoices(
    user: PortalUser,
    Path(n): Path<String>,
) -> Result<String, adapters_http::ApiError> {
    let n = CustomerNumber::parse(&n)
        .map_err(|_| adapters_http::ApiError::new(adapters_http::error::ErrorCode::NotFound))?;
    user.ensure_customer(&n)?;
    Ok(format!("invoices of {n}"))
}

/// The host app: its own routes, guarded, next to Portal's router.
fn host(t: &TestApp) -> Router {
    let documents = RequirePermission::new(&t.state, "documents").unwrap();
    let invoices_routes = Router::new()
        .route("/invoices", get(invoices).post(invoices))
        .route("/customers/{n}/invoices", get(customer_invoices))
        .route_layer(documents);
    let admin_routes = Router::new()
        .route("/invoices/settings", get(invoices))
        .route_layer(RequireAdmin::new(&t.state));
    Router::new()
        .merge(invoices_routes)
        .merge(admin_routes)
        .merge(t.app.clone())
}

#[tokio::test]
async fn an_unknown_area_is_refused_when_the_layer_is_built() {
    let t = TestApp::new();
    assert!(RequirePermission::new(&t.state, "dokuments").is_err());
}

#[tokio::test]
async fn active_users_with_the_permission_pass_and_others_get_the_portals_answers() {
    let t = TestApp::new();
    let w = t.two_customers().await;
    let app = host(&t);
    let e = w.employee_a.on(app.clone());
    // e@ holds only support_requests: the area is closed (R1) …
    e.get("/invoices").await.assert(403, "forbidden");
    // … until the admin grants "Meine Belege"; the very next request passes (R6).
    let a = w.admin_a.on(app.clone());
    a.put(
        &format!(
            "/api/v1/customers/100000001/users/{}/permissions",
            w.employee_a_id
        ),
        json!({"permissions": ["documents", "support_requests"]}),
    )
    .await
    .ok(200);
    let r = e.get("/invoices").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "invoices of 100000001");
    // Unsafe methods need the CSRF token like the portal's own endpoints.
    let r = e
        .send(support::Req {
            csrf: false,
            ..support::Client::req(axum::http::Method::POST, "/invoices")
        })
        .await;
    r.assert(403, "csrf_failed");
    assert_eq!(e.post("/invoices", json!({})).await.status, 200);
    // Revoked again: closed again at once.
    a.put(
        &format!(
            "/api/v1/customers/100000001/users/{}/permissions",
            w.employee_a_id
        ),
        json!({"permissions": []}),
    )
    .await
    .ok(200);
    e.get("/invoices").await.assert(403, "forbidden");
}

#[tokio::test]
async fn without_a_session_the_answer_is_401() {
    let t = TestApp::new();
    let anon = t.client().on(host(&t));
    anon.get("/invoices").await.assert(401, "unauthenticated");
    anon.get("/invoices/settings")
        .await
        .assert(401, "unauthenticated");
}

#[tokio::test]
async fn a_locked_users_live_session_is_refused_at_once() {
    let t = TestApp::new();
    let w = t.two_customers().await;
    let app = host(&t);
    let a = w.admin_a.on(app.clone());
    a.put(
        &format!(
            "/api/v1/customers/100000001/users/{}/permissions",
            w.employee_a_id
        ),
        json!({"permissions": ["documents"]}),
    )
    .await
    .ok(200);
    let e = w.employee_a.on(app.clone());
    assert_eq!(e.get("/invoices").await.status, 200);
    a.post(
        &format!("/api/v1/customers/100000001/users/{}/lock", w.employee_a_id),
        json!({}),
    )
    .await
    .ok(200);
    e.get("/invoices").await.assert(401, "unauthenticated");
}

#[tokio::test]
async fn a_user_waiting_for_activation_enters_no_area() {
    let t = TestApp::new();
    let w = t.two_customers().await;
    // A new member of a customer with an admin waits for activation; give the permission anyway.
    t.member("wait@example.com", "100000001").await;
    let waiting = t.user_id("wait@example.com").await;
    let a = w.admin_a.on(host(&t));
    a.put(
        &format!("/api/v1/customers/100000001/users/{waiting}/permissions"),
        json!({"permissions": ["documents"]}),
    )
    .await
    .ok(200);
    let c = t.login("wait@example.com").await.on(host(&t));
    c.get("/invoices").await.assert(403, "forbidden");
}

#[tokio::test]
async fn another_customers_data_is_not_found_like_unknown_data() {
    let t = TestApp::new();
    let w = t.two_customers().await;
    let b = w.admin_b.on(host(&t));
    // Admins may enter every area of their customer.
    assert_eq!(b.get("/customers/100000002/invoices").await.status, 200);
    let foreign = b.get("/customers/100000001/invoices").await;
    let unknown = b.get("/customers/999999999/invoices").await;
    foreign.assert(404, "not_found");
    unknown.assert(404, "not_found");
    assert_eq!(foreign.text, unknown.text, "identical answers");
}

#[tokio::test]
async fn require_admin_lets_only_active_admins_through() {
    let t = TestApp::new();
    let w = t.two_customers().await;
    let app = host(&t);
    assert_eq!(
        w.admin_a
            .on(app.clone())
            .get("/invoices/settings")
            .await
            .status,
        200
    );
    w.employee_a
        .on(app.clone())
        .get("/invoices/settings")
        .await
        .assert(403, "forbidden");
    w.operator
        .on(app)
        .get("/invoices/settings")
        .await
        .assert(403, "forbidden");
}
