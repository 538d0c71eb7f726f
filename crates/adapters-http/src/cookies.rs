//! Every cookie of the API and the web UI: names, reading them from a request, and building
//! `Set-Cookie` values. This module is the only place that knows a cookie's name and flags.
//!
//! | cookie | holds | lifetime | `SameSite` | set by |
//! | --- | --- | --- | --- | --- |
//! | `__Host-portal-session` | the session token | the session's absolute expiry | `Lax` | API, web |
//! | `__Host-portal-mfa` | the pending second step's token | a few minutes | `Strict` | API, web |
//! | `__Host-portal-device` | the remembered device's token | 30 days | `Strict` | API, web |
//! | `__Host-portal-known-browser` | a signed mark that this browser signed in to an account ([`crate::known_browser`]; exempts it from other addresses' login throttles) | a year | `Strict` | API, web |
//! | `__Host-portal-csrf` | a random nonce (pre-session CSRF) | browser session | `Strict` | API, web |
//! | `__Host-portal-lang` | the chosen language (`de`, `en`) | a year | `Lax` | web |
//! | `__Host-portal-ticket` | a registration in progress: its ticket and the address the code went to | the pending registration's lifetime | `Strict` | web |
//! | `__Host-portal-email-ticket` | an e-mail change in progress: its ticket | the code's lifetime | `Strict` | web |
//! | `__Host-portal-flash` | the next page's message, signed ([`crate::web`]'s flash: what a form's redirect asks the page to say once) | a minute | `Strict` | web |
//!
//! All are `HttpOnly`, `Path=/`, without `Domain`, and `Secure` with the `__Host-` prefix unless
//! the development switch is on (then the prefix is dropped: `portal-session`, …). The tokens
//! are opaque and random; the server keeps only their SHA-256 (the known-browser cookie and the
//! web UI's flash message are the signed values, see [`crate::known_browser`]).
//!
//! **Why not `axum-extra`'s `CookieJar`.** Its jars travel in the handler's return value; here
//! cookies are also set where no handler returns them (the web UI's error pages, rendered by a
//! layer, carry the cookies the request set), and both the API's `Reply` and the web UI's page
//! context collect them. `SignedCookieJar`/`PrivateCookieJar` would add nothing: no value is
//! trusted because of its cookie (tokens are looked up by their hash, the language is a
//! preference, a tampered ticket is refused by the core), and the [`CookieKey`](crate::CookieKey)'s
//! HMAC signs the CSRF tokens derived from these cookies ([`crate::csrf`]), not the cookies. What
//! remains is a name, a value and fixed flags: the dozen lines below, with tests.

use crate::config::HttpConfig;
use axum::http::{HeaderMap, HeaderValue, header};

/// Which cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieName {
    /// The session.
    Session,
    /// The pending second step of a login.
    PendingMfa,
    /// The remembered device.
    Device,
    /// A browser that signed in to an account before (login throttling, R14).
    KnownBrowser,
    /// The pre-session CSRF nonce.
    Csrf,
    /// The web UI's language choice (a preference, not a secret).
    Lang,
    /// The web UI's registration in progress.
    Ticket,
    /// The web UI's e-mail change in progress.
    EmailTicket,
    /// The web UI's message for the next page (signed, short-lived).
    Flash,
    /// A failed form's input (never secrets) and errors for the page it is sent back to (signed,
    /// short-lived).
    FormBack,
}

impl CookieName {
    /// Every cookie.
    pub const ALL: [Self; 10] = [
        Self::Session,
        Self::PendingMfa,
        Self::Device,
        Self::KnownBrowser,
        Self::Csrf,
        Self::Lang,
        Self::Ticket,
        Self::EmailTicket,
        Self::Flash,
        Self::FormBack,
    ];

    const fn base(self) -> &'static str {
        match self {
            Self::Session => "portal-session",
            Self::PendingMfa => "portal-mfa",
            Self::Device => "portal-device",
            Self::KnownBrowser => "portal-known-browser",
            Self::Csrf => "portal-csrf",
            Self::Lang => "portal-lang",
            Self::Ticket => "portal-ticket",
            Self::EmailTicket => "portal-email-ticket",
            Self::Flash => "portal-flash",
            Self::FormBack => "portal-form",
        }
    }

    const fn same_site(self) -> &'static str {
        match self {
            Self::Session | Self::Lang => "Lax",
            Self::PendingMfa
            | Self::Device
            | Self::KnownBrowser
            | Self::Csrf
            | Self::Ticket
            | Self::EmailTicket
            | Self::Flash
            | Self::FormBack => "Strict",
        }
    }

    /// The cookie's name under these settings.
    #[must_use]
    pub fn name(self, config: &HttpConfig) -> String {
        if config.secure_cookies() {
            format!("__Host-{}", self.base())
        } else {
            self.base().to_owned()
        }
    }
}

/// The value of a cookie in the request (the first one with this name), if any.
#[must_use]
pub fn read(headers: &HeaderMap, config: &HttpConfig, cookie: CookieName) -> Option<String> {
    let name = cookie.name(config);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value that sets `cookie` to `value` for `max_age` seconds (`None`: until the
/// browser closes).
#[must_use]
pub fn set(
    config: &HttpConfig,
    cookie: CookieName,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut s = format!(
        "{}={value}; Path=/; HttpOnly; SameSite={}",
        cookie.name(config),
        cookie.same_site()
    );
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={}", age.max(0)));
    }
    if config.secure_cookies() {
        s.push_str("; Secure");
    }
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes `cookie` (`Max-Age=0`).
#[must_use]
pub fn clear(config: &HttpConfig, cookie: CookieName) -> HeaderValue {
    set(config, cookie, "", Some(0))
}

/// Appends `Set-Cookie` headers to a response's headers.
pub fn append(headers: &mut HeaderMap, values: impl IntoIterator<Item = HeaderValue>) {
    for v in values {
        headers.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CookieKey;

    #[test]
    fn secure_cookies_have_the_host_prefix_and_every_attribute() {
        let c = HttpConfig::new("https://p.example", CookieKey::from_bytes([0; 32])).unwrap();
        let v = set(&c, CookieName::Session, "abc", Some(60));
        assert_eq!(
            v.to_str().unwrap(),
            "__Host-portal-session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let dev = c.insecure_development_cookies();
        let v = clear(&dev, CookieName::PendingMfa);
        assert_eq!(
            v.to_str().unwrap(),
            "portal-mfa=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn every_cookie_is_http_only_on_the_whole_site_and_secure_unless_in_development() {
        let c = HttpConfig::new("https://p.example", CookieKey::from_bytes([0; 32])).unwrap();
        let dev = c.clone().insecure_development_cookies();
        for cookie in CookieName::ALL {
            let v = set(&c, cookie, "v", Some(1));
            let v = v.to_str().unwrap();
            assert!(
                v.starts_with(&format!("__Host-{}=v; ", cookie.base())),
                "{v}"
            );
            assert!(
                v.contains("; Path=/; HttpOnly; SameSite=") && v.ends_with("; Secure"),
                "{v}"
            );
            assert!(!v.contains("Domain"), "{v}");
            let v = set(&dev, cookie, "v", None);
            let v = v.to_str().unwrap();
            assert!(
                v.starts_with(&format!("{}=v; Path=/; HttpOnly; ", cookie.base())),
                "{v}"
            );
            assert!(!v.contains("Secure"), "{v}");
        }
        let lang = set(&c, CookieName::Lang, "en", Some(60));
        assert!(lang.to_str().unwrap().contains("SameSite=Lax"));
        let ticket = clear(&c, CookieName::Ticket);
        assert!(
            ticket
                .to_str()
                .unwrap()
                .contains("SameSite=Strict; Max-Age=0")
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let c = HttpConfig::new("https://p.example", CookieKey::from_bytes([0; 32])).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("portal-session=x; __Host-portal-session=yes; other=1"),
        );
        assert_eq!(read(&h, &c, CookieName::Session).as_deref(), Some("yes"));
        assert_eq!(read(&h, &c, CookieName::Device), None);
    }
}
