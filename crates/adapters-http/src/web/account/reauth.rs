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
use crate::web::urls;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, MfaError};
use serde::Deserialize;

/// The password, the factor and where to go back to.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ReauthForm {
    password: String,
    factor: String,
    code: String,
    next: String,
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
        Ok(issued) => {
            a.add_cookie(session_cookie(&a.state, &issued));
            return Ok(a.redirect(next));
        }
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
