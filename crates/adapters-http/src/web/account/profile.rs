//! "Meine Daten": name and language, "Passwort ändern", and "E-Mail-Adresse ändern" with the
//! code sent to the new address (the e-mail change in progress is the `portal-email-ticket`
//! cookie). Password and address changes need a fresh login ([`super::reauth`]).

use super::reauth_redirect;
use crate::api::session_cookie;
use crate::cookies::CookieName;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use crate::web::auth::{parse_email, parse_name, password_error};
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{
    Errors, Input, code_input, csrf_field, current_password, flash_notice, language_select,
    new_password,
};
use crate::web::urls::{self, Notice};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, ExportError, ProfileError};
use portal_core::values::Language;
use serde::Deserialize;

/// Name and language.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProfileForm {
    first_name: String,
    last_name: String,
    language: String,
}

/// "Passwort ändern".
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PasswordForm {
    current_password: String,
    password: String,
    password_confirmation: String,
}

/// The new address, or the code sent to it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct EmailForm {
    email: String,
    code: String,
}

/// What the page's fields show.
struct Shown<'a> {
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
}

impl<'a> Shown<'a> {
    fn stored(a: &'a Authed) -> Self {
        let user = a.principal.user();
        Self {
            first_name: user.first_name().as_str(),
            last_name: user.last_name().as_str(),
            email: "",
        }
    }
}

fn profile_page(a: &Authed, v: &Shown<'_>, errors: &Errors) -> Markup {
    let user = a.principal.user();
    let lang = user.language();
    html! {
        h1 { (a.t("my-details")) }
        (flash_notice(a))
        (errors.summary(a.lang))
        section.card {
            h2 { (a.t("profile-details-heading")) }
            dl.facts {
                dt { (a.t("email")) } dd { (user.email().as_str()) }
                @if let Some(c) = a.principal.customer() {
                    dt { (a.t("customer-number")) } dd { (c.number().printed()) " – " (c.name().as_str()) }
                }
                dt { (a.t("status")) } dd { (i18n::status(a.lang, user.status())) }
                dt { (a.t("role")) } dd { (i18n::role(a.lang, user.role())) }
            }
            form method="post" action=(a.href(urls::Profile)) {
                (csrf_field(a))
                (Input::new("first_name", a.t("first-name")).value(v.first_name).auto("given-name").errors(errors))
                (Input::new("last_name", a.t("last-name")).value(v.last_name).auto("family-name").errors(errors))
                (language_select("language", a.t("nav-language"), lang))
                button.primary type="submit" { (a.t("save")) }
            }
        }
        section.card {
            h2 { (a.t("profile-change-password")) }
            form method="post" action=(a.href(urls::ProfilePassword)) {
                (csrf_field(a))
                (current_password("current_password", a.t("profile-current-password"), errors))
                (new_password("password", a.t("new-password"), errors)
                    .hint(a.t("profile-password-hint")))
                (new_password("password_confirmation", a.t("confirm-new-password"), errors))
                button.primary type="submit" { (a.t("profile-change-password")) }
            }
        }
        section.card {
            h2 { (a.t("profile-change-email")) }
            p { (a.t("profile-change-email-intro")) }
            form method="post" action=(a.href(urls::ProfileEmail)) {
                (csrf_field(a))
                (Input::new("email", a.t("profile-new-email")).kind("email").value(v.email).auto("email").errors(errors))
                button.primary type="submit" { (a.t("send-code")) }
            }
        }
        section.card {
            h2 { (a.t("profile-export")) }
            p { (a.t("profile-export-intro")) }
            form method="post" action=(a.href(urls::ProfileExport)) {
                (csrf_field(a))
                button.secondary type="submit" { (a.t("profile-export")) }
            }
        }
    }
}

/// A failed form of the page: back to it with its errors and input.
fn again(a: &Authed, errors: Errors) -> Response {
    a.back(urls::Profile, errors)
}

/// `GET /profile`.
pub(crate) async fn page(a: Authed) -> Response {
    let errors = a.errors();
    a.page(
        a.t("my-details"),
        profile_page(&a, &Shown::stored(&a), &errors),
    )
}

/// `POST /profile`: name and language.
pub(crate) async fn update(
    a: Authed,
    Form(form): Form<ProfileForm>,
) -> Result<Response, PageError> {
    let mut errors = Errors::new();
    let first = parse_name(a.lang, &form.first_name, "first_name", &mut errors);
    let last = parse_name(a.lang, &form.last_name, "last_name", &mut errors);
    let language = Language::parse(&form.language).unwrap_or(a.lang);
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(again(&a, errors));
    };
    a.portal()
        .update_profile(&a.principal, &first, &last, language)
        .await?;
    // The pages follow the new language from now on.
    a.remember_language(language);
    Ok(a.redirect_with(Notice::Saved, urls::Profile))
}

/// `POST /profile/password`: every other session ends (the core rotates this one).
pub(crate) async fn change_password(
    a: Authed,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Password)?;
    let result = a
        .portal()
        .change_password(
            &a.principal,
            &SecretString::new(&form.current_password),
            &SecretString::new(&form.password),
            &SecretString::new(&form.password_confirmation),
            a.client.info(),
        )
        .await;
    let mut errors = Errors::new();
    match result {
        Ok(issued) => {
            a.add_cookie(session_cookie(&a.state, &issued));
            return Ok(a.redirect_with(Notice::Saved, urls::Profile));
        }
        Err(ProfileError::ReauthRequired) => return Ok(reauth_redirect(&a, urls::Profile)),
        Err(ProfileError::WrongPassword) => {
            errors.field(
                "current_password",
                i18n::code(a.lang, ErrorCode::WrongPassword),
            );
        }
        Err(ProfileError::Password(e)) => password_error(a.lang, &e, &mut errors),
        Err(e @ ProfileError::Throttled { .. }) => {
            errors.refused(a.lang, e);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(again(&a, errors))
}

/// `POST /profile/email`: a code to the new address (after a fresh login).
pub(crate) async fn start_email_change(
    a: Authed,
    Form(form): Form<EmailForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Codes)?;
    let mut errors = Errors::new();
    let Some(email) = parse_email(a.lang, form.email.trim(), "email", &mut errors) else {
        return Ok(again(&a, errors));
    };
    match a.portal().start_email_change(&a.principal, &email).await {
        Ok(ticket) => {
            let ttl = a.portal().config().code_policy.ttl.num_seconds();
            a.set_cookie(CookieName::EmailTicket, ticket.ticket.expose(), Some(ttl));
            Ok(a.redirect(urls::ProfileEmailConfirm))
        }
        Err(ProfileError::ReauthRequired) => Ok(reauth_redirect(&a, urls::Profile)),
        Err(e @ (ProfileError::EmailUnavailable | ProfileError::SameEmail)) => {
            errors.refused_at(a.lang, "email", e);
            Ok(again(&a, errors))
        }
        Err(e) => Err(e.into()),
    }
}

fn email_code_page(a: &Authed, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("email-change-heading")) }
            p { (a.t("email-change-intro")) }
            (errors.summary(a.lang))
            form method="post" action=(a.href(urls::ProfileEmailConfirm)) {
                (csrf_field(a))
                (code_input(a.t("verification-code"), errors))
                div.actions {
                    button.primary type="submit" { (a.t("continue")) }
                    a.button.secondary href=(a.href(urls::Profile)) { (a.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /profile/email/confirm`.
pub(crate) async fn email_code(a: Authed) -> Response {
    if a.cookie_value(CookieName::EmailTicket).is_none() {
        return a.redirect(urls::Profile);
    }
    a.page(a.t("email-change-title"), email_code_page(&a, &a.errors()))
}

/// `POST /profile/email/confirm`.
pub(crate) async fn confirm_email(
    a: Authed,
    Form(form): Form<EmailForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Codes)?;
    let Some(ticket) = a.cookie_value(CookieName::EmailTicket) else {
        return Ok(a.redirect(urls::Profile));
    };
    let result = a
        .portal()
        .confirm_email_change(&a.principal, &ticket, form.code.trim())
        .await;
    match result {
        Ok(_) => {
            a.clear_cookie(CookieName::EmailTicket);
            Ok(a.redirect_with(Notice::Saved, urls::Profile))
        }
        Err(
            e @ (ProfileError::Code(CodeError::Malformed)
            | ProfileError::Code(CodeError::Wrong)
            | ProfileError::Code(CodeError::Expired)
            | ProfileError::Code(CodeError::TooManyAttempts)),
        ) => {
            let mut errors = Errors::new();
            errors.refused_at(a.lang, "code", e);
            Ok(a.back(urls::ProfileEmailConfirm, errors))
        }
        Err(ProfileError::ReauthRequired) => Ok(reauth_redirect(&a, urls::Profile)),
        Err(e) => {
            a.clear_cookie(CookieName::EmailTicket);
            Err(e.into())
        }
    }
}

/// `POST /profile/export`: the person's data as a download (after a fresh login; audited and
/// mailed by the core).
pub(crate) async fn export(a: Authed) -> Result<Response, PageError> {
    match a.portal().export_my_data(&a.principal).await {
        Ok(export) => Ok(crate::api::export::download(export)),
        Err(ExportError::ReauthRequired) => Ok(reauth_redirect(&a, urls::Profile)),
        Err(e @ ExportError::Throttled { .. }) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(again(&a, errors))
        }
        Err(e) => Err(e.into()),
    }
}
