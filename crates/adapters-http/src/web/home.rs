//! The home page (the protected areas the user may open, or the waiting state), the areas, the
//! affiliation choice and the customer link ("Willkommen im Portal"), "Administrator
//! kontaktieren" and "Admin-Rechte beantragen".

use super::auth::query_notice;
use super::ctx::{Authed, Ctx, WebPath};
use super::form::FormData;
use super::i18n;
use super::layout::{Errors, Input, csrf_field, current_password, notice};

use crate::error::ApiError;
use crate::ratelimit::Bucket;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::customer::AffiliationKey;
use portal_core::permission::PermissionKey;
use portal_core::secret::SecretString;
use portal_core::service::{AdminRequestError, ContactError, LinkError, LinkOutcome};
use portal_core::user::{AccountState, Role};
use portal_core::values::{CustomerNumber, FreeText};

/// `GET /`: home when logged in, else the login page.
pub(crate) async fn root(ctx: Ctx) -> Response {
    if ctx.principal.is_some() {
        ctx.redirect("/home")
    } else {
        ctx.redirect("/login")
    }
}

fn contact_form(ctx: &Ctx, message: &str, errors: &Errors) -> Markup {
    html! {
        form method="post" action="/contact-admin" {
            (csrf_field(ctx))
            div.field.invalid[errors.get("message").is_some()] {
                label for="f-message" { (ctx.t("contact-your-message")) }
                textarea #f-message name="message" rows="5" required
                    aria-invalid=[errors.get("message").map(|_| "true")]
                    aria-describedby=[errors.get("message").map(|_| "f-message-error")] { (message) }
                @if let Some(e) = errors.get("message") { p.field-error #f-message-error { (e) } }
            }
            button.primary type="submit" { (ctx.t("contact-send-message")) }
        }
    }
}

/// `GET /home`.
pub(crate) async fn home(a: Authed) -> Response {
    let user = a.p.user();
    let title = a.t("welcome-to-the-portal");
    if user.role() == Role::Operator {
        return a.page(
            &title,
            html! {
                h1 { (title) }
                p { (a.t("home-operator-intro")) }
                ul.tiles {
                    li { a href="/operator/customers" { (a.t("home-manage-customers")) } }
                    li { a href="/operator/admin-requests" { (a.t("home-decide-requests")) } }
                }
            },
        );
    }
    if user.customer_id().is_none() {
        return if user.affiliation().is_none() {
            a.redirect("/onboarding/affiliation")
        } else {
            a.redirect("/onboarding/link")
        };
    }
    let company =
        a.p.customer()
            .map(|c| c.name().to_string())
            .unwrap_or_default();
    if user.state() == AccountState::PendingActivation {
        let waiting = a.t("home-waiting-title");
        return a.page(
            &waiting,
            html! {
                h1 { (waiting) }
                (query_notice(&a))
                p { (a.t("home-waiting-text")) }
                p { (a.t("home-company")) " " strong { (company) } }
                section.card {
                    h2 { (a.t("contact-the-administrator")) }
                    (contact_form(&a, "", &Errors::new()))
                }
            },
        );
    }
    let catalog = a.portal().catalog();
    let areas: Vec<_> = catalog
        .permissions()
        .iter()
        .filter(|p| a.portal().may_access_area(&a.p, &p.key))
        .collect();
    let admin = user.is_active() && user.role() == Role::Administrator;
    a.page(
        &title,
        html! {
            h1 { (title) }
            (query_notice(&a))
            p { (a.t("home-company")) " " strong { (company) }
                @if let Some(c) = a.p.customer() { " (" (a.t("customer-number")) " " (c.number().printed()) ")" } }
            @if admin {
                p { a.button.secondary href="/admin/users" { (a.t("user-management")) } }
            }
            h2 { (a.t("home-your-areas")) }
            @if areas.is_empty() {
                p { (a.t("home-no-areas")) }
            } @else {
                ul.tiles.areas {
                    @for p in &areas {
                        li {
                            a href={ "/areas/" (p.key) } { strong { (p.label.get(a.lang)) } }
                            p { (p.description.get(a.lang)) }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /areas/{key}`: a protected area (R1: only who may open it).
pub(crate) async fn area(a: Authed, WebPath(key): WebPath<String>) -> Response {
    let Some(perm) = PermissionKey::parse(&key)
        .ok()
        .and_then(|k| a.portal().catalog().get(&k).cloned())
    else {
        return a.error_page(StatusCode::NOT_FOUND, a.t("not-found"));
    };
    if !a.portal().may_access_area(&a.p, &perm.key) {
        return a.error_page(StatusCode::FORBIDDEN, a.t("area-forbidden"));
    }
    let title = perm.label.get(a.lang);
    a.page(
        &title,
        html! {
            h1 { (title) }
            p { (perm.description.get(a.lang)) }
            p.muted { (a.t("area-placeholder")) }
            p { a href="/home" { (a.t("back")) } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Zugehörigkeit, Kundennummer
// ---------------------------------------------------------------------------------------------

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
            form method="post" action="/onboarding/affiliation" {
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
    if a.p.user().customer_id().is_some() {
        return a.redirect("/home");
    }
    a.page(
        a.t("affiliation-title"),
        affiliation_page(&a, &Errors::new()),
    )
}

/// `POST /onboarding/affiliation`.
pub(crate) async fn choose_affiliation(a: Authed, form: FormData) -> Response {
    let result = match AffiliationKey::parse(form.get("affiliation")) {
        Ok(key) => a.portal().choose_affiliation(&a.p.actor(), &key).await,
        Err(_) => Err(LinkError::UnknownAffiliation),
    };
    match result {
        Ok(()) => a.redirect("/onboarding/link"),
        Err(LinkError::AlreadyLinked) => a.redirect("/home"),
        Err(LinkError::UnknownAffiliation) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, crate::error::codes::UNKNOWN_AFFILIATION));
            a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("affiliation-title"),
                affiliation_page(&a, &errors),
            )
        }
        Err(e) => a.fail(e),
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
                form method="post" action="/onboarding/link/customer" {
                    (csrf_field(a))
                    (Input::new("customer_number", a.t("customer-number")).value(number).inputmode("numeric").errors(errors)
                        .hint(a.t("link-number-hint")))
                    button.primary type="submit" { (a.t("link-register-now")) }
                }
            }
            section.card {
                h2 { (a.t("link-legacy-heading")) }
                p { (a.t("link-legacy-intro")) }
                form method="post" action="/onboarding/link/legacy" {
                    (csrf_field(a))
                    (Input::new("username", a.t("link-username")).value(username).errors(errors))
                    (current_password("legacy_password", a.t("password"), errors))
                    button.primary type="submit" { (a.t("link-link-now")) }
                }
            }
        }
        p { a href="/onboarding/affiliation" { (a.t("link-change-affiliation")) } }
    }
}

/// `GET /onboarding/link`.
pub(crate) async fn link(a: Authed) -> Response {
    if a.p.user().customer_id().is_some() {
        return a.redirect("/home");
    }
    if a.p.user().affiliation().is_none() {
        return a.redirect("/onboarding/affiliation");
    }
    a.page(
        a.t("welcome-to-the-portal"),
        link_page(&a, "", "", &Errors::new()),
    )
}

fn linked(
    a: &Authed,
    result: Result<LinkOutcome, LinkError>,
    number: &str,
    username: &str,
    field: &'static str,
) -> Response {
    let mut errors = Errors::new();
    let status = match result {
        Ok(LinkOutcome::Active | LinkOutcome::PendingActivation)
        | Err(LinkError::AlreadyLinked) => {
            return a.redirect("/home");
        }
        Err(LinkError::AffiliationRequired) => return a.redirect("/onboarding/affiliation"),
        Err(
            e @ (LinkError::CustomerNotFound
            | LinkError::AffiliationMismatch
            | LinkError::InvalidLegacyCredentials
            | LinkError::LegacyAlreadyLinked),
        ) => {
            let api = ApiError::from(e);
            errors.field(field, i18n::code(a.lang, api.code()));
            StatusCode::from_u16(api.code().status).unwrap_or(StatusCode::BAD_REQUEST)
        }
        Err(e) => return a.fail(e),
    };
    a.page_with(
        status,
        a.t("welcome-to-the-portal"),
        link_page(a, number, username, &errors),
    )
}

/// `POST /onboarding/link/customer`: "Jetzt registrieren".
pub(crate) async fn link_customer(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Login) {
        return r;
    }
    let raw = form.get("customer_number").to_owned();
    let number = match CustomerNumber::parse(&raw) {
        Ok(n) => n,
        Err(e) => {
            let mut errors = Errors::new();
            errors.field("customer_number", i18n::customer_number(a.lang, e));
            return a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("welcome-to-the-portal"),
                link_page(&a, &raw, "", &errors),
            );
        }
    };
    let result = a.portal().link_customer(&a.p.actor(), &number).await;
    linked(&a, result, &raw, "", "customer_number")
}

/// `POST /onboarding/link/legacy`: "Jetzt verknüpfen".
pub(crate) async fn link_legacy(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Login) {
        return r;
    }
    let username = form.get("username").trim().to_owned();
    let result = a
        .portal()
        .link_legacy(
            &a.p.actor(),
            &username,
            &SecretString::new(form.get("legacy_password")),
        )
        .await;
    linked(&a, result, "", &username, "username")
}

// ---------------------------------------------------------------------------------------------
// Administrator kontaktieren, Admin-Rechte beantragen
// ---------------------------------------------------------------------------------------------

fn contact_page(a: &Authed, message: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("contact-the-administrator")) }
            (query_notice(a))
            p { (a.t("contact-intro")) }
            (errors.summary(a.lang))
            (contact_form(a, message, errors))
        }
    }
}

/// `GET /contact-admin`.
pub(crate) async fn contact(a: Authed) -> Response {
    a.page(
        a.t("contact-the-administrator"),
        contact_page(&a, "", &Errors::new()),
    )
}

/// `POST /contact-admin`.
pub(crate) async fn send_contact(a: Authed, form: FormData) -> Response {
    let raw = form.get("message").to_owned();
    let mut errors = Errors::new();
    let status = match FreeText::parse(&raw) {
        Err(e) => {
            errors.field("message", i18n::free_text(a.lang, e));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(message) => match a.portal().contact_admins(&a.p.actor(), &message).await {
            Ok(_) => return a.redirect("/contact-admin?notice=message-sent"),
            Err(e @ (ContactError::NoAdmin | ContactError::NotLinked)) => {
                let api = ApiError::from(e);
                errors.general(i18n::code(a.lang, api.code()));
                StatusCode::CONFLICT
            }
            Err(e) => return a.fail(e),
        },
    };
    a.page_with(
        status,
        a.t("contact-the-administrator"),
        contact_page(&a, &raw, &errors),
    )
}

fn admin_request_page(a: &Authed, errors: &Errors, done: bool) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("request-admin-rights")) }
            (errors.summary(a.lang))
            @if done {
                (notice(a.t("admin-request-done")))
            }
            p { (a.t("admin-request-duties")) }
            ul {
                li { (a.t("admin-request-duty-accounts")) }
                li { (a.t("admin-request-duty-permissions")) }
                li { (a.t("admin-request-duty-locking")) }
            }
            p { (a.t("admin-request-consent-text")) }
            @if !done {
                form method="post" action="/admin-request" {
                    (csrf_field(a))
                    button.primary type="submit" { (a.t("request-admin-rights")) }
                }
            }
        }
    }
}

/// `GET /admin-request`.
pub(crate) async fn admin_request(a: Authed) -> Response {
    a.page(
        a.t("request-admin-rights"),
        admin_request_page(&a, &Errors::new(), a.query.get("notice") == "requested"),
    )
}

/// `POST /admin-request`.
pub(crate) async fn request_admin(a: Authed) -> Response {
    match a.portal().request_admin_rights(&a.p.actor()).await {
        Ok(_) => a.redirect("/admin-request?notice=requested"),
        Err(
            e @ (AdminRequestError::NotEligible
            | AdminRequestError::AlreadyAdmin
            | AdminRequestError::AlreadyRequested),
        ) => {
            let api = ApiError::from(e);
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, api.code()));
            a.page_with(
                StatusCode::CONFLICT,
                a.t("request-admin-rights"),
                admin_request_page(&a, &errors, false),
            )
        }
        Err(e) => a.fail(e),
    }
}
