//! The server-rendered web UI: every screen of the manual, German by default and English by the
//! user's language, `?lang=en` or the language cookie. Pages are maud templates (every value is
//! escaped), forms are plain `application/x-www-form-urlencoded` POSTs (the customer import,
//! which takes a file, alone sends `multipart/form-data`) followed by a redirect
//! (Post/Redirect/Get), and no script runs but the passkey script (`passkeys`: WebAuthn needs
//! the browser's API; served by the crate, no inline script). A redirect's message
//! ("Gespeichert.", "Ben Becker wurde gesperrt.") travels in a short-lived signed cookie (`flash`), never in the URL.
//! No page answers JSON: a `GET` on a form's own address (a reload of its answer, back, a new
//! tab) leads to the page the form belongs to (`back`), and another method on a page path is
//! the HTML 405 page (`method_not_allowed`).
//!
//! It shares the API's infrastructure: [`AppState`], the cookies ([`crate::cookies`], one module
//! for API and pages), CSRF ([`crate::csrf`]), the rate limits, the error codes
//! ([`crate::error`], shown as localized messages) and the core's use cases.
//!
//! **Shape.** One module per screen (`auth::login`, `admin::permissions`, `account::sessions`,
//! …), each with its handlers, its typed form and its markup. A handler is plain axum: it takes
//! its extractors — the page context (`ctx::Ctx`, or `ctx::Authed` for pages behind a
//! login), its path type from `urls`, a typed `form::Form` or `form::Query` — calls the
//! core and returns `Result<Response, PageError>`, using `?` on the core's errors:
//!
//! - **Errors** (`error`): a `PageError` is a status and a message key. The layer around every
//!   page (`error::render_errors`) renders it as the error page with the frame (language,
//!   navigation, base path) the handler's context captured for this request, or as the bare
//!   error page when no context exists yet (the form guard, an unknown page). A `PageError`
//!   made from a core or API error carries it: the page keeps its [`crate::error::ErrorReport`],
//!   so the router's error layer logs a server error once, with the request id, as for the API.
//!   A form with fixable input answers its own page again with messages at the fields (4xx), not
//!   a `PageError`.
//! - **Forms** (`form`): `serde` structs of `String`s with `#[serde(default)]`, read by
//!   `axum-extra`'s `Form` (`serde_html_form`: repeated checkboxes fill a `Vec`), so a missing
//!   field is a validation message of the page, never a server error.
//! - **URLs** (`urls`): one `TypedPath` type per route; the router mounts it, handlers extract
//!   it (its fields are the core's values, parsed by the API's own path extractors of
//!   [`crate::path`]; a value that names nothing is the 404 page), templates and redirects print
//!   it under the base path ([`crate::HttpConfig::public_path`], for host applications that nest
//!   the router). No path is written twice, and rendered HTML is never rewritten.
//! - **Texts** (`i18n`): Fluent message files per language (`locales/de.ftl`,
//!   `locales/en.ftl`); code names messages by key. Every [`crate::error::ErrorCode`] has its
//!   message key in `i18n::code_key`, a `match` without catch-all: a new code does not compile
//!   until it has one, and the tests check the key exists in every file.
//!
//! **CSRF.** Every form carries a hidden `csrf_token`: bound to the session when logged in,
//! otherwise to the pre-session cookie (a signed double-submit cookie: login CSRF is refused).
//! A guard (`form::form_guard`) checks it on every unsafe request together with `Origin` and
//! `Sec-Fetch-Site`, the content type and the body size, before any handler; a failure is the
//! 403 (415, 413) page.
//!
//! **Headers.** Pages get `Content-Security-Policy: default-src 'self'; img-src 'self' data:;
//! frame-ancestors 'none'` (plus `base-uri`, `form-action`, `object-src`), `Referrer-Policy:
//! no-referrer` (the invitation and reset pages carry tokens in their path) and
//! `Cache-Control: no-store`.

mod account;
mod admin;
mod audit_details;
mod auth;
mod contact;
pub(crate) mod ctx;
mod devmail;
pub(crate) mod error;
mod flash;
pub(crate) mod form;
mod home;
pub(crate) mod i18n;
pub(crate) mod layout;
mod mfa;
mod onboarding;
mod operator;
mod operator_clients;
mod operator_customers;
mod paging;
mod passkeys;
pub(crate) mod urls;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every page: nothing but this site's own stylesheet, script (the passkey
/// script; nothing inline) and images (the QR code is inline SVG), no frames, forms only to this
/// site.
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

/// Security headers of the pages, as tower-http layers (inside the router-wide defaults, which
/// only fill gaps): the page CSP, referrer policy, frame and opener policies replace whatever a
/// handler set; `Cache-Control: no-store` only where a handler set none.
fn with_page_headers(pages: Router<AppState>) -> Router<AppState> {
    use tower_http::set_header::SetResponseHeaderLayer;
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    pages.layer(
        tower::ServiceBuilder::new()
            .layer(set(header::CONTENT_SECURITY_POLICY, PAGE_CSP))
            .layer(set(header::REFERRER_POLICY, "no-referrer"))
            .layer(set(header::X_FRAME_OPTIONS, "DENY"))
            .layer(set(
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
    )
}

/// `GET` on a form's address (a reload of its answer, back, a new tab): the page the form
/// belongs to, never an error. Forms post to addresses of their own; only the page that shows
/// them answers a `GET`.
pub(crate) fn back<T>(
    to: T,
) -> impl Fn(ctx::Ctx) -> std::future::Ready<Response> + Clone + Send + Sync + 'static
where
    T: std::fmt::Display + Clone + Send + Sync + 'static,
{
    move |c: ctx::Ctx| std::future::ready(c.redirect(&to))
}

/// [`back`], keeping the query (the second login step's methods and destination).
fn back_with_query<T>(
    to: T,
) -> impl Fn(ctx::Ctx, axum::http::Uri) -> std::future::Ready<Response> + Clone + Send + Sync + 'static
where
    T: std::fmt::Display + Clone + Send + Sync + 'static,
{
    move |c: ctx::Ctx, uri: axum::http::Uri| {
        std::future::ready(match uri.query() {
            Some(q) => c.redirect(format!("{to}?{q}")),
            None => c.redirect(&to),
        })
    }
}

/// The pages, mounted at `/` beside the API: every path is a type of [`urls`].
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    use axum_extra::routing::TypedPath;
    use urls::*;
    let mut r =
        Router::new()
            .route(Root::PATH, get(home::root))
            .route(Stylesheet::PATH, get(stylesheet))
            .route(PasskeyScript::PATH, get(passkeys::script))
            // Anmelden, Registrieren, Passwort vergessen, Einladung
            .route(
                Login::PATH,
                get(auth::login::page).post(auth::login::submit),
            )
            .route(
                LoginMfa::PATH,
                get(auth::mfa_step::page).post(auth::mfa_step::submit),
            )
            .route(
                LoginPasskey::PATH,
                get(back(Login)).post(passkeys::sign_in_submit),
            )
            .route(
                LoginMfaPhoneCode::PATH,
                get(back_with_query(LoginMfa)).post(auth::mfa_step::phone_code),
            )
            .route(
                LoginMfaRecoveryCode::PATH,
                get(back_with_query(LoginMfa)).post(auth::mfa_step::recovery_code),
            )
            .route(Logout::PATH, get(back(Root)).post(auth::login::logout))
            .route(
                Register::PATH,
                get(auth::register::page).post(auth::register::submit),
            )
            .route(
                RegisterCode::PATH,
                get(auth::register::code_page).post(auth::register::verify),
            )
            .route(
                RegisterCodeResend::PATH,
                get(back(RegisterCode)).post(auth::register::resend),
            )
            .route(
                PasswordForgot::PATH,
                get(auth::reset::forgot_page).post(auth::reset::forgot),
            )
            .route(
                PasswordReset::PATH,
                get(auth::reset::page).post(auth::reset::submit),
            )
            .route(PasswordChanged::PATH, get(auth::reset::changed))
            .route(
                Invitation::PATH,
                get(auth::invitation::page).post(auth::invitation::accept),
            )
            // Startseite, Bereiche, Zugehörigkeit, Kundennummer, Kontakt, Admin-Antrag
            .route(Home::PATH, get(home::home))
            .route(Area::PATH, get(home::area))
            .route(
                Affiliation::PATH,
                get(onboarding::affiliation).post(onboarding::choose_affiliation),
            )
            .route(Link::PATH, get(onboarding::link))
            .route(
                LinkCustomer::PATH,
                get(back(Link)).post(onboarding::link_customer),
            )
            .route(
                LinkLegacy::PATH,
                get(back(Link)).post(onboarding::link_legacy),
            )
            .route(ContactAdmin::PATH, get(contact::page).post(contact::send))
            .route(
                AdminRequest::PATH,
                get(contact::admin_request).post(contact::request_admin),
            )
            // Meine Daten, Sicherheit, Sitzungen
            .route(
                Profile::PATH,
                get(account::profile::page).post(account::profile::update),
            )
            .route(
                ProfilePassword::PATH,
                get(back(Profile)).post(account::profile::change_password),
            )
            .route(
                ProfileEmail::PATH,
                get(back(Profile)).post(account::profile::start_email_change),
            )
            .route(
                ProfileEmailConfirm::PATH,
                get(account::profile::email_code).post(account::profile::confirm_email),
            )
            .route(
                ProfileExport::PATH,
                get(back(Profile)).post(account::profile::export),
            )
            .route(
                Reauth::PATH,
                get(account::reauth::page).post(account::reauth::submit),
            )
            .route(Sessions::PATH, get(account::sessions::page))
            .route(
                SessionsEndOthers::PATH,
                get(back(Sessions)).post(account::sessions::end_others),
            )
            .route(
                SessionEnd::PATH,
                get(back(Sessions)).post(account::sessions::end_one),
            )
            .route(Mfa::PATH, get(mfa::settings))
            .route(MfaTotp::PATH, get(back(Mfa)).post(mfa::start_totp))
            .route(MfaTotpConfirm::PATH, get(back(Mfa)).post(mfa::confirm_totp))
            .route(MfaPhone::PATH, get(back(Mfa)).post(mfa::start_phone))
            .route(
                MfaPhoneConfirm::PATH,
                get(mfa::phone_code).post(mfa::confirm_phone),
            )
            .route(
                MfaPresenceCode::PATH,
                get(back(Mfa)).post(mfa::presence_code),
            )
            .route(MfaRemove::PATH, get(back(Mfa)).post(mfa::remove))
            .route(
                MfaPasskeyRemove::PATH,
                get(back(Mfa)).post(passkeys::remove),
            )
            .route(
                MfaPasskeyRename::PATH,
                get(back(Mfa)).post(passkeys::rename),
            )
            .route(MfaRecoveryCode::PATH, get(back(Mfa)).post(mfa::regenerate))
            .route(
                MfaRecoveryChannel::PATH,
                get(back(Mfa)).post(mfa::recovery_channel),
            )
            .route(
                MfaRecoveryChannelConfirm::PATH,
                get(mfa::recovery_channel_code).post(mfa::confirm_recovery_channel),
            )
            .route(
                MfaRecoveryChannelResend::PATH,
                get(back(MfaRecoveryChannelConfirm)).post(mfa::resend_recovery_channel_code),
            )
            // Benutzerverwaltung
            .route(MyUsers::PATH, get(admin::my_users))
            .route(MyAudit::PATH, get(admin::my_audit))
            .route(MyAdminRequests::PATH, get(admin::my_admin_requests))
            .route(Users::PATH, get(admin::users::page))
            .route(
                NewUser::PATH,
                get(admin::invite::page).post(admin::invite::submit),
            )
            .route(
                UserPermissions::PATH,
                get(admin::permissions::page).post(admin::permissions::submit),
            )
            .route(
                UserLock::PATH,
                get(admin::user_detail::lock_page).post(admin::user_detail::lock),
            )
            .route(
                UserDelete::PATH,
                get(admin::user_detail::delete_page).post(admin::user_detail::delete),
            )
            .route(
                UserActivate::PATH,
                get(|p: UserActivate, c: ctx::Ctx| async move {
                    c.redirect(Users { number: p.number })
                })
                .post(admin::users::activate),
            )
            .route(
                UserInvitation::PATH,
                get(|p: UserInvitation, c: ctx::Ctx| async move {
                    c.redirect(Users { number: p.number })
                })
                .post(admin::users::reinvite),
            )
            .route(UserAudit::PATH, get(admin::audit::user))
            .route(
                UserExport::PATH,
                get(|p: UserExport, c: ctx::Ctx| async move {
                    c.redirect(UserAudit {
                        number: p.number,
                        id: p.id,
                    })
                })
                .post(admin::audit::export),
            )
            .route(CustomerAudit::PATH, get(admin::audit::customer))
            .route(CustomerAdminRequests::PATH, get(admin::requests::page))
            .route(
                AdminRequestConsent::PATH,
                get(|p: AdminRequestConsent, c: ctx::Ctx| async move {
                    c.redirect(CustomerAdminRequests { number: p.number })
                })
                .post(admin::requests::consent),
            )
            .route(
                AdminRequestDecline::PATH,
                get(|p: AdminRequestDecline, c: ctx::Ctx| async move {
                    c.redirect(CustomerAdminRequests { number: p.number })
                })
                .post(admin::requests::decline),
            )
            // Portal-Mitarbeiter
            .route(OperatorCustomers::PATH, get(operator_customers::customers))
            .route(
                OperatorNewCustomer::PATH,
                get(operator::new_customer).post(operator::create_customer),
            )
            .route(
                OperatorSecondFactorPolicy::PATH,
                get(back(OperatorCustomers)).post(operator::second_factor_policy),
            )
            .route(OperatorAdminRequests::PATH, get(operator::requests))
            .route(
                OperatorApprove::PATH,
                get(back(OperatorAdminRequests)).post(operator::approve),
            )
            .route(
                OperatorReject::PATH,
                get(back(OperatorAdminRequests)).post(operator::reject),
            )
            .route(OperatorOutbox::PATH, get(operator::outbox))
            .route(
                OperatorRequeue::PATH,
                get(back(OperatorOutbox)).post(operator::requeue),
            )
            .route(OperatorClients::PATH, get(operator_clients::list))
            .route(
                OperatorNewClient::PATH,
                get(operator_clients::new).post(operator_clients::create),
            )
            .route(
                OperatorClient::PATH,
                get(operator_clients::show).post(operator_clients::update),
            )
            .route(
                OperatorClientSecret::PATH,
                get(|p: OperatorClientSecret, c: ctx::Ctx| async move {
                    c.redirect(OperatorClient { id: p.id })
                })
                .post(operator_clients::rotate),
            )
            .route(
                OperatorClientDisable::PATH,
                get(|p: OperatorClientDisable, c: ctx::Ctx| async move {
                    c.redirect(OperatorClient { id: p.id })
                })
                .post(operator_clients::disable),
            );
    if state.config().dev_mailbox().is_some() {
        r = r.route(DevMailbox::PATH, get(devmail::mailbox));
    }
    let guard = from_fn_with_state(state.clone(), form::form_guard);
    // The forms that send a file, with their larger body limit attached outside the guard,
    // which reads it ([`crate::middleware::BodyLimit`]).
    let uploads = Router::new()
        .route(
            OperatorImportCustomers::PATH,
            get(operator_customers::import_form).post(operator_customers::import),
        )
        .route_layer(guard.clone())
        .route_layer(axum::Extension(crate::middleware::BodyLimit::upload(
            state.config(),
        )));
    with_page_headers(
        r.route_layer(guard)
            .merge(uploads)
            .layer(from_fn_with_state(state.clone(), error::render_errors)),
    )
}

/// The router's answer to a method a path does not take: the API's JSON error under `/api/`;
/// for a page, never JSON: a `GET` (or `HEAD`) goes to the start page (every form's address
/// answers its own `GET`, so this is only a safety net), anything else is the 405 error page.
pub(crate) async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
) -> Response {
    use axum::http::Method;
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        return crate::ApiError::new(crate::error::ErrorCode::MethodNotAllowed).into_response();
    }
    let base = state.config().public_path();
    let mut r = if matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&urls::under(base, urls::Root)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    } else {
        let lang = ctx::lang_from_request(state.config(), req.headers(), req.uri().query());
        layout::bare_error(
            lang,
            base,
            StatusCode::METHOD_NOT_ALLOWED,
            &i18n::code(lang, crate::error::ErrorCode::MethodNotAllowed),
        )
    };
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r
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
        state.config().public_path(),
        StatusCode::NOT_FOUND,
        &i18n::code(lang, crate::error::ErrorCode::NotFound),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r
}
