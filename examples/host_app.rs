//! An existing axum app — an invoice service — that mounts Portal under `/portal` and protects
//! its own `/invoices` with Portal's sessions and the "Meine Belege" permission (`documents`).
//!
//! `cargo run --example host_app`, then log in through `/portal` (JSON API or the web pages):
//! `curl -c jar -b jar localhost:3000/portal/api/v1/auth/csrf` …, and `GET /invoices` answers
//! 401 without a session, 403 without "Meine Belege", and the invoices of your own customer.
#![allow(dead_code)]

use adapters_http::guard::{PortalUser, RequirePermission};
use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig};
use adapters_memory::MemoryStore;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portal_core::{Deps, Portal};
use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;

/// The host's own data: invoices per customer number.
#[derive(Clone, Default)]
pub struct Invoices(pub Arc<BTreeMap<String, Vec<String>>>);

async fn list_invoices(State(invoices): State<Invoices>, user: PortalUser) -> String {
    // The tenant comes from the session, never from the request.
    let customer = user.customer_number().unwrap_or_default();
    let mine = invoices.0.get(&customer).cloned().unwrap_or_default();
    format!("Rechnungen von {customer}: {}", mine.join(", "))
}

/// The host app around a portal: its routes guarded by "Meine Belege", Portal under `/portal`.
///
/// # Errors
/// A bad public URL, or an area missing from the portal's catalog.
pub fn app(portal: Arc<Portal>, invoices: Invoices) -> Result<Router, Box<dyn Error>> {
    let config = HttpConfig::new("http://127.0.0.1:3000/portal", CookieKey::generate())?
        .insecure_development_cookies();
    let state = AppState::new(portal, config, Arc::new(AlwaysReady));
    let documents = RequirePermission::new(&state, "documents")?;
    Ok(Router::new()
        .route("/invoices", get(list_invoices))
        .route_layer(documents)
        .with_state(invoices)
        .nest("/portal", adapters_http::router(state)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let store = Arc::new(MemoryStore::new());
    let portal = Arc::new(Portal::new(
        Deps::production(store),
        Default::default(),
        Default::default(),
    )?);
    let invoices = Invoices(Arc::new(BTreeMap::from([(
        "123456789".to_owned(),
        vec!["RE-2026-001".to_owned(), "RE-2026-002".to_owned()],
    )])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("invoice service on http://127.0.0.1:3000 — /invoices, Portal under /portal");
    axum::serve(
        listener,
        app(portal, invoices)?.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
