//! After the first login (manual 2.3): the product affiliation ("Starten Sie durch!") and the
//! link to a customer, by customer number ("Jetzt registrieren") or by the old Servicewelt
//! credentials ("Jetzt verknüpfen").

use super::ctx::Authed;
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, Input, csrf_field, current_password};
use super::urls;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::customer::AffiliationKey;
use portal_core::secret::SecretString;
use portal_core::service::{LinkError, LinkOutcome};
use portal_core::values::CustomerNumber;
use serde::Deserialize;

/// The affiliation button that was pressed.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AffiliationForm {
    affiliation: String,
}

/// "Kundennummer".
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CustomerForm {
    customer_number: String,
}

/// The old account's credentials.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LegacyForm {
    username: String,
    legacy_password: String,
}

fn affiliation_page(a: &Authed, errors: &Errors) -> Markup {
    let affiliations = &a.portal().config().affiliations;
    let mut regions: Vec<&str> = Vec::new();
    for af in affiliations {
        let r = af.region.get(a.lang);
        if !regions.contains(&r) {
            regions.push(r);
        }
    }
    html! {
        section.card {
            h1 { (a.t("affiliation-heading")) }
            p { (a.t("affiliation-intro")) }
            (errors.summary(a.lang))
            form method="post" action=(a.href(urls::Affiliation)) {
                (csrf_field(a))
                @for region in &regions {
                    h2 { (region) ":" }
                    ul.choices {
                        @for af in affiliations.iter().filter(|af| af.region.get(a.lang) == *region) {
                            li {
                                span { (af.label.get(a.lang)) }
                                " "
                                button.link type="submit" name="affiliation" value=(af.key) { (a.t("affiliation-sign-in-here")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /onboarding/affiliation`.
pub(crate) async fn affiliation(a: Authed) -> Response {
    if a.principal.user().customer_id().is_some() {
        return a.redirect(urls::Home);
    }
    a.page(a.t("affiliation-title"), affiliation_page(&a, &a.errors()))
}

/// `POST /onboarding/affiliation`.
pub(crate) async fn choose_affiliation(
    a: Authed,
    Form(form): Form<AffiliationForm>,
) -> Result<Response, PageError> {
    let result = match AffiliationKey::parse(&form.affiliation) {
        Ok(key) => {
            a.portal()
                .choose_affiliation(&a.principal.actor(), &key)
                .await
        }
        Err(_) => Err(LinkError::UnknownAffiliation),
    };
    match result {
        Ok(()) => Ok(a.redirect(urls::Link)),
        Err(LinkError::AlreadyLinked) => Ok(a.redirect(urls::Home)),
        Err(LinkError::UnknownAffiliation) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, ErrorCode::UnknownAffiliation));
            Ok(a.back(urls::Affiliation, errors))
        }
        Err(e) => Err(e.into()),
    }
}

fn link_page(a: &Authed, number: &str, username: &str, errors: &Errors) -> Markup {
    html! {
        h1 { (a.t("welcome-to-the-portal")) }
        (errors.summary(a.lang))
        div.columns {
            section.card {
                h2 { (a.t("link-new-heading")) }
                p { (a.t("link-new-intro")) }
                form method="post" action=(a.href(urls::LinkCustomer)) {
                    (csrf_field(a))
                    (Input::new("customer_number", a.t("customer-number")).value(number).inputmode("numeric").errors(errors)
                        .hint(a.t("link-number-hint")))
                    button.primary type="submit" { (a.t("link-register-now")) }
                }
            }
            section.card {
                h2 { (a.t("link-legacy-heading")) }
                p { (a.t("link-legacy-intro")) }
                form method="post" action=(a.href(urls::LinkLegacy)) {
                    (csrf_field(a))
                    (Input::new("username", a.t("link-username")).value(username).errors(errors))
                    (current_password("legacy_password", a.t("password"), errors))
                    button.primary type="submit" { (a.t("link-link-now")) }
                }
            }
        }
        p { a href=(a.href(urls::Affiliation)) { (a.t("link-change-affiliation")) } }
    }
}

/// `GET /onboarding/link`.
pub(crate) async fn link(a: Authed) -> Response {
    if a.principal.user().customer_id().is_some() {
        return a.redirect(urls::Home);
    }
    if a.principal.user().affiliation().is_none() {
        return a.redirect(urls::Affiliation);
    }
    a.page(
        a.t("welcome-to-the-portal"),
        link_page(&a, "", "", &a.errors()),
    )
}

/// Where a link attempt leads: home, the affiliation, or back to the page with the reason next
/// to `field`.
fn linked(
    a: &Authed,
    result: Result<LinkOutcome, LinkError>,
    field: &'static str,
) -> Result<Response, PageError> {
    let mut errors = Errors::new();
    match result {
        Ok(LinkOutcome::Active | LinkOutcome::PendingActivation)
        | Err(LinkError::AlreadyLinked) => return Ok(a.redirect(urls::Home)),
        Err(LinkError::AffiliationRequired) => return Ok(a.redirect(urls::Affiliation)),
        Err(
            e @ (LinkError::CustomerNotFound
            | LinkError::AffiliationMismatch
            | LinkError::InvalidLegacyCredentials
            | LinkError::LegacyAlreadyLinked
            | LinkError::Throttled { .. }),
        ) => {
            errors.refused_at(a.lang, field, e);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(a.back(urls::Link, errors))
}

/// `POST /onboarding/link/customer`: "Jetzt registrieren".
pub(crate) async fn link_customer(
    a: Authed,
    Form(form): Form<CustomerForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Login)?;
    let raw = form.customer_number.as_str();
    let number = match CustomerNumber::parse(raw) {
        Ok(n) => n,
        Err(e) => {
            let mut errors = Errors::new();
            errors.field("customer_number", i18n::customer_number(a.lang, e));
            return Ok(a.back(urls::Link, errors));
        }
    };
    let result = a
        .portal()
        .link_customer_from(&a.principal.actor(), &number, &a.client.info())
        .await;
    linked(&a, result, "customer_number")
}

/// `POST /onboarding/link/legacy`: "Jetzt verknüpfen".
pub(crate) async fn link_legacy(
    a: Authed,
    Form(form): Form<LegacyForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Login)?;
    let username = form.username.trim();
    let result = a
        .portal()
        .link_legacy_from(
            &a.principal.actor(),
            username,
            &SecretString::new(&form.legacy_password),
            &a.client.info(),
        )
        .await;
    linked(&a, result, "username")
}
