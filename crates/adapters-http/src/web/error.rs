//! [`PageError`]: what a page handler answers when the request cannot go on, and the layer that
//! renders it.
//!
//! Handlers return `Result<Response, PageError>` and use `?` on the core's results: every core
//! error converts into a `PageError` (through its API error code, so page and API agree on the
//! status), and so do the rejections of the web UI's extractors (a malformed path parameter, a
//! form that is not a form). A `PageError` is only a status and a message key: it does not know
//! the page's language, the logged-in user or the base path, and it does not render anything
//! itself. Its [`IntoResponse`] leaves it in the response's extensions, and [`render_errors`],
//! the layer around every page, turns it into the localized error page with the context the
//! handler's [`Ctx`](super::ctx::Ctx) extractor captured for this request ([`PageScope`]): the
//! same header, navigation and language as the page would have had. Before that extractor ran
//! (the form guard, a path that does not parse) it renders the bare error page in the language
//! of the request. One place renders error pages, so the Post/Redirect/Get of errors that is to
//! come (a flash cookie and a redirect back to the form) changes this module only.

use super::ctx::Shell;
use super::i18n;
use super::layout;
use crate::cookies;
use crate::error::{ApiError, ErrorCode, codes};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a page cannot be shown: the status and the message of the error page.
#[derive(Debug, Clone)]
pub(crate) struct PageError {
    status: StatusCode,
    message: Message,
    retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum Message {
    /// The localized message of an API error code.
    Code(ErrorCode),
    /// A message of its own (a key of the message files).
    Text(&'static str),
}

impl PageError {
    /// An error page with a message of its own.
    pub(crate) const fn new(status: StatusCode, key: &'static str) -> Self {
        Self {
            status,
            message: Message::Text(key),
            retry_after: None,
        }
    }

    /// The error page of an API error code.
    pub(crate) fn code(code: ErrorCode) -> Self {
        Self {
            status: status_of(code),
            message: Message::Code(code),
            retry_after: None,
        }
    }

    /// The 404 page: an unknown thing, or one that is not the user's (answered alike).
    pub(crate) fn not_found() -> Self {
        Self::code(codes::NOT_FOUND)
    }

    /// The 403 page.
    pub(crate) fn forbidden() -> Self {
        Self::code(codes::FORBIDDEN)
    }

    /// With `Retry-After` (seconds).
    pub(crate) const fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn message(&self, lang: portal_core::values::Language) -> i18n::Text {
        match self.message {
            Message::Code(code) => i18n::code(lang, code),
            Message::Text(key) => i18n::text(lang, key),
        }
    }
}

/// The HTTP status of an error code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Every core error (and the API's own) by its code; server errors are logged here with the
/// request id and their internal message, which the page never shows.
impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        let e: ApiError = e.into();
        let page = Self::code(e.code());
        if page.status.is_server_error() {
            // The API's answer logs it; its body is not used.
            drop(e.into_response());
        }
        page
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

/// What one page request shares between [`render_errors`] and the handler's context: the cookies
/// to set (on every answer, error pages included) and the page shell once the context knows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageScope(Arc<Mutex<ScopeState>>);

#[derive(Debug, Default)]
struct ScopeState {
    cookies: Vec<HeaderValue>,
    shell: Option<Arc<Shell>>,
}

impl PageScope {
    fn with<T>(&self, f: impl FnOnce(&mut ScopeState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a `Set-Cookie` to the answer.
    pub(crate) fn cookie(&self, value: HeaderValue) {
        self.with(|s| s.cookies.push(value));
    }

    /// The shell error pages of this request use.
    pub(crate) fn set_shell(&self, shell: Arc<Shell>) {
        self.with(|s| s.shell = Some(shell));
    }
}

/// The layer around every page: gives the request its [`PageScope`], renders a [`PageError`]
/// answer as the error page, and sets the scope's cookies on whatever the answer is.
pub(crate) async fn render_errors(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let scope = PageScope::default();
    let config = state.config();
    let lang = super::ctx::lang_from_request(config, req.headers(), req.uri().query());
    req.extensions_mut().insert(scope.clone());
    let mut response = next.run(req).await;
    if let Some(error) = response.extensions_mut().remove::<PageError>() {
        response = match scope.with(|s| s.shell.clone()) {
            Some(shell) => {
                let title = layout::status_title(shell.lang, error.status);
                let body = layout::error_body(&shell, &title, &error.message(shell.lang));
                layout::render(&shell, error.status, &title, body)
            }
            None => {
                let message = error.message(lang);
                layout::bare_error(lang, config.public_path(), error.status, &message)
            }
        };
        if let Some(seconds) = error.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    let cookies = scope.with(|s| std::mem::take(&mut s.cookies));
    cookies::append(response.headers_mut(), cookies);
    response
}
