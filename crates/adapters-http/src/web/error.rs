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
//! of the request. One place renders error pages. A form's own errors (a field to correct, a
//! refusal the form can say) are no error page: the handler sends the browser back to the form
//! ([`Ctx::back`](super::ctx::Ctx::back), Post/Redirect/Get also after errors).
//!
//! Logging is not done here: a `PageError` made from an [`ApiError`] carries it, its
//! `IntoResponse` attaches it to the answer ([`ApiError::attach`]) like the API's own answers,
//! and [`render_errors`] keeps the answer's extensions on the rendered page. The router's error
//! layer ([`crate::error::complete_error_responses`]) then logs a server error once, inside the
//! request's span (request id and route), with its internal message; the page never shows it.

use super::ctx::Shell;
use super::i18n;
use super::layout;
use crate::cookies;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a page cannot be shown: the status and the message of the error page, and the API error
/// behind it (for the error layer's log).
#[derive(Debug)]
pub(crate) struct PageError {
    page: ErrorPage,
    error: Option<ApiError>,
}

/// What [`render_errors`] needs to render an error page (in the answer's extensions).
#[derive(Debug, Clone)]
struct ErrorPage {
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
            page: ErrorPage {
                status,
                message: Message::Text(key),
                retry_after: None,
            },
            error: None,
        }
    }

    /// The error page of an API error code.
    pub(crate) fn code(code: ErrorCode) -> Self {
        ApiError::new(code).into()
    }

    /// The 404 page: an unknown thing, or one that is not the user's (answered alike).
    pub(crate) fn not_found() -> Self {
        Self::code(ErrorCode::NotFound)
    }

    /// The 403 page.
    pub(crate) fn forbidden() -> Self {
        Self::code(ErrorCode::Forbidden)
    }

    /// The status of the error page.
    pub(crate) fn status(&self) -> StatusCode {
        self.page.status
    }

    /// The error page's message in `lang`.
    pub(crate) fn message(&self, lang: portal_core::values::Language) -> String {
        self.page.message(lang).into_owned()
    }

    /// With `Retry-After` (seconds).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.page.retry_after = Some(seconds);
        self
    }
}

impl ErrorPage {
    fn message(&self, lang: portal_core::values::Language) -> i18n::Text {
        match self.message {
            Message::Code(code) => i18n::code(lang, code),
            Message::Text(key) => i18n::text(lang, key),
        }
    }
}

/// Every core error (and the API's own) by its code, with the error itself for the log.
impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        let e: ApiError = e.into();
        let code = e.code();
        Self {
            page: ErrorPage {
                status: code.status(),
                message: Message::Code(code),
                retry_after: None,
            },
            error: Some(e),
        }
    }
}

impl IntoResponse for PageError {
    /// The bare status, with what [`render_errors`] renders and the API error's report for the
    /// error layer in its extensions.
    fn into_response(self) -> Response {
        let mut r = self.page.status.into_response();
        if let Some(e) = self.error {
            e.attach(&mut r);
        }
        r.extensions_mut().insert(self.page);
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
    if let Some(error) = response.extensions_mut().remove::<ErrorPage>() {
        let mut page = match scope.with(|s| s.shell.clone()) {
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
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The error report (and anything else the handler's answer carried) goes along.
        let extensions = std::mem::take(response.extensions_mut());
        page.extensions_mut().extend(extensions);
        response = page;
    }
    let cookies = scope.with(|s| std::mem::take(&mut s.cookies));
    cookies::append(response.headers_mut(), cookies);
    response
}
