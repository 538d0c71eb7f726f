//! "2-Faktor-Authentifizierung" (manual chapter 4): setting up an authenticator app (QR code
//! inline, the secret for typing), a phone for SMS or calls, the recovery code (shown once),
//! removing factors, a new recovery code, and the recovery method. Changes need a fresh login
//! (the step-up page) and, once a factor exists, a current second factor.
//!
//! Secrets are shown in the answer to the POST that made them (never behind a GET that could
//! show them twice); those answers are `no-store` like every page.

use super::account::reauth_redirect;
use super::auth::{factor_fields_in, factor_of, recovery_code_shown};
use super::ctx::Authed;
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, Input, code_input, csrf_field, flash_notice};
use super::urls::{self, Notice};
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use portal_core::mfa::{MfaMethod, PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, FactorEnabled, MfaError};
use portal_core::totp::TotpEnrolment;
use portal_core::values::EmailAddress;
use serde::Deserialize;
use std::fmt::Display;

/// The fields of the settings page's forms: each form sends the ones it has.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct MfaForm {
    /// The code of a setup.
    code: String,
    /// The phone to set up.
    phone: String,
    /// `sms` or `voice`.
    channel: String,
    /// The recovery method's kind (`email` or `phone`) and address.
    kind: String,
    to: String,
    /// The current second factor (`totp`, `phone`, `recovery`) for changes.
    factor: String,
}

impl MfaForm {
    fn factor(&self) -> Option<portal_core::service::SecondFactor> {
        factor_of(&self.factor, &self.code)
    }
}

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

fn settings_page(
    a: &Authed,
    which: Option<(Section, &Errors)>,
    passkey_errors: Option<&Errors>,
) -> Markup {
    let none = Errors::new();
    let err = |s| section_errors(which, s).unwrap_or(&none);
    let mfa = a.principal.user().mfa();
    let methods = mfa.methods();
    let enabled = mfa.is_enabled();
    html! {
        h1 { (a.t("mfa-title")) }
        (flash_notice(a))
        @if a.principal.second_factor_missing() {
            @if a.principal.user().role() == portal_core::user::Role::Operator {
                div.alert.warn role="alert" { (a.t("mfa-required-operator")) }
            } @else {
                div.alert.warn role="alert" { (a.t("error-second-factor-required")) }
            }
        }
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
                @if let Some(pending) = &mfa.pending_recovery_channel {
                    p.muted {
                        (a.t_with("mfa-channel-pending", [("to", shown(&pending.channel).into())]))
                        " "
                        a href=(a.href(urls::MfaRecoveryChannelConfirm)) { (a.t("mfa-channel-enter-code")) }
                    }
                }
            } @else {
                p { (a.t("mfa-status-disabled")) }
            }
        }
        @if a.portal().passkeys_available() || !mfa.passkeys.is_empty() {
            (super::passkeys::settings_card(a, passkey_errors))
        }
        @if mfa.totp.is_none() {
            section.card {
                h2 { (a.t("mfa-method-totp")) }
                p { (a.t("mfa-totp-intro")) }
                (err(Section::Totp).summary(a.lang))
                form method="post" action=(a.href(urls::MfaTotp)) {
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
                form method="post" action=(a.href(urls::MfaPhone)) {
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
                    form method="post" action=(a.href(urls::MfaPresenceCode)) {
                        (csrf_field(a))
                        button.secondary type="submit" { (a.t("send-code")) }
                    }
                }
            }
            section.card {
                h2 { (a.t("mfa-channel-heading")) }
                p { (a.t("mfa-channel-intro")) }
                (err(Section::Channel).summary(a.lang))
                form method="post" action=(a.href(urls::MfaRecoveryChannel)) {
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
                form method="post" action=(a.href(urls::MfaRecoveryCode)) {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Regenerate), "regenerate-"))
                    button.primary type="submit" { (a.t("mfa-regenerate-submit")) }
                }
            }
            section.card.danger {
                h2 { (a.t("mfa-remove")) }
                p { (a.t("mfa-remove-intro")) }
                (err(Section::Remove).summary(a.lang))
                form method="post" action=(a.href(urls::MfaRemove)) {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Remove), "remove-"))
                    div.actions {
                        button.danger type="submit" { (a.t("mfa-remove")) }
                        a.button.secondary href=(a.href(urls::Home)) { (a.t("cancel")) }
                    }
                }
            }
        }
    }
}

/// The section of the settings page each form belongs to, by the address it is sent to.
fn section_of(form: &str) -> Option<Section> {
    use axum_extra::routing::TypedPath;
    Some(match form {
        urls::MfaTotp::PATH | urls::MfaTotpConfirm::PATH => Section::Totp,
        urls::MfaPhone::PATH | urls::MfaPhoneConfirm::PATH => Section::Phone,
        urls::MfaPresenceCode::PATH | urls::MfaRemove::PATH => Section::Remove,
        urls::MfaRecoveryCode::PATH => Section::Regenerate,
        urls::MfaRecoveryChannel::PATH
        | urls::MfaRecoveryChannelConfirm::PATH
        | urls::MfaRecoveryChannelResend::PATH => Section::Channel,
        _ => return None,
    })
}

/// `GET /mfa`: with the errors of a failed form in its section.
pub(crate) async fn settings(a: Authed) -> Response {
    use axum_extra::routing::TypedPath;
    let section = [
        urls::MfaTotp::PATH,
        urls::MfaTotpConfirm::PATH,
        urls::MfaPhone::PATH,
        urls::MfaPhoneConfirm::PATH,
        urls::MfaPresenceCode::PATH,
        urls::MfaRemove::PATH,
        urls::MfaRecoveryCode::PATH,
        urls::MfaRecoveryChannel::PATH,
        urls::MfaRecoveryChannelConfirm::PATH,
        urls::MfaRecoveryChannelResend::PATH,
    ]
    .into_iter()
    .find(|form| a.kept_is_of(form))
    .and_then(section_of);
    let errors = a.errors();
    // A failed form of no section above: a passkey's removal (its path names the passkey).
    let passkey_errors = (section.is_none() && a.kept.is_some()).then_some(&errors);
    a.page(
        a.t("mfa-title"),
        settings_page(&a, section.map(|s| (s, &errors)), passkey_errors),
    )
}

/// Back to the settings page with an error in the failed form's section, or the step-up page,
/// or the error page for what a page cannot fix.
fn failed(a: &Authed, e: MfaError) -> Result<Response, PageError> {
    let mut errors = Errors::new();
    match e {
        MfaError::ReauthRequired => return Ok(reauth_redirect(a, urls::Mfa)),
        MfaError::SamePhone => {
            errors.field("to", i18n::code(a.lang, ErrorCode::SamePhone));
        }
        MfaError::NoSuchFactor => {
            errors.field("factor", i18n::code(a.lang, ErrorCode::NoSuchFactor));
        }
        e @ (MfaError::Code(CodeError::Malformed)
        | MfaError::Code(CodeError::Wrong)
        | MfaError::Code(CodeError::Used)
        | MfaError::Code(CodeError::Expired)) => {
            errors.refused_at(a.lang, "code", e);
        }
        e @ (MfaError::Throttled { .. }
        | MfaError::AlreadyEnabled
        | MfaError::NotEnabled
        | MfaError::NoSetupInProgress
        | MfaError::Unavailable
        | MfaError::SendFailed(_)
        | MfaError::Code(CodeError::TooManyAttempts)) => {
            errors.refused(a.lang, e);
        }
        e => return Err(e.into()),
    }
    Ok(invalid(a, errors))
}

/// Back to the settings page with `errors` in the failed form's section.
fn invalid(a: &Authed, errors: Errors) -> Response {
    a.back(urls::Mfa, errors)
}

/// A change without a chosen factor.
fn need_factor(a: &Authed) -> Response {
    let mut errors = Errors::new();
    errors.field("factor", a.t("please-choose-a-method"));
    invalid(a, errors)
}

fn confirm_page(
    a: &Authed,
    action: impl Display,
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
            form method="post" action=(a.href(action)) {
                (csrf_field(a))
                (code_input(a.t("code"), errors))
                div.actions {
                    button.primary type="submit" { (a.t("continue")) }
                    a.button.secondary href=(a.href(urls::Mfa)) { (a.t("cancel")) }
                }
            }
        }
    }
}

/// `POST /mfa/totp`: a new secret; the answer shows its QR code and the secret once.
pub(crate) async fn start_totp(a: Authed) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a.portal().start_totp_enrolment(&a.principal).await {
        Ok(e) => Ok(a.page(
            a.t("mfa-setup-title"),
            confirm_page(
                &a,
                urls::MfaTotpConfirm,
                Some((e.qr_svg(), e.secret_base32(), e.otpauth_uri())),
                &Errors::new(),
            ),
        )),
        Err(e) => failed(&a, e),
    }
}

/// A factor is set up: its first recovery code (shown once), or back to the settings.
fn enabled(a: &Authed, done: FactorEnabled) -> Response {
    match done.recovery_code {
        Some(code) => {
            // Shown once, on this answer; the settings page it leads to says it is saved (the
            // flash is set after the page, which deletes the request's own flash).
            let page = a.page(
                a.t("recovery-code-title"),
                recovery_code_shown(a, code.expose(), urls::Mfa),
            );
            a.flash(Notice::Saved, None);
            page
        }
        None => a.redirect_with(Notice::Saved, urls::Mfa),
    }
}

/// A setup's code was refused: the code page again — for an authenticator app the answer itself,
/// with the app's QR code and key (`qr`, shown only on answers to a POST), for a phone back to
/// its code page; anything else as on the settings page.
fn confirm_failed(
    a: &Authed,
    action: impl Display,
    e: MfaError,
    qr: Option<&TotpEnrolment>,
) -> Result<Response, PageError> {
    match e {
        e @ (MfaError::Code(CodeError::Malformed)
        | MfaError::Code(CodeError::Wrong)
        | MfaError::Code(CodeError::Used)
        | MfaError::Code(CodeError::Expired)) => {
            let mut errors = Errors::new();
            errors.refused_at(a.lang, "code", e);
            if qr.is_none() {
                return Ok(a.back(action, errors));
            }
            Ok(a.page_with(
                StatusCode::BAD_REQUEST,
                a.t("mfa-setup-title"),
                confirm_page(
                    a,
                    action,
                    qr.map(|e| (e.qr_svg(), e.secret_base32(), e.otpauth_uri())),
                    &errors,
                ),
            ))
        }
        e => failed(a, e),
    }
}

/// `POST /mfa/totp/confirm`: the app's first code; the recovery code is shown once.
pub(crate) async fn confirm_totp(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a
        .portal()
        .confirm_totp(&a.principal, &SecretString::new(form.code.trim()))
        .await
    {
        Ok(done) => Ok(enabled(&a, done)),
        Err(e) => {
            // The same secret as before: the app that scanned it keeps matching.
            let pending = match &e {
                MfaError::Code(_) => a
                    .portal()
                    .pending_totp_enrolment(&a.principal)
                    .await
                    .ok()
                    .flatten(),
                _ => None,
            };
            confirm_failed(&a, urls::MfaTotpConfirm, e, pending.as_ref())
        }
    }
}

/// `POST /mfa/phone`: a code to the phone being set up.
pub(crate) async fn start_phone(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    let Ok(number) = PhoneNumber::parse(&form.phone) else {
        let mut errors = Errors::new();
        errors.field("phone", a.t("mfa-phone-invalid"));
        return Ok(invalid(&a, errors));
    };
    let channel = if form.channel == "voice" {
        PhoneChannel::Voice
    } else {
        PhoneChannel::Sms
    };
    match a
        .portal()
        .start_phone_enrolment(&a.principal, &number, channel)
        .await
    {
        Ok(()) => Ok(a.redirect(urls::MfaPhoneConfirm)),
        Err(e) => failed(&a, e),
    }
}

/// `GET /mfa/phone/confirm`.
pub(crate) async fn phone_code(a: Authed) -> Response {
    a.page(
        a.t("mfa-setup-title"),
        confirm_page(&a, urls::MfaPhoneConfirm, None, &a.errors()),
    )
}

/// `POST /mfa/phone/confirm`.
pub(crate) async fn confirm_phone(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a
        .portal()
        .confirm_phone(&a.principal, &SecretString::new(form.code.trim()))
        .await
    {
        Ok(done) => Ok(enabled(&a, done)),
        Err(e) => confirm_failed(&a, urls::MfaPhoneConfirm, e, None),
    }
}

/// `POST /mfa/presence-code`: a code to the MFA phone, to prove presence.
pub(crate) async fn presence_code(a: Authed) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a.portal().send_presence_code(&a.principal).await {
        Ok(()) => Ok(a.redirect_with(Notice::CodeSent, urls::Mfa)),
        Err(e) => failed(&a, e),
    }
}

/// `POST /mfa/remove`.
pub(crate) async fn remove(a: Authed, Form(form): Form<MfaForm>) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    let Some(factor) = form.factor() else {
        return Ok(need_factor(&a));
    };
    match a.portal().remove_mfa(&a.principal, &factor).await {
        Ok(()) => Ok(a.redirect_with(Notice::Saved, urls::Mfa)),
        Err(e) => failed(&a, e),
    }
}

/// `POST /mfa/recovery-code`: "Neuen Code generieren" (shown once).
pub(crate) async fn regenerate(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    let Some(factor) = form.factor() else {
        return Ok(need_factor(&a));
    };
    match a
        .portal()
        .regenerate_recovery_code(&a.principal, &factor)
        .await
    {
        Ok(code) => Ok(a.page(
            a.t("recovery-code-title"),
            recovery_code_shown(&a, code.expose(), urls::Mfa),
        )),
        Err(e) => failed(&a, e),
    }
}

/// `POST /mfa/recovery-channel`: "Wiederherstellungsmethode festlegen".
pub(crate) async fn recovery_channel(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    let to = form.to.trim();
    let channel = if form.kind == "phone" {
        PhoneNumber::parse(to).ok().map(RecoveryChannel::Phone)
    } else {
        EmailAddress::parse(to).ok().map(RecoveryChannel::Email)
    };
    let Some(channel) = channel else {
        let mut errors = Errors::new();
        errors.field("to", a.t("mfa-channel-invalid"));
        return Ok(invalid(&a, errors));
    };
    let Some(factor) = form.factor() else {
        return Ok(need_factor(&a));
    };
    match a
        .portal()
        .set_recovery_channel(&a.principal, &channel, &factor)
        .await
    {
        Ok(()) => Ok(a.redirect_with(Notice::CodeSent, urls::MfaRecoveryChannelConfirm)),
        Err(e) => failed(&a, e),
    }
}

/// How a recovery channel is shown: a phone masked, an address in full (it is the user's own).
fn shown(channel: &RecoveryChannel) -> String {
    match channel {
        RecoveryChannel::Phone(p) => p.masked(),
        RecoveryChannel::Email(e) => e.as_str().to_owned(),
    }
}

/// `GET /mfa/recovery-channel/confirm`: the code sent to the new recovery channel; the settings
/// page when none is waiting.
pub(crate) async fn recovery_channel_code(a: Authed) -> Response {
    let Some(pending) = a.principal.user().mfa().pending_recovery_channel.clone() else {
        return a.redirect(urls::Mfa);
    };
    let errors = a.errors();
    let to = shown(&pending.channel);
    a.page(
        a.t("mfa-channel-confirm-title"),
        html! {
            section.card.narrow {
                h1 { (a.t("mfa-channel-confirm-title")) }
                (flash_notice(&a))
                p { (a.t_with("mfa-channel-code-sent", [("to", to.into())])) }
                p.muted { (a.t("mfa-channel-old-stays")) }
                (errors.summary(a.lang))
                form method="post" action=(a.href(urls::MfaRecoveryChannelConfirm)) {
                    (csrf_field(&a))
                    (code_input(a.t("code"), &errors))
                    div.actions {
                        button.primary type="submit" { (a.t("continue")) }
                        a.button.secondary href=(a.href(urls::Mfa)) { (a.t("cancel")) }
                    }
                }
                form method="post" action=(a.href(urls::MfaRecoveryChannelResend)) {
                    (csrf_field(&a))
                    button.link type="submit" { (a.t("mfa-channel-resend")) }
                }
            }
        },
    )
}

/// `POST /mfa/recovery-channel/confirm`: the code; the channel takes over.
pub(crate) async fn confirm_recovery_channel(
    a: Authed,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a
        .portal()
        .confirm_recovery_channel(&a.principal, &SecretString::new(form.code.trim()))
        .await
    {
        Ok(()) => Ok(a.redirect_with(Notice::Saved, urls::Mfa)),
        Err(
            e @ (MfaError::Code(CodeError::Malformed)
            | MfaError::Code(CodeError::Wrong)
            | MfaError::Code(CodeError::Used)
            | MfaError::Code(CodeError::Expired)),
        ) => {
            let mut errors = Errors::new();
            errors.refused_at(a.lang, "code", e);
            Ok(a.back(urls::MfaRecoveryChannelConfirm, errors))
        }
        Err(e @ MfaError::Code(CodeError::TooManyAttempts)) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(urls::MfaRecoveryChannelConfirm, errors))
        }
        Err(e) => failed(&a, e),
    }
}

/// `POST /mfa/recovery-channel/resend`: "Code erneut senden".
pub(crate) async fn resend_recovery_channel_code(a: Authed) -> Result<Response, PageError> {
    a.limit(Bucket::Mfa)?;
    match a.portal().resend_recovery_channel_code(&a.principal).await {
        Ok(()) => Ok(a.redirect_with(Notice::CodeSent, urls::MfaRecoveryChannelConfirm)),
        Err(e) => failed(&a, e),
    }
}
