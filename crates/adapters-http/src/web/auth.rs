//! Logging in (with the second step), logging out, registering with the mailed code, the
//! forgotten password and the invitation page (manual chapter 2 and 3.6).

use super::ctx::{Ctx, WebPath, safe_next};
use super::form::{FormData, encode};
use super::i18n;
use super::layout::{
    Errors, Input, code_input, csrf_field, current_password, new_password, notice,
};
use crate::api::auth::seconds_until;
use crate::api::session_cookie;
use crate::cookies::{self, CookieName};
use crate::error::{ApiError, codes};
use crate::ratelimit::Bucket;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use portal_core::mfa::MfaMethod;
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, CompleteMfa, InvitationError, InvitationView, IssuedSession, Login,
    LoginError, LoginOutcome, MfaError, Register, RegisterError, RegistrationTicket, ResendError,
    ResetError, SecondFactor, VerifyError,
};
use portal_core::values::{EmailAddress, Language, PersonName};

/// Texts of the `?notice=` keys (never user text: only these keys are shown).
pub(crate) fn notice_text(lang: Language, key: &str) -> Option<i18n::Text> {
    match key {
        "reset-sent" => Some(i18n::text(lang, "notice-reset-sent")),
        "logged-out" => Some(i18n::text(lang, "notice-logged-out")),
        "login-expired" => Some(i18n::text(lang, "notice-login-expired")),
        "code-resent" => Some(i18n::text(lang, "notice-code-resent")),
        "code-sent" => Some(i18n::text(lang, "notice-code-sent")),
        "recovery-sent" => Some(i18n::text(lang, "notice-recovery-sent")),
        "saved" => Some(i18n::text(lang, "notice-saved")),
        "message-sent" => Some(i18n::text(lang, "notice-message-sent")),
        _ => None,
    }
}

/// The page's notice from `?notice=`.
pub(crate) fn query_notice(ctx: &Ctx) -> Markup {
    match ctx
        .query
        .opt("notice")
        .and_then(|k| notice_text(ctx.lang, k))
    {
        Some(text) => notice(text),
        None => html! {},
    }
}

fn next_of(ctx: &Ctx, form: Option<&FormData>) -> String {
    form.and_then(|f| f.opt("next"))
        .or_else(|| ctx.query.opt("next"))
        .and_then(safe_next)
        .unwrap_or_else(|| "/home".to_owned())
}

/// A session started: its cookie, the pending step's and the pre-session CSRF cookie cleared
/// (a new login gets a new pre-session token).
fn started(ctx: &mut Ctx, issued: &IssuedSession) {
    let config = ctx.config().clone();
    ctx.cookie(cookies::clear(&config, CookieName::PendingMfa));
    ctx.cookie(cookies::clear(&config, CookieName::Csrf));
    ctx.cookie(session_cookie(&config, issued));
}

// ---------------------------------------------------------------------------------------------
// Anmelden
// ---------------------------------------------------------------------------------------------

fn login_form(ctx: &Ctx, email: &str, next: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("login-title")) }
            (query_notice(ctx))
            (errors.summary(ctx.lang))
            form method="post" action="/login" {
                (csrf_field(ctx))
                input type="hidden" name="next" value=(next);
                (Input::new("email", ctx.t("email")).kind("email").value(email).auto("username").errors(errors))
                (current_password("password", ctx.t("password"), errors))
                button.primary type="submit" { (ctx.t("login-title")) }
            }
            p { a href="/password/forgot" { (ctx.t("login-forgot-link")) } }
            p { (ctx.t("login-new-user")) " " a href="/register" { (ctx.t("login-register-link")) } }
        }
    }
}

/// `GET /login`.
pub(crate) async fn login_page(ctx: Ctx) -> Response {
    let next = next_of(&ctx, None);
    if ctx.principal.is_some() {
        return ctx.redirect(&next);
    }
    ctx.page(
        ctx.t("login-title"),
        login_form(&ctx, "", &next, &Errors::new()),
    )
}

/// `POST /login`.
pub(crate) async fn login(mut ctx: Ctx, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Login) {
        return r;
    }
    let next = next_of(&ctx, Some(&form));
    let email = form.get("email").trim().to_owned();
    let cmd = Login {
        email: email.clone(),
        password: SecretString::new(form.get("password")),
        client: ctx.client.info(),
    };
    let portal = ctx.portal();
    let outcome = match cookies::read(&ctx.headers, ctx.config(), CookieName::Device) {
        Some(device) => portal.login_with_device(cmd, &device).await,
        None => portal.login(cmd).await,
    };
    let mut errors = Errors::new();
    let status = match outcome {
        Ok(LoginOutcome::Authenticated(issued)) => {
            started(&mut ctx, &issued);
            return ctx.redirect(&next);
        }
        Ok(LoginOutcome::MfaRequired(pending)) => {
            let config = ctx.config().clone();
            ctx.cookie(cookies::set(
                &config,
                CookieName::PendingMfa,
                pending.token.expose(),
                Some(seconds_until(pending.expires_at)),
            ));
            let methods: Vec<&str> = pending.methods.iter().map(|m| method_key(*m)).collect();
            return ctx.redirect(&format!(
                "/login/mfa?methods={}&next={}",
                methods.join(","),
                encode(&next)
            ));
        }
        Err(LoginError::InvalidCredentials) => {
            errors.general(i18n::code(ctx.lang, codes::INVALID_CREDENTIALS));
            StatusCode::UNAUTHORIZED
        }
        Err(LoginError::Throttled { .. }) => {
            errors.general(i18n::code(ctx.lang, codes::THROTTLED));
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e) => return ctx.fail(e),
    };
    ctx.page_with(
        status,
        ctx.t("login-title"),
        login_form(&ctx, &email, &next, &errors),
    )
}

const fn method_key(m: MfaMethod) -> &'static str {
    match m {
        MfaMethod::Totp => "totp",
        MfaMethod::Sms => "sms",
        MfaMethod::Voice => "voice",
        MfaMethod::RecoveryCode => "recovery_code",
    }
}

fn method_from_key(k: &str) -> Option<MfaMethod> {
    match k {
        "totp" => Some(MfaMethod::Totp),
        "sms" => Some(MfaMethod::Sms),
        "voice" => Some(MfaMethod::Voice),
        "recovery_code" => Some(MfaMethod::RecoveryCode),
        _ => None,
    }
}

/// The factor a form names (`factor` = `totp`, `phone` or `recovery`) with its `code`.
pub(crate) fn factor_of(form: &FormData) -> Option<SecondFactor> {
    let code = SecretString::new(form.get("code").trim());
    match form.get("factor") {
        "totp" => Some(SecondFactor::Totp(code)),
        "phone" => Some(SecondFactor::PhoneCode(code)),
        "recovery" => Some(SecondFactor::RecoveryCode(code)),
        _ => None,
    }
}

/// The choice of factor and the code field (second step, step-up, MFA changes).
pub(crate) fn factor_fields(ctx: &Ctx, methods: &[MfaMethod], errors: &Errors) -> Markup {
    factor_fields_in(ctx, methods, errors, "")
}

/// [`factor_fields`] with element ids of their own (`prefix`), for pages with several such forms.
pub(crate) fn factor_fields_in(
    ctx: &Ctx,
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
                input type="radio" name="factor" value=(value) checked[value == first] required;
                " " (label)
            }
        }
    };
    html! {
        fieldset {
            legend { (ctx.t("confirm-your-identity")) }
            @if totp { (choice("totp", ctx.t("factor-totp"))) }
            @if phone { (choice("phone", ctx.t("factor-phone"))) }
            @if recovery { (choice("recovery", i18n::method(ctx.lang, MfaMethod::RecoveryCode))) }
            @if let Some(e) = errors.get("factor") { p.field-error { (e) } }
            (Input::new("code", ctx.t("code")).id_prefix(prefix).auto("one-time-code").errors(errors)
                .hint(ctx.t("factor-code-hint")))
        }
    }
}

fn pending_methods(ctx: &Ctx) -> Vec<MfaMethod> {
    let mut m: Vec<MfaMethod> = ctx
        .query
        .get("methods")
        .split(',')
        .filter_map(method_from_key)
        .collect();
    if m.is_empty() {
        m = vec![MfaMethod::Totp, MfaMethod::RecoveryCode];
    }
    m
}

fn mfa_form(ctx: &Ctx, errors: &Errors) -> Markup {
    let methods = pending_methods(ctx);
    let phone = methods.contains(&MfaMethod::Sms) || methods.contains(&MfaMethod::Voice);
    let query = format!(
        "?methods={}&next={}",
        encode(ctx.query.get("methods")),
        encode(&next_of(ctx, None))
    );
    html! {
        section.card.narrow {
            h1 { (ctx.t("confirm-your-identity")) }
            (query_notice(ctx))
            (errors.summary(ctx.lang))
            p { (ctx.t("mfa-step-intro")) }
            form method="post" action={ "/login/mfa" (query) } {
                (csrf_field(ctx))
                (factor_fields(ctx, &methods, errors))
                label.choice {
                    input type="checkbox" name="remember_device" value="1";
                    " " (ctx.t("mfa-step-remember-device"))
                }
                button.primary type="submit" { (ctx.t("continue")) }
            }
            @if phone {
                form.inline method="post" action={ "/login/mfa/phone-code" (query) } {
                    (csrf_field(ctx))
                    button.secondary type="submit" { (ctx.t("mfa-step-send-phone-code")) }
                }
            }
            form.inline method="post" action={ "/login/mfa/recovery-code" (query) } {
                (csrf_field(ctx))
                (ctx.t("forgot-recovery-code")) " "
                button.link type="submit" { (ctx.t("mfa-step-send-recovery-code")) }
            }
            p { a href="/login" { (ctx.t("cancel")) } }
        }
    }
}

/// `GET /login/mfa`: the second step.
pub(crate) async fn mfa_page(ctx: Ctx) -> Response {
    if cookies::read(&ctx.headers, ctx.config(), CookieName::PendingMfa).is_none() {
        return ctx.redirect("/login?notice=login-expired");
    }
    ctx.page(
        ctx.t("confirm-your-identity"),
        mfa_form(&ctx, &Errors::new()),
    )
}

/// `POST /login/mfa`.
pub(crate) async fn mfa(mut ctx: Ctx, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Mfa) {
        return r;
    }
    let config = ctx.config().clone();
    let Some(token) = cookies::read(&ctx.headers, &config, CookieName::PendingMfa) else {
        return ctx.redirect("/login?notice=login-expired");
    };
    let mut errors = Errors::new();
    let Some(factor) = factor_of(&form) else {
        errors.field("factor", ctx.t("please-choose-a-method"));
        return ctx.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.t("confirm-your-identity"),
            mfa_form(&ctx, &errors),
        );
    };
    let result = ctx
        .portal()
        .complete_mfa(CompleteMfa {
            token,
            factor,
            remember_device: form.checked("remember_device"),
            client: ctx.client.info(),
        })
        .await;
    let status = match result {
        Ok(done) => {
            started(&mut ctx, &done.session);
            if let Some(device) = &done.remembered_device {
                ctx.cookie(cookies::set(
                    &config,
                    CookieName::Device,
                    device.token.expose(),
                    Some(seconds_until(device.expires_at)),
                ));
            }
            return match done.new_recovery_code {
                Some(code) => {
                    let next = if done.choose_new_factor {
                        "/mfa".to_owned()
                    } else {
                        next_of(&ctx, None)
                    };
                    ctx.page(
                        ctx.t("recovery-code-new-title"),
                        recovery_code_shown(&ctx, code.expose(), &next),
                    )
                }
                None => ctx.redirect(&next_of(&ctx, None)),
            };
        }
        Err(MfaError::NoPendingLogin | MfaError::AttemptsExhausted) => {
            ctx.cookie(cookies::clear(&config, CookieName::PendingMfa));
            return ctx.redirect("/login?notice=login-expired");
        }
        Err(MfaError::NoSuchFactor) => {
            errors.field("factor", i18n::code(ctx.lang, codes::NO_SUCH_FACTOR));
            StatusCode::BAD_REQUEST
        }
        Err(
            e @ (MfaError::MalformedCode
            | MfaError::WrongCode
            | MfaError::CodeExpired
            | MfaError::Throttled { .. }),
        ) => {
            let api = ApiError::from(e);
            errors.field("code", i18n::code(ctx.lang, api.code()));
            StatusCode::from_u16(api.code().status).unwrap_or(StatusCode::BAD_REQUEST)
        }
        Err(e) => return ctx.fail(e),
    };
    ctx.page_with(
        status,
        ctx.t("confirm-your-identity"),
        mfa_form(&ctx, &errors),
    )
}

/// The recovery code, shown once ("!!! Wichtig !!!").
pub(crate) fn recovery_code_shown(ctx: &Ctx, code: &str, next: &str) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("recovery-code-title")) }
            div.alert.warn role="alert" {
                p { strong { (ctx.t("recovery-code-important")) } }
                p { (ctx.t("recovery-code-keep-safe")) }
            }
            p.secret { code #recovery-code { (code) } }
            p { a.button.primary href=(next) { (ctx.t("continue")) } }
        }
    }
}

/// `POST /login/mfa/phone-code`: a code by SMS or call for the second step.
pub(crate) async fn mfa_phone_code(ctx: Ctx) -> Response {
    mfa_send(ctx, false).await
}

/// `POST /login/mfa/recovery-code`: a fresh recovery code to the recovery channel.
pub(crate) async fn mfa_recovery_code(ctx: Ctx) -> Response {
    mfa_send(ctx, true).await
}

async fn mfa_send(ctx: Ctx, recovery: bool) -> Response {
    if let Err(r) = ctx.limit(Bucket::Mfa) {
        return r;
    }
    let Some(token) = cookies::read(&ctx.headers, ctx.config(), CookieName::PendingMfa) else {
        return ctx.redirect("/login?notice=login-expired");
    };
    let portal = ctx.portal();
    let sent = if recovery {
        portal.send_recovery_code(&token).await
    } else {
        portal.send_login_phone_code(&token).await
    };
    let back = |key: &str| {
        format!(
            "/login/mfa?methods={}&next={}&notice={key}",
            encode(ctx.query.get("methods")),
            encode(&next_of(&ctx, None))
        )
    };
    match sent {
        Ok(()) => ctx.redirect(&back(if recovery {
            "recovery-sent"
        } else {
            "code-sent"
        })),
        Err(MfaError::NoPendingLogin | MfaError::AttemptsExhausted) => {
            ctx.redirect("/login?notice=login-expired")
        }
        Err(e @ (MfaError::NoSuchFactor | MfaError::SendFailed(_) | MfaError::Unavailable)) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(ctx.lang, ApiError::from(e).code()));
            ctx.page_with(
                StatusCode::BAD_REQUEST,
                ctx.t("confirm-your-identity"),
                mfa_form(&ctx, &errors),
            )
        }
        Err(e) => ctx.fail(e),
    }
}

/// `POST /logout`: the session ends on the server; the remembered device stays.
pub(crate) async fn logout(mut ctx: Ctx) -> Response {
    let config = ctx.config().clone();
    if let Some(token) = cookies::read(&ctx.headers, &config, CookieName::Session)
        && let Err(e) = ctx.portal().logout(&token).await
    {
        return ctx.fail(e);
    }
    ctx.cookie(cookies::clear(&config, CookieName::Session));
    ctx.cookie(cookies::clear(&config, CookieName::PendingMfa));
    let mut r = ctx.redirect("/login?notice=logged-out");
    r.headers_mut().insert(
        "clear-site-data",
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    r
}

// ---------------------------------------------------------------------------------------------
// Erstellen Sie Ihr Konto, Code
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct RegisterInput {
    email: String,
    first_name: String,
    last_name: String,
}

fn register_form(ctx: &Ctx, v: &RegisterInput, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("create-your-account")) }
            p { (ctx.t("register-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action="/register" {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(&v.email).auto("email").errors(errors))
                (Input::new("first_name", ctx.t("first-name")).value(&v.first_name).auto("given-name").errors(errors))
                (Input::new("last_name", ctx.t("last-name")).value(&v.last_name).auto("family-name").errors(errors))
                (new_password("password", ctx.t("password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-password"), errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("register")) }
                    a.button.secondary href="/login" { (ctx.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /register`.
pub(crate) async fn register_page(ctx: Ctx) -> Response {
    if ctx.principal.is_some() {
        return ctx.redirect("/home");
    }
    ctx.page(
        ctx.t("create-your-account"),
        register_form(&ctx, &RegisterInput::default(), &Errors::new()),
    )
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
pub(crate) fn password_error(
    lang: Language,
    e: &portal_core::password::PasswordError,
    errors: &mut Errors,
) {
    let field = if matches!(
        e,
        portal_core::password::PasswordError::ConfirmationMismatch
    ) {
        "password_confirmation"
    } else {
        "password"
    };
    errors.field(field, i18n::password(lang, e));
}

/// `POST /register`.
pub(crate) async fn register(mut ctx: Ctx, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Registration) {
        return r;
    }
    let v = RegisterInput {
        email: form.get("email").trim().to_owned(),
        first_name: form.get("first_name").to_owned(),
        last_name: form.get("last_name").to_owned(),
    };
    let lang = ctx.lang;
    let mut errors = Errors::new();
    let email = parse_email(lang, &v.email, "email", &mut errors);
    let first = parse_name(lang, &v.first_name, "first_name", &mut errors);
    let last = parse_name(lang, &v.last_name, "last_name", &mut errors);
    let (Some(email), Some(first_name), Some(last_name)) = (email, first, last) else {
        return ctx.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.t("create-your-account"),
            register_form(&ctx, &v, &errors),
        );
    };
    let result = ctx
        .portal()
        .register(Register {
            email: email.clone(),
            first_name,
            last_name,
            password: SecretString::new(form.get("password")),
            password_confirmation: SecretString::new(form.get("password_confirmation")),
            language: lang,
        })
        .await;
    match result {
        Ok(ticket) => {
            remember_ticket(&mut ctx, &ticket, &email);
            ctx.redirect("/register/code")
        }
        Err(RegisterError::Password(e)) => {
            password_error(lang, &e, &mut errors);
            ctx.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                ctx.t("create-your-account"),
                register_form(&ctx, &v, &errors),
            )
        }
        Err(e) => ctx.fail(e),
    }
}

fn remember_ticket(ctx: &mut Ctx, ticket: &RegistrationTicket, email: &EmailAddress) {
    let value = format!(
        "{}.{}",
        ticket.ticket.expose(),
        URL_SAFE_NO_PAD.encode(email.as_str())
    );
    let ttl = ctx.portal().config().pending_registration_ttl.num_seconds();
    let config = ctx.config().clone();
    ctx.cookie(cookies::set(&config, CookieName::Ticket, &value, Some(ttl)));
}

/// The registration in progress: its ticket and address.
fn ticket(ctx: &Ctx) -> Option<(String, String)> {
    let raw = cookies::read(&ctx.headers, ctx.config(), CookieName::Ticket)?;
    let (ticket, email) = raw.split_once('.')?;
    let email = String::from_utf8(URL_SAFE_NO_PAD.decode(email).ok()?).ok()?;
    Some((ticket.to_owned(), email))
}

fn code_form(ctx: &Ctx, email: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("code")) }
            (query_notice(ctx))
            (errors.summary(ctx.lang))
            p { (ctx.t("register-code-intro")) " " strong { (email) } }
            form method="post" action="/register/code" {
                (csrf_field(ctx))
                (code_input(ctx.t("verification-code"), errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("continue")) }
                    a.button.secondary href="/login" { (ctx.t("cancel")) }
                }
            }
            form.inline method="post" action="/register/code/resend" {
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
        return ctx.redirect("/register");
    };
    ctx.page(ctx.t("code"), code_form(&ctx, &email, &Errors::new()))
}

/// `POST /register/code`: the account exists from now on, and a session starts.
pub(crate) async fn verify(mut ctx: Ctx, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Codes) {
        return r;
    }
    let Some((ticket, email)) = ticket(&ctx) else {
        return ctx.redirect("/register");
    };
    let result = ctx
        .portal()
        .verify_registration(&ticket, form.get("code").trim(), ctx.client.info())
        .await;
    let mut errors = Errors::new();
    let api = match result {
        Ok(issued) => {
            started(&mut ctx, &issued);
            let config = ctx.config().clone();
            ctx.cookie(cookies::clear(&config, CookieName::Ticket));
            return ctx.redirect("/home");
        }
        Err(
            e @ (VerifyError::MalformedCode
            | VerifyError::WrongCode
            | VerifyError::CodeExpired
            | VerifyError::TooManyAttempts),
        ) => {
            let api = ApiError::from(e);
            errors.field("code", i18n::code(ctx.lang, api.code()));
            api
        }
        Err(
            e @ (VerifyError::InvalidTicket
            | VerifyError::InvitationInvalid
            | VerifyError::AlreadyRegistered),
        ) => {
            let config = ctx.config().clone();
            ctx.cookie(cookies::clear(&config, CookieName::Ticket));
            return ctx.fail(e);
        }
        Err(e) => return ctx.fail(e),
    };
    let status = StatusCode::from_u16(api.code().status).unwrap_or(StatusCode::BAD_REQUEST);
    ctx.page_with(status, ctx.t("code"), code_form(&ctx, &email, &errors))
}

/// `POST /register/code/resend`: "Code erneut senden".
pub(crate) async fn resend(mut ctx: Ctx) -> Response {
    if let Err(r) = ctx.limit(Bucket::Codes) {
        return r;
    }
    let Some((ticket, email)) = ticket(&ctx) else {
        return ctx.redirect("/register");
    };
    match ctx.portal().resend_code(&ticket).await {
        Ok(t) => {
            if let Ok(address) = EmailAddress::parse(&email) {
                remember_ticket(&mut ctx, &t, &address);
            }
            ctx.redirect("/register/code?notice=code-resent")
        }
        Err(e @ ResendError::TooSoon { .. }) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(ctx.lang, ApiError::from(e).code()));
            ctx.page_with(
                StatusCode::TOO_MANY_REQUESTS,
                ctx.t("code"),
                code_form(&ctx, &email, &errors),
            )
        }
        Err(e @ (ResendError::InvalidTicket | ResendError::TooMany)) => {
            let config = ctx.config().clone();
            ctx.cookie(cookies::clear(&config, CookieName::Ticket));
            ctx.fail(e)
        }
        Err(e) => ctx.fail(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Passwort vergessen
// ---------------------------------------------------------------------------------------------

fn forgot_form(ctx: &Ctx, email: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("forgot-heading")) }
            p { (ctx.t("forgot-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action="/password/forgot" {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(email).auto("username").errors(errors))
                div.actions {
                    button.primary type="submit" { (ctx.t("forgot-send")) }
                    a.button.secondary href="/login" { (ctx.t("cancel")) }
                }
            }
        }
    }
}

/// `GET /password/forgot`.
pub(crate) async fn forgot_page(ctx: Ctx) -> Response {
    ctx.page(ctx.t("forgot-title"), forgot_form(&ctx, "", &Errors::new()))
}

/// `POST /password/forgot`: always the same answer.
pub(crate) async fn forgot(ctx: Ctx, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Password) {
        return r;
    }
    let email = form.get("email").trim();
    if email.is_empty() {
        let mut errors = Errors::new();
        errors.field(
            "email",
            i18n::email(ctx.lang, portal_core::values::EmailError::Empty),
        );
        return ctx.page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.t("forgot-title"),
            forgot_form(&ctx, email, &errors),
        );
    }
    match ctx.portal().forgot_password(email).await {
        Ok(()) => ctx.redirect("/login?notice=reset-sent"),
        Err(e) => ctx.fail(e),
    }
}

fn reset_form(ctx: &Ctx, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("reset-title")) }
            p { (ctx.t("reset-intro")) }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.path) {
                (csrf_field(ctx))
                (new_password("password", ctx.t("new-password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-new-password"), errors))
                button.primary type="submit" { (ctx.t("reset-submit")) }
            }
        }
    }
}

/// `GET /password/reset/{token}`: the form (the token is used only by the POST).
pub(crate) async fn reset_page(ctx: Ctx, WebPath(_token): WebPath<String>) -> Response {
    ctx.page(ctx.t("reset-title"), reset_form(&ctx, &Errors::new()))
}

/// `POST /password/reset/{token}`.
pub(crate) async fn reset(ctx: Ctx, WebPath(token): WebPath<String>, form: FormData) -> Response {
    if let Err(r) = ctx.limit(Bucket::Password) {
        return r;
    }
    let result = ctx
        .portal()
        .reset_password(
            &token,
            &SecretString::new(form.get("password")),
            &SecretString::new(form.get("password_confirmation")),
        )
        .await;
    match result {
        Ok(()) => ctx.redirect("/password/changed"),
        Err(ResetError::Password(e)) => {
            let mut errors = Errors::new();
            password_error(ctx.lang, &e, &mut errors);
            ctx.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                ctx.t("reset-title"),
                reset_form(&ctx, &errors),
            )
        }
        Err(e @ (ResetError::InvalidLink | ResetError::Expired | ResetError::Used)) => {
            let code = ApiError::from(e).code();
            let status = StatusCode::from_u16(code.status).unwrap_or(StatusCode::BAD_REQUEST);
            let title = ctx.t("reset-invalid-link");
            ctx.page_with(
                status,
                &title,
                html! {
                    section.card.narrow {
                        h1 { (title) }
                        p role="alert" { (i18n::code(ctx.lang, code)) }
                        p { a.button.primary href="/password/forgot" { (ctx.t("reset-ask-new-link")) } }
                    }
                },
            )
        }
        Err(e) => ctx.fail(e),
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
                p { a.button.primary href="/login" { (ctx.t("continue")) } }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Einladung
// ---------------------------------------------------------------------------------------------

fn invitation_form(ctx: &Ctx, v: &InvitationView, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("create-your-account")) }
            p {
                (ctx.t("invitation-welcome"))
                @if let Some(c) = &v.customer_name { " " (ctx.t("invitation-invited-by")) " " strong { (c) } }
            }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.path) {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(v.email.as_str()).auto("username").readonly())
                (Input::new("first_name", ctx.t("first-name")).value(v.first_name.as_str()).readonly())
                (Input::new("last_name", ctx.t("last-name")).value(v.last_name.as_str()).readonly())
                (new_password("password", ctx.t("password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-password"), errors))
                button.primary type="submit" { (ctx.t("register")) }
            }
        }
    }
}

fn invitation_failed(ctx: &Ctx, e: InvitationError) -> Response {
    let api = ApiError::from(e);
    let code = api.code();
    if code.status >= 500 {
        return ctx.fail(api);
    }
    let status = StatusCode::from_u16(code.status).unwrap_or(StatusCode::NOT_FOUND);
    let message = if code == codes::NOT_FOUND {
        ctx.t("invitation-invalid-link")
    } else {
        i18n::code(ctx.lang, code)
    };
    ctx.error_page(status, message)
}

/// `GET /invitations/{token}`: the pre-filled registration (the token is not used up).
pub(crate) async fn invitation_page(ctx: Ctx, WebPath(token): WebPath<String>) -> Response {
    match ctx.portal().invitation(&token).await {
        Ok(v) => ctx.page(
            ctx.t("create-your-account"),
            invitation_form(&ctx, &v, &Errors::new()),
        ),
        Err(e) => invitation_failed(&ctx, e),
    }
}

/// `POST /invitations/{token}`: sets the password and mails the code; on to the code page.
pub(crate) async fn accept_invitation(
    mut ctx: Ctx,
    WebPath(token): WebPath<String>,
    form: FormData,
) -> Response {
    if let Err(r) = ctx.limit(Bucket::Registration) {
        return r;
    }
    let view = match ctx.portal().invitation(&token).await {
        Ok(v) => v,
        Err(e) => return invitation_failed(&ctx, e),
    };
    let result = ctx
        .portal()
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: SecretString::new(form.get("password")),
                password_confirmation: SecretString::new(form.get("password_confirmation")),
            },
        )
        .await;
    match result {
        Ok(ticket) => {
            remember_ticket(&mut ctx, &ticket, &view.email);
            ctx.redirect("/register/code")
        }
        Err(InvitationError::Password(e)) => {
            let mut errors = Errors::new();
            password_error(ctx.lang, &e, &mut errors);
            ctx.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                ctx.t("create-your-account"),
                invitation_form(&ctx, &view, &errors),
            )
        }
        Err(e) => invitation_failed(&ctx, e),
    }
}
