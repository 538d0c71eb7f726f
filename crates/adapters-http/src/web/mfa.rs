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
use portal_core::service::{CodeError, FactorEnabled, MfaError};
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
    let mfa = a.principal.user().mfa();
    let methods = mfa.methods();
    let enabled = mfa.is_enabled();
    html! {
        h1 { (a.t("2-Faktor-Authentifizierung", "Two-factor authentication")) }
        (query_notice(a))
        section.card {
            h2 { (a.t("Status", "Status")) }
            @if enabled {
                p { (a.t("Die Multi-Faktor-Authentifizierung ist eingerichtet. Bei jeder Anmeldung wird ein zweiter Faktor abgefragt.", "Multi-factor authentication is set up. Every login asks for a second factor.")) }
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
                    Some(RecoveryChannel::Phone(p)) => p { (a.t("Wiederherstellung per SMS an", "Recovery by text message to")) " " (p.masked()) },
                    Some(RecoveryChannel::Email(e)) => p { (a.t("Wiederherstellung per E-Mail an", "Recovery by e-mail to")) " " (e.as_str()) },
                    None => p { (a.t("Es ist keine Wiederherstellungsmethode festgelegt.", "No recovery method is set.")) },
                }
            } @else {
                p { (a.t("Die Multi-Faktor-Authentifizierung ist nicht eingerichtet.", "Multi-factor authentication is not set up.")) }
            }
        }
        @if mfa.totp.is_none() {
            section.card {
                h2 { (a.t("Authentifizierungs-App", "Authenticator app")) }
                p { (a.t(
                    "Empfehlenswert ist eine Bestätigung über eine Authentifizierungs-App (z. B. Authy, Google oder Microsoft Authenticator). Sie scannen einen QR-Code und tragen den angezeigten Code ein.",
                    "We recommend confirming with an authenticator app (e.g. Authy, Google or Microsoft Authenticator). You scan a QR code and enter the code it shows."
                )) }
                (err(Section::Totp).summary(a.lang))
                form method="post" action="/mfa/totp" {
                    (csrf_field(a))
                    button.primary type="submit" { (a.t("Einrichten Multi-Faktor-Authentifizierung", "Set up multi-factor authentication")) }
                }
            }
        }
        @if mfa.phone.is_none() {
            section.card {
                h2 { (a.t("Identität auf andere Art bestätigen", "Confirm your identity another way")) }
                p { (a.t("Alternativ erhalten Sie den Code per SMS oder Anruf.", "Alternatively you get the code by text message or phone call.")) }
                (err(Section::Phone).summary(a.lang))
                form method="post" action="/mfa/phone" {
                    (csrf_field(a))
                    (Input::new("phone", a.t("Telefonnummer", "Phone number")).kind("tel").auto("tel").errors(err(Section::Phone))
                        .hint(a.t("Internationale Schreibweise, z. B. +49 69 1234567", "International form, e.g. +49 69 1234567")))
                    fieldset {
                        legend { (a.t("Code erhalten per", "Receive the code by")) }
                        label.choice { input type="radio" name="channel" value="sms" checked; " " (a.t("SMS", "Text message")) }
                        label.choice { input type="radio" name="channel" value="voice"; " " (a.t("Anruf", "Phone call")) }
                    }
                    button.primary type="submit" { (a.t("Code senden", "Send code")) }
                }
            }
        }
        @if enabled {
            @if mfa.phone.is_some() {
                section.card {
                    h2 { (a.t("Code an Ihr Telefon", "Code to your phone")) }
                    p { (a.t("Für die Änderungen unten können Sie sich einen Code an Ihr Telefon senden lassen.", "For the changes below you can have a code sent to your phone.")) }
                    form method="post" action="/mfa/presence-code" {
                        (csrf_field(a))
                        button.secondary type="submit" { (a.t("Code senden", "Send code")) }
                    }
                }
            }
            section.card {
                h2 { (a.t("Wiederherstellungsmethode festlegen", "Set the recovery method")) }
                p { (a.t(
                    "Verwenden Sie eine abweichende Telefonnummer oder eine E-Mail-Adresse, an die ein neuer Wiederherstellungscode gesendet werden kann.",
                    "Use a different phone number or an e-mail address where a new recovery code can be sent."
                )) }
                (err(Section::Channel).summary(a.lang))
                form method="post" action="/mfa/recovery-channel" {
                    (csrf_field(a))
                    fieldset {
                        legend { (a.t("Art", "Kind")) }
                        label.choice { input type="radio" name="kind" value="email" checked; " " (a.t("E-Mail-Adresse", "E-mail address")) }
                        label.choice { input type="radio" name="kind" value="phone"; " " (a.t("Telefonnummer (SMS)", "Phone number (text message)")) }
                    }
                    (Input::new("to", a.t("E-Mail-Adresse oder Telefonnummer", "E-mail address or phone number")).errors(err(Section::Channel)))
                    (factor_fields_in(a, &methods, err(Section::Channel), "channel-"))
                    button.primary type="submit" { (a.t("Speichern", "Save")) }
                }
            }
            section.card {
                h2 { (a.t("Haben Sie Ihren Wiederherstellungscode vergessen?", "Forgot your recovery code?")) }
                p { (a.t("Ein neuer Code ersetzt den bisherigen.", "A new code replaces the old one.")) }
                (err(Section::Regenerate).summary(a.lang))
                form method="post" action="/mfa/recovery-code" {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Regenerate), "regenerate-"))
                    button.primary type="submit" { (a.t("Neuen Code generieren.", "Generate a new code.")) }
                }
            }
            section.card.danger {
                h2 { (a.t("Entfernen", "Remove")) }
                p { (a.t("Entfernt alle zweiten Faktoren und den Wiederherstellungscode. Alle anderen Sitzungen werden beendet.", "Removes every second factor and the recovery code. Every other session ends.")) }
                (err(Section::Remove).summary(a.lang))
                form method="post" action="/mfa/remove" {
                    (csrf_field(a))
                    (factor_fields_in(a, &methods, err(Section::Remove), "remove-"))
                    div.actions {
                        button.danger type="submit" { (a.t("Entfernen", "Remove")) }
                        a.button.secondary href="/home" { (a.t("Abbrechen", "Cancel")) }
                    }
                }
            }
        }
    }
}

/// `GET /mfa`.
pub(crate) async fn settings(a: Authed) -> Response {
    a.page(
        a.t("2-Faktor-Authentifizierung", "Two-factor authentication"),
        settings_page(&a, None),
    )
}

/// The settings page again with an error in one section, or the step-up page, or the error
/// page for what a page cannot fix.
fn failed(a: &Authed, section: Section, e: MfaError) -> Response {
    let mut errors = Errors::new();
    let status = match e {
        MfaError::ReauthRequired => return reauth_redirect(a, "/mfa"),
        MfaError::SamePhone => {
            errors.field("to", i18n::code(a.lang, crate::error::ErrorCode::SamePhone));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        MfaError::NoSuchFactor => {
            errors.field(
                "factor",
                i18n::code(a.lang, crate::error::ErrorCode::NoSuchFactor),
            );
            StatusCode::BAD_REQUEST
        }
        e @ (MfaError::Code(CodeError::Malformed)
        | MfaError::Code(CodeError::Wrong)
        | MfaError::Code(CodeError::Expired)) => {
            errors.field("code", i18n::code(a.lang, ApiError::from(e).code()));
            StatusCode::BAD_REQUEST
        }
        e @ (MfaError::Throttled { .. }
        | MfaError::AlreadyEnabled
        | MfaError::NotEnabled
        | MfaError::NoSetupInProgress
        | MfaError::Unavailable
        | MfaError::SendFailed(_)
        | MfaError::Code(CodeError::TooManyAttempts)) => {
            let code = ApiError::from(e).code();
            errors.general(i18n::code(a.lang, code));
            code.status()
        }
        e => return a.fail(e),
    };
    a.page_with(
        status,
        a.t("2-Faktor-Authentifizierung", "Two-factor authentication"),
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
            h1 { (a.t("Multi-Faktor-Authentifizierung einrichten", "Set up multi-factor authentication")) }
            @if let Some((svg, secret, uri)) = qr {
                p { (a.t(
                    "Scannen Sie den QR-Code mit Ihrer Authentifizierungs-App und tragen Sie den nun angezeigten Code ein.",
                    "Scan the QR code with your authenticator app and enter the code it now shows."
                )) }
                figure.qr {
                    // The core draws the QR code as plain SVG paths: no scripts, no styles.
                    (PreEscaped(svg))
                    figcaption { (a.t("QR-Code für Ihre Authentifizierungs-App", "QR code for your authenticator app")) }
                }
                p { (a.t("Oder geben Sie diesen Schlüssel in der App ein:", "Or type this key into the app:")) }
                p.secret { code #totp-secret { (secret) } }
                p.muted.small { a href=(uri) { (a.t("In der App öffnen", "Open in the app")) } }
            } @else {
                p { (a.t("Geben Sie den Code ein, den wir gesendet haben.", "Enter the code we have sent.")) }
            }
            (errors.summary(a.lang))
            form method="post" action=(action) {
                (csrf_field(a))
                (code_input(a.t("Code", "Code"), errors))
                div.actions {
                    button.primary type="submit" { (a.t("Weiter", "Continue")) }
                    a.button.secondary href="/mfa" { (a.t("Abbrechen", "Cancel")) }
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
    match a.portal().start_totp_enrolment(&a.principal).await {
        Ok(e) => a.page(
            a.t(
                "Multi-Faktor-Authentifizierung einrichten",
                "Set up multi-factor authentication",
            ),
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
            a.t("Ihr Wiederherstellungscode", "Your recovery code"),
            recovery_code_shown(a, code.expose(), "/mfa?notice=saved"),
        ),
        None => a.redirect("/mfa?notice=saved"),
    }
}

fn confirm_failed(a: &Authed, action: &str, section: Section, e: MfaError) -> Response {
    match e {
        e @ (MfaError::Code(CodeError::Malformed)
        | MfaError::Code(CodeError::Wrong)
        | MfaError::Code(CodeError::Expired)) => {
            let mut errors = Errors::new();
            errors.field("code", i18n::code(a.lang, ApiError::from(e).code()));
            a.page_with(
                StatusCode::BAD_REQUEST,
                a.t(
                    "Multi-Faktor-Authentifizierung einrichten",
                    "Set up multi-factor authentication",
                ),
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
        .confirm_totp(&a.principal, &SecretString::new(form.get("code").trim()))
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
        errors.field(
            "phone",
            a.t(
                "Bitte geben Sie die Nummer in internationaler Schreibweise ein (+49 …).",
                "Please enter the number in international form (+49 …).",
            ),
        );
        return a.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            a.t("2-Faktor-Authentifizierung", "Two-factor authentication"),
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
        .start_phone_enrolment(&a.principal, &number, channel)
        .await
    {
        Ok(()) => a.redirect("/mfa/phone/confirm"),
        Err(e) => failed(&a, Section::Phone, e),
    }
}

/// `GET /mfa/phone/confirm`.
pub(crate) async fn phone_code(a: Authed) -> Response {
    a.page(
        a.t(
            "Multi-Faktor-Authentifizierung einrichten",
            "Set up multi-factor authentication",
        ),
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
        .confirm_phone(&a.principal, &SecretString::new(form.get("code").trim()))
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
    match a.portal().send_presence_code(&a.principal).await {
        Ok(()) => a.redirect("/mfa?notice=code-sent"),
        Err(e) => failed(&a, Section::Remove, e),
    }
}

fn need_factor(a: &Authed, section: Section) -> Response {
    let mut errors = Errors::new();
    errors.field(
        "factor",
        a.t("Bitte wählen Sie ein Verfahren.", "Please choose a method."),
    );
    a.page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        a.t("2-Faktor-Authentifizierung", "Two-factor authentication"),
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
    match a.portal().remove_mfa(&a.principal, &factor).await {
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
    match a
        .portal()
        .regenerate_recovery_code(&a.principal, &factor)
        .await
    {
        Ok(code) => a.page(
            a.t("Ihr Wiederherstellungscode", "Your recovery code"),
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
        errors.field(
            "to",
            a.t(
                "Bitte geben Sie eine gültige E-Mail-Adresse oder Telefonnummer (+49 …) ein.",
                "Please enter a valid e-mail address or phone number (+49 …).",
            ),
        );
        return a.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            a.t("2-Faktor-Authentifizierung", "Two-factor authentication"),
            settings_page(&a, Some((Section::Channel, &errors))),
        );
    };
    let Some(factor) = factor_of(&form) else {
        return need_factor(&a, Section::Channel);
    };
    match a
        .portal()
        .set_recovery_channel(&a.principal, &channel, &factor)
        .await
    {
        Ok(()) => a.redirect("/mfa?notice=saved"),
        Err(e) => failed(&a, Section::Channel, e),
    }
}
