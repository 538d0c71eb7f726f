//! An existing axum app — an invoice service — that mounts Portal under `/portal` and protects
//! its own `/invoices` with Portal's sessions and the "Meine Belege" permission (`documents`).
//!
//! `cargo run --example host_app` seeds a customer with an administrator and an employee, prints
//! their logins and serves on <http://127.0.0.1:3000>: log in at `/portal/login` (or through the
//! JSON API under `/portal/api/v1`, documented at `/portal/api/docs/`), then `GET /invoices`
//! answers 401 without a session, 403 without "Meine Belege" (the employee, until the
//! administrator grants it at `/portal/admin/users`) and the invoices of your own customer.
//! `cargo run --example host_app -- --check` serves on a free port, asks itself once and exits.
#![allow(dead_code)]

use adapters_http::guard::{PortalUser, RequirePermission};
use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig};
use adapters_memory::MemoryStore;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::ids::UserId;
use portal_core::service::{AcceptInvitation, NewCustomer, Register, RegistrationTicket};
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Deps, Portal};
use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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

/// The password of the seeded accounts.
pub const PASSWORD: &str = "korrekt pferd batterie";
/// The seeded customer.
pub const CUSTOMER: &str = "123456789";

/// Confirms a registration with the code from the outbox (where a dispatcher would pick it up).
async fn confirm(
    portal: &Portal,
    store: &MemoryStore,
    t: RegistrationTicket,
) -> Result<UserId, Box<dyn Error>> {
    let code = store
        .outbox()
        .iter()
        .rev()
        .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()));
    let s = portal
        .verify_registration(
            t.ticket.expose(),
            &code.ok_or("no code")?,
            Default::default(),
        )
        .await?;
    Ok(s.user_id)
}

/// A registered account of `email`, linked to [`CUSTOMER`] by its number.
async fn member(
    portal: &Portal,
    store: &MemoryStore,
    email: &str,
) -> Result<UserId, Box<dyn Error>> {
    let (first, _) = email.split_once('@').ok_or("no address")?;
    let t = portal
        .register(Register {
            email: EmailAddress::parse(email)?,
            first_name: PersonName::parse(first)?,
            last_name: PersonName::parse("Muster")?,
            password: PASSWORD.into(),
            password_confirmation: PASSWORD.into(),
            language: Language::De,
        })
        .await?;
    let id = confirm(portal, store, t).await?;
    let user = Actor::user(id);
    portal
        .choose_affiliation(&user, &AffiliationKey::parse("de-business")?)
        .await?;
    portal
        .link_customer(&user, &CustomerNumber::parse(CUSTOMER)?)
        .await?;
    Ok(id)
}

/// Seeds, through the core, customer [`CUSTOMER`] with its administrator anna@musterbau.de
/// (approved by the operator ops@vendor.example) and the employee ben@musterbau.de (activated by
/// Anna, without "Meine Belege"); every password is [`PASSWORD`].
///
/// # Errors
/// A use case failed.
pub async fn seed(portal: &Portal, store: &MemoryStore) -> Result<(), Box<dyn Error>> {
    let number = CustomerNumber::parse(CUSTOMER)?;
    let customer = NewCustomer {
        number: number.clone(),
        name: CompanyName::parse("Musterbau GmbH")?,
        affiliations: BTreeSet::from([AffiliationKey::parse("de-business")?]),
        channel: ServiceChannel::Direct,
        entitlements: None,
        default_permissions: None,
    };
    portal.create_customer(&Actor::System, &customer).await?;
    let (ops, name) = (
        EmailAddress::parse("ops@vendor.example")?,
        PersonName::parse("Olga")?,
    );
    let setup = portal
        .create_operator(&Actor::System, &ops, &name, &name, Language::De)
        .await?;
    let accept = AcceptInvitation {
        password: PASSWORD.into(),
        password_confirmation: PASSWORD.into(),
    };
    let t = portal
        .accept_invitation(setup.token.expose(), accept)
        .await?;
    let operator = Actor::user(confirm(portal, store, t).await?);
    let anna = Actor::user(member(portal, store, "anna@musterbau.de").await?);
    let request = portal.request_admin_rights(&anna).await?;
    portal
        .approve_admin_request(&operator, request.id())
        .await?;
    let ben = member(portal, store, "ben@musterbau.de").await?;
    portal.activate_user(&anna, &number, ben).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let check = std::env::args().any(|a| a == "--check");
    let store = Arc::new(MemoryStore::new());
    let portal = Arc::new(Portal::new(
        Deps::production(store.clone()),
        Default::default(),
        Default::default(),
    )?);
    seed(&portal, &store).await?;
    let invoices = Invoices(Arc::new(BTreeMap::from([(
        CUSTOMER.to_owned(),
        vec!["RE-2026-001".to_owned(), "RE-2026-002".to_owned()],
    )])));
    let app = app(portal, invoices)?.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = tokio::net::TcpListener::bind(if check {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    })
    .await?;
    if check {
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /invoices HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        let status = answer.lines().next().unwrap_or_default();
        println!("check: GET /invoices without a session: {status}");
        return if status.starts_with("HTTP/1.1 401") {
            Ok(())
        } else {
            Err(answer.into())
        };
    }
    println!("invoice service on http://127.0.0.1:3000 (Ctrl-C stops it)");
    println!("  /invoices        the invoices of your customer; needs \"Meine Belege\"");
    println!(
        "  /portal/login    Portal's web UI; its API under /portal/api/v1, docs /portal/api/docs/"
    );
    println!("log in as (password \"{PASSWORD}\"):");
    println!("  anna@musterbau.de   administrator of {CUSTOMER}: /invoices answers 200");
    println!("  ben@musterbau.de    employee without \"Meine Belege\": 403 until Anna grants it");
    println!("  ops@vendor.example  the vendor's operator");
    axum::serve(listener, app).await?;
    Ok(())
}
