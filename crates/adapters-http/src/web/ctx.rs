//! The request context of every page: [`Ctx`] (language, the logged-in user if any, the CSRF
//! token for the page's forms) and [`Authed`] for pages that need a login, plus the helpers that
//! turn it into an answer (page, redirect). The part a page's frame needs is the [`Shell`]; the
//! context hands it to the request's [`PageScope`] so that error pages get the same frame.

use super::error::{PageError, PageScope};
use super::flash::Flash;
use super::form::{Kept, Submitted};
use super::i18n::{self, Text};
use super::layout::{self, Errors};
use super::urls::{self, Notice};
use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::middleware::ClientContext;
use crate::ratelimit::Bucket;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fluent_bundle::FluentValue;
use maud::Markup;
use portal_core::Portal;
use portal_core::service::{AuthError, Principal};
use portal_core::user::Role;
use portal_core::values::Language;
use serde::Deserialize;
use std::fmt::Display;
use std::sync::Arc;

/// How long the language choice is remembered.
const LANG_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

#[derive(Deserialize, Default)]
#[serde(default)]
struct LangQuery {
    lang: Option<String>,
}

/// The `?lang=` of a query, if it names a language.
fn chosen_lang(raw_query: Option<&str>) -> Option<Language> {
    let q: LangQuery = serde_html_form::from_str(raw_query.unwrap_or_default()).unwrap_or_default();
    q.lang.and_then(|l| Language::parse(&l).ok())
}

/// The page language from the request alone: `?lang=`, then the language cookie, then German.
pub(crate) fn lang_from_request(
    config: &HttpConfig,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> Language {
    chosen_lang(raw_query)
        .or_else(|| cookie_lang(config, headers))
        .unwrap_or(Language::De)
}

fn cookie_lang(config: &HttpConfig, headers: &HeaderMap) -> Option<Language> {
    cookies::read(headers, config, CookieName::Lang).and_then(|l| Language::parse(&l).ok())
}

/// A local path to go to after login: relative, on this site, not a scheme or protocol-relative
/// URL. Anything else gives `None` (callers fall back to the home page).
pub(crate) fn safe_next(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && !raw.contains(['\\', '\r', '\n', '\t'])
        && raw.len() <= 4096;
    ok.then(|| raw.to_owned())
}

/// What the frame of a page needs: language, base path, the user for the navigation, the CSRF
/// token of the logout form and the page's own path and query (for the language switch).
#[derive(Debug, Clone)]
pub(crate) struct Shell {
    /// The page language.
    pub(crate) lang: Language,
    /// The path the pages are mounted under ([`HttpConfig::public_path`]; empty at the root).
    pub(crate) base: String,
    /// The token for the page's forms (hidden `csrf_token` field).
    pub(crate) csrf: String,
    /// The logged-in user, when the session cookie names a live session.
    pub(crate) principal: Option<Principal>,
    /// The request path (below the base path).
    pub(crate) path: String,
    /// The query parameters, in order.
    pub(crate) query: Vec<(String, String)>,
    /// Whether "Administrator kontaktieren" reaches anyone: offered only then.
    pub(crate) contact_admins: bool,
    /// The message the previous form's redirect left for this page ([`Flash`]), if any.
    pub(crate) flash: Option<Flash>,
    /// The failed form sent back to this page ([`Kept`]), if any.
    pub(crate) kept: Option<Kept>,
}

impl Shell {
    /// A link to a path of the web UI ([`urls`]), under the base path.
    pub(crate) fn href(&self, path: impl Display) -> String {
        urls::under(&self.base, path)
    }

    /// The message `key` in the page language.
    pub(crate) fn t(&self, key: &'static str) -> Text {
        i18n::text(self.lang, key)
    }

    /// The message `key` in the page language, with its arguments.
    pub(crate) fn t_with(
        &self,
        key: &'static str,
        args: impl IntoIterator<Item = (&'static str, FluentValue<'static>)>,
    ) -> Text {
        i18n::text_with(self.lang, key, args)
    }

    /// The first value of a query parameter.
    pub(crate) fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a page handler knows about its request.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The shared state.
    pub(crate) state: AppState,
    /// The page's frame.
    pub(crate) shell: Arc<Shell>,
    /// The request's headers.
    pub(crate) headers: HeaderMap,
    /// Where the request comes from.
    pub(crate) client: ClientContext,
    /// The fields of the request's form, without secrets (for [`Ctx::back`]).
    submitted: Submitted,
    scope: PageScope,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("lang", &self.shell.lang)
            .field("path", &self.shell.path)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Ctx {
    type Target = Shell;
    fn deref(&self) -> &Shell {
        &self.shell
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let config = state.config();
        let headers = parts.headers.clone();
        // The page layer puts a scope in every page request; a detached one keeps this usable
        // (cookies then go nowhere) where a handler runs without it.
        let scope = parts
            .extensions
            .get::<PageScope>()
            .cloned()
            .unwrap_or_default();
        let chosen = chosen_lang(parts.uri.query());
        if let Some(l) = chosen {
            scope.cookie(cookies::set(
                config,
                CookieName::Lang,
                l.code(),
                Some(LANG_COOKIE_SECONDS),
            ));
        }
        let preference = chosen.or_else(|| cookie_lang(config, &headers));
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
                    scope.cookie(cookies::clear(config, CookieName::Session));
                }
                Err(e) => return Err(e.into()),
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
                        scope.cookie(cookies::set(config, CookieName::Csrf, &n, None));
                        n
                    });
                csrf::pre_session_token(config, &nonce)
            }
        };
        // "Administrator kontaktieren" only where the core would send it (a customer's user whose
        // customer has an administrator): one query, for employees only.
        let contact_admins = match &principal {
            Some(p) if p.user().role() == Role::Employee && p.user().customer_id().is_some() => {
                state.portal().may_contact_admins(&p.actor()).await?
            }
            _ => false,
        };
        let client = parts
            .extensions
            .get::<ClientContext>()
            .cloned()
            .unwrap_or_default();
        // A flash is shown once: the page that shows it deletes it ([`Ctx::page_with`]), so a
        // reload shows the page without it; a redirect passes it on.
        let flash = Flash::read(config, &headers, state.now().timestamp());
        // The same for a failed form sent back here; only the page it names reads it.
        let kept = Kept::read(config, &headers, parts.uri.path(), state.now().timestamp());
        let submitted = parts
            .extensions
            .get::<Submitted>()
            .cloned()
            .unwrap_or_default();
        let shell = Arc::new(Shell {
            lang,
            base: config.public_path().to_owned(),
            csrf,
            principal,
            path: parts.uri.path().to_owned(),
            query: serde_html_form::from_str(parts.uri.query().unwrap_or_default())
                .unwrap_or_default(),
            contact_admins,
            flash,
            kept,
        });
        scope.set_shell(shell.clone());
        Ok(Self {
            state: state.clone(),
            shell,
            headers,
            client,
            submitted,
            scope,
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

    /// The value of a cookie of the request.
    pub(crate) fn cookie_value(&self, cookie: CookieName) -> Option<String> {
        cookies::read(&self.headers, self.config(), cookie)
    }

    /// Sets `cookie` on the answer (whatever it is) for `max_age` seconds (`None`: the browser
    /// session).
    pub(crate) fn set_cookie(&self, cookie: CookieName, value: &str, max_age: Option<i64>) {
        self.scope
            .cookie(cookies::set(self.config(), cookie, value, max_age));
    }

    /// Deletes `cookie` with the answer.
    pub(crate) fn clear_cookie(&self, cookie: CookieName) {
        self.scope.cookie(cookies::clear(self.config(), cookie));
    }

    /// Remembers the language for the pages to come (the language cookie).
    pub(crate) fn remember_language(&self, lang: Language) {
        self.set_cookie(CookieName::Lang, lang.code(), Some(LANG_COOKIE_SECONDS));
    }

    /// Adds a ready `Set-Cookie` value to the answer.
    pub(crate) fn add_cookie(&self, value: HeaderValue) {
        self.scope.cookie(value);
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
        if self.shell.flash.is_some() {
            self.clear_cookie(CookieName::Flash);
        }
        if self.shell.kept.is_some() {
            self.clear_cookie(CookieName::FormBack);
        }
        layout::render(&self.shell, status, title.as_ref(), content)
    }

    /// `303 See Other` to a path of the web UI (Post/Redirect/Get), under the base path.
    pub(crate) fn redirect(&self, to: impl Display) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&self.href(to)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }

    /// [`Self::redirect`] with a message for the page it leads to (a signed cookie, [`Flash`]).
    pub(crate) fn redirect_with(&self, notice: Notice, to: impl Display) -> Response {
        self.flash(notice, None);
        self.redirect(to)
    }

    /// [`Self::redirect`] with a message about someone (`$name`: "Ben Becker wurde gesperrt.").
    pub(crate) fn redirect_about(
        &self,
        notice: Notice,
        name: impl Into<String>,
        to: impl Display,
    ) -> Response {
        self.flash(notice, Some(name.into()));
        self.redirect(to)
    }

    /// The errors and input of a failed form sent back to this page (none if there is none).
    pub(crate) fn errors(&self) -> Errors {
        self.shell
            .kept
            .as_ref()
            .map(Kept::errors)
            .unwrap_or_default()
    }

    /// Whether the failed form sent back to this page is the one sent to `form`.
    pub(crate) fn kept_is_of(&self, form: &str) -> bool {
        self.shell.kept.as_ref().is_some_and(|k| k.is_of(form))
    }

    /// A failed form: `303` back to its page `to` (a path of the web UI, maybe with a query),
    /// with its `errors` and what was typed (no secrets) in a short-lived signed cookie, shown
    /// once there ([`Kept`], Post/Redirect/Get also after errors).
    pub(crate) fn back(&self, to: impl Display, errors: Errors) -> Response {
        let to = to.to_string();
        let page = to
            .split_once('?')
            .map_or(to.as_str(), |(p, _)| p)
            .to_owned();
        let kept = Kept::new(
            page,
            self.shell.path.clone(),
            &self.submitted,
            errors,
            self.state.now().timestamp(),
        );
        self.scope.cookie(kept.cookie(self.config()));
        self.redirect(to)
    }

    /// A button's action (activate, consent, approve, requeue, …) that the state refuses — `409`
    /// (already done, decided, or not in a state that allows it) or `404` (gone meanwhile): back
    /// to the page `to` with the reason, Post/Redirect/Get like a form's errors
    /// ([`layout::kept_notice`] shows it there). Any other error stays the error page.
    pub(crate) fn or_back(
        &self,
        to: impl Display,
        result: Result<Response, PageError>,
    ) -> Result<Response, PageError> {
        match result {
            Err(e) if matches!(e.status(), StatusCode::CONFLICT | StatusCode::NOT_FOUND) => {
                let mut errors = Errors::new();
                errors.general(e.message(self.lang));
                Ok(self.back(to, errors))
            }
            other => other,
        }
    }

    /// Leaves a message for the next page this browser opens (within a minute).
    pub(crate) fn flash(&self, notice: Notice, name: Option<String>) {
        let flash = Flash::new(notice, name, self.state.now().timestamp());
        self.scope.cookie(flash.cookie(self.config()));
    }

    /// Takes a token from the client's bucket, or the 429 page with `Retry-After`.
    pub(crate) fn limit(&self, bucket: Bucket) -> Result<(), PageError> {
        self.state
            .limiter()
            .take(bucket, self.client.ip)
            .map_err(|wait| {
                tracing::warn!(target: "portal_http", ?bucket, "rate limited (web)");
                PageError::code(crate::error::ErrorCode::RateLimited)
                    .retry_after(wait.as_secs() + 1)
            })
    }
}

/// A page that needs a login: without a live session the browser is sent to the login page
/// (and comes back here after it, for pages reached by GET).
pub(crate) struct Authed {
    /// The context.
    pub(crate) ctx: Ctx,
    /// The logged-in user.
    pub(crate) principal: Principal,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = Ctx::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match ctx.shell.principal.clone() {
            // R22: a user who must set up a second factor reaches only its setup pages, the
            // re-authentication they may need for it, and logout.
            Some(principal)
                if principal.second_factor_missing() && !is_setup_path(parts.uri.path()) =>
            {
                Err(ctx.redirect(urls::Mfa.to_string()))
            }
            Some(principal) => Ok(Self { ctx, principal }),
            None => {
                let back = if parts.method == axum::http::Method::GET {
                    let pq = parts
                        .uri
                        .path_and_query()
                        .map_or("/", axum::http::uri::PathAndQuery::as_str);
                    urls::with_query(urls::Login, &[("next", pq)])
                } else {
                    urls::Login.to_string()
                };
                Err(ctx.redirect(back))
            }
        }
    }
}

/// The pages a user who must set up a second factor may reach (R22).
fn is_setup_path(path: &str) -> bool {
    use axum_extra::routing::TypedPath;
    [
        urls::Mfa::PATH,
        urls::MfaTotp::PATH,
        urls::MfaTotpConfirm::PATH,
        urls::MfaPhone::PATH,
        urls::MfaPhoneConfirm::PATH,
        urls::MfaPresenceCode::PATH,
        urls::Reauth::PATH,
        urls::Logout::PATH,
    ]
    .contains(&path)
}

impl std::ops::Deref for Authed {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
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
