//! The core on the in-memory adapter: a customer, a registration confirmed by its mailed code,
//! linking by customer number, an area check (R1), and a lock that ends the session at once.
//! `cargo run --example in_memory`
#![allow(dead_code)]

use adapters_memory::MemoryStore;
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::service::{NewCustomer, Register};
use portal_core::session::ClientInfo;
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Deps, Portal};
use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;

/// Runs the flow; returns (area open before the lock, session alive after it).
pub async fn run() -> Result<(bool, bool), Box<dyn Error>> {
    let store = Arc::new(MemoryStore::new());
    let portal = Portal::new(
        Deps::production(store.clone()),
        Default::default(),
        Default::default(),
    )?;
    let number = CustomerNumber::parse("D123456789")?;
    let product = AffiliationKey::parse("de-business")?;
    portal
        .create_customer(
            &Actor::System,
            &NewCustomer {
                number: number.clone(),
                name: CompanyName::parse("Musterbau GmbH")?,
                affiliations: BTreeSet::from([product.clone()]),
                channel: ServiceChannel::Direct,
                entitlements: None,
                default_permissions: None,
            },
        )
        .await?;
    let ticket = portal
        .register(Register {
            email: EmailAddress::parse("anna@musterbau.de")?,
            first_name: PersonName::parse("Anna")?,
            last_name: PersonName::parse("Schmidt")?,
            password: "korrekt pferd batterie".into(),
            password_confirmation: "korrekt pferd batterie".into(),
            language: Language::De,
        })
        .await?;
    // A mail dispatcher would deliver this; here we read the code from the outbox.
    let code = store
        .outbox()
        .iter()
        .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .ok_or("no code")?;
    let session = portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await?;
    let anna = Actor::user(session.user_id);
    portal.choose_affiliation(&anna, &product).await?;
    portal.link_customer(&anna, &number).await?;
    let principal = portal.authenticate(session.token.expose()).await?;
    let support = portal.catalog().resolve("support_requests")?;
    let open = portal.may_access_area(&principal, &support);
    println!("Anna may open \"Meine Supportanfragen\": {open}");
    portal
        .lock_user(&Actor::System, &number, session.user_id, None)
        .await?;
    let alive = portal.authenticate(session.token.expose()).await.is_ok();
    println!("after the lock her session is alive: {alive}");
    Ok((open, alive))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await.map(|_| ())
}
