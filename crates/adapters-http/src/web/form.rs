//! HTML forms: the guard every unsafe web request passes before its handler (same-site checks,
//! content type, size, and the hidden `csrf_token` field bound to the session or, before login,
//! to the pre-session cookie), and the typed extractors of form bodies and queries.
//!
//! Form bodies are typed structs read by `axum-extra`'s [`Form`](axum_extra::extract::Form),
//! which uses `serde_html_form`: a repeated field (checkboxes) fills a `Vec<String>`. Every field
//! is a `String` (or a `Vec`, or an `Option` for a checkbox) with `#[serde(default)]`, so a
//! missing or tampered field reaches the handler as empty text and ends in the page's validation
//! message, never in a server error; the handler parses the text into the core's values. A body
//! that is no form at all (a field sent twice where one is expected) is the 400 page.
//!
//! A form that fails is not answered with the page again (Post/Redirect/Get also after errors):
//! its handler sends the browser back to the form's page ([`Ctx::back`](super::ctx::Ctx::back))
//! with a [`Kept`] in a short-lived signed cookie ([`CookieName::FormBack`](crate::cookies::CookieName::FormBack),
//! sealed like the flash message, [`super::flash`]): the messages of the fields and of the form,
//! and what was typed, except secrets ([`is_secret`]: passwords, codes, tokens). The page the
//! cookie names shows them once and deletes the cookie, so a reload, back or a new tab shows the
//! form, never a re-POST prompt; a forged, foreign or expired cookie is ignored. What a form
//! shows only once (a recovery code, the QR code of a setup) stays the POST's answer.

use super::error::PageError;
use super::flash;
use super::layout::Errors;
use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::ErrorCode;
use crate::middleware::BodyLimit;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// The name of the hidden field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf_token";

/// A form body of type `T` (see the module docs); a body that does not fit is the 400 page.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Form<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        axum_extra::extract::Form::<T>::from_request(req, state)
            .await
            .map(|f| Self(f.0))
            .map_err(|_| PageError::code(ErrorCode::InvalidRequest))
    }
}

/// The query of a page as `T`. Queries are navigation state (`?q=`, `?cursor=`):
/// one that does not fit reads as `T::default()`, never as an error page.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let raw = parts.uri.query().unwrap_or_default();
        Ok(Self(serde_html_form::from_str(raw).unwrap_or_default()))
    }
}

fn media_type_is(v: &HeaderValue, expected: &str) -> bool {
    v.to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

fn is_form(v: &HeaderValue) -> bool {
    media_type_is(v, "application/x-www-form-urlencoded")
}

/// Whether a body is `multipart/form-data`: only forms that send a file use it (the routes whose
/// [`BodyLimit`] allows it: the customer import).
fn is_multipart(v: &HeaderValue) -> bool {
    media_type_is(v, "multipart/form-data")
}

/// The text fields of a `multipart/form-data` body (`axum`'s `Multipart`, on `multer`), a file's
/// content as text; `None` when the body is no valid multipart form. A field sent twice keeps
/// its first value.
pub(crate) async fn multipart_fields(
    headers: &axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Option<Vec<(String, String)>> {
    let mut req = Request::new(Body::from(bytes));
    *req.headers_mut() = headers.clone();
    let mut multipart = axum::extract::Multipart::from_request(req, &())
        .await
        .ok()?;
    let mut fields: Vec<(String, String)> = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.ok()?;
        if !fields.iter().any(|(n, _)| *n == name) {
            fields.push((name, value));
        }
    }
    Some(fields)
}

/// How long a failed form's input waits for its page, in seconds.
pub(crate) const KEPT_SECONDS: i64 = 60;

/// The longest value kept of one field (longer ones are not kept: a cookie holds about 4 KB).
const MAX_KEPT_VALUE: usize = 2_000;

/// The most a [`Kept`] may take sealed; beyond it the typed values are dropped, the messages stay.
const MAX_SEALED: usize = 3_500;

/// A path's stand-in in a [`Kept`]: 16 bytes of its SHA-256, base64url.
fn digest(path: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(path.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash[..16])
}

/// Whether a field's value must never be kept: passwords, one-time codes, tokens, secrets, a
/// passkey's answer.
pub(crate) fn is_secret(name: &str) -> bool {
    name == CSRF_FIELD
        || name == "code"
        || name == "credential"
        || name.ends_with("_code")
        || ["password", "secret", "token"]
            .iter()
            .any(|s| name.contains(s))
}

/// The fields of a form as sent, without secrets ([`is_secret`]) and over-long values: what
/// [`form_guard`] leaves in the request's extensions for [`Ctx::back`](super::ctx::Ctx::back).
#[derive(Debug, Clone, Default)]
pub(crate) struct Submitted(pub(crate) Vec<(String, String)>);

impl Submitted {
    fn of(fields: Vec<(String, String)>) -> Self {
        Self(
            fields
                .into_iter()
                .filter(|(n, v)| !is_secret(n) && v.chars().count() <= MAX_KEPT_VALUE)
                .collect(),
        )
    }
}

/// A failed form, on its way back to its page: see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Kept {
    /// The page that shows it (the [`digest`] of its path below the base path: a path may hold
    /// a link's token, which stays out of the cookie).
    #[serde(rename = "t")]
    pub(crate) to: String,
    /// The address the form was sent to (its [`digest`]; pages with several forms show it at the
    /// right one).
    #[serde(rename = "f")]
    pub(crate) form: String,
    /// What was typed (no secrets).
    #[serde(rename = "v", default)]
    pub(crate) values: Vec<(String, String)>,
    /// The messages next to fields.
    #[serde(rename = "x", default)]
    pub(crate) fields: Vec<(String, String)>,
    /// The messages of the whole form.
    #[serde(rename = "g", default)]
    pub(crate) general: Vec<String>,
    /// Until when it may be shown (Unix seconds).
    #[serde(rename = "e")]
    expires: i64,
}

impl Kept {
    /// `errors` of the form sent to `form`, for the page `to`, valid for [`KEPT_SECONDS`].
    pub(crate) fn new(
        to: String,
        form: String,
        submitted: &Submitted,
        errors: Errors,
        now: i64,
    ) -> Self {
        let (fields, general) = errors.into_parts();
        Self {
            to: digest(&to),
            form: digest(&form),
            values: submitted.0.clone(),
            fields,
            general,
            expires: now + KEPT_SECONDS,
        }
    }

    /// The signed cookie value, within [`MAX_SEALED`] (typed values dropped if need be).
    pub(crate) fn seal(&self, config: &HttpConfig) -> String {
        let sealed = flash::seal(config, flash::FORM_BACK, self);
        if sealed.len() <= MAX_SEALED {
            return sealed;
        }
        let mut lean = self.clone();
        lean.values.clear();
        flash::seal(config, flash::FORM_BACK, &lean)
    }

    /// The `Set-Cookie` that carries it.
    pub(crate) fn cookie(&self, config: &HttpConfig) -> HeaderValue {
        cookies::set(
            config,
            CookieName::FormBack,
            &self.seal(config),
            Some(KEPT_SECONDS),
        )
    }

    /// A sealed value, when its signature holds and it has not expired at `now`.
    pub(crate) fn open(config: &HttpConfig, value: &str, now: i64) -> Option<Self> {
        let kept: Self = flash::open(config, flash::FORM_BACK, value)?;
        (now <= kept.expires).then_some(kept)
    }

    /// The kept form of a request's cookie for the page at `path`, if it has a valid one.
    pub(crate) fn read(
        config: &HttpConfig,
        headers: &axum::http::HeaderMap,
        path: &str,
        now: i64,
    ) -> Option<Self> {
        let value = cookies::read(headers, config, CookieName::FormBack)?;
        Self::open(config, &value, now).filter(|k| k.to == digest(path))
    }

    /// Whether it is the failed form sent to `form`.
    pub(crate) fn is_of(&self, form: &str) -> bool {
        self.form == digest(form)
    }

    /// The messages and values as the page's [`Errors`].
    pub(crate) fn errors(&self) -> Errors {
        Errors::from_parts(
            self.fields.clone(),
            self.general.clone(),
            self.values.clone(),
        )
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "csrf_token")]
    token: Option<String>,
}

/// The guard of every unsafe web request: `Sec-Fetch-Site` and `Origin` name this site, the body
/// is a URL-encoded form (or, on the pages that take a file, a multipart form) within the body
/// limit, and its `csrf_token` field is the token the
/// request's cookies call for ([`csrf::check_token`]). The body goes on to the handler
/// unchanged. Failures answer with the bare error page: 403, 413, 415 or 400.
pub(crate) async fn form_guard(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !csrf::is_unsafe(req.method()) {
        return next.run(req).await;
    }
    let config = state.config();
    if let Err(why) = csrf::check_origin(config, req.headers()) {
        tracing::warn!(target: "portal_http", rejection = ?why, "web csrf check failed");
        return PageError::code(ErrorCode::CsrfFailed).into_response();
    }
    let content_type = req.headers().get(header::CONTENT_TYPE);
    let limit = BodyLimit::of(&req, config);
    let multipart = content_type.is_some_and(is_multipart) && limit.multipart;
    if !multipart && !content_type.is_some_and(is_form) {
        return PageError::code(ErrorCode::UnsupportedMediaType).into_response();
    }
    let (mut parts, body) = req.into_parts();
    let submitted;
    let Ok(bytes) = axum::body::to_bytes(body, limit.bytes).await else {
        return PageError::code(ErrorCode::PayloadTooLarge).into_response();
    };
    let form = if multipart {
        let Some(fields) = multipart_fields(&parts.headers, bytes.clone()).await else {
            return PageError::code(ErrorCode::InvalidRequest).into_response();
        };
        let token = fields
            .iter()
            .find_map(|(n, v)| (n == CSRF_FIELD).then(|| v.clone()));
        submitted = Submitted::of(fields);
        CsrfField { token }
    } else {
        let Ok(form) = serde_html_form::from_bytes::<CsrfField>(&bytes) else {
            return PageError::code(ErrorCode::InvalidRequest).into_response();
        };
        let fields =
            serde_html_form::from_bytes::<Vec<(String, String)>>(&bytes).unwrap_or_default();
        submitted = Submitted::of(fields);
        form
    };
    if let Err(why) = csrf::check_token(config, &parts.headers, form.token.as_deref()) {
        tracing::warn!(target: "portal_http", rejection = ?why, "web csrf check failed");
        return PageError::code(ErrorCode::CsrfFailed).into_response();
    }
    parts.extensions.insert(submitted);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CookieKey;

    fn config(byte: u8) -> HttpConfig {
        HttpConfig::new("https://p.example", CookieKey::from_bytes([byte; 32])).unwrap()
    }

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn secrets_and_long_values_are_never_kept() {
        let long = "x".repeat(MAX_KEPT_VALUE + 1);
        let kept = Submitted::of(pairs(&[
            ("email", "ben@example.com"),
            ("password", "pw"),
            ("password_confirmation", "pw"),
            ("current_password", "pw"),
            ("legacy_password", "pw"),
            ("code", "123456"),
            ("recovery_code", "abc"),
            ("csrf_token", "t"),
            ("client_secret", "s"),
            ("message", &long),
            ("permission", "a"),
            ("permission", "b"),
        ]));
        assert_eq!(
            kept.0,
            pairs(&[
                ("email", "ben@example.com"),
                ("permission", "a"),
                ("permission", "b")
            ])
        );
    }

    fn sample(now: i64) -> Kept {
        let mut errors = Errors::new();
        errors.field("email", "Bitte prüfen");
        errors.general("Nicht möglich");
        Kept::new(
            "/profile".into(),
            "/profile/email".into(),
            &Submitted::of(pairs(&[("email", "ben@example"), ("password", "geheim")])),
            errors,
            now,
        )
    }

    #[test]
    fn a_kept_form_opens_for_its_page_until_it_expires() {
        let c = config(1);
        let kept = sample(1_000);
        let sealed = kept.seal(&c);
        assert!(
            !sealed.contains("ben") && !sealed.contains("profile"),
            "{sealed}"
        );
        let opened = Kept::open(&c, &sealed, 1_000 + KEPT_SECONDS).expect("opens");
        assert_eq!(opened, kept);
        assert!(opened.is_of("/profile/email") && !opened.is_of("/profile"));
        let errors = opened.errors();
        assert_eq!(errors.get("email"), Some("Bitte prüfen"));
        assert_eq!(errors.kept("email"), Some("ben@example"));
        assert_eq!(errors.kept("password"), None);
        assert_eq!(Kept::open(&c, &sealed, 1_001 + KEPT_SECONDS), None);
    }

    #[test]
    fn a_forged_foreign_or_flash_value_is_refused() {
        let c = config(1);
        let sealed = sample(1_000).seal(&c);
        assert_eq!(Kept::open(&config(2), &sealed, 1_000), None);
        let (_, tag) = sealed.split_once('.').unwrap();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"t":"x","f":"y","g":["Konto geloescht"],"e":9999}"#,
        );
        assert_eq!(Kept::open(&c, &format!("{forged}.{tag}"), 1_000), None);
        // A flash message's signature does not open as a kept form.
        let flash = super::flash::Flash::new(super::super::urls::Notice::Saved, None, 1_000);
        assert_eq!(Kept::open(&c, &flash.seal(&c), 1_000), None);
        for garbage in ["", ".", "abc", "a.b.c", "%%.%%"] {
            assert_eq!(Kept::open(&c, garbage, 1_000), None, "{garbage}");
        }
    }

    #[test]
    fn a_kept_form_too_big_for_a_cookie_keeps_its_messages_only() {
        let c = config(1);
        let values: Vec<(String, String)> = (0..10)
            .map(|i| (format!("f{i}"), "y".repeat(MAX_KEPT_VALUE)))
            .collect();
        let mut errors = Errors::new();
        errors.general("Zu viel");
        let kept = Kept::new("/a".into(), "/a".into(), &Submitted(values), errors, 0);
        let sealed = kept.seal(&c);
        assert!(sealed.len() <= MAX_SEALED, "{}", sealed.len());
        let opened = Kept::open(&c, &sealed, 0).unwrap();
        assert!(opened.values.is_empty());
        assert_eq!(opened.general, ["Zu viel"]);
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Sample {
        a: String,
        p: Vec<String>,
        flag: Option<String>,
        missing: String,
    }

    #[test]
    fn forms_decode_plus_percent_repeated_fields_and_default_missing_ones() {
        let f: Sample =
            serde_html_form::from_str("a=x+y%21&p=one&p=two&flag=1&u=%C3%A4&csrf_token=t").unwrap();
        assert_eq!(f.a, "x y!");
        assert_eq!(f.p, ["one", "two"]);
        assert_eq!(f.flag.as_deref(), Some("1"));
        assert_eq!(f.missing, "");
        let one: Sample = serde_html_form::from_str("p=only&flag=").unwrap();
        assert_eq!(one.p, ["only"]);
        assert_eq!(one.flag, None, "an empty checkbox value is no tick");
        assert!(serde_html_form::from_str::<Sample>("a=1&a=2").is_err());
    }
}
