//! "Haben Sie Ihr Passwort vergessen?", the mailed link's "Ein neues Passwort erstellen" and
//! "Passwort geändert!".

use super::password_error;
use crate::error::ApiError;
use crate::ratelimit::Bucket;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{Errors, Input, csrf_field, new_password};
use crate::web::urls::{self, Notice, PasswordReset};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::ResetError;
use portal_core::values::EmailError;
use serde::Deserialize;

/// "Passwort vergessen".
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ForgotForm {
    email: String,
}

/// The new password.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ResetForm {
    password: String,
    password_confirmation: String,
}

fn forgot_form(ctx: &Ctx, email: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("forgot-heading")) }
            p { (ctx.t("forgot-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.href(urls::PasswordForgot)) {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(email).auto("username").errors(errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("forgot-send")) }
                    a.button.secondary href=(ctx.href(urls::Login)) { (ctx.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /password/forgot`.
pub(crate) async fn forgot_page(ctx: Ctx) -> Response {
    ctx.page(ctx.t("forgot-title"), forgot_form(&ctx, "", &ctx.errors()))
}

/// `POST /password/forgot`: always the same answer.
pub(crate) async fn forgot(ctx: Ctx, Form(form): Form<ForgotForm>) -> Result<Response, PageError> {
    ctx.limit(Bucket::Password)?;
    let email = form.email.trim();
    if email.is_empty() {
        let mut errors = Errors::new();
        errors.field("email", i18n::email(ctx.lang, EmailError::Empty));
        return Ok(ctx.back(urls::PasswordForgot, errors));
    }
    ctx.portal().forgot_password(email).await?;
    Ok(ctx.redirect_with(Notice::ResetSent, urls::Login))
}

fn reset_form(ctx: &Ctx, path: &PasswordReset, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("reset-title")) }
            p { (ctx.t("reset-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.href(path)) {
                (csrf_field(ctx))
                (new_password("password", ctx.t("new-password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-new-password"), errors))
                button.primary type="submit" { (ctx.t("reset-submit")) }
            }
        }
    }
}

/// The page of a link that is no good (unknown, expired or used), with the way to a new one.
fn invalid_link(ctx: &Ctx, e: ResetError) -> Response {
    let code = ApiError::from(e).code();
    let title = ctx.t("reset-invalid-link");
    ctx.page_with(
        code.status(),
        &title,
        html! {
            section.card.narrow {
                h1 { (title) }
                p role="alert" { (i18n::code(ctx.lang, code)) }
                p { a.button.primary href=(ctx.href(urls::PasswordForgot)) { (ctx.t("reset-ask-new-link")) } }
            }
        },
    )
}

/// `GET /password/reset/{token}`: the form, when the link is still good (it is used only by
/// the POST); an unknown, expired or used link says so at once, not after the form is filled.
pub(crate) async fn page(ctx: Ctx, path: PasswordReset) -> Result<Response, PageError> {
    match ctx.portal().check_reset_link(&path.token).await {
        Ok(()) => Ok(ctx.page(ctx.t("reset-title"), reset_form(&ctx, &path, &ctx.errors()))),
        Err(e @ (ResetError::InvalidLink | ResetError::Expired | ResetError::Used)) => {
            Ok(invalid_link(&ctx, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /password/reset/{token}`.
pub(crate) async fn submit(
    ctx: Ctx,
    path: PasswordReset,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    ctx.limit(Bucket::Password)?;
    let result = ctx
        .portal()
        .reset_password(
            &path.token,
            &SecretString::new(&form.password),
            &SecretString::new(&form.password_confirmation),
        )
        .await;
    match result {
        Ok(user) => {
            ctx.add_cookie(crate::known_browser::issue(&ctx.state, user));
            Ok(ctx.redirect(urls::PasswordChanged))
        }
        Err(ResetError::Password(e)) => {
            let mut errors = Errors::new();
            password_error(ctx.lang, &e, &mut errors);
            Ok(ctx.back(&path, errors))
        }
        Err(e @ (ResetError::InvalidLink | ResetError::Expired | ResetError::Used)) => {
            Ok(invalid_link(&ctx, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /password/changed`: "Passwort geändert!".
pub(crate) async fn changed(ctx: Ctx) -> Response {
    let title = ctx.t("reset-changed-title");
    ctx.page(
        &title,
        html! {
            section.card.narrow.center {
                p.check aria-hidden="true" { "✔" }
                h1 { (title) }
                p { (ctx.t("reset-changed-text")) }
                p { a.button.primary href=(ctx.href(urls::Login)) { (ctx.t("continue")) } }
            }
        },
    )
}
