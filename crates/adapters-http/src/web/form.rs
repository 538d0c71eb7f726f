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

use super::error::PageError;
use crate::csrf;
use crate::error::ErrorCode;
use crate::middleware::body_limit;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// Whether a body is `multipart/form-data`: only forms that send a file use it (the customer
/// import, [`UPLOAD_PATHS`]).
fn is_multipart(v: &HeaderValue) -> bool {
    media_type_is(v, "multipart/form-data")
}

/// The pages whose forms send a file (`multipart/form-data`); every other form is URL-encoded.
const UPLOAD_PATHS: [&str; 1] = ["/operator/customers/import"];

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
    let multipart = content_type.is_some_and(is_multipart)
        && UPLOAD_PATHS.iter().any(|p| req.uri().path().ends_with(p));
    if !multipart && !content_type.is_some_and(is_form) {
        return PageError::code(ErrorCode::UnsupportedMediaType).into_response();
    }
    let limit = body_limit(config, req.uri().path());
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return PageError::code(ErrorCode::PayloadTooLarge).into_response();
    };
    let form = if multipart {
        let Some(fields) = multipart_fields(&parts.headers, bytes.clone()).await else {
            return PageError::code(ErrorCode::InvalidRequest).into_response();
        };
        CsrfField {
            token: fields
                .into_iter()
                .find_map(|(n, v)| (n == CSRF_FIELD).then_some(v)),
        }
    } else {
        let Ok(form) = serde_html_form::from_bytes::<CsrfField>(&bytes) else {
            return PageError::code(ErrorCode::InvalidRequest).into_response();
        };
        form
    };
    if let Err(why) = csrf::check_token(config, &parts.headers, form.token.as_deref()) {
        tracing::warn!(target: "portal_http", rejection = ?why, "web csrf check failed");
        return PageError::code(ErrorCode::CsrfFailed).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
