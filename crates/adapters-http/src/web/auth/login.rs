//! "Anmelden" and "Abmelden".

use super::mfa_step::{MfaQuery, PHONE_STEP, method_key};
use super::{next_of, started};
use crate::api::auth::seconds_until;
use crate::cookies::CookieName;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{Errors, Input, csrf_field, current_password, flash_notice, hidden};
use crate::web::urls::{self, Notice};
use axum::http::HeaderValue;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::mfa::MfaMethod;
use portal_core::secret::SecretString;
use portal_core::service::{Login, LoginError, LoginOutcome, Presented};
use serde::Deserialize;

/// The login form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    next: String,
}

fn login_form(ctx: &Ctx, email: &str, next: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("login-title")) }
            (flash_notice(ctx))
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.href(urls::Login)) {
                (csrf_field(ctx))
                (hidden("next", next))
                (Input::new("email", ctx.t("email")).kind("email").value(email).auto("username webauthn").errors(errors))
                (current_password("password", ctx.t("password"), errors))
                button.primary type="submit" { (ctx.t("login-title")) }
            }
            @if ctx.portal().passkeys_available() {
                (crate::web::passkeys::sign_in(ctx, next))
            }
            p { a href=(ctx.href(urls::PasswordForgot)) { (ctx.t("login-forgot-link")) } }
            p { (ctx.t("login-new-user")) " " a href=(ctx.href(urls::Register)) { (ctx.t("login-register-link")) } }
        }
    }
}

/// `GET /login`.
pub(crate) async fn page(ctx: Ctx) -> Response {
    let next = next_of(&ctx, None);
    // `reauth`: a sign-in at an application asked for a fresh login (OIDC prompt=login,
    // max_age, or a second factor the session lacks), so the form shows despite the session.
    if ctx.principal.is_some() && ctx.query_value("reauth").is_none() {
        return ctx.redirect(next);
    }
    let hint = ctx.query_value("login_hint").unwrap_or_default().to_owned();
    ctx.page(
        ctx.t("login-title"),
        login_form(&ctx, &hint, &next, &ctx.errors()),
    )
}

/// `POST /login`: in, or on to the second step; a session the browser still had ends.
pub(crate) async fn submit(ctx: Ctx, Form(form): Form<LoginForm>) -> Result<Response, PageError> {
    ctx.limit(Bucket::Login)?;
    let next = next_of(&ctx, Some(&form.next));
    let email = form.email.trim();
    let cmd = Login {
        email: email.to_owned(),
        password: SecretString::new(&form.password),
        client: ctx.client.info(),
    };
    let presented = Presented {
        session: ctx.cookie_value(CookieName::Session),
        remembered_device: ctx.cookie_value(CookieName::Device),
        known_browser: crate::known_browser::read(&ctx.state, &ctx.headers),
    };
    let outcome = ctx.portal().login_presenting(cmd, presented).await;
    let mut errors = Errors::new();
    match outcome {
        Ok(LoginOutcome::Authenticated(issued)) => {
            started(&ctx, &issued);
            return Ok(ctx.redirect(next));
        }
        Ok(LoginOutcome::MfaRequired(pending)) => {
            ctx.clear_cookie(CookieName::Session);
            ctx.set_cookie(
                CookieName::PendingMfa,
                pending.token.expose(),
                Some(seconds_until(&ctx.state, pending.expires_at)),
            );
            let methods: Vec<&str> = pending.methods.iter().map(|m| method_key(*m)).collect();
            let mut query = MfaQuery {
                methods: methods.join(","),
                next,
                step: String::new(),
            };
            // Without an app, the phone is the step: its code goes out now, and the page is the
            // phone's. Should sending fail, the page offers to send it (and says why there).
            let by_phone = pending
                .methods
                .iter()
                .any(|m| matches!(m, MfaMethod::Sms | MfaMethod::Voice));
            if by_phone && !pending.methods.contains(&MfaMethod::Totp) {
                match ctx
                    .portal()
                    .send_login_phone_code(pending.token.expose())
                    .await
                {
                    Ok(()) => {
                        query.step = PHONE_STEP.to_owned();
                        return Ok(ctx.redirect_with(
                            Notice::CodeSent,
                            urls::with_query(urls::LoginMfa, &query),
                        ));
                    }
                    Err(_) => {
                        tracing::warn!(target: "portal_http", "login: the phone code was not sent");
                    }
                }
            }
            return Ok(ctx.redirect(urls::with_query(urls::LoginMfa, &query)));
        }
        Err(LoginError::InvalidCredentials) => {
            errors.general(i18n::code(ctx.lang, ErrorCode::InvalidCredentials));
        }
        Err(LoginError::Throttled { .. }) => {
            errors.general(i18n::code(ctx.lang, ErrorCode::Throttled));
        }
        Err(e) => return Err(e.into()),
    }
    // Back to the form, with the address; a login asked for despite a session (`reauth`, see
    // [`page`]) stays one.
    let mut query = vec![("next", next.as_str())];
    if ctx.principal.is_some() {
        query.push(("reauth", "1"));
    }
    Ok(ctx.back(urls::with_query(urls::Login, &query), errors))
}

/// `POST /logout`: the session ends on the server; the remembered device stays.
pub(crate) async fn logout(ctx: Ctx) -> Result<Response, PageError> {
    if let Some(token) = ctx.cookie_value(CookieName::Session) {
        ctx.portal().logout(&token).await?;
    }
    ctx.clear_cookie(CookieName::Session);
    ctx.clear_cookie(CookieName::PendingMfa);
    let mut r = ctx.redirect_with(Notice::LoggedOut, urls::Login);
    r.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    Ok(r)
}
