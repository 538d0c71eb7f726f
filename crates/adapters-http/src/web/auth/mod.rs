//! Getting in (manual chapter 2 and 3.6), one screen per module: logging in and out
//! ([`login`]), the second step of a login ([`mfa_step`]), registering with the mailed code
//! ([`register`]), the forgotten password ([`reset`]) and the invitation page ([`invitation`]).
//! Here: what several of them (and the account and MFA pages) share.

pub(crate) mod invitation;
pub(crate) mod login;
pub(crate) mod mfa_step;
pub(crate) mod register;
pub(crate) mod reset;

use super::ctx::{Ctx, Shell, safe_next};
use super::i18n;
use super::layout::{Errors, Input};
use super::urls;
use crate::api::session_cookie;
use crate::cookies::CookieName;
use maud::{Markup, html};
use portal_core::mfa::MfaMethod;
use portal_core::password::PasswordError;
use portal_core::secret::SecretString;
use portal_core::service::{IssuedSession, SecondFactor};
use portal_core::values::{EmailAddress, Language, PersonName};
use std::fmt::Display;

/// Where to go after logging in: the form's `next`, else the page's `?next=`, if local; else
/// the home page.
pub(crate) fn next_of(ctx: &Ctx, form_next: Option<&str>) -> String {
    form_next
        .filter(|n| !n.is_empty())
        .or_else(|| ctx.query_value("next"))
        .and_then(safe_next)
        .unwrap_or_else(|| urls::Home.to_string())
}

/// A session started: its cookie, the pending step's and the pre-session CSRF cookie cleared
/// (a new login gets a new pre-session token).
pub(crate) fn started(ctx: &Ctx, issued: &IssuedSession) {
    ctx.clear_cookie(CookieName::PendingMfa);
    ctx.clear_cookie(CookieName::Csrf);
    ctx.add_cookie(session_cookie(&ctx.state, issued));
    ctx.add_cookie(crate::known_browser::issue(&ctx.state, issued.user_id));
}

/// The factor a form names (`factor` = `totp`, `phone` or `recovery`) with its `code`.
pub(crate) fn factor_of(factor: &str, code: &str) -> Option<SecondFactor> {
    let code = SecretString::new(code.trim());
    match factor {
        "totp" => Some(SecondFactor::Totp(code)),
        "phone" => Some(SecondFactor::PhoneCode(code)),
        "recovery" => Some(SecondFactor::RecoveryCode(code)),
        _ => None,
    }
}

/// The choice of factor and the code field (second step, step-up, MFA changes).
pub(crate) fn factor_fields(shell: &Shell, methods: &[MfaMethod], errors: &Errors) -> Markup {
    factor_fields_in(shell, methods, errors, "")
}

/// [`factor_fields`] with element ids of their own (`prefix`), for pages with several such forms.
pub(crate) fn factor_fields_in(
    shell: &Shell,
    methods: &[MfaMethod],
    errors: &Errors,
    prefix: &str,
) -> Markup {
    let totp = methods.contains(&MfaMethod::Totp);
    let phone = methods.contains(&MfaMethod::Sms) || methods.contains(&MfaMethod::Voice);
    let recovery = methods.contains(&MfaMethod::RecoveryCode);
    let first = if totp {
        "totp"
    } else if phone {
        "phone"
    } else {
        "recovery"
    };
    let choice = |value: &'static str, label: i18n::Text| {
        html! {
            label.choice {
                input type="radio" name="factor" value=(value)
                    checked[errors.kept("factor").map_or(value == first, |k| k == value)] required;
                " " (label)
            }
        }
    };
    html! {
        fieldset {
            legend { (shell.t("confirm-your-identity")) }
            @if totp { (choice("totp", shell.t("factor-totp"))) }
            @if phone { (choice("phone", shell.t("factor-phone"))) }
            @if recovery { (choice("recovery", i18n::method(shell.lang, MfaMethod::RecoveryCode))) }
            @if let Some(e) = errors.get("factor") { p.field-error { (e) } }
            (Input::new("code", shell.t("code")).id_prefix(prefix).auto("one-time-code").errors(errors)
                .hint(shell.t("factor-code-hint")))
        }
    }
}

/// The recovery code, shown once ("!!! Wichtig !!!"), then on to `next`.
pub(crate) fn recovery_code_shown(shell: &Shell, code: &str, next: impl Display) -> Markup {
    html! {
        section.card.narrow {
            h1 { (shell.t("recovery-code-title")) }
            div.alert.warn role="alert" {
                p { strong { (shell.t("recovery-code-important")) } }
                p { (shell.t("recovery-code-keep-safe")) }
            }
            p.secret { code #recovery-code { (code) } }
            p { a.button.primary href=(shell.href(next)) { (shell.t("continue")) } }
        }
    }
}

/// Parses an e-mail field into `errors`.
pub(crate) fn parse_email(
    lang: Language,
    raw: &str,
    field: &'static str,
    errors: &mut Errors,
) -> Option<EmailAddress> {
    EmailAddress::parse(raw)
        .map_err(|e| errors.field(field, i18n::email(lang, e)))
        .ok()
}

/// Parses a name field into `errors`.
pub(crate) fn parse_name(
    lang: Language,
    raw: &str,
    field: &'static str,
    errors: &mut Errors,
) -> Option<PersonName> {
    PersonName::parse(raw)
        .map_err(|e| errors.field(field, i18n::name(lang, e)))
        .ok()
}

/// Puts a password-policy error next to the right field.
pub(crate) fn password_error(lang: Language, e: &PasswordError, errors: &mut Errors) {
    let field = if matches!(e, PasswordError::ConfirmationMismatch) {
        "password_confirmation"
    } else {
        "password"
    };
    errors.field(field, i18n::password(lang, e));
}
