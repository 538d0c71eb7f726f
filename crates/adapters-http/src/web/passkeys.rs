//! Passkeys on the pages: the list on the security page ("2-Faktor-Authentifizierung") with
//! adding, renaming and removing, "Mit Passkey anmelden" on the login page (with conditional UI
//! where the browser offers it), the passkey in the second login step, and "Mit Passkey
//! bestätigen" on the step-up page.
//!
//! WebAuthn needs the browser's `navigator.credentials`, so the ceremonies run in a small script
//! served by Portal (`/assets/passkeys.js`, allowed by the page CSP's `default-src 'self'`;
//! nothing inline). The script starts each ceremony at the JSON API (`/api/v1/me/passkeys…`,
//! `/api/v1/auth/passkey…`, `/api/v1/auth/login/mfa/passkey…`) with the page's CSRF token in
//! `X-CSRF-Token` (the session cookie is the same for API and pages). Adding a passkey sends the
//! answer to the API as well; signing in, the second step and step-up put the answer into the
//! form's hidden `challenge_id` and `credential` fields and submit the form to its page
//! ([`sign_in_submit`], the second step's and the step-up page's `factor=passkey`), which sets
//! the cookies exactly as the password path does (session, known browser, remembered device).
//! The script's forms carry `hidden` and show only once it runs; the pages say that passkeys need
//! JavaScript and the password path stays. Renaming and removing are plain forms.

use super::account::reauth_redirect;
use super::auth::{next_of, started};
use super::ctx::Ctx;
use super::ctx::{Authed, Shell};
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, csrf_field, hidden};
use super::urls::{self, Notice};
use crate::cookies::CookieName;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use portal_core::ports::PasskeyRejected;
use portal_core::service::{MfaError, PasskeySignIn};
use portal_core::values::Language;
use serde::Deserialize;

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

/// A script-driven passkey form: hidden until the script shows it. `submit`: the form the
/// script fills with the ceremony's `challenge_id` and the browser's answer (`credential`, JSON)
/// and posts to that page address (signing in, the second step, step-up: a page handler starts
/// the session and sets its cookies); without it (adding a passkey) the script sends the answer
/// to the API address `finish`.
fn passkey_form(
    s: &Shell,
    kind: &str,
    options: &str,
    finish: Option<&str>,
    submit: Option<&str>,
    done: Option<&str>,
    inner: Markup,
) -> Markup {
    let msgs = messages(s);
    html! {
        form.passkey hidden method=[submit.map(|_| "post")] action=[submit] data-passkey=(kind)
            data-options=(api(s, options))
            data-finish=[finish.map(|f| api(s, f))] data-done=[done]
            data-reauth=(s.href(format_args!("{}?next={}", urls::Reauth, urls::Mfa)))
            data-msg-failed=(msgs[0].1) data-msg-cancelled=(msgs[1].1)
            data-msg-unsupported=(msgs[2].1) data-msg-passkey-refused=(msgs[3].1)
            data-msg-passkey-challenge-invalid=(msgs[4].1) data-msg-passkey-limit=(msgs[5].1)
            data-msg-invalid-passkey-name=(msgs[6].1) {
            (csrf_field(s))
            @if submit.is_some() {
                (hidden("challenge_id", ""))
                (hidden("credential", ""))
            }
            div.alert.error role="alert" hidden data-passkey-message {}
            (inner)
        }
    }
}

/// "Mit Passkey anmelden" on the login page, going to `next` once signed in. Where the browser
/// offers it, the script also starts a conditional request at once: the browser then offers the
/// passkeys among the suggestions of the e-mail field (`autocomplete="username webauthn"`).
pub(crate) fn sign_in(s: &Shell, next: &str) -> Markup {
    html! {
        (passkey_form(s, "sign-in", "/auth/passkey/options", None,
            Some(&s.href(urls::LoginPasskey)), None, html! {
            (hidden("next", next))
            button.secondary type="submit" { (s.t("passkey-sign-in")) }
        }))
        p.hint { (s.t("passkey-needs-script")) }
        (script_tag(s))
    }
}

/// The passkey in the second login step; the form posts to the step's own address `step`
/// (with its query) as `factor=passkey`.
pub(crate) fn second_factor(s: &Shell, step: &str) -> Markup {
    html! {
        (passkey_form(s, "second-factor", "/auth/login/mfa/passkey/options", None, Some(step), None, html! {
            (hidden("factor", "passkey"))
            label.choice { input type="checkbox" name="remember_device" value="1"; " " (s.t("mfa-step-remember-device")) }
            button.primary type="submit" { (s.t("passkey-use")) }
        }))
        p.hint { (s.t("passkey-needs-script")) }
        (script_tag(s))
    }
}

/// A passkey instead of the password on "Passwort bestätigen" (step-up): posts `factor=passkey`
/// to the page, then on to `next`.
pub(crate) fn reauth(s: &Shell, next: &str) -> Markup {
    html! {
        (passkey_form(s, "reauth", "/me/passkeys/presence-options", None,
            Some(&s.href(urls::Reauth)), None, html! {
            (hidden("factor", "passkey"))
            (hidden("next", next))
            p { (s.t("reauth-passkey-intro")) }
            button.secondary type="submit" { (s.t("passkey-use")) }
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
                                    details.rename {
                                        summary { (a.t("passkey-rename")) }
                                        form method="post" action=(a.href(urls::MfaPasskeyRename { id: p.id })) {
                                            (csrf_field(a))
                                            label for=(format!("passkey-name-{}", p.id)) { (a.t("passkey-new-name")) }
                                            input id=(format!("passkey-name-{}", p.id)) type="text" name="name"
                                                maxlength="60" required value=(p.name.to_string());
                                            button.secondary type="submit" { (a.t("save")) }
                                        }
                                    }
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
            // Adding one only where the server can verify passkeys (a public URL with a domain);
            // the list stays, so passkeys from before can be removed.
            @if a.portal().passkeys_available() {
            (passkey_form(a, "register", "/me/passkeys/options", Some("/me/passkeys"), None, Some(&mfa_page), html! {
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

/// A new name for a passkey.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RenameForm {
    name: String,
}

/// `POST /mfa/passkeys/{id}/rename`: audited; a name of 1–60 characters.
pub(crate) async fn rename(
    a: Authed,
    urls::MfaPasskeyRename { id }: urls::MfaPasskeyRename,
    Form(form): Form<RenameForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a
        .portal()
        .rename_passkey(&a.principal, id, &form.name)
        .await
    {
        Ok(()) => Ok(a.redirect_with(Notice::Saved, urls::Mfa)),
        Err(e @ (MfaError::InvalidPasskeyName(_) | MfaError::NoSuchFactor)) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(urls::Mfa, errors))
        }
        Err(e) => Err(e.into()),
    }
}

/// The ceremony's id and the browser's answer of a form the script filled in (`None`: not
/// filled in, or not an answer).
pub(crate) fn answer(
    challenge_id: &str,
    credential: &str,
) -> Option<(uuid::Uuid, serde_json::Value)> {
    let id = uuid::Uuid::parse_str(challenge_id.trim()).ok()?;
    let response: serde_json::Value = serde_json::from_str(credential).ok()?;
    response.is_object().then_some((id, response))
}

/// What a page says to a refused passkey answer (the error's message for the whole form), or
/// the error page for anything else.
pub(crate) fn refused(lang: Language, e: MfaError, errors: &mut Errors) -> Result<(), PageError> {
    match e {
        e @ (MfaError::Passkey(_)
        | MfaError::PasskeyChallenge
        | MfaError::Throttled { .. }
        | MfaError::Unavailable
        | MfaError::NoSuchFactor) => {
            errors.refused(lang, e);
            Ok(())
        }
        e => Err(e.into()),
    }
}

/// A form's answer that is none: refused as a malformed answer (no try counted).
pub(crate) fn malformed() -> MfaError {
    MfaError::Passkey(PasskeyRejected::Malformed)
}

/// The sign-in form's answer.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct SignInForm {
    challenge_id: String,
    credential: String,
    next: String,
}

/// `POST /login/passkey`: signed in with a passkey alone, as by the password and second factor
/// (session, known-browser cookie; the session this browser had ends), then on to `next`.
pub(crate) async fn sign_in_submit(
    ctx: Ctx,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    ctx.limit(Bucket::Login)?;
    let next = next_of(&ctx, Some(&form.next));
    let result = match answer(&form.challenge_id, &form.credential) {
        Some((challenge_id, response)) => {
            ctx.portal()
                .finish_passkey_sign_in(PasskeySignIn {
                    challenge_id,
                    response,
                    client: ctx.client.info(),
                    presented_session: ctx.cookie_value(CookieName::Session),
                })
                .await
        }
        None => Err(malformed()),
    };
    let mut errors = Errors::new();
    match result {
        Ok(issued) => {
            started(&ctx, &issued);
            return Ok(ctx.redirect(next));
        }
        Err(e) => refused(ctx.lang, e, &mut errors)?,
    }
    let mut query = vec![("next", next.as_str())];
    if ctx.principal.is_some() {
        query.push(("reauth", "1"));
    }
    Ok(ctx.back(urls::with_query(urls::Login, &query), errors))
}
