//! The page shell (header with navigation, language switch, logout), error pages and the form
//! building blocks. Everything goes through maud, which escapes every interpolated value.

use super::ctx::Ctx;
use super::form::{CSRF_FIELD, encode};
use super::i18n::{self, Text, text};
use crate::config::HttpConfig;
use crate::error::{ApiError, ErrorCode};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, Render, html};
use portal_core::user::Role;
use portal_core::values::Language;
use std::borrow::Cow;

/// The stylesheet's path (served by the crate).
pub(crate) const STYLESHEET: &str = "/assets/portal.css";

/// The path the pages live under, from the public URL (`https://x.example/portal` → `/portal`;
/// empty at the root). Templates and handlers use paths from `/`; the answer is prefixed with
/// it, so the UI also works when a host application nests the router under that path.
pub(crate) fn base_path(config: &HttpConfig) -> &str {
    config.public_path()
}

/// Puts `base` before every local link and form action of a rendered page. Only markup the
/// templates wrote can match: user text is escaped, so it never contains `href="/`.
pub(crate) fn prefixed(html: String, base: &str) -> String {
    if base.is_empty() {
        return html;
    }
    html.replace("href=\"/", &format!("href=\"{base}/"))
        .replace("action=\"/", &format!("action=\"{base}/"))
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " – Portal" }
            link rel="stylesheet" href=(STYLESHEET);
        }
    }
}

/// Links to this page in the other languages (`?lang=`), keeping the rest of the query.
fn language_switch(ctx: &Ctx) -> Markup {
    let rest: String = ctx
        .query
        .all_pairs()
        .iter()
        .filter(|(k, _)| k != "lang")
        .map(|(k, v)| format!("{}={}&", encode(k), encode(v)))
        .collect();
    html! {
        nav.lang aria-label=(ctx.t("nav-language")) {
            @for (lang, label) in [(Language::De, "Deutsch"), (Language::En, "English")] {
                @if lang == ctx.lang {
                    span aria-current="true" lang=(lang.code()) { (label) }
                } @else {
                    a href={ (ctx.path) "?" (rest) "lang=" (lang.code()) } lang=(lang.code()) hreflang=(lang.code()) { (label) }
                }
            }
        }
    }
}

fn navigation(ctx: &Ctx) -> Markup {
    let Some(p) = &ctx.principal else {
        return html! {};
    };
    let user = p.user();
    let active = user.is_active();
    let admin = active && user.role() == Role::Administrator;
    let operator = active && user.role() == Role::Operator;
    let employee = active && user.role() == Role::Employee && p.customer().is_some();
    let link = |href: &str, label: Text| {
        let current = ctx.path == href || (href != "/home" && ctx.path.starts_with(href));
        html! { li { a href=(href) aria-current=[current.then_some("page")] { (label) } } }
    };
    html! {
        nav.main aria-label=(ctx.t("nav-main-navigation")) {
            ul {
                (link("/home", ctx.t("nav-home")))
                @if admin {
                    (link("/admin/users", ctx.t("user-management")))
                    (link("/admin/audit", ctx.t("log")))
                    (link("/admin/admin-requests", ctx.t("admin-requests")))
                }
                @if operator {
                    (link("/operator/customers", ctx.t("customers")))
                    (link("/operator/admin-requests", ctx.t("admin-requests")))
                }
                @if employee {
                    (link("/admin-request", ctx.t("request-admin-rights")))
                }
                @if user.customer_id().is_some() && user.role() == Role::Employee {
                    (link("/contact-admin", ctx.t("contact-the-administrator")))
                }
                (link("/profile", ctx.t("my-details")))
                (link("/mfa", ctx.t("nav-security")))
                (link("/sessions", ctx.t("sessions")))
            }
        }
        div.who {
            span.name { (user.display_name()) }
            form method="post" action="/logout" {
                (csrf_field(ctx))
                button.link type="submit" { (ctx.t("nav-log-out")) }
            }
        }
    }
}

/// A whole page.
pub(crate) fn page(ctx: &Ctx, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            (head(title))
            body {
                a.skip href="#main" { (ctx.t("nav-skip-to-content")) }
                header.top {
                    a.brand href="/" { "Portal" }
                    (navigation(ctx))
                    (language_switch(ctx))
                }
                main #main {
                    (content)
                }
                footer.bottom {
                    p { (ctx.t("nav-footer")) }
                }
            }
        }
    }
}

/// The heading of an error page.
pub(crate) fn status_title(lang: Language, status: StatusCode) -> Text {
    match status.as_u16() {
        400 | 422 => text(lang, "status-title-invalid-input"),
        401 => text(lang, "status-title-not-logged-in"),
        403 => text(lang, "status-title-access-denied"),
        404 => text(lang, "status-title-page-not-found"),
        409 => text(lang, "status-title-not-possible"),
        410 => text(lang, "status-title-no-longer-valid"),
        413 | 415 => text(lang, "status-title-invalid-request"),
        429 => text(lang, "status-title-too-many-requests"),
        s if s >= 500 => text(lang, "status-title-error"),
        _ => text(lang, "status-title-other"),
    }
}

/// The body of an error page.
pub(crate) fn error_body(ctx: &Ctx, title: &str, message: &str) -> Markup {
    html! {
        section.card.narrow {
            h1 { (title) }
            p role="alert" { (message) }
            p { a href="/" { (ctx.t("error-page-home-link")) } }
        }
    }
}

/// An error page without a context (before a handler runs: the form guard, a failed session
/// lookup): no navigation, no cookies.
pub(crate) fn bare_error(
    lang: Language,
    base: &str,
    status: StatusCode,
    code: ErrorCode,
) -> Response {
    let title = status_title(lang, status);
    let body = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(&title))
            body {
                header.top { a.brand href="/" { "Portal" } }
                main #main {
                    section.card.narrow {
                        h1 { (title) }
                        p role="alert" { (i18n::code(lang, code)) }
                        p { a href="/" { (text(lang, "error-page-home-link")) } }
                    }
                }
            }
        }
    };
    (status, Html(prefixed(body.into_string(), base))).into_response()
}

/// [`bare_error`] for an API error; server errors are logged.
pub(crate) fn bare_api_error(lang: Language, base: &str, e: ApiError) -> Response {
    let code = e.code();
    let status = StatusCode::from_u16(code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        drop(e.into_response());
    }
    bare_error(lang, base, status, code)
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf); }
}

/// A short success or information message.
pub(crate) fn notice(text: impl AsRef<str>) -> Markup {
    let text = text.as_ref();
    html! { div.alert.ok role="status" { (text) } }
}

/// Messages of a form that was sent back: per field, and for the whole form.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    fields: Vec<(&'static str, String)>,
    general: Vec<String>,
}

impl Errors {
    /// No errors.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A message next to a field (the first one per field wins).
    pub(crate) fn field(&mut self, name: &'static str, message: impl Into<String>) {
        if self.get(name).is_none() {
            self.fields.push((name, message.into()));
        }
    }

    /// A message for the whole form.
    pub(crate) fn general(&mut self, message: impl Into<String>) {
        self.general.push(message.into());
    }

    /// The message of a field.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.as_str())
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// The summary above the form.
    pub(crate) fn summary(&self, lang: Language) -> Markup {
        html! {
            @if !self.is_empty() {
                div.alert.error role="alert" {
                    @for m in &self.general { p { (m) } }
                    @if !self.fields.is_empty() {
                        p { (text(lang, "form-check-marked-fields")) }
                    }
                }
            }
        }
    }
}

/// A labelled input with its error message (`aria-invalid`, `aria-describedby`).
#[derive(Debug, Clone)]
pub(crate) struct Input<'a> {
    name: &'a str,
    id_prefix: &'a str,
    label: Cow<'a, str>,
    kind: &'a str,
    value: &'a str,
    autocomplete: Option<&'a str>,
    inputmode: Option<&'a str>,
    hint: Option<Cow<'a, str>>,
    error: Option<&'a str>,
    required: bool,
    readonly: bool,
}

impl<'a> Input<'a> {
    /// A required text input.
    pub(crate) fn new(name: &'a str, label: impl Into<Cow<'a, str>>) -> Self {
        Self {
            name,
            id_prefix: "",
            label: label.into(),
            kind: "text",
            value: "",
            autocomplete: None,
            inputmode: None,
            hint: None,
            error: None,
            required: true,
            readonly: false,
        }
    }

    /// The input type (`email`, `password`, `tel`, …).
    pub(crate) fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    /// The value shown (never for passwords).
    pub(crate) fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    /// The `autocomplete` token.
    pub(crate) fn auto(mut self, token: &'a str) -> Self {
        self.autocomplete = Some(token);
        self
    }

    /// The `inputmode`.
    pub(crate) fn inputmode(mut self, mode: &'a str) -> Self {
        self.inputmode = Some(mode);
        self
    }

    /// A hint under the field.
    pub(crate) fn hint(mut self, hint: impl Into<Cow<'a, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The field's error from `errors`.
    pub(crate) fn errors(mut self, errors: &'a Errors) -> Self {
        self.error = errors.get(self.name);
        self
    }

    /// A prefix for the element ids (several forms of one page with the same field).
    pub(crate) fn id_prefix(mut self, prefix: &'a str) -> Self {
        self.id_prefix = prefix;
        self
    }

    /// Not required.
    pub(crate) fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Shown but not editable.
    pub(crate) fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }
}

impl Render for Input<'_> {
    fn render(&self) -> Markup {
        let id = format!("f-{}{}", self.id_prefix, self.name);
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let described: Vec<&str> = [
            self.hint.as_ref().map(|_| hint_id.as_str()),
            self.error.map(|_| error_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let described = (!described.is_empty()).then(|| described.join(" "));
        let value = (self.kind != "password").then_some(self.value);
        html! {
            div.field.invalid[self.error.is_some()] {
                label for=(id) { (self.label) }
                input id=(id) name=(self.name) type=(self.kind) value=[value]
                    autocomplete=[self.autocomplete] inputmode=[self.inputmode]
                    required[self.required] readonly[self.readonly]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described];
                @if let Some(h) = &self.hint { p.hint id=(hint_id) { (h) } }
                @if let Some(e) = self.error { p.field-error id=(error_id) { (e) } }
            }
        }
    }
}

/// A password input for logging in.
pub(crate) fn current_password<'a>(
    name: &'a str,
    label: impl Into<Cow<'a, str>>,
    errors: &'a Errors,
) -> Input<'a> {
    Input::new(name, label)
        .kind("password")
        .auto("current-password")
        .errors(errors)
}

/// A password input for a new password.
pub(crate) fn new_password<'a>(
    name: &'a str,
    label: impl Into<Cow<'a, str>>,
    errors: &'a Errors,
) -> Input<'a> {
    Input::new(name, label)
        .kind("password")
        .auto("new-password")
        .errors(errors)
}

/// A six-digit code input.
pub(crate) fn code_input<'a>(label: impl Into<Cow<'a, str>>, errors: &'a Errors) -> Input<'a> {
    Input::new("code", label)
        .inputmode("numeric")
        .auto("one-time-code")
        .errors(errors)
}
