//! The logged-in user's own pages: profile (name, language, password, e-mail address), step-up
//! re-authentication, and sessions.

use super::auth::{
    factor_fields, factor_of, parse_email, parse_name, password_error, query_notice,
};
use super::ctx::{Authed, WebPath, safe_next};
use super::form::{FormData, encode};
use super::i18n;
use super::layout::{Errors, Input, code_input, csrf_field, current_password, new_password};
use crate::api::session_cookie;
use crate::cookies::{self, CookieName};
use crate::error::{ApiError, codes};
use crate::ratelimit::Bucket;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::ids::SessionId;
use portal_core::secret::SecretString;
use portal_core::service::{MfaError, ProfileError};
use portal_core::session::SessionKind;
use portal_core::values::Language;

/// Where a sensitive change sends the user first: the step-up page, back here afterwards.
pub(crate) fn reauth_redirect(a: &Authed, back: &str) -> Response {
    a.redirect(&format!("/reauth?next={}", encode(back)))
}

#[derive(Default)]
struct ProfileInput {
    first_name: String,
    last_name: String,
    email: String,
}

fn profile_page(a: &Authed, v: &ProfileInput, errors: &Errors) -> Markup {
    let user = a.p.user();
    let lang = user.language();
    html! {
        h1 { (a.t("my-details")) }
        (query_notice(a))
        (errors.summary(a.lang))
        section.card {
            h2 { (a.t("profile-details-heading")) }
            dl.facts {
                dt { (a.t("email")) } dd { (user.email().as_str()) }
                @if let Some(c) = a.p.customer() {
                    dt { (a.t("customer-number")) } dd { (c.number().printed()) " – " (c.name().as_str()) }
                }
                dt { (a.t("status")) } dd { (i18n::status(a.lang, user.status())) }
                dt { (a.t("role")) } dd { (i18n::role(a.lang, user.role())) }
            }
            form method="post" action="/profile" {
                (csrf_field(a))
                (Input::new("first_name", a.t("first-name")).value(&v.first_name).auto("given-name").errors(errors))
                (Input::new("last_name", a.t("last-name")).value(&v.last_name).auto("family-name").errors(errors))
                div.field {
                    label for="f-language" { (a.t("nav-language")) }
                    select #f-language name="language" {
                        option value="de" selected[lang == Language::De] { "Deutsch" }
                        option value="en" selected[lang == Language::En] { "English" }
                    }
                }
                button.primary type="submit" { (a.t("save")) }
            }
        }
        section.card {
            h2 { (a.t("profile-change-password")) }
            form method="post" action="/profile/password" {
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
            form method="post" action="/profile/email" {
                (csrf_field(a))
                (Input::new("email", a.t("profile-new-email")).kind("email").value(&v.email).auto("email").errors(errors))
                button.primary type="submit" { (a.t("send-code")) }
            }
        }
    }
}

fn filled(a: &Authed) -> ProfileInput {
    ProfileInput {
        first_name: a.p.user().first_name().to_string(),
        last_name: a.p.user().last_name().to_string(),
        email: String::new(),
    }
}

/// `GET /profile`.
pub(crate) async fn profile(a: Authed) -> Response {
    let v = filled(&a);
    a.page(a.t("my-details"), profile_page(&a, &v, &Errors::new()))
}

fn profile_again(a: &Authed, status: StatusCode, v: &ProfileInput, errors: &Errors) -> Response {
    a.page_with(status, a.t("my-details"), profile_page(a, v, errors))
}

/// `POST /profile`: name and language.
pub(crate) async fn update_profile(mut a: Authed, form: FormData) -> Response {
    let mut errors = Errors::new();
    let v = ProfileInput {
        first_name: form.get("first_name").to_owned(),
        last_name: form.get("last_name").to_owned(),
        email: String::new(),
    };
    let first = parse_name(a.lang, &v.first_name, "first_name", &mut errors);
    let last = parse_name(a.lang, &v.last_name, "last_name", &mut errors);
    let language = Language::parse(form.get("language")).unwrap_or(a.lang);
    let (Some(first), Some(last)) = (first, last) else {
        return profile_again(&a, StatusCode::UNPROCESSABLE_ENTITY, &v, &errors);
    };
    match a
        .portal()
        .update_profile(&a.p, &first, &last, language)
        .await
    {
        Ok(_) => {
            // The pages follow the new language from now on.
            let config = a.config().clone();
            a.cookie(cookies::set(
                &config,
                CookieName::Lang,
                language.code(),
                Some(365 * 24 * 3600),
            ));
            a.redirect("/profile?notice=saved")
        }
        Err(e) => a.fail(e),
    }
}

/// `POST /profile/password`.
pub(crate) async fn change_password(mut a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Password) {
        return r;
    }
    let result = a
        .portal()
        .change_password(
            &a.p,
            &SecretString::new(form.get("current_password")),
            &SecretString::new(form.get("password")),
            &SecretString::new(form.get("password_confirmation")),
            a.client.info(),
        )
        .await;
    let mut errors = Errors::new();
    let status = match result {
        Ok(issued) => {
            let config = a.config().clone();
            a.cookie(session_cookie(&config, &issued));
            return a.redirect("/profile?notice=saved");
        }
        Err(ProfileError::ReauthRequired) => return reauth_redirect(&a, "/profile"),
        Err(ProfileError::WrongPassword) => {
            errors.field(
                "current_password",
                i18n::code(a.lang, codes::WRONG_PASSWORD),
            );
            StatusCode::BAD_REQUEST
        }
        Err(ProfileError::Password(e)) => {
            password_error(a.lang, &e, &mut errors);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e @ ProfileError::Throttled { .. }) => {
            errors.general(i18n::code(a.lang, ApiError::from(e).code()));
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e) => return a.fail(e),
    };
    let v = filled(&a);
    profile_again(&a, status, &v, &errors)
}

/// `POST /profile/email`: a code to the new address (after a fresh login).
pub(crate) async fn start_email_change(mut a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Codes) {
        return r;
    }
    let mut v = filled(&a);
    v.email = form.get("email").trim().to_owned();
    let mut errors = Errors::new();
    let Some(email) = parse_email(a.lang, &v.email, "email", &mut errors) else {
        return profile_again(&a, StatusCode::UNPROCESSABLE_ENTITY, &v, &errors);
    };
    match a.portal().start_email_change(&a.p, &email).await {
        Ok(ticket) => {
            let config = a.config().clone();
            let ttl = a.portal().config().code_policy.ttl.num_seconds();
            a.cookie(cookies::set(
                &config,
                CookieName::EmailTicket,
                ticket.ticket.expose(),
                Some(ttl),
            ));
            a.redirect("/profile/email/confirm")
        }
        Err(ProfileError::ReauthRequired) => reauth_redirect(&a, "/profile"),
        Err(e @ (ProfileError::EmailUnavailable | ProfileError::SameEmail)) => {
            errors.field("email", i18n::code(a.lang, ApiError::from(e).code()));
            profile_again(&a, StatusCode::CONFLICT, &v, &errors)
        }
        Err(e) => a.fail(e),
    }
}

fn email_code_page(a: &Authed, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("email-change-heading")) }
            p { (a.t("email-change-intro")) }
            (errors.summary(a.lang))
            form method="post" action="/profile/email/confirm" {
                (csrf_field(a))
                (code_input(a.t("verification-code"), errors))
                div.actions {
                    button.primary type="submit" { (a.t("continue")) }
                    a.button.secondary href="/profile" { (a.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /profile/email/confirm`.
pub(crate) async fn email_code(a: Authed) -> Response {
    if cookies::read(&a.headers, a.config(), CookieName::EmailTicket).is_none() {
        return a.redirect("/profile");
    }
    a.page(
        a.t("email-change-title"),
        email_code_page(&a, &Errors::new()),
    )
}

/// `POST /profile/email/confirm`.
pub(crate) async fn confirm_email(mut a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Codes) {
        return r;
    }
    let config = a.config().clone();
    let Some(ticket) = cookies::read(&a.headers, &config, CookieName::EmailTicket) else {
        return a.redirect("/profile");
    };
    let result = a
        .portal()
        .confirm_email_change(&a.p, &ticket, form.get("code").trim())
        .await;
    let mut errors = Errors::new();
    match result {
        Ok(_) => {
            a.cookie(cookies::clear(&config, CookieName::EmailTicket));
            a.redirect("/profile?notice=saved")
        }
        Err(
            e @ (ProfileError::MalformedCode
            | ProfileError::WrongCode
            | ProfileError::CodeExpired
            | ProfileError::TooManyAttempts),
        ) => {
            let code = ApiError::from(e).code();
            errors.field("code", i18n::code(a.lang, code));
            a.page_with(
                StatusCode::from_u16(code.status).unwrap_or(StatusCode::BAD_REQUEST),
                a.t("email-change-title"),
                email_code_page(&a, &errors),
            )
        }
        Err(ProfileError::ReauthRequired) => reauth_redirect(&a, "/profile"),
        Err(e) => {
            a.cookie(cookies::clear(&config, CookieName::EmailTicket));
            a.fail(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Step-up
// ---------------------------------------------------------------------------------------------

fn reauth_page(a: &Authed, next: &str, errors: &Errors) -> Markup {
    let methods = a.p.user().mfa().methods();
    html! {
        section.card.narrow {
            h1 { (a.t("reauth-title")) }
            p { (a.t("reauth-intro")) }
            (errors.summary(a.lang))
            form method="post" action="/reauth" {
                (csrf_field(a))
                input type="hidden" name="next" value=(next);
                (current_password("password", a.t("password"), errors))
                @if a.p.user().mfa().is_enabled() {
                    (factor_fields(a, &methods, errors))
                }
                button.primary type="submit" { (a.t("reauth-confirm")) }
            }
        }
    }
}

/// `GET /reauth?next=`.
pub(crate) async fn reauth(a: Authed) -> Response {
    let next = a
        .query
        .opt("next")
        .and_then(safe_next)
        .unwrap_or_else(|| "/home".into());
    a.page(a.t("reauth-title"), reauth_page(&a, &next, &Errors::new()))
}

/// `POST /reauth`: the session token is rotated; back to where the change was asked for.
pub(crate) async fn do_reauth(mut a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Login) {
        return r;
    }
    let next = form
        .opt("next")
        .and_then(safe_next)
        .unwrap_or_else(|| "/home".into());
    let factor = if a.p.user().mfa().is_enabled() {
        factor_of(&form)
    } else {
        None
    };
    let result = a
        .portal()
        .reauthenticate(
            &a.p,
            &SecretString::new(form.get("password")),
            factor.as_ref(),
            a.client.info(),
        )
        .await;
    let mut errors = Errors::new();
    let status = match result {
        Ok(issued) => {
            let config = a.config().clone();
            a.cookie(session_cookie(&config, &issued));
            return a.redirect(&next);
        }
        Err(MfaError::WrongPassword) => {
            errors.field("password", i18n::code(a.lang, codes::WRONG_PASSWORD));
            StatusCode::BAD_REQUEST
        }
        Err(MfaError::NoSuchFactor) => {
            errors.field("factor", i18n::code(a.lang, codes::MFA_REQUIRED));
            StatusCode::BAD_REQUEST
        }
        Err(e @ (MfaError::MalformedCode | MfaError::WrongCode | MfaError::CodeExpired)) => {
            errors.field("code", i18n::code(a.lang, ApiError::from(e).code()));
            StatusCode::BAD_REQUEST
        }
        Err(e @ MfaError::Throttled { .. }) => {
            errors.general(i18n::code(a.lang, ApiError::from(e).code()));
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e) => return a.fail(e),
    };
    a.page_with(status, a.t("reauth-title"), reauth_page(&a, &next, &errors))
}

// ---------------------------------------------------------------------------------------------
// Sitzungen
// ---------------------------------------------------------------------------------------------

/// `GET /sessions`.
pub(crate) async fn sessions(a: Authed) -> Response {
    let list = match a.portal().my_sessions(&a.p).await {
        Ok(l) => l,
        Err(e) => return a.fail(e),
    };
    let current = a.p.session().id();
    let title = a.t("sessions");
    a.page(
        &title,
        html! {
            h1 { (title) }
            (query_notice(&a))
            p { (a.t("sessions-intro")) }
            table {
                caption.visually-hidden { (title) }
                thead { tr {
                    th scope="col" { (a.t("kind")) }
                    th scope="col" { (a.t("sessions-started")) }
                    th scope="col" { (a.t("sessions-last-active")) }
                    th scope="col" { (a.t("sessions-expires")) }
                    th scope="col" { (a.t("sessions-address")) }
                    th scope="col" { (a.t("sessions-browser")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @for s in &list {
                        @let r = s.record();
                        tr {
                            td {
                                @match s.kind() {
                                    SessionKind::RememberedDevice => (a.t("sessions-remembered-device")),
                                    _ => (a.t("sessions-session")),
                                }
                                @if s.id() == current { " " strong { (a.t("sessions-this-one")) } }
                            }
                            td { (i18n::date_time(a.lang, r.created_at)) }
                            td { (i18n::date_time(a.lang, r.last_seen_at)) }
                            td { (i18n::date_time(a.lang, r.expires_at)) }
                            td { (r.client.ip.as_deref().unwrap_or("–")) }
                            td.ua { (r.client.user_agent.as_deref().unwrap_or("–")) }
                            td {
                                form method="post" action={ "/sessions/" (s.id().as_uuid()) "/end" } {
                                    (csrf_field(&a))
                                    button.link type="submit" { (a.t("sessions-end")) }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/sessions/end-others" {
                (csrf_field(&a))
                button.secondary type="submit" { (a.t("sessions-end-others")) }
            }
        },
    )
}

/// `POST /sessions/end-others`.
pub(crate) async fn end_others(a: Authed) -> Response {
    match a.portal().end_my_other_sessions(&a.p).await {
        Ok(()) => a.redirect("/sessions?notice=saved"),
        Err(e) => a.fail(e),
    }
}

/// `POST /sessions/{id}/end` (the current one too: like logging out).
pub(crate) async fn end_one(mut a: Authed, WebPath(id): WebPath<String>) -> Response {
    let Ok(sid) = id.parse::<SessionId>() else {
        return a.fail(ApiError::new(codes::NOT_FOUND));
    };
    match a.portal().end_my_session(&a.p, sid).await {
        Ok(()) if sid == a.p.session().id() => {
            let config = a.config().clone();
            a.cookie(cookies::clear(&config, CookieName::Session));
            a.redirect("/login?notice=logged-out")
        }
        Ok(()) => a.redirect("/sessions?notice=saved"),
        Err(e) => a.fail(e),
    }
}
