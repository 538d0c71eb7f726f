//! "Erstellen Sie Ihr Konto" and the mailed code ("Code", "Code erneut senden"). The
//! registration in progress is the `portal-ticket` cookie: its ticket and the address the code
//! went to (shown on the code page).

use super::{parse_email, parse_name, password_error, started};
use crate::cookies::CookieName;
use crate::ratelimit::Bucket;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::layout::{Errors, Input, code_input, csrf_field, flash_notice, new_password};
use crate::web::urls::{self, Notice};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::{
    CodeError, Register, RegisterError, RegistrationTicket, ResendError, VerifyError,
};
use portal_core::values::EmailAddress;
use serde::Deserialize;

/// The registration form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RegisterForm {
    email: String,
    first_name: String,
    last_name: String,
    password: String,
    password_confirmation: String,
}

/// The code form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CodeForm {
    code: String,
}

fn register_form(ctx: &Ctx, v: &RegisterForm, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("create-your-account")) }
            p { (ctx.t("register-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.href(urls::Register)) {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(v.email.trim()).auto("email").errors(errors))
                (Input::new("first_name", ctx.t("first-name")).value(&v.first_name).auto("given-name").errors(errors))
                (Input::new("last_name", ctx.t("last-name")).value(&v.last_name).auto("family-name").errors(errors))
                (new_password("password", ctx.t("password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-password"), errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("register")) }
                    a.button.secondary href=(ctx.href(urls::Login)) { (ctx.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /register`.
pub(crate) async fn page(ctx: Ctx) -> Response {
    if ctx.principal.is_some() {
        return ctx.redirect(urls::Home);
    }
    ctx.page(
        ctx.t("create-your-account"),
        register_form(&ctx, &RegisterForm::default(), &ctx.errors()),
    )
}

/// `POST /register`: the code is mailed; on to the code page.
pub(crate) async fn submit(ctx: Ctx, Form(v): Form<RegisterForm>) -> Result<Response, PageError> {
    ctx.limit(Bucket::Registration)?;
    let lang = ctx.lang;
    let mut errors = Errors::new();
    let email = parse_email(lang, v.email.trim(), "email", &mut errors);
    let first = parse_name(lang, &v.first_name, "first_name", &mut errors);
    let last = parse_name(lang, &v.last_name, "last_name", &mut errors);
    let again = |errors: Errors| ctx.back(urls::Register, errors);
    let (Some(email), Some(first_name), Some(last_name)) = (email, first, last) else {
        return Ok(again(errors));
    };
    let result = ctx
        .portal()
        .register(Register {
            email: email.clone(),
            first_name,
            last_name,
            password: SecretString::new(&v.password),
            password_confirmation: SecretString::new(&v.password_confirmation),
            language: lang,
        })
        .await;
    match result {
        Ok(ticket) => {
            remember_ticket(&ctx, &ticket, &email);
            Ok(ctx.redirect(urls::RegisterCode))
        }
        Err(RegisterError::Password(e)) => {
            password_error(lang, &e, &mut errors);
            Ok(again(errors))
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the registration in progress in its cookie (also for the invitation page).
pub(crate) fn remember_ticket(ctx: &Ctx, ticket: &RegistrationTicket, email: &EmailAddress) {
    let value = format!(
        "{}.{}",
        ticket.ticket.expose(),
        URL_SAFE_NO_PAD.encode(email.as_str())
    );
    let ttl = ctx.portal().config().pending_registration_ttl.num_seconds();
    ctx.set_cookie(CookieName::Ticket, &value, Some(ttl));
}

/// The registration in progress: its ticket and address.
fn ticket(ctx: &Ctx) -> Option<(String, String)> {
    let raw = ctx.cookie_value(CookieName::Ticket)?;
    let (ticket, email) = raw.split_once('.')?;
    let email = String::from_utf8(URL_SAFE_NO_PAD.decode(email).ok()?).ok()?;
    Some((ticket.to_owned(), email))
}

fn code_form(ctx: &Ctx, email: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("code")) }
            (flash_notice(ctx))
            (errors.summary(ctx.lang))
            p { (ctx.t("register-code-intro")) " " strong { (email) } }
            form method="post" action=(ctx.href(urls::RegisterCode)) {
                (csrf_field(ctx))
                (code_input(ctx.t("verification-code"), errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("continue")) }
                    a.button.secondary href=(ctx.href(urls::Login)) { (ctx.t("cancel")) }
                }
            }
            form.inline method="post" action=(ctx.href(urls::RegisterCodeResend)) {
                (csrf_field(ctx))
                (ctx.t("register-code-not-received")) " "
                button.link type="submit" { (ctx.t("register-code-resend")) }
            }
        }
    }
}

/// `GET /register/code`.
pub(crate) async fn code_page(ctx: Ctx) -> Response {
    let Some((_, email)) = ticket(&ctx) else {
        return ctx.redirect(urls::Register);
    };
    ctx.page(ctx.t("code"), code_form(&ctx, &email, &ctx.errors()))
}

/// `POST /register/code`: the account exists from now on, and a session starts.
pub(crate) async fn verify(ctx: Ctx, Form(form): Form<CodeForm>) -> Result<Response, PageError> {
    ctx.limit(Bucket::Codes)?;
    let Some((ticket, _)) = ticket(&ctx) else {
        return Ok(ctx.redirect(urls::Register));
    };
    let result = ctx
        .portal()
        .verify_registration(&ticket, form.code.trim(), ctx.client.info())
        .await;
    let mut errors = Errors::new();
    match result {
        Ok(issued) => {
            started(&ctx, &issued);
            ctx.clear_cookie(CookieName::Ticket);
            return Ok(ctx.redirect(urls::Home));
        }
        Err(
            e @ (VerifyError::Code(CodeError::Malformed)
            | VerifyError::Code(CodeError::Wrong)
            | VerifyError::Code(CodeError::Expired)
            | VerifyError::Code(CodeError::TooManyAttempts)),
        ) => {
            errors.refused_at(ctx.lang, "code", e);
        }
        Err(
            e @ (VerifyError::InvalidTicket
            | VerifyError::InvitationInvalid
            | VerifyError::AlreadyRegistered),
        ) => {
            ctx.clear_cookie(CookieName::Ticket);
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ctx.back(urls::RegisterCode, errors))
}

/// `POST /register/code/resend`: "Code erneut senden".
pub(crate) async fn resend(ctx: Ctx) -> Result<Response, PageError> {
    ctx.limit(Bucket::Codes)?;
    let Some((ticket, email)) = ticket(&ctx) else {
        return Ok(ctx.redirect(urls::Register));
    };
    match ctx.portal().resend_code(&ticket).await {
        Ok(t) => {
            if let Ok(address) = EmailAddress::parse(&email) {
                remember_ticket(&ctx, &t, &address);
            }
            Ok(ctx.redirect_with(Notice::CodeResent, urls::RegisterCode))
        }
        Err(e @ ResendError::TooSoon { .. }) => {
            let mut errors = Errors::new();
            errors.refused(ctx.lang, e);
            Ok(ctx.back(urls::RegisterCode, errors))
        }
        Err(e @ (ResendError::InvalidTicket | ResendError::TooMany)) => {
            ctx.clear_cookie(CookieName::Ticket);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
