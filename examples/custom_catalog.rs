//! An embedder replaces the manual's permission catalog with its own areas and groups, runs the
//! portal on it, and property-tests Portal's rules on that catalog together with a rule of its
//! own, using the property-testing kit (`portal_core::property`, feature `proptest`).
//! `cargo run --example custom_catalog`
#![allow(dead_code)]

use adapters_memory::MemoryStore;
use portal_core::customer::ServiceChannel;
use portal_core::permission::{
    GroupKey, LocalizedText, Permission, PermissionCatalog, PermissionGroup, PermissionKey,
    PermissionSet,
};
use portal_core::property::{self, ExtraRule, Step};
use portal_core::service::NewCustomer;
use portal_core::values::{CompanyName, CustomerNumber};
use portal_core::{Actor, Deps, Portal};
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;

/// The invoice service's own areas: two in a group "Finanzen", one on its own.
pub fn catalog() -> Result<PermissionCatalog, Box<dyn Error>> {
    let finance = GroupKey::parse("finance")?;
    let area = |key: &str,
                de: &str,
                en: &str,
                group: Option<&GroupKey>|
     -> Result<Permission, Box<dyn Error>> {
        Ok(Permission {
            key: PermissionKey::parse(key)?,
            label: LocalizedText::new(de, en),
            description: LocalizedText::new(de, en),
            group: group.cloned(),
        })
    };
    Ok(PermissionCatalog::new(
        vec![
            area("invoices", "Rechnungen", "Invoices", Some(&finance))?,
            area("dunning", "Mahnungen", "Reminders", Some(&finance))?,
            area("delivery_notes", "Lieferscheine", "Delivery notes", None)?,
        ],
        vec![PermissionGroup {
            key: finance,
            label: LocalizedText::new("Finanzen", "Finance"),
            description: LocalizedText::new("Alle Finanzbereiche", "All finance areas"),
        }],
    )?)
}

/// The embedder's own rule on top of Portal's: whatever happens, nobody holds a key outside the
/// invoice service's catalog.
pub struct OnlyOurAreas;

impl ExtraRule for OnlyOurAreas {
    fn check(&self, step: &Step<'_>) -> Result<(), String> {
        for user in step.users.iter().flatten() {
            if let Some(k) = user.permissions.iter().find(|k| !step.catalog.contains(k)) {
                return Err(format!("{k} is not one of our areas"));
            }
        }
        Ok(())
    }
}

/// Property-tests `cases` generated scenarios on the custom catalog; returns how many passed.
pub fn property_test(cases: u32) -> Result<u32, Box<dyn Error>> {
    // The kit's settings: no persistence file, shrinking that runs to the minimal scenario.
    let mut runner = TestRunner::new(property::config(cases));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runner
        .run(&property::scenarios_for(catalog()?), |scenario| {
            rt.block_on(property::check(
                scenario,
                Arc::new(MemoryStore::new()),
                &OnlyOurAreas,
            ))
        })
        .map_err(|e| e.to_string())?;
    Ok(cases)
}

/// Creates a customer entitled to the finance areas only, on a portal with the custom catalog.
pub async fn run() -> Result<PermissionSet, Box<dyn Error>> {
    let store = Arc::new(MemoryStore::new());
    let portal = Portal::new(Deps::production(store), Default::default(), catalog()?)?;
    let finance = portal.catalog().group_members(&GroupKey::parse("finance")?);
    let customer = portal
        .create_customer(
            &Actor::System,
            &NewCustomer {
                number: CustomerNumber::parse("987654321")?,
                name: CompanyName::parse("Rechnungsempfänger AG")?,
                affiliations: BTreeSet::new(),
                channel: ServiceChannel::Direct,
                entitlements: Some(finance.clone()),
                default_permissions: None,
            },
        )
        .await?;
    for p in portal.catalog().permissions() {
        println!(
            "{:<16} {:<14} entitled: {}",
            p.key.as_str(),
            p.label.de,
            customer.is_entitled(&p.key)
        );
    }
    Ok(customer.entitlements().clone())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await?;
    // The property test runs its own runtime per case: off this one.
    let passed =
        tokio::task::spawn_blocking(|| property_test(32).map_err(|e| e.to_string())).await??;
    println!("{passed} generated scenarios kept Portal's rules and ours on this catalog");
    Ok(())
}
