//! The request context of every page: language, the logged-in user (if any), the CSRF token for
//! the page's forms, cookies to set, and the helpers that turn it into a response (page,
//! redirect, error page).

use super::form::{FormData, query};
use super::i18n;
use super::layout;
use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::ApiError;
use crate::middleware::ClientContext;
use crate::ratelimit::Bucket;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use portal_core::Portal;
use portal_core::service::{AuthError, Principal};
use portal_core::values::Language;

/// The page language from the request alone: `?lang=`, then the language cookie, then German.
pub(crate) fn lang_from_request(
    config: &HttpConfig,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> Language {
    query(raw_query)
        .opt("lang")
        .and_then(|l| Language::parse(l).ok())
        .or_else(|| {
            cookies::read(headers, config, CookieName::Lang).and_then(|l| Language::parse(&l).ok())
        })
        .unwrap_or(Language::De)
}

/// A local path to go to after login: relative, on this site, not a scheme or protocol-relative
/// URL. Anything else gives `None` (callers fall back to the home page).
pub(crate) fn safe_next(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && !raw.contains(['\\', '\r', '\n', '\t'])
        && raw.len() <= 512;
    ok.then(|| raw.to_owned())
}

/// What a page handler knows about its request.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The shared state.
    pub(crate) state: AppState,
    /// The page language.
    pub(crate) lang: Language,
    /// The token for the page's forms (hidden `csrf_token` field).
    pub(crate) csrf: String,
    /// `Set-Cookie` values every response from this context carries.
    pub(crate) cookies: Vec<HeaderValue>,
    /// The logged-in user, when the session cookie names a live session.
    pub(crate) principal: Option<Principal>,
    /// The request's headers.
    pub(crate) headers: HeaderMap,
    /// Where the request comes from.
    pub(crate) client: ClientContext,
    /// The request path.
    pub(crate) path: String,
    /// The query parameters.
    pub(crate) query: FormData,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("lang", &self.lang)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let config = state.config();
        let headers = parts.headers.clone();
        let query = query(parts.uri.query());
        let mut cookies = Vec::new();
        let chosen = query.opt("lang").and_then(|l| Language::parse(l).ok());
        if let Some(l) = chosen {
            cookies.push(cookies::set(
                config,
                CookieName::Lang,
                l.code(),
                Some(365 * 24 * 3600),
            ));
        }
        let preference = chosen.or_else(|| {
            cookies::read(&headers, config, CookieName::Lang).and_then(|l| Language::parse(&l).ok())
        });
        let mut principal = None;
        let mut session = None;
        if let Some(token) = cookies::read(&headers, config, CookieName::Session) {
            match state.portal().authenticate(&token).await {
                Ok(p) => {
                    principal = Some(p);
                    session = Some(token);
                }
                Err(AuthError::Unauthenticated) => {
                    // A dead session: forget it, so the page's forms use the pre-session token.
                    cookies.push(cookies::clear(config, CookieName::Session));
                }
                Err(e) => {
                    let lang = preference.unwrap_or(Language::De);
                    return Err(layout::bare_api_error(
                        lang,
                        layout::base_path(config),
                        ApiError::from(e),
                    ));
                }
            }
        }
        let lang = preference
            .or_else(|| principal.as_ref().map(|p| p.user().language()))
            .unwrap_or(Language::De);
        let csrf = match &session {
            Some(token) => csrf::session_token(config, token),
            None => {
                let nonce =
                    cookies::read(&headers, config, CookieName::Csrf).unwrap_or_else(|| {
                        let n = csrf::new_nonce();
                        cookies.push(cookies::set(config, CookieName::Csrf, &n, None));
                        n
                    });
                csrf::pre_session_token(config, &nonce)
            }
        };
        let client = parts
            .extensions
            .get::<ClientContext>()
            .cloned()
            .unwrap_or_default();
        Ok(Self {
            state: state.clone(),
            lang,
            csrf,
            cookies,
            principal,
            headers,
            client,
            path: parts.uri.path().to_owned(),
            query,
        })
    }
}

impl Ctx {
    /// The settings.
    pub(crate) fn config(&self) -> &HttpConfig {
        self.state.config()
    }

    /// The portal.
    pub(crate) fn portal(&self) -> &Portal {
        self.state.portal()
    }

    /// The message `key` in the page language.
    pub(crate) fn t(&self, key: &'static str) -> i18n::Text {
        i18n::text(self.lang, key)
    }

    /// The message `key` in the page language, with its arguments.
    pub(crate) fn t_with(
        &self,
        key: &'static str,
        args: impl IntoIterator<Item = (&'static str, fluent_bundle::FluentValue<'static>)>,
    ) -> i18n::Text {
        i18n::text_with(self.lang, key, args)
    }

    /// Adds a `Set-Cookie` to every response from now on.
    pub(crate) fn cookie(&mut self, value: HeaderValue) {
        self.cookies.push(value);
    }

    fn finish(&self, mut response: Response) -> Response {
        cookies::append(response.headers_mut(), self.cookies.iter().cloned());
        response
    }

    /// A page (200).
    pub(crate) fn page(&self, title: impl AsRef<str>, content: Markup) -> Response {
        self.page_with(StatusCode::OK, title, content)
    }

    /// A page with another status (a form shown again with its errors: 4xx).
    pub(crate) fn page_with(
        &self,
        status: StatusCode,
        title: impl AsRef<str>,
        content: Markup,
    ) -> Response {
        let title = title.as_ref();
        let html = layout::prefixed(
            layout::page(self, title, content).into_string(),
            layout::base_path(self.config()),
        );
        self.finish((status, axum::response::Html(html)).into_response())
    }

    /// `303 See Other` to a local path (Post/Redirect/Get).
    pub(crate) fn redirect(&self, to: &str) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        let to = if to.starts_with('/') && !to.starts_with("//") {
            format!("{}{to}", layout::base_path(self.config()))
        } else {
            to.to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        self.finish(r)
    }

    /// An error page with a message.
    pub(crate) fn error_page(&self, status: StatusCode, message: impl AsRef<str>) -> Response {
        let message = message.as_ref();
        let title = layout::status_title(self.lang, status);
        self.page_with(status, &title, layout::error_body(self, &title, message))
    }

    /// The error page of an API error (its status and localized message). Server errors are
    /// logged with the request id, never shown.
    pub(crate) fn fail(&self, e: impl Into<ApiError>) -> Response {
        let e: ApiError = e.into();
        let code = e.code();
        let status = StatusCode::from_u16(code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            // The API's answer logs it (with the internal message); its body is not used.
            drop(e.into_response());
        }
        self.error_page(status, i18n::code(self.lang, code))
    }

    /// Takes a token from the client's bucket, or the 429 page with `Retry-After`.
    pub(crate) fn limit(&self, bucket: Bucket) -> Result<(), Response> {
        match self.state.limiter().take(bucket, self.client.ip) {
            Ok(()) => Ok(()),
            Err(wait) => {
                tracing::warn!(target: "portal_http", ?bucket, "rate limited (web)");
                let mut r = self.fail(ApiError::new(crate::error::codes::RATE_LIMITED));
                if let Ok(v) = HeaderValue::from_str(&(wait.as_secs() + 1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                Err(r)
            }
        }
    }
}

/// A page that needs a login: without a live session the browser is sent to the login page
/// (and comes back here after it, for pages reached by GET).
pub(crate) struct Authed {
    /// The context.
    pub(crate) ctx: Ctx,
    /// The logged-in user.
    pub(crate) p: Principal,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        match ctx.principal.clone() {
            Some(p) => Ok(Self { ctx, p }),
            None => {
                let back = if parts.method == axum::http::Method::GET {
                    let pq = parts
                        .uri
                        .path_and_query()
                        .map_or("/", axum::http::uri::PathAndQuery::as_str);
                    format!("/login?next={}", super::form::encode(pq))
                } else {
                    "/login".to_owned()
                };
                Err(ctx.redirect(&back))
            }
        }
    }
}

impl std::ops::Deref for Authed {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl std::ops::DerefMut for Authed {
    fn deref_mut(&mut self) -> &mut Ctx {
        &mut self.ctx
    }
}

/// Path parameters; a malformed one answers the 400 page.
pub(crate) struct WebPath<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for WebPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_from_request(state.config(), &parts.headers, parts.uri.query());
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| {
                layout::bare_error(
                    lang,
                    layout::base_path(state.config()),
                    StatusCode::BAD_REQUEST,
                    crate::error::codes::INVALID_REQUEST,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            safe_next("/admin/users?q=a").as_deref(),
            Some("/admin/users?q=a")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
