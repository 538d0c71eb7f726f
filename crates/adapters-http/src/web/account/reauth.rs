//! "Passwort bestätigen": the step-up before a sensitive change (password, e-mail address,
//! second factors): the password again and, once one is set up, a second factor. The session
//! token is rotated; then back to where the change was asked for.

use crate::api::session_cookie;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use crate::web::auth::{factor_fields, factor_of};
use crate::web::ctx::{Authed, safe_next};
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{Errors, csrf_field, current_password, hidden};
use crate::web::passkeys;
use crate::web::urls;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, IssuedSession, MfaError};
use serde::Deserialize;

/// The password, the factor and where to go back to.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ReauthForm {
    password: String,
    factor: String,
    code: String,
    next: String,
    /// `factor=passkey`: the ceremony and the browser's answer (filled in by the script).
    challenge_id: String,
    credential: String,
}

fn next_or_home(raw: Option<&str>) -> String {
    raw.and_then(safe_next)
        .unwrap_or_else(|| urls::Home.to_string())
}

fn reauth_form(a: &Authed, next: &str, errors: &Errors) -> Markup {
    let mfa = a.principal.user().mfa();
    html! {
        section.card.narrow {
            h1 { (a.t("reauth-title")) }
            p { (a.t("reauth-intro")) }
            (errors.summary(a.lang))
            form method="post" action=(a.href(urls::Reauth)) {
                (csrf_field(a))
                (hidden("next", next))
                (current_password("password", a.t("password"), errors))
                @if mfa.is_enabled() {
                    (factor_fields(a, &mfa.methods(), errors))
                }
                button.primary type="submit" { (a.t("reauth-confirm")) }
            }
            @if !mfa.passkeys.is_empty() && a.portal().passkeys_available() {
                (passkeys::reauth(a, next))
            }
        }
    }
}

/// `GET /reauth?next=`.
pub(crate) async fn page(a: Authed) -> Response {
    let next = next_or_home(a.query_value("next"));
    a.page(a.t("reauth-title"), reauth_form(&a, &next, &a.errors()))
}

/// `POST /reauth`.
pub(crate) async fn submit(a: Authed, Form(form): Form<ReauthForm>) -> Result<Response, PageError> {
    a.limit(Bucket::Login)?;
    let next = next_or_home(Some(&form.next));
    if form.factor == "passkey" {
        return with_passkey(&a, &form, next).await;
    }
    let factor = if a.principal.user().mfa().is_enabled() {
        factor_of(&form.factor, &form.code)
    } else {
        None
    };
    let result = a
        .portal()
        .reauthenticate(
            &a.principal,
            &SecretString::new(&form.password),
            factor.as_ref(),
            a.client.info(),
        )
        .await;
    let mut errors = Errors::new();
    match result {
        Ok(issued) => return Ok(confirmed(&a, &issued, next)),
        Err(MfaError::WrongPassword) => {
            errors.field("password", i18n::code(a.lang, ErrorCode::WrongPassword));
        }
        Err(MfaError::NoSuchFactor) => {
            errors.field("factor", i18n::code(a.lang, ErrorCode::MfaRequired));
        }
        Err(
            e @ (MfaError::Code(CodeError::Malformed)
            | MfaError::Code(CodeError::Wrong)
            | MfaError::Code(CodeError::Used)
            | MfaError::Code(CodeError::Expired)),
        ) => {
            errors.refused_at(a.lang, "code", e);
        }
        Err(e @ MfaError::Throttled { .. }) => {
            errors.refused(a.lang, e);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(a.back(urls::with_query(urls::Reauth, &[("next", &next)]), errors))
}

/// Confirmed: the rotated session's cookie (and the known-browser cookie, as after every
/// sign-in), then on to `next`.
fn confirmed(a: &Authed, issued: &IssuedSession, next: String) -> Response {
    a.add_cookie(session_cookie(&a.state, issued));
    a.add_cookie(crate::known_browser::issue(&a.state, issued.user_id));
    a.redirect(next)
}

/// `factor=passkey`: a passkey alone confirms (user verification: it stands for password and
/// second factor), so a user who signs in with passkeys only can confirm too.
async fn with_passkey(a: &Authed, form: &ReauthForm, next: String) -> Result<Response, PageError> {
    let result = match passkeys::answer(&form.challenge_id, &form.credential) {
        Some((challenge_id, response)) => {
            a.portal()
                .reauthenticate_with_passkey(&a.principal, challenge_id, &response, a.client.info())
                .await
        }
        None => Err(passkeys::malformed()),
    };
    let mut errors = Errors::new();
    match result {
        Ok(issued) => return Ok(confirmed(a, &issued, next)),
        Err(e) => passkeys::refused(a.lang, e, &mut errors)?,
    }
    Ok(a.back(urls::with_query(urls::Reauth, &[("next", &next)]), errors))
}
