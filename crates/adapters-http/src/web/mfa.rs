//! "2-Faktor-Authentifizierung" (manual chapter 4): setting up an authenticator app (QR code
//! inline, the secret for typing), a phone for SMS or calls, the recovery code (shown once),
//! removing factors, a new recovery code, and the recovery method. Changes need a fresh login
//! (the step-up page) and, once a factor exists, a current second factor.
//!
//! Secrets are shown in the answer to the POST that made them (never behind a GET that could
//! show them twice); those answers are `no-store` like every page.

use super::account::reauth_redirect;
use super::auth::{factor_fields_in, factor_of, query_notice, recovery_code_shown};
use super::ctx::Authed;
use super::form::FormData;
use super::i18n;
use super::layout::{Errors, Input, code_input, csrf_field};
use crate::error::ApiError;
use crate::ratelimit::Bucket;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use portal_core::mfa::{MfaMethod, PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::secret::SecretString;
use portal_core::service::{FactorEnabled, MfaError};
use portal_core::values::EmailAddress;

/// Which form on the settings page an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Totp,
    Phone,
    Remove,
    Regenerate,
    Channel,
}

fn section_errors(which: Option<(Section, &Errors)>, me: Section) -> Option<&Errors> {
    which.and_then(|(s, e)| (s == me).then_some(e))
}

fn settings_page(a: &Authed, which: Option<(Section, &Errors)>) -> Markup {
    let none = Errors::new();
    let err = |s| section_errors(which, s).unwrap_or(&none);
    let mfa = a.p.user().mfa();
    let methods = mfa.methods();
    let enabled = mfa.is_enabled();
    html! {
        h1 { (a.t("mfa-title")) }
        (query_notice(a))
        section.card {
            h2 { (a.t("status")) }
            @if enabled {
                p { (a.t("mfa-status-enabled")) }
                ul {
                    @for m in &methods {
                        li { (i18n::method(a.lang, *m))
                            @if matches!(m, MfaMethod::Sms | MfaMethod::Voice) {
                                @if let Some(p) = &mfa.phone { " (" (p.number.masked()) ")" }
                            }
                        }
                    }
                }
                @match &mfa.recovery_channel {
                    Some(RecoveryChannel::Phone(p)) => p { (a.t("mfa-recovery-by-sms")) " " (p.masked()) },
                    Some(RecoveryChannel::Email(e)) => p { (a.t("mfa-recovery-by-email")) " " (e.as_str()) },
                    None => p { (a.t("mfa-no-recovery-method")) },
                }
            } @else {
                p { (a.t("mfa-status-disabled")) }
            }
        }
        @if mfa.totp.is_none() {
            section.card {
                h2 { (a.t("mfa-method-totp")) }
                p { (a.t("mfa-totp-intro")) }
                (err(Section::Totp).summary(a.lang))
                form method="post" action="/mfa/totp" {
                    (csrf_field(a))
                    button.primary type="submit" { (a.t("mfa-totp-start")) }
                }
            }
        }
        @if mfa.phone.is_none() {
            section.card {
                h2 { (a.t("mfa-phone-heading")) }
                p { (a.t("mfa-phone-intro")) }
                (err(Section::Phone).summary(a.lang))
                form method="post" action="/mfa/phone" {
                    (csrf_field(a))
                    (Input::new("phone", a.t("mfa-phone-number")).kind("tel").auto("tel").errors(err(Section::Phone))
                        .hint(a.t("mfa-phone-hint")))
                    fieldset {
                        legend { (a.t("mfa-phone-channel")) }
                        label.choice { input type="radio" name="channel" value="sms" checked; " " (a.t("mfa-text-message")) }
                        label.choice { input type="radio" name="channel" value="voice"; " " (a.t("mfa-phone-call")) }
                    }
                    button.primary type="submit" { (a.t("send-code")) }
                }
            }
        }
        @if enabled {
            @if mfa.phone.is_some() {
                section.card {
                    h2 { (a.t("mfa-presence-heading")) }
                    p { (a.t("mfa-presence-intro")) }
                    form method="post" action="/mfa/presence-code" {
                        (csrf_field(a))
                        button.secondary type="submit" { (a.t("send-code")) }
                    }
                }
            }
            section.card {
                h2 { (a.t("mfa-channel-heading")) }
                p { (a.t("mfa-channel-intro")) }
                (err(Section::Channel).summary(a.lang))
                form method="post" action="/mfa/recovery-channel" {
                    (csrf_field(a))
                    fieldset {
                        legend { (a.t("kind")) }
                        label.choice { input type="radio" name="kind" value="email" checked; " " (a.t("invite-email-address")) }
                        label.choice { input type="radio" name="kind" value="phone"; " " (a.t("mfa-channel-phone")) }
                    }
                    (Input::new("to", a.t("mfa-channel-to")).errors(err(Section::Channel)))
                    (factor_fields_in(a, &methods, err(Section::Channel), "channel-"))
                    button.primary type="submit" { (a.t("save")) }
                }
            }
            section.card {
                h2 { (a.t("forgot-recovery-code")) }
                p { (a.t("mfa-regenerate-intro")) }
                (err(Section::Regenerate).summary(a.lang))
                form method="post" action="/mfa/recovery-code" {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Regenerate), "regenerate-"))
                    button.primary type="submit" { (a.t("mfa-regenerate-submit")) }
                }
            }
            section.card.danger {
                h2 { (a.t("mfa-remove")) }
                p { (a.t("mfa-remove-intro")) }
                (err(Section::Remove).summary(a.lang))
                form method="post" action="/mfa/remove" {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Remove), "remove-"))
                    div.actions {
                        button.danger type="submit" { (a.t("mfa-remove")) }
                        a.button.secondary href="/home" { (a.t("cancel")) }
                    }
                }
            }
        }
    }
}

/// `GET /mfa`.
pub(crate) async fn settings(a: Authed) -> Response {
    a.page(a.t("mfa-title"), settings_page(&a, None))
}

/// The settings page again with an error in one section, or the step-up page, or the error
/// page for what a page cannot fix.
fn failed(a: &Authed, section: Section, e: MfaError) -> Response {
    let mut errors = Errors::new();
    let status = match e {
        MfaError::ReauthRequired => return reauth_redirect(a, "/mfa"),
        MfaError::SamePhone => {
            errors.field("to", i18n::code(a.lang, crate::error::codes::SAME_PHONE));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        MfaError::NoSuchFactor => {
            errors.field(
                "factor",
                i18n::code(a.lang, crate::error::codes::NO_SUCH_FACTOR),
            );
            StatusCode::BAD_REQUEST
        }
        e @ (MfaError::MalformedCode | MfaError::WrongCode | MfaError::CodeExpired) => {
            errors.field("code", i18n::code(a.lang, ApiError::from(e).code()));
            StatusCode::BAD_REQUEST
        }
        e @ (MfaError::Throttled { .. }
        | MfaError::AlreadyEnabled
        | MfaError::NotEnabled
        | MfaError::NoSetupInProgress
        | MfaError::Unavailable
        | MfaError::SendFailed(_)
        | MfaError::AttemptsExhausted) => {
            let code = ApiError::from(e).code();
            errors.general(i18n::code(a.lang, code));
            StatusCode::from_u16(code.status).unwrap_or(StatusCode::CONFLICT)
        }
        e => return a.fail(e),
    };
    a.page_with(
        status,
        a.t("mfa-title"),
        settings_page(a, Some((section, &errors))),
    )
}

fn confirm_page(
    a: &Authed,
    action: &str,
    qr: Option<(&str, &str, &str)>,
    errors: &Errors,
) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("mfa-setup-title")) }
            @if let Some((svg, secret, uri)) = qr {
                p { (a.t("mfa-setup-scan")) }
                figure.qr {
                    // The core draws the QR code as plain SVG paths: no scripts, no styles.
                    (PreEscaped(svg))
                    figcaption { (a.t("mfa-setup-qr-caption")) }
                }
                p { (a.t("mfa-setup-type-key")) }
                p.secret { code #totp-secret { (secret) } }
                p.muted.small { a href=(uri) { (a.t("mfa-setup-open-app")) } }
            } @else {
                p { (a.t("mfa-setup-enter-sent-code")) }
            }
            (errors.summary(a.lang))
            form method="post" action=(action) {
                (csrf_field(a))
                (code_input(a.t("code"), errors))
                div.actions {
                    button.primary type="submit" { (a.t("continue")) }
                    a.button.secondary href="/mfa" { (a.t("cancel")) }
                }
            }
        }
    }
}

/// `POST /mfa/totp`: a new secret; the answer shows its QR code and the secret once.
pub(crate) async fn start_totp(a: Authed) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    match a.portal().start_totp_enrolment(&a.p).await {
        Ok(e) => a.page(
            a.t("mfa-setup-title"),
            confirm_page(
                &a,
                "/mfa/totp/confirm",
                Some((e.qr_svg(), e.secret_base32(), e.otpauth_uri())),
                &Errors::new(),
            ),
        ),
        Err(e) => failed(&a, Section::Totp, e),
    }
}

fn enabled(a: &Authed, done: FactorEnabled) -> Response {
    match done.recovery_code {
        Some(code) => a.page(
            a.t("recovery-code-title"),
            recovery_code_shown(a, code.expose(), "/mfa?notice=saved"),
        ),
        None => a.redirect("/mfa?notice=saved"),
    }
}

fn confirm_failed(a: &Authed, action: &str, section: Section, e: MfaError) -> Response {
    match e {
        e @ (MfaError::MalformedCode | MfaError::WrongCode | MfaError::CodeExpired) => {
            let mut errors = Errors::new();
            errors.field("code", i18n::code(a.lang, ApiError::from(e).code()));
            a.page_with(
                StatusCode::BAD_REQUEST,
                a.t("mfa-setup-title"),
                confirm_page(a, action, None, &errors),
            )
        }
        e => failed(a, section, e),
    }
}

/// `POST /mfa/totp/confirm`: the app's first code; the recovery code is shown once.
pub(crate) async fn confirm_totp(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    match a
        .portal()
        .confirm_totp(&a.p, &SecretString::new(form.get("code").trim()))
        .await
    {
        Ok(done) => enabled(&a, done),
        Err(e) => confirm_failed(&a, "/mfa/totp/confirm", Section::Totp, e),
    }
}

/// `POST /mfa/phone`: a code to the phone being set up.
pub(crate) async fn start_phone(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    let Ok(number) = PhoneNumber::parse(form.get("phone")) else {
        let mut errors = Errors::new();
        errors.field("phone", a.t("mfa-phone-invalid"));
        return a.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            a.t("mfa-title"),
            settings_page(&a, Some((Section::Phone, &errors))),
        );
    };
    let channel = if form.get("channel") == "voice" {
        PhoneChannel::Voice
    } else {
        PhoneChannel::Sms
    };
    match a
        .portal()
        .start_phone_enrolment(&a.p, &number, channel)
        .await
    {
        Ok(()) => a.redirect("/mfa/phone/confirm"),
        Err(e) => failed(&a, Section::Phone, e),
    }
}

/// `GET /mfa/phone/confirm`.
pub(crate) async fn phone_code(a: Authed) -> Response {
    a.page(
        a.t("mfa-setup-title"),
        confirm_page(&a, "/mfa/phone/confirm", None, &Errors::new()),
    )
}

/// `POST /mfa/phone/confirm`.
pub(crate) async fn confirm_phone(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    match a
        .portal()
        .confirm_phone(&a.p, &SecretString::new(form.get("code").trim()))
        .await
    {
        Ok(done) => enabled(&a, done),
        Err(e) => confirm_failed(&a, "/mfa/phone/confirm", Section::Phone, e),
    }
}

/// `POST /mfa/presence-code`: a code to the MFA phone, to prove presence.
pub(crate) async fn presence_code(a: Authed) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    match a.portal().send_presence_code(&a.p).await {
        Ok(()) => a.redirect("/mfa?notice=code-sent"),
        Err(e) => failed(&a, Section::Remove, e),
    }
}

fn need_factor(a: &Authed, section: Section) -> Response {
    let mut errors = Errors::new();
    errors.field("factor", a.t("please-choose-a-method"));
    a.page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        a.t("mfa-title"),
        settings_page(a, Some((section, &errors))),
    )
}

/// `POST /mfa/remove`.
pub(crate) async fn remove(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    let Some(factor) = factor_of(&form) else {
        return need_factor(&a, Section::Remove);
    };
    match a.portal().remove_mfa(&a.p, &factor).await {
        Ok(()) => a.redirect("/mfa?notice=saved"),
        Err(e) => failed(&a, Section::Remove, e),
    }
}

/// `POST /mfa/recovery-code`: "Neuen Code generieren" (shown once).
pub(crate) async fn regenerate(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    let Some(factor) = factor_of(&form) else {
        return need_factor(&a, Section::Regenerate);
    };
    match a.portal().regenerate_recovery_code(&a.p, &factor).await {
        Ok(code) => a.page(
            a.t("recovery-code-title"),
            recovery_code_shown(&a, code.expose(), "/mfa"),
        ),
        Err(e) => failed(&a, Section::Regenerate, e),
    }
}

/// `POST /mfa/recovery-channel`: "Wiederherstellungsmethode festlegen".
pub(crate) async fn recovery_channel(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Mfa) {
        return r;
    }
    let to = form.get("to").trim();
    let channel = if form.get("kind") == "phone" {
        PhoneNumber::parse(to).ok().map(RecoveryChannel::Phone)
    } else {
        EmailAddress::parse(to).ok().map(RecoveryChannel::Email)
    };
    let Some(channel) = channel else {
        let mut errors = Errors::new();
        errors.field("to", a.t("mfa-channel-invalid"));
        return a.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            a.t("mfa-title"),
            settings_page(&a, Some((Section::Channel, &errors))),
        );
    };
    let Some(factor) = factor_of(&form) else {
        return need_factor(&a, Section::Channel);
    };
    match a
        .portal()
        .set_recovery_channel(&a.p, &channel, &factor)
        .await
    {
        Ok(()) => a.redirect("/mfa?notice=saved"),
        Err(e) => failed(&a, Section::Channel, e),
    }
}
