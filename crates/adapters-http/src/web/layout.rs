//! The page frame (header with navigation, language switch, logout), error pages and the form
//! building blocks. Everything goes through maud, which escapes every interpolated value. Links
//! are built from [`urls`] with the base path ([`Shell::href`]).

use super::ctx::Shell;
use super::form::CSRF_FIELD;
use super::i18n::{self, Text, text};
use super::urls::{self, Notice};
use crate::error::ApiError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::routing::TypedPath;
use maud::{DOCTYPE, Markup, Render, html};
use portal_core::user::Role;
use portal_core::values::Language;
use std::borrow::Cow;

fn head(base: &str, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " – Portal" }
            link rel="stylesheet" href=(urls::under(base, urls::Stylesheet));
        }
    }
}

/// Links to this page in the other languages (`?lang=`), keeping the rest of the query.
fn language_switch(shell: &Shell) -> Markup {
    let switch_to = |lang: Language| {
        let mut query: Vec<(&str, &str)> = shell
            .query
            .iter()
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        query.push(("lang", lang.code()));
        shell.href(urls::with_query(&shell.path, &query))
    };
    html! {
        nav.lang aria-label=(shell.t("nav-language")) {
            @for lang in i18n::languages() {
                @if lang == shell.lang {
                    span aria-current="true" lang=(lang.code()) { (i18n::language_name(lang)) }
                } @else {
                    a href=(switch_to(lang)) lang=(lang.code()) hreflang=(lang.code()) { (i18n::language_name(lang)) }
                }
            }
        }
    }
}

fn navigation(shell: &Shell) -> Markup {
    let Some(p) = &shell.principal else {
        return html! {};
    };
    let user = p.user();
    let active = user.is_active();
    let admin = active && user.role() == Role::Administrator;
    let operator = active && user.role() == Role::Operator;
    let employee = active && user.role() == Role::Employee && p.customer().is_some();
    let link = |path: &str, label: Text| {
        let current =
            shell.path == path || (path != urls::Home::PATH && shell.path.starts_with(path));
        html! { li { a href=(shell.href(path)) aria-current=[current.then_some("page")] { (label) } } }
    };
    html! {
        nav.main aria-label=(shell.t("nav-main-navigation")) {
            ul {
                (link(urls::Home::PATH, shell.t("nav-home")))
                @if admin {
                    (link(urls::MyUsers::PATH, shell.t("user-management")))
                    (link(urls::MyAudit::PATH, shell.t("log")))
                    (link(urls::MyAdminRequests::PATH, shell.t("admin-requests")))
                }
                @if operator {
                    (link(urls::OperatorCustomers::PATH, shell.t("customers")))
                    (link(urls::OperatorAdminRequests::PATH, shell.t("admin-requests")))
                    (link(urls::OperatorOutbox::PATH, shell.t("outbox-title")))
                    (link(urls::OperatorClients::PATH, shell.t("clients-title")))
                    (link(urls::OperatorWebhooks::PATH, shell.t("webhooks-title")))
                }
                @if employee {
                    (link(urls::AdminRequest::PATH, shell.t("request-admin-rights")))
                }
                @if shell.contact_admins {
                    (link(urls::ContactAdmin::PATH, shell.t("contact-the-administrator")))
                }
                (link(urls::Profile::PATH, shell.t("my-details")))
                (link(urls::Mfa::PATH, shell.t("nav-security")))
                (link(urls::Sessions::PATH, shell.t("sessions")))
            }
        }
        div.who {
            span.name { (user.display_name()) }
            form method="post" action=(shell.href(urls::Logout)) {
                (csrf_field(shell))
                button.link type="submit" { (shell.t("nav-log-out")) }
            }
        }
    }
}

/// A whole page.
pub(crate) fn page(shell: &Shell, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(shell.lang.code()) {
            (head(&shell.base, title))
            body {
                a.skip href="#main" { (shell.t("nav-skip-to-content")) }
                header.top {
                    a.brand href=(shell.href(urls::Root)) { "Portal" }
                    (navigation(shell))
                    (language_switch(shell))
                }
                main #main {
                    (content)
                }
                footer.bottom {
                    p { (shell.t("nav-footer")) }
                }
            }
        }
    }
}

/// The answer of a whole page.
pub(crate) fn render(shell: &Shell, status: StatusCode, title: &str, content: Markup) -> Response {
    (status, Html(page(shell, title, content).into_string())).into_response()
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
pub(crate) fn error_body(shell: &Shell, title: &str, message: &str) -> Markup {
    html! {
        section.card.narrow {
            h1 { (title) }
            p role="alert" { (message) }
            p { a href=(shell.href(urls::Root)) { (shell.t("error-page-home-link")) } }
        }
    }
}

/// An error page without a context (before a page's context exists: the form guard, a path
/// that does not parse, an unknown page): no navigation.
pub(crate) fn bare_error(
    lang: Language,
    base: &str,
    status: StatusCode,
    message: &str,
) -> Response {
    let title = status_title(lang, status);
    let home = urls::under(base, urls::Root);
    let body = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(base, &title))
            body {
                header.top { a.brand href=(home) { "Portal" } }
                main #main {
                    section.card.narrow {
                        h1 { (title) }
                        p role="alert" { (message) }
                        p { a href=(home) { (text(lang, "error-page-home-link")) } }
                    }
                }
            }
        }
    };
    (status, Html(body.into_string())).into_response()
}

/// A hidden field.
pub(crate) fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(shell: &Shell) -> Markup {
    hidden(CSRF_FIELD, &shell.csrf)
}

/// A choice of language (`name`), `selected` chosen; each language named in itself.
pub(crate) fn language_select(name: &str, label: Text, selected: Language) -> Markup {
    html! {
        div.field {
            label for={ "f-" (name) } { (label) }
            select id={ "f-" (name) } name=(name) {
                @for lang in i18n::languages() {
                    option value=(lang.code()) selected[lang == selected] { (i18n::language_name(lang)) }
                }
            }
        }
    }
}

/// A short success or information message.
pub(crate) fn notice(text: impl AsRef<str>) -> Markup {
    html! { div.alert.ok role="status" { (text.as_ref()) } }
}

/// The message the previous form's redirect left for this page ([`super::flash`]), if any.
pub(crate) fn notice_of(shell: &Shell) -> Option<Notice> {
    shell.flash.as_ref().map(|f| f.notice)
}

/// The page's flash message, naming whom it is about where it does.
pub(crate) fn flash_notice(shell: &Shell) -> Markup {
    match &shell.flash {
        Some(f) => match &f.name {
            Some(name) => notice(shell.t_with(f.notice.key(), [("name", name.clone().into())])),
            None => notice(shell.t(f.notice.key())),
        },
        None => html! {},
    }
}

/// The reason a button's action was refused, on the page it was sent back to
/// ([`super::ctx::Ctx::or_back`]); pages without a form of their own show it beside
/// [`flash_notice`].
pub(crate) fn kept_notice(shell: &Shell) -> Markup {
    match &shell.kept {
        Some(k) => k.errors().summary(shell.lang),
        None => html! {},
    }
}

/// Messages of a form that was sent back: per field, and for the whole form; and, on the page a
/// failed form was sent back to ([`super::form::Kept`]), what was typed (no secrets), which
/// [`Input::errors`] shows again.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    fields: Vec<(String, String)>,
    general: Vec<String>,
    kept: Vec<(String, String)>,
}

impl Errors {
    /// No errors.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Messages and typed values as a [`super::form::Kept`] carried them.
    pub(crate) fn from_parts(
        fields: Vec<(String, String)>,
        general: Vec<String>,
        kept: Vec<(String, String)>,
    ) -> Self {
        Self {
            fields,
            general,
            kept,
        }
    }

    /// The messages per field and for the whole form.
    pub(crate) fn into_parts(self) -> (Vec<(String, String)>, Vec<String>) {
        (self.fields, self.general)
    }

    /// What was typed into a field of the failed form, if it is kept.
    pub(crate) fn kept(&self, name: &str) -> Option<&str> {
        self.kept
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The failed form's kept input read as the form `T` (secrets empty), if there is any.
    pub(crate) fn kept_form<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.kept.is_empty() {
            return None;
        }
        let raw = serde_html_form::to_string(&self.kept).ok()?;
        serde_html_form::from_str(&raw).ok()
    }

    /// A message next to a field (the first one per field wins).
    pub(crate) fn field(&mut self, name: &'static str, message: impl Into<String>) {
        if self.get(name).is_none() {
            self.fields.push((name.to_owned(), message.into()));
        }
    }

    /// A message for the whole form.
    pub(crate) fn general(&mut self, message: impl Into<String>) {
        self.general.push(message.into());
    }

    /// The message of an error's code next to a field; the code's status.
    pub(crate) fn refused_at(
        &mut self,
        lang: Language,
        field: &'static str,
        e: impl Into<ApiError>,
    ) -> StatusCode {
        let code = e.into().code();
        self.field(field, i18n::code(lang, code));
        code.status()
    }

    /// The message of an error's code for the whole form; the code's status.
    pub(crate) fn refused(&mut self, lang: Language, e: impl Into<ApiError>) -> StatusCode {
        let code = e.into().code();
        self.general(i18n::code(lang, code));
        code.status()
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
    kept: Option<&'a str>,
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
            kept: None,
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

    /// The field's error from `errors`, and what was typed into it when the failed form was
    /// sent back (it wins over [`Self::value`]; never for passwords).
    pub(crate) fn errors(mut self, errors: &'a Errors) -> Self {
        self.error = errors.get(self.name);
        self.kept = errors.kept(self.name);
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
        let value = (self.kind != "password").then_some(self.kept.unwrap_or(self.value));
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
