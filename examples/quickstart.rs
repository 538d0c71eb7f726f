//! Quickstart: the manual's whole flow on the in-memory adapter, printed step by step.
//!
//! customer created → registration → code → link by customer number → admin request → operator
//! approval → invitation → permissions → lock → change log.
//!
//! Run with `cargo run --example quickstart`. It uses the production defaults (system clock,
//! OS randomness, Argon2id at 19 MiB / t = 2) and reads codes and links out of the outbox, where
//! a real installation's mail dispatcher would pick them up.
#![allow(dead_code)]

use adapters_memory::MemoryStore;
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::mail::MailIntent;
use portal_core::permission::PermissionSet;
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, AuditListQuery, Invite, Login, LoginOutcome, NewCustomer, Register,
};
use portal_core::session::ClientInfo;
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Deps, Portal};
use std::collections::BTreeSet;
use std::error::Error;
use std::sync::Arc;

const PASSWORD: &str = "korrekt pferd batterie";

/// The code or link token of the newest mail to `to`.
fn secret_for(store: &MemoryStore, to: &str) -> String {
    store
        .outbox()
        .iter()
        .rev()
        .filter(|m| m.to.as_str() == to)
        .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .expect("a mail with a code or link")
}

fn mails_to(store: &MemoryStore, to: &str) -> Vec<&'static str> {
    store
        .outbox()
        .iter()
        .filter(|m| m.to.as_str() == to)
        .map(|m| m.intent.key())
        .collect()
}

/// What the walk-through found, for its test.
#[derive(Debug)]
pub struct Summary {
    /// Ben may open "Meine Belege" with the permissions Anna gave him.
    pub may_open_documents: bool,
    /// Ben's session still authenticates after the lock.
    pub session_alive_after_lock: bool,
    /// Ben's login after the lock succeeded.
    pub login_after_lock: bool,
    /// Entries of the customer's change log, verified intact.
    pub chain_entries: u64,
    /// The keys of the queued mails, in order.
    pub mails: Vec<&'static str>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await.map(|_| ())
}

/// Walks through the manual's flow, printing each step.
///
/// # Errors
/// A step failed.
pub async fn run() -> Result<Summary, Box<dyn Error>> {
    let store = Arc::new(MemoryStore::new());
    let portal = Portal::new(
        Deps::production(store.clone()),
        Default::default(),
        Default::default(),
    )?;
    let client = ClientInfo::new(Some("127.0.0.1"), Some("quickstart"));
    let number = CustomerNumber::parse("D123456789")?;
    let affiliation = AffiliationKey::parse("de-business")?;

    // 1. An operator (vendor staff) is set up from a one-time link, as `portal operator create`
    //    does, and creates the customer.
    let setup = portal
        .create_operator(
            &Actor::System,
            &EmailAddress::parse("ops@vendor.example")?,
            &PersonName::parse("Olga")?,
            &PersonName::parse("Operator")?,
            Language::De,
        )
        .await?;
    let ticket = portal
        .accept_invitation(
            setup.token.expose(),
            AcceptInvitation {
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
            },
        )
        .await?;
    let code = secret_for(&store, "ops@vendor.example");
    let op_session = portal
        .verify_registration(ticket.ticket.expose(), &code, client.clone())
        .await?;
    let operator = Actor::user(op_session.user_id);
    println!("1. operator ops@vendor.example set up");

    let customer = portal
        .create_customer(
            &operator,
            &NewCustomer {
                number: number.clone(),
                name: CompanyName::parse("Musterbau GmbH")?,
                affiliations: BTreeSet::from([affiliation.clone()]),
                channel: ServiceChannel::Direct,
                entitlements: None,
                default_permissions: None,
            },
        )
        .await?;
    println!(
        "   customer {} \"{}\" created",
        customer.number().printed(),
        customer.name()
    );

    // 2. Anna registers ("Konto erstellen") and confirms the mailed code.
    let ticket = portal
        .register(Register {
            email: EmailAddress::parse("anna@musterbau.de")?,
            first_name: PersonName::parse("Anna")?,
            last_name: PersonName::parse("Schmidt")?,
            password: PASSWORD.into(),
            password_confirmation: PASSWORD.into(),
            language: Language::De,
        })
        .await?;
    let code = secret_for(&store, "anna@musterbau.de");
    println!("2. anna@musterbau.de registered; code {code} mailed");
    let session = portal
        .verify_registration(ticket.ticket.expose(), &code, client.clone())
        .await?;
    let anna = Actor::user(session.user_id);
    println!("   code confirmed: account active, logged in");

    // 3. She picks her product affiliation and links by customer number. The customer has no
    //    administrator yet, so she is active at once with the default permissions.
    portal.choose_affiliation(&anna, &affiliation).await?;
    let outcome = portal.link_customer(&anna, &number).await?;
    println!("3. linked to {}: {outcome:?}", number.printed());

    // 4. She asks for admin rights; with no admin to consent, an operator decides.
    let request = portal.request_admin_rights(&anna).await?;
    println!("4. admin rights requested: {:?}", request.status());
    let request = portal
        .approve_admin_request(&operator, request.id())
        .await?;
    println!("   operator approved: {:?}", request.status());

    // 5. As administrator she invites a colleague ("Benutzer hinzufügen").
    let ben = portal
        .invite_user(
            &anna,
            &number,
            Invite {
                email: EmailAddress::parse("ben@musterbau.de")?,
                first_name: PersonName::parse("Ben")?,
                last_name: PersonName::parse("Becker")?,
                language: Language::De,
                permissions: PermissionSet::new(),
            },
        )
        .await?;
    let link = secret_for(&store, "ben@musterbau.de");
    println!(
        "5. ben@musterbau.de invited: {:?}",
        mails_to(&store, "ben@musterbau.de")
    );
    let ticket = portal
        .accept_invitation(
            &link,
            AcceptInvitation {
                password: "mein eigenes passwort".into(),
                password_confirmation: "mein eigenes passwort".into(),
            },
        )
        .await?;
    let code = secret_for(&store, "ben@musterbau.de");
    let ben_session = portal
        .verify_registration(ticket.ticket.expose(), &code, client.clone())
        .await?;
    println!("   Ben set his password and confirmed the code: active");

    // 6. Permissions: "Meine Belege" and the whole group "Meine Daten".
    let documents = portal.catalog().resolve("documents")?;
    portal
        .set_permissions(
            &anna,
            &number,
            ben.id(),
            &PermissionSet::from_iter([documents.clone()]),
        )
        .await?;
    let my_data = portal_core::permission::GroupKey::parse("my_data")?;
    let ben_now = portal
        .grant_group(&anna, &number, ben.id(), &my_data)
        .await?;
    println!("6. Ben's permissions: {}", ben_now.permissions().joined());
    let principal = portal.authenticate(ben_session.token.expose()).await?;
    let may_open_documents = portal.may_access_area(&principal, &documents);
    println!("   Ben may open \"Meine Belege\": {may_open_documents}");

    // 7. Lock: Ben's live session dies at once, and he cannot log in.
    portal.lock_user(&anna, &number, ben.id(), None).await?;
    let still = portal
        .authenticate(ben_session.token.expose())
        .await
        .is_ok();
    let login = portal
        .login(Login {
            email: "ben@musterbau.de".into(),
            password: SecretString::new("mein eigenes passwort"),
            client: client.clone(),
        })
        .await;
    println!(
        "7. Ben locked: session still valid = {still}, login = {}",
        match &login {
            Ok(LoginOutcome::Authenticated(_)) => "ok",
            Ok(LoginOutcome::MfaRequired(_)) => "second factor asked",
            Err(_) => "refused",
        }
    );

    // 8. The change log ("Änderungsprotokoll") of Ben and of the customer.
    println!("8. Änderungsprotokoll of Ben:");
    let log = portal
        .user_audit(
            &anna,
            &number,
            ben.id(),
            &AuditListQuery::default(),
            Language::De,
        )
        .await?;
    for row in log.items.iter().rev() {
        let r = &row.entry.record;
        println!(
            "   {}  {:<28} {:<40} {}",
            r.at.format("%d.%m.%Y %H:%M"),
            r.category.label(Language::De),
            r.details,
            row.actor_name
        );
    }
    let report = portal.verify_audit_chain(&operator, Some(&number)).await?;
    println!(
        "   customer chain: {} entries, intact (head {}…)",
        report.entries,
        &report.head[..12]
    );
    let mails: Vec<_> = store
        .outbox()
        .iter()
        .map(|m| match &m.intent {
            MailIntent::VerificationCode { .. } => "code",
            other => other.key(),
        })
        .collect();
    println!(
        "   {} mails queued in the outbox: {}",
        mails.len(),
        mails.join(", ")
    );
    Ok(Summary {
        may_open_documents,
        session_alive_after_lock: still,
        login_after_lock: login.is_ok(),
        chain_entries: report.entries,
        mails,
    })
}
