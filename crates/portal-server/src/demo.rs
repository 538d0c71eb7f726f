//! `portal demo`: a demo customer with an administrator and employees, made through the real
//! use cases (operator setup link, registration, code confirmation, affiliation, linking by
//! customer number, admin request and approval, activation by the admin, permissions), so the
//! data is exactly what users would have produced.
//!
//! | account | role | state |
//! | --- | --- | --- |
//! | `anna.albrecht@demo.example` | administrator | active |
//! | `ben.berger@demo.example` | employee, "Meine Daten" and more | active |
//! | `clara.conrad@demo.example` | employee | active |
//! | `david.dorn@demo.example` | employee | waiting for activation by the admin |
//! | `olaf.operator@demo.example` | operator (vendor staff) | active; approved Anna's admin request; no second factor yet, so the first login leads to the authenticator-app setup (operators need one, R22) |
//!
//! All share the password [`DEMO_PASSWORD`]. The customer is [`DEMO_CUSTOMER`]. Seeding is
//! idempotent: when the demo customer exists, nothing is written. The demo's own mails (codes,
//! the setup link, notices) are marked delivered at once: they were consumed by the seeding, and
//! would otherwise flood the mailbox at the next start.
//!
//! The command refuses to run outside development mode: known passwords do not belong in a
//! production database.

use crate::app::{Failure, MailCapture};
use adapters_postgres::SqlStore;
use chrono::{TimeDelta, Utc};
use portal_core::config::PortalConfig;
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::ids::OutboxId;
use portal_core::ids::UserId;
use portal_core::outbox::OutboxKind;
use portal_core::permission::{GroupKey, PermissionSet};
use portal_core::ports::OutboxStore;
use portal_core::secret::SecretString;
use portal_core::service::{AcceptInvitation, LinkOutcome, NewCustomer, Register};
use portal_core::session::ClientInfo;
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Portal};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The demo customer's number.
pub const DEMO_CUSTOMER: &str = "D100000001";
/// The demo customer's name.
pub const DEMO_COMPANY: &str = "Demo Musterbau GmbH";
/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "Demo-Portal-2026";
/// The demo customer's product affiliation.
pub const DEMO_AFFILIATION: &str = "de-business";

/// One demo account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    /// Login e-mail.
    pub email: &'static str,
    /// First name.
    pub first_name: &'static str,
    /// Last name.
    pub last_name: &'static str,
    /// What it shows.
    pub description: &'static str,
}

/// The administrator.
pub const ADMIN: DemoAccount = DemoAccount {
    email: "anna.albrecht@demo.example",
    first_name: "Anna",
    last_name: "Albrecht",
    description: "administrator",
};
/// An employee with the "Meine Daten" group, documents and support requests.
pub const BEN: DemoAccount = DemoAccount {
    email: "ben.berger@demo.example",
    first_name: "Ben",
    last_name: "Berger",
    description: "employee: \"Meine Daten\", documents, support requests",
};
/// An employee with support requests only.
pub const CLARA: DemoAccount = DemoAccount {
    email: "clara.conrad@demo.example",
    first_name: "Clara",
    last_name: "Conrad",
    description: "employee: support requests",
};
/// An employee who linked by customer number and waits for the administrator.
pub const DAVID: DemoAccount = DemoAccount {
    email: "david.dorn@demo.example",
    first_name: "David",
    last_name: "Dorn",
    description: "employee waiting for activation by the administrator",
};

/// The vendor's operator who approved the admin request (decisions carry a person's name, so the
/// system cannot approve on its own).
pub const OPERATOR: DemoAccount = DemoAccount {
    email: "olaf.operator@demo.example",
    first_name: "Olaf",
    last_name: "Operator",
    description: "operator (vendor staff); sets up an authenticator app at the first login",
};

/// Every demo account.
pub const ACCOUNTS: [DemoAccount; 5] = [ADMIN, BEN, CLARA, DAVID, OPERATOR];

/// What `portal demo` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoOutcome {
    /// The demo data was created now.
    Seeded,
    /// The demo customer existed already; nothing was written.
    AlreadySeeded,
}

/// Seeds the demo data into `store` (see the [module docs](self)).
///
/// # Errors
/// A use case failed (for example, a demo address belongs to another account).
pub async fn seed(store: Arc<SqlStore>, config: PortalConfig) -> Result<DemoOutcome, Failure> {
    let capture = MailCapture::default();
    let committer = Arc::new(capture.committer(store.clone()));
    let portal = crate::app::portal(store.clone(), Some(committer), config)?;
    let number = CustomerNumber::parse(DEMO_CUSTOMER).expect("valid number");
    if portal
        .deps()
        .queries
        .customer_by_number(&number)
        .await
        .map_err(|e| Failure::of("cannot read customers", e))?
        .is_some()
    {
        return Ok(DemoOutcome::AlreadySeeded);
    }
    let seeding = Seeding {
        portal: &portal,
        capture: &capture,
        number: number.clone(),
        affiliation: AffiliationKey::parse(DEMO_AFFILIATION).expect("valid key"),
        client: ClientInfo::new(None, Some("portal demo")),
    };
    let step = |what: &'static str| move |e: String| Failure(format!("demo: {what}: {e}"));

    portal
        .create_customer(
            &Actor::System,
            &NewCustomer {
                number: number.clone(),
                name: CompanyName::parse(DEMO_COMPANY).expect("valid name"),
                affiliations: BTreeSet::from([seeding.affiliation.clone()]),
                channel: ServiceChannel::Direct,
                entitlements: None,
                default_permissions: None,
            },
        )
        .await
        .map_err(|e| step("create the customer")(e.to_string()))?;

    // Olaf, the vendor's operator, is set up from his one-time link.
    let olaf = seeding
        .operator(&OPERATOR)
        .await
        .map_err(step("set up Olaf"))?;

    // Anna registers, links by customer number (no admin yet: active at once), asks for admin
    // rights, and Olaf approves.
    let (anna, _) = seeding
        .register_and_link(&ADMIN)
        .await
        .map_err(step("register Anna"))?;
    let request = portal
        .request_admin_rights(&anna)
        .await
        .map_err(|e| step("Anna's admin request")(e.to_string()))?;
    portal
        .approve_admin_request(&olaf, request.id())
        .await
        .map_err(|e| step("approve Anna's admin request")(e.to_string()))?;

    // Ben and Clara register and link by customer number; Anna is admin now, so they wait until
    // she activates them and sets their permissions.
    let catalog = portal.catalog();
    let key = |k: &str| catalog.resolve(k).expect("catalog key");
    let (_, ben) = seeding
        .register_and_link(&BEN)
        .await
        .map_err(step("register Ben"))?;
    seeding
        .activate(
            &anna,
            ben,
            PermissionSet::from_iter([key("documents"), key("support_requests")]),
        )
        .await
        .map_err(step("activate Ben"))?;
    portal
        .grant_group(
            &anna,
            &number,
            ben,
            &GroupKey::parse("my_data").expect("valid key"),
        )
        .await
        .map_err(|e| step("grant Ben \"Meine Daten\"")(e.to_string()))?;
    let (_, clara) = seeding
        .register_and_link(&CLARA)
        .await
        .map_err(step("register Clara"))?;
    seeding
        .activate(
            &anna,
            clara,
            PermissionSet::from_iter([key("support_requests")]),
        )
        .await
        .map_err(step("activate Clara"))?;

    // David links by customer number himself; with an admin in place he waits for activation.
    seeding
        .register_and_link(&DAVID)
        .await
        .map_err(step("register David"))?;

    let ids: BTreeSet<OutboxId> = capture.mails().iter().map(|m| m.id).collect();
    discard_mails(&*store, &ids)
        .await
        .map_err(|e| Failure::of("demo: mark the demo mails delivered", e))?;
    Ok(DemoOutcome::Seeded)
}

struct Seeding<'a> {
    portal: &'a Portal,
    capture: &'a MailCapture,
    number: CustomerNumber,
    affiliation: AffiliationKey,
    client: ClientInfo,
}

impl Seeding<'_> {
    fn secret(&self, to: &str) -> Result<String, String> {
        self.capture
            .secret_for(to)
            .ok_or_else(|| format!("no code or link was mailed to {to}"))
    }

    async fn operator(&self, who: &DemoAccount) -> Result<Actor, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let setup = self
            .portal
            .create_operator(
                &Actor::System,
                &EmailAddress::parse(who.email).map_err(|x| e(&x))?,
                &PersonName::parse(who.first_name).map_err(|x| e(&x))?,
                &PersonName::parse(who.last_name).map_err(|x| e(&x))?,
                Language::De,
            )
            .await
            .map_err(|x| e(&x))?;
        self.accept(setup.token.expose(), who).await
    }

    /// Accepts an invitation link with the demo password and confirms the mailed code.
    async fn accept(&self, token: &str, who: &DemoAccount) -> Result<Actor, String> {
        let ticket = self
            .portal
            .accept_invitation(
                token,
                AcceptInvitation {
                    password: SecretString::new(DEMO_PASSWORD),
                    password_confirmation: SecretString::new(DEMO_PASSWORD),
                },
            )
            .await
            .map_err(|x| format!("accept: {x}"))?;
        let code = self.secret(who.email)?;
        let session = self
            .portal
            .verify_registration(ticket.ticket.expose(), &code, self.client.clone())
            .await
            .map_err(|x| format!("verify: {x}"))?;
        self.portal
            .logout(session.token.expose())
            .await
            .map_err(|x| format!("logout: {x}"))?;
        Ok(Actor::user(session.user_id))
    }

    async fn register_and_link(&self, who: &DemoAccount) -> Result<(Actor, UserId), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let ticket = self
            .portal
            .register(Register {
                email: EmailAddress::parse(who.email).map_err(|x| e(&x))?,
                first_name: PersonName::parse(who.first_name).map_err(|x| e(&x))?,
                last_name: PersonName::parse(who.last_name).map_err(|x| e(&x))?,
                password: SecretString::new(DEMO_PASSWORD),
                password_confirmation: SecretString::new(DEMO_PASSWORD),
                language: Language::De,
            })
            .await
            .map_err(|x| e(&x))?;
        let code = self.secret(who.email)?;
        let session = self
            .portal
            .verify_registration(ticket.ticket.expose(), &code, self.client.clone())
            .await
            .map_err(|x| e(&x))?;
        let actor = Actor::user(session.user_id);
        self.portal
            .choose_affiliation(&actor, &self.affiliation)
            .await
            .map_err(|x| e(&x))?;
        let outcome: LinkOutcome = self
            .portal
            .link_customer(&actor, &self.number)
            .await
            .map_err(|x| e(&x))?;
        tracing::debug!(email = who.email, ?outcome, "demo account linked");
        self.portal
            .logout(session.token.expose())
            .await
            .map_err(|x| e(&x))?;
        Ok((actor, session.user_id))
    }

    async fn activate(
        &self,
        admin: &Actor,
        user: UserId,
        permissions: PermissionSet,
    ) -> Result<(), String> {
        self.portal
            .activate_user(admin, &self.number, user)
            .await
            .map_err(|e| format!("activate: {e}"))?;
        self.portal
            .set_permissions(admin, &self.number, user, &permissions)
            .await
            .map_err(|e| format!("permissions: {e}"))?;
        Ok(())
    }
}

/// Marks the given outbox mails delivered without sending them. Other due mails that get claimed
/// on the way are released untouched (due at once, attempt not counted).
///
/// # Errors
/// Storage failures; mails already claimed are then released by their lease.
pub async fn discard_mails(
    store: &dyn OutboxStore,
    ids: &BTreeSet<OutboxId>,
) -> Result<(), portal_core::ports::StoreError> {
    let claim = uuid::Uuid::new_v4();
    let now = Utc::now();
    let lease_until = now + TimeDelta::minutes(5);
    let mut remaining = ids.clone();
    let mut held = Vec::new();
    while !remaining.is_empty() {
        let batch = store
            .claim_outbox(OutboxKind::Mail.key(), claim, now, lease_until, 100)
            .await?;
        if batch.is_empty() {
            break; // the rest was taken by a running dispatcher: it delivers them
        }
        for entry in batch {
            if remaining.remove(&entry.id()) {
                store.mark_sent(entry.id(), claim, now).await?;
            } else {
                held.push(entry.id());
            }
        }
    }
    for id in held {
        store.release(id, claim).await?;
    }
    Ok(())
}

/// How to log in with the demo data, for the console.
#[must_use]
pub fn instructions(public_url: &str, outcome: DemoOutcome) -> String {
    let mut out = String::new();
    out.push_str(match outcome {
        DemoOutcome::Seeded => "Demo data created.\n",
        DemoOutcome::AlreadySeeded => "Demo data exists already; nothing changed.\n",
    });
    out.push_str(&format!(
        "\nCustomer {DEMO_CUSTOMER} \"{DEMO_COMPANY}\" (affiliation {DEMO_AFFILIATION}). \
         Every account's password: {DEMO_PASSWORD}\n\n"
    ));
    for a in ACCOUNTS {
        out.push_str(&format!("  {:<30} {}\n", a.email, a.description));
    }
    out.push_str(&format!(
        "\nStart the server (portal serve) and log in, for example:\n\n  \
         curl -c jar -b jar {public_url}/api/v1/auth/csrf\n  \
         curl -c jar -b jar -H \"X-CSRF-Token: <token from above>\" -H 'Content-Type: application/json' \\\n    \
         -d '{{\"email\":\"{}\",\"password\":\"{DEMO_PASSWORD}\"}}' {public_url}/api/v1/auth/login\n",
        ADMIN.email
    ));
    out
}
