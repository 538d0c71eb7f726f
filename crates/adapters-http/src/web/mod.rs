//! The server-rendered web UI: every screen of the manual, German by default and English by the
//! user's language, `?lang=en` or the language cookie. Pages are maud templates (every value is
//! escaped), forms are plain `application/x-www-form-urlencoded` POSTs followed by a redirect
//! (Post/Redirect/Get), no script runs anywhere.
//!
//! It shares the API's infrastructure: [`AppState`], the session and CSRF cookies
//! ([`crate::cookies`], [`crate::csrf`]), the rate limits, the error codes ([`crate::error`],
//! shown as localized messages) and the core's use cases.
//!
//! **CSRF.** Every form carries a hidden `csrf_token`: bound to the session when logged in,
//! otherwise to the pre-session cookie (a signed double-submit cookie: login CSRF is refused).
//! A guard checks it on every unsafe request together with `Origin` and
//! `Sec-Fetch-Site`, before any handler; a failure is the 403 page.
//!
//! **Headers.** Pages get `Content-Security-Policy: default-src 'self'; img-src 'self' data:;
//! frame-ancestors 'none'` (plus `base-uri`, `form-action`, `object-src`), `Referrer-Policy:
//! no-referrer` (the invitation and reset pages carry tokens in their path) and
//! `Cache-Control: no-store`.

// Helpers answer early with a ready page (`Result<_, Response>`); the error is the end of the
// request, so boxing the response would only add an allocation.
#![allow(clippy::result_large_err)]

mod account;
mod admin;
mod auth;
mod ctx;
mod devmail;
mod form;
mod home;
mod i18n;
mod layout;
mod mfa;
mod operator;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The policy of every page: nothing but this site's own stylesheet and images (the QR code is
/// inline SVG), no frames, forms only to this site.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'; object-src 'none'";

const STYLESHEET: &str = include_str!("../../assets/portal.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Security headers of the pages (set before the router-wide defaults, which only fill gaps).
async fn page_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// The pages, mounted at `/` beside the API.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(home::root))
        .route(layout::STYLESHEET, get(stylesheet))
        // Anmelden, Registrieren, Passwort vergessen, Einladung
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/mfa", get(auth::mfa_page).post(auth::mfa))
        .route("/login/mfa/phone-code", post(auth::mfa_phone_code))
        .route("/login/mfa/recovery-code", post(auth::mfa_recovery_code))
        .route("/logout", post(auth::logout))
        .route("/register", get(auth::register_page).post(auth::register))
        .route("/register/code", get(auth::code_page).post(auth::verify))
        .route("/register/code/resend", post(auth::resend))
        .route(
            "/password/forgot",
            get(auth::forgot_page).post(auth::forgot),
        )
        .route(
            "/password/reset/{token}",
            get(auth::reset_page).post(auth::reset),
        )
        .route("/password/changed", get(auth::changed))
        .route(
            "/invitations/{token}",
            get(auth::invitation_page).post(auth::accept_invitation),
        )
        // Startseite, Bereiche, Zugehörigkeit, Kundennummer, Kontakt, Admin-Antrag
        .route("/home", get(home::home))
        .route("/areas/{key}", get(home::area))
        .route(
            "/onboarding/affiliation",
            get(home::affiliation).post(home::choose_affiliation),
        )
        .route("/onboarding/link", get(home::link))
        .route("/onboarding/link/customer", post(home::link_customer))
        .route("/onboarding/link/legacy", post(home::link_legacy))
        .route(
            "/contact-admin",
            get(home::contact).post(home::send_contact),
        )
        .route(
            "/admin-request",
            get(home::admin_request).post(home::request_admin),
        )
        // Meine Daten, Sicherheit, Sitzungen
        .route(
            "/profile",
            get(account::profile).post(account::update_profile),
        )
        .route("/profile/password", post(account::change_password))
        .route("/profile/email", post(account::start_email_change))
        .route(
            "/profile/email/confirm",
            get(account::email_code).post(account::confirm_email),
        )
        .route("/reauth", get(account::reauth).post(account::do_reauth))
        .route("/sessions", get(account::sessions))
        .route("/sessions/end-others", post(account::end_others))
        .route("/sessions/{id}/end", post(account::end_one))
        .route("/mfa", get(mfa::settings))
        .route("/mfa/totp", post(mfa::start_totp))
        .route("/mfa/totp/confirm", post(mfa::confirm_totp))
        .route("/mfa/phone", post(mfa::start_phone))
        .route(
            "/mfa/phone/confirm",
            get(mfa::phone_code).post(mfa::confirm_phone),
        )
        .route("/mfa/presence-code", post(mfa::presence_code))
        .route("/mfa/remove", post(mfa::remove))
        .route("/mfa/recovery-code", post(mfa::regenerate))
        .route("/mfa/recovery-channel", post(mfa::recovery_channel))
        // Benutzerverwaltung
        .route("/admin/users", get(admin::mine))
        .route("/admin/audit", get(admin::mine))
        .route("/admin/admin-requests", get(admin::mine))
        .route("/admin/customers/{number}/users", get(admin::users))
        .route(
            "/admin/customers/{number}/users/new",
            get(admin::add).post(admin::create),
        )
        .route(
            "/admin/customers/{number}/users/{id}/permissions",
            get(admin::permissions).post(admin::save_permissions),
        )
        .route(
            "/admin/customers/{number}/users/{id}/lock",
            get(admin::lock).post(admin::set_lock),
        )
        .route(
            "/admin/customers/{number}/users/{id}/delete",
            get(admin::delete).post(admin::do_delete),
        )
        .route(
            "/admin/customers/{number}/users/{id}/activate",
            post(admin::activate),
        )
        .route(
            "/admin/customers/{number}/users/{id}/invitation",
            post(admin::reinvite),
        )
        .route(
            "/admin/customers/{number}/users/{id}/audit",
            get(admin::user_audit),
        )
        .route(
            "/admin/customers/{number}/audit",
            get(admin::customer_audit),
        )
        .route(
            "/admin/customers/{number}/admin-requests",
            get(admin::requests),
        )
        .route(
            "/admin/customers/{number}/admin-requests/{id}/consent",
            post(admin::consent),
        )
        .route(
            "/admin/customers/{number}/admin-requests/{id}/decline",
            post(admin::decline),
        )
        // Portal-Mitarbeiter
        .route("/operator/customers", get(operator::customers))
        .route(
            "/operator/customers/new",
            get(operator::new_customer).post(operator::create_customer),
        )
        .route("/operator/admin-requests", get(operator::requests))
        .route(
            "/operator/admin-requests/{id}/approve",
            post(operator::approve),
        )
        .route(
            "/operator/admin-requests/{id}/reject",
            post(operator::reject),
        );
    if state.config().dev_mailbox().is_some() {
        r = r.route("/dev/mailbox", get(devmail::mailbox));
    }
    r.route_layer(from_fn_with_state(state.clone(), form::form_guard))
        .layer(from_fn(page_headers))
}

/// The router's fallback: an HTML 404 page for browsers outside `/api`, the API's error shape
/// otherwise.
pub(crate) async fn fallback(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
) -> Response {
    let path = req.uri().path();
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if path.starts_with("/api/") || !wants_html {
        return super::not_found().await.into_response();
    }
    let lang = ctx::lang_from_request(state.config(), req.headers(), req.uri().query());
    let mut r = layout::bare_error(
        lang,
        layout::base_path(state.config()),
        StatusCode::NOT_FOUND,
        crate::error::ErrorCode::NotFound,
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r
}
