//! CSRF protection of every unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`).
//!
//! Three checks, all required:
//! 1. `Sec-Fetch-Site`, when sent, is `same-origin` or `none`.
//! 2. `Origin`, when sent, is the configured public origin.
//! 3. `X-CSRF-Token` (or, for the web UI's HTML forms, the hidden `csrf_token` field; see
//!    [`check_token`]) carries the token `GET /api/v1/auth/csrf` hands out: with a session cookie,
//!    `HMAC-SHA-256(cookie_key, "session" ‖ session token)` (bound to that session: a token of
//!    another session fails); without one, `HMAC-SHA-256(cookie_key, "pre-session" ‖ nonce)` where
//!    the nonce is the `portal-csrf` cookie (a signed double-submit cookie, so login and
//!    registration are protected too).
//!
//! The token is computed from cookies alone (no database lookup), so the check runs before any
//! handler and costs one HMAC.

use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use axum::http::{HeaderMap, Method};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The request header that carries the token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why a request failed the CSRF check (the answer is the same `csrf_failed` for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRejection {
    /// `Sec-Fetch-Site` says another site.
    CrossSite,
    /// `Origin` is not the public origin.
    ForeignOrigin,
    /// No token, or not the one for these cookies.
    BadToken,
}

fn mac(config: &HttpConfig, label: &str, value: &str) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(config.cookie_key.bytes())
        .expect("HMAC takes any key length");
    m.update(label.as_bytes());
    m.update(&[0]);
    m.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// The token for a session token.
#[must_use]
pub fn session_token(config: &HttpConfig, session: &str) -> String {
    mac(config, "session", session)
}

/// The token for a pre-session nonce.
#[must_use]
pub fn pre_session_token(config: &HttpConfig, nonce: &str) -> String {
    mac(config, "pre-session", nonce)
}

/// The token the request's cookies call for, if they allow one.
#[must_use]
pub fn expected_token(config: &HttpConfig, headers: &HeaderMap) -> Option<String> {
    if let Some(session) = cookies::read(headers, config, CookieName::Session) {
        return Some(session_token(config, &session));
    }
    cookies::read(headers, config, CookieName::Csrf).map(|n| pre_session_token(config, &n))
}

/// Whether the method changes state.
#[must_use]
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks an unsafe request: [`check_origin`], then the `X-CSRF-Token` header with
/// [`check_token`].
///
/// # Errors
/// Which check failed.
pub fn check(config: &HttpConfig, headers: &HeaderMap) -> Result<(), CsrfRejection> {
    check_origin(config, headers)?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    check_token(config, headers, sent)
}

/// The first two checks: `Sec-Fetch-Site` and `Origin`, when sent, name this site.
///
/// # Errors
/// [`CsrfRejection::CrossSite`] or [`CsrfRejection::ForeignOrigin`].
pub fn check_origin(config: &HttpConfig, headers: &HeaderMap) -> Result<(), CsrfRejection> {
    let site = headers
        .get("sec-fetch-site")
        .map(|s| s.to_str().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(site) = &site
        && site != "same-origin"
        && site != "none"
    {
        return Err(CsrfRejection::CrossSite);
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
        // Under `Referrer-Policy: no-referrer` (every web page) a browser sends `Origin: null`
        // even to its own site; it counts only where the browser vouches for the same origin.
        let vouched_null = origin == "null" && site.as_deref() == Some("same-origin");
        if origin != config.public_origin() && !vouched_null {
            return Err(CsrfRejection::ForeignOrigin);
        }
    }
    Ok(())
}

/// The third check: `sent` (from the header, or the web UI's hidden form field) is the token
/// the request's cookies call for ([`expected_token`]), compared in constant time.
///
/// # Errors
/// [`CsrfRejection::BadToken`].
pub fn check_token(
    config: &HttpConfig,
    headers: &HeaderMap,
    sent: Option<&str>,
) -> Result<(), CsrfRejection> {
    let sent = sent.ok_or(CsrfRejection::BadToken)?;
    let expected = expected_token(config, headers).ok_or(CsrfRejection::BadToken)?;
    if portal_core::secret::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(CsrfRejection::BadToken)
    }
}

/// Random bytes in a [`new_nonce`].
const NONCE_BYTES: usize = 32;
/// Characters of a [`new_nonce`]: its bytes in unpadded base64url.
pub(crate) const NONCE_CHARS: usize = (NONCE_BYTES * 4).div_ceil(3);

/// A fresh pre-session nonce (256 bits, base64url).
#[must_use]
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).expect("operating system randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CookieKey;
    use axum::http::HeaderValue;

    fn config() -> HttpConfig {
        HttpConfig::new("https://p.example", CookieKey::from_bytes([3; 32])).unwrap()
    }

    #[test]
    fn a_nonce_has_the_length_readers_check() {
        assert_eq!(NONCE_CHARS, 43);
        assert_eq!(new_nonce().len(), NONCE_CHARS);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_session_bound_token_passes_only_with_its_session() {
        let c = config();
        let t = session_token(&c, "tok-a");
        let ok = headers(&[
            ("cookie", "__Host-portal-session=tok-a"),
            ("x-csrf-token", &t),
        ]);
        assert_eq!(check(&c, &ok), Ok(()));
        let other = headers(&[
            ("cookie", "__Host-portal-session=tok-b"),
            ("x-csrf-token", &t),
        ]);
        assert_eq!(check(&c, &other), Err(CsrfRejection::BadToken));
        let none = headers(&[("cookie", "__Host-portal-session=tok-a")]);
        assert_eq!(check(&c, &none), Err(CsrfRejection::BadToken));
    }

    #[test]
    fn pre_session_tokens_need_their_nonce_cookie() {
        let c = config();
        let t = pre_session_token(&c, "n1");
        let ok = headers(&[("cookie", "__Host-portal-csrf=n1"), ("x-csrf-token", &t)]);
        assert_eq!(check(&c, &ok), Ok(()));
        let no_cookie = headers(&[("x-csrf-token", &t)]);
        assert_eq!(check(&c, &no_cookie), Err(CsrfRejection::BadToken));
    }

    #[test]
    fn cross_site_and_foreign_origins_fail_even_with_a_token() {
        let c = config();
        let t = pre_session_token(&c, "n1");
        let cross = headers(&[
            ("cookie", "__Host-portal-csrf=n1"),
            ("x-csrf-token", &t),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(check(&c, &cross), Err(CsrfRejection::CrossSite));
        let origin = headers(&[
            ("cookie", "__Host-portal-csrf=n1"),
            ("x-csrf-token", &t),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(check(&c, &origin), Err(CsrfRejection::ForeignOrigin));
        let same = headers(&[
            ("cookie", "__Host-portal-csrf=n1"),
            ("x-csrf-token", &t),
            ("origin", "https://p.example"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&c, &same), Ok(()));
    }

    #[test]
    fn a_null_origin_passes_only_when_the_browser_says_same_origin() {
        let c = config();
        let t = pre_session_token(&c, "n1");
        let vouched = headers(&[
            ("cookie", "__Host-portal-csrf=n1"),
            ("x-csrf-token", &t),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&c, &vouched), Ok(()));
        for site in [None, Some("none"), Some("cross-site"), Some("same-site")] {
            let mut h = headers(&[
                ("cookie", "__Host-portal-csrf=n1"),
                ("x-csrf-token", &t),
                ("origin", "null"),
            ]);
            if let Some(s) = site {
                h.insert("sec-fetch-site", HeaderValue::from_str(s).unwrap());
            }
            assert!(check(&c, &h).is_err(), "{site:?}");
        }
    }
}
