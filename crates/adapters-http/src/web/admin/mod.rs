//! The customer administration (manual chapter 3) for administrators and operators, one screen
//! per module: "Benutzerverwaltung" ([`users`], with activation and a new invitation link),
//! "Benutzer hinzufügen" ([`invite`]), "Berechtigungen" with the group's "Alle anhaken / Alle
//! abhaken" ([`permissions`]), "Benutzer sperren / entsperren" and "Benutzer löschen"
//! ([`user_detail`]), the change logs ([`audit`]) and admin requests awaiting consent
//! ([`requests`]).
//!
//! Paths carry the customer number (`/admin/customers/{number}/…`, see [`urls`]); the core
//! decides: a customer or user that is not the actor's answers the 404 page exactly like an
//! unknown one, and a member who is not an administrator gets the 403 page.

pub(crate) mod audit;
pub(crate) mod invite;
pub(crate) mod permissions;
pub(crate) mod requests;
pub(crate) mod user_detail;
pub(crate) mod users;

use super::ctx::{Authed, Shell};
use super::error::PageError;
use super::i18n;
use super::urls;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::authz::{Access, Acting, management_access};
use portal_core::customer::Customer;
use portal_core::ids::UserId;
use portal_core::service::CustomerError;
use portal_core::user::User;
use portal_core::values::{CustomerNumber, Language};

/// The customer in the path, if the logged-in user manages it (R2, R3 by the core's rule): the
/// 404 page for an unknown or foreign customer, the 403 page for a member who is no admin.
async fn managed(a: &Authed, number: &CustomerNumber) -> Result<Customer, PageError> {
    let own = a
        .principal
        .customer()
        .filter(|c| c.number() == number)
        .cloned();
    let customer = match own {
        Some(c) => c,
        None => match a.portal().get_customer(&a.principal.actor(), number).await {
            Ok(c) => c,
            Err(CustomerError::Forbidden | CustomerError::NotFound) => {
                return Err(PageError::not_found());
            }
            Err(e) => return Err(e.into()),
        },
    };
    match management_access(&Acting::User(a.principal.user().clone()), customer.id()) {
        Access::Granted(_) => Ok(customer),
        Access::Forbidden => Err(PageError::forbidden()),
        Access::NotFound => Err(PageError::not_found()),
    }
}

/// The managed customer and the user in the path.
async fn target(
    a: &Authed,
    number: &CustomerNumber,
    id: UserId,
) -> Result<(Customer, User), PageError> {
    let customer = managed(a, number).await?;
    let user = a
        .portal()
        .get_user(&a.principal.actor(), number, id)
        .await?;
    Ok((customer, user))
}

/// Where `/admin/users`, `/admin/audit` and `/admin/admin-requests` lead: the administrator's
/// own customer's page (operators go to their lists).
fn mine(
    a: &Authed,
    operator: impl FnOnce() -> String,
    own: impl FnOnce(CustomerNumber) -> String,
) -> Result<Response, PageError> {
    let user = a.principal.user();
    if user.is_active_operator() {
        return Ok(a.redirect(operator()));
    }
    match a.principal.customer() {
        Some(c) if user.is_active_admin_of(c.id()) => Ok(a.redirect(own(c.number().clone()))),
        _ => Err(PageError::forbidden()),
    }
}

/// `GET /admin/users`.
pub(crate) async fn my_users(a: Authed) -> Result<Response, PageError> {
    mine(
        &a,
        || urls::OperatorCustomers.to_string(),
        |number| urls::Users { number }.to_string(),
    )
}

/// `GET /admin/audit`.
pub(crate) async fn my_audit(a: Authed) -> Result<Response, PageError> {
    mine(
        &a,
        || urls::OperatorCustomers.to_string(),
        |number| urls::CustomerAudit { number }.to_string(),
    )
}

/// `GET /admin/admin-requests`.
pub(crate) async fn my_admin_requests(a: Authed) -> Result<Response, PageError> {
    mine(
        &a,
        || urls::OperatorAdminRequests.to_string(),
        |number| urls::CustomerAdminRequests { number }.to_string(),
    )
}

/// The user's facts above a change ("Name", "E-Mail", "Kundennummer", …).
fn facts(shell: &Shell, user: &User, customer: &Customer) -> Markup {
    html! {
        dl.facts {
            dt { (shell.t("user-facts-name")) } dd { (user.display_name()) }
            dt { (shell.t("user-facts-email")) } dd { (user.email().as_str()) }
            dt { (shell.t("user-facts-customer-number")) } dd { (customer.number().printed()) }
            dt { (shell.t("user-facts-last-login")) } dd { (last_login(shell.lang, user)) }
            dt { (shell.t("user-facts-status")) } dd { (i18n::status(shell.lang, user.status())) }
            dt { (shell.t("user-facts-role")) } dd { (i18n::role(shell.lang, user.role())) }
        }
    }
}

fn last_login(lang: Language, user: &User) -> String {
    user.last_login_at()
        .map_or_else(|| "–".to_owned(), |t| i18n::date(lang, t))
}
