//! The core on Postgres (or a SQLite file) with migrations: `DATABASE_URL=postgres://… cargo run
//! --example postgres`. Without `DATABASE_URL` it uses `sqlite://portal-example.db?mode=rwc`.
#![allow(dead_code)]

use adapters_postgres::SqlStore;
use portal_core::customer::ServiceChannel;
use portal_core::service::{NewCustomer, PageRequest};
use portal_core::values::{CompanyName, CustomerNumber};
use portal_core::{Actor, Deps, Portal};
use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;

/// Opens (and migrates) the database at `url`, creates a customer unless it exists, and returns
/// how many customers the operator list shows.
pub async fn run(url: &str) -> Result<usize, Box<dyn Error>> {
    let store = Arc::new(SqlStore::open(url).await?);
    let portal = Portal::new(
        Deps::production(store),
        Default::default(),
        Default::default(),
    )?;
    let number = CustomerNumber::parse("123456789")?;
    if portal.get_customer(&Actor::System, &number).await.is_err() {
        portal
            .create_customer(
                &Actor::System,
                &NewCustomer {
                    number,
                    name: CompanyName::parse("Musterbau GmbH")?,
                    affiliations: BTreeSet::new(),
                    channel: ServiceChannel::Direct,
                    entitlements: None,
                    default_permissions: None,
                },
            )
            .await?;
    }
    let page = portal
        .list_customers(&Actor::System, None, &PageRequest::default())
        .await?;
    for c in &page.items {
        println!("{} {}", c.number().printed(), c.name());
    }
    Ok(page.items.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://portal-example.db?mode=rwc".to_owned());
    run(&url).await.map(|_| ())
}
