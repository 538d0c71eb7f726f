//! Flash messages: what a form's redirect (Post/Redirect/Get) asks the next page to say once
//! ("Ben Becker wurde gesperrt."). They travel in a short-lived signed cookie
//! ([`CookieName::Flash`]), never in the URL: a name in `?notice=` would end up in access logs,
//! browser history and bookmarks, and a reload would say it again.
//!
//! The value is `payload.tag`: `payload` the base64url JSON of a [`Flash`] (the message's key
//! from the closed [`Notice`] list, at most one name argument, the expiry in Unix seconds) and
//! `tag` = `HMAC-SHA-256(key, "flash" ‖ payload)` with a key derived from the cookie key
//! ([`CookieKey::derive`](crate::CookieKey::derive)). The signature keeps anyone but this
//! server from making a page say something (a forged "Ihr Konto wurde gelöscht." is refused);
//! the expiry ([`LIFETIME_SECONDS`], also the cookie's `Max-Age`) keeps a flash that no page
//! read from showing up later. The page that reads a flash deletes the cookie with its answer,
//! so a reload shows the page without it.

use super::urls::Notice;
use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a flash waits for its page, in seconds.
pub(crate) const LIFETIME_SECONDS: i64 = 60;

/// The longest name a flash carries (longer ones are cut: a cookie holds about 4 KB).
const MAX_NAME_CHARS: usize = 200;

/// One message for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// Which message.
    #[serde(rename = "k")]
    pub(crate) notice: Notice,
    /// Whom it is about (the message's `$name`), if anyone.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// Until when it may be shown (Unix seconds).
    #[serde(rename = "e")]
    expires: i64,
}

/// What a signed cookie is for: its own key and tag prefix, so one kind never opens as another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Purpose {
    key: &'static [u8],
    prefix: &'static [u8],
}

/// The flash message's cookie.
const FLASH: Purpose = Purpose {
    key: b"portal flash cookie",
    prefix: b"flash\0",
};

/// The failed form's cookie ([`super::form::Kept`]).
pub(crate) const FORM_BACK: Purpose = Purpose {
    key: b"portal form cookie",
    prefix: b"form\0",
};

fn mac(config: &HttpConfig, purpose: Purpose) -> Hmac<Sha256> {
    let key = config.cookie_key.derive(purpose.key);
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length");
    m.update(purpose.prefix);
    m
}

/// `value` as `payload.tag` (see the module docs), signed for `purpose`.
pub(crate) fn seal<T: Serialize>(config: &HttpConfig, purpose: Purpose, value: &T) -> String {
    // The sealed types (strings, numbers, unit enums) always serialize.
    let json = serde_json::to_vec(value).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut m = mac(config, purpose);
    m.update(payload.as_bytes());
    format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// A value [`seal`]ed for `purpose`, when its signature holds.
pub(crate) fn open<T: DeserializeOwned>(
    config: &HttpConfig,
    purpose: Purpose,
    value: &str,
) -> Option<T> {
    let (payload, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut m = mac(config, purpose);
    m.update(payload.as_bytes());
    m.verify_slice(&tag).ok()?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&json).ok()
}

impl Flash {
    /// `notice`, about `name` when given, valid for [`LIFETIME_SECONDS`] from `now`.
    pub(crate) fn new(notice: Notice, name: Option<String>, now: i64) -> Self {
        let name = name.map(|n| n.chars().take(MAX_NAME_CHARS).collect());
        Self {
            notice,
            name,
            expires: now + LIFETIME_SECONDS,
        }
    }

    /// The signed cookie value.
    pub(crate) fn seal(&self, config: &HttpConfig) -> String {
        seal(config, FLASH, self)
    }

    /// The `Set-Cookie` that carries this flash to the next page.
    pub(crate) fn cookie(&self, config: &HttpConfig) -> HeaderValue {
        cookies::set(
            config,
            CookieName::Flash,
            &self.seal(config),
            Some(LIFETIME_SECONDS),
        )
    }

    /// A sealed value, when its signature holds and it has not expired at `now`.
    pub(crate) fn open(config: &HttpConfig, value: &str, now: i64) -> Option<Self> {
        let flash: Self = open(config, FLASH, value)?;
        (now <= flash.expires).then_some(flash)
    }

    /// The flash of a request's cookie, if it has a valid one.
    pub(crate) fn read(config: &HttpConfig, headers: &HeaderMap, now: i64) -> Option<Self> {
        let value = cookies::read(headers, config, CookieName::Flash)?;
        Self::open(config, &value, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CookieKey;

    fn config(byte: u8) -> HttpConfig {
        HttpConfig::new("https://p.example", CookieKey::from_bytes([byte; 32])).unwrap()
    }

    #[test]
    fn a_sealed_flash_opens_until_it_expires() {
        let c = config(1);
        let f = Flash::new(Notice::UserLocked, Some("Ben Becker".into()), 1_000);
        let sealed = f.seal(&c);
        assert!(!sealed.contains("Ben"), "{sealed}");
        assert_eq!(Flash::open(&c, &sealed, 1_000), Some(f.clone()));
        assert_eq!(Flash::open(&c, &sealed, 1_000 + LIFETIME_SECONDS), Some(f));
        assert_eq!(Flash::open(&c, &sealed, 1_001 + LIFETIME_SECONDS), None);
    }

    #[test]
    fn a_forged_or_foreign_flash_is_refused() {
        let c = config(1);
        let sealed = Flash::new(Notice::Saved, None, 1_000).seal(&c);
        assert_eq!(Flash::open(&config(2), &sealed, 1_000), None);
        let (_, tag) = sealed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"k":"user-deleted","n":"X","e":9999}"#);
        assert_eq!(Flash::open(&c, &format!("{forged}.{tag}"), 1_000), None);
        for garbage in ["", ".", "abc", "a.b.c", "%%.%%"] {
            assert_eq!(Flash::open(&c, garbage, 1_000), None, "{garbage}");
        }
    }

    #[test]
    fn long_names_are_cut() {
        let f = Flash::new(Notice::UserLocked, Some("x".repeat(5_000)), 0);
        assert_eq!(f.name.map(|n| n.chars().count()), Some(MAX_NAME_CHARS));
    }
}
