//! Passkeys on the pages: the list on the security page ("2-Faktor-Authentifizierung") with
//! adding and removing, "Mit Passkey anmelden" on the login page and the passkey in the second
//! login step.
//!
//! WebAuthn needs the browser's `navigator.credentials`, so adding a passkey and signing in with
//! one run in a small script served by Portal (`/assets/passkeys.js`, allowed by the page CSP's
//! `default-src 'self'`; nothing inline). The script calls the JSON API (`/api/v1/me/passkeys…`,
//! `/api/v1/auth/passkey…`, `/api/v1/auth/login/mfa/passkey…`) with the page's CSRF token in
//! `X-CSRF-Token`; the session cookie is the same for API and pages. Its forms carry `hidden`
//! and show only once the script runs; the pages say that passkeys need JavaScript and the
//! password path stays. Removing a passkey is a plain form (step-up like every factor change).

use super::account::reauth_redirect;
use super::ctx::{Authed, Shell};
use super::error::PageError;
use super::i18n;
use super::layout::{Errors, csrf_field};
use super::urls::{self, Notice};
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use portal_core::service::MfaError;

const SCRIPT: &str = include_str!("../../assets/passkeys.js");

/// `GET /assets/passkeys.js`.
pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The `<script>` element of a page that offers passkeys.
pub(crate) fn script_tag(s: &Shell) -> Markup {
    html! { script src=(s.href(urls::PasskeyScript)) defer {} }
}

/// The API address `path` (below `/api/v1`) under the base path.
fn api(s: &Shell, path: &str) -> String {
    s.href(format_args!("/api/v1{path}"))
}

/// The script's messages (`data-msg-…`), in the page language.
fn messages(s: &Shell) -> [(&'static str, String); 7] {
    let code = |c| i18n::code(s.lang, c).to_string();
    [
        ("data-msg-failed", s.t("passkey-failed").to_string()),
        ("data-msg-cancelled", s.t("passkey-cancelled").to_string()),
        (
            "data-msg-unsupported",
            s.t("passkey-unsupported").to_string(),
        ),
        ("data-msg-passkey-refused", code(ErrorCode::PasskeyRefused)),
        (
            "data-msg-passkey-challenge-invalid",
            code(ErrorCode::PasskeyChallengeInvalid),
        ),
        ("data-msg-passkey-limit", code(ErrorCode::PasskeyLimit)),
        (
            "data-msg-invalid-passkey-name",
            code(ErrorCode::InvalidPasskeyName),
        ),
    ]
}

/// A script-driven passkey form: hidden until the script shows it.
fn passkey_form(
    s: &Shell,
    kind: &str,
    options: &str,
    finish: &str,
    done: &str,
    inner: Markup,
) -> Markup {
    let msgs = messages(s);
    html! {
        form.passkey hidden data-passkey=(kind) data-options=(api(s, options))
            data-finish=(api(s, finish)) data-done=(done)
            data-reauth=(s.href(format_args!("{}?next={}", urls::Reauth, urls::Mfa)))
            data-msg-failed=(msgs[0].1) data-msg-cancelled=(msgs[1].1)
            data-msg-unsupported=(msgs[2].1) data-msg-passkey-refused=(msgs[3].1)
            data-msg-passkey-challenge-invalid=(msgs[4].1) data-msg-passkey-limit=(msgs[5].1)
            data-msg-invalid-passkey-name=(msgs[6].1) {
            (csrf_field(s))
            div.alert.error role="alert" hidden data-passkey-message {}
            (inner)
        }
    }
}

/// "Mit Passkey anmelden" on the login page, going to `next` once signed in.
pub(crate) fn sign_in(s: &Shell, next: &str) -> Markup {
    let done = if next.is_empty() {
        s.href(urls::Home)
    } else {
        s.href(next)
    };
    html! {
        (passkey_form(s, "sign-in", "/auth/passkey/options", "/auth/passkey", &done, html! {
            button.secondary type="submit" { (s.t("passkey-sign-in")) }
        }))
        p.hint { (s.t("passkey-needs-script")) }
        (script_tag(s))
    }
}

/// The passkey in the second login step, going to `done` once signed in.
pub(crate) fn second_factor(s: &Shell, done: &str) -> Markup {
    html! {
        (passkey_form(s, "second-factor", "/auth/login/mfa/passkey/options", "/auth/login/mfa/passkey", done, html! {
            label.choice { input type="checkbox" name="remember_device" value="true"; " " (s.t("mfa-step-remember-device")) }
            button.primary type="submit" { (s.t("passkey-use")) }
        }))
        p.hint { (s.t("passkey-needs-script")) }
        (script_tag(s))
    }
}

/// The card of the security page: the user's passkeys with removal, and adding one.
pub(crate) fn settings_card(a: &Authed, errors: Option<&Errors>) -> Markup {
    let mfa = a.principal.user().mfa();
    let mfa_page = a.href(urls::Mfa);
    html! {
        section.card #passkeys {
            h2 { (a.t("passkeys-heading")) }
            p { (a.t("passkeys-intro")) }
            p.hint { (a.t("passkey-needs-script")) }
            @if let Some(e) = errors { (e.summary(a.lang)) }
            @if mfa.passkeys.is_empty() {
                p { (a.t("passkeys-none")) }
            } @else {
                table.stack {
                    caption.visually-hidden { (a.t("passkeys-heading")) }
                    thead { tr {
                        th scope="col" { (a.t("passkey-name")) }
                        th scope="col" { (a.t("passkey-created")) }
                        th scope="col" { (a.t("passkey-last-used")) }
                        th scope="col" { (a.t("actions")) }
                    } }
                    tbody {
                        @for p in &mfa.passkeys {
                            tr {
                                td data-label=(a.t("passkey-name")) { (p.name.to_string()) }
                                td data-label=(a.t("passkey-created")) { (i18n::date_time(a.lang, p.created_at)) }
                                td data-label=(a.t("passkey-last-used")) {
                                    @match p.last_used_at {
                                        Some(at) => (i18n::date_time(a.lang, at)),
                                        None => (a.t("passkey-never-used")),
                                    }
                                }
                                td.actions data-label=(a.t("actions")) {
                                    form method="post" action=(a.href(urls::MfaPasskeyRemove { id: p.id })) {
                                        (csrf_field(a))
                                        button.link type="submit" { (a.t("passkey-remove")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (passkey_form(a, "register", "/me/passkeys/options", "/me/passkeys", &mfa_page, html! {
                label for="passkey-name" { (a.t("passkey-name")) }
                input #passkey-name type="text" name="name" maxlength="60" required
                    placeholder=(a.t("passkey-name-hint"));
                button.primary type="submit" { (a.t("passkey-add")) }
                div.alert.warn hidden data-passkey-recovery {
                    p { (a.t("passkey-recovery-code")) }
                    p { code {} }
                    a.button.secondary href=(mfa_page) { (a.t("continue")) }
                }
            }))
            (script_tag(a))
        }
    }
}

/// `POST /mfa/passkeys/{id}/remove`: needs a fresh login; never the last factor a policy needs.
pub(crate) async fn remove(
    a: Authed,
    urls::MfaPasskeyRemove { id }: urls::MfaPasskeyRemove,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a.portal().remove_passkey(&a.principal, id).await {
        Ok(()) => Ok(a.redirect_with(Notice::Saved, urls::Mfa)),
        Err(MfaError::ReauthRequired) => Ok(reauth_redirect(&a, urls::Mfa)),
        Err(e @ (MfaError::LastFactor | MfaError::NoSuchFactor)) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(urls::Mfa, errors))
        }
        Err(e) => Err(e.into()),
    }
}
