//! "Willkommen im Portal": the home page (the protected areas the user may open, the operator's
//! start, or the waiting state of a user an administrator has to activate) and the areas.

use super::contact::contact_form;
use super::ctx::{Authed, Ctx};
use super::error::PageError;
use super::layout::{Errors, flash_notice};
use super::urls::{self, Area};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use portal_core::user::{AccountState, Role};

/// `GET /`: home when logged in, else the login page.
pub(crate) async fn root(ctx: Ctx) -> Response {
    if ctx.principal.is_some() {
        ctx.redirect(urls::Home)
    } else {
        ctx.redirect(urls::Login)
    }
}

/// `GET /home`.
pub(crate) async fn home(a: Authed) -> Response {
    let user = a.principal.user();
    let title = a.t("welcome-to-the-portal");
    if user.role() == Role::Operator {
        return a.page(
            &title,
            html! {
                h1 { (title) }
                p { (a.t("home-operator-intro")) }
                ul.tiles {
                    li { a href=(a.href(urls::OperatorCustomers)) { (a.t("home-manage-customers")) } }
                    li { a href=(a.href(urls::OperatorAdminRequests)) { (a.t("home-decide-requests")) } }
                }
            },
        );
    }
    if user.customer_id().is_none() {
        return if user.affiliation().is_none() {
            a.redirect(urls::Affiliation)
        } else {
            a.redirect(urls::Link)
        };
    }
    let company = a
        .principal
        .customer()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    if user.state() == AccountState::PendingActivation {
        let waiting = a.t("home-waiting-title");
        return a.page(
            &waiting,
            html! {
                h1 { (waiting) }
                (flash_notice(&a))
                p { (a.t("home-waiting-text")) }
                p { (a.t("home-company")) " " strong { (company) } }
                @if a.contact_admins {
                    section.card {
                        h2 { (a.t("contact-the-administrator")) }
                        (contact_form(&a, "", &Errors::new()))
                    }
                }
            },
        );
    }
    let catalog = a.portal().catalog();
    let areas: Vec<_> = catalog
        .permissions()
        .iter()
        .filter(|p| a.portal().may_access_area(&a.principal, &p.key))
        .collect();
    let admin = user.is_active() && user.role() == Role::Administrator;
    a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            p { (a.t("home-company")) " " strong { (company) }
                @if let Some(c) = a.principal.customer() { " (" (a.t("customer-number")) " " (c.number().printed()) ")" } }
            @if admin {
                p { a.button.secondary href=(a.href(urls::MyUsers)) { (a.t("user-management")) } }
            }
            h2 { (a.t("home-your-areas")) }
            @if areas.is_empty() {
                p { (a.t("home-no-areas")) }
            } @else {
                ul.tiles.areas {
                    @for p in &areas {
                        li {
                            a href=(a.href(Area { key: p.key.clone() })) { strong { (p.label.get(a.lang)) } }
                            p { (p.description.get(a.lang)) }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /areas/{key}`: a protected area (R1: only who may open it).
pub(crate) async fn area(a: Authed, path: Area) -> Result<Response, PageError> {
    let perm = a
        .portal()
        .catalog()
        .get(&path.key)
        .cloned()
        .ok_or_else(PageError::not_found)?;
    if !a.portal().may_access_area(&a.principal, &perm.key) {
        return Err(PageError::new(StatusCode::FORBIDDEN, "area-forbidden"));
    }
    let title = perm.label.get(a.lang);
    Ok(a.page(
        title,
        html! {
            h1 { (title) }
            p { (perm.description.get(a.lang)) }
            p.muted { (a.t("area-placeholder")) }
            p { a href=(a.href(urls::Home)) { (a.t("back")) } }
        },
    ))
}
