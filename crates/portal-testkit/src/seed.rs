//! Seeding a portal for tests and demos through its own use cases, on any store: a customer
//! with an administrator and employees ([`customer_with_admin`]), a session for one of them
//! ([`session`]), and the codes and links the portal mailed ([`mailed_secret`]), read from any
//! store's outbox.
//!
//! Everything goes through [`Portal`]'s use cases — the same rules, audit entries and mails as
//! in production — so what is seeded is what a real installation would hold. An administrator
//! needs an operator to approve the request (a person must decide; `Actor::System` is refused),
//! and every account confirms a mailed code; [`customer_with_admin`] does all of that.
//!
//! Employees hold the customer's default permissions, which come from
//! `PortalConfig::default_joiner_permissions`: `support_requests` ("Meine Supportanfragen") with
//! the default configuration, for **every** joiner. A test of "the others get 403" on that
//! area first takes it away (`Portal::set_permissions`).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use portal_testkit::seed;
//! use std::sync::Arc;
//!
//! let store = Arc::new(adapters_memory::MemoryStore::new());
//! let portal = portal_core::Portal::new(
//!     portal_core::Deps::production(store.clone()),
//!     Default::default(),
//!     Default::default(),
//! )
//! .unwrap();
//! let seeded = seed::customer_with_admin(
//!     &portal,
//!     &*store,
//!     "123456789",
//!     "anna@musterbau.example",
//!     &["ben@musterbau.example"],
//! )
//! .await
//! .unwrap();
//! assert_eq!(seeded.employees.len(), 1);
//! let token = seed::session(&portal, "ben@musterbau.example").await.unwrap();
//! assert!(portal.authenticate(&token).await.is_ok());
//! # });
//! ```

use chrono::{DateTime, TimeZone as _, Utc};
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::ids::UserId;
use portal_core::outbox::{OutboxEntry, OutboxKind};
use portal_core::ports::{OutboxStore, StoreError};
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, Login, LoginOutcome, NewCustomer, Register, RegistrationTicket,
};
use portal_core::session::ClientInfo;
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Portal};
use std::collections::BTreeSet;

/// The password of every seeded account.
pub const PASSWORD: &str = "korrekt pferd batterie";

/// The product affiliation seeded customers and their users get.
pub const AFFILIATION: &str = "de-business";

/// A seeding step failed: which one, and the use case's error.
pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// What [`customer_with_admin`] created.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The customer's number.
    pub customer: CustomerNumber,
    /// The operator who approved the administrator (`operator-<number>@vendor.example`).
    pub operator: UserId,
    /// The active administrator.
    pub admin: UserId,
    /// The active employees, in the order given.
    pub employees: Vec<UserId>,
}

/// The secret (6-digit code or link token) of the newest undelivered mail to `to`, read from
/// any store's outbox (memory, SQLite, Postgres, yours), or `None` if there is none.
///
/// Reading leaves the outbox as it was: the due mails (outbox kind `mail`; other kinds are not
/// touched) are claimed, read and given back
/// (`OutboxStore::release`, the attempt not counted), so a dispatcher started later still
/// delivers them. Mails a running dispatcher holds at that moment are not seen: use it in tests
/// and seeding, where no dispatcher runs.
///
/// # Errors
/// The store failed.
pub async fn mailed_secret(
    outbox: &dyn OutboxStore,
    to: &str,
) -> Result<Option<String>, StoreError> {
    // Far enough ahead that every pending mail is due, whatever clock the portal runs on, and
    // a lease beyond that, so that no mail is claimed twice; within what every backend stores.
    let year = |y| {
        Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    let (now, lease) = (year(9998), year(9999));
    let claim = uuid::Uuid::new_v4();
    let mut claimed = Vec::new();
    loop {
        let batch = outbox
            .claim_outbox(OutboxKind::Mail.key(), claim, now, lease, 500)
            .await?;
        if batch.is_empty() {
            break;
        }
        claimed.extend(batch);
    }
    let mut secret = None;
    let mut newest = None;
    for mail in claimed.iter().filter_map(OutboxEntry::mail) {
        if mail.to.as_str().eq_ignore_ascii_case(to.trim())
            && let Some(s) = mail.intent.secret()
            && newest.is_none_or(|n| mail.created_at >= n)
        {
            newest = Some(mail.created_at);
            secret = Some(s.expose().to_owned());
        }
    }
    for entry in &claimed {
        outbox.release(entry.message.id, claim).await?;
    }
    Ok(secret)
}

/// Confirms a registration with the code mailed to `email`.
async fn confirm(
    portal: &Portal,
    outbox: &dyn OutboxStore,
    email: &str,
    ticket: RegistrationTicket,
) -> Result<UserId, SeedError> {
    let code = mailed_secret(outbox, email)
        .await?
        .ok_or_else(|| format!("no code was mailed to {email}"))?;
    let session = portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await?;
    Ok(session.user_id)
}

/// Registers `email`, confirms the mailed code, chooses [`AFFILIATION`] and links to `number`.
async fn member(
    portal: &Portal,
    outbox: &dyn OutboxStore,
    number: &CustomerNumber,
    email: &str,
) -> Result<UserId, SeedError> {
    let local = email.split_once('@').map_or(email, |(l, _)| l);
    let ticket = portal
        .register(Register {
            email: EmailAddress::parse(email)?,
            first_name: PersonName::parse(local)?,
            last_name: PersonName::parse("Muster")?,
            password: PASSWORD.into(),
            password_confirmation: PASSWORD.into(),
            language: Language::De,
        })
        .await?;
    let id = confirm(portal, outbox, email, ticket).await?;
    let user = Actor::user(id);
    portal
        .choose_affiliation(&user, &AffiliationKey::parse(AFFILIATION)?)
        .await?;
    portal.link_customer(&user, number).await?;
    Ok(id)
}

/// Creates customer `number` (`"Firma <number>"`, entitled to the whole catalog) with the active
/// administrator `admin` and the active employees `employees`, every password [`PASSWORD`],
/// through the portal's use cases on whatever store it runs on:
///
/// 1. an operator `operator-<number>@vendor.example` (created, invitation accepted, code
///    confirmed);
/// 2. `admin` registers, confirms the mailed code, links to the customer (active at once: it
///    has no administrator yet) and asks for admin rights, which the operator approves;
/// 3. each employee registers, confirms, links (waiting: the customer has an administrator now)
///    and is activated by the administrator, holding the customer's default permissions
///    (`PortalConfig::default_joiner_permissions`: `support_requests` by default).
///
/// Codes are read from `outbox` (the portal's store) with [`mailed_secret`]; no mail is sent.
///
/// # Errors
/// A use case failed (e.g. the number or an address is taken or malformed), with its message.
pub async fn customer_with_admin(
    portal: &Portal,
    outbox: &dyn OutboxStore,
    number: &str,
    admin: &str,
    employees: &[&str],
) -> Result<Seeded, SeedError> {
    let number = CustomerNumber::parse(number)?;
    portal
        .create_customer(
            &Actor::System,
            &NewCustomer {
                number: number.clone(),
                name: CompanyName::parse(&format!("Firma {number}"))?,
                affiliations: BTreeSet::from([AffiliationKey::parse(AFFILIATION)?]),
                channel: ServiceChannel::Direct,
                entitlements: None,
                default_permissions: None,
            },
        )
        .await?;
    let ops = format!("operator-{number}@vendor.example");
    let name = PersonName::parse("Olga")?;
    let setup = portal
        .create_operator(
            &Actor::System,
            &EmailAddress::parse(&ops)?,
            &name,
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
    let operator = confirm(portal, outbox, &ops, ticket).await?;
    let admin_id = member(portal, outbox, &number, admin).await?;
    let request = portal.request_admin_rights(&Actor::user(admin_id)).await?;
    portal
        .approve_admin_request(&Actor::user(operator), request.id())
        .await?;
    let mut ids = Vec::new();
    for email in employees {
        let id = member(portal, outbox, &number, email).await?;
        portal
            .activate_user(&Actor::user(admin_id), &number, id)
            .await?;
        ids.push(id);
    }
    Ok(Seeded {
        customer: number,
        operator,
        admin: admin_id,
        employees: ids,
    })
}

/// Logs `email` in with [`PASSWORD`] and returns the session token: the value of the session
/// cookie (`adapters_http::cookies::CookieName::Session`: `portal-session` with development
/// cookies, `__Host-portal-session` otherwise).
///
/// # Errors
/// The login failed, or the account has a second factor.
pub async fn session(portal: &Portal, email: &str) -> Result<String, SeedError> {
    match portal
        .login(Login {
            email: email.to_owned(),
            password: SecretString::new(PASSWORD),
            client: ClientInfo::default(),
        })
        .await?
    {
        LoginOutcome::Authenticated(s) => Ok(s.token.expose().to_owned()),
        LoginOutcome::MfaRequired(_) => Err(format!("{email} has a second factor").into()),
    }
}
