//! Settings of the HTTP adapter: the public URL, cookie security, limits and what is served.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The key that signs CSRF tokens (HMAC-SHA-256). 32 random bytes, kept secret by the server and
/// the same on every process of one installation (a token issued by one process must pass on
/// another). Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieKey([u8; 32]);

impl CookieKey {
    /// A key from 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's CSPRNG (tokens then do not survive a restart and
    /// are not shared between processes: fine for one process and tests).
    ///
    /// # Panics
    /// When the operating system has no randomness to give.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("operating system randomness");
        Self(bytes)
    }

    /// A key from its base64 (standard or URL-safe, padding optional) text form.
    ///
    /// # Errors
    /// The text is not base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, HttpConfigError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let t = text.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(t)
            .or_else(|_| STANDARD_NO_PAD.decode(t))
            .map_err(|_| HttpConfigError("cookie key is not base64".into()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HttpConfigError("cookie key must be 32 bytes".into()))?;
        Ok(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `HMAC-SHA256(key, label)`: a key for another purpose derived from this one, for hosts
    /// that hold a single secret (the embedding builder derives the login counters' key so).
    #[must_use]
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac =
            <Hmac<sha2::Sha256>>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey([redacted])")
    }
}

/// A token bucket per client address: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once (the bucket's size). 0 turns the limit off.
    pub burst: u32,
    /// Requests regained per minute.
    pub per_minute: u32,
}

impl RateLimit {
    /// A limit of `burst` at once and `per_minute` after that.
    #[must_use]
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }

    /// No limit.
    #[must_use]
    pub const fn off() -> Self {
        Self {
            burst: 0,
            per_minute: 0,
        }
    }

    /// Whether the limit applies.
    #[must_use]
    pub const fn is_on(&self) -> bool {
        self.burst > 0
    }
}

/// Per-address rate limits of the endpoints an attacker would hammer. They come on top of the
/// core's own throttles (per account, per second factor), which work across processes; these are
/// in-process and protect CPU (password hashing) and the mail and SMS budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /auth/login`, `POST /auth/reauthenticate`, `POST /me/link/customer`,
    /// `POST /me/link/legacy`.
    pub login: RateLimit,
    /// `POST /auth/login/mfa*` and the second-factor endpoints under `/me/mfa`.
    pub mfa: RateLimit,
    /// `POST /auth/register`, `POST /invitations/{token}/accept`.
    pub registration: RateLimit,
    /// Codes: `POST /auth/register/verify`, `POST /auth/register/resend`, `POST /me/email*`.
    pub codes: RateLimit,
    /// `POST /auth/password/forgot`, `POST /auth/password/reset`, `PUT /me/password`.
    pub password: RateLimit,
    /// Most client addresses tracked at once; beyond it the fullest buckets are forgotten.
    pub max_tracked_addresses: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: RateLimit::new(10, 10),
            mfa: RateLimit::new(10, 10),
            registration: RateLimit::new(5, 5),
            codes: RateLimit::new(10, 10),
            password: RateLimit::new(5, 5),
            max_tracked_addresses: 100_000,
        }
    }
}

impl RateLimits {
    /// Every limit off (tests, or a server behind a proxy that limits already).
    #[must_use]
    pub fn off() -> Self {
        Self {
            login: RateLimit::off(),
            mfa: RateLimit::off(),
            registration: RateLimit::off(),
            codes: RateLimit::off(),
            password: RateLimit::off(),
            max_tracked_addresses: 100_000,
        }
    }
}

/// Where the client's address comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientAddressSource {
    /// The TCP peer's address only (the default: headers are not trusted). Needs the router
    /// served with `into_make_service_with_connect_info::<SocketAddr>()`.
    #[default]
    PeerAddress,
    /// Behind reverse proxies: when the peer is one of `proxies`, the client is the right-most
    /// address of `X-Forwarded-For` that is not a trusted proxy itself.
    XForwardedFor {
        /// The proxies' addresses.
        proxies: Vec<IpAddr>,
    },
}

/// A setting of the HTTP adapter is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HTTP configuration: {0}")]
pub struct HttpConfigError(pub String);

/// Settings of the HTTP adapter. Build with [`HttpConfig::new`] (secure defaults) and adjust the
/// public fields; plain-HTTP cookies need the explicit [`HttpConfig::insecure_development_cookies`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    public_origin: String,
    public_url: String,
    secure_cookies: bool,
    /// Signs CSRF tokens.
    pub cookie_key: CookieKey,
    /// Largest request body, in bytes (default 64 KiB); larger bodies answer 413.
    pub body_limit: usize,
    /// Largest CSV body of `POST /operator/customers/import` (default 2 MiB).
    pub import_body_limit: usize,
    /// Per-address rate limits.
    pub rate_limits: RateLimits,
    /// Password hashes (Argon2id, 19 MiB each) computed at once by a [`BlockingHasher`](crate::BlockingHasher)
    /// built with [`BlockingHasher::from_config`](crate::BlockingHasher::from_config) (default: the available cores).
    pub hash_concurrency: usize,
    /// Serve `/api/v1/openapi.json` (default on).
    pub serve_openapi: bool,
    /// Serve the Swagger UI at `/api/docs` (default on; needs `serve_openapi`).
    pub serve_swagger_ui: bool,
    /// Where the client's address comes from (default: the peer address only).
    pub client_address: ClientAddressSource,
    /// How long `/readyz` waits for the [`Readiness`](crate::Readiness) check before answering
    /// 503 (default 2 s): a hanging database must not hang the probe.
    pub readiness_timeout: std::time::Duration,
    /// The development mailbox directory shown at `/dev/mailbox` (none by default: the page
    /// answers 404). Set with [`HttpConfig::with_dev_mailbox`].
    dev_mailbox: Option<PathBuf>,
}

impl HttpConfig {
    /// Secure defaults for a portal reachable at `public_url` (`https://portal.example.com`):
    /// `Secure` cookies with the `__Host-` prefix, 64 KiB bodies, the default rate limits, one
    /// hash per core, OpenAPI and Swagger UI served, the peer address as the client address.
    ///
    /// # Errors
    /// `public_url` is not an absolute `http` or `https` URL.
    pub fn new(public_url: &str, cookie_key: CookieKey) -> Result<Self, HttpConfigError> {
        let (origin, url) = parse_public_url(public_url)?;
        Ok(Self {
            public_origin: origin,
            public_url: url,
            secure_cookies: true,
            cookie_key,
            body_limit: 64 * 1024,
            import_body_limit: 2 * 1024 * 1024,
            rate_limits: RateLimits::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            serve_openapi: true,
            serve_swagger_ui: true,
            client_address: ClientAddressSource::PeerAddress,
            readiness_timeout: std::time::Duration::from_secs(2),
            dev_mailbox: None,
        })
    }

    /// Development only: serve the `.eml` files of this directory (the development mailbox
    /// that `PORTAL_MAIL_DIR` names) at `/dev/mailbox`, newest first, codes and links visible.
    /// Without it that page answers 404. Never in production: the page shows every mail.
    #[must_use]
    pub fn with_dev_mailbox(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dev_mailbox = Some(dir.into());
        self
    }

    /// The development mailbox directory, when `/dev/mailbox` is served.
    #[must_use]
    pub fn dev_mailbox(&self) -> Option<&Path> {
        self.dev_mailbox.as_deref()
    }

    /// The development switch for plain-HTTP localhost: cookies without `Secure` and without the
    /// `__Host-` prefix (browsers refuse both over plain HTTP), and no HSTS header. Never in
    /// production.
    #[must_use]
    pub fn insecure_development_cookies(mut self) -> Self {
        self.secure_cookies = false;
        self
    }

    /// Whether cookies are `Secure` with the `__Host-` prefix (false only in development mode).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// The public URL without a trailing slash (`https://portal.example.com`).
    #[must_use]
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The path of the public URL without a trailing slash (`https://x.example/portal` →
    /// `/portal`; empty at the root). A host application that nests the router mounts it under
    /// this path: the web UI's links, the Swagger UI and the OpenAPI document's `servers` use it.
    #[must_use]
    pub fn public_path(&self) -> &str {
        let url = self.public_url.as_str();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.find('/')
            .map_or("", |i| rest[i..].trim_end_matches('/'))
    }

    /// The public origin (`scheme://host[:port]`, default ports left out) that browsers send in
    /// `Origin`.
    #[must_use]
    pub fn public_origin(&self) -> &str {
        &self.public_origin
    }
}

/// Returns the origin and the URL without trailing slash.
fn parse_public_url(raw: &str) -> Result<(String, String), HttpConfigError> {
    let bad = || {
        HttpConfigError(format!(
            "public URL {raw:?} must be http(s)://host[:port][/path]"
        ))
    };
    let url = raw.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    if rest.contains(['?', '#']) {
        return Err(bad());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(bad());
    }
    let mut authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if let Some(stripped) = authority.strip_suffix(default_port) {
        authority = stripped.to_owned();
    }
    Ok((format!("{scheme}://{authority}"), url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_give_their_origin() {
        let key = CookieKey::from_bytes([1; 32]);
        let c = HttpConfig::new("https://Portal.Example.com:443/base/", key.clone()).unwrap();
        assert_eq!(c.public_origin(), "https://portal.example.com");
        assert_eq!(c.public_url(), "https://Portal.Example.com:443/base");
        assert_eq!(c.public_path(), "/base");
        let nested = HttpConfig::new("https://x.example/a/b/", key.clone()).unwrap();
        assert_eq!(nested.public_path(), "/a/b");
        assert_eq!(
            HttpConfig::new("https://x.example", key.clone())
                .unwrap()
                .public_path(),
            ""
        );
        let c = HttpConfig::new("http://127.0.0.1:8080", key.clone()).unwrap();
        assert_eq!(c.public_origin(), "http://127.0.0.1:8080");
        assert!(c.secure_cookies());
        assert!(!c.insecure_development_cookies().secure_cookies());
        for bad in [
            "ftp://x",
            "portal.example.com",
            "https://",
            "https://a@b",
            "https://x.example/p?q=1",
            "https://x.example/p#top",
        ] {
            assert!(HttpConfig::new(bad, key.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_keys_read_base64_and_hide_in_debug() {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let key = CookieKey::from_base64(&text).unwrap();
        assert_eq!(key.bytes(), &[9u8; 32]);
        assert_eq!(format!("{key:?}"), "CookieKey([redacted])");
        assert!(CookieKey::from_base64("c2hvcnQ").is_err());
    }
}
