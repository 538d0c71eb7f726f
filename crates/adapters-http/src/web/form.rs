//! HTML form bodies (`application/x-www-form-urlencoded`) and the guard every unsafe web request
//! passes before its handler: same-site checks, content type, size, and the hidden
//! `csrf_token` field bound to the session (or, before login, to the pre-session cookie).

use super::ctx::lang_from_request;
use super::layout;
use crate::csrf;
use crate::error::ErrorCode;
use crate::middleware::body_limit;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;

/// The name of the hidden field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf_token";

/// A parsed form body: its fields in order (a name may repeat, like checkboxes). Missing fields
/// read as empty text, so a tampered form ends in a validation message, never a server error.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    /// Parses a URL-encoded body; `None` when it is not UTF-8 after decoding.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            fields.push((decode(k)?, decode(v)?));
        }
        Some(Self(fields))
    }

    /// The first value of a field ("" when missing).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.opt(name).unwrap_or("")
    }

    /// The first value of a field, if sent.
    pub(crate) fn opt(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field (checkboxes).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every field in order.
    pub(crate) fn all_pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Whether a checkbox was ticked.
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.opt(name).is_some()
    }
}

/// Percent-decoding with `+` as space; `None` for invalid UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a query parameter value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parameters of a query string.
pub(crate) fn query(parts_query: Option<&str>) -> FormData {
    parts_query
        .and_then(|q| FormData::parse(q.as_bytes()))
        .unwrap_or_default()
}

impl<S: Send + Sync> FromRequestParts<S> for FormData {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

fn is_form(v: &HeaderValue) -> bool {
    v.to_str().unwrap_or("").split(';').next().is_some_and(|m| {
        m.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The guard of every unsafe web request: `Sec-Fetch-Site` and `Origin` name this site, the body
/// is a URL-encoded form within the body limit, and its `csrf_token` field is the token the
/// request's cookies call for ([`csrf::check_token`]). The parsed form goes to the handler as
/// [`FormData`]. Failures answer with an HTML page: 403, 413, 415 or 400.
pub(crate) async fn form_guard(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !csrf::is_unsafe(req.method()) {
        return next.run(req).await;
    }
    let config = state.config();
    let lang = lang_from_request(config, req.headers(), req.uri().query());
    let base = layout::base_path(config);
    if let Err(why) = csrf::check_origin(config, req.headers()) {
        tracing::warn!(target: "portal_http", rejection = ?why, "web csrf check failed");
        return layout::bare_error(lang, base, StatusCode::FORBIDDEN, ErrorCode::CsrfFailed);
    }
    if !req.headers().get(header::CONTENT_TYPE).is_some_and(is_form) {
        return layout::bare_error(
            lang,
            base,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
        );
    }
    let limit = body_limit(config, req.uri().path());
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return layout::bare_error(
            lang,
            base,
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
        );
    };
    let Some(form) = FormData::parse(&bytes) else {
        return layout::bare_error(
            lang,
            base,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
        );
    };
    if let Err(why) = csrf::check_token(config, &parts.headers, form.opt(CSRF_FIELD)) {
        tracing::warn!(target: "portal_http", rejection = ?why, "web csrf check failed");
        return layout::bare_error(lang, base, StatusCode::FORBIDDEN, ErrorCode::CsrfFailed);
    }
    parts.extensions.insert(form);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_percent_and_repeated_fields() {
        let f = FormData::parse(b"a=x+y%21&p=one&p=two&e=&flag&bad=%zz&u=%C3%A4").unwrap();
        assert_eq!(f.get("a"), "x y!");
        assert_eq!(f.all("p"), vec!["one", "two"]);
        assert_eq!(f.opt("e"), Some(""));
        assert!(f.checked("flag"));
        assert_eq!(f.get("missing"), "");
        assert_eq!(f.get("bad"), "%zz");
        assert_eq!(f.get("u"), "ä");
        assert!(FormData::parse(b"a=%FF").is_none());
        assert_eq!(FormData::parse(b"t=%4").unwrap().get("t"), "%4");
    }

    #[test]
    fn encoding_round_trips() {
        let s = "a b&c=d/é";
        let f = FormData::parse(format!("x={}", encode(s)).as_bytes()).unwrap();
        assert_eq!(f.get("x"), s);
    }
}
