//! "Benutzer hinzufügen" (manual 3.6): name, address, the invitation's language and the
//! permissions; the person gets a mail link to finish the registration.

use super::managed;
use super::permissions::{checkbox_table, group_ticks, permission_set};
use crate::web::auth::{parse_email, parse_name};
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::layout::{Errors, Input, csrf_field, language_select};
use crate::web::urls::{NewUser, Notice, UserPermissions, Users};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::customer::Customer;
use portal_core::permission::PermissionSet;
use portal_core::service::{AdminError, Invite};
use portal_core::values::Language;
use serde::Deserialize;

/// The new user.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct InviteForm {
    first_name: String,
    last_name: String,
    email: String,
    language: String,
    permission: Vec<String>,
    /// The button: `check:<group>` / `uncheck:<group>` ("Alle anhaken" / "Alle abhaken"), else
    /// "Benutzer anlegen".
    action: String,
}

fn add_page(
    a: &Authed,
    path: &NewUser,
    customer: &Customer,
    (v, language, permissions): (&InviteForm, Language, &PermissionSet),
    banner: Option<&str>,
    errors: &Errors,
) -> Markup {
    html! {
        section.card {
            h1 { (a.t("add-user")) }
            p { (a.t("invite-intro")) }
            @if let Some(b) = banner { div.alert.info role="status" { (b) } }
            (errors.summary(a.lang))
            form method="post" action=(a.href(path)) {
                (csrf_field(a))
                // Enter in a field presses the first button of the form: this one, not a group's
                // "Alle anhaken" further down.
                button.visually-hidden type="submit" name="action" value="invite" tabindex="-1" aria-hidden="true" { (a.t("invite-submit")) }
                (Input::new("first_name", a.t("first-name")).value(&v.first_name).errors(errors))
                (Input::new("last_name", a.t("last-name")).value(&v.last_name).errors(errors))
                (Input::new("email", a.t("invite-email-address")).kind("email").value(v.email.trim()).errors(errors))
                (language_select("language", a.t("invite-language"), language))
                h2 { (a.t("permissions")) }
                (checkbox_table(a, a.portal().catalog(), customer, permissions, true))
                div.actions {
                    a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) }
                    button.primary type="submit" name="action" value="invite" { (a.t("invite-submit")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/new`.
pub(crate) async fn page(a: Authed, path: NewUser) -> Result<Response, PageError> {
    let customer = managed(&a, &path.number).await?;
    // A failed form comes back with what was chosen; a fresh one with the customer's defaults.
    let errors = a.errors();
    let (v, language, permissions) = match errors.kept_form::<InviteForm>() {
        Some(v) => {
            let permissions = permission_set(&v.permission).unwrap_or_default();
            let language = Language::parse(&v.language).unwrap_or(a.lang);
            (v, language, permissions)
        }
        None => (
            InviteForm::default(),
            a.lang,
            customer.default_permissions().clone(),
        ),
    };
    Ok(a.page(
        a.t("add-user"),
        add_page(
            &a,
            &path,
            &customer,
            (&v, language, &permissions),
            None,
            &errors,
        ),
    ))
}

/// `POST /admin/customers/{number}/users/new`: invites, then on to the permissions page.
pub(crate) async fn submit(
    a: Authed,
    path: NewUser,
    Form(v): Form<InviteForm>,
) -> Result<Response, PageError> {
    let customer = managed(&a, &path.number).await?;
    let mut errors = Errors::new();
    let permissions = permission_set(&v.permission).unwrap_or_default();
    let language = Language::parse(&v.language).unwrap_or(a.lang);
    let first = parse_name(a.lang, &v.first_name, "first_name", &mut errors);
    let last = parse_name(a.lang, &v.last_name, "last_name", &mut errors);
    let email = parse_email(a.lang, v.email.trim(), "email", &mut errors);
    let again = |errors: Errors| a.back(&path, errors);
    // A group's "Alle anhaken" / "Alle abhaken": the same page with the ticks changed, nothing
    // sent yet.
    if let Some(ticked) = group_ticks(a.portal().catalog(), &customer, &v.action, &permissions)? {
        let banner = a.t("invite-not-sent-yet");
        return Ok(a.page(
            a.t("add-user"),
            add_page(
                &a,
                &path,
                &customer,
                (&v, language, &ticked),
                Some(&banner),
                &Errors::new(),
            ),
        ));
    }
    let (Some(first_name), Some(last_name), Some(email)) = (first, last, email) else {
        return Ok(again(errors));
    };
    let result = a
        .portal()
        .invite_user(
            &a.principal.actor(),
            &path.number,
            Invite {
                email,
                first_name,
                last_name,
                language,
                permissions: permissions.clone(),
            },
        )
        .await;
    match result {
        Ok(user) => Ok(a.redirect_with(
            Notice::Invited,
            UserPermissions {
                number: path.number.clone(),
                id: user.id(),
            },
        )),
        Err(e @ (AdminError::AlreadyMember | AdminError::EmailUnavailable)) => {
            errors.refused_at(a.lang, "email", e);
            Ok(again(errors))
        }
        Err(e @ (AdminError::NotGrantable(_) | AdminError::Throttled { .. })) => {
            errors.refused(a.lang, e);
            Ok(again(errors))
        }
        Err(e) => Err(e.into()),
    }
}
