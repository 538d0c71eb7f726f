//! "Administrator kontaktieren" (R12) and "Admin-Rechte beantragen" (R9): what a user of a
//! customer asks of its administrators.

use super::ctx::{Authed, Shell};
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, csrf_field, flash_notice, notice, notice_of};
use super::urls::{self, Notice};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::service::{AdminRequestError, ContactError};
use portal_core::values::FreeText;
use serde::Deserialize;

/// The message to the administrators.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ContactForm {
    message: String,
}

/// The message form (also on the home page of a user who awaits activation).
pub(crate) fn contact_form(shell: &Shell, message: &str, errors: &Errors) -> Markup {
    html! {
        form method="post" action=(shell.href(urls::ContactAdmin)) {
            (csrf_field(shell))
            div.field.invalid[errors.get("message").is_some()] {
                label for="f-message" { (shell.t("contact-your-message")) }
                textarea #f-message name="message" rows="5" required
                    aria-invalid=[errors.get("message").map(|_| "true")]
                    aria-describedby=[errors.get("message").map(|_| "f-message-error")] { (message) }
                @if let Some(e) = errors.get("message") { p.field-error #f-message-error { (e) } }
            }
            button.primary type="submit" { (shell.t("contact-send-message")) }
        }
    }
}

fn contact_page(a: &Authed, message: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("contact-the-administrator")) }
            (flash_notice(a))
            p { (a.t("contact-intro")) }
            (errors.summary(a.lang))
            (contact_form(a, message, errors))
        }
    }
}

/// `GET /contact-admin`.
pub(crate) async fn page(a: Authed) -> Response {
    let errors = a.errors();
    a.page(
        a.t("contact-the-administrator"),
        contact_page(&a, errors.kept("message").unwrap_or_default(), &errors),
    )
}

/// `POST /contact-admin`.
pub(crate) async fn send(a: Authed, Form(form): Form<ContactForm>) -> Result<Response, PageError> {
    let mut errors = Errors::new();
    match FreeText::parse(&form.message) {
        Err(e) => {
            errors.field("message", i18n::free_text(a.lang, e));
        }
        Ok(message) => match a
            .portal()
            .contact_admins(&a.principal.actor(), &message)
            .await
        {
            Ok(_) => return Ok(a.redirect_with(Notice::MessageSent, urls::ContactAdmin)),
            Err(e @ (ContactError::NoAdmin | ContactError::NotLinked)) => {
                errors.refused(a.lang, e);
            }
            Err(e @ ContactError::Throttled { .. }) => {
                errors.refused(a.lang, e);
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(a.back(urls::ContactAdmin, errors))
}

fn admin_request_page(a: &Authed, errors: &Errors, done: bool) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("request-admin-rights")) }
            (errors.summary(a.lang))
            @if done {
                (notice(a.t(Notice::Requested.key())))
            }
            p { (a.t("admin-request-duties")) }
            ul {
                li { (a.t("admin-request-duty-accounts")) }
                li { (a.t("admin-request-duty-permissions")) }
                li { (a.t("admin-request-duty-locking")) }
            }
            p { (a.t("admin-request-consent-text")) }
            @if !done {
                form method="post" action=(a.href(urls::AdminRequest)) {
                    (csrf_field(a))
                    button.primary type="submit" { (a.t("request-admin-rights")) }
                }
            }
        }
    }
}

/// `GET /admin-request`: the form, or (right after it, and on every later visit while it is
/// open) that the request was made.
pub(crate) async fn admin_request(a: Authed) -> Result<Response, PageError> {
    let done = notice_of(&a) == Some(Notice::Requested)
        || a.portal()
            .my_open_admin_request(&a.principal.actor())
            .await?
            .is_some();
    Ok(a.page(
        a.t("request-admin-rights"),
        admin_request_page(&a, &a.errors(), done),
    ))
}

/// `POST /admin-request`.
pub(crate) async fn request_admin(a: Authed) -> Result<Response, PageError> {
    match a.portal().request_admin_rights(&a.principal.actor()).await {
        Ok(_) => Ok(a.redirect_with(Notice::Requested, urls::AdminRequest)),
        Err(
            e @ (AdminRequestError::NotEligible
            | AdminRequestError::AlreadyAdmin
            | AdminRequestError::AlreadyRequested),
        ) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(urls::AdminRequest, errors))
        }
        Err(e) => Err(e.into()),
    }
}
